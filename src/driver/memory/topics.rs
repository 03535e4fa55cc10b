//! `Topics`: the subscriber groups of each topic of a memory bus — one queue (one store) per group.

use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

/// The queues of one topic's groups, in the order they joined; shared with
/// publishes under way when another group joins.
type Groups = Arc<[Arc<str>]>;

/// Topic name → its groups.
#[derive(Default)]
pub(crate) struct Topics {
    groups: RwLock<FxHashMap<Arc<str>, Groups>>,
}

impl Topics {
    /// Adds the group whose queue is `queue` to `topic`, once.
    pub(crate) fn join(&self, topic: &str, queue: &str) {
        let Ok(mut groups) = self.groups.write() else {
            return;
        };
        let known = groups.get(topic).cloned().unwrap_or_else(|| Arc::new([]));
        if known.iter().any(|g| &**g == queue) {
            return;
        }
        let mut grown = known.to_vec();
        grown.push(queue.into());
        groups.insert(topic.into(), grown.into());
    }

    /// The queues of `topic`'s groups (none for a topic nobody joined).
    pub(crate) fn groups(&self, topic: &str) -> Groups {
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

    #[test]
    fn groups_join_once_per_topic() {
        let topics = Topics::default();
        assert!(topics.groups("t").is_empty());
        topics.join("t", "t.a");
        topics.join("t", "t.b");
        topics.join("t", "t.a");
        topics.join("u", "u.a");
        let groups = topics.groups("t");
        let got: Vec<&str> = groups.iter().map(|g| &**g).collect();
        assert_eq!(got, ["t.a", "t.b"]);
    }
}
