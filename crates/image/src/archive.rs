//! `docker load` and `docker save`: docker-archive (manifest.json) and OCI image layout
//! (oci-layout, index.json, blobs/) tars. `save` writes both in one tar, as Docker 25+ does,
//! so that both `docker load` and `podman load` read it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::apply::clean_components;
use crate::blobs::digest_of;
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::reference::{validate_digest, Reference};
use crate::snapshot::{chain_ids, hex_of};
use crate::store::{
    go_arch, resolve_with_kind, LayerInfo, LoadedImage, RemoveOnDrop, Store, MEDIA_OCI_MANIFEST,
};

const CONTAINERD_NAME: &str = "io.containerd.image.name";
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";
const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// An archive unpacked into a temp dir. Only regular files and dirs are created there;
/// symlinks (old docker-archive layouts link duplicate layers) are kept as a name map, so a
/// hostile archive cannot make us write or read outside the temp dir.
struct Unpacked {
    dir: PathBuf,
    links: HashMap<String, String>,
}

impl Unpacked {
    fn extract(r: &mut dyn Read, dir: PathBuf) -> Result<Unpacked> {
        crate::private::create_dir(&dir).map_err(Error::io("create", &dir))?;
        let mut links = HashMap::new();
        let mut ar = tar::Archive::new(r);
        let bad = |e: std::io::Error| Error::BadArchive(format!("reading tar: {e}"));
        for entry in ar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path_bytes().into_owned();
            let comps = clean_components(&raw).map_err(|why| {
                Error::BadArchive(format!("entry {:?}: {why}", String::from_utf8_lossy(&raw)))
            })?;
            let key = comps
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if key.is_empty() {
                continue;
            }
            let dst = dir.join(&key);
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if let Some(p) = dst.parent() {
                        crate::private::create_dir(p).map_err(Error::io("create", p))?;
                    }
                    let mut f =
                        crate::private::create_file(&dst).map_err(Error::io("create", &dst))?;
                    std::io::copy(&mut entry, &mut f).map_err(Error::io("write", &dst))?;
                }
                tar::EntryType::Directory => {
                    crate::private::create_dir(&dst).map_err(Error::io("create", &dst))?;
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let base = if kind == tar::EntryType::Symlink && !target.starts_with('/') {
                        key.rsplit_once('/')
                            .map(|(p, _)| p.to_string())
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    if let Some(t) = lexical_join(&base, &target) {
                        links.insert(key, t);
                    }
                }
                _ => {}
            }
        }
        Ok(Unpacked { dir, links })
    }

    fn resolve(&self, name: &str) -> Result<PathBuf> {
        let mut cur: Vec<String> = lexical_join("", name)
            .ok_or_else(|| Error::BadArchive(format!("path {name:?} leaves the archive")))?
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut hops = 0;
        'outer: loop {
            for i in 0..cur.len() {
                if let Some(t) = self.links.get(&cur[..=i].join("/")) {
                    hops += 1;
                    if hops > 40 {
                        return Err(Error::BadArchive(format!(
                            "too many links resolving {name:?}"
                        )));
                    }
                    let mut next: Vec<String> = t
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect();
                    next.extend(cur[i + 1..].iter().cloned());
                    cur = next;
                    continue 'outer;
                }
            }
            return Ok(self.dir.join(cur.join("/")));
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.resolve(name).is_ok_and(|p| p.is_file())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.resolve(name)?;
        fs::read(&p).map_err(|_| Error::BadArchive(format!("missing file {name:?}")))
    }

    fn open(&self, name: &str) -> Result<File> {
        let p = self.resolve(name)?;
        File::open(&p).map_err(|_| Error::BadArchive(format!("missing file {name:?}")))
    }

    fn blob_path(digest: &str) -> Result<String> {
        let (alg, hex) = digest
            .split_once(':')
            .ok_or_else(|| Error::InvalidDigest(digest.to_string()))?;
        Ok(format!("blobs/{alg}/{hex}"))
    }

    /// A blob of the OCI layout, verified against its digest.
    fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        validate_digest(digest)?;
        let b = self.read(&Self::blob_path(digest)?)?;
        let actual = digest_of(&b);
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("archive blob {digest}"),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(b)
    }
}

/// `base/rel` with `.`/`..` resolved lexically; None when it climbs above the archive root.
fn lexical_join(base: &str, rel: &str) -> Option<String> {
    let mut out: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|c| !c.is_empty()).collect()
    };
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

impl Store {
    /// `docker load`: a docker-archive or OCI layout tar; layers may be tar, gzip or zstd.
    /// The archive is read in full (into a private scratch dir) before the store's lock is
    /// taken: a client that streams it slowly, or stops, holds up no one else.
    pub fn load(&self, tar: &mut dyn Read) -> Result<Vec<LoadedImage>> {
        let tmp = self.tmp_path("load");
        let _cleanup = RemoveOnDrop(tmp.clone());
        let ar = Unpacked::extract(tar, tmp)?;
        let _g = self.lock();
        let mut db = self.load_db()?;
        let mut loaded = Vec::new();
        // Docker 25+ writes both layouts; manifest.json names the tags the docker way.
        if ar.exists("manifest.json") {
            let entries: Vec<DockerManifestEntry> =
                serde_json::from_slice(&ar.read("manifest.json")?)
                    .map_err(Error::json("manifest.json"))?;
            for e in entries {
                let config = ar.read(&e.config)?;
                let tags = e
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| Reference::parse(t))
                    .collect::<Result<Vec<_>>>()?;
                let layers: Vec<String> = e.layers.clone();
                loaded.push(self.load_image(&mut db, &ar, &config, &layers, tags)?);
            }
        } else if ar.exists("index.json") {
            let index: Value = serde_json::from_slice(&ar.read("index.json")?)
                .map_err(Error::json("index.json"))?;
            // One image may be listed once per name; load it once with all its names.
            let mut order: Vec<String> = Vec::new();
            let mut names: HashMap<String, Vec<Reference>> = HashMap::new();
            for d in index["manifests"].as_array().into_iter().flatten() {
                let manifest = resolve_platform(&ar, d)?;
                let ann = &d["annotations"];
                let name = ann[CONTAINERD_NAME]
                    .as_str()
                    .and_then(|n| Reference::parse(n).ok())
                    .or_else(|| {
                        ann[OCI_REF_NAME]
                            .as_str()
                            .filter(|n| n.contains([':', '/']))
                            .and_then(|n| Reference::parse(n).ok())
                    });
                if !names.contains_key(&manifest) {
                    order.push(manifest.clone());
                }
                let list = names.entry(manifest).or_default();
                if let Some(n) = name {
                    if !list.contains(&n) {
                        list.push(n);
                    }
                }
            }
            for m in order {
                let manifest: Value = serde_json::from_slice(&ar.read_blob(&m)?)
                    .map_err(Error::json(format!("manifest {m}")))?;
                let cdigest = manifest["config"]["digest"]
                    .as_str()
                    .ok_or_else(|| Error::BadArchive(format!("manifest {m} has no config")))?;
                let config = ar.read_blob(cdigest)?;
                let layers = manifest["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        l["digest"]
                            .as_str()
                            .ok_or_else(|| {
                                Error::BadArchive(format!("manifest {m}: layer without digest"))
                            })
                            .and_then(Unpacked::blob_path)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let tags = names.remove(&m).unwrap_or_default();
                loaded.push(self.load_image(&mut db, &ar, &config, &layers, tags)?);
            }
        } else {
            return Err(Error::BadArchive(
                "neither manifest.json (docker-archive) nor index.json (OCI layout) found".into(),
            ));
        }
        self.save_db(&db)?;
        Ok(loaded)
    }

    fn load_image(
        &self,
        db: &mut crate::db::Db,
        ar: &Unpacked,
        config: &[u8],
        layer_paths: &[String],
        tags: Vec<Reference>,
    ) -> Result<LoadedImage> {
        let id = digest_of(config);
        let cfg: ImageConfig =
            serde_json::from_slice(config).map_err(Error::json(format!("config {id}")))?;
        if cfg.rootfs.diff_ids.len() != layer_paths.len() {
            return Err(Error::BadArchive(format!(
                "image {id}: config lists {} layers, manifest {}",
                cfg.rootfs.diff_ids.len(),
                layer_paths.len()
            )));
        }
        let mut layers: Vec<LayerInfo> = Vec::new();
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        for (i, path) in layer_paths.iter().enumerate() {
            let mut f = ar.open(path)?;
            let parent = if i == 0 {
                None
            } else {
                Some(chains[i - 1].as_str())
            };
            layers.push(self.ingest_layer(
                &mut f,
                parent,
                Some(&cfg.rootfs.diff_ids[i]),
                path,
                true,
            )?);
        }
        let tags_out = tags.iter().map(Reference::familiar).collect();
        let id2 = self.register(db, config, &layers, tags)?;
        debug_assert_eq!(id, id2);
        Ok(LoadedImage { id, tags: tags_out })
    }

    /// `docker save`: one tar with docker-archive and OCI layout of the named images.
    /// A name that is a tag saves that tag; an id saves the image untagged.
    /// What to write is decided under the store's lock, with every blob opened then (an open
    /// file stays readable whatever a later `rmi` or gc removes); the writing, to a client
    /// that may be slow or gone, happens after the lock is released.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<()> {
        let entries = {
            let _g = self.lock();
            self.save_entries(names)?
        };
        let mut b = tar::Builder::new(out);
        let werr = |e| Error::BadArchive(format!("writing archive: {e}"));
        for e in entries {
            match e {
                SaveEntry::Dir(name) => {
                    let mut h = header(tar::EntryType::Directory, 0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, name, std::io::empty())
                        .map_err(werr)?;
                }
                SaveEntry::Blob { name, file, size } => {
                    let mut h = header(tar::EntryType::Regular, size);
                    b.append_data(&mut h, name, file.take(size)).map_err(werr)?;
                }
                SaveEntry::Data { name, data } => {
                    let mut h = header(tar::EntryType::Regular, data.len() as u64);
                    b.append_data(&mut h, name, data.as_slice()).map_err(werr)?;
                }
            }
        }
        b.finish().map_err(werr)
    }

    /// The entries of a save's archive, in order (under the store's lock).
    fn save_entries(&self, names: &[String]) -> Result<Vec<SaveEntry>> {
        let db = self.load_db()?;
        let mut images: Vec<(String, Vec<Reference>)> = Vec::new();
        for n in names {
            let (id, r) = resolve_with_kind(&db, n)?;
            let r = r.filter(|r| r.tag().is_some() && r.digest().is_none());
            match images.iter_mut().find(|(i, _)| *i == id) {
                Some((_, refs)) => refs.extend(r),
                None => images.push((id, r.into_iter().collect())),
            }
        }
        let mut out = vec![SaveEntry::Dir("blobs/"), SaveEntry::Dir("blobs/sha256/")];
        let mut written: HashSet<String> = HashSet::new();
        let mut index = Vec::new();
        let mut manifest_json = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, refs) in &images {
            let rec = db
                .images
                .get(id)
                .ok_or_else(|| Error::NotFound(id.clone()))?;
            let cfg = self.config_of(id)?;
            // Pulled images keep their compressed layers: the archive carries them as they
            // are (docker load and our load decompress), under the image's own manifest.
            let layer_blobs = self.layer_blobs(id)?;
            let (_, mbytes) = self.manifest_of(id)?;
            let mtype = serde_json::from_slice::<Value>(&mbytes)
                .ok()
                .and_then(|m| m["mediaType"].as_str().map(str::to_string))
                .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
            let mut blobs = vec![id.clone()];
            blobs.extend(layer_blobs.iter().cloned());
            blobs.push(rec.manifest.clone());
            for dg in &blobs {
                if !written.insert(dg.clone()) {
                    continue;
                }
                out.push(SaveEntry::Blob {
                    name: format!("blobs/sha256/{}", hex_of(dg)),
                    file: self.blobs.open_blob(dg)?,
                    size: self.blobs.size(dg)?,
                });
            }
            let msize = self.blobs.size(&rec.manifest)?;
            let desc = |ann: Option<&Reference>| {
                let mut d = json!({"mediaType": mtype, "digest": rec.manifest, "size": msize});
                if let Some(r) = ann {
                    d["annotations"] = json!({
                        CONTAINERD_NAME: r.to_string(),
                        OCI_REF_NAME: r.tag().unwrap_or_default(),
                    });
                }
                d
            };
            if refs.is_empty() {
                index.push(desc(None));
            }
            for r in refs {
                index.push(desc(Some(r)));
                if let (Some(t), Some(top)) = (r.tag(), cfg.rootfs.diff_ids.last()) {
                    repositories
                        .entry(r.familiar_repository())
                        .or_default()
                        .insert(t.to_string(), hex_of(top).to_string());
                }
            }
            manifest_json.push(json!({
                "Config": format!("blobs/sha256/{}", hex_of(id)),
                "RepoTags": refs.iter().map(Reference::familiar).collect::<Vec<_>>(),
                "Layers": layer_blobs.iter().map(|d| format!("blobs/sha256/{}", hex_of(d))).collect::<Vec<_>>(),
            }));
        }
        let files: [(&str, Vec<u8>); 4] = [
            (
                "index.json",
                serde_json::to_vec(
                    &json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}),
                )
                .map_err(Error::json("index.json"))?,
            ),
            (
                "manifest.json",
                serde_json::to_vec(&manifest_json).map_err(Error::json("manifest.json"))?,
            ),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            (
                "repositories",
                serde_json::to_vec(&repositories).map_err(Error::json("repositories"))?,
            ),
        ];
        out.extend(
            files
                .into_iter()
                .map(|(name, data)| SaveEntry::Data { name, data }),
        );
        Ok(out)
    }
}

/// One entry of a save's archive.
enum SaveEntry {
    Dir(&'static str),
    /// A blob, opened while the store was locked.
    Blob {
        name: String,
        file: std::fs::File,
        size: u64,
    },
    Data {
        name: &'static str,
        data: Vec<u8>,
    },
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The manifest digest a descriptor of index.json leads to: itself, or for an image index
/// the entry for this machine's platform (else the first).
fn resolve_platform(ar: &Unpacked, d: &Value) -> Result<String> {
    let digest = d["digest"]
        .as_str()
        .ok_or_else(|| Error::BadArchive("index.json: descriptor without digest".into()))?
        .to_string();
    let media = d["mediaType"].as_str().unwrap_or(MEDIA_OCI_MANIFEST);
    if media != MEDIA_OCI_INDEX && media != MEDIA_DOCKER_LIST {
        return Ok(digest);
    }
    let idx: Value = serde_json::from_slice(&ar.read_blob(&digest)?)
        .map_err(Error::json(format!("index {digest}")))?;
    let list = idx["manifests"].as_array().cloned().unwrap_or_default();
    // Only manifests whose blobs are in the archive can be loaded.
    let present: Vec<&Value> = list
        .iter()
        .filter(|m| {
            m["digest"]
                .as_str()
                .and_then(|d| Unpacked::blob_path(d).ok())
                .is_some_and(|p| ar.exists(&p))
        })
        .collect();
    let pick = present
        .iter()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == go_arch())
        .or_else(|| present.first())
        .ok_or_else(|| Error::BadArchive(format!("index {digest}: no manifest in the archive")))?;
    resolve_platform(ar, pick)
}
