//! Notification dispatch: decode, run the handler under guard, encode the reply.
//!
//! Each notification (a REQUEST_RESPONSE from the server) goes through [`Dispatcher::handle`]:
//!
//! 1. The data is decoded as a `ServerToAppNotification` (app role) or
//!    `ServerToSimulatorNotification` (simulator role). Bad protobuf answers the request with an
//!    APPLICATION_ERROR and emits an error event; the connection is not affected.
//! 2. The dispatcher waits for one of `max_concurrent_notifications` permits.
//! 3. The handler runs in its own task holding the permit, bounded by the notification timeout.
//!    A panic (seen as a `JoinError`), an error or the timeout (which aborts the task, releasing
//!    its permit) all produce the default reply plus an error event.
//!
//! See the crate documentation ("Backpressure") for how the permits bound the work a server
//! can cause.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elarian_proto::{
    ServerToAppNotification, ServerToSimulatorNotification, ServerToSimulatorNotificationReply,
};
use prost::Message;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::config::Role;
use crate::error::{ClientError, HandlerError, NotificationError};
use crate::event::{ConnectionEvent, EventHub};
use crate::handler::{NotificationHandler, default_app_reply};

/// A notification that could not be decoded; answered with an APPLICATION_ERROR.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DispatchError {
    pub(crate) message: String,
}

/// Routes the server's notifications to the application's handler.
pub(crate) struct Dispatcher {
    role: Role,
    handler: Arc<dyn NotificationHandler>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    events: Arc<EventHub>,
}

/// Aborts the handler task if the responder future is dropped (the server cancelled, or the
/// connection closed), so its permit is released.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Dispatcher {
    pub(crate) fn new(
        role: Role,
        handler: Arc<dyn NotificationHandler>,
        max_concurrent: usize,
        timeout: Duration,
        events: Arc<EventHub>,
    ) -> Self {
        Dispatcher {
            role,
            handler,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            timeout,
            events,
        }
    }

    /// Answers one notification; `data` is the REQUEST_RESPONSE payload data.
    pub(crate) async fn handle(&self, data: Bytes) -> Result<Bytes, DispatchError> {
        match self.role {
            Role::App => self.handle_app(data).await,
            Role::Simulator => self.handle_simulator(data).await,
        }
    }

    async fn handle_app(&self, data: Bytes) -> Result<Bytes, DispatchError> {
        let notification = self.decode::<ServerToAppNotification>(data)?;
        let default = default_app_reply(&notification);
        let handler = self.handler.clone();
        let reply = self
            .run_guarded(move || handler.on_app_notification(notification))
            .await
            .unwrap_or(default);
        Ok(Bytes::from(reply.encode_to_vec()))
    }

    async fn handle_simulator(&self, data: Bytes) -> Result<Bytes, DispatchError> {
        let notification = self.decode::<ServerToSimulatorNotification>(data)?;
        let handler = self.handler.clone();
        // The reply is empty whatever happens; failures only produce an error event.
        let _ = self
            .run_guarded(move || handler.on_simulator_notification(notification))
            .await;
        Ok(Bytes::from(
            ServerToSimulatorNotificationReply {}.encode_to_vec(),
        ))
    }

    fn decode<M: Message + Default>(&self, data: Bytes) -> Result<M, DispatchError> {
        M::decode(data).map_err(|error| {
            let message = error.to_string();
            self.report(NotificationError::Decode {
                message: message.clone(),
            });
            DispatchError {
                message: format!("undecodable notification: {message}"),
            }
        })
    }

    /// Runs a handler call in its own task with a permit and the timeout. `None` means "send the
    /// default reply" (the reason was reported as an event).
    async fn run_guarded<T, F>(&self, call: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> futures_util::future::BoxFuture<'static, Result<T, HandlerError>>
            + Send
            + 'static,
    {
        // The semaphore is never closed, so acquiring only fails if that invariant breaks; the
        // default reply is the safe answer then.
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        // The handler is called inside the task so that a panic while building its future is
        // contained too.
        let mut task = AbortOnDrop(tokio::spawn(async move {
            let _permit = permit;
            call().await
        }));
        match tokio::time::timeout(self.timeout, &mut task.0).await {
            Ok(Ok(Ok(reply))) => Some(reply),
            Ok(Ok(Err(error))) => {
                self.report(NotificationError::HandlerFailed {
                    message: error.message().to_owned(),
                });
                None
            }
            Ok(Err(join_error)) => {
                let message = if join_error.is_panic() {
                    panic_message(join_error.into_panic())
                } else {
                    "handler task was cancelled".to_owned()
                };
                self.report(NotificationError::HandlerPanicked { message });
                None
            }
            Err(_elapsed) => {
                self.report(NotificationError::Timeout {
                    timeout: self.timeout,
                });
                None
            }
        }
    }

    fn report(&self, error: NotificationError) {
        self.events
            .emit(ConnectionEvent::Error(ClientError::Notification(error)));
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elarian_proto::{
        DataMapValue, ServerToAppCustomerNotification, ServerToAppNotificationReply,
        data_map_value, server_to_app_notification,
    };
    use futures_util::future::BoxFuture;

    fn customer_notification(app_data: &str) -> ServerToAppNotification {
        ServerToAppNotification {
            entry: Some(server_to_app_notification::Entry::Customer(
                ServerToAppCustomerNotification {
                    customer_id: "el_cst_1".into(),
                    app_data: Some(DataMapValue {
                        value: Some(data_map_value::Value::StringVal(app_data.into())),
                    }),
                    ..Default::default()
                },
            )),
        }
    }

    struct Sleepy;
    impl NotificationHandler for Sleepy {
        fn on_app_notification(
            &self,
            _: ServerToAppNotification,
        ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(ServerToAppNotificationReply::default())
            })
        }
    }

    struct Failing;
    impl NotificationHandler for Failing {
        fn on_app_notification(
            &self,
            _: ServerToAppNotification,
        ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
            Box::pin(async { Err(HandlerError::new("nope")) })
        }
    }

    fn dispatcher(handler: Arc<dyn NotificationHandler>) -> (Dispatcher, crate::EventStream) {
        let events = Arc::new(EventHub::new(Vec::new()));
        let stream = events.subscribe();
        (
            Dispatcher::new(Role::App, handler, 4, Duration::from_secs(5), events),
            stream,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_and_failure_give_the_default_reply_and_an_event() {
        use futures_util::StreamExt;
        for handler in [
            Arc::new(Sleepy) as Arc<dyn NotificationHandler>,
            Arc::new(Failing),
        ] {
            let (dispatcher, mut events) = dispatcher(handler);
            let notification = customer_notification("{\"n\":1}");
            let reply = dispatcher
                .handle(Bytes::from(notification.encode_to_vec()))
                .await
                .unwrap();
            let reply = ServerToAppNotificationReply::decode(reply).unwrap();
            assert_eq!(reply, default_app_reply(&notification));
            assert!(reply.data_update.is_some());
            assert!(matches!(
                events.next().await,
                Some(ConnectionEvent::Error(ClientError::Notification(_)))
            ));
        }
    }

    #[tokio::test]
    async fn bad_protobuf_is_an_error_reply() {
        let (dispatcher, _events) = dispatcher(Arc::new(()));
        let result = dispatcher
            .handle(Bytes::from_static(&[0xff, 0xff, 0xff]))
            .await;
        assert!(result.is_err());
    }
}
