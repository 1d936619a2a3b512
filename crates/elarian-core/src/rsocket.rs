//! The [`Link`]/[`Connector`] seam implemented over `elarian-transport`'s RSocket client.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elarian_transport::frame::ErrorCode;
use elarian_transport::io::{self, Dialer, Endpoint, TlsClientOptions, TransportError};
use elarian_transport::{
    ClientSession, InboundOverflow, Payload, RequestError, RequestHandler, ResumeError, StreamError,
};
use futures_util::future::BoxFuture;

use crate::config::ClientConfig;
use crate::dispatch::Dispatcher;
use crate::error::{Cause, ConnectError, chain_text};
use crate::link::{Connector, Link, LinkDown, LinkRequestError, ResumeFailure};
use crate::setup::{DATA_MIME_TYPE, METADATA_MIME_TYPE, agent_metadata, resume_token, setup_data};

/// Answers the server's requests (notifications) through the dispatcher.
struct NotificationResponder {
    dispatcher: Arc<Dispatcher>,
}

impl RequestHandler for NotificationResponder {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let dispatcher = self.dispatcher.clone();
        Box::pin(async move {
            dispatcher
                .handle(payload.data)
                .await
                .map(Payload::new)
                .map_err(|error| StreamError::application(error.message))
        })
    }
}

/// Where and how to open sessions; cloned into each attempt.
#[derive(Clone)]
struct Target {
    endpoint: Endpoint,
    /// When set, opens every transport instead of `endpoint`.
    dialer: Option<Arc<dyn Dialer>>,
    tls: TlsClientOptions,
    connect_timeout: Duration,
}

impl Target {
    async fn open(&self) -> Result<io::BoxTransport, ConnectError> {
        let opened = match &self.dialer {
            Some(dialer) => dial(dialer.as_ref(), self.connect_timeout).await,
            None => io::connect(&self.endpoint, &self.tls, self.connect_timeout).await,
        };
        opened.map_err(|error| ConnectError::Transport {
            message: format!("{}: {}", self.describe(), chain_text(&error)),
            source: Some(Cause::new(error)),
        })
    }

    /// Where the client connects, for logs and errors.
    fn describe(&self) -> String {
        match &self.dialer {
            Some(dialer) => dialer.describe(),
            None => self.endpoint.to_string(),
        }
    }
}

/// `dialer.dial()` within `timeout`, failing as [`io::connect`] does when it runs out.
async fn dial(dialer: &dyn Dialer, timeout: Duration) -> Result<io::BoxTransport, TransportError> {
    match tokio::time::timeout(timeout, dialer.dial()).await {
        Ok(opened) => opened,
        Err(_) => Err(TransportError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("dialling {} timed out after {timeout:?}", dialer.describe()),
        ))),
    }
}

pub(crate) struct RsocketConnector {
    target: Target,
    resumption: bool,
    keepalive_interval: Duration,
    max_lifetime: Duration,
    setup_data: Bytes,
    max_concurrent_notifications: usize,
    max_pending_notifications: usize,
    max_commands_in_flight: usize,
    responder: Arc<dyn RequestHandler>,
}

impl RsocketConnector {
    pub(crate) fn new(config: &ClientConfig, dispatcher: Arc<Dispatcher>) -> Self {
        RsocketConnector {
            target: Target {
                endpoint: config.endpoint.clone(),
                dialer: config.dialer.clone(),
                tls: config.tls.clone(),
                connect_timeout: config.connect_timeout,
            },
            resumption: config.resumption,
            keepalive_interval: config.keepalive_interval,
            max_lifetime: config.max_lifetime,
            setup_data: setup_data(config),
            max_concurrent_notifications: config.max_concurrent_notifications,
            max_pending_notifications: config.max_pending_notifications,
            max_commands_in_flight: config.max_commands_in_flight,
            responder: Arc::new(NotificationResponder { dispatcher }),
        }
    }

    // Field by field so that new engine settings (and a `#[non_exhaustive]` on the struct) keep
    // their defaults without a change here.
    #[allow(clippy::field_reassign_with_default)]
    fn session_config(&self) -> elarian_transport::ClientSessionConfig {
        let mut config = elarian_transport::ClientSessionConfig::default();
        config.keepalive_interval = self.keepalive_interval;
        config.max_lifetime = self.max_lifetime;
        config.data_mime_type = DATA_MIME_TYPE.into();
        config.metadata_mime_type = METADATA_MIME_TYPE.into();
        config.setup_payload =
            Payload::new(self.setup_data.clone()).with_metadata(agent_metadata());
        config.resume_token = if self.resumption {
            resume_token()
        } else {
            None
        };
        // The supervisor stops resuming after the same window (see `Supervisor::resume`).
        config.resume_window = self.max_lifetime;
        config.connect_timeout = self.target.connect_timeout;
        // Backpressure (see the crate docs): at most this many handlers run, further
        // notifications wait (bounded) while the session reads on, and past that it stops
        // reading until a handler finishes, rather than refusing notifications.
        config.max_inbound_requests = self.max_concurrent_notifications;
        config.max_pending_inbound = self.max_pending_notifications;
        config.inbound_overflow = InboundOverflow::PauseReading;
        // The client's window (`window`) is the real bound; the session's own must not be lower.
        config.max_in_flight = self.max_commands_in_flight;
        config
    }
}

impl Connector for RsocketConnector {
    fn connect(&self) -> BoxFuture<'static, Result<Arc<dyn Link>, ConnectError>> {
        let target = self.target.clone();
        let config = self.session_config();
        let responder = self.responder.clone();
        Box::pin(async move {
            let transport = target.open().await?;
            let session = ClientSession::connect(transport, config, responder)
                .await
                .map_err(map_connect_error)?;
            tracing::info!(endpoint = %target.describe(), "elarian session established");
            Ok(Arc::new(RsocketLink { session, target }) as Arc<dyn Link>)
        })
    }
}

fn map_connect_error(error: elarian_transport::SetupError) -> ConnectError {
    use elarian_transport::SetupError as E;
    match error {
        // Retrying the same SETUP cannot succeed after these.
        E::Rejected {
            code: ErrorCode::InvalidSetup | ErrorCode::UnsupportedSetup | ErrorCode::RejectedSetup,
            message,
        } => ConnectError::Rejected { message },
        E::Rejected { code, message } => ConnectError::Protocol {
            message: format!("{code}: {message}"),
        },
        E::Timeout => ConnectError::timeout(),
        E::Transport(error) => ConnectError::Transport {
            message: chain_text(&error),
            source: Some(Cause::new(error)),
        },
        other => ConnectError::Protocol {
            message: other.to_string(),
        },
    }
}

/// What a failed request on the connection means to the client.
pub(crate) fn link_error(error: RequestError) -> LinkRequestError {
    match error {
        RequestError::TimedOut => LinkRequestError::TimedOut,
        RequestError::Remote { code, message } => LinkRequestError::Remote {
            code: code.as_u32(),
            message,
        },
        error => {
            tracing::debug!(%error, "elarian command lost");
            LinkRequestError::Lost
        }
    }
}

struct RsocketLink {
    session: ClientSession,
    target: Target,
}

impl Link for RsocketLink {
    fn request(
        &self,
        data: Bytes,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'static, Result<Bytes, LinkRequestError>> {
        let session = self.session.clone();
        Box::pin(async move {
            session
                .connection()
                .request_response_until(Payload::new(data), deadline)
                .await
                .map(|reply| reply.data)
                .map_err(link_error)
        })
    }

    fn connection(&self) -> Option<&elarian_transport::Connection> {
        Some(self.session.connection())
    }

    fn down(&self) -> BoxFuture<'static, LinkDown> {
        let session = self.session.clone();
        Box::pin(async move {
            session.disconnected().await;
            if session.connection().is_closed() {
                LinkDown::Closed {
                    reason: session.connection().closed().await.to_string(),
                }
            } else {
                LinkDown::Detached {
                    reason: "transport lost; the session is resumable".to_owned(),
                }
            }
        })
    }

    fn resume(&self) -> BoxFuture<'static, Result<(), ResumeFailure>> {
        let session = self.session.clone();
        let target = self.target.clone();
        Box::pin(async move {
            let transport = target.open().await.map_err(ResumeFailure::Failed)?;
            match session.resume(transport).await {
                // Already attached again: nothing to do.
                Ok(()) | Err(ResumeError::NotDetached) => Ok(()),
                Err(ResumeError::Timeout) => Err(ResumeFailure::Failed(ConnectError::timeout())),
                Err(error) => Err(ResumeFailure::Rejected {
                    reason: error.to_string(),
                }),
            }
        })
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let session = self.session.clone();
        Box::pin(async move {
            session.connection().close();
            let _ = session.connection().closed().await;
        })
    }
}
