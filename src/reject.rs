//! `Reject`: a handler error that says "this message can never succeed" — dead-lettered at once, never retried.

use crate::error::BoxError;

/// A handler error that moves its message to `<queue>.dead` at once, with
/// its `x-error`, instead of retrying it `queue.retry.max_attempts` times.
///
/// Return it for input that no retry can fix (bad data, failed
/// validation). It works on every queue, typed or not, on every driver,
/// from a closure or an actor; the channel finds it in the error's source
/// chain, so an error type that wraps a `Reject` rejects too. Its text is
/// the wrapped error's, so `x-error` reads as that error.
///
/// ```
/// use std::time::Duration;
/// use actorbus::{Bus, Reject};
///
/// # actix::System::new().block_on(async {
/// let bus = Bus::memory();
/// bus.add_listener("orders", |delivery| async move {
///     let cents: u64 = delivery.as_str()?.parse().map_err(Reject::new)?;
///     println!("{cents} cents");
///     Ok(())
/// })
/// .await?;
/// bus.push("orders", "twelve").await?;
/// let dead = bus.receive("orders.dead", Duration::from_secs(5)).await?;
/// assert_eq!(dead.headers()["x-attempts"], "1");
/// assert!(dead.headers()["x-error"].contains("invalid digit"));
/// # bus.shutdown().await?;
/// # Ok::<_, actorbus::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Reject {
    /// Why the message can never succeed.
    error: BoxError,
}

impl Reject {
    /// Wraps `error` as a rejection.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Reject {
            error: error.into(),
        }
    }

    /// The wrapped error.
    pub fn into_inner(self) -> BoxError {
        self.error
    }

    /// Whether `error`, or any error in its source chain, is a `Reject`.
    pub(crate) fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(error);
        while let Some(error) = next {
            if error.is::<Reject>() {
                return true;
            }
            next = error.source();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapper")]
    struct Wrapper(#[source] Reject);

    #[test]
    fn found_directly_and_in_a_source_chain() {
        let direct: BoxError = Reject::new("bad input").into();
        assert!(Reject::is_in(&*direct));
        assert_eq!(direct.to_string(), "bad input");
        let wrapped: BoxError = Wrapper(Reject::new("deep")).into();
        assert!(Reject::is_in(&*wrapped));
        let plain: BoxError = "just failing".into();
        assert!(!Reject::is_in(&*plain));
    }
}
