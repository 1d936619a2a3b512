//! Resume positions and the buffer of sent resumable frames.
//!
//! Positions count bytes of resumable frames (see [`Frame::is_resumable`](crate::frame::Frame::is_resumable)),
//! each frame by its encoded length without any transport length prefix. Every resumable frame this
//! side emits is kept until the peer's implied position (from KEEPALIVE, RESUME or RESUME_OK) shows
//! it arrived. The buffer is bounded: on overflow the session stops being resumable instead of
//! growing.

use std::collections::VecDeque;

use bytes::Bytes;

/// Sent-frame buffer and positions of one session.
#[derive(Debug)]
pub(crate) struct ResumeState {
    /// Bytes of resumable frames received.
    pub(crate) received: u64,
    /// Bytes of resumable frames emitted.
    pub(crate) sent: u64,
    /// Position of the first frame in `frames`.
    pub(crate) first_available: u64,
    frames: VecDeque<Bytes>,
    buffered: usize,
    /// `None` when the session is not (or no longer) resumable.
    limit: Option<usize>,
}

/// A retransmission cannot start at the requested position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionUnavailable;

impl ResumeState {
    pub(crate) fn new(limit: Option<usize>) -> Self {
        ResumeState {
            received: 0,
            sent: 0,
            first_available: 0,
            frames: VecDeque::new(),
            buffered: 0,
            limit,
        }
    }

    pub(crate) fn is_resumable(&self) -> bool {
        self.limit.is_some()
    }

    /// Records an emitted resumable frame.
    pub(crate) fn on_sent(&mut self, frame: &Bytes) {
        self.sent += frame.len() as u64;
        let Some(limit) = self.limit else {
            self.first_available = self.sent;
            return;
        };
        if self.buffered + frame.len() > limit {
            tracing::warn!(
                limit,
                "resume buffer overflow: the session is no longer resumable"
            );
            self.disable();
            return;
        }
        self.buffered += frame.len();
        self.frames.push_back(frame.clone());
    }

    /// Whether the buffer holds more than half its limit: time to learn the peer's position
    /// (a KEEPALIVE with the respond flag) rather than wait for the next periodic one, which
    /// under heavy traffic would come after the buffer overflowed.
    pub(crate) fn is_filling(&self) -> bool {
        self.limit.is_some_and(|limit| self.buffered > limit / 2)
    }

    /// Bytes of frames held for retransmission.
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Stops buffering and releases memory.
    pub(crate) fn disable(&mut self) {
        self.limit = None;
        self.frames = VecDeque::new();
        self.buffered = 0;
        self.first_available = self.sent;
    }

    /// Drops frames the peer has confirmed (its implied position is `position`).
    pub(crate) fn release(&mut self, position: u64) {
        while let Some(front) = self.frames.front() {
            let end = self.first_available + front.len() as u64;
            if end > position {
                break;
            }
            self.first_available = end;
            self.buffered -= front.len();
            self.frames.pop_front();
        }
    }

    /// Whether a retransmission could start at `position` (a frame boundary within what is
    /// buffered), without changing anything: a RESUME is checked with this before it may touch
    /// the session, so that a forged one cannot release frames the real peer still needs.
    pub(crate) fn can_retransmit_from(&self, position: u64) -> bool {
        if position > self.sent || position < self.first_available || !self.is_resumable() {
            return false;
        }
        let mut at = self.first_available;
        for frame in &self.frames {
            if at >= position {
                break;
            }
            at += frame.len() as u64;
        }
        at == position
    }

    /// Bytes of frames held for retransmission, and the most it may hold (`None` when not
    /// resumable).
    pub(crate) fn usage(&self) -> (usize, Option<usize>) {
        (self.buffered, self.limit)
    }

    /// Changes the most the buffer may hold (never below what it holds); no effect when not
    /// resumable.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        if self.limit.is_some() {
            self.limit = Some(limit.max(self.buffered));
        }
    }

    /// The frames to retransmit for a peer that received everything up to `position`.
    pub(crate) fn retransmit_from(
        &mut self,
        position: u64,
    ) -> Result<Vec<Bytes>, PositionUnavailable> {
        if position > self.sent || position < self.first_available || !self.is_resumable() {
            return Err(PositionUnavailable);
        }
        self.release(position);
        if self.first_available != position {
            // The position falls inside a frame: the peer's accounting disagrees with ours.
            return Err(PositionUnavailable);
        }
        Ok(self.frames.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_retransmits_by_position() {
        let mut r = ResumeState::new(Some(100));
        for len in [10usize, 20, 30] {
            r.on_sent(&Bytes::from(vec![0; len]));
        }
        assert_eq!(r.sent, 60);
        r.release(15);
        assert_eq!(r.first_available, 10);
        let frames = r.retransmit_from(30).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), 30);
        assert!(r.retransmit_from(5).is_err());
        assert!(r.retransmit_from(61).is_err());
    }

    #[test]
    fn position_check_changes_nothing() {
        let mut r = ResumeState::new(Some(100));
        for len in [10usize, 20, 30] {
            r.on_sent(&Bytes::from(vec![0; len]));
        }
        assert!(r.can_retransmit_from(0));
        assert!(r.can_retransmit_from(10));
        assert!(r.can_retransmit_from(30));
        assert!(r.can_retransmit_from(60));
        assert!(!r.can_retransmit_from(15));
        assert!(!r.can_retransmit_from(61));
        assert_eq!(r.first_available, 0);
        assert_eq!(r.buffered, 60);
    }

    #[test]
    fn overflow_makes_the_session_non_resumable() {
        let mut r = ResumeState::new(Some(25));
        r.on_sent(&Bytes::from(vec![0; 20]));
        r.on_sent(&Bytes::from(vec![0; 20]));
        assert!(!r.is_resumable());
        assert_eq!(r.buffered, 0);
        assert!(r.retransmit_from(40).is_err());
    }
}
