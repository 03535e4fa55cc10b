//! The spans of a push and of a delivery, with the OpenTelemetry messaging fields.
//!
//! `INFO` spans of target `actorbus`: a subscriber that filters them out
//! makes each one a disabled span, and their fields are never formatted.
//! `otel.*` fields are read by `tracing-opentelemetry` (name, kind, status).
//!
//! They are spans for `tracing` subscribers only. Until one is installed
//! (globally or for a scope), none is made: see [`unobserved`].

use std::collections::BTreeMap;
use std::future::Future;

use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::delivery::{Delivery, Envelope, Headers};
use crate::error::Result;

/// The span of one push (or publish) of `envelope` to `destination`, a
/// child of the caller's current span; with `otel`, its trace context goes
/// into the envelope's headers.
pub(crate) fn publish(system: &'static str, destination: &str, envelope: &mut Envelope) -> Span {
    if unobserved() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: "actorbus",
        "actorbus.publish",
        otel.name = %format_args!("{destination} publish"),
        otel.kind = "producer",
        otel.status_code = Empty,
        otel.status_description = Empty,
        messaging.system = system,
        messaging.destination.name = destination,
        messaging.message.id = %envelope.id,
        messaging.operation = "publish",
    );
    inject(&span, &mut envelope.headers);
    span
}

/// Runs `work` inside `span`, and marks the span failed when it fails.
pub(crate) async fn traced<T>(span: &Span, work: impl Future<Output = Result<T>>) -> Result<T> {
    let done = work.instrument(span.clone()).await;
    if let Err(error) = &done {
        failed(span, error);
    }
    done
}

/// The span a delivery's handler runs in. A root span, unless (feature
/// `otel`) the message's headers carry a trace context: then it continues
/// that trace.
pub(crate) fn process(system: &'static str, delivery: &Delivery) -> Span {
    if unobserved() {
        return Span::none();
    }
    let queue = delivery.queue();
    let span = tracing::info_span!(
        target: "actorbus",
        parent: None,
        "actorbus.process",
        otel.name = %format_args!("{queue} process"),
        otel.kind = "consumer",
        otel.status_code = Empty,
        otel.status_description = Empty,
        messaging.system = system,
        messaging.destination.name = queue,
        messaging.message.id = %delivery.id(),
        messaging.operation = "process",
        messaging.actorbus.attempt = i64::from(delivery.attempt()),
    );
    continue_trace(&span, delivery.headers());
    span
}

/// Whether no `tracing` subscriber was ever installed, globally or for a
/// scope: then every span would be disabled, and the macros are skipped.
///
/// Why not let the macros find that out: when some crate of the build turns
/// on `tracing`'s `log` feature (actix-web does), a disabled span made
/// with no subscriber installed also offers its fields, and then each
/// enter and exit, to the `log` crate. That is two spans per message, and
/// about a tenth of the CPU of the memory driver's end-to-end benchmark
/// row, for records that a program without a `tracing` subscriber does not
/// want: a `log` user would get a line per message.
#[inline]
fn unobserved() -> bool {
    !tracing::dispatcher::has_been_set()
}

/// Marks `span` (a publish or process span) failed with `error`.
pub(crate) fn failed(span: &Span, error: &dyn std::fmt::Display) {
    if !span.is_disabled() {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", tracing::field::display(error));
    }
}

/// Writes the trace context of `span` into `headers` (feature `otel`).
#[inline(always)]
#[cfg_attr(not(feature = "otel"), allow(unused_variables))]
fn inject(span: &Span, headers: &mut Headers) {
    #[cfg(feature = "otel")]
    super::propagate::inject(span, headers);
}

/// Makes `span` continue the trace whose context `headers` carry (feature `otel`).
#[inline(always)]
#[cfg_attr(not(feature = "otel"), allow(unused_variables))]
fn continue_trace(span: &Span, headers: &BTreeMap<String, String>) {
    #[cfg(feature = "otel")]
    super::propagate::extract(span, headers);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;

    /// One test for both states: a subscriber once installed counts for
    /// the rest of the process, so "none yet" must be checked first.
    #[test]
    fn spans_are_made_only_once_a_subscriber_is_installed() {
        let mut envelope = Envelope::new(Bytes::from_static(b"x"), None);
        let delivery = Delivery::new(envelope.clone(), Arc::from("q"));
        assert!(publish("memory", "q", &mut envelope).is_none());
        assert!(process("memory", &delivery).is_none());

        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            assert!(!publish("memory", "q", &mut envelope).is_disabled());
            assert!(!process("memory", &delivery).is_disabled());
        });
    }
}
