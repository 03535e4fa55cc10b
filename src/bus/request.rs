//! Request/reply on a `Bus`: `request` pushes with a reply address and a correlation id and waits for the answer; `reply` answers.
//!
//! On amqp the reply address is RabbitMQ's direct reply-to
//! (`amq.rabbitmq.reply-to`): replies go straight to the channel the
//! request was published on, with no queue. On the other drivers each bus
//! has one reply queue, `actorbus.reply.<uuid>`, started with the first
//! request, with a listener on it; the bus's shutdown deletes it once that
//! listener has stopped. Either way each reply is handed to the request
//! waiting for its correlation id. A reply whose request is gone (timed
//! out, or it never was) is dropped and counted in [`Bus::late_replies`];
//! correlation ids are never reused, so it can never answer another
//! request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::bus::Bus;
use crate::delivery::{Delivery, Envelope};
use crate::driver::ReplySink;
use crate::error::{Error, Result};
use crate::listener::Listener;
use crate::message_id::MessageId;
use crate::options::PushOptions;
use crate::validate;

/// Header naming the queue a reply goes to.
pub(crate) const HEADER_REPLY_TO: &str = "x-reply-to";
/// Header pairing a reply with its request.
pub(crate) const HEADER_CORRELATION_ID: &str = "x-correlation-id";
/// How the reply addresses of a driver's own begin (amqp:
/// `amq.rabbitmq.reply-to`); no queue name may.
const BROKER_ADDRESS: &str = "amq.";
/// The `queue` label of the replies sent to such addresses.
const DIRECT_REPLY_LABEL: &str = "amq.rabbitmq.reply-to";

/// Requests waiting for their reply, by correlation id.
type Waiting = Arc<Mutex<FxHashMap<String, oneshot::Sender<Delivery>>>>;

/// A bus's reply address and the requests waiting on it.
pub(crate) struct Replies {
    /// The reply address requests carry: the reply queue's name, or the
    /// driver's own address.
    queue: String,
    /// Who waits for which correlation id.
    waiting: Waiting,
    /// Replies that came after their request gave up.
    late: Arc<AtomicU64>,
    /// The listener on the reply queue (none with the driver's own
    /// address); it stops with the bus.
    listener: Option<Listener>,
}

impl Replies {
    async fn start(bus: &Bus) -> Result<Replies> {
        let waiting = Waiting::default();
        let late = Arc::new(AtomicU64::new(0));
        let (w, l) = (waiting.clone(), late.clone());
        let route: ReplySink = Arc::new(move |delivery: Delivery| {
            let waiter = delivery
                .correlation_id()
                .and_then(|id| w.lock().ok()?.remove(id));
            match waiter {
                Some(waiter) => {
                    if let Err(reply) = waiter.send(delivery) {
                        late_reply(&l, &reply);
                    }
                }
                None => late_reply(&l, &delivery),
            }
        });
        if let Some(address) = bus.driver().direct_replies(route.clone()) {
            return Ok(Replies {
                queue: address.to_owned(),
                waiting,
                late,
                listener: None,
            });
        }
        let queue = format!("actorbus.reply.{}", MessageId::generate());
        let listener = bus
            .add_listener(&queue, move |delivery: Delivery| {
                route(delivery);
                async { Ok(()) }
            })
            .await?;
        bus.driver().expire_with_bus(&queue);
        Ok(Replies {
            queue,
            waiting,
            late,
            listener: Some(listener),
        })
    }
}

fn late_reply(late: &AtomicU64, reply: &Delivery) {
    late.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(correlation_id = ?reply.correlation_id(), "late reply dropped");
}

impl Bus {
    /// Pushes `payload` to `queue` with a reply address and a correlation
    /// id, and waits up to `timeout` for the reply that
    /// [`reply`](Self::reply) sends.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no reply came in time (a reply after that is
    /// dropped and counted in [`late_replies`](Self::late_replies)); as
    /// [`push`](Self::push) otherwise.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// use std::time::Duration;
    /// let bus = actorbus::Bus::memory();
    /// let responder = bus.clone();
    /// bus.add_listener("double", move |request| {
    ///     let bus = responder.clone();
    ///     async move {
    ///         let n: u64 = request.as_str()?.parse()?;
    ///         bus.reply(&request, (2 * n).to_string()).await?;
    ///         Ok(())
    ///     }
    /// })
    /// .await?;
    /// let answer = bus.request("double", "21", Duration::from_secs(5)).await?;
    /// assert_eq!(answer.as_str()?, "42");
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(level = "debug", skip_all, fields(queue = %queue))]
    pub async fn request(
        &self,
        queue: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Delivery> {
        self.check_open()?;
        let replies = self
            .inner
            .replies
            .get_or_try_init(|| Replies::start(self))
            .await?;
        let correlation = MessageId::generate().to_string();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = replies.waiting.lock() {
            waiting.insert(correlation.clone(), tx);
        }
        let opts = PushOptions::default()
            .with_header(HEADER_REPLY_TO, &replies.queue)
            .with_header(HEADER_CORRELATION_ID, &correlation);
        let forget = || {
            if let Ok(mut waiting) = replies.waiting.lock() {
                waiting.remove(&correlation);
            }
        };
        if let Err(error) = self
            .push_with_bus_headers(queue, payload.into(), opts)
            .await
        {
            forget();
            return Err(error);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                forget();
                Err(Error::Timeout)
            }
        }
    }

    /// Answers `request` (a delivery made by [`request`](Self::request))
    /// with `payload`, returning once the reply is stored: in the reply
    /// queue, or, for a RabbitMQ direct reply-to address (amqp), once the
    /// broker took it. A direct reply is stored nowhere: it reaches the
    /// requester only while the channel that sent the request is open, and
    /// is dropped by the broker otherwise (the request then times out).
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when `request` carries no reply address or
    /// correlation id (it was an ordinary push); as [`push`](Self::push)
    /// otherwise.
    pub async fn reply(&self, request: &Delivery, payload: impl Into<Bytes>) -> Result<()> {
        let (Some(to), Some(correlation)) = (request.reply_to(), request.correlation_id()) else {
            return Err(Error::codec(
                "the delivery carries no x-reply-to and x-correlation-id: it is no request",
            ));
        };
        let opts = PushOptions::default().with_header(HEADER_CORRELATION_ID, correlation);
        if to.starts_with(BROKER_ADDRESS) {
            // No queue has such a name (`amq.` is the broker's): it is a
            // reply address of the driver's own.
            self.check_open()?;
            let payload = payload.into();
            validate::payload(payload.len(), self.config().queue.max_payload)?;
            let envelope = Envelope::new(payload, Some(Arc::new(opts.headers)));
            let replied = self.driver().reply_direct(to, envelope).await;
            // One label for every such address: each requester's is its own.
            self.meters().published(DIRECT_REPLY_LABEL, &replied);
            return replied;
        }
        self.push_with_bus_headers(to, payload.into(), opts).await?;
        Ok(())
    }

    /// How many replies came after their request had timed out (or for no
    /// request of this bus): each was acknowledged and dropped.
    pub fn late_replies(&self) -> u64 {
        self.inner
            .replies
            .get()
            .map_or(0, |r| r.late.load(Ordering::Relaxed))
    }

    /// At shutdown: fails the requests still waiting ([`Error::Closed`]),
    /// and names the reply queue (if there is one) for the driver to
    /// delete once its listener has stopped.
    pub(crate) fn close_replies(&self) -> Vec<String> {
        let Some(replies) = self.inner.replies.get() else {
            return Vec::new();
        };
        if let Ok(mut waiting) = replies.waiting.lock() {
            waiting.clear();
        }
        match replies.listener {
            Some(_) => vec![replies.queue.clone()],
            None => Vec::new(),
        }
    }
}
