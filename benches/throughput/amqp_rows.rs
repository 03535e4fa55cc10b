//! The amqp driver's rows and their raw baselines, against the broker `scripts/test` starts.

use crate::args::Opts;
use crate::row::Row;

/// Every amqp row the filter selects (none until the driver lands).
pub(crate) async fn rows(opts: &Opts) -> Vec<Row> {
    let _ = opts;
    Vec::new()
}
