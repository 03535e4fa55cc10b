//! One measured row of the report: what kind of row it is, its rate,
//! latency or memory figures, ratios and target, and its JSON-only extras.

use std::time::Duration;

use serde_json::{json, Value};

/// Where the bus and actix rows run (the `runtime` field).
pub(crate) const RUNTIME_NOTE: &str = "actix System::new().block_on";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Raw,
    /// A bus throughput row; `seq` rows are shown but not held to the target.
    E2e {
        seq: bool,
    },
    Latency,
    Rss,
}

pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) n: usize,
    pub(crate) msgs_per_s: Option<f64>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) rss_mib: Option<f64>,
    /// Like with like: bus rate / raw actix `send().await` rate with the
    /// same pipelining (the sequential baseline for the sequential row).
    /// This is the ratio the target is held to.
    pub(crate) ratio: Option<f64>,
    /// Bus rate / raw actix 2 actors (`do_send` in batches, no replies).
    pub(crate) ratio_do_send: Option<f64>,
    pub(crate) target: Option<&'static str>,
    pub(crate) pass: Option<bool>,
    /// Where the row ran.
    pub(crate) runtime: &'static str,
    pub(crate) extra: serde_json::Map<String, Value>,
}

/// The rate of the row named `name`, when it ran.
pub(crate) fn rate_of(rows: &[Row], name: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.name == name)
        .and_then(|r| r.msgs_per_s)
}

/// Holds the row named `row` to at least `want` × the rate of the row
/// named `baseline` in the same run: sets its ratio, `target` text and
/// verdict (none when the baseline did not run). Gives the row back for
/// extras; `None` when it did not run itself.
pub(crate) fn rate_target<'a>(
    rows: &'a mut [Row],
    row: &str,
    baseline: &str,
    want: f64,
    target: &'static str,
) -> Option<&'a mut Row> {
    let base = rate_of(rows, baseline);
    let row = rows.iter_mut().find(|r| r.name == row)?;
    let ratio = base.map(|b| row.msgs_per_s.unwrap_or(0.0) / b);
    row.ratio = ratio;
    row.target = Some(target);
    row.pass = at_least(ratio, want);
    Some(row)
}

/// Whether `ratio` is at least `want`; no verdict (`None`, shown as "-")
/// when the ratio is unknown because its baseline did not run (a filtered
/// run), rather than a miss the code did not earn.
pub(crate) fn at_least(ratio: Option<f64>, want: f64) -> Option<bool> {
    ratio.map(|r| r >= want)
}

/// Whether `ratio` is at most `limit`; no verdict when it is unknown (see
/// [`at_least`]).
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn at_most(ratio: Option<f64>, limit: f64) -> Option<bool> {
    ratio.map(|r| r <= limit)
}

/// Both verdicts; none unless both are known.
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn both(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    a.zip(b).map(|(a, b)| a && b)
}

impl Row {
    pub(crate) fn new(name: impl Into<String>, kind: Kind, n: usize) -> Self {
        Row {
            name: name.into(),
            kind,
            n,
            msgs_per_s: None,
            p50_us: None,
            p99_us: None,
            rss_mib: None,
            ratio: None,
            ratio_do_send: None,
            target: None,
            pass: None,
            runtime: RUNTIME_NOTE,
            extra: serde_json::Map::new(),
        }
    }

    pub(crate) fn rate(name: impl Into<String>, kind: Kind, n: usize, elapsed: Duration) -> Self {
        let mut row = Row::new(name, kind, n);
        row.msgs_per_s = Some(n as f64 / elapsed.as_secs_f64());
        row.extra
            .insert("secs".into(), json!(elapsed.as_secs_f64()));
        row
    }

    pub(crate) fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }
}
