//! The supervisor: one task per client that owns the connection for the life of the client.
//!
//! It opens the first session, watches it, and on transport loss or keepalive timeout first tries
//! to resume the same RSocket session over a fresh transport (so in-flight commands complete
//! exactly once) and, if the server no longer knows the session, opens a new one. Attempts are
//! spaced by the [`ReconnectPolicy`](crate::ReconnectPolicy) (exponential backoff, full jitter).
//! A rejected SETUP is final. The current session is published through a `watch` channel that
//! commands read, so a command on a healthy connection never goes through this task.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::config::ClientConfig;
use crate::error::{ClientError, ConnectError};
use crate::event::{ConnectionEvent, EventHub, StopReason};
use crate::inflight::InFlight;
use crate::link::{Connector, Link, LinkDown, ResumeFailure};
use crate::window::CommandWindow;

/// The connection as commands see it.
#[derive(Clone)]
pub(crate) enum Availability {
    /// Not connected yet, or reconnecting: commands wait (bounded by the queue).
    Down,
    /// Connected: commands go straight to this session.
    Up(Arc<dyn Link>),
    /// Disconnected or given up: commands fail with `NotConnected`.
    Closed,
}

/// State shared by the client handles and the supervisor.
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    pub(crate) events: Arc<EventHub>,
    pub(crate) state: watch::Sender<Availability>,
    /// Permits for commands waiting for a connection.
    pub(crate) queue: Arc<Semaphore>,
    /// Number of commands between "accepted" and "answered".
    pub(crate) in_flight: InFlight,
    /// The window of commands sent and not yet answered (flow control).
    pub(crate) window: Arc<CommandWindow>,
    /// `Some(reason)` once the client is asked to stop.
    pub(crate) shutdown: watch::Sender<Option<StopReason>>,
    /// `Some` once the first connection came up (`Ok`) or the client stopped before (`Err`).
    pub(crate) first_connect: watch::Sender<Option<Result<(), ConnectError>>>,
    /// `true` once the supervisor has finished.
    pub(crate) finished: watch::Sender<bool>,
    /// The error of the last failed attempt, so that a timed-out `connect` can say why.
    pub(crate) last_failure: watch::Sender<Option<ConnectError>>,
}

impl Shared {
    pub(crate) fn new(
        config: ClientConfig,
        events: Arc<EventHub>,
        window: Arc<CommandWindow>,
    ) -> Self {
        let queue = Arc::new(Semaphore::new(config.max_queued_commands));
        Shared {
            window,
            config,
            events,
            state: watch::Sender::new(Availability::Down),
            queue,
            in_flight: InFlight::default(),
            shutdown: watch::Sender::new(None),
            first_connect: watch::Sender::new(None),
            finished: watch::Sender::new(false),
            last_failure: watch::Sender::new(None),
        }
    }

    /// Stops accepting commands and tells the supervisor to close, for `reason` (the first
    /// reason given wins).
    pub(crate) fn begin_shutdown(&self, reason: StopReason) {
        self.state.send_if_modified(|state| match state {
            Availability::Closed => false,
            _ => {
                *state = Availability::Closed;
                true
            }
        });
        self.shutdown.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

/// What the supervisor does next.
enum Step {
    Connect,
    Backoff {
        then_resume: Option<Detached>,
    },
    Resume(Detached),
    Run(Arc<dyn Link>),
    Stop {
        reason: StopReason,
        link: Option<Arc<dyn Link>>,
    },
}

/// A session whose transport was lost and that may still be resumed.
struct Detached {
    link: Arc<dyn Link>,
    since: Instant,
}

pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    connector: Arc<dyn Connector>,
    shutdown: watch::Receiver<Option<StopReason>>,
    /// Consecutive failed attempts since the connection was last up.
    failures: u32,
}

impl Supervisor {
    pub(crate) fn new(shared: Arc<Shared>, connector: Arc<dyn Connector>) -> Self {
        let shutdown = shared.shutdown.subscribe();
        Supervisor {
            shared,
            connector,
            shutdown,
            failures: 0,
        }
    }

    fn emit(&self, event: ConnectionEvent) {
        self.shared.events.emit(event);
    }

    /// Awaits `future` unless the client is shut down first.
    async fn or_shutdown<F: Future>(&mut self, future: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            _ = self.shutdown.wait_for(Option::is_some) => None,
            output = future => Some(output),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut step = Step::Connect;
        loop {
            step = match step {
                Step::Connect => self.connect().await,
                Step::Backoff { then_resume } => self.backoff(then_resume).await,
                Step::Resume(detached) => self.resume(detached).await,
                Step::Run(link) => self.watch(link).await,
                Step::Stop { reason, link } => {
                    self.stop(reason, link).await;
                    return;
                }
            };
        }
    }

    fn shutdown_step(&self, link: Option<Arc<dyn Link>>) -> Step {
        let reason = self
            .shutdown
            .borrow()
            .clone()
            .unwrap_or(StopReason::Disconnected);
        Step::Stop { reason, link }
    }

    async fn connect(&mut self) -> Step {
        self.emit(ConnectionEvent::Connecting);
        let timeout = attempt_bound(&self.shared.config);
        let attempt = self.connector.connect();
        let Some(result) = self
            .or_shutdown(tokio::time::timeout(timeout, attempt))
            .await
        else {
            return self.shutdown_step(None);
        };
        match result.unwrap_or(Err(ConnectError::timeout())) {
            Ok(link) => self.up(link),
            Err(ConnectError::Rejected { message }) => {
                self.emit(ConnectionEvent::Error(ClientError::Connect(
                    ConnectError::Rejected {
                        message: message.clone(),
                    },
                )));
                Step::Stop {
                    reason: StopReason::Rejected { message },
                    link: None,
                }
            }
            Err(error) => self.failed(error, None),
        }
    }

    /// Records a failed attempt; gives up when the policy says so.
    fn failed(&mut self, error: ConnectError, detached: Option<Detached>) -> Step {
        self.failures = self.failures.saturating_add(1);
        self.shared.last_failure.send_replace(Some(error.clone()));
        self.emit(ConnectionEvent::Error(ClientError::Connect(error.clone())));
        if self.shared.config.reconnect.allows(self.failures) {
            Step::Backoff {
                then_resume: detached,
            }
        } else {
            Step::Stop {
                reason: StopReason::GaveUp {
                    last: ConnectError::AttemptsExhausted {
                        attempts: self.failures,
                        last: Box::new(error),
                    },
                },
                link: detached.map(|d| d.link),
            }
        }
    }

    async fn backoff(&mut self, then_resume: Option<Detached>) -> Step {
        let attempt = self.failures.saturating_add(1);
        let delay = self.shared.config.reconnect.delay(attempt);
        self.emit(ConnectionEvent::Reconnecting { attempt, delay });
        if self.or_shutdown(tokio::time::sleep(delay)).await.is_none() {
            return self.shutdown_step(then_resume.map(|d| d.link));
        }
        match then_resume {
            Some(detached) => Step::Resume(detached),
            None => Step::Connect,
        }
    }

    async fn resume(&mut self, detached: Detached) -> Step {
        // The server forgets a detached session after its lifetime; do not bother resuming then.
        if detached.since.elapsed() >= self.shared.config.max_lifetime {
            self.session_lost(&detached.link, "the resume window elapsed".to_owned())
                .await;
            return Step::Connect;
        }
        self.emit(ConnectionEvent::Connecting);
        let timeout = attempt_bound(&self.shared.config);
        let attempt = detached.link.resume();
        let Some(result) = self
            .or_shutdown(tokio::time::timeout(timeout, attempt))
            .await
        else {
            return self.shutdown_step(Some(detached.link));
        };
        match result.unwrap_or(Err(ResumeFailure::Failed(ConnectError::timeout()))) {
            Ok(()) => {
                tracing::info!("elarian session resumed");
                self.up(detached.link)
            }
            Err(ResumeFailure::Rejected { reason }) => {
                self.session_lost(&detached.link, reason).await;
                Step::Connect
            }
            Err(ResumeFailure::Failed(error)) => self.failed(error, Some(detached)),
        }
    }

    /// The old session is gone for good: its in-flight commands fail with `ConnectionLost`.
    async fn session_lost(&mut self, link: &Arc<dyn Link>, reason: String) {
        tracing::info!(%reason, "elarian session cannot be resumed; opening a new one");
        let close = link.close();
        let _ = tokio::time::timeout(self.shared.config.disconnect_timeout, close).await;
        self.emit(ConnectionEvent::Error(ClientError::SessionLost { reason }));
    }

    fn up(&mut self, link: Arc<dyn Link>) -> Step {
        self.failures = 0;
        let published = self.shared.state.send_if_modified(|state| match state {
            Availability::Closed => false,
            _ => {
                *state = Availability::Up(link.clone());
                true
            }
        });
        if !published {
            // disconnect() raced with the handshake.
            return self.shutdown_step(Some(link));
        }
        self.shared.first_connect.send_if_modified(|first| {
            if first.is_none() {
                *first = Some(Ok(()));
                true
            } else {
                false
            }
        });
        self.emit(ConnectionEvent::Connected);
        Step::Run(link)
    }

    async fn watch(&mut self, link: Arc<dyn Link>) -> Step {
        let down = link.down();
        let Some(down) = self.or_shutdown(down).await else {
            return self.shutdown_step(Some(link));
        };
        self.shared.state.send_if_modified(|state| match state {
            Availability::Up(_) => {
                *state = Availability::Down;
                true
            }
            _ => false,
        });
        self.failures = 0;
        match down {
            LinkDown::Detached { reason } => {
                self.emit(ConnectionEvent::Error(ClientError::ConnectionLost {
                    reason,
                }));
                Step::Backoff {
                    then_resume: Some(Detached {
                        link,
                        since: Instant::now(),
                    }),
                }
            }
            LinkDown::Closed { reason } => {
                self.emit(ConnectionEvent::Error(ClientError::ConnectionLost {
                    reason,
                }));
                Step::Backoff { then_resume: None }
            }
        }
    }

    async fn stop(&mut self, reason: StopReason, link: Option<Arc<dyn Link>>) {
        self.shared.state.send_replace(Availability::Closed);
        if let Some(link) = link {
            let grace = self.shared.config.disconnect_timeout;
            if matches!(reason, StopReason::Disconnected) {
                // Let commands already sent finish; new ones are refused since the state is Closed.
                let drained = tokio::time::timeout(grace, self.shared.in_flight.idle()).await;
                if drained.is_err() {
                    tracing::warn!(
                        in_flight = self.shared.in_flight.count(),
                        "elarian disconnect: commands still in flight after the grace period fail"
                    );
                }
            }
            let _ = tokio::time::timeout(grace, link.close()).await;
        }
        let error = match &reason {
            StopReason::Rejected { message } => ConnectError::Rejected {
                message: message.clone(),
            },
            StopReason::GaveUp { last } => last.clone(),
            StopReason::Disconnected => ConnectError::Closed,
        };
        self.shared.first_connect.send_if_modified(|first| {
            if first.is_none() {
                *first = Some(Err(error));
                true
            } else {
                false
            }
        });
        self.emit(ConnectionEvent::Closed { reason });
        self.shared.finished.send_replace(true);
    }
}

/// Safety net around one attempt. The transport and the handshake each enforce the connect
/// timeout themselves (and clean up when it fires), so this only catches a stuck attempt.
fn attempt_bound(config: &ClientConfig) -> Duration {
    config
        .connect_timeout
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(1))
}

/// Upper bound of how long `disconnect` may take: the drain, the close and some slack.
pub(crate) fn disconnect_bound(config: &ClientConfig) -> Duration {
    config
        .disconnect_timeout
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(1))
}
