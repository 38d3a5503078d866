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

use common::engine::{err, out, run_cmd, Daemon};
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
