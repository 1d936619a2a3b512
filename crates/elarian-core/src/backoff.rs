//! Reconnect delays: exponential backoff with full jitter.
//!
//! Full jitter (delay drawn uniformly from `0..=min(max, initial * 2^n)`) spreads out the clients
//! that lost their connection at the same moment (a server restart), so they do not hammer the
//! server in lockstep. See "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015). An app
//! with other needs gives its own delay function instead ([`ReconnectPolicy::custom_delay`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// An app-given delay: attempt number (1-based) to delay.
type DelayFn = Arc<dyn Fn(u32) -> Duration + Send + Sync + 'static>;

/// When and how often the runtime tries to (re)connect.
///
/// ```
/// use std::time::Duration;
/// use elarian_core::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::default()
///     .initial_delay(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(10))
///     .max_attempts(Some(20));
/// assert_eq!(policy.attempt_limit(), Some(20));
///
/// // Or the app's own delays, by attempt number (1-based): here 1 s, 2 s, 3 s, … up to 10 s.
/// let linear = ReconnectPolicy::default()
///     .custom_delay(|attempt| Duration::from_secs(u64::from(attempt.min(10))));
/// assert_eq!(linear.delay(3), Duration::from_secs(3));
/// ```
#[derive(Clone)]
pub struct ReconnectPolicy {
    initial_delay: Duration,
    max_delay: Duration,
    max_attempts: Option<u32>,
    /// Replaces the jittered backoff when set.
    custom_delay: Option<DelayFn>,
}

impl fmt::Debug for ReconnectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ReconnectPolicy");
        match self.custom_delay {
            Some(_) => debug.field("delay", &"custom"),
            None => debug
                .field("initial_delay", &self.initial_delay)
                .field("max_delay", &self.max_delay),
        };
        debug.field("max_attempts", &self.max_attempts).finish()
    }
}

/// Equal when the limits are equal and both use the jittered backoff, or the same custom
/// delay function (the same `Arc`, i.e. clones of one policy).
impl PartialEq for ReconnectPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.initial_delay == other.initial_delay
            && self.max_delay == other.max_delay
            && self.max_attempts == other.max_attempts
            && match (&self.custom_delay, &other.custom_delay) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for ReconnectPolicy {}

impl Default for ReconnectPolicy {
    /// 200 ms initial delay, 30 s maximum delay, unlimited attempts: the connection must outlive
    /// any outage ("1 second or 1 year").
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            custom_delay: None,
        }
    }
}

impl ReconnectPolicy {
    /// Upper bound of the first delay (the ceiling doubles with each failed attempt).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Largest ceiling a delay can reach.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Waits `delay(attempt)` before attempt `attempt` (1-based, counting the consecutive failed
    /// attempts plus one) instead of the jittered exponential backoff; `initial_delay` and
    /// `max_delay` are then unused. Called on the runtime's task: keep it quick (no blocking).
    /// Like async-nats' `reconnect_delay_callback`.
    pub fn custom_delay(mut self, delay: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        self.custom_delay = Some(Arc::new(delay));
        self
    }

    /// Whether a [`custom_delay`](Self::custom_delay) replaces the jittered backoff.
    pub fn has_custom_delay(&self) -> bool {
        self.custom_delay.is_some()
    }

    /// How many consecutive failed attempts to make before giving up; `None` retries forever.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The configured initial delay: the ceiling of the first delay (also `ceiling(1)`).
    pub fn initial_ceiling(&self) -> Duration {
        self.initial_delay
    }

    /// The configured maximum delay: the highest ceiling a delay can have.
    pub fn max_ceiling(&self) -> Duration {
        self.max_delay
    }

    /// The configured attempt limit (`None`: unlimited).
    pub fn attempt_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The ceiling of the delay before attempt `attempt` (1-based): `initial * 2^(attempt-1)`,
    /// capped at the maximum delay.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        self.initial_delay
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The delay before attempt `attempt` (1-based): the custom delay if one is set, else one
    /// drawn uniformly from `0..=ceiling(attempt)`.
    pub fn delay(&self, attempt: u32) -> Duration {
        if let Some(custom) = &self.custom_delay {
            return custom(attempt);
        }
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// Whether another attempt is allowed after `failed` consecutive failures.
    pub fn allows(&self, failed: u32) -> bool {
        self.max_attempts.is_none_or(|max| failed < max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_and_caps() {
        let p = ReconnectPolicy::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1));
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(5), Duration::from_secs(1));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn delays_stay_within_the_ceiling() {
        let p = ReconnectPolicy::default();
        for attempt in 1..40 {
            assert!(p.delay(attempt) <= p.ceiling(attempt));
        }
    }

    #[test]
    fn a_custom_delay_replaces_the_backoff_and_keeps_the_limit() {
        let p = ReconnectPolicy::default()
            .max_attempts(Some(4))
            .custom_delay(|attempt| Duration::from_millis(u64::from(attempt) * 10));
        assert!(p.has_custom_delay());
        assert_eq!(p.delay(1), Duration::from_millis(10));
        assert_eq!(p.delay(7), Duration::from_millis(70));
        assert!(p.allows(3) && !p.allows(4));
        assert_eq!(p.clone(), p);
        assert_ne!(p, ReconnectPolicy::default().max_attempts(Some(4)));
        assert!(format!("{p:?}").contains("custom"));
    }

    #[test]
    fn attempts_limit() {
        let p = ReconnectPolicy::default().max_attempts(Some(2));
        assert!(p.allows(0));
        assert!(p.allows(1));
        assert!(!p.allows(2));
        assert!(ReconnectPolicy::default().allows(u32::MAX));
    }
}
