//! Containers as dockerd keeps them, through the clients that showed the differences (docker-py
//! from PyPI, the docker CLI): kill then remove, bind propagation (from inside the container,
//! both ways), volume subpaths, archives into created containers, legacy links, MAC addresses,
//! log drivers, `diff`, and unix sockets under a long `--exec-root`. Each bad input gets
//! dockerd's status and words, and leaves nothing behind.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::engine::{code, docker_py, err, out, run_cmd, Daemon, IMAGE};
use common::unique;

/// A tmpfs mounted shared under the daemon's test directory (the host's / is private here):
/// the source of shared and slave binds. Unmounted with the daemon's directory.
fn shared_mount(d: &Daemon) -> PathBuf {
    let dir = d.dir.join("shared");
    std::fs::create_dir_all(&dir).unwrap();
    for args in [
        &["-t", "tmpfs", "tmpfs", dir.to_str().unwrap()][..],
        &["--make-shared", dir.to_str().unwrap()][..],
    ] {
        let o = Command::new("mount").args(args).output().unwrap();
        assert!(o.status.success(), "mount {args:?}: {}", err(&o));
    }
    dir
}

/// The host's mount points under `dir`.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|p| p.starts_with(dir.to_str().unwrap()))
        .collect()
}

#[test]
fn docker_py_sees_containers_as_dockerd_shows_them() {
    let d = Daemon::start();
    let shared = shared_mount(&d);
    let prefix = unique("py");
    docker_py(
        &d,
        "containers.py",
        &[shared.as_os_str(), prefix.as_ref()],
        "docker-py containers ok",
    );
}

#[test]
fn kill_answers_once_the_container_is_dead_even_in_a_burst() {
    let d = Daemon::start();
    // The API: an inspect right after the kill sees the exit.
    let id = d.docker_ok(&["run", "-d", IMAGE, "sleep", "60"]);
    let (st, _) = d.api("POST", &format!("/containers/{id}/kill"), None);
    assert_eq!(st, 204);
    let (_, v) = d.api_json("GET", &format!("/containers/{id}/json"), None);
    assert_eq!(
        (
            v["State"]["Status"].as_str(),
            v["State"]["ExitCode"].as_i64()
        ),
        (Some("exited"), Some(137)),
        "{v}"
    );
    // A signal other than KILL is sent and answered at once (dockerd's too).
    let id2 = d.docker_ok(&["run", "-d", IMAGE, "sh", "-c", "trap '' USR1; sleep 60"]);
    assert_eq!(
        d.api("POST", &format!("/containers/{id2}/kill?signal=USR1"), None)
            .0,
        204
    );
    assert_eq!(d.inspect("{{.State.Status}}", &id2), "running");
    // The docker CLI's `kill` then `rm` (no force), 16 at once.
    let ids: Vec<String> = (0..16)
        .map(|_| d.docker_ok(&["run", "-d", IMAGE, "sleep", "60"]))
        .collect();
    let pairs: Vec<(Command, Command)> = ids
        .iter()
        .map(|id| (d.docker_cmd(&["kill", id]), d.docker_cmd(&["rm", id])))
        .collect();
    let threads: Vec<_> = pairs
        .into_iter()
        .map(|(kill, rm)| {
            std::thread::spawn(move || {
                let k = run_cmd(kill, None, 60);
                let r = run_cmd(rm, None, 60);
                (k.status.success() && r.status.success(), err(&k) + &err(&r))
            })
        })
        .collect();
    for t in threads {
        let (ok, e) = t.join().unwrap();
        assert!(ok, "kill then rm: {e}");
    }
    let left = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
    assert!(ids.iter().all(|id| !left.contains(id.as_str())), "{left}");
}

#[test]
fn bind_propagation_is_reported_applied_and_checked_as_dockerd_does() {
    let d = Daemon::start();
    let shared = shared_mount(&d);
    for mode in ["rprivate", "rslave", "rshared"] {
        let src = shared.join(mode);
        std::fs::create_dir_all(&src).unwrap();
        d.docker_ok(&[
            "run",
            "-d",
            "--privileged",
            "--name",
            mode,
            "-v",
            &format!("{}:/b:{mode}", src.display()),
            IMAGE,
            "sleep",
            "60",
        ]);
        assert_eq!(
            d.inspect(
                "{{range .Mounts}}{{.Destination}} {{.Mode}} {{.Propagation}}{{end}}",
                mode
            ),
            format!("/b {mode} {mode}")
        );
    }
    // A mount made on the host under each source reaches the slave and shared binds only.
    for mode in ["rprivate", "rslave", "rshared"] {
        let sub = shared.join(mode).join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs", sub.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", err(&o));
        std::fs::write(sub.join("marker"), "from the host").unwrap();
    }
    for (mode, seen) in [("rprivate", false), ("rslave", true), ("rshared", true)] {
        let o = d.docker(&["exec", mode, "cat", "/b/sub/marker"]);
        assert_eq!(
            out(&o) == "from the host",
            seen,
            "{mode}: {}{}",
            out(&o),
            err(&o)
        );
    }
    // And back: a mount made in the shared bind's container appears on the host.
    d.docker_ok(&[
        "exec",
        "rshared",
        "sh",
        "-c",
        "mkdir -p /b/fromc && mount -t tmpfs tmpfs /b/fromc",
    ]);
    let back = shared.join("rshared").join("fromc");
    assert!(
        host_mounts_under(&shared).contains(&back.display().to_string()),
        "{:?}",
        host_mounts_under(&shared)
    );
    // --mount keeps BindOptions as given; the default is rprivate.
    d.docker_ok(&[
        "create",
        "--name",
        "mb",
        "--mount",
        &format!(
            "type=bind,src={},dst=/s,bind-propagation=rslave",
            shared.display()
        ),
        "--mount",
        &format!("type=bind,src={},dst=/p", shared.display()),
        IMAGE,
        "true",
    ]);
    assert_eq!(
        d.inspect(
            "{{range .HostConfig.Mounts}}{{.Target}}={{with .BindOptions}}{{.Propagation}}{{end}} {{end}}",
            "mb"
        ),
        "/s=rslave /p="
    );
    let props = d.inspect(
        "{{range .Mounts}}{{.Destination}}={{.Propagation}} {{end}}",
        "mb",
    );
    assert!(
        props.contains("/s=rslave") && props.contains("/p=rprivate"),
        "{props}"
    );

    // A shared or slave bind of a source on a private mount fails its start as dockerd's does.
    let private = d.dir.join("private");
    std::fs::create_dir_all(&private).unwrap();
    for (mode, words) in [
        ("rshared", "but it is not a shared mount"),
        ("rslave", "but it is not a shared or slave mount"),
    ] {
        let o = d.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/b:{mode}", private.display()),
            IMAGE,
            "true",
        ]);
        assert_eq!(code(&o), 125, "{mode}");
        assert!(
            err(&o).contains(&format!("path {} is mounted on /", private.display()))
                && err(&o).contains(words),
            "{mode}: {}",
            err(&o)
        );
    }
    // Bad input: a propagation on a volume, an unknown mode or propagation.
    for (body, words) in [
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"HostConfig":{"Binds":["vol:/x:rshared"]}}"#.to_owned(),
            "field BindOptions must not be specified",
        ),
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"HostConfig":{"Binds":["/tmp:/x:bogus"]}}"#.to_owned(),
            "invalid mode: bogus",
        ),
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"HostConfig":{"Mounts":[{"Type":"bind","Source":"/tmp","Target":"/x","BindOptions":{"Propagation":"bogus"}}]}}"#.to_owned(),
            "invalid mount config for type \"bind\": invalid propagation mode: bogus",
        ),
    ] {
        let (st, v) = d.api_json("POST", "/containers/create", Some(&body));
        assert_eq!(st, 400, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(words), "{v}");
    }
    assert_eq!(
        d.docker_ok(&["volume", "ls", "-q"]),
        "",
        "no volume was made"
    );
}

#[test]
fn volume_subpaths_mount_only_that_directory() {
    let d = Daemon::start();
    d.docker_ok(&["volume", "create", "sv"]);
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "sv:/v",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /v/a/b && echo inner > /v/a/b/f && echo top > /v/top && ln -s /etc /v/link",
    ]);
    let sub = "type=volume,src=sv,dst=/d,volume-subpath=a/b";
    let o = d.docker_ok(&["run", "--name", "s1", "--mount", sub, IMAGE, "ls", "/d"]);
    assert_eq!(o, "f");
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--mount",
            sub,
            IMAGE,
            "sh",
            "-c",
            "echo more > /d/g; cat /d/f"
        ]),
        "inner"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", "sv:/v", IMAGE, "cat", "/v/a/b/g"]),
        "more",
        "writes land in the volume's subdirectory"
    );
    // Started again (its subpath bound again), then removed: no mount of it is left.
    d.docker_ok(&["start", "-a", "s1"]);
    d.docker_ok(&["rm", "s1"]);
    assert!(
        !host_mounts_under(&d.root)
            .iter()
            .any(|m| m.contains("subpaths")),
        "{:?}",
        host_mounts_under(&d.root)
    );
    // Bad subpaths: dockerd's words, at create or at start.
    for (subpath, words) in [("nope", "cannot access path"), ("link", "a symbolic link")] {
        let spec = format!("type=volume,src=sv,dst=/d,volume-subpath={subpath}");
        let o = d.docker(&["run", "--rm", "--mount", &spec, IMAGE, "true"]);
        // 127 for "no such file or directory": the docker CLI's own reading of the message.
        assert_ne!(code(&o), 0, "{subpath}");
        assert!(err(&o).contains(words), "{subpath}: {}", err(&o));
    }
    for (spec, words) in [
        (
            "type=volume,src=sv,dst=/d,volume-subpath=../x",
            "subpath must be a relative path within the volume",
        ),
        (
            "type=volume,dst=/d,volume-subpath=x",
            "must not set Subpath when using anonymous volumes",
        ),
    ] {
        let o = d.docker(&["run", "--rm", "--mount", spec, IMAGE, "true"]);
        assert_eq!(code(&o), 125);
        assert!(err(&o).contains(words), "{spec}: {}", err(&o));
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "", "nothing left");
}

#[test]
fn archives_go_into_a_created_containers_volumes() {
    let d = Daemon::start();
    d.docker_ok(&[
        "create",
        "--name",
        "cr",
        "-v",
        "/data",
        "-v",
        "/etc",
        IMAGE,
        "sh",
        "-c",
        "cat /data/hello; ls /etc",
    ]);
    let file = d.dir.join("hello");
    std::fs::write(&file, "copied before the start\n").unwrap();
    d.docker_ok(&["cp", file.to_str().unwrap(), "cr:/data/hello"]);
    d.docker_ok(&["cp", file.to_str().unwrap(), "cr:/etc/added"]);
    // The mount point of a volume the image lacks is the container's own, as with dockerd.
    assert_eq!(d.docker_ok(&["diff", "cr"]), "A /data");
    let o = d.docker_ok(&["start", "-a", "cr"]);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "copied before the start");
    // The image's /etc is in the volume too (it was filled before the copy), with the file.
    for f in ["passwd", "group", "added"] {
        assert!(lines.contains(&f), "{o}");
    }
}

#[test]
fn legacy_links_give_environment_hosts_and_a_removable_name() {
    let d = Daemon::start();
    d.docker_ok(&[
        "run", "-d", "--name", "web", "--expose", "80", "--expose", "81", "--expose", "82",
        "--expose", "53/udp", "-e", "FOO=bar", IMAGE, "sleep", "60",
    ]);
    let web_ip = d.inspect("{{.NetworkSettings.IPAddress}}", "web");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--link",
        "web:my-web",
        IMAGE,
        "sleep",
        "60",
    ]);
    let env = d.docker_ok(&["exec", "cli", "env"]);
    let mut want = vec![
        format!("MY_WEB_PORT=tcp://{web_ip}:80"),
        format!("MY_WEB_PORT_80_TCP=tcp://{web_ip}:80"),
        format!("MY_WEB_PORT_80_TCP_ADDR={web_ip}"),
        "MY_WEB_PORT_80_TCP_PORT=80".into(),
        "MY_WEB_PORT_80_TCP_PROTO=tcp".into(),
        format!("MY_WEB_PORT_80_TCP_START=tcp://{web_ip}:80"),
        "MY_WEB_PORT_80_TCP_PORT_START=80".into(),
        format!("MY_WEB_PORT_80_TCP_END=tcp://{web_ip}:82"),
        "MY_WEB_PORT_80_TCP_PORT_END=82".into(),
        format!("MY_WEB_PORT_53_UDP=udp://{web_ip}:53"),
        "MY_WEB_NAME=/cli/my-web".into(),
        "MY_WEB_ENV_FOO=bar".into(),
    ];
    want.retain(|w| !env.lines().any(|l| l == w));
    assert!(want.is_empty(), "missing {want:?} in\n{env}");
    let web_id = d.inspect("{{.Id}}", "web");
    let hosts = d.docker_ok(&["exec", "cli", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{web_ip}\tmy-web {} web", &web_id[..12])),
        "{hosts}"
    );
    assert_eq!(
        d.inspect("{{json .HostConfig.Links}}", "cli"),
        r#"["/web:/cli/my-web"]"#
    );
    // `rm --link` removes only the link (by its own name, `/PARENT/ALIAS`).
    d.docker_ok(&["rm", "--link", "/cli/my-web"]);
    assert_eq!(d.inspect("{{json .HostConfig.Links}}", "cli"), "null");
    assert!(!d
        .docker_ok(&["exec", "cli", "cat", "/etc/hosts"])
        .contains("my-web"));
    assert_eq!(d.inspect("{{.State.Status}}", "web"), "running");
    let (st, v) = d.api_json("DELETE", "/containers/cli/my-web?link=1", None);
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["message"], "No such container: cli/my-web");
    let (st, v) = d.api_json("DELETE", "/containers/web?link=1", None);
    assert_eq!(st, 500, "{v}");
    assert_eq!(
        v["message"],
        "Conflict, cannot remove the default link name of the container"
    );

    // Bad links, as dockerd answers them; nothing is made.
    let before = d.docker_ok(&["ps", "-aq"]);
    let o = d.docker(&["run", "--rm", "--link", "nonexist:x", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        err(&o).contains("could not get container for nonexist"),
        "{}",
        err(&o)
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--link",
        "web",
        IMAGE,
        "true",
    ]);
    assert!(
        err(&o).contains("conflicting options: host type networking can't be used with links"),
        "{}",
        err(&o)
    );
    assert_eq!(d.docker_ok(&["ps", "-aq"]), before);
    d.docker_ok(&["create", "--name", "stopped", IMAGE, "true"]);
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "l2",
        "--link",
        "stopped:s",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        err(&o).contains("Cannot link to a non running container: /stopped AS /l2/s"),
        "{}",
        err(&o)
    );
    assert_eq!(d.inspect("{{.State.Status}}", "l2"), "created");

    // On a user-defined network a link is a name only the linking container resolves.
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "un"]);
    d.docker_ok(&["network", "connect", "un", "web"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c3",
        "--network",
        "un",
        "--link",
        "web:backend",
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.inspect(
            "{{json .HostConfig.Links}} {{json .NetworkSettings.Networks.un.Links}}",
            "c3"
        ),
        r#"null ["web:backend"]"#
    );
    let web_un = d.inspect("{{.NetworkSettings.Networks.un.IPAddress}}", "web");
    let o = d.docker_ok(&["exec", "c3", "nslookup", "backend", "127.0.0.11"]);
    assert!(o.contains(&web_un), "{o}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "un",
        IMAGE,
        "nslookup",
        "backend",
        "127.0.0.11",
    ]);
    assert!(
        !out(&o).contains(&web_un),
        "another container resolved the link: {}",
        out(&o)
    );
}

#[test]
fn mac_addresses_log_drivers_runtime_and_diff_as_dockerd_has_them() {
    let d = Daemon::start();
    // docker CLI 28 sends the MAC in the endpoint; docker-py's Config.MacAddress is checked in
    // the docker-py test.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "mac",
        "--mac-address",
        "02:00:00:00:00:42",
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.docker_ok(&["exec", "mac", "cat", "/sys/class/net/eth0/address"]),
        "02:00:00:00:00:42"
    );
    assert_eq!(d.inspect("{{.HostConfig.Runtime}}", "mac"), "berth");
    for (body, words) in [
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"MacAddress":"02:00:00:00:00:43","HostConfig":{"NetworkMode":"host"}}"#,
            "conflicting options: mac-address and the network mode",
        ),
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"MacAddress":"nope"}"#,
            "invalid MAC address: nope",
        ),
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"nope"}}}"#,
            "error looking up logging plugin nope: plugin \"nope\" not found",
        ),
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"bogus":"1"}}}}"#,
            "unknown log opt 'bogus' for json-file log driver",
        ),
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"local","Config":{"tag":"x"}}}}"#,
            "unknown log opt 'tag' for log driver local",
        ),
        (
            r#"{"Image":"busybox:e2e","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"syslog"}}}"#,
            "the syslog log driver is not supported by berth",
        ),
    ] {
        let (st, v) = d.api_json("POST", "/containers/create", Some(body));
        assert_eq!(st, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(words),
            "{v}"
        );
    }
    let o = d.docker(&["run", "--rm", "--log-driver", "nope", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("plugin \"nope\" not found"), "{}", err(&o));
    d.docker_ok(&[
        "run",
        "--name",
        "nolog",
        "--log-driver",
        "none",
        IMAGE,
        "echo",
        "hi",
    ]);
    let o = d.docker(&["logs", "nolog"]);
    assert_ne!(code(&o), 0);
    assert!(
        err(&o).contains("configured logging driver does not support reading"),
        "{}",
        err(&o)
    );
    assert!(
        !d.root
            .join("containers")
            .join(d.inspect("{{.Id}}", "nolog"))
            .join(format!("{}-json.log", d.inspect("{{.Id}}", "nolog")))
            .exists(),
        "a none-driver container keeps no log"
    );
    d.docker_ok(&[
        "run",
        "--name",
        "ch",
        IMAGE,
        "sh",
        "-c",
        "echo x > /f; echo y >> /etc/group",
    ]);
    assert_eq!(d.docker_ok(&["diff", "ch"]), "C /etc\nC /etc/group\nA /f");
    d.docker_ok(&["run", "--name", "ch2", IMAGE, "true"]);
    assert_eq!(d.docker_ok(&["diff", "ch2"]), "");
}

#[test]
fn a_long_exec_root_keeps_every_socket_working() {
    let mut d = Daemon::unstarted(&[]);
    let base = d.dir.display().to_string().len() + 1;
    d.exec_root = d.dir.join("r".repeat(100 - base));
    assert_eq!(d.exec_root.as_os_str().len(), 100);
    d.spawn();
    d.import_busybox(IMAGE);
    // A tty container: the console socket is far past sun_path's 108 bytes.
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-t", IMAGE, "sh", "-c", "tty"]),
        "/dev/pts/0"
    );
    let id = d.docker_ok(&["run", "-d", "-t", "--name", "tt", IMAGE, "sleep", "60"]);
    let console = d
        .exec_root
        .join("containers")
        .join(&id)
        .join("console.sock");
    assert!(console.as_os_str().len() > 108);
    assert!(d
        .docker_ok(&["exec", "-t", "tt", "tty"])
        .starts_with("/dev/pts/"));
    // Attach (attach.sock) and stdin, logs, a resize (control.sock).
    assert_eq!(
        String::from_utf8_lossy(
            &run_cmd(
                d.docker_cmd(&["run", "--rm", "-i", IMAGE, "cat"]),
                Some(b"through stdin\n"),
                60
            )
            .stdout
        ),
        "through stdin\n"
    );
    d.docker_ok(&["run", "--name", "lg", IMAGE, "echo", "logged"]);
    assert_eq!(d.docker_ok(&["logs", "lg"]), "logged");
    let (st, _) = d.api("POST", "/containers/tt/resize?h=30&w=100", None);
    assert_eq!(st, 200);
    assert_eq!(
        d.docker_ok(&["exec", "tt", "stty", "-F", "/dev/pts/0", "size"]),
        "30 100"
    );
    // A runc-compatible runtime binary gets a console path it can reach.
    if Path::new("/usr/sbin/runc").exists() {
        assert_eq!(
            d.docker_ok(&["run", "--rm", "-t", "--runtime", "runc", IMAGE, "tty"]),
            "/dev/pts/0"
        );
    }
    // After a daemon restart the monitors are found again through their control sockets.
    d.kill_daemon();
    d.spawn();
    d.docker_ok(&["stop", "-t", "1", "tt"]);
    assert_eq!(d.inspect("{{.State.Status}}", "tt"), "exited");
}
