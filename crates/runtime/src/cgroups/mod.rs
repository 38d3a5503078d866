//! The container's cgroup: where it lives in each hierarchy, and the operations the runtime
//! performs on it (create, join, limit, freeze, list, remove).
//!
//! Hosts come in three shapes: cgroup v1 (one hierarchy per controller or group of
//! controllers), pure v2 (one unified tree) and hybrid (v1 hierarchies plus a v2 tree that
//! holds whatever controllers v1 did not claim, often none or only `hugetlb`). The layout is
//! therefore detected per controller from `/proc/self/mountinfo` and `/proc/self/cgroup`: a
//! controller lives on v1 if a v1 hierarchy carries it, else on v2 if the v2 root offers it.
//!
//! A [`Cgroup`] is only the resolved directories; it is serialized into the container's state
//! file so later commands (`pause`, `delete`, `update`) act on the same directories without
//! re-reading the layout.

mod devices;
mod devices_bpf;
mod files;
mod layout;
mod oom;
mod resources;
mod stats;
mod v1;
mod v2;

pub use oom::OomEvent;
pub use stats::Stats;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};
use serde::{Deserialize, Serialize};

/// The container's cgroup: one directory per mounted v1 hierarchy, plus its directory in the
/// v2 tree when the host has one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    v1: Vec<V1Dir>,
    v2: Option<V2Dir>,
}

/// The hierarchies a new process joined by itself, which [`Cgroup::add_process`] skips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Joined {
    /// Through its own [`Cgroup::join_v1_self`].
    pub v1: bool,
    /// Through clone3's CLONE_INTO_CGROUP ([`Cgroup::clone_target`]).
    pub v2: bool,
}

/// What the OCI `cgroup` mount type shows inside the container for one hierarchy.
///
/// `controllers` is the hierarchy's name as the host mounts it: `"cpu,cpuacct"`, `"memory"`,
/// `"name=systemd"` (mounted as `systemd`), `"unified"` for the v2 tree of a hybrid host, or
/// `""` for the single tree of a pure v2 host (mounted at `/sys/fs/cgroup` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMountSource {
    pub controllers: String,
    pub host_dir: PathBuf,
    pub is_v2: bool,
}

/// Everything that can go wrong while resolving, creating, configuring or removing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A file describing the host's cgroup layout could not be read.
    #[error("read {}: {}", path.display(), errno_text(*errno))]
    ReadLayout { path: PathBuf, errno: Errno },

    /// Neither a v1 hierarchy nor a cgroup2 tree is mounted.
    #[error("no cgroup hierarchy is mounted (no cgroup or cgroup2 entry in /proc/self/mountinfo)")]
    NoHierarchy,

    /// A relative cgroupsPath needs the caller's own cgroup, which the kernel did not list.
    #[error("cannot resolve relative cgroupsPath {path:?}: {reason}")]
    OwnCgroupUnknown { path: PathBuf, reason: String },

    /// `slice:prefix:name` is what runc's systemd driver takes; berth writes cgroupfs itself.
    #[error("linux.cgroupsPath {path:?} is in systemd form (slice:prefix:name), but berth has no systemd cgroup driver: use a path such as \"/berth/<id>\"")]
    SystemdPath { path: PathBuf },

    /// The cgroupsPath or container id would put the cgroup somewhere it must not be.
    #[error("invalid linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },

    /// mkdir of a cgroup directory failed.
    #[error("create cgroup {}: {}", path.display(), errno_text(*errno))]
    Create { path: PathBuf, errno: Errno },

    /// The kernel refused a value written to a cgroup file.
    #[error("write {value:?} to {}: {}{}", path.display(), errno_text(*errno), hint_text(hint))]
    Write {
        path: PathBuf,
        value: String,
        errno: Errno,
        hint: &'static str,
    },

    /// A cgroup directory could not be opened.
    #[error("open cgroup {}: {}", path.display(), errno_text(*errno))]
    Open { path: PathBuf, errno: Errno },

    /// A cgroup file could not be read.
    #[error("read {}: {}", path.display(), errno_text(*errno))]
    Read { path: PathBuf, errno: Errno },

    /// A cgroup file held something other than what the kernel documents.
    #[error("unexpected content {content:?} in {}", path.display())]
    Parse { path: PathBuf, content: String },

    /// rmdir of a cgroup directory failed (after retrying on EBUSY).
    #[error("remove cgroup {}: {}{}", path.display(), errno_text(*errno), hint_text(hint))]
    Remove {
        path: PathBuf,
        errno: Errno,
        hint: &'static str,
    },

    /// The spec sets a resource whose controller this host does not offer.
    #[error(
        "{resource} is set, but the {controller} cgroup controller is not available on this host"
    )]
    ControllerUnavailable {
        controller: &'static str,
        resource: &'static str,
    },

    /// The spec sets a resource that the host's cgroup version cannot express.
    #[error("{resource} is not supported on cgroup {version}")]
    Unsupported {
        resource: &'static str,
        version: &'static str,
    },

    /// A resource value is out of its documented range or malformed.
    #[error("invalid {resource} {value:?}: {reason}")]
    InvalidResource {
        resource: &'static str,
        value: String,
        reason: &'static str,
    },

    /// The kernel accepted a value but stored another (cpu.shares is clamped silently).
    #[error("{} was set to {wanted} but the kernel keeps {got}: {reason}", path.display())]
    Clamped {
        path: PathBuf,
        wanted: u64,
        got: u64,
        reason: &'static str,
    },

    /// linux.resources.unified names a file that cannot be written.
    #[error("linux.resources.unified key {key:?}: {reason}")]
    Unified { key: String, reason: String },

    /// The freezer did not reach the requested state in time; the cgroup was thawed again.
    #[error("{} did not reach {wanted} within {timeout_ms} ms (last state {last:?}); the cgroup was left thawed", path.display())]
    FreezeTimeout {
        path: PathBuf,
        wanted: &'static str,
        last: String,
        timeout_ms: u64,
    },

    /// A bpf(2) command for the v2 device filter failed.
    #[error("bpf({command}) for the device filter of {}: {}{}", path.display(), errno_text(*errno), verifier_text(log))]
    Bpf {
        command: &'static str,
        path: PathBuf,
        errno: Errno,
        log: String,
    },
}

/// Where a controller lives for this cgroup.
#[derive(Debug, Clone, Copy)]
enum Location<'a> {
    V1(&'a Path),
    V2(&'a Path),
    Missing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct V1Dir {
    /// The hierarchy's controllers as the kernel lists them in /proc/self/cgroup.
    controllers: String,
    mount_point: PathBuf,
    dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct V2Dir {
    mount_point: PathBuf,
    dir: PathBuf,
    /// Controllers offered by the v2 root (those no v1 hierarchy claimed).
    controllers: Vec<String>,
}

impl Cgroup {
    /// Resolves the spec's `linux.cgroupsPath` against the host's layout.
    ///
    /// An absolute path such as `/berth/abc` is relative to each hierarchy's root; a relative
    /// path such as `berth/abc` is relative to the calling process's own cgroup in each
    /// hierarchy (as runc does); `None` means `<id>` relative to that own cgroup (runc's
    /// place: `/<id>` for a caller at the root). The systemd form
    /// `slice:prefix:name` is refused. Reads the layout; touches nothing.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup, CgroupError> {
        let target = layout::Target::parse(cgroups_path, id)?;
        let host = layout::Layout::read()?;
        host.resolve(&target)
    }

    /// Creates the directories. On v2 the controllers the root offers are enabled in each
    /// ancestor's `cgroup.subtree_control`; on v1 a new cpuset level inherits its parent's
    /// CPUs and memory nodes so that processes can join it.
    pub fn create(&self) -> Result<(), CgroupError> {
        // A parent shared with other containers (/berth, /kubepods) may be removed by whoever
        // deletes its last child between our mkdir of it and of ours: try again then.
        let mut tries = 0;
        loop {
            match self.create_once() {
                Err(
                    CgroupError::Create {
                        errno: Errno::ENOENT,
                        ..
                    }
                    | CgroupError::Read {
                        errno: Errno::ENOENT,
                        ..
                    }
                    | CgroupError::Write {
                        errno: Errno::ENOENT,
                        ..
                    },
                ) if tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    fn create_once(&self) -> Result<(), CgroupError> {
        for h in &self.v1 {
            if has_controller(&h.controllers, "cpuset") {
                v1::create_cpuset(&h.mount_point, &h.dir)?;
            } else {
                files::create_dir_all(&h.dir)?;
            }
        }
        if let Some(v2) = &self.v2 {
            v2::create(&v2.mount_point, &v2.dir, &v2.controllers)?;
        }
        Ok(())
    }

    /// Moves a process into the cgroup in every hierarchy it has not `joined` by itself.
    pub fn add_process(&self, pid: i32, joined: Joined) -> Result<(), CgroupError> {
        if !joined.v1 {
            for h in &self.v1 {
                files::write_fmt(&h.dir, "cgroup.procs", format_args!("{pid}"))?;
            }
        }
        if let Some(v2) = self.v2.as_ref().filter(|_| !joined.v2) {
            files::write_fmt(&v2.dir, "cgroup.procs", format_args!("{pid}"))?;
        }
        Ok(())
    }

    /// Moves the calling thread into the cgroup in every v1 hierarchy by writing `0` to each
    /// `tasks` file. For a single-threaded process this is the whole process, and unlike a
    /// write to `cgroup.procs` the kernel then skips the global threadgroup lock, whose first
    /// taking waits out an RCU grace period (8–30 ms). The caller must be in the host's user
    /// namespace (the files are the host root's).
    pub fn join_v1_self(&self) -> Result<(), CgroupError> {
        for h in &self.v1 {
            files::write_fmt(&h.dir, "tasks", format_args!("0"))?;
        }
        Ok(())
    }

    /// Whether the cgroup still exists (the directory every operation reads).
    pub fn exists(&self) -> bool {
        self.membership_dir().is_some_and(Path::exists)
    }

    /// Where the cgroup is, for messages: its freezer's directory (or the first one).
    pub fn describe(&self) -> String {
        match self.locate_freezer() {
            Location::V1(dir) | Location::V2(dir) => dir.display().to_string(),
            Location::Missing => self
                .membership_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// Whether the cgroup has v1 hierarchies (which [`Cgroup::join_v1_self`] joins).
    pub fn has_v1(&self) -> bool {
        !self.v1.is_empty()
    }

    /// The cgroup's v2 directory opened for clone3's CLONE_INTO_CGROUP, which places a new
    /// process there without a `cgroup.procs` write (and its wait on the migration lock).
    /// `None` on a host without a v2 tree.
    pub fn clone_target(&self) -> Option<Result<std::os::fd::OwnedFd, CgroupError>> {
        let v2 = self.v2.as_ref()?;
        Some(
            nix::fcntl::open(
                &v2.dir,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|errno| CgroupError::Open {
                path: v2.dir.clone(),
                errno,
            }),
        )
    }

    /// Applies `linux.resources`, each controller through whichever version carries it.
    ///
    /// A value the kernel refuses is an error naming the file and the value. A resource whose
    /// controller the host lacks is an error, except the network classes (ignored, as runc
    /// does, when net_cls/net_prio are not mounted) and kernel memory (obsolete since Linux
    /// 5.4, ignored).
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(cpu) = resources.cpu() {
            self.apply_cpu(cpu)?;
        }
        if let Some(memory) = resources.memory() {
            self.apply_memory(memory)?;
        }
        if let Some(pids) = resources.pids() {
            match self.locate("pids") {
                Location::V1(dir) | Location::V2(dir) => resources::set_pids(dir, pids.limit())?,
                // 0 and -1 mean "no limit", which needs no controller.
                Location::Missing if pids.limit() <= 0 => {}
                Location::Missing => return Err(unavailable("pids", "linux.resources.pids")),
            }
        }
        if let Some(block_io) = resources.block_io() {
            match self.locate_blkio() {
                Location::V1(dir) => v1::set_block_io(dir, block_io)?,
                Location::V2(dir) => v2::set_block_io(dir, block_io)?,
                Location::Missing if resources::block_io_is_empty(block_io) => {}
                Location::Missing => {
                    return Err(unavailable("blkio/io", "linux.resources.blockIO"))
                }
            }
        }
        if let Some(limits) = resources.hugepage_limits() {
            match self.locate("hugetlb") {
                Location::V1(dir) => v1::set_hugepage_limits(dir, limits)?,
                Location::V2(dir) => v2::set_hugepage_limits(dir, limits)?,
                Location::Missing if limits.is_empty() => {}
                Location::Missing => {
                    return Err(unavailable("hugetlb", "linux.resources.hugepageLimits"))
                }
            }
        }
        if let Some(rules) = resources.devices() {
            self.apply_devices(rules)?;
        }
        if let Some(network) = resources.network() {
            // Written where the host mounts them (v1 only: v2 has no such controllers); a class
            // or priority for a controller the host does not mount is refused, as runc does.
            match self.locate("net_cls") {
                Location::V1(dir) => v1::set_net_cls(dir, network)?,
                _ if network.class_id().is_some() => {
                    return Err(unavailable("net_cls", "linux.resources.network.classID"))
                }
                _ => {}
            }
            match self.locate("net_prio") {
                Location::V1(dir) => v1::set_net_prio(dir, network)?,
                _ if network.priorities().as_ref().is_some_and(|p| !p.is_empty()) => {
                    return Err(unavailable(
                        "net_prio",
                        "linux.resources.network.priorities",
                    ))
                }
                _ => {}
            }
        }
        if let Some(rdma) = resources.rdma() {
            match self.locate("rdma") {
                Location::V1(dir) | Location::V2(dir) => resources::set_rdma(dir, rdma)?,
                Location::Missing if rdma.is_empty() => {}
                Location::Missing => return Err(unavailable("rdma", "linux.resources.rdma")),
            }
        }
        // Last, so that explicit unified values override what the typed fields produced.
        if let Some(unified) = resources.unified() {
            self.apply_unified(unified)?;
        }
        Ok(())
    }

    /// Freezes every process in the cgroup and waits until the kernel reports it frozen:
    /// v1 `freezer.state` FROZEN, v2 `cgroup.freeze` 1 and `cgroup.events` frozen 1.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.locate_freezer() {
            Location::V1(dir) => v1::freeze(dir),
            Location::V2(dir) => v2::set_frozen(dir, true),
            Location::Missing => Err(unavailable("freezer", "pause")),
        }
    }

    /// Thaws the cgroup and waits until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.locate_freezer() {
            Location::V1(dir) => v1::thaw(dir),
            Location::V2(dir) => v2::set_frozen(dir, false),
            Location::Missing => Err(unavailable("freezer", "resume")),
        }
    }

    /// True when the cgroup is completely frozen (a v1 cgroup still FREEZING is not).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.locate_freezer() {
            Location::V1(dir) => v1::is_frozen(dir),
            Location::V2(dir) => v2::is_frozen(dir),
            Location::Missing => Ok(false),
        }
    }

    /// Every process in the cgroup, sub-cgroups included, sorted and without duplicates.
    /// A cgroup that no longer exists has no processes.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        if let Some(dir) = self.membership_dir() {
            files::collect_pids(dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the directories, sub-cgroups first, retrying briefly on EBUSY (a process that
    /// was just killed may still be leaving). The caller kills the processes first. A
    /// directory that is already gone is not an error. Ancestors (such as `/berth`) are kept:
    /// other containers share them.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        for h in &self.v1 {
            files::remove_tree(&h.dir)?;
        }
        if let Some(v2) = &self.v2 {
            files::remove_tree(&v2.dir)?;
        }
        Ok(())
    }

    /// The host directories the OCI `cgroup` mount must show inside the container, one per
    /// hierarchy. The runtime bind-mounts each `host_dir` at `/sys/fs/cgroup/<controllers>`
    /// (with `name=` stripped, so `name=systemd` goes to `systemd`), or at `/sys/fs/cgroup`
    /// itself when `controllers` is empty (pure v2).
    pub fn mount_sources(&self) -> Vec<CgroupMountSource> {
        let mut out: Vec<CgroupMountSource> = self
            .v1
            .iter()
            .map(|h| CgroupMountSource {
                controllers: h.controllers.clone(),
                host_dir: h.dir.clone(),
                is_v2: false,
            })
            .collect();
        if let Some(v2) = &self.v2 {
            out.push(CgroupMountSource {
                controllers: if self.is_unified() {
                    String::new()
                } else {
                    "unified".to_owned()
                },
                host_dir: v2.dir.clone(),
                is_v2: true,
            });
        }
        out
    }

    /// True when the host is pure cgroup v2: a v2 tree, and no v1 hierarchy carrying a
    /// controller (a named hierarchy such as `name=systemd` carries none).
    pub fn is_unified(&self) -> bool {
        self.v2.is_some()
            && self
                .v1
                .iter()
                .all(|h| h.controllers.split(',').all(|c| c.starts_with("name=")))
    }

    /// How many processes the OOM killer has killed in this cgroup: `oom_kill` in v1
    /// `memory.oom_control` or v2 `memory.events`.
    #[allow(
        dead_code,
        reason = "for `berth events`/stats; only the tests read it so far"
    )]
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        match self.locate("memory") {
            Location::V1(dir) => files::read_keyed(dir, "memory.oom_control", "oom_kill"),
            Location::V2(dir) => files::read_keyed(dir, "memory.events", "oom_kill"),
            Location::Missing => Err(unavailable("memory", "the OOM kill count")),
        }
    }

    fn apply_cpu(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        let wants_cpu = cpu.shares().is_some()
            || cpu.quota().is_some()
            || cpu.period().is_some()
            || cpu.burst().is_some()
            || cpu.idle().is_some()
            || cpu.realtime_runtime().is_some()
            || cpu.realtime_period().is_some();
        match self.locate("cpu") {
            Location::V1(dir) => v1::set_cpu(dir, cpu)?,
            Location::V2(dir) => v2::set_cpu(dir, cpu)?,
            Location::Missing if wants_cpu => {
                return Err(unavailable("cpu", "linux.resources.cpu"))
            }
            Location::Missing => {}
        }
        let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
        match self.locate("cpuset") {
            Location::V1(dir) | Location::V2(dir) => resources::set_cpuset(dir, cpus, mems),
            Location::Missing if cpus.is_none() && mems.is_none() => Ok(()),
            Location::Missing => Err(unavailable("cpuset", "linux.resources.cpu.cpus/mems")),
        }
    }

    fn apply_memory(&self, memory: &LinuxMemory) -> Result<(), CgroupError> {
        match self.locate("memory") {
            Location::V1(dir) => v1::set_memory(dir, memory),
            Location::V2(dir) => v2::set_memory(dir, memory),
            Location::Missing => {
                let wants = memory.limit().is_some()
                    || memory.reservation().is_some()
                    || memory.swap().is_some()
                    || memory.swappiness().is_some()
                    || memory.disable_oom_killer() == Some(true)
                    || memory.kernel_tcp().is_some();
                if wants {
                    Err(unavailable("memory", "linux.resources.memory"))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn apply_devices(
        &self,
        rules: &[oci_spec::runtime::LinuxDeviceCgroup],
    ) -> Result<(), CgroupError> {
        let rules = devices::normalize(rules)?;
        match self.locate_devices() {
            Location::V1(dir) => devices::write_v1(dir, &rules),
            Location::V2(dir) => {
                let program = devices_bpf::generate(&devices::emulate(&rules));
                devices_bpf::install(dir, &program)
            }
            Location::Missing if rules.is_empty() => Ok(()),
            Location::Missing => Err(unavailable("devices", "linux.resources.devices")),
        }
    }

    fn apply_unified(
        &self,
        unified: &std::collections::HashMap<String, String>,
    ) -> Result<(), CgroupError> {
        if unified.is_empty() {
            return Ok(());
        }
        let Some(v2) = &self.v2 else {
            return Err(CgroupError::Unsupported {
                resource: "linux.resources.unified",
                version: "v1 (this host has no cgroup2 tree)",
            });
        };
        v2::set_unified(&v2.dir, &v2.controllers, unified)
    }

    fn locate(&self, controller: &str) -> Location<'_> {
        if let Some(h) = self
            .v1
            .iter()
            .find(|h| has_controller(&h.controllers, controller))
        {
            return Location::V1(&h.dir);
        }
        match &self.v2 {
            Some(v2) if v2.controllers.iter().any(|c| c == controller) => Location::V2(&v2.dir),
            _ => Location::Missing,
        }
    }

    /// v1 calls it blkio, v2 io.
    fn locate_blkio(&self) -> Location<'_> {
        match self.locate("blkio") {
            Location::Missing => self.locate("io"),
            found => found,
        }
    }

    /// The v2 freezer is part of the core (`cgroup.freeze`), not a listed controller.
    fn locate_freezer(&self) -> Location<'_> {
        match (self.locate("freezer"), &self.v2) {
            (Location::Missing, Some(v2)) => Location::V2(&v2.dir),
            (found, _) => found,
        }
    }

    /// v2 device control is an eBPF program on the cgroup, not a listed controller.
    fn locate_devices(&self) -> Location<'_> {
        match (self.locate("devices"), &self.v2) {
            (Location::Missing, Some(v2)) => Location::V2(&v2.dir),
            (found, _) => found,
        }
    }

    /// The directory whose `cgroup.procs` lists the container's processes. Any hierarchy
    /// would do since the process joins all; freezer/devices/pids are the ones a container
    /// is always confined by, so those are preferred over named hierarchies.
    fn membership_dir(&self) -> Option<&Path> {
        for controller in ["freezer", "devices", "pids", "memory", "cpu"] {
            if let Some(h) = self
                .v1
                .iter()
                .find(|h| has_controller(&h.controllers, controller))
            {
                return Some(&h.dir);
            }
        }
        if let Some(v2) = &self.v2 {
            return Some(&v2.dir);
        }
        self.v1.first().map(|h| h.dir.as_path())
    }
}

fn has_controller(list: &str, controller: &str) -> bool {
    list.split(',').any(|c| c == controller)
}

fn unavailable(controller: &'static str, resource: &'static str) -> CgroupError {
    CgroupError::ControllerUnavailable {
        controller,
        resource,
    }
}

fn errno_text(errno: Errno) -> String {
    format!("{errno:?} ({})", errno.desc())
}

fn hint_text(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(": {hint}")
    }
}

fn verifier_text(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; verifier log:\n{log}")
    }
}
