//! What every row shares: flags, cleanup of the brokers, results, the printed table, targets, pacing, counting and readings of the machine, and the fan-out and round-trip rows of any bus.

pub(crate) mod args;
pub(crate) mod cleanup;
pub(crate) mod fanout;
pub(crate) mod interleave;
pub(crate) mod latency;
pub(crate) mod machine;
pub(crate) mod row;
pub(crate) mod rss;
pub(crate) mod rtt;
pub(crate) mod sink;
pub(crate) mod stats;
pub(crate) mod table;
pub(crate) mod targets;
