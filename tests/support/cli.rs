//! Helpers of the command's tests (`tests/cli/`): running the built
//! `actorbus` as a user would, bounded in time, and a bus of the same
//! broker to set up and check what the command did.
//!
//! Reached as `support::cli` (declared in `tests/support/mod.rs`).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use actorbus::{Bus, Config};

use crate::support::config::TempDir;
use crate::support::LIMIT;

/// The built command.
pub const BIN: &str = env!("CARGO_BIN_EXE_actorbus");

/// The brokers the command is tested on (memory queues end with the
/// command's process, so only `bench` is tested there).
pub const BROKERS: [&str; 2] = ["redis", "amqp"];

/// What one run of the command gave.
#[derive(Debug)]
pub struct Ran {
    /// Its exit status.
    pub status: ExitStatus,
    /// Standard output, as text.
    pub stdout: String,
    /// Standard error, as text.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
    /// Its process id.
    pub pid: u32,
}

impl Ran {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Standard output parsed as JSON; fails the test if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Fails the test unless the command succeeded.
    pub fn ok(self) -> Ran {
        assert_eq!(self.code(), Some(0), "the command failed: {self:?}");
        self
    }

    /// Fails the test unless the command failed with `code` and said so in
    /// exactly one line `actorbus: …` on standard error, with no backtrace
    /// and nothing on standard output; gives that line.
    pub fn failed(&self, code: i32) -> String {
        assert_eq!(self.code(), Some(code), "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:?}");
        assert!(lines[0].starts_with("actorbus: "), "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        assert!(!self.stderr.contains("backtrace"), "{self:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:?}");
        lines[0].to_owned()
    }
}

/// A command line of `actorbus`: the arguments, the environment beyond
/// the test process's (whose `ACTORBUS_*` variables are left out), and
/// standard input. It runs in an empty directory of its own, so that no
/// `application.conf` is read unless the test writes one there.
pub struct Actorbus {
    command: Command,
    stdin: Option<Vec<u8>>,
    dir: TempDir,
}

/// `actorbus <args>`.
pub fn actorbus(args: &[&str]) -> Actorbus {
    let dir = TempDir::new();
    let mut command = Command::new(BIN);
    command.args(args).current_dir(&dir.0);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ACTORBUS_") {
            command.env_remove(name);
        }
    }
    Actorbus {
        command,
        stdin: None,
        dir,
    }
}

/// `actorbus --driver <driver> <args>`.
pub fn on(driver: &str, args: &[&str]) -> Actorbus {
    let mut all = vec!["--driver", driver];
    all.extend_from_slice(args);
    actorbus(&all)
}

impl Actorbus {
    /// Sets an environment variable of the run.
    pub fn env(mut self, name: &str, value: &str) -> Actorbus {
        self.command.env(name, value);
        self
    }

    /// Gives the run these bytes on standard input (else it has none).
    pub fn stdin(mut self, bytes: &[u8]) -> Actorbus {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// The run's own directory (its working directory).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Starts the command with piped output, without waiting.
    pub fn spawn(mut self) -> (Child, TempDir) {
        let stdin = if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self
            .command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the actorbus command");
        if let Some(bytes) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(&bytes)
                .expect("cannot write the command's stdin");
        }
        (child, self.dir)
    }

    /// Runs the command to its end (killing it and failing the test after
    /// [`LIMIT`]) and gives what it did.
    pub fn run(self) -> Ran {
        let start = Instant::now();
        let (mut child, _dir) = self.spawn();
        let pid = child.id();
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let status = loop {
            if let Some(status) = child.try_wait().expect("cannot wait for the command") {
                break status;
            }
            if start.elapsed() > LIMIT {
                let _ = child.kill();
                panic!("actorbus did not finish within {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ran {
            status,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
            took: start.elapsed(),
            pid,
        }
    }
}

/// Reads a pipe to its end on a thread of its own (so a full pipe never
/// blocks the child).
fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A bus on the shared broker `driver` names, with fast retries.
pub async fn bus(driver: &str) -> Bus {
    bus_with(driver, crate::support::fast_config()).await
}

/// A bus on the shared broker `driver` names, with `config` otherwise.
pub async fn bus_with(driver: &str, config: Config) -> Bus {
    match driver {
        "redis" => crate::support::redis_bus(config).await,
        "amqp" => crate::support::amqp_bus(config).await,
        other => panic!("no shared broker for {other:?}"),
    }
}

/// Puts `payloads` in `<queue>.dead` the way a failing handler does (one
/// attempt, handler error `boom`), and waits until they are all there.
pub async fn dead_letters(driver: &str, queue: &str, payloads: &[&str]) {
    let mut config = crate::support::fast_config();
    config.queue.retry.max_attempts = 1;
    let bus = bus_with(driver, config).await;
    for payload in payloads {
        bus.push(queue, payload.to_string()).await.expect("push");
    }
    let failing = bus
        .add_listener(queue, |_| async { Err("boom".into()) })
        .await
        .expect("add_listener");
    let dead = payloads.len() as u64;
    crate::support::stats_until(&bus, queue, "every message dead", |s| {
        s.dead == dead && s.in_flight == 0
    })
    .await;
    failing.remove().await.expect("remove the failing listener");
    bus.shutdown().await.expect("shutdown");
}

/// Deletes what the tests left of `queues` on the shared broker.
pub async fn cleanup(driver: &str, queues: &[&str]) {
    match driver {
        "redis" => queues
            .iter()
            .for_each(|q| crate::support::redis::cleanup(q)),
        "amqp" => crate::support::amqp::delete_queues(crate::support::amqp::URL, queues).await,
        other => panic!("no shared broker for {other:?}"),
    }
}
