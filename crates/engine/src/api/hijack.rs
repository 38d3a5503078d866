//! The endpoints that take over the connection (dockerd's "hijack"): attach and exec start.
//! The client asks for `Upgrade: tcp`; after the 101 the socket carries the container's stdio
//! both ways, framed as Docker's multiplexed stream unless the container has a tty.

use std::os::unix::net::UnixStream;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::relay::{
    client_of, parse_detach_keys, relay, ConnFd, Ended, Framing, RelayOptions, DEFAULT_DETACH_KEYS,
};
use super::{flag, json, parse_body, Query, Shared};
use crate::daemon::{AttachFlags, AttachWay};
use crate::error::{ApiError, Result};
use crate::exec::Exec;

fn upgrade(req: &mut Request, tty: bool) -> Result<(Response, OnUpgrade)> {
    let wants = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    if !wants {
        return Err(ApiError::BadRequest(
            "this endpoint needs the connection upgraded: send 'Connection: Upgrade' and 'Upgrade: tcp'".into(),
        ));
    }
    let on = hyper::upgrade::on(req);
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    Ok((resp, on))
}

/// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1[&logs=1][&detachKeys=]`:
/// the stored log first (`logs`), then (`stream`) the live stdio until the container's
/// process ends or the client types the detach keys.
pub async fn attach(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> Result<Response> {
    let detach_keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => parse_detach_keys(k)?,
        None => DEFAULT_DETACH_KEYS.to_vec(),
    };
    let c = d.containers.find(&id)?;
    if c.state.status == "paused" {
        return Err(ApiError::Conflict(format!(
            "container {id} is paused, unpause the container before attach"
        )));
    }
    if c.state.status == "restarting" {
        return Err(ApiError::Conflict(format!(
            "container {id} is restarting, wait until the container is running"
        )));
    }
    let flags = AttachFlags {
        stdin: flag(&q, "stdin"),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
    };
    let (logs, stream) = (flag(&q, "logs"), flag(&q, "stream"));
    let fd = conn_fd(&req);
    let (resp, on) = upgrade(&mut req, c.tty())?;
    // Decided before the 101 goes out: a client that starts the container once it has the
    // answer (`docker run`) is then sure to be connected before the process runs.
    let way = if stream {
        Some(d.attach_way(&c.id, flags)?)
    } else {
        None
    };
    d.emit_container("attach", &c);
    let monitor_dir = d.monitor_dir(&c.id);
    let log_path = d.log_path(&c.id);
    let tty = c.tty();
    let opts = RelayOptions {
        // The process's stdin is the client's only if the container keeps one open.
        stdin: flags.stdin && c.config.open_stdin.unwrap_or(false),
        // As dockerd: only a terminal's input is scanned for the detach keys.
        detach_keys: tty.then_some(detach_keys),
        framing: Framing::AsIs,
    };
    let dd = d.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        let mut client = client_of(upgraded, fd).await;
        if logs && send_logs(&mut client, log_path, tty, flags).await.is_err() {
            return;
        }
        let Some(way) = way else {
            let _ = client.shutdown().await;
            return;
        };
        let monitor = match way {
            AttachWay::Early(rx) => rx.await.ok(),
            AttachWay::Live => connect_live(monitor_dir, flags).await,
            AttachWay::AfterStart(rx) => match rx.await {
                Ok(()) => connect_live(monitor_dir, flags).await,
                Err(_) => None,
            },
        };
        // No monitor: the container ended (or was removed) meanwhile: the client sees EOF.
        let Some(monitor) = monitor else {
            let _ = client.shutdown().await;
            return;
        };
        if let Some((mut w, ended)) = relay(client, monitor, opts).await {
            if ended == Ended::Detached {
                if let Ok(c) = dd.containers.find(&id) {
                    dd.emit_container("detach", &c);
                }
            }
            let _ = w.shutdown().await;
        }
    });
    Ok(resp)
}

/// The API connection's descriptor, when the daemon serves a Unix socket (see `ConnFd`).
fn conn_fd(req: &Request) -> Option<ConnFd> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<ConnFd>>()
        .map(|c| c.0)
}

/// The stored log, for `logs=1`, written before anything live.
async fn send_logs(
    client: &mut super::relay::Client,
    path: std::path::PathBuf,
    tty: bool,
    flags: AttachFlags,
) -> std::io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let reader = tokio::task::spawn_blocking(move || {
        super::logs::send_stored_output(&path, tty, (flags.stdout, flags.stderr), &tx)
    });
    while let Some(chunk) = rx.recv().await {
        client.write_all(&chunk).await?;
    }
    let _ = reader.await;
    client.flush().await
}

/// The attach socket of a running container's monitor; none when it has none (any more).
async fn connect_live(dir: std::path::PathBuf, f: AttachFlags) -> Option<UnixStream> {
    tokio::task::spawn_blocking(move || {
        berth_monitor::client::attach(&dir, f.stdin, f.stdout, f.stderr)
    })
    .await
    .ok()?
    .ok()
}

/// `POST /containers/{id}/exec`.
pub async fn exec_create(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let c = d.containers.find(&id)?;
    if c.state.status != "running" {
        return Err(ApiError::Conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let mut config: bollard_stubs::models::ExecConfig = parse_body(&body)?;
    if config.detach_keys.is_none() {
        // Go's JSON matches field names whatever their case, and docker-py sends
        // `detachKeys`.
        let raw: Value = parse_body(&body)?;
        config.detach_keys = raw.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("DetachKeys"))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        });
    }
    if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::BadRequest("No exec command specified".into()));
    }
    if let Some(k) = config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        parse_detach_keys(k)?;
    }
    let exec_id = crate::container::new_id()?;
    d.execs.insert(Exec {
        id: exec_id.clone(),
        container_id: c.id.clone(),
        config,
        running: false,
        exit_code: None,
        pid: 0,
    });
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert("execID".into(), exec_id.clone());
    d.emit_container_with("exec_create", &c, attrs);
    Ok(json(StatusCode::CREATED, &json!({"Id": exec_id})))
}

/// `POST /exec/{id}/start`: the process starts under a monitor of its own; unless detached,
/// the connection is taken over and carries its stdio as an attach does.
pub async fn exec_start(
    State(d): State<Shared>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response> {
    let e = d
        .execs
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("No such exec instance: {id}")))?;
    if e.running || e.exit_code.is_some() {
        return Err(ApiError::Conflict(format!(
            "Error: Exec command {id} has already run"
        )));
    }
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::BadRequest(format!("read body: {e}")))?;
    let start: Value = parse_body(&body)?;
    let detach = start["Detach"].as_bool().unwrap_or(false);
    let tty = e.config.tty.unwrap_or(false);
    // The framing is the start request's, as dockerd decides it: an exec made with a tty
    // and started with `"Tty": false` is multiplexed.
    let client_raw = start["Tty"].as_bool().unwrap_or(false);
    let size =
        console_size(&start["ConsoleSize"]).or_else(|| console_size(&json!(e.config.console_size)));
    d.execs.update(&id, |x| x.running = true);
    if detach {
        let spawned = {
            let (d, e) = (d.clone(), e.clone());
            tokio::task::spawn_blocking(move || d.spawn_exec(&e, Vec::new())).await
        };
        let state = match spawned {
            Ok(Ok(state)) => state,
            Ok(Err(err)) => return Err(exec_failed(&d, &id, err)),
            Err(err) => return Err(exec_failed(&d, &id, ApiError::internal("exec", err))),
        };
        d.execs.update(&id, |x| x.pid = state.pid);
        resize_exec(&d, &id, size).await;
        let dd = d.clone();
        tokio::spawn(async move {
            dd.finish_exec(&id).await;
        });
        return Ok(StatusCode::OK.into_response());
    }
    let flags = AttachFlags {
        stdin: e.config.attach_stdin.unwrap_or(false),
        stdout: e.config.attach_stdout.unwrap_or(true),
        stderr: e.config.attach_stderr.unwrap_or(true),
    };
    let detach_keys = match e.config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => parse_detach_keys(k)?,
        None => DEFAULT_DETACH_KEYS.to_vec(),
    };
    let opts = RelayOptions {
        stdin: flags.stdin,
        detach_keys: tty.then_some(detach_keys),
        framing: Framing::between(tty, client_raw),
    };
    let fd = conn_fd(&req);
    let (resp, on) = upgrade(&mut req, client_raw)?;
    let dd = d.clone();
    tokio::spawn(async move {
        let upgraded = on.await.ok();
        // The client's connection is the monitor's from its birth: the process cannot
        // write before it is attached.
        let (ours, theirs) =
            match berth_monitor::client::attach_early(flags.stdin, flags.stdout, flags.stderr) {
                Ok((ours, theirs)) => (Some(ours), vec![theirs]),
                Err(_) => (None, Vec::new()),
            };
        let spawned = {
            let (d, e) = (dd.clone(), e.clone());
            tokio::task::spawn_blocking(move || d.spawn_exec(&e, theirs)).await
        };
        let state = match spawned {
            Ok(Ok(state)) => state,
            failed => {
                let err = match failed {
                    Ok(Err(err)) => err,
                    _ => ApiError::Internal("the exec's monitor did not start".into()),
                };
                let message = exec_failed(&dd, &id, err).to_string();
                // The client reads the failure from the stream, then the exit code from
                // the exec's inspect, as with dockerd.
                if let Some(u) = upgraded {
                    let mut io = client_of(u, fd).await;
                    let text = format!("{message}\r\n");
                    let bytes = if client_raw {
                        Bytes::from(text)
                    } else {
                        super::logs::frame(1, text.as_bytes())
                    };
                    let _ = io.write_all(&bytes).await;
                    let _ = io.shutdown().await;
                }
                return;
            }
        };
        dd.execs.update(&id, |x| x.pid = state.pid);
        resize_exec(&dd, &id, size).await;
        let relayed = match (upgraded, ours) {
            (Some(u), Some(ours)) => relay(client_of(u, fd).await, ours, opts).await,
            _ => None,
        };
        match relayed {
            Some((mut w, Ended::Detached)) => {
                // The process goes on without the client; its end is recorded when it comes.
                let _ = w.shutdown().await;
                dd.finish_exec(&id).await;
            }
            Some((mut w, Ended::Output)) => {
                // The exit code must be recorded before the client sees the end of the
                // stream: docker reads it from the exec's inspect right after.
                dd.finish_exec(&id).await;
                let _ = w.shutdown().await;
            }
            None => {
                dd.finish_exec(&id).await;
            }
        }
    });
    Ok(resp)
}

/// Records a failed exec start with the exit code dockerd gives it (127 for a missing
/// program, 126 otherwise) and returns the error for the client.
fn exec_failed(d: &Shared, id: &str, err: ApiError) -> ApiError {
    let code = match crate::lifecycle::exit_code_for_start_error(&err.to_string()) {
        125 => 126,
        c => c,
    };
    d.execs.update(id, |x| {
        x.running = false;
        x.exit_code = Some(code as i64);
    });
    err
}

/// `[height, width]` from an exec's ConsoleSize.
fn console_size(v: &Value) -> Option<(u16, u16)> {
    let a = v.as_array().filter(|a| a.len() == 2)?;
    let h = u16::try_from(a[0].as_u64()?).ok()?;
    let w = u16::try_from(a[1].as_u64()?).ok()?;
    (h > 0 && w > 0).then_some((h, w))
}

async fn resize_exec(d: &Shared, id: &str, size: Option<(u16, u16)>) {
    if let Some((h, w)) = size {
        let dir = d.exec_dir(id);
        let _ =
            tokio::task::spawn_blocking(move || berth_monitor::client::resize(&dir, h, w)).await;
    }
}

pub async fn exec_inspect(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    let e = d
        .execs
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("No such exec instance: {id}")))?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": e.id, "ContainerID": e.container_id, "Running": e.running,
            "ExitCode": e.exit_code, "Pid": e.pid,
            "OpenStdin": e.config.attach_stdin.unwrap_or(false),
            "OpenStdout": e.config.attach_stdout.unwrap_or(true),
            "OpenStderr": e.config.attach_stderr.unwrap_or(true),
            "ProcessConfig": process_config(&e.config),
            "CanRemove": false, "DetachKeys": "",
        }),
    ))
}

pub async fn exec_resize(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let e = d
        .execs
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("No such exec instance: {id}")))?;
    if !e.running {
        return Err(ApiError::Conflict(format!(
            "Exec {id} is not running, so it can not be resized."
        )));
    }
    let dim = |k: &str| q.get(k).and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
    let (h, w) = (dim("h"), dim("w"));
    if h == 0 || w == 0 {
        return Err(ApiError::BadRequest(
            "height and width must be positive numbers".into(),
        ));
    }
    let dir = d.exec_dir(&id);
    tokio::task::spawn_blocking(move || berth_monitor::client::resize(&dir, h, w))
        .await
        .map_err(|err| ApiError::internal("resize", err))??;
    Ok(StatusCode::OK.into_response())
}

/// exec inspect's `ProcessConfig`, as dockerd writes it (`user` only when set).
fn process_config(c: &bollard_stubs::models::ExecConfig) -> Value {
    let mut p = json!({
        "tty": c.tty.unwrap_or(false),
        "entrypoint": c.cmd.as_ref().and_then(|c| c.first()),
        "arguments": c.cmd.as_ref().map(|c| c[1..].to_vec()),
        "privileged": c.privileged.unwrap_or(false),
    });
    if let Some(u) = c.user.as_ref().filter(|u| !u.is_empty()) {
        p["user"] = json!(u);
    }
    p
}
