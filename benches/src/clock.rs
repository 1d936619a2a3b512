//! A system clock that a benchmark can move forward, so that a million reminders set during a
//! long setup all come due at one instant afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use elarian_emulator::clock::{Clock, Millis, SystemClock};

/// The system time plus an offset that only grows. Clones share the offset.
///
/// ```
/// use std::time::Duration;
/// use elarian_benches::clock::JumpClock;
/// use elarian_emulator::clock::Clock;
///
/// let clock = JumpClock::default();
/// let before = clock.now_millis();
/// clock.jump(Duration::from_secs(3600));
/// assert!(clock.now_millis() >= before + 3_600_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct JumpClock {
    offset: Arc<AtomicI64>,
}

impl JumpClock {
    /// Moves the clock forward by `by`.
    pub fn jump(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for JumpClock {
    fn now_millis(&self) -> Millis {
        SystemClock
            .now_millis()
            .saturating_add(self.offset.load(Ordering::SeqCst))
    }
}
