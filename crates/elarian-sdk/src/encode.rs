//! The commands sent most often, encoded in place from what the SDK holds.
//!
//! Building the proto message first would clone the customer's id into it and rebuild the
//! metadata as the proto's own `HashMap` (an allocation and SipHash per key), only to encode and
//! drop them. The bytes written here are what prost writes for the same message (fields in tag
//! order, a map entry's empty key left out); the tests compare both.

use std::collections::HashMap;

use elarian_proto::prost::bytes::{BufMut, BytesMut};
use elarian_proto::prost::encoding::{
    WireType, encode_key, encode_varint, encoded_len_varint, key_len,
};

use crate::models::DataValue;

/// `AppToServerCommand.entry` tags (`elarian.proto`).
const GET_CUSTOMER_STATE: u32 = 3;
const UPDATE_CUSTOMER_METADATA: u32 = 13;
/// `customer_id` in both commands' `customer` oneof.
const CUSTOMER_ID: u32 = 1;
/// `UpdateCustomerMetadataCommand.updates`.
const UPDATES: u32 = 4;
/// A map entry's key and value.
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;
/// `DataMapValue.value`'s variants.
const STRING_VAL: u32 = 2;
const BYTES_VAL: u32 = 3;

/// Length of a length-delimited field of `len` bytes, key included.
fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_field(buf: &mut BytesMut, tag: u32, bytes: &[u8]) {
    put_header(buf, tag, bytes.len());
    buf.put_slice(bytes);
}

fn put_header(buf: &mut BytesMut, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// Appends `AppToServerCommand { entry: GetCustomerState { customer: CustomerId(id) } }`.
pub(crate) fn get_state_by_id(id: &str, buf: &mut BytesMut) {
    let inner = field_len(CUSTOMER_ID, id.len());
    buf.reserve(field_len(GET_CUSTOMER_STATE, inner));
    put_header(buf, GET_CUSTOMER_STATE, inner);
    put_field(buf, CUSTOMER_ID, id.as_bytes());
}

/// A metadata value as the wire holds it: JSON as its text, text and bytes as they are.
enum WireValue<'a> {
    Text(std::borrow::Cow<'a, str>),
    /// A JSON string that serde_json writes without escapes: the string between quotes,
    /// written straight into the command rather than serialized into a `String` first.
    Quoted(&'a str),
    Bytes(&'a [u8]),
}

/// Whether serde_json writes `text` as a JSON string without escapes (it escapes only `"`,
/// `\` and control characters below U+0020).
fn needs_no_escape(text: &str) -> bool {
    text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

impl WireValue<'_> {
    fn of(value: &DataValue) -> WireValue<'_> {
        match value {
            DataValue::Json(serde_json::Value::String(text)) if needs_no_escape(text) => {
                WireValue::Quoted(text)
            }
            DataValue::Json(json) => WireValue::Text(std::borrow::Cow::Owned(
                serde_json::to_string(json).unwrap_or_else(|_| json.to_string()),
            )),
            DataValue::Text(text) => WireValue::Text(std::borrow::Cow::Borrowed(text)),
            DataValue::Bytes(bytes) => WireValue::Bytes(bytes),
        }
    }

    /// The `DataMapValue.value` variant's tag.
    fn tag(&self) -> u32 {
        match self {
            WireValue::Text(_) | WireValue::Quoted(_) => STRING_VAL,
            WireValue::Bytes(_) => BYTES_VAL,
        }
    }

    /// Length of the variant's bytes.
    fn len(&self) -> usize {
        match self {
            WireValue::Text(text) => text.len(),
            WireValue::Quoted(text) => text.len() + 2,
            WireValue::Bytes(bytes) => bytes.len(),
        }
    }

    /// Appends the variant's field (key, length and bytes).
    fn put(&self, buf: &mut BytesMut) {
        match self {
            WireValue::Text(text) => put_field(buf, STRING_VAL, text.as_bytes()),
            WireValue::Quoted(text) => {
                put_header(buf, STRING_VAL, text.len() + 2);
                buf.put_u8(b'"');
                buf.put_slice(text.as_bytes());
                buf.put_u8(b'"');
            }
            WireValue::Bytes(bytes) => put_field(buf, BYTES_VAL, bytes),
        }
    }
}

/// Appends
/// `AppToServerCommand { entry: UpdateCustomerMetadata { customer: CustomerId(id), updates } }`.
pub(crate) fn update_metadata_by_id(
    id: &str,
    updates: &HashMap<String, DataValue>,
    buf: &mut BytesMut,
) {
    // JSON values are serialized once, for both the lengths and the bytes; the usual single
    // value needs no list to keep them in.
    let (one, many): (Option<_>, Vec<_>) = if updates.len() == 1 {
        let first = updates.iter().next();
        (
            first.map(|(key, value)| (key, WireValue::of(value))),
            Vec::new(),
        )
    } else {
        let all = updates
            .iter()
            .map(|(key, value)| (key, WireValue::of(value)));
        (None, all.collect())
    };
    let values: &[(&String, WireValue<'_>)] = match &one {
        Some(only) => std::slice::from_ref(only),
        None => &many,
    };
    // Entry and value lengths, as prost computes them: an empty key is not written; a value is
    // always a set oneof, so never the default message.
    let entry_len = |key: &str, value: &WireValue<'_>| {
        let key = if key.is_empty() {
            0
        } else {
            field_len(ENTRY_KEY, key.len())
        };
        key + field_len(ENTRY_VALUE, field_len(value.tag(), value.len()))
    };
    let inner = field_len(CUSTOMER_ID, id.len())
        + values
            .iter()
            .map(|(key, value)| field_len(UPDATES, entry_len(key, value)))
            .sum::<usize>();
    buf.reserve(field_len(UPDATE_CUSTOMER_METADATA, inner));
    put_header(buf, UPDATE_CUSTOMER_METADATA, inner);
    put_field(buf, CUSTOMER_ID, id.as_bytes());
    for (key, value) in values {
        put_header(buf, UPDATES, entry_len(key, value));
        if !key.is_empty() {
            put_field(buf, ENTRY_KEY, key.as_bytes());
        }
        put_header(buf, ENTRY_VALUE, field_len(value.tag(), value.len()));
        value.put(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::state::metadata_to_proto;
    use elarian_proto as proto;
    use elarian_proto::app_to_server_command::Entry;
    use elarian_proto::prost::Message;

    /// What an encoder appends to a buffer that already holds other bytes.
    fn written(encode: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::from(&b"before"[..]);
        encode(&mut buf);
        assert_eq!(&buf[..6], b"before");
        buf[6..].to_vec()
    }

    fn prost_bytes(entry: Entry) -> Vec<u8> {
        proto::AppToServerCommand { entry: Some(entry) }.encode_to_vec()
    }

    #[test]
    fn get_state_is_what_prost_writes() {
        for id in ["", "el_cst_27f2d4", &"x".repeat(300)] {
            let expected = prost_bytes(Entry::GetCustomerState(proto::GetCustomerStateCommand {
                customer: Some(proto::get_customer_state_command::Customer::CustomerId(
                    id.to_owned(),
                )),
            }));
            assert_eq!(written(|buf| get_state_by_id(id, buf)), expected, "{id:?}");
        }
    }

    fn metadata_command(id: &str, updates: &HashMap<String, DataValue>) -> Entry {
        Entry::UpdateCustomerMetadata(proto::UpdateCustomerMetadataCommand {
            updates: metadata_to_proto(updates.clone()),
            customer: Some(
                proto::update_customer_metadata_command::Customer::CustomerId(id.to_owned()),
            ),
        })
    }

    #[test]
    fn one_metadata_value_is_what_prost_writes() {
        let values = [
            DataValue::string("7"),
            DataValue::Json(serde_json::json!({"a": [1, "b\"c"], "d": null})),
            DataValue::Text("not json {".into()),
            DataValue::Text(String::new()),
            DataValue::Bytes(vec![0, 159, 146, 150]),
            DataValue::Bytes(Vec::new()),
            DataValue::string("y".repeat(200)),
            // JSON strings written between quotes, and those serde_json escapes.
            DataValue::string(""),
            DataValue::string("caf\u{e9} \u{7f} \u{1F600} {x}"),
            DataValue::string("quote \" inside"),
            DataValue::string("back\\slash"),
            DataValue::string("tab\tand\nnewline"),
            DataValue::string("\u{1f}"),
        ];
        for key in ["visits", "", &"k".repeat(130)] {
            for value in &values {
                let updates = HashMap::from([(key.to_owned(), value.clone())]);
                let expected = prost_bytes(metadata_command("el_cst_1", &updates));
                assert_eq!(
                    written(|buf| update_metadata_by_id("el_cst_1", &updates, buf)),
                    expected,
                    "{key:?} {value:?}"
                );
            }
        }
    }

    #[test]
    fn strings_needing_no_escape_are_what_serde_json_writes() {
        for text in [
            "",
            "visits",
            "caf\u{e9}",
            "\u{7f}\u{80}",
            " ~",
            "a\"b",
            "a\\b",
            "\u{0}",
            "\u{1f}",
        ] {
            let serde = serde_json::to_string(&serde_json::Value::String(text.to_owned())).unwrap();
            if needs_no_escape(text) {
                assert_eq!(serde, format!("\"{text}\""), "{text:?}");
            } else {
                assert_ne!(serde, format!("\"{text}\""), "{text:?}");
            }
        }
    }

    #[test]
    fn many_metadata_values_decode_to_the_same_command() {
        // Map entries come in the map's order, so compare what the server reads.
        let updates: HashMap<String, DataValue> = (0..20)
            .map(|i| (format!("key{i}"), DataValue::string(i.to_string())))
            .collect();
        let bytes = written(|buf| update_metadata_by_id("el_cst_2", &updates, buf));
        let decoded = proto::AppToServerCommand::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(
            decoded.entry,
            Some(metadata_command("el_cst_2", &updates)),
            "same command"
        );
        let expected = prost_bytes(metadata_command("el_cst_2", &updates));
        assert_eq!(bytes.len(), expected.len());
    }
}
