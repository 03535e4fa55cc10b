//! `MessageId`: the identity a message keeps across retries and dead-lettering.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

/// The identity of one message, returned by every push.
///
/// It stays the same across retries and when the message moves to
/// `<queue>.dead`, so it can be used to de-duplicate at-least-once deliveries.
/// Ids made by actorbus are UUIDv7 (time-ordered); a message that entered a
/// broker from another program keeps that program's id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(Repr);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    // Kept binary so that an id costs 16 bytes, not a string allocation, per
    // queued message.
    Uuid(Uuid),
    Text(Arc<str>),
}

impl MessageId {
    /// A fresh, time-ordered id.
    pub(crate) fn generate() -> Self {
        MessageId(Repr::Uuid(Uuid::now_v7()))
    }

    /// An id given by another program (an AMQP `message_id`, a stream entry).
    #[allow(dead_code)] // used by the broker drivers
    pub(crate) fn from_text(text: &str) -> Self {
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
    fn text_ids_round_trip_and_uuids_are_recognised() {
        let foreign = MessageId::from_text("order-42");
        assert_eq!(foreign.to_string(), "order-42");
        let own = MessageId::generate();
        assert_eq!(MessageId::from_text(&own.to_string()), own);
    }
}
