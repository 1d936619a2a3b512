//! Delivery: outbound messages and voice calls to the simulators, and inbound messages from
//! the simulators with the app's reply.

use elarian_proto::{
    ChannelMessage, CustomerNumber, MakeVoiceCallSimulatorNotification, MessageDeliveryStatus,
    MessageStatusNotification, MessagingChannel, MessagingChannelNumber, MessagingSessionEndReason,
    OutboundMessage, ReceiveMessageSimulatorCommand, ReceivedMessage, ReceivedMessageNotification,
    ReplyToMessageCommand, SendMessageCommand, SendMessageReply, SendMessageSimulatorNotification,
    SendMessageTagCommand, SentMessage, SimulatorToServerCommandReply,
    app_to_server_command_reply::Entry as ReplyEntry, channel_message,
    outbound_message_body::Entry as OutEntry,
    server_to_app_customer_notification::Entry as CustomerEntry,
    server_to_simulator_notification::Entry as SimEntry,
};

use crate::clock::to_timestamp;
use crate::engine::customers::validate_number;
use crate::engine::reminders::tag_reply;
use crate::engine::{Selector, Tx};

use super::{
    InboundExchange, MAX_PARTS, channel_of, ends_session, is_session_channel, provider_for,
    send_reply,
};

impl Tx<'_> {
    /// Sends one outbound message (or places a call) to a customer on a channel.
    pub(super) fn deliver_outbound(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        message: OutboundMessage,
        in_reply_to: Option<String>,
    ) -> SendMessageReply {
        let ch = channel_of(cn);
        let Some(body) = message.body.as_ref().and_then(|b| b.entry.as_ref()) else {
            return send_reply(
                MessageDeliveryStatus::InvalidRequest,
                "message body is required",
            );
        };
        if self.is_blocked(customer_id, cust, cn) {
            return SendMessageReply {
                customer_id: Some(customer_id.into()),
                ..send_reply(
                    MessageDeliveryStatus::NoConsent,
                    "the customer blocked this channel",
                )
            };
        }
        let is_voice = matches!(body, OutEntry::Voice(_));
        let is_ussd = matches!(body, OutEntry::Ussd(_));
        if ch == MessagingChannel::Ussd || is_ussd {
            return send_reply(
                MessageDeliveryStatus::NotSupported,
                "USSD menus are sent as the reply to a USSD session notification",
            );
        }
        if (ch == MessagingChannel::Voice) != is_voice {
            return send_reply(
                MessageDeliveryStatus::NotSupported,
                "voice dialplans go on VOICE channels, and only there",
            );
        }
        let message_id = crate::ids::message_id();
        let org_id = self.org_id();
        let mut session_id = None;
        if is_voice {
            let sid =
                self.start_or_renew_session(customer_id, cust, cn, Some(crate::ids::session_id()));
            self.notify_simulator(SimEntry::MakeVoiceCall(
                MakeVoiceCallSimulatorNotification {
                    org_id,
                    customer_id: customer_id.into(),
                    session_id: sid.clone(),
                    customer_number: Some(cust.clone()),
                    channel_number: Some(cn.clone()),
                },
            ));
            session_id = Some(sid);
        } else {
            self.notify_simulator(SimEntry::SendMessage(SendMessageSimulatorNotification {
                org_id,
                customer_id: customer_id.into(),
                message_id: message_id.clone(),
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                message: Some(message.clone()),
            }));
        }
        // A placed call is answered `SESSION_INITIATED`, as the service does (the published
        // clients' users test for it); the status notification repeats it for the stored message.
        let (status, delivered) = if is_voice {
            (
                MessageDeliveryStatus::SessionInitiated,
                MessageDeliveryStatus::SessionInitiated,
            )
        } else {
            (
                MessageDeliveryStatus::Sent,
                MessageDeliveryStatus::Delivered,
            )
        };
        // The emulated network delivers at once: the stored message already carries the final
        // status, and the app gets the status notification after the reply.
        self.push_message(
            customer_id,
            ChannelMessage {
                entry: Some(channel_message::Entry::Sent(SentMessage {
                    customer_number: Some(cust.clone()),
                    channel_number: Some(cn.clone()),
                    message_id: message_id.clone(),
                    created_at: Some(to_timestamp(self.now)),
                    session_id: session_id.clone(),
                    in_reply_to,
                    provider: 0,
                    app_id: Some(self.app.to_owned()),
                    updated_at: Some(to_timestamp(self.now)),
                    status: delivered as i32,
                    reactions: vec![],
                    message: Some(message),
                    cost: None,
                    provider_message_id: None,
                })),
            },
        );
        let app = self.app.to_owned();
        self.notify_customer(
            &app,
            customer_id,
            CustomerEntry::MessageStatus(MessageStatusNotification {
                message_id: message_id.clone(),
                status: delivered as i32,
            }),
            false,
        );
        SendMessageReply {
            status: status as i32,
            description: "message sent".into(),
            message_id: Some(message_id),
            session_id,
            customer_id: Some(customer_id.into()),
        }
    }

    pub(in crate::engine) fn send_message_cmd(&mut self, c: SendMessageCommand) -> ReplyEntry {
        ReplyEntry::SendMessage((|| {
            let cn = match self.check_channel(&c.channel_number) {
                Ok(cn) => cn,
                Err(e) => return send_reply(MessageDeliveryStatus::InvalidChannelNumber, &e),
            };
            let Some(cust) = c.customer_number else {
                return send_reply(
                    MessageDeliveryStatus::InvalidRequest,
                    "customer_number is required",
                );
            };
            let Some(message) = c.message else {
                return send_reply(MessageDeliveryStatus::InvalidRequest, "message is required");
            };
            let id = match self.resolve(Selector::Number(cust.clone()), true) {
                Ok(id) => id,
                Err(e) => return send_reply(MessageDeliveryStatus::InvalidRequest, &e),
            };
            self.deliver_outbound(&id, &cust, &cn, message, None)
        })())
    }

    /// Sends to the customers tagged when the command runs (a message is a one-off: customers
    /// tagged later do not get it, unlike a reminder by tag).
    pub(in crate::engine) fn send_message_tag(&mut self, c: SendMessageTagCommand) -> ReplyEntry {
        let result = (|| {
            let cn = self.check_channel(&c.channel_number)?;
            let tag = c
                .tag
                .filter(|t| !t.key.is_empty())
                .ok_or("a tag is required")?;
            let message = c.message.ok_or("message is required")?;
            let provider = provider_for(channel_of(&cn)) as i32;
            let work_id = crate::ids::work_id();
            for id in self.org().tagged(&tag, self.now) {
                let number = self.org().customers.get(&id).and_then(|r| {
                    r.numbers
                        .iter()
                        .find(|n| crate::state::normalized_provider(n.provider) == provider)
                        .cloned()
                });
                if let Some(n) = number {
                    self.deliver_outbound(&id, &n, &cn, message.clone(), None);
                }
            }
            Ok(work_id)
        })();
        tag_reply(result, "message sent to tagged customers")
    }

    pub(in crate::engine) fn reply_to_message(&mut self, c: ReplyToMessageCommand) -> ReplyEntry {
        ReplyEntry::SendMessage((|| {
            let id = match self.resolve(Selector::Id(c.customer_id.clone()), false) {
                Ok(id) => id,
                Err(e) => return send_reply(MessageDeliveryStatus::InvalidCustomerId, &e),
            };
            let received = self.org().customers.get(&id).and_then(|r| {
                let e = r.extra.as_ref()?;
                e.messages().into_iter().find_map(|m| match m.entry {
                    Some(channel_message::Entry::Received(r)) if r.message_id == c.message_id => {
                        Some(r)
                    }
                    _ => None,
                })
            });
            let Some(received) = received else {
                return send_reply(
                    MessageDeliveryStatus::InvalidReplyToMessageId,
                    &format!("no received message {}", c.message_id),
                );
            };
            let (Some(cust), Some(cn)) = (received.customer_number, received.channel_number) else {
                return send_reply(
                    MessageDeliveryStatus::InvalidReplyToMessageId,
                    "message has no channel",
                );
            };
            let Some(message) = c.message else {
                return send_reply(MessageDeliveryStatus::InvalidRequest, "message is required");
            };
            self.deliver_outbound(&id, &cust, &cn, message, Some(c.message_id))
        })())
    }

    /// A message from a simulated customer: notifies the app, which is awaited for its reply.
    pub(in crate::engine) fn receive_message(
        &mut self,
        c: ReceiveMessageSimulatorCommand,
    ) -> Result<(usize, InboundExchange), String> {
        let cn = self.check_channel(&c.channel_number)?;
        if c.parts.len() > MAX_PARTS {
            return Err(format!("too many message parts (max {MAX_PARTS})"));
        }
        let ch = channel_of(&cn);
        let cust = CustomerNumber {
            provider: provider_for(ch) as i32,
            number: c.customer_number.clone(),
            partition: None,
        };
        validate_number(&cust)?;
        let id = self.resolve(Selector::Number(cust.clone()), true)?;
        let message_id = crate::ids::message_id();
        let session_id = if is_session_channel(ch) {
            Some(self.start_or_renew_session(&id, &cust, &cn, c.session_id.clone()))
        } else {
            None
        };
        self.push_message(
            &id,
            ChannelMessage {
                entry: Some(channel_message::Entry::Received(ReceivedMessage {
                    customer_number: Some(cust.clone()),
                    channel_number: Some(cn.clone()),
                    message_id: message_id.clone(),
                    created_at: Some(to_timestamp(self.now)),
                    session_id: session_id.clone(),
                    in_reply_to: None,
                    provider: 0,
                    app_id: Some(self.app.to_owned()),
                    parts: c.parts.clone(),
                    cost: c.cost.clone(),
                    provider_message_id: None,
                })),
            },
        );
        let app = self.app.to_owned();
        let idx = self.notify_customer(
            &app,
            &id,
            CustomerEntry::ReceivedMessage(ReceivedMessageNotification {
                message_id: message_id.clone(),
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                parts: c.parts.clone(),
                session_id: session_id.clone(),
                in_reply_to: None,
            }),
            true,
        );
        let ends = session_id.is_some() && c.parts.iter().any(ends_session);
        if ends {
            self.end_session(&id, &cust, &cn, MessagingSessionEndReason::NormalClearing);
        }
        Ok((
            idx,
            InboundExchange {
                customer_id: id,
                customer_number: cust,
                channel_number: cn,
                message_id,
                session_id,
                session_ended: ends,
            },
        ))
    }

    /// Records the app's reply to a received message; a terminal USSD menu ends the session.
    pub(in crate::engine) fn apply_inbound_reply(
        &mut self,
        ex: &InboundExchange,
        message: Option<OutboundMessage>,
    ) -> SimulatorToServerCommandReply {
        let Some(message) = message.filter(|m| m.body.as_ref().is_some_and(|b| b.entry.is_some()))
        else {
            return crate::engine::sim_reply(true, "the app sent no reply message");
        };
        if !self.org().customers.contains_key(&ex.customer_id) {
            return crate::engine::sim_reply(false, "the customer was deleted");
        }
        let terminal = matches!(
            message.body.as_ref().and_then(|b| b.entry.as_ref()),
            Some(OutEntry::Ussd(u)) if u.is_terminal
        );
        self.push_message(
            &ex.customer_id,
            ChannelMessage {
                entry: Some(channel_message::Entry::Sent(SentMessage {
                    customer_number: Some(ex.customer_number.clone()),
                    channel_number: Some(ex.channel_number.clone()),
                    message_id: crate::ids::message_id(),
                    created_at: Some(to_timestamp(self.now)),
                    session_id: ex.session_id.clone(),
                    in_reply_to: Some(ex.message_id.clone()),
                    provider: 0,
                    app_id: Some(self.app.to_owned()),
                    updated_at: Some(to_timestamp(self.now)),
                    status: MessageDeliveryStatus::Delivered as i32,
                    reactions: vec![],
                    message: Some(message.clone()),
                    cost: None,
                    provider_message_id: None,
                })),
            },
        );
        if terminal && !ex.session_ended {
            self.end_session(
                &ex.customer_id,
                &ex.customer_number,
                &ex.channel_number,
                MessagingSessionEndReason::NormalClearing,
            );
        }
        SimulatorToServerCommandReply {
            status: true,
            description: "the app replied".into(),
            message: Some(message),
        }
    }
}
