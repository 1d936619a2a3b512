//! Reading JSON with errors that name the field (`channels[0].type: unknown variant ...`).

use serde::de::DeserializeOwned;

/// JSON that does not decode into the expected resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at `{path}`: {message}")]
pub struct JsonError {
    /// Where: a path such as `channels[0].sender.type`, or `.` for the document itself.
    pub path: String,
    /// What is wrong (an unknown enum value, a missing or unexpected field, a syntax error, …).
    pub message: String,
}

/// Decodes `text` as `T`; the error names the offending field.
///
/// ```
/// use elarian_campaigns::{from_json, Sender};
/// let err = from_json::<Sender>(r#"{"type": "shortcode", "value": "83044"}"#).unwrap_err();
/// assert_eq!(err.path, "type");
/// assert!(err.message.contains("shortcode"));
/// ```
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    from_slice(text.as_bytes())
}

/// [`from_json`] on bytes.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| JsonError {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    de.end().map_err(|e| JsonError {
        path: ".".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}
