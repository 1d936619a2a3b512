//! Heap kept per customer by the engine after the debt-collection flow of a customer who pays at
//! once (ignored by default; run with
//! `cargo test --release -p elarian-emulator --test memory -- --ignored --nocapture`,
//! `MEMORY_CUSTOMERS=N` to change the count). It drives the engine directly, without sockets, and
//! counts the bytes the allocator holds for it, so that the figure is the emulator's own share of
//! the demo's memory per customer (docs/benchmarks.md, "Where the memory goes").

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use elarian_emulator::clock::{ManualClock, to_timestamp};
use elarian_emulator::config::{
    EmulatorConfig, TEST_APP_ID, TEST_ORG_ID, TEST_PAYMENT_CHANNEL, TEST_PURSE_ID,
    TEST_SMS_SHORT_CODE,
};
use elarian_emulator::{Engine, Identity};
use elarian_proto::{
    self as p, AppToServerCommand, CustomerNumber, CustomerNumberProvider, DataMapValue,
    app_to_server_command::Entry as E, app_to_server_command_reply::Entry as R,
    data_map_value::Value, simulator_to_server_command::Entry as S,
};

/// The system allocator, counting the bytes it holds and the allocations made.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; counting touches no memory it hands out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const T0: i64 = 1_700_000_000_000;

fn phone(i: usize) -> CustomerNumber {
    CustomerNumber {
        provider: CustomerNumberProvider::Cellular as i32,
        number: format!("+2547{i:08}"),
        partition: None,
    }
}

fn text(v: &str) -> DataMapValue {
    DataMapValue {
        value: Some(Value::StringVal(v.into())),
    }
}

fn sms() -> p::MessagingChannelNumber {
    p::MessagingChannelNumber {
        channel: p::MessagingChannel::Sms as i32,
        number: TEST_SMS_SHORT_CODE.into(),
    }
}

fn sms_text(t: &str) -> p::OutboundMessage {
    p::OutboundMessage {
        body: Some(p::OutboundMessageBody {
            entry: Some(p::outbound_message_body::Entry::Text(t.into())),
        }),
        ..Default::default()
    }
}

struct Flow {
    engine: Engine,
    clock: ManualClock,
    app: Identity,
    sim: Identity,
}

impl Flow {
    fn run(&self, entry: E) -> R {
        let out = self
            .engine
            .app_command(&self.app, AppToServerCommand { entry: Some(entry) });
        out.reply.entry.expect("every command gets a reply")
    }

    fn simulate(&self, entry: S) {
        let out = self.engine.simulator_command(
            &self.sim,
            p::SimulatorToServerCommand { entry: Some(entry) },
        );
        assert!(out.reply.status, "{}", out.reply.description);
    }

    fn app_data(&self, id: &str, stage: &str) {
        let R::UpdateCustomerAppData(r) = self.run(E::UpdateCustomerAppData(
            p::UpdateCustomerAppDataCommand {
                customer: Some(p::update_customer_app_data_command::Customer::CustomerId(
                    id.into(),
                )),
                update: Some(text(&format!(
                    r#"{{"phone":"+254700000000","name":"Customer","amount_due":1250.0,"stage":"{stage}"}}"#
                ))),
            },
        )) else {
            panic!("wrong reply")
        };
        assert!(r.status, "{}", r.description);
    }

    fn reminder(&self, i: usize, key: &str, at: i64) {
        let R::UpdateCustomerAppData(r) =
            self.run(E::AddCustomerReminder(p::AddCustomerReminderCommand {
                customer: Some(p::add_customer_reminder_command::Customer::CustomerNumber(
                    phone(i),
                )),
                reminder: Some(p::CustomerReminder {
                    key: key.into(),
                    remind_at: Some(to_timestamp(at)),
                    interval: None,
                    payload: Some("loan repayment due".into()),
                }),
            }))
        else {
            panic!("wrong reply")
        };
        assert!(r.status, "{}", r.description);
    }

    fn send(&self, i: usize, body: &str) {
        let R::SendMessage(r) = self.run(E::SendMessage(p::SendMessageCommand {
            customer_number: Some(phone(i)),
            channel_number: Some(sms()),
            message: Some(sms_text(body)),
        })) else {
            panic!("wrong reply")
        };
        assert_eq!(r.status, p::MessageDeliveryStatus::Sent as i32);
    }

    /// Enrolment: metadata, app data and the due reminder. Returns the customer id.
    fn enrol(&self, i: usize) -> String {
        let R::UpdateCustomerState(r) = self.run(E::UpdateCustomerMetadata(
            p::UpdateCustomerMetadataCommand {
                customer: Some(
                    p::update_customer_metadata_command::Customer::CustomerNumber(phone(i)),
                ),
                updates: [
                    ("amount_due".to_owned(), text("1250.0")),
                    ("name".to_owned(), text("Customer 1234")),
                ]
                .into_iter()
                .collect(),
            },
        )) else {
            panic!("wrong reply")
        };
        assert!(r.status, "{}", r.description);
        let id = r.customer_id.expect("an id");
        self.app_data(&id, "enrolled");
        self.reminder(i, "loan-due", T0 + 1_000);
        id
    }

    /// From the due reminder to the receipt, for a customer who replies OK and pays at once.
    fn collect(&self, i: usize, id: &str) {
        self.app_data(id, "awaiting_reply");
        self.reminder(i, "no-reply", T0 + 3_600_000);
        self.send(
            i,
            "Hi Customer 1234, your loan repayment of KES 1250.00 is due. Reply OK to pay now.",
        );
        self.simulate(S::ReceiveMessage(p::ReceiveMessageSimulatorCommand {
            customer_number: phone(i).number,
            channel_number: Some(sms()),
            parts: vec![p::InboundMessageBody {
                entry: Some(p::inbound_message_body::Entry::Text("OK".into())),
            }],
            ..Default::default()
        }));
        let R::UpdateCustomerAppData(r) = self.run(E::CancelCustomerReminder(
            p::CancelCustomerReminderCommand {
                customer: Some(p::cancel_customer_reminder_command::Customer::CustomerId(
                    id.into(),
                )),
                key: "no-reply".into(),
            },
        )) else {
            panic!("wrong reply")
        };
        assert!(r.status, "{}", r.description);
        self.app_data(id, "checkout");
        let R::InitiatePayment(r) = self.run(E::InitiatePayment(p::InitiatePaymentCommand {
            debit_party: Some(p::PaymentCounterParty {
                party: Some(p::payment_counter_party::Party::Customer(
                    p::PaymentCustomerCounterParty {
                        customer_number: Some(phone(i)),
                        channel_number: Some(p::PaymentChannelNumber {
                            channel: p::PaymentChannel::Cellular as i32,
                            number: TEST_PAYMENT_CHANNEL.into(),
                        }),
                    },
                )),
            }),
            credit_party: Some(p::PaymentCounterParty {
                party: Some(p::payment_counter_party::Party::Purse(
                    p::PaymentPurseCounterParty {
                        purse_id: TEST_PURSE_ID.into(),
                    },
                )),
            }),
            value: Some(p::Cash {
                currency_code: "KES".into(),
                amount: 1250.0,
            }),
            narration: "loan repayment".into(),
        })) else {
            panic!("wrong reply")
        };
        assert_eq!(r.status, p::PaymentStatus::PendingConfirmation as i32);
        self.simulate(S::UpdatePaymentStatus(
            p::UpdatePaymentStatusSimulatorCommand {
                transaction_id: r.transaction_id.expect("a transaction id"),
                status: p::PaymentStatus::Success as i32,
            },
        ));
        self.app_data(id, "paid");
        self.send(
            i,
            "Thank you Customer 1234, we received KES 1250.00. Your loan is settled.",
        );
    }
}

#[test]
#[ignore = "measurement: heap per customer after the whole flow"]
fn heap_per_customer_after_the_debt_collection_flow() {
    let n: usize = std::env::var("MEMORY_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let clock = ManualClock::new(T0);
    let flow = Flow {
        engine: Engine::new(EmulatorConfig::default(), Arc::new(clock.clone())),
        clock,
        app: Identity::app(TEST_ORG_ID, TEST_APP_ID),
        sim: Identity::simulator(TEST_ORG_ID, TEST_APP_ID),
    };
    let live = || LIVE.load(Ordering::Relaxed);
    let allocations = || ALLOCATIONS.load(Ordering::Relaxed);
    let (before, allocs_before, started) = (live(), allocations(), Instant::now());
    let ids: Vec<String> = (0..n).map(|i| flow.enrol(i)).collect();
    // The ids are the test's, not the engine's.
    let ids_bytes = (ids.iter().map(String::capacity).sum::<usize>()
        + ids.capacity() * std::mem::size_of::<String>()) as i64;
    let enrolled = live() - before - ids_bytes;
    flow.clock.advance_millis(2_000);
    let mut fired = 0;
    loop {
        let out = flow.engine.fire_due(1024);
        if out.reply == 0 {
            break;
        }
        fired += out.reply;
    }
    assert_eq!(fired, n, "every due reminder fires");
    for (i, id) in ids.iter().enumerate() {
        flow.collect(i, id);
    }
    let cpu = started.elapsed();
    let done = live() - before - ids_bytes;
    let per = |bytes: i64| bytes as f64 / n as f64;
    println!(
        "{n} customers: enrolled {:.0} B/customer, after the flow {:.0} B/customer, \
         {:.1} allocations/customer, {:.1} µs/customer",
        per(enrolled),
        per(done),
        (allocations() - allocs_before) as f64 / n as f64,
        cpu.as_secs_f64() * 1e6 / n as f64,
    );
    assert_eq!(flow.engine.customer_count(TEST_ORG_ID), n);
}
