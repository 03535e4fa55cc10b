//! `Timer`: one actor timer, re-armed for the earliest of many deadlines.
//!
//! A queue has delayed messages, parked pushes and waiting receives, each
//! with its own deadline; one timer for the earliest of them keeps the
//! actor's context from holding a timer per message.

use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, SpawnHandle};

/// The longest single wait; a later deadline re-arms when it fires, so a
/// huge delay never reaches the runtime's timer as an overflowing duration.
const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// `now + wait`, saturating instead of overflowing on absurd waits.
pub(crate) fn deadline(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 60 * 60))
}

/// The armed timer of one actor, if any, and when it fires.
#[derive(Default)]
pub(crate) struct Timer {
    armed: Option<(Instant, SpawnHandle)>,
}

impl Timer {
    /// Forgets the armed timer: it has fired, or it belonged to a context
    /// that a restart replaced.
    pub(crate) fn disarm(&mut self) {
        self.armed = None;
    }

    /// Makes sure `fire` runs no later than `next`. An earlier timer stays;
    /// a later one is replaced. `fire` must call [`disarm`](Self::disarm).
    pub(crate) fn arm<A, C>(&mut self, ctx: &mut C, next: Instant, fire: fn(&mut A, &mut C))
    where
        A: Actor<Context = C>,
        C: AsyncContext<A> + 'static,
    {
        if let Some((armed, handle)) = self.armed {
            if armed <= next {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = next.saturating_duration_since(Instant::now()).min(MAX_WAIT);
        let handle = ctx.run_later(wait, fire);
        self.armed = Some((next, handle));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_saturates() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now);
        assert_eq!(
            deadline(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
