//! This process as a node: its identity, and whether another node's process on the
//! same host is still alive (so a restarted process takes over a dead one's runs at
//! once instead of waiting for its leases to expire).

use crate::ids::NodeId;
use crate::store::NodeInfo;
use crate::time::Timestamp;

/// This process's node record.
pub fn current_node(now: Timestamp) -> NodeInfo {
    let pid = std::process::id();
    NodeInfo {
        id: NodeId::generate(),
        host: host_name(),
        pid,
        proc_start: process_start(pid).unwrap_or(0),
        started_at: now,
        heartbeat_at: now,
    }
}

/// The host name (from the kernel, then `HOSTNAME`, else `localhost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`), if known.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `node` is certainly dead: on this host, and its process is gone (or the pid
/// now belongs to a process started at another time). `false` when unsure.
pub fn is_certainly_dead(node: &NodeInfo, this_host: &str) -> bool {
    if node.host != this_host || !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    match process_start(node.pid) {
        None => true,
        Some(start) => node.proc_start != 0 && start != node.proc_start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_missing_one_is_dead() {
        let me = current_node(Timestamp::from_millis(0));
        assert!(me.proc_start > 0, "reads /proc/self/stat");
        assert!(!is_certainly_dead(&me, &me.host));
        let gone = NodeInfo {
            pid: u32::MAX - 7,
            ..me.clone()
        };
        assert!(is_certainly_dead(&gone, &me.host));
        let elsewhere = NodeInfo {
            host: "other-host".into(),
            ..gone
        };
        assert!(!is_certainly_dead(&elsewhere, &me.host));
        let reused = NodeInfo {
            proc_start: me.proc_start + 1,
            ..me.clone()
        };
        assert!(is_certainly_dead(&reused, &me.host));
    }
}
