//! The daemon's Engine API socket, reached as every other client reaches it: one HTTP/1.1
//! connection per request (a Unix socket connects in microseconds, and streams such as
//! `/events` hold theirs for as long as they last), upgrades allowed (exec's hijack).

use std::path::PathBuf;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// The API socket.
#[derive(Debug, Clone)]
pub struct Upstream {
    socket: PathBuf,
}

impl Upstream {
    pub fn new(socket: PathBuf) -> Upstream {
        Upstream { socket }
    }

    /// Sends `req` (its URI: path and query only) and returns the daemon's answer, whose
    /// body streams as the daemon writes it.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.error(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.error(e.to_string()))?;
        tokio::spawn(async move {
            // Ends when the answer (or the upgraded stream) is done; its error is the
            // request's, already reported through `send_request`.
            let _ = conn.with_upgrades().await;
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| self.error(e.to_string()))
    }

    fn error(&self, reason: String) -> Error {
        Error::Upstream {
            socket: self.socket.display().to_string(),
            reason,
        }
    }
}
