//! The container's root: its mounts, /dev, the switch to it with pivot_root, then masked and
//! read-only paths. Runs in the init, inside the container's new mount namespace.
//!
//! Every destination is resolved with openat2(RESOLVE_IN_ROOT) and mounted through its
//! `/proc/self/fd` path, so a symlink planted in the rootfs can never send a mount to the host.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{chdir, pivot_root, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::cgroups::CgroupMountSource;
use crate::error::{Error, Result};
use crate::syscall::{self, MountAttr};

/// What the init knows when it builds the root.
pub(crate) struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup_sources: &'a [CgroupMountSource],
    /// A new user namespace: device nodes must be bind mounts, mknod is refused there.
    pub in_userns: bool,
    pub cgroupns: bool,
    /// Detached, id-mapped mount trees the runtime prepared, by index in `spec.mounts`.
    pub idmapped: &'a [(usize, OwnedFd)],
}

/// Mount options split into what mount(2) and mount_setattr(2) take.
#[derive(Debug)]
struct MountOptions {
    flags: MsFlags,
    propagation: Vec<MsFlags>,
    recursive_set: u64,
    recursive_clear: u64,
    data: Vec<String>,
    tmpcopyup: bool,
    idmap: Option<bool>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            recursive_set: 0,
            recursive_clear: 0,
            data: Vec::new(),
            tmpcopyup: false,
            idmap: None,
        }
    }
}

/// Makes the host's mounts invisible to changes in here, then builds every mount of the spec
/// inside the rootfs, in the spec's order, the cgroup mounts among them when `cgroups` (else
/// they come later, from [`mount_cgroups`]). Stops before pivot_root so createContainer hooks
/// can still run.
pub(crate) fn prepare(plan: &RootfsPlan<'_>, cgroups: bool) -> Result<()> {
    let linux = plan.spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => propagation_flag(p)
            .ok_or_else(|| Error::InvalidConfig(format!("unknown rootfsPropagation {p:?}")))?,
    };
    // Mount events inside the container must never propagate to the host: the mount holding
    // the rootfs is made private below, before anything is mounted into it. A shared root
    // propagation is applied as given (runc's order), so that the host's shared mounts stay
    // peers of theirs in here and a shared bind of one is in the host's peer group; a
    // recursive slave first would cut that tie.
    let initial = propagation;
    mount(None::<&str>, "/", None::<&str>, initial, None::<&str>).map_err(|e| {
        Error::sys(
            "make / non-propagating in the container's mount namespace",
            e,
        )
    })?;
    make_parent_mount_private(plan.rootfs)?;
    mount(
        Some(plan.rootfs),
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        Error::sys(
            format!("bind mount rootfs {} onto itself", plan.rootfs.display()),
            e,
        )
    })?;

    let root = open(
        plan.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open rootfs {}", plan.rootfs.display()), e))?;

    let mounts = plan.spec.mounts().as_deref().unwrap_or_default();
    for (index, m) in mounts.iter().enumerate() {
        if is_cgroup_mount(m) {
            if cgroups {
                mount_cgroup(plan, root.as_fd(), m, &parse_options(m))?;
            }
            continue;
        }
        mount_one(plan, root.as_fd(), index, m)?;
    }
    let dev_is_host_bind = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev") && parse_options(m).flags.contains(MsFlags::MS_BIND)
    });
    if !dev_is_host_bind {
        create_devices(plan, root.as_fd())?;
        create_dev_links(root.as_fd())?;
    }
    Ok(())
}

/// The spec's cgroup mounts when they had to wait until the init is in its cgroup (and, with a
/// cgroup namespace, inside it): an init in a new user namespace is moved there by the runtime
/// while it builds the rest of its root.
pub(crate) fn mount_cgroups(plan: &RootfsPlan<'_>) -> Result<()> {
    let mounts = plan.spec.mounts().as_deref().unwrap_or_default();
    if !mounts.iter().any(is_cgroup_mount) {
        return Ok(());
    }
    let root = open(
        plan.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open rootfs {}", plan.rootfs.display()), e))?;
    for m in mounts.iter().filter(|m| is_cgroup_mount(m)) {
        mount_cgroup(plan, root.as_fd(), m, &parse_options(m))?;
    }
    Ok(())
}

fn is_cgroup_mount(m: &Mount) -> bool {
    matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
}

/// Copies a directory's entries (files, directories, symlinks, with modes and owners).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if meta.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode()))?;
        } else if meta.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

/// Switches the process's root to the rootfs and drops every view of the host's mounts.
pub(crate) fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        hide_host_proc_and_sys(rootfs)?;
    }
    chdir(rootfs).map_err(|e| Error::sys(format!("chdir to rootfs {}", rootfs.display()), e))?;
    if no_pivot {
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| Error::sys("move the rootfs mount onto / (--no-pivot)", e))?;
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot into the rootfs", e))?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "."
        // then removes the old root without needing a directory for it inside the rootfs.
        let old_root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys("open the old root", e))?;
        pivot_root(".", ".")
            .map_err(|e| Error::sys(format!("pivot_root to {}", rootfs.display()), e))?;
        // "." must be the old root, stacked on the new one, and only it: the kernel gives no
        // promise of where the cwd is after pivot_root, and a recursive slave of the new root
        // would undo the propagation of the container's shared binds.
        nix::unistd::fchdir(&old_root).map_err(|e| Error::sys("fchdir to the old root", e))?;
        drop(old_root);
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::sys("make the old root a slave before detaching it", e))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("detach the old root", e))?;
    }
    chdir("/").map_err(|e| Error::sys("chdir to / in the container", e))?;
    Ok(())
}

/// Without a mount namespace (and so without a mount in the spec): the rootfs becomes the
/// root by chroot alone, changing no mount of the host's.
pub(crate) fn enter_without_mounts(rootfs: &Path) -> Result<()> {
    chdir(rootfs).map_err(|e| Error::sys(format!("chdir to rootfs {}", rootfs.display()), e))?;
    nix::unistd::chroot(".").map_err(|e| Error::sys("chroot into the rootfs", e))?;
    chdir("/").map_err(|e| Error::sys("chdir to / in the container", e))
}

/// `--no-pivot` leaves the host's mounts in the container's mount namespace, under the moved
/// root: a fully visible proc or sysfs there would let the container mount a new procfs or
/// sysfs (the kernel allows it when one is fully visible in the namespace). Like runc, detach
/// every host proc and sysfs outside the rootfs first, or cover it where it cannot be detached.
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo (--no-pivot)", e))?;
    let mut targets = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(root), Some(point), Some(fstype)) =
            (fields.get(3), fields.get(4), fields.get(dash + 1))
        else {
            continue;
        };
        let point = crate::mountinfo::unescape(point);
        if *root == "/" && matches!(*fstype, "proc" | "sysfs") && !point.starts_with(rootfs) {
            targets.push(point);
        }
    }
    for point in targets {
        let what = |op: &str| format!("{op} the host's {} (--no-pivot)", point.display());
        match mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(what("make a slave of"), e)),
        }
        match umount2(&point, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                match mount(
                    Some("tmpfs"),
                    &point,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    None::<&str>,
                ) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(Error::sys(what("cover"), e)),
                }
            }
            Err(e) => return Err(Error::sys(what("detach"), e)),
        }
    }
    Ok(())
}

/// After pivot_root, as runc's finalizeRootfs: the tmpfs mounts and /dev that asked for "ro"
/// become read-only now (they stayed writable while their mount points and device nodes were
/// made), then the root if `root.readonly`, then a shared root propagation.
pub(crate) fn finish_mounts(spec: &Spec) -> Result<()> {
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if delays_readonly(m) && parse_options(m).flags.contains(MsFlags::MS_RDONLY) {
            let dest = m.destination().to_string_lossy();
            remount_readonly(&dest)?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_readonly("/")?;
    }
    let linux = spec.linux().as_ref();
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        if let Some(flag) = propagation_flag(p).filter(|f| f.contains(MsFlags::MS_SHARED)) {
            mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
                .map_err(|e| Error::sys(format!("set rootfsPropagation {p} on /"), e))?;
        }
    }
    Ok(())
}

/// Read-only paths, then masked paths (runc's order: a path in both ends up masked).
pub(crate) fn restrict_paths(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        readonly_path(path)?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        mask_path(path)?;
    }
    Ok(())
}

/// A tmpfs, or anything mounted on /dev, is mounted writable and made read-only at the end:
/// mount points, device nodes and links are still to be made inside.
fn delays_readonly(m: &Mount) -> bool {
    m.typ().as_deref() == Some("tmpfs") || m.destination() == Path::new("/dev")
}

fn mount_one(plan: &RootfsPlan<'_>, root: BorrowedFd<'_>, index: usize, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let mut opts = parse_options(m);
    if delays_readonly(m) {
        // Made read-only by finish_mounts, once what belongs inside is there.
        opts.flags.remove(MsFlags::MS_RDONLY);
    }
    let is_bind = typ == "bind" || opts.flags.contains(MsFlags::MS_BIND);
    let what = |op: &str| {
        format!(
            "{op} {} (type {typ:?}) on {}",
            source_display(m),
            dest.display()
        )
    };

    if opts.idmap.is_some() {
        let tree = plan
            .idmapped
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd);
        let tree =
            tree.ok_or_else(|| Error::Init(format!("no id-mapped tree for {}", dest.display())))?;
        let target = create_in_root(root, dest, true)?;
        return syscall::move_mount_to_fd(tree.as_fd(), target.as_fd())
            .map_err(|e| Error::sys(what("attach the id-mapped mount of"), e));
    }
    let source = m.source().as_deref().map(|s| {
        if is_bind && s.is_relative() {
            plan.bundle.join(s)
        } else {
            s.to_path_buf()
        }
    });
    let source_is_dir = match (&source, is_bind) {
        (Some(s), true) => std::fs::metadata(s)
            .map_err(|e| Error::io(format!("bind mount source {}", s.display()), e))?
            .is_dir(),
        _ => true,
    };
    // runc gives a tmpfs the mode of the directory it covers, when there was one.
    let covered_mode = if typ == "tmpfs" {
        existing_mode(root, dest)
    } else {
        None
    };
    let target = create_in_root(root, dest, source_is_dir)?;
    let target_path = fd_path(&target);

    if is_bind {
        let source = source.ok_or_else(|| {
            Error::InvalidConfig(format!("bind mount on {} has no source", dest.display()))
        })?;
        bind_mount(&source, &target, &opts).map_err(|e| Error::sys(what("bind mount"), e))?;
    } else {
        let data = opts.data.join(",");
        if opts.tmpcopyup && typ != "tmpfs" {
            return Err(Error::InvalidConfig(format!(
                "tmpcopyup on {}: only a tmpfs mount can take it",
                dest.display()
            )));
        }
        let src = m
            .source()
            .as_deref()
            .map(Path::as_os_str)
            .unwrap_or(typ.as_ref());
        let result = mount(
            Some(src),
            target_path.as_str(),
            Some(typ),
            opts.flags,
            (!data.is_empty()).then_some(data.as_str()),
        );
        match result {
            // Without a network namespace of its own, a container may not mount sysfs (the
            // kernel ties sysfs to the netns): show the host's, read-only, as runc does.
            Err(Errno::EPERM) if typ == "sysfs" => bind_mount(
                Path::new("/sys"),
                &target,
                &MountOptions {
                    flags: MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | opts.flags,
                    ..MountOptions::default()
                },
            )
            .map_err(|e| Error::sys(what("bind mount the host's /sys for"), e))?,
            r => r.map_err(|e| Error::sys(what("mount"), e))?,
        }
        if opts.tmpcopyup {
            // `target` still names the directory the tmpfs now covers: copy what the image had
            // there into the tmpfs, as runc and podman's volumes expect.
            let mounted = create_in_root(root, dest, true)?;
            copy_tree(Path::new(&target_path), Path::new(&fd_path(&mounted)))
                .map_err(|e| Error::io(what("copy the old contents into"), e))?;
        }
        if let Some(mode) = covered_mode {
            let mounted = create_in_root(root, dest, true)?;
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                fd_path(&mounted).as_str(),
                Mode::from_bits_truncate(mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| Error::sys(what("give the directory's mode to"), e))?;
        }
    }
    if opts.propagation.is_empty() && opts.recursive_set == 0 && opts.recursive_clear == 0 {
        return Ok(());
    }
    // The descriptor still names the directory under the new mount: resolve the path again to
    // reach the mount itself.
    let mounted = create_in_root(root, dest, source_is_dir)?;
    for flag in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(&mounted).as_str(),
            None::<&str>,
            *flag,
            None::<&str>,
        )
        .map_err(|e| Error::sys(what("set propagation of"), e))?;
    }
    if opts.recursive_set != 0 || opts.recursive_clear != 0 {
        let attr = MountAttr {
            attr_set: opts.recursive_set,
            attr_clr: opts.recursive_clear,
            propagation: 0,
            userns_fd: 0,
        };
        syscall::mount_setattr(mounted.as_fd(), true, &attr)
            .map_err(|e| Error::sys(what("set recursive attributes of"), e))?;
    }
    Ok(())
}

/// A bind mount made with the new mount API: the tree is cloned detached, its flags set on the
/// clone, then attached in one step, so the container never sees it writable even for an instant,
/// and flags the source has locked (under a user namespace) are kept by the kernel itself.
fn bind_mount(source: &Path, target: &OwnedFd, opts: &MountOptions) -> Result<(), Errno> {
    let recursive = opts.flags.contains(MsFlags::MS_REC);
    let c = CString::new(source.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut flags = syscall::OPEN_TREE_CLONE;
    if recursive {
        flags |= syscall::AT_RECURSIVE;
    }
    let tree = syscall::open_tree(libc::AT_FDCWD, &c, flags)?;
    set_bind_flags(&tree, opts.flags)?;
    syscall::move_mount_to_fd(tree.as_fd(), target.as_fd())
}

/// The id-mapped mounts of the spec (`idmap`/`ridmap` on bind mounts), prepared by the runtime
/// before the fork, in the host's user namespace: a process inside a new user namespace may not
/// idmap the host's mounts. Returns each tree with its index in `spec.mounts`.
pub(crate) fn prepare_idmapped(spec: &Spec, bundle: &Path) -> Result<Vec<(usize, OwnedFd)>> {
    let linux = spec.linux().as_ref();
    let mut trees = Vec::new();
    for (index, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let opts = parse_options(m);
        let Some(recursive) = opts.idmap else {
            continue;
        };
        let dest = m.destination().display();
        let uid_maps = m
            .uid_mappings()
            .as_ref()
            .or(linux.and_then(|l| l.uid_mappings().as_ref()));
        let gid_maps = m
            .gid_mappings()
            .as_ref()
            .or(linux.and_then(|l| l.gid_mappings().as_ref()));
        let (Some(uid_maps), Some(gid_maps)) = (uid_maps, gid_maps) else {
            return Err(Error::InvalidConfig(format!(
                "id-mapped mount on {dest} needs uidMappings and gidMappings (on the mount or in linux)"
            )));
        };
        let source = m.source().as_deref().ok_or_else(|| {
            Error::InvalidConfig(format!("id-mapped mount on {dest} has no source"))
        })?;
        let source = if source.is_relative() {
            bundle.join(source)
        } else {
            source.to_path_buf()
        };
        let userns = crate::namespaces::userns_with_maps(uid_maps, gid_maps)?;
        let c = cstring(&source)?;
        let mut flags = syscall::OPEN_TREE_CLONE;
        if recursive || opts.flags.contains(MsFlags::MS_REC) {
            flags |= syscall::AT_RECURSIVE;
        }
        let what = |op: &str| {
            format!(
                "{op} {} for the id-mapped mount on {dest}",
                source.display()
            )
        };
        let tree = syscall::open_tree(libc::AT_FDCWD, &c, flags)
            .map_err(|e| Error::sys(what("clone"), e))?;
        let attr = MountAttr {
            attr_set: syscall::MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: u64::try_from(userns.as_raw_fd()).unwrap_or(0),
        };
        syscall::mount_setattr(tree.as_fd(), recursive, &attr).map_err(|e| {
            Error::sys(
                what("idmap (does its filesystem support id-mapped mounts?)"),
                e,
            )
        })?;
        set_bind_flags(&tree, opts.flags).map_err(|e| Error::sys(what("set flags of"), e))?;
        trees.push((index, tree));
    }
    Ok(trees)
}

/// Puts a bind mount's own flags (ro, nosuid, atime…) on a detached tree's top mount.
fn set_bind_flags(tree: &OwnedFd, flags: MsFlags) -> Result<(), Errno> {
    let (set, clear) = per_mount_attrs(flags);
    if set == 0 && clear == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    syscall::mount_setattr(tree.as_fd(), false, &attr)
}

/// MS_* flags of a bind mount as mount_setattr attributes: (set, clear).
fn per_mount_attrs(flags: MsFlags) -> (u64, u64) {
    use syscall::*;
    let mut set = 0;
    let mut clear = 0;
    for (ms, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    ] {
        if flags.contains(ms) {
            set |= attr;
        }
    }
    let atime = if flags.contains(MsFlags::MS_NOATIME) {
        Some(MOUNT_ATTR_NOATIME)
    } else if flags.contains(MsFlags::MS_STRICTATIME) {
        Some(MOUNT_ATTR_STRICTATIME)
    } else if flags.contains(MsFlags::MS_RELATIME) {
        Some(MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    if let Some(a) = atime {
        set |= a;
        clear |= MOUNT_ATTR__ATIME;
    }
    (set, clear)
}

fn locked_flags(target: &str) -> Result<MsFlags, Errno> {
    let fd = open(target, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    let st = fstatvfs(&fd)?;
    let mut flags = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if st.flags().contains(fs) {
            flags |= ms;
        }
    }
    Ok(flags)
}

fn mount_cgroup(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    m: &Mount,
    opts: &MountOptions,
) -> Result<()> {
    let dest = m.destination();
    let target = create_in_root(root, dest, true)?;
    let target_path = fd_path(&target);
    let err = |op: String| move |e| Error::sys(op, e);
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    let unified_only =
        plan.cgroup_sources.len() == 1 && plan.cgroup_sources[0].controllers.is_empty();
    if unified_only {
        if plan.cgroupns {
            return mount(
                Some("cgroup2"),
                target_path.as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(err(format!("mount cgroup2 on {}", dest.display())));
        }
        let bind = MountOptions {
            flags: opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
            ..MountOptions::default()
        };
        return bind_mount(&plan.cgroup_sources[0].host_dir, &target, &bind).map_err(err(format!(
            "bind the container's cgroup on {}",
            dest.display()
        )));
    }
    // v1 or hybrid: a tmpfs holding one directory per v1 hierarchy, in the host's order, each
    // a bind mount of the container's own cgroup there, as runc lays it out (and like runc,
    // the tmpfs itself stays writable, the hierarchies read-only as asked; a hybrid host's
    // cgroup2 tree is not shown).
    mount(
        Some("tmpfs"),
        target_path.as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(err(format!(
        "mount the tmpfs for cgroups on {}",
        dest.display()
    )))?;
    for src in plan.cgroup_sources.iter().filter(|s| !s.is_v2) {
        let name = if src.controllers.is_empty() {
            "unified"
        } else {
            src.controllers.as_str()
        };
        let sub = dest.join(name.strip_prefix("name=").unwrap_or(name));
        let dir = create_in_root(root, &sub, true)?;
        let bind = MountOptions {
            flags: flags | MsFlags::MS_BIND,
            ..MountOptions::default()
        };
        bind_mount(&src.host_dir, &dir, &bind).map_err(err(format!(
            "bind cgroup {} on {}",
            src.host_dir.display(),
            sub.display()
        )))?;
        if name.contains(',') {
            let parent = open_dir_in_root(root, dest)?;
            for part in name.split(',') {
                // cpu -> cpu,cpuacct, as every distribution links them.
                match nix::unistd::symlinkat(name, parent.as_fd(), part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(Error::sys(
                            format!("link {part} to {name} in {}", dest.display()),
                            e,
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

/// runc's default device nodes, which every container gets, then the spec's own.
fn create_devices(plan: &RootfsPlan<'_>, root: BorrowedFd<'_>) -> Result<()> {
    // In runc's order (in a user namespace, where they are bind mounts, it shows).
    const DEFAULTS: [(&str, u64, u64); 6] = [
        ("/dev/null", 1, 3),
        ("/dev/random", 1, 8),
        ("/dev/full", 1, 7),
        ("/dev/tty", 5, 0),
        ("/dev/zero", 1, 5),
        ("/dev/urandom", 1, 9),
    ];
    let spec_devices = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    for (path, major, minor) in DEFAULTS {
        if spec_devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            plan,
            root,
            Path::new(path),
            SFlag::S_IFCHR,
            major,
            minor,
            0o666,
            0,
            0,
        )?;
    }
    for d in spec_devices {
        create_spec_device(plan, root, d)?;
    }
    Ok(())
}

fn create_spec_device(plan: &RootfsPlan<'_>, root: BorrowedFd<'_>, d: &LinuxDevice) -> Result<()> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::InvalidConfig(format!(
                "device {} has type \"a\", which only cgroup rules may use",
                d.path().display()
            )))
        }
    };
    if !d.path().starts_with("/dev") {
        return Err(Error::InvalidConfig(format!(
            "device {} is not under /dev",
            d.path().display()
        )));
    }
    make_device(
        plan,
        root,
        d.path(),
        kind,
        u64::try_from(d.major()).unwrap_or(0),
        u64::try_from(d.minor()).unwrap_or(0),
        d.file_mode().unwrap_or(0o666),
        d.uid().unwrap_or(0),
        d.gid().unwrap_or(0),
    )
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let parent = open_dir_in_root(root, path.parent().unwrap_or(Path::new("/dev")))?;
    let name = path.file_name().unwrap_or_default();
    let at = |op: &str, e| Error::sys(format!("{op} device {}", path.display()), e);
    if plan.in_userns {
        // mknod is refused in a user namespace: bind the host's node over an empty file.
        let target = create_in_root(root, path, false)?;
        return mount(
            Some(path),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| at("bind mount the host's", e));
    }
    let full = format!(
        "/proc/self/fd/{}/{}",
        parent.as_raw_fd(),
        name.to_string_lossy()
    );
    match std::fs::remove_file(&full) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("replace device {}", path.display()), e)),
    }
    let perm = Mode::from_bits_truncate(mode & 0o7777);
    mknod(
        full.as_str(),
        kind,
        perm,
        libc::makedev(major as u32, minor as u32),
    )
    .map_err(|e| at("mknod", e))?;
    // mknod honours the umask; the spec's mode is the final one.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        full.as_str(),
        perm,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| at("chmod", e))?;
    let node = open(
        full.as_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| at("open", e))?;
    nix::unistd::fchownat(
        node.as_fd(),
        "",
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .map_err(|e| at("chown", e))?;
    Ok(())
}

fn create_dev_links(root: BorrowedFd<'_>) -> Result<()> {
    let dev = open_dir_in_root(root, Path::new("/dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let has_pts = nix::sys::stat::fstatat(
        dev.as_fd(),
        "pts/ptmx",
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok();
    if has_pts {
        // The container's ptmx must be its own devpts instance's, never the host's.
        match nix::unistd::unlinkat(dev.as_fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::sys(
                    "remove /dev/ptmx before linking it to pts/ptmx",
                    e,
                ))
            }
        }
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name} -> {target}"), e)),
        }
    }
    Ok(())
}

/// Masks what `path` names in the container (a symlink is followed, as runc follows it, inside
/// the container's root); a path that names nothing, a dangling symlink included, has nothing
/// to hide and is skipped, as runc skips it.
fn mask_path(path: &str) -> Result<()> {
    let fd = match open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("open masked path {path}"), e)),
    };
    let st = nix::sys::stat::fstat(&fd)
        .map_err(|e| Error::sys(format!("stat masked path {path}"), e))?;
    let target = fd_path(&fd);
    let result = if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        // An empty read-only tmpfs (no size: nothing can be written to it anyway).
        mount(
            Some("tmpfs"),
            target.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    result.map_err(|e| Error::sys(format!("mask {path}"), e))
}

fn readonly_path(path: &str) -> Result<()> {
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("bind readonly path {path}"), e)),
    }
    remount_readonly(path)
}

fn remount_readonly(path: &str) -> Result<()> {
    let locked = locked_flags(path).map_err(|e| Error::sys(format!("statvfs {path}"), e))?;
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
        None::<&str>,
    )
    .map_err(|e| Error::sys(format!("remount {path} read-only"), e))
}

/// pivot_root refuses a new root whose parent mount is shared: make that one mount private.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let mut dir = rootfs.to_path_buf();
    loop {
        match mount(
            None::<&str>,
            &dir,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            // EINVAL: not a mount point; try its parent.
            Err(Errno::EINVAL) if dir.pop() => continue,
            Err(e) => {
                return Err(Error::sys(
                    format!("make the mount holding {} private", rootfs.display()),
                    e,
                ))
            }
        }
    }
}

/// Opens `path` inside `root`, creating what is missing: directories along the way, and the
/// last component as a directory or an empty file. Returns an O_PATH descriptor to it.
fn create_in_root(root: BorrowedFd<'_>, path: &Path, dir: bool) -> Result<OwnedFd> {
    let c = cstring(path)?;
    match syscall::open_in_root(root, &c, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::sys(
                format!("resolve {} in the rootfs", path.display()),
                e,
            ))
        }
    }
    let parent_path = path.parent().unwrap_or(Path::new("/"));
    let parent = open_dir_in_root(root, parent_path)?;
    let name = path.file_name().ok_or_else(|| {
        Error::InvalidConfig(format!("mount destination {} has no name", path.display()))
    })?;
    let made = if dir {
        nix::sys::stat::mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755))
    } else {
        mknod_regular(parent.as_fd(), name)
    };
    match made {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => {
            return Err(Error::sys(
                format!("create {} in the rootfs", path.display()),
                e,
            ))
        }
    }
    syscall::open_in_root(root, &c, libc::O_PATH)
        .map_err(|e| Error::sys(format!("resolve {} in the rootfs", path.display()), e))
}

/// The permission bits of `path` in the root when it is an existing directory.
fn existing_mode(root: BorrowedFd<'_>, path: &Path) -> Option<u32> {
    let c = cstring(path).ok()?;
    let fd = syscall::open_in_root(root, &c, libc::O_PATH | libc::O_DIRECTORY).ok()?;
    let st = nix::sys::stat::fstat(&fd).ok()?;
    Some(st.st_mode & 0o7777)
}

fn open_dir_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    let mut current = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => current.push(name),
            Component::ParentDir => {
                current.pop();
            }
            _ => continue,
        }
        let c = cstring(&current)?;
        match syscall::open_in_root(root, &c, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::sys(
                    format!("resolve {} in the rootfs", current.display()),
                    e,
                ))
            }
        }
        let parent = open_dir_in_root(root, current.parent().unwrap_or(Path::new("/")))?;
        match nix::sys::stat::mkdirat(
            parent.as_fd(),
            name_of(&current),
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::sys(
                    format!("mkdir {} in the rootfs", current.display()),
                    e,
                ))
            }
        }
    }
    let c = cstring(&current)?;
    syscall::open_in_root(root, &c, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| {
        Error::sys(
            format!("open directory {} in the rootfs", current.display()),
            e,
        )
    })
}

fn name_of(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or_default()
}

fn mknod_regular(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> Result<(), Errno> {
    nix::sys::stat::mknodat(
        dir,
        name,
        SFlag::S_IFREG,
        Mode::from_bits_truncate(0o644),
        0,
    )
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig(format!("path {} contains a NUL byte", path.display())))
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn source_display(m: &Mount) -> String {
    m.source()
        .as_deref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| "none".into())
}

fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

fn parse_options(m: &Mount) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in m.options().as_deref().unwrap_or_default() {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            "idmap" => {
                o.idmap = Some(false);
                continue;
            }
            "ridmap" => {
                o.idmap = Some(true);
                continue;
            }
            other => {
                if let Some(flag) = propagation_flag(other) {
                    o.propagation.push(flag);
                } else if let Some((set, clear)) = recursive_attr(other) {
                    o.recursive_set |= set;
                    o.recursive_clear |= clear;
                } else {
                    o.data.push(other.to_owned());
                }
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
    }
    o
}

/// The recursive mount attributes of runtime-spec 1.1 (`rro`, `rnosuid`, …): (set, clear).
fn recursive_attr(name: &str) -> Option<(u64, u64)> {
    use syscall::*;
    Some(match name {
        "rro" => (MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, MOUNT_ATTR_RDONLY),
        "rnosuid" => (MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, MOUNT_ATTR_NOSUID),
        "rnodev" => (MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, MOUNT_ATTR_NODEV),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
        "rnorelatime" => (0, MOUNT_ATTR__ATIME),
        "ratime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
        "rnoatime" => (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
        "rstrictatime" => (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn opts(list: &[&str]) -> MountOptions {
        let m = MountBuilder::default()
            .destination("/x")
            .options(list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .expect("mount");
        parse_options(&m)
    }

    #[test]
    fn options_split_into_flags_data_and_attrs() {
        let o = opts(&[
            "nosuid",
            "noexec",
            "mode=755",
            "size=65536k",
            "rro",
            "rprivate",
        ]);
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC));
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        assert_eq!(o.recursive_set, syscall::MOUNT_ATTR_RDONLY);
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let o = opts(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        let o = opts(&["rbind", "ro"]);
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
    }
}
