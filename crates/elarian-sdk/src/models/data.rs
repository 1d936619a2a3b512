//! App data and metadata values.

use elarian_proto as proto;
use elarian_proto::data_map_value::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A value of a customer's app data or metadata.
///
/// JSON is stored as text in the wire's `string_val`, as the JavaScript client does, so apps written
/// in either language read each other's data. Raw bytes go in `bytes_val`.
///
/// Text read from the wire that parses as JSON becomes [`DataValue::Json`]; written back, it is
/// compact JSON (insignificant whitespace, and number precision beyond `f64`, are not kept).
///
/// ```
/// use elarian_sdk::DataValue;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Progress { step: u32 }
///
/// let value = DataValue::from_serde(&Progress { step: 2 }).unwrap();
/// assert_eq!(value, DataValue::Json(serde_json::json!({ "step": 2 })));
/// assert_eq!(value.to_serde::<Progress>().unwrap(), Progress { step: 2 });
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataValue {
    /// A JSON document (sent as its text in `string_val`).
    Json(serde_json::Value),
    /// Text that is not JSON, as another client may have stored it; sent back verbatim.
    Text(String),
    /// Raw bytes (`bytes_val`).
    Bytes(Vec<u8>),
}

/// A value could not be turned into or read as the requested type.
#[derive(Debug, thiserror::Error)]
#[error("app data (de)serialization failed: {0}")]
pub struct DataError(#[from] serde_json::Error);

impl DataValue {
    /// Serializes any serde type as JSON.
    pub fn from_serde<T: Serialize + ?Sized>(value: &T) -> Result<Self, DataError> {
        Ok(DataValue::Json(serde_json::to_value(value)?))
    }

    /// Reads the value as a serde type: JSON directly; text and bytes are parsed as JSON.
    pub fn to_serde<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        Ok(match self {
            DataValue::Json(value) => T::deserialize(value)?,
            DataValue::Text(text) => serde_json::from_str(text)?,
            DataValue::Bytes(bytes) => serde_json::from_slice(bytes)?,
        })
    }

    /// A JSON string value (convenience for plain text that should be stored as JSON).
    pub fn string(text: impl Into<String>) -> Self {
        DataValue::Json(serde_json::Value::String(text.into()))
    }

    /// The JSON document, if this is one.
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            DataValue::Json(value) => Some(value),
            _ => None,
        }
    }

    /// The bytes, if this is a bytes value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            DataValue::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }
}

impl From<serde_json::Value> for DataValue {
    fn from(value: serde_json::Value) -> Self {
        DataValue::Json(value)
    }
}

impl From<Vec<u8>> for DataValue {
    fn from(value: Vec<u8>) -> Self {
        DataValue::Bytes(value)
    }
}

impl From<DataValue> for proto::DataMapValue {
    fn from(value: DataValue) -> Self {
        let value = match value {
            // `to_string` on a `Value` goes through `Display`, growing its buffer as it writes;
            // serde_json's own writer starts with room for a small value (one allocation).
            DataValue::Json(json) => {
                Value::StringVal(serde_json::to_string(&json).unwrap_or_else(|_| json.to_string()))
            }
            DataValue::Text(text) => Value::StringVal(text),
            DataValue::Bytes(bytes) => Value::BytesVal(bytes),
        };
        proto::DataMapValue { value: Some(value) }
    }
}

impl DataValue {
    /// Reads a wire value; `None` when the value is empty (no variant set). Text that parses as
    /// JSON becomes [`DataValue::Json`], other text [`DataValue::Text`].
    pub fn from_wire(value: proto::DataMapValue) -> Option<Self> {
        match value.value? {
            Value::StringVal(text) => Some(match plain_json_string(text) {
                Ok(inner) => DataValue::Json(serde_json::Value::String(inner)),
                Err(text) => match serde_json::from_str(&text) {
                    Ok(json) => DataValue::Json(json),
                    Err(_) => DataValue::Text(text),
                },
            }),
            Value::BytesVal(bytes) => Some(DataValue::Bytes(bytes)),
        }
    }
}

/// A JSON string literal without escapes (`"abc"`, the common metadata value) is its own
/// content between the quotes: this takes it out of `text`'s buffer instead of parsing it into a
/// new one. Anything else is handed back for the JSON parser.
fn plain_json_string(mut text: String) -> Result<String, String> {
    let bytes = text.as_bytes();
    let quoted = bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"';
    // JSON forbids unescaped control characters in strings; a quote or a backslash inside
    // needs the parser.
    if !quoted
        || bytes[1..bytes.len() - 1]
            .iter()
            .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
    {
        return Err(text);
    }
    text.pop();
    text.remove(0);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_strings_read_as_the_parser_reads_them() {
        for text in [
            "\"\"",
            "\"abc\"",
            "\"ünï cødé ✓\"",
            "\"a\\\"b\"",
            "\"tab\\tx\"",
            "\"raw\ttab\"",
            "\"",
            "\"a\" ",
            " \"a\"",
            "\"a\"b\"",
            "\"\\\"",
            "12",
            "{\"k\":1}",
            "not json",
        ] {
            let expected = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(json) => DataValue::Json(json),
                Err(_) => DataValue::Text(text.to_owned()),
            };
            let wire = proto::DataMapValue {
                value: Some(Value::StringVal(text.to_owned())),
            };
            assert_eq!(DataValue::from_wire(wire), Some(expected), "{text:?}");
        }
    }

    fn round_trip(value: DataValue) {
        let wire = proto::DataMapValue::from(value.clone());
        assert_eq!(DataValue::from_wire(wire), Some(value));
    }

    #[test]
    fn every_variant_round_trips_through_the_wire() {
        round_trip(DataValue::Json(
            serde_json::json!({"a": [1, 2, {"b": null}]}),
        ));
        round_trip(DataValue::Json(serde_json::json!("text")));
        round_trip(DataValue::Text("not json {".into()));
        round_trip(DataValue::Bytes(vec![0, 159, 146, 150]));
    }

    #[test]
    fn json_is_stored_as_text_like_the_javascript_client() {
        let wire = proto::DataMapValue::from(DataValue::Json(serde_json::json!({"k": 1})));
        assert_eq!(wire.value, Some(Value::StringVal("{\"k\":1}".into())));
    }

    #[test]
    fn empty_wire_value_is_none() {
        assert_eq!(
            DataValue::from_wire(proto::DataMapValue { value: None }),
            None
        );
    }

    #[test]
    fn serde_helpers_read_every_representation() {
        assert_eq!(
            DataValue::Text("[1,2]".into()).to_serde::<Vec<u8>>().ok(),
            Some(vec![1, 2])
        );
        assert_eq!(
            DataValue::Bytes(b"7".to_vec()).to_serde::<u8>().ok(),
            Some(7)
        );
        assert!(DataValue::Text("nope".into()).to_serde::<u8>().is_err());
        let json = serde_json::to_string(&DataValue::Bytes(vec![1])).expect("serialize");
        let back: DataValue = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, DataValue::Bytes(vec![1]));
    }
}
