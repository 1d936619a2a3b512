//! Shared setup of the end-to-end tests: an in-process emulator on 127.0.0.1:0 and an app
//! connected to it with the emulator's default test credentials.
//!
//! `elarian-simulator`'s tests include this file too (`#[path]`), so it may only use what both
//! crates' dev-dependencies provide. Tests that need a simulator live there: the SDK does not
//! depend on the simulator, not even for its tests.

use std::net::SocketAddr;
use std::time::Duration;

use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
use elarian_emulator::{Emulator, EmulatorHandle};
use elarian_sdk::{ClientConfig, ClientConfigBuilder, Elarian};

/// Bound on every wait in these tests, so a broken server fails a test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(15);

pub async fn emulator() -> EmulatorHandle {
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    Emulator::builder()
        .tcp(addr)
        .start()
        .await
        .expect("the emulator starts")
}

pub fn config(emulator: &EmulatorHandle) -> ClientConfigBuilder {
    ClientConfig::builder()
        .org_id(TEST_ORG_ID)
        .app_id(TEST_APP_ID)
        .api_key(TEST_API_KEY)
        .endpoint(emulator.endpoint().expect("tcp endpoint"))
        .command_timeout(WAIT)
        .initial_connect_timeout(WAIT)
}

pub async fn app(emulator: &EmulatorHandle) -> Elarian {
    let app = Elarian::new(config(emulator)).expect("valid config");
    tokio::time::timeout(WAIT, app.connect())
        .await
        .expect("connect within the bound")
        .expect("connects");
    app
}

/// A phone number no other test uses, so tests sharing an emulator do not see each other.
pub fn unique_number() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("+2547{:02}{:06}", std::process::id() % 100, n)
}
