//! Command line and environment: which rows run, and how many messages each
//! row measures (`--quick`, `--json FILE`, a positional row filter, the
//! internal `--rss-child`, and the `ACTORBUS_BENCH_*` variables).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct Opts {
    pub(crate) quick: bool,
    /// Messages per throughput row.
    pub(crate) n: usize,
    /// Messages of the sequential rows (one push/send awaited at a time).
    pub(crate) n_seq: usize,
    /// Concurrent pusher tasks of the pipelined rows.
    pub(crate) producers: usize,
    /// Runs per throughput row; the median is reported.
    pub(crate) reps: usize,
    /// Runs per latency row (`ACTORBUS_BENCH_REPS`, else 3, or 1 in
    /// `--quick`); the median p50 and p99 are reported.
    pub(crate) latency_reps: usize,
    /// Latency row: rate and measured duration.
    pub(crate) rate: u64,
    pub(crate) latency_for: Duration,
    /// RSS row: messages queued.
    pub(crate) rss_n: usize,
    pub(crate) json: Option<PathBuf>,
    /// Runs only the rows whose name contains this (cargo's positional
    /// filter); `a|b` runs the rows that contain `a` or `b`.
    pub(crate) filter: Option<String>,
}

impl Opts {
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.split('|').any(|part| name.contains(part)))
    }

    /// Runs per amqp row: one in `--quick` (RabbitMQ rows are the slow
    /// ones), else [`reps`](Self::reps).
    pub(crate) fn amqp_reps(&self) -> usize {
        if self.quick {
            1
        } else {
            self.reps
        }
    }

    /// Name of the bus latency row held to the p99 target.
    pub(crate) fn latency_row(&self) -> String {
        format!("memory latency @{}k/s", self.rate / 1000)
    }

    /// Name of its baseline: a bare actix actor under the same pacing.
    pub(crate) fn raw_latency_row(&self) -> String {
        format!("raw actix latency @{}k/s", self.rate / 1000)
    }
}

fn env_usize(key: &str) -> Option<usize> {
    let raw = std::env::var(key).ok()?;
    match raw.replace('_', "").parse() {
        Ok(v) if v > 0 => Some(v),
        _ => {
            eprintln!("warning: ignoring {key}={raw:?} (want a positive integer)");
            None
        }
    }
}

/// The options, and whether this process is the RSS row's child.
pub(crate) fn parse_args() -> (Opts, bool) {
    let mut quick = false;
    let mut json = None;
    let mut rss_child = false;
    let mut filter = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes `--bench` to harness = false targets.
            "--bench" => {}
            "--quick" => quick = true,
            "--rss-child" => rss_child = true,
            "--json" => match args.next() {
                Some(path) => json = Some(PathBuf::from(path)),
                None => {
                    eprintln!("error: --json needs a file name");
                    std::process::exit(2);
                }
            },
            other if other.starts_with("--json=") => {
                json = Some(PathBuf::from(&other["--json=".len()..]))
            }
            other if other.starts_with('-') => eprintln!("warning: ignoring argument {other:?}"),
            other => filter = Some(other.to_owned()),
        }
    }
    let n = env_usize("ACTORBUS_BENCH_N").unwrap_or(if quick { 50_000 } else { 1_000_000 });
    let reps = env_usize("ACTORBUS_BENCH_REPS");
    let opts = Opts {
        quick,
        n,
        n_seq: (n / 20).max(1_000),
        producers: env_usize("ACTORBUS_BENCH_PRODUCERS").unwrap_or(64),
        reps: reps.unwrap_or(3),
        latency_reps: reps.unwrap_or(if quick { 1 } else { 3 }),
        rate: 10_000,
        latency_for: if quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        },
        rss_n: env_usize("ACTORBUS_BENCH_RSS_N").unwrap_or(1_000_000),
        json,
        filter,
    };
    (opts, rss_child)
}
