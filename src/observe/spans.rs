//! The spans of a push and of a delivery, with the OpenTelemetry messaging fields.
//!
//! `INFO` spans of target `actorbus`: a subscriber that filters them out
//! makes each one a disabled span, and their fields are never formatted.
//! `otel.*` fields are read by `tracing-opentelemetry` (name, kind, status).

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
