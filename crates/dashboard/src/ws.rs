//! The two things a page cannot do with `fetch` over HTTP/1.1, done over a WebSocket that
//! carries an Engine API request unchanged:
//! - a stream (`/events`, `/containers/{id}/stats`, `/containers/{id}/logs?follow=1`): the
//!   daemon's answer to the same GET, its body as binary messages. Browsers open at most six
//!   HTTP/1.1 connections to one host, and a page with a stream per visible container would
//!   starve its own requests; WebSockets do not count against that limit.
//! - a hijack (`/exec/{id}/start`, `/containers/{id}/attach`): the same POST with
//!   `Upgrade: tcp` that `docker exec -it` sends, bytes relayed both ways.
//!
//! An error answer from the daemon arrives as one text message (the daemon's JSON, in its
//! words), then a close with code 4000 + the HTTP status.

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::{header, Method, StatusCode};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::upstream::Upstream;

/// What a WebSocket to `/api/…` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bridge {
    /// A GET whose body streams.
    Stream,
    /// A hijacking POST with this JSON body.
    Hijack(&'static str),
}

/// The bridge for an API path (version prefix included or not).
pub fn bridge_for(path: &str) -> Bridge {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let parts = match parts.first() {
        Some(v) if v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit() || c == '.') => {
            &parts[1..]
        }
        _ => &parts[..],
    };
    match parts {
        ["exec", _, "start"] => Bridge::Hijack(r#"{"Detach":false,"Tty":true}"#),
        ["containers", _, "attach"] => Bridge::Hijack(""),
        _ => Bridge::Stream,
    }
}

/// Runs the bridge until either side ends.
pub async fn run(up: Upstream, target: String, bridge: Bridge, mut ws: WebSocket) {
    let (method, body) = match &bridge {
        Bridge::Stream => (Method::GET, Body::empty()),
        Bridge::Hijack(b) => (Method::POST, Body::from(*b)),
    };
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(&target)
        .header(header::HOST, "localhost");
    if let Bridge::Hijack(b) = bridge {
        req = req
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp");
        if !b.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
    }
    let Ok(req) = req.body(body) else { return };
    let resp = match up.send(req).await {
        Ok(r) => r,
        Err(e) => {
            let msg = serde_json::json!({ "message": e.to_string() }).to_string();
            return refuse(ws, StatusCode::BAD_GATEWAY, msg).await;
        }
    };
    let status = resp.status();
    let ok = match bridge {
        Bridge::Stream => status.is_success(),
        Bridge::Hijack(_) => status == StatusCode::SWITCHING_PROTOCOLS,
    };
    if !ok {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned())
            .unwrap_or_default();
        return refuse(ws, status, body).await;
    }
    match bridge {
        Bridge::Stream => {
            let mut body = resp.into_body();
            loop {
                tokio::select! {
                    frame = body.frame() => match frame {
                        Some(Ok(f)) => {
                            if let Ok(data) = f.into_data() {
                                if ws.send(Message::Binary(data)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Some(Err(_)) | None => break,
                    },
                    msg = ws.recv() => match msg {
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                        _ => {}
                    },
                }
            }
            close(ws, 1000, "").await;
        }
        Bridge::Hijack(_) => {
            let upgraded = match hyper::upgrade::on(resp).await {
                Ok(u) => u,
                Err(e) => {
                    let msg = serde_json::json!({ "message": e.to_string() }).to_string();
                    return refuse(ws, StatusCode::BAD_GATEWAY, msg).await;
                }
            };
            relay(ws, TokioIo::new(upgraded)).await;
        }
    }
}

/// Bytes both ways between the page and a hijacked connection.
async fn relay<S>(ws: WebSocket, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (mut tx, mut rx) = ws.split();
    let to_daemon = async move {
        while let Some(Ok(msg)) = rx.next().await {
            let data: Bytes = match msg {
                Message::Binary(b) => b,
                Message::Text(t) => Bytes::copy_from_slice(t.as_str().as_bytes()),
                Message::Close(_) => break,
                _ => continue,
            };
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let to_page = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = tx
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: Utf8Bytes::from_static(""),
            })))
            .await;
    };
    // The process's end (the daemon closes) ends the session. The page's close ends the
    // input; a shell then exits and the daemon ends the output, but a program that ignores
    // its input's end would hold the connection: it gets a few seconds, then the connection
    // is dropped (the process goes on, as after a `docker exec` client's exit).
    let mut to_page = tokio::spawn(to_page);
    tokio::select! {
        _ = &mut to_page => return,
        () = to_daemon => {}
    }
    if tokio::time::timeout(std::time::Duration::from_secs(5), &mut to_page)
        .await
        .is_err()
    {
        to_page.abort();
    }
}

async fn refuse(mut ws: WebSocket, status: StatusCode, body: String) {
    let _ = ws.send(Message::Text(body.into())).await;
    close(ws, 4000 + status.as_u16(), "").await;
}

async fn close(mut ws: WebSocket, code: u16, reason: &'static str) {
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hijacks_are_exec_start_and_attach() {
        assert!(matches!(
            bridge_for("/v1.44/exec/abc/start"),
            Bridge::Hijack(_)
        ));
        assert!(matches!(bridge_for("/exec/abc/start"), Bridge::Hijack(_)));
        assert!(matches!(
            bridge_for("/v1.44/containers/web/attach"),
            Bridge::Hijack(_)
        ));
        assert_eq!(bridge_for("/v1.44/events"), Bridge::Stream);
        assert_eq!(bridge_for("/v1.44/containers/web/logs"), Bridge::Stream);
        assert_eq!(bridge_for("/v1.44/containers/start/stats"), Bridge::Stream);
    }
}
