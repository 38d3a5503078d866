//! The Engine API as its clients see it (issue 20's protocol half): swarm and plugin
//! answers, fields by API version, queries read as Go reads them, commit, the build API and
//! the image endpoints — through docker-py (`dockerpy/api_protocol.py`), the docker CLI and
//! docker-compose 1.29; bad requests answered with dockerd's status and words.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::engine::{err, out, run_cmd, run_dockerpy, Daemon, IMAGE};
use common::registry::{Auth, Registry};
use common::unique;
use serde_json::Value;

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn docker_py_sees_dockerd_answers() {
    let reg = Registry::start(Auth::None, None);
    let d = Daemon::start();
    run_dockerpy(
        &d,
        "api_protocol.py",
        &[IMAGE, &reg.host],
        "docker-py api protocol ok",
    );
}

/// The docker CLI's error line for a request the daemon refused.
fn refused(o: &Output) -> String {
    assert!(!o.status.success(), "succeeded: {}", out(o));
    err(o).trim().to_owned()
}

#[test]
fn docker_cli_swarm_plugin_and_network_commands_fail_as_on_dockerd() {
    let d = Daemon::start();
    assert_eq!(
        refused(&d.docker(&["swarm", "leave", "--force"])),
        "Error response from daemon: This node is not part of a swarm"
    );
    for args in [
        &["node", "ls"][..],
        &["service", "ls"],
        &["secret", "ls"],
        &["config", "ls"],
        &["swarm", "unlock-key"],
    ] {
        let e = refused(&d.docker(args));
        assert!(
            e.ends_with(&format!("Error response from daemon: {NOT_MANAGER}")),
            "docker {args:?}: {e}"
        );
    }
    let init = refused(&d.docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]));
    assert!(
        init.starts_with("Error response from daemon: swarm mode is not supported by berth"),
        "{init}"
    );
    // Nothing of a swarm was made: the daemon says so, and no swarm network exists.
    assert_eq!(
        d.docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "inactive"
    );
    assert_eq!(
        refused(&d.docker(&["network", "create", "--scope", "swarm", "sw"])),
        "Error response from daemon: cannot create a swarm scoped network when swarm is not active"
    );
    assert_eq!(
        refused(&d.docker(&["network", "create", "--ingress", "ing"])),
        "Error response from daemon: Ingress network can only be global scope network"
    );
    assert_eq!(
        d.docker_ok(&["network", "ls", "-q", "--filter", "name=sw"]),
        ""
    );
    // An engine with no plugins.
    assert_eq!(d.docker_ok(&["plugin", "ls", "--format", "{{.Name}}"]), "");
    let inspect = refused(&d.docker(&["plugin", "inspect", "absent"]));
    assert!(inspect.contains("plugin \"absent\" not found"), "{inspect}");
    let install = refused(&d.docker(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "vieux/sshfs",
    ]));
    assert!(
        install.contains("managed plugins are not supported by berth"),
        "{install}"
    );
    // stats --no-stream (the CLI asks for stream=false): one line per container, promptly.
    d.docker_ok(&["run", "-d", "--name", "st", IMAGE, "sleep", "60"]);
    let stats = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "st",
    ]);
    assert_eq!(stats, "st 1");
    d.docker_ok(&["rm", "-f", "st"]);
}

#[test]
fn compose_recreates_a_changed_service_keeping_its_image_volume() {
    let d = Daemon::start();
    let dir = d.dir.join("app");
    std::fs::create_dir_all(dir.join("web")).unwrap();
    std::fs::write(
        dir.join("web/Dockerfile"),
        format!("FROM {IMAGE}\nVOLUME /cache\nRUN echo built > /built\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        "version: \"2.4\"\nservices:\n  web:\n    build: ./web\n    environment:\n      - MODE=${MODE:-one}\n    command: sleep 300\n    stop_grace_period: 1s\n",
    )
    .unwrap();
    let p = unique("rc").replace('-', "");
    let compose = |mode: &str, args: &[&str]| -> String {
        let mut c = Command::new("docker-compose");
        c.env("DOCKER_HOST", d.host())
            .env("MODE", mode)
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .args(["--ansi", "never", "-p", &p])
            .args(args)
            .current_dir(&dir);
        let o = run_cmd(c, None, 180);
        assert!(
            o.status.success(),
            "docker-compose {args:?}: {}{}\n{}",
            out(&o),
            err(&o),
            d.daemon_log()
        );
        format!("{}{}", out(&o), err(&o))
    };
    compose("one", &["up", "-d"]);
    let web = format!("{p}_web_1");
    d.docker_ok(&["exec", &web, "sh", "-c", "echo kept > /cache/f"]);
    // The second up after a change reads the old image's ContainerConfig (KeyError
    // 'ContainerConfig' before) and carries the image's anonymous volume over.
    let up = compose("two", &["up", "-d"]);
    assert!(up.contains(&format!("Recreating {web}")), "{up}");
    assert_eq!(d.docker_ok(&["exec", &web, "cat", "/cache/f"]), "kept");
    assert_eq!(
        d.docker_ok(&["exec", &web, "sh", "-c", "echo $MODE"]),
        "two"
    );
    compose("two", &["down", "-v", "--rmi", "local"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
}

/// A raw request to the daemon: status and JSON body.
fn call(d: &Daemon, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
    let (status, text) = d.api(method, path, body);
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

#[test]
fn bad_requests_get_dockerd_status_and_message() {
    let d = Daemon::start();
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("GET", "/v1.23/version", None, 400, "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"),
        ("GET", "/v1.99/info", None, 400, "client version 1.99 is too new. Maximum supported API version is 1.47"),
        ("GET", "/v1.41/nosuchthing", None, 404, "page not found"),
        ("PUT", "/volumes/x", None, 404, "page not found"),
        ("DELETE", "/info", None, 404, "page not found"),
        ("POST", "/swarm/init", None, 400, "got EOF while reading request body"),
        ("POST", "/swarm/init", Some("{}"), 400, "invalid ListenAddr \"\": invalid empty address"),
        ("POST", "/swarm/join", Some("{\"ListenAddr\":\"0.0.0.0:2377\"}"), 400, "at least 1 RemoteAddr is required to join"),
        ("POST", "/swarm/update", Some("{}"), 400, "invalid swarm version '': strconv.ParseUint: parsing \"\": invalid syntax"),
        ("POST", "/swarm/update?version=1", Some("{}"), 503, NOT_MANAGER),
        ("POST", "/swarm/leave?force=1", None, 503, "This node is not part of a swarm"),
        ("POST", "/nodes/x/update?version=abc", Some("{}"), 400, "invalid node version 'abc': strconv.ParseUint: parsing \"abc\": invalid syntax"),
        ("POST", "/secrets/x/update", Some("{}"), 400, "invalid secret version"),
        ("GET", "/services/x/logs", None, 500, "Bad parameters: you must choose at least one stream"),
        ("GET", "/tasks/x/logs?stdout=1", None, 503, NOT_MANAGER),
        ("POST", "/configs/create", Some("{}"), 503, NOT_MANAGER),
        ("GET", "/plugins?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", None, 400, "Invalid filter 'bogus'"),
        ("GET", "/plugins?filters=%7B%22enabled%22%3A%5B%22maybe%22%5D%7D", None, 400, "Invalid filter 'enabled=[maybe]'"),
        ("GET", "/plugins/a/b:1/json", None, 404, "plugin \"a/b:1\" not found"),
        ("POST", "/plugins/x/enable?timeout=abc", None, 500, "strconv.Atoi: parsing \"abc\": invalid syntax"),
        ("POST", "/plugins/x/disable", None, 404, "plugin \"x\" not found"),
        ("DELETE", "/plugins/x", None, 404, "plugin \"x\" not found"),
        ("POST", "/plugins/pull?remote=x", None, 500, "failed to parse privileges: EOF"),
        ("GET", "/plugins/privileges?remote=", None, 500, "invalid reference format"),
        ("POST", "/networks/create", Some("{\"Name\":\"n\",\"Scope\":\"swarm\"}"), 403, "cannot create a swarm scoped network when swarm is not active"),
        ("POST", "/networks/create", Some("{\"Name\":\"n\",\"Ingress\":true}"), 403, "Ingress network can only be global scope network"),
        ("POST", "/networks/create", Some("{\"Name\":\"n\",\"Driver\":\"overlay\"}"), 500, NOT_MANAGER),
        ("GET", "/distribution/Bad%20Name/json", None, 400, "invalid reference format"),
    ];
    for (method, path, body, status, words) in cases {
        let (st, v) = call(&d, method, path, body.map(str::as_bytes));
        assert_eq!(st, *status, "{method} {path}: {v}");
        assert!(message(&v).contains(words), "{method} {path}: {v}");
    }
    let (_, v) = call(
        &d,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox:e2e","Cmd":["sleep","60"]}"#),
    );
    let id = v["Id"].as_str().unwrap().to_owned();
    call(&d, "POST", &format!("/containers/{id}/start"), None);
    let (st, v) = call(
        &d,
        "GET",
        &format!("/containers/{id}/stats?stream=1&one-shot=1"),
        None,
    );
    assert_eq!(
        (st, message(&v)),
        (400, "cannot have stream=true and one-shot=true")
    );
    let (st, v) = call(
        &d,
        "POST",
        &format!("/commit?container={id}&changes=RUN+true"),
        None,
    );
    assert_eq!(
        (st, message(&v)),
        (400, "RUN is not a valid change command")
    );
    // Nothing was made by any of them.
    assert_eq!(
        d.docker_ok(&["network", "ls", "-q", "--filter", "name=^n$"]),
        ""
    );
    assert_eq!(d.docker_ok(&["images", "-q"]).lines().count(), 1);
    call(&d, "DELETE", &format!("/containers/{id}?force=1"), None);
}

/// A build context: a tar of these files.
fn context(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn queries_take_go_s_first_value_booleans_and_every_repeated_value() {
    let d = Daemon::start();
    // docker-py sends `dockerfile` twice (its own name first): the first value is the one.
    let ctx = context(&[
        (
            "first.Dockerfile",
            &format!("FROM {IMAGE}\nLABEL which=first\n"),
        ),
        (
            "second.Dockerfile",
            &format!("FROM {IMAGE}\nLABEL which=second\n"),
        ),
    ]);
    let (st, text) = d.api(
        "POST",
        "/build?dockerfile=first.Dockerfile&dockerfile=second.Dockerfile&t=q-first%3A1&t=q-second%3A1&q=True",
        Some(&ctx),
    );
    assert_eq!(st, 200, "{text}");
    assert_eq!(
        d.docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.Labels.which}}",
            "q-second:1"
        ]),
        "first"
    );
    // q=True is quiet, as dockerd reads booleans: only the id is streamed.
    assert!(!text.contains("Step 1/2"), "{text}");
    // Repeated changes= all apply (commit and import alike).
    d.docker_ok(&["run", "--name", "qc", IMAGE, "true"]);
    let (st, v) = call(
        &d,
        "POST",
        "/commit?container=qc&repo=q-commit&changes=ENV+A%3D1&changes=ENV+B%3D2&changes=WORKDIR+%2Ftmp",
        None,
    );
    assert_eq!(st, 201, "{v}");
    let env = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Env}} {{.Config.WorkingDir}}",
        "q-commit",
    ]);
    assert_eq!(env, r#"["A=1","B=2"] /tmp"#);
    let tar = common::engine::busybox_tar();
    let (st, _) = d.api(
        "POST",
        "/images/create?fromSrc=-&repo=q-import&changes=ENV+C%3D3&changes=USER+nobody",
        Some(tar),
    );
    assert_eq!(st, 200);
    assert_eq!(
        d.docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Env}} {{.Config.User}}",
            "q-import"
        ]),
        r#"["C=3"] nobody"#
    );
    // Booleans as dockerd reads them: `all=False` is false, `all=True` and `all=1` true.
    let names = |q: &str| -> Vec<String> {
        let (_, v) = call(&d, "GET", &format!("/containers/json?{q}"), None);
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["Names"][0].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("all=True"), ["/qc"]);
    assert_eq!(names("all=1"), ["/qc"]);
    assert!(names("all=False").is_empty());
    assert!(names("all=no").is_empty());
    // The first of repeated values, as Go's FormValue: a filter given twice.
    assert_eq!(names("all=1&all=0"), ["/qc"]);
    d.docker_ok(&["rm", "qc"]);
}

#[test]
fn a_burst_of_commits_with_a_daemon_kill_leaves_only_whole_images() {
    const N: usize = 16;
    let mut d = Daemon::start();
    for i in 0..N {
        let name = format!("burst{i}");
        d.docker_ok(&[
            "run",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            &format!("echo {i} > /mark"),
        ]);
    }
    // All at once, with repeated changes; the daemon is SIGKILLed once the first is there.
    let socket = d.socket.clone();
    let commits: Vec<_> = (0..N)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let path = format!(
                    "/commit?container=burst{i}&repo=burst&tag={i}&changes=ENV+I%3D{i}&changes=LABEL+n%3D{i}"
                );
                common::engine::try_api_on(&socket, "POST", &path, None).ok()
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while d.docker_ok(&["images", "-q", "burst"]).is_empty() && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    d.kill_daemon();
    let answered: Vec<usize> = commits
        .into_iter()
        .map(|h| h.join().ok().flatten())
        .enumerate()
        .filter(|(_, answer)| matches!(answer, Some((201, _))))
        .map(|(i, _)| i)
        .collect();
    d.spawn();
    // Every commit that was answered is there; every image there is whole: its layer, its
    // config (both changes), its parent.
    let tags = d.docker_ok(&["images", "--format", "{{.Tag}}", "burst"]);
    let present: Vec<usize> = tags.lines().filter_map(|t| t.parse().ok()).collect();
    println!(
        "{} commits answered before the kill, {} images after it",
        answered.len(),
        present.len()
    );
    for i in &answered {
        assert!(
            present.contains(i),
            "commit {i} was answered but is gone: {tags}"
        );
    }
    let base = d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", IMAGE]);
    for i in &present {
        let image = format!("burst:{i}");
        let out = d.docker_ok(&["run", "--rm", &image, "sh", "-c", "cat /mark; echo $I"]);
        assert_eq!(out, format!("{i}\n{i}"), "{image}");
        assert_eq!(
            d.docker_ok(&[
                "image",
                "inspect",
                "-f",
                "{{.Config.Labels.n}} {{.Parent}}",
                &image
            ]),
            format!("{i} {base}")
        );
    }
    // Nothing half-made is left in the store's scratch space.
    let scratch: Vec<_> = std::fs::read_dir(d.root.join("tmp"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(scratch.is_empty(), "{scratch:?}");
}
