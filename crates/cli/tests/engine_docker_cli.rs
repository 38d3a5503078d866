//! The engine through the real docker CLI (28.x): what a docker user types, what they see.
#![allow(clippy::unwrap_used)]

mod common;

use common::engine::{code, err, out, run_for, Daemon, IMAGE};

#[test]
fn run_rm_prints_output_and_returns_exit_codes() {
    let d = Daemon::start();
    let o = d.docker(&["run", "--rm", IMAGE, "echo", "hello"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "hello\n");
    let o = d.docker(&["run", "--rm", IMAGE, "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), 3, "{}", err(&o));
    let o = d.docker(&["run", "--rm", IMAGE, "/no/such/program"]);
    assert_eq!(code(&o), 127, "{}", err(&o));
    assert!(
        err(&o).contains("/no/such/program") && err(&o).contains("no such file or directory"),
        "docker's message: {}",
        err(&o)
    );
    let o = d.docker(&["run", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(code(&o), 126, "{}", err(&o));
    assert!(err(&o).contains("permission denied"), "{}", err(&o));
    // --rm: nothing is left.
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
}
