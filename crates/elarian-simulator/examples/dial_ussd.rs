//! Plays a customer dialling the USSD code and answering each screen from the keyboard.
//!
//! ```text
//! ELARIAN_ENDPOINT=tcp://127.0.0.1:9000 cargo run -p elarian-simulator --example dial_ussd
//! ```

use std::io::BufRead;

use elarian_sdk::{
    ClientConfig, InboundMessageBody, MessageBody, MessagingChannel, MessagingChannelNumber,
    UssdInput, UssdSessionStatus,
};
use elarian_simulator::Simulator;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = ClientConfig::builder()
        .org_id(env_or("ELARIAN_ORG_ID", "el_org_eu_1SJ2jx"))
        .app_id(env_or("ELARIAN_APP_ID", "el_app_WZFQdt"))
        .api_key(env_or(
            "ELARIAN_API_KEY",
            "el_k_test_80922f5e467e9d5e8067795c263ba0e43c6ef6de7ffa1923aaa189d2772042be",
        ));
    if let Ok(endpoint) = std::env::var("ELARIAN_ENDPOINT") {
        config = config.endpoint_url(&endpoint);
    }
    let simulator = Simulator::new(config)?;
    simulator.connect().await?;

    let phone = env_or("CUSTOMER_NUMBER", "+254700000000");
    let ussd = MessagingChannelNumber::new(env_or("USSD_CODE", "*83044#"), MessagingChannel::Ussd);
    let session = format!("ussd-{}", std::process::id());
    let mut input: Option<String> = None;
    let stdin = std::io::stdin();
    loop {
        let parts = vec![InboundMessageBody::Ussd(UssdInput {
            text: input.take(),
            status: UssdSessionStatus::Active,
        })];
        let reply = simulator
            .receive_message(&phone, ussd.clone(), &session, parts)
            .await?;
        let Some(MessageBody::Ussd(menu)) = reply.message.and_then(|m| m.body) else {
            println!("(no menu)");
            break;
        };
        println!("{}", menu.text);
        if menu.is_terminal {
            break;
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        input = Some(line.trim().to_string());
    }
    simulator.disconnect().await;
    Ok(())
}
