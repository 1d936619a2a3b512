//! A USSD menu app: customers dial the USSD code and navigate a small menu; the step they are at
//! is kept in their app data.
//!
//! Run against a local emulator (`cargo run -p elarian-emulator -- --tcp 127.0.0.1:9000`):
//!
//! ```text
//! ELARIAN_ENDPOINT=tcp://127.0.0.1:9000 cargo run -p elarian-sdk --example ussd_app
//! ```
//!
//! then dial with the simulator example (`cargo run -p elarian-simulator --example dial_ussd`).
//! `ELARIAN_ORG_ID`, `ELARIAN_APP_ID` and `ELARIAN_API_KEY` default to the spec's test values.

use elarian_sdk::{ClientConfig, ConnectionEvents, DataValue, Elarian, UssdMenu};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Session {
    screen: String,
    name: Option<String>,
}

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
    let app = Elarian::new(config)?;

    app.on_connected(|| println!("connected; dial the USSD code"))
        .on_error(|error| eprintln!("error: {error}"));

    app.on_ussd_session(|notification, customer, app_data, responder| async move {
        let mut session: Session = app_data
            .as_ref()
            .and_then(|d| d.to_serde().ok())
            .unwrap_or_default();
        let input = notification.input.text.unwrap_or_default();
        let menu = match (session.screen.as_str(), input.as_str()) {
            ("", _) | (_, "") => {
                session.screen = "home".into();
                UssdMenu::new("Welcome!\n1. Register\n2. Quit")
            }
            ("home", "1") => {
                session.screen = "name".into();
                UssdMenu::new("Enter your name")
            }
            ("name", name) => {
                session.name = Some(name.to_string());
                session.screen = String::new();
                let metadata = [("name".to_string(), DataValue::string(name))].into();
                if let Err(error) = customer.update_metadata(metadata).await {
                    eprintln!("could not save the name: {error}");
                }
                UssdMenu::terminal(format!("Thank you {name}!"))
            }
            _ => {
                session.screen = String::new();
                UssdMenu::terminal("Goodbye")
            }
        };
        let data = DataValue::from_serde(&session).ok();
        responder.reply(Some(menu), data);
    });

    app.connect().await?;
    tokio::signal::ctrl_c().await?;
    app.disconnect().await;
    Ok(())
}
