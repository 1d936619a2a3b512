//! What a peer sends never reaches the emulator's logs unescaped (see `docs/security.md`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use elarian_emulator::Emulator;
use elarian_proto::AppConnectionMetadata;
use elarian_transport::io::{Endpoint, TlsClientOptions, connect};
use elarian_transport::{ClientSession, ClientSessionConfig, Payload, RejectAll, SetupError};
use prost::Message;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn setup_with(endpoint: &Endpoint, org_id: &str, app_id: &str) -> SetupError {
    let meta = AppConnectionMetadata {
        org_id: org_id.into(),
        app_id: app_id.into(),
        api_key: Some("el_k_not_a_key".into()),
        ..Default::default()
    };
    let transport = connect(endpoint, &TlsClientOptions::new(), Duration::from_secs(10))
        .await
        .unwrap();
    let config = ClientSessionConfig {
        setup_payload: Payload::new(Bytes::from(meta.encode_to_vec())),
        ..ClientSessionConfig::default()
    };
    match ClientSession::connect(transport, config, Arc::new(RejectAll)).await {
        Ok(_) => panic!("an unknown org is refused"),
        Err(e) => e,
    }
}

// One thread, so that the emulator's tasks log through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn peer_supplied_ids_are_logged_escaped() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .start()
        .await
        .unwrap();
    let endpoint = emulator.endpoint().unwrap();
    let forged =
        "el_org_x\n2026-01-01T00:00:00Z  INFO connection accepted org=el_org_eu_1SJ2jx\u{1b}[2J";
    setup_with(&endpoint, forged, "el_app_\r\u{1b}[31mred").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    emulator.shutdown().await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("setup rejected"))
        .unwrap_or_else(|| panic!("no setup rejected line in {text}"));
    // The whole record stays on one line, with the control characters escaped.
    assert!(line.contains(r"el_org_x\n2026-01-01"), "{line}");
    assert!(line.contains(r"\u{1b}[2J"), "{line}");
    assert!(line.contains(r"el_app_\r\u{1b}[31mred"), "{line}");
    assert!(
        !text.contains('\u{1b}'),
        "an escape sequence reached the log: {text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged log line: {text}"
    );
}
