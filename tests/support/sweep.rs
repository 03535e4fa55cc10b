//! What a conformance case made on a shared broker, deleted when the case
//! ends, passed or panicked.
//!
//! A case names its queues and topics with [`unique_queue`](super::unique_queue);
//! while a [`Sweep`] is live on the thread that runs the case, every name
//! handed out there is kept, and dropping the sweep deletes what the driver
//! made under those names:
//! - redis: every key that starts with one (the queue's stream, `.delayed`,
//!   `.dead`, a topic's groups), at once;
//! - amqp: the queue, its dead letters and a topic's exchange at once; what
//!   else starts with a name (a topic's group queues, wait and lease
//!   queues) once the last case of the module ended, from `rabbitmqctl`'s
//!   lists (a run filtered down to some cases leaves those, and the wait
//!   and lease queues expire on their own);
//! - memory: nothing outlives the bus.

#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

thread_local! {
    /// The names handed out on this thread since its sweep started, or
    /// `None` while no sweep is live here.
    static HANDED_OUT: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Keeps `name`, when a sweep is live on this thread.
pub(super) fn record(name: &str) {
    HANDED_OUT.with(|names| {
        if let Some(names) = names.borrow_mut().as_mut() {
            names.push(name.to_owned());
        }
    });
}

/// The cases of one driver's conformance module: how many, how many
/// ended, and the names they were handed (swept again after the last).
pub struct Cases {
    count: usize,
    ended: AtomicUsize,
    names: Mutex<Vec<String>>,
}

impl Cases {
    /// A module of `count` cases.
    pub const fn new(count: usize) -> Cases {
        Cases {
            count,
            ended: AtomicUsize::new(0),
            names: Mutex::new(Vec::new()),
        }
    }
}

/// Deletes, when dropped, what its case made on driver `driver` (a
/// conformance module's name: `memory`, `amqp`, `redis`).
pub struct Sweep {
    driver: &'static str,
    cases: &'static Cases,
}

impl Sweep {
    /// Starts keeping the names handed out on this thread, for a case of
    /// `cases`.
    pub fn start(driver: &'static str, cases: &'static Cases) -> Sweep {
        HANDED_OUT.with(|names| *names.borrow_mut() = Some(Vec::new()));
        Sweep { driver, cases }
    }

    /// Counts this case as ended; every name the module's cases were
    /// handed when it is the last, else none.
    fn ended(&self, names: &[String]) -> Vec<String> {
        let mut all = self.cases.names.lock().unwrap_or_else(|p| p.into_inner());
        all.extend(names.iter().cloned());
        let ended = self.cases.ended.fetch_add(1, Ordering::AcqRel) + 1;
        if ended == self.cases.count {
            std::mem::take(&mut *all)
        } else {
            Vec::new()
        }
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        let names = HANDED_OUT.with(|names| names.borrow_mut().take().unwrap_or_default());
        match self.driver {
            #[cfg(feature = "redis")]
            "redis" => names.iter().for_each(|name| delete_redis_keys(name)),
            #[cfg(feature = "amqp")]
            "amqp" => delete_amqp(&names, &self.ended(&names)),
            // The memory driver leaves nothing (nor does a driver whose
            // feature is off).
            _ => drop(names),
        }
    }
}

/// Deletes every key of the shared Redis that starts with `name` (the
/// names carry the process id and a clock reading: no other test's keys
/// start with one).
#[cfg(feature = "redis")]
fn delete_redis_keys(name: &str) {
    const DELETE_MATCHING: &str = "local n = 0 \
        for _, key in ipairs(redis.call('KEYS', ARGV[1])) do \
            n = n + redis.call('DEL', key) \
        end \
        return n";
    let pattern = format!("{name}*");
    // Not an assert: a failed sweep must not hide the case's own verdict.
    let swept = std::process::Command::new("redis-cli")
        .args(["-p", "6379", "EVAL", DELETE_MATCHING, "0", &pattern])
        .output();
    if !swept.as_ref().is_ok_and(|out| out.status.success()) {
        eprintln!("sweep: could not delete the Redis keys of {name:?}: {swept:?}");
    }
}

/// Deletes `names`' queues (`<name>`, `.dead`, `.dead.dead`) and topic
/// exchanges on the shared RabbitMQ and, when `all` is not empty, every
/// queue and exchange `rabbitmqctl` lists whose name starts with one of
/// `all`.
#[cfg(feature = "amqp")]
fn delete_amqp(names: &[String], all: &[String]) {
    let mut queues = super::amqp::with_dead_letters(names);
    let mut exchanges = names.to_vec();
    if !all.is_empty() {
        let ours = |listed: &String| all.iter().any(|n| listed.starts_with(n.as_str()));
        queues.extend(rabbitmqctl_names("list_queues").into_iter().filter(ours));
        exchanges.extend(rabbitmqctl_names("list_exchanges").into_iter().filter(ours));
    }
    // A thread and runtime of its own: this runs as a test's future is
    // dropped, inside that test's runtime.
    let swept = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the sweep");
        runtime.block_on(super::amqp::delete(super::amqp::URL, &queues, &exchanges));
    })
    .join();
    if swept.is_err() {
        eprintln!("sweep: deleting the RabbitMQ queues of {names:?} panicked");
    }
}

/// The names `rabbitmqctl <list>` prints (none when it cannot run).
#[cfg(feature = "amqp")]
fn rabbitmqctl_names(list: &str) -> Vec<String> {
    let out = std::process::Command::new("rabbitmqctl")
        .args([list, "-q", "--no-table-headers", "name"])
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        other => {
            eprintln!("sweep: rabbitmqctl {list} failed: {other:?}");
            Vec::new()
        }
    }
}
