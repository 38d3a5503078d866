//! `/containers/…`: the HTTP face of the lifecycle in lifecycle.rs.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::ContainerCreateBody;
use serde_json::{json, Value};

use super::{filters, flag, json, label_matches, passes, ApiVersion, Query, Shared};
use crate::container::Container;
use crate::error::{ApiError, Result};

/// Docker accepts `Cmd`/`Entrypoint` as a string too; normalise to arrays before parsing.
fn normalise_create_body(body: &Bytes) -> Result<ContainerCreateBody> {
    let mut v: Value = if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::BadRequest(
            "config cannot be empty in order to create a container".into(),
        ));
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?
    };
    for key in ["Cmd", "Entrypoint"] {
        if let Some(Value::String(s)) = v.get(key) {
            let s = s.clone();
            v[key] = if s.is_empty() {
                json!([])
            } else {
                json!(["/bin/sh", "-c", s])
            };
        }
    }
    // The typed body refuses an unknown policy name with serde's words; dockerd's are these.
    if let Some(name) = v["HostConfig"]["RestartPolicy"]["Name"].as_str() {
        if !matches!(name, "" | "no" | "always" | "unless-stopped" | "on-failure") {
            return Err(ApiError::BadRequest(format!("invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")));
        }
    }
    // The typed body refuses an unknown propagation with serde's words; dockerd's are these.
    for m in v["HostConfig"]["Mounts"].as_array().into_iter().flatten() {
        if let Some(p) = m["BindOptions"]["Propagation"].as_str() {
            if !p.is_empty() && !crate::container::PROPAGATION_MODES.contains(&p) {
                return Err(ApiError::BadRequest(format!(
                    "invalid mount config for type \"bind\": invalid propagation mode: {p}"
                )));
            }
        }
    }
    config_mac_to_endpoint(&mut v)?;
    serde_json::from_value(v).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// `Config.MacAddress` (docker-py and API < 1.44 clients send the container's MAC there) goes
/// to the endpoint of the network the container runs on, where API 1.44 keeps it, as dockerd
/// moves it.
fn config_mac_to_endpoint(v: &mut Value) -> Result<()> {
    let Some(mac) = v
        .get("MacAddress")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
    else {
        return Ok(());
    };
    berth_network::parse_mac(&mac).map_err(crate::network::net_error)?;
    let mode = v["HostConfig"]["NetworkMode"]
        .as_str()
        .filter(|m| !m.is_empty())
        .unwrap_or("default")
        .to_owned();
    if mode == "host" || mode.starts_with("container:") {
        return Err(ApiError::BadRequest(
            "conflicting options: mac-address and the network mode".into(),
        ));
    }
    if mode == "none" {
        // No interface to give it to (dockerd accepts it all the same).
        return Ok(());
    }
    if !v["NetworkingConfig"].is_object() {
        v["NetworkingConfig"] = json!({});
    }
    if !v["NetworkingConfig"]["EndpointsConfig"].is_object() {
        v["NetworkingConfig"]["EndpointsConfig"] = json!({});
    }
    let endpoints = &mut v["NetworkingConfig"]["EndpointsConfig"];
    // The CLI names the default network "default" or "bridge".
    let key = ["default", "bridge"]
        .into_iter()
        .find(|k| mode == "default" && endpoints.get(*k).is_some())
        .unwrap_or(&mode)
        .to_owned();
    if !endpoints[&key].is_object() {
        endpoints[&key] = json!({});
    }
    let ep = &mut endpoints[&key];
    match ep["MacAddress"].as_str().filter(|m| !m.is_empty()) {
        Some(other) if !other.eq_ignore_ascii_case(&mac) => Err(ApiError::BadRequest(format!(
            "the container's MacAddress ({mac}) and its endpoint's on {key} ({other}) differ"
        ))),
        _ => {
            ep["MacAddress"] = json!(mac);
            Ok(())
        }
    }
}

pub async fn create(State(d): State<Shared>, q: Query, body: Bytes) -> Result<Response> {
    let body = normalise_create_body(&body)?;
    let name = q.get("name").cloned();
    let dd = d.clone();
    let c = tokio::task::spawn_blocking(move || dd.create_container(name.as_deref(), body))
        .await
        .map_err(|e| ApiError::internal("create", e))??;
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": c.id, "Warnings": []}),
    ))
}

pub async fn start(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    d.start_container(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn stop(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    let t = q.get("t").and_then(|t| t.parse().ok());
    d.stop_container(&id, t, q.get("signal").map(|s| s.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn restart(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let t = q.get("t").and_then(|t| t.parse().ok());
    match d
        .stop_container(&id, t, q.get("signal").map(|s| s.as_str()))
        .await
    {
        Ok(()) | Err(ApiError::NotModified) => {}
        Err(e) => return Err(e),
    }
    d.start_container(&id).await?;
    if let Ok(c) = d.containers.find(&id) {
        d.emit_container("restart", &c);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn kill(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    d.kill_container(&id, q.get("signal").map(|s| s.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn wait(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    let condition = q.get("condition").cloned().unwrap_or_default();
    // Fail before streaming: a missing container is a 404, not a 200 with an error inside.
    d.containers.find(&id)?;
    if !matches!(
        condition.as_str(),
        "" | "not-running" | "next-exit" | "removed"
    ) {
        return Err(ApiError::BadRequest(format!(
            "invalid condition: \"{condition}\""
        )));
    }
    // The headers go out at once, the body when the container exits: docker CLI starts the
    // container only after it sees the wait registered (dockerd flushes the same way).
    let (tx, rx) = tokio::sync::mpsc::channel::<super::logs::Chunk>(1);
    tokio::spawn(async move {
        let body = match d.wait_container(&id, &condition).await {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        let mut line = body.to_string();
        line.push('\n');
        let _ = tx.send(Ok(Bytes::from(line))).await;
    });
    Ok(super::logs::stream_response(rx, "application/json"))
}

pub async fn remove(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    remove_named(&d, &id, &q).await
}

/// `DELETE /containers/PARENT/ALIAS`: a link's own name (dockerd resolves it as the linked
/// container's).
pub async fn remove_link_name(
    State(d): State<Shared>,
    Path((parent, alias)): Path<(String, String)>,
    q: Query,
) -> Result<Response> {
    remove_named(&d, &format!("{parent}/{alias}"), &q).await
}

/// With `link=1` only the link `name` goes; else the container `name` names.
async fn remove_named(d: &Shared, name: &str, q: &super::query::Form) -> Result<Response> {
    if flag(q, "link") {
        d.remove_link(name)?;
    } else {
        d.remove_container(name, flag(q, "force"), flag(q, "v"))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn resize(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    let c = d.containers.find(&id)?;
    let h = q.get("h").and_then(|v| v.parse().ok()).unwrap_or(24);
    let w = q.get("w").and_then(|v| v.parse().ok()).unwrap_or(80);
    if c.is_running() {
        let dir = d.monitor_dir(&c.id);
        let _ =
            tokio::task::spawn_blocking(move || berth_monitor::client::resize(&dir, h, w)).await;
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn rename(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    let new = q.get("name").cloned().unwrap_or_default();
    let new = new.strip_prefix('/').unwrap_or(&new).to_owned();
    crate::container::validate_name(&new)?;
    let c = d.containers.find(&id)?;
    let old = c.name.clone();
    let c = d.containers.update(&c.id, |c| {
        c.name = new.clone();
        Ok(c.clone())
    })?;
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert("oldName".into(), format!("/{old}"));
    d.emit_container_with("rename", &c, attrs);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn runtime_container(d: &Shared, c: &Container) -> Result<berth_runtime::Container> {
    if c.runtime != "berth" {
        return Err(ApiError::NotImplemented(format!(
            "pause/unpause is served for containers of berth's own runtime; this one runs on {}",
            c.runtime
        )));
    }
    berth_runtime::Runtime::new(d.runtime_root())
        .load(&c.id)
        .map_err(|_| ApiError::Conflict(format!("Container {} is not running", c.id)))
}

pub async fn pause(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    let c = d.containers.find(&id)?;
    if c.state.status != "running" {
        return Err(ApiError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    runtime_container(&d, &c)?.pause()?;
    let c = d.containers.update(&c.id, |c| {
        c.state.status = "paused".into();
        Ok(c.clone())
    })?;
    d.emit_container("pause", &c);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn unpause(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    let c = d.containers.find(&id)?;
    if c.state.status != "paused" {
        return Err(ApiError::Conflict(format!(
            "Container {} is not paused",
            c.id
        )));
    }
    runtime_container(&d, &c)?.resume()?;
    let c = d.containers.update(&c.id, |c| {
        c.state.status = "running".into();
        Ok(c.clone())
    })?;
    d.emit_container("unpause", &c);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /containers/{id}/top`: `ps` on the host, keeping the container's processes, as
/// dockerd does (the `ps_args` are ps's own).
pub async fn top(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    let c = d.containers.find(&id)?;
    if !c.is_running() {
        return Err(ApiError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let pids = runtime_container(&d, &c).and_then(|rc| Ok(rc.pids()?))?;
    let args = q.get("ps_args").cloned().unwrap_or_else(|| "-ef".into());
    let out = tokio::process::Command::new("ps")
        .args(args.split_whitespace())
        .output()
        .await
        .map_err(|e| ApiError::internal("run ps", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| ApiError::BadRequest("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            let mut row: Vec<String> = fields[..titles.len().min(fields.len()) - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(fields[titles.len() - 1..].join(" "));
            processes.push(row);
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({"Titles": titles, "Processes": processes}),
    ))
}

pub async fn changes(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    let c = d.containers.find(&id)?;
    let image = d.images.get(&c.image_id)?;
    let list = without_own_mount_points(d.images.changes(&image, &c.rootfs.upper)?);
    let out: Vec<Value> = list
        .iter()
        .map(|ch| {
            let kind = match ch.kind {
                berth_image::ChangeKind::Modified => 0,
                berth_image::ChangeKind::Added => 1,
                berth_image::ChangeKind::Deleted => 2,
            };
            json!({"Path": ch.path, "Kind": kind})
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

/// The mount points berth makes in every container's root: dockerd makes them in an "init"
/// layer under the container's own, so its `/changes` never lists them.
const OWN_MOUNT_POINTS: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
    "/dev",
];

/// `changes` less berth's own mount points, and less the directories listed only because they
/// hold one (`C /etc` when nothing else in /etc changed).
fn without_own_mount_points(list: Vec<berth_image::Change>) -> Vec<berth_image::Change> {
    let kept: Vec<berth_image::Change> = list
        .into_iter()
        .filter(|c| !OWN_MOUNT_POINTS.contains(&c.path.as_str()))
        .collect();
    let under = |dir: &str, path: &str| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    kept.iter()
        .filter(|c| {
            let holds_own = OWN_MOUNT_POINTS.iter().any(|m| under(&c.path, m));
            !holds_own || kept.iter().any(|o| under(&c.path, &o.path))
        })
        .cloned()
        .collect()
}

pub async fn export(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    let c = d.containers.find(&id)?;
    let dd = d.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let dir = dd.container_dir(&c.id);
        let target = dir.join("export-root");
        let _ = crate::modes::create_private_dir(&target);
        let overlay = c.rootfs.overlay();
        // A second, private mount of the same layers: the running container's own mount is
        // not disturbed, and a stopped one needs none.
        let mut w = super::logs::ChannelWriter::new(tx);
        let result = overlay
            .mount_at(&target)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                let r = berth_image::export_rootfs(&target, &mut w).map_err(|e| e.to_string());
                let _ = berth_image::OverlayMount::unmount(&target);
                r
            });
        if let Err(e) = result {
            w.fail(e);
        }
        let _ = std::fs::remove_dir(&target);
    });
    Ok(super::logs::stream_response(rx, "application/x-tar"))
}

pub async fn prune(State(d): State<Shared>, q: Query) -> Result<Response> {
    let filt = filters(&q)?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in d.containers.list() {
        if c.is_running() || !label_filters_match(&c, &filt) {
            continue;
        }
        let size = crate::volumes::dir_size(&c.rootfs.upper);
        if d.remove_container(&c.id, false, false).await.is_ok() {
            deleted.push(c.id.clone());
            reclaimed += size;
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

fn label_filters_match(c: &Container, filt: &HashMap<String, Vec<String>>) -> bool {
    filt.get("label")
        .into_iter()
        .flatten()
        .all(|l| has_label(c, l))
}

fn has_label(c: &Container, filter: &str) -> bool {
    let labels = c.config.labels.as_ref();
    label_matches(filter, |k| labels?.get(k).map(String::as_str))
}

pub async fn list(State(d): State<Shared>, q: Query, v: ApiVersion) -> Result<Response> {
    let all = flag(&q, "all");
    let filt = filters(&q)?;
    let limit: i64 = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(-1);
    let with_size = flag(&q, "size");
    let mut list: Vec<Container> = d
        .containers
        .list()
        .into_iter()
        .filter(|c| {
            all || limit > 0
                || c.is_running()
                || filt.contains_key("status")
                || filt.contains_key("exited")
        })
        .filter(|c| matches_filters(&d, c, &filt))
        .collect();
    list.sort_by(|a, b| b.created.cmp(&a.created));
    if limit > 0 {
        list.truncate(limit as usize);
    }
    let out: Vec<Value> = list
        .iter()
        .map(|c| {
            let mut s = summary(&d, c, with_size);
            super::shape::container_summary(&mut s, v);
            s
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

fn matches_filters(d: &Shared, c: &Container, filt: &HashMap<String, Vec<String>>) -> bool {
    // compose filters on three labels at once: all must match.
    passes(filt, |k, v| match k {
        "id" => c.id.starts_with(v),
        "name" => c.name.contains(v.trim_start_matches('/')),
        "status" => c.state.status == v,
        "exited" => c.state.status == "exited" && c.state.exit_code.to_string() == v,
        "label" => has_label(c, v),
        "ancestor" => {
            c.image == v
                || c.image_id.starts_with(v)
                || d.images.get(v).map(|i| i.id == c.image_id).unwrap_or(false)
        }
        "volume" => c.mounts.iter().any(|m| m.name == v || m.destination == v),
        "before" | "since" => d
            .containers
            .find(v)
            .map(|o| {
                if k == "before" {
                    c.created < o.created
                } else {
                    c.created > o.created
                }
            })
            .unwrap_or(false),
        _ => true,
    })
}

/// "Up 3 seconds", "Exited (0) 2 minutes ago", "Created", as dockerd's `Status` field.
pub fn status_text(c: &Container) -> String {
    let since = |t: &str| human_duration(now_secs() - crate::files::unix_seconds(t));
    match c.state.status.as_str() {
        "running" => format!(
            "Up {}{}",
            since(&c.state.started_at),
            crate::health::status_suffix(c.state.health.as_ref())
        ),
        "paused" => format!("Up {} (Paused)", since(&c.state.started_at)),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
        "created" => "Created".into(),
        other => other.to_owned(),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Go's units.HumanDuration, which docker uses for these texts.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 2 * 3600 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        _ if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

fn mount_points(c: &Container) -> Vec<Value> {
    c.mounts
        .iter()
        .map(|m| {
            json!({
                "Type": m.kind, "Name": if m.name.is_empty() { Value::Null } else { json!(m.name) },
                "Source": m.source, "Destination": m.destination,
                "Driver": if m.kind == "volume" { json!("local") } else { Value::Null },
                "Mode": m.mode.clone().unwrap_or_else(|| if m.read_only { "ro" } else { "" }.into()),
                "RW": !m.read_only, "Propagation": m.propagation(),
            })
        })
        .collect()
}

fn summary(d: &Shared, c: &Container, with_size: bool) -> Value {
    let mut v = json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": super::shape::command_line(&crate::spec::args(c)),
        "Created": crate::files::unix_seconds(&c.created),
        "Ports": port_list(c),
        "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.network_mode.clone().unwrap_or_else(|| "bridge".into())},
        "NetworkSettings": {"Networks": network_settings(d, c)["Networks"]},
        "Mounts": mount_points(c),
    });
    if with_size {
        v["SizeRw"] = json!(crate::volumes::dir_size(&c.rootfs.upper));
        v["SizeRootFs"] = json!(d.images.get(&c.image_id).map(|i| i.size).unwrap_or(0));
    }
    v
}

pub async fn inspect(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    version: ApiVersion,
) -> Result<Response> {
    let c = d.containers.find(&id)?;
    let mut state = json!({
        "Status": c.state.status,
        "Running": c.is_running() && c.state.status != "restarting",
        "Paused": c.state.status == "paused",
        "Restarting": c.state.status == "restarting",
        "OOMKilled": c.state.oom_killed,
        "Dead": c.state.status == "dead",
        "Pid": c.state.pid,
        "ExitCode": c.state.exit_code,
        "Error": c.state.error,
        "StartedAt": c.state.started_at,
        "FinishedAt": c.state.finished_at,
    });
    if let Some(h) = &c.state.health {
        state["Health"] = crate::health::to_json(h);
    }
    if c.state.status == "running" {
        if let Ok(s) = berth_monitor::read_state(&d.monitor_dir(&c.id)) {
            state["Pid"] = json!(s.pid);
        }
    }
    let mut v = json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": d.container_dir(&c.id).join("resolv.conf"),
        "HostnamePath": d.container_dir(&c.id).join("hostname"),
        "HostsPath": d.container_dir(&c.id).join("hosts"),
        "LogPath": d.log_path(&c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        // As dockerd: the execs still running (a finished one is forgotten by its container).
        "ExecIDs": d.execs.running_ids_of(&c.id),
        "HostConfig": c.host_config,
        "GraphDriver": {"Name": "overlay2", "Data": {
            "LowerDir": c.rootfs.lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
            "UpperDir": c.rootfs.upper, "WorkDir": c.rootfs.work,
            "MergedDir": d.container_dir(&c.id).join("rootfs"),
        }},
        "Mounts": mount_points(&c),
        "Config": c.config,
        "NetworkSettings": network_settings(&d, &c),
    });
    if flag(&q, "size") {
        v["SizeRw"] = json!(crate::volumes::dir_size(&c.rootfs.upper));
    }
    super::shape::container_inspect(&mut v, &c, version);
    // The MAC asked for the network the container runs on, where clients before API 1.44
    // (and docker-py) set and read it.
    v["HostConfig"]["Links"] = json!(d.host_config_links(&c));
    let mode = c.host_config.network_mode.clone().unwrap_or_default();
    if let Some(mac) = c.networks.get(&mode).and_then(|e| e.mac_requested.clone()) {
        v["Config"]["MacAddress"] = json!(mac);
    }
    Ok(json(StatusCode::OK, &v))
}

/// ps's `Ports`: each published port with its host side, each other exposed port alone.
fn port_list(c: &Container) -> Vec<Value> {
    let mut out: Vec<Value> = c
        .ports
        .iter()
        .map(|p| {
            json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port,
                   "PublicPort": p.host_port, "Type": p.proto})
        })
        .collect();
    for key in c.config.exposed_ports.iter().flatten() {
        let Ok((proto, port)) = crate::network::parse_port_key(key) else {
            continue;
        };
        if !c
            .ports
            .iter()
            .any(|p| p.container_port == port && p.proto == proto)
        {
            out.push(json!({"PrivatePort": port, "Type": proto}));
        }
    }
    out
}

/// Inspect's `NetworkSettings`: dockerd fills the top-level address fields for the default
/// bridge only; `Networks` has every endpoint; `Ports` every exposed port, bound or null.
fn network_settings(d: &Shared, c: &Container) -> Value {
    let running = c.is_running();
    // As dockerd: a container's addresses are shown while it runs, its network ids and
    // sandbox from its first start on (a stopped one keeps them).
    let started = !c.state.started_at.starts_with("0001-");
    let mut networks = serde_json::Map::new();
    let mode = c.host_config.network_mode.clone().unwrap_or_default();
    if matches!(mode.as_str(), "host" | "none") {
        if let Some(n) = d.net.store.find(&mode) {
            networks.insert(
                mode.clone(),
                json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                       "DriverOpts": null, "NetworkID": n.id, "EndpointID": "", "Gateway": "",
                       "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                       "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null}),
            );
        }
    }
    for (name, ep) in &c.networks {
        let ep = &crate::network::Endpoint {
            ip: ep.ip.filter(|_| running),
            ..ep.clone()
        };
        let ip = ep.ip.map(|i| i.to_string()).unwrap_or_default();
        let user = d
            .net
            .store
            .find(&ep.network_id)
            .is_some_and(|n| n.is_user_defined());
        let dns_names = user.then(|| {
            let mut v = vec![c.name.clone()];
            v.extend(ep.aliases.iter().cloned());
            v.push(c.short_id().to_owned());
            v
        });
        // What was asked for: dockerd shows only the keys given.
        let mut ipam = serde_json::Map::new();
        if let Some(i) = ep.ipv4_requested {
            ipam.insert("IPv4Address".into(), json!(i.to_string()));
        }
        if let Some(i) = ep.ipv6_requested {
            ipam.insert("IPv6Address".into(), json!(i.to_string()));
        }
        if !ep.link_local_ips.is_empty() {
            let ll: Vec<String> = ep.link_local_ips.iter().map(|a| a.to_string()).collect();
            ipam.insert("LinkLocalIPs".into(), json!(ll));
        }
        networks.insert(
            name.clone(),
            json!({
                "IPAMConfig": if ipam.is_empty() { Value::Null } else { Value::Object(ipam) },
                "Links": if ep.links.is_empty() { Value::Null } else { json!(ep.links) },
                "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
                "MacAddress": ep.mac.clone().filter(|_| running).unwrap_or_default(),
                "DriverOpts": if ep.driver_opts.is_empty() { Value::Null } else { json!(ep.driver_opts) },
                "NetworkID": if started { ep.network_id.clone() } else { String::new() },
                "EndpointID": if ep.ip.is_some() { ep.endpoint_id.clone() } else { String::new() },
                "Gateway": ep.gateway.filter(|_| running).map(|g| g.to_string()).unwrap_or_default(),
                "IPAddress": ip,
                "IPPrefixLen": if ep.ip.is_some() { ep.prefix } else { 0 },
                "IPv6Gateway": ep.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": ep.ip6.map(|a| a.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": if ep.ip6.is_some() { ep.prefix6 } else { 0 },
                "DNSNames": dns_names,
            }),
        );
    }
    let mut ports = serde_json::Map::new();
    if running {
        for key in c.config.exposed_ports.iter().flatten() {
            ports.insert(key.clone(), Value::Null);
        }
        for p in &c.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            if let Some(a) = entry.as_array_mut() {
                a.push(
                    json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}),
                );
            }
        }
    }
    let bridge = c
        .networks
        .get("bridge")
        .filter(|_| mode == "bridge" && running);
    let netns = d.net.netns_path(&c.id);
    let sandbox = started && mode != "host" && !mode.starts_with("container:");
    json!({
        "Bridge": "",
        "SandboxID": if sandbox { c.id.clone() } else { String::new() },
        "SandboxKey": if sandbox { netns.display().to_string() } else { String::new() },
        "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": bridge.filter(|e| e.ip.is_some()).map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": bridge.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": bridge.and_then(|e| e.ip6).map(|i| i.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": bridge.filter(|e| e.ip6.is_some()).map(|e| e.prefix6).unwrap_or(0),
        "IPAddress": bridge.and_then(|e| e.ip).map(|i| i.to_string()).unwrap_or_default(),
        "IPPrefixLen": bridge.filter(|e| e.ip.is_some()).map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": bridge.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
        "MacAddress": bridge.and_then(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
}
