//! Persistence: what a data dir keeps across a restart.

use super::*;

#[tokio::test]
async fn acknowledged_changes_survive_a_restart_with_a_data_dir() {
    let dir = temp_data_dir("elarian-emulator-engine");
    let clock = ManualClock::new(T0);
    let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
    let id;
    let token;
    {
        let engine = reopen(&clock, &dir);
        let out = committed(&engine, &app, tag_by_number("+254700000032", "k", "v")).await;
        let Some(R::UpdateCustomerState(r)) = out.reply.entry else {
            panic!("wrong reply")
        };
        id = r.customer_id.unwrap();
        committed(
            &engine,
            &app,
            E::AddCustomerReminder(p::AddCustomerReminderCommand {
                customer: Some(p::add_customer_reminder_command::Customer::CustomerId(
                    id.clone(),
                )),
                reminder: Some(reminder("later", T0 + 60_000, 0)),
            }),
        )
        .await;
        let out = committed(
            &engine,
            &app,
            E::GenerateAuthToken(p::GenerateAuthTokenCommand {}),
        )
        .await;
        let Some(R::GenerateAuthToken(t)) = out.reply.entry else {
            panic!("wrong reply")
        };
        token = t.token;
        let r = committed(
            &engine,
            &app,
            E::InitiatePayment(p::InitiatePaymentCommand {
                debit_party: Some(purse()),
                credit_party: Some(wallet(&id, "w")),
                value: Some(kes(10.0)),
                narration: String::new(),
            }),
        )
        .await
        .reply;
        assert!(
            matches!(r.entry, Some(R::InitiatePayment(ref x)) if x.status == PaymentStatus::Queued as i32)
        );
    }
    let engine = reopen(&clock, &dir);
    assert_eq!(engine.customer_count(TEST_ORG_ID), 1);
    assert_eq!(
        engine.purse_balance(TEST_ORG_ID, TEST_PURSE_ID),
        Some((TEST_PURSE_BALANCE - 10.0, TEST_PURSE_BALANCE)),
        "the held payment survives the restart"
    );
    let meta = p::AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        auth_token: Some(token),
        ..Default::default()
    };
    assert!(
        engine.authenticate(&meta).is_ok(),
        "tokens survive restarts"
    );
    clock.advance_millis(60_000);
    let effects = engine.fire_due(100).effects;
    let fired = reminders_fired(&effects);
    assert_eq!(fired.len(), 1, "reminders survive restarts");
    assert_eq!(fired[0].0, id);
    let settled = payment_statuses(&effects);
    assert_eq!(settled.len(), 1, "pending settlements survive restarts");
    assert_eq!(settled[0].2, PaymentStatus::Success as i32);
    assert_eq!(
        engine.purse_balance(TEST_ORG_ID, TEST_PURSE_ID),
        Some((TEST_PURSE_BALANCE - 10.0, TEST_PURSE_BALANCE - 10.0))
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn tag_reminders_survive_a_restart_and_still_reach_customers_tagged_later() {
    let dir = temp_data_dir("elarian-emulator-tagrem");
    let clock = ManualClock::new(T0);
    let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
    {
        let engine = reopen(&clock, &dir);
        let out = committed(
            &engine,
            &app,
            E::AddCustomerReminderTag(p::AddCustomerReminderTagCommand {
                tag: Some(mapping("plan", "gold")),
                reminder: Some(reminder("renew", T0 + 60_000, 0)),
            }),
        )
        .await;
        assert!(matches!(out.reply.entry, Some(R::TagCommand(t)) if t.status));
    }
    let engine = reopen(&clock, &dir);
    committed(
        &engine,
        &app,
        tag_by_number("+254700000033", "plan", "gold"),
    )
    .await;
    clock.advance_millis(60_000);
    let fired = reminders_fired(&engine.fire_due(100).effects);
    assert_eq!(fired.len(), 1, "the reminder by tag survived the restart");
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn notifications_stay_pending_in_the_data_dir_until_settled() {
    let dir = temp_data_dir("elarian-emulator-pending");
    let clock = ManualClock::new(T0);
    let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
    let activity = |key: &str| {
        E::CustomerActivity(p::CustomerActivityCommand {
            customer_number: Some(phone("+254700000034")),
            source: "web".into(),
            session_id: "s1".into(),
            key: key.into(),
            properties: Default::default(),
        })
    };
    let activity_keys = |effects: &[Effect]| -> Vec<String> {
        app_entries(effects)
            .into_iter()
            .filter_map(|(_, e)| match e {
                CE::CustomerActivity(a) => a.activity.map(|x| x.key),
                _ => None,
            })
            .collect()
    };
    {
        let engine = reopen(&clock, &dir);
        committed(&engine, &app, activity("first")).await;
        committed(&engine, &app, activity("second")).await;
        // A reminder fired but not delivered before the stop.
        committed(
            &engine,
            &app,
            E::AddCustomerReminder(p::AddCustomerReminderCommand {
                customer: Some(p::add_customer_reminder_command::Customer::CustomerNumber(
                    phone("+254700000034"),
                )),
                reminder: Some(reminder("due", T0 + 1_000, 0)),
            }),
        )
        .await;
        clock.advance_millis(1_000);
        let out = engine.fire_due(10);
        assert_eq!(reminders_fired(&out.effects).len(), 1);
        out.durable.wait().await.unwrap();
    }
    let pending_id = |e: &Effect| match e {
        Effect::App(n) => n.pending,
        Effect::Simulator(n) => n.pending,
    };
    let first_id;
    {
        let engine = reopen(&clock, &dir);
        let recovered = engine.take_recovered();
        assert_eq!(activity_keys(&recovered), vec!["first", "second"]);
        assert_eq!(reminders_fired(&recovered).len(), 1, "the fired reminder");
        assert!(engine.take_recovered().is_empty(), "taken once");
        // New notifications get ids after the recovered ones.
        let out = committed(&engine, &app, activity("third")).await;
        let newest = out.effects.iter().filter_map(pending_id).max().unwrap();
        assert!(
            recovered
                .iter()
                .filter_map(pending_id)
                .all(|id| id < newest)
        );
        // "first" and the reminder were answered; "second" and "third" were not.
        first_id = pending_id(&recovered[0]).unwrap();
        engine.settle_pending(first_id);
        engine.settle_pending(pending_id(&recovered[2]).unwrap());
        engine.close();
    }
    let engine = reopen(&clock, &dir);
    let recovered = engine.take_recovered();
    assert_eq!(activity_keys(&recovered), vec!["second", "third"]);
    assert!(reminders_fired(&recovered).is_empty());
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn metadata_of_an_existing_customer_survives_a_restart_with_a_data_dir() {
    let dir = temp_data_dir("elarian-emulator-engine-meta");
    let clock = ManualClock::new(T0);
    let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
    let update = |customer, key: &str, value: &str| {
        E::UpdateCustomerMetadata(p::UpdateCustomerMetadataCommand {
            customer: Some(customer),
            updates: [(key.to_owned(), text(value))].into(),
        })
    };
    let id = {
        let engine = reopen(&clock, &dir);
        // The first command creates the customer; the second changes it in place.
        let out = committed(
            &engine,
            &app,
            update(
                p::update_customer_metadata_command::Customer::CustomerNumber(phone(
                    "+254700000050",
                )),
                "first",
                "1",
            ),
        )
        .await;
        let Some(R::UpdateCustomerState(r)) = out.reply.entry else {
            panic!("wrong reply")
        };
        let id = r.customer_id.unwrap();
        committed(
            &engine,
            &app,
            update(
                p::update_customer_metadata_command::Customer::CustomerId(id.clone()),
                "second",
                "2",
            ),
        )
        .await;
        id
    };
    let engine = reopen(&clock, &dir);
    let out = engine.app_command(
        &app,
        AppToServerCommand {
            entry: Some(E::GetCustomerState(p::GetCustomerStateCommand {
                customer: Some(p::get_customer_state_command::Customer::CustomerId(id)),
            })),
        },
    );
    let Some(R::GetCustomerState(r)) = out.reply.entry else {
        panic!("wrong reply")
    };
    let metadata = r.data.unwrap().identity_state.unwrap().metadata;
    assert_eq!(metadata.get("first"), Some(&text("1")));
    assert_eq!(metadata.get("second"), Some(&text("2")));
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
