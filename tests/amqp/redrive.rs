//! A redrive killed halfway loses nothing: a child process redrives 2,000
//! dead letters 50 at a time and is SIGKILLed part-way. Every message is
//! then in the queue or in its dead letters; a duplicate needs a kill
//! between a copy's confirm and its dead letter's acknowledgement, so there
//! are at most one step's worth.

use crate::support::amqp;
use crate::support::redrive_crash::{child, kill_a_redrive_halfway, N};

/// Dead letters per redrive call of the child.
const STEP: usize = 50;

#[test]
#[ignore = "the child process of a_redrive_killed_halfway_loses_nothing"]
fn redrive_child() {
    child(amqp::config());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_killed_halfway_loses_nothing() {
    crate::support::init_tracing();
    let outcome =
        kill_a_redrive_halfway(amqp::config(), "amqp::redrive::redrive_child", STEP).await;
    eprintln!(
        "amqp redrive killed after {} of {N}: {} ended in the queue, lost {}, duplicates {}",
        outcome.moved_at_kill,
        outcome.in_queue,
        outcome.lost.len(),
        outcome.duplicates
    );
    let queues: Vec<&str> = outcome.queues.iter().map(String::as_str).collect();
    amqp::delete_queues(amqp::URL, &queues).await;
    assert!(outcome.lost.is_empty(), "{outcome:?}");
    assert!(
        outcome.duplicates as usize <= STEP,
        "more than one step duplicated: {outcome:?}"
    );
}
