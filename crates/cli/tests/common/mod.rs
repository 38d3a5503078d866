//! Shared pieces of the end-to-end tests: a busybox bundle made offline, the berth binary run as
//! a runtime with a private state root, and cleanup that runs even when a test fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique name for this process and call: two runs on one machine never collide.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The berth binary under test: cargo's build, or the one `BERTH_TEST_BIN` names (to run the
/// same tests against another build, such as the previous release).
pub fn berth() -> PathBuf {
    std::env::var_os("BERTH_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")))
}

/// One test's world: a bundle, a state root, a container id; all removed on drop.
pub struct Sandbox {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub id: String,
    pub config: Value,
}

impl Sandbox {
    /// A bundle with a busybox rootfs and `berth runtime spec`'s config, running `args`.
    pub fn new(args: &[&str]) -> Sandbox {
        let name = unique("berth-test");
        let dir = std::env::temp_dir().join(&name);
        let bundle = dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        make_busybox_rootfs(&rootfs);
        let root = PathBuf::from("/run").join(&name);
        let out = output_within(
            Command::new(berth())
                .args(["runtime", "spec", "--bundle"])
                .arg(&bundle),
            RUNTIME_LIMIT,
        );
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        let id = unique("c");
        // A cgroup of its own per test, under one parent that the test run removes.
        config["linux"]["cgroupsPath"] = json!(format!("/berth-test/{id}"));
        let sb = Sandbox {
            dir,
            bundle,
            root,
            id,
            config,
        };
        sb.save();
        sb
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    /// Takes the namespace of type `typ` out of the config (saved by [`Sandbox::save`]).
    pub fn without_namespace(&mut self, typ: &str) {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != typ);
    }

    /// Puts the `sysprobe` helper (common/sysprobe.c) at /bin/sysprobe in the rootfs.
    pub fn with_sysprobe(&self) {
        std::fs::copy(sysprobe(), self.rootfs().join("bin/sysprobe")).unwrap();
    }

    /// Writes the (modified) config back to the bundle.
    pub fn save(&self) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// `berth runtime --root ROOT ARGS...`
    pub fn runtime(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(berth());
        cmd.arg("runtime").arg("--root").arg(&self.root).args(args);
        cmd
    }

    /// Runs a runtime command to completion, capturing its output; a command that hangs fails
    /// the test after [`RUNTIME_LIMIT`] instead of stalling the suite.
    pub fn rt(&self, args: &[&str]) -> Output {
        output_within(self.runtime(args).stdin(Stdio::null()), RUNTIME_LIMIT)
    }

    /// `run` of this sandbox's container, in the foreground.
    pub fn run(&self) -> Output {
        let bundle = self.bundle.to_str().unwrap().to_owned();
        self.rt(&["run", "--bundle", &bundle, &self.id])
    }

    /// `create`: the container's init keeps the stdio it inherits, so they are files here
    /// (a pipe would stay open for the container's whole life). Its output lands in
    /// `container.out`/`container.err` in the sandbox.
    pub fn create(&self) -> Output {
        let bundle = self.bundle.to_str().unwrap().to_owned();
        let out = std::fs::File::create(self.dir.join("container.out")).unwrap();
        let err_path = self.dir.join("container.err");
        let err = std::fs::File::create(&err_path).unwrap();
        let done = run_within(
            self.runtime(&["create", "--bundle", &bundle, &self.id])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
            RUNTIME_LIMIT,
        );
        Output {
            status: done.status,
            stdout: Vec::new(),
            stderr: std::fs::read(&err_path).unwrap(),
        }
    }

    pub fn status(&self) -> String {
        let out = self.rt(&["state", &self.id]);
        assert!(out.status.success(), "state: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_owned()
    }

    pub fn state(&self) -> Value {
        let out = self.rt(&["state", &self.id]);
        assert!(out.status.success(), "state: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits (bounded) until the container reaches `status`.
    pub fn wait_status(&self, status: &str) {
        for _ in 0..500 {
            if self.status() == status {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container {} never became {status}", self.id);
    }

    /// The container's cgroup on the host: in the controller's own hierarchy on v1, in the
    /// unified one on v2.
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        let dir = PathBuf::from("/sys/fs/cgroup");
        let dir = if cgroup_v2() {
            dir
        } else {
            dir.join(controller)
        };
        dir.join(format!("berth-test/{}", self.id))
    }

    /// One of the container's cgroup files on the host: `v1` or `v2` by the host's version.
    pub fn cgroup_file(&self, controller: &str, v1: &str, v2: &str) -> PathBuf {
        let file = if cgroup_v2() { v2 } else { v1 };
        self.cgroup_dir(controller).join(file)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.rt(&["delete", "--force", &self.id]);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir(&self.root);
        // The shared parent cgroup goes when its last test's container is gone.
        // Every hierarchy this host mounts (hugetlb may be v1 or v2), and a pure-v2 root.
        let _ = std::fs::remove_dir("/sys/fs/cgroup/berth-test");
        for entry in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(entry.path().join("berth-test"));
        }
    }
}

/// The `sysprobe` helper, built once per test run with gcc -static (libc6-dev and gcc come from
/// scripts/install-deps.sh): it makes the raw syscalls busybox cannot.
pub fn sysprobe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/sysprobe.c");
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let target = dir.join("sysprobe");
            let fresh = |t: &Path| {
                let (Ok(built), Ok(src)) = (std::fs::metadata(t), std::fs::metadata(&source))
                else {
                    return false;
                };
                built.modified().ok() >= src.modified().ok()
            };
            if !fresh(&target) {
                // Built under a name of our own, then renamed: concurrent test binaries never
                // run a half-written file.
                let tmp = dir.join(unique("sysprobe"));
                let out = output_within(
                    Command::new("gcc")
                        .args(["-static", "-O1", "-o"])
                        .arg(&tmp)
                        .arg(&source),
                    Duration::from_secs(120),
                );
                assert!(
                    out.status.success(),
                    "gcc -static sysprobe.c (scripts/install-deps.sh installs gcc and libc6-dev): {}",
                    stderr(&out)
                );
                std::fs::rename(&tmp, &target).unwrap();
            }
            target
        })
        .clone()
}

/// The longest a runtime command may take in a test (the machine may be loaded): past it the
/// test fails rather than hangs.
pub const RUNTIME_LIMIT: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion, stdout and stderr captured, killing it and failing the test if it
/// takes longer than `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    run_within(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()), limit)
}

/// Like [`output_within`], with the stdio the caller gave `cmd`.
pub fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    wait_within(child, limit, &what)
}

/// Waits for `child` (its piped output collected) at most `limit`, then kills it and panics.
pub fn wait_within(child: std::process::Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{what} did not finish within {limit:?}: killed (a hang)");
        }
    }
}

/// Runs `cmd` with the slave of a fresh pty as its controlling terminal and stdio (runc needs
/// one to run a terminal container in the foreground without a console socket); what it wrote
/// there comes back as stdout. Fails the test past `limit`.
pub fn on_pty(mut cmd: Command, limit: Duration) -> Output {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).unwrap();
    let raw = pty.slave.as_raw_fd();
    for fd in 0..3 {
        let stdio = Stdio::from(nix::unistd::dup(&pty.slave).unwrap());
        match fd {
            0 => cmd.stdin(stdio),
            1 => cmd.stdout(stdio),
            _ => cmd.stderr(stdio),
        };
    }
    // SAFETY: between fork and exec: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::ioctl(raw, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let what = format!("{cmd:?} on a terminal");
    let child = cmd.spawn().unwrap();
    // Our copies of the slave must go, or the master never reports the end (EIO).
    drop(cmd);
    drop(pty.slave);
    let (tx, rx) = std::sync::mpsc::channel();
    let master = pty.master;
    std::thread::spawn(move || {
        let mut text = Vec::new();
        // EIO once every holder of the slave is gone ends the read.
        let _ = std::fs::File::from(master).read_to_end(&mut text);
        let _ = tx.send(text);
    });
    let mut out = wait_within(child, limit, &what);
    out.stdout = rx.recv_timeout(limit).unwrap_or_default();
    out
}

/// Whether this host runs cgroup v2 alone (the `device` machine) rather than v1 or hybrid.
pub fn cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// The same file as seen inside a container that mounts its cgroups at /sys/fs/cgroup.
pub fn cgroup_file_inside(controller: &str, v1: &str, v2: &str) -> String {
    if cgroup_v2() {
        format!("/sys/fs/cgroup/{v2}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{v1}")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A root filesystem from Debian's busybox-static: the binary, a link per applet, and the
/// few files a shell expects.
pub fn make_busybox_rootfs(rootfs: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "busybox-static is not installed (scripts/install-deps.sh installs it)"
    );
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}
pub mod containerd;
pub mod cri;
pub mod dockerd;
pub mod engine;
pub mod netns;
pub mod registry;
pub mod remap;
