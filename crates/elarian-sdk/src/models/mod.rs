//! Plain Rust models of everything the Elarian API exchanges, with conversions to and from the wire
//! types of `elarian-proto`. All models derive serde `Serialize`/`Deserialize`.

#[macro_use]
mod convert;

pub mod common;
pub mod data;
pub mod enums;
pub mod message;
pub mod notifications;
pub mod payment;
pub mod replies;
pub mod state;
pub(crate) mod time;

pub use common::*;
pub use data::*;
pub use enums::*;
pub use message::*;
pub use notifications::*;
pub use payment::*;
pub use replies::*;
pub use state::*;
