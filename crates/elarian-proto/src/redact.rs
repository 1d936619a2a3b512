//! `Debug` for the messages that carry credentials: every field is shown except the secret,
//! which reads `<redacted>` when set. The derived `Debug` of these messages is switched off in
//! the code generator (`SECRET_MESSAGES` in xtask), so a log line or a panic message that
//! formats one of them never prints an API key or a token.

use std::fmt;

use crate::{AppConnectionMetadata, GenerateAuthTokenReply, MessageReplyToken, OutboundMessage};

/// How a secret field is shown: whether it is set, never its value.
fn secret(value: Option<&str>) -> &'static str {
    match value {
        Some(_) => "<redacted>",
        None => "None",
    }
}

impl fmt::Debug for AppConnectionMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConnectionMetadata")
            .field("org_id", &self.org_id)
            .field("app_id", &self.app_id)
            .field(
                "api_key",
                &format_args!("{}", secret(self.api_key.as_deref())),
            )
            .field(
                "auth_token",
                &format_args!("{}", secret(self.auth_token.as_deref())),
            )
            .field("simplex_mode", &self.simplex_mode)
            .field("simulator_mode", &self.simulator_mode)
            .finish()
    }
}

impl fmt::Debug for GenerateAuthTokenReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateAuthTokenReply")
            .field("token", &format_args!("{}", secret(Some(&self.token))))
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl fmt::Debug for MessageReplyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageReplyToken")
            .field("token", &format_args!("{}", secret(Some(&self.token))))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for OutboundMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundMessage")
            .field("body", &self.body)
            .field("labels", &self.labels)
            .field("provider_tag", &self.provider_tag)
            .field(
                "reply_token",
                &format_args!("{}", secret(self.reply_token.as_deref())),
            )
            .field("reply_prompt", &self.reply_prompt)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "el_k_test_secret_key_value";
    const TOKEN: &str = "secret-auth-token-value";

    #[test]
    fn connection_metadata_hides_the_api_key_and_the_auth_token() {
        let meta = AppConnectionMetadata {
            org_id: "el_org_1".into(),
            app_id: "el_app_1".into(),
            api_key: Some(KEY.into()),
            auth_token: Some(TOKEN.into()),
            simplex_mode: true,
            simulator_mode: false,
        };
        for text in [format!("{meta:?}"), format!("{meta:#?}")] {
            assert!(!text.contains(KEY) && !text.contains(TOKEN), "{text}");
            assert!(
                text.contains("el_org_1") && text.contains("el_app_1"),
                "{text}"
            );
            assert!(text.contains("<redacted>"), "{text}");
        }
        let none = AppConnectionMetadata::default();
        assert!(format!("{none:?}").contains("api_key: None"));
    }

    #[test]
    fn auth_token_reply_hides_the_token() {
        let reply = GenerateAuthTokenReply {
            token: TOKEN.into(),
            lifetime: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
        };
        let text = format!("{reply:?}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains("3600"), "{text}");
    }

    #[test]
    fn reply_token_hides_the_token() {
        let token = MessageReplyToken {
            token: TOKEN.into(),
            expires_at: None,
        };
        let text = format!("{token:?}");
        assert!(!text.contains(TOKEN), "{text}");
    }

    #[test]
    fn nested_in_a_command_reply_the_token_stays_hidden() {
        use crate::{AppToServerCommandReply, app_to_server_command_reply::Entry};
        let reply = AppToServerCommandReply {
            entry: Some(Entry::GenerateAuthToken(GenerateAuthTokenReply {
                token: TOKEN.into(),
                lifetime: None,
            })),
        };
        assert!(!format!("{reply:?}").contains(TOKEN));
    }

    #[test]
    fn an_outbound_message_hides_its_reply_token() {
        let message = OutboundMessage {
            body: Some(crate::OutboundMessageBody {
                entry: Some(crate::outbound_message_body::Entry::Text("hi there".into())),
            }),
            labels: vec!["label-1".into()],
            reply_token: Some(TOKEN.into()),
            ..Default::default()
        };
        let text = format!("{message:?}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(
            text.contains("hi there") && text.contains("label-1"),
            "{text}"
        );
        assert!(format!("{:?}", OutboundMessage::default()).contains("reply_token: None"));
    }
}
