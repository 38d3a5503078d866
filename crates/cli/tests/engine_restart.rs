//! Containers outlive the daemon: a SIGKILLed daemon's containers keep running, and the next
//! daemon on the same root finds them, their logs (written while it was down) and exit codes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::engine::{out, Daemon, IMAGE};

#[test]
fn containers_survive_a_daemon_kill_9() {
    let mut d = Daemon::start();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        IMAGE,
        "sh",
        "-c",
        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "seven",
        IMAGE,
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    d.docker_ok(&["create", "--name", "idle", IMAGE, "true"]);
    let pid: i32 = d.inspect("{{.State.Pid}}", "ticker").parse().unwrap();
    assert!(pid > 0);
    d.kill_daemon();
    // The containers run on without it.
    std::thread::sleep(Duration::from_millis(1800));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "ticker died with the daemon"
    );
    let monitors = d.recorded_pids();
    assert_eq!(monitors.len(), 2, "{monitors:?}");
    d.spawn();
    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.contains("ticker running"), "{ps}");
    assert!(ps.contains("seven exited"), "{ps}");
    assert!(ps.contains("idle created"), "{ps}");
    assert_eq!(d.inspect("{{.State.ExitCode}}", "seven"), "7");
    assert_eq!(d.inspect("{{.State.Pid}}", "ticker"), pid.to_string());
    // More than the ~3 lines the first daemon saw: the monitor kept logging.
    let logs = out(&d.docker(&["logs", "ticker"]));
    let n = logs.lines().filter(|l| l.starts_with("tick")).count();
    assert!(n >= 15, "only {n} lines: {logs}");
    // The new daemon follows them: stop, wait and exec work.
    assert_eq!(d.docker_ok(&["exec", "ticker", "echo", "hi"]), "hi");
    let t = Instant::now();
    d.docker_ok(&["kill", "ticker"]);
    assert_eq!(d.docker_ok(&["wait", "ticker"]), "137");
    assert!(t.elapsed() < Duration::from_secs(10));
    d.docker_ok(&["rm", "ticker", "seven", "idle"]);
}
