//! The report: the printed table with its notes, and the rows as JSON lines
//! (`--json FILE`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use crate::harness::args::Opts;
use crate::harness::machine::loadavg;
use crate::harness::row::{Row, RUNTIME_NOTE};

pub(crate) fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".to_owned(),
    }
}

fn fmt_rate(v: Option<f64>) -> String {
    match v {
        Some(v) => {
            let digits = format!("{:.0}", v);
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
        None => "-".to_owned(),
    }
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

/// The latency row's p50 and p99 over the raw actix latency row's.
fn fmt_latency_ratios(row: &Row) -> String {
    let get = |key: &str| row.extra.get(key).and_then(Value::as_f64);
    match (get("p50_ratio_vs_raw"), get("p99_ratio_vs_raw")) {
        (None, None) => "-".into(),
        (p50, p99) => format!("{} / {}", fmt_ratio(p50), fmt_ratio(p99)),
    }
}

pub(crate) fn print_table(rows: &[Row]) {
    print_table_headed(rows, "vs raw actix (send)");
}

/// [`print_table`] with another heading for the `ratio` column: the
/// cluster bench holds its rows to other baselines than raw actix.
pub(crate) fn print_table_headed(rows: &[Row], ratio_header: &str) {
    let headers = [
        "name",
        "n",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "RSS MiB",
        ratio_header,
        "vs actix do_send",
        "target",
        "result",
        "other CPU s",
        "p50 / p99 vs raw",
    ];
    let cells: Vec<[String; 12]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                fmt_rate(Some(r.n as f64)),
                fmt_rate(r.msgs_per_s),
                fmt_opt(r.p50_us, 1),
                fmt_opt(r.p99_us, 1),
                fmt_opt(r.rss_mib, 1),
                fmt_ratio(r.ratio),
                fmt_ratio(r.ratio_do_send),
                r.target.unwrap_or("-").to_owned(),
                match r.pass {
                    Some(true) => "PASS".into(),
                    Some(false) => "MISS".into(),
                    None => "-".into(),
                },
                fmt_opt(r.extra.get("other_cpu_s").and_then(Value::as_f64), 2),
                fmt_latency_ratios(r),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i > 0 {
                s.push_str("  ");
            }
            // Text columns left-aligned, numbers right-aligned.
            if i == 0 || i == 8 || i == 9 {
                let _ = write!(s, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(s, "{}{c}", " ".repeat(pad));
            }
        }
        s.trim_end().to_owned()
    };
    let head: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let header = line(&head);
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    for row in &cells {
        println!("{}", line(row));
    }
}

/// The lines printed under the table: what the columns mean and how busy
/// the machine was.
pub(crate) fn notes(
    opts: &Opts,
    started: Instant,
    load_before: &str,
    other_cpu: Option<f64>,
) -> Vec<String> {
    let (reps, k) = (opts.reps, opts.producers);
    let amqp = match opts.amqp_reps() {
        r if r == reps => String::new(),
        1 => " (amqp rows: 1 run)".to_owned(),
        r => format!(" (amqp rows: {r} runs)"),
    };
    vec![
        format!("bus and actix rows run inside {RUNTIME_NOTE}: bus actors on the bus's 2 arbiters, producers are tasks on the system thread"),
        format!("throughput rows: median of {reps} runs{amqp}, a bus row's runs interleaved with its baselines' (every run's rate is in the JSON 'runs'); pipelined rows: {k} pusher tasks; seq rows: one push awaited at a time"),
        "vs raw actix (send) = rate / raw actix send().await with the same pipelining (x{k} or seq): like with like, the ratio the target uses; the vec-payload row's is against the raw vec-payload row, the 1000q row's against the 1-queue bus row".replace("{k}", &k.to_string()),
        "vs actix do_send = rate / raw actix 2 actors (do_send in batches, no reply per message)".to_owned(),
        format!("latency rows: median p50 and median p99 of {} run{}, raw and bus runs interleaved (every run's p50/p99 is in the JSON 'runs'); push start -> handler entry; the target row is paced by a thread (one push per 100 µs), the 1ms-bursts row by tokio's 1 ms timer", opts.latency_reps, if opts.latency_reps == 1 { "" } else { "s" }),
        format!(
            "p50 / p99 vs raw = {} p50 and p99 / {}'s: same pacer thread, do_send start -> handler entry of a bare actor on its own arbiter (the machine's cross-thread wake-up floor); the target stays absolute",
            opts.latency_row(),
            opts.raw_latency_row(),
        ),
        "rss: growth of VmRSS in a fresh child process after queueing the messages with no listener; its msgs/s is the push-only rate".to_owned(),
        "result = the row against its target; '-' when its baseline did not run (a filtered run): no verdict rather than a miss".to_owned(),
        "other CPU s = CPU time other processes used on this machine during the row (a concurrent build skews results; want ~0)".to_owned(),
        format!(
            "total {:.1} s; load average before {load_before}, after {}; other processes used {} CPU-s during the run",
            started.elapsed().as_secs_f64(),
            loadavg(),
            fmt_opt(other_cpu, 1),
        ),
    ]
}

/// One JSON line: the spec's fields first, then the extras.
fn to_json_line(row: &Row) -> String {
    let mut fields: Vec<(String, Value)> = vec![
        ("name".into(), json!(row.name)),
        ("msgs_per_s".into(), json!(row.msgs_per_s.map(f64::round))),
        ("p50_us".into(), json!(row.p50_us)),
        ("p99_us".into(), json!(row.p99_us)),
        ("rss_mib".into(), json!(row.rss_mib)),
        ("ratio".into(), json!(row.ratio)),
        ("ratio_do_send".into(), json!(row.ratio_do_send)),
        ("n".into(), json!(row.n)),
        ("target".into(), json!(row.target)),
        ("pass".into(), json!(row.pass)),
        ("runtime".into(), json!(row.runtime)),
    ];
    fields.extend(row.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Writes every row as one JSON line to `path`; exits with 1 if it cannot.
pub(crate) fn write_json(path: &Path, rows: &[Row]) {
    let mut out = String::new();
    for row in rows {
        out.push_str(&to_json_line(row));
        out.push('\n');
    }
    if let Err(e) = std::fs::write(path, out) {
        eprintln!("error: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}
