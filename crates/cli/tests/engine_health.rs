//! Docker's healthchecks end to end: `--health-*` from the docker CLI and berth's, the test run
//! inside the container at its interval, `State.Health`, `(healthy)` in `ps`, the
//! `health_status` events, a container turning unhealthy after its retries, and the flags
//! docker refuses.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::engine::{err, out, Daemon, IMAGE};

#[test]
fn healthcheck_runs_in_the_container_and_reports_its_state() {
    let d = Daemon::start();
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--init",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.5; touch /tmp/ok; exec sleep 1000",
    ]);
    let (_, v) = d.api_json("GET", &format!("/containers/{id}/json"), None);
    assert_eq!(v["Config"]["Healthcheck"]["Interval"], 200_000_000);
    d.wait_inspect("{{.State.Health.Status}}", &id, "healthy", 20);
    let ps = d.docker_ok(&[
        "ps",
        "--format",
        "{{.Status}}",
        "--filter",
        &format!("id={id}"),
    ]);
    assert!(ps.ends_with("(healthy)"), "{ps}");
    let (_, v) = d.api_json("GET", &format!("/containers/{id}/json"), None);
    let log = v["State"]["Health"]["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{log:?}");
    assert_eq!(log.last().unwrap()["ExitCode"], 0);
    assert_eq!(log.last().unwrap()["Output"], "fine\n");

    // The probe fails from inside: unhealthy after two failures.
    d.docker_ok(&["exec", &id, "rm", "/tmp/ok"]);
    d.wait_inspect("{{.State.Health.Status}}", &id, "unhealthy", 20);
    let (_, v) = d.api_json("GET", &format!("/containers/{id}/json"), None);
    assert!(v["State"]["Health"]["FailingStreak"].as_i64().unwrap() >= 2);

    let events = d.container_events(&id);
    assert!(events.contains("health_status: healthy"), "{events}");
    assert!(events.contains("health_status: unhealthy"), "{events}");

    // berth's own flags send the same request; --no-healthcheck conflicts with them.
    let id2 = d.berth_ok(&[
        "run",
        "-d",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "--health-start-period",
        "2s",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let (_, v) = d.api_json("GET", &format!("/containers/{id2}/json"), None);
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(v["Config"]["Healthcheck"]["StartPeriod"], 2_000_000_000u64);
    let o = d.berth(&[
        "run",
        "-d",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        IMAGE,
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("--no-healthcheck conflicts with --health-* options"),
        "{}",
        err(&o)
    );
    let _ = out(&o);
}

#[test]
fn a_probe_past_its_timeout_is_killed_inside_the_container_with_what_it_started() {
    let d = Daemon::start();
    // The probe's shell starts a `sleep` and waits for it: killing the shell alone would
    // leave the sleep behind (reparented to the container's init).
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--init",
        "--health-cmd",
        "sleep 987; echo never",
        "--health-timeout",
        "1s",
        "--health-interval",
        "3s",
        "--health-retries",
        "1",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let probes = |d: &Daemon| -> String {
        d.docker_ok(&["exec", &id, "ps", "-o", "pid,args"])
            .lines()
            .filter(|l| l.contains("987"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // While the first probe runs, its processes are there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while probes(&d).is_empty() {
        assert!(Instant::now() < deadline, "the probe never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    d.wait_inspect("{{.State.Health.Status}}", &id, "unhealthy", 10);
    let (_, v) = d.api_json("GET", &format!("/containers/{id}/json"), None);
    let last = v["State"]["Health"]["Log"].as_array().unwrap()[0].clone();
    assert_eq!(last["ExitCode"], -1, "{last}");
    assert_eq!(
        last["Output"], "Health check exceeded timeout (1s)",
        "{last}"
    );
    // From inside, right after the timeout (the next probe is 3 s away): nothing of it.
    let left = probes(&d);
    assert!(left.is_empty(), "the timed-out probe left:\n{left}");
    // The container itself runs on.
    assert_eq!(d.inspect("{{.State.Status}}", &id), "running");
}
