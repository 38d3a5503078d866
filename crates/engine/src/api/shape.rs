//! The shapes dockerd gives the objects it returns. dockerd writes Go structs, whose fields
//! are all there even when empty (`null`, `""`, `0`, `false`) except those tagged
//! `omitempty`, and fills some at create (`ShmSize`, `IpcMode`); clients read them so
//! (docker-py's `attrs['HostConfig']['Binds']`, the CLI's templates). berth's records keep
//! only what was set: these functions give the answers dockerd's shape, as the API version
//! asked for has it.

use serde_json::{json, Map, Value};

use super::ApiVersion;
use crate::container::Container;

/// An image's config (or a container's) in the shape of Go's `container.Config`.
pub fn docker_config(c: &Value) -> Value {
    let s = |k: &str| {
        c.get(k)
            .cloned()
            .filter(Value::is_string)
            .unwrap_or(json!(""))
    };
    let b = |k: &str| json!(c.get(k).and_then(Value::as_bool).unwrap_or(false));
    let or_null = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let set = |k: &str| c.get(k).filter(|v| !v.is_null() && *v != "" && *v != false);
    let mut out = Map::new();
    out.insert("Hostname".into(), s("Hostname"));
    out.insert("Domainname".into(), s("Domainname"));
    out.insert("User".into(), s("User"));
    for k in ["AttachStdin", "AttachStdout", "AttachStderr"] {
        out.insert(k.into(), b(k));
    }
    if let Some(v) = set("ExposedPorts") {
        out.insert("ExposedPorts".into(), v.clone());
    }
    for k in ["Tty", "OpenStdin", "StdinOnce"] {
        out.insert(k.into(), b(k));
    }
    out.insert("Env".into(), or_null("Env"));
    out.insert("Cmd".into(), or_null("Cmd"));
    for k in ["Healthcheck", "ArgsEscaped"] {
        if let Some(v) = set(k) {
            out.insert(k.into(), v.clone());
        }
    }
    out.insert("Image".into(), s("Image"));
    out.insert("Volumes".into(), or_null("Volumes"));
    out.insert("WorkingDir".into(), s("WorkingDir"));
    out.insert("Entrypoint".into(), or_null("Entrypoint"));
    for k in ["NetworkDisabled", "MacAddress"] {
        if let Some(v) = set(k) {
            out.insert(k.into(), v.clone());
        }
    }
    out.insert("OnBuild".into(), or_null("OnBuild"));
    out.insert("Labels".into(), or_null("Labels"));
    for k in ["StopSignal", "StopTimeout", "Shell"] {
        if let Some(v) = set(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// `HostConfig`'s fields, with what dockerd shows when unset.
fn host_config_fields(c: &Container) -> Vec<(&'static str, Value)> {
    let masked = |paths: &[&str]| {
        if c.host_config.privileged == Some(true) {
            json!([])
        } else {
            json!(paths)
        }
    };
    vec![
        ("Binds", Value::Null),
        ("ContainerIDFile", json!("")),
        ("LogConfig", json!({"Type": "json-file", "Config": {}})),
        ("NetworkMode", json!("bridge")),
        ("PortBindings", json!({})),
        (
            "RestartPolicy",
            json!({"Name": "no", "MaximumRetryCount": 0}),
        ),
        ("AutoRemove", json!(false)),
        ("VolumeDriver", json!("")),
        ("VolumesFrom", Value::Null),
        ("CapAdd", Value::Null),
        ("CapDrop", Value::Null),
        // What berth does: a cgroup namespace of its own where the host is cgroup v2 only,
        // the host's on a v1 or hybrid host (dockerd's defaults too).
        (
            "CgroupnsMode",
            json!(if crate::spec::namespaces(None)
                .iter()
                .any(|n| n["type"] == "cgroup")
            {
                "private"
            } else {
                "host"
            }),
        ),
        ("Dns", json!([])),
        ("DnsOptions", json!([])),
        ("DnsSearch", json!([])),
        ("ExtraHosts", Value::Null),
        ("GroupAdd", Value::Null),
        ("IpcMode", json!("private")),
        ("Cgroup", json!("")),
        ("Links", Value::Null),
        ("OomScoreAdj", json!(0)),
        ("PidMode", json!("")),
        ("Privileged", json!(false)),
        ("PublishAllPorts", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("SecurityOpt", Value::Null),
        ("UTSMode", json!("")),
        ("UsernsMode", json!("")),
        ("ShmSize", json!(64 << 20)),
        ("Runtime", json!(c.runtime)),
        ("ConsoleSize", json!([0, 0])),
        ("Isolation", json!("")),
        ("CpuShares", json!(0)),
        ("Memory", json!(0)),
        ("NanoCpus", json!(0)),
        ("CgroupParent", json!("")),
        ("BlkioWeight", json!(0)),
        ("BlkioWeightDevice", json!([])),
        ("BlkioDeviceReadBps", json!([])),
        ("BlkioDeviceWriteBps", json!([])),
        ("BlkioDeviceReadIOps", json!([])),
        ("BlkioDeviceWriteIOps", json!([])),
        ("CpuPeriod", json!(0)),
        ("CpuQuota", json!(0)),
        ("CpuRealtimePeriod", json!(0)),
        ("CpuRealtimeRuntime", json!(0)),
        ("CpusetCpus", json!("")),
        ("CpusetMems", json!("")),
        ("Devices", json!([])),
        ("DeviceCgroupRules", Value::Null),
        ("DeviceRequests", Value::Null),
        ("KernelMemory", json!(0)),
        ("KernelMemoryTCP", json!(0)),
        ("MemoryReservation", json!(0)),
        ("MemorySwap", json!(0)),
        ("MemorySwappiness", Value::Null),
        ("OomKillDisable", json!(false)),
        ("PidsLimit", Value::Null),
        ("Ulimits", Value::Null),
        ("CpuCount", json!(0)),
        ("CpuPercent", json!(0)),
        ("IOMaximumIOps", json!(0)),
        ("IOMaximumBandwidth", json!(0)),
        ("MaskedPaths", masked(crate::spec::MASKED)),
        ("ReadonlyPaths", masked(crate::spec::READ_ONLY)),
    ]
}

/// A container's `HostConfig` as dockerd shows it: every field, with the defaults dockerd
/// fills at create (`ShmSize` 64 MiB, `IpcMode` private, `-1` swappiness and a zero pids
/// limit read as unset), `KernelMemory*` only before 1.42 (omitted since when unset).
pub fn host_config(c: &Container, v: ApiVersion) -> Value {
    let given = serde_json::to_value(&c.host_config).unwrap_or(json!({}));
    let mut out = Map::new();
    for (k, default) in host_config_fields(c) {
        if matches!(k, "KernelMemory" | "KernelMemoryTCP") && !v.before(42) {
            if let Some(x) = given.get(k).filter(|x| x.as_i64().is_some_and(|n| n != 0)) {
                out.insert(k.into(), x.clone());
            }
            continue;
        }
        let value = match given.get(k) {
            None | Some(Value::Null) => default,
            Some(x) => match k {
                "ShmSize" if x.as_i64().is_some_and(|n| n <= 0) => default,
                "IpcMode" | "CgroupnsMode" if x == "" => default,
                "MemorySwappiness" if x == -1 => Value::Null,
                "PidsLimit" if x.as_i64().is_some_and(|n| n <= 0) => Value::Null,
                _ => x.clone(),
            },
        };
        out.insert(k.into(), value);
    }
    // Fields of later API versions that berth keeps (Annotations, Mounts, Init, …).
    for (k, x) in given.as_object().into_iter().flatten() {
        if !out.contains_key(k) && !x.is_null() {
            out.insert(k.clone(), x.clone());
        }
    }
    Value::Object(out)
}

/// Endpoint fields of later versions out of `NetworkSettings.Networks` (`DNSNames`: 1.44).
pub fn endpoints(networks: &mut Value, v: ApiVersion) {
    if v.before(44) {
        for ep in networks
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            if let Some(ep) = ep.as_object_mut() {
                ep.remove("DNSNames");
            }
        }
    }
}

/// A container's inspect answer in dockerd's shape for version `v`.
pub fn container_inspect(out: &mut Value, c: &Container, v: ApiVersion) {
    out["HostConfig"] = host_config(c, v);
    let config = serde_json::to_value(&c.config).unwrap_or(json!({}));
    out["Config"] = docker_config(&config);
    endpoints(&mut out["NetworkSettings"]["Networks"], v);
    // dockerd makes a container's /etc files and log at its first start: until then their
    // paths are empty.
    if c.state.status == "created" && c.state.started_at.starts_with("0001-") {
        for k in ["ResolvConfPath", "HostnamePath", "HostsPath", "LogPath"] {
            out[k] = json!("");
        }
    }
}

/// One item of the container list in dockerd's shape for version `v`.
pub fn container_summary(out: &mut Value, v: ApiVersion) {
    endpoints(&mut out["NetworkSettings"]["Networks"], v);
}

/// A network as dockerd shows it to version `v`: `EnableIPv4` since 1.47, and the default
/// bridge's driver options (which dockerd lists, and berth applies: icc, masquerade, the
/// host address ports are published on, the MTU).
pub fn network(mut n: Value, v: ApiVersion) -> Value {
    if v.before(47) {
        if let Some(m) = n.as_object_mut() {
            m.remove("EnableIPv4");
        }
    }
    if n["Name"] == "bridge" && n["Driver"] == "bridge" {
        let name = n["Options"]["com.docker.network.bridge.name"].clone();
        let mut opts = json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.driver.mtu": "1500",
        });
        if !name.is_null() {
            opts["com.docker.network.bridge.name"] = name;
        }
        if let (Some(o), Some(given)) = (opts.as_object_mut(), n["Options"].as_object()) {
            o.extend(given.clone());
        }
        n["Options"] = opts;
    }
    n
}

/// `ps`'s `Command`: the path and the arguments, those with a space in single quotes (as
/// dockerd writes it; it is not shell quoting).
pub fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_every_field_dockerd_shows() {
        let c = docker_config(&json!({"Cmd": ["sh"], "Env": ["A=1"], "Shell": null}));
        let mut keys: Vec<&str> = c
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        keys.sort_unstable();
        let mut want = [
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Env",
            "Cmd",
            "Image",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "OnBuild",
            "Labels",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["Entrypoint"], Value::Null);
    }

    #[test]
    fn commands_quote_arguments_with_spaces() {
        let args = ["sh", "-c", "echo a; sleep 1"].map(String::from);
        assert_eq!(command_line(&args), "sh -c 'echo a; sleep 1'");
    }
}
