//! The one public error type of the crate.

/// A boxed error, as handlers return it and as backend failures are kept.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to a [`Bus`](crate::Bus).
///
/// Marked `#[non_exhaustive]` so that drivers can add failure modes without a
/// breaking release: match the variants you act on and keep a `_` arm.
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
    #[error("codec error: {source}")]
    Codec {
        /// The underlying decoding or encoding error.
        #[source]
        source: BoxError,
    },

    /// The driver's backend failed; the original error is kept as the source.
    #[error("backend error: {source}")]
    Backend {
        /// The backend's own error, boxed so its type does not leak into the API.
        #[source]
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
        Error::Codec {
            source: source.into(),
        }
    }

    /// Wraps a backend's own error (lapin, redis) so its type stays private.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn backend(source: impl Into<BoxError>) -> Self {
        Error::Backend {
            source: source.into(),
        }
    }
}
