//! Helpers shared by the config tests (`tests/api/config*.rs`): parsing that
//! must succeed or fail, files in a temp directory, and running one test in a
//! child process with an environment of its own.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set, and say
//! so when it has.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A directory under the temp dir, removed with what it holds when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "actorbus-config-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("cannot create the temp dir");
        TempDir(path)
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("cannot write the temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the one test `name` (ignored ones included) of this test binary in a
/// child process with `vars` added to its environment, and returns its output.
pub fn run_test_in_child(name: &str, vars: &[(&str, &str)]) -> Output {
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            name,
            "--exact",
            "--include-ignored",
            "--test-threads=1",
            "-q",
        ])
        .envs(vars.iter().copied())
        .output()
        .expect("cannot run the test binary");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{name} did not run and pass in the child: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
