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

#[tokio::test]
async fn dead_redrive_moves_dead_letters_back() {
    for driver in BROKERS {
        let queue = unique_queue("cli-redrive");
        dead_letters(driver, &queue, &["a", "b", "c"]).await;

        let dead = on(driver, &["dead", "peek", &queue, "--json"])
            .run()
            .ok()
            .json();
        let dead = dead.as_array().expect("an array of dead letters");
        assert_eq!(dead.len(), 3, "{driver}: {dead:?}");
        assert_eq!(dead[0]["queue"], format!("{queue}.dead"));
        assert_eq!(dead[0]["headers"]["x-error"], "boom", "{driver}: {dead:?}");

        let refused = on(driver, &["dead", "redrive", &queue]).run();
        assert!(refused.failed(2).contains("add --yes"), "{refused:?}");

        let some = on(
            driver,
            &["dead", "redrive", &queue, "-n", "2", "--yes", "--json"],
        )
        .run()
        .ok()
        .json();
        assert_eq!(some["redriven"], 2, "{driver}: {some}");
        let bus = bus(driver).await;
        let stats = bus.stats(&queue).await.expect("stats");
        assert_eq!((stats.ready, stats.dead), (2, 1), "{driver}: {stats:?}");

        let rest = on(driver, &["dead", "redrive", &queue, "--yes"]).run().ok();
        assert_eq!(
            rest.stdout,
            format!("moved 1 dead letter of `{queue}` back to `{queue}`\n")
        );
        let stats = bus.stats(&queue).await.expect("stats");
        assert_eq!((stats.ready, stats.dead), (3, 0), "{driver}: {stats:?}");

        let back = on(driver, &["receive", &queue, "--json"]).run().ok().json();
        assert_eq!(back["attempt"], 1, "{driver}: {back}");
        assert_eq!(back["headers"]["x-redriven"], "1", "{driver}: {back}");
        assert_eq!(back["headers"]["x-error"], "boom", "{driver}: {back}");
        bus.shutdown().await.expect("shutdown");
        cleanup(driver, &[&queue]).await;
    }
}
