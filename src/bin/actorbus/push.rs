//! `actorbus push QUEUE [PAYLOAD | -]`: one message, its id printed.

use std::io::{IsTerminal, Read};

use actorbus::{Bus, MessageId, PushOptions};
use serde::Serialize;

use crate::args::PushArgs;
use crate::failure::Failure;
use crate::output;

/// The payload: the argument, or standard input for `-` or none (read
/// before connecting, so that typing it does not count against a timeout).
pub(crate) fn payload(args: &PushArgs) -> Result<Vec<u8>, Failure> {
    match args.payload.as_deref() {
        Some("-") | None => {
            let mut stdin = std::io::stdin().lock();
            if stdin.is_terminal() {
                eprintln!("actorbus: reading the payload from standard input (end it with Ctrl-D)");
            }
            let mut bytes = Vec::new();
            stdin
                .read_to_end(&mut bytes)
                .map_err(Failure::io("cannot read the payload from standard input"))?;
            Ok(bytes)
        }
        Some(text) => Ok(text.as_bytes().to_vec()),
    }
}

/// Pushes `payload` to the queue with the arguments' headers and delay,
/// and prints the id (`{"id": …, "queue": …}` with `--json`).
pub(crate) async fn run(
    bus: &Bus,
    args: PushArgs,
    payload: Vec<u8>,
    json: bool,
) -> Result<(), Failure> {
    let mut options = (args.headers.into_iter())
        .fold(PushOptions::default(), |options, (name, value)| {
            options.with_header(name, value)
        });
    if let Some(delay) = args.delay {
        options = options.with_delay(delay);
    }
    let id = bus
        .push_with(&args.queue, payload, options)
        .await
        .map_err(Failure::doing(format!("cannot push to `{}`", args.queue)))?;
    if json {
        output::print_json(&Pushed {
            id: &id,
            queue: &args.queue,
        })
    } else {
        output::print(&format!("{id}\n"))
    }
}

/// `push --json`.
#[derive(Serialize)]
struct Pushed<'a> {
    id: &'a MessageId,
    queue: &'a str,
}
