//! A messaging campaign with `elarian-campaigns`: a Message with an SMS template, an audience of
//! simulated customers whose Elarian metadata holds the merge fields, and a Sending scheduled a
//! few seconds ahead with a relative schedule. Prints progress while it runs and a report at the
//! end, and checks that every simulated phone received its rendered text (exit code 1 if not).
//!
//! ```sh
//! cargo run --release --example campaign                       # 10,000 simulated customers
//! cargo run --release --example campaign -- --recipients 200
//! cargo run --release --example campaign -- --endpoint tcp://127.0.0.1:5555 --simulate
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use elarian_campaigns::{
    AudiencePayload, Campaigns, CampaignsConfig, MemberId, Recipient, ScheduleType, ScheduledWith,
    SendingPayload, SendingStatus, Store, from_json,
};
use elarian_examples::{
    ChannelArgs, ConnectionArgs, Server, SummaryTable, init_tracing, money, progress_bar,
};
use elarian_sdk::{CustomerNumber, DataValue, Elarian, MessageBody, SecondaryId};
use elarian_simulator::Simulator;
use futures_util::StreamExt;
use tokio::task::JoinSet;

/// A debt-reminder SMS campaign to simulated customers, through Elarian.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Customers in the audience.
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    recipients: u32,
    /// The sending is scheduled this many seconds ahead (a relative schedule).
    #[arg(long, default_value_t = 3)]
    schedule_in_secs: u64,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Give up (and fail) if the sending has not finished by then.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    channels: ChannelArgs,
}

const NAMES: [&str; 8] = [
    "Amina", "Brian", "Chebet", "David", "Esther", "Felix", "Grace", "Hassan",
];

fn phone(i: u32) -> String {
    format!("+2547{:08}", i + 1)
}

/// Every 50th customer has no balance on record: the campaign must skip them, not send
/// "you owe {{balance}}".
fn balance(i: u32) -> Option<String> {
    (i % 50 != 49).then(|| money("KES", f64::from(1_000 + (i * 37) % 9_000)))
}

fn expected_text(i: u32) -> Option<String> {
    balance(i).map(|b| format!("Hi {}, you owe {b}", NAMES[i as usize % NAMES.len()]))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let args = Args::parse();
    let server = Server::start(&args.connection).await?;
    println!(
        "campaign: {} recipients on {}",
        args.recipients,
        server.describe()
    );
    let app = Elarian::new(server.config())?;
    app.connect().await.context("cannot connect the app")?;

    // The simulated phones record what they receive.
    let inbox: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let simulator = if server.simulate() {
        let sim = Simulator::new(server.config())?;
        let inbox = inbox.clone();
        sim.on_send_message(move |n| {
            let inbox = inbox.clone();
            async move {
                if let Some(MessageBody::Text(text)) = n.message.body
                    && let Ok(mut inbox) = inbox.lock()
                {
                    inbox
                        .entry(n.customer_number.number)
                        .or_default()
                        .push(text);
                }
            }
        });
        sim.connect()
            .await
            .context("cannot connect the simulator")?;
        Some(sim)
    } else {
        None
    };

    // The customers: merge fields in their Elarian metadata, member id as a secondary id.
    let started = Instant::now();
    let bar = progress_bar(u64::from(args.recipients), "customers");
    let mut tasks = JoinSet::new();
    for i in 0..args.recipients {
        if tasks.len() >= 64
            && let Some(r) = tasks.join_next().await
        {
            r??;
        }
        let app = app.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let customer = app.customer(CustomerNumber::cellular(phone(i)));
            let mut metadata = HashMap::from([(
                "first_name".to_string(),
                DataValue::string(NAMES[i as usize % NAMES.len()]),
            )]);
            if let Some(b) = balance(i) {
                metadata.insert("balance".to_string(), DataValue::string(b));
            }
            customer.update_metadata(metadata).await?;
            customer
                .update_secondary_ids(vec![SecondaryId::new("member_id", (i + 1).to_string())])
                .await?;
            bar.inc(1);
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    bar.finish_and_clear();
    let setup = started.elapsed();

    let config = CampaignsConfig {
        concurrency: args.concurrency.max(1),
        member_lookups: 64,
        ..CampaignsConfig::default()
    };
    let campaigns = Campaigns::open(app.clone(), Store::memory(), config).await?;
    let message = campaigns
        .create_message(from_json(
            &serde_json::json!({
                "name": "Repayment reminder",
                "shorten_urls": false,
                "track_in_shortener": false,
                "service": "campaigns",
                "channels": [{
                    "type": "sms",
                    "sender": {"type": "alphanumeric", "value": args.channels.sms_number},
                    "template": {"type": "plain", "content": {"body": "Hi {{first_name}}, you owe {{balance}}"}}
                }]
            })
            .to_string(),
        )?)
        .await?;
    let audience = campaigns
        .create_audience(AudiencePayload {
            name: "repayments due".into(),
            recipients: (0..args.recipients)
                .map(|i| Recipient {
                    member_id: Some(MemberId::Number(u64::from(i) + 1)),
                    ..Recipient::default()
                })
                .collect(),
        })
        .await?;
    let sending = campaigns
        .create_sending(
            message.id,
            SendingPayload {
                audience_id: Some(audience.id),
                scheduled_with: Some(ScheduledWith {
                    within: format!("{} seconds", args.schedule_in_secs),
                    kind: ScheduleType::Relative,
                }),
                ..SendingPayload::default()
            },
        )
        .await?;
    println!(
        "sending {} of message {} ({:?}) scheduled at {}",
        sending.id,
        message.id,
        message.name,
        sending
            .scheduled_at
            .map(|t| t.to_string())
            .unwrap_or_default()
    );

    // Progress while it runs.
    let run_started = Instant::now();
    let bar = progress_bar(u64::from(args.recipients), "sent");
    let mut stream = campaigns.progress_stream(sending.id).await?;
    let mut status = sending.status;
    let mut phases: Vec<(SendingStatus, Duration)> = vec![(status, Duration::ZERO)];
    let deadline = Duration::from_secs(args.timeout_secs);
    let last = loop {
        let next = tokio::time::timeout(
            deadline.saturating_sub(run_started.elapsed()),
            stream.next(),
        )
        .await
        .context("the sending did not finish in time")?;
        let Some(p) = next else {
            break campaigns.progress(sending.id).await?;
        };
        if let Some(s) = p.status
            && s != status
        {
            status = s;
            phases.push((s, run_started.elapsed()));
            bar.set_message(s.to_string());
        }
        bar.set_length(p.resolved.max(1));
        bar.set_position(p.sent + p.failed + p.unknown);
        if p.status.is_some_and(SendingStatus::is_final) {
            break p;
        }
    };
    bar.finish_and_clear();
    // Delivery reports follow the sends.
    let mut p = last;
    let settle = Instant::now();
    while p.delivered + p.failed < p.sent && settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        p = campaigns.progress(sending.id).await?;
    }
    let elapsed = run_started.elapsed();

    let mut table = SummaryTable::new("Campaign report");
    table.row(
        "status",
        p.status.map(|s| s.to_string()).unwrap_or_default(),
    );
    for (s, at) in &phases {
        table.row(format!("  {s} at"), format!("{:.2} s", at.as_secs_f64()));
    }
    table
        .row("recipients", p.recipients)
        .row("duplicates", p.duplicates)
        .row("resolved", p.resolved);
    for (reason, n) in &p.skipped {
        table.row(format!("skipped: {reason}"), n);
    }
    table
        .row("sent", p.sent)
        .row("delivered", p.delivered)
        .row("failed", p.failed)
        .row("unknown outcome", p.unknown)
        .row("SMS segments", p.sms_segments)
        .row("customer set-up", format!("{:.2} s", setup.as_secs_f64()))
        .row(
            "elapsed (schedule to report)",
            format!("{:.2} s", elapsed.as_secs_f64()),
        );
    table.print();

    // Checks: the outcome, the counts, and the text on every simulated phone.
    let skipped_expected = u64::from(args.recipients / 50);
    let resolved_expected = u64::from(args.recipients) - skipped_expected;
    if p.status != Some(SendingStatus::Transmitted) {
        bail!("the sending ended {:?}", p.status);
    }
    if p.resolved != resolved_expected || p.sent != resolved_expected {
        bail!("expected {resolved_expected} resolved and sent, got {p:?}");
    }
    if p.skipped
        .get("missing merge field `balance`")
        .copied()
        .unwrap_or(0)
        != skipped_expected
    {
        bail!(
            "expected {skipped_expected} skipped for a missing balance, got {:?}",
            p.skipped
        );
    }
    if simulator.is_some() {
        let wait = Instant::now();
        loop {
            let received: usize = inbox
                .lock()
                .map(|i| i.values().map(Vec::len).sum())
                .unwrap_or(0);
            if received as u64 >= resolved_expected || wait.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let inbox = inbox.lock().map(|i| i.clone()).unwrap_or_default();
        let mut wrong: BTreeMap<String, String> = BTreeMap::new();
        for i in 0..args.recipients {
            let got = inbox.get(&phone(i)).cloned().unwrap_or_default();
            let want: Vec<String> = expected_text(i).into_iter().collect();
            if got != want {
                wrong.insert(phone(i), format!("expected {want:?}, got {got:?}"));
            }
        }
        if !wrong.is_empty() {
            let sample: Vec<_> = wrong.iter().take(5).collect();
            bail!(
                "{} phones did not show the rendered text exactly once: {sample:?}",
                wrong.len()
            );
        }
        println!("every simulated phone shows its rendered text, once");
    }

    campaigns.shutdown().await;
    if let Some(sim) = simulator {
        sim.disconnect().await;
    }
    app.disconnect().await;
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fiftieth_customer_has_no_balance() {
        assert!(balance(48).is_some());
        assert!(balance(49).is_none());
        assert_eq!(expected_text(0).unwrap(), "Hi Amina, you owe KES 1,000.00");
    }
}
