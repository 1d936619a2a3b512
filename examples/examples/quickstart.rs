//! Quickstart: connect an app, look after a customer, message them and answer their reply.
//!
//! ```sh
//! cargo run --release --example quickstart                                   # embedded emulator
//! cargo run --release --example quickstart -- --endpoint tcp://127.0.0.1:5555 --simulate
//! ```
//!
//! This is the getting-started snippet of the README, runnable. Without `--endpoint` it starts
//! an emulator in-process and plays the customer's phone with a simulator; with `--endpoint`,
//! the customer's reply is simulated only with `--simulate`.

use std::collections::HashMap;

use anyhow::{Context as _, ensure};
use clap::Parser;
use elarian_examples::{ConnectionArgs, Server, SmsArgs, init_tracing};
use elarian_sdk::{
    ConnectionEvents, CustomerNumber, DataValue, Elarian, InboundMessageBody, Message, MessageBody,
    MessagingChannel, MessagingChannelNumber, Tag,
};
use elarian_simulator::Simulator;

/// The Elarian quickstart.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The customer's phone number.
    #[arg(long, default_value = "+254700000000")]
    phone: String,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    channels: SmsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let args = Args::parse();
    let server = Server::start(&args.connection).await?;
    println!("Quickstart on {}", server.describe());
    let result = run(&args, &server).await;
    server.shutdown().await;
    result
}

async fn run(args: &Args, server: &Server) -> anyhow::Result<()> {
    // 1. Create the app, say what to do when a customer texts in, and connect.
    let app = Elarian::new(server.config())?;
    app.on_connected(|| println!("connected"));
    app.on_received_sms(|notification, customer, app_data, responder| async move {
        let text = notification.text().unwrap_or_default();
        println!(
            "app: {} texted {text:?}",
            customer
                .number()
                .map(|n| n.number.as_str())
                .unwrap_or("a customer")
        );
        // The reply goes back into the customer's conversation; app data stays as it is.
        responder.reply(Some(Message::text(format!("You said: {text}"))), app_data);
    });
    app.connect()
        .await
        .with_context(|| format!("the app could not connect to {}", server.target()))?;

    // 2. A customer: add what you know about them, then message them.
    let customer = app.customer(CustomerNumber::cellular(&args.phone));
    customer
        .update_metadata(HashMap::from([
            ("name".to_owned(), DataValue::string("Ann")),
            ("plan".to_owned(), DataValue::string("gold")),
        ]))
        .await?;
    customer
        .update_tags(vec![Tag::new("segment", "early-adopter")])
        .await?;
    let sms = MessagingChannelNumber::new(&args.channels.sms_number, MessagingChannel::Sms);
    let sent = customer
        .send_message(sms.clone(), Message::text("Welcome to Elarian, Ann!"))
        .await?;
    println!("SMS to {}: {:?}", args.phone, sent.status);
    ensure!(
        sent.is_success(),
        "the SMS was not sent: {}",
        sent.description
    );

    // 3. The customer texts back (played by the simulator).
    if server.simulate() {
        let phone = Simulator::new(server.config())?;
        phone
            .connect()
            .await
            .context("the simulator could not connect")?;
        let reply = phone
            .receive_message(
                &args.phone,
                sms,
                "",
                vec![InboundMessageBody::Text("Hello!".into())],
            )
            .await?;
        let answer = match reply.message.and_then(|m| m.body) {
            Some(MessageBody::Text(text)) => text,
            other => format!("{other:?}"),
        };
        println!("customer's phone shows: {answer:?}");
        phone.disconnect().await;
        ensure!(answer == "You said: Hello!", "unexpected answer {answer:?}");
    }

    // 4. Everything Elarian knows about the customer.
    let state = customer.get_state().await?;
    let name = state
        .identity
        .metadata
        .get("name")
        .and_then(|v| v.to_serde::<String>().ok());
    let tags: Vec<String> = state
        .identity
        .tags
        .iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect();
    println!(
        "customer {}: name {name:?}, tags {tags:?}",
        state.customer_id
    );
    ensure!(name.as_deref() == Some("Ann"), "metadata was not stored");

    app.disconnect().await;
    Ok(())
}
