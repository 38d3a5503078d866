//! `berth compose` end to end against a private daemon: a multi-service application (a server,
//! a client that reaches it by service name, a service waiting for another's healthcheck, a
//! named volume that keeps data across `down`/`up`, a file secret, a memory limit, replicas)
//! checked from inside its containers and from the host's loopback; a second `up` that changes
//! nothing; a changed service recreated alone; `down -v` leaving nothing. Every bad input the
//! issue lists is refused before anything is created. Debian's docker-compose (v1) runs the
//! same file against berth's daemon.
//!
//! All traffic stays between the host's loopback and the containers these tests make.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::engine::{err, out, run_cmd, run_for, Daemon};
use common::registry::{Auth, Registry, PASSWORD, USER};
use common::unique;
use serde_json::Value;

/// The application: `db` marks itself ready in the `data` volume (its healthcheck), `web`
/// waits for it to be healthy and serves its greeting and how many times `db` started;
/// `client` reaches `web` by its service name; `worker` has two replicas. Each runs under an
/// init, so that a stop's SIGTERM ends it at once (a shell or sleep as pid 1 ignores it).
const APP: &str = r#"
services:
  db:
    image: busybox:e2e
    init: true
    command:
      - sh
      - -c
      - |
        echo started >> /data/starts
        touch /data/ready
        exec sleep 100000
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD-SHELL", "test -f /data/ready"]
      interval: 1s
      retries: 30
  web:
    image: busybox:e2e
    init: true
    depends_on:
      db:
        condition: service_healthy
    environment:
      GREETING: ${GREETING:?set GREETING in .env}
    ports:
      - "127.0.0.1:${WEB_PORT}:8080"
    volumes:
      - data:/data:ro
      - /cache
    secrets:
      - token
    deploy:
      resources:
        limits:
          memory: 64m
    command:
      - sh
      - -c
      - |
        while true; do
          printf 'HTTP/1.0 200 OK\r\n\r\n%s starts=%s\n' "$$GREETING" "$$(wc -l < /data/starts)" | nc -l -p 8080
        done
  client:
    image: busybox:e2e
    init: true
    depends_on: [web]
    command:
      - sh
      - -c
      - |
        for i in $$(seq 1 50); do
          printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 web 8080 && break
          sleep 0.2
        done
        exec sleep 100000
  worker:
    image: busybox:e2e
    init: true
    command: ["sleep", "100000"]
    user: "65534"
    working_dir: /tmp
    cpus: 0.5
    restart: unless-stopped
    deploy:
      replicas: 2
volumes:
  data: {}
secrets:
  token:
    file: ./token.txt
"#;

/// A second file berth compose merges over the first (`-f compose.yaml -f extra.yaml`): a
/// config given inline, written into web before it starts, and a label.
const EXTRA: &str = r#"
services:
  web:
    configs:
      - source: motd
        target: /etc/motd
    labels:
      tier: front
configs:
  motd:
    content: "welcome to ${GREETING}"
"#;

/// A project directory with the application, its `.env` and secret.
struct App {
    dir: PathBuf,
    name: String,
    port: u16,
}

impl App {
    fn new(d: &Daemon) -> App {
        let name = unique("cp").replace('-', "_");
        let dir = d.dir.join("app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), APP).unwrap();
        std::fs::write(dir.join("extra.yaml"), EXTRA).unwrap();
        std::fs::write(dir.join("token.txt"), "s3cret-token\n").unwrap();
        let port = free_port();
        let app = App { dir, name, port };
        app.greet("hello");
        app
    }

    fn greet(&self, greeting: &str) {
        std::fs::write(
            self.dir.join(".env"),
            format!("GREETING={greeting}\nWEB_PORT={}\n", self.port),
        )
        .unwrap();
    }

    fn compose(&self, d: &Daemon, args: &[&str]) -> Output {
        let mut c = d.berth_cmd(&[
            "compose",
            "-f",
            "compose.yaml",
            "-f",
            "extra.yaml",
            "-p",
            &self.name,
        ]);
        c.args(args).current_dir(&self.dir);
        run(c)
    }

    fn compose_ok(&self, d: &Daemon, args: &[&str]) -> Output {
        let o = self.compose(d, args);
        assert!(
            o.status.success(),
            "compose {args:?} failed: {}{}",
            out(&o),
            err(&o)
        );
        o
    }

    /// `GET /` on the published port from the host's loopback (the server answers one
    /// connection at a time, so a refused or empty try is retried).
    fn get(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.contains("200 OK") {
                    return body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no answer on 127.0.0.1:{}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn run(mut c: Command) -> Output {
    c.stdin(std::process::Stdio::null());
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The project's containers, networks and volumes on the daemon, found by compose's label.
fn leftovers(d: &Daemon, project: &str) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let f = format!("%7B%22label%22%3A%5B%22com.docker.compose.project%3D{project}%22%5D%7D");
    let (_, c) = d.api_json("GET", &format!("/containers/json?all=1&filters={f}"), None);
    let (_, n) = d.api_json("GET", &format!("/networks?filters={f}"), None);
    let (_, v) = d.api_json("GET", &format!("/volumes?filters={f}"), None);
    (
        c.as_array().cloned().unwrap_or_default(),
        n.as_array().cloned().unwrap_or_default(),
        v["Volumes"].as_array().cloned().unwrap_or_default(),
    )
}

fn ids(app: &App, d: &Daemon) -> Vec<String> {
    let o = app.compose_ok(d, &["ps", "-a", "--format", "json"]);
    let mut v: Vec<String> = out(&o)
        .lines()
        .map(|l| {
            let j: Value = serde_json::from_str(l).unwrap();
            format!(
                "{}={}",
                j["Name"].as_str().unwrap(),
                j["ID"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

fn id_of(list: &[String], name: &str) -> String {
    list.iter()
        .find(|x| x.starts_with(&format!("{name}=")))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn compose_application_up_idempotent_recreate_down() {
    let d = Daemon::start();
    let app = App::new(&d);
    let p = &app.name;

    // Up, waiting for every service (db's healthcheck first, as web depends on it).
    let o = app.compose_ok(&d, &["up", "-d", "--wait"]);
    let progress = err(&o);
    assert!(
        progress.contains(&format!("Network {p}_default  Created")),
        "{progress}"
    );
    assert!(
        progress.contains(&format!("Container {p}-db-1  Healthy")),
        "{progress}"
    );

    // ps: docker compose's columns; db is healthy; two workers.
    let ps = out(&app.compose_ok(&d, &["ps"]));
    assert!(ps.starts_with("NAME"), "{ps}");
    for col in ["IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"] {
        assert!(ps.lines().next().unwrap().contains(col), "{ps}");
    }
    assert!(ps.contains("(healthy)"), "{ps}");
    assert!(
        ps.contains(&format!("127.0.0.1:{}->8080/tcp", app.port)),
        "{ps}"
    );
    for n in ["db-1", "web-1", "client-1", "worker-1", "worker-2"] {
        assert!(ps.contains(&format!("{p}-{n}")), "{n} missing: {ps}");
    }

    // docker compose's labels on the containers.
    let (_, web) = d.api_json("GET", &format!("/containers/{p}-web-1/json"), None);
    let labels = &web["Config"]["Labels"];
    assert_eq!(labels["com.docker.compose.project"], p.as_str());
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(web["State"]["Health"].is_null());
    let (_, db) = d.api_json("GET", &format!("/containers/{p}-db-1/json"), None);
    assert_eq!(db["State"]["Health"]["Status"], "healthy");

    // From the host: the published port; the greeting came from .env.
    assert!(app.get().contains("hello starts=1"));
    // From inside: the client reached web by its service name.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let logs = out(&app.compose_ok(&d, &["logs", "--no-color", "client"]));
        if logs.contains("hello starts=1") {
            assert!(logs.contains("client-1  | "), "{logs}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "client never reached web: {logs}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The secret file, the memory limit, the environment, from inside web.
    let o = app.compose_ok(&d, &["exec", "-T", "web", "cat", "/run/secrets/token"]);
    assert_eq!(out(&o).trim(), "s3cret-token");
    let o = app.compose_ok(&d, &["exec", "-T", "web", "sh", "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(out(&o).trim(), "67108864");
    let o = app.compose(&d, &["exec", "-T", "web", "sh", "-c", "echo x > /data/x"]);
    assert!(!o.status.success(), "the read-only volume was written");
    // user, working_dir, the short cpus, restart.
    let o = app.compose_ok(
        &d,
        &[
            "exec",
            "-T",
            "--index",
            "2",
            "worker",
            "sh",
            "-c",
            "id -u; pwd",
        ],
    );
    assert_eq!(out(&o), "65534\n/tmp\n");
    let (_, w) = d.api_json("GET", &format!("/containers/{p}-worker-2/json"), None);
    assert_eq!(w["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(w["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
    // The second file's config (its content interpolated) and label.
    let o = app.compose_ok(&d, &["exec", "-T", "web", "cat", "/etc/motd"]);
    assert_eq!(out(&o), "welcome to hello");
    assert_eq!(labels["tier"], "front");

    // A one-off container, removed after.
    let o = app.compose_ok(&d, &["run", "--rm", "-T", "worker", "echo", "one-off"]);
    assert_eq!(out(&o).trim(), "one-off");
    // config: the resolved model; top and images name the containers.
    let cfg = out(&app.compose_ok(&d, &["config"]));
    assert!(cfg.contains("GREETING: hello"), "{cfg}");
    assert!(cfg.contains(&format!("name: {p}")), "{cfg}");
    let top = out(&app.compose_ok(&d, &["top", "web"]));
    assert!(
        top.contains(&format!("{p}-web-1")) && top.contains("nc -l -p 8080"),
        "{top}"
    );
    let images = out(&app.compose_ok(&d, &["images"]));
    assert!(
        images.contains("busybox") && images.contains(&format!("{p}-db-1")),
        "{images}"
    );

    // A second up changes nothing.
    let before = ids(&app, &d);
    assert_eq!(before.len(), 5, "{before:?}");
    let o = app.compose_ok(&d, &["up", "-d"]);
    assert!(
        !err(&o).contains("Recreate") && !err(&o).contains("Creating"),
        "{}",
        err(&o)
    );
    assert_eq!(ids(&app, &d), before);

    // A changed service is recreated alone, its anonymous volume kept.
    app.compose_ok(
        &d,
        &["exec", "-T", "web", "sh", "-c", "echo kept > /cache/mark"],
    );
    app.greet("changed");
    app.compose_ok(&d, &["up", "-d", "--wait"]);
    let after = ids(&app, &d);
    for n in ["db-1", "client-1", "worker-1", "worker-2"] {
        let name = format!("{p}-{n}");
        assert_eq!(
            id_of(&after, &name),
            id_of(&before, &name),
            "{n} was recreated"
        );
    }
    let web = format!("{p}-web-1");
    assert_ne!(
        id_of(&after, &web),
        id_of(&before, &web),
        "web was not recreated"
    );
    assert!(app.get().contains("changed starts=1"));
    let o = app.compose_ok(&d, &["exec", "-T", "web", "cat", "/cache/mark"]);
    assert_eq!(out(&o), "kept\n");

    // --force-recreate recreates every container.
    let before = ids(&app, &d);
    app.compose_ok(&d, &["up", "-d", "--force-recreate", "worker", "client"]);
    let after = ids(&app, &d);
    for n in ["client-1", "worker-1", "worker-2"] {
        let name = format!("{p}-{n}");
        assert_ne!(id_of(&after, &name), id_of(&before, &name), "{n} was kept");
    }

    // --scale down to one worker.
    app.compose_ok(&d, &["up", "-d", "--scale", "worker=1"]);
    let ps = out(&app.compose_ok(&d, &["ps", "-a"]));
    assert!(
        ps.contains(&format!("{p}-worker-1")) && !ps.contains(&format!("{p}-worker-2")),
        "{ps}"
    );
    // The docker CLI finds a service's containers by compose's labels (all must match).
    let found = d.docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={p}"),
        "--filter",
        "label=com.docker.compose.service=db",
    ]);
    assert_eq!(found.lines().count(), 1, "{found}");

    // stop, start, restart, rm.
    app.compose_ok(&d, &["stop", "worker"]);
    let ps = out(&app.compose_ok(&d, &["ps", "-a", "worker"]));
    assert!(ps.contains("Exited"), "{ps}");
    app.compose_ok(&d, &["start", "worker"]);
    app.compose_ok(&d, &["restart", "worker"]);
    let ps = out(&app.compose_ok(&d, &["ps", "worker"]));
    assert!(ps.contains("Up"), "{ps}");
    app.compose_ok(&d, &["rm", "-f", "-s", "worker"]);
    assert!(!out(&app.compose_ok(&d, &["ps", "-a"])).contains("worker"));

    // A service gone from the file is an orphan: kept with a warning, removed on request.
    app.compose_ok(&d, &["up", "-d", "worker"]);
    let without_worker = APP.split("  worker:").next().unwrap().to_string()
        + "volumes:\n  data: {}\nsecrets:\n  token:\n    file: ./token.txt\n";
    std::fs::write(app.dir.join("compose.yaml"), without_worker).unwrap();
    let o = app.compose_ok(&d, &["up", "-d"]);
    assert!(err(&o).contains("Found orphan containers"), "{}", err(&o));
    app.compose_ok(&d, &["up", "-d", "--remove-orphans"]);
    assert!(!out(&app.compose_ok(&d, &["ps", "-a"])).contains("worker"));

    // down keeps the named volume (db's second start is counted in it) and, as docker
    // compose's, the anonymous ones.
    let (_, web) = d.api_json("GET", &format!("/containers/{p}-web-1/json"), None);
    let cache = web["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/cache")
        .unwrap()["Name"]
        .clone();
    app.compose_ok(&d, &["down"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty(), "{c:?} {n:?}");
    assert_eq!(v.len(), 1, "{v:?}");
    app.compose_ok(&d, &["up", "-d", "--wait"]);
    assert!(app.get().contains("changed starts=2"));

    // web recreated alone (--no-deps): its anonymous volume is mounted again by name, and
    // still goes with `down -v`.
    let before = ids(&app, &d);
    app.compose_ok(&d, &["up", "-d", "--force-recreate", "--no-deps", "web"]);
    let after = ids(&app, &d);
    let (web, db) = (format!("{p}-web-1"), format!("{p}-db-1"));
    assert_ne!(id_of(&after, &web), id_of(&before, &web));
    assert_eq!(id_of(&after, &db), id_of(&before, &db));

    // down -v leaves nothing; --rmi all takes the services' image too.
    app.compose_ok(&d, &["down", "-v", "--rmi", "all"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(
        c.is_empty() && n.is_empty() && v.is_empty(),
        "{c:?} {n:?} {v:?}"
    );
    let (status, _) = d.api_json("GET", "/images/busybox:e2e/json", None);
    assert_eq!(status, 404);
    // Anonymous volumes went with their containers (web's /cache, carried over its recreate,
    // included); only the one the plain `down` left remains.
    let (_, vols) = d.api_json("GET", "/volumes", None);
    let names: Vec<&Value> = vols["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["Name"])
        .collect();
    assert_eq!(names, [&cache], "{vols}");
}

#[test]
fn compose_attached_up_streams_prefixed_logs() {
    let d = Daemon::start();
    let dir = d.dir.join("attached");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        "services:\n  hello:\n    image: busybox:e2e\n    command: [\"sh\", \"-c\", \"echo hi-from-attached\"]\n",
    )
    .unwrap();
    let name = unique("at").replace('-', "_");
    let mut c = d.berth_cmd(&["compose", "--ansi", "always", "-p", &name, "up"]);
    c.current_dir(&dir);
    let o = run(c);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(text.contains("Attaching to hello-1"), "{text}");
    // docker compose's first colour (cyan) around the padded prefix.
    assert!(
        text.contains("\u{1b}[36mhello-1  | \u{1b}[0mhi-from-attached"),
        "{text:?}"
    );
    assert!(text.contains("hello-1 exited with code 0"), "{text}");

    // Ctrl-C stops what an attached up started.
    std::fs::write(
        dir.join("docker-compose.yml"),
        "services:\n  hello:\n    image: busybox:e2e\n    init: true\n    command: [\"sleep\", \"1000\"]\n",
    )
    .unwrap();
    let mut c = d.berth_cmd(&["compose", "-p", &name, "up"]);
    c.current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = d.api_json("GET", &format!("/containers/{name}-hello-1/json"), None);
        if v["State"]["Running"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "hello never ran: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(err(&o).contains("Gracefully stopping..."), "{}", err(&o));
    let (_, v) = d.api_json("GET", &format!("/containers/{name}-hello-1/json"), None);
    assert_eq!(v["State"]["Status"], "exited", "{v}");

    let mut c = d.berth_cmd(&["compose", "-p", &name, "down"]);
    c.current_dir(&dir);
    assert!(run(c).status.success());
    let (c, n, v) = leftovers(&d, &name);
    assert!(c.is_empty() && n.is_empty() && v.is_empty());
}

#[test]
fn compose_bad_input_is_refused_before_anything_is_created() {
    let d = Daemon::start();
    let dir = d.dir.join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let ok_service =
        "  ok:\n    image: busybox:e2e\n    command: [\"sleep\", \"1000\"]\nvolumes:\n  v: {}\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("services:\n  web:\n    image: busybox:e2e\n   ports: [80]\n{ok_service}"),
            "yaml: line 4, column 4",
        ),
        (
            format!("services:\n  web:\n    image: busybox:e2e\n    comand: [true]\n{ok_service}"),
            "services.web additional properties 'comand' not allowed",
        ),
        (
            format!("services:\n  a:\n    image: busybox:e2e\n    depends_on: [b]\n  b:\n    image: busybox:e2e\n    depends_on: [a]\n{ok_service}"),
            "dependency cycle detected: a -> b -> a",
        ),
        (
            format!("services:\n  web:\n    image: busybox:${{BERTH_TEST_UNSET_TAG:?the tag is required}}\n{ok_service}"),
            "required variable BERTH_TEST_UNSET_TAG is missing a value: the tag is required",
        ),
        (
            format!("services:\n  a:\n    image: busybox:e2e\n    ports: [\"18080:80\"]\n  b:\n    image: busybox:e2e\n    ports: [\"18080:81\"]\n{ok_service}"),
            "port clash: services \"a\" and \"b\" both publish host port 0.0.0.0:18080/tcp",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = dir.join(format!("bad{i}.yaml"));
        std::fs::write(&file, text).unwrap();
        let project = format!("bad{i}");
        let o = d.berth(&[
            "compose",
            "-f",
            file.to_str().unwrap(),
            "-p",
            &project,
            "up",
            "-d",
        ]);
        assert!(!o.status.success(), "case {i} succeeded");
        assert!(
            err(&o).contains(want),
            "case {i}: want {want:?}, got {}",
            err(&o)
        );
        assert!(err(&o).lines().count() <= 2, "case {i}: {}", err(&o));
        let (c, n, v) = leftovers(&d, &project);
        assert!(
            c.is_empty() && n.is_empty() && v.is_empty(),
            "case {i} left {c:?} {n:?} {v:?}"
        );
    }
    let (_, all) = d.api_json("GET", "/containers/json?all=1", None);
    assert_eq!(all, serde_json::json!([]));
}

#[test]
fn docker_compose_v1_runs_the_same_file_against_berth() {
    let d = Daemon::start();
    let app = App::new(&d);
    let p = app.name.replace('_', "");
    let compose = |args: &[&str]| -> Output {
        let mut c = Command::new("docker-compose");
        c.env("DOCKER_HOST", d.host())
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .args(["--ansi", "never", "-p", &p])
            .args(args)
            .current_dir(&app.dir);
        run(c)
    };
    let ok = |args: &[&str]| -> String {
        let o = compose(args);
        assert!(
            o.status.success(),
            "docker-compose {args:?}: {}{}",
            out(&o),
            err(&o)
        );
        out(&o)
    };
    ok(&["up", "-d"]);
    // A second up finds everything as it wants it (the network's options included).
    ok(&["up", "-d"]);
    let ps = ok(&["ps"]);
    assert!(
        ps.contains(&format!("{p}_web_1")) && ps.contains("Up"),
        "{ps}"
    );
    assert!(app.get().contains("hello starts=1"));
    // berth compose sees docker-compose's project through the labels.
    let mut c = d.berth_cmd(&["compose", "-p", &p, "ps", "--services"]);
    c.current_dir(std::env::temp_dir());
    let services = out(&run(c));
    assert!(
        services.contains("web") && services.contains("db"),
        "{services}"
    );
    ok(&["down", "-v"]);
    let (c, n, v) = leftovers(&d, &p);
    assert!(
        c.is_empty() && n.is_empty() && v.is_empty(),
        "{c:?} {n:?} {v:?}"
    );
}

/// A project whose `app` is built `FROM` a private registry's image and pushed there, and
/// whose `side` is pulled from it.
const REGISTRY_APP: &str = r#"
services:
  app:
    build:
      context: ./app
      args:
        BASE: ${REG}/base:1
    image: ${REG}/app:1
    init: true
    command: ["sh", "-c", "exec sleep 100000"]
  side:
    image: ${REG}/side:1
    init: true
    command: ["sh", "-c", "exec sleep 100000"]
"#;

#[test]
fn compose_build_pull_push_and_up_against_a_private_registry() {
    let reg = Registry::start(Auth::Htpasswd, None);
    let d = Daemon::start();
    let r = &reg.host;
    // berth login: the credentials the compose verbs send (X-Registry-Auth for pull and
    // push, X-Registry-Config for the build's base image).
    let mut login = d.berth_cmd(&["login", r, "-u", USER, "--password-stdin"]);
    login.current_dir(&d.dir);
    let o = run_cmd(login, Some(PASSWORD.as_bytes()), 60);
    assert!(o.status.success(), "{}", err(&o));
    for (image, shell) in [
        ("base", "echo base-v1 > /base.txt"),
        ("side", "echo side-v1 > /side.txt"),
    ] {
        let name = format!("{r}/{image}:1");
        d.commit_layer(shell, &name);
        d.docker_ok(&["push", &name]);
        d.docker_ok(&["rmi", &name]);
    }
    let dir = d.dir.join("regapp");
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("compose.yaml"), REGISTRY_APP).unwrap();
    std::fs::write(dir.join(".env"), format!("REG={r}\n")).unwrap();
    std::fs::write(
        dir.join("app/Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY app.txt /\n",
    )
    .unwrap();
    std::fs::write(dir.join("app/app.txt"), "app-v1\n").unwrap();
    let project = unique("reg").replace('-', "_");
    let compose = |args: &[&str]| -> Output {
        let mut c = d.berth_cmd(&["compose", "-p", &project]);
        c.args(args).current_dir(&dir);
        run_cmd(c, None, 120)
    };
    let ok = |args: &[&str]| -> String {
        let o = compose(args);
        assert!(
            o.status.success(),
            "compose {args:?}: {}{}",
            out(&o),
            err(&o)
        );
        format!("{}{}", out(&o), err(&o))
    };
    let inside = |service: &str, file: &str| -> String {
        d.docker_ok(&["exec", &format!("{project}-{service}-1"), "cat", file])
    };

    // pull: side comes from the registry; app is built here, so its missing image is a
    // warning, as with docker compose.
    let o = ok(&["pull"]);
    assert!(o.contains("must be built from source"), "{o}");
    d.docker_ok(&["image", "inspect", &format!("{r}/side:1")]);
    // build: the private base is pulled with the stored login.
    let o = ok(&["build"]);
    assert!(
        o.contains(&format!("Status: Downloaded newer image for {r}/base:1")),
        "{o}"
    );
    // push: app goes to the registry; pulled back after it is removed here.
    let app = format!("{r}/app:1");
    ok(&["push"]);
    d.docker_ok(&["rmi", &app]);
    d.docker_ok(&["pull", &app]);
    ok(&["up", "-d"]);
    assert_eq!(inside("app", "/app.txt"), "app-v1");
    assert_eq!(inside("app", "/base.txt"), "base-v1");
    assert_eq!(inside("side", "/side.txt"), "side-v1");

    // up --build: the changed context is built again and app alone recreated.
    let side_id = d.inspect("{{.Id}}", &format!("{project}-side-1"));
    std::fs::write(dir.join("app/app.txt"), "app-v2\n").unwrap();
    ok(&["up", "-d", "--build"]);
    assert_eq!(inside("app", "/app.txt"), "app-v2");
    assert_eq!(d.inspect("{{.Id}}", &format!("{project}-side-1")), side_id);
    ok(&["push", "app"]);

    // The registry's side moves on; a plain up keeps the local one, --pull always takes it.
    let side = format!("{r}/side:1");
    let side_v1 = d.inspect("{{.Id}}", &side);
    d.commit_layer("echo side-v2 > /side.txt", &side);
    d.docker_ok(&["push", &side]);
    d.docker_ok(&["tag", &side_v1, &side]);
    ok(&["up", "-d"]);
    assert_eq!(inside("side", "/side.txt"), "side-v1");
    ok(&["up", "-d", "--pull", "always"]);
    assert_eq!(inside("side", "/side.txt"), "side-v2");
    assert_eq!(inside("app", "/app.txt"), "app-v2");

    // Debian's docker-compose (v1) builds through docker-py's build, which sends the
    // logins of the same config file.
    d.docker_ok(&["rmi", "-f", &format!("{r}/base:1")]);
    let v1 = project.replace('_', "");
    let mut c = Command::new("docker-compose");
    c.env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .args(["--ansi", "never", "-p", &v1, "build", "app"])
        .current_dir(&dir);
    let o = run_cmd(c, None, 120);
    assert!(
        o.status.success(),
        "docker-compose build: {}{}",
        out(&o),
        err(&o)
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", &app, "cat", "/base.txt"]),
        "base-v1"
    );

    ok(&["down"]);
    let (c, n, _) = leftovers(&d, &project);
    assert!(c.is_empty() && n.is_empty(), "{c:?} {n:?}");
}

/// A project directory `sub` under the daemon's with `compose.yaml` holding `yaml`, and a
/// unique project name for it.
fn small_project(d: &Daemon, sub: &str, yaml: &str) -> (PathBuf, String) {
    let dir = d.dir.join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    (dir, unique(sub).replace('-', "_"))
}

/// `berth compose -p NAME ARGS…` in `dir`.
fn compose_in(d: &Daemon, dir: &PathBuf, name: &str, args: &[&str]) -> Output {
    let mut c = d.berth_cmd(&["compose", "-p", name]);
    c.args(args).current_dir(dir);
    run(c)
}

fn compose_in_ok(d: &Daemon, dir: &PathBuf, name: &str, args: &[&str]) -> Output {
    let o = compose_in(d, dir, name, args);
    assert!(
        o.status.success(),
        "compose {args:?} failed: {}{}",
        out(&o),
        err(&o)
    );
    o
}

/// A compose verb that must fail: its exit status is non-zero and stderr says `want`.
fn compose_in_fails(d: &Daemon, dir: &PathBuf, name: &str, args: &[&str], want: &str) {
    let o = compose_in(d, dir, name, args);
    assert!(
        !o.status.success(),
        "compose {args:?} succeeded: {}",
        out(&o)
    );
    assert!(
        err(&o).contains(want),
        "compose {args:?}: want {want:?} in {}",
        err(&o)
    );
}

fn state_of(d: &Daemon, container: &str) -> Value {
    let (_, v) = d.api_json("GET", &format!("/containers/{container}/json"), None);
    v["State"].clone()
}

/// Waits (bounded) until `compose logs SERVICE` shows `want`.
fn wait_log(d: &Daemon, dir: &PathBuf, name: &str, service: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let o = compose_in_ok(d, dir, name, &["logs", "--no-log-prefix", service]);
        if out(&o).contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{service} never logged {want:?}: {}",
            out(&o)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `trapper` logs each USR1 it receives (a shell as pid 1 runs a trap it set: the kernel drops
/// only the signals pid 1 leaves at their default); `sleeper` just runs.
const SIGNALS: &str = r#"
services:
  trapper:
    image: busybox:e2e
    command:
      - sh
      - -c
      - |
        trap 'echo got-USR1' USR1
        echo ready
        while true; do sleep 0.1; done
  sleeper:
    image: busybox:e2e
    init: true
    command: ["sleep", "100000"]
"#;

#[test]
fn compose_kill_pause_unpause_reach_the_containers() {
    let d = Daemon::start();
    let (dir, p) = small_project(&d, "sig", SIGNALS);
    let p = p.as_str();
    compose_in_ok(&d, &dir, p, &["up", "-d"]);
    wait_log(&d, &dir, p, "trapper", "ready");

    // A signal by name reaches the named service's process, and only that service.
    let o = compose_in_ok(&d, &dir, p, &["kill", "-s", "USR1", "trapper"]);
    let progress = err(&o);
    assert!(
        progress.contains(&format!(" Container {p}-trapper-1  Killing"))
            && progress.contains(&format!(" Container {p}-trapper-1  Killed")),
        "{progress}"
    );
    assert!(!progress.contains("sleeper"), "{progress}");
    wait_log(&d, &dir, p, "trapper", "got-USR1");
    assert_eq!(state_of(&d, &format!("{p}-trapper-1"))["Running"], true);
    assert_eq!(state_of(&d, &format!("{p}-sleeper-1"))["Running"], true);

    // Bad input: a signal the kernel has not, a service the project has not.
    compose_in_fails(
        &d,
        &dir,
        p,
        &["kill", "-s", "NOSUCHSIG", "trapper"],
        "Invalid signal: NOSUCHSIG",
    );
    assert_eq!(state_of(&d, &format!("{p}-trapper-1"))["Running"], true);
    compose_in_fails(&d, &dir, p, &["kill", "nope"], "no such service: nope");
    compose_in_fails(&d, &dir, p, &["pause", "nope"], "no such service: nope");
    compose_in_fails(&d, &dir, p, &["unpause", "nope"], "no such service: nope");

    // pause freezes every service's container; unpause thaws the named one alone.
    let o = compose_in_ok(&d, &dir, p, &["pause"]);
    for s in ["trapper", "sleeper"] {
        assert!(
            err(&o).contains(&format!(" Container {p}-{s}-1  Paused")),
            "{}",
            err(&o)
        );
        assert_eq!(state_of(&d, &format!("{p}-{s}-1"))["Status"], "paused");
    }
    let o = compose_in_ok(&d, &dir, p, &["unpause", "sleeper"]);
    assert!(
        err(&o).contains(&format!(" Container {p}-sleeper-1  Unpaused")),
        "{}",
        err(&o)
    );
    assert!(!err(&o).contains("trapper"), "{}", err(&o));
    assert_eq!(state_of(&d, &format!("{p}-sleeper-1"))["Status"], "running");
    assert_eq!(state_of(&d, &format!("{p}-trapper-1"))["Status"], "paused");
    compose_in_ok(&d, &dir, p, &["unpause"]);
    assert_eq!(state_of(&d, &format!("{p}-trapper-1"))["Status"], "running");

    // A kill without -s is SIGKILL, for every service; then nothing is left to kill.
    let o = compose_in_ok(&d, &dir, p, &["kill"]);
    for s in ["trapper", "sleeper"] {
        let c = format!("{p}-{s}-1");
        assert!(
            err(&o).contains(&format!(" Container {c}  Killed")),
            "{}",
            err(&o)
        );
        d.wait_inspect(
            "{{.State.Status}} {{.State.ExitCode}}",
            &c,
            "exited 137",
            15,
        );
    }
    let o = compose_in_ok(&d, &dir, p, &["kill"]);
    assert!(err(&o).contains("no container to kill"), "{}", err(&o));

    compose_in_ok(&d, &dir, p, &["down"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty() && v.is_empty());
}

/// `web` publishes 8080 on an ephemeral port of every address and 7000/udp on one of
/// loopback, and only exposes 5000; `done` exits at once.
const PORTS: &str = r#"
services:
  web:
    image: busybox:e2e
    init: true
    command: ["sleep", "100000"]
    ports:
      - "8080"
      - "127.0.0.1::7000/udp"
    expose:
      - "5000"
  done:
    image: busybox:e2e
    command: ["true"]
"#;

#[test]
fn compose_port_ls_and_version_answer_as_docker_compose() {
    let d = Daemon::start();
    let (dir, p) = small_project(&d, "prt", PORTS);
    let p = p.as_str();
    compose_in_ok(&d, &dir, p, &["up", "-d"]);
    let web = format!("{p}-web-1");
    d.wait_inspect("{{.State.Status}}", &format!("{p}-done-1"), "exited", 15);

    // port: the host side the daemon chose, as `docker inspect` shows it.
    let o = compose_in_ok(&d, &dir, p, &["port", "web", "8080"]);
    let host_port = d.inspect(
        "{{(index (index .NetworkSettings.Ports \"8080/tcp\") 0).HostPort}}",
        &web,
    );
    assert!(host_port.parse::<u16>().unwrap() > 0);
    assert_eq!(out(&o), format!("0.0.0.0:{host_port}\n"));
    let o = compose_in_ok(&d, &dir, p, &["port", "--protocol", "udp", "web", "7000"]);
    let udp = d.inspect(
        "{{(index (index .NetworkSettings.Ports \"7000/udp\") 0).HostPort}}",
        &web,
    );
    assert_eq!(out(&o), format!("127.0.0.1:{udp}\n"));
    // Bad input: only exposed, the wrong protocol, no such replica, service or port.
    compose_in_fails(
        &d,
        &dir,
        p,
        &["port", "web", "5000"],
        &format!("no port 5000/tcp for container {web}"),
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["port", "web", "7000"],
        &format!("no port 7000/tcp for container {web}"),
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["port", "--protocol", "icmp", "web", "8080"],
        "invalid --protocol",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["port", "--index", "2", "web", "8080"],
        "service \"web\" is not running container #2",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["port", "nope", "8080"],
        "no such service: nope",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["port", "web", "http"],
        "invalid port \"http\"",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["port", "done", "80"],
        "service \"done\" is not running",
    );

    // ls: a second project, and what each holds, running and (with -a) stopped.
    let (dir2, p2) = small_project(&d, "lsb", "services:\n  one:\n    image: busybox:e2e\n    init: true\n    command: [\"sleep\", \"100000\"]\n");
    let p2 = p2.as_str();
    compose_in_ok(&d, &dir2, p2, &["up", "-d"]);
    let files = dir.join("compose.yaml").display().to_string();
    let files2 = dir2.join("compose.yaml").display().to_string();
    // ls reads no compose file: it runs anywhere.
    let ls = |args: &[&str]| {
        let mut c = d.berth_cmd(&["compose", "ls"]);
        c.args(args).current_dir(&d.dir);
        run(c)
    };
    let o = ls(&[]);
    assert!(o.status.success(), "{}", err(&o));
    let lines: Vec<Vec<String>> = out(&o)
        .lines()
        .map(|l| {
            l.split("  ")
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let mut want = vec![
        vec!["NAME".to_string(), "STATUS".into(), "CONFIG FILES".into()],
        vec![p.to_string(), "running(1)".into(), files.clone()],
        vec![p2.to_string(), "running(1)".into(), files2.clone()],
    ];
    want[1..].sort();
    assert_eq!(lines, want, "{}", out(&o));
    let o = ls(&["-a", "--format", "json", "--filter", &format!("name={p}")]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"Name": p, "Status": "exited(1), running(1)", "ConfigFiles": files}])
    );
    let o = ls(&["-q"]);
    let text = out(&o);
    let mut names: Vec<&str> = text.lines().collect();
    names.sort();
    let mut both = vec![p, p2];
    both.sort();
    assert_eq!(names, both);
    let o = ls(&["--filter", "status=running"]);
    assert!(
        !o.status.success() && err(&o).contains("invalid filter 'status=running'"),
        "{}",
        err(&o)
    );
    let o = ls(&["--format", "yaml"]);
    assert!(
        !o.status.success() && err(&o).contains("invalid format"),
        "{}",
        err(&o)
    );

    // version: docker compose's words, for scripts that read them.
    let v = |args: &[&str]| {
        let mut a = vec!["compose", "version"];
        a.extend_from_slice(args);
        d.berth_ok(&a)
    };
    let short = v(&["--short"]);
    assert!(
        short.starts_with("2.") && short.split('.').count() == 3,
        "{short}"
    );
    assert_eq!(
        v(&[]),
        format!(
            "Docker Compose version v{short} (berth compose {})",
            env!("CARGO_PKG_VERSION")
        )
    );
    let j: Value = serde_json::from_str(&v(&["--format", "json"])).unwrap();
    assert_eq!(j, serde_json::json!({ "version": format!("v{short}") }));

    compose_in_ok(&d, &dir, p, &["down"]);
    compose_in_ok(&d, &dir2, p2, &["down"]);
    let o = ls(&["-a", "-q"]);
    assert_eq!(out(&o), "");
    for name in [p, p2] {
        let (c, n, v) = leftovers(&d, name);
        assert!(c.is_empty() && n.is_empty() && v.is_empty());
    }
}

/// `quick` exits 3 at once; `slow` exits 0 a little later; `long` runs until a SIGTERM,
/// which it answers with exit 7 (so a code read after the stop says whose it is).
const EXITS: &str = r#"
services:
  quick:
    image: busybox:e2e
    command: ["sh", "-c", "sleep 0.5; echo quick-done; exit 3"]
  slow:
    image: busybox:e2e
    command: ["sh", "-c", "sleep 1.5; exit 0"]
  long:
    image: busybox:e2e
    command:
      - sh
      - -c
      - |
        trap 'exit 7' TERM
        while true; do sleep 0.1; done
"#;

#[test]
fn compose_create_wait_and_up_abort_on_container_exit() {
    let d = Daemon::start();
    let (dir, p) = small_project(&d, "ext", EXITS);
    let p = p.as_str();
    let quick = format!("{p}-quick-1");
    let slow = format!("{p}-slow-1");
    let long = format!("{p}-long-1");

    // create: the containers exist and none runs; a second create changes nothing.
    let o = compose_in_ok(&d, &dir, p, &["create", "quick", "slow"]);
    assert!(
        err(&o).contains(&format!(" Container {quick}  Created")),
        "{}",
        err(&o)
    );
    assert!(!err(&o).contains("Start"), "{}", err(&o));
    for c in [&quick, &slow] {
        assert_eq!(state_of(&d, c)["Status"], "created");
    }
    assert_eq!(state_of(&d, &long)["Status"], Value::Null);
    let first = d.inspect("{{.Id}}", &quick);
    let o = compose_in_ok(&d, &dir, p, &["create", "quick"]);
    assert!(!err(&o).contains("Creat"), "{}", err(&o));
    assert_eq!(d.inspect("{{.Id}}", &quick), first);
    let o = compose_in_ok(&d, &dir, p, &["create", "--force-recreate", "quick"]);
    assert!(
        err(&o).contains(&format!(" Container {quick}  Recreated")),
        "{}",
        err(&o)
    );
    assert_ne!(d.inspect("{{.Id}}", &quick), first);
    assert_eq!(state_of(&d, &quick)["Status"], "created");
    compose_in_fails(&d, &dir, p, &["create", "nope"], "no such service: nope");
    compose_in_fails(
        &d,
        &dir,
        p,
        &["create", "--scale", "quick=x"],
        "invalid --scale",
    );

    // wait: blocks until both have exited, and exits with the first one's code.
    compose_in_ok(&d, &dir, p, &["start", "quick", "slow"]);
    let started = Instant::now();
    let o = compose_in(&d, &dir, p, &["wait", "quick", "slow"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", out(&o), err(&o));
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out(&o).contains("container \"quick\" exited with status code 3"),
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains("container \"slow\" exited with status code 0"),
        "{}",
        out(&o)
    );
    assert_eq!(state_of(&d, &slow)["Status"], "exited");
    compose_in_fails(&d, &dir, p, &["wait", "nope"], "no such service: nope");
    let o = compose_in(&d, &dir, p, &["wait"]);
    assert!(!o.status.success());

    // up --abort-on-container-exit: quick's exit stops long; up exits with quick's code.
    let o = compose_in(
        &d,
        &dir,
        p,
        &["up", "--abort-on-container-exit", "quick", "long"],
    );
    assert_eq!(o.status.code(), Some(3), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains("quick-done"), "{}", out(&o));
    assert!(
        out(&o).contains("quick-1 exited with code 3"),
        "{}",
        out(&o)
    );
    assert!(
        err(&o).contains("Aborting on container exit..."),
        "{}",
        err(&o)
    );
    assert!(
        err(&o).contains(&format!(" Container {long}  Stopped")),
        "{}",
        err(&o)
    );
    assert_eq!(state_of(&d, &long)["ExitCode"], 7);
    // --exit-code-from: the named service's code, whichever container ended first.
    let o = compose_in(
        &d,
        &dir,
        p,
        &["up", "--exit-code-from", "long", "quick", "long"],
    );
    assert_eq!(o.status.code(), Some(7), "{}{}", out(&o), err(&o));
    let o = compose_in(
        &d,
        &dir,
        p,
        &["up", "--exit-code-from", "quick", "quick", "long"],
    );
    assert_eq!(o.status.code(), Some(3), "{}{}", out(&o), err(&o));
    // Bad input.
    compose_in_fails(
        &d,
        &dir,
        p,
        &["up", "-d", "--abort-on-container-exit"],
        "--abort-on-container-exit and --detach are incompatible",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["up", "--exit-code-from", "nope"],
        "no such service: nope",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["up", "--exit-code-from", "slow", "quick"],
        "not among the services",
    );

    compose_in_ok(&d, &dir, p, &["down"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty() && v.is_empty());
}

const SCALED: &str = r#"
services:
  db:
    image: busybox:e2e
    init: true
    command: ["sleep", "100000"]
  web:
    image: busybox:e2e
    init: true
    command: ["sleep", "100000"]
    depends_on: [db]
"#;

#[test]
fn compose_scale_and_events_follow_the_project() {
    let d = Daemon::start();
    let (dir, p) = small_project(&d, "scl", SCALED);
    let p = p.as_str();
    // Two followers of the project's events: all of them as JSON, db's as text.
    let follow = |args: &[&str]| {
        let mut c = d.berth_cmd(&["compose", "-p", p, "events"]);
        c.args(args)
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let json_events = follow(&["--json"]);
    let db_events = follow(&["db"]);
    // Another project's events are not this one's.
    let (odir, other) = small_project(
        &d,
        "oth",
        "services:\n  x:\n    image: busybox:e2e\n    command: [\"true\"]\n",
    );
    std::thread::sleep(Duration::from_millis(1000));

    compose_in_ok(&d, &dir, p, &["up", "-d"]);
    compose_in_ok(&d, &odir, &other, &["up", "-d"]);
    let o = compose_in_ok(&d, &dir, p, &["scale", "web=3"]);
    for n in [2, 3] {
        assert!(
            err(&o).contains(&format!(" Container {p}-web-{n}  Started")),
            "{}",
            err(&o)
        );
    }
    let running = |svc: &str| {
        let o = compose_in_ok(&d, &dir, p, &["ps", "-q", svc]);
        out(&o).lines().count()
    };
    assert_eq!((running("web"), running("db")), (3, 1));
    let o = compose_in_ok(&d, &dir, p, &["scale", "web=1"]);
    assert!(
        err(&o).contains(&format!(" Container {p}-web-3  Removed")),
        "{}",
        err(&o)
    );
    assert_eq!(running("web"), 1);
    compose_in_fails(&d, &dir, p, &["scale", "nope=2"], "no such service: nope");
    compose_in_fails(
        &d,
        &dir,
        p,
        &["scale", "web"],
        "invalid scale \"web\": SERVICE=NUM",
    );
    compose_in_fails(&d, &dir, p, &["scale", "web=many"], "is not a number");
    compose_in_fails(&d, &dir, p, &["events", "nope"], "no such service: nope");
    compose_in_ok(&d, &dir, p, &["kill", "-s", "USR1", "db"]);

    std::thread::sleep(Duration::from_millis(500));
    let stop = |child: std::process::Child| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        out(&child.wait_with_output().unwrap())
    };
    let all = stop(json_events);
    let text = stop(db_events);

    let events: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |service: &str, action: &str, name: &str| {
        events.iter().any(|e| {
            e["service"] == service && e["action"] == action && e["attributes"]["name"] == name
        })
    };
    assert!(has("db", "start", &format!("{p}-db-1")), "{all}");
    assert!(has("web", "start", &format!("{p}-web-3")), "{all}");
    assert!(has("web", "destroy", &format!("{p}-web-3")), "{all}");
    assert!(has("db", "kill", &format!("{p}-db-1")), "{all}");
    for e in &events {
        assert_eq!(e["type"], "container");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
        let keys = e["attributes"].as_object().unwrap();
        assert!(
            !keys.keys().any(|k| k.starts_with("com.docker.compose.")),
            "{e}"
        );
        assert!(
            e["attributes"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{p}-")),
            "{e}"
        );
    }
    // Text: docker compose's `2006-01-02 15:04:05.000000 container ACTION ID (k=v, …)`.
    let db_id = d.inspect("{{.Id}}", &format!("{p}-db-1"));
    assert!(
        text.contains(&format!(" container start {db_id} (")),
        "{text}"
    );
    assert!(text.contains("signal=10"), "{text}");
    for l in text.lines() {
        let (date, rest) = l.split_at(26);
        assert!(
            date.len() == 26 && date.as_bytes()[10] == b' ' && date.as_bytes()[19] == b'.',
            "{l}"
        );
        assert!(
            rest.starts_with(" container ") && l.contains(&format!("name={p}-db-1")),
            "{l}"
        );
    }

    compose_in_ok(&d, &dir, p, &["down"]);
    compose_in_ok(&d, &odir, &other, &["down"]);
    for name in [p, other.as_str()] {
        let (c, n, v) = leftovers(&d, name);
        assert!(c.is_empty() && n.is_empty() && v.is_empty());
    }
}

/// `GET /` on 127.0.0.1:`port` (retried while the one-connection server is between answers).
fn get_on(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.contains("200 OK") {
                return body;
            }
        }
        assert!(Instant::now() < deadline, "no answer on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `web` serves `hello-run` on 8080, which the service publishes on loopback at `{SVC}`;
/// `data` is a declared volume the service does not mount.
const RUNNER: &str = r#"
services:
  web:
    image: busybox:e2e
    init: true
    ports: ["127.0.0.1:{SVC}:8080"]
    command:
      - sh
      - -c
      - |
        while true; do
          printf 'HTTP/1.0 200 OK\r\n\r\nhello-run\n' | nc -l -p 8080
        done
volumes:
  data: {}
"#;

#[test]
fn compose_run_publishes_mounts_and_overrides_as_asked() {
    let d = Daemon::start();
    let svc_port = free_port();
    let yaml = RUNNER.replace("{SVC}", &svc_port.to_string());
    let (dir, p) = small_project(&d, "runp", &yaml);
    let p = p.as_str();
    std::fs::create_dir_all(dir.join("host")).unwrap();
    std::fs::write(dir.join("host/file.txt"), "from-the-host\n").unwrap();

    // -p publishes what it names, and the service's own port stays unpublished.
    let run_port = free_port();
    let spec = format!("127.0.0.1:{run_port}:8080");
    let o = compose_in_ok(
        &d,
        &dir,
        p,
        &[
            "run",
            "-d",
            "--name",
            &format!("{p}-pub"),
            "-p",
            &spec,
            "web",
        ],
    );
    let id = out(&o).trim().to_string();
    assert_eq!(id.len(), 64, "-d prints the container's id: {}", out(&o));
    assert_eq!(d.inspect("{{.Name}}", &id), format!("/{p}-pub"));
    assert_eq!(
        d.inspect(
            "{{index .Config.Labels \"com.docker.compose.oneoff\"}}",
            &id
        ),
        "True"
    );
    assert!(get_on(run_port).contains("hello-run"));
    assert!(
        TcpStream::connect(("127.0.0.1", svc_port)).is_err(),
        "run published the service's port without --service-ports"
    );
    d.berth_ok(&["rm", "-f", &id]);

    // --service-ports publishes the service's ports.
    let o = compose_in_ok(&d, &dir, p, &["run", "-d", "--service-ports", "web"]);
    let id = out(&o).trim().to_string();
    assert!(get_on(svc_port).contains("hello-run"));
    d.berth_ok(&["rm", "-f", &id]);

    // -v binds a host directory (relative to the project) and mounts a declared volume;
    // -e, -w, -u and --entrypoint reach the process; --rm leaves nothing behind.
    let o = compose_in_ok(
        &d,
        &dir,
        p,
        &[
            "run", "--rm", "-T", "-v", "./host:/mnt/host:ro", "-v", "data:/data", "-e",
            "A=from-e", "-w", "/mnt/host", "-u", "1234", "--entrypoint", "sh", "web", "-c",
            "cat file.txt; echo A=$A; pwd; id -u; grep ' /data ' /proc/mounts | wc -l; touch x 2>/dev/null || echo read-only",
        ],
    );
    let text = out(&o);
    for want in [
        "from-the-host",
        "A=from-e",
        "/mnt/host\n",
        "1234\n",
        "1\n",
        "read-only",
    ] {
        assert!(text.contains(want), "want {want:?} in {text}");
    }
    let (c, _, v) = leftovers(&d, p);
    assert!(c.is_empty(), "--rm left {c:?}");
    assert!(
        v.iter().any(|v| v["Name"] == format!("{p}_data")),
        "-v data: created the project's volume: {v:?}"
    );

    // Bad input: refused with its reason, nothing created.
    compose_in_fails(
        &d,
        &dir,
        p,
        &["run", "-p", "1:2:3:4", "web"],
        "invalid port mapping \"1:2:3:4\"",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["run", "-p", "x:80", "web"],
        "invalid port mapping",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["run", "--service-ports", "-p", "9000:80", "web"],
        "--service-ports and --publish are incompatible",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["run", "-v", "nope:/x", "web"],
        "undefined volume \"nope\"",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["run", "-v", "rel", "web"],
        "invalid volume specification",
    );
    compose_in_fails(&d, &dir, p, &["run", "nope"], "no such service: nope");
    let (c, _, _) = leftovers(&d, p);
    assert!(c.is_empty(), "a refused run created {c:?}");

    compose_in_ok(&d, &dir, p, &["down", "-v"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty() && v.is_empty());
}

/// Three services that each say who they are and end; `beta` depends on `alpha`.
const CHATTY: &str = r#"
services:
  alpha:
    image: busybox:e2e
    command: ["sh", "-c", "echo line-from-alpha"]
  beta:
    image: busybox:e2e
    depends_on: [alpha]
    command: ["sh", "-c", "echo line-from-beta"]
  gamma:
    image: busybox:e2e
    command: ["sh", "-c", "echo line-from-gamma"]
"#;

#[test]
fn compose_up_attach_shows_only_the_chosen_services() {
    let d = Daemon::start();
    let (dir, p) = small_project(&d, "att", CHATTY);
    let p = p.as_str();

    // An unknown service is refused before anything is created.
    compose_in_fails(
        &d,
        &dir,
        p,
        &["up", "--attach", "nope"],
        "no such service: nope",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["up", "--no-attach", "nope"],
        "no such service: nope",
    );
    let (c, n, _) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty(), "{c:?} {n:?}");

    // --attach (repeatable): those services' lines, the other's absent though it ran.
    for args in [
        &["up", "--attach", "alpha", "--attach", "beta"][..],
        &["up", "--no-attach", "gamma"][..],
    ] {
        let o = compose_in_ok(&d, &dir, p, args);
        let text = out(&o);
        assert!(
            text.contains("Attaching to alpha-1, beta-1\n"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("alpha-1  | line-from-alpha"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("beta-1   | line-from-beta"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("gamma"), "{args:?}: {text}");
        wait_log(&d, &dir, p, "gamma", "line-from-gamma");
    }
    // A named service shows its own output, not its dependency's (which still runs), unless
    // --attach-dependencies.
    let o = compose_in_ok(&d, &dir, p, &["up", "beta"]);
    let text = out(&o);
    assert!(text.contains("Attaching to beta-1\n"), "{text}");
    assert!(text.contains("beta-1  | line-from-beta"), "{text}");
    assert!(!text.contains("alpha"), "{text}");
    let o = compose_in_ok(&d, &dir, p, &["up", "--attach-dependencies", "beta"]);
    let text = out(&o);
    assert!(text.contains("Attaching to alpha-1, beta-1\n"), "{text}");
    assert!(text.contains("alpha-1  | line-from-alpha"), "{text}");
    compose_in_fails(
        &d,
        &dir,
        p,
        &["up", "--attach", "alpha", "--attach-dependencies"],
        "--attach and --attach-dependencies are incompatible",
    );

    compose_in_ok(&d, &dir, p, &["down"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty() && v.is_empty());
}

/// `box` has two replicas that just run.
const BOXES: &str = r#"
services:
  box:
    image: busybox:e2e
    init: true
    scale: 2
    command: ["sleep", "100000"]
"#;

#[test]
fn compose_cp_copies_both_ways_with_content_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    let (dir, p) = small_project(&d, "cpy", BOXES);
    let p = p.as_str();
    compose_in_ok(&d, &dir, p, &["up", "-d"]);
    let in_box = |index: &str, script: &str| -> String {
        let o = compose_in_ok(
            &d,
            &dir,
            p,
            &["exec", "-T", "--index", index, "box", "sh", "-c", script],
        );
        out(&o)
    };

    // Into the service: every replica gets the file, with its content and mode.
    let f = dir.join("in.txt");
    std::fs::write(&f, "copied-in\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    compose_in_ok(&d, &dir, p, &["cp", "./in.txt", "box:/tmp/in.txt"]);
    for i in ["1", "2"] {
        assert_eq!(
            in_box(i, "cat /tmp/in.txt; stat -c %a /tmp/in.txt"),
            "copied-in\n640\n"
        );
    }
    // --index picks one replica; a directory goes whole, into an existing directory.
    std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
    std::fs::write(dir.join("tree/sub/leaf.txt"), "leaf\n").unwrap();
    compose_in_ok(&d, &dir, p, &["cp", "--index", "2", "./tree", "box:/tmp/"]);
    assert_eq!(in_box("2", "cat /tmp/tree/sub/leaf.txt"), "leaf\n");
    assert_eq!(
        in_box("1", "test -e /tmp/tree && echo there || echo absent"),
        "absent\n"
    );

    // Out of the service: content and mode kept.
    in_box(
        "1",
        "printf from-box > /tmp/out.txt; chmod 751 /tmp/out.txt",
    );
    compose_in_ok(&d, &dir, p, &["cp", "box:/tmp/out.txt", "./out.txt"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "from-box"
    );
    let mode = std::fs::metadata(dir.join("out.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o751);
    in_box("2", "echo second > /tmp/which");
    compose_in_ok(
        &d,
        &dir,
        p,
        &["cp", "--index", "2", "box:/tmp/which", "./which"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("which")).unwrap(),
        "second\n"
    );

    // Bad input: each refused with its reason and a non-zero status.
    compose_in_fails(
        &d,
        &dir,
        p,
        &["cp", "nope:/x", "./x"],
        "no such service: nope",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["cp", "box:/no/such/path", "./x"],
        "/no/such/path",
    );
    assert!(!dir.join("x").exists());
    compose_in_fails(
        &d,
        &dir,
        p,
        &["cp", "./missing.txt", "box:/tmp/"],
        "missing.txt",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["cp", "--index", "5", "./in.txt", "box:/tmp/"],
        "service \"box\" has no container number 5",
    );
    compose_in_fails(
        &d,
        &dir,
        p,
        &["cp", "./in.txt", "./y"],
        "one of the paths must be SERVICE:PATH",
    );

    compose_in_ok(&d, &dir, p, &["down", "-t", "1"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty() && v.is_empty());
}

/// `talker` prints a tick five times a second; `echoer` answers one line of its stdin;
/// `quiet` just runs.
const TALKERS: &str = r#"
services:
  talker:
    image: busybox:e2e
    init: true
    command: ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]
  echoer:
    image: busybox:e2e
    stdin_open: true
    command: ["sh", "-c", "echo ready; read line; echo got-$$line"]
  quiet:
    image: busybox:e2e
    init: true
    command: ["sleep", "100000"]
"#;

#[test]
fn compose_stats_and_attach_reach_the_projects_containers() {
    let d = Daemon::start();
    let (dir, p) = small_project(&d, "sta", TALKERS);
    let p = p.as_str();
    compose_in_ok(&d, &dir, p, &["up", "-d"]);
    wait_log(&d, &dir, p, "echoer", "ready");
    // A container of no project must stay out of the project's stats.
    let stranger = format!("{p}-stranger");
    d.berth_ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        &stranger,
        common::engine::IMAGE,
        "sleep",
        "100000",
    ]);

    // stats: berth stats' table over the project's running containers, by name.
    let o = compose_in_ok(&d, &dir, p, &["stats", "--no-stream"]);
    let text = out(&o);
    assert!(text.starts_with("CONTAINER ID"), "{text}");
    assert!(
        text.contains("MEM USAGE / LIMIT") && text.contains("PIDS"),
        "{text}"
    );
    for s in ["talker", "echoer", "quiet"] {
        assert!(text.contains(&format!("{p}-{s}-1")), "{s}: {text}");
    }
    assert!(!text.contains(&stranger), "{text}");
    let o = compose_in_ok(
        &d,
        &dir,
        p,
        &["stats", "--no-stream", "--format", "{{.Name}}", "quiet"],
    );
    assert_eq!(out(&o), format!("{p}-quiet-1\n"));
    // Streaming: the table is redrawn with the containers' rows until interrupted.
    let mut c = d.berth_cmd(&["compose", "-p", p, "stats", "talker"]);
    c.current_dir(&dir);
    let o = run_for(c, 2.5);
    assert!(out(&o).contains(&format!("{p}-talker-1")), "{}", out(&o));
    compose_in_fails(&d, &dir, p, &["stats", "nope"], "no such service: nope");

    // attach: the running container's output as it comes, and stdin to one that reads it.
    let mut c = d.berth_cmd(&["compose", "-p", p, "attach", "--no-stdin", "talker"]);
    c.current_dir(&dir);
    let o = run_for(c, 1.5);
    assert!(
        out(&o).matches("tick").count() >= 2,
        "{}{}",
        out(&o),
        err(&o)
    );
    let mut c = d.berth_cmd(&["compose", "-p", p, "attach", "echoer"]);
    c.current_dir(&dir);
    let o = run_cmd(c, Some(b"hello\n"), 20);
    assert!(out(&o).contains("got-hello"), "{}{}", out(&o), err(&o));
    compose_in_fails(&d, &dir, p, &["attach", "nope"], "no such service: nope");
    compose_in_fails(
        &d,
        &dir,
        p,
        &["attach", "--index", "2", "talker"],
        "service \"talker\" is not running",
    );

    d.berth_ok(&["rm", "-f", &stranger]);
    compose_in_ok(&d, &dir, p, &["down", "-t", "1"]);
    let (c, n, v) = leftovers(&d, p);
    assert!(c.is_empty() && n.is_empty() && v.is_empty());
}
