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
    // A --rm container's root skips syncs (overlayfs' volatile, shown as fsync=volatile):
    // its upper dir is thrown away when it stops. One kept after it stops syncs as usual.
    let root_line = "grep ' / ' /proc/mounts";
    let rm = d.docker_ok(&["run", "--rm", IMAGE, "sh", "-c", root_line]);
    assert!(
        rm.starts_with("overlay / overlay ") && rm.contains("fsync=volatile"),
        "{rm}"
    );
    let kept = d.docker_ok(&["run", "--name", "kept", IMAGE, "sh", "-c", root_line]);
    assert!(
        kept.starts_with("overlay / overlay ") && !kept.contains("volatile"),
        "{kept}"
    );
    // A kept container starts again on the same upper dir.
    d.docker_ok(&["start", "-a", "kept"]);
    d.docker_ok(&["rm", "kept"]);
}

#[test]
fn run_separates_stdout_stderr_and_takes_stdin_and_config_flags() {
    let d = Daemon::start();
    let o = d.docker(&["run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!((out(&o).as_str(), err(&o).as_str()), ("out\n", "err\n"));
    let o = d.docker_in(
        &["run", "--rm", "-i", IMAGE, "tr", "a-z", "A-Z"],
        b"piped in\n",
    );
    assert_eq!(out(&o), "PIPED IN\n", "{}", err(&o));
    let env_file = d.dir.join("env.list");
    std::fs::write(&env_file, "FROM_FILE=yes\n# comment\n").unwrap();
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp",
        "--hostname",
        "box1",
        IMAGE,
        "sh",
        "-c",
        "echo $A $FROM_FILE $(pwd) $(hostname)",
    ]);
    assert_eq!(o, "1 yes /tmp box1");
    let o = d.docker_ok(&["run", "--rm", "-u", "nobody", IMAGE, "id"]);
    assert!(o.starts_with("uid=65534(nobody) gid=65534(nobody)"), "{o}");
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        IMAGE,
        "via",
        "entrypoint",
    ]);
    assert_eq!(o, "via entrypoint");
    let id = d.docker_ok(&[
        "create", "-l", "team=e2e", "--name", "labelled", IMAGE, "true",
    ]);
    assert_eq!(d.inspect("{{index .Config.Labels \"team\"}}", &id), "e2e");
    assert_eq!(
        d.docker_ok(&["ps", "-aq", "--filter", "label=team=e2e"]),
        &id[..12]
    );
}

#[test]
fn detached_container_logs_tail_timestamps_and_follow() {
    let d = Daemon::start();
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "logger",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; sleep 30",
    ]);
    assert_eq!(id.len(), 64);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !err(&d.docker(&["logs", "logger"])).contains("oops") {
        assert!(std::time::Instant::now() < deadline, "no logs");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = d.docker(&["logs", "logger"]);
    assert_eq!(out(&o), "line1\nline2\nline3\nline4\nline5\n");
    assert_eq!(err(&o), "oops\n");
    let o = d.docker(&["logs", "--tail", "2", "logger"]);
    assert_eq!(out(&o), "line5\n", "stdout of the last two lines");
    assert_eq!(err(&o), "oops\n");
    let o = d.docker(&["logs", "-t", "logger"]);
    let first = out(&o).lines().next().unwrap_or_default().to_owned();
    assert!(
        first.len() > 20 && first.contains('T') && first.ends_with(" line1"),
        "{first}"
    );
    // -f stays open while the container runs.
    let o = run_for(d.docker_cmd(&["logs", "-f", "logger"]), 1.5);
    assert!(
        !o.status.success(),
        "logs -f ended while the container runs"
    );
    assert!(out(&o).contains("line5"), "{}", out(&o));
    // ... and ends when it exits.
    d.docker_ok(&["kill", "logger"]);
    let o = run_for(d.docker_cmd(&["logs", "-f", "logger"]), 10.0);
    assert!(o.status.success(), "logs -f after exit: {}", err(&o));
}

#[test]
fn exec_sees_env_workdir_user_and_returns_exit_code() {
    let d = Daemon::start();
    d.docker_ok(&[
        "run", "-d", "--name", "ex", "-e", "BASE=1", IMAGE, "sleep", "60",
    ]);
    assert_eq!(d.docker_ok(&["exec", "ex", "sh", "-c", "echo $BASE"]), "1");
    let o = d.docker(&["exec", "ex", "sh", "-c", "exit 5"]);
    assert_eq!(code(&o), 5);
    assert_eq!(
        d.docker_ok(&["exec", "-e", "X=2", "ex", "sh", "-c", "echo $X"]),
        "2"
    );
    assert_eq!(d.docker_ok(&["exec", "-w", "/etc", "ex", "pwd"]), "/etc");
    assert_eq!(
        d.docker_ok(&["exec", "-u", "nobody", "ex", "id", "-u"]),
        "65534"
    );
    let o = d.docker_in(&["exec", "-i", "ex", "cat"], b"through exec\n");
    assert_eq!(out(&o), "through exec\n");
    // Nothing the daemon or the monitor ignores reaches the exec'd process or the container.
    for args in [
        &["exec", "ex", "grep", "SigIgn", "/proc/self/status"][..],
        &["exec", "ex", "grep", "SigIgn", "/proc/1/status"][..],
    ] {
        assert_eq!(d.docker_ok(args), "SigIgn:\t0000000000000000");
    }
    let o = d.docker(&["exec", "ex", "/no/such"]);
    assert_eq!(code(&o), 127, "{}", err(&o));
}

#[test]
fn stop_kill_restart_wait_rm() {
    let d = Daemon::start();
    // A pid 1 that handles SIGTERM ends at once; one that ignores it is killed after -t.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "s1",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 3' TERM; trap 'exit 4' USR1; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let t = std::time::Instant::now();
    d.docker_ok(&["stop", "-t", "5", "s1"]);
    assert!(t.elapsed().as_secs() < 4, "stop waited for the timeout");
    assert_eq!(
        d.inspect("{{.State.Status}} {{.State.ExitCode}}", "s1"),
        "exited 3"
    );
    d.docker_ok(&["run", "-d", "--name", "s2", IMAGE, "sleep", "60"]);
    d.docker_ok(&["stop", "-t", "1", "s2"]);
    assert_eq!(d.inspect("{{.State.ExitCode}}", "s2"), "137");
    d.docker_ok(&["rm", "s2"]);
    d.docker_ok(&["start", "s1"]);
    assert_eq!(d.inspect("{{.State.Status}}", "s1"), "running");
    let pid1 = d.inspect("{{.State.Pid}}", "s1");
    d.docker_ok(&["restart", "-t", "1", "s1"]);
    let pid2 = d.inspect("{{.State.Pid}}", "s1");
    assert_eq!(d.inspect("{{.State.Status}}", "s1"), "running");
    assert_ne!(pid1, pid2);
    d.docker_ok(&["kill", "-s", "USR1", "s1"]);
    d.wait_inspect("{{.State.ExitCode}}", "s1", "4", 10);
    let o = d.docker(&["rm", "s1"]);
    assert!(o.status.success(), "{}", err(&o));
    // wait prints the exit code.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "w1",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.3; exit 4",
    ]);
    assert_eq!(d.docker_ok(&["wait", "w1"]), "4");
    // rm refuses a running container, rm -f kills it.
    d.docker_ok(&["run", "-d", "--name", "r1", IMAGE, "sleep", "60"]);
    let o = d.docker(&["rm", "r1"]);
    assert!(
        !o.status.success() && err(&o).contains("is running"),
        "{}",
        err(&o)
    );
    d.docker_ok(&["rm", "-f", "r1"]);
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]),
        d.docker_ok(&["ps", "-aq", "-f", "name=w1"])
    );
}

#[test]
fn ps_inspect_rename_pause_top() {
    let d = Daemon::start();
    let a = d.docker_ok(&["run", "-d", "--name", "alpha", IMAGE, "sleep", "60"]);
    let b = d.docker_ok(&["create", "--name", "beta", IMAGE, "true"]);
    assert_eq!(d.docker_ok(&["ps", "-q"]), &a[..12]);
    let all = d.docker_ok(&["ps", "-aq"]);
    assert!(all.contains(&a[..12]) && all.contains(&b[..12]), "{all}");
    assert_eq!(
        d.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}}"
        ]),
        "beta"
    );
    assert_eq!(
        d.docker_ok(&["ps", "--format", "{{.Names}} {{.Image}} {{.Command}}"]),
        format!("alpha {IMAGE} \"sleep 60\"")
    );
    assert_eq!(
        d.inspect("{{.Name}} {{.Config.Image}} {{.State.Running}}", "alpha"),
        format!("/alpha {IMAGE} true")
    );
    d.docker_ok(&["rename", "alpha", "gamma"]);
    assert_eq!(d.inspect("{{.Name}}", &a), "/gamma");
    let o = d.docker(&["rename", "gamma", "beta"]);
    assert!(!o.status.success(), "rename onto a used name");
    d.docker_ok(&["pause", "gamma"]);
    assert_eq!(
        d.inspect("{{.State.Status}} {{.State.Paused}}", "gamma"),
        "paused true"
    );
    assert!(d
        .docker_ok(&["ps", "--format", "{{.Status}}"])
        .contains("Paused"));
    d.docker_ok(&["unpause", "gamma"]);
    assert_eq!(d.inspect("{{.State.Status}}", "gamma"), "running");
    let top = d.docker_ok(&["top", "gamma"]);
    assert!(top.contains("PID") && top.contains("sleep 60"), "{top}");
}

#[test]
fn restart_policy_on_failure_counts_restarts() {
    let d = Daemon::start();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "exit 1",
    ]);
    d.wait_inspect(
        "{{.RestartCount}} {{.State.Status}}",
        "flaky",
        "2 exited",
        30,
    );
    assert_eq!(
        d.inspect(
            "{{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}",
            "flaky"
        ),
        "1 on-failure"
    );
    // A container restarted by its policy shows as running again, with its new pid and the
    // count of restarts, while it runs (not only at its next exit).
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "second-time",
        "--restart",
        "on-failure",
        IMAGE,
        "sh",
        "-c",
        "if [ ! -e /ran ]; then touch /ran; exit 1; fi; exec sleep 60",
    ]);
    d.wait_inspect(
        "{{.RestartCount}} {{.State.Status}}",
        "second-time",
        "1 running",
        10,
    );
    let pid: i32 = d.inspect("{{.State.Pid}}", "second-time").parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let events = d.container_events("second-time");
    assert_eq!(
        events.lines().filter(|a| *a == "start").count(),
        2,
        "{events}"
    );
    // A kill with a bad signal name is refused and changes nothing: the policy still
    // restarts the container when it next fails.
    let o = d.docker(&["kill", "-s", "BOGUS", "second-time"]);
    assert_ne!(code(&o), 0);
    assert!(err(&o).contains("Invalid signal: BOGUS"), "{}", err(&o));
    // The container fails (its process killed from outside, not through the API).
    let pid: i32 = d.inspect("{{.State.Pid}}", "second-time").parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    d.wait_inspect(
        "{{.RestartCount}} {{.State.Status}}",
        "second-time",
        "2 running",
        10,
    );
    d.docker_ok(&["rm", "-f", "second-time"]);
}

#[test]
fn resource_limits_are_enforced() {
    let d = Daemon::start();
    // The OOM killer ends a process that goes over --memory.
    let o = d.docker(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(code(&o), 137, "{}", err(&o));
    assert_eq!(
        d.inspect("{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"),
        "true 137"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "5",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait",
    ]);
    assert!(
        err(&o).contains("fork") || err(&o).contains("Resource temporarily unavailable"),
        "{}",
        err(&o)
    );
    let id = d.docker_ok(&[
        "run", "-d", "--cpus", "0.5", "--memory", "32m", IMAGE, "sleep", "30",
    ]);
    assert_eq!(
        d.inspect("{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", &id),
        "500000000 33554432"
    );
    let quota = std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/berth/{id}/cpu.cfs_quota_us"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{id}/cpu.max")))
        .unwrap();
    assert!(quota.starts_with("50000"), "{quota}");
}

#[test]
fn security_options_are_seen_from_inside() {
    let d = Daemon::start();
    let capeff = |args: &[&str]| -> u64 {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[IMAGE, "grep", "CapEff", "/proc/self/status"]);
        let o = d.docker_ok(&a);
        u64::from_str_radix(o.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let default = capeff(&[]);
    assert_eq!(default, 0xa80425fb, "docker's default capability set");
    assert_eq!(capeff(&["--cap-drop", "ALL"]), 0);
    assert_eq!(
        capeff(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]),
        1 << 12
    );
    assert_eq!(capeff(&["--cap-drop", "CHOWN"]), default & !1);
    assert!(capeff(&["--privileged"]) > default);
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        IMAGE,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(o.ends_with('1'), "{o}");
    let o = d.docker(&["run", "--rm", "--read-only", IMAGE, "touch", "/x"]);
    assert!(
        !o.status.success() && err(&o).contains("Read-only file system"),
        "{}",
        err(&o)
    );
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "touch /scratch/x && grep ' /scratch ' /proc/mounts",
    ]);
    assert!(o.contains("tmpfs"), "{o}");
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:1024",
        IMAGE,
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(o, "1024\n1024");
}

#[test]
fn volumes_named_anonymous_bind_tmpfs_and_volumes_from() {
    let d = Daemon::start();
    d.docker_ok(&["volume", "create", "data"]);
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", "data:/data", IMAGE, "cat", "/data/f"]),
        "kept"
    );
    assert!(d
        .docker_ok(&["volume", "ls", "-q"])
        .lines()
        .any(|l| l == "data"));
    let mp = d.docker_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/f")).unwrap(),
        "kept\n"
    );
    // A volume in use cannot be removed.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "data:/data",
        "-v",
        "/anon",
        IMAGE,
        "sleep",
        "60",
    ]);
    let o = d.docker(&["volume", "rm", "data"]);
    assert!(
        !o.status.success() && err(&o).contains("in use"),
        "{}",
        err(&o)
    );
    // --volumes-from sees the same volumes.
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "user",
            IMAGE,
            "cat",
            "/data/f"
        ]),
        "kept"
    );
    let anon = d.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        "user",
    ]);
    assert_eq!(anon.len(), 64, "anonymous volume name: {anon}");
    // rm -v removes the anonymous volume, not the named one.
    d.docker_ok(&["rm", "-f", "-v", "user"]);
    let vols = d.docker_ok(&["volume", "ls", "-q"]);
    assert!(!vols.contains(&anon) && vols.contains("data"), "{vols}");
    // A bind mount, read-only.
    let host = d.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h"), "from host").unwrap();
    let spec = format!("{}:/h:ro", host.display());
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", &spec, IMAGE, "cat", "/h/h"]),
        "from host"
    );
    let o = d.docker(&["run", "--rm", "-v", &spec, IMAGE, "touch", "/h/x"]);
    assert!(
        !o.status.success() && err(&o).contains("Read-only"),
        "{}",
        err(&o)
    );
    // --mount type=tmpfs.
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,destination=/t,tmpfs-size=1m",
        IMAGE,
        "grep",
        " /t ",
        "/proc/mounts",
    ]);
    assert!(o.contains("tmpfs") && o.contains("size=1024k"), "{o}");
    // A new volume gets what the image has at its mount point.
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "fresh:/etc",
        IMAGE,
        "cat",
        "/etc/group",
    ]);
    assert!(o.contains("nobody"), "{o}");
    // prune removes unused volumes.
    d.docker_ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]), "");
    d.docker_ok(&["volume", "create", "gone"]);
    d.docker_ok(&["volume", "rm", "gone"]);
}

#[test]
fn images_tag_rmi_save_load_history_prune() {
    let d = Daemon::start();
    let id = d.docker_ok(&["images", "-q", IMAGE]);
    assert_eq!(id.len(), 12, "{id}");
    d.docker_ok(&["tag", IMAGE, "other:v1"]);
    assert_eq!(d.docker_ok(&["images", "-q", "other:v1"]), id);
    assert!(d
        .docker_ok(&["image", "inspect", "-f", "{{.Id}} {{.Os}}", "other:v1"])
        .ends_with(" linux"));
    let hist = d.docker_ok(&["history", "-q", IMAGE]);
    assert!(!hist.is_empty());
    // An image in use by a container is refused, unless forced (then only the tag goes).
    d.docker_ok(&["create", "--name", "holder", "other:v1", "true"]);
    d.docker_ok(&["rmi", "other:v1"]); // another tag still names it: only untagged
    let o = d.docker(&["rmi", &id]);
    assert!(
        !o.status.success() && err(&o).contains("conflict"),
        "{}",
        err(&o)
    );
    d.docker_ok(&["rm", "holder"]);
    // save | load round trip.
    let tar = d.dir.join("img.tar");
    d.docker_ok(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
    d.docker_ok(&["tag", IMAGE, "keep:1"]);
    d.docker_ok(&["rmi", "-f", IMAGE]);
    assert_eq!(
        d.docker(&["image", "inspect", IMAGE]).status.code(),
        Some(1)
    );
    let o = d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(o.contains(IMAGE), "{o}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", IMAGE, "echo", "loaded"]),
        "loaded"
    );
    // commit, diff, export.
    d.docker_ok(&[
        "run",
        "--name",
        "changer",
        IMAGE,
        "sh",
        "-c",
        "echo new > /newfile; rm /etc/group",
    ]);
    let diff = d.docker_ok(&["diff", "changer"]);
    assert!(
        diff.contains("A /newfile") && diff.contains("D /etc/group"),
        "{diff}"
    );
    d.docker_ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/newfile\"]",
        "changer",
        "committed:1",
    ]);
    assert_eq!(d.docker_ok(&["run", "--rm", "committed:1"]), "new");
    let exp = d.dir.join("exp.tar");
    d.docker_ok(&["export", "-o", exp.to_str().unwrap(), "changer"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&exp)
        .output()
        .unwrap();
    let list = out(&list);
    assert!(
        list.contains("newfile") && list.contains("bin/busybox"),
        "{list}"
    );
    d.docker_ok(&["rm", "changer"]);
    // prune of dangling images; -a prunes unused ones.
    d.docker_ok(&["rmi", "committed:1"]);
    d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(d.docker_ok(&["images", "-q"]), "");
}

#[test]
fn events_df_version_info() {
    let d = Daemon::start();
    let since = d.docker_ok(&["version", "-f", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    d.docker_ok(&["run", "--rm", "--name", "ev", IMAGE, "true"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let until = (start + 30).to_string();
    let o = run_for(
        d.docker_cmd(&[
            "events",
            "--since",
            &start.to_string(),
            "--until",
            &until,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ]),
        3.0,
    );
    let ev = out(&o);
    for want in [
        "container create ev",
        "container start ev",
        "container die ev",
        "container destroy ev",
    ] {
        assert!(ev.contains(want), "no {want:?} in {ev}");
    }
    let o = d.docker_ok(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &(start + 1).to_string(),
        "--filter",
        "event=create",
    ]);
    assert!(o.contains("create"), "{o}");
    let df = d.docker_ok(&["system", "df"]);
    assert!(
        df.contains("Images") && df.contains("Local Volumes"),
        "{df}"
    );
    let info = d.docker_ok(&["info", "-f", "{{.Images}} {{.OSType}}"]);
    assert_eq!(info, "1 linux");
}

#[test]
fn init_is_pid_one_reaps_orphans_and_forwards_stop() {
    let d = Daemon::start();
    // pid 1 is the init; the program is its child.
    let o = d.docker_ok(&["run", "--rm", "--init", IMAGE, "ps", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = o
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["1", "docker-init"], "{o}");
    assert_eq!(rows[1], ["2", "ps"], "{o}");
    // The program's exit code and death by signal come out as docker's.
    let o = d.docker(&["run", "--rm", "--init", IMAGE, "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), 3, "{}", err(&o));
    let o = d.docker(&["run", "--rm", "--init", IMAGE, "sh", "-c", "kill -9 $$"]);
    assert_eq!(code(&o), 137, "{}", err(&o));

    // Orphans are reaped: a grandchild whose parent exits is adopted by pid 1 and, once it
    // exits, leaves no zombie.
    d.docker_ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "reaper",
        IMAGE,
        "sh",
        "-c",
        "(sleep 1 &) ; exec sleep 300",
    ]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let ps = d.docker_ok(&["exec", "reaper", "ps", "-o", "stat,args"]);
    assert!(
        !ps.lines().any(|l| l.starts_with('Z')),
        "a zombie is left:\n{ps}"
    );
    assert!(d.docker_ok(&["inspect", "-f", "{{.HostConfig.Init}}", "reaper"]) == "true");

    // Without an init, `sleep` as pid 1 ignores SIGTERM and `stop` must wait for the kill;
    // with one, SIGTERM reaches sleep at once and it dies of it (143).
    let started = std::time::Instant::now();
    d.docker_ok(&["stop", "-t", "20", "reaper"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "reaper"]),
        "143"
    );
    d.docker_ok(&["rm", "reaper"]);
}

#[test]
fn exec_tty_gets_the_clients_terminal_size() {
    let d = Daemon::start();
    d.docker_ok(&["run", "-d", "--name", "tty", IMAGE, "sleep", "60"]);
    // `script` gives the docker CLI a terminal of a known size; docker passes it on at the
    // exec's start and the process's terminal must have it.
    let cmd = format!(
        "stty rows 33 cols 101; DOCKER_HOST={} {} exec -it tty stty size",
        d.host(),
        common::engine::DOCKER
    );
    let o = run_for(
        {
            let mut c = std::process::Command::new("script");
            c.args(["-qec", &cmd, "/dev/null"])
                .env("DOCKER_CONFIG", d.dir.join("docker-config"));
            c
        },
        20.0,
    );
    assert!(out(&o).contains("33 101"), "{}{}", out(&o), err(&o));
    d.docker_ok(&["rm", "-f", "tty"]);
}
