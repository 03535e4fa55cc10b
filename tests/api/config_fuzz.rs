//! 200,000 generated inputs to `Config::from_hocon_str`: none panics, each
//! is a `Config` or an `Error::Config`, and nothing is printed to stderr
//! (checked by running the inputs in a child process and reading its stderr).
//!
//! The inputs are deterministic (a fixed seed): HOCON tokens, our keys and
//! values, and stray characters, strung together at random.

use actorbus::{Config, Error};

use crate::support::config::{assert_no_env_overrides, run_test_in_child};

/// How many inputs the child parses.
const INPUTS: usize = 200_000;

/// What inputs are made of.
const TOKENS: &[&str] = &[
    "queue",
    "amqp",
    "redis",
    "retry",
    "driver",
    "max_attempts",
    "connections",
    "jobs",
    "url",
    "urls",
    "cluster",
    "memory",
    "capacity",
    "pool",
    "max_size",
    "default",
    ".",
    "=",
    ":",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    " ",
    "\t",
    "\"",
    "'",
    "\\",
    "${",
    "${?",
    "}",
    "#",
    "//",
    "+=",
    "include",
    "required(",
    ")",
    "file(",
    "1",
    "-",
    "0",
    "1.5",
    "1e400",
    "\"\"\"",
    "null",
    "true",
    "16MiB",
    "10s",
    "é",
    "\u{0}",
    "\u{7f}",
    "🦀",
    "${queue}",
    "${?HOME}",
    "\"amqp://u:p@h/%2f\"",
    "amqp://",
    "redis://",
    "unix://",
    "quorum",
    "classic",
    "kafka",
    "99999999999999999999",
    "\r",
    "\u{feff}",
    "[]",
    "{}",
];

/// A xorshift generator: deterministic, and fast enough not to matter.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One input: up to 24 pieces, each a token or, now and then, a random char.
fn input(rng: &mut Rng) -> String {
    let pieces = rng.below(24) + 1;
    let mut text = String::new();
    for _ in 0..pieces {
        if rng.below(8) == 0 {
            text.push(char::from_u32(rng.below(0x800) as u32).unwrap_or('?'));
        } else {
            text.push_str(TOKENS[rng.below(TOKENS.len())]);
        }
    }
    text
}

#[test]
#[ignore = "run by random_inputs_never_panic_nor_print, which reads its stderr"]
fn child_parses_random_inputs() {
    assert_no_env_overrides();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut parsed, mut refused) = (0, 0);
    for _ in 0..INPUTS {
        let text = input(&mut rng);
        match std::panic::catch_unwind(|| Config::from_hocon_str(&text)) {
            Ok(Ok(_)) => parsed += 1,
            Ok(Err(Error::Config { .. })) => refused += 1,
            Ok(Err(other)) => panic!("{text:?}: unexpected error kind {other:?}"),
            Err(_) => panic!("{text:?}: Config::from_hocon_str panicked"),
        }
    }
    // Both outcomes are exercised, so that the inputs are not all rubbish.
    assert!(
        parsed > INPUTS / 100 && refused > INPUTS / 100,
        "{parsed} parsed, {refused} refused"
    );
}

#[test]
fn random_inputs_never_panic_nor_print() {
    let output = run_test_in_child("api::config_fuzz::child_parses_random_inputs", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "the inputs printed to stderr:\n{stderr}");
}
