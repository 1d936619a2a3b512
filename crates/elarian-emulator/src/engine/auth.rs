//! Authentication: the credentials a SETUP carries, and the auth tokens apps generate.

use elarian_proto::{AppConnectionMetadata, app_to_server_command_reply::Entry as ReplyEntry};

use crate::record::TokenRecord;

use super::{Engine, Identity, Tx};

/// Why a SETUP was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an API key nor an auth token was given.
    #[error("missing credentials: an api_key or an auth_token is required")]
    MissingCredentials,
    /// The org id is not configured.
    #[error("unknown organization {0}")]
    UnknownOrg(String),
    /// The app id is not configured in the org.
    #[error("unknown app {app} in organization {org}")]
    UnknownApp {
        /// Org id.
        org: String,
        /// App id.
        app: String,
    },
    /// The API key is not one of the app's keys.
    #[error("invalid API key for app {0}")]
    InvalidApiKey(String),
    /// The auth token is unknown or issued to another app.
    #[error("invalid auth token")]
    InvalidToken,
    /// The auth token's lifetime is over.
    #[error("expired auth token")]
    ExpiredToken,
}

impl Engine {
    /// Checks a SETUP's credentials: an API key of the app, or an unexpired token issued to it.
    pub fn authenticate(&self, meta: &AppConnectionMetadata) -> Result<Identity, AuthError> {
        let org = self
            .config
            .org(&meta.org_id)
            .ok_or_else(|| AuthError::UnknownOrg(meta.org_id.clone()))?;
        let app = org.app(&meta.app_id).ok_or_else(|| AuthError::UnknownApp {
            org: meta.org_id.clone(),
            app: meta.app_id.clone(),
        })?;
        match (&meta.api_key, &meta.auth_token) {
            (Some(key), _) if !key.is_empty() => {
                // Compared in constant time: how long a refusal takes says nothing of how
                // much of a guessed key was right.
                let matches = |k: &String| crate::ids::secrets_equal(k, key);
                if !app.api_keys.iter().any(matches) {
                    return Err(AuthError::InvalidApiKey(app.id.clone()));
                }
            }
            (_, Some(token)) if !token.is_empty() => {
                let st = self.lock();
                // Tokens are kept by their hash (see `ids::token_key`).
                let rec = st
                    .tokens
                    .get(&crate::ids::token_key(token))
                    .ok_or(AuthError::InvalidToken)?;
                if rec.org_id != meta.org_id || rec.app_id != meta.app_id {
                    return Err(AuthError::InvalidToken);
                }
                if rec.expires_at <= self.now() {
                    return Err(AuthError::ExpiredToken);
                }
            }
            _ => return Err(AuthError::MissingCredentials),
        }
        Ok(Identity {
            org_id: meta.org_id.clone(),
            app_id: meta.app_id.clone(),
            simulator: meta.simulator_mode,
            simplex: meta.simplex_mode,
        })
    }
}

impl Tx<'_> {
    pub(super) fn generate_auth_token(&mut self, lifetime: std::time::Duration) -> ReplyEntry {
        let token = match crate::ids::auth_token() {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, "no auth token generated");
                // The reply type has no status field; an update reply with status=false is
                // how every other failure reaches the app.
                return ReplyEntry::UpdateCustomerState(elarian_proto::UpdateCustomerStateReply {
                    status: false,
                    description: format!("cannot generate an auth token: {e}"),
                    customer_id: None,
                });
            }
        };
        let millis = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        let now = self.now;
        // Expired tokens are dropped here so the table does not grow without bound.
        let expired: Vec<String> = self
            .st
            .tokens
            .iter()
            .filter(|(_, t)| t.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.st.tokens.remove(&k);
            self.st.dirty.tokens.push(k);
        }
        // Kept (in memory and in the data dir) by its hash only; the app gets the token.
        let key = crate::ids::token_key(&token);
        self.st.tokens.insert(
            key.clone(),
            TokenRecord {
                org_id: self.org_id(),
                app_id: self.app.to_owned(),
                expires_at: now.saturating_add(millis),
            },
        );
        self.st.dirty.tokens.push(key);
        ReplyEntry::GenerateAuthToken(elarian_proto::GenerateAuthTokenReply {
            token,
            lifetime: Some(crate::clock::to_duration(millis)),
        })
    }
}
