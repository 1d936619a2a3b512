//! The tokio driver end to end over in-memory transports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use elarian_transport::frame::{ErrorCode, Frame};
use elarian_transport::io::memory::{self, MemoryTransport};
use elarian_transport::io::{FrameReader, FrameTransport, FrameWriter, TransportError};
use elarian_transport::{BoxFuture, BoxStream};
use elarian_transport::{
    ClientSession, ClientSessionConfig, CloseReason, Connection, Payload, RejectAll, RequestError,
    RequestHandler, ResumeError, Server, ServerConfig, SetupError, StreamError,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);
const LIMIT_WAIT: Duration = LIMIT;

/// Answers with the request data prefixed by `prefix`; records fire-and-forget and metadata push.
struct Echo {
    prefix: &'static str,
    seen: mpsc::UnboundedSender<String>,
    delay: Duration,
    counts: Arc<Mutex<HashMap<Bytes, usize>>>,
}

impl Echo {
    fn new(prefix: &'static str) -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        let (seen, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Echo {
                prefix,
                seen,
                delay: Duration::ZERO,
                counts: Arc::default(),
            }),
            rx,
        )
    }
}

impl RequestHandler for Echo {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(payload.data.clone())
            .or_default() += 1;
        let prefix = self.prefix;
        let delay = self.delay;
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if payload.data.as_ref() == b"fail" {
                return Err(StreamError::application("asked to fail"));
            }
            let mut data = prefix.as_bytes().to_vec();
            data.extend_from_slice(&payload.data);
            Ok(Payload {
                data: data.into(),
                metadata: payload.metadata,
            })
        })
    }

    fn fire_and_forget(&self, payload: Payload) {
        let _ = self
            .seen
            .send(format!("fnf:{}", String::from_utf8_lossy(&payload.data)));
    }

    fn request_stream(&self, payload: Payload) -> BoxStream<'static, Result<Payload, StreamError>> {
        let n: usize = std::str::from_utf8(&payload.data)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Box::pin(futures_util::stream::iter(
            (0..n).map(|i| Ok(Payload::new(i.to_string()))),
        ))
    }

    fn metadata_push(&self, metadata: Bytes) {
        let _ = self
            .seen
            .send(format!("push:{}", String::from_utf8_lossy(&metadata)));
    }
}

/// Connects a client over an in-memory link to `server`, which accepts it with
/// `server_responder`.
async fn connect_pair(
    server: &Server,
    server_responder: Arc<dyn RequestHandler>,
    client_responder: Arc<dyn RequestHandler>,
    config: ClientSessionConfig,
) -> (ClientSession, Connection) {
    let (client_end, server_end) = memory::pair(64);
    connect_over(
        server,
        (client_end, server_end),
        server_responder,
        client_responder,
        config,
    )
    .await
}

/// Connects a client over `link` (client end, server end) to `server`, which accepts it with
/// `server_responder`.
async fn connect_over<C: FrameTransport, S: FrameTransport>(
    server: &Server,
    (client_end, server_end): (C, S),
    server_responder: Arc<dyn RequestHandler>,
    client_responder: Arc<dyn RequestHandler>,
    config: ClientSessionConfig,
) -> (ClientSession, Connection) {
    server.serve_transport(server_end);
    let accept = tokio::spawn({
        let server = server.clone();
        async move {
            let incoming = server.accept().await.expect("a client");
            assert_eq!(incoming.setup().data_mime_type, "application/octet-stream");
            incoming.accept(server_responder)
        }
    });
    let session = timeout(
        LIMIT,
        ClientSession::connect(client_end, config, client_responder),
    )
    .await
    .expect("connect in time")
    .expect("connected");
    let server_conn = accept.await.unwrap();
    (session, server_conn)
}

/// Starts a request on its own task, so that it stays in flight while the test goes on.
fn spawn_request(
    connection: &Connection,
    payload: Payload,
) -> tokio::task::JoinHandle<Result<Payload, RequestError>> {
    let connection = connection.clone();
    tokio::spawn(async move { connection.request_response(payload).await })
}

/// The answer to a KEEPALIVE that asked for one.
fn keepalive_answer(data: Bytes) -> Frame {
    Frame::Keepalive(elarian_transport::frame::KeepaliveFrame {
        respond: false,
        last_received_position: 0,
        data,
    })
}

/// The `i`-th REQUEST_RESPONSE a server sends (even stream ids from 2), carrying `i`.
fn server_request(i: u32) -> Frame {
    use elarian_transport::frame::{RequestFrame, RequestKind};
    Frame::Request(RequestFrame {
        stream_id: 2 + 2 * i,
        kind: RequestKind::Response,
        follows: false,
        metadata: None,
        data: Bytes::from(i.to_string()),
    })
}

/// Polls `flag` up to `tries` times, 10 ms apart, until it is set.
async fn wait_until_set(flag: &std::sync::atomic::AtomicBool, tries: usize) {
    for _ in 0..tries {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn request_response_both_ways() {
    let server = Server::new(ServerConfig::default());
    let (server_echo, _) = Echo::new("server:");
    let (client_echo, _) = Echo::new("client:");
    let (client, server_conn) = connect_pair(
        &server,
        server_echo,
        client_echo,
        ClientSessionConfig::default(),
    )
    .await;

    let reply = client
        .connection()
        .request_response(Payload::new("hello").with_metadata("m"))
        .await
        .unwrap();
    assert_eq!(reply, Payload::new("server:hello").with_metadata("m"));

    // The server side sends a request (a notification) to the client.
    let reply = server_conn
        .request_response(Payload::new("notify"))
        .await
        .unwrap();
    assert_eq!(reply.data, Bytes::from_static(b"client:notify"));

    let err = client
        .connection()
        .request_response(Payload::new("fail"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::Remote {
            code: ErrorCode::ApplicationError,
            message: "asked to fail".into()
        }
    );

    // Many concurrent requests.
    let tasks: Vec<_> = (0..200)
        .map(|i| spawn_request(client.connection(), Payload::new(format!("r{i}"))))
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap().data, format!("server:r{i}"));
    }
}

#[tokio::test]
async fn default_responder_rejects() {
    let server = Server::new(ServerConfig::default());
    let (client, _server_conn) = connect_pair(
        &server,
        Arc::new(RejectAll),
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    match client
        .connection()
        .request_response(Payload::new("x"))
        .await
    {
        Err(RequestError::Remote { code, .. }) => assert_eq!(code, ErrorCode::Rejected),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn fire_and_forget_and_metadata_push_reach_the_responder() {
    let server = Server::new(ServerConfig::default());
    let (server_echo, mut seen) = Echo::new("");
    let (client, _server_conn) = connect_pair(
        &server,
        server_echo,
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    client
        .connection()
        .fire_and_forget(Payload::new("f1"))
        .await
        .unwrap();
    client
        .connection()
        .metadata_push(Bytes::from_static(b"meta"))
        .await
        .unwrap();
    assert_eq!(
        timeout(LIMIT, seen.recv()).await.unwrap().unwrap(),
        "fnf:f1"
    );
    assert_eq!(
        timeout(LIMIT, seen.recv()).await.unwrap().unwrap(),
        "push:meta"
    );
}

#[tokio::test]
async fn request_stream_delivers_every_item_with_credit() {
    let server = Server::new(ServerConfig::default());
    let (server_echo, _) = Echo::new("");
    let config = ClientSessionConfig {
        stream_window: 8,
        ..ClientSessionConfig::default()
    };
    let (client, _server_conn) =
        connect_pair(&server, server_echo, Arc::new(RejectAll), config).await;
    let items: Vec<_> = timeout(
        LIMIT,
        client
            .connection()
            .request_stream(Payload::new("1000"))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(items.len(), 1000);
    for (i, item) in items.into_iter().enumerate() {
        assert_eq!(item.unwrap().data, i.to_string());
    }
    // Dropping a stream early cancels it; the connection stays usable.
    let mut partial = client.connection().request_stream(Payload::new("100000"));
    assert!(partial.next().await.unwrap().is_ok());
    drop(partial);
    let reply = client
        .connection()
        .request_response(Payload::new("after"))
        .await
        .unwrap();
    assert_eq!(reply.data, Bytes::from_static(b"after"));
}

#[tokio::test]
async fn rejected_setup_is_a_connect_error() {
    let server = Server::new(ServerConfig::default());
    let (client_end, server_end) = memory::pair(8);
    server.serve_transport(server_end);
    let rejecter = tokio::spawn({
        let server = server.clone();
        async move {
            let incoming = server.accept().await.unwrap();
            assert_eq!(
                incoming.setup().payload.data,
                Bytes::from_static(b"bad key")
            );
            incoming.reject(ErrorCode::RejectedSetup, "invalid credentials");
        }
    });
    let config = ClientSessionConfig {
        setup_payload: Payload::new("bad key"),
        ..ClientSessionConfig::default()
    };
    let err = ClientSession::connect(client_end, config, Arc::new(RejectAll))
        .await
        .unwrap_err();
    rejecter.await.unwrap();
    match err {
        SetupError::Rejected { code, message } => {
            assert_eq!(code, ErrorCode::RejectedSetup);
            assert_eq!(message, "invalid credentials");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn connect_times_out_when_the_server_is_silent() {
    let (client_end, _server_end) = memory::pair(8);
    let config = ClientSessionConfig {
        connect_timeout: Duration::from_millis(50),
        ..ClientSessionConfig::default()
    };
    let err = ClientSession::connect(client_end, config, Arc::new(RejectAll))
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::Timeout), "{err:?}");
}

#[tokio::test]
async fn malformed_and_lease_setups_never_reach_accept() {
    let server = Server::new(ServerConfig::default());
    for (raw, expected) in [
        (
            Bytes::from_static(&[0, 0, 0, 0, 0x04, 0, 1]),
            ErrorCode::InvalidSetup,
        ),
        (lease_setup(), ErrorCode::UnsupportedSetup),
    ] {
        let (peer, server_end) = memory::pair(8);
        server.serve_transport(server_end);
        let (mut reader, mut writer) = peer.split();
        writer.write_frame(raw).await.unwrap();
        writer.flush().await.unwrap();
        let answer = timeout(LIMIT, reader.read_frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match Frame::decode(answer).unwrap() {
            Frame::Error(e) => {
                assert_eq!(e.stream_id, 0);
                assert_eq!(e.code, expected);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        timeout(Duration::from_millis(50), server.accept())
            .await
            .is_err(),
        "nothing reaches accept"
    );
}

fn lease_setup() -> Bytes {
    Frame::Setup(elarian_transport::frame::SetupFrame {
        major_version: 1,
        minor_version: 0,
        keepalive_ms: 1000,
        max_lifetime_ms: 60_000,
        resume_token: None,
        lease: true,
        metadata_mime: "a".into(),
        data_mime: "b".into(),
        metadata: None,
        data: Bytes::new(),
    })
    .to_bytes()
    .unwrap()
}

/// Answers nothing until told, so that requests stay in flight.
struct Never;
impl RequestHandler for Never {
    fn request_response(&self, _: Payload) -> BoxFuture<'static, Result<Payload, StreamError>> {
        Box::pin(futures_util::future::pending())
    }
}

#[tokio::test]
async fn close_fails_pending_requests_on_both_sides() {
    let server = Server::new(ServerConfig::default());
    let (client, server_conn) = connect_pair(
        &server,
        Arc::new(Never),
        Arc::new(Never),
        ClientSessionConfig::default(),
    )
    .await;
    let pending = spawn_request(client.connection(), Payload::new("stuck"));
    let server_pending = spawn_request(&server_conn, Payload::new("stuck"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    client.connection().close();
    assert_eq!(
        timeout(LIMIT, client.connection().closed()).await.unwrap(),
        CloseReason::Local
    );
    assert_eq!(
        timeout(LIMIT, pending).await.unwrap().unwrap(),
        Err(RequestError::Closed(CloseReason::Local))
    );
    // The server learns why: CONNECTION_CLOSE.
    match timeout(LIMIT, server_conn.closed()).await.unwrap() {
        CloseReason::Error { code, .. } => assert_eq!(code, ErrorCode::ConnectionClose),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        timeout(LIMIT, server_pending).await.unwrap().unwrap(),
        Err(RequestError::Closed(_))
    ));
    // New requests fail at once.
    assert!(matches!(
        client
            .connection()
            .request_response(Payload::new("late"))
            .await,
        Err(RequestError::Closed(CloseReason::Local))
    ));
}

#[tokio::test]
async fn dropping_a_request_future_cancels_it() {
    let server = Server::new(ServerConfig::default());
    let (client, _server_conn) = connect_pair(
        &server,
        Arc::new(Never),
        Arc::new(RejectAll),
        ClientSessionConfig {
            max_in_flight: 1,
            ..ClientSessionConfig::default()
        },
    )
    .await;
    // With one in-flight slot, the second request can only start if the first released it.
    for _ in 0..2 {
        let r = timeout(
            Duration::from_millis(30),
            client.connection().request_response(Payload::new("x")),
        )
        .await;
        assert!(r.is_err(), "timed out as expected");
    }
    assert!(!client.connection().is_closed());
}

/// Never answers a request whose data is "hang"; echoes the others.
struct HangsOnHang;
impl RequestHandler for HangsOnHang {
    fn request_response(&self, p: Payload) -> BoxFuture<'static, Result<Payload, StreamError>> {
        if &p.data[..] == b"hang" {
            Box::pin(futures_util::future::pending())
        } else {
            Box::pin(futures_util::future::ready(Ok(p)))
        }
    }
}

#[tokio::test]
async fn a_dropped_request_gives_its_in_flight_slot_back() {
    let server = Server::new(ServerConfig::default());
    let (client, _server_conn) = connect_pair(
        &server,
        Arc::new(HangsOnHang),
        Arc::new(RejectAll),
        ClientSessionConfig {
            max_in_flight: 1,
            ..ClientSessionConfig::default()
        },
    )
    .await;
    let conn = client.connection();
    // With one in-flight slot, each answered request proves that the dropped one before it
    // (canceled with the peer) and the answered one before that gave their slot back.
    for i in 0..50 {
        let hung = timeout(
            Duration::from_millis(5),
            conn.request_response(Payload::new("hang")),
        )
        .await;
        assert!(hung.is_err(), "round {i}: the hanging request timed out");
        let deadline = tokio::time::Instant::now() + LIMIT;
        let answer = conn
            .request_response_until(Payload::new(format!("ok {i}")), deadline)
            .await
            .expect("answered");
        assert_eq!(answer.data, format!("ok {i}").as_bytes());
    }
}

/// A memory transport whose link can be cut from outside, like a dropped TCP connection.
struct Cuttable {
    inner: MemoryTransport,
    cut: tokio::sync::watch::Receiver<bool>,
}

struct CutReader<R> {
    inner: R,
    cut: tokio::sync::watch::Receiver<bool>,
}
struct CutWriter<W> {
    inner: W,
    cut: tokio::sync::watch::Receiver<bool>,
}

fn broken() -> TransportError {
    TransportError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "cut",
    ))
}

impl FrameTransport for Cuttable {
    type Reader = CutReader<<MemoryTransport as FrameTransport>::Reader>;
    type Writer = CutWriter<<MemoryTransport as FrameTransport>::Writer>;
    fn split(self) -> (Self::Reader, Self::Writer) {
        let (r, w) = self.inner.split();
        (
            CutReader {
                inner: r,
                cut: self.cut.clone(),
            },
            CutWriter {
                inner: w,
                cut: self.cut,
            },
        )
    }
}

impl<R: FrameReader> FrameReader for CutReader<R> {
    async fn read_frame(&mut self) -> Result<Option<Bytes>, TransportError> {
        if *self.cut.borrow() {
            return Err(broken());
        }
        // A cut wins over whatever the inner read saw: the other end, cut too, may already
        // have dropped its transport, which this end would otherwise read as a clean close.
        let read = tokio::select! {
            biased;
            _ = self.cut.wait_for(|c| *c) => return Err(broken()),
            r = self.inner.read_frame() => r,
        };
        if *self.cut.borrow() {
            return Err(broken());
        }
        read
    }
}

impl<W: FrameWriter> FrameWriter for CutWriter<W> {
    async fn write_frame(&mut self, frame: Bytes) -> Result<(), TransportError> {
        if *self.cut.borrow() {
            // The bytes vanish, as on a dead link.
            return Err(broken());
        }
        self.inner.write_frame(frame).await
    }
    async fn flush(&mut self) -> Result<(), TransportError> {
        self.inner.flush().await
    }
    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }
}

fn cuttable_pair() -> (Cuttable, Cuttable, tokio::sync::watch::Sender<bool>) {
    let (a, b) = memory::pair(64);
    let (tx, rx) = tokio::sync::watch::channel(false);
    (
        Cuttable {
            inner: a,
            cut: rx.clone(),
        },
        Cuttable { inner: b, cut: rx },
        tx,
    )
}

/// Like `connect_pair`, over a link that the returned sender cuts (send `true`).
async fn connect_cuttable(
    server: &Server,
    server_responder: Arc<dyn RequestHandler>,
    client_responder: Arc<dyn RequestHandler>,
    config: ClientSessionConfig,
) -> (ClientSession, Connection, tokio::sync::watch::Sender<bool>) {
    let (client_end, server_end, cut) = cuttable_pair();
    let (client, server_conn) = connect_over(
        server,
        (client_end, server_end),
        server_responder,
        client_responder,
        config,
    )
    .await;
    (client, server_conn, cut)
}

#[tokio::test]
async fn resume_across_a_new_transport_completes_each_request_exactly_once() {
    let server = Server::new(ServerConfig::default());
    let (seen, _rx) = mpsc::unbounded_channel();
    let counts = Arc::new(Mutex::new(HashMap::new()));
    let server_responder = Arc::new(Echo {
        prefix: "ok:",
        seen,
        delay: Duration::from_millis(100),
        counts: counts.clone(),
    });
    let config = ClientSessionConfig {
        resume_token: Some(Bytes::from_static(b"session-1")),
        ..ClientSessionConfig::default()
    };
    let (client, _server_conn, cut) =
        connect_cuttable(&server, server_responder, Arc::new(RejectAll), config).await;
    assert_eq!(server.resumable_sessions(), 1);

    let mut tasks: Vec<_> = (0..50)
        .map(|i| spawn_request(client.connection(), Payload::new(format!("q{i}"))))
        .collect();
    // Let some requests arrive, then cut the link while the answers are pending.
    tokio::time::sleep(Duration::from_millis(20)).await;
    cut.send_replace(true);
    timeout(LIMIT, client.disconnected()).await.unwrap();
    assert!(client.is_detached());
    // Requests made while detached are queued.
    tasks.extend(
        (50..60).map(|i| spawn_request(client.connection(), Payload::new(format!("q{i}")))),
    );

    let (client_end, server_end) = memory::pair(64);
    server.serve_transport(server_end);
    timeout(LIMIT, client.resume(client_end))
        .await
        .unwrap()
        .unwrap();

    for (i, t) in tasks.into_iter().enumerate() {
        let reply = timeout(LIMIT, t).await.unwrap().unwrap().unwrap();
        assert_eq!(reply.data, format!("ok:q{i}"));
    }
    let counts = counts.lock().unwrap();
    assert_eq!(counts.len(), 60);
    assert!(
        counts.values().all(|&n| n == 1),
        "each request handled once"
    );
}

#[tokio::test]
async fn resume_with_an_unknown_token_is_rejected() {
    let server = Server::new(ServerConfig::default());
    let config = ClientSessionConfig {
        resume_token: Some(Bytes::from_static(b"session-2")),
        ..ClientSessionConfig::default()
    };
    let (client, _server_conn, cut) =
        connect_cuttable(&server, Arc::new(Never), Arc::new(RejectAll), config).await;
    let pending = spawn_request(client.connection(), Payload::new("lost"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    cut.send_replace(true);
    timeout(LIMIT, client.disconnected()).await.unwrap();

    // A different server knows nothing of the session.
    let other = Server::new(ServerConfig::default());
    let (client_end, server_end) = memory::pair(8);
    other.serve_transport(server_end);
    match timeout(LIMIT, client.resume(client_end)).await.unwrap() {
        Err(ResumeError::Rejected { message }) => assert!(message.contains("unknown")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        timeout(LIMIT, pending).await.unwrap().unwrap(),
        Err(RequestError::Closed(CloseReason::Error {
            code: ErrorCode::RejectedResume,
            ..
        }))
    ));
}

#[tokio::test]
async fn non_resumable_sessions_close_when_the_transport_is_lost() {
    let server = Server::new(ServerConfig::default());
    let (client, server_conn, cut) = connect_cuttable(
        &server,
        Arc::new(Never),
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    let pending = spawn_request(client.connection(), Payload::new("x"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    cut.send_replace(true);
    let reason = timeout(LIMIT, client.connection().closed()).await.unwrap();
    assert!(
        matches!(reason, CloseReason::TransportLost(_)),
        "{reason:?}"
    );
    // The transport's I/O error stays reachable through the source chain.
    let mut chain = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&reason);
    while let Some(e) = next {
        chain.push(e.to_string());
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset, "{chain:?}");
        }
        next = e.source();
    }
    assert!(chain.len() >= 3, "{chain:?}");
    assert_eq!(chain.last().map(String::as_str), Some("cut"), "{chain:?}");
    assert!(matches!(
        timeout(LIMIT, pending).await.unwrap().unwrap(),
        Err(RequestError::Closed(CloseReason::TransportLost(_)))
    ));
    assert!(matches!(
        timeout(LIMIT, server_conn.closed()).await.unwrap(),
        CloseReason::TransportLost(_)
    ));
    assert!(matches!(
        client.resume(memory::pair(1).0).await,
        Err(ResumeError::NotResumable(_) | ResumeError::Closed(_))
    ));
}

#[tokio::test]
async fn large_payloads_are_fragmented_and_reassembled() {
    let server = Server::new(ServerConfig {
        mtu: 1024,
        ..ServerConfig::default()
    });
    let (server_echo, _) = Echo::new("");
    let config = ClientSessionConfig {
        mtu: 1024,
        ..ClientSessionConfig::default()
    };
    let (client, _server_conn) =
        connect_pair(&server, server_echo, Arc::new(RejectAll), config).await;
    let big = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    let reply = client
        .connection()
        .request_response(Payload::new(big.clone()).with_metadata(vec![3u8; 5000]))
        .await
        .unwrap();
    assert_eq!(reply.data, big);
    assert_eq!(reply.metadata.unwrap().len(), 5000);
}

struct Panics;
impl RequestHandler for Panics {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        if payload.data.as_ref() == b"now" {
            panic!("responder bug");
        }
        Box::pin(async move {
            if payload.data.as_ref() == b"later" {
                panic!("responder bug in the future");
            }
            Ok(payload)
        })
    }
}

#[tokio::test]
async fn a_panicking_responder_fails_the_request_not_the_connection() {
    let server = Server::new(ServerConfig::default());
    let (client, _server_conn) = connect_pair(
        &server,
        Arc::new(Panics),
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    for what in ["now", "later"] {
        match client
            .connection()
            .request_response(Payload::new(what))
            .await
        {
            Err(RequestError::Remote { code, .. }) => assert_eq!(code, ErrorCode::ApplicationError),
            other => panic!("unexpected {other:?}"),
        }
    }
    let ok = client
        .connection()
        .request_response(Payload::new("fine"))
        .await
        .unwrap();
    assert_eq!(ok.data, Bytes::from_static(b"fine"));
}

/// A peer that accepts the SETUP, answers the first KEEPALIVE, then stays silent.
#[tokio::test(start_paused = true)]
async fn a_silent_server_is_detected_by_keepalive_timeout() {
    let (client_end, peer) = memory::pair(64);
    let (mut reader, mut writer) = peer.split();
    let peer_task = tokio::spawn(async move {
        let mut keepalives = 0;
        while let Ok(Some(raw)) = reader.read_frame().await {
            if let Ok(Frame::Keepalive(k)) = Frame::decode(raw) {
                keepalives += 1;
                if keepalives == 1 {
                    let answer = keepalive_answer(k.data);
                    writer
                        .write_frame(answer.to_bytes().unwrap())
                        .await
                        .unwrap();
                    writer.flush().await.unwrap();
                }
            }
        }
        keepalives
    });
    let config = ClientSessionConfig {
        keepalive_interval: Duration::from_secs(1),
        max_lifetime: Duration::from_secs(5),
        ..ClientSessionConfig::default()
    };
    let client = ClientSession::connect(client_end, config, Arc::new(RejectAll))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(
        client.connection().closed().await,
        CloseReason::KeepaliveTimeout
    );
    assert!(started.elapsed() >= Duration::from_secs(4));
    drop(client);
    // One KEEPALIVE per second until the lifetime ran out.
    let sent = timeout(LIMIT, peer_task).await.unwrap().unwrap();
    assert!((4..=7).contains(&sent), "{sent} keepalives");
}

#[tokio::test]
async fn boxed_transports_work_like_concrete_ones() {
    use elarian_transport::io::BoxTransport;
    let server = Server::new(ServerConfig::default());
    let (client_end, server_end) = memory::pair(8);
    let (client, _server_conn) = connect_over(
        &server,
        (BoxTransport::new(client_end), BoxTransport::new(server_end)),
        Echo::new("s:").0,
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    let reply = client
        .connection()
        .request_response(Payload::new("x"))
        .await
        .unwrap();
    assert_eq!(reply.data, Bytes::from_static(b"s:x"));
}

#[tokio::test(start_paused = true)]
async fn detached_server_sessions_expire_and_fail_their_requests() {
    let server = Server::new(ServerConfig {
        resume_window: Duration::from_secs(30),
        ..ServerConfig::default()
    });
    let config = ClientSessionConfig {
        resume_token: Some(Bytes::from_static(b"session-3")),
        ..ClientSessionConfig::default()
    };
    let (client, server_conn, cut) =
        connect_cuttable(&server, Arc::new(RejectAll), Arc::new(Never), config).await;
    let notification = spawn_request(&server_conn, Payload::new("n"));
    tokio::time::sleep(Duration::from_millis(10)).await;
    cut.send_replace(true);
    let started = tokio::time::Instant::now();
    assert_eq!(
        timeout(Duration::from_secs(120), server_conn.closed())
            .await
            .unwrap(),
        CloseReason::ResumeExpired
    );
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!(
        notification.await.unwrap(),
        Err(RequestError::Closed(CloseReason::ResumeExpired))
    );
    assert_eq!(server.resumable_sessions(), 0);
    drop(client);
}

/// A hand-driven server: accepts the SETUP, answers KEEPALIVEs and reports every other frame.
fn raw_server(peer: MemoryTransport) -> mpsc::UnboundedReceiver<Frame> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (mut reader, mut writer) = peer.split();
    tokio::spawn(async move {
        while let Ok(Some(raw)) = reader.read_frame().await {
            match Frame::decode(raw) {
                Ok(Frame::Keepalive(k)) if k.respond => {
                    let answer = keepalive_answer(k.data);
                    if writer
                        .write_frame(answer.to_bytes().unwrap())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let _ = writer.flush().await;
                }
                Ok(Frame::Setup(_)) => {}
                Ok(other) => {
                    let _ = tx.send(other);
                }
                Err(e) => panic!("client sent a malformed frame: {e}"),
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_requests_send_cancel_and_ids_increase() {
    let (client_end, peer) = memory::pair(64);
    let mut frames = raw_server(peer);
    let client = ClientSession::connect(
        client_end,
        ClientSessionConfig::default(),
        Arc::new(RejectAll),
    )
    .await
    .unwrap();
    // Requests from many tasks at once still leave with strictly increasing odd ids.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let _ = timeout(
                Duration::from_millis(200),
                client.connection().request_response(Payload::new("x")),
            )
            .await;
        }));
    }
    let mut last = 0;
    let mut requested = Vec::new();
    while requested.len() < 100 {
        match timeout(LIMIT, frames.recv()).await.unwrap().unwrap() {
            Frame::Request(r) => {
                assert!(
                    r.stream_id > last && r.stream_id % 2 == 1,
                    "{} after {last}",
                    r.stream_id
                );
                last = r.stream_id;
                requested.push(r.stream_id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Every request times out unanswered: each is canceled exactly once.
    let mut canceled = Vec::new();
    while canceled.len() < 100 {
        match timeout(LIMIT, frames.recv()).await.unwrap().unwrap() {
            Frame::Cancel { stream_id } => canceled.push(stream_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    canceled.sort_unstable();
    assert_eq!(canceled, requested);
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_transport_that_dies_during_setup_is_a_transport_error() {
    let (client_end, peer) = memory::pair(8);
    let closer = tokio::spawn(async move {
        let (mut reader, _writer) = peer.split();
        // Read the SETUP, then hang up.
        let _ = reader.read_frame().await;
    });
    let err = ClientSession::connect(
        client_end,
        ClientSessionConfig::default(),
        Arc::new(RejectAll),
    )
    .await
    .unwrap_err();
    closer.await.unwrap();
    assert!(matches!(err, SetupError::Transport(_)), "{err:?}");
}

/// An endless responder stream that counts the items pulled from it and notices being dropped.
struct Endless {
    pulled: Arc<std::sync::atomic::AtomicUsize>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

struct DropFlag(Arc<std::sync::atomic::AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl RequestHandler for Endless {
    fn request_stream(&self, _: Payload) -> BoxStream<'static, Result<Payload, StreamError>> {
        let pulled = self.pulled.clone();
        let flag = DropFlag(self.dropped.clone());
        Box::pin(futures_util::stream::repeat_with(move || {
            let _keep = &flag;
            let n = pulled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Payload::new(n.to_string()))
        }))
    }
}

#[tokio::test]
async fn responder_streams_pause_without_credit_and_stop_on_cancel() {
    use std::sync::atomic::Ordering::SeqCst;
    let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = Server::new(ServerConfig::default());
    let config = ClientSessionConfig {
        stream_window: 8,
        ..ClientSessionConfig::default()
    };
    let (client, _server_conn) = connect_pair(
        &server,
        Arc::new(Endless {
            pulled: pulled.clone(),
            dropped: dropped.clone(),
        }),
        Arc::new(RejectAll),
        config,
    )
    .await;
    let mut items = client.connection().request_stream(Payload::new("go"));
    for i in 0..10 {
        let item = timeout(LIMIT, items.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(item.data, i.to_string());
    }
    // Give the server every chance to run ahead; credit must hold it back.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 8 initial + 4 + 4 granted while consuming 10, plus at most one item being produced.
    let n = pulled.load(SeqCst);
    assert!((10..=17).contains(&n), "{n} items pulled");
    drop(items);
    wait_until_set(&dropped, 100).await;
    assert!(
        dropped.load(SeqCst),
        "the responder stream was not dropped after CANCEL"
    );
}

/// A hand-driven server that answers KEEPALIVEs and, to a REQUEST_STREAM, sends `items` items
/// and a completion at once, ignoring the credit it was given. Reports the other frames it gets.
fn overrunning_server(peer: MemoryTransport, items: usize) -> mpsc::UnboundedReceiver<Frame> {
    use elarian_transport::frame::PayloadFrame;
    let (tx, rx) = mpsc::unbounded_channel();
    let (mut reader, mut writer) = peer.split();
    tokio::spawn(async move {
        while let Ok(Some(raw)) = reader.read_frame().await {
            let mut out = Vec::new();
            match Frame::decode(raw) {
                Ok(Frame::Keepalive(k)) if k.respond => out.push(keepalive_answer(k.data)),
                Ok(Frame::Setup(_)) => {}
                Ok(Frame::Request(r)) => {
                    for i in 0..items {
                        out.push(Frame::Payload(PayloadFrame {
                            stream_id: r.stream_id,
                            follows: false,
                            complete: i + 1 == items,
                            next: true,
                            metadata: None,
                            data: Bytes::from(i.to_string()),
                        }));
                    }
                    let _ = tx.send(Frame::Request(r));
                }
                Ok(other) => {
                    let _ = tx.send(other);
                }
                Err(e) => panic!("client sent a malformed frame: {e}"),
            }
            for frame in out {
                if writer.write_frame(frame.to_bytes().unwrap()).await.is_err() {
                    return;
                }
            }
            let _ = writer.flush().await;
        }
    });
    rx
}

#[tokio::test]
async fn a_stream_overrunning_its_credit_ends_with_an_error() {
    let (client_end, peer) = memory::pair(64);
    let mut frames = overrunning_server(peer, 7);
    let config = ClientSessionConfig {
        stream_window: 4,
        ..ClientSessionConfig::default()
    };
    let client = ClientSession::connect(client_end, config, Arc::new(RejectAll))
        .await
        .unwrap();
    let mut items = client.connection().request_stream(Payload::new("go"));
    // One poll sends the request without consuming anything, so no REQUEST_N is granted and
    // the 5th item overruns the initial window of 4.
    assert!(futures_util::poll!(items.next()).is_pending());
    assert!(matches!(
        timeout(LIMIT, frames.recv()).await.unwrap(),
        Some(Frame::Request(_))
    ));
    // The client cancels the stream it cut.
    assert!(matches!(
        timeout(LIMIT, frames.recv()).await.unwrap(),
        Some(Frame::Cancel { .. })
    ));
    let got: Vec<_> = timeout(LIMIT, items.collect::<Vec<_>>()).await.unwrap();
    assert_eq!(got.len(), 5, "{got:?}");
    for (i, item) in got[..4].iter().enumerate() {
        assert_eq!(item.as_ref().unwrap().data, i.to_string());
    }
    assert!(
        matches!(got[4], Err(RequestError::Protocol(_))),
        "{:?}",
        got[4]
    );
}

/// Answers after `gate` opens; counts the answers running at once and records the order in
/// which requests start. Clones share the gate and the records.
#[derive(Clone)]
struct Gated {
    gate: Arc<tokio::sync::Semaphore>,
    running: Arc<std::sync::atomic::AtomicUsize>,
    max: Arc<std::sync::atomic::AtomicUsize>,
    started: Arc<Mutex<Vec<Bytes>>>,
}

impl Gated {
    /// A responder whose gate is shut and whose records are empty.
    fn shut() -> Self {
        Gated {
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            running: Arc::default(),
            max: Arc::default(),
            started: Arc::default(),
        }
    }
}

impl RequestHandler for Gated {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        use std::sync::atomic::Ordering::SeqCst;
        self.started.lock().unwrap().push(payload.data.clone());
        let gate = self.gate.clone();
        let running = self.running.clone();
        let max = self.max.clone();
        Box::pin(async move {
            let now = running.fetch_add(1, SeqCst) + 1;
            max.fetch_max(now, SeqCst);
            let _pass = gate
                .acquire()
                .await
                .map_err(|_| StreamError::application("gate"))?;
            running.fetch_sub(1, SeqCst);
            Ok(payload)
        })
    }
}

/// At the responder limit the client keeps reading and queues requests; only once the queue
/// is full does it stop reading (the peer's writes block). Nothing is refused, and queued
/// requests start in arrival order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_queue_full_the_client_stops_reading_instead_of_rejecting() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    const LIMIT: usize = 4;
    // Larger than the transport's buffer, so that reading on past the limit shows.
    const PENDING: usize = 16;
    const FLOOD: u32 = 100;
    const CAPACITY: usize = 8;
    let (client_end, peer) = memory::pair(CAPACITY);
    let (mut reader, mut writer) = peer.split();
    let responder = Gated::shut();
    let Gated {
        gate,
        running,
        max,
        started,
    } = responder.clone();
    let responder = Arc::new(responder);
    // Answer the handshake by hand, then let a task collect whatever the client sends.
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    let (keepalive_tx, mut keepalive_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(raw)) = reader.read_frame().await {
            match Frame::decode(raw).unwrap() {
                Frame::Keepalive(k) if k.respond => {
                    let _ = keepalive_tx.send(k.data);
                }
                Frame::Setup(_) => {}
                other => {
                    let _ = frames_tx.send(other);
                }
            }
        }
    });
    let config = ClientSessionConfig {
        max_inbound_requests: LIMIT,
        max_pending_inbound: PENDING,
        keepalive_interval: Duration::from_millis(50),
        ..ClientSessionConfig::default()
    };
    let connect = tokio::spawn(ClientSession::connect(client_end, config, responder));
    let first = timeout(LIMIT_WAIT, keepalive_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let answer = keepalive_answer(first);
    writer
        .write_frame(answer.to_bytes().unwrap())
        .await
        .unwrap();
    let client = connect.await.unwrap().unwrap();

    // Flood the client with requests; count the writes that got through.
    let written = Arc::new(AtomicUsize::new(0));
    let flood = tokio::spawn({
        let written = written.clone();
        async move {
            for i in 0..FLOOD {
                writer
                    .write_frame(server_request(i).to_bytes().unwrap())
                    .await
                    .unwrap();
                written.fetch_add(1, SeqCst);
            }
            writer
        }
    });
    // The client starts LIMIT responders and reads on, queueing PENDING more, then stops
    // reading: our sends block once the transport's buffer is full, while the client's
    // KEEPALIVEs still arrive.
    let queued = async {
        while running.load(SeqCst) < LIMIT || written.load(SeqCst) < LIMIT + PENDING {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(LIMIT_WAIT, queued)
        .await
        .expect("the client reads past its responder limit");
    for _ in 0..3 {
        timeout(LIMIT_WAIT, keepalive_rx.recv())
            .await
            .unwrap()
            .unwrap();
    }
    let stalled = written.load(SeqCst);
    assert!(
        stalled <= LIMIT + PENDING + CAPACITY,
        "{stalled} requests written while {LIMIT} run and {PENDING} wait"
    );
    assert!(!flood.is_finished());
    assert_eq!(max.load(SeqCst), LIMIT);
    assert_eq!(started.lock().unwrap().len(), LIMIT);

    // Open the gate: every request is answered, none refused, never more than LIMIT at once.
    gate.add_permits(FLOOD as usize);
    let _writer = timeout(LIMIT_WAIT, flood).await.unwrap().unwrap();
    let mut answered = std::collections::HashSet::new();
    while answered.len() < FLOOD as usize {
        match timeout(LIMIT_WAIT, frames.recv()).await.unwrap().unwrap() {
            Frame::Payload(p) => {
                assert!(p.complete && p.next);
                assert!(answered.insert(p.stream_id));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(max.load(SeqCst), LIMIT);
    let order: Vec<Bytes> = (0..FLOOD).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(*started.lock().unwrap(), order);
    assert!(!client.connection().is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reject_overflow_requests_beyond_the_limit_are_refused() {
    use elarian_transport::InboundOverflow;
    use std::sync::atomic::Ordering::SeqCst;
    let responder = Gated::shut();
    let Gated {
        gate, running, max, ..
    } = responder.clone();
    let server = Server::new(ServerConfig::default());
    let config = ClientSessionConfig {
        max_inbound_requests: 2,
        inbound_overflow: InboundOverflow::Reject,
        ..ClientSessionConfig::default()
    };
    let (client, server_conn) =
        connect_pair(&server, Arc::new(RejectAll), Arc::new(responder), config).await;
    let requests: Vec<_> = (0..6)
        .map(|i| spawn_request(&server_conn, Payload::new(format!("{i}"))))
        .collect();
    while running.load(SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the refusals arrive before opening the gate.
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.add_permits(6);
    let mut rejected = 0;
    for r in requests {
        match timeout(LIMIT_WAIT, r).await.unwrap().unwrap() {
            Ok(_) => {}
            Err(RequestError::Remote { code, .. }) => {
                assert_eq!(code, ErrorCode::Rejected);
                rejected += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(rejected >= 1, "none refused");
    assert_eq!(max.load(SeqCst), 2);
    drop(client);
}

/// Does a side effect once `go` is notified, unless its future is dropped first.
struct SideEffect {
    started: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
    done: Arc<std::sync::atomic::AtomicBool>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

impl RequestHandler for SideEffect {
    fn request_response(&self, _: Payload) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let started = self.started.clone();
        let go = self.go.clone();
        let done = self.done.clone();
        let flag = DropFlag(self.dropped.clone());
        Box::pin(async move {
            let _flag = flag;
            let go = go.notified();
            started.notify_one();
            go.await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(Payload::new("done"))
        })
    }
}

#[tokio::test]
async fn cancel_drops_the_running_responder_future() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let responder = SideEffect {
        started: Arc::default(),
        go: Arc::default(),
        done: Arc::new(AtomicBool::new(false)),
        dropped: Arc::new(AtomicBool::new(false)),
    };
    let (started, go, done, dropped) = (
        responder.started.clone(),
        responder.go.clone(),
        responder.done.clone(),
        responder.dropped.clone(),
    );
    let server = Server::new(ServerConfig::default());
    let (client, _server_conn) = connect_pair(
        &server,
        Arc::new(responder),
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    // The request reaches the responder, then the requester gives up (CANCEL).
    let request = client.connection().request_response(Payload::new("work"));
    tokio::select! {
        _ = request => panic!("answered before the go signal"),
        () = started.notified() => {}
    }
    wait_until_set(&dropped, 200).await;
    assert!(
        dropped.load(SeqCst),
        "the canceled responder future still runs"
    );
    go.notify_waiters();
    tokio::task::yield_now().await;
    assert!(!done.load(SeqCst));
    assert!(!client.connection().is_closed());
}

/// For each request, asks the peer first (bounded by `ASK_TIMEOUT`) and answers with the
/// peer's answer: the pattern of a notification handler that sends a command.
struct AsksBack {
    connection: Arc<std::sync::OnceLock<Connection>>,
    running: Arc<std::sync::atomic::AtomicUsize>,
    max: Arc<std::sync::atomic::AtomicUsize>,
    stalled: Arc<std::sync::atomic::AtomicUsize>,
}

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

impl RequestHandler for AsksBack {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        use std::sync::atomic::Ordering::SeqCst;
        let connection = self.connection.get().cloned();
        let running = self.running.clone();
        let max = self.max.clone();
        let stalled = self.stalled.clone();
        Box::pin(async move {
            let now = running.fetch_add(1, SeqCst) + 1;
            max.fetch_max(now, SeqCst);
            let connection =
                connection.ok_or_else(|| StreamError::application("not connected yet"))?;
            let answer = timeout(ASK_TIMEOUT, connection.request_response(payload)).await;
            running.fetch_sub(1, SeqCst);
            match answer {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(e)) => Err(StreamError::application(e.to_string())),
                Err(_) => {
                    stalled.fetch_add(1, SeqCst);
                    Err(StreamError::application("the peer's answer never came"))
                }
            }
        })
    }
}

/// Every responder slot busy awaiting the peer must not stop the answers from arriving: with
/// the responder limit at 2, a flood of requests whose responders each ask the peer first
/// completes without any of them waiting out its timeout.
#[tokio::test(start_paused = true)]
async fn responders_awaiting_the_peer_do_not_deadlock_at_the_limit() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    const FLOOD: usize = 50;
    let connection = Arc::new(std::sync::OnceLock::new());
    let running = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let stalled = Arc::new(AtomicUsize::new(0));
    let responder = Arc::new(AsksBack {
        connection: connection.clone(),
        running: running.clone(),
        max: max.clone(),
        stalled: stalled.clone(),
    });
    let server = Server::new(ServerConfig::default());
    let (server_responder, _) = Echo::new("answer:");
    let config = ClientSessionConfig {
        max_inbound_requests: 2,
        ..ClientSessionConfig::default()
    };
    let (client, server_conn) = connect_pair(&server, server_responder, responder, config).await;
    assert!(connection.set(client.connection().clone()).is_ok());

    let start = tokio::time::Instant::now();
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| spawn_request(&server_conn, Payload::new(format!("n{i}"))))
        .collect();
    for (i, request) in flood.into_iter().enumerate() {
        let answer = timeout(LIMIT_WAIT * 30, request)
            .await
            .expect("answered")
            .unwrap()
            .unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        assert_eq!(answer.data, Bytes::from(format!("answer:n{i}")));
    }
    let elapsed = start.elapsed();
    assert_eq!(
        stalled.load(SeqCst),
        0,
        "responders waited out their timeout"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "the flood took {elapsed:?} of (paused) time"
    );
    assert_eq!(max.load(SeqCst), 2);
    assert!(!client.connection().is_closed());
}

/// A request canceled while it waits for a responder slot never reaches the responder.
#[tokio::test(start_paused = true)]
async fn a_queued_request_canceled_by_the_peer_never_starts() {
    let responder = Gated::shut();
    let Gated { gate, started, .. } = responder.clone();
    let responder = Arc::new(responder);
    let server = Server::new(ServerConfig::default());
    let config = ClientSessionConfig {
        max_inbound_requests: 1,
        ..ClientSessionConfig::default()
    };
    let (client, server_conn) = connect_pair(&server, Arc::new(RejectAll), responder, config).await;
    let ask = |what: &'static str| spawn_request(&server_conn, Payload::new(what));
    // With time paused, a sleep ends only once every task is idle: all frames were handled.
    let settle = || tokio::time::sleep(Duration::from_millis(100));
    let a = ask("a");
    settle().await;
    let b = ask("b");
    settle().await;
    // "b" waits for the slot "a" holds; the server gives up on it (CANCEL).
    b.abort();
    settle().await;
    let c = ask("c");
    settle().await;
    assert_eq!(*started.lock().unwrap(), vec![Bytes::from("a")]);

    gate.add_permits(3);
    for (request, what) in [(a, "a"), (c, "c")] {
        let answer = timeout(LIMIT_WAIT, request)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(answer.data, Bytes::from(what));
    }
    assert_eq!(
        *started.lock().unwrap(),
        vec![Bytes::from("a"), Bytes::from("c")]
    );
    assert!(!client.connection().is_closed());
}

/// A peer that accepts the SETUP, answers the first KEEPALIVE, sends `requests` requests, then
/// stays silent. Returns the client, whose responders (at most `limit`) never finish.
async fn silent_after_requests(limit: usize, pending: usize, requests: u32) -> ClientSession {
    let (client_end, peer) = memory::pair(64);
    let (mut reader, mut writer) = peer.split();
    tokio::spawn(async move {
        let mut answered = false;
        while let Ok(Some(raw)) = reader.read_frame().await {
            if let Ok(Frame::Keepalive(k)) = Frame::decode(raw)
                && !answered
            {
                answered = true;
                for frame in std::iter::once(keepalive_answer(k.data))
                    .chain((0..requests).map(server_request))
                {
                    writer.write_frame(frame.to_bytes().unwrap()).await.unwrap();
                }
                writer.flush().await.unwrap();
            }
        }
        // Keep the transport open: silence, not a closed connection.
        std::future::pending::<()>().await;
    });
    let responder = Arc::new(Gated::shut());
    let config = ClientSessionConfig {
        keepalive_interval: Duration::from_secs(1),
        max_lifetime: Duration::from_secs(5),
        max_inbound_requests: limit,
        max_pending_inbound: pending,
        ..ClientSessionConfig::default()
    };
    ClientSession::connect(client_end, config, responder)
        .await
        .unwrap()
}

/// The keepalive lifetime stops only while reading is paused, that is with the queue full; at
/// the responder limit with room in the queue the client still reads, so a silent peer is
/// detected.
#[tokio::test(start_paused = true)]
async fn the_keepalive_lifetime_stops_only_while_the_queue_is_full() {
    // One responder running, one request queued, room for another: reading goes on.
    let client = silent_after_requests(1, 2, 2).await;
    let closed = timeout(Duration::from_secs(30), client.connection().closed()).await;
    assert_eq!(closed, Ok(CloseReason::KeepaliveTimeout));

    // One running, one queued, the third unread: reading paused, the silence is ours.
    let client = silent_after_requests(1, 1, 3).await;
    assert!(
        timeout(Duration::from_secs(30), client.connection().closed())
            .await
            .is_err(),
        "a client that paused reading timed the server out"
    );
    assert!(!client.connection().is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_their_deadline_time_out_and_are_canceled_once() {
    let (client_end, peer) = memory::pair(64);
    let mut frames = raw_server(peer);
    let client = ClientSession::connect(
        client_end,
        ClientSessionConfig::default(),
        Arc::new(RejectAll),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .connection()
                .request_response_until(Payload::new("x"), deadline)
                .await
        }));
    }
    for t in tasks {
        let answer = timeout(LIMIT, t).await.unwrap().unwrap();
        assert_eq!(answer, Err(RequestError::TimedOut));
    }
    let (mut requested, mut canceled) = (Vec::new(), Vec::new());
    while canceled.len() < 50 {
        match timeout(LIMIT, frames.recv()).await.unwrap().unwrap() {
            Frame::Request(r) => requested.push(r.stream_id),
            Frame::Cancel { stream_id } => canceled.push(stream_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    requested.sort_unstable();
    canceled.sort_unstable();
    assert_eq!(canceled, requested, "each request canceled exactly once");
    // Nothing more: no second CANCEL for any of them.
    assert!(
        timeout(Duration::from_millis(100), frames.recv())
            .await
            .is_err()
    );
    // A deadline already passed fails without sending anything.
    let past = tokio::time::Instant::now();
    assert_eq!(
        client
            .connection()
            .request_response_until(Payload::new("late"), past)
            .await,
        Err(RequestError::TimedOut)
    );
    assert!(
        timeout(Duration::from_millis(100), frames.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn deadlines_time_out_slow_answers_only_and_the_connection_goes_on() {
    let server = Server::new(ServerConfig::default());
    let (seen, _) = mpsc::unbounded_channel();
    let slow = Arc::new(Echo {
        prefix: "echo:",
        seen,
        delay: Duration::from_millis(200),
        counts: Arc::default(),
    });
    let (client, _server_conn) = connect_pair(
        &server,
        slow,
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    let soon = tokio::time::Instant::now() + Duration::from_millis(20);
    assert_eq!(
        client
            .connection()
            .request_response_until(Payload::new("a"), soon)
            .await,
        Err(RequestError::TimedOut)
    );
    // The late answer to the timed-out request is discarded; a request with room gets its own.
    let later = tokio::time::Instant::now() + Duration::from_secs(5);
    let answer = client
        .connection()
        .request_response_until(Payload::new("b"), later)
        .await
        .unwrap();
    assert_eq!(answer.data.as_ref(), b"echo:b");
    assert!(!client.connection().is_closed());
}

#[tokio::test]
async fn many_answered_requests_with_far_deadlines_all_complete() {
    // Exercises the pruning of answered requests' deadlines: thousands of far deadlines, each
    // answered long before it comes up.
    let server = Server::new(ServerConfig::default());
    let (echo, _) = Echo::new("e:");
    let (client, _server_conn) = connect_pair(
        &server,
        echo,
        Arc::new(RejectAll),
        ClientSessionConfig::default(),
    )
    .await;
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    for i in 0..3_000u32 {
        let body = i.to_string();
        let answer = timeout(
            LIMIT,
            client
                .connection()
                .request_response_until(Payload::new(body.clone()), far),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(answer.data.as_ref(), format!("e:{body}").as_bytes());
    }
}
