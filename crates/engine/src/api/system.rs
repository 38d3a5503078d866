//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`: what clients ask first.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{filters, json, label_matches, Query, Shared};
use crate::error::Result;

pub async fn ping() -> Response {
    let mut r = (StatusCode::OK, "OK").into_response();
    let h = r.headers_mut();
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    // The classic builder protocol (issue: builds); docker CLI picks its builder from this.
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    r
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub async fn version() -> Response {
    let version = env!("CARGO_PKG_VERSION");
    json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "berth"},
            "Components": [{"Name": "Engine", "Version": version, "Details": {
                "ApiVersion": super::API_VERSION, "Arch": go_arch(), "BuildTime": "",
                "Experimental": "false", "GitCommit": "", "GoVersion": "n/a (Rust)",
                "KernelVersion": kernel(), "MinAPIVersion": super::MIN_API_VERSION, "Os": "linux",
            }}],
            "Version": version,
            "ApiVersion": super::API_VERSION,
            "MinAPIVersion": super::MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "n/a (Rust)",
            "Os": "linux",
            "Arch": go_arch(),
            "KernelVersion": kernel(),
            "BuildTime": "",
        }),
    )
}

pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

pub async fn info(State(d): State<Shared>, v: super::ApiVersion) -> Response {
    let all = d.containers.list();
    let running = all.iter().filter(|c| c.state.status == "running").count();
    let paused = all.iter().filter(|c| c.state.status == "paused").count();
    let images = d.images.list().map(|l| l.len()).unwrap_or(0);
    let cgroup_v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|k| k.parse::<u64>().ok())
                })
        })
        .unwrap_or(0)
        * 1024;
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut runtimes = serde_json::Map::new();
    runtimes.insert("berth".into(), json!({"path": d.opts.berth_exe}));
    for (name, path) in &d.opts.runtimes {
        runtimes.insert(name.clone(), json!({"path": path}));
    }
    // The pools given with --default-address-pool (`base=CIDR,size=N`), as dockerd lists them.
    let pools: Vec<Value> = d
        .opts
        .network
        .pools
        .iter()
        .map(|p| {
            let field = |k: &str| {
                p.split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .unwrap_or_default()
            };
            json!({"Base": field("base"), "Size": field("size").parse::<u8>().unwrap_or(0)})
        })
        .collect();
    let mut out = json!({
            "ID": machine_id(),
            "Containers": all.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": all.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "OomKillDisable": !cgroup_v2,
            "IPv4Forwarding": true, "BridgeNfIptables": true, "BridgeNfIp6tables": true,
            "Debug": false,
            "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
            "NGoroutines": 0,
            "SystemTime": crate::files::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": if cgroup_v2 { "2" } else { "1" },
            "NEventsListener": 0,
            "KernelVersion": kernel(),
            "OperatingSystem": os_name(),
            "OSVersion": os_release("VERSION_ID"),
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "GenericResources": null,
            "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
            "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
            "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
            "RegistryConfig": super::registry::info(&d),
            "DockerRootDir": d.opts.root,
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": runtimes,
            "DefaultRuntime": "berth",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "DefaultAddressPools": pools,
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "docker-init",
            "SecurityOptions": security_options(&d),
            "Warnings": [],
    });
    // KernelMemory* went in API 1.42 (berth has no kernel memory limit).
    if v.before(42) {
        out["KernelMemory"] = json!(false);
        out["KernelMemoryTCP"] = json!(false);
    }
    json(StatusCode::OK, &out)
}

/// What `docker info` lists under Security Options: the default seccomp profile every
/// unprivileged container gets, cgroup namespaces, and user-namespace remapping when on.
fn security_options(d: &Shared) -> Vec<&'static str> {
    let mut opts = vec!["name=seccomp,profile=builtin", "name=cgroupns"];
    if d.remap.range.is_some() {
        opts.push("name=userns");
    }
    opts
}

fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A field of /etc/os-release (`VERSION_ID`), unquoted; empty when absent.
fn os_release(key: &str) -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|r| r.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

/// `GET /events`: past events from `since`, then live ones until `until` or the client leaves.
pub async fn events(State(d): State<Shared>, q: Query) -> Result<Response> {
    let since = q
        .get("since")
        .and_then(|s| s.split('.').next()?.parse::<i64>().ok());
    let until = q
        .get("until")
        .and_then(|s| s.split('.').next()?.parse::<i64>().ok());
    let filt = filters(&q)?;
    let (past, mut rx) = d.events.subscribe(since.or(until.map(|_| 0)));
    let (tx, body_rx) =
        tokio::sync::mpsc::channel::<std::result::Result<bytes::Bytes, std::io::Error>>(64);
    let matches = move |e: &crate::events::Event| -> bool {
        filt.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "type" => e.typ == v,
                "event" | "action" => e.action == *v || e.action.starts_with(&format!("{v}:")),
                "container" | "image" | "volume" => {
                    e.actor.id.starts_with(v.as_str()) || e.actor.attributes.get("name") == Some(v)
                }
                "label" => label_matches(v, |k| e.actor.attributes.get(k).map(String::as_str)),
                _ => true,
            })
        })
    };
    tokio::spawn(async move {
        let send = |e: &crate::events::Event| {
            let mut line = serde_json::to_vec(e).unwrap_or_default();
            line.push(b'\n');
            bytes::Bytes::from(line)
        };
        for e in past.iter().filter(|e| until.is_none_or(|u| e.time <= u)) {
            if matches(e) && tx.send(Ok(send(e))).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            tokio::time::Instant::now() + std::time::Duration::from_secs((u - now).max(0) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(dl) => tokio::time::timeout_at(dl, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            match next.await {
                Some(Ok(e)) => {
                    if matches(&e) && tx.send(Ok(send(&e))).await.is_err() {
                        return;
                    }
                }
                Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                _ => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    resp.headers_mut()
        .insert("Content-Type", HeaderValue::from_static("application/json"));
    Ok(resp)
}

pub async fn df(State(d): State<Shared>, v: super::ApiVersion) -> Result<Response> {
    let usage = d.images.disk_usage()?;
    let containers = d.containers.list();
    let images: Vec<_> = d
        .images
        .list()?
        .into_iter()
        .map(|i| {
            let (size, shared) = usage
                .images
                .iter()
                .find(|(id, _, _)| *id == i.id)
                .map(|(_, s, sh)| (*s, *sh))
                .unwrap_or((i.size, 0));
            let mut item = json!({
                "Id": i.id, "ParentId": i.parent.clone().unwrap_or_default(),
                "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests,
                "Created": i.created.as_deref().map(crate::files::unix_seconds).unwrap_or(0),
                "Size": size, "SharedSize": shared, "Labels": {},
                "Containers": containers.iter().filter(|c| c.image_id == i.id).count(),
            });
            // VirtualSize (= Size) went in API 1.44.
            if v.before(44) {
                item["VirtualSize"] = json!(size);
            }
            item
        })
        .collect();
    let cs: Vec<_> = containers
        .iter()
        .map(|c| {
            json!({
                "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image, "ImageID": c.image_id,
                "Command": crate::spec::args(c).join(" "), "Created": crate::files::unix_seconds(&c.created),
                "SizeRw": crate::volumes::dir_size(&c.rootfs.upper), "State": c.state.status,
                "Status": c.state.status, "Labels": c.config.labels, "Mounts": [],
            })
        })
        .collect();
    let vols: Vec<_> = d
        .volumes
        .list()
        .into_iter()
        .map(|mut v| {
            let name = v["Name"].as_str().unwrap_or_default().to_owned();
            let refs = containers
                .iter()
                .filter(|c| c.mounts.iter().any(|m| m.name == name))
                .count();
            v["UsageData"] = json!({"Size": d.volumes.size(&name), "RefCount": refs});
            v
        })
        .collect();
    let mut out = json!({
        "LayersSize": usage.layers_size,
        "Images": images,
        "Containers": cs,
        "Volumes": vols,
        "BuildCache": [],
    });
    // BuilderSize went in API 1.42.
    if v.before(42) {
        out["BuilderSize"] = json!(0);
    }
    Ok(json(StatusCode::OK, &out))
}
