//! Where the answers to a connection's REQUEST_RESPONSEs wait for their requesters: a table of
//! completion slots owned by the connection and reused from request to request, in place of a
//! fresh oneshot channel (one allocation) per request.
//!
//! A request takes a slot together with its in-flight permit, and the slot keeps the permit
//! until both sides are done with it: the requester ([`PendingReply`]) has taken the answer or
//! given up, and the driver's [`Completion`] has been used or dropped. So the table never holds
//! more slots than the in-flight limit allows, even while canceled requests wait for the driver.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::limit::{InflightLimit, Permit};
use crate::payload::Payload;
use crate::protocol::RequestError;

/// What a request's answer is; `None` when the driver dropped the request unanswered (it
/// stopped), which the requester reports as the connection's closing.
pub(super) type Answer = Option<Result<Payload, RequestError>>;

/// The completion slots of one connection.
#[derive(Debug)]
pub(super) struct ReplySlots {
    table: Mutex<Table>,
    /// The limiter whose permits the slots hold.
    inflight: Arc<InflightLimit>,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<Slot>,
    /// Indices of `Slot::Free` entries, reused before the table grows.
    free: Vec<usize>,
}

#[derive(Debug)]
enum Slot {
    Free,
    /// Both sides hold the slot; the requester waits (with its waker once it polled).
    Waiting(Option<Waker>),
    /// Answered; the requester has not taken the answer yet.
    Ready(Answer),
    /// The requester gave up; the driver still holds the [`Completion`].
    Abandoned,
}

impl ReplySlots {
    pub(super) fn new(inflight: Arc<InflightLimit>) -> Self {
        ReplySlots {
            table: Mutex::new(Table::default()),
            inflight,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while the lock is held; a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for a request holding `permit` (a permit of this table's limiter), which
    /// the slot keeps until it is free again.
    pub(super) fn take(self: &Arc<Self>, permit: Permit<'_>) -> (PendingReply<'_>, Completion) {
        debug_assert!(permit.is_of(&self.inflight));
        permit.keep();
        let mut table = self.lock();
        let index = match table.free.pop() {
            Some(index) => {
                table.slots[index] = Slot::Waiting(None);
                index
            }
            // The permits bound the table by the in-flight limit.
            None => {
                table.slots.push(Slot::Waiting(None));
                table.slots.len() - 1
            }
        };
        drop(table);
        (
            PendingReply {
                slots: self,
                index,
                done: false,
            },
            Completion {
                slots: self.clone(),
                index,
                done: false,
            },
        )
    }

    /// Marks a slot free and returns its permit (with the table locked).
    fn free(&self, table: &mut Table, index: usize) {
        table.slots[index] = Slot::Free;
        table.free.push(index);
        self.inflight.release_kept();
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        let table = self.lock();
        table.slots.len() - table.free.len()
    }
}

/// The requester's end of a slot. Dropped before taking the answer, it gives the slot up (the
/// caller cancels the request with the peer).
#[derive(Debug)]
pub(super) struct PendingReply<'a> {
    slots: &'a ReplySlots,
    index: usize,
    done: bool,
}

impl PendingReply<'_> {
    /// The answer once the driver gave it.
    pub(super) fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Answer> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut table = self.slots.lock();
        let slot = &mut table.slots[self.index];
        match slot {
            Slot::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Slot::Ready(answer) => {
                let answer = answer.take();
                self.slots.free(&mut table, self.index);
                self.done = true;
                Poll::Ready(answer)
            }
            // Only this handle abandons or frees the slot, and it has done neither.
            Slot::Abandoned | Slot::Free => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }

    /// Whether the answer was taken (so there is nothing to cancel).
    #[cfg(test)]
    fn is_done(&self) -> bool {
        self.done
    }

    /// Gives the slot up before taking the answer. Returns whether the request was still
    /// unanswered (and so should be canceled with the peer).
    pub(super) fn abandon(&mut self) -> bool {
        if std::mem::replace(&mut self.done, true) {
            return false;
        }
        let mut table = self.slots.lock();
        let slot = &mut table.slots[self.index];
        match slot {
            // The driver skips an abandoned request it has not sent yet, and frees the slot
            // when it lets go of the completion.
            Slot::Waiting(_) => {
                *slot = Slot::Abandoned;
                true
            }
            Slot::Ready(answer) => {
                let answer = answer.take();
                self.slots.free(&mut table, self.index);
                drop(table);
                drop(answer);
                false
            }
            Slot::Abandoned | Slot::Free => false,
        }
    }
}

impl Drop for PendingReply<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// The driver's end of a slot: where the answer goes. Dropped unused, it tells the requester
/// that the request ended unanswered.
#[derive(Debug)]
pub(crate) struct Completion {
    slots: Arc<ReplySlots>,
    index: usize,
    done: bool,
}

impl Completion {
    /// Whether the requester gave up (the request need not be sent).
    pub(crate) fn is_abandoned(&self) -> bool {
        matches!(self.slots.lock().slots[self.index], Slot::Abandoned)
    }

    /// Hands the answer to the requester (or drops it if the requester gave up).
    pub(crate) fn complete(mut self, result: Result<Payload, RequestError>) {
        self.finish(Some(result));
    }

    fn finish(&mut self, answer: Answer) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let mut table = self.slots.lock();
        let slot = &mut table.slots[self.index];
        match slot {
            Slot::Waiting(waker) => {
                let waker = waker.take();
                *slot = Slot::Ready(answer);
                drop(table);
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Slot::Abandoned => {
                self.slots.free(&mut table, self.index);
                drop(table);
                drop(answer);
            }
            // Only this completion answers the slot, once.
            Slot::Ready(_) | Slot::Free => {}
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn table(max: usize) -> (Arc<InflightLimit>, Arc<ReplySlots>) {
        let inflight = Arc::new(InflightLimit::new(max));
        let slots = Arc::new(ReplySlots::new(inflight.clone()));
        (inflight, slots)
    }

    #[tokio::test]
    async fn the_answer_reaches_the_waiting_requester_and_frees_the_slot() {
        let (inflight, slots) = table(1);
        let (mut pending, completion) = slots.take(inflight.try_acquire().unwrap());
        let waiter = poll_fn(|cx| pending.poll_answer(cx));
        let answer = async {
            tokio::task::yield_now().await;
            completion.complete(Ok(Payload::new("hi")));
        };
        let (got, ()) = tokio::join!(waiter, answer);
        assert_eq!(got, Some(Ok(Payload::new("hi"))));
        assert!(pending.is_done());
        drop(pending);
        assert_eq!(slots.in_use(), 0);
        assert!(inflight.try_acquire().is_some(), "the permit came back");
    }

    #[tokio::test]
    async fn a_completion_dropped_unused_answers_none() {
        let (inflight, slots) = table(1);
        let (mut pending, completion) = slots.take(inflight.try_acquire().unwrap());
        drop(completion);
        assert_eq!(poll_fn(|cx| pending.poll_answer(cx)).await, None);
        drop(pending);
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn an_abandoned_slot_keeps_its_permit_until_the_driver_lets_go() {
        let (inflight, slots) = table(1);
        let (pending, completion) = slots.take(inflight.try_acquire().unwrap());
        assert!(!completion.is_abandoned());
        drop(pending);
        assert!(completion.is_abandoned());
        assert!(
            inflight.try_acquire().is_none(),
            "still in flight with the peer"
        );
        completion.complete(Err(RequestError::TimedOut));
        assert_eq!(slots.in_use(), 0);
        assert!(inflight.try_acquire().is_some());
    }

    #[test]
    fn an_answer_never_taken_is_dropped_with_the_requester() {
        let (inflight, slots) = table(1);
        let (pending, completion) = slots.take(inflight.try_acquire().unwrap());
        completion.complete(Ok(Payload::new("late")));
        drop(pending);
        assert_eq!(slots.in_use(), 0);
        assert!(inflight.try_acquire().is_some());
    }

    #[test]
    fn freed_slots_are_reused_and_the_table_stays_within_the_limit() {
        let (inflight, slots) = table(3);
        for round in 0..100 {
            let held: Vec<_> = (0..3)
                .map(|_| slots.take(inflight.try_acquire().unwrap()))
                .collect();
            assert!(inflight.try_acquire().is_none());
            for (i, (pending, completion)) in held.into_iter().enumerate() {
                // Every order of the two ends letting go.
                if (i + round) % 2 == 0 {
                    drop(pending);
                    drop(completion);
                } else {
                    completion.complete(Ok(Payload::new("x")));
                    drop(pending);
                }
            }
            assert_eq!(slots.in_use(), 0);
        }
        assert_eq!(slots.lock().slots.len(), 3);
    }
}
