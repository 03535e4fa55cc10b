//! Fault injection for supervision tests (cargo feature `test-util`): not for production.
//!
//! These make a queue's channel actor panic, so that a test can check that
//! its supervisor restarts it (counted in [`QueueStats::restarts`](crate::QueueStats::restarts))
//! with nothing lost, on any driver.

use crate::bus::Bus;
use crate::error::Result;

/// Makes `queue`'s channel actor panic now (starting it if needed), and
/// returns once the panic happened.
///
/// # Errors
///
/// [`Error::Closed`](crate::Error::Closed) after shutdown.
pub async fn crash_channel(bus: &Bus, queue: &str) -> Result<()> {
    bus.driver().crash(queue, None).await
}

/// Makes `queue`'s channel actor panic the next time it runs `handler`:
/// one of `subscribe`, `settle`, `unsubscribe`, `detached`,
/// `stop_listeners`, `stats`, `purge`, `receive`, `drain`, `event` (a
/// message from its driver), `spawned` (the outcome of its backend's I/O),
/// `run_later` or `timer`.
///
/// # Errors
///
/// [`Error::Closed`](crate::Error::Closed) after shutdown.
pub async fn panic_next(bus: &Bus, queue: &str, handler: &str) -> Result<()> {
    bus.driver().crash(queue, Some(handler.to_owned())).await
}
