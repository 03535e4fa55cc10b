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

/// How soon after an outage the flow must run again: the link's silence
/// detection (amqp: missed heartbeats of 5 s; redis: the 10 s TCP user
/// timeout), reconnection backoff and a busy machine.
const RESUME: Duration = Duration::from_secs(30);

/// Runs `fault` while the flow runs, then checks that the flow resumed,
/// that pushes meanwhile timed out (the broker was out of reach) and the ledger.
async fn outage(broker: &dyn Broker, tag: &str, case: &str, fault: impl Future<Output = ()>) {
    let traffic = Traffic::start(broker, tag).await;
    traffic.progress(50, "before the fault").await;
    fault.await;
    let ended = Instant::now();
    traffic.progress(1, "the first push after the fault").await;
    let resumed = ended.elapsed();
    traffic.progress(50, "after the fault").await;
    let case = format!("{case}, resumed {:.1} s after", resumed.as_secs_f64());
    let report = traffic.finish(&case, 4 * u32::from(PREFETCH)).await;
    // A dead link must be noticed, not waited out: TCP's own retransmissions
    // would resume it up to minutes later.
    assert!(
        resumed <= RESUME,
        "{case}: the flow resumed {resumed:?} after the fault ended (more than {RESUME:?})"
    );
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
    let every = Duration::from_secs(2);
    let flaps = (length.as_millis() / every.as_millis()) as u32;
    let dropped = tokio::task::block_in_place(|| broker.flap(every, flaps));
    // On average each flap found clients to drop: they came back in between.
    assert!(
        dropped >= u64::from(flaps),
        "{flaps} flaps dropped only {dropped} connections"
    );
    traffic.progress(50, "after the flaps").await;
    let case = format!(
        "connection flaps every 2 s for {} s ({flaps}, {dropped} connections dropped)",
        length.as_secs()
    );
    traffic
        .finish(&case, (flaps + 1) * u32::from(PREFETCH))
        .await;
}
