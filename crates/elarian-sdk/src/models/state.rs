//! A customer's state: identity, messaging, payment and activity, plus the message and session
//! records that replay commands take.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use elarian_proto as proto;
use elarian_proto::{channel_message, messaging_channel_state};
use serde::{Deserialize, Serialize};

use super::common::{
    Activity, Cash, CustomerNumber, MessagingChannelNumber, PaymentChannelNumber, SecondaryId, Tag,
};
use super::data::DataValue;
use super::enums::{
    ChannelNumberProvider, MessageDeliveryStatus, MessageReaction, MessagingSessionEndReason,
};
use super::message::{InboundMessageBody, Message};
use super::payment::{PaymentBalance, PaymentTransaction};
use super::time;

/// Everything Elarian knows about a customer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomerState {
    /// The customer's id.
    pub customer_id: String,
    /// Tags, metadata and secondary ids.
    pub identity: IdentityState,
    /// Channels, messages and sessions.
    pub messaging: MessagingState,
    /// Payment numbers, transactions and wallets.
    pub payment: PaymentState,
    /// Activity sessions.
    pub activity: ActivityState,
}

impl CustomerState {
    /// Every distinct, non-empty customer number in this state, in the order the JavaScript
    /// client looks at them (channel states, then payment numbers, then activity numbers),
    /// followed by the numbers found only in sessions and message history.
    ///
    /// ```
    /// use elarian_sdk::{CustomerNumber, CustomerState};
    ///
    /// let mut state = CustomerState::default();
    /// state.payment.customer_numbers.push(CustomerNumber::cellular("+254700000001"));
    /// state.payment.customer_numbers.push(CustomerNumber::cellular("+254700000001"));
    /// assert_eq!(state.customer_numbers(), [&CustomerNumber::cellular("+254700000001")]);
    /// ```
    pub fn customer_numbers(&self) -> Vec<&CustomerNumber> {
        let channels = self.messaging.channels.iter().filter_map(|c| match c {
            MessagingChannelState::Blocked {
                customer_number, ..
            }
            | MessagingChannelState::Active {
                customer_number, ..
            }
            | MessagingChannelState::InSession {
                customer_number, ..
            } => customer_number.as_ref(),
        });
        let sessions = self
            .messaging
            .sessions
            .iter()
            .filter_map(|s| s.customer_number.as_ref());
        let messages = self.messaging.messages.iter().filter_map(|m| match m {
            ChannelMessage::Received(r) => r.customer_number.as_ref(),
            ChannelMessage::Sent(s) => s.customer_number.as_ref(),
        });
        let activity_sessions = self
            .activity
            .sessions
            .iter()
            .filter_map(|s| s.customer_number.as_ref());

        let mut found: Vec<&CustomerNumber> = Vec::new();
        for number in channels
            .chain(&self.payment.customer_numbers)
            .chain(&self.activity.customer_numbers)
            .chain(sessions)
            .chain(messages)
            .chain(activity_sessions)
        {
            // A customer has a handful of numbers, so a linear scan beats hashing here.
            if !number.number.trim().is_empty() && !found.contains(&number) {
                found.push(number);
            }
        }
        found
    }
}

impl From<proto::CustomerStateReplyData> for CustomerState {
    fn from(d: proto::CustomerStateReplyData) -> Self {
        CustomerState {
            customer_id: d.customer_id,
            identity: d.identity_state.unwrap_or_default().into(),
            messaging: d.messaging_state.unwrap_or_default().into(),
            payment: d.payment_state.unwrap_or_default().into(),
            activity: d.activity_state.unwrap_or_default().into(),
        }
    }
}

impl From<CustomerState> for proto::CustomerStateReplyData {
    fn from(s: CustomerState) -> Self {
        proto::CustomerStateReplyData {
            customer_id: s.customer_id,
            identity_state: Some(s.identity.into()),
            messaging_state: Some(s.messaging.into()),
            payment_state: Some(s.payment.into()),
            activity_state: Some(s.activity.into()),
        }
    }
}

/// Tags, metadata and secondary ids of a customer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IdentityState {
    /// Tags.
    pub tags: Vec<Tag>,
    /// Metadata values by key.
    pub metadata: HashMap<String, DataValue>,
    /// Secondary ids.
    pub secondary_ids: Vec<SecondaryId>,
}

impl From<proto::IdentityState> for IdentityState {
    fn from(i: proto::IdentityState) -> Self {
        IdentityState {
            tags: i.tags.into_iter().map(Into::into).collect(),
            metadata: metadata_from_proto(i.metadata),
            secondary_ids: i.secondary_ids.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<IdentityState> for proto::IdentityState {
    fn from(i: IdentityState) -> Self {
        proto::IdentityState {
            tags: i.tags.into_iter().map(Into::into).collect(),
            metadata: metadata_to_proto(i.metadata),
            secondary_ids: i.secondary_ids.into_iter().map(Into::into).collect(),
        }
    }
}

pub(crate) fn metadata_from_proto(
    m: HashMap<String, proto::DataMapValue>,
) -> HashMap<String, DataValue> {
    m.into_iter()
        .filter_map(|(k, v)| DataValue::from_wire(v).map(|v| (k, v)))
        .collect()
}

pub(crate) fn metadata_to_proto(
    m: HashMap<String, DataValue>,
) -> HashMap<String, proto::DataMapValue> {
    m.into_iter().map(|(k, v)| (k, v.into())).collect()
}

/// A token that lets the app message a customer inside a channel's reply window.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplyToken {
    /// The token.
    pub token: String,
    /// When it stops being valid.
    pub expires_at: Option<SystemTime>,
}

/// Shows when the token expires, never the token: it is a credential of the customer's session.
impl std::fmt::Debug for ReplyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyToken")
            .field("token", &format_args!("<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl From<proto::MessageReplyToken> for ReplyToken {
    fn from(t: proto::MessageReplyToken) -> Self {
        ReplyToken {
            token: t.token,
            expires_at: time::opt_system_time(t.expires_at.as_ref()),
        }
    }
}

impl From<ReplyToken> for proto::MessageReplyToken {
    fn from(t: ReplyToken) -> Self {
        proto::MessageReplyToken {
            token: t.token,
            expires_at: t.expires_at.map(time::timestamp),
        }
    }
}

/// Where a customer stands with one of the app's channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessagingChannelState {
    /// The customer blocked the channel.
    Blocked {
        /// The customer's number.
        customer_number: Option<CustomerNumber>,
        /// The channel.
        channel_number: Option<MessagingChannelNumber>,
        /// Reply token, if any.
        reply_token: Option<ReplyToken>,
        /// When it was blocked.
        blocked_at: Option<SystemTime>,
    },
    /// The customer accepts messages from the channel.
    Active {
        /// The customer's number.
        customer_number: Option<CustomerNumber>,
        /// The channel.
        channel_number: Option<MessagingChannelNumber>,
        /// Reply token, if any.
        reply_token: Option<ReplyToken>,
        /// When it was allowed.
        allowed_at: Option<SystemTime>,
    },
    /// A session (USSD, voice, chat window) is in progress.
    InSession {
        /// The customer's number.
        customer_number: Option<CustomerNumber>,
        /// The channel.
        channel_number: Option<MessagingChannelNumber>,
        /// Reply token, if any.
        reply_token: Option<ReplyToken>,
        /// When it was allowed.
        allowed_at: Option<SystemTime>,
        /// The session.
        session_id: String,
        /// When the session started.
        started_at: Option<SystemTime>,
        /// When it expires.
        expires_at: Option<SystemTime>,
        /// Apps taking part.
        app_ids: Vec<String>,
        /// The provider's id for the session.
        provider_session_id: Option<String>,
    },
}

impl MessagingChannelState {
    fn from_proto(s: proto::MessagingChannelState) -> Option<Self> {
        use messaging_channel_state::State;
        Some(match s.state? {
            State::Blocked(b) => MessagingChannelState::Blocked {
                customer_number: b.customer_number.map(Into::into),
                channel_number: b.channel_number.map(Into::into),
                reply_token: b.reply_token.map(Into::into),
                blocked_at: time::opt_system_time(b.blocked_at.as_ref()),
            },
            State::Active(a) => MessagingChannelState::Active {
                customer_number: a.customer_number.map(Into::into),
                channel_number: a.channel_number.map(Into::into),
                reply_token: a.reply_token.map(Into::into),
                allowed_at: time::opt_system_time(a.allowed_at.as_ref()),
            },
            State::InSession(s) => MessagingChannelState::InSession {
                customer_number: s.customer_number.map(Into::into),
                channel_number: s.channel_number.map(Into::into),
                reply_token: s.reply_token.map(Into::into),
                allowed_at: time::opt_system_time(s.allowed_at.as_ref()),
                session_id: s.session_id,
                started_at: time::opt_system_time(s.started_at.as_ref()),
                expires_at: time::opt_system_time(s.expires_at.as_ref()),
                app_ids: s.app_ids,
                provider_session_id: s.provider_session_id,
            },
        })
    }
}

impl From<MessagingChannelState> for proto::MessagingChannelState {
    fn from(s: MessagingChannelState) -> Self {
        use messaging_channel_state::State;
        let state = match s {
            MessagingChannelState::Blocked {
                customer_number,
                channel_number,
                reply_token,
                blocked_at,
            } => State::Blocked(proto::BlockedMessagingChannelState {
                customer_number: customer_number.map(Into::into),
                channel_number: channel_number.map(Into::into),
                reply_token: reply_token.map(Into::into),
                blocked_at: blocked_at.map(time::timestamp),
            }),
            MessagingChannelState::Active {
                customer_number,
                channel_number,
                reply_token,
                allowed_at,
            } => State::Active(proto::ActiveMessagingChannelState {
                customer_number: customer_number.map(Into::into),
                channel_number: channel_number.map(Into::into),
                reply_token: reply_token.map(Into::into),
                allowed_at: allowed_at.map(time::timestamp),
            }),
            MessagingChannelState::InSession {
                customer_number,
                channel_number,
                reply_token,
                allowed_at,
                session_id,
                started_at,
                expires_at,
                app_ids,
                provider_session_id,
            } => State::InSession(proto::InSessionMessagingChannelState {
                customer_number: customer_number.map(Into::into),
                channel_number: channel_number.map(Into::into),
                reply_token: reply_token.map(Into::into),
                allowed_at: allowed_at.map(time::timestamp),
                session_id,
                started_at: started_at.map(time::timestamp),
                expires_at: expires_at.map(time::timestamp),
                app_ids,
                provider_session_id,
            }),
        };
        proto::MessagingChannelState { state: Some(state) }
    }
}

/// A message a customer sent. Also the input of [`replay_received_message`](crate::Elarian::replay_received_message),
/// where `message_id` and `session_id` are the provider's ids.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReceivedMessage {
    /// Message id.
    pub message_id: String,
    /// Session the message belongs to.
    pub session_id: Option<String>,
    /// When it was received.
    pub received_at: Option<SystemTime>,
    /// Its parts.
    pub parts: Vec<InboundMessageBody>,
    /// The message it replies to.
    pub in_reply_to: Option<String>,
    /// What it cost.
    pub cost: Option<Cash>,
    /// The provider that carried it.
    pub provider: ChannelNumberProvider,
    /// The sender (in customer state).
    pub customer_number: Option<CustomerNumber>,
    /// The channel it came in on (in customer state).
    pub channel_number: Option<MessagingChannelNumber>,
    /// The app it was routed to (in customer state).
    pub app_id: Option<String>,
    /// The provider's message id (in customer state).
    pub provider_message_id: Option<String>,
}

impl From<proto::ReceivedMessage> for ReceivedMessage {
    fn from(m: proto::ReceivedMessage) -> Self {
        ReceivedMessage {
            message_id: m.message_id,
            session_id: m.session_id,
            received_at: time::opt_system_time(m.created_at.as_ref()),
            parts: InboundMessageBody::from_proto_parts(m.parts),
            in_reply_to: m.in_reply_to,
            cost: m.cost.map(Into::into),
            provider: m.provider.into(),
            customer_number: m.customer_number.map(Into::into),
            channel_number: m.channel_number.map(Into::into),
            app_id: m.app_id,
            provider_message_id: m.provider_message_id,
        }
    }
}

impl From<ReceivedMessage> for proto::ReceivedMessage {
    fn from(m: ReceivedMessage) -> Self {
        proto::ReceivedMessage {
            customer_number: m.customer_number.map(Into::into),
            channel_number: m.channel_number.map(Into::into),
            message_id: m.message_id,
            created_at: m.received_at.map(time::timestamp),
            session_id: m.session_id,
            in_reply_to: m.in_reply_to,
            provider: m.provider.into(),
            app_id: m.app_id,
            parts: m.parts.into_iter().map(Into::into).collect(),
            cost: m.cost.map(Into::into),
            provider_message_id: m.provider_message_id,
        }
    }
}

/// A reaction to a sent message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageReactionState {
    /// The reaction.
    pub reaction: MessageReaction,
    /// When it happened.
    pub created_at: Option<SystemTime>,
}

/// A message the app sent. Also the input of [`replay_sent_message`](crate::Elarian::replay_sent_message),
/// where `message_id` and `session_id` are the provider's ids.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SentMessage {
    /// Message id.
    pub message_id: String,
    /// Session it was sent in.
    pub session_id: Option<String>,
    /// When it was sent.
    pub sent_at: Option<SystemTime>,
    /// The message.
    pub message: Message,
    /// The message it replies to.
    pub in_reply_to: Option<String>,
    /// Delivery status.
    pub status: MessageDeliveryStatus,
    /// What it cost.
    pub cost: Option<Cash>,
    /// The provider that carried it.
    pub provider: ChannelNumberProvider,
    /// Last status change (in customer state).
    pub updated_at: Option<SystemTime>,
    /// Reactions (in customer state).
    pub reactions: Vec<MessageReactionState>,
    /// The recipient (in customer state).
    pub customer_number: Option<CustomerNumber>,
    /// The channel it went out on (in customer state).
    pub channel_number: Option<MessagingChannelNumber>,
    /// The app that sent it (in customer state).
    pub app_id: Option<String>,
    /// The provider's message id (in customer state).
    pub provider_message_id: Option<String>,
}

impl From<proto::SentMessage> for SentMessage {
    fn from(m: proto::SentMessage) -> Self {
        SentMessage {
            message_id: m.message_id,
            session_id: m.session_id,
            sent_at: time::opt_system_time(m.created_at.as_ref()),
            message: m.message.unwrap_or_default().into(),
            in_reply_to: m.in_reply_to,
            status: m.status.into(),
            cost: m.cost.map(Into::into),
            provider: m.provider.into(),
            updated_at: time::opt_system_time(m.updated_at.as_ref()),
            reactions: m
                .reactions
                .into_iter()
                .map(|r| MessageReactionState {
                    reaction: r.reaction.into(),
                    created_at: time::opt_system_time(r.created_at.as_ref()),
                })
                .collect(),
            customer_number: m.customer_number.map(Into::into),
            channel_number: m.channel_number.map(Into::into),
            app_id: m.app_id,
            provider_message_id: m.provider_message_id,
        }
    }
}

impl From<SentMessage> for proto::SentMessage {
    fn from(m: SentMessage) -> Self {
        proto::SentMessage {
            customer_number: m.customer_number.map(Into::into),
            channel_number: m.channel_number.map(Into::into),
            message_id: m.message_id,
            created_at: m.sent_at.map(time::timestamp),
            session_id: m.session_id,
            in_reply_to: m.in_reply_to,
            provider: m.provider.into(),
            app_id: m.app_id,
            updated_at: m.updated_at.map(time::timestamp),
            status: m.status.into(),
            reactions: m
                .reactions
                .into_iter()
                .map(|r| proto::MessageReactionState {
                    created_at: r.created_at.map(time::timestamp),
                    reaction: r.reaction.into(),
                })
                .collect(),
            message: Some(m.message.into()),
            cost: m.cost.map(Into::into),
            provider_message_id: m.provider_message_id,
        }
    }
}

/// A message in a customer's history.
// Plain data read from state replies; boxing a variant would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChannelMessage {
    /// From the customer.
    Received(ReceivedMessage),
    /// To the customer.
    Sent(SentMessage),
}

/// A messaging session that ended.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessagingSession {
    /// The customer's number.
    pub customer_number: Option<CustomerNumber>,
    /// The channel.
    pub channel_number: Option<MessagingChannelNumber>,
    /// The session.
    pub session_id: String,
    /// When it started.
    pub started_at: Option<SystemTime>,
    /// How long it lasted.
    pub duration: Option<Duration>,
    /// Apps taking part.
    pub app_ids: Vec<String>,
    /// Why it ended.
    pub end_reason: MessagingSessionEndReason,
    /// What it cost.
    pub cost: Option<Cash>,
    /// The provider's id for it.
    pub provider_session_id: Option<String>,
}

impl From<proto::CompleteMessagingSession> for MessagingSession {
    fn from(s: proto::CompleteMessagingSession) -> Self {
        MessagingSession {
            customer_number: s.customer_number.map(Into::into),
            channel_number: s.channel_number.map(Into::into),
            session_id: s.session_id,
            started_at: time::opt_system_time(s.started_at.as_ref()),
            duration: time::opt_std_duration(s.duration.as_ref()),
            app_ids: s.app_ids,
            end_reason: s.end_reason.into(),
            cost: s.cost.map(Into::into),
            provider_session_id: s.provider_session_id,
        }
    }
}

impl From<MessagingSession> for proto::CompleteMessagingSession {
    fn from(s: MessagingSession) -> Self {
        proto::CompleteMessagingSession {
            customer_number: s.customer_number.map(Into::into),
            channel_number: s.channel_number.map(Into::into),
            session_id: s.session_id,
            started_at: s.started_at.map(time::timestamp),
            duration: s.duration.map(time::duration),
            app_ids: s.app_ids,
            end_reason: s.end_reason.into(),
            cost: s.cost.map(Into::into),
            provider_session_id: s.provider_session_id,
        }
    }
}

/// Channels, messages and sessions of a customer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessagingState {
    /// Per-channel state.
    pub channels: Vec<MessagingChannelState>,
    /// Message history.
    pub messages: Vec<ChannelMessage>,
    /// Ended sessions.
    pub sessions: Vec<MessagingSession>,
}

impl From<proto::MessagingState> for MessagingState {
    fn from(m: proto::MessagingState) -> Self {
        MessagingState {
            channels: m
                .channels
                .into_iter()
                .filter_map(MessagingChannelState::from_proto)
                .collect(),
            messages: m
                .messages
                .into_iter()
                .filter_map(|m| match m.entry? {
                    channel_message::Entry::Received(r) => Some(ChannelMessage::Received(r.into())),
                    channel_message::Entry::Sent(s) => Some(ChannelMessage::Sent(s.into())),
                })
                .collect(),
            sessions: m.sessions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<MessagingState> for proto::MessagingState {
    fn from(m: MessagingState) -> Self {
        proto::MessagingState {
            channels: m.channels.into_iter().map(Into::into).collect(),
            messages: m
                .messages
                .into_iter()
                .map(|m| proto::ChannelMessage {
                    entry: Some(match m {
                        ChannelMessage::Received(r) => channel_message::Entry::Received(r.into()),
                        ChannelMessage::Sent(s) => channel_message::Entry::Sent(s.into()),
                    }),
                })
                .collect(),
            sessions: m.sessions.into_iter().map(Into::into).collect(),
        }
    }
}

/// Payment numbers, transactions and wallets of a customer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PaymentState {
    /// Numbers the customer paid or was paid with.
    pub customer_numbers: Vec<CustomerNumber>,
    /// The app's channel numbers used.
    pub channel_numbers: Vec<PaymentChannelNumber>,
    /// Settled transactions.
    pub transaction_log: Vec<PaymentTransaction>,
    /// Transactions in progress.
    pub pending_transactions: Vec<PaymentTransaction>,
    /// Wallet balances by wallet id.
    pub wallets: HashMap<String, PaymentBalance>,
}

impl From<proto::PaymentState> for PaymentState {
    fn from(p: proto::PaymentState) -> Self {
        PaymentState {
            customer_numbers: p.customer_numbers.into_iter().map(Into::into).collect(),
            channel_numbers: p.channel_numbers.into_iter().map(Into::into).collect(),
            transaction_log: p.transaction_log.into_iter().map(Into::into).collect(),
            pending_transactions: p.pending_transactions.into_iter().map(Into::into).collect(),
            wallets: p.wallets.into_iter().map(|(k, v)| (k, v.into())).collect(),
        }
    }
}

impl From<PaymentState> for proto::PaymentState {
    fn from(p: PaymentState) -> Self {
        proto::PaymentState {
            customer_numbers: p.customer_numbers.into_iter().map(Into::into).collect(),
            channel_numbers: p.channel_numbers.into_iter().map(Into::into).collect(),
            transaction_log: p.transaction_log.into_iter().map(Into::into).collect(),
            pending_transactions: p.pending_transactions.into_iter().map(Into::into).collect(),
            wallets: p.wallets.into_iter().map(|(k, v)| (k, v.into())).collect(),
        }
    }
}

/// One activity session of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActivitySession {
    /// The customer's number.
    pub customer_number: Option<CustomerNumber>,
    /// Where the activity came from (e.g. `web`).
    pub source: String,
    /// The session.
    pub session_id: String,
    /// The app that reported it.
    pub app_id: String,
    /// Activities in the session.
    pub activities: Vec<Activity>,
    /// When it started.
    pub created_at: Option<SystemTime>,
    /// Last activity.
    pub updated_at: Option<SystemTime>,
}

/// Activity sessions of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActivityState {
    /// Sessions.
    pub sessions: Vec<ActivitySession>,
    /// Numbers seen in activities.
    pub customer_numbers: Vec<CustomerNumber>,
}

impl From<proto::ActivityState> for ActivityState {
    fn from(a: proto::ActivityState) -> Self {
        ActivityState {
            sessions: a
                .sessions
                .into_iter()
                .map(|s| ActivitySession {
                    customer_number: s.customer_number.map(Into::into),
                    source: s.source,
                    session_id: s.session_id,
                    app_id: s.app_id,
                    activities: s.activities.into_iter().map(Into::into).collect(),
                    created_at: time::opt_system_time(s.created_at.as_ref()),
                    updated_at: time::opt_system_time(s.updated_at.as_ref()),
                })
                .collect(),
            customer_numbers: a.customer_numbers.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ActivityState> for proto::ActivityState {
    fn from(a: ActivityState) -> Self {
        proto::ActivityState {
            sessions: a
                .sessions
                .into_iter()
                .map(|s| proto::ActivitySessionState {
                    customer_number: s.customer_number.map(Into::into),
                    source: s.source,
                    session_id: s.session_id,
                    app_id: s.app_id,
                    activities: s.activities.into_iter().map(Into::into).collect(),
                    created_at: s.created_at.map(time::timestamp),
                    updated_at: s.updated_at.map(time::timestamp),
                })
                .collect(),
            customer_numbers: a.customer_numbers.into_iter().map(Into::into).collect(),
        }
    }
}

/// A status change of a message, for [`replay_message_status_update`](crate::Elarian::replay_message_status_update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageStatusUpdate {
    /// The provider's message id.
    pub message_id: String,
    /// When the status changed.
    pub updated_at: SystemTime,
    /// The new status.
    pub status: MessageDeliveryStatus,
    /// What it cost.
    pub cost: Option<Cash>,
}

/// A finished session, for [`replay_messaging_session`](crate::Elarian::replay_messaging_session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSessionUpdate {
    /// The provider's session id.
    pub session_id: String,
    /// When it started.
    pub started_at: SystemTime,
    /// How long it lasted.
    pub duration: Duration,
    /// Why it ended.
    pub reason: MessagingSessionEndReason,
    /// What it cost.
    pub cost: Option<Cash>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::enums::{MessagingChannel, PaymentChannel, PaymentStatus};
    use crate::models::payment::PaymentCounterParty;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(s))
    }

    fn full_state() -> CustomerState {
        let number = Some(CustomerNumber::cellular("+254700000000"));
        let channel = Some(MessagingChannelNumber::new("83044", MessagingChannel::Sms));
        let token = Some(ReplyToken {
            token: "t".into(),
            expires_at: at(9),
        });
        CustomerState {
            customer_id: "el_cst_1".into(),
            identity: IdentityState {
                tags: vec![Tag::new("tier", "gold")],
                metadata: HashMap::from([
                    ("name".to_string(), DataValue::string("Ann")),
                    ("blob".to_string(), DataValue::Bytes(vec![1, 2])),
                ]),
                secondary_ids: vec![SecondaryId::new("acct", "1")],
            },
            messaging: MessagingState {
                channels: vec![
                    MessagingChannelState::Blocked {
                        customer_number: number.clone(),
                        channel_number: channel.clone(),
                        reply_token: token.clone(),
                        blocked_at: at(1),
                    },
                    MessagingChannelState::Active {
                        customer_number: number.clone(),
                        channel_number: channel.clone(),
                        reply_token: None,
                        allowed_at: at(2),
                    },
                    MessagingChannelState::InSession {
                        customer_number: number.clone(),
                        channel_number: channel.clone(),
                        reply_token: token,
                        allowed_at: at(3),
                        session_id: "s".into(),
                        started_at: at(4),
                        expires_at: at(5),
                        app_ids: vec!["a".into()],
                        provider_session_id: Some("ps".into()),
                    },
                ],
                messages: vec![
                    ChannelMessage::Received(ReceivedMessage {
                        message_id: "m1".into(),
                        parts: vec![InboundMessageBody::Text("hi".into())],
                        provider: ChannelNumberProvider::At,
                        received_at: at(6),
                        customer_number: number.clone(),
                        ..Default::default()
                    }),
                    ChannelMessage::Sent(SentMessage {
                        message_id: "m2".into(),
                        message: Message::text("hello"),
                        status: MessageDeliveryStatus::Delivered,
                        reactions: vec![MessageReactionState {
                            reaction: MessageReaction::Clicked,
                            created_at: at(7),
                        }],
                        ..Default::default()
                    }),
                ],
                sessions: vec![MessagingSession {
                    session_id: "s0".into(),
                    duration: Some(Duration::from_secs(30)),
                    end_reason: MessagingSessionEndReason::Inactivity,
                    cost: Some(Cash::new("KES", 1.0)),
                    ..Default::default()
                }],
            },
            payment: PaymentState {
                customer_numbers: vec![CustomerNumber::cellular("+254700000000")],
                channel_numbers: vec![PaymentChannelNumber::new("83044", PaymentChannel::Cellular)],
                transaction_log: vec![PaymentTransaction {
                    transaction_id: "tx".into(),
                    status: PaymentStatus::Success,
                    credit_party: Some(PaymentCounterParty::Purse {
                        purse_id: "p".into(),
                    }),
                    ..Default::default()
                }],
                pending_transactions: vec![],
                wallets: HashMap::from([("w".to_string(), PaymentBalance::default())]),
            },
            activity: ActivityState {
                sessions: vec![ActivitySession {
                    source: "web".into(),
                    session_id: "as".into(),
                    app_id: "app".into(),
                    activities: vec![Activity::new("visit")],
                    created_at: at(8),
                    ..Default::default()
                }],
                customer_numbers: vec![],
            },
        }
    }

    #[test]
    fn full_customer_state_round_trips() {
        let state = full_state();
        let wire = proto::CustomerStateReplyData::from(state.clone());
        assert_eq!(CustomerState::from(wire), state);
        let json = serde_json::to_string(&state).expect("serialize");
        assert_eq!(
            serde_json::from_str::<CustomerState>(&json).expect("deserialize"),
            state
        );
    }

    #[test]
    fn missing_sub_states_decode_as_empty() {
        let state = CustomerState::from(proto::CustomerStateReplyData {
            customer_id: "c".into(),
            ..Default::default()
        });
        assert_eq!(state.customer_id, "c");
        assert!(state.identity.tags.is_empty());
    }
}
