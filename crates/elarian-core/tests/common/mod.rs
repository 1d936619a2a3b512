//! An in-process Elarian-like server for the integration tests, built from elarian-transport's
//! RSocket `Server` over TCP on 127.0.0.1, plus a TCP proxy that can cut connections.

#![allow(dead_code)] // Each test binary uses a different part of the helpers.

pub mod proxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use elarian_core::proto::{
    AppToServerCommand, AppToServerCommandReply, GetCustomerStateReply, app_to_server_command,
    app_to_server_command_reply, get_customer_state_command,
};
use elarian_core::{
    BoxFuture, Client, ClientConfig, ClientConfigBuilder, ClientError, CommandError,
    ConnectionEvent, Endpoint,
};
use elarian_transport::io::{TcpListener, TlsListener, TlsServerOptions, WsListener};
use elarian_transport::{
    Connection, ErrorCode, Payload, RequestHandler, Server, ServerConfig, StreamError,
};
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const ORG: &str = "el_org_eu_1SJ2jx";
pub const APP: &str = "el_app_WZFQdt";
pub const KEY: &str = "el_k_test_80922f5e467e9d5e8067795c263ba0e43c6ef6de7ffa1923aaa189d2772042be";

/// One SETUP as the server saw it.
#[derive(Debug, Clone)]
pub struct SetupRecord {
    pub data: Bytes,
    pub metadata: Option<Bytes>,
    pub data_mime_type: String,
    pub metadata_mime_type: String,
    pub resume_token: Option<Bytes>,
}

/// What the server saw and how it behaves; survives restarts.
#[derive(Default)]
pub struct ServerState {
    pub setups: Mutex<Vec<SetupRecord>>,
    /// Executions per command id (the customer id of a `GetCustomerState` command).
    pub executions: Mutex<HashMap<String, usize>>,
    pub total_executions: AtomicUsize,
    /// Reject every SETUP with this message.
    pub reject: Mutex<Option<String>>,
    /// How long each command takes.
    pub command_delay: Mutex<Duration>,
    /// Server sides of the accepted connections, newest last.
    pub connections: Mutex<Vec<Connection>>,
    accepted: watch::Sender<usize>,
}

impl ServerState {
    pub fn setups(&self) -> Vec<SetupRecord> {
        self.setups.lock().unwrap().clone()
    }

    pub fn executions_of(&self, id: &str) -> usize {
        self.executions
            .lock()
            .unwrap()
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    /// The newest accepted connection (for sending notifications).
    pub fn latest_connection(&self) -> Connection {
        self.connections
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no connection")
    }

    /// Waits until at least `n` connections were accepted in total.
    pub async fn wait_accepted(&self, n: usize) {
        let mut rx = self.accepted.subscribe();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|c| *c >= n))
            .await
            .expect("timed out waiting for a connection")
            .expect("server state gone");
    }
}

/// Answers commands: `GetCustomerState{customer_id}` is echoed back (`description` = id) after
/// the configured delay and counted; anything else gets an empty reply.
struct CommandResponder {
    state: Arc<ServerState>,
}

impl RequestHandler for CommandResponder {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let state = self.state.clone();
        Box::pin(async move {
            let command = AppToServerCommand::decode(payload.data)
                .map_err(|e| StreamError::application(e.to_string()))?;
            let delay = *state.command_delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            state.total_executions.fetch_add(1, Ordering::SeqCst);
            let reply = match command.entry {
                Some(app_to_server_command::Entry::GetCustomerState(cmd)) => {
                    let id = match cmd.customer {
                        Some(get_customer_state_command::Customer::CustomerId(id)) => id,
                        _ => String::new(),
                    };
                    *state
                        .executions
                        .lock()
                        .unwrap()
                        .entry(id.clone())
                        .or_default() += 1;
                    AppToServerCommandReply {
                        entry: Some(app_to_server_command_reply::Entry::GetCustomerState(
                            GetCustomerStateReply {
                                status: true,
                                description: id,
                                data: None,
                            },
                        )),
                    }
                }
                _ => AppToServerCommandReply::default(),
            };
            Ok(Payload::new(reply.encode_to_vec()))
        })
    }
}

/// A command whose reply echoes `id`.
pub fn echo_command(id: &str) -> AppToServerCommand {
    AppToServerCommand {
        entry: Some(app_to_server_command::Entry::GetCustomerState(
            elarian_core::proto::GetCustomerStateCommand {
                customer: Some(get_customer_state_command::Customer::CustomerId(id.into())),
            },
        )),
    }
}

/// The id echoed in a reply to [`echo_command`].
pub fn echoed(reply: &AppToServerCommandReply) -> &str {
    match &reply.entry {
        Some(app_to_server_command_reply::Entry::GetCustomerState(r)) => &r.description,
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Sends an echo command for each of `ids` ("{prefix}{i}"), each on its own task, so that they
/// are all in flight (or queued) at once.
pub fn echo_commands_in_background(
    client: &Client,
    prefix: &str,
    ids: std::ops::Range<usize>,
) -> Vec<JoinHandle<Result<AppToServerCommandReply, CommandError>>> {
    ids.map(|i| {
        let client = client.clone();
        let command = echo_command(&format!("{prefix}{i}"));
        tokio::spawn(async move { client.send_app_command(command).await })
    })
    .collect()
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_at("127.0.0.1:0".parse().unwrap(), Arc::default()).await
    }

    /// Starts a server on `addr` (e.g. the address of a server that was shut down) with `state`.
    pub async fn start_at(addr: SocketAddr, state: Arc<ServerState>) -> TestServer {
        let mut listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        Self::serve(addr, state, move |server| async move {
            while let Ok((transport, _peer)) = listener.accept().await {
                server.serve_transport(transport);
            }
        })
    }

    /// A server behind TLS (for `tls://` endpoints).
    pub async fn start_tls(tls: TlsServerOptions) -> TestServer {
        let mut listener = TlsListener::bind("127.0.0.1:0", tls).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        Self::serve(addr, Arc::default(), move |server| async move {
            while let Ok((transport, _peer)) = listener.accept().await {
                server.serve_transport(transport);
            }
        })
    }

    /// A server behind plain WebSocket (for `ws://` endpoints).
    pub async fn start_ws() -> TestServer {
        let mut listener = WsListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        Self::serve(addr, Arc::default(), move |server| async move {
            while let Ok((transport, _peer)) = listener.accept().await {
                server.serve_transport(transport);
            }
        })
    }

    fn serve<F, Fut>(addr: SocketAddr, state: Arc<ServerState>, feed: F) -> TestServer
    where
        F: FnOnce(Server) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let server = Server::new(ServerConfig::default());
        let feeder = tokio::spawn(feed(server.clone()));
        let acceptor = {
            let state = state.clone();
            tokio::spawn(async move {
                while let Some(incoming) = server.accept().await {
                    let setup = incoming.setup();
                    state.setups.lock().unwrap().push(SetupRecord {
                        data: setup.payload.data.clone(),
                        metadata: setup.payload.metadata.clone(),
                        data_mime_type: setup.data_mime_type.to_string(),
                        metadata_mime_type: setup.metadata_mime_type.to_string(),
                        resume_token: setup.resume_token.clone(),
                    });
                    let reject = state.reject.lock().unwrap().clone();
                    if let Some(message) = reject {
                        incoming.reject(ErrorCode::RejectedSetup, message);
                        continue;
                    }
                    let connection = incoming.accept(Arc::new(CommandResponder {
                        state: state.clone(),
                    }));
                    state.connections.lock().unwrap().push(connection);
                    state.accepted.send_modify(|n| *n += 1);
                }
            })
        };
        TestServer {
            addr,
            state,
            tasks: vec![feeder, acceptor],
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::tcp(self.addr.ip().to_string(), self.addr.port())
    }

    /// Stops listening and closes every connection (sessions are forgotten).
    pub async fn shutdown(self) -> (SocketAddr, Arc<ServerState>) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let connections: Vec<Connection> =
            self.state.connections.lock().unwrap().drain(..).collect();
        for connection in connections {
            connection.close();
        }
        (self.addr, self.state)
    }
}

/// A client config for `endpoint` with the spec's test credentials and short test timings.
pub fn config(endpoint: Endpoint) -> ClientConfigBuilder {
    ClientConfig::builder()
        .org_id(ORG)
        .app_id(APP)
        .api_key(KEY)
        .endpoint(endpoint)
        .keepalive_interval(Duration::from_millis(200))
        .max_lifetime(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .initial_connect_timeout(Duration::from_secs(10))
        .command_timeout(Duration::from_secs(10))
        .reconnect_policy(
            elarian_core::ReconnectPolicy::default()
                .initial_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200)),
        )
}

/// Collects every event (registered on the builder, so it sees the early ones too).
#[derive(Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<ConnectionEvent>>>);

impl EventLog {
    pub fn attach(&self, builder: ClientConfigBuilder) -> ClientConfigBuilder {
        let log = self.0.clone();
        builder.on_event(move |event| log.lock().unwrap().push(event.clone()))
    }

    pub fn snapshot(&self) -> Vec<ConnectionEvent> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Waits until a `ConnectionLost` error after position `from`; returns its position.
    pub async fn wait_for_connection_lost(&self, from: usize) -> usize {
        self.wait_for(from, |e| {
            matches!(
                e,
                ConnectionEvent::Error(ClientError::ConnectionLost { .. })
            )
        })
        .await
    }

    /// Waits until an event after position `from` matches; returns its position.
    pub async fn wait_for(&self, from: usize, pred: impl Fn(&ConnectionEvent) -> bool) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.0.lock().unwrap().iter().skip(from).position(&pred) {
                return from + i;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("event not seen; log: {:?}", self.snapshot());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
