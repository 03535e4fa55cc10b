//! The Prometheus recorder of a test process (feature `metrics`): installed
//! once, serving `/metrics` over HTTP, and a reader for its text.
//!
//! A process has one global recorder, and a queue's metric handles are taken
//! from it when the bus first uses the queue, so every test that reads
//! metrics calls [`prometheus`] before it makes its bus, and uses queue
//! names of its own ([`unique_queue`](super::unique_queue)).

use std::net::{SocketAddr, TcpListener};
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The installed recorder: its handle (to render the text) and where its
/// HTTP listener serves `/metrics`.
pub struct Prometheus {
    pub handle: PrometheusHandle,
    pub addr: SocketAddr,
}

/// The process's recorder, installed on first call.
pub fn prometheus() -> &'static Prometheus {
    static INSTALLED: OnceLock<Prometheus> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // A free port: bind one, read it, let it go for the exporter.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free local port");
        let (tx, rx) = std::sync::mpsc::channel();
        // The exporter gets a runtime of its own: a test's runtime ends with the test.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("exporter runtime");
            let (recorder, exporter) = runtime
                .block_on(async { PrometheusBuilder::new().with_http_listener(addr).build() })
                .expect("prometheus exporter");
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).expect("the only recorder of this process");
            let _ = tx.send(handle);
            let _ = runtime.block_on(exporter);
        });
        let handle = rx.recv_timeout(super::LIMIT).expect("exporter started");
        Prometheus { handle, addr }
    })
}

/// The value of metric `name` for `queue` in Prometheus text `text`
/// (histograms: `<name>_count` and `<name>_sum`), checking its `driver` label.
pub fn value(text: &str, name: &str, queue: &str, driver: &str) -> Option<f64> {
    let queue_label = format!("queue=\"{queue}\"");
    let driver_label = format!("driver=\"{driver}\"");
    text.lines().find_map(|line| {
        let (metric, rest) = line.split_once('{')?;
        let (labels, value) = rest.rsplit_once("} ")?;
        let ours = metric == name && labels.split(',').any(|l| l == queue_label);
        if !ours {
            return None;
        }
        assert!(
            labels.split(',').any(|l| l == driver_label),
            "{name} of {queue} is not labelled {driver_label}: {line}"
        );
        value.trim().parse().ok()
    })
}

/// [`value`] in what the recorder renders now; 0 when the metric is absent.
pub fn current(name: &str, queue: &str, driver: &str) -> f64 {
    value(&prometheus().handle.render(), name, queue, driver).unwrap_or(0.0)
}

/// The `driver` label of a bus.
pub fn driver_label(bus: &actorbus::Bus) -> &'static str {
    match bus.config().queue.driver {
        actorbus::DriverKind::Amqp => "amqp",
        actorbus::DriverKind::Redis => "redis",
        _ => "memory",
    }
}
