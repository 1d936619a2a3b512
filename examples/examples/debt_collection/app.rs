//! The lender's app, written only against `elarian-sdk`. It would run unchanged against a real
//! Elarian account.
//!
//! Each customer's case moves through stages kept in the customer's **app data** (JSON
//! [`Case`]); what the customer owes lives in the customer's **metadata** (`amount_due`,
//! `name`), written at enrolment and cleared once paid. The case carries the terms being
//! collected (name and amount) too, since every notification brings the app data along: the
//! handlers read them from there instead of fetching the customer's whole state for its
//! metadata at each step (one state read per step was most of the app's own CPU at scale).
//! Reminders drive time:
//!
//! 1. `loan-due` fires: SMS "reply OK to pay", and a `loan-no-reply` reminder a few seconds
//!    later.
//! 2. The customer replies OK: the no-reply reminder is cancelled and a mobile-money checkout
//!    (customer to purse) starts. NO closes the case as refused.
//! 3. `loan-no-reply` fires while the case still waits for an answer: a voice call whose prompt
//!    asks the customer to press 1 to pay; 1 starts the checkout, any other key refuses, a call
//!    not answered leaves the customer unreachable.
//! 4. The payment status settles the case: paid (the amount due drops to zero and a receipt SMS
//!    goes out) or failed.
//!
//! A handler replies (storing the new stage) *before* it sends anything that can draw the
//! customer's next move, so that the next notification already carries the new stage.
//!
//! Stages are read leniently: a notification the app does not handle (a message status, a
//! session start) is answered with the app data it carried, which can land just after a newer
//! stage and roll it back one step. So "waiting for an answer" accepts `Enrolled` as well as
//! `AwaitingReply`, a call accepts any open stage, and a payment status any stage not final;
//! the run's checks catch any case that still ends wrongly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use elarian_examples::money;
use elarian_sdk::{
    Cash, ChannelMessage, Customer, CustomerNumber, DataValue, Elarian, GetDigits,
    InboundMessageBody, Message, MessagingChannel, MessagingChannelNumber, PaymentChannel,
    PaymentChannelNumber, PaymentCounterParty, PaymentStatus, Prompt, Reminder, Responder, Say,
    VoiceAction, VoiceCallStatus, VoiceResponder,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};

/// Key of the reminder that starts collection.
pub const DUE_REMINDER: &str = "loan-due";
/// Key of the reminder that fires when the customer did not answer the SMS in time.
pub const NO_REPLY_REMINDER: &str = "loan-no-reply";
/// Metadata key of the amount the customer owes.
pub const AMOUNT_DUE: &str = "amount_due";
/// Metadata key of the customer's first name.
pub const NAME: &str = "name";
/// How far ahead a reminder is set at least: the command may wait for the window of commands
/// in flight before the server sees it, and a reminder in the past is refused.
const REMINDER_LEAD: Duration = Duration::from_secs(1);

/// How the app reaches customers and where the money goes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// SMS short code.
    pub sms_number: String,
    /// Voice number calls come from.
    pub voice_number: String,
    /// Mobile-money paybill of checkouts.
    pub payment_channel: String,
    /// Purse credited with repayments.
    pub purse_id: String,
    /// Currency of loans and purse.
    pub currency: String,
    /// How long the customer has to answer the SMS before the call.
    pub reply_window: Duration,
    /// Commands in flight from handler follow-ups (SMS, calls, checkouts) at most.
    pub max_follow_ups: usize,
}

/// A loan to collect.
#[derive(Debug, Clone)]
pub struct Loan {
    /// The customer's phone number.
    pub phone: String,
    /// First name, for the messages.
    pub name: String,
    /// What is due.
    pub amount_due: f64,
    /// When to start collecting (the due reminder).
    pub due_at: SystemTime,
}

/// Where a customer's case stands; stored as the customer's app data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Enrolled; the due reminder has not fired yet.
    Enrolled,
    /// SMS sent; waiting for OK or NO.
    AwaitingReply,
    /// No reply in time; the customer is being called.
    Calling,
    /// A checkout of `amount` is waiting for the customer.
    Paying {
        /// The checkout amount.
        amount: f64,
    },
    /// Repaid.
    Paid {
        /// Amount collected.
        amount: f64,
    },
    /// The checkout failed.
    PaymentFailed {
        /// Why (the payment status).
        status: String,
    },
    /// The customer declined to pay now.
    Refused,
    /// The customer could not be reached.
    Unreachable,
}

/// The app data of a customer under collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The phone number (reminder and payment notifications carry only the customer id).
    pub phone: String,
    /// The customer's first name, for the messages.
    pub name: String,
    /// The amount being collected (the metadata's `amount_due` at enrolment).
    pub amount_due: f64,
    /// The stage.
    #[serde(flatten)]
    pub stage: Stage,
}

impl Stage {
    /// Not yet in a call or a payment: an SMS answer is still expected.
    fn awaits_answer(&self) -> bool {
        matches!(self, Stage::Enrolled | Stage::AwaitingReply)
    }

    /// The case has its outcome.
    fn is_final(&self) -> bool {
        matches!(
            self,
            Stage::Paid { .. } | Stage::PaymentFailed { .. } | Stage::Refused | Stage::Unreachable
        )
    }
}

impl Case {
    fn at(&self, stage: Stage) -> Option<DataValue> {
        let case = Case {
            phone: self.phone.clone(),
            name: self.name.clone(),
            amount_due: self.amount_due,
            stage,
        };
        match DataValue::from_serde(&case) {
            Ok(value) => Some(value),
            Err(error) => {
                // Cannot happen for this plain struct; keep the stored data rather than panic.
                tracing::error!(%error, "cannot encode app data");
                None
            }
        }
    }

    fn from_app_data(app_data: Option<&DataValue>) -> Option<Case> {
        app_data.and_then(|data| data.to_serde::<Case>().ok())
    }
}

/// The final outcome of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The customer paid.
    Paid,
    /// A checkout was attempted and failed.
    PaymentFailed,
    /// The customer said no.
    Refused,
    /// No answer to the SMS and none to the call (or a message could not be sent).
    Unreachable,
}

/// Live counters of the run, shared by the handlers and the progress display.
#[derive(Debug)]
pub struct Stats {
    /// Customers enrolled.
    pub enrolled: AtomicU64,
    /// Due reminders handled.
    pub reminded: AtomicU64,
    /// Payment-due SMS sent.
    pub sms_sent: AtomicU64,
    /// SMS received from customers.
    pub replies: AtomicU64,
    /// Voice calls placed.
    pub calls: AtomicU64,
    /// Checkouts that succeeded.
    pub payments_succeeded: AtomicU64,
    /// Checkouts that failed.
    pub payments_failed: AtomicU64,
    /// Commands that failed (logged).
    pub errors: AtomicU64,
    /// Outcomes reported twice for one customer: a flow bug.
    pub duplicate_outcomes: AtomicU64,
    /// Due reminders set later than planned because enrolment fell behind the schedule.
    pub reminders_shifted: AtomicU64,
    collected_cents: AtomicU64,
    /// Keys are boxed: a million of them, so the unused capacity word of a `String` counts.
    cases: Mutex<HashMap<Box<str>, Option<Outcome>>>,
    finished: watch::Sender<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            enrolled: AtomicU64::new(0),
            reminded: AtomicU64::new(0),
            sms_sent: AtomicU64::new(0),
            replies: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            payments_succeeded: AtomicU64::new(0),
            payments_failed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            duplicate_outcomes: AtomicU64::new(0),
            reminders_shifted: AtomicU64::new(0),
            collected_cents: AtomicU64::new(0),
            cases: Mutex::new(HashMap::new()),
            finished: watch::channel(0).0,
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Total amount collected.
    pub fn collected(&self) -> f64 {
        self.collected_cents.load(Ordering::Relaxed) as f64 / 100.0
    }

    /// Watches the number of customers whose case is closed.
    pub fn finished(&self) -> watch::Receiver<u64> {
        self.finished.subscribe()
    }

    /// Takes the outcome of every enrolled customer, by customer id (`None`: still open), once
    /// the run is over: moved out rather than copied, since at a million customers a copy is
    /// the run's peak memory.
    pub fn take_outcomes(&self) -> HashMap<Box<str>, Option<Outcome>> {
        std::mem::take(&mut *self.cases.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn open(&self, customer_id: &str) {
        let mut cases = self.cases.lock().unwrap_or_else(|p| p.into_inner());
        cases.entry(customer_id.into()).or_insert(None);
    }

    /// Records a final outcome once per customer; customers of earlier runs are ignored.
    fn close(&self, customer_id: &str, outcome: Outcome) {
        let mut cases = self.cases.lock().unwrap_or_else(|p| p.into_inner());
        match cases.get_mut(customer_id) {
            Some(slot @ None) => {
                *slot = Some(outcome);
                drop(cases);
                self.finished.send_modify(|n| *n += 1);
            }
            Some(Some(previous)) => {
                tracing::error!(customer_id, ?previous, ?outcome, "case closed twice");
                bump(&self.duplicate_outcomes);
            }
            None => tracing::info!(
                customer_id,
                "outcome of a customer not enrolled in this run"
            ),
        }
    }
}

/// The debt-collection app: registers the handlers and enrols loans.
#[derive(Clone)]
pub struct Collector {
    app: Elarian,
    settings: Arc<Settings>,
    stats: Arc<Stats>,
    follow_ups: Arc<Semaphore>,
}

impl Collector {
    /// The app's logic on `app` (connected or not). Call [`register`](Self::register) before
    /// connecting so that no notification is missed.
    pub fn new(app: Elarian, settings: Settings) -> Self {
        let follow_ups = Arc::new(Semaphore::new(settings.max_follow_ups.max(1)));
        Collector {
            app,
            settings: Arc::new(settings),
            stats: Arc::new(Stats::default()),
            follow_ups,
        }
    }

    /// The run's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Registers the notification handlers.
    pub fn register(&self) {
        let me = self.clone();
        self.app
            .on_reminder(move |notification, customer, app_data, responder| {
                let me = me.clone();
                async move {
                    let case = Case::from_app_data(app_data.as_ref());
                    match (notification.reminder.key.as_str(), case) {
                        (DUE_REMINDER, Some(case)) => me.on_due(customer, case, responder).await,
                        (NO_REPLY_REMINDER, Some(case)) => {
                            me.on_no_reply(customer, case, responder).await
                        }
                        (key, _) => {
                            tracing::debug!(key, "reminder not for debt collection");
                            responder.acknowledge();
                        }
                    }
                }
            });

        let me = self.clone();
        self.app
            .on_received_sms(move |notification, customer, app_data, responder| {
                let me = me.clone();
                async move {
                    bump(&me.stats.replies);
                    let text = notification.text().unwrap_or_default();
                    match Case::from_app_data(app_data.as_ref()) {
                        Some(case) => me.on_sms(customer, case, &text, responder).await,
                        None => responder.reply(
                            Some(Message::text("Sorry, we have no loan on record for you.")),
                            app_data,
                        ),
                    }
                }
            });

        let me = self.clone();
        self.app
            .on_voice_call(move |notification, customer, app_data, responder| {
                let me = me.clone();
                async move {
                    let Some(case) = Case::from_app_data(app_data.as_ref()) else {
                        responder.reply(Some(vec![VoiceAction::Reject]), app_data);
                        return;
                    };
                    let digits = notification
                        .voice
                        .dtmf_digits
                        .filter(|d| !d.trim().is_empty());
                    let status = notification.voice.status;
                    let in_call = case.stage.awaits_answer() || case.stage == Stage::Calling;
                    if !in_call {
                        responder.reply(None, app_data);
                    } else if let Some(digits) = digits {
                        me.on_digits(customer, case, digits.trim(), responder).await;
                    } else if i32::from(status) >= i32::from(VoiceCallStatus::Completed) {
                        let session = notification.session_id.as_deref();
                        if me.pressed_a_key(&customer, session).await {
                            // The key press was handled: the checkout or refusal decides.
                            responder.reply(None, None);
                        } else {
                            // The call ended (or never connected) without a key press.
                            responder.reply(None, case.at(Stage::Unreachable));
                            me.close(&customer, Outcome::Unreachable);
                        }
                    } else {
                        // Answered (or ringing): play the script and collect a digit.
                        let script = me.call_script(&case.name, case.amount_due);
                        responder.reply(Some(script), None);
                    }
                }
            });

        let me = self.clone();
        self.app
            .on_payment_status(move |notification, customer, app_data, responder| {
                let me = me.clone();
                async move {
                    let case = Case::from_app_data(app_data.as_ref());
                    match (customer, case) {
                        (Some(customer), Some(case)) => {
                            me.on_payment(customer, case, notification.status, responder)
                                .await
                        }
                        // A purse payment, or a customer not under collection.
                        _ => responder.acknowledge(),
                    }
                }
            });
    }

    /// Enrols one loan: metadata, app data and the due reminder. Returns the customer id.
    pub async fn enrol(&self, loan: &Loan) -> Result<String, elarian_sdk::Error> {
        let customer = self.app.customer(CustomerNumber::cellular(&loan.phone));
        let amount = DataValue::from_serde(&loan.amount_due).map_err(|e| {
            elarian_sdk::Error::InvalidArgument {
                argument: "amount_due",
                reason: e.to_string(),
            }
        })?;
        customer
            .update_metadata(HashMap::from([
                (AMOUNT_DUE.to_owned(), amount),
                (NAME.to_owned(), DataValue::string(&loan.name)),
            ]))
            .await?;
        let case = Case {
            phone: loan.phone.clone(),
            name: loan.name.clone(),
            amount_due: loan.amount_due,
            stage: Stage::Enrolled,
        };
        if let Some(data) = case.at(Stage::Enrolled) {
            customer.update_app_data(data).await?;
        }
        let customer_id = match customer.id() {
            Some(id) => id,
            None => customer.get_state().await?.customer_id,
        };
        self.stats.open(&customer_id);
        // A reminder cannot be set in the past: when enrolment falls behind the schedule (a
        // large book at a high rate), the reminder is due as soon as it can be instead.
        let earliest = SystemTime::now() + REMINDER_LEAD;
        let due_at = if loan.due_at < earliest {
            bump(&self.stats.reminders_shifted);
            earliest
        } else {
            loan.due_at
        };
        customer
            .add_reminder(Reminder::new(DUE_REMINDER, due_at).with_payload("loan repayment due"))
            .await?;
        bump(&self.stats.enrolled);
        Ok(customer_id)
    }

    fn sms_channel(&self) -> MessagingChannelNumber {
        MessagingChannelNumber::new(&self.settings.sms_number, MessagingChannel::Sms)
    }

    fn by_phone(&self, case: &Case) -> Customer {
        self.app.customer(CustomerNumber::cellular(&case.phone))
    }

    /// Whether the customer pressed a key during the call `session`, from the server's message
    /// history: the stage in app data may be one step behind (see the module docs), and
    /// closing a paying customer as unreachable would be wrong.
    async fn pressed_a_key(&self, customer: &Customer, session: Option<&str>) -> bool {
        let Some(session) = session else {
            return false;
        };
        let state = match customer.get_state().await {
            Ok(state) => state,
            Err(error) => {
                self.error("read the call history", &error);
                return false;
            }
        };
        state
            .messaging
            .messages
            .iter()
            .any(|message| match message {
                ChannelMessage::Received(received) => {
                    received.session_id.as_deref() == Some(session)
                        && received.parts.iter().any(|part| {
                            matches!(part, InboundMessageBody::Voice(voice)
                            if voice.dtmf_digits.as_deref().is_some_and(|d| !d.trim().is_empty()))
                        })
                }
                ChannelMessage::Sent(_) => false,
            })
    }

    fn error(&self, what: &str, error: &dyn std::fmt::Display) {
        bump(&self.stats.errors);
        tracing::warn!(%error, "could not {what}");
    }

    fn close(&self, customer: &Customer, outcome: Outcome) {
        match customer.id() {
            Some(id) => self.stats.close(&id, outcome),
            None => tracing::warn!(?outcome, "notification without a customer id"),
        }
    }

    /// Closes a case from outside a notification reply (after a failed command).
    async fn give_up(&self, customer: &Customer, case: &Case, outcome: Outcome, stage: Stage) {
        if let Some(data) = case.at(stage)
            && let Err(error) = customer.update_app_data(data).await
        {
            self.error("store the stage", &error);
        }
        self.close(customer, outcome);
    }

    async fn on_due(&self, customer: Customer, case: Case, responder: Responder) {
        if case.stage != Stage::Enrolled {
            // Already in collection (a repeated reminder): nothing new to do.
            responder.acknowledge();
            return;
        }
        bump(&self.stats.reminded);
        let (name, amount) = (case.name.as_str(), case.amount_due);
        responder.reply(None, case.at(Stage::AwaitingReply));

        let _permit = self.follow_ups.acquire().await;
        // The no-reply timer goes first, so that a quick OK finds it to cancel.
        let timer = Reminder::new(
            NO_REPLY_REMINDER,
            SystemTime::now() + self.settings.reply_window,
        );
        if let Err(error) = customer.add_reminder(timer).await {
            self.error("set the no-reply reminder", &error);
        }
        let text = format!(
            "Hi {name}, your loan repayment of {} is due. Reply OK to pay now.",
            money(&self.settings.currency, amount)
        );
        match self
            .by_phone(&case)
            .send_message(self.sms_channel(), Message::text(text))
            .await
        {
            Ok(reply) if reply.is_success() => bump(&self.stats.sms_sent),
            Ok(reply) => {
                // No SMS (e.g. no consent): the no-reply reminder will try a call.
                tracing::info!(status = ?reply.status, "payment-due SMS not sent");
            }
            Err(error) => self.error("send the payment-due SMS", &error),
        }
    }

    async fn on_no_reply(&self, customer: Customer, case: Case, responder: Responder) {
        if !case.stage.awaits_answer() {
            // The customer answered in time.
            responder.acknowledge();
            return;
        }
        let (name, amount) = (case.name.as_str(), case.amount_due);
        responder.reply(None, case.at(Stage::Calling));

        let _permit = self.follow_ups.acquire().await;
        bump(&self.stats.calls);
        let call = self
            .by_phone(&case)
            .make_voice_call(&self.settings.voice_number, self.call_script(name, amount))
            .await;
        let failure = match call {
            Ok(reply) if reply.is_success() => return,
            Ok(reply) => format!("{:?}", reply.status),
            Err(error) => error.to_string(),
        };
        self.error("place the call", &failure);
        self.give_up(&customer, &case, Outcome::Unreachable, Stage::Unreachable)
            .await;
    }

    fn call_script(&self, name: &str, amount: f64) -> Vec<VoiceAction> {
        let due = money(&self.settings.currency, amount);
        vec![
            VoiceAction::Say(Say::new(format!(
                "Hello {name}. This is your lender. Your loan repayment of {due} is due."
            ))),
            VoiceAction::GetDigits(GetDigits {
                timeout: Some(Duration::from_secs(15)),
                finish_on_key: None,
                num_digits: Some(1),
                prompt: Some(Prompt::Say(Say::new(
                    "Press 1 to pay now with mobile money, or 2 if you cannot pay today.",
                ))),
            }),
        ]
    }

    async fn on_sms(&self, customer: Customer, case: Case, text: &str, responder: Responder) {
        if !case.stage.awaits_answer() {
            let answer = match case.stage {
                Stage::Paid { .. } => "Your loan is repaid. Thank you!",
                _ => "Thank you, your request is being processed.",
            };
            responder.reply(Some(Message::text(answer)), None);
            return;
        }
        let answer = text.trim().to_ascii_uppercase();
        if answer != "OK" && answer != "NO" {
            responder.reply(
                Some(Message::text(
                    "Sorry, we did not understand. Reply OK to pay or NO.",
                )),
                None,
            );
            return;
        }
        // Either answer ends the wait; a failed cancel only means the reminder fired already,
        // and its handler sees the new stage.
        if let Err(error) = customer.cancel_reminder(NO_REPLY_REMINDER).await {
            tracing::debug!(%error, "no-reply reminder not cancelled");
        }
        if answer == "NO" {
            responder.reply(
                Some(Message::text(
                    "Understood. We will contact you about your loan.",
                )),
                case.at(Stage::Refused),
            );
            self.close(&customer, Outcome::Refused);
            return;
        }
        let (name, amount) = (case.name.as_str(), case.amount_due);
        let text = format!(
            "Thank you {name}. Approve the payment request of {} on your phone.",
            money(&self.settings.currency, amount)
        );
        responder.reply(Some(Message::text(text)), case.at(Stage::Paying { amount }));
        self.checkout(&customer, &case, amount).await;
    }

    async fn on_digits(
        &self,
        customer: Customer,
        case: Case,
        digits: &str,
        responder: VoiceResponder,
    ) {
        if digits != "1" {
            responder.reply(
                Some(vec![VoiceAction::Say(Say::new(
                    "We will contact you again. Goodbye.",
                ))]),
                case.at(Stage::Refused),
            );
            self.close(&customer, Outcome::Refused);
            return;
        }
        let amount = case.amount_due;
        responder.reply(
            Some(vec![VoiceAction::Say(Say::new(
                "Thank you. Approve the payment request on your phone. Goodbye.",
            ))]),
            case.at(Stage::Paying { amount }),
        );
        self.checkout(&customer, &case, amount).await;
    }

    /// Starts a mobile-money checkout from the customer into the purse. Its outcome arrives as
    /// a payment status notification.
    async fn checkout(&self, customer: &Customer, case: &Case, amount: f64) {
        let _permit = self.follow_ups.acquire().await;
        let debit = PaymentCounterParty::Customer {
            customer_number: CustomerNumber::cellular(&case.phone),
            channel_number: PaymentChannelNumber::new(
                &self.settings.payment_channel,
                PaymentChannel::Cellular,
            ),
        };
        let credit = PaymentCounterParty::Purse {
            purse_id: self.settings.purse_id.clone(),
        };
        let value = Cash::new(&self.settings.currency, amount);
        let status = match self
            .app
            .initiate_payment_with_narration(debit, credit, value, "loan repayment")
            .await
        {
            Ok(reply) if reply.status.is_success() => return,
            Ok(reply) => reply.status,
            Err(error) => {
                self.error("start the checkout", &error);
                PaymentStatus::ApplicationError
            }
        };
        bump(&self.stats.payments_failed);
        let stage = Stage::PaymentFailed {
            status: format!("{status:?}"),
        };
        self.give_up(customer, case, Outcome::PaymentFailed, stage)
            .await;
    }

    async fn on_payment(
        &self,
        customer: Customer,
        case: Case,
        status: PaymentStatus,
        responder: Responder,
    ) {
        if case.stage.is_final() {
            // Settled already.
            responder.acknowledge();
            return;
        }
        let amount = match case.stage {
            Stage::Paying { amount } => amount,
            _ => case.amount_due,
        };
        if status == PaymentStatus::Success {
            responder.reply(None, case.at(Stage::Paid { amount }));
            bump(&self.stats.payments_succeeded);
            self.stats
                .collected_cents
                .fetch_add((amount * 100.0).round() as u64, Ordering::Relaxed);
            let _permit = self.follow_ups.acquire().await;
            let settled = HashMap::from([(AMOUNT_DUE.to_owned(), DataValue::Json(0.into()))]);
            if let Err(error) = customer.update_metadata(settled).await {
                self.error("clear the amount due", &error);
            }
            let receipt = format!(
                "We received {}. Your loan is repaid. Thank you!",
                money(&self.settings.currency, amount)
            );
            if let Err(error) = self
                .by_phone(&case)
                .send_message(self.sms_channel(), Message::text(receipt))
                .await
            {
                self.error("send the receipt", &error);
            }
            self.close(&customer, Outcome::Paid);
        } else if status.is_success() {
            // Queued, pending or validated: the final status comes later.
            responder.acknowledge();
        } else {
            responder.reply(
                None,
                case.at(Stage::PaymentFailed {
                    status: format!("{status:?}"),
                }),
            );
            bump(&self.stats.payments_failed);
            self.close(&customer, Outcome::PaymentFailed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_round_trips_through_app_data() {
        let case = Case {
            phone: "+254700000001".into(),
            name: "Amina".into(),
            amount_due: 1500.0,
            stage: Stage::Enrolled,
        };
        let data = case.at(Stage::Paying { amount: 1500.0 }).expect("encodes");
        let back = Case::from_app_data(Some(&data)).expect("decodes");
        assert_eq!(back.stage, Stage::Paying { amount: 1500.0 });
        assert_eq!(back.phone, case.phone);
        assert_eq!(
            Case::from_app_data(Some(&DataValue::string("other app"))),
            None
        );
    }
}
