//! The server side of a WebSocket connection (RFC 6455) as Kubernetes' channel protocols use
//! it: binary messages whose first byte names the channel. One task reads messages (client
//! frames are masked; fragments are joined; pings answered), one writes.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;
/// A message larger than this ends the connection.
const MAX_MESSAGE: usize = 16 << 20;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

#[derive(Debug)]
enum Out {
    Message(Bytes),
    Pong(Bytes),
    Close,
}

/// The write side: cloneable, usable from any task.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Out>,
}

impl Writer {
    /// Sends one binary message: `channel` then `data`.
    pub fn send(&self, channel: u8, data: &[u8]) -> bool {
        let mut m = Vec::with_capacity(data.len() + 1);
        m.push(channel);
        m.extend_from_slice(data);
        self.tx.send(Out::Message(Bytes::from(m))).is_ok()
    }

    /// A close frame, then the connection ends once everything before it is written.
    pub fn close(&self) {
        let _ = self.tx.send(Out::Close);
    }
}

/// Runs the connection; the client's messages (binary or text, whole) arrive on the receiver
/// until it closes.
pub fn serve<IO>(io: IO) -> (Writer, mpsc::Receiver<Bytes>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::channel(64);
    tokio::spawn(write_loop(w, out_rx));
    let writer = Writer { tx: out_tx };
    tokio::spawn(read_loop(r, writer.clone(), in_tx));
    (writer, in_rx)
}

async fn read_loop<R: AsyncRead + Unpin>(mut r: R, w: Writer, messages: mpsc::Sender<Bytes>) {
    let mut message: Vec<u8> = Vec::new();
    loop {
        let mut head = [0u8; 2];
        if r.read_exact(&mut head).await.is_err() {
            break;
        }
        let fin = head[0] & 0x80 != 0;
        let op = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            if r.read_exact(&mut b).await.is_err() {
                break;
            }
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            if r.read_exact(&mut b).await.is_err() {
                break;
            }
            len = u64::from_be_bytes(b);
        }
        if len as usize > MAX_MESSAGE || message.len() + len as usize > MAX_MESSAGE {
            break;
        }
        let mut mask = [0u8; 4];
        if masked && r.read_exact(&mut mask).await.is_err() {
            break;
        }
        let mut payload = vec![0u8; len as usize];
        if r.read_exact(&mut payload).await.is_err() {
            break;
        }
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        match op {
            OP_PING => {
                let _ = w.tx.send(Out::Pong(Bytes::from(payload)));
            }
            OP_PONG => {}
            OP_CLOSE => {
                w.close();
                break;
            }
            OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                message.extend_from_slice(&payload);
                if fin {
                    let whole = Bytes::from(std::mem::take(&mut message));
                    if messages.send(whole).await.is_err() {
                        break;
                    }
                }
            }
            _ => break,
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::UnboundedReceiver<Out>) {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        buf.clear();
        let mut next = Some(first);
        let mut done = false;
        while let Some(out) = next {
            match out {
                Out::Message(m) => frame(&mut buf, OP_BINARY, &m),
                Out::Pong(p) => frame(&mut buf, OP_PONG, &p),
                Out::Close => {
                    // 1000: normal closure.
                    frame(&mut buf, OP_CLOSE, &1000u16.to_be_bytes());
                    done = true;
                }
            }
            next = if done { None } else { rx.try_recv().ok() };
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            return;
        }
        if done {
            let _ = w.shutdown().await;
            return;
        }
    }
}

/// One unmasked, unfragmented frame (a server's).
fn frame(buf: &mut Vec<u8>, op: u8, payload: &[u8]) {
    buf.push(0x80 | op);
    let n = payload.len();
    if n < 126 {
        buf.push(n as u8);
    } else if n <= usize::from(u16::MAX) {
        buf.push(126);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(127);
        buf.extend_from_slice(&(n as u64).to_be_bytes());
    }
    buf.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
