//! Messaging campaigns on [Elarian](https://developers.elarian.com): Messages with templated
//! content, sent more than once by scheduling Sendings to recipients, with delivery tracking.
//!
//! The resources and their JSON are those of the messaging-campaign API this crate implements
//! (see `docs/campaigns.md`): a [`Message`] has [`Channel`]s, each with a [`Template`]; a
//! [`Sending`] sends the message to inline [`Recipient`]s and/or a stored [`Audience`] at a time,
//! moving through the lifecycle of [`check_transition`]. Everything goes through `elarian-sdk`'s
//! public API, so the same code runs against Elarian or the local emulator.

#![warn(missing_docs)]

mod json;
mod lifecycle;
mod model;
pub mod template;
mod time;

pub use json::{JsonError, from_json, from_slice};
pub use lifecycle::{IllegalTransition, aggregate_status, check_transition};
pub use model::*;
pub use time::{Clock, ManualClock, SystemClock, Timestamp, TimestampError, parse_relative};
