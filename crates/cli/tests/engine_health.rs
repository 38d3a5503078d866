//! Docker's healthchecks end to end: `--health-*` from the docker CLI and berth's, the test run
//! inside the container at its interval, `State.Health`, `(healthy)` in `ps`, the
//! `health_status` events, a container turning unhealthy after its retries, and the flags
//! docker refuses.
#![allow(clippy::unwrap_used)]

mod common;

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

    let events = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
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
