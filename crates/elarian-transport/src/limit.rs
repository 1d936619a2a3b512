//! A lock-free cap on requests in flight.
//!
//! `tokio::sync::Semaphore` takes a mutex on every release; a request/response pays that twice
//! per call. This limiter only touches atomics unless it is full, when waiters park on a
//! [`Notify`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use tokio::sync::Notify;

/// At most `max` permits out at once; [`close`](InflightLimit::close) fails every waiter.
#[derive(Debug)]
pub(crate) struct InflightLimit {
    used: AtomicUsize,
    max: usize,
    waiting: AtomicUsize,
    closed: AtomicBool,
    notify: Notify,
}

/// The limiter was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// A permit; released on drop.
#[derive(Debug)]
pub(crate) struct Permit<'a>(&'a InflightLimit);

/// A permit that owns a reference to its limiter; released on drop.
#[derive(Debug)]
pub(crate) struct OwnedPermit(Arc<InflightLimit>);

impl InflightLimit {
    pub(crate) fn new(max: usize) -> Self {
        InflightLimit {
            used: AtomicUsize::new(0),
            max: max.max(1),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            notify: Notify::new(),
        }
    }

    fn try_take(&self) -> bool {
        let mut used = self.used.load(SeqCst);
        while used < self.max {
            match self
                .used
                .compare_exchange_weak(used, used + 1, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
        false
    }

    async fn take(&self) -> Result<(), Closed> {
        loop {
            if self.closed.load(SeqCst) {
                return Err(Closed);
            }
            if self.try_take() {
                return Ok(());
            }
            // Register before the re-check, so that a release in between is not missed: the
            // releaser either sees `waiting` and notifies, or we see its release.
            let _waiting = Waiting::new(&self.waiting);
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(SeqCst) || self.used.load(SeqCst) < self.max {
                continue;
            }
            notified.await;
        }
    }

    /// A permit if one is free now.
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        // `then`, not `then_some`: a permit built eagerly and dropped on failure would release
        // a slot that was never taken.
        (!self.closed.load(SeqCst) && self.try_take()).then(|| Permit(self))
    }

    /// Waits for a permit.
    pub(crate) async fn acquire(&self) -> Result<Permit<'_>, Closed> {
        self.take().await?;
        Ok(Permit(self))
    }

    /// Waits for a permit that can outlive the borrow of the limiter.
    pub(crate) async fn acquire_owned(self: Arc<Self>) -> Result<OwnedPermit, Closed> {
        self.take().await?;
        Ok(OwnedPermit(self))
    }

    /// Returns a permit given up with [`Permit::keep`].
    pub(crate) fn release_kept(&self) {
        self.release();
    }

    fn release(&self) {
        self.used.fetch_sub(1, SeqCst);
        if self.waiting.load(SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// Fails current and future waiters; permits already out stay valid.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.notify.notify_waiters();
    }
}

/// Counts a parked waiter for as long as it waits, including when its future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Permit<'_> {
    /// Keeps the permit taken past this value's life: whoever holds it from now on returns it
    /// with [`InflightLimit::release_kept`] (exactly once).
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }

    /// Whether this is a permit of `limit`.
    pub(crate) fn is_of(&self, limit: &InflightLimit) -> bool {
        std::ptr::eq(self.0, limit)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_than_max_and_nobody_is_forgotten() {
        let limit = Arc::new(InflightLimit::new(3));
        let peak = Arc::new(AtomicUsize::new(0));
        let current = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (limit, peak, current) = (limit.clone(), peak.clone(), current.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let _permit = limit.clone().acquire_owned().await.unwrap();
                    let now = current.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    tokio::task::yield_now().await;
                    current.fetch_sub(1, SeqCst);
                }
            }));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("a waiter was never woken")
                .unwrap();
        }
        assert!(peak.load(SeqCst) <= 3);
        assert_eq!(limit.used.load(SeqCst), 0);
        assert_eq!(limit.waiting.load(SeqCst), 0);
    }

    #[test]
    fn a_failed_try_acquire_releases_nothing() {
        let limit = InflightLimit::new(1);
        let held = limit.try_acquire().expect("one free");
        for _ in 0..3 {
            assert!(limit.try_acquire().is_none());
        }
        assert_eq!(limit.used.load(SeqCst), 1);
        drop(held);
        assert_eq!(limit.used.load(SeqCst), 0);
        let again = limit.try_acquire().expect("free again");
        assert!(limit.try_acquire().is_none());
        drop(again);
    }

    #[tokio::test]
    async fn close_fails_waiters() {
        let limit = Arc::new(InflightLimit::new(1));
        let held = limit.acquire().await.unwrap();
        let waiter = tokio::spawn({
            let limit = limit.clone();
            async move { limit.acquire_owned().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        limit.close();
        assert_eq!(waiter.await.unwrap(), Err(Closed));
        drop(held);
        assert!(limit.acquire().await.is_err());
    }
}
