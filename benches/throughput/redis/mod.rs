//! The redis driver's rows and their raw baselines, against the broker `scripts/test` starts.
//!
//! Every row runs on the same server (`ACTORBUS_BENCH_REDIS_URL`, default the
//! shared `redis://127.0.0.1:6379/0`) in the same run, each on a stream of
//! its own that it deletes afterwards. Raw baselines use the redis crate
//! directly: best practice (XADD pipelined in batches of 100; XREADGROUP
//! COUNT 100 + one XACK per batch), naive (one awaited XADD per message;
//! one XREADGROUP COUNT 1 + XACK per message), and XADD from 64 concurrent
//! tasks on one multiplexed connection (push only). The ratios and targets
//! of the issue are filled in here, so the rows are `Kind::Raw` and
//! `Kind::Latency` rows that `targets::apply` leaves alone.

use crate::harness::args::Opts;
use crate::harness::row::Row;

/// Every redis row the filter selects.
pub(crate) async fn rows(opts: &Opts) -> Vec<Row> {
    #[cfg(feature = "redis")]
    {
        bus::rows(opts).await
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = opts;
        Vec::new()
    }
}

/// Deletes every key that starts with one of `names` (what a row made and
/// may have left behind).
pub(crate) async fn sweep(names: Vec<String>) {
    #[cfg(feature = "redis")]
    raw::sweep(&names).await;
    #[cfg(not(feature = "redis"))]
    let _ = names;
}

#[cfg(feature = "redis")]
mod batch;
#[cfg(feature = "redis")]
mod bus;
#[cfg(feature = "redis")]
mod patterns;
#[cfg(feature = "redis")]
mod raw;
