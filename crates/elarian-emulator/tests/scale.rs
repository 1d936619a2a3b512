//! Scale check of the reminder scheduler and the customer store (ignored by default; run with
//! `cargo test --release -p elarian-emulator --test scale -- --ignored --nocapture`).

use std::sync::Arc;
use std::time::Instant;

use elarian_emulator::clock::{ManualClock, to_timestamp};
use elarian_emulator::config::{EmulatorConfig, TEST_APP_ID, TEST_ORG_ID};
use elarian_emulator::{Engine, Identity};
use elarian_proto::{
    AddCustomerReminderCommand, AppToServerCommand, CustomerNumber, CustomerNumberProvider,
    CustomerReminder, add_customer_reminder_command::Customer, app_to_server_command::Entry,
};

const T0: i64 = 1_700_000_000_000;

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[test]
#[ignore = "scale check: a million customers with a reminder each"]
fn a_million_reminders_fit_in_memory_and_fire_fast() {
    let n: usize = std::env::var("SCALE_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let clock = ManualClock::new(T0);
    let engine = Engine::new(EmulatorConfig::default(), Arc::new(clock.clone()));
    let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
    let before = rss_mib();
    let started = Instant::now();
    for i in 0..n {
        let out = engine.app_command(
            &app,
            AppToServerCommand {
                entry: Some(Entry::AddCustomerReminder(AddCustomerReminderCommand {
                    customer: Some(Customer::CustomerNumber(CustomerNumber {
                        provider: CustomerNumberProvider::Cellular as i32,
                        number: format!("+2547{i:08}"),
                        partition: None,
                    })),
                    reminder: Some(CustomerReminder {
                        key: "due".into(),
                        remind_at: Some(to_timestamp(T0 + 1_000 + (i % 1000) as i64)),
                        interval: None,
                        payload: Some("loan 42".into()),
                    }),
                })),
            },
        );
        assert!(out.effects.is_empty());
    }
    let loaded = started.elapsed();
    let after = rss_mib();
    assert_eq!(engine.customer_count(TEST_ORG_ID), n);
    clock.advance_millis(10_000);
    let started = Instant::now();
    let mut fired = 0;
    loop {
        let out = engine.fire_due(4096);
        if out.reply == 0 {
            break;
        }
        fired += out.effects.len();
    }
    let firing = started.elapsed();
    assert_eq!(fired, n);
    let rate = n as f64 / firing.as_secs_f64();
    println!(
        "{n} customers+reminders in {loaded:?}; RSS {before:?} -> {after:?} MiB; fired in {firing:?} ({rate:.0}/s)"
    );
    if let (Some(b), Some(a)) = (before, after) {
        assert!(a - b < 2048.0, "memory: {} MiB", a - b);
    }
}
