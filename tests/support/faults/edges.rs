//! Hard-edge inputs beside an unrelated stream of pushes.

use std::time::Duration;

use actorbus::{Error, PushOptions};

use super::{Broker, Traffic};
use crate::support::unique_queue;

/// Inputs at the hard edges, each refused with its typed error (or, for the
/// longest delay, held as long as possible) while an unrelated stream of
/// pushes on the same bus sees no error and no duplicate.
pub async fn hard_edges(broker: &dyn Broker) {
    let traffic = Traffic::start(broker, "edges-stream").await;
    traffic.progress(20, "before the edges").await;
    let bus = traffic.bus.clone();
    let q = unique_queue("edges");

    let forever = PushOptions::default().with_delay(Duration::from_secs(u64::MAX));
    bus.push_with(&q, "later", forever)
        .await
        .expect("the longest delay is held, not refused");
    assert!(
        matches!(
            bus.receive(&q, Duration::from_secs(1)).await,
            Err(Error::Timeout)
        ),
        "a message delayed by u64::MAX seconds was delivered"
    );

    let waiting =
        tokio::time::timeout(Duration::from_secs(2), bus.receive(&q, Duration::MAX)).await;
    assert!(
        waiting.is_err(),
        "receive(Duration::MAX) returned: {waiting:?}"
    );
    let id = bus
        .push(&q, "after")
        .await
        .expect("push after the cancelled receive");
    let got = bus
        .receive(&q, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(got.id(), &id, "the cancelled receive took nothing");

    if broker.driver() == "amqp" {
        let huge = PushOptions::default().with_header("blob", "b".repeat(1024 * 1024));
        let pushed = bus.push_with(&q, "m", huge).await;
        assert!(
            matches!(pushed, Err(Error::InvalidHeader { ref name, .. }) if name == "blob"),
            "1 MiB header: {pushed:?}"
        );
    }
    let attempt = PushOptions::default().with_header("x-attempt", "1");
    let pushed = bus.push_with(&q, "m", attempt).await;
    assert!(
        matches!(pushed, Err(Error::InvalidHeader { .. })),
        "x-attempt: {pushed:?}"
    );
    let pushed = bus.push("X.delayed", "m").await;
    assert!(
        matches!(pushed, Err(Error::InvalidQueueName { .. })),
        "X.delayed: {pushed:?}"
    );

    traffic.progress(20, "after the edges").await;
    let report = traffic.finish("hard-edge inputs beside a stream", 0).await;
    assert_eq!(
        report.timeouts, 0,
        "the stream beside the edges saw a timeout"
    );
}
