//! `actorbus stats QUEUE… [--watch]`: counts of queues, once or as a live
//! table with the rates that successive counts honestly give.
//!
//! A queue's stats are gauges (ready, in flight, delayed, dead), not
//! counters of pushes and acknowledgements, so the rates of pushes and of
//! acknowledgements on their own cannot be derived from them: a push and an
//! acknowledgement in the same interval leave every gauge as it was. What
//! successive counts do give is the *net* rate, the change of all messages
//! held (ready + in flight + delayed + dead) per second, which is pushes
//! minus acknowledgements (minus purges), and the change of `dead` per
//! second, which is dead-lettering minus redrives and purges of the dead
//! letters. The exact per-process counters are the `metrics` feature's
//! `actorbus_pushed_total` and `actorbus_acked_total`.

use std::io::IsTerminal;
use std::time::{Instant, SystemTime};

use actorbus::{Bus, QueueStats};
use futures_util::future::try_join_all;
use serde::Serialize;

use crate::args::StatsArgs;
use crate::connect::show_duration;
use crate::failure::Failure;
use crate::output::{self, Table};

/// The stats of every queue, in the order given.
async fn sample(bus: &Bus, queues: &[String]) -> Result<Vec<QueueStats>, Failure> {
    let each = queues.iter().map(|queue| async move {
        (bus.stats(queue).await).map_err(Failure::doing(format!("cannot count `{queue}`")))
    });
    try_join_all(each).await
}

/// Prints the stats once, or keeps redrawing them with `--watch`.
pub(crate) async fn run(bus: &Bus, args: StatsArgs, json: bool) -> Result<(), Failure> {
    if args.watch {
        return watch(bus, &args, json).await;
    }
    let stats = sample(bus, &args.queues).await?;
    if json {
        let rows: Vec<Row<'_>> = (args.queues.iter().zip(&stats))
            .map(|(queue, stats)| Row { queue, stats })
            .collect();
        output::print_json(&rows)
    } else {
        let mut table = Table::new(&COLUMNS);
        for (queue, stats) in args.queues.iter().zip(&stats) {
            table.row(row_cells(queue, stats));
        }
        output::print(&table.render())
    }
}

/// The columns of the plain table.
const COLUMNS: [&str; 6] = [
    "queue",
    "ready",
    "in flight",
    "delayed",
    "dead",
    "listeners",
];

fn row_cells(queue: &str, stats: &QueueStats) -> Vec<String> {
    let counts = [
        stats.ready,
        stats.in_flight,
        stats.delayed,
        stats.dead,
        stats.listeners,
    ];
    std::iter::once(queue.to_owned())
        .chain(counts.iter().map(u64::to_string))
        .collect()
}

/// A queue's stats as JSON: its name, then `QueueStats` as the library
/// serializes it.
#[derive(Serialize)]
struct Row<'a> {
    queue: &'a str,
    #[serde(flatten)]
    stats: &'a QueueStats,
}

/// One `--watch --json` line: when, and every queue with its rates
/// (`null` on the first sample, which has nothing to compare with).
#[derive(Serialize)]
struct Sample<'a> {
    at: String,
    queues: Vec<WatchRow<'a>>,
}

#[derive(Serialize)]
struct WatchRow<'a> {
    #[serde(flatten)]
    row: Row<'a>,
    net_per_sec: Option<f64>,
    dead_per_sec: Option<f64>,
}

/// Every message a queue holds, in any state: what pushes add to and
/// acknowledgements take from.
fn held(stats: &QueueStats) -> u64 {
    stats.ready + stats.in_flight + stats.delayed + stats.dead
}

/// Change per second from `before` to `now` over `seconds`.
fn rate(before: u64, now: u64, seconds: f64) -> f64 {
    (now as f64 - before as f64) / seconds
}

/// Samples every `--interval` until Ctrl-C: on a terminal the table is
/// redrawn in place; elsewhere each sample is appended (as a JSON line
/// with `--json`).
async fn watch(bus: &Bus, args: &StatsArgs, json: bool) -> Result<(), Failure> {
    let redraw = std::io::stdout().is_terminal() && !json;
    let mut ticks = tokio::time::interval(args.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<(Instant, Vec<QueueStats>)> = None;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            _ = ticks.tick() => {}
        }
        let stats = sample(bus, &args.queues).await?;
        let now = Instant::now();
        let rates: Vec<Option<(f64, f64)>> = match &previous {
            Some((then, before)) => {
                let seconds = now.duration_since(*then).as_secs_f64();
                (before.iter().zip(&stats))
                    .map(|(b, s)| {
                        let net = rate(held(b), held(s), seconds);
                        Some((net, rate(b.dead, s.dead, seconds)))
                    })
                    .collect()
            }
            None => vec![None; stats.len()],
        };
        let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        if json {
            let queues = (args.queues.iter().zip(&stats).zip(&rates))
                .map(|((queue, stats), rates)| WatchRow {
                    row: Row { queue, stats },
                    net_per_sec: rates.map(|(net, _)| net),
                    dead_per_sec: rates.map(|(_, dead)| dead),
                })
                .collect();
            output::print_json_line(&Sample { at, queues })?;
        } else {
            let mut columns = COLUMNS.to_vec();
            columns.extend(["net/s", "dead/s"]);
            let mut table = Table::new(&columns);
            for ((queue, stats), rates) in args.queues.iter().zip(&stats).zip(&rates) {
                let mut cells = row_cells(queue, stats);
                cells.extend(match rates {
                    Some((net, dead)) => [signed(*net), signed(*dead)],
                    None => ["-".to_owned(), "-".to_owned()],
                });
                table.row(cells);
            }
            let clear = if redraw { "\x1b[H\x1b[2J" } else { "" };
            output::print(&format!(
                "{clear}{at}  every {}  (net/s: pushes minus acks; Ctrl-C stops)\n{}{}",
                show_duration(args.interval),
                table.render(),
                if redraw { "" } else { "\n" },
            ))?;
        }
        previous = Some((now, stats));
    }
}

/// A rate with its sign and one decimal: `+12.0`, `-3.5`, `0.0`.
fn signed(rate: f64) -> String {
    if rate.abs() < 0.05 {
        "0.0".to_owned()
    } else {
        format!("{rate:+.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_changes_per_second() {
        assert_eq!(rate(10, 30, 2.0), 10.0);
        assert_eq!(rate(30, 10, 0.5), -40.0);
        assert_eq!(signed(10.0), "+10.0");
        assert_eq!(signed(-3.46), "-3.5");
        assert_eq!(signed(0.01), "0.0");
    }

    #[test]
    fn held_counts_every_state() {
        let mut stats = QueueStats::default();
        stats.ready = 1;
        stats.in_flight = 2;
        stats.delayed = 4;
        stats.dead = 8;
        stats.listeners = 100;
        assert_eq!(held(&stats), 15);
    }
}
