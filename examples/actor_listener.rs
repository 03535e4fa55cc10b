//! An actix actor as a listener: `Bus::subscribe` sends it each `Delivery`,
//! and the `HandlerResult` it returns settles the message — `Ok` acknowledges,
//! `Err` has it retried and, after `queue.retry.max_attempts`, dead-lettered.
//!
//! Run with `cargo run --example actor_listener` (on the driver
//! `Config::load()` picks: `./application.conf`, then `ACTORBUS_*`).

use std::time::Duration;

use actix::prelude::*;
use actorbus::{Bus, Delivery, HandlerResult};

/// Counts orders; refuses the ones it cannot parse.
struct OrderBook {
    total_cents: u64,
    done: Option<tokio::sync::oneshot::Sender<u64>>,
}

impl Actor for OrderBook {
    type Context = Context<Self>;
}

impl Handler<Delivery> for OrderBook {
    type Result = HandlerResult;

    fn handle(&mut self, delivery: Delivery, _ctx: &mut Context<Self>) -> HandlerResult {
        let cents: u64 = delivery.as_str()?.parse()?;
        self.total_cents += cents;
        println!(
            "order {} of {cents} cents (attempt {})",
            delivery.id(),
            delivery.attempt()
        );
        if self.total_cents >= 600 {
            if let Some(done) = self.done.take() {
                let _ = done.send(self.total_cents);
            }
        }
        Ok(())
    }
}

#[actix::main]
async fn main() -> actorbus::Result<()> {
    let mut config = actorbus::Config::load()?;
    config.queue.retry.max_attempts = 2;
    config.queue.retry.backoff = Duration::from_millis(10);
    let bus = Bus::connect(config).await?;

    let (done, total) = tokio::sync::oneshot::channel();
    let book = OrderBook {
        total_cents: 0,
        done: Some(done),
    }
    .start();
    let listener = bus.subscribe("orders", book.recipient()).await?;

    for order in ["100", "200", "not a number", "300"] {
        bus.push("orders", order).await?;
    }
    let total = total.await.map_err(|_| actorbus::Error::Closed)?;
    println!("total: {total} cents");

    // The unparseable order was retried once, then moved to `orders.dead`.
    let dead = bus.receive("orders.dead", Duration::from_secs(5)).await?;
    println!(
        "dead letter {:?} after {} attempts: {}",
        dead.as_str()?,
        dead.headers()["x-attempts"],
        dead.headers()["x-error"]
    );

    listener.remove().await?;
    bus.shutdown().await
}
