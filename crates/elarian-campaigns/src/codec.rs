//! The stored form of a [`Dispatch`]: a compact binary record.
//!
//! A sending of a million recipients writes a million dispatches at preparation and rewrites
//! each when its outcome and its delivery status arrive; JSON made that the largest cost of a
//! sending (field names in every record, number formatting, string escaping). The format:
//!
//! ```text
//! version u8 (1) | index u32 | state u8 | member_id | to | content | sms | message_id | status | error
//! ```
//!
//! Integers are little-endian, strings a `u32` length and UTF-8 bytes, an absent option one `0`
//! byte and a present one `1` then the value. Records that start with `{` are the JSON of the
//! first stored format and are still read.

use elarian_sdk::{CustomerNumber, CustomerNumberProvider, MessageDeliveryStatus};

use crate::engine::{Dispatch, DispatchState};
use crate::mapping::DispatchContent;
use crate::model::MemberId;
use crate::store::StoreError;
use crate::template::{SmsEncoding, SmsInfo};

const VERSION: u8 = 1;

/// Encodes a dispatch into `out` (cleared first).
pub(crate) fn encode_dispatch_into(d: &Dispatch, out: &mut Vec<u8>) {
    out.clear();
    out.push(VERSION);
    out.extend_from_slice(&d.index.to_le_bytes());
    out.push(state_tag(d.state));
    match &d.member_id {
        None => out.push(0),
        Some(MemberId::Number(n)) => {
            out.push(1);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Some(MemberId::CustomerId(c)) => {
            out.push(2);
            put_str(out, c);
        }
    }
    out.extend_from_slice(&i32::from(d.to.provider).to_le_bytes());
    put_str(out, &d.to.number);
    put_opt_str(out, d.to.partition.as_deref());
    match &d.content {
        DispatchContent::Text { text } => {
            out.push(0);
            put_str(out, text);
        }
        DispatchContent::Email {
            subject,
            html,
            plain,
        } => {
            out.push(1);
            put_str(out, subject);
            put_str(out, html);
            put_str(out, plain);
        }
    }
    match &d.sms {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            out.push(match s.encoding {
                SmsEncoding::Gsm7 => 0,
                SmsEncoding::Ucs2 => 1,
            });
            out.extend_from_slice(&s.length.to_le_bytes());
            out.extend_from_slice(&s.segments.to_le_bytes());
        }
    }
    put_opt_str(out, d.message_id.as_deref());
    match d.delivery_status {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            out.extend_from_slice(&i32::from(s).to_le_bytes());
        }
    }
    put_opt_str(out, d.error.as_deref());
}

/// Encodes a dispatch.
pub(crate) fn encode_dispatch(d: &Dispatch) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    encode_dispatch_into(d, &mut out);
    out
}

/// Decodes a stored dispatch.
pub(crate) fn decode_dispatch(bytes: &[u8]) -> Result<Dispatch, StoreError> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes)
            .map_err(|e| StoreError(format!("corrupt dispatch: {e}")));
    }
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(StoreError(format!(
            "corrupt dispatch: unknown format version {version}"
        )));
    }
    let index = r.u32()?;
    let state = match r.u8()? {
        0 => DispatchState::Pending,
        1 => DispatchState::Attempted,
        2 => DispatchState::Sent,
        3 => DispatchState::Failed,
        4 => DispatchState::Unknown,
        5 => DispatchState::NotSent,
        t => return Err(r.bad(&format!("state {t}"))),
    };
    let member_id = match r.u8()? {
        0 => None,
        1 => Some(MemberId::Number(r.u64()?)),
        2 => Some(MemberId::CustomerId(r.string()?)),
        t => return Err(r.bad(&format!("member id tag {t}"))),
    };
    let provider = CustomerNumberProvider::from(r.i32()?);
    let number = r.string()?;
    let partition = r.opt_string()?;
    let content = match r.u8()? {
        0 => DispatchContent::Text { text: r.string()? },
        1 => DispatchContent::Email {
            subject: r.string()?,
            html: r.string()?,
            plain: r.string()?,
        },
        t => return Err(r.bad(&format!("content tag {t}"))),
    };
    let sms = match r.u8()? {
        0 => None,
        1 => {
            let encoding = match r.u8()? {
                0 => SmsEncoding::Gsm7,
                1 => SmsEncoding::Ucs2,
                t => return Err(r.bad(&format!("SMS encoding {t}"))),
            };
            Some(SmsInfo {
                encoding,
                length: r.u32()?,
                segments: r.u32()?,
            })
        }
        t => return Err(r.bad(&format!("SMS tag {t}"))),
    };
    let message_id = r.opt_string()?;
    let delivery_status = match r.u8()? {
        0 => None,
        1 => Some(MessageDeliveryStatus::from(r.i32()?)),
        t => return Err(r.bad(&format!("status tag {t}"))),
    };
    let error = r.opt_string()?;
    if r.at != bytes.len() {
        return Err(r.bad("trailing bytes"));
    }
    Ok(Dispatch {
        index,
        member_id,
        to: CustomerNumber {
            number,
            provider,
            partition,
        },
        content,
        sms,
        state,
        message_id,
        delivery_status,
        error,
    })
}

fn state_tag(s: DispatchState) -> u8 {
    match s {
        DispatchState::Pending => 0,
        DispatchState::Attempted => 1,
        DispatchState::Sent => 2,
        DispatchState::Failed => 3,
        DispatchState::Unknown => 4,
        DispatchState::NotSent => 5,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Stored strings come from templates and identifiers far below 4 GiB; a longer one is cut
    // at a character boundary rather than written with a wrong length.
    let mut len = s.len().min(u32::MAX as usize);
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn bad(&self, what: &str) -> StoreError {
        StoreError(format!("corrupt dispatch: {what} at byte {}", self.at))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.bad("truncated record"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, StoreError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let len = self.u32()? as usize;
        let at = self.at;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| StoreError(format!("corrupt dispatch: invalid UTF-8 at byte {at}")))
    }

    fn opt_string(&mut self) -> Result<Option<String>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            t => Err(self.bad(&format!("option tag {t}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Dispatch {
        Dispatch {
            index: 7,
            member_id: Some(MemberId::CustomerId("el_cst_1".into())),
            to: CustomerNumber {
                number: "+254700000001".into(),
                provider: CustomerNumberProvider::Cellular,
                partition: Some("p".into()),
            },
            content: DispatchContent::Text {
                text: "Hi Ünïcode, you owe KES 5".into(),
            },
            sms: Some(SmsInfo {
                encoding: SmsEncoding::Ucs2,
                length: 25,
                segments: 1,
            }),
            state: DispatchState::Sent,
            message_id: Some("el_msg_9".into()),
            delivery_status: Some(MessageDeliveryStatus::Unknown(999)),
            error: None,
        }
    }

    #[test]
    fn round_trips() {
        let d = sample();
        assert_eq!(decode_dispatch(&encode_dispatch(&d)).unwrap(), d);
        let email = Dispatch {
            member_id: Some(MemberId::Number(42)),
            to: CustomerNumber::email("a@b.c"),
            content: DispatchContent::Email {
                subject: "S".into(),
                html: "<p>x</p>".into(),
                plain: "x".into(),
            },
            sms: None,
            state: DispatchState::Failed,
            message_id: None,
            delivery_status: None,
            error: Some("refused".into()),
            ..d
        };
        assert_eq!(decode_dispatch(&encode_dispatch(&email)).unwrap(), email);
    }

    #[test]
    fn reads_the_json_format() {
        let d = sample();
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(decode_dispatch(&json).unwrap(), d);
    }

    #[test]
    fn damaged_records_are_typed_errors() {
        let bytes = encode_dispatch(&sample());
        for len in 0..bytes.len() {
            assert!(decode_dispatch(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_dispatch(&extra).is_err());
        let mut version = bytes.clone();
        version[0] = 9;
        assert!(decode_dispatch(&version).is_err());
        let mut state = bytes;
        state[5] = 77;
        assert!(decode_dispatch(&state).unwrap_err().0.contains("state 77"));
    }
}
