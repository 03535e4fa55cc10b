//! The throughput bench's harness, included by `#[path]` so that this
//! bench's table, medians and machine readings are the same code: flags and
//! environment, one result row, the printed table, counting handled
//! messages, medians, and the CPU time other processes took.

// Each shared file serves the throughput bench whole; this bench uses a part of each.
#![allow(dead_code)]

#[path = "../throughput/harness/args.rs"]
pub(crate) mod args;
#[path = "../throughput/harness/machine.rs"]
pub(crate) mod machine;
#[path = "../throughput/harness/row.rs"]
pub(crate) mod row;
#[path = "../throughput/harness/sink.rs"]
pub(crate) mod sink;
#[path = "../throughput/harness/stats.rs"]
pub(crate) mod stats;
#[path = "../throughput/harness/table.rs"]
pub(crate) mod table;
