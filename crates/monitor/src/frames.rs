//! Docker's multiplexed stream, as the monitor writes it for a container without a tty: each
//! frame an 8-byte header (the stream: 0 stdin, 1 stdout, 2 stderr; three zero bytes; the
//! payload's length, big-endian), then the payload. Read back by the daemon (when a client
//! wants raw bytes) and by the CLI.

/// Splits the stream into frames, across reads of any size.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feeds bytes; calls `out(stream, payload)` for each whole frame.
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(u8, &[u8])) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while self.buf.len() - pos >= 8 {
            let h = &self.buf[pos..pos + 8];
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - pos - 8 < len {
                break;
            }
            out(h[0], &self.buf[pos + 8..pos + 8 + len]);
            pos += 8 + len;
        }
        self.buf.drain(..pos);
    }
}
