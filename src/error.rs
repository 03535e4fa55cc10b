//! The one public error type of the crate.

/// A boxed error, as handlers return it and as backend failures are kept.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to a [`Bus`](crate::Bus).
///
/// Marked `#[non_exhaustive]` so that drivers can add failure modes without a
/// breaking release: match the variants you act on and keep a `_` arm.
///
/// Each error prints as one line that says what failed and why, and its
/// [`source`](std::error::Error::source) chain never repeats that line: a
/// log line with `%error`, `{error}`, or a report that walks the chain
/// (`anyhow`'s `{:#}`) reads each cause once. The errors of the drivers'
/// libraries (lapin, redis, serde) are kept as text in the line, their
/// causes each once, so that their types never become part of this API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operation did not finish in time: `receive` found no message, or a
    /// push waited longer than `queue.push_timeout` for room or a broker.
    #[error("operation timed out")]
    Timeout,

    /// The queue name breaks the naming rules: 1 to 200 bytes of UTF-8,
    /// no control characters, not starting with `amq.`.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidQueueName {
        /// The rejected name.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A header of a push is one the bus cannot carry: an empty name, one
    /// with control characters or over 255 bytes, a name starting with
    /// `x-` (reserved for the bus), or headers too large for the broker.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The rejected header's name.
        name: String,
        /// Which rule it broke.
        reason: String,
    },

    /// The payload is larger than `queue.max_payload`.
    #[error("payload of {size} bytes exceeds queue.max_payload of {max} bytes")]
    PayloadTooLarge {
        /// Size of the rejected payload in bytes.
        size: usize,
        /// The configured limit in bytes.
        max: usize,
    },

    /// A configuration value is missing, malformed or out of range.
    #[error("invalid config `{key}`: {message}")]
    Config {
        /// The dotted key, e.g. `queue.retry.backoff`.
        key: String,
        /// What is wrong with its value.
        message: String,
    },

    /// The bus was shut down; it takes no more work.
    #[error("bus is shut down")]
    Closed,

    /// A payload could not be encoded or decoded (bad UTF-8, bad JSON).
    /// Prints as `codec error: ` and what the codec said.
    #[error(transparent)]
    Codec {
        /// The line it prints: `codec error: ` and the codec's error with
        /// its causes.
        source: BoxError,
    },

    /// A batch push ([`Bus::push_batch`](crate::Bus::push_batch)) failed
    /// part-way. `stored` holds the ids of the batch's messages that were
    /// stored (a listener will get them), in batch order; every other
    /// message of the batch was not confirmed, and `source` says why. On
    /// the memory driver those were not stored; on a broker an unconfirmed
    /// message may still have landed, so pushing it again may store it twice
    /// (at-least-once, as any retried push).
    #[error("batch push stored {} of its messages, then failed: {source}", stored.len())]
    PartialBatch {
        /// Ids of the messages that were stored, in batch order.
        stored: Vec<crate::message_id::MessageId>,
        /// Why the others were not.
        source: Box<Error>,
    },

    /// The driver's backend failed. Prints as what failed and why, e.g.
    /// `cannot connect to Redis at redis://127.0.0.1:6379/0: Connection
    /// refused (os error 111)`.
    #[error(transparent)]
    Backend {
        /// The line it prints: the backend's error with its causes.
        source: BoxError,
    },
}

impl Error {
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    pub(crate) fn codec(source: impl Into<BoxError>) -> Self {
        let line = format!("codec error: {}", one_line(&*source.into()));
        Error::Codec {
            source: line.into(),
        }
    }

    /// Wraps a backend's own error (lapin, redis) as its line of text, so
    /// its type stays private and its causes print once.
    pub(crate) fn backend(source: impl Into<BoxError>) -> Self {
        Error::Backend {
            source: one_line(&*source.into()).into(),
        }
    }
}

/// `error` and its causes as one line, `error: cause: cause`, leaving out
/// each cause whose text the line already holds: many errors print their
/// source and also return it (lapin's and redis's do).
pub(crate) fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let said = cause.to_string();
        if !said.is_empty() && !line.contains(&said) {
            line.push_str(": ");
            line.push_str(&said);
        }
        next = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that prints its source and returns it too.
    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn causes_print_once_and_the_chain_ends_at_the_line() {
        let io = std::io::Error::other("refused");
        let error = Error::backend(Repeating(io));
        assert_eq!(error.to_string(), "outer: refused");
        assert!(std::error::Error::source(&error).is_none());

        #[derive(Debug, thiserror::Error)]
        #[error("context")]
        struct Quiet(#[source] std::io::Error);
        let quiet = Quiet(std::io::Error::other("cause"));
        let error = Error::codec(quiet);
        assert_eq!(error.to_string(), "codec error: context: cause");
        assert!(std::error::Error::source(&error).is_none());
    }
}
