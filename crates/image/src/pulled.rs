//! Images that arrive from a registry. A pulled layer is kept as the registry served it
//! (compressed, under the digest its manifest names) so that pushing it again reproduces the
//! same digests byte for byte; recompressing could not, since gzip output differs between
//! implementations and levels. It is unpacked into its snapshot in the same pass that
//! stores and hashes it, and neither becomes visible before both digests (the compressed
//! blob's and the diff_id) check out.
//!
//! An [`Ingest`] pins what it writes until its image is registered, so a concurrent `rmi` or
//! `prune` cannot collect layers of a pull in flight.

use std::fs;
use std::io::{self, Read, Write};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::apply::apply_layer;
use crate::blobs::{decompress, digest_of, sync_dir, TMP_PREFIX};
use crate::config::ImageConfig;
use crate::db::ImageRecord;
use crate::error::{Error, Result};
use crate::manifest::{is_layer_media_type, Manifest};
use crate::reference::{validate_digest, Reference};
use crate::snapshot::chain_ids;
use crate::store::{Image, RemoveOnDrop, Store};

/// One layer of an image being pulled.
#[derive(Clone, Debug)]
pub struct PullLayer {
    /// The compressed blob's digest and size, as the manifest gives them.
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// The image's diff_ids (from its config) and this layer's index in them.
    pub diff_ids: Arc<Vec<String>>,
    pub index: usize,
}

/// A pull in progress against the store: pins its blobs and snapshots until dropped.
#[derive(Debug)]
pub struct Ingest {
    store: Arc<Store>,
    pinned: std::sync::Mutex<Vec<String>>,
}

impl PullLayer {
    fn chain(&self) -> Result<String> {
        let upto = self.diff_ids.get(..=self.index).ok_or_else(|| {
            Error::BadArchive(format!(
                "layer {} has no diff_id in the config",
                self.digest
            ))
        })?;
        Ok(chain_ids(upto).pop().unwrap_or_default())
    }

    fn diff_id(&self) -> &str {
        self.diff_ids
            .get(self.index)
            .map(String::as_str)
            .unwrap_or("")
    }
}

impl Ingest {
    /// Starts a pull against `store`.
    pub fn new(store: Arc<Store>) -> Ingest {
        Ingest {
            store,
            pinned: Default::default(),
        }
    }

    fn pin(&self, names: &[&str]) {
        let mut p = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        for n in names {
            self.store.pin(n);
            p.push(n.to_string());
        }
    }

    /// The unpacked size of `layer` when both its blob and its snapshot are already here
    /// (then the pull skips it, as Docker's "Already exists").
    pub fn present(&self, layer: &PullLayer) -> Option<u64> {
        let chain = layer.chain().ok()?;
        if !self.store.blobs.exists(&layer.digest) || !self.store.snapshot_dir(&chain).is_dir() {
            return None;
        }
        self.pin(&[&layer.digest, &chain]);
        Some(self.store.layer_size(&chain).unwrap_or(0))
    }

    /// Reads the compressed layer from `r` in one pass: stores it, hashes it, decompresses,
    /// hashes the tar (diff_id) and unpacks it into a temp snapshot. Both are published only
    /// when both digests match; on any error nothing of the layer remains. Returns the
    /// unpacked size.
    pub fn unpack(&self, r: &mut (dyn Read + Send), layer: &PullLayer) -> Result<u64> {
        validate_digest(&layer.digest)?;
        if !is_layer_media_type(&layer.media_type) {
            return Err(Error::BadArchive(format!(
                "layer {}: unsupported media type {:?}",
                layer.digest, layer.media_type
            )));
        }
        let chain = layer.chain()?;
        self.pin(&[&layer.digest, &chain]);
        let label = layer.digest.clone();
        let bad = |source| Error::BadLayer {
            layer: label.clone(),
            source,
        };
        let mut blob = self.store.blobs.writer()?;
        let tmp = self.store.snapshot_tmp();
        crate::private::create_new_dir(&tmp).map_err(Error::io("create", &tmp))?;
        let _cleanup = RemoveOnDrop(tmp.clone());
        // Two threads per layer: this one decompresses, hashes the tar and unpacks; a
        // second stores and hashes the compressed bytes and hands them over, so the two
        // halves of the work overlap. The second reads its input to the end whatever
        // happens here, so a failure can tell a corrupt download (digest mismatch, the real
        // cause) from a bad layer.
        let (res, stored) = std::thread::scope(|sc| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(HANDOVER_CHUNKS);
            // Used buffers come back, so a layer allocates a handful, not one per chunk.
            let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(HANDOVER_CHUNKS + 1);
            let blob = &mut blob;
            let storer = sc.spawn(move || -> io::Result<()> {
                let mut forward = true;
                loop {
                    let mut buf = back_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(HANDOVER_CHUNK));
                    buf.resize(HANDOVER_CHUNK, 0);
                    // Full chunks: fewer hand-overs (each is a wake-up of the other thread).
                    let mut n = 0;
                    while n < buf.len() {
                        match r.read(&mut buf[n..]) {
                            Ok(0) => break,
                            Ok(k) => n += k,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    if n == 0 {
                        break;
                    }
                    buf.truncate(n);
                    blob.write_all(&buf)?;
                    forward = forward && tx.send(buf).is_ok();
                }
                drop(tx);
                // Flush to disk while the other thread finishes unpacking.
                blob.sync()
            });
            let res = (|| {
                let mut packed = HandOver {
                    rx,
                    back: back_tx,
                    cur: Vec::new(),
                    pos: 0,
                };
                let (n, hasher) = {
                    let plain = decompress(&mut packed).map_err(bad)?;
                    let mut hashed = HashingReader {
                        inner: plain,
                        hasher: Sha256::new(),
                    };
                    let n = apply_layer(&mut hashed, &tmp, &label)?;
                    (n, hashed.hasher)
                };
                // The compressed stream may go on past what the decompressor needed
                // (padding, a trailing frame): the blob is all of it.
                io::copy(&mut packed, &mut io::sink()).map_err(bad)?;
                Ok((n, format!("sha256:{}", hex::encode(hasher.finalize()))))
            })();
            let stored = storer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the layer's storing thread panicked")));
            (res, stored)
        });
        let (unpacked, diff_id) = match res {
            Ok(v) => {
                stored.map_err(bad)?;
                v
            }
            Err(e) => {
                let got = blob.digest();
                if stored.is_ok() && got != layer.digest {
                    return Err(Error::DigestMismatch {
                        what: format!("layer {}", layer.digest),
                        expected: layer.digest.clone(),
                        actual: got,
                    });
                }
                return Err(e);
            }
        };
        let got = blob.digest();
        if got != layer.digest {
            return Err(Error::DigestMismatch {
                what: format!("layer {}", layer.digest),
                expected: layer.digest.clone(),
                actual: got,
            });
        }
        if diff_id != layer.diff_id() {
            return Err(Error::DigestMismatch {
                what: format!("uncompressed layer {} (diff_id)", layer.digest),
                expected: layer.diff_id().to_string(),
                actual: diff_id,
            });
        }
        if self.store.blobs.exists(&got) {
            drop(blob);
        } else {
            blob.commit(Some(&got))?;
        }
        let dst = self.store.snapshot_dir(&chain);
        if !dst.is_dir() {
            match fs::rename(&tmp, &dst) {
                Ok(()) => sync_dir(dst.parent().unwrap_or(&dst))?,
                // Another pull of the same layer got there first: its copy is as good.
                Err(_) if dst.is_dir() => {}
                Err(e) => return Err(Error::io("rename snapshot to", &dst)(e)),
            }
        }
        Ok(unpacked)
    }

    /// Records the pulled image: config and manifest blobs (verified against each other and
    /// against the layers present), the image, and `refs` (a tag and/or `repo@digest`).
    pub fn register(
        &self,
        manifest: &[u8],
        config: &[u8],
        layer_sizes: &[u64],
        refs: &[Reference],
    ) -> Result<Image> {
        let m: Manifest = serde_json::from_slice(manifest).map_err(Error::json("manifest"))?;
        let id = digest_of(config);
        if id != m.config.digest {
            return Err(Error::DigestMismatch {
                what: "image config".to_string(),
                expected: m.config.digest.clone(),
                actual: id,
            });
        }
        let cfg: ImageConfig =
            serde_json::from_slice(config).map_err(Error::json(format!("config {id}")))?;
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        if chains.len() != m.layers.len() || layer_sizes.len() != m.layers.len() {
            return Err(Error::BadArchive(format!(
                "image {id}: config lists {} layers, manifest {}",
                chains.len(),
                m.layers.len()
            )));
        }
        for (l, c) in m.layers.iter().zip(&chains) {
            if !self.store.blobs.exists(&l.digest) || !self.store.snapshot_dir(c).is_dir() {
                return Err(Error::BadArchive(format!(
                    "image {id}: layer {} was not pulled",
                    l.digest
                )));
            }
        }
        let _g = self.store.lock();
        let mut db = self.store.load_db()?;
        self.store.blobs.put(config)?;
        let manifest_digest = self.store.blobs.put(manifest)?;
        db.images.insert(
            id.clone(),
            ImageRecord {
                manifest: manifest_digest,
                layer_sizes: layer_sizes.to_vec(),
                parent: db.images.get(&id).and_then(|r| r.parent.clone()),
            },
        );
        for r in refs {
            db.refs.insert(r.to_string(), id.clone());
        }
        self.store.save_db(&db)?;
        self.store.image_from(&db, &id)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let p = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        for n in p.iter() {
            self.store.unpin(n);
        }
    }
}

/// Compressed bytes handed from the storing thread to the unpacking one: at most this many
/// chunks of this size in flight per layer.
const HANDOVER_CHUNKS: usize = 8;
const HANDOVER_CHUNK: usize = 256 << 10;

/// The unpacking thread's end of the hand-over.
struct HandOver {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for HandOver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(v) => {
                    let used = std::mem::replace(&mut self.cur, v);
                    let _ = self.back.try_send(used);
                    self.pos = 0;
                }
                // The storing thread ended: its own result says whether that was an error.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Store {
    pub(crate) fn snapshot_tmp(&self) -> std::path::PathBuf {
        let name = self
            .tmp_path("snap")
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.snapshot_dir(&format!("{TMP_PREFIX}{name}"))
    }
}
