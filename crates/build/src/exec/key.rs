//! Cache keys. A step's key is the digest of its parent state (the config digest, which
//! covers the layers, the environment, the user and the working directory), the step's
//! instruction with its words expanded, and what else decides its result: the content of
//! COPY/ADD sources, the build args a RUN sees, its network. Same key, same result.

use sha2::{Digest, Sha256};

/// Bumped when the meaning of a key changes, so old records stop matching.
const VERSION: &[u8] = b"berth-build-cache/1";

/// Builds one key from its parts.
pub(crate) struct Key(Sha256);

impl Key {
    /// A key for a step on top of `parent` (a config digest; empty for `FROM scratch`).
    pub fn new(parent: &str, keyword: &str) -> Key {
        let mut h = Sha256::new();
        h.update(VERSION);
        h.update([0]);
        h.update(if parent.is_empty() { "scratch" } else { parent }.as_bytes());
        h.update([0]);
        h.update(keyword.as_bytes());
        Key(h)
    }

    /// Adds a string part (length-prefixed, so parts never run into each other).
    pub fn part(mut self, s: &str) -> Key {
        self.0.update((s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
        self
    }

    pub fn bytes(mut self, b: &[u8]) -> Key {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.0.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_do_not_run_together() {
        let a = Key::new("p", "RUN").part("ab").part("c").finish();
        let b = Key::new("p", "RUN").part("a").part("bc").finish();
        assert_ne!(a, b);
        assert_eq!(a, Key::new("p", "RUN").part("ab").part("c").finish());
        assert_ne!(a, Key::new("q", "RUN").part("ab").part("c").finish());
    }
}
