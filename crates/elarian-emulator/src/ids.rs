//! Identifier generation for customers, messages, sessions, transactions, work items and tokens.
//!
//! Ids are random base-62 strings behind Elarian-like prefixes. They come from `fastrand`, which is
//! fine for a local emulator but not a cryptographic source: emulator auth tokens only protect a
//! development server.

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
pub fn customer_id() -> String {
    random("el_cst_", 20)
}
/// A new message id (`el_msg_…`).
pub fn message_id() -> String {
    random("el_msg_", 20)
}
/// A new messaging session id (`el_ses_…`).
pub fn session_id() -> String {
    random("el_ses_", 20)
}
/// A new payment transaction id (`el_txn_…`).
pub fn transaction_id() -> String {
    random("el_txn_", 20)
}
/// A new work id for tag commands (`el_wrk_…`).
pub fn work_id() -> String {
    random("el_wrk_", 20)
}
/// A new auth token (`el_tkn_…`).
pub fn auth_token() -> String {
    random("el_tkn_", 48)
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
}
