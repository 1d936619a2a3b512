//! Campaign benchmark: one Sending to a million recipients with inline properties, through
//! `elarian-campaigns` on the emulator, against the SDK's own `send_message` rate measured in
//! the same run.
//!
//! ```text
//! cargo bench -p elarian-benches --bench campaign -- [--quick] [--recipients N] [--baseline N]
//!     [--notifications-in-flight N]
//! ```
//!
//! Environment: `ELARIAN_BENCH_RECIPIENTS`, `ELARIAN_BENCH_QUICK=1` (100,000 recipients),
//! `ELARIAN_BENCH_NOTIFICATIONS_IN_FLIGHT`.
//!
//! Notifications in flight (default [`NOTIFICATIONS_IN_FLIGHT`], for every phase): the
//! emulator's per-connection limit (`DeliveryLimits::per_connection`, 64 by default) and the
//! app's `max_concurrent_notifications` (64 by default) alike. The campaigns acknowledge a
//! delivery report only once it is recorded, so with 128 sends in flight and 64 reports the
//! emulator, which holds a send's reply while the app's notifications are not taken, makes the
//! sends wait for the reports' commits; `--notifications-in-flight 64` measures the defaults.
//!
//! Phases, each timed on its own: the baseline (`send_message` with the same number of sends in
//! flight as the campaign), the same with a no-op message-status handler (at most 50,000
//! sends; for the record only), creating the sending (storing the recipients), preparation (resolve,
//! deduplicate, render, store one dispatch per recipient) and transmission (record attempts,
//! send, record outcomes; delivery reports tracked as they arrive). The campaign runs on a
//! manual clock so preparation and transmission are measured apart. Peak RSS is this process's
//! `VmHWM`: emulator, SDK and campaigns together. Last, for the record, plain `send_message`
//! again (at most 50,000 sends) on the emulator as the campaign left it.
//!
//! The bench builds the whole list of recipients before creating the sending: the public API
//! takes a sending's inline recipients in one `create_sending` (there is no call that adds
//! recipients to an existing sending, and `update_audience` replaces an audience's list whole),
//! so it cannot be given in chunks. The list is freed once the sending is created.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use elarian_benches::options::Options;
use elarian_benches::usage::{cpu_time, mib, peak_rss_bytes, rss_bytes, threads_cpu_time};
use elarian_benches::{BenchError, Result, Runtimes, thousands};
use elarian_campaigns::{
    Campaigns, CampaignsConfig, ManualClock, Recipient, SendingPayload, SendingStatus, Store,
    Timestamp, from_json,
};
use elarian_emulator::config::TEST_SMS_SHORT_CODE;
use elarian_emulator::{DeliveryLimits, Emulator};
use elarian_sdk::{AppEvent, CustomerNumber, Elarian, Message, MessagingChannelNumber};
use futures_util::StreamExt;

/// The emulator, the SDK and the campaigns share this process and its heap, which grows with
/// every phase (the emulator keeps each customer and its messages): with glibc's malloc the
/// same sends cost more CPU in each later phase (fragmentation), so phases run later, the
/// campaign's last of all, were measured at a handicap. mimalloc keeps the cost flat, as in the
/// `debt_collection` example.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The name of the emulator runtime's threads (`Runtimes`).
const EMULATOR_THREADS: &str = "emulator";

/// Sends in flight, for the baseline and the campaign alike.
const IN_FLIGHT: usize = 128;
/// Notifications in flight per connection by default: room for a report of every send in
/// flight, twice over.
const NOTIFICATIONS_IN_FLIGHT: u64 = 2 * IN_FLIGHT as u64;
/// Sends of the second baseline (with a status handler) at most: each adds a customer to the
/// emulator's state, hence to the peak RSS.
const HANDLED_BASELINE_SENDS: u64 = 50_000;
const TARGET_TRANSMISSION_SHARE: f64 = 0.80;
const TARGET_PREPARATION_PER_SEC: f64 = 200_000.0;
const TARGET_PEAK_RSS: u64 = 1024 * 1024 * 1024;

fn main() -> ExitCode {
    elarian_benches::init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("campaign bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn phone(prefix: u32, i: u64) -> String {
    format!("+25{prefix}{i:08}")
}

/// CPU time of the process over a phase: per item, the emulator's share of it (its runtime's
/// threads) and cores busy over its wall time. The process holds the emulator, the SDK and the
/// campaigns, so the total is the work of all three; the rest after the emulator's share is
/// the client side (SDK, simulator, campaigns).
struct Cpu {
    total: Option<Duration>,
    emulator: Option<Duration>,
}

impl Cpu {
    fn start() -> Self {
        Cpu {
            total: cpu_time(),
            emulator: threads_cpu_time(EMULATOR_THREADS),
        }
    }

    /// The phase's line part, and its CPU µs per item when the platform reports it.
    fn report(&self, items: u64, wall: Duration) -> (String, Option<f64>) {
        let per_item = |d: Duration| d.as_secs_f64() * 1e6 / items as f64;
        match (self.total, cpu_time()) {
            (Some(before), Some(after)) if items > 0 && !wall.is_zero() => {
                let used = after.saturating_sub(before);
                let emulator = match (self.emulator, threads_cpu_time(EMULATOR_THREADS)) {
                    (Some(before), Some(after)) => {
                        format!(" (emulator {:.1})", per_item(after.saturating_sub(before)))
                    }
                    _ => String::new(),
                };
                let text = format!(
                    "CPU {:.1} µs each{emulator}, {:.2} cores busy",
                    per_item(used),
                    used.as_secs_f64() / wall.as_secs_f64()
                );
                (text, Some(per_item(used)))
            }
            _ => ("CPU unavailable".to_string(), None),
        }
    }
}

async fn baseline(app: &Elarian, prefix: u32, sends: u64) -> Result<f64> {
    let from = MessagingChannelNumber::sms(TEST_SMS_SHORT_CODE);
    let started = Instant::now();
    let results: Vec<bool> = futures_util::stream::iter((0..sends).map(|i| {
        let customer = app.customer(CustomerNumber::cellular(phone(prefix, i)));
        let from = from.clone();
        async move {
            customer
                .send_message(
                    from,
                    Message::text(format!("Hi n{i}, you owe KES {}", i % 9000)),
                )
                .await
                .is_ok_and(|r| r.is_success())
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect()
    .await;
    let elapsed = started.elapsed();
    let ok = results.iter().filter(|ok| **ok).count() as u64;
    if ok != sends {
        return Err(BenchError::new(format!(
            "baseline: {ok} of {sends} sends succeeded"
        )));
    }
    Ok(sends as f64 / elapsed.as_secs_f64())
}

async fn wait_status(c: &Campaigns, id: u64, status: SendingStatus, limit: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        let s = c
            .progress(id)
            .await
            .map_err(|e| BenchError::new(e.to_string()))?;
        if s.status == Some(status) {
            return Ok(());
        }
        if s.status.is_some_and(SendingStatus::is_final) || started.elapsed() > limit {
            return Err(BenchError::new(format!("expected {status}, got {s:?}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn run() -> Result<()> {
    let options = Options::parse(
        std::env::args().skip(1),
        &["--recipients", "--baseline", "--notifications-in-flight"],
    )?;
    let recipients = options.count(
        "--recipients",
        "ELARIAN_BENCH_RECIPIENTS",
        100_000,
        1_000_000,
    )?;
    let baseline_sends = options.count("--baseline", "ELARIAN_BENCH_BASELINE", 50_000, 200_000)?;
    let notifications_in_flight = usize::try_from(options.count(
        "--notifications-in-flight",
        "ELARIAN_BENCH_NOTIFICATIONS_IN_FLIGHT",
        NOTIFICATIONS_IN_FLIGHT,
        NOTIFICATIONS_IN_FLIGHT,
    )?)
    .map_err(|_| BenchError::new("--notifications-in-flight is too large"))?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Campaign: one Sending to {recipients} recipients with inline properties, SMS, \
         {IN_FLIGHT} sends and {notifications_in_flight} notifications in flight ({cores} cores, emulator in this process on its own runtime, \
         TCP loopback, in-memory campaign store)"
    );
    let runtimes = Runtimes::new()?;
    let emulator = runtimes
        .server
        .block_on(
            Emulator::builder()
                .tcp(([127, 0, 0, 1], 0))
                .delivery_limits(DeliveryLimits {
                    per_connection: notifications_in_flight,
                    ..DeliveryLimits::default()
                })
                .start(),
        )
        .map_err(|e| BenchError::new(format!("emulator: {e}")))?;
    runtimes.client.block_on(async {
        let endpoint = emulator
            .endpoint()
            .ok_or_else(|| BenchError::new("the emulator has no TCP listener"))?;
        let app = elarian_benches::connect(
            elarian_benches::app_config(endpoint.clone())
                .allow_notifications(true)
                .max_concurrent_notifications(notifications_in_flight),
        )
        .await?;
        // The phones: the emulator hands every sent message to a simulator connection (its queue
        // for them is bounded), so one must be there to take them.
        let phones = elarian_simulator::Simulator::new(elarian_benches::app_config(endpoint))
            .map_err(|e| BenchError::new(format!("simulator: {e}")))?;
        phones.on_send_message(|_| async {});
        tokio::time::timeout(elarian_benches::WAIT, phones.connect())
            .await
            .map_err(|_| BenchError::new("connecting the simulator timed out"))?
            .map_err(|e| BenchError::new(format!("simulator: {e}")))?;
        let cpu = Cpu::start();
        let base_started = Instant::now();
        let base_rate = baseline(&app, 6, baseline_sends).await?;
        let (base_cpu, base_cpu_us) = cpu.report(baseline_sends, base_started.elapsed());
        println!(
            "  SDK send_message:  {} msg/s ({baseline_sends} sends; {base_cpu}); RSS {}",
            thousands(base_rate),
            rss_now()
        );
        // The same sends while the app takes its delivery reports with a handler that does
        // nothing: the share of the gap that is the SDK and the emulator handling reports (the
        // plain baseline leaves them to the default reply), not the campaigns' bookkeeping.
        // Not the target's reference, which stays plain `send_message`.
        let handled_sends = baseline_sends.min(HANDLED_BASELINE_SENDS);
        app.on_message_status(|_, _, _, _| async {});
        let cpu = Cpu::start();
        let handled_started = Instant::now();
        let handled_rate = baseline(&app, 8, handled_sends).await?;
        app.off(AppEvent::MessageStatus);
        println!(
            "  with a no-op status handler: {} msg/s = {:.0} % of send_message ({handled_sends} sends; {}); RSS {}",
            thousands(handled_rate),
            handled_rate / base_rate * 100.0,
            cpu.report(handled_sends, handled_started.elapsed()).0,
            rss_now()
        );

        let start: Timestamp = Timestamp::now();
        let clock = ManualClock::new(start);
        let config = CampaignsConfig {
            concurrency: IN_FLIGHT,
            batch_size: 4096,
            poll_interval: Duration::from_millis(5),
            max_recipients: 2_000_000,
            ..CampaignsConfig::default()
        };
        let campaigns = Campaigns::open_with_clock(app.clone(), Store::memory(), Arc::new(clock.clone()), config)
            .await
            .map_err(|e| BenchError::new(e.to_string()))?;
        let message = campaigns
            .create_message(
                from_json(
                    &serde_json::json!({
                        "name": "bench",
                        "channels": [{
                            "type": "sms",
                            "sender": {"type": "alphanumeric", "value": TEST_SMS_SHORT_CODE},
                            "template": {"type": "plain", "content": {"body": "Hi {{first_name}}, you owe {{balance}}"}}
                        }]
                    })
                    .to_string(),
                )
                .map_err(|e| BenchError::new(e.to_string()))?,
            )
            .await
            .map_err(|e| BenchError::new(e.to_string()))?;
        let list: Vec<Recipient> = (0..recipients)
            .map(|i| Recipient {
                msisdn: Some(phone(7, i)),
                properties: Some(
                    [
                        ("first_name".to_string(), serde_json::Value::String(format!("n{i}"))),
                        ("balance".to_string(), serde_json::Value::String(format!("KES {}", i % 9000))),
                    ]
                    .into(),
                ),
                ..Recipient::default()
            })
            .collect();
        let at = start.plus(Duration::from_secs(600));
        let created = Instant::now();
        let sending = campaigns
            .create_sending(message.id, SendingPayload { recipients: list, scheduled_at: Some(at), ..Default::default() })
            .await
            .map_err(|e| BenchError::new(e.to_string()))?;
        let id = sending.id;
        drop(sending);
        let create_time = created.elapsed();
        println!("  create sending:    {:.2} s (stores {recipients} inline recipients)", create_time.as_secs_f64());

        // Preparation starts five minutes before the time.
        clock.set(at.minus(Duration::from_secs(300)));
        let prep_cpu = Cpu::start();
        let prepared = Instant::now();
        campaigns.tick().await.map_err(|e| BenchError::new(e.to_string()))?;
        wait_status(&campaigns, id, SendingStatus::Prepared, Duration::from_secs(600)).await?;
        let prep_time = prepared.elapsed();
        let (prep_cpu, _) = prep_cpu.report(recipients, prep_time);
        let prep_rate = recipients as f64 / prep_time.as_secs_f64();
        println!(
            "  preparation:       {:.2} s, {} recipients/s (target >= {})  {}; {prep_cpu}; RSS {}",
            prep_time.as_secs_f64(),
            thousands(prep_rate),
            thousands(TARGET_PREPARATION_PER_SEC),
            verdict(prep_rate >= TARGET_PREPARATION_PER_SEC),
            rss_now()
        );

        clock.set(at);
        let tx_cpu = Cpu::start();
        let transmitted = Instant::now();
        campaigns.tick().await.map_err(|e| BenchError::new(e.to_string()))?;
        wait_status(&campaigns, id, SendingStatus::Transmitted, Duration::from_secs(1800)).await?;
        let tx_time = transmitted.elapsed();
        let (tx_cpu, tx_cpu_us) = tx_cpu.report(recipients, tx_time);
        // CPU per message moves least with the cores this shared process gets: the ratio of
        // the two says how much more work a campaign's message is than a plain send.
        let efficiency = match (base_cpu_us, tx_cpu_us) {
            (Some(base), Some(tx)) if tx > 0.0 => {
                format!("; CPU per message {:.0} % of send_message's", tx / base * 100.0)
            }
            _ => String::new(),
        };
        let tx_rate = recipients as f64 / tx_time.as_secs_f64();
        let share = tx_rate / base_rate;
        println!(
            "  transmission:      {:.2} s, {} msg/s = {:.0} % of send_message (target >= {:.0} %)  {}; {tx_cpu}{efficiency}; RSS {}",
            tx_time.as_secs_f64(),
            thousands(tx_rate),
            share * 100.0,
            TARGET_TRANSMISSION_SHARE * 100.0,
            verdict(share >= TARGET_TRANSMISSION_SHARE),
            rss_now()
        );
        let p = campaigns.progress(id).await.map_err(|e| BenchError::new(e.to_string()))?;
        if p.sent != recipients {
            return Err(BenchError::new(format!("sent {} of {recipients}: {p:?}", p.sent)));
        }
        let settle = Instant::now();
        let mut p = p;
        while p.delivered < recipients && settle.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            p = campaigns.progress(id).await.map_err(|e| BenchError::new(e.to_string()))?;
        }
        let peak = peak_rss_bytes();
        println!("  delivered:         {} of {recipients} reported", p.delivered);
        match peak {
            Some(peak) => println!(
                "  peak RSS:          {} (target <= {})  {}",
                mib(peak),
                mib(TARGET_PEAK_RSS),
                verdict(peak <= TARGET_PEAK_RSS)
            ),
            None => println!("  peak RSS:          unavailable on this platform"),
        }
        campaigns.shutdown().await;
        // For the record, after the peak RSS is taken: plain `send_message` again, now that the
        // emulator holds every customer of the run. Its work per send grows with the customers
        // it holds, and the baseline ran first on an empty one, the campaign last.
        let after_sends = baseline_sends.min(HANDLED_BASELINE_SENDS);
        let cpu = Cpu::start();
        let after_started = Instant::now();
        let after_rate = baseline(&app, 9, after_sends).await?;
        println!(
            "  send_message after the campaign: {} msg/s ({after_sends} sends; {}); transmission = {:.0} % of it",
            thousands(after_rate),
            cpu.report(after_sends, after_started.elapsed()).0,
            tx_rate / after_rate * 100.0
        );
        phones.disconnect().await;
        app.disconnect().await;
        Ok::<(), BenchError>(())
    })?;
    runtimes.server.block_on(emulator.shutdown());
    Ok(())
}

/// This process's resident memory now, for the phase lines: what preparation adds is the
/// campaign store (recipients and dispatches); what transmission adds is mostly the emulator's
/// state of the customers it sent to.
fn rss_now() -> String {
    rss_bytes().map_or_else(|| "unavailable".to_string(), mib)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}
