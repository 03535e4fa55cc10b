//! `actorbus bench`: sane figures on every driver, the SVG plot, and
//! queues left empty.

use crate::support::cli::{cleanup, on};
use crate::support::config::TempDir;

#[tokio::test]
async fn bench_reports_sane_figures_on_every_driver() {
    for driver in ["memory", "redis", "amqp"] {
        let report = on(driver, &["bench", "--duration", "1s", "--json"])
            .run()
            .ok()
            .json();
        assert_eq!(report["driver"], driver, "{report}");
        let pushed = report["pushed"].as_u64().expect("pushed");
        assert!(pushed > 0, "{report}");
        assert_eq!(
            report["handled"].as_u64(),
            Some(pushed),
            "all drained: {report}"
        );
        assert!(report["drained_secs"].is_f64(), "{report}");
        assert!(
            report["pushed_per_sec"].as_f64().expect("rate") > 0.0,
            "{report}"
        );
        assert!(
            report["handled_per_sec"].as_f64().expect("rate") > 0.0,
            "{report}"
        );
        let latency = &report["latency_ms"];
        assert_eq!(latency["count"].as_u64(), Some(pushed), "{report}");
        let ms = |name: &str| latency[name].as_f64().expect("a latency");
        assert!(ms("p50") > 0.0, "{report}");
        assert!(ms("p50") <= ms("p90") && ms("p90") <= ms("p99") && ms("p99") <= ms("max"));
        if driver != "memory" {
            purged_then_deleted(driver, &report).await;
        }
    }
}

#[tokio::test]
async fn bench_plot_writes_an_svg() {
    let dir = TempDir::new();
    let file = dir.0.join("bench.svg");
    let path = file.to_str().expect("utf-8 path");
    let args = ["bench", "--duration", "1s", "--queues", "2", "--plot", path];
    let ran = on("redis", &args).run().ok();
    assert!(
        ran.stdout
            .starts_with("actorbus bench: redis, 2 queues × 1 listener × 16 handlers"),
        "{ran:?}"
    );
    assert!(ran.stdout.contains("\nlatency  p50 "), "{ran:?}");
    let svg = std::fs::read_to_string(&file).expect("the plot was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.contains("throughput (msgs/s, per 100 ms)"));
    assert!(svg.contains("latency, push to handler"));
    assert!(svg.contains("<polyline"), "lines were drawn");
    // The text report does not name its queues: find them by the pid.
    let pattern = format!("actorbus-bench-{}-*", ran.pid);
    let names = crate::support::redis::cli(&["--scan", "--pattern", &pattern]);
    let names: Vec<&str> = names.lines().filter(|k| !k.is_empty()).collect();
    assert_eq!(names.len(), 2, "one stream per queue: {names:?}");
    cleanup("redis", &names).await;
}

/// The bench's queues hold nothing (nor their dead letters); then deletes
/// them, which the bench cannot.
async fn purged_then_deleted(driver: &str, report: &serde_json::Value) {
    let names: Vec<&str> = (report["queue_names"].as_array())
        .expect("queue_names")
        .iter()
        .map(|name| name.as_str().expect("a name"))
        .collect();
    assert_eq!(names.len(), 1, "{report}");
    assert!(names[0].starts_with("actorbus-bench-"), "{report}");
    let bus = crate::support::cli::bus(driver).await;
    for name in &names {
        let stats = bus.stats(name).await.expect("stats");
        assert_eq!((stats.ready, stats.dead), (0, 0), "{driver}: {stats:?}");
    }
    bus.shutdown().await.expect("shutdown");
    cleanup(driver, &names).await;
}
