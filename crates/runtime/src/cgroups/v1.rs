//! cgroup v1 files: one directory per hierarchy, one hierarchy per controller group.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork};

use super::{files, resources, CgroupError};

const MEMSW: &str = "memory.memsw.limit_in_bytes";
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the cpuset directories level by level. A new v1 cpuset starts with no CPUs and
/// no memory nodes, and no process can join it (ENOSPC) until they are filled in; like runc,
/// each level copies its parent's (unless cgroup.clone_children already did).
pub(super) fn create_cpuset(mount_point: &Path, dir: &Path) -> Result<(), CgroupError> {
    let Ok(below) = dir.strip_prefix(mount_point) else {
        return files::create_dir_all(dir);
    };
    let mut parent = mount_point.to_path_buf();
    for component in below.components() {
        let current = parent.join(component);
        files::create_dir(&current)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if files::read(&current, file)?.trim().is_empty() {
                let inherited = files::read(&parent, file)?;
                files::write_str(&current, file, inherited.trim())?;
            }
        }
        parent = current;
    }
    Ok(())
}

pub(super) fn set_cpu(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        files::write_fmt(dir, "cpu.shares", format_args!("{shares}"))?;
        // The kernel clamps cpu.shares to [2, 262144] without an error; a user asking for
        // more or less than that gets something else, so say so (runc does too).
        let kept = files::read_u64(dir, "cpu.shares")?;
        if kept != shares {
            return Err(CgroupError::Clamped {
                path: dir.join("cpu.shares"),
                wanted: shares,
                got: kept,
                reason: "cpu shares must be within 2..=262144",
            });
        }
    }
    let quota = cpu.quota().filter(|&q| q != 0);
    let mut period_again = None;
    if let Some(period) = cpu.period().filter(|&p| p != 0) {
        // Shrinking the period can be refused (EINVAL) because old quota / new period would
        // exceed the parent's bandwidth; when a new quota follows, retry after it.
        match files::write_fmt(dir, "cpu.cfs_period_us", format_args!("{period}")) {
            Err(CgroupError::Write {
                errno: Errno::EINVAL,
                ..
            }) if quota.is_some() => period_again = Some(period),
            other => other?,
        }
    }
    if let Some(quota) = quota {
        // Any negative quota means "unlimited", which v1 spells -1.
        let quota = quota.max(-1);
        files::write_fmt(dir, "cpu.cfs_quota_us", format_args!("{quota}"))?;
        if let Some(period) = period_again {
            files::write_fmt(dir, "cpu.cfs_period_us", format_args!("{period}"))?;
        }
    }
    if let Some(burst) = cpu.burst() {
        files::write_fmt(dir, "cpu.cfs_burst_us", format_args!("{burst}"))?;
    }
    // The realtime period bounds the runtime, so it goes first.
    if let Some(period) = cpu.realtime_period().filter(|&p| p != 0) {
        files::write_fmt(dir, "cpu.rt_period_us", format_args!("{period}"))?;
    }
    if let Some(runtime) = cpu.realtime_runtime().filter(|&r| r != 0) {
        files::write_fmt(dir, "cpu.rt_runtime_us", format_args!("{runtime}"))?;
    }
    if let Some(idle) = cpu.idle() {
        files::write_fmt(dir, "cpu.idle", format_args!("{idle}"))?;
    }
    Ok(())
}

pub(super) fn set_memory(dir: &Path, memory: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = memory.limit();
    let mut swap = memory.swap();
    // "memory -1, swap unset" means unlimited memory, and runc reads that as unlimited swap
    // too; otherwise the old memsw limit would still cap the container.
    if limit == Some(-1) && swap.is_none() && files::exists(dir, MEMSW) {
        swap = Some(-1);
    }
    if memory.check_before_update() == Some(true) {
        if let Some(limit) = limit.filter(|&l| l > 0) {
            resources::check_usage(dir, "memory.usage_in_bytes", limit)?;
        }
    }
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            // The kernel keeps memory <= memory+swap at every step: when the new memsw is
            // above the current memory limit, raise memsw first, else lower memory first.
            let current = files::read_u64(dir, "memory.limit_in_bytes")?;
            let swap_first = swap < 0 || u64::try_from(swap).is_ok_and(|s| current < s);
            if swap_first {
                files::write_fmt(dir, MEMSW, format_args!("{swap}"))?;
                files::write_fmt(dir, "memory.limit_in_bytes", format_args!("{limit}"))?;
            } else {
                files::write_fmt(dir, "memory.limit_in_bytes", format_args!("{limit}"))?;
                files::write_fmt(dir, MEMSW, format_args!("{swap}"))?;
            }
        }
        (Some(limit), None) => {
            files::write_fmt(dir, "memory.limit_in_bytes", format_args!("{limit}"))?
        }
        (None, Some(swap)) => files::write_fmt(dir, MEMSW, format_args!("{swap}"))?,
        (None, None) => {}
    }
    if let Some(reservation) = memory.reservation() {
        files::write_fmt(
            dir,
            "memory.soft_limit_in_bytes",
            format_args!("{reservation}"),
        )?;
    }
    if let Some(tcp) = memory.kernel_tcp() {
        files::write_fmt(dir, "memory.kmem.tcp.limit_in_bytes", format_args!("{tcp}"))?;
    }
    if let Some(disable) = memory.disable_oom_killer() {
        files::write_str(dir, "memory.oom_control", if disable { "1" } else { "0" })?;
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(CgroupError::InvalidResource {
                resource: "linux.resources.memory.swappiness",
                value: swappiness.to_string(),
                reason: "must be within 0..=100",
            });
        }
        files::write_fmt(dir, "memory.swappiness", format_args!("{swappiness}"))?;
    }
    Ok(())
}

pub(super) fn set_block_io(dir: &Path, block_io: &LinuxBlockIo) -> Result<(), CgroupError> {
    // CFQ's blkio.weight is gone since Linux 5.0; BFQ offers blkio.bfq.weight instead.
    let (weight_file, weight_device_file) =
        if !files::exists(dir, "blkio.weight") && files::exists(dir, "blkio.bfq.weight") {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        } else {
            ("blkio.weight", "blkio.weight_device")
        };
    if let Some(weight) = block_io.weight().filter(|&w| w != 0) {
        files::write_fmt(dir, weight_file, format_args!("{weight}"))?;
    }
    if let Some(weight) = block_io.leaf_weight().filter(|&w| w != 0) {
        files::write_fmt(dir, "blkio.leaf_weight", format_args!("{weight}"))?;
    }
    for device in block_io.weight_device().iter().flatten() {
        let (major, minor) = (device.major(), device.minor());
        if let Some(weight) = device.weight() {
            files::write_fmt(
                dir,
                weight_device_file,
                format_args!("{major}:{minor} {weight}"),
            )?;
        }
        if let Some(weight) = device.leaf_weight() {
            files::write_fmt(
                dir,
                "blkio.leaf_weight_device",
                format_args!("{major}:{minor} {weight}"),
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            block_io.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            block_io.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            block_io.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            block_io.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            // A rate of 0 removes the device's limit, as the v1 documentation specifies.
            let (major, minor, rate) = (d.major(), d.minor(), d.rate());
            files::write_fmt(dir, file, format_args!("{major}:{minor} {rate}"))?;
        }
    }
    Ok(())
}

pub(super) fn set_hugepage_limits(
    dir: &Path,
    limits: &[LinuxHugepageLimit],
) -> Result<(), CgroupError> {
    for limit in limits {
        let size = resources::hugepage_size(limit.page_size())?;
        let value = limit.limit();
        files::write_fmt(
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            format_args!("{value}"),
        )
        .map_err(|e| resources::unsupported_page_size(e, size))?;
        // Reservations are charged separately since Linux 5.7; without this limit a
        // container could reserve (mmap) more huge pages than it may fault in.
        let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if files::exists(dir, &rsvd) {
            files::write_fmt(dir, &rsvd, format_args!("{value}"))?;
        }
    }
    Ok(())
}

pub(super) fn set_net_cls(dir: &Path, network: &LinuxNetwork) -> Result<(), CgroupError> {
    match network.class_id() {
        Some(class_id) => files::write_fmt(dir, "net_cls.classid", format_args!("{class_id}")),
        None => Ok(()),
    }
}

pub(super) fn set_net_prio(dir: &Path, network: &LinuxNetwork) -> Result<(), CgroupError> {
    for p in network.priorities().iter().flatten() {
        let (name, priority) = (p.name(), p.priority());
        files::write_fmt(dir, "net_prio.ifpriomap", format_args!("{name} {priority}"))?;
    }
    Ok(())
}

/// Writes FROZEN until freezer.state reads FROZEN. A task in vfork or an uninterruptible
/// sleep can keep the cgroup FREEZING; writing FROZEN again makes the kernel retry it.
/// v1 offers no notification, hence the polling.
pub(super) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut delay = Duration::from_millis(1);
    loop {
        files::write_str(dir, "freezer.state", "FROZEN")?;
        let state = files::read(dir, "freezer.state")?;
        if state.trim() == "FROZEN" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            // Half-frozen is the worst outcome: some processes stopped, others not.
            files::write_str(dir, "freezer.state", "THAWED")?;
            return Err(CgroupError::FreezeTimeout {
                path: dir.join("freezer.state"),
                wanted: "FROZEN",
                last: state.trim().to_owned(),
                timeout_ms: millis(FREEZE_TIMEOUT),
            });
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

pub(super) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    loop {
        files::write_str(dir, "freezer.state", "THAWED")?;
        let state = files::read(dir, "freezer.state")?;
        if state.trim() == "THAWED" {
            return Ok(());
        }
        // Stays FROZEN while an ancestor is frozen.
        if Instant::now() >= deadline {
            return Err(CgroupError::FreezeTimeout {
                path: dir.join("freezer.state"),
                wanted: "THAWED",
                last: state.trim().to_owned(),
                timeout_ms: millis(FREEZE_TIMEOUT),
            });
        }
        sleep(Duration::from_millis(5));
    }
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    Ok(files::read(dir, "freezer.state")?.trim() == "FROZEN")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
