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

#[test]
fn exec_survives_a_daemon_kill_9() {
    let mut d = Daemon::start();
    d.docker_ok(&["run", "-d", "--name", "host", IMAGE, "sleep", "300"]);
    // An attached exec that writes for a while, then leaves a mark: its process belongs to
    // its own monitor, so the daemon's death neither kills it nor breaks its output pipe.
    let mut client = d
        .docker_cmd(&[
            "exec",
            "host",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.25; done; echo done > /exec-done",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    d.kill_daemon();
    let _ = client.wait();
    std::thread::sleep(Duration::from_millis(2500));
    d.spawn();
    assert_eq!(d.docker_ok(&["exec", "host", "cat", "/exec-done"]), "done");
    // A detached exec started by the new daemon runs to its end as well.
    d.docker_ok(&[
        "exec",
        "-d",
        "host",
        "sh",
        "-c",
        "sleep 0.3; echo d > /detached",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(d.docker_ok(&["exec", "host", "cat", "/detached"]), "d");
    d.docker_ok(&["rm", "-f", "host"]);
}
