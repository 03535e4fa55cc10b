//! Bus throughput end to end on the memory driver: push → queue actor →
//! listener → handler → ack, for one or many queues and listeners.

pub(crate) mod batch;
#[cfg(all(feature = "metrics", feature = "otel"))]
pub(crate) mod observed;
pub(crate) mod patterns;
pub(crate) mod raw;

use std::sync::Arc;
use std::time::Instant;

use actorbus::{Bus, Delivery, HandlerResult, ListenerOptions};
use bytes::Bytes;
use serde_json::json;

use crate::harness::row::{Kind, Row};
use crate::harness::sink::{settle_down, Sink};
use crate::{payload, PAYLOAD_LEN};

/// The main e2e row: 1 queue, 1 listener, pushers sharing one payload.
pub(crate) const MAIN: &str = "memory e2e 1q x 1l";
/// The main row with a fresh `Vec` per push.
pub(crate) const VEC_PAYLOAD: &str = "memory e2e 1q x 1l vec-payload";
/// The main row spread over 1,000 queues.
pub(crate) const MANY_QUEUES: &str = "memory e2e 1000q x 1l";

#[derive(Clone, Copy)]
pub(crate) struct E2e {
    pub(crate) name: &'static str,
    n: usize,
    queues: usize,
    listeners_per_queue: usize,
    concurrency: usize,
    /// Concurrent pusher tasks; 0 means one sequential pusher in the main task.
    producers: usize,
    /// Push a fresh `Vec<u8>` per message (what `push(q, serde_json::to_vec(..)?)`
    /// does) instead of a clone of one shared `Bytes`.
    owned_payload: bool,
}

/// The bus e2e rows, the main row (held to the target) first.
pub(crate) fn e2e_specs(n: usize, n_seq: usize, producers: usize) -> [E2e; 7] {
    let main = E2e {
        name: MAIN,
        n,
        queues: 1,
        listeners_per_queue: 1,
        concurrency: 1,
        producers,
        owned_payload: false,
    };
    [
        main,
        E2e {
            name: "memory e2e 1q x 1l seq-push",
            n: n_seq,
            producers: 0,
            ..main
        },
        E2e {
            name: "memory e2e 1q x 1l c64",
            concurrency: 64,
            ..main
        },
        E2e {
            name: VEC_PAYLOAD,
            owned_payload: true,
            ..main
        },
        E2e {
            name: "memory e2e 1q x 4l",
            listeners_per_queue: 4,
            ..main
        },
        E2e {
            name: "memory e2e 100q x 1l",
            queues: 100,
            ..main
        },
        E2e {
            name: MANY_QUEUES,
            queues: 1000,
            ..main
        },
    ]
}

async fn push_one(bus: &Bus, queue: &str, owned: bool, shared: &Bytes) {
    let body = if owned {
        Bytes::from(vec![0xA5u8; PAYLOAD_LEN])
    } else {
        shared.clone()
    };
    bus.push(queue, body).await.expect("push");
}

/// Pushes `n` messages spread round-robin over `queues`.
async fn push_all(bus: &Bus, queues: &Arc<[String]>, n: usize, producers: usize, owned: bool) {
    let shared = payload();
    if producers == 0 {
        for i in 0..n {
            push_one(bus, &queues[i % queues.len()], owned, &shared).await;
        }
        return;
    }
    let tasks: Vec<_> = (0..producers)
        .map(|t| {
            let (bus, queues, shared) = (bus.clone(), queues.clone(), shared.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    push_one(&bus, &queues[i % queues.len()], owned, &shared).await;
                    i += producers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
}

/// End to end: push → queue actor → listener → handler (counts) → ack.
/// The clock runs from the first push until the handlers have seen all `n`.
pub(crate) async fn bus_e2e(spec: E2e) -> Row {
    let bus = Bus::memory();
    let queues: Arc<[String]> = (0..spec.queues).map(|i| format!("bench-e2e-{i}")).collect();
    let sink = Sink::default();
    let opts = ListenerOptions::default().with_concurrency(spec.concurrency);
    for queue in queues.iter() {
        for _ in 0..spec.listeners_per_queue {
            let sink = sink.clone();
            bus.add_listener_with(queue, opts.clone(), move |delivery: Delivery| {
                std::hint::black_box(delivery.payload());
                sink.hit();
                std::future::ready(HandlerResult::Ok(()))
            })
            .await
            .expect("add_listener");
        }
    }
    // warm-up: starts the queue actors, grows the buffers
    let warm = (spec.n / 10).clamp(1_000, 50_000);
    let target = sink.expect(warm);
    push_all(&bus, &queues, warm, spec.producers, spec.owned_payload).await;
    sink.wait(target).await;

    let target = sink.expect(spec.n);
    let start = Instant::now();
    push_all(&bus, &queues, spec.n, spec.producers, spec.owned_payload).await;
    let pushed = start.elapsed();
    sink.wait(target).await;
    let elapsed = start.elapsed();
    bus.shutdown().await.expect("shutdown");
    drop(bus);
    settle_down().await;
    Row::rate(
        spec.name,
        Kind::E2e {
            seq: spec.producers == 0,
        },
        spec.n,
        elapsed,
    )
    .with("producers", json!(spec.producers.max(1)))
    .with("queues", json!(spec.queues))
    .with("listeners_per_queue", json!(spec.listeners_per_queue))
    .with("concurrency", json!(spec.concurrency))
    .with("owned_payload", json!(spec.owned_payload))
    .with("push_phase_secs", json!(pushed.as_secs_f64()))
}
