//! W3C trace context (`traceparent`, `tracestate`) into a message's headers on push, and out of them on delivery (feature `otel`).
//!
//! Through [`TraceContextPropagator`] itself, not the application's global
//! propagator: the headers are the W3C ones whatever the application set
//! up (the global one is a no-op until set), so a pusher and a handler in
//! different programs always agree. Baggage does not travel.

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::delivery::Headers;

/// The header every traced message has.
const TRACEPARENT: &str = "traceparent";

/// Writes `span`'s trace context into `headers`, unless the caller set a
/// `traceparent` of their own (theirs wins). Nothing without an
/// OpenTelemetry layer or for a disabled span: no headers are added then.
pub(super) fn inject(span: &Span, headers: &mut Headers) {
    if headers
        .as_deref()
        .is_some_and(|h| h.contains_key(TRACEPARENT))
    {
        return;
    }
    let mut carried = Carried(Vec::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut carried);
    if !carried.0.is_empty() {
        Arc::make_mut(headers.get_or_insert_with(Default::default)).extend(carried.0);
    }
}

/// Makes `span` a child of the trace context in `headers`, if any.
pub(super) fn extract(span: &Span, headers: &BTreeMap<String, String>) {
    if !headers.contains_key(TRACEPARENT) {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Carrier(headers));
    // Fails only for a disabled span or without an OpenTelemetry layer:
    // then there is no trace to continue.
    let _ = span.set_parent(parent);
}

/// The headers a propagator writes.
struct Carried(Vec<(String, String)>);

impl Injector for Carried {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// A delivery's headers, as a propagator reads them.
struct Carrier<'a>(&'a BTreeMap<String, String>);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}
