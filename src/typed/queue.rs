//! `Queue<T>`: a typed handle on one queue — values in, [`Typed`] values out, through a [`Codec`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use actix::Recipient;
use futures_util::future::{self, Either};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bus::consume::via_recipient;
use crate::bus::Bus;
use crate::delivery::{Delivery, HandlerResult};
use crate::error::{BoxError, Error, Result};
use crate::listener::Listener;
use crate::message_id::MessageId;
use crate::options::{ListenerOptions, PushOptions};
use crate::reject::Reject;
use crate::typed::codec::{Codec, Json};
use crate::typed::message::Typed;

/// A typed handle on one queue of a bus, made by [`Bus::queue`]: it pushes
/// values of `T` encoded by its codec `C` (JSON unless
/// [`with_codec`](Self::with_codec) says otherwise) and hands listeners
/// [`Typed<T>`] values.
///
/// It is the same queue as the untyped one of that name (same stats,
/// purge, `<queue>.dead`), and the wire format is the plain encoded value,
/// so other programs can push to it and read from it. A payload that does
/// not decode as `T` goes to `<queue>.dead` at once, with an `x-error`
/// naming `T` and the decoder's error; it is never retried.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize)]
/// struct Order {
///     id: u32,
///     cents: u64,
/// }
///
/// # actix::System::new().block_on(async {
/// let bus = actorbus::Bus::memory();
/// let orders = bus.queue::<Order>("orders");
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let tx = std::sync::Mutex::new(Some(tx));
/// orders
///     .add_listener(move |order| {
///         if let Some(tx) = tx.lock().unwrap().take() {
///             let _ = tx.send(order.cents);
///         }
///         async { Ok(()) }
///     })
///     .await?;
/// orders.push(&Order { id: 1, cents: 250 }).await?;
/// assert_eq!(rx.await.unwrap(), 250);
/// # bus.shutdown().await?;
/// # Ok::<_, actorbus::Error>(())
/// # }).unwrap();
/// ```
pub struct Queue<T, C = Json> {
    /// The bus it pushes to and listens on.
    bus: Bus,
    /// The queue's name.
    name: Arc<str>,
    /// Encodes pushes, decodes deliveries.
    codec: Arc<C>,
    /// The type of its messages.
    marker: PhantomData<fn(T) -> T>,
}

impl Bus {
    /// A typed handle on `queue`, with JSON as its codec.
    ///
    /// The name is checked by each call on the handle, as for the untyped
    /// calls ([`Error::InvalidQueueName`]).
    pub fn queue<T>(&self, queue: &str) -> Queue<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        Queue {
            bus: self.clone(),
            name: queue.into(),
            codec: Arc::new(Json),
            marker: PhantomData,
        }
    }
}

impl<T, C> Queue<T, C>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    C: Codec,
{
    /// The same queue with `codec` instead.
    pub fn with_codec<D: Codec>(self, codec: D) -> Queue<T, D> {
        Queue {
            bus: self.bus,
            name: self.name,
            codec: Arc::new(codec),
            marker: PhantomData,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Pushes `value`, encoded by the codec.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when `value` cannot be encoded; otherwise as
    /// [`Bus::push`].
    pub async fn push(&self, value: &T) -> Result<MessageId> {
        self.push_with(value, PushOptions::default()).await
    }

    /// Pushes `value` with a delay and/or headers.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub async fn push_with(&self, value: &T, opts: PushOptions) -> Result<MessageId> {
        let payload = self.codec.encode(value).map_err(Error::codec)?;
        self.bus.push_with(&self.name, payload, opts).await
    }

    /// Pushes every value of `values`, each encoded by the codec, as one
    /// [`Bus::push_batch`]: all are encoded before any is pushed.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when a value cannot be encoded (nothing is pushed
    /// then); otherwise as [`Bus::push_batch`].
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// let numbers = bus.queue::<u32>("numbers");
    /// let ids = numbers.push_batch(&[1, 2, 3]).await?;
    /// assert_eq!(ids.len(), 3);
    /// assert_eq!(bus.stats("numbers").await?.ready, 3);
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn push_batch<'a>(
        &self,
        values: impl IntoIterator<Item = &'a T>,
    ) -> Result<Vec<MessageId>>
    where
        T: 'a,
    {
        let payloads = values
            .into_iter()
            .map(|value| self.codec.encode(value).map_err(Error::codec))
            .collect::<Result<Vec<_>>>()?;
        self.bus.push_batch(&self.name, payloads).await
    }

    /// Attaches `handler`, which gets each message decoded, with default
    /// [`ListenerOptions`]. `Ok` acknowledges; `Err` retries (or, with
    /// [`Reject`], dead-letters at once).
    ///
    /// # Errors
    ///
    /// As [`Bus::add_listener`].
    pub async fn add_listener<F, Fut>(&self, handler: F) -> Result<Listener>
    where
        F: Fn(Typed<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add_listener_with(ListenerOptions::default(), handler)
            .await
    }

    /// Attaches `handler` with `opts` (concurrency, prefetch).
    ///
    /// # Errors
    ///
    /// As [`Bus::add_listener`].
    pub async fn add_listener_with<F, Fut>(
        &self,
        opts: ListenerOptions,
        handler: F,
    ) -> Result<Listener>
    where
        F: Fn(Typed<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let codec = self.codec.clone();
        self.bus
            .add_listener_with(&self.name, opts, move |delivery| {
                match decode::<T, C>(&codec, delivery) {
                    Ok(typed) => Either::Left(handler(typed)),
                    Err(rejected) => Either::Right(future::ready(Err(rejected))),
                }
            })
            .await
    }

    /// Attaches an actix actor that implements `Handler<Typed<T>>`: each
    /// message is decoded and sent to `recipient`, and its
    /// [`HandlerResult`] settles it.
    ///
    /// # Errors
    ///
    /// As [`Bus::subscribe`].
    pub async fn subscribe(&self, recipient: Recipient<Typed<T>>) -> Result<Listener> {
        self.subscribe_with(ListenerOptions::default(), recipient)
            .await
    }

    /// Attaches an actix actor with `opts`, as [`Bus::subscribe_with`].
    ///
    /// # Errors
    ///
    /// As [`Bus::subscribe`].
    pub async fn subscribe_with(
        &self,
        opts: ListenerOptions,
        recipient: Recipient<Typed<T>>,
    ) -> Result<Listener> {
        let codec = self.codec.clone();
        let handler = via_recipient(recipient, move |delivery| decode::<T, C>(&codec, delivery));
        self.bus.attach(&self.name, opts, handler).await
    }
}

/// `delivery` decoded, or the [`Reject`] that dead-letters it at once,
/// naming `T` and the codec's error.
fn decode<T: DeserializeOwned, C: Codec>(
    codec: &C,
    delivery: Delivery,
) -> std::result::Result<Typed<T>, BoxError> {
    match codec.decode::<T>(delivery.payload()) {
        Ok(value) => Ok(Typed::new(value, delivery)),
        Err(error) => Err(Reject::new(format!(
            "cannot decode the payload as {}: {error}",
            std::any::type_name::<T>()
        ))
        .into()),
    }
}

impl<T, C> Clone for Queue<T, C> {
    fn clone(&self) -> Self {
        Queue {
            bus: self.bus.clone(),
            name: self.name.clone(),
            codec: self.codec.clone(),
            marker: PhantomData,
        }
    }
}

impl<T, C> fmt::Debug for Queue<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<T>())
            .field("codec", &std::any::type_name::<C>())
            .finish()
    }
}
