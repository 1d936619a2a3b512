//! The server under attack, over real TCP sockets: forged RESUMEs, guessing, floods of
//! connections, memory held by unauthenticated or greedy peers, long keepalives, and garbage.
//! Each test names the hole it closes (see `docs/security.md`).
#![cfg(feature = "tcp")]
// Each test changes a few fields of a default config, as applications outside the crate do.
#![allow(clippy::field_reassign_with_default)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elarian_transport::BoxFuture;
use elarian_transport::frame::{
    ErrorCode, Frame, RequestFrame, RequestKind, ResumeFrame, SetupFrame,
};
use elarian_transport::io::{
    BoxReader, BoxWriter, FrameReader, FrameTransport, FrameWriter, FramingConfig, LengthPrefixed,
    TcpListener, TcpTransport,
};
use elarian_transport::{
    ClientSession, ClientSessionConfig, Payload, RejectAll, RequestHandler, Server, ServerConfig,
    StreamError,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

struct Echo;

impl RequestHandler for Echo {
    fn request_response(&self, p: Payload) -> BoxFuture<'static, Result<Payload, StreamError>> {
        Box::pin(async move { Ok(p) })
    }
}

/// A server on 127.0.0.1 that accepts every SETUP with [`Echo`].
async fn start(config: ServerConfig) -> (Server, SocketAddr) {
    let server = Server::new(config);
    let mut listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move {
        while let Ok((transport, peer)) = listener.accept().await {
            s.serve_transport_from(transport, peer);
        }
    });
    let s = server.clone();
    tokio::spawn(async move {
        while let Some(incoming) = s.accept().await {
            incoming.accept(Arc::new(Echo));
        }
    });
    (server, addr)
}

/// A raw peer: sends any frame, reads whatever comes back.
struct Raw {
    reader: BoxReader,
    writer: BoxWriter,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (reader, writer) = elarian_transport::io::BoxTransport::new(LengthPrefixed::new(
            stream,
            FramingConfig::default(),
        ))
        .split();
        Raw { reader, writer }
    }

    async fn send(&mut self, frame: Frame) {
        self.writer
            .write_frame(frame.to_bytes().unwrap())
            .await
            .unwrap();
        self.writer.flush().await.unwrap();
    }

    /// The next frame other than a KEEPALIVE, `None` once the server closed.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            let read = tokio::time::timeout(Duration::from_secs(5), self.reader.read_frame())
                .await
                .expect("the server answers or closes within 5 s");
            match read {
                Ok(Some(bytes)) => match Frame::decode(bytes).unwrap() {
                    Frame::Keepalive(_) => continue,
                    other => return Some(other),
                },
                _ => return None,
            }
        }
    }

    /// The connection ERROR the server answers with.
    async fn error(&mut self) -> (ErrorCode, String) {
        match self.next().await {
            Some(Frame::Error(e)) => (e.code, e.message().into_owned()),
            other => panic!("expected an ERROR, got {other:?}"),
        }
    }
}

fn setup(token: Option<&str>, keepalive_ms: u32, max_lifetime_ms: u32) -> Frame {
    Frame::Setup(SetupFrame {
        major_version: 1,
        minor_version: 0,
        keepalive_ms,
        max_lifetime_ms,
        resume_token: token.map(|t| Bytes::copy_from_slice(t.as_bytes())),
        lease: false,
        metadata_mime: "application/json".into(),
        data_mime: "application/octet-stream".into(),
        metadata: None,
        data: Bytes::new(),
    })
}

fn resume(token: &[u8], server_position: u64, client_position: u64) -> Frame {
    Frame::Resume(ResumeFrame {
        major_version: 1,
        minor_version: 0,
        resume_token: Bytes::copy_from_slice(token),
        last_received_server_position: server_position,
        first_available_client_position: client_position,
    })
}

async fn resumable_client(addr: SocketAddr, token: &str) -> ClientSession {
    let transport = TcpTransport::connect(addr, FramingConfig::default())
        .await
        .unwrap();
    let mut config = ClientSessionConfig::default();
    config.resume_token = Some(Bytes::copy_from_slice(token.as_bytes()));
    ClientSession::connect(transport, config, Arc::new(RejectAll))
        .await
        .unwrap()
}

async fn echo_works(client: &ClientSession, text: &str) {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client
            .connection()
            .request_response(Payload::new(text.to_owned())),
    )
    .await
    .expect("answered in time")
    .expect("the session is alive");
    assert_eq!(&reply.data[..], text.as_bytes());
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn forged_resume_with_wrong_positions_leaves_the_victims_session_alone() {
    let (_server, addr) = start(ServerConfig::default()).await;
    let victim = resumable_client(addr, "victim-token-0123456789abcdef").await;
    echo_works(&victim, "before").await;

    // Someone who knows the token but not the positions.
    let mut attacker = Raw::connect(addr).await;
    attacker
        .send(resume(b"victim-token-0123456789abcdef", 1_000_000, 0))
        .await;
    let (code, _) = attacker.error().await;
    assert_eq!(code, ErrorCode::RejectedResume);
    assert!(
        attacker.next().await.is_none(),
        "the attacker's transport is closed"
    );

    // A client position the server never received: refused as well.
    let mut attacker = Raw::connect(addr).await;
    attacker
        .send(resume(b"victim-token-0123456789abcdef", 0, 1_000_000))
        .await;
    assert_eq!(attacker.error().await.0, ErrorCode::RejectedResume);

    // The victim never noticed.
    echo_works(&victim, "after").await;
    assert!(!victim.connection().is_closed());
}

#[tokio::test]
async fn a_valid_resume_takes_over_a_still_attached_session() {
    let (server, addr) = start(ServerConfig::default()).await;
    // A session with nothing sent yet: positions 0/0 are valid.
    let mut first = Raw::connect(addr).await;
    first
        .send(setup(Some("takeover-token"), 1_000, 60_000))
        .await;
    eventually("the session is registered", || {
        server.resumable_sessions() == 1
    })
    .await;

    // The rightful client on a new connection, before the server noticed the old one died.
    let mut again = Raw::connect(addr).await;
    again.send(resume(b"takeover-token", 0, 0)).await;
    match again.next().await {
        Some(Frame::ResumeOk {
            last_received_client_position,
        }) => assert_eq!(last_received_client_position, 0),
        other => panic!("expected RESUME_OK, got {other:?}"),
    }
    // The old connection is the one that loses.
    assert!(first.next().await.is_none());
    assert_eq!(server.resumable_sessions(), 1);
}

#[tokio::test]
async fn guessing_resume_tokens_is_throttled_per_peer() {
    let mut config = ServerConfig::default();
    config.max_resume_failures = 5;
    let (_server, addr) = start(config).await;
    let mut answers = Vec::new();
    for i in 0..12 {
        let mut guesser = Raw::connect(addr).await;
        guesser
            .send(resume(format!("guess-{i}").as_bytes(), 0, 0))
            .await;
        let (code, message) = guesser.error().await;
        assert_eq!(code, ErrorCode::RejectedResume);
        answers.push(message);
    }
    assert!(
        answers[..5]
            .iter()
            .all(|m| m.contains("unknown resume token")),
        "{answers:?}"
    );
    assert!(
        answers[5..]
            .iter()
            .all(|m| m.contains("too many failed resume attempts")),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_large_frame_before_setup_is_refused_before_it_is_buffered() {
    let mut config = ServerConfig::default();
    config.max_setup_frame_len = 1024;
    let (_server, addr) = start(config).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Announce a 16 MiB frame and send a little of it.
    stream.write_all(&[0xff, 0xff, 0xff]).await.unwrap();
    stream.write_all(&[0u8; 100]).await.unwrap();
    let (reader, _writer) = elarian_transport::io::BoxTransport::new(LengthPrefixed::new(
        stream,
        FramingConfig::default(),
    ))
    .split();
    let mut raw = Raw {
        reader,
        writer: Raw::connect(addr).await.writer,
    };
    let (code, message) = raw.error().await;
    assert_eq!(code, ErrorCode::InvalidSetup);
    assert!(message.contains("exceeds the limit of 1024"), "{message}");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_and_counted() {
    let mut config = ServerConfig::default();
    config.max_connections = 3;
    let (server, addr) = start(config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(Raw::connect(addr).await);
    }
    eventually("three connections counted", || server.connections() == 3).await;
    let mut excess = Raw::connect(addr).await;
    let (code, message) = excess.error().await;
    assert_eq!(code, ErrorCode::ConnectionError);
    assert!(message.contains("too many connections"));
    assert_eq!(server.connections(), 3);
    assert_eq!(server.refused_connections(), 1);

    // One leaves: a well-behaved client gets in.
    drop(held.pop());
    eventually("the slot is released", || server.connections() == 2).await;
    let client = resumable_client(addr, "after-the-flood").await;
    echo_works(&client, "in").await;
}

fn fragment(stream_id: u32, len: usize) -> Frame {
    Frame::Request(RequestFrame {
        stream_id,
        kind: RequestKind::Response,
        follows: true,
        metadata: None,
        data: Bytes::from(vec![7u8; len]),
    })
}

#[tokio::test]
async fn reassembly_is_bounded_per_connection_and_per_process() {
    let mut config = ServerConfig::default();
    config.max_connection_reassembly = 64 * 1024;
    config.max_total_reassembly = 96 * 1024;
    let (server, addr) = start(config).await;

    let mut a = Raw::connect(addr).await;
    a.send(setup(None, 1_000, 60_000)).await;
    a.send(fragment(1, 40 * 1024)).await;
    eventually("40 KiB charged", || server.reassembly_bytes() == 40 * 1024).await;
    // A second partial request on the same connection passes the connection's budget.
    a.send(fragment(3, 40 * 1024)).await;
    match a.next().await {
        Some(Frame::Error(e)) => {
            assert_eq!(e.stream_id, 3);
            assert_eq!(e.code, ErrorCode::Rejected);
            assert!(e.message().contains("reassembly budget"));
        }
        other => panic!("expected REJECTED on stream 3, got {other:?}"),
    }
    assert_eq!(server.reassembly_bytes(), 40 * 1024);

    // Another connection: 40 KiB fit the process budget (80 of 96 KiB)...
    let mut b = Raw::connect(addr).await;
    b.send(setup(None, 1_000, 60_000)).await;
    b.send(fragment(1, 40 * 1024)).await;
    eventually("80 KiB charged", || server.reassembly_bytes() == 80 * 1024).await;
    // ...a third does not.
    let mut c = Raw::connect(addr).await;
    c.send(setup(None, 1_000, 60_000)).await;
    c.send(fragment(1, 40 * 1024)).await;
    match c.next().await {
        Some(Frame::Error(e)) => {
            assert_eq!((e.stream_id, e.code), (1, ErrorCode::Rejected));
            assert!(e.message().contains("server's reassembly budget"));
        }
        other => panic!("expected REJECTED, got {other:?}"),
    }
    assert_eq!(server.reassembly_bytes(), 80 * 1024);

    // Everyone else is served, and a closed connection gives its bytes back.
    let client = resumable_client(addr, "well-behaved").await;
    echo_works(&client, "still served").await;
    drop(a);
    eventually("a's bytes released", || {
        server.reassembly_bytes() == 40 * 1024
    })
    .await;
}

#[tokio::test]
async fn detached_sessions_are_capped_in_number_and_bytes_oldest_first() {
    let mut config = ServerConfig::default();
    config.max_detached_sessions = 2;
    config.resume_buffer_size = 4096;
    config.max_detached_bytes = 1024 * 1024;
    let (server, addr) = start(config).await;
    for (i, token) in ["d-1", "d-2", "d-3"].iter().enumerate() {
        let mut peer = Raw::connect(addr).await;
        peer.send(setup(Some(token), 1_000, 60_000)).await;
        eventually("registered", || {
            server.resumable_sessions() == (i + 1).min(3)
        })
        .await;
        drop(peer);
        eventually("detached", || {
            server.detached_sessions().0 == (i + 1).min(2)
        })
        .await;
    }
    // The oldest (d-1) was evicted; each detached session is charged its 4 KiB buffer bound.
    eventually("d-1 evicted", || server.resumable_sessions() == 2).await;
    assert_eq!(server.detached_sessions(), (2, 2 * 4096));
    let mut late = Raw::connect(addr).await;
    late.send(resume(b"d-1", 0, 0)).await;
    assert_eq!(late.error().await.0, ErrorCode::RejectedResume);
    let mut back = Raw::connect(addr).await;
    back.send(resume(b"d-3", 0, 0)).await;
    assert!(matches!(back.next().await, Some(Frame::ResumeOk { .. })));
    eventually("d-3 no longer detached", || {
        server.detached_sessions() == (1, 4096)
    })
    .await;

    // By bytes: room for one 4 KiB buffer only.
    let mut config = ServerConfig::default();
    config.resume_buffer_size = 4096;
    config.max_detached_bytes = 6000;
    let (server, addr) = start(config).await;
    for token in ["b-1", "b-2"] {
        let mut peer = Raw::connect(addr).await;
        peer.send(setup(Some(token), 1_000, 60_000)).await;
        eventually("registered", || server.resumable_sessions() >= 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(peer);
    }
    eventually("one detached session left", || {
        server.detached_sessions() == (1, 4096) && server.resumable_sessions() == 1
    })
    .await;
}

#[tokio::test]
async fn the_server_caps_the_keepalive_lifetime_a_client_asks_for() {
    let mut config = ServerConfig::default();
    config.max_lifetime = Duration::from_millis(500);
    let (server, addr) = start(config).await;
    // Asks for a day, then stays silent: the server drops it after its own cap.
    let mut idle = Raw::connect(addr).await;
    idle.send(setup(None, 100, 86_400_000)).await;
    eventually("counted", || server.connections() == 1).await;
    let started = std::time::Instant::now();
    while idle.next().await.is_some() {}
    assert!(started.elapsed() < Duration::from_secs(4));
    eventually("released", || server.connections() == 0).await;

    // A keepalive interval beyond the cap cannot be honoured: refused.
    let mut slow = Raw::connect(addr).await;
    slow.send(setup(None, 10_000, 86_400_000)).await;
    let (code, message) = slow.error().await;
    assert_eq!(code, ErrorCode::RejectedSetup);
    assert!(message.contains("keepalive interval"));
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    fn arbitrary_frame() -> impl Strategy<Value = Frame> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
        prop_oneof![
            (any::<u32>(), any::<u32>(), proptest::option::of(bytes())).prop_map(|(k, l, t)| {
                let mut f = setup(None, k, l);
                if let Frame::Setup(s) = &mut f {
                    s.resume_token = t;
                }
                f
            }),
            (bytes(), any::<u64>(), any::<u64>()).prop_map(|(t, a, b)| resume(&t, a, b)),
            (any::<u32>(), any::<bool>(), bytes()).prop_map(|(id, follows, data)| {
                Frame::Request(RequestFrame {
                    stream_id: id & 0x7fff_ffff,
                    kind: RequestKind::Response,
                    follows,
                    metadata: None,
                    data,
                })
            }),
            (any::<u32>(), bytes()).prop_map(|(id, data)| {
                Frame::Request(RequestFrame {
                    stream_id: id & 0x7fff_ffff,
                    kind: RequestKind::FireAndForget,
                    follows: false,
                    metadata: None,
                    data,
                })
            }),
        ]
    }

    #[derive(Debug, Clone)]
    enum Input {
        Bytes(Vec<u8>),
        Frames(Vec<Frame>),
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256).prop_map(Input::Bytes),
            proptest::collection::vec(arbitrary_frame(), 1..6).prop_map(Input::Frames),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// Whatever a peer sends, the server answers or closes, never panics, and keeps
        /// serving a well-behaved client on another connection.
        #[test]
        fn the_server_survives_arbitrary_input(inputs in proptest::collection::vec(input(), 1..4)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut config = ServerConfig::default();
                config.setup_timeout = Duration::from_millis(300);
                config.max_lifetime = Duration::from_millis(400);
                let (_server, addr) = start(config).await;
                let transport = TcpTransport::connect(addr, FramingConfig::default()).await.unwrap();
                let mut client_config = ClientSessionConfig::default();
                client_config.keepalive_interval = Duration::from_millis(100);
                client_config.max_lifetime = Duration::from_secs(5);
                let good = ClientSession::connect(transport, client_config, Arc::new(RejectAll))
                    .await
                    .unwrap();
                for input in inputs {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    match input {
                        Input::Bytes(b) => {
                            let _ = stream.write_all(&b).await;
                        }
                        Input::Frames(frames) => {
                            for f in frames {
                                let Ok(bytes) = f.to_bytes() else { continue };
                                let len = (bytes.len() as u32).to_be_bytes();
                                let _ = stream.write_all(&len[1..]).await;
                                let _ = stream.write_all(&bytes).await;
                            }
                        }
                    }
                    let (reader, _w) = elarian_transport::io::BoxTransport::new(
                        LengthPrefixed::new(stream, FramingConfig::default()),
                    )
                    .split();
                    let mut reader = reader;
                    // Answers (or closes) within the setup timeout plus the lifetime cap.
                    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
                        while let Ok(Some(_)) = reader.read_frame().await {}
                    })
                    .await;
                    assert!(outcome.is_ok(), "the server neither answered nor closed");
                    echo_works(&good, "still here").await;
                }
            });
        }
    }
}

/// The same bound over WebSocket: tungstenite reserves room for the payload a frame header
/// announces, so the server must refuse the header itself, not wait for the payload.
#[cfg(feature = "websocket")]
mod websocket {
    use super::*;
    use elarian_transport::io::WsListener;
    use tokio::io::AsyncReadExt;

    async fn start_ws(config: ServerConfig) -> SocketAddr {
        let server = Server::new(config);
        let mut listener = WsListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((transport, peer)) = listener.accept().await {
                s.serve_transport_from(transport, peer);
            }
        });
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                incoming.accept(Arc::new(Echo));
            }
        });
        addr
    }

    /// Upgrades a raw TCP stream and returns it with any bytes read past the response.
    async fn upgrade(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut read = Vec::new();
        let mut chunk = [0u8; 1024];
        while !read.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("the upgrade is answered")
                .unwrap();
            assert!(n > 0, "closed during the upgrade");
            read.extend_from_slice(&chunk[..n]);
        }
        let end = read.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            read.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&read)
        );
        let rest = read.split_off(end);
        (stream, rest)
    }

    #[tokio::test]
    async fn a_large_websocket_frame_before_setup_is_refused_on_its_header() {
        let mut config = ServerConfig::default();
        config.max_setup_frame_len = 1024;
        // Long enough that only the header check can answer within the test's wait.
        config.setup_timeout = Duration::from_secs(60);
        let addr = start_ws(config).await;
        let (mut stream, mut read) = upgrade(addr).await;
        // A masked binary frame announcing 16 MiB, and none of its payload.
        stream
            .write_all(&[0x82, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3, 4])
            .await
            .unwrap();
        // The server answers with one unmasked binary message holding an ERROR frame.
        let mut chunk = [0u8; 1024];
        loop {
            if read.len() >= 2 {
                let len = usize::from(read[1] & 0x7f);
                assert!(len < 126, "short ERROR frame expected");
                if read.len() >= 2 + len {
                    let frame = Frame::decode(Bytes::copy_from_slice(&read[2..2 + len])).unwrap();
                    match frame {
                        Frame::Error(e) => {
                            assert_eq!(e.code, ErrorCode::InvalidSetup);
                            let message = e.message();
                            assert!(message.contains("exceeds the limit of 1024"), "{message}");
                        }
                        other => panic!("expected an ERROR, got {other:?}"),
                    }
                    break;
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("the server refuses the header without waiting for the payload")
                .unwrap();
            assert!(n > 0, "closed without an ERROR frame");
            read.extend_from_slice(&chunk[..n]);
        }
    }
}
