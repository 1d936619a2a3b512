//! Helpers shared by the app's and the customer's commands: reply extraction and customer
//! addressing.

use elarian_proto as proto;

use crate::error::Error;

/// Extracts the expected variant of an `AppToServerCommandReply` entry, or fails with
/// [`Error::UnexpectedReply`].
macro_rules! expect_reply {
    ($entry:expr, $variant:ident) => {
        match $entry {
            elarian_proto::app_to_server_command_reply::Entry::$variant(reply) => {
                $crate::command::BoolStatus::checked(reply)
            }
            _ => Err($crate::error::Error::UnexpectedReply {
                expected: stringify!($variant),
            }),
        }
    };
}
pub(crate) use expect_reply;

/// Builds a command's `customer` oneof (every command module has its own copy of the type).
macro_rules! customer_oneof {
    ($module:ident, $target:expr) => {
        match $target {
            $crate::command::Target::Id(id) => elarian_proto::$module::Customer::CustomerId(id),
            $crate::command::Target::Number(n) => {
                elarian_proto::$module::Customer::CustomerNumber(n)
            }
            $crate::command::Target::SecondaryId(s) => {
                elarian_proto::$module::Customer::SecondaryId(s)
            }
        }
    };
}
pub(crate) use customer_oneof;

/// How a command addresses a customer on the wire.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Id(String),
    Number(proto::CustomerNumber),
    SecondaryId(proto::IndexMapping),
}

/// Replies with a boolean status: `false` becomes [`Error::Failed`]. The runtime already does
/// this; checking again keeps the SDK's contract independent of it.
pub(crate) trait BoolStatus: Sized {
    fn status(&self) -> Option<(bool, &str)>;

    fn checked(self) -> Result<Self, Error> {
        match self.status() {
            Some((false, description)) => Err(Error::Failed {
                description: description.to_string(),
            }),
            _ => Ok(self),
        }
    }
}

macro_rules! bool_status {
    ($($ty:ty),*) => {
        $(impl BoolStatus for $ty {
            fn status(&self) -> Option<(bool, &str)> {
                Some((self.status, &self.description))
            }
        })*
    };
}

macro_rules! enum_status {
    ($($ty:ty),*) => {
        $(impl BoolStatus for $ty {
            fn status(&self) -> Option<(bool, &str)> {
                None
            }
        })*
    };
}

bool_status!(
    proto::GetCustomerStateReply,
    proto::UpdateCustomerStateReply,
    proto::UpdateCustomerAppDataReply,
    proto::LeaseCustomerAppDataReply,
    proto::TagCommandReply,
    proto::CustomerActivityReply,
    proto::ReplayPaymentReply
);
enum_status!(
    proto::GenerateAuthTokenReply,
    proto::SendMessageReply,
    proto::UpdateMessagingConsentReply,
    proto::InitiatePaymentReply
);
