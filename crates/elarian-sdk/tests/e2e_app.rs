//! End-to-end tests of the app API against an in-process emulator over real TCP.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use common::{WAIT, app, config, emulator, unique_number};
use elarian_emulator::config::{TEST_PURSE_ID, TEST_SMS_SHORT_CODE};
use elarian_sdk::{
    Activity, AppEvent, ConnectionEventKind, ConnectionEvents, ConsentAction, CustomerNumber,
    DataValue, Elarian, Error, Message, MessageDeliveryStatus, MessagingChannel,
    MessagingChannelNumber, NamedEvent, Notification, PaymentCounterParty, PaymentStatus, Reminder,
    SecondaryId, Tag,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;

fn sms() -> MessagingChannelNumber {
    MessagingChannelNumber::new(TEST_SMS_SHORT_CODE, MessagingChannel::Sms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_added_read_and_deleted() {
    let server = emulator().await;
    let app = app(&server).await;
    let customer = app.customer(CustomerNumber::cellular(unique_number()));

    let reply = customer
        .update_tags(vec![
            Tag::new("tier", "gold"),
            Tag::new("region", "nairobi"),
        ])
        .await
        .expect("tags updated");
    assert!(reply.customer_id.is_some(), "the server names the customer");
    assert_eq!(
        customer.id(),
        reply.customer_id,
        "the customer learns its id"
    );

    let tags = customer.get_tags().await.expect("state");
    assert!(tags.contains(&Tag::new("tier", "gold")), "{tags:?}");
    assert!(tags.contains(&Tag::new("region", "nairobi")), "{tags:?}");

    customer.delete_tags(["tier"]).await.expect("tag deleted");
    let tags = customer.get_tags().await.expect("state");
    assert!(!tags.iter().any(|t| t.key == "tier"), "{tags:?}");
    assert!(tags.iter().any(|t| t.key == "region"), "{tags:?}");
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_round_trips_json_and_bytes() {
    let server = emulator().await;
    let app = app(&server).await;
    let customer = app.customer(CustomerNumber::cellular(unique_number()));

    let metadata = HashMap::from([
        (
            "profile".to_string(),
            DataValue::Json(serde_json::json!({"name": "Ann", "age": 31})),
        ),
        ("blob".to_string(), DataValue::Bytes(vec![0, 1, 2, 254])),
    ]);
    customer
        .update_metadata(metadata.clone())
        .await
        .expect("metadata updated");
    assert_eq!(customer.get_metadata().await.expect("metadata"), metadata);

    customer.delete_metadata(["blob"]).await.expect("deleted");
    let left = customer.get_metadata().await.expect("metadata");
    assert!(
        left.contains_key("profile") && !left.contains_key("blob"),
        "{left:?}"
    );
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_data_is_updated_leased_and_deleted() {
    let server = emulator().await;
    let app = app(&server).await;
    let customer = app.customer(CustomerNumber::cellular(unique_number()));

    assert_eq!(customer.lease_app_data().await.expect("lease"), None);
    let data = DataValue::Json(serde_json::json!({"step": 3, "items": ["a", "b"]}));
    customer
        .update_app_data(data.clone())
        .await
        .expect("app data updated");
    assert_eq!(customer.lease_app_data().await.expect("lease"), Some(data));
    customer.delete_app_data().await.expect("app data deleted");
    assert_eq!(customer.lease_app_data().await.expect("lease"), None);
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_ids_address_the_same_customer() {
    let server = emulator().await;
    let app = app(&server).await;
    let customer = app.customer(CustomerNumber::cellular(unique_number()));
    let account = format!("acct-{}", unique_number());

    customer
        .update_secondary_ids(vec![SecondaryId::new("account", &account)])
        .await
        .expect("secondary id added");
    let ids = customer.get_secondary_ids().await.expect("ids");
    assert!(
        ids.contains(&SecondaryId::new("account", &account)),
        "{ids:?}"
    );

    let same = app.customer_by_secondary_id("account", &account);
    let state = same.get_state().await.expect("state by secondary id");
    assert_eq!(Some(state.customer_id), customer.id());

    customer
        .delete_secondary_ids(vec![SecondaryId::new("account", &account)])
        .await
        .expect("secondary id deleted");
    assert!(customer.get_secondary_ids().await.expect("ids").is_empty());
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_fire_to_on_reminder_with_customer_and_payload() {
    let server = emulator().await;
    let app = app(&server).await;
    let (seen, mut reminders) = mpsc::channel(4);
    app.on_reminder(move |notification, customer, app_data, responder| {
        let seen = seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = seen.send((notification, customer.id())).await;
        }
    });
    let customer = app.customer(CustomerNumber::cellular(unique_number()));
    customer
        .add_reminder(
            Reminder::new("due", SystemTime::now() + Duration::from_millis(500))
                .with_payload("loan #7"),
        )
        .await
        .expect("reminder set");

    let (notification, id) = tokio::time::timeout(WAIT, reminders.recv())
        .await
        .expect("the reminder fires in time")
        .expect("handler ran");
    assert_eq!(notification.reminder.key, "due");
    assert_eq!(notification.reminder.payload.as_deref(), Some("loan #7"));
    assert_eq!(id, customer.id());
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_reminders_are_accepted_and_reminders_by_tag_return_work() {
    let server = emulator().await;
    let app = app(&server).await;
    let customer = app.customer(CustomerNumber::cellular(unique_number()));
    let tag = Tag::new("cohort", unique_number());
    customer
        .update_tags(vec![tag.clone()])
        .await
        .expect("tagged");
    customer
        .add_reminder(Reminder::new(
            "later",
            SystemTime::now() + Duration::from_secs(3600),
        ))
        .await
        .expect("set");
    customer.cancel_reminder("later").await.expect("cancelled");

    let reminder = Reminder::new("tagged", SystemTime::now() + Duration::from_secs(3600));
    let reply = app
        .add_customer_reminder_by_tag(tag.clone(), reminder)
        .await
        .expect("tag reminder set");
    assert!(reply.work_id.is_some());
    app.cancel_customer_reminder_by_tag(tag.clone(), "tagged")
        .await
        .expect("tag reminder cancelled");
    let reply = app
        .send_message_by_tag(tag, sms(), Message::text("hello cohort"))
        .await
        .expect("tag message sent");
    assert!(reply.work_id.is_some());
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_consent_makes_messages_report_no_consent() {
    let server = emulator().await;
    let app = app(&server).await;
    let customer = app.customer(CustomerNumber::cellular(unique_number()));

    let sent = customer
        .send_message(sms(), Message::text("hello"))
        .await
        .expect("sent");
    assert!(sent.is_success(), "{sent:?}");
    assert!(sent.message_id.is_some());

    customer
        .update_messaging_consent(sms(), ConsentAction::Block)
        .await
        .expect("consent updated");
    let refused = customer
        .send_message(sms(), Message::text("hello again"))
        .await
        .expect("the call succeeds; the status tells the outcome");
    assert_eq!(refused.status, MessageDeliveryStatus::NoConsent);
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_state_merges_the_other_customer() {
    let server = emulator().await;
    let app = app(&server).await;
    let keeper = app.customer(CustomerNumber::cellular(unique_number()));
    let other = app.customer(CustomerNumber::cellular(unique_number()));
    keeper
        .update_tags(vec![Tag::new("a", "1")])
        .await
        .expect("tag a");
    other
        .update_tags(vec![Tag::new("b", "2")])
        .await
        .expect("tag b");

    keeper.adopt_state(&other).await.expect("adopted");
    let tags = keeper.get_tags().await.expect("tags");
    assert!(tags.iter().any(|t| t.key == "b"), "{tags:?}");
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_customers_lose_their_state() {
    let server = emulator().await;
    let app = app(&server).await;
    let number = CustomerNumber::cellular(unique_number());
    let customer = app.customer(number.clone());
    customer
        .update_tags(vec![Tag::new("x", "y")])
        .await
        .expect("tag");
    app.delete_customer_by_customer_number(number.clone())
        .await
        .expect("deleted");
    let fresh = app.customer(number);
    let tags = fresh.get_tags().await.unwrap_or_default();
    assert!(tags.is_empty(), "{tags:?}");

    let by_id = app.customer(CustomerNumber::cellular(unique_number()));
    by_id
        .update_tags(vec![Tag::new("x", "y")])
        .await
        .expect("tag");
    let id = by_id.id().expect("id learnt");
    app.delete_customer_by_customer_id(id.clone())
        .await
        .expect("deleted by id");
    assert!(
        app.customer_by_id(id).get_state().await.is_err(),
        "a deleted id is unknown"
    );
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_tokens_can_replace_the_api_key() {
    let server = emulator().await;
    let app = app(&server).await;
    let token = app.generate_auth_token().await.expect("token");
    assert!(!token.token.is_empty());
    assert!(token.lifetime > Duration::ZERO);

    let with_token = Elarian::new(config(&server).auth_token(token.token)).expect("config");
    tokio::time::timeout(WAIT, with_token.connect())
        .await
        .expect("in time")
        .expect("a token connects");
    with_token.disconnect().await;
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_from_the_purse_and_invalid_parties_report_status() {
    let server = emulator().await;
    let app = app(&server).await;
    let wallet_owner = app.customer(CustomerNumber::cellular(unique_number()));
    wallet_owner
        .update_tags(vec![Tag::new("w", "1")])
        .await
        .expect("created");
    let customer_id = wallet_owner.id().expect("id");

    let purse = PaymentCounterParty::Purse {
        purse_id: TEST_PURSE_ID.into(),
    };
    let wallet = PaymentCounterParty::Wallet {
        customer_id,
        wallet_id: "savings".into(),
    };
    let paid = app
        .initiate_payment(
            purse.clone(),
            wallet.clone(),
            elarian_sdk::Cash::new("KES", 50.0),
        )
        .await
        .expect("payment call");
    assert!(paid.is_success(), "{paid:?}");

    let unknown = PaymentCounterParty::Purse {
        purse_id: "el_prs_unknown".into(),
    };
    let refused = app
        .initiate_payment(unknown, wallet, elarian_sdk::Cash::new("KES", 1.0))
        .await
        .expect("payment call");
    assert_eq!(refused.status, PaymentStatus::InvalidPurse);
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhandled_notifications_reach_the_stream() {
    let server = emulator().await;
    let app = app(&server).await;
    let mut notifications = app.notifications();
    let customer = app.customer(CustomerNumber::cellular(unique_number()));
    customer
        .update_activity(
            "web",
            "session-1",
            Activity::new("signup").with_property("plan", "pro"),
        )
        .await
        .expect("activity recorded");

    let incoming = tokio::time::timeout(WAIT, notifications.next())
        .await
        .expect("a notification in time")
        .expect("stream open");
    assert_eq!(incoming.notification.event(), AppEvent::CustomerActivity);
    match &incoming.notification {
        Notification::CustomerActivity(n) => {
            assert_eq!(n.activity.key, "signup");
            assert_eq!(n.source, "web");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        incoming.customer.as_ref().and_then(|c| c.id()),
        customer.id()
    );
    incoming.responder.reply(None, None);
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_recorded() {
    let server = emulator().await;
    let app = app(&server).await;
    let number = CustomerNumber::cellular(unique_number());
    let now = SystemTime::now();
    app.replay_messaging_consent_update(number.clone(), sms(), ConsentAction::Allow, now)
        .await
        .expect("consent replay");
    app.replay_received_message(
        number.clone(),
        sms(),
        elarian_sdk::ReceivedMessage {
            message_id: "prov-1".into(),
            parts: vec![elarian_sdk::InboundMessageBody::Text("hi".into())],
            received_at: Some(now),
            ..Default::default()
        },
    )
    .await
    .expect("received replay");
    app.replay_sent_message(
        number.clone(),
        sms(),
        elarian_sdk::SentMessage {
            message_id: "prov-2".into(),
            message: Message::text("hello"),
            status: MessageDeliveryStatus::Sent,
            sent_at: Some(now),
            ..Default::default()
        },
    )
    .await
    .expect("sent replay");
    app.replay_message_status_update(
        number.clone(),
        sms(),
        elarian_sdk::MessageStatusUpdate {
            message_id: "prov-2".into(),
            updated_at: now,
            status: MessageDeliveryStatus::Delivered,
            cost: None,
        },
    )
    .await
    .expect("status replay");
    app.replay_message_reaction_update(
        number.clone(),
        sms(),
        "prov-2",
        elarian_sdk::MessageReaction::Clicked,
        now,
    )
    .await
    .expect("reaction replay");
    app.replay_messaging_session(
        number.clone(),
        MessagingChannelNumber::new("*83044#", MessagingChannel::Ussd),
        elarian_sdk::MessageSessionUpdate {
            session_id: "prov-s".into(),
            started_at: now,
            duration: Duration::from_secs(20),
            reason: elarian_sdk::MessagingSessionEndReason::NormalClearing,
            cost: None,
        },
    )
    .await
    .expect("session replay");
    let paid = app
        .replay_payment(elarian_sdk::PaymentReplay {
            transaction_id: "prov-tx".into(),
            debit_party: PaymentCounterParty::Customer {
                customer_number: number.clone(),
                channel_number: elarian_sdk::PaymentChannelNumber::cellular("83044"),
            },
            credit_party: PaymentCounterParty::Purse {
                purse_id: TEST_PURSE_ID.into(),
            },
            status: PaymentStatus::PendingConfirmation,
            value: elarian_sdk::Cash::new("KES", 50.0),
            narration: "repayment".into(),
            created_at: now,
        })
        .await
        .expect("payment replay");
    let transaction_id = paid.transaction_id.clone().expect("a transaction id");
    assert!(paid.debit_customer_id.is_some(), "{paid:?}");
    let updated = app
        .replay_payment_status_update(number.clone(), "prov-tx", PaymentStatus::Success, now)
        .await
        .expect("payment status replay");
    assert_eq!(
        updated.transaction_id.as_deref(),
        Some(transaction_id.as_str())
    );
    assert!(matches!(
        app.replay_payment_status_update(
            number.clone(),
            "prov-unknown",
            PaymentStatus::Success,
            now
        )
        .await,
        Err(Error::Failed { .. })
    ));

    let state = app.customer(number).get_state().await.expect("state");
    assert!(
        !state.messaging.messages.is_empty(),
        "replayed messages show in the state"
    );
    let replayed = state
        .payment
        .transaction_log
        .iter()
        .chain(&state.payment.pending_transactions)
        .find(|t| t.transaction_id == transaction_id)
        .expect("the replayed payment shows in the state");
    assert_eq!(replayed.status, PaymentStatus::Success);
    assert_eq!(replayed.provider_transaction_id.as_deref(), Some("prov-tx"));
    app.disconnect().await;
    server.shutdown().await;
}

fn invalid<T>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::InvalidArgument { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_fail_before_sending_and_commands_need_a_connection() {
    let server = emulator().await;
    let app = app(&server).await;
    let customer = app.customer(CustomerNumber::cellular(unique_number()));

    assert!(invalid(
        app.customer(CustomerNumber::cellular("")).get_state().await
    ));
    assert!(invalid(
        app.initiate_payment(
            PaymentCounterParty::Purse {
                purse_id: TEST_PURSE_ID.into()
            },
            PaymentCounterParty::Purse {
                purse_id: TEST_PURSE_ID.into()
            },
            elarian_sdk::Cash::new("KES", f64::NAN),
        )
        .await
    ));
    assert!(invalid(
        customer
            .add_reminder(Reminder::new("past", SystemTime::UNIX_EPOCH))
            .await
    ));
    assert!(invalid(customer.update_tags(vec![Tag::new("", "v")]).await));
    assert!(invalid(
        customer
            .update_metadata(HashMap::from([(String::new(), DataValue::string("v"))]))
            .await
    ));

    // Sending needs the customer's number: a customer known only by id is looked up for it,
    // and an id the server does not know is refused by the lookup.
    let unknown = app
        .customer_by_id("el_cst_x")
        .send_message(sms(), Message::text("hi"))
        .await
        .expect_err("unknown customer");
    assert!(matches!(unknown, Error::Failed { .. }), "{unknown:?}");
    assert!(invalid(
        customer.send_message(sms(), Message::default()).await
    ));

    app.disconnect().await;
    assert!(matches!(
        customer.get_state().await,
        Err(Error::NotConnected)
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_to_connect_with_a_typed_error() {
    let server = emulator().await;
    let app = Elarian::new(config(&server).api_key("el_k_wrong")).expect("config");
    let result = tokio::time::timeout(WAIT, app.connect())
        .await
        .expect("in time");
    assert!(
        matches!(
            result,
            Err(Error::Connect(elarian_sdk::ConnectError::Rejected { .. }))
        ),
        "{result:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_events_reach_callbacks_and_streams() {
    let server = emulator().await;
    let app = Elarian::new(config(&server)).expect("config");
    let (seen, mut connected) = mpsc::unbounded_channel();
    app.on_connected(move || {
        let _ = seen.send(());
    });
    // The spec's `on("connected", …)` / `on("closed", …)`, by name.
    let (named_seen, mut named) = mpsc::unbounded_channel();
    for name in ["connected", "closed"] {
        let kind = ConnectionEventKind::from_name(name).expect("a spec event name");
        let named_seen = named_seen.clone();
        app.on_connection(kind, move |event| {
            let _ = named_seen.send((kind, event.clone()));
        });
    }
    let mut events = app.connection_events();
    tokio::time::timeout(WAIT, app.connect())
        .await
        .expect("in time")
        .expect("connects");
    assert!(app.is_connected());
    tokio::time::timeout(WAIT, connected.recv())
        .await
        .expect("on_connected in time")
        .expect("callback ran");
    let (kind, event) = tokio::time::timeout(WAIT, named.recv())
        .await
        .expect("on_connection in time")
        .expect("callback ran");
    assert_eq!(kind, ConnectionEventKind::Connected);
    assert_eq!(event, elarian_sdk::ConnectionEvent::Connected);
    let first_connected = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if event == elarian_sdk::ConnectionEvent::Connected {
                return true;
            }
        }
        false
    })
    .await
    .expect("in time");
    assert!(first_connected);

    app.disconnect().await;
    assert!(!app.is_connected());
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if matches!(event, elarian_sdk::ConnectionEvent::Closed { .. }) {
                return true;
            }
        }
        false
    })
    .await
    .expect("in time");
    assert!(closed);
    let (kind, event) = tokio::time::timeout(WAIT, named.recv())
        .await
        .expect("on_connection in time")
        .expect("callback ran");
    assert_eq!(kind, ConnectionEventKind::Closed);
    assert!(
        matches!(event, elarian_sdk::ConnectionEvent::Closed { .. }),
        "{event:?}"
    );

    // The app can connect again after a disconnect.
    tokio::time::timeout(WAIT, app.connect())
        .await
        .expect("in time")
        .expect("reconnects");
    app.generate_auth_token().await.expect("works again");
    app.disconnect().await;
    server.shutdown().await;
}

/// An emulator that settles payments after 50 ms and fails those to `+254799…` numbers.
async fn settling_emulator() -> elarian_emulator::EmulatorHandle {
    use elarian_emulator::config::{EmulatorConfig, PaymentFailure, PurseConfig};
    let mut config = EmulatorConfig::default();
    config.payments.settle_delay_ms = 50;
    config.payments.fail = vec![PaymentFailure::new("+254799*", "insufficient_funds")];
    config.orgs[0].purses.push(PurseConfig {
        id: "el_prs_second".into(),
        currency: "KES".into(),
        balance: 0.0,
    });
    elarian_emulator::Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .config(config)
        .start()
        .await
        .expect("the emulator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_and_transfers_settle_by_themselves_with_a_payment_status() {
    use elarian_emulator::config::TEST_PAYMENT_CHANNEL;
    use elarian_sdk::{Cash, PaymentChannel, PaymentChannelNumber};
    let server = settling_emulator().await;
    let app = app(&server).await;
    let (seen, mut statuses) = mpsc::unbounded_channel();
    app.on_payment_status(move |notification, customer, app_data, responder| {
        let seen = seen.clone();
        async move {
            responder.reply(None, app_data);
            let _ = seen.send((notification, customer.and_then(|c| c.id())));
        }
    });
    let purse = || PaymentCounterParty::Purse {
        purse_id: TEST_PURSE_ID.into(),
    };
    let payee = |number: &str| PaymentCounterParty::Customer {
        customer_number: CustomerNumber::cellular(number),
        channel_number: PaymentChannelNumber::new(TEST_PAYMENT_CHANNEL, PaymentChannel::Cellular),
    };
    let mut next_status = async || {
        tokio::time::timeout(WAIT, statuses.recv())
            .await
            .expect("a payment status in time")
            .expect("handler ran")
    };

    // A payout to a customer: QUEUED, then SUCCESS without anyone settling it.
    let paid = app
        .initiate_payment(purse(), payee(&unique_number()), Cash::new("KES", 12.0))
        .await
        .expect("payout started");
    assert_eq!(paid.status, PaymentStatus::Queued, "{paid:?}");
    let (status, customer) = next_status().await;
    assert_eq!(Some(status.transaction_id), paid.transaction_id);
    assert_eq!(status.status, PaymentStatus::Success);
    assert_eq!(customer, paid.credit_customer_id, "about the payee");

    // A payee the config makes fail.
    let refused = app
        .initiate_payment(purse(), payee("+254799000001"), Cash::new("KES", 3.0))
        .await
        .expect("payout started");
    assert_eq!(refused.status, PaymentStatus::Queued, "{refused:?}");
    let (status, _) = next_status().await;
    assert_eq!(Some(status.transaction_id), refused.transaction_id);
    assert_eq!(status.status, PaymentStatus::InsufficientFunds);

    // Purse to purse: the notification is about the purse.
    let moved = app
        .initiate_payment(
            purse(),
            PaymentCounterParty::Purse {
                purse_id: "el_prs_second".into(),
            },
            Cash::new("KES", 1.0),
        )
        .await
        .expect("transfer started");
    assert_eq!(moved.status, PaymentStatus::Queued, "{moved:?}");
    let (status, customer) = next_status().await;
    assert_eq!(Some(status.transaction_id), moved.transaction_id);
    assert_eq!(status.status, PaymentStatus::Success);
    assert_eq!(customer, None);
    assert_eq!(status.context.purse_id.as_deref(), Some(TEST_PURSE_ID));
    app.disconnect().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_yields_a_connected_app_in_one_expression() {
    use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
    let server = emulator().await;
    let app = Elarian::builder()
        .org_id(TEST_ORG_ID)
        .app_id(TEST_APP_ID)
        .api_key(TEST_API_KEY)
        .endpoint(server.endpoint().expect("tcp endpoint"))
        .command_timeout(WAIT)
        .reconnect_delay(|_| Duration::from_millis(10))
        .connect()
        .await
        .expect("connects");
    assert!(app.is_connected());
    assert!(app.config().reconnect_policy().has_custom_delay());
    let customer = app.customer(CustomerNumber::cellular(unique_number()));
    customer.get_state().await.expect("a command works at once");
    app.disconnect().await;

    // `build` gives the app unconnected, for handlers first; invalid settings fail there.
    let idle = Elarian::builder()
        .org_id(TEST_ORG_ID)
        .app_id(TEST_APP_ID)
        .api_key(TEST_API_KEY)
        .build()
        .expect("valid");
    assert!(!idle.is_connected());
    let missing = Elarian::builder().org_id(TEST_ORG_ID).build().unwrap_err();
    assert!(matches!(missing, Error::Config(_)), "{missing:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_to_nothing_times_out_saying_it_was_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = Elarian::builder()
        .org_id("el_org_1")
        .app_id("el_app_1")
        .api_key("el_k_1")
        .endpoint_url(&format!("tcp://127.0.0.1:{port}"))
        .initial_connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    let source = std::error::Error::source(&error).expect("the last attempt's error");
    assert!(source.to_string().contains("refused"), "{source}");
}
