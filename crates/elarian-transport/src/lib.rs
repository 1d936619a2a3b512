//! elarian-transport
