//! Ports for the tests' private brokers.
//!
//! A port from `bind(0)` lies in the kernel's ephemeral range, where any
//! socket of any test may take it between the moment it is handed out and
//! the moment the broker binds it: a client's `connect` (so the broker fails
//! to start, or to restart on the same port after a kill) or another test's
//! `bind(0)` listener (so "the port is open" is true of the wrong server).
//! Ports handed out here lie below that range, are checked free on every
//! interface, and are never handed out twice by one process.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// The range ports are taken from: below Linux's default ephemeral range
/// (32768–60999) and above the well-known and registered services this
/// machine runs (5432, 5672, 6379, 15672, 25672 are refused by the bind
/// check anyway when they listen).
const RANGE: std::ops::Range<u16> = 20_000..32_000;

/// Ports this process handed out; a node that was killed keeps its port
/// for its restart, so none is handed out again.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port nobody listens on now and no test of this process was given.
///
/// The search starts at a place that depends on the process id, so two
/// test processes in a row do not walk the same ports.
pub fn free_port() -> u16 {
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    let span = u32::from(RANGE.end - RANGE.start);
    let offset = (std::process::id().wrapping_mul(7919) + given.len() as u32 * 13) % span;
    for step in 0..span {
        let port = RANGE.start + ((offset + step) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        // Free on every interface: an Erlang distribution listener binds
        // 0.0.0.0, redis binds 127.0.0.1.
        if TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port in {RANGE:?}");
}
