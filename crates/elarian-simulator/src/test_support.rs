//! What a server sends a simulator, encoded from the typed notifications: the direction only a
//! server needs, so it exists for this crate's tests alone (the emulator builds its wire
//! messages itself).

use elarian_proto as proto;
use elarian_proto::{
    checkout_payment_simulator_notification as checkout,
    send_channel_payment_simulator_notification as channel_payment,
    send_customer_payment_simulator_notification as customer_payment,
    server_to_simulator_notification::Entry,
};
use elarian_sdk::WalletOrPurse;

use crate::SimulatorNotification;

/// Encodes a notification as a server sends it.
pub(crate) fn encode(n: SimulatorNotification) -> proto::ServerToSimulatorNotification {
    let entry = match n {
        SimulatorNotification::SendMessage(m) => {
            Entry::SendMessage(proto::SendMessageSimulatorNotification {
                org_id: m.org_id,
                customer_id: m.customer_id,
                message_id: m.message_id,
                customer_number: Some(m.customer_number.into()),
                channel_number: Some(m.channel_number.into()),
                message: Some(m.message.into()),
            })
        }
        SimulatorNotification::MakeVoiceCall(c) => {
            Entry::MakeVoiceCall(proto::MakeVoiceCallSimulatorNotification {
                org_id: c.org_id,
                customer_id: c.customer_id,
                session_id: c.session_id,
                customer_number: Some(c.customer_number.into()),
                channel_number: Some(c.channel_number.into()),
            })
        }
        SimulatorNotification::SendCustomerPayment(p) => {
            Entry::SendCustomerPayment(proto::SendCustomerPaymentSimulatorNotification {
                org_id: p.org_id,
                customer_id: p.customer_id,
                app_id: p.app_id,
                transaction_id: p.transaction_id,
                customer_number: Some(p.customer_number.into()),
                channel_number: Some(p.channel_number.into()),
                value: Some(p.value.into()),
                debit_party: p.debit_party.map(|party| match party {
                    WalletOrPurse::Wallet {
                        customer_id,
                        wallet_id,
                    } => customer_payment::DebitParty::Wallet(wallet(customer_id, wallet_id)),
                    WalletOrPurse::Purse { purse_id } => {
                        customer_payment::DebitParty::Purse(purse(purse_id))
                    }
                }),
            })
        }
        SimulatorNotification::SendChannelPayment(p) => {
            Entry::SendChannelPayment(proto::SendChannelPaymentSimulatorNotification {
                org_id: p.org_id,
                app_id: p.app_id,
                transaction_id: p.transaction_id,
                channel: p.channel.into(),
                source: p.source,
                destination: p.destination,
                account: p.account,
                value: Some(p.value.into()),
                debit_party: p.debit_party.map(|party| match party {
                    WalletOrPurse::Wallet {
                        customer_id,
                        wallet_id,
                    } => channel_payment::DebitParty::Wallet(wallet(customer_id, wallet_id)),
                    WalletOrPurse::Purse { purse_id } => {
                        channel_payment::DebitParty::Purse(purse(purse_id))
                    }
                }),
            })
        }
        SimulatorNotification::CheckoutPayment(p) => {
            Entry::CheckoutPayment(proto::CheckoutPaymentSimulatorNotification {
                org_id: p.org_id,
                customer_id: p.customer_id,
                app_id: p.app_id,
                transaction_id: p.transaction_id,
                customer_number: Some(p.customer_number.into()),
                channel_number: Some(p.channel_number.into()),
                value: Some(p.value.into()),
                credit_party: p.credit_party.map(|party| match party {
                    WalletOrPurse::Wallet {
                        customer_id,
                        wallet_id,
                    } => checkout::CreditParty::Wallet(wallet(customer_id, wallet_id)),
                    WalletOrPurse::Purse { purse_id } => {
                        checkout::CreditParty::Purse(purse(purse_id))
                    }
                }),
            })
        }
    };
    proto::ServerToSimulatorNotification { entry: Some(entry) }
}

fn wallet(customer_id: String, wallet_id: String) -> proto::PaymentWalletCounterParty {
    proto::PaymentWalletCounterParty {
        customer_id,
        wallet_id,
    }
}

fn purse(purse_id: String) -> proto::PaymentPurseCounterParty {
    proto::PaymentPurseCounterParty { purse_id }
}
