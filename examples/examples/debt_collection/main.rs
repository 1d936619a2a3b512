//! Debt collection, the SDK's main job: a lender reminds customers whose repayment is due, asks
//! them by SMS to reply OK, collects by mobile-money checkout, and calls those who do not
//! answer ("press 1 to pay").
//!
//! ```sh
//! cargo run --release --example debt_collection                      # 1,000 simulated customers
//! cargo run --release --example debt_collection -- --customers 50
//! cargo run --release --example debt_collection -- --endpoint tcp://127.0.0.1:5555 --simulate
//! ELARIAN_ENDPOINT=tls://tcp.elarian.dev:443 ELARIAN_ORG_ID=… ELARIAN_APP_ID=… \
//!   ELARIAN_API_KEY=… cargo run --release --example debt_collection -- --customers 10
//! ```
//!
//! - `app.rs` is the lender's app, written only against `elarian-sdk`.
//! - `customers.rs` plays the customers with `elarian-simulator`.
//! - This file wires them up: an embedded emulator unless `--endpoint` is given, enrolment,
//!   progress, the summary and the checks that make the run fail (exit code 1) when the flows
//!   break.

mod app;
mod customers;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use clap::Parser;
use elarian_emulator::DeliveryStats;
use elarian_examples::{
    ChannelArgs, ConnectionArgs, Server, SummaryTable, ctrl_c, init_tracing, money,
    peak_memory_bytes, progress_bar,
};
use elarian_sdk::{ClientError, ConnectionEvents, Elarian, FlowStats};
use elarian_simulator::Simulator;
use tokio::task::JoinSet;

use app::{Collector, Loan, Outcome, Settings, Stats};
use customers::{Crowd, CrowdStats, Pace, Persona};

/// App, simulated customers and emulator allocate and free millions of small buffers (frames,
/// protobuf messages, notifications) across threads: with glibc's malloc that was about 28 %
/// of the process's CPU at 100,000 customers (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Automated debt collection with Elarian: reminders, SMS, voice calls and mobile-money
/// checkouts. With no arguments it runs against an embedded emulator with 1,000 simulated
/// customers.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// How many customers have a repayment due.
    #[arg(long, env = "DEBT_COLLECTION_CUSTOMERS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    customers: u32,
    /// Give up (and fail) if the customers have not all reached an outcome by then. Default:
    /// 60 s plus twice the time the reminders are spread over (`customers / rate`).
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Customers enrolled concurrently (3 commands each, one after the other). 256 keeps the
    /// SDK's window busy: at 64, enrolment of 100,000 customers took 13 s of a 46 s run.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Handler follow-ups (SMS, calls, checkouts) in flight at most. Each holds its permit for
    /// one or two round trips, so this bounds how many customers per second the app moves on:
    /// at 256 it paced a 100,000-customer run at ~2,300 customers/s with the CPU 40 % idle.
    /// The SDK's window still bounds the commands in flight.
    #[arg(long, default_value_t = 1024)]
    follow_ups: usize,
    /// Customers reminded per second: due reminders are spread so that a large book does not
    /// hit the server (and the customers) all at once. `max` (or `0`): no limit, every
    /// reminder falls due as soon as its customer is enrolled, and flow control paces the run.
    #[arg(long, default_value = "500", value_parser = parse_rate)]
    rate: Rate,
    /// Seconds a customer has to answer the SMS before the app calls. Default: 4, or 8 with
    /// `--rate max`, where every step waits longer under the load and a late reply (1.5 s
    /// after the SMS) must still land within the window for the simulated customers to end as
    /// planned. The queues on the way are bounded whatever the number of customers, and 6 s
    /// held at 100,000 customers; every customer who does not reply waits the whole window,
    /// so it is a fixed part of the run's time (it was 20 s, half of a 100,000-customer run).
    #[arg(long)]
    reply_window_secs: Option<u64>,
    /// Keep the embedded emulator's state durably in this directory (redb) instead of in
    /// memory: for books larger than memory.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    channels: ChannelArgs,
}

/// Customers reminded per second; `None`: unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate(Option<f64>);

impl Rate {
    /// Seconds between the first reminder and the one of loan `index`.
    fn offset(self, index: usize) -> Duration {
        match self.0 {
            Some(rate) => Duration::from_secs_f64(index as f64 / rate),
            None => Duration::ZERO,
        }
    }
}

fn parse_rate(text: &str) -> Result<Rate, String> {
    match text.trim() {
        "max" | "unlimited" => return Ok(Rate(None)),
        _ => {}
    }
    match text.parse::<f64>() {
        Ok(0.0) => Ok(Rate(None)),
        Ok(value) if value.is_finite() && value > 0.0 => Ok(Rate(Some(value))),
        _ => Err(format!(
            "{text:?} is not a positive number, 0 or max (unlimited)"
        )),
    }
}

const CURRENCY: &str = "KES";
const NAMES: [&str; 8] = [
    "Amina", "Brian", "Chebet", "David", "Esther", "Felix", "Grace", "Hassan",
];

/// When collection starts after the run starts.
fn phone(index: usize) -> String {
    format!("+2547{:08}", index + 1)
}

/// The loan index of a phone number from [`phone`].
fn index_of(phone: &str) -> Option<usize> {
    let digits = phone.strip_prefix("+2547")?;
    if digits.len() != 8 {
        return None;
    }
    digits.parse::<usize>().ok()?.checked_sub(1)
}

const FIRST_REMINDER_AFTER: Duration = Duration::from_secs(2);

/// The loan book: deterministic, so runs compare. Loan `index` falls due `index / rate`
/// seconds after the first (all at once with no rate limit).
fn loan(index: usize, first_due: SystemTime, rate: Rate) -> Loan {
    Loan {
        phone: phone(index),
        name: NAMES[index % NAMES.len()].to_owned(),
        amount_due: 500.0 + ((index * 7) % 20) as f64 * 250.0,
        due_at: first_due + rate.offset(index),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let args = Args::parse();
    let server = Server::start_with(&args.connection, |emulator| match &args.data_dir {
        Some(dir) => emulator.data_dir(dir),
        None => emulator,
    })
    .await?;
    println!(
        "Debt collection: {} customers, {}{}",
        args.customers,
        server.describe(),
        if server.simulate() {
            ", simulated customers"
        } else {
            ""
        }
    );
    let result = run(&args, &server).await;
    server.shutdown().await;
    result.map(drop)
}

/// Runs the whole flow; `Err` when a customer has no (or the wrong) outcome or any work was
/// shed. Returns what flow control did.
async fn run(args: &Args, server: &Server) -> anyhow::Result<Flow> {
    let started = Instant::now();
    let count = args.customers as usize;

    // The app.
    let app = Elarian::new(server.config()).context("invalid app configuration")?;
    let collector = Collector::new(
        app.clone(),
        Settings {
            sms_number: args.channels.sms_number.clone(),
            voice_number: args.channels.voice_number.clone(),
            payment_channel: args.channels.payment_channel.clone(),
            purse_id: args.channels.purse_id.clone(),
            currency: CURRENCY.to_owned(),
            reply_window: Duration::from_secs(args.reply_window_secs.unwrap_or(
                match args.rate.0 {
                    Some(_) => 4,
                    None => 8,
                },
            )),
            max_follow_ups: args.follow_ups,
        },
    );
    collector.register();
    app.connect()
        .await
        .with_context(|| format!("the app could not connect to {}", server.target()))?;

    // The customers' phones.
    let crowd = if server.simulate() {
        let simulator = Simulator::new(server.config()).context("invalid simulator config")?;
        let crowd = Crowd::new(
            simulator.clone(),
            move |phone| index_of(phone).filter(|i| *i < count).map(Persona::of),
            &args.channels.sms_number,
            &args.channels.voice_number,
            Pace {
                late_reply: Duration::from_millis(1_500),
                approve: Duration::from_millis(300),
            },
        );
        crowd.register();
        simulator
            .connect()
            .await
            .context("the simulator could not connect")?;
        Some((simulator, crowd))
    } else {
        None
    };

    let stats = collector.stats();
    // Handlers that failed, panicked or timed out were answered with the default reply by the
    // SDK: shed work, so counted and reported.
    let handler_failures = Arc::new(AtomicU64::new(0));
    let failures = handler_failures.clone();
    app.on_error(move |error| {
        if matches!(error, ClientError::Notification(_)) {
            failures.fetch_add(1, Ordering::Relaxed);
        }
    });
    let timeout = args
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or_else(|| {
            let spread = match args.rate.0 {
                Some(rate) => count as f64 / rate,
                // Unlimited: allow 500 customers per second, what a 2-core machine shared
                // with other work still does (docs/benchmarks.md).
                None => count as f64 / 500.0,
            };
            Duration::from_secs_f64(60.0 + 2.0 * spread)
        });
    let deadline = tokio::time::Instant::now() + timeout;
    let enrolled = tokio::select! {
        result = enrol(&collector, count, args.concurrency, args.rate) => result?,
        _ = tokio::time::sleep_until(deadline) => bail!(
            "timed out after {} s while enrolling customers", timeout.as_secs()
        ),
        _ = ctrl_c() => bail!("interrupted"),
    };
    let enrolment = started.elapsed();
    let finished = wait_for_outcomes(&stats, count, deadline).await;
    let elapsed = started.elapsed();

    // Read before disconnecting: the counters belong to the connections.
    let app_flow = app.flow_stats().unwrap_or_default();
    let simulator_flow = crowd
        .as_ref()
        .and_then(|(simulator, _)| simulator.flow_stats())
        .unwrap_or_default();
    // Let customers finish what they were doing (hanging up, …) before disconnecting.
    let crowd_stats = match &crowd {
        Some((simulator, crowd)) => {
            if !crowd.settle(Duration::from_secs(5)).await {
                tracing::warn!("some simulated customers were still busy");
            }
            simulator.disconnect().await;
            Some(crowd.stats())
        }
        None => None,
    };
    app.disconnect().await;

    let outcomes = stats.take_outcomes();
    print_summary(&stats, &outcomes, count, enrolment, elapsed);
    let flow = Flow {
        app: app_flow,
        simulator: simulator_flow,
        delivery: server.delivery_stats(),
        history_trimmed: server.history_trimmed(),
        handler_failures: handler_failures.load(Ordering::Relaxed),
    };
    flow.print();
    let mut problems = check(&stats, &outcomes, count);
    problems.extend(flow.problems());
    if let Some(crowd_stats) = &crowd_stats {
        problems.extend(check_personas(&outcomes, &enrolled, crowd_stats));
    }
    if let Err(timeout) = finished {
        problems.insert(0, timeout);
    }
    if problems.is_empty() {
        println!("All {count} customers reached a final outcome.");
        Ok(flow)
    } else {
        bail!("the run failed:\n  - {}", problems.join("\n  - "))
    }
}

/// Enrols every loan, `concurrency` at a time. Returns customer id → loan index.
async fn enrol(
    collector: &Collector,
    count: usize,
    concurrency: usize,
    rate: Rate,
) -> anyhow::Result<HashMap<Box<str>, usize>> {
    let first_due = SystemTime::now() + FIRST_REMINDER_AFTER;
    let bar = progress_bar(count as u64, "enrolled");
    let mut tasks = JoinSet::new();
    let mut ids = HashMap::with_capacity(count);
    let mut next = 0;
    loop {
        while next < count && tasks.len() < concurrency.max(1) {
            let collector = collector.clone();
            let index = next;
            tasks.spawn(async move {
                let loan = loan(index, first_due, rate);
                let id = collector
                    .enrol(&loan)
                    .await
                    .with_context(|| format!("could not enrol {}", loan.phone))?;
                anyhow::Ok((id, index))
            });
            next += 1;
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (id, index) = done.context("an enrolment task failed")??;
        ids.insert(id.into_boxed_str(), index);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(ids)
}

/// Shows progress until every case is closed; `Err` with a clear message on timeout or Ctrl-C.
async fn wait_for_outcomes(
    stats: &Stats,
    count: usize,
    deadline: tokio::time::Instant,
) -> Result<(), String> {
    let bar = progress_bar(count as u64, "outcomes");
    let mut finished = stats.finished();
    let mut interrupted = std::pin::pin!(ctrl_c());
    // Redrawn every REDRAW rather than at each closed case: thousands per second at scale, each
    // with two new timers and a formatted message, is work for nothing. The end is still seen
    // at once: `wait_for` checks the count at each change.
    const REDRAW: Duration = Duration::from_millis(100);
    // For the messages: `finished` is borrowed by the wait while they are written.
    let latest = stats.finished();
    let result = loop {
        let done = *finished.borrow_and_update();
        bar.set_position(done);
        if done as usize >= count {
            break Ok(());
        }
        bar.set_message(format!(
            "sms {} · replies {} · calls {} · paid {}",
            Stats::get(&stats.sms_sent),
            Stats::get(&stats.replies),
            Stats::get(&stats.calls),
            Stats::get(&stats.payments_succeeded),
        ));
        let open = || count as u64 - (*latest.borrow()).min(count as u64);
        tokio::select! {
            all = finished.wait_for(|n| *n as usize >= count) => if all.is_err() {
                break Err("the app stopped reporting outcomes".to_owned());
            },
            _ = tokio::time::sleep(REDRAW) => {}
            _ = tokio::time::sleep_until(deadline) => break Err(format!(
                "timed out: {} of {count} customers have no final outcome (see --timeout-secs)",
                open()
            )),
            _ = &mut interrupted => break Err(format!(
                "interrupted: {} of {count} customers have no final outcome",
                open()
            )),
        }
    };
    bar.finish_and_clear();
    result
}

fn tally(outcomes: &HashMap<Box<str>, Option<Outcome>>, wanted: Outcome) -> usize {
    outcomes.values().filter(|o| **o == Some(wanted)).count()
}

fn print_summary(
    stats: &Stats,
    outcomes: &HashMap<Box<str>, Option<Outcome>>,
    count: usize,
    enrolment: Duration,
    elapsed: Duration,
) {
    let mut table = SummaryTable::new("Debt collection summary");
    table
        .row("customers", count)
        .row("customers reminded", Stats::get(&stats.reminded))
        .row("SMS sent", Stats::get(&stats.sms_sent))
        .row("replies", Stats::get(&stats.replies))
        .row("calls", Stats::get(&stats.calls))
        .row("payments succeeded", Stats::get(&stats.payments_succeeded))
        .row("payments failed", Stats::get(&stats.payments_failed))
        .row("refused", tally(outcomes, Outcome::Refused))
        .row("unreachable", tally(outcomes, Outcome::Unreachable))
        .row(
            "still open",
            outcomes.values().filter(|o| o.is_none()).count(),
        )
        .row("amount collected", money(CURRENCY, stats.collected()))
        .row(
            "reminders shifted later",
            Stats::get(&stats.reminders_shifted),
        )
        .row("enrolment", format!("{:.1} s", enrolment.as_secs_f64()))
        .row("elapsed", format!("{:.1} s", elapsed.as_secs_f64()))
        .row(
            "throughput",
            format!(
                "{:.0} customers/s",
                count as f64 / elapsed.as_secs_f64().max(1e-9)
            ),
        );
    if let Some(peak) = peak_memory_bytes() {
        table
            .row(
                "peak memory (VmHWM)",
                format!("{:.1} MiB", peak as f64 / MIB),
            )
            .row(
                "peak memory per customer",
                format!("{} bytes", peak / count.max(1) as u64),
            );
    }
    table.print();
}

const MIB: f64 = 1024.0 * 1024.0;

/// What flow control did during the run: waits and retries (load slowing the run down), and
/// anything shed (a deadline really passed), which fails the run.
struct Flow {
    app: FlowStats,
    simulator: FlowStats,
    delivery: Option<DeliveryStats>,
    /// Bounded memory, not shed work: old history entries a customer's record let go.
    history_trimmed: Option<u64>,
    handler_failures: u64,
}

impl Flow {
    fn print(&self) {
        let mut table = SummaryTable::new("Flow control");
        for (who, stats) in [("app", &self.app), ("simulator", &self.simulator)] {
            table
                .row(
                    format!("{who}: commands retried after REJECTED"),
                    stats.rejected_retried,
                )
                .row(
                    format!("{who}: commands that waited for the window"),
                    stats.waited_for_window,
                )
                .row(
                    format!("{who}: window now / max"),
                    format!("{} / {}", stats.window, stats.max_window),
                );
        }
        if let Some(delivery) = &self.delivery {
            table
                .row(
                    "emulator: simulator commands rejected unprocessed",
                    delivery.commands_rejected,
                )
                .row(
                    "emulator: phone notifications not kept (no simulator connected)",
                    delivery.no_simulator,
                );
        }
        if let Some(trimmed) = self.history_trimmed {
            table.row(
                "emulator: history entries trimmed past history_limit",
                trimmed,
            );
        }
        for (what, count) in self.shed() {
            table.row(format!("shed: {what}"), count);
        }
        table.print();
    }

    /// Every kind of shed work with its count.
    fn shed(&self) -> Vec<(&'static str, u64)> {
        let mut shed = vec![
            (
                "app commands rejected past their timeout",
                self.app.rejected_gave_up,
            ),
            (
                "simulator commands rejected past their timeout",
                self.simulator.rejected_gave_up,
            ),
            (
                "app commands timed out waiting for the window",
                self.app.window_timeouts,
            ),
            (
                "simulator commands timed out waiting for the window",
                self.simulator.window_timeouts,
            ),
            (
                "notifications answered by default (handler timeout or failure)",
                self.handler_failures,
            ),
        ];
        if let Some(delivery) = &self.delivery {
            shed.extend([
                (
                    "notifications of commands not queued",
                    delivery.refused_for_commands,
                ),
                ("reminder notifications refused", delivery.refused_paced),
                ("notifications not answered in time", delivery.unanswered),
            ]);
        }
        shed
    }

    fn problems(&self) -> Vec<String> {
        self.shed()
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(what, count)| format!("shed {count}: {what}"))
            .collect()
    }
}

/// Checks that hold whoever the customers are.
fn check(
    stats: &Stats,
    outcomes: &HashMap<Box<str>, Option<Outcome>>,
    count: usize,
) -> Vec<String> {
    let mut problems = Vec::new();
    let closed = outcomes.values().filter(|o| o.is_some()).count();
    let enrolled = Stats::get(&stats.enrolled) as usize;
    if enrolled != count || outcomes.len() != count {
        problems.push(format!(
            "{enrolled} customers enrolled, {} tracked, {count} expected",
            outcomes.len()
        ));
    }
    if closed != count {
        problems.push(format!("{closed} of {count} cases closed"));
    }
    let paid = tally(outcomes, Outcome::Paid) as u64;
    let failed = tally(outcomes, Outcome::PaymentFailed) as u64;
    if paid != Stats::get(&stats.payments_succeeded) || failed != Stats::get(&stats.payments_failed)
    {
        problems.push("payment counters do not match the outcomes".to_owned());
    }
    if Stats::get(&stats.payments_succeeded) == 0 {
        problems.push("no payment succeeded".to_owned());
    }
    if Stats::get(&stats.reminded) as usize != count {
        problems.push(format!(
            "{} of {count} customers were reminded",
            Stats::get(&stats.reminded)
        ));
    }
    for (what, counter) in [
        ("outcomes reported twice", &stats.duplicate_outcomes),
        ("app commands failed", &stats.errors),
    ] {
        if Stats::get(counter) > 0 {
            problems.push(format!("{} {what}", Stats::get(counter)));
        }
    }
    problems
}

/// With simulated customers the outcome of each is known in advance.
fn check_personas(
    outcomes: &HashMap<Box<str>, Option<Outcome>>,
    enrolled: &HashMap<Box<str>, usize>,
    crowd: &CrowdStats,
) -> Vec<String> {
    let mut rows: BTreeMap<Persona, (usize, usize)> = BTreeMap::new();
    for (id, index) in enrolled {
        let persona = Persona::of(*index);
        let row = rows.entry(persona).or_default();
        row.0 += 1;
        if outcomes.get(id).copied().flatten() == Some(persona.expected()) {
            row.1 += 1;
        }
    }
    let mut table = SummaryTable::new("Simulated customers: expected outcome reached");
    for persona in Persona::ALL {
        if let Some((total, ok)) = rows.get(&persona) {
            table.row(persona.label(), format!("{ok} / {total}"));
        }
    }
    table.print();

    let mut problems = Vec::new();
    for (persona, (total, ok)) in &rows {
        if ok != total {
            problems.push(format!(
                "{} of {total} customers who \"{}\" did not end {:?}",
                total - ok,
                persona.label(),
                persona.expected()
            ));
        }
    }
    for (what, counter) in [
        ("unexpected calls", &crowd.unexpected_calls),
        ("unexpected checkouts", &crowd.unexpected_checkouts),
        ("calls without the press-1 prompt", &crowd.missing_prompts),
        ("simulator commands failed", &crowd.errors),
    ] {
        let n = counter.load(std::sync::atomic::Ordering::Relaxed);
        if n > 0 {
            problems.push(format!("{n} {what}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use elarian_emulator::DeliveryLimits;

    /// Overload: no rate limit against an emulator with tight limits (8 requests at once per
    /// connection, small notification queues), so that enrolment alone (64 at once) overruns
    /// the server. Load must slow the run down and lose nothing:
    /// `run` fails when a customer misses its expected outcome or any work was shed (a command
    /// or notification refused and neither retried nor reported), and the server's refusals
    /// must have been retried.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_customer_reaches_its_outcome_under_overload() {
        let args = Args::parse_from([
            "debt_collection",
            "--customers",
            "1000",
            "--rate",
            "max",
            "--timeout-secs",
            "240",
            "--reply-window-secs",
            "10",
        ]);
        let server = Server::start_with(&args.connection, |emulator| {
            emulator
                .max_concurrent_requests(8)
                .delivery_limits(DeliveryLimits {
                    queue: 256,
                    per_connection: 16,
                    ..DeliveryLimits::default()
                })
        })
        .await
        .expect("the emulator starts");
        let result = run(&args, &server).await;
        server.shutdown().await;
        let flow = result.expect("every customer reaches its outcome, nothing is shed");
        assert!(
            flow.app.rejected_retried + flow.simulator.rejected_retried > 0,
            "the server's limit was reached and its REJECTED answers retried"
        );
        assert!(
            flow.app.window < flow.app.max_window,
            "the app learnt a smaller window"
        );
    }

    #[test]
    fn phone_numbers_map_back_to_their_loan() {
        for index in [0, 1, 999, 99_999_998] {
            assert_eq!(index_of(&phone(index)), Some(index));
        }
        assert_eq!(index_of("+254700000000"), None);
        assert_eq!(index_of("+25470000001"), None);
        assert_eq!(index_of("+1555000001"), None);
    }

    #[test]
    fn loans_fall_due_at_the_configured_rate() {
        let start = SystemTime::UNIX_EPOCH;
        let later = loan(1_000, start, Rate(Some(500.0)));
        assert_eq!(later.due_at, start + Duration::from_secs(2));
        assert!(later.amount_due >= 500.0);
        assert_eq!(loan(1_000, start, Rate(None)).due_at, start);
    }

    #[test]
    fn the_rate_is_a_positive_number_or_unlimited() {
        assert_eq!(parse_rate("250"), Ok(Rate(Some(250.0))));
        assert_eq!(parse_rate("max"), Ok(Rate(None)));
        assert_eq!(parse_rate("0"), Ok(Rate(None)));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
