//! `Runtime`: where a bus's actors live — an actix system of the bus's own, whoever calls it.
//!
//! Inside `#[actix::main]`, actix-web, a plain tokio runtime or a plain
//! thread alike, the bus starts a system on a thread of its own, so that
//! the application's system stopping (actix-web does on a signal) leaves the
//! bus running until its `shutdown`. The caller only holds `Addr`s and
//! `Send` futures, which work on any executor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use actix::{Arbiter, ArbiterHandle, System};

use crate::error::{Error, Result};

/// The arbiters of one bus, handed out in turn.
///
/// Cloneable so actors can place new actors, without holding the `Runtime`
/// itself: only the bus's last handle may stop the system.
#[derive(Clone)]
pub(crate) struct Arbiters {
    /// One arbiter per core: queues and listeners are spread over them, so
    /// that a busy queue and its listeners use both cores of a small machine.
    handles: Arc<[ArbiterHandle]>,
    /// Round-robin cursor over `handles`.
    next: Arc<AtomicUsize>,
}

impl Arbiters {
    fn new(handles: Vec<ArbiterHandle>) -> Self {
        Arbiters {
            handles: handles.into(),
            next: Arc::default(),
        }
    }

    /// The next arbiter in turn.
    pub(crate) fn next(&self) -> &ArbiterHandle {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handles[i % self.handles.len()]
    }
}

/// The arbiters of one bus, and the system thread when the bus owns one.
pub(crate) struct Runtime {
    arbiters: Arbiters,
    /// The bus's system and its thread; taken (and stopped) on shutdown.
    owned: Mutex<Option<(System, JoinHandle<()>)>>,
}

impl Runtime {
    /// Starts the bus's own actix system on a thread of its own, with one
    /// arbiter per core.
    ///
    /// Always its own, even inside an application's system: actix-web stops
    /// its whole system on SIGTERM or Ctrl-C, and a bus living there would
    /// lose its actors before `shutdown` could drain them.
    pub(crate) fn start() -> Result<Runtime> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("actorbus-system".to_owned())
            .spawn(move || {
                let system = System::new();
                let arbiters: Vec<Arbiter> = (0..workers).map(|_| Arbiter::new()).collect();
                let handles = arbiters.iter().map(Arbiter::handle).collect::<Vec<_>>();
                // The receiver only goes away if `start` itself failed.
                let _ = tx.send((System::current(), handles));
                if let Err(error) = system.run() {
                    tracing::error!(%error, "actorbus system stopped with an error");
                }
                for arbiter in arbiters {
                    arbiter.stop();
                    let _ = arbiter.join();
                }
            })
            .map_err(Error::backend)?;
        let (system, arbiters) = rx.recv().map_err(Error::backend)?;
        Ok(Runtime {
            arbiters: Arbiters::new(arbiters),
            owned: Mutex::new(Some((system, thread))),
        })
    }

    pub(crate) fn arbiters(&self) -> &Arbiters {
        &self.arbiters
    }

    /// Stops the bus's system (its thread then stops the arbiters).
    ///
    /// Joining is left to the system thread itself: a shutdown may be called
    /// from inside one of these arbiters, which must not wait for itself.
    pub(crate) fn stop(&self) {
        let owned = self.owned.lock().map(|mut o| o.take()).unwrap_or(None);
        if let Some((system, _thread)) = owned {
            system.stop();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}
