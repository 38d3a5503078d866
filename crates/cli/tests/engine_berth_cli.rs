//! The engine through berth's own CLI: the docker command lines, the same answers; and zero
//! set-up (the first command starts the daemon).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::engine::{busybox_tar, code, err, out, run_cmd, Daemon, IMAGE};

#[test]
fn berth_cli_runs_the_docker_workflow() {
    let d = Daemon::start_bare();
    let o = run_cmd(
        d.berth_cmd(&["import", "-", IMAGE]),
        Some(busybox_tar()),
        60,
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (code(&o), out(&o).as_str(), err(&o).as_str()),
        (3, "out\n", "err\n")
    );
    let o = d.berth(&["run", "--rm", IMAGE, "/no/such"]);
    assert_eq!(code(&o), 127, "{}", err(&o));
    let o = run_cmd(
        d.berth_cmd(&["run", "--rm", "-i", IMAGE, "wc", "-l"]),
        Some(b"a\nb\n"),
        30,
    );
    assert_eq!(out(&o).trim(), "2", "{}", err(&o));
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        "-e",
        "K=v",
        IMAGE,
        "sh",
        "-c",
        "echo logged; exec sleep 60",
    ]);
    assert_eq!(d.berth_ok(&["exec", "bg", "sh", "-c", "echo $K"]), "v");
    assert_eq!(code(&d.berth(&["exec", "bg", "sh", "-c", "exit 6"])), 6);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.berth_ok(&["logs", "bg"]), "logged");
    assert_eq!(d.berth_ok(&["ps", "--format", "{{.Names}}"]), "bg");
    assert_eq!(
        d.berth_ok(&["inspect", "-f", "{{.State.Status}}", "bg"]),
        "running"
    );
    d.berth_ok(&["stop", "-t", "1", "bg"]);
    assert_eq!(
        d.berth_ok(&["inspect", "-f", "{{.State.ExitCode}}", "bg"]),
        "137"
    );
    d.berth_ok(&["rm", "bg"]);
    d.berth_ok(&["volume", "create", "bv"]);
    d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/v",
        IMAGE,
        "sh",
        "-c",
        "echo x > /v/x",
    ]);
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-v", "bv:/v", IMAGE, "cat", "/v/x"]),
        "x"
    );
    assert!(d.berth_ok(&["volume", "ls", "-q"]).contains("bv"));
    d.berth_ok(&["volume", "rm", "bv"]);
    assert!(d.berth_ok(&["images"]).contains("busybox"));
    d.berth_ok(&["tag", IMAGE, "again:1"]);
    d.berth_ok(&["rmi", "again:1"]);
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
    let o = d.berth(&["inspect", "nothing-here"]);
    assert!(
        !o.status.success() && err(&o).contains("nothing-here"),
        "{}",
        err(&o)
    );
}

/// The first `berth` command on a machine with no daemon starts one on the default socket.
/// Skipped where a daemon already answers there (a developer's own); the daemon it starts is
/// stopped afterwards.
#[test]
fn first_berth_command_starts_the_daemon() {
    let sock = std::path::Path::new("/run/berth/berth.sock");
    if std::os::unix::net::UnixStream::connect(sock).is_ok() {
        eprintln!("skipped: a daemon already serves {}", sock.display());
        return;
    }
    // The default daemon makes the default bridge and nft table: remove them afterwards,
    // unless they were there before.
    let had_bridge = std::path::Path::new("/sys/class/net/berth0").exists();
    let had_table = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new(common::berth());
    cmd.env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .arg("version");
    let o = run_cmd(cmd, None, 30);
    // Stop the daemon we caused, whatever the outcome: the process listening on the socket.
    let pid = daemon_pid_of(sock);
    if let Some(pid) = pid {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..100 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if !had_bridge {
        let _ = Command::new("ip").args(["link", "del", "berth0"]).status();
    }
    if !had_table {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", "berth"])
            .status();
    }
    assert!(o.status.success(), "berth version: {}", err(&o));
    assert!(out(&o).contains("Server"), "{}", out(&o));
    assert!(
        pid.is_some(),
        "no daemon process found for {}",
        sock.display()
    );
}

/// The pid of the `berth daemon` that holds a socket bound to `sock` (/proc/net/unix).
fn daemon_pid_of(sock: &std::path::Path) -> Option<i32> {
    let net = std::fs::read_to_string("/proc/net/unix").ok()?;
    let sock_inodes: Vec<String> = net
        .lines()
        .filter(|l| l.ends_with(sock.to_str().unwrap_or("")))
        .filter_map(|l| l.split_whitespace().nth(6).map(str::to_owned))
        .collect();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !cmdline.contains("berth") || !cmdline.contains("daemon") {
            continue;
        }
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if sock_inodes.iter().any(|i| t == format!("socket:[{i}]")) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

#[test]
fn prune_verbs_list_what_they_removed_as_docker_does() {
    let d = Daemon::start();
    let stopped = d.berth_ok(&["create", IMAGE, "true"]);
    let o = d.berth_ok(&["container", "prune", "-f"]);
    let (list, space) = o.split_once("\n\n").unwrap_or_else(|| panic!("{o}"));
    assert_eq!(list, format!("Deleted Containers:\n{stopped}"));
    assert!(space.starts_with("Total reclaimed space: "), "{o}");
    d.berth_ok(&["volume", "create", "prunevol"]);
    let o = d.berth_ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(o, "Deleted Volumes:\nprunevol\n\nTotal reclaimed space: 0B");
    d.berth_ok(&["network", "create", "--subnet", &d.subnet(1), "prunenet"]);
    let o = d.berth_ok(&["network", "prune", "-f"]);
    assert_eq!(o, "Deleted Networks:\nprunenet");
    // Nothing to prune: the space line alone (none for networks).
    assert_eq!(
        d.berth_ok(&["volume", "prune", "-a", "-f"]),
        "Total reclaimed space: 0B"
    );
    assert_eq!(d.berth_ok(&["network", "prune", "-f"]), "");
    let id = d.inspect("{{.Id}}", IMAGE);
    let o = d.berth_ok(&["image", "prune", "-a", "-f"]);
    assert!(
        o.starts_with(&format!(
            "Deleted Images:\nuntagged: {IMAGE}\ndeleted: {id}\n"
        )),
        "{o}"
    );
    assert!(o.contains("\n\nTotal reclaimed space: "), "{o}");
}
