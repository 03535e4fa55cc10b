//! `RetryPolicy`: what happens to a failed delivery — retry after a backoff, or dead-letter.
//!
//! Pure logic shared by every driver, so that retries and dead letters behave
//! the same on memory, amqp and redis.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::config::RetryConfig;

/// Header naming the last handler error of a dead letter.
pub(crate) const HEADER_ERROR: &str = "x-error";
/// Header with the number of attempts a dead letter had.
pub(crate) const HEADER_ATTEMPTS: &str = "x-attempts";
/// Header with the RFC 3339 time the message was dead-lettered.
pub(crate) const HEADER_FAILED_AT: &str = "x-failed-at";

/// Longest `x-error` text kept; a handler's error can be arbitrarily large
/// and headers travel with every copy of the message.
const MAX_ERROR_LEN: usize = 1024;

/// What to do with a delivery whose handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Deliver again as `attempt` after `after`.
    Retry { attempt: u32, after: Duration },
    /// Give up: move to `<queue>.dead` with these extra headers.
    DeadLetter { headers: BTreeMap<String, String> },
}

/// Retry settings of one bus.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    config: RetryConfig,
}

impl RetryPolicy {
    pub(crate) fn new(config: RetryConfig) -> Self {
        RetryPolicy { config }
    }

    /// The wait before delivering attempt `failed_attempt + 1`: `backoff`
    /// doubled per earlier failure, capped at `max_backoff`.
    pub(crate) fn backoff(&self, failed_attempt: u32) -> Duration {
        let doublings = failed_attempt.saturating_sub(1).min(31);
        self.config
            .backoff
            .checked_mul(1 << doublings)
            .map_or(self.config.max_backoff, |wait| {
                wait.min(self.config.max_backoff)
            })
    }

    /// `queue.retry.max_attempts`.
    pub(crate) fn max_attempts(&self) -> u32 {
        self.config.max_attempts
    }

    /// Decides the fate of a delivery that failed on `attempt` with `error`.
    pub(crate) fn on_failure(&self, attempt: u32, error: &str, now: SystemTime) -> Verdict {
        if attempt < self.config.max_attempts {
            return Verdict::Retry {
                attempt: attempt + 1,
                after: self.backoff(attempt),
            };
        }
        Verdict::DeadLetter {
            headers: dead_letter_headers(attempt, error, now),
        }
    }
}

/// The why-headers of a message dead-lettered on `attempt` with `error`:
/// after its last retry, or at once when its handler rejected it.
pub(crate) fn dead_letter_headers(
    attempt: u32,
    error: &str,
    now: SystemTime,
) -> BTreeMap<String, String> {
    let mut error = error.to_owned();
    if error.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
    }
    BTreeMap::from([
        (HEADER_ERROR.to_owned(), error),
        (HEADER_ATTEMPTS.to_owned(), attempt.to_string()),
        (
            HEADER_FAILED_AT.to_owned(),
            humantime::format_rfc3339_millis(now).to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32, backoff_ms: u64, max_backoff_ms: u64) -> RetryPolicy {
        RetryPolicy::new(RetryConfig {
            max_attempts,
            backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(max_backoff_ms),
        })
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy(10, 200, 1000);
        let waits: Vec<u64> = (1..=5).map(|a| p.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1000, 1000]);
        // Huge attempt counts neither overflow nor exceed the cap.
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn retries_until_max_attempts_then_dead_letters() {
        let p = policy(3, 10, 100);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            p.on_failure(1, "boom", now),
            Verdict::Retry {
                attempt: 2,
                after: Duration::from_millis(10)
            }
        );
        assert_eq!(
            p.on_failure(2, "boom", now),
            Verdict::Retry {
                attempt: 3,
                after: Duration::from_millis(20)
            }
        );
        let Verdict::DeadLetter { headers } = p.on_failure(3, "boom", now) else {
            panic!("third failure of three must dead-letter");
        };
        assert_eq!(headers[HEADER_ERROR], "boom");
        assert_eq!(headers[HEADER_ATTEMPTS], "3");
        assert_eq!(headers[HEADER_FAILED_AT], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn single_attempt_dead_letters_at_once_and_long_errors_are_cut() {
        let p = policy(1, 10, 100);
        let long = "é".repeat(MAX_ERROR_LEN);
        let Verdict::DeadLetter { headers } = p.on_failure(1, &long, SystemTime::now()) else {
            panic!("max_attempts = 1 never retries");
        };
        assert!(headers[HEADER_ERROR].len() <= MAX_ERROR_LEN);
        assert!(headers[HEADER_ERROR].chars().all(|c| c == 'é'));
    }
}
