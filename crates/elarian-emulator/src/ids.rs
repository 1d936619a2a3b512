//! Identifier generation for customers, messages, sessions, transactions, work items and tokens.
//!
//! Ids are random base-62 strings behind Elarian-like prefixes. Ids name records and are no
//! secret, so they come from the fast `fastrand`. Auth tokens are credentials: anyone holding one
//! connects as the app, so they come from the operating system's CSPRNG (`ring`'s
//! `SystemRandom`), with rejection sampling so every character is uniform.

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random(prefix: &str, len: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    for _ in 0..len {
        out.push(ALPHABET[fastrand::usize(..ALPHABET.len())] as char);
    }
    out
}

/// A new customer id (`el_cst_…`).
pub(crate) fn customer_id() -> String {
    random("el_cst_", 20)
}
/// A new message id (`el_msg_…`).
pub(crate) fn message_id() -> String {
    random("el_msg_", 20)
}
/// A new messaging session id (`el_ses_…`).
pub(crate) fn session_id() -> String {
    random("el_ses_", 20)
}
/// A new payment transaction id (`el_txn_…`).
pub(crate) fn transaction_id() -> String {
    random("el_txn_", 20)
}
/// A new work id for tag commands (`el_wrk_…`).
pub(crate) fn work_id() -> String {
    random("el_wrk_", 20)
}
/// Why a secret could not be generated.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the system random number generator failed")]
pub(crate) struct RandomError;

/// A new auth token (`el_tkn_…`, 48 base-62 characters: about 285 bits), from the system CSPRNG.
pub(crate) fn auth_token() -> Result<String, RandomError> {
    secure_random(AUTH_TOKEN_PREFIX, 48)
}

/// What every auth token starts with.
pub(crate) const AUTH_TOKEN_PREFIX: &str = "el_tkn_";

/// The key an auth token is stored and looked up under: the hex SHA-256 of the token, so the
/// data dir never holds a token that could be replayed.
pub(crate) fn token_key(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Whether two secrets are equal, in a time that depends on neither: their SHA-256 digests
/// (of fixed length) are compared without an early exit.
pub(crate) fn secrets_equal(a: &str, b: &str) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a.as_bytes());
    let db = ring::digest::digest(&ring::digest::SHA256, b.as_bytes());
    let diff = da
        .as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn secure_random(prefix: &str, len: usize) -> Result<String, RandomError> {
    use ring::rand::{SecureRandom, SystemRandom};
    // 62 * 4 = 248: bytes at or above it are rejected so that `b % 62` has no bias.
    const LIMIT: u8 = 248;
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    let mut buf = [0u8; 64];
    while out.len() < prefix.len() + len {
        rng.fill(&mut buf).map_err(|_| RandomError)?;
        for b in buf {
            if b < LIMIT && out.len() < prefix.len() + len {
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_have_prefix_and_differ() {
        let a = super::customer_id();
        let b = super::customer_id();
        assert!(a.starts_with("el_cst_") && a.len() == 27);
        assert_ne!(a, b);
    }

    #[test]
    fn token_keys_are_sha256_hex_and_not_the_token() {
        let token = super::auth_token().unwrap();
        let key = super::token_key(&token);
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!key.contains(&token[7..]));
        assert_eq!(key, super::token_key(&token));
        // SHA-256("abc"), from FIPS 180-2.
        assert_eq!(
            super::token_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(super::secrets_equal("el_k_test_1", "el_k_test_1"));
        assert!(!super::secrets_equal("el_k_test_1", "el_k_test_2"));
        assert!(!super::secrets_equal("el_k_test_1", "el_k_test_10"));
    }

    #[test]
    fn auth_tokens_are_long_base62_and_differ() {
        let a = super::auth_token().unwrap();
        let b = super::auth_token().unwrap();
        assert!(a.starts_with("el_tkn_") && a.len() == 7 + 48, "{a}");
        assert!(a[7..].bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }
}
