//! Engine semantics, driven directly with a manual clock.
mod activity;
mod auth;
mod customers;
mod messaging;
mod payments;
mod persistence;
mod reminders;
mod replays;

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
