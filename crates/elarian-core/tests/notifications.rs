//! Notifications from the server: default replies, failure isolation and backpressure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{EventLog, TestServer, config, echo_command};
use elarian_core::proto::{
    DataMapValue, ServerToAppCustomerNotification, ServerToAppNotification,
    ServerToAppNotificationReply, ServerToSimulatorNotification,
    ServerToSimulatorNotificationReply, data_map_value, server_to_app_notification,
    server_to_simulator_notification,
};
use elarian_core::{
    BoxFuture, Client, ClientError, ConnectionEvent, HandlerError, NotificationError,
    NotificationHandler, Role, default_app_reply,
};
use elarian_transport::{ErrorCode, Payload, RequestError};
use prost::Message;

fn notification(customer_id: &str, app_data: &str) -> ServerToAppNotification {
    ServerToAppNotification {
        entry: Some(server_to_app_notification::Entry::Customer(
            ServerToAppCustomerNotification {
                org_id: common::ORG.into(),
                app_id: common::APP.into(),
                customer_id: customer_id.into(),
                app_data: Some(DataMapValue {
                    value: Some(data_map_value::Value::StringVal(app_data.into())),
                }),
                ..Default::default()
            },
        )),
    }
}

async fn notify(
    server: &TestServer,
    notification: &ServerToAppNotification,
) -> ServerToAppNotificationReply {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        server
            .state
            .latest_connection()
            .request_response(Payload::new(notification.encode_to_vec())),
    )
    .await
    .expect("the client answers")
    .expect("a reply, not an error");
    ServerToAppNotificationReply::decode(reply.data).unwrap()
}

/// Sends `count` notifications (customers "c0", "c1", ...) with `app_data`, each on its own
/// task so that they are all in flight at once.
fn notify_in_background(
    server: &TestServer,
    count: usize,
    app_data: &str,
) -> Vec<tokio::task::JoinHandle<Result<Payload, RequestError>>> {
    let connection = server.state.latest_connection();
    (0..count)
        .map(|i| {
            let connection = connection.clone();
            let n = notification(&format!("c{i}"), app_data);
            tokio::spawn(async move {
                connection
                    .request_response(Payload::new(n.encode_to_vec()))
                    .await
            })
        })
        .collect()
}

/// Never answers, panics on customer "boom", fails on "fail", otherwise replies with app data
/// "handled".
struct TestHandler;

impl NotificationHandler for TestHandler {
    fn on_app_notification(
        &self,
        notification: ServerToAppNotification,
    ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
        Box::pin(async move {
            let Some(server_to_app_notification::Entry::Customer(customer)) = &notification.entry
            else {
                return Ok(default_app_reply(&notification));
            };
            match customer.customer_id.as_str() {
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(default_app_reply(&notification))
                }
                "boom" => panic!("handler bug"),
                "fail" => Err(HandlerError::new("database down")),
                _ => Ok(ServerToAppNotificationReply {
                    data_update: Some(elarian_core::proto::AppDataUpdate {
                        data: Some(DataMapValue {
                            value: Some(data_map_value::Value::StringVal("handled".into())),
                        }),
                    }),
                    message: None,
                }),
            }
        })
    }
}

#[tokio::test]
async fn handler_reply_timeout_panic_and_failure() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let config = log
        .attach(config(server.endpoint()))
        .notification_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let client = Client::connect(config, TestHandler).await.unwrap();
    server.state.wait_accepted(1).await;

    let handled = notify(&server, &notification("ok", "{}")).await;
    assert_eq!(
        handled.data_update.unwrap().data.unwrap().value,
        Some(data_map_value::Value::StringVal("handled".into()))
    );

    // Timeout: the default reply carries the incoming app data unchanged.
    let slow = notification("slow", "{\"step\":3}");
    assert_eq!(notify(&server, &slow).await, default_app_reply(&slow));
    log.wait_for(0, |e| {
        matches!(
            e,
            ConnectionEvent::Error(ClientError::Notification(NotificationError::Timeout { .. }))
        )
    })
    .await;

    let boom = notification("boom", "{\"step\":4}");
    let reply = notify(&server, &boom).await;
    assert_eq!(reply, default_app_reply(&boom));
    assert!(reply.data_update.is_some());
    log.wait_for(0, |e| {
        matches!(
            e,
            ConnectionEvent::Error(ClientError::Notification(
                NotificationError::HandlerPanicked { message }
            )) if message.contains("handler bug")
        )
    })
    .await;

    let fail = notification("fail", "{\"step\":5}");
    assert_eq!(notify(&server, &fail).await, default_app_reply(&fail));

    // The connection survived all of it, both ways.
    assert!(client.send_app_command(echo_command("after")).await.is_ok());
    assert!(
        notify(&server, &notification("ok", "{}"))
            .await
            .data_update
            .is_some()
    );
    assert_eq!(server.state.setups().len(), 1);
    client.disconnect().await;
}

#[tokio::test]
async fn undecodable_notification_gets_an_application_error() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let client = Client::connect(log.attach(config(server.endpoint())).build().unwrap(), ())
        .await
        .unwrap();
    server.state.wait_accepted(1).await;
    let result = server
        .state
        .latest_connection()
        .request_response(Payload::new(vec![0xff, 0xff, 0xff, 0xff]))
        .await;
    match result {
        Err(RequestError::Remote { code, .. }) => assert_eq!(code, ErrorCode::ApplicationError),
        other => panic!("unexpected {other:?}"),
    }
    log.wait_for(0, |e| {
        matches!(
            e,
            ConnectionEvent::Error(ClientError::Notification(NotificationError::Decode { .. }))
        )
    })
    .await;
    // No handler: the default reply.
    let n = notification("c1", "{\"x\":1}");
    assert_eq!(notify(&server, &n).await, default_app_reply(&n));
    client.disconnect().await;
}

/// Counts how many calls run at once.
struct Gauge {
    running: AtomicUsize,
    max: AtomicUsize,
    done: AtomicUsize,
}

struct GaugeHandler(Arc<Gauge>);

impl NotificationHandler for GaugeHandler {
    fn on_app_notification(
        &self,
        notification: ServerToAppNotification,
    ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
        let gauge = self.0.clone();
        Box::pin(async move {
            let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.max.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            gauge.running.fetch_sub(1, Ordering::SeqCst);
            gauge.done.fetch_add(1, Ordering::SeqCst);
            Ok(default_app_reply(&notification))
        })
    }
}

#[tokio::test]
async fn at_most_n_handlers_run_under_a_flood() {
    const LIMIT: usize = 4;
    const FLOOD: usize = 200;
    let server = TestServer::start().await;
    let gauge = Arc::new(Gauge {
        running: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
    });
    let config = config(server.endpoint())
        .max_concurrent_notifications(LIMIT)
        .build()
        .unwrap();
    let client = Client::connect(config, GaugeHandler(gauge.clone()))
        .await
        .unwrap();
    server.state.wait_accepted(1).await;
    let flood = notify_in_background(&server, FLOOD, "{}");
    for request in flood {
        assert!(request.await.unwrap().is_ok());
    }
    assert_eq!(gauge.done.load(Ordering::SeqCst), FLOOD);
    assert_eq!(gauge.max.load(Ordering::SeqCst), LIMIT);
    client.disconnect().await;
}

struct SimulatorHandler(tokio::sync::mpsc::Sender<ServerToSimulatorNotification>);

impl NotificationHandler for SimulatorHandler {
    fn on_simulator_notification(
        &self,
        notification: ServerToSimulatorNotification,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let sender = self.0.clone();
        Box::pin(async move {
            sender
                .send(notification)
                .await
                .map_err(HandlerError::from_source)
        })
    }
}

#[tokio::test]
async fn simulator_notifications_reach_the_handler() {
    let server = TestServer::start().await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let config = config(server.endpoint())
        .role(Role::Simulator)
        .build()
        .unwrap();
    let client = Client::connect(config, SimulatorHandler(tx)).await.unwrap();
    server.state.wait_accepted(1).await;
    let sent = ServerToSimulatorNotification {
        entry: Some(server_to_simulator_notification::Entry::SendMessage(
            elarian_core::proto::SendMessageSimulatorNotification {
                org_id: common::ORG.into(),
                customer_id: "el_cst_1".into(),
                message_id: "msg_1".into(),
                ..Default::default()
            },
        )),
    };
    let reply = server
        .state
        .latest_connection()
        .request_response(Payload::new(sent.encode_to_vec()))
        .await
        .unwrap();
    assert_eq!(
        ServerToSimulatorNotificationReply::decode(reply.data).unwrap(),
        ServerToSimulatorNotificationReply {}
    );
    assert_eq!(rx.recv().await, Some(sent));
    client.disconnect().await;
}

/// Holds every handler until the gate opens; counts how many run at once.
struct GatedHandler {
    gauge: Arc<Gauge>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl NotificationHandler for GatedHandler {
    fn on_app_notification(
        &self,
        notification: ServerToAppNotification,
    ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
        let gauge = self.gauge.clone();
        let gate = self.gate.clone();
        Box::pin(async move {
            let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.max.fetch_max(now, Ordering::SeqCst);
            let _pass = gate.acquire().await.map_err(HandlerError::from_source)?;
            gauge.running.fetch_sub(1, Ordering::SeqCst);
            gauge.done.fetch_add(1, Ordering::SeqCst);
            Ok(default_app_reply(&notification))
        })
    }
}

/// Under a flood of large notifications, the client runs LIMIT handlers, holds PENDING more and
/// stops reading: the bytes reaching its socket stop well short of what the server sent,
/// nothing is refused, and once handlers finish every notification is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_pauses_reading_and_no_notification_is_rejected() {
    const LIMIT: usize = 2;
    const PENDING: usize = 2;
    // Well beyond what the socket buffers on the way hold (about 10 MiB on loopback).
    const FLOOD: usize = 48;
    const SIZE: usize = 1 << 20;
    let server = TestServer::start().await;
    let proxy = common::proxy::Proxy::start(server.addr).await;
    let gauge = Arc::new(Gauge {
        running: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
    });
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let config = config(elarian_core::Endpoint::tcp("127.0.0.1", proxy.addr.port()))
        .max_concurrent_notifications(LIMIT)
        .max_pending_notifications(PENDING)
        .notification_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let handler = GatedHandler {
        gauge: gauge.clone(),
        gate: gate.clone(),
    };
    let client = Client::connect(config, handler).await.unwrap();
    server.state.wait_accepted(1).await;
    let big = "x".repeat(SIZE);
    let flood = notify_in_background(&server, FLOOD, &big);
    let total = (FLOOD * SIZE) as u64;

    // LIMIT handlers start and the client reads on into its queue; then the bytes reaching it
    // settle below the total. "Settled" is three quiet samples in a row, not one: on a loaded
    // machine a single 300 ms pause can be the scheduler, not backpressure.
    let queued = ((LIMIT + PENDING) * SIZE) as u64;
    let settle = async {
        while gauge.running.load(Ordering::SeqCst) < LIMIT || proxy.bytes_to_client() < queued {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (mut last, mut quiet) = (proxy.bytes_to_client(), 0);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = proxy.bytes_to_client();
            quiet = if now == last { quiet + 1 } else { 0 };
            if quiet == 3 {
                return now;
            }
            last = now;
        }
    };
    let delivered = tokio::time::timeout(Duration::from_secs(20), settle)
        .await
        .expect("the bytes reaching the client settle");
    assert!(
        delivered < total / 2,
        "{delivered} of {total} bytes reached the client while it was saturated"
    );
    // It read on past the handler limit, into its queue.
    assert!(delivered >= queued, "only {delivered} bytes read");
    assert_eq!(gauge.max.load(Ordering::SeqCst), LIMIT);
    assert_eq!(gauge.done.load(Ordering::SeqCst), 0);

    // Handlers finish: reading resumes and every notification is answered, none refused.
    gate.add_permits(FLOOD);
    for request in flood {
        let reply = tokio::time::timeout(Duration::from_secs(30), request)
            .await
            .expect("answered in time")
            .unwrap();
        assert!(reply.is_ok(), "{reply:?}");
    }
    assert_eq!(gauge.done.load(Ordering::SeqCst), FLOOD);
    assert_eq!(gauge.max.load(Ordering::SeqCst), LIMIT);
    assert!(proxy.bytes_to_client() >= total);
    client.disconnect().await;
}

/// Replies to the app data with the reply to a command it sends for each notification.
struct CommandingHandler {
    client: Arc<std::sync::OnceLock<Client>>,
    gauge: Arc<Gauge>,
}

impl NotificationHandler for CommandingHandler {
    fn on_app_notification(
        &self,
        notification: ServerToAppNotification,
    ) -> BoxFuture<'static, Result<ServerToAppNotificationReply, HandlerError>> {
        let client = self.client.get().cloned();
        let gauge = self.gauge.clone();
        Box::pin(async move {
            let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.max.fetch_max(now, Ordering::SeqCst);
            let Some(server_to_app_notification::Entry::Customer(customer)) = &notification.entry
            else {
                return Err(HandlerError::new("not a customer notification"));
            };
            let client = client.ok_or_else(|| HandlerError::new("no client yet"))?;
            let reply = client
                .send_app_command(echo_command(&customer.customer_id))
                .await
                .map_err(HandlerError::from_source)?;
            gauge.running.fetch_sub(1, Ordering::SeqCst);
            gauge.done.fetch_add(1, Ordering::SeqCst);
            Ok(ServerToAppNotificationReply {
                data_update: Some(elarian_core::proto::AppDataUpdate {
                    data: Some(DataMapValue {
                        value: Some(data_map_value::Value::StringVal(
                            common::echoed(&reply).to_owned(),
                        )),
                    }),
                }),
                message: None,
            })
        })
    }
}

/// The common pattern of a handler that sends a command and awaits its reply: with every
/// handler slot taken by such handlers, their replies still arrive (the client reads on while
/// further notifications wait), so all complete without hitting the notification timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_sending_commands_complete_while_every_slot_is_taken() {
    const LIMIT: usize = 2;
    const FLOOD: usize = 40;
    let server = TestServer::start().await;
    let log = EventLog::default();
    let gauge = Arc::new(Gauge {
        running: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
    });
    let slot = Arc::new(std::sync::OnceLock::new());
    let config = log
        .attach(config(server.endpoint()))
        .max_concurrent_notifications(LIMIT)
        .notification_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let handler = CommandingHandler {
        client: slot.clone(),
        gauge: gauge.clone(),
    };
    let client = Client::connect(config, handler).await.unwrap();
    assert!(slot.set(client.clone()).is_ok());
    server.state.wait_accepted(1).await;
    let flood = notify_in_background(&server, FLOOD, "{}");
    for (i, request) in flood.into_iter().enumerate() {
        let reply = tokio::time::timeout(Duration::from_secs(30), request)
            .await
            .expect("answered in time")
            .unwrap()
            .expect("a reply, not an error");
        let reply = ServerToAppNotificationReply::decode(reply.data).unwrap();
        assert_eq!(
            reply.data_update.and_then(|u| u.data).and_then(|d| d.value),
            Some(data_map_value::Value::StringVal(format!("c{i}"))),
            "notification {i} got the default reply"
        );
    }
    assert_eq!(gauge.done.load(Ordering::SeqCst), FLOOD);
    assert_eq!(gauge.max.load(Ordering::SeqCst), LIMIT);
    assert!(
        !log.snapshot().iter().any(|e| matches!(
            e,
            ConnectionEvent::Error(ClientError::Notification(NotificationError::Timeout { .. }))
        )),
        "a handler hit the notification timeout: {:?}",
        log.snapshot()
    );
    client.disconnect().await;
}
