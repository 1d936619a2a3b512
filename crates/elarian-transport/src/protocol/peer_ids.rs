//! Which request stream ids the peer has used.
//!
//! Stream ids are never reused and a requester allocates them in increasing order (RSocket
//! follows HTTP/2 here), so a request on an id the peer already used, or far below the newest
//! one, is a CONNECTION_ERROR. Some implementations (rsocket_rust 0.7, rsocket-java before its
//! ordered id issuing) allocate ids in one task and write frames from several, so requests
//! made at the same moment can arrive slightly out of order; refusing those would cut
//! connections that work everywhere else. So ids are checked against a window: within
//! [`WINDOW`] ids of the newest, an unused id is accepted and a used one refused; below the
//! window every id is refused. Memory is a fixed bitmap, whatever the peer sends.

/// How many of the peer's ids below its newest one may still arrive (out of order).
pub(crate) const WINDOW: u32 = 1024;

const WORDS: usize = (WINDOW / 64) as usize;

/// Why a request's stream id is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdViolation {
    /// The id was already used by an earlier request.
    Reused,
    /// The id is more than [`WINDOW`] ids below the newest one.
    TooOld {
        /// The newest id seen.
        newest: u32,
    },
}

/// The peer's request ids seen so far: the newest, and which of the [`WINDOW`] before it.
#[derive(Debug, Default)]
pub(crate) struct PeerIds {
    /// The newest id, as an index (the ids of one side step by two).
    newest: Option<u32>,
    /// Bit `index % WINDOW` is set when that index (within the window) was used.
    seen: [u64; WORDS],
}

impl PeerIds {
    fn bit(index: u32) -> (usize, u64) {
        let pos = index % WINDOW;
        ((pos / 64) as usize, 1u64 << (pos % 64))
    }

    /// Records a request on `stream_id` (of the peer's parity), or says why it is refused.
    pub(crate) fn record(&mut self, stream_id: u32) -> Result<(), IdViolation> {
        let index = stream_id >> 1;
        let Some(newest) = self.newest else {
            self.newest = Some(index);
            let (w, b) = Self::bit(index);
            self.seen[w] |= b;
            return Ok(());
        };
        if index > newest {
            // Forget the indices the window slides past (their slots are reused).
            if index - newest >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for i in newest + 1..index {
                    let (w, b) = Self::bit(i);
                    self.seen[w] &= !b;
                }
            }
            let (w, b) = Self::bit(index);
            self.seen[w] |= b;
            self.newest = Some(index);
            return Ok(());
        }
        if newest - index >= WINDOW {
            return Err(IdViolation::TooOld {
                newest: (newest << 1) | (stream_id & 1),
            });
        }
        let (w, b) = Self::bit(index);
        if self.seen[w] & b != 0 {
            return Err(IdViolation::Reused);
        }
        self.seen[w] |= b;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_ids_are_accepted_and_reuse_is_refused() {
        let mut ids = PeerIds::default();
        for id in (1..20_000).step_by(2) {
            assert_eq!(ids.record(id), Ok(()), "id {id}");
        }
        assert_eq!(ids.record(19_999), Err(IdViolation::Reused));
        assert_eq!(ids.record(19_001), Err(IdViolation::Reused));
        assert!(matches!(ids.record(1), Err(IdViolation::TooOld { .. })));
    }

    #[test]
    fn slightly_out_of_order_ids_are_accepted_once() {
        let mut ids = PeerIds::default();
        for id in [2, 8, 4, 6, 12, 10] {
            assert_eq!(ids.record(id), Ok(()), "id {id}");
        }
        for id in [2, 4, 6, 8, 10, 12] {
            assert_eq!(ids.record(id), Err(IdViolation::Reused), "id {id}");
        }
        // A gap is fine, and the skipped ids may still come, once.
        assert_eq!(ids.record(100), Ok(()));
        assert_eq!(ids.record(14), Ok(()));
        assert_eq!(ids.record(14), Err(IdViolation::Reused));
    }

    #[test]
    fn a_jump_beyond_the_window_forgets_older_ids() {
        let mut ids = PeerIds::default();
        assert_eq!(ids.record(1), Ok(()));
        let far = 1 + 2 * (WINDOW * 3);
        assert_eq!(ids.record(far), Ok(()));
        assert!(matches!(ids.record(1), Err(IdViolation::TooOld { .. })));
        assert!(matches!(ids.record(3), Err(IdViolation::TooOld { .. })));
        // Just inside the window, unused: accepted.
        assert_eq!(ids.record(far - 2 * (WINDOW - 1)), Ok(()));
        assert_eq!(ids.record(far), Err(IdViolation::Reused));
    }
}
