//! The seed's resources, field for field and in the seed's JSON spelling: [`Message`],
//! [`Channel`], [`Template`], [`Sending`], [`MessageSending`] and [`Recipient`], plus the request
//! payloads that create them and the stored [`Audience`].

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::time::Timestamp;

/// A Message: business-level information and configuration, sent through its channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Should sendings have URLs shortened? (Kept; the Elarian mapping sends text as rendered.)
    pub shorten_urls: bool,
    /// Should the shortener track users? (Kept as given.)
    pub track_in_shortener: bool,
    /// The campaign id, free text.
    pub campaign_id: Option<String>,
    /// The service the message belongs to.
    pub service: Option<Service>,
    /// Time of creation.
    pub created_at: Timestamp,
    /// Time of last update.
    pub updated_at: Timestamp,
    /// Channels the message is sent with; the first one is used.
    pub channels: Vec<Channel>,
    /// Aggregated status of the message's sendings.
    pub sendings_status: SendingsStatus,
    /// Number of sendings.
    pub sendings_count: u64,
    /// The most recent sending.
    pub latest_sending: Option<MessageSending>,
}

/// A Message's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Campaigns messages.
    Campaigns,
    /// Tenant engagement messages.
    Tenants,
}

/// The Message's aggregated sendings status (see [`crate::aggregate_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendingsStatus {
    /// Every sending is a draft (or there is none).
    Draft,
    /// Some sending is still to run.
    Scheduled,
    /// Every sending is transmitted, cancelled, failed or skipped.
    Finished,
}

/// How a message is sent, with its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Id.
    pub id: u64,
    /// Channel type.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// SMS (and chat) sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    /// Email sender address (the app's Elarian email channel number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_email: Option<String>,
    /// Email sender name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    /// The content.
    pub template: Template,
    /// Time of creation.
    pub created_at: Timestamp,
    /// Time of last update.
    pub updated_at: Timestamp,
}

/// A channel type: the seed's three plus Elarian's chat channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    /// SMS.
    Sms,
    /// Email.
    Email,
    /// Push notification: in the seed, but not an Elarian channel (rejected on create).
    Push,
    /// WhatsApp (Elarian).
    Whatsapp,
    /// Telegram (Elarian).
    Telegram,
    /// Facebook Messenger (Elarian).
    Messenger,
}

impl ChannelType {
    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Sms => "sms",
            ChannelType::Email => "email",
            ChannelType::Push => "push",
            ChannelType::Whatsapp => "whatsapp",
            ChannelType::Telegram => "telegram",
            ChannelType::Messenger => "messenger",
        }
    }
}

/// How the SMS sender is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// Kind of sender.
    #[serde(rename = "type")]
    pub kind: SenderType,
    /// The sender itself.
    pub value: String,
}

/// Kind of SMS sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderType {
    /// 2 to 11 characters.
    Alphanumeric,
    /// An MSISDN.
    International,
}

/// Template type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateType {
    /// A body only; any channel.
    Plain,
    /// HTML body and subject; email.
    Email,
    /// HTML body, subject and the Bee editor's JSON; email.
    BeeEmail,
    /// Body, subject and URI; push.
    Push,
}

/// A template's content, by type, with the seed's keys.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateContent {
    /// `{"body": …}`.
    Plain {
        /// Text with merge fields.
        body: String,
    },
    /// `{"subject": …, "body": …}`; `body` is HTML.
    Email {
        /// Subject (optional).
        subject: Option<String>,
        /// HTML body.
        body: String,
    },
    /// `{"subject": …, "body": …, "bee_json": {…}}`.
    BeeEmail {
        /// Subject (optional).
        subject: Option<String>,
        /// HTML body.
        body: String,
        /// The Bee editor's source, kept as given.
        bee_json: Value,
    },
    /// `{"subject": …, "body": …, "uri": …}`.
    Push {
        /// Subject (optional).
        subject: Option<String>,
        /// Body.
        body: String,
        /// URI (optional).
        uri: Option<String>,
    },
}

impl TemplateContent {
    /// The template type of this content.
    pub fn kind(&self) -> TemplateType {
        match self {
            TemplateContent::Plain { .. } => TemplateType::Plain,
            TemplateContent::Email { .. } => TemplateType::Email,
            TemplateContent::BeeEmail { .. } => TemplateType::BeeEmail,
            TemplateContent::Push { .. } => TemplateType::Push,
        }
    }

    /// The body (text or HTML).
    pub fn body(&self) -> &str {
        match self {
            TemplateContent::Plain { body }
            | TemplateContent::Email { body, .. }
            | TemplateContent::BeeEmail { body, .. }
            | TemplateContent::Push { body, .. } => body,
        }
    }

    /// The subject, if the type has one and it is set.
    pub fn subject(&self) -> Option<&str> {
        match self {
            TemplateContent::Plain { .. } => None,
            TemplateContent::Email { subject, .. }
            | TemplateContent::BeeEmail { subject, .. }
            | TemplateContent::Push { subject, .. } => subject.as_deref(),
        }
    }

    fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        let mut put = |k: &str, v: Value| {
            map.insert(k.to_string(), v);
        };
        match self {
            TemplateContent::Plain { body } => put("body", body.clone().into()),
            TemplateContent::Email { subject, body } => {
                if let Some(s) = subject {
                    put("subject", s.clone().into());
                }
                put("body", body.clone().into());
            }
            TemplateContent::BeeEmail {
                subject,
                body,
                bee_json,
            } => {
                if let Some(s) = subject {
                    put("subject", s.clone().into());
                }
                put("body", body.clone().into());
                put("bee_json", bee_json.clone());
            }
            TemplateContent::Push { subject, body, uri } => {
                if let Some(s) = subject {
                    put("subject", s.clone().into());
                }
                put("body", body.clone().into());
                if let Some(u) = uri {
                    put("uri", u.clone().into());
                }
            }
        }
        Value::Object(map)
    }

    /// Reads `content` for a template of type `kind`; errors name the key (`content.body`).
    pub fn from_json(kind: TemplateType, content: Value) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Plain {
            body: String,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Email {
            #[serde(default)]
            subject: Option<String>,
            body: String,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Bee {
            #[serde(default)]
            subject: Option<String>,
            body: String,
            bee_json: serde_json::Map<String, Value>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Push {
            #[serde(default)]
            subject: Option<String>,
            body: String,
            #[serde(default)]
            uri: Option<String>,
        }
        fn read<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, String> {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                if path == "." {
                    format!("content: {}", e.inner())
                } else {
                    format!("content.{path}: {}", e.inner())
                }
            })
        }
        Ok(match kind {
            TemplateType::Plain => {
                let p: Plain = read(content)?;
                TemplateContent::Plain { body: p.body }
            }
            TemplateType::Email => {
                let e: Email = read(content)?;
                TemplateContent::Email {
                    subject: e.subject,
                    body: e.body,
                }
            }
            TemplateType::BeeEmail => {
                let b: Bee = read(content)?;
                TemplateContent::BeeEmail {
                    subject: b.subject,
                    body: b.body,
                    bee_json: Value::Object(b.bee_json),
                }
            }
            TemplateType::Push => {
                let p: Push = read(content)?;
                TemplateContent::Push {
                    subject: p.subject,
                    body: p.body,
                    uri: p.uri,
                }
            }
        })
    }
}

/// A field that may be absent, `null` or set, written back the way it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nullable<T> {
    /// Not in the JSON.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A value.
    Value(T),
}

impl<T> Nullable<T> {
    /// True when the key is absent.
    pub fn is_absent(&self) -> bool {
        matches!(self, Nullable::Absent)
    }

    /// The value, if set.
    pub fn value(&self) -> Option<&T> {
        match self {
            Nullable::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<T: Serialize> Serialize for Nullable<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Nullable::Value(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Nullable::Value(v),
            None => Nullable::Null,
        })
    }
}

/// A template: the content of a message on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Id.
    pub id: u64,
    /// Id of the wrapping template (kept as given: absent, `null` or a number).
    pub wrapper_id: Nullable<u64>,
    /// The typed content (its type is the template's `type`).
    pub content: TemplateContent,
    /// Time of creation.
    pub created_at: Timestamp,
    /// Time of last update.
    pub updated_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateJson {
    id: u64,
    #[serde(default, skip_serializing_if = "Nullable::is_absent")]
    wrapper_id: Nullable<u64>,
    #[serde(rename = "type")]
    kind: TemplateType,
    content: Value,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TemplateJson {
            id: self.id,
            wrapper_id: self.wrapper_id,
            kind: self.content.kind(),
            content: self.content.to_json(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = TemplateJson::deserialize(d)?;
        Ok(Template {
            id: raw.id,
            wrapper_id: raw.wrapper_id,
            content: TemplateContent::from_json(raw.kind, raw.content).map_err(D::Error::custom)?,
            created_at: raw.created_at,
            updated_at: raw.updated_at,
        })
    }
}

/// A Sending's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendingStatus {
    /// No schedule, or `draft: true`.
    Draft,
    /// Scheduled for a time.
    Scheduled,
    /// Building dispatches.
    Preparing,
    /// Dispatches built.
    Prepared,
    /// Dispatches being sent.
    Transmitting,
    /// Every dispatch was handed to Elarian.
    Transmitted,
    /// No recipient could be resolved.
    Skipped,
    /// Cancelled by the client.
    Cancelled,
    /// Not finished in time.
    Failed,
}

impl SendingStatus {
    /// Every status.
    pub const ALL: [SendingStatus; 9] = [
        SendingStatus::Draft,
        SendingStatus::Scheduled,
        SendingStatus::Preparing,
        SendingStatus::Prepared,
        SendingStatus::Transmitting,
        SendingStatus::Transmitted,
        SendingStatus::Skipped,
        SendingStatus::Cancelled,
        SendingStatus::Failed,
    ];

    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SendingStatus::Draft => "draft",
            SendingStatus::Scheduled => "scheduled",
            SendingStatus::Preparing => "preparing",
            SendingStatus::Prepared => "prepared",
            SendingStatus::Transmitting => "transmitting",
            SendingStatus::Transmitted => "transmitted",
            SendingStatus::Skipped => "skipped",
            SendingStatus::Cancelled => "cancelled",
            SendingStatus::Failed => "failed",
        }
    }

    /// A final outcome: transmitted, skipped, cancelled or failed.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SendingStatus::Transmitted
                | SendingStatus::Skipped
                | SendingStatus::Cancelled
                | SendingStatus::Failed
        )
    }

    /// An execution step: preparing, prepared or transmitting.
    pub fn is_executing(self) -> bool {
        matches!(
            self,
            SendingStatus::Preparing | SendingStatus::Prepared | SendingStatus::Transmitting
        )
    }
}

impl std::fmt::Display for SendingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Params a sending was scheduled with: `{"in": "15 minutes", "type": "relative"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledWith {
    /// How far ahead, e.g. `"15 minutes"`.
    #[serde(rename = "in")]
    pub within: String,
    /// Always `relative`.
    #[serde(rename = "type")]
    pub kind: ScheduleType,
}

/// Kind of schedule payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleType {
    /// Relative to the time of the request.
    Relative,
}

/// A member id: the seed's integer (an Elarian customer carrying the secondary id
/// `member_id` with that value) or an Elarian customer id string (`el_cst_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MemberId {
    /// An integer member id.
    Number(u64),
    /// An Elarian customer id.
    CustomerId(String),
}

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberId::Number(n) => write!(f, "{n}"),
            MemberId::CustomerId(s) => f.write_str(s),
        }
    }
}

/// A recipient: a member, or arbitrary identifiers, with merge-field `properties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// A member (an Elarian customer); other identifiers are then ignored.
    #[serde(default)]
    pub member_id: Option<MemberId>,
    /// Phone number.
    #[serde(default)]
    pub msisdn: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Push token (no Elarian channel delivers to it).
    #[serde(default)]
    pub app_token: Option<String>,
    /// Merge fields.
    #[serde(default)]
    pub properties: Option<BTreeMap<String, Value>>,
}

/// A Sending: one execution of a message, to recipients, at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sending {
    /// Id.
    pub id: u64,
    /// Audience the sending is directed to.
    #[serde(default)]
    pub audience_id: Option<u64>,
    /// Status.
    pub status: SendingStatus,
    /// Time of execution (`null` for a draft without one).
    #[serde(default)]
    pub scheduled_at: Option<Timestamp>,
    /// Params of a relative schedule.
    #[serde(default)]
    pub scheduled_with: Option<ScheduledWith>,
    /// Time of creation.
    pub created_at: Timestamp,
    /// Time of update.
    pub updated_at: Timestamp,
    /// Inline recipients.
    pub recipients: Vec<Recipient>,
}

/// The subset of a Sending shown as a Message's `latest_sending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSending {
    /// Id.
    pub id: u64,
    /// Status.
    pub status: SendingStatus,
    /// Audience.
    #[serde(default)]
    pub audience_id: Option<u64>,
    /// Number of inline recipients.
    pub recipients_count: u64,
    /// Time of execution.
    #[serde(default)]
    pub scheduled_at: Option<Timestamp>,
    /// Time of creation.
    pub created_at: Timestamp,
    /// Time of update.
    pub updated_at: Timestamp,
}

/// Creates a message: the Message's writable fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Name.
    pub name: String,
    /// See [`Message::shorten_urls`].
    #[serde(default)]
    pub shorten_urls: bool,
    /// See [`Message::track_in_shortener`].
    #[serde(default)]
    pub track_in_shortener: bool,
    /// Campaign id.
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// Service.
    #[serde(default)]
    pub service: Option<Service>,
    /// Channels (at least one; the first is used).
    pub channels: Vec<NewChannel>,
}

/// Creates a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// Channel type.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// Sender (sms, whatsapp, telegram, messenger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    /// Sender address (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_email: Option<String>,
    /// Sender name (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    /// The content.
    pub template: NewTemplate,
}

/// Creates a template.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    /// Wrapping template id.
    pub wrapper_id: Nullable<u64>,
    /// Content.
    pub content: TemplateContent,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTemplateJson {
    #[serde(default, skip_serializing_if = "Nullable::is_absent")]
    wrapper_id: Nullable<u64>,
    #[serde(rename = "type")]
    kind: TemplateType,
    content: Value,
}

impl Serialize for NewTemplate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        NewTemplateJson {
            wrapper_id: self.wrapper_id,
            kind: self.content.kind(),
            content: self.content.to_json(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for NewTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = NewTemplateJson::deserialize(d)?;
        Ok(NewTemplate {
            wrapper_id: raw.wrapper_id,
            content: TemplateContent::from_json(raw.kind, raw.content).map_err(D::Error::custom)?,
        })
    }
}

/// Creates or reschedules a sending. No schedule, or `draft: true`, makes a draft.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendingPayload {
    /// Stored audience to send to.
    #[serde(default)]
    pub audience_id: Option<u64>,
    /// Inline recipients.
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    /// Absolute time.
    #[serde(default)]
    pub scheduled_at: Option<Timestamp>,
    /// Relative schedule.
    #[serde(default)]
    pub scheduled_with: Option<ScheduledWith>,
    /// Keep it a draft even with a schedule.
    #[serde(default)]
    pub draft: bool,
}

/// Reschedules a sending (or makes it a draft again): the schedule fields of [`SendingPayload`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePayload {
    /// Absolute time.
    #[serde(default)]
    pub scheduled_at: Option<Timestamp>,
    /// Relative schedule.
    #[serde(default)]
    pub scheduled_with: Option<ScheduledWith>,
    /// Make it a draft.
    #[serde(default)]
    pub draft: bool,
}

/// A stored list of recipients a Sending can be directed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Number of recipients.
    pub recipients_count: u64,
    /// Time of creation.
    pub created_at: Timestamp,
    /// Time of update.
    pub updated_at: Timestamp,
}

/// Creates or replaces an audience.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudiencePayload {
    /// Name.
    pub name: String,
    /// Recipients.
    #[serde(default)]
    pub recipients: Vec<Recipient>,
}
