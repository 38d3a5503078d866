//! An image in the form a registry takes it: its manifest bytes and the blobs they name.
//!
//! A pulled image already has that form (its manifest and compressed blobs are kept as they
//! came). An image made here (import, commit, load, build) has an OCI manifest over
//! uncompressed layers; its first push gzips those layers into new blobs, writes a new OCI
//! manifest over them and makes that the image's manifest, so every later push of the image,
//! to any registry, sends the same bytes and gets the same digests.

use std::fs::File;
use std::io::Write;

use flate2::write::GzEncoder;
use serde_json::json;

use crate::blobs::digest_of;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::reference::Reference;
use crate::store::{resolve, Store};

/// What a push sends: the manifest and, in order, the blobs it names.
#[derive(Clone, Debug)]
pub struct Distribution {
    /// The image id (config digest).
    pub id: String,
    pub manifest: Vec<u8>,
    pub media_type: String,
    /// `sha256:` digest of `manifest`.
    pub digest: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl Store {
    /// The image `name` as a registry takes it, gzipping layers still stored uncompressed.
    pub fn distribution(&self, name: &str) -> Result<Distribution> {
        let id = {
            let db = self.load_db()?;
            resolve(&db, name)?
        };
        let (mut manifest_digest, mut bytes) = self.manifest_of(&id)?;
        let mut m: Manifest = serde_json::from_slice(&bytes)
            .map_err(Error::json(format!("manifest {manifest_digest}")))?;
        if m.layers.iter().any(|l| l.media_type == OCI_LAYER) {
            let mut layers = Vec::with_capacity(m.layers.len());
            // New blobs are pinned until the db names them: a concurrent gc leaves them.
            let mut pinned = Vec::new();
            let gzipped = (|| {
                for l in &m.layers {
                    layers.push(if l.media_type == OCI_LAYER {
                        let d = self.gzip_blob(&l.digest)?;
                        pinned.push(d.digest.clone());
                        d
                    } else {
                        l.clone()
                    });
                }
                Ok::<(), Error>(())
            })();
            let _unpin = Unpin(self, pinned);
            gzipped?;
            let doc = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": m.config.digest, "size": m.config.size},
                "layers": layers,
            });
            bytes = serde_json::to_vec(&doc).map_err(Error::json("manifest"))?;
            let _unpin_manifest = {
                let d = digest_of(&bytes);
                self.pin(&d);
                Unpin(self, vec![d])
            };
            manifest_digest = self.blobs.put(&bytes)?;
            let _g = self.lock();
            let mut db = self.load_db()?;
            if let Some(rec) = db.images.get_mut(&id) {
                rec.manifest = manifest_digest.clone();
            }
            self.save_db(&db)?;
            m.layers = layers;
        }
        let media_type = if m.media_type.is_empty() {
            OCI_MANIFEST.to_string()
        } else {
            m.media_type.clone()
        };
        Ok(Distribution {
            id,
            manifest: bytes,
            media_type,
            digest: manifest_digest,
            config: m.config,
            layers: m.layers,
        })
    }

    /// Opens a stored blob for reading (a push streams it from here).
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        self.blobs.open_blob(digest)
    }

    /// Records `repo@digest` (a reference with a digest) as pointing at image `id`: the
    /// RepoDigest a push or a pull leaves.
    pub fn add_repo_digest(&self, id: &str, r: &Reference) -> Result<()> {
        if r.digest().is_none() {
            return Err(Error::InvalidReference {
                input: r.to_string(),
                reason: "a repo digest needs a digest",
            });
        }
        let _g = self.lock();
        let mut db = self.load_db()?;
        if !db.images.contains_key(id) {
            return Err(Error::NotFound(id.to_string()));
        }
        db.refs.insert(r.to_string(), id.to_string());
        self.save_db(&db)
    }

    fn gzip_blob(&self, digest: &str) -> Result<Descriptor> {
        let mut src = self.blobs.open_blob(digest)?;
        let mut w = self.blobs.writer()?;
        let mut gz = GzEncoder::new(&mut w, flate2::Compression::default());
        std::io::copy(&mut src, &mut gz).map_err(Error::io("compress layer", digest))?;
        gz.finish()
            .and_then(|w| w.flush())
            .map_err(Error::io("compress layer", digest))?;
        let size = w.size();
        // Pinned before it is visible; the caller unpins once the db names it.
        let dg = w.digest();
        self.pin(&dg);
        let d = w.commit(None).inspect_err(|_| self.unpin(&dg))?;
        Ok(Descriptor {
            media_type: OCI_LAYER_GZIP.to_string(),
            digest: d,
            size,
            ..Descriptor::default()
        })
    }
}

/// Unpins its digests when dropped.
struct Unpin<'a>(&'a Store, Vec<String>);

impl Drop for Unpin<'_> {
    fn drop(&mut self) {
        for d in &self.1 {
            self.0.unpin(d);
        }
    }
}
