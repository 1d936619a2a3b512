//! Protocol buffer types of the Elarian wire protocol (package `com.elarian.hera.proto`).
//!
//! Every type lives at the crate root, e.g. [`AppToServerCommand`].
#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

mod generated;
pub use generated::*;
pub use prost;
pub use prost_types;
