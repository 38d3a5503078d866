//! The one way compose reaches a daemon: Docker Engine API requests (DESIGN.md: compose
//! "drives the daemon through the API"). The binary implements `Engine` over its HTTP client,
//! so compose uses exactly the requests the docker CLI and docker compose send.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use crate::error::{Error, Result};

/// An HTTP method of the Engine API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Payload {
    None,
    /// `application/json`.
    Json(Value),
    /// `application/x-tar` (a build context, an archive to extract).
    Tar(Vec<u8>),
}

/// A streamed answer, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A transport's body as a `ByteStream`, its errors as `Error::Transport` (the CLI's and the
/// dashboard's `Engine` both stream hyper bodies).
pub fn byte_stream<S, E>(body: S) -> ByteStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    Box::pin(body.map(|r| r.map_err(|e| Error::Transport(e.to_string()))))
}

/// A daemon, reached through the Engine API (paths without the `/vX.Y` prefix).
pub trait Engine {
    /// A request answered with JSON (an empty answer is `null`). Error statuses become
    /// `Error::Daemon` with the daemon's message.
    fn call(
        &self,
        method: Method,
        path: &str,
        body: Payload,
    ) -> impl Future<Output = Result<Value>>;

    /// A request whose answer streams (logs, pull, push, build progress). Error statuses
    /// become `Error::Daemon`.
    fn stream(
        &self,
        method: Method,
        path: &str,
        body: Payload,
        headers: &[(&str, String)],
    ) -> impl Future<Output = Result<ByteStream>>;

    /// The `X-Registry-Auth` header for pushing or pulling `image` (base64url JSON; `{}` for
    /// anonymous access).
    fn registry_auth(&self, _image: &str) -> String {
        "e30=".into()
    }

    /// The `X-Registry-Config` header of a build: every stored login, by registry (base64url
    /// JSON; `{}` when none), for the daemon's pulls of base images.
    fn registry_config(&self) -> String {
        "e30=".into()
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a stream of JSON messages (pull, push, build), calling `each` per message; a message
/// with `error` ends it with that error.
pub async fn each_message(mut s: ByteStream, mut each: impl FnMut(&Value)) -> Result<()> {
    let mut messages = JsonMessages::default();
    while let Some(chunk) = s.next().await {
        messages.push(&chunk?);
        while let Some(v) = messages.next_message() {
            let v =
                v.map_err(|e| Error::Transport(format!("decoding the daemon's stream: {e}")))?;
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(Error::Failed(e.to_string()));
            }
            each(&v);
        }
    }
    Ok(())
}

/// Splits the daemon's streams of JSON messages (pull, push, build, events, stats) into
/// messages: they come back to back, and one may span chunks or a chunk hold several.
#[derive(Debug, Default)]
pub struct JsonMessages {
    buf: Vec<u8>,
}

impl JsonMessages {
    /// Adds a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole message; `None` until more of the stream has come.
    pub fn next_message(&mut self) -> Option<serde_json::Result<Value>> {
        let mut de = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        match de.next() {
            Some(Ok(v)) => {
                let used = de.byte_offset();
                self.buf.drain(..used);
                Some(Ok(v))
            }
            Some(Err(e)) if e.is_eof() => None,
            Some(Err(e)) => Some(Err(e)),
            // Only white space is left.
            None => {
                self.buf.clear();
                None
            }
        }
    }
}

/// Splits a logs stream into lines: the multiplexed frames of a container without a tty
/// (8-byte headers), the raw bytes of one with a tty.
#[derive(Debug, Default)]
pub struct LogLines {
    tty: bool,
    buf: Vec<u8>,
    line: Vec<u8>,
}

impl LogLines {
    pub fn new(tty: bool) -> LogLines {
        LogLines {
            tty,
            ..Default::default()
        }
    }

    /// Feeds a chunk; returns the complete lines it finished.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut payload = Vec::new();
        if self.tty {
            payload.extend_from_slice(chunk);
        } else {
            self.buf.extend_from_slice(chunk);
            while self.buf.len() >= 8 {
                let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
                    as usize;
                if self.buf.len() < 8 + len {
                    break;
                }
                payload.extend_from_slice(&self.buf[8..8 + len]);
                self.buf.drain(..8 + len);
            }
        }
        let mut lines = Vec::new();
        for b in payload {
            if b == b'\n' {
                let l = std::mem::take(&mut self.line);
                lines.push(
                    String::from_utf8_lossy(&l)
                        .trim_end_matches('\r')
                        .to_string(),
                );
            } else {
                self.line.push(b);
            }
        }
        lines
    }

    /// What is left without a newline at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        (!self.line.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_messages_split_across_and_within_chunks() {
        let mut m = JsonMessages::default();
        m.push(br#"{"status":"a"}{"sta"#);
        assert_eq!(
            m.next_message().unwrap().unwrap(),
            serde_json::json!({"status": "a"})
        );
        assert!(m.next_message().is_none());
        m.push(b"tus\":\"b\"}\r\n");
        assert_eq!(m.next_message().unwrap().unwrap()["status"], "b");
        assert!(m.next_message().is_none());
        m.push(b"{]");
        assert!(m.next_message().unwrap().is_err());
    }

    #[test]
    fn frames_split_into_lines() {
        let mut l = LogLines::new(false);
        let mut frame = vec![1, 0, 0, 0, 0, 0, 0, 7];
        frame.extend_from_slice(b"a\nbc\nde");
        assert_eq!(l.feed(&frame[..5]), Vec::<String>::new());
        assert_eq!(l.feed(&frame[5..]), ["a", "bc"]);
        let mut more = vec![2, 0, 0, 0, 0, 0, 0, 2];
        more.extend_from_slice(b"f\n");
        assert_eq!(l.feed(&more), ["def"]);
        let mut t = LogLines::new(true);
        assert_eq!(t.feed(b"x\r\ny"), ["x"]);
        assert_eq!(t.finish().as_deref(), Some("y"));
    }
}
