//! Typed app notifications and the events they are delivered as.
//!
//! The wire's `received_message` is split by channel into the seven events the published clients
//! expose (`received_sms`, …, `voice_call`, `ussd_session`).

use std::time::{Duration, SystemTime};

use elarian_proto as proto;
use elarian_proto::{
    inbound_message_body, server_to_app_customer_notification as customer_entry,
    server_to_app_notification, server_to_app_purse_notification as purse_entry,
};
use serde::{Deserialize, Serialize};

use super::common::{
    Activity, Cash, CustomerNumber, MessagingChannelNumber, PaymentChannelNumber, Reminder, Tag,
};
use super::data::DataValue;
use super::enums::{
    ConsentAction, ConsentUpdateStatus, MessageDeliveryStatus, MessageReaction, MessagingChannel,
    MessagingSessionEndReason, PaymentStatus,
};
use super::message::{Email, InboundMessageBody, Location, Media, UssdInput, VoiceCallInput};
use super::time;
use crate::handlers::NamedEvent;

/// The app events a handler can be registered for; [`NamedEvent`] names them as the JavaScript
/// client does (`receivedSms`) and parses those names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppEvent {
    /// A reminder fired.
    Reminder,
    /// A messaging session started.
    MessagingSessionStarted,
    /// A messaging session was renewed.
    MessagingSessionRenewed,
    /// A messaging session ended.
    MessagingSessionEnded,
    /// A customer's messaging consent changed.
    MessagingConsentUpdate,
    /// An SMS came in.
    ReceivedSms,
    /// A Facebook Messenger message came in.
    ReceivedFbMessenger,
    /// A Telegram message came in.
    ReceivedTelegram,
    /// A WhatsApp message came in.
    ReceivedWhatsapp,
    /// An email came in.
    ReceivedEmail,
    /// A voice call progressed (the app answers with voice actions).
    VoiceCall,
    /// A USSD session progressed (the app answers with a USSD menu).
    UssdSession,
    /// A sent message's status changed.
    MessageStatus,
    /// A customer reacted to a sent message.
    SentMessageReaction,
    /// A payment was received.
    ReceivedPayment,
    /// A payment's status changed (customer or purse payment).
    PaymentStatus,
    /// A customer's activity was recorded.
    CustomerActivity,
}

impl NamedEvent for AppEvent {
    const ALL: &'static [AppEvent] = &[
        AppEvent::Reminder,
        AppEvent::MessagingSessionStarted,
        AppEvent::MessagingSessionRenewed,
        AppEvent::MessagingSessionEnded,
        AppEvent::MessagingConsentUpdate,
        AppEvent::ReceivedSms,
        AppEvent::ReceivedFbMessenger,
        AppEvent::ReceivedTelegram,
        AppEvent::ReceivedWhatsapp,
        AppEvent::ReceivedEmail,
        AppEvent::VoiceCall,
        AppEvent::UssdSession,
        AppEvent::MessageStatus,
        AppEvent::SentMessageReaction,
        AppEvent::ReceivedPayment,
        AppEvent::PaymentStatus,
        AppEvent::CustomerActivity,
    ];

    fn name(self) -> &'static str {
        match self {
            AppEvent::Reminder => "reminder",
            AppEvent::MessagingSessionStarted => "messagingSessionStarted",
            AppEvent::MessagingSessionRenewed => "messagingSessionRenewed",
            AppEvent::MessagingSessionEnded => "messagingSessionEnded",
            AppEvent::MessagingConsentUpdate => "messagingConsentUpdate",
            AppEvent::ReceivedSms => "receivedSms",
            AppEvent::ReceivedFbMessenger => "receivedFbMessenger",
            AppEvent::ReceivedTelegram => "receivedTelegram",
            AppEvent::ReceivedWhatsapp => "receivedWhatsapp",
            AppEvent::ReceivedEmail => "receivedEmail",
            AppEvent::VoiceCall => "voiceCall",
            AppEvent::UssdSession => "ussdSession",
            AppEvent::MessageStatus => "messageStatus",
            AppEvent::SentMessageReaction => "sentMessageReaction",
            AppEvent::ReceivedPayment => "receivedPayment",
            AppEvent::PaymentStatus => "paymentStatus",
            AppEvent::CustomerActivity => "customerActivity",
        }
    }
}

impl std::fmt::Display for AppEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Fields every notification carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NotificationContext {
    /// The organization.
    pub org_id: String,
    /// The app.
    pub app_id: String,
    /// The customer (absent for purse notifications).
    pub customer_id: Option<String>,
    /// The purse (purse notifications only).
    pub purse_id: Option<String>,
    /// When the server created the notification.
    pub created_at: Option<SystemTime>,
}

/// A reminder fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The reminder.
    pub reminder: Reminder,
    /// The tag, for a reminder set by tag.
    pub tag: Option<Tag>,
    /// The tag-wide work, for a reminder set by tag.
    pub work_id: Option<String>,
}

/// A messaging session started or was renewed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagingSessionNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The customer's number.
    pub customer_number: CustomerNumber,
    /// The channel.
    pub channel_number: MessagingChannelNumber,
    /// The session.
    pub session_id: String,
    /// When the session expires.
    pub expires_at: Option<SystemTime>,
}

/// A messaging session ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagingSessionEndedNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The customer's number.
    pub customer_number: CustomerNumber,
    /// The channel.
    pub channel_number: MessagingChannelNumber,
    /// The session.
    pub session_id: String,
    /// How long it lasted.
    pub duration: Option<Duration>,
    /// Why it ended.
    pub reason: MessagingSessionEndReason,
}

/// A customer's messaging consent changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagingConsentUpdateNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The customer's number.
    pub customer_number: CustomerNumber,
    /// The channel.
    pub channel_number: MessagingChannelNumber,
    /// Allowed or blocked.
    pub update: ConsentAction,
    /// Status of the change.
    pub status: ConsentUpdateStatus,
}

/// A message came in on SMS, Messenger, Telegram, WhatsApp or email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedMessageNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The message.
    pub message_id: String,
    /// The sender.
    pub customer_number: CustomerNumber,
    /// The channel it came in on.
    pub channel_number: MessagingChannelNumber,
    /// Its parts.
    pub parts: Vec<InboundMessageBody>,
    /// Session it belongs to.
    pub session_id: Option<String>,
    /// The message it replies to.
    pub in_reply_to: Option<String>,
}

impl ReceivedMessageNotification {
    /// The text parts joined with newlines, if there is any text.
    pub fn text(&self) -> Option<String> {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                InboundMessageBody::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        (!texts.is_empty()).then(|| texts.join("\n"))
    }

    /// The media parts.
    pub fn media(&self) -> Vec<&Media> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                InboundMessageBody::Media(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The first location part.
    pub fn location(&self) -> Option<&Location> {
        self.parts.iter().find_map(|p| match p {
            InboundMessageBody::Location(l) => Some(l),
            _ => None,
        })
    }

    /// The first email part.
    pub fn email(&self) -> Option<&Email> {
        self.parts.iter().find_map(|p| match p {
            InboundMessageBody::Email(e) => Some(e),
            _ => None,
        })
    }
}

/// A voice call progressed; answer with voice actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceCallNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The message id of this step.
    pub message_id: String,
    /// The caller or callee.
    pub customer_number: CustomerNumber,
    /// The voice channel.
    pub channel_number: MessagingChannelNumber,
    /// The call's session.
    pub session_id: Option<String>,
    /// The call's state (digits typed, recording, …).
    pub voice: VoiceCallInput,
}

/// A USSD session progressed; answer with a USSD menu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UssdSessionNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The message id of this step.
    pub message_id: String,
    /// The customer.
    pub customer_number: CustomerNumber,
    /// The USSD code.
    pub channel_number: MessagingChannelNumber,
    /// The USSD session.
    pub session_id: Option<String>,
    /// What the customer typed.
    pub input: UssdInput,
}

/// A sent message's status changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageStatusNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The message.
    pub message_id: String,
    /// Its new status.
    pub status: MessageDeliveryStatus,
}

/// A customer reacted to a sent message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentMessageReactionNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The message.
    pub message_id: String,
    /// The customer.
    pub customer_number: CustomerNumber,
    /// The channel.
    pub channel_number: MessagingChannelNumber,
    /// The reaction.
    pub reaction: MessageReaction,
}

/// A payment was received from a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedPaymentNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The purse credited.
    pub purse_id: String,
    /// The transaction.
    pub transaction_id: String,
    /// The payer.
    pub customer_number: CustomerNumber,
    /// The payment channel.
    pub channel_number: PaymentChannelNumber,
    /// How much.
    pub value: Cash,
    /// Payment status.
    pub status: PaymentStatus,
}

/// A payment's status changed. For purse payments `context.purse_id` is set and there is no customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentStatusNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The transaction.
    pub transaction_id: String,
    /// Its new status.
    pub status: PaymentStatus,
}

/// A customer's activity was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerActivityNotification {
    /// Common fields.
    pub context: NotificationContext,
    /// The customer's number.
    pub customer_number: CustomerNumber,
    /// Where it came from.
    pub source: String,
    /// The activity session.
    pub session_id: String,
    /// The activity.
    pub activity: Activity,
}

/// Any app notification, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Notification {
    /// See [`AppEvent::Reminder`].
    Reminder(ReminderNotification),
    /// See [`AppEvent::MessagingSessionStarted`].
    MessagingSessionStarted(MessagingSessionNotification),
    /// See [`AppEvent::MessagingSessionRenewed`].
    MessagingSessionRenewed(MessagingSessionNotification),
    /// See [`AppEvent::MessagingSessionEnded`].
    MessagingSessionEnded(MessagingSessionEndedNotification),
    /// See [`AppEvent::MessagingConsentUpdate`].
    MessagingConsentUpdate(MessagingConsentUpdateNotification),
    /// See [`AppEvent::ReceivedSms`].
    ReceivedSms(ReceivedMessageNotification),
    /// See [`AppEvent::ReceivedFbMessenger`].
    ReceivedFbMessenger(ReceivedMessageNotification),
    /// See [`AppEvent::ReceivedTelegram`].
    ReceivedTelegram(ReceivedMessageNotification),
    /// See [`AppEvent::ReceivedWhatsapp`].
    ReceivedWhatsapp(ReceivedMessageNotification),
    /// See [`AppEvent::ReceivedEmail`].
    ReceivedEmail(ReceivedMessageNotification),
    /// See [`AppEvent::VoiceCall`].
    VoiceCall(VoiceCallNotification),
    /// See [`AppEvent::UssdSession`].
    UssdSession(UssdSessionNotification),
    /// See [`AppEvent::MessageStatus`].
    MessageStatus(MessageStatusNotification),
    /// See [`AppEvent::SentMessageReaction`].
    SentMessageReaction(SentMessageReactionNotification),
    /// See [`AppEvent::ReceivedPayment`].
    ReceivedPayment(ReceivedPaymentNotification),
    /// See [`AppEvent::PaymentStatus`].
    PaymentStatus(PaymentStatusNotification),
    /// See [`AppEvent::CustomerActivity`].
    CustomerActivity(CustomerActivityNotification),
}

impl Notification {
    /// The event this notification is delivered as.
    pub fn event(&self) -> AppEvent {
        match self {
            Notification::Reminder(_) => AppEvent::Reminder,
            Notification::MessagingSessionStarted(_) => AppEvent::MessagingSessionStarted,
            Notification::MessagingSessionRenewed(_) => AppEvent::MessagingSessionRenewed,
            Notification::MessagingSessionEnded(_) => AppEvent::MessagingSessionEnded,
            Notification::MessagingConsentUpdate(_) => AppEvent::MessagingConsentUpdate,
            Notification::ReceivedSms(_) => AppEvent::ReceivedSms,
            Notification::ReceivedFbMessenger(_) => AppEvent::ReceivedFbMessenger,
            Notification::ReceivedTelegram(_) => AppEvent::ReceivedTelegram,
            Notification::ReceivedWhatsapp(_) => AppEvent::ReceivedWhatsapp,
            Notification::ReceivedEmail(_) => AppEvent::ReceivedEmail,
            Notification::VoiceCall(_) => AppEvent::VoiceCall,
            Notification::UssdSession(_) => AppEvent::UssdSession,
            Notification::MessageStatus(_) => AppEvent::MessageStatus,
            Notification::SentMessageReaction(_) => AppEvent::SentMessageReaction,
            Notification::ReceivedPayment(_) => AppEvent::ReceivedPayment,
            Notification::PaymentStatus(_) => AppEvent::PaymentStatus,
            Notification::CustomerActivity(_) => AppEvent::CustomerActivity,
        }
    }

    /// The common fields.
    pub fn context(&self) -> &NotificationContext {
        match self {
            Notification::Reminder(n) => &n.context,
            Notification::MessagingSessionStarted(n) | Notification::MessagingSessionRenewed(n) => {
                &n.context
            }
            Notification::MessagingSessionEnded(n) => &n.context,
            Notification::MessagingConsentUpdate(n) => &n.context,
            Notification::ReceivedSms(n)
            | Notification::ReceivedFbMessenger(n)
            | Notification::ReceivedTelegram(n)
            | Notification::ReceivedWhatsapp(n)
            | Notification::ReceivedEmail(n) => &n.context,
            Notification::VoiceCall(n) => &n.context,
            Notification::UssdSession(n) => &n.context,
            Notification::MessageStatus(n) => &n.context,
            Notification::SentMessageReaction(n) => &n.context,
            Notification::ReceivedPayment(n) => &n.context,
            Notification::PaymentStatus(n) => &n.context,
            Notification::CustomerActivity(n) => &n.context,
        }
    }

    /// The customer's number, for notifications that carry one.
    pub fn customer_number(&self) -> Option<&CustomerNumber> {
        match self {
            Notification::MessagingSessionStarted(n) | Notification::MessagingSessionRenewed(n) => {
                Some(&n.customer_number)
            }
            Notification::MessagingSessionEnded(n) => Some(&n.customer_number),
            Notification::MessagingConsentUpdate(n) => Some(&n.customer_number),
            Notification::ReceivedSms(n)
            | Notification::ReceivedFbMessenger(n)
            | Notification::ReceivedTelegram(n)
            | Notification::ReceivedWhatsapp(n)
            | Notification::ReceivedEmail(n) => Some(&n.customer_number),
            Notification::VoiceCall(n) => Some(&n.customer_number),
            Notification::UssdSession(n) => Some(&n.customer_number),
            Notification::SentMessageReaction(n) => Some(&n.customer_number),
            Notification::ReceivedPayment(n) => Some(&n.customer_number),
            Notification::CustomerActivity(n) => Some(&n.customer_number),
            Notification::Reminder(_)
            | Notification::MessageStatus(_)
            | Notification::PaymentStatus(_) => None,
        }
    }
}

/// A decoded app notification with the customer's app data that came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedNotification {
    /// The notification.
    pub notification: Notification,
    /// The customer's app data as the server sent it.
    pub app_data: Option<DataValue>,
}

/// Why a wire notification could not be turned into a typed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationDecodeError {
    /// No notification variant was set (e.g. one this SDK version does not know).
    #[error("notification has no known entry")]
    Empty,
}

fn opt_str(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn received_message(
    context: NotificationContext,
    m: proto::ReceivedMessageNotification,
) -> Notification {
    let customer_number: CustomerNumber = m.customer_number.unwrap_or_default().into();
    let channel_number: MessagingChannelNumber = m.channel_number.unwrap_or_default().into();
    match channel_number.channel {
        MessagingChannel::Voice => {
            let voice = m
                .parts
                .into_iter()
                .find_map(|p| match p.entry {
                    Some(inbound_message_body::Entry::Voice(v)) => Some(v.into()),
                    _ => None,
                })
                .unwrap_or_default();
            Notification::VoiceCall(VoiceCallNotification {
                context,
                message_id: m.message_id,
                customer_number,
                channel_number,
                session_id: m.session_id,
                voice,
            })
        }
        MessagingChannel::Ussd => {
            let input = m
                .parts
                .into_iter()
                .find_map(|p| match p.entry {
                    Some(inbound_message_body::Entry::Ussd(u)) => Some(u.into()),
                    _ => None,
                })
                .unwrap_or_default();
            Notification::UssdSession(UssdSessionNotification {
                context,
                message_id: m.message_id,
                customer_number,
                channel_number,
                session_id: m.session_id,
                input,
            })
        }
        channel => {
            let n = ReceivedMessageNotification {
                context,
                message_id: m.message_id,
                customer_number,
                channel_number,
                parts: InboundMessageBody::from_proto_parts(m.parts),
                session_id: m.session_id,
                in_reply_to: m.in_reply_to,
            };
            match channel {
                MessagingChannel::FbMessenger => Notification::ReceivedFbMessenger(n),
                MessagingChannel::Telegram => Notification::ReceivedTelegram(n),
                MessagingChannel::Whatsapp => Notification::ReceivedWhatsapp(n),
                MessagingChannel::Email => Notification::ReceivedEmail(n),
                // SMS, and channels this version does not know, are delivered as SMS: the
                // closest generic text event, so a newer server's messages are not lost.
                _ => Notification::ReceivedSms(n),
            }
        }
    }
}

impl TryFrom<proto::ServerToAppNotification> for DecodedNotification {
    type Error = NotificationDecodeError;

    fn try_from(n: proto::ServerToAppNotification) -> Result<Self, Self::Error> {
        match n.entry.ok_or(NotificationDecodeError::Empty)? {
            server_to_app_notification::Entry::Customer(c) => {
                let context = NotificationContext {
                    org_id: c.org_id,
                    app_id: c.app_id,
                    customer_id: opt_str(c.customer_id),
                    purse_id: None,
                    created_at: time::opt_system_time(c.created_at.as_ref()),
                };
                let app_data = c.app_data.and_then(DataValue::from_wire);
                let notification = match c.entry.ok_or(NotificationDecodeError::Empty)? {
                    customer_entry::Entry::Reminder(r) => {
                        Notification::Reminder(ReminderNotification {
                            context,
                            reminder: r.reminder.unwrap_or_default().into(),
                            tag: r.tag.map(Into::into),
                            work_id: r.work_id,
                        })
                    }
                    customer_entry::Entry::MessagingSessionStarted(s) => {
                        Notification::MessagingSessionStarted(MessagingSessionNotification {
                            context,
                            customer_number: s.customer_number.unwrap_or_default().into(),
                            channel_number: s.channel_number.unwrap_or_default().into(),
                            session_id: s.session_id,
                            expires_at: time::opt_system_time(s.expires_at.as_ref()),
                        })
                    }
                    customer_entry::Entry::MessagingSessionRenewed(s) => {
                        Notification::MessagingSessionRenewed(MessagingSessionNotification {
                            context,
                            customer_number: s.customer_number.unwrap_or_default().into(),
                            channel_number: s.channel_number.unwrap_or_default().into(),
                            session_id: s.session_id,
                            expires_at: time::opt_system_time(s.expires_at.as_ref()),
                        })
                    }
                    customer_entry::Entry::MessagingSessionEnded(s) => {
                        Notification::MessagingSessionEnded(MessagingSessionEndedNotification {
                            context,
                            customer_number: s.customer_number.unwrap_or_default().into(),
                            channel_number: s.channel_number.unwrap_or_default().into(),
                            session_id: s.session_id,
                            duration: time::opt_std_duration(s.duration.as_ref()),
                            reason: s.reason.into(),
                        })
                    }
                    customer_entry::Entry::MessagingConsentUpdate(u) => {
                        Notification::MessagingConsentUpdate(MessagingConsentUpdateNotification {
                            context,
                            customer_number: u.customer_number.unwrap_or_default().into(),
                            channel_number: u.channel_number.unwrap_or_default().into(),
                            update: u.update.into(),
                            status: u.status.into(),
                        })
                    }
                    customer_entry::Entry::ReceivedMessage(m) => received_message(context, m),
                    customer_entry::Entry::MessageStatus(s) => {
                        Notification::MessageStatus(MessageStatusNotification {
                            context,
                            message_id: s.message_id,
                            status: s.status.into(),
                        })
                    }
                    customer_entry::Entry::SentMessageReaction(r) => {
                        Notification::SentMessageReaction(SentMessageReactionNotification {
                            context,
                            message_id: r.message_id,
                            customer_number: r.customer_number.unwrap_or_default().into(),
                            channel_number: r.channel_number.unwrap_or_default().into(),
                            reaction: r.reaction.into(),
                        })
                    }
                    customer_entry::Entry::ReceivedPayment(p) => {
                        Notification::ReceivedPayment(ReceivedPaymentNotification {
                            context,
                            purse_id: p.purse_id,
                            transaction_id: p.transaction_id,
                            customer_number: p.customer_number.unwrap_or_default().into(),
                            channel_number: p.channel_number.unwrap_or_default().into(),
                            value: p.value.unwrap_or_default().into(),
                            status: p.status.into(),
                        })
                    }
                    customer_entry::Entry::PaymentStatus(p) => {
                        Notification::PaymentStatus(PaymentStatusNotification {
                            context,
                            transaction_id: p.transaction_id,
                            status: p.status.into(),
                        })
                    }
                    customer_entry::Entry::CustomerActivity(a) => {
                        Notification::CustomerActivity(CustomerActivityNotification {
                            context,
                            customer_number: a.customer_number.unwrap_or_default().into(),
                            source: a.source,
                            session_id: a.session_id,
                            activity: a.activity.unwrap_or_default().into(),
                        })
                    }
                };
                Ok(DecodedNotification {
                    notification,
                    app_data,
                })
            }
            server_to_app_notification::Entry::Purse(p) => {
                let context = NotificationContext {
                    org_id: p.org_id,
                    app_id: p.app_id,
                    customer_id: None,
                    purse_id: opt_str(p.purse_id),
                    created_at: time::opt_system_time(p.created_at.as_ref()),
                };
                let notification = match p.entry.ok_or(NotificationDecodeError::Empty)? {
                    purse_entry::Entry::PaymentStatus(s) => {
                        Notification::PaymentStatus(PaymentStatusNotification {
                            context,
                            transaction_id: s.transaction_id,
                            status: s.status.into(),
                        })
                    }
                };
                Ok(DecodedNotification {
                    notification,
                    app_data: None,
                })
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::models::enums::{PaymentChannel, UssdSessionStatus, VoiceCallStatus};
    use crate::models::test_support::encode;
    use std::time::UNIX_EPOCH;

    fn ctx() -> NotificationContext {
        NotificationContext {
            org_id: "el_org_eu_1SJ2jx".into(),
            app_id: "el_app_WZFQdt".into(),
            customer_id: Some("el_cst_1".into()),
            purse_id: None,
            created_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn number() -> CustomerNumber {
        CustomerNumber::cellular("+254700000000")
    }

    fn channel(c: MessagingChannel) -> MessagingChannelNumber {
        MessagingChannelNumber::new("83044", c)
    }

    fn received(c: MessagingChannel) -> ReceivedMessageNotification {
        ReceivedMessageNotification {
            context: ctx(),
            message_id: "m".into(),
            customer_number: number(),
            channel_number: channel(c),
            parts: vec![
                InboundMessageBody::Text("hello".into()),
                InboundMessageBody::Media(Media::new("u", crate::MediaType::Image)),
            ],
            session_id: Some("s".into()),
            in_reply_to: Some("prev".into()),
        }
    }

    /// One notification of every event (two of `PaymentStatus`: a customer's and a purse's).
    pub(crate) fn every_notification() -> Vec<Notification> {
        let session = MessagingSessionNotification {
            context: ctx(),
            customer_number: number(),
            channel_number: channel(MessagingChannel::Whatsapp),
            session_id: "s".into(),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(5)),
        };
        vec![
            Notification::Reminder(ReminderNotification {
                context: ctx(),
                reminder: Reminder::new("k", UNIX_EPOCH + Duration::from_secs(9)).with_payload("p"),
                tag: Some(Tag::new("tier", "gold")),
                work_id: Some("w".into()),
            }),
            Notification::MessagingSessionStarted(session.clone()),
            Notification::MessagingSessionRenewed(session),
            Notification::MessagingSessionEnded(MessagingSessionEndedNotification {
                context: ctx(),
                customer_number: number(),
                channel_number: channel(MessagingChannel::Ussd),
                session_id: "s".into(),
                duration: Some(Duration::from_secs(30)),
                reason: MessagingSessionEndReason::Unknown(777),
            }),
            Notification::MessagingConsentUpdate(MessagingConsentUpdateNotification {
                context: ctx(),
                customer_number: number(),
                channel_number: channel(MessagingChannel::Sms),
                update: ConsentAction::Block,
                status: ConsentUpdateStatus::Completed,
            }),
            Notification::ReceivedSms(received(MessagingChannel::Sms)),
            Notification::ReceivedFbMessenger(received(MessagingChannel::FbMessenger)),
            Notification::ReceivedTelegram(received(MessagingChannel::Telegram)),
            Notification::ReceivedWhatsapp(received(MessagingChannel::Whatsapp)),
            Notification::ReceivedEmail(received(MessagingChannel::Email)),
            Notification::VoiceCall(VoiceCallNotification {
                context: ctx(),
                message_id: "m".into(),
                customer_number: number(),
                channel_number: channel(MessagingChannel::Voice),
                session_id: Some("call".into()),
                voice: VoiceCallInput {
                    status: VoiceCallStatus::Active,
                    dtmf_digits: Some("1".into()),
                    ..Default::default()
                },
            }),
            Notification::UssdSession(UssdSessionNotification {
                context: ctx(),
                message_id: "m".into(),
                customer_number: number(),
                channel_number: channel(MessagingChannel::Ussd),
                session_id: Some("ussd".into()),
                input: UssdInput {
                    text: Some("1*2".into()),
                    status: UssdSessionStatus::Active,
                },
            }),
            Notification::MessageStatus(MessageStatusNotification {
                context: ctx(),
                message_id: "m".into(),
                status: MessageDeliveryStatus::Read,
            }),
            Notification::SentMessageReaction(SentMessageReactionNotification {
                context: ctx(),
                message_id: "m".into(),
                customer_number: number(),
                channel_number: channel(MessagingChannel::Email),
                reaction: MessageReaction::Complained,
            }),
            Notification::ReceivedPayment(ReceivedPaymentNotification {
                context: ctx(),
                purse_id: "el_prs_rL3IPZ".into(),
                transaction_id: "tx".into(),
                customer_number: number(),
                channel_number: PaymentChannelNumber::new("83044", PaymentChannel::Cellular),
                value: Cash::new("KES", 100.0),
                status: PaymentStatus::Success,
            }),
            Notification::PaymentStatus(PaymentStatusNotification {
                context: ctx(),
                transaction_id: "tx".into(),
                status: PaymentStatus::Failed,
            }),
            Notification::PaymentStatus(PaymentStatusNotification {
                context: NotificationContext {
                    customer_id: None,
                    purse_id: Some("el_prs_rL3IPZ".into()),
                    ..ctx()
                },
                transaction_id: "tx2".into(),
                status: PaymentStatus::Reversed,
            }),
            Notification::CustomerActivity(CustomerActivityNotification {
                context: ctx(),
                customer_number: number(),
                source: "web".into(),
                session_id: "as".into(),
                activity: Activity::new("visit").with_property("page", "/"),
            }),
        ]
    }

    #[test]
    fn every_notification_round_trips_through_the_wire() {
        let all = every_notification();
        let events: std::collections::HashSet<AppEvent> = all.iter().map(|n| n.event()).collect();
        assert_eq!(events.len(), AppEvent::ALL.len(), "every event is covered");
        for notification in all {
            let app_data = if notification.context().purse_id.is_some() {
                None
            } else {
                Some(DataValue::Json(serde_json::json!({"step": 1})))
            };
            let decoded = DecodedNotification {
                notification,
                app_data,
            };
            let json = serde_json::to_string(&decoded.notification).expect("serialize");
            assert_eq!(
                serde_json::from_str::<Notification>(&json).expect("deserialize"),
                decoded.notification
            );
            let wire = encode(decoded.clone());
            assert_eq!(DecodedNotification::try_from(wire), Ok(decoded));
        }
    }

    #[test]
    fn received_messages_are_split_by_channel() {
        let expectations = [
            (MessagingChannel::Sms, AppEvent::ReceivedSms),
            (MessagingChannel::FbMessenger, AppEvent::ReceivedFbMessenger),
            (MessagingChannel::Telegram, AppEvent::ReceivedTelegram),
            (MessagingChannel::Whatsapp, AppEvent::ReceivedWhatsapp),
            (MessagingChannel::Email, AppEvent::ReceivedEmail),
            (MessagingChannel::Voice, AppEvent::VoiceCall),
            (MessagingChannel::Ussd, AppEvent::UssdSession),
            (MessagingChannel::Unknown(99), AppEvent::ReceivedSms),
        ];
        for (channel, event) in expectations {
            let decoded = DecodedNotification::try_from(encode(DecodedNotification {
                notification: Notification::ReceivedSms(received(channel)),
                app_data: None,
            }))
            .expect("decodes");
            assert_eq!(decoded.notification.event(), event, "{channel:?}");
        }
    }

    #[test]
    fn empty_notifications_are_a_typed_error() {
        assert_eq!(
            DecodedNotification::try_from(proto::ServerToAppNotification { entry: None }),
            Err(NotificationDecodeError::Empty)
        );
        let no_entry = proto::ServerToAppNotification {
            entry: Some(server_to_app_notification::Entry::Customer(
                proto::ServerToAppCustomerNotification::default(),
            )),
        };
        assert_eq!(
            DecodedNotification::try_from(no_entry),
            Err(NotificationDecodeError::Empty)
        );
    }

    #[test]
    fn event_names_match_the_javascript_client_and_parse_back() {
        for &event in AppEvent::ALL {
            assert_eq!(AppEvent::from_name(event.name()), Some(event));
        }
        assert_eq!(
            AppEvent::from_name("ussd_session"),
            Some(AppEvent::UssdSession)
        );
        assert_eq!(AppEvent::from_name("nope"), None);
    }

    #[test]
    fn received_message_helpers_pick_parts() {
        let n = received(MessagingChannel::Sms);
        assert_eq!(n.text().as_deref(), Some("hello"));
        assert_eq!(n.media().len(), 1);
        assert!(n.location().is_none());
        assert!(n.email().is_none());
    }
}
