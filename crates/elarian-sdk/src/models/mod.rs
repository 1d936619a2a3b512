//! Plain Rust models of everything the Elarian API exchanges, with conversions to and from the wire
//! types of `elarian-proto`. All models derive serde `Serialize`/`Deserialize`.

#[macro_use]
mod convert;

pub(crate) mod common;
pub(crate) mod data;
pub(crate) mod enums;
pub(crate) mod message;
pub(crate) mod notifications;
pub(crate) mod payment;
pub(crate) mod replies;
pub(crate) mod state;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod time;

// Customers, numbers, tags, reminders, activities, auth tokens.
pub use common::{
    Activity, AuthToken, Cash, CustomerNumber, MessagingChannelNumber, PaymentChannelNumber,
    Reminder, SecondaryId, Tag,
};
// App data and metadata values.
pub use data::{DataError, DataValue};
// Enumerations (every one has `Unknown(i32)` for values this SDK does not know yet).
pub use enums::{
    ChannelNumberProvider, ConsentAction, ConsentUpdateStatus, CustomerNumberProvider, MediaType,
    MessageDeliveryStatus, MessageReaction, MessagingChannel, MessagingSessionEndReason,
    PaymentChannel, PaymentStatus, PromptReplyAction, RequestOrigin, TextToSpeechVoice,
    UssdSessionStatus, VoiceCallDirection, VoiceCallHangupCause, VoiceCallStatus,
};
// Messages, voice actions and USSD menus.
pub use message::{
    Dequeue, Dial, Email, Enqueue, GetDigits, GetRecording, InboundMessageBody, Location, Media,
    Message, MessageBody, Play, Prompt, PromptMenuItem, Redirect, ReplyPrompt, Say, Template,
    UssdInput, UssdMenu, VoiceAction, VoiceCallDialInput, VoiceCallInput, VoiceCallQueueInput,
};
// Notifications and app events.
pub use notifications::{
    AppEvent, CustomerActivityNotification, DecodedNotification, MessageStatusNotification,
    MessagingConsentUpdateNotification, MessagingSessionEndedNotification,
    MessagingSessionNotification, Notification, NotificationContext, NotificationDecodeError,
    PaymentStatusNotification, ReceivedMessageNotification, ReceivedPaymentNotification,
    ReminderNotification, SentMessageReactionNotification, UssdSessionNotification,
    VoiceCallNotification,
};
// Payments.
pub use payment::{
    ChannelCounterParty, PaymentBalance, PaymentCounterParty, PaymentTransaction, PendingPayment,
    WalletOrPurse,
};
// Command replies.
pub use replies::{
    ConsentUpdateReply, CustomerStateUpdateReply, InitiatePaymentReply, MessageReply,
    ReplayPaymentReply, SimulatorReply, TagUpdateReply,
};
// Customer state.
pub use state::{
    ActivitySession, ActivityState, ChannelMessage, CustomerState, IdentityState,
    MessageReactionState, MessageSessionUpdate, MessageStatusUpdate, MessagingChannelState,
    MessagingSession, MessagingState, PaymentState, ReceivedMessage, ReplyToken, SentMessage,
};
