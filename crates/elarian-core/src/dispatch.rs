//! Notification dispatch: decode, run the handler under guard, encode the reply.
//!
//! Each notification (a REQUEST_RESPONSE from the server) goes through [`Dispatcher::handle`]:
//!
//! 1. The data is decoded as a `ServerToAppNotification` (app role) or
//!    `ServerToSimulatorNotification` (simulator role). Bad protobuf answers the request with an
//!    APPLICATION_ERROR and emits an error event; the connection is not affected.
//! 2. While commands sent by running handlers wait for a slot in the client's window of
//!    commands in flight, no new notification starts (bounded by the notification timeout):
//!    the notifications that caused those commands must not starve them. The transport keeps
//!    reading meanwhile (replies to those commands included) until its bounded queue of
//!    waiting notifications is full, then stops reading the socket (TCP backpressure).
//! 3. The dispatcher takes one of `max_concurrent_notifications` permits and spawns **one**
//!    task holding it, which runs the handler (its commands take the window's priority lane)
//!    and catches a panic. The reply travels through a [`ReplySender`], so the dispatcher answers
//!    as soon as the handler replies while the task (and its permit) live on until the handler
//!    finishes: work after the reply counts against the limit too.
//! 4. No reply within the notification timeout aborts the task (releasing its permit); that,
//!    an error or a panic produce the default reply plus one error event.
//!
//! See the crate documentation ("Backpressure") for how the permits bound the work a server
//! can cause.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elarian_proto::{
    ServerToAppNotification, ServerToSimulatorNotification, ServerToSimulatorNotificationReply,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use prost::Message;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::config::Role;
use crate::error::{ClientError, HandlerError, NotificationError};
use crate::event::{ConnectionEvent, EventHub};
use crate::handler::{NotificationHandler, ReplySender, default_app_reply};
use crate::window::{CommandWindow, as_handler};

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
    window: Arc<CommandWindow>,
}

/// Aborts the handler task if the responder future is dropped before the reply (the server
/// cancelled, the connection closed, or the timeout), so its permit is released.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl AbortOnDrop {
    /// The handler replied: let it finish its work.
    fn detach(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl Dispatcher {
    pub(crate) fn new(
        role: Role,
        handler: Arc<dyn NotificationHandler>,
        max_concurrent: usize,
        timeout: Duration,
        events: Arc<EventHub>,
        window: Arc<CommandWindow>,
    ) -> Self {
        Dispatcher {
            role,
            handler,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            timeout,
            events,
            window,
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
            .run_guarded(move |reply| {
                handler.handle_app_notification(notification, ReplySender::new(reply))
            })
            .await
            .unwrap_or(default);
        Ok(Bytes::from(reply.encode_to_vec()))
    }

    async fn handle_simulator(&self, data: Bytes) -> Result<Bytes, DispatchError> {
        let notification = self.decode::<ServerToSimulatorNotification>(data)?;
        let handler = self.handler.clone();
        // The reply is empty whatever happens, sent once the handler finished (so that a slow
        // simulator slows the server down); failures only produce an error event.
        let _ = self
            .run_guarded(move |done: oneshot::Sender<()>| {
                let call = handler.on_simulator_notification(notification);
                Box::pin(async move {
                    call.await?;
                    let _ = done.send(());
                    Ok(())
                })
            })
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

    /// Runs a handler call in one task holding one permit, and waits (within the timeout) for
    /// the reply it sends through the channel it is given. `None` means "send the default
    /// reply" (a failure was reported as an event).
    async fn run_guarded<T, F>(&self, call: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(oneshot::Sender<T>) -> BoxFuture<'static, Result<(), HandlerError>>
            + Send
            + 'static,
    {
        if self.window.handlers_waiting() {
            // Handlers' commands wait for the window: start no new handler until they are
            // sent. Bounded, so that a notification never waits here past what the server
            // allows for its answer.
            let _ = tokio::time::timeout(self.timeout, self.window.handlers_drained()).await;
        }
        // The semaphore is never closed, so acquiring only fails if that invariant breaks; the
        // default reply is the safe answer then.
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let events = self.events.clone();
        // The handler is called inside the task (and inside `catch_unwind`) so that a panic
        // while building its future is contained too; the task reports its own failures, since
        // it may outlive the reply.
        let task = AbortOnDrop(Some(tokio::spawn(as_handler(async move {
            let _permit = permit;
            let run = AssertUnwindSafe(async move { call(reply_tx).await })
                .catch_unwind()
                .await;
            let error = match run {
                Ok(Ok(())) => return,
                Ok(Err(error)) => NotificationError::HandlerFailed {
                    message: error.message().to_owned(),
                },
                Err(panic) => NotificationError::HandlerPanicked {
                    message: panic_message(panic),
                },
            };
            report(&events, error);
        }))));
        match tokio::time::timeout(self.timeout, reply_rx).await {
            Ok(Ok(reply)) => {
                task.detach();
                Some(reply)
            }
            // The handler ended without replying (done, failed or panicked: reported by its
            // task).
            Ok(Err(_)) => {
                task.detach();
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
        report(&self.events, error);
    }
}

fn report(events: &EventHub, error: NotificationError) {
    events.emit(ConnectionEvent::Error(ClientError::Notification(error)));
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
        let events = Arc::new(EventHub::new());
        let stream = events.subscribe();
        (
            Dispatcher::new(
                Role::App,
                handler,
                4,
                Duration::from_secs(5),
                events,
                Arc::new(CommandWindow::new(8)),
            ),
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

    /// Replies at once, then works until the gate opens; counts how many run at once.
    struct ReplyThenWork {
        running: Arc<std::sync::atomic::AtomicUsize>,
        most: Arc<std::sync::atomic::AtomicUsize>,
        gate: tokio::sync::watch::Receiver<bool>,
        panic_after_reply: bool,
    }
    impl NotificationHandler for ReplyThenWork {
        fn handle_app_notification(
            &self,
            notification: ServerToAppNotification,
            reply: ReplySender,
        ) -> BoxFuture<'static, Result<(), HandlerError>> {
            use std::sync::atomic::Ordering::SeqCst;
            let (running, most, mut gate) =
                (self.running.clone(), self.most.clone(), self.gate.clone());
            let panic_after_reply = self.panic_after_reply;
            Box::pin(async move {
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                reply.send(default_app_reply(&notification));
                if panic_after_reply {
                    panic!("late bug");
                }
                let _ = gate.wait_for(|open| *open).await;
                running.fetch_sub(1, SeqCst);
                Ok(())
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handlers_still_working_after_their_reply_hold_their_permit() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let handler = ReplyThenWork {
            running: running.clone(),
            most: most.clone(),
            gate,
            panic_after_reply: false,
        };
        // Four permits (see `dispatcher`).
        let (dispatcher, _events) = dispatcher(Arc::new(handler));
        let dispatcher = Arc::new(dispatcher);
        let wire = Bytes::from(customer_notification("{}").encode_to_vec());
        let replies: Vec<_> = (0..6)
            .map(|_| {
                let (dispatcher, wire) = (dispatcher.clone(), wire.clone());
                tokio::spawn(async move { dispatcher.handle(wire).await })
            })
            .collect();
        while running.load(SeqCst) < 4 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(running.load(SeqCst), 4, "the fifth waits for a permit");
        release.send(true).unwrap();
        for reply in replies {
            reply.await.unwrap().unwrap();
        }
        assert_eq!(most.load(SeqCst), 4);
    }

    #[tokio::test]
    async fn a_panic_after_the_reply_keeps_the_reply_and_is_reported() {
        use futures_util::StreamExt;
        let (_release, gate) = tokio::sync::watch::channel(false);
        let handler = ReplyThenWork {
            running: Arc::default(),
            most: Arc::default(),
            gate,
            panic_after_reply: true,
        };
        let (dispatcher, mut events) = dispatcher(Arc::new(handler));
        let notification = customer_notification("{\"n\":2}");
        let reply = dispatcher
            .handle(Bytes::from(notification.encode_to_vec()))
            .await
            .unwrap();
        let reply = ServerToAppNotificationReply::decode(reply).unwrap();
        assert_eq!(reply, default_app_reply(&notification));
        let event = events.next().await;
        assert!(
            matches!(
                &event,
                Some(ConnectionEvent::Error(ClientError::Notification(
                    NotificationError::HandlerPanicked { message }
                ))) if message.contains("late bug")
            ),
            "{event:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_new_notification_starts_while_handler_commands_wait_for_the_window() {
        let window = Arc::new(CommandWindow::new(1));
        let events = Arc::new(EventHub::new());
        let dispatcher = Dispatcher::new(
            Role::App,
            Arc::new(()),
            4,
            Duration::from_secs(5),
            events,
            window.clone(),
        );
        let far = tokio::time::Instant::now() + Duration::from_secs(60);
        let held = window.acquire(far).await.unwrap();
        // A handler's command waits for the only slot.
        let waiting = tokio::spawn({
            let window = window.clone();
            async move {
                as_handler(async {
                    let _slot = window.acquire(far).await.unwrap();
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(window.handlers_waiting());
        let wire = Bytes::from(customer_notification("{}").encode_to_vec());
        let mut answer = std::pin::pin!(dispatcher.handle(wire));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), answer.as_mut())
                .await
                .is_err(),
            "the notification waits while the handler's command does"
        );
        drop(held);
        waiting.await.unwrap();
        assert!(answer.await.is_ok());
    }
}
