//! The application's side of notifications.

use std::sync::Arc;

use elarian_proto::{
    AppDataUpdate, ServerToAppNotification, ServerToAppNotificationReply,
    ServerToSimulatorNotification, server_to_app_notification,
};
use futures_util::future::BoxFuture;

use crate::error::HandlerError;

/// Answers the notifications the server sends on a connection.
///
/// App connections receive [`ServerToAppNotification`]s, simulator connections receive
/// [`ServerToSimulatorNotification`]s. Both methods have defaults, so a handler implements only
/// the one its role needs; `()` is the handler that answers everything with the default reply.
///
/// The runtime runs each call in its own task, so a handler that panics, fails or exceeds the
/// notification timeout costs one notification (answered with [`default_app_reply`]), never the
/// connection. At most `max_concurrent_notifications` calls run at once.
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
