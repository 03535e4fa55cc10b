//! Operating a queue: looking at what waits (`peek`) and bringing dead letters back (`redrive`).

use crate::bus::Bus;
use crate::delivery::Delivery;
use crate::error::Result;
use crate::validate;

impl Bus {
    /// Copies of the first `max` ready messages of `queue`, in the order
    /// they would be delivered, without taking them.
    ///
    /// Ready means waiting for a listener: messages a listener holds and
    /// delayed ones (a [`PushOptions::delay`](crate::PushOptions::delay) or
    /// a retry's backoff) are not shown. Each copy carries the message's id,
    /// attempt, headers and payload like any [`Delivery`]; nothing about it
    /// can be acknowledged, and the message stays where it was. Peek at
    /// `<queue>.dead` to see the dead letters, with their `x-error`.
    ///
    /// What a look costs depends on the driver:
    ///
    /// - **memory** and **redis** read the queue as it is: exact, and
    ///   invisible to everyone else (redis: the stream entries after the
    ///   consumer group's last delivered one; entries that are not messages
    ///   are left out).
    /// - **amqp** has no way to browse a queue. Peek takes up to `max`
    ///   messages with `basic.get` on a channel of its own, without
    ///   acknowledging them, and hands them back (`basic.nack` with
    ///   requeue) before it returns. Meanwhile they are invisible to
    ///   listeners (of this and of any other process); they come back
    ///   flagged as redelivered (not counted as an attempt by the bus; a
    ///   `nack` does not raise a quorum queue's delivery count either), and
    ///   when listeners take messages at the same time the order of the
    ///   queue may change. Keep `max` small on a busy queue.
    ///
    /// `max == 0` answers an empty list without any I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`](crate::Error::InvalidQueueName);
    /// [`Error::Closed`](crate::Error::Closed) after shutdown;
    /// [`Error::Backend`](crate::Error::Backend) or
    /// [`Error::Timeout`](crate::Error::Timeout) when the broker fails or
    /// cannot be reached within `queue.push_timeout`.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// bus.push("jobs", "first").await?;
    /// bus.push("jobs", "second").await?;
    ///
    /// let waiting = bus.peek("jobs", 10).await?;
    /// let texts: Vec<&str> = waiting.iter().map(|d| d.as_str().unwrap()).collect();
    /// assert_eq!(texts, ["first", "second"]);
    /// assert_eq!(bus.stats("jobs").await?.ready, 2, "nothing was taken");
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn peek(&self, queue: &str, max: usize) -> Result<Vec<Delivery>> {
        self.check_open()?;
        validate::queue_name(queue)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        self.driver().peek(queue, max).await
    }

    /// Moves up to `max` messages from `<queue>.dead` back to `queue`, and
    /// says how many it moved.
    ///
    /// A redriven message keeps its id, payload and headers, starts again at
    /// [`attempt`](Delivery::attempt) 1, and carries `x-redriven` (how many
    /// times it was redriven: 1, then 2 if it dies and is redriven again)
    /// and the `x-error` of its last death; `x-attempts` and `x-failed-at`
    /// are dropped (they describe that death, and a later one writes them
    /// again). It is then delivered like any message of `queue`. Dead
    /// letters a listener of `<queue>.dead` holds at the time are not
    /// taken. Messages move oldest first.
    ///
    /// At-least-once: each copy is stored in `queue` (memory: in its
    /// channel; amqp: confirmed by RabbitMQ; redis: in the same script)
    /// before its dead letter is removed, so a redrive cut short, even by a
    /// crash, loses nothing. On redis each step is one atomic script, so
    /// nothing is moved twice either; on amqp a crash between the confirm
    /// and the acknowledgement of a dead letter leaves that one message in
    /// both queues.
    ///
    /// A queue whose dead letters were never used answers 0 and starts
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`](crate::Error::InvalidQueueName);
    /// [`Error::Closed`](crate::Error::Closed) after shutdown;
    /// [`Error::Backend`](crate::Error::Backend) or
    /// [`Error::Timeout`](crate::Error::Timeout) when the broker fails or
    /// cannot be reached within `queue.push_timeout` (the messages moved
    /// until then stay moved).
    ///
    /// ```
    /// use std::time::Duration;
    /// use actorbus::{Bus, Reject};
    ///
    /// # actix::System::new().block_on(async {
    /// let bus = Bus::memory();
    /// // A handler that gives up on every message: each goes to `jobs.dead`.
    /// bus.add_listener("jobs", |_| async { Err(Reject::new("database down").into()) })
    ///     .await?;
    /// bus.push("jobs", "job").await?;
    /// while bus.stats("jobs").await?.dead == 0 {
    ///     tokio::time::sleep(Duration::from_millis(10)).await;
    /// }
    /// bus.remove("jobs").await?;
    ///
    /// assert_eq!(bus.redrive("jobs", 100).await?, 1);
    /// let back = bus.receive("jobs", Duration::from_secs(5)).await?;
    /// assert_eq!(back.attempt(), 1);
    /// assert_eq!(back.headers()["x-redriven"], "1");
    /// assert_eq!(back.headers()["x-error"], "database down");
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn redrive(&self, queue: &str, max: usize) -> Result<u64> {
        self.check_open()?;
        validate::queue_name(queue)?;
        if max == 0 {
            return Ok(0);
        }
        self.driver().redrive(queue, max).await
    }
}
