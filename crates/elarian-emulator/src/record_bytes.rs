//! Reading and changing the parts of an *encoded* [`CustomerRecord`] that firing a reminder
//! touches, without decoding the record: the reminder itself and the app data sent with it.
//!
//! Firing a reminder reads one reminder and then drops it (a one-off) or moves its due time (a
//! repeating one). In a burst of due reminders nearly every record fired is idle, so it is kept
//! encoded (see `state::Customers`); decoding the whole record for that, and encoding it again
//! when it leaves the decoded ones, was most of the cost of a notification. Here the record's
//! bytes are walked field by field down to the reminder with the wanted `seq`, and the new
//! record is the old bytes with that reminder's bytes swapped and the enclosing app's length
//! rewritten: one allocation, and for a canonical (prost-written) record exactly the bytes that
//! decoding, changing and encoding would give. The app data, read for every notification, is
//! found the same way and only it is decoded.
//!
//! The walk follows the field numbers of [`CustomerRecord::apps`] (4), [`AppRecord::app_id`]
//! (1), [`AppRecord::data`] (2), [`AppRecord::reminders`] (4) and [`ReminderRecord::seq`] (5);
//! tests check the walk against prost's own decoding and encoding.

use std::ops::Range;

use prost::Message;
use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

use elarian_proto::DataMapValue;

use crate::record::{AppRecord, ReminderRecord};

#[cfg(doc)]
use crate::record::CustomerRecord;

/// Field number of `CustomerRecord::apps`.
const RECORD_APPS: u64 = 4;
/// Field number of `AppRecord::app_id`.
const APP_ID: u64 = 1;
/// Field number of `AppRecord::data`.
const APP_DATA: u64 = 2;
/// Field number of `AppRecord::reminders`.
const APP_REMINDERS: u64 = 4;
/// Field number of `ReminderRecord::seq`.
const REMINDER_SEQ: u64 = 5;

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

/// A reminder located in an encoded record.
pub(crate) struct Found {
    /// The app the reminder belongs to.
    pub app_id: String,
    /// The reminder, decoded.
    pub reminder: ReminderRecord,
    /// The app's field: key, length and body.
    app_field: Range<usize>,
    /// The app's body alone.
    app_body: Range<usize>,
    /// The reminder's field (key, length, body) within the record.
    reminder_field: Range<usize>,
}

/// One field of a message: its number, wire type, and where its value lies (for a
/// length-delimited field, the body without the length).
struct Field {
    number: u64,
    wire: u64,
    start: usize,
    value: Range<usize>,
}

/// Reads the field starting at `pos` of `bytes`; `None` for a malformed one or a group (which
/// no record holds).
fn field_at(bytes: &[u8], pos: usize) -> Option<Field> {
    let mut rest = bytes.get(pos..)?;
    let len_before = rest.len();
    let key = decode_varint(&mut rest).ok()?;
    let (number, wire) = (key >> 3, key & 7);
    let value = match wire {
        WIRE_VARINT => {
            let at = len_before - rest.len();
            decode_varint(&mut rest).ok()?;
            pos + at..pos + (len_before - rest.len())
        }
        WIRE_FIXED64 | WIRE_FIXED32 => {
            let at = pos + (len_before - rest.len());
            let n = if wire == WIRE_FIXED64 { 8 } else { 4 };
            at..at.checked_add(n)?
        }
        WIRE_LEN => {
            let len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
            let at = pos + (len_before - rest.len());
            at..at.checked_add(len)?
        }
        _ => return None,
    };
    if value.end > bytes.len() {
        return None;
    }
    Some(Field {
        number,
        wire,
        start: pos,
        value,
    })
}

/// The fields of `bytes[range]`, in order; stops at the first malformed one.
fn fields(bytes: &[u8], range: Range<usize>) -> impl Iterator<Item = Field> + '_ {
    let mut pos = range.start;
    std::iter::from_fn(move || {
        if pos >= range.end {
            return None;
        }
        let f = field_at(bytes, pos).filter(|f| f.value.end <= range.end)?;
        pos = f.value.end;
        Some(f)
    })
}

/// The `seq` of an encoded reminder, read without decoding the rest (the last occurrence
/// wins, as when decoding).
fn seq_of(bytes: &[u8], body: Range<usize>) -> Option<u64> {
    let mut seq = None;
    for f in fields(bytes, body) {
        if f.number == REMINDER_SEQ && f.wire == WIRE_VARINT {
            seq = decode_varint(&mut &bytes[f.value]).ok();
        }
    }
    seq
}

/// The reminder whose `seq` is `seq` in the encoded record `bytes`, the first one in the order
/// of apps and reminders, as a search of the decoded record finds it.
pub(crate) fn find(bytes: &[u8], seq: u64) -> Option<Found> {
    for app in fields(bytes, 0..bytes.len()) {
        if app.number != RECORD_APPS || app.wire != WIRE_LEN {
            continue;
        }
        let mut app_id = None;
        let mut hit = None;
        for f in fields(bytes, app.value.clone()) {
            match (f.number, f.wire) {
                (APP_ID, WIRE_LEN) => app_id = Some(f.value),
                (APP_REMINDERS, WIRE_LEN)
                    if hit.is_none() && seq_of(bytes, f.value.clone()) == Some(seq) =>
                {
                    hit = Some(f);
                }
                _ => {}
            }
        }
        let Some(hit) = hit else {
            continue;
        };
        let reminder = ReminderRecord::decode(&bytes[hit.value.clone()]).ok()?;
        let app_id = match app_id {
            Some(r) => std::str::from_utf8(&bytes[r]).ok()?.to_owned(),
            None => String::new(),
        };
        return Some(Found {
            app_id,
            reminder,
            app_field: app.start..app.value.end,
            app_body: app.value,
            reminder_field: hit.start..hit.value.end,
        });
    }
    None
}

/// The record `bytes` with the reminder `found` replaced by `by`, or dropped for `None`.
pub(crate) fn replace(bytes: &[u8], found: &Found, by: Option<&ReminderRecord>) -> Box<[u8]> {
    let mut field = Vec::new();
    if let Some(r) = by {
        // Key of field 4, length-delimited, then the length and the body: as prost writes
        // a repeated message.
        let len = r.encoded_len();
        field.reserve_exact(1 + encoded_len_varint(len as u64) + len);
        encode_varint((APP_REMINDERS << 3) | WIRE_LEN, &mut field);
        encode_varint(len as u64, &mut field);
        r.encode_raw(&mut field);
    }
    let old_body = found.app_body.len();
    let body = old_body - found.reminder_field.len() + field.len();
    let head = 1 + encoded_len_varint(body as u64);
    let total = bytes.len() - found.app_field.len() + head + body;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&bytes[..found.app_field.start]);
    encode_varint((RECORD_APPS << 3) | WIRE_LEN, &mut out);
    encode_varint(body as u64, &mut out);
    out.extend_from_slice(&bytes[found.app_body.start..found.reminder_field.start]);
    out.extend_from_slice(&field);
    out.extend_from_slice(&bytes[found.reminder_field.end..found.app_body.end]);
    out.extend_from_slice(&bytes[found.app_field.end..]);
    debug_assert_eq!(out.len(), total);
    out.into_boxed_slice()
}

/// The app data `app_id` keeps in the encoded record `bytes`, as the decoded record's first app
/// of that id holds it; `None` for a damaged record.
pub(crate) fn app_data(bytes: &[u8], app_id: &str) -> Option<DataMapValue> {
    for app in fields(bytes, 0..bytes.len()) {
        if app.number != RECORD_APPS || app.wire != WIRE_LEN {
            continue;
        }
        let mut id = &[][..];
        let mut data = None;
        let mut data_fields = 0;
        for f in fields(bytes, app.value.clone()) {
            match (f.number, f.wire) {
                (APP_ID, WIRE_LEN) => id = &bytes[f.value],
                (APP_DATA, WIRE_LEN) => {
                    data = Some(f.value);
                    data_fields += 1;
                }
                _ => {}
            }
        }
        if id != app_id.as_bytes() {
            continue;
        }
        return match data {
            // Repeated occurrences of a message field merge when decoded (prost never writes
            // them): left to the full decoding of the app.
            Some(_) if data_fields > 1 => AppRecord::decode(&bytes[app.value]).ok()?.data,
            Some(r) => DataMapValue::decode(&bytes[r]).ok(),
            None => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CustomerRecord, MetadataEntry, TagOrigin};
    use elarian_proto::{CustomerIndex, CustomerReminder, DataMapValue, IndexMapping};

    fn reminder(key: &str, seq: u64, tagged: bool) -> ReminderRecord {
        ReminderRecord {
            reminder: Some(CustomerReminder {
                key: key.into(),
                payload: Some(format!("payload of {key}")),
                ..Default::default()
            }),
            origin: tagged.then(|| {
                Box::new(TagOrigin {
                    tag: Some(CustomerIndex {
                        mapping: Some(IndexMapping {
                            key: "tier".into(),
                            value: Some("gold".into()),
                        }),
                        expires_at: None,
                    }),
                    work_id: "wrk_1".into(),
                })
            }),
            due: 1_000 + seq as i64,
            seq,
        }
    }

    /// A record with apps before and after the reminders' app, data, tags and extra parts, and
    /// seqs of several varint widths.
    fn record() -> CustomerRecord {
        let mut rec = CustomerRecord {
            id: "el_cst_1".into(),
            created_at: 7,
            ..Default::default()
        };
        rec.tags.push(CustomerIndex {
            mapping: Some(IndexMapping {
                key: "tier".into(),
                value: Some("gold".into()),
            }),
            expires_at: None,
        });
        rec.app_mut("app_a").data = Some(DataMapValue {
            value: Some(elarian_proto::data_map_value::Value::StringVal("a".into())),
        });
        rec.app_mut("app_b").reminders = vec![
            reminder("one", 3, false),
            reminder("two", 300, true),
            reminder("three", 1 << 40, false),
        ];
        rec.app_mut("app_c").reminders = vec![reminder("four", 5, false)];
        rec.extra_mut().metadata.push(MetadataEntry {
            key: "name".into(),
            value: None,
        });
        rec
    }

    fn position(rec: &CustomerRecord, seq: u64) -> Option<(usize, usize)> {
        rec.apps.iter().enumerate().find_map(|(ai, a)| {
            a.reminders
                .iter()
                .position(|r| r.seq == seq)
                .map(|ri| (ai, ri))
        })
    }

    #[test]
    fn finds_and_replaces_as_decoding_changing_and_encoding_would() {
        let rec = record();
        let bytes = rec.encode_to_vec();
        for seq in [3, 300, 1 << 40, 5] {
            let found = find(&bytes, seq).expect("found");
            let (ai, ri) = position(&rec, seq).unwrap();
            assert_eq!(found.app_id, rec.apps[ai].app_id);
            assert_eq!(found.reminder, rec.apps[ai].reminders[ri]);

            let mut dropped = rec.clone();
            dropped.apps[ai].reminders.remove(ri);
            assert_eq!(
                &*replace(&bytes, &found, None),
                dropped.encode_to_vec(),
                "{seq}"
            );

            let mut moved = rec.clone();
            let mut by = found.reminder.clone();
            // A new seq of another width changes the reminder's and the app's lengths.
            by.seq = seq.wrapping_mul(1 << 20) + 1;
            by.due += 60_000;
            moved.apps[ai].reminders[ri] = by.clone();
            assert_eq!(
                &*replace(&bytes, &found, Some(&by)),
                moved.encode_to_vec(),
                "{seq}"
            );
        }
        assert!(find(&bytes, 4).is_none());
        assert!(find(&[], 3).is_none());
    }

    #[test]
    fn a_record_emptied_of_reminders_decodes_to_the_same_record() {
        let mut rec = record();
        let mut bytes = rec.encode_to_vec().into_boxed_slice();
        for seq in [300, 5, 3, 1 << 40] {
            let found = find(&bytes, seq).unwrap();
            bytes = replace(&bytes, &found, None);
            let (ai, ri) = position(&rec, seq).unwrap();
            rec.apps[ai].reminders.remove(ri);
            assert_eq!(CustomerRecord::decode(&*bytes).unwrap(), rec);
        }
        assert!(rec.apps.iter().all(|a| a.reminders.is_empty()));
    }

    #[test]
    fn damaged_bytes_find_nothing_rather_than_panic() {
        let bytes = record().encode_to_vec();
        for cut in 0..bytes.len() {
            // Any answer is fine for a cut record, as long as it comes without a panic.
            let _ = find(&bytes[..cut], 1 << 40);
        }
        let mut bad = bytes.clone();
        // A group wire type (3) where the first field's key is.
        bad[0] = (1 << 3) | 3;
        assert!(find(&bad, 3).is_none());
        // A length pointing past the end.
        assert!(find(&[0x22, 0x7f, 0x0a], 3).is_none());
    }

    #[test]
    fn app_data_reads_as_the_decoded_record_gives_it() {
        let rec = record();
        let bytes = rec.encode_to_vec();
        for app in ["app_a", "app_b", "app_c", "app_x", ""] {
            let want = rec.app(app).and_then(|a| a.data.clone());
            assert_eq!(app_data(&bytes, app), want, "{app}");
        }
        // Two occurrences of the data field merge, as prost decodes them.
        let text = |s: &str| DataMapValue {
            value: Some(elarian_proto::data_map_value::Value::StringVal(s.into())),
        };
        let mut merged = CustomerRecord::default();
        merged.app_mut("app_m").data = Some(text("first"));
        let mut bytes = merged.encode_to_vec();
        let mut second = CustomerRecord::default();
        second.app_mut("app_m").data = Some(text("second"));
        bytes.extend(second.encode_to_vec());
        let decoded = CustomerRecord::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            app_data(&bytes, "app_m"),
            decoded.app("app_m").unwrap().data.clone()
        );
    }
}
