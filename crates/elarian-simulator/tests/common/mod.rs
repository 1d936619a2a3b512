//! Shared setup of the end-to-end tests: the SDK's test setup (an in-process emulator and an app
//! connected to it), plus a simulator connected the same way.

// One copy of the emulator / app / credentials setup serves both crates' tests.
#[path = "../../../elarian-sdk/tests/common/mod.rs"]
mod sdk_common;

pub use sdk_common::*;

use elarian_emulator::EmulatorHandle;
use elarian_simulator::Simulator;

pub async fn simulator(emulator: &EmulatorHandle) -> Simulator {
    let simulator = Simulator::new(config(emulator)).expect("valid config");
    tokio::time::timeout(WAIT, simulator.connect())
        .await
        .expect("connect within the bound")
        .expect("connects");
    simulator
}
