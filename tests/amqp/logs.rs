//! No lapin `ERROR` lines for what the bus handles itself: counting,
//! purging, peeking at or redriving a queue nobody used (an empty queue, not
//! an error; a passive declare there used to close a channel with one).
//!
//! A refused login cannot be among them: lapin logs its own `ERROR` lines
//! for it (`Connection closed`, `Connection error`, `Exponential backoff
//! attempts exhausted`) on its I/O thread, unconditionally, as it fails the
//! connection whose error the bus reports; no setting of lapin turns them
//! off (filter the `lapin` target to silence them).
//!
//! lapin logs from its own thread, so the child process of this test binary
//! logs everything to its stderr, which the parent reads.

use crate::support::{amqp, config::run_test_in_child, unique_queue};
use actorbus::Bus;

#[test]
#[ignore = "run by handled_conditions_log_no_lapin_errors, which reads its stderr"]
fn child_logs_handled_conditions() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bus = Bus::connect(amqp::config()).await.expect("connect");
        let q = unique_queue("never-used");
        let stats = bus.stats(&q).await.expect("stats");
        assert_eq!((stats.ready, stats.dead), (0, 0));
        assert_eq!(bus.purge(&q).await.expect("purge"), 0);
        assert!(bus.peek(&q, 5).await.expect("peek").is_empty());
        assert_eq!(bus.redrive(&q, 5).await.expect("redrive"), 0);
        tracing::warn!("marker: never-used queue done");
        bus.shutdown().await.expect("shutdown");
        amqp::delete_queues(amqp::URL, &[&q]).await;
    });
}

#[test]
fn handled_conditions_log_no_lapin_errors() {
    let output = run_test_in_child("amqp::logs::child_logs_handled_conditions", &[]);
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("marker: never-used queue done"),
        "the child did not get through:\n{logs}"
    );
    let errors: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("ERROR") && line.contains("lapin"))
        .collect();
    assert!(errors.is_empty(), "lapin logged errors: {errors:#?}");
}
