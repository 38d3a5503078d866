//! The server side of a SPDY/3.1 session (the framing kubelet's streaming clients speak since
//! Kubernetes' first releases): the client opens streams (SYN_STREAM, headers zlib-compressed
//! with the protocol's dictionary), the server replies (SYN_REPLY) and both send DATA frames
//! until FIN. One task reads frames and hands each new stream, with a receiver of its data, to
//! the caller; one task writes what the streams send.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;
/// A frame larger than this is a protocol error (SPDY's length is 24 bits).
const MAX_FRAME: usize = 1 << 24;
/// RST_STREAM status: PROTOCOL_ERROR.
const PROTOCOL_ERROR: u32 = 1;

/// SPDY/3's dictionary for header block compression (the specification's, 1423 bytes).
const DICTIONARY: &[u8] = include_bytes!("spdy3.dict");

/// A stream the client opened.
#[derive(Debug)]
pub struct Stream {
    pub id: u32,
    /// Header names are lower case, as SPDY/3 sends them.
    pub headers: HashMap<String, String>,
    /// The client's DATA, until its FIN (the channel then ends).
    pub data: mpsc::Receiver<Bytes>,
}

/// What the session writes, in order.
#[derive(Debug)]
enum Out {
    Reply(u32),
    Data(u32, Bytes, bool),
    Rst(u32, u32),
    Ping(u32),
    WindowUpdate(u32, u32),
    GoAway,
}

/// The write side of a session: cloneable, usable from any task.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Out>,
}

impl Writer {
    /// Sends `data` on stream `id` (FIN when `fin`).
    pub fn data(&self, id: u32, data: Bytes, fin: bool) -> bool {
        self.tx.send(Out::Data(id, data, fin)).is_ok()
    }

    /// Ends the session: GOAWAY, then the connection closes once all before it is written.
    pub fn go_away(&self) {
        let _ = self.tx.send(Out::GoAway);
    }
}

/// Runs a session on `io` (the upgraded connection). New streams arrive on the returned
/// receiver; the session ends when the client goes or after `Writer::go_away`.
pub fn serve<IO>(io: IO) -> (Writer, mpsc::Receiver<Stream>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (streams_tx, streams_rx) = mpsc::channel(16);
    tokio::spawn(write_loop(write, out_rx));
    let writer = Writer { tx: out_tx };
    tokio::spawn(read_loop(read, writer.clone(), streams_tx));
    (writer, streams_rx)
}

async fn read_loop<R: AsyncRead + Unpin>(mut r: R, w: Writer, streams: mpsc::Sender<Stream>) {
    let mut inflate = flate2::Decompress::new(true);
    let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut header = [0u8; 8];
    loop {
        if r.read_exact(&mut header).await.is_err() {
            break;
        }
        let flags = header[4];
        let len = u32::from_be_bytes([0, header[5], header[6], header[7]]) as usize;
        if len > MAX_FRAME {
            break;
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).await.is_err() {
            break;
        }
        if header[0] & 0x80 == 0 {
            // A DATA frame.
            let id = u32::from_be_bytes([header[0] & 0x7f, header[1], header[2], header[3]]);
            if !body.is_empty() {
                // Credit back what was taken, for the stream and the session (3.1), so a
                // client that honours windows never stalls on a long stdin.
                let n = body.len() as u32;
                let _ = w.tx.send(Out::WindowUpdate(id, n));
                let _ = w.tx.send(Out::WindowUpdate(0, n));
                if let Some(tx) = open.get(&id) {
                    let _ = tx.send(Bytes::from(body)).await;
                }
            }
            if flags & FLAG_FIN != 0 {
                open.remove(&id);
            }
            continue;
        }
        let version = u16::from_be_bytes([header[0] & 0x7f, header[1]]);
        let kind = u16::from_be_bytes([header[2], header[3]]);
        if version != VERSION {
            break;
        }
        match kind {
            SYN_STREAM if body.len() >= 10 => {
                let id = u32::from_be_bytes([body[0] & 0x7f, body[1], body[2], body[3]]);
                let Some(headers) = decode_headers(&mut inflate, &body[10..]) else {
                    let _ = w.tx.send(Out::Rst(id, PROTOCOL_ERROR));
                    break;
                };
                let (tx, rx) = mpsc::channel(64);
                if flags & FLAG_FIN == 0 {
                    open.insert(id, tx);
                }
                let _ = w.tx.send(Out::Reply(id));
                if streams
                    .send(Stream {
                        id,
                        headers,
                        data: rx,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
            HEADERS if body.len() >= 4 => {
                // Kept in step with the client's compressor; nothing here needs them.
                let _ = decode_headers(&mut inflate, &body[4..]);
            }
            RST_STREAM if body.len() >= 4 => {
                let id = u32::from_be_bytes([body[0] & 0x7f, body[1], body[2], body[3]]);
                open.remove(&id);
            }
            PING if body.len() >= 4 => {
                let id = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let _ = w.tx.send(Out::Ping(id));
            }
            GOAWAY => break,
            SETTINGS | WINDOW_UPDATE => {}
            _ => {}
        }
    }
}

/// A header block: a count, then length-prefixed names and values (32-bit big-endian),
/// inflated with the session's one zlib stream.
fn decode_headers(
    inflate: &mut flate2::Decompress,
    block: &[u8],
) -> Option<HashMap<String, String>> {
    let mut out = Vec::with_capacity(block.len() * 4);
    let mut input = block;
    loop {
        out.reserve(4096);
        let before_in = inflate.total_in();
        let status = inflate.decompress_vec(input, &mut out, flate2::FlushDecompress::Sync);
        let used = (inflate.total_in() - before_in) as usize;
        input = &input[used..];
        match status {
            Ok(_) => {}
            Err(e) if e.needs_dictionary().is_some() => {
                inflate.set_dictionary(DICTIONARY).ok()?;
                continue;
            }
            Err(_) => return None,
        }
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        if out.len() > MAX_FRAME {
            return None;
        }
    }
    let mut headers = HashMap::new();
    let mut p = &out[..];
    let mut take = |n: usize| -> Option<&[u8]> {
        let (a, b) = p.split_at_checked(n)?;
        p = b;
        Some(a)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().ok()?);
    for _ in 0..count {
        let n = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        // Several values of one name are NUL-separated; the first is enough here.
        let value = String::from_utf8_lossy(take(n)?);
        let value = value.split('\0').next().unwrap_or_default().to_owned();
        headers.insert(name, value);
    }
    Some(headers)
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::UnboundedReceiver<Out>) {
    let mut deflate = flate2::Compress::new(flate2::Compression::default(), true);
    if deflate.set_dictionary(DICTIONARY).is_err() {
        return;
    }
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        buf.clear();
        let mut next = Some(first);
        let mut done = false;
        // Everything queued goes out in one write.
        while let Some(out) = next {
            match out {
                Out::Reply(id) => {
                    let block = encode_headers(&mut deflate);
                    let mut body = id.to_be_bytes().to_vec();
                    body.extend_from_slice(&block);
                    control(&mut buf, SYN_REPLY, 0, &body);
                }
                Out::Data(id, data, fin) => {
                    // Frames of at most 64 KiB: clients read whole frames.
                    let mut chunks = data.chunks(64 * 1024).peekable();
                    if chunks.peek().is_none() {
                        data_frame(&mut buf, id, &[], fin);
                    }
                    while let Some(c) = chunks.next() {
                        data_frame(&mut buf, id, c, fin && chunks.peek().is_none());
                    }
                }
                Out::Rst(id, status) => {
                    let mut body = id.to_be_bytes().to_vec();
                    body.extend_from_slice(&status.to_be_bytes());
                    control(&mut buf, RST_STREAM, 0, &body);
                }
                Out::Ping(id) => control(&mut buf, PING, 0, &id.to_be_bytes()),
                Out::WindowUpdate(id, delta) => {
                    let mut body = id.to_be_bytes().to_vec();
                    body.extend_from_slice(&delta.to_be_bytes());
                    control(&mut buf, WINDOW_UPDATE, 0, &body);
                }
                Out::GoAway => {
                    control(&mut buf, GOAWAY, 0, &[0u8; 8]);
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

/// An empty header block (the replies need no headers), compressed in the session's stream.
fn encode_headers(deflate: &mut flate2::Compress) -> Vec<u8> {
    let raw = 0u32.to_be_bytes();
    let mut out = Vec::with_capacity(64);
    let _ = deflate.compress_vec(&raw, &mut out, flate2::FlushCompress::Sync);
    out
}

fn control(buf: &mut Vec<u8>, kind: u16, flags: u8, body: &[u8]) {
    buf.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    buf.extend_from_slice(&kind.to_be_bytes());
    let len = body.len() as u32;
    buf.push(flags);
    buf.extend_from_slice(&len.to_be_bytes()[1..]);
    buf.extend_from_slice(body);
}

fn data_frame(buf: &mut Vec<u8>, id: u32, data: &[u8], fin: bool) {
    buf.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
    buf.push(if fin { FLAG_FIN } else { 0 });
    buf.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    buf.extend_from_slice(data);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_specifications() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options"));
        assert!(DICTIONARY.ends_with(b"enq=0."));
    }

    #[test]
    fn header_blocks_round_trip_through_the_session_streams() {
        // A client's block: two pairs, compressed with the dictionary.
        let mut raw = 2u32.to_be_bytes().to_vec();
        for (k, v) in [("streamtype", "stdout"), ("port", "80")] {
            raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let mut c = flate2::Compress::new(flate2::Compression::default(), true);
        c.set_dictionary(DICTIONARY).unwrap();
        let mut d = flate2::Decompress::new(true);
        for _ in 0..2 {
            let mut block = Vec::with_capacity(256);
            c.compress_vec(&raw, &mut block, flate2::FlushCompress::Sync)
                .unwrap();
            let h = decode_headers(&mut d, &block).unwrap();
            assert_eq!(h["streamtype"], "stdout");
            assert_eq!(h["port"], "80");
        }
    }
}
