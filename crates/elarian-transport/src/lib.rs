//! An RSocket 1.0 engine for the Elarian SDK.

pub mod io;
