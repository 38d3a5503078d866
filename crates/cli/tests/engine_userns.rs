//! `berth daemon --userns-remap`: containers whose root is an unprivileged range of host ids,
//! seen from inside (their maps, their files) and from the host (their processes' ids, the
//! owners of what they write), and the flags that cannot go with it.
#![allow(clippy::unwrap_used)]

mod common;

use common::engine::{code, err, Daemon, IMAGE};
use common::remap::RemapUser;

#[test]
fn remapped_containers_run_as_unprivileged_host_ids() {
    let user = RemapUser::new();
    let d = Daemon::start_with(&["--userns-remap", &user.name]);
    let start = user.start;
    let info = d.docker_ok(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(info.contains("name=userns"), "{info}");

    // Inside: root, the range's maps, the image's files owned by root, a writable root.
    let o = d.docker_ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox; touch /new && echo wrote",
    ]);
    let lines: Vec<&str> = o.lines().map(str::trim).collect();
    let map: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(map, ["0", &start.to_string(), "65536"], "{o}");
    assert_eq!(&lines[1..], ["0", "0", "wrote"], "{o}");

    // From the host: the container's root is the range's first id, and so is the owner of
    // what it writes in a volume.
    let vol = format!("uvol{}", std::process::id());
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "remapped",
        "-v",
        &format!("{vol}:/data"),
        IMAGE,
        "sh",
        "-c",
        "echo x > /data/f; sleep 60",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = d.inspect("{{.State.Pid}}", "remapped");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == start.to_string()),
        "{uid_line}"
    );
    let data = d.root.join("volumes").join(&vol).join("_data/f");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).unwrap());
    assert_eq!(owner, start);
    // exec joins the same user namespace.
    assert_eq!(d.docker_ok(&["exec", "remapped", "id", "-u"]), "0");
    d.docker_ok(&["rm", "-f", "-v", "remapped"]);

    // The remapped root is nobody to the host: a host directory of root's stays read-only.
    let host_dir = d.dir.join("host-owned");
    std::fs::create_dir_all(&host_dir).unwrap();
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/h", host_dir.display()),
        IMAGE,
        "touch",
        "/h/x",
    ]);
    assert_ne!(
        code(&o),
        0,
        "the remapped root wrote into a directory of the host's root"
    );
    assert!(!host_dir.join("x").exists());

    // --userns=host opts a container out; what cannot be remapped is refused by name.
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--userns=host",
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(
        o.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    let o = d.docker(&["run", "--rm", "--privileged", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        err(&o).contains("privileged mode is incompatible with user namespaces"),
        "{}",
        err(&o)
    );
    let o = d.docker(&["run", "--rm", "--network", "host", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("host's network namespace"), "{}", err(&o));
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--privileged",
            "--userns=host",
            IMAGE,
            "id",
            "-u"
        ]),
        "0"
    );
}

#[test]
fn an_unknown_remap_user_stops_the_daemon_with_the_reason() {
    let dir = std::env::temp_dir().join(common::unique("urm"));
    let o = std::process::Command::new(common::berth())
        .args(["daemon", "-H"])
        .arg(format!("unix://{}/s.sock", dir.display()))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--exec-root")
        .arg(dir.join("run"))
        .args(["--userns-remap", "no-such-user-berth"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!o.status.success());
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(text.contains("no user \"no-such-user-berth\""), "{text}");
}
