//! The Sending lifecycle as the seed states it, and the Message's aggregated status.
//!
//! ```text
//!   draft <──────> scheduled ──> preparing ──> prepared ──> transmitting ──> transmitted
//!     │               │             │  │          │              │
//!     │               │             │  └─> skipped│              │
//!     └───────────────┴─────────────┴──────────────┴──────────────┴──> cancelled
//!                     └─────────────┴──────────────┴──────────────┴──> failed (deadline)
//! ```

use crate::model::{SendingStatus, SendingsStatus};

/// A status change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} sending cannot become {to}")]
pub struct IllegalTransition {
    /// Current status.
    pub from: SendingStatus,
    /// Requested status.
    pub to: SendingStatus,
}

/// Checks one status change.
///
/// - `draft` ↔ `scheduled` (and `scheduled` → `scheduled`, a new time) while execution has not
///   started;
/// - `scheduled` → `preparing` → `prepared` → `transmitting` → `transmitted`;
/// - `preparing` → `skipped` when no recipient resolves;
/// - any non-final status → `cancelled`;
/// - `scheduled`, `preparing`, `prepared`, `transmitting` → `failed` (the deadline passed);
/// - nothing leaves a final status: a cancelled or failed sending is cloned, not rescheduled.
///
/// ```
/// use elarian_campaigns::{check_transition, SendingStatus::*};
/// assert!(check_transition(Draft, Scheduled).is_ok());
/// assert!(check_transition(Cancelled, Scheduled).is_err());
/// ```
pub fn check_transition(from: SendingStatus, to: SendingStatus) -> Result<(), IllegalTransition> {
    use SendingStatus::*;
    let legal = match (from, to) {
        (Draft, Scheduled) | (Scheduled, Draft) | (Scheduled, Scheduled) | (Draft, Draft) => true,
        (Scheduled, Preparing)
        | (Preparing, Prepared)
        | (Preparing, Skipped)
        | (Prepared, Transmitting)
        | (Transmitting, Transmitted) => true,
        (f, Cancelled) => !f.is_final(),
        (Scheduled | Preparing | Prepared | Transmitting, Failed) => true,
        _ => false,
    };
    if legal {
        Ok(())
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// The Message's `sendings_status`, by the seed's rule: `finished` when every sending is
/// transmitted, cancelled, failed or skipped; `draft` when every sending is a draft; else
/// `scheduled`. A message without sendings is a `draft` (every one of none is a draft; the
/// "finished" rule is checked first in the seed, but a message that never ran is not finished).
///
/// ```
/// use elarian_campaigns::{aggregate_status, SendingStatus::*, SendingsStatus};
/// assert_eq!(aggregate_status([Transmitted, Cancelled]), SendingsStatus::Finished);
/// assert_eq!(aggregate_status([Draft, Draft]), SendingsStatus::Draft);
/// assert_eq!(aggregate_status([Draft, Transmitted]), SendingsStatus::Scheduled);
/// ```
pub fn aggregate_status(statuses: impl IntoIterator<Item = SendingStatus>) -> SendingsStatus {
    let mut any = false;
    let mut all_final = true;
    let mut all_draft = true;
    for s in statuses {
        any = true;
        all_final &= s.is_final();
        all_draft &= s == SendingStatus::Draft;
    }
    if !any {
        SendingsStatus::Draft
    } else if all_final {
        SendingsStatus::Finished
    } else if all_draft {
        SendingsStatus::Draft
    } else {
        SendingsStatus::Scheduled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SendingStatus::*;

    #[test]
    fn every_pair_of_statuses_is_decided_as_the_seed_says() {
        let legal = [
            (Draft, Draft),
            (Draft, Scheduled),
            (Draft, Cancelled),
            (Scheduled, Draft),
            (Scheduled, Scheduled),
            (Scheduled, Preparing),
            (Scheduled, Cancelled),
            (Scheduled, Failed),
            (Preparing, Prepared),
            (Preparing, Skipped),
            (Preparing, Cancelled),
            (Preparing, Failed),
            (Prepared, Transmitting),
            (Prepared, Cancelled),
            (Prepared, Failed),
            (Transmitting, Transmitted),
            (Transmitting, Cancelled),
            (Transmitting, Failed),
        ];
        for from in SendingStatus::ALL {
            for to in SendingStatus::ALL {
                let expected = legal.contains(&(from, to));
                assert_eq!(
                    check_transition(from, to).is_ok(),
                    expected,
                    "{from} -> {to}"
                );
                if !expected {
                    assert_eq!(
                        check_transition(from, to),
                        Err(IllegalTransition { from, to })
                    );
                }
            }
        }
    }

    #[test]
    fn aggregation_follows_the_seed() {
        assert_eq!(aggregate_status([]), SendingsStatus::Draft);
        assert_eq!(aggregate_status([Draft]), SendingsStatus::Draft);
        for f in [Transmitted, Cancelled, Failed, Skipped] {
            assert_eq!(aggregate_status([f]), SendingsStatus::Finished);
            assert_eq!(aggregate_status([f, Draft]), SendingsStatus::Scheduled);
        }
        for s in [Scheduled, Preparing, Prepared, Transmitting] {
            assert_eq!(
                aggregate_status([Transmitted, s]),
                SendingsStatus::Scheduled
            );
        }
        assert_eq!(
            aggregate_status([Transmitted, Skipped, Failed, Cancelled]),
            SendingsStatus::Finished
        );
    }
}
