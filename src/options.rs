//! Per-call options: `PushOptions` for producers, `ListenerOptions` for consumers.

use std::collections::BTreeMap;
use std::time::Duration;

/// Options for [`Bus::push_with`](crate::Bus::push_with).
///
/// Build it with struct-update syntax or the `with_*` helpers:
///
/// ```
/// use std::time::Duration;
/// use actorbus::PushOptions;
///
/// let opts = PushOptions {
///     delay: Some(Duration::from_secs(5)),
///     ..Default::default()
/// }
/// .with_header("tenant", "acme");
/// assert_eq!(opts.headers["tenant"], "acme");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// Hold the message back for this long before any listener may see it.
    pub delay: Option<Duration>,
    /// Application headers delivered with the message. Keys starting with
    /// `x-` are reserved for the bus (`x-error`, `x-attempts`, `x-failed-at`).
    pub headers: BTreeMap<String, String>,
}

impl PushOptions {
    /// Sets [`delay`](Self::delay).
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Adds one header.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(key.into(), value.into());
        self
    }
}

/// Options for [`Bus::add_listener_with`](crate::Bus::add_listener_with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerOptions {
    /// How many deliveries this listener handles at once. Default 1, which
    /// keeps FIFO order. Zero is treated as 1.
    pub concurrency: usize,
    /// How many deliveries may wait at this listener beyond those in hand,
    /// so that the next one is ready when a handler finishes. `None` picks
    /// `max(concurrency, 32)`. A stopped listener hands these back unacknowledged.
    pub prefetch: Option<usize>,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            concurrency: 1,
            prefetch: None,
        }
    }
}

impl ListenerOptions {
    /// Sets [`concurrency`](Self::concurrency).
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets [`prefetch`](Self::prefetch): how many deliveries may wait at
    /// this listener beyond those in hand (0: none, each is fetched as a
    /// handler frees up).
    #[must_use]
    pub fn with_prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = Some(prefetch);
        self
    }

    /// Handlers running at once, at least 1.
    pub(crate) fn effective_concurrency(&self) -> usize {
        self.concurrency.max(1)
    }

    /// Deliveries a listener may hold at once: those in hand plus read-ahead.
    pub(crate) fn window(&self) -> usize {
        let concurrency = self.effective_concurrency();
        concurrency + self.prefetch.unwrap_or(concurrency.max(32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_covers_concurrency_plus_read_ahead() {
        let default = ListenerOptions::default();
        assert_eq!(default.window(), 1 + 32);
        let wide = ListenerOptions::default().with_concurrency(64);
        assert_eq!(wide.window(), 128);
        let strict = ListenerOptions {
            concurrency: 0,
            prefetch: Some(0),
        };
        assert_eq!(strict.effective_concurrency(), 1);
        assert_eq!(strict.window(), 1);
    }
}
