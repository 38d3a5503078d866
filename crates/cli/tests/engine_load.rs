//! Correctness under concurrency (issue 17) and the attach/exec streams as dockerd serves
//! them (issue 20), through the clients that showed each problem: bursts of `run --rm` on the
//! default bridge through the berth CLI and the docker CLI (every byte of output, every exit
//! code), unnamed creates at once, networks and volumes made and removed by concurrent
//! requests, save streamed into load and a client that stops reading, a daemon killed in the
//! middle of a burst, and attach/exec through docker-py and through CLIs on a terminal.
//! Every burst is bounded in count and time; names are unique per test run.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::engine::{code, err, out, run_cmd, Daemon, IMAGE};
use common::unique;
use serde_json::Value;

/// Runs the commands at once, one thread each; their outputs in order.
fn burst(cmds: Vec<Command>, secs: u64) -> Vec<Output> {
    let handles: Vec<_> = cmds
        .into_iter()
        .map(|c| std::thread::spawn(move || run_cmd(c, None, secs)))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// N `run --rm IMAGE sh -c 'echo TOKEN'` on the default bridge, through `cli`; every one
/// must exit 0 having printed its own token exactly once, and nothing may be left.
fn runs_print_every_token(d: &Daemon, cli: fn(&Daemon, &[&str]) -> Command, n: usize) {
    let tag = unique("tok");
    let tokens: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let cmds = tokens
        .iter()
        .map(|t| cli(d, &["run", "--rm", IMAGE, "sh", "-c", &format!("echo {t}")]))
        .collect();
    let outputs = burst(cmds, 180);
    let mut failed = Vec::new();
    for (t, o) in tokens.iter().zip(&outputs) {
        if code(o) != 0 || out(o) != format!("{t}\n") {
            failed.push(format!(
                "{t}: exit {} out {:?} err {:?}",
                code(o),
                out(o),
                err(o)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {n} runs went wrong:\n{}",
        failed.len(),
        failed.join("\n")
    );
    // `--rm`: the clients waited for the removal.
    let left = d.docker_ok(&["ps", "-aq"]);
    assert_eq!(left, "", "containers left behind");
}

#[test]
fn fifty_concurrent_runs_through_the_berth_cli_print_every_token_once() {
    let d = Daemon::start();
    runs_print_every_token(&d, Daemon::berth_cmd, 50);
}

#[test]
fn fifty_concurrent_runs_through_the_docker_cli_print_every_token_once() {
    let d = Daemon::start();
    runs_print_every_token(&d, Daemon::docker_cmd, 50);
}

#[test]
fn twenty_unnamed_creates_at_once_all_succeed_with_distinct_names() {
    let d = Daemon::start();
    let cmds = (0..20)
        .map(|_| d.docker_cmd(&["create", IMAGE, "true"]))
        .collect();
    let outputs = burst(cmds, 120);
    let ids: Vec<String> = outputs
        .iter()
        .map(|o| {
            assert_eq!(code(o), 0, "create failed: {}", err(o));
            out(o).trim().to_owned()
        })
        .collect();
    let names: HashSet<String> = ids.iter().map(|id| d.inspect("{{.Name}}", id)).collect();
    assert_eq!(names.len(), 20, "names repeat: {names:?}");
    assert_eq!(d.docker_ok(&["ps", "-aq"]).lines().count(), 20);
}

/// The status of one request over the API socket (a `Daemon` stays on its test's thread).
fn status_of(socket: &std::path::Path, method: &str, path: &str, body: Option<&str>) -> u16 {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

/// Sends the requests from a thread each, at once; the statuses, in order.
fn api_burst(d: &Daemon, reqs: Vec<(&'static str, String, Option<String>)>) -> Vec<u16> {
    let socket = d.socket.clone();
    std::thread::scope(|s| {
        let hs: Vec<_> = reqs
            .iter()
            .map(|(m, p, b)| {
                let socket = &socket;
                s.spawn(move || status_of(socket, m, p, b.as_deref()))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn same(
    n: usize,
    method: &'static str,
    path: &str,
    body: Option<&str>,
) -> Vec<(&'static str, String, Option<String>)> {
    (0..n)
        .map(|_| (method, path.to_owned(), body.map(str::to_owned)))
        .collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// The network records on disk that carry `name`, and their bridges.
fn network_records(d: &Daemon, name: &str) -> Vec<Value> {
    std::fs::read_dir(d.root.join("networks"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.path()).unwrap()).unwrap())
        .filter(|n| n["name"] == name)
        .collect()
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// The network `name` is whole (listed, one record, its bridge up) or gone (none of them).
fn network_whole_or_gone(d: &Daemon, name: &str) -> bool {
    let listed = d
        .docker_ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .filter(|l| *l == name)
        .count();
    let records = network_records(d, name);
    match (listed, records.len()) {
        (0, 0) => false,
        (1, 1) => {
            let bridge = records[0]["bridge"].as_str().unwrap().to_owned();
            assert!(
                link_exists(&bridge),
                "network {name} has no bridge {bridge}"
            );
            true
        }
        other => panic!("network {name}: listed/records {other:?}"),
    }
}

#[test]
fn concurrent_network_creates_and_removes_of_one_name_leave_it_whole_or_gone() {
    let d = Daemon::start();
    let name = unique("ln");
    let body = format!(r#"{{"Name":"{name}"}}"#);
    let made = api_burst(&d, same(10, "POST", "/networks/create", Some(&body)));
    assert_eq!(count(&made, 201), 1, "creates: {made:?}");
    assert_eq!(count(&made, 409), 9, "creates: {made:?}");
    assert!(network_whole_or_gone(&d, &name));
    let removed = api_burst(&d, same(10, "DELETE", &format!("/networks/{name}"), None));
    assert_eq!(count(&removed, 204), 1, "removes: {removed:?}");
    assert_eq!(count(&removed, 404), 9, "removes: {removed:?}");
    assert!(!network_whole_or_gone(&d, &name));
    // Creates and removes of the name at once, three rounds: never half-made.
    for _ in 0..3 {
        let mixed = api_burst(
            &d,
            (0..8)
                .map(|i| {
                    if i % 2 == 0 {
                        ("POST", "/networks/create".to_owned(), Some(body.clone()))
                    } else {
                        ("DELETE", format!("/networks/{name}"), None)
                    }
                })
                .collect(),
        );
        assert!(
            mixed.iter().all(|s| [201, 204, 404, 409].contains(s)),
            "{mixed:?}"
        );
        let exists = network_whole_or_gone(&d, &name);
        assert_eq!(exists, count(&mixed, 201) > count(&mixed, 204), "{mixed:?}");
        if exists {
            assert_eq!(d.api("DELETE", &format!("/networks/{name}"), None).0, 204);
        }
    }
}

#[test]
fn concurrent_volume_creates_and_removes_of_one_name_leave_it_whole_or_gone() {
    let d = Daemon::start();
    let name = unique("lv");
    let body = format!(r#"{{"Name":"{name}"}}"#);
    // As dockerd: a create of a name that exists answers that volume.
    let made = api_burst(&d, same(10, "POST", "/volumes/create", Some(&body)));
    assert_eq!(count(&made, 201), 10, "creates: {made:?}");
    let data = d.root.join("volumes").join(&name).join("_data");
    assert!(data.is_dir());
    let removed = api_burst(&d, same(10, "DELETE", &format!("/volumes/{name}"), None));
    assert_eq!(count(&removed, 204), 1, "removes: {removed:?}");
    assert_eq!(count(&removed, 404), 9, "removes: {removed:?}");
    assert!(!d.root.join("volumes").join(&name).exists());
    // Containers made on the volume while it is removed: each one that was made has its
    // volume, and a removal that won was not in use.
    d.docker_ok(&["volume", "create", &name]);
    let volume = format!("{name}:/data");
    let cmds = (0..8)
        .map(|i| {
            if i % 2 == 0 {
                d.docker_cmd(&["create", "-v", &volume, IMAGE, "true"])
            } else {
                d.docker_cmd(&["volume", "rm", &name])
            }
        })
        .collect();
    let results: Vec<(bool, i32, String)> = burst(cmds, 120)
        .iter()
        .enumerate()
        .map(|(i, o)| {
            if i % 2 == 0 {
                (true, code(o), out(o).trim().to_owned())
            } else {
                (false, code(o), err(o))
            }
        })
        .collect();
    for (is_create, c, text) in &results {
        if *is_create {
            assert_eq!(*c, 0, "create on the volume failed");
            let mounts = d.inspect("{{range .Mounts}}{{.Source}}{{end}}", text);
            assert!(
                std::path::Path::new(&mounts).is_dir(),
                "container {text} lost its volume {mounts}"
            );
        } else {
            assert!(
                *c == 0 || text.contains("in use") || text.contains("no such volume"),
                "volume rm: {text}"
            );
        }
    }
    let listed = d.docker_ok(&["volume", "ls", "-q"]);
    let users = d.docker_ok(&["ps", "-aq", "--filter", &format!("volume={name}")]);
    if !users.is_empty() {
        assert!(listed.lines().any(|l| l == name), "a used volume is gone");
    }
    assert_eq!(
        listed.lines().any(|l| l == name),
        d.root
            .join("volumes")
            .join(&name)
            .join("volume.json")
            .is_file()
    );
}

/// `python3 tests/dockerpy/streams.py SOCKET IMAGE ARGS...`, which prints `ok CHECK`.
fn streams_py(d: &Daemon, args: &[&str], secs: u64) {
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/dockerpy/streams.py"
    ))
    .arg(&d.socket)
    .arg(IMAGE)
    .args(args)
    .env("DOCKER_HOST", d.host())
    .env("BERTH_HOST", d.host())
    .env("DOCKER_CONFIG", d.dir.join("docker-config"));
    let o = run_cmd(cmd, None, secs);
    assert!(
        o.status.success() && out(&o).contains(&format!("ok {}", args[0])),
        "streams.py {args:?}: {}{}\n--- daemon log:\n{}",
        out(&o),
        err(&o),
        d.daemon_log()
    );
}

/// A request on a fresh connection, timed; fails past `limit`.
fn answered_within(d: &Daemon, method: &str, path: &str, limit: Duration) {
    let start = Instant::now();
    let (status, body) = d.api(method, path, None);
    assert!(status < 300, "{method} {path}: {status} {body}");
    assert!(
        start.elapsed() < limit,
        "{method} {path} took {:?}",
        start.elapsed()
    );
}

#[test]
fn save_streamed_into_load_and_a_stalled_reader_hold_up_no_one() {
    let d = Daemon::start();
    // docker-py's load_image(get_image(...)): the save's body streamed into the load's
    // chunked one on one daemon, /_ping timed all along.
    streams_py(&d, &["save-load"], 120);
    // The docker CLI's pipe.
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "{0} save {IMAGE} | {0} load",
            common::engine::DOCKER
        ))
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"));
    let o = run_cmd(sh, None, 60);
    assert!(o.status.success(), "save | load: {}", err(&o));
    // A client that reads a little of a save and then nothing.
    let mut stalled = UnixStream::connect(&d.socket).unwrap();
    write!(
        stalled,
        "GET /images/{IMAGE}/get HTTP/1.1\r\nHost: d\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 4096];
    stalled.read_exact(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    answered_within(&d, "GET", "/_ping", Duration::from_secs(1));
    answered_within(&d, "GET", "/containers/json?all=1", Duration::from_secs(1));
    answered_within(&d, "GET", "/images/json", Duration::from_secs(1));
    // Image writes too: a tag, an import, a load.
    let tag = format!("{}:x", unique("stalled"));
    let start = Instant::now();
    d.docker_ok(&["tag", IMAGE, &tag]);
    d.import_busybox(&format!("{}:y", unique("stalled")));
    let o = run_cmd(
        {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("{0} save {tag} | {0} load", common::engine::DOCKER))
                .env("DOCKER_HOST", d.host())
                .env("DOCKER_CONFIG", d.dir.join("docker-config"));
            sh
        },
        None,
        60,
    );
    assert!(
        o.status.success(),
        "save | load beside a stall: {}",
        err(&o)
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    drop(stalled);
    answered_within(&d, "GET", "/_ping", Duration::from_secs(1));
}

#[test]
fn sigterm_stops_the_daemon_within_seconds_even_beside_a_stalled_client() {
    let mut d = Daemon::start();
    let mut stalled = UnixStream::connect(&d.socket).unwrap();
    write!(
        stalled,
        "GET /images/{IMAGE}/get HTTP/1.1\r\nHost: d\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 1024];
    stalled.read_exact(&mut first).unwrap();
    // A `logs -f`-like stream that never ends, too.
    let id = d.docker_ok(&["run", "-d", IMAGE, "sleep", "60"]);
    let mut follow = UnixStream::connect(&d.socket).unwrap();
    write!(
        follow,
        "GET /containers/{id}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let took = d.terminate_daemon(Duration::from_secs(15));
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(10)),
        "SIGTERM took {took:?}: {}",
        d.daemon_log()
    );
    assert!(!d.socket.exists(), "the stopped daemon left its socket");
    drop((stalled, follow));
    // The container outlived it; the next daemon finds it (and Drop removes it).
    d.spawn();
    assert_eq!(d.inspect("{{.State.Running}}", &id), "true");
}

/// Every record under the root: (id, record), parsed.
fn records_on_disk(d: &Daemon) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(d.root.join("containers"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()),
            "a leftover in the containers dir: {name}"
        );
        let path = e.path().join("config.v2.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.insert(name, serde_json::from_slice(&bytes).unwrap());
    }
    out
}

#[test]
fn a_daemon_killed_in_the_middle_of_twenty_runs_restarts_with_every_record_whole() {
    let mut d = Daemon::start();
    let tag = unique("k9");
    let cmds: Vec<Command> = (0..20)
        .map(|i| {
            let name = format!("{tag}-{i}");
            let script = format!("echo {name}; sleep 120");
            if i % 2 == 0 {
                d.docker_cmd(&["run", "-d", "--name", &name, IMAGE, "sh", "-c", &script])
            } else {
                d.docker_cmd(&["run", "--rm", "--name", &name, IMAGE, "sh", "-c", &script])
            }
        })
        .collect();
    let clients = std::thread::spawn(move || burst(cmds, 180));
    // Kill it once five containers run, while the others are being made and started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && d.recorded_pids().len() < 5 {
        std::thread::sleep(Duration::from_millis(5));
    }
    d.kill_daemon();
    // The clients see the daemon go; all of them end.
    let _ = clients.join().unwrap();
    d.spawn();
    let records = records_on_disk(&d);
    let listed: BTreeMap<String, Value> =
        serde_json::from_str::<Value>(&d.api("GET", "/containers/json?all=1", None).1)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["Id"].as_str().unwrap().to_owned(), c.clone()))
            .collect();
    assert_eq!(
        records.keys().collect::<Vec<_>>(),
        listed.keys().collect::<Vec<_>>(),
        "records on disk and the API disagree"
    );
    // The kill came once five ran: they (at least) are back.
    assert!(
        listed.len() >= 5,
        "only {} containers after the restart",
        listed.len()
    );
    let mut ips: Vec<String> = Vec::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for (id, c) in &listed {
        *states
            .entry(c["State"].as_str().unwrap().to_owned())
            .or_default() += 1;
        let name = c["Names"][0]
            .as_str()
            .unwrap()
            .trim_start_matches('/')
            .to_owned();
        assert!(name.starts_with(&tag), "unexpected container {name}");
        match c["State"].as_str().unwrap() {
            "running" => {
                // Really running, with its output and its own address.
                let o = d.docker(&["exec", id, "true"]);
                assert_eq!(code(&o), 0, "{name} is running but exec fails: {}", err(&o));
                d.wait_inspect("{{.State.Running}}", id, "true", 5);
                let logs = d.docker_ok(&["logs", id]);
                assert_eq!(logs, name, "{name}'s log");
                ips.push(d.inspect("{{.NetworkSettings.IPAddress}}", id));
            }
            "created" => {
                // Whole: it starts and runs as asked.
                d.docker_ok(&["start", id]);
                let deadline = Instant::now() + Duration::from_secs(20);
                while d.docker_ok(&["logs", id]) != name && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                assert_eq!(d.docker_ok(&["logs", id]), name, "{name} started late");
                ips.push(d.inspect("{{.NetworkSettings.IPAddress}}", id));
            }
            "exited" => {
                // A --rm container is removed once the new daemon sees it ended.
                let auto_remove = d.inspect("{{.HostConfig.AutoRemove}}", id);
                assert_eq!(auto_remove, "false", "{name} exited and was kept");
            }
            other => panic!("{name} is {other}"),
        }
    }
    eprintln!("after the restart: {states:?}");
    let unique_ips: HashSet<&String> = ips.iter().collect();
    assert_eq!(
        unique_ips.len(),
        ips.len(),
        "addresses given twice: {ips:?}"
    );
    // Every address the default bridge holds belongs to a live container.
    let bridge = network_records(&d, "bridge").pop().unwrap();
    let owners: Vec<String> = bridge["allocated"]
        .as_object()
        .map(|m| m.values().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    for o in owners {
        assert!(
            listed.contains_key(&o),
            "address held for a gone container {o}"
        );
    }
}

/// An exec root short enough for a terminal's console socket: its path
/// (`EXEC_ROOT/containers/<64 hex>/console.sock`) must fit 107 bytes, which the harness's
/// `/tmp/be-<pid>-<n>/run` does not with a 5-digit pid (the long exec-root fix is issue 20's,
/// another branch's). Removed, with what is mounted under it, after the daemon that uses it.
struct ShortExecRoot(std::path::PathBuf);

impl ShortExecRoot {
    fn new() -> ShortExecRoot {
        ShortExecRoot(std::path::PathBuf::from("/run").join(unique("bl")))
    }

    /// A daemon with the busybox image, its exec root here.
    fn daemon(&self) -> Daemon {
        let mut d = Daemon::unstarted(&[]);
        d.exec_root = self.0.clone();
        d.spawn();
        d.import_busybox(IMAGE);
        d
    }
}

impl Drop for ShortExecRoot {
    fn drop(&mut self) {
        common::engine::unmount_under(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn attach_with_logs_and_no_stream_sends_the_log_then_eof() {
    let d = Daemon::start();
    streams_py(&d, &["attach-logs"], 60);
}

#[test]
fn detach_keys_end_attach_and_exec_sessions_and_leave_them_running() {
    let short = ShortExecRoot::new();
    let d = short.daemon();
    streams_py(&d, &["detach"], 60);
    // Through the CLIs on a terminal: the docker CLI's attach and exec say so and exit 1,
    // run ends quietly with 0; the berth CLI does the same.
    let name = unique("dk");
    d.docker_ok(&["run", "-dit", "--name", &name, IMAGE, "sh"]);
    let berth = common::berth();
    let berth = berth.to_str().unwrap();
    let docker = common::engine::DOCKER;
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "\\x18",
            "1",
            docker,
            "attach",
            "--detach-keys",
            "ctrl-x",
            &name,
        ],
        vec!["\\x10\\x11", "1", docker, "exec", "-it", &name, "sh"],
        vec![
            "\\x18",
            "1",
            berth,
            "attach",
            "--detach-keys",
            "ctrl-x",
            &name,
        ],
        vec!["\\x10\\x11", "1", berth, "attach", &name],
        vec![
            "\\x18",
            "1",
            berth,
            "exec",
            "-it",
            "--detach-keys",
            "ctrl-x",
            &name,
            "sh",
        ],
    ];
    for c in cases {
        let mut args = vec!["cli-detach"];
        args.extend(c);
        streams_py(&d, &args, 60);
        assert_eq!(d.inspect("{{.State.Running}}", &name), "true");
    }
    let run_name = unique("dkrun");
    streams_py(
        &d,
        &[
            "cli-detach",
            "\\x10\\x11",
            "0",
            berth,
            "run",
            "-it",
            "--name",
            &run_name,
            IMAGE,
            "sh",
        ],
        60,
    );
    assert_eq!(d.inspect("{{.State.Running}}", &run_name), "true");
    // config.json's detachKeys, as the docker CLI reads it.
    let config = d.dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.json"), r#"{"detachKeys": "ctrl-y"}"#).unwrap();
    streams_py(
        &d,
        &["cli-detach", "\\x19", "1", berth, "attach", &name],
        60,
    );
    streams_py(
        &d,
        &["cli-detach", "\\x19", "1", docker, "attach", &name],
        60,
    );
    assert_eq!(d.inspect("{{.State.Running}}", &name), "true");
}

#[test]
fn an_exec_made_with_a_tty_and_started_without_one_is_multiplexed() {
    let short = ShortExecRoot::new();
    let d = short.daemon();
    streams_py(&d, &["exec-framing"], 60);
}

#[test]
fn rm_force_during_a_start_and_exec_during_a_stop_leave_nothing_running() {
    let d = Daemon::start();
    // Starts and forced removals of the same containers at once: each container is either
    // gone or whole, and no monitor or process of a removed one is left.
    let tag = unique("rs");
    let ids: Vec<String> = (0..8)
        .map(|i| {
            d.docker_ok(&[
                "create",
                "--name",
                &format!("{tag}-{i}"),
                IMAGE,
                "sleep",
                "60",
            ])
        })
        .collect();
    let mut cmds = Vec::new();
    for id in &ids {
        cmds.push(d.docker_cmd(&["start", id]));
        cmds.push(d.docker_cmd(&["rm", "-f", id]));
    }
    let _ = burst(cmds, 120);
    let left = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
    for id in &ids {
        if left.lines().any(|l| l == id) {
            // The removal came first and failed nothing, or lost to nothing: still whole.
            let running = d.inspect("{{.State.Running}}", id);
            assert!(running == "true" || running == "false");
        } else {
            // Gone: no process in its cgroups, no monitor state.
            assert!(
                !d.exec_root.join("containers").join(id).exists(),
                "{id}'s monitor dir"
            );
            for dir in common::engine::cgroup_dirs(id) {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                assert!(procs.trim().is_empty(), "{id} removed but runs: {procs}");
            }
        }
    }
    // Execs during a stop: each either ran (exit 0) or was refused with an error; the
    // container ends stopped, and no exec is left running.
    let c = d.docker_ok(&[
        "run",
        "-d",
        IMAGE,
        "sh",
        "-c",
        "trap 'sleep 0.5; exit 0' TERM; sleep 60 & wait",
    ]);
    let mut cmds: Vec<Command> = (0..6)
        .map(|_| d.docker_cmd(&["exec", &c, "echo", "hi"]))
        .collect();
    cmds.push(d.docker_cmd(&["stop", &c]));
    let outputs = burst(cmds, 120);
    for o in &outputs[..6] {
        assert!(
            (code(o) == 0 && out(o) == "hi\n") || (code(o) != 0 && !err(o).is_empty()),
            "exec during stop: {} {:?} {:?}",
            code(o),
            out(o),
            err(o)
        );
    }
    assert_eq!(code(&outputs[6]), 0, "stop: {}", err(&outputs[6]));
    assert_eq!(d.inspect("{{.State.Running}}", &c), "false");
    let execs = std::fs::read_dir(d.exec_root.join("execs"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(execs, 0, "exec monitors left");
}

#[test]
fn concurrent_pulls_of_one_image_all_succeed_and_store_it_once() {
    let reg = common::registry::Registry::start(common::registry::Auth::None, None);
    let d = Daemon::start();
    let image = format!("{}/{}:1", reg.host, unique("pl"));
    d.commit_layer("echo two > /two", &image);
    d.docker_ok(&["push", &image]);
    d.docker_ok(&["rmi", &image]);
    let outputs = burst(
        (0..8).map(|_| d.docker_cmd(&["pull", &image])).collect(),
        120,
    );
    for o in &outputs {
        assert_eq!(code(o), 0, "pull: {}{}", out(o), err(o));
    }
    let ids = d.docker_ok(&["images", "-q", "--no-trunc", &image]);
    assert_eq!(ids.lines().count(), 1, "{ids}");
    assert_eq!(d.docker_ok(&["run", "--rm", &image, "cat", "/two"]), "two");
}

#[test]
fn concurrent_builds_of_one_dockerfile_share_the_cache_and_all_succeed() {
    let d = Daemon::start();
    let ctx = d.dir.join(unique("ctx"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("f"), "file\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo one > /one\nRUN echo two > /two\nCOPY f /f\n"),
    )
    .unwrap();
    let tag = unique("bt");
    let cmds = (0..4)
        .map(|i| {
            let mut c = d.docker_cmd(&["build", "-t", &format!("{tag}:{i}"), "."]);
            c.current_dir(&ctx).env("DOCKER_BUILDKIT", "0");
            c
        })
        .collect();
    for (i, o) in burst(cmds, 240).iter().enumerate() {
        assert_eq!(code(o), 0, "build {i}: {}{}", out(o), err(o));
        let image = format!("{tag}:{i}");
        assert_eq!(
            d.docker_ok(&["run", "--rm", &image, "cat", "/one", "/two", "/f"]),
            "one\ntwo\nfile"
        );
    }
    // What they left in the cache serves the next build whole.
    let mut c = d.docker_cmd(&["build", "-t", &format!("{tag}:again"), "."]);
    c.current_dir(&ctx).env("DOCKER_BUILDKIT", "0");
    let o = run_cmd(c, None, 120);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(out(&o).matches("Using cache").count(), 3, "{}", out(&o));
}
