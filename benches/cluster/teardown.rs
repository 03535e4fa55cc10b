//! Every exit path tears the private clusters down and deletes the shared
//! Redis's bench keys: they are owned by the rows' futures, so a normal
//! return and a panic drop them, and an interrupt (SIGINT, SIGTERM,
//! SIGHUP) cancels the future, which drops them too.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

/// Runs `rows` unless a signal comes first; `None` when one did (the rows'
/// future, and so every cluster and key guard it owns, is dropped by then).
pub(crate) async fn unless_interrupted<T>(rows: impl Future<Output = T>) -> Option<T> {
    let mut signals = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ]
    .map(|kind| signal(kind).expect("install a signal handler"));
    let [int, term, hup] = &mut signals;
    tokio::select! {
        rows = rows => Some(rows),
        _ = int.recv() => None,
        _ = term.recv() => None,
        _ = hup.recv() => None,
    }
}

/// Runs a blocking start (a cluster's processes and `rabbitmqctl` calls)
/// off the system's thread, so that a signal is still seen meanwhile. If
/// the caller is cancelled, the start still finishes on its thread and what
/// it started is dropped there; dropping the actix system waits for it.
pub(crate) async fn blocking<T: Send + 'static>(start: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(start).await {
        Ok(started) => started,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a cluster start did not finish: {e}"),
    }
}

/// Deletes the keys of the bench's queues on the shared Redis when dropped,
/// whatever the row did: the stream, its delay set and dead letters (and
/// theirs). Never panics (it may run while a panic unwinds).
pub(crate) struct SharedKeys {
    /// Port of the shared Redis.
    pub(crate) port: u16,
    /// The queues whose keys go.
    pub(crate) queues: Vec<String>,
}

impl Drop for SharedKeys {
    fn drop(&mut self) {
        let mut keys = Vec::new();
        for queue in &self.queues {
            for suffix in ["", ".delayed", ".dead", ".dead.delayed"] {
                keys.push(format!("{queue}{suffix}"));
            }
        }
        let deleted = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "DEL"])
            .args(&keys)
            .output();
        if !deleted.is_ok_and(|out| out.status.success()) {
            eprintln!("warning: could not delete the bench's keys on the shared Redis: {keys:?}");
        }
    }
}
