//! Reconnection after the server goes away, and commands issued meanwhile.

mod common;

use std::time::Duration;

use common::{EventLog, TestServer, config, echo_command, echo_commands_in_background, echoed};
use elarian_core::{Client, ClientError, CommandError, ConnectionEvent};
use futures_util::StreamExt;

#[tokio::test]
async fn reconnects_after_a_server_restart_and_runs_queued_commands() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let client = Client::connect(log.attach(config(server.endpoint())).build().unwrap(), ())
        .await
        .unwrap();
    let reply = client
        .send_app_command(echo_command("before"))
        .await
        .unwrap();
    assert_eq!(echoed(&reply), "before");

    let mut events = client.events();
    let mark = log.len();
    let (addr, state) = server.shutdown().await;
    let lost = log.wait_for_connection_lost(mark).await;
    let reconnecting = log
        .wait_for(lost, |e| matches!(e, ConnectionEvent::Reconnecting { .. }))
        .await;

    // Issued while the server is down: they wait for the new connection.
    let queued = echo_commands_in_background(&client, "q", 0..3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!client.is_connected());

    let server = TestServer::start_at(addr, state).await;
    log.wait_for(reconnecting, |e| *e == ConnectionEvent::Connected)
        .await;
    // The stream saw the same story: the loss, at least one retry, then the connection.
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("events flow")
    {
        let connected = event == ConnectionEvent::Connected;
        seen.push(event);
        if connected {
            break;
        }
    }
    assert!(matches!(
        seen[0],
        ConnectionEvent::Error(ClientError::ConnectionLost { .. })
    ));
    assert!(
        seen.iter()
            .any(|e| matches!(e, ConnectionEvent::Reconnecting { .. }))
    );
    for (i, command) in queued.into_iter().enumerate() {
        let reply = command.await.unwrap().unwrap();
        assert_eq!(echoed(&reply), format!("q{i}"));
        assert_eq!(server.state.executions_of(&format!("q{i}")), 1);
    }
    // The restarted server did not know the old session: a fresh SETUP was sent.
    assert_eq!(server.state.setups().len(), 2);
    client.disconnect().await;
}

#[tokio::test]
async fn commands_beyond_the_queue_limit_fail_with_queue_full() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let config = log
        .attach(config(server.endpoint()))
        .max_queued_commands(2)
        .build()
        .unwrap();
    let client = Client::connect(config, ()).await.unwrap();
    let (addr, state) = server.shutdown().await;
    log.wait_for(0, |e| matches!(e, ConnectionEvent::Reconnecting { .. }))
        .await;

    let waiting = echo_commands_in_background(&client, "w", 0..2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        client.send_app_command(echo_command("overflow")).await,
        Err(CommandError::QueueFull)
    ));

    let server = TestServer::start_at(addr, state).await;
    for command in waiting {
        assert!(command.await.unwrap().is_ok());
    }
    assert_eq!(server.state.executions_of("overflow"), 0);
    client.disconnect().await;
}

#[tokio::test]
async fn disconnect_closes_and_refuses_further_commands() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let client = Client::connect(log.attach(config(server.endpoint())).build().unwrap(), ())
        .await
        .unwrap();
    client.disconnect().await;
    assert!(matches!(
        log.snapshot().last(),
        Some(ConnectionEvent::Closed { .. })
    ));
    assert!(matches!(
        client.send_app_command(echo_command("late")).await,
        Err(CommandError::NotConnected)
    ));
    // Idempotent.
    client.disconnect().await;
    drop(server);
}
