//! Routing of app notifications to handlers or to the notification stream.
//!
//! Order of precedence for each notification: the handler registered for its event (typed
//! `on_<event>` or [`Elarian::on`](crate::Elarian::on)); otherwise the notification stream, if one
//! is open; otherwise the default reply. Each notification runs in the runtime's one task per
//! notification, so a handler may keep working after it replied (still holding its permit);
//! the runtime's notification timeout bounds the wait for the reply.

use std::sync::{Arc, Weak};

use elarian_core::{BoxFuture, HandlerError, NotificationHandler, ReplySender, default_app_reply};
use elarian_proto as proto;

use crate::client::{Elarian, Inner};
use crate::customer::Customer;
use crate::handlers::{HandlerRegistry, Unclaimed};
use crate::models::{AppEvent, DataValue, DecodedNotification, Notification};
use crate::responder::Responder;

/// Capacity of the notification stream; past it notifications get the default reply.
pub(crate) const STREAM_CAPACITY: usize = 256;

/// A handler with its types erased: the typed `on_<event>` methods wrap user closures in this.
pub(crate) type ErasedHandler = Arc<
    dyn Fn(Notification, Option<Customer>, Option<DataValue>, Responder) -> BoxFuture<'static, ()>
        + Send
        + Sync
        + 'static,
>;

/// A notification delivered through [`Elarian::notifications`](crate::Elarian::notifications).
#[derive(Debug)]
pub struct IncomingNotification {
    /// The typed notification.
    pub notification: Notification,
    /// The customer it concerns (`None` for purse notifications).
    pub customer: Option<Customer>,
    /// The customer's app data as the server sent it.
    pub app_data: Option<DataValue>,
    /// Answers the server; dropping it sends the default reply.
    pub responder: Responder,
}

/// The app's handlers by event and its stream of unhandled notifications.
pub(crate) type Registry = HandlerRegistry<AppEvent, ErasedHandler, IncomingNotification>;

/// The core runtime's notification handler for an [`Elarian`] app.
///
/// The runtime runs each notification in one task holding one permit (see
/// `elarian_core`'s dispatch): the handler's future runs in that task, replies through the
/// [`Responder`] (which carries the runtime's [`ReplySender`]) and may go on working after
/// the reply, still counted against `max_concurrent_notifications`. Panics and timeouts are
/// reported by the runtime on the one event path.
pub(crate) struct AppDispatch {
    pub(crate) registry: Arc<Registry>,
    pub(crate) app: Weak<Inner>,
}

fn customer_for(app: &Elarian, notification: &Notification) -> Option<Customer> {
    let context = notification.context();
    let number = notification
        .customer_number()
        .filter(|n| !n.number.is_empty())
        .cloned();
    if context.customer_id.is_none() && number.is_none() {
        return None;
    }
    Some(Customer::from_parts(
        app.clone(),
        context.customer_id.clone(),
        number,
        None,
    ))
}

impl NotificationHandler for AppDispatch {
    fn handle_app_notification(
        &self,
        notification: proto::ServerToAppNotification,
        reply: ReplySender,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let default = default_app_reply(&notification);
        let decoded = match DecodedNotification::try_from(notification) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(%error, "notification not understood; sending the default reply");
                reply.send(default);
                return Box::pin(async { Ok(()) });
            }
        };
        let Some(inner) = self.app.upgrade() else {
            reply.send(default);
            return Box::pin(async { Ok(()) });
        };
        let app = Elarian::from_inner(inner);
        let customer = customer_for(&app, &decoded.notification);
        let event = decoded.notification.event();
        let responder = Responder::new(reply, default);
        tracing::debug!(%event, "notification received");

        if let Some(handler) = self.registry.handler(event) {
            let handler = handler(decoded.notification, customer, decoded.app_data, responder);
            return Box::pin(async move {
                handler.await;
                Ok(())
            });
        }

        let incoming = IncomingNotification {
            notification: decoded.notification,
            customer,
            app_data: decoded.app_data,
            responder,
        };
        // An unclaimed notification is dropped with its responder, which sends the default reply.
        match self.registry.offer(incoming) {
            Ok(()) => {}
            Err(Unclaimed::StreamFull(_)) => {
                tracing::warn!(%event, "notification stream full; sending the default reply");
            }
            Err(Unclaimed::NoStream(_)) => {
                tracing::debug!(%event, "no handler registered; sending the default reply");
            }
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::encode;
    use crate::models::{
        CustomerNumber, MessagingChannel, MessagingChannelNumber, NotificationContext, UssdInput,
        UssdMenu, UssdSessionNotification,
    };
    use crate::{ClientConfig, Message};
    use futures_util::StreamExt;

    fn app() -> Elarian {
        Elarian::new(
            ClientConfig::builder()
                .org_id("org")
                .app_id("app")
                .api_key("key")
                .endpoint_url("tcp://127.0.0.1:1"),
        )
        .expect("valid config")
    }

    fn dispatch(app: &Elarian) -> AppDispatch {
        app.dispatcher()
    }

    type Answer = (
        Option<proto::ServerToAppNotificationReply>,
        tokio::task::JoinHandle<Result<(), HandlerError>>,
    );

    /// Runs a notification as the runtime does: the handler in one task, the reply through a
    /// [`ReplySender`]. `None`: the handler ended (or panicked) without replying.
    async fn answer(app: Elarian, notification: proto::ServerToAppNotification) -> Answer {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(
            dispatch(&app).handle_app_notification(notification, ReplySender::new(tx)),
        );
        (rx.await.ok(), task)
    }

    async fn reply_to(
        app: &Elarian,
        notification: proto::ServerToAppNotification,
    ) -> proto::ServerToAppNotificationReply {
        answer(app.clone(), notification).await.0.expect("reply")
    }

    fn ussd_notification() -> proto::ServerToAppNotification {
        encode(DecodedNotification {
            notification: Notification::UssdSession(UssdSessionNotification {
                context: NotificationContext {
                    org_id: "org".into(),
                    app_id: "app".into(),
                    customer_id: Some("el_cst_1".into()),
                    ..Default::default()
                },
                message_id: "m".into(),
                customer_number: CustomerNumber::cellular("+254700000000"),
                channel_number: MessagingChannelNumber::new("*83044#", MessagingChannel::Ussd),
                session_id: Some("s".into()),
                input: UssdInput::default(),
            }),
            app_data: Some(DataValue::string("incoming")),
        })
    }

    fn incoming_data() -> Option<proto::AppDataUpdate> {
        Some(proto::AppDataUpdate {
            data: Some(DataValue::string("incoming").into()),
        })
    }

    #[tokio::test]
    async fn a_registered_handler_answers_with_its_message_and_customer() {
        let app = app();
        app.on_ussd_session(|_n, customer, _data, responder| async move {
            assert_eq!(customer.id().as_deref(), Some("el_cst_1"));
            responder.reply(Some(UssdMenu::terminal("bye")), None);
        });
        let reply = reply_to(&app, ussd_notification()).await;
        assert_eq!(
            reply.message,
            Some(Message::ussd(UssdMenu::terminal("bye")).into())
        );
        assert_eq!(reply.data_update, incoming_data());
    }

    #[tokio::test]
    async fn without_a_handler_the_stream_gets_the_notification_and_its_responder() {
        let app = app();
        let mut stream = app.notifications();
        let reply = tokio::spawn(answer(app.clone(), ussd_notification()));
        let incoming = stream.next().await.expect("delivered to the stream");
        assert_eq!(incoming.notification.event(), AppEvent::UssdSession);
        assert_eq!(incoming.app_data, Some(DataValue::string("incoming")));
        incoming
            .responder
            .reply(Some(Message::text("hi")), Some(DataValue::string("new")));
        let reply = reply.await.expect("joined").0.expect("reply");
        assert_eq!(reply.message, Some(Message::text("hi").into()));
        assert_eq!(
            reply.data_update,
            Some(proto::AppDataUpdate {
                data: Some(DataValue::string("new").into())
            })
        );
    }

    #[tokio::test]
    async fn without_handler_or_stream_the_default_reply_keeps_app_data() {
        let app = app();
        let reply = reply_to(&app, ussd_notification()).await;
        assert_eq!(reply.message, None);
        assert_eq!(reply.data_update, incoming_data());

        // A dropped stream no longer takes notifications.
        drop(app.notifications());
        let reply = reply_to(&app, ussd_notification()).await;
        assert_eq!(reply.data_update, incoming_data());
    }

    #[tokio::test]
    async fn empty_notifications_get_the_default_reply() {
        let app = app();
        let reply = reply_to(&app, proto::ServerToAppNotification { entry: None }).await;
        assert_eq!(reply, proto::ServerToAppNotificationReply::default());
    }

    #[tokio::test]
    async fn a_handler_panicking_before_replying_leaves_the_reply_to_the_runtime() {
        let app = app();
        app.on_ussd_session(|_n, _customer, _data, responder| async move {
            let _held = responder;
            panic!("handler bug");
        });
        let (reply, task) = answer(app.clone(), ussd_notification()).await;
        // No reply: the runtime sends the default one and reports the panic it caught.
        assert_eq!(reply, None);
        assert!(
            task.await
                .expect_err("the panic reaches the task")
                .is_panic()
        );
    }

    #[tokio::test]
    async fn a_handler_panicking_after_replying_keeps_its_reply() {
        let app = app();
        app.on_ussd_session(|_n, _customer, data, responder| async move {
            responder.reply(None, data);
            panic!("late bug");
        });
        let (reply, task) = answer(app.clone(), ussd_notification()).await;
        assert_eq!(reply.expect("the reply went out").message, None);
        assert!(
            task.await
                .expect_err("the runtime's task sees the panic")
                .is_panic()
        );
    }

    #[test]
    fn app_objects_and_their_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let app = app();
        send_sync(&app);
        let customer = app.customer(CustomerNumber::cellular("+254700000000"));
        send_sync(&customer);
        send(customer.get_state());
        send(app.connect());
        send(app.generate_auth_token());
    }

    #[test]
    fn customers_get_the_number_their_notification_carries() {
        let app = app();
        let mut without_number = Vec::new();
        for notification in crate::models::notifications::tests::every_notification() {
            let Some(customer) = customer_for(&app, &notification) else {
                continue;
            };
            let carried = notification.customer_number();
            assert_eq!(customer.number(), carried, "{:?}", notification.event());
            assert_eq!(customer.id(), notification.context().customer_id);
            if carried.is_none() {
                without_number.push(notification.event());
            }
        }
        // These resolve the number from the customer's state when a command needs it.
        without_number.sort_by_key(|e| e.to_string());
        assert_eq!(
            without_number,
            vec![
                AppEvent::MessageStatus,
                AppEvent::PaymentStatus,
                AppEvent::Reminder
            ]
        );
    }

    #[tokio::test]
    async fn every_event_reaches_its_typed_handler() {
        let app = app();
        let (seen, mut ran) = tokio::sync::mpsc::unbounded_channel();
        macro_rules! register {
            ($($method:ident => $event:ident),+ $(,)?) => {$(
                let tx = seen.clone();
                app.$method(move |notification, _customer, app_data, responder| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(Notification::$event(notification));
                        responder.reply(None, app_data);
                    }
                });
            )+};
        }
        register!(
            on_reminder => Reminder,
            on_messaging_session_started => MessagingSessionStarted,
            on_messaging_session_renewed => MessagingSessionRenewed,
            on_messaging_session_ended => MessagingSessionEnded,
            on_messaging_consent_update => MessagingConsentUpdate,
            on_received_sms => ReceivedSms,
            on_received_fb_messenger => ReceivedFbMessenger,
            on_received_telegram => ReceivedTelegram,
            on_received_whatsapp => ReceivedWhatsapp,
            on_received_email => ReceivedEmail,
            on_voice_call => VoiceCall,
            on_ussd_session => UssdSession,
            on_message_status => MessageStatus,
            on_sent_message_reaction => SentMessageReaction,
            on_received_payment => ReceivedPayment,
            on_payment_status => PaymentStatus,
            on_customer_activity => CustomerActivity,
        );
        for notification in crate::models::notifications::tests::every_notification() {
            let wire = DecodedNotification {
                notification: notification.clone(),
                app_data: None,
            };
            reply_to(&app, encode(wire)).await;
            let handled = tokio::time::timeout(std::time::Duration::from_secs(10), ran.recv())
                .await
                .expect("handler ran in time")
                .expect("handler ran");
            assert_eq!(handled, notification);
        }
        assert!(ran.try_recv().is_err(), "one handler per notification");
    }
}
