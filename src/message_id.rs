//! `MessageId`: the identity a message keeps across retries and dead-lettering.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

/// The identity of one message, returned by every push.
///
/// It stays the same across retries and when the message moves to
/// `<queue>.dead`, so it can be used to de-duplicate at-least-once deliveries.
/// Ids made by actorbus are UUIDv7: time-ordered, and kept binary so that an
/// id costs 16 bytes, not a string allocation, per queued message. A message
/// published by another program keeps the id it came with (an AMQP
/// `message_id`, or the stream entry id on Redis) as text. It serializes
/// as that text, as it displays.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(Repr);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Uuid(Uuid),
    Text(Arc<str>),
}

impl MessageId {
    /// A fresh, time-ordered id.
    pub(crate) fn generate() -> Self {
        MessageId(Repr::Uuid(Uuid::now_v7()))
    }

    /// The id a message carries on the wire: a UUID when actorbus wrote it,
    /// else whatever text the publishing program chose.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn from_wire(text: &str) -> Self {
        match Uuid::try_parse(text) {
            Ok(uuid) => MessageId(Repr::Uuid(uuid)),
            Err(_) => MessageId(Repr::Text(text.into())),
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Uuid(uuid) => fmt::Display::fmt(&uuid.hyphenated(), f),
            Repr::Text(text) => f.write_str(text),
        }
    }
}

impl serde::Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_ordered() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert_ne!(a, b);
        assert!(a < b, "uuid v7 ids sort by creation time");
    }

    #[test]
    fn displays_as_a_hyphenated_uuid() {
        let id = MessageId::generate();
        let text = id.to_string();
        assert_eq!(MessageId::from_wire(&text), id);
        assert_eq!(text.len(), 36);
    }

    #[test]
    fn foreign_ids_round_trip_as_text() {
        let id = MessageId::from_wire("1700000000000-0");
        assert_eq!(id.to_string(), "1700000000000-0");
        assert_eq!(id, MessageId::from_wire("1700000000000-0"));
        assert_ne!(id, MessageId::generate());
    }
}
