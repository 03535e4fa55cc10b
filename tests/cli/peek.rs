//! `actorbus peek`: the next ready messages, in order, left where they are.

use crate::support::cli::{bus, cleanup, on, BROKERS};
use crate::support::unique_queue;

#[tokio::test]
async fn peek_shows_messages_without_taking_them() {
    for driver in BROKERS {
        let queue = unique_queue("cli-peek");
        let mut ids = Vec::new();
        for payload in ["first", "second", "third"] {
            let pushed = on(driver, &["push", &queue, payload]).run().ok();
            ids.push(pushed.stdout.trim().to_owned());
        }

        let peeked = on(driver, &["peek", &queue, "-n", "2", "--json"])
            .run()
            .ok()
            .json();
        let peeked = peeked.as_array().expect("an array of messages");
        assert_eq!(peeked.len(), 2, "{driver}: {peeked:?}");
        for (message, (id, payload)) in peeked.iter().zip(ids.iter().zip(["first", "second"])) {
            assert_eq!(message["id"], id.as_str(), "{driver}: in order");
            assert_eq!(message["payload"], payload);
            assert_eq!(message["attempt"], 1);
        }

        let text = on(driver, &["peek", &queue]).run().ok().stdout;
        let blocks: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(blocks.len(), 3, "{driver}: one block per message: {text}");
        assert!(
            blocks[2].starts_with(&format!("id       {}\n", ids[2])),
            "{text}"
        );
        assert!(
            blocks[2].ends_with("payload  5 bytes, text\nthird\n"),
            "{text}"
        );

        let bus = bus(driver).await;
        let stats = bus.stats(&queue).await.expect("stats");
        assert_eq!(stats.ready, 3, "{driver}: peeking took nothing");
        bus.shutdown().await.expect("shutdown");

        let empty = unique_queue("cli-peek-empty");
        let ran = on(driver, &["peek", &empty]).run().ok();
        assert!(ran.stdout.is_empty(), "{ran:?}");
        assert!(ran.stderr.contains("has no ready messages"), "{ran:?}");
        let json = on(driver, &["peek", &empty, "--json"]).run().ok().json();
        assert_eq!(json, serde_json::json!([]));
        cleanup(driver, &[&queue, &empty]).await;
    }
}
