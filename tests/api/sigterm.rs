//! examples/actix_web.rs on the memory driver: SIGTERM while a job is in
//! hand; the process exits 0 after `bus.shutdown()` returned `Ok`, with the
//! job in hand finished. What was still queued ends with the process (the
//! memory driver keeps nothing elsewhere, README "Shutdown").

use crate::support::{unique_queue, web_service};

#[test]
fn sigterm_finishes_the_job_in_hand_and_shuts_down_ok() {
    let queue = unique_queue("sigterm");
    let vars = [
        ("ACTORBUS_QUEUE__DRIVER", "memory".to_owned()),
        ("ACTORBUS_QUEUE__DEFAULT", queue.clone()),
    ];
    let first = web_service::post_then_sigterm(&vars, &queue);
    eprintln!(
        "sigterm (memory): handled {} of {} (in hand: {}); the rest ended with the process",
        first.handled.len(),
        web_service::JOBS,
        first.in_hand
    );
}
