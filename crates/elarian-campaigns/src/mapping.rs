//! How campaign channels, templates and recipients map onto Elarian (see the table in
//! `docs/campaigns.md`).

use std::collections::BTreeMap;

use elarian_sdk::{
    CustomerNumber, CustomerNumberProvider, CustomerState, DataValue, Email, Message, MessageBody,
    MessagingChannelNumber,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CampaignError;
use crate::model::{ChannelType, NewChannel, Recipient, SenderType, TemplateContent, TemplateType};
use crate::template::{Compiled, SmsInfo, TemplateError, html_to_text, sms_info};

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CampaignError {
    CampaignError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// True for an MSISDN: an optional `+` and 7 to 15 digits.
pub fn is_msisdn(text: &str) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An MSISDN in the `+<digits>` form Elarian uses (spaces and dashes dropped).
pub fn normalize_msisdn(text: &str) -> Option<String> {
    let cleaned: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if !is_msisdn(&cleaned) {
        return None;
    }
    Some(if cleaned.starts_with('+') {
        cleaned
    } else {
        format!("+{cleaned}")
    })
}

/// Checks a channel to create: its type is an Elarian channel, its sender is valid for the type,
/// its template type fits the channel and its template compiles.
pub(crate) fn validate_channel(index: usize, c: &NewChannel) -> Result<(), CampaignError> {
    let at = |f: &str| format!("channels[{index}].{f}");
    match c.kind {
        ChannelType::Push => {
            return Err(invalid(
                at("type"),
                "`push` is not an Elarian channel: use sms, email, whatsapp, telegram or messenger",
            ));
        }
        ChannelType::Sms => {
            let sender = c
                .sender
                .as_ref()
                .ok_or_else(|| invalid(at("sender"), "an sms channel needs a sender"))?;
            match sender.kind {
                SenderType::Alphanumeric => {
                    let n = sender.value.chars().count();
                    if !(2..=11).contains(&n)
                        || !sender
                            .value
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == ' ')
                        || sender.value.trim().is_empty()
                    {
                        return Err(invalid(
                            at("sender.value"),
                            "an alphanumeric sender is 2 to 11 letters, digits or spaces",
                        ));
                    }
                }
                SenderType::International => {
                    if !is_msisdn(&sender.value) {
                        return Err(invalid(
                            at("sender.value"),
                            "an international sender is an MSISDN (+ and 7 to 15 digits)",
                        ));
                    }
                }
            }
        }
        ChannelType::Whatsapp | ChannelType::Telegram | ChannelType::Messenger => {
            let sender = c.sender.as_ref().ok_or_else(|| {
                invalid(
                    at("sender"),
                    "the app's channel number goes in sender.value",
                )
            })?;
            if sender.value.trim().is_empty() {
                return Err(invalid(at("sender.value"), "must not be empty"));
            }
            if c.kind == ChannelType::Whatsapp && !is_msisdn(&sender.value) {
                return Err(invalid(
                    at("sender.value"),
                    "a WhatsApp number is an MSISDN",
                ));
            }
        }
        ChannelType::Email => {
            let from = c
                .from_email
                .as_deref()
                .ok_or_else(|| invalid(at("from_email"), "an email channel needs from_email"))?;
            if !is_email(from) {
                return Err(invalid(at("from_email"), "not an email address"));
            }
        }
    }
    if c.kind != ChannelType::Email && (c.from_email.is_some() || c.from_name.is_some()) {
        return Err(invalid(
            at("from_email"),
            "only email channels have from_email and from_name",
        ));
    }
    if c.kind == ChannelType::Email && c.sender.is_some() {
        return Err(invalid(
            at("sender"),
            "email channels have from_email, not sender",
        ));
    }
    let kind = c.template.content.kind();
    let fits = match kind {
        TemplateType::Plain => true,
        TemplateType::Email | TemplateType::BeeEmail => c.kind == ChannelType::Email,
        TemplateType::Push => false,
    };
    if !fits {
        return Err(invalid(
            at("template.type"),
            format!(
                "a {} template cannot be used on an {} channel",
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                c.kind.as_str()
            ),
        ));
    }
    for (name, text) in [
        ("body", Some(c.template.content.body())),
        ("subject", c.template.content.subject()),
    ] {
        if let Some(text) = text {
            Compiled::new(text)
                .map_err(|e| invalid(at(&format!("template.content.{name}")), e.to_string()))?;
        }
    }
    if c.template.content.body().trim().is_empty() {
        return Err(invalid(at("template.content.body"), "must not be empty"));
    }
    Ok(())
}

/// A rough email address check: one `@` with text on both sides and a dot in the domain.
pub fn is_email(text: &str) -> bool {
    let mut parts = text.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

/// The app's Elarian channel number a campaign channel sends from.
pub(crate) fn channel_number(
    kind: ChannelType,
    sender: Option<&str>,
    from_email: Option<&str>,
) -> Option<MessagingChannelNumber> {
    Some(match kind {
        ChannelType::Sms => MessagingChannelNumber::sms(sender?),
        ChannelType::Whatsapp => MessagingChannelNumber::whatsapp(sender?),
        ChannelType::Telegram => MessagingChannelNumber::telegram(sender?),
        ChannelType::Messenger => MessagingChannelNumber::fb_messenger(sender?),
        ChannelType::Email => MessagingChannelNumber::email(from_email?),
        ChannelType::Push => return None,
    })
}

/// The customer-number provider a channel delivers to.
pub(crate) fn provider_for(kind: ChannelType) -> CustomerNumberProvider {
    match kind {
        ChannelType::Sms | ChannelType::Whatsapp | ChannelType::Push => {
            CustomerNumberProvider::Cellular
        }
        ChannelType::Email => CustomerNumberProvider::Email,
        ChannelType::Telegram => CustomerNumberProvider::Telegram,
        ChannelType::Messenger => CustomerNumberProvider::Facebook,
    }
}

/// Why a recipient gets no dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum SkipReason {
    /// The recipient has no value for a merge field.
    MissingMergeField(String),
    /// No identifier for the message's channel (e.g. no msisdn for sms).
    NoIdentifier,
    /// The identifier is malformed (e.g. an msisdn that is not one).
    InvalidIdentifier,
    /// The member could not be read from Elarian (unknown customer, or the read failed).
    MemberNotFound,
    /// The rendered content is empty.
    EmptyContent,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::MissingMergeField(name) => write!(f, "missing merge field `{name}`"),
            SkipReason::NoIdentifier => f.write_str("no identifier for the channel"),
            SkipReason::InvalidIdentifier => f.write_str("invalid identifier"),
            SkipReason::MemberNotFound => f.write_str("member not found"),
            SkipReason::EmptyContent => f.write_str("empty content"),
        }
    }
}

/// The identifier an inline (non-member) recipient is reached at on `kind`, normalized.
pub(crate) fn inline_number(
    kind: ChannelType,
    r: &Recipient,
) -> Result<CustomerNumber, SkipReason> {
    match kind {
        ChannelType::Sms | ChannelType::Whatsapp => {
            let raw = r.msisdn.as_deref().filter(|m| !m.trim().is_empty());
            let raw = raw.ok_or(SkipReason::NoIdentifier)?;
            normalize_msisdn(raw)
                .map(CustomerNumber::cellular)
                .ok_or(SkipReason::InvalidIdentifier)
        }
        ChannelType::Email => {
            let raw = r.email.as_deref().filter(|m| !m.trim().is_empty());
            let raw = raw.ok_or(SkipReason::NoIdentifier)?.trim();
            if is_email(raw) {
                Ok(CustomerNumber::email(raw.to_ascii_lowercase()))
            } else {
                Err(SkipReason::InvalidIdentifier)
            }
        }
        // No seed identifier names a Telegram or Messenger account: only members reach them.
        ChannelType::Telegram | ChannelType::Messenger | ChannelType::Push => {
            Err(SkipReason::NoIdentifier)
        }
    }
}

/// The member's number for `kind` (a `Cellular` number also serves an unspecified provider).
pub(crate) fn member_number(kind: ChannelType, state: &CustomerState) -> Option<CustomerNumber> {
    let wanted = provider_for(kind);
    state
        .customer_numbers()
        .into_iter()
        .find(|n| {
            n.provider == wanted
                || (wanted == CustomerNumberProvider::Cellular
                    && n.provider == CustomerNumberProvider::Unspecified)
        })
        .cloned()
}

/// A metadata value as a merge field (JSON as is; text that is not JSON as a string).
pub(crate) fn data_value_to_json(v: &DataValue) -> Option<Value> {
    match v {
        DataValue::Json(v) => Some(v.clone()),
        DataValue::Text(t) => {
            Some(serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())))
        }
        DataValue::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .map(|s| Value::String(s.to_string())),
    }
}

/// A channel's template, compiled once per sending.
#[derive(Debug, Clone)]
pub(crate) struct Renderer {
    kind: ChannelType,
    html: bool,
    subject: Option<Compiled>,
    body: Compiled,
}

/// What a dispatch sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DispatchContent {
    /// A text message (SMS or chat).
    Text {
        /// The rendered text.
        text: String,
    },
    /// An email.
    Email {
        /// Rendered subject.
        subject: String,
        /// Rendered HTML body (merge values escaped).
        html: String,
        /// Plain-text version.
        plain: String,
    },
}

impl DispatchContent {
    /// The Elarian message.
    pub(crate) fn to_message(&self) -> Message {
        match self {
            DispatchContent::Text { text } => Message::text(text.clone()),
            DispatchContent::Email {
                subject,
                html,
                plain,
            } => Message::new(MessageBody::Email(Email {
                subject: subject.clone(),
                body_plain: plain.clone(),
                body_html: html.clone(),
                cc_list: Vec::new(),
                bcc_list: Vec::new(),
            })),
        }
    }
}

impl Renderer {
    pub(crate) fn new(kind: ChannelType, content: &TemplateContent) -> Result<Self, TemplateError> {
        let html = matches!(content.kind(), TemplateType::Email | TemplateType::BeeEmail);
        Ok(Renderer {
            kind,
            html,
            subject: content.subject().map(Compiled::new).transpose()?,
            body: Compiled::new(content.body())?,
        })
    }

    pub(crate) fn render(
        &self,
        fields: &BTreeMap<String, Value>,
    ) -> Result<(DispatchContent, Option<SmsInfo>), SkipReason> {
        let missing = |e: TemplateError| match e {
            TemplateError::MissingField(f) => SkipReason::MissingMergeField(f),
            _ => SkipReason::EmptyContent,
        };
        let body = self.body.render(fields, self.html).map_err(missing)?;
        if body.trim().is_empty() {
            return Err(SkipReason::EmptyContent);
        }
        if self.kind == ChannelType::Email {
            let subject = match &self.subject {
                Some(s) => s.render(fields, false).map_err(missing)?,
                None => String::new(),
            };
            let (html, plain) = if self.html {
                let plain = html_to_text(&body);
                (body, plain)
            } else {
                (String::new(), body)
            };
            return Ok((
                DispatchContent::Email {
                    subject,
                    html,
                    plain,
                },
                None,
            ));
        }
        let sms = (self.kind == ChannelType::Sms).then(|| sms_info(&body));
        Ok((DispatchContent::Text { text: body }, sms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewTemplate, Nullable, Sender};

    fn sms(kind: SenderType, value: &str) -> NewChannel {
        NewChannel {
            kind: ChannelType::Sms,
            sender: Some(Sender {
                kind,
                value: value.into(),
            }),
            from_email: None,
            from_name: None,
            template: NewTemplate {
                wrapper_id: Nullable::Absent,
                content: TemplateContent::Plain {
                    body: "Hi {{name}}".into(),
                },
            },
        }
    }

    #[test]
    fn sms_senders_are_validated_as_the_seed_says() {
        assert!(validate_channel(0, &sms(SenderType::Alphanumeric, "Infinity")).is_ok());
        assert!(validate_channel(0, &sms(SenderType::Alphanumeric, "AB")).is_ok());
        assert!(validate_channel(0, &sms(SenderType::Alphanumeric, "83044")).is_ok());
        for bad in ["A", "ABCDEFGHIJKL", "Bad!", "  "] {
            let err = validate_channel(0, &sms(SenderType::Alphanumeric, bad)).unwrap_err();
            assert!(
                err.to_string().contains("channels[0].sender.value"),
                "{err}"
            );
        }
        assert!(validate_channel(0, &sms(SenderType::International, "+4740485124")).is_ok());
        assert!(validate_channel(0, &sms(SenderType::International, "4740485124")).is_ok());
        assert!(validate_channel(0, &sms(SenderType::International, "Infinity")).is_err());
        assert!(validate_channel(0, &sms(SenderType::International, "+12")).is_err());
    }

    #[test]
    fn push_and_mismatched_templates_are_rejected() {
        let mut push = sms(SenderType::Alphanumeric, "Infinity");
        push.kind = ChannelType::Push;
        let err = validate_channel(1, &push).unwrap_err();
        assert!(err.to_string().contains("channels[1].type"), "{err}");
        assert!(err.to_string().contains("not an Elarian channel"), "{err}");

        let mut email_on_sms = sms(SenderType::Alphanumeric, "Infinity");
        email_on_sms.template.content = TemplateContent::Email {
            subject: None,
            body: "<b>x</b>".into(),
        };
        assert!(validate_channel(0, &email_on_sms).is_err());

        let email = NewChannel {
            kind: ChannelType::Email,
            sender: None,
            from_email: Some("news@example.com".into()),
            from_name: Some("News".into()),
            template: NewTemplate {
                wrapper_id: Nullable::Null,
                content: TemplateContent::BeeEmail {
                    subject: Some("Hi {{name}}".into()),
                    body: "<b>Hei {{name}}</b>".into(),
                    bee_json: serde_json::json!({}),
                },
            },
        };
        assert!(validate_channel(0, &email).is_ok());
        let mut no_from = email.clone();
        no_from.from_email = None;
        assert!(validate_channel(0, &no_from).is_err());

        let mut bad_template = sms(SenderType::Alphanumeric, "Infinity");
        bad_template.template.content = TemplateContent::Plain {
            body: "Hi {{name".into(),
        };
        let err = validate_channel(0, &bad_template).unwrap_err();
        assert!(err.to_string().contains("template.content.body"), "{err}");
    }

    #[test]
    fn inline_identifiers_per_channel() {
        let r = Recipient {
            msisdn: Some("4740 485124".into()),
            email: Some("Ann@Example.com".into()),
            ..Default::default()
        };
        assert_eq!(
            inline_number(ChannelType::Sms, &r).unwrap(),
            CustomerNumber::cellular("+4740485124")
        );
        assert_eq!(
            inline_number(ChannelType::Email, &r).unwrap(),
            CustomerNumber::email("ann@example.com")
        );
        assert_eq!(
            inline_number(ChannelType::Telegram, &r),
            Err(SkipReason::NoIdentifier)
        );
        let none = Recipient::default();
        assert_eq!(
            inline_number(ChannelType::Sms, &none),
            Err(SkipReason::NoIdentifier)
        );
        let bad = Recipient {
            msisdn: Some("call me".into()),
            ..Default::default()
        };
        assert_eq!(
            inline_number(ChannelType::Sms, &bad),
            Err(SkipReason::InvalidIdentifier)
        );
    }

    #[test]
    fn email_rendering_escapes_values_and_derives_plain_text() {
        let r = Renderer::new(
            ChannelType::Email,
            &TemplateContent::Email {
                subject: Some("Hi {{name}}".into()),
                body: "<b>Hei {{name}}</b>".into(),
            },
        )
        .unwrap();
        let fields = BTreeMap::from([("name".to_string(), Value::String("<Ann & Bo>".into()))]);
        let (content, sms) = r.render(&fields).unwrap();
        assert_eq!(sms, None);
        assert_eq!(
            content,
            DispatchContent::Email {
                subject: "Hi <Ann & Bo>".into(),
                html: "<b>Hei &lt;Ann &amp; Bo&gt;</b>".into(),
                plain: "Hei <Ann & Bo>".into(),
            }
        );
        assert_eq!(
            r.render(&BTreeMap::new()),
            Err(SkipReason::MissingMergeField("name".into()))
        );
    }
}
