//! The main memory e2e row again with observability on (a build with
//! `--features metrics,otel`): a metrics recorder and a `tracing` subscriber
//! with the OpenTelemetry layer, as an instrumented service runs the bus.
//!
//! The recorder is Prometheus's (without its HTTP listener: nothing scrapes
//! during the row); the layer records every span (always-on sampler), each
//! push writes a `traceparent`, each delivery reads it, and a batch span
//! processor hands the finished spans to an exporter that drops them, as
//! an OTLP exporter's queue would take them. Both are global (the bus's
//! actors run on threads of their own) and cannot be taken back, so this
//! row runs after every other row of the run; the table shows it next to
//! the plain row.

use std::sync::Once;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::E2e;

/// The row's name: the plain row's, observed.
pub(crate) const NAME: &str = "memory e2e 1q x 1l metrics+otel";

/// The main row's spec with this row's name.
pub(crate) fn spec(main: E2e) -> E2e {
    E2e { name: NAME, ..main }
}

/// Installs the recorder and the subscriber, once.
pub(crate) fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::set_global_recorder(recorder).expect("no other metrics recorder");
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(Dropped)
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("actorbus-bench"))
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("actorbus", tracing::Level::INFO),
            );
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .expect("no other tracing subscriber");
        // The provider lives as long as the process.
        std::mem::forget(provider);
    });
}

/// An exporter that takes the spans and drops them.
#[derive(Debug)]
struct Dropped;

impl SpanExporter for Dropped {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}
