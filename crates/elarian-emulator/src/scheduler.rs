//! The timer loop: fires due reminders and session expiries and hands their notifications to
//! delivery, at the pace the apps take them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::delivery::Hub;
use crate::engine::Engine;

/// Timers fired per engine call; bounds how long the state lock is held at once.
const BATCH: usize = 4096;
/// Longest sleep between checks, so that clock jumps are noticed.
const MAX_SLEEP_MILLIS: i64 = 1_000;

pub(crate) async fn run(engine: Arc<Engine>, hub: Arc<Hub>, mut shutdown: watch::Receiver<bool>) {
    loop {
        // Waiting for disk room here, outside the state lock, keeps fire_due from ever
        // blocking a worker thread on a full write queue.
        if let Err(e) = engine.ready_for_writes(Duration::from_secs(1)).await {
            tracing::warn!(error = %e, "timers wait for the disk");
            continue;
        }
        let out = engine.fire_due(BATCH);
        if out.reply > 0 {
            if let Err(e) = out.durable.wait().await {
                tracing::error!(error = %e, "fired timers not persisted");
            }
            hub.deliver_paced(out.effects).await;
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        let wait = engine
            .next_due()
            .map(|due| (due - engine.now()).clamp(0, MAX_SLEEP_MILLIS))
            .unwrap_or(MAX_SLEEP_MILLIS);
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = engine.timers_changed().notified() => {}
        }
    }
}
