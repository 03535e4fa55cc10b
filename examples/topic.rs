//! A topic with two subscriber groups: every group gets every order, the
//! two members of `billing` share its work, and `audit` keeps its copies
//! while none of its members runs.
//!
//! Run with `cargo run --example topic`.

use std::time::Duration;

use actorbus::{Bus, Delivery};

#[actix::main]
async fn main() -> actorbus::Result<()> {
    let bus = Bus::memory();
    // Joining a group makes it durable: it stores from now on.
    let audit = bus
        .add_subscriber("orders", "audit", |_d: Delivery| async { Ok(()) })
        .await?;
    audit.remove().await?;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut members = Vec::new();
    for member in ["billing-1", "billing-2"] {
        let tx = tx.clone();
        let listener = bus
            .add_subscriber("orders", "billing", move |d: Delivery| {
                let _ = tx.send(format!("{member} got {}", d.as_str().unwrap_or("?")));
                async { Ok(()) }
            })
            .await?;
        members.push(listener);
    }

    for order in 1..=6 {
        bus.publish("orders", format!("order {order}")).await?;
    }
    for _ in 1..=6 {
        if let Some(line) = rx.recv().await {
            println!("{line}");
        }
    }
    let waiting = bus.stats("orders.audit").await?;
    println!("orders.audit holds {} orders for later", waiting.ready);
    let first = bus.receive("orders.audit", Duration::from_secs(5)).await?;
    println!("audit reads {:?}", first.as_str()?);

    for listener in members {
        listener.remove().await?;
    }
    bus.shutdown().await
}
