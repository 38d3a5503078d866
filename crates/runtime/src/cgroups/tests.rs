//! Tests against the real kernel: they need root and a cgroup filesystem, create cgroups
//! named /berth-test-<pid>-<n>-<what>, fork children into them and check what a container
//! would see. Everything they create is removed again, even when an assertion fails.
//!
//! On a pure v2 host the v1-only tests skip themselves; the v2 tests use the v2 tree where
//! the host has one (on a hybrid host, its "unified" tree, where the device eBPF program and
//! the v2 freezer work just as on a pure v2 host).
#![allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceType, LinuxHugepageLimitBuilder,
    LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder,
};

use super::devices::unit::{deny_all, rule};
use super::{files, Cgroup, CgroupError, Joined, Location};

const MIB: i64 = 1 << 20;

/// Kernel tests share the v2 root's cgroup.subtree_control and the CPU's realtime budget;
/// running them one at a time keeps their expectations and their clean-up simple.
static KERNEL: Mutex<()> = Mutex::new(());
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A cgroup created for one test; dropping it kills the test's children and removes it.
struct TestCgroup {
    cgroup: Cgroup,
    children: Vec<i32>,
    /// The v2 root's subtree_control before `create` enabled anything there.
    v2_root_before: Option<(PathBuf, String)>,
    _serial: MutexGuard<'static, ()>,
}

/// A forked child that waits for `start` before running its body, then _exits with the
/// body's return value.
struct Child {
    pid: i32,
    go: Option<OwnedFd>,
}

impl TestCgroup {
    fn new(what: &str) -> TestCgroup {
        Self::with(what, |_| {})
    }

    /// `adjust` may drop hierarchies, e.g. to drive the v2 tree alone on a hybrid host.
    fn with(what: &str, adjust: impl FnOnce(&mut Cgroup)) -> TestCgroup {
        let serial = KERNEL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let name = format!(
            "/berth-test-{}-{}-{what}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let mut cgroup = Cgroup::resolve(Some(Path::new(&name)), "unused").unwrap();
        adjust(&mut cgroup);
        let v2_root_before = cgroup.v2.as_ref().map(|v2| {
            let before = files::read(&v2.mount_point, "cgroup.subtree_control").unwrap();
            (v2.mount_point.clone(), before)
        });
        let test = TestCgroup {
            cgroup,
            children: Vec::new(),
            v2_root_before,
            _serial: serial,
        };
        test.cgroup.create().unwrap();
        test
    }

    /// Forks a child, moves it into the cgroup, then lets it run `body`.
    fn spawn(&mut self, body: fn() -> i32) -> Child {
        let mut child = Child::fork(body);
        self.children.push(child.pid);
        self.cgroup
            .add_process(child.pid, Joined::default())
            .unwrap();
        child.start();
        child
    }

    fn v1_dir(&self, controller: &str) -> Option<&Path> {
        match self.cgroup.locate(controller) {
            Location::V1(dir) => Some(dir),
            _ => None,
        }
    }

    fn v2_dir(&self) -> &Path {
        &self.cgroup.v2.as_ref().unwrap().dir
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for &pid in &self.children {
            // SAFETY: kill and waitpid on our own child; at worst it already exited.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        // A frozen cgroup would keep killed children from exiting.
        let _ = self.cgroup.thaw();
        let destroyed = self.cgroup.destroy();
        if let Some((root, before)) = &self.v2_root_before {
            let now = files::read(root, "cgroup.subtree_control").unwrap_or_default();
            for controller in now.split_whitespace() {
                if !before.split_whitespace().any(|c| c == controller) {
                    let _ =
                        files::write_str(root, "cgroup.subtree_control", &format!("-{controller}"));
                }
            }
        }
        if !std::thread::panicking() {
            destroyed.unwrap();
        }
    }
}

impl Child {
    fn fork(body: fn() -> i32) -> Child {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        // SAFETY: the test process has other threads, so the child only calls
        // async-signal-safe functions (read, close, the body's raw syscalls, _exit) and
        // never returns into Rust code that could allocate or unwind.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let mut byte = 0u8;
            // SAFETY: reading one byte into a live local from a pipe we own.
            let got = unsafe { libc::read(read_end.as_raw_fd(), (&raw mut byte).cast(), 1) };
            let code = if got == 1 { body() } else { 100 };
            // SAFETY: terminates the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        drop(read_end);
        Child {
            pid,
            go: Some(write_end),
        }
    }

    fn start(&mut self) {
        if let Some(go) = self.go.take() {
            nix::unistd::write(&go, &[1]).unwrap();
        }
    }

    /// (exit code, terminating signal)
    fn wait(&self) -> (Option<i32>, Option<i32>) {
        let mut status = 0;
        // SAFETY: waiting for our own child into a live local.
        let ret = unsafe { libc::waitpid(self.pid, &raw mut status, 0) };
        assert_eq!(
            ret,
            self.pid,
            "waitpid: {}",
            std::io::Error::last_os_error()
        );
        if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None)
        } else {
            (None, Some(libc::WTERMSIG(status)))
        }
    }
}

// Bodies of forked children: raw syscalls only (see Child::fork).

fn sleep_forever() -> i32 {
    loop {
        // SAFETY: pause has no memory effects.
        unsafe { libc::pause() };
    }
}

fn touch_64_mib() -> i32 {
    let len = 64 << 20;
    // SAFETY: a fresh anonymous private mapping, touched only within its length.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return 2;
        }
        for offset in (0..len).step_by(4096) {
            p.cast::<u8>().add(offset).write_volatile(1);
        }
    }
    0
}

/// Forks five children that hold their pids, reports how many forks succeeded.
fn fork_five() -> i32 {
    let mut kids = [0; 5];
    let mut ok = 0;
    for _ in 0..5 {
        // SAFETY: the grandchild only pauses until it is killed.
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause has no memory effects.
                unsafe { libc::pause() };
            },
            -1 => {}
            pid => {
                kids[ok] = pid;
                ok += 1;
            }
        }
    }
    for &pid in &kids[..ok] {
        // SAFETY: kill and reap our own children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    i32::try_from(ok).unwrap_or(-1)
}

/// Exit code bits: 1 = /dev/null opened read-write, 2 = /dev/zero refused with EPERM.
fn open_null_not_zero() -> i32 {
    open_bits(c"/dev/null", c"/dev/zero")
}

/// The same with the roles swapped, for the updated device program.
fn open_zero_not_null() -> i32 {
    open_bits(c"/dev/zero", c"/dev/null")
}

fn open_bits(allowed: &std::ffi::CStr, denied: &std::ffi::CStr) -> i32 {
    let mut bits = 0;
    // SAFETY: open/close with NUL-terminated paths; errno read right after the call.
    unsafe {
        let fd = libc::open(allowed.as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            bits |= 1;
            libc::close(fd);
        }
        let fd = libc::open(denied.as_ptr(), libc::O_RDONLY);
        if fd < 0 && nix::errno::Errno::last() == nix::errno::Errno::EPERM {
            bits |= 2;
        } else if fd >= 0 {
            libc::close(fd);
        }
    }
    bits
}

/// Where the child of [`access_bits`] makes its device node: set by the parent before the fork
/// (a leaked C string), read by the child without allocating.
static NODE_PATH: std::sync::atomic::AtomicPtr<libc::c_char> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// What the device cgroup grants on /dev/null (1:3): bit 0 read, bit 1 write, bit 2 mknod;
/// bit 3 is set when something failed with another errno than EPERM.
fn access_bits() -> i32 {
    let mut bits = 0;
    let mut check = |ok: bool, bit: i32| {
        if ok {
            bits |= bit;
        } else if nix::errno::Errno::last() != nix::errno::Errno::EPERM {
            bits |= 8;
        }
    };
    // SAFETY: open/close/mknod/unlink with NUL-terminated paths; errno read right after.
    unsafe {
        for (flags, bit) in [(libc::O_RDONLY, 1), (libc::O_WRONLY, 2)] {
            let fd = libc::open(c"/dev/null".as_ptr(), flags);
            check(fd >= 0, bit);
            if fd >= 0 {
                libc::close(fd);
            }
        }
        let node = NODE_PATH.load(Ordering::SeqCst);
        libc::unlink(node);
        let made = libc::mknod(node, libc::S_IFCHR | 0o600, libc::makedev(1, 3));
        check(made == 0, 4);
        libc::unlink(node);
    }
    bits
}

/// Applies a rule granting `access` on 1:3 after a deny-all, and returns what a child of the
/// cgroup can do.
fn granted(t: &mut TestCgroup, access: &str) -> i32 {
    if NODE_PATH.load(Ordering::SeqCst).is_null() {
        let path = std::env::temp_dir().join(format!("berth-devnode-{}", std::process::id()));
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        NODE_PATH.store(c.into_raw(), Ordering::SeqCst);
    }
    let r = resources(|b| {
        b.devices(vec![
            deny_all(),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), access),
        ])
    });
    t.cgroup.apply(&r).unwrap();
    let (code, signal) = t.spawn(access_bits).wait();
    assert_eq!(signal, None);
    code.unwrap()
}

fn resources(build: impl FnOnce(LinuxResourcesBuilder) -> LinuxResourcesBuilder) -> LinuxResources {
    build(LinuxResourcesBuilder::default()).build().unwrap()
}

fn read_trim(dir: &Path, file: &str) -> String {
    files::read(dir, file).unwrap().trim().to_owned()
}

fn proc_state(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A thawed task is briefly runnable on its way back into pause().
fn settles_in_sleep(pid: i32) -> bool {
    (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(5));
        proc_state(pid).starts_with('S')
    })
}

fn has_v1(controller: &str) -> bool {
    let cg = Cgroup::resolve(Some(Path::new("/berth-probe")), "x").unwrap();
    matches!(cg.locate(controller), Location::V1(_))
}

fn has_v2_tree() -> bool {
    Cgroup::resolve(Some(Path::new("/berth-probe")), "x")
        .unwrap()
        .v2
        .is_some()
}

/// A test whose subject this host lacks passes, saying so.
fn skip(reason: &str) {
    eprintln!("skipped: {reason}");
}

#[test]
fn memory_limit_reads_back_and_kills_on_oom() {
    let mut t = TestCgroup::new("memory");
    let location = t.cgroup.locate("memory");
    let mut memory = LinuxMemoryBuilder::default()
        .limit(8 * MIB)
        .swap(8 * MIB)
        .reservation(4 * MIB);
    if let Location::V1(_) = location {
        memory = memory.swappiness(10u64);
    }
    let r = resources(|b| b.memory(memory.build().unwrap()));
    match location {
        Location::V1(dir) => {
            t.cgroup.apply(&r).unwrap();
            assert_eq!(read_trim(dir, "memory.limit_in_bytes"), "8388608");
            assert_eq!(read_trim(dir, "memory.memsw.limit_in_bytes"), "8388608");
            assert_eq!(read_trim(dir, "memory.soft_limit_in_bytes"), "4194304");
            assert_eq!(read_trim(dir, "memory.swappiness"), "10");
        }
        Location::V2(dir) => {
            t.cgroup.apply(&r).unwrap();
            assert_eq!(read_trim(dir, "memory.max"), "8388608");
            assert_eq!(read_trim(dir, "memory.low"), "4194304");
            if files::exists(dir, "memory.swap.max") {
                assert_eq!(
                    read_trim(dir, "memory.swap.max"),
                    "0",
                    "swap = limit: no swap"
                );
            }
        }
        Location::Missing => return skip("no memory controller"),
    }
    let child = t.spawn(touch_64_mib);
    assert_eq!(
        child.wait(),
        (None, Some(libc::SIGKILL)),
        "the OOM killer ends it"
    );
    assert!(t.cgroup.oom_kills().unwrap() >= 1);
}

#[test]
fn memory_limit_can_be_raised_and_lowered_with_swap() {
    let t = TestCgroup::new("memory-update");
    let (dir, max_file, unlimited) = match t.cgroup.locate("memory") {
        Location::V1(d) => (
            d.to_path_buf(),
            "memory.limit_in_bytes",
            "9223372036854771712",
        ),
        Location::V2(d) => (d.to_path_buf(), "memory.max", "max"),
        Location::Missing => return skip("no memory controller"),
    };
    let memory = |limit, swap| {
        resources(|b| {
            b.memory(
                LinuxMemoryBuilder::default()
                    .limit(limit)
                    .swap(swap)
                    .build()
                    .unwrap(),
            )
        })
    };
    // On v1 each step only works in the right order (memory <= memory+swap at all times).
    t.cgroup.apply(&memory(16 * MIB, 32 * MIB)).unwrap();
    t.cgroup.apply(&memory(64 * MIB, 128 * MIB)).unwrap();
    t.cgroup.apply(&memory(8 * MIB, 8 * MIB)).unwrap();
    assert_eq!(read_trim(&dir, max_file), "8388608");
    t.cgroup.apply(&memory(-1, -1)).unwrap();
    assert_eq!(read_trim(&dir, max_file), unlimited);

    // memory+swap below memory: the kernel (v1) or berth (v2) refuses.
    let err = t.cgroup.apply(&memory(16 * MIB, 8 * MIB)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("memory.memsw.limit_in_bytes")
            || text.contains("memory.limit_in_bytes")
            || text.contains("memory+swap must be at least the memory limit"),
        "{text}"
    );
}

#[test]
fn pids_limit_refuses_forks_beyond_it() {
    let mut t = TestCgroup::new("pids");
    let dir = match t.cgroup.locate("pids") {
        Location::V1(d) | Location::V2(d) => d.to_path_buf(),
        Location::Missing => return skip("no pids controller"),
    };
    let r = resources(|b| b.pids(LinuxPidsBuilder::default().limit(3).build().unwrap()));
    t.cgroup.apply(&r).unwrap();
    assert_eq!(read_trim(&dir, "pids.max"), "3");
    let child = t.spawn(fork_five);
    // The child itself is the first of the three.
    assert_eq!(child.wait(), (Some(2), None));

    let unlimited = resources(|b| b.pids(LinuxPidsBuilder::default().limit(-1).build().unwrap()));
    t.cgroup.apply(&unlimited).unwrap();
    assert_eq!(read_trim(&dir, "pids.max"), "max");
}

#[test]
fn cpu_quota_shares_and_realtime_read_back() {
    let t = TestCgroup::new("cpu");
    let location = t.cgroup.locate("cpu");
    let dir = match location {
        Location::V1(d) | Location::V2(d) => d.to_path_buf(),
        Location::Missing => return skip("no cpu controller"),
    };
    let v1 = matches!(location, Location::V1(_));
    let mut cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000i64)
        .period(100_000u64);
    if v1 {
        cpu = cpu
            .realtime_period(1_000_000u64)
            .realtime_runtime(10_000i64);
    }
    t.cgroup
        .apply(&resources(|b| b.cpu(cpu.build().unwrap())))
        .unwrap();
    if v1 {
        assert_eq!(read_trim(&dir, "cpu.shares"), "512");
        assert_eq!(read_trim(&dir, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read_trim(&dir, "cpu.cfs_period_us"), "100000");
        if files::exists(&dir, "cpu.rt_runtime_us") {
            assert_eq!(read_trim(&dir, "cpu.rt_runtime_us"), "10000");
        }
    } else {
        assert_eq!(read_trim(&dir, "cpu.weight"), "20");
        assert_eq!(read_trim(&dir, "cpu.max"), "50000 100000");
    }

    // On v1 a shorter period than the old quota allows needs the quota written first.
    let r = resources(|b| {
        b.cpu(
            LinuxCpuBuilder::default()
                .quota(-1i64)
                .period(10_000u64)
                .build()
                .unwrap(),
        )
    });
    t.cgroup.apply(&r).unwrap();
    if v1 {
        assert_eq!(read_trim(&dir, "cpu.cfs_quota_us"), "-1");
        assert_eq!(read_trim(&dir, "cpu.cfs_period_us"), "10000");
        let clamped =
            resources(|b| b.cpu(LinuxCpuBuilder::default().shares(1u64).build().unwrap()));
        let err = t.cgroup.apply(&clamped).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::Clamped {
                    wanted: 1,
                    got: 2,
                    ..
                }
            ),
            "{err}"
        );
    } else {
        assert_eq!(read_trim(&dir, "cpu.max"), "max 10000");
        // A period-only update keeps the quota.
        let r = resources(|b| b.cpu(LinuxCpuBuilder::default().quota(20_000i64).build().unwrap()));
        t.cgroup.apply(&r).unwrap();
        let r = resources(|b| {
            b.cpu(
                LinuxCpuBuilder::default()
                    .period(50_000u64)
                    .build()
                    .unwrap(),
            )
        });
        t.cgroup.apply(&r).unwrap();
        assert_eq!(read_trim(&dir, "cpu.max"), "20000 50000");
        let rt = resources(|b| {
            b.cpu(
                LinuxCpuBuilder::default()
                    .realtime_runtime(10_000i64)
                    .build()
                    .unwrap(),
            )
        });
        let err = t.cgroup.apply(&rt).unwrap_err();
        assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
    }
}

#[test]
fn cpuset_cpus_apply_and_bad_cpus_name_the_file() {
    let t = TestCgroup::new("cpuset");
    let dir = match t.cgroup.locate("cpuset") {
        Location::V1(d) | Location::V2(d) => d.to_path_buf(),
        Location::Missing => return skip("no cpuset controller"),
    };
    let r = resources(|b| {
        b.cpu(
            LinuxCpuBuilder::default()
                .cpus("0".to_owned())
                .mems("0".to_owned())
                .build()
                .unwrap(),
        )
    });
    t.cgroup.apply(&r).unwrap();
    assert_eq!(read_trim(&dir, "cpuset.cpus"), "0");
    assert_eq!(read_trim(&dir, "cpuset.mems"), "0");

    let bad = resources(|b| {
        b.cpu(
            LinuxCpuBuilder::default()
                .cpus("999".to_owned())
                .build()
                .unwrap(),
        )
    });
    let err = t.cgroup.apply(&bad).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CgroupError::Write { .. }), "{text}");
    assert!(
        text.contains(&dir.join("cpuset.cpus").display().to_string()),
        "{text}"
    );
    assert!(text.contains("\"999\""), "{text}");
}

#[test]
fn new_cpuset_levels_inherit_cpus_so_processes_can_join() {
    if !has_v1("cpuset") {
        return skip("no v1 cpuset controller");
    }
    let mut t = TestCgroup::new("cpuset-nested");
    // The cgroup itself was created by `create`; a process must be able to join it.
    let child = t.spawn(sleep_forever);
    assert!(t.cgroup.pids().unwrap().contains(&child.pid));
    let dir = t.v1_dir("cpuset").unwrap();
    assert!(!read_trim(dir, "cpuset.cpus").is_empty());
    assert!(!read_trim(dir, "cpuset.mems").is_empty());
}

#[test]
fn freeze_and_thaw_a_sleeping_child_v1() {
    if !has_v1("freezer") {
        return skip("no v1 freezer");
    }
    let mut t = TestCgroup::new("freezer");
    let child = t.spawn(sleep_forever);
    t.cgroup.freeze().unwrap();
    assert!(t.cgroup.is_frozen().unwrap());
    let dir = t.v1_dir("freezer").unwrap();
    assert_eq!(read_trim(dir, "freezer.state"), "FROZEN");
    // A frozen task is not in an ordinary (interruptible) sleep.
    assert!(
        !proc_state(child.pid).starts_with('S'),
        "{}",
        proc_state(child.pid)
    );
    t.cgroup.thaw().unwrap();
    assert!(!t.cgroup.is_frozen().unwrap());
    assert_eq!(read_trim(dir, "freezer.state"), "THAWED");
    assert!(settles_in_sleep(child.pid), "{}", proc_state(child.pid));
}

#[test]
fn freeze_and_thaw_a_sleeping_child_v2() {
    if !has_v2_tree() {
        return skip("no cgroup v2 tree");
    }
    // Drive the v2 tree alone, as on a pure v2 host.
    let mut t = TestCgroup::with("freeze-v2", |cg| cg.v1.clear());
    let child = t.spawn(sleep_forever);
    t.cgroup.freeze().unwrap();
    assert!(t.cgroup.is_frozen().unwrap());
    assert_eq!(
        files::read_keyed(t.v2_dir(), "cgroup.events", "frozen").unwrap(),
        1
    );
    t.cgroup.thaw().unwrap();
    assert!(!t.cgroup.is_frozen().unwrap());
    assert!(settles_in_sleep(child.pid), "{}", proc_state(child.pid));
}

#[test]
fn a_process_joins_every_v1_hierarchy_by_itself() {
    if !has_v1("pids") {
        return skip("no v1 hierarchies on this host");
    }
    let mut test = TestCgroup::new("self-join");
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only writes cgroup files, reports and pauses. It allocates a path
    // per file, which glibc's fork-safe malloc allows in the child of a threaded process.
    let pid = match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let ok = test.cgroup.join_v1_self().is_ok();
            let _ = nix::unistd::write(&ready_w, &[u8::from(ok)]);
            sleep_forever();
            // SAFETY: ends the forked child without the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => child.as_raw(),
    };
    test.children.push(pid);
    drop(ready_w);
    let mut ok = [0u8];
    assert_eq!(nix::unistd::read(&ready_r, &mut ok).unwrap(), 1);
    assert_eq!(ok[0], 1, "join_v1_self failed in the child");
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for h in &test.cgroup.v1 {
        let line = membership
            .lines()
            .find(|l| l.split(':').nth(1) == Some(h.controllers.as_str()))
            .unwrap_or_else(|| panic!("no {} line in {membership}", h.controllers));
        let path = line.splitn(3, ':').nth(2).unwrap();
        assert!(
            h.dir.ends_with(path.trim_start_matches('/')),
            "{line} vs {h:?}"
        );
    }
}

#[test]
fn pids_lists_processes_of_sub_cgroups_and_destroy_removes_all() {
    let mut t = TestCgroup::new("pids-list");
    let first = t.spawn(sleep_forever);
    let second = Child::fork(sleep_forever);
    t.children.push(second.pid);
    // A sub-cgroup the container made for itself, in the hierarchy `pids` reads.
    let top = t.cgroup.membership_dir().unwrap().to_path_buf();
    let sub = top.join("inner");
    files::create_dir(&sub).unwrap();
    files::write_fmt(&sub, "cgroup.procs", format_args!("{}", second.pid)).unwrap();

    let mut want = vec![first.pid, second.pid];
    want.sort_unstable();
    assert_eq!(t.cgroup.pids().unwrap(), want);

    for pid in [first.pid, second.pid] {
        // SAFETY: kill and reap our own children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    t.children.clear();
    t.cgroup.destroy().unwrap();
    for source in t.cgroup.mount_sources() {
        assert!(
            !source.host_dir.exists(),
            "{} still exists",
            source.host_dir.display()
        );
    }
    assert!(
        t.cgroup.pids().unwrap().is_empty(),
        "a removed cgroup has no processes"
    );
}

#[test]
fn devices_v1_deny_all_then_allow_null() {
    if !has_v1("devices") {
        return skip("no v1 devices controller");
    }
    let mut t = TestCgroup::new("devices");
    let r = resources(|b| {
        b.devices(vec![
            deny_all(),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rw"),
        ])
    });
    t.cgroup.apply(&r).unwrap();
    let dir = t.v1_dir("devices").unwrap();
    assert_eq!(read_trim(dir, "devices.list"), "c 1:3 rw");
    let child = t.spawn(open_null_not_zero);
    assert_eq!(
        child.wait(),
        (Some(3), None),
        "/dev/null opens, /dev/zero gets EPERM"
    );
}

#[test]
fn devices_v1_enforce_each_access_type() {
    if !has_v1("devices") {
        return skip("no v1 devices controller");
    }
    for (access, bits) in [("r", 1), ("w", 2), ("m", 4), ("rw", 3), ("rwm", 7)] {
        let mut t = TestCgroup::new("devices-access");
        assert_eq!(granted(&mut t, access), bits, "access {access:?}");
    }
}

#[test]
fn devices_v2_ebpf_enforces_each_access_type() {
    if !has_v2_tree() {
        return skip("no cgroup v2 tree");
    }
    for (access, bits) in [("r", 1), ("w", 2), ("m", 4), ("rw", 3), ("rwm", 7)] {
        let mut t = TestCgroup::with("devices-v2-access", |cg| cg.v1.clear());
        assert_eq!(granted(&mut t, access), bits, "access {access:?}");
    }
}

#[test]
fn blkio_weight_goes_to_the_file_the_kernel_offers() {
    // A kernel with BFQ and without CFQ has only the bfq files; write where they are.
    let dir = std::env::temp_dir().join(format!("berth-bfq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("blkio.bfq.weight"), "").unwrap();
    let io = LinuxBlockIoBuilder::default()
        .weight(500u16)
        .build()
        .unwrap();
    super::v1::set_block_io(&dir, &io).unwrap();
    assert_eq!(read_trim(&dir, "blkio.bfq.weight"), "500");
    assert!(!dir.join("blkio.weight").exists());
    std::fs::write(dir.join("io.bfq.weight"), "").unwrap();
    super::v2::set_block_io(&dir, &io).unwrap();
    assert_eq!(read_trim(&dir, "io.bfq.weight"), "500");
    assert!(!dir.join("io.weight").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn devices_v2_ebpf_program_enforces_and_is_replaced_on_update() {
    if !has_v2_tree() {
        return skip("no cgroup v2 tree");
    }
    let mut t = TestCgroup::with("devices-v2", |cg| cg.v1.clear());
    let first = resources(|b| {
        b.devices(vec![
            deny_all(),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rw"),
        ])
    });
    t.cgroup.apply(&first).unwrap();
    let child = t.spawn(open_null_not_zero);
    assert_eq!(
        child.wait(),
        (Some(3), None),
        "/dev/null opens, /dev/zero gets EPERM"
    );

    // Were the first program still attached, /dev/zero would stay denied.
    let second = resources(|b| {
        b.devices(vec![
            deny_all(),
            rule(true, LinuxDeviceType::C, Some(1), Some(5), "rw"),
        ])
    });
    t.cgroup.apply(&second).unwrap();
    let child = t.spawn(open_zero_not_null);
    assert_eq!(
        child.wait(),
        (Some(3), None),
        "/dev/zero opens, /dev/null gets EPERM"
    );
}

#[test]
fn hugetlb_limit_goes_to_whichever_version_has_it() {
    let t = TestCgroup::new("hugetlb");
    let location = t.cgroup.locate("hugetlb");
    if matches!(location, Location::Missing) {
        return skip("no hugetlb controller");
    }
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        return skip("no 2MB huge pages");
    }
    let limit = |size: &str| {
        resources(|b| {
            b.hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size(size.to_owned())
                .limit(4 * MIB)
                .build()
                .unwrap()])
        })
    };
    t.cgroup.apply(&limit("2MB")).unwrap();
    match location {
        Location::V1(dir) => assert_eq!(read_trim(dir, "hugetlb.2MB.limit_in_bytes"), "4194304"),
        Location::V2(dir) => assert_eq!(read_trim(dir, "hugetlb.2MB.max"), "4194304"),
        Location::Missing => unreachable!(),
    }
    let err = t.cgroup.apply(&limit("3MB")).unwrap_err();
    assert!(
        err.to_string().contains("no huge pages of that size"),
        "{err}"
    );
    let err = t.cgroup.apply(&limit("../2MB")).unwrap_err();
    assert!(matches!(err, CgroupError::InvalidResource { .. }), "{err}");
}

#[test]
fn blkio_throttle_reads_back() {
    let t = TestCgroup::new("blkio");
    let location = t.cgroup.locate_blkio();
    if matches!(location, Location::Missing) {
        return skip("no blkio/io controller");
    }
    let Some((major, minor)) = some_block_device() else {
        return skip("no block device");
    };
    let r = resources(|b| {
        b.block_io(
            LinuxBlockIoBuilder::default()
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(1_048_576u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
    });
    t.cgroup.apply(&r).unwrap();
    match location {
        Location::V1(dir) => assert_eq!(
            read_trim(dir, "blkio.throttle.read_bps_device"),
            format!("{major}:{minor} 1048576")
        ),
        Location::V2(dir) => {
            let io_max = read_trim(dir, "io.max");
            assert!(
                io_max.starts_with(&format!("{major}:{minor} rbps=1048576 ")),
                "{io_max}"
            );
        }
        Location::Missing => unreachable!(),
    }
}

#[test]
fn unified_keys_for_unavailable_controllers_are_refused() {
    let t = TestCgroup::new("unified");
    let unified = HashMap::from([("memory.max".to_owned(), "1".to_owned())]);
    let r = resources(|b| b.unified(unified));
    let result = t.cgroup.apply(&r);
    match (&t.cgroup.v2, t.cgroup.locate("memory")) {
        (Some(_), Location::V2(dir)) => {
            result.unwrap();
            assert_eq!(read_trim(dir, "memory.max"), "0");
        }
        (Some(_), _) => {
            let err = result.unwrap_err();
            assert!(matches!(err, CgroupError::Unified { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("memory controller is not available"),
                "{err}"
            );
        }
        (None, _) => assert!(matches!(result, Err(CgroupError::Unsupported { .. }))),
    }
    let mut v1_only = t.cgroup.clone();
    v1_only.v2 = None;
    let err = v1_only.apply(&r).unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
}

#[test]
fn layout_is_detected_per_controller_on_this_host() {
    let cg = Cgroup::resolve(Some(Path::new("/berth/layout-probe")), "x").unwrap();
    let sources = cg.mount_sources();
    assert!(!sources.is_empty());
    for source in &sources {
        assert!(
            source.host_dir.ends_with("berth/layout-probe"),
            "{source:?}"
        );
    }
    if cg.is_unified() {
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].controllers, "");
    } else if let Some(v2) = &cg.v2 {
        // Hybrid: what v1 holds is not offered by the v2 root, and vice versa.
        for controller in &v2.controllers {
            assert!(
                !matches!(cg.locate(controller), Location::V1(_)),
                "{controller}"
            );
        }
        assert!(sources
            .iter()
            .any(|s| s.is_v2 && s.controllers == "unified"));
    }
    // Serializes into the state file and back unchanged.
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back.mount_sources(), sources);
}

#[test]
fn relative_path_lands_below_our_own_cgroup() {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let cg = Cgroup::resolve(Some(Path::new("berth-rel")), "x").unwrap();
    for h in &cg.v1 {
        let line = own
            .lines()
            .find(|l| l.split(':').nth(1) == Some(h.controllers.as_str()))
            .unwrap();
        let own_path = line.splitn(3, ':').nth(2).unwrap().trim_start_matches('/');
        assert_eq!(h.dir, h.mount_point.join(own_path).join("berth-rel"));
    }
}

fn some_block_device() -> Option<(i64, i64)> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    // Prefer a real disk over loop devices.
    names.sort_by_key(|n| n.to_string_lossy().starts_with("loop"));
    let dev =
        std::fs::read_to_string(Path::new("/sys/block").join(names.first()?).join("dev")).ok()?;
    let (major, minor) = dev.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
