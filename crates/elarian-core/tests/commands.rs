//! Command deadlines over a real RSocket connection.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestServer, config, echo_command, echoed};
use elarian_core::{Client, CommandError};

#[tokio::test]
async fn an_unanswered_command_times_out_and_is_canceled_on_the_server() {
    let server = TestServer::start().await;
    *server.state.command_delay.lock().unwrap() = Duration::from_secs(1);
    let client = Client::connect(
        config(server.endpoint())
            .command_timeout(Duration::from_millis(100))
            .build()
            .unwrap(),
        (),
    )
    .await
    .unwrap();
    let started = tokio::time::Instant::now();
    let result = client.send_app_command(echo_command("slow")).await;
    assert!(matches!(result, Err(CommandError::Timeout)), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(900));
    // The CANCEL stopped the server's work: past its delay, it never executed the command.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(server.state.total_executions.load(Ordering::SeqCst), 0);
    // The connection carries on.
    *server.state.command_delay.lock().unwrap() = Duration::ZERO;
    let reply = client.send_app_command(echo_command("fast")).await.unwrap();
    assert_eq!(echoed(&reply), "fast");
    client.disconnect().await;
}
