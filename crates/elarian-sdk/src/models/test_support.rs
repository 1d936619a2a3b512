//! What a server sends, encoded from the typed notifications: the direction only a server needs.
//!
//! An app only decodes notifications, and the emulator builds its wire messages itself, so this
//! exists for this crate's tests alone (dispatch tests and the decoder's round trips).

use elarian_proto as proto;
use elarian_proto::{
    server_to_app_customer_notification as customer_entry, server_to_app_notification,
    server_to_app_purse_notification as purse_entry,
};

use super::message::InboundMessageBody;
use super::notifications::{DecodedNotification, Notification, ReceivedMessageNotification};
use super::time;

fn received_message_proto(n: ReceivedMessageNotification) -> customer_entry::Entry {
    customer_entry::Entry::ReceivedMessage(proto::ReceivedMessageNotification {
        message_id: n.message_id,
        customer_number: Some(n.customer_number.into()),
        channel_number: Some(n.channel_number.into()),
        parts: n.parts.into_iter().map(Into::into).collect(),
        session_id: n.session_id,
        in_reply_to: n.in_reply_to,
    })
}

/// Encodes a typed notification as a server sends it.
pub(crate) fn encode(d: DecodedNotification) -> proto::ServerToAppNotification {
    let context = d.notification.context().clone();
    if let (Notification::PaymentStatus(p), Some(purse_id)) =
        (&d.notification, context.purse_id.clone())
    {
        return proto::ServerToAppNotification {
            entry: Some(server_to_app_notification::Entry::Purse(
                proto::ServerToAppPurseNotification {
                    org_id: context.org_id,
                    app_id: context.app_id,
                    purse_id,
                    created_at: context.created_at.map(time::timestamp),
                    entry: Some(purse_entry::Entry::PaymentStatus(
                        proto::PaymentStatusNotification {
                            transaction_id: p.transaction_id.clone(),
                            status: p.status.into(),
                        },
                    )),
                },
            )),
        };
    }
    let entry = match d.notification {
        Notification::Reminder(r) => customer_entry::Entry::Reminder(proto::ReminderNotification {
            reminder: Some(r.reminder.into()),
            tag: r.tag.map(Into::into),
            work_id: r.work_id,
        }),
        Notification::MessagingSessionStarted(s) => customer_entry::Entry::MessagingSessionStarted(
            proto::MessagingSessionStartedNotification {
                customer_number: Some(s.customer_number.into()),
                channel_number: Some(s.channel_number.into()),
                session_id: s.session_id,
                expires_at: s.expires_at.map(time::timestamp),
            },
        ),
        Notification::MessagingSessionRenewed(s) => customer_entry::Entry::MessagingSessionRenewed(
            proto::MessagingSessionRenewedNotification {
                customer_number: Some(s.customer_number.into()),
                channel_number: Some(s.channel_number.into()),
                session_id: s.session_id,
                expires_at: s.expires_at.map(time::timestamp),
            },
        ),
        Notification::MessagingSessionEnded(s) => {
            customer_entry::Entry::MessagingSessionEnded(proto::MessagingSessionEndedNotification {
                customer_number: Some(s.customer_number.into()),
                channel_number: Some(s.channel_number.into()),
                session_id: s.session_id,
                duration: s.duration.map(time::duration),
                reason: s.reason.into(),
            })
        }
        Notification::MessagingConsentUpdate(u) => customer_entry::Entry::MessagingConsentUpdate(
            proto::MessagingConsentUpdateNotification {
                customer_number: Some(u.customer_number.into()),
                channel_number: Some(u.channel_number.into()),
                update: u.update.into(),
                status: u.status.into(),
            },
        ),
        Notification::ReceivedSms(n)
        | Notification::ReceivedFbMessenger(n)
        | Notification::ReceivedTelegram(n)
        | Notification::ReceivedWhatsapp(n)
        | Notification::ReceivedEmail(n) => received_message_proto(n),
        Notification::VoiceCall(v) => {
            customer_entry::Entry::ReceivedMessage(proto::ReceivedMessageNotification {
                message_id: v.message_id,
                customer_number: Some(v.customer_number.into()),
                channel_number: Some(v.channel_number.into()),
                parts: vec![InboundMessageBody::Voice(v.voice).into()],
                session_id: v.session_id,
                in_reply_to: None,
            })
        }
        Notification::UssdSession(u) => {
            customer_entry::Entry::ReceivedMessage(proto::ReceivedMessageNotification {
                message_id: u.message_id,
                customer_number: Some(u.customer_number.into()),
                channel_number: Some(u.channel_number.into()),
                parts: vec![InboundMessageBody::Ussd(u.input).into()],
                session_id: u.session_id,
                in_reply_to: None,
            })
        }
        Notification::MessageStatus(s) => {
            customer_entry::Entry::MessageStatus(proto::MessageStatusNotification {
                message_id: s.message_id,
                status: s.status.into(),
            })
        }
        Notification::SentMessageReaction(r) => {
            customer_entry::Entry::SentMessageReaction(proto::SentMessageReactionNotification {
                message_id: r.message_id,
                customer_number: Some(r.customer_number.into()),
                channel_number: Some(r.channel_number.into()),
                reaction: r.reaction.into(),
            })
        }
        Notification::ReceivedPayment(p) => {
            customer_entry::Entry::ReceivedPayment(proto::ReceivedPaymentNotification {
                purse_id: p.purse_id,
                transaction_id: p.transaction_id,
                customer_number: Some(p.customer_number.into()),
                channel_number: Some(p.channel_number.into()),
                value: Some(p.value.into()),
                status: p.status.into(),
            })
        }
        Notification::PaymentStatus(p) => {
            customer_entry::Entry::PaymentStatus(proto::PaymentStatusNotification {
                transaction_id: p.transaction_id,
                status: p.status.into(),
            })
        }
        Notification::CustomerActivity(a) => {
            customer_entry::Entry::CustomerActivity(proto::CustomerActivityNotification {
                customer_number: Some(a.customer_number.into()),
                source: a.source,
                session_id: a.session_id,
                activity: Some(a.activity.into()),
            })
        }
    };
    proto::ServerToAppNotification {
        entry: Some(server_to_app_notification::Entry::Customer(
            proto::ServerToAppCustomerNotification {
                org_id: context.org_id,
                app_id: context.app_id,
                customer_id: context.customer_id.unwrap_or_default(),
                app_data: d.app_data.map(Into::into),
                created_at: context.created_at.map(time::timestamp),
                entry: Some(entry),
            },
        )),
    }
}
