//! The fault suite, shared by tests/amqp/faults.rs and tests/redis/faults.rs:
//! each case runs against a PRIVATE broker (never the shared ones) while a
//! producer keeps pushing and a consumer keeps handling, and keeps a ledger:
//! every push that returned `Ok`, every handled index. Lost must be 0,
//! duplicates are counted and bounded, a push may fail only with
//! `Error::Timeout` and never takes much longer than `queue.push_timeout`.
//! Each case prints one line (case, driver, pushed, handled, lost,
//! duplicates, slowest push): the README's "Faults we test" table.
//!
//! The cases run one at a time ([`serial`]): they hurt brokers and the
//! machine, and their timings would disturb each other.

#![allow(dead_code, unreachable_pub)]

mod edges;
mod ledger;
mod outages;
mod processes;
mod traffic;

// Only the amqp and redis test binaries run the cases; the others compile
// the support module too.
#[allow(unused_imports)]
pub use edges::hard_edges;
#[allow(unused_imports)]
pub use outages::{connection_flaps, hung_broker, network_cut};
#[cfg(feature = "redis")]
#[allow(unused_imports)]
pub use processes::slow_handler_with_a_second_process;
#[allow(unused_imports)]
pub use processes::{consumer_child, producer_child, producer_killed};
pub use traffic::Traffic;

use std::time::Duration;

use actorbus::Config;

/// `queue.push_timeout` of every case.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer than `push_timeout` a push may take (a busy machine).
pub const MARGIN: Duration = Duration::from_secs(5);
/// `amqp.prefetch` of the cases: what one lost connection may redeliver.
pub const PREFETCH: u16 = 16;
/// `redis.claim_idle` of the cases: how soon a lost acknowledgement is redelivered.
pub const CLAIM_IDLE: Duration = Duration::from_secs(5);
/// Bound of every wait for the suite to catch up after a fault.
pub const SETTLE: Duration = Duration::from_secs(180);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held for the whole of a case: one case at a time per test binary.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A private broker a case may cut, stop and flap.
pub trait Broker: Sync {
    /// `amqp` or `redis`.
    fn driver(&self) -> &'static str;
    /// The driver's test config on this broker.
    fn base_config(&self) -> Config;
    /// The `ACTORBUS_*` variables that point a process at this broker.
    fn env(&self) -> Vec<(&'static str, String)>;
    /// Its client port on 127.0.0.1.
    fn port(&self) -> u16;
    /// The OS process to SIGSTOP.
    fn pid(&self) -> u32;
    /// Drops every client connection from the server side, `times` times
    /// `every` apart; returns how many connections it dropped in all.
    fn flap(&self, every: Duration, times: u32) -> u64;
}

/// The config of every case on `broker`: its variables over the defaults,
/// `queue.push_timeout` = [`PUSH_TIMEOUT`], `amqp.heartbeat = 5s`,
/// `amqp.prefetch` = [`PREFETCH`], `redis.claim_idle` = [`CLAIM_IDLE`].
pub fn config(broker: &dyn Broker) -> Config {
    let mut config = broker.base_config();
    config.queue.push_timeout = PUSH_TIMEOUT;
    config.queue.shutdown_timeout = Duration::from_secs(10);
    #[cfg(feature = "amqp")]
    {
        config.amqp.heartbeat = Duration::from_secs(5);
        config.amqp.prefetch = PREFETCH;
    }
    #[cfg(feature = "redis")]
    {
        config.redis.claim_idle = CLAIM_IDLE;
    }
    config
}

#[cfg(feature = "amqp")]
impl Broker for crate::support::rabbit_node::RabbitNode {
    fn driver(&self) -> &'static str {
        "amqp"
    }
    fn base_config(&self) -> Config {
        crate::support::amqp::config_at(&self.url())
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ACTORBUS_QUEUE__DRIVER", "amqp".into()),
            ("ACTORBUS_AMQP__URL", self.url()),
        ]
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn pid(&self) -> u32 {
        self.beam_pid()
    }
    fn flap(&self, every: Duration, times: u32) -> u64 {
        self.close_all_connections_every(every, times)
    }
}

#[cfg(feature = "redis")]
impl Broker for crate::support::redis::PrivateRedis {
    fn driver(&self) -> &'static str {
        "redis"
    }
    fn base_config(&self) -> Config {
        crate::support::redis::config_on(&self.url())
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ACTORBUS_QUEUE__DRIVER", "redis".into()),
            ("ACTORBUS_REDIS__URL", self.url()),
        ]
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn pid(&self) -> u32 {
        self.pid().expect("the private redis runs")
    }
    fn flap(&self, every: Duration, times: u32) -> u64 {
        let mut dropped = 0;
        for _ in 0..times {
            let killed =
                crate::support::redis::cli_on(self.port, &["CLIENT", "KILL", "TYPE", "normal"]);
            dropped += killed
                .trim()
                .parse::<u64>()
                .expect("CLIENT KILL answers a count");
            std::thread::sleep(every);
        }
        dropped
    }
}
