//! `MessageId`: the identity a message keeps across retries and dead-lettering.

use std::fmt;

use uuid::Uuid;

/// The identity of one message, returned by every push.
///
/// It stays the same across retries and when the message moves to
/// `<queue>.dead`, so it can be used to de-duplicate at-least-once deliveries.
/// Ids are UUIDv7: time-ordered, and kept binary so that an id costs 16
/// bytes, not a string allocation, per queued message.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(Uuid);

impl MessageId {
    /// A fresh, time-ordered id.
    pub(crate) fn generate() -> Self {
        MessageId(Uuid::now_v7())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
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
        assert_eq!(Uuid::try_parse(&text).map(MessageId), Ok(id));
        assert_eq!(text.len(), 36);
    }
}
