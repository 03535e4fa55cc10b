//! The command line: global options, commands and their arguments (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Push, peek, receive, count, redrive and benchmark the queues of an
/// actorbus bus, on the broker `application.conf` names.
///
/// The configuration is read as the library reads it: `--config FILE`, or
/// `./application.conf` when it exists, then the `ACTORBUS_*` variables;
/// `--connection`, `--driver` and `--url` are applied over that.
#[derive(Debug, Parser)]
#[command(name = "actorbus", version)]
pub(crate) struct Cli {
    /// Where the bus is and how to print.
    #[command(flatten)]
    pub(crate) global: Global,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The options every command takes, before or after its name.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Read this HOCON file instead of `./application.conf`.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Use the named connection of `queue.connections`.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) connection: Option<String>,
    /// The driver, over `queue.driver`.
    #[arg(long, global = true, value_enum, value_name = "DRIVER")]
    pub(crate) driver: Option<DriverArg>,
    /// The broker's url: sets `amqp.url` or `redis.url`, whichever the
    /// driver uses (and clears `amqp.urls`).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Print JSON instead of text (for `push`: the id as JSON).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// `--driver`: the values of `queue.driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DriverArg {
    /// In-process queues (only useful for `bench`: they end with the command).
    Memory,
    /// RabbitMQ.
    Amqp,
    /// Redis Streams.
    Redis,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Push one message and print its id.
    Push(PushArgs),
    /// Show the next ready messages of a queue without taking them.
    Peek(PeekArgs),
    /// Take the next message of a queue (it is acknowledged: gone from the queue).
    Receive(ReceiveArgs),
    /// Count the messages of queues: ready, in flight, delayed, dead, listeners.
    ///
    /// `listeners` counts the listeners of this command's own bus (none).
    /// On amqp, `in flight` and `delayed` are likewise the counting
    /// process's own (RabbitMQ's queue counts do not tell them), so they
    /// show 0 here; on redis they cover every process. With `--watch`,
    /// `net/s` is the change per second of all messages held (ready + in
    /// flight + delayed + dead): pushes minus acknowledgements and purges.
    /// Stats are gauges, not counters, so pushes and acknowledgements per
    /// second on their own cannot be derived from them (the `metrics`
    /// feature counts them in the process that pushes and handles).
    /// `dead/s` is the change of `dead` per second.
    Stats(StatsArgs),
    /// Look at, redrive or drop the dead letters of a queue (`<queue>.dead`).
    #[command(subcommand)]
    Dead(DeadCommand),
    /// Measure throughput and latency of the configured broker.
    Bench(BenchArgs),
}

/// `actorbus push`.
#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// The queue to push to.
    pub(crate) queue: String,
    /// The payload; `-` or none reads it from standard input (bytes as they are).
    pub(crate) payload: Option<String>,
    /// A header `name=value` (repeatable); names starting with `x-` belong to the bus.
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE", value_parser = parse_header)]
    pub(crate) headers: Vec<(String, String)>,
    /// Hold the message back for this long (`500ms`, `5s`, `2m`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) delay: Option<Duration>,
}

/// `actorbus peek`.
#[derive(Debug, Args)]
pub(crate) struct PeekArgs {
    /// The queue to look at.
    pub(crate) queue: String,
    /// How many messages to show at most.
    #[arg(short = 'n', long = "max", default_value_t = 10, value_name = "N")]
    pub(crate) max: usize,
}

/// `actorbus receive`.
#[derive(Debug, Args)]
pub(crate) struct ReceiveArgs {
    /// The queue to take from.
    pub(crate) queue: String,
    /// How long to wait for a message.
    #[arg(long, default_value = "25s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
}

/// `actorbus stats`.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// The queues to count.
    #[arg(required = true)]
    pub(crate) queues: Vec<String>,
    /// Redraw the table every `--interval` until interrupted, with rates.
    #[arg(long)]
    pub(crate) watch: bool,
    /// How often `--watch` samples.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_interval, requires = "watch")]
    pub(crate) interval: Duration,
}

/// `actorbus dead …`.
#[derive(Debug, Subcommand)]
pub(crate) enum DeadCommand {
    /// Show the dead letters of a queue without taking them.
    Peek(PeekArgs),
    /// Move dead letters back to their queue (attempt 1, `x-redriven` counted).
    Redrive(RedriveArgs),
    /// Drop the dead letters of a queue.
    Purge(PurgeArgs),
}

/// `actorbus dead redrive`.
#[derive(Debug, Args)]
pub(crate) struct RedriveArgs {
    /// The queue whose dead letters go back to it.
    pub(crate) queue: String,
    /// Move at most this many (default: as many as there are when it starts).
    #[arg(short = 'n', long = "max", value_name = "N")]
    pub(crate) max: Option<u64>,
    /// Do not ask (needed when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

/// `actorbus dead purge`.
#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// The queue whose dead letters are dropped.
    pub(crate) queue: String,
    /// Do not ask (needed when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

/// `actorbus bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Queues, each with its own listeners (`actorbus-bench-<pid>-…`: purged
    /// after, not deleted; `--json` names them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) queues: u32,
    /// Listeners per queue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) listeners: u32,
    /// Handlers each listener runs at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) concurrency: u32,
    /// Pushing tasks, each waiting for its push to be stored before the next.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) producers: u32,
    /// Pushes per second over all producers; 0 pushes as fast as the broker takes them.
    #[arg(long, default_value_t = 0, value_name = "MSGS_PER_SEC")]
    pub(crate) rate: u64,
    /// Payload size (`64B`, `1KiB`, `1MB`); at least 8 bytes, which carry the push time.
    #[arg(long, default_value = "64B", value_name = "SIZE", value_parser = parse_size)]
    pub(crate) payload: usize,
    /// How long to push.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_interval)]
    pub(crate) duration: Duration,
    /// Also draw throughput over time and latency percentiles to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
}

/// `name=value`, split at the first `=`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// A size in bytes: a number and an optional unit (`64`, `64B`, `1KiB` =
/// 1024, `1KB` = 1000), as `bytesize` reads it.
fn parse_size(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text.parse()?;
    usize::try_from(size.as_u64()).map_err(|_| format!("{text:?} is too large"))
}

/// A humantime duration that is not zero (a zero interval would spin).
fn parse_interval(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("must be more than 0".to_owned()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn headers_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_header("k=v=w").unwrap(),
            ("k".to_owned(), "v=w".to_owned())
        );
        assert_eq!(parse_header("k=").unwrap(), ("k".to_owned(), String::new()));
        assert!(parse_header("=v").is_err());
        assert!(parse_header("kv").is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("64B").unwrap(), 64);
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert_eq!(parse_size("1KB").unwrap(), 1000);
        assert!(parse_size("big").is_err());
    }

    #[test]
    fn intervals_are_positive_durations() {
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").is_err());
    }
}
