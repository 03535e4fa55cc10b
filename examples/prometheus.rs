//! The bus's metrics served to Prometheus: messages flow through a queue
//! while `http://127.0.0.1:9000/metrics` shows them counted.
//!
//! ```text
//! cargo run --example prometheus --features metrics
//! curl -s localhost:9000/metrics | grep actorbus_
//! ```
//!
//! `--port N` (or `METRICS_PORT`) picks the port, `--seconds N` stops after
//! that long (default: at Ctrl-C). The bus comes from `Config::load()`, so
//! `ACTORBUS_QUEUE__DRIVER=redis` runs it on Redis. The handler fails the
//! first attempt of every 5th message (retries) and rejects every 50th
//! (dead letters), so every counter moves.

use std::time::Duration;

use actorbus::{Bus, Config, Reject};
use metrics_exporter_prometheus::PrometheusBuilder;

const QUEUE: &str = "orders";

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (port, seconds) = options()?;
    // Before the bus: a queue's metric handles are taken from the recorder
    // installed when the bus first uses the queue.
    PrometheusBuilder::new()
        .with_http_listener(([127, 0, 0, 1], port))
        .install()?;
    println!("serving http://127.0.0.1:{port}/metrics");

    let bus = Bus::connect(Config::load()?).await?;
    bus.add_listener(QUEUE, |delivery| async move {
        let n: u64 = delivery.as_str()?.parse()?;
        if n.is_multiple_of(50) {
            return Err(Reject::new(format!("order {n} is not valid")).into());
        }
        if n.is_multiple_of(5) && delivery.attempt() == 1 {
            return Err(format!("order {n}: stock service busy, retrying").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(())
    })
    .await?;

    let pushing = async {
        for n in 1u64.. {
            bus.push(QUEUE, n.to_string()).await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok::<_, actorbus::Error>(())
    };
    let stop = async {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::select! {
        pushed = pushing => pushed?,
        () = stop => {}
    }
    bus.shutdown().await?;
    Ok(())
}

/// `--port N` (or `METRICS_PORT`, default 9000) and `--seconds N`.
fn options() -> Result<(u16, Option<u64>), Box<dyn std::error::Error>> {
    let mut port = std::env::var("METRICS_PORT").map_or(Ok(9000), |p| p.parse())?;
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value.parse()?,
            "--seconds" => seconds = Some(value.parse()?),
            _ => return Err(format!("unknown option {flag}; try --port N --seconds N").into()),
        }
    }
    Ok((port, seconds))
}
