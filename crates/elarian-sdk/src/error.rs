//! The SDK's error type.

use elarian_core::{CommandError, ConfigError, ConnectError};

use crate::models::DataError;

/// Everything an SDK call can fail with.
///
/// Convention for server statuses: a reply whose status is a plain `bool` and is `false` becomes
/// [`Error::Failed`]; replies whose status is an enum (message delivery, consent, payment) are
/// returned as `Ok` with the status in the typed reply, because outcomes such as `NoConsent` or
/// `InsufficientFunds` are for the app to handle, not failures of the call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument was rejected before anything was sent.
    #[error("invalid argument `{argument}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The client is not connected ([`connect`](crate::Elarian::connect) was not called, or
    /// [`disconnect`](crate::Elarian::disconnect) was).
    #[error("not connected: call connect() first")]
    NotConnected,
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server processed the command and answered `status: false`.
    #[error("the server refused: {description}")]
    Failed {
        /// The server's description.
        description: String,
    },
    /// The command could not be carried out (timeout, connection lost, queue full, ERROR frame, …).
    #[error(transparent)]
    Command(CommandError),
    /// The server answered with a reply of another kind than the command calls for.
    #[error("unexpected reply from the server (expected {expected})")]
    UnexpectedReply {
        /// The reply kind expected.
        expected: &'static str,
    },
    /// A command that addresses the customer by number (a message, a voice call, an activity,
    /// a consent update) was called on a customer known only by id or secondary id, and
    /// Elarian's state of the customer holds no number either. Address the customer by number
    /// ([`Elarian::customer`](crate::Elarian::customer)) instead.
    #[error("customer {customer} has no known number, which this command needs")]
    NoCustomerNumber {
        /// How the customer was addressed (its id, else its secondary id).
        customer: String,
    },
    /// App data or metadata could not be (de)serialized.
    #[error(transparent)]
    Data(#[from] DataError),
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Failed { description } => Error::Failed { description },
            CommandError::NotConnected => Error::NotConnected,
            other => Error::Command(other),
        }
    }
}

/// Result alias of the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;
