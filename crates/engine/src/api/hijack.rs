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
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::logs::frame;
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
        let Ok(Ok(std_stream)) = tokio::task::spawn_blocking(move || {
            berth_monitor::client::attach(&dir, stdin, stdout, stderr)
        })
        .await
        else {
            return;
        };
        if std_stream.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(monitor) = tokio::net::UnixStream::from_std(std_stream) else {
            return;
        };
        let (mut mon_read, mut mon_write) = monitor.into_split();
        let (mut cli_read, mut cli_write) = tokio::io::split(TokioIo::new(upgraded));
        let to_client = async {
            let _ = tokio::io::copy(&mut mon_read, &mut cli_write).await;
            let _ = cli_write.shutdown().await;
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
    });
    Ok(resp)
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

/// The process.json for `berth runtime exec --process`: the exec's command with the
/// container's capabilities and environment.
fn exec_process(d: &Shared, e: &Exec) -> Result<Value> {
    let c = d.containers.find(&e.container_id)?;
    let dir = d.container_dir(&c.id);
    let spec: Value = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::Conflict(format!("container {} is not running", c.id)))?;
    let mut p = spec["process"].clone();
    let cfg = &e.config;
    let user = cfg
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or(c.config.user.clone())
        .unwrap_or_default();
    let (uid, gid, gids) = crate::spec::resolve_user(&dir.join("rootfs"), &user)?;
    p["user"] = json!({"uid": uid, "gid": gid, "additionalGids": gids});
    p["args"] = json!(cfg.cmd.clone().unwrap_or_default());
    p["terminal"] = json!(cfg.tty.unwrap_or(false));
    if let Some(w) = cfg.working_dir.clone().filter(|w| !w.is_empty()) {
        p["cwd"] = json!(w);
    }
    let mut env: Vec<String> = p["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    for kv in cfg.env.iter().flatten() {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p["env"] = json!(env);
    if cfg.privileged.unwrap_or(false) {
        let all = crate::spec::all_caps();
        p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    }
    Ok(p)
}

/// `POST /exec/{id}/start`.
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
    let process = exec_process(&d, &e)?;
    let pfile = d
        .monitor_dir(&e.container_id)
        .join(format!("exec-{id}.json"));
    crate::files::write_json_atomic(&pfile, &process)
        .map_err(|err| ApiError::internal("write exec process", err))?;
    let mut cmd = tokio::process::Command::new(&d.opts.berth_exe);
    cmd.arg("runtime")
        .arg("--root")
        .arg(d.runtime_root())
        .arg("exec")
        .arg("--process")
        .arg(&pfile);
    // The runtime writes the pid file only once the program is about to run: without it, a
    // failed exec is the runtime's (a missing program: 127, as dockerd reports it).
    let pid_file = d
        .monitor_dir(&e.container_id)
        .join(format!("exec-{id}.pid"));
    cmd.arg("--pid-file").arg(&pid_file);
    if detach {
        cmd.arg("--detach");
    }
    cmd.arg(&e.container_id);
    d.execs.update(&id, |x| x.running = true);
    if detach {
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|err| ApiError::internal("exec", err))?;
        let _ = std::fs::remove_file(&pfile);
        if !out.status.success() {
            d.execs.update(&id, |x| {
                x.running = false;
                x.exit_code = Some(126);
            });
            return Err(ApiError::Internal(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        d.execs.update(&id, |x| x.running = false);
        return Ok(StatusCode::OK.into_response());
    }
    let attach_stdin = e.config.attach_stdin.unwrap_or(false);
    cmd.stdin(if attach_stdin {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    })
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let (resp, on) = upgrade(&mut req, tty)?;
    let mut child = cmd
        .spawn()
        .map_err(|err| ApiError::internal("start exec", err))?;
    if let Some(pid) = child.id() {
        d.execs.update(&id, |x| x.pid = pid as i32);
    }
    let dd = d.clone();
    tokio::spawn(async move {
        let upgraded = on.await.ok();
        let (mut cli_read, mut cli_write) = match upgraded {
            Some(u) => {
                let (r, w) = tokio::io::split(TokioIo::new(u));
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let mut stdin = child.stdin.take();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let early_stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        for (stream, pipe) in [
            (
                1u8,
                stdout
                    .take()
                    .map(Box::new)
                    .map(|b| b as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            ),
            (
                2u8,
                stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            ),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let tx = tx.clone();
            let early_stderr = early_stderr.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream == 2 {
                                let mut kept =
                                    early_stderr.lock().unwrap_or_else(|p| p.into_inner());
                                if kept.len() < 4096 {
                                    kept.extend_from_slice(&buf[..n]);
                                }
                            }
                            let chunk = if tty {
                                Bytes::copy_from_slice(&buf[..n])
                            } else {
                                frame(stream, &buf[..n])
                            };
                            if tx.send(chunk).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        drop(tx);
        let input = async {
            if let (Some(r), Some(w)) = (cli_read.as_mut(), stdin.as_mut()) {
                let _ = tokio::io::copy(r, w).await;
            }
            drop(stdin.take());
            std::future::pending::<()>().await;
        };
        let output = async {
            while let Some(chunk) = rx.recv().await {
                if let Some(w) = cli_write.as_mut() {
                    if w.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            }
        };
        tokio::select! { _ = output => {}, _ = input => {} }
        let status = child.wait().await.ok();
        let mut code = status.and_then(|s| s.code()).unwrap_or(126) as i64;
        if code != 0 && !pid_file.exists() {
            let text = early_stderr
                .lock()
                .map(|b| String::from_utf8_lossy(&b[..]).into_owned())
                .unwrap_or_default();
            code = match crate::lifecycle::exit_code_for_start_error(&text) {
                125 => 126,
                c => c,
            } as i64;
        }
        let _ = std::fs::remove_file(&pid_file);
        dd.execs.update(&id, |x| {
            x.running = false;
            x.exit_code = Some(code);
        });
        if let Some(w) = cli_write.as_mut() {
            let _ = w.shutdown().await;
        }
        let _ = std::fs::remove_file(&pfile);
    });
    Ok(resp)
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
            "ProcessConfig": {"tty": e.config.tty.unwrap_or(false), "entrypoint": e.config.cmd.as_ref().and_then(|c| c.first()), "arguments": e.config.cmd.as_ref().map(|c| c[1..].to_vec()), "privileged": e.config.privileged.unwrap_or(false), "user": e.config.user},
            "CanRemove": false, "DetachKeys": "",
        }),
    ))
}

pub async fn exec_resize(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    d.execs
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("No such exec instance: {id}")))?;
    // The runtime's own pty proxy carries the exec's terminal; its size follows the default.
    Ok(StatusCode::OK.into_response())
}
