//! Summaries of repeated measurements: nearest-rank percentiles of latency
//! samples, and the median run of a throughput row.

use serde_json::json;

use crate::row::Row;
use crate::sink::settle_down;

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
