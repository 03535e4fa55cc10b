//! Lifecycle: supervision of queue actors, listener removal under load, actix
//! actors as listeners, and independence of buses.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, Context, Handler};
use actorbus::{Bus, Config, Delivery, Error, HandlerResult, PushOptions};
use support::{
    bounded, fast_config, index_of, indexed, init_tracing, stats_until, unique_queue, Collector,
    LIMIT,
};
use tokio::sync::Semaphore;

async fn bus_with(config: Config) -> Bus {
    Bus::connect(config).await.expect("memory bus")
}

// ---- supervision: a crashed queue actor restarts with its state -------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_restarts_are_counted_and_lose_no_stored_message() {
    init_tracing();
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash");
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(bus.push(&q, indexed(i)).await.expect("push"));
    }
    assert_eq!(bus.stats(&q).await.unwrap().restarts, 0);

    for crash in 1..=3u64 {
        bounded("crash", LIMIT, bus.__crash_queue_actor(&q))
            .await
            .expect("crash hook");
        let s = bus.stats(&q).await.expect("stats after a crash");
        assert_eq!(s.restarts, crash, "one restart per crash: {s:?}");
        assert_eq!(s.ready, 20, "stored messages survive a restart: {s:?}");
    }

    let seen = Collector::new();
    let listener = bus
        .add_listener(&q, seen.handler())
        .await
        .expect("add_listener");
    let got = seen.wait_for(20, LIMIT).await;
    let indexes: Vec<u32> = got.iter().map(index_of).collect();
    assert_eq!(
        indexes,
        (0..20).collect::<Vec<_>>(),
        "all delivered, in order"
    );
    for (d, id) in got.iter().zip(&ids) {
        assert_eq!(d.id(), id);
        assert_eq!(d.attempt(), 1);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 20, "nothing delivered twice");
    assert_eq!(
        bus.stats(&q).await.unwrap().restarts,
        3,
        "delivery does not restart the actor"
    );
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_listeners_attached() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-listener");
    let seen = Collector::new();
    let listener = bus
        .add_listener(&q, seen.handler())
        .await
        .expect("add_listener");
    for i in 0..3 {
        bus.push(&q, indexed(i)).await.unwrap();
    }
    seen.wait_for(3, LIMIT).await;

    bus.__crash_queue_actor(&q).await.expect("crash hook");
    let s = bus.stats(&q).await.unwrap();
    assert_eq!((s.restarts, s.listeners), (1, 1), "{s:?}");
    for i in 3..6 {
        bus.push(&q, indexed(i)).await.unwrap();
    }
    let got = seen.wait_for(6, LIMIT).await;
    let indexes: Vec<u32> = got.iter().map(index_of).collect();
    assert_eq!(
        indexes,
        [0, 1, 2, 3, 4, 5],
        "the listener attached before the crash still receives"
    );
    assert!(listener.is_running());
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_messages_in_flight_and_their_settlement() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-inflight");
    let gate = Arc::new(Semaphore::new(0));
    let seen: Collector<u32> = Collector::new();
    let (g, s) = (gate.clone(), seen.clone());
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                g.acquire().await.expect("gate").forget();
                s.push(index_of(&d));
                Ok(())
            }
        })
        .await
        .unwrap();
    for i in 0..5 {
        bus.push(&q, indexed(i)).await.unwrap();
    }
    stats_until(&bus, &q, "5 in flight", |s| s.in_flight == 5).await;
    bus.__crash_queue_actor(&q).await.expect("crash hook");
    let s = bus.stats(&q).await.unwrap();
    assert_eq!(
        (s.in_flight, s.restarts),
        (5, 1),
        "leases survive a restart: {s:?}"
    );

    gate.add_permits(5);
    let got = seen.wait_for(5, LIMIT).await;
    assert_eq!(got, [0, 1, 2, 3, 4]);
    let s = stats_until(&bus, &q, "all settled", |s| s.in_flight == 0).await;
    assert_eq!(
        (s.ready, s.delayed, s.dead),
        (0, 0, 0),
        "acknowledged across the restart: {s:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 5, "nothing redelivered");
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_delayed_messages_and_their_timer() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-delay");
    let opts = PushOptions::default().with_delay(Duration::from_millis(300));
    let id = bus.push_with(&q, "later", opts).await.unwrap();
    bus.__crash_queue_actor(&q).await.expect("crash hook");
    let s = bus.stats(&q).await.unwrap();
    assert_eq!((s.delayed, s.restarts), (1, 1), "{s:?}");
    // Nothing else touches the queue: only a re-armed timer can release it.
    let d = bounded(
        "delayed message after a crash",
        LIMIT,
        bus.receive(&q, LIMIT),
    )
    .await
    .expect("the delayed message is still delivered after a restart");
    assert_eq!(d.id(), &id);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_waiting_receives_and_their_timeouts() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-receive");
    let long = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, LIMIT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.__crash_queue_actor(&q).await.expect("crash hook");
    let id = bus.push(&q, "for the waiting receive").await.unwrap();
    let d = bounded("receive across a crash", LIMIT, long)
        .await
        .unwrap()
        .expect("receive");
    assert_eq!(d.id(), &id);

    // A short receive that waits across a crash still times out.
    let short = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, Duration::from_millis(300)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    bus.__crash_queue_actor(&q).await.expect("crash hook");
    let r = bounded("a receive timeout across a crash", LIMIT, short)
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert_eq!(bus.stats(&q).await.unwrap().restarts, 2);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_pushes_waiting_for_room() {
    let mut config = fast_config();
    config.queue.memory.capacity = 1;
    config.queue.push_timeout = Duration::from_secs(20);
    let bus = bus_with(config).await;
    let q = unique_queue("crash-parked");
    let first = bus.push(&q, "first").await.unwrap();
    let parked = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.push(&q, "second").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.__crash_queue_actor(&q).await.expect("crash hook");
    assert_eq!(bus.receive(&q, LIMIT).await.unwrap().id(), &first);
    let second = bounded("a parked push across a crash", LIMIT, parked)
        .await
        .unwrap()
        .expect("the parked push gets room");
    assert_eq!(bus.receive(&q, LIMIT).await.unwrap().id(), &second);
    bus.shutdown().await.unwrap();
}

// ---- removal under load ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_handler_call_after_remove_returns() {
    const BURST: u32 = 50;
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("remove-stress");
    for round in 0..20 {
        let removed = Arc::new(AtomicBool::new(false));
        let late = Arc::new(AtomicUsize::new(0));
        let handled = Arc::new(AtomicUsize::new(0));
        let (r, l, h) = (removed.clone(), late.clone(), handled.clone());
        let listener = bus
            .add_listener(&q, move |_d: Delivery| {
                if r.load(Ordering::SeqCst) {
                    l.fetch_add(1, Ordering::SeqCst);
                }
                h.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            })
            .await
            .expect("add_listener");
        for i in 0..BURST {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        // Remove while the burst is being handled.
        bounded("remove", LIMIT, listener.remove())
            .await
            .expect("remove");
        removed.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            late.load(Ordering::SeqCst),
            0,
            "round {round}: handler called after remove returned"
        );

        let s = bus.stats(&q).await.unwrap();
        let handled = handled.load(Ordering::SeqCst) as u64;
        assert_eq!(
            s.in_flight, 0,
            "round {round}: nothing stays leased to a removed listener: {s:?}"
        );
        assert_eq!(s.listeners, 0, "round {round}: {s:?}");
        assert_eq!(
            handled + s.ready,
            u64::from(BURST),
            "round {round}: every message was handled once or is still queued ({handled} handled, {s:?})"
        );
        assert_eq!(bus.purge(&q).await.unwrap(), s.ready);
    }
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_is_not_running_once_remove_returns() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("is-running");
    for round in 0..100 {
        let listener = bus
            .add_listener(&q, |_d: Delivery| async { Ok(()) })
            .await
            .unwrap();
        assert!(listener.is_running(), "round {round}: a new listener runs");
        listener.remove().await.unwrap();
        assert!(
            !listener.is_running(),
            "round {round}: is_running() is still true after remove() returned"
        );
    }
    // The same through the queue's stop message.
    for round in 0..50 {
        let a = bus
            .add_listener(&q, |_d: Delivery| async { Ok(()) })
            .await
            .unwrap();
        let b = bus
            .add_listener(&q, |_d: Delivery| async { Ok(()) })
            .await
            .unwrap();
        bus.remove(&q).await.unwrap();
        assert!(
            !a.is_running() && !b.is_running(),
            "round {round}: is_running() is still true after bus.remove() returned"
        );
    }
    bus.shutdown().await.unwrap();
}

// ---- actix actors as listeners -------------------------------------------------------------

/// Records deliveries; fails the first `fail_until - 1` attempts of each message.
struct Recorder {
    seen: Collector<(String, u32)>,
    fail_until: u32,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Recorder {
    type Result = HandlerResult;

    fn handle(&mut self, msg: Delivery, _ctx: &mut Context<Self>) -> HandlerResult {
        self.seen
            .push((msg.as_str().unwrap_or("<binary>").to_owned(), msg.attempt()));
        if msg.attempt() < self.fail_until {
            return Err(format!("actor refuses attempt {}", msg.attempt()).into());
        }
        Ok(())
    }
}

#[actix::test]
async fn subscribed_actor_receives_messages() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("actor");
    let seen = Collector::new();
    let actor = Recorder {
        seen: seen.clone(),
        fail_until: 0,
    }
    .start();
    let listener = bus
        .subscribe(&q, actor.recipient())
        .await
        .expect("subscribe");
    assert_eq!(listener.queue(), q);
    assert_eq!(bus.stats(&q).await.unwrap().listeners, 1);
    for text in ["one", "two", "three"] {
        bus.push(&q, text).await.unwrap();
    }
    let got = seen.wait_for(3, LIMIT).await;
    let texts: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert!(got.iter().all(|(_, a)| *a == 1));
    stats_until(&bus, &q, "acknowledged", |s| s.ready + s.in_flight == 0).await;

    listener.remove().await.expect("remove");
    bus.push(&q, "after remove").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 3, "a removed subscription still delivered");
    assert_eq!(bus.stats(&q).await.unwrap().ready, 1);
    bus.shutdown().await.unwrap();
}

#[actix::test]
async fn subscribed_actor_returning_err_gets_retries() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("actor-retry");
    let seen = Collector::new();
    let actor = Recorder {
        seen: seen.clone(),
        fail_until: 3,
    }
    .start();
    let listener = bus
        .subscribe(&q, actor.recipient())
        .await
        .expect("subscribe");
    bus.push(&q, "stubborn").await.unwrap();
    let got = seen.wait_for(3, LIMIT).await;
    let attempts: Vec<u32> = got.iter().map(|(_, a)| *a).collect();
    assert_eq!(attempts, [1, 2, 3]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 3, "Ok on the third attempt acknowledges");
    let s = stats_until(&bus, &q, "acknowledged", |s| {
        s.ready + s.in_flight + s.delayed == 0
    })
    .await;
    assert_eq!(s.dead, 0);
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[actix::test]
async fn subscribed_actor_that_always_fails_dead_letters() {
    let mut config = fast_config();
    config.queue.retry.max_attempts = 2;
    let bus = bus_with(config).await;
    let q = unique_queue("actor-dead");
    let seen = Collector::new();
    let actor = Recorder {
        seen: seen.clone(),
        fail_until: u32::MAX,
    }
    .start();
    let listener = bus
        .subscribe(&q, actor.recipient())
        .await
        .expect("subscribe");
    let id = bus.push(&q, "hopeless").await.unwrap();
    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    let d = bus.receive(&format!("{q}.dead"), LIMIT).await.unwrap();
    assert_eq!(d.id(), &id);
    assert!(
        d.headers()
            .get("x-error")
            .is_some_and(|e| e.contains("actor refuses attempt 2")),
        "{:?}",
        d.headers()
    );
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

/// Stops itself on `Halt`; until then it acknowledges everything.
struct Quitter;

impl Actor for Quitter {
    type Context = Context<Self>;
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Halt;

impl Handler<Halt> for Quitter {
    type Result = ();

    fn handle(&mut self, _msg: Halt, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Delivery> for Quitter {
    type Result = HandlerResult;

    fn handle(&mut self, _msg: Delivery, _ctx: &mut Context<Self>) -> HandlerResult {
        Ok(())
    }
}

#[actix::test]
async fn message_for_a_stopped_actor_is_not_lost() {
    let mut config = fast_config();
    config.queue.retry.max_attempts = 2;
    let bus = bus_with(config).await;
    let q = unique_queue("actor-gone");
    let actor = Quitter.start();
    let listener = bus
        .subscribe(&q, actor.clone().recipient())
        .await
        .expect("subscribe");
    actor.send(Halt).await.expect("halt");
    let id = bus.push(&q, "nobody home").await.unwrap();
    // The delivery fails (the actor is gone), is retried, then dead-lettered: never dropped.
    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    let d = bus.receive(&format!("{q}.dead"), LIMIT).await.unwrap();
    assert_eq!(d.id(), &id);
    assert!(d.headers().contains_key("x-error"), "{:?}", d.headers());
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

// ---- handlers that use the bus ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_can_push_to_another_queue() {
    let bus = bus_with(fast_config()).await;
    let first = unique_queue("pipeline-in");
    let second = unique_queue("pipeline-out");
    let forwarder = {
        let (bus, second) = (bus.clone(), second.clone());
        bus.clone()
            .add_listener(&first, move |d: Delivery| {
                let (bus, second) = (bus.clone(), second.clone());
                async move {
                    let n = index_of(&d);
                    bus.push(&second, indexed(n * 10)).await?;
                    Ok(())
                }
            })
            .await
            .expect("add_listener")
    };
    let seen = Collector::new();
    let sink = bus.add_listener(&second, seen.handler()).await.unwrap();
    for i in 0..20 {
        bus.push(&first, indexed(i)).await.unwrap();
    }
    let got = seen.wait_for(20, LIMIT).await;
    let mut out: Vec<u32> = got.iter().map(index_of).collect();
    out.sort_unstable();
    assert_eq!(out, (0..20).map(|i| i * 10).collect::<Vec<_>>());
    forwarder.remove().await.unwrap();
    sink.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_from_inside_a_handler_returns() {
    let mut config = fast_config();
    config.queue.shutdown_timeout = Duration::from_millis(300);
    let bus = bus_with(config).await;
    let q = unique_queue("shutdown-inside");
    let (tx, rx) = tokio::sync::oneshot::channel::<actorbus::Result<()>>();
    let tx = std::sync::Mutex::new(Some(tx));
    let inner = bus.clone();
    let _listener = bus
        .add_listener(&q, move |_d: Delivery| {
            let bus = inner.clone();
            let tx = tx.lock().unwrap().take();
            async move {
                let result = bus.shutdown().await;
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    bus.push(&q, "stop everything").await.unwrap();
    let result = bounded("a shutdown called by a handler", LIMIT, rx)
        .await
        .expect("the handler reported its shutdown");
    result.expect("shutdown from a handler is Ok");
    assert!(matches!(bus.push(&q, "x").await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_remove_after_shutdown_returns() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("remove-after-shutdown");
    let listener = bus
        .add_listener(&q, |_d: Delivery| async { Ok(()) })
        .await
        .unwrap();
    bus.shutdown().await.unwrap();
    bounded("listener.remove after shutdown", LIMIT, listener.remove())
        .await
        .expect("removing a listener of a closed bus is fine");
    assert!(!listener.is_running());
}

// ---- buses are independent -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buses_are_independent() {
    let a = bus_with(fast_config()).await;
    let b = bus_with(fast_config()).await;
    let q = unique_queue("isolated");
    a.push(&q, "on a").await.unwrap();
    assert_eq!(
        b.stats(&q).await.unwrap().ready,
        0,
        "another bus does not see a's queue"
    );
    assert!(matches!(
        b.receive(&q, Duration::from_millis(100)).await,
        Err(Error::Timeout)
    ));
    b.shutdown().await.unwrap();
    // Shutting one bus down leaves the other working.
    assert_eq!(
        a.receive(&q, LIMIT).await.unwrap().as_str().unwrap(),
        "on a"
    );
    a.push(&q, "still open").await.expect("a is still open");
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_bus_without_shutdown_does_not_hang() {
    for _ in 0..5 {
        let bus = bus_with(fast_config()).await;
        let q = unique_queue("dropped");
        let seen = Collector::new();
        let _listener = bus.add_listener(&q, seen.handler()).await.unwrap();
        bus.push(&q, "x").await.unwrap();
        seen.wait_for(1, LIMIT).await;
        drop(bus);
    }
    // A fresh bus still works afterwards.
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("after-drop");
    bus.push(&q, "y").await.unwrap();
    assert_eq!(bus.receive(&q, LIMIT).await.unwrap().as_str().unwrap(), "y");
    bus.shutdown().await.unwrap();
}
