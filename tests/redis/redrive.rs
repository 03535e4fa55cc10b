//! A redrive killed halfway loses nothing and duplicates nothing: a child
//! process redrives 2,000 dead letters 5 at a time and is SIGKILLed
//! part-way. Each message moves in one script (copy added, dead entry
//! deleted), so every message is in exactly one of the two streams.

use crate::support::redis::{cleanup, config_on, SHARED_URL};
use crate::support::redrive_crash::{child, kill_a_redrive_halfway, N};

/// Dead letters per redrive call of the child: small, so that the kill
/// lands part-way.
const STEP: usize = 5;

#[test]
#[ignore = "the child process of a_redrive_killed_halfway_loses_and_duplicates_nothing"]
fn redrive_child() {
    child(config_on(SHARED_URL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_killed_halfway_loses_and_duplicates_nothing() {
    crate::support::init_tracing();
    let config = config_on(SHARED_URL);
    let outcome = kill_a_redrive_halfway(config, "redis::redrive::redrive_child", STEP).await;
    eprintln!(
        "redis redrive killed after {} of {N}: {} ended in the queue, lost {}, duplicates {}",
        outcome.moved_at_kill,
        outcome.in_queue,
        outcome.lost.len(),
        outcome.duplicates
    );
    for queue in &outcome.queues {
        cleanup(queue);
    }
    assert!(outcome.lost.is_empty(), "{outcome:?}");
    assert_eq!(outcome.duplicates, 0, "{outcome:?}");
}
