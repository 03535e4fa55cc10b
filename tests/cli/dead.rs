//! `actorbus dead …`: the dead letters of a queue, and the confirmation
//! that `purge` and `redrive` ask for.

use crate::support::cli::{bus, cleanup, dead_letters, on, BROKERS};
use crate::support::unique_queue;

#[tokio::test]
async fn dead_purge_refuses_without_yes_when_it_cannot_ask() {
    for driver in BROKERS {
        let queue = unique_queue("cli-purge");
        dead_letters(driver, &queue, &["a", "b"]).await;

        // Standard input is not a terminal: no question, no change.
        let refused = on(driver, &["dead", "purge", &queue]).run();
        let line = refused.failed(2);
        assert!(line.contains("add --yes"), "{line}");
        assert!(line.contains("nothing was changed"), "{line}");
        let bus = bus(driver).await;
        assert_eq!(bus.stats(&queue).await.expect("stats").dead, 2, "{driver}");

        let purged = on(driver, &["dead", "purge", &queue, "--yes", "--json"])
            .run()
            .ok()
            .json();
        assert_eq!(purged["queue"], queue.as_str());
        assert_eq!(purged["purged"], 2, "{driver}: {purged}");
        assert_eq!(bus.stats(&queue).await.expect("stats").dead, 0, "{driver}");
        bus.shutdown().await.expect("shutdown");
        cleanup(driver, &[&queue]).await;
    }
}
