//! `actorbus dead peek | redrive | purge QUEUE`: the dead letters of a
//! queue, `<queue>.dead`.

use std::io::IsTerminal;

use actorbus::Bus;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Serialize;

use crate::args::{PurgeArgs, RedriveArgs};
use crate::confirm;
use crate::failure::Failure;
use crate::output;

/// Dead letters moved per `Bus::redrive` call: a progress step, and the
/// most a Ctrl-C or an error can leave unreported.
const BATCH: u64 = 100;

/// `dead purge --json`: how many dead letters were dropped.
#[derive(Serialize)]
struct Purged<'a> {
    queue: &'a str,
    purged: u64,
}

/// `dead redrive --json`: how many dead letters were moved back.
#[derive(Serialize)]
struct Redriven<'a> {
    queue: &'a str,
    redriven: u64,
}

/// The dead-letter queue of `queue`.
pub(crate) fn dead_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

/// Drops the dead letters of the queue, after asking.
pub(crate) async fn purge(bus: &Bus, args: PurgeArgs, json: bool) -> Result<(), Failure> {
    let queue = &args.queue;
    let dead = dead_queue(queue);
    let stats = bus.stats(queue).await.map_err(Failure::doing(format!(
        "cannot count the dead letters of `{queue}`"
    )))?;
    let purged = if stats.dead == 0 {
        0
    } else {
        confirm::ask(
            args.yes,
            &format!(
                "Drop {} of `{queue}` ({dead})?",
                output::count(stats.dead, "dead letter")
            ),
        )?;
        bus.purge(&dead)
            .await
            .map_err(Failure::doing(format!("cannot purge `{dead}`")))?
    };
    if json {
        output::print_json(&Purged { queue, purged })
    } else {
        output::print(&format!(
            "dropped {} of `{queue}`\n",
            output::count(purged, "dead letter")
        ))
    }
}

/// Moves dead letters back to the queue in batches, after asking, with a
/// progress bar on a terminal when there is more than one batch.
pub(crate) async fn redrive(bus: &Bus, args: RedriveArgs, json: bool) -> Result<(), Failure> {
    let queue = &args.queue;
    let stats = bus.stats(queue).await.map_err(Failure::doing(format!(
        "cannot count the dead letters of `{queue}`"
    )))?;
    let target = args.max.unwrap_or(stats.dead);
    let mut moved = 0;
    if stats.dead > 0 && target > 0 {
        let all = output::count(stats.dead, "dead letter");
        let some = match args.max {
            Some(max) if max < stats.dead => format!("{max} of the {all}"),
            _ => all,
        };
        confirm::ask(
            args.yes,
            &format!("Move {some} of `{queue}` back to `{queue}`?"),
        )?;
        let bar = progress(target.min(stats.dead));
        while moved < target {
            let batch = BATCH.min(target - moved);
            let step = bus.redrive(queue, batch as usize).await.map_err(|error| {
                bar.abandon();
                let doing = format!("cannot redrive `{queue}` ({moved} moved before this)");
                Failure::doing(doing)(error)
            })?;
            moved += step;
            bar.inc(step);
            if step < batch {
                break;
            }
        }
        bar.finish_and_clear();
    }
    if json {
        output::print_json(&Redriven {
            queue,
            redriven: moved,
        })
    } else {
        output::print(&format!(
            "moved {} of `{queue}` back to `{queue}`\n",
            output::count(moved, "dead letter")
        ))
    }
}

/// A progress bar on standard error for `total` dead letters, drawn only
/// when standard error is a terminal and there is more than one batch.
fn progress(total: u64) -> ProgressBar {
    if total <= BATCH || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("redriving {bar:40} {pos}/{len} ({rate}, {eta} left)")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0}/s", state.per_sec());
            },
        );
    bar.set_style(style);
    bar
}
