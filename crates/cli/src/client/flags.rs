//! `run`/`create` flags and the body of `POST /containers/create` they make, field for field
//! as docker CLI builds it (Config + HostConfig + NetworkingConfig).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};

use super::units::{nano_cpus, ram_in_bytes, swap_bytes};

/// The flags of `run` and `create` (docker's names and short forms).
#[derive(Debug, Args, Default, Clone)]
pub struct RunFlags {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Run an init inside the container
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes")]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a host device to the container (or a CDI device name)
    #[arg(long)]
    pub device: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long, value_name = "gpu-request")]
    pub gpus: Option<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// User namespace to use
    #[arg(long)]
    pub userns: Option<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net", value_name = "network")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// Splits `KEY=VALUE` items, taking a bare `KEY` from our environment like docker.
fn env_item(s: &str) -> String {
    if s.contains('=') {
        return s.to_string();
    }
    match std::env::var(s) {
        Ok(v) => format!("{s}={v}"),
        Err(_) => s.to_string(),
    }
}

/// Reads a docker env or label file: one item per line, `#` comments, blank lines skipped.
fn read_kv_file(path: &str, from_env: bool) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| if from_env { env_item(l) } else { l.to_string() })
        .collect())
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })?,
        ),
        None => (s, 0),
    };
    match name {
        "no" | "always" | "unless-stopped" if count == 0 => {}
        "on-failure" => {}
        "" => return Ok(json!({"Name": "no", "MaximumRetryCount": 0})),
        "no" | "always" | "unless-stopped" => bail!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
        ),
        other => bail!("invalid restart policy format: unknown policy {other:?}"),
    }
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// `--ulimit nofile=1024:2048`.
pub fn ulimit(s: &str) -> Result<Value> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let p = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| anyhow!("invalid ulimit argument: {s}"))
    };
    Ok(json!({"Name": name, "Soft": p(soft)?, "Hard": p(hard)?}))
}

/// `-p [ip:][hostPort:]containerPort[/proto]` into ExposedPorts and PortBindings, ranges
/// (`8000-8001:80-81`) included.
pub fn publish(
    specs: &[String],
    exposed: &mut Map<String, Value>,
    bindings: &mut Map<String, Value>,
) -> Result<()> {
    for spec in specs {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, p),
            None => (spec.as_str(), "tcp"),
        };
        // The IP may be a bracketed IPv6 address containing colons.
        let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, after) = r
                .split_once("]:")
                .ok_or_else(|| anyhow!("invalid proto: {spec}"))?;
            (ip.to_string(), after.to_string())
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.len() {
                1 | 2 => (String::new(), rest.to_string()),
                3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
                _ => bail!("invalid publish spec: {spec}"),
            }
        };
        let (host, ctr) = match rest.split_once(':') {
            Some((h, c)) => (h.to_string(), c.to_string()),
            None => (String::new(), rest.clone()),
        };
        let range = |r: &str| -> Result<(u32, u32)> {
            let bad = || anyhow!("invalid containerPort: {r}");
            match r.split_once('-') {
                Some((a, b)) => Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)),
                None => {
                    let p = r.parse().map_err(|_| bad())?;
                    Ok((p, p))
                }
            }
        };
        let (c0, c1) = range(&ctr)?;
        let hr = if host.is_empty() {
            None
        } else {
            Some(range(&host)?)
        };
        if let Some((h0, h1)) = hr {
            if h1 - h0 != c1 - c0 && h0 != h1 {
                bail!("invalid ranges specified for container and host Ports: {ctr} and {host}");
            }
        }
        for (i, port) in (c0..=c1).enumerate() {
            let key = format!("{port}/{proto}");
            exposed.insert(key.clone(), json!({}));
            let host_port = match hr {
                None => String::new(),
                Some((h0, h1)) if h0 == h1 => h0.to_string(),
                Some((h0, _)) => (h0 + i as u32).to_string(),
            };
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({"HostIp": ip, "HostPort": host_port}));
            }
        }
    }
    Ok(())
}

/// `--mount type=bind,src=/a,dst=/b,readonly` into an API Mount.
pub fn mount(spec: &str) -> Result<Value> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind_opts = Map::new();
    let mut vol_opts = Map::new();
    let mut tmpfs_opts = Map::new();
    let mut driver_opts = Map::new();
    let mut read_only = false;
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim().to_string())),
            None => (field.trim().to_lowercase(), None),
        };
        let val = || {
            v.clone()
                .ok_or_else(|| anyhow!("invalid field '{field}' must be a key=value pair"))
        };
        let boolean = || -> Result<bool> {
            match v.as_deref() {
                None | Some("1" | "true") => Ok(true),
                Some("0" | "false") => Ok(false),
                Some(o) => bail!("invalid value for {k}: {o}"),
            }
        };
        match k.as_str() {
            "type" => kind = val()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(val()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(val()?));
            }
            "readonly" | "ro" => read_only = boolean()?,
            "consistency" => {
                m.insert("Consistency".into(), json!(val()?));
            }
            "bind-propagation" => {
                bind_opts.insert("Propagation".into(), json!(val()?));
            }
            "bind-recursive" => {}
            "volume-nocopy" => {
                vol_opts.insert("NoCopy".into(), json!(boolean()?));
            }
            "volume-subpath" => {
                vol_opts.insert("Subpath".into(), json!(val()?));
            }
            "volume-driver" => {
                vol_opts.insert("DriverConfig".into(), json!({"Name": val()?}));
            }
            "volume-label" => {
                let s = val()?;
                let (a, b) = s.split_once('=').unwrap_or((&s, ""));
                let labels = vol_opts.entry("Labels").or_insert_with(|| json!({}));
                labels[a] = json!(b);
            }
            "volume-opt" => {
                let s = val()?;
                let (a, b) = s.split_once('=').unwrap_or((&s, ""));
                driver_opts.insert(a.into(), json!(b));
            }
            "tmpfs-size" => {
                tmpfs_opts.insert("SizeBytes".into(), json!(ram_in_bytes(&val()?)?));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&val()?, 8)
                    .map_err(|_| anyhow!("invalid value for tmpfs-mode"))?;
                tmpfs_opts.insert("Mode".into(), json!(mode));
            }
            other => bail!("unexpected key '{other}' in '{field}'"),
        }
    }
    if !driver_opts.is_empty() {
        let dc = vol_opts.entry("DriverConfig").or_insert_with(|| json!({}));
        dc["Options"] = Value::Object(driver_opts);
    }
    m.insert("Type".into(), json!(kind));
    if read_only {
        m.insert("ReadOnly".into(), json!(true));
    }
    if !bind_opts.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind_opts));
    }
    if !vol_opts.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol_opts));
    }
    if !tmpfs_opts.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs_opts));
    }
    if !m.contains_key("Target") {
        bail!("target is required");
    }
    Ok(Value::Object(m))
}

/// `--device /dev/a[:/dev/b[:rwm]]`, or a CDI name (`vendor/class=name`) as a DeviceRequest.
fn device(spec: &str, devices: &mut Vec<Value>, requests: &mut Vec<Value>) {
    if !spec.starts_with('/') && spec.contains('=') && spec.contains('/') {
        requests.push(json!({"Driver": "cdi", "Count": 0, "DeviceIDs": [spec], "Capabilities": null, "Options": null}));
        return;
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let host = parts[0];
    let (ctr, perms) = match parts.len() {
        1 => (host, "rwm"),
        2 if parts[1].chars().all(|c| "rwm".contains(c)) && !parts[1].is_empty() => {
            (host, parts[1])
        }
        2 => (parts[1], "rwm"),
        _ => (parts[1], parts[2]),
    };
    devices.push(json!({"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}));
}

/// `KEY=VALUE` items into a map.
fn kv_map(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (s.to_string(), json!("")),
        })
        .collect()
}

/// The resource fields shared by create and `update`.
pub fn resources(f: &RunFlags, hc: &mut Map<String, Value>) -> Result<()> {
    let size = |v: &Option<String>| v.as_deref().map(ram_in_bytes).transpose();
    if let Some(m) = size(&f.memory)? {
        hc.insert("Memory".into(), json!(m));
    }
    if let Some(m) = size(&f.memory_reservation)? {
        hc.insert("MemoryReservation".into(), json!(m));
    }
    if let Some(s) = f.memory_swap.as_deref().map(swap_bytes).transpose()? {
        hc.insert("MemorySwap".into(), json!(s));
    }
    if let Some(c) = f.cpus.as_deref().map(nano_cpus).transpose()? {
        hc.insert("NanoCpus".into(), json!(c));
    }
    if let Some(v) = f.cpu_shares {
        hc.insert("CpuShares".into(), json!(v));
    }
    if let Some(v) = f.cpu_period {
        hc.insert("CpuPeriod".into(), json!(v));
    }
    if let Some(v) = f.cpu_quota {
        hc.insert("CpuQuota".into(), json!(v));
    }
    if let Some(v) = &f.cpuset_cpus {
        hc.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = &f.cpuset_mems {
        hc.insert("CpusetMems".into(), json!(v));
    }
    if let Some(v) = f.pids_limit {
        hc.insert("PidsLimit".into(), json!(v));
    }
    if let Some(v) = f.blkio_weight {
        hc.insert("BlkioWeight".into(), json!(v));
    }
    Ok(())
}

/// The body of `POST /containers/create` for `image` and `cmd`.
pub fn create_body(
    f: &RunFlags,
    image: &str,
    cmd: &[String],
    console: Option<(u16, u16)>,
) -> Result<Value> {
    let mut env: Vec<String> = Vec::new();
    for file in &f.env_file {
        env.extend(read_kv_file(file, true)?);
    }
    env.extend(f.env.iter().map(|e| env_item(e)));
    let mut labels_list = Vec::new();
    for file in &f.label_file {
        labels_list.extend(read_kv_file(file, false)?);
    }
    labels_list.extend(f.label.iter().cloned());
    let labels = kv_map(&labels_list);

    // docker: attach to stdout/stderr unless detached; stdin with -i.
    let attach = |s: &str| f.attach.iter().any(|a| a.eq_ignore_ascii_case(s));
    let (a_in, a_out, a_err) = if f.detach {
        (false, false, false)
    } else if f.attach.is_empty() {
        (f.interactive, true, true)
    } else {
        (attach("stdin"), attach("stdout"), attach("stderr"))
    };

    let mut volumes = Map::new();
    let mut binds = Vec::new();
    for v in &f.volume {
        // A lone container path is an anonymous volume; anything with a source is a bind
        // (or a named volume), passed through as docker does.
        if v.split(':').count() == 1 {
            volumes.insert(v.clone(), json!({}));
        } else {
            binds.push(v.clone());
        }
    }
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    publish(&f.publish, &mut exposed, &mut bindings)?;
    for e in &f.expose {
        let (p, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        exposed.insert(format!("{p}/{proto}"), json!({}));
    }
    let mounts = f
        .mount
        .iter()
        .map(|m| mount(m))
        .collect::<Result<Vec<_>>>()?;
    let tmpfs: Map<String, Value> = f
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((p, o)) => (p.to_string(), json!(o)),
            None => (t.clone(), json!("")),
        })
        .collect();
    let mut devices = Vec::new();
    let mut requests = Vec::new();
    for d in &f.device {
        device(d, &mut devices, &mut requests);
    }
    if let Some(g) = &f.gpus {
        let count = if g == "all" {
            -1
        } else {
            g.trim_start_matches("count=").parse().unwrap_or(-1)
        };
        requests.push(json!({"Driver": "", "Count": count, "DeviceIDs": null, "Capabilities": [["gpu"]], "Options": {}}));
    }
    let ulimits = f
        .ulimit
        .iter()
        .map(|u| ulimit(u))
        .collect::<Result<Vec<_>>>()?;
    let entrypoint = f.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            json!([""])
        } else {
            json!([e])
        }
    });

    let network_mode = f
        .network
        .first()
        .cloned()
        .unwrap_or_else(|| "default".into());
    let mut endpoints = Map::new();
    for (i, n) in f.network.iter().enumerate() {
        let mut ep = Map::new();
        if i == 0 {
            if f.ip.is_some() || f.ip6.is_some() {
                let mut ipam = Map::new();
                if let Some(ip) = &f.ip {
                    ipam.insert("IPv4Address".into(), json!(ip));
                }
                if let Some(ip) = &f.ip6 {
                    ipam.insert("IPv6Address".into(), json!(ip));
                }
                ep.insert("IPAMConfig".into(), Value::Object(ipam));
            }
            if !f.network_alias.is_empty() {
                ep.insert("Aliases".into(), json!(f.network_alias));
            }
            if let Some(m) = &f.mac_address {
                ep.insert("MacAddress".into(), json!(m));
            }
        }
        endpoints.insert(n.clone(), Value::Object(ep));
    }

    let mut hc = Map::new();
    hc.insert(
        "Binds".into(),
        if binds.is_empty() {
            Value::Null
        } else {
            json!(binds)
        },
    );
    hc.insert(
        "ContainerIDFile".into(),
        json!(f.cidfile.clone().unwrap_or_default()),
    );
    let log_config: BTreeMap<String, Value> = kv_map(&f.log_opt).into_iter().collect();
    hc.insert(
        "LogConfig".into(),
        json!({"Type": f.log_driver.clone().unwrap_or_default(), "Config": log_config}),
    );
    hc.insert("NetworkMode".into(), json!(network_mode));
    hc.insert("PortBindings".into(), Value::Object(bindings));
    hc.insert("RestartPolicy".into(), restart_policy(&f.restart)?);
    hc.insert("AutoRemove".into(), json!(f.rm));
    hc.insert("VolumeDriver".into(), json!(""));
    hc.insert("VolumesFrom".into(), opt_list(&f.volumes_from));
    hc.insert(
        "ConsoleSize".into(),
        json!(console.map_or([0, 0], |(h, w)| [h, w])),
    );
    hc.insert("CapAdd".into(), opt_list(&f.cap_add));
    hc.insert("CapDrop".into(), opt_list(&f.cap_drop));
    hc.insert(
        "CgroupnsMode".into(),
        json!(f.cgroupns.clone().unwrap_or_default()),
    );
    hc.insert("Dns".into(), json!(f.dns));
    hc.insert("DnsOptions".into(), json!(f.dns_option));
    hc.insert("DnsSearch".into(), json!(f.dns_search));
    hc.insert("ExtraHosts".into(), opt_list(&f.add_host));
    hc.insert("GroupAdd".into(), opt_list(&f.group_add));
    hc.insert("IpcMode".into(), json!(f.ipc.clone().unwrap_or_default()));
    hc.insert("Cgroup".into(), json!(""));
    hc.insert("Links".into(), Value::Null);
    hc.insert("OomScoreAdj".into(), json!(0));
    hc.insert("PidMode".into(), json!(f.pid.clone().unwrap_or_default()));
    hc.insert("Privileged".into(), json!(f.privileged));
    hc.insert("PublishAllPorts".into(), json!(f.publish_all));
    hc.insert("ReadonlyRootfs".into(), json!(f.read_only));
    hc.insert("SecurityOpt".into(), opt_list(&f.security_opt));
    hc.insert("UTSMode".into(), json!(f.uts.clone().unwrap_or_default()));
    hc.insert(
        "UsernsMode".into(),
        json!(f.userns.clone().unwrap_or_default()),
    );
    hc.insert(
        "ShmSize".into(),
        json!(f
            .shm_size
            .as_deref()
            .map(ram_in_bytes)
            .transpose()?
            .unwrap_or(0)),
    );
    if !f.sysctl.is_empty() {
        hc.insert("Sysctls".into(), Value::Object(kv_map(&f.sysctl)));
    }
    if let Some(r) = &f.runtime {
        hc.insert("Runtime".into(), json!(r));
    }
    hc.insert("Isolation".into(), json!(""));
    hc.insert(
        "CgroupParent".into(),
        json!(f.cgroup_parent.clone().unwrap_or_default()),
    );
    hc.insert("Devices".into(), json!(devices));
    hc.insert(
        "DeviceRequests".into(),
        if requests.is_empty() {
            Value::Null
        } else {
            json!(requests)
        },
    );
    hc.insert(
        "Ulimits".into(),
        if ulimits.is_empty() {
            Value::Null
        } else {
            json!(ulimits)
        },
    );
    resources(f, &mut hc)?;
    if !mounts.is_empty() {
        hc.insert("Mounts".into(), json!(mounts));
    }
    if !tmpfs.is_empty() {
        hc.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    if f.init {
        hc.insert("Init".into(), json!(true));
    }

    let mut body = json!({
        "Hostname": f.hostname.clone().unwrap_or_default(),
        "Domainname": f.domainname.clone().unwrap_or_default(),
        "User": f.user.clone().unwrap_or_default(),
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
        "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
        "Tty": f.tty,
        "OpenStdin": f.interactive,
        "StdinOnce": f.interactive && !f.detach,
        "Env": env,
        "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": f.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint.unwrap_or(Value::Null),
        "OnBuild": null,
        "Labels": labels,
        "HostConfig": hc,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    if let Some(s) = &f.stop_signal {
        body["StopSignal"] = json!(s);
    }
    if let Some(t) = f.stop_timeout {
        body["StopTimeout"] = json!(t);
    }
    if let Some(h) = healthcheck(f)? {
        body["Healthcheck"] = h;
    }
    if let Some(m) = &f.mac_address {
        body["MacAddress"] = json!(m);
    }
    Ok(body)
}

/// `--health-*` and `--no-healthcheck` as the API's `Healthcheck` (durations in
/// nanoseconds), refused where docker refuses them.
fn healthcheck(f: &RunFlags) -> Result<Option<Value>> {
    let durations = [
        ("interval", "Interval", &f.health_interval),
        ("timeout", "Timeout", &f.health_timeout),
        ("start-period", "StartPeriod", &f.health_start_period),
        ("start-interval", "StartInterval", &f.health_start_interval),
    ];
    let any = f.health_cmd.is_some()
        || f.health_retries.is_some()
        || durations.iter().any(|(_, _, v)| v.is_some());
    if f.no_healthcheck {
        if any {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !any {
        return Ok(None);
    }
    let mut h = Map::new();
    if let Some(cmd) = &f.health_cmd {
        h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
    }
    for (flag, key, v) in durations {
        if let Some(v) = v {
            let secs = super::units::parse_go_duration(v)
                .ok_or_else(|| anyhow!("invalid argument {v:?} for \"--health-{flag}\" flag: time: invalid duration {v:?}"))?;
            h.insert(key.into(), json!((secs * 1e9) as i64));
        }
    }
    if let Some(r) = f.health_retries {
        if r < 0 {
            bail!("--health-retries cannot be negative");
        }
        h.insert("Retries".into(), json!(r));
    }
    Ok(Some(Value::Object(h)))
}

fn opt_list(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        f: RunFlags,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    }

    fn body(args: &[&str]) -> Value {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let t = T::try_parse_from(all).unwrap();
        create_body(&t.f, &t.args[0], &t.args[1..], None).unwrap()
    }

    #[test]
    fn plain_run_matches_docker() {
        let b = body(&["busybox", "echo", "-n", "hi"]);
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["echo", "-n", "hi"]));
        assert_eq!(b["AttachStdin"], false);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["AttachStderr"], true);
        assert_eq!(b["OpenStdin"], false);
        assert_eq!(b["Entrypoint"], Value::Null);
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(b["HostConfig"]["AutoRemove"], false);
        assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));
    }

    #[test]
    fn interactive_tty_detach_rm() {
        let b = body(&["-it", "--rm", "busybox", "sh"]);
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["StdinOnce"], true);
        assert_eq!(b["Tty"], true);
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        assert_eq!(b["Cmd"], json!(["sh"]));
        let b = body(&["-d", "-i", "busybox"]);
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["StdinOnce"], false);
        assert_eq!(b["Cmd"], Value::Null);
    }

    #[test]
    fn resources_and_limits() {
        let b = body(&[
            "-m",
            "512m",
            "--memory-swap",
            "1g",
            "--cpus",
            "1.5",
            "-c",
            "512",
            "--cpuset-cpus",
            "0-1",
            "--pids-limit",
            "100",
            "--shm-size",
            "64m",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "nproc=10",
            "busybox",
        ]);
        let hc = &b["HostConfig"];
        assert_eq!(hc["Memory"], 536_870_912);
        assert_eq!(hc["MemorySwap"], 1_073_741_824);
        assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
        assert_eq!(hc["CpuShares"], 512);
        assert_eq!(hc["CpusetCpus"], "0-1");
        assert_eq!(hc["PidsLimit"], 100);
        assert_eq!(hc["ShmSize"], 67_108_864);
        assert_eq!(
            hc["Ulimits"],
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 10, "Hard": 10}])
        );
    }

    #[test]
    fn config_fields() {
        std::env::set_var("BERTH_TEST_FROM_ENV", "v");
        let b = body(&[
            "--name",
            "web",
            "-e",
            "A=1",
            "-e",
            "BERTH_TEST_FROM_ENV",
            "-e",
            "BERTH_TEST_UNSET_X",
            "-w",
            "/srv",
            "-u",
            "1000:1000",
            "--entrypoint",
            "/bin/sh",
            "-l",
            "a=b",
            "-h",
            "box",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "5",
            "--init",
            "--restart",
            "on-failure:3",
            "busybox",
            "-c",
            "ls",
        ]);
        assert_eq!(
            b["Env"],
            json!(["A=1", "BERTH_TEST_FROM_ENV=v", "BERTH_TEST_UNSET_X"])
        );
        assert_eq!(b["WorkingDir"], "/srv");
        assert_eq!(b["User"], "1000:1000");
        assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
        assert_eq!(b["Cmd"], json!(["-c", "ls"]));
        assert_eq!(b["Labels"], json!({"a": "b"}));
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["StopSignal"], "SIGINT");
        assert_eq!(b["StopTimeout"], 5);
        assert_eq!(b["HostConfig"]["Init"], true);
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let b = body(&["--entrypoint", "", "busybox"]);
        assert_eq!(b["Entrypoint"], json!([""]));
    }

    #[test]
    fn volumes_mounts_and_ports() {
        let b = body(&[
            "-v",
            "/data",
            "-v",
            "/host:/ctr:ro",
            "-v",
            "named:/v",
            "--mount",
            "type=bind,src=/a,dst=/b,readonly",
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=64m",
            "--tmpfs",
            "/run:rw,size=1m",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:53:53/udp",
            "-p",
            "9000",
            "--read-only",
            "busybox",
        ]);
        assert_eq!(b["Volumes"], json!({"/data": {}}));
        assert_eq!(
            b["HostConfig"]["Binds"],
            json!(["/host:/ctr:ro", "named:/v"])
        );
        assert_eq!(
            b["HostConfig"]["Mounts"],
            json!([
                {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true},
                {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 67_108_864}}
            ])
        );
        assert_eq!(b["HostConfig"]["Tmpfs"], json!({"/run": "rw,size=1m"}));
        assert_eq!(
            b["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "9000/tcp": {}})
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
                "9000/tcp": [{"HostIp": "", "HostPort": ""}]
            })
        );
        assert_eq!(b["HostConfig"]["ReadonlyRootfs"], true);
    }

    #[test]
    fn security_devices_network() {
        let b = body(&[
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "--privileged",
            "--security-opt",
            "no-new-privileges",
            "--device",
            "/dev/fuse",
            "--device",
            "nvidia.com/gpu=all",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--network",
            "mynet",
            "--ip",
            "10.0.0.5",
            "--add-host",
            "h:1.2.3.4",
            "--dns",
            "8.8.8.8",
            "--log-opt",
            "max-size=10m",
            "--log-opt",
            "max-file=3",
            "--group-add",
            "audio",
            "busybox",
        ]);
        let hc = &b["HostConfig"];
        assert_eq!(hc["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(hc["CapDrop"], json!(["ALL"]));
        assert_eq!(hc["Privileged"], true);
        assert_eq!(hc["SecurityOpt"], json!(["no-new-privileges"]));
        assert_eq!(
            hc["Devices"],
            json!([{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}])
        );
        assert_eq!(hc["DeviceRequests"][0]["Driver"], "cdi");
        assert_eq!(
            hc["DeviceRequests"][0]["DeviceIDs"],
            json!(["nvidia.com/gpu=all"])
        );
        assert_eq!(hc["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
        assert_eq!(hc["NetworkMode"], "mynet");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["mynet"]["IPAMConfig"]["IPv4Address"],
            "10.0.0.5"
        );
        assert_eq!(hc["ExtraHosts"], json!(["h:1.2.3.4"]));
        assert_eq!(hc["Dns"], json!(["8.8.8.8"]));
        assert_eq!(
            hc["LogConfig"],
            json!({"Type": "", "Config": {"max-file": "3", "max-size": "10m"}})
        );
        assert_eq!(hc["GroupAdd"], json!(["audio"]));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("always:3").is_err());
        assert!(ulimit("nofile").is_err());
        assert!(mount("type=bind,src=/a").is_err());
        let mut e = Map::new();
        let mut b = Map::new();
        assert!(publish(&["x:80".into()], &mut e, &mut b).is_err());
    }
}
