//! Acknowledged writes survive `kill -9` of the emulator process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
use elarian_proto::{
    self as p, AppConnectionMetadata, AppToServerCommand, AppToServerCommandReply,
    app_to_server_command::Entry as E, app_to_server_command_reply::Entry as R,
};
use elarian_transport::io::{Endpoint, TlsClientOptions, connect};
use elarian_transport::{ClientSession, ClientSessionConfig, Payload, RejectAll};
use prost::Message;

const WAIT: Duration = Duration::from_secs(10);

/// Starts the binary and returns it with its TCP endpoint, read from its banner.
fn spawn(dir: &std::path::Path) -> (Child, Endpoint) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_elarian-emulator"))
        .args(["--tcp", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emulator binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let endpoint = loop {
        let line = lines
            .next()
            .expect("the emulator prints its endpoint")
            .expect("readable stdout");
        if let Some(rest) = line.strip_prefix("tcp:") {
            break rest.trim().parse::<Endpoint>().expect("a valid endpoint");
        }
    };
    // Keep draining stdout so that the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, endpoint)
}

async fn session(endpoint: &Endpoint) -> ClientSession {
    let transport = connect(endpoint, &TlsClientOptions::new(), WAIT)
        .await
        .expect("transport connects");
    let meta = AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        api_key: Some(TEST_API_KEY.into()),
        ..Default::default()
    };
    #[allow(clippy::field_reassign_with_default)]
    let config = {
        let mut c = ClientSessionConfig::default();
        c.setup_payload = Payload::new(meta.encode_to_vec());
        c
    };
    ClientSession::connect(transport, config, Arc::new(RejectAll))
        .await
        .expect("setup accepted")
}

async fn command(session: &ClientSession, entry: E) -> R {
    let reply = tokio::time::timeout(
        WAIT,
        session.connection().request_response(Payload::new(
            AppToServerCommand { entry: Some(entry) }.encode_to_vec(),
        )),
    )
    .await
    .expect("reply in time")
    .expect("command succeeds");
    AppToServerCommandReply::decode(reply.data)
        .expect("reply decodes")
        .entry
        .expect("reply entry")
}

fn metadata(customer: &str, n: usize) -> E {
    E::UpdateCustomerMetadata(p::UpdateCustomerMetadataCommand {
        customer: Some(
            p::update_customer_metadata_command::Customer::CustomerNumber(p::CustomerNumber {
                provider: p::CustomerNumberProvider::Cellular as i32,
                number: customer.into(),
                partition: None,
            }),
        ),
        updates: [(
            format!("k{n}"),
            p::DataMapValue {
                value: Some(p::data_map_value::Value::StringVal(n.to_string())),
            },
        )]
        .into_iter()
        .collect(),
    })
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!(
        "elarian-emulator-crash-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let (mut child, endpoint) = spawn(&dir);
    let s = session(&endpoint).await;
    const WRITES: usize = 50;
    for n in 0..WRITES {
        match command(&s, metadata("+254722000001", n)).await {
            R::UpdateCustomerState(r) => assert!(r.status, "{}", r.description),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let (mut child, endpoint) = spawn(&dir);
    let s = session(&endpoint).await;
    let state = match command(
        &s,
        E::GetCustomerState(p::GetCustomerStateCommand {
            customer: Some(p::get_customer_state_command::Customer::CustomerNumber(
                p::CustomerNumber {
                    provider: p::CustomerNumberProvider::Cellular as i32,
                    number: "+254722000001".into(),
                    partition: None,
                },
            )),
        }),
    )
    .await
    {
        R::GetCustomerState(r) => r.data.expect("customer state"),
        other => panic!("unexpected reply {other:?}"),
    };
    let metadata = state.identity_state.expect("identity").metadata;
    assert_eq!(metadata.len(), WRITES, "every acknowledged write is there");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
