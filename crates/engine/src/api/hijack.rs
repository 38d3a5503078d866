//! The endpoints that take over the connection (dockerd's "hijack"): attach and exec start.
//! The client asks for `Upgrade: tcp`; after the 101 the socket carries the container's stdio
//! both ways, framed as Docker's multiplexed stream unless the container has a tty.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{flag, json, parse_body, Query, Shared};
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

/// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1`.
pub async fn attach(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> Result<Response> {
    let c = d.containers.find(&id)?;
    let (stdin, stdout, stderr) = (flag(&q, "stdin"), flag(&q, "stdout"), flag(&q, "stderr"));
    // `docker run` and `docker start -a` attach first and start after: the stream waits.
    let pending = (!c.is_running()).then(|| d.add_pending_attach(&c.id));
    let (resp, on) = upgrade(&mut req, c.tty())?;
    let monitor_dir = d.monitor_dir(&c.id);
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        let dir = match pending {
            // `docker run` attaches before it starts the container: wait for the start.
            Some(rx) => match rx.await {
                Ok(dir) => dir,
                Err(_) => return,
            },
            None => monitor_dir,
        };
        let Ok(Ok(monitor)) = tokio::task::spawn_blocking(move || {
            berth_monitor::client::attach(&dir, stdin, stdout, stderr)
        })
        .await
        else {
            return;
        };
        if let Some(mut w) = relay(upgraded, monitor, stdin).await {
            let _ = w.shutdown().await;
        }
    });
    Ok(resp)
}

type ClientWrite = tokio::io::WriteHalf<TokioIo<hyper::upgrade::Upgraded>>;

/// Carries a monitor's attach stream to the client (and the client's input to it, with
/// `stdin`) until the output ends. Returns the client's write half, still open, so that the
/// caller decides when the client sees the end; `None` if the monitor's socket was unusable.
async fn relay(
    upgraded: hyper::upgrade::Upgraded,
    monitor: std::os::unix::net::UnixStream,
    stdin: bool,
) -> Option<ClientWrite> {
    monitor.set_nonblocking(true).ok()?;
    let monitor = tokio::net::UnixStream::from_std(monitor).ok()?;
    let (mut mon_read, mut mon_write) = monitor.into_split();
    let (mut cli_read, mut cli_write) = tokio::io::split(TokioIo::new(upgraded));
    let to_client = async {
        let _ = tokio::io::copy(&mut mon_read, &mut cli_write).await;
    };
    let from_client = async {
        if stdin {
            let _ = tokio::io::copy(&mut cli_read, &mut mon_write).await;
        }
        let _ = mon_write.shutdown().await;
        // Keep reading nothing; the output side decides when the stream ends.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = to_client => {},
        _ = from_client => {},
    }
    Some(cli_write)
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
    let config: bollard_stubs::models::ExecConfig = parse_body(&body)?;
    if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::BadRequest("No exec command specified".into()));
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
    let size =
        console_size(&start["ConsoleSize"]).or_else(|| console_size(&json!(e.config.console_size)));
    d.execs.update(&id, |x| x.running = true);
    if detach {
        let spawned = {
            let (d, e) = (d.clone(), e.clone());
            tokio::task::spawn_blocking(move || d.spawn_exec(&e, 0)).await
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
    let attach = (
        e.config.attach_stdin.unwrap_or(false),
        e.config.attach_stdout.unwrap_or(true),
        e.config.attach_stderr.unwrap_or(true),
    );
    let (resp, on) = upgrade(&mut req, tty)?;
    let dd = d.clone();
    tokio::spawn(async move {
        let upgraded = on.await.ok();
        // The monitor holds the process until this attacher is connected: start it and
        // attach at the same time.
        let spawned = {
            let (d, e) = (dd.clone(), e.clone());
            tokio::task::spawn_blocking(move || d.spawn_exec(&e, 1))
        };
        let attached = {
            let dir = dd.exec_dir(&id);
            tokio::task::spawn_blocking(move || {
                berth_monitor::client::attach(&dir, attach.0, attach.1, attach.2)
            })
        };
        let state = match spawned.await {
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
                    let mut io = TokioIo::new(u);
                    let text = format!("{message}\r\n");
                    let bytes = if tty {
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
        if let (Some(u), Ok(Ok(monitor))) = (upgraded, attached.await) {
            let cli_write = relay(u, monitor, attach.0).await;
            // The exit code must be recorded before the client sees the end of the stream:
            // docker reads it from the exec's inspect right after.
            dd.finish_exec(&id).await;
            if let Some(mut w) = cli_write {
                let _ = w.shutdown().await;
            }
        } else {
            dd.finish_exec(&id).await;
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
