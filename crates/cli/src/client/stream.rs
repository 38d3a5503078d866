//! The container's stdio over the API: Docker's multiplexed framing (an 8-byte header per
//! frame: stream, three zero bytes, big-endian length) demultiplexed to our stdout and
//! stderr, the local terminal in raw mode for `-t`, its size sent on start and on SIGWINCH,
//! and signals proxied to the container.

use std::io::Write;

use anyhow::Result;
use berth_monitor::frames::Demux;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

use super::http::{Client, Hijacked};

/// Writes one frame's payload where it belongs.
fn emit(stream: u8, data: &[u8]) {
    if stream == 2 {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(data);
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(data);
        let _ = o.flush();
    }
}

/// Copies a reader to stdout, demultiplexing unless the container has a tty.
pub async fn copy_output<R: AsyncRead + Unpin>(mut r: R, tty: bool) -> Result<()> {
    let mut demux = Demux::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e.into()),
        };
        if tty {
            emit(1, &buf[..n]);
        } else {
            demux.feed(&buf[..n], &mut |s, d| emit(s, d));
        }
    }
    Ok(())
}

/// Copies an HTTP body (logs, a non-upgraded attach) to stdout/stderr.
pub async fn copy_body(body: Incoming, tty: bool) -> Result<()> {
    let mut demux = Demux::default();
    let mut s = body.into_data_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        if tty {
            emit(1, &chunk);
        } else {
            demux.feed(&chunk, &mut |s, d| emit(s, d));
        }
    }
    Ok(())
}

/// How an attached stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// The output ended: the process is done.
    Done,
    /// The user typed the detach keys: the container goes on without us.
    Detached,
}

/// The detach keys of `--detach-keys`, else of config.json's `detachKeys`, else Docker's
/// ctrl-p ctrl-q; and the text to send the daemon (none for the default).
pub fn detach_keys(flag: Option<&str>) -> (Vec<u8>, Option<String>) {
    let text = flag.map(str::to_owned).or_else(|| {
        super::credentials::read_config()
            .ok()
            .and_then(|c| c["detachKeys"].as_str().map(str::to_owned))
    });
    let text = text.filter(|t| !t.is_empty());
    // An invalid sequence is the daemon's to refuse (with its message); ours stays the default.
    let keys = text
        .as_deref()
        .and_then(berth_monitor::detach::parse_keys)
        .unwrap_or_else(|| berth_monitor::detach::DEFAULT_KEYS.to_vec());
    (keys, text)
}

/// Runs a hijacked stream to its end: stdin (if `stdin`) copied in and half-closed at EOF,
/// output copied out. Returns when the output ends, or (with a terminal's stdin, as the
/// docker CLI) when `detach_keys` are typed.
pub async fn pump(h: Hijacked, tty: bool, stdin: bool, detach_keys: &[u8]) -> Result<Pumped> {
    match h {
        Hijacked::Body(b) => copy_body(b, tty).await.map(|()| Pumped::Done),
        Hijacked::Raw(io) => {
            let (rd, mut wr) = tokio::io::split(io);
            let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
            if stdin {
                let mut scanner =
                    tty.then(|| berth_monitor::detach::Scanner::new(detach_keys.to_vec()));
                tokio::spawn(async move {
                    let mut input = tokio::io::stdin();
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match input.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let (pass, detached) = match scanner.as_mut() {
                                    Some(s) => s.feed(&buf[..n]),
                                    None => (std::borrow::Cow::Borrowed(&buf[..n]), false),
                                };
                                if wr.write_all(&pass).await.is_err() {
                                    return;
                                }
                                let _ = wr.flush().await;
                                if detached {
                                    let _ = detached_tx.send(());
                                    return;
                                }
                            }
                        }
                    }
                    let _ = wr.shutdown().await;
                });
            } else {
                drop(wr);
            }
            tokio::select! {
                out = copy_output(rd, tty) => out.map(|()| Pumped::Done),
                Ok(()) = detached_rx => Ok(Pumped::Detached),
            }
        }
    }
}

/// The local terminal in raw mode until dropped.
#[derive(Debug)]
pub struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode (a no-op when stdin is not a terminal).
    pub fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output post-processing so our own messages still end lines properly.
        raw.output_flags.insert(termios::OutputFlags::OPOST);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, s);
        }
    }
}

/// Whether stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdout()).unwrap_or(false)
}

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
}

/// The terminal's (rows, columns), if stdout is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        // SAFETY: TIOCGWINSZ writes one `winsize` into the valid, exclusively borrowed `ws`;
        // an fd that is not a terminal makes it fail with ENOTTY and write nothing.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Sends the terminal size to `resize_path` (`/containers/{id}/resize` or
/// `/exec/{id}/resize`) now and on every SIGWINCH.
pub fn track_resize(client: &Client, resize_path: String) {
    let client = client.clone();
    tokio::spawn(async move {
        let send = |c: Client, p: String| async move {
            if let Some((h, w)) = terminal_size() {
                let _ = c.post(&format!("{p}?h={h}&w={w}")).await;
            }
        };
        send(client.clone(), resize_path.clone()).await;
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            send(client.clone(), resize_path.clone()).await;
        }
    });
}

/// docker's `--sig-proxy`: signals this process receives are sent to the container.
pub fn proxy_signals(client: &Client, id: &str) {
    let signals = [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
    ];
    for (num, name) in signals {
        let Ok(mut s) = signal(SignalKind::from_raw(num)) else {
            continue;
        };
        let client = client.clone();
        let path = format!("/containers/{id}/kill?signal={name}");
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = client.post(&path).await;
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn demux_splits_frames_across_reads() {
        let mut all = frame(1, b"hello\n");
        all.extend(frame(2, b"oops\n"));
        all.extend(frame(1, b""));
        all.extend(frame(1, b"bye"));
        let mut got: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut d = Demux::default();
        // Feed one byte at a time: headers and payloads cut anywhere.
        for b in &all {
            d.feed(std::slice::from_ref(b), &mut |s, p| {
                got.push((s, p.to_vec()))
            });
        }
        assert_eq!(
            got,
            vec![
                (1, b"hello\n".to_vec()),
                (2, b"oops\n".to_vec()),
                (1, Vec::new()),
                (1, b"bye".to_vec())
            ]
        );
        let mut n = 0;
        let mut d = Demux::default();
        d.feed(&all, &mut |_, _| n += 1);
        assert_eq!(n, 4);
    }
}
