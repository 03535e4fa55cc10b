//! Passwords in urls (`amqp.url`, `amqp.urls`, `redis.url`, `redis.cluster`,
//! and the same keys in a named connection) never show in `Debug`, in
//! errors or in logs (every level, the drivers' libraries included, while
//! the brokers refuse the password): they are `***`. And a url without a host is refused, not taken
//! for 127.0.0.1.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set.

use actorbus::Config;

use crate::support::config::{config_error, parse};

/// The secret every url of these tests carries.
const SECRET: &str = "s3cr3t-pw";

#[test]
fn debug_never_shows_a_password() {
    let text = format!(
        r#"
        amqp.url = "amqp://app:{SECRET}@broker:5672/%2f"
        amqp.urls = ["amqp://app:{SECRET}@node1:5672/%2f", "amqps://app:{SECRET}@node2/%2f"]
        redis.url = "redis://:{SECRET}@cache:6379/0"
        redis.cluster = ["redis://user:{SECRET}@cache1:7000", "rediss://user:{SECRET}@cache2:7001"]
        queue.connections.events {{ redis.url = "redis://u:{SECRET}@events:6379/1" }}
        queue.connections.jobs {{ amqp.urls = ["amqp://u:{SECRET}@jobs/%2f"] }}
        "#
    );
    let config = parse(&text);
    let mut shown = vec![format!("{config:?}"), format!("{config:#?}")];
    for name in ["events", "jobs"] {
        shown.push(format!("{:?}", config.connection(name).unwrap()));
    }
    for text in &shown {
        assert!(!text.contains(SECRET), "{text}");
    }
    // What it does show is enough to tell the urls apart.
    #[cfg(feature = "amqp")]
    {
        assert!(
            shown[0].contains("amqp://app:***@broker:5672/%2f"),
            "{}",
            shown[0]
        );
        assert!(
            shown[0].contains("amqps://app:***@node2/%2f"),
            "{}",
            shown[0]
        );
        assert_eq!(config.amqp.urls.len(), 2);
    }
    #[cfg(feature = "redis")]
    {
        assert!(
            shown[0].contains("redis://:***@cache:6379/0"),
            "{}",
            shown[0]
        );
        assert!(
            shown[0].contains("rediss://user:***@cache2:7001"),
            "{}",
            shown[0]
        );
        assert!(
            shown[0].contains("redis://u:***@events:6379/1"),
            "{}",
            shown[0]
        );
        assert_eq!(config.redis.cluster.len(), 2);
    }
}

#[test]
fn errors_never_show_a_password() {
    let mut cases = Vec::new();
    if cfg!(feature = "amqp") {
        cases.extend([
            format!("amqp.url = \"http://app:{SECRET}@broker/\""),
            format!("amqp.url = \"amqp://app:{SECRET}@/%2f\""),
            format!("amqp.urls = [\"amqp://app:{SECRET}@ok/%2f\", \"ftp://app:{SECRET}@x/\"]"),
            format!("queue.connections.j {{ amqp.url = \"amqp://a:{SECRET}@h b/\" }}"),
        ]);
    }
    if cfg!(feature = "redis") {
        cases.extend([
            format!("redis.url = \"http://app:{SECRET}@cache/\""),
            format!("redis.cluster = [\"redis://app:{SECRET}@\"]"),
        ]);
    }
    for text in cases {
        let (key, message) = config_error(&text);
        let err = Config::from_hocon_str(&text).unwrap_err();
        for shown in [&key, &message, &err.to_string(), &format!("{err:?}")] {
            assert!(!shown.contains(SECRET), "{text}: {shown}");
        }
        assert!(message.contains("***"), "{text}: {message}");
    }
}

#[cfg(feature = "amqp")]
#[test]
fn an_amqp_url_without_a_host_is_refused() {
    for url in [
        "amqp://",
        "amqp:///%2f",
        "amqps://guest:guest@:5671/%2f",
        "amqp://user@",
    ] {
        let (key, message) = config_error(&format!("amqp.url = \"{url}\""));
        assert_eq!(key, "amqp.url", "{url}");
        assert!(message.contains("has no host"), "{url}: {message}");
    }
    for url in ["amqp://h", "amqp://[::1]:5672/%2f", "amqp://u:p@h:1/v"] {
        assert_eq!(parse(&format!("amqp.url = \"{url}\"")).amqp.url, url);
    }
    let (key, _) = config_error("amqp.urls = [\"amqp://\"]");
    assert_eq!(key, "amqp.urls");
}

#[cfg(feature = "redis")]
#[test]
fn a_redis_url_without_a_host_is_refused() {
    let (key, message) = config_error("redis.url = \"redis://\"");
    assert_eq!(key, "redis.url");
    assert!(message.contains("has no host"), "{message}");
    // A unix socket has a path instead.
    assert_eq!(
        parse("redis.url = \"unix:///run/r.sock\"").redis.url,
        "unix:///run/r.sock"
    );
}

#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refuses_a_hostless_url_set_in_code() {
    use actorbus::{Bus, Error};

    let mut config = Config::default();
    config.queue.driver = actorbus::DriverKind::Amqp;
    config.amqp.url = format!("amqp://guest:{SECRET}@");
    match Bus::connect(config).await {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, "amqp.url");
            assert!(message.contains("has no host"), "{message}");
            assert!(!message.contains(SECRET), "{message}");
        }
        Err(other) => panic!("expected Error::Config, got {other:?}"),
        Ok(bus) => {
            let _ = bus.shutdown().await;
            panic!("connected to a url without a host");
        }
    }
}

#[test]
fn cluster_keys_are_checked_and_default_to_unused() {
    let config = Config::default();
    #[cfg(feature = "amqp")]
    {
        assert!(config.amqp.urls.is_empty());
        assert_eq!(config.amqp.queue_type, actorbus::AmqpQueueType::Classic);
        let parsed = parse("amqp.queue_type = QUORUM");
        assert_eq!(parsed.amqp.queue_type, actorbus::AmqpQueueType::Quorum);
        let (key, message) = config_error("amqp.queue_type = mirrored");
        assert_eq!(key, "amqp.queue_type");
        assert!(
            message.contains("unknown queue type \"mirrored\""),
            "{message}"
        );
        // One string is a list of urls separated by commas, as a variable gives it.
        let parsed = parse("amqp.urls = \"amqp://a, amqp://b\"");
        assert_eq!(parsed.amqp.urls, ["amqp://a", "amqp://b"]);
        let (key, _) = config_error("amqp.urls = 5");
        assert_eq!(key, "amqp.urls");
    }
    #[cfg(feature = "redis")]
    {
        assert!(config.redis.cluster.is_empty());
        assert_eq!(config.redis.wait_replicas, 0);
        assert_eq!(parse("redis.wait_replicas = 2").redis.wait_replicas, 2);
        let (key, message) = config_error("redis.wait_replicas = -1");
        assert_eq!(key, "redis.wait_replicas");
        assert!(message.contains("out of range 0..=100"), "{message}");
        let (key, _) = config_error("redis.cluster = { a = 1 }");
        assert_eq!(key, "redis.cluster");
    }
    let _ = config;
}

/// The config of the logging test: every url key carries [`SECRET`], and the
/// brokers (which know no such password) refuse it.
#[cfg(all(feature = "amqp", feature = "redis"))]
fn secret_config() -> Config {
    parse(&format!(
        r#"
        amqp.url = "amqp://guest:{SECRET}@127.0.0.1:5672/%2f"
        amqp.urls = ["amqp://guest:{SECRET}@127.0.0.1:5672/%2f"]
        redis.url = "redis://:{SECRET}@127.0.0.1:6379/0"
        redis.cluster = ["redis://:{SECRET}@127.0.0.1:7000"]
        queue.push_timeout = 5s
        "#
    ))
}

#[cfg(all(feature = "amqp", feature = "redis"))]
#[test]
#[ignore = "run by logs_never_show_a_password, which reads its stderr"]
fn child_logs_everything_while_connecting_with_passwords() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = secret_config();
    tracing::info!(?config, "the config");
    for driver in [actorbus::DriverKind::Amqp, actorbus::DriverKind::Redis] {
        let mut config = config.clone();
        config.queue.driver = driver;
        let connected = runtime.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                actorbus::Bus::connect(config),
            )
            .await
        });
        match connected {
            Ok(Ok(bus)) => {
                // A broker that takes any password: the logs still count.
                tracing::info!(?bus, "connected");
                let _ = runtime.block_on(bus.shutdown());
            }
            Ok(Err(err)) => tracing::error!(%err, ?err, "connect failed"),
            Err(_) => tracing::error!(?driver, "connect timed out"),
        }
    }
}

#[cfg(all(feature = "amqp", feature = "redis"))]
#[test]
fn logs_never_show_a_password() {
    let output = crate::support::config::run_test_in_child(
        "api::config_secrets::child_logs_everything_while_connecting_with_passwords",
        &[],
    );
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("the config"), "no logs were written:\n{logs}");
    assert!(
        logs.contains("connect failed"),
        "the brokers took the password:\n{logs}"
    );
    assert!(logs.contains("***"), "{logs}");
    let leaks: Vec<&str> = logs.lines().filter(|line| line.contains(SECRET)).collect();
    assert!(leaks.is_empty(), "log lines show the password: {leaks:#?}");
}
