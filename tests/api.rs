//! The public API on the memory driver: errors, lifecycle, runtimes,
//! supervision of the memory channel, and configuration. The semantics every
//! driver shares are in the conformance suite (`tests/conformance.rs`).

mod support;

mod api {
    mod codecs;
    mod config;
    mod config_connections;
    mod config_errors;
    mod config_fuzz;
    mod config_hocon;
    mod config_secrets;
    mod errors;
    mod json;
    mod lifecycle;
    #[cfg(feature = "metrics")]
    mod metrics;
    mod retire;
    mod runtimes;
    mod sigterm;
    mod supervision;
    mod typed_batch;
}
