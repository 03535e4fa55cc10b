//! Helpers of the redis driver's behaviour tests: `redis-cli`, key cleanup,
//! free ports, and a private `redis-server` that a test may kill.
//!
//! Reached as `support::redis` (declared in `tests/support/mod.rs`).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actorbus::{Bus, Config, DriverKind};

/// The shared Redis of `scripts/test`.
pub const SHARED_URL: &str = "redis://127.0.0.1:6379/0";

/// Runs `redis-cli -p <port> <args>` and returns its output.
pub fn cli_on(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli must be installed (scripts/test installs redis-server)");
    assert!(out.status.success(), "redis-cli {args:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `redis-cli <args>` against the shared Redis.
pub fn cli(args: &[&str]) -> String {
    cli_on(6379, args)
}

/// Deletes every key the driver made for `queue` on the shared Redis.
pub fn cleanup(queue: &str) {
    cleanup_on(6379, queue);
}

/// Deletes every key the driver made for `queue` on Redis at `port`.
pub fn cleanup_on(port: u16, queue: &str) {
    let keys = [
        queue.to_owned(),
        format!("{queue}.delayed"),
        format!("{queue}.dead"),
        format!("{queue}.dead.delayed"),
    ];
    let mut args = vec!["DEL"];
    args.extend(keys.iter().map(String::as_str));
    cli_on(port, &args);
}

/// A redis config on `url`.
pub fn config_on(url: &str) -> Config {
    let mut config = crate::support::fast_config();
    config.queue.driver = DriverKind::Redis;
    config.redis.url = url.to_owned();
    config
}

/// Connects a redis bus to `url`.
pub async fn bus_on(url: &str, config: Option<Config>) -> Bus {
    let config = config.unwrap_or_else(|| config_on(url));
    Bus::connect(config).await.expect("connect to Redis")
}

pub use crate::support::ports::free_port;

/// Waits until the `redis-server` on `port` answers `PING`, failing the
/// test after `limit`.
pub fn wait_for_pong(port: u16, limit: Duration) {
    let start = Instant::now();
    loop {
        let ping = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "PING"])
            .output();
        if ping.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG") {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "redis-server on {port} did not start within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private `redis-server` with `appendonly yes` in a directory of its
/// own, which a test may kill and restart; never the shared one.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("actorbus-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut redis = PrivateRedis {
            port,
            dir,
            child: None,
        };
        redis.restart();
        redis
    }

    /// The URL of this server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server again (after [`kill`](Self::kill)), on the same
    /// port and data directory, and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        self.child = Some(child);
        wait_for_pong(self.port, Duration::from_secs(20));
    }

    /// The server's OS pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
