//! Asking before a command changes a queue: `… [y/N]` on a terminal,
//! `--yes` everywhere else, never a silent change.

use std::io::{BufRead, IsTerminal, Write};

use crate::failure::Failure;

/// Refuses early, before any I/O, when the answer cannot be asked for:
/// standard input is not a terminal and `--yes` was not given.
pub(crate) fn can_ask(yes: bool, what: &str) -> Result<(), Failure> {
    if yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "{what} changes the queue and standard input is not a terminal to ask on: \
         add --yes to go ahead (nothing was changed)"
    )))
}

/// Asks `question [y/N]` on standard error and reads the answer from
/// standard input; `Ok` only for `y` or `yes`. With `yes`, asks nothing.
pub(crate) fn ask(yes: bool, question: &str) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    // The answer is a blocking read of the terminal; the bus's own threads
    // carry on meanwhile.
    let answer = tokio::task::block_in_place(|| {
        eprint!("{question} [y/N] ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok::<_, std::io::Error>(line)
    })
    .map_err(Failure::io("cannot read the answer from standard input"))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::NotConfirmed),
    }
}
