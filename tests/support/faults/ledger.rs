//! The ledger of one case: confirmed pushes, handled indexes, and the case's figures and checks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actorbus::Error;

use super::{MARGIN, PUSH_TIMEOUT, SETTLE};

/// What a case pushed and handled.
#[derive(Default)]
pub struct Ledger {
    pub confirmed: Mutex<Vec<u32>>,
    pub handled: Mutex<Vec<u32>>,
    pub timeouts: AtomicU32,
    pub errors: Mutex<Vec<String>>,
    pub slowest: Mutex<Duration>,
}

impl Ledger {
    pub fn record_push(&self, i: u32, took: Duration, result: Option<actorbus::Result<()>>) {
        {
            let mut slowest = self.slowest.lock().unwrap();
            *slowest = (*slowest).max(took);
        }
        match result {
            Some(Ok(())) => self.confirmed.lock().unwrap().push(i),
            Some(Err(Error::Timeout)) => {
                self.timeouts.fetch_add(1, Ordering::SeqCst);
            }
            Some(Err(e)) => self.errors.lock().unwrap().push(format!("push {i}: {e}")),
            None => self
                .errors
                .lock()
                .unwrap()
                .push(format!("push {i} hung for {took:?}")),
        }
    }

    pub fn record_handled(&self, i: u32) {
        self.handled.lock().unwrap().push(i);
    }

    pub fn confirmed(&self) -> Vec<u32> {
        self.confirmed.lock().unwrap().clone()
    }

    pub fn handled(&self) -> Vec<u32> {
        self.handled.lock().unwrap().clone()
    }
}

/// Lost (confirmed, never handled) and duplicates (handlings beyond the first).
pub fn tally(confirmed: &[u32], handled: &[u32]) -> (Vec<u32>, u32) {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for &i in handled {
        *counts.entry(i).or_default() += 1;
    }
    let lost = confirmed
        .iter()
        .copied()
        .filter(|i| !counts.contains_key(i))
        .collect();
    (lost, counts.values().map(|c| c - 1).sum())
}

/// Waits (bounded by [`SETTLE`]) until every confirmed index was handled.
pub async fn until_handled(ledger: &Ledger, confirmed: &[u32]) {
    let start = Instant::now();
    while start.elapsed() < SETTLE && !tally(confirmed, &ledger.handled()).0.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One case's figures.
pub struct Report {
    pub pushed: usize,
    pub timeouts: u32,
    pub handled: usize,
    pub lost: usize,
    pub duplicates: u32,
    pub slowest: Duration,
}

pub fn report(
    case: &str,
    driver: &str,
    confirmed: &[u32],
    handled: &[u32],
    slowest: Duration,
    timeouts: u32,
) -> Report {
    let (lost, duplicates) = tally(confirmed, handled);
    let report = Report {
        pushed: confirmed.len(),
        timeouts,
        handled: handled.len(),
        lost: lost.len(),
        duplicates,
        slowest,
    };
    eprintln!(
        "fault | {case} | {driver} | pushed {} (timed out {}) | handled {} | lost {} | duplicates {} | slowest push {:.1} s",
        report.pushed,
        report.timeouts,
        report.handled,
        report.lost,
        report.duplicates,
        report.slowest.as_secs_f64()
    );
    assert!(
        lost.is_empty(),
        "{case}: lost {} confirmed pushes, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    report
}

pub fn check(case: &str, report: &Report, max_duplicates: u32) {
    assert!(
        report.slowest <= PUSH_TIMEOUT + MARGIN,
        "{case}: a push took {:?}, past push_timeout {PUSH_TIMEOUT:?} + {MARGIN:?}",
        report.slowest
    );
    assert!(
        report.duplicates <= max_duplicates,
        "{case}: {} duplicates, more than {max_duplicates}",
        report.duplicates
    );
}
