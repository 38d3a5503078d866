//! Shared pieces of the monitor's tests: a busybox bundle made offline, a monitor config with
//! a private runtime root, and cleanup that runs even when a test fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_monitor::{LogConfig, MonitorConfig, RestartPolicy};
use serde_json::{json, Value};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The parent cgroup of every test container, removed by the last test to finish.
pub const CGROUP_PARENT: &str = "berth-test-mon";

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// This crate's stand-in for `berth`: `monitor DIR` and `spawn CONFIG EXE`. Set
/// BERTH_MONITOR_EXE to measure another build (the release one, for its RSS).
pub fn monitor_exe() -> PathBuf {
    std::env::var_os("BERTH_MONITOR_EXE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth-monitor-test")))
}

/// One test's world: bundle, runtime root, monitor dir; all removed on drop, the container
/// and its monitor killed.
pub struct Sandbox {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub spec: Value,
    pub config: MonitorConfig,
}

impl Sandbox {
    pub fn new(args: &[&str]) -> Sandbox {
        // Short paths: the sockets live in the monitor's dir.
        let name = unique("bm");
        let dir = PathBuf::from("/tmp").join(&name);
        let bundle = dir.join("bundle");
        make_busybox_rootfs(&bundle.join("rootfs"));
        let mut spec = serde_json::to_value(berth_runtime::default_spec()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        let id = format!("{name}-c");
        spec["linux"]["cgroupsPath"] = json!(format!("/{CGROUP_PARENT}/{id}"));
        let config = MonitorConfig {
            id,
            runtime_root: PathBuf::from("/run").join(&name),
            bundle: bundle.clone(),
            dir: dir.join("mon"),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            log: LogConfig {
                disabled: false,
                path: dir.join("mon/c.log"),
                max_size: None,
                max_files: 1,
                format: Default::default(),
            },
            restart: RestartPolicy::default(),
            runtime: None,
            attachers: 0,
            exec: None,
        };
        let sb = Sandbox {
            dir,
            bundle,
            spec,
            config,
        };
        sb.save();
        sb
    }

    pub fn save(&self) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    pub fn tty(&mut self) {
        self.spec["process"]["terminal"] = json!(true);
        self.config.tty = true;
        self.save();
    }

    pub fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.config.log.path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// (stream, text) of every log entry.
    pub fn logs(&self) -> Vec<(String, String)> {
        self.log_lines()
            .iter()
            .map(|v| {
                (
                    v["stream"].as_str().unwrap().to_owned(),
                    v["log"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Waits (bounded) until the log holds `text`.
    pub fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.logs().iter().any(|(_, l)| l.contains(text)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("log never had {text:?}: {:?}", self.logs());
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let mon = &self.config.dir;
        if let Ok(state) = berth_monitor::read_state(mon) {
            if state.monitor_alive {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(state.monitor_pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        match &self.config.runtime {
            None => {
                let rt = berth_runtime::Runtime::new(&self.config.runtime_root);
                if let Ok(c) = rt.load(&self.config.id) {
                    let _ = c.delete(true);
                }
            }
            Some(bin) => {
                let _ = Command::new(bin)
                    .arg("--root")
                    .arg(&self.config.runtime_root)
                    .args(["delete", "--force", &self.config.id])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.config.runtime_root);
        let _ = std::fs::remove_dir_all(&self.dir);
        for entry in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let parent = entry.path().join(CGROUP_PARENT);
            let _ = std::fs::remove_dir(parent.join(&self.config.id));
            let _ = std::fs::remove_dir(&parent);
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(CGROUP_PARENT));
    }
}

/// Reads Docker's multiplexed frames until `want` shows up in the stream `stream`
/// (1 stdout, 2 stderr), or EOF. Returns everything read per stream.
pub fn read_frames_until(conn: &mut impl Read, stream: u8, want: &str) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    loop {
        let mut header = [0u8; 8];
        if conn.read_exact(&mut header).is_err() {
            return (out, err);
        }
        let len = u32::from_be_bytes(header[4..].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).unwrap();
        let text = String::from_utf8_lossy(&payload);
        match header[0] {
            1 => out.push_str(&text),
            2 => err.push_str(&text),
            other => panic!("bad stream {other}"),
        }
        let got = if stream == 1 { &out } else { &err };
        if got.contains(want) {
            return (out, err);
        }
    }
}

/// Reads raw bytes until `want` shows up or EOF.
pub fn read_raw_until(conn: &mut impl Read, want: &str) -> String {
    let mut all = String::new();
    let mut buf = [0u8; 1024];
    while !all.contains(want) {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    all
}

/// A field of /proc/PID/status in kB (VmRSS, RssAnon, RssFile).
pub fn status_kb(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A root filesystem from Debian's busybox-static: the binary and a link per applet.
pub fn make_busybox_rootfs(rootfs: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "busybox-static is not installed");
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
}
