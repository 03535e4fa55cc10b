//! `Subscribers`: a queue's listeners and their leases — who gets the next message.
//!
//! Pure bookkeeping, kept apart from the channel actor so that the fairness
//! and window rules can be tested without actors.

use crate::listener::ListenerId;

/// One listener as its queue sees it; `A` is its address.
struct Subscriber<A> {
    id: ListenerId,
    addr: A,
    /// How many leases it may hold at once.
    window: usize,
    /// How many it holds now.
    leased: usize,
}

/// The listeners of one queue, in round-robin order.
pub(crate) struct Subscribers<A> {
    list: Vec<Subscriber<A>>,
    /// Which listener is offered the next message first.
    cursor: usize,
}

impl<A> Default for Subscribers<A> {
    fn default() -> Self {
        Subscribers {
            list: Vec::new(),
            cursor: 0,
        }
    }
}

impl<A> Subscribers<A> {
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn attach(&mut self, id: ListenerId, addr: A, window: usize) {
        self.list.push(Subscriber {
            id,
            addr,
            window: window.max(1),
            leased: 0,
        });
    }

    /// Whether listener `id` is attached.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))] // brokers only
    pub(crate) fn contains(&self, id: ListenerId) -> bool {
        self.list.iter().any(|s| s.id == id)
    }

    /// The attached listeners' ids.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn ids(&self) -> Vec<ListenerId> {
        self.list.iter().map(|s| s.id).collect()
    }

    /// How many more leases listener `id` may take; 0 when it is not attached.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn credit(&self, id: ListenerId) -> usize {
        self.list
            .iter()
            .find(|s| s.id == id)
            .map_or(0, |s| s.window.saturating_sub(s.leased))
    }

    /// Listener `id`'s address and `count` more leases for it, unless it is
    /// not attached.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn lease(&mut self, id: ListenerId, count: usize) -> Option<&A> {
        let s = self.list.iter_mut().find(|s| s.id == id)?;
        s.leased += count;
        Some(&s.addr)
    }

    /// Forgets a listener; its leases are the caller's to reclaim.
    pub(crate) fn detach(&mut self, id: ListenerId) {
        self.list.retain(|s| s.id != id);
    }

    /// Forgets every listener, returning their addresses.
    pub(crate) fn drain(&mut self) -> Vec<A> {
        self.list.drain(..).map(|s| s.addr).collect()
    }

    /// `count` leases of `owner` ended.
    pub(crate) fn returned(&mut self, owner: ListenerId, count: usize) {
        if let Some(s) = self.list.iter_mut().find(|s| s.id == owner) {
            s.leased = s.leased.saturating_sub(count);
        }
    }

    /// Leases items (from `lease`, called with the receiving listener's
    /// id, `None` when the queue is empty) to listeners with room in their
    /// window, one per listener per round so competing consumers share
    /// evenly, and hands each listener's batch to `deliver`; empty batches
    /// are left out. Runs on every dispatch: with one listener (the common
    /// case) and nothing to lease it allocates nothing.
    pub(crate) fn assign<T>(
        &mut self,
        mut lease: impl FnMut(ListenerId) -> Option<T>,
        mut deliver: impl FnMut(&A, Vec<T>),
    ) {
        if let [s] = self.list.as_mut_slice() {
            let mut batch = Vec::new();
            while s.leased < s.window {
                let Some(item) = lease(s.id) else {
                    break;
                };
                s.leased += 1;
                batch.push(item);
            }
            if !batch.is_empty() {
                deliver(&s.addr, batch);
            }
            return;
        }
        let n = self.list.len();
        let mut batches: Vec<Vec<T>> = std::iter::repeat_with(Vec::new).take(n).collect();
        let mut progress = n > 0;
        'rounds: while progress {
            progress = false;
            let start = self.cursor;
            for step in 0..n {
                let i = (start + step) % n;
                let s = &mut self.list[i];
                if s.leased >= s.window {
                    continue;
                }
                let Some(item) = lease(s.id) else {
                    break 'rounds;
                };
                s.leased += 1;
                batches[i].push(item);
                // The next message, in this call or the next, goes to the
                // listener after the last one served.
                self.cursor = (i + 1) % n;
                progress = true;
            }
        }
        for (s, batch) in self.list.iter().zip(batches) {
            if !batch.is_empty() {
                deliver(&s.addr, batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        subs: &mut Subscribers<&'static str>,
        available: &mut usize,
    ) -> Vec<(&'static str, usize)> {
        let mut got = Vec::new();
        subs.assign(
            |_| {
                (*available > 0).then(|| {
                    *available -= 1;
                })
            },
            |addr, batch| got.push((*addr, batch.len())),
        );
        got
    }

    #[test]
    fn shares_evenly_and_respects_windows() {
        let mut subs = Subscribers::default();
        subs.attach(1, "a", 2);
        subs.attach(2, "b", 10);
        let mut available = 7;
        assert_eq!(counts(&mut subs, &mut available), [("a", 2), ("b", 5)]);
        assert_eq!(available, 0);

        // Full windows take nothing until leases come back.
        let mut more = 30;
        assert_eq!(counts(&mut subs, &mut more), [("b", 5)]);
        subs.returned(1, 1);
        assert_eq!(counts(&mut subs, &mut more), [("a", 1)]);
        assert_eq!(more, 24);
    }

    #[test]
    fn round_robin_start_rotates_between_calls() {
        let mut subs = Subscribers::default();
        for (id, name) in [(1, "a"), (2, "b"), (3, "c")] {
            subs.attach(id, name, 100);
        }
        let mut firsts = Vec::new();
        for _ in 0..3 {
            let mut one = 1;
            firsts.push(counts(&mut subs, &mut one)[0].0);
        }
        firsts.sort_unstable();
        assert_eq!(
            firsts,
            ["a", "b", "c"],
            "single messages go to each listener in turn"
        );
    }

    #[test]
    fn detach_and_drain() {
        let mut subs = Subscribers::default();
        subs.attach(1, "a", 1);
        subs.attach(2, "b", 1);
        subs.detach(1);
        assert_eq!(subs.len(), 1);
        assert_eq!(subs.drain(), ["b"]);
        let mut available = 5;
        assert!(counts(&mut subs, &mut available).is_empty());
        assert_eq!(available, 5);
    }
}
