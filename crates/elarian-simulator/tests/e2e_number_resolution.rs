//! End-to-end tests of customers known only by id (as reminder and status handlers get them)
//! running commands that address the customer by number, against an in-process emulator with a
//! simulator playing the customer's phone.

mod common;

use std::time::{Duration, SystemTime};

use common::{WAIT, app, emulator, unique_number};
use elarian_emulator::EmulatorHandle;
use elarian_emulator::config::{TEST_SMS_SHORT_CODE, TEST_VOICE_NUMBER};
use elarian_sdk::{
    Activity, ConsentAction, CustomerNumber, Message, MessageBody, MessagingChannel,
    MessagingChannelNumber, Reminder, Tag,
};
use elarian_simulator::{SendMessageNotification, Simulator};
use tokio::sync::mpsc;

fn sms() -> MessagingChannelNumber {
    MessagingChannelNumber::new(TEST_SMS_SHORT_CODE, MessagingChannel::Sms)
}

/// A connected simulator and the messages the app sends to its customers.
async fn simulator(
    server: &EmulatorHandle,
) -> (Simulator, mpsc::Receiver<SendMessageNotification>) {
    let simulator = common::simulator(server).await;
    let (seen, messages) = mpsc::channel(8);
    simulator.on_send_message(move |notification| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(notification).await;
        }
    });
    (simulator, messages)
}

async fn next_message(
    messages: &mut mpsc::Receiver<SendMessageNotification>,
) -> SendMessageNotification {
    tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("delivered in time")
        .expect("simulator handler ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_handler_can_text_a_customer_known_only_by_id() {
    let server = emulator().await;
    let (simulator, mut messages) = simulator(&server).await;
    let app = app(&server).await;
    let (outcome, mut outcomes) = mpsc::channel(4);
    app.on_reminder(move |notification, customer, app_data, responder| {
        let outcome = outcome.clone();
        async move {
            responder.reply(None, app_data);
            let number_before = customer.number().cloned();
            let text = notification.reminder.payload.unwrap_or_default();
            let sent = customer.send_message(sms(), Message::text(text)).await;
            let _ = outcome
                .send((number_before, sent, customer.number().cloned()))
                .await;
        }
    });
    let number = unique_number();
    app.customer(CustomerNumber::cellular(&number))
        .add_reminder(
            Reminder::new("due", SystemTime::now() + Duration::from_millis(300))
                .with_payload("Your loan is due"),
        )
        .await
        .expect("reminder set");

    let (number_before, sent, number_after) = tokio::time::timeout(WAIT, outcomes.recv())
        .await
        .expect("the reminder fires in time")
        .expect("handler ran");
    // Reminders carry no number: the handler's customer learnt it from the state.
    assert_eq!(number_before, None);
    let sent = sent.expect("the message is sent");
    assert!(sent.is_success(), "{sent:?}");
    assert_eq!(number_after, Some(CustomerNumber::cellular(&number)));

    let delivered = next_message(&mut messages).await;
    assert_eq!(delivered.customer_number.number, number);
    assert_eq!(delivered.channel_number, sms());
    assert_eq!(
        delivered.message.body,
        Some(MessageBody::Text("Your loan is due".into()))
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_number_matching_the_channel_is_used_and_shared_by_clones() {
    let server = emulator().await;
    let (simulator, mut messages) = simulator(&server).await;
    let app = app(&server).await;

    // One customer with a phone number and a Telegram account.
    let phone = unique_number();
    let telegram = format!("tg{phone}");
    let owner = app.customer(CustomerNumber::cellular(&phone));
    let other = app.customer(CustomerNumber::telegram(&telegram));
    for customer in [&owner, &other] {
        customer
            .update_tags(vec![Tag::new("source", "test")])
            .await
            .expect("customer created");
    }
    owner
        .adopt_state(&other)
        .await
        .expect("the Telegram customer is merged in");
    let id = owner.id().expect("id learnt");

    let by_id = app.customer_by_id(&id);
    let clone = by_id.clone();
    let telegram_channel =
        MessagingChannelNumber::new(TEST_VOICE_NUMBER, MessagingChannel::Telegram);
    let sent = by_id
        .send_message(telegram_channel.clone(), Message::text("on Telegram"))
        .await
        .expect("sent on Telegram");
    assert!(sent.is_success(), "{sent:?}");
    let delivered = next_message(&mut messages).await;
    assert_eq!(delivered.customer_number.number, telegram);
    assert_eq!(delivered.channel_number, telegram_channel);

    // The clone uses what the first read learnt, and picks the phone number for SMS.
    assert!(
        clone.number().is_some(),
        "the clone shares the learnt numbers"
    );
    let sent = clone
        .send_message(sms(), Message::text("by SMS"))
        .await
        .expect("sent by SMS");
    assert!(sent.is_success(), "{sent:?}");
    let delivered = next_message(&mut messages).await;
    assert_eq!(delivered.customer_number.number, phone);

    // Consent and activity resolve the number the same way.
    clone
        .update_messaging_consent(sms(), ConsentAction::Allow)
        .await
        .expect("consent updated");
    clone
        .update_activity("web", "session-1", Activity::new("login"))
        .await
        .expect("activity recorded");
    let state = owner.get_state().await.expect("state");
    assert!(
        state
            .activity
            .sessions
            .iter()
            .any(|s| s.session_id == "session-1"),
        "{:?}",
        state.activity
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}
