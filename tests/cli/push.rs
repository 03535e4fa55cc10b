//! `actorbus push` and `actorbus receive`: what one pushes the other
//! takes, with headers, binary payloads from standard input, and delays.

use crate::support::cli::{cleanup, on, BROKERS};
use crate::support::unique_queue;

#[tokio::test]
async fn push_then_receive_on_each_broker() {
    for driver in BROKERS {
        let queue = unique_queue("cli-push");
        let pushed = on(
            driver,
            &["push", &queue, "hello world", "-H", "tenant=acme"],
        )
        .run()
        .ok();
        let id = pushed.stdout.trim().to_owned();
        assert_eq!(id.len(), 36, "a uuid: {pushed:?}");
        assert_eq!(pushed.stdout, format!("{id}\n"), "only the id");

        let received = on(driver, &["receive", &queue, "--json"]).run().ok();
        assert!(
            received.stdout.starts_with("{\n  \"id\": "),
            "fields in the library's order, id first: {received:?}"
        );
        let json = received.json();
        assert_eq!(json["id"], id.as_str(), "{driver}");
        assert_eq!(json["queue"], queue.as_str());
        assert_eq!(json["attempt"], 1);
        assert_eq!(json["headers"]["tenant"], "acme");
        assert_eq!(json["payload"], "hello world");
        assert_eq!(json["encoding"], "utf8");

        // Received is taken: the queue is empty now.
        let again = on(driver, &["receive", &queue, "--timeout", "300ms"]).run();
        let line = again.failed(1);
        assert_eq!(
            line,
            format!("actorbus: no message on `{queue}` within 300ms")
        );
        cleanup(driver, &[&queue]).await;
    }
}

#[tokio::test]
async fn a_binary_payload_from_stdin_is_shown_in_hex() {
    let driver = "redis";
    let queue = unique_queue("cli-binary");
    let payload = b"\x00\x01\xffbinary\n";
    let mut ids = Vec::new();
    for _ in 0..2 {
        let pushed = on(driver, &["--json", "push", &queue, "-"])
            .stdin(payload)
            .run()
            .ok();
        ids.push(pushed.json()["id"].as_str().expect("id").to_owned());
    }

    let json = on(driver, &["receive", &queue, "--json"]).run().ok().json();
    assert_eq!(json["id"], ids[0].as_str());
    // JSON as the library serializes a `Delivery`: binary in base64.
    assert_eq!(json["encoding"], "base64");
    assert_eq!(json["payload"], "AAH/YmluYXJ5Cg==", "the bytes as pushed");

    let text = on(driver, &["receive", &queue]).run().ok().stdout;
    assert!(
        text.starts_with(&format!("id       {}\n", ids[1])),
        "{text}"
    );
    assert!(text.contains("payload  10 bytes, binary (hex)\n"), "{text}");
    // The printable column lines up with a full line's (`hexdump -C`).
    let last = format!(
        "00000000  00 01 ff 62 69 6e 61 72  79 0a{}|...binary.|\n",
        " ".repeat(20)
    );
    assert!(text.ends_with(&last), "{text}");
    cleanup(driver, &[&queue]).await;
}

#[tokio::test]
async fn a_payload_without_argument_is_read_from_stdin() {
    let driver = "amqp";
    let queue = unique_queue("cli-stdin");
    on(driver, &["push", &queue])
        .stdin(b"from stdin")
        .run()
        .ok();
    let received = on(driver, &["receive", &queue]).run().ok();
    assert!(
        received
            .stdout
            .ends_with("payload  10 bytes, text\nfrom stdin\n"),
        "{received:?}"
    );
    cleanup(driver, &[&queue]).await;
}

#[tokio::test]
async fn a_delayed_push_waits_in_delayed() {
    for driver in BROKERS {
        let queue = unique_queue("cli-delay");
        on(driver, &["push", &queue, "later", "--delay", "1h"])
            .run()
            .ok();
        let stats = on(driver, &["stats", &queue, "--json"]).run().ok().json();
        assert_eq!(stats[0]["ready"], 0, "{driver}: held back: {stats}");
        // On amqp, `delayed` counts the wait queues the counting bus itself
        // pushed to, so another process (this `stats`) sees 0 there.
        if driver == "redis" {
            assert_eq!(stats[0]["delayed"], 1, "{driver}: {stats}");
        }
        // amqp holds a delayed message in the wait queue `<queue>.wait.<ms>`.
        let wait = format!("{queue}.wait.3600000");
        cleanup(driver, &[&queue, &wait]).await;
    }
}

#[tokio::test]
async fn headers_the_bus_owns_are_refused() {
    let queue = unique_queue("cli-header");
    let ran = on("redis", &["push", &queue, "x", "-H", "x-error=forged"]).run();
    let line = ran.failed(1);
    assert!(line.contains("invalid header \"x-error\""), "{line}");
    let usage = on("redis", &["push", &queue, "x", "-H", "novalue"]).run();
    assert_eq!(usage.code(), Some(2), "clap's usage error: {usage:?}");
    assert!(usage.stderr.contains("expected NAME=VALUE"), "{usage:?}");
    cleanup("redis", &[&queue]).await;
}
