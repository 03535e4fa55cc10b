//! `Typed<T>`: a delivery of a typed queue, its payload decoded — what a typed handler or actor gets.

use std::ops::Deref;

use crate::delivery::{Delivery, HandlerResult};

/// A decoded delivery of a typed [`Queue`](crate::Queue): derefs to the
/// value, and keeps the [`Delivery`] for its metadata.
///
/// It is an actix [`Message`](actix::Message) whose result is the
/// [`HandlerResult`], so an actor that implements `Handler<Typed<T>>` can
/// listen to a typed queue through [`Queue::subscribe`](crate::Queue::subscribe).
#[derive(Debug, Clone)]
pub struct Typed<T> {
    /// The decoded payload.
    value: T,
    /// The delivery it came in.
    delivery: Delivery,
}

impl<T> Typed<T> {
    pub(crate) fn new(value: T, delivery: Delivery) -> Self {
        Typed { value, delivery }
    }

    /// The delivery: id, queue, attempt, headers, raw payload.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// The decoded value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Typed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: 'static> actix::Message for Typed<T> {
    type Result = HandlerResult;
}
