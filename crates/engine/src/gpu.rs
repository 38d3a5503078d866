//! GPUs for `--gpus` (HostConfig.DeviceRequests with the nvidia driver or the `gpu`
//! capability): the NVIDIA device nodes and the host's driver directory, as the NVIDIA
//! container toolkit's CDI spec would describe them. A CDI spec on the host
//! (/etc/cdi, /var/run/cdi) is not read yet; berth finds the nodes and the driver itself.

use std::path::{Path, PathBuf};

use bollard_stubs::models::HostConfig;

use crate::error::{ApiError, Result};

/// What a container gets for its GPUs.
#[derive(Debug, Default)]
pub struct GpuGrant {
    /// Device nodes to create (and allow in the device cgroup).
    pub devices: Vec<PathBuf>,
    /// Host directories to bind read-only at the same path (the driver's bin and lib64).
    pub binds: Vec<PathBuf>,
    pub env: Vec<String>,
    /// Directories to append to the container's PATH (the driver's tools, nvidia-smi).
    pub path: Vec<PathBuf>,
}

/// Where the driver's user-space half lives on the hosts berth knows.
const DRIVER_DIRS: &[&str] = &["/usr/local/nvidia"];

pub fn grant(hc: &HostConfig) -> Result<Option<GpuGrant>> {
    let requests: Vec<_> = hc
        .device_requests
        .iter()
        .flatten()
        .filter(|r| {
            r.driver.as_deref() == Some("nvidia")
                || r.capabilities
                    .iter()
                    .flatten()
                    .any(|set| set.iter().any(|c| c == "gpu"))
        })
        .collect();
    if requests.is_empty() {
        return Ok(None);
    }
    let mut gpus = gpu_nodes(Path::new("/dev"));
    if gpus.is_empty() {
        return Err(ApiError::BadRequest(
            "could not select device driver \"nvidia\" with capabilities: [[gpu]]: no NVIDIA GPU on this host (no /dev/nvidia0)".into(),
        ));
    }
    let mut chosen: Vec<PathBuf> = Vec::new();
    for r in &requests {
        if let Some(ids) = r.device_ids.as_ref().filter(|i| !i.is_empty()) {
            for id in ids {
                let node = PathBuf::from(format!("/dev/nvidia{id}"));
                if !gpus.contains(&node) {
                    return Err(ApiError::BadRequest(format!(
                        "unknown GPU device id {id:?}: the host has {} GPU(s)",
                        gpus.len()
                    )));
                }
                chosen.push(node);
            }
        } else {
            // Count -1 (docker's `--gpus all`) or none: every GPU.
            let n = match r.count {
                Some(c) if c > 0 => c as usize,
                _ => gpus.len(),
            };
            if n > gpus.len() {
                return Err(ApiError::BadRequest(format!(
                    "{n} GPUs requested, the host has {}",
                    gpus.len()
                )));
            }
            chosen.extend(gpus.iter().take(n).cloned());
        }
    }
    chosen.sort();
    chosen.dedup();
    gpus.retain(|g| chosen.contains(g));
    let mut devices = gpus;
    for control in [
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-modeset",
    ] {
        let p = Path::new("/dev").join(control);
        if p.exists() {
            devices.push(p);
        }
    }
    let mut grant = GpuGrant {
        devices,
        ..Default::default()
    };
    let visible: Vec<String> = chosen
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_prefix("nvidia")
                .map(str::to_owned)
        })
        .collect();
    grant
        .env
        .push(format!("NVIDIA_VISIBLE_DEVICES={}", visible.join(",")));
    for dir in DRIVER_DIRS.iter().map(Path::new).filter(|d| d.is_dir()) {
        grant.binds.push(dir.to_owned());
        grant
            .env
            .push(format!("LD_LIBRARY_PATH={}", dir.join("lib64").display()));
        grant.path.push(dir.join("bin"));
    }
    Ok(Some(grant))
}

/// /dev/nvidia0, /dev/nvidia1, … in order.
fn gpu_nodes(dev: &Path) -> Vec<PathBuf> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(dev)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("nvidia")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}
