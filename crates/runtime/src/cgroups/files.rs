//! Reading and writing cgroup files and directories, with errors that name the file.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::CgroupError;

/// How long `remove_tree` keeps retrying an rmdir that fails with EBUSY.
const REMOVE_RETRY: Duration = Duration::from_secs(2);

/// Writes `value` to `dir/file` in a single write(2), as cgroup files require.
pub(super) fn write_str(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    write_bytes(dir, file, value.as_bytes())
}

/// Like `write_str`, formatting into a stack buffer: `add_process` and `apply` run between
/// fork and exec of the container and have no need for the heap for a number.
pub(super) fn write_fmt(
    dir: &Path,
    file: &str,
    args: fmt::Arguments<'_>,
) -> Result<(), CgroupError> {
    let mut buf = StackBuf::default();
    if fmt::write(&mut buf, args).is_ok() {
        write_bytes(dir, file, buf.as_bytes())
    } else {
        write_str(dir, file, &args.to_string())
    }
}

pub(super) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|e| CgroupError::Read {
        errno: errno_of(&e),
        path,
    })
}

/// Reads a file holding one unsigned number (memory.limit_in_bytes, cpu.shares, ...).
pub(super) fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read(dir, file)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: dir.join(file),
        content: text,
    })
}

/// Reads `key N` from a flat-keyed file (memory.oom_control, memory.events, cgroup.events).
pub(super) fn read_keyed(dir: &Path, file: &str, key: &str) -> Result<u64, CgroupError> {
    let text = read(dir, file)?;
    let value = text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    });
    value.ok_or_else(|| CgroupError::Parse {
        path: dir.join(file),
        content: text,
    })
}

pub(super) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

pub(super) fn create_dir_all(path: &Path) -> Result<(), CgroupError> {
    let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
    for dir in missing.into_iter().rev() {
        create_dir(dir)?;
    }
    Ok(())
}

/// Creates one directory level, 0755 as runc makes it (a container's non-root users read
/// their limits through the cgroup mount); an existing one is fine. mkdir honours the caller's
/// umask (027 under berth's daemon): the mode is set again after it.
pub(super) fn create_dir(path: &Path) -> Result<(), CgroupError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: io::Error| CgroupError::Create {
        path: path.to_path_buf(),
        errno: errno_of(&e),
    };
    match fs::create_dir(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(failed),
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(failed(e)),
        _ => Ok(()),
    }
}

/// Appends the pids of `dir` and of every cgroup below it. A cgroup that vanishes while we
/// walk (its container exited) simply has no pids.
pub(super) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let text = match read(dir, "cgroup.procs") {
        Err(CgroupError::Read {
            errno: Errno::ENOENT | Errno::ENODEV,
            ..
        }) => return Ok(()),
        other => other?,
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
            path: dir.join("cgroup.procs"),
            content: line.to_owned(),
        })?;
        out.push(pid);
    }
    for sub in subdirectories(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

/// Removes a cgroup and the cgroups below it, children first. A missing directory is fine.
pub(super) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for sub in subdirectories(dir)? {
        remove_tree(&sub)?;
    }
    let deadline = Instant::now() + REMOVE_RETRY;
    let mut delay = Duration::from_millis(1);
    loop {
        let errno = match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) => errno_of(&e),
        };
        match errno {
            Errno::ENOENT => return Ok(()),
            // A killed process leaves its cgroup only once it is fully reaped.
            Errno::EBUSY if Instant::now() < deadline => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            _ => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    hint: if errno == Errno::EBUSY {
                        "processes are still in the cgroup (kill them before deleting it)"
                    } else {
                        ""
                    },
                    errno,
                })
            }
        }
    }
}

pub(super) fn errno_of(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

fn write_bytes(dir: &Path, file: &str, value: &[u8]) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let result = OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value));
    result.map_err(|e| {
        let errno = errno_of(&e);
        CgroupError::Write {
            hint: hint(file, errno),
            value: String::from_utf8_lossy(value).into_owned(),
            path,
            errno,
        }
    })
}

fn subdirectories(dir: &Path) -> Result<Vec<std::path::PathBuf>, CgroupError> {
    let read_error = |e: &io::Error| CgroupError::Read {
        path: dir.to_path_buf(),
        errno: errno_of(e),
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(&e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| read_error(&e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// What the kernel most likely meant by an errno on a given cgroup file.
fn hint(file: &str, errno: Errno) -> &'static str {
    match (file, errno) {
        ("cgroup.procs", Errno::EBUSY) => {
            "the v2 cgroup has controllers enabled in its cgroup.subtree_control, so it cannot hold processes"
        }
        ("cgroup.procs" | "tasks", Errno::ENOSPC) => "the v1 cpuset has no CPUs or memory nodes",
        ("cgroup.subtree_control", Errno::EBUSY) => {
            "the cgroup holds processes itself (cgroup v2 \"no internal processes\" rule); use a cgroupsPath that is not below the caller's own cgroup"
        }
        ("memory.limit_in_bytes" | "memory.max", Errno::EBUSY) => {
            "the cgroup already uses more memory than the new limit and the kernel could not reclaim it"
        }
        ("memory.limit_in_bytes", Errno::EINVAL) => {
            "the memory limit must not exceed memory+swap (memory.memsw.limit_in_bytes); raise swap too"
        }
        ("memory.memsw.limit_in_bytes", Errno::EINVAL) => {
            "memory+swap must be at least the memory limit"
        }
        ("memory.memsw.limit_in_bytes", Errno::ENOENT) => {
            "swap accounting is off in this kernel (boot with swapaccount=1), so swap cannot be limited"
        }
        ("cpuset.cpus" | "cpuset.mems", Errno::EINVAL | Errno::ERANGE) => {
            "the CPUs or memory nodes must exist and lie within the parent cgroup's set"
        }
        ("cpu.cfs_quota_us" | "cpu.cfs_period_us" | "cpu.max", Errno::EINVAL) => {
            "the period must be 1000..1000000 us and the quota at least 1000 us, within the parent's quota"
        }
        ("cpu.rt_runtime_us" | "cpu.rt_period_us", Errno::EINVAL | Errno::EBUSY) => {
            "the realtime runtime must fit in the parent's realtime budget (cpu.rt_runtime_us of the ancestors)"
        }
        ("devices.allow" | "devices.deny", Errno::EPERM) => {
            "the parent cgroup does not grant that device access"
        }
        ("devices.allow" | "devices.deny", Errno::EINVAL) => {
            "a rule for all devices (\"a\") cannot be written once the cgroup has sub-cgroups"
        }
        (_, Errno::ENOENT) => {
            "no such file: the controller is not enabled for this cgroup (v2: see the parent's cgroup.subtree_control) or the kernel lacks the feature"
        }
        _ => "",
    }
}

/// Enough for any number, pid, device rule or io.max line berth formats.
struct StackBuf {
    bytes: [u8; 128],
    len: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        StackBuf {
            bytes: [0; 128],
            len: 0,
        }
    }
}

impl StackBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
