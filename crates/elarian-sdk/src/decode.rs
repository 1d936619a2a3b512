//! The reply read most often, `get_state`'s, decoded straight into the SDK's [`CustomerState`].
//!
//! Decoding the proto message first builds the customer's metadata as the proto's own
//! `HashMap` (an allocation and SipHash per key) only for the SDK to rebuild it as its own map
//! of [`DataValue`]s. Here the metadata entries go straight into the SDK's map; every other
//! field is merged into the proto messages by prost itself, so the result is the same as
//! decoding the whole reply and converting it (the tests compare both). A reply of any other
//! shape (another reply entry, a field out of place, bytes that do not decode) is decoded the
//! usual way, which also gives the usual errors.

use std::collections::HashMap;

use elarian_core::CommandError;
use elarian_proto as proto;
use elarian_proto::prost::Message;
use elarian_proto::prost::bytes::{Buf, Bytes};
use elarian_proto::prost::encoding::{DecodeContext, WireType, decode_key, decode_varint};

use crate::command::expect_reply;
use crate::error::{Error, Result};
use crate::models::{CustomerState, DataValue};

/// `AppToServerCommandReply.get_customer_state`.
const REPLY_GET_CUSTOMER_STATE: u32 = 2;
/// `GetCustomerStateReply.description`.
const REPLY_DESCRIPTION: u32 = 2;
/// `GetCustomerStateReply.data`.
const REPLY_DATA: u32 = 3;
/// `CustomerStateReplyData.identity_state`.
const DATA_IDENTITY: u32 = 2;
/// `IdentityState.metadata`.
const IDENTITY_METADATA: u32 = 2;
/// A map entry's key and value.
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;

/// The customer's state in a `get_state` reply, as
/// `CustomerState::from(reply.data.unwrap_or_default())` after the status check.
pub(crate) fn customer_state(reply: Bytes) -> Result<CustomerState> {
    match read(&reply) {
        Some(read) => {
            if !read.reply.status {
                return Err(Error::from(CommandError::Failed {
                    description: read.description.to_owned(),
                }));
            }
            let mut state = CustomerState::from(read.data);
            state.identity.metadata = read.metadata;
            Ok(state)
        }
        None => usual(reply),
    }
}

/// The reply decoded and converted as every other reply is.
fn usual(reply: Bytes) -> Result<CustomerState> {
    let reply = proto::AppToServerCommandReply::decode(reply).map_err(CommandError::Decode)?;
    elarian_core::check_app_reply(&reply)?;
    let entry = reply.entry.ok_or(Error::UnexpectedReply {
        expected: "a reply entry",
    })?;
    let reply = expect_reply!(entry, GetCustomerState)?;
    Ok(CustomerState::from(reply.data.unwrap_or_default()))
}

/// What [`read`] found: the reply without its description and data, the description (only
/// copied when the status is false: the SDK's state has no room for it), the data without its
/// metadata, and the metadata.
#[derive(Default)]
struct Read<'a> {
    reply: proto::GetCustomerStateReply,
    description: &'a str,
    data: proto::CustomerStateReplyData,
    metadata: HashMap<String, DataValue>,
}

/// Reads a reply of the usual shape; `None` for any other (the caller decodes it as usual).
fn read(mut buf: &[u8]) -> Option<Read<'_>> {
    let mut read = Read::default();
    // A reply without the entry is not of the usual shape.
    if !buf.has_remaining() {
        return None;
    }
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        if tag != REPLY_GET_CUSTOMER_STATE {
            return None;
        }
        let mut reply = nested(&mut buf, wire_type)?;
        while reply.has_remaining() {
            let (tag, wire_type) = decode_key(&mut reply).ok()?;
            if tag == REPLY_DATA {
                read_data(nested(&mut reply, wire_type)?, &mut read)?;
            } else if tag == REPLY_DESCRIPTION {
                // Checked as prost checks a string; a later one replaces it, as in prost.
                read.description = std::str::from_utf8(nested(&mut reply, wire_type)?).ok()?;
            } else {
                read.reply
                    .merge_field(tag, wire_type, &mut reply, DecodeContext::default())
                    .ok()?;
            }
        }
    }
    Some(read)
}

fn read_data(mut data: &[u8], read: &mut Read<'_>) -> Option<()> {
    while data.has_remaining() {
        let (tag, wire_type) = decode_key(&mut data).ok()?;
        if tag == DATA_IDENTITY {
            let mut identity = nested(&mut data, wire_type)?;
            // Present, even when empty, as prost would have it.
            let state = read.data.identity_state.get_or_insert_default();
            while identity.has_remaining() {
                let (tag, wire_type) = decode_key(&mut identity).ok()?;
                if tag == IDENTITY_METADATA {
                    read_entry(nested(&mut identity, wire_type)?, &mut read.metadata)?;
                } else {
                    state
                        .merge_field(tag, wire_type, &mut identity, DecodeContext::default())
                        .ok()?;
                }
            }
        } else {
            read.data
                .merge_field(tag, wire_type, &mut data, DecodeContext::default())
                .ok()?;
        }
    }
    Some(())
}

/// One metadata entry, as prost reads a map entry (a later entry for a key replaces an
/// earlier one) and then `metadata_from_proto` keeps it (only values the SDK can read).
fn read_entry(mut entry: &[u8], metadata: &mut HashMap<String, DataValue>) -> Option<()> {
    let mut key = String::new();
    let mut value = proto::DataMapValue::default();
    let ctx = DecodeContext::default();
    while entry.has_remaining() {
        let (tag, wire_type) = decode_key(&mut entry).ok()?;
        match tag {
            ENTRY_KEY => elarian_proto::prost::encoding::string::merge(
                wire_type,
                &mut key,
                &mut entry,
                ctx.clone(),
            )
            .ok()?,
            ENTRY_VALUE => elarian_proto::prost::encoding::message::merge(
                wire_type,
                &mut value,
                &mut entry,
                ctx.clone(),
            )
            .ok()?,
            _ => {
                elarian_proto::prost::encoding::skip_field(wire_type, tag, &mut entry, ctx.clone())
                    .ok()?
            }
        }
    }
    match DataValue::from_wire(value) {
        Some(value) => {
            metadata.insert(key, value);
        }
        None => {
            metadata.remove(&key);
        }
    }
    Some(())
}

/// The bytes of a length-delimited field whose key was just read, taken off `buf`.
fn nested<'a>(buf: &mut &'a [u8], wire_type: WireType) -> Option<&'a [u8]> {
    if wire_type != WireType::LengthDelimited {
        return None;
    }
    let len = usize::try_from(decode_varint(buf).ok()?).ok()?;
    if len > buf.len() {
        return None;
    }
    let (inner, rest) = buf.split_at(len);
    *buf = rest;
    Some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::state::metadata_to_proto;
    use proto::app_to_server_command_reply::Entry;

    fn encode(reply: &proto::AppToServerCommandReply) -> Bytes {
        Bytes::from(reply.encode_to_vec())
    }

    fn state_reply(status: bool, data: Option<proto::CustomerStateReplyData>) -> Bytes {
        encode(&proto::AppToServerCommandReply {
            entry: Some(Entry::GetCustomerState(proto::GetCustomerStateReply {
                status,
                description: "why".into(),
                data,
            })),
        })
    }

    /// Both ways agree, errors included (compared by their text).
    fn same(bytes: Bytes) {
        let fast = customer_state(bytes.clone()).map_err(|e| e.to_string());
        let slow = usual(bytes).map_err(|e| e.to_string());
        assert_eq!(fast, slow);
    }

    fn full_state() -> proto::CustomerStateReplyData {
        let metadata = HashMap::from([
            ("visits".to_owned(), DataValue::string("7")),
            (
                "json".to_owned(),
                DataValue::Json(serde_json::json!({"a": [1, "b\"c"]})),
            ),
            ("text".to_owned(), DataValue::Text("not json {".into())),
            (String::new(), DataValue::Bytes(vec![0, 159])),
        ]);
        let mut identity = proto::IdentityState {
            metadata: metadata_to_proto(metadata),
            ..Default::default()
        };
        // A value the SDK cannot read is left out, both ways.
        identity
            .metadata
            .insert("unset".into(), proto::DataMapValue { value: None });
        identity.tags.push(proto::CustomerIndex {
            mapping: Some(proto::IndexMapping {
                key: "tier".into(),
                value: Some("gold".into()),
            }),
            expires_at: None,
        });
        proto::CustomerStateReplyData {
            customer_id: "el_cst_1".into(),
            identity_state: Some(identity),
            messaging_state: Some(Default::default()),
            payment_state: None,
            activity_state: None,
        }
    }

    #[test]
    fn usual_replies_read_the_same_both_ways() {
        same(state_reply(true, Some(full_state())));
        same(state_reply(true, None));
        same(state_reply(
            true,
            Some(proto::CustomerStateReplyData {
                identity_state: Some(Default::default()),
                ..Default::default()
            }),
        ));
        same(state_reply(false, Some(full_state())));
        let read = customer_state(state_reply(true, Some(full_state()))).unwrap();
        assert_eq!(read.identity.metadata.len(), 4);
        assert_eq!(read.identity.metadata["visits"], DataValue::string("7"));
    }

    #[test]
    fn repeated_fields_merge_as_prost_merges_them() {
        // A later entry for a key replaces the earlier one, even with a value the SDK cannot
        // read; a message field given twice is merged.
        let mut bytes = state_reply(true, Some(full_state())).to_vec();
        let later = proto::CustomerStateReplyData {
            customer_id: "el_cst_2".into(),
            identity_state: Some(proto::IdentityState {
                metadata: HashMap::from([
                    ("visits".to_owned(), proto::DataMapValue { value: None }),
                    ("text".to_owned(), DataValue::Text("other".into()).into()),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        bytes.extend(state_reply(true, Some(later)));
        let bytes = Bytes::from(bytes);
        same(bytes.clone());
        let read = customer_state(bytes).unwrap();
        assert!(!read.identity.metadata.contains_key("visits"));
        assert_eq!(
            read.identity.metadata["text"],
            DataValue::Text("other".into())
        );
        assert_eq!(read.customer_id, "el_cst_2");
    }

    #[test]
    fn other_shapes_are_read_the_usual_way() {
        // Another reply entry (with a failing and a passing status), no entry, unknown fields,
        // truncated bytes and a wrong wire type.
        same(encode(&proto::AppToServerCommandReply {
            entry: Some(Entry::UpdateCustomerState(
                proto::UpdateCustomerStateReply {
                    status: false,
                    description: "no".into(),
                    customer_id: None,
                },
            )),
        }));
        same(encode(&proto::AppToServerCommandReply {
            entry: Some(Entry::UpdateCustomerState(Default::default())),
        }));
        same(encode(&proto::AppToServerCommandReply { entry: None }));
        let full = state_reply(true, Some(full_state()));
        let mut unknown = full.to_vec();
        unknown.extend([0xf8, 0x01, 0x05]); // field 31, varint 5
        same(Bytes::from(unknown));
        for cut in [1, 2, 5, full.len() / 2, full.len() - 1] {
            same(full.slice(..cut));
        }
        same(Bytes::from_static(&[0x10, 0x01])); // field 2 as a varint
        // A description that is not UTF-8, in a reply that would pass and one that would fail.
        for status in [0x01, 0x00] {
            same(Bytes::from(vec![
                0x12, 0x06, 0x08, status, 0x12, 0x02, 0xff, 0xfe,
            ]));
        }
    }

    #[test]
    fn a_failed_reply_keeps_its_last_description() {
        let mut bytes = state_reply(false, None).to_vec();
        // Another description (field 2 of the reply) in a second copy of the entry.
        bytes.extend([0x12, 0x05, 0x12, 0x03, b'n', b'e', b'w']);
        let bytes = Bytes::from(bytes);
        same(bytes.clone());
        match customer_state(bytes) {
            Err(Error::Failed { description }) => assert_eq!(description, "new"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
