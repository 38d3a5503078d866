//! Ending a process inside a container together with everything it started: a healthcheck
//! probe that outlives its timeout (`sh -c 'sleep 60; true'` leaves `sleep` behind when only
//! the shell is killed).
//!
//! The tree is stopped first, from the root down, so that no member forks or is reparented
//! to the container's init while it is listed; then every member is killed.

use std::collections::HashSet;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Rounds of listing the tree before giving up on a member that will not stop.
const ROUNDS: usize = 200;

/// One line of /proc/PID/stat: the state letter and the parent.
fn stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last `)`.
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The pid namespace of a process, as its /proc link names it.
fn pid_ns(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The cgroups of a process, as /proc/PID/cgroup lists them.
fn cgroups(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
}

/// Kills `root` and its descendants with SIGKILL, if `root` is a process of the container
/// whose init is `init` (the same pid namespace and cgroups): a pid that ended and was reused
/// meanwhile is left alone.
pub fn kill_tree_in(root: i32, init: i32) {
    let ours = root > 0
        && init > 0
        && pid_ns(root).is_some_and(|ns| Some(ns) == pid_ns(init))
        && cgroups(root).is_some_and(|cg| Some(cg) == cgroups(init));
    if !ours {
        return;
    }
    let mut tree: Vec<i32> = vec![root];
    let mut known: HashSet<i32> = tree.iter().copied().collect();
    let _ = kill(Pid::from_raw(root), Signal::SIGSTOP);
    for _ in 0..ROUNDS {
        let mut grown = false;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if known.contains(&pid) {
                continue;
            }
            if let Some((_, ppid)) = stat(pid) {
                if known.contains(&ppid) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
                    known.insert(pid);
                    tree.push(pid);
                    grown = true;
                }
            }
        }
        // Done when nothing new appeared and every member has stopped (or is gone), so
        // none can fork any more.
        let settled = tree
            .iter()
            .all(|p| stat(*p).is_none_or(|(st, _)| matches!(st, 'T' | 't' | 'Z' | 'X')));
        if !grown && settled {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for p in tree {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
}
