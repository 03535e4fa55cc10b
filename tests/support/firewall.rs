//! A silent network cut for the fault suite: iptables DROP rules on one
//! loopback port, both directions, INPUT and OUTPUT. Every rule carries the
//! comment `actorbus-test-<pid>`; dropping the [`Cut`] removes its rules
//! (also when the test panics), and [`Cut::start`] first removes rules that
//! a crashed earlier run (a pid no longer alive) left behind.

#![allow(dead_code, unreachable_pub)]

use std::process::Command;

/// The rules of one cut, removed on drop.
pub struct Cut {
    rules: Vec<Vec<String>>,
}

fn iptables(args: &[String]) -> std::process::Output {
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .expect("iptables must be installed (scripts/test installs it)")
}

fn tag(pid: u32) -> String {
    format!("actorbus-test-{pid}")
}

/// Deletes every rule tagged by a process that no longer runs.
fn remove_stale_rules() {
    for chain in ["INPUT", "OUTPUT"] {
        let listing = iptables(&["-S".into(), chain.into()]);
        for line in String::from_utf8_lossy(&listing.stdout).lines() {
            let Some(pid) = line
                .split("actorbus-test-")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            // `-A CHAIN spec` → `-D CHAIN spec`
            let mut args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            args[0] = "-D".into();
            // The comment is quoted in -S output only when it has spaces: ours has none.
            let _ = iptables(&args);
        }
    }
}

impl Cut {
    /// Drops every packet to and from `port` on the loopback interface.
    pub fn start(port: u16) -> Cut {
        remove_stale_rules();
        let port = port.to_string();
        let comment = tag(std::process::id());
        let mut rules = Vec::new();
        for (chain, iface) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            for direction in ["--dport", "--sport"] {
                rules.push(
                    [
                        chain,
                        iface,
                        "lo",
                        "-p",
                        "tcp",
                        direction,
                        &port,
                        "-m",
                        "comment",
                        "--comment",
                        &comment,
                        "-j",
                        "DROP",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                );
            }
        }
        let mut cut = Cut { rules: Vec::new() };
        for rule in rules {
            let mut args = vec!["-I".to_owned()];
            args.extend(rule.iter().cloned());
            let out = iptables(&args);
            assert!(
                out.status.success(),
                "iptables {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Kept for removal only once in place.
            cut.rules.push(rule);
        }
        cut
    }

    /// Ends the cut (the same as dropping it).
    pub fn end(self) {}
}

impl Drop for Cut {
    fn drop(&mut self) {
        for rule in self.rules.drain(..) {
            let mut args = vec!["-D".to_owned()];
            args.extend(rule);
            let out = iptables(&args);
            if !out.status.success() {
                eprintln!(
                    "could not remove iptables rule {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
