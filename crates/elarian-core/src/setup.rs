//! The SETUP frame contents, exactly as the published clients send them.

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

/// Bytes of randomness in a resume token (256 bits; the floor for an unguessable token is 128).
const RESUME_TOKEN_BYTES: usize = 32;

/// A fresh resume token: 256 bits from the operating system's CSPRNG, hex-encoded so that it
/// is plain ASCII for every RSocket implementation (some treat tokens as strings).
///
/// The token is the only thing that authorizes a RESUME, so it is never derived from the app
/// id or the time (the JavaScript client's `<appId>-<epoch millis>` can be guessed within a
/// second's window). `None` when the operating system has no randomness to give, in which case
/// the session is opened without resumption rather than with a guessable token.
pub(crate) fn resume_token() -> Option<Bytes> {
    let mut raw = [0u8; RESUME_TOKEN_BYTES];
    if getrandom::getrandom(&mut raw).is_err() {
        tracing::warn!("no system randomness for a resume token; connecting without resumption");
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = Vec::with_capacity(RESUME_TOKEN_BYTES * 2);
    for b in raw {
        hex.push(HEX[usize::from(b >> 4)]);
        hex.push(HEX[usize::from(b & 0x0f)]);
    }
    Some(Bytes::from(hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tokens_are_random_hex_of_256_bits() {
        let a = resume_token().unwrap();
        let b = resume_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.iter().all(|c| c.is_ascii_hexdigit()));
        // Nothing of the app id or the clock in it.
        assert!(!a.starts_with(b"el_app"));
        // 256 random bits: both halves differ between two tokens (a counter would not).
        assert_ne!(a[..32], b[..32]);
        assert_ne!(a[32..], b[32..]);
    }

    #[test]
    fn agent_is_json() {
        let meta = agent_metadata();
        let text = std::str::from_utf8(&meta).unwrap();
        assert!(text.starts_with("{\"agent\":\"rust/"));
        assert!(text.ends_with("\"}"));
    }
}
