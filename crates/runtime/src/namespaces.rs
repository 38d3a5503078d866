//! Which namespaces a container gets: new ones (made by clone), joined ones (setns on a path),
//! and the two that only apply to children (pid, time), which the runtime enters before it forks.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::error::{Error, Result};

#[derive(Debug)]
pub(crate) struct NamespacePlan {
    /// Namespaces clone(2) creates for the init.
    pub clone_flags: CloneFlags,
    /// The cgroup namespace is made after the init joined its cgroup, so that cgroup is its root.
    pub new_cgroupns: bool,
    pub new_time: bool,
    pub new_userns: bool,
    /// A new mount namespace (joined by path or made): without one the spec may ask for no
    /// mount at all (spec.rs), and the root is entered by chroot alone.
    pub new_mountns: bool,
    /// Joined by the runtime itself before the fork (they act on children, or are harmless to it).
    pub join_before_fork: Vec<(CloneFlags, PathBuf)>,
    /// Joined by the init (user first, then mount).
    pub join_in_init: Vec<(CloneFlags, PathBuf)>,
}

pub(crate) fn flag_of(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CLONE_NEWTIME,
    }
}

pub(crate) const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(0x80);

impl NamespacePlan {
    pub(crate) fn new(linux: &Linux) -> Result<NamespacePlan> {
        let mut plan = NamespacePlan {
            clone_flags: CloneFlags::empty(),
            new_cgroupns: false,
            new_time: false,
            new_userns: false,
            new_mountns: false,
            join_before_fork: Vec::new(),
            join_in_init: Vec::new(),
        };
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            let flag = flag_of(ns.typ());
            if ns.typ() == LinuxNamespaceType::Mount {
                plan.new_mountns = true;
            }
            match (ns.path(), ns.typ()) {
                (None, LinuxNamespaceType::Cgroup) => plan.new_cgroupns = true,
                (None, LinuxNamespaceType::Time) => plan.new_time = true,
                (None, LinuxNamespaceType::User) => {
                    plan.new_userns = true;
                    plan.clone_flags |= flag;
                }
                (None, _) => plan.clone_flags |= flag,
                (Some(path), LinuxNamespaceType::User | LinuxNamespaceType::Mount) => {
                    plan.join_in_init.push((flag, path.clone()))
                }
                (Some(path), _) => plan.join_before_fork.push((flag, path.clone())),
            }
        }
        plan.join_in_init
            .sort_by_key(|(f, _)| *f != CloneFlags::CLONE_NEWUSER);
        let joins_userns = plan
            .join_in_init
            .iter()
            .any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER);
        if joins_userns && !plan.clone_flags.is_empty() {
            return Err(Error::Unsupported(
                "joining a user namespace by path while creating other namespaces: they would be \
                 owned by the host's user namespace, not the joined one"
                    .into(),
            ));
        }
        Ok(plan)
    }

    /// The kinds of namespace the runtime itself enters in [`NamespacePlan::enter_before_fork`],
    /// to be restored after the fork.
    pub(crate) fn entered_by_runtime(&self) -> Vec<CloneFlags> {
        let mut flags: Vec<CloneFlags> = self.join_before_fork.iter().map(|(f, _)| *f).collect();
        if self.new_time {
            flags.push(CLONE_NEWTIME);
        }
        flags
    }

    /// The network namespace joined by path, if any (linux.netDevices are moved there).
    pub(crate) fn joined_network(&self) -> Option<&Path> {
        self.join_before_fork
            .iter()
            .find(|(f, _)| *f == CloneFlags::CLONE_NEWNET)
            .map(|(_, p)| p.as_path())
    }

    /// Runs in the runtime right before the fork.
    pub(crate) fn enter_before_fork(&self, linux: &Linux) -> Result<()> {
        for (flag, path) in &self.join_before_fork {
            join(*flag, path)?;
        }
        if self.new_time {
            unshare(CLONE_NEWTIME).map_err(|e| Error::sys("unshare the time namespace", e))?;
            let offsets = linux
                .time_offsets()
                .as_ref()
                .map(|o| {
                    o.iter()
                        .map(|(clock, off)| {
                            format!(
                                "{clock} {} {}\n",
                                off.secs().unwrap_or(0),
                                off.nanosecs().unwrap_or(0)
                            )
                        })
                        .collect::<String>()
                })
                .unwrap_or_default();
            if !offsets.is_empty() {
                std::fs::write("/proc/self/timens_offsets", &offsets)
                    .map_err(|e| Error::io(format!("write time offsets {offsets:?}"), e))?;
            }
        }
        Ok(())
    }

    /// Runs in the init once the runtime let it proceed.
    pub(crate) fn enter_in_init(&self) -> Result<()> {
        for (flag, path) in &self.join_in_init {
            join(*flag, path)?;
        }
        Ok(())
    }
}

/// The runtime's own namespaces of the kinds it enters for a child (a pid or time namespace
/// for its next child, a network, ipc, uts or cgroup namespace joined by path before the fork):
/// saved before and restored right after the fork, so that whatever the runtime does later —
/// its hooks above all, CNI plugins among them — happens in the host's namespaces, as with
/// runc, whose namespace joins all happen in the child.
#[derive(Debug)]
pub(crate) struct Saved {
    saved: Vec<(CloneFlags, OwnedFd)>,
}

impl Saved {
    /// Saves the runtime's namespaces of the kinds in `flags`.
    pub(crate) fn save(flags: &[CloneFlags]) -> Saved {
        let mut saved = Vec::new();
        for &flag in flags {
            let name = match flag {
                CloneFlags::CLONE_NEWPID => "pid",
                CloneFlags::CLONE_NEWNET => "net",
                CloneFlags::CLONE_NEWIPC => "ipc",
                CloneFlags::CLONE_NEWUTS => "uts",
                CloneFlags::CLONE_NEWCGROUP => "cgroup",
                f if f == CLONE_NEWTIME => "time",
                _ => continue,
            };
            let path = format!("/proc/self/ns/{name}");
            if let Ok(fd) = open(
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                saved.push((flag, fd));
            }
        }
        Saved { saved }
    }

    /// Returns to the saved namespaces.
    pub(crate) fn restore(&self) -> Result<()> {
        for (flag, fd) in &self.saved {
            setns(fd.as_fd(), *flag)
                .map_err(|e| Error::sys("return to the runtime's own namespace", e))?;
        }
        Ok(())
    }
}

pub(crate) fn join(flag: CloneFlags, path: &Path) -> Result<()> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open namespace {}", path.display()), e))?;
    join_fd(flag, &fd, path)
}

pub(crate) fn join_fd(flag: CloneFlags, fd: &OwnedFd, what: &Path) -> Result<()> {
    setns(fd.as_fd(), flag).map_err(|e| {
        Error::sys(
            format!("setns {} (fd {})", what.display(), fd.as_raw_fd()),
            e,
        )
    })
}

/// Writes the init's uid and gid maps from the runtime, which holds the privileges to do it.
pub(crate) fn write_id_maps(pid: i32, linux: &Linux) -> Result<()> {
    let render = |maps: &Option<Vec<LinuxIdMapping>>| {
        maps.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let path = format!("/proc/{pid}/{file}");
        let content = render(maps);
        std::fs::write(&path, &content)
            .map_err(|e| Error::io(format!("write {content:?} to {path}"), e))?;
    }
    Ok(())
}

/// The namespaces of a running container, for `exec` to join: (flag, /proc/PID/ns/NAME)
/// for each one that differs from the caller's.
pub(crate) fn of_process(pid: i32) -> Vec<(CloneFlags, PathBuf)> {
    const ORDER: [(&str, CloneFlags); 8] = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("time", CLONE_NEWTIME),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    ORDER
        .iter()
        .filter_map(|(name, flag)| {
            let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).ok()?;
            let meta = std::fs::metadata(&theirs).ok()?;
            use std::os::unix::fs::MetadataExt;
            (meta.ino() != ours.ino() || meta.dev() != ours.dev()).then_some((*flag, theirs))
        })
        .collect()
}

/// A user namespace with these mappings, held by a descriptor: what an id-mapped mount takes.
/// A short-lived child makes it (a process cannot unshare a user namespace for someone else),
/// the runtime writes its maps, keeps the namespace and ends the child.
pub(crate) fn userns_with_maps(
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<OwnedFd> {
    let (ready_rx, ready_tx) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    let (hold_rx, hold_tx) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    // SAFETY: the runtime is single-threaded (its documented precondition); the child only
    // makes raw syscalls and exits.
    let child = unsafe { crate::syscall::clone_process(0) }
        .map_err(|e| Error::sys("fork for a user namespace", e))?;
    let Some(pid) = child else {
        drop(ready_rx);
        drop(hold_tx);
        let ok = unshare(CloneFlags::CLONE_NEWUSER).is_ok();
        let _ = nix::unistd::write(&ready_tx, &[u8::from(ok)]);
        let mut buf = [0u8; 1];
        let _ = nix::unistd::read(hold_rx.as_fd(), &mut buf);
        // SAFETY: ends the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(0) }
    };
    drop(ready_tx);
    drop(hold_rx);
    let result = (|| {
        let mut buf = [0u8; 1];
        let n = nix::unistd::read(ready_rx.as_fd(), &mut buf)
            .map_err(|e| Error::sys("wait for the user namespace", e))?;
        if n != 1 || buf[0] != 1 {
            return Err(Error::sys(
                "unshare a user namespace for an id-mapped mount",
                nix::errno::Errno::EPERM,
            ));
        }
        let render = |maps: &[LinuxIdMapping]| {
            maps.iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect::<String>()
        };
        for (file, maps) in [("uid_map", uid_maps), ("gid_map", gid_maps)] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, render(maps))
                .map_err(|e| Error::io(format!("write {path}"), e))?;
        }
        let path = format!("/proc/{pid}/ns/user");
        open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open {path}"), e))
    })();
    drop(hold_tx);
    let _ = nix::sys::wait::waitpid(pid, None);
    result
}

/// A user namespace mapping `size` ids from `container` to `host`, for uids and gids, held by
/// a descriptor: what an engine id-maps its image layers with. Unlike the rest of the
/// runtime, this may be called from a multi-threaded process: the short-lived child makes
/// raw system calls only.
pub fn id_mapping_namespace(
    (uid_container, uid_host, uid_size): (u32, u32, u32),
    (gid_container, gid_host, gid_size): (u32, u32, u32),
) -> Result<OwnedFd> {
    let map = |container: u32, host: u32, size: u32| {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(container)
            .host_id(host)
            .size(size)
            .build()
            .map_err(|e| Error::InvalidConfig(format!("id mapping: {e}")))
    };
    userns_with_maps(
        &[map(uid_container, uid_host, uid_size)?],
        &[map(gid_container, gid_host, gid_size)?],
    )
}
