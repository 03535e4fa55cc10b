//! The SIGTERM test of `examples/actix_web.rs`, shared by every driver: the
//! example runs as a child process (built by the test, then started from
//! target/), jobs are posted over HTTP, SIGTERM arrives while a job is in
//! hand, and the process must exit 0 after `bus.shutdown()` returned `Ok`
//! with the job in hand finished. On amqp and redis a fresh process then
//! gets exactly the jobs the first did not finish.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How many jobs a test posts.
pub const JOBS: u32 = 8;
/// How long the example's worker takes per job.
const WORK_MS: &str = "1500";
/// Generous bound of every wait (a busy machine is slow, never wrong).
const WAIT: Duration = Duration::from_secs(90);

/// The features this test binary was built with, so that building the
/// example reuses the library already compiled for it.
fn features() -> Vec<&'static str> {
    let mut on = Vec::new();
    for (name, enabled) in [
        ("amqp", cfg!(feature = "amqp")),
        ("amqps", cfg!(feature = "amqps")),
        ("redis", cfg!(feature = "redis")),
        ("cli", cfg!(feature = "cli")),
        ("metrics", cfg!(feature = "metrics")),
        ("otel", cfg!(feature = "otel")),
        ("msgpack", cfg!(feature = "msgpack")),
        ("test-util", cfg!(feature = "test-util")),
    ] {
        if enabled {
            on.push(name);
        }
    }
    on
}

/// Builds the example once per test binary and returns its path
/// (`target/<profile>/examples/actix_web`). `cargo run --example` would
/// rebuild-check on every start, too slow under load.
pub fn example_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().expect("test binary");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps");
        let status = Command::new(env!("CARGO"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--example", "actix_web", "--no-default-features"])
            .arg("--features")
            .arg(features().join(","))
            .env(
                "CARGO_TARGET_DIR",
                profile_dir.parent().expect("target directory"),
            )
            .stdout(Stdio::null())
            .status()
            .expect("run cargo build --example actix_web");
        assert!(status.success(), "cargo build --example actix_web failed");
        let path = profile_dir.join("examples").join("actix_web");
        assert!(path.exists(), "no example binary at {path:?}");
        path
    })
    .clone()
}

/// One running example process and what it printed so far.
pub struct Service {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Service {
    /// Starts the example with `vars` (the driver's `ACTORBUS_*`) and
    /// waits until it listens.
    pub fn start(vars: &[(&str, String)]) -> Service {
        let mut child = Command::new(example_binary())
            .envs(vars.iter().map(|(k, v)| (k, v)))
            // No application.conf of the crate root: the variables decide.
            .current_dir(std::env::temp_dir())
            .env("BIND", "127.0.0.1:0")
            .env("WORK_MS", WORK_MS)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the actix_web example");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut service = Service {
            child,
            lines,
            addr: String::new(),
        };
        let line = service.wait_line("the example listens", |l| l.starts_with("listening on"));
        service.addr = line
            .trim_start_matches("listening on http://")
            .split(' ')
            .next()
            .expect("an address")
            .to_owned();
        service
    }

    /// Everything printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Jobs printed with `prefix` (`started` or `handled`).
    pub fn jobs(&self, prefix: &str) -> Vec<String> {
        let prefix = format!("{prefix} ");
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    /// Waits (bounded) for a line `check` accepts and returns it.
    pub fn wait_line(&mut self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| check(l)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the example exited ({status}) before: {what}");
            }
            assert!(start.elapsed() < WAIT, "not within {WAIT:?}: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `POST /queues/{queue}` with `body`; the HTTP status.
    pub fn post(&self, queue: &str, body: &str) -> u16 {
        self.http(&format!(
            "POST /queues/{queue} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .0
    }

    /// `GET /queues/{queue}`: the status and the JSON body.
    pub fn get(&self, queue: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.http(&format!(
            "GET /queues/{queue} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    fn http(&self, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the example");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request.as_bytes()).expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM failed");
    }

    /// Waits (bounded) for the process to exit; kills it past the bound.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("the example did not exit within {WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the first process did: the jobs it finished, and the one it had
/// in hand when SIGTERM came (it must be among the finished ones).
pub struct FirstRun {
    pub handled: BTreeSet<String>,
    pub in_hand: String,
}

/// Posts [`JOBS`] jobs to `queue`, waits until one job finished and the
/// next started, sends SIGTERM, and checks the exit: status 0, "shutdown
/// returned Ok" printed, the job in hand finished.
pub fn post_then_sigterm(vars: &[(&str, String)], queue: &str) -> FirstRun {
    let mut service = Service::start(vars);
    for i in 0..JOBS {
        assert_eq!(
            service.post(queue, &format!("job-{i}")),
            202,
            "post job-{i}"
        );
    }
    let (status, stats) = service.get(queue);
    assert_eq!(status, 200, "GET stats: {stats}");
    assert!(stats.get("ready").is_some(), "stats JSON: {stats}");
    assert_eq!(
        service.post("amq.bad", "x"),
        400,
        "a bad queue name is a 400"
    );

    service.wait_line("one job handled", |l| l.starts_with("handled "));
    // Wait for a job that started and did not finish yet: it is in hand.
    let start = Instant::now();
    let in_hand = loop {
        let handled = service.jobs("handled");
        if let Some(job) = service
            .jobs("started")
            .into_iter()
            .find(|j| !handled.contains(j))
        {
            break job;
        }
        assert!(start.elapsed() < WAIT, "no job in hand within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    service.sigterm();
    let status = service.wait_exit();
    let lines = service.lines();
    assert!(status.success(), "exit status {status}; printed {lines:#?}");
    assert!(
        lines.iter().any(|l| l == "shutdown returned Ok"),
        "shutdown did not return Ok; printed {lines:#?}"
    );
    let handled: BTreeSet<String> = service.jobs("handled").into_iter().collect();
    assert!(
        handled.contains(&in_hand),
        "the job in hand at SIGTERM ({in_hand}) did not finish: {lines:#?}"
    );
    assert!(
        handled.len() < JOBS as usize,
        "every job finished before SIGTERM: the test proved nothing"
    );
    FirstRun { handled, in_hand }
}

/// The broker drivers' check: a fresh process handles exactly the jobs the
/// first did not finish (finished ones were acknowledged, the rest handed
/// back), then also exits 0 on SIGTERM.
pub fn fresh_process_gets_the_rest(vars: &[(&str, String)], first: &FirstRun) {
    let mut service = Service::start(vars);
    let all: BTreeSet<String> = (0..JOBS).map(|i| format!("job-{i}")).collect();
    let start = Instant::now();
    loop {
        let second: BTreeSet<String> = service.jobs("handled").into_iter().collect();
        if first.handled.union(&second).count() == all.len() {
            break;
        }
        assert!(
            start.elapsed() < WAIT * 2,
            "jobs never handled: {:?}",
            all.iter()
                .filter(|j| !first.handled.contains(*j) && !second.contains(*j))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    service.sigterm();
    let status = service.wait_exit();
    assert!(status.success(), "second process exit status {status}");
    let second = service.jobs("handled");
    let again: Vec<&String> = second
        .iter()
        .filter(|j| first.handled.contains(*j))
        .collect();
    eprintln!(
        "sigterm: first process handled {} (in hand: {}), second {}, handled again {}",
        first.handled.len(),
        first.in_hand,
        second.len(),
        again.len()
    );
    assert!(
        again.is_empty(),
        "jobs finished before shutdown were redelivered (not acknowledged): {again:?}"
    );
}
