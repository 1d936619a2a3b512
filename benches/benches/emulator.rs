//! Emulator benchmark: a million customers, each with a reminder due within the same minute,
//! delivered to one connected app that replies to each.
//!
//! ```text
//! cargo bench -p elarian-benches --bench emulator -- [--quick] [--customers N]
//! ```
//!
//! Environment: `ELARIAN_BENCH_CUSTOMERS`, `ELARIAN_BENCH_QUICK=1` (50,000 customers).
//!
//! Setup (one `add_reminder` per customer through the SDK, pipelined) and delivery are measured
//! separately. The emulator runs on a clock the benchmark moves forward, so that the reminders,
//! set an hour ahead, all come due at the instant the measurement starts. Peak RSS is this
//! process's `VmHWM`: the emulator *and* the two SDK connections, so an upper bound for the
//! emulator alone.

use std::process::ExitCode;
use std::sync::Arc;

use elarian_benches::clock::JumpClock;
use elarian_benches::options::Options;
use elarian_benches::usage::{mib, peak_rss_bytes, rss_bytes};
use elarian_benches::workload::reminder_burst;
use elarian_benches::{BenchError, Result, Runtimes, thousands};
use elarian_emulator::{DeliveryLimits, Emulator};

/// The emulator, its million customers and both SDK connections share this process's heap:
/// with glibc's malloc, `malloc`, `free` and `malloc_consolidate` were about a fifth of the
/// delivery's samples. mimalloc, as in the campaign bench and the `debt_collection` example,
/// is what a deployment of the emulator binary runs with (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Commands in flight while setting reminders.
const SETUP_IN_FLIGHT: usize = 512;
/// Targets from the issue: notifications per second on 2 cores, and peak memory.
const TARGET_PER_SEC: f64 = 50_000.0;
const TARGET_PEAK_RSS: u64 = 2 * 1024 * 1024 * 1024;

fn main() -> ExitCode {
    elarian_benches::init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("emulator bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let options = Options::parse(std::env::args().skip(1), &["--customers", "--in-flight"])?;
    let customers = options.count("--customers", "ELARIAN_BENCH_CUSTOMERS", 50_000, 1_000_000)?;
    // Notifications in flight to the app: the emulator's per-connection limit and the SDK's
    // concurrent handlers, both 64 by default.
    let defaults = DeliveryLimits::default();
    let in_flight = options.count(
        "--in-flight",
        "ELARIAN_BENCH_IN_FLIGHT",
        defaults.per_connection as u64,
        defaults.per_connection as u64,
    )?;
    let in_flight = usize::try_from(in_flight).unwrap_or(usize::MAX);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Emulator: {customers} customers, each with a reminder due within the same minute, \
         delivered to one app that replies to each ({cores} cores, emulator in this process on its \
         own runtime, TCP loopback, {in_flight} notifications in flight)"
    );
    let rss_before = rss_bytes();

    let runtimes = Runtimes::new()?;
    let clock = JumpClock::default();
    let emulator = runtimes
        .server
        .block_on(
            Emulator::builder()
                .tcp(([127, 0, 0, 1], 0))
                .clock(Arc::new(clock.clone()))
                .delivery_limits(DeliveryLimits {
                    per_connection: in_flight,
                    ..defaults
                })
                .start(),
        )
        .map_err(|e| BenchError::new(format!("emulator: {e}")))?;
    let burst = runtimes.client.block_on(reminder_burst(
        &emulator,
        &clock,
        customers,
        SETUP_IN_FLIGHT,
        in_flight,
        true,
    ));
    let rss_loaded = rss_bytes();
    runtimes.server.block_on(emulator.shutdown());
    let burst = burst?;
    let peak = peak_rss_bytes();

    let per_sec = burst.delivery.per_sec();
    println!(
        "  setup     {:>9} add_reminder in {:>7.2} s = {:>9} commands/s ({SETUP_IN_FLIGHT} in flight)",
        burst.setup.count,
        burst.setup.elapsed.as_secs_f64(),
        thousands(burst.setup.per_sec())
    );
    println!("            {}", burst.setup.cpu_summary());
    println!(
        "  delivery  {:>9} notifications in {:>7.2} s = {:>9} notifications/s (first after {} ms)",
        burst.delivery.count,
        burst.delivery.elapsed.as_secs_f64(),
        thousands(per_sec),
        burst.first_notification.as_millis()
    );
    println!("            {}", burst.delivery.cpu_summary());
    let show = |bytes: Option<u64>| bytes.map_or_else(|| "n/a".to_owned(), mib);
    println!(
        "  memory    before {}, after delivery {}, peak (VmHWM) {}",
        show(rss_before),
        show(rss_loaded),
        show(peak)
    );
    println!(
        "  targets   >= {} notifications/s: {}; peak RSS <= 2 GiB: {}",
        thousands(TARGET_PER_SEC),
        if per_sec >= TARGET_PER_SEC {
            "met"
        } else {
            "NOT MET"
        },
        match peak {
            Some(p) if p <= TARGET_PEAK_RSS => "met",
            Some(_) => "NOT MET",
            None => "not measured",
        }
    );
    Ok(())
}
