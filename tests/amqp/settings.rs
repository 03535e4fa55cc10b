//! Bad amqp settings (fail fast, never retried): a closed port, wrong
//! credentials, a wrong vhost, a malformed url and a silent server each give
//! a typed error within 5 s, after one connection attempt (no retry storm).

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::amqp;
use actorbus::{Bus, Error};

/// The bound of the issue: a bad setting is reported within 5 s.
const WITHIN: Duration = Duration::from_secs(5);

async fn connect_error(url: &str) -> (Error, Duration) {
    let start = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), Bus::connect(amqp::config_at(url)))
        .await
        .unwrap_or_else(|_| panic!("Bus::connect({url}) hung"));
    let error = result.expect_err("connect with bad settings must fail");
    (error, start.elapsed())
}

fn assert_backend(error: &Error, elapsed: Duration, mentions: &str) {
    assert!(
        matches!(error, Error::Backend { .. }),
        "expected Error::Backend, got {error:?}"
    );
    assert!(elapsed < WITHIN, "took {elapsed:?}");
    let text = format!("{error} {:?}", std::error::Error::source(error));
    assert!(
        text.contains(mentions),
        "{text:?} should mention {mentions:?}"
    );
    assert!(!text.contains("guest:guest"), "the password leaked: {text}");
}

/// A local port where nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn closed_port_is_a_backend_error() {
    let port = closed_port();
    let (error, elapsed) = connect_error(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f")).await;
    assert_backend(&error, elapsed, &port.to_string());
}

#[tokio::test]
async fn wrong_credentials_are_a_backend_error() {
    let (error, elapsed) = connect_error("amqp://guest:wrong-password@127.0.0.1:5672/%2f").await;
    assert_backend(&error, elapsed, "credentials");
}

/// The whole report of a refused login says each thing once.
#[tokio::test]
async fn refused_login_reads_once() {
    let (error, _) = connect_error("amqp://guest:wrong-password@127.0.0.1:5672/%2f").await;
    let report = crate::support::assert_chain_never_repeats(&error);
    eprintln!("refused login: {report}");
    assert_eq!(report.matches("ACCESS_REFUSED").count(), 1, "{report}");
    assert_eq!(
        report,
        error.to_string(),
        "the error's own line says it all"
    );
}

#[tokio::test]
async fn wrong_vhost_is_a_backend_error() {
    let (error, elapsed) = connect_error("amqp://guest:guest@127.0.0.1:5672/no-such-vhost").await;
    assert_backend(&error, elapsed, "no-such-vhost");
}

#[tokio::test]
async fn malformed_url_is_a_config_error_naming_the_key() {
    let (error, elapsed) = connect_error("amqp://guest:guest@127.0.0.1:99999999/%2f").await;
    assert!(elapsed < WITHIN);
    assert!(
        matches!(&error, Error::Config { key, .. } if key == "amqp.url"),
        "{error:?}"
    );
}

#[cfg(not(feature = "amqps"))]
#[tokio::test]
async fn amqps_without_its_feature_is_a_config_error() {
    let (error, _) = connect_error("amqps://guest:guest@127.0.0.1:5671/%2f").await;
    match &error {
        Error::Config { key, message } => {
            assert_eq!(key, "amqp.url");
            assert!(message.contains("amqps"), "{message}");
        }
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

/// A server that accepts connections and never speaks: the connect gives up
/// within 5 s, having tried once, and tries no more afterwards.
#[tokio::test]
async fn silent_server_times_out_once_without_retrying() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    let (error, elapsed) = connect_error(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f")).await;
    assert_backend(&error, elapsed, &port.to_string());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection attempt, no retries"
    );
}

/// A refusing server (accept, then close) is tried once, not in a loop.
#[tokio::test]
async fn refusing_server_is_tried_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let (error, elapsed) = connect_error(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f")).await;
    assert_backend(&error, elapsed, &port.to_string());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no retry storm");
}
