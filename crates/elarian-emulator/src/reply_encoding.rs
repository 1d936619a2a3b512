//! The encoding of app command replies. prost computes a nested message's length again at each
//! level that wraps it, so `GetCustomerState`'s reply (the state, inside the reply, inside the
//! command reply) had its largest part measured three times before being written; here the
//! state is measured once and the two wrappers are written around it.

use bytes::Bytes;
use elarian_proto::app_to_server_command_reply::Entry;
use elarian_proto::{AppToServerCommandReply, GetCustomerStateReply};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

/// The reply's bytes, as `reply.encode_to_vec()` gives them.
pub(crate) fn encode_reply(reply: &AppToServerCommandReply) -> Bytes {
    match &reply.entry {
        Some(Entry::GetCustomerState(state)) => customer_state_reply(state),
        _ => Bytes::from(reply.encode_to_vec()),
    }
}

/// Field numbers, as in `app_socket.proto`.
const ENTRY_GET_CUSTOMER_STATE: u32 = 2;
const STATUS: u32 = 1;
const DESCRIPTION: u32 = 2;
const DATA: u32 = 3;

fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn customer_state_reply(reply: &GetCustomerStateReply) -> Bytes {
    let data_len = reply.data.as_ref().map(Message::encoded_len);
    // proto3: a false bool and an empty string are left out, a present message never is.
    let mut inner = 0;
    if reply.status {
        inner += key_len(STATUS) + 1;
    }
    if !reply.description.is_empty() {
        inner += delimited_len(DESCRIPTION, reply.description.len());
    }
    if let Some(len) = data_len {
        inner += delimited_len(DATA, len);
    }
    let mut buf = Vec::with_capacity(delimited_len(ENTRY_GET_CUSTOMER_STATE, inner));
    encode_key(
        ENTRY_GET_CUSTOMER_STATE,
        WireType::LengthDelimited,
        &mut buf,
    );
    encode_varint(inner as u64, &mut buf);
    if reply.status {
        prost::encoding::bool::encode(STATUS, &reply.status, &mut buf);
    }
    if !reply.description.is_empty() {
        prost::encoding::string::encode(DESCRIPTION, &reply.description, &mut buf);
    }
    if let (Some(data), Some(len)) = (&reply.data, data_len) {
        encode_key(DATA, WireType::LengthDelimited, &mut buf);
        encode_varint(len as u64, &mut buf);
        data.encode_raw(&mut buf);
    }
    Bytes::from(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use elarian_proto::{
        CustomerStateReplyData, DataMapValue, IdentityState, MessagingState, PaymentState,
        UpdateCustomerStateReply, data_map_value,
    };

    fn state(id: &str, metadata: usize) -> CustomerStateReplyData {
        CustomerStateReplyData {
            customer_id: id.to_owned(),
            identity_state: Some(IdentityState {
                metadata: (0..metadata)
                    .map(|i| {
                        (
                            format!("key{i}"),
                            DataMapValue {
                                value: Some(data_map_value::Value::StringVal("v".repeat(i * 40))),
                            },
                        )
                    })
                    .collect(),
                ..Default::default()
            }),
            messaging_state: Some(MessagingState::default()),
            payment_state: Some(PaymentState::default()),
            ..Default::default()
        }
    }

    #[test]
    fn replies_are_encoded_as_prost_encodes_them() {
        let long = "d".repeat(300);
        let mut replies = Vec::new();
        for status in [true, false] {
            for description in ["", "customer state", long.as_str()] {
                for data in [
                    None,
                    Some(CustomerStateReplyData::default()),
                    Some(state("el_cst_1", 1)),
                    Some(state(&"c".repeat(200), 12)),
                ] {
                    replies.push(AppToServerCommandReply {
                        entry: Some(Entry::GetCustomerState(GetCustomerStateReply {
                            status,
                            description: description.to_owned(),
                            data,
                        })),
                    });
                }
            }
        }
        replies.push(AppToServerCommandReply { entry: None });
        replies.push(AppToServerCommandReply {
            entry: Some(Entry::UpdateCustomerState(UpdateCustomerStateReply {
                status: true,
                description: "ok".to_owned(),
                customer_id: Some("el_cst_1".to_owned()),
            })),
        });
        for reply in replies {
            let bytes = encode_reply(&reply);
            assert_eq!(
                bytes.as_ref(),
                reply.encode_to_vec().as_slice(),
                "{reply:?}"
            );
            assert_eq!(AppToServerCommandReply::decode(bytes).unwrap(), reply);
        }
    }
}
