//! The messaging replays: history from another system, recorded without notifications.

use elarian_proto::{
    ChannelMessage, CompleteMessagingSession, CustomerNumber, MessageReactionState,
    MessagingChannel, MessagingChannelNumber, MessagingConsentUpdate, ReceivedMessage,
    ReplayMessageReactionUpdateCommand, ReplayMessageStatusUpdateCommand,
    ReplayMessagingConsentUpdateCommand, ReplayMessagingSessionCommand,
    ReplayReceivedMessageCommand, ReplaySentMessageCommand, SentMessage,
    app_to_server_command_reply::Entry as ReplyEntry, channel_message,
};

use crate::clock::{from_timestamp, to_timestamp};
use crate::engine::{Selector, Tx, update_reply};
use crate::record::push_bounded;

use super::{MAX_PARTS, channel_of};

impl Tx<'_> {
    pub(super) fn replay_customer(
        &mut self,
        cust: &Option<CustomerNumber>,
        cn: &Option<MessagingChannelNumber>,
    ) -> Result<(String, CustomerNumber, MessagingChannelNumber), String> {
        let cust = cust.clone().ok_or("customer_number is required")?;
        let cn = cn.clone().ok_or("channel_number is required")?;
        if channel_of(&cn) == MessagingChannel::Unspecified {
            return Err(format!("unknown messaging channel {}", cn.channel));
        }
        let id = self.resolve(Selector::Number(cust.clone()), true)?;
        Ok((id, cust, cn))
    }

    pub(in crate::engine) fn replay_messaging_consent_update(
        &mut self,
        c: ReplayMessagingConsentUpdateCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let (id, cust, cn) = self.replay_customer(&c.customer_number, &c.channel_number)?;
            let update = match MessagingConsentUpdate::try_from(c.update) {
                Ok(u @ (MessagingConsentUpdate::Allow | MessagingConsentUpdate::Block)) => u,
                _ => return Err("update must be ALLOW or BLOCK".to_string()),
            };
            let at = c
                .updated_at
                .as_ref()
                .map(from_timestamp)
                .unwrap_or(self.now);
            self.set_consent(&id, &cust, &cn, update, at);
            Ok(id)
        })();
        update_reply(result, "consent update replayed")
    }

    pub(in crate::engine) fn replay_received_message(
        &mut self,
        c: ReplayReceivedMessageCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let (id, cust, cn) = self.replay_customer(&c.customer_number, &c.channel_number)?;
            if c.parts.len() > MAX_PARTS {
                return Err(format!("too many message parts (max {MAX_PARTS})"));
            }
            let app = self.app.to_owned();
            self.push_message(
                &id,
                ChannelMessage {
                    entry: Some(channel_message::Entry::Received(ReceivedMessage {
                        customer_number: Some(cust),
                        channel_number: Some(cn),
                        message_id: crate::ids::message_id(),
                        created_at: Some(c.received_at.unwrap_or_else(|| to_timestamp(self.now))),
                        session_id: c.provider_session_id,
                        in_reply_to: c.in_reply_to,
                        provider: c.provider,
                        app_id: Some(app),
                        parts: c.parts,
                        cost: c.cost,
                        provider_message_id: Some(c.provider_message_id),
                    })),
                },
            );
            Ok(id)
        })();
        update_reply(result, "received message replayed")
    }

    pub(in crate::engine) fn replay_sent_message(
        &mut self,
        c: ReplaySentMessageCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let (id, cust, cn) = self.replay_customer(&c.customer_number, &c.channel_number)?;
            let at = c.sent_at.unwrap_or_else(|| to_timestamp(self.now));
            let app = self.app.to_owned();
            self.push_message(
                &id,
                ChannelMessage {
                    entry: Some(channel_message::Entry::Sent(SentMessage {
                        customer_number: Some(cust),
                        channel_number: Some(cn),
                        message_id: crate::ids::message_id(),
                        created_at: Some(at),
                        session_id: c.provider_session_id,
                        in_reply_to: c.in_reply_to,
                        provider: c.provider,
                        app_id: Some(app),
                        updated_at: Some(at),
                        status: c.status,
                        reactions: vec![],
                        message: c.message,
                        cost: c.cost,
                        provider_message_id: Some(c.provider_message_id),
                    })),
                },
            );
            Ok(id)
        })();
        update_reply(result, "sent message replayed")
    }

    /// Applies `f` to the sent message with this provider message id.
    pub(super) fn with_sent_message(
        &mut self,
        id: &str,
        provider_message_id: &str,
        f: impl FnOnce(&mut SentMessage),
    ) -> Result<(), String> {
        let rec = self
            .customer_mut(id)
            .ok_or_else(|| format!("unknown customer id {id}"))?;
        let extra = rec.extra_mut();
        let found = extra
            .messages()
            .into_iter()
            .enumerate()
            .find_map(|(i, m)| match m.entry {
                Some(channel_message::Entry::Sent(s))
                    if s.provider_message_id.as_deref() == Some(provider_message_id)
                        || s.message_id == provider_message_id =>
                {
                    Some((i, s))
                }
                _ => None,
            });
        match found {
            Some((i, mut s)) => {
                f(&mut s);
                extra.set_message(
                    i,
                    &ChannelMessage {
                        entry: Some(channel_message::Entry::Sent(s)),
                    },
                );
                Ok(())
            }
            None => Err(format!("no sent message {provider_message_id}")),
        }
    }

    pub(in crate::engine) fn replay_message_status_update(
        &mut self,
        c: ReplayMessageStatusUpdateCommand,
    ) -> ReplyEntry {
        let result = self.replay_sent_message_update(
            &c.customer_number,
            &c.channel_number,
            &c.provider_message_id,
            c.updated_at,
            |s, at| {
                s.status = c.status;
                s.updated_at = Some(at);
                if c.cost.is_some() {
                    s.cost = c.cost;
                }
            },
        );
        update_reply(result, "message status replayed")
    }

    pub(in crate::engine) fn replay_message_reaction_update(
        &mut self,
        c: ReplayMessageReactionUpdateCommand,
    ) -> ReplyEntry {
        let result = self.replay_sent_message_update(
            &c.customer_number,
            &c.channel_number,
            &c.provider_message_id,
            c.updated_at,
            |s, at| {
                s.reactions.push(MessageReactionState {
                    created_at: Some(at),
                    reaction: c.reaction,
                });
            },
        );
        update_reply(result, "message reaction replayed")
    }

    /// Applies a replayed change to a sent message, stamped with `updated_at` (or now);
    /// returns the customer id.
    pub(super) fn replay_sent_message_update(
        &mut self,
        cust: &Option<CustomerNumber>,
        cn: &Option<MessagingChannelNumber>,
        provider_message_id: &str,
        updated_at: Option<elarian_proto::prost_types::Timestamp>,
        f: impl FnOnce(&mut SentMessage, elarian_proto::prost_types::Timestamp),
    ) -> Result<String, String> {
        let (id, _, _) = self.replay_customer(cust, cn)?;
        let at = updated_at.unwrap_or_else(|| to_timestamp(self.now));
        self.with_sent_message(&id, provider_message_id, |s| f(s, at))?;
        Ok(id)
    }

    pub(in crate::engine) fn replay_messaging_session(
        &mut self,
        c: ReplayMessagingSessionCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let (id, cust, cn) = self.replay_customer(&c.customer_number, &c.channel_number)?;
            let limit = self.cfg.history_limit;
            let app = self.app.to_owned();
            let mut trimmed = 0;
            if let Some(rec) = self.customer_mut(&id) {
                let session = CompleteMessagingSession {
                    customer_number: Some(cust),
                    channel_number: Some(cn),
                    session_id: crate::ids::session_id(),
                    started_at: c.started_at,
                    duration: c.duration,
                    app_ids: vec![app],
                    end_reason: c.end_reason,
                    cost: c.cost,
                    provider_session_id: Some(c.provider_session_id),
                };
                trimmed = push_bounded(&mut rec.extra_mut().packed_sessions, &session, limit);
            }
            self.trimmed(trimmed);
            Ok(id)
        })();
        update_reply(result, "messaging session replayed")
    }
}
