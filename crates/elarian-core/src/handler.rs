//! The application's side of notifications.

use std::sync::Arc;

use elarian_proto::{
    AppDataUpdate, ServerToAppNotification, ServerToAppNotificationReply,
    ServerToSimulatorNotification, server_to_app_notification,
};
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use crate::error::HandlerError;

/// Where the reply to one app notification goes: a handler that answers through it may keep
/// working after it replied (see [`NotificationHandler::handle_app_notification`]).
///
/// Dropping it unsent makes the runtime send [`default_app_reply`].
#[derive(Debug)]
pub struct ReplySender {
    sender: oneshot::Sender<ServerToAppNotificationReply>,
}

impl ReplySender {
    /// A sender whose reply arrives at `sender`'s receiver (the runtime makes its own; this is
    /// for tests and wrappers of handlers).
    pub fn new(sender: oneshot::Sender<ServerToAppNotificationReply>) -> Self {
        ReplySender { sender }
    }

    /// Sends the reply. Returns false when nobody waits for it any more (the notification
    /// timed out, or the server cancelled it).
    pub fn send(self, reply: ServerToAppNotificationReply) -> bool {
        self.sender.send(reply).is_ok()
    }

    /// Whether nobody waits for the reply any more.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// Answers the notifications the server sends on a connection.
///
/// App connections receive [`ServerToAppNotification`]s, simulator connections receive
/// [`ServerToSimulatorNotification`]s. Both methods have defaults, so a handler implements only
/// the one its role needs; `()` is the handler that answers everything with the default reply.
///
/// The runtime runs each call in its own task (one task and one permit per notification), so a
/// handler that panics, fails or exceeds the notification timeout costs one notification
/// (answered with [`default_app_reply`]), never the connection. At most
/// `max_concurrent_notifications` calls run at once; the commands a call sends go before other
/// commands waiting for the client's window of commands in flight.
///
/// ```
/// use elarian_core::{HandlerError, NotificationHandler};
/// use elarian_core::proto::{ServerToAppNotification, ServerToAppNotificationReply};
/// use elarian_core::BoxFuture;
///
/// struct Logger;
///
/// impl NotificationHandler for Logger {
///     fn on_app_notification(
///         &self,
///         notification: ServerToAppNotification,
///     ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
///         Box::pin(async move {
///             println!("notification: {notification:?}");
///             Ok(elarian_core::default_app_reply(&notification))
///         })
///     }
/// }
/// ```
pub trait NotificationHandler: Send + Sync + 'static {
    /// Answers a notification on an app connection. The default keeps the customer's app data
    /// unchanged and sends no message.
    fn on_app_notification(
        &self,
        notification: ServerToAppNotification,
    ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
        let reply = default_app_reply(&notification);
        Box::pin(async move { Ok(reply) })
    }

    /// Answers a notification on an app connection through `reply`, and may go on working after
    /// it replied: the runtime sends the reply as soon as it is sent, and counts the call against
    /// `max_concurrent_notifications` until the returned future ends. The reply must come within
    /// the notification timeout (else the default reply goes out and the call is stopped); the
    /// work after it is not bounded in time.
    ///
    /// This is what the runtime calls. The default runs
    /// [`on_app_notification`](Self::on_app_notification) and sends its result.
    fn handle_app_notification(
        &self,
        notification: ServerToAppNotification,
        reply: ReplySender,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let call = self.on_app_notification(notification);
        Box::pin(async move {
            reply.send(call.await?);
            Ok(())
        })
    }

    /// Handles a notification on a simulator connection (the reply is always empty). The default
    /// ignores it.
    fn on_simulator_notification(
        &self,
        notification: ServerToSimulatorNotification,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        drop(notification);
        Box::pin(async { Ok(()) })
    }
}

/// No handler: every notification gets the default reply.
impl NotificationHandler for () {}

impl<T: NotificationHandler + ?Sized> NotificationHandler for Arc<T> {
    fn on_app_notification(
        &self,
        notification: ServerToAppNotification,
    ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
        (**self).on_app_notification(notification)
    }

    fn handle_app_notification(
        &self,
        notification: ServerToAppNotification,
        reply: ReplySender,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        (**self).handle_app_notification(notification, reply)
    }

    fn on_simulator_notification(
        &self,
        notification: ServerToSimulatorNotification,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        (**self).on_simulator_notification(notification)
    }
}

/// The reply sent when the handler does not answer: the customer's app data as it came in
/// (so the server keeps it unchanged) and no message, as the published clients do.
///
/// Purse notifications carry no app data and get an empty reply.
pub fn default_app_reply(notification: &ServerToAppNotification) -> ServerToAppNotificationReply {
    let data_update = match &notification.entry {
        Some(server_to_app_notification::Entry::Customer(customer)) => customer
            .app_data
            .clone()
            .map(|data| AppDataUpdate { data: Some(data) }),
        Some(server_to_app_notification::Entry::Purse(_)) | None => None,
    };
    ServerToAppNotificationReply {
        data_update,
        message: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elarian_proto::{DataMapValue, ServerToAppCustomerNotification, data_map_value};

    #[test]
    fn default_reply_carries_app_data_unchanged() {
        let app_data = DataMapValue {
            value: Some(data_map_value::Value::StringVal("{\"step\":2}".into())),
        };
        let notification = ServerToAppNotification {
            entry: Some(server_to_app_notification::Entry::Customer(
                ServerToAppCustomerNotification {
                    app_data: Some(app_data.clone()),
                    ..Default::default()
                },
            )),
        };
        let reply = default_app_reply(&notification);
        assert_eq!(reply.data_update.and_then(|u| u.data), Some(app_data));
        assert!(reply.message.is_none());
        assert_eq!(
            default_app_reply(&ServerToAppNotification::default()),
            ServerToAppNotificationReply::default()
        );
    }
}
