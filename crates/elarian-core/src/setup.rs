//! The SETUP frame contents, exactly as the published clients send them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use elarian_proto::AppConnectionMetadata;
use prost::Message;

use crate::config::{ClientConfig, Credentials, Role};

/// MIME type of the SETUP data and of every payload's data.
pub const DATA_MIME_TYPE: &str = "application/octet-stream";
/// MIME type of the SETUP metadata (the JavaScript client's choice; it holds JSON).
pub const METADATA_MIME_TYPE: &str = "application/json";

/// The SETUP metadata: `{"agent":"rust/<version>"}`, like the JavaScript client's
/// `{"agent":"javascript/0.2.25"}`.
pub fn agent_metadata() -> Bytes {
    // The version is a plain semver string, so it needs no JSON escaping.
    Bytes::from(format!(
        "{{\"agent\":\"rust/{}\"}}",
        env!("CARGO_PKG_VERSION")
    ))
}

/// The `AppConnectionMetadata` a config authenticates with.
///
/// `simulator_mode` is set for the simulator role and `simplex_mode` is
/// `!allow_notifications` for both roles: a simulator must receive its notifications (the
/// messages the app sends to the simulated customer), so it is not forced into simplex mode as
/// the JavaScript client does.
pub fn connection_metadata(config: &ClientConfig) -> AppConnectionMetadata {
    let (api_key, auth_token) = match config.credentials() {
        Credentials::ApiKey(key) => (Some(key.expose().to_owned()), None),
        Credentials::AuthToken(token) => (None, Some(token.expose().to_owned())),
    };
    AppConnectionMetadata {
        org_id: config.org_id().to_owned(),
        app_id: config.app_id().to_owned(),
        api_key,
        auth_token,
        simplex_mode: !config.allow_notifications(),
        simulator_mode: config.role() == Role::Simulator,
    }
}

/// The SETUP data: the serialized [`connection_metadata`].
pub(crate) fn setup_data(config: &ClientConfig) -> Bytes {
    Bytes::from(connection_metadata(config).encode_to_vec())
}

/// A fresh resume token `<appId>-<epoch millis>`, like the JavaScript client's. Tokens made by
/// one process are strictly increasing, so two sessions opened within the same millisecond still
/// get distinct tokens.
pub(crate) fn resume_token(app_id: &str) -> Bytes {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    let millis = loop {
        let next = now.max(prev.saturating_add(1));
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(actual) => prev = actual,
        }
    };
    Bytes::from(format!("{app_id}-{millis}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tokens_are_distinct() {
        let a = resume_token("el_app_1");
        let b = resume_token("el_app_1");
        assert_ne!(a, b);
        assert!(a.starts_with(b"el_app_1-"));
    }

    #[test]
    fn agent_is_json() {
        let meta = agent_metadata();
        let text = std::str::from_utf8(&meta).unwrap();
        assert!(text.starts_with("{\"agent\":\"rust/"));
        assert!(text.ends_with("\"}"));
    }
}
