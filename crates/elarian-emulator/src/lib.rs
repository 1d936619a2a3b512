//! A local, wire-compatible Elarian server.
//!
//! The emulator speaks the Elarian wire protocol (RSocket 1.0 with protobuf payloads) over TCP,
//! TLS and WebSocket, so the Rust SDK, the simulator and the published clients of other languages
//! can run against it without an Elarian account; clients in the same process can skip the
//! network altogether through [`EmulatorHandle::in_process_dialer`]. It keeps customers, reminders, messages,
//! sessions and payments in memory, or durably in a data dir. See `docs/emulator.md` for the
//! command line, the configuration and the semantics implemented.
//!
//! ```no_run
//! # async fn run() -> Result<(), elarian_emulator::EmulatorError> {
//! use elarian_emulator::Emulator;
//!
//! let emulator = Emulator::builder().tcp(([127, 0, 0, 1], 0)).start().await?;
//! let endpoint = emulator.endpoint().expect("a TCP listener");
//! println!("connect clients to {endpoint}");
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Layers: [`config`] (orgs, apps, keys, purses, channel numbers), [`engine`] (every command's
//! semantics, without sockets and with an injectable [`clock`]), a durable store (redb), and the
//! network side that authenticates connections and delivers notifications.
#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod config;
mod console;
mod delivery;
mod emulator;
pub mod engine;
mod ids;
mod in_process;
mod record;
mod record_bytes;
mod reply_encoding;
mod scheduler;
mod server;
mod state;
mod store;

pub use console::{CampaignsUrlError, ConsoleError};
pub use delivery::{DeliveryLimits, DeliveryStats};
pub use emulator::{Emulator, EmulatorBuilder, EmulatorError, EmulatorHandle};
pub use engine::{Engine, Identity};
pub use in_process::{IN_PROCESS_CHANNEL_FRAMES, InProcessDialer};
pub use store::StoreError;
