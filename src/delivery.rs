//! `Delivery`: one received message, and `Envelope`, the stored form behind it.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{BoxError, Error, Result};
use crate::message_id::MessageId;

/// What a handler returns: `Ok` acknowledges the delivery, `Err` has it retried.
pub type HandlerResult = std::result::Result<(), BoxError>;

/// Headers shared between the copies of one message; `None` for the many
/// messages without any, which then cost nothing to copy.
pub(crate) type Headers = Option<Arc<BTreeMap<String, String>>>;

/// What `Delivery::headers` shows for a message without headers.
static NO_HEADERS: BTreeMap<String, String> = BTreeMap::new();

/// A message as a driver stores it, independent of who receives it.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) id: MessageId,
    pub(crate) payload: Bytes,
    pub(crate) headers: Headers,
    /// 1 on first delivery; raised by each retry.
    pub(crate) attempt: u32,
    /// A redelivery whose previous delivery may have started without a
    /// verdict (a crash, a lost connection): it is counted on the broker
    /// ([`Arm`](crate::channel::messages::Arm)) before its handler starts.
    /// Never stored: the backend that received it says so.
    pub(crate) suspect: bool,
}

impl Envelope {
    pub(crate) fn new(payload: Bytes, headers: Headers) -> Self {
        Envelope {
            id: MessageId::generate(),
            payload,
            headers,
            attempt: 1,
            suspect: false,
        }
    }
}

/// Identifies one delivery to the driver that must settle it.
///
/// The memory driver numbers deliveries per queue; broker drivers map the
/// token to their own handle (an AMQP delivery tag, a stream entry id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AckToken(pub(crate) u64);

/// One received message: payload bytes plus metadata.
///
/// A `Delivery` is also an actix [`Message`](actix::Message) whose result is
/// the [`HandlerResult`], so an actor can be a listener through
/// [`Bus::subscribe`](crate::Bus::subscribe).
///
/// It serializes (for a service that returns what it peeked or received
/// as JSON) as its id, queue, attempt, headers and payload; the payload as
/// text when it is UTF-8 (`"encoding": "utf8"`), else as standard base64
/// (`"encoding": "base64"`):
///
/// ```
/// # actix::System::new().block_on(async {
/// let bus = actorbus::Bus::memory();
/// bus.push("jobs", "hello").await?;
/// let delivery = bus.receive("jobs", std::time::Duration::from_secs(1)).await?;
/// let json = serde_json::to_value(&delivery).unwrap();
/// assert_eq!(json["queue"], "jobs");
/// assert_eq!(json["attempt"], 1);
/// assert_eq!(json["payload"], "hello");
/// assert_eq!(json["encoding"], "utf8");
/// assert_eq!(json["id"], delivery.id().to_string());
/// # bus.shutdown().await?;
/// # Ok::<_, actorbus::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "HandlerResult")]
pub struct Delivery {
    envelope: Envelope,
    queue: Arc<str>,
}

impl Delivery {
    pub(crate) fn new(envelope: Envelope, queue: Arc<str>) -> Self {
        Delivery { envelope, queue }
    }

    pub(crate) fn into_envelope(self) -> Envelope {
        self.envelope
    }

    /// Whether it must be counted on the broker before its handler starts.
    pub(crate) fn is_suspect(&self) -> bool {
        self.envelope.suspect
    }

    /// The attempt its channel counted for it when it was armed.
    pub(crate) fn set_attempt(&mut self, attempt: u32) {
        self.envelope.attempt = attempt;
    }

    /// The message's id, the same on every attempt.
    pub fn id(&self) -> &MessageId {
        &self.envelope.id
    }

    /// The queue the message was taken from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The payload bytes, exactly as pushed.
    pub fn payload(&self) -> &Bytes {
        &self.envelope.payload
    }

    /// The payload as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when the payload is not valid UTF-8.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// bus.push("greetings", "hello").await?;
    /// let delivery = bus.receive("greetings", std::time::Duration::from_secs(1)).await?;
    /// assert_eq!(delivery.as_str()?, "hello");
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn as_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.envelope.payload).map_err(Error::codec)
    }

    /// The payload decoded from JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when the payload is not JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.envelope.payload).map_err(Error::codec)
    }

    /// Which attempt this is: 1 on first delivery, then one more per
    /// delivery that ended without `Ok`: a retry after `Err` or a panic, and
    /// on amqp and redis also a redelivery after the process handling it
    /// died or lost its connection (see the README, "Poison messages").
    pub fn attempt(&self) -> u32 {
        self.envelope.attempt
    }

    /// Where a reply to this message goes: set on a message sent with
    /// [`Bus::request`](crate::Bus::request) (header `x-reply-to`), which
    /// [`Bus::reply`](crate::Bus::reply) answers.
    pub fn reply_to(&self) -> Option<&str> {
        self.headers()
            .get(crate::bus::request::HEADER_REPLY_TO)
            .map(String::as_str)
    }

    /// What pairs a request with its reply (header `x-correlation-id`): set
    /// on requests and on replies.
    pub fn correlation_id(&self) -> Option<&str> {
        self.headers()
            .get(crate::bus::request::HEADER_CORRELATION_ID)
            .map(String::as_str)
    }

    /// Headers pushed with the message, plus the bus's own `x-` headers
    /// (`x-error`, `x-attempts`, `x-failed-at` on dead letters; `x-redriven`
    /// and the last `x-error` on a message [redriven](crate::Bus::redrive)
    /// out of them) and, with the feature `otel`, the pusher's
    /// `traceparent` and `tracestate`.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        self.envelope.headers.as_deref().unwrap_or(&NO_HEADERS)
    }
}

impl serde::Serialize for Delivery {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        use serde::ser::SerializeStruct as _;

        let mut out = serializer.serialize_struct("Delivery", 6)?;
        out.serialize_field("id", self.id())?;
        out.serialize_field("queue", self.queue())?;
        out.serialize_field("attempt", &self.attempt())?;
        out.serialize_field("headers", self.headers())?;
        match self.as_str() {
            Ok(text) => {
                out.serialize_field("payload", text)?;
                out.serialize_field("encoding", "utf8")?;
            }
            Err(_) => {
                let text = base64::engine::general_purpose::STANDARD.encode(self.payload());
                out.serialize_field("payload", &text)?;
                out.serialize_field("encoding", "base64")?;
            }
        }
        out.end()
    }
}
