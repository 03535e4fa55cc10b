//! Request/reply: a request waits for its own reply; a late reply is dropped and counted, never given to another request.

use std::sync::Arc;
use std::time::Duration;

use actorbus::{Bus, Delivery, Error};
use futures_util::future::try_join_all;
use tokio::sync::Semaphore;

use super::{bus_with, shutdown};
use crate::support::{eventually, fast_config, unique_queue, BusFactory, Collector, LIMIT};

/// A listener on `queue` that answers each request with `f(payload)`,
/// once `gate` lets it (one permit per request).
async fn responder(
    bus: &Bus,
    queue: &str,
    gate: Arc<Semaphore>,
    seen: Collector<(Option<String>, Option<String>)>,
) -> actorbus::Listener {
    let replier = bus.clone();
    bus.add_listener_with(
        queue,
        actorbus::ListenerOptions::default().with_concurrency(8),
        move |request: Delivery| {
            let (bus, gate, seen) = (replier.clone(), gate.clone(), seen.clone());
            async move {
                seen.push((
                    request.reply_to().map(str::to_owned),
                    request.correlation_id().map(str::to_owned),
                ));
                gate.acquire().await?.forget();
                let answer = format!("re: {}", request.as_str()?);
                bus.reply(&request, answer).await?;
                Ok(())
            }
        },
    )
    .await
    .expect("add_listener")
}

pub async fn request_gets_its_own_reply(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("request");
    let seen = Collector::new();
    let listener = responder(&bus, &q, Arc::new(Semaphore::new(1000)), seen.clone()).await;

    let reply = bus.request(&q, "ping", LIMIT).await.expect("request");
    assert_eq!(reply.as_str().unwrap(), "re: ping");
    let (reply_to, correlation) = seen.snapshot()[0].clone();
    let reply_to = reply_to.expect("a request carries a reply address");
    assert_eq!(
        reply.queue(),
        reply_to,
        "the reply came through that address"
    );
    assert_eq!(reply.correlation_id(), correlation.as_deref());
    assert!(correlation.is_some());

    let requests = (0..20).map(|i| {
        let bus = bus.clone();
        let q = q.clone();
        async move {
            let reply = bus.request(&q, format!("n{i}"), LIMIT).await?;
            Ok::<_, Error>((i, reply.as_str().unwrap().to_owned()))
        }
    });
    for (i, answer) in try_join_all(requests).await.expect("requests") {
        assert_eq!(
            answer,
            format!("re: n{i}"),
            "each request gets its own reply"
        );
    }
    assert_eq!(bus.late_replies(), 0);
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn late_reply_is_dropped_and_counted(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("request-late");
    let gate = Arc::new(Semaphore::new(0));
    let seen = Collector::new();
    let listener = responder(&bus, &q, gate.clone(), seen.clone()).await;

    match bus.request(&q, "slow", Duration::from_millis(300)).await {
        Err(Error::Timeout) => {}
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
    seen.wait_for(1, LIMIT).await;
    gate.add_permits(1); // the responder answers the timed-out request now
    eventually("the late reply is counted", LIMIT, || async {
        bus.late_replies() == 1
    })
    .await;

    gate.add_permits(1);
    let reply = bus.request(&q, "next", LIMIT).await.expect("request");
    assert_eq!(
        reply.as_str().unwrap(),
        "re: next",
        "the late reply never answers the next request"
    );
    assert_eq!(bus.late_replies(), 1);
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn reply_to_a_plain_delivery_is_refused(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("request-plain");
    bus.push(&q, "not a request").await.expect("push");
    let plain = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(plain.reply_to(), None);
    assert_eq!(plain.correlation_id(), None);
    match bus.reply(&plain, "answer").await {
        Err(Error::Codec { .. }) => {}
        other => panic!("expected Error::Codec, got {other:?}"),
    }
    match bus.request("", "x", LIMIT).await {
        Err(Error::InvalidQueueName { .. }) => {}
        other => panic!("expected InvalidQueueName, got {other:?}"),
    }
    shutdown(bus).await;
}
