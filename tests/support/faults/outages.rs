//! The broker outages: a silent network cut, a hung broker, connection flaps.

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Broker, Traffic, PREFETCH};
use crate::support::firewall::Cut;

/// SIGCONTs the process again on drop, whatever happens to the case.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

/// Runs `fault` while the flow runs, then checks that the flow resumed,
/// that pushes meanwhile timed out (the broker was out of reach) and the ledger.
async fn outage(broker: &dyn Broker, tag: &str, case: &str, fault: impl Future<Output = ()>) {
    let traffic = Traffic::start(broker, tag).await;
    traffic.progress(50, "before the fault").await;
    fault.await;
    traffic.progress(50, "after the fault").await;
    let report = traffic.finish(case, 4 * u32::from(PREFETCH)).await;
    assert!(
        report.timeouts > 0,
        "{case}: no push timed out: was the broker out of reach?"
    );
}

/// A silent network cut of `length`: iptables drops every packet of the
/// broker's port, both ways. Pushes meanwhile time out; after it, the flow resumes.
pub async fn network_cut(broker: &dyn Broker, length: Duration) {
    let case = format!("network cut {} s", length.as_secs());
    outage(broker, "cut", &case, async {
        let cut = Cut::start(broker.port());
        tokio::time::sleep(length).await;
        cut.end();
    })
    .await;
}

/// The broker hangs: SIGSTOP for `length`, then SIGCONT.
pub async fn hung_broker(broker: &dyn Broker, length: Duration) {
    let case = format!("hung broker {} s", length.as_secs());
    outage(broker, "hang", &case, async {
        let pid = broker.pid();
        signal(pid, "-STOP");
        let resume = Resume(pid);
        tokio::time::sleep(length).await;
        drop(resume);
    })
    .await;
}

/// The server drops every client connection every 2 s for `length`.
pub async fn connection_flaps(broker: &dyn Broker, length: Duration) {
    let traffic = Traffic::start(broker, "flaps").await;
    traffic.progress(50, "before the flaps").await;
    let start = Instant::now();
    let mut flaps = 0;
    // Every 2 s from start to start: rabbitmqctl itself takes a second or so.
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while start.elapsed() < length {
        every.tick().await;
        tokio::task::block_in_place(|| broker.drop_clients());
        flaps += 1;
    }
    traffic.progress(50, "after the flaps").await;
    let case = format!(
        "connection flaps every 2 s for {} s ({flaps})",
        length.as_secs()
    );
    traffic
        .finish(&case, (flaps + 1) * u32::from(PREFETCH))
        .await;
}
