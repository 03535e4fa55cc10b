//! `publish_batch`: a batch of pushes published with every confirm in flight at once.
//!
//! lapin's `basic_publish` queues a message's frames for its I/O thread on
//! the first poll, then waits until that thread wrote them. Awaiting each
//! publish in turn thus costs one round trip to that thread per message,
//! and leaves RabbitMQ idle between them. A batch instead starts every
//! publish (in batch order, so the queue gets the batch in order) before
//! awaiting any, and then awaits the writes and the confirms.
//!
//! Per message it does no more than a raw lapin publisher: its target is
//! declared and its route worked out once per batch, its properties are
//! moved into the publish, and nothing but the publish itself is boxed.
//! Only a message that did not go through is published again (alone).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::Addr;
use futures_util::future::join_all;
use lapin::{BasicProperties, PublisherConfirm};

use crate::delivery::Envelope;
use crate::driver::amqp::driver::{publish, wait_link, AmqpDriver, Links};
use crate::driver::amqp::link::{verdict, Link, Route, Target};
use crate::driver::amqp::wire;
use crate::error::Result;
use crate::timer::deadline;

/// Publishes `batch` in order on one link, then awaits every confirm; a
/// message that did not go through cleanly that way (a link fault, an
/// unroutable message) is published again alone, as a push is, through
/// outages until `timeout`. Answers each message's outcome in batch order.
pub(crate) async fn publish_batch(
    mut links: Links,
    driver: Addr<AmqpDriver>,
    batch: Vec<(Target, Envelope)>,
    timeout: Duration,
) -> Vec<Result<()>> {
    let deadline = deadline(Instant::now(), timeout);
    let done = match wait_link(&mut links, deadline).await {
        Ok(link) => on_link(&link, &batch).await,
        Err(_) => vec![false; batch.len()],
    };
    let mut outcomes: Vec<Result<()>> = done.iter().map(|_| Ok(())).collect();
    // The rest, each alone (a clean batch builds none of these futures).
    let rest: Vec<usize> = (0..done.len()).filter(|&i| !done[i]).collect();
    let again = rest.iter().map(|&i| {
        let (target, envelope) = &batch[i];
        let (links, driver) = (links.clone(), driver.clone());
        let left = deadline.saturating_duration_since(Instant::now());
        publish(links, driver, target.clone(), envelope, left)
    });
    for (i, outcome) in rest.iter().zip(join_all(again).await) {
        outcomes[*i] = outcome;
    }
    outcomes
}

/// A publish of a batch once its frames were queued.
enum Sent<F> {
    /// Written already: its confirm is all there is to await.
    Written(PublisherConfirm),
    /// Being written: the publish itself still to await, then its confirm.
    Writing(Pin<Box<F>>),
    /// Not sent (bad properties, no route, a fault): it goes again alone.
    Failed,
}

/// Publishes every message of `batch` on `link` with its confirm in
/// flight; `true` for each one the broker confirmed stored.
async fn on_link(link: &Link, batch: &[(Target, Envelope)]) -> Vec<bool> {
    let properties: Vec<_> = batch
        .iter()
        .map(|(_, e)| wire::properties(e).ok())
        .collect();
    let Some(routes) = prepare(link, batch, &properties).await else {
        return vec![false; batch.len()];
    };
    let mut started = Vec::with_capacity(batch.len());
    for ((target, envelope), properties) in batch.iter().zip(properties) {
        let route = routes.iter().find(|(t, _)| *t == target).map(|(_, r)| r);
        let (Some(route), Some(properties)) = (route, properties) else {
            started.push(Sent::Failed);
            continue;
        };
        let mut sent = Box::pin(link.send_prepared(route, &envelope.payload, properties));
        // The first poll queues the message's frames: polled here, in
        // batch order, before any is awaited.
        started.push(match first_poll(sent.as_mut()).await {
            Poll::Ready(Ok(confirm)) => Sent::Written(confirm),
            Poll::Ready(Err(_)) => Sent::Failed,
            Poll::Pending => Sent::Writing(sent),
        });
    }
    // Awaited in order, one at a time: every publish is out already, and
    // its write and confirm complete whether or not it is being polled,
    // so this waits no longer than awaiting them all together would, and
    // wakes once per message not done yet rather than once per event.
    let mut stored = Vec::with_capacity(batch.len());
    for ((target, _), sent) in batch.iter().zip(started) {
        let confirm = match sent {
            Sent::Written(confirm) => Some(confirm),
            Sent::Writing(sent) => sent.await.ok(),
            Sent::Failed => None,
        };
        let ok = match confirm {
            Some(confirm) => confirm
                .await
                .ok()
                .and_then(|c| verdict(target, c))
                .is_some_and(|v| v.is_ok()),
            None => false,
        };
        stored.push(ok);
    }
    stored
}

/// Prepares each target of `batch` once (and for direct replies), so that
/// no publish of it waits before queueing its frames and the batch stays
/// in order; answers the route of each, or `None` when a target could not
/// be prepared (then every message goes again alone, and fails as a push
/// would).
async fn prepare<'a>(
    link: &Link,
    batch: &'a [(Target, Envelope)],
    properties: &[Option<BasicProperties>],
) -> Option<Vec<(&'a Target, Route)>> {
    let (mut routes, mut replies): (Vec<(&Target, Route)>, bool) = (Vec::new(), false);
    for ((target, _), properties) in batch.iter().zip(properties) {
        let Some(properties) = properties else {
            continue;
        };
        let direct = properties.reply_to().is_some();
        let known = routes.iter().any(|(t, _)| *t == target);
        if known && (replies || !direct) {
            continue;
        }
        link.prepare(target, properties, false).await.ok()?;
        if !known {
            routes.push((target, Route::of(target).ok()?));
        }
        replies |= direct;
    }
    Some(routes)
}

/// Polls `fut` once, with the calling task's waker, and returns what it gave.
async fn first_poll<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}
