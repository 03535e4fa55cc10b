//! `publish_batch`: a batch of pushes published with every confirm in flight at once.
//!
//! lapin's `basic_publish` queues a message's frames for its I/O thread on
//! the first poll, then waits until that thread wrote them. Awaiting each
//! publish in turn thus costs one round trip to that thread per message,
//! and leaves RabbitMQ idle between them. A batch instead starts every
//! publish (in batch order, so the queue gets the batch in order) before
//! awaiting any, and then awaits the writes and the confirms together.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::Addr;
use futures_util::future::{join_all, Either};
use lapin::BasicProperties;

use crate::delivery::Envelope;
use crate::driver::amqp::driver::{publish, wait_link, AmqpDriver, Links};
use crate::driver::amqp::link::{verdict, Link, Target};
use crate::driver::amqp::wire;
use crate::error::Result;
use crate::timer::deadline;

/// Publishes `batch` in order on one link, then awaits every confirm
/// together; a message that did not go through cleanly that way (a link
/// fault, an unroutable message) is published again alone, as a push is,
/// through outages until `timeout`. Answers each message's outcome in
/// batch order.
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
    let rest = batch.iter().zip(done).map(|((target, envelope), done)| {
        let (links, driver) = (links.clone(), driver.clone());
        let left = deadline.saturating_duration_since(Instant::now());
        async move {
            match done {
                true => Ok(()),
                false => publish(links, driver, target.clone(), envelope, left).await,
            }
        }
    });
    join_all(rest).await
}

/// Publishes every message of `batch` on `link` with its confirm in
/// flight; `true` for each one the broker confirmed stored.
async fn on_link(link: &Link, batch: &[(Target, Envelope)]) -> Vec<bool> {
    let properties: Vec<_> = batch
        .iter()
        .map(|(_, e)| wire::properties(e).ok())
        .collect();
    // Prepared up front (once per target, and for direct replies), so that
    // no publish below waits before queueing its frames: the batch stays
    // in order.
    let (mut prepared, mut replies): (Vec<&Target>, bool) = (Vec::new(), false);
    for ((target, _), properties) in batch.iter().zip(&properties) {
        let Some(properties) = properties else {
            continue;
        };
        let direct = properties.reply_to().is_some();
        if prepared.contains(&target) && (replies || !direct) {
            continue;
        }
        if link.prepare(target, properties, false).await.is_err() {
            return vec![false; batch.len()];
        }
        prepared.push(target);
        replies |= direct;
    }
    let mut started = Vec::with_capacity(batch.len());
    for ((target, envelope), properties) in batch.iter().zip(properties) {
        let Some(properties) = properties else {
            started.push(Either::Left(std::future::ready(false)));
            continue;
        };
        let mut stored = Box::pin(confirmed(link, target, envelope, properties));
        // The first poll queues the message's frames: polled here, in batch
        // order, rather than by `join_all` below.
        match first_poll(stored.as_mut()).await {
            Poll::Ready(stored) => started.push(Either::Left(std::future::ready(stored))),
            Poll::Pending => started.push(Either::Right(stored)),
        }
    }
    join_all(started).await
}

/// Polls `fut` once, with the calling task's waker, and returns what it gave.
async fn first_poll<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Publishes one message of a batch and awaits its confirm: `true` once
/// the broker confirmed it stored.
async fn confirmed(
    link: &Link,
    target: &Target,
    envelope: &Envelope,
    properties: BasicProperties,
) -> bool {
    match link
        .send(target, &envelope.payload, &properties, false)
        .await
    {
        Ok(confirm) => confirm
            .await
            .ok()
            .and_then(|c| verdict(target, c))
            .is_some_and(|v| v.is_ok()),
        Err(_) => false,
    }
}
