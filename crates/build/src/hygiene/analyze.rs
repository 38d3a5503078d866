//! What each layer of an image does, as the `dive` tool shows it: the instruction that made
//! it, its size, what it added, changed and deleted, and the bytes it carries that the final
//! image never shows (a file replaced or deleted by a later layer still ships in this one).
//!
//! Layers are read from their snapshot directories (overlay lower form: a whiteout is a 0/0
//! character device, an opaque directory has `trusted.overlay.opaque=y`); nothing is
//! followed, nothing is mounted.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_image::{Image, Store};
use serde::Serialize;

use crate::error::{Error, Result};

/// One change of a layer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// `A` added, `C` changed (it was in a lower layer), `D` deleted.
    #[serde(rename = "Kind")]
    pub kind: char,
    #[serde(rename = "Path")]
    pub path: String,
    /// The bytes of the file (for a deletion: of what was deleted).
    #[serde(rename = "Size")]
    pub size: u64,
}

/// One layer, bottom first.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LayerReport {
    #[serde(rename = "Index")]
    pub index: usize,
    #[serde(rename = "Digest")]
    pub digest: String,
    /// The instruction that made it (the image history's `created_by`).
    #[serde(rename = "CreatedBy")]
    pub created_by: String,
    /// Bytes of file content in the layer.
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "Added")]
    pub added: usize,
    #[serde(rename = "AddedBytes")]
    pub added_bytes: u64,
    #[serde(rename = "Changed")]
    pub changed: usize,
    #[serde(rename = "ChangedBytes")]
    pub changed_bytes: u64,
    #[serde(rename = "Deleted")]
    pub deleted: usize,
    #[serde(rename = "DeletedBytes")]
    pub deleted_bytes: u64,
    /// Bytes of this layer that a later layer replaces or deletes.
    #[serde(rename = "WastedBytes")]
    pub wasted_bytes: u64,
    #[serde(rename = "Changes")]
    pub changes: Vec<Change>,
    /// How many changes were left out of `changes` (the limit).
    #[serde(rename = "ChangesOmitted")]
    pub changes_omitted: usize,
}

/// A file that ships in a layer but is not in the final image.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Waste {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Size")]
    pub size: u64,
    /// The layer that added this copy.
    #[serde(rename = "AddedIn")]
    pub added_in: usize,
    /// The layer that deleted or replaced it.
    #[serde(rename = "RemovedIn")]
    pub removed_in: usize,
    /// `deleted` or `replaced`.
    #[serde(rename = "How")]
    pub how: &'static str,
}

/// A regular file found in some layer (for the secrets and cache checks).
#[derive(Debug, Clone)]
pub(crate) struct SeenFile {
    pub path: String,
    pub layer: usize,
    pub host: PathBuf,
}

/// The whole analysis.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Analysis {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    /// Sum of the layers' sizes.
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "WastedBytes")]
    pub wasted_bytes: u64,
    /// 1 − wasted / size.
    #[serde(rename = "Efficiency")]
    pub efficiency: f64,
    #[serde(rename = "User")]
    pub user: String,
    #[serde(rename = "Layers")]
    pub layers: Vec<LayerReport>,
    /// The wasted files, largest first.
    #[serde(rename = "Wasted")]
    pub wasted: Vec<Waste>,
    /// Every regular file of every layer (not serialized: for the lint rules).
    #[serde(skip)]
    pub(crate) files: Vec<SeenFile>,
    /// The final image's files: path → (layer, size).
    #[serde(skip)]
    pub(crate) visible: BTreeMap<String, (usize, u64)>,
}

/// Analyzes `image`; each layer lists at most `limit` changes (0: all).
pub fn analyze(store: &Store, image: &Image, limit: usize) -> Result<Analysis> {
    let dirs = store.state_dirs(&store.state_of(image)?, &image.layers)?;
    let created_by: Vec<String> = image
        .config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| {
            h.created_by
                .clone()
                .filter(|c| !c.is_empty())
                .or_else(|| h.comment.clone())
                .unwrap_or_default()
        })
        .collect();
    let mut a = Analysis {
        id: image.id.clone(),
        repo_tags: image.repo_tags.clone(),
        user: image.config.config.user.clone().unwrap_or_default(),
        ..Analysis::default()
    };
    // The merged view so far: path → (layer, size, is dir).
    let mut merged: BTreeMap<String, (usize, u64, bool)> = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut layer = LayerReport {
            index: i,
            digest: image.layers.get(i).cloned().unwrap_or_default(),
            created_by: created_by.get(i).cloned().unwrap_or_default(),
            ..LayerReport::default()
        };
        let mut entries = Vec::new();
        walk(dir, "", &mut entries)?;
        for e in entries {
            match e.kind {
                EntryKind::Whiteout => {
                    let removed = remove_under(&mut merged, &e.path, true);
                    let bytes: u64 = removed.iter().map(|r| r.2).sum();
                    layer.deleted += 1;
                    layer.deleted_bytes += bytes;
                    layer.changes.push(Change {
                        kind: 'D',
                        path: e.path.clone(),
                        size: bytes,
                    });
                    record_waste(&mut a.wasted, removed, i, "deleted");
                }
                EntryKind::Dir { opaque } => {
                    if opaque {
                        let removed = remove_under(&mut merged, &e.path, false);
                        record_waste(&mut a.wasted, removed, i, "deleted");
                    }
                    let had = merged.insert(e.path.clone(), (i, 0, true));
                    if had.is_none() {
                        layer.added += 1;
                        layer.changes.push(Change {
                            kind: 'A',
                            path: e.path.clone(),
                            size: 0,
                        });
                    }
                }
                EntryKind::File { size } | EntryKind::Other { size } => {
                    layer.size += size;
                    if matches!(e.kind, EntryKind::File { .. }) {
                        a.files.push(SeenFile {
                            path: e.path.clone(),
                            layer: i,
                            host: dir.join(e.path.trim_start_matches('/')),
                        });
                    }
                    // A file replacing a directory hides everything under it too.
                    let below = remove_under(&mut merged, &e.path, true);
                    let was_there = !below.is_empty();
                    record_waste(&mut a.wasted, below, i, "replaced");
                    merged.insert(e.path.clone(), (i, size, false));
                    let kind = if was_there { 'C' } else { 'A' };
                    if was_there {
                        layer.changed += 1;
                        layer.changed_bytes += size;
                    } else {
                        layer.added += 1;
                        layer.added_bytes += size;
                    }
                    layer.changes.push(Change {
                        kind,
                        path: e.path,
                        size,
                    });
                }
            }
        }
        a.layers.push(layer);
    }
    for w in &a.wasted {
        if let Some(l) = a.layers.get_mut(w.added_in) {
            l.wasted_bytes += w.size;
        }
    }
    a.size = a.layers.iter().map(|l| l.size).sum();
    a.wasted_bytes = a.wasted.iter().map(|w| w.size).sum();
    a.efficiency = if a.size == 0 {
        1.0
    } else {
        1.0 - a.wasted_bytes as f64 / a.size as f64
    };
    a.wasted
        .sort_by(|x, y| y.size.cmp(&x.size).then(x.path.cmp(&y.path)));
    a.visible = merged
        .into_iter()
        .filter(|(_, v)| !v.2)
        .map(|(k, v)| (k, (v.0, v.1)))
        .collect();
    if limit > 0 {
        for l in &mut a.layers {
            if l.changes.len() > limit {
                l.changes_omitted = l.changes.len() - limit;
                l.changes.truncate(limit);
            }
        }
    }
    Ok(a)
}

fn record_waste(
    out: &mut Vec<Waste>,
    removed: Vec<(String, usize, u64)>,
    by: usize,
    how: &'static str,
) {
    for (path, layer, size) in removed {
        if size > 0 {
            out.push(Waste {
                path,
                size,
                added_in: layer,
                removed_in: by,
                how,
            });
        }
    }
}

/// Removes `path` (if `itself`) and everything under it from the merged view; returns the
/// regular files removed: (path, layer, size).
fn remove_under(
    merged: &mut BTreeMap<String, (usize, u64, bool)>,
    path: &str,
    itself: bool,
) -> Vec<(String, usize, u64)> {
    let prefix = format!("{path}/");
    let mut keys: Vec<String> = merged
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    if itself && merged.contains_key(path) {
        keys.push(path.to_string());
    }
    let mut out = Vec::new();
    for k in keys {
        if let Some((layer, size, dir)) = merged.remove(&k) {
            if !dir {
                out.push((k, layer, size));
            }
        }
    }
    out
}

enum EntryKind {
    Whiteout,
    Dir {
        opaque: bool,
    },
    File {
        size: u64,
    },
    /// Symlinks and other non-files (their size is the link's).
    Other {
        size: u64,
    },
}

struct Entry {
    path: String,
    kind: EntryKind,
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<Entry>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(Error::io("read dir", dir))?;
    let mut kids: Vec<(String, PathBuf)> = rd
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    kids.sort();
    for (name, p) in kids {
        let path = format!("{rel}/{name}");
        let m = std::fs::symlink_metadata(&p).map_err(Error::io("stat", &p))?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            out.push(Entry {
                path,
                kind: EntryKind::Whiteout,
            });
        } else if ft.is_dir() {
            out.push(Entry {
                path: path.clone(),
                kind: EntryKind::Dir {
                    opaque: is_opaque(&p),
                },
            });
            walk(&p, &path, out)?;
        } else if ft.is_file() {
            out.push(Entry {
                path,
                kind: EntryKind::File { size: m.len() },
            });
        } else {
            out.push(Entry {
                path,
                kind: EntryKind::Other { size: m.len() },
            });
        }
    }
    Ok(())
}

fn is_opaque(p: &Path) -> bool {
    berth_image::snapshot::is_opaque_dir(p)
}

/// Sizes by path prefix of the final image's files (the package-cache check).
pub(crate) fn bytes_under(visible: &BTreeMap<String, (usize, u64)>, prefix: &str) -> (u64, usize) {
    let mut total = 0;
    let mut n = 0;
    for (k, (_, s)) in visible.range(prefix.to_string()..) {
        if !k.starts_with(prefix) {
            break;
        }
        total += s;
        n += 1;
    }
    (total, n)
}

/// Names of layers' instructions, for messages.
pub(crate) fn layer_names(a: &Analysis) -> HashMap<usize, String> {
    a.layers
        .iter()
        .map(|l| (l.index, l.created_by.clone()))
        .collect()
}
