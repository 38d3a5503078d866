//! `GET /containers/{id}/stats`: the container's cgroup counters in the shape of dockerd's
//! stats JSON (v1 and v2 field names), once or every second.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};

use super::logs::{stream_response, Chunk};
use super::{Query, Shared};
use crate::error::{ApiError, Result};

/// Where the container's cgroup files are, found through its init's /proc/PID/cgroup.
struct CgroupFiles {
    v2: Option<PathBuf>,
    v1: Vec<(String, PathBuf)>,
}

impl CgroupFiles {
    fn of(pid: i32) -> Option<CgroupFiles> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mut files = CgroupFiles {
            v2: None,
            v1: Vec::new(),
        };
        let unified = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            PathBuf::from("/sys/fs/cgroup/unified")
        };
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let rel = path.trim_start_matches('/');
            if controllers.is_empty() {
                files.v2 = Some(unified.join(rel));
            } else {
                for c in controllers.split(',') {
                    let mount = PathBuf::from("/sys/fs/cgroup").join(controllers);
                    let mount = if mount.exists() {
                        mount
                    } else {
                        PathBuf::from("/sys/fs/cgroup").join(c)
                    };
                    files.v1.push((c.to_owned(), mount.join(rel)));
                }
            }
        }
        Some(files)
    }

    /// A controller's file: from its v1 hierarchy when it has one, else the v2 tree.
    fn read(&self, controller: &str, v1: &str, v2: &str) -> Option<String> {
        if let Some((_, dir)) = self.v1.iter().find(|(c, _)| c == controller) {
            return std::fs::read_to_string(dir.join(v1)).ok();
        }
        std::fs::read_to_string(self.v2.as_ref()?.join(v2)).ok()
    }

    fn number(&self, controller: &str, v1: &str, v2: &str) -> Option<u64> {
        self.read(controller, v1, v2)?.trim().parse().ok()
    }
}

fn keyed(text: &str) -> serde_json::Map<String, Value> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

fn system_cpu_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            Some(
                line.split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>(),
            )
        })
        .map(|ticks| ticks * 1_000_000_000 / hz)
        .unwrap_or(0)
}

/// The memory.stat keys dockerd reports on a cgroup v1 host (containerd's v1 metrics); on
/// cgroup v2 every key of memory.stat is reported, as dockerd does there.
const MEMORY_V1_KEYS: &[&str] = &[
    "active_anon",
    "active_file",
    "cache",
    "dirty",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "inactive_anon",
    "inactive_file",
    "mapped_file",
    "pgfault",
    "pgmajfault",
    "pgpgin",
    "pgpgout",
    "rss",
    "rss_huge",
    "unevictable",
    "writeback",
];

/// A blkio v1 file (`MAJ:MIN Op value` lines) as dockerd's entries; `Total` lines left out.
fn blkio_entries(text: Option<String>) -> Value {
    let entries: Vec<Value> = text
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(
                json!({"major": major.parse::<u64>().ok()?, "minor": minor.parse::<u64>().ok()?,
                        "op": op, "value": value.parse::<u64>().ok()?}),
            )
        })
        .collect();
    json!(entries)
}

/// The container's interfaces but loopback, from its network namespace's /proc/PID/net/dev.
fn networks(pid: i32) -> Option<Value> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let mut out = serde_json::Map::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let n: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if name == "lo" || n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_owned(),
            json!({
                "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11],
            }),
        );
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn sample(files: &CgroupFiles, pid: i32, id: &str, name: &str) -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu_stat = files
        .read("cpu", "cpu.stat", "cpu.stat")
        .map(|s| keyed(&s))
        .unwrap_or_default();
    let stat_n = |k: &str| cpu_stat.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cpu_total = files
        .number("cpuacct", "cpuacct.usage", "")
        .unwrap_or_else(|| stat_n("usage_usec") * 1000);
    let (user, system) = match files.read("cpuacct", "cpuacct.stat", "") {
        Some(t) => {
            let k = keyed(&t);
            let ticks =
                |x: &str| k.get(x).and_then(Value::as_u64).unwrap_or(0) * 1_000_000_000 / hz;
            (ticks("user"), ticks("system"))
        }
        None => (stat_n("user_usec") * 1000, stat_n("system_usec") * 1000),
    };
    let mut cpu_usage = json!({"total_usage": cpu_total, "usage_in_kernelmode": system,
                               "usage_in_usermode": user});
    if let Some(per) = files.read("cpuacct", "cpuacct.usage_percpu", "") {
        let per: Vec<u64> = per
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .take(cpus)
            .collect();
        cpu_usage["percpu_usage"] = json!(per);
    }
    let throttled = stat_n("throttled_time").max(stat_n("throttled_usec") * 1000);
    let mem_usage = files
        .number("memory", "memory.usage_in_bytes", "memory.current")
        .unwrap_or(0);
    let mem_limit = files
        .read("memory", "memory.limit_in_bytes", "memory.max")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(host_memory);
    let v1_memory = files.v1.iter().any(|(c, _)| c == "memory");
    let mut mem_stat = files
        .read("memory", "memory.stat", "memory.stat")
        .map(|s| keyed(&s))
        .unwrap_or_default();
    if v1_memory {
        mem_stat.retain(|k, _| {
            let base = k.strip_prefix("total_").unwrap_or(k);
            MEMORY_V1_KEYS.contains(&base)
                && !(k.starts_with("total_") && base.starts_with("hierarchical_"))
        });
    }
    let mut memory =
        json!({"usage": mem_usage, "stats": mem_stat, "limit": mem_limit.min(host_memory())});
    if let Some(max) = files.number("memory", "memory.max_usage_in_bytes", "") {
        memory["max_usage"] = json!(max);
    }
    let mut pids_stats =
        json!({"current": files.number("pids", "pids.current", "pids.current").unwrap_or(0)});
    if let Some(limit) = files.number("pids", "pids.max", "pids.max") {
        pids_stats["limit"] = json!(limit);
    }
    let blkio = |name: &str| {
        blkio_entries(
            files
                .read("blkio", &format!("{name}_recursive"), "")
                .or_else(|| files.read("blkio", name, "")),
        )
    };
    let mut out = json!({
        "read": crate::files::now_rfc3339(),
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": pids_stats,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio("blkio.throttle.io_service_bytes"),
            "io_serviced_recursive": blkio("blkio.throttle.io_serviced"),
            "io_queue_recursive": [], "io_service_time_recursive": [], "io_wait_time_recursive": [],
            "io_merged_recursive": [], "io_time_recursive": [], "sectors_recursive": [],
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": cpu_usage,
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": cpus,
            "throttling_data": {"periods": stat_n("nr_periods"),
                                "throttled_periods": stat_n("nr_throttled"),
                                "throttled_time": throttled},
        },
        "memory_stats": memory,
        "name": format!("/{name}"),
        "id": id,
    });
    if let Some(n) = networks(pid) {
        out["networks"] = n;
    }
    out
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

/// One sample of a running container's counters (None when it does not run).
pub fn stats_sample(c: &crate::container::Container) -> Option<Value> {
    let files = CgroupFiles::of(c.state.pid.max(0)).filter(|_| c.state.pid > 0)?;
    Some(sample(&files, c.state.pid, &c.id, &c.name))
}

impl crate::daemon::Daemon {
    /// New limits (and restart policy) for a container: on its cgroup while it runs, and in
    /// its HostConfig.
    pub fn update_container(
        &self,
        key: &str,
        req: bollard_stubs::models::HostConfig,
    ) -> Result<()> {
        let c = self.containers.find(key)?;
        let mut hc = c.host_config.clone();
        macro_rules! take {
            ($($f:ident),*) => { $( if req.$f.is_some() { hc.$f = req.$f.clone(); } )* };
        }
        take!(
            memory,
            memory_swap,
            memory_reservation,
            cpu_shares,
            nano_cpus,
            cpu_quota,
            cpu_period,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            blkio_weight,
            restart_policy
        );
        if c.is_running() {
            let spec = crate::spec::resources_of(&hc);
            let resources: oci_spec::runtime::LinuxResources = serde_json::from_value(spec)
                .map_err(|e| ApiError::BadRequest(format!("invalid resources: {e}")))?;
            if c.runtime == "berth" {
                berth_runtime::Runtime::new(self.runtime_root())
                    .load(&c.id)
                    .and_then(|rc| rc.update(&resources))
                    .map_err(|e| {
                        ApiError::BadRequest(format!("Cannot update container {}: {e}", c.id))
                    })?;
            }
        }
        self.containers.update(&c.id, |c| {
            c.host_config = hc.clone();
            Ok(())
        })?;
        self.emit_container("update", &c);
        Ok(())
    }
}

pub async fn stats(State(d): State<Shared>, Path(key): Path<String>, q: Query) -> Result<Response> {
    let c = d.containers.find(&key)?;
    // As dockerd: `stream` defaults to true and is read as its other booleans are
    // (`stream=False` from Python clients means once).
    let stream = q.bool_or("stream", true);
    if stream && q.bool("one-shot") {
        return Err(ApiError::BadRequest(
            "cannot have stream=true and one-shot=true".into(),
        ));
    }
    let one_shot = q.bool("one-shot");
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let dd = d.clone();
    tokio::spawn(async move {
        let mut previous: Option<Value> = None;
        loop {
            let pid = berth_monitor::read_state(&dd.monitor_dir(&c.id))
                .ok()
                .filter(|s| matches!(s.status, berth_monitor::Status::Running))
                .map(|s| s.pid);
            let mut now = match pid.and_then(|p| Some((p, CgroupFiles::of(p)?))) {
                Some((p, files)) => sample(&files, p, &c.id, &c.name),
                // A stopped container reports zeros, as dockerd does.
                None => {
                    json!({"read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z",
                           "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": null,
                           "io_serviced_recursive": null, "io_queue_recursive": null,
                           "io_service_time_recursive": null, "io_wait_time_recursive": null,
                           "io_merged_recursive": null, "io_time_recursive": null,
                           "sectors_recursive": null}, "num_procs": 0, "storage_stats": {},
                           "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                           "usage_in_usermode": 0}, "throttling_data": {"periods": 0,
                           "throttled_periods": 0, "throttled_time": 0}},
                           "memory_stats": {}, "name": format!("/{}", c.name), "id": c.id})
                }
            };
            match &previous {
                Some(p) => {
                    now["precpu_stats"] = p["cpu_stats"].clone();
                    now["preread"] = p["read"].clone();
                }
                None => {
                    now["precpu_stats"] = json!({"cpu_usage": {"total_usage": 0,
                        "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
                }
            }
            // As dockerd: `stream=false` answers with a second sample a second after the
            // first (so that CPU use can be computed from the pair), `one-shot` with one.
            let wanted = stream || one_shot || previous.is_some() || pid.is_none();
            if wanted {
                let mut line = now.to_string();
                line.push('\n');
                if tx.send(Ok(Bytes::from(line))).await.is_err() || !stream || pid.is_none() {
                    return;
                }
            }
            previous = Some(now);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(stream_response(rx, "application/json"))
}

/// `POST /containers/{id}/update`: new limits on the running container's cgroup, and the
/// restart policy; both kept in its HostConfig.
pub async fn update(
    State(d): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let req: bollard_stubs::models::HostConfig = super::parse_body(&body)?;
    d.update_container(&key, req)?;
    Ok(super::json(
        axum::http::StatusCode::OK,
        &json!({"Warnings": []}),
    ))
}
