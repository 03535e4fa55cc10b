//! What the machine and this process are doing, from /proc: CPU time other
//! processes took during a row, the load average, and this process's RSS.

use serde_json::json;

use crate::harness::row::Row;

pub(crate) const MIB: f64 = 1024.0 * 1024.0;

/// Resident set size of this process, in bytes (`VmRSS`, or `VmHWM` for the peak).
pub(crate) fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time of the whole machine and of this process (with its waited-for
/// children), to tell how much CPU other processes took during a row: on a
/// shared 2-core machine a concurrent build skews every number here.
#[derive(Clone, Copy)]
pub(crate) struct CpuSnap {
    machine_busy: u64,
    own: u64,
}

impl CpuSnap {
    /// Clock ticks per second of /proc (USER_HZ; 100 on Linux).
    const HZ: f64 = 100.0;

    pub(crate) fn now() -> Option<CpuSnap> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let busy = cpu
            .iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, v)| v)
            .sum();
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name; utime is field 14.
        let after = own_stat.rsplit_once(')')?.1;
        let fields: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|v| v.parse().ok())
            .collect();
        Some(CpuSnap {
            machine_busy: busy,
            own: fields.iter().sum(),
        })
    }

    /// CPU seconds used by other processes since `self`.
    pub(crate) fn foreign_since(self) -> Option<f64> {
        let now = CpuSnap::now()?;
        let machine = now.machine_busy.saturating_sub(self.machine_busy) as f64;
        let own = now.own.saturating_sub(self.own) as f64;
        Some(((machine - own) / Self::HZ).max(0.0))
    }
}

pub(crate) fn with_foreign_cpu(row: Row, snap: Option<CpuSnap>) -> Row {
    with_other_cpu(row, snap.and_then(CpuSnap::foreign_since))
}

/// Sets `other_cpu_s` to `cpu` seconds, if known.
pub(crate) fn with_other_cpu(row: Row, cpu: Option<f64>) -> Row {
    match cpu {
        Some(cpu) => row.with("other_cpu_s", json!((cpu * 100.0).round() / 100.0)),
        None => row,
    }
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
