//! elarian-sdk
