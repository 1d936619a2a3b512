//! Finding a customer's number in its state, for commands whose wire form addresses the customer
//! by number (messages, voice calls, activity, consent) when the customer is only known by id.
//!
//! Notifications such as reminders and status updates carry the customer's id but no number;
//! the published JavaScript client reads the state before every such handler. The SDK instead
//! reads it only when a command needs the number, once per customer, and picks the number that
//! suits the channel.

use crate::models::{CustomerNumber, CustomerNumberProvider, CustomerState, MessagingChannel};

/// Every distinct, non-empty customer number in `state` (see
/// [`CustomerState::customer_numbers`]), owned.
pub(crate) fn numbers_in_state(state: &CustomerState) -> Vec<CustomerNumber> {
    state.customer_numbers().into_iter().cloned().collect()
}

/// The kind of customer number a channel delivers to; `None` when any kind will do.
pub(crate) fn provider_for(channel: MessagingChannel) -> Option<CustomerNumberProvider> {
    match channel {
        MessagingChannel::Sms
        | MessagingChannel::Voice
        | MessagingChannel::Ussd
        | MessagingChannel::Whatsapp => Some(CustomerNumberProvider::Cellular),
        MessagingChannel::Telegram => Some(CustomerNumberProvider::Telegram),
        MessagingChannel::FbMessenger => Some(CustomerNumberProvider::Facebook),
        MessagingChannel::Email => Some(CustomerNumberProvider::Email),
        MessagingChannel::Unspecified | MessagingChannel::Unknown(_) => None,
    }
}

/// The number to use on `channel`: the first of the channel's kind, else the first of all (the
/// server then judges whether the channel can reach it, as with the JavaScript client).
pub(crate) fn pick(
    numbers: &[CustomerNumber],
    channel: Option<MessagingChannel>,
) -> Option<&CustomerNumber> {
    let preferred = channel.and_then(provider_for);
    preferred
        .and_then(|provider| numbers.iter().find(|n| n.provider == provider))
        .or_else(|| numbers.first())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{
        ActivitySession, ActivityState, ChannelMessage, MessagingChannelNumber,
        MessagingChannelState, MessagingState, PaymentState, ReceivedMessage,
    };

    fn channel_state(number: CustomerNumber) -> MessagingChannelState {
        MessagingChannelState::Active {
            customer_number: Some(number),
            channel_number: Some(MessagingChannelNumber::new(
                "83044",
                MessagingChannel::Telegram,
            )),
            reply_token: None,
            allowed_at: None,
        }
    }

    fn state() -> CustomerState {
        CustomerState {
            customer_id: "el_cst_1".into(),
            messaging: MessagingState {
                channels: vec![channel_state(CustomerNumber::telegram("@ann"))],
                messages: vec![ChannelMessage::Received(ReceivedMessage {
                    customer_number: Some(CustomerNumber::email("ann@example.com")),
                    ..Default::default()
                })],
                ..Default::default()
            },
            payment: PaymentState {
                customer_numbers: vec![
                    CustomerNumber::cellular("+254700000001"),
                    // Duplicates and blanks are dropped.
                    CustomerNumber::telegram("@ann"),
                    CustomerNumber::cellular(" "),
                ],
                ..Default::default()
            },
            activity: ActivityState {
                customer_numbers: vec![CustomerNumber::app("ann-web")],
                sessions: vec![ActivitySession {
                    customer_number: Some(CustomerNumber::cellular("+254700000001")),
                    ..Default::default()
                }],
            },
            ..Default::default()
        }
    }

    #[test]
    fn numbers_are_collected_in_order_without_duplicates_or_blanks() {
        assert_eq!(
            numbers_in_state(&state()),
            vec![
                CustomerNumber::telegram("@ann"),
                CustomerNumber::cellular("+254700000001"),
                CustomerNumber::app("ann-web"),
                CustomerNumber::email("ann@example.com"),
            ]
        );
        assert!(numbers_in_state(&CustomerState::default()).is_empty());
    }

    #[test]
    fn the_channels_kind_of_number_wins_over_the_first() {
        let numbers = numbers_in_state(&state());
        let pick_for = |channel| pick(&numbers, Some(channel)).map(|n| n.number.as_str());
        for channel in [
            MessagingChannel::Sms,
            MessagingChannel::Voice,
            MessagingChannel::Ussd,
            MessagingChannel::Whatsapp,
        ] {
            assert_eq!(pick_for(channel), Some("+254700000001"), "{channel:?}");
        }
        assert_eq!(pick_for(MessagingChannel::Telegram), Some("@ann"));
        assert_eq!(pick_for(MessagingChannel::Email), Some("ann@example.com"));
    }

    #[test]
    fn without_a_match_or_a_channel_the_first_number_is_used() {
        let numbers = numbers_in_state(&state());
        // No Messenger account: fall back to the first number, like the JavaScript client.
        assert_eq!(
            pick(&numbers, Some(MessagingChannel::FbMessenger)),
            Some(&CustomerNumber::telegram("@ann"))
        );
        assert_eq!(
            pick(&numbers, Some(MessagingChannel::Unknown(42))),
            Some(&CustomerNumber::telegram("@ann"))
        );
        assert_eq!(
            pick(&numbers, None),
            Some(&CustomerNumber::telegram("@ann"))
        );
        assert_eq!(pick(&[], Some(MessagingChannel::Sms)), None);
    }
}
