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
    spawn_with(dir, &[])
}

/// [`spawn`] with extra flags.
fn spawn_with(dir: &std::path::Path, flags: &[&str]) -> (Child, Endpoint) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_elarian-emulator"))
        // No console: its default port is fixed, and these tests run emulators side by side.
        .args(["--no-console", "--tcp", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(flags)
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

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "elarian-emulator-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

#[tokio::test]
async fn a_payout_pending_at_kill_9_settles_after_the_restart_as_the_flags_say() {
    let dir = temp_dir("settle");
    let flags = [
        "--payment-settle-delay-ms",
        "1500",
        "--fail-payments-to",
        "+25479900*",
        "--payment-failure-status",
        "rejected",
    ];
    let number = "+254799000777";
    let (mut child, endpoint) = spawn_with(&dir, &flags);
    let s = session(&endpoint).await;
    let reply = command(
        &s,
        E::InitiatePayment(p::InitiatePaymentCommand {
            debit_party: Some(p::PaymentCounterParty {
                party: Some(p::payment_counter_party::Party::Purse(
                    p::PaymentPurseCounterParty {
                        purse_id: elarian_emulator::config::TEST_PURSE_ID.into(),
                    },
                )),
            }),
            credit_party: Some(p::PaymentCounterParty {
                party: Some(p::payment_counter_party::Party::Customer(
                    p::PaymentCustomerCounterParty {
                        customer_number: Some(p::CustomerNumber {
                            provider: p::CustomerNumberProvider::Cellular as i32,
                            number: number.into(),
                            partition: None,
                        }),
                        channel_number: Some(p::PaymentChannelNumber {
                            channel: p::PaymentChannel::Cellular as i32,
                            number: elarian_emulator::config::TEST_PAYMENT_CHANNEL.into(),
                        }),
                    },
                )),
            }),
            value: Some(p::Cash {
                currency_code: "KES".into(),
                amount: 5.0,
            }),
            narration: String::new(),
        }),
    )
    .await;
    let R::InitiatePayment(reply) = reply else {
        panic!("unexpected reply {reply:?}")
    };
    assert_eq!(reply.status, p::PaymentStatus::Queued as i32, "{reply:?}");
    let txn = reply.transaction_id.expect("transaction id");
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let (mut child, endpoint) = spawn_with(&dir, &flags);
    let s = session(&endpoint).await;
    let state_command = || {
        E::GetCustomerState(p::GetCustomerStateCommand {
            customer: Some(p::get_customer_state_command::Customer::CustomerNumber(
                p::CustomerNumber {
                    provider: p::CustomerNumberProvider::Cellular as i32,
                    number: number.into(),
                    partition: None,
                },
            )),
        })
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let settled = loop {
        let R::GetCustomerState(r) = command(&s, state_command()).await else {
            panic!("unexpected reply")
        };
        let payments = r.data.and_then(|d| d.payment_state).expect("payment state");
        if let Some(t) = payments
            .transaction_log
            .into_iter()
            .find(|t| t.transaction_id == txn)
        {
            break t;
        }
        assert!(
            payments
                .pending_transactions
                .iter()
                .any(|t| t.transaction_id == txn),
            "the payment is pending until it settles"
        );
        assert!(tokio::time::Instant::now() < deadline, "settled in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(settled.status, p::PaymentStatus::Rejected as i32);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
