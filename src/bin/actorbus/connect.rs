//! The bus a command talks to: the configuration as the library reads it,
//! the global options over it, and a connection bounded in time.

use std::time::Duration;

use actorbus::{Bus, Config, DriverKind};

use crate::args::{DriverArg, Global};
use crate::failure::Failure;

/// The configuration the global options describe: `--config FILE` or else
/// [`Config::load`] (`./application.conf` when it exists, then `ACTORBUS_*`),
/// then `--connection`, `--driver` and `--url` in that order.
pub(crate) fn config(global: &Global) -> Result<Config, Failure> {
    let mut config = match &global.config {
        Some(path) => Config::from_file(path)?,
        None => Config::load()?,
    };
    if let Some(name) = &global.connection {
        config = config.connection(name)?;
    }
    if let Some(driver) = global.driver {
        config.queue.driver = match driver {
            DriverArg::Memory => DriverKind::Memory,
            DriverArg::Amqp => DriverKind::Amqp,
            DriverArg::Redis => DriverKind::Redis,
        };
    }
    if let Some(url) = &global.url {
        set_url(&mut config, url)?;
    }
    Ok(config)
}

/// `--url`: the url of the driver the config chose. The library checks it
/// when the bus connects, so a bad one is an error naming its key.
/// A driver not compiled in is left for `Bus::connect` to refuse.
#[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(unused_variables))]
fn set_url(config: &mut Config, url: &str) -> Result<(), Failure> {
    match config.queue.driver {
        #[cfg(feature = "amqp")]
        DriverKind::Amqp => {
            config.amqp.url = url.to_owned();
            // `amqp.urls` wins over `amqp.url`: the url asked for must be the one used.
            config.amqp.urls.clear();
            Ok(())
        }
        #[cfg(feature = "redis")]
        DriverKind::Redis => {
            config.redis.url = url.to_owned();
            Ok(())
        }
        DriverKind::Memory => Err(Failure::Usage(
            "--url needs a broker driver: the memory driver has no url (add --driver amqp or --driver redis)"
                .to_owned(),
        )),
        #[allow(unreachable_patterns)]
        _ => Ok(()),
    }
}

/// Runs `work` on a bus built from the global options, then shuts the bus
/// down, whether `work` succeeded or not. Unless `in_process` (the bench),
/// a memory bus gets a note on standard error: its queues are this
/// process's and end with it.
///
/// Connecting is bounded by `queue.push_timeout`, so a broker that is down
/// is one line within that time, not a hang.
pub(crate) async fn with_bus<T>(
    global: &Global,
    in_process: bool,
    work: impl AsyncFnOnce(&Bus) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let config = config(global)?;
    if config.queue.driver == DriverKind::Memory && !in_process {
        eprintln!(
            "actorbus: note: queue.driver is memory, whose queues live and end in this process \
             (choose a broker with --driver, queue.driver or ACTORBUS_QUEUE__DRIVER)"
        );
    }
    let bus = connect(config).await?;
    let result = work(&bus).await;
    let closed = bus.shutdown().await;
    let value = result?;
    closed.map_err(Failure::doing("cannot close the connection"))?;
    Ok(value)
}

/// Connects, giving up after `queue.push_timeout`.
async fn connect(config: Config) -> Result<Bus, Failure> {
    let driver = driver_name(config.queue.driver);
    let limit = config.queue.push_timeout;
    match tokio::time::timeout(limit, Bus::connect(config)).await {
        Ok(Ok(bus)) => Ok(bus),
        // These say which key, or which broker and why, themselves.
        Ok(Err(error @ (actorbus::Error::Config { .. } | actorbus::Error::Backend { .. }))) => {
            Err(error.into())
        }
        Ok(Err(error)) => Err(Failure::doing(format!("cannot connect to {driver}"))(error)),
        Err(_) => Err(Failure::Other(format!(
            "cannot connect to {driver}: no answer within {} (queue.push_timeout)",
            show_duration(limit)
        ))),
    }
}

/// The broker's name for messages: `RabbitMQ`, `Redis`, `memory`.
pub(crate) fn driver_name(driver: DriverKind) -> &'static str {
    match driver {
        DriverKind::Amqp => "RabbitMQ",
        DriverKind::Redis => "Redis",
        _ => "memory",
    }
}

/// The driver as `queue.driver` spells it.
pub(crate) fn driver_key(driver: DriverKind) -> &'static str {
    match driver {
        DriverKind::Amqp => "amqp",
        DriverKind::Redis => "redis",
        _ => "memory",
    }
}

/// A duration as humantime writes it (`10s`, `1m 30s`).
pub(crate) fn show_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
