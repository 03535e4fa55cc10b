//! Errors of the command: one line `actorbus: …` on standard error, a
//! non-zero exit code, no backtrace; a broker that is down said within
//! `queue.push_timeout`.

use std::time::Duration;

use crate::support::cli::{actorbus, bus, cleanup, on, BROKERS};
use crate::support::redis::free_port;
use crate::support::unique_queue;

#[test]
fn a_closed_port_is_one_line_within_push_timeout() {
    let port = free_port();
    let urls = [
        ("redis", format!("redis://:sekrit@127.0.0.1:{port}/0")),
        ("amqp", format!("amqp://guest:sekrit@127.0.0.1:{port}/%2f")),
    ];
    for (driver, url) in urls {
        let ran = on(driver, &["--url", &url, "push", "q", "x"])
            .env("ACTORBUS_QUEUE__PUSH_TIMEOUT", "3s")
            .run();
        let line = ran.failed(1);
        assert!(line.contains("cannot connect to"), "{line}");
        assert!(line.contains("refused"), "{line}");
        assert!(!line.contains("sekrit"), "no password in errors: {line}");
        // push_timeout plus a process start on a busy machine: a hang or a
        // reconnect loop would take the whole limit.
        assert!(ran.took < Duration::from_secs(3 + 10), "{ran:?}");
    }
}

#[test]
fn a_broker_that_never_answers_is_one_line_within_push_timeout() {
    // Takes connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("local address").port();
    let urls = [
        ("redis", format!("redis://127.0.0.1:{port}/0")),
        ("amqp", format!("amqp://guest:guest@127.0.0.1:{port}/%2f")),
    ];
    for (driver, url) in urls {
        let ran = on(driver, &["--url", &url, "stats", "q"])
            .env("ACTORBUS_QUEUE__PUSH_TIMEOUT", "2s")
            .run();
        let line = ran.failed(1);
        assert!(
            line.contains("no answer within 2s (queue.push_timeout)"),
            "{line}"
        );
        assert!(ran.took >= Duration::from_secs(2), "it waited: {ran:?}");
        assert!(ran.took < Duration::from_secs(2 + 10), "{ran:?}");
    }
    drop(silent);
}

#[test]
fn an_invalid_queue_name_is_a_clear_error() {
    for driver in BROKERS {
        let line = on(driver, &["push", "amq.reserved", "x"]).run().failed(1);
        assert_eq!(
            line,
            "actorbus: cannot push to `amq.reserved`: invalid queue name \"amq.reserved\": must not start with \"amq.\""
        );
        let long = "q".repeat(201);
        let line = on(driver, &["stats", &long]).run().failed(1);
        assert!(line.contains("invalid queue name"), "{line}");
    }
}

#[test]
fn wrong_use_exits_with_2() {
    let ran = actorbus(&["push"]).run();
    assert_eq!(ran.code(), Some(2), "{ran:?}");
    let ran = actorbus(&["bench", "--payload", "4B"]).run();
    assert_eq!(
        ran.failed(2),
        "actorbus: --payload must be at least 8 bytes: they carry the push time"
    );
    let ran = actorbus(&["--url", "redis://127.0.0.1/0", "stats", "q"]).run();
    assert!(
        ran.failed(2).contains("--url needs a broker driver"),
        "{ran:?}"
    );
    let ran = actorbus(&["--driver", "kafka", "stats", "q"]).run();
    assert_eq!(ran.code(), Some(2), "{ran:?}");
}

#[test]
fn configuration_errors_name_the_key() {
    let line = on("redis", &["--connection", "nope", "stats", "q"])
        .run()
        .failed(1);
    assert!(line.contains("queue.connections.nope"), "{line}");
    let line = on(
        "redis",
        &["--config", "/nonexistent/app.conf", "stats", "q"],
    )
    .run()
    .failed(1);
    assert!(line.contains("/nonexistent/app.conf"), "{line}");
    assert!(line.contains("cannot read the file"), "{line}");
    let line = on("redis", &["stats", "q"])
        .env("ACTORBUS_QUEUE_DRIVER", "redis")
        .run()
        .failed(1);
    assert!(
        line.contains("did you mean `ACTORBUS_QUEUE__DRIVER`"),
        "{line}"
    );
}

#[tokio::test]
async fn the_config_file_its_connections_and_the_environment_choose_the_broker() {
    let queue = unique_queue("cli-config");
    // application.conf in the working directory, as Config::load reads it.
    let command = actorbus(&["--connection", "events", "push", &queue, "via conf"]);
    std::fs::write(
        command.dir().join("application.conf"),
        "queue.connections { events { driver = redis } }",
    )
    .expect("write application.conf");
    command.run().ok();
    // --config FILE (relative to the working directory), and an
    // ACTORBUS_* variable over it.
    let command = actorbus(&["--config", "other.conf", "push", &queue, "via env"]);
    std::fs::write(command.dir().join("other.conf"), "queue.driver = memory")
        .expect("write other.conf");
    command.env("ACTORBUS_QUEUE__DRIVER", "redis").run().ok();

    let bus = bus("redis").await;
    assert_eq!(bus.stats(&queue).await.expect("stats").ready, 2);
    bus.shutdown().await.expect("shutdown");
    cleanup("redis", &[&queue]).await;
}
