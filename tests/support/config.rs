//! Helpers shared by the config test targets (`config.rs`, `config_errors.rs`,
//! `config_hocon.rs`), each of which includes this file with
//! `#[path = "support/config.rs"] mod config_support;`.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set, and say
//! so when it has.

// Each target uses only some of these helpers.
#![allow(dead_code, unreachable_pub)]

use actorbus::{Config, Error};

/// Fails the test if an `ACTORBUS_*__*` override is set in the environment.
pub fn assert_no_env_overrides() {
    let set: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("ACTORBUS_") && name.contains("__"))
        .collect();
    assert!(
        set.is_empty(),
        "these tests expect no ACTORBUS_* overrides in the environment, found {set:?}"
    );
}

/// The `Config` that `text` must parse to.
pub fn parse(text: &str) -> Config {
    assert_no_env_overrides();
    match Config::from_hocon_str(text) {
        Ok(config) => config,
        Err(err) => panic!("{text:?} should parse, got {err}"),
    }
}

/// The key and message of the `Error::Config` that `text` must give.
pub fn config_error(text: &str) -> (String, String) {
    assert_no_env_overrides();
    match Config::from_hocon_str(text) {
        Err(Error::Config { key, message }) => (key, message),
        other => panic!("{text:?} should be Error::Config, got {other:?}"),
    }
}
