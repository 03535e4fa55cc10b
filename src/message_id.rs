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
    /// A fresh, time-ordered id, made without a lock (see [`next_v7`]).
    pub(crate) fn generate() -> Self {
        MessageId(Repr::Uuid(next_v7()))
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

    /// When the message was pushed, to the millisecond: the time in an
    /// actorbus id (UUIDv7). `None` for an id without a time (foreign text,
    /// a random UUID).
    #[cfg(feature = "metrics")]
    pub(crate) fn pushed_at(&self) -> Option<std::time::SystemTime> {
        let Repr::Uuid(uuid) = &self.0 else {
            return None;
        };
        let (secs, nanos) = uuid.get_timestamp()?.to_unix();
        Some(std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
    }
}

/// Bits of the per-thread counter in an id: rand_a (12) and the top 30 of rand_b.
const COUNTER_BITS: u32 = 42;
/// Bits of the per-thread random tag, the low end of rand_b.
const TAG_BITS: u32 = 32;

/// One thread's id generator.
struct Generator {
    /// The millisecond of the last id (it may run ahead of the clock when
    /// more than 2^42 ids were made in one millisecond).
    ms: u64,
    /// Counts ids within `ms`; starts at a random point each millisecond.
    counter: u64,
    /// This thread's random tag: two threads' ids differ by it.
    tag: u32,
}

thread_local! {
    static GENERATOR: std::cell::Cell<Option<Generator>> = const { std::cell::Cell::new(None) };
}

/// 62 random bits: the random tail of a `Uuid::now_v7` (its lock is taken
/// once per millisecond per thread, not per id).
fn random_bits() -> u64 {
    (Uuid::now_v7().as_u128() as u64) & ((1 << 62) - 1)
}

/// A UUIDv7 from this thread's generator: the time in milliseconds, then a
/// counter that is random at each new millisecond and rises by one per id
/// within it, then the thread's random tag. Ids of one thread strictly
/// increase; ids of two threads differ by their tags (and their counters'
/// random starts). The shared clock sequence of `Uuid::now_v7` takes a
/// lock per id; this takes none but once per millisecond.
fn next_v7() -> Uuid {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    GENERATOR.with(|cell| {
        let mut gen = cell.take().unwrap_or_else(|| Generator {
            ms: 0,
            counter: 0,
            tag: random_bits() as u32,
        });
        let max = (1u64 << COUNTER_BITS) - 1;
        if now > gen.ms {
            gen.ms = now;
            // Room for 2^41 more ids before this millisecond runs out.
            gen.counter = random_bits() & (max >> 1);
        } else if gen.counter == max {
            gen.ms += 1;
            gen.counter = 0;
        } else {
            gen.counter += 1;
        }
        let (ms, counter, tag) = (gen.ms, gen.counter, gen.tag);
        cell.set(Some(gen));
        let rand_a = u128::from(counter >> (COUNTER_BITS - 12));
        let low = counter & ((1 << (COUNTER_BITS - 12)) - 1);
        let rand_b = (u128::from(low) << TAG_BITS) | u128::from(tag);
        let bits = (u128::from(ms & 0xFFFF_FFFF_FFFF) << 80)
            | (0x7 << 76)
            | (rand_a << 64)
            | (0b10 << 62)
            | rand_b;
        Uuid::from_u128(bits)
    })
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
    fn ids_are_v7_and_rise_per_thread_and_differ_across_threads() {
        let mine: Vec<Uuid> = (0..100_000).map(|_| next_v7()).collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "strictly rising");
        assert!(mine
            .iter()
            .all(|u| u.get_version_num() == 7 && u.get_variant() == uuid::Variant::RFC4122));
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..20_000).map(|_| next_v7()).collect::<Vec<_>>()))
            .collect();
        let mut all: std::collections::HashSet<Uuid> = mine.into_iter().collect();
        for thread in threads {
            for id in thread.join().expect("thread") {
                assert!(all.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(all.len(), 180_000);
    }

    #[test]
    fn displays_as_a_hyphenated_uuid() {
        let id = MessageId::generate();
        let text = id.to_string();
        assert_eq!(MessageId::from_wire(&text), id);
        assert_eq!(text.len(), 36);
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn pushed_at_is_the_ids_millisecond() {
        let before = std::time::SystemTime::now();
        let id = MessageId::generate();
        let after = std::time::SystemTime::now();
        let at = id.pushed_at().expect("a generated id carries its time");
        let ms = std::time::Duration::from_millis(1);
        assert!(
            at + ms > before && at <= after,
            "{at:?} not within {before:?}..{after:?}"
        );
        assert_eq!(MessageId::from_wire("1700000000000-0").pushed_at(), None);
        // A UUID of another version has no push time either.
        let v4 = MessageId::from_wire("67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(v4.pushed_at(), None);
    }

    #[test]
    fn foreign_ids_round_trip_as_text() {
        let id = MessageId::from_wire("1700000000000-0");
        assert_eq!(id.to_string(), "1700000000000-0");
        assert_eq!(id, MessageId::from_wire("1700000000000-0"));
        assert_ne!(id, MessageId::generate());
    }
}
