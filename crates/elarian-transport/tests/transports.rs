//! Frames over real sockets: TCP, TLS, WebSocket (ws and wss), through `io::connect` and the
//! listeners. Run with `--all-features` to include the WebSocket cases.
#![cfg(feature = "tcp")]

use std::time::Duration;

use bytes::Bytes;
use elarian_transport::io::{
    BoxTransport, Endpoint, FrameReader, FrameTransport, FrameWriter, FramingConfig,
    ListenerConfig, TcpListener, TlsClientOptions, TransportError, connect,
};
use tokio::io::AsyncWriteExt;

const STEP: Duration = Duration::from_secs(30);

/// Runs `fut` under a timeout so that a bug shows up as a failure, not a hung test.
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step timed out")
}

/// Echoes every frame back until the peer closes.
fn spawn_echo(transport: BoxTransport) -> tokio::task::JoinHandle<Result<(), TransportError>> {
    tokio::spawn(async move {
        let (mut rx, mut tx) = transport.split();
        while let Some(frame) = rx.read_frame().await? {
            tx.write_frame(frame).await?;
            tx.flush().await?;
        }
        tx.close().await
    })
}

fn pattern(len: usize, seed: u32) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The frames every transport must carry: a 1 MiB frame, thousands of small ones (including an
/// empty one), and another large one at the end.
fn workload() -> Vec<Bytes> {
    let mut frames = vec![pattern(1 << 20, 1)];
    frames.extend((0..3000u32).map(|i| pattern((i % 300) as usize, i)));
    frames.push(pattern((1 << 20) + 17, 2));
    frames
}

/// Sends the workload through an echo peer and checks that it comes back whole and in order.
async fn round_trip(transport: BoxTransport) {
    let frames = workload();
    let (mut rx, mut tx) = transport.split();
    let sent = frames.clone();
    let writer = tokio::spawn(async move {
        for frame in sent {
            tx.write_frame(frame).await?;
        }
        tx.flush().await?;
        Ok::<_, TransportError>(tx)
    });
    for (i, expected) in frames.iter().enumerate() {
        let got = within(rx.read_frame())
            .await
            .expect("read")
            .expect("frame, not EOF");
        assert!(
            got == expected,
            "frame {i}: {} bytes back, {} sent",
            got.len(),
            expected.len()
        );
    }
    let mut tx = within(writer).await.expect("writer task").expect("writes");
    within(tx.close()).await.expect("close");
    assert!(
        within(rx.read_frame())
            .await
            .expect("read after close")
            .is_none()
    );
}

#[cfg(feature = "tls")]
fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("certificate")
}

/// Server options that present `cert`.
#[cfg(feature = "tls")]
fn server_options(
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> elarian_transport::io::TlsServerOptions {
    elarian_transport::io::TlsServerOptions::from_pem(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap()
}

/// Client options that trust `cert` on top of the default roots.
#[cfg(feature = "tls")]
fn trusting(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> TlsClientOptions {
    TlsClientOptions::new()
        .add_root_certificates_pem(cert.cert.pem().as_bytes())
        .unwrap()
}

#[tokio::test]
async fn tcp_round_trip() {
    let mut listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (transport, _) = listener.accept().await?;
        spawn_echo(transport).await.expect("echo task")
    });
    let endpoint: Endpoint = format!("tcp://127.0.0.1:{port}").parse().unwrap();
    let transport = connect(&endpoint, &TlsClientOptions::new(), STEP)
        .await
        .unwrap();
    round_trip(transport).await;
    within(server).await.unwrap().unwrap();
}

/// Connects a raw socket to a listener with a 1 MiB limit and returns the server's reader side.
async fn raw_peer(limit: usize) -> (tokio::net::TcpStream, BoxTransport) {
    let config = ListenerConfig::default().framing(FramingConfig::default().max_frame_len(limit));
    let mut listener = TcpListener::bind_with("127.0.0.1:0", config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

#[tokio::test]
async fn oversized_length_prefix_is_rejected() {
    let (mut client, server) = raw_peer(1 << 20).await;
    let (mut rx, _tx) = server.split();
    // A frame just over the limit: rejected from the prefix alone, before its body arrives.
    client
        .write_all(&[0x10, 0x00, 0x01, 1, 2, 3])
        .await
        .unwrap();
    match within(rx.read_frame()).await {
        Err(TransportError::FrameTooLarge { len, limit }) => {
            assert_eq!((len, limit), ((1 << 20) + 1, 1 << 20));
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn truncated_stream_is_detected() {
    let (mut client, server) = raw_peer(1 << 20).await;
    let (mut rx, _tx) = server.split();
    client
        .write_all(&[0, 0, 2, b'o', b'k', 0, 0, 9, b'x'])
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(
        within(rx.read_frame()).await.unwrap().as_deref(),
        Some(&b"ok"[..])
    );
    assert!(matches!(
        within(rx.read_frame()).await,
        Err(TransportError::TruncatedFrame)
    ));
}

#[tokio::test]
async fn clean_close_between_frames_is_end_of_stream() {
    let (mut client, server) = raw_peer(1 << 20).await;
    let (mut rx, _tx) = server.split();
    client.write_all(&[0, 0, 1, 7]).await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(
        within(rx.read_frame()).await.unwrap().as_deref(),
        Some(&[7u8][..])
    );
    assert!(within(rx.read_frame()).await.unwrap().is_none());
}

#[cfg(feature = "tls")]
mod tls {
    use std::net::SocketAddr;

    use super::*;
    use elarian_transport::io::{TlsListener, TlsServerOptions};

    async fn echo_server(mut listener: TlsListener, peers: usize) -> Vec<SocketAddr> {
        let mut seen = Vec::new();
        for _ in 0..peers {
            let (transport, peer) = within(listener.accept()).await.unwrap();
            seen.push(peer);
            spawn_echo(transport);
        }
        seen
    }

    /// Starts a TLS echo server presenting `cert` for one peer; returns its port and task.
    async fn spawn_echo_server(
        cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
    ) -> (u16, tokio::task::JoinHandle<Vec<SocketAddr>>) {
        let listener = TlsListener::bind("127.0.0.1:0", server_options(cert))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        (port, tokio::spawn(echo_server(listener, 1)))
    }

    /// Binds a TLS listener presenting `cert` that gives a handshake `handshake_timeout`.
    async fn bind_with_handshake_timeout(
        cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
        handshake_timeout: Duration,
    ) -> (TlsListener, u16) {
        let config = ListenerConfig::default().handshake_timeout(handshake_timeout);
        let listener = TlsListener::bind_with("127.0.0.1:0", server_options(cert), config)
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    #[tokio::test]
    async fn tls_round_trip_with_a_custom_root() {
        let cert = self_signed();
        let (port, server) = spawn_echo_server(&cert).await;

        let client_tls = trusting(&cert).only_custom_roots(true);
        let transport = connect(&Endpoint::tls("localhost", port), &client_tls, STEP)
            .await
            .unwrap();
        round_trip(transport).await;
        within(server).await.unwrap();
    }

    #[tokio::test]
    async fn tls_by_ip_with_a_der_root_and_name_override() {
        let cert = self_signed();
        let (port, server) = spawn_echo_server(&cert).await;

        // The default roots are kept: adding one must not drop the others.
        let client_tls = TlsClientOptions::new()
            .add_root_certificate_der(cert.cert.der().to_vec())
            .server_name("localhost");
        let transport = connect(&Endpoint::tls("127.0.0.1", port), &client_tls, STEP)
            .await
            .unwrap();
        let (mut rx, mut tx) = transport.split();
        tx.write_frame(Bytes::from_static(b"ping")).await.unwrap();
        tx.flush().await.unwrap();
        assert_eq!(
            within(rx.read_frame()).await.unwrap().as_deref(),
            Some(&b"ping"[..])
        );
        drop((rx, tx));
        within(server).await.unwrap();
    }

    #[tokio::test]
    async fn untrusted_certificate_fails_clearly_and_the_listener_carries_on() {
        let cert = self_signed();
        let (port, server) = spawn_echo_server(&cert).await;

        let err = connect(
            &Endpoint::tls("localhost", port),
            &TlsClientOptions::new(),
            STEP,
        )
        .await
        .expect_err("a self-signed certificate is not trusted by default");
        let message = err.to_string();
        assert!(err.is_handshake(), "{err:?}");
        assert!(!err.is_refused() && !err.is_timeout(), "{err:?}");
        assert!(
            message.contains("TLS handshake with `localhost` failed"),
            "{message}"
        );
        // Why it failed is in the source chain, down to rustls' own error.
        let io = std::error::Error::source(&err)
            .and_then(|source| source.downcast_ref::<std::io::Error>())
            .expect("the handshake's io::Error is the source");
        assert!(io.to_string().contains("certificate"), "{io}");
        let rustls = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<elarian_transport::io::rustls::Error>())
            .expect("rustls' error inside");
        assert!(
            matches!(
                rustls,
                elarian_transport::io::rustls::Error::InvalidCertificate(_)
            ),
            "{rustls:?}"
        );

        let trusted = trusting(&cert);
        let transport = connect(&Endpoint::tls("localhost", port), &trusted, STEP)
            .await
            .unwrap();
        drop(transport);
        within(server).await.unwrap();
    }

    #[tokio::test]
    async fn a_stalled_handshake_does_not_block_other_peers() {
        let cert = self_signed();
        let (mut listener, port) =
            bind_with_handshake_timeout(&cert, Duration::from_secs(600)).await;

        // Connects and never says a word.
        let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let trusted = trusting(&cert);
        let endpoint = Endpoint::tls("localhost", port);
        let (client, accepted) = tokio::join!(
            connect(&endpoint, &trusted, STEP),
            within(listener.accept()),
        );
        client.unwrap();
        accepted.unwrap();
    }

    #[tokio::test]
    async fn a_timed_out_handshake_is_dropped() {
        let cert = self_signed();
        let (mut listener, port) =
            bind_with_handshake_timeout(&cert, Duration::from_millis(100)).await;
        let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // The server gives up on the silent peer and closes its socket.
        let mut buf = [0u8; 16];
        let n = within(tokio::io::AsyncReadExt::read(&mut silent, &mut buf))
            .await
            .unwrap_or(0);
        assert_eq!(n, 0, "expected the server to close the connection");
        // Nothing reached accept.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), listener.accept())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn connect_gives_up_on_a_server_that_never_answers_the_handshake() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts the TCP connection and then says nothing.
        let _server = tokio::spawn(async move {
            let held = listener.accept().await;
            std::future::pending::<()>().await;
            drop(held);
        });
        let err = connect(
            &Endpoint::tls("localhost", port),
            &TlsClientOptions::new(),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        match err {
            TransportError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn server_options_reject_bad_pem() {
        let cert = self_signed();
        let key = cert.signing_key.serialize_pem();
        assert!(matches!(
            TlsServerOptions::from_pem(b"", key.as_bytes()),
            Err(elarian_transport::io::TlsConfigError::NoCertificate)
        ));
        assert!(matches!(
            TlsServerOptions::from_pem(cert.cert.pem().as_bytes(), b"nothing here"),
            Err(elarian_transport::io::TlsConfigError::NoPrivateKey)
        ));
        assert!(matches!(
            TlsClientOptions::new().add_root_certificates_pem(b"no pem"),
            Err(elarian_transport::io::TlsConfigError::NoCertificate)
        ));
    }

    #[tokio::test]
    async fn only_custom_roots_without_any_root_is_an_error() {
        let options = TlsClientOptions::new().only_custom_roots(true);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = connect(&Endpoint::tls("localhost", port), &options, STEP)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no trusted root certificates"),
            "{err}"
        );
    }
}

#[cfg(feature = "websocket")]
mod websocket {
    use super::*;
    use elarian_transport::io::WsListener;
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    async fn echo_server(mut listener: WsListener) {
        let (transport, _) = within(listener.accept()).await.unwrap();
        spawn_echo(transport).await.unwrap().unwrap();
    }

    /// Connects a plain WebSocket client (no RSocket framing) to `listener`; returns it and the
    /// transport the listener accepted for it.
    async fn raw_client(
        listener: &mut WsListener,
    ) -> (
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        BoxTransport,
    ) {
        let port = listener.local_addr().unwrap().port();
        let url = format!("ws://127.0.0.1:{port}/");
        let (client, accepted) = tokio::join!(
            tokio_tungstenite::connect_async(url),
            within(listener.accept())
        );
        (client.unwrap().0, accepted.unwrap().0)
    }

    #[tokio::test]
    async fn ws_round_trip() {
        let listener = WsListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(echo_server(listener));
        let endpoint: Endpoint = format!("ws://127.0.0.1:{port}/rsocket").parse().unwrap();
        let transport = connect(&endpoint, &TlsClientOptions::new(), STEP)
            .await
            .unwrap();
        round_trip(transport).await;
        within(server).await.unwrap();
    }

    #[cfg(feature = "tls")]
    #[tokio::test]
    async fn wss_round_trip() {
        let cert = self_signed();
        let listener = WsListener::bind_tls("127.0.0.1:0", server_options(&cert))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(echo_server(listener));
        let client_tls = trusting(&cert);
        let endpoint = Endpoint::wss("localhost", port, "/");
        let transport = connect(&endpoint, &client_tls, STEP).await.unwrap();
        round_trip(transport).await;
        within(server).await.unwrap();
    }

    #[tokio::test]
    async fn text_messages_are_a_protocol_error_and_pings_are_ignored() {
        let mut listener = WsListener::bind("127.0.0.1:0").await.unwrap();
        let (mut client, accepted) = raw_client(&mut listener).await;
        let (mut rx, _tx) = accepted.split();
        client
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(b"frame")))
            .await
            .unwrap();
        client.send(Message::Text("hello".into())).await.unwrap();
        assert_eq!(
            within(rx.read_frame()).await.unwrap().as_deref(),
            Some(&b"frame"[..])
        );
        let err = within(rx.read_frame()).await.unwrap_err();
        assert!(
            matches!(err, TransportError::Protocol(ref m) if m.contains("text")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_oversized_message_is_rejected() {
        let config =
            ListenerConfig::default().framing(FramingConfig::default().max_frame_len(1024));
        let mut listener = WsListener::bind_with("127.0.0.1:0", config).await.unwrap();
        let (mut client, accepted) = raw_client(&mut listener).await;
        let (mut rx, _tx) = accepted.split();
        client
            .send(Message::Binary(Bytes::from(vec![0u8; 1025])))
            .await
            .unwrap();
        let err = within(rx.read_frame()).await.unwrap_err();
        assert!(
            matches!(err, TransportError::FrameTooLarge { limit: 1024, .. }),
            "{err:?}"
        );
    }
}
