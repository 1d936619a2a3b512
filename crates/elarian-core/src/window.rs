//! Flow control of the client's own commands: how many are in flight, who waits for a slot
//! first, and the retry of commands the server refused unprocessed.
//!
//! The server caps the requests it handles at once per connection and answers the ones beyond
//! with RSocket `REJECTED`, which guarantees the request was not processed. So the client
//! keeps its commands in flight within a window: at most the configured
//! `max_commands_in_flight`, shrunk when the server rejects (its real limit is lower, or it is
//! overloaded) and grown back one slot per window's worth of answered commands (additive
//! increase, multiplicative decrease). Commands beyond the window wait for a slot within their
//! own timeout instead of failing; a rejected command waits a jittered backoff and is sent
//! again, also within its timeout.
//!
//! Commands sent from inside a notification handler take the *priority lane*: they get the
//! next free slot before any other waiting command, and while one of them waits the dispatcher
//! starts no new notification (see [`crate::dispatch`]). A flood of notifications therefore
//! cannot starve the commands of the handlers it caused.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

tokio::task_local! {
    /// Set while a notification handler runs (see [`crate::dispatch`]): its commands take the
    /// priority lane of the window.
    static IN_HANDLER: ();
}

/// Runs `future` as a notification handler: its commands take the window's priority lane.
pub(crate) async fn as_handler<F: std::future::Future>(future: F) -> F::Output {
    IN_HANDLER.scope((), future).await
}

/// Whether the current task is a notification handler.
fn in_handler() -> bool {
    IN_HANDLER.try_with(|_| ()).is_ok()
}

/// First backoff ceiling after a REJECTED; doubles per retry up to [`RETRY_MAX_DELAY`].
const RETRY_INITIAL_DELAY: Duration = Duration::from_millis(2);
/// Largest backoff ceiling between two sends of a rejected command.
const RETRY_MAX_DELAY: Duration = Duration::from_millis(500);
/// The window shrinks at most once per this interval: the commands in flight when the server
/// started rejecting are all answered REJECTED together, and one overload is one decrease.
const SHRINK_INTERVAL: Duration = Duration::from_millis(50);

/// Counters of the client's flow control, for monitoring (see
/// [`Client::flow_stats`](crate::Client::flow_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowStats {
    /// Times a command answered REJECTED (not processed by the server) was sent again.
    pub rejected_retried: u64,
    /// Commands that failed with [`CommandError::Rejected`](crate::CommandError::Rejected)
    /// because their timeout left no room for another try: shed, and reported to the caller.
    pub rejected_gave_up: u64,
    /// Commands that waited for a slot in the window before being sent.
    pub waited_for_window: u64,
    /// Commands that failed with [`CommandError::Timeout`](crate::CommandError::Timeout)
    /// while still waiting for a slot (never sent).
    pub window_timeouts: u64,
    /// Commands in flight right now.
    pub in_flight: usize,
    /// The window now: how many commands may be in flight at once.
    pub window: usize,
    /// The configured maximum of the window.
    pub max_window: usize,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// Handler commands waiting for a slot.
    priority_waiting: usize,
    /// Answered commands since the window last grew.
    answered: usize,
    last_shrink: Option<Instant>,
}

/// The window of commands in flight. See the module docs.
#[derive(Debug)]
pub(crate) struct CommandWindow {
    max: usize,
    state: Mutex<State>,
    /// Wakes one waiting handler command.
    priority: Notify,
    /// Wakes one other waiting command.
    other: Notify,
    /// Wakes the dispatcher when no handler command waits any more.
    drained: Notify,
    retried: AtomicU64,
    gave_up: AtomicU64,
    waited: AtomicU64,
    timeouts: AtomicU64,
}

/// A slot in the window; released on drop.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    window: &'a CommandWindow,
}

/// The command's deadline passed while it waited for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowTimeout;

impl CommandWindow {
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        CommandWindow {
            max,
            state: Mutex::new(State {
                limit: max,
                in_flight: 0,
                priority_waiting: 0,
                answered: 0,
                last_shrink: None,
            }),
            priority: Notify::new(),
            other: Notify::new(),
            drained: Notify::new(),
            retried: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only counters behind; they stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for the current task's command, waiting until `deadline` at most. Handler
    /// commands go first.
    pub(crate) async fn acquire(&self, deadline: Instant) -> Result<Slot<'_>, WindowTimeout> {
        let priority = in_handler();
        {
            let mut state = self.lock();
            if state.in_flight < state.limit && (priority || state.priority_waiting == 0) {
                state.in_flight += 1;
                return Ok(Slot { window: self });
            }
        }
        // Rare (the window is full): boxed so that its state does not enlarge every command.
        Box::pin(self.wait(priority, deadline)).await
    }

    async fn wait(&self, priority: bool, deadline: Instant) -> Result<Slot<'_>, WindowTimeout> {
        self.waited.fetch_add(1, Ordering::Relaxed);
        let notify = if priority {
            &self.priority
        } else {
            &self.other
        };
        let _waiting = priority.then(|| PriorityWaiter::new(self));
        loop {
            let notified = notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so that a release in between is not missed.
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                // Waiting handler commands go first: another command only takes a slot when
                // none waits (this one included, which is counted in `priority_waiting`).
                let turn = priority || state.priority_waiting == 0;
                if turn && state.in_flight < state.limit {
                    state.in_flight += 1;
                    return Ok(Slot { window: self });
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                // Pass a slot that may have been meant for this waiter on.
                self.wake_next();
                return Err(WindowTimeout);
            }
        }
    }

    /// Wakes the next waiter for a free slot: a handler command if one waits.
    fn wake_next(&self) {
        let priority_waiting = self.lock().priority_waiting;
        if priority_waiting > 0 {
            self.priority.notify_one();
        } else {
            self.other.notify_one();
        }
    }

    fn release(&self) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        self.wake_next();
    }

    /// The server answered a command (anything but REJECTED): grow the window by one slot per
    /// window's worth of answers, up to the configured maximum.
    pub(crate) fn on_answered(&self) {
        let grew = {
            let mut state = self.lock();
            if state.limit >= self.max {
                return;
            }
            state.answered += 1;
            if state.answered >= state.limit {
                state.answered = 0;
                state.limit += 1;
                true
            } else {
                false
            }
        };
        if grew {
            self.wake_next();
        }
    }

    /// The server rejected a command unprocessed: shrink the window to three quarters of what
    /// was in flight (at most once per [`SHRINK_INTERVAL`]).
    pub(crate) fn on_rejected(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        if state
            .last_shrink
            .is_some_and(|at| now.saturating_duration_since(at) < SHRINK_INTERVAL)
        {
            return;
        }
        let base = state.in_flight.min(state.limit).max(1);
        state.limit = (base - base / 4).max(1);
        state.answered = 0;
        state.last_shrink = Some(now);
        tracing::debug!(
            window = state.limit,
            "server rejected a command: window shrunk"
        );
    }

    /// How long to wait before sending a rejected command again (`retry` counts from 0), or
    /// `None` when `deadline` would pass first: the command then fails, counted.
    pub(crate) fn retry_delay(&self, retry: u32, deadline: Instant) -> Option<Duration> {
        let ceiling = RETRY_INITIAL_DELAY
            .saturating_mul(1u32 << retry.min(16))
            .min(RETRY_MAX_DELAY);
        // Full jitter, at least a millisecond so that a retry never spins.
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(fastrand::u64(1_000_000.min(nanos)..=nanos));
        if Instant::now() + delay >= deadline {
            self.gave_up.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.retried.fetch_add(1, Ordering::Relaxed);
        Some(delay)
    }

    /// Whether a handler command waits for a slot right now.
    pub(crate) fn handlers_waiting(&self) -> bool {
        self.lock().priority_waiting > 0
    }

    /// Resolves once no handler command waits for a slot.
    pub(crate) async fn handlers_drained(&self) {
        loop {
            let notified = self.drained.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if !self.handlers_waiting() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn stats(&self) -> FlowStats {
        let (in_flight, window) = {
            let state = self.lock();
            (state.in_flight, state.limit)
        };
        FlowStats {
            rejected_retried: self.retried.load(Ordering::Relaxed),
            rejected_gave_up: self.gave_up.load(Ordering::Relaxed),
            waited_for_window: self.waited.load(Ordering::Relaxed),
            window_timeouts: self.timeouts.load(Ordering::Relaxed),
            in_flight,
            window,
            max_window: self.max,
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.window.release();
    }
}

/// Counts a waiting handler command for as long as it waits, including when its future is
/// dropped.
struct PriorityWaiter<'a>(&'a CommandWindow);

impl<'a> PriorityWaiter<'a> {
    fn new(window: &'a CommandWindow) -> Self {
        window.lock().priority_waiting += 1;
        PriorityWaiter(window)
    }
}

impl Drop for PriorityWaiter<'_> {
    fn drop(&mut self) {
        let drained = {
            let mut state = self.0.lock();
            state.priority_waiting = state.priority_waiting.saturating_sub(1);
            state.priority_waiting == 0
        };
        if drained {
            self.0.drained.notify_waiters();
            // Other commands may take free slots again.
            self.0.other.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn commands_beyond_the_window_wait_and_time_out_at_their_deadline() {
        let window = CommandWindow::new(2);
        let a = window.acquire(far()).await.unwrap();
        let _b = window.acquire(far()).await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(100);
        assert_eq!(window.acquire(deadline).await.unwrap_err(), WindowTimeout);
        drop(a);
        let _c = window
            .acquire(deadline + Duration::from_secs(1))
            .await
            .unwrap();
        let stats = window.stats();
        assert_eq!((stats.in_flight, stats.window_timeouts), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn handler_commands_get_the_next_slot_first() {
        let window = Arc::new(CommandWindow::new(1));
        let held = window.acquire(far()).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, handler) in [("other", false), ("handler", true)] {
            let (window, order) = (window.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let take = async {
                    let _slot = window.acquire(far()).await.unwrap();
                    order.lock().unwrap().push(name);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                if handler {
                    as_handler(take).await
                } else {
                    take.await
                }
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(window.handlers_waiting());
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["handler", "other"]);
        assert!(!window.handlers_waiting());
        window.handlers_drained().await;
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_shrink_the_window_and_answers_grow_it_back() {
        let window = CommandWindow::new(8);
        let slots: Vec<_> = futures_util::future::join_all((0..8).map(|_| window.acquire(far())))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        window.on_rejected();
        // A burst of rejections of the same overload is one decrease.
        window.on_rejected();
        assert_eq!(window.stats().window, 6);
        drop(slots);
        tokio::time::sleep(SHRINK_INTERVAL).await;
        for _ in 0..6 {
            window.on_answered();
        }
        assert_eq!(window.stats().window, 7);
        for _ in 0..100 {
            window.on_answered();
        }
        assert_eq!(
            window.stats().window,
            8,
            "never beyond the configured maximum"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_delays_are_jittered_bounded_and_stop_at_the_deadline() {
        let window = CommandWindow::new(1);
        for retry in 0..20 {
            let delay = window.retry_delay(retry, far()).unwrap();
            assert!(delay >= Duration::from_millis(1) && delay <= RETRY_MAX_DELAY);
        }
        let soon = Instant::now() + Duration::from_micros(500);
        assert_eq!(window.retry_delay(0, soon), None);
        let stats = window.stats();
        assert_eq!((stats.rejected_retried, stats.rejected_gave_up), (20, 1));
    }
}
