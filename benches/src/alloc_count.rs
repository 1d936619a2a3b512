//! Counting the allocations of the SDK's side: a global allocator that counts the calls made on
//! threads marked as the client's (the SDK runs on its own runtime, see [`Runtimes`](crate::Runtimes)),
//! so that the emulator in the same process is left out of the figures.
//!
//! A bench program installs it with
//! `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`; without it
//! [`snapshot`] returns `None` and nothing is printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The system allocator, counting the allocations of marked threads.
pub struct CountingAlloc;

thread_local! {
    // `const` and without a destructor: reading it never allocates, even while the thread ends.
    static CLIENT_THREAD: Cell<bool> = const { Cell::new(false) };
}

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Set once the counting allocator served a marked thread: the counts mean something.
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn count(size: usize) {
    if CLIENT_THREAD.try_with(Cell::get).unwrap_or(false) {
        // Only the client's threads get here; with one client thread the atomics are uncontended.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches no memory it hands out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growth is a call to the allocator like any other, and may copy.
        count(new_size);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Marks the calling thread as the client's: its allocations are counted from now on.
pub fn mark_client_thread() {
    CLIENT_THREAD.with(|c| c.set(true));
}

/// Marks the calling thread as the client's until the guard is dropped (for a thread that also
/// drives other work, like the one calling `block_on` on a current-thread runtime).
pub fn client_thread() -> ClientThread {
    let was = CLIENT_THREAD.with(|c| c.replace(true));
    ClientThread { was }
}

/// Restores the thread's mark when dropped, from [`client_thread`].
pub struct ClientThread {
    was: bool,
}

impl Drop for ClientThread {
    fn drop(&mut self) {
        CLIENT_THREAD.with(|c| c.set(self.was));
    }
}

/// Allocations counted so far on the client's threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allocs {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub count: u64,
    /// Bytes they asked for.
    pub bytes: u64,
}

impl Allocs {
    /// What was allocated between `earlier` and `self`.
    pub fn since(self, earlier: Allocs) -> Allocs {
        Allocs {
            count: self.count.saturating_sub(earlier.count),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// The counts now, or `None` when the counting allocator is not installed (or no client thread
/// allocated yet).
pub fn snapshot() -> Option<Allocs> {
    INSTALLED.load(Ordering::Relaxed).then(|| Allocs {
        count: ALLOCATIONS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_and_never_underflows() {
        let a = Allocs {
            count: 10,
            bytes: 100,
        };
        let b = Allocs {
            count: 15,
            bytes: 160,
        };
        assert_eq!(
            b.since(a),
            Allocs {
                count: 5,
                bytes: 60
            }
        );
        assert_eq!(a.since(b), Allocs::default());
    }

    #[test]
    fn the_guard_restores_the_mark() {
        std::thread::spawn(|| {
            assert!(!CLIENT_THREAD.with(Cell::get));
            {
                let _g = client_thread();
                assert!(CLIENT_THREAD.with(Cell::get));
            }
            assert!(!CLIENT_THREAD.with(Cell::get));
            mark_client_thread();
            assert!(CLIENT_THREAD.with(Cell::get));
        })
        .join()
        .unwrap();
    }
}
