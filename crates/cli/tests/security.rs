//! Attacks a container might try, performed for real: each test names the class it covers.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::process::CommandExt;

use common::{stderr, stdout, Sandbox};
use serde_json::json;

/// CVE-2019-5736 class: while the init is still berth, a process in the container grabs
/// /proc/1/exe, waits until berth has exec'd the user's program, then reopens the handle for
/// writing to overwrite the runtime binary on the host. The startContainer hook plays the
/// attacker: it runs in the container, as a child of the init, while the init is berth. It is
/// given CAP_SYS_PTRACE (as a privileged container would have) so that only berth's read-only
/// re-exec stands between it and the binary.
#[test]
fn cve_2019_5736_runtime_binary_cannot_be_overwritten_through_proc_exe() {
    let mut sb = Sandbox::new(&["sleep", "3"]);
    // The attacker retries while any berth process still runs the binary (ETXTBSY: other
    // tests run berth concurrently), and records the kernel's answer to the first real try.
    let attack = "#!/bin/sh\n\
        exec 3</proc/$PPID/exe || { echo OPEN-DENIED > /result; exit 0; }\n\
        cmp -s /proc/self/fd/3 /bin/busybox && { echo NOT-THE-RUNTIME > /result; exit 0; }\n\
        ( for i in $(seq 1 100); do\n\
            sleep 0.05\n\
            [ \"$(readlink /proc/1/exe)\" = /bin/busybox ] || continue\n\
            err=$( (: >> /proc/self/fd/3) 2>&1 ) && { echo WRITABLE > /result; exit 0; }\n\
            case \"$err\" in *busy*) continue;; esac\n\
            echo \"$err\" > /result; exit 0\n\
          done; echo GAVE-UP > /result ) &\n\
        exit 0\n";
    let script = sb.rootfs().join("attack.sh");
    std::fs::write(&script, attack).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.config["root"]["readonly"] = json!(false);
    let caps = json!([
        "CAP_SYS_PTRACE",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
        "CAP_NET_BIND_SERVICE"
    ]);
    for set in ["bounding", "effective", "permitted"] {
        sb.config["process"]["capabilities"][set] = caps.clone();
    }
    sb.config["hooks"] = json!({"startContainer": [{"path": "/attack.sh"}]});
    sb.save();
    let binary_before = std::fs::read(common::berth()).unwrap();
    // create and start exit at once: no berth process of this container is left running.
    let out = sb.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let out = sb.rt(&["start", &sb.id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    sb.wait_status("stopped");
    let result = std::fs::read_to_string(sb.rootfs().join("result")).unwrap_or_default();
    assert!(
        result.contains("Read-only file system"),
        "attack result: {result:?}"
    );
    assert_eq!(
        std::fs::read(common::berth()).unwrap(),
        binary_before,
        "the runtime binary changed"
    );
}

/// CVE-2024-21626 class: a cwd of /proc/self/fd/N reaching a directory descriptor the runtime
/// leaked would put the process outside the container. No such descriptor exists at chdir time.
#[test]
fn cve_2024_21626_cwd_through_a_leaked_descriptor_fails() {
    for fd in 3..=9 {
        let mut sb = Sandbox::new(&["sh", "-c", "pwd; ls"]);
        sb.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        sb.save();
        let out = sb.run();
        assert!(
            !out.status.success(),
            "cwd /proc/self/fd/{fd} was entered: {}",
            stdout(&out)
        );
        assert!(stderr(&out).contains("cwd"), "{}", stderr(&out));
    }
}

/// The same class from the other side: a directory descriptor the caller of the runtime left
/// open (no close-on-exec) must not reach the container's process.
#[test]
fn cve_2024_21626_host_descriptors_are_not_inherited() {
    let sb = Sandbox::new(&[
        "sh",
        "-c",
        "readlink /proc/self/fd/7 || echo closed; ls /proc/self/fd | wc -l",
    ]);
    let dir = std::fs::File::open("/").unwrap();
    let mut cmd = sb.runtime(&["run", "--bundle", sb.bundle.to_str().unwrap(), &sb.id]);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&dir);
    // SAFETY: in the child between fork and exec: dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = common::output_within(
        cmd.stdin(std::process::Stdio::null()),
        common::RUNTIME_LIMIT,
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("closed"),
        "{text} / {}",
        stderr(&out)
    );
    // 0, 1, 2 and the directory ls itself opened.
    assert_eq!(lines.get(1).copied(), Some("4"), "{text}");
}

/// A process keeps no capability it was not given: the operations those capabilities guard fail.
#[test]
fn capabilities_not_given_are_refused_by_the_kernel() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "mknod /tmp/n c 1 3 2>/dev/null && echo mknod || echo no-mknod; \
         hostname evil 2>/dev/null && echo hostname || echo no-hostname; \
         chown 1:1 /tmp 2>/dev/null && echo chown || echo no-chown; \
         mount -t tmpfs none /mnt 2>/dev/null && echo mount || echo no-mount",
    ]);
    sb.config["root"]["readonly"] = json!(false);
    sb.save();
    let out = sb.run();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        ["no-mknod", "no-hostname", "no-chown", "no-mount"],
        "{}",
        stderr(&out)
    );
}

/// Masked paths cannot be unmasked: without CAP_SYS_ADMIN the covering mount stays.
#[test]
fn masked_paths_cannot_be_unmounted() {
    let sb = Sandbox::new(&[
        "sh",
        "-c",
        "umount /proc/keys 2>/dev/null && echo unmounted || echo kept; wc -c < /proc/keys",
    ]);
    let out = sb.run();
    let lines: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_owned()).collect();
    assert_eq!(lines, ["kept", "0"], "{}", stderr(&out));
}
