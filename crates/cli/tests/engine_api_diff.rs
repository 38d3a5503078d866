//! The Engine API against dockerd's: the request sequences real clients sent (the docker CLI,
//! docker-py, docker-compose 1.29; captured through `api_diff/proxy.py` into
//! `api_diff/corpus/`) are replayed to Debian's dockerd 20.10 and to berth, and the answers
//! compared by status, JSON shape and the values that must agree (`api_diff/replay.py`).
//! Every difference is a failure unless `replay.py`'s DIFFERENCES lists it with its reason
//! (docs/api.md lists the same).
//!
//! `capture_corpus` (ignored) makes the corpus again: `cargo test -p berth --test
//! engine_api_diff capture_corpus -- --ignored`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::dockerd::Dockerd;
use common::engine::{busybox_tar, err, out, run_cmd, try_api_on, Daemon, IMAGE};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_diff")
}

/// The test image in a daemon, imported as both engines import a rootfs tar.
fn import_busybox(socket: &Path) {
    let (status, body) = try_api_on(
        socket,
        "POST",
        &format!("/images/create?fromSrc=-&repo=busybox&tag={}", &IMAGE[8..]),
        Some(busybox_tar()),
    )
    .unwrap();
    assert_eq!(status, 200, "import: {body}");
}

#[test]
fn berth_answers_as_dockerd() {
    let dockerd = Dockerd::start();
    let berth = Daemon::start_bare();
    import_busybox(&dockerd.socket);
    import_busybox(&berth.socket);
    let mut cmd = Command::new("python3");
    cmd.arg(here().join("replay.py"))
        .arg("--reference")
        .arg(&dockerd.socket)
        .arg("--reference-dir")
        .arg(&dockerd.dir)
        .arg("--berth")
        .arg(&berth.socket)
        .arg("--berth-dir")
        .arg(&berth.dir);
    for e in std::fs::read_dir(here().join("corpus")).unwrap().flatten() {
        cmd.arg(e.path());
    }
    let o = run_cmd(cmd, None, 600);
    assert!(
        o.status.success(),
        "{}{}\n--- berth's log (tail):\n{}\n--- dockerd's log (tail):\n{}",
        out(&o),
        err(&o),
        tail(&berth.daemon_log()),
        tail(&dockerd.log()),
    );
    println!("{}", out(&o));
}

fn tail(s: &str) -> &str {
    &s[s.len().saturating_sub(4000)..]
}

/// Runs each scenario's client through the logging proxy in front of a fresh dockerd and
/// writes what it sent and got to `api_diff/corpus/<scenario>.json`.
#[test]
#[ignore = "makes the corpus again; run by hand"]
fn capture_corpus() {
    let scenarios = here().join("scenarios");
    let corpus = here().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let runs: [(&str, Vec<String>); 3] = [
        (
            "docker_cli",
            vec![
                "bash".into(),
                scenarios.join("docker_cli.sh").display().to_string(),
            ],
        ),
        (
            "dockerpy",
            vec![
                "python3".into(),
                scenarios.join("dockerpy.py").display().to_string(),
                "PROXY".into(),
                IMAGE.into(),
            ],
        ),
        (
            "compose",
            vec![
                "bash".into(),
                scenarios.join("compose.sh").display().to_string(),
            ],
        ),
    ];
    for (name, argv) in runs {
        let dockerd = Dockerd::start();
        import_busybox(&dockerd.socket);
        let proxy_sock = dockerd.dir.join("proxy.sock");
        let recording = dockerd.dir.join("recording.json");
        let mut proxy = Command::new("python3")
            .arg(here().join("proxy.py"))
            .arg(&proxy_sock)
            .arg(&dockerd.socket)
            .arg(&recording)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if proxy_sock.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let work = dockerd.dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let args: Vec<String> = argv
            .iter()
            .map(|a| a.replace("PROXY", &proxy_sock.display().to_string()))
            .collect();
        let mut c = Command::new(&args[0]);
        c.args(&args[1..])
            .env("DOCKER_HOST", format!("unix://{}", proxy_sock.display()))
            .env("DOCKER_CONFIG", dockerd.dir.join("docker-config"))
            .env("WORK", &work);
        let o = run_cmd(c, None, 300);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(proxy.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = proxy.wait();
        assert!(o.status.success(), "{name}: {}{}", out(&o), err(&o));
        std::fs::copy(&recording, corpus.join(format!("{name}.json"))).unwrap();
    }
}
