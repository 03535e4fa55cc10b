//! The public API on the memory driver: errors, lifecycle, runtimes,
//! supervision of the memory channel, and configuration. The semantics every
//! driver shares are in the conformance suite (`tests/conformance.rs`).

mod support;

mod api {
    mod codecs;
    mod config;
    mod config_errors;
    mod config_hocon;
    mod errors;
    mod lifecycle;
    mod runtimes;
    mod supervision;
}
