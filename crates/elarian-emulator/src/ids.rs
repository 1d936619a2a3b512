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
    secure_random("el_tkn_", 48)
}

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
    fn auth_tokens_are_long_base62_and_differ() {
        let a = super::auth_token().unwrap();
        let b = super::auth_token().unwrap();
        assert!(a.starts_with("el_tkn_") && a.len() == 7 + 48, "{a}");
        assert!(a[7..].bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }
}
