//! Time: RFC 3339 timestamps as the seed writes them (`2020-09-15T10:01:09.467Z`), relative
//! schedules (`"15 minutes"`) and the [`Clock`] the lifecycle reads (a [`ManualClock`] in tests).
//!
//! The formatter and parser are our own (a few lines of calendar arithmetic) rather than a
//! date-time crate: the campaigns only need UTC instants with millisecond precision.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in UTC with millisecond precision, written as RFC 3339 (`2020-09-15T10:01:09.467Z`).
///
/// ```
/// use elarian_campaigns::Timestamp;
/// let t: Timestamp = "2020-09-15T10:01:09.467Z".parse().unwrap();
/// assert_eq!(t.to_string(), "2020-09-15T10:01:09.467Z");
/// let shifted: Timestamp = "2020-09-15T12:01:09.467+02:00".parse().unwrap();
/// assert_eq!(shifted, t);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A string that is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time ({reason}): {input:?}")]
pub struct TimestampError {
    /// What was given (truncated to 64 characters).
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Timestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The current system time.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts a `SystemTime` (truncated to milliseconds).
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// This instant plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// This instant minus `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// The inverse of `days_from_civil`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| TimestampError {
            input: s.chars().take(64).collect(),
            reason,
        };
        let b = s.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let part = b.get(range).ok_or_else(|| err("too short"))?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(err("expected digits"));
            }
            Ok(part
                .iter()
                .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
        };
        let sep = |i: usize, allowed: &[u8]| -> Result<(), TimestampError> {
            match b.get(i) {
                Some(c) if allowed.contains(c) => Ok(()),
                _ => Err(err("unexpected separator")),
            }
        };
        let year = num(0..4)?;
        sep(4, b"-")?;
        let month = num(5..7)?;
        sep(7, b"-")?;
        let day = num(8..10)?;
        sep(10, b"Tt ")?;
        let hour = num(11..13)?;
        sep(13, b":")?;
        let minute = num(14..16)?;
        sep(16, b":")?;
        let second = num(17..19)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(err("no such date"));
        }
        // A leap second (60) is accepted as the next second's start, as RFC 3339 allows it.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(err("no such time"));
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                // Digits beyond milliseconds are truncated (the model keeps milliseconds).
                if i - start < 3 {
                    millis = millis * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return Err(err("empty fraction"));
            }
            for _ in (i - start)..3 {
                millis *= 10;
            }
        }
        let offset_minutes = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
                sep(i + 3, b":")?;
                let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if h > 23 || m > 59 {
                    return Err(err("bad offset"));
                }
                let total = h * 60 + m;
                if *sign == b'-' { -total } else { total }
            }
            _ => return Err(err("expected Z or an offset such as +02:00 at the end")),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        Ok(Timestamp(secs * 1000 + millis))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a relative schedule such as `"15 minutes"`, `"1 hour"`, `"30 seconds"` or `"2 days"`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(elarian_campaigns::parse_relative("15 minutes"), Ok(Duration::from_secs(900)));
/// assert!(elarian_campaigns::parse_relative("soon").is_err());
/// ```
pub fn parse_relative(text: &str) -> Result<Duration, String> {
    let mut parts = text.split_whitespace();
    let (Some(amount), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "expected `<number> <unit>` such as \"15 minutes\", got {text:?}"
        ));
    };
    let amount: u64 = amount
        .parse()
        .map_err(|_| format!("{amount:?} is not a whole number"))?;
    let unit_secs = match unit.to_ascii_lowercase().trim_end_matches('s') {
        "second" | "sec" => 1,
        "minute" | "min" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} (seconds, minutes, hours, days or weeks)"
            ));
        }
    };
    amount
        .checked_mul(unit_secs)
        .filter(|s| *s <= 366 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is more than a year ahead"))
}

/// The time source of the lifecycle. [`SystemClock`] in production, [`ManualClock`] in tests.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use elarian_campaigns::{Clock, ManualClock, Timestamp};
/// let clock = ManualClock::new(Timestamp::from_millis(0));
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now(), Timestamp::from_millis(60_000));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.as_millis())))
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Sets the clock.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_the_seed_timestamps() {
        for text in [
            "2020-09-15T10:01:09.467Z",
            "2020-10-15T15:27:02.853Z",
            "1970-01-01T00:00:00.000Z",
            "2000-02-29T23:59:59.999Z",
            "1969-12-31T23:59:59.999Z",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        let t: Timestamp = "1970-01-01T00:00:01Z".parse().unwrap();
        assert_eq!(t.as_millis(), 1000);
        let t: Timestamp = "1970-01-01T01:00:00.5-01:00".parse().unwrap();
        assert_eq!(t.as_millis(), 2 * 3_600_000 + 500);
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "2020-09-15",
            "2020-09-15T10:01:09",
            "2020-02-30T10:01:09Z",
            "2021-02-29T10:01:09Z",
            "2020-13-01T10:01:09Z",
            "2020-09-15T24:01:09Z",
            "2020-09-15T10:01:09.Z",
            "2020-09-15T10:01:09.467+0200",
            "2020-09-15T10:01:09.467Zjunk",
            "20x0-09-15T10:01:09Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_system_time() {
        let now = SystemTime::now();
        let t = Timestamp::from_system_time(now);
        let back: Timestamp = t.to_string().parse().unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn relative_schedules() {
        assert_eq!(parse_relative("15 minutes"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_relative("1 minute"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_relative("3 seconds"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_relative("2 Hours"), Ok(Duration::from_secs(7200)));
        assert!(parse_relative("15").is_err());
        assert!(parse_relative("-1 minutes").is_err());
        assert!(parse_relative("1 fortnight").is_err());
        assert!(parse_relative("1000 weeks").is_err());
    }
}
