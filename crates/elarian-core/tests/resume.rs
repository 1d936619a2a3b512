//! Resumption: a cut connection loses no command in flight and runs none twice.

mod common;

use std::time::Duration;

use common::{
    EventLog, TestServer, config, echo_command, echo_commands_in_background, echoed, proxy::Proxy,
};
use elarian_core::{Client, ClientError, ConnectionEvent, Endpoint};

#[tokio::test]
async fn commands_in_flight_complete_once_across_a_cut_connection() {
    let server = TestServer::start().await;
    *server.state.command_delay.lock().unwrap() = Duration::from_millis(300);
    let proxy = Proxy::start(server.addr).await;
    let log = EventLog::default();
    let config = log
        .attach(config(Endpoint::tcp("127.0.0.1", proxy.addr.port())))
        .build()
        .unwrap();
    let client = Client::connect(config, ()).await.unwrap();

    let commands = echo_commands_in_background(&client, "c", 0..20);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mark = log.len();
    proxy.cut();
    let lost = log.wait_for_connection_lost(mark).await;
    log.wait_for(lost, |e| *e == ConnectionEvent::Connected)
        .await;

    for (i, command) in commands.into_iter().enumerate() {
        let reply = command.await.unwrap().expect("command survives the cut");
        assert_eq!(echoed(&reply), format!("c{i}"));
    }
    for i in 0..20 {
        assert_eq!(
            server.state.executions_of(&format!("c{i}")),
            1,
            "c{i} ran once"
        );
    }
    assert_eq!(server.state.setups().len(), 1, "resumed, not reconnected");
    assert!(
        !log.snapshot()
            .iter()
            .any(|e| matches!(e, ConnectionEvent::Error(ClientError::SessionLost { .. })))
    );
    client.disconnect().await;
}

#[tokio::test]
async fn a_silent_connection_is_detected_by_keepalive_and_resumed() {
    let server = TestServer::start().await;
    *server.state.command_delay.lock().unwrap() = Duration::from_millis(100);
    let proxy = Proxy::start(server.addr).await;
    let log = EventLog::default();
    let config = log
        .attach(config(Endpoint::tcp("127.0.0.1", proxy.addr.port())))
        .keepalive_interval(Duration::from_millis(100))
        .max_lifetime(Duration::from_millis(800))
        .build()
        .unwrap();
    let client = Client::connect(config, ()).await.unwrap();

    let commands = echo_commands_in_background(&client, "k", 0..5);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mark = log.len();
    // Nothing flows, nothing closes: only the keepalive timeout can tell.
    proxy.stall(true);
    let lost = log.wait_for_connection_lost(mark).await;
    proxy.cut();
    proxy.stall(false);
    log.wait_for(lost, |e| *e == ConnectionEvent::Connected)
        .await;

    for (i, command) in commands.into_iter().enumerate() {
        let reply = command
            .await
            .unwrap()
            .expect("command survives the silence");
        assert_eq!(echoed(&reply), format!("k{i}"));
        assert_eq!(server.state.executions_of(&format!("k{i}")), 1);
    }
    assert_eq!(server.state.setups().len(), 1, "resumed, not reconnected");
    client.disconnect().await;
}

/// Commands flow while the connection is cut again and again; each completes exactly once.
async fn commands_survive_repeated_cuts(commands: usize, min_cuts: usize) {
    let server = TestServer::start().await;
    *server.state.command_delay.lock().unwrap() = Duration::from_millis(5);
    let proxy = Proxy::start(server.addr).await;
    let config = config(Endpoint::tcp("127.0.0.1", proxy.addr.port()))
        .command_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let client = Client::connect(config, ()).await.unwrap();
    let load = {
        let client = client.clone();
        tokio::spawn(async move {
            // 32 commands in flight at any time.
            let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
            let mut tasks = Vec::with_capacity(commands);
            for i in 0..commands {
                let permit = semaphore.clone().acquire_owned().await.unwrap();
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let id = format!("s{i}");
                    let reply = client.send_app_command(echo_command(&id)).await;
                    drop(permit);
                    (id, reply)
                }));
            }
            let mut results = Vec::with_capacity(commands);
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        })
    };
    let mut cuts = 0;
    while !load.is_finished() {
        tokio::time::sleep(Duration::from_millis(30)).await;
        proxy.cut();
        cuts += 1;
    }
    assert!(
        cuts >= min_cuts,
        "only {cuts} cuts happened during the load"
    );
    let results = tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .expect("the load finishes")
        .unwrap();
    for (id, reply) in results {
        let reply = reply.unwrap_or_else(|e| panic!("{id} failed: {e}"));
        assert_eq!(echoed(&reply), id);
        assert_eq!(server.state.executions_of(&id), 1, "{id} ran once");
    }
    assert_eq!(server.state.setups().len(), 1, "always resumed");
    client.disconnect().await;
}

#[tokio::test]
async fn commands_survive_repeated_cuts_short() {
    commands_survive_repeated_cuts(1_000, 5).await;
}

#[tokio::test]
#[ignore = "soak test: run with --ignored"]
async fn commands_survive_repeated_cuts_soak() {
    commands_survive_repeated_cuts(20_000, 20).await;
}
