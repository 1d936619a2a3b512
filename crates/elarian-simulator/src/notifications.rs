//! What the server sends a simulator: the messages, calls and payments an app directs at the
//! simulated customers.

use elarian_proto as proto;
use elarian_proto::{
    checkout_payment_simulator_notification as checkout,
    send_channel_payment_simulator_notification as channel_payment,
    send_customer_payment_simulator_notification as customer_payment,
    server_to_simulator_notification,
};
use elarian_sdk::{
    Cash, CustomerNumber, Message, MessagingChannelNumber, NamedEvent, PaymentChannel,
    PaymentChannelNumber, WalletOrPurse,
};
use serde::{Deserialize, Serialize};

/// The simulator events a handler can be registered for; [`NamedEvent`] names them as the
/// JavaScript client does (`sendMessage`) and parses those names (the spec's
/// `on("sendMessage", handler)`).
///
/// ```
/// use elarian_sdk::NamedEvent;
/// use elarian_simulator::SimulatorEvent;
///
/// assert_eq!(SimulatorEvent::from_name("checkoutPayment"), Some(SimulatorEvent::CheckoutPayment));
/// assert_eq!(SimulatorEvent::from_name("send_message"), Some(SimulatorEvent::SendMessage));
/// assert_eq!(SimulatorEvent::from_name("reminder"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SimulatorEvent {
    /// The app sent a customer a message.
    SendMessage,
    /// The app called a customer.
    MakeVoiceCall,
    /// The app paid a customer.
    SendCustomerPayment,
    /// The app paid a payment channel account.
    SendChannelPayment,
    /// The app asked a customer to pay (checkout).
    CheckoutPayment,
}

impl NamedEvent for SimulatorEvent {
    const ALL: &'static [SimulatorEvent] = &[
        SimulatorEvent::SendMessage,
        SimulatorEvent::MakeVoiceCall,
        SimulatorEvent::SendCustomerPayment,
        SimulatorEvent::SendChannelPayment,
        SimulatorEvent::CheckoutPayment,
    ];

    fn name(self) -> &'static str {
        match self {
            SimulatorEvent::SendMessage => "sendMessage",
            SimulatorEvent::MakeVoiceCall => "makeVoiceCall",
            SimulatorEvent::SendCustomerPayment => "sendCustomerPayment",
            SimulatorEvent::SendChannelPayment => "sendChannelPayment",
            SimulatorEvent::CheckoutPayment => "checkoutPayment",
        }
    }
}

impl std::fmt::Display for SimulatorEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The app sent a message to a simulated customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendMessageNotification {
    /// The organization.
    pub org_id: String,
    /// The customer.
    pub customer_id: String,
    /// The message id.
    pub message_id: String,
    /// The recipient.
    pub customer_number: CustomerNumber,
    /// The app's channel number it was sent from.
    pub channel_number: MessagingChannelNumber,
    /// The message.
    pub message: Message,
}

/// The app called a simulated customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MakeVoiceCallNotification {
    /// The organization.
    pub org_id: String,
    /// The customer.
    pub customer_id: String,
    /// The call's session.
    pub session_id: String,
    /// The callee.
    pub customer_number: CustomerNumber,
    /// The app's voice number.
    pub channel_number: MessagingChannelNumber,
}

/// The app paid a simulated customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendCustomerPaymentNotification {
    /// The organization.
    pub org_id: String,
    /// The customer.
    pub customer_id: String,
    /// The app.
    pub app_id: String,
    /// The transaction.
    pub transaction_id: String,
    /// The payee.
    pub customer_number: CustomerNumber,
    /// The payment channel.
    pub channel_number: PaymentChannelNumber,
    /// How much.
    pub value: Cash,
    /// Where the money comes from.
    pub debit_party: Option<WalletOrPurse>,
}

/// The app paid a payment channel account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendChannelPaymentNotification {
    /// The organization.
    pub org_id: String,
    /// The app.
    pub app_id: String,
    /// The transaction.
    pub transaction_id: String,
    /// The channel.
    pub channel: PaymentChannel,
    /// Source account.
    pub source: String,
    /// Destination account.
    pub destination: String,
    /// Account reference.
    pub account: Option<String>,
    /// How much.
    pub value: Cash,
    /// Where the money comes from.
    pub debit_party: Option<WalletOrPurse>,
}

/// The app asked a simulated customer to pay (a checkout); answer with
/// [`Simulator::update_payment_status`](crate::Simulator::update_payment_status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckoutPaymentNotification {
    /// The organization.
    pub org_id: String,
    /// The customer.
    pub customer_id: String,
    /// The app.
    pub app_id: String,
    /// The transaction.
    pub transaction_id: String,
    /// The payer.
    pub customer_number: CustomerNumber,
    /// The payment channel.
    pub channel_number: PaymentChannelNumber,
    /// How much.
    pub value: Cash,
    /// Where the money goes.
    pub credit_party: Option<WalletOrPurse>,
}

/// Any simulator notification, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SimulatorNotification {
    /// See [`SimulatorEvent::SendMessage`].
    SendMessage(SendMessageNotification),
    /// See [`SimulatorEvent::MakeVoiceCall`].
    MakeVoiceCall(MakeVoiceCallNotification),
    /// See [`SimulatorEvent::SendCustomerPayment`].
    SendCustomerPayment(SendCustomerPaymentNotification),
    /// See [`SimulatorEvent::SendChannelPayment`].
    SendChannelPayment(SendChannelPaymentNotification),
    /// See [`SimulatorEvent::CheckoutPayment`].
    CheckoutPayment(CheckoutPaymentNotification),
}

impl SimulatorNotification {
    /// The event this notification is delivered as.
    pub fn event(&self) -> SimulatorEvent {
        match self {
            SimulatorNotification::SendMessage(_) => SimulatorEvent::SendMessage,
            SimulatorNotification::MakeVoiceCall(_) => SimulatorEvent::MakeVoiceCall,
            SimulatorNotification::SendCustomerPayment(_) => SimulatorEvent::SendCustomerPayment,
            SimulatorNotification::SendChannelPayment(_) => SimulatorEvent::SendChannelPayment,
            SimulatorNotification::CheckoutPayment(_) => SimulatorEvent::CheckoutPayment,
        }
    }
}

/// A wire notification without any known entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulator notification has no known entry")]
pub struct EmptyNotification;

/// The wire has a wallet-or-purse oneof per notification kind, the model one [`WalletOrPurse`].
macro_rules! wallet_or_purse_from {
    ($name:ident, $module:ident :: $oneof:ident) => {
        fn $name(party: $module::$oneof) -> WalletOrPurse {
            match party {
                $module::$oneof::Wallet(w) => w.into(),
                $module::$oneof::Purse(p) => p.into(),
            }
        }
    };
}

wallet_or_purse_from!(wallet_or_purse_from_customer, customer_payment::DebitParty);
wallet_or_purse_from!(wallet_or_purse_from_channel, channel_payment::DebitParty);
wallet_or_purse_from!(wallet_or_purse_from_checkout, checkout::CreditParty);

// The wire messages are destructured field by field, so a field the wire gains is a compile
// error here rather than a value silently dropped. A missing nested message decodes as its
// default, as prost does for the message itself.

impl From<proto::SendMessageSimulatorNotification> for SendMessageNotification {
    fn from(wire: proto::SendMessageSimulatorNotification) -> Self {
        let proto::SendMessageSimulatorNotification {
            org_id,
            customer_id,
            message_id,
            customer_number,
            channel_number,
            message,
        } = wire;
        SendMessageNotification {
            org_id,
            customer_id,
            message_id,
            customer_number: customer_number.unwrap_or_default().into(),
            channel_number: channel_number.unwrap_or_default().into(),
            message: message.unwrap_or_default().into(),
        }
    }
}

impl From<proto::MakeVoiceCallSimulatorNotification> for MakeVoiceCallNotification {
    fn from(wire: proto::MakeVoiceCallSimulatorNotification) -> Self {
        let proto::MakeVoiceCallSimulatorNotification {
            org_id,
            customer_id,
            session_id,
            customer_number,
            channel_number,
        } = wire;
        MakeVoiceCallNotification {
            org_id,
            customer_id,
            session_id,
            customer_number: customer_number.unwrap_or_default().into(),
            channel_number: channel_number.unwrap_or_default().into(),
        }
    }
}

impl From<proto::SendCustomerPaymentSimulatorNotification> for SendCustomerPaymentNotification {
    fn from(wire: proto::SendCustomerPaymentSimulatorNotification) -> Self {
        let proto::SendCustomerPaymentSimulatorNotification {
            org_id,
            customer_id,
            app_id,
            transaction_id,
            customer_number,
            channel_number,
            value,
            debit_party,
        } = wire;
        SendCustomerPaymentNotification {
            org_id,
            customer_id,
            app_id,
            transaction_id,
            customer_number: customer_number.unwrap_or_default().into(),
            channel_number: channel_number.unwrap_or_default().into(),
            value: value.unwrap_or_default().into(),
            debit_party: debit_party.map(wallet_or_purse_from_customer),
        }
    }
}

impl From<proto::SendChannelPaymentSimulatorNotification> for SendChannelPaymentNotification {
    fn from(wire: proto::SendChannelPaymentSimulatorNotification) -> Self {
        let proto::SendChannelPaymentSimulatorNotification {
            org_id,
            app_id,
            transaction_id,
            channel,
            source,
            destination,
            account,
            value,
            debit_party,
        } = wire;
        SendChannelPaymentNotification {
            org_id,
            app_id,
            transaction_id,
            channel: channel.into(),
            source,
            destination,
            account,
            value: value.unwrap_or_default().into(),
            debit_party: debit_party.map(wallet_or_purse_from_channel),
        }
    }
}

impl From<proto::CheckoutPaymentSimulatorNotification> for CheckoutPaymentNotification {
    fn from(wire: proto::CheckoutPaymentSimulatorNotification) -> Self {
        let proto::CheckoutPaymentSimulatorNotification {
            org_id,
            customer_id,
            app_id,
            transaction_id,
            customer_number,
            channel_number,
            value,
            credit_party,
        } = wire;
        CheckoutPaymentNotification {
            org_id,
            customer_id,
            app_id,
            transaction_id,
            customer_number: customer_number.unwrap_or_default().into(),
            channel_number: channel_number.unwrap_or_default().into(),
            value: value.unwrap_or_default().into(),
            credit_party: credit_party.map(wallet_or_purse_from_checkout),
        }
    }
}

impl TryFrom<proto::ServerToSimulatorNotification> for SimulatorNotification {
    type Error = EmptyNotification;

    fn try_from(n: proto::ServerToSimulatorNotification) -> Result<Self, Self::Error> {
        use server_to_simulator_notification::Entry;
        Ok(match n.entry.ok_or(EmptyNotification)? {
            Entry::SendMessage(m) => SimulatorNotification::SendMessage(m.into()),
            Entry::MakeVoiceCall(c) => SimulatorNotification::MakeVoiceCall(c.into()),
            Entry::SendCustomerPayment(p) => SimulatorNotification::SendCustomerPayment(p.into()),
            Entry::SendChannelPayment(p) => SimulatorNotification::SendChannelPayment(p.into()),
            Entry::CheckoutPayment(p) => SimulatorNotification::CheckoutPayment(p.into()),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use elarian_sdk::{MessagingChannel, UssdMenu};

    fn number() -> CustomerNumber {
        CustomerNumber::cellular("+254700000000")
    }

    fn pay_channel() -> PaymentChannelNumber {
        PaymentChannelNumber::new("83044", PaymentChannel::Cellular)
    }

    /// One notification of every simulator event.
    pub(crate) fn every_notification() -> Vec<SimulatorNotification> {
        let wallet = WalletOrPurse::Wallet {
            customer_id: "el_cst_1".into(),
            wallet_id: "w".into(),
        };
        let purse = WalletOrPurse::Purse {
            purse_id: "el_prs_rL3IPZ".into(),
        };
        vec![
            SimulatorNotification::SendMessage(SendMessageNotification {
                org_id: "o".into(),
                customer_id: "c".into(),
                message_id: "m".into(),
                customer_number: number(),
                channel_number: MessagingChannelNumber::new("*83044#", MessagingChannel::Ussd),
                message: Message::ussd(UssdMenu::new("1. Pay")),
            }),
            SimulatorNotification::MakeVoiceCall(MakeVoiceCallNotification {
                org_id: "o".into(),
                customer_id: "c".into(),
                session_id: "s".into(),
                customer_number: number(),
                channel_number: MessagingChannelNumber::new(
                    "+254711621711",
                    MessagingChannel::Voice,
                ),
            }),
            SimulatorNotification::SendCustomerPayment(SendCustomerPaymentNotification {
                org_id: "o".into(),
                customer_id: "c".into(),
                app_id: "a".into(),
                transaction_id: "t".into(),
                customer_number: number(),
                channel_number: pay_channel(),
                value: Cash::new("KES", 10.0),
                debit_party: Some(purse.clone()),
            }),
            SimulatorNotification::SendCustomerPayment(SendCustomerPaymentNotification {
                org_id: "o".into(),
                customer_id: "c".into(),
                app_id: "a".into(),
                transaction_id: "t".into(),
                customer_number: number(),
                channel_number: pay_channel(),
                value: Cash::new("KES", 10.0),
                debit_party: Some(wallet.clone()),
            }),
            SimulatorNotification::SendChannelPayment(SendChannelPaymentNotification {
                org_id: "o".into(),
                app_id: "a".into(),
                transaction_id: "t".into(),
                channel: PaymentChannel::Unknown(9),
                source: "s".into(),
                destination: "d".into(),
                account: Some("acct".into()),
                value: Cash::new("KES", 1.0),
                debit_party: Some(wallet.clone()),
            }),
            SimulatorNotification::SendChannelPayment(SendChannelPaymentNotification {
                org_id: "o".into(),
                app_id: "a".into(),
                transaction_id: "t".into(),
                channel: PaymentChannel::Airtime,
                source: "s".into(),
                destination: "d".into(),
                account: None,
                value: Cash::new("KES", 1.0),
                debit_party: Some(purse.clone()),
            }),
            SimulatorNotification::CheckoutPayment(CheckoutPaymentNotification {
                org_id: "o".into(),
                customer_id: "c".into(),
                app_id: "a".into(),
                transaction_id: "t".into(),
                customer_number: number(),
                channel_number: pay_channel(),
                value: Cash::new("KES", 100.0),
                credit_party: Some(purse),
            }),
            SimulatorNotification::CheckoutPayment(CheckoutPaymentNotification {
                org_id: "o".into(),
                customer_id: "c".into(),
                app_id: "a".into(),
                transaction_id: "t".into(),
                customer_number: number(),
                channel_number: pay_channel(),
                value: Cash::new("KES", 100.0),
                credit_party: Some(wallet),
            }),
        ]
    }

    #[test]
    fn every_notification_round_trips_through_the_wire() {
        let all = every_notification();
        let events: std::collections::HashSet<_> = all.iter().map(|n| n.event()).collect();
        assert_eq!(events.len(), SimulatorEvent::ALL.len());
        for n in all {
            let wire = crate::test_support::encode(n.clone());
            assert_eq!(SimulatorNotification::try_from(wire), Ok(n.clone()));
            let json = serde_json::to_string(&n).expect("serialize");
            assert_eq!(
                serde_json::from_str::<SimulatorNotification>(&json).expect("deserialize"),
                n
            );
        }
    }

    #[test]
    fn empty_notification_is_a_typed_error() {
        assert_eq!(
            SimulatorNotification::try_from(proto::ServerToSimulatorNotification { entry: None }),
            Err(EmptyNotification)
        );
    }
}
