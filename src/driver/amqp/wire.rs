//! The amqp driver's wire format, readable by any AMQP client: queue names, message properties, and back.
//!
//! The body is the payload unchanged. `message_id` carries the [`MessageId`],
//! `timestamp` the publish time, `reply_to` and `correlation_id` a
//! request's reply address and correlation id, and the headers the user's
//! headers plus [`ATTEMPT`]. A message from a plain client with none of
//! these still decodes: it gets a fresh id and attempt 1.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;

use crate::bus::request::{HEADER_CORRELATION_ID, HEADER_REPLY_TO};
use crate::config::amqp::AmqpQueueType;
use crate::delivery::Envelope;
use crate::error::{Error, Result};
use crate::message_id::MessageId;

/// Header holding the delivery attempt; the bus's own, hidden from `Delivery::headers`.
pub(crate) const ATTEMPT: &str = "x-attempt";

/// Header marking a lease copy (see `lease`); the bus's own, hidden from
/// `Delivery::headers`.
pub(crate) const LEASED: &str = "x-leased";

/// Longest AMQP short string, and so the longest queue name on the wire.
const MAX_SHORT: usize = 255;

/// How long an unused wait queue outlives its message TTL before RabbitMQ
/// deletes it (`x-expires`); every publish to it re-declares it first.
pub(crate) const WAIT_QUEUE_GRACE: Duration = Duration::from_secs(60);

/// The name of `queue` on the broker: itself when it fits an AMQP short
/// string, else a prefix plus a hash of the whole, the same in every process.
pub(crate) fn wire_name(queue: &str) -> String {
    if queue.len() <= MAX_SHORT {
        return queue.to_owned();
    }
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(queue.as_bytes());
    let tag = format!("~{:016x}", hasher.finish());
    let mut cut = MAX_SHORT - tag.len();
    while !queue.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tag}", &queue[..cut])
}

/// The wait queue that holds `queue`'s messages for `delay`, then
/// dead-letters them back into `queue`.
pub(crate) fn wait_name(queue: &str, delay: Duration) -> String {
    wire_name(&format!("{queue}.wait.{}", wait_ms(delay)))
}

/// The longest wait RabbitMQ can hold: `x-message-ttl` and `x-expires` are
/// 32-bit millisecond counts, and `x-expires` adds [`WAIT_QUEUE_GRACE`].
pub(crate) const MAX_WAIT_MS: u64 = u32::MAX as u64 - WAIT_QUEUE_GRACE.as_millis() as u64;

/// A delay in whole milliseconds, rounded up so nothing comes early; at
/// least 1, and at most [`MAX_WAIT_MS`] ("as long as possible", about 49
/// days: a longer delay would be refused by the broker).
pub(crate) fn wait_ms(delay: Duration) -> u64 {
    let ms = delay.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).clamp(1, MAX_WAIT_MS)
}

/// The arguments of the bus's queues (`<q>`, `<q>.dead`, topic groups)
/// for `amqp.queue_type`: none for classic queues (as RabbitMQ's default,
/// and as queues declared before the setting existed), `x-queue-type:
/// quorum` for quorum ones. Wait queues keep their own (classic) arguments.
pub(crate) fn queue_arguments(kind: AmqpQueueType) -> FieldTable {
    let mut args = FieldTable::default();
    if kind == AmqpQueueType::Quorum {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    args
}

/// The arguments of the wait queue for `delay` in front of `target` (a wire name).
pub(crate) fn wait_arguments(target: &str, delay: Duration) -> FieldTable {
    let ms = wait_ms(delay);
    ttl_arguments(
        target,
        ms,
        ms.saturating_add(WAIT_QUEUE_GRACE.as_millis() as u64),
    )
}

/// The arguments of a queue that holds each message `ttl_ms`, then
/// dead-letters it into `target` (a wire name) through the default
/// exchange, and goes away after `expires_ms` unused: a wait or lease queue.
pub(crate) fn ttl_arguments(target: &str, ttl_ms: u64, expires_ms: u64) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(clamp(ttl_ms)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(target.into()),
    );
    args.insert(
        "x-expires".into(),
        AMQPValue::LongLongInt(clamp(expires_ms)),
    );
    args
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A short string, or a typed error instead of lapin's panic.
pub(crate) fn short(text: &str) -> Result<ShortString> {
    ShortString::try_new(text).map_err(|e| Error::backend(format!("{e}: {text:?}")))
}

/// Refuses a message whose properties cannot travel in one frame of
/// `frame_max` bytes (AMQP sends a message's header in a single frame;
/// RabbitMQ closes the connection on a larger one).
pub(crate) fn check_frame(envelope: &Envelope, frame_max: usize) -> Result<()> {
    // Frame header and end (8), class, weight, body size and flags (14),
    // delivery mode, message id, timestamp and the `x-attempt` entry.
    const FIXED: usize = 8 + 14 + 1 + 1 + 64 + 8 + 4 + 16;
    let headers: usize = envelope
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .map(|(k, v)| 1 + k.len() + 1 + 4 + v.len())
        .sum();
    let size = FIXED + headers;
    if size > frame_max {
        let name = envelope
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .max_by_key(|(k, v)| k.len() + v.len())
            .map_or_else(String::new, |(k, _)| k.clone());
        return Err(Error::InvalidHeader {
            name,
            reason: format!(
                "the headers take {size} bytes, more than one AMQP frame of {frame_max} bytes can carry"
            ),
        });
    }
    Ok(())
}

/// The properties `envelope` is published with: persistent, with id,
/// timestamp, the user's headers and the attempt. A request's reply
/// address and correlation id (the bus's `x-reply-to` and
/// `x-correlation-id`) go in AMQP's own `reply_to` and `correlation_id`,
/// where RabbitMQ's direct reply-to and any AMQP client look for them.
pub(crate) fn properties(envelope: &Envelope) -> Result<BasicProperties> {
    let mut headers = FieldTable::default();
    let (mut reply_to, mut correlation_id) = (None, None);
    for (key, value) in envelope.headers.iter().flat_map(|h| h.iter()) {
        match key.as_str() {
            HEADER_REPLY_TO => reply_to = Some(short(value)?),
            HEADER_CORRELATION_ID => correlation_id = Some(short(value)?),
            _ => {
                headers.insert(
                    short(key)?,
                    AMQPValue::LongString(LongString::from(value.as_bytes())),
                );
            }
        }
    }
    headers.insert(ATTEMPT.into(), AMQPValue::LongUInt(envelope.attempt));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(short(&envelope.id.to_string())?)
        .with_timestamp(now)
        .with_headers(headers);
    if let Some(reply_to) = reply_to {
        properties = properties.with_reply_to(reply_to);
    }
    if let Some(correlation_id) = correlation_id {
        properties = properties.with_correlation_id(correlation_id);
    }
    Ok(properties)
}

/// The envelope of a received message, whoever published it.
pub(crate) fn envelope(properties: &BasicProperties, data: Vec<u8>) -> Envelope {
    let id = properties
        .message_id()
        .as_ref()
        .filter(|id| !id.as_str().is_empty())
        .map_or_else(MessageId::generate, |id| MessageId::from_wire(id.as_str()));
    let mut attempt = 1;
    let mut headers = BTreeMap::new();
    for (key, value) in properties.headers().iter().flat_map(|h| h.inner()) {
        let key = key.as_str();
        if key == LEASED {
            continue;
        }
        if key == ATTEMPT {
            attempt = number(value)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1);
        } else if !is_broker_header(key) {
            headers.insert(key.to_owned(), text(value));
        }
    }
    // AMQP's own properties, as the bus's headers: what `Delivery::reply_to`
    // and `correlation_id` show, whoever published the request.
    let own = [
        (HEADER_REPLY_TO, properties.reply_to()),
        (HEADER_CORRELATION_ID, properties.correlation_id()),
    ];
    for (name, value) in own {
        if let Some(value) = value.as_ref().filter(|v| !v.as_str().is_empty()) {
            headers.insert(name.to_owned(), value.as_str().to_owned());
        }
    }
    Envelope {
        id,
        payload: Bytes::from(data),
        headers: (!headers.is_empty()).then(|| Arc::new(headers)),
        attempt: attempt.max(1),
        suspect: false,
    }
}

/// Whether a received message is a lease copy (it carries [`LEASED`]).
pub(crate) fn is_leased(properties: &BasicProperties) -> bool {
    properties
        .headers()
        .as_ref()
        .is_some_and(|h| h.inner().contains_key(LEASED))
}

/// `properties` with the lease marker added.
pub(crate) fn leased(properties: BasicProperties) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(LEASED.into(), AMQPValue::Boolean(true));
    properties.with_headers(headers)
}

/// Headers RabbitMQ adds when a wait queue dead-letters a message back,
/// and the delivery count of a quorum queue: bookkeeping of the broker,
/// not the user's (nor copied onto a retry or dead letter).
fn is_broker_header(key: &str) -> bool {
    key == "x-death"
        || key == DELIVERY_COUNT
        || key.starts_with("x-first-death-")
        || key.starts_with("x-last-death-")
}

/// The header in which a quorum queue counts a message's returns to the
/// queue. Not an attempt count: RabbitMQ 3.10 raises it for every message
/// handed back, prefetched-but-never-handled ones and peeked ones included
/// (see the README's cluster section).
const DELIVERY_COUNT: &str = "x-delivery-count";

fn number(value: &AMQPValue) -> Option<i128> {
    Some(match value {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).parse().ok()?,
        AMQPValue::ShortString(s) => s.as_str().parse().ok()?,
        _ => return None,
    })
}

/// A header value from any client, as text.
fn text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Float(f) => f.to_string(),
        AMQPValue::Double(f) => f.to_string(),
        AMQPValue::Timestamp(t) => t.to_string(),
        other => number(other).map_or_else(|| format!("{other:?}"), |n| n.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_deterministically() {
        let short_name = "q".repeat(255);
        assert_eq!(wire_name(&short_name), short_name);
        let long = format!(
            "{}.dead.dead.dead.dead.dead.dead.dead.dead.dead",
            "é".repeat(100)
        );
        let a = wire_name(&long);
        assert!(a.len() <= 255, "{}", a.len());
        assert_eq!(a, wire_name(&long));
        assert_ne!(a, wire_name(&format!("{long}x")));
        let wait = wait_name(&"q".repeat(200), Duration::from_millis(1500));
        assert_eq!(wait, format!("{}.wait.1500", "q".repeat(200)));
        assert_eq!(wait_ms(Duration::from_micros(1)), 1);
    }

    #[test]
    fn envelopes_round_trip_and_plain_messages_decode() {
        let headers = BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]);
        let mut sent = Envelope::new(Bytes::from_static(b"hi"), Some(Arc::new(headers)));
        sent.attempt = 3;
        let props = properties(&sent).unwrap();
        let got = envelope(&props, b"hi".to_vec());
        assert_eq!(got.id, sent.id);
        assert_eq!(got.attempt, 3);
        assert_eq!(got.headers, sent.headers);

        let plain = envelope(&BasicProperties::default(), Vec::new());
        assert_eq!(plain.attempt, 1);
        assert!(plain.headers.is_none());
    }

    #[test]
    fn quorum_bookkeeping_stays_off_the_delivery() {
        let mut headers = FieldTable::default();
        headers.insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(3));
        headers.insert(ATTEMPT.into(), AMQPValue::LongUInt(2));
        let got = envelope(
            &BasicProperties::default().with_headers(headers),
            Vec::new(),
        );
        assert_eq!(got.attempt, 2, "the stored attempt, not the broker's count");
        assert!(got.headers.is_none());
        assert!(queue_arguments(AmqpQueueType::Classic).inner().is_empty());
        let quorum = queue_arguments(AmqpQueueType::Quorum);
        assert_eq!(
            quorum.inner().get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
    }
}
