//! The SETUP frame the client sends, and what happens when the server rejects it.

mod common;

use std::time::Duration;

use common::{APP, EventLog, KEY, ORG, TestServer, config};
use elarian_core::proto::AppConnectionMetadata;
use elarian_core::{Client, ClientError, ConnectError, ConnectionEvent, Role, StopReason};
use prost::Message;

#[tokio::test]
async fn setup_carries_connection_metadata_and_agent_json() {
    let server = TestServer::start().await;
    let client = Client::connect(config(server.endpoint()).build().unwrap(), ())
        .await
        .unwrap();
    let setups = server.state.setups();
    assert_eq!(setups.len(), 1);
    let setup = &setups[0];
    assert_eq!(
        AppConnectionMetadata::decode(setup.data.clone()).unwrap(),
        AppConnectionMetadata {
            org_id: ORG.into(),
            app_id: APP.into(),
            api_key: Some(KEY.into()),
            auth_token: None,
            simplex_mode: false,
            simulator_mode: false,
        }
    );
    let agent: serde_json::Value =
        serde_json::from_slice(setup.metadata.as_deref().expect("setup metadata")).unwrap();
    assert_eq!(
        agent,
        serde_json::json!({ "agent": format!("rust/{}", env!("CARGO_PKG_VERSION")) })
    );
    assert_eq!(setup.data_mime_type, "application/octet-stream");
    assert_eq!(setup.metadata_mime_type, "application/json");
    let token = setup
        .resume_token
        .clone()
        .expect("resumption is on by default");
    // 256 random bits, hex: nothing of the app id or the clock (see docs/security.md).
    let token = std::str::from_utf8(&token).unwrap();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert!(!token.contains(APP), "{token}");
    client.disconnect().await;
}

#[tokio::test]
async fn simulator_with_auth_token_and_simplex_mode() {
    let server = TestServer::start().await;
    let config = config(server.endpoint())
        .auth_token("el_tkn_test")
        .role(Role::Simulator)
        .allow_notifications(false)
        .resumption(false)
        .build()
        .unwrap();
    let client = Client::connect(config, ()).await.unwrap();
    let setup = &server.state.setups()[0];
    assert_eq!(
        AppConnectionMetadata::decode(setup.data.clone()).unwrap(),
        AppConnectionMetadata {
            org_id: ORG.into(),
            app_id: APP.into(),
            api_key: None,
            auth_token: Some("el_tkn_test".into()),
            simplex_mode: true,
            simulator_mode: true,
        }
    );
    assert_eq!(setup.resume_token, None);
    client.disconnect().await;
}

#[tokio::test]
async fn rejected_setup_fails_once_without_retrying() {
    let server = TestServer::start().await;
    *server.state.reject.lock().unwrap() = Some("invalid api key".into());
    let log = EventLog::default();
    let config = log.attach(config(server.endpoint())).build().unwrap();
    let error = Client::connect(config, ()).await.unwrap_err();
    match &error {
        ConnectError::Rejected { message } => assert!(message.contains("invalid api key")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.to_string().contains("invalid api key"));
    log.wait_for(0, |e| {
        matches!(
            e,
            ConnectionEvent::Closed {
                reason: StopReason::Rejected { .. }
            }
        )
    })
    .await;
    assert!(log.snapshot().iter().any(|e| matches!(
        e,
        ConnectionEvent::Error(ClientError::Connect(ConnectError::Rejected { .. }))
    )));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.state.setups().len(),
        1,
        "no retry after a rejected SETUP"
    );
}

#[test]
fn debug_of_the_config_hides_the_credentials() {
    let config = config(elarian_core::Endpoint::tcp("127.0.0.1", 1))
        .build()
        .unwrap();
    let debug = format!("{config:?} {:#?}", config);
    assert!(!debug.contains(KEY));
    assert!(!debug.contains("80922f5e"));
    assert!(debug.contains(APP));
    let token = common::config(elarian_core::Endpoint::tcp("127.0.0.1", 1))
        .auth_token("el_tkn_very_secret")
        .build()
        .unwrap();
    assert!(!format!("{token:?}").contains("very_secret"));
}
