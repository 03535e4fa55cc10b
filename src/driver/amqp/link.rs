//! `Link`: one generation of the amqp driver's connections, and the broker operations on it.
//!
//! Publishing and consuming use separate connections (a slow consumer must
//! not hold up confirms, and RabbitMQ's flow control blocks publishing
//! connections only). A link is replaced as a whole when either dies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ErrorKind, ExchangeKind};

use actix::ArbiterHandle;

use crate::config::amqp::AmqpConfig;
use crate::driver::amqp::connect::open_any;
use crate::driver::amqp::lease;
use crate::driver::amqp::replies::{self, Sink, DIRECT_REPLY_TO};
pub(crate) use crate::driver::amqp::target::{Route, Target};
use crate::driver::amqp::wire::{self, WAIT_QUEUE_GRACE};
use crate::error::{Error, Result};
use crate::validate;

/// One generation of connections.
pub(crate) struct Link {
    /// Counts reconnections; tells a dead link from its successor.
    pub(crate) generation: u64,
    /// The node both connections go to, as `host:port`.
    pub(crate) node: String,
    /// The arguments every queue but the wait queues is declared with
    /// (`amqp.queue_type`): a declare must repeat them exactly.
    pub(crate) queue_args: FieldTable,
    /// The publishing connection.
    pub(crate) publish: Connection,
    /// The consuming connection: one channel per listener.
    pub(crate) consume: Connection,
    /// The confirm-mode channel every push goes through.
    confirms: Channel,
    /// Queues declared on this link, and when (wait queues must be
    /// re-declared before their `x-expires` runs out).
    declared: Mutex<HashMap<String, Instant>>,
    /// Where the bus's direct replies go, once it made a request.
    sink: Sink,
    /// The confirm channel consumes direct replies (started before this
    /// link's first request).
    replying: tokio::sync::OnceCell<()>,
}

/// Why a publish failed.
pub(crate) enum Fault {
    /// The link died: try again on the next one.
    Link,
    /// The broker nacked the message: it did not store it, for now (a
    /// quorum queue whose leader is being elected again does that; so does
    /// a queue at its length limit with `reject-publish`). Try again
    /// after a pause.
    Refused,
    /// The broker refused: give up.
    Fatal(Error),
}

impl Link {
    /// Opens both connections and the confirm channel on one node of
    /// `config` (see [`open_any`]; `last` is the node of the link that
    /// died). The consuming connection is opened on `consume_on`, where its
    /// I/O then runs: that keeps deliveries and acks off the thread that
    /// carries publishes and confirms, so a bus uses both cores.
    pub(crate) async fn open(
        config: &AmqpConfig,
        generation: u64,
        consume_on: &ArbiterHandle,
        sink: Sink,
        last: Option<&str>,
    ) -> Result<Link> {
        let opened = open_any(config, consume_on, last).await?;
        tracing::info!(node = %opened.node, generation, "connected to RabbitMQ");
        Ok(Link {
            generation,
            node: opened.node,
            queue_args: wire::queue_arguments(config.queue_type),
            publish: opened.publish,
            consume: opened.consume,
            confirms: opened.confirms,
            declared: Mutex::default(),
            sink,
            replying: tokio::sync::OnceCell::new(),
        })
    }

    /// The frame size negotiated on the publishing connection.
    pub(crate) fn frame_max(&self) -> usize {
        self.publish.configuration().frame_max() as usize
    }

    /// Whether both connections and the confirm channel are up.
    pub(crate) fn is_up(&self) -> bool {
        self.publish.status().connected()
            && self.consume.status().connected()
            && self.confirms.status().connected()
    }

    /// Publishes once and awaits the broker's confirm.
    pub(crate) async fn publish(
        &self,
        target: &Target,
        payload: &Bytes,
        properties: &BasicProperties,
    ) -> std::result::Result<(), Fault> {
        // A queue deleted behind our back makes the message unroutable:
        // declare again and retry once before calling it an error.
        for round in 0..2 {
            let sent = self.send(target, payload, properties, round > 0).await?;
            let confirm = sent.await.map_err(|e| self.fault(e))?;
            if let Some(verdict) = verdict(target, confirm) {
                return verdict;
            }
        }
        Err(Fault::Fatal(Error::backend(format!(
            "message to {:?} was unroutable",
            target.declared_as()
        ))))
    }

    /// Sends one publish (declaring its target first, when `force`d or not
    /// yet known) without awaiting its confirm.
    pub(crate) async fn send(
        &self,
        target: &Target,
        payload: &Bytes,
        properties: &BasicProperties,
        force: bool,
    ) -> std::result::Result<lapin::PublisherConfirm, Fault> {
        self.prepare(target, properties, force).await?;
        let route = Route::of(target).map_err(Fault::Fatal)?;
        self.send_prepared(&route, payload, properties.clone())
            .await
    }

    /// Sends one publish along `route`, whose target was
    /// [`prepare`](Self::prepare)d, without awaiting its confirm: a batch
    /// prepares its targets and their routes once, sends its messages in
    /// order, then awaits their confirms together.
    pub(crate) async fn send_prepared(
        &self,
        route: &Route,
        payload: &Bytes,
        properties: BasicProperties,
    ) -> std::result::Result<lapin::PublisherConfirm, Fault> {
        self.confirms
            .basic_publish(
                route.exchange.clone(),
                route.key.clone(),
                route.options,
                payload,
                properties,
            )
            .await
            .map_err(|e| self.fault(e))
    }

    /// Makes a publish of `properties` to `target` ready to go out at
    /// once: its target declared (unless known and not `force`d) and, when
    /// it asks for direct replies, this link's reply consumer started. A
    /// batch prepares its targets first, so that none of its publishes
    /// waits for a declare and the batch goes out in order.
    pub(crate) async fn prepare(
        &self,
        target: &Target,
        properties: &BasicProperties,
        force: bool,
    ) -> std::result::Result<(), Fault> {
        if properties.reply_to().as_ref().map(|r| r.as_str()) == Some(DIRECT_REPLY_TO) {
            self.replying
                .get_or_try_init(|| async {
                    let sink = self.sink.get().cloned().ok_or(Error::Closed)?;
                    replies::consume(&self.confirms, sink).await
                })
                .await
                .map_err(|e| self.fault(e))?;
        }
        self.declare(target, &target.declared_as(), force)
            .await
            .map_err(|e| self.fault(e))
    }

    async fn declare(&self, target: &Target, name: &str, force: bool) -> Result<()> {
        let fresh_for = match target {
            Target::Queue(_) | Target::Topic(_) => Duration::MAX,
            // Re-declared well within `x-expires`: a publish is no use of a
            // queue to RabbitMQ.
            Target::Wait { .. } | Target::Lease { .. } => WAIT_QUEUE_GRACE / 2,
            // A direct reply-to address is RabbitMQ's: nothing to declare.
            Target::Reply(_) => return Ok(()),
        };
        let known = self
            .declared
            .lock()
            .ok()
            .and_then(|d| d.get(name).copied())
            .is_some_and(|at| at.elapsed() < fresh_for);
        if known && !force {
            return Ok(());
        }
        match target {
            Target::Queue(queue) => declare_queue(&self.publish, queue, &self.queue_args).await?,
            Target::Topic(topic) => declare_exchange(&self.publish, topic).await?,
            Target::Reply(_) => {}
            Target::Wait { target, delay } => {
                // The wait queue dead-letters into `target`: it must exist too.
                declare_queue(&self.publish, target, &self.queue_args).await?;
                let args = wire::wait_arguments(&wire::wire_name(target), *delay);
                declare_on(&self.publish, name, args).await?;
            }
            Target::Lease { target, lease, ttl } => {
                declare_queue(&self.publish, target, &self.queue_args).await?;
                let args = lease::arguments(&wire::wire_name(target), *ttl);
                declare_on(&self.publish, lease, args).await?;
            }
        }
        if let Ok(mut declared) = self.declared.lock() {
            declared.insert(name.to_owned(), Instant::now());
        }
        Ok(())
    }

    fn fault(&self, error: impl Into<LinkError>) -> Fault {
        let error = error.into();
        if !self.is_up() || error.1 {
            Fault::Link
        } else {
            Fault::Fatal(error.0)
        }
    }

    /// Makes the group whose queue is `queue` durable on `topic`: declares
    /// the topic's fanout exchange, the queue and its dead-letter queue, and
    /// binds the queue to the exchange.
    pub(crate) async fn join_topic(&self, topic: &str, queue: &str) -> Result<()> {
        declare_exchange(&self.publish, topic).await?;
        declare_queue(&self.publish, queue, &self.queue_args).await?;
        let (exchange, wire_queue) = (wire::wire_name(topic), wire::wire_name(queue));
        let ch = self.publish.create_channel().await.map_err(backend)?;
        ch.queue_bind(
            wire::short(&wire_queue)?,
            wire::short(&exchange)?,
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| Error::backend(format!("cannot bind {wire_queue:?} to {exchange:?}: {e}")))?;
        let _ = ch.close(200, "bound".into()).await;
        Ok(())
    }

    /// Message counts of `queues` (wire names with their arguments).
    ///
    /// Each is declared as the bus declares it, not passively: a passive
    /// declare of a queue nobody made yet would be refused by the broker,
    /// which closes the channel with an error (and lapin logs it as one),
    /// while to the bus that queue is simply empty. A queue never used
    /// thus exists, empty, from its first count on, as after a `receive`.
    pub(crate) async fn counts(&self, queues: &[(String, FieldTable)]) -> Result<Vec<u64>> {
        let ch = self.publish.create_channel().await.map_err(backend)?;
        let mut counts = Vec::with_capacity(queues.len());
        for (name, args) in queues {
            let declared = ch
                .queue_declare(
                    wire::short(name)?,
                    QueueDeclareOptions::durable(),
                    args.clone(),
                )
                .await
                .map_err(|e| declare_error(name, &e))?;
            counts.push(u64::from(declared.message_count()));
        }
        let _ = ch.close(200, "done".into()).await;
        Ok(counts)
    }

    /// Drops the ready messages of `name` (declared first, for the reason
    /// [`counts`](Self::counts) gives: a queue never used has none).
    pub(crate) async fn purge(&self, name: &str) -> Result<u64> {
        let ch = self.publish.create_channel().await.map_err(backend)?;
        let queue = wire::short(name)?;
        ch.queue_declare(
            queue.clone(),
            QueueDeclareOptions::durable(),
            self.queue_args.clone(),
        )
        .await
        .map_err(|e| declare_error(name, &e))?;
        let purged = ch
            .queue_purge(queue, QueuePurgeOptions::default())
            .await
            .map_err(backend)?;
        let _ = ch.close(200, "done".into()).await;
        Ok(u64::from(purged))
    }

    /// Deletes `queue` (a user-facing name) and its dead-letter queue.
    pub(crate) async fn delete(&self, queue: &str) -> Result<()> {
        let ch = self.publish.create_channel().await.map_err(backend)?;
        for name in [queue.to_owned(), validate::dead_letter_name(queue)] {
            ch.queue_delete(
                wire::short(&wire::wire_name(&name))?,
                QueueDeleteOptions::default(),
            )
            .await
            .map_err(backend)?;
        }
        let _ = ch.close(200, "deleted".into()).await;
        Ok(())
    }

    /// Closes both connections.
    pub(crate) async fn close(&self) {
        let _ = self.confirms.wait_for_confirms().await;
        let _ = self.publish.close(200, "shutdown".into()).await;
        let _ = self.consume.close(200, "shutdown".into()).await;
    }
}

/// What a publish's confirm means: `Some(Ok)` stored, `Some(Err)` refused,
/// `None` unroutable (its queue is gone: declare again and publish again).
pub(crate) fn verdict(target: &Target, confirm: Confirmation) -> Option<Result<(), Fault>> {
    match confirm {
        Confirmation::Ack(None) | Confirmation::NotRequested => Some(Ok(())),
        // A topic without groups routes to no queue, a reply whose
        // requester's channel closed to no consumer: nobody to tell.
        Confirmation::Ack(Some(_)) if !target.must_route() => Some(Ok(())),
        Confirmation::Ack(Some(_)) => None,
        Confirmation::Nack(_) => Some(Err(Fault::Refused)),
    }
}

/// Declares `queue` (a user-facing name) and, unless it is one itself, its
/// dead-letter queue, both with `args`: counting a queue's dead letters
/// then never asks the broker about a queue that does not exist.
pub(crate) async fn declare_queue(conn: &Connection, queue: &str, args: &FieldTable) -> Result<()> {
    declare_on(conn, &wire::wire_name(queue), args.clone()).await?;
    if !queue.ends_with(".dead") {
        let dead = wire::wire_name(&validate::dead_letter_name(queue));
        declare_on(conn, &dead, args.clone()).await?;
    }
    Ok(())
}

/// Declares the durable fanout exchange of `topic` (a user-facing name).
pub(crate) async fn declare_exchange(conn: &Connection, topic: &str) -> Result<()> {
    let name = wire::wire_name(topic);
    let ch = conn.create_channel().await.map_err(backend)?;
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    ch.exchange_declare(
        wire::short(&name)?,
        ExchangeKind::Fanout,
        options,
        FieldTable::default(),
    )
    .await
    .map_err(|e| {
        Error::backend(format!(
            "cannot declare exchange {name:?} (an existing exchange of that name of another kind?): {e}"
        ))
    })?;
    let _ = ch.close(200, "declared".into()).await;
    Ok(())
}

/// Declares the durable queue `name` with `args` on a channel of its own,
/// so that a refused declare cannot close a channel in use.
pub(crate) async fn declare_on(conn: &Connection, name: &str, args: FieldTable) -> Result<()> {
    let ch = conn.create_channel().await.map_err(backend)?;
    ch.queue_declare(wire::short(name)?, QueueDeclareOptions::durable(), args)
        .await
        .map_err(|e| declare_error(name, &e))?;
    let _ = ch.close(200, "declared".into()).await;
    Ok(())
}

/// A refused declare of the queue `name`: an [`Error::Config`] naming
/// `amqp.queue_type` when the queue exists as another type (RabbitMQ
/// refuses with `PRECONDITION_FAILED - inequivalent arg 'x-queue-type'`),
/// an [`Error::Backend`] saying so when the node of a classic queue is
/// down (`NOT_FOUND - home node '…' of durable queue '…' … is down`).
pub(crate) fn declare_error(name: &str, e: &lapin::Error) -> Error {
    if let ErrorKind::ProtocolError(err) = e.kind() {
        let said = err.get_message().as_str();
        let refused = matches!(
            err.kind(),
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
        );
        let gone = matches!(err.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND));
        if gone && said.contains("home node") {
            // A classic queue (the wait queues behind delays and retry
            // backoffs, the lease queues) lives on one node of a cluster:
            // it is back with that node, and only what needs it fails.
            return Error::backend(format!(
                "queue {name:?} is unavailable: the cluster node it lives on is down: {said}"
            ));
        }
        if refused && said.contains("'x-queue-type'") {
            return Error::config(
                "amqp.queue_type",
                format!(
                    "queue {name:?} exists on RabbitMQ with another type than amqp.queue_type asks for \
                     (delete it, or set amqp.queue_type to its type): {said}"
                ),
            );
        }
    }
    Error::backend(format!(
        "cannot declare queue {name:?} (an existing queue of that name with other settings?): {e}"
    ))
}

/// A lapin error kept as our own, and whether it says the link is dying
/// (which the link's status may not show yet).
struct LinkError(Error, bool);

impl From<lapin::Error> for LinkError {
    fn from(e: lapin::Error) -> Self {
        let dying = is_link_error(&e);
        LinkError(backend(e), dying)
    }
}

impl From<Error> for LinkError {
    fn from(e: Error) -> Self {
        LinkError(e, false)
    }
}

/// Whether `e` is about the connection or channel going away, rather than
/// the broker refusing this one operation.
pub(crate) fn is_link_error(e: &lapin::Error) -> bool {
    match e.kind() {
        ErrorKind::ProtocolError(err) => matches!(err.kind(), AMQPErrorKind::Hard(_)),
        ErrorKind::IOError(_)
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::ParsingError(_)
        | ErrorKind::SerialisationError(_) => true,
        _ => false,
    }
}

pub(crate) fn backend(e: lapin::Error) -> Error {
    Error::backend(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::AMQPError;

    fn refused(kind: AMQPSoftError, said: &str) -> lapin::Error {
        let error = AMQPError::new(AMQPErrorKind::Soft(kind), said.into());
        ErrorKind::ProtocolError(error).into()
    }

    #[test]
    fn a_queue_whose_node_is_down_is_named_as_such() {
        let said = "NOT_FOUND - home node 'rabbit@b' of durable queue 'q.wait.3000' \
                    in vhost '/' is down or inaccessible";
        let error = declare_error("q.wait.3000", &refused(AMQPSoftError::NOTFOUND, said));
        assert!(matches!(error, Error::Backend { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("\"q.wait.3000\""), "{message}");
        assert!(message.contains("node it lives on is down"), "{message}");
        let other = declare_error(
            "q",
            &refused(AMQPSoftError::NOTFOUND, "NOT_FOUND - no queue"),
        );
        assert!(!other.to_string().contains("is down"), "{other}");
    }
}
