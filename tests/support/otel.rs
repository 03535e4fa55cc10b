//! OpenTelemetry for the trace tests (feature `otel`): a `tracing-opentelemetry`
//! layer in the process's one global subscriber, exporting finished spans to
//! memory.
//!
//! The bus's actors run on threads of their own, so only a global subscriber
//! sees their spans; it is installed once per process by
//! [`init_tracing`](super::init_tracing). The layer takes spans only while
//! some test holds a [`Recording`], so the other tests' many messages do not
//! pile up in the exporter. Tests running beside a recording one may add
//! spans too: a trace test picks its own by queue name.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::Layer;

/// How many tests record now.
static RECORDING: AtomicUsize = AtomicUsize::new(0);

/// The target of the tests' own spans.
pub const TEST_TARGET: &str = "actorbus_test";

struct Exporting {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

fn exporting() -> &'static Exporting {
    static EXPORTING: OnceLock<Exporting> = OnceLock::new();
    EXPORTING.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Exporting { exporter, provider }
    })
}

/// The layer for the global subscriber: the bus's spans and the tests' own,
/// while a test records.
pub fn layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let tracer = exporting().provider.tracer("actorbus-tests");
    fn traced(meta: &Metadata<'_>) -> bool {
        meta.target() == "actorbus" || meta.target() == TEST_TARGET
    }
    // Asked per span, not cached per callsite: recording comes and goes.
    let filter = DynFilterFn::new(|meta, _| RECORDING.load(Ordering::Relaxed) > 0 && traced(meta))
        .with_callsite_filter(|meta| {
            if traced(meta) {
                Interest::sometimes()
            } else {
                Interest::never()
            }
        });
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter)
}

/// Spans are exported while this lives.
pub struct Recording(());

/// Starts recording spans (installing the subscriber if needed).
pub fn recording() -> Recording {
    super::init_tracing();
    RECORDING.fetch_add(1, Ordering::Relaxed);
    Recording(())
}

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every span finished so far while recording.
pub fn finished() -> Vec<SpanData> {
    exporting()
        .exporter
        .get_finished_spans()
        .expect("in-memory exporter")
}
