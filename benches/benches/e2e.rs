//! End-to-end benchmark: SDK commands per second and notifications per second against an
//! in-process emulator over loopback, and the same command mix through the published
//! JavaScript client when `node` is installed.
//!
//! The emulator and the SDK run on separate tokio runtimes (see [`Runtimes`]), so they share
//! the machine's cores as two processes would; the JavaScript client is a process of its own.
//!
//! ```text
//! cargo bench -p elarian-benches --bench e2e -- [--quick] [--no-js] [--commands N] [--reminders N]
//! ```
//!
//! Environment: `ELARIAN_BENCH_COMMANDS`, `ELARIAN_BENCH_REMINDERS`, `ELARIAN_BENCH_QUICK=1`,
//! `ELARIAN_BENCH_NO_JS=1`.

use std::process::ExitCode;
use std::time::Duration;

use elarian_benches::clock::JumpClock;
use elarian_benches::workload::{Rate, command_mix, reminder_burst};
use elarian_benches::{
    BenchError, Result, Runtimes, app_config, connect, js, options::Options, thousands, usage,
};
use elarian_emulator::{Emulator, EmulatorHandle};
use elarian_sdk::Elarian;

/// Concurrency levels measured, as in `tools/js-bench/bench.js`.
const IN_FLIGHT: [usize; 2] = [1, 64];
/// Commands in flight while setting reminders.
const SETUP_IN_FLIGHT: usize = 256;
/// Least CPU time a comparison of CPU per command is based on.
const MIN_CPU_SAMPLE: Duration = Duration::from_millis(500);
/// The JavaScript client's commands per second must be beaten by this factor.
const TARGET_RATIO: f64 = 10.0;

struct Row {
    client: &'static str,
    transport: &'static str,
    in_flight: usize,
    rate: Rate,
}

fn main() -> ExitCode {
    elarian_benches::init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let options = Options::parse(std::env::args().skip(1), &["--commands", "--reminders"])?;
    let commands = options.count("--commands", "ELARIAN_BENCH_COMMANDS", 5_000, 50_000)?;
    let reminders = options.count("--reminders", "ELARIAN_BENCH_REMINDERS", 5_000, 50_000)?;

    let runtimes = Runtimes::new()?;
    let clock = JumpClock::default();
    let emulator = runtimes.server.block_on(
        Emulator::builder()
            .tcp(([127, 0, 0, 1], 0))
            .tls(([127, 0, 0, 1], 0))
            .clock(std::sync::Arc::new(clock.clone()))
            .start(),
    );
    let emulator = emulator.map_err(|e| BenchError::new(format!("emulator: {e}")))?;
    let result = runtimes
        .client
        .block_on(measure(&emulator, &clock, &options, commands, reminders));
    runtimes.server.block_on(emulator.shutdown());
    result
}

async fn measure(
    emulator: &EmulatorHandle,
    clock: &JumpClock,
    options: &Options,
    commands: u64,
    reminders: u64,
) -> Result<()> {
    println!(
        "End to end: elarian-sdk against an in-process elarian-emulator (own runtime) on \
         127.0.0.1 ({} cores); {commands} commands per row, update_metadata/get_state alternating",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rows = Vec::new();

    let tcp = elarian_benches::connect_app(emulator, false).await?;
    rows.extend(rust_rows(&tcp, "tcp", "+2547100", commands).await?);
    tcp.disconnect().await;

    let pem = emulator
        .tls_certificate_pem()
        .ok_or_else(|| BenchError::new("the emulator has no TLS certificate"))?
        .to_owned();
    let tls_endpoint = emulator
        .tls_endpoint()
        .ok_or_else(|| BenchError::new("the emulator has no TLS listener"))?;
    let tls = connect(
        app_config(tls_endpoint)
            .root_certificate_pem(pem.as_bytes())
            .allow_notifications(false),
    )
    .await?;
    rows.extend(rust_rows(&tls, "tls", "+2547200", commands).await?);
    tls.disconnect().await;

    let mut js_cpu = None;
    let js_note = if options.no_js {
        Some("JavaScript client skipped (--no-js)".to_owned())
    } else {
        match js::node_version().await {
            None => Some("JavaScript client skipped: node is not installed".to_owned()),
            Some(version) => {
                println!("running the JavaScript client (node {version}) on the same mix");
                let (js, cpu) = js_rows(emulator, &pem, commands).await?;
                rows.extend(js);
                js_cpu = cpu;
                None
            }
        }
    };

    println!();
    println!(
        "{:<12} {:<9} {:>9} {:>9} {:>8} {:>12}  this process",
        "client", "transport", "in flight", "commands", "secs", "commands/s"
    );
    for row in &rows {
        // The JavaScript client is another process: only the emulator's share is ours.
        let usage = row.rate.cpu_summary();
        println!(
            "{:<12} {:<9} {:>9} {:>9} {:>8.2} {:>12}  {}",
            row.client,
            row.transport,
            row.in_flight,
            row.rate.count,
            row.rate.elapsed.as_secs_f64(),
            thousands(row.rate.per_sec()),
            if row.client == "rust" {
                usage.as_str()
            } else {
                ""
            }
        );
    }
    match js_note {
        Some(note) => println!("{note}"),
        None => print_ratios(&rows),
    }
    if let Some(cpu) = js_cpu {
        print_cpu_comparison(&rows, &cpu);
    }

    println!();
    println!(
        "notifications: {reminders} reminders due at once, one app replying to each \
         (setup pipelined, {SETUP_IN_FLIGHT} in flight)"
    );
    let burst = reminder_burst(emulator, clock, reminders, SETUP_IN_FLIGHT, 64, false).await?;
    println!(
        "  setup    {:>9} add_reminder in {:>6.2} s = {:>9} commands/s",
        burst.setup.count,
        burst.setup.elapsed.as_secs_f64(),
        thousands(burst.setup.per_sec())
    );
    println!("           {}", burst.setup.cpu_summary());
    println!(
        "  delivery {:>9} notifications in {:>6.2} s = {:>9} notifications/s (first after {} ms)",
        burst.delivery.count,
        burst.delivery.elapsed.as_secs_f64(),
        thousands(burst.delivery.per_sec()),
        burst.first_notification.as_millis()
    );
    println!("           {}", burst.delivery.cpu_summary());
    Ok(())
}

async fn rust_rows(
    app: &Elarian,
    transport: &'static str,
    prefix: &str,
    commands: u64,
) -> Result<Vec<Row>> {
    // Warm-up: connection buffers, allocator, and the customers' creation out of the figures.
    command_mix(app, prefix, IN_FLIGHT[1], 2 * IN_FLIGHT[1] as u64).await?;
    let mut rows = Vec::new();
    for in_flight in IN_FLIGHT {
        let rate = command_mix(app, prefix, in_flight, commands).await?;
        rows.push(Row {
            client: "rust",
            transport,
            in_flight,
            rate,
        });
    }
    Ok(rows)
}

/// CPU time of the node process running the JavaScript client.
struct JsCpu {
    node: Duration,
    /// Commands node sent: the measured ones, the warm-up and the customers' creation.
    commands: u64,
}

async fn js_rows(
    emulator: &EmulatorHandle,
    pem: &str,
    commands: u64,
) -> Result<(Vec<Row>, Option<JsCpu>)> {
    js::ensure_installed(Duration::from_secs(180)).await?;
    let port = emulator
        .tls_addr()
        .ok_or_else(|| BenchError::new("the emulator has no TLS listener"))?
        .port();
    let ca = js::CertFile::write(pem)?;
    let before = usage::children_cpu_time();
    let lines = js::run_script(
        "bench.js",
        &["localhost".into(), port.to_string(), commands.to_string()],
        &ca,
        Duration::from_secs(900),
    )
    .await?;
    let cpu = match (before, usage::children_cpu_time()) {
        (Some(before), Some(after)) => Some(JsCpu {
            node: after.saturating_sub(before),
            // As in bench.js: the warm-up (2 x 64) and one CreateCustomer per customer (64).
            commands: IN_FLIGHT.len() as u64 * commands + 2 * 64 + 64,
        }),
        _ => None,
    };
    let mut rows = Vec::new();
    for line in lines {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let (Some(in_flight), Some(count), Some(secs)) = (
            value["in_flight"].as_u64(),
            value["commands"].as_u64(),
            value["secs"].as_f64(),
        ) else {
            continue;
        };
        if !secs.is_finite() || secs <= 0.0 {
            return Err(BenchError::new(format!("bench.js reported {secs} seconds")));
        }
        rows.push(Row {
            client: "javascript",
            transport: "tls",
            in_flight: usize::try_from(in_flight).unwrap_or(usize::MAX),
            rate: Rate {
                count,
                elapsed: Duration::from_secs_f64(secs),
                cpu: None,
            },
        });
    }
    if rows.len() != IN_FLIGHT.len() {
        return Err(BenchError::new(format!(
            "bench.js printed {} result lines, expected {}",
            rows.len(),
            IN_FLIGHT.len()
        )));
    }
    Ok((rows, cpu))
}

/// CPU per command moves much less with the machine's load than commands per second do. The
/// Rust rows' CPU includes the emulator's work (same process) while node's is the client alone,
/// so the ratio printed understates the Rust SDK's advantage.
fn print_cpu_comparison(rows: &[Row], js: &JsCpu) {
    let per_op = |cpu: Duration, count: u64| cpu.as_secs_f64() * 1e6 / count.max(1) as f64;
    let (rust_cpu, rust_count) = rows
        .iter()
        .filter(|r| r.client == "rust" && r.transport == "tls")
        .filter_map(|r| r.rate.cpu.map(|cpu| (cpu, r.rate.count)))
        .fold((Duration::ZERO, 0), |(c, n), (cpu, count)| {
            (c + cpu, n + count)
        });
    // /proc reports CPU time in 10 ms ticks: short runs give no usable figure.
    if rust_count == 0 || rust_cpu < MIN_CPU_SAMPLE || js.node < MIN_CPU_SAMPLE {
        println!("CPU per command: run too short to compare (use more --commands)");
        return;
    }
    let rust = per_op(rust_cpu, rust_count);
    let node = per_op(js.node, js.commands);
    println!(
        "CPU per command over TLS (both levels): JavaScript client (node process) {node:.1} µs; \
         Rust SDK and emulator together {rust:.1} µs: the Rust SDK uses {:.1}x less CPU, \
         counting the emulator's work against it",
        node / rust.max(f64::EPSILON)
    );
}

fn print_ratios(rows: &[Row]) {
    let find = |client: &str, transport: &str, in_flight: usize| {
        rows.iter()
            .find(|r| r.client == client && r.transport == transport && r.in_flight == in_flight)
            .map(|r| r.rate.per_sec())
    };
    for in_flight in IN_FLIGHT {
        let Some(js) = find("javascript", "tls", in_flight) else {
            continue;
        };
        let same_transport = find("rust", "tls", in_flight).map(|r| r / js);
        let rust_tcp = find("rust", "tcp", in_flight).map(|r| r / js);
        let verdict = match same_transport {
            Some(ratio) if ratio >= TARGET_RATIO => "target met",
            Some(_) => "BELOW TARGET",
            None => "no Rust figure",
        };
        println!(
            "Rust/JS at {in_flight:>2} in flight: {:.1}x (both TLS), {:.1}x (Rust TCP); \
             target >= {TARGET_RATIO}x: {verdict}",
            same_transport.unwrap_or(f64::NAN),
            rust_tcp.unwrap_or(f64::NAN)
        );
    }
}
