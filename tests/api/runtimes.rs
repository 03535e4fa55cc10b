//! Where the bus runs: inside an actix system, on a plain
//! tokio runtime of either flavour, and from plain threads. The caller sees no
//! difference.

use std::time::Duration;

use crate::support::{bounded, fast_config, unique_queue, Collector, LIMIT};
use actix::{Actor, Context, Handler, Message};
use actorbus::{Bus, Config, Delivery, Error};

/// The same small round trip everywhere: a listener gets a push, `receive`
/// gets another, a delayed one arrives, and shutdown closes the bus.
async fn round_trip(bus: Bus) {
    let q = unique_queue("runtime");
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let id = bus.push(&q, "via listener").await.expect("push");
    let got = seen.wait_for(1, LIMIT).await;
    assert_eq!(got[0].id(), &id);
    assert_eq!(got[0].as_str().unwrap(), "via listener");
    listener.remove().await.expect("remove");

    let opts = actorbus::PushOptions::default().with_delay(Duration::from_millis(50));
    let delayed = bus.push_with(&q, "delayed", opts).await.expect("push_with");
    let id = bus.push(&q, "via receive").await.expect("push");
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &id);
    let d = bus.receive(&q, LIMIT).await.expect("receive delayed");
    assert_eq!(d.id(), &delayed);
    let r = bus.receive(&q, Duration::from_millis(20)).await;
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");

    bounded("shutdown", LIMIT, bus.shutdown())
        .await
        .expect("shutdown");
    assert!(matches!(bus.push(&q, "late").await, Err(Error::Closed)));
}

async fn connect() -> Bus {
    Bus::connect(fast_config()).await.expect("connect")
}

#[actix::test]
async fn inside_an_actix_system() {
    round_trip(connect().await).await;
}

#[actix::test]
async fn shutdown_inside_actix_leaves_the_callers_system_running() {
    #[derive(Message)]
    #[rtype(result = "u32")]
    struct Ping(u32);
    struct Echo;
    impl Actor for Echo {
        type Context = Context<Self>;
    }
    impl Handler<Ping> for Echo {
        type Result = u32;
        fn handle(&mut self, msg: Ping, _: &mut Context<Self>) -> u32 {
            msg.0 + 1
        }
    }

    let echo = Echo.start();
    round_trip(connect().await).await;
    // The bus stopped its own arbiters only: the test's system still runs actors.
    let answer = bounded(
        "an actor of the caller's system",
        LIMIT,
        echo.send(Ping(41)),
    )
    .await
    .expect("the caller's actor still answers after bus shutdown");
    assert_eq!(answer, 42);
    // And a second bus on the same system works.
    round_trip(connect().await).await;
}

#[actix::test]
async fn bus_memory_inside_an_actix_system() {
    round_trip(Bus::memory()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_tokio_runtime() {
    round_trip(connect().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_thread_tokio_runtime() {
    round_trip(connect().await).await;
}

#[tokio::test(flavor = "current_thread")]
async fn bus_memory_on_tokio() {
    round_trip(Bus::memory()).await;
}

#[test]
fn from_a_plain_thread_with_its_own_tokio_runtime() {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async { round_trip(connect().await).await });
    })
    .join()
    .expect("the thread's round trip");
}

#[test]
fn from_a_plain_thread_with_an_actix_system() {
    std::thread::spawn(|| {
        actix::System::new().block_on(async { round_trip(connect().await).await });
    })
    .join()
    .expect("the thread's round trip");
}

#[test]
fn built_without_any_runtime_then_used_from_several() {
    // `Bus::memory()` needs no runtime at all.
    let bus = Bus::memory();
    let q = unique_queue("cross-runtime");

    // Pushed from one runtime...
    let producer = {
        let (bus, q) = (bus.clone(), q.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                for i in 0..10u32 {
                    bus.push(&q, i.to_be_bytes().to_vec()).await.expect("push");
                }
            });
        })
    };
    producer.join().expect("producer thread");

    // ...received on another, including an actix system.
    let consumer = {
        let (bus, q) = (bus.clone(), q.clone());
        std::thread::spawn(move || {
            actix::System::new().block_on(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    let d = bus.receive(&q, LIMIT).await.expect("receive");
                    got.push(crate::support::index_of(&d));
                }
                got
            })
        })
    };
    assert_eq!(
        consumer.join().expect("consumer thread"),
        (0..10).collect::<Vec<_>>()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move { round_trip(bus).await });
}

#[test]
fn handlers_run_while_the_caller_blocks() {
    // The bus's actors have threads of their own: a handler runs even though
    // the caller's thread is blocked on a std channel, outside any runtime.
    let bus = Bus::memory();
    let q = unique_queue("blocking-caller");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx = std::sync::Mutex::new(tx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        bus.add_listener(&q, move |d: Delivery| {
            let _ = tx
                .lock()
                .unwrap()
                .send(d.as_str().unwrap_or_default().to_owned());
            async { Ok(()) }
        })
        .await
        .expect("add_listener");
        bus.push(&q, "handled elsewhere").await.expect("push");
    });
    let text = rx
        .recv_timeout(LIMIT)
        .expect("the handler ran while no runtime of the caller was polled");
    assert_eq!(text, "handled elsewhere");
    rt.block_on(async { bus.shutdown().await.unwrap() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_built_bus_works_like_bus_memory() {
    let mut config = Config::default();
    config.queue.retry.max_attempts = 1;
    round_trip(Bus::connect(config).await.expect("connect")).await;
}

#[actix::test]
async fn shutdown_inside_actix_releases_waiting_calls() {
    let mut config = fast_config();
    config.queue.memory.capacity = 1;
    config.queue.push_timeout = Duration::from_secs(600);
    let bus = Bus::connect(config).await.expect("connect");
    let q = unique_queue("actix-waiters");
    let empty = unique_queue("actix-empty");
    bus.push(&q, "fills the queue").await.unwrap();
    let parked = {
        let (bus, q) = (bus.clone(), q.clone());
        actix::spawn(async move { bus.push(&q, "waits for room").await })
    };
    let receive = {
        let (bus, empty) = (bus.clone(), empty.clone());
        actix::spawn(async move { bus.receive(&empty, Duration::from_secs(600)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bounded("shutdown", LIMIT, bus.shutdown()).await.unwrap();
    let r = bounded("a push waiting across shutdown", LIMIT, parked)
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    let r = bounded("a receive waiting across shutdown", LIMIT, receive)
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
}

/// A redis bus used from a tokio runtime built without timers (only I/O):
/// once the queue's channel runs, pushes take the direct path, one `XADD`
/// on the shared connection of the pusher's arbiter. Its reply deadline is
/// a timer, which on this runtime would panic; the pushes (and a batch,
/// sent as one pipeline the same way) must all be stored all the same,
/// and nothing may panic.
#[cfg(feature = "redis")]
#[test]
fn redis_pushes_from_a_tokio_runtime_without_timers() {
    use crate::support::redis::{cleanup, cli, config_on, SHARED_URL};
    const PUSHES: u32 = 50;
    const BATCH: u32 = 20;
    let q = unique_queue("no-timers");
    let (done, finished) = std::sync::mpsc::channel();
    {
        let q = q.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let bus = Bus::connect(config_on(SHARED_URL)).await.expect("connect");
                for i in 0..PUSHES {
                    bus.push(&q, i.to_be_bytes().to_vec()).await.expect("push");
                }
                let batch = (0..BATCH).map(|i| i.to_be_bytes().to_vec());
                let ids = bus.push_batch(&q, batch).await.expect("push_batch");
                assert_eq!(ids.len(), BATCH as usize);
                bus.shutdown().await.expect("shutdown");
            });
            let _ = done.send(());
        });
    }
    let outcome = finished.recv_timeout(LIMIT);
    let stored = cli(&["XLEN", &q]);
    cleanup(&q);
    outcome.expect("the pushes from a runtime without timers finished without a panic");
    assert_eq!(
        stored.trim(),
        (PUSHES + BATCH).to_string(),
        "every push is stored"
    );
}

/// The futures of the producing calls stay small, whichever drivers the
/// build has: a caller with many pushes in flight (64 pusher tasks, an
/// actix-web request each) holds one per push, and its runtime copies it
/// on every move. The drivers box their slow paths (a channel to start,
/// a reconnect, the pusher fallback) instead of carrying them inline: with
/// the broker drivers built in, a push's future was 3,144 bytes before,
/// 968 after.
#[actix::test]
async fn the_producing_calls_futures_stay_small() {
    const MOST: usize = 1536;
    let bus = connect().await;
    let q = unique_queue("future-size");
    let sizes = [
        ("push", std::mem::size_of_val(&bus.push(&q, "x"))),
        (
            "push_batch",
            std::mem::size_of_val(&bus.push_batch(&q, ["x"])),
        ),
        ("publish", std::mem::size_of_val(&bus.publish(&q, "x"))),
        (
            "request",
            std::mem::size_of_val(&bus.request(&q, "x", Duration::from_secs(1))),
        ),
    ];
    for (call, size) in sizes {
        assert!(
            size <= MOST,
            "Bus::{call}'s future is {size} bytes (at most {MOST})"
        );
    }
    bus.shutdown().await.expect("shutdown");
}
