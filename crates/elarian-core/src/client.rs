//! The client handle: commands, events and the lifecycle calls.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use elarian_proto::{
    AppToServerCommand, AppToServerCommandReply, SimulatorToServerCommand,
    SimulatorToServerCommandReply,
};
use futures_util::FutureExt;
use prost::Message;

use crate::arena::CommandArena;
use crate::config::ClientConfig;
use crate::dispatch::Dispatcher;
use crate::error::{CommandError, ConnectError};
use crate::event::{ConnectionEvent, EventHub, EventStream, StopReason};
use crate::handler::NotificationHandler;
use crate::link::{Connector, Link, LinkRequestError};
use crate::reply::{check_app_reply, check_simulator_reply};
use crate::supervisor::{Availability, Shared, Supervisor, disconnect_bound};
use crate::window::{CommandWindow, FlowStats};

/// RSocket's REJECTED error code: the request was not processed (RSocket 1.0, "Error Codes").
const REJECTED: u32 = 0x202;

/// A connection to Elarian that lives as long as the application: it reconnects (and resumes)
/// on its own, queues commands while reconnecting and dispatches the server's notifications.
///
/// `Client` is a cheap handle (`Clone`); the connection closes when
/// [`disconnect`](Client::disconnect) is called or the last handle is dropped.
///
/// ```no_run
/// use elarian_core::{Client, ClientConfig};
/// use elarian_core::proto::{AppToServerCommand, GenerateAuthTokenCommand, app_to_server_command};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ClientConfig::builder()
///     .org_id("el_org_eu_1SJ2jx")
///     .app_id("el_app_WZFQdt")
///     .api_key("el_k_test_…")
///     .build()?;
/// let client = Client::connect(config, ()).await?;
/// let reply = client
///     .send_app_command(AppToServerCommand {
///         entry: Some(app_to_server_command::Entry::GenerateAuthToken(
///             GenerateAuthTokenCommand {},
///         )),
///     })
///     .await?;
/// println!("{reply:?}");
/// client.disconnect().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    pub(crate) shared: Arc<Shared>,
    /// Where commands are encoded (see `arena`).
    arena: CommandArena,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        // The supervisor only holds `Shared`, so it learns here that nobody can use the client.
        self.shared.begin_shutdown(StopReason::Disconnected);
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("app_id", &self.inner.shared.config.app_id)
            .field("role", &self.inner.shared.config.role)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// Connects and resolves once the first connection is up.
    ///
    /// Failed attempts are retried by the reconnect policy; this fails with
    /// [`ConnectError::Rejected`] at once if the server refuses the credentials, with
    /// [`ConnectError::AttemptsExhausted`] when the policy gives up and with
    /// [`ConnectError::Timeout`] after the config's initial connect timeout. Must be called within
    /// a Tokio runtime.
    pub async fn connect(
        config: ClientConfig,
        handler: impl NotificationHandler,
    ) -> Result<Client, ConnectError> {
        let client = Client::start(config, handler);
        client.wait_connected().await?;
        Ok(client)
    }

    /// Starts the client without waiting: the connection is opened in the background and
    /// commands sent meanwhile wait for it (within the queue limit and the command timeout).
    /// Subscribe to [`events`](Client::events) to follow it.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the connection is driven by a spawned task).
    pub fn start(config: ClientConfig, handler: impl NotificationHandler) -> Client {
        let events = match &config.event_hub {
            Some(hub) => hub.clone(),
            None => Arc::new(EventHub::with_callbacks(config.callbacks.clone())),
        };
        let window = Arc::new(CommandWindow::new(config.max_commands_in_flight));
        let dispatcher = Arc::new(Dispatcher::new(
            config.role,
            Arc::new(handler),
            config.max_concurrent_notifications,
            config.notification_timeout,
            events.clone(),
            window.clone(),
        ));
        let connector = Arc::new(crate::rsocket::RsocketConnector::new(&config, dispatcher));
        Client::start_with(config, events, window, connector)
    }

    pub(crate) fn start_with(
        config: ClientConfig,
        events: Arc<EventHub>,
        window: Arc<CommandWindow>,
        connector: Arc<dyn Connector>,
    ) -> Client {
        let shared = Arc::new(Shared::new(config, events, window));
        shared.events.emit(ConnectionEvent::Pending);
        let supervisor = Supervisor::new(shared.clone(), connector);
        tokio::spawn(supervisor.run());
        Client {
            inner: Arc::new(ClientInner {
                shared,
                arena: CommandArena::default(),
            }),
        }
    }

    /// Waits until the first connection is up, bounded by the initial connect timeout (which
    /// then stops the client).
    pub(crate) async fn wait_connected(&self) -> Result<(), ConnectError> {
        let shared = &self.inner.shared;
        let mut first = shared.first_connect.subscribe();
        let waited = tokio::time::timeout(
            shared.config.initial_connect_timeout,
            first.wait_for(|outcome| outcome.is_some()),
        )
        .await;
        match waited {
            Ok(Ok(outcome)) => outcome.clone().unwrap_or(Err(ConnectError::Closed)),
            Ok(Err(_)) => Err(ConnectError::Closed),
            Err(_elapsed) => {
                // Say why: the last attempt's error (refused, certificate unknown, …), if any.
                let timeout = ConnectError::Timeout {
                    last: shared.last_failure.borrow().clone().map(Box::new),
                };
                shared.begin_shutdown(StopReason::GaveUp {
                    last: timeout.clone(),
                });
                Err(timeout)
            }
        }
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.shared.config
    }

    /// Whether a connection is up right now.
    pub fn is_connected(&self) -> bool {
        matches!(*self.inner.shared.state.borrow(), Availability::Up(_))
    }

    /// A stream of the connection events emitted from now on. It ends after `Closed`; a slow
    /// subscriber skips events rather than slowing the client down.
    pub fn events(&self) -> EventStream {
        self.inner.shared.events.subscribe()
    }

    /// Registers a callback for every future [`ConnectionEvent`]. It runs on the runtime task:
    /// keep it short and non-blocking. For events before `connect` returns, register it with
    /// [`ClientConfigBuilder::on_event`](crate::ClientConfigBuilder::on_event).
    pub fn on_event(&self, callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static) {
        self.inner.shared.events.add_callback(Arc::new(callback));
    }

    /// Sends an app command and returns the server's reply.
    ///
    /// A reply whose boolean `status` is false becomes [`CommandError::Failed`]; replies with an
    /// enum status (send message, initiate payment, messaging consent) are returned as they are.
    ///
    /// The command is encoded (and checked against `max_command_size`) when this is called, so
    /// the returned future holds only the encoded bytes and does not borrow the client.
    pub fn send_app_command(
        &self,
        command: AppToServerCommand,
    ) -> impl Future<Output = Result<AppToServerCommandReply, CommandError>> + Send + use<> {
        // Encoded before the future exists: an `async fn` would keep the command (hundreds of
        // bytes) in its state, and every layer above would copy it along (see docs/benchmarks.md).
        let data = self.encode(&command);
        let client = self.clone();
        async move {
            let reply = client.request(data?).await?;
            let reply = AppToServerCommandReply::decode(reply).map_err(CommandError::Decode)?;
            check_app_reply(&reply)?;
            Ok(reply)
        }
    }

    /// Sends an app command that the caller encoded itself (the bytes of an
    /// `AppToServerCommand`, as `prost` would write them) and returns the server's reply, as
    /// [`send_app_command`](Client::send_app_command) does; the size limit applies the same way.
    ///
    /// For callers that write their most frequent commands straight from their own data rather
    /// than building the message first (the SDK does, for `get_state` and `update_metadata`).
    pub fn send_encoded_app_command(
        &self,
        command: Vec<u8>,
    ) -> impl Future<Output = Result<AppToServerCommandReply, CommandError>> + Send + use<> {
        // Copied into the arena, whose bytes the retry copy shares without allocating.
        self.send_app_command_with(command.len(), &mut |buf| buf.extend_from_slice(&command))
    }

    /// Sends an app command that `write` encodes (the bytes of an `AppToServerCommand`, as
    /// `prost` would write them) into a buffer with room for `len` bytes, and returns the
    /// server's reply, as [`send_app_command`](Client::send_app_command) does; the size limit
    /// applies to what `write` wrote.
    ///
    /// Spares the allocation of the caller's own buffer that
    /// [`send_encoded_app_command`](Client::send_encoded_app_command) takes: the client encodes
    /// into a buffer it reuses from command to command.
    ///
    /// ```no_run
    /// use elarian_core::Client;
    /// use elarian_core::proto::{AppToServerCommand, GenerateAuthTokenCommand, app_to_server_command};
    /// use elarian_core::proto::prost::Message;
    ///
    /// # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let command = AppToServerCommand {
    ///     entry: Some(app_to_server_command::Entry::GenerateAuthToken(GenerateAuthTokenCommand {})),
    /// };
    /// let reply = client
    ///     .send_app_command_with(command.encoded_len(), &mut |buf| command.encode_raw(buf))
    ///     .await?;
    /// println!("{reply:?}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_app_command_with(
        &self,
        len: usize,
        // A `dyn` writer: a generic one would be captured by the returned future's type.
        write: &mut dyn FnMut(&mut BytesMut),
    ) -> impl Future<Output = Result<AppToServerCommandReply, CommandError>> + Send + use<> {
        self.send_app_command_with_raw_reply(len, write)
            .map(|reply| {
                let reply =
                    AppToServerCommandReply::decode(reply?).map_err(CommandError::Decode)?;
                check_app_reply(&reply)?;
                Ok(reply)
            })
    }

    /// Sends an app command as [`send_app_command_with`](Client::send_app_command_with) does,
    /// and returns the reply's bytes (an `AppToServerCommandReply`) undecoded: for callers that
    /// read their most frequent replies straight into their own types. The reply's status is
    /// not checked: decode it and check it with [`check_app_reply`](crate::check_app_reply)
    /// (or as that does).
    pub fn send_app_command_with_raw_reply(
        &self,
        len: usize,
        write: &mut dyn FnMut(&mut BytesMut),
    ) -> impl Future<Output = Result<Bytes, CommandError>> + Send + use<> {
        let limit = self.config().max_command_size;
        let data = self.inner.arena.encode(len, write);
        let data = if data.len() > limit {
            Err(CommandError::TooLarge {
                size: data.len(),
                limit,
            })
        } else {
            Ok(data)
        };
        let client = self.clone();
        async move { client.request(data?).await }
    }

    /// Sends a simulator command (on a [`Role::Simulator`](crate::Role::Simulator) client) and
    /// returns the server's reply; `status: false` becomes [`CommandError::Failed`].
    ///
    /// Encoded when called, as [`send_app_command`](Client::send_app_command) is.
    pub fn send_simulator_command(
        &self,
        command: SimulatorToServerCommand,
    ) -> impl Future<Output = Result<SimulatorToServerCommandReply, CommandError>> + Send + use<>
    {
        let data = self.encode(&command);
        let client = self.clone();
        async move {
            let reply = client.request(data?).await?;
            let reply =
                SimulatorToServerCommandReply::decode(reply).map_err(CommandError::Decode)?;
            check_simulator_reply(reply)
        }
    }

    async fn request(&self, data: Bytes) -> Result<Bytes, CommandError> {
        let shared = &self.inner.shared;
        // Counted from here so that `disconnect` also waits for commands about to be sent.
        let _in_flight = shared.in_flight.enter();
        // The link enforces the deadline for the exchange itself (one timer per connection
        // rather than one per command); only waiting for a link takes a timer of its own.
        let deadline = deadline_after(shared.config.command_timeout);
        let mut retry = 0;
        loop {
            // A slot in the window of commands in flight (see `window`): waits, within the
            // command's timeout, while the window is full.
            let slot = shared
                .window
                .acquire(deadline)
                .await
                .map_err(|_| CommandError::Timeout)?;
            let link = match self.link_if_up() {
                Some(link) => link?,
                // Boxed: waiting for a reconnection is rare, and its state (a timer among it)
                // would otherwise enlarge every command's future.
                None => Box::pin(tokio::time::timeout_at(deadline, self.current_link()))
                    .await
                    .unwrap_or(Err(CommandError::Timeout))?,
            };
            let result = match link.connection() {
                Some(connection) => connection
                    .request_response_until(elarian_transport::Payload::new(data.clone()), deadline)
                    .await
                    .map(|reply| reply.data)
                    .map_err(crate::rsocket::link_error),
                None => link.request(data.clone(), deadline).await,
            };
            drop(slot);
            match result {
                Ok(reply) => {
                    shared.window.on_answered();
                    return Ok(reply);
                }
                // RSocket guarantees a REJECTED request was not processed: sending it again
                // cannot run it twice. Any other error may follow processing and is final.
                Err(LinkRequestError::Remote { code, message }) if code == REJECTED => {
                    shared.window.on_rejected();
                    let Some(delay) = shared.window.retry_delay(retry, deadline) else {
                        return Err(CommandError::Rejected { code, message });
                    };
                    tracing::trace!(retry, ?delay, %message, "command rejected; retrying");
                    // Boxed: rare, and a timer would enlarge every command's future.
                    Box::pin(tokio::time::sleep(delay)).await;
                    retry += 1;
                }
                Err(LinkRequestError::Remote { code, message }) => {
                    shared.window.on_answered();
                    return Err(CommandError::Rejected { code, message });
                }
                Err(LinkRequestError::Lost) => return Err(CommandError::ConnectionLost),
                Err(LinkRequestError::TimedOut) => return Err(CommandError::Timeout),
            }
        }
    }

    /// The counters of the client's flow control: commands retried after a REJECTED, commands
    /// that waited for (or timed out waiting for) a slot in the window of commands in flight,
    /// and the window now. See
    /// [`ClientConfigBuilder::max_commands_in_flight`](crate::ClientConfigBuilder::max_commands_in_flight).
    pub fn flow_stats(&self) -> FlowStats {
        self.inner.shared.window.stats()
    }

    /// The session to send on when it is up (or the client closed), without waiting.
    fn link_if_up(&self) -> Option<Result<Arc<dyn Link>, CommandError>> {
        match &*self.inner.shared.state.borrow() {
            Availability::Up(link) => Some(Ok(link.clone())),
            Availability::Closed => Some(Err(CommandError::NotConnected)),
            Availability::Down => None,
        }
    }

    /// The session to send on, waiting for a reconnection if needed.
    async fn current_link(&self) -> Result<Arc<dyn Link>, CommandError> {
        let shared = &self.inner.shared;
        let mut state = shared.state.subscribe();
        match &*state.borrow_and_update() {
            Availability::Up(link) => return Ok(link.clone()),
            Availability::Closed => return Err(CommandError::NotConnected),
            Availability::Down => {}
        }
        let _queued = shared
            .queue
            .try_acquire()
            .map_err(|_| CommandError::QueueFull)?;
        loop {
            if state.changed().await.is_err() {
                return Err(CommandError::NotConnected);
            }
            match &*state.borrow_and_update() {
                Availability::Up(link) => return Ok(link.clone()),
                Availability::Closed => return Err(CommandError::NotConnected),
                Availability::Down => {}
            }
        }
    }

    /// Closes the client gracefully: new commands fail with [`CommandError::NotConnected`],
    /// commands in flight get up to the disconnect timeout to finish (the rest fail), the RSocket
    /// session is closed and a `Closed` event is emitted. Idempotent; never hangs.
    pub async fn disconnect(&self) {
        let shared = &self.inner.shared;
        shared.begin_shutdown(StopReason::Disconnected);
        let mut finished = shared.finished.subscribe();
        let bound = disconnect_bound(&shared.config);
        if tokio::time::timeout(bound, finished.wait_for(|done| *done))
            .await
            .is_err()
        {
            tracing::warn!("elarian disconnect did not complete within {bound:?}");
        }
    }
}

/// Now plus `timeout`, or an instant decades away when that overflows: a command timeout of
/// `Duration::MAX` means "no timeout", not a panic.
fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

impl Client {
    /// A command's bytes, in the client's arena, checked against `max_command_size`.
    fn encode(&self, message: &impl Message) -> Result<Bytes, CommandError> {
        let limit = self.config().max_command_size;
        let size = message.encoded_len();
        if size > limit {
            return Err(CommandError::TooLarge { size, limit });
        }
        Ok(self.inner.arena.encode(size, |buf| message.encode_raw(buf)))
    }
}
