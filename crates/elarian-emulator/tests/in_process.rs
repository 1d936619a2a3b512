//! In-process connections (`EmulatorHandle::in_process_dialer`) get the treatment of accepted
//! TCP connections: the same SETUP checks, authentication and limits, and the same close.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
use elarian_emulator::{Emulator, EmulatorError, EmulatorHandle};
use elarian_proto::AppConnectionMetadata;
use elarian_transport::frame::{ErrorCode, Frame};
use elarian_transport::io::{Dialer, FrameReader, FrameTransport, FrameWriter};
use elarian_transport::{ClientSession, ClientSessionConfig, Payload, RejectAll, SetupError};
use prost::Message;

const WAIT: Duration = Duration::from_secs(10);

async fn emulator() -> EmulatorHandle {
    Emulator::builder()
        .in_process_only()
        .start()
        .await
        .expect("starts without a listener")
}

fn setup_config(api_key: &str) -> ClientSessionConfig {
    let meta = AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        api_key: Some(api_key.into()),
        ..Default::default()
    };
    ClientSessionConfig {
        setup_payload: Payload::new(Bytes::from(meta.encode_to_vec())),
        ..ClientSessionConfig::default()
    }
}

/// Writes `frame` as the first frame of a fresh in-process connection and returns the ERROR
/// the emulator answers with; the connection must then be closed.
async fn first_frame_refused(emulator: &EmulatorHandle, frame: Bytes) -> (ErrorCode, String) {
    let transport = emulator.in_process_dialer().dial().await.expect("dials");
    let (mut reader, mut writer) = transport.split();
    writer.write_frame(frame).await.expect("written");
    writer.flush().await.expect("flushed");
    let answer = tokio::time::timeout(WAIT, reader.read_frame())
        .await
        .expect("answered in time")
        .expect("no transport error")
        .expect("an ERROR frame before the close");
    let Ok(Frame::Error(error)) = Frame::decode(answer) else {
        panic!("not an ERROR frame");
    };
    assert_eq!(error.stream_id, 0);
    let closed = tokio::time::timeout(WAIT, reader.read_frame())
        .await
        .expect("closed in time")
        .expect("a clean close");
    assert!(closed.is_none(), "the connection is closed after the ERROR");
    (
        error.code,
        String::from_utf8_lossy(&error.data).into_owned(),
    )
}

#[tokio::test]
async fn starting_without_listener_needs_in_process_only() {
    assert!(matches!(
        Emulator::builder().start().await,
        Err(EmulatorError::NoListener)
    ));
    let emulator = emulator().await;
    assert!(emulator.endpoint().is_none());
    emulator.shutdown().await;
}

#[tokio::test]
async fn garbage_and_oversized_first_frames_are_refused_and_closed() {
    let emulator = emulator().await;
    let (code, message) = first_frame_refused(&emulator, Bytes::from_static(&[0xff; 9])).await;
    assert_eq!(code, ErrorCode::InvalidSetup, "{message}");

    // Larger than the unauthenticated first frame may be (16 KiB by default).
    let (code, message) = first_frame_refused(&emulator, Bytes::from(vec![0u8; 64 * 1024])).await;
    assert_eq!(code, ErrorCode::InvalidSetup);
    assert!(message.contains("exceeds the limit"), "{message}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn setup_is_authenticated_as_on_tcp() {
    let emulator = emulator().await;
    let dialer = emulator.in_process_dialer();

    let transport = dialer.dial().await.expect("dials");
    let refused = ClientSession::connect(
        transport,
        setup_config("el_k_not_the_key"),
        Arc::new(RejectAll),
    )
    .await;
    assert!(
        matches!(refused, Err(SetupError::Rejected { .. })),
        "a wrong API key is refused: {refused:?}"
    );

    let transport = dialer.dial().await.expect("dials");
    let session =
        ClientSession::connect(transport, setup_config(TEST_API_KEY), Arc::new(RejectAll))
            .await
            .expect("the test key is accepted");
    assert!(!session.connection().is_closed());
    emulator.shutdown().await;
}

#[tokio::test]
async fn stopping_the_emulator_closes_in_process_connections_and_refuses_new_ones() {
    let emulator = emulator().await;
    let dialer = emulator.in_process_dialer();
    let transport = dialer.dial().await.expect("dials");
    let session =
        ClientSession::connect(transport, setup_config(TEST_API_KEY), Arc::new(RejectAll))
            .await
            .expect("connected");

    emulator.shutdown().await;
    tokio::time::timeout(WAIT, session.disconnected())
        .await
        .expect("the connection is closed when the emulator stops");
    let error = dialer.dial().await.expect_err("a stopped emulator refuses");
    assert!(error.is_refused(), "{error:?}");
}
