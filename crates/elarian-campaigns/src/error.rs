//! The campaigns' error type.

use crate::lifecycle::IllegalTransition;
use crate::store::StoreError;

/// Errors of the [`Campaigns`](crate::Campaigns) handle.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CampaignError {
    /// No such message, sending or audience.
    #[error("{resource} {id} not found")]
    NotFound {
        /// `message`, `sending` or `audience`.
        resource: &'static str,
        /// The id asked for.
        id: u64,
    },
    /// A request field is invalid.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field, as a JSON path (`channels[0].sender.value`).
        field: String,
        /// Why.
        reason: String,
    },
    /// The lifecycle does not allow this status change.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// The request conflicts with the resource's state (e.g. editing a message mid-sending).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The campaigns handle was shut down.
    #[error("the campaigns handle is shut down")]
    Closed,
}

/// Result alias of this crate.
pub type Result<T, E = CampaignError> = std::result::Result<T, E>;
