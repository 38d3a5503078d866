//! The compose specification's keys, checked as docker compose's schema validation checks
//! them: an unknown key is refused by its path (`services.web additional properties 'imag'
//! not allowed`), and so is a value of the wrong kind where the loader relies on it. `x-`
//! extension keys are allowed wherever the specification allows them.

use serde_json::Value;

const TOP: &[&str] = &[
    "version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models",
];

const SERVICE: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

const BUILD: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "entitlements",
    "args",
    "ssh",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "additional_contexts",
    "network",
    "provenance",
    "sbom",
    "pull",
    "target",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];
const DEPLOY: &[&str] = &[
    "mode",
    "endpoint_mode",
    "replicas",
    "labels",
    "rollback_config",
    "update_config",
    "resources",
    "restart_policy",
    "placement",
];
const RESOURCES: &[&str] = &["limits", "reservations"];
const LIMITS: &[&str] = &["cpus", "memory", "pids"];
const RESERVATIONS: &[&str] = &["cpus", "memory", "generic_resources", "devices"];
const RESTART_POLICY: &[&str] = &["condition", "delay", "max_attempts", "window"];
const HEALTHCHECK: &[&str] = &[
    "disable",
    "interval",
    "retries",
    "test",
    "timeout",
    "start_period",
    "start_interval",
];
const LOGGING: &[&str] = &["driver", "options"];
const DEPENDS_ON: &[&str] = &["condition", "restart", "required"];
const SERVICE_NETWORK: &[&str] = &[
    "aliases",
    "interface_name",
    "ipv4_address",
    "ipv6_address",
    "link_local_ips",
    "mac_address",
    "driver_opts",
    "priority",
    "gw_priority",
];
const PORT: &[&str] = &[
    "name",
    "mode",
    "host_ip",
    "target",
    "published",
    "protocol",
    "app_protocol",
];
const VOLUME_MOUNT: &[&str] = &[
    "type",
    "source",
    "target",
    "read_only",
    "consistency",
    "bind",
    "volume",
    "tmpfs",
    "image",
];
const BIND: &[&str] = &["propagation", "create_host_path", "recursive", "selinux"];
const VOLUME_OPTS: &[&str] = &["nocopy", "subpath", "labels"];
const TMPFS: &[&str] = &["size", "mode"];
const FILE_REF: &[&str] = &["source", "target", "uid", "gid", "mode"];
const EXTENDS: &[&str] = &["service", "file"];
const NETWORK: &[&str] = &[
    "name",
    "driver",
    "driver_opts",
    "ipam",
    "external",
    "internal",
    "enable_ipv4",
    "enable_ipv6",
    "attachable",
    "labels",
];
const IPAM: &[&str] = &["driver", "config", "options"];
const VOLUME: &[&str] = &["name", "driver", "driver_opts", "external", "labels"];
const SECRET: &[&str] = &[
    "name",
    "environment",
    "file",
    "external",
    "labels",
    "driver",
    "driver_opts",
    "template_driver",
];
const CONFIG: &[&str] = &[
    "name",
    "content",
    "environment",
    "file",
    "external",
    "labels",
    "template_driver",
];
const INCLUDE: &[&str] = &["path", "env_file", "project_directory"];

/// Checks a file's tree; the message is docker compose's (without the file, which the caller
/// adds).
pub fn validate(root: &Value) -> Result<(), String> {
    let top = object(root, "(root)")?;
    keys(top, TOP, "(root)", true)?;
    if let Some(inc) = root.get("include") {
        for (i, item) in list(inc, "include")?.iter().enumerate() {
            if item.is_object() {
                keys(object(item, "")?, INCLUDE, &format!("include.{i}"), false)?;
            }
        }
    }
    if let Some(services) = root.get("services").filter(|v| !v.is_null()) {
        for (name, svc) in object(services, "services")? {
            if !name.starts_with("x-") {
                service(svc, &format!("services.{name}"))?;
            }
        }
    }
    for (section, allowed) in [
        ("networks", NETWORK),
        ("volumes", VOLUME),
        ("secrets", SECRET),
        ("configs", CONFIG),
    ] {
        if let Some(m) = root.get(section).filter(|v| !v.is_null()) {
            for (name, v) in object(m, section)? {
                if name.starts_with("x-") || v.is_null() {
                    continue;
                }
                let path = format!("{section}.{name}");
                keys(object(v, &path)?, allowed, &path, true)?;
                if section == "networks" {
                    nested(v, "ipam", IPAM, &path)?;
                }
            }
        }
    }
    Ok(())
}

fn service(svc: &Value, path: &str) -> Result<(), String> {
    let m = object(svc, path)?;
    keys(m, SERVICE, path, true)?;
    if m.get("build").is_some_and(Value::is_object) {
        nested(svc, "build", BUILD, path)?;
    }
    nested(svc, "deploy", DEPLOY, path)?;
    if let Some(d) = svc.get("deploy") {
        let dp = format!("{path}.deploy");
        nested(d, "resources", RESOURCES, &dp)?;
        nested(d, "restart_policy", RESTART_POLICY, &dp)?;
        if let Some(r) = d.get("resources") {
            let rp = format!("{dp}.resources");
            nested(r, "limits", LIMITS, &rp)?;
            nested(r, "reservations", RESERVATIONS, &rp)?;
        }
    }
    nested(svc, "healthcheck", HEALTHCHECK, path)?;
    nested(svc, "logging", LOGGING, path)?;
    if m.get("extends").is_some_and(Value::is_object) {
        nested(svc, "extends", EXTENDS, path)?;
    }
    for (key, allowed) in [("depends_on", DEPENDS_ON), ("networks", SERVICE_NETWORK)] {
        if let Some(Value::Object(entries)) = m.get(key) {
            for (name, v) in entries {
                if v.is_object() {
                    let p = format!("{path}.{key}.{name}");
                    keys(object(v, &p)?, allowed, &p, true)?;
                }
            }
        } else if let Some(v) = m.get(key) {
            list(v, &format!("{path}.{key}"))?;
        }
    }
    for (key, allowed) in [
        ("ports", PORT),
        ("volumes", VOLUME_MOUNT),
        ("secrets", FILE_REF),
        ("configs", FILE_REF),
    ] {
        if let Some(v) = m.get(key) {
            for (i, item) in list(v, &format!("{path}.{key}"))?.iter().enumerate() {
                if item.is_object() {
                    let p = format!("{path}.{key}.{i}");
                    keys(object(item, &p)?, allowed, &p, true)?;
                    if key == "volumes" {
                        nested(item, "bind", BIND, &p)?;
                        nested(item, "volume", VOLUME_OPTS, &p)?;
                        nested(item, "tmpfs", TMPFS, &p)?;
                    }
                } else if !(item.is_string() || (key == "ports" && item.is_number())) {
                    return Err(format!("{path}.{key}.{i} must be a string"));
                }
            }
        }
    }
    Ok(())
}

fn nested(parent: &Value, key: &str, allowed: &[&str], path: &str) -> Result<(), String> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            let p = format!("{path}.{key}");
            keys(object(v, &p)?, allowed, &p, true)
        }
    }
}

fn keys(
    m: &serde_json::Map<String, Value>,
    allowed: &[&str],
    path: &str,
    extensions: bool,
) -> Result<(), String> {
    for k in m.keys() {
        if allowed.contains(&k.as_str()) || (extensions && k.starts_with("x-")) {
            continue;
        }
        return Err(format!("{path} additional properties '{k}' not allowed"));
    }
    Ok(())
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a serde_json::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{path} must be a mapping"))
}

fn list<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("{path} must be a list"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_are_named_by_path() {
        let ok = json!({"services": {"web": {"image": "x", "x-note": 1,
            "deploy": {"resources": {"limits": {"memory": "1g"}}},
            "ports": ["80", {"target": 80}]}}, "x-any": {}});
        validate(&ok).unwrap();
        let bad = json!({"services": {"web": {"imag": "x"}}});
        assert_eq!(
            validate(&bad).unwrap_err(),
            "services.web additional properties 'imag' not allowed"
        );
        let bad = json!({"servces": {}});
        assert_eq!(
            validate(&bad).unwrap_err(),
            "(root) additional properties 'servces' not allowed"
        );
        let bad = json!({"services": {"w": {"image": "x",
            "deploy": {"resources": {"limits": {"memroy": "1g"}}}}}});
        assert_eq!(
            validate(&bad).unwrap_err(),
            "services.w.deploy.resources.limits additional properties 'memroy' not allowed"
        );
        let bad = json!({"services": {"w": {"ports": "80:80"}}});
        assert_eq!(
            validate(&bad).unwrap_err(),
            "services.w.ports must be a list"
        );
    }
}
