//! Two named connections in one configuration, one bus each: `local` on the
//! memory driver and `events` on Redis (127.0.0.1:6379 unless
//! `ACTORBUS_QUEUE__CONNECTIONS__EVENTS__REDIS__URL` says otherwise).
//!
//! Run with `cargo run --example connections` (Redis must be up).

use std::time::Duration;

use actorbus::{Bus, Config};

/// What `application.conf` would hold. `Config::from_hocon_str` applies the
/// `ACTORBUS_*` variables over it, as `Config::from_file` would.
const APPLICATION_CONF: &str = r#"
queue.retry.max_attempts = 3            # for every connection
queue.connections {
  local  { driver = memory, default = "local-jobs" }
  events { driver = redis,  default = "example-connections-events"
           redis.url = "redis://127.0.0.1:6379/0" }
}
"#;

#[actix::main]
async fn main() -> actorbus::Result<()> {
    let config = Config::from_hocon_str(APPLICATION_CONF)?;
    for name in config.connection_names() {
        // One bus per connection: its keys over the top-level ones.
        let connection = config.connection(name)?;
        let queue = connection.queue.default.clone();
        println!(
            "{name}: driver {:?}, default queue {queue:?}, {} attempts",
            connection.queue.driver, connection.queue.retry.max_attempts
        );
        let bus = Bus::connect(connection).await?;
        bus.push_default(format!("hello from {name}")).await?;
        let delivery = bus.receive(&queue, Duration::from_secs(10)).await?;
        println!("{name}: received {:?}", delivery.as_str()?);
        bus.shutdown().await?;
    }
    Ok(())
}
