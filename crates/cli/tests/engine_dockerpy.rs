//! docker-py (the `docker` package of PyPI) against berth: `tests/dockerpy/smoke.py`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::engine::{run_dockerpy, Daemon, IMAGE};

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
    run_dockerpy(&d, "smoke.py", &[IMAGE], "docker-py ok");
}
