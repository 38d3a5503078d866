//! The image metadata db: which images exist (config digest → manifest digest and unpacked
//! layer sizes) and which references point at them. One JSON file, replaced atomically, so a
//! crash at any instant leaves either the old or the new state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::blobs::write_atomic;
use crate::error::{Error, Result};

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub(crate) struct Db {
    /// Image id ("sha256:<config digest>") → record.
    #[serde(default)]
    pub(crate) images: BTreeMap<String, ImageRecord>,
    /// Full normalised reference (with tag or digest) → image id.
    #[serde(default)]
    pub(crate) refs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub(crate) struct ImageRecord {
    pub(crate) manifest: String,
    /// Unpacked size of each layer, bottom first (parallel to the config's diff_ids).
    pub(crate) layer_sizes: Vec<u64>,
    /// The image this one was committed from (dockerd's `Parent`): local history, not part
    /// of the image's content, so it is kept here rather than in the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<String>,
}

pub(crate) fn db_path(root: &Path) -> PathBuf {
    root.join("image-db.json")
}

impl Db {
    pub(crate) fn load(path: &Path) -> Result<Db> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(Error::json(path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Db::default()),
            Err(e) => Err(Error::io("read", path)(e)),
        }
    }

    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let data = serde_json::to_vec_pretty(self).map_err(Error::json("image db"))?;
        write_atomic(path, &data)
    }

    pub(crate) fn refs_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.refs
            .iter()
            .filter(move |(_, v)| *v == id)
            .map(|(k, _)| k)
    }
}
