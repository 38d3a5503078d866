//! Who may read what berth writes (docs/security.md): the rule of every path under the
//! daemon's root, its exec root and the runtime's state roots, in one table. Each path is made
//! with its mode where it is created; this table is what the daemon applies at start to what an
//! older version made (an upgrade), what docs/security.md shows, and what the tests check both
//! trees against. The daemon runs under umask 027 at least, so a call that forgets its mode
//! still makes nothing others can read.

use std::fs::{DirBuilder, Metadata, Permissions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bits the daemon's umask always holds: nothing it makes is readable by others by accident.
pub const DAEMON_UMASK: u32 = 0o027;

/// The file in each tree that says which version of the table its paths were narrowed to
/// (its content): a tree without it, or with an older one, is walked at start. Bumped when a
/// rule narrows.
pub const MARKER: &str = ".modes";
const TABLE_VERSION: &str = "1\n";

/// The tree a path is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    Root,
    ExecRoot,
    RuntimeRoot,
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Socket,
    Fifo,
}

/// Who owns a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// root:root.
    Root,
    /// root, group: the `--userns-remap` range's group (root without remapping).
    RootRemapGroup,
    /// root, group: the container's range group when it is remapped, root otherwise.
    RootContainerGroup,
    /// root, group: the API socket's group (`--group`, as dockerd's `-G`).
    RootSocketGroup,
    /// root, or the range's root for a remapped container.
    ContainerRoot,
    /// whoever the image or the container made it for.
    Container,
}

/// The rule of the paths a pattern names.
#[derive(Debug)]
pub struct Rule {
    /// `<root>/…`, `<exec-root>/…` or `<runtime-root>/…`; a component `<word>` (or a part of
    /// one, as in `<id>-json.log`) stands for any name, a last `**` for anything below.
    pub path: &'static str,
    pub kind: Kind,
    /// The widest mode allowed (set-id and sticky bits included); `0o7777` is the image's or
    /// the container's own.
    pub mode: u32,
    pub owner: Owner,
    /// What is below is the container's or the image's, with its own modes: it is never
    /// walked. Others reach none of it, since a directory above keeps them out.
    pub opaque: bool,
    pub why: &'static str,
}

const fn rule(path: &'static str, kind: Kind, mode: u32, owner: Owner, why: &'static str) -> Rule {
    Rule {
        path,
        kind,
        mode,
        owner,
        opaque: false,
        why,
    }
}

const fn opaque(
    path: &'static str,
    kind: Kind,
    mode: u32,
    owner: Owner,
    why: &'static str,
) -> Rule {
    Rule {
        path,
        kind,
        mode,
        owner,
        opaque: true,
        why,
    }
}

use Kind::{Dir, Fifo, File, Socket};
use Owner::{Container, ContainerRoot, Root, RootContainerGroup, RootRemapGroup, RootSocketGroup};

/// Every path berth writes, the first matching rule (by pattern and kind) applying.
pub static RULES: &[Rule] = &[
    // The daemon's root (`--root`, /var/lib/berth).
    rule("<root>", Dir, 0o710, RootRemapGroup, "dockerd's mode: nobody else lists or traverses it; a remapped root (`--userns-remap`) passes through by its group, to its containers and volumes only"),
    rule("<root>/containers", Dir, 0o710, RootRemapGroup, "as the root"),
    rule("<root>/containers/<id>", Dir, 0o710, RootContainerGroup, "0700; 0710 with the range's group for a remapped container, whose init binds its root filesystem, /etc files and volumes from here"),
    rule("<root>/containers/<id>/config.v2.json", File, 0o600, Root, "the container's record: its environment (`-e`, `--env-file`), command, labels"),
    rule("<root>/containers/<id>/config.json", File, 0o600, Root, "the OCI spec: environment and arguments"),
    rule("<root>/containers/<id>/<id>-json.log", File, 0o600, Root, "the container's output (root-only as dockerd's logs)"),
    rule("<root>/containers/<id>/<id>-json.log.<n>", File, 0o600, Root, "rotated logs"),
    rule("<root>/containers/<id>/hostname", File, 0o644, ContainerRoot, "bound over the container's /etc/hostname, read by every user in it; the directory keeps others out"),
    rule("<root>/containers/<id>/hosts", File, 0o644, ContainerRoot, "as hostname"),
    rule("<root>/containers/<id>/resolv.conf", File, 0o644, ContainerRoot, "as hostname"),
    opaque("<root>/containers/<id>/upper", Dir, 0o755, ContainerRoot, "the container's writable layer; overlayfs gives its mode to the container's `/`"),
    opaque("<root>/containers/<id>/work", Dir, 0o700, Root, "overlayfs's work directory"),
    opaque("<root>/containers/<id>/rootfs", Dir, 0o755, ContainerRoot, "mount point of the container's root filesystem: 0700, mounted the mode of its `/`"),
    opaque("<root>/containers/<id>/idmap", Dir, 0o700, Root, "id-mapped layers attached while a remapped container's overlay is mounted"),
    opaque("<root>/containers/<id>/cp-root-<n>", Dir, 0o700, Root, "a stopped container's root, mounted for `cp`"),
    opaque("<root>/containers/<id>/export-root", Dir, 0o700, Root, "a container's root, mounted for `export`"),
    rule("<root>/volumes", Dir, 0o701, Root, "dockerd's mode: traversed, never listed, on the way to a volume's `_data`"),
    rule("<root>/volumes/<name>", Dir, 0o701, Root, "as volumes"),
    rule("<root>/volumes/<name>/volume.json", File, 0o600, Root, "the volume's labels and options"),
    opaque("<root>/volumes/<name>/_data", Dir, 0o7777, Container, "the volume's files: 0755 when made (the range's root's under `--userns-remap`), then the mode of the image's directory copied in at the first mount, as dockerd"),
    rule("<root>/image-db.json", File, 0o600, Root, "images and tags: metadata root-only, as dockerd's image/"),
    rule("<root>/build-cache.json", File, 0o600, Root, "the build cache's records"),
    rule("<root>/.modes", File, 0o600, Root, "the version of this table the tree was narrowed to at an upgrade"),
    rule("<root>/blobs/sha256/<digest>", File, 0o600, Root, "manifests, configs (with their ENV) and layers"),
    rule("<root>/snapshots", Dir, 0o700, Root, "unpacked layers"),
    opaque("<root>/snapshots/<chain-id>", Dir, 0o7777, Container, "a layer's files with the image's modes (set-id binaries among them), out of others' reach"),
    rule("<root>/builds/<build>/context.tar", File, 0o600, Root, "a build's context past 64 MiB: the client's files"),
    opaque("<root>/builds/<build>/<step>/upper", Dir, 0o755, Root, "a build step's writable layer: the RUN container's `/`"),
    opaque("<root>/builds/<build>/<step>/rootfs", Dir, 0o755, Root, "a build step's root filesystem mount point"),
    opaque("<root>/builds/<build>/<step>/work", Dir, 0o700, Root, "overlayfs's work directory"),
    rule("<root>/builds/<build>/<step>/etc/<file>", File, 0o644, Root, "a RUN container's /etc files, read by its user"),
    rule("<root>/builds/<build>/<step>/heredoc-script", File, 0o755, Root, "a RUN heredoc, run by the step's user"),
    rule("<root>/builds/<build>/<step>/bundle/config.json", File, 0o600, Root, "a RUN step's OCI spec: its ARGs and ENV"),
    rule("<root>/**", Dir, 0o700, Root, "every other directory: blobs, tmp, networks, builds and their parts"),
    rule("<root>/**", File, 0o600, Root, "every other file: networks' records, temporary files of atomic writes"),
    // The exec root (`--exec-root`, /run/berth).
    rule("<exec-root>", Dir, 0o710, RootSocketGroup, "0700 as dockerd's; 0710 with the API socket's group when the socket is in it, so that group reaches the socket and nothing else"),
    rule("<exec-root>/berth.sock", Socket, 0o660, RootSocketGroup, "the API socket: root and the `--group` (default `docker`, as dockerd's `-G`)"),
    rule("<exec-root>/daemon.log", File, 0o600, Root, "the output of a daemon the CLI started"),
    rule("<exec-root>/.modes", File, 0o600, Root, "as the root's"),
    rule("<exec-root>/containers/<id>/runtime.log", File, 0o640, Root, "runc's or crun's `--log` (they make it 0644; the daemon's umask narrows it)"),
    rule("<exec-root>/execs/<exec-id>/runtime.log", File, 0o640, Root, "as a container's"),
    rule("<exec-root>/execs/<exec-id>/process.json", File, 0o600, Root, "an exec's process: its environment"),
    rule("<exec-root>/health/<id>.pid", File, 0o644, Root, "a probe's pid, written by the runtime as runc writes `--pid-file`"),
    rule("<exec-root>/netns/<id>", File, 0o444, Root, "mount point of a network namespace, made 0400; once bound it shows the namespace's own inode (r--r--r--)"),
    rule("<runtime-root>", Dir, 0o700, Root, "berth's runtime state (`<exec-root>/runtime`, `<exec-root>/build-runtime`, `berth runtime --root`), as runc's"),
    rule("<runtime-root>/<id>", Dir, 0o700, Root, "a container's runtime state"),
    rule("<runtime-root>/<id>/state.json", File, 0o600, Root, "the container's spec, with its environment"),
    rule("<runtime-root>/<id>/exec.fifo", Fifo, 0o622, Root, "the container's process, whatever user it runs as, opens it through /proc/self/fd, never by path"),
    rule("<exec-root>/**", Dir, 0o700, Root, "every other directory: monitors' (containers, execs), health, netns"),
    rule("<exec-root>/**", File, 0o600, Root, "every other file: monitors' config.json and state.json, probes' process.json"),
    rule("<exec-root>/**", Socket, 0o600, Root, "every other socket: monitors' attach, control and console sockets; the CRI's"),
    rule("<runtime-root>/**", Dir, 0o700, Root, "every other directory"),
    rule("<runtime-root>/**", File, 0o600, Root, "every other file: temporary files of atomic writes"),
];

/// The pattern form of `rel` (relative to the top of `tree`): `<root>/containers/abc/…`. Under
/// the exec root, `runtime` and `build-runtime` are runtime roots.
pub fn label(tree: Tree, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    let (top, rest) = match tree {
        Tree::Root => ("<root>", rel.as_ref()),
        Tree::RuntimeRoot => ("<runtime-root>", rel.as_ref()),
        Tree::ExecRoot => {
            let runtime = ["runtime", "build-runtime"].iter().find_map(|r| {
                rel.strip_prefix(r)
                    .filter(|s| s.is_empty() || s.starts_with('/'))
            });
            match runtime {
                Some(rest) => ("<runtime-root>", rest.trim_start_matches('/')),
                None => ("<exec-root>", rel.as_ref()),
            }
        }
    };
    if rest.is_empty() {
        top.to_owned()
    } else {
        format!("{top}/{rest}")
    }
}

/// The rule of the path `label` (as [`label`] makes it) of this kind.
pub fn rule_for(label: &str, kind: Kind) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.kind == kind && path_matches(r.path, label))
}

/// The kind of what `meta` describes; None for symlinks and devices, which berth never makes
/// in its own trees.
pub fn kind_of(meta: &Metadata) -> Option<Kind> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        Some(Dir)
    } else if t.is_file() {
        Some(File)
    } else if t.is_socket() {
        Some(Socket)
    } else if t.is_fifo() {
        Some(Fifo)
    } else {
        None
    }
}

fn path_matches(pattern: &str, label: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut comps = label.split('/');
    // The tree (`<root>`, …) is a name, not a placeholder.
    if pat.next() != comps.next() {
        return false;
    }
    loop {
        match (pat.next(), comps.next()) {
            (Some("**"), Some(_)) => return true,
            (Some(p), Some(c)) if component_matches(p, c) => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A component against a pattern in which each `<word>` stands for a non-empty run of
/// characters.
fn component_matches(pattern: &str, name: &str) -> bool {
    let Some(open) = pattern.find('<') else {
        return pattern == name;
    };
    let Some(close) = pattern[open..].find('>').map(|c| open + c) else {
        return pattern == name;
    };
    let (prefix, rest) = (&pattern[..open], &pattern[close + 1..]);
    let Some(tail) = name.strip_prefix(prefix) else {
        return false;
    };
    // At least one character for the placeholder, then the rest of the pattern somewhere.
    (1..=tail.len())
        .filter(|&i| tail.is_char_boundary(i))
        .any(|i| component_matches(rest, &tail[i..]))
}

/// Makes the directory `path` with exactly `mode` (the umask does not narrow it); its parent
/// must exist. An existing directory is kept as it is.
pub fn create_dir(path: &Path, mode: u32) -> std::io::Result<()> {
    match DirBuilder::new().mode(mode).create(path) {
        // mkdir honours the umask (027): bits for the group or others are set again.
        Ok(()) if mode & 0o077 != 0 => std::fs::set_permissions(path, Permissions::from_mode(mode)),
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes `path` and its missing parents, each with exactly `mode`.
pub fn create_dir_all(path: &Path, mode: u32) -> std::io::Result<()> {
    let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
    for dir in missing.into_iter().rev() {
        create_dir(dir, mode)?;
    }
    Ok(())
}

/// Makes a private directory (0700) with its missing parents (0700 too).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// A container's directory: 0700, or 0710 with `group` (a remapped container's range), made or
/// set so (a daemon that starts remapping keeps its older containers' directories).
pub fn own_container_dir(dir: &Path, group: Option<u32>) -> std::io::Result<()> {
    create_dir(dir, 0o700)?;
    set_group(
        dir,
        group.unwrap_or(0),
        if group.is_some() { 0o710 } else { 0o700 },
    )
}

/// Gives `path` root as its owner, `gid` as its group and `mode`, each only where it differs.
pub fn set_group(path: &Path, gid: u32, mode: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.gid() != gid || meta.uid() != 0 {
        std::os::unix::fs::chown(path, Some(0), Some(gid))?;
    }
    if meta.mode() & 0o7777 != mode {
        std::fs::set_permissions(path, Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The daemon's start, before anything else is made: its umask, then its root and exec root
/// (missing parents 0711, as dockerd makes them) with what an older version left in them
/// narrowed to the table's modes (once: see [`MARKER`]). `socket_group` is the API socket's
/// group when the socket is in the exec root.
pub fn prepare(root: &Path, exec_root: &Path, socket_group: Option<u32>) -> Result<(), String> {
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        umask.bits() | DAEMON_UMASK,
    ));
    let made = |dir: &Path, mode: u32| -> std::io::Result<()> {
        if let Some(parent) = dir.parent() {
            create_dir_all(parent, 0o711)?;
        }
        create_dir(dir, mode)
    };
    made(root, 0o710).map_err(|e| format!("create {}: {e}", root.display()))?;
    made(exec_root, 0o700).map_err(|e| format!("create {}: {e}", exec_root.display()))?;
    let group = socket_group.unwrap_or(0);
    set_group(exec_root, group, if group == 0 { 0o700 } else { 0o710 })
        .map_err(|e| format!("set the owner of {}: {e}", exec_root.display()))?;
    for (tree, top) in [(Tree::Root, root), (Tree::ExecRoot, exec_root)] {
        // Once per tree and table: on 1,000 containers the walk takes a large part of a second.
        let marker = top.join(MARKER);
        if std::fs::read_to_string(&marker).is_ok_and(|v| v == TABLE_VERSION) {
            continue;
        }
        narrow(tree, top, Path::new(""));
        crate::files::write_atomic(&marker, TABLE_VERSION.as_bytes())
            .map_err(|e| format!("write {}: {e}", marker.display()))?;
    }
    Ok(())
}

/// The root and its containers' directory with the remapped range's group (root without
/// remapping), once the range is known.
pub fn own_root(root: &Path, remap_gid: Option<u32>) -> Result<(), String> {
    let gid = remap_gid.unwrap_or(0);
    for dir in [root.to_path_buf(), root.join("containers")] {
        create_dir(&dir, 0o710)
            .and_then(|()| set_group(&dir, gid, 0o710))
            .map_err(|e| format!("set the owner of {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Narrows every path below `top` (walked from `rel`) that an older version made wider than its
/// rule. Symlinks are never followed; what a rule calls opaque is left to its owner.
fn narrow(tree: Tree, top: &Path, rel: &Path) {
    let path: PathBuf = top.join(rel);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return;
    };
    let Some(kind) = kind_of(&meta) else {
        return;
    };
    let Some(rule) = rule_for(&label(tree, rel), kind) else {
        return;
    };
    let mode = meta.mode() & 0o7777;
    if mode & !rule.mode != 0 {
        if let Err(e) = std::fs::set_permissions(&path, Permissions::from_mode(mode & rule.mode)) {
            eprintln!("berth daemon: narrow the mode of {}: {e}", path.display());
        }
    }
    if kind != Dir || rule.opaque {
        return;
    }
    for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
        narrow(tree, top, &rel.join(entry.file_name()));
    }
}

/// The group id of `name` (a name in /etc/group, or a number).
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_and_parts_of_names() {
        assert!(path_matches(
            "<root>/containers/<id>",
            "<root>/containers/abc"
        ));
        assert!(!path_matches(
            "<root>/containers/<id>",
            "<root>/containers/abc/x"
        ));
        assert!(path_matches(
            "<root>/containers/<id>/<id>-json.log",
            "<root>/containers/abc/abc-json.log"
        ));
        assert!(!path_matches(
            "<root>/containers/<id>/<id>-json.log",
            "<root>/containers/abc/abc-json.log.1"
        ));
        assert!(path_matches("<root>/**", "<root>/tmp/x/y"));
        assert!(!path_matches("<root>/containers", "<exec-root>/containers"));
        assert!(!path_matches("<root>/**", "<root>"));
        assert!(component_matches("cp-root-<n>", "cp-root-12ab.idmap"));
        assert!(!component_matches("cp-root-<n>", "cp-root-"));
    }

    #[test]
    fn runtime_roots_under_the_exec_root_follow_the_runtime_rules() {
        assert_eq!(
            label(Tree::ExecRoot, Path::new("runtime/abc/state.json")),
            "<runtime-root>/abc/state.json"
        );
        assert_eq!(
            label(Tree::ExecRoot, Path::new("build-runtime")),
            "<runtime-root>"
        );
        assert_eq!(
            label(Tree::ExecRoot, Path::new("runtimes/x")),
            "<exec-root>/runtimes/x"
        );
        let fifo = rule_for("<runtime-root>/abc/exec.fifo", Fifo).map(|r| r.mode);
        assert_eq!(fifo, Some(0o622));
        let secret = rule_for("<root>/containers/abc/config.v2.json", File).map(|r| r.mode);
        assert_eq!(secret, Some(0o600));
    }

    #[test]
    fn every_rule_is_in_security_md() {
        let doc = include_str!("../../../docs/security.md");
        for r in RULES {
            let row = doc_row(r);
            assert!(doc.contains(&row), "docs/security.md lacks the row\n{row}");
        }
    }

    /// A rule as docs/security.md's table shows it: path, kind, owner, mode (its why follows).
    fn doc_row(r: &Rule) -> String {
        let kind = match r.kind {
            Dir => "dir",
            File => "file",
            Socket => "socket",
            Fifo => "fifo",
        };
        let owner = match r.owner {
            Root => "root:root",
            RootRemapGroup => "root:remap group",
            RootContainerGroup => "root:range group",
            RootSocketGroup => "root:socket group",
            ContainerRoot => "root or range root",
            Container => "the container's",
        };
        let mode = match (r.mode, r.opaque) {
            (0o7777, _) => "the image's".to_owned(),
            (m, true) => format!("{m:04o}, below: its own"),
            (m, false) => format!("{m:04o}"),
        };
        format!("| `{}` | {kind} | {owner} | {mode} |", r.path)
    }
}
