//! Raw throughput baselines without the bus: a tokio mpsc channel between
//! two tasks, two bare actix actors (`do_send` in batches), and
//! `addr.send().await` to one actor, pipelined or sequential.

use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::json;

use crate::harness::row::{Kind, Row};
use crate::harness::sink::Sink;
use crate::harness::stats::median_row;
use crate::payload;

/// (a) two tokio tasks and a bounded mpsc channel, on a 2-worker runtime.
pub(crate) fn raw_tokio_mpsc(n: usize, reps: usize) -> Row {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let capacity = 1024;
    let run = |n: usize| {
        rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(capacity);
            let bytes = payload();
            let start = Instant::now();
            let consumer = tokio::spawn(async move {
                let mut count = 0usize;
                while let Some(msg) = rx.recv().await {
                    std::hint::black_box(&msg);
                    count += 1;
                    if count == n {
                        break;
                    }
                }
                Instant::now()
            });
            let producer = tokio::spawn(async move {
                for _ in 0..n {
                    tx.send(bytes.clone()).await.expect("consumer alive");
                }
            });
            producer.await.expect("producer");
            consumer.await.expect("consumer") - start
        })
    };
    run((n / 10).max(1_000)); // warm-up
    let rows = (0..reps.max(1))
        .map(|_| {
            let mut row = Row::rate("raw tokio mpsc", Kind::Raw, n, run(n))
                .with("channel_capacity", json!(capacity));
            row.runtime = "tokio multi-thread runtime (2 workers)";
            row
        })
        .collect();
    median_row(rows)
}

#[derive(Message)]
#[rtype(result = "()")]
struct RawMsg(#[allow(dead_code)] Bytes);

/// The consumer of the raw actix rows: counts what it handles.
struct Counter {
    sink: Sink,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<RawMsg> for Counter {
    type Result = ();

    fn handle(&mut self, msg: RawMsg, _: &mut Context<Self>) {
        std::hint::black_box(&msg);
        self.sink.hit();
    }
}

/// The producer of the raw `do_send` row: sends `batch` messages per turn,
/// then yields to its mailbox with `ctx.notify`.
struct Producer {
    to: Addr<Counter>,
    payload: Bytes,
    remaining: usize,
    batch: usize,
}

impl Actor for Producer {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Produce(usize);

impl Handler<Produce> for Producer {
    type Result = ();

    fn handle(&mut self, msg: Produce, ctx: &mut Context<Self>) {
        if msg.0 > 0 {
            self.remaining += msg.0;
        }
        let now = self.batch.min(self.remaining);
        for _ in 0..now {
            self.to.do_send(RawMsg(self.payload.clone()));
        }
        self.remaining -= now;
        if self.remaining > 0 {
            ctx.notify(Produce(0));
        }
    }
}

/// (b) two bare actors on two arbiters; the producer `do_send`s in batches.
pub(crate) async fn raw_actix_do_send(n: usize) -> Row {
    let batch = 1024;
    let (a, b) = (Arbiter::new(), Arbiter::new());
    let sink = Sink::default();
    let counter_sink = sink.clone();
    let counter = Counter::start_in_arbiter(&b.handle(), move |_| Counter { sink: counter_sink });
    let to = counter.clone();
    let producer = Producer::start_in_arbiter(&a.handle(), move |_| Producer {
        to,
        payload: payload(),
        remaining: 0,
        batch,
    });
    // warm-up
    let target = sink.expect((n / 10).max(1_000));
    producer.do_send(Produce((n / 10).max(1_000)));
    sink.wait(target).await;

    let target = sink.expect(n);
    let start = Instant::now();
    producer.do_send(Produce(n));
    sink.wait(target).await;
    let elapsed = start.elapsed();
    a.stop();
    b.stop();
    let _ = (a.join(), b.join());
    Row::rate("raw actix 2 actors", Kind::Raw, n, elapsed).with("batch", json!(batch))
}

/// (c) `addr.send(msg).await` from `producers` tasks on the system thread to
/// one actor on an arbiter: the request/reply shape of `bus.push`.
/// With `owned`, each message carries a fresh `Vec<u8>` of its own (the
/// baseline of the bus's `vec-payload` row) instead of a shared `Bytes`.
pub(crate) async fn raw_actix_send(name: &str, n: usize, producers: usize, owned: bool) -> Row {
    let arbiter = Arbiter::new();
    let sink = Sink::default();
    let counter_sink = sink.clone();
    let counter =
        Counter::start_in_arbiter(&arbiter.handle(), move |_| Counter { sink: counter_sink });
    let bytes = payload();
    let run = |n: usize| {
        let counter = counter.clone();
        let bytes = bytes.clone();
        let sink = sink.clone();
        async move {
            let target = sink.expect(n);
            let start = Instant::now();
            let tasks: Vec<_> = (0..producers)
                .map(|t| {
                    let counter = counter.clone();
                    let bytes = bytes.clone();
                    actix::spawn(async move {
                        let mut i = t;
                        while i < n {
                            let body = match owned {
                                true => Bytes::from(vec![0xA5u8; crate::PAYLOAD_LEN]),
                                false => bytes.clone(),
                            };
                            counter.send(RawMsg(body)).await.expect("counter alive");
                            i += producers;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("producer task");
            }
            sink.wait(target).await;
            start.elapsed()
        }
    };
    run((n / 10).max(1_000)).await; // warm-up
    let elapsed = run(n).await;
    arbiter.stop();
    let _ = arbiter.join();
    Row::rate(name, Kind::Raw, n, elapsed)
        .with("producers", json!(producers))
        .with("owned_payload", json!(owned))
}
