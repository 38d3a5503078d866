//! Docker's detach keys: the key sequence that, typed on an attached terminal, ends the
//! attachment and leaves the container running. The daemon scans a client's input for them
//! (`detachKeys=`, an exec's `DetachKeys`), and so does the CLI on its own terminal.

use std::borrow::Cow;

/// ctrl-p ctrl-q, Docker's default.
pub const DEFAULT_KEYS: &[u8] = &[16, 17];

/// A comma-separated list of single characters and `ctrl-X` (X one of a-z @ [ \ ] ^ _), as
/// `--detach-keys` and config.json's `detachKeys` spell it; `None` when it is not one.
pub fn parse_keys(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for key in text.split(',') {
        match key.to_ascii_lowercase().strip_prefix("ctrl-") {
            Some(rest) if rest.len() == 1 => out.push(match rest.as_bytes()[0] {
                c @ b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return None,
            }),
            Some(_) => return None,
            None if key.len() == 1 => out.push(key.as_bytes()[0]),
            None => return None,
        }
    }
    Some(out)
}

/// Passes input through, holding back bytes that may begin the sequence until they prove
/// not to; the whole sequence detaches and is dropped, as is anything after it.
#[derive(Debug)]
pub struct Scanner {
    keys: Vec<u8>,
    /// How many of `keys` the input has matched so far (held back).
    matched: usize,
}

impl Scanner {
    pub fn new(keys: Vec<u8>) -> Scanner {
        Scanner { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence is now complete.
    pub fn feed<'a>(&mut self, input: &'a [u8]) -> (Cow<'a, [u8]>, bool) {
        if self.keys.is_empty() {
            return (Cow::Borrowed(input), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (Cow::Owned(out), true);
                }
                continue;
            }
            // Not the sequence after all: what was held back goes on, and this byte may
            // begin it anew.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (Cow::Owned(out), true);
                }
            } else {
                out.push(b);
            }
        }
        (Cow::Owned(out), false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_docker_reads_them() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_keys("ctrl-@,ctrl-_").unwrap(), vec![0, 31]);
        assert_eq!(parse_keys("a,ctrl-X").unwrap(), vec![b'a', 24]);
        for bad in ["", "ctrl-", "ctrl-pq", "ab", "ctrl-1", "a,,b"] {
            assert_eq!(parse_keys(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_scanner_passes_near_misses_and_stops_at_the_sequence() {
        let mut s = Scanner::new(vec![16, 17]);
        let mut feed = |b: &[u8]| {
            let (out, done) = s.feed(b);
            (out.into_owned(), done)
        };
        assert_eq!(feed(b"ab\x10"), (b"ab".to_vec(), false));
        // Held back across reads, then released by a byte that is not the second key.
        assert_eq!(feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(feed(b"\x11rest"), (Vec::new(), true));
        let mut one = Scanner::new(vec![b'q']);
        assert_eq!(one.feed(b"xyq1").0.into_owned(), b"xy".to_vec());
    }
}
