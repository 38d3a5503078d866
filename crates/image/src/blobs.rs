//! The content store: `blobs/sha256/<hex>`. A blob becomes visible only after its bytes were
//! hashed while streaming, fsync'd and renamed into place, so a reader never sees a partial or
//! unverified blob, and a crash leaves at most a `.tmp-*` file that gc removes.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::reference::validate_digest;

pub(crate) const TMP_PREFIX: &str = ".tmp-";

#[derive(Debug)]
pub(crate) struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    pub(crate) fn open(dir: PathBuf) -> Result<Blobs> {
        crate::private::create_dir(&dir).map_err(Error::io("create", &dir))?;
        Ok(Blobs { dir })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join(validate_digest(digest)?))
    }

    pub(crate) fn exists(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.exists())
    }

    pub(crate) fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.path(digest)?;
        fs::read(&p).map_err(Error::io("read blob", p))
    }

    pub(crate) fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.path(digest)?;
        File::open(&p).map_err(Error::io("open blob", p))
    }

    pub(crate) fn size(&self, digest: &str) -> Result<u64> {
        let p = self.path(digest)?;
        Ok(fs::metadata(&p).map_err(Error::io("stat blob", p))?.len())
    }

    /// Stores `data`, returning its digest.
    pub(crate) fn put(&self, data: &[u8]) -> Result<String> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(Error::io("write blob", &w.tmp))?;
        w.commit(None)
    }

    pub(crate) fn writer(&self) -> Result<BlobWriter> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = crate::private::create_file(&tmp).map_err(Error::io("create", &tmp))?;
        Ok(BlobWriter {
            dir: self.dir.clone(),
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }
}

/// A blob being written: hashes what passes through; `commit` verifies and publishes it.
pub(crate) struct BlobWriter {
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    size: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("tmp", &self.tmp)
            .finish()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter {
    /// fsyncs what was written so far (a later `commit` then has little left to flush).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// How many bytes were written so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The digest of what was written so far.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// fsyncs and renames into place; fails (and removes the temp file) when `expected`
    /// is given and differs.
    pub(crate) fn commit(mut self, expected: Option<&str>) -> Result<String> {
        let digest = self.digest();
        if let Some(e) = expected {
            if e != digest {
                return Err(Error::DigestMismatch {
                    what: e.to_string(),
                    expected: e.to_string(),
                    actual: digest,
                });
            }
        }
        let Some(file) = self.file.take() else {
            return Err(Error::io("commit", &self.tmp)(io::Error::other("twice")));
        };
        file.sync_all().map_err(Error::io("fsync", &self.tmp))?;
        drop(file);
        let dst = self.dir.join(&digest["sha256:".len()..]);
        fs::rename(&self.tmp, &dst).map_err(Error::io("rename blob to", &dst))?;
        sync_dir(&self.dir)?;
        Ok(digest)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync dir", dir))
}

/// Writes `data` to `path` atomically: temp file in the same dir, fsync, rename, fsync dir.
/// Each write has a temp file of its own (two writers never rename each other's); the
/// store's lock orders the writes of one file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}.{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("db"),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = crate::private::create_file(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(data).map_err(Error::io("write", &tmp))?;
    f.sync_all().map_err(Error::io("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(Error::io("rename to", path))?;
    sync_dir(dir)
}

/// A reader that also feeds everything it reads into a blob writer.
pub(crate) struct Tee<'a, R> {
    pub(crate) inner: R,
    pub(crate) out: &'a mut BlobWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Wraps `r` in the decompressor its magic bytes call for: gzip, zstd or none.
pub(crate) fn decompress<'a>(r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(64 * 1024, r);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(br)?))
    } else {
        Ok(Box::new(br))
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}
