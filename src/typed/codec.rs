//! `Codec`: how a typed queue turns values into payload bytes and back — JSON by default, MessagePack behind a feature.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::BoxError;

/// Turns values into payload bytes and back, for a typed [`Queue`](crate::Queue).
///
/// [`Json`] is the default; [`MessagePack`] comes with the `msgpack` cargo
/// feature. Implement it to plug in another format.
///
/// ```
/// use actorbus::{BoxError, Codec};
///
/// /// JSON, pretty-printed.
/// #[derive(Debug, Clone, Copy, Default)]
/// struct PrettyJson;
///
/// impl Codec for PrettyJson {
///     fn encode<T: serde::Serialize>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
///         Ok(serde_json::to_vec_pretty(value)?)
///     }
///     fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
///         Ok(serde_json::from_slice(bytes)?)
///     }
/// }
///
/// # actix::System::new().block_on(async {
/// let bus = actorbus::Bus::memory();
/// let queue = bus.queue::<Vec<u32>>("pretty").with_codec(PrettyJson);
/// queue.push(&vec![1, 2]).await?;
/// let raw = bus.receive("pretty", std::time::Duration::from_secs(1)).await?;
/// assert!(raw.as_str()?.contains('\n'));
/// # bus.shutdown().await?;
/// # Ok::<_, actorbus::Error>(())
/// # }).unwrap();
/// ```
pub trait Codec: Send + Sync + 'static {
    /// The payload of `value`.
    ///
    /// # Errors
    ///
    /// The format's own error when `value` cannot be encoded.
    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, BoxError>;

    /// The value in `bytes`.
    ///
    /// # Errors
    ///
    /// The format's own error when `bytes` is not a `T`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError>;
}

/// JSON through serde_json: the default codec of a typed queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl Codec for Json {
    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// MessagePack through rmp-serde (cargo feature `msgpack`), with struct
/// fields by name so that other MessagePack clients can read them.
#[cfg(feature = "msgpack")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessagePack;

#[cfg(feature = "msgpack")]
impl Codec for MessagePack {
    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(rmp_serde::to_vec_named(value)?)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }
}
