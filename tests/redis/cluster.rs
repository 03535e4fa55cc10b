//! Redis Cluster (`redis.cluster`) and `redis.wait_replicas`, on private
//! clusters of 3 masters and 3 replicas (never the shared Redis): a
//! failover under load, 30 queues and 10 topics spread over the masters,
//! and `WAIT`'s typed error. The conformance subset on a cluster is in
//! `tests/conformance.rs` (`redis_cluster`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actorbus::{Bus, Delivery, Error, ListenerOptions, Reject};

use crate::support::redis::{cli_on, config_on, SHARED_URL};
use crate::support::redis_cluster::RedisCluster;
use crate::support::{bounded, eventually, index_of, indexed, init_tracing, unique_queue, LIMIT};

const N: u32 = 10_000;
const PUSHERS: u32 = 16;
/// Long enough to ride out a failover (node timeout 2 s, election, and the
/// old master back as a replica) on a busy machine.
const PUSH_TIMEOUT: Duration = Duration::from_secs(20);

/// What a failover run saw (printed whole, through `Debug`).
#[derive(Debug)]
#[allow(dead_code)]
struct Failover {
    /// Pushes confirmed when the master was killed (the rest came after).
    confirmed_at_kill: usize,
    confirmed: usize,
    timed_out: usize,
    lost: usize,
    duplicates_or_redeliveries: usize,
}

/// Pushes `N` indexed messages from `PUSHERS` tasks while a listener takes
/// them; SIGKILLs the master owning the queue's slot a third of the way
/// in, waits for its replica to take over, restarts the old node (it
/// rejoins as a replica); then counts the confirmed pushes never handled.
async fn failover_run(wait_replicas: u32) -> Failover {
    // Not beside the fault cases' private brokers (a starved failover).
    let _serial = crate::support::faults::serial().await;
    let mut cluster = RedisCluster::start();
    let mut config = cluster.config();
    config.redis.wait_replicas = wait_replicas;
    config.redis.claim_idle = Duration::from_secs(5);
    config.queue.push_timeout = PUSH_TIMEOUT;
    let bus = Bus::connect(config).await.expect("connect to the cluster");
    let q = unique_queue("failover");

    let handled: Arc<Mutex<Vec<u32>>> = Arc::default();
    let seen = handled.clone();
    let opts = ListenerOptions::default().with_concurrency(16);
    let listener = bus
        .add_listener_with(&q, opts, move |d: Delivery| {
            seen.lock().unwrap().push(index_of(&d));
            async { Ok(()) }
        })
        .await
        .expect("add_listener");

    let confirmed: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let mut pushers = Vec::new();
    for p in 0..PUSHERS {
        let (bus, q, confirmed) = (bus.clone(), q.clone(), confirmed.clone());
        pushers.push(tokio::spawn(async move {
            let mut timed_out = 0;
            for i in (p..N).step_by(PUSHERS as usize) {
                let pushed = bounded(
                    "a push during the failover",
                    PUSH_TIMEOUT + LIMIT,
                    bus.push(&q, indexed(i)),
                )
                .await;
                match pushed {
                    Ok(_) => {
                        confirmed.lock().unwrap().insert(i);
                    }
                    Err(Error::Timeout) => timed_out += 1,
                    Err(e) => panic!("push failed with {e:?}, not Timeout"),
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            timed_out
        }));
    }

    eventually("a third handled", LIMIT, || async {
        handled.lock().unwrap().len() >= (N / 3) as usize
    })
    .await;
    let master = cluster.master_of(&format!("{{{q}}}"));
    let confirmed_at_kill = confirmed.lock().unwrap().len();
    // Each push batch's WAIT went to the master of the queue's slot (where
    // its writes went), and to no other.
    for port in cluster.masters() {
        let waits = cli_on(port, &["INFO", "commandstats"]).contains("cmdstat_wait:");
        assert_eq!(
            waits,
            wait_replicas > 0 && port == master,
            "WAIT seen on {port}"
        );
    }
    cluster.kill(master);
    let killed = Instant::now();
    tokio::task::block_in_place(|| cluster.wait_promoted(master));
    let promoted = killed.elapsed();
    cluster.restart(master);
    tokio::task::block_in_place(|| cluster.wait_healthy());
    let healed = killed.elapsed();

    let mut timed_out = 0;
    for pusher in pushers {
        timed_out += pusher.await.expect("pusher");
    }
    let confirmed = confirmed.lock().unwrap().clone();
    // Entries a reader was handed just before the kill come back through
    // the pending list (re-read on reconnect, or claimed after claim_idle).
    let all_in = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let got: HashSet<u32> = handled.lock().unwrap().iter().copied().collect();
            if confirmed.iter().all(|i| got.contains(i)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok();
    let handled = handled.lock().unwrap().clone();
    let got: HashSet<u32> = handled.iter().copied().collect();
    let lost = confirmed.iter().filter(|i| !got.contains(i)).count();
    let run = Failover {
        confirmed_at_kill,
        confirmed: confirmed.len(),
        timed_out,
        lost,
        duplicates_or_redeliveries: handled.len() - got.len(),
    };
    eprintln!(
        "failover with wait_replicas = {wait_replicas}: {run:?}; all confirmed handled: {all_in}; \
         replica promoted {promoted:?} after the kill, old master back as a replica at {healed:?}"
    );
    assert_eq!(run.confirmed + run.timed_out, N as usize);
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_replicas_1_loses_no_confirmed_push_when_the_master_dies() {
    init_tracing();
    let run = failover_run(1).await;
    assert_eq!(run.lost, 0, "{run:?}");
    assert!(run.confirmed > 0, "{run:?}");
}

/// Without `WAIT` a failover may lose the last writes a master confirmed
/// before its replica had them: this run reports how many, it asserts
/// nothing about them (replication is asynchronous).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_replicas_0_failover_loss_is_reported() {
    init_tracing();
    let run = failover_run(0).await;
    eprintln!(
        "wait_replicas = 0: {} of {} confirmed pushes lost in the failover",
        run.lost, run.confirmed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_queues_and_ten_topics_get_their_messages_and_spread_over_the_masters() {
    init_tracing();
    const QUEUES: usize = 30;
    const EACH: u32 = 50;
    let cluster = RedisCluster::start();
    let bus = Bus::connect(cluster.config()).await.expect("connect");
    let queues: Vec<String> = (0..QUEUES)
        .map(|i| unique_queue(&format!("spread{i}")))
        .collect();
    let got: Arc<Mutex<Vec<(usize, u32)>>> = Arc::default();
    let mut listeners = Vec::new();
    for (n, q) in queues.iter().enumerate() {
        let got = got.clone();
        let listener = bus
            .add_listener(q, move |d: Delivery| {
                got.lock().unwrap().push((n, index_of(&d)));
                async { Ok(()) }
            })
            .await
            .expect("add_listener");
        listeners.push(listener);
    }
    for q in &queues {
        for i in 0..EACH {
            bus.push(q, indexed(i)).await.expect("push");
        }
    }
    eventually("every queue got its messages", LIMIT * 2, || async {
        got.lock().unwrap().len() >= QUEUES * EACH as usize
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = got.lock().unwrap().clone();
    for n in 0..QUEUES {
        let mine: HashSet<u32> = got
            .iter()
            .filter(|(q, _)| *q == n)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(mine.len(), EACH as usize, "queue {n} got {mine:?}");
    }
    assert_eq!(got.len(), QUEUES * EACH as usize, "each message once");

    // Each queue's stream is the hash-tagged key on the master owning its
    // slot (asked without -c: another node would answer MOVED), and the
    // queues cover every master.
    let mut owners = HashSet::new();
    for q in &queues {
        let key = format!("{{{q}}}");
        let master = cluster.master_of(&key);
        assert_eq!(
            cli_on(master, &["TYPE", &key]).trim(),
            "stream",
            "{key} on {master}"
        );
        owners.insert(master);
    }
    assert_eq!(
        owners.len(),
        3,
        "30 queues land on all three masters: {owners:?}"
    );

    // Topics: every key of a topic is in the topic's slot (its shared
    // stream and its group's own stream on the master owning `{<t>}`),
    // and topics spread over the masters as queues do.
    const TOPICS: usize = 10;
    let topics: Vec<String> = (0..TOPICS)
        .map(|i| unique_queue(&format!("spread-topic{i}")))
        .collect();
    let heard: Arc<Mutex<Vec<usize>>> = Arc::default();
    for (n, topic) in topics.iter().enumerate() {
        let heard = heard.clone();
        let listener = bus
            .add_subscriber(topic, "g", move |_d: Delivery| {
                heard.lock().unwrap().push(n);
                async { Ok(()) }
            })
            .await
            .expect("add_subscriber on a cluster");
        listeners.push(listener);
        bus.publish(topic, indexed(0)).await.expect("publish");
    }
    eventually("every topic's group got its message", LIMIT * 2, || async {
        heard.lock().unwrap().len() >= TOPICS
    })
    .await;
    let mut heard = heard.lock().unwrap().clone();
    heard.sort_unstable();
    assert_eq!(heard, (0..TOPICS).collect::<Vec<_>>(), "each topic once");
    let mut topic_owners = HashSet::new();
    for topic in &topics {
        let shared = format!("{{{topic}}}");
        let master = cluster.master_of(&shared);
        for key in [shared.clone(), format!("{shared}.g")] {
            assert_eq!(
                cli_on(master, &["TYPE", &key]).trim(),
                "stream",
                "{key} on {master}"
            );
        }
        topic_owners.insert(master);
    }
    assert!(
        topic_owners.len() >= 2,
        "{TOPICS} topics land on more than one master: {topic_owners:?}"
    );

    group_dead_letters_stay_in_the_topic_slot(&cluster, &bus).await;
    every_connection_to_a_master_has_keepalive(&cluster);

    // A group's queue this bus used as an ordinary queue (its keys in
    // another slot) cannot become the group: a typed error, and the bus
    // goes on.
    let early = unique_queue("spread-early");
    bus.push(&format!("{early}.g"), "x").await.expect("push");
    let joined = bus
        .add_subscriber(&early, "g", |_d: Delivery| async { Ok(()) })
        .await
        .map(drop);
    match joined {
        Err(e @ Error::Backend { .. }) => assert!(e.to_string().contains("Redis Cluster"), "{e}"),
        other => panic!("joining a group used as a queue: {other:?}"),
    }
    bus.purge(&format!("{early}.g")).await.expect("purge");
    bus.push(&queues[0], indexed(EACH))
        .await
        .expect("push after the topics");
    for listener in listeners {
        listener.remove().await.expect("remove");
    }
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_waits_for_its_masters_replica_and_times_out_without_it() {
    init_tracing();
    let cluster = RedisCluster::start();
    let mut config = cluster.config();
    config.redis.wait_replicas = 1;
    config.queue.push_timeout = Duration::from_secs(2);
    let bus = Bus::connect(config).await.expect("connect");
    let q = unique_queue("frozen");
    bus.push(&q, indexed(0))
        .await
        .expect("confirmed by the replica");
    let master = cluster.master_of(&format!("{{{q}}}"));
    let replica = cluster.replica_of(master);
    cluster.freeze(replica, true);
    let pushed = bounded(
        "a push with the replica frozen",
        LIMIT,
        bus.push(&q, indexed(1)),
    )
    .await;
    cluster.freeze(replica, false);
    assert!(matches!(pushed, Err(Error::Timeout)), "{pushed:?}");
    // Thawed, the replica catches up and confirms again.
    bus.push(&q, indexed(2))
        .await
        .expect("confirmed once thawed");
    let seen = bus.stats(&q).await.expect("stats");
    // The timed-out push was stored all the same (it is not "lost", only
    // unconfirmed): at-least-once.
    assert_eq!(seen.ready, 3, "{seen:?}");
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_replicas_in_time_is_a_timeout() {
    init_tracing();
    // The shared Redis has no replica: `WAIT 1` never sees one.
    let mut config = config_on(SHARED_URL);
    config.redis.wait_replicas = 1;
    config.queue.push_timeout = Duration::from_millis(400);
    let bus = Bus::connect(config).await.expect("connect");
    let q = unique_queue("wait");
    let start = Instant::now();
    let pushed = bounded("a push waiting for a replica", LIMIT, bus.push(&q, "x")).await;
    assert!(matches!(pushed, Err(Error::Timeout)), "{pushed:?}");
    assert!(start.elapsed() >= Duration::from_millis(300), "WAIT waited");
    // The bus goes on: a delayed push waits for replicas as well.
    let delayed = actorbus::PushOptions::default().with_delay(Duration::from_secs(60));
    let pushed = bus.push_with(&q, "y", delayed).await;
    assert!(matches!(pushed, Err(Error::Timeout)), "{pushed:?}");
    bus.shutdown().await.expect("shutdown");
    crate::support::redis::cleanup(&q);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_not_one_or_not_there_is_a_backend_error() {
    init_tracing();
    // With a password, which no error may show.
    let port = crate::support::redis::free_port();
    let nowhere = format!("redis://app:s3cret-pw@127.0.0.1:{port}");
    // The shared Redis runs without cluster support; nothing listens on the other.
    for nodes in [vec![SHARED_URL.to_owned()], vec![nowhere]] {
        let mut config = config_on(SHARED_URL);
        config.redis.cluster = nodes.clone();
        let connected = bounded("connect to a bad cluster", LIMIT, Bus::connect(config)).await;
        match connected {
            Err(e @ Error::Backend { .. }) => {
                let text = format!("{e} {e:?}");
                assert!(text.contains("cannot connect"), "{nodes:?}: {text}");
                assert!(!text.contains("s3cret-pw"), "a password shows: {text}");
            }
            other => panic!("{nodes:?}: {:?}", other.map(|_| "a bus")),
        }
    }
}

/// A group's dead letters are in its topic's slot (`{<t>}.<g>.dead`), a
/// second bus finds them by their queue name (`<t>.<g>.dead`), and a
/// redrive through it brings them back to the group.
async fn group_dead_letters_stay_in_the_topic_slot(cluster: &RedisCluster, bus: &Bus) {
    let topic = unique_queue("spread-dead");
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let strict = bus
        .add_subscriber(&topic, "strict", move |_d: Delivery| {
            // The first delivery is rejected (dead-lettered at once), the
            // redriven one accepted.
            let first = c.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    Err(Reject::new("not now").into())
                } else {
                    Ok(())
                }
            }
        })
        .await
        .expect("add_subscriber");
    bus.publish(&topic, "x").await.expect("publish");
    let other = Bus::connect(cluster.config()).await.expect("connect");
    let dead_queue = format!("{topic}.strict.dead");
    eventually("the dead letter is counted by name", LIMIT, || async {
        other.stats(&dead_queue).await.expect("stats").ready == 1
    })
    .await;
    let key = format!("{{{topic}}}.strict.dead");
    let master = cluster.master_of(&format!("{{{topic}}}"));
    assert_eq!(
        cli_on(master, &["XLEN", &key]).trim(),
        "1",
        "{key} on {master}"
    );
    let group_queue = format!("{topic}.strict");
    let moved = other.redrive(&group_queue, 10).await.expect("redrive");
    assert_eq!(moved, 1, "the dead letter went back to the group");
    eventually("the redriven message is handled", LIMIT, || async {
        calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(cli_on(master, &["XLEN", &key]).trim(), "0", "{key} emptied");
    strict.remove().await.expect("remove");
    other.shutdown().await.expect("shutdown");
}

/// This process's TCP connections to the cluster's masters, as `ss` shows
/// them, all run a keepalive timer: cluster connections get the driver's
/// silence detection (keepalive probes and a TCP user timeout) as single
/// Redis ones do.
fn every_connection_to_a_master_has_keepalive(cluster: &RedisCluster) {
    let out = std::process::Command::new("ss")
        .args(["-tnpoH", "state", "established"])
        .output()
        .expect("ss runs");
    let out = String::from_utf8_lossy(&out.stdout);
    let me = format!("pid={},", std::process::id());
    let targets: Vec<String> = cluster
        .masters()
        .iter()
        .map(|port| format!("127.0.0.1:{port} "))
        .collect();
    let ours: Vec<&str> = out
        .lines()
        .filter(|line| line.contains(&me) && targets.iter().any(|t| line.contains(t.as_str())))
        .collect();
    assert!(!ours.is_empty(), "no connection to a master in:\n{out}");
    for line in &ours {
        assert!(line.contains("keepalive"), "no keepalive timer: {line}");
    }
}
