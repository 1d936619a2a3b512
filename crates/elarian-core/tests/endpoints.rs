//! The client over each kind of endpoint: TLS with a custom root certificate, WebSocket.

mod common;

use common::{TestServer, config, echo_command, echoed};
use elarian_core::{Client, ConnectError, Endpoint, ReconnectPolicy};
use elarian_transport::io::TlsServerOptions;

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
