//! What the engine's defaults and the features around them enforce, seen from inside the
//! container: the device cgroup, Docker's seccomp profile, `cp` resolving paths inside the
//! container's root, stats and update from the cgroup, `--gpus` without a GPU.
#![allow(clippy::unwrap_used)]

mod common;

use common::engine::{code, err, out, Daemon, IMAGE};

#[test]
fn device_cgroup_denies_devices_the_container_was_not_given() {
    let d = Daemon::start();
    // CAP_MKNOD is in Docker's default set, so the node can be made; opening /dev/mem must
    // still be refused by the device cgroup, while the default devices work.
    let o = d.docker(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "mknod /dev/m c 1 1 && head -c 1 /dev/m; echo x > /dev/null && echo null-ok",
    ]);
    assert!(
        err(&o).contains("Operation not permitted"),
        "{} / {}",
        out(&o),
        err(&o)
    );
    assert!(out(&o).contains("null-ok"), "{}", out(&o));
    // --device grants exactly that node.
    let o = d.docker(&[
        "run",
        "--rm",
        "--device",
        "/dev/full",
        IMAGE,
        "sh",
        "-c",
        "echo x > /dev/full; echo rc=$?",
    ]);
    assert!(
        out(&o).contains("rc=1"),
        "writing /dev/full fails with ENOSPC, not EPERM: {} {}",
        out(&o),
        err(&o)
    );
    assert!(err(&o).contains("No space left"), "{}", err(&o));
}

#[test]
fn default_seccomp_profile_is_loaded_and_unconfined_removes_it() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "grep '^Seccomp:' /proc/self/status; unshare -U true; echo unshare=$?",
    ]);
    assert!(out(&o).contains("Seccomp:\t2"), "{}", out(&o));
    assert!(
        out(&o).contains("unshare=1"),
        "unshare is refused without CAP_SYS_ADMIN: {}",
        out(&o)
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        IMAGE,
        "grep",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(out(&o).trim(), "Seccomp:\t0", "{}", err(&o));
    let o = d.docker(&[
        "run",
        "--rm",
        "--privileged",
        IMAGE,
        "grep",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(out(&o).trim(), "Seccomp:\t0", "{}", err(&o));
}

#[test]
fn cp_resolves_symlinks_inside_the_container() {
    let d = Daemon::start();
    let name = format!("cp-{}", std::process::id());
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "mkdir /data; echo inside > /data/f; ln -s /etc /data/link; sleep 60",
    ]);
    d.wait_inspect("{{.State.Status}}", &name, "running", 10);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let tmp = std::env::temp_dir().join(format!("berth-cp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    // Out of the container: the directory, with the symlink kept as a symlink.
    let o = d.docker(&["cp", &format!("{name}:/data"), tmp.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.join("data/f")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        std::fs::read_link(tmp.join("data/link")).unwrap(),
        std::path::Path::new("/etc")
    );
    // Into a symlinked directory: it lands in the container's /etc, never the host's.
    let unique = format!("berth-cp-probe-{}", std::process::id());
    let src = tmp.join(&unique);
    std::fs::write(&src, "probe\n").unwrap();
    let o = d.docker(&["cp", src.to_str().unwrap(), &format!("{name}:/data/link/")]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        !std::path::Path::new("/etc").join(&unique).exists(),
        "cp wrote into the host's /etc"
    );
    let o = d.docker(&["exec", &name, "cat", &format!("/etc/{unique}")]);
    assert_eq!(out(&o), "probe\n", "{}", err(&o));
    let o = d.docker(&["cp", &format!("{name}:/no/such"), tmp.to_str().unwrap()]);
    assert_ne!(code(&o), 0);
    assert!(
        err(&o).contains("Could not find the file /no/such"),
        "{}",
        err(&o)
    );
    let _ = std::fs::remove_dir_all(&tmp);
    d.docker(&["rm", "-f", &name]);
}

#[test]
fn stats_and_update_read_and_change_the_cgroup() {
    let d = Daemon::start();
    let name = format!("st-{}", std::process::id());
    d.docker_ok(&[
        "run", "-d", "--name", &name, "--memory", "32m", IMAGE, "sleep", "60",
    ]);
    d.wait_inspect("{{.State.Status}}", &name, "running", 10);
    let o = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        &name,
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let line = out(&o);
    assert!(
        line.starts_with(&name) && line.contains("/ 32MiB") && line.trim_end().ends_with(" 1"),
        "{line}"
    );
    d.docker_ok(&["update", "--memory", "48m", "--memory-swap", "96m", &name]);
    let limit = d.docker_ok(&["exec", &name, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]);
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
    assert_eq!(
        d.inspect("{{.HostConfig.Memory}}", &name),
        (48u64 << 20).to_string()
    );
    d.docker(&["rm", "-f", &name]);
}

#[test]
fn gpus_without_a_gpu_is_a_clear_error() {
    if std::path::Path::new("/dev/nvidia0").exists() {
        return; // the GPU path is proven on the device machine (see README)
    }
    let d = Daemon::start();
    let o = d.docker(&["run", "--rm", "--gpus", "all", IMAGE, "true"]);
    assert_ne!(code(&o), 0);
    assert!(
        err(&o).contains("no NVIDIA GPU on this host"),
        "{}",
        err(&o)
    );
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]),
        "",
        "the failed start leaves a created container only if docker would"
    );
}

#[test]
fn flags_not_served_yet_are_refused_by_name() {
    let d = Daemon::start();
    // docker CLI itself only sends "host"; other clients may send more.
    let body =
        format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"UsernsMode":"private"}}}}"#);
    let (status, v) = d.api_json("POST", "/containers/create", Some(&body));
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("--userns=private"),
        "{v}"
    );
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "", "nothing was created");
}

#[test]
fn volume_copy_up_follows_image_symlinks_inside_the_container_only() {
    let d = Daemon::start();
    // An image whose VOLUME /data is a symlink to /etc: the new volume gets the image's /etc,
    // never the host's.
    let marker = format!("berth-copyup-{}", std::process::id());
    let host_file = std::path::Path::new("/etc").join(&marker);
    std::fs::write(&host_file, "host\n").unwrap();
    let dir = std::env::temp_dir().join(format!("{marker}-img"));
    let _ = std::fs::remove_dir_all(&dir);
    common::make_busybox_rootfs(&dir);
    std::os::unix::fs::symlink("/etc", dir.join("data")).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    let image = format!("copyup-{}:x", std::process::id());
    let o = d.docker_in(
        &["import", "--change", "VOLUME /data", "-", &image],
        &tar.stdout,
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{marker}:/data"),
        &image,
        "ls",
        "/data",
    ]);
    let _ = std::fs::remove_file(&host_file);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        out(&o).contains("passwd"),
        "the image's /etc was copied up: {}",
        out(&o)
    );
    assert!(
        !out(&o).contains(&marker),
        "a host file was copied into the volume: {}",
        out(&o)
    );
    d.docker(&["volume", "rm", &marker]);
}

#[test]
fn cp_sees_volumes_binds_and_tmpfs_as_the_container_does() {
    let d = Daemon::start();
    let name = format!("cpv-{}", std::process::id());
    let vol = format!("cpvol-{}", std::process::id());
    let host_dir = d.dir.join("bound");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("from-host"), "host side\n").unwrap();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{vol}:/vol"),
        "-v",
        &format!("{}:/bound", host_dir.display()),
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "echo in-volume > /vol/f; echo in-tmpfs > /scratch/t; ln -s /vol /to-vol; sleep 60",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let tmp = d.dir.join("cp-out");
    std::fs::create_dir_all(&tmp).unwrap();
    let t = tmp.to_str().unwrap();
    // Running: out of a volume, a bind, a tmpfs, and through a symlink into the volume.
    for (src, file, want) in [
        ("/vol/f", "f", "in-volume\n"),
        ("/bound/from-host", "from-host", "host side\n"),
        ("/scratch/t", "t", "in-tmpfs\n"),
    ] {
        d.docker_ok(&["cp", &format!("{name}:{src}"), t]);
        assert_eq!(
            std::fs::read_to_string(tmp.join(file)).unwrap(),
            want,
            "{src}"
        );
    }
    // Into the volume through the symlink: the container sees it in the volume.
    let probe = tmp.join("probe");
    std::fs::write(&probe, "copied in\n").unwrap();
    d.docker_ok(&["cp", probe.to_str().unwrap(), &format!("{name}:/to-vol/")]);
    assert_eq!(
        d.docker_ok(&["exec", &name, "cat", "/vol/probe"]),
        "copied in"
    );
    // Into the bind: it lands in the host directory that is bound.
    d.docker_ok(&["cp", probe.to_str().unwrap(), &format!("{name}:/bound/")]);
    assert_eq!(
        std::fs::read_to_string(host_dir.join("probe")).unwrap(),
        "copied in\n"
    );

    // Stopped: the volume's content is still reached (tmpfs is gone with the container).
    d.docker_ok(&["stop", "-t", "0", &name]);
    std::fs::remove_file(tmp.join("f")).unwrap();
    d.docker_ok(&["cp", &format!("{name}:/vol/f"), t]);
    assert_eq!(
        std::fs::read_to_string(tmp.join("f")).unwrap(),
        "in-volume\n"
    );
    std::fs::write(&probe, "while stopped\n").unwrap();
    d.docker_ok(&["cp", probe.to_str().unwrap(), &format!("{name}:/vol/")]);
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/v"),
        IMAGE,
        "cat",
        "/v/probe",
    ]);
    assert_eq!(o, "while stopped");
    // Nothing of the copy stays mounted on the host.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("cp-root-"), "{mounts}");
    d.docker_ok(&["rm", "-v", &name]);
    d.docker_ok(&["volume", "rm", &vol]);
}
