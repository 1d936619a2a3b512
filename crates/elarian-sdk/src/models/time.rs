//! Conversions between `std::time` and the protobuf well-known time types.
//!
//! The wire can carry times std cannot represent (a negative duration, a timestamp before the epoch
//! on a platform that cannot go there, nanos out of range). Those are clamped rather than failing the
//! whole message: a notification with one odd timestamp is still worth delivering.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use elarian_proto::prost_types;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Converts a `SystemTime` to a protobuf `Timestamp`.
pub(crate) fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => prost_types::Timestamp {
            seconds: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(after.subsec_nanos()).unwrap_or(0),
        },
        Err(before) => {
            let before = before.duration();
            let mut seconds = -i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let mut nanos = -i64::from(before.subsec_nanos());
            if nanos < 0 {
                seconds -= 1;
                nanos += NANOS_PER_SECOND;
            }
            prost_types::Timestamp {
                seconds,
                nanos: i32::try_from(nanos).unwrap_or(0),
            }
        }
    }
}

/// Converts a protobuf `Timestamp` to a `SystemTime`, clamping what std cannot represent.
pub(crate) fn system_time(ts: &prost_types::Timestamp) -> SystemTime {
    let nanos = u32::try_from(ts.nanos.clamp(0, 999_999_999)).unwrap_or(0);
    if ts.seconds >= 0 {
        let secs = u64::try_from(ts.seconds).unwrap_or(0);
        UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos))
            .unwrap_or(UNIX_EPOCH)
    } else {
        let secs = ts.seconds.unsigned_abs();
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// Converts an optional `Timestamp` to an optional `SystemTime`.
pub(crate) fn opt_system_time(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    ts.map(system_time)
}

/// Converts a std `Duration` to a protobuf `Duration`.
pub(crate) fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Converts a protobuf `Duration` to a std `Duration`; negative durations become zero.
pub(crate) fn std_duration(d: &prost_types::Duration) -> Duration {
    if d.seconds < 0 || (d.seconds == 0 && d.nanos < 0) {
        return Duration::ZERO;
    }
    let secs = u64::try_from(d.seconds).unwrap_or(0);
    let nanos = u32::try_from(d.nanos.clamp(0, 999_999_999)).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// Converts an optional protobuf `Duration`.
pub(crate) fn opt_std_duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    d.map(std_duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_with_nanos() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(system_time(&timestamp(t)), t);
    }

    #[test]
    fn pre_epoch_timestamps_round_trip() {
        let t = UNIX_EPOCH - Duration::new(10, 250_000_000);
        let ts = timestamp(t);
        assert_eq!(ts.seconds, -11);
        assert_eq!(ts.nanos, 750_000_000);
        assert_eq!(system_time(&ts), t);
    }

    #[test]
    fn out_of_range_wire_values_are_clamped_not_fatal() {
        let odd = prost_types::Timestamp {
            seconds: 5,
            nanos: -3,
        };
        assert_eq!(system_time(&odd), UNIX_EPOCH + Duration::from_secs(5));
        let negative = prost_types::Duration {
            seconds: -4,
            nanos: 0,
        };
        assert_eq!(std_duration(&negative), Duration::ZERO);
        let huge = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        // Must not panic whatever the platform can represent.
        let _ = system_time(&huge);
    }

    #[test]
    fn durations_round_trip() {
        let d = Duration::new(90, 5);
        assert_eq!(std_duration(&duration(d)), d);
    }
}
