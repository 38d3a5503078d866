//! cgroup v2 files: one tree, controllers enabled per level through cgroup.subtree_control.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use super::{files, resources, CgroupError};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the directories from the mount point down, enabling in each ancestor's
/// cgroup.subtree_control the controllers the root offers, so that the leaf gets their files.
pub(super) fn create(
    mount_point: &Path,
    dir: &Path,
    controllers: &[String],
) -> Result<(), CgroupError> {
    let Ok(below) = dir.strip_prefix(mount_point) else {
        return files::create_dir_all(dir);
    };
    let mut current = mount_point.to_path_buf();
    for component in below.components() {
        enable_controllers(&current, controllers)?;
        current.push(component);
        files::create_dir(&current)?;
    }
    Ok(())
}

pub(super) fn set_cpu(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    // Refused before anything is written, so a bad spec leaves the cgroup as it was.
    let realtime = cpu.realtime_runtime().is_some_and(|r| r != 0)
        || cpu.realtime_period().is_some_and(|p| p != 0);
    if realtime {
        return Err(CgroupError::Unsupported {
            resource: "linux.resources.cpu.realtimeRuntime/realtimePeriod",
            version: "v2 (the cpu controller has no realtime group scheduling there)",
        });
    }
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        let weight = cpu_weight(shares);
        files::write_fmt(dir, "cpu.weight", format_args!("{weight}"))?;
    }
    let quota = cpu.quota().filter(|&q| q != 0);
    let period = cpu.period().filter(|&p| p != 0);
    match (quota, period) {
        (None, None) => {}
        (Some(q), None) if q > 0 => files::write_fmt(dir, "cpu.max", format_args!("{q}"))?,
        (Some(_), None) => files::write_str(dir, "cpu.max", "max")?,
        (Some(q), Some(p)) if q > 0 => files::write_fmt(dir, "cpu.max", format_args!("{q} {p}"))?,
        (Some(_), Some(p)) => files::write_fmt(dir, "cpu.max", format_args!("max {p}"))?,
        (None, Some(p)) => {
            // cpu.max takes the quota first; keep the current one rather than resetting it to
            // "max" as a period-only update would otherwise do.
            let current = files::read(dir, "cpu.max")?;
            let quota = current.split_whitespace().next().unwrap_or("max");
            files::write_fmt(dir, "cpu.max", format_args!("{quota} {p}"))?;
        }
    }
    if let Some(burst) = cpu.burst() {
        files::write_fmt(dir, "cpu.max.burst", format_args!("{burst}"))?;
    }
    if let Some(idle) = cpu.idle() {
        files::write_fmt(dir, "cpu.idle", format_args!("{idle}"))?;
    }
    Ok(())
}

/// memory.max, memory.swap.max (swap alone: the spec's swap counts memory+swap), memory.low.
/// v2 has no switch for the OOM killer, no swappiness and no kernel memory limit; like runc,
/// those are ignored.
pub(super) fn set_memory(dir: &Path, memory: &LinuxMemory) -> Result<(), CgroupError> {
    if memory.check_before_update() == Some(true) {
        if let Some(limit) = memory.limit().filter(|&l| l > 0) {
            resources::check_usage(dir, "memory.current", limit)?;
        }
    }
    if let Some(swap) = swap_max(memory.limit(), memory.swap())? {
        match write_limit(dir, "memory.swap.max", swap) {
            // Without swap (or swap accounting) the file is missing; "no swap" and
            // "unlimited swap" then already hold.
            Err(CgroupError::Write {
                errno: Errno::ENOENT,
                ..
            }) if swap <= 0 => {}
            other => other?,
        }
    }
    if let Some(limit) = memory.limit() {
        write_limit(dir, "memory.max", limit)?;
    }
    if let Some(reservation) = memory.reservation() {
        write_limit(dir, "memory.low", reservation)?;
    }
    Ok(())
}

/// io.weight (or io.bfq.weight where BFQ offers it) and io.max. The leaf weight has no v2
/// equivalent (v2 cgroups with children hold no processes) and is ignored.
pub(super) fn set_block_io(dir: &Path, block_io: &LinuxBlockIo) -> Result<(), CgroupError> {
    let bfq = files::exists(dir, "io.bfq.weight");
    if let Some(weight) = block_io.weight().filter(|&w| w != 0) {
        if bfq {
            files::write_fmt(dir, "io.bfq.weight", format_args!("{weight}"))?;
        } else {
            let weight = io_weight(weight);
            files::write_fmt(dir, "io.weight", format_args!("{weight}"))?;
        }
    }
    for device in block_io.weight_device().iter().flatten() {
        let (major, minor) = (device.major(), device.minor());
        if let Some(weight) = device.weight() {
            if bfq {
                files::write_fmt(
                    dir,
                    "io.bfq.weight",
                    format_args!("{major}:{minor} {weight}"),
                )?;
            } else {
                let weight = io_weight(weight);
                files::write_fmt(dir, "io.weight", format_args!("{major}:{minor} {weight}"))?;
            }
        }
    }
    for line in io_max_lines(block_io) {
        files::write_str(dir, "io.max", &line)?;
    }
    Ok(())
}

pub(super) fn set_hugepage_limits(
    dir: &Path,
    limits: &[LinuxHugepageLimit],
) -> Result<(), CgroupError> {
    for limit in limits {
        let size = resources::hugepage_size(limit.page_size())?;
        write_limit(dir, &format!("hugetlb.{size}.max"), limit.limit())
            .map_err(|e| resources::unsupported_page_size(e, size))?;
        // Reservations are charged separately since Linux 5.7; see v1::set_hugepage_limits.
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if files::exists(dir, &rsvd) {
            write_limit(dir, &rsvd, limit.limit())?;
        }
    }
    Ok(())
}

/// Writes linux.resources.unified verbatim, in key order, one line per write (the kernel
/// parses one entry per write in files such as io.max).
pub(super) fn set_unified(
    dir: &Path,
    controllers: &[String],
    unified: &HashMap<String, String>,
) -> Result<(), CgroupError> {
    let mut entries: Vec<(&String, &String)> = unified.iter().collect();
    entries.sort();
    for (key, value) in entries {
        let Some((controller, _)) = key.split_once('.') else {
            return Err(unified_error(
                key,
                "must be a file name of the form CONTROLLER.PARAMETER",
            ));
        };
        if key.contains('/') || controller.is_empty() {
            return Err(unified_error(
                key,
                "must be a file name of the form CONTROLLER.PARAMETER",
            ));
        }
        let lines = value.split('\n').filter(|l| !l.is_empty());
        for line in lines {
            match files::write_str(dir, key, line) {
                Err(CgroupError::Write {
                    errno: Errno::ENOENT | Errno::EPERM | Errno::EACCES,
                    ..
                }) if controller != "cgroup" && !controllers.iter().any(|c| c == controller) => {
                    return Err(unified_error(
                        key,
                        &format!(
                            "the {controller} controller is not available in this cgroup v2 tree (it offers: {})",
                            if controllers.is_empty() {
                                "none".to_owned()
                            } else {
                                controllers.join(" ")
                            }
                        ),
                    ));
                }
                other => other?,
            }
        }
    }
    Ok(())
}

/// Writes cgroup.freeze and waits for cgroup.events to report the new state. The kernel
/// signals changes to cgroup.events with POLLPRI, so this sleeps in poll(2), not in a loop.
pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    files::write_str(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let events_path = dir.join("cgroup.events");
    let events = File::open(&events_path).map_err(|e| CgroupError::Read {
        path: events_path.clone(),
        errno: files::errno_of(&e),
    })?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    loop {
        let state = read_frozen(&events, &events_path)?;
        if state == frozen {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            if frozen {
                // Do not leave the container half frozen.
                files::write_str(dir, "cgroup.freeze", "0")?;
            }
            return Err(CgroupError::FreezeTimeout {
                path: events_path,
                wanted: if frozen { "frozen 1" } else { "frozen 0" },
                last: format!("frozen {}", u8::from(state)),
                timeout_ms: u64::try_from(FREEZE_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
            });
        }
        let wait = PollTimeout::try_from(deadline - now).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(CgroupError::Read {
                    path: events_path,
                    errno,
                })
            }
        }
    }
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    Ok(files::read_keyed(dir, "cgroup.events", "frozen")? == 1)
}

/// runc's conversion of cgroup v1 cpu.shares [2, 262144] to cgroup v2 cpu.weight
/// [1, 10000], linear so that the default 1024 lands near the default 100 (39).
pub(super) fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// runc's conversion of a blkio weight [10, 1000] to io.weight [1, 10000].
pub(super) fn io_weight(blkio_weight: u16) -> u64 {
    let weight = u64::from(blkio_weight.clamp(10, 1000));
    1 + ((weight - 10) * 9999) / 990
}

/// memory.swap.max from the spec's memory limit and memory+swap limit, as runc computes it:
/// None leaves the file alone, -1 means "max".
pub(super) fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<i64>, CgroupError> {
    // The spec (like runc) treats 0 as "not set".
    let limit = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    // Unlimited memory with swap unset means both unlimited, as on v1.
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some(-1)),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err(CgroupError::InvalidResource {
            resource: "linux.resources.memory.swap",
            value: swap.to_string(),
            reason: "a swap limit needs a memory limit (swap counts memory+swap)",
        });
    }
    if limit < 0 || swap < limit {
        return Err(CgroupError::InvalidResource {
            resource: "linux.resources.memory.swap",
            value: swap.to_string(),
            reason: "memory+swap must be at least the memory limit",
        });
    }
    Ok(Some(swap - limit))
}

/// One io.max line per device, its limits in one write: "8:0 rbps=1048576 wiops=max".
/// A rate of 0 lifts the limit ("max"), as 0 does in v1's blkio.throttle files.
pub(super) fn io_max_lines(block_io: &LinuxBlockIo) -> Vec<String> {
    let mut devices: Vec<(i64, i64, [Option<u64>; 4])> = Vec::new();
    let kinds = [
        block_io.throttle_read_bps_device(),
        block_io.throttle_write_bps_device(),
        block_io.throttle_read_iops_device(),
        block_io.throttle_write_iops_device(),
    ];
    for (slot, list) in kinds.iter().enumerate() {
        for d in list.iter().flatten() {
            let index = match devices
                .iter()
                .position(|(major, minor, _)| (*major, *minor) == (d.major(), d.minor()))
            {
                Some(i) => i,
                None => {
                    devices.push((d.major(), d.minor(), [None; 4]));
                    devices.len() - 1
                }
            };
            if let Some(entry) = devices.get_mut(index) {
                entry.2[slot] = Some(d.rate());
            }
        }
    }
    devices
        .into_iter()
        .map(|(major, minor, rates)| {
            let mut line = format!("{major}:{minor}");
            for (key, rate) in ["rbps", "wbps", "riops", "wiops"].iter().zip(rates) {
                match rate {
                    Some(0) => line.push_str(&format!(" {key}=max")),
                    Some(rate) => line.push_str(&format!(" {key}={rate}")),
                    None => {}
                }
            }
            line
        })
        .collect()
}

/// Enables `wanted` in `dir`'s cgroup.subtree_control where `dir` offers them and they are
/// not on yet. Like runc, a controller the kernel refuses here (a threaded or realtime
/// constraint, say) is skipped: a limit that needs it then fails with a missing file, which
/// names the file. Only when nothing at all could be enabled is the refusal reported.
fn enable_controllers(dir: &Path, wanted: &[String]) -> Result<(), CgroupError> {
    let offered = files::read(dir, "cgroup.controllers")?;
    let enabled = files::read(dir, "cgroup.subtree_control")?;
    let missing: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|c| offered.split_whitespace().any(|o| o == *c))
        .filter(|c| !enabled.split_whitespace().any(|o| o == *c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    let Err(first_error) = files::write_str(dir, "cgroup.subtree_control", &all.join(" ")) else {
        return Ok(());
    };
    let mut any = false;
    for one in &all {
        any |= files::write_str(dir, "cgroup.subtree_control", one).is_ok();
    }
    if any {
        Ok(())
    } else {
        Err(first_error)
    }
}

fn write_limit(dir: &Path, file: &str, value: i64) -> Result<(), CgroupError> {
    if value < 0 {
        files::write_str(dir, file, "max")
    } else {
        files::write_fmt(dir, file, format_args!("{value}"))
    }
}

fn read_frozen(events: &File, path: &Path) -> Result<bool, CgroupError> {
    // kernfs files are re-read from offset 0 after each notification.
    let mut buf = [0u8; 256];
    let n = events.read_at(&mut buf, 0).map_err(|e| CgroupError::Read {
        path: path.to_path_buf(),
        errno: files::errno_of(&e),
    })?;
    let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
    text.lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .map(|v| v.trim() == "1")
        .ok_or_else(|| CgroupError::Parse {
            path: path.to_path_buf(),
            content: text.into_owned(),
        })
}

fn unified_error(key: &str, reason: &str) -> CgroupError {
    CgroupError::Unified {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod unit {
    use super::*;
    use oci_spec::runtime::{LinuxBlockIoBuilder, LinuxThrottleDeviceBuilder};

    #[test]
    fn shares_convert_to_weight_as_runc() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
        // Outside the v1 range, the v1 clamp applies first.
        assert_eq!(cpu_weight(1), 1);
        assert_eq!(cpu_weight(1_000_000), 10_000);
    }

    #[test]
    fn blkio_weight_converts_to_io_weight() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(500), 4950);
        assert_eq!(io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap_minus_memory() {
        const MIB: i64 = 1 << 20;
        assert_eq!(
            swap_max(Some(8 * MIB), Some(24 * MIB)).unwrap(),
            Some(16 * MIB)
        );
        // Equal limits disable swap.
        assert_eq!(swap_max(Some(8 * MIB), Some(8 * MIB)).unwrap(), Some(0));
        assert_eq!(swap_max(Some(8 * MIB), Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(-1), None).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(8 * MIB), None).unwrap(), None);
        assert_eq!(swap_max(None, None).unwrap(), None);
        assert!(swap_max(None, Some(8 * MIB)).is_err());
        assert!(swap_max(Some(8 * MIB), Some(4 * MIB)).is_err());
    }

    #[test]
    fn io_max_groups_limits_per_device() {
        let dev = |major: i64, minor: i64, rate: u64| {
            LinuxThrottleDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .rate(rate)
                .build()
                .unwrap()
        };
        let block_io = LinuxBlockIoBuilder::default()
            .throttle_read_bps_device(vec![dev(8, 0, 1_048_576), dev(8, 16, 0)])
            .throttle_write_iops_device(vec![dev(8, 0, 100)])
            .build()
            .unwrap();
        assert_eq!(
            io_max_lines(&block_io),
            ["8:0 rbps=1048576 wiops=100", "8:16 rbps=max"]
        );
        assert!(io_max_lines(&LinuxBlockIo::default()).is_empty());
    }
}
