//! docker-py (the `docker` package of PyPI) against berth: `tests/dockerpy/smoke.py`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::engine::{err, out, run_cmd, Daemon, IMAGE};

#[test]
fn docker_py_runs_containers_logs_exec_images_volumes() {
    let has = Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        has,
        "docker-py is missing: scripts/install-deps.sh installs it (python3 -m pip install docker)"
    );
    let d = Daemon::start();
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/dockerpy/smoke.py"
    ))
    .arg(&d.socket)
    .arg(IMAGE);
    let o = run_cmd(cmd, None, 120);
    assert!(
        o.status.success(),
        "{}{}\n--- daemon log:\n{}",
        out(&o),
        err(&o),
        d.daemon_log()
    );
    assert!(out(&o).contains("docker-py ok"));
}
