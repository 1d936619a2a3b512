//! Messaging: outbound messages and voice calls to the simulators, consent, inbound messages
//! from the simulators with the app's reply, messaging sessions, and the messaging replays.

use elarian_proto::{
    ActiveMessagingChannelState, BlockedMessagingChannelState, ChannelMessage,
    CompleteMessagingSession, CustomerNumber, CustomerNumberProvider,
    InSessionMessagingChannelState, InboundMessageBody, MakeVoiceCallSimulatorNotification,
    MessageDeliveryStatus, MessageReactionState, MessageStatusNotification, MessagingChannel,
    MessagingChannelNumber, MessagingChannelState, MessagingConsentUpdate,
    MessagingConsentUpdateNotification, MessagingConsentUpdateStatus, MessagingSessionEndReason,
    MessagingSessionEndedNotification, MessagingSessionRenewedNotification,
    MessagingSessionStartedNotification, OutboundMessage, ReceiveMessageSimulatorCommand,
    ReceivedMessage, ReceivedMessageNotification, ReplayMessageReactionUpdateCommand,
    ReplayMessageStatusUpdateCommand, ReplayMessagingConsentUpdateCommand,
    ReplayMessagingSessionCommand, ReplayReceivedMessageCommand, ReplaySentMessageCommand,
    ReplyToMessageCommand, SendMessageCommand, SendMessageReply, SendMessageSimulatorNotification,
    SendMessageTagCommand, SentMessage, SimulatorToServerCommandReply,
    UpdateMessagingConsentCommand, UpdateMessagingConsentReply, UssdSessionStatus, VoiceCallStatus,
    app_to_server_command_reply::Entry as ReplyEntry, channel_message,
    inbound_message_body::Entry as InEntry, messaging_channel_state::State as ChState,
    outbound_message_body::Entry as OutEntry,
    server_to_app_customer_notification::Entry as CustomerEntry,
    server_to_simulator_notification::Entry as SimEntry,
};

use super::customers::validate_number;
use super::reminders::tag_reply;
use super::{Selector, Tx, update_reply};
use crate::clock::{from_timestamp, to_duration, to_timestamp};
use crate::state::{NumberKey, TimerKind};

/// Parts one inbound message may carry.
const MAX_PARTS: usize = 64;

/// What the engine needs to finish a received message once the app replied.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundExchange {
    /// The customer who sent the message.
    pub customer_id: String,
    /// The customer's number.
    pub customer_number: CustomerNumber,
    /// The channel number it arrived on.
    pub channel_number: MessagingChannelNumber,
    /// The id given to the received message.
    pub message_id: String,
    /// The messaging session, for session channels.
    pub session_id: Option<String>,
    /// True when the inbound message itself ended the session.
    pub session_ended: bool,
}

fn channel_of(cn: &MessagingChannelNumber) -> MessagingChannel {
    MessagingChannel::try_from(cn.channel).unwrap_or(MessagingChannel::Unspecified)
}

/// Channels whose interactions happen in sessions.
fn is_session_channel(ch: MessagingChannel) -> bool {
    matches!(
        ch,
        MessagingChannel::Ussd
            | MessagingChannel::Voice
            | MessagingChannel::Whatsapp
            | MessagingChannel::Telegram
            | MessagingChannel::FbMessenger
    )
}

/// The kind of customer number a channel reaches.
pub(crate) fn provider_for(ch: MessagingChannel) -> CustomerNumberProvider {
    match ch {
        MessagingChannel::Telegram => CustomerNumberProvider::Telegram,
        MessagingChannel::FbMessenger => CustomerNumberProvider::Facebook,
        MessagingChannel::Email => CustomerNumberProvider::Email,
        _ => CustomerNumberProvider::Cellular,
    }
}

fn send_reply(status: MessageDeliveryStatus, description: &str) -> SendMessageReply {
    SendMessageReply {
        status: status as i32,
        description: description.into(),
        message_id: None,
        session_id: None,
        customer_id: None,
    }
}

fn state_keys(
    s: &MessagingChannelState,
) -> (Option<&CustomerNumber>, Option<&MessagingChannelNumber>) {
    match &s.state {
        Some(ChState::Blocked(b)) => (b.customer_number.as_ref(), b.channel_number.as_ref()),
        Some(ChState::Active(a)) => (a.customer_number.as_ref(), a.channel_number.as_ref()),
        Some(ChState::InSession(i)) => (i.customer_number.as_ref(), i.channel_number.as_ref()),
        None => (None, None),
    }
}

impl Tx<'_> {
    /// Checks a channel number is one of the org's numbers for its channel.
    fn check_channel(
        &self,
        cn: &Option<MessagingChannelNumber>,
    ) -> Result<MessagingChannelNumber, String> {
        let cn = cn.clone().ok_or("channel_number is required")?;
        let ch = channel_of(&cn);
        if ch == MessagingChannel::Unspecified {
            return Err(format!("unknown messaging channel {}", cn.channel));
        }
        if !self
            .org()
            .config
            .channels
            .messaging_numbers(ch)
            .iter()
            .any(|n| n == &cn.number)
        {
            return Err(format!(
                "{} is not a {:?} number of this organization",
                cn.number, ch
            ));
        }
        Ok(cn)
    }

    fn channel_state_index(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> Option<usize> {
        let key = NumberKey::of(cust);
        self.org()
            .customers
            .get(customer_id)?
            .extra
            .as_ref()?
            .channels
            .iter()
            .position(|s| {
                let (c, n) = state_keys(s);
                c.map(NumberKey::of).as_ref() == Some(&key) && n == Some(cn)
            })
    }

    fn channel_state(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> Option<MessagingChannelState> {
        let i = self.channel_state_index(customer_id, cust, cn)?;
        self.org()
            .customers
            .get(customer_id)?
            .extra
            .as_ref()?
            .channels
            .get(i)
            .cloned()
    }

    fn set_channel_state(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        state: ChState,
    ) {
        let idx = self.channel_state_index(customer_id, cust, cn);
        if let Some(rec) = self.customer_mut(customer_id) {
            let channels = &mut rec.extra_mut().channels;
            let value = MessagingChannelState { state: Some(state) };
            match idx {
                Some(i) => channels[i] = value,
                None => channels.push(value),
            }
        }
    }

    fn is_blocked(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> bool {
        matches!(
            self.channel_state(customer_id, cust, cn)
                .and_then(|s| s.state),
            Some(ChState::Blocked(_))
        )
    }

    /// Sets consent on a channel; allowing keeps a running session.
    fn set_consent(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        update: MessagingConsentUpdate,
        at: i64,
    ) {
        let current = self
            .channel_state(customer_id, cust, cn)
            .and_then(|s| s.state);
        let state = match update {
            MessagingConsentUpdate::Block => ChState::Blocked(BlockedMessagingChannelState {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                reply_token: None,
                blocked_at: Some(to_timestamp(at)),
            }),
            _ => match current {
                Some(ChState::InSession(mut s)) => {
                    s.allowed_at = Some(to_timestamp(at));
                    ChState::InSession(s)
                }
                _ => ChState::Active(ActiveMessagingChannelState {
                    customer_number: Some(cust.clone()),
                    channel_number: Some(cn.clone()),
                    reply_token: None,
                    allowed_at: Some(to_timestamp(at)),
                }),
            },
        };
        self.set_channel_state(customer_id, cust, cn, state);
    }

    /// The running, unexpired session on a channel.
    fn running_session(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> Option<InSessionMessagingChannelState> {
        match self.channel_state(customer_id, cust, cn)?.state? {
            ChState::InSession(s)
                if s.expires_at
                    .as_ref()
                    .is_none_or(|e| from_timestamp(e) > self.now) =>
            {
                Some(s)
            }
            _ => None,
        }
    }

    /// Starts a session (ending another running one) or renews the running one.
    fn start_or_renew_session(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        requested: Option<String>,
    ) -> String {
        let expires = self.now + (self.cfg.session_timeout_secs as i64) * 1000;
        let app = self.app.to_owned();
        if let Some(mut s) = self.running_session(customer_id, cust, cn) {
            if requested.as_ref().is_none_or(|r| r == &s.session_id) {
                s.expires_at = Some(to_timestamp(expires));
                if !s.app_ids.contains(&app) {
                    s.app_ids.push(app.clone());
                }
                return self.keep_session(&app, customer_id, cust, cn, s, expires, true);
            }
            self.end_session(
                customer_id,
                cust,
                cn,
                MessagingSessionEndReason::NormalClearing,
            );
        }
        let session_id = requested
            .filter(|s| !s.is_empty())
            .unwrap_or_else(crate::ids::session_id);
        let allowed_at = match self
            .channel_state(customer_id, cust, cn)
            .and_then(|s| s.state)
        {
            Some(ChState::Active(a)) => a.allowed_at,
            _ => Some(to_timestamp(self.now)),
        };
        let state = InSessionMessagingChannelState {
            customer_number: Some(cust.clone()),
            channel_number: Some(cn.clone()),
            reply_token: None,
            allowed_at,
            session_id: session_id.clone(),
            started_at: Some(to_timestamp(self.now)),
            expires_at: Some(to_timestamp(expires)),
            app_ids: vec![app.clone()],
            provider_session_id: None,
        };
        self.keep_session(&app, customer_id, cust, cn, state, expires, false)
    }

    /// Stores a running session, arms its expiry timer and tells the app it started or was
    /// renewed; returns its id.
    #[allow(clippy::too_many_arguments)]
    fn keep_session(
        &mut self,
        app: &str,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        state: InSessionMessagingChannelState,
        expires: i64,
        renewed: bool,
    ) -> String {
        let session_id = state.session_id.clone();
        self.set_channel_state(customer_id, cust, cn, ChState::InSession(state));
        self.st
            .schedule(expires, self.org, customer_id, TimerKind::SessionExpiry);
        let entry = if renewed {
            CustomerEntry::MessagingSessionRenewed(MessagingSessionRenewedNotification {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                session_id: session_id.clone(),
                expires_at: Some(to_timestamp(expires)),
            })
        } else {
            CustomerEntry::MessagingSessionStarted(MessagingSessionStartedNotification {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                session_id: session_id.clone(),
                expires_at: Some(to_timestamp(expires)),
            })
        };
        self.notify_customer(app, customer_id, entry, false);
        session_id
    }

    /// Ends the session on a channel, if one runs, and tells its apps.
    fn end_session(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        reason: MessagingSessionEndReason,
    ) {
        let Some(ChState::InSession(s)) = self
            .channel_state(customer_id, cust, cn)
            .and_then(|s| s.state)
        else {
            return;
        };
        let started = s
            .started_at
            .as_ref()
            .map(from_timestamp)
            .unwrap_or(self.now);
        let duration = to_duration((self.now - started).max(0));
        let limit = self.cfg.history_limit;
        self.set_channel_state(
            customer_id,
            cust,
            cn,
            ChState::Active(ActiveMessagingChannelState {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                reply_token: None,
                allowed_at: s.allowed_at,
            }),
        );
        if let Some(rec) = self.customer_mut(customer_id) {
            let e = rec.extra_mut();
            e.sessions.push(CompleteMessagingSession {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                session_id: s.session_id.clone(),
                started_at: s.started_at,
                duration: Some(duration),
                app_ids: s.app_ids.clone(),
                end_reason: reason as i32,
                cost: None,
                provider_session_id: s.provider_session_id.clone(),
            });
            super::trim_front(&mut e.sessions, limit);
        }
        for app in &s.app_ids {
            self.notify_customer(
                app,
                customer_id,
                CustomerEntry::MessagingSessionEnded(MessagingSessionEndedNotification {
                    customer_number: Some(cust.clone()),
                    channel_number: Some(cn.clone()),
                    session_id: s.session_id.clone(),
                    duration: Some(duration),
                    reason: reason as i32,
                }),
                false,
            );
        }
    }

    /// Ends the customer's sessions whose expiry passed (timer callback).
    pub(super) fn expire_sessions(&mut self, customer_id: &str) {
        let now = self.now;
        let expired: Vec<(CustomerNumber, MessagingChannelNumber)> = self
            .org()
            .customers
            .get(customer_id)
            .and_then(|c| c.extra.as_ref())
            .map(|e| {
                e.channels
                    .iter()
                    .filter_map(|s| match &s.state {
                        Some(ChState::InSession(i))
                            if i.expires_at
                                .as_ref()
                                .is_some_and(|x| from_timestamp(x) <= now) =>
                        {
                            Some((i.customer_number.clone()?, i.channel_number.clone()?))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (cust, cn) in expired {
            self.end_session(
                customer_id,
                &cust,
                &cn,
                MessagingSessionEndReason::Inactivity,
            );
        }
    }

    /// Sends one outbound message (or places a call) to a customer on a channel.
    fn deliver_outbound(
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

    pub(super) fn send_message_cmd(&mut self, c: SendMessageCommand) -> ReplyEntry {
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
    pub(super) fn send_message_tag(&mut self, c: SendMessageTagCommand) -> ReplyEntry {
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

    pub(super) fn reply_to_message(&mut self, c: ReplyToMessageCommand) -> ReplyEntry {
        ReplyEntry::SendMessage((|| {
            let id = match self.resolve(Selector::Id(c.customer_id.clone()), false) {
                Ok(id) => id,
                Err(e) => return send_reply(MessageDeliveryStatus::InvalidCustomerId, &e),
            };
            let received = self
                .org()
                .customers
                .get(&id)
                .and_then(|r| r.extra.as_ref())
                .and_then(|e| {
                    e.messages.iter().find_map(|m| match &m.entry {
                        Some(channel_message::Entry::Received(r))
                            if r.message_id == c.message_id =>
                        {
                            Some(r.clone())
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

    pub(super) fn update_messaging_consent(
        &mut self,
        c: UpdateMessagingConsentCommand,
    ) -> ReplyEntry {
        let reply =
            |status: MessagingConsentUpdateStatus, description: &str, id: Option<String>| {
                ReplyEntry::UpdateMessagingConsent(UpdateMessagingConsentReply {
                    status: status as i32,
                    description: description.into(),
                    customer_id: id,
                })
            };
        let cn = match self.check_channel(&c.channel_number) {
            Ok(cn) => cn,
            Err(e) => return reply(MessagingConsentUpdateStatus::InvalidChannelNumber, &e, None),
        };
        let update = match MessagingConsentUpdate::try_from(c.update) {
            Ok(u @ (MessagingConsentUpdate::Allow | MessagingConsentUpdate::Block)) => u,
            _ => {
                return reply(
                    MessagingConsentUpdateStatus::ApplicationError,
                    "update must be ALLOW or BLOCK",
                    None,
                );
            }
        };
        let Some(cust) = c.customer_number else {
            return reply(
                MessagingConsentUpdateStatus::ApplicationError,
                "customer_number is required",
                None,
            );
        };
        let id = match self.resolve(Selector::Number(cust.clone()), true) {
            Ok(id) => id,
            Err(e) => return reply(MessagingConsentUpdateStatus::ApplicationError, &e, None),
        };
        self.set_consent(&id, &cust, &cn, update, self.now);
        let app = self.app.to_owned();
        self.notify_customer(
            &app,
            &id,
            CustomerEntry::MessagingConsentUpdate(MessagingConsentUpdateNotification {
                customer_number: Some(cust),
                channel_number: Some(cn),
                update: update as i32,
                status: MessagingConsentUpdateStatus::Completed as i32,
            }),
            false,
        );
        reply(
            MessagingConsentUpdateStatus::Completed,
            "consent updated",
            Some(id),
        )
    }

    /// A message from a simulated customer: notifies the app, which is awaited for its reply.
    pub(super) fn receive_message(
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
    pub(super) fn apply_inbound_reply(
        &mut self,
        ex: &InboundExchange,
        message: Option<OutboundMessage>,
    ) -> SimulatorToServerCommandReply {
        let Some(message) = message.filter(|m| m.body.as_ref().is_some_and(|b| b.entry.is_some()))
        else {
            return super::sim_reply(true, "the app sent no reply message");
        };
        if !self.org().customers.contains_key(&ex.customer_id) {
            return super::sim_reply(false, "the customer was deleted");
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

    fn replay_customer(
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

    pub(super) fn replay_messaging_consent_update(
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

    pub(super) fn replay_received_message(
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

    pub(super) fn replay_sent_message(&mut self, c: ReplaySentMessageCommand) -> ReplyEntry {
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
    fn with_sent_message(
        &mut self,
        id: &str,
        provider_message_id: &str,
        f: impl FnOnce(&mut SentMessage),
    ) -> Result<(), String> {
        let rec = self
            .customer_mut(id)
            .ok_or_else(|| format!("unknown customer id {id}"))?;
        let sent = rec
            .extra_mut()
            .messages
            .iter_mut()
            .find_map(|m| match &mut m.entry {
                Some(channel_message::Entry::Sent(s))
                    if s.provider_message_id.as_deref() == Some(provider_message_id)
                        || s.message_id == provider_message_id =>
                {
                    Some(s)
                }
                _ => None,
            });
        match sent {
            Some(s) => {
                f(s);
                Ok(())
            }
            None => Err(format!("no sent message {provider_message_id}")),
        }
    }

    pub(super) fn replay_message_status_update(
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

    pub(super) fn replay_message_reaction_update(
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
    fn replay_sent_message_update(
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

    pub(super) fn replay_messaging_session(
        &mut self,
        c: ReplayMessagingSessionCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let (id, cust, cn) = self.replay_customer(&c.customer_number, &c.channel_number)?;
            let limit = self.cfg.history_limit;
            let app = self.app.to_owned();
            if let Some(rec) = self.customer_mut(&id) {
                let e = rec.extra_mut();
                e.sessions.push(CompleteMessagingSession {
                    customer_number: Some(cust),
                    channel_number: Some(cn),
                    session_id: crate::ids::session_id(),
                    started_at: c.started_at,
                    duration: c.duration,
                    app_ids: vec![app],
                    end_reason: c.end_reason,
                    cost: c.cost,
                    provider_session_id: Some(c.provider_session_id),
                });
                super::trim_front(&mut e.sessions, limit);
            }
            Ok(id)
        })();
        update_reply(result, "messaging session replayed")
    }
}

/// True for inbound parts that close their session (a finished USSD dialog or a hung-up call).
fn ends_session(part: &InboundMessageBody) -> bool {
    match &part.entry {
        Some(InEntry::Ussd(u)) => matches!(
            UssdSessionStatus::try_from(u.status),
            Ok(UssdSessionStatus::Completed
                | UssdSessionStatus::Incomplete
                | UssdSessionStatus::AppError)
        ),
        Some(InEntry::Voice(v)) => v.status >= VoiceCallStatus::Completed as i32,
        _ => false,
    }
}
