//! `actorbus receive`: taking a message and printing it.

use actorbus::Bus;

use crate::args::ReceiveArgs;
use crate::connect::show_duration;
use crate::failure::Failure;
use crate::output;

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
        output::print_json(&output::delivery_json(&delivery))
    } else {
        output::print(&output::delivery_text(&delivery))
    }
}
