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
/// A topic's keys share the topic's tag instead ([`Keys::group`]).
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
        Keys::on(queue, stream)
    }

    /// The keys of the ordinary queue `queue` whose stream is `stream`.
    fn on(queue: &str, stream: String) -> Self {
        Keys {
            queue: queue.into(),
            delayed: format!("{stream}.delayed").into(),
            dead: validate::dead_letter_name(&stream).into(),
            stream: stream.into(),
            group: GROUP.into(),
            topic: None,
        }
    }

    /// The shared stream of `topic`: the key a queue of that name has
    /// (`<t>`, or `{<t>}` on a Redis Cluster).
    pub(crate) fn topic_stream(topic: &str, tagged: bool) -> String {
        Keys::new(topic, tagged).stream.to_string()
    }

    /// The keys of the subscriber group whose queue is `<topic>.<group>`;
    /// `tagged` on a Redis Cluster. Every key of a group starts with its
    /// topic's stream, `{<t>}.<g>`, `{<t>}.<g>.delayed`, `{<t>}.<g>.dead`
    /// (on one Redis `<t>.<g>`…, a queue's own keys): the group's scripts
    /// touch the shared stream and its own keys in one call, so on a
    /// cluster they must all hash to the topic's slot.
    pub(crate) fn group(topic: &str, group: &str, tagged: bool) -> Self {
        let shared = Keys::topic_stream(topic, tagged);
        let own = Keys::on(&format!("{topic}.{group}"), format!("{shared}.{group}"));
        Keys {
            group: group.into(),
            topic: Some(shared.into()),
            ..own
        }
    }

    /// The keys of `queue`, a dead-letter queue of the subscriber group
    /// `<topic>.<group>` (`<t>.<g>.dead`, or a `.dead` of that): an ordinary
    /// queue whose stream is the group's own stream with the same trailing
    /// `.dead`s, the stream the group's settle script writes. On one Redis
    /// these are the keys [`Keys::new`] gives; on a cluster they stay in
    /// the topic's slot.
    pub(crate) fn group_dead(topic: &str, group: &str, queue: &str, tagged: bool) -> Self {
        let own = Keys::group(topic, group, tagged).stream;
        let deads = &queue[dead_base(queue).len()..];
        Keys::on(queue, format!("{own}{deads}"))
    }

    /// The topic and group a queue name stands for if it is a subscriber
    /// group (group names have no `.`); `None` for a name without a `.`.
    pub(crate) fn split_group(queue: &str) -> Option<(&str, &str)> {
        queue
            .rsplit_once('.')
            .filter(|(topic, group)| !topic.is_empty() && !group.is_empty())
    }

    /// The topic and group whose keys `queue` may have, asked of Redis
    /// before its keys are known: on one Redis a name `<t>.<g>` may be a
    /// group; on a Redis Cluster also a name `<t>.<g>.dead` may be the
    /// group's dead letters, whose keys are in the topic's slot (on one
    /// Redis they are the keys of an ordinary queue of that name).
    pub(crate) fn candidate(queue: &str, tagged: bool) -> Option<(&str, &str)> {
        Keys::split_group(if tagged { dead_base(queue) } else { queue })
    }

    /// The streams a listener reads: the shared one first, then its own.
    pub(crate) fn streams(&self) -> impl Iterator<Item = &Arc<str>> {
        self.topic.iter().chain(std::iter::once(&self.stream))
    }
}

/// `queue` without its trailing `.dead`s, never empty (`.dead` alone is a
/// base).
pub(crate) fn dead_base(queue: &str) -> &str {
    let dead = validate::dead_letter_name("");
    let mut base = queue;
    while let Some(shorter) = base.strip_suffix(dead.as_str()) {
        if shorter.is_empty() {
            break;
        }
        base = shorter;
    }
    base
}

/// The stream of `queue` on a Redis Cluster: `{<base>}<rest>`, where
/// `<rest>` is the trailing `.dead`s of the name and `<base>` what comes
/// before them ([`dead_base`]). Redis hashes only what is between the first
/// `{` and the next `}`, and that always lies inside `{<base>}`, whatever
/// the name holds.
fn tagged_stream(queue: &str) -> String {
    let base = dead_base(queue);
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

    #[test]
    fn every_key_of_a_topic_shares_the_topic_tag_on_a_cluster() {
        let g = Keys::group("news", "audit", true);
        assert_eq!(
            (
                g.topic.as_deref(),
                &*g.stream,
                &*g.delayed,
                &*g.dead,
                &*g.queue,
                &*g.group
            ),
            (
                Some("{news}"),
                "{news}.audit",
                "{news}.audit.delayed",
                "{news}.audit.dead",
                "news.audit",
                "audit"
            )
        );
        // The group's dead letters, an ordinary queue, are the stream its
        // settle script writes, and their own keys stay in the slot.
        let dead = Keys::group_dead("news", "audit", "news.audit.dead", true);
        assert_eq!(&*dead.stream, &*g.dead);
        assert!(dead.topic.is_none());
        assert_eq!(
            (&*dead.delayed, &*dead.dead, &*dead.queue, &*dead.group),
            (
                "{news}.audit.dead.delayed",
                "{news}.audit.dead.dead",
                "news.audit.dead",
                GROUP
            )
        );
        let deeper = Keys::group_dead("news", "audit", "news.audit.dead.dead", true);
        assert_eq!(&*deeper.stream, &*dead.dead);
        // A topic's stream is the key a queue of its name has.
        assert_eq!(Keys::topic_stream("a.dead", true), "{a}.dead");
        assert_eq!(&*Keys::group("a.dead", "g", true).stream, "{a}.dead.g");
    }

    #[test]
    fn single_node_topic_keys_are_the_plain_names() {
        let g = Keys::group("news", "audit", false);
        assert_eq!(
            (g.topic.as_deref(), &*g.stream, &*g.delayed, &*g.dead),
            (
                Some("news"),
                "news.audit",
                "news.audit.delayed",
                "news.audit.dead"
            )
        );
        let dead = Keys::group_dead("news", "audit", "news.audit.dead", false);
        let plain = Keys::new("news.audit.dead", false);
        assert_eq!(
            (&*dead.stream, &*dead.delayed, &*dead.dead),
            (&*plain.stream, &*plain.delayed, &*plain.dead)
        );
    }

    #[test]
    fn names_that_may_be_a_group_or_its_dead_letters() {
        assert_eq!(Keys::candidate("t.g", false), Some(("t", "g")));
        assert_eq!(Keys::candidate("t.g", true), Some(("t", "g")));
        assert_eq!(Keys::candidate("t.g.dead", false), Some(("t.g", "dead")));
        assert_eq!(Keys::candidate("t.g.dead.dead", true), Some(("t", "g")));
        assert_eq!(Keys::candidate("jobs.dead", true), None);
        assert_eq!(Keys::candidate("jobs", true), None);
        assert_eq!(Keys::candidate(".dead", true), None);
    }
}
