//! Messaging campaigns on [Elarian](https://developers.elarian.com): Messages with templated
//! content, sent more than once by scheduling Sendings to recipients, with delivery tracking.
//!
//! The resources and their JSON are those of the messaging-campaign API this crate implements
//! (see `docs/campaigns.md`): a [`Message`] has [`Channel`]s, each with a [`Template`]; a
//! [`Sending`] sends the message to inline [`Recipient`]s and/or a stored [`Audience`] at a time,
//! moving through the lifecycle of [`check_transition`]. Everything goes through `elarian-sdk`'s
//! public API, so the same code runs against Elarian or the local emulator.

#![warn(missing_docs, unreachable_pub)]

mod codec;
mod engine;
mod error;
pub mod http;
mod json;
mod lifecycle;
pub mod mapping;
mod model;
mod store;
pub mod template;
mod time;

pub use engine::{
    Campaigns, CampaignsConfig, Dispatch, DispatchState, Listing, Page, Progress,
    STATUS_ACK_TIMEOUT,
};
pub use error::{CampaignError, Result};
pub use json::{JsonError, from_json, from_slice};
pub use lifecycle::{IllegalTransition, aggregate_status, check_transition};
pub use mapping::{DispatchContent, SkipReason};
pub use model::*;
pub use store::{Store, StoreError};
pub use time::{Clock, ManualClock, SystemClock, Timestamp, TimestampError, parse_relative};
