//! Helpers of the amqp behaviour tests: configs for the shared RabbitMQ,
//! raw lapin access for checks the bus does not offer, and queue cleanup.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use actorbus::{Config, DriverKind};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};

/// The shared RabbitMQ of the tests (`scripts/test` makes sure of it).
pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A config for the amqp driver at `url`, with short retry backoffs.
pub fn config_at(url: &str) -> Config {
    let mut config = crate::support::fast_config();
    config.queue.driver = DriverKind::Amqp;
    config.amqp.url = url.to_owned();
    config
}

/// A config for the amqp driver on the shared RabbitMQ.
pub fn config() -> Config {
    config_at(URL)
}

/// Runs `script` with `python3 -c` (a plain AMQP client: `pika`, which
/// `scripts/test` installs), returning its stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (scripts/test installs pika)");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A raw lapin connection to `url`, for what a plain client would do.
pub async fn raw(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("raw lapin connection")
}

/// Deletes `queues` and what the bus derived from them (`<q>.dead`, and
/// `<q>.dead.dead` once something listened to the dead letters), so the
/// shared broker does not fill up with test queues.
pub async fn delete_queues(url: &str, queues: &[&str]) {
    delete(url, &with_dead_letters(queues), &[]).await;
}

/// Each of `queues` with the dead-letter queues the bus may have declared
/// for it (`<q>.dead`, `<q>.dead.dead`).
pub fn with_dead_letters(queues: &[impl AsRef<str>]) -> Vec<String> {
    queues
        .iter()
        .map(AsRef::as_ref)
        .flat_map(|q| [q.to_owned(), format!("{q}.dead"), format!("{q}.dead.dead")])
        .collect()
}

/// Deletes `queues` and `exchanges` on the RabbitMQ at `url`, giving up
/// quietly when it cannot be reached: a channel per delete, since a
/// refused one closes its channel.
pub async fn delete(url: &str, queues: &[String], exchanges: &[String]) {
    let Ok(Ok(conn)) = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    else {
        eprintln!("cleanup: RabbitMQ is not reachable at {url}; test queues are left behind");
        return;
    };
    let doomed = queues.iter().map(|q| (q, true));
    for (name, queue) in doomed.chain(exchanges.iter().map(|e| (e, false))) {
        let Ok(channel) = conn.create_channel().await else {
            continue;
        };
        let _ = if queue {
            let options = QueueDeleteOptions::default();
            channel
                .queue_delete(name.as_str().into(), options)
                .await
                .map(drop)
        } else {
            let options = ExchangeDeleteOptions::default();
            channel.exchange_delete(name.as_str().into(), options).await
        };
        // A channel left open makes lapin log an error as the connection
        // closes (the logging tests read that).
        let _ = channel.close(200, "deleted".into()).await;
    }
    let _ = conn.close(200, "cleanup".into()).await;
}
