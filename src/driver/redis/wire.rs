//! How the redis driver lays messages out in Redis: entry fields and delay-set members.
//!
//! Queue `<q>` is the stream `<q>` read by the consumer group `actorbus`.
//! An entry's fields are `payload` (the bytes unchanged), `id` (the
//! [`MessageId`] as text), `attempt`, and one `h:<name>` field per header.
//! Only `payload` is required: an entry another program added with
//! `XADD <q> * payload hello` is delivered with the stream entry id as its
//! message id, attempt 1, and any other field as a header of that name.
//! Delayed and backed-off messages wait in the sorted set `<q>.delayed`,
//! scored by due time (ms since the Unix epoch), each member the entry's
//! fields length-prefixed (`<len>:<bytes>` per field and value), which Lua
//! can split without any binary-unsafe decoding. The scripts that move
//! them are in `scripts`.
//!
//! A topic `<t>` is the stream `<t>`, and its subscriber group `<g>` the
//! consumer group `<g>` on it, beside the group's own stream `<t>.<g>`
//! (consumer group `<g>` too) for its retries and hand-backs; see `topics`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::streams::StreamId;
use redis::Value;

use crate::delivery::Envelope;
use crate::message_id::MessageId;

/// The consumer group every actorbus listener reads with.
pub(crate) const GROUP: &str = "actorbus";
/// The field holding the payload bytes.
const PAYLOAD: &str = "payload";
/// The field holding the message id.
const ID: &str = "id";
/// The field holding the attempt number.
const ATTEMPT: &str = "attempt";
/// Prefix of header fields.
const HEADER: &str = "h:";

/// Calls `arg` with each field name and value of `envelope`, in order, as
/// `XADD` takes them; nothing is copied but the id's text.
pub(crate) fn write_fields(envelope: &Envelope, mut arg: impl FnMut(&[u8])) {
    arg(PAYLOAD.as_bytes());
    arg(&envelope.payload);
    // Formatted on the stack: a string per push showed in profiles.
    let mut text = [0u8; 64];
    arg(ID.as_bytes());
    match write_into(&mut text, &envelope.id) {
        Some(id) => arg(id),
        None => arg(envelope.id.to_string().as_bytes()),
    }
    arg(ATTEMPT.as_bytes());
    match write_into(&mut text, &envelope.attempt) {
        Some(attempt) => arg(attempt),
        None => arg(envelope.attempt.to_string().as_bytes()),
    }
    for (name, value) in envelope.headers.iter().flat_map(|h| h.iter()) {
        arg(format!("{HEADER}{name}").as_bytes());
        arg(value.as_bytes());
    }
}

/// `value` formatted into `buf`; `None` if it does not fit.
fn write_into<'a>(buf: &'a mut [u8; 64], value: &dyn std::fmt::Display) -> Option<&'a [u8]> {
    use std::io::Write as _;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{value}").ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    Some(&buf[..len])
}

/// The fields of `envelope` as stream entry field/value pairs.
pub(crate) fn fields(envelope: &Envelope) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut flat = Vec::new();
    write_fields(envelope, |part| flat.push(part.to_vec()));
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut parts = flat.into_iter();
    while let (Some(field), Some(value)) = (parts.next(), parts.next()) {
        out.push((field, value));
    }
    out
}

/// `envelope` as a member of the delay set.
pub(crate) fn member(envelope: &Envelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(envelope.payload.len() + 64);
    for (field, value) in fields(envelope) {
        for part in [field, value] {
            out.extend_from_slice(part.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(&part);
        }
    }
    out
}

/// Milliseconds since the Unix epoch, `after` from now: a delay-set score.
pub(crate) fn due_ms(after: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // A delay too long to add is "as long as possible".
    now.checked_add(after)
        .and_then(|due| u64::try_from(due.as_millis()).ok())
        .unwrap_or(u64::MAX)
}

/// A stream entry that is not a message: it goes to `<q>.dead` as it is,
/// with the reason as `x-error`.
#[derive(Debug)]
pub(crate) struct Malformed {
    /// Why it cannot be delivered.
    pub(crate) reason: String,
    /// Its fields, unchanged.
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One stream entry as read: its id and its fields in order. Built from the
/// reply directly: a map per entry (as `StreamReadReply` makes) cost more
/// than the rest of a delivery.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    /// The stream entry id.
    pub(crate) id: String,
    /// It is in a topic's shared stream, not the queue's own.
    pub(crate) shared: bool,
    /// Field names and values; empty when the entry's data was deleted.
    pub(crate) fields: Vec<(String, Value)>,
}

impl Entry {
    fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(f, _)| f == name).map(|(_, v)| v)
    }

    /// The entries of an `XREADGROUP` reply (nil when it timed out);
    /// those of stream `shared` are marked so.
    pub(crate) fn from_read_reply(reply: Value, shared: Option<&str>) -> Vec<Entry> {
        let streams = match reply {
            Value::Array(streams) => streams,
            Value::Map(pairs) => pairs
                .into_iter()
                .map(|(k, v)| Value::Array(vec![k, v]))
                .collect(),
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        for stream in streams {
            let Value::Array(mut parts) = stream else {
                continue;
            };
            if parts.len() != 2 {
                continue;
            }
            let entries = parts.swap_remove(1);
            let name = bytes_of(parts.swap_remove(0));
            let is_shared = shared.is_some_and(|s| name == s.as_bytes());
            if let Value::Array(entries) = entries {
                out.extend(
                    entries
                        .into_iter()
                        .filter_map(Entry::from_value)
                        .map(|mut entry| {
                            entry.shared = is_shared;
                            entry
                        }),
                );
            }
        }
        out
    }

    /// The entries of an `XRANGE` reply, in order.
    pub(crate) fn from_range_reply(reply: Value) -> Vec<Entry> {
        match reply {
            Value::Array(entries) => entries.into_iter().filter_map(Entry::from_value).collect(),
            _ => Vec::new(),
        }
    }

    /// One `[id, [field, value, ...]]` entry.
    fn from_value(value: Value) -> Option<Entry> {
        let Value::Array(mut parts) = value else {
            return None;
        };
        if parts.is_empty() {
            return None;
        }
        let fields = if parts.len() > 1 {
            parts.swap_remove(1)
        } else {
            Value::Nil
        };
        let id = String::from_utf8(bytes_of(parts.swap_remove(0))).ok()?;
        let mut entry = Entry {
            id,
            shared: false,
            fields: Vec::new(),
        };
        if let Value::Array(flat) = fields {
            entry.fields.reserve(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                let name = String::from_utf8_lossy(&bytes_of(name)).into_owned();
                entry.fields.push((name, value));
            }
        }
        Some(entry)
    }
}

impl From<StreamId> for Entry {
    fn from(entry: StreamId) -> Self {
        Entry {
            id: entry.id,
            shared: false,
            fields: entry.map.into_iter().collect(),
        }
    }
}

/// What settles a delivery on Redis: its stream entry id, and whether the
/// entry is in a topic's shared stream (ids of two streams may be equal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EntryRef {
    /// The stream entry id.
    pub(crate) id: String,
    /// It is in the topic's shared stream, not the queue's own.
    pub(crate) shared: bool,
}

/// Reads a stream entry as a message.
///
/// # Errors
///
/// [`Malformed`] when it has no `payload` field or a bad `attempt`.
pub(crate) fn decode(entry_id: &str, entry: Entry) -> Result<Envelope, Malformed> {
    let problem = match (entry.get(PAYLOAD), entry.get(ATTEMPT)) {
        (None, _) => Some("entry has no `payload` field".to_owned()),
        (Some(payload), _) if !matches!(payload, Value::BulkString(_)) => {
            Some("the `payload` field is not a string".to_owned())
        }
        (_, Some(attempt)) if attempt_of(attempt).is_none() => {
            Some("the `attempt` field is not a number from 1".to_owned())
        }
        _ => None,
    };
    if let Some(reason) = problem {
        // The dead-letter copy must itself be a message, or `<q>.dead` could
        // not be read as an ordinary queue: an empty payload stands in for a
        // missing one, and a bad attempt (named in `x-error`) is left out.
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = entry
            .fields
            .into_iter()
            .filter(|(field, value)| field != ATTEMPT || attempt_of(value).is_some())
            .map(|(field, value)| (field.into_bytes(), bytes_of(value)))
            .collect();
        if !fields.iter().any(|(field, _)| field == PAYLOAD.as_bytes()) {
            fields.push((PAYLOAD.into(), Vec::new()));
        }
        return Err(Malformed { reason, fields });
    }
    let mut envelope = Envelope {
        id: MessageId::from_wire(entry_id),
        payload: Bytes::new(),
        headers: None,
        attempt: 1,
        suspect: false,
    };
    let mut headers = BTreeMap::new();
    for (field, value) in entry.fields {
        match field.as_str() {
            PAYLOAD => envelope.payload = Bytes::from(bytes_of(value)),
            ID => envelope.id = MessageId::from_wire(&String::from_utf8_lossy(&bytes_of(value))),
            ATTEMPT => envelope.attempt = attempt_of(&value).unwrap_or(1),
            _ => {
                let name = field.strip_prefix(HEADER).unwrap_or(&field).to_owned();
                headers.insert(name, String::from_utf8_lossy(&bytes_of(value)).into_owned());
            }
        }
    }
    if !headers.is_empty() {
        envelope.headers = Some(Arc::new(headers));
    }
    Ok(envelope)
}

fn attempt_of(value: &Value) -> Option<u32> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()?
            .parse()
            .ok()
            .filter(|a| *a >= 1),
        _ => None,
    }
}

fn bytes_of(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(text) => text.into_bytes(),
        Value::Int(n) => n.to_string().into_bytes(),
        other => format!("{other:?}").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_length_prefixed_fields() {
        let mut envelope = Envelope::new(Bytes::from_static(b"a:b\x00"), None);
        envelope.attempt = 2;
        let id = envelope.id.to_string();
        let expected = format!("7:payload4:a:b\x002:id36:{id}7:attempt1:2");
        assert_eq!(member(&envelope), expected.into_bytes());
    }

    fn entry(id: &str, fields: &[(&str, &str)]) -> Entry {
        Entry {
            id: id.to_owned(),
            shared: false,
            fields: fields
                .iter()
                .map(|(f, v)| ((*f).to_owned(), Value::BulkString(v.as_bytes().to_vec())))
                .collect(),
        }
    }

    #[test]
    fn a_foreign_entry_decodes_with_its_entry_id() {
        let envelope = decode(
            "1-0",
            entry("1-0", &[("payload", "hello"), ("source", "cli")]),
        )
        .unwrap();
        assert_eq!(envelope.id, MessageId::from_wire("1-0"));
        assert_eq!(&envelope.payload[..], b"hello");
        assert_eq!(envelope.attempt, 1);
        assert_eq!(envelope.headers.unwrap()["source"], "cli");
    }

    #[test]
    fn fields_round_trip() {
        let headers = BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]);
        let mut sent = Envelope::new(Bytes::from_static(b"x"), Some(Arc::new(headers)));
        sent.attempt = 3;
        let map = fields(&sent)
            .into_iter()
            .map(|(f, v)| (String::from_utf8(f).unwrap(), Value::BulkString(v)))
            .collect();
        let got = decode(
            "5-0",
            Entry {
                id: "5-0".into(),
                shared: false,
                fields: map,
            },
        )
        .unwrap();
        assert_eq!(
            (got.id, got.attempt, got.payload),
            (sent.id, 3, sent.payload)
        );
        assert_eq!(got.headers, sent.headers);
    }

    #[test]
    fn read_replies_parse_in_order_and_deleted_entries_have_no_fields() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("q"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("payload"), bulk("a")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let entries = Entry::from_read_reply(reply.clone(), None);
        assert!(Entry::from_read_reply(reply, Some("q"))
            .iter()
            .all(|e| e.shared));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(entries[0].fields, [("payload".to_owned(), bulk("a"))]);
        assert_eq!(
            (entries[1].id.as_str(), entries[1].fields.len()),
            ("2-0", 0)
        );
        assert!(Entry::from_read_reply(Value::Nil, None).is_empty());
    }

    #[test]
    fn entries_without_payload_or_with_a_bad_attempt_are_malformed() {
        let err = decode("1-0", entry("1-0", &[("body", "x")])).unwrap_err();
        assert!(err.reason.contains("payload"), "{err:?}");
        let mut fields = err.fields;
        fields.sort();
        assert_eq!(
            fields,
            [
                (b"body".to_vec(), b"x".to_vec()),
                (b"payload".to_vec(), Vec::new())
            ]
        );
        let err = decode("1-0", entry("1-0", &[("payload", "x"), ("attempt", "0")])).unwrap_err();
        assert!(err.reason.contains("attempt"), "{err:?}");
        assert_eq!(err.fields, [(b"payload".to_vec(), b"x".to_vec())]);
    }
}
