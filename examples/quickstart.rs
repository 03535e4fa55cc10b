//! The seed's produce-and-consume example: a listener on "my-queue", one
//! pushed "hello world", and the received message printed.
//!
//! Run with `cargo run --example quickstart`. The configuration comes from
//! `Config::load()`: `./application.conf` when it exists, then `ACTORBUS_*`
//! variables, so `ACTORBUS_QUEUE__DRIVER=redis cargo run --example
//! quickstart` runs it on Redis. With a path argument, that file is read
//! instead (`cargo run --example quickstart -- my.conf`).

use std::time::Duration;

use actorbus::{Bus, Config};
use tokio::sync::mpsc;

#[actix::main]
async fn main() -> actorbus::Result<()> {
    // `application.conf` and `ACTORBUS_*` pick the driver; with neither, memory.
    let config = match std::env::args().nth(1) {
        Some(path) => Config::from_file(path)?,
        None => Config::load()?,
    };
    println!("driver: {:?}", config.queue.driver);
    let bus = Bus::connect(config).await?;
    const CHANNEL: &str = "my-queue";

    // Consume: the listener forwards what it receives to this task.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = bus
        .add_listener(CHANNEL, move |delivery| {
            let sent = delivery
                .as_str()
                .map(|text| tx.send(text.to_owned()).is_ok());
            async move {
                sent?;
                Ok(())
            }
        })
        .await?;

    // Produce.
    bus.push(CHANNEL, "hello world").await?;

    // Wait for the message the way the seed does, with a 25-second promise.
    match tokio::time::timeout(Duration::from_secs(25), rx.recv()).await {
        Ok(Some(message)) => println!("Received message: {message}"),
        _ => {
            eprintln!("no message within 25 s");
            return Err(actorbus::Error::Timeout);
        }
    }

    listener.remove().await?;
    bus.shutdown().await
}
