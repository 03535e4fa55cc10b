//! `actorbus peek`, `actorbus dead peek` and `actorbus receive`: looking
//! at messages, or taking one, and printing them.

use actorbus::Bus;

use crate::args::ReceiveArgs;
use crate::connect::show_duration;
use crate::failure::Failure;
use crate::output;

/// Prints up to `max` ready messages of `queue` without taking them (see
/// `Bus::peek` for what a look costs on amqp).
pub(crate) async fn peek(bus: &Bus, queue: &str, max: usize, json: bool) -> Result<(), Failure> {
    let deliveries = (bus.peek(queue, max).await)
        .map_err(Failure::doing(format!("cannot peek at `{queue}`")))?;
    if json {
        return output::print_json(&deliveries);
    }
    if deliveries.is_empty() {
        eprintln!("actorbus: `{queue}` has no ready messages");
    }
    let texts: Vec<String> = deliveries.iter().map(output::delivery_text).collect();
    output::print(&texts.join("\n"))
}

/// Takes the next message of the queue (acknowledged on hand-over: it is
/// gone from the queue) and prints it.
pub(crate) async fn receive(bus: &Bus, args: ReceiveArgs, json: bool) -> Result<(), Failure> {
    let delivery = match bus.receive(&args.queue, args.timeout).await {
        Ok(delivery) => delivery,
        Err(actorbus::Error::Timeout) => {
            return Err(Failure::Other(format!(
                "no message on `{}` within {}",
                args.queue,
                show_duration(args.timeout)
            )))
        }
        Err(error) => {
            return Err(Failure::doing(format!(
                "cannot receive from `{}`",
                args.queue
            ))(error))
        }
    };
    if json {
        output::print_json(&delivery)
    } else {
        output::print(&output::delivery_text(&delivery))
    }
}
