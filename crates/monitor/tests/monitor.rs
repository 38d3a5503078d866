//! The monitor against the real kernel, as root: containers started through `spawn`, seen
//! through the log file, the state file and the client.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_monitor::{client, read_state, spawn, RestartPolicy, Status};
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn logs_keep_their_streams_and_the_exit_code_is_recorded() {
    let sb = Sandbox::new(&["sh", "-c", "echo out; echo err >&2; printf partial; exit 3"]);
    let t = Instant::now();
    let state = spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    eprintln!("spawn (monitor + create + start): {:?}", t.elapsed());
    assert!(state.pid > 0);
    assert_eq!(state.status, Status::Running);
    let done = client::wait(&sb.config.dir).unwrap();
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, 3);
    assert!(!done.oom_killed);
    assert_ne!(done.finished_at, berth_monitor::ZERO_TIME);
    let logs = sb.logs();
    assert!(
        logs.contains(&("stdout".into(), "out\n".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("stderr".into(), "err\n".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("stdout".into(), "partial".into())),
        "{logs:?}"
    );
    let time = sb.log_lines()[0]["time"].as_str().unwrap().to_owned();
    assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    // The monitor is gone, its sockets with it; the state file stays for the daemon.
    wait_monitor_gone(&sb.config.dir);
    assert!(!sb.config.dir.join("attach.sock").exists());
    let state = read_state(&sb.config.dir).unwrap();
    assert_eq!(state.exit_code, 3);
    assert!(!state.monitor_alive);
}

#[test]
fn a_container_killed_by_sigkill_exits_137() {
    let sb = Sandbox::new(&["sleep", "1000"]);
    let state = spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    kill(Pid::from_raw(state.pid), Signal::SIGKILL).unwrap();
    let done = client::wait(&sb.config.dir).unwrap();
    assert_eq!(done.exit_code, 137);
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.pid, 0);
}

#[test]
fn spawn_reports_the_runtimes_error_for_a_missing_program() {
    let sb = Sandbox::new(&["nosuch"]);
    let err = spawn(&sb.config, &monitor_exe(), Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nosuch"), "{err}");
    let state = read_state(&sb.config.dir).unwrap();
    assert_eq!(state.status, Status::Exited);
    assert_eq!(state.exit_code, 127, "{}", state.error);
    assert!(!sb.config.runtime_root.join(&sb.config.id).exists());
}

#[test]
fn attach_gets_live_multiplexed_output_and_stdin_reaches_cat() {
    let mut sb = Sandbox::new(&["sh", "-c", "cat; echo done >&2"]);
    sb.config.open_stdin = true;
    sb.config.stdin_once = true;
    spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    let mut conn = client::attach(&sb.config.dir, true, true, true).unwrap();
    // A second attacher, output only, sees the same stream.
    let mut watcher = client::attach(&sb.config.dir, false, true, false).unwrap();
    // Let the monitor take both requests before the container says anything.
    std::thread::sleep(Duration::from_millis(100));
    conn.write_all(b"hello\n").unwrap();
    let (out, _) = read_frames_until(&mut conn, 1, "hello\n");
    assert_eq!(out, "hello\n");
    let (out, _) = read_frames_until(&mut watcher, 1, "hello\n");
    assert_eq!(out, "hello\n");
    conn.shutdown(Shutdown::Write).unwrap();
    let (_, err) = read_frames_until(&mut conn, 2, "done\n");
    assert_eq!(err, "done\n");
    let done = client::wait(&sb.config.dir).unwrap();
    assert_eq!(done.exit_code, 0);
    assert!(sb.logs().contains(&("stdout".into(), "hello\n".into())));
}

#[test]
fn early_attachers_get_every_byte_from_the_first_to_the_last() {
    // 2 MB of output from a process that exits right after: far more than the pipes and
    // sockets hold, so the process waits on its slowest attacher (as with dockerd), and the
    // tail it wrote just before exiting must still reach both, then EOF.
    let sb = Sandbox::new(&["sh", "-c", "seq 1 300000; echo last >&2"]);
    let (a, early_a) = client::attach_early(false, true, true).unwrap();
    let (b, early_b) = client::attach_early(false, true, false).unwrap();
    spawn(&sb.config, &monitor_exe(), vec![early_a, early_b]).unwrap();
    let read_late = |mut conn: std::os::unix::net::UnixStream| {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            read_frames_until(&mut conn, 0, "to the end")
        })
    };
    let (ra, rb) = (read_late(a), read_late(b));
    let want: String = (1..=300_000).map(|i| format!("{i}\n")).collect();
    let (out, err) = ra.join().unwrap();
    assert!(
        out == want,
        "{} of {} bytes of stdout",
        out.len(),
        want.len()
    );
    assert_eq!(err, "last\n");
    let (out, err) = rb.join().unwrap();
    assert!(
        out == want,
        "{} of {} bytes of stdout",
        out.len(),
        want.len()
    );
    assert_eq!(err, "");
    assert_eq!(client::wait(&sb.config.dir).unwrap().exit_code, 0);
}

#[test]
fn a_client_that_vanishes_mid_stream_does_not_hurt_the_monitor() {
    let sb = Sandbox::new(&["sh", "-c", "while true; do echo tick; done"]);
    let state = spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    for _ in 0..3 {
        let mut conn = client::attach(&sb.config.dir, false, true, true).unwrap();
        let (out, _) = read_frames_until(&mut conn, 1, "tick\n");
        assert!(out.contains("tick"));
        drop(conn);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(read_state(&sb.config.dir).unwrap().monitor_alive);
    kill(Pid::from_raw(state.pid), Signal::SIGKILL).unwrap();
    assert_eq!(client::wait(&sb.config.dir).unwrap().exit_code, 137);
}

#[test]
fn tty_mode_gives_a_pty_and_resize_changes_stty_size() {
    let mut sb = Sandbox::new(&["sh", "-c", "tty; read x; stty size; read y; exit 5"]);
    sb.tty();
    sb.config.open_stdin = true;
    spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    sb.wait_log("/dev/pts/");
    let mut conn = client::attach(&sb.config.dir, true, true, true).unwrap();
    client::resize(&sb.config.dir, 40, 100).unwrap();
    conn.write_all(b"\n").unwrap();
    let raw = read_raw_until(&mut conn, "40 100");
    assert!(raw.contains("40 100"), "{raw:?}");
    conn.write_all(b"\n").unwrap();
    let done = client::wait(&sb.config.dir).unwrap();
    assert_eq!(done.exit_code, 5);
    // With a tty there is one stream, logged as stdout.
    assert!(sb.logs().iter().all(|(s, _)| s == "stdout"));
}

#[test]
fn resize_without_a_tty_is_refused() {
    let sb = Sandbox::new(&["sleep", "1000"]);
    let state = spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    let err = client::resize(&sb.config.dir, 10, 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no terminal"), "{err}");
    kill(Pid::from_raw(state.pid), Signal::SIGKILL).unwrap();
    client::wait(&sb.config.dir).unwrap();
}

#[test]
fn on_failure_2_restarts_exactly_twice() {
    let mut sb = Sandbox::new(&["sh", "-c", "echo run; exit 1"]);
    sb.config.restart = RestartPolicy {
        name: "on-failure".into(),
        max_retries: 2,
    };
    spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    let mut last = None;
    for _ in 0..10 {
        let s = client::wait(&sb.config.dir).unwrap();
        if s.status == Status::Exited {
            last = Some(s);
            break;
        }
        assert_eq!(s.status, Status::Restarting);
    }
    let last = last.expect("the container never stopped restarting");
    assert_eq!(last.restart_count, 2);
    assert_eq!(last.exit_code, 1);
    wait_monitor_gone(&sb.config.dir);
    let runs = sb.logs().iter().filter(|(_, l)| l == "run\n").count();
    assert_eq!(runs, 3);
}

#[test]
fn stop_restarting_keeps_always_from_restarting() {
    let mut sb = Sandbox::new(&["sleep", "1000"]);
    sb.config.restart = RestartPolicy {
        name: "always".into(),
        max_retries: 0,
    };
    let state = spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    client::stop_restarting(&sb.config.dir).unwrap();
    kill(Pid::from_raw(state.pid), Signal::SIGKILL).unwrap();
    let done = client::wait(&sb.config.dir).unwrap();
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.restart_count, 0);
}

#[test]
fn the_container_and_its_monitor_outlive_a_killed_daemon() {
    let sb = Sandbox::new(&["sh", "-c", "while true; do echo tick; sleep 0.05; done"]);
    let config_file = sb.dir.join("monitor-config.json");
    std::fs::write(&config_file, serde_json::to_vec(&sb.config).unwrap()).unwrap();
    // The "daemon": a process that calls spawn and then would live on.
    let mut daemon = Command::new(monitor_exe())
        .arg("spawn")
        .arg(&config_file)
        .arg(monitor_exe())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let spawned: berth_monitor::MonitorState = serde_json::from_str(&line).unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let state = read_state(&sb.config.dir).unwrap();
    assert_eq!(state.status, Status::Running);
    assert!(state.monitor_alive);
    assert_eq!(state.pid, spawned.pid);
    // Its own session, away from the daemon's.
    let sid = nix::unistd::getsid(Some(Pid::from_raw(state.monitor_pid))).unwrap();
    assert_eq!(sid.as_raw(), state.monitor_pid);
    let before = std::fs::metadata(&sb.config.log.path).unwrap().len();
    std::thread::sleep(Duration::from_millis(500));
    let after = std::fs::metadata(&sb.config.log.path).unwrap().len();
    assert!(after > before, "log did not grow: {before} -> {after}");
    let pid = state.monitor_pid;
    let rss = status_kb(pid, "VmRSS");
    eprintln!(
        "monitor VmRSS with a running container: {rss} kB (anon {} kB, file {} kB) of {}",
        status_kb(pid, "RssAnon"),
        status_kb(pid, "RssFile"),
        monitor_exe().display()
    );
    // The file-backed part is the binary and libc, shared by every monitor on the host; what
    // each container costs is the anonymous part.
    let anon = status_kb(pid, "RssAnon");
    assert!(
        anon < 1024,
        "monitor private RSS {anon} kB (VmRSS {rss} kB)"
    );
    // The monitor still answers a (new) daemon.
    kill(Pid::from_raw(state.pid), Signal::SIGKILL).unwrap();
    assert_eq!(client::wait(&sb.config.dir).unwrap().exit_code, 137);
}

#[test]
fn log_rotation_keeps_max_files() {
    let mut sb = Sandbox::new(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    sb.config.log.max_size = Some(2000);
    sb.config.log.max_files = 3;
    spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    client::wait(&sb.config.dir).unwrap();
    let rotated = |n: u32| {
        let mut p = sb.config.log.path.clone().into_os_string();
        p.push(format!(".{n}"));
        std::path::PathBuf::from(p)
    };
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists());
    assert!(sb.logs().iter().any(|(_, l)| l == "line-299\n"));
}

fn runtime_binary_runs_a_container(bin: &str) {
    if !Path::new(bin).exists() {
        eprintln!("{bin} is not installed: skipped");
        return;
    }
    let mut sb = Sandbox::new(&["sh", "-c", "echo hi; echo oops >&2; exit 4"]);
    sb.config.runtime = Some(bin.into());
    let state = spawn(&sb.config, &monitor_exe(), Vec::new()).unwrap();
    assert!(state.pid > 0);
    let done = client::wait(&sb.config.dir).unwrap();
    assert_eq!(done.exit_code, 4);
    let logs = sb.logs();
    assert!(logs.contains(&("stdout".into(), "hi\n".into())), "{logs:?}");
    assert!(
        logs.contains(&("stderr".into(), "oops\n".into())),
        "{logs:?}"
    );
    // The runtime's record is gone: the monitor deleted the container.
    assert!(!sb.config.runtime_root.join(&sb.config.id).exists());

    let mut bad = Sandbox::new(&["nosuch"]);
    bad.config.runtime = Some(bin.into());
    let err = spawn(&bad.config, &monitor_exe(), Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn runc_runs_a_container_for_the_monitor() {
    runtime_binary_runs_a_container("/usr/sbin/runc");
}

#[test]
fn crun_runs_a_container_for_the_monitor() {
    // crun refuses a hugetlb controller on the v2 tree while the others are v1.
    if Path::new("/sys/fs/cgroup/memory").exists() {
        let _ = std::fs::create_dir_all("/sys/fs/cgroup/hugetlb");
        let mounted = Command::new("mountpoint")
            .args(["-q", "/sys/fs/cgroup/hugetlb"])
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = Command::new("mount")
                .args([
                    "-t",
                    "cgroup",
                    "-o",
                    "hugetlb",
                    "cgroup",
                    "/sys/fs/cgroup/hugetlb",
                ])
                .status();
        }
    }
    runtime_binary_runs_a_container("/usr/bin/crun");
}

fn wait_monitor_gone(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !read_state(dir).unwrap().monitor_alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("monitor in {} did not exit", dir.display());
}
