//! `QueueStats`: a snapshot of one queue, as `Bus::stats` reports it.

/// Counts for one queue at one moment.
///
/// `dead` counts the messages waiting in the queue's dead-letter queue
/// `<queue>.dead`. It serializes as an object of its fields, so that a
/// service can return it as JSON: `{"ready": 3, "in_flight": 0, "delayed":
/// 0, "dead": 1, "listeners": 2, "restarts": 0, "durable": true}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct QueueStats {
    /// Messages waiting for a listener.
    pub ready: u64,
    /// Messages handed to listeners and not yet acknowledged.
    pub in_flight: u64,
    /// Messages held back by a delay or a retry backoff.
    pub delayed: u64,
    /// Messages in `<queue>.dead`.
    pub dead: u64,
    /// Listeners attached to the queue.
    pub listeners: u64,
    /// How often the queue's actor was restarted by its supervisor after a
    /// fault. Nothing is lost by a restart; a rising count is worth a look.
    pub restarts: u64,
    /// Whether the backend keeps queued messages across its own restart:
    /// `false` on the memory driver and on a Redis without
    /// `appendonly`, `true` on RabbitMQ's durable queues.
    pub durable: bool,
}
