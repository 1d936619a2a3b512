//! Counting commands in flight, so that `disconnect` can wait for them to finish.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// A counter of commands in flight that can be awaited to reach zero. Entering and leaving are
/// one atomic operation each (plus a wake-up when the count drops to zero), so the command hot
/// path takes no lock.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Leaves the in-flight set when dropped, however the command ends (reply, error, timeout or
/// the caller dropping its future).
pub(crate) struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    pub(crate) fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self)
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once no command is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a decrement between the check and the await is seen.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn idle_waits_for_the_last_guard() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.idle().await;
        let waiter = {
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                let a = in_flight.enter();
                let b = in_flight.enter();
                drop(a);
                tokio::task::yield_now().await;
                drop(b);
            })
        };
        waiter.await.unwrap();
        in_flight.idle().await;
        assert_eq!(in_flight.count(), 0);
    }
}
