//! End-to-end tests of a `WireClient` with its own notification handler, against an in-process
//! emulator: raw commands out, raw notifications in, across a disconnect and a reconnect.

// This binary needs the shared emulator setup but not its typed app.
#[allow(dead_code)]
mod common;

use std::time::{Duration, SystemTime};

use common::{WAIT, config, emulator, unique_number};
use elarian_sdk::proto::{self, app_to_server_command, server_to_app_customer_notification};
use elarian_sdk::{
    BoxFuture, ConnectionEvent, ConnectionEvents, CustomerNumber, HandlerError,
    NotificationHandler, Reminder, ReplySender, Role, WireClient,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// Forwards every app notification, answered with the default reply.
struct Record {
    seen: mpsc::UnboundedSender<proto::ServerToAppNotification>,
}

impl NotificationHandler for Record {
    fn handle_app_notification(
        &self,
        notification: proto::ServerToAppNotification,
        reply: ReplySender,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        reply.send(keep_app_data(&notification));
        let _ = self.seen.send(notification);
        Box::pin(async { Ok(()) })
    }
}

/// The reply that keeps the customer's app data, as the runtime's default does.
fn keep_app_data(
    notification: &proto::ServerToAppNotification,
) -> proto::ServerToAppNotificationReply {
    let data_update = match &notification.entry {
        Some(proto::server_to_app_notification::Entry::Customer(c)) => c
            .app_data
            .clone()
            .map(|data| proto::AppDataUpdate { data: Some(data) }),
        _ => None,
    };
    proto::ServerToAppNotificationReply {
        message: None,
        data_update,
    }
}

fn add_reminder(number: &str, key: &str) -> proto::AppToServerCommand {
    proto::AppToServerCommand {
        entry: Some(app_to_server_command::Entry::AddCustomerReminder(
            proto::AddCustomerReminderCommand {
                customer: Some(
                    proto::add_customer_reminder_command::Customer::CustomerNumber(
                        CustomerNumber::cellular(number).into(),
                    ),
                ),
                reminder: Some(
                    Reminder::new(key, SystemTime::now() + Duration::from_millis(200)).into(),
                ),
            },
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_commands_and_notifications_survive_a_reconnect() {
    let server = emulator().await;
    let wire = WireClient::new(config(&server), Role::App).expect("valid config");
    assert!(!wire.is_connected());
    assert!(wire.flow_stats().is_none(), "no client before connect");
    let mut events = wire.connection_events();
    let (seen, mut notifications) = mpsc::unbounded_channel();

    for round in ["first", "second"] {
        let handler = Record { seen: seen.clone() };
        tokio::time::timeout(WAIT, wire.connect(handler))
            .await
            .expect("connect within the bound")
            .expect("connects");
        assert!(wire.is_connected());
        loop {
            let event = tokio::time::timeout(WAIT, events.next())
                .await
                .expect("an event in time")
                .expect("the stream outlives connections");
            if event == ConnectionEvent::Connected {
                break;
            }
        }

        let client = wire.client().expect("connected");
        let reply = tokio::time::timeout(
            WAIT,
            client.send_app_command(add_reminder(&unique_number(), round)),
        )
        .await
        .expect("reply in time")
        .expect("the command is answered");
        assert!(
            matches!(
                reply.entry,
                Some(proto::app_to_server_command_reply::Entry::UpdateCustomerAppData(_))
                    | Some(proto::app_to_server_command_reply::Entry::UpdateCustomerState(_))
            ),
            "{reply:?}"
        );
        // Delivery is at least once: a reminder of an earlier round whose reply had not reached
        // the server when the client disconnected comes again after the reconnect.
        loop {
            let notification = tokio::time::timeout(WAIT, notifications.recv())
                .await
                .expect("the reminder fires in time")
                .expect("the handler forwarded it");
            let Some(proto::server_to_app_notification::Entry::Customer(customer)) =
                notification.entry
            else {
                panic!("a customer notification: {notification:?}");
            };
            let Some(server_to_app_customer_notification::Entry::Reminder(reminder)) =
                customer.entry
            else {
                panic!("a reminder: {customer:?}");
            };
            let key = reminder.reminder.map(|r| r.key).unwrap_or_default();
            if key == round {
                break;
            }
            assert!(
                round == "second" && key == "first",
                "unexpected reminder {key:?} in round {round:?}"
            );
        }

        wire.disconnect().await;
        assert!(!wire.is_connected());
    }
    server.shutdown().await;
}
