//! What the bench made on the shared brokers, deleted on every way out.
//!
//! Rows delete their own queues, streams and keys when they end; a row
//! that panics (an `expect` on a failed push, a broker gone) never gets
//! there, nor does a run stopped with Ctrl-C or SIGTERM. So every name a
//! row makes on a broker is also recorded here when it is made, and one
//! [`Guard`] in `main` deletes them all: when `main` returns, when a panic
//! unwinds out of it (a panic in a row's task reaches `main` through the
//! task's `JoinHandle`), and on SIGINT or SIGTERM (then the process exits
//! with 130 or 143). Deleting what a row already deleted is a no-op.

use std::sync::Mutex;
use std::time::Duration;

/// One thing a row made on a broker (a driver's variant is never made
/// without that driver's feature).
#[derive(Clone, Debug)]
#[cfg_attr(not(all(feature = "amqp", feature = "redis")), allow(dead_code))]
pub(crate) enum Made {
    /// An amqp queue name: the queue, its `.dead` queue (the bus declares
    /// one beside every queue) and an exchange of that name (a topic's).
    Amqp(String),
    /// A redis stream name: every key that starts with it (its
    /// `.delayed` and `.dead` keys, the streams `<topic>.<group>` of a
    /// topic's groups).
    Redis(String),
}

/// Every name recorded and not swept yet.
static MADE: Mutex<Vec<Made>> = Mutex::new(Vec::new());

/// Longest wait for the brokers while sweeping: a broker that is down
/// must not keep a failed run from exiting.
const SWEEP_LIMIT: Duration = Duration::from_secs(30);

/// Records `made`, to be deleted by [`sweep`] if its row does not.
#[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
pub(crate) fn record(made: Made) {
    MADE.lock().unwrap_or_else(|p| p.into_inner()).push(made);
}

/// Deletes everything recorded when dropped, also while a panic unwinds.
#[must_use = "the sweep runs when the guard is dropped"]
pub(crate) struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        sweep();
    }
}

/// The guard of the whole run; also sweeps and exits on SIGINT and SIGTERM.
pub(crate) fn guard() -> Guard {
    on_signals();
    Guard(())
}

/// Deletes every recorded name, on a thread of its own with a runtime of
/// its own: it may run while a panic unwinds, or inside another runtime.
pub(crate) fn sweep() {
    let made = std::mem::take(&mut *MADE.lock().unwrap_or_else(|p| p.into_inner()));
    if made.is_empty() {
        return;
    }
    let count = made.len();
    let swept = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the sweep's runtime");
        runtime.block_on(async { tokio::time::timeout(SWEEP_LIMIT, delete(made)).await })
    })
    .join();
    match swept {
        Ok(Ok(())) => eprintln!("  cleanup: deleted what {count} bench names left on the brokers"),
        Ok(Err(_)) => eprintln!("  cleanup: brokers did not answer within {SWEEP_LIMIT:?}"),
        Err(_) => eprintln!("  cleanup: the sweep panicked"),
    }
}

/// Deletes `made` on each broker it names.
async fn delete(made: Vec<Made>) {
    let (amqp, redis): (Vec<_>, Vec<_>) =
        made.into_iter().partition(|m| matches!(m, Made::Amqp(_)));
    let names = |made: Vec<Made>| -> Vec<String> {
        made.into_iter()
            .map(|m| match m {
                Made::Amqp(name) | Made::Redis(name) => name,
            })
            .collect()
    };
    crate::amqp::sweep(names(amqp)).await;
    crate::redis::sweep(names(redis)).await;
}

/// Sweeps and exits on SIGINT (Ctrl-C) or SIGTERM, from a thread of its own.
fn on_signals() {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the signal watcher's runtime");
        let code = runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => 130,
                _ = term.recv() => 143,
            }
        });
        eprintln!("  interrupted: deleting what the bench made on the brokers ...");
        sweep();
        std::process::exit(code);
    });
}
