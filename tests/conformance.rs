//! The conformance suite: the semantics of CONTRACT.md §3, the same on every driver.
//!
//! Each case is a `pub async fn` in [`cases`] taking a bus factory. The
//! `conformance_suite!` macro turns the whole list into `#[tokio::test]`s for
//! one driver, so a new driver gets every case with one line:
//!
//! ```ignore
//! conformance_suite!(amqp, support::amqp_bus);
//! ```
//!
//! The memory driver also runs the backpressure cases (`, capacity`), which
//! need a bounded local store.
//!
//! Time limits in here are correctness bounds (nothing hangs), never speed
//! assertions. The bus's actors run on their own threads, so the tests use real
//! short durations with wide margins instead of a paused clock.

mod support;

use support::{memory_bus, BusFactory};

/// Generates one `#[tokio::test]` per conformance case, for the driver whose
/// factory is `$factory`, inside `mod $name`.
///
/// `conformance_suite!(name, factory)` runs every case of §3. Adding
/// `, capacity` also runs the backpressure cases, which rely on a bounded
/// local store (`queue.memory.capacity`): they belong to drivers that have one.
macro_rules! conformance_suite {
    ($name:ident, $factory:expr) => {
        conformance_suite!(@with $name, $factory;);
    };
    ($name:ident, $factory:expr, capacity) => {
        conformance_suite!(@with $name, $factory;
            full_queue_push_times_out,
            full_queue_push_waits_for_room,
            room_freed_by_a_waiting_receive_admits_a_waiting_push,
            shutdown_fails_a_push_waiting_for_room,
        );
    };
    (@with $name:ident, $factory:expr; $($extra:ident,)*) => {
        conformance_suite!(@module $name, $factory;
            // §3.1 storage before success, §2 producing
            push_before_listener_is_delivered_later,
            push_returns_distinct_ids,
            payloads_and_json_round_trip,
            push_default_uses_configured_default_queue,
            headers_arrive_with_the_delivery,
            // §3.5 competing consumers and concurrency
            competing_consumers_each_message_exactly_once,
            concurrency_bounds_handlers_running_at_once,
            default_concurrency_is_one,
            // §3.2, §3.3 at-least-once, retries, dead letters
            handler_error_is_retried_with_rising_attempt,
            panic_before_future_is_retried,
            panic_inside_future_is_retried,
            retries_wait_for_the_doubling_backoff,
            poison_message_is_dead_lettered_with_headers,
            panicking_poison_message_names_the_panic,
            dead_letter_queue_is_an_ordinary_queue,
            dead_letter_queue_of_a_200_byte_queue_is_reachable,
            // §3.4 delays
            delayed_message_waits_then_is_delivered,
            delayed_message_reaches_a_listener_after_its_delay,
            delayed_message_does_not_block_ready_ones,
            // §3.6 order
            fifo_for_one_listener_with_concurrency_one,
            // §3.7 removal
            listener_remove_stops_handler_and_keeps_messages,
            bus_remove_stops_every_listener_and_keeps_messages,
            remove_twice_and_remove_unknown_queue_are_ok,
            stopped_listener_finishes_delivery_in_hand,
            bus_remove_finishes_delivery_in_hand,
            // §3.11 receive
            receive_takes_one_message_and_acknowledges_it,
            receive_waits_for_a_later_push,
            receive_times_out_on_empty_queue,
            abandoned_receive_does_not_swallow_a_message,
            concurrent_receives_each_get_a_different_message,
            // stats and purge
            stats_count_ready_delayed_in_flight_and_listeners,
            purge_drops_ready_messages_only,
            // §3.8 shutdown
            shutdown_refuses_new_work_on_every_clone,
            shutdown_twice_is_ok,
            shutdown_waits_for_handler_in_flight,
            shutdown_gives_up_on_a_stuck_handler_after_shutdown_timeout,
            shutdown_releases_a_waiting_receive,
            $($extra,)*
        );
    };
    (@module $name:ident, $factory:expr; $($case:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::support::init_tracing();
                    let factory: &crate::support::BusFactory = &$factory;
                    crate::cases::$case(factory).await;
                }
            )*
        }
    };
}

conformance_suite!(memory, memory_bus, capacity);

/// The cases, one `pub async fn` per behaviour, each taking the driver's factory.
/// Each is named for the behaviour it checks.
#[allow(missing_docs)]
pub mod cases {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use actorbus::{Bus, Config, Delivery, Error, ListenerOptions, PushOptions};
    use bytes::Bytes;
    use serde::{Deserialize, Serialize};
    use tokio::sync::Semaphore;

    use super::BusFactory;
    use crate::support::{
        bounded, eventually, fast_config, index_of, indexed, stats_until, unique_queue, Collector,
        LIMIT,
    };

    async fn bus_with(factory: &BusFactory, config: Config) -> Bus {
        bounded("bus factory", LIMIT, factory(config)).await
    }

    /// Lets a burst of stray deliveries (which must not come) show up.
    async fn settle_time() {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    async fn shutdown(bus: Bus) {
        bounded("bus.shutdown()", LIMIT, bus.shutdown())
            .await
            .expect("shutdown");
    }

    // ---- §3.1 storage before success -------------------------------------------------

    pub async fn push_before_listener_is_delivered_later(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("early");
        let id = bus.push(&q, "hello").await.expect("push");
        assert_eq!(
            bus.stats(&q).await.expect("stats").ready,
            1,
            "a pushed message is stored"
        );

        let seen = Collector::new();
        let listener = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        let got = seen.wait_for(1, LIMIT).await;
        assert_eq!(
            got[0].id(),
            &id,
            "the delivery's id is the one push returned"
        );
        assert_eq!(got[0].queue(), q);
        assert_eq!(got[0].payload(), &Bytes::from_static(b"hello"));
        assert_eq!(got[0].as_str().expect("utf-8"), "hello");
        assert_eq!(got[0].attempt(), 1);

        settle_time().await;
        assert_eq!(seen.len(), 1, "delivered exactly once");
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn push_returns_distinct_ids(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("ids");
        let mut ids = Vec::new();
        for i in 0..50 {
            ids.push(bus.push(&q, indexed(i)).await.expect("push"));
        }
        let distinct: HashSet<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(distinct.len(), 50, "every push gets its own id");

        for (i, id) in ids.iter().enumerate() {
            let d = bus.receive(&q, LIMIT).await.expect("receive");
            assert_eq!(index_of(&d), i as u32);
            assert_eq!(d.id(), id);
        }
        shutdown(bus).await;
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: u64,
        item: String,
        tags: Vec<String>,
        price: Option<f64>,
    }

    pub async fn payloads_and_json_round_trip(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("payloads");
        let order = Order {
            id: 42,
            item: "tea ☕".into(),
            tags: vec!["hot".into(), "green".into()],
            price: Some(3.5),
        };
        let binary: Vec<u8> = vec![0, 159, 146, 150, 255, 254, 0, 1, 0xC0, 0x80];
        let big: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i % 251) as u8).collect();
        let payloads: Vec<Bytes> = vec![
            Bytes::new(),
            Bytes::from(binary.clone()),
            Bytes::from_static("héllo wörld\n".as_bytes()),
            Bytes::from(big.clone()),
        ];

        let json_id = bus.push_json(&q, &order).await.expect("push_json");
        let mut ids = Vec::new();
        for p in &payloads {
            ids.push(bus.push(&q, p.clone()).await.expect("push"));
        }

        let seen = Collector::new();
        let listener = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        let got = seen.wait_for(1 + payloads.len(), LIMIT).await;
        let by_id = |id: &actorbus::MessageId| -> Delivery {
            got.iter()
                .find(|d| d.id() == id)
                .cloned()
                .unwrap_or_else(|| panic!("no delivery with id {id}"))
        };

        let json = by_id(&json_id);
        assert_eq!(json.json::<Order>().expect("json"), order);
        assert_eq!(
            json.payload(),
            &Bytes::from(serde_json::to_vec(&order).unwrap())
        );
        for (p, id) in payloads.iter().zip(&ids) {
            let d = by_id(id);
            assert_eq!(d.payload().len(), p.len());
            assert!(
                d.payload() == p,
                "payload of {} bytes changed on the way",
                p.len()
            );
            assert_eq!(d.attempt(), 1);
            assert_eq!(d.queue(), q);
        }
        assert!(by_id(&ids[0]).payload().is_empty());
        assert_eq!(by_id(&ids[1]).payload().as_ref(), &binary[..]);
        assert_eq!(by_id(&ids[2]).as_str().expect("utf-8"), "héllo wörld\n");
        assert_eq!(by_id(&ids[3]).payload().as_ref(), &big[..]);

        settle_time().await;
        assert_eq!(seen.len(), 1 + payloads.len(), "nothing delivered twice");
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn push_default_uses_configured_default_queue(factory: &BusFactory) {
        let mut config = fast_config();
        let q = unique_queue("default");
        config.queue.default = q.clone();
        let bus = bus_with(factory, config).await;
        let id = bus
            .push_default("to the default")
            .await
            .expect("push_default");
        assert_eq!(bus.stats(&q).await.expect("stats").ready, 1);
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &id);
        assert_eq!(d.queue(), q);
        assert_eq!(d.as_str().unwrap(), "to the default");
        shutdown(bus).await;
    }

    pub async fn headers_arrive_with_the_delivery(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("headers");
        let headers = BTreeMap::from([
            ("tenant".to_owned(), "acme".to_owned()),
            ("trace-id".to_owned(), "abc 123 / é".to_owned()),
            ("empty".to_owned(), String::new()),
        ]);
        let opts = PushOptions {
            headers: headers.clone(),
            ..Default::default()
        };
        let id = bus
            .push_with(&q, "with headers", opts)
            .await
            .expect("push_with");
        let plain = bus.push(&q, "without").await.expect("push");

        let seen = Collector::new();
        let listener = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        let got = seen.wait_for(2, LIMIT).await;
        let with = got
            .iter()
            .find(|d| d.id() == &id)
            .expect("message with headers");
        for (k, v) in &headers {
            assert_eq!(
                with.headers().get(k),
                Some(v),
                "header {k:?} lost or changed"
            );
        }
        assert!(
            !with.headers().contains_key("x-error"),
            "a first delivery carries no dead-letter headers: {:?}",
            with.headers()
        );
        assert_eq!(with.attempt(), 1);
        let without = got
            .iter()
            .find(|d| d.id() == &plain)
            .expect("plain message");
        assert!(
            without.headers().keys().all(|k| !headers.contains_key(k)),
            "headers leaked into another message: {:?}",
            without.headers()
        );
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    // ---- §3.5 competing consumers ------------------------------------------------------

    pub async fn competing_consumers_each_message_exactly_once(factory: &BusFactory) {
        const N: u32 = 10_000;
        const LISTENERS: usize = 4;
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("compete");
        let counts: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
        let per_listener: Arc<Vec<AtomicUsize>> =
            Arc::new((0..LISTENERS).map(|_| AtomicUsize::new(0)).collect());
        let total = Arc::new(AtomicUsize::new(0));

        let mut listeners = Vec::new();
        for l in 0..LISTENERS {
            let (counts, per_listener, total) =
                (counts.clone(), per_listener.clone(), total.clone());
            let listener = bus
                .add_listener(&q, move |d: Delivery| {
                    counts[index_of(&d) as usize].fetch_add(1, Ordering::SeqCst);
                    per_listener[l].fetch_add(1, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::SeqCst);
                    async { Ok(()) }
                })
                .await
                .expect("add_listener");
            listeners.push(listener);
        }
        assert_eq!(bus.stats(&q).await.unwrap().listeners, LISTENERS as u64);

        // Four producers at once, so pushes and deliveries interleave.
        let mut producers = Vec::new();
        for p in 0..4u32 {
            let (bus, q) = (bus.clone(), q.clone());
            producers.push(tokio::spawn(async move {
                for i in (p..N).step_by(4) {
                    bus.push(&q, indexed(i)).await.expect("push");
                }
            }));
        }
        for producer in producers {
            bounded("producers", LIMIT, producer)
                .await
                .expect("producer task");
        }
        eventually(
            "all 10 000 messages handled",
            Duration::from_secs(120),
            || {
                let total = total.clone();
                async move { total.load(Ordering::SeqCst) >= N as usize }
            },
        )
        .await;
        settle_time().await;

        let missing: Vec<u32> = (0..N)
            .filter(|&i| counts[i as usize].load(Ordering::SeqCst) == 0)
            .collect();
        let duplicated: Vec<(u32, u32)> = (0..N)
            .map(|i| (i, counts[i as usize].load(Ordering::SeqCst)))
            .filter(|&(_, c)| c > 1)
            .collect();
        assert!(
            missing.is_empty(),
            "{} messages never handled, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        assert!(
            duplicated.is_empty(),
            "{} messages handled more than once, e.g. {:?}",
            duplicated.len(),
            &duplicated[..duplicated.len().min(10)]
        );
        assert_eq!(total.load(Ordering::SeqCst), N as usize);
        let shares: Vec<usize> = per_listener
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect();
        assert!(
            shares.iter().filter(|&&c| c > 0).count() > 1,
            "competing listeners should share the work, got {shares:?}"
        );
        let stats = stats_until(&bus, &q, "nothing left", |s| {
            s.ready == 0 && s.in_flight == 0
        })
        .await;
        assert_eq!(stats.dead, 0);
        for listener in listeners {
            listener.remove().await.expect("remove");
        }
        shutdown(bus).await;
    }

    // ---- §3.2 / §3.3 at-least-once and retries --------------------------------------------

    pub async fn handler_error_is_retried_with_rising_attempt(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("retry");
        let seen: Collector<(String, u32)> = Collector::new();
        let s = seen.clone();
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                s.push((d.id().to_string(), d.attempt()));
                let attempt = d.attempt();
                async move {
                    if attempt < 3 {
                        Err(format!("failing attempt {attempt}").into())
                    } else {
                        Ok(())
                    }
                }
            })
            .await
            .expect("add_listener");
        let id = bus.push(&q, "flaky").await.expect("push");

        let got = seen.wait_for(3, LIMIT).await;
        let attempts: Vec<u32> = got.iter().map(|(_, a)| *a).collect();
        assert_eq!(attempts, [1, 2, 3], "attempt rises by one per retry");
        assert!(
            got.iter().all(|(i, _)| *i == id.to_string()),
            "the id stays the same across retries"
        );
        settle_time().await;
        assert_eq!(
            seen.len(),
            3,
            "Ok on the third attempt acknowledges: no fourth call"
        );
        let stats = stats_until(&bus, &q, "acknowledged", |s| {
            s.ready + s.in_flight + s.delayed == 0
        })
        .await;
        assert_eq!(
            stats.dead, 0,
            "a message that succeeded is not dead-lettered"
        );
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn panic_before_future_is_retried(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("panic-sync");
        let seen: Collector<(u32, u32)> = Collector::new();
        let s = seen.clone();
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                s.push((index_of(&d), d.attempt()));
                if d.attempt() == 1 {
                    panic!("handler panicked before returning its future");
                }
                async { Ok(()) }
            })
            .await
            .expect("add_listener");
        for i in 0..5 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let got = seen.wait_for(10, LIMIT).await;
        for i in 0..5 {
            let mut attempts: Vec<u32> = got
                .iter()
                .filter(|(n, _)| *n == i)
                .map(|(_, a)| *a)
                .collect();
            attempts.sort_unstable();
            assert_eq!(
                attempts,
                [1, 2],
                "message {i}: a panic is retried once, then acknowledged"
            );
        }
        settle_time().await;
        assert_eq!(seen.len(), 10);
        let stats = stats_until(&bus, &q, "all acknowledged", |s| {
            s.ready + s.in_flight + s.delayed == 0
        })
        .await;
        assert_eq!(stats.dead, 0);
        assert_eq!(
            stats.listeners, 1,
            "a panicking handler does not kill its listener"
        );
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn panic_inside_future_is_retried(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("panic-async");
        let seen: Collector<(u32, u32)> = Collector::new();
        let s = seen.clone();
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                s.push((index_of(&d), d.attempt()));
                let attempt = d.attempt();
                async move {
                    tokio::task::yield_now().await;
                    if attempt == 1 {
                        panic!("handler panicked inside its future");
                    }
                    Ok(())
                }
            })
            .await
            .expect("add_listener");
        for i in 0..5 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let got = seen.wait_for(10, LIMIT).await;
        for i in 0..5 {
            let mut attempts: Vec<u32> = got
                .iter()
                .filter(|(n, _)| *n == i)
                .map(|(_, a)| *a)
                .collect();
            attempts.sort_unstable();
            assert_eq!(
                attempts,
                [1, 2],
                "message {i}: a panic is retried once, then acknowledged"
            );
        }
        settle_time().await;
        assert_eq!(seen.len(), 10);
        let stats = stats_until(&bus, &q, "all acknowledged", |s| {
            s.ready + s.in_flight + s.delayed == 0
        })
        .await;
        assert_eq!(stats.dead, 0);
        assert_eq!(
            stats.listeners, 1,
            "a panicking handler does not kill its listener"
        );
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    fn poison_config() -> Config {
        let mut config = fast_config();
        config.queue.retry.max_attempts = 3;
        config.queue.retry.backoff = Duration::from_millis(5);
        config.queue.retry.max_backoff = Duration::from_millis(20);
        config
    }

    pub async fn poison_message_is_dead_lettered_with_headers(factory: &BusFactory) {
        let bus = bus_with(factory, poison_config()).await;
        let q = unique_queue("poison");
        let dead = format!("{q}.dead");
        let attempts: Collector<u32> = Collector::new();
        let a = attempts.clone();
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                a.push(d.attempt());
                async { Err("poisoned: cannot parse order".into()) }
            })
            .await
            .expect("add_listener");
        let before = std::time::SystemTime::now();
        let opts = PushOptions::default().with_header("tenant", "acme");
        let id = bus.push_with(&q, "bad data", opts).await.expect("push");

        let stats = stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
        assert_eq!(
            stats.ready + stats.in_flight + stats.delayed,
            0,
            "the message left {q}: {stats:?}"
        );
        assert_eq!(
            attempts.snapshot(),
            [1, 2, 3],
            "handled max_attempts times, then dead-lettered"
        );
        settle_time().await;
        assert_eq!(attempts.len(), 3, "no attempt after the last one");

        let d = bus
            .receive(&dead, LIMIT)
            .await
            .expect("receive from the dead-letter queue");
        assert_eq!(d.id(), &id, "a dead letter keeps its id");
        assert_eq!(d.queue(), dead);
        assert_eq!(d.as_str().unwrap(), "bad data");
        let h = d.headers();
        assert!(
            h.get("x-error")
                .is_some_and(|e| e.contains("poisoned: cannot parse order")),
            "x-error names the handler's error: {h:?}"
        );
        assert_eq!(h.get("x-attempts").map(String::as_str), Some("3"), "{h:?}");
        let failed_at = h
            .get("x-failed-at")
            .unwrap_or_else(|| panic!("no x-failed-at: {h:?}"));
        let failed_at = humantime::parse_rfc3339(failed_at)
            .unwrap_or_else(|e| panic!("x-failed-at {failed_at:?} is not RFC 3339: {e}"));
        assert!(
            failed_at + Duration::from_secs(1) >= before,
            "x-failed-at {failed_at:?} is before the push"
        );
        assert_eq!(
            h.get("tenant").map(String::as_str),
            Some("acme"),
            "user headers are kept"
        );

        assert_eq!(
            bus.stats(&q).await.unwrap().dead,
            0,
            "receive took the dead letter"
        );
        listener.remove().await.expect("remove");
        // The dead-letter headers belong to that message only: a fresh message
        // without headers still arrives without any.
        let plain = bus.push(&q, "clean").await.expect("push");
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &plain);
        assert!(
            d.headers().is_empty(),
            "headers leaked into a fresh message: {:?}",
            d.headers()
        );
        shutdown(bus).await;
    }

    pub async fn panicking_poison_message_names_the_panic(factory: &BusFactory) {
        let mut config = poison_config();
        config.queue.retry.max_attempts = 2;
        let bus = bus_with(factory, config).await;
        let q = unique_queue("poison-panic");
        let listener = bus
            .add_listener(&q, |d: Delivery| async move {
                if d.attempt() > 0 {
                    panic!("kaboom in handler");
                }
                Ok(())
            })
            .await
            .expect("add_listener");
        let id = bus.push(&q, "explodes").await.expect("push");
        stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
        let d = bus
            .receive(&format!("{q}.dead"), LIMIT)
            .await
            .expect("dead letter");
        assert_eq!(d.id(), &id);
        assert!(
            d.headers()
                .get("x-error")
                .is_some_and(|e| e.contains("kaboom in handler")),
            "x-error names the panic: {:?}",
            d.headers()
        );
        assert_eq!(d.headers().get("x-attempts").map(String::as_str), Some("2"));
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn dead_letter_queue_is_an_ordinary_queue(factory: &BusFactory) {
        let mut config = poison_config();
        config.queue.retry.max_attempts = 1;
        let bus = bus_with(factory, config).await;
        let q = unique_queue("dlq");
        let dead = format!("{q}.dead");
        let failing = bus
            .add_listener(&q, |_d: Delivery| async { Err("always fails".into()) })
            .await
            .expect("add_listener");

        // Counted and purged.
        for i in 0..3 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        stats_until(&bus, &q, "dead == 3", |s| s.dead == 3).await;
        assert_eq!(
            bus.stats(&dead).await.unwrap().ready,
            3,
            "<q>.dead counts its own ready messages"
        );
        assert_eq!(bus.purge(&dead).await.expect("purge dead"), 3);
        assert_eq!(bus.stats(&q).await.unwrap().dead, 0);

        // Listened to.
        let seen = Collector::new();
        let dead_listener = bus
            .add_listener(&dead, seen.handler())
            .await
            .expect("listen to <q>.dead");
        let id = bus.push(&q, indexed(7)).await.expect("push");
        let got = seen.wait_for(1, LIMIT).await;
        assert_eq!(got[0].id(), &id);
        assert_eq!(index_of(&got[0]), 7);
        assert_eq!(got[0].queue(), dead);
        stats_until(&bus, &q, "the dead letter acknowledged", |s| s.dead == 0).await;
        dead_listener.remove().await.expect("remove");

        // Pushed to directly and received from, like any queue.
        let direct = bus
            .push(&dead, "pushed by hand")
            .await
            .expect("push to <q>.dead");
        assert_eq!(bus.stats(&q).await.unwrap().dead, 1);
        let d = bus.receive(&dead, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &direct);
        failing.remove().await.expect("remove");
        shutdown(bus).await;
    }

    // ---- §3.4 delays ---------------------------------------------------------------------

    pub async fn delayed_message_waits_then_is_delivered(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("delay");
        let start = Instant::now();
        let opts = PushOptions::default().with_delay(Duration::from_millis(300));
        let id = bus
            .push_with(&q, "later", opts)
            .await
            .expect("push_with delay");
        let stats = bus.stats(&q).await.unwrap();
        assert_eq!((stats.delayed, stats.ready), (1, 0), "held back: {stats:?}");

        let early = bus.receive(&q, Duration::from_millis(150)).await;
        if start.elapsed() < Duration::from_millis(300) {
            assert!(
                matches!(early, Err(Error::Timeout)),
                "delivered before its delay: {early:?}"
            );
            let d = bus
                .receive(&q, LIMIT)
                .await
                .expect("delivered after the delay");
            assert_eq!(d.id(), &id);
        } else {
            // A very slow machine: the 150 ms receive ended past the delay.
            // Then all that can be checked is that it was not early.
            let d = match early {
                Ok(d) => d,
                Err(_) => bus
                    .receive(&q, LIMIT)
                    .await
                    .expect("delivered after the delay"),
            };
            assert_eq!(d.id(), &id);
        }
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "received after {:?}, before its 300 ms delay",
            start.elapsed()
        );
        let stats = bus.stats(&q).await.unwrap();
        assert_eq!((stats.delayed, stats.ready, stats.in_flight), (0, 0, 0));
        shutdown(bus).await;
    }

    pub async fn delayed_message_reaches_a_listener_after_its_delay(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("delay-listen");
        let arrived: Collector<Duration> = Collector::new();
        let start = Instant::now();
        let a = arrived.clone();
        let listener = bus
            .add_listener(&q, move |_d: Delivery| {
                a.push(start.elapsed());
                async { Ok(()) }
            })
            .await
            .expect("add_listener");
        let opts = PushOptions::default().with_delay(Duration::from_millis(300));
        bus.push_with(&q, "later", opts)
            .await
            .expect("push_with delay");
        let got = arrived.wait_for(1, LIMIT).await;
        assert!(
            got[0] >= Duration::from_millis(300),
            "delivered after {:?}, before its delay",
            got[0]
        );
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn delayed_message_does_not_block_ready_ones(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("delay-mixed");
        let opts = PushOptions::default().with_delay(Duration::from_millis(500));
        let late = bus.push_with(&q, "late", opts).await.expect("push delayed");
        let now = bus.push(&q, "now").await.expect("push");
        let first = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(
            first.id(),
            &now,
            "a ready message is not held up by a delayed one"
        );
        let second = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(second.id(), &late);
        shutdown(bus).await;
    }

    // ---- §3.6 order ----------------------------------------------------------------------

    pub async fn fifo_for_one_listener_with_concurrency_one(factory: &BusFactory) {
        const N: u32 = 1000;
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("fifo");
        // Half waits in the queue before the listener comes, half arrives while it runs.
        for i in 0..N / 2 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let order: Collector<u32> = Collector::new();
        let o = order.clone();
        let opts = ListenerOptions::default().with_concurrency(1);
        let listener = bus
            .add_listener_with(&q, opts, move |d: Delivery| {
                o.push(index_of(&d));
                async { Ok(()) }
            })
            .await
            .expect("add_listener_with");
        for i in N / 2..N {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let got = order.wait_for(N as usize, LIMIT).await;
        let expected: Vec<u32> = (0..N).collect();
        if got != expected {
            let first_bad = got.iter().zip(&expected).position(|(a, b)| a != b);
            panic!(
                "not FIFO: first difference at position {first_bad:?} (len {})",
                got.len()
            );
        }
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    // ---- §3.5 concurrency ------------------------------------------------------------------

    async fn max_running(factory: &BusFactory, opts: ListenerOptions, messages: u32) -> usize {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("concurrency");
        let running = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let done: Collector<u32> = Collector::new();
        for i in 0..messages {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let (r, m, dn) = (running.clone(), max.clone(), done.clone());
        let listener = bus
            .add_listener_with(&q, opts, move |d: Delivery| {
                let (r, m, dn) = (r.clone(), m.clone(), dn.clone());
                async move {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    r.fetch_sub(1, Ordering::SeqCst);
                    dn.push(index_of(&d));
                    Ok(())
                }
            })
            .await
            .expect("add_listener_with");
        let got = done.wait_for(messages as usize, LIMIT).await;
        let distinct: HashSet<u32> = got.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            messages as usize,
            "every message handled once"
        );
        listener.remove().await.expect("remove");
        shutdown(bus).await;
        max.load(Ordering::SeqCst)
    }

    pub async fn concurrency_bounds_handlers_running_at_once(factory: &BusFactory) {
        let max = max_running(factory, ListenerOptions::default().with_concurrency(8), 64).await;
        assert!(max <= 8, "{max} handlers ran at once with concurrency 8");
        assert_eq!(
            max, 8,
            "with 64 slow messages waiting, concurrency 8 should run 8 at once"
        );
    }

    pub async fn default_concurrency_is_one(factory: &BusFactory) {
        let max = max_running(factory, ListenerOptions::default(), 6).await;
        assert_eq!(max, 1, "the default concurrency is 1");
    }

    // ---- §3.7 removal --------------------------------------------------------------------

    pub async fn listener_remove_stops_handler_and_keeps_messages(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("remove");
        let seen = Collector::new();
        let listener = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        assert_eq!(listener.queue(), q);
        for i in 0..3 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        seen.wait_for(3, LIMIT).await;
        bounded("listener.remove()", LIMIT, listener.remove())
            .await
            .expect("remove");

        for i in 3..8 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        settle_time().await;
        assert_eq!(
            seen.len(),
            3,
            "a removed listener's handler was called again"
        );
        let stats = bus.stats(&q).await.unwrap();
        assert_eq!(stats.ready, 5, "messages stay in the queue: {stats:?}");
        assert_eq!(stats.listeners, 0, "{stats:?}");

        let next = Collector::new();
        let again = bus
            .add_listener(&q, next.handler())
            .await
            .expect("add_listener");
        let got = next.wait_for(5, LIMIT).await;
        let mut indexes: Vec<u32> = got.iter().map(index_of).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, [3, 4, 5, 6, 7]);
        assert_eq!(seen.len(), 3);
        again.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn bus_remove_stops_every_listener_and_keeps_messages(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("bus-remove");
        let other = unique_queue("bus-remove-other");
        let seen = Collector::new();
        let a = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        let b = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        let other_seen = Collector::new();
        let c = bus
            .add_listener(&other, other_seen.handler())
            .await
            .expect("add_listener");
        assert_eq!(bus.stats(&q).await.unwrap().listeners, 2);
        for i in 0..4 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        seen.wait_for(4, LIMIT).await;

        bounded("bus.remove()", LIMIT, bus.remove(&q))
            .await
            .expect("bus.remove");
        for i in 4..7 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        settle_time().await;
        assert_eq!(
            seen.len(),
            4,
            "a listener of a removed queue was called again"
        );
        let stats = bus.stats(&q).await.unwrap();
        assert_eq!((stats.ready, stats.listeners), (3, 0), "{stats:?}");

        // Other queues keep their listeners.
        bus.push(&other, "still here").await.expect("push");
        other_seen.wait_for(1, LIMIT).await;
        assert_eq!(bus.stats(&other).await.unwrap().listeners, 1);

        // The queue itself still works: a new listener gets what waited.
        let next = Collector::new();
        let d = bus
            .add_listener(&q, next.handler())
            .await
            .expect("add_listener");
        let got = next.wait_for(3, LIMIT).await;
        let mut indexes: Vec<u32> = got.iter().map(index_of).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, [4, 5, 6]);

        // Removing the handles of already-stopped listeners is fine.
        a.remove().await.expect("remove a stopped listener");
        b.remove().await.expect("remove a stopped listener");
        for l in [c, d] {
            l.remove().await.expect("remove");
        }
        shutdown(bus).await;
    }

    pub async fn remove_twice_and_remove_unknown_queue_are_ok(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("remove-twice");
        let seen = Collector::new();
        let listener = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        listener.remove().await.expect("first remove");
        bounded("second remove", LIMIT, listener.remove())
            .await
            .expect("second remove");
        bus.remove(&q).await.expect("bus.remove");
        bus.remove(&q).await.expect("bus.remove twice");
        bus.remove(&unique_queue("never-used"))
            .await
            .expect("bus.remove of an unknown queue");
        bus.push(&q, "kept").await.expect("push");
        settle_time().await;
        assert!(seen.is_empty());
        assert_eq!(bus.stats(&q).await.unwrap().ready, 1);
        shutdown(bus).await;
    }

    pub async fn stopped_listener_finishes_delivery_in_hand(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("in-hand");
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(bus.push(&q, indexed(i)).await.expect("push"));
        }
        let started: Collector<u32> = Collector::new();
        let finished: Collector<u32> = Collector::new();
        let (s, f) = (started.clone(), finished.clone());
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                let (s, f) = (s.clone(), f.clone());
                async move {
                    s.push(index_of(&d));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    f.push(index_of(&d));
                    Ok(())
                }
            })
            .await
            .expect("add_listener");
        let first = started.wait_for(1, LIMIT).await[0];
        assert_eq!(first, 0, "FIFO: the first message is handled first");
        bounded("remove while a handler runs", LIMIT, listener.remove())
            .await
            .expect("remove");

        assert_eq!(
            finished.snapshot(),
            [0],
            "remove returns after the delivery in hand finished"
        );
        assert_eq!(started.len(), 1, "nothing was started after the stop");
        let stats = bus.stats(&q).await.unwrap();
        assert_eq!(
            (stats.ready, stats.in_flight, stats.delayed),
            (4, 0, 0),
            "the finished one is acknowledged, the prefetched ones are back: {stats:?}"
        );

        let mut rest = Vec::new();
        for _ in 0..4 {
            rest.push(bus.receive(&q, LIMIT).await.expect("receive"));
        }
        let indexes: Vec<u32> = rest.iter().map(index_of).collect();
        assert_eq!(
            indexes,
            [1, 2, 3, 4],
            "handed-back messages keep their order"
        );
        assert!(
            rest.iter().all(|d| d.attempt() == 1),
            "handed-back messages were not attempted"
        );
        assert!(
            rest.iter().all(|d| d.id() != &ids[0]),
            "the finished delivery was redelivered"
        );
        assert!(matches!(
            bus.receive(&q, Duration::from_millis(200)).await,
            Err(Error::Timeout)
        ));
        settle_time().await;
        assert_eq!(started.len(), 1);
        shutdown(bus).await;
    }

    // ---- §3.11 receive ---------------------------------------------------------------------

    pub async fn receive_takes_one_message_and_acknowledges_it(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("receive");
        let id = bus.push(&q, "one").await.expect("push");
        let two = bus.push(&q, "two").await.expect("push");
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &id);
        assert_eq!(d.as_str().unwrap(), "one");
        assert_eq!(d.attempt(), 1);
        assert_eq!(d.queue(), q);
        let stats = bus.stats(&q).await.unwrap();
        assert_eq!(
            (stats.ready, stats.in_flight),
            (1, 0),
            "a received message is gone: {stats:?}"
        );

        // A later listener gets only what was not received.
        let seen = Collector::new();
        let listener = bus
            .add_listener(&q, seen.handler())
            .await
            .expect("add_listener");
        let got = seen.wait_for(1, LIMIT).await;
        assert_eq!(got[0].id(), &two);
        settle_time().await;
        assert_eq!(seen.len(), 1, "the received message was delivered again");
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn receive_waits_for_a_later_push(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("receive-wait");
        let waiting = {
            let (bus, q) = (bus.clone(), q.clone());
            tokio::spawn(async move { bus.receive(&q, LIMIT).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let id = bus.push(&q, "arrives later").await.expect("push");
        let d = bounded("receive", LIMIT, waiting)
            .await
            .unwrap()
            .expect("receive");
        assert_eq!(d.id(), &id);
        let stats = bus.stats(&q).await.unwrap();
        assert_eq!((stats.ready, stats.in_flight), (0, 0));
        shutdown(bus).await;
    }

    pub async fn receive_times_out_on_empty_queue(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("receive-empty");
        let start = Instant::now();
        let got = bounded(
            "receive",
            LIMIT,
            bus.receive(&q, Duration::from_millis(100)),
        )
        .await;
        assert!(
            matches!(got, Err(Error::Timeout)),
            "expected Err(Timeout), got {got:?}"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "timed out early"
        );
        // A timed-out receive took nothing: a message pushed afterwards waits for the next taker.
        let id = bus.push(&q, "after").await.expect("push");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            bus.stats(&q).await.unwrap().ready,
            1,
            "a timed-out receive swallowed a message"
        );
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &id);
        shutdown(bus).await;
    }

    // ---- stats and purge -----------------------------------------------------------------

    pub async fn stats_count_ready_delayed_in_flight_and_listeners(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("stats");
        let fresh = bus
            .stats(&unique_queue("never-used"))
            .await
            .expect("stats of an unknown queue");
        assert_eq!(
            (
                fresh.ready,
                fresh.in_flight,
                fresh.delayed,
                fresh.dead,
                fresh.listeners
            ),
            (0, 0, 0, 0, 0)
        );

        for i in 0..3 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        for i in 3..5 {
            let opts = PushOptions::default().with_delay(Duration::from_secs(600));
            bus.push_with(&q, indexed(i), opts)
                .await
                .expect("push delayed");
        }
        let s = bus.stats(&q).await.unwrap();
        assert_eq!(
            (s.ready, s.in_flight, s.delayed, s.dead, s.listeners),
            (3, 0, 2, 0, 0),
            "{s:?}"
        );

        // A listener that holds its deliveries until the gate opens.
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let listener = bus
            .add_listener(&q, move |_d: Delivery| {
                let g = g.clone();
                async move {
                    g.acquire().await.expect("gate").forget();
                    Ok(())
                }
            })
            .await
            .expect("add_listener");
        let s = stats_until(&bus, &q, "3 in flight", |s| s.in_flight == 3).await;
        assert_eq!(
            (s.ready, s.in_flight, s.delayed, s.listeners),
            (0, 3, 2, 1),
            "{s:?}"
        );

        gate.add_permits(3);
        let s = stats_until(&bus, &q, "in flight drained", |s| s.in_flight == 0).await;
        assert_eq!(
            (s.ready, s.in_flight, s.delayed, s.listeners),
            (0, 0, 2, 1),
            "{s:?}"
        );
        listener.remove().await.expect("remove");
        let s = bus.stats(&q).await.unwrap();
        assert_eq!(
            (s.ready, s.in_flight, s.delayed, s.listeners),
            (0, 0, 2, 0),
            "{s:?}"
        );
        shutdown(bus).await;
    }

    pub async fn purge_drops_ready_messages_only(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("purge");
        assert_eq!(
            bus.purge(&unique_queue("never-used"))
                .await
                .expect("purge unknown"),
            0
        );
        for i in 0..7 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let opts = PushOptions::default().with_delay(Duration::from_millis(400));
        let delayed = bus
            .push_with(&q, "delayed", opts)
            .await
            .expect("push delayed");
        assert_eq!(bus.purge(&q).await.expect("purge"), 7);
        let s = bus.stats(&q).await.unwrap();
        assert_eq!(
            (s.ready, s.delayed),
            (0, 1),
            "purge keeps delayed messages: {s:?}"
        );
        assert_eq!(bus.purge(&q).await.expect("purge again"), 0);

        // The purged ones are gone for good; the delayed one still comes.
        let d = bus.receive(&q, LIMIT).await.expect("the delayed message");
        assert_eq!(d.id(), &delayed);
        assert!(matches!(
            bus.receive(&q, Duration::from_millis(200)).await,
            Err(Error::Timeout)
        ));
        // The queue works after a purge.
        let id = bus.push(&q, "after purge").await.expect("push");
        assert_eq!(bus.receive(&q, LIMIT).await.expect("receive").id(), &id);
        shutdown(bus).await;
    }

    // ---- §3.8 shutdown ------------------------------------------------------------------

    pub async fn shutdown_refuses_new_work_on_every_clone(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let clone = bus.clone();
        let q = unique_queue("closed");
        bus.push(&q, "before").await.expect("push before shutdown");
        bounded("shutdown", LIMIT, bus.shutdown())
            .await
            .expect("shutdown");

        for b in [&bus, &clone] {
            let closed = |r: &Result<_, Error>| matches!(r, Err(Error::Closed));
            let r = b.push(&q, "after").await;
            assert!(closed(&r), "push after shutdown: {r:?}");
            let r = b.push_with(&q, "after", PushOptions::default()).await;
            assert!(closed(&r), "push_with after shutdown: {r:?}");
            let r = b.push_json(&q, &[1, 2, 3]).await;
            assert!(closed(&r), "push_json after shutdown: {r:?}");
            let r = b.push_default("after").await;
            assert!(closed(&r), "push_default after shutdown: {r:?}");
            let r = b.add_listener(&q, |_d: Delivery| async { Ok(()) }).await;
            assert!(
                matches!(r, Err(Error::Closed)),
                "add_listener after shutdown: {r:?}"
            );
            let r = b
                .add_listener_with(&q, ListenerOptions::default(), |_d: Delivery| async {
                    Ok(())
                })
                .await;
            assert!(
                matches!(r, Err(Error::Closed)),
                "add_listener_with after shutdown: {r:?}"
            );
            let r = bounded(
                "receive after shutdown",
                LIMIT,
                b.receive(&q, Duration::from_millis(50)),
            )
            .await;
            assert!(
                matches!(r, Err(Error::Closed)),
                "receive after shutdown: {r:?}"
            );
            let r = b.stats(&q).await;
            assert!(
                matches!(r, Err(Error::Closed)),
                "stats after shutdown: {r:?}"
            );
            let r = b.purge(&q).await;
            assert!(
                matches!(r, Err(Error::Closed)),
                "purge after shutdown: {r:?}"
            );
            let r = b.remove(&q).await;
            assert!(
                matches!(r, Err(Error::Closed)),
                "remove after shutdown: {r:?}"
            );
        }
        assert_eq!(Error::Closed.to_string(), "bus is shut down");
    }

    pub async fn shutdown_twice_is_ok(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let clone = bus.clone();
        bounded("shutdown", LIMIT, bus.shutdown())
            .await
            .expect("first shutdown");
        bounded("shutdown", LIMIT, bus.shutdown())
            .await
            .expect("second shutdown");
        bounded("shutdown", LIMIT, clone.shutdown())
            .await
            .expect("shutdown of a clone");
        // Concurrent shutdowns of a fresh bus are fine too.
        let bus = bus_with(factory, fast_config()).await;
        let twin = bus.clone();
        let (a, b) = tokio::join!(bus.shutdown(), twin.shutdown());
        a.expect("concurrent shutdown");
        b.expect("concurrent shutdown");
    }

    pub async fn shutdown_waits_for_handler_in_flight(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("drain");
        let started: Collector<()> = Collector::new();
        let done = Arc::new(AtomicBool::new(false));
        let (s, dn) = (started.clone(), done.clone());
        let _listener = bus
            .add_listener(&q, move |_d: Delivery| {
                let (s, dn) = (s.clone(), dn.clone());
                async move {
                    s.push(());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    dn.store(true, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await
            .expect("add_listener");
        bus.push(&q, "slow").await.expect("push");
        started.wait_for(1, LIMIT).await;
        bounded("shutdown", LIMIT, bus.shutdown())
            .await
            .expect("shutdown");
        assert!(
            done.load(Ordering::SeqCst),
            "shutdown returned before the handler in flight finished"
        );
    }

    pub async fn shutdown_releases_a_waiting_receive(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("receive-shutdown");
        let waiting = {
            let (bus, q) = (bus.clone(), q.clone());
            tokio::spawn(async move { bus.receive(&q, Duration::from_secs(600)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        bounded("shutdown", LIMIT, bus.shutdown())
            .await
            .expect("shutdown");
        let r = bounded("a receive waiting across shutdown", LIMIT, waiting)
            .await
            .unwrap();
        assert!(
            matches!(r, Err(Error::Closed)),
            "a receive pending at shutdown ends with Closed: {r:?}"
        );
    }

    // ---- backpressure (queue.memory.capacity, queue.push_timeout) -----------------------------

    pub async fn full_queue_push_times_out(factory: &BusFactory) {
        let mut config = fast_config();
        config.queue.memory.capacity = 10;
        config.queue.push_timeout = Duration::from_millis(300);
        let bus = bus_with(factory, config).await;
        let q = unique_queue("full");
        for i in 0..10 {
            bounded("push into room", LIMIT, bus.push(&q, indexed(i)))
                .await
                .expect("push within capacity");
        }
        let start = Instant::now();
        let r = bounded("push into a full queue", LIMIT, bus.push(&q, indexed(10))).await;
        assert!(
            matches!(r, Err(Error::Timeout)),
            "push into a full queue: {r:?}"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "gave up before push_timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            bus.stats(&q).await.unwrap().ready,
            10,
            "a timed-out push must not be stored"
        );

        // Room again: pushes succeed.
        assert_eq!(bus.purge(&q).await.unwrap(), 10);
        let id = bus.push(&q, "room again").await.expect("push after purge");
        assert_eq!(bus.receive(&q, LIMIT).await.expect("receive").id(), &id);
        shutdown(bus).await;
    }

    pub async fn full_queue_push_waits_for_room(factory: &BusFactory) {
        const N: u32 = 100;
        let mut config = fast_config();
        config.queue.memory.capacity = 10;
        config.queue.push_timeout = Duration::from_secs(20);
        let bus = bus_with(factory, config).await;
        let q = unique_queue("backpressure");
        let seen: Collector<u32> = Collector::new();
        let s = seen.clone();
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                let s = s.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    s.push(index_of(&d));
                    Ok(())
                }
            })
            .await
            .expect("add_listener");
        let max_held = Arc::new(AtomicUsize::new(0));
        for i in 0..N {
            bounded("push waiting for room", LIMIT, bus.push(&q, indexed(i)))
                .await
                .unwrap_or_else(|e| panic!("push {i} failed: {e}"));
            let s = bus.stats(&q).await.unwrap();
            max_held.fetch_max(
                (s.ready + s.in_flight + s.delayed) as usize,
                Ordering::SeqCst,
            );
        }
        let got = seen.wait_for(N as usize, LIMIT).await;
        assert_eq!(
            got,
            (0..N).collect::<Vec<_>>(),
            "every message delivered once, in order"
        );
        let held = max_held.load(Ordering::SeqCst);
        assert!(
            held <= 10,
            "the queue held {held} messages with capacity 10"
        );
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn room_freed_by_a_waiting_receive_admits_a_waiting_push(factory: &BusFactory) {
        let mut config = fast_config();
        config.queue.memory.capacity = 1;
        config.queue.push_timeout = Duration::from_secs(3);
        let bus = bus_with(factory, config).await;
        let q = unique_queue("room-by-receive");
        // A receive waits on the empty queue.
        let waiting = {
            let (bus, q) = (bus.clone(), q.clone());
            tokio::spawn(async move { bus.receive(&q, LIMIT).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The one place is taken by a delayed message; the next push must wait.
        let opts = PushOptions::default().with_delay(Duration::from_millis(200));
        let first = bus
            .push_with(&q, "first", opts)
            .await
            .expect("push within capacity");
        let start = Instant::now();
        let second = {
            let (bus, q) = (bus.clone(), q.clone());
            tokio::spawn(async move { bus.push(&q, "second").await })
        };
        // At 200 ms the delayed message goes to the waiting receive, which frees
        // the place long before push_timeout (3 s).
        let d = bounded("the waiting receive", LIMIT, waiting)
            .await
            .unwrap()
            .expect("receive");
        assert_eq!(d.id(), &first);
        let r = bounded("the push waiting for room", LIMIT, second)
            .await
            .unwrap();
        assert!(
            r.is_ok(),
            "room was freed by a receive after {:?}, yet the waiting push failed after {:?}: {r:?}",
            Duration::from_millis(200),
            start.elapsed()
        );
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(d.as_str().unwrap(), "second");
        shutdown(bus).await;
    }

    pub async fn shutdown_fails_a_push_waiting_for_room(factory: &BusFactory) {
        let mut config = fast_config();
        config.queue.memory.capacity = 1;
        config.queue.push_timeout = Duration::from_secs(600);
        let bus = bus_with(factory, config).await;
        let q = unique_queue("parked-shutdown");
        bus.push(&q, "fills the queue").await.expect("push");
        let parked = {
            let (bus, q) = (bus.clone(), q.clone());
            tokio::spawn(async move { bus.push(&q, "waits for room").await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown(bus).await;
        let r = bounded("a push waiting across shutdown", LIMIT, parked)
            .await
            .unwrap();
        assert!(
            matches!(r, Err(Error::Closed)),
            "a push waiting at shutdown ends with Closed: {r:?}"
        );
    }

    pub async fn shutdown_gives_up_on_a_stuck_handler_after_shutdown_timeout(factory: &BusFactory) {
        let mut config = fast_config();
        config.queue.shutdown_timeout = Duration::from_millis(300);
        let bus = bus_with(factory, config).await;
        let q = unique_queue("stuck");
        let started: Collector<()> = Collector::new();
        let s = started.clone();
        let _listener = bus
            .add_listener(&q, move |_d: Delivery| {
                s.push(());
                std::future::pending::<actorbus::HandlerResult>()
            })
            .await
            .expect("add_listener");
        bus.push(&q, "never finishes").await.expect("push");
        started.wait_for(1, LIMIT).await;
        let start = Instant::now();
        bounded("shutdown with a stuck handler", LIMIT, bus.shutdown())
            .await
            .expect("shutdown returns Ok after its timeout");
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "shutdown did not wait for the handler in flight ({:?})",
            start.elapsed()
        );
        assert!(matches!(bus.push(&q, "x").await, Err(Error::Closed)));
    }

    pub async fn concurrent_receives_each_get_a_different_message(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("receivers");
        let mut waiting = Vec::new();
        for _ in 0..5 {
            let (bus, q) = (bus.clone(), q.clone());
            waiting.push(tokio::spawn(async move {
                bus.receive(&q, Duration::from_millis(1500)).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 0..3 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let mut got = Vec::new();
        let mut timeouts = 0;
        for w in waiting {
            match bounded("receive", LIMIT, w).await.unwrap() {
                Ok(d) => got.push(index_of(&d)),
                Err(Error::Timeout) => timeouts += 1,
                Err(e) => panic!("unexpected receive error: {e}"),
            }
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2], "each message to exactly one receive");
        assert_eq!(timeouts, 2);
        let s = bus.stats(&q).await.unwrap();
        assert_eq!((s.ready, s.in_flight), (0, 0));
        shutdown(bus).await;
    }

    pub async fn retries_wait_for_the_doubling_backoff(factory: &BusFactory) {
        let mut config = fast_config();
        config.queue.retry.backoff = Duration::from_millis(100);
        config.queue.retry.max_backoff = Duration::from_secs(10);
        config.queue.retry.max_attempts = 3;
        let bus = bus_with(factory, config).await;
        let q = unique_queue("backoff");
        let times: Collector<(u32, Instant)> = Collector::new();
        let t = times.clone();
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                t.push((d.attempt(), Instant::now()));
                async { Err("again".into()) }
            })
            .await
            .expect("add_listener");
        bus.push(&q, "slowly").await.expect("push");
        let got = times.wait_for(3, LIMIT).await;
        let attempts: Vec<u32> = got.iter().map(|(a, _)| *a).collect();
        assert_eq!(attempts, [1, 2, 3]);
        let first_gap = got[1].1 - got[0].1;
        let second_gap = got[2].1 - got[1].1;
        assert!(
            first_gap >= Duration::from_millis(100),
            "retried after {first_gap:?}, before the 100 ms backoff"
        );
        assert!(
            second_gap >= Duration::from_millis(200),
            "second retry after {second_gap:?}, before the doubled 200 ms backoff"
        );
        stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
        listener.remove().await.expect("remove");
        shutdown(bus).await;
    }

    pub async fn bus_remove_finishes_delivery_in_hand(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("bus-remove-in-hand");
        for i in 0..4 {
            bus.push(&q, indexed(i)).await.expect("push");
        }
        let started: Collector<u32> = Collector::new();
        let finished: Collector<u32> = Collector::new();
        let (s, f) = (started.clone(), finished.clone());
        let _listener = bus
            .add_listener(&q, move |d: Delivery| {
                let (s, f) = (s.clone(), f.clone());
                async move {
                    s.push(index_of(&d));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    f.push(index_of(&d));
                    Ok(())
                }
            })
            .await
            .expect("add_listener");
        started.wait_for(1, LIMIT).await;
        bounded("bus.remove while a handler runs", LIMIT, bus.remove(&q))
            .await
            .expect("remove");
        assert_eq!(
            finished.snapshot(),
            [0],
            "bus.remove returns after the delivery in hand finished"
        );
        let s = bus.stats(&q).await.unwrap();
        assert_eq!((s.ready, s.in_flight, s.listeners), (3, 0, 0), "{s:?}");
        settle_time().await;
        assert_eq!(started.len(), 1);
        shutdown(bus).await;
    }

    pub async fn dead_letter_queue_of_a_200_byte_queue_is_reachable(factory: &BusFactory) {
        let mut config = poison_config();
        config.queue.retry.max_attempts = 1;
        let bus = bus_with(factory, config).await;
        // The longest valid name: 200 bytes.
        let prefix = unique_queue("long");
        let q = format!("{prefix}{}", "x".repeat(200 - prefix.len()));
        assert_eq!(q.len(), 200);
        let dead = format!("{q}.dead");
        let listener = bus
            .add_listener(&q, |_d: Delivery| async { Err("fails".into()) })
            .await
            .expect("a 200-byte queue name is valid");
        let id = bus.push(&q, "to the dead letters").await.expect("push");
        stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
        listener.remove().await.expect("remove");
        // §3.3: `<queue>.dead` is an ordinary queue: it can be received from,
        // counted and purged -- also when `<queue>` has the longest valid name.
        let d = bus.receive(&dead, LIMIT).await.unwrap_or_else(|e| {
            panic!("cannot receive from the dead-letter queue of a 200-byte queue: {e}")
        });
        assert_eq!(d.id(), &id);
        assert_eq!(bus.stats(&dead).await.expect("stats of <q>.dead").ready, 0);
        assert_eq!(bus.purge(&dead).await.expect("purge of <q>.dead"), 0);
        shutdown(bus).await;
    }

    pub async fn abandoned_receive_does_not_swallow_a_message(factory: &BusFactory) {
        let bus = bus_with(factory, fast_config()).await;
        let q = unique_queue("abandoned-receive");
        // The caller gives up long before the receive's own timeout.
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            bus.receive(&q, Duration::from_secs(600)),
        )
        .await;
        assert!(
            gave_up.is_err(),
            "nothing was pushed, yet receive returned {gave_up:?}"
        );
        let id = bus.push(&q, "for whoever asks next").await.expect("push");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            bus.stats(&q).await.unwrap().ready,
            1,
            "an abandoned receive took the message"
        );
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &id);
        shutdown(bus).await;
    }
}
