//! Payments: purses, customer wallets, mobile-money customers and channel counterparties.
//!
//! A payment that needs no customer confirmation (a transfer between purses and wallets, a
//! payout from a purse or wallet to a customer or a channel account) is answered `QUEUED`, its
//! funds are held, and the emulator settles it by itself after the configured delay, as the
//! service does: `SUCCESS`, or the failure the config names for its payee (see
//! [`PaymentsConfig`](crate::config::PaymentsConfig)), then a `PaymentStatusNotification` to the
//! app. The simulators are told about payouts and may settle them first with
//! `UpdatePaymentStatus`. A checkout (a customer as the debit party) waits for the customer's
//! confirmation: a simulator's `UpdatePaymentStatus`.
//!
//! The settlements wait in one bounded heap in the state, fired by the timer task with the
//! reminders; with a data dir the due time is part of the transaction record, so a restart
//! settles what was pending.

use elarian_proto::{
    Cash, CheckoutPaymentSimulatorNotification, CustomerNumber, CustomerNumberProvider,
    InitiatePaymentCommand, InitiatePaymentReply, PaymentBalance, PaymentChannelCounterParty,
    PaymentChannelNumber, PaymentCounterParty, PaymentCustomerCounterParty,
    PaymentPurseCounterParty, PaymentStatus, PaymentStatusNotification, PaymentTransaction,
    PaymentWalletCounterParty, PendingPaymentTransaction, ReceivePaymentSimulatorCommand,
    ReceivedPaymentNotification, ReplayPaymentCommand, ReplayPaymentReply,
    ReplayPaymentStatusUpdateCommand, SendChannelPaymentSimulatorNotification,
    SendCustomerPaymentSimulatorNotification, ServerToAppNotification,
    ServerToAppPurseNotification, SimulatorToServerCommandReply,
    UpdatePaymentStatusSimulatorCommand, app_to_server_command_reply::Entry as ReplyEntry,
    checkout_payment_simulator_notification::CreditParty, payment_counter_party::Party,
    send_channel_payment_simulator_notification as channel_pay,
    send_customer_payment_simulator_notification as customer_pay,
    server_to_app_customer_notification::Entry as CustomerEntry,
    server_to_app_notification::Entry as NotificationEntry,
    server_to_app_purse_notification::Entry as PurseEntry,
    server_to_simulator_notification::Entry as SimEntry,
};

use super::customers::is_pending;
use super::{AppNotice, Effect, Selector, Tx, sim_reply};
use crate::clock::{from_timestamp, to_timestamp};
use crate::record::TransactionRecord;

/// A resolved, validated counterparty.
#[derive(Clone, Debug)]
enum Side {
    Purse(String),
    Wallet {
        customer_id: String,
        wallet_id: String,
    },
    Customer {
        customer_id: String,
        number: CustomerNumber,
        channel: PaymentChannelNumber,
    },
    Channel(PaymentChannelCounterParty),
}

type Fail = (PaymentStatus, String);

fn fail<T>(status: PaymentStatus, description: impl Into<String>) -> Result<T, Fail> {
    Err((status, description.into()))
}

/// Adds another balance of the same currency into `mine` (customer adoption).
pub(crate) fn merge_balance(mine: &mut PaymentBalance, other: &PaymentBalance) {
    if mine.currency_code != other.currency_code {
        return;
    }
    for (m, o) in [
        (&mut mine.available, &other.available),
        (&mut mine.actual, &other.actual),
    ] {
        let add = o.as_ref().map(|c| c.amount).unwrap_or(0.0);
        let cash = m.get_or_insert_with(|| Cash {
            currency_code: other.currency_code.clone(),
            amount: 0.0,
        });
        cash.amount += add;
    }
    for (txn, reservation) in &other.pending {
        mine.pending.insert(txn.clone(), reservation.clone());
    }
    mine.sequence_nr += 1;
}

fn cash(currency: &str, amount: f64) -> Option<Cash> {
    Some(Cash {
        currency_code: currency.into(),
        amount,
    })
}

fn validate_value(value: &Option<Cash>) -> Result<Cash, Fail> {
    match value {
        Some(v) if v.amount.is_finite() && v.amount > 0.0 && !v.currency_code.is_empty() => {
            Ok(v.clone())
        }
        _ => fail(
            PaymentStatus::InvalidRequest,
            "value needs a currency and a positive, finite amount",
        ),
    }
}

impl Tx<'_> {
    fn check_payment_channel(
        &self,
        channel: &Option<PaymentChannelNumber>,
    ) -> Result<PaymentChannelNumber, String> {
        let channel = channel
            .clone()
            .ok_or("payment channel_number is required")?;
        if !self.org().config.channels.payment.contains(&channel.number) {
            return Err(format!(
                "{} is not a payment channel number of this organization",
                channel.number
            ));
        }
        Ok(channel)
    }

    fn side(&mut self, party: &Option<PaymentCounterParty>, currency: &str) -> Result<Side, Fail> {
        let Some(party) = party.as_ref().and_then(|p| p.party.clone()) else {
            return fail(
                PaymentStatus::InvalidRequest,
                "both counterparties are required",
            );
        };
        match party {
            Party::Purse(p) => match self.org().purses.get(&p.purse_id) {
                None => fail(
                    PaymentStatus::InvalidPurse,
                    format!("unknown purse {}", p.purse_id),
                ),
                Some(purse) if purse.currency != currency => fail(
                    PaymentStatus::InvalidRequest,
                    format!(
                        "purse {} holds {}, not {currency}",
                        p.purse_id, purse.currency
                    ),
                ),
                Some(_) => Ok(Side::Purse(p.purse_id)),
            },
            Party::Wallet(w) => {
                if w.wallet_id.is_empty() {
                    return fail(PaymentStatus::InvalidWallet, "wallet_id is required");
                }
                if !self.org().customers.contains_key(&w.customer_id) {
                    return fail(
                        PaymentStatus::InvalidWallet,
                        format!("unknown customer id {}", w.customer_id),
                    );
                }
                Ok(Side::Wallet {
                    customer_id: w.customer_id,
                    wallet_id: w.wallet_id,
                })
            }
            Party::Customer(c) => {
                let number = c.customer_number.clone().ok_or((
                    PaymentStatus::InvalidRequest,
                    "customer_number is required".to_string(),
                ))?;
                let channel = self
                    .check_payment_channel(&c.channel_number)
                    .map_err(|e| (PaymentStatus::InvalidRequest, e))?;
                let customer_id = self
                    .resolve(Selector::Number(number.clone()), true)
                    .map_err(|e| (PaymentStatus::InvalidRequest, e))?;
                Ok(Side::Customer {
                    customer_id,
                    number,
                    channel,
                })
            }
            Party::Channel(c) => Ok(Side::Channel(c)),
        }
    }

    /// Takes `amount` from a purse or wallet: from `available` only when `hold`, else from both.
    fn take_funds(&mut self, side: &Side, value: &Cash, hold: bool) -> Result<(), Fail> {
        let amount = value.amount;
        match side {
            Side::Purse(id) => {
                let id = id.clone();
                let purse = self
                    .org_mut()
                    .purses
                    .get_mut(&id)
                    .ok_or((PaymentStatus::InvalidPurse, format!("unknown purse {id}")))?;
                if purse.available < amount {
                    return fail(
                        PaymentStatus::InsufficientFunds,
                        format!("purse {id} lacks funds"),
                    );
                }
                purse.available -= amount;
                if !hold {
                    purse.actual -= amount;
                }
                self.mark_purse(&id);
                Ok(())
            }
            Side::Wallet {
                customer_id,
                wallet_id,
            } => {
                let rec = self.customer_mut(customer_id).ok_or((
                    PaymentStatus::InvalidWallet,
                    format!("unknown customer id {customer_id}"),
                ))?;
                let Some(w) = rec
                    .extra
                    .as_mut()
                    .and_then(|e| e.wallets.get_mut(wallet_id))
                else {
                    return fail(
                        PaymentStatus::InvalidWallet,
                        format!("unknown wallet {wallet_id}"),
                    );
                };
                if w.currency_code != value.currency_code {
                    return fail(
                        PaymentStatus::InvalidRequest,
                        format!("wallet {wallet_id} holds {}", w.currency_code),
                    );
                }
                let available = w.available.as_ref().map(|c| c.amount).unwrap_or(0.0);
                if available < amount {
                    return fail(
                        PaymentStatus::InsufficientFunds,
                        format!("wallet {wallet_id} lacks funds"),
                    );
                }
                w.available = cash(&value.currency_code, available - amount);
                if !hold {
                    let actual = w.actual.as_ref().map(|c| c.amount).unwrap_or(0.0);
                    w.actual = cash(&value.currency_code, actual - amount);
                }
                w.sequence_nr += 1;
                Ok(())
            }
            _ => fail(
                PaymentStatus::NotSupported,
                "only purses and wallets can be debited here",
            ),
        }
    }

    /// Records in a debit wallet's `pending` map the funds a payment holds, as the wallet
    /// balance of the customer state shows them; a no-op for purses.
    fn reserve(&mut self, side: &Side, txn_id: &str, value: &Cash) {
        let now = Some(to_timestamp(self.now));
        if let Side::Wallet {
            customer_id,
            wallet_id,
        } = side
            && let Some(rec) = self.customer_mut(customer_id)
            && let Some(w) = rec.extra_mut().wallets.get_mut(wallet_id)
        {
            w.pending.insert(
                txn_id.to_owned(),
                PendingPaymentTransaction {
                    created_at: now,
                    value: Some(value.clone()),
                    converted: Some(value.clone()),
                },
            );
        }
    }

    /// Drops a settled payment's reservation from its debit wallet.
    fn release_reservation(&mut self, side: &Side, txn_id: &str) {
        if let Side::Wallet {
            customer_id,
            wallet_id,
        } = side
            && let Some(rec) = self.customer_mut(customer_id)
            && let Some(w) = rec.extra_mut().wallets.get_mut(wallet_id)
        {
            w.pending.remove(txn_id);
        }
    }

    /// Adjusts a purse or wallet: `available += d_available`, `actual += d_actual`.
    fn adjust(&mut self, side: &Side, currency: &str, d_available: f64, d_actual: f64) {
        match side {
            Side::Purse(id) => {
                let id = id.clone();
                if let Some(p) = self.org_mut().purses.get_mut(&id) {
                    p.available += d_available;
                    p.actual += d_actual;
                    self.mark_purse(&id);
                }
            }
            Side::Wallet {
                customer_id,
                wallet_id,
            } => {
                if let Some(rec) = self.customer_mut(customer_id) {
                    let w = rec
                        .extra_mut()
                        .wallets
                        .entry(wallet_id.clone())
                        .or_insert_with(|| PaymentBalance {
                            currency_code: currency.into(),
                            ..Default::default()
                        });
                    let a = w.available.as_ref().map(|c| c.amount).unwrap_or(0.0);
                    let t = w.actual.as_ref().map(|c| c.amount).unwrap_or(0.0);
                    w.available = cash(currency, a + d_available);
                    w.actual = cash(currency, t + d_actual);
                    w.sequence_nr += 1;
                }
            }
            _ => {}
        }
    }

    fn check_credit_wallet(&self, side: &Side, currency: &str) -> Result<(), Fail> {
        if let Side::Wallet {
            customer_id,
            wallet_id,
        } = side
            && let Some(w) = self
                .org()
                .customers
                .get(customer_id)
                .and_then(|c| c.extra.as_ref()?.wallets.get(wallet_id).cloned())
            && w.currency_code != currency
        {
            return fail(
                PaymentStatus::InvalidRequest,
                format!("wallet {wallet_id} holds {}", w.currency_code),
            );
        }
        Ok(())
    }

    fn record_transaction(
        &mut self,
        txn: PaymentTransaction,
        debit_customer_id: Option<String>,
        credit_customer_id: Option<String>,
        debit_held: bool,
        settle_at: i64,
    ) {
        let id = txn.transaction_id.clone();
        let limit = self.cfg.history_limit;
        let mut trimmed = 0;
        for customer in [&debit_customer_id, &credit_customer_id]
            .into_iter()
            .flatten()
        {
            if let Some(rec) = self.customer_mut(customer) {
                let e = rec.extra_mut();
                if !e.transactions.contains(&id) {
                    crate::record::push_exact(&mut e.transactions, id.clone());
                    trimmed += crate::record::trim_front(&mut e.transactions, limit);
                }
            }
        }
        self.trimmed(trimmed);
        self.org_mut().transactions.insert(
            &id,
            &TransactionRecord {
                transaction: Some(txn),
                debit_customer_id,
                credit_customer_id,
                debit_held,
                settle_at,
                from_simulator: false,
            },
        );
        self.mark_transaction(&id);
    }

    pub(super) fn initiate_payment(&mut self, c: InitiatePaymentCommand) -> ReplyEntry {
        ReplyEntry::InitiatePayment(match self.initiate(c) {
            Ok(reply) => reply,
            Err((status, description)) => InitiatePaymentReply {
                status: status as i32,
                description,
                ..Default::default()
            },
        })
    }

    fn initiate(&mut self, c: InitiatePaymentCommand) -> Result<InitiatePaymentReply, Fail> {
        let value = validate_value(&c.value)?;
        let debit = self.side(&c.debit_party, &value.currency_code)?;
        let credit = self.side(&c.credit_party, &value.currency_code)?;
        self.check_credit_wallet(&credit, &value.currency_code)?;
        let txn_id = crate::ids::transaction_id();
        let org_id = self.org_id();
        let app = self.app.to_owned();
        let customer_of = |s: &Side| match s {
            Side::Wallet { customer_id, .. } | Side::Customer { customer_id, .. } => {
                Some(customer_id.clone())
            }
            _ => None,
        };
        let (debit_customer, credit_customer) = (customer_of(&debit), customer_of(&credit));
        let is_account = |s: &Side| account(s).is_some();
        // Everything but a checkout settles by itself: refuse it while too many wait, before
        // any money moves (nothing is dropped silently).
        if is_account(&debit) && self.st.settlements.len() >= self.cfg.payments.max_unsettled {
            return fail(
                PaymentStatus::Throttled,
                format!(
                    "{} payments are waiting to settle; try again later",
                    self.st.settlements.len()
                ),
            );
        }
        let status = match (&debit, &credit) {
            (d, k) if is_account(d) && is_account(k) => {
                if let (Side::Purse(a), Side::Purse(b)) = (d, k)
                    && a == b
                {
                    return fail(
                        PaymentStatus::InvalidRequest,
                        "debit and credit are the same purse",
                    );
                }
                self.take_funds(d, &value, true)?;
                PaymentStatus::Queued
            }
            (
                d,
                Side::Customer {
                    customer_id,
                    number,
                    channel,
                },
            ) if is_account(d) => {
                self.take_funds(d, &value, true)?;
                let debit_party = match account(d) {
                    Some(Account::Purse(p)) => customer_pay::DebitParty::Purse(p),
                    Some(Account::Wallet(w)) => customer_pay::DebitParty::Wallet(w),
                    None => return fail(PaymentStatus::NotSupported, "not a purse or wallet"),
                };
                self.notify_simulator(SimEntry::SendCustomerPayment(
                    SendCustomerPaymentSimulatorNotification {
                        org_id,
                        customer_id: customer_id.clone(),
                        app_id: app,
                        debit_party: Some(debit_party),
                        transaction_id: txn_id.clone(),
                        customer_number: Some(number.clone()),
                        channel_number: Some(channel.clone()),
                        value: Some(value.clone()),
                    },
                ));
                PaymentStatus::Queued
            }
            (d, Side::Channel(ch)) if is_account(d) => {
                if self.org().config.channels.payment.is_empty()
                    || !self.org().config.channels.payment.contains(&ch.source)
                {
                    return fail(
                        PaymentStatus::InvalidRequest,
                        format!(
                            "{} is not a payment channel number of this organization",
                            ch.source
                        ),
                    );
                }
                self.take_funds(d, &value, true)?;
                let debit_party = match account(d) {
                    Some(Account::Purse(p)) => channel_pay::DebitParty::Purse(p),
                    Some(Account::Wallet(w)) => channel_pay::DebitParty::Wallet(w),
                    None => return fail(PaymentStatus::NotSupported, "not a purse or wallet"),
                };
                self.notify_simulator(SimEntry::SendChannelPayment(
                    SendChannelPaymentSimulatorNotification {
                        org_id,
                        app_id: app,
                        debit_party: Some(debit_party),
                        transaction_id: txn_id.clone(),
                        channel: ch.channel,
                        source: ch.source.clone(),
                        destination: ch.destination.clone(),
                        account: ch.account.clone(),
                        value: Some(value.clone()),
                    },
                ));
                PaymentStatus::Queued
            }
            (
                Side::Customer {
                    customer_id,
                    number,
                    channel,
                },
                k,
            ) if is_account(k) => {
                let credit_party = match account(k) {
                    Some(Account::Purse(p)) => CreditParty::Purse(p),
                    Some(Account::Wallet(w)) => CreditParty::Wallet(w),
                    None => return fail(PaymentStatus::NotSupported, "not a purse or wallet"),
                };
                self.notify_simulator(SimEntry::CheckoutPayment(
                    CheckoutPaymentSimulatorNotification {
                        org_id,
                        customer_id: customer_id.clone(),
                        app_id: app,
                        credit_party: Some(credit_party),
                        transaction_id: txn_id.clone(),
                        customer_number: Some(number.clone()),
                        channel_number: Some(channel.clone()),
                        value: Some(value.clone()),
                    },
                ));
                PaymentStatus::PendingConfirmation
            }
            _ => {
                return fail(
                    PaymentStatus::NotSupported,
                    "supported: purse/wallet to purse/wallet, customer or channel; customer to purse/wallet",
                );
            }
        };
        for side in [&debit, &credit] {
            if let Side::Customer {
                customer_id,
                channel,
                ..
            } = side
                && let Some(rec) = self.customer_mut(customer_id)
            {
                let e = rec.extra_mut();
                if !e.payment_channels.contains(channel) {
                    crate::record::push_exact(&mut e.payment_channels, channel.clone());
                }
            }
        }
        let debit_held = status == PaymentStatus::Queued;
        let settle_at = if debit_held {
            let delay = i64::try_from(self.cfg.payments.settle_delay_ms).unwrap_or(i64::MAX);
            // Never 0, which means "waits for a simulator".
            self.now.saturating_add(delay).max(1)
        } else {
            0
        };
        self.record_transaction(
            PaymentTransaction {
                transaction_id: txn_id.clone(),
                app_id: Some(self.app.to_owned()),
                debit_party: c.debit_party,
                credit_party: c.credit_party,
                value: Some(value.clone()),
                status: status as i32,
                created_at: Some(to_timestamp(self.now)),
                updated_at: Some(to_timestamp(self.now)),
                provider_transaction_id: None,
                narration: Some(c.narration).filter(|n| !n.is_empty()),
            },
            debit_customer.clone(),
            credit_customer.clone(),
            debit_held,
            settle_at,
        );
        if debit_held {
            self.reserve(&debit, &txn_id, &value);
        }
        if settle_at > 0 {
            self.st.schedule_settlement(settle_at, self.org, &txn_id);
        }
        Ok(InitiatePaymentReply {
            status: status as i32,
            description: "payment initiated".into(),
            transaction_id: Some(txn_id),
            debit_customer_id: debit_customer,
            credit_customer_id: credit_customer,
        })
    }

    /// The simulator settles a pending payment, named by the emulator's transaction id or, for a
    /// payment the simulator itself reported with `ReceivePayment`, by the simulator's own id.
    pub(super) fn update_payment_status(
        &mut self,
        c: UpdatePaymentStatusSimulatorCommand,
    ) -> SimulatorToServerCommandReply {
        let Ok(new_status) = PaymentStatus::try_from(c.status) else {
            return sim_reply(false, &format!("unknown payment status {}", c.status));
        };
        if new_status == PaymentStatus::Unspecified {
            return sim_reply(false, "a payment status is required");
        }
        let txn_id = if self.org().transactions.contains_key(&c.transaction_id) {
            c.transaction_id.clone()
        } else {
            match self.org().provider_txns.get(&c.transaction_id) {
                Some(id) => id.clone(),
                None => {
                    return sim_reply(false, &format!("unknown transaction {}", c.transaction_id));
                }
            }
        };
        match self.settle(&txn_id, new_status) {
            Ok(_) => sim_reply(true, "payment status updated"),
            Err(e) => sim_reply(false, &e),
        }
    }

    /// Settles a payment whose time came (timer callback): with the configured outcome for its
    /// payee, unless a simulator settled it already.
    pub(super) fn settle_due(&mut self, txn_id: &str) {
        let Some(txn) = self
            .org()
            .transactions
            .get(txn_id)
            .and_then(|r| r.transaction)
        else {
            return;
        };
        if !is_pending(txn.status) {
            return;
        }
        let payee = payee_ids(&txn.credit_party);
        let status = self.cfg.payments.outcome(payee.iter().map(String::as_str));
        if let Err(e) = self.settle(txn_id, status) {
            tracing::warn!(transaction = txn_id, error = %e, "payment not settled");
        }
    }

    /// Moves a pending payment to `new_status`: on `SUCCESS` the held funds are spent and the
    /// credit party is paid, on a final failure the hold is released; then the app that
    /// initiated it gets a `PaymentStatusNotification` (about the customer involved, else about
    /// the purse). A success whose credit wallet can no longer take the money (its customer was
    /// deleted, or the wallet holds another currency by now) ends `FAILED` instead. Returns the
    /// status applied.
    fn settle(&mut self, txn_id: &str, new_status: PaymentStatus) -> Result<PaymentStatus, String> {
        let Some(rec) = self.org().transactions.get(txn_id) else {
            return Err(format!("unknown transaction {txn_id}"));
        };
        let Some(mut txn) = rec.transaction.clone() else {
            return Err("transaction record is empty".into());
        };
        if !is_pending(txn.status) {
            return Err("the transaction is already settled".into());
        }
        let value = txn.value.clone().unwrap_or_default();
        let currency = value.currency_code.clone();
        let debit = account_side(&txn.debit_party);
        let credit = account_side(&txn.credit_party);
        let mut new_status = new_status;
        if new_status == PaymentStatus::Success
            && let Some(k) = &credit
            && !self.can_credit(k, &currency)
        {
            new_status = PaymentStatus::Failed;
        }
        let mut debit_held = rec.debit_held;
        let mut settle_at = rec.settle_at;
        if !is_pending(new_status as i32)
            && let Some(d) = &debit
        {
            self.release_reservation(d, txn_id);
        }
        if new_status == PaymentStatus::Success {
            if debit_held && let Some(d) = &debit {
                self.adjust(d, &currency, 0.0, -value.amount);
            }
            if let Some(k) = &credit {
                self.adjust(k, &currency, value.amount, value.amount);
            }
            debit_held = false;
            settle_at = 0;
        } else if !is_pending(new_status as i32) {
            if debit_held && let Some(d) = &debit {
                self.adjust(d, &currency, value.amount, 0.0);
            }
            debit_held = false;
            settle_at = 0;
        }
        txn.status = new_status as i32;
        txn.updated_at = Some(to_timestamp(self.now));
        let app = txn.app_id.clone().unwrap_or_default();
        let customer = rec
            .debit_customer_id
            .clone()
            .or(rec.credit_customer_id.clone());
        let purse = [&txn.debit_party, &txn.credit_party]
            .into_iter()
            .find_map(|p| match p {
                Some(PaymentCounterParty {
                    party: Some(Party::Purse(p)),
                }) => Some(p.purse_id.clone()),
                _ => None,
            });
        self.org_mut().transactions.insert(
            txn_id,
            &TransactionRecord {
                transaction: Some(txn),
                debit_held,
                settle_at,
                ..rec
            },
        );
        self.mark_transaction(txn_id);
        let notice = PaymentStatusNotification {
            transaction_id: txn_id.to_owned(),
            status: new_status as i32,
        };
        match (customer, purse) {
            (Some(customer_id), _) if self.org().customers.contains_key(&customer_id) => {
                self.notify_customer(
                    &app,
                    &customer_id,
                    CustomerEntry::PaymentStatus(notice),
                    false,
                );
            }
            (_, Some(purse_id)) => {
                let org_id = self.org_id();
                self.effects.push(Effect::App(AppNotice {
                    org_id: org_id.clone(),
                    app_id: app.clone(),
                    customer_id: None,
                    pending: None,
                    notification: ServerToAppNotification {
                        entry: Some(NotificationEntry::Purse(ServerToAppPurseNotification {
                            org_id,
                            app_id: app,
                            purse_id,
                            created_at: Some(to_timestamp(self.now)),
                            entry: Some(PurseEntry::PaymentStatus(notice)),
                        })),
                    },
                    awaits_reply: false,
                }));
            }
            _ => {}
        }
        Ok(new_status)
    }

    /// After `other` was merged into `target`: its pending payments name `target` (and its
    /// wallets, which absorbed `other`'s), so that they settle on the surviving customer.
    pub(super) fn adopt_transactions(&mut self, other: &str, target: &str, txn_ids: &[String]) {
        for id in txn_ids {
            let Some(mut rec) = self.org().transactions.get(id) else {
                continue;
            };
            if !rec
                .transaction
                .as_ref()
                .is_some_and(|t| is_pending(t.status))
            {
                continue;
            }
            for c in [&mut rec.debit_customer_id, &mut rec.credit_customer_id]
                .into_iter()
                .flatten()
            {
                if c == other {
                    *c = target.to_owned();
                }
            }
            if let Some(t) = rec.transaction.as_mut() {
                for party in [&mut t.debit_party, &mut t.credit_party] {
                    if let Some(PaymentCounterParty {
                        party: Some(Party::Wallet(w)),
                    }) = party
                        && w.customer_id == other
                    {
                        w.customer_id = target.to_owned();
                    }
                }
            }
            self.org_mut().transactions.insert(id, &rec);
            self.mark_transaction(id);
        }
    }

    /// Whether a purse or wallet can be credited in `currency` now.
    fn can_credit(&self, side: &Side, currency: &str) -> bool {
        match side {
            Side::Purse(id) => self
                .org()
                .purses
                .get(id)
                .is_some_and(|p| p.currency == currency),
            Side::Wallet {
                customer_id,
                wallet_id,
            } => self.org().customers.get(customer_id).is_some_and(|c| {
                c.extra
                    .as_ref()
                    .and_then(|e| e.wallets.get(wallet_id))
                    .is_none_or(|w| w.currency_code == currency)
            }),
            _ => true,
        }
    }

    /// A simulated customer pays the org through a payment channel.
    pub(super) fn receive_payment(
        &mut self,
        c: ReceivePaymentSimulatorCommand,
    ) -> SimulatorToServerCommandReply {
        let channel = match self.check_payment_channel(&c.channel_number) {
            Ok(ch) => ch,
            Err(e) => return sim_reply(false, &e),
        };
        let value = match validate_value(&c.value) {
            Ok(v) => v,
            Err((_, e)) => return sim_reply(false, &e),
        };
        let status = match PaymentStatus::try_from(c.status) {
            Ok(PaymentStatus::Unspecified) => PaymentStatus::Success,
            Ok(s) => s,
            Err(_) => return sim_reply(false, &format!("unknown payment status {}", c.status)),
        };
        let Some(purse_id) = self
            .org()
            .config
            .purses
            .iter()
            .find(|p| p.currency == value.currency_code)
            .map(|p| p.id.clone())
        else {
            return sim_reply(false, &format!("no purse holds {}", value.currency_code));
        };
        let number = CustomerNumber {
            provider: CustomerNumberProvider::Cellular as i32,
            number: c.customer_number.clone(),
            partition: None,
        };
        let customer_id = match self.resolve(Selector::Number(number.clone()), true) {
            Ok(id) => id,
            Err(e) => return sim_reply(false, &e),
        };
        if status == PaymentStatus::Success {
            self.adjust(
                &Side::Purse(purse_id.clone()),
                &value.currency_code,
                value.amount,
                value.amount,
            );
        }
        if let Some(rec) = self.customer_mut(&customer_id) {
            let e = rec.extra_mut();
            if !e.payment_channels.contains(&channel) {
                crate::record::push_exact(&mut e.payment_channels, channel.clone());
            }
        }
        let txn_id = crate::ids::transaction_id();
        self.record_transaction(
            PaymentTransaction {
                transaction_id: txn_id.clone(),
                app_id: Some(self.app.to_owned()),
                debit_party: Some(PaymentCounterParty {
                    party: Some(Party::Customer(PaymentCustomerCounterParty {
                        customer_number: Some(number.clone()),
                        channel_number: Some(channel.clone()),
                    })),
                }),
                credit_party: Some(PaymentCounterParty {
                    party: Some(Party::Purse(PaymentPurseCounterParty {
                        purse_id: purse_id.clone(),
                    })),
                }),
                value: Some(value.clone()),
                status: status as i32,
                created_at: Some(to_timestamp(self.now)),
                updated_at: Some(to_timestamp(self.now)),
                provider_transaction_id: Some(c.transaction_id.clone()).filter(|t| !t.is_empty()),
                narration: None,
            },
            Some(customer_id.clone()),
            None,
            false,
            0,
        );
        self.org_mut()
            .transactions
            .update(&txn_id, |rec| rec.from_simulator = true);
        if !c.transaction_id.is_empty() {
            self.org_mut()
                .provider_txns
                .insert(c.transaction_id.clone(), txn_id.clone());
        }
        let app = self.app.to_owned();
        self.notify_customer(
            &app,
            &customer_id,
            CustomerEntry::ReceivedPayment(ReceivedPaymentNotification {
                purse_id,
                transaction_id: txn_id,
                customer_number: Some(number),
                channel_number: Some(channel),
                value: Some(value),
                status: status as i32,
            }),
            false,
        );
        sim_reply(true, "payment received")
    }

    pub(super) fn replay_payment(&mut self, c: ReplayPaymentCommand) -> ReplyEntry {
        let result = (|| {
            let value = validate_value(&c.value).map_err(|(_, e)| e)?;
            let mut customers = [None, None];
            for (slot, party) in customers.iter_mut().zip([&c.debit_party, &c.credit_party]) {
                *slot = match party.as_ref().and_then(|p| p.party.as_ref()) {
                    Some(Party::Customer(cp)) => {
                        let n = cp
                            .customer_number
                            .clone()
                            .ok_or("customer_number is required")?;
                        Some(self.resolve(Selector::Number(n), true)?)
                    }
                    Some(Party::Wallet(w)) => {
                        Some(self.resolve(Selector::Id(w.customer_id.clone()), false)?)
                    }
                    Some(_) => None,
                    None => return Err("both counterparties are required".to_string()),
                };
            }
            let [debit_customer, credit_customer] = customers;
            let txn_id = crate::ids::transaction_id();
            let at = c.created_at.unwrap_or_else(|| to_timestamp(self.now));
            self.record_transaction(
                PaymentTransaction {
                    transaction_id: txn_id.clone(),
                    app_id: Some(self.app.to_owned()),
                    debit_party: c.debit_party,
                    credit_party: c.credit_party,
                    value: Some(value),
                    status: c.status,
                    created_at: Some(at),
                    updated_at: Some(at),
                    provider_transaction_id: Some(c.provider_transaction_id),
                    narration: Some(c.narration).filter(|n| !n.is_empty()),
                },
                debit_customer.clone(),
                credit_customer.clone(),
                false,
                0,
            );
            Ok((txn_id, debit_customer, credit_customer))
        })();
        replay_reply(result, "payment replayed")
    }

    pub(super) fn replay_payment_status_update(
        &mut self,
        c: ReplayPaymentStatusUpdateCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let number = c
                .customer_number
                .clone()
                .ok_or("customer_number is required")?;
            let id = self.resolve(Selector::Number(number), false)?;
            let txn_ids = self
                .org()
                .customers
                .get(&id)
                .and_then(|r| Some(r.extra.as_ref()?.transactions.clone()))
                .unwrap_or_default();
            let found = txn_ids.into_iter().find(|t| {
                self.org().transactions.get(t).is_some_and(|r| {
                    r.transaction
                        .as_ref()
                        .and_then(|x| x.provider_transaction_id.as_deref())
                        == Some(c.provider_transaction_id.as_str())
                })
            });
            let txn_id =
                found.ok_or_else(|| format!("no transaction {}", c.provider_transaction_id))?;
            let at = c
                .updated_at
                .as_ref()
                .map(from_timestamp)
                .unwrap_or(self.now);
            self.org_mut().transactions.update(&txn_id, |r| {
                if let Some(t) = r.transaction.as_mut() {
                    t.status = c.status;
                    t.updated_at = Some(to_timestamp(at));
                }
            });
            self.mark_transaction(&txn_id);
            let (d, k) = self
                .org()
                .transactions
                .get(&txn_id)
                .map(|r| (r.debit_customer_id.clone(), r.credit_customer_id.clone()))
                .unwrap_or_default();
            Ok((txn_id, d, k))
        })();
        replay_reply(result, "payment status replayed")
    }
}

/// The reply to a replay command: on success the transaction and the customers on each side.
fn replay_reply(
    result: Result<(String, Option<String>, Option<String>), String>,
    done: &str,
) -> ReplyEntry {
    ReplyEntry::ReplayPayment(match result {
        Ok((txn, d, k)) => ReplayPaymentReply {
            status: true,
            description: done.into(),
            transaction_id: Some(txn),
            debit_customer_id: d,
            credit_customer_id: k,
        },
        Err(description) => ReplayPaymentReply {
            status: false,
            description,
            ..Default::default()
        },
    })
}

/// Rebuilds the in-memory indexes of a transaction read back from the data dir: its
/// simulator-given id, and its settlement if the emulator still has to settle it.
pub(super) fn restore(
    state: &mut crate::state::State,
    org: crate::state::OrgIdx,
    id: &str,
    rec: &TransactionRecord,
) {
    let Some(txn) = rec.transaction.as_ref() else {
        return;
    };
    if rec.from_simulator
        && let Some(provider) = txn.provider_transaction_id.as_deref()
        && !provider.is_empty()
    {
        // A reused simulator id names the newest payment, as it did before the restart.
        let created = |t: &PaymentTransaction| t.created_at.as_ref().map(from_timestamp);
        let o = &mut state.orgs[org];
        let newer = o
            .provider_txns
            .get(provider)
            .and_then(|other| o.transactions.get(other))
            .and_then(|r| r.transaction)
            .is_none_or(|other| created(&other) <= created(txn));
        if newer {
            o.provider_txns.insert(provider.to_owned(), id.to_owned());
        }
    }
    if rec.settle_at > 0 && is_pending(txn.status) {
        // Overdue ones (the emulator was stopped past their time) settle as soon as it runs.
        state.schedule_settlement(rec.settle_at, org, id);
    }
}

/// What a failure rule's pattern is matched against for a payment credited to `party`: the
/// customer's number, the channel account's destination, the wallet id or the purse id.
fn payee_ids(party: &Option<PaymentCounterParty>) -> Vec<String> {
    match party.as_ref().and_then(|p| p.party.as_ref()) {
        Some(Party::Customer(c)) => c
            .customer_number
            .as_ref()
            .map(|n| vec![n.number.clone()])
            .unwrap_or_default(),
        Some(Party::Channel(c)) => vec![c.destination.clone()],
        Some(Party::Wallet(w)) => vec![w.wallet_id.clone()],
        Some(Party::Purse(p)) => vec![p.purse_id.clone()],
        None => Vec::new(),
    }
}

/// The purse or wallet behind a stored counterparty, if it is one.
fn account_side(party: &Option<PaymentCounterParty>) -> Option<Side> {
    match party.as_ref()?.party.as_ref()? {
        Party::Purse(p) => Some(Side::Purse(p.purse_id.clone())),
        Party::Wallet(w) => Some(Side::Wallet {
            customer_id: w.customer_id.clone(),
            wallet_id: w.wallet_id.clone(),
        }),
        _ => None,
    }
}

enum Account {
    Purse(PaymentPurseCounterParty),
    Wallet(PaymentWalletCounterParty),
}

/// A purse or wallet side as the counterparty message the simulator notifications carry.
fn account(side: &Side) -> Option<Account> {
    match side {
        Side::Purse(p) => Some(Account::Purse(PaymentPurseCounterParty {
            purse_id: p.clone(),
        })),
        Side::Wallet {
            customer_id,
            wallet_id,
        } => Some(Account::Wallet(PaymentWalletCounterParty {
            customer_id: customer_id.clone(),
            wallet_id: wallet_id.clone(),
        })),
        _ => None,
    }
}
