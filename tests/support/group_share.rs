//! Two processes in one subscriber group share its work: the child member
//! (a test of the broker's binary that the parent runs by name) and the
//! parent's side, the same on every broker driver.
//!
//! Both members handle each message slowly (1 ms), so that neither can
//! drain the group alone before the other takes its share. Each logs what
//! it handled; together they must have handled every message exactly once
//! (nothing fails or crashes here, so a duplicate would mean the group is
//! not one group), and each must have done a real part of the work.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actorbus::{Bus, Config, Delivery};

use crate::support::child::{log_appender, logged, spawn_test};
use crate::support::ledger::{tally, until_all_handled, Tally};
use crate::support::{eventually, index_of, indexed, unique_queue};

const TOPIC_VAR: &str = "ACTORBUS_GROUP_TOPIC";
const LOG_VAR: &str = "ACTORBUS_GROUP_LOG";
/// The group both processes join.
pub const GROUP: &str = "workers";
/// Messages published.
const N: u32 = 2_000;
/// What each member handles at least: a twentieth, far below an even split.
const FAIR_SHARE: usize = N as usize / 20;
/// How long one member takes per message.
const HANDLING: Duration = Duration::from_millis(1);

/// The child member: joins the group of the topic named in its environment
/// and appends each handled index to its log; writes `<log>.ready` once it
/// has joined. Returns at once when run without that environment.
pub async fn child_member(config: Config) {
    let (Ok(topic), Ok(log)) = (std::env::var(TOPIC_VAR), std::env::var(LOG_VAR)) else {
        return;
    };
    let bus = Bus::connect(config).await.expect("child connects");
    let append = log_appender(&log);
    bus.add_subscriber(&topic, GROUP, move |d: Delivery| {
        append(index_of(&d));
        async {
            tokio::time::sleep(HANDLING).await;
            Ok(())
        }
    })
    .await
    .expect("child joins the group");
    std::fs::write(format!("{log}.ready"), b"").expect("ready marker");
    std::future::pending::<()>().await;
}

/// The parent: joins the group, starts the child member (`child_test`, the
/// full name of the test running [`child_member`]), publishes [`N`]
/// messages and checks how the two shared them. Returns the topic for the
/// caller to clean up (its group queue is `<topic>.workers`).
pub async fn two_members_share_the_work(config: Config, child_test: &str) -> String {
    let topic = unique_queue("share");
    let dir = std::env::temp_dir().join(format!("actorbus-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join(&topic);
    let ready = PathBuf::from(format!("{}.ready", log.display()));

    let bus = Bus::connect(config).await.expect("connect");
    let mine = Arc::new(Mutex::new(Vec::new()));
    let sink = mine.clone();
    bus.add_subscriber(&topic, GROUP, move |d: Delivery| {
        sink.lock().unwrap().push(index_of(&d));
        async {
            tokio::time::sleep(HANDLING).await;
            Ok(())
        }
    })
    .await
    .expect("parent joins the group");
    let mut child = spawn_test(
        child_test,
        &[(TOPIC_VAR, topic.as_ref()), (LOG_VAR, log.as_os_str())],
    );
    eventually(
        "the child joined the group",
        Duration::from_secs(60),
        || std::future::ready(ready.exists()),
    )
    .await;

    for i in 0..N {
        bus.publish(&topic, indexed(i)).await.expect("publish");
    }
    let done = until_all_handled(N, Duration::from_secs(120), || {
        let mut all = mine.lock().unwrap().clone();
        all.extend(logged(&log));
        all
    })
    .await;
    // Lets late duplicates, if any, show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().expect("stop the child");
    child.wait().unwrap();

    let (by_parent, by_child) = (mine.lock().unwrap().clone(), logged(&log));
    let Tally { lost, duplicates } = tally(N, by_parent.iter().chain(&by_child).copied());
    let lost = lost.len();
    eprintln!(
        "one group, two processes: parent handled {}, child {}, lost {lost}, duplicates {duplicates}",
        by_parent.len(),
        by_child.len()
    );
    assert!(done && lost == 0, "lost {lost} of {N}");
    assert_eq!(duplicates, 0, "the members did not share one group");
    assert!(
        by_parent.len() >= FAIR_SHARE && by_child.len() >= FAIR_SHARE,
        "one member did almost nothing: parent {}, child {}",
        by_parent.len(),
        by_child.len()
    );
    bus.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&dir);
    topic
}
