//! Summaries of repeated measurements: nearest-rank percentiles of latency
//! samples, the median run of a throughput row, and the medians of a
//! latency row's runs.

use serde_json::{json, Value};

use crate::harness::machine::{with_foreign_cpu, CpuSnap};
use crate::harness::row::Row;
use crate::harness::sink::settle_down;

/// Nearest-rank percentile of sorted samples.
pub(crate) fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs a throughput row `reps` times and keeps the median run (by rate);
/// every run's rate goes to the JSON field `runs`. Each run builds its own
/// bus (and so its own arbiter threads), so the runs also sample how the OS
/// places the threads, which moves results a lot on a small VM.
pub(crate) async fn median_of<F, Fut>(reps: usize, mut run: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Row>,
{
    let mut rows = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        rows.push(run().await);
        settle_down().await;
    }
    median_row(rows)
}

/// [`median_of`] announced on stderr, with the CPU time other processes
/// took meanwhile (the `other CPU s` column).
pub(crate) async fn measured<F, Fut>(name: &str, reps: usize, run: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Row>,
{
    eprintln!("  {name} ...");
    let snap = CpuSnap::now();
    with_foreign_cpu(median_of(reps, run).await, snap)
}

/// The median of `rows` by rate, with every run's rate in `runs`.
pub(crate) fn median_row(mut rows: Vec<Row>) -> Row {
    let rate = |r: &Row| r.msgs_per_s.unwrap_or(0.0);
    let runs: Vec<f64> = rows.iter().map(|r| rate(r).round()).collect();
    rows.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
    let mid = rows.len() / 2;
    let mut row = rows.swap_remove(mid);
    row.extra.insert("runs".into(), json!(runs));
    row
}

/// The median of `values` (the mean of the two middle ones for an even
/// count); `None` if there are none.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        len if len % 2 == 1 => Some(values[mid]),
        _ => Some((values[mid - 1] + values[mid]) / 2.0),
    }
}

/// One latency row from its runs: the median p50 and the median p99 (each
/// taken on its own, so they may come from different runs), likewise the
/// achieved rate and the JSON-only p90/p99.9/max; every run's p50 and p99
/// (and the other processes' CPU during it) go to the JSON field `runs`.
pub(crate) fn median_latency(mut runs: Vec<Row>) -> Row {
    let each = |runs: &[Row], get: &dyn Fn(&Row) -> Option<f64>| {
        median(runs.iter().filter_map(get).collect())
    };
    let extra = |key: &'static str| move |r: &Row| r.extra.get(key).and_then(Value::as_f64);
    let per_run: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut run = json!({"p50_us": r.p50_us, "p99_us": r.p99_us});
            if let Some(cpu) = r.extra.get("other_cpu_s") {
                run["other_cpu_s"] = cpu.clone();
            }
            run
        })
        .collect();
    let p50 = each(&runs, &|r| r.p50_us);
    let p99 = each(&runs, &|r| r.p99_us);
    let rate = each(&runs, &|r| r.msgs_per_s);
    let tails = ["p90_us", "p999_us", "max_us"].map(|key| (key, each(&runs, &extra(key))));
    let mut row = runs.swap_remove(0);
    row.p50_us = p50;
    row.p99_us = p99;
    row.msgs_per_s = rate;
    for (key, value) in tails {
        row.extra.insert(key.into(), json!(value));
    }
    // The row's figure is the sum over its runs, filled in by the caller.
    row.extra.remove("other_cpu_s");
    row.extra.insert("runs".into(), json!(per_run));
    row
}
