//! The simulated customers: one [`Simulator`] connection plays every customer's phone, each after
//! a [`Persona`]. It sees what the app sends (SMS, calls, checkouts) and answers the way that
//! persona would: replies OK at once or late, says NO, ignores the SMS and answers the call,
//! does not pick up, or approves the checkout with too little money on the account.
//!
//! Nothing here is part of the app: swap the simulator for real phones and the app in `app.rs`
//! does not change.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use elarian_sdk::{
    InboundMessageBody, MessageBody, MessagingChannel, MessagingChannelNumber, PaymentStatus,
    Prompt, VoiceAction, VoiceCallInput, VoiceCallStatus,
};
use elarian_simulator::Simulator;
use tokio::sync::Notify;

use crate::app::Outcome;

/// How a simulated customer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Persona {
    /// Replies OK to the SMS at once and approves the checkout.
    PaysAtOnce,
    /// Replies OK after a while (within the reply window) and approves the checkout.
    RepliesLate,
    /// Ignores the SMS, answers the call, presses 1 and approves the checkout.
    AnswersCall,
    /// Replies NO to the SMS.
    Refuses,
    /// Replies OK, but the mobile-money account cannot cover the amount.
    InsufficientFunds,
    /// Ignores the SMS, answers the call, presses 1; the payment then fails.
    PaymentFails,
    /// Ignores the SMS and does not answer the call.
    Unreachable,
}

impl Persona {
    /// Every persona, in display order.
    pub const ALL: [Persona; 7] = [
        Persona::PaysAtOnce,
        Persona::RepliesLate,
        Persona::AnswersCall,
        Persona::Refuses,
        Persona::InsufficientFunds,
        Persona::PaymentFails,
        Persona::Unreachable,
    ];

    /// The persona of the `index`th customer: a fixed mix (40% pay at once, 15% reply late,
    /// 15% answer the call, 10% refuse, 10% lack funds, 5% whose payment fails, 5%
    /// unreachable), so every run is reproducible.
    pub fn of(index: usize) -> Persona {
        match index % 20 {
            0..=7 => Persona::PaysAtOnce,
            8..=10 => Persona::RepliesLate,
            11..=13 => Persona::AnswersCall,
            14..=15 => Persona::Refuses,
            16..=17 => Persona::InsufficientFunds,
            18 => Persona::PaymentFails,
            _ => Persona::Unreachable,
        }
    }

    /// The outcome the app must reach for this persona.
    pub fn expected(self) -> Outcome {
        match self {
            Persona::PaysAtOnce | Persona::RepliesLate | Persona::AnswersCall => Outcome::Paid,
            Persona::Refuses => Outcome::Refused,
            Persona::InsufficientFunds | Persona::PaymentFails => Outcome::PaymentFailed,
            Persona::Unreachable => Outcome::Unreachable,
        }
    }

    /// A short description for the summary.
    pub fn label(self) -> &'static str {
        match self {
            Persona::PaysAtOnce => "pays at once",
            Persona::RepliesLate => "replies late",
            Persona::AnswersCall => "answers the call",
            Persona::Refuses => "refuses",
            Persona::InsufficientFunds => "insufficient funds",
            Persona::PaymentFails => "payment fails",
            Persona::Unreachable => "unreachable",
        }
    }
}

/// Timing of the customers' reactions.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Delay of a late reply (must be shorter than the app's reply window).
    pub late_reply: Duration,
    /// Time a customer takes to approve a checkout on the phone.
    pub approve: Duration,
}

/// Tells which persona a phone number plays (`None`: not one of the crowd).
type PersonaOf = dyn Fn(&str) -> Option<Persona> + Send + Sync;

/// Counters of the simulated side.
#[derive(Debug, Default)]
pub struct CrowdStats {
    /// SMS the customers received.
    pub sms_received: AtomicU64,
    /// Calls the customers received.
    pub calls_received: AtomicU64,
    /// Calls to customers who should not have been called (they had answered the SMS).
    pub unexpected_calls: AtomicU64,
    /// Checkouts for customers who never agreed to pay.
    pub unexpected_checkouts: AtomicU64,
    /// Calls whose prompt did not ask to press 1.
    pub missing_prompts: AtomicU64,
    /// Simulator commands that failed.
    pub errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The simulated customers.
#[derive(Clone)]
pub struct Crowd {
    simulator: Simulator,
    persona_of: Arc<PersonaOf>,
    sms: MessagingChannelNumber,
    voice: MessagingChannelNumber,
    pace: Pace,
    stats: Arc<CrowdStats>,
    in_flight: Arc<(AtomicUsize, Notify)>,
}

/// Decrements the in-flight count when a customer's action ends, even if it panicked.
struct InFlight(Arc<(AtomicUsize, Notify)>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

impl Crowd {
    /// The customers whose phone numbers `persona_of` knows, answering on the app's SMS and
    /// voice numbers. (A function rather than a map keeps a crowd of millions small.)
    pub fn new(
        simulator: Simulator,
        persona_of: impl Fn(&str) -> Option<Persona> + Send + Sync + 'static,
        sms_number: &str,
        voice_number: &str,
        pace: Pace,
    ) -> Self {
        Crowd {
            simulator,
            persona_of: Arc::new(persona_of),
            sms: MessagingChannelNumber::new(sms_number, MessagingChannel::Sms),
            voice: MessagingChannelNumber::new(voice_number, MessagingChannel::Voice),
            pace,
            stats: Arc::new(CrowdStats::default()),
            in_flight: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }

    /// The simulated side's counters.
    pub fn stats(&self) -> Arc<CrowdStats> {
        self.stats.clone()
    }

    /// Waits until no customer is in the middle of an action, at most `limit`. Returns false if
    /// some still were.
    pub async fn settle(&self, limit: Duration) -> bool {
        let idle = async {
            loop {
                let notified = self.in_flight.1.notified();
                if self.in_flight.0.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, idle).await.is_ok()
    }

    /// Runs a customer's action in the background: the simulator's handlers return at once so
    /// the server is never held up by a customer "thinking".
    fn spawn(&self, action: impl Future<Output = ()> + Send + 'static) {
        self.in_flight.0.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self.in_flight.clone());
        tokio::spawn(async move {
            let _guard = guard;
            action.await;
        });
    }

    /// Registers the simulator's handlers.
    pub fn register(&self) {
        let me = self.clone();
        self.simulator.on_send_message(move |sms| {
            let me = me.clone();
            async move {
                bump(&me.stats.sms_received);
                let phone = sms.customer_number.number;
                let asks_to_reply = matches!(
                    &sms.message.body,
                    Some(MessageBody::Text(text)) if text.contains("Reply OK")
                );
                let persona = (me.persona_of)(&phone);
                let answer = match (asks_to_reply, persona) {
                    (true, Some(Persona::PaysAtOnce | Persona::InsufficientFunds)) => {
                        Some(("OK", Duration::ZERO))
                    }
                    (true, Some(Persona::RepliesLate)) => Some(("OK", me.pace.late_reply)),
                    (true, Some(Persona::Refuses)) => Some(("NO", Duration::ZERO)),
                    // Receipts, and customers who ignore the SMS.
                    _ => None,
                };
                if let Some((text, delay)) = answer {
                    let crowd = me.clone();
                    me.spawn(async move {
                        tokio::time::sleep(delay).await;
                        crowd.reply_sms(phone, text).await;
                    });
                }
            }
        });

        let me = self.clone();
        self.simulator.on_make_voice_call(move |call| {
            let me = me.clone();
            async move {
                bump(&me.stats.calls_received);
                let phone = call.customer_number.number;
                let session = call.session_id;
                let crowd = me.clone();
                match (me.persona_of)(&phone) {
                    Some(Persona::AnswersCall | Persona::PaymentFails) => {
                        me.spawn(async move { crowd.answer_and_press_1(phone, session).await })
                    }
                    Some(Persona::Unreachable) => {
                        me.spawn(async move { crowd.miss_call(phone, session).await })
                    }
                    Some(_) => {
                        // This customer answered the SMS: the call should not have happened.
                        bump(&me.stats.unexpected_calls);
                        me.spawn(async move { crowd.miss_call(phone, session).await })
                    }
                    None => tracing::debug!(phone, "call to a number the crowd does not play"),
                }
            }
        });

        let me = self.clone();
        self.simulator.on_checkout_payment(move |checkout| {
            let me = me.clone();
            async move {
                let status = match (me.persona_of)(&checkout.customer_number.number) {
                    Some(Persona::InsufficientFunds) => PaymentStatus::InsufficientFunds,
                    Some(Persona::PaymentFails) => PaymentStatus::Failed,
                    Some(Persona::PaysAtOnce | Persona::RepliesLate | Persona::AnswersCall) => {
                        PaymentStatus::Success
                    }
                    Some(Persona::Refuses | Persona::Unreachable) => {
                        bump(&me.stats.unexpected_checkouts);
                        PaymentStatus::Rejected
                    }
                    None => return,
                };
                let crowd = me.clone();
                me.spawn(async move {
                    tokio::time::sleep(crowd.pace.approve).await;
                    if let Err(error) = crowd
                        .simulator
                        .update_payment_status(checkout.transaction_id, status)
                        .await
                    {
                        crowd.failed("settle a checkout", &error);
                    }
                });
            }
        });
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        bump(&self.stats.errors);
        tracing::warn!(%error, "simulated customer could not {what}");
    }

    async fn reply_sms(&self, phone: String, text: &str) {
        let parts = vec![InboundMessageBody::Text(text.to_owned())];
        if let Err(error) = self
            .simulator
            .receive_message(phone, self.sms.clone(), "", parts)
            .await
        {
            self.failed("reply to the SMS", &error);
        }
    }

    async fn voice_step(
        &self,
        phone: &str,
        session: &str,
        status: VoiceCallStatus,
        digits: Option<&str>,
    ) -> Option<Vec<VoiceAction>> {
        let input = VoiceCallInput {
            status,
            dtmf_digits: digits.map(str::to_owned),
            ..VoiceCallInput::default()
        };
        match self
            .simulator
            .receive_message(
                phone,
                self.voice.clone(),
                session,
                vec![InboundMessageBody::Voice(input)],
            )
            .await
        {
            Ok(reply) => match reply.message.and_then(|m| m.body) {
                Some(MessageBody::Voice(actions)) => Some(actions),
                _ => Some(Vec::new()),
            },
            Err(error) => {
                self.failed("take part in a call", &error);
                None
            }
        }
    }

    /// Picks up, listens for "press 1", presses it, hears the goodbye and hangs up.
    async fn answer_and_press_1(&self, phone: String, session: String) {
        let Some(script) = self
            .voice_step(&phone, &session, VoiceCallStatus::Answered, None)
            .await
        else {
            return;
        };
        let asked = script.iter().any(|action| {
            matches!(action, VoiceAction::GetDigits(get) if matches!(
                &get.prompt, Some(Prompt::Say(say)) if say.text.contains("Press 1")
            ))
        });
        if asked {
            if self
                .voice_step(&phone, &session, VoiceCallStatus::Active, Some("1"))
                .await
                .is_none()
            {
                return;
            }
        } else {
            bump(&self.stats.missing_prompts);
        }
        self.voice_step(&phone, &session, VoiceCallStatus::Completed, None)
            .await;
    }

    async fn miss_call(&self, phone: String, session: String) {
        self.voice_step(&phone, &session, VoiceCallStatus::NotAnswered, None)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_mix_covers_every_persona_in_fixed_shares() {
        let mut counts: HashMap<Persona, usize> = HashMap::new();
        for i in 0..1000 {
            *counts.entry(Persona::of(i)).or_default() += 1;
        }
        assert_eq!(counts.len(), Persona::ALL.len());
        assert_eq!(counts[&Persona::PaysAtOnce], 400);
        assert_eq!(counts[&Persona::RepliesLate], 150);
        assert_eq!(counts[&Persona::AnswersCall], 150);
        assert_eq!(counts[&Persona::Refuses], 100);
        assert_eq!(counts[&Persona::InsufficientFunds], 100);
        assert_eq!(counts[&Persona::PaymentFails], 50);
        assert_eq!(counts[&Persona::Unreachable], 50);
    }
}
