//! The seed's produce-and-consume example on the memory driver: a listener
//! on "my-queue", one pushed "hello world", and the received message printed.
//!
//! Run with `cargo run --example quickstart`.

use std::time::Duration;

use actorbus::{Bus, Config};
use tokio::sync::mpsc;

#[actix::main]
async fn main() -> actorbus::Result<()> {
    // `application.conf` picks the driver; with no file, the memory driver.
    let bus = match std::env::args().nth(1) {
        Some(path) => Bus::from_config_file(path).await?,
        None => Bus::connect(Config::default()).await?,
    };
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
