//! The image store: the public face of this crate. Every operation that changes state holds
//! one in-process mutex, writes blobs before the db, and replaces the db atomically.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{Read, Seek};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::json;

use crate::apply::apply_layer;
use crate::blobs::{decompress, digest_of, sync_dir, Blobs, Tee, TMP_PREFIX};
use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::db::{db_path, Db, ImageRecord};
use crate::error::{Error, Result};
use crate::reference::{is_hex64, Reference};
use crate::snapshot::{chain_ids, hex_of, OverlayMount};
use crate::timefmt::{now_rfc3339, parse_rfc3339};

pub(crate) const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// An image as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// `sha256:<hex>`, the digest of the config blob.
    pub id: String,
    /// Familiar form, e.g. `busybox:latest`.
    pub repo_tags: Vec<String>,
    /// `busybox@sha256:<manifest digest>` where known.
    pub repo_digests: Vec<String>,
    pub config: ImageConfig,
    /// Sum of the unpacked sizes of the layers.
    pub size: u64,
    pub created: Option<String>,
    /// diff_ids, bottom first.
    pub layers: Vec<String>,
    /// The image this one was committed from, while that image is still here.
    pub parent: Option<String>,
}

/// One item of an image delete response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub untagged: Option<String>,
    pub deleted: Option<String>,
}

/// One image of a `docker load`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: String,
    /// Familiar form.
    pub tags: Vec<String>,
}

/// Options of `docker import`.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Repository[:tag] to tag the new image with.
    pub reference: Option<String>,
    /// The container config, as `--change` lines produce it.
    pub config: Option<ContainerConfig>,
    /// `--message`: the history comment.
    pub message: Option<String>,
    /// `--platform`: `os/arch[/variant]`.
    pub platform: Option<String>,
}

/// One line of `docker history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id for the top entry, `<missing>` below it.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

/// One line of `docker diff`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute path inside the container, e.g. `/etc/passwd`.
    pub path: String,
}

/// Image part of `/system/df`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Unpacked size of all distinct layers.
    pub layers_size: u64,
    /// (image id, size, shared size): shared is the part in layers other images also use.
    pub images: Vec<(String, u64, u64)>,
}

/// What `docker image prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: Vec<Deleted>,
    pub space_reclaimed: u64,
}

/// The image store rooted at e.g. `/var/lib/berth`.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    pub(crate) blobs: Blobs,
    snapshots: PathBuf,
    tmp: PathBuf,
    db_path: PathBuf,
    lock: Mutex<()>,
    /// Blob digests and chain ids a pull in flight has written but not yet registered:
    /// gc leaves them alone. A count, since two pulls may share a layer.
    pins: Mutex<HashMap<String, usize>>,
}

/// A layer that has been stored and unpacked.
pub(crate) struct LayerInfo {
    pub(crate) diff_id: String,
    pub(crate) unpacked: u64,
}

impl Store {
    /// Opens (creating) the store under `root`; leftovers of an interrupted write are removed.
    pub fn open(root: &Path) -> Result<Store> {
        let blobs = Blobs::open(root.join("blobs").join("sha256"))?;
        let snapshots = root.join("snapshots");
        let tmp = root.join("tmp");
        for d in [&snapshots, &tmp] {
            crate::private::create_dir(d).map_err(Error::io("create", d))?;
        }
        let store = Store {
            root: root.to_path_buf(),
            blobs,
            snapshots,
            tmp,
            db_path: db_path(root),
            lock: Mutex::new(()),
            pins: Mutex::new(HashMap::new()),
        };
        store.remove_leftovers();
        Ok(store)
    }

    fn remove_leftovers(&self) {
        // The db's and the build cache's writes in flight when a daemon was killed.
        for e in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = remove_any(&e.path());
            }
        }
        for dir in [self.blobs.dir(), &self.snapshots, &self.tmp] {
            let Ok(rd) = fs::read_dir(dir) else { continue };
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if dir == self.tmp.as_path() || name.starts_with(TMP_PREFIX) {
                    let _ = remove_any(&e.path());
                }
            }
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        // A panic in another thread leaves no partial on-disk state (every write is atomic),
        // so a poisoned lock is still good to use.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn load_db(&self) -> Result<Db> {
        Db::load(&self.db_path)
    }

    pub(crate) fn save_db(&self, db: &Db) -> Result<()> {
        db.save(&self.db_path)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>> {
        let db = self.load_db()?;
        let mut out = db
            .images
            .keys()
            .map(|id| self.image_from(&db, id))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// An image by reference, full id, bare hex id or unique id prefix.
    pub fn get(&self, name: &str) -> Result<Image> {
        let db = self.load_db()?;
        let id = resolve(&db, name)?;
        self.image_from(&db, &id)
    }

    /// Tags the image `name` as `target` (moving the tag if it pointed elsewhere).
    pub fn tag(&self, name: &str, target: &str) -> Result<()> {
        let _g = self.lock();
        let mut db = self.load_db()?;
        let id = resolve(&db, name)?;
        let r = Reference::parse(target)?;
        if r.digest().is_some() {
            return Err(Error::InvalidReference {
                input: target.to_string(),
                reason: "refusing to create a tag with a digest reference",
            });
        }
        db.refs.insert(r.to_string(), id);
        self.save_db(&db)
    }

    /// `docker rmi`: untag by reference, delete by id (force needed when the image is in
    /// several repositories); the image goes when its last reference goes.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Deleted>> {
        let _g = self.lock();
        let mut db = self.load_db()?;
        let (id, by_ref) = resolve_with_kind(&db, name)?;
        let mut out = Vec::new();
        if let Some(r) = by_ref {
            db.refs.remove(&r.to_string());
            out.push(Deleted {
                untagged: Some(r.familiar()),
                deleted: None,
            });
            // As Docker: once the last tag goes, the repo digests go with it.
            let rest: Vec<String> = db.refs_of(&id).cloned().collect();
            let tags_left = rest
                .iter()
                .any(|x| Reference::parse(x).is_ok_and(|x| x.digest().is_none()));
            if !tags_left {
                for d in rest {
                    db.refs.remove(&d);
                    let fam = Reference::parse(&d).map(|x| x.familiar()).unwrap_or(d);
                    out.push(Deleted {
                        untagged: Some(fam),
                        deleted: None,
                    });
                }
            }
            if db.refs_of(&id).next().is_none() {
                db.images.remove(&id);
                out.push(Deleted {
                    untagged: None,
                    deleted: Some(id.clone()),
                });
            }
        } else {
            let refs: Vec<String> = db.refs_of(&id).cloned().collect();
            let repos: HashSet<String> = refs
                .iter()
                .filter_map(|r| Reference::parse(r).ok())
                .map(|r| r.repository())
                .collect();
            if repos.len() > 1 && !force {
                return Err(Error::Conflict {
                    short_id: short_id(&id),
                    reason: "image is referenced in multiple repositories".to_string(),
                });
            }
            for r in refs {
                db.refs.remove(&r);
                let fam = Reference::parse(&r).map(|r| r.familiar()).unwrap_or(r);
                out.push(Deleted {
                    untagged: Some(fam),
                    deleted: None,
                });
            }
            db.images.remove(&id);
            out.push(Deleted {
                untagged: None,
                deleted: Some(id.clone()),
            });
        }
        self.save_db(&db)?;
        if out.iter().any(|d| d.deleted.is_some()) {
            self.gc_locked(&db)?;
        }
        Ok(out)
    }

    /// `docker import`: a rootfs tar (plain, gzip or zstd) becomes a one-layer image.
    pub fn import(&self, tar: &mut dyn Read, opts: &ImportOptions) -> Result<Image> {
        let reference = opts.reference.as_deref().map(parse_tag_ref).transpose()?;
        let (os, arch, variant) = platform(opts.platform.as_deref())?;
        let _g = self.lock();
        let layer = self.ingest_layer(tar, None, None, "import", true)?;
        let now = now_rfc3339();
        let mut config = ImageConfig {
            architecture: arch,
            os,
            created: Some(now.clone()),
            config: opts.config.clone().unwrap_or_default(),
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                comment: Some(
                    opts.message
                        .clone()
                        .unwrap_or_else(|| "Imported from -".to_string()),
                ),
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        if let Some(v) = variant {
            config.extra.insert("variant".to_string(), json!(v));
        }
        // As dockerd writes it: the image's comment (inspect's `Comment`) is the history's.
        let comment = config.history[0].comment.clone();
        config.extra.insert("comment".to_string(), json!(comment));
        let bytes = serde_json::to_vec(&config).map_err(Error::json("image config"))?;
        let mut db = self.load_db()?;
        let id = self.register(
            &mut db,
            &bytes,
            &[layer],
            reference.iter().cloned().collect(),
        )?;
        self.save_db(&db)?;
        self.image_from(&db, &id)
    }

    /// `docker history`: newest first; the top entry carries the image's id and tags.
    pub fn history(&self, image: &Image) -> Vec<HistoryEntry> {
        let sizes = self
            .load_db()
            .ok()
            .and_then(|db| db.images.get(&image.id).map(|r| r.layer_sizes.clone()))
            .unwrap_or_default();
        let mut hist = image.config.history.clone();
        if hist.is_empty() {
            hist = image
                .layers
                .iter()
                .map(|_| History {
                    created: image.created.clone(),
                    ..History::default()
                })
                .collect();
        }
        let mut layer = 0usize;
        let mut entries: Vec<HistoryEntry> = hist
            .iter()
            .map(|h| {
                let size = if h.empty_layer {
                    0
                } else {
                    let s = sizes.get(layer).copied().unwrap_or(0);
                    layer += 1;
                    s
                };
                HistoryEntry {
                    id: "<missing>".to_string(),
                    created: h.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                }
            })
            .collect();
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top.id = image.id.clone();
            top.tags = image.repo_tags.clone();
        }
        entries
    }

    /// The overlay mount of a container's rootfs: the image's snapshots (unpacked again from
    /// their blobs if missing) as lowers, `container_dir/upper` and `container_dir/work`.
    pub fn rootfs(&self, image: &Image, container_dir: &Path) -> Result<OverlayMount> {
        let blobs = self.layer_blobs(&image.id)?;
        let mut lowers = self.snapshot_dirs(&image.layers, &blobs)?;
        lowers.reverse();
        if lowers.is_empty() {
            // overlayfs needs at least one lower; an image without layers gets an empty one.
            let empty = self.snapshots.join("empty");
            crate::private::create_dir(&empty).map_err(Error::io("create", &empty))?;
            lowers.push(empty);
        }
        let upper = container_dir.join("upper");
        let work = container_dir.join("work");
        // The work dir first: it makes a missing container directory (0700).
        crate::private::create_dir(&work).map_err(Error::io("create", &work))?;
        create_upper(&upper)?;
        Ok(OverlayMount {
            lowers,
            upper,
            work,
            volatile: false,
        })
    }

    /// Where the snapshot of each of the image's layers lives, bottom first (what inspect's
    /// `GraphDriver` shows; nothing is unpacked).
    pub fn layer_dirs(&self, image: &Image) -> Vec<PathBuf> {
        chain_ids(&image.layers)
            .iter()
            .map(|c| self.snapshot_dir(c))
            .collect()
    }

    /// The snapshot directory of each layer of a stack (diff_ids, bottom first), unpacked
    /// again where missing from its blob (`blobs[i]`, compressed or not: the manifest's
    /// digest of that layer); bottom first.
    pub fn snapshot_dirs(&self, diff_ids: &[String], blobs: &[String]) -> Result<Vec<PathBuf>> {
        let chains = chain_ids(diff_ids);
        let missing = chains.iter().any(|c| !self.snapshot_dir(c).is_dir());
        if missing {
            let _g = self.lock();
            let mut parent: Option<&str> = None;
            for (i, c) in chains.iter().enumerate() {
                if !self.snapshot_dir(c).is_dir() {
                    let diff = &diff_ids[i];
                    let src = blobs.get(i).unwrap_or(diff);
                    let mut blob = self.blobs.open_blob(src)?;
                    self.ingest_layer(&mut blob, parent, Some(diff), diff, src == diff)?;
                }
                parent = Some(c);
            }
        }
        Ok(chains.iter().map(|c| self.snapshot_dir(c)).collect())
    }

    /// `docker diff` of a container's overlay upper dir against the image.
    pub fn changes(&self, image: &Image, upper: &Path) -> Result<Vec<Change>> {
        let lowers: Vec<PathBuf> = chain_ids(&image.layers)
            .iter()
            .rev()
            .map(|c| self.snapshot_dir(c))
            .collect();
        crate::diff::changes(&lowers, upper)
    }

    /// `docker commit`: the upper dir becomes a new layer on top of `image`'s.
    pub fn commit(
        &self,
        image: Option<&Image>,
        upper: &Path,
        mut config: ImageConfig,
        reference: Option<&str>,
    ) -> Result<Image> {
        let reference = reference.map(parse_tag_ref).transpose()?;
        let _g = self.lock();
        let parent_layers = image.map(|i| i.layers.clone()).unwrap_or_default();
        // As dockerd: a container that changed no file adds no layer, only a history entry
        // marked `empty_layer`.
        let layer = if !crate::diff::has_changes(upper)? {
            None
        } else {
            Some(self.layer_from_upper(&parent_layers, upper)?)
        };

        let now = now_rfc3339();
        if config.created.is_none() {
            config.created = Some(now.clone());
        }
        if config.os.is_empty() {
            config.os = "linux".to_string();
        }
        if config.architecture.is_empty() {
            config.architecture = go_arch().to_string();
        }
        let with_layer = config.history.iter().filter(|h| !h.empty_layer).count();
        if config.history.is_empty() {
            if let Some(p) = image {
                config.history = p.config.history.clone();
            }
        }
        if with_layer <= parent_layers.len() {
            config.history.push(History {
                created: config.created.clone(),
                author: config.author.clone(),
                empty_layer: layer.is_none(),
                ..History::default()
            });
        }
        let mut diff_ids = parent_layers.clone();
        diff_ids.extend(layer.iter().map(|l| l.diff_id.clone()));
        config.rootfs = RootFs {
            kind: "layers".to_string(),
            diff_ids,
        };
        let bytes = serde_json::to_vec(&config).map_err(Error::json("image config"))?;
        let mut db = self.load_db()?;
        let mut sizes = image
            .and_then(|i| db.images.get(&i.id))
            .map(|r| r.layer_sizes.clone())
            .unwrap_or_default();
        sizes.resize(parent_layers.len(), 0);
        sizes.extend(layer.iter().map(|l| l.unpacked));
        // The parent's layers as its manifest names them: a pulled image's are compressed
        // blobs, not blobs named by their diff_ids.
        let mut descs: Vec<serde_json::Value> = match image {
            Some(p) => {
                let (digest, m) = self.manifest_of(&p.id)?;
                let m: serde_json::Value = serde_json::from_slice(&m)
                    .map_err(Error::json(format!("manifest {digest}")))?;
                m["layers"].as_array().cloned().unwrap_or_default()
            }
            None => Vec::new(),
        };
        if let Some(l) = &layer {
            descs.push(self.layer_descriptor(&l.diff_id)?);
        }
        let id = self.blobs.put(&bytes)?;
        self.register_manifest(
            &mut db,
            &id,
            bytes.len(),
            descs,
            sizes,
            reference.into_iter().collect(),
        )?;
        if let (Some(p), Some(rec)) = (image, db.images.get_mut(&id)) {
            rec.parent = Some(p.id.clone());
        }
        self.save_db(&db)?;
        self.image_from(&db, &id)
    }

    /// Stores an overlay upper dir as a layer on top of `parent_layers` (diff_ids, bottom
    /// first): its tar becomes a blob and is unpacked into the snapshot of the new chain.
    /// The caller holds the store's lock.
    pub(crate) fn layer_from_upper(
        &self,
        parent_layers: &[String],
        upper: &Path,
    ) -> Result<LayerInfo> {
        let tmp = self.tmp_path("commit");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::io("create", &tmp))?;
        let _cleanup = RemoveOnDrop(tmp.clone());
        crate::diff::tar_upper(upper, &mut file)?;
        file.rewind().map_err(Error::io("rewind", &tmp))?;
        let parent_chain = chain_ids(parent_layers).pop();
        self.ingest_layer(&mut file, parent_chain.as_deref(), None, "commit", true)
    }

    /// `docker image prune`: dangling images, or with `all` every image not in use.
    pub fn prune(&self, all: bool, in_use: &dyn Fn(&str) -> bool) -> Result<PruneReport> {
        let _g = self.lock();
        let mut db = self.load_db()?;
        let ids: Vec<String> = db.images.keys().cloned().collect();
        let mut report = PruneReport::default();
        for id in ids {
            let refs: Vec<String> = db.refs_of(&id).cloned().collect();
            let dangling = refs.is_empty();
            if in_use(&id) || !(dangling || all) {
                continue;
            }
            for r in refs {
                db.refs.remove(&r);
                let fam = Reference::parse(&r).map(|r| r.familiar()).unwrap_or(r);
                report.deleted.push(Deleted {
                    untagged: Some(fam),
                    deleted: None,
                });
            }
            db.images.remove(&id);
            report.deleted.push(Deleted {
                untagged: None,
                deleted: Some(id),
            });
        }
        self.save_db(&db)?;
        report.space_reclaimed = self.gc_locked(&db)?;
        Ok(report)
    }

    /// Removes blobs and snapshots no image references; returns the bytes freed.
    pub fn gc(&self) -> Result<u64> {
        let _g = self.lock();
        let db = self.load_db()?;
        self.gc_locked(&db)
    }

    pub(crate) fn gc_locked(&self, db: &Db) -> Result<u64> {
        let mut blobs: HashSet<String> = HashSet::new();
        let mut snaps: HashSet<String> = HashSet::new();
        for (id, rec) in &db.images {
            blobs.insert(hex_of(id).to_string());
            blobs.insert(hex_of(&rec.manifest).to_string());
            for b in self.layer_blobs(id).unwrap_or_default() {
                blobs.insert(hex_of(&b).to_string());
            }
            if let Ok(cfg) = self.config_of(id) {
                for d in &cfg.rootfs.diff_ids {
                    blobs.insert(hex_of(d).to_string());
                }
                for c in chain_ids(&cfg.rootfs.diff_ids) {
                    snaps.insert(hex_of(&c).to_string());
                }
            }
        }
        snaps.insert("empty".to_string());
        for p in self.pins.lock().unwrap_or_else(|e| e.into_inner()).keys() {
            blobs.insert(hex_of(p).to_string());
            snaps.insert(hex_of(p).to_string());
        }
        self.cache_roots(&mut blobs, &mut snaps);
        let mut freed = 0;
        for (dir, keep) in [
            (self.blobs.dir(), &blobs),
            (self.snapshots.as_path(), &snaps),
        ] {
            let rd = fs::read_dir(dir).map_err(Error::io("read dir", dir))?;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // A temp file is a write in flight (another thread's); open() cleans
                // up those a crash left.
                if keep.contains(&name) || name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let p = e.path();
                freed += du(&p);
                remove_any(&p).map_err(Error::io("remove", &p))?;
            }
        }
        Ok(freed)
    }

    /// Sizes for `/system/df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let db = self.load_db()?;
        let mut use_count: BTreeMap<String, (u64, usize)> = BTreeMap::new();
        let mut per_image = Vec::new();
        for (id, rec) in &db.images {
            let cfg = self.config_of(id)?;
            let chains = chain_ids(&cfg.rootfs.diff_ids);
            for (i, c) in chains.iter().enumerate() {
                let e = use_count.entry(c.clone()).or_insert((0, 0));
                e.0 = rec.layer_sizes.get(i).copied().unwrap_or(0);
                e.1 += 1;
            }
            per_image.push((id.clone(), chains, rec.layer_sizes.iter().sum::<u64>()));
        }
        let images = per_image
            .into_iter()
            .map(|(id, chains, size)| {
                let shared = chains
                    .iter()
                    .filter_map(|c| use_count.get(c))
                    .filter(|(_, n)| *n > 1)
                    .map(|(s, _)| *s)
                    .sum();
                (id, size, shared)
            })
            .collect();
        Ok(DiskUsage {
            layers_size: use_count.values().map(|(s, _)| *s).sum(),
            images,
        })
    }

    // ---- helpers shared with load/save/pull/push ----

    pub(crate) fn pin(&self, name: &str) {
        let mut p = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        *p.entry(name.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn unpin(&self, name: &str) {
        let mut p = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = p.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                p.remove(name);
            }
        }
    }

    /// The image's manifest: its digest and bytes.
    pub(crate) fn manifest_of(&self, id: &str) -> Result<(String, Vec<u8>)> {
        let db = self.load_db()?;
        let rec = db
            .images
            .get(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        Ok((rec.manifest.clone(), self.blobs.read(&rec.manifest)?))
    }

    /// The blob of each layer, bottom first, as the image's manifest names them: the
    /// diff_ids for an image made here, the compressed blobs for a pulled one.
    pub(crate) fn layer_blobs(&self, id: &str) -> Result<Vec<String>> {
        let (digest, bytes) = self.manifest_of(id)?;
        let m: crate::manifest::Manifest =
            serde_json::from_slice(&bytes).map_err(Error::json(format!("manifest {digest}")))?;
        Ok(m.layers.into_iter().map(|l| l.digest).collect())
    }

    /// The unpacked size of the snapshot `chain`, as recorded by an image that has it.
    pub(crate) fn layer_size(&self, chain: &str) -> Option<u64> {
        let db = self.load_db().ok()?;
        db.images.iter().find_map(|(id, rec)| {
            let cfg = self.config_of(id).ok()?;
            let i = chain_ids(&cfg.rootfs.diff_ids)
                .iter()
                .position(|c| c == chain)?;
            rec.layer_sizes.get(i).copied()
        })
    }

    pub(crate) fn snapshot_dir(&self, chain: &str) -> PathBuf {
        self.snapshots.join(hex_of(chain))
    }

    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        self.tmp.join(format!(
            "{what}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ))
    }

    pub(crate) fn config_of(&self, id: &str) -> Result<ImageConfig> {
        let bytes = self.blobs.read(id)?;
        serde_json::from_slice(&bytes).map_err(Error::json(format!("config {id}")))
    }

    pub(crate) fn image_from(&self, db: &Db, id: &str) -> Result<Image> {
        let rec = db
            .images
            .get(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let config = self.config_of(id)?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for r in db.refs_of(id).filter_map(|r| Reference::parse(r).ok()) {
            if r.digest().is_some() {
                repo_digests.push(r.familiar());
            } else {
                repo_tags.push(r.familiar());
            }
        }
        Ok(Image {
            id: id.to_string(),
            repo_tags,
            repo_digests,
            size: rec.layer_sizes.iter().sum(),
            created: config.created.clone(),
            layers: config.rootfs.diff_ids.clone(),
            parent: rec.parent.clone().filter(|p| db.images.contains_key(p)),
            config,
        })
    }

    /// Stores the (maybe compressed) layer tar read from `r` as an uncompressed blob and
    /// unpacks it into the snapshot of its chain. The unpack goes to a temp dir renamed into
    /// place, so a snapshot dir that exists is always complete.
    pub(crate) fn ingest_layer(
        &self,
        r: &mut dyn Read,
        parent_chain: Option<&str>,
        expected_diff: Option<&str>,
        label: &str,
        keep_blob: bool,
    ) -> Result<LayerInfo> {
        let bad = |source| Error::BadLayer {
            layer: label.to_string(),
            source,
        };
        let mut plain = decompress(r).map_err(bad)?;
        let mut blob = self.blobs.writer()?;
        let tmp = self.snapshot_tmp();
        crate::private::create_new_dir(&tmp).map_err(Error::io("create", &tmp))?;
        let _cleanup = RemoveOnDrop(tmp.clone());
        let unpacked = {
            let mut tee = Tee {
                inner: &mut plain,
                out: &mut blob,
            };
            apply_layer(&mut tee, &tmp, label)?
        };
        let diff_id = blob.digest();
        if let Some(e) = expected_diff {
            if e != diff_id {
                return Err(Error::DigestMismatch {
                    what: format!("layer {label}"),
                    expected: e.to_string(),
                    actual: diff_id,
                });
            }
        }
        if !keep_blob || self.blobs.exists(&diff_id) {
            drop(blob);
        } else {
            blob.commit(Some(&diff_id))?;
        }
        let chain = match parent_chain {
            None => diff_id.clone(),
            Some(p) => chain_ids(&[p.to_string(), diff_id.clone()])
                .pop()
                .unwrap_or_default(),
        };
        let dst = self.snapshot_dir(&chain);
        if !dst.is_dir() {
            fs::rename(&tmp, &dst).map_err(Error::io("rename snapshot to", &dst))?;
            sync_dir(&self.snapshots)?;
        }
        Ok(LayerInfo { diff_id, unpacked })
    }

    /// Writes config and manifest blobs and records the image and its references in `db`.
    pub(crate) fn register(
        &self,
        db: &mut Db,
        config: &[u8],
        layers: &[LayerInfo],
        refs: Vec<Reference>,
    ) -> Result<String> {
        let id = self.blobs.put(config)?;
        let mut layer_descs = Vec::new();
        for l in layers {
            layer_descs.push(self.layer_descriptor(&l.diff_id)?);
        }
        let sizes = layers.iter().map(|l| l.unpacked).collect();
        self.register_manifest(db, &id, config.len(), layer_descs, sizes, refs)?;
        Ok(id)
    }

    /// The manifest descriptor of a layer stored here uncompressed (digest = diff_id).
    pub(crate) fn layer_descriptor(&self, diff_id: &str) -> Result<serde_json::Value> {
        Ok(json!({
            "mediaType": MEDIA_OCI_LAYER,
            "digest": diff_id,
            "size": self.blobs.size(diff_id)?,
        }))
    }

    /// Writes the manifest of the config blob `id` with these layer descriptors, and records
    /// the image and its references in `db`.
    pub(crate) fn register_manifest(
        &self,
        db: &mut Db,
        id: &str,
        config_len: usize,
        layer_descs: Vec<serde_json::Value>,
        layer_sizes: Vec<u64>,
        refs: Vec<Reference>,
    ) -> Result<()> {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": id, "size": config_len},
            "layers": layer_descs,
        });
        let manifest = serde_json::to_vec(&manifest).map_err(Error::json("manifest"))?;
        let manifest_digest = self.blobs.put(&manifest)?;
        debug_assert_eq!(manifest_digest, digest_of(&manifest));
        db.images.insert(
            id.to_string(),
            ImageRecord {
                manifest: manifest_digest,
                layer_sizes,
                parent: db.images.get(id).and_then(|r| r.parent.clone()),
            },
        );
        for r in refs {
            db.refs.insert(r.to_string(), id.to_string());
        }
        Ok(())
    }
}

/// Finds the image id `name` means: a reference first (as Docker), then a full or bare id,
/// then a unique id prefix.
pub(crate) fn resolve(db: &Db, name: &str) -> Result<String> {
    resolve_with_kind(db, name).map(|(id, _)| id)
}

/// Like [`resolve`], and says which reference matched when a reference did.
pub(crate) fn resolve_with_kind(db: &Db, name: &str) -> Result<(String, Option<Reference>)> {
    let hexpart = name.strip_prefix("sha256:").unwrap_or(name);
    if is_hex64(hexpart) {
        let id = format!("sha256:{hexpart}");
        if db.images.contains_key(&id) {
            return Ok((id, None));
        }
        return Err(Error::NotFound(name.to_string()));
    }
    let parsed = if name.starts_with("sha256:") {
        None
    } else {
        Reference::parse(name).ok()
    };
    if let Some(r) = &parsed {
        if let Some(id) = db.refs.get(&r.to_string()) {
            return Ok((id.clone(), Some(r.clone())));
        }
        if let Some(d) = r.digest() {
            // A digest of a manifest we hold, asked for under any repository name.
            if let Some((id, _)) = db.images.iter().find(|(_, rec)| rec.manifest == d) {
                return Ok((id.clone(), None));
            }
        }
    }
    if !hexpart.is_empty() && hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hits = db
            .images
            .keys()
            .filter(|id| hex_of(id).starts_with(hexpart));
        if let Some(first) = hits.next() {
            if hits.next().is_some() {
                return Err(Error::Ambiguous(name.to_string()));
            }
            return Ok((first.clone(), None));
        }
    }
    Err(Error::NotFound(
        parsed
            .map(|r| r.familiar())
            .unwrap_or_else(|| name.to_string()),
    ))
}

pub(crate) fn parse_tag_ref(s: &str) -> Result<Reference> {
    let r = Reference::parse(s)?;
    if r.digest().is_some() {
        return Err(Error::InvalidReference {
            input: s.to_string(),
            reason: "a tag cannot be a digest reference",
        });
    }
    Ok(r)
}

pub(crate) fn short_id(id: &str) -> String {
    hex_of(id).chars().take(12).collect()
}

/// The Go name of this machine's architecture, as image configs spell it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn platform(p: Option<&str>) -> Result<(String, String, Option<String>)> {
    let Some(p) = p.filter(|p| !p.is_empty()) else {
        return Ok(("linux".to_string(), go_arch().to_string(), None));
    };
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok((os.to_string(), arch.to_string(), None)),
        [os, arch, v] => Ok((os.to_string(), arch.to_string(), Some(v.to_string()))),
        _ => Err(Error::InvalidOption(format!(
            "platform {p:?}: want os/arch[/variant]"
        ))),
    }
}

pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = remove_any(&self.0);
    }
}

/// Whether a directory (an overlay's upper dir) holds nothing; an unreadable one is not
/// taken for empty.
pub fn dir_is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

pub(crate) fn remove_any(p: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Disk bytes of a file or tree (symlinks not followed).
pub(crate) fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = m.blocks() * 512;
    if m.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                n += du(&e.path());
            }
        }
    }
    n
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Store>();
}

/// A container's upper dir, made 0755 whatever the daemon's umask: overlayfs gives the merged
/// root the upper dir's mode, and a container's `/` is 0755 as under dockerd.
fn create_upper(upper: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match fs::DirBuilder::new().mode(0o755).create(upper) {
        Ok(()) => fs::set_permissions(upper, fs::Permissions::from_mode(0o755))
            .map_err(Error::io("chmod", upper)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", upper)(e)),
    }
}
