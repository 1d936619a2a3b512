//! Messaging: outbound messages and voice calls to the simulators, consent, inbound messages
//! from the simulators with the app's reply, messaging sessions, and the messaging replays.

mod consent;
mod delivery;
mod replays;
mod sessions;

use sessions::ends_session;

use elarian_proto::{
    CustomerNumber, CustomerNumberProvider, MessageDeliveryStatus, MessagingChannel,
    MessagingChannelNumber, MessagingChannelState, SendMessageReply,
    messaging_channel_state::State as ChState,
};

use super::Tx;
use crate::state::NumberKey;

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
    pub(super) fn check_channel(
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

    /// The state of a (customer number, channel number) pair and its position in the
    /// customer's channel states.
    fn channel_entry(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> Option<(usize, MessagingChannelState)> {
        let key = NumberKey::of(cust);
        self.org()
            .customers
            .get(customer_id)?
            .extra
            .as_ref()?
            .channels()
            .into_iter()
            .enumerate()
            .find(|(_, s)| {
                let (c, n) = state_keys(s);
                c.map(NumberKey::of).as_ref() == Some(&key) && n == Some(cn)
            })
    }

    pub(super) fn channel_state(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> Option<MessagingChannelState> {
        self.channel_entry(customer_id, cust, cn).map(|(_, s)| s)
    }

    pub(super) fn set_channel_state(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        state: ChState,
    ) {
        let idx = self.channel_entry(customer_id, cust, cn).map(|(i, _)| i);
        if let Some(rec) = self.customer_mut(customer_id) {
            let value = MessagingChannelState { state: Some(state) };
            rec.extra_mut().set_channel(idx, &value);
        }
    }
}
