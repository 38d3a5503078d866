//! Dockerfile builds against a private daemon: through `berth build`, the docker CLI's classic
//! builder (DOCKER_BUILDKIT=0) and docker-py; the result checked from inside containers; the
//! cache step by step; multi-stage builds; `.dockerignore`; save/load round trips; each bad
//! input; and the hygiene verbs (`berth image lint`, `berth image analyze`).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Lines, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::engine::{code, err, out, run_cmd, Daemon, IMAGE};
use common::registry::{Auth, Registry, TlsFileServer, PASSWORD, USER};

/// A build context under the daemon's test directory.
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.join(name);
    for (p, content) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `berth ARGS` in `dir`.
fn berth_in(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut c = d.berth_cmd(args);
    c.current_dir(dir);
    run_cmd(c, None, 120)
}

/// `docker ARGS` (classic builder) in `dir`.
fn docker_in(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut c = d.docker_cmd(args);
    c.current_dir(dir).env("DOCKER_BUILDKIT", "0");
    run_cmd(c, None, 120)
}

/// The directory as a tar (what `docker build -` reads on stdin), made by tar(1).
fn tar_of(dir: &Path) -> Vec<u8> {
    let o = Command::new("tar")
        .args(["-C", dir.to_str().unwrap(), "-cf", "-", "."])
        .output()
        .unwrap();
    assert!(o.status.success(), "tar: {}", err(&o));
    o.stdout
}

/// `berth build .` in `dir`, started: its stdout's lines as they come.
fn spawn_build(d: &Daemon, dir: &Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut c = d.berth_cmd(&["build", "."]);
    c.current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}):\n{}{}",
        o.status.code(),
        out(o),
        err(o)
    );
    out(o)
}

/// For each `Step N/M` of a build's output, whether it said `Using cache`.
fn cache_by_step(output: &str) -> Vec<bool> {
    let mut steps = Vec::new();
    for l in output.lines() {
        if l.starts_with("Step ") {
            steps.push(false);
        } else if l.contains("Using cache") {
            if let Some(last) = steps.last_mut() {
                *last = true;
            }
        }
    }
    steps
}

fn built_id(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image id in:\n{output}"))
        .trim()
        .to_string()
}

/// `berth build -t TAG EXTRA… .` of `dockerfile` (in a fresh context named after the tag),
/// which must fail: a non-zero exit, each of `wants` in its output, and no tag made.
fn build_fails(d: &Daemon, tag: &str, dockerfile: &str, extra: &[&str], wants: &[&str]) {
    let ctx = context(d, &tag.replace(':', "-"), &[("Dockerfile", dockerfile)]);
    let mut args = vec!["build", "-t", tag];
    args.extend_from_slice(extra);
    args.push(".");
    let o = berth_in(d, &ctx, &args);
    let text = format!("{}{}", out(&o), err(&o));
    assert_ne!(code(&o), 0, "{dockerfile}: {text}");
    for want in wants {
        assert!(
            text.contains(want),
            "{dockerfile}: want {want:?}, got:\n{text}"
        );
    }
    assert!(!tags(d).contains(tag), "{dockerfile}: {tag} was made");
}

/// The repository:tag list of the daemon's images.
fn tags(d: &Daemon) -> String {
    d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
}

/// Build containers, mounts and scratch files: none may be left after a build.
fn assert_nothing_left(d: &Daemon) {
    let rt = d.exec_root.join("build-runtime");
    let left: Vec<_> = std::fs::read_dir(&rt)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "RUN containers left in {}: {left:?}",
        rt.display()
    );
    let builds = d.root.join("builds");
    let left: Vec<_> = std::fs::read_dir(&builds)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "scratch left in {}: {left:?}",
        builds.display()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = builds.to_string_lossy().into_owned();
    assert!(!mounts.contains(&prefix), "mounts left under {prefix}");
    assert_no_build_network_left(d);
}

/// What RUN steps' networks held: once the builds are over no namespace file, veth or
/// address is left that a container does not own.
fn assert_no_build_network_left(d: &Daemon) {
    let (_, list) = d.api_json("GET", "/containers/json?all=1", None);
    let list = list.as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = list.iter().filter_map(|c| c["Id"].as_str()).collect();
    for e in std::fs::read_dir(d.exec_root.join("netns"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            ids.contains(&name.as_str()),
            "network namespace {name} left"
        );
    }
    for e in std::fs::read_dir(d.root.join("networks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let n: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        for (ip, owner) in n["allocated"].as_object().into_iter().flatten() {
            let owner = owner.as_str().unwrap_or("");
            assert!(
                ids.contains(&owner),
                "address {ip} left to {owner} on {}",
                n["name"]
            );
        }
    }
    let endpoints: usize = list
        .iter()
        .filter(|c| c["State"] == "running")
        .map(|c| {
            c["NetworkSettings"]["Networks"]
                .as_object()
                .map_or(0, |m| m.len())
        })
        .sum();
    // A RUN's veth goes with its namespace, which the kernel ends in the background.
    let ports = || -> usize {
        d.bridges()
            .iter()
            .map(|b| {
                std::fs::read_dir(format!("/sys/class/net/{b}/brif"))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while ports() != endpoints && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ports(), endpoints, "veths left on the daemon's bridges");
}

const RICH: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox:e2e
FROM ${BASE} AS base
ARG GREETING=hello
ENV APP_HOME=/app \
    MODE="two words"
LABEL org.example.name="demo" version=${GREETING}
WORKDIR $APP_HOME
COPY --chown=nobody:nobody --chmod=640 conf.txt ./conf/
COPY src/ ./src/
COPY *.md docs/
ADD files.tar.gz /opt/
COPY <<EOF /app/hello.sh
#!/bin/sh
echo "$GREETING from heredoc"
EOF
RUN chmod 755 /app/hello.sh && echo "built with $GREETING" > /app/built.txt
RUN <<EOF
echo step one > /app/script.txt
echo step two >> /app/script.txt
EOF
EXPOSE 8080 53/udp
VOLUME /data
HEALTHCHECK --interval=5s --retries=2 CMD test -f /app/built.txt
STOPSIGNAL SIGTERM
USER nobody
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/built.txt"]
"#;

fn targz(files: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (p, c) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_uid(1234);
        h.set_gid(1234);
        h.set_cksum();
        b.append_data(&mut h, p, c.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn dockerfile_instructions_shape_the_image_seen_from_inside() {
    let d = Daemon::start();
    let ctx = context(
        &d,
        "rich",
        &[
            ("Dockerfile", RICH),
            ("conf.txt", "conf\n"),
            ("src/a.txt", "in src\n"),
            ("README.md", "readme\n"),
        ],
    );
    std::fs::write(ctx.join("files.tar.gz"), targz(&[("files/one", "1\n")])).unwrap();
    let o = ok(&berth_in(
        &d,
        &ctx,
        &["build", "--build-arg", "GREETING=hi", "-t", "demo:1", "."],
    ));
    assert!(o.contains("Step 19/19 : CMD"), "{o}");
    // ENTRYPOINT + CMD.
    assert_eq!(d.docker_ok(&["run", "--rm", "demo:1"]), "built with hi");
    // RUN steps start with no signal ignored (ignored signals would survive into the image's
    // programs).
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN [\"grep\", \"SigIgn\", \"/proc/self/status\"]\n"),
    )
    .unwrap();
    let sig = ok(&berth_in(&d, &ctx, &["build", "."]));
    let ignored = sig
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .and_then(|m| u64::from_str_radix(m, 16).ok())
        .unwrap();
    // glibc's own 32 and 33 aside (a daemon may inherit them ignored and cannot reset them).
    assert_eq!(ignored & !0x1_8000_0000, 0, "{sig}");
    let inside = d.docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "demo:1",
        "-c",
        "stat -c '%U:%G %a' /app/conf/conf.txt; cat /app/src/a.txt; ls /app/docs; \
         stat -c '%u %n' /opt/files/one; /app/hello.sh; cat /app/script.txt; id -un; pwd; \
         echo \"$MODE\"; test -e /app/Dockerfile || echo no-dockerfile",
    ]);
    assert_eq!(
        inside,
        "nobody:nobody 640\nin src\nREADME.md\n1234 /opt/files/one\nhi from heredoc\nstep one\nstep two\nnobody\n/app\ntwo words\nno-dockerfile"
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["inspect", "-f", "{{json .Config}}", "demo:1"]))
            .unwrap();
    assert_eq!(cfg["Labels"]["org.example.name"], "demo");
    assert_eq!(cfg["Labels"]["version"], "hi");
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some());
    assert!(cfg["ExposedPorts"].get("53/udp").is_some());
    assert!(cfg["Volumes"].get("/data").is_some());
    assert_eq!(cfg["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 2);
    assert_eq!(cfg["StopSignal"], "SIGTERM");
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    let env = cfg["Env"].to_string();
    assert!(
        env.contains("APP_HOME=/app") && env.contains("MODE=two words"),
        "{env}"
    );
    // Build args are not persisted into the image.
    assert!(!env.contains("GREETING"), "{env}");
    // The history names each step.
    let hist = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "demo:1",
    ]);
    assert!(
        hist.contains("RUN |1 GREETING=hi /bin/sh -c chmod 755"),
        "{hist}"
    );
    assert!(hist.contains("COPY src/ ./src/"), "{hist}");
    assert_nothing_left(&d);
}

#[test]
fn cache_hits_and_misses_step_by_step() {
    let d = Daemon::start();
    let df = format!(
        "FROM {IMAGE}\nRUN echo a > /a\nCOPY f.txt /f.txt\nRUN cat /f.txt > /g\nCMD [\"cat\", \"/g\"]\n"
    );
    let ctx = context(&d, "cache", &[("Dockerfile", &df), ("f.txt", "one\n")]);
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "cached:1"];
        args.extend_from_slice(extra);
        args.push(".");
        ok(&berth_in(&d, &ctx, &args))
    };
    let first = build(&[]);
    assert_eq!(cache_by_step(&first), [false, false, false, false, false]);
    let again = build(&[]);
    assert_eq!(cache_by_step(&again), [false, true, true, true, true]);
    assert_eq!(built_id(&first), built_id(&again), "same steps, same image");
    // A file's content changes: its COPY and what follows rebuild, what precedes does not.
    std::fs::write(ctx.join("f.txt"), "two\n").unwrap();
    let changed = build(&[]);
    assert_eq!(cache_by_step(&changed), [false, true, false, false, false]);
    assert_eq!(d.docker_ok(&["run", "--rm", "cached:1"]), "two");
    // A new mtime, same content: still cached.
    std::fs::write(ctx.join("f.txt"), "two\n").unwrap();
    assert_eq!(cache_by_step(&build(&[])), [false, true, true, true, true]);
    // An instruction changes: it and everything after rebuild.
    std::fs::write(ctx.join("Dockerfile"), df.replace("echo a", "echo b")).unwrap();
    assert_eq!(
        cache_by_step(&build(&[])),
        [false, false, false, false, false]
    );
    assert_eq!(cache_by_step(&build(&[])), [false, true, true, true, true]);
    // --no-cache runs everything again.
    assert_eq!(cache_by_step(&build(&["--no-cache"])), [false; 5]);
    // The docker CLI sees the same cache.
    let o = ok(&docker_in(&d, &ctx, &["build", "-t", "cached:2", "."]));
    assert_eq!(cache_by_step(&o), [false, true, true, true, true], "{o}");
    // /build/prune empties it.
    let (st, v) = d.api_json("POST", "/build/prune", None);
    assert_eq!(st, 200, "{v}");
    assert!(!v["CachesDeleted"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(cache_by_step(&build(&[])), [false; 5]);
    assert_eq!(d.docker_ok(&["run", "--rm", "cached:1"]), "two");
    assert_nothing_left(&d);
}

#[test]
fn multi_stage_copy_from_target_and_parallel_stages() {
    let d = Daemon::start();
    // Stages a and b meet at a rendezvous on the loopback: each RUN connects and waits; the
    // answer is "together" only if the other one connected meanwhile (they ran at once).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rendezvous = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut conns = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut second_by = None;
        while conns.len() < 2 && Instant::now() < deadline {
            match listener.accept() {
                Ok((c, _)) => {
                    conns.push(c);
                    second_by = Some(Instant::now() + Duration::from_secs(20));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            if second_by.is_some_and(|t| Instant::now() > t) {
                break;
            }
        }
        let answer: &[u8] = if conns.len() == 2 {
            b"together\n"
        } else {
            b"alone\n"
        };
        for mut c in conns {
            let _ = c.set_nonblocking(false);
            let _ = c.write_all(answer);
        }
    });
    let df = format!(
        "FROM {IMAGE} AS a\nARG PORT\nRUN nc 127.0.0.1 $PORT > /a.txt\n\
         FROM {IMAGE} AS b\nARG PORT\nRUN nc 127.0.0.1 $PORT > /b.txt\n\
         FROM {IMAGE} AS final\nCOPY --from=a /a.txt /out/\nCOPY --from=b /b.txt /out/\n\
         COPY --from={IMAGE} /bin/busybox /bb\nRUN cat /out/a.txt\n"
    );
    let ctx = context(&d, "multi", &[("Dockerfile", &df)]);
    let arg = format!("PORT={port}");
    let args = [
        "build",
        "--network",
        "host",
        "--build-arg",
        &arg,
        "-t",
        "multi:1",
        ".",
    ];
    let o = ok(&berth_in(&d, &ctx, &args));
    // Output in Dockerfile order although the stages ran in parallel.
    let steps: Vec<usize> = o
        .lines()
        .filter_map(|l| l.strip_prefix("Step "))
        .map(|l| l.split('/').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(steps, (1..=11).collect::<Vec<_>>(), "{o}");
    rendezvous.join().unwrap();
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "multi:1",
            "sh",
            "-c",
            "cat /out/a.txt /out/b.txt; ls /out; test -x /bb && echo bb"
        ]),
        "together\ntogether\na.txt\nb.txt\nbb"
    );
    // Again: every step (the COPY --from ones too) comes from the cache.
    let again = ok(&berth_in(&d, &ctx, &args));
    let cached = cache_by_step(&again);
    assert_eq!(
        cached,
        [false, false, true, false, false, true, false, true, true, true, true],
        "{again}"
    );
    // --target builds that stage and what it needs, nothing else.
    let df2 = format!(
        "FROM {IMAGE} AS base\nRUN echo base > /base\nFROM base AS mid\nRUN echo mid > /mid\n\
         FROM {IMAGE} AS other\nRUN echo never > /never\nFROM mid\nRUN echo last > /last\n"
    );
    std::fs::write(ctx.join("Dockerfile"), df2).unwrap();
    let o = ok(&berth_in(
        &d,
        &ctx,
        &["build", "--target", "mid", "-t", "mid:1", "."],
    ));
    assert!(!o.contains("never") && !o.contains("last"), "{o}");
    assert!(o.contains("Step 4/4 : RUN echo mid > /mid"), "{o}");
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "mid:1",
            "sh",
            "-c",
            "cat /base /mid; ls /last 2>&1 | head -1"
        ]),
        "base\nmid\nls: /last: No such file or directory"
    );
    assert_nothing_left(&d);
}

#[test]
fn dockerignore_follows_docker_rules() {
    let d = Daemon::start();
    let df = format!("FROM {IMAGE}\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort\n");
    let ctx = context(
        &d,
        "ignore",
        &[
            ("Dockerfile", &df),
            (
                ".dockerignore",
                "# comment\n*.log\n**/secret\nbuild\n!build/keep.txt\nDockerfile\n",
            ),
            ("a.log", "x"),
            ("sub/b.log", "x"),
            ("x/y/secret", "x"),
            ("build/junk", "x"),
            ("build/keep.txt", "x"),
            ("keep.txt", "x"),
        ],
    );
    // What the RUN's `find` listed: the files COPY took.
    let listed = |o: &str| -> Vec<String> {
        o.lines()
            .filter(|l| l.starts_with("./"))
            .map(str::to_owned)
            .collect()
    };
    let kept = [
        "./.dockerignore",
        "./build/keep.txt",
        "./keep.txt",
        "./sub/b.log",
    ];
    let o = ok(&berth_in(&d, &ctx, &["build", "-t", "ign:1", "."]));
    assert_eq!(listed(&o), kept, "{o}");
    // The Dockerfile was excluded: the build read it, but COPY cannot take it.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY Dockerfile /x\n"),
    )
    .unwrap();
    let o = berth_in(&d, &ctx, &["build", "-t", "ign:2", "."]);
    assert_eq!(code(&o), 1, "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains(
            "file not found in build context or excluded by .dockerignore: stat Dockerfile"
        ),
        "{}",
        err(&o)
    );
    // A context tar on stdin gets the same rules in the daemon.
    std::fs::write(ctx.join("Dockerfile"), &df).unwrap();
    let tar = tar_of(&ctx);
    let mut c = d.berth_cmd(&["build", "--no-cache", "-t", "ign:3", "-"]);
    c.current_dir(&ctx);
    let o = ok(&run_cmd(c, Some(&tar), 120));
    assert_eq!(listed(&o), kept, "{o}");
    assert!(!tags(&d).contains("ign:2"));
    assert_nothing_left(&d);
}

#[test]
fn docker_cli_classic_builder_builds_tags_and_fails_with_the_run_exit_code() {
    let d = Daemon::start();
    let df = format!(
        "FROM {IMAGE}\nARG WHO=nobody\nRUN echo \"hello $WHO\" > /greeting\nCMD [\"cat\", \"/greeting\"]\n"
    );
    let ctx = context(&d, "dcli", &[("keep.txt", "x")]);
    // A Dockerfile outside the context (-f): the CLI sends it under a name of its own.
    let dfile = d.dir.join("elsewhere.Dockerfile");
    std::fs::write(&dfile, &df).unwrap();
    let o = docker_in(
        &d,
        &ctx,
        &[
            "build",
            "-f",
            dfile.to_str().unwrap(),
            "-t",
            "dcli:1",
            "-t",
            "dcli:2",
            "--build-arg",
            "WHO=docker",
            "--label",
            "built.by=docker-cli",
            ".",
        ],
    );
    let text = ok(&o);
    assert!(
        text.contains("Successfully tagged dcli:1") && text.contains("Successfully tagged dcli:2"),
        "{text}"
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "dcli:2"]), "hello docker");
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"built.by\"}}",
            "dcli:1"
        ]),
        "docker-cli"
    );
    // docker 28 without DOCKER_BUILDKIT takes the classic builder too (Builder-Version: 1).
    let mut c = d.docker_cmd(&["build", "-f", dfile.to_str().unwrap(), "-t", "dcli:3", "."]);
    c.current_dir(&ctx).env_remove("DOCKER_BUILDKIT");
    let o = run_cmd(c, None, 120);
    assert!(ok(&o).contains("Successfully tagged dcli:3"), "{}", out(&o));
    // -q prints the id only; --iidfile writes it.
    let iid = d.dir.join("iid");
    let o = ok(&docker_in(
        &d,
        &ctx,
        &[
            "build",
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            "-f",
            dfile.to_str().unwrap(),
            ".",
        ],
    ));
    assert!(
        o.trim().starts_with("sha256:") && !o.contains("Step"),
        "{o}"
    );
    assert_eq!(std::fs::read_to_string(&iid).unwrap().trim(), o.trim());
    // A failing RUN: the step shown, the exit code returned, nothing tagged.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo before-failing && exit 3\nCMD x\n"),
    )
    .unwrap();
    let o = docker_in(&d, &ctx, &["build", "-t", "dcli:bad", "."]);
    assert_eq!(code(&o), 3, "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("Step 2/3 : RUN echo before-failing && exit 3"),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("before-failing"), "{}", out(&o));
    assert!(
        err(&o).contains("returned a non-zero code: 3"),
        "{}",
        err(&o)
    );
    let o = berth_in(&d, &ctx, &["build", "-t", "dcli:bad", "."]);
    assert_eq!(code(&o), 3, "{}{}", out(&o), err(&o));
    assert!(!tags(&d).contains("dcli:bad"), "{}", tags(&d));
    assert_nothing_left(&d);
}

#[test]
fn docker_py_builds_an_image() {
    let d = Daemon::start();
    let ctx = context(
        &d,
        "py",
        &[
            (
                "Dockerfile",
                &format!("FROM {IMAGE}\nARG V\nCOPY f /f\nRUN echo \"$V\" >> /f\n"),
            ),
            ("f", "from-context\n"),
        ],
    );
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="py:1", buildargs={"V": "from-py"}, rm=True)
print("tags", img.tags)
print(c.containers.run("py:1", ["cat", "/f"], remove=True).decode(), end="")
try:
    c.images.build(path=sys.argv[2], dockerfile="Missing.Dockerfile")
except docker.errors.APIError as e:
    print("missing:", "Cannot locate specified Dockerfile" in str(e))
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(&d.socket).arg(&ctx);
    let o = run_cmd(cmd, None, 120);
    let text = ok(&o);
    assert!(text.contains("tags ['py:1']"), "{text}");
    assert!(text.contains("from-context\nfrom-py\n"), "{text}");
    assert!(text.contains("missing: True"), "{text}");
}

#[test]
fn built_image_round_trips_through_save_and_podman_load() {
    let d = Daemon::start();
    let ctx = context(
        &d,
        "save",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nRUN echo saved > /saved\nLABEL round=trip\nCMD [\"cat\", \"/saved\"]\n"),
        )],
    );
    ok(&berth_in(&d, &ctx, &["build", "-t", "rt:1", "."]));
    let tar = d.dir.join("rt.tar");
    d.docker_ok(&["save", "-o", tar.to_str().unwrap(), "rt:1"]);
    // podman, with storage of its own, reads it.
    let pod = d.dir.join("podman");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(pod.join("root"))
            .arg("--runroot")
            .arg(pod.join("run"))
            .arg("--tmpdir")
            .arg(pod.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(args);
        run_cmd(c, None, 120)
    };
    let o = podman(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        ok(&o).contains("rt:1") || err(&o).contains("rt:1"),
        "{}{}",
        out(&o),
        err(&o)
    );
    let o = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Labels.round}} {{.Config.Cmd}}",
        "localhost/rt:1",
    ]);
    let o = if o.status.success() {
        o
    } else {
        podman(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.Labels.round}} {{.Config.Cmd}}",
            "rt:1",
        ])
    };
    assert_eq!(ok(&o).trim(), "trip [cat /saved]");
    let _ = podman(&["rmi", "-a", "-f"]);
    // And back into berth after the image is gone.
    d.docker_ok(&["rmi", "rt:1"]);
    d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(d.docker_ok(&["run", "--rm", "rt:1"]), "saved");
}

#[test]
fn bad_inputs_fail_clearly_and_tag_nothing() {
    let d = Daemon::start();
    let ctx = context(&d, "bad", &[("here.txt", "x")]);
    std::os::unix::fs::symlink("/etc", ctx.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../..", ctx.join("up")).unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "FROM busybox:e2e\nFOO bar\n",
            "Dockerfile parse error line 2, column 1: unknown instruction: FOO",
            &[],
        ),
        (
            "FROM busybox:e2e\nENV A=\"unterminated\n",
            "Dockerfile parse error line 2, column 7: unexpected end of statement while looking for matching double-quote",
            &[],
        ),
        (
            "FROM busybox:e2e\nRUN echo \\\n  ok\nCOPY ${X /y\n",
            "line 4, column 6: missing '}'",
            &[],
        ),
        (
            "FROM busybox:e2e\nCOPY missing.txt /x\n",
            "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist",
            &[],
        ),
        (
            "FROM busybox:e2e\nCOPY *.nothing /x/\n",
            "no source files were specified",
            &[],
        ),
        (
            "FROM busybox:e2e\nCOPY evil/passwd /x\n",
            "evil is a symlink to /etc, which leads out of the build context",
            &[],
        ),
        (
            "FROM busybox:e2e\nCOPY up/etc/passwd /x\n",
            "up is a symlink to ../../.., which leads out of the build context",
            &[],
        ),
        (
            "FROM busybox:e2e\nCOPY ../outside /x\n",
            "forbidden path outside the build context",
            &[],
        ),
        (
            "FROM busybox:e2e AS one\nRUN true\n",
            "failed to reach build target two in Dockerfile",
            &["--target", "two"],
        ),
        (
            "FROM busybox:e2e\nUSER ghost\nRUN true\n",
            "unable to find user ghost",
            &[],
        ),
        (
            "FROM busybox:e2e\nRUN echo one && exit 7\nCMD x\n",
            "The command '/bin/sh -c echo one && exit 7' returned a non-zero code: 7",
            &[],
        ),
    ];
    let fails = |df: &str, want: &str, extra: &[&str]| {
        std::fs::write(ctx.join("Dockerfile"), df).unwrap();
        let mut args = vec!["build", "-t", "bad:1"];
        args.extend_from_slice(extra);
        args.push(".");
        let o = berth_in(&d, &ctx, &args);
        assert_ne!(code(&o), 0, "{df}: {}", out(&o));
        assert!(
            err(&o).contains(want),
            "{df}: want {want:?}, got:\n{}{}",
            out(&o),
            err(&o)
        );
        assert!(!tags(&d).contains("bad:"), "{df}: a tag was made");
    };
    // Bases that no registry has: one that is not here, and one that is but `--pull` asks
    // the registry for (a registry on the loopback: nothing leaves this machine).
    let reg = Registry::start(Auth::None, None);
    let r = &reg.host;
    d.docker_ok(&["tag", IMAGE, &format!("{r}/local:1")]);
    fails(
        &format!("FROM {r}/no-such-image:1\nRUN true\n"),
        &format!("{r}/no-such-image"),
        &[],
    );
    fails(
        &format!("FROM {r}/local:1\nRUN true\n"),
        &format!("{r}/local"),
        &["--pull"],
    );
    for (df, want, extra) in cases {
        fails(df, want, extra);
    }
    // The failing RUN: its exit code and its step.
    let o = berth_in(&d, &ctx, &["build", "-t", "bad:1", "."]);
    assert_eq!(code(&o), 7);
    assert!(
        out(&o).contains("Step 2/3 : RUN echo one && exit 7\n ---> Running in"),
        "{}",
        out(&o)
    );
    assert!(
        err(&o).contains("(step 2/3, Dockerfile line 2)"),
        "{}",
        err(&o)
    );
    // No Dockerfile at all, and an invalid tag.
    std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
    let o = berth_in(&d, &ctx, &["build", "-t", "bad:1", "."]);
    assert!(
        err(&o).contains("Cannot locate specified Dockerfile: Dockerfile"),
        "{}",
        err(&o)
    );
    let o = berth_in(&d, &ctx, &["build", "-t", "Bad:Tag!", "."]);
    assert!(err(&o).contains("invalid"), "{}", err(&o));
    assert!(!tags(&d).contains("bad"), "{}", tags(&d));
    assert_nothing_left(&d);
}

#[test]
fn context_from_stdin_networks_and_add_from_a_url() {
    let d = Daemon::start();
    // A Dockerfile alone on stdin: an empty context.
    let df = format!(
        "FROM {IMAGE}\nRUN cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort\n"
    );
    let mut c = d.berth_cmd(&["build", "--network", "none", "-t", "net:none", "-"]);
    c.current_dir(&d.dir);
    let o = run_cmd(c, Some(df.as_bytes()), 120);
    let text = ok(&o);
    assert!(text.contains("\nlo\n") && !text.contains("eth0"), "{text}");
    // The host network: the RUN sees the host's interface of its default route.
    let route = std::fs::read_to_string("/proc/net/route").unwrap();
    let uplink = route
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the host has a default route")
        .to_string();
    let mut c = d.berth_cmd(&[
        "build",
        "--no-cache",
        "--network",
        "host",
        "-t",
        "net:host",
        "-",
    ]);
    c.current_dir(&d.dir);
    let o = run_cmd(c, Some(df.as_bytes()), 120);
    assert!(
        ok(&o).lines().any(|l| l == uplink),
        "host network: the RUN did not see {uplink}:\n{}",
        out(&o)
    );
    // ADD of a URL on the loopback (the daemon fetches it).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let body = "downloaded\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let ctx = context(
        &d,
        "url",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nADD http://127.0.0.1:{port}/dl/file.txt /dl/\n"),
        )],
    );
    let iid = d.dir.join("iid");
    let o = ok(&berth_in(
        &d,
        &ctx,
        &["build", "-q", "--iidfile", iid.to_str().unwrap(), "."],
    ));
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(o.trim(), id.trim());
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            id.trim(),
            "sh",
            "-c",
            "cat /dl/file.txt; stat -c '%a %Y' /dl/file.txt"
        ]),
        "downloaded\n600 784111777"
    );
    // The second build downloads again and, the bytes being the same, hits the cache.
    let o = ok(&berth_in(&d, &ctx, &["build", "."]));
    assert_eq!(cache_by_step(&o), [false, true], "{o}");
    server.join().unwrap();
    // A context tar on stdin.
    let tar = tar_of(&ctx);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY Dockerfile /\n"),
    )
    .unwrap();
    let tar2 = tar_of(&ctx);
    assert_ne!(tar, tar2);
    let mut c = d.berth_cmd(&["build", "-t", "fromtar:1", "-"]);
    c.current_dir(&d.dir);
    ok(&run_cmd(c, Some(&tar2), 120));
    assert_eq!(
        d.docker_ok(&["run", "--rm", "fromtar:1", "head", "-1", "/Dockerfile"]),
        format!("FROM {IMAGE}")
    );
    assert_nothing_left(&d);
}

#[test]
fn run_output_streams_while_the_step_runs() {
    let d = Daemon::start();
    let ctx = context(
        &d,
        "stream",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nRUN echo first-line && sleep 2 && echo second-line\n"),
        )],
    );
    let (mut child, lines) = spawn_build(&d, &ctx);
    let start = Instant::now();
    let mut seen = Vec::new();
    for l in lines {
        let l = l.unwrap();
        if l == "first-line" || l == "second-line" {
            seen.push((l, start.elapsed()));
        }
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[1].1 - seen[0].1 >= Duration::from_millis(1500),
        "the first line came with the second, not as it was printed: {seen:?}"
    );
}

#[test]
fn lint_and_analyze_report_hygiene() {
    let d = Daemon::start();
    // A Dockerfile with apt-get, linted without being built (no network from the test).
    let apt = d.dir.join("apt.Dockerfile");
    std::fs::write(
        &apt,
        "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\nCMD [\"curl\"]\n",
    )
    .unwrap();
    let o = d.berth(&["image", "lint", apt.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "warnings make lint fail: {}", out(&o));
    let text = out(&o);
    for rule in [
        "from-no-digest",
        "apt-update-alone",
        "apt-lists-left",
        "runs-as-root",
    ] {
        assert!(text.contains(rule), "{rule} missing:\n{text}");
    }
    assert!(
        text.contains("line 2: apt-get update in a RUN of its own"),
        "{text}"
    );
    // An image with bytes added then deleted, and a secret left in a layer.
    let big = "x".repeat(1_000_000);
    let ctx = context(
        &d,
        "hyg",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {IMAGE}\nCOPY big /big\nRUN rm /big\nCOPY id_rsa /root/.ssh/id_rsa\nRUN rm /root/.ssh/id_rsa\n"
                ),
            ),
            ("big", &big),
            ("id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n"),
        ],
    );
    let o = ok(&berth_in(&d, &ctx, &["build", "-t", "hyg:1", "."]));
    assert!(o.contains("Image hygiene: "), "{o}");
    assert!(
        o.contains("[wasted-bytes]") && o.contains("[secret-file]"),
        "{o}"
    );
    let o = d.berth(&["image", "lint", "hyg:1"]);
    assert_eq!(code(&o), 1);
    let text = out(&o);
    assert!(
        text.contains("wasted-bytes") && text.contains("1MB wasted"),
        "{text}"
    );
    assert!(
        text.contains("secret-looking file /root/.ssh/id_rsa (an SSH private key)")
            && text.contains("deleted later, but that layer still carries it"),
        "{text}"
    );
    assert!(text.contains("runs-as-root"), "{text}");
    let o = d.berth_ok(&["image", "analyze", "hyg:1"]);
    assert!(o.contains("Wasted:      1MB"), "{o}");
    assert!(
        o.contains("Layer 1: COPY big /big\n  A       1MB  /big"),
        "{o}"
    );
    assert!(
        o.contains("Layer 2: RUN /bin/sh -c rm /big\n  D       1MB  /big"),
        "{o}"
    );
    assert!(
        o.contains("1MB  /big  (added in layer 1, deleted in layer 2)"),
        "{o}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&d.berth_ok(&["image", "analyze", "--format", "json", "hyg:1"]))
            .unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 5);
    assert_eq!(v["Layers"][1]["WastedBytes"], 1_000_000);
    assert_eq!(v["WastedBytes"], 1_000_000 + 39);
    // The same through the API (any client can ask).
    let (st, v) = d.api_json("GET", "/berth/images/hyg:1/lint", None);
    assert_eq!(st, 200);
    assert!(v["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["Rule"] == "secret-file"));
    let (st, _) = d.api_json("GET", "/berth/images/nosuch:1/analyze", None);
    assert_eq!(st, 404);
}

#[test]
fn a_cancelled_build_and_a_killed_daemon_leave_nothing() {
    let mut d = Daemon::start();
    let ctx = context(
        &d,
        "cancel",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nRUN echo started && sleep 60\n"),
        )],
    );
    let rt = d.exec_root.join("build-runtime");
    let running = |rt: &Path| {
        std::fs::read_dir(rt)
            .map(|r| r.flatten().count())
            .unwrap_or(0)
    };
    // The client goes away while the RUN runs: the container is killed and removed.
    let (mut child, mut lines) = spawn_build(&d, &ctx);
    assert!(lines.any(|l| l.unwrap() == "started"));
    assert_eq!(running(&rt), 1, "the RUN container is there while it runs");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (running(&rt) > 0 || d.root.join("builds").read_dir().unwrap().count() > 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_nothing_left(&d);
    // The daemon is killed mid-RUN: the sandbox ends the container, and the next daemon
    // removes the mounts and files the dead one left.
    let (mut child, mut lines) = spawn_build(&d, &ctx);
    assert!(lines.any(|l| l.unwrap() == "started"));
    d.kill_daemon();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(&rt) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(running(&rt), 0, "the RUN container outlived its daemon");
    d.spawn();
    assert_nothing_left(&d);
    assert!(!tags(&d).contains("cancel"));
}

#[test]
fn from_an_image_in_a_registry_pulls_it_and_pull_refreshes_a_changed_tag() {
    let reg = Registry::start(Auth::None, None);
    let d = Daemon::start();
    let r = &reg.host;
    let base = format!("{r}/base:latest");
    d.commit_layer("echo v1 > /base.txt", &base);
    d.docker_ok(&["push", &base]);
    let v1 = d.inspect("{{.Id}}", &base);
    d.docker_ok(&["rmi", &base]);
    let ctx = context(
        &d,
        "from-registry",
        &[(
            "Dockerfile",
            &format!("FROM {r}/base\nRUN cp /base.txt /seen.txt\n"),
        )],
    );
    // The base is pulled inside the FROM step, its progress shown as docker pull shows it.
    let o = ok(&berth_in(&d, &ctx, &["build", "-t", "frombase:1", "."]));
    let downloaded = format!("Status: Downloaded newer image for {r}/base:latest");
    for want in [
        &format!("Step 1/2 : FROM {r}/base\n"),
        "latest: Pulling from base\n",
        ": Pull complete\n",
        "Digest: sha256:",
        &downloaded,
    ] {
        assert!(o.contains(want), "{want:?} missing from:\n{o}");
    }
    assert_eq!(
        d.docker_ok(&["run", "--rm", "frombase:1", "cat", "/seen.txt"]),
        "v1"
    );
    assert_eq!(
        d.inspect("{{.Id}}", &base),
        v1,
        "the pulled base is the pushed one"
    );

    // The tag moves on in the registry; here it stays v1 until a build asks for --pull.
    d.commit_layer("echo v2 > /base.txt", &base);
    d.docker_ok(&["push", &base]);
    d.docker_ok(&["tag", &v1, &base]);
    let o = ok(&berth_in(&d, &ctx, &["build", "-t", "frombase:2", "."]));
    assert!(!o.contains("Pulling from"), "{o}");
    assert_eq!(cache_by_step(&o), [false, true], "{o}");
    // The docker CLI's classic builder with --pull: the new base, and the RUN again on it.
    let o = ok(&docker_in(
        &d,
        &ctx,
        &["build", "--pull", "-t", "frombase:3", "."],
    ));
    assert!(
        o.contains("latest: Pulling from base") && o.contains(&downloaded),
        "{o}"
    );
    assert_eq!(cache_by_step(&o), [false, false], "{o}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "frombase:3", "cat", "/seen.txt"]),
        "v2"
    );
    // Pulling again finds the base up to date, and the RUN is cached.
    let o = ok(&berth_in(
        &d,
        &ctx,
        &["build", "--pull", "-t", "frombase:3", "."],
    ));
    assert!(
        o.contains(&format!("Status: Image is up to date for {r}/base:latest")),
        "{o}"
    );
    assert_eq!(cache_by_step(&o), [false, true], "{o}");

    // COPY --from an image that is not here pulls it as FROM does.
    let other = format!("{r}/other:1");
    d.commit_layer("echo other > /other.txt", &other);
    d.docker_ok(&["push", &other]);
    d.docker_ok(&["rmi", &other]);
    let ctx2 = context(
        &d,
        "copy-from-registry",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nCOPY --from={other} /other.txt /\n"),
        )],
    );
    let o = ok(&berth_in(&d, &ctx2, &["build", "-t", "copyfrom:1", "."]));
    assert!(
        o.contains(&format!("Status: Downloaded newer image for {other}")),
        "{o}"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "copyfrom:1", "cat", "/other.txt"]),
        "other"
    );

    // A base the registry does not have: the build fails naming it, and tags nothing.
    build_fails(
        &d,
        "nobase:1",
        &format!("FROM {r}/nothing:1\nRUN true\n"),
        &[],
        &[&format!("{r}/nothing"), "not found"],
    );
    assert_nothing_left(&d);
}

#[test]
fn a_private_base_is_pulled_with_the_clients_stored_login() {
    let reg = Registry::start(Auth::Htpasswd, None);
    let d = Daemon::start();
    let r = &reg.host;
    let login = d.docker_in(
        &["login", r, "-u", USER, "--password-stdin"],
        PASSWORD.as_bytes(),
    );
    assert!(login.status.success(), "{}", err(&login));
    let base = format!("{r}/priv:1");
    d.commit_layer("echo private > /p.txt", &base);
    d.docker_ok(&["push", &base]);
    d.docker_ok(&["rmi", &base]);
    let ctx = context(
        &d,
        "private",
        &[("Dockerfile", &format!("FROM {base}\nRUN cat /p.txt\n"))],
    );
    // The docker CLI sends its logins in X-Registry-Config; so does the berth CLI.
    let o = ok(&docker_in(&d, &ctx, &["build", "-t", "priv:a", "."]));
    assert!(
        o.contains(&format!("Status: Downloaded newer image for {base}")),
        "{o}"
    );
    assert!(o.contains("\nprivate\n"), "{o}");
    d.docker_ok(&["rmi", "priv:a", &base]);
    let o = ok(&berth_in(
        &d,
        &ctx,
        &["build", "--no-cache", "-t", "priv:b", "."],
    ));
    assert!(o.contains("\nprivate\n"), "{o}");
    d.docker_ok(&["rmi", "priv:b", &base]);
    // docker-py sends the logins of its config file the same way.
    let script = format!(
        "import docker,sys\nc=docker.DockerClient(base_url='unix://{}')\nimg,_=c.images.build(path='{}',tag='priv:c')\nprint(c.containers.run('priv:c',['cat','/p.txt'],remove=True).decode().strip())\n",
        d.socket.display(),
        ctx.display()
    );
    let mut py = Command::new("python3");
    py.args(["-c", &script])
        .env("DOCKER_CONFIG", d.dir.join("docker-config"));
    let o = run_cmd(py, None, 120);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert_eq!(out(&o).trim(), "private");
    d.docker_ok(&["rmi", "priv:c", &base]);
    // Without the login the registry refuses the pull: a clear failure, nothing tagged.
    let mut c = d.berth_cmd(&["build", "-t", "priv:d", "."]);
    c.current_dir(&ctx)
        .env("DOCKER_CONFIG", d.dir.join("no-logins"));
    let o = run_cmd(c, None, 120);
    assert_ne!(code(&o), 0);
    let text = format!("{}{}", out(&o), err(&o));
    assert!(
        text.contains(&format!("pull access denied for {r}/priv")),
        "{text}"
    );
    assert!(!tags(&d).contains("priv:d"), "{}", tags(&d));
    // A malformed X-Registry-Config is dockerd's 400, before anything is built.
    let mut sock = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    write!(
        sock,
        "POST /v1.47/build?t=priv:e HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/x-tar\r\nX-Registry-Config: !!!\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("invalid X-Registry-Config header"),
        "{answer}"
    );
    assert_nothing_left(&d);
}

#[test]
fn run_steps_reach_containers_on_the_default_bridge_and_on_a_named_network() {
    let d = Daemon::start();
    // A server on the default bridge, found by its address.
    // A container NAME (on `network`) answers hello-from-NAME on port 8080.
    let serve = |name: &str, network: &[&str]| {
        let mut args = vec!["run", "-d", "--init", "--name", name, "--hostname", name];
        args.extend_from_slice(network);
        args.extend([
            IMAGE,
            "sh",
            "-c",
            "while true; do echo hello-from-$(hostname) | nc -l -p 8080; done",
        ]);
        d.docker_ok(&args);
    };
    serve("web", &[]);
    let web_ip = d.inspect("{{.NetworkSettings.IPAddress}}", "web");
    let df = format!(
        "FROM {IMAGE}\nARG WEB\nRUN for i in $(seq 1 50); do nc -w 3 $WEB 8080 > /got.txt && test -s /got.txt && break; sleep 0.1; done; cat /got.txt; ip -4 -o addr show eth0; ip route\n"
    );
    let ctx = context(&d, "bridge-run", &[("Dockerfile", &df)]);
    let o = ok(&berth_in(
        &d,
        &ctx,
        &[
            "build",
            "--build-arg",
            &format!("WEB={web_ip}"),
            "-t",
            "net:bridge",
            ".",
        ],
    ));
    assert!(o.contains("hello-from-web"), "{o}");
    // Its address is on the default bridge's subnet, its route through the gateway.
    let subnet = d.bridge_subnet();
    let prefix = subnet.rsplit_once('.').unwrap().0;
    assert!(o.contains(&format!("inet {prefix}.")), "{o}");
    assert!(o.contains(&format!("default via {prefix}.1")), "{o}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "net:bridge", "cat", "/got.txt"]),
        "hello-from-web"
    );
    assert_no_build_network_left(&d);

    // A user-defined network: its containers by name through the embedded DNS server.
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "buildnet"]);
    serve("api", &["--network", "buildnet"]);
    let df = format!(
        "FROM {IMAGE}\nRUN for i in $(seq 1 50); do nc -w 3 api 8080 > /got.txt && test -s /got.txt && break; sleep 0.1; done; cat /got.txt; cat /etc/resolv.conf\n"
    );
    let ctx = context(&d, "named-run", &[("Dockerfile", &df)]);
    // The docker CLI's --network, which docker accepts for a network's name.
    let o = ok(&docker_in(
        &d,
        &ctx,
        &["build", "--network", "buildnet", "-t", "net:named", "."],
    ));
    assert!(o.contains("hello-from-api"), "{o}");
    assert!(o.contains("nameserver 127.0.0.11"), "{o}");
    assert_no_build_network_left(&d);

    // A network that does not exist: dockerd's 404 before anything runs.
    build_fails(
        &d,
        "net:bad",
        &df,
        &["--network", "nosuch"],
        &["network nosuch not found"],
    );
    assert_nothing_left(&d);
}

#[test]
fn add_of_an_https_url_trusts_the_ca_of_the_certs_dir() {
    let server = TlsFileServer::start();
    std::fs::create_dir_all(server.root().join("dl")).unwrap();
    let file = server.root().join("dl/data.txt");
    std::fs::write(&file, "over tls\n").unwrap();
    // Last-Modified comes from the file: 1994-11-06 08:49:37 UTC.
    let t = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let certs = server.certs_dir();
    let d = Daemon::start_with(&["--certs-dir", certs.to_str().unwrap()]);
    let url = server.url("dl/data.txt");
    let ctx = context(
        &d,
        "https",
        &[("Dockerfile", &format!("FROM {IMAGE}\nADD {url} /dl/\n"))],
    );
    ok(&berth_in(&d, &ctx, &["build", "-t", "tls:1", "."]));
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "tls:1",
            "sh",
            "-c",
            "cat /dl/data.txt; stat -c '%a %Y' /dl/data.txt"
        ]),
        "over tls\n600 784111777"
    );
    // --checksum is checked against what came; a missing file is the server's status.
    let zero = "0".repeat(64);
    build_fails(
        &d,
        "tls:sum",
        &format!("FROM {IMAGE}\nADD --checksum=sha256:{zero} {url} /dl/\n"),
        &[],
        &["checksum mismatch"],
    );
    let missing = server.url("dl/missing.txt");
    build_fails(
        &d,
        "tls:404",
        &format!("FROM {IMAGE}\nADD {missing} /dl/\n"),
        &[],
        &[&format!("ADD failed: {missing}: HTTP status 404 Not Found")],
    );
    // A daemon that does not trust the CA refuses the server's certificate.
    let bare = Daemon::start_with(&["--certs-dir", d.dir.join("no-certs").to_str().unwrap()]);
    build_fails(
        &bare,
        "tls:untrusted",
        &format!("FROM {IMAGE}\nADD {url} /dl/\n"),
        &[],
        &[&format!("ADD failed: {url}"), "certificate"],
    );
    assert_nothing_left(&d);
    assert_nothing_left(&bare);
}
