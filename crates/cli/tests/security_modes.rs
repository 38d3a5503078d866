//! Nothing of a container is readable by other local users (docs/security.md): after
//! containers with secrets in their environment, their files, their logs and their volumes, an
//! exec, a healthcheck, a build and pulls with registry credentials, a throwaway unprivileged
//! uid can neither read, list nor traverse anything under the daemon's root, its exec root or
//! the runtime's standalone root; a walk of each tree finds every path within its rule of
//! `berth_engine::modes::RULES` (the table docs/security.md shows); the same holds after a
//! restart over a root whose modes were widened as older versions made them; and a remapped
//! root reaches its own containers' files and volumes, nothing else.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_engine::modes::{self, Kind, Owner, Tree};
use common::engine::{code, err, out, Daemon, IMAGE};
use common::remap::RemapUser;
use common::{unique, Sandbox};

/// A value found nowhere but where a test put it.
fn secret(what: &str) -> String {
    format!("S3cr3t{what}{}", unique("x").replace('-', "q"))
}

/// A uid and gid no account has, for the unprivileged probes.
fn throwaway_id() -> u32 {
    3_000_000_000 + std::process::id() % 100_000
}

/// The ids a tree's owners may have besides root's.
#[derive(Default, Clone, Copy)]
struct Ids {
    /// The `--userns-remap` range's first uid and gid.
    range: Option<(u32, u32)>,
}

/// Every path under `top` (itself included), symlinks not followed; `opaque_too` descends
/// into what the rules leave to containers and images.
fn walk(tree: Tree, top: &Path, opaque_too: bool) -> Vec<(PathBuf, PathBuf)> {
    let mut all = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let path = top.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // gone meanwhile (a temporary file)
        };
        all.push((rel.clone(), path.clone()));
        if !meta.is_dir() {
            continue;
        }
        let opaque =
            modes::rule_for(&modes::label(tree, &rel), Kind::Dir).is_some_and(|r| r.opaque);
        if opaque && !opaque_too {
            continue;
        }
        for e in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            todo.push(rel.join(e.file_name()));
        }
    }
    all
}

/// The paths under `top` whose mode or owner is not what their rule allows, or that no rule
/// names.
fn violations(tree: Tree, top: &Path, ids: Ids) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, path) in walk(tree, top, false) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let label = modes::label(tree, &rel);
        let Some(kind) = modes::kind_of(&meta) else {
            bad.push(format!("{} ({label}): a symlink or device", path.display()));
            continue;
        };
        let Some(rule) = modes::rule_for(&label, kind) else {
            bad.push(format!(
                "{} ({label}): no rule for a {kind:?}",
                path.display()
            ));
            continue;
        };
        let mode = meta.mode() & 0o7777;
        if mode & !rule.mode != 0 {
            bad.push(format!(
                "{} ({label}): mode {mode:04o}, rule {:04o}",
                path.display(),
                rule.mode
            ));
        }
        let (uid, gid) = (meta.uid(), meta.gid());
        let range_uid = ids.range.map(|r| r.0);
        let range_gid = ids.range.map(|r| r.1);
        let owner_ok = match rule.owner {
            Owner::Root => uid == 0 && gid == 0,
            Owner::RootRemapGroup | Owner::RootContainerGroup => {
                uid == 0 && (gid == 0 || Some(gid) == range_gid)
            }
            Owner::RootSocketGroup => uid == 0,
            Owner::ContainerRoot => uid == 0 || Some(uid) == range_uid,
            Owner::Container => true,
        };
        if !owner_ok {
            bad.push(format!(
                "{} ({label}): owner {uid}:{gid}, rule {:?}",
                path.display(),
                rule.owner
            ));
        }
    }
    bad
}

/// `argv` run as `uid`:`gid` with no supplementary groups.
fn as_user(uid: u32, gid: u32, argv: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--clear-groups", "--"])
        .args(argv)
        .output()
        .unwrap()
}

/// How a probe tries a path: any `lstat` that works (a stranger may not even learn a name), or
/// a read of a file, a listing or entering of a directory (what a group that traverses the
/// top may not do below it).
#[derive(Clone, Copy, PartialEq)]
enum Probe {
    Stat,
    Use,
}

/// What `uid`:`gid` (no supplementary groups) reaches of `paths` (as `how` tries them), of
/// `tops` (listed, or entered with `Probe::Stat`), and of `secrets` (`grep -r` over the tops).
fn reached_by(
    uid: u32,
    gid: u32,
    how: Probe,
    tops: &[&Path],
    paths: &[PathBuf],
    secrets: &[&str],
) -> String {
    let list = std::env::temp_dir().join(format!("{}.paths", unique("modes")));
    let text: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    std::fs::write(&list, text).unwrap();
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tops: Vec<String> = tops.iter().map(|t| format!("'{}'", t.display())).collect();
    let tops = tops.join(" ");
    let pattern = secrets.join("\\|");
    let try_path = match how {
        Probe::Stat => "{ [ -e \"$p\" ] || [ -L \"$p\" ]; }",
        Probe::Use => {
            "if [ -d \"$p\" ]; then ls \"$p\" || (cd \"$p\"); else cat \"$p\"; fi >/dev/null 2>&1"
        }
    };
    // A group the top gives traversal to enters it; nobody else does.
    let enter_top = match how {
        Probe::Stat => "(cd \"$t\") 2>/dev/null && echo \"ENTERED $t\"",
        Probe::Use => "",
    };
    let script = format!(
        "while IFS= read -r p; do {try_path} && echo \"REACHED $p\"; done < '{}'
         for t in {tops}; do
           ls \"$t\" >/dev/null 2>&1 && echo \"LISTED $t\"
           {enter_top}
         done
         grep -r -l '{pattern}' {tops} 2>/dev/null | sed 's/^/SECRET IN /'
         true",
        list.display()
    );
    let o = as_user(uid, gid, &["/bin/sh", "-c", &script]);
    let _ = std::fs::remove_file(&list);
    assert!(o.status.success(), "the probe failed: {}", err(&o));
    out(&o)
}

/// Every path of the daemon's trees, less the tops (whose parent the test made 0755).
fn all_paths(d: &Daemon) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walk(Tree::Root, &d.root, true)
        .into_iter()
        .chain(walk(Tree::ExecRoot, &d.exec_root, true))
        .filter(|(rel, _)| !rel.as_os_str().is_empty())
        .map(|(_, p)| p)
        .collect();
    v.sort();
    v
}

/// Containers, volumes, an exec, a healthcheck, a build and pulls, each with its secret.
struct Workload {
    secrets: Vec<String>,
    running: String,
}

fn make_workload(d: &Daemon) -> Workload {
    let env_secret = secret("Env");
    let file_secret = secret("EnvFile");
    let data_secret = secret("Data");
    let log_secret = secret("Log");
    let exec_secret = secret("Exec");
    let arg_secret = secret("BuildArg");
    let ctx_secret = secret("Context");
    let auth_secret = secret("Auth");

    let env_file = d.dir.join("secret.env");
    std::fs::write(&env_file, format!("FROM_FILE={file_secret}\n")).unwrap();
    let vol = unique("mvol");
    let running = unique("mrun");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &running,
        "-e",
        &format!("DB_PASSWORD={env_secret}"),
        "--env-file",
        env_file.to_str().unwrap(),
        "-v",
        &format!("{vol}:/data"),
        "-v",
        "/anon",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        IMAGE,
        "sh",
        "-c",
        &format!(
            "echo {data_secret} > /data/key; echo {data_secret} > /anon/key; \
             echo {data_secret} > /root/key; \
             i=0; while [ $i -lt 40 ]; do echo {log_secret}-$i-padding-padding-padding; i=$((i+1)); done; \
             sleep 120"
        ),
    ]);
    // An exec still running (its process.json, with its environment, in the exec root).
    d.docker_ok(&[
        "exec",
        "-d",
        "-e",
        &format!("TOKEN={exec_secret}"),
        &running,
        "sleep",
        "100",
    ]);
    d.docker_ok(&[
        "exec",
        &running,
        "sh",
        "-c",
        &format!("echo {exec_secret} > /tmp/e"),
    ]);
    // A stopped container with its log.
    d.docker_ok(&[
        "run",
        "--name",
        &unique("mdone"),
        "-e",
        &format!("X={env_secret}"),
        IMAGE,
        "echo",
        &log_secret,
    ]);
    // A build: an ARG used by RUN, a context file.
    let ctx = d.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:e2e\nARG TOKEN\nRUN echo $TOKEN > /token\nCOPY key /key\n",
    )
    .unwrap();
    std::fs::write(ctx.join("key"), &ctx_secret).unwrap();
    let o = run_env(
        d.docker_cmd(&[
            "build",
            "-q",
            "--build-arg",
            &format!("TOKEN={arg_secret}"),
            "-t",
            &unique("mbuilt"),
            ctx.to_str().unwrap(),
        ]),
        &[("DOCKER_BUILDKIT", "0")],
    );
    assert_eq!(code(&o), 0, "build: {}", err(&o));
    // Registry credentials: a pull (X-Registry-Auth) and a build's base (X-Registry-Config)
    // from a registry that is not there.
    let auth = base64_of(&format!("user:{auth_secret}"));
    let config = d.dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!("{{\"auths\":{{\"127.0.0.1:1\":{{\"auth\":\"{auth}\"}}}}}}"),
    )
    .unwrap();
    assert_ne!(code(&d.docker(&["pull", "127.0.0.1:1/private/app:1"])), 0);
    std::fs::write(ctx.join("Dockerfile"), "FROM 127.0.0.1:1/private/app:1\n").unwrap();
    let o = run_env(
        d.docker_cmd(&["build", ctx.to_str().unwrap()]),
        &[("DOCKER_BUILDKIT", "0")],
    );
    assert_ne!(code(&o), 0);
    // The log rotated and the healthcheck ran.
    let id = d.inspect("{{.Id}}", &running);
    let rotated = d.root.join(format!("containers/{id}/{id}-json.log.1"));
    assert!(rotated.exists(), "no rotated log at {}", rotated.display());
    d.wait_inspect("{{.State.Health.Status}}", &running, "healthy", 30);
    Workload {
        secrets: vec![
            env_secret,
            file_secret,
            data_secret,
            log_secret,
            exec_secret,
            arg_secret,
            ctx_secret,
            auth_secret,
        ],
        running,
    }
}

fn run_env(mut cmd: Command, env: &[(&str, &str)]) -> std::process::Output {
    cmd.envs(env.iter().copied());
    common::engine::run_cmd(cmd, None, 120)
}

fn base64_of(s: &str) -> String {
    let o = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    o.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(o.wait_with_output().unwrap().stdout).unwrap()
}

/// The trees hold every secret somewhere (so the probe's silence means something), walk
/// within their rules, and give an unprivileged uid nothing.
fn assert_private(d: &Daemon, w: &Workload, ids: Ids) {
    let mut bad = violations(Tree::Root, &d.root, ids);
    bad.extend(violations(Tree::ExecRoot, &d.exec_root, ids));
    assert!(
        bad.is_empty(),
        "wider than docs/security.md allows:\n{}",
        bad.join("\n")
    );

    let found = Command::new("grep")
        .arg("-r")
        .arg("-l")
        .arg(&w.secrets[0])
        .arg(&d.root)
        .output()
        .unwrap();
    assert!(
        !out(&found).is_empty(),
        "the environment's secret is nowhere under the root: the probe would prove nothing"
    );

    let paths = all_paths(d);
    assert!(paths.len() > 100, "only {} paths", paths.len());
    let id = throwaway_id();
    let secrets: Vec<&str> = w.secrets.iter().map(String::as_str).collect();
    let reached = reached_by(
        id,
        id,
        Probe::Stat,
        &[&d.root, &d.exec_root],
        &paths,
        &secrets,
    );
    assert!(
        reached.is_empty(),
        "an unprivileged user reaches:\n{reached}"
    );

    let log = d.daemon_log();
    for s in &w.secrets {
        assert!(
            !log.contains(s.as_str()),
            "the daemon's log holds a secret ({s}):\n{log}"
        );
    }
}

#[test]
fn nothing_of_a_container_is_readable_by_other_users() {
    let mut d = Daemon::start();
    let w = make_workload(&d);
    assert_private(&d, &w, Ids::default());

    // The API socket: root's and its group's (docker's, where that group exists).
    let meta = std::fs::symlink_metadata(&d.socket).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o660, 0));
    assert_eq!(
        Some(meta.gid()),
        Some(modes::group_id("docker").unwrap_or(0))
    );

    // Inside, files are made as a container's runtime makes them (umask 0022), whatever the
    // daemon's own umask; the container's `/`, /etc files and volumes are open to its users.
    assert_eq!(
        d.docker_ok(&["exec", &w.running, "sh", "-c", "umask"]),
        "0022"
    );
    let o = d.docker_ok(&["run", "--rm", "-u", "65534", "-v", "/anon2", IMAGE, "sh", "-c",
        "umask; stat -c '%a %n' / /etc/hosts /etc/resolv.conf /etc/hostname /anon2; touch /tmp/f; stat -c %a /tmp/f"]);
    assert_eq!(
        o.lines().collect::<Vec<_>>(),
        [
            "0022",
            "755 /",
            "644 /etc/hosts",
            "644 /etc/resolv.conf",
            "644 /etc/hostname",
            "755 /anon2",
            "644"
        ],
        "{o}"
    );

    // A restart over a root with the modes older versions made (0755 directories, 0644
    // files): narrowed at start, the running container untouched.
    d.kill_daemon();
    widen(Tree::Root, &d.root);
    widen(Tree::ExecRoot, &d.exec_root);
    // A tree an older version made has no record of the table it was narrowed to.
    for top in [&d.root, &d.exec_root] {
        std::fs::remove_file(top.join(modes::MARKER)).unwrap();
    }
    assert!(
        !reached_by(
            throwaway_id(),
            throwaway_id(),
            Probe::Stat,
            &[&d.root],
            &[d.root.join("containers")],
            &[]
        )
        .is_empty(),
        "the widening did not widen"
    );
    d.spawn();
    assert_private(&d, &w, Ids::default());
    assert_eq!(
        d.docker_ok(&["exec", &w.running, "cat", "/data/key"]),
        w.secrets[2]
    );
}

/// Gives every path the rules govern the modes berth made before: 0755 directories and
/// sockets, 0644 files.
fn widen(tree: Tree, top: &Path) {
    for (_, path) in walk(tree, top, false) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = match modes::kind_of(&meta) {
            Some(Kind::Dir | Kind::Socket) => 0o755,
            Some(Kind::File) => 0o644,
            _ => continue,
        };
        // A bound network namespace refuses; its directory is what keeps others out.
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
    }
}

#[test]
fn the_standalone_runtime_keeps_its_state_private() {
    let key = secret("Runtime");
    let mut sb = Sandbox::new(&["sleep", "30"]);
    sb.config["process"]["env"] = serde_json::json!(["PATH=/bin", format!("KEY={key}")]);
    sb.save();
    let o = sb.create();
    assert!(
        o.status.success(),
        "create: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bad = violations(Tree::RuntimeRoot, &sb.root, Ids::default());
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let paths: Vec<PathBuf> = walk(Tree::RuntimeRoot, &sb.root, true)
        .into_iter()
        .filter(|(r, _)| !r.as_os_str().is_empty())
        .map(|(_, p)| p)
        .collect();
    assert!(paths.iter().any(|p| p.ends_with("state.json")), "{paths:?}");
    let id = throwaway_id();
    let reached = reached_by(id, id, Probe::Stat, &[&sb.root], &paths, &[&key]);
    assert!(reached.is_empty(), "{reached}");
}

#[test]
fn a_remapped_root_reaches_its_containers_and_nothing_else() {
    let user = RemapUser::new();
    let range = (user.start, user.start);
    // The daemon holds group 0 among its supplementary groups, as a root shell often does: the
    // remapped init must not keep it.
    let wrapper = vec![
        "setpriv".to_owned(),
        "--groups=0".to_owned(),
        "--".to_owned(),
    ];
    let d = Daemon::start_bare_under(&wrapper, &["--userns-remap".to_owned(), user.name.clone()]);
    d.import_busybox(IMAGE);
    let key = secret("Remapped");
    let vol = unique("rvol");
    let mine = unique("rmine");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &mine,
        "-e",
        &format!("K={key}"),
        "-v",
        &format!("{vol}:/data"),
        IMAGE,
        "sh",
        "-c",
        &format!("echo {key} > /data/key; echo {key} > /root/key; echo {key}; sleep 120"),
    ]);
    let host = unique("rhost");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &host,
        "--userns=host",
        IMAGE,
        "sh",
        "-c",
        &format!("echo {key} > /root/key; sleep 120"),
    ]);
    // A non-root user in a remapped container reads its /etc files and its `/`.
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "-u",
            "65534",
            IMAGE,
            "sh",
            "-c",
            "cat /etc/hosts >/dev/null && ls -d /"
        ]),
        "/"
    );

    let bad = [
        violations(Tree::Root, &d.root, Ids { range: Some(range) }),
        violations(Tree::ExecRoot, &d.exec_root, Ids { range: Some(range) }),
    ]
    .concat();
    assert!(bad.is_empty(), "{}", bad.join("\n"));

    // The remapped root, with no other group: its container's root filesystem and volume...
    let mine_id = d.inspect("{{.Id}}", &mine);
    let host_id = d.inspect("{{.Id}}", &host);
    let cdir = d.root.join("containers").join(&mine_id);
    let (uid, gid) = range;
    let probe = |script: &str| {
        let o = as_user(uid, gid, &["/bin/sh", "-c", script]);
        (code(&o), out(&o))
    };
    let (rc, o) = probe(&format!(
        "cat '{}/rootfs/root/key' '{}/volumes/{vol}/_data/key'",
        cdir.display(),
        d.root.display()
    ));
    assert_eq!(
        (rc, o.lines().collect::<Vec<_>>()),
        (0, vec![key.as_str(), key.as_str()])
    );
    // ... and nothing else: not the records, logs and spec of its own container, not the
    // other container, not the store, not the exec root.
    let mut refused = vec![
        cdir.join("config.v2.json"),
        cdir.join("config.json"),
        cdir.join(format!("{mine_id}-json.log")),
        d.root
            .join("containers")
            .join(&host_id)
            .join("rootfs/root/key"),
        d.root.join("containers").join(&host_id).join("hosts"),
        d.exec_root
            .join("runtime")
            .join(&mine_id)
            .join("state.json"),
    ];
    for dir in [
        "",
        "containers",
        "volumes",
        "blobs",
        "snapshots",
        "networks",
        "builds",
        "tmp",
    ] {
        refused.push(d.root.join(dir).join("."));
    }
    refused.push(d.exec_root.join("."));
    for p in &refused {
        let (rc, _) = probe(&format!(
            "if [ -d '{0}' ]; then ls '{0}'; else cat '{0}'; fi 2>/dev/null",
            p.display()
        ));
        assert_ne!(rc, 0, "the remapped root reads {}", p.display());
    }

    // Group 0 stayed with the daemon: a host directory only root's group may traverse is out
    // of the remapped root's reach when its container's root filesystem is made.
    let shut = d.dir.join("root-group-only");
    std::fs::create_dir_all(shut.join("inner")).unwrap();
    std::fs::set_permissions(&shut, std::fs::Permissions::from_mode(0o750)).unwrap();
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/mnt", shut.join("inner").display()),
        IMAGE,
        "true",
    ]);
    assert_ne!(
        code(&o),
        0,
        "a remapped container bound a directory behind root's group"
    );
    assert!(err(&o).contains("Permission denied"), "{}", err(&o));
}

#[test]
fn a_burst_cut_by_a_daemon_kill_leaves_nothing_readable() {
    let mut d = Daemon::start();
    let key = secret("Burst");
    // One made in full, so that the secret is there to be looked for whatever the cut leaves.
    d.docker_ok(&["run", "-d", "-e", &format!("K={key}"), IMAGE, "sleep", "60"]);
    // 20 containers at once, each with a secret and a volume of its own; the daemon is
    // killed while they are being made, so some are half-made.
    let mut clients: Vec<std::process::Child> = (0..20)
        .map(|i| {
            d.docker_cmd(&[
                "run",
                "-d",
                "-e",
                &format!("K={key}"),
                "-v",
                &format!("{}:/d", unique(&format!("bvol{i}"))),
                IMAGE,
                "sh",
                "-c",
                &format!("echo {key} > /d/k; echo {key}; sleep 60"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(700));
    d.kill_daemon();
    for c in &mut clients {
        let _ = c.wait();
    }
    d.spawn();
    let w = Workload {
        secrets: vec![key],
        running: String::new(),
    };
    assert_private(&d, &w, Ids::default());
}

#[test]
fn the_socket_group_reaches_the_socket_and_nothing_else() {
    // The socket in the exec root, as /run/berth/berth.sock is, and a group of its own.
    let group = "nogroup";
    let gid = modes::group_id(group).expect("Debian's nogroup");
    let mut d = Daemon::unstarted(&["--group".to_owned(), group.to_owned()]);
    d.socket = d.exec_root.join("berth.sock");
    d.spawn();
    d.import_busybox(IMAGE);
    let key = secret("Group");
    d.docker_ok(&[
        "run",
        "-d",
        "-e",
        &format!("K={key}"),
        IMAGE,
        "sh",
        "-c",
        &format!("echo {key}; sleep 60"),
    ]);

    for (path, mode) in [(&d.exec_root, 0o710), (&d.socket, 0o660)] {
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (mode, 0, gid),
            "{}",
            path.display()
        );
    }
    let bad = violations(Tree::ExecRoot, &d.exec_root, Ids::default());
    assert!(bad.is_empty(), "{}", bad.join("\n"));

    // A member (and nobody else) talks to the daemon...
    let member = throwaway_id();
    let ping = |gid: u32| {
        let sock = d.socket.to_str().unwrap();
        let o = as_user(
            member,
            gid,
            &[
                "curl",
                "-s",
                "--max-time",
                "10",
                "--unix-socket",
                sock,
                "http://d/_ping",
            ],
        );
        out(&o)
    };
    assert_eq!(ping(gid), "OK");
    assert_ne!(ping(member), "OK");
    // ... and reads, lists or enters nothing else of the exec root.
    let paths: Vec<PathBuf> = walk(Tree::ExecRoot, &d.exec_root, true)
        .into_iter()
        .filter(|(rel, _)| !rel.as_os_str().is_empty())
        .map(|(_, p)| p)
        .filter(|p| *p != d.socket)
        .collect();
    assert!(paths.len() > 5, "{paths:?}");
    let reached = reached_by(member, gid, Probe::Use, &[&d.exec_root], &paths, &[&key]);
    assert!(reached.is_empty(), "the socket's group reaches:\n{reached}");

    // A group that does not exist is refused by name, before anything is made.
    let dir = d.dir.join("nogroup-root");
    let o = Command::new(common::berth())
        .args(["daemon", "--group", "no-such-group-berth", "-H"])
        .arg(format!("unix://{}", dir.join("s.sock").display()))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--exec-root")
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        err(&o).contains("--group no-such-group-berth: no such group"),
        "{}",
        err(&o)
    );
    assert!(!dir.exists());
}
