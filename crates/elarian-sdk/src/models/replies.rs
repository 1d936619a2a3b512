//! Typed replies of commands.
//!
//! Convention: a reply whose wire status is a plain `bool` becomes `Err(Error::Failed { .. })` when
//! the server says `false`, so these types only exist for successes. A reply whose status is an enum
//! (message delivery, consent, payment) is returned as is, since statuses such as `NoConsent` or
//! `InsufficientFunds` are outcomes an app handles, not failures of the call; check `status`.

use elarian_proto as proto;
use serde::{Deserialize, Serialize};

use super::enums::{ConsentUpdateStatus, MessageDeliveryStatus, PaymentStatus};
use super::message::Message;

/// The server applied a change to a customer's state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomerStateUpdateReply {
    /// The customer's id (learnt from the server when the customer was addressed by number).
    pub customer_id: Option<String>,
    /// The server's description.
    pub description: String,
}

impl From<proto::UpdateCustomerStateReply> for CustomerStateUpdateReply {
    fn from(r: proto::UpdateCustomerStateReply) -> Self {
        CustomerStateUpdateReply {
            customer_id: r.customer_id,
            description: r.description,
        }
    }
}

impl From<proto::UpdateCustomerAppDataReply> for CustomerStateUpdateReply {
    fn from(r: proto::UpdateCustomerAppDataReply) -> Self {
        CustomerStateUpdateReply {
            customer_id: r.customer_id,
            description: r.description,
        }
    }
}

impl From<proto::CustomerActivityReply> for CustomerStateUpdateReply {
    fn from(r: proto::CustomerActivityReply) -> Self {
        CustomerStateUpdateReply {
            customer_id: r.customer_id,
            description: r.description,
        }
    }
}

/// The server accepted a tag-wide command; the work runs in the background.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagUpdateReply {
    /// Id of the background work.
    pub work_id: Option<String>,
    /// The server's description.
    pub description: String,
}

impl From<proto::TagCommandReply> for TagUpdateReply {
    fn from(r: proto::TagCommandReply) -> Self {
        TagUpdateReply {
            work_id: r.work_id,
            description: r.description,
        }
    }
}

/// Outcome of sending a message. Check [`status`](Self::status): e.g. `NoConsent` is not an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageReply {
    /// Delivery status.
    pub status: MessageDeliveryStatus,
    /// The server's description.
    pub description: String,
    /// Id of the message.
    pub message_id: Option<String>,
    /// Session it was sent in.
    pub session_id: Option<String>,
    /// The customer's id.
    pub customer_id: Option<String>,
}

impl MessageReply {
    /// True when the message was accepted.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

impl From<proto::SendMessageReply> for MessageReply {
    fn from(r: proto::SendMessageReply) -> Self {
        MessageReply {
            status: r.status.into(),
            description: r.description,
            message_id: r.message_id,
            session_id: r.session_id,
            customer_id: r.customer_id,
        }
    }
}

/// Outcome of a messaging-consent update.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsentUpdateReply {
    /// Status of the update.
    pub status: ConsentUpdateStatus,
    /// The server's description.
    pub description: String,
    /// The customer's id.
    pub customer_id: Option<String>,
}

impl From<proto::UpdateMessagingConsentReply> for ConsentUpdateReply {
    fn from(r: proto::UpdateMessagingConsentReply) -> Self {
        ConsentUpdateReply {
            status: r.status.into(),
            description: r.description,
            customer_id: r.customer_id,
        }
    }
}

/// Outcome of a payment request. Check [`status`](Self::status): e.g. `InsufficientFunds` is not an
/// error of the call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InitiatePaymentReply {
    /// Payment status.
    pub status: PaymentStatus,
    /// The server's description.
    pub description: String,
    /// Elarian's transaction id.
    pub transaction_id: Option<String>,
    /// The paying customer's id, when a customer pays.
    pub debit_customer_id: Option<String>,
    /// The paid customer's id, when a customer is paid.
    pub credit_customer_id: Option<String>,
}

impl InitiatePaymentReply {
    /// True when the payment is accepted or done.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

impl From<proto::InitiatePaymentReply> for InitiatePaymentReply {
    fn from(r: proto::InitiatePaymentReply) -> Self {
        InitiatePaymentReply {
            status: r.status.into(),
            description: r.description,
            transaction_id: r.transaction_id,
            debit_customer_id: r.debit_customer_id,
            credit_customer_id: r.credit_customer_id,
        }
    }
}

/// The server recorded a replayed payment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplayPaymentReply {
    /// The server's description.
    pub description: String,
    /// Elarian's transaction id.
    pub transaction_id: Option<String>,
    /// The paying customer's id.
    pub debit_customer_id: Option<String>,
    /// The paid customer's id.
    pub credit_customer_id: Option<String>,
}

impl From<proto::ReplayPaymentReply> for ReplayPaymentReply {
    fn from(r: proto::ReplayPaymentReply) -> Self {
        ReplayPaymentReply {
            description: r.description,
            transaction_id: r.transaction_id,
            debit_customer_id: r.debit_customer_id,
            credit_customer_id: r.credit_customer_id,
        }
    }
}

/// The server accepted a simulator command.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SimulatorReply {
    /// The server's description.
    pub description: String,
    /// The app's answer, when there is one (e.g. the next USSD screen or voice actions).
    pub message: Option<Message>,
}

impl From<proto::SimulatorToServerCommandReply> for SimulatorReply {
    fn from(r: proto::SimulatorToServerCommandReply) -> Self {
        SimulatorReply {
            description: r.description,
            message: r.message.map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_status_and_ids() {
        let r = MessageReply::from(proto::SendMessageReply {
            status: 401,
            description: "no consent".into(),
            message_id: Some("m".into()),
            session_id: None,
            customer_id: Some("c".into()),
        });
        assert_eq!(r.status, MessageDeliveryStatus::NoConsent);
        assert!(!r.is_success());
        assert_eq!(r.customer_id.as_deref(), Some("c"));

        let p = InitiatePaymentReply::from(proto::InitiatePaymentReply {
            status: 202,
            description: "d".into(),
            transaction_id: Some("t".into()),
            debit_customer_id: Some("dc".into()),
            credit_customer_id: None,
        });
        assert_eq!(p.status, PaymentStatus::InsufficientFunds);
        assert!(!p.is_success());

        let c = ConsentUpdateReply::from(proto::UpdateMessagingConsentReply {
            status: 300,
            description: String::new(),
            customer_id: None,
        });
        assert_eq!(c.status, ConsentUpdateStatus::Completed);

        let s = SimulatorReply::from(proto::SimulatorToServerCommandReply {
            status: true,
            description: "ok".into(),
            message: Some(Message::text("menu").into()),
        });
        assert_eq!(s.message, Some(Message::text("menu")));
    }
}
