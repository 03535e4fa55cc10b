//! Traces (feature `otel`): one trace from the pushing span to every handler run, across a retry.

use std::collections::BTreeMap;

use actorbus::Delivery;
use opentelemetry::trace::{SpanKind, TraceContextExt, TraceId};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{bus_with, shutdown};
use crate::support::otel::{finished, recording, TEST_TARGET};
use crate::support::{eventually, fast_config, unique_queue, BusFactory, Collector, LIMIT};

/// The trace id of the span the caller runs in.
fn current_trace() -> TraceId {
    tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id()
}

/// The finished spans whose `messaging.destination.name` is `queue`.
fn spans_of(queue: &str) -> Vec<SpanData> {
    finished()
        .into_iter()
        .filter(|s| {
            attributes(s).get("messaging.destination.name") == Some(&Value::from(queue.to_owned()))
        })
        .collect()
}

fn attributes(span: &SpanData) -> BTreeMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect()
}

pub async fn one_trace_from_push_to_handler_across_a_retry(factory: &BusFactory) {
    let _recording = recording();
    let bus = bus_with(factory, fast_config()).await;
    let system = match bus.config().queue.driver {
        actorbus::DriverKind::Amqp => "rabbitmq",
        actorbus::DriverKind::Redis => "redis",
        _ => "memory",
    };
    let q = unique_queue("trace");
    // What each handler run sees: its attempt and the trace it runs in.
    let runs: Collector<(u32, TraceId)> = Collector::new();
    let seen = runs.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            seen.push((d.attempt(), current_trace()));
            let attempt = d.attempt();
            async move {
                if attempt == 1 {
                    Err("failing the first attempt".into())
                } else {
                    Ok(())
                }
            }
        })
        .await
        .expect("add_listener");

    let root = tracing::info_span!(target: TEST_TARGET, "test.push");
    let trace = root.context().span().span_context().trace_id();
    assert_ne!(trace, TraceId::INVALID, "the test's span is traced");
    let id = bus
        .push(&q, "traced")
        .instrument(root.clone())
        .await
        .expect("push");
    drop(root);

    let runs = runs.wait_for(2, LIMIT).await;
    assert_eq!(
        runs,
        [(1, trace), (2, trace)],
        "both handler runs, the retry too, continue the pusher's trace"
    );
    eventually(
        "the publish and two process spans exported",
        LIMIT,
        || async { spans_of(&q).len() >= 3 },
    )
    .await;
    let spans = spans_of(&q);
    let publish: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == format!("{q} publish"))
        .collect();
    let mut process: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == format!("{q} process"))
        .collect();
    assert_eq!((publish.len(), process.len()), (1, 2), "{spans:#?}");
    let publish = publish[0];
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(publish.span_context.trace_id(), trace);
    let fields = attributes(publish);
    assert_eq!(fields["messaging.system"], Value::from(system));
    assert_eq!(fields["messaging.operation"], Value::from("publish"));
    assert_eq!(fields["messaging.message.id"], Value::from(id.to_string()));

    process.sort_by_key(|s| attributes(s)["messaging.actorbus.attempt"].to_string());
    for (span, attempt) in process.iter().zip([1i64, 2]) {
        assert_eq!(span.span_kind, SpanKind::Consumer);
        assert_eq!(span.span_context.trace_id(), trace, "attempt {attempt}");
        assert_eq!(
            span.parent_span_id,
            publish.span_context.span_id(),
            "attempt {attempt} is a child of the publish span"
        );
        let fields = attributes(span);
        assert_eq!(fields["messaging.system"], Value::from(system));
        assert_eq!(fields["messaging.operation"], Value::from("process"));
        assert_eq!(fields["messaging.message.id"], Value::from(id.to_string()));
        assert_eq!(fields["messaging.actorbus.attempt"], Value::from(attempt));
    }
    assert_eq!(
        process[0].status,
        opentelemetry::trace::Status::error("failing the first attempt"),
        "the failed run's span says so"
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}
