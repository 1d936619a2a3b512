//! An attacker next to a live app session, over real sockets: a RESUME needs the session's
//! resume token, and the SDK's token cannot be guessed (see `docs/security.md`).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{WAIT, app, emulator, unique_number};
use elarian_emulator::config::TEST_APP_ID;
use elarian_sdk::CustomerNumber;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[derive(Debug, PartialEq)]
enum Answer {
    ResumeOk,
    Error(String),
    Closed,
}

/// Sends a RESUME frame (RSocket 1.0, built by hand) with `token` and positions 0/0, and reads
/// the first answer.
async fn try_resume(addr: SocketAddr, token: &[u8]) -> Answer {
    let mut frame = Vec::new();
    frame.extend_from_slice(&0u32.to_be_bytes()); // stream 0
    frame.extend_from_slice(&(0x0Du16 << 10).to_be_bytes()); // RESUME, no flags
    frame.extend_from_slice(&1u16.to_be_bytes());
    frame.extend_from_slice(&0u16.to_be_bytes());
    frame.extend_from_slice(&(token.len() as u16).to_be_bytes());
    frame.extend_from_slice(token);
    frame.extend_from_slice(&0u64.to_be_bytes());
    frame.extend_from_slice(&0u64.to_be_bytes());
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let len = (frame.len() as u32).to_be_bytes();
    stream.write_all(&len[1..]).await.unwrap();
    stream.write_all(&frame).await.unwrap();
    let read = async {
        let mut prefix = [0u8; 3];
        stream.read_exact(&mut prefix).await.ok()?;
        let len =
            usize::from(prefix[0]) << 16 | usize::from(prefix[1]) << 8 | usize::from(prefix[2]);
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.ok()?;
        Some(body)
    };
    match tokio::time::timeout(WAIT, read)
        .await
        .expect("answered in time")
    {
        Some(body) if body.len() >= 6 && body[4] >> 2 == 0x0E => Answer::ResumeOk,
        Some(body) if body.len() >= 10 && body[4] >> 2 == 0x0B => {
            Answer::Error(String::from_utf8_lossy(&body[10..]).into_owned())
        }
        _ => Answer::Closed,
    }
}

#[tokio::test]
async fn a_resume_without_the_token_cannot_take_over_a_live_session() {
    let emulator = emulator().await;
    let before = now_ms();
    let app = app(&emulator).await;
    let after = now_ms();
    let customer = app.customer(CustomerNumber::cellular(unique_number()));
    customer.get_state().await.expect("the app is served");

    // The JavaScript client's token scheme, `<appId>-<epoch millis>`, tried over the whole
    // window in which the app connected (at most 2,000 guesses).
    let addr = emulator.tcp_addr().expect("tcp");
    let mut answers = Vec::new();
    for ms in before.saturating_sub(5)..=(after + 5).min(before + 2_000) {
        let token = format!("{TEST_APP_ID}-{ms}");
        answers.push(try_resume(addr, token.as_bytes()).await);
    }
    assert!(
        !answers.contains(&Answer::ResumeOk),
        "a guessed token resumed the app's session"
    );
    // Guessing is throttled: after a few failures, RESUMEs are refused unexamined.
    let throttled = answers
        .iter()
        .filter(|a| matches!(a, Answer::Error(m) if m.contains("too many failed resume attempts")))
        .count();
    if answers.len() > 10 {
        assert_eq!(throttled, answers.len() - 10, "{answers:?}");
    }

    // The app never noticed: its session is the same and still served.
    tokio::time::sleep(Duration::from_millis(100)).await;
    customer.get_state().await.expect("the app is still served");
    assert!(app.is_connected());
    app.disconnect().await;
}
