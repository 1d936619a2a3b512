//! The client over each kind of endpoint: TLS with a custom root certificate, WebSocket.

mod common;

use common::{TestServer, config, echo_command, echoed};
use std::time::Duration;

use elarian_core::{Cause, Client, ConnectError, Endpoint, ReconnectPolicy};
use elarian_transport::io::{TlsServerOptions, TransportError, rustls};

fn self_signed() -> (String, TlsServerOptions) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let options = TlsServerOptions::from_pem(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    (cert.cert.pem(), options)
}

#[tokio::test]
async fn tls_endpoint_with_a_custom_root_certificate() {
    let (ca_pem, options) = self_signed();
    let server = TestServer::start_tls(options).await;
    let endpoint = Endpoint::tls("localhost", server.addr.port());
    let config = config(endpoint)
        .root_certificate_pem(ca_pem.as_bytes())
        .build()
        .unwrap();
    let client = Client::connect(config, ()).await.unwrap();
    let reply = client.send_app_command(echo_command("tls")).await.unwrap();
    assert_eq!(echoed(&reply), "tls");
    client.disconnect().await;
}

#[tokio::test]
async fn tls_endpoint_with_an_untrusted_certificate_fails_clearly() {
    let (_ca_pem, options) = self_signed();
    let server = TestServer::start_tls(options).await;
    let config = config(Endpoint::tls("localhost", server.addr.port()))
        .reconnect_policy(ReconnectPolicy::default().max_attempts(Some(1)))
        .build()
        .unwrap();
    match Client::connect(config, ()).await.unwrap_err() {
        ConnectError::AttemptsExhausted { attempts: 1, last } => {
            assert!(matches!(*last, ConnectError::Transport { .. }), "{last:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(server.state.setups().is_empty());
}

#[test]
fn invalid_root_certificate_is_a_config_error() {
    let error = config(Endpoint::tls("localhost", 443))
        .root_certificate_pem(b"not a certificate")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("root_certificate"), "{error}");
}

#[tokio::test]
async fn websocket_endpoint() {
    let server = TestServer::start_ws().await;
    let endpoint: Endpoint = format!("ws://127.0.0.1:{}/", server.addr.port())
        .parse()
        .unwrap();
    let client = Client::connect(config(endpoint).build().unwrap(), ())
        .await
        .unwrap();
    let reply = client.send_app_command(echo_command("ws")).await.unwrap();
    assert_eq!(echoed(&reply), "ws");
    client.disconnect().await;
}

/// Every error in `error`'s source chain, the wrapped ones ([`Cause`]) unwrapped.
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut all = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        all.push(error);
        if let Some(cause) = error.downcast_ref::<Cause>() {
            all.push(cause.get_ref());
        }
        next = error.source();
    }
    all
}

#[tokio::test]
async fn a_connect_that_times_out_says_the_certificate_was_not_trusted() {
    let (_ca_pem, options) = self_signed();
    let server = TestServer::start_tls(options).await;
    let config = config(Endpoint::tls("localhost", server.addr.port()))
        .initial_connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let error = Client::connect(config, ()).await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        matches!(error.last_attempt(), ConnectError::Transport { .. }),
        "{error:?}"
    );
    let chain = chain(&error);
    let transport = chain
        .iter()
        .find_map(|e| e.downcast_ref::<TransportError>())
        .expect("the transport error is in the chain");
    assert!(transport.is_handshake(), "{transport:?}");
    let rustls = chain
        .iter()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .find_map(|io| io.get_ref()?.downcast_ref::<rustls::Error>())
        .expect("rustls' error is in the chain");
    assert!(
        matches!(rustls, rustls::Error::InvalidCertificate(_)),
        "{rustls:?}"
    );
}

#[tokio::test]
async fn a_connect_that_times_out_says_the_connection_was_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = config(Endpoint::tcp("127.0.0.1", port))
        .initial_connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = Client::connect(config, ()).await.unwrap_err();
    assert!(error.is_timeout() && !error.is_rejected(), "{error:?}");
    let refused = chain(&error)
        .iter()
        .find_map(|e| e.downcast_ref::<TransportError>())
        .is_some_and(TransportError::is_refused);
    assert!(refused, "{error:?}: {:?}", chain(&error));
    assert!(
        error.last_attempt().to_string().contains("refused"),
        "{error}"
    );
}
