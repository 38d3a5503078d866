//! Real consumers of the runc command line driving berth: podman with `--runtime`, and a
//! console-socket listener as containerd's shim and conmon use it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{IoSliceMut, Read};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{stderr, stdout, unique, Sandbox};
use serde_json::json;

/// podman with its own storage and run dirs (nothing shared with the host's), the vfs driver
/// (no overlay mounts to leave behind), no network and the cgroupfs manager.
struct Podman {
    dir: PathBuf,
    runtime: PathBuf,
}

impl Podman {
    fn new() -> Podman {
        let dir = std::env::temp_dir().join(unique("berth-podman"));
        std::fs::create_dir_all(&dir).unwrap();
        let runtime = dir.join("berth-runtime");
        std::os::unix::fs::symlink(common::berth(), &runtime).unwrap();
        Podman { dir, runtime }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        common::output_within(cmd.stdin(Stdio::null()), Duration::from_secs(120))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f"]);
        let _ = self.cmd(&["rmi", "-a", "-f"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn podman_runs_containers_with_berth_as_its_runtime() {
    if Command::new("podman").arg("--version").output().is_err() {
        panic!("podman is not installed (scripts/install-deps.sh installs it)");
    }
    let podman = Podman::new();
    let rootfs = podman.dir.join("rootfs");
    common::make_busybox_rootfs(&rootfs);
    let tar = podman.dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let image = format!("localhost/{}", unique("bb"));
    let out = podman.cmd(&["import", tar.to_str().unwrap(), &image]);
    assert!(out.status.success(), "import: {}", stderr(&out));

    let out = podman.cmd(&["run", "--rm", "--network", "none", "--memory", "32m", &image, "sh", "-c",
        "echo hello-podman; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]);
    assert!(out.status.success(), "run: {}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["hello-podman", "33554432"]
    );

    // The exit code comes through.
    let out = podman.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // Detached, exec into it, then stop and remove: the whole lifecycle through podman.
    let out = podman.cmd(&["run", "-d", "--network", "none", &image, "sleep", "30"]);
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let out = podman.cmd(&["exec", &id, "cat", "/proc/1/comm"]);
    assert_eq!(stdout(&out).trim(), "sleep", "exec: {}", stderr(&out));
    let out = podman.cmd(&["rm", "-f", "-t", "0", &id]);
    assert!(out.status.success(), "rm: {}", stderr(&out));
}

/// runc's console-socket protocol: the runtime connects to the socket and sends the pty
/// master with SCM_RIGHTS; the process inside gets the slave as its controlling terminal.
#[test]
fn terminal_is_sent_over_the_console_socket() {
    let mut sb = Sandbox::new(&["sh", "-c", "tty; stty size; echo done"]);
    sb.config["process"]["terminal"] = json!(true);
    sb.config["process"]["consoleSize"] = json!({"height": 40, "width": 120});
    sb.save();
    let sock_path = sb.dir.join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        receive_fd(std::os::fd::AsRawFd::as_raw_fd(&stream))
    });
    let bundle = sb.bundle.to_str().unwrap().to_owned();
    let sock = sock_path.to_str().unwrap().to_owned();
    let out = sb.rt(&[
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        &sock,
        &sb.id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let master = receiver.join().unwrap();
    assert!(sb.rt(&["start", &sb.id]).status.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut file = std::fs::File::from(master);
        let mut buf = [0u8; 1024];
        // EIO once the container closes the slave ends the stream.
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("done") {
                break;
            }
        }
        let _ = tx.send(text);
    });
    let text = rx
        .recv_timeout(common::RUNTIME_LIMIT)
        .expect("the container's terminal output within the time limit");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines, ["/dev/pts/0", "40 120", "done"], "{text:?}");
}

fn receive_fd(socket: RawFd) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS installed this descriptor for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor received");
}
