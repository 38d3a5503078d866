//! COPY and ADD, written straight into the step's layer (the upper dir of an overlay over the
//! state), never through a container. Sources come from the context (where a symlink that
//! leads out is an error) or, with `--from`, from another stage's or image's root (where
//! every lookup stays inside that root); globs follow Go's `filepath.Match` per component.
//! ADD also unpacks local tars (plain, gzip, zstd) and fetches URLs.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::key::Key;
use super::mount::StepFs;
use super::stage::StageRun;
use crate::context::{Context, Kind};
use crate::dockerfile::{Copy, Instruction, Source};
use crate::error::{Error, Result};
use crate::fsroot::{self, Owner, Root};
use crate::glob::{has_magic, Pattern};
use crate::ignore::clean;

/// What an entry of a source tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MetaKind {
    File,
    Dir,
    Symlink(String),
}

#[derive(Debug, Clone)]
struct Meta {
    kind: MetaKind,
    mode: u32,
    mtime: i64,
}

/// Where COPY reads from. Paths are clean and relative to the tree's root; `resolve` turns a
/// user's path into one whose last component is no symlink.
trait Tree {
    fn resolve(&self, user: &str) -> Result<Option<String>>;
    /// lstat (the last component not followed).
    fn meta(&self, path: &str) -> Result<Option<Meta>>;
    fn children(&self, dir: &str) -> Result<Vec<String>>;
    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>>;
    fn write_to(&self, path: &str, out: &mut dyn Write) -> Result<()>;
    fn digest(&self, path: &str) -> Result<[u8; 32]>;
}

impl Tree for Context {
    fn resolve(&self, user: &str) -> Result<Option<String>> {
        Context::resolve(self, user, true)
    }

    fn meta(&self, path: &str) -> Result<Option<Meta>> {
        let Some(e) = self.entry(path) else {
            return Ok(None);
        };
        let kind = match &e.kind {
            Kind::Dir => MetaKind::Dir,
            Kind::Symlink(t) => MetaKind::Symlink(t.clone()),
            Kind::File | Kind::Hardlink(_) => MetaKind::File,
        };
        Ok(Some(Meta {
            kind,
            mode: e.mode,
            mtime: e.mtime,
        }))
    }

    fn children(&self, dir: &str) -> Result<Vec<String>> {
        let Some(dir) = Context::resolve(self, dir, true)? else {
            return Ok(Vec::new());
        };
        let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
        Ok(self
            .children_of(&dir)
            .map(|(k, _)| &k[skip..])
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(std::io::Cursor::new(self.read(path)?)))
    }

    fn write_to(&self, path: &str, out: &mut dyn Write) -> Result<()> {
        self.copy_to(path, out).map(|_| ())
    }

    fn digest(&self, path: &str) -> Result<[u8; 32]> {
        Context::digest(self, path)
    }
}

/// Another stage's (or image's) root, mounted for the step only when needed: what a path
/// resolves to and its digest are remembered per state (a state never changes), so a cached
/// `COPY --from` mounts and reads nothing.
struct RootTree<'j> {
    state: String,
    memo: &'j Mutex<HashMap<String, Memo>>,
    mount: Box<dyn Fn() -> Result<StepFs> + 'j>,
    fs: OnceCell<(Root, StepFs)>,
}

/// What a state's root is known to hold.
#[derive(Debug, Clone)]
pub(crate) enum Memo {
    Resolved(Option<String>),
    Digest([u8; 32]),
}

/// Remembered answers at most; past it the memo starts again.
const MEMO_MAX: usize = 50_000;

impl RootTree<'_> {
    fn root(&self) -> Result<&Root> {
        if let Some((r, _)) = self.fs.get() {
            return Ok(r);
        }
        let fs = (self.mount)()?;
        let root = Root::open(&fs.rootfs)?;
        Ok(&self.fs.get_or_init(|| (root, fs)).0)
    }

    fn recall(&self, what: &str, path: &str) -> Option<Memo> {
        let key = format!("{}\0{what}\0{path}", self.state);
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    fn remember(&self, what: &str, path: &str, m: Memo) {
        let key = format!("{}\0{what}\0{path}", self.state);
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= MEMO_MAX {
            memo.clear();
        }
        memo.insert(key, m);
    }

    fn resolve_in_root(&self, user: &str) -> Result<Option<String>> {
        let root = self.root()?;
        let mut todo: Vec<String> = clean(&format!("/{user}"))
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        let mut cur: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            let mut next = cur.clone();
            next.push(c);
            let p = next.join("/");
            let Some(st) = root.lstat(&p) else {
                return Ok(None);
            };
            if fsroot::is_kind(&st, nix::sys::stat::SFlag::S_IFLNK) {
                links += 1;
                if links > 40 {
                    return Err(Error::Invalid(format!(
                        "too many symlinks resolving {user}"
                    )));
                }
                let t = root.readlink(&p)?;
                let joined = if t.starts_with('/') {
                    t
                } else {
                    format!("/{}/{t}", cur.join("/"))
                };
                // `..` above the root stays at the root, as the kernel resolves in a root.
                for c in clean(&joined).split('/').rev() {
                    if !c.is_empty() {
                        todo.push(c.to_string());
                    }
                }
                cur.clear();
            } else {
                cur = next;
            }
        }
        Ok(Some(cur.join("/")))
    }

    fn digest_of(&self, path: &str) -> Result<[u8; 32]> {
        let mut h = blake3::Hasher::new();
        match self.meta(path)?.map(|m| (m.kind, m.mode)) {
            Some((MetaKind::File, mode)) => {
                h.update(b"f");
                h.update(&mode.to_le_bytes());
                self.write_to(path, &mut h)?;
            }
            Some((MetaKind::Symlink(t), _)) => {
                h.update(b"l");
                h.update(t.as_bytes());
            }
            Some((MetaKind::Dir, mode)) => {
                h.update(b"d");
                h.update(&mode.to_le_bytes());
                for c in self.children(path)? {
                    h.update(c.as_bytes());
                    h.update(&[0]);
                    h.update(&self.digest_of(&join(path, &c))?);
                }
            }
            None => {
                h.update(b"-");
            }
        }
        Ok(h.finalize().into())
    }
}

impl Tree for RootTree<'_> {
    fn resolve(&self, user: &str) -> Result<Option<String>> {
        if let Some(Memo::Resolved(r)) = self.recall("resolve", user) {
            return Ok(r);
        }
        let r = self.resolve_in_root(user)?;
        self.remember("resolve", user, Memo::Resolved(r.clone()));
        Ok(r)
    }

    fn meta(&self, path: &str) -> Result<Option<Meta>> {
        use nix::sys::stat::SFlag;
        let root = self.root()?;
        let Some(st) = root.lstat(path) else {
            return Ok(None);
        };
        let kind = if fsroot::is_kind(&st, SFlag::S_IFDIR) {
            MetaKind::Dir
        } else if fsroot::is_kind(&st, SFlag::S_IFLNK) {
            MetaKind::Symlink(root.readlink(path)?)
        } else if fsroot::is_kind(&st, SFlag::S_IFREG) {
            MetaKind::File
        } else {
            // Devices, fifos, sockets: nothing a layer should get from a copy.
            return Ok(None);
        };
        Ok(Some(Meta {
            kind,
            mode: st.st_mode & 0o7777,
            mtime: st.st_mtime,
        }))
    }

    fn children(&self, dir: &str) -> Result<Vec<String>> {
        self.root()?.list(dir)
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.root()?.open_file(path)?))
    }

    fn write_to(&self, path: &str, out: &mut dyn Write) -> Result<()> {
        let mut f = self.root()?.open_file(path)?;
        std::io::copy(&mut f, out).map_err(Error::io("copy", path))?;
        Ok(())
    }

    fn digest(&self, path: &str) -> Result<[u8; 32]> {
        if let Some(Memo::Digest(d)) = self.recall("digest", path) {
            return Ok(d);
        }
        let d = self.digest_of(path)?;
        self.remember("digest", path, Memo::Digest(d));
        Ok(d)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn basename(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

/// One thing to copy.
enum Item {
    /// A path of the tree: as the user wrote it (its name is used) and resolved.
    Path { given: String, resolved: String },
    /// A file made of bytes: a heredoc.
    Bytes {
        name: String,
        data: Vec<u8>,
        mode: u32,
        mtime: Option<i64>,
    },
    /// A downloaded URL, in a scratch file (mode 0600, as Docker gives it), with the BLAKE3
    /// digest of its bytes.
    Download {
        name: String,
        file: std::path::PathBuf,
        mtime: Option<i64>,
        digest: [u8; 32],
    },
}

/// ADD's URL sources.
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// A download's SHA-256 (`--checksum`) and BLAKE3 (the cache key), in one read.
fn download_digests(file: &std::path::Path) -> Result<(String, [u8; 32])> {
    let mut f = File::open(file).map_err(Error::io("open", file))?;
    let mut sha = Sha256::new();
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf).map_err(Error::io("read", file))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        b3.update(&buf[..n]);
    }
    Ok((
        format!("sha256:{}", hex::encode(sha.finalize())),
        *b3.finalize().as_bytes(),
    ))
}

pub(crate) fn copy(s: &mut StageRun<'_, '_>, ins: &Instruction, c: &Copy, add: bool) -> Result<()> {
    let what = if add { "ADD" } else { "COPY" };
    let chown = c.chown.as_deref().map(|v| s.expand(v)).transpose()?;
    let chmod = match c.chmod.as_deref().map(|v| s.expand(v)).transpose()? {
        Some(m) => Some(
            u32::from_str_radix(&m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| s.invalid(format!("--chmod={m}: want an octal mode like 0755")))?,
        ),
        None => None,
    };
    let dest_raw = s.expand(&c.dest)?;
    let dest_is_dir =
        dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == "." || dest_raw == "..";
    let dest = if dest_raw.starts_with('/') {
        clean(&dest_raw)
    } else {
        clean(&format!("{}/{dest_raw}", s.workdir()))
    };

    // The tree sources come from: the context, or another stage's / image's root.
    let from = c.from.as_deref().map(|f| s.expand(f)).transpose()?;
    let root_tree;
    let tree: &dyn Tree = match &from {
        None => s.job.ctx,
        Some(name) => {
            let (state, config) = match s.job.stage_by_name(name, s.index) {
                Some(i) => s.job.stage_result(i).ok_or(Error::Cancelled)?,
                None => {
                    let image = s.base_image(name, &format!("{what} --from"))?;
                    (s.job.store.state_of(&image)?, image.config.clone())
                }
            };
            let job = s.job;
            let diff_ids = config.rootfs.diff_ids;
            let id = state.config.clone();
            root_tree = RootTree {
                state: id,
                memo: job.memo,
                mount: Box::new(move || {
                    StepFs::mount(
                        job.store,
                        job.step_dir("from"),
                        &state,
                        &diff_ids,
                        &job.empty_dir(),
                    )
                }),
                fs: OnceCell::new(),
            };
            &root_tree
        }
    };

    let mut items = Vec::new();
    for src in &c.sources {
        match src {
            Source::Heredoc(h) => {
                let body = if h.expand {
                    s.expand_heredoc(&h.body)?
                } else {
                    h.body.clone()
                };
                items.push(Item::Bytes {
                    name: h.name.clone(),
                    data: body.into_bytes(),
                    mode: 0o644,
                    mtime: None,
                });
            }
            Source::Path(raw) => {
                let p = s.expand(raw)?;
                if add && is_url(&p) {
                    s.say(format!("Downloading {p}\n"))?;
                    let file = s.job.step_dir("download");
                    let f = s.job.host.fetch(&p, &file).map_err(|reason| Error::Fetch {
                        url: p.clone(),
                        reason,
                    })?;
                    s.cancelled()?;
                    let (got, b3) = download_digests(&file)?;
                    if let Some(want) = &c.checksum {
                        if *want != got {
                            return Err(Error::Fetch {
                                url: p,
                                reason: format!("checksum mismatch: expected {want}, got {got}"),
                            });
                        }
                    }
                    let name = if dest_is_dir {
                        f.name.clone().ok_or_else(|| Error::Fetch {
                            url: p.clone(),
                            reason:
                                "cannot determine a file name from the URL; give a destination file"
                                    .into(),
                        })?
                    } else {
                        basename(&dest).to_string()
                    };
                    items.push(Item::Download {
                        name,
                        file,
                        mtime: f.last_modified,
                        digest: b3,
                    });
                    continue;
                }
                if from.is_none() {
                    let rel = clean(&p);
                    if rel == ".." || rel.starts_with("../") {
                        return Err(Error::OutsideContext {
                            instruction: what.into(),
                            path: p,
                        });
                    }
                }
                if has_magic(&p) {
                    let matches = glob(tree, &p)?;
                    if matches.is_empty() {
                        return Err(Error::NoSources {
                            instruction: what.into(),
                            pattern: p,
                        });
                    }
                    for m in matches {
                        let resolved = tree.resolve(&m)?.ok_or_else(|| Error::SourceNotFound {
                            instruction: what.into(),
                            path: m.clone(),
                        })?;
                        items.push(Item::Path { given: m, resolved });
                    }
                } else {
                    let resolved = tree.resolve(&p)?.ok_or_else(|| Error::SourceNotFound {
                        instruction: what.into(),
                        path: p.trim_start_matches('/').to_string(),
                    })?;
                    items.push(Item::Path { given: p, resolved });
                }
            }
        }
    }
    if items.len() > 1 && !dest_is_dir {
        return Err(s.invalid(format!(
            "When using {what} with more than one source file, the destination must be a directory and end with a /"
        )));
    }

    let mut key = Key::new(&s.state.config, what)
        .part(&dest)
        .part(if dest_is_dir { "dir" } else { "path" })
        .part(chown.as_deref().unwrap_or(""))
        .part(&chmod.map(|m| m.to_string()).unwrap_or_default())
        .part(from.as_deref().unwrap_or(""));
    for it in &items {
        key = match it {
            Item::Path { given, resolved } => key
                .part(given)
                .part(resolved)
                .bytes(&tree.digest(resolved)?),
            Item::Bytes {
                name,
                data,
                mode,
                mtime,
            } => key
                .part(name)
                .part(&format!("{mode}/{mtime:?}"))
                .bytes(blake3::hash(data).as_bytes()),
            Item::Download {
                name,
                mtime,
                digest,
                ..
            } => key
                .part(name)
                .part(&format!("download/{mtime:?}"))
                .bytes(digest),
        };
    }
    let key = key.finish();
    if let Some(hit) = s.lookup(&key) {
        return s.hit(hit);
    }

    let mut fs = s.mount("copy")?;
    let root = Root::open(&fs.rootfs)?;
    let owner = match &chown {
        Some(spec) => chown_owner(&fs.rootfs, spec)
            .map_err(|e| s.invalid(format!("{what} --chown={spec}: {e}")))?,
        None => Owner::default(),
    };
    let target = Target {
        root: &root,
        dest: &dest,
        dest_is_dir: dest_is_dir || items.len() > 1,
        owner,
        chmod,
    };
    for it in &items {
        s.cancelled()?;
        match it {
            Item::Bytes {
                name,
                data,
                mode,
                mtime,
            } => {
                let (dir, name) = target.file_place(name)?;
                fsroot::put_file(
                    dir.as_fd(),
                    &name,
                    chmod.unwrap_or(*mode),
                    owner,
                    *mtime,
                    &mut |f| f.write_all(data).map_err(Error::io("write", name.clone())),
                )?;
            }
            Item::Download {
                name, file, mtime, ..
            } => {
                let (dir, name) = target.file_place(name)?;
                let mut src = File::open(file).map_err(Error::io("open", file))?;
                fsroot::put_file(
                    dir.as_fd(),
                    &name,
                    chmod.unwrap_or(0o600),
                    owner,
                    *mtime,
                    &mut |f| {
                        std::io::copy(&mut src, f)
                            .map(|_| ())
                            .map_err(Error::io("write", name.clone()))
                    },
                )?;
            }
            Item::Path { given, resolved } => {
                let meta = tree.meta(resolved)?.ok_or_else(|| Error::SourceNotFound {
                    instruction: what.into(),
                    path: given.clone(),
                })?;
                match meta.kind {
                    MetaKind::Dir => {
                        let dir = root.mkdir_all(&dest, owner)?;
                        copy_tree(tree, resolved, dir.as_fd(), &target)?;
                    }
                    _ if add && is_archive(tree, resolved)? => {
                        let dir = root.mkdir_all(&dest, owner)?;
                        let mut r = tree.open(resolved)?;
                        berth_image::extract_archive(&mut r, &Root::proc_path(dir.as_fd()), given)?;
                    }
                    _ => {
                        let (dir, name) = target.file_place(basename(given))?;
                        copy_entry(tree, resolved, &meta, dir.as_fd(), &name, &target)?;
                    }
                }
            }
        }
    }
    fs.unmount()?;
    let upper = fs.upper.clone();
    let cfg = s.config.clone();
    s.commit(&key, cfg, Some(&upper), &ins.text)
}

/// Where and how things land.
struct Target<'r> {
    root: &'r Root,
    dest: &'r str,
    dest_is_dir: bool,
    owner: Owner,
    chmod: Option<u32>,
}

impl Target<'_> {
    /// The directory and name a file source goes to: into `dest` when it is a directory
    /// (by its trailing `/`, by having several sources, or by existing as one), else `dest`.
    fn file_place(&self, name: &str) -> Result<(std::os::fd::OwnedFd, String)> {
        if self.dest_is_dir || self.dest == "/" || self.root.is_dir(self.dest) {
            Ok((
                self.root.mkdir_all(self.dest, self.owner)?,
                name.to_string(),
            ))
        } else {
            let (parent, base) = fsroot::split(self.dest);
            Ok((self.root.mkdir_all(parent, self.owner)?, base.to_string()))
        }
    }
}

fn copy_tree(
    tree: &dyn Tree,
    src: &str,
    dst: std::os::fd::BorrowedFd<'_>,
    t: &Target<'_>,
) -> Result<()> {
    for name in tree.children(src)? {
        let path = join(src, &name);
        if let Some(meta) = tree.meta(&path)? {
            copy_entry(tree, &path, &meta, dst, &name, t)?;
        }
    }
    Ok(())
}

fn copy_entry(
    tree: &dyn Tree,
    path: &str,
    meta: &Meta,
    dir: std::os::fd::BorrowedFd<'_>,
    name: &str,
    t: &Target<'_>,
) -> Result<()> {
    let mode = t.chmod.unwrap_or(meta.mode);
    match &meta.kind {
        MetaKind::Dir => {
            let fd = fsroot::put_dir(dir, name, mode, t.owner, None)?;
            copy_tree(tree, path, fd.as_fd(), t)
        }
        MetaKind::Symlink(target) => {
            fsroot::put_symlink(dir, name, target, t.owner, Some(meta.mtime))
        }
        MetaKind::File => fsroot::put_file(
            dir,
            name,
            mode,
            t.owner,
            Some(meta.mtime),
            &mut |f: &mut File| tree.write_to(path, f),
        ),
    }
}

/// `--chown=user[:group]`, names looked up in the image being written. A user without a
/// group gives its number as the group too (Docker's rule).
fn chown_owner(rootfs: &std::path::Path, spec: &str) -> std::result::Result<Owner, String> {
    let u = berth_image::users::resolve_user(rootfs, spec).map_err(|e| e.to_string())?;
    let gid = if spec.contains(':') { u.gid } else { u.uid };
    Ok(Owner { uid: u.uid, gid })
}

/// Whether a file is a tar (plain, gzip or zstd) that ADD unpacks.
fn is_archive(tree: &dyn Tree, path: &str) -> Result<bool> {
    let mut head = Vec::with_capacity(1024);
    tree.open(path)?
        .take(1024)
        .read_to_end(&mut head)
        .map_err(Error::io("read", path))?;
    let plain: Vec<u8> = if head.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut d = flate_head(tree, path)?;
        let _ = (&mut d).take(512).read_to_end(&mut out);
        out
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut out = Vec::new();
        if let Ok(mut d) = zstd_head(tree, path) {
            let _ = (&mut d).take(512).read_to_end(&mut out);
        }
        out
    } else {
        head
    };
    Ok(plain.len() >= 262 && &plain[257..262] == b"ustar")
}

fn flate_head<'t>(tree: &'t dyn Tree, path: &str) -> Result<Box<dyn Read + 't>> {
    Ok(Box::new(flate2::read::MultiGzDecoder::new(
        tree.open(path)?,
    )))
}

fn zstd_head<'t>(tree: &'t dyn Tree, path: &str) -> Result<Box<dyn Read + 't>> {
    let r = tree.open(path)?;
    zstd::stream::read::Decoder::new(r)
        .map(|d| Box::new(d) as Box<dyn Read>)
        .map_err(Error::io("read", path))
}

/// Go's `filepath.Glob` over a tree: each component of the pattern matched against the
/// names of one directory.
fn glob(tree: &dyn Tree, pattern: &str) -> Result<Vec<String>> {
    let cleaned = clean(&format!("/{pattern}"));
    let mut cur = vec![String::new()];
    for comp in cleaned.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if has_magic(comp) {
            let pat = Pattern::new(comp, false).map_err(Error::Invalid)?;
            for dir in &cur {
                for name in tree.children(dir)? {
                    if pat.matches(&name) {
                        next.push(join(dir, &name));
                    }
                }
            }
        } else {
            let lit = comp.replace('\\', "");
            for dir in &cur {
                let p = join(dir, &lit);
                if tree.resolve(&p)?.is_some() {
                    next.push(p);
                }
            }
        }
        cur = next;
    }
    cur.sort();
    Ok(cur)
}

impl StageRun<'_, '_> {
    /// A heredoc body with its variables expanded (quotes are text, not syntax, there).
    pub fn expand_heredoc(&self, body: &str) -> Result<String> {
        let mut out = String::new();
        for line in body.split_inclusive('\n') {
            let (text, nl) = match line.strip_suffix('\n') {
                Some(t) => (t, "\n"),
                None => (line, ""),
            };
            let e = self.job.df.escape;
            let mut escaped = String::with_capacity(text.len());
            for c in text.chars() {
                if c == e || c == '"' || c == '\'' {
                    escaped.push(e);
                }
                escaped.push(c);
            }
            out.push_str(&self.expand(&escaped)?);
            out.push_str(nl);
        }
        Ok(out)
    }
}
