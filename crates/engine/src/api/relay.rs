//! Carrying a monitor's attach stream to a hijacked client and the client's input back, as
//! dockerd does: the output reframed when the client asked for other framing than the process
//! has (an exec made with a tty and started without one is multiplexed), and the input of a
//! terminal scanned for the detach keys, which end the attachment and are not passed on.

use std::os::fd::AsRawFd;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::logs::frame;
use crate::error::{ApiError, Result};

pub use berth_monitor::detach::DEFAULT_KEYS as DEFAULT_DETACH_KEYS;

pub type ClientWrite = tokio::io::WriteHalf<Client>;

/// A hijacked connection's client side (hyper's upgraded stream).
pub type Client = TokioIo<hyper::upgrade::Upgraded>;

/// The API connection's socket descriptor, noted when the connection is accepted (each
/// request carries it as `ConnectInfo`). Used only while its connection's stream is held,
/// which keeps the descriptor open and its number ours.
#[derive(Debug, Clone, Copy)]
pub struct ConnFd(pub std::os::fd::RawFd);

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for ConnFd
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        ConnFd(stream.io().as_raw_fd())
    }
}

/// How long a client may take to read the answer's head before the stream goes anyway.
const HEAD_READ_WAIT: Duration = Duration::from_secs(2);

/// The client's side of an upgraded connection, once the client has read the 101 answer.
/// docker-py reads that head through a buffered reader, then reads the stream from the raw
/// socket: a stream byte that arrived with the head would sit unseen in its buffer (its
/// issue 1799). dockerd's own latency usually hides this; berth writes at once, so it waits
/// until the socket's queue towards the client is empty (SIOCOUTQ: sent, not yet read).
/// No event tells of a peer's read: this polls, each millisecond, for that short moment.
pub async fn client_of(upgraded: hyper::upgrade::Upgraded, fd: Option<ConnFd>) -> Client {
    if let Some(ConnFd(fd)) = fd {
        let deadline = tokio::time::Instant::now() + HEAD_READ_WAIT;
        // `upgraded` owns the connection: `fd` is open and still this connection's.
        while unread_by_peer(fd) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    TokioIo::new(upgraded)
}

/// Bytes written to a Unix stream socket that its peer has not read yet.
fn unread_by_peer(fd: std::os::fd::RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer, valid for the call; an
    // ioctl on a descriptor that is not a socket fails and writes nothing.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc == 0 {
        n
    } else {
        0
    }
}

/// How the monitor's stream must change on its way to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The client takes what the monitor sends.
    AsIs,
    /// The process has a terminal (raw bytes) and the client wants Docker's frames: each
    /// chunk goes as stdout.
    Multiplex,
    /// The process has pipes (frames) and the client wants raw bytes: the payloads only.
    Demultiplex,
}

impl Framing {
    /// From whether the process has a terminal and whether the client's stream is raw.
    pub fn between(process_tty: bool, client_raw: bool) -> Framing {
        match (process_tty, client_raw) {
            (true, false) => Framing::Multiplex,
            (false, true) => Framing::Demultiplex,
            _ => Framing::AsIs,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The client's input goes to the process's stdin.
    pub stdin: bool,
    /// The detach keys, scanned for in the client's input (a terminal's only, as dockerd).
    pub detach_keys: Option<Vec<u8>>,
    pub framing: Framing,
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The monitor's stream ended: the process is done (or the monitor is gone).
    Output,
    /// The client typed the detach keys.
    Detached,
}

/// Carries the stream both ways until the output ends or the client detaches. Returns the
/// client's write half, still open, so that the caller decides when the client sees the end.
pub async fn relay(
    client: Client,
    monitor: std::os::unix::net::UnixStream,
    opts: RelayOptions,
) -> Option<(ClientWrite, Ended)> {
    monitor.set_nonblocking(true).ok()?;
    let monitor = tokio::net::UnixStream::from_std(monitor).ok()?;
    let (mut mon_read, mut mon_write) = monitor.into_split();
    let (mut cli_read, mut cli_write) = tokio::io::split(client);
    let to_client = async {
        let mut buf = vec![0u8; 32 * 1024];
        let mut demux = berth_monitor::frames::Demux::default();
        loop {
            let n = match mon_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = &buf[..n];
            let sent = match opts.framing {
                Framing::AsIs => cli_write.write_all(data).await,
                Framing::Multiplex => cli_write.write_all(&frame(1, data)).await,
                Framing::Demultiplex => {
                    let mut payload = Vec::with_capacity(data.len());
                    demux.feed(data, &mut |_, p| payload.extend_from_slice(p));
                    cli_write.write_all(&payload).await
                }
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = cli_write.flush().await;
    };
    let from_client = async {
        let mut scanner = opts
            .detach_keys
            .clone()
            .map(berth_monitor::detach::Scanner::new);
        if opts.stdin {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match cli_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (pass, detached) = match scanner.as_mut() {
                    Some(s) => s.feed(&buf[..n]),
                    None => (std::borrow::Cow::Borrowed(&buf[..n]), false),
                };
                if !pass.is_empty() && mon_write.write_all(&pass).await.is_err() {
                    break;
                }
                if detached {
                    return Ended::Detached;
                }
            }
        }
        let _ = mon_write.shutdown().await;
        // Keep reading nothing; the output side decides when the stream ends.
        std::future::pending::<Ended>().await
    };
    let ended = tokio::select! {
        _ = to_client => Ended::Output,
        e = from_client => e,
    };
    Some((cli_write, ended))
}

/// Docker's detach keys, read as dockerd reads them (see `berth_monitor::detach`).
pub fn parse_detach_keys(text: &str) -> Result<Vec<u8>> {
    berth_monitor::detach::parse_keys(text)
        .ok_or_else(|| ApiError::BadRequest(format!("Invalid detach keys ({text}) provided")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    #[test]
    fn framing_follows_the_process_and_the_client() {
        assert_eq!(Framing::between(true, false), Framing::Multiplex);
        assert_eq!(Framing::between(false, true), Framing::Demultiplex);
        assert_eq!(Framing::between(true, true), Framing::AsIs);
        assert_eq!(Framing::between(false, false), Framing::AsIs);
    }
}
