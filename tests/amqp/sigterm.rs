//! examples/actix_web.rs on amqp: SIGTERM while a job is in hand; the
//! process exits 0 after `bus.shutdown()` returned `Ok`, the finished jobs
//! were acknowledged, and a fresh process gets exactly the others.

use crate::support::{amqp, unique_queue, web_service};

#[test]
fn sigterm_acknowledges_finished_jobs_and_hands_back_the_rest() {
    let queue = unique_queue("sigterm");
    let vars = [
        ("ACTORBUS_QUEUE__DRIVER", "amqp".to_owned()),
        ("ACTORBUS_AMQP__URL", amqp::URL.to_owned()),
        ("ACTORBUS_QUEUE__DEFAULT", queue.clone()),
    ];
    let first = web_service::post_then_sigterm(&vars, &queue);
    web_service::fresh_process_gets_the_rest(&vars, &first);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(amqp::delete_queues(amqp::URL, &[&queue]));
}
