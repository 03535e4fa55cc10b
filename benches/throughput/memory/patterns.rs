//! Topics and request/reply on the memory driver, with their in-process
//! baselines: fan-out to 1 and 4 groups next to actix-broker's
//! `issue_async` with 1 and 4 subscribers (typed broadcast, at most once,
//! no acknowledgements), and the `bus.request` round trip next to a bare
//! actix `send().await` round trip to an actor on another arbiter.

use std::time::Instant;

use actix::prelude::*;
use actix_broker::{Broker, BrokerSubscribe, SystemBroker};
use actorbus::Bus;
use bytes::Bytes;
use serde_json::json;

use crate::harness::args::Opts;
use crate::harness::fanout::{bus_fanout, Fanout};
use crate::harness::interleave::Interleaved;
use crate::harness::row::{self, Kind, Row};
use crate::harness::rtt::{compare_rtt, rtt_row};
use crate::harness::sink::{settle_down, Sink};
use crate::harness::stats::measured;
use crate::payload;

const FANOUT_1: &str = "memory fan-out 1 group";
const FANOUT_4: &str = "memory fan-out 4 groups";
const BROKER_1: &str = "raw actix-broker issue_async 1 sub";
const BROKER_4: &str = "raw actix-broker issue_async 4 subs";
const RTT: &str = "memory request/reply rtt";
const RAW_RTT: &str = "raw actix send().await rtt (other arbiter)";
/// Publishing tasks of the fan-out rows, as the e2e rows' pushers.
const PUSHERS: usize = 64;

/// Every row here the filter selects, with the fan-out targets applied.
pub(crate) async fn rows(opts: &Opts) -> Vec<Row> {
    let (n, reps) = (opts.n / 2, opts.reps);
    let m = if opts.quick { 500 } else { 5_000 };
    let mut rows = Vec::new();
    for ((raw, bus), groups) in [((BROKER_1, FANOUT_1), 1), ((BROKER_4, FANOUT_4), 4)] {
        let pair = Interleaved::new(opts)
            .row(raw, || broker_fanout(raw, groups, n))
            .row(bus, || memory_fanout(bus, groups, n))
            .run(reps)
            .await;
        rows.extend(pair);
    }
    if opts.wants(RAW_RTT) {
        rows.push(measured(RAW_RTT, 1, || raw_actix_rtt(m)).await);
    }
    if opts.wants(RTT) {
        rows.push(measured(RTT, 1, || memory_rtt(m)).await);
    }
    compare_rtt(&mut rows, RTT, RAW_RTT);
    apply_targets(&mut rows);
    rows
}

async fn memory_fanout(name: &str, groups: usize, n: usize) -> Row {
    let bus = Bus::memory();
    let spec = Fanout {
        name,
        topic: "bench-fanout",
        groups,
        n,
        pushers: PUSHERS,
        concurrency: 1,
    };
    let row = bus_fanout(&bus, spec).await;
    bus.shutdown().await.expect("shutdown");
    row
}

async fn memory_rtt(m: usize) -> Row {
    let bus = Bus::memory();
    let row = crate::harness::rtt::bus_rtt(&bus, "bench-rtt", RTT, m).await;
    bus.shutdown().await.expect("shutdown");
    row
}

/// One broadcast type per row, so that the 1-subscriber row's subscriber
/// (still registered with the system broker) never sees the 4-subscriber
/// row's messages.
#[derive(Clone, Message)]
#[rtype(result = "()")]
struct Fan<const G: usize>(Bytes);

/// An actix-broker subscriber that counts what it gets.
struct Subscriber<const G: usize> {
    sink: Sink,
}

impl<const G: usize> Actor for Subscriber<G> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.subscribe_system_async::<Fan<G>>(ctx);
    }
}

impl<const G: usize> Handler<Fan<G>> for Subscriber<G> {
    type Result = ();

    fn handle(&mut self, msg: Fan<G>, _: &mut Context<Self>) {
        std::hint::black_box(&msg.0);
        self.sink.hit();
    }
}

async fn broker_fanout(name: &str, groups: usize, n: usize) -> Row {
    match groups {
        1 => broker_fanout_of::<1>(name, n).await,
        _ => broker_fanout_of::<4>(name, n).await,
    }
}

/// `G` subscribers on an arbiter of their own (as the bus's listeners run
/// off the system thread), `PUSHERS` tasks issuing on the system thread.
async fn broker_fanout_of<const G: usize>(name: &str, n: usize) -> Row {
    let arbiter = Arbiter::new();
    let sink = Sink::default();
    let subs: Vec<_> = (0..G)
        .map(|_| {
            let sink = sink.clone();
            Subscriber::<G>::start_in_arbiter(&arbiter.handle(), move |_| Subscriber { sink })
        })
        .collect();
    // Subscriptions are messages to the broker: issue until every
    // subscriber has seen one, so that none misses the timed messages.
    // (Each subscriber gets at most one copy per issue.)
    loop {
        let before = sink.count();
        Broker::<SystemBroker>::issue_async(Fan::<G>(payload()));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if sink.count() >= before + G {
            break;
        }
    }
    settle_down().await;
    let target = sink.expect(n * G);
    let start = Instant::now();
    let body = payload();
    let tasks: Vec<_> = (0..PUSHERS)
        .map(|t| {
            let body = body.clone();
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    Broker::<SystemBroker>::issue_async(Fan::<G>(body.clone()));
                    i += PUSHERS;
                    if i % (PUSHERS * 64) < PUSHERS {
                        // let the broker actor run, as awaited pushes would
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("issuer task");
    }
    sink.wait(target).await;
    let row = Row::rate(name, Kind::Raw, n * G, start.elapsed())
        .with("groups", json!(G))
        .with("published", json!(n));
    for sub in subs {
        sub.do_send(StopSubscriber);
    }
    arbiter.stop();
    row
}

/// Stops a subscriber of a finished row.
#[derive(Message)]
#[rtype(result = "()")]
struct StopSubscriber;

impl<const G: usize> Handler<StopSubscriber> for Subscriber<G> {
    type Result = ();

    fn handle(&mut self, _: StopSubscriber, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Answers each ping with its payload.
struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "Bytes")]
struct Ping(Bytes);

impl Handler<Ping> for Echo {
    type Result = MessageResult<Ping>;

    fn handle(&mut self, msg: Ping, _: &mut Context<Self>) -> Self::Result {
        MessageResult(msg.0)
    }
}

async fn raw_actix_rtt(m: usize) -> Row {
    let arbiter = Arbiter::new();
    let echo = Echo::start_in_arbiter(&arbiter.handle(), |_| Echo);
    let body = payload();
    let row = rtt_row(RAW_RTT, m, async || {
        std::hint::black_box(echo.send(Ping(body.clone())).await.expect("echo"));
    })
    .await;
    arbiter.stop();
    row
}

/// The issue's targets: fan-out with every delivery acknowledged at ≥ 1×
/// actix-broker (no acknowledgements) with 1 subscriber, ≥ 2× with 4.
fn apply_targets(rows: &mut [Row]) {
    row::rate_target(rows, FANOUT_1, BROKER_1, 1.0, "≥1x actix-broker 1 sub");
    row::rate_target(rows, FANOUT_4, BROKER_4, 2.0, "≥2x actix-broker 4 subs");
}
