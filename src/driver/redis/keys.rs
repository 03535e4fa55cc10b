//! `Keys`: the Redis keys of one queue — its stream, delay set and dead letters, and for a topic's subscriber group its consumer group and the topic's stream.
//!
//! The layout itself (fields, members) is in `wire`; topics in `topics`.

use std::sync::Arc;

use crate::driver::redis::wire::GROUP;
use crate::validate;

/// The Redis keys of one queue.
///
/// On a single Redis, queue `<q>` is the stream `<q>`, with `<q>.delayed`
/// and `<q>.dead`. On a Redis Cluster every key of a queue must hash to one
/// slot, or its scripts could not run: the queue's name (less any trailing
/// `.dead`) becomes a hash tag, `{<q>}`, `{<q>}.delayed`, `{<q>}.dead`,
/// `{<q>}.dead.delayed`… Stripping `.dead` makes the dead-letter queue
/// `<q>.dead`, an ordinary queue, land on the stream `{<q>}.dead` that the
/// settle script of `<q>` writes (and its own dead letters beside it).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// The queue's name, as deliveries show it.
    pub(crate) queue: Arc<str>,
    /// The work stream: `<q>`, or `{<q>}` on a cluster. For a topic's
    /// subscriber group `<t>.<g>` it is the group's private stream: its
    /// retries, hand-backs, redriven messages and direct pushes, which no
    /// other group must see.
    pub(crate) stream: Arc<str>,
    /// The delay set: the stream's key and `.delayed`.
    pub(crate) delayed: Arc<str>,
    /// The dead-letter stream: the stream of the queue `<q>.dead`.
    pub(crate) dead: Arc<str>,
    /// The consumer group the queue is read with: [`GROUP`] for a queue,
    /// `<g>` for a subscriber group (on both of its streams).
    pub(crate) group: Arc<str>,
    /// A subscriber group's shared stream `<t>`, which every group of the
    /// topic reads with a consumer group of its own; `None` for a queue.
    pub(crate) topic: Option<Arc<str>>,
}

impl Keys {
    /// The keys of the ordinary queue `queue`; `tagged` on a Redis Cluster.
    pub(crate) fn new(queue: &str, tagged: bool) -> Self {
        let stream = if tagged {
            tagged_stream(queue)
        } else {
            queue.to_owned()
        };
        Keys {
            queue: queue.into(),
            delayed: format!("{stream}.delayed").into(),
            dead: validate::dead_letter_name(&stream).into(),
            stream: stream.into(),
            group: GROUP.into(),
            topic: None,
        }
    }

    /// The keys of the subscriber group whose queue is `<topic>.<group>`.
    /// Never tagged: topics are refused on a Redis Cluster (a topic's
    /// groups share its stream, so every group's keys would have to be in
    /// the topic's slot).
    pub(crate) fn group(topic: &str, group: &str) -> Self {
        Keys {
            group: group.into(),
            topic: Some(topic.into()),
            ..Keys::new(&format!("{topic}.{group}"), false)
        }
    }

    /// The topic and group a queue name stands for if it is a subscriber
    /// group (group names have no `.`); `None` for a name without a `.`.
    pub(crate) fn split_group(queue: &str) -> Option<(&str, &str)> {
        queue
            .rsplit_once('.')
            .filter(|(topic, group)| !topic.is_empty() && !group.is_empty())
    }

    /// The streams a listener reads: the shared one first, then its own.
    pub(crate) fn streams(&self) -> impl Iterator<Item = &Arc<str>> {
        self.topic.iter().chain(std::iter::once(&self.stream))
    }
}

/// The stream of `queue` on a Redis Cluster: `{<base>}<rest>`, where
/// `<rest>` is the trailing `.dead`s of the name and `<base>` what comes
/// before them (never empty: `.dead` alone is a base). Redis hashes only
/// what is between the first `{` and the next `}`, and that always lies
/// inside `{<base>}`, whatever the name holds.
fn tagged_stream(queue: &str) -> String {
    let dead = validate::dead_letter_name("");
    let mut base = queue;
    while let Some(shorter) = base.strip_suffix(dead.as_str()) {
        if shorter.is_empty() {
            break;
        }
        base = shorter;
    }
    format!("{{{base}}}{}", &queue[base.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_keys_of_a_queue_and_its_dead_letters_share_a_hash_tag() {
        let keys = Keys::new("jobs", true);
        assert_eq!(
            (&*keys.stream, &*keys.delayed, &*keys.dead),
            ("{jobs}", "{jobs}.delayed", "{jobs}.dead")
        );
        // The dead-letter queue's own stream is the one `jobs` writes to.
        let dead = Keys::new("jobs.dead", true);
        assert_eq!(&*dead.stream, &*keys.dead);
        assert_eq!(
            (&*dead.delayed, &*dead.dead, &*dead.queue),
            ("{jobs}.dead.delayed", "{jobs}.dead.dead", "jobs.dead")
        );
        assert_eq!(&*Keys::new(".dead", true).stream, "{.dead}");
        assert_eq!(&*Keys::new(".dead.dead", true).stream, "{.dead}.dead");
        assert_eq!(&*Keys::new("a{b}.dead", true).stream, "{a{b}}.dead");
        let plain = Keys::new("jobs.dead", false);
        assert_eq!(
            (&*plain.stream, &*plain.dead),
            ("jobs.dead", "jobs.dead.dead")
        );
    }
}
