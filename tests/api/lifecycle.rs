//! Lifecycle: listener removal under load, actix actors as listeners, handlers
//! that use the bus, and independence of buses. The supervision of queue actors
//! (crash and restart) is in `supervision.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{
    bounded, fast_config, index_of, indexed, stats_until, unique_queue, Collector, LIMIT,
};
use actix::{Actor, ActorContext, Context, Handler};
use actorbus::{Bus, Config, Delivery, Error, HandlerResult};

async fn bus_with(config: Config) -> Bus {
    Bus::connect(config).await.expect("memory bus")
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

/// Handles each delivery in a future that waits for a permit, counting how
/// many run at once.
struct Gated {
    gate: Arc<tokio::sync::Semaphore>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Actor for Gated {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Gated {
    type Result = actix::ResponseFuture<HandlerResult>;

    fn handle(&mut self, _msg: Delivery, _ctx: &mut Context<Self>) -> Self::Result {
        let (gate, running, most) = (self.gate.clone(), self.running.clone(), self.most.clone());
        Box::pin(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            gate.acquire().await.map_err(|e| e.to_string())?.forget();
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[actix::test]
async fn subscribe_with_bounds_an_actors_deliveries_at_once() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("actor-concurrency");
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let actor = Gated {
        gate: gate.clone(),
        running: running.clone(),
        most: most.clone(),
    }
    .start();
    let opts = actorbus::ListenerOptions::default()
        .with_concurrency(3)
        .with_prefetch(0);
    let listener = bus
        .subscribe_with(&q, opts, actor.recipient())
        .await
        .expect("subscribe_with");
    for i in 0..6 {
        bus.push(&q, indexed(i)).await.unwrap();
    }
    crate::support::eventually("3 deliveries in the actor at once", LIMIT, || {
        let running = running.clone();
        async move { running.load(Ordering::SeqCst) == 3 }
    })
    .await;
    // Prefetch 0: the other three wait in the queue, not at the listener.
    let s = bus.stats(&q).await.unwrap();
    assert_eq!((s.in_flight, s.ready), (3, 3), "{s:?}");
    gate.add_permits(6);
    stats_until(&bus, &q, "all handled", |s| s.ready + s.in_flight == 0).await;
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "never more than its concurrency"
    );
    listener.remove().await.unwrap();
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
