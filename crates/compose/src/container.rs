//! A service (long syntax) as the body of `POST /containers/create`: what docker compose sends
//! for each replica, labels included.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::labels;
use crate::normalize::text;
use crate::project::{dependencies, flag, Project};

/// What one container of a service is.
#[derive(Debug, Clone)]
pub struct Replica<'a> {
    pub service: &'a str,
    pub number: u32,
    /// `compose run`'s containers.
    pub oneoff: bool,
    /// The image's id (`com.docker.compose.image`), when known.
    pub image_id: Option<String>,
}

/// A file's content to place in the container before it starts (secrets and configs given
/// by `environment` or `content`).
#[derive(Debug, Clone)]
pub struct Injected {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// The container's name: `container_name`, else `<project>-<service>-<n>`.
pub fn container_name(project: &Project, svc: &Value, r: &Replica<'_>) -> String {
    if !r.oneoff {
        if let Some(n) = svc
            .get("container_name")
            .map(text)
            .filter(|s| !s.is_empty())
        {
            return n;
        }
    }
    format!("{}-{}-{}", project.name, r.service, r.number)
}

/// The create body; `Err` names what the daemon could not be given.
pub fn create_body(project: &Project, svc: &Value, r: &Replica<'_>) -> Result<Value> {
    let mut body = Map::new();
    let mut hc = Map::new();
    body.insert("Image".into(), json!(project.image_of(r.service, svc)));
    for (key, field) in [("command", "Cmd"), ("entrypoint", "Entrypoint")] {
        if let Some(Value::Array(a)) = svc.get(key) {
            body.insert(field.into(), json!(a.iter().map(text).collect::<Vec<_>>()));
        }
    }
    let env: Vec<String> = svc
        .get("environment")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect();
    body.insert("Env".into(), json!(env));
    let mut lbls: BTreeMap<String, String> = svc
        .get("labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    lbls.extend(compose_labels(project, svc, r));
    body.insert("Labels".into(), json!(lbls));
    for (key, field) in [
        ("user", "User"),
        ("working_dir", "WorkingDir"),
        ("hostname", "Hostname"),
        ("domainname", "Domainname"),
        ("stop_signal", "StopSignal"),
        ("mac_address", "MacAddress"),
    ] {
        if let Some(v) = svc.get(key) {
            body.insert(field.into(), json!(text(v)));
        }
    }
    body.insert("Tty".into(), json!(flag(svc.get("tty"))));
    body.insert("OpenStdin".into(), json!(flag(svc.get("stdin_open"))));
    if let Some(g) = svc.get("stop_grace_period") {
        body.insert(
            "StopTimeout".into(),
            json!(duration_ns(&text(g))? / 1_000_000_000),
        );
    }
    if let Some(h) = svc.get("healthcheck") {
        body.insert("Healthcheck".into(), healthcheck(h)?);
    }
    let mut exposed = Map::new();
    for e in svc
        .get("expose")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let e = text(e);
        let key = if e.contains('/') {
            e
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(key, json!({}));
    }
    let mut bindings: Map<String, Value> = Map::new();
    for p in svc
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = format!(
            "{}/{}",
            p.get("target").map(text).unwrap_or_default(),
            p.get("protocol").map(text).unwrap_or_else(|| "tcp".into())
        );
        exposed.insert(key.clone(), json!({}));
        let entry = bindings.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(json!({
                "HostIp": p.get("host_ip").map(text).unwrap_or_default(),
                "HostPort": p.get("published").map(text).unwrap_or_default(),
            }));
        }
    }
    if !exposed.is_empty() {
        body.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if !bindings.is_empty() {
        hc.insert("PortBindings".into(), Value::Object(bindings));
    }
    mounts(project, svc, &mut hc)?;
    restart(svc, &mut hc);
    resources(svc, &mut hc)?;
    host_options(svc, &mut hc)?;
    let (mode, endpoints) = networks(project, svc, r)?;
    hc.insert("NetworkMode".into(), json!(mode));
    body.insert("HostConfig".into(), Value::Object(hc));
    if !endpoints.is_empty() {
        body.insert(
            "NetworkingConfig".into(),
            json!({ "EndpointsConfig": endpoints }),
        );
    }
    Ok(Value::Object(body))
}

fn compose_labels(project: &Project, svc: &Value, r: &Replica<'_>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(labels::PROJECT.into(), project.name.clone());
    l.insert(labels::SERVICE.into(), r.service.to_string());
    l.insert(labels::NUMBER.into(), r.number.to_string());
    l.insert(
        labels::ONEOFF.into(),
        if r.oneoff { "True" } else { "False" }.into(),
    );
    l.insert(labels::CONFIG_HASH.into(), labels::config_hash(svc));
    l.insert(
        labels::CONFIG_FILES.into(),
        project
            .config_files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    l.insert(
        labels::WORKING_DIR.into(),
        project.working_dir.display().to_string(),
    );
    l.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
    let deps: Vec<String> = dependencies(svc)
        .iter()
        .map(|d| format!("{}:{}:{}", d.service, d.condition, d.restart))
        .collect();
    l.insert(labels::DEPENDS_ON.into(), deps.join(","));
    if let Some(id) = &r.image_id {
        l.insert(labels::IMAGE.into(), id.clone());
    }
    l
}

fn healthcheck(h: &Value) -> Result<Value> {
    if flag(h.get("disable")) {
        return Ok(json!({"Test": ["NONE"]}));
    }
    let mut out = Map::new();
    if let Some(Value::Array(t)) = h.get("test") {
        out.insert("Test".into(), json!(t.iter().map(text).collect::<Vec<_>>()));
    }
    for (key, field) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    ] {
        if let Some(v) = h.get(key) {
            out.insert(field.into(), json!(duration_ns(&text(v))?));
        }
    }
    if let Some(r) = h.get("retries") {
        let n: i64 = text(r)
            .parse()
            .map_err(|_| Error::Invalid(format!("healthcheck retries: not a number: {r}")))?;
        out.insert("Retries".into(), json!(n));
    }
    Ok(Value::Object(out))
}

/// Volumes, binds, tmpfs, and file-based secrets and configs (bound read-only where docker
/// compose puts them: `/run/secrets/NAME`, `/NAME`).
fn mounts(project: &Project, svc: &Value, hc: &mut Map<String, Value>) -> Result<()> {
    let mut mounts = Vec::new();
    let mut binds = Vec::new();
    for v in svc
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = v.get("type").map(text).unwrap_or_else(|| "volume".into());
        let target = v.get("target").map(text).unwrap_or_default();
        let ro = flag(v.get("read_only"));
        let source = v.get("source").map(text).unwrap_or_default();
        match kind.as_str() {
            "volume" => {
                let mut m = json!({"Type": "volume", "Target": target, "ReadOnly": ro});
                if !source.is_empty() {
                    m["Source"] = json!(project.volume_name(&source));
                }
                if flag(v.get("volume").and_then(|o| o.get("nocopy"))) {
                    m["VolumeOptions"] = json!({"NoCopy": true});
                }
                mounts.push(m);
            }
            // The short syntax asks the daemon to make a missing host directory, which only
            // the legacy Binds do (as docker compose sends them).
            "bind" if flag(v.get("bind").and_then(|b| b.get("create_host_path"))) => {
                binds.push(format!("{source}:{target}{}", if ro { ":ro" } else { "" }));
            }
            "bind" => mounts
                .push(json!({"Type": "bind", "Source": source, "Target": target, "ReadOnly": ro})),
            "tmpfs" => {
                let mut m = json!({"Type": "tmpfs", "Target": target});
                if let Some(size) = v.get("tmpfs").and_then(|t| t.get("size")) {
                    m["TmpfsOptions"] = json!({"SizeBytes": bytes(&text(size))?});
                }
                mounts.push(m);
            }
            other => {
                return Err(Error::Invalid(format!(
                    "volume type {other:?} is not supported (volume, bind and tmpfs are)"
                )))
            }
        }
    }
    for (key, section, dir) in [
        ("secrets", &project.secrets, "/run/secrets/"),
        ("configs", &project.configs, "/"),
    ] {
        for r in svc.get(key).and_then(Value::as_array).into_iter().flatten() {
            let src = r.get("source").map(text).unwrap_or_default();
            let Some(file) = section.get(&src).and_then(|d| d.get("file")).map(text) else {
                continue;
            };
            mounts.push(json!({
                "Type": "bind",
                "Source": file,
                "Target": file_target(r, &src, dir),
                "ReadOnly": true,
            }));
        }
    }
    if !mounts.is_empty() {
        hc.insert("Mounts".into(), json!(mounts));
    }
    if !binds.is_empty() {
        hc.insert("Binds".into(), json!(binds));
    }
    if let Some(Value::Array(t)) = svc.get("tmpfs") {
        let tmpfs: Map<String, Value> = t
            .iter()
            .map(|x| {
                let s = text(x);
                match s.split_once(':') {
                    Some((p, o)) => (p.to_string(), json!(o)),
                    None => (s, json!("")),
                }
            })
            .collect();
        hc.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    Ok(())
}

fn file_target(r: &Value, src: &str, dir: &str) -> String {
    match r.get("target").map(text).filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with('/') => t,
        Some(t) => format!("{dir}{t}"),
        None => format!("{dir}{src}"),
    }
}

/// Secrets and configs that are not files (`environment`, `content`): written into the
/// container before it starts.
pub fn injected(project: &Project, svc: &Value) -> Vec<Injected> {
    let mut out = Vec::new();
    for (key, section, dir) in [
        ("secrets", &project.secrets, "/run/secrets/"),
        ("configs", &project.configs, "/"),
    ] {
        for r in svc.get(key).and_then(Value::as_array).into_iter().flatten() {
            let src = r.get("source").map(text).unwrap_or_default();
            let Some(def) = section.get(&src) else {
                continue;
            };
            let content = if let Some(var) = def.get("environment").map(text) {
                project.environment.get(&var).cloned().unwrap_or_default()
            } else if let Some(c) = def.get("content").map(text) {
                c
            } else {
                continue;
            };
            let mode = r
                .get("mode")
                .map(text)
                .and_then(|m| u32::from_str_radix(m.trim_start_matches("0o"), 8).ok())
                .unwrap_or(0o444);
            out.push(Injected {
                path: file_target(r, &src, dir),
                content: content.into_bytes(),
                mode,
            });
        }
    }
    out
}

fn restart(svc: &Value, hc: &mut Map<String, Value>) {
    let policy = if let Some(p) = svc.get("deploy").and_then(|d| d.get("restart_policy")) {
        let max = p
            .get("max_attempts")
            .map(text)
            .and_then(|m| m.parse::<i64>().ok());
        match p.get("condition").map(text).as_deref() {
            Some("none") => json!({"Name": "no"}),
            Some("on-failure") => {
                json!({"Name": "on-failure", "MaximumRetryCount": max.unwrap_or(0)})
            }
            _ => json!({"Name": "always"}),
        }
    } else {
        let r = svc.get("restart").map(text).unwrap_or_else(|| "no".into());
        match r.split_once(':') {
            Some((name, n)) => {
                json!({"Name": name, "MaximumRetryCount": n.parse::<i64>().unwrap_or(0)})
            }
            None => json!({"Name": r}),
        }
    };
    hc.insert("RestartPolicy".into(), policy);
}

/// `deploy.resources` over the short `mem_limit`, `cpus`, `pids_limit`, ….
fn resources(svc: &Value, hc: &mut Map<String, Value>) -> Result<()> {
    let limits = svc
        .get("deploy")
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("limits"));
    let reservations = svc
        .get("deploy")
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("reservations"));
    let pick = |deploy: Option<&Value>, key: &str, short: &str| {
        deploy
            .and_then(|l| l.get(key))
            .or_else(|| svc.get(short))
            .map(text)
    };
    if let Some(m) = pick(limits, "memory", "mem_limit") {
        hc.insert("Memory".into(), json!(bytes(&m)?));
    }
    if let Some(m) = pick(reservations, "memory", "mem_reservation") {
        hc.insert("MemoryReservation".into(), json!(bytes(&m)?));
    }
    if let Some(c) = pick(limits, "cpus", "cpus") {
        let cpus: f64 = c
            .parse()
            .map_err(|_| Error::Invalid(format!("cpus: not a number: {c}")))?;
        hc.insert("NanoCpus".into(), json!((cpus * 1e9) as i64));
    }
    if let Some(p) = pick(limits, "pids", "pids_limit") {
        let n: i64 = p
            .parse()
            .map_err(|_| Error::Invalid(format!("pids_limit: not a number: {p}")))?;
        hc.insert("PidsLimit".into(), json!(n));
    }
    if let Some(s) = svc.get("memswap_limit").map(text) {
        hc.insert(
            "MemorySwap".into(),
            json!(if s == "-1" { -1 } else { bytes(&s)? }),
        );
    }
    if let Some(s) = svc.get("shm_size").map(text) {
        hc.insert("ShmSize".into(), json!(bytes(&s)?));
    }
    for (key, field) in [
        ("cpu_shares", "CpuShares"),
        ("oom_score_adj", "OomScoreAdj"),
    ] {
        if let Some(v) = svc.get(key).map(text) {
            let n: i64 = v
                .parse()
                .map_err(|_| Error::Invalid(format!("{key}: not a number: {v}")))?;
            hc.insert(field.into(), json!(n));
        }
    }
    if let Some(c) = svc.get("cpuset").map(text) {
        hc.insert("CpusetCpus".into(), json!(c));
    }
    Ok(())
}

fn host_options(svc: &Value, hc: &mut Map<String, Value>) -> Result<()> {
    let strings = |k: &str| -> Option<Value> {
        svc.get(k)
            .and_then(Value::as_array)
            .map(|a| json!(a.iter().map(text).collect::<Vec<_>>()))
    };
    for (key, field) in [
        ("cap_add", "CapAdd"),
        ("cap_drop", "CapDrop"),
        ("dns", "Dns"),
        ("dns_search", "DnsSearch"),
        ("dns_opt", "DnsOptions"),
        ("extra_hosts", "ExtraHosts"),
        ("security_opt", "SecurityOpt"),
        ("group_add", "GroupAdd"),
    ] {
        if let Some(v) = strings(key) {
            hc.insert(field.into(), v);
        }
    }
    for (key, field) in [
        ("privileged", "Privileged"),
        ("read_only", "ReadonlyRootfs"),
        ("init", "Init"),
    ] {
        if svc.get(key).is_some() {
            hc.insert(field.into(), json!(flag(svc.get(key))));
        }
    }
    for (key, field) in [
        ("ipc", "IpcMode"),
        ("pid", "PidMode"),
        ("userns_mode", "UsernsMode"),
        ("cgroup_parent", "CgroupParent"),
        ("runtime", "Runtime"),
    ] {
        if let Some(v) = svc.get(key) {
            hc.insert(field.into(), json!(text(v)));
        }
    }
    if let Some(Value::Object(s)) = svc.get("sysctls") {
        hc.insert(
            "Sysctls".into(),
            json!(s
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect::<BTreeMap<_, _>>()),
        );
    }
    if let Some(Value::Object(u)) = svc.get("ulimits") {
        let list: Vec<Value> = u
            .iter()
            .map(|(name, v)| {
                let (soft, hard) = match v {
                    Value::Object(o) => (
                        o.get("soft").map(text).unwrap_or_default(),
                        o.get("hard").map(text).unwrap_or_default(),
                    ),
                    other => (text(other), text(other)),
                };
                json!({"Name": name, "Soft": soft.parse::<i64>().unwrap_or(0),
                       "Hard": hard.parse::<i64>().unwrap_or(0)})
            })
            .collect();
        hc.insert("Ulimits".into(), json!(list));
    }
    if let Some(l) = svc.get("logging") {
        hc.insert(
            "LogConfig".into(),
            json!({
                "Type": l.get("driver").map(text).unwrap_or_else(|| "json-file".into()),
                "Config": l.get("options").cloned().unwrap_or_else(|| json!({})),
            }),
        );
    }
    if let Some(Value::Array(devs)) = svc.get("devices") {
        let list: Vec<Value> = devs
            .iter()
            .map(|d| {
                let s = text(d);
                let parts: Vec<&str> = s.split(':').collect();
                let host = parts.first().copied().unwrap_or_default();
                json!({
                    "PathOnHost": host,
                    "PathInContainer": parts.get(1).copied().unwrap_or(host),
                    "CgroupPermissions": parts.get(2).copied().unwrap_or("rwm"),
                })
            })
            .collect();
        hc.insert("Devices".into(), json!(list));
    }
    Ok(())
}

/// The network mode and the endpoints: every network of the service, with the service's name
/// as an alias (how its peers find it) besides the aliases it asks for.
fn networks(
    project: &Project,
    svc: &Value,
    r: &Replica<'_>,
) -> Result<(String, Map<String, Value>)> {
    let mut endpoints = Map::new();
    if let Some(mode) = svc.get("network_mode").map(text) {
        let mode = match mode.strip_prefix("service:") {
            Some(other) => format!("container:{}-{other}-1", project.name),
            None => mode,
        };
        return Ok((mode, endpoints));
    }
    let nets = svc.get("networks").and_then(Value::as_object);
    let mut first: Option<(i64, String)> = None;
    for (key, cfg) in nets.into_iter().flatten() {
        let name = project.network_name(key);
        let mut aliases = Vec::new();
        if !r.oneoff {
            aliases.push(json!(r.service));
        }
        for a in cfg
            .get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            aliases.push(json!(text(a)));
        }
        let mut ep = json!({"Aliases": aliases});
        if let Some(ip) = cfg.get("ipv4_address").map(text) {
            ep["IPAMConfig"] = json!({"IPv4Address": ip});
        }
        // The network with the highest priority (then the first by name) is the primary.
        let prio = cfg
            .get("priority")
            .map(text)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if first.as_ref().is_none_or(|(p, _)| prio > *p) {
            first = Some((prio, name.clone()));
        }
        endpoints.insert(name, ep);
    }
    let mode = first
        .map(|(_, n)| n)
        .ok_or_else(|| Error::Invalid(format!("service {:?} has no network", r.service)))?;
    Ok((mode, endpoints))
}

/// `1m30s`, `500ms`, `10s`, `2h` (Go's durations, as compose takes them) in nanoseconds.
pub fn duration_ns(s: &str) -> Result<i64> {
    let bad = || Error::Invalid(format!("invalid duration {s:?}"));
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        // A bare number is seconds.
        return Ok((n * 1e9) as i64);
    }
    berth_build::duration::go_duration_ns(s)
        .map(|ns| ns as i64)
        .ok_or_else(bad)
}

/// `512m`, `1g`, `1.5gb`, `100` (bytes) in bytes.
pub fn bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split]
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid size {s:?}")))?;
    let mult = match t[split..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        _ => return Err(Error::Invalid(format!("invalid size {s:?}"))),
    };
    Ok((n * mult) as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms").unwrap(), 500_000_000);
        assert_eq!(duration_ns("2").unwrap(), 2_000_000_000);
        assert!(duration_ns("3x").is_err());
        assert_eq!(bytes("64m").unwrap(), 64 << 20);
        assert_eq!(bytes("1.5g").unwrap(), 3 << 29);
        assert!(bytes("lots").is_err());
    }
}
