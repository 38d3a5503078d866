//! Debian's dockerd 20.10 as the reference the Engine API is compared with: a private
//! daemon per test (its own data root, exec root, socket, pid file, cgroup parent, a bridge
//! of its own, no iptables, no ip_forward change, its own managed containerd), and a Drop
//! that leaves nothing behind — containers, shims, mounts, cgroups, the bridge, and what
//! dockerd writes outside its flags that was not there before.
#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::engine::{stop_child, try_api_on, unmount_under, wait_for_ping};
use super::unique;

/// Where Debian's docker.io puts dockerd (scripts/install-deps.sh installs it).
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// Paths outside its flags that dockerd 20.10 and its containerd write to (the trust key,
/// plugin sockets, shim sockets), children before parents.
const HOST_PATHS: &[&str] = &[
    "/etc/docker/key.json",
    "/etc/docker",
    "/run/docker/plugins",
    "/run/docker",
    "/run/containerd/s",
    "/run/containerd",
];

/// A running dockerd.
pub struct Dockerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// Its default bridge (made by the test: `-b`), with `subnet`.
    pub bridge: String,
    pub subnet: String,
    cgroup_parent: String,
    child: Option<Child>,
    started: SystemTime,
    /// Of `HOST_PATHS`, those that were not there before this daemon started.
    new_host_paths: Vec<PathBuf>,
}

impl Dockerd {
    /// Starts dockerd and waits until it answers `/_ping`.
    pub fn start() -> Dockerd {
        assert!(
            Path::new(DOCKERD).exists(),
            "dockerd is missing: scripts/install-deps.sh installs Debian's docker.io"
        );
        // Short: containerd's socket under the exec root must fit a socket path's 108 bytes.
        let name = unique("dd");
        let dir = PathBuf::from("/tmp").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let pid = std::process::id();
        let n = name.rsplit('-').next().unwrap_or("0").to_owned();
        let bridge = format!("dd{pid:x}x{n}");
        let subnet = free_subnet(pid);
        let new_host_paths = HOST_PATHS
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        ip(&["link", "add", "name", &bridge, "type", "bridge"]);
        let mut d = Dockerd {
            socket: dir.join("d.sock"),
            cgroup_parent: format!("/{name}"),
            bridge: bridge.clone(),
            subnet: subnet.clone(),
            dir,
            child: None,
            started: SystemTime::now(),
            new_host_paths,
        };
        let gateway = subnet.replace(".0/24", ".1/24");
        ip(&["addr", "add", &gateway, "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        std::fs::write(d.dir.join("daemon.json"), "{}\n").unwrap();
        let log = std::fs::File::create(d.dir.join("dockerd.log")).unwrap();
        let child = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(d.dir.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", d.socket.display()))
            .arg("--data-root")
            .arg(d.dir.join("data"))
            .arg("--exec-root")
            .arg(d.dir.join("run"))
            .arg("--pidfile")
            .arg(d.dir.join("dockerd.pid"))
            .args(["-b", &bridge])
            .args(["--iptables=false", "--ip6tables=false", "--ip-masq=false"])
            .args(["--ip-forward=false", "--userland-proxy=false"])
            .args(["--cgroup-parent", &d.cgroup_parent])
            .args(["--default-address-pool", "base=10.126.0.0/16,size=24"])
            .args(["--dns", "127.0.0.1", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        d.child = Some(child);
        if let Err(e) = wait_for_ping(d.child.as_mut(), &d.socket, 60) {
            panic!("dockerd {e}: {}", d.log());
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    pub fn try_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<(u16, String)> {
        try_api_on(&self.socket, method, path, body)
    }

    /// Every id the list endpoint `path` returns (`Id` or, for volumes, `Name`).
    fn ids(&self, path: &str, key: &str, field: &str) -> Vec<String> {
        let Ok((200, body)) = self.try_api("GET", path, None) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let list = if key.is_empty() { &v } else { &v[key] };
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x[field].as_str().map(str::to_owned))
            .collect()
    }

    /// Processes whose command line names this daemon's directory (its containerd, shims).
    fn our_processes(&self) -> Vec<i32> {
        let me = self.dir.to_string_lossy().into_owned();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&me))
            })
            .collect()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            for id in self.ids("/containers/json?all=1", "", "Id") {
                let _ = self.try_api("DELETE", &format!("/containers/{id}?force=1&v=1"), None);
            }
            for name in self.ids("/volumes", "Volumes", "Name") {
                let _ = self.try_api("DELETE", &format!("/volumes/{name}?force=1"), None);
            }
            let nets = self.try_api("GET", "/networks", None);
            if let Ok((200, body)) = nets {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                for n in v.as_array().into_iter().flatten() {
                    let name = n["Name"].as_str().unwrap_or_default();
                    if !matches!(name, "bridge" | "host" | "none") {
                        let _ = self.try_api("DELETE", &format!("/networks/{name}"), None);
                    }
                }
            }
        }
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(20));
        }
        for pid in self.our_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        unmount_under(&self.dir);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        remove_cgroups(&self.cgroup_parent);
        remove_stale_shim_sockets(self.started);
        for p in &self.new_host_paths {
            // Only what this daemon made, and only once nothing else uses it.
            if p.is_dir() {
                let _ = std::fs::remove_dir(p);
            } else if p.file_name().is_some_and(|n| n == "key.json") {
                let _ = std::fs::remove_file(p);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A /24 of 10.127.0.0/16 that no host route covers yet.
fn free_subnet(pid: u32) -> String {
    let routes = Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let start = pid.wrapping_mul(7) % 256;
    (0..256)
        .map(|i| format!("10.127.{}.0/24", (start + i) % 256))
        .find(|s| !routes.contains(s.as_str()))
        .unwrap_or_else(|| "10.127.255.0/24".into())
}

/// The daemon's cgroup parent in every hierarchy, deepest first.
fn remove_cgroups(parent: &str) {
    let rel = parent.trim_start_matches('/');
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let top = e.path().join(rel);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = vec![top.clone()];
        let mut i = 0;
        while i < dirs.len() {
            for sub in std::fs::read_dir(&dirs[i]).into_iter().flatten().flatten() {
                if sub.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(sub.path());
                }
            }
            i += 1;
        }
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// containerd's shims leave their sockets in /run/containerd/s: those made since `since`
/// that nobody listens on any more are this daemon's.
fn remove_stale_shim_sockets(since: SystemTime) {
    for e in std::fs::read_dir("/run/containerd/s")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = e.path();
        let new = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if new && UnixStream::connect(&p).is_err() {
            let _ = std::fs::remove_file(&p);
        }
    }
}
