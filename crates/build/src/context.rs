//! The build context: the tar the client sent, kept as it came (in memory, or in a file once
//! it is large) with an index of its entries, so that a fully cached build never writes the
//! context out. Paths are resolved inside it: a symlink that leads out of the context is an
//! error, never followed. Content digests (for the cache keys of COPY/ADD) are computed once
//! per path and build, and only for the paths a step names.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::ignore::{clean, Ignore};

/// A context larger than this goes to a file rather than memory.
const MEMORY_LIMIT: usize = 64 << 20;
/// Symlinks followed while resolving one path, as Linux's own limit.
const MAX_LINKS: usize = 40;

/// What an entry of the context is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
    /// A hard link to another entry (its path in the context).
    Hardlink(String),
}

/// One entry: its metadata from the tar, and where its bytes are.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub mtime: i64,
    pub size: u64,
    offset: u64,
}

enum Data {
    Memory(Vec<u8>),
    File(File),
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::Memory(v) => write!(f, "Memory({} bytes)", v.len()),
            Data::File(_) => write!(f, "File"),
        }
    }
}

/// The build context.
#[derive(Debug)]
pub struct Context {
    data: Data,
    /// Clean relative path (`""` is the root) → entry.
    entries: BTreeMap<String, Entry>,
    digests: Mutex<HashMap<String, [u8; 32]>>,
}

/// Keeps what passes through: the context's bytes, in memory up to a limit, then in a file.
struct Keep<'a, R> {
    inner: R,
    mem: Vec<u8>,
    file: Option<File>,
    spill: &'a Path,
    total: u64,
    /// Zeros still to give after the stream's end.
    padding: usize,
}

impl<R: Read> Read for Keep<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.padding > 0 {
            // The docker CLI's rewritten context (a Dockerfile from outside added) ends
            // without the last entry's padding and the end blocks; Go's reader takes that,
            // so zeros stand in for them. They are not kept: data is never made up.
            let k = buf.len().min(self.padding);
            buf[..k].fill(0);
            self.padding -= k;
            return Ok(k);
        }
        self.total += n as u64;
        if self.file.is_none() && self.mem.len() + n > MEMORY_LIMIT {
            // The context is the client's files: root's alone.
            let mut f = std::os::unix::fs::OpenOptionsExt::mode(
                File::options().read(true).write(true).create_new(true),
                0o600,
            )
            .open(self.spill)?;
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(&buf[..n])?,
            None => self.mem.extend_from_slice(&buf[..n]),
        }
        Ok(n)
    }
}

/// `r` through the decompressor its first bytes call for: gzip, zstd, or none.
fn decompressed<'a>(r: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>> {
    let bad = |e: std::io::Error| Error::Context(format!("reading the context: {e}"));
    let mut br = std::io::BufReader::new(r);
    let head = std::io::BufRead::fill_buf(&mut br).map_err(bad)?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(br)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(zstd::Decoder::with_buffer(br).map_err(bad)?),
        [b'B', b'Z', b'h', ..] | [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            return Err(Error::Context(
                "build contexts compressed with bzip2 or xz are not supported: send a plain, gzip or zstd tar".into(),
            ))
        }
        _ => Box::new(br),
    })
}

impl Context {
    /// Reads a context tar, plain or compressed (gzip or zstd, known by their magic bytes as
    /// dockerd knows them: docker-py gzips a context with `gzip=True` and says so only in
    /// `Content-Encoding`). `spill` is where the plain tar goes when it is too large for
    /// memory.
    pub fn from_tar(r: &mut dyn Read, spill: &Path) -> Result<Context> {
        let mut plain = decompressed(r)?;
        let mut keep = Keep {
            inner: &mut plain,
            mem: Vec::new(),
            file: None,
            spill,
            total: 0,
            padding: 1536,
        };
        let mut entries = BTreeMap::new();
        entries.insert(String::new(), dir_entry());
        {
            let mut ar = tar::Archive::new(&mut keep);
            let bad = |e: std::io::Error| Error::Context(format!("reading the context tar: {e}"));
            for entry in ar.entries().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                let raw = entry.path_bytes().into_owned();
                let name = String::from_utf8_lossy(&raw).into_owned();
                let path = clean(&name);
                if path == ".." || path.starts_with("../") {
                    return Err(Error::Context(format!(
                        "context tar entry {name:?} leads out of the context"
                    )));
                }
                let path = match path.trim_start_matches('/') {
                    "." => String::new(),
                    p => p.to_string(),
                };
                let h = entry.header();
                let link = || {
                    entry
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default()
                };
                let kind = match h.entry_type() {
                    tar::EntryType::Directory => Kind::Dir,
                    tar::EntryType::Symlink => Kind::Symlink(link()),
                    tar::EntryType::Link => {
                        Kind::Hardlink(clean(&link()).trim_start_matches('/').to_string())
                    }
                    tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                    // Devices, fifos: nothing a build can copy.
                    _ => continue,
                };
                let e = Entry {
                    kind,
                    mode: h.mode().unwrap_or(0o644) & 0o7777,
                    mtime: h.mtime().unwrap_or(0) as i64,
                    size: entry.size(),
                    offset: entry.raw_file_position(),
                };
                add_parents(&mut entries, &path);
                entries.insert(path, e);
            }
            // Drain the tar's end blocks so a client's stream is read to its end.
            let _ = std::io::copy(&mut ar.into_inner(), &mut std::io::sink());
        }
        let data = match keep.file.take() {
            Some(f) => Data::File(f),
            None => Data::Memory(std::mem::take(&mut keep.mem)),
        };
        Ok(Context {
            data,
            entries,
            digests: Mutex::new(HashMap::new()),
        })
    }

    /// Drops what `.dockerignore` excludes (directories stay while something under them
    /// is kept, as the client's tar would have them).
    pub fn apply_ignore(&mut self, ignore: &Ignore) {
        if ignore.is_empty() {
            return;
        }
        let excluded: Vec<String> = self
            .entries
            .keys()
            .filter(|p| !p.is_empty() && ignore.excludes(p))
            .cloned()
            .collect();
        for p in excluded {
            let prefix = format!("{p}/");
            let has_kept_child = self
                .entries
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .any(|(k, _)| !ignore.excludes(k));
            if !has_kept_child {
                self.entries.remove(&p);
            }
        }
    }

    /// The entry at a clean path, as is (a symlink not followed).
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Resolves a path given by the user (relative to the context root; `..` may not lead
    /// out) following symlinks inside the context, the last one too if `follow_last`.
    /// `Ok(None)`: no such entry. A symlink that leads out is an error.
    pub fn resolve(&self, user_path: &str, follow_last: bool) -> Result<Option<String>> {
        let cleaned = clean(&format!("/{user_path}"));
        let mut todo: Vec<String> = cleaned
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        todo.reverse();
        let mut cur: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            let mut next = cur.clone();
            next.push(comp.clone());
            let path = next.join("/");
            let Some(e) = self.entries.get(&path) else {
                return Ok(None);
            };
            let last = todo.is_empty();
            match &e.kind {
                Kind::Symlink(target) if !last || follow_last => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Error::Context(format!(
                            "too many levels of symbolic links resolving {user_path}"
                        )));
                    }
                    let base = cur.join("/");
                    let joined = if target.starts_with('/') || base.is_empty() {
                        target.clone()
                    } else {
                        format!("{base}/{target}")
                    };
                    let resolved = clean(&joined);
                    let escapes =
                        target.starts_with('/') || resolved == ".." || resolved.starts_with("../");
                    if escapes {
                        return Err(Error::SymlinkEscape {
                            path,
                            target: target.clone(),
                        });
                    }
                    for c in resolved.split('/').rev() {
                        if !c.is_empty() && c != "." {
                            todo.push(c.to_string());
                        }
                    }
                    cur.clear();
                }
                _ => cur = next,
            }
        }
        Ok(Some(cur.join("/")))
    }

    /// Every path under `dir` (not itself), in order.
    pub fn children_of<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k.is_empty())
    }

    /// The bytes of a regular file (hard links resolved).
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let e = self.file_entry(path)?;
        let mut buf = vec![0u8; e.size as usize];
        match &self.data {
            Data::Memory(v) => {
                let start = e.offset as usize;
                let end = start + buf.len();
                let src = v
                    .get(start..end)
                    .ok_or_else(|| Error::Context(format!("context entry {path} is truncated")))?;
                buf.copy_from_slice(src);
            }
            Data::File(f) => f
                .read_exact_at(&mut buf, e.offset)
                .map_err(|err| Error::Context(format!("reading {path} from the context: {err}")))?,
        }
        Ok(buf)
    }

    /// Writes a regular file's bytes to `out` without holding them all (large files).
    pub fn copy_to(&self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let e = self.file_entry(path)?;
        let io = |err: std::io::Error| Error::Context(format!("copying {path}: {err}"));
        match &self.data {
            Data::Memory(v) => {
                let start = e.offset as usize;
                let src = v
                    .get(start..start + e.size as usize)
                    .ok_or_else(|| Error::Context(format!("context entry {path} is truncated")))?;
                out.write_all(src).map_err(io)?;
            }
            Data::File(f) => {
                let mut buf = vec![0u8; 256 << 10];
                let mut done = 0u64;
                while done < e.size {
                    let n = ((e.size - done) as usize).min(buf.len());
                    f.read_exact_at(&mut buf[..n], e.offset + done)
                        .map_err(io)?;
                    out.write_all(&buf[..n]).map_err(io)?;
                    done += n as u64;
                }
            }
        }
        Ok(e.size)
    }

    fn file_entry(&self, path: &str) -> Result<&Entry> {
        let mut p = path.to_string();
        for _ in 0..MAX_LINKS {
            let e = self
                .entries
                .get(&p)
                .ok_or_else(|| Error::Context(format!("{path}: not in the context")))?;
            match &e.kind {
                Kind::File => return Ok(e),
                Kind::Hardlink(t) => p = t.clone(),
                _ => return Err(Error::Context(format!("{path}: not a regular file"))),
            }
        }
        Err(Error::Context(format!("{path}: hard link loop")))
    }

    /// The content digest of a path (a directory: of everything under it), symlinks not
    /// followed. Names, types, modes, link targets and bytes count; times and owners do not
    /// (COPY gives files its own owner, and a touched file is the same file).
    pub fn digest(&self, path: &str) -> Result<[u8; 32]> {
        if let Some(d) = self.lock_digests().get(path) {
            return Ok(*d);
        }
        let e = self
            .entries
            .get(path)
            .ok_or_else(|| Error::Context(format!("{path}: not in the context")))?;
        // BLAKE3, not SHA-256: four times faster here, and these digests are cache keys
        // only, never content addresses anyone else sees.
        let mut h = blake3::Hasher::new();
        match &e.kind {
            Kind::File | Kind::Hardlink(_) => {
                h.update(b"f");
                h.update(&self.file_entry(path)?.mode.to_le_bytes());
                self.hash_file(path, &mut h)?;
            }
            Kind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_bytes());
            }
            Kind::Dir => {
                h.update(b"d");
                h.update(&e.mode.to_le_bytes());
                let kids: Vec<String> = self
                    .children_of(path)
                    .map(|(k, _)| k.clone())
                    .filter(|k| !k[prefix_len(path)..].contains('/'))
                    .collect();
                for k in kids {
                    h.update(&k.as_bytes()[prefix_len(path)..]);
                    h.update(&[0]);
                    h.update(&self.digest(&k)?);
                }
            }
        }
        let d: [u8; 32] = h.finalize().into();
        self.lock_digests().insert(path.to_string(), d);
        Ok(d)
    }

    fn hash_file(&self, path: &str, h: &mut blake3::Hasher) -> Result<()> {
        self.copy_to(path, h).map(|_| ())
    }

    fn lock_digests(&self) -> std::sync::MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.digests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn prefix_len(dir: &str) -> usize {
    if dir.is_empty() {
        0
    } else {
        dir.len() + 1
    }
}

fn dir_entry() -> Entry {
    Entry {
        kind: Kind::Dir,
        mode: 0o755,
        mtime: 0,
        size: 0,
        offset: 0,
    }
}

/// Directories a tar implies without listing them get Docker's default 0755.
fn add_parents(entries: &mut BTreeMap<String, Entry>, path: &str) {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        let parent = &path[..end + i];
        entries.entry(parent.to_string()).or_insert_with(dir_entry);
        end += i + 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx(files: &[(&str, &str)], links: &[(&str, &str)]) -> Context {
        let mut b = tar::Builder::new(Vec::new());
        for (p, c) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(c.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, c.as_bytes()).unwrap();
        }
        for (p, t) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, p, t).unwrap();
        }
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        Context::from_tar(&mut data.as_slice(), &dir.path().join("spill")).unwrap()
    }

    #[test]
    fn index_read_and_resolve() {
        let c = ctx(
            &[("./a/b.txt", "hello"), ("top", "x")],
            &[
                ("ln", "a/b.txt"),
                ("dirln", "a"),
                ("out", "../../etc"),
                ("abs", "/etc/passwd"),
            ],
        );
        assert_eq!(c.read("a/b.txt").unwrap(), b"hello");
        assert!(matches!(c.entry("a").unwrap().kind, Kind::Dir));
        assert_eq!(c.resolve("ln", true).unwrap().as_deref(), Some("a/b.txt"));
        assert_eq!(c.resolve("ln", false).unwrap().as_deref(), Some("ln"));
        assert_eq!(
            c.resolve("dirln/b.txt", false).unwrap().as_deref(),
            Some("a/b.txt")
        );
        assert_eq!(
            c.resolve("/a/../top", true).unwrap().as_deref(),
            Some("top")
        );
        assert_eq!(c.resolve("nothing", true).unwrap(), None);
        assert!(matches!(
            c.resolve("out/passwd", true),
            Err(Error::SymlinkEscape { .. })
        ));
        assert!(matches!(
            c.resolve("abs", true),
            Err(Error::SymlinkEscape { .. })
        ));
        assert!(c.resolve("abs", false).is_ok());
    }

    #[test]
    fn digests_follow_content_not_time() {
        let a = ctx(&[("d/f", "one"), ("d/g", "two")], &[]);
        let b = ctx(&[("d/f", "one"), ("d/g", "two")], &[]);
        let c = ctx(&[("d/f", "one"), ("d/g", "TWO")], &[]);
        assert_eq!(a.digest("d").unwrap(), b.digest("d").unwrap());
        assert_ne!(a.digest("d").unwrap(), c.digest("d").unwrap());
        assert_eq!(a.digest("d/f").unwrap(), c.digest("d/f").unwrap());
    }

    #[test]
    fn ignore_keeps_dirs_of_kept_children() {
        let mut c = ctx(
            &[("build/x", "1"), ("build/keep", "2"), ("src/a", "3")],
            &[],
        );
        c.apply_ignore(&Ignore::parse("build\n!build/keep\n").unwrap());
        let paths: Vec<&String> = c.children_of("").map(|(k, _)| k).collect();
        assert_eq!(paths, ["build", "build/keep", "src", "src/a"]);
    }
}
