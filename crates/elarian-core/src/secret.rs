//! A credential that never shows up in logs.

use std::fmt;

/// A secret string (API key or auth token).
///
/// `Debug` and `Display` print `"<redacted>"`, so a config, an error or a `tracing` field that
/// includes it cannot leak the value. The value is only reachable through
/// [`expose`](Secret::expose), which the runtime calls once per connection attempt to build the
/// SETUP payload.
///
/// ```
/// use elarian_core::Secret;
///
/// let key = Secret::new("el_k_test_123");
/// assert_eq!(format!("{key:?}"), "Secret(<redacted>)");
/// assert_eq!(key.expose(), "el_k_test_123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("el_k_test_abc");
        assert!(!format!("{s:?}").contains("abc"));
        assert!(!format!("{s}").contains("abc"));
        assert!(!format!("{:#?}", Some(&s)).contains("abc"));
    }
}
