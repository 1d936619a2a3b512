//! `ClientConfigBuilder::dialer`: the client opens its transports through it instead of the
//! endpoint, within the connect timeout.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, config, echo_command, echoed};
use elarian_core::{Client, ConnectError, DialFuture, Dialer, Endpoint, ReconnectPolicy};
use elarian_transport::io::{TlsClientOptions, connect};

/// Dials `target` over TCP whatever the config's endpoint says; counts dials.
struct Redirect {
    target: Endpoint,
    dials: AtomicUsize,
}

impl Dialer for Redirect {
    fn dial(&self) -> DialFuture {
        self.dials.fetch_add(1, Ordering::SeqCst);
        let target = self.target.clone();
        Box::pin(
            async move { connect(&target, &TlsClientOptions::new(), Duration::from_secs(5)).await },
        )
    }

    fn describe(&self) -> String {
        format!("redirect to {}", self.target)
    }
}

/// Never opens anything.
struct Silent;

impl Dialer for Silent {
    fn dial(&self) -> DialFuture {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn the_dialer_replaces_the_endpoint_for_every_connection() {
    let server = TestServer::start().await;
    let dialer = Arc::new(Redirect {
        target: server.endpoint(),
        dials: AtomicUsize::new(0),
    });
    // Nothing listens at the endpoint: only the dialer can connect.
    let config = config(Endpoint::tcp("127.0.0.1", 1))
        .dialer(dialer.clone())
        .build()
        .unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains("redirect to tcp://"), "{debug}");
    assert!(config.dialer().is_some());

    let client = Client::connect(config, ()).await.expect("connects");
    let reply = client.send_app_command(echo_command("a")).await.unwrap();
    assert_eq!(echoed(&reply), "a");
    assert_eq!(dialer.dials.load(Ordering::SeqCst), 1);

    // The server closes the connection; the client comes back through the dialer.
    server.state.latest_connection().close();
    tokio::time::timeout(Duration::from_secs(10), async {
        while dialer.dials.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the client dials again");
    let reply = client
        .send_app_command(echo_command("b"))
        .await
        .expect("works after reconnecting");
    assert_eq!(echoed(&reply), "b");
    client.disconnect().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_dialer_that_never_answers_is_bounded_by_the_connect_timeout() {
    let config = config(Endpoint::tcp("127.0.0.1", 1))
        .dialer(Arc::new(Silent))
        .connect_timeout(Duration::from_millis(100))
        .reconnect_policy(ReconnectPolicy::default().max_attempts(Some(1)))
        .build()
        .unwrap();
    assert!(format!("{config:?}").contains("custom dialer"));
    let started = tokio::time::Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(10), Client::connect(config, ()))
        .await
        .expect("the connect timeout bounds the dial")
        .unwrap_err();
    match error {
        ConnectError::AttemptsExhausted { attempts: 1, last } => {
            let text = last.to_string();
            assert!(matches!(*last, ConnectError::Transport { .. }), "{last:?}");
            assert!(text.contains("custom dialer"), "{text}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}
