//! elarian-emulator
