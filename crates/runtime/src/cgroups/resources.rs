//! Resources whose files read the same on cgroup v1 and v2, and checks shared by both.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxRdma};

use super::{files, CgroupError};

/// pids.max: a positive limit, or "max" for -1 and 0 (the spec's "no limit").
pub(super) fn set_pids(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    if limit > 0 {
        files::write_fmt(dir, "pids.max", format_args!("{limit}"))
    } else {
        files::write_str(dir, "pids.max", "max")
    }
}

pub(super) fn set_cpuset(
    dir: &Path,
    cpus: Option<&str>,
    mems: Option<&str>,
) -> Result<(), CgroupError> {
    if let Some(cpus) = cpus {
        files::write_str(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = mems {
        files::write_str(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// rdma.max, one device per write: "mlx4_0 hca_handle=2 hca_object=2000".
pub(super) fn set_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<(), CgroupError> {
    let mut devices: Vec<(&String, &LinuxRdma)> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limits) in devices {
        if device.is_empty() || device.contains(char::is_whitespace) {
            return Err(CgroupError::InvalidResource {
                resource: "linux.resources.rdma device name",
                value: device.clone(),
                reason: "must be a non-empty name without spaces",
            });
        }
        let handles = limits.hca_handles().map(|n| format!(" hca_handle={n}"));
        let objects = limits.hca_objects().map(|n| format!(" hca_object={n}"));
        if handles.is_none() && objects.is_none() {
            continue;
        }
        files::write_str(
            dir,
            "rdma.max",
            &format!(
                "{device}{}{}",
                handles.unwrap_or_default(),
                objects.unwrap_or_default()
            ),
        )?;
    }
    Ok(())
}

/// checkBeforeUpdate: refuse a limit below what the cgroup already uses.
pub(super) fn check_usage(dir: &Path, usage_file: &str, limit: i64) -> Result<(), CgroupError> {
    let usage = files::read_u64(dir, usage_file)?;
    if u64::try_from(limit).is_ok_and(|l| l < usage) {
        return Err(CgroupError::InvalidResource {
            resource: "linux.resources.memory.limit",
            value: limit.to_string(),
            reason: "it is below the cgroup's current usage and checkBeforeUpdate is set",
        });
    }
    Ok(())
}

pub(super) fn block_io_is_empty(b: &LinuxBlockIo) -> bool {
    let empty = |v: &Option<Vec<_>>| v.as_ref().is_none_or(|v| v.is_empty());
    b.weight().is_none()
        && b.leaf_weight().is_none()
        && b.weight_device().as_ref().is_none_or(|v| v.is_empty())
        && empty(b.throttle_read_bps_device())
        && empty(b.throttle_write_bps_device())
        && empty(b.throttle_read_iops_device())
        && empty(b.throttle_write_iops_device())
}

/// The page size as it appears in hugetlb file names ("2MB", "1GB", "64KB"). It becomes part
/// of a path, so nothing else may pass.
pub(super) fn hugepage_size(page_size: &str) -> Result<&str, CgroupError> {
    let digits = page_size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &page_size[digits.len()..];
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB");
    if well_formed {
        Ok(page_size)
    } else {
        Err(CgroupError::InvalidResource {
            resource: "linux.resources.hugepageLimits pageSize",
            value: page_size.to_owned(),
            reason:
                "expected a size as the kernel names it in hugetlb.<size>.*, such as 2MB or 1GB",
        })
    }
}

/// A hugetlb file for a page size that the kernel does not offer is missing; say so rather
/// than "no such file".
pub(super) fn unsupported_page_size(err: CgroupError, page_size: &str) -> CgroupError {
    match err {
        CgroupError::Write {
            errno: nix::errno::Errno::ENOENT,
            ..
        } => CgroupError::InvalidResource {
            resource: "linux.resources.hugepageLimits pageSize",
            value: page_size.to_owned(),
            reason: "this kernel offers no huge pages of that size (see /sys/kernel/mm/hugepages)",
        },
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod unit {
    use super::*;

    #[test]
    fn hugepage_sizes_must_look_like_kernel_names() {
        assert_eq!(hugepage_size("2MB").unwrap(), "2MB");
        assert_eq!(hugepage_size("1GB").unwrap(), "1GB");
        assert_eq!(hugepage_size("64KB").unwrap(), "64KB");
        for bad in ["", "MB", "2mb", "2M", "../2MB", "2MB/x", "2 MB", "2BB"] {
            assert!(hugepage_size(bad).is_err(), "{bad}");
        }
    }
}
