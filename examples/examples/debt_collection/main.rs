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
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use clap::Parser;
use elarian_examples::{
    ChannelArgs, ConnectionArgs, Server, SummaryTable, ctrl_c, init_tracing, money, progress_bar,
};
use elarian_sdk::Elarian;
use elarian_simulator::Simulator;
use tokio::task::JoinSet;

use app::{Collector, Loan, Outcome, Settings, Stats};
use customers::{Crowd, CrowdStats, Pace, Persona};

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
    /// Customers enrolled concurrently.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Customers reminded per second: due reminders are spread so that a large book does not
    /// hit the server (and the customers) all at once.
    #[arg(long, default_value_t = 500.0, value_parser = positive)]
    rate: f64,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    channels: ChannelArgs,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a positive number")),
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
/// seconds after the first.
fn loan(index: usize, first_due: SystemTime, rate: f64) -> Loan {
    Loan {
        phone: phone(index),
        name: NAMES[index % NAMES.len()].to_owned(),
        amount_due: 500.0 + ((index * 7) % 20) as f64 * 250.0,
        due_at: first_due + Duration::from_secs_f64(index as f64 / rate),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let args = Args::parse();
    let server = Server::start(&args.connection).await?;
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
    result
}

async fn run(args: &Args, server: &Server) -> anyhow::Result<()> {
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
            reply_window: Duration::from_secs(4),
            max_follow_ups: 256,
        },
    );
    collector.register();
    app.connect()
        .await
        .with_context(|| format!("the app could not connect to {}", server.endpoint()))?;

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
    let timeout = args
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or_else(|| Duration::from_secs_f64(60.0 + 2.0 * count as f64 / args.rate));
    let deadline = tokio::time::Instant::now() + timeout;
    let enrolled = tokio::select! {
        result = enrol(&collector, count, args.concurrency, args.rate) => result?,
        _ = tokio::time::sleep_until(deadline) => bail!(
            "timed out after {} s while enrolling customers", timeout.as_secs()
        ),
        _ = ctrl_c() => bail!("interrupted"),
    };
    let finished = wait_for_outcomes(&stats, count, deadline).await;
    let elapsed = started.elapsed();

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

    let outcomes = stats.outcomes();
    let personas = crowd_stats.as_ref().map(|_| {
        enrolled
            .iter()
            .map(|(id, index)| (id.clone(), Persona::of(*index)))
            .collect::<HashMap<_, _>>()
    });
    print_summary(&stats, &outcomes, count, elapsed);
    let mut problems = check(&stats, &outcomes, count);
    if let (Some(personas), Some(crowd_stats)) = (&personas, &crowd_stats) {
        problems.extend(check_personas(&outcomes, personas, crowd_stats));
    }
    if let Err(timeout) = finished {
        problems.insert(0, timeout);
    }
    if problems.is_empty() {
        println!("All {count} customers reached a final outcome.");
        Ok(())
    } else {
        bail!("the run failed:\n  - {}", problems.join("\n  - "))
    }
}

/// Enrols every loan, `concurrency` at a time. Returns customer id → loan index.
async fn enrol(
    collector: &Collector,
    count: usize,
    concurrency: usize,
    rate: f64,
) -> anyhow::Result<HashMap<String, usize>> {
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
        ids.insert(id, index);
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
    let result = loop {
        let done = *finished.borrow_and_update();
        bar.set_position(done);
        bar.set_message(format!(
            "sms {} · replies {} · calls {} · paid {}",
            Stats::get(&stats.sms_sent),
            Stats::get(&stats.replies),
            Stats::get(&stats.calls),
            Stats::get(&stats.payments_succeeded),
        ));
        if done as usize >= count {
            break Ok(());
        }
        tokio::select! {
            changed = finished.changed() => if changed.is_err() {
                break Err("the app stopped reporting outcomes".to_owned());
            },
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::time::sleep_until(deadline) => break Err(format!(
                "timed out: {} of {count} customers have no final outcome (see --timeout-secs)",
                count as u64 - done
            )),
            _ = &mut interrupted => break Err(format!(
                "interrupted: {} of {count} customers have no final outcome",
                count as u64 - done
            )),
        }
    };
    bar.finish_and_clear();
    result
}

fn tally(outcomes: &HashMap<String, Option<Outcome>>, wanted: Outcome) -> usize {
    outcomes.values().filter(|o| **o == Some(wanted)).count()
}

fn print_summary(
    stats: &Stats,
    outcomes: &HashMap<String, Option<Outcome>>,
    count: usize,
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
        .row("elapsed", format!("{:.1} s", elapsed.as_secs_f64()));
    table.print();
}

/// Checks that hold whoever the customers are.
fn check(stats: &Stats, outcomes: &HashMap<String, Option<Outcome>>, count: usize) -> Vec<String> {
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
    outcomes: &HashMap<String, Option<Outcome>>,
    personas: &HashMap<String, Persona>,
    crowd: &CrowdStats,
) -> Vec<String> {
    let mut rows: BTreeMap<Persona, (usize, usize)> = BTreeMap::new();
    for (id, persona) in personas {
        let row = rows.entry(*persona).or_default();
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
        let later = loan(1_000, start, 500.0);
        assert_eq!(later.due_at, start + Duration::from_secs(2));
        assert!(later.amount_due >= 500.0);
    }
}
