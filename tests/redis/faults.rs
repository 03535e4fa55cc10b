//! The fault suite on redis (tests/support/faults.rs has the cases), each
//! case on a PRIVATE redis-server of its own (the shared one is never
//! touched), one case at a time. Redis has no heartbeat: a silent cut is
//! found by the driver's bounded reply timeout.

use std::time::Duration;

use crate::support::faults;
use crate::support::redis::PrivateRedis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_cut_60s() {
    let _serial = faults::serial().await;
    let redis = PrivateRedis::start();
    faults::network_cut(&redis, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_broker_15s() {
    let _serial = faults::serial().await;
    let redis = PrivateRedis::start();
    faults::hung_broker(&redis, Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flaps_30s() {
    let _serial = faults::serial().await;
    let redis = PrivateRedis::start();
    faults::connection_flaps(&redis, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of producer_killed_mid_run"]
async fn producer_child() {
    faults::producer_child().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_killed_mid_run() {
    let _serial = faults::serial().await;
    let redis = PrivateRedis::start();
    faults::producer_killed(&redis, "redis::faults::producer_child").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of slow_handler_with_a_second_process"]
async fn consumer_child() {
    faults::consumer_child().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handler_with_a_second_process() {
    let _serial = faults::serial().await;
    let redis = PrivateRedis::start();
    faults::slow_handler_with_a_second_process(&redis, "redis::faults::consumer_child").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_edges_beside_a_stream() {
    let _serial = faults::serial().await;
    let redis = PrivateRedis::start();
    faults::hard_edges(&redis).await;
}
