//! The emulator's log lines: each connection's lines carry a span naming it (app or simulator,
//! org, app), and what a peer sends is escaped so it cannot forge log lines.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use elarian_emulator::Emulator;
use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
use elarian_proto::{AppConnectionMetadata, AppToServerCommand, GenerateAuthTokenCommand};
use elarian_transport::io::{TlsClientOptions, connect};
use elarian_transport::{ClientSession, ClientSessionConfig, Payload, RejectAll};
use prost::Message;

const WAIT: Duration = Duration::from_secs(10);

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// ClientSessionConfig is non-exhaustive: no struct-update syntax outside its crate.
#[allow(clippy::field_reassign_with_default)]
async fn dial(
    endpoint: &elarian_transport::io::Endpoint,
    org: &str,
    simulator: bool,
) -> Result<ClientSession, elarian_transport::SetupError> {
    let meta = AppConnectionMetadata {
        org_id: org.into(),
        app_id: TEST_APP_ID.into(),
        api_key: Some(TEST_API_KEY.into()),
        auth_token: None,
        simplex_mode: simulator,
        simulator_mode: simulator,
    };
    let transport = connect(endpoint, &TlsClientOptions::new(), WAIT)
        .await
        .expect("transport connects");
    let mut config = ClientSessionConfig::default();
    config.setup_payload = Payload {
        data: meta.encode_to_vec().into(),
        metadata: Some(Bytes::from_static(br#"{"agent":"rust-test"}"#)),
    };
    config.metadata_mime_type = "application/json".into();
    ClientSession::connect(transport, config, Arc::new(RejectAll)).await
}

// One thread, so that the subscriber set for this thread sees the emulator's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn connection_lines_carry_a_span_and_escape_what_the_peer_sent() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("elarian_emulator=debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .start()
        .await
        .unwrap();
    let endpoint = emulator.endpoint().unwrap();
    let app = dial(&endpoint, TEST_ORG_ID, false).await.expect("accepted");
    let command = AppToServerCommand {
        entry: Some(
            elarian_proto::app_to_server_command::Entry::GenerateAuthToken(
                GenerateAuthTokenCommand {},
            ),
        ),
    };
    tokio::time::timeout(
        WAIT,
        app.connection()
            .request_response(Payload::new(command.encode_to_vec())),
    )
    .await
    .unwrap()
    .unwrap();
    let simulator = dial(&endpoint, TEST_ORG_ID, true).await.expect("accepted");
    // A forged org id with a line break and a fake log line after it.
    let forged = format!("{TEST_ORG_ID}\n2026-01-01T00:00:00Z  INFO fake: connection accepted");
    assert!(dial(&endpoint, &forged, false).await.is_err());
    app.connection().close();
    simulator.connection().close();
    emulator.shutdown().await;

    let text = captured.text();
    let app_span = format!("conn{{kind=\"app\" org=\"{TEST_ORG_ID}\" app=\"{TEST_APP_ID}\"}}");
    let simulator_span =
        format!("conn{{kind=\"simulator\" org=\"{TEST_ORG_ID}\" app=\"{TEST_APP_ID}\"}}");
    let line_with = |span: &str, what: &str| {
        text.lines()
            .any(|line| line.contains(span) && line.contains(what))
    };
    assert!(line_with(&app_span, "connection accepted"), "{text}");
    assert!(line_with(&app_span, "app command"), "{text}");
    assert!(line_with(&simulator_span, "connection accepted"), "{text}");
    assert!(line_with(&app_span, "connection closed"), "{text}");
    // The forged id stays on its line, escaped.
    assert!(
        text.contains("\\n2026-01-01T00:00:00Z  INFO fake"),
        "{text}"
    );
    assert!(
        !text.lines().any(|line| line.starts_with("2026-01-01")),
        "{text}"
    );
    // The API key never appears.
    assert!(!text.contains(TEST_API_KEY), "{text}");
}
