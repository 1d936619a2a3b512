//! The client runtime of the Elarian SDK: it owns the connection to Elarian for the whole life
//! of the application ("1 second or 1 year"), and carries commands to the server and
//! notifications back to the application.
//!
//! # Architecture
//!
//! ```text
//!  Client (cheap handle, Clone)                    supervisor task (one per client)
//!  ├─ send_app_command ──┐                         ├─ connect: transport + SETUP (AppConnectionMetadata)
//!  ├─ send_simulator_..  ├─ watch<Availability> ◄──┤  on loss: RESUME the same session (nothing lost,
//!  │   (waits while down,│   Up(session)           │  nothing run twice); if rejected: new session
//!  │    bounded queue +  │   Down / Closed         ├─ backoff: jittered exponential or the app's delay
//!  │    command timeout) ▼                         └─ events: Pending, Connecting, Connected,
//!  │                 RSocket session                    Reconnecting{attempt, delay}, Error, Closed
//!  │                (elarian-transport)                        │
//!  └─ events() / on_event ◄─────────── broadcast + callbacks ◄─┘
//!
//!  server REQUEST_RESPONSE ─► dispatcher: decode ─► permit (N at once) ─► handler task
//!                             (timeout, panic and error ─► default reply + Error event)
//! ```
//!
//! - Errors say why: a [`ConnectError::Timeout`] carries the last attempt's error (connection
//!   refused, certificate not trusted, …) as its [`source`](std::error::Error::source), and
//!   transport errors keep theirs (down to the operating system's or rustls' error);
//!   `is_timeout()`-style helpers cover the cases apps branch on.
//! - [`config`](ClientConfig): what to connect to and how (credentials kept in a [`Secret`]),
//!   validated by [`ClientConfigBuilder::build`].
//! - The supervisor reconnects according to the [`ReconnectPolicy`] and, with resumption on
//!   (the default), resumes the RSocket session so in-flight commands survive a dropped
//!   connection. A rejected SETUP (bad credentials) is final: [`ConnectError::Rejected`].
//! - Commands on a healthy connection go straight to the session; while reconnecting they wait,
//!   bounded by `max_queued_commands` ([`CommandError::QueueFull`]) and the command timeout.
//! - Notifications go to a [`NotificationHandler`], each call in its own task, bounded by the
//!   notification timeout; a handler that fails, panics or times out costs one notification
//!   (answered with [`default_app_reply`]: the app data unchanged, no message), never the
//!   connection, and is reported as [`ConnectionEvent::Error`].
//!
//! # Backpressure
//!
//! Notifications are bounded in two levels, and none is refused or lost (a server may not retry
//! one):
//!
//! 1. At most `max_concurrent_notifications` handlers run at once. Notifications received while
//!    all are busy wait in the client, in arrival order, up to `max_pending_notifications`
//!    (default 1024), and start as handlers finish. The connection keeps reading meanwhile, so
//!    the replies to this client's own commands still arrive: a handler that sends a command
//!    and awaits its reply (say, a reminder handler that sends an SMS) completes even when
//!    every handler slot is taken by such handlers.
//! 2. Once `max_pending_notifications` wait (or 64 MiB of them), the connection stops reading
//!    from the socket until a handler finishes
//!    ([`InboundOverflow::PauseReading`](elarian_transport::InboundOverflow) in
//!    `elarian-transport`): unread notifications stay in the socket buffers and then at the
//!    server, whose sends block. So memory stays bounded however fast the server sends.
//!
//! At the second level, replies to this client's commands wait behind the unread notifications
//! too, so a handler that awaits a command's reply may wait until another handler finishes.
//! That pause is bounded: every handler is cut off by the notification timeout (its
//! notification then gets the default reply), after which reading resumes. The client's
//! KEEPALIVEs keep going out while reading is paused, and the time spent paused does not count
//! towards the keepalive lifetime. A notification's timeout starts when its handler starts, not
//! while it waits for a slot.
//!
//! The client's own commands are bounded too: at most `max_commands_in_flight` are sent and not
//! yet answered; the others wait for a slot within their timeout. A command the server answers
//! with RSocket REJECTED (not processed: its own limit was reached) is sent again after a
//! jittered backoff within its timeout, and the window shrinks, then grows back as commands are
//! answered. Commands sent by notification handlers get the next free slot first, and while
//! one waits no new notification starts, so notifications cannot starve the commands they
//! cause. [`Client::flow_stats`] counts the waits, retries and anything shed.
//!
//! # Example
//!
//! ```no_run
//! use elarian_core::{Client, ClientConfig, ConnectionEvent};
//! use elarian_core::proto::{AppToServerCommand, GenerateAuthTokenCommand, app_to_server_command};
//! use futures_util::StreamExt;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::builder()
//!     .org_id("el_org_eu_1SJ2jx")
//!     .app_id("el_app_WZFQdt")
//!     .api_key("el_k_test_…")
//!     .on_event(|event| println!("connection: {event:?}"))
//!     .build()?;
//! // `()` answers every notification with the default reply.
//! let client = Client::connect(config, ()).await?;
//!
//! let mut events = client.events();
//! tokio::spawn(async move {
//!     while let Some(event) = events.next().await {
//!         if let ConnectionEvent::Reconnecting { attempt, delay } = event {
//!             println!("reconnecting (attempt {attempt}) in {delay:?}");
//!         }
//!     }
//! });
//!
//! let reply = client
//!     .send_app_command(AppToServerCommand {
//!         entry: Some(app_to_server_command::Entry::GenerateAuthToken(
//!             GenerateAuthTokenCommand {},
//!         )),
//!     })
//!     .await?;
//! println!("{reply:?}");
//! client.disconnect().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod arena;
mod backoff;
mod client;
mod config;
mod dispatch;
mod error;
mod event;
mod handler;
mod inflight;
mod link;
mod reply;
mod rsocket;
mod secret;
mod setup;
mod supervisor;
mod window;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod fake;

pub use backoff::ReconnectPolicy;
pub use client::Client;
pub use config::{
    ClientConfig, ClientConfigBuilder, Credentials, DEFAULT_PORT, DEFAULT_TLS_HOST,
    DEFAULT_WEBSOCKET_HOST, Role,
};
pub use error::{
    Cause, ClientError, CommandError, ConfigError, ConnectError, HandlerError, NotificationError,
};
pub use event::{ConnectionEvent, EventCallback, EventHub, EventStream, StopReason};
pub use handler::{NotificationHandler, ReplySender, default_app_reply};
pub use reply::check_app_reply;
pub use secret::Secret;
pub use setup::{DATA_MIME_TYPE, METADATA_MIME_TYPE, agent_metadata, connection_metadata};
pub use window::FlowStats;

/// The wire types (re-exported so users need not depend on `elarian-proto`).
pub use elarian_proto as proto;
/// A custom way of opening transports, for [`ClientConfigBuilder::dialer`], and what it
/// returns (re-exported from `elarian-transport`).
pub use elarian_transport::io::{BoxTransport, DialFuture, Dialer, TransportError};
/// Endpoints and TLS options (re-exported from `elarian-transport`).
pub use elarian_transport::io::{Endpoint, TlsClientOptions};
/// Boxed futures as used by [`NotificationHandler`].
pub use futures_util::future::BoxFuture;
