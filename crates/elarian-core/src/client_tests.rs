//! Unit tests of the client and supervisor over a scripted link (no sockets; paused time).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elarian_proto::{AppToServerCommand, AppToServerCommandReply};

use crate::fake::FakeConnector;
use crate::link::{LinkDown, LinkRequestError, ResumeFailure};
use crate::{
    Client, ClientConfig, ClientConfigBuilder, ClientError, CommandError, ConnectError,
    ConnectionEvent, ReconnectPolicy, StopReason,
};

type Log = Arc<Mutex<Vec<ConnectionEvent>>>;

fn config(tune: impl FnOnce(ClientConfigBuilder) -> ClientConfigBuilder) -> (ClientConfig, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let builder = ClientConfig::builder()
        .org_id("el_org_test")
        .app_id("el_app_test")
        .api_key("el_k_test_secret")
        .on_event(move |event| sink.lock().unwrap().push(event.clone()));
    (tune(builder).build().unwrap(), log)
}

fn start(config: ClientConfig, fake: &Arc<FakeConnector>) -> Client {
    let events = Arc::new(crate::event::EventHub::with_callbacks(
        config.callbacks.clone(),
    ));
    let window = Arc::new(crate::window::CommandWindow::new(
        config.max_commands_in_flight,
    ));
    Client::start_with(config, events, window, Arc::new(fake.clone()))
}

async fn connect(config: ClientConfig, fake: &Arc<FakeConnector>) -> Result<Client, ConnectError> {
    let client = start(config, fake);
    client.wait_connected().await?;
    Ok(client)
}

/// Waits (in paused time) until the log holds an event matching `pred` after position `from`.
async fn wait_for(log: &Log, from: usize, pred: impl Fn(&ConnectionEvent) -> bool) -> usize {
    for _ in 0..10_000 {
        if let Some(i) = log.lock().unwrap().iter().skip(from).position(&pred) {
            return from + i;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("event not seen; log: {:?}", log.lock().unwrap());
}

fn command() -> AppToServerCommand {
    AppToServerCommand::default()
}

/// Connects over a fake link that holds every command unanswered until released.
async fn connect_holding_commands(config: ClientConfig) -> (Arc<FakeConnector>, Client) {
    let fake = Arc::new(FakeConnector::default());
    fake.hold_requests.store(true, Ordering::SeqCst);
    let client = connect(config, &fake).await.unwrap();
    (fake, client)
}

/// Sends a command on its own task and lets it reach the link before returning.
async fn send_in_background(
    client: &Client,
) -> tokio::task::JoinHandle<Result<AppToServerCommandReply, CommandError>> {
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.send_app_command(command()).await }
    });
    tokio::task::yield_now().await;
    in_flight
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_the_connection_closes() {
    let fake = Arc::new(FakeConnector::default());
    let (config, log) = config(|b| b);
    let client = connect(config, &fake).await.unwrap();
    assert!(client.is_connected());
    fake.link(0).go_down(LinkDown::Closed {
        reason: "reset".into(),
    });
    let lost = wait_for(&log, 0, |e| {
        matches!(
            e,
            ConnectionEvent::Error(ClientError::ConnectionLost { .. })
        )
    })
    .await;
    let reconnecting = wait_for(&log, lost, |e| {
        matches!(e, ConnectionEvent::Reconnecting { attempt: 1, .. })
    })
    .await;
    wait_for(&log, reconnecting, |e| *e == ConnectionEvent::Connected).await;
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
    assert_eq!(
        client.send_app_command(command()).await.unwrap(),
        AppToServerCommandReply::default()
    );
    assert_eq!(fake.link(1).executed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn rejected_setup_is_final() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_next([ConnectError::Rejected {
        message: "invalid api key".into(),
    }]);
    let (config, log) = config(|b| b);
    let error = connect(config, &fake).await.unwrap_err();
    assert_eq!(
        error,
        ConnectError::Rejected {
            message: "invalid api key".into()
        }
    );
    wait_for(&log, 0, |e| {
        matches!(
            e,
            ConnectionEvent::Closed {
                reason: StopReason::Rejected { .. }
            }
        )
    })
    .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(fake.connects.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_attempt_limit() {
    let fake = Arc::new(FakeConnector::default());
    let refused = ConnectError::Transport {
        message: "connection refused".into(),
        source: None,
    };
    fake.fail_next(vec![refused.clone(); 5]);
    let (config, log) =
        config(|b| b.reconnect_policy(ReconnectPolicy::default().max_attempts(Some(3))));
    match connect(config, &fake).await.unwrap_err() {
        ConnectError::AttemptsExhausted { attempts, last } => {
            assert_eq!(attempts, 3);
            assert_eq!(*last, refused);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fake.connects.load(Ordering::SeqCst), 3);
    wait_for(&log, 0, |e| {
        matches!(
            e,
            ConnectionEvent::Closed {
                reason: StopReason::GaveUp { .. }
            }
        )
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn commands_wait_for_the_connection_and_the_queue_is_bounded() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_next(vec![
        ConnectError::Transport {
            message: "down".into(),
            source: None,
        };
        4
    ]);
    let (config, log) = config(|b| b.max_queued_commands(2));
    let client = start(config, &fake);
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.send_app_command(command()).await }
    });
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.send_app_command(command()).await }
    });
    while client.inner.shared.queue.available_permits() > 0 {
        tokio::task::yield_now().await;
    }
    assert!(matches!(
        client.send_app_command(command()).await,
        Err(CommandError::QueueFull)
    ));
    assert!(first.await.unwrap().is_ok());
    assert!(second.await.unwrap().is_ok());
    assert_eq!(fake.link(0).executed.load(Ordering::SeqCst), 2);
    assert_eq!(fake.connects.load(Ordering::SeqCst), 5);
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, ConnectionEvent::Reconnecting { attempt: 4, .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_command_timeout_of_duration_max_means_no_timeout() {
    let fake = Arc::new(FakeConnector::default());
    let (config, _log) = config(|b| b.command_timeout(Duration::MAX));
    let client = start(config, &fake);
    assert!(client.send_app_command(command()).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn commands_time_out_while_disconnected() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_next(vec![
        ConnectError::Transport {
            message: "down".into(),
            source: None,
        };
        1000
    ]);
    let (config, _log) = config(|b| b.command_timeout(Duration::from_secs(2)));
    let client = start(config, &fake);
    assert!(matches!(
        client.send_app_command(command()).await,
        Err(CommandError::Timeout)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_resumed_session_completes_commands_in_flight_once() {
    let (config, log) = config(|b| b);
    let (fake, client) = connect_holding_commands(config).await;
    let in_flight = send_in_background(&client).await;
    let mark = log.lock().unwrap().len();
    fake.link(0).go_down(LinkDown::Detached {
        reason: "cable cut".into(),
    });
    wait_for(&log, mark, |e| *e == ConnectionEvent::Connected).await;
    fake.link(0).release();
    assert!(in_flight.await.unwrap().is_ok());
    assert_eq!(fake.connects.load(Ordering::SeqCst), 1);
    assert_eq!(fake.link(0).executed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_resume_fails_commands_in_flight_and_reconnects() {
    let (config, log) = config(|b| b);
    let (fake, client) = connect_holding_commands(config).await;
    fake.link(0)
        .resume_script
        .lock()
        .unwrap()
        .push_back(Err(ResumeFailure::Rejected {
            reason: "unknown session".into(),
        }));
    let in_flight = send_in_background(&client).await;
    fake.link(0).go_down(LinkDown::Detached {
        reason: "cable cut".into(),
    });
    assert!(matches!(
        in_flight.await.unwrap(),
        Err(CommandError::ConnectionLost)
    ));
    let lost = wait_for(&log, 0, |e| {
        matches!(e, ConnectionEvent::Error(ClientError::SessionLost { .. }))
    })
    .await;
    wait_for(&log, lost, |e| *e == ConnectionEvent::Connected).await;
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
    assert_eq!(fake.link(0).executed.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn disconnect_lets_in_flight_commands_finish_and_refuses_new_ones() {
    let (config, log) = config(|b| b);
    let (fake, client) = connect_holding_commands(config).await;
    let in_flight = send_in_background(&client).await;
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.disconnect().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        client.send_app_command(command()).await,
        Err(CommandError::NotConnected)
    ));
    assert!(!fake.link(0).is_closed());
    fake.link(0).release();
    assert!(in_flight.await.unwrap().is_ok());
    closing.await.unwrap();
    assert!(fake.link(0).is_closed());
    assert_eq!(
        log.lock().unwrap().last(),
        Some(&ConnectionEvent::Closed {
            reason: StopReason::Disconnected
        })
    );
}

#[tokio::test(start_paused = true)]
async fn disconnect_fails_commands_that_outlast_the_grace_period() {
    let (config, _log) = config(|b| b.disconnect_timeout(Duration::from_secs(1)));
    let (_fake, client) = connect_holding_commands(config).await;
    let in_flight = send_in_background(&client).await;
    client.disconnect().await;
    assert!(matches!(
        in_flight.await.unwrap(),
        Err(CommandError::ConnectionLost)
    ));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_the_connection() {
    let fake = Arc::new(FakeConnector::default());
    let (config, log) = config(|b| b);
    let client = connect(config, &fake).await.unwrap();
    drop(client);
    wait_for(&log, 0, |e| matches!(e, ConnectionEvent::Closed { .. })).await;
    assert!(fake.link(0).is_closed());
}

#[tokio::test(start_paused = true)]
async fn oversized_commands_are_refused_before_sending() {
    let fake = Arc::new(FakeConnector::default());
    let (config, _log) = config(|b| b.max_command_size(4));
    let client = connect(config, &fake).await.unwrap();
    // An empty message fits, one of more than 4 bytes does not.
    assert!(client.send_app_command(command()).await.is_ok());
    let large = AppToServerCommand {
        entry: Some(elarian_proto::app_to_server_command::Entry::CreateCustomer(
            elarian_proto::CreateCustomerCommand {
                customer_number: Some(elarian_proto::CustomerNumber {
                    number: "+254711000000".into(),
                    ..Default::default()
                }),
            },
        )),
    };
    assert!(matches!(
        client.send_app_command(large).await,
        Err(CommandError::TooLarge { limit: 4, .. })
    ));
    assert_eq!(fake.link(0).executed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn connect_gives_up_after_the_initial_connect_timeout() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_next(vec![
        ConnectError::Transport {
            message: "unreachable".into(),
            source: None,
        };
        10_000
    ]);
    let (config, log) = config(|b| b.initial_connect_timeout(Duration::from_secs(5)));
    let error = connect(config, &fake).await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    // The timeout says why: the last attempt's error is its source.
    let unreachable = ConnectError::Transport {
        message: "unreachable".into(),
        source: None,
    };
    assert_eq!(error.last_attempt(), &unreachable);
    let source = std::error::Error::source(&error).expect("the last attempt is the source");
    assert_eq!(source.to_string(), unreachable.to_string());
    wait_for(&log, 0, |e| {
        *e == ConnectionEvent::Closed {
            reason: StopReason::GaveUp {
                last: error.clone(),
            },
        }
    })
    .await;
    let attempts = fake.connects.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        fake.connects.load(Ordering::SeqCst),
        attempts,
        "no attempt after closing"
    );
}

fn rejected() -> LinkRequestError {
    LinkRequestError::Remote {
        code: 0x202,
        message: "too many concurrent requests".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejected_command_is_sent_again_until_it_is_processed() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_requests([rejected(), rejected(), rejected()]);
    let (config, _log) = config(|b| b);
    let client = connect(config, &fake).await.unwrap();
    assert_eq!(
        client.send_app_command(command()).await.unwrap(),
        AppToServerCommandReply::default()
    );
    assert_eq!(fake.attempts.load(Ordering::SeqCst), 4);
    assert_eq!(fake.link(0).executed.load(Ordering::SeqCst), 1);
    let stats = client.flow_stats();
    assert_eq!((stats.rejected_retried, stats.rejected_gave_up), (3, 0));
    assert!(
        stats.window < stats.max_window,
        "a REJECTED shrinks the window"
    );
}

#[tokio::test(start_paused = true)]
async fn other_errors_are_never_retried() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_requests([
        LinkRequestError::Remote {
            code: 0x201,
            message: "application error".into(),
        },
        LinkRequestError::Lost,
        LinkRequestError::TimedOut,
    ]);
    let (config, _log) = config(|b| b);
    let client = connect(config, &fake).await.unwrap();
    assert!(matches!(
        client.send_app_command(command()).await,
        Err(CommandError::Rejected { code: 0x201, .. })
    ));
    assert!(matches!(
        client.send_app_command(command()).await,
        Err(CommandError::ConnectionLost)
    ));
    assert!(matches!(
        client.send_app_command(command()).await,
        Err(CommandError::Timeout)
    ));
    assert_eq!(fake.attempts.load(Ordering::SeqCst), 3, "one attempt each");
    assert_eq!(fake.link(0).executed.load(Ordering::SeqCst), 0);
    assert_eq!(client.flow_stats().rejected_retried, 0);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_command_timeout_with_a_typed_error() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_requests(vec![rejected(); 100_000]);
    let timeout = Duration::from_secs(2);
    let (config, _log) = config(|b| b.command_timeout(timeout));
    let client = connect(config, &fake).await.unwrap();
    let started = tokio::time::Instant::now();
    let result = client.send_app_command(command()).await;
    assert!(
        matches!(result, Err(CommandError::Rejected { code: 0x202, .. })),
        "{result:?}"
    );
    assert!(started.elapsed() <= timeout, "{:?}", started.elapsed());
    let attempts = fake.attempts.load(Ordering::SeqCst);
    assert!(attempts > 3, "retried meanwhile ({attempts} attempts)");
    let stats = client.flow_stats();
    assert_eq!(stats.rejected_gave_up, 1);
    assert_eq!(stats.rejected_retried as usize, attempts - 1);
    assert_eq!(fake.link(0).executed.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn commands_beyond_the_window_wait_instead_of_failing() {
    let (config, _log) = config(|b| b.max_commands_in_flight(2));
    let (fake, client) = connect_holding_commands(config).await;
    let commands: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.send_app_command(command()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        fake.attempts.load(Ordering::SeqCst),
        2,
        "only the window is sent"
    );
    assert_eq!(client.flow_stats().in_flight, 2);
    fake.link(0).release();
    for command in commands {
        assert!(command.await.unwrap().is_ok());
    }
    assert_eq!(fake.attempts.load(Ordering::SeqCst), 5);
    assert_eq!(client.flow_stats().waited_for_window, 3);
}

#[tokio::test(start_paused = true)]
async fn an_injected_reconnect_delay_spaces_the_attempts() {
    let fake = Arc::new(FakeConnector::default());
    fake.fail_next(vec![
        ConnectError::Transport {
            message: "down".into(),
            source: None,
        };
        3
    ]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (config, log) = config(|b| {
        let seen = seen.clone();
        b.initial_connect_timeout(Duration::from_secs(120))
            .reconnect_delay(move |attempt| {
                seen.lock().unwrap().push(attempt);
                Duration::from_secs(10 * u64::from(attempt))
            })
    });
    let started = tokio::time::Instant::now();
    let client = connect(config, &fake).await.unwrap();
    // Three failures, so waits of 20 s, 30 s and 40 s before attempts 2, 3 and 4 (the attempt
    // number counts the first connection attempt too).
    assert_eq!(*seen.lock().unwrap(), vec![2, 3, 4]);
    assert!(
        started.elapsed() >= Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(91),
        "{:?}",
        started.elapsed()
    );
    let delays: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ConnectionEvent::Reconnecting { attempt, delay } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(
        delays,
        vec![
            (2, Duration::from_secs(20)),
            (3, Duration::from_secs(30)),
            (4, Duration::from_secs(40))
        ]
    );
    assert_eq!(fake.connects.load(Ordering::SeqCst), 4);
    client.disconnect().await;
}
