//! Engine semantics, driven directly with a manual clock.

use std::sync::Arc;

use elarian_proto::{
    self as p, AppToServerCommand, CustomerNumber, CustomerNumberProvider, DataMapValue,
    IndexMapping, MessageDeliveryStatus, MessagingChannel, MessagingChannelNumber, PaymentStatus,
    app_to_server_command::Entry as E, app_to_server_command_reply::Entry as R,
    data_map_value::Value, server_to_app_customer_notification::Entry as CE,
    server_to_app_notification::Entry as NE, server_to_simulator_notification::Entry as SE,
};

use super::*;
use crate::clock::{ManualClock, to_timestamp};
use crate::config::*;

const T0: i64 = 1_700_000_000_000;

struct Harness {
    engine: Engine,
    clock: ManualClock,
    app: Identity,
    sim: Identity,
}

fn harness() -> Harness {
    harness_with(EmulatorConfig::default())
}

fn harness_with(config: EmulatorConfig) -> Harness {
    let clock = ManualClock::new(T0);
    Harness {
        engine: Engine::new(config, Arc::new(clock.clone())),
        clock,
        app: Identity::app(TEST_ORG_ID, TEST_APP_ID),
        sim: Identity::simulator(TEST_ORG_ID, TEST_APP_ID),
    }
}

fn phone(n: &str) -> CustomerNumber {
    CustomerNumber {
        provider: CustomerNumberProvider::Cellular as i32,
        number: n.into(),
        partition: None,
    }
}

fn mapping(k: &str, v: &str) -> IndexMapping {
    IndexMapping {
        key: k.into(),
        value: Some(v.into()),
    }
}

fn index(k: &str, v: &str, expires_at: Option<i64>) -> p::CustomerIndex {
    p::CustomerIndex {
        mapping: Some(mapping(k, v)),
        expires_at: expires_at.map(to_timestamp),
    }
}

/// Tags the customer with this number (creating it if needed), without expiry.
fn tag_by_number(number: &str, k: &str, v: &str) -> E {
    E::UpdateCustomerTag(p::UpdateCustomerTagCommand {
        customer: Some(p::update_customer_tag_command::Customer::CustomerNumber(
            phone(number),
        )),
        updates: vec![index(k, v, None)],
    })
}

/// An index entry without expiry as replies carry it: `{0, 0}` for "never expires".
fn never_expiring(k: &str, v: &str) -> p::CustomerIndex {
    p::CustomerIndex {
        mapping: Some(mapping(k, v)),
        expires_at: Some(p::prost_types::Timestamp::default()),
    }
}

fn text(v: &str) -> DataMapValue {
    DataMapValue {
        value: Some(Value::StringVal(v.into())),
    }
}

fn sms() -> MessagingChannelNumber {
    MessagingChannelNumber {
        channel: MessagingChannel::Sms as i32,
        number: TEST_SMS_SHORT_CODE.into(),
    }
}

fn ussd() -> MessagingChannelNumber {
    MessagingChannelNumber {
        channel: MessagingChannel::Ussd as i32,
        number: TEST_USSD_CODE.into(),
    }
}

fn text_message(t: &str) -> p::OutboundMessage {
    p::OutboundMessage {
        body: Some(p::OutboundMessageBody {
            entry: Some(p::outbound_message_body::Entry::Text(t.into())),
        }),
        ..Default::default()
    }
}

/// A data directory no other test run uses.
fn temp_data_dir(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

/// Opens an engine with the default configuration over `dir`, as a (re)start does.
fn reopen(clock: &ManualClock, dir: &std::path::Path) -> Engine {
    Engine::open(EmulatorConfig::default(), Arc::new(clock.clone()), dir).unwrap()
}

/// The reply and notifications of an app command whose change is committed.
struct Committed {
    reply: p::AppToServerCommandReply,
    effects: Vec<Effect>,
}

/// Runs an app command and waits until its change is durable.
async fn committed(engine: &Engine, app: &Identity, entry: E) -> Committed {
    let out = engine.app_command(app, AppToServerCommand { entry: Some(entry) });
    out.durable.wait().await.unwrap();
    Committed {
        reply: out.reply,
        effects: out.effects,
    }
}

impl Harness {
    /// Runs a simulator command as the test simulator.
    fn simulate(&self, entry: p::simulator_to_server_command::Entry) -> SimulatorOutcome {
        self.engine.simulator_command(
            &self.sim,
            p::SimulatorToServerCommand { entry: Some(entry) },
        )
    }

    fn run(&self, entry: E) -> (R, Vec<Effect>) {
        let out = self
            .engine
            .app_command(&self.app, AppToServerCommand { entry: Some(entry) });
        (
            out.reply.entry.expect("every command gets a reply"),
            out.effects,
        )
    }

    fn update(&self, entry: E) -> p::UpdateCustomerStateReply {
        match self.run(entry).0 {
            R::UpdateCustomerState(r) => r,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn app_data(&self, entry: E) -> p::UpdateCustomerAppDataReply {
        match self.run(entry).0 {
            R::UpdateCustomerAppData(r) => r,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn create(&self, number: &str) -> String {
        let r = self.update(E::CreateCustomer(p::CreateCustomerCommand {
            customer_number: Some(phone(number)),
        }));
        assert!(r.status, "{}", r.description);
        r.customer_id.expect("created customer has an id")
    }

    fn state(&self, id: &str) -> p::CustomerStateReplyData {
        match self
            .run(E::GetCustomerState(p::GetCustomerStateCommand {
                customer: Some(p::get_customer_state_command::Customer::CustomerId(
                    id.into(),
                )),
            }))
            .0
        {
            R::GetCustomerState(r) => {
                assert!(r.status, "{}", r.description);
                r.data.expect("state data")
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn tag(&self, id: &str, k: &str, v: &str, expires_at: Option<i64>) {
        let r = self.update(E::UpdateCustomerTag(p::UpdateCustomerTagCommand {
            customer: Some(p::update_customer_tag_command::Customer::CustomerId(
                id.into(),
            )),
            updates: vec![index(k, v, expires_at)],
        }));
        assert!(r.status, "{}", r.description);
    }

    fn fire(&self) -> Vec<Effect> {
        self.engine.fire_due(usize::MAX).effects
    }
}

/// The customer notifications of the effects, as (customer id, entry).
fn app_entries(effects: &[Effect]) -> Vec<(String, CE)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::App(AppNotice {
                notification:
                    p::ServerToAppNotification {
                        entry: Some(NE::Customer(c)),
                    },
                ..
            }) => Some((c.customer_id.clone(), c.entry.clone()?)),
            _ => None,
        })
        .collect()
}

fn sim_entries(effects: &[Effect]) -> Vec<SE> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Simulator(s) => s.notification.entry.clone(),
            _ => None,
        })
        .collect()
}

#[test]
fn customers_are_created_on_first_reference_and_found_again() {
    let h = harness();
    let id = h.create("+254700000001");
    assert!(id.starts_with("el_cst_"));
    assert_eq!(h.create("+254700000001"), id, "same number, same customer");
    let st = h.state(&id);
    assert_eq!(st.customer_id, id);
    let numbers = st.activity_state.unwrap().customer_numbers;
    assert_eq!(numbers[0].number, "+254700000001");
    assert_eq!(h.engine.customer_count(TEST_ORG_ID), 1);
}

#[test]
fn unknown_customer_id_gives_status_false_with_a_description() {
    let h = harness();
    let (reply, _) = h.run(E::GetCustomerState(p::GetCustomerStateCommand {
        customer: Some(p::get_customer_state_command::Customer::CustomerId(
            "el_cst_nope".into(),
        )),
    }));
    let R::GetCustomerState(r) = reply else {
        panic!("wrong reply")
    };
    assert!(!r.status);
    assert!(r.description.contains("el_cst_nope"));
    let r = h.update(E::DeleteCustomerTag(p::DeleteCustomerTagCommand {
        customer: Some(p::delete_customer_tag_command::Customer::CustomerId(
            "el_cst_nope".into(),
        )),
        deletions: vec!["x".into()],
    }));
    assert!(!r.status);
}

#[test]
fn missing_command_is_answered_unknown_command() {
    let h = harness();
    let out = h
        .engine
        .app_command(&h.app, AppToServerCommand { entry: None });
    let Some(R::UpdateCustomerState(r)) = out.reply.entry else {
        panic!("wrong reply")
    };
    assert!(!r.status);
    assert_eq!(r.description, "unknown command");
}

#[test]
fn tags_replace_by_key_expire_and_delete() {
    let h = harness();
    let id = h.create("+254700000002");
    h.tag(&id, "tier", "gold", None);
    h.tag(&id, "tier", "silver", None);
    h.tag(&id, "promo", "x", Some(T0 + 1_000));
    let tags = h.state(&id).identity_state.unwrap().tags;
    assert_eq!(tags.len(), 2);
    assert!(tags.contains(&never_expiring("tier", "silver")));
    h.clock.advance_millis(2_000);
    let tags = h.state(&id).identity_state.unwrap().tags;
    assert_eq!(
        tags,
        vec![never_expiring("tier", "silver")],
        "expired tag hidden"
    );
    let r = h.update(E::DeleteCustomerTag(p::DeleteCustomerTagCommand {
        customer: Some(p::delete_customer_tag_command::Customer::CustomerId(
            id.clone(),
        )),
        deletions: vec!["tier".into()],
    }));
    assert!(r.status);
    assert!(h.state(&id).identity_state.unwrap().tags.is_empty());
}

fn index_at(k: &str, v: &str, seconds: i64) -> p::CustomerIndex {
    p::CustomerIndex {
        mapping: Some(mapping(k, v)),
        expires_at: Some(p::prost_types::Timestamp { seconds, nanos: 0 }),
    }
}

#[test]
fn a_zero_or_negative_expiry_never_expires() {
    // The published JavaScript client sends `expiresAt: {seconds: 0}` on every tag and
    // secondary id that has no expiry.
    let h = harness();
    let id = h.create("+254700000040");
    let r = h.update(E::UpdateCustomerTag(p::UpdateCustomerTagCommand {
        customer: Some(p::update_customer_tag_command::Customer::CustomerId(
            id.clone(),
        )),
        updates: vec![index_at("tier", "gold", 0), index_at("segment", "b", -60)],
    }));
    assert!(r.status, "{}", r.description);
    let r = h.update(E::UpdateCustomerSecondaryId(
        p::UpdateCustomerSecondaryIdCommand {
            customer: Some(
                p::update_customer_secondary_id_command::Customer::CustomerId(id.clone()),
            ),
            updates: vec![index_at("passport", "P1", 0)],
        },
    ));
    assert!(r.status, "{}", r.description);
    h.clock.advance_millis(86_400_000);

    let identity = h.state(&id).identity_state.unwrap();
    assert_eq!(
        identity.tags,
        vec![
            never_expiring("tier", "gold"),
            never_expiring("segment", "b")
        ]
    );
    assert_eq!(
        identity.secondary_ids,
        vec![never_expiring("passport", "P1")]
    );
    // Still found by secondary id and by tag.
    let (reply, _) = h.run(E::GetCustomerState(p::GetCustomerStateCommand {
        customer: Some(p::get_customer_state_command::Customer::SecondaryId(
            mapping("passport", "P1"),
        )),
    }));
    let R::GetCustomerState(r) = reply else {
        panic!("wrong reply")
    };
    assert!(r.status, "{}", r.description);
    assert_eq!(r.data.unwrap().customer_id, id);
    let (reply, _) = h.run(E::AddCustomerReminderTag(
        p::AddCustomerReminderTagCommand {
            tag: Some(mapping("tier", "gold")),
            reminder: Some(reminder("nudge", T0 + 86_401_000, 0)),
        },
    ));
    assert!(matches!(reply, R::TagCommand(t) if t.status));
    h.clock.advance_millis(1_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, id);
}

#[test]
fn replies_carry_every_tag_with_an_expiry_and_a_value() {
    // The published JavaScript client reads `expiresAt.seconds` and `mapping.value.value` on
    // every tag and secondary id without checking they are there.
    let h = harness();
    let id = h.create("+254700000041");
    let bare = p::CustomerIndex {
        mapping: Some(IndexMapping {
            key: "vip".into(),
            value: None,
        }),
        expires_at: None,
    };
    let r = h.update(E::UpdateCustomerTag(p::UpdateCustomerTagCommand {
        customer: Some(p::update_customer_tag_command::Customer::CustomerId(
            id.clone(),
        )),
        updates: vec![bare, index("promo", "x", Some(T0 + 60_000))],
    }));
    assert!(r.status, "{}", r.description);
    let tags = h.state(&id).identity_state.unwrap().tags;
    assert_eq!(
        tags,
        vec![
            never_expiring("vip", ""),
            index("promo", "x", Some(T0 + 60_000))
        ],
        "no expiry reads as {{0, 0}}, a real expiry is kept"
    );

    // Reminders by tag carry the tag the same way.
    let work_id = add_tag_reminder(&h, ("vip", ""), reminder("r", T0 + 1_000, 0));
    h.clock.advance_millis(1_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].1.work_id.as_deref(), Some(work_id.as_str()));
    assert_eq!(fired[0].1.tag, Some(never_expiring("vip", "")));
}

#[test]
fn customer_reminder_commands_answer_with_update_customer_app_data() {
    // docs/protocol.md: the published clients read `update_customer_app_data` for these.
    let h = harness();
    let id = h.create("+254700000042");
    let added = add_reminder(&h, &id, reminder("k", T0 + 60_000, 0));
    assert!(added.status, "{}", added.description);
    assert_eq!(added.customer_id.as_deref(), Some(id.as_str()));
    let cancel = || {
        h.app_data(E::CancelCustomerReminder(
            p::CancelCustomerReminderCommand {
                customer: Some(p::cancel_customer_reminder_command::Customer::CustomerId(
                    id.clone(),
                )),
                key: "k".into(),
            },
        ))
    };
    let cancelled = cancel();
    assert!(cancelled.status, "{}", cancelled.description);
    assert_eq!(cancelled.customer_id.as_deref(), Some(id.as_str()));
    let again = cancel();
    assert!(!again.status, "nothing left to cancel");
    assert!(again.description.contains('k'), "{}", again.description);
}

#[test]
fn secondary_ids_identify_customers_uniquely() {
    let h = harness();
    let a = h.create("+254700000003");
    let b = h.create("+254700000004");
    let set = |id: &str| {
        h.update(E::UpdateCustomerSecondaryId(
            p::UpdateCustomerSecondaryIdCommand {
                customer: Some(
                    p::update_customer_secondary_id_command::Customer::CustomerId(id.into()),
                ),
                updates: vec![index("passport", "A123", None)],
            },
        ))
    };
    assert!(set(&a).status);
    let conflict = set(&b);
    assert!(!conflict.status, "a secondary id belongs to one customer");
    let st = match h
        .run(E::GetCustomerState(p::GetCustomerStateCommand {
            customer: Some(p::get_customer_state_command::Customer::SecondaryId(
                mapping("passport", "A123"),
            )),
        }))
        .0
    {
        R::GetCustomerState(r) => r.data.unwrap(),
        _ => panic!("wrong reply"),
    };
    assert_eq!(st.customer_id, a);
    let r = h.update(E::DeleteCustomerSecondaryId(
        p::DeleteCustomerSecondaryIdCommand {
            customer: Some(
                p::delete_customer_secondary_id_command::Customer::CustomerId(a.clone()),
            ),
            deletions: vec![mapping("passport", "A123")],
        },
    ));
    assert!(r.status);
    assert!(set(&b).status, "free again after deletion");
}

#[test]
fn metadata_updates_and_deletes() {
    let h = harness();
    let id = h.create("+254700000005");
    let r = h.update(E::UpdateCustomerMetadata(
        p::UpdateCustomerMetadataCommand {
            customer: Some(p::update_customer_metadata_command::Customer::CustomerId(
                id.clone(),
            )),
            updates: [
                ("name".to_string(), text("Ann")),
                ("age".into(), text("30")),
            ]
            .into_iter()
            .collect(),
        },
    ));
    assert!(r.status);
    let r = h.update(E::DeleteCustomerMetadata(
        p::DeleteCustomerMetadataCommand {
            customer: Some(p::delete_customer_metadata_command::Customer::CustomerId(
                id.clone(),
            )),
            deletions: vec!["age".into()],
        },
    ));
    assert!(r.status);
    let meta = h.state(&id).identity_state.unwrap().metadata;
    assert_eq!(meta.len(), 1);
    assert_eq!(meta["name"], text("Ann"));
}

#[test]
fn app_data_lease_locks_other_leases_until_update_or_90_seconds() {
    let h = harness();
    let id = h.create("+254700000006");
    let customer = || {
        Some(p::lease_customer_app_data_command::Customer::CustomerId(
            id.clone(),
        ))
    };
    let lease = || match h
        .run(E::LeaseCustomerAppData(p::LeaseCustomerAppDataCommand {
            customer: customer(),
        }))
        .0
    {
        R::LeaseCustomerAppData(r) => r,
        _ => panic!("wrong reply"),
    };
    let update = |v: &str| match h
        .run(E::UpdateCustomerAppData(p::UpdateCustomerAppDataCommand {
            customer: Some(p::update_customer_app_data_command::Customer::CustomerId(
                id.clone(),
            )),
            update: Some(text(v)),
        }))
        .0
    {
        R::UpdateCustomerAppData(r) => r,
        _ => panic!("wrong reply"),
    };
    assert!(update("v1").status);
    let first = lease();
    assert!(first.status);
    assert_eq!(first.value, Some(text("v1")));
    assert!(!lease().status, "locked while leased");
    assert!(update("v2").status, "an update releases the lease");
    let again = lease();
    assert!(again.status);
    assert_eq!(again.value, Some(text("v2")));
    h.clock.advance_millis(89_000);
    assert!(!lease().status);
    h.clock.advance_millis(1_000);
    assert!(lease().status, "the lease lapses after 90 s");
    match h
        .run(E::DeleteCustomerAppData(p::DeleteCustomerAppDataCommand {
            customer: Some(p::delete_customer_app_data_command::Customer::CustomerId(
                id.clone(),
            )),
        }))
        .0
    {
        R::UpdateCustomerAppData(r) => assert!(r.status),
        _ => panic!("wrong reply"),
    }
    assert_eq!(lease().value, None);
}

fn reminder(key: &str, at: i64, interval_secs: i64) -> p::CustomerReminder {
    p::CustomerReminder {
        key: key.into(),
        remind_at: Some(to_timestamp(at)),
        interval: (interval_secs > 0).then_some(prost_types::Duration {
            seconds: interval_secs,
            nanos: 0,
        }),
        payload: Some("pay up".into()),
    }
}

fn add_reminder(h: &Harness, id: &str, r: p::CustomerReminder) -> p::UpdateCustomerAppDataReply {
    h.app_data(E::AddCustomerReminder(p::AddCustomerReminderCommand {
        customer: Some(p::add_customer_reminder_command::Customer::CustomerId(
            id.into(),
        )),
        reminder: Some(r),
    }))
}

fn reminders_fired(effects: &[Effect]) -> Vec<(String, p::ReminderNotification)> {
    app_entries(effects)
        .into_iter()
        .filter_map(|(id, e)| match e {
            CE::Reminder(r) => Some((id, r)),
            _ => None,
        })
        .collect()
}

#[test]
fn reminders_fire_at_remind_at_repeat_and_cancel() {
    let h = harness();
    let id = h.create("+254700000007");
    assert!(add_reminder(&h, &id, reminder("once", T0 + 10_000, 0)).status);
    assert!(add_reminder(&h, &id, reminder("daily", T0 + 5_000, 60)).status);
    assert_eq!(h.engine.next_due(), Some(T0 + 5_000));
    assert!(h.fire().is_empty(), "nothing due yet");

    h.clock.advance_millis(5_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, id);
    let r = fired[0].1.reminder.clone().unwrap();
    assert_eq!(r.key, "daily");
    assert_eq!(r.payload.as_deref(), Some("pay up"));
    assert!(fired[0].1.tag.is_none());

    h.clock.advance_millis(5_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].1.reminder.as_ref().unwrap().key, "once");

    h.clock.advance_millis(55_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(
        fired.len(),
        1,
        "the repeating reminder fires again one interval later"
    );
    assert_eq!(fired[0].1.reminder.as_ref().unwrap().key, "daily");

    let r = h.app_data(E::CancelCustomerReminder(
        p::CancelCustomerReminderCommand {
            customer: Some(p::cancel_customer_reminder_command::Customer::CustomerId(
                id.clone(),
            )),
            key: "daily".into(),
        },
    ));
    assert!(r.status);
    h.clock.advance_millis(600_000);
    assert!(reminders_fired(&h.fire()).is_empty(), "cancelled");
}

#[test]
fn replacing_a_reminder_by_key_fires_only_the_new_one() {
    let h = harness();
    let id = h.create("+254700000008");
    add_reminder(&h, &id, reminder("k", T0 + 1_000, 0));
    add_reminder(&h, &id, reminder("k", T0 + 3_000, 0));
    h.clock.advance_millis(1_500);
    assert!(reminders_fired(&h.fire()).is_empty());
    h.clock.advance_millis(2_000);
    assert_eq!(reminders_fired(&h.fire()).len(), 1);
}

#[test]
fn invalid_reminders_are_refused() {
    let h = harness();
    let id = h.create("+254700000009");
    let mut r = reminder("", T0, 0);
    assert!(!add_reminder(&h, &id, r.clone()).status);
    r.key = "k".into();
    r.remind_at = None;
    assert!(!add_reminder(&h, &id, r).status);
}

#[test]
fn tag_reminders_reach_every_tagged_customer_with_tag_and_work_id() {
    let h = harness();
    let a = h.create("+254700000010");
    let b = h.create("+254700000011");
    let c = h.create("+254700000012");
    h.tag(&a, "segment", "late", None);
    h.tag(&b, "segment", "late", None);
    h.tag(&c, "segment", "early", None);
    let (reply, _) = h.run(E::AddCustomerReminderTag(
        p::AddCustomerReminderTagCommand {
            tag: Some(mapping("segment", "late")),
            reminder: Some(reminder("nudge", T0 + 1_000, 0)),
        },
    ));
    let R::TagCommand(t) = reply else {
        panic!("wrong reply")
    };
    assert!(t.status);
    let work_id = t.work_id.unwrap();
    h.clock.advance_millis(1_000);
    let mut fired = reminders_fired(&h.fire());
    fired.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(
        fired.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
        expected
    );
    for (_, n) in &fired {
        assert_eq!(n.work_id.as_deref(), Some(work_id.as_str()));
        assert_eq!(
            n.tag.as_ref().and_then(|t| t.mapping.clone()),
            Some(mapping("segment", "late"))
        );
    }

    h.run(E::AddCustomerReminderTag(
        p::AddCustomerReminderTagCommand {
            tag: Some(mapping("segment", "late")),
            reminder: Some(reminder("again", T0 + 5_000, 0)),
        },
    ));
    let (reply, _) = h.run(E::CancelCustomerReminderTag(
        p::CancelCustomerReminderTagCommand {
            tag: Some(mapping("segment", "late")),
            key: "again".into(),
        },
    ));
    assert!(matches!(reply, R::TagCommand(t) if t.status && t.work_id.is_some()));
    h.clock.advance_millis(10_000);
    assert!(reminders_fired(&h.fire()).is_empty());
}

fn add_tag_reminder(h: &Harness, tag: (&str, &str), r: p::CustomerReminder) -> String {
    let (reply, _) = h.run(E::AddCustomerReminderTag(
        p::AddCustomerReminderTagCommand {
            tag: Some(mapping(tag.0, tag.1)),
            reminder: Some(r),
        },
    ));
    let R::TagCommand(t) = reply else {
        panic!("wrong reply")
    };
    assert!(t.status, "{}", t.description);
    t.work_id.unwrap()
}

fn fired_ids(h: &Harness) -> Vec<String> {
    let mut ids: Vec<String> = reminders_fired(&h.fire())
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn tag_reminders_apply_to_customers_tagged_later_and_leave_untagged_ones() {
    let h = harness();
    let early = h.create("+254700000013");
    let late = h.create("+254700000014");
    let leaver = h.create("+254700000015");
    h.tag(&early, "plan", "gold", None);
    h.tag(&leaver, "plan", "gold", None);
    let work_id = add_tag_reminder(&h, ("plan", "gold"), reminder("renew", T0 + 10_000, 0));
    h.tag(&late, "plan", "gold", None);
    // Replacing the tag's value drops the reminders the old value brought.
    h.tag(&leaver, "plan", "silver", None);
    h.clock.advance_millis(10_000);
    let fired = reminders_fired(&h.fire());
    let mut ids: Vec<&str> = fired.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    let mut expected = vec![early.as_str(), late.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    for (_, n) in &fired {
        assert_eq!(n.work_id.as_deref(), Some(work_id.as_str()));
        let due = n.reminder.as_ref().and_then(|r| r.remind_at.as_ref());
        assert_eq!(due, Some(&to_timestamp(T0 + 10_000)));
    }
    // Its time has passed and it does not repeat: customers tagged now do not get it.
    let after = h.create("+254700000016");
    h.tag(&after, "plan", "gold", None);
    h.clock.advance_millis(60_000);
    assert!(fired_ids(&h).is_empty());
}

#[test]
fn a_tag_reminder_stops_for_a_customer_whose_tag_expired() {
    let h = harness();
    let keeps = h.create("+254700000030");
    let expires = h.create("+254700000031");
    h.tag(&keeps, "trial", "on", None);
    h.tag(&expires, "trial", "on", Some(T0 + 5_000));
    add_tag_reminder(&h, ("trial", "on"), reminder("ends", T0 + 10_000, 60));
    h.clock.advance_millis(10_000);
    // Past its expiry the tag is gone, and so is the reminder it brought; the other customer
    // keeps getting it, period after period.
    assert_eq!(fired_ids(&h), vec![keeps.clone()]);
    h.clock.advance_millis(60_000);
    assert_eq!(fired_ids(&h), vec![keeps.clone()]);
}

#[test]
fn repeating_tag_reminders_reach_late_customers_from_the_next_period_until_cancelled() {
    let h = harness();
    let first = h.create("+254700000017");
    h.tag(&first, "plan", "gold", None);
    add_tag_reminder(&h, ("plan", "gold"), reminder("monthly", T0 + 1_000, 60));
    h.clock.advance_millis(1_000);
    assert_eq!(fired_ids(&h), vec![first.clone()]);
    // Tagged between periods: joins at the next one, with no burst of missed ones.
    h.clock.advance_millis(30_000);
    let late = h.create("+254700000018");
    h.tag(&late, "plan", "gold", None);
    assert!(fired_ids(&h).is_empty());
    h.clock.advance_millis(30_000);
    let mut both = vec![first.clone(), late.clone()];
    both.sort();
    assert_eq!(fired_ids(&h), both);
    // Deleting the tag stops it for that customer.
    let r = h.update(E::DeleteCustomerTag(p::DeleteCustomerTagCommand {
        customer: Some(p::delete_customer_tag_command::Customer::CustomerId(
            late.clone(),
        )),
        deletions: vec!["plan".into()],
    }));
    assert!(r.status, "{}", r.description);
    h.clock.advance_millis(60_000);
    assert_eq!(fired_ids(&h), vec![first.clone()]);
    // Cancelling by tag stops it for everyone, including customers tagged afterwards.
    let (reply, _) = h.run(E::CancelCustomerReminderTag(
        p::CancelCustomerReminderTagCommand {
            tag: Some(mapping("plan", "gold")),
            key: "monthly".into(),
        },
    ));
    assert!(matches!(reply, R::TagCommand(t) if t.status));
    h.tag(&late, "plan", "gold", None);
    h.clock.advance_millis(120_000);
    assert!(fired_ids(&h).is_empty());
}

#[test]
fn send_message_reaches_the_simulator_and_reports_delivery() {
    let h = harness();
    let (reply, effects) = h.run(E::SendMessage(p::SendMessageCommand {
        customer_number: Some(phone("+254700000013")),
        channel_number: Some(sms()),
        message: Some(text_message("hello")),
    }));
    let R::SendMessage(r) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(r.status, MessageDeliveryStatus::Sent as i32);
    let message_id = r.message_id.unwrap();
    let customer_id = r.customer_id.unwrap();
    let sims = sim_entries(&effects);
    let [SE::SendMessage(s)] = sims.as_slice() else {
        panic!("expected one simulator notification, got {sims:?}")
    };
    assert_eq!(s.message_id, message_id);
    assert_eq!(s.customer_number.as_ref().unwrap().number, "+254700000013");
    assert_eq!(s.message, Some(text_message("hello")));
    let apps = app_entries(&effects);
    assert!(apps.iter().any(|(id, e)| id == &customer_id
        && matches!(e, CE::MessageStatus(m) if m.message_id == message_id
            && m.status == MessageDeliveryStatus::Delivered as i32)));
    let messages = h.state(&customer_id).messaging_state.unwrap().messages;
    assert_eq!(messages.len(), 1);
}

#[test]
fn send_message_validates_channel_and_body() {
    let h = harness();
    let send = |cn: MessagingChannelNumber, m: Option<p::OutboundMessage>| match h
        .run(E::SendMessage(p::SendMessageCommand {
            customer_number: Some(phone("+254700000014")),
            channel_number: Some(cn),
            message: m,
        }))
        .0
    {
        R::SendMessage(r) => r.status,
        _ => panic!("wrong reply"),
    };
    let wrong = MessagingChannelNumber {
        channel: MessagingChannel::Sms as i32,
        number: "99999".into(),
    };
    assert_eq!(
        send(wrong, Some(text_message("x"))),
        MessageDeliveryStatus::InvalidChannelNumber as i32
    );
    assert_eq!(
        send(sms(), None),
        MessageDeliveryStatus::InvalidRequest as i32
    );
    assert_eq!(
        send(sms(), Some(p::OutboundMessage::default())),
        MessageDeliveryStatus::InvalidRequest as i32
    );
}

#[test]
fn blocked_consent_stops_messages_until_allowed() {
    let h = harness();
    let consent = |u: p::MessagingConsentUpdate| {
        h.run(E::UpdateMessagingConsent(
            p::UpdateMessagingConsentCommand {
                customer_number: Some(phone("+254700000015")),
                channel_number: Some(sms()),
                update: u as i32,
            },
        ))
    };
    let (reply, effects) = consent(p::MessagingConsentUpdate::Block);
    let R::UpdateMessagingConsent(r) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(r.status, p::MessagingConsentUpdateStatus::Completed as i32);
    assert!(app_entries(&effects).iter().any(|(_, e)| matches!(e,
        CE::MessagingConsentUpdate(n) if n.update == p::MessagingConsentUpdate::Block as i32)));
    let send = || match h
        .run(E::SendMessage(p::SendMessageCommand {
            customer_number: Some(phone("+254700000015")),
            channel_number: Some(sms()),
            message: Some(text_message("promo")),
        }))
        .0
    {
        R::SendMessage(r) => r.status,
        _ => panic!("wrong reply"),
    };
    assert_eq!(send(), MessageDeliveryStatus::NoConsent as i32);
    consent(p::MessagingConsentUpdate::Allow);
    assert_eq!(send(), MessageDeliveryStatus::Sent as i32);
}

#[test]
fn voice_dialplan_on_voice_channel_places_a_call() {
    let h = harness();
    let voice = MessagingChannelNumber {
        channel: MessagingChannel::Voice as i32,
        number: TEST_VOICE_NUMBER.into(),
    };
    let dialplan = p::OutboundMessage {
        body: Some(p::OutboundMessageBody {
            entry: Some(p::outbound_message_body::Entry::Voice(
                p::VoiceCallDialplanMessageBody {
                    actions: vec![p::VoiceCallAction {
                        entry: Some(p::voice_call_action::Entry::Say(p::SayCallAction {
                            text: "hi".into(),
                            ..Default::default()
                        })),
                    }],
                },
            )),
        }),
        ..Default::default()
    };
    let (reply, effects) = h.run(E::SendMessage(p::SendMessageCommand {
        customer_number: Some(phone("+254700000016")),
        channel_number: Some(voice),
        message: Some(dialplan),
    }));
    let R::SendMessage(r) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(r.status, MessageDeliveryStatus::SessionInitiated as i32);
    let session_id = r.session_id.expect("a call has a session");
    let sims = sim_entries(&effects);
    let [SE::MakeVoiceCall(call)] = sims.as_slice() else {
        panic!("expected a call, got {sims:?}")
    };
    assert_eq!(call.session_id, session_id);
    assert!(
        app_entries(&effects).iter().any(
            |(_, e)| matches!(e, CE::MessagingSessionStarted(s) if s.session_id == session_id)
        )
    );
}

fn ussd_input(status: p::UssdSessionStatus, t: &str) -> p::InboundMessageBody {
    p::InboundMessageBody {
        entry: Some(p::inbound_message_body::Entry::Ussd(
            p::UssdInputMessageBody {
                status: status as i32,
                text: Some(t.into()),
            },
        )),
    }
}

#[test]
fn inbound_ussd_notifies_the_app_and_a_terminal_menu_ends_the_session() {
    let h = harness();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceiveMessage(
        p::ReceiveMessageSimulatorCommand {
            customer_number: "+254700000017".into(),
            channel_number: Some(ussd()),
            parts: vec![ussd_input(p::UssdSessionStatus::Active, "")],
            session_id: Some("sess-1".into()),
            cost: None,
            duration: None,
        },
    ));
    assert!(out.reply.status, "{}", out.reply.description);
    let (idx, exchange) = out.exchange.expect("the simulator waits for the app");
    let Effect::App(notice) = &out.effects[idx] else {
        panic!("the awaited effect is an app notification")
    };
    assert!(notice.awaits_reply);
    let entries = app_entries(&out.effects);
    assert!(entries.iter().any(|(_, e)| matches!(e,
        CE::MessagingSessionStarted(s) if s.session_id == "sess-1")));
    assert!(entries.iter().any(|(_, e)| matches!(e,
        CE::ReceivedMessage(m) if m.session_id.as_deref() == Some("sess-1"))));

    let menu = p::OutboundMessage {
        body: Some(p::OutboundMessageBody {
            entry: Some(p::outbound_message_body::Entry::Ussd(
                p::UssdMenuMessageBody {
                    text: "Bye".into(),
                    is_terminal: true,
                },
            )),
        }),
        ..Default::default()
    };
    let done = h
        .engine
        .inbound_reply(&h.sim, &exchange, Some(menu.clone()));
    assert!(done.reply.status);
    assert_eq!(done.reply.message, Some(menu));
    assert!(app_entries(&done.effects).iter().any(|(_, e)| matches!(e,
        CE::MessagingSessionEnded(s) if s.session_id == "sess-1"
            && s.reason == p::MessagingSessionEndReason::NormalClearing as i32)));
    let st = h.state(&exchange.customer_id).messaging_state.unwrap();
    assert_eq!(st.sessions.len(), 1);
    assert_eq!(st.messages.len(), 2, "the inbound message and the menu");

    let reply = match h
        .run(E::ReplyToMessage(p::ReplyToMessageCommand {
            customer_id: exchange.customer_id.clone(),
            message_id: "el_msg_unknown".into(),
            message: Some(text_message("x")),
        }))
        .0
    {
        R::SendMessage(r) => r,
        _ => panic!("wrong reply"),
    };
    assert_eq!(
        reply.status,
        MessageDeliveryStatus::InvalidReplyToMessageId as i32
    );
}

#[test]
fn idle_sessions_end_by_inactivity() {
    let h = harness();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceiveMessage(
        p::ReceiveMessageSimulatorCommand {
            customer_number: "+254700000018".into(),
            channel_number: Some(ussd()),
            parts: vec![ussd_input(p::UssdSessionStatus::Active, "")],
            session_id: None,
            ..Default::default()
        },
    ));
    assert!(out.reply.status);
    h.clock
        .advance_millis(EmulatorConfig::default().session_timeout_secs as i64 * 1000);
    let ended = app_entries(&h.fire());
    assert!(ended.iter().any(|(_, e)| matches!(e,
        CE::MessagingSessionEnded(s) if s.reason == p::MessagingSessionEndReason::Inactivity as i32)));
}

#[test]
fn received_sms_can_be_replied_to() {
    let h = harness();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceiveMessage(
        p::ReceiveMessageSimulatorCommand {
            customer_number: "+254700000019".into(),
            channel_number: Some(sms()),
            parts: vec![p::InboundMessageBody {
                entry: Some(p::inbound_message_body::Entry::Text("OK".into())),
            }],
            ..Default::default()
        },
    ));
    let (_, ex) = out.exchange.unwrap();
    assert!(ex.session_id.is_none(), "SMS has no sessions");
    let (reply, effects) = h.run(E::ReplyToMessage(p::ReplyToMessageCommand {
        customer_id: ex.customer_id.clone(),
        message_id: ex.message_id.clone(),
        message: Some(text_message("thanks")),
    }));
    assert!(matches!(reply, R::SendMessage(r) if r.status == MessageDeliveryStatus::Sent as i32));
    assert!(matches!(
        sim_entries(&effects).as_slice(),
        [SE::SendMessage(_)]
    ));
}

#[test]
fn send_message_tag_reaches_tagged_customers() {
    let h = harness();
    let a = h.create("+254700000020");
    let b = h.create("+254700000021");
    h.tag(&a, "vip", "1", None);
    h.tag(&b, "vip", "1", None);
    let (reply, effects) = h.run(E::SendMessageTag(p::SendMessageTagCommand {
        tag: Some(mapping("vip", "1")),
        channel_number: Some(sms()),
        message: Some(text_message("hi vip")),
    }));
    assert!(matches!(reply, R::TagCommand(t) if t.status && t.work_id.is_some()));
    assert_eq!(sim_entries(&effects).len(), 2);
}

fn purse() -> p::PaymentCounterParty {
    p::PaymentCounterParty {
        party: Some(p::payment_counter_party::Party::Purse(
            p::PaymentPurseCounterParty {
                purse_id: TEST_PURSE_ID.into(),
            },
        )),
    }
}

fn wallet(customer_id: &str, wallet_id: &str) -> p::PaymentCounterParty {
    p::PaymentCounterParty {
        party: Some(p::payment_counter_party::Party::Wallet(
            p::PaymentWalletCounterParty {
                customer_id: customer_id.into(),
                wallet_id: wallet_id.into(),
            },
        )),
    }
}

fn mobile(number: &str) -> p::PaymentCounterParty {
    p::PaymentCounterParty {
        party: Some(p::payment_counter_party::Party::Customer(
            p::PaymentCustomerCounterParty {
                customer_number: Some(phone(number)),
                channel_number: Some(p::PaymentChannelNumber {
                    channel: p::PaymentChannel::Cellular as i32,
                    number: TEST_PAYMENT_CHANNEL.into(),
                }),
            },
        )),
    }
}

fn kes(amount: f64) -> p::Cash {
    p::Cash {
        currency_code: "KES".into(),
        amount,
    }
}

impl Harness {
    fn pay(
        &self,
        debit: p::PaymentCounterParty,
        credit: p::PaymentCounterParty,
        value: p::Cash,
    ) -> (p::InitiatePaymentReply, Vec<Effect>) {
        match self.run(E::InitiatePayment(p::InitiatePaymentCommand {
            debit_party: Some(debit),
            credit_party: Some(credit),
            value: Some(value),
            narration: "test".into(),
        })) {
            (R::InitiatePayment(r), e) => (r, e),
            other => panic!("wrong reply {other:?}"),
        }
    }

    fn settle(
        &self,
        txn: &str,
        status: PaymentStatus,
    ) -> (p::SimulatorToServerCommandReply, Vec<Effect>) {
        let out = self.simulate(p::simulator_to_server_command::Entry::UpdatePaymentStatus(
            p::UpdatePaymentStatusSimulatorCommand {
                transaction_id: txn.into(),
                status: status as i32,
            },
        ));
        (out.reply, out.effects)
    }

    fn purse(&self) -> (f64, f64) {
        self.engine
            .purse_balance(TEST_ORG_ID, TEST_PURSE_ID)
            .unwrap()
    }
}

/// The `PaymentStatusNotification`s among effects, as (customer id or purse id, transaction
/// id, status).
fn payment_statuses(effects: &[Effect]) -> Vec<(String, String, i32)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::App(AppNotice {
                notification: p::ServerToAppNotification { entry: Some(n) },
                ..
            }) => match n {
                NE::Customer(c) => match &c.entry {
                    Some(CE::PaymentStatus(s)) => {
                        Some((c.customer_id.clone(), s.transaction_id.clone(), s.status))
                    }
                    _ => None,
                },
                NE::Purse(pn) => match &pn.entry {
                    Some(p::server_to_app_purse_notification::Entry::PaymentStatus(s)) => {
                        Some((pn.purse_id.clone(), s.transaction_id.clone(), s.status))
                    }
                    _ => None,
                },
            },
            _ => None,
        })
        .collect()
}

const SETTLE: i64 = DEFAULT_SETTLE_DELAY_MS as i64;

#[test]
fn purse_to_wallet_and_back_settle_after_the_delay_and_check_funds() {
    let h = harness();
    let id = h.create("+254700000022");
    let start = h.purse();
    let (r, effects) = h.pay(purse(), wallet(&id, "savings"), kes(100.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32, "{}", r.description);
    assert!(payment_statuses(&effects).is_empty());
    let txn = r.transaction_id.unwrap();
    assert_eq!(h.purse(), (start.0 - 100.0, start.1), "held until settled");
    h.clock.advance_millis(SETTLE - 1);
    assert!(
        payment_statuses(&h.fire()).is_empty(),
        "not before the delay"
    );
    h.clock.advance_millis(1);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(id.clone(), txn, PaymentStatus::Success as i32)]
    );
    assert_eq!(h.purse(), (start.0 - 100.0, start.1 - 100.0));
    let wallets = h.state(&id).payment_state.unwrap().wallets;
    assert_eq!(wallets["savings"].available.as_ref().unwrap().amount, 100.0);

    let (r, _) = h.pay(wallet(&id, "savings"), purse(), kes(150.0));
    assert_eq!(r.status, PaymentStatus::InsufficientFunds as i32);
    let (r, _) = h.pay(wallet(&id, "savings"), purse(), kes(40.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    let txn = r.transaction_id.unwrap();
    let held = &h.state(&id).payment_state.unwrap().wallets["savings"];
    assert_eq!(held.available.as_ref().unwrap().amount, 60.0);
    assert_eq!(held.actual.as_ref().unwrap().amount, 100.0);
    assert_eq!(held.pending[&txn].value, Some(kes(40.0)), "the hold shows");
    h.clock.advance_millis(SETTLE);
    h.fire();
    assert_eq!(h.purse(), (start.0 - 60.0, start.1 - 60.0));
    let settled = &h.state(&id).payment_state.unwrap().wallets["savings"];
    assert_eq!(settled.actual.as_ref().unwrap().amount, 60.0);
    assert!(settled.pending.is_empty());
}

#[test]
fn purse_to_purse_settles_with_a_purse_notification() {
    let mut config = EmulatorConfig::default();
    config.orgs[0].purses.push(PurseConfig {
        id: "el_prs_second".into(),
        currency: "KES".into(),
        balance: 0.0,
    });
    let h = harness_with(config);
    let second = p::PaymentCounterParty {
        party: Some(p::payment_counter_party::Party::Purse(
            p::PaymentPurseCounterParty {
                purse_id: "el_prs_second".into(),
            },
        )),
    };
    let (r, _) = h.pay(purse(), second, kes(5.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32, "{}", r.description);
    h.clock.advance_millis(SETTLE);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(
            TEST_PURSE_ID.to_string(),
            r.transaction_id.unwrap(),
            PaymentStatus::Success as i32
        )]
    );
    assert_eq!(
        h.engine.purse_balance(TEST_ORG_ID, "el_prs_second"),
        Some((5.0, 5.0))
    );
}

#[test]
fn payouts_settle_by_themselves_unless_a_simulator_settles_first() {
    let h = harness();
    let start = h.purse();
    let (r, effects) = h.pay(purse(), mobile("+254700000060"), kes(20.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    assert!(matches!(
        sim_entries(&effects).as_slice(),
        [SE::SendCustomerPayment(_)]
    ));
    let customer = r.credit_customer_id.clone().unwrap();
    let txn = r.transaction_id.unwrap();
    h.clock.advance_millis(SETTLE);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(customer.clone(), txn.clone(), PaymentStatus::Success as i32)]
    );
    assert_eq!(h.purse(), (start.0 - 20.0, start.1 - 20.0));
    let (late, _) = h.settle(&txn, PaymentStatus::Failed);
    assert!(!late.status, "a settled payout stays settled");

    // A simulator may settle first; its time then passes without a second notification.
    let (r, _) = h.pay(purse(), mobile("+254700000060"), kes(5.0));
    let txn = r.transaction_id.unwrap();
    let (reply, effects) = h.settle(&txn, PaymentStatus::Rejected);
    assert!(reply.status, "{}", reply.description);
    assert_eq!(payment_statuses(&effects).len(), 1);
    h.clock.advance_millis(SETTLE);
    assert!(payment_statuses(&h.fire()).is_empty());
    assert_eq!(h.purse(), (start.0 - 20.0, start.1 - 20.0), "hold released");
}

#[test]
fn payments_to_configured_payees_fail_with_the_configured_status() {
    let mut config = EmulatorConfig::default();
    config.payments.settle_delay_ms = 0;
    config.payments.fail = vec![
        PaymentFailure::new("+2547000000*", "insufficient_funds"),
        PaymentFailure::new("broke-*", "failed"),
    ];
    let h = harness_with(config);
    let start = h.purse();
    let (r, _) = h.pay(purse(), mobile("+254700000061"), kes(9.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    let customer = r.credit_customer_id.clone().unwrap();
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(
            customer.clone(),
            r.transaction_id.unwrap(),
            PaymentStatus::InsufficientFunds as i32
        )]
    );
    assert_eq!(h.purse(), start, "the hold is released");
    let (r, _) = h.pay(purse(), wallet(&customer, "broke-1"), kes(3.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    assert_eq!(
        payment_statuses(&h.fire())[0].2,
        PaymentStatus::Failed as i32
    );
    let (r, _) = h.pay(purse(), mobile("+254711000062"), kes(4.0));
    let fired = payment_statuses(&h.fire());
    assert_eq!(fired[0].1, r.transaction_id.unwrap());
    assert_eq!(
        fired[0].2,
        PaymentStatus::Success as i32,
        "other payees are paid"
    );
    assert_eq!(h.purse(), (start.0 - 4.0, start.1 - 4.0));
}

#[test]
fn too_many_unsettled_payments_are_throttled_before_money_moves() {
    let mut config = EmulatorConfig::default();
    config.payments.max_unsettled = 2;
    let h = harness_with(config);
    let start = h.purse();
    for _ in 0..2 {
        let (r, _) = h.pay(purse(), mobile("+254700000063"), kes(1.0));
        assert_eq!(r.status, PaymentStatus::Queued as i32);
    }
    let (r, _) = h.pay(purse(), mobile("+254700000063"), kes(1.0));
    assert_eq!(
        r.status,
        PaymentStatus::Throttled as i32,
        "{}",
        r.description
    );
    assert_eq!(h.purse(), (start.0 - 2.0, start.1));
    // Checkouts wait for the customer, not for the queue.
    let (r, _) = h.pay(mobile("+254700000063"), purse(), kes(1.0));
    assert_eq!(r.status, PaymentStatus::PendingConfirmation as i32);
    h.clock.advance_millis(SETTLE);
    h.fire();
    let (r, _) = h.pay(purse(), mobile("+254700000063"), kes(1.0));
    assert_eq!(
        r.status,
        PaymentStatus::Queued as i32,
        "room again once settled"
    );
}

#[test]
fn a_simulator_settles_its_own_payment_by_its_own_id() {
    let h = harness();
    let start = h.purse();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceivePayment(
        p::ReceivePaymentSimulatorCommand {
            transaction_id: "mpesa-pending-1".into(),
            channel_number: Some(p::PaymentChannelNumber {
                channel: p::PaymentChannel::Cellular as i32,
                number: TEST_PAYMENT_CHANNEL.into(),
            }),
            customer_number: "+254700000064".into(),
            value: Some(kes(80.0)),
            status: PaymentStatus::PendingValidation as i32,
        },
    ));
    assert!(out.reply.status, "{}", out.reply.description);
    let received = app_entries(&out.effects)
        .into_iter()
        .find_map(|(id, e)| match e {
            CE::ReceivedPayment(r) => Some((id, r)),
            _ => None,
        })
        .expect("received payment notification");
    let (customer, received) = received;
    assert_ne!(received.transaction_id, "mpesa-pending-1");
    assert_eq!(h.purse(), start, "nothing arrives while pending");
    // Not settled by the emulator: the payment is the simulator's.
    h.clock.advance_millis(SETTLE);
    assert!(payment_statuses(&h.fire()).is_empty());

    let (reply, effects) = h.settle("mpesa-pending-1", PaymentStatus::Success);
    assert!(reply.status, "{}", reply.description);
    assert_eq!(
        payment_statuses(&effects),
        vec![(
            customer.clone(),
            received.transaction_id.clone(),
            PaymentStatus::Success as i32
        )],
        "the app hears of it under the id it was told"
    );
    assert_eq!(h.purse(), (start.0 + 80.0, start.1 + 80.0));
    let (again, _) = h.settle(&received.transaction_id, PaymentStatus::Success);
    assert!(!again.status, "both ids name the same, settled, payment");
    let log = h.state(&customer).payment_state.unwrap().transaction_log;
    assert_eq!(
        log[0].provider_transaction_id.as_deref(),
        Some("mpesa-pending-1")
    );
}

#[test]
fn payments_are_validated() {
    let h = harness();
    let id = h.create("+254700000023");
    let unknown = p::PaymentCounterParty {
        party: Some(p::payment_counter_party::Party::Purse(
            p::PaymentPurseCounterParty {
                purse_id: "el_prs_nope".into(),
            },
        )),
    };
    assert_eq!(
        h.pay(unknown, wallet(&id, "w"), kes(1.0)).0.status,
        PaymentStatus::InvalidPurse as i32
    );
    for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            h.pay(purse(), wallet(&id, "w"), kes(bad)).0.status,
            PaymentStatus::InvalidRequest as i32
        );
    }
    let usd = p::Cash {
        currency_code: "USD".into(),
        amount: 1.0,
    };
    assert_eq!(
        h.pay(purse(), wallet(&id, "w"), usd).0.status,
        PaymentStatus::InvalidRequest as i32
    );
    assert_eq!(
        h.pay(wallet(&id, "missing"), purse(), kes(1.0)).0.status,
        PaymentStatus::InvalidWallet as i32
    );
    let huge = kes(TEST_PURSE_BALANCE * 2.0);
    assert_eq!(
        h.pay(purse(), wallet(&id, "w"), huge).0.status,
        PaymentStatus::InsufficientFunds as i32
    );
}

#[test]
fn checkout_waits_for_the_simulator_then_credits_the_purse() {
    let h = harness();
    let start = h.purse();
    let (r, effects) = h.pay(mobile("+254700000024"), purse(), kes(250.0));
    assert_eq!(r.status, PaymentStatus::PendingConfirmation as i32);
    let txn = r.transaction_id.unwrap();
    let customer_id = r.debit_customer_id.unwrap();
    let sims = sim_entries(&effects);
    let [SE::CheckoutPayment(c)] = sims.as_slice() else {
        panic!("expected a checkout, got {sims:?}")
    };
    assert_eq!(c.transaction_id, txn);
    assert_eq!(c.value, Some(kes(250.0)));
    assert_eq!(h.purse(), start, "nothing moves before confirmation");
    let pending = h
        .state(&customer_id)
        .payment_state
        .unwrap()
        .pending_transactions;
    assert_eq!(pending.len(), 1);

    let (reply, effects) = h.settle(&txn, PaymentStatus::Success);
    assert!(reply.status, "{}", reply.description);
    assert_eq!(h.purse(), (start.0 + 250.0, start.1 + 250.0));
    assert!(
        app_entries(&effects)
            .iter()
            .any(|(id, e)| id == &customer_id
                && matches!(e, CE::PaymentStatus(s) if s.transaction_id == txn
            && s.status == PaymentStatus::Success as i32))
    );
    let (again, _) = h.settle(&txn, PaymentStatus::Success);
    assert!(!again.status, "settled transactions stay settled");
    let ps = h.state(&customer_id).payment_state.unwrap();
    assert!(ps.pending_transactions.is_empty());
    assert_eq!(ps.transaction_log.len(), 1);
}

#[test]
fn payout_holds_funds_and_a_failure_releases_them() {
    let h = harness();
    let start = h.purse();
    let (r, effects) = h.pay(purse(), mobile("+254700000025"), kes(70.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    assert!(matches!(
        sim_entries(&effects).as_slice(),
        [SE::SendCustomerPayment(_)]
    ));
    assert_eq!(h.purse(), (start.0 - 70.0, start.1));
    h.settle(r.transaction_id.as_ref().unwrap(), PaymentStatus::Failed);
    assert_eq!(h.purse(), start);

    let (r, _) = h.pay(purse(), mobile("+254700000025"), kes(30.0));
    h.settle(r.transaction_id.as_ref().unwrap(), PaymentStatus::Success);
    assert_eq!(h.purse(), (start.0 - 30.0, start.1 - 30.0));
}

#[test]
fn received_payment_credits_the_purse_and_notifies() {
    let h = harness();
    let start = h.purse();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceivePayment(
        p::ReceivePaymentSimulatorCommand {
            transaction_id: "mpesa-1".into(),
            channel_number: Some(p::PaymentChannelNumber {
                channel: p::PaymentChannel::Cellular as i32,
                number: TEST_PAYMENT_CHANNEL.into(),
            }),
            customer_number: "+254700000026".into(),
            value: Some(kes(500.0)),
            status: PaymentStatus::Success as i32,
        },
    ));
    assert!(out.reply.status, "{}", out.reply.description);
    assert_eq!(h.purse(), (start.0 + 500.0, start.1 + 500.0));
    assert!(app_entries(&out.effects).iter().any(|(_, e)| matches!(e,
        CE::ReceivedPayment(r) if r.purse_id == TEST_PURSE_ID && r.value == Some(kes(500.0)))));
}

#[test]
fn adopt_merges_the_other_customer_and_retires_it() {
    let h = harness();
    let a = h.create("+254700000027");
    let b = h.create("+254700000028");
    h.tag(&b, "from", "b", None);
    add_reminder(&h, &b, reminder("r", T0 + 1_000, 0));
    let r = h.update(E::AdoptCustomerState(p::AdoptCustomerStateCommand {
        customer_id: a.clone(),
        other_customer: Some(
            p::adopt_customer_state_command::OtherCustomer::OtherCustomerId(b.clone()),
        ),
    }));
    assert!(r.status, "{}", r.description);
    assert_eq!(h.create("+254700000028"), a, "b's number now leads to a");
    let st = h.state(&a);
    assert!(
        st.identity_state
            .unwrap()
            .tags
            .contains(&never_expiring("from", "b"))
    );
    assert_eq!(h.engine.customer_count(TEST_ORG_ID), 1);
    h.clock.advance_millis(1_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, a, "adopted reminders fire for the adopter");
    let r = h.update(E::AdoptCustomerState(p::AdoptCustomerStateCommand {
        customer_id: a.clone(),
        other_customer: Some(
            p::adopt_customer_state_command::OtherCustomer::OtherCustomerId(a.clone()),
        ),
    }));
    assert!(!r.status);
}

#[test]
fn delete_customer_forgets_it() {
    let h = harness();
    let a = h.create("+254700000029");
    let r = h.update(E::DeleteCustomer(p::DeleteCustomerCommand {
        customer: Some(p::delete_customer_command::Customer::CustomerNumber(phone(
            "+254700000029",
        ))),
    }));
    assert!(r.status);
    assert_eq!(r.customer_id.as_deref(), Some(a.as_str()));
    assert_eq!(h.engine.customer_count(TEST_ORG_ID), 0);
    let r = h.update(E::DeleteCustomer(p::DeleteCustomerCommand {
        customer: Some(p::delete_customer_command::Customer::CustomerId(a.clone())),
    }));
    assert!(!r.status);
    assert_ne!(
        h.create("+254700000029"),
        a,
        "a new customer after deletion"
    );
}

#[test]
fn activity_is_recorded_and_notified() {
    let h = harness();
    let (reply, effects) = h.run(E::CustomerActivity(p::CustomerActivityCommand {
        customer_number: Some(phone("+254700000030")),
        source: "web".into(),
        session_id: "s1".into(),
        key: "login".into(),
        properties: [("ip".to_string(), "1.2.3.4".to_string())]
            .into_iter()
            .collect(),
    }));
    let R::CustomerActivity(r) = reply else {
        panic!("wrong reply")
    };
    assert!(r.status);
    assert!(
        app_entries(&effects)
            .iter()
            .any(|(_, e)| matches!(e, CE::CustomerActivity(a) if a.source == "web"))
    );
    let sessions = h
        .state(&r.customer_id.unwrap())
        .activity_state
        .unwrap()
        .sessions;
    assert_eq!(sessions[0].activities[0].key, "login");
}

#[test]
fn auth_tokens_work_until_they_expire() {
    let h = harness();
    let (reply, _) = h.run(E::GenerateAuthToken(p::GenerateAuthTokenCommand {}));
    let R::GenerateAuthToken(t) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(t.lifetime.unwrap().seconds, 3600);
    let meta = |key: Option<&str>, token: Option<&str>| p::AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        api_key: key.map(Into::into),
        auth_token: token.map(Into::into),
        simplex_mode: false,
        simulator_mode: false,
    };
    assert!(
        h.engine
            .authenticate(&meta(Some(TEST_API_KEY), None))
            .is_ok()
    );
    assert_eq!(
        h.engine.authenticate(&meta(Some("el_k_wrong"), None)),
        Err(AuthError::InvalidApiKey(TEST_APP_ID.into()))
    );
    assert!(h.engine.authenticate(&meta(None, Some(&t.token))).is_ok());
    assert_eq!(
        h.engine.authenticate(&meta(None, Some("el_tkn_forged"))),
        Err(AuthError::InvalidToken)
    );
    assert_eq!(
        h.engine.authenticate(&meta(None, None)),
        Err(AuthError::MissingCredentials)
    );
    let mut other = meta(Some(TEST_API_KEY), None);
    other.org_id = "el_org_other".into();
    assert!(matches!(
        h.engine.authenticate(&other),
        Err(AuthError::UnknownOrg(_))
    ));
    h.clock.advance_millis(3_600_000);
    assert_eq!(
        h.engine.authenticate(&meta(None, Some(&t.token))),
        Err(AuthError::ExpiredToken)
    );
}

#[test]
fn replays_update_the_state_they_describe() {
    let h = harness();
    let r = h.update(E::ReplaySentMessage(p::ReplaySentMessageCommand {
        provider_message_id: "prov-1".into(),
        customer_number: Some(phone("+254700000031")),
        channel_number: Some(sms()),
        message: Some(text_message("old")),
        status: MessageDeliveryStatus::Sent as i32,
        ..Default::default()
    }));
    assert!(r.status, "{}", r.description);
    let id = r.customer_id.unwrap();
    let r = h.update(E::ReplayMessageStatusUpdate(
        p::ReplayMessageStatusUpdateCommand {
            provider_message_id: "prov-1".into(),
            customer_number: Some(phone("+254700000031")),
            channel_number: Some(sms()),
            status: MessageDeliveryStatus::Read as i32,
            ..Default::default()
        },
    ));
    assert!(r.status, "{}", r.description);
    let msgs = h.state(&id).messaging_state.unwrap().messages;
    let Some(p::channel_message::Entry::Sent(s)) = &msgs[0].entry else {
        panic!("expected a sent message")
    };
    assert_eq!(s.status, MessageDeliveryStatus::Read as i32);
    let r = h.update(E::ReplayMessagingConsentUpdate(
        p::ReplayMessagingConsentUpdateCommand {
            customer_number: Some(phone("+254700000031")),
            channel_number: Some(sms()),
            updated_at: None,
            update: p::MessagingConsentUpdate::Block as i32,
        },
    ));
    assert!(r.status);
    let channels = h.state(&id).messaging_state.unwrap().channels;
    assert!(matches!(
        channels[0].state,
        Some(p::messaging_channel_state::State::Blocked(_))
    ));
    let (reply, _) = h.run(E::ReplayPayment(p::ReplayPaymentCommand {
        provider_transaction_id: "mp-9".into(),
        debit_party: Some(mobile("+254700000031")),
        credit_party: Some(purse()),
        status: PaymentStatus::PendingConfirmation as i32,
        value: Some(kes(5.0)),
        ..Default::default()
    }));
    let R::ReplayPayment(rp) = reply else {
        panic!("wrong reply")
    };
    assert!(rp.status);
    assert_eq!(rp.debit_customer_id.as_deref(), Some(id.as_str()));
    let (reply, _) = h.run(E::ReplayPaymentStatusUpdate(
        p::ReplayPaymentStatusUpdateCommand {
            customer_number: Some(phone("+254700000031")),
            provider_transaction_id: "mp-9".into(),
            updated_at: None,
            status: PaymentStatus::Success as i32,
        },
    ));
    assert!(matches!(reply, R::ReplayPayment(r) if r.status));
    let log = h.state(&id).payment_state.unwrap().transaction_log;
    assert_eq!(log[0].status, PaymentStatus::Success as i32);
}

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

#[test]
fn a_deleted_customers_reminders_and_tags_die_with_it() {
    let h = harness();
    let a = h.create("+254700000040");
    h.tag(&a, "t", "1", None);
    add_reminder(&h, &a, reminder("r", T0 + 1_000, 0));
    let r = h.update(E::DeleteCustomer(p::DeleteCustomerCommand {
        customer: Some(p::delete_customer_command::Customer::CustomerId(a.clone())),
    }));
    assert!(r.status);
    // The next customer takes over the freed storage slot.
    let b = h.create("+254700000041");
    add_reminder(&h, &b, reminder("r", T0 + 5_000, 0));
    h.clock.advance_millis(1_000);
    assert!(reminders_fired(&h.fire()).is_empty());
    let (reply, effects) = h.run(E::SendMessageTag(p::SendMessageTagCommand {
        tag: Some(mapping("t", "1")),
        channel_number: Some(sms()),
        message: Some(text_message("x")),
    }));
    assert!(matches!(reply, R::TagCommand(t) if t.status));
    assert!(
        sim_entries(&effects).is_empty(),
        "nobody carries the tag any more"
    );
    h.clock.advance_millis(4_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, b);
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

#[test]
fn a_pending_payment_settles_on_the_customer_that_adopted_its_payee() {
    let h = harness();
    let a = h.create("+254700000065");
    let b = h.create("+254700000066");
    let (r, _) = h.pay(purse(), wallet(&b, "loan"), kes(30.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    let r2 = h.update(E::AdoptCustomerState(p::AdoptCustomerStateCommand {
        customer_id: a.clone(),
        other_customer: Some(
            p::adopt_customer_state_command::OtherCustomer::OtherCustomerId(b.clone()),
        ),
    }));
    assert!(r2.status, "{}", r2.description);
    h.clock.advance_millis(SETTLE);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(
            a.clone(),
            r.transaction_id.unwrap(),
            PaymentStatus::Success as i32
        )]
    );
    let wallets = h.state(&a).payment_state.unwrap().wallets;
    assert_eq!(wallets["loan"].actual.as_ref().unwrap().amount, 30.0);
}

#[tokio::test]
async fn auth_tokens_are_kept_hashed_in_a_private_data_dir() {
    let dir = temp_data_dir("elarian-emulator-secrets");
    let clock = ManualClock::new(T0);
    let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
    let token = {
        let engine = reopen(&clock, &dir);
        let out = committed(
            &engine,
            &app,
            E::GenerateAuthToken(p::GenerateAuthTokenCommand {}),
        )
        .await;
        let Some(R::GenerateAuthToken(t)) = out.reply.entry else {
            panic!("wrong reply")
        };
        t.token
    };
    let file = dir.join("emulator.redb");
    let bytes = std::fs::read(&file).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(token.as_bytes()), "the token is stored in clear");
    assert!(
        contains(crate::ids::token_key(&token).as_bytes()),
        "the token's hash is the key"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    // The token still authenticates, looked up by its hash.
    let engine = reopen(&clock, &dir);
    let meta = p::AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        auth_token: Some(token.clone()),
        ..Default::default()
    };
    assert!(engine.authenticate(&meta).is_ok());
    let wrong = p::AppConnectionMetadata {
        auth_token: Some(format!("{token}x")),
        ..meta
    };
    assert!(engine.authenticate(&wrong).is_err());
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
