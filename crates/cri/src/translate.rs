//! A CRI container config as the engine's create request: Docker's words where they exist
//! (the HostConfig dockershim filled), the engine's extras where they do not.

use std::path::PathBuf;

use berth_engine::{ContainerView, Extras};
use bollard_stubs::models::{ContainerCreateBody, DeviceMapping, HostConfig};

use crate::error::{Error, Result};
use crate::pods::{NS_CONTAINER, NS_NODE, NS_POD, NS_TARGET};
use crate::proto as pb;

/// SecurityProfile.ProfileType numbers (api.proto).
const PROFILE_RUNTIME_DEFAULT: i32 = 0;
const PROFILE_UNCONFINED: i32 = 1;
const PROFILE_LOCALHOST: i32 = 2;

/// SupplementalGroupsPolicy.Strict.
const GROUPS_STRICT: i32 = 1;

/// What the engine is asked to create for `config` in the pod whose infra is `pod`.
pub fn create_request(
    config: &pb::ContainerConfig,
    pod: &ContainerView,
    pod_log_dir: Option<&str>,
    image: &str,
    runtime: &str,
    labels: std::collections::HashMap<String, String>,
) -> Result<(ContainerCreateBody, Extras)> {
    let linux = config.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let pod_ref = format!("container:{}", pod.id);
    let pod_network_host = pod.host_config.network_mode.as_deref() == Some("host");
    let mut hc = HostConfig {
        // The pod's network and UTS namespaces always (kubelet asks for no other).
        network_mode: Some(pod_ref.clone()),
        uts_mode: Some(if pod_network_host {
            "host".into()
        } else {
            pod_ref.clone()
        }),
        ipc_mode: Some(match ns.ipc {
            NS_NODE => "host".into(),
            NS_CONTAINER => "private".into(),
            _ => pod_ref.clone(),
        }),
        pid_mode: match ns.pid {
            NS_NODE => Some("host".into()),
            NS_POD => Some(pod_ref.clone()),
            NS_TARGET if !ns.target_id.is_empty() => Some(format!("container:{}", ns.target_id)),
            NS_TARGET => {
                return Err(Error::InvalidArgument(
                    "pid namespace mode TARGET without a target_id".into(),
                ))
            }
            _ => None,
        },
        runtime: Some(runtime.to_owned()),
        privileged: Some(sc.privileged),
        readonly_rootfs: Some(sc.readonly_rootfs),
        cgroup_parent: pod.host_config.cgroup_parent.clone(),
        ..Default::default()
    };
    if let Some(caps) = &sc.capabilities {
        if !caps.add_ambient_capabilities.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "ambient capabilities ({}) are not supported by berth's CRI yet",
                caps.add_ambient_capabilities.join(", ")
            )));
        }
        hc.cap_add = Some(caps.add_capabilities.clone());
        hc.cap_drop = Some(caps.drop_capabilities.clone());
    }
    refuse_user_namespace(&ns)?;
    let mut security_opt = Vec::new();
    if sc.no_new_privs {
        security_opt.push("no-new-privileges".to_owned());
    }
    match sc.seccomp.as_ref() {
        _ if sc.privileged => {}
        Some(p) if p.profile_type == PROFILE_RUNTIME_DEFAULT => {}
        Some(p) if p.profile_type == PROFILE_LOCALHOST => {
            if !p.localhost_ref.starts_with('/') {
                return Err(Error::InvalidArgument(format!(
                    "seccomp Localhost profile {:?} is not an absolute path",
                    p.localhost_ref
                )));
            }
            security_opt.push(format!("seccomp={}", p.localhost_ref));
        }
        Some(p) if p.profile_type == PROFILE_UNCONFINED => {
            security_opt.push("seccomp=unconfined".into())
        }
        Some(p) => {
            return Err(Error::InvalidArgument(format!(
                "unknown seccomp profile type {}",
                p.profile_type
            )))
        }
        // As containerd: no profile asked for is no profile.
        None => security_opt.push("seccomp=unconfined".into()),
    }
    hc.security_opt = Some(security_opt);
    if !sc.masked_paths.is_empty() || sc.privileged {
        hc.masked_paths = Some(sc.masked_paths.clone());
    }
    if !sc.readonly_paths.is_empty() || sc.privileged {
        hc.readonly_paths = Some(sc.readonly_paths.clone());
    }
    hc.group_add = Some(
        sc.supplemental_groups
            .iter()
            .map(|g| g.to_string())
            .collect(),
    );
    let user = match (
        &sc.run_as_user,
        sc.run_as_username.as_str(),
        &sc.run_as_group,
    ) {
        (Some(u), _, Some(g)) => Some(format!("{}:{}", u.value, g.value)),
        (Some(u), _, None) => Some(u.value.to_string()),
        (None, name, Some(g)) if !name.is_empty() => Some(format!("{name}:{}", g.value)),
        (None, name, None) if !name.is_empty() => Some(name.to_owned()),
        (None, _, Some(_)) => {
            return Err(Error::InvalidArgument(
                "runAsGroup is set without runAsUser or runAsUserName".into(),
            ))
        }
        _ => None,
    };
    if let Some(r) = &linux.resources {
        apply_resources(&mut hc, r)?;
    }
    hc.devices = Some(
        config
            .devices
            .iter()
            .map(|d| DeviceMapping {
                path_on_host: Some(d.host_path.clone()),
                path_in_container: Some(d.container_path.clone()),
                cgroup_permissions: Some(if d.permissions.is_empty() {
                    "rwm".into()
                } else {
                    d.permissions.clone()
                }),
            })
            .collect(),
    );
    if !config.cdi_devices.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "CDI devices ({}) are not supported by berth's CRI yet",
            config
                .cdi_devices
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut binds = Vec::new();
    for m in &config.mounts {
        if !m.container_path.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "mount {:?}: the container path must be absolute",
                m.container_path
            )));
        }
        if m.host_path.is_empty() || m.image.is_some() {
            return Err(Error::InvalidArgument(format!(
                "mount at {}: only host paths can be mounted",
                m.container_path
            )));
        }
        if m.recursive_read_only {
            return Err(Error::InvalidArgument(format!(
                "mount at {}: recursive read-only mounts are not supported yet",
                m.container_path
            )));
        }
        let mut opts = vec![if m.readonly { "ro" } else { "rw" }];
        opts.push(match pb::MountPropagation::try_from(m.propagation) {
            Ok(pb::MountPropagation::PropagationHostToContainer) => "rslave",
            Ok(pb::MountPropagation::PropagationBidirectional) => "rshared",
            _ => "rprivate",
        });
        binds.push(format!(
            "{}:{}:{}",
            m.host_path,
            m.container_path,
            opts.join(",")
        ));
    }
    hc.binds = Some(binds);
    let env: Vec<String> = config
        .envs
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: (!config.command.is_empty()).then(|| config.command.clone()),
        cmd: (!config.args.is_empty()).then(|| config.args.clone()),
        env: Some(env),
        working_dir: (!config.working_dir.is_empty()).then(|| config.working_dir.clone()),
        user,
        tty: Some(config.tty),
        open_stdin: Some(config.stdin),
        stdin_once: Some(config.stdin_once),
        attach_stdin: Some(config.stdin),
        labels: Some(labels),
        host_config: Some(hc),
        ..Default::default()
    };
    let cri_log = match (pod_log_dir, config.log_path.as_str()) {
        (Some(dir), path) if !dir.is_empty() && !path.is_empty() => {
            Some(PathBuf::from(dir).join(path))
        }
        _ => None,
    };
    Ok((
        body,
        Extras {
            infra: false,
            cri_log,
            strict_groups: sc.supplemental_groups_policy == GROUPS_STRICT,
        },
    ))
}

/// Pods in user namespaces of their own (`hostUsers: false`) are not served yet: refused by
/// name rather than run in the host's.
pub fn refuse_user_namespace(ns: &pb::NamespaceOption) -> Result<()> {
    match ns.userns_options.as_ref().map(|u| u.mode) {
        None | Some(NS_NODE) => Ok(()),
        Some(_) => Err(Error::InvalidArgument(
            "user namespaces for pods (hostUsers: false) are not supported by berth's CRI yet"
                .into(),
        )),
    }
}

/// The CRI's resources in Docker's HostConfig fields (a 0 leaves the field unset).
pub fn apply_resources(hc: &mut HostConfig, r: &pb::LinuxContainerResources) -> Result<()> {
    let set = |v: i64| (v != 0).then_some(v);
    hc.cpu_period = set(r.cpu_period);
    hc.cpu_quota = set(r.cpu_quota);
    hc.cpu_shares = set(r.cpu_shares);
    hc.memory = set(r.memory_limit_in_bytes);
    // No swap unless asked: the limit is the limit (OCI's swap is memory + swap).
    hc.memory_swap = set(r.memory_swap_limit_in_bytes).or(hc.memory);
    if r.oom_score_adj != 0 {
        hc.oom_score_adj = Some(r.oom_score_adj);
    }
    hc.cpuset_cpus = (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone());
    hc.cpuset_mems = (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone());
    // kubelet lists every page size of the node, at 0 when the pod asks for none.
    if let Some(h) = r.hugepage_limits.iter().find(|h| h.limit != 0) {
        return Err(Error::InvalidArgument(format!(
            "hugepage limits ({} of {}) are not supported by berth's CRI yet",
            h.limit, h.page_size
        )));
    }
    if !r.unified.is_empty() {
        return Err(Error::InvalidArgument(
            "unified (cgroup v2) resources are not supported by berth's CRI yet".into(),
        ));
    }
    Ok(())
}
