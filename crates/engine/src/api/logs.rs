//! `GET /containers/{id}/logs` from the json-file log the monitor writes, and the pieces every
//! streamed response shares: Docker's stdout/stderr framing and a channel-backed body.

use std::io::{BufRead, BufReader, Seek};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::{flag, Query, Shared};
use crate::error::{ApiError, Result};

pub type Chunk = std::result::Result<Bytes, std::io::Error>;

/// A response whose body is what the channel carries.
pub fn stream_response(rx: mpsc::Receiver<Chunk>, content_type: &'static str) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut()
        .insert("Content-Type", HeaderValue::from_static(content_type));
    resp
}

/// A blocking `Write` into a response body, for producers that run in spawn_blocking.
pub struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Chunk>) -> ChannelWriter {
        ChannelWriter { tx }
    }

    /// Ends the body with an error (the client sees a truncated transfer, as with dockerd).
    pub fn fail(&self, msg: String) {
        let _ = self.tx.blocking_send(Err(std::io::Error::other(msg)));
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One frame of Docker's multiplexed stream: stream id, three zero bytes, big-endian length.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    Bytes::from(out)
}

#[derive(serde::Deserialize)]
struct LogLine {
    log: String,
    stream: String,
    time: String,
}

/// A container's json-file log files: the rotated ones first (oldest = highest number), then
/// the live one.
fn log_files(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = (1..100)
        .map(|n| std::path::PathBuf::from(format!("{}.{n}", path.display())))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_owned());
    files
}

/// Each entry of the log, in order, until `f` says stop.
fn each_stored_line(path: &std::path::Path, mut f: impl FnMut(LogLine) -> bool) {
    for file in log_files(path) {
        let Ok(file) = std::fs::File::open(file) else {
            continue;
        };
        for line in BufReader::new(file).lines().map_while(|l| l.ok()) {
            if let Ok(l) = serde_json::from_str::<LogLine>(&line) {
                if !f(l) {
                    return;
                }
            }
        }
    }
}

fn stored_lines(path: &std::path::Path) -> Vec<LogLine> {
    let mut lines = Vec::new();
    each_stored_line(path, |l| {
        lines.push(l);
        true
    });
    lines
}

/// What `attach?logs=1` sends before (or instead of) the live stream: the stored log of the
/// streams asked for, framed unless the container has a tty, into `tx` until the receiver
/// goes (blocking: it reads files).
pub fn send_stored_output(
    path: &std::path::Path,
    tty: bool,
    (stdout, stderr): (bool, bool),
    tx: &mpsc::Sender<Bytes>,
) {
    each_stored_line(path, |l| {
        let err = l.stream == "stderr";
        if !(if err { stderr } else { stdout }) {
            return true;
        }
        let chunk = if tty {
            Bytes::from(l.log.into_bytes())
        } else {
            frame(if err { 2 } else { 1 }, l.log.as_bytes())
        };
        tx.blocking_send(chunk).is_ok()
    });
}

fn parse_since(s: Option<&String>) -> Option<f64> {
    let s = s?;
    if s.is_empty() || s == "0" {
        return None;
    }
    s.parse::<f64>().ok()
}

fn line_time(t: &str) -> f64 {
    let secs = crate::files::unix_seconds(t) as f64;
    let frac = t
        .split_once('.')
        .map(|(_, f)| f.trim_end_matches('Z'))
        .and_then(|f| format!("0.{f}").parse::<f64>().ok())
        .unwrap_or(0.0);
    secs + frac
}

pub async fn logs(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> Result<Response> {
    let c = d.containers.find(&id)?;
    let driver = c
        .host_config
        .log_config
        .as_ref()
        .and_then(|l| l.typ.as_deref());
    if driver == Some("none") {
        return Err(ApiError::NotImplemented(
            crate::log_driver::NO_READING.into(),
        ));
    }
    let follow = flag(&q, "follow");
    let (stdout, stderr) = (flag(&q, "stdout"), flag(&q, "stderr"));
    let timestamps = flag(&q, "timestamps");
    let tail: Option<usize> = q
        .get("tail")
        .filter(|t| *t != "all")
        .and_then(|t| t.parse().ok());
    let since = parse_since(q.get("since"));
    let until = parse_since(q.get("until"));
    let tty = c.tty();
    let path = d.log_path(&c.id);
    let (tx, rx) = mpsc::channel::<Chunk>(64);
    let dd = d.clone();
    let cid = c.id.clone();
    tokio::task::spawn_blocking(move || {
        let emit = |l: &LogLine| -> bool {
            let want = match l.stream.as_str() {
                "stderr" => stderr,
                _ => stdout,
            };
            let t = line_time(&l.time);
            if !want || since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                return true;
            }
            let text = if timestamps {
                format!("{} {}", l.time, l.log)
            } else {
                l.log.clone()
            };
            let chunk = if tty {
                Bytes::from(text.into_bytes())
            } else {
                frame(if l.stream == "stderr" { 2 } else { 1 }, text.as_bytes())
            };
            tx.blocking_send(Ok(chunk)).is_ok()
        };
        let lines = stored_lines(&path);
        let skip = tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
        for l in &lines[skip..] {
            if !emit(l) {
                return;
            }
        }
        if !follow {
            return;
        }
        // Follow: read what the monitor appends until the container is done.
        let Ok(mut file) = std::fs::File::open(&path) else {
            return;
        };
        let _ = file.seek(std::io::SeekFrom::End(0));
        let mut reader = BufReader::new(file);
        let mut buf = String::new();
        loop {
            // A line the monitor is still writing stays in `buf` until its newline arrives.
            match reader.read_line(&mut buf) {
                Ok(n) if n > 0 && buf.ends_with('\n') => {
                    if let Ok(l) = serde_json::from_str::<LogLine>(&buf) {
                        if !emit(&l) {
                            return;
                        }
                    }
                    buf.clear();
                    continue;
                }
                _ => {}
            }
            let running = dd
                .containers
                .find(&cid)
                .map(|c| c.is_running())
                .unwrap_or(false);
            if !running || tx.is_closed() {
                return;
            }
            // The json-file driver has no change notification of its own; a short sleep
            // between reads is what `docker logs -f` costs dockerd too.
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(stream_response(rx, ct))
}
