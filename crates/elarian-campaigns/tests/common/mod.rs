//! Shared setup: an in-process emulator, a connected app, a simulator that records the messages
//! phones receive, and campaigns on an in-memory store with a manual clock.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elarian_campaigns::*;
use elarian_emulator::config::{EmulatorConfig, TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
use elarian_emulator::{Emulator, EmulatorHandle};
use elarian_sdk::{ClientConfig, ClientConfigBuilder, Elarian, MessageBody};
use elarian_simulator::Simulator;

pub const WAIT: Duration = Duration::from_secs(20);
pub const EMAIL_SENDER: &str = "news@example.com";

pub async fn emulator() -> EmulatorHandle {
    let mut config = EmulatorConfig::default();
    config.orgs[0].channels.email.push(EMAIL_SENDER.into());
    Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .config(config)
        .start()
        .await
        .expect("the emulator starts")
}

pub fn config(emulator: &EmulatorHandle) -> ClientConfigBuilder {
    ClientConfig::builder()
        .org_id(TEST_ORG_ID)
        .app_id(TEST_APP_ID)
        .api_key(TEST_API_KEY)
        .endpoint(emulator.endpoint().expect("tcp endpoint"))
        .command_timeout(WAIT)
        .initial_connect_timeout(WAIT)
}

pub async fn app(emulator: &EmulatorHandle) -> Elarian {
    let app = Elarian::new(config(emulator)).unwrap();
    tokio::time::timeout(WAIT, app.connect())
        .await
        .unwrap()
        .unwrap();
    app
}

/// What the simulated phones received: (customer number, text or email HTML).
#[derive(Clone, Default)]
pub struct Phones(pub Arc<Mutex<Vec<(String, String)>>>);

impl Phones {
    pub fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn per_number(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (n, _) in self.all() {
            *m.entry(n).or_insert(0) += 1;
        }
        m
    }
}

pub async fn simulator(emulator: &EmulatorHandle) -> (Simulator, Phones) {
    let sim = Simulator::new(config(emulator)).unwrap();
    let phones = Phones::default();
    let p = phones.clone();
    sim.on_send_message(move |n| {
        let p = p.clone();
        async move {
            let text = match n.message.body {
                Some(MessageBody::Text(t)) => t,
                Some(MessageBody::Email(e)) => format!("{}|{}", e.subject, e.body_html),
                other => format!("{other:?}"),
            };
            p.0.lock().unwrap().push((n.customer_number.number, text));
        }
    });
    tokio::time::timeout(WAIT, sim.connect())
        .await
        .unwrap()
        .unwrap();
    (sim, phones)
}

pub fn start() -> Timestamp {
    "2026-01-01T09:00:00.000Z".parse().unwrap()
}

pub fn test_config() -> CampaignsConfig {
    CampaignsConfig {
        poll_interval: Duration::from_millis(20),
        ..CampaignsConfig::default()
    }
}

pub async fn campaigns(
    app: &Elarian,
    store: Store,
    clock: &ManualClock,
    config: CampaignsConfig,
) -> Campaigns {
    Campaigns::open_with_clock(app.clone(), store, Arc::new(clock.clone()), config)
        .await
        .unwrap()
}

pub fn sms_message(body: &str) -> NewMessage {
    from_json(
        &serde_json::json!({
            "name": "test",
            "channels": [{
                "type": "sms",
                "sender": {"type": "alphanumeric", "value": "83044"},
                "template": {"type": "plain", "content": {"body": body}}
            }]
        })
        .to_string(),
    )
    .unwrap()
}

pub fn inline(msisdn: &str, props: serde_json::Value) -> Recipient {
    Recipient {
        msisdn: Some(msisdn.into()),
        properties: serde_json::from_value(props).unwrap(),
        ..Recipient::default()
    }
}

/// A number no other test of this process uses.
pub fn number(test: u32, i: u32) -> String {
    format!("+2547{test:02}{i:06}")
}

pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn wait_status(c: &Campaigns, id: u64, status: SendingStatus) {
    wait_for(&format!("sending {id} to be {status}"), || async {
        c.sending(id).await.unwrap().status == status
    })
    .await;
}
