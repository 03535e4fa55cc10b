//! A typed queue and an actor: `Queue<Order>` pushes values as JSON, the
//! actor implements `Handler<Typed<Order>>`, returns `Reject` for orders no
//! retry can fix, and a payload that is not an `Order` goes to `orders.dead`
//! at once, without retries.
//!
//! Run with `cargo run --example typed_actor`.

use std::time::Duration;

use actix::prelude::*;
use actorbus::{Bus, HandlerResult, Reject, Typed};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u32,
    cents: u64,
}

/// Adds up orders; rejects those of no value.
struct OrderBook {
    total_cents: u64,
    done: Option<tokio::sync::oneshot::Sender<u64>>,
}

impl Actor for OrderBook {
    type Context = Context<Self>;
}

impl Handler<Typed<Order>> for OrderBook {
    type Result = HandlerResult;

    fn handle(&mut self, order: Typed<Order>, _ctx: &mut Context<Self>) -> HandlerResult {
        if order.cents == 0 {
            // Retrying cannot help: straight to orders.dead.
            return Err(Reject::new(format!("order {} has no value", order.id)).into());
        }
        self.total_cents += order.cents;
        println!(
            "order {} of {} cents (message {})",
            order.id,
            order.cents,
            order.delivery().id()
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
    let bus = Bus::memory();
    let orders = bus.queue::<Order>("orders");

    let (done, total) = tokio::sync::oneshot::channel();
    let book = OrderBook {
        total_cents: 0,
        done: Some(done),
    }
    .start();
    let listener = orders.subscribe(book.recipient()).await?;

    orders.push(&Order { id: 1, cents: 100 }).await?;
    orders.push(&Order { id: 2, cents: 0 }).await?;
    // Another program pushed something that is not an order.
    bus.push("orders", "not an order").await?;
    orders.push(&Order { id: 3, cents: 500 }).await?;

    let total = total.await.map_err(|_| actorbus::Error::Closed)?;
    println!("total: {total} cents");

    for _ in 0..2 {
        let dead = bus.receive("orders.dead", Duration::from_secs(5)).await?;
        println!(
            "dead letter {:?} after {} attempt: {}",
            dead.as_str()?,
            dead.headers()["x-attempts"],
            dead.headers()["x-error"]
        );
    }

    listener.remove().await?;
    bus.shutdown().await
}
