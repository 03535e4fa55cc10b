//! Throughput rows whose runs alternate: run 1 of every row of a group,
//! then run 2 of every row, and so on. A bus row and its raw baseline
//! then meet the same slow spells of the machine (a busy neighbour, the
//! broker's own housekeeping), so the ratio between them holds where
//! back-to-back blocks of runs would each catch a different spell.

use std::future::Future;
use std::pin::Pin;

use crate::harness::args::Opts;
use crate::harness::machine::{with_other_cpu, CpuSnap};
use crate::harness::row::Row;
use crate::harness::sink::settle_down;
use crate::harness::stats::median_row;

/// One run of a row.
type Run<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Row> + 'a>> + 'a>;

/// A group of throughput rows measured together, in the order added.
pub(crate) struct Interleaved<'a> {
    opts: &'a Opts,
    rows: Vec<(String, Run<'a>)>,
}

impl<'a> Interleaved<'a> {
    pub(crate) fn new(opts: &'a Opts) -> Self {
        Interleaved {
            opts,
            rows: Vec::new(),
        }
    }

    /// Adds the row `name` (if the filter selects it), measured by `run`.
    pub(crate) fn row<F, Fut>(self, name: &str, run: F) -> Self
    where
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Row> + 'a,
    {
        let wanted = self.opts.wants(name);
        self.row_if(wanted, name, run)
    }

    /// Adds the row `name` if `wanted`, measured by `run`.
    pub(crate) fn row_if<F, Fut>(mut self, wanted: bool, name: &str, mut run: F) -> Self
    where
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Row> + 'a,
    {
        if wanted {
            self.rows
                .push((name.to_owned(), Box::new(move || Box::pin(run()))));
        }
        self
    }

    /// Runs every row `reps` times, alternating, and keeps each row's
    /// median run; its `other CPU s` sums what other processes took during
    /// its own runs.
    pub(crate) async fn run(mut self, reps: usize) -> Vec<Row> {
        if !self.rows.is_empty() {
            let names: Vec<&str> = self.rows.iter().map(|(name, _)| name.as_str()).collect();
            eprintln!("  {} (interleaved) ...", names.join(" | "));
        }
        let mut runs: Vec<(Vec<Row>, Option<f64>)> =
            self.rows.iter().map(|_| (Vec::new(), Some(0.0))).collect();
        for _ in 0..reps.max(1) {
            for ((_, run), (rows, cpu)) in self.rows.iter_mut().zip(runs.iter_mut()) {
                let snap = CpuSnap::now();
                rows.push(run().await);
                *cpu = cpu
                    .zip(snap.and_then(CpuSnap::foreign_since))
                    .map(|(sum, more)| sum + more);
                settle_down().await;
            }
        }
        runs.into_iter()
            .map(|(rows, cpu)| with_other_cpu(median_row(rows), cpu))
            .collect()
    }
}
