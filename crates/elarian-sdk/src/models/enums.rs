//! Enumerations of the wire (channels, providers, statuses, reasons).
//!
//! Every enum has an `Unknown(i32)` variant: a newer server may send a value this version of the SDK
//! does not know, and it must survive a round trip instead of failing the whole message.

use elarian_proto as proto;
use serde::{Deserialize, Serialize};

/// Declares a model enum mirroring a proto enum, with lossless conversions to and from the wire `i32`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident => $proto:ident {
            $( $(#[$vmeta:meta])* $variant:ident ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the SDK does not know (kept as sent on the wire).
            Unknown(i32),
        }

        impl $name {
            /// Every named variant (without `Unknown`).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }

        impl From<i32> for $name {
            fn from(value: i32) -> Self {
                match proto::$proto::try_from(value) {
                    $( Ok(proto::$proto::$variant) => $name::$variant, )+
                    Err(_) => $name::Unknown(value),
                }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> i32 {
                match value {
                    $( $name::$variant => proto::$proto::$variant as i32, )+
                    $name::Unknown(raw) => raw,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::from(0)
            }
        }
    };
}

wire_enum! {
    /// Who provides a customer's number (a phone line, a Telegram account, an email address, …).
    CustomerNumberProvider => CustomerNumberProvider {
        /// Not set.
        Unspecified,
        /// Facebook Messenger.
        Facebook,
        /// A mobile phone line.
        Cellular,
        /// Telegram.
        Telegram,
        /// An app or web identity.
        App,
        /// An email address.
        Email,
    }
}

wire_enum! {
    /// The provider that carried a message for a channel number.
    ChannelNumberProvider => ChannelNumberProvider {
        /// Not set.
        Unspecified,
        /// Africa's Talking.
        At,
        /// Twilio.
        Twilio,
        /// Mailgun.
        Mailgun,
        /// Facebook.
        Facebook,
        /// Telegram.
        Telegram,
    }
}

wire_enum! {
    /// Kind of media in a media message body.
    MediaType => MediaType {
        /// Not set.
        Unspecified,
        /// A picture.
        Image,
        /// An audio file.
        Audio,
        /// A video.
        Video,
        /// A document.
        Document,
        /// A voice note.
        Voice,
        /// A sticker.
        Sticker,
        /// A contact card.
        Contact,
    }
}

wire_enum! {
    /// A channel over which messages are exchanged with a customer.
    MessagingChannel => MessagingChannel {
        /// Not set.
        Unspecified,
        /// SMS.
        Sms,
        /// Voice calls.
        Voice,
        /// USSD sessions.
        Ussd,
        /// Facebook Messenger.
        FbMessenger,
        /// Telegram.
        Telegram,
        /// WhatsApp.
        Whatsapp,
        /// Email.
        Email,
    }
}

wire_enum! {
    /// Allow or block messages from a channel to a customer.
    ConsentAction => MessagingConsentUpdate {
        /// Not set.
        Unspecified,
        /// The customer accepts messages from the channel.
        Allow,
        /// The customer refuses messages from the channel.
        Block,
    }
}

wire_enum! {
    /// Outcome of a messaging-consent update.
    ConsentUpdateStatus => MessagingConsentUpdateStatus {
        /// Not set.
        Unspecified,
        /// Accepted, not applied yet.
        Queued,
        /// Applied.
        Completed,
        /// The channel number is not one of the app's.
        InvalidChannelNumber,
        /// The customer id was retired.
        DecommissionedCustomerId,
        /// The server failed.
        ApplicationError,
    }
}

wire_enum! {
    /// Why a messaging session ended.
    MessagingSessionEndReason => MessagingSessionEndReason {
        /// Not set.
        Unspecified,
        /// Ended normally.
        NormalClearing,
        /// Timed out for inactivity.
        Inactivity,
        /// Failed.
        Failure,
    }
}

wire_enum! {
    /// A customer's reaction to a message they were sent.
    MessageReaction => MessageReaction {
        /// Not set.
        Unspecified,
        /// Clicked a link.
        Clicked,
        /// Unsubscribed.
        Unsubscribed,
        /// Complained (marked as spam).
        Complained,
    }
}

wire_enum! {
    /// What kind of reply a message's reply prompt asks for.
    PromptReplyAction => PromptMessageReplyAction {
        /// Not set.
        Unspecified,
        /// Free text.
        Text,
        /// A phone number.
        PhoneNumber,
        /// An email address.
        Email,
        /// A location.
        Location,
        /// A URL.
        Url,
    }
}

wire_enum! {
    /// Delivery status of an outbound message.
    MessageDeliveryStatus => MessageDeliveryStatus {
        /// Not set.
        Unspecified,
        /// Accepted and queued.
        Queued,
        /// Sent to the provider.
        Sent,
        /// Delivered to the customer.
        Delivered,
        /// Read by the customer.
        Read,
        /// Received.
        Received,
        /// A session was initiated (voice, USSD).
        SessionInitiated,
        /// Failed.
        Failed,
        /// The customer has not consented to messages from the channel.
        NoConsent,
        /// The channel cannot carry this message.
        NoCapability,
        /// Expired before delivery.
        Expired,
        /// A reply needs a session and none is in progress.
        NoSessionInProgress,
        /// Another session is in progress.
        OtherSessionInProgress,
        /// The reply token is not valid.
        InvalidReplyToken,
        /// The channel number is not one of the app's.
        InvalidChannelNumber,
        /// Not supported.
        NotSupported,
        /// The message replied to is unknown.
        InvalidReplyToMessageId,
        /// The customer id is unknown.
        InvalidCustomerId,
        /// The same request was already made.
        DuplicateRequest,
        /// No customer has the tag.
        TagNotFound,
        /// The customer number is unknown.
        CustomerNumberNotFound,
        /// The customer id was retired.
        DecommissionedCustomerid,
        /// Rejected.
        Rejected,
        /// The request was malformed.
        InvalidRequest,
        /// Not enough credit to send.
        InsufficientCredits,
        /// The server failed.
        ApplicationError,
    }
}

impl MessageDeliveryStatus {
    /// True for statuses that mean the message was accepted (queued, sent, delivered, …).
    pub fn is_success(self) -> bool {
        let raw = i32::from(self);
        (100..400).contains(&raw)
    }
}

wire_enum! {
    /// Status of a voice call.
    VoiceCallStatus => VoiceCallStatus {
        /// Not set.
        Unspecified,
        /// Queued.
        Queued,
        /// Answered.
        Answered,
        /// Ringing.
        Ringing,
        /// Active.
        Active,
        /// Dialing out.
        Dialing,
        /// A dial finished.
        DialCompleted,
        /// Bridged to another party.
        Bridged,
        /// Put in a queue.
        Enqueued,
        /// Taken out of a queue.
        Dequeued,
        /// Transferred.
        Transferred,
        /// Transfer finished.
        TransferCompleted,
        /// Finished.
        Completed,
        /// Not enough credit.
        InsufficientCredit,
        /// Not answered.
        NotAnswered,
        /// Invalid phone number.
        InvalidPhoneNumber,
        /// Destination not supported.
        DestinationNotSupported,
        /// The customer id was retired.
        DecommissionedCustomerid,
        /// Expired.
        Expired,
        /// The channel number is not one of the app's.
        InvalidChannelNumber,
        /// The server failed.
        ApplicationError,
    }
}

wire_enum! {
    /// Why a voice call hung up.
    VoiceCallHangupCause => VoiceCallHangupCause {
        /// Not set.
        Unspecified,
        /// Unallocated number.
        UnallocatedNumber,
        /// User busy.
        UserBusy,
        /// Normal clearing.
        NormalClearing,
        /// No user response.
        NoUserResponse,
        /// No answer.
        NoAnswer,
        /// Subscriber absent.
        SubscriberAbsent,
        /// Call rejected.
        CallRejected,
        /// Normal, unspecified.
        NormalUnspecified,
        /// Temporary failure.
        NormalTemporaryFailure,
        /// Service unavailable.
        ServiceUnavailable,
        /// Recovery timer expired.
        RecoveryOnTimerExpire,
        /// The originator cancelled.
        OriginatorCancel,
        /// Lost a race.
        LoseRace,
        /// User not registered.
        UserNotRegistered,
    }
}

wire_enum! {
    /// Direction of a voice call.
    VoiceCallDirection => CustomerEventDirection {
        /// Not set.
        Unspecified,
        /// From the customer.
        Inbound,
        /// To the customer.
        Outbound,
    }
}

wire_enum! {
    /// State of a USSD session.
    UssdSessionStatus => UssdSessionStatus {
        /// Not set.
        Unspecified,
        /// In progress.
        Active,
        /// Dropped before completion.
        Incomplete,
        /// Finished.
        Completed,
        /// The app failed.
        AppError,
    }
}

wire_enum! {
    /// Voice used by text to speech.
    TextToSpeechVoice => TextToSpeechVoice {
        /// Not set.
        Unspecified,
        /// Male voice.
        Male,
        /// Female voice.
        Female,
    }
}

wire_enum! {
    /// A payment channel.
    PaymentChannel => PaymentChannel {
        /// Not set.
        Unspecified,
        /// Mobile money.
        Cellular,
        /// Airtime.
        Airtime,
    }
}

wire_enum! {
    /// Status of a payment.
    PaymentStatus => PaymentStatus {
        /// Not set.
        Unspecified,
        /// Queued.
        Queued,
        /// Waiting for the payer to confirm.
        PendingConfirmation,
        /// Waiting for validation.
        PendingValidation,
        /// Validated.
        Validated,
        /// Malformed request.
        InvalidRequest,
        /// Not supported.
        NotSupported,
        /// The debit party cannot pay.
        InsufficientFunds,
        /// The server failed.
        ApplicationError,
        /// Not allowed.
        NotAllowed,
        /// The same request was already made.
        DuplicateRequest,
        /// Invalid purse.
        InvalidPurse,
        /// Invalid wallet.
        InvalidWallet,
        /// The customer id was retired.
        DecommissionedCustomerId,
        /// Completed.
        Success,
        /// Failed.
        Failed,
        /// Throttled.
        Throttled,
        /// Expired.
        Expired,
        /// Rejected.
        Rejected,
        /// Reversed.
        Reversed,
    }
}

impl PaymentStatus {
    /// True for statuses that mean the payment is accepted or done (queued, pending, validated, success).
    pub fn is_success(self) -> bool {
        let raw = i32::from(self);
        (100..200).contains(&raw) || raw == 300
    }
}

wire_enum! {
    /// Why a request was made (in customer state history).
    RequestOrigin => CustomerRequestOrigin {
        /// Not set.
        Unspecified,
        /// A direct API request.
        ApiRequest,
        /// A tag-wide request.
        CustomerTag,
        /// A replay.
        Replay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<E>(all: &[E])
    where
        E: Copy + PartialEq + std::fmt::Debug + From<i32> + Into<i32>,
        i32: From<E>,
    {
        for &variant in all {
            let raw: i32 = variant.into();
            assert_eq!(
                E::from(raw),
                variant,
                "{variant:?} did not survive the wire"
            );
        }
        // A value no proto enum of this schema uses.
        let unknown = E::from(9_999);
        assert_eq!(i32::from(unknown), 9_999);
    }

    #[test]
    fn every_variant_round_trips_and_unknown_values_survive() {
        round_trip(CustomerNumberProvider::ALL);
        round_trip(ChannelNumberProvider::ALL);
        round_trip(MediaType::ALL);
        round_trip(MessagingChannel::ALL);
        round_trip(ConsentAction::ALL);
        round_trip(ConsentUpdateStatus::ALL);
        round_trip(MessagingSessionEndReason::ALL);
        round_trip(MessageReaction::ALL);
        round_trip(PromptReplyAction::ALL);
        round_trip(MessageDeliveryStatus::ALL);
        round_trip(VoiceCallStatus::ALL);
        round_trip(VoiceCallHangupCause::ALL);
        round_trip(VoiceCallDirection::ALL);
        round_trip(UssdSessionStatus::ALL);
        round_trip(TextToSpeechVoice::ALL);
        round_trip(PaymentChannel::ALL);
        round_trip(PaymentStatus::ALL);
        round_trip(RequestOrigin::ALL);
    }

    #[test]
    fn known_wire_values_map_to_named_variants() {
        assert_eq!(PaymentStatus::from(202), PaymentStatus::InsufficientFunds);
        assert_eq!(
            MessageDeliveryStatus::from(401),
            MessageDeliveryStatus::NoConsent
        );
        assert_eq!(
            VoiceCallHangupCause::from(487),
            VoiceCallHangupCause::OriginatorCancel
        );
        assert_eq!(MessagingChannel::from(3), MessagingChannel::Ussd);
        assert_eq!(MessagingChannel::from(42), MessagingChannel::Unknown(42));
        assert_eq!(MessagingChannel::default(), MessagingChannel::Unspecified);
    }

    #[test]
    fn status_helpers_classify_outcomes() {
        assert!(MessageDeliveryStatus::Queued.is_success());
        assert!(MessageDeliveryStatus::SessionInitiated.is_success());
        assert!(!MessageDeliveryStatus::NoConsent.is_success());
        assert!(!MessageDeliveryStatus::Unspecified.is_success());
        assert!(PaymentStatus::Success.is_success());
        assert!(PaymentStatus::PendingConfirmation.is_success());
        assert!(!PaymentStatus::InsufficientFunds.is_success());
        assert!(!PaymentStatus::Unknown(7).is_success());
    }

    #[test]
    fn serde_keeps_unknown_values() {
        let json = serde_json::to_string(&PaymentStatus::Unknown(777)).expect("serialize");
        let back: PaymentStatus = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, PaymentStatus::Unknown(777));
        let json = serde_json::to_string(&MessagingChannel::Whatsapp).expect("serialize");
        assert_eq!(json, "\"Whatsapp\"");
    }
}
