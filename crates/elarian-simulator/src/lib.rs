//! elarian-simulator
