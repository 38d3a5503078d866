//! A network namespace of a test's own, for what must not be able to leave this machine (a
//! pull that falls back to Docker Hub): only loopback is up, so there is no route anywhere
//! else, and programs started with [`Netns::wrapper`] see a resolv.conf naming a server on
//! that loopback where nothing listens, so no name resolves and no query goes out. Removed on
//! drop (with its resolv.conf), also on panic.
#![allow(dead_code, clippy::unwrap_used)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::unique;

pub struct Netns {
    pub name: String,
    dir: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique("bns");
        let dir = PathBuf::from("/tmp").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let ns = Netns { name, dir };
        ns.ip(&["netns", "add", &ns.name]);
        ns.ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        // The only server named is on the namespace's own loopback, where nothing listens:
        // a lookup is refused at once (ICMP port unreachable), it never waits on a time-out.
        std::fs::write(
            ns.dir.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        )
        .unwrap();
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// The namespace's routes (IPv4 and IPv6), one per line.
    pub fn routes(&self) -> String {
        self.ip(&["-n", &self.name, "-4", "route", "show", "table", "all"])
            + &self.ip(&["-n", &self.name, "-6", "route", "show", "table", "all"])
    }

    /// The namespace's links, one per line (`ip -o link`).
    pub fn links(&self) -> String {
        self.ip(&["-n", &self.name, "-o", "link", "show"])
    }

    /// The words that run a program in the namespace: `nsenter --net` (only the network
    /// namespace changes; not `ip netns exec`, which mounts a fresh /sys and would hide the
    /// cgroup hierarchies from a daemon), then a mount namespace of its own where this
    /// namespace's resolv.conf is bound over /etc/resolv.conf. Its mounts are slaves of the
    /// host's, so what the host unmounts later is not kept alive there. `nsenter`,
    /// `unshare` and the shell each exec the next, so the pid of the spawned command is the
    /// program's.
    pub fn wrapper(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--net={}", self.path().display()),
            "unshare".into(),
            "--mount".into(),
            "--propagation".into(),
            "slave".into(),
            "/bin/sh".into(),
            "-c".into(),
            r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#.into(),
            self.dir.join("resolv.conf").display().to_string(),
        ]
    }

    /// `program` run in the namespace (with the private resolv.conf).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let w = self.wrapper();
        let mut c = Command::new(&w[0]);
        c.args(&w[1..]).arg(program);
        c
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` in the namespace (a
    /// thread of this process joins it for the probe; threads have their own network
    /// namespace, so the test's other threads are not affected).
    pub fn listening(&self, port: u16) -> bool {
        let path = self.path();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
