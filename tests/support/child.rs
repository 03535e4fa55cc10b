//! Tests that run part of themselves in a child process: the child is this
//! test binary re-executed to run one test by name, and it reports what it
//! handled by appending numbers to a log file.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// Starts the test `name` of this binary (ignored or not) in a child
/// process with `vars` set; its stdout is dropped, its stderr shown.
pub fn spawn_test(name: &str, vars: &[(&str, &OsStr)]) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--include-ignored", "--exact", name, "--test-threads=1"])
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child test")
}

/// The numbers a child appended to `log` so far, one per line, in order.
pub fn logged(log: &Path) -> Vec<u32> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// The child's side of [`logged`]: appends one number per call to `log`
/// (created if missing), before the caller's handler returns `Ok`, so that
/// what is in the log counts as handled.
pub fn log_appender(log: &str) -> impl Fn(u32) + Send + Sync + 'static {
    let file = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("child log"),
    );
    move |i| {
        file.lock()
            .unwrap()
            .write_all(format!("{i}\n").as_bytes())
            .expect("child log write");
    }
}
