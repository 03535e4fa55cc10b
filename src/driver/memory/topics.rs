//! `Topics`: the subscriber groups of each topic of a memory bus — one queue (one store) per group.

use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

/// One group of a topic: its queue, and the channel (`C`) that stores for
/// it, kept here so that a publish reaches every group without looking
/// each one up by name.
#[derive(Clone)]
pub(crate) struct Group<C> {
    pub(crate) queue: Arc<str>,
    pub(crate) channel: C,
}

/// A topic's groups, in the order they joined; shared with publishes
/// under way when another group joins.
pub(crate) type Groups<C> = Arc<[Group<C>]>;

/// Topic name → its groups.
pub(crate) struct Topics<C> {
    groups: RwLock<FxHashMap<Arc<str>, Groups<C>>>,
}

impl<C> Default for Topics<C> {
    fn default() -> Self {
        Topics {
            groups: RwLock::default(),
        }
    }
}

impl<C: Clone> Topics<C> {
    /// Adds the group whose queue is `queue` to `topic`, once; a group
    /// already there gets `channel` as its channel (the one that stores for
    /// its queue now).
    pub(crate) fn join(&self, topic: &str, queue: &str, channel: C) {
        let Ok(mut groups) = self.groups.write() else {
            return;
        };
        let known = groups.get(topic).cloned().unwrap_or_else(|| Arc::new([]));
        let mut grown = known.to_vec();
        match grown.iter_mut().find(|g| &*g.queue == queue) {
            Some(group) => group.channel = channel,
            None => grown.push(Group {
                queue: queue.into(),
                channel,
            }),
        }
        groups.insert(topic.into(), grown.into());
    }

    /// The groups of `topic` (none for a topic nobody joined).
    pub(crate) fn groups(&self, topic: &str) -> Groups<C> {
        self.groups
            .read()
            .ok()
            .and_then(|groups| groups.get(topic).cloned())
            .unwrap_or_else(|| Arc::new([]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(groups: &Groups<u32>) -> Vec<(&str, u32)> {
        groups.iter().map(|g| (&*g.queue, g.channel)).collect()
    }

    #[test]
    fn groups_join_once_per_topic_in_order() {
        let topics = Topics::default();
        assert!(topics.groups("t").is_empty());
        topics.join("t", "t.a", 1);
        topics.join("t", "t.b", 2);
        topics.join("u", "u.a", 3);
        assert_eq!(names(&topics.groups("t")), [("t.a", 1), ("t.b", 2)]);
        assert_eq!(names(&topics.groups("u")), [("u.a", 3)]);
    }

    #[test]
    fn joining_again_renews_the_channel_in_place() {
        let topics = Topics::default();
        topics.join("t", "t.a", 1);
        topics.join("t", "t.b", 2);
        let before = topics.groups("t");
        topics.join("t", "t.a", 7);
        assert_eq!(names(&topics.groups("t")), [("t.a", 7), ("t.b", 2)]);
        assert_eq!(
            names(&before),
            [("t.a", 1), ("t.b", 2)],
            "a publish under way keeps what it read"
        );
    }
}
