//! Messages: outbound bodies (text, media, location, email, template, url, voice, USSD), voice
//! actions, reply prompts, and inbound bodies (what a customer sends).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use elarian_proto as proto;
use elarian_proto::{
    get_digits_call_action, get_recording_call_action, inbound_message_body, outbound_message_body,
    prompt_message_menu_item_body, voice_call_action,
};
use serde::{Deserialize, Serialize};

use super::common::{CustomerNumber, MessagingChannelNumber};
use super::enums::{
    MediaType, PromptReplyAction, TextToSpeechVoice, UssdSessionStatus, VoiceCallDirection,
    VoiceCallHangupCause, VoiceCallStatus,
};

/// A media attachment: a URL and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Media {
    /// Where the media is.
    pub url: String,
    /// What kind of media it is.
    pub media_type: MediaType,
}

impl Media {
    /// Media of `media_type` at `url`.
    pub fn new(url: impl Into<String>, media_type: MediaType) -> Self {
        Media {
            url: url.into(),
            media_type,
        }
    }
}

wire_struct!(Media <=> proto::MediaMessageBody {
    url: same,
    media_type => media: into,
});

/// A geographic location.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Location {
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// A short name for the place.
    pub label: Option<String>,
    /// Its address.
    pub address: Option<String>,
}

wire_struct!(Location <=> proto::LocationMessageBody {
    latitude: same,
    longitude: same,
    label: same,
    address: same,
});

/// An email. (The published wire has no attachments field, so neither has this model.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Email {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body_plain: String,
    /// HTML body.
    pub body_html: String,
    /// Carbon-copy recipients.
    pub cc_list: Vec<String>,
    /// Blind-carbon-copy recipients.
    pub bcc_list: Vec<String>,
}

wire_struct!(Email <=> proto::EmailMessageBody {
    subject: same,
    body_plain: same,
    body_html: same,
    cc_list: same,
    bcc_list: same,
});

/// A pre-approved message template (e.g. WhatsApp) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Template {
    /// Template id.
    pub id: String,
    /// Values for the template's placeholders.
    pub params: HashMap<String, String>,
}

wire_struct!(Template <=> proto::TemplateMessageBody {
    id: same,
    params: same,
});

/// A USSD screen: text and whether the session ends after it.
///
/// ```
/// use elarian_sdk::UssdMenu;
/// let menu = UssdMenu::new("1. Balance\n2. Pay");
/// assert!(!menu.is_terminal);
/// let bye = UssdMenu::terminal("Thank you");
/// assert!(bye.is_terminal);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UssdMenu {
    /// Text shown to the customer.
    pub text: String,
    /// True when the session ends with this screen.
    pub is_terminal: bool,
}

impl UssdMenu {
    /// A menu that expects an answer.
    pub fn new(text: impl Into<String>) -> Self {
        UssdMenu {
            text: text.into(),
            is_terminal: false,
        }
    }

    /// A final screen that ends the session.
    pub fn terminal(text: impl Into<String>) -> Self {
        UssdMenu {
            text: text.into(),
            is_terminal: true,
        }
    }
}

wire_struct!(UssdMenu <=> proto::UssdMenuMessageBody {
    text: same,
    is_terminal: same,
});

/// Voice action: read text aloud.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Say {
    /// The text.
    pub text: String,
    /// Voice to use.
    pub voice: TextToSpeechVoice,
    /// Beep after speaking.
    pub play_beep: bool,
}

impl Say {
    /// Says `text` in the default voice.
    pub fn new(text: impl Into<String>) -> Self {
        Say {
            text: text.into(),
            voice: TextToSpeechVoice::Female,
            play_beep: false,
        }
    }
}

wire_struct!(Say <=> proto::SayCallAction {
    text: same,
    voice: into,
    play_beep: same,
});

/// Voice action: play an audio file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Play {
    /// URL of the audio.
    pub url: String,
}

wire_struct!(Play <=> proto::PlayCallAction {
    url: same,
});

/// What is played before collecting input: text to speech or an audio file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// Read text aloud.
    Say(Say),
    /// Play audio.
    Play(Play),
}

/// Voice action: collect digits the caller types.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetDigits {
    /// How long to wait for input.
    pub timeout: Option<Duration>,
    /// Key that ends input.
    pub finish_on_key: Option<String>,
    /// How many digits to collect.
    pub num_digits: Option<i32>,
    /// What to play first.
    pub prompt: Option<Prompt>,
}

/// `Prompt` and the prompt oneofs of `GetDigits` and `GetRecording`, which the wire keeps apart.
macro_rules! prompt_conversions {
    ($oneof:ident) => {
        impl From<Prompt> for $oneof::Prompt {
            fn from(prompt: Prompt) -> Self {
                match prompt {
                    Prompt::Say(say) => $oneof::Prompt::Say(say.into()),
                    Prompt::Play(play) => $oneof::Prompt::Play(play.into()),
                }
            }
        }

        impl From<$oneof::Prompt> for Prompt {
            fn from(prompt: $oneof::Prompt) -> Self {
                match prompt {
                    $oneof::Prompt::Say(say) => Prompt::Say(say.into()),
                    $oneof::Prompt::Play(play) => Prompt::Play(play.into()),
                }
            }
        }
    };
}

prompt_conversions!(get_digits_call_action);
prompt_conversions!(get_recording_call_action);

wire_struct!(GetDigits <=> proto::GetDigitsCallAction {
    timeout: duration,
    finish_on_key: same,
    num_digits: same,
    prompt: opt,
});

/// Voice action: record what the caller says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetRecording {
    /// How long to wait for the caller to start.
    pub timeout: Option<Duration>,
    /// Longest recording.
    pub max_length: Option<Duration>,
    /// Key that ends the recording.
    pub finish_on_key: Option<String>,
    /// Beep before recording.
    pub play_beep: bool,
    /// Trim leading and trailing silence.
    pub trim_silence: bool,
    /// What to play first.
    pub prompt: Option<Prompt>,
}

wire_struct!(GetRecording <=> proto::GetRecordingCallAction {
    timeout: duration,
    max_length: duration,
    finish_on_key: same,
    play_beep: same,
    trim_silence: same,
    prompt: opt,
});

/// Voice action: call other numbers and bridge the caller to the first that answers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dial {
    /// Numbers to call.
    pub customer_numbers: Vec<CustomerNumber>,
    /// Record the call.
    pub record: bool,
    /// Call one after the other instead of all at once.
    pub sequential: bool,
    /// Audio played while ringing.
    pub ringback_tone: Option<String>,
    /// Caller id shown to the callee.
    pub caller_id: Option<String>,
    /// Longest call, in seconds.
    pub max_duration: Option<i32>,
}

wire_struct!(Dial <=> proto::DialCallAction {
    customer_numbers: vec,
    record: same,
    sequential: same,
    ringback_tone: same,
    caller_id: same,
    max_duration: same,
});

/// Voice action: put the caller in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Enqueue {
    /// The queue.
    pub queue_name: Option<String>,
    /// Audio played while waiting.
    pub hold_music: Option<String>,
}

wire_struct!(Enqueue <=> proto::EnqueueCallAction {
    queue_name: same,
    hold_music: same,
});

/// Voice action: take the first caller out of a queue and bridge them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dequeue {
    /// The queue.
    pub queue_name: Option<String>,
    /// Record the call.
    pub record: bool,
    /// The channel number whose queue it is.
    pub channel_number: Option<MessagingChannelNumber>,
}

wire_struct!(Dequeue <=> proto::DequeueCallAction {
    queue_name: same,
    record: same,
    channel_number: opt,
});

/// Voice action: hand the call to another URL's dialplan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Redirect {
    /// The URL.
    pub url: String,
}

wire_struct!(Redirect <=> proto::RedirectCallAction {
    url: same,
});

/// One step of a voice call's dialplan.
///
/// ```
/// use elarian_sdk::{GetDigits, Prompt, Say, VoiceAction};
/// let actions = vec![
///     VoiceAction::Say(Say::new("Welcome")),
///     VoiceAction::GetDigits(GetDigits {
///         num_digits: Some(1),
///         prompt: Some(Prompt::Say(Say::new("Press 1 to pay"))),
///         ..Default::default()
///     }),
/// ];
/// assert_eq!(actions.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoiceAction {
    /// Read text aloud.
    Say(Say),
    /// Play audio.
    Play(Play),
    /// Collect digits.
    GetDigits(GetDigits),
    /// Call other numbers.
    Dial(Dial),
    /// Record the whole session.
    RecordSession,
    /// Record what the caller says.
    GetRecording(GetRecording),
    /// Put the caller in a queue.
    Enqueue(Enqueue),
    /// Take a caller out of a queue.
    Dequeue(Dequeue),
    /// Reject the call.
    Reject,
    /// Continue with another URL's dialplan.
    Redirect(Redirect),
}

impl From<VoiceAction> for proto::VoiceCallAction {
    fn from(a: VoiceAction) -> Self {
        use voice_call_action::Entry;
        let entry = match a {
            VoiceAction::Say(s) => Entry::Say(s.into()),
            VoiceAction::Play(p) => Entry::Play(p.into()),
            VoiceAction::GetDigits(g) => Entry::GetDigits(g.into()),
            VoiceAction::Dial(d) => Entry::Dial(d.into()),
            VoiceAction::RecordSession => Entry::RecordSession(proto::RecordSessionCallAction {}),
            VoiceAction::GetRecording(g) => Entry::GetRecording(g.into()),
            VoiceAction::Enqueue(e) => Entry::Enqueue(e.into()),
            VoiceAction::Dequeue(d) => Entry::Dequeue(d.into()),
            VoiceAction::Reject => Entry::Reject(proto::RejectCallAction {}),
            VoiceAction::Redirect(r) => Entry::Redirect(r.into()),
        };
        proto::VoiceCallAction { entry: Some(entry) }
    }
}

impl VoiceAction {
    /// Reads a wire action; `None` when no action is set.
    pub(crate) fn from_proto(a: proto::VoiceCallAction) -> Option<Self> {
        use voice_call_action::Entry;
        Some(match a.entry? {
            Entry::Say(s) => VoiceAction::Say(s.into()),
            Entry::Play(p) => VoiceAction::Play(p.into()),
            Entry::GetDigits(g) => VoiceAction::GetDigits(g.into()),
            Entry::Dial(d) => VoiceAction::Dial(d.into()),
            Entry::RecordSession(_) => VoiceAction::RecordSession,
            Entry::GetRecording(g) => VoiceAction::GetRecording(g.into()),
            Entry::Enqueue(e) => VoiceAction::Enqueue(e.into()),
            Entry::Dequeue(d) => VoiceAction::Dequeue(d.into()),
            Entry::Reject(_) => VoiceAction::Reject,
            Entry::Redirect(r) => VoiceAction::Redirect(r.into()),
        })
    }
}

/// The content of an outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MessageBody {
    /// Plain text.
    Text(String),
    /// A template and its parameters.
    Template(Template),
    /// Media.
    Media(Media),
    /// A location.
    Location(Location),
    /// An email.
    Email(Email),
    /// A voice dialplan.
    Voice(Vec<VoiceAction>),
    /// A USSD screen.
    Ussd(UssdMenu),
    /// A URL.
    Url(String),
}

impl From<MessageBody> for proto::OutboundMessageBody {
    fn from(b: MessageBody) -> Self {
        use outbound_message_body::Entry;
        let entry = match b {
            MessageBody::Text(t) => Entry::Text(t),
            MessageBody::Template(t) => Entry::Template(t.into()),
            MessageBody::Media(m) => Entry::Media(m.into()),
            MessageBody::Location(l) => Entry::Location(l.into()),
            MessageBody::Email(e) => Entry::Email(e.into()),
            MessageBody::Voice(actions) => Entry::Voice(proto::VoiceCallDialplanMessageBody {
                actions: actions.into_iter().map(Into::into).collect(),
            }),
            MessageBody::Ussd(m) => Entry::Ussd(m.into()),
            MessageBody::Url(u) => Entry::Url(u),
        };
        proto::OutboundMessageBody { entry: Some(entry) }
    }
}

impl MessageBody {
    /// Reads a wire body; `None` when no body is set.
    pub(crate) fn from_proto(b: proto::OutboundMessageBody) -> Option<Self> {
        use outbound_message_body::Entry;
        Some(match b.entry? {
            Entry::Text(t) => MessageBody::Text(t),
            Entry::Template(t) => MessageBody::Template(t.into()),
            Entry::Media(m) => MessageBody::Media(m.into()),
            Entry::Location(l) => MessageBody::Location(l.into()),
            Entry::Email(e) => MessageBody::Email(e.into()),
            Entry::Voice(v) => MessageBody::Voice(
                v.actions
                    .into_iter()
                    .filter_map(VoiceAction::from_proto)
                    .collect(),
            ),
            Entry::Ussd(m) => MessageBody::Ussd(m.into()),
            Entry::Url(u) => MessageBody::Url(u),
        })
    }
}

/// One choice of a reply prompt's menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromptMenuItem {
    /// A text choice.
    Text(String),
    /// A media choice.
    Media(Media),
}

/// Asks the customer for a particular kind of reply (quick-reply buttons on chat channels).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplyPrompt {
    /// What kind of reply is asked for.
    pub action: PromptReplyAction,
    /// The choices offered.
    pub menu: Vec<PromptMenuItem>,
}

impl From<ReplyPrompt> for proto::OutboundMessageReplyPrompt {
    fn from(p: ReplyPrompt) -> Self {
        use prompt_message_menu_item_body::Entry;
        proto::OutboundMessageReplyPrompt {
            action: p.action.into(),
            menu: p
                .menu
                .into_iter()
                .map(|item| proto::PromptMessageMenuItemBody {
                    entry: Some(match item {
                        PromptMenuItem::Text(t) => Entry::Text(t),
                        PromptMenuItem::Media(m) => Entry::Media(m.into()),
                    }),
                })
                .collect(),
        }
    }
}

impl From<proto::OutboundMessageReplyPrompt> for ReplyPrompt {
    fn from(p: proto::OutboundMessageReplyPrompt) -> Self {
        use prompt_message_menu_item_body::Entry;
        ReplyPrompt {
            action: p.action.into(),
            menu: p
                .menu
                .into_iter()
                .filter_map(|item| match item.entry? {
                    Entry::Text(t) => Some(PromptMenuItem::Text(t)),
                    Entry::Media(m) => Some(PromptMenuItem::Media(m.into())),
                })
                .collect(),
        }
    }
}

/// An outbound message: a body and delivery options.
///
/// ```
/// use elarian_sdk::{Message, MessageBody, UssdMenu};
/// let sms = Message::text("Your balance is KES 100").with_label("balance");
/// assert_eq!(sms.body, Some(MessageBody::Text("Your balance is KES 100".into())));
/// let menu = Message::ussd(UssdMenu::new("1. Balance"));
/// assert!(matches!(menu.body, Some(MessageBody::Ussd(_))));
/// ```
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Message {
    /// The content (`None` only when a server sent a message without one).
    pub body: Option<MessageBody>,
    /// Labels for analytics.
    pub labels: Vec<String>,
    /// Tag passed to the provider.
    pub provider_tag: Option<String>,
    /// Token that lets this message be sent inside a customer's session.
    pub reply_token: Option<String>,
    /// Asks for a kind of reply.
    pub reply_prompt: Option<ReplyPrompt>,
}

/// Shows every field but the reply token, which is a credential of the customer's session.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("body", &self.body)
            .field("labels", &self.labels)
            .field("provider_tag", &self.provider_tag)
            .field(
                "reply_token",
                &self
                    .reply_token
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .field("reply_prompt", &self.reply_prompt)
            .finish()
    }
}

impl Message {
    /// A message with `body` and no options.
    pub fn new(body: MessageBody) -> Self {
        Message {
            body: Some(body),
            ..Default::default()
        }
    }

    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(MessageBody::Text(text.into()))
    }

    /// A USSD screen.
    pub fn ussd(menu: UssdMenu) -> Self {
        Self::new(MessageBody::Ussd(menu))
    }

    /// A voice dialplan.
    pub fn voice(actions: Vec<VoiceAction>) -> Self {
        Self::new(MessageBody::Voice(actions))
    }

    /// Adds a label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// Sets a reply prompt.
    pub fn with_reply_prompt(mut self, prompt: ReplyPrompt) -> Self {
        self.reply_prompt = Some(prompt);
        self
    }
}

impl From<Message> for proto::OutboundMessage {
    fn from(m: Message) -> Self {
        proto::OutboundMessage {
            body: m.body.map(Into::into),
            labels: m.labels,
            provider_tag: m.provider_tag,
            reply_token: m.reply_token,
            reply_prompt: m.reply_prompt.map(Into::into),
        }
    }
}

impl From<proto::OutboundMessage> for Message {
    fn from(m: proto::OutboundMessage) -> Self {
        Message {
            body: m.body.and_then(MessageBody::from_proto),
            labels: m.labels,
            provider_tag: m.provider_tag,
            reply_token: m.reply_token,
            reply_prompt: m.reply_prompt.map(Into::into),
        }
    }
}

/// Details of a dial during a voice call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VoiceCallDialInput {
    /// The number dialled.
    pub destination_number: String,
    /// When the dial started.
    pub started_at: Option<SystemTime>,
    /// How long it lasted.
    pub duration: Option<Duration>,
}

wire_struct!(VoiceCallDialInput <=> proto::VoiceCallDialInput {
    destination_number: same,
    started_at: time,
    duration: duration,
});

/// Details of a queue stay during a voice call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VoiceCallQueueInput {
    /// When the caller was queued.
    pub enqueued_at: Option<SystemTime>,
    /// When they left the queue.
    pub dequeued_at: Option<SystemTime>,
    /// Number they were bridged to.
    pub dequeued_to_number: Option<String>,
    /// Session they were bridged to.
    pub dequeued_to_session_id: Option<String>,
    /// Time spent queued.
    pub queue_duration: Option<Duration>,
}

wire_struct!(VoiceCallQueueInput <=> proto::VoiceCallQueueInput {
    enqueued_at: time,
    dequeued_at: time,
    dequeued_to_number: same,
    dequeued_to_session_id: same,
    queue_duration: duration,
});

/// The state of a voice call as the app sees it in each `voice_call` notification.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VoiceCallInput {
    /// Inbound or outbound.
    pub direction: VoiceCallDirection,
    /// Call status.
    pub status: VoiceCallStatus,
    /// When the call started.
    pub started_at: Option<SystemTime>,
    /// Why it hung up (when it has).
    pub hangup_cause: VoiceCallHangupCause,
    /// Digits the caller typed.
    pub dtmf_digits: Option<String>,
    /// URL of a recording.
    pub recording_url: Option<String>,
    /// Dial details.
    pub dial_data: Option<VoiceCallDialInput>,
    /// Queue details.
    pub queue_data: Option<VoiceCallQueueInput>,
}

wire_struct!(VoiceCallInput <=> proto::VoiceCallInputMessageBody {
    direction: into,
    status: into,
    started_at: time,
    hangup_cause: into,
    dtmf_digits: same,
    recording_url: same,
    dial_data: opt,
    queue_data: opt,
});

/// What a customer typed in a USSD session, and the session's state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UssdInput {
    /// The text typed (absent on the first screen of a session).
    pub text: Option<String>,
    /// The session's state.
    pub status: UssdSessionStatus,
}

wire_struct!(UssdInput <=> proto::UssdInputMessageBody {
    text: same,
    status: into,
});

/// One part of a message a customer sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InboundMessageBody {
    /// Text.
    Text(String),
    /// Media.
    Media(Media),
    /// A location.
    Location(Location),
    /// An email.
    Email(Email),
    /// Voice call progress.
    Voice(VoiceCallInput),
    /// USSD input.
    Ussd(UssdInput),
}

impl From<InboundMessageBody> for proto::InboundMessageBody {
    fn from(b: InboundMessageBody) -> Self {
        use inbound_message_body::Entry;
        let entry = match b {
            InboundMessageBody::Text(t) => Entry::Text(t),
            InboundMessageBody::Media(m) => Entry::Media(m.into()),
            InboundMessageBody::Location(l) => Entry::Location(l.into()),
            InboundMessageBody::Email(e) => Entry::Email(e.into()),
            InboundMessageBody::Voice(v) => Entry::Voice(v.into()),
            InboundMessageBody::Ussd(u) => Entry::Ussd(u.into()),
        };
        proto::InboundMessageBody { entry: Some(entry) }
    }
}

impl InboundMessageBody {
    /// Reads a wire part; `None` when the part is empty.
    pub(crate) fn from_proto(b: proto::InboundMessageBody) -> Option<Self> {
        use inbound_message_body::Entry;
        Some(match b.entry? {
            Entry::Text(t) => InboundMessageBody::Text(t),
            Entry::Media(m) => InboundMessageBody::Media(m.into()),
            Entry::Location(l) => InboundMessageBody::Location(l.into()),
            Entry::Email(e) => InboundMessageBody::Email(e.into()),
            Entry::Voice(v) => InboundMessageBody::Voice(v.into()),
            Entry::Ussd(u) => InboundMessageBody::Ussd(u.into()),
        })
    }

    /// Converts wire parts, dropping empty ones.
    pub(crate) fn from_proto_parts(parts: Vec<proto::InboundMessageBody>) -> Vec<Self> {
        parts.into_iter().filter_map(Self::from_proto).collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn debug_never_shows_a_reply_token() {
        let mut message = Message::text("balance due");
        message.reply_token = Some("session-secret-7".into());
        let text = format!("{message:?}");
        assert!(!text.contains("session-secret-7"), "{text}");
        assert!(
            text.contains("balance due") && text.contains("<redacted>"),
            "{text}"
        );
        let token = crate::ReplyToken {
            token: "session-secret-7".into(),
            expires_at: None,
        };
        assert!(!format!("{token:?}").contains("session-secret-7"));
    }
    use super::*;
    use crate::models::enums::MessagingChannel;
    use std::time::UNIX_EPOCH;

    fn say() -> Say {
        Say {
            text: "hello".into(),
            voice: TextToSpeechVoice::Male,
            play_beep: true,
        }
    }

    fn every_voice_action() -> Vec<VoiceAction> {
        vec![
            VoiceAction::Say(say()),
            VoiceAction::Play(Play {
                url: "https://x/a.mp3".into(),
            }),
            VoiceAction::GetDigits(GetDigits {
                timeout: Some(Duration::from_secs(5)),
                finish_on_key: Some("#".into()),
                num_digits: Some(4),
                prompt: Some(Prompt::Say(say())),
            }),
            VoiceAction::GetDigits(GetDigits {
                prompt: Some(Prompt::Play(Play { url: "u".into() })),
                ..Default::default()
            }),
            VoiceAction::Dial(Dial {
                customer_numbers: vec![CustomerNumber::cellular("+254700000002")],
                record: true,
                sequential: true,
                ringback_tone: Some("tone".into()),
                caller_id: Some("id".into()),
                max_duration: Some(60),
            }),
            VoiceAction::RecordSession,
            VoiceAction::GetRecording(GetRecording {
                timeout: Some(Duration::from_secs(3)),
                max_length: Some(Duration::from_secs(30)),
                finish_on_key: Some("*".into()),
                play_beep: true,
                trim_silence: true,
                prompt: Some(Prompt::Play(Play { url: "p".into() })),
            }),
            VoiceAction::GetRecording(GetRecording {
                prompt: Some(Prompt::Say(say())),
                ..Default::default()
            }),
            VoiceAction::Enqueue(Enqueue {
                queue_name: Some("q".into()),
                hold_music: Some("m".into()),
            }),
            VoiceAction::Dequeue(Dequeue {
                queue_name: Some("q".into()),
                record: true,
                channel_number: Some(MessagingChannelNumber::new(
                    "+254711621711",
                    MessagingChannel::Voice,
                )),
            }),
            VoiceAction::Reject,
            VoiceAction::Redirect(Redirect {
                url: "https://x/next".into(),
            }),
        ]
    }

    #[test]
    fn every_voice_action_round_trips() {
        for action in every_voice_action() {
            let wire = proto::VoiceCallAction::from(action.clone());
            assert_eq!(VoiceAction::from_proto(wire), Some(action));
        }
    }

    fn every_body() -> Vec<MessageBody> {
        vec![
            MessageBody::Text("hi".into()),
            MessageBody::Template(Template {
                id: "t1".into(),
                params: HashMap::from([("name".to_string(), "Ann".to_string())]),
            }),
            MessageBody::Media(Media::new("https://x/i.png", MediaType::Image)),
            MessageBody::Location(Location {
                latitude: -1.28,
                longitude: 36.82,
                label: Some("Nairobi".into()),
                address: Some("CBD".into()),
            }),
            MessageBody::Email(Email {
                subject: "s".into(),
                body_plain: "p".into(),
                body_html: "<p>h</p>".into(),
                cc_list: vec!["a@x".into()],
                bcc_list: vec!["b@x".into()],
            }),
            MessageBody::Voice(every_voice_action()),
            MessageBody::Ussd(UssdMenu::terminal("bye")),
            MessageBody::Url("https://elarian.com".into()),
        ]
    }

    #[test]
    fn every_message_body_round_trips_with_options() {
        for body in every_body() {
            let message = Message {
                body: Some(body),
                labels: vec!["l1".into(), "l2".into()],
                provider_tag: Some("tag".into()),
                reply_token: Some("rt".into()),
                reply_prompt: Some(ReplyPrompt {
                    action: PromptReplyAction::Location,
                    menu: vec![
                        PromptMenuItem::Text("yes".into()),
                        PromptMenuItem::Media(Media::new("u", MediaType::Sticker)),
                    ],
                }),
            };
            let wire = proto::OutboundMessage::from(message.clone());
            assert_eq!(Message::from(wire), message);
            let json = serde_json::to_string(&message).expect("serialize");
            assert_eq!(
                serde_json::from_str::<Message>(&json).expect("deserialize"),
                message
            );
        }
    }

    #[test]
    fn every_inbound_body_round_trips() {
        let parts = vec![
            InboundMessageBody::Text("hello".into()),
            InboundMessageBody::Media(Media::new("u", MediaType::Voice)),
            InboundMessageBody::Location(Location::default()),
            InboundMessageBody::Email(Email::default()),
            InboundMessageBody::Voice(VoiceCallInput {
                direction: VoiceCallDirection::Inbound,
                status: VoiceCallStatus::Answered,
                started_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                hangup_cause: VoiceCallHangupCause::Unknown(12_345),
                dtmf_digits: Some("12".into()),
                recording_url: Some("r".into()),
                dial_data: Some(VoiceCallDialInput {
                    destination_number: "+254700000003".into(),
                    started_at: Some(UNIX_EPOCH + Duration::from_secs(10)),
                    duration: Some(Duration::from_secs(4)),
                }),
                queue_data: Some(VoiceCallQueueInput {
                    enqueued_at: Some(UNIX_EPOCH + Duration::from_secs(1)),
                    dequeued_at: Some(UNIX_EPOCH + Duration::from_secs(2)),
                    dequeued_to_number: Some("n".into()),
                    dequeued_to_session_id: Some("s".into()),
                    queue_duration: Some(Duration::from_secs(1)),
                }),
            }),
            InboundMessageBody::Ussd(UssdInput {
                text: Some("1".into()),
                status: UssdSessionStatus::Active,
            }),
        ];
        let wire: Vec<proto::InboundMessageBody> = parts.iter().cloned().map(Into::into).collect();
        assert_eq!(InboundMessageBody::from_proto_parts(wire), parts);
    }

    #[test]
    fn empty_wire_parts_are_dropped_not_fatal() {
        let wire = vec![
            proto::InboundMessageBody { entry: None },
            InboundMessageBody::Text("x".into()).into(),
        ];
        assert_eq!(
            InboundMessageBody::from_proto_parts(wire),
            vec![InboundMessageBody::Text("x".into())]
        );
        assert_eq!(Message::from(proto::OutboundMessage::default()).body, None);
    }
}
