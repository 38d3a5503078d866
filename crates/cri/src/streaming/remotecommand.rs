//! Kubernetes' remote command protocol (exec and attach) over a SPDY session or a WebSocket:
//! the client's stdin (and terminal resizes) into the process, its stdout and stderr out, and
//! at the end its status on the error stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{spdy, websocket, Session, Transport};
use crate::proto as pb;
use crate::service::Cri;

/// How long the client has to open the streams it asked for.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Channel numbers of the WebSocket protocols.
const CH_STDIN: u8 = 0;
const CH_STDOUT: u8 = 1;
const CH_STDERR: u8 = 2;
const CH_ERROR: u8 = 3;
const CH_RESIZE: u8 = 4;
/// v5: `[255, channel]` closes the client's side of a channel.
const CH_CLOSE: u8 = 255;

/// What the process's side writes to.
enum Out {
    Spdy {
        w: spdy::Writer,
        stdout: Option<u32>,
        stderr: Option<u32>,
        error: Option<u32>,
        all: Vec<u32>,
    },
    Ws(websocket::Writer),
}

impl Out {
    fn stdout(&self, data: Bytes) {
        match self {
            Out::Spdy {
                w,
                stdout: Some(id),
                ..
            } => {
                w.data(*id, data, false);
            }
            Out::Spdy { .. } => {}
            Out::Ws(w) => {
                w.send(CH_STDOUT, &data);
            }
        }
    }

    fn stderr(&self, data: Bytes) {
        match self {
            Out::Spdy {
                w,
                stderr: Some(id),
                ..
            } => {
                w.data(*id, data, false);
            }
            Out::Spdy { .. } => {}
            Out::Ws(w) => {
                w.send(CH_STDERR, &data);
            }
        }
    }

    fn error(&self, data: Vec<u8>) {
        match self {
            Out::Spdy {
                w, error: Some(id), ..
            } => {
                w.data(*id, Bytes::from(data), false);
            }
            Out::Spdy { .. } => {}
            Out::Ws(w) => {
                w.send(CH_ERROR, &data);
            }
        }
    }

    /// Ends every stream and the connection.
    fn close(&self) {
        match self {
            Out::Spdy { w, all, .. } => {
                for id in all {
                    w.data(*id, Bytes::new(), true);
                }
                w.go_away();
            }
            Out::Ws(w) => w.close(),
        }
    }
}

/// The client's side, as the process sees it.
struct Channels {
    stdin: Option<mpsc::Receiver<Bytes>>,
    resize: Option<mpsc::Receiver<(u16, u16)>>,
    out: Out,
}

/// The streams a request needs, opened (SPDY) or mapped (WebSocket).
async fn open<IO>(
    session: &Session,
    io: IO,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> Option<Channels>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    match session.transport {
        Transport::Spdy => {
            let (w, mut streams) = spdy::serve(io);
            // v1 has no error stream, v1 and v2 no resize stream.
            let has_error = session.protocol != "channel.k8s.io";
            let has_resize = tty
                && matches!(
                    session.protocol.as_str(),
                    "v3.channel.k8s.io" | "v4.channel.k8s.io"
                );
            let want = usize::from(has_error)
                + usize::from(stdin)
                + usize::from(stdout)
                + usize::from(stderr && !tty)
                + usize::from(has_resize);
            let mut ch = Channels {
                stdin: None,
                resize: None,
                out: Out::Spdy {
                    w: w.clone(),
                    stdout: None,
                    stderr: None,
                    error: None,
                    all: Vec::new(),
                },
            };
            let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
            let mut got = 0;
            while got < want {
                let s = match tokio::time::timeout_at(deadline, streams.recv()).await {
                    Ok(Some(s)) => s,
                    _ => {
                        w.go_away();
                        return None;
                    }
                };
                got += 1;
                let Out::Spdy {
                    stdout: out_id,
                    stderr: err_id,
                    error: error_id,
                    all,
                    ..
                } = &mut ch.out
                else {
                    return None;
                };
                all.push(s.id);
                match s.headers.get("streamtype").map(String::as_str) {
                    Some("error") => *error_id = Some(s.id),
                    Some("stdin") => ch.stdin = Some(s.data),
                    Some("stdout") => *out_id = Some(s.id),
                    Some("stderr") => *err_id = Some(s.id),
                    Some("resize") => ch.resize = Some(resizes(s.data)),
                    _ => got -= 1,
                }
            }
            Some(ch)
        }
        Transport::WebSocket => {
            let (w, mut messages) = websocket::serve(io);
            let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(64);
            let (resize_tx, resize_rx) = mpsc::channel::<Bytes>(16);
            tokio::spawn(async move {
                let mut stdin_tx = Some(stdin_tx);
                while let Some(m) = messages.recv().await {
                    let Some((&channel, data)) = m.split_first() else {
                        continue;
                    };
                    match channel {
                        CH_STDIN => {
                            if let Some(tx) = &stdin_tx {
                                let _ = tx.send(m.slice(1..)).await;
                            }
                        }
                        CH_RESIZE => {
                            let _ = resize_tx.send(m.slice(1..)).await;
                        }
                        CH_CLOSE if data.first() == Some(&CH_STDIN) => stdin_tx = None,
                        _ => {}
                    }
                }
            });
            // The client learns each channel is open from a message carrying just its number.
            for (on, channel) in [
                (stdin, CH_STDIN),
                (stdout, CH_STDOUT),
                (stderr && !tty, CH_STDERR),
            ] {
                if on {
                    w.send(channel, &[]);
                }
            }
            Some(Channels {
                stdin: stdin.then_some(stdin_rx),
                resize: tty.then(|| resizes(resize_rx)),
                out: Out::Ws(w),
            })
        }
    }
}

/// Terminal sizes from a stream of JSON objects (`{"Width":80,"Height":24}`), as
/// (height, width).
fn resizes(mut data: mpsc::Receiver<Bytes>) -> mpsc::Receiver<(u16, u16)> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = data.recv().await {
            buf.extend_from_slice(&chunk);
            let mut de =
                serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
            let mut used = 0;
            while let Some(Ok(v)) = de.next() {
                used = de.byte_offset();
                let dim = |k: &str| {
                    v[k].as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .unwrap_or(0)
                };
                let (w, h) = (dim("Width"), dim("Height"));
                if w > 0 && h > 0 && tx.send((h, w)).await.is_err() {
                    return;
                }
            }
            buf.drain(..used);
        }
    });
    rx
}

/// The status line of the error stream: JSON (v4, v5) or the bare message (older).
fn status(session: &Session, code: Option<i64>, error: Option<&str>) -> Option<Vec<u8>> {
    let v = match (code, error) {
        (_, Some(e)) => json!({
            "metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
            "message": format!("Internal error occurred: {e}"),
            "details": {"causes": [{"message": e}]},
        }),
        (Some(0) | None, None) => {
            if !session.json_status() {
                return None;
            }
            json!({"metadata": {}, "status": "Success"})
        }
        (Some(c), None) => json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": format!("command terminated with non-zero exit code: exit status {c}"),
            "details": {"causes": [{"reason": "ExitCode", "message": c.to_string()}]},
        }),
    };
    if session.json_status() {
        serde_json::to_vec(&v).ok()
    } else {
        v["message"].as_str().map(|m| m.as_bytes().to_vec())
    }
}

pub async fn exec<IO>(cri: Arc<Cri>, r: pb::ExecRequest, session: Session, io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some(ch) = open(&session, io, r.stdin, r.stdout, r.stderr, r.tty).await else {
        return;
    };
    let started = cri
        .engine
        .exec(&r.container_id, r.cmd.clone(), r.tty, r.stdin)
        .await;
    let io = match started {
        Ok(io) => io,
        Err(e) => {
            if let Some(s) = status(&session, None, Some(&e.to_string())) {
                ch.out.error(s);
            }
            ch.out.close();
            return;
        }
    };
    let exec_id = io.exec_id.clone();
    let resize_target = (cri.clone(), r.container_id.clone(), Some(exec_id.clone()));
    pump(
        ch.stdin,
        ch.resize,
        resize_target,
        io.stream,
        &ch.out,
        r.tty,
    )
    .await;
    let code = cri.engine.exec_wait(&exec_id).await;
    if let Some(s) = status(&session, Some(code), None) {
        ch.out.error(s);
    }
    ch.out.close();
}

pub async fn attach<IO>(cri: Arc<Cri>, r: pb::AttachRequest, session: Session, io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some(ch) = open(&session, io, r.stdin, r.stdout, r.stderr, r.tty).await else {
        return;
    };
    let stream = match cri.engine.attach(&r.container_id, r.stdin).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(s) = status(&session, None, Some(&e.to_string())) {
                ch.out.error(s);
            }
            ch.out.close();
            return;
        }
    };
    let resize_target = (cri.clone(), r.container_id.clone(), None);
    pump(ch.stdin, ch.resize, resize_target, stream, &ch.out, r.tty).await;
    if let Some(s) = status(&session, Some(0), None) {
        ch.out.error(s);
    }
    ch.out.close();
}

/// Moves stdin and resizes in and the output out until the process's side ends.
async fn pump(
    stdin: Option<mpsc::Receiver<Bytes>>,
    resize: Option<mpsc::Receiver<(u16, u16)>>,
    (cri, id, exec_id): (Arc<Cri>, String, Option<String>),
    stream: tokio::net::UnixStream,
    out: &Out,
    tty: bool,
) {
    let (mut rd, mut wr) = stream.into_split();
    let stdin_task = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            while let Some(data) = stdin.recv().await {
                if wr.write_all(&data).await.is_err() {
                    return;
                }
            }
        }
        // The client's stdin ended (or there is none): EOF for the process.
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await;
    });
    let resize_task = tokio::spawn(async move {
        if let Some(mut resize) = resize {
            while let Some((h, w)) = resize.recv().await {
                let _ = cri.engine.resize(&id, exec_id.as_deref(), h, w).await;
            }
        }
    });
    if tty {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.stdout(Bytes::copy_from_slice(&buf[..n])),
            }
        }
    } else {
        // Docker's multiplexed frames: stream byte, three zeros, big-endian length.
        let mut header = [0u8; 8];
        loop {
            if rd.read_exact(&mut header).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let mut data = vec![0u8; len];
            if rd.read_exact(&mut data).await.is_err() {
                break;
            }
            match header[0] {
                2 => out.stderr(Bytes::from(data)),
                _ => out.stdout(Bytes::from(data)),
            }
        }
    }
    stdin_task.abort();
    resize_task.abort();
}
