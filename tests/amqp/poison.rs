//! A poison message that kills its process every time (the fault
//! probe): a child consumes 1 poison + 2,500 others and aborts on the
//! poison; restarted each time, it dead-letters the poison after at most
//! `max_attempts` deliveries, counted by lease copies, and every other
//! message gets through. See `support::poison`.

use std::time::Duration;

use crate::support::poison::{self, check};
use crate::support::{amqp, init_tracing, unique_queue};
use actorbus::Bus;

/// `amqp.redelivery_lease` of the child: how long a crashed delivery's
/// lease copy waits before it comes back (short, to keep the test short).
const LEASE: Duration = Duration::from_secs(2);

/// The child: consumes the queue its parent names, aborting on the poison.
#[test]
#[ignore = "the child process of a_poison_that_kills_its_process_is_dead_lettered"]
fn poison_child() {
    let mut config = amqp::config();
    config.amqp.redelivery_lease = LEASE;
    poison::child(config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_that_kills_its_process_is_dead_lettered() {
    init_tracing();
    let q = unique_queue("poison");
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let figures = poison::run(&bus, &q, "amqp::poison::poison_child", &[]).await;
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
    check("amqp", &figures);
}
