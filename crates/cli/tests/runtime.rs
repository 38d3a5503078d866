//! The runtime end to end, as root against the real kernel: each test makes a busybox bundle,
//! runs it through `berth runtime`, and checks the effect from inside the container.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cgroup_file_inside, cgroup_v2, stderr, stdout, Sandbox};
use serde_json::json;

#[test]
fn run_isolates_hostname_user_and_exit_code() {
    let mut sb = Sandbox::new(&["sh", "-c", "hostname; id -u; id -g; id -G; exit 7"]);
    sb.config["hostname"] = json!("berthbox");
    sb.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 27]});
    sb.save();
    let out = sb.run();
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["berthbox", "1000", "1000", "1000 27"]);
    // run deletes the container when it exits.
    assert!(!sb.root.join(&sb.id).exists());
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let sb = Sandbox::new(&["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"]);
    let out = sb.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "1");
    // sh, ls and grep: nothing of the host.
    assert!(lines[1].parse::<u32>().unwrap() <= 4, "{lines:?}");
}

#[test]
fn capabilities_are_exactly_those_given() {
    let sb = Sandbox::new(&[
        "sh",
        "-c",
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status",
    ]);
    let out = sb.run();
    assert!(out.status.success(), "{}", stderr(&out));
    // runc's default: CAP_AUDIT_WRITE(29), CAP_KILL(5), CAP_NET_BIND_SERVICE(10).
    let text = stdout(&out);
    assert!(text.contains("CapPrm:\t0000000020000420"), "{text}");
    assert!(text.contains("CapEff:\t0000000020000420"), "{text}");
    assert!(text.contains("CapBnd:\t0000000020000420"), "{text}");
    assert!(text.contains("CapAmb:\t0000000000000000"), "{text}");
}

#[test]
fn no_new_privileges_is_set() {
    let sb = Sandbox::new(&["sh", "-c", "grep NoNewPrivs /proc/self/status"]);
    let out = sb.run();
    assert_eq!(stdout(&out).trim(), "NoNewPrivs:\t1", "{}", stderr(&out));
}

#[test]
fn no_signal_is_ignored_or_blocked_in_the_container() {
    // The runtime's own process ignores SIGPIPE (Rust's start-up): the program must not
    // inherit that, or `yes | head` would behave differently in a container.
    // (grep itself, not through sh: busybox's sh ignores SIGQUIT on its own as pid 1.)
    let sb = Sandbox::new(&["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    let out = sb.run();
    assert_eq!(
        stdout(&out).trim(),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000",
        "{}",
        stderr(&out)
    );
}

#[test]
fn masked_paths_show_nothing_and_readonly_paths_refuse_writes() {
    let sb = Sandbox::new(&[
        "sh",
        "-c",
        "wc -c < /proc/keys; wc -c < /proc/timer_list; ls /proc/acpi 2>/dev/null | wc -l; \
         echo 1 > /proc/sys/kernel/domainname && echo WROTE || echo REFUSED; \
         touch /rootfile && echo WROTE || echo REFUSED",
    ]);
    let out = sb.run();
    let lines: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_owned()).collect();
    assert_eq!(
        lines,
        ["0", "0", "0", "REFUSED", "REFUSED"],
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn rlimits_and_umask_apply() {
    let mut sb = Sandbox::new(&["sh", "-c", "ulimit -n; ulimit -Hn; umask"]);
    sb.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
    sb.config["process"]["user"]["umask"] = json!(0o027);
    sb.save();
    let out = sb.run();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["123", "456", "0027"], "stderr: {}", stderr(&out));
}

#[test]
fn rlimit_above_the_hosts_hard_limit_is_a_clear_error() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1u64 << 40, "hard": 1u64 << 40}]);
    sb.save();
    let out = sb.run();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("RLIMIT_NOFILE") || err.contains("RlimitNofile"),
        "{err}"
    );
    assert!(!sb.root.join(&sb.id).exists(), "state left behind");
}

#[test]
fn lifecycle_follows_the_runtime_spec() {
    let sb = Sandbox::new(&["sleep", "30"]);
    let out = sb.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let state = sb.state();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], sb.id.as_str());
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);
    // The init waits: it is still berth, not sleep.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");

    let out = sb.rt(&["start", &sb.id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    assert_eq!(sb.status(), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");

    // Starting twice is an error that names the state.
    let out = sb.rt(&["start", &sb.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));

    // Deleting a running container needs --force.
    let out = sb.rt(&["delete", &sb.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));

    let out = sb.rt(&["kill", &sb.id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    sb.wait_status("stopped");

    let out = sb.rt(&["kill", &sb.id, "TERM"]);
    assert!(
        !out.status.success(),
        "kill on a stopped container must fail"
    );
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
    let out = sb.rt(&["start", &sb.id]);
    assert!(
        !out.status.success(),
        "start on a stopped container must fail"
    );

    let out = sb.rt(&["delete", &sb.id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(!sb.root.join(&sb.id).exists());
    assert!(!sb.cgroup_dir("memory").exists(), "cgroup left behind");
    let out = sb.rt(&["state", &sb.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn list_shows_containers_as_runc_does() {
    let sb = Sandbox::new(&["sleep", "30"]);
    assert!(sb.create().status.success());
    let out = sb.rt(&["list"]);
    let text = stdout(&out);
    assert!(text.starts_with("ID"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&sb.id) && l.contains("created")),
        "{text}"
    );
    let out = sb.rt(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], sb.id.as_str());
    let out = sb.rt(&["list", "-q"]);
    assert_eq!(stdout(&out).trim(), sb.id);
}

#[test]
fn exec_joins_the_running_container() {
    let mut sb = Sandbox::new(&["sleep", "30"]);
    sb.config["hostname"] = json!("execbox");
    sb.save();
    assert!(sb.create().status.success());
    assert!(sb.rt(&["start", &sb.id]).status.success());
    let out = sb.rt(&[
        "exec",
        &sb.id,
        "sh",
        "-c",
        "hostname; echo $$; cat /proc/1/comm; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "execbox");
    assert_ne!(lines[1], "1", "exec'd process is not the init");
    assert_eq!(lines[2], "sleep");
    // Flags after the id, env and cwd and user overrides.
    let out = sb.rt(&[
        "exec",
        "--env",
        "X=42",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        &sb.id,
        "sh",
        "-c",
        "echo $X; pwd; id -u",
    ]);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["42", "/tmp", "65534"], "{}", stderr(&out));
    // ps lists both processes.
    let out = sb.rt(&["ps", "--format", "json", &sb.id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!pids.is_empty());
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let sb = Sandbox::new(&["sleep", "30"]);
    assert!(sb.create().status.success());
    assert!(sb.rt(&["start", &sb.id]).status.success());
    let pid = sb.state()["pid"].as_i64().unwrap();
    let out = sb.rt(&["pause", &sb.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.status(), "paused");
    let freezer =
        std::fs::read_to_string(sb.cgroup_file("freezer", "freezer.state", "cgroup.freeze"))
            .unwrap();
    assert!(["FROZEN", "1"].contains(&freezer.trim()), "{freezer}");
    let out = sb.rt(&["resume", &sb.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.status(), "running");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn memory_limit_kills_on_oom() {
    let limit = cgroup_file_inside("memory", "memory.limit_in_bytes", "memory.max");
    let script =
        format!("cat {limit}; dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?");
    let mut sb = Sandbox::new(&["sh", "-c", &script]);
    sb.config["linux"]["resources"] = json!({"memory": {"limit": 16 << 20, "swap": 16 << 20}});
    sb.save();
    let out = sb.run();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("16777216"),
        "{text} / {}",
        stderr(&out)
    );
    // dd's 64 MiB buffer does not fit: the kernel's OOM killer ends it with SIGKILL.
    assert_eq!(lines.get(1).copied(), Some("dd=137"), "{text}");
}

#[test]
fn pids_limit_refuses_forks() {
    let pids_max = cgroup_file_inside("pids", "pids.max", "pids.max");
    let script = format!("cat {pids_max}; for i in 1 2 3 4 5 6 7 8; do sleep 2 & done");
    let mut sb = Sandbox::new(&["sh", "-c", &script]);
    sb.config["linux"]["resources"] = json!({"pids": {"limit": 4}});
    sb.save();
    let out = sb.run();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("4"),
        "{text} / {}",
        stderr(&out)
    );
    // busybox sh reports the fork the pids controller refused.
    assert!(
        stderr(&out).contains("can't fork"),
        "no fork refused: {text} / {}",
        stderr(&out)
    );
}

#[test]
fn seccomp_denies_with_the_given_errno() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "mkdir /tmp/x; echo mkdir=$?; ls -d /tmp >/dev/null; echo ls=$?",
    ]);
    sb.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]
    });
    sb.save();
    let out = sb.run();
    let text = stdout(&out);
    assert!(text.contains("mkdir=1"), "{text} / {}", stderr(&out));
    assert!(text.contains("ls=0"), "{text}");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn user_namespace_maps_ids() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
    ]);
    sb.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    sb.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    sb.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    sb.save();
    let out = sb.run();
    let text = stdout(&out);
    let fields: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(fields.len(), 3, "{text} / {}", stderr(&out));
    assert_eq!(fields[0], ["0", "100000", "65536"]);
    assert_eq!(fields[1], ["0", "100000", "65536"]);
    assert_eq!(fields[2], ["0"]);
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let sb = Sandbox::new(&["true"]);
    let log = sb.dir.join("hooks.log");
    let log_s = log.to_str().unwrap().to_owned();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{name} $s\" >> {log_s}")]});
    let mut sb = sb;
    sb.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    sb.save();
    let out = sb.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{text}"
    );
    let state: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(state["status"], "creating");
    assert_eq!(state["id"], sb.id.as_str());
    assert!(state["pid"].as_i64().unwrap() > 0);
    let stopped: serde_json::Value =
        serde_json::from_str(text.lines().nth(3).unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(stopped["status"], "stopped");
}

#[test]
fn failing_hook_fails_create_and_leaves_nothing() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    sb.save();
    let out = sb.create();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("createRuntime hook /bin/false"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.root.join(&sb.id).exists());
    assert!(!sb.cgroup_dir("memory").exists(), "cgroup left behind");
}

#[test]
fn hook_timeout_kills_it() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    sb.save();
    let started = std::time::Instant::now();
    let out = sb.create();
    assert!(!out.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
}

#[test]
fn sysctl_and_domainname_apply_in_the_container() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname",
    ]);
    sb.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    sb.config["domainname"] = json!("berth.test");
    sb.save();
    let out = sb.run();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["1", "berth.test"], "{}", stderr(&out));
}

#[test]
fn devices_and_dev_links_exist() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "ls /dev; readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo ok",
    ]);
    sb.config["linux"]["devices"] =
        json!([{"path": "/dev/fuse-like", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]);
    sb.save();
    let out = sb.run();
    let text = stdout(&out);
    for name in [
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "pts",
        "shm",
        "mqueue",
        "fuse-like",
        "stdin",
        "stdout",
        "stderr",
    ] {
        assert!(
            text.lines().any(|l| l == name),
            "/dev/{name} missing: {text} / {}",
            stderr(&out)
        );
    }
    assert!(text.contains("/proc/self/fd\npts/ptmx\nok"), "{text}");
}

#[test]
fn bind_mounts_honour_readonly_and_symlinks_cannot_escape() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "cat /data/file; echo y > /data/new && echo WROTE || echo REFUSED; ls /escape",
    ]);
    let data = sb.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("file"), "hello\n").unwrap();
    // A symlink in the rootfs pointing at the host's / must resolve inside the rootfs.
    std::os::unix::fs::symlink("/", sb.rootfs().join("escape-link")).unwrap();
    let victim = sb.dir.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let mounts = sb.config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}),
    );
    mounts.push(json!({"destination": "/escape-link/escape", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    sb.save();
    let out = sb.run();
    let text = stdout(&out);
    assert!(
        text.starts_with("hello\nREFUSED"),
        "{text} / {}",
        stderr(&out)
    );
    // The tmpfs landed in the rootfs's /escape, not at the host's /escape.
    assert!(
        !std::path::Path::new("/escape").exists(),
        "mount escaped the rootfs"
    );
}

#[test]
fn cgroup_mount_shows_the_containers_own_cgroups() {
    let pids_max = cgroup_file_inside("pids", "pids.max", "pids.max");
    let script = format!("ls /sys/fs/cgroup; cat {pids_max}");
    let mut sb = Sandbox::new(&["sh", "-c", &script]);
    sb.config["linux"]["resources"] = json!({"pids": {"limit": 42}});
    sb.save();
    let out = sb.run();
    let text = stdout(&out);
    // v1: a directory per controller; v2: the container's own cgroup files at the top.
    let expected = if cgroup_v2() { "memory.max" } else { "memory" };
    assert!(
        text.lines().any(|l| l == expected),
        "{text} / {}",
        stderr(&out)
    );
    assert!(text.trim_end().ends_with("42"), "{text}");
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let sb = Sandbox::new(&["sleep", "30"]);
    assert!(sb.create().status.success());
    let out = sb.rt(&["update", "--memory", "32m", "--pids-limit", "9", &sb.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mem = sb.cgroup_file("memory", "memory.limit_in_bytes", "memory.max");
    let mem = std::fs::read_to_string(mem).unwrap();
    assert_eq!(mem.trim(), (32u64 << 20).to_string());
    let pids_max = cgroup_file_inside("pids", "pids.max", "pids.max");
    let out = sb.rt(&["exec", &sb.id, "cat", &pids_max]);
    assert_eq!(stdout(&out).trim(), "9", "{}", stderr(&out));
}

#[test]
fn kill_all_signals_every_process() {
    let sb = Sandbox::new(&["sleep", "30"]);
    assert!(sb.create().status.success());
    assert!(sb.rt(&["start", &sb.id]).status.success());
    let out = sb.rt(&["kill", "--all", &sb.id, "SIGKILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    sb.wait_status("stopped");
}

#[test]
fn spec_writes_a_runc_like_config_and_refuses_to_overwrite() {
    let sb = Sandbox::new(&["true"]);
    let cfg = &sb.config;
    assert_eq!(cfg["root"]["path"], "rootfs");
    assert_eq!(cfg["process"]["noNewPrivileges"], true);
    let out = sb.rt(&["spec", "--bundle", sb.bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
}

#[test]
fn features_describe_the_runtime() {
    let sb = Sandbox::new(&["true"]);
    let out = sb.rt(&["features"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "createContainer"));
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    let sb = Sandbox::new(&["true"]);
    let out = sb.rt(&["--systemd-cgroup", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("systemd"), "{}", stderr(&out));
}

#[test]
fn idmapped_bind_mount_shows_files_under_the_mapped_owner() {
    let mut sb = Sandbox::new(&["sh", "-c", "stat -c '%u %g' /data/file; ls -ln /data"]);
    let data = sb.dir.join("idmapped");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("file"), "x").unwrap();
    // On disk the file is root's; through the mount, uid/gid 0 read as 1000.
    sb.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": data, "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
    }));
    sb.save();
    let out = sb.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().next(),
        Some("1000 1000"),
        "{}",
        stdout(&out)
    );
    // The host's view is unchanged.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(data.join("file")).unwrap().uid(), 0);
}

#[test]
fn idmapped_mount_without_mappings_is_refused_clearly() {
    let mut sb = Sandbox::new(&["true"]);
    let data = sb.dir.join("idmapped");
    std::fs::create_dir_all(&data).unwrap();
    sb.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": data, "options": ["bind", "idmap"]
    }));
    sb.save();
    let out = sb.run();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("uidMappings"), "{}", stderr(&out));
}

#[test]
fn tmpcopyup_keeps_the_image_contents_in_the_tmpfs() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "cat /etc/seed; grep ' /etc ' /proc/mounts | cut -d' ' -f3",
    ]);
    std::fs::write(sb.rootfs().join("etc/seed"), "from-image\n").unwrap();
    sb.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]
    }));
    sb.save();
    let out = sb.run();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["from-image", "tmpfs"], "{}", stderr(&out));
}

#[test]
fn update_of_the_device_list_keeps_the_default_devices_usable() {
    let sb = Sandbox::new(&["sleep", "30"]);
    assert!(sb.create().status.success());
    let file = sb.dir.join("resources.json");
    std::fs::write(&file, r#"{"devices": [{"allow": false, "access": "rwm"}]}"#).unwrap();
    let out = sb.rt(&["update", "-r", file.to_str().unwrap(), &sb.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sb.rt(&[
        "exec",
        &sb.id,
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok; head -c1 /dev/zero | wc -c",
    ]);
    let lines: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_owned()).collect();
    assert_eq!(lines, ["null-ok", "1"], "{}", stderr(&out));
}
