//! End-to-end tests of an app and a simulator talking through an in-process emulator over TCP.

mod common;

use common::{WAIT, app, emulator, simulator, unique_number};
use elarian_emulator::config::{
    TEST_PAYMENT_CHANNEL, TEST_PURSE_ID, TEST_SMS_SHORT_CODE, TEST_USSD_CODE, TEST_VOICE_NUMBER,
};
use elarian_sdk::{
    Cash, ConnectionEvents, CustomerNumber, DataValue, InboundMessageBody, Message, MessageBody,
    MessagingChannel, MessagingChannelNumber, PaymentChannel, PaymentChannelNumber,
    PaymentCounterParty, PaymentStatus, Say, UssdInput, UssdMenu, UssdSessionStatus, VoiceAction,
};
use elarian_simulator::{SimulatorEvent, SimulatorNotification};
use futures_util::StreamExt;
use tokio::sync::mpsc;

fn payment_channel() -> PaymentChannelNumber {
    PaymentChannelNumber::new(TEST_PAYMENT_CHANNEL, PaymentChannel::Cellular)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_reaches_the_simulator() {
    let server = emulator().await;
    let simulator = simulator(&server).await;
    let (seen, mut messages) = mpsc::channel(4);
    simulator.on_send_message(move |notification| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(notification).await;
        }
    });
    let app = app(&server).await;
    let number = unique_number();
    let sms = MessagingChannelNumber::new(TEST_SMS_SHORT_CODE, MessagingChannel::Sms);
    let reply = app
        .customer(CustomerNumber::cellular(&number))
        .send_message(sms.clone(), Message::text("Your balance is KES 10"))
        .await
        .expect("sent");
    assert!(reply.is_success(), "{reply:?}");

    let delivered = tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("delivered in time")
        .expect("handler ran");
    assert_eq!(delivered.customer_number.number, number);
    assert_eq!(delivered.channel_number, sms);
    assert_eq!(
        delivered.message.body,
        Some(MessageBody::Text("Your balance is KES 10".into()))
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ussd_dial_reaches_ussd_session_and_the_menu_comes_back() {
    let server = emulator().await;
    let app = app(&server).await;
    let (data_seen, mut data_at_steps) = mpsc::channel(4);
    app.on_ussd_session(move |notification, _customer, app_data, responder| {
        let data_seen = data_seen.clone();
        async move {
            let menu = match notification.input.text.as_deref() {
                None | Some("") => UssdMenu::new("1. Balance\n2. Quit"),
                Some("1") => UssdMenu::terminal("Balance: KES 10"),
                Some(other) => UssdMenu::terminal(format!("Unknown choice {other}")),
            };
            let _ = data_seen.send(app_data).await;
            let step = DataValue::Json(serde_json::json!({"last": notification.input.text}));
            responder.reply(Some(menu), Some(step));
        }
    });
    let simulator = simulator(&server).await;
    let number = unique_number();
    let ussd = MessagingChannelNumber::new(TEST_USSD_CODE, MessagingChannel::Ussd);
    let dial = |text: Option<&str>| {
        vec![InboundMessageBody::Ussd(UssdInput {
            text: text.map(str::to_string),
            status: UssdSessionStatus::Active,
        })]
    };

    let first = simulator
        .receive_message(&number, ussd.clone(), "ussd-session-1", dial(None))
        .await
        .expect("dialled");
    assert_eq!(
        first.message.and_then(|m| m.body),
        Some(MessageBody::Ussd(UssdMenu::new("1. Balance\n2. Quit")))
    );
    let second = simulator
        .receive_message(&number, ussd, "ussd-session-1", dial(Some("1")))
        .await
        .expect("answered");
    assert_eq!(
        second.message.and_then(|m| m.body),
        Some(MessageBody::Ussd(UssdMenu::terminal("Balance: KES 10")))
    );

    // The app data the handler replied with at the first step came back with the second.
    let first_data = data_at_steps.recv().await.expect("first step ran");
    let second_data = data_at_steps.recv().await.expect("second step ran");
    assert_eq!(first_data, None);
    assert_eq!(
        second_data,
        Some(DataValue::Json(serde_json::json!({"last": null})))
    );
    // What the second step replied with is what is stored: the default replies to the session's
    // other notifications (started, ended) echo the app data they carried, which the server
    // treats as "unchanged", so they cannot overwrite it with an older value.
    let stored = app
        .customer(CustomerNumber::cellular(&number))
        .lease_app_data()
        .await
        .expect("lease");
    assert_eq!(
        stored,
        Some(DataValue::Json(serde_json::json!({"last": "1"})))
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_sms_reaches_received_sms() {
    let server = emulator().await;
    let app = app(&server).await;
    let (seen, mut received) = mpsc::channel(4);
    app.on_received_sms(move |notification, customer, app_data, responder| {
        let seen = seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = seen.send((notification, customer)).await;
        }
    });
    let simulator = simulator(&server).await;
    let number = unique_number();
    simulator
        .receive_message(
            &number,
            MessagingChannelNumber::new(TEST_SMS_SHORT_CODE, MessagingChannel::Sms),
            "",
            vec![InboundMessageBody::Text("OK".into())],
        )
        .await
        .expect("sent by the customer");
    let (notification, customer) = tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("in time")
        .expect("handler ran");
    assert_eq!(notification.text().as_deref(), Some("OK"));
    assert_eq!(notification.customer_number.number, number);
    assert!(customer.id().is_some());

    // A reply to that message reaches the customer's phone on the same channel.
    let mut phone = simulator.notifications();
    let reply = customer
        .reply_to_message(notification.message_id.clone(), Message::text("Thanks"))
        .await
        .expect("replied");
    assert!(reply.is_success(), "{reply:?}");
    let delivered = tokio::time::timeout(WAIT, async {
        while let Some(next) = phone.next().await {
            if let SimulatorNotification::SendMessage(message) = next {
                return Some(message);
            }
        }
        None
    })
    .await
    .expect("delivered in time")
    .expect("a message to the phone");
    assert_eq!(delivered.customer_number.number, number);
    assert_eq!(delivered.channel_number.channel, MessagingChannel::Sms);
    assert_eq!(
        delivered.message.body,
        Some(MessageBody::Text("Thanks".into()))
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_call_reaches_the_simulator() {
    let server = emulator().await;
    let simulator = simulator(&server).await;
    let mut notifications = simulator.notifications();
    let app = app(&server).await;
    let number = unique_number();
    let reply = app
        .customer(CustomerNumber::cellular(&number))
        .make_voice_call(
            TEST_VOICE_NUMBER,
            vec![VoiceAction::Say(Say::new("Your loan is due"))],
        )
        .await
        .expect("call placed");
    // The service answers a placed call with SESSION_INITIATED, and so must the emulator.
    assert_eq!(
        reply.status,
        elarian_sdk::MessageDeliveryStatus::SessionInitiated,
        "{reply:?}"
    );
    assert!(reply.session_id.is_some(), "{reply:?}");
    let call = loop {
        let next = tokio::time::timeout(WAIT, notifications.next())
            .await
            .expect("in time")
            .expect("stream open");
        if next.event() == SimulatorEvent::MakeVoiceCall {
            break next;
        }
    };
    match call {
        SimulatorNotification::MakeVoiceCall(call) => {
            assert_eq!(call.customer_number.number, number);
            assert!(!call.session_id.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_reaches_the_simulator_and_its_settlement_reaches_payment_status() {
    let server = emulator().await;
    let app = app(&server).await;
    let (status_seen, mut statuses) = mpsc::channel(4);
    app.on_payment_status(move |notification, _customer, app_data, responder| {
        let status_seen = status_seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = status_seen.send(notification).await;
        }
    });
    let simulator = simulator(&server).await;
    let settler = simulator.clone();
    let (checkout_seen, mut checkouts) = mpsc::channel(4);
    simulator.on_checkout_payment(move |checkout| {
        let settler = settler.clone();
        let checkout_seen = checkout_seen.clone();
        async move {
            let settled = settler
                .update_payment_status(checkout.transaction_id.clone(), PaymentStatus::Success)
                .await;
            let _ = checkout_seen.send((checkout, settled.is_ok())).await;
        }
    });

    let number = unique_number();
    let reply = app
        .initiate_payment(
            PaymentCounterParty::Customer {
                customer_number: CustomerNumber::cellular(&number),
                channel_number: payment_channel(),
            },
            PaymentCounterParty::Purse {
                purse_id: TEST_PURSE_ID.into(),
            },
            Cash::new("KES", 100.0),
        )
        .await
        .expect("checkout started");
    assert_eq!(
        reply.status,
        PaymentStatus::PendingConfirmation,
        "{reply:?}"
    );
    let transaction_id = reply.transaction_id.expect("transaction id");

    let (checkout, settled) = tokio::time::timeout(WAIT, checkouts.recv())
        .await
        .expect("checkout in time")
        .expect("handler ran");
    assert_eq!(checkout.transaction_id, transaction_id);
    assert_eq!(checkout.customer_number.number, number);
    assert_eq!(checkout.value, Cash::new("KES", 100.0));
    assert!(settled, "the simulator settled the payment");

    let status = loop {
        let status = tokio::time::timeout(WAIT, statuses.recv())
            .await
            .expect("status in time")
            .expect("handler ran");
        if status.transaction_id == transaction_id && status.status == PaymentStatus::Success {
            break status;
        }
    };
    assert_eq!(status.status, PaymentStatus::Success);
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_payment_reaches_received_payment() {
    let server = emulator().await;
    let app = app(&server).await;
    let (seen, mut payments) = mpsc::channel(4);
    app.on_received_payment(move |notification, _customer, app_data, responder| {
        let seen = seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = seen.send(notification).await;
        }
    });
    let simulator = simulator(&server).await;
    let number = unique_number();
    simulator
        .receive_payment(
            &number,
            payment_channel(),
            format!("tx-{number}"),
            Cash::new("KES", 25.0),
            PaymentStatus::Success,
        )
        .await
        .expect("paid");
    let payment = tokio::time::timeout(WAIT, payments.recv())
        .await
        .expect("in time")
        .expect("handler ran");
    assert_eq!(payment.customer_number.number, number);
    assert_eq!(payment.value, Cash::new("KES", 25.0));
    assert_eq!(payment.status, PaymentStatus::Success);
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purse_payout_reaches_send_customer_payment() {
    let server = emulator().await;
    let simulator = simulator(&server).await;
    let (seen, mut payouts) = mpsc::channel(4);
    simulator.on_send_customer_payment(move |payout| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(payout).await;
        }
    });
    let app = app(&server).await;
    let number = unique_number();
    let reply = app
        .initiate_payment(
            PaymentCounterParty::Purse {
                purse_id: TEST_PURSE_ID.into(),
            },
            PaymentCounterParty::Customer {
                customer_number: CustomerNumber::cellular(&number),
                channel_number: payment_channel(),
            },
            Cash::new("KES", 5.0),
        )
        .await
        .expect("payout started");
    assert!(reply.is_success(), "{reply:?}");
    let payout = tokio::time::timeout(WAIT, payouts.recv())
        .await
        .expect("in time")
        .expect("handler ran");
    assert_eq!(payout.customer_number.number, number);
    assert_eq!(payout.value, Cash::new("KES", 5.0));
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_arguments_are_validated_before_sending() {
    let server = emulator().await;
    let simulator = simulator(&server).await;
    let invalid = matches!(
        simulator
            .receive_message(
                "",
                MessagingChannelNumber::new(TEST_SMS_SHORT_CODE, MessagingChannel::Sms),
                "",
                vec![InboundMessageBody::Text("x".into())],
            )
            .await,
        Err(elarian_sdk::Error::InvalidArgument { .. })
    );
    assert!(invalid);
    let invalid = matches!(
        simulator
            .receive_payment(
                "+254700000000",
                payment_channel(),
                "tx",
                Cash::new("KES", f64::INFINITY),
                PaymentStatus::Success,
            )
            .await,
        Err(elarian_sdk::Error::InvalidArgument { .. })
    );
    assert!(invalid);
    simulator.disconnect().await;
    server.shutdown().await;
}

fn ussd_dial() -> Vec<InboundMessageBody> {
    vec![InboundMessageBody::Ussd(UssdInput {
        text: None,
        status: UssdSessionStatus::Active,
    })]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_gets_the_default_reply_and_an_error_event() {
    let server = emulator().await;
    let app = app(&server).await;
    let (errors_seen, mut errors) = mpsc::unbounded_channel();
    app.on_error(move |error| {
        let _ = errors_seen.send(error.to_string());
    });
    app.on_ussd_session(
        |_notification, _customer, _app_data, _responder| async move {
            panic!("handler bug");
        },
    );
    let simulator = simulator(&server).await;
    let reply = simulator
        .receive_message(
            unique_number(),
            MessagingChannelNumber::new(TEST_USSD_CODE, MessagingChannel::Ussd),
            "ussd-panic",
            ussd_dial(),
        )
        .await
        .expect("the server still answers");
    assert_eq!(reply.message.and_then(|m| m.body), None);
    let error = tokio::time::timeout(WAIT, errors.recv())
        .await
        .expect("error event in time")
        .expect("callback ran");
    assert!(error.contains("panicked"), "{error}");

    // The connection survived: commands still work.
    app.generate_auth_token().await.expect("still connected");
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_responder_sends_the_default_reply_keeping_app_data() {
    let server = emulator().await;
    let app = app(&server).await;
    app.on_ussd_session(
        |_notification, _customer, _app_data, responder| async move {
            drop(responder);
        },
    );
    let simulator = simulator(&server).await;
    let number = unique_number();
    let stored = DataValue::Json(serde_json::json!({"kept": true}));
    app.customer(CustomerNumber::cellular(&number))
        .update_app_data(stored.clone())
        .await
        .expect("app data set");
    let reply = simulator
        .receive_message(
            &number,
            MessagingChannelNumber::new(TEST_USSD_CODE, MessagingChannel::Ussd),
            "ussd-drop",
            ussd_dial(),
        )
        .await
        .expect("answered");
    assert_eq!(reply.message.and_then(|m| m.body), None);
    let data = app
        .customer(CustomerNumber::cellular(&number))
        .lease_app_data()
        .await
        .expect("lease");
    assert_eq!(data, Some(stored));
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_on_handler_receives_typed_notifications() {
    let server = emulator().await;
    let app = app(&server).await;
    let (seen, mut received) = mpsc::channel(4);
    app.on(
        elarian_sdk::AppEvent::ReceivedWhatsapp,
        move |notification, customer, app_data, responder| {
            let seen = seen.clone();
            async move {
                responder.reply(Some(Message::text("thanks")), app_data);
                let _ = seen.send((notification, customer.is_some())).await;
            }
        },
    );
    let simulator = simulator(&server).await;
    simulator
        .receive_message(
            unique_number(),
            MessagingChannelNumber::new(TEST_VOICE_NUMBER, MessagingChannel::Whatsapp),
            "",
            vec![InboundMessageBody::Text("hello".into())],
        )
        .await
        .expect("sent");
    let (notification, has_customer) = tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("in time")
        .expect("handler ran");
    match notification {
        elarian_sdk::Notification::ReceivedWhatsapp(n) => {
            assert_eq!(n.text().as_deref(), Some("hello"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(has_customer);
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_call_step_reaches_voice_call_and_the_actions_come_back() {
    let server = emulator().await;
    // Handlers registered before connecting are kept.
    let app = elarian_sdk::Elarian::new(common::config(&server)).expect("config");
    app.on_voice_call(|notification, _customer, app_data, responder| async move {
        let digits = notification.voice.dtmf_digits.unwrap_or_default();
        responder.reply(
            Some(vec![
                VoiceAction::Say(Say::new(format!("You pressed {digits}"))),
                VoiceAction::Reject,
            ]),
            app_data,
        );
    });
    tokio::time::timeout(WAIT, app.connect())
        .await
        .expect("in time")
        .expect("connects");
    let simulator = simulator(&server).await;
    let reply = simulator
        .receive_message(
            unique_number(),
            MessagingChannelNumber::new(TEST_VOICE_NUMBER, MessagingChannel::Voice),
            "call-1",
            vec![InboundMessageBody::Voice(elarian_sdk::VoiceCallInput {
                direction: elarian_sdk::VoiceCallDirection::Inbound,
                status: elarian_sdk::VoiceCallStatus::Active,
                dtmf_digits: Some("42".into()),
                ..Default::default()
            })],
        )
        .await
        .expect("call step sent");
    assert_eq!(
        reply.message.and_then(|m| m.body),
        Some(MessageBody::Voice(vec![
            VoiceAction::Say(Say::new("You pressed 42")),
            VoiceAction::Reject,
        ]))
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_reports_message_status_and_consent_changes_are_notified() {
    let server = emulator().await;
    let app = app(&server).await;
    let (status_seen, mut statuses) = mpsc::channel(4);
    app.on_message_status(move |notification, _customer, app_data, responder| {
        let status_seen = status_seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = status_seen.send(notification).await;
        }
    });
    let (consent_seen, mut consents) = mpsc::channel(4);
    app.on_messaging_consent_update(move |notification, _customer, app_data, responder| {
        let consent_seen = consent_seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = consent_seen.send(notification).await;
        }
    });
    let customer = app.customer(CustomerNumber::cellular(unique_number()));
    let sms = MessagingChannelNumber::new(TEST_SMS_SHORT_CODE, MessagingChannel::Sms);
    let sent = customer
        .send_message(sms.clone(), Message::text("hi"))
        .await
        .expect("sent");
    let status = tokio::time::timeout(WAIT, statuses.recv())
        .await
        .expect("status in time")
        .expect("handler ran");
    assert_eq!(Some(status.message_id.clone()), sent.message_id);
    assert!(status.status.is_success(), "{status:?}");

    customer
        .update_messaging_consent(sms.clone(), elarian_sdk::ConsentAction::Block)
        .await
        .expect("blocked");
    let consent = tokio::time::timeout(WAIT, consents.recv())
        .await
        .expect("consent in time")
        .expect("handler ran");
    assert_eq!(consent.update, elarian_sdk::ConsentAction::Block);
    assert_eq!(consent.channel_number, sms);
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_payment_reaches_send_channel_payment() {
    let server = emulator().await;
    let simulator = simulator(&server).await;
    let (seen, mut payments) = mpsc::channel(4);
    simulator.on_send_channel_payment(move |payment| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(payment).await;
        }
    });
    let app = app(&server).await;
    let reply = app
        .initiate_payment(
            PaymentCounterParty::Purse {
                purse_id: TEST_PURSE_ID.into(),
            },
            PaymentCounterParty::Channel(elarian_sdk::ChannelCounterParty {
                channel: PaymentChannel::Cellular,
                channel_code: 0,
                source: TEST_PAYMENT_CHANNEL.into(),
                destination: "123456".into(),
                account: Some("acct-9".into()),
            }),
            Cash::new("KES", 7.0),
        )
        .await
        .expect("payment call");
    assert!(reply.is_success(), "{reply:?}");
    let payment = tokio::time::timeout(WAIT, payments.recv())
        .await
        .expect("in time")
        .expect("handler ran");
    assert_eq!(payment.destination, "123456");
    assert_eq!(payment.value, Cash::new("KES", 7.0));
    assert_eq!(
        payment.debit_party,
        Some(elarian_sdk::WalletOrPurse::Purse {
            purse_id: TEST_PURSE_ID.into()
        })
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_keep_working_after_the_server_restarts() {
    use std::time::Duration;
    let first = emulator().await;
    let addr = first.tcp_addr().expect("tcp address");
    let app = elarian_sdk::Elarian::new(
        common::config(&first).reconnect_policy(
            elarian_sdk::ReconnectPolicy::default()
                .initial_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200)),
        ),
    )
    .expect("config");
    let (reconnecting_seen, mut reconnecting) = mpsc::unbounded_channel();
    app.on_reconnecting(move |attempt, _delay| {
        let _ = reconnecting_seen.send(attempt);
    });
    app.on_ussd_session(|_n, _customer, app_data, responder| async move {
        responder.reply(Some(UssdMenu::terminal("still here")), app_data);
    });
    tokio::time::timeout(WAIT, app.connect())
        .await
        .expect("in time")
        .expect("connects");

    first.shutdown().await;
    tokio::time::timeout(WAIT, reconnecting.recv())
        .await
        .expect("reconnecting in time")
        .expect("callback ran");
    let second = elarian_emulator::Emulator::builder()
        .tcp(addr)
        .start()
        .await
        .expect("the emulator restarts on the same port");

    let simulator = simulator(&second).await;
    let reply = tokio::time::timeout(WAIT, async {
        loop {
            if app.is_connected() {
                let reply = simulator
                    .receive_message(
                        unique_number(),
                        MessagingChannelNumber::new(TEST_USSD_CODE, MessagingChannel::Ussd),
                        "after-restart",
                        ussd_dial(),
                    )
                    .await
                    .expect("dialled");
                if reply.message.is_some() {
                    return reply;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the app is back in time");
    assert_eq!(
        reply.message.and_then(|m| m.body),
        Some(MessageBody::Ussd(UssdMenu::terminal("still here")))
    );
    app.disconnect().await;
    simulator.disconnect().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ussd_dial_starts_a_messaging_session() {
    let server = emulator().await;
    let app = app(&server).await;
    let (seen, mut sessions) = mpsc::channel(4);
    app.on_messaging_session_started(move |notification, _customer, app_data, responder| {
        let seen = seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = seen.send(notification).await;
        }
    });
    app.on_ussd_session(|_n, _customer, app_data, responder| async move {
        responder.reply(Some(UssdMenu::new("1. Next")), app_data);
    });
    let simulator = simulator(&server).await;
    let number = unique_number();
    simulator
        .receive_message(
            &number,
            MessagingChannelNumber::ussd(TEST_USSD_CODE),
            "ussd-session-started",
            ussd_dial(),
        )
        .await
        .expect("dialled");
    let started = tokio::time::timeout(WAIT, sessions.recv())
        .await
        .expect("session start in time")
        .expect("handler ran");
    assert_eq!(started.customer_number.number, number);
    assert_eq!(started.channel_number.channel, MessagingChannel::Ussd);
    assert!(!started.session_id.is_empty());
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_settles_the_payment_it_reported_by_its_own_transaction_id() {
    let server = emulator().await;
    let app = app(&server).await;
    let (received_seen, mut received) = mpsc::unbounded_channel();
    app.on_received_payment(move |notification, _customer, app_data, responder| {
        let received_seen = received_seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = received_seen.send(notification);
        }
    });
    let (status_seen, mut statuses) = mpsc::unbounded_channel();
    app.on_payment_status(move |notification, customer, app_data, responder| {
        let status_seen = status_seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = status_seen.send((notification, customer.and_then(|c| c.id())));
        }
    });
    let simulator = simulator(&server).await;
    let number = unique_number();
    let own_id = format!("mpesa-{number}");
    simulator
        .receive_payment(
            &number,
            payment_channel(),
            own_id.clone(),
            Cash::new("KES", 40.0),
            PaymentStatus::PendingValidation,
        )
        .await
        .expect("reported");
    let payment = tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("in time")
        .expect("handler ran");
    assert_eq!(payment.status, PaymentStatus::PendingValidation);
    assert_ne!(payment.transaction_id, own_id, "the app gets Elarian's id");

    let settled = simulator
        .update_payment_status(own_id.clone(), PaymentStatus::Success)
        .await
        .expect("the simulator's own id names its payment");
    assert_eq!(settled.description, "payment status updated");
    let (status, customer) = tokio::time::timeout(WAIT, statuses.recv())
        .await
        .expect("in time")
        .expect("handler ran");
    assert_eq!(status.transaction_id, payment.transaction_id);
    assert_eq!(status.status, PaymentStatus::Success);
    assert_eq!(customer, payment.context.customer_id);

    // Elarian's id names the same payment, settled now.
    let again = simulator
        .update_payment_status(payment.transaction_id.clone(), PaymentStatus::Success)
        .await;
    assert!(
        matches!(&again, Err(elarian_sdk::Error::Failed { description }) if description.contains("already settled")),
        "{again:?}"
    );
    app.disconnect().await;
    simulator.disconnect().await;
    server.shutdown().await;
}
