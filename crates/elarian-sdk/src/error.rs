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

impl Error {
    /// Whether the call gave up waiting: a command without a reply within the command timeout
    /// (it may or may not have run), or a connect that timed out (its
    /// [`source`](std::error::Error::source) says why the last attempt failed).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Command(error) => error.is_timeout(),
            Error::Connect(error) => error.is_timeout(),
            _ => false,
        }
    }

    /// Whether there was no connection to carry the call: not connected, disconnected, or the
    /// connection was lost with the command in flight (it may have run).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::NotConnected => true,
            Error::Command(error) => error.is_connection_lost(),
            _ => false,
        }
    }

    /// Whether the server refused: the credentials at connect ([`ConnectError::Rejected`]),
    /// or the command itself (`status: false`, [`Error::Failed`]).
    pub fn is_rejected(&self) -> bool {
        match self {
            Error::Connect(error) => error.is_rejected(),
            Error::Failed { .. } => true,
            _ => false,
        }
    }

    /// Whether an argument was rejected before anything was sent.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(self, Error::InvalidArgument { .. })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart_by_the_helpers() {
        let timeout = Error::from(CommandError::Timeout);
        assert!(timeout.is_timeout() && !timeout.is_connection_lost() && !timeout.is_rejected());
        let connect = Error::from(ConnectError::Timeout {
            last: Some(Box::new(ConnectError::Rejected {
                message: "bad key".into(),
            })),
        });
        assert!(connect.is_timeout());
        assert_eq!(
            std::error::Error::source(&connect).map(ToString::to_string),
            Some("the server rejected the connection: bad key".to_owned())
        );
        let rejected = Error::from(ConnectError::Rejected {
            message: "bad key".into(),
        });
        assert!(rejected.is_rejected() && !rejected.is_timeout());
        let failed = Error::from(CommandError::Failed {
            description: "no such customer".into(),
        });
        assert!(failed.is_rejected());
        assert!(Error::from(CommandError::NotConnected).is_connection_lost());
        assert!(Error::from(CommandError::ConnectionLost).is_connection_lost());
        let invalid = Error::InvalidArgument {
            argument: "text",
            reason: "empty".into(),
        };
        assert!(invalid.is_invalid_argument() && !invalid.is_timeout());
    }
}
