//! What the builder keeps in the store: the state after each build step (a config blob and
//! the layers it names, which is everything an image is except its manifest and tags), and
//! the build cache that maps a step's key to the state it produced.
//!
//! Intermediate states are not images: they never show in `docker images`, and only the
//! final one is registered (with its manifest and tags) when a build succeeds. The cache
//! records are roots for garbage collection, so removing an image keeps the layers a later
//! build may reuse; `/build/prune` drops them.
//!
//! `build-cache.json` is one file replaced atomically under the store's lock, like the db.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::blobs::write_atomic;
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::snapshot::{chain_ids, hex_of};
use crate::store::{parse_tag_ref, Image, Store};
use crate::timefmt::now_rfc3339;

const CACHE_FILE: &str = "build-cache.json";
/// Records kept at most; past it the oldest tenth goes (and the layers only they kept).
const MAX_RECORDS: usize = 4096;

/// A filesystem and config state of a build: what an image is, less its manifest and tags.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildState {
    /// The digest of the config blob: the id of the image this state would be.
    pub config: String,
    /// The layers as a manifest describes them (OCI descriptors), bottom first.
    pub layers: Vec<Value>,
    /// The unpacked size of each layer, bottom first.
    pub sizes: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CacheRecord {
    state: BuildState,
    /// RFC 3339 time of the step that made it.
    created: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    #[serde(default)]
    entries: BTreeMap<String, CacheRecord>,
}

/// A read-only copy of the build cache, taken once per build so that lookups cost no I/O.
#[derive(Clone, Debug, Default)]
pub struct BuildCache {
    entries: BTreeMap<String, BuildState>,
}

impl BuildCache {
    /// The state a step with this key produced before, if any.
    pub fn get(&self, key: &str) -> Option<&BuildState> {
        self.entries.get(key)
    }

    /// How many steps are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What `/build/prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    /// The keys of the removed records.
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

impl Store {
    fn cache_path(&self) -> PathBuf {
        self.root().join(CACHE_FILE)
    }

    fn load_cache(&self) -> Result<CacheFile> {
        load_cache_file(&self.cache_path())
    }

    /// The build cache as it is now.
    pub fn build_cache(&self) -> Result<BuildCache> {
        let file = self.load_cache()?;
        Ok(BuildCache {
            entries: file
                .entries
                .into_iter()
                .map(|(k, r)| (k, r.state))
                .collect(),
        })
    }

    /// The build cache a build with `--cache-from` may use, as dockerd's classic builder
    /// limits it: only the steps whose layers lie on one of those images' layer chains (a
    /// prefix of its layers). A reference that names no local image adds nothing, as dockerd
    /// skips it; with none found, nothing of the local cache is used.
    pub fn build_cache_from(&self, sources: &[String]) -> Result<BuildCache> {
        let chains: Vec<Vec<String>> = sources
            .iter()
            .filter_map(|r| self.get(r).ok())
            .filter_map(|i| self.layer_blobs(&i.id).ok())
            .collect();
        let mut cache = self.build_cache()?;
        cache.entries.retain(|_, state| {
            let layers: Vec<&str> = state
                .layers
                .iter()
                .map(|l| l["digest"].as_str().unwrap_or_default())
                .collect();
            chains.iter().any(|chain| {
                layers.len() <= chain.len() && layers.iter().zip(chain).all(|(a, b)| *a == b)
            })
        });
        Ok(cache)
    }

    /// The state of an image (the starting point of a `FROM`).
    pub fn state_of(&self, image: &Image) -> Result<BuildState> {
        let db = self.load_db()?;
        let rec = db
            .images
            .get(&image.id)
            .ok_or_else(|| Error::NotFound(image.id.clone()))?;
        let manifest: Value = serde_json::from_slice(&self.blobs.read(&rec.manifest)?)
            .map_err(Error::json(format!("manifest {}", rec.manifest)))?;
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        if layers.len() != image.layers.len() {
            return Err(Error::BadArchive(format!(
                "image {}: its manifest names {} layers, its config {}",
                image.id,
                layers.len(),
                image.layers.len()
            )));
        }
        Ok(BuildState {
            config: image.id.clone(),
            layers,
            sizes: rec.layer_sizes.clone(),
        })
    }

    /// The snapshot directories of a state's layers (bottom first), unpacked again from the
    /// layers' blobs where missing.
    pub fn state_dirs(&self, state: &BuildState, diff_ids: &[String]) -> Result<Vec<PathBuf>> {
        let blobs: Vec<String> = state
            .layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap_or_default().to_string())
            .collect();
        self.snapshot_dirs(diff_ids, &blobs)
    }

    /// The config of a state.
    pub fn state_config(&self, state: &BuildState) -> Result<ImageConfig> {
        self.config_of(&state.config)
    }

    /// Records one build step: the overlay upper dir `upper` (if the step changed files)
    /// becomes a layer on top of `parent`'s, `config` (whose `rootfs.diff_ids` are the
    /// parent's) gets that layer appended, and the new state is cached under `key`. All of it
    /// under the store's lock, so that no garbage collection runs between the layer's write
    /// and the record that keeps it.
    pub fn commit_step(
        &self,
        key: &str,
        parent: &BuildState,
        upper: Option<&Path>,
        mut config: ImageConfig,
    ) -> Result<BuildState> {
        let _g = self.lock();
        let mut layers = parent.layers.clone();
        let mut sizes = parent.sizes.clone();
        if let Some(upper) = upper {
            let layer = self.layer_from_upper(&config.rootfs.diff_ids, upper)?;
            layers.push(self.layer_descriptor(&layer.diff_id)?);
            sizes.push(layer.unpacked);
            config.rootfs.diff_ids.push(layer.diff_id);
        }
        let bytes = serde_json::to_vec(&config).map_err(Error::json("image config"))?;
        let id = self.blobs.put(&bytes)?;
        let state = BuildState {
            config: id,
            layers,
            sizes,
        };
        let mut file = self.load_cache()?;
        file.entries.insert(
            key.to_string(),
            CacheRecord {
                state: state.clone(),
                created: now_rfc3339(),
            },
        );
        let evict = file.entries.len() > MAX_RECORDS;
        if evict {
            let mut by_age: Vec<(String, String)> = file
                .entries
                .iter()
                .map(|(k, r)| (r.created.clone(), k.clone()))
                .collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(MAX_RECORDS / 10) {
                file.entries.remove(&k);
            }
        }
        write_atomic(&self.cache_path(), &cache_bytes(&file)?)?;
        if evict {
            let db = self.load_db()?;
            self.gc_locked(&db)?;
        }
        Ok(state)
    }

    /// Makes the final state of a build an image tagged `tags`. Nothing is written when the
    /// image exists and every tag already names it (a fully cached build).
    pub fn register_built(&self, state: &BuildState, tags: &[String]) -> Result<Image> {
        let refs: Vec<Reference> = tags
            .iter()
            .map(|t| parse_tag_ref(t))
            .collect::<Result<_>>()?;
        let _g = self.lock();
        let mut db = self.load_db()?;
        let known = db.images.contains_key(&state.config);
        let tagged = refs
            .iter()
            .all(|r| db.refs.get(&r.to_string()) == Some(&state.config));
        if !(known && tagged) {
            if known {
                for r in refs {
                    db.refs.insert(r.to_string(), state.config.clone());
                }
            } else {
                let len = self.blobs.size(&state.config)? as usize;
                self.register_manifest(
                    &mut db,
                    &state.config,
                    len,
                    state.layers.clone(),
                    state.sizes.clone(),
                    refs,
                )?;
            }
            self.save_db(&db)?;
        }
        self.image_from(&db, &state.config)
    }

    /// `/build/prune`: drops every cache record, then collects what nothing references any
    /// more (layers that images use stay).
    pub fn prune_build_cache(&self) -> Result<CachePruneReport> {
        let _g = self.lock();
        let file = self.load_cache()?;
        let deleted: Vec<String> = file.entries.keys().cloned().collect();
        write_atomic(&self.cache_path(), &cache_bytes(&CacheFile::default())?)?;
        let db = self.load_db()?;
        let space_reclaimed = self.gc_locked(&db)?;
        Ok(CachePruneReport {
            deleted,
            space_reclaimed,
        })
    }

    /// Adds what the build cache keeps alive to the sets of blobs and snapshots (hex names)
    /// that garbage collection must leave.
    pub(crate) fn cache_roots(&self, blobs: &mut HashSet<String>, snaps: &mut HashSet<String>) {
        let Ok(file) = self.load_cache() else {
            return;
        };
        for rec in file.entries.values() {
            blobs.insert(hex_of(&rec.state.config).to_string());
            for l in &rec.state.layers {
                if let Some(d) = l["digest"].as_str() {
                    blobs.insert(hex_of(d).to_string());
                }
            }
            if let Ok(cfg) = self.config_of(&rec.state.config) {
                for c in chain_ids(&cfg.rootfs.diff_ids) {
                    snaps.insert(hex_of(&c).to_string());
                }
            }
        }
    }
}

fn load_cache_file(path: &Path) -> Result<CacheFile> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(Error::json(path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CacheFile::default()),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

fn cache_bytes(file: &CacheFile) -> Result<Vec<u8>> {
    serde_json::to_vec(file).map_err(Error::json("build cache"))
}
