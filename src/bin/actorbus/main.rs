//! `actorbus`: the command line of the actorbus crate (cargo feature `cli`,
//! on by default; `cargo install --path .` gives it).
//!
//! It reads the configuration as the library does (`--config FILE`, else
//! `./application.conf` when present, then `ACTORBUS_*`), connects one bus,
//! runs one command and shuts the bus down. A failure is one line on
//! standard error, `actorbus: <what>: <why>`, and a non-zero exit code: 2
//! for a wrong use of the command, 130 for Ctrl-C, 1 for anything else.
//!
//! | file | what it is |
//! |---|---|
//! | `args.rs` | the command line (clap derive) |
//! | `connect.rs` | configuration and the bounded connect |
//! | `push.rs`, `read.rs`, `stats.rs`, `dead.rs` | the commands |
//! | `bench/` | `actorbus bench`: load, measurement, report and plot |
//! | `confirm.rs` | asking before a change |
//! | `output.rs` | text, hex and JSON printing, tables |
//! | `failure.rs` | the command's errors, their one line and exit code |

mod args;
mod bench;
mod confirm;
mod connect;
mod dead;
mod failure;
mod output;
mod push;
mod read;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, DeadCommand};
use connect::with_bus;
use failure::Failure;

fn main() -> ExitCode {
    // A bug must still read as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let line = failure::one_line(&failure::Failure::Other(info.to_string()));
        eprintln!("actorbus: internal error (please report it): {line}");
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return report(&Failure::io("cannot start the runtime")(error)),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_closed_pipe() => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

/// Prints `failure` as one line and gives its exit code.
fn report(failure: &Failure) -> ExitCode {
    eprintln!("actorbus: {}", failure::one_line(failure));
    failure.exit_code()
}

/// Runs the command: what needs no bus first (reading a payload, checking
/// that a change can be confirmed), then the bus's part.
async fn run(cli: Cli) -> Result<(), Failure> {
    let Cli { global, command } = cli;
    let json = global.json;
    match command {
        Command::Push(args) => {
            let payload = push::payload(&args)?;
            with_bus(&global, false, async |bus| {
                push::run(bus, args, payload, json).await
            })
            .await
        }
        Command::Receive(args) => {
            with_bus(&global, false, async |bus| {
                read::receive(bus, args, json).await
            })
            .await
        }
        Command::Stats(args) => {
            with_bus(&global, false, async |bus| {
                stats::run(bus, args, json).await
            })
            .await
        }
        Command::Peek(args) => {
            with_bus(&global, false, async |bus| {
                read::peek(bus, &args.queue, args.max, json).await
            })
            .await
        }
        Command::Dead(DeadCommand::Peek(args)) => {
            let dead = dead::dead_queue(&args.queue);
            with_bus(&global, false, async |bus| {
                read::peek(bus, &dead, args.max, json).await
            })
            .await
        }
        Command::Dead(DeadCommand::Redrive(args)) => {
            confirm::can_ask(args.yes, "dead redrive")?;
            with_bus(&global, false, async |bus| {
                dead::redrive(bus, args, json).await
            })
            .await
        }
        Command::Dead(DeadCommand::Purge(args)) => {
            confirm::can_ask(args.yes, "dead purge")?;
            with_bus(&global, false, async |bus| {
                dead::purge(bus, args, json).await
            })
            .await
        }
        Command::Bench(args) => {
            bench::check(&args)?;
            with_bus(&global, true, async |bus| bench::run(bus, args, json).await).await
        }
    }
}
