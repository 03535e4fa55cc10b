//! The amqp driver's rows and their raw lapin baselines, against the broker
//! `scripts/test` starts: bus rows in `bus`, lapin baselines in `raw`,
//! fan-out and request/reply in `patterns`, targets in `targets::amqp`.

#[cfg(feature = "amqp")]
pub(crate) mod bus;
#[cfg(feature = "amqp")]
mod patterns;
#[cfg(feature = "amqp")]
mod raw;

use crate::harness::args::Opts;
use crate::harness::row::Row;

/// Every amqp row the filter selects (none without the `amqp` feature).
pub(crate) async fn rows(opts: &Opts) -> Vec<Row> {
    #[cfg(feature = "amqp")]
    return bus::rows(opts).await;
    #[cfg(not(feature = "amqp"))]
    {
        let _ = opts;
        Vec::new()
    }
}

/// Deletes the queues `<name>` and `<name>.dead` and the exchange `<name>`
/// of every name (what a row made and may have left behind).
pub(crate) async fn sweep(names: Vec<String>) {
    #[cfg(feature = "amqp")]
    raw::sweep(&bus::url(), &names).await;
    #[cfg(not(feature = "amqp"))]
    let _ = names;
}
