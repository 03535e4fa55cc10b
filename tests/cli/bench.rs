//! `actorbus bench`: sane figures on every driver, the SVG plot, and
//! queues left empty.

use crate::support::cli::on;
use crate::support::config::TempDir;
use crate::support::redis::cli;

#[test]
fn bench_reports_sane_figures_on_every_driver() {
    for driver in ["memory", "redis", "amqp"] {
        let ran = on(driver, &["bench", "--duration", "1s", "--json"])
            .run()
            .ok();
        let report = ran.json();
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
        if driver == "redis" {
            assert_bench_queues_empty(ran.pid);
        }
    }
}

#[test]
fn bench_plot_writes_an_svg() {
    let dir = TempDir::new();
    let file = dir.0.join("bench.svg");
    let path = file.to_str().expect("utf-8 path");
    let ran = on("redis", &["bench", "--duration", "1s", "--plot", path])
        .run()
        .ok();
    assert!(
        ran.stdout
            .starts_with("actorbus bench: redis, 1 queue × 1 listener"),
        "{ran:?}"
    );
    assert!(ran.stdout.contains("latency  p50 "), "{ran:?}");
    let svg = std::fs::read_to_string(&file).expect("the plot was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.contains("throughput (msgs/s, per 100 ms)"));
    assert!(svg.contains("latency, push to handler"));
    assert!(svg.contains("<polyline"), "lines were drawn");
}

/// The bench's queues on Redis (`actorbus-bench-<pid>-…`) hold nothing;
/// then deletes their keys, which purging leaves.
fn assert_bench_queues_empty(pid: u32) {
    let pattern = format!("actorbus-bench-{pid}-*");
    let keys = cli(&["--scan", "--pattern", &pattern]);
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    assert!(!keys.is_empty(), "the bench used a stream named {pattern}");
    for key in &keys {
        assert_eq!(cli(&["XLEN", key]).trim(), "0", "{key} was purged");
    }
    let mut del = vec!["DEL"];
    del.extend(&keys);
    cli(&del);
}
