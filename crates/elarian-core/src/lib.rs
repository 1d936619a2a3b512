//! elarian-core
