//! Rows whose runs alternate, throughput and latency rows alike: run 1 of
//! every row of a group, then run 2 of every row (starting one row further
//! on), and so on. A bus row and its raw baseline
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

/// A group of rows measured together, in the order added.
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
    /// median run (see [`run_with`](Self::run_with)).
    pub(crate) async fn run(self, reps: usize) -> Vec<Row> {
        self.run_with(reps, median_row).await
    }

    /// Runs every row `reps` times, alternating, and sums each row up from
    /// its runs with `summarise` (a throughput row's median run, a latency
    /// row's median percentiles). Each run carries the CPU time other
    /// processes took during it; the summed-up row, the sum over its runs.
    pub(crate) async fn run_with(
        mut self,
        reps: usize,
        summarise: fn(Vec<Row>) -> Row,
    ) -> Vec<Row> {
        let reps = reps.max(1);
        let names: Vec<String> = self.rows.iter().map(|(name, _)| name.clone()).collect();
        let mut runs: Vec<(Vec<Row>, Option<f64>)> =
            self.rows.iter().map(|_| (Vec::new(), Some(0.0))).collect();
        for rep in 1..=reps {
            // Each run of the group starts one row further on, so that no
            // row always follows the same one: what a row leaves the
            // broker to do (freeing a deleted queue's messages) lands on a
            // different row each time, not always on the next one.
            let order: Vec<usize> = (0..names.len())
                .map(|i| (i + rep - 1) % names.len())
                .collect();
            if !names.is_empty() {
                let shown: Vec<&str> = order.iter().map(|&i| names[i].as_str()).collect();
                eprintln!(
                    "  {} (interleaved, run {rep}/{reps}) ...",
                    shown.join(" | ")
                );
            }
            for i in order {
                let (run, (rows, cpu)) = (&mut self.rows[i].1, &mut runs[i]);
                let snap = CpuSnap::now();
                let row = run().await;
                let other = snap.and_then(CpuSnap::foreign_since);
                *cpu = cpu.zip(other).map(|(sum, more)| sum + more);
                rows.push(with_other_cpu(row, other));
                settle_down().await;
            }
        }
        runs.into_iter()
            .map(|(rows, cpu)| with_other_cpu(summarise(rows), cpu))
            .collect()
    }
}
