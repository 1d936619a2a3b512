//! Wall-clock time, injectable so that tests drive reminders and expiries without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Now plus `timeout` on tokio's clock, or an instant decades away when that overflows: a
/// limit of `Duration::MAX` means "no limit", not a panic.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> tokio::time::Instant {
    const FAR: std::time::Duration = std::time::Duration::from_secs(30 * 365 * 86_400);
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> Millis;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests.
///
/// ```
/// use elarian_emulator::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance_millis(500);
/// assert_eq!(clock.now_millis(), 1_500);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `start` milliseconds since the epoch.
    pub fn new(start: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }

    /// Moves the clock forward.
    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set_millis(&self, now: Millis) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Converts epoch milliseconds to a protobuf timestamp.
pub fn to_timestamp(millis: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Converts a protobuf timestamp to epoch milliseconds, saturating on overflow.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Millis {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos.clamp(0, 999_999_999)) / 1_000_000)
}

/// Converts a protobuf duration to milliseconds (negative durations count as zero).
pub fn duration_millis(d: &prost_types::Duration) -> i64 {
    d.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(d.nanos) / 1_000_000)
        .max(0)
}

/// Converts milliseconds to a protobuf duration.
pub fn to_duration(millis: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trip_including_negative() {
        for ms in [0, 1, 999, 1_000, 1_234_567, -1, -1_500] {
            assert_eq!(from_timestamp(&to_timestamp(ms)), ms);
        }
    }

    #[test]
    fn huge_timestamps_saturate() {
        let ts = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(from_timestamp(&ts), i64::MAX);
    }
}
