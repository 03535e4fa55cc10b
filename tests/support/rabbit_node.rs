//! A private RabbitMQ node for tests that stop and restart a broker.
//!
//! It has its own node name, ports, config, plugins file and data
//! directory, so it never clashes with (or touches) the shared node on 5672.
//! Dropping it stops the node and removes its directory.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::ports::free_port;

const BIN: &str = "/usr/lib/rabbitmq/bin";

/// A running (or stopped) private RabbitMQ node.
pub struct RabbitNode {
    /// `actorbus-test-<pid>-<n>@localhost`.
    pub name: String,
    /// Its AMQP port.
    pub port: u16,
    dist_port: u16,
    dir: PathBuf,
    /// `HOME` of the node and its `rabbitmqctl`: where the Erlang cookie
    /// is (a cluster's nodes share one); the caller's when `None`.
    home: Option<PathBuf>,
    server: Option<Child>,
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

impl RabbitNode {
    /// Whether this machine can run a private node.
    pub fn available() -> bool {
        std::path::Path::new(BIN).join("rabbitmq-server").exists()
    }

    /// Starts a fresh node and waits until it takes connections.
    pub fn start(tag: &str) -> RabbitNode {
        RabbitNode::start_in(tag, None)
    }

    /// Starts a fresh node whose `HOME` (and so Erlang cookie) is `home`.
    pub fn start_in(tag: &str, home: Option<PathBuf>) -> RabbitNode {
        let port = free_port();
        let dist_port = free_port();
        let name = format!("actorbus-test-{}-{tag}@localhost", std::process::id());
        let dir =
            std::env::temp_dir().join(format!("actorbus-rabbit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("node directory");
        }
        // Its own listener and no plugins: the shared node's config would
        // bind 5672, and the management plugin would want 15672.
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        let mut node = RabbitNode {
            name,
            port,
            dist_port,
            dir,
            home,
            server: None,
        };
        node.start_server();
        node
    }

    /// `amqp.url` of this node.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(format!("{BIN}/{program}"));
        cmd.current_dir(&self.dir)
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_PID_FILE", self.dir.join("pid"));
        if let Some(home) = &self.home {
            cmd.env("HOME", home);
        }
        cmd
    }

    /// Starts the node's server process (after [`stop`](Self::stop)).
    pub fn start_server(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.out")).unwrap();
        let child = self
            .command("rabbitmq-server")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start rabbitmq-server");
        self.server = Some(child);
        self.wait_started();
    }

    /// Waits until the node's server takes connections on its port and
    /// `rabbitmqctl` finds this node booted: an open port alone could be
    /// another server's. Fails the test, with the end of the node's
    /// output, when the server exits first.
    fn wait_started(&mut self) {
        let start = Instant::now();
        while !port_open(self.port) {
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|s| s.try_wait().ok().flatten())
            {
                self.server = None;
                panic!(
                    "node {} exited ({status}) before it opened port {}: {}",
                    self.name,
                    self.port,
                    self.output_tail()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "node {} port {} never opened: {}",
                self.name,
                self.port,
                self.output_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.ctl(&["await_startup", "--timeout", "60"]);
    }

    /// The last lines the node's server printed, for a failure message.
    fn output_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.out")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Runs `rabbitmqctl -n <node> args`, failing the test if it fails;
    /// returns what it printed.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self
            .command("rabbitmqctl")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run rabbitmqctl");
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the node's AMQP port is open (`true`) or closed.
    pub fn wait_port(&self, open: bool) {
        let start = Instant::now();
        while port_open(self.port) != open {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "node {} port {} never became {}",
                self.name,
                self.port,
                if open { "open" } else { "closed" }
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL of the node's Erlang VM (no goodbye to clients or peers),
    /// then waits for its port to close. [`start_server`](Self::start_server)
    /// brings it back with its data.
    pub fn kill(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("pid")).expect("the node's pid file");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL {pid} failed");
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        self.wait_port(false);
    }

    /// Whether the node's server process runs (it was not killed or stopped).
    pub fn running(&self) -> bool {
        self.server.is_some()
    }

    /// The OS pid of the node's Erlang VM (from its pid file), the process
    /// a test stops with SIGSTOP to hang the broker.
    pub fn beam_pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.dir.join("pid")).expect("the node's pid file");
        text.trim().parse().expect("a pid in the node's pid file")
    }

    /// Has the node drop every client connection `times` times, `every`
    /// apart (a loop inside the node: one `rabbitmqctl` call takes seconds
    /// on a busy machine); returns how many connections it closed in all.
    pub fn close_all_connections_every(&self, every: Duration, times: u32) -> u64 {
        let flaps = format!(
            "lists:sum([begin N = length(rabbit_networking:connections()), \
             rabbit_networking:close_all_connections(\"actorbus fault test\"), \
             timer:sleep({}), N end || _ <- lists:seq(1, {times})]).",
            every.as_millis()
        );
        let out = self.ctl(&["eval", &flaps]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("rabbitmqctl eval said {out:?}"))
    }

    /// `rabbitmqctl stop_app`: the node stays, RabbitMQ stops.
    pub fn stop_app(&self) {
        self.ctl(&["stop_app"]);
        self.wait_port(false);
    }

    /// `rabbitmqctl start_app`.
    pub fn start_app(&self) {
        self.ctl(&["start_app"]);
        self.wait_port(true);
    }

    /// `rabbitmqctl stop`: the whole node goes (its data stays).
    pub fn stop(&mut self) {
        self.ctl(&["stop"]);
        if let Some(mut server) = self.server.take() {
            let _ = server.wait();
        }
        self.wait_port(false);
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = self
                .command("rabbitmqctl")
                .arg("-n")
                .arg(&self.name)
                .arg("stop")
                .output();
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
