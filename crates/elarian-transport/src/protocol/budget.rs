//! Byte budgets for payloads being reassembled, per connection and shared across connections.
//!
//! Plain atomics (no I/O, no runtime): the sans-IO session charges a budget when it appends a
//! fragment and the charge is released when the partial payload is dropped, whatever the
//! reason (delivered, refused, canceled, connection closed).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A byte budget: at most `limit` bytes charged at once. Share one (in an [`Arc`]) between
/// sessions through [`SessionConfig::shared_reassembly`](super::SessionConfig::shared_reassembly)
/// to bound reassembly across a whole process.
///
/// ```
/// use elarian_transport::protocol::ByteBudget;
///
/// let budget = ByteBudget::new(64 * 1024 * 1024);
/// assert_eq!(budget.used(), 0);
/// assert_eq!(budget.limit(), 64 * 1024 * 1024);
/// ```
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ByteBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most that may be charged at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Charges `n` bytes if they fit.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(n).filter(|&next| next <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Releases `n` bytes charged earlier.
    pub(crate) fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The budgets a session charges: its own and, optionally, a process-wide one.
#[derive(Debug, Clone)]
pub(crate) struct Budgets {
    pub(crate) connection: Arc<ByteBudget>,
    pub(crate) shared: Option<Arc<ByteBudget>>,
}

/// Which budget refused a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exhausted {
    Connection,
    Process,
}

/// Bytes charged to [`Budgets`]; released on drop.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    budgets: Option<Budgets>,
    amount: usize,
}

impl Charge {
    /// Charges `n` more bytes to `budgets` (all or nothing).
    pub(crate) fn add(&mut self, budgets: &Budgets, n: usize) -> Result<(), Exhausted> {
        if n == 0 {
            return Ok(());
        }
        if !budgets.connection.try_take(n) {
            return Err(Exhausted::Connection);
        }
        if let Some(shared) = &budgets.shared
            && !shared.try_take(n)
        {
            budgets.connection.release(n);
            return Err(Exhausted::Process);
        }
        if self.budgets.is_none() {
            self.budgets = Some(budgets.clone());
        }
        self.amount += n;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(b) = &self.budgets
            && self.amount > 0
        {
            b.connection.release(self.amount);
            if let Some(shared) = &b.shared {
                shared.release(self.amount);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_all_or_nothing_and_released_on_drop() {
        let shared = Arc::new(ByteBudget::new(100));
        let a = Budgets {
            connection: Arc::new(ByteBudget::new(80)),
            shared: Some(shared.clone()),
        };
        let b = Budgets {
            connection: Arc::new(ByteBudget::new(80)),
            shared: Some(shared.clone()),
        };
        let mut ca = Charge::default();
        ca.add(&a, 60).unwrap();
        assert_eq!(ca.add(&a, 30), Err(Exhausted::Connection));
        let mut cb = Charge::default();
        assert_eq!(cb.add(&b, 50), Err(Exhausted::Process));
        assert_eq!(b.connection.used(), 0);
        cb.add(&b, 40).unwrap();
        assert_eq!(shared.used(), 100);
        drop(ca);
        assert_eq!(shared.used(), 40);
        assert_eq!(a.connection.used(), 0);
        drop(cb);
        assert_eq!(shared.used(), 0);
    }
}
