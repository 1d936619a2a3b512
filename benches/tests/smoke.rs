//! The benchmark workloads run to the end against a real emulator, on tiny sizes, so that a
//! broken bench shows up in `cargo test` rather than at benchmark time.

use std::sync::Arc;
use std::time::Duration;

use elarian_benches::clock::JumpClock;
use elarian_benches::connect_app;
use elarian_benches::workload::{command_mix, reminder_burst};
use elarian_emulator::Emulator;

const BOUND: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_mix_and_reminder_burst_complete_and_count_everything() {
    let clock = JumpClock::default();
    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .expect("the emulator starts");

    let app = connect_app(&emulator, false).await.expect("connects");
    let rate = tokio::time::timeout(BOUND, command_mix(&app, "+2547300", 4, 40))
        .await
        .expect("the mix finishes in time")
        .expect("every command succeeds");
    assert_eq!(rate.count, 40);
    // The mix wrote metadata through update_metadata; get_state reads it back.
    let state = app
        .customer(elarian_sdk::CustomerNumber::cellular("+254730000000"))
        .get_state()
        .await
        .expect("state");
    assert!(state.identity.metadata.contains_key("visits"));
    app.disconnect().await;

    let burst = tokio::time::timeout(BOUND, reminder_burst(&emulator, &clock, 50, 16, 8, false))
        .await
        .expect("the burst finishes in time")
        .expect("every reminder is delivered");
    assert_eq!(burst.setup.count, 50);
    // Returns only once every customer's reminder plus the wake-up one reached the handler.
    assert_eq!(burst.delivery.count, 51);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_floor_counts_every_round_trip() {
    let echo = elarian_benches::floor::serve_echo()
        .await
        .expect("the echo server starts");
    let rate = elarian_benches::floor::ping_pong(echo, 50, BOUND)
        .await
        .expect("the ping-pong completes");
    assert_eq!(rate.count, 50);
    assert!(rate.elapsed > Duration::ZERO);
}
