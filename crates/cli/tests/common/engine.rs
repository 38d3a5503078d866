//! The engine's end-to-end harness: a private `berth daemon` per test (its own socket, root
//! and exec root under a temp dir), a busybox image imported offline, the docker CLI and the
//! berth CLI pointed at it, a small HTTP/1.1 client over the socket, and a Drop that leaves
//! nothing behind — containers, monitors, inits, mounts, cgroups, files — even when the test
//! panics.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{berth, make_busybox_rootfs, unique};

static NEXT_NET: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// An extra argument `env:KEY=VALUE` is the daemon's environment, not a flag
/// (`start_with_env`).
const ENV_ARG: &str = "env:";

/// The docker CLI the tests drive (28.x).
pub const DOCKER: &str = "/usr/local/bin/docker";
/// The image every daemon starts with.
pub const IMAGE: &str = "busybox:e2e";

/// Everything under `dir`: the API socket, the daemon's root and exec root, its log.
#[derive(Debug)]
pub struct Daemon {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    /// This daemon's default bridge, nftables table and /20 of addresses (10.128.0.0/9 split
    /// by pid and counter): daemons of parallel tests never share one.
    pub bridge: String,
    pub nft_table: String,
    block: u32,
    /// Whether `spawn` gives the daemon its default bridge's address (`--bip`); without
    /// it, the daemon finds one.
    pub bip: bool,
    child: Option<Child>,
    /// Daemon flags beyond socket and roots (`--certs-dir`, `--insecure-registry`, …).
    pub extra_args: Vec<String>,
    /// A command the daemon is run under (it must exec the daemon, keeping its pid), such
    /// as `Netns::wrapper`'s; empty for none.
    pub wrapper: Vec<String>,
    /// Every container id this daemon's tests made (filled from the daemon's own records).
    seen_ids: std::cell::RefCell<Vec<String>>,
}

impl Daemon {
    /// A daemon with the busybox image imported.
    pub fn start() -> Daemon {
        let d = Daemon::start_bare();
        d.import_busybox(IMAGE);
        d
    }

    /// A daemon started with more flags, with the busybox image imported.
    pub fn start_with(args: &[&str]) -> Daemon {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let d = Daemon::start_bare_with(&args);
        d.import_busybox(IMAGE);
        d
    }

    /// A daemon with no image.
    pub fn start_bare() -> Daemon {
        Daemon::start_bare_with(&[])
    }

    /// A daemon with no image, started with `extra` daemon flags.
    pub fn start_bare_with(extra: &[String]) -> Daemon {
        Daemon::start_bare_under(&[], extra)
    }

    /// A daemon with no image, run under `wrapper` (a command that execs it: a network
    /// namespace of the test's, …), with `extra` daemon flags.
    pub fn start_bare_under(wrapper: &[String], extra: &[String]) -> Daemon {
        let mut d = Daemon::unstarted(extra);
        d.wrapper = wrapper.to_vec();
        d.spawn();
        d
    }

    /// A daemon's names, addresses and flags, not started yet (`spawn` starts it).
    pub fn unstarted(extra: &[String]) -> Daemon {
        let name = unique("be");
        let dir = PathBuf::from("/tmp").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let n = NEXT_NET.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let pid = std::process::id();
        // 2048 blocks of /20 in 10.128.0.0/9; the daemon still skips any subnet a host route
        // (another daemon's bridge) already covers.
        let slot = (pid.wrapping_mul(37).wrapping_add(n)) % 2048;
        Daemon {
            root: dir.join("root"),
            exec_root: dir.join("run"),
            socket: dir.join("s.sock"),
            bridge: format!("bt{pid:x}x{n:x}"),
            nft_table: format!("berth_t{pid}_{n}"),
            block: u32::from(std::net::Ipv4Addr::new(10, 128, 0, 0)) + slot * 4096,
            bip: true,
            dir,
            child: None,
            extra_args: extra.to_vec(),
            wrapper: Vec::new(),
            seen_ids: Default::default(),
        }
    }

    /// Starts (again) `berth daemon` on this root and socket; waits until `/_ping` answers.
    pub fn spawn(&mut self) {
        let (env, args): (Vec<&String>, Vec<&String>) =
            self.extra_args.iter().partition(|a| a.starts_with(ENV_ARG));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .unwrap();
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(berth());
                c
            }
            None => Command::new(berth()),
        };
        let child = cmd
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--root")
            .arg(&self.root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--bridge")
            .arg(&self.bridge)
            .args(if self.bip {
                vec![
                    "--bip".to_owned(),
                    format!("{}/24", std::net::Ipv4Addr::from(self.block + 1)),
                ]
            } else {
                Vec::new()
            })
            .arg("--default-address-pool")
            .arg(format!(
                "base={}/20,size=24",
                std::net::Ipv4Addr::from(self.block)
            ))
            .arg("--nft-table")
            .arg(&self.nft_table)
            // Names the containers do not own are never sent off this machine (a test that
            // runs its own DNS server names it with `start_with(&["--dns", …])`).
            .args(if args.iter().any(|a| *a == "--dns") {
                &[][..]
            } else {
                &["--dns", "127.0.0.1"][..]
            })
            .args(args)
            .envs(
                env.iter()
                    .filter_map(|e| e[ENV_ARG.len()..].split_once('=')),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        if let Err(e) = wait_for_ping(self.child.as_mut(), &self.socket, 20) {
            panic!("berth daemon {e}: {}", self.daemon_log());
        }
    }

    /// The `i`th /24 of this daemon's block, counted from its top (the daemon's own picks
    /// come from the bottom): `10.x.y.0/24` for `network create --subnet`.
    pub fn subnet(&self, i: u32) -> String {
        format!(
            "{}/24",
            std::net::Ipv4Addr::from(self.block + (15 - i % 8) * 256)
        )
    }

    /// The default bridge's subnet.
    pub fn bridge_subnet(&self) -> String {
        format!("{}/24", std::net::Ipv4Addr::from(self.block))
    }

    /// The bridges of this daemon: its default one and those its network records name.
    pub fn bridges(&self) -> Vec<String> {
        let mut v = vec![self.bridge.clone()];
        for e in std::fs::read_dir(self.root.join("networks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(data) = std::fs::read(e.path()) else {
                continue;
            };
            if let Ok(n) = serde_json::from_slice::<Value>(&data) {
                if let Some(b) = n["bridge"].as_str().filter(|b| !b.is_empty()) {
                    if !v.iter().any(|x| x == b) {
                        v.push(b.to_owned());
                    }
                }
            }
        }
        v
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// A daemon started with more flags and environment variables (a PATH without nft, …),
    /// with the busybox image imported.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let env: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{ENV_ARG}{k}={v}"))
            .collect();
        let all: Vec<&str> = args
            .iter()
            .copied()
            .chain(env.iter().map(String::as_str))
            .collect();
        Daemon::start_with(&all)
    }

    /// SIGKILLs the daemon (containers must live on).
    pub fn kill_daemon(&mut self) {
        self.remember_ids();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the daemon and waits (at most `limit`) for it to exit; how long it took, or
    /// `None` if it was still running (then it is SIGKILLed).
    pub fn terminate_daemon(&mut self, limit: Duration) -> Option<Duration> {
        self.remember_ids();
        let mut c = self.child.take()?;
        let start = Instant::now();
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        while start.elapsed() < limit {
            if let Ok(Some(_)) = c.try_wait() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// `docker import` of a busybox rootfs made from the host's busybox-static.
    pub fn import_busybox(&self, reference: &str) {
        let out = run_cmd(
            self.docker_cmd(&["import", "-", reference]),
            Some(busybox_tar()),
            60,
        );
        assert!(out.status.success(), "import: {}", err(&out));
    }

    /// A new image `name`: busybox plus one layer that `shell` makes.
    pub fn commit_layer(&self, shell: &str, name: &str) {
        let mk = unique("mk");
        self.docker_ok(&["run", "--name", &mk, IMAGE, "sh", "-c", shell]);
        self.docker_ok(&["commit", &mk, name]);
        self.docker_ok(&["rm", &mk]);
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The docker CLI pointed at this daemon, with a private config dir.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .args(args);
        c
    }

    /// Runs the docker CLI to completion (60 s at most).
    pub fn docker(&self, args: &[&str]) -> Output {
        run_cmd(self.docker_cmd(args), None, 60)
    }

    /// Runs the docker CLI with `input` on its stdin.
    pub fn docker_in(&self, args: &[&str], input: &[u8]) -> Output {
        run_cmd(self.docker_cmd(args), Some(input), 60)
    }

    /// Runs the docker CLI and asserts success; returns its trimmed stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {}{}",
            o.status.code(),
            out(&o),
            err(&o)
        );
        out(&o).trim().to_owned()
    }

    /// The berth CLI pointed at this daemon.
    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth());
        c.env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .args(args);
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        run_cmd(self.berth_cmd(args), None, 60)
    }

    pub fn berth_ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({:?}): {}{}",
            o.status.code(),
            out(&o),
            err(&o)
        );
        out(&o).trim().to_owned()
    }

    /// One HTTP/1.1 request over the API socket: the status and the (de-chunked) body.
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
        self.try_api(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `api` that parses the body as JSON.
    pub fn api_json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (st, b) = self.api(method, path, body.map(str::as_bytes));
        let v = serde_json::from_str(&b).unwrap_or(Value::String(b));
        (st, v)
    }

    pub fn try_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<(u16, String)> {
        try_api_on(&self.socket, method, path, body)
    }

    /// `docker inspect -f FORMAT X`.
    pub fn inspect(&self, format: &str, what: &str) -> String {
        self.docker_ok(&["inspect", "-f", format, what])
    }

    /// Waits (bounded) until `docker inspect -f FORMAT X` prints `want`.
    pub fn wait_inspect(&self, format: &str, what: &str, want: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        while Instant::now() < deadline {
            let o = self.docker(&["inspect", "-f", format, what]);
            last = out(&o).trim().to_owned();
            if last == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{what}: {format} stayed {last:?}, wanted {want:?}");
    }

    /// The actions of a container's events so far, one a line, as `docker events` prints them.
    pub fn container_events(&self, container: &str) -> String {
        self.docker_ok(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            &format!("container={container}"),
            "--format",
            "{{.Action}}",
        ])
    }

    /// The ids of the containers this daemon knows (its records on disk).
    fn remember_ids(&self) {
        let mut ids = self.seen_ids.borrow_mut();
        for dir in [
            self.root.join("containers"),
            self.exec_root.join("containers"),
        ] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.len() == 64
                    && name.chars().all(|c| c.is_ascii_hexdigit())
                    && !ids.contains(&name)
                {
                    ids.push(name);
                }
            }
        }
    }

    /// The monitors and container inits recorded under the exec root.
    pub fn recorded_pids(&self) -> Vec<(String, i32, i32)> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(self.exec_root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            let Ok(bytes) = std::fs::read(e.path().join("state.json")) else {
                continue;
            };
            let Ok(st) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            v.push((
                id,
                st["monitor_pid"].as_i64().unwrap_or(0) as i32,
                st["pid"].as_i64().unwrap_or(0) as i32,
            ));
        }
        v
    }

    /// Whether a cgroup of this container exists in any hierarchy.
    pub fn cgroup_exists(id: &str) -> bool {
        cgroup_dirs(id).iter().any(|p| p.exists())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.remember_ids();
        if self.child.is_some() {
            // Everything this daemon made: force-removed through the API (volumes too).
            if let Ok((200, body)) = self.try_api("GET", "/containers/json?all=1", None) {
                if let Ok(Value::Array(list)) = serde_json::from_str::<Value>(&body) {
                    for c in list {
                        if let Some(id) = c["Id"].as_str() {
                            let _ = self.try_api(
                                "DELETE",
                                &format!("/containers/{id}?force=1&v=1"),
                                None,
                            );
                        }
                    }
                }
            }
        }
        self.remember_ids();
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
        let ids = self.seen_ids.borrow().clone();
        for (id, monitor, init) in self.recorded_pids() {
            // Only a process that is still ours: the init in this container's cgroup, the
            // monitor with a berth command line.
            if init > 0 && proc_in_cgroup(init, &id) {
                kill9(init);
            }
            if monitor > 0 && proc_is_berth_monitor(monitor) {
                kill9(monitor);
            }
        }
        // Any other process still in these containers' cgroups (exec'd ones).
        for id in &ids {
            for dir in cgroup_dirs(id) {
                for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                {
                    kill9(pid);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        // Network namespaces are bound under the exec root: unmounting them ends the veths.
        let bridges = self.bridges();
        unmount_under(&self.dir);
        for b in bridges {
            let _ = Command::new("ip")
                .args(["link", "del", &b])
                .stderr(Stdio::null())
                .status();
        }
        for family in ["ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &self.nft_table])
                .stderr(Stdio::null())
                .status();
        }
        for id in &ids {
            for dir in cgroup_dirs(id) {
                for _ in 0..50 {
                    if !dir.exists() || std::fs::remove_dir(&dir).is_ok() {
                        break;
                    }
                    // A frozen cgroup (paused container) keeps its killed tasks: thaw it.
                    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
                    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/berth/<id>` in every hierarchy this host mounts (v1 controllers, the unified one, or a
/// pure-v2 root).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/sys/fs/cgroup/berth").join(id)];
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            v.push(e.path().join("berth").join(id));
        }
    }
    v
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn proc_in_cgroup(pid: i32, id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|s| s.contains(&format!("/berth/{id}")))
        .unwrap_or(false)
}

fn proc_is_berth_monitor(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("berth") && c.contains("monitor")
        })
        .unwrap_or(false)
}

/// Unmounts (lazily, deepest first) everything mounted under `dir`.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    for _ in 0..3 {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mountinfo)
            .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        points.dedup();
        for p in points {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Waits until the daemon on `socket` answers `/_ping`; an error says why it never did (it
/// exited, or `secs` passed).
pub fn wait_for_ping(
    mut child: Option<&mut Child>,
    socket: &Path,
    secs: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok((200, _)) = try_api_on(socket, "GET", "/_ping", None) {
            return Ok(());
        }
        if let Some(Ok(Some(st))) = child.as_mut().map(|c| c.try_wait()) {
            return Err(format!("exited ({st})"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("never answered /_ping in {secs} s"))
}

/// SIGTERM to a daemon we started, SIGKILL if it has not exited within `grace`; reaped.
pub fn stop_child(c: &mut Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Runs `tests/dockerpy/SCRIPT SOCKET ARGS…` (docker-py against `d`) and asserts that it
/// succeeded and printed `done`.
pub fn run_dockerpy(d: &Daemon, script: &str, args: &[&str], done: &str) {
    let mut cmd = Command::new("python3");
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/dockerpy")
            .join(script),
    )
    .arg(&d.socket)
    .args(args);
    let o = run_cmd(cmd, None, 300);
    assert!(
        o.status.success() && out(&o).contains(done),
        "{}{}\n--- daemon log:\n{}",
        out(&o),
        err(&o),
        d.daemon_log()
    );
}

/// One request over the Engine API socket `socket` (berth's or dockerd's): status and body
/// (de-chunked).
pub fn try_api_on(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<(u16, String)> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(len.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            out.push_str(&after[..n.min(after.len())]);
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

/// A tar of a busybox rootfs (made once per test process, kept in memory).
pub fn busybox_tar() -> &'static [u8] {
    static TAR: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TAR.get_or_init(|| {
        let dir = PathBuf::from("/tmp").join(unique("be-img"));
        let rootfs = dir.join("rootfs");
        make_busybox_rootfs(&rootfs);
        let o = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg("-")
            .arg(".")
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(o.status.success(), "tar: {}", err(&o));
        o.stdout
    })
}

/// Runs `cmd` with `input` on stdin, killing it after `secs`; panics on a timeout.
pub fn run_cmd(mut cmd: Command, input: Option<&[u8]>, secs: u64) -> Output {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{desc}: {e}"));
    if let Some(data) = input {
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let pipes = Pipes::read(&mut child);
    match wait_or_kill(&mut child, Duration::from_secs(secs)) {
        Ok(status) => pipes.output(status),
        // Without waiting for the pipes: what it started may hold them open.
        Err(_) => panic!("timed out after {secs}s: {desc}"),
    }
}

/// Runs `cmd` for `secs`, then kills it and returns what it printed (for `-f` streams).
pub fn run_for(mut cmd: Command, secs: f64) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pipes = Pipes::read(&mut child);
    let status = wait_or_kill(&mut child, Duration::from_secs_f64(secs)).unwrap_or_else(|s| s);
    pipes.output(status)
}

/// A child's stdout and stderr, each read to its end on a thread of its own.
struct Pipes(
    std::thread::JoinHandle<Vec<u8>>,
    std::thread::JoinHandle<Vec<u8>>,
);

impl Pipes {
    fn read(child: &mut Child) -> Pipes {
        fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                v
            })
        }
        Pipes(
            drain(child.stdout.take().unwrap()),
            drain(child.stderr.take().unwrap()),
        )
    }

    fn output(self, status: ExitStatus) -> Output {
        Output {
            status,
            stdout: self.0.join().unwrap(),
            stderr: self.1.join().unwrap(),
        }
    }
}

/// Waits for the child to exit; past `limit` kills it and gives how it ended as `Err`.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Result<ExitStatus, ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Ok(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(child.wait().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `tests/dockerpy/SCRIPT` (docker-py from PyPI) against daemon `d` with the socket and
/// the image as its first arguments, then `args`; asserts it printed `done`.
pub fn docker_py(d: &Daemon, script: &str, args: &[&std::ffi::OsStr], done: &str) {
    let has = Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has,
        "docker-py is missing: scripts/install-deps.sh installs it (python3 -m pip install docker)"
    );
    let mut cmd = Command::new("python3");
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/dockerpy")
            .join(script),
    )
    .arg(&d.socket)
    .arg(IMAGE)
    .args(args);
    let o = run_cmd(cmd, None, 180);
    assert!(
        o.status.success() && out(&o).contains(done),
        "{}{}\n--- daemon log:\n{}",
        out(&o),
        err(&o),
        d.daemon_log()
    );
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}
