//! An RSocket 1.0 engine for the Elarian SDK.
//!
//! # Architecture
//!
//! ```text
//!  Connection / ClientSession / Server      the API (root re-exports; handles, cheap to clone)
//!        │ bounded channels
//!  driver (one tokio task per connection)   owns the Session, the transport halves and the
//!        │                                  responder futures; no locks on the hot path
//!  protocol::Session  (sans-IO)             frames in + time in → frames out, events, deadline
//!        │
//!  frame              (codec)               Frame::decode / Frame::encode over bytes::Bytes
//!  io                 (transports)          FrameTransport: memory, TCP, TLS, WebSocket
//! ```
//!
//! Three modules are public because each is an API of its own:
//!
//! - [`frame`]: every RSocket 1.0 frame type and the wire limits ([`frame::MAX_FRAME_LEN`]);
//!   decoding slices the input, never copies payloads; malformed input is a typed
//!   [`frame::FrameError`].
//! - [`protocol`]: the state machine in the manner of quinn-proto. It allocates stream ids,
//!   never touches a socket or a clock, and imports nothing from the I/O layer, the driver or
//!   tokio (a test scans its sources), so keepalive, errors, credit, fragmentation and
//!   resumption are tested with a fake clock. Its errors ([`CloseReason`], [`RequestError`],
//!   [`StreamError`]) are the protocol's; the driver's ([`SetupError`], [`ResumeError`]) may carry
//!   an I/O [`io::TransportError`].
//! - [`io`]: how frames travel, pluggable: [`io::memory`] connects two peers in one process;
//!   TCP, TLS and WebSocket by feature.
//!
//! Everything else is private and re-exported here: the tokio driver and its handles
//! ([`Connection`], [`RequestStream`], [`ClientSession`], [`Server`], [`Incoming`]) for
//! request/response, fire-and-forget, request-stream and metadata push in both directions, a
//! [`RequestHandler`] (with [`BoxFuture`] / [`BoxStream`]) for the peer's requests, and
//! resumption ([`ClientSession::resume`]; RESUME is answered inside the [`Server`]). Inside, a
//! connection is a handle, the driver task (one named method per event it waits on: frames,
//! commands, controls, responder answers and items, new transports, the timer) and the inbound
//! work (responders, the queue of requests waiting for one, the overflow policy).
//!
//! Backpressure: every queue is bounded. At `max_inbound_requests` running responders a
//! connection either queues further requests (up to `max_pending_inbound`, reading on so that
//! answers to its own requests still arrive) and stops reading only once that queue is full
//! ([`InboundOverflow::PauseReading`], the client default), or refuses them with REJECTED
//! ([`InboundOverflow::Reject`], the server default).
//!
//! Not supported, by design: REQUEST_CHANNEL (refused with REJECTED) and leases (a SETUP asking
//! for them is refused with UNSUPPORTED_SETUP).
//!
//! # Example
//!
//! A server and a client over an in-memory transport, one request/response:
//!
//! ```
//! use std::sync::Arc;
//! use elarian_transport::io::memory;
//! use elarian_transport::{
//!     BoxFuture, ClientSessionConfig, ClientSession, Payload, RejectAll, RequestHandler, Server, ServerConfig, StreamError,
//! };
//!
//! struct Greeter;
//! impl RequestHandler for Greeter {
//!     fn request_response(&self, p: Payload) -> BoxFuture<'static, Result<Payload, StreamError>> {
//!         let name = String::from_utf8_lossy(&p.data).into_owned();
//!         Box::pin(async move { Ok(Payload::new(format!("hello, {name}"))) })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let server = Server::new(ServerConfig::default());
//! let (client_end, server_end) = memory::pair(64);
//! server.serve_transport(server_end);
//! tokio::spawn({
//!     let server = server.clone();
//!     async move {
//!         while let Some(incoming) = server.accept().await {
//!             // incoming.setup() holds the client's SETUP (MIME types, payload, resume token).
//!             incoming.accept(Arc::new(Greeter));
//!         }
//!     }
//! });
//!
//! let client = ClientSession::connect(client_end, ClientSessionConfig::default(), Arc::new(RejectAll))
//!     .await
//!     .expect("the server accepts");
//! let reply = client.connection().request_response(Payload::new("Elarian")).await.unwrap();
//! assert_eq!(&reply.data[..], b"hello, Elarian");
//! # });
//! ```

#![warn(missing_docs, unreachable_pub)]

mod client;
mod connection;
mod error;
pub mod frame;
pub mod io;
mod limit;
mod payload;
pub mod protocol;
mod responder;
mod server;

pub use client::{ClientSession, ClientSessionConfig};
pub use connection::{Connection, InboundOverflow, RequestStream};
pub use error::{ResumeError, SetupError};
pub use frame::ErrorCode;
pub use payload::Payload;
pub use protocol::{CloseReason, RequestError, StreamError};
pub use responder::{BoxFuture, BoxStream, RejectAll, RequestHandler};
pub use server::{Incoming, Server, ServerConfig, SetupInfo};
