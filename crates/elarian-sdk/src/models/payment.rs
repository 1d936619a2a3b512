//! Payments: counterparties, transactions and balances.

use std::collections::HashMap;
use std::time::SystemTime;

use elarian_proto as proto;
use elarian_proto::payment_counter_party::Party;
use serde::{Deserialize, Serialize};

use super::common::{Cash, CustomerNumber, PaymentChannelNumber};
use super::enums::{PaymentChannel, PaymentStatus};
use super::time;

/// One side of a payment.
///
/// ```
/// use elarian_sdk::{CustomerNumber, PaymentChannel, PaymentChannelNumber, PaymentCounterParty};
/// let customer = PaymentCounterParty::Customer {
///     customer_number: CustomerNumber::cellular("+254700000000"),
///     channel_number: PaymentChannelNumber::new("83044", PaymentChannel::Cellular),
/// };
/// let purse = PaymentCounterParty::Purse { purse_id: "el_prs_rL3IPZ".into() };
/// # let _ = (customer, purse);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCounterParty {
    /// A customer paying or paid through a payment channel (e.g. mobile money).
    Customer {
        /// The customer's number.
        customer_number: CustomerNumber,
        /// The app's payment channel number.
        channel_number: PaymentChannelNumber,
    },
    /// One of the app's purses.
    Purse {
        /// The purse.
        purse_id: String,
    },
    /// A customer's wallet held by the app.
    Wallet {
        /// The customer.
        customer_id: String,
        /// The wallet.
        wallet_id: String,
    },
    /// A payment channel account (e.g. a bank or a paybill).
    Channel(ChannelCounterParty),
}

/// A payment channel account as a counterparty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChannelCounterParty {
    /// The channel.
    pub channel: PaymentChannel,
    /// Provider-specific channel code.
    pub channel_code: i32,
    /// Source account.
    pub source: String,
    /// Destination account.
    pub destination: String,
    /// Account reference.
    pub account: Option<String>,
}

impl From<PaymentCounterParty> for proto::PaymentCounterParty {
    fn from(p: PaymentCounterParty) -> Self {
        let party = match p {
            PaymentCounterParty::Customer {
                customer_number,
                channel_number,
            } => Party::Customer(proto::PaymentCustomerCounterParty {
                customer_number: Some(customer_number.into()),
                channel_number: Some(channel_number.into()),
            }),
            PaymentCounterParty::Purse { purse_id } => {
                Party::Purse(proto::PaymentPurseCounterParty { purse_id })
            }
            PaymentCounterParty::Wallet {
                customer_id,
                wallet_id,
            } => Party::Wallet(proto::PaymentWalletCounterParty {
                customer_id,
                wallet_id,
            }),
            PaymentCounterParty::Channel(c) => Party::Channel(proto::PaymentChannelCounterParty {
                channel: c.channel.into(),
                channel_code: c.channel_code,
                source: c.source,
                destination: c.destination,
                account: c.account,
            }),
        };
        proto::PaymentCounterParty { party: Some(party) }
    }
}

impl PaymentCounterParty {
    /// Reads a wire counterparty; `None` when no party is set.
    pub(crate) fn from_proto(p: proto::PaymentCounterParty) -> Option<Self> {
        Some(match p.party? {
            Party::Customer(c) => PaymentCounterParty::Customer {
                customer_number: c.customer_number.unwrap_or_default().into(),
                channel_number: c.channel_number.unwrap_or_default().into(),
            },
            Party::Purse(p) => PaymentCounterParty::Purse {
                purse_id: p.purse_id,
            },
            Party::Wallet(w) => PaymentCounterParty::Wallet {
                customer_id: w.customer_id,
                wallet_id: w.wallet_id,
            },
            Party::Channel(c) => PaymentCounterParty::Channel(ChannelCounterParty {
                channel: c.channel.into(),
                channel_code: c.channel_code,
                source: c.source,
                destination: c.destination,
                account: c.account,
            }),
        })
    }
}

/// Where simulator payment notifications take money from or put it: a wallet or a purse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletOrPurse {
    /// A customer's wallet.
    Wallet {
        /// The customer.
        customer_id: String,
        /// The wallet.
        wallet_id: String,
    },
    /// One of the app's purses.
    Purse {
        /// The purse.
        purse_id: String,
    },
}

impl From<proto::PaymentWalletCounterParty> for WalletOrPurse {
    fn from(w: proto::PaymentWalletCounterParty) -> Self {
        WalletOrPurse::Wallet {
            customer_id: w.customer_id,
            wallet_id: w.wallet_id,
        }
    }
}

impl From<proto::PaymentPurseCounterParty> for WalletOrPurse {
    fn from(p: proto::PaymentPurseCounterParty) -> Self {
        WalletOrPurse::Purse {
            purse_id: p.purse_id,
        }
    }
}

/// A payment as recorded in a customer's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PaymentTransaction {
    /// Elarian's transaction id.
    pub transaction_id: String,
    /// The app that made it.
    pub app_id: Option<String>,
    /// Who pays.
    pub debit_party: Option<PaymentCounterParty>,
    /// Who is paid.
    pub credit_party: Option<PaymentCounterParty>,
    /// How much.
    pub value: Option<Cash>,
    /// Where it stands.
    pub status: PaymentStatus,
    /// When it was made.
    pub created_at: Option<SystemTime>,
    /// Last status change.
    pub updated_at: Option<SystemTime>,
    /// The provider's id for it.
    pub provider_transaction_id: Option<String>,
    /// Description.
    pub narration: Option<String>,
}

impl From<PaymentTransaction> for proto::PaymentTransaction {
    fn from(t: PaymentTransaction) -> Self {
        proto::PaymentTransaction {
            transaction_id: t.transaction_id,
            app_id: t.app_id,
            debit_party: t.debit_party.map(Into::into),
            credit_party: t.credit_party.map(Into::into),
            value: t.value.map(Into::into),
            status: t.status.into(),
            created_at: t.created_at.map(time::timestamp),
            updated_at: t.updated_at.map(time::timestamp),
            provider_transaction_id: t.provider_transaction_id,
            narration: t.narration,
        }
    }
}

impl From<proto::PaymentTransaction> for PaymentTransaction {
    fn from(t: proto::PaymentTransaction) -> Self {
        PaymentTransaction {
            transaction_id: t.transaction_id,
            app_id: t.app_id,
            debit_party: t.debit_party.and_then(PaymentCounterParty::from_proto),
            credit_party: t.credit_party.and_then(PaymentCounterParty::from_proto),
            value: t.value.map(Into::into),
            status: t.status.into(),
            created_at: time::opt_system_time(t.created_at.as_ref()),
            updated_at: time::opt_system_time(t.updated_at.as_ref()),
            provider_transaction_id: t.provider_transaction_id,
            narration: t.narration,
        }
    }
}

/// A payment not settled yet, as held against a balance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PendingPayment {
    /// When it was made.
    pub created_at: Option<SystemTime>,
    /// Amount in the payment's currency.
    pub value: Option<Cash>,
    /// Amount in the balance's currency.
    pub converted: Option<Cash>,
}

/// The balance of one wallet.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PaymentBalance {
    /// Currency of the wallet.
    pub currency_code: String,
    /// What can be spent now.
    pub available: Option<Cash>,
    /// What the wallet holds, pending payments included.
    pub actual: Option<Cash>,
    /// Pending payments by transaction id.
    pub pending: HashMap<String, PendingPayment>,
    /// Version of the balance.
    pub sequence_nr: i64,
}

impl From<PaymentBalance> for proto::PaymentBalance {
    fn from(b: PaymentBalance) -> Self {
        proto::PaymentBalance {
            currency_code: b.currency_code,
            available: b.available.map(Into::into),
            actual: b.actual.map(Into::into),
            pending: b
                .pending
                .into_iter()
                .map(|(k, p)| {
                    (
                        k,
                        proto::PendingPaymentTransaction {
                            created_at: p.created_at.map(time::timestamp),
                            value: p.value.map(Into::into),
                            converted: p.converted.map(Into::into),
                        },
                    )
                })
                .collect(),
            sequence_nr: b.sequence_nr,
        }
    }
}

impl From<proto::PaymentBalance> for PaymentBalance {
    fn from(b: proto::PaymentBalance) -> Self {
        PaymentBalance {
            currency_code: b.currency_code,
            available: b.available.map(Into::into),
            actual: b.actual.map(Into::into),
            pending: b
                .pending
                .into_iter()
                .map(|(k, p)| {
                    (
                        k,
                        PendingPayment {
                            created_at: time::opt_system_time(p.created_at.as_ref()),
                            value: p.value.map(Into::into),
                            converted: p.converted.map(Into::into),
                        },
                    )
                })
                .collect(),
            sequence_nr: b.sequence_nr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn every_party() -> Vec<PaymentCounterParty> {
        vec![
            PaymentCounterParty::Customer {
                customer_number: CustomerNumber::cellular("+254700000000"),
                channel_number: PaymentChannelNumber::new("83044", PaymentChannel::Cellular),
            },
            PaymentCounterParty::Purse {
                purse_id: "el_prs_rL3IPZ".into(),
            },
            PaymentCounterParty::Wallet {
                customer_id: "el_cst_1".into(),
                wallet_id: "savings".into(),
            },
            PaymentCounterParty::Channel(ChannelCounterParty {
                channel: PaymentChannel::Airtime,
                channel_code: 7,
                source: "s".into(),
                destination: "d".into(),
                account: Some("acct".into()),
            }),
        ]
    }

    #[test]
    fn every_counterparty_round_trips() {
        for party in every_party() {
            let wire = proto::PaymentCounterParty::from(party.clone());
            assert_eq!(PaymentCounterParty::from_proto(wire), Some(party));
        }
        assert_eq!(
            PaymentCounterParty::from_proto(proto::PaymentCounterParty { party: None }),
            None
        );
    }

    #[test]
    fn transactions_and_balances_round_trip() {
        let parties = every_party();
        let tx = PaymentTransaction {
            transaction_id: "tx".into(),
            app_id: Some("app".into()),
            debit_party: Some(parties[0].clone()),
            credit_party: Some(parties[1].clone()),
            value: Some(Cash::new("KES", 10.0)),
            status: PaymentStatus::Unknown(1_234),
            created_at: Some(UNIX_EPOCH + Duration::from_secs(100)),
            updated_at: Some(UNIX_EPOCH + Duration::from_secs(200)),
            provider_transaction_id: Some("ptx".into()),
            narration: Some("n".into()),
        };
        assert_eq!(
            PaymentTransaction::from(proto::PaymentTransaction::from(tx.clone())),
            tx
        );
        let balance = PaymentBalance {
            currency_code: "KES".into(),
            available: Some(Cash::new("KES", 1.0)),
            actual: Some(Cash::new("KES", 2.0)),
            pending: HashMap::from([(
                "tx".to_string(),
                PendingPayment {
                    created_at: Some(UNIX_EPOCH),
                    value: Some(Cash::new("USD", 1.0)),
                    converted: Some(Cash::new("KES", 1.0)),
                },
            )]),
            sequence_nr: 3,
        };
        assert_eq!(
            PaymentBalance::from(proto::PaymentBalance::from(balance.clone())),
            balance
        );
    }
}
