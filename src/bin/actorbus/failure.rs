//! `Failure`: why a command failed, the one line it prints, and its exit code.

use std::error::Error as StdError;
use std::process::ExitCode;

/// Everything that ends a command early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The bus refused or failed a call.
    #[error(transparent)]
    Bus(#[from] actorbus::Error),

    /// The bus failed a call; `what` says which, in the user's words.
    #[error("{what}")]
    BusDoing {
        /// What the command was doing.
        what: String,
        /// The bus's error.
        #[source]
        source: actorbus::Error,
    },

    /// A use of the command that clap cannot see is wrong (exit code 2, as
    /// clap's own usage errors).
    #[error("{0}")]
    Usage(String),

    /// Reading standard input or writing a file or standard output failed.
    #[error("{what}")]
    Io {
        /// What the command was reading or writing.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Anything else, said in one sentence.
    #[error("{0}")]
    Other(String),

    /// The user answered no when asked to confirm.
    #[error("not confirmed: nothing was changed")]
    NotConfirmed,

    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

impl Failure {
    /// Wraps a bus error with what the command was doing.
    pub(crate) fn doing(what: impl Into<String>) -> impl FnOnce(actorbus::Error) -> Failure {
        let what = what.into();
        move |source| Failure::BusDoing { what, source }
    }

    /// Wraps an I/O error with what the command was reading or writing.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Failure {
        let what = what.into();
        move |source| Failure::Io { what, source }
    }

    /// The process's exit code: 2 for a usage error (as clap), 130 for
    /// Ctrl-C (as shells report SIGINT), 1 for everything else.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Interrupted => ExitCode::from(130),
            _ => ExitCode::FAILURE,
        }
    }

    /// Whether this is standard output closed by its reader (`| head`): the
    /// reader has what it wanted, so the command ends quietly.
    pub(crate) fn is_closed_pipe(&self) -> bool {
        matches!(self, Failure::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// `error` and its sources on one line, joined by `: `, leaving out a
/// source whose text the line already holds (an error that prints its
/// source and also returns it would otherwise say the same thing twice).
pub(crate) fn one_line(error: &(dyn StdError + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    // One line: a multi-line message from a backend is folded.
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_source_already_printed_is_not_repeated() {
        let error = Repeats(std::io::Error::other("connection refused"));
        assert_eq!(one_line(&error), "outer: connection refused");
    }

    #[test]
    fn sources_are_joined_on_one_line() {
        let error = Failure::BusDoing {
            what: "cannot push to `q`".to_owned(),
            source: actorbus::Error::Timeout,
        };
        assert_eq!(one_line(&error), "cannot push to `q`: operation timed out");
        let folded = Failure::Other("two\nlines".to_owned());
        assert_eq!(one_line(&folded), "two lines");
    }

    #[test]
    fn usage_errors_exit_with_2() {
        assert_eq!(Failure::Usage(String::new()).exit_code(), ExitCode::from(2));
        assert_eq!(Failure::NotConfirmed.exit_code(), ExitCode::FAILURE);
    }
}
