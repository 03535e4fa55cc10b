//! Ledgers of indexed messages (`indexed(i)` for `i` in `0..n`): waiting
//! until every index was handled, and counting what was lost or handled
//! twice.

use std::collections::HashMap;
use std::time::Duration;

/// What a run handled, against the `n` messages it sent.
pub struct Tally {
    /// Indexes never handled.
    pub lost: Vec<u32>,
    /// Handlings beyond the first, over all indexes.
    pub duplicates: u32,
}

/// Counts `handled` against `0..n`.
pub fn tally(n: u32, handled: impl IntoIterator<Item = u32>) -> Tally {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for i in handled {
        *counts.entry(i).or_default() += 1;
    }
    Tally {
        lost: (0..n).filter(|i| !counts.contains_key(i)).collect(),
        duplicates: counts.values().map(|c| c - 1).sum(),
    }
}

/// Polls `handled` until it holds every index of `0..n`; `false` if that
/// did not happen within `limit`.
pub async fn until_all_handled(n: u32, limit: Duration, handled: impl Fn() -> Vec<u32>) -> bool {
    let all = || {
        let mut seen = vec![false; n as usize];
        for i in handled() {
            if let Some(s) = seen.get_mut(i as usize) {
                *s = true;
            }
        }
        seen.iter().all(|s| *s)
    };
    tokio::time::timeout(limit, async {
        while !all() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok()
}
