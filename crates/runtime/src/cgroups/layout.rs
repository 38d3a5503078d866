//! The host's cgroup layout, read from /proc/self/mountinfo and /proc/self/cgroup, and the
//! resolution of a spec's cgroupsPath against it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::{files, Cgroup, CgroupError, V1Dir, V2Dir};

/// Where the container's cgroup goes, relative to a hierarchy's root or to our own cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// Below the root of each hierarchy (as far as this mount namespace shows it).
    Absolute(PathBuf),
    /// Below the cgroup the calling process is in, per hierarchy.
    Relative(PathBuf),
}

/// The mounted hierarchies, as far as berth uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    v1: Vec<V1Mount>,
    v2: Option<V2Mount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct V1Mount {
    /// As /proc/self/cgroup names the hierarchy: "cpu,cpuacct", "memory", "name=systemd".
    controllers: String,
    mount_point: PathBuf,
    /// The part of the hierarchy that is mounted (mountinfo's root field), usually "/".
    root: PathBuf,
    /// Our own cgroup in this hierarchy.
    own: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct V2Mount {
    mount_point: PathBuf,
    root: PathBuf,
    own: Option<PathBuf>,
    controllers: Vec<String>,
}

/// One line of /proc/self/mountinfo, as far as cgroups need it.
#[derive(Debug)]
struct Mount<'a> {
    root: PathBuf,
    mount_point: PathBuf,
    fs_type: &'a str,
    super_options: &'a str,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";

impl Target {
    /// Interprets linux.cgroupsPath. None means the id below the caller's own cgroup in each
    /// hierarchy, where runc's cgroupfs driver places it (`/<id>` for a caller at the root).
    pub(super) fn parse(cgroups_path: Option<&Path>, id: &str) -> Result<Target, CgroupError> {
        let Some(path) = cgroups_path else {
            if id.is_empty() || id == "." || id == ".." || id.contains('/') {
                return Err(CgroupError::InvalidPath {
                    path: Path::new("/").join(id),
                    reason: "the container id must be a single non-empty path component",
                });
            }
            return Ok(Target::Relative(PathBuf::from(id)));
        };
        let bytes = path.as_os_str().as_bytes();
        if !path.is_absolute() && bytes.split(|&b| b == b':').count() == 3 {
            return Err(CgroupError::SystemdPath {
                path: path.to_path_buf(),
            });
        }
        let mut relative = PathBuf::new();
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(name) => relative.push(name),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(CgroupError::InvalidPath {
                        path: path.to_path_buf(),
                        reason: "\"..\" could leave the cgroup hierarchy",
                    })
                }
            }
        }
        if relative.as_os_str().is_empty() {
            return Err(CgroupError::InvalidPath {
                path: path.to_path_buf(),
                reason:
                    "it names the root (or the caller's own cgroup), which other processes share",
            });
        }
        Ok(if path.is_absolute() {
            Target::Absolute(relative)
        } else {
            Target::Relative(relative)
        })
    }
}

impl Layout {
    /// Reads the layout of the calling process's mount and cgroup namespaces.
    pub(super) fn read() -> Result<Layout, CgroupError> {
        let mountinfo = read_proc(Path::new(MOUNTINFO))?;
        let proc_cgroup = read_proc(Path::new(PROC_CGROUP))?;
        let mut layout = Layout::parse(&mountinfo, &proc_cgroup);
        if let Some(v2) = &mut layout.v2 {
            let path = v2.mount_point.join("cgroup.controllers");
            let text = read_proc(&path)?;
            v2.controllers = text.split_whitespace().map(str::to_owned).collect();
        }
        if layout.v1.is_empty() && layout.v2.is_none() {
            return Err(CgroupError::NoHierarchy);
        }
        Ok(layout)
    }

    /// Builds the layout from the two proc files; v2 controllers are filled in by `read`.
    fn parse(mountinfo: &str, proc_cgroup: &str) -> Layout {
        let mounts: Vec<Mount<'_>> = mountinfo.lines().filter_map(parse_mount).collect();
        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in proc_cgroup.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(own)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let own = PathBuf::from(own);
            if id == "0" && controllers.is_empty() {
                if let Some(m) = pick(&mounts, &own, |m| m.fs_type == "cgroup2") {
                    v2 = Some(V2Mount {
                        mount_point: m.mount_point.clone(),
                        root: m.root.clone(),
                        own: Some(own),
                        controllers: Vec::new(),
                    });
                }
                continue;
            }
            let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
            if wanted.is_empty() {
                continue;
            }
            let carries_all = |m: &Mount<'_>| {
                m.fs_type == "cgroup"
                    && wanted
                        .iter()
                        .all(|c| m.super_options.split(',').any(|o| o == *c))
            };
            // A hierarchy the kernel lists but nobody mounted cannot be written to.
            if let Some(m) = pick(&mounts, &own, carries_all) {
                v1.push(V1Mount {
                    controllers: controllers.to_owned(),
                    mount_point: m.mount_point.clone(),
                    root: m.root.clone(),
                    own,
                });
            }
        }
        // In the order the host mounts them, as runc lists them (and mounts them in containers).
        v1.sort_by_key(|h: &V1Mount| {
            mounts
                .iter()
                .position(|m| m.mount_point == h.mount_point)
                .unwrap_or(usize::MAX)
        });
        // Inside a cgroup namespace without a "0::" line (v1-only kernels list none), a
        // cgroup2 mount can still exist; take it without knowing our own place in it.
        if v2.is_none() {
            if let Some(m) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
                v2 = Some(V2Mount {
                    mount_point: m.mount_point.clone(),
                    root: m.root.clone(),
                    own: None,
                    controllers: Vec::new(),
                });
            }
        }
        Layout { v1, v2 }
    }

    /// The container's directories in every hierarchy.
    pub(super) fn resolve(&self, target: &Target) -> Result<Cgroup, CgroupError> {
        let mut v1 = Vec::with_capacity(self.v1.len());
        for h in &self.v1 {
            v1.push(V1Dir {
                controllers: h.controllers.clone(),
                mount_point: h.mount_point.clone(),
                dir: dir_in(&h.mount_point, &h.root, Some(&h.own), target)?,
            });
        }
        let v2 = match &self.v2 {
            Some(h) => Some(V2Dir {
                mount_point: h.mount_point.clone(),
                dir: dir_in(&h.mount_point, &h.root, h.own.as_deref(), target)?,
                controllers: h.controllers.clone(),
            }),
            None => None,
        };
        Ok(Cgroup { v1, v2 })
    }
}

/// The mount to use for a hierarchy: one showing the whole hierarchy if there is one, else
/// one showing the part our own cgroup is in.
fn pick<'m, 'a>(
    mounts: &'m [Mount<'a>],
    own: &Path,
    matches: impl Fn(&Mount<'a>) -> bool,
) -> Option<&'m Mount<'a>> {
    let candidates = || mounts.iter().filter(|m| matches(m));
    candidates()
        .find(|m| m.root == Path::new("/"))
        .or_else(|| candidates().find(|m| own.starts_with(&m.root)))
        .or_else(|| candidates().next())
}

fn dir_in(
    mount_point: &Path,
    root: &Path,
    own: Option<&Path>,
    target: &Target,
) -> Result<PathBuf, CgroupError> {
    match target {
        Target::Absolute(rel) => Ok(mount_point.join(rel)),
        Target::Relative(rel) => {
            let Some(own) = own else {
                return Err(CgroupError::OwnCgroupUnknown {
                    path: rel.clone(),
                    reason: format!(
                        "/proc/self/cgroup does not list this process's cgroup in the tree mounted at {}",
                        mount_point.display()
                    ),
                });
            };
            let Ok(inside) = own.strip_prefix(root) else {
                return Err(CgroupError::OwnCgroupUnknown {
                    path: rel.clone(),
                    reason: format!(
                        "this process's cgroup {} is outside the part {} mounted at {}",
                        own.display(),
                        root.display(),
                        mount_point.display()
                    ),
                });
            };
            Ok(mount_point.join(inside).join(rel))
        }
    }
}

/// Splits "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime shared:9 - cgroup cgroup rw,devices".
fn parse_mount(line: &str) -> Option<Mount<'_>> {
    let mut fields = line.split(' ');
    let _id = fields.next()?;
    let _parent = fields.next()?;
    let _dev = fields.next()?;
    let root = crate::mountinfo::unescape(fields.next()?);
    let mount_point = crate::mountinfo::unescape(fields.next()?);
    // Optional fields (shared:N, master:N, ...) run until the lone "-".
    for field in fields.by_ref() {
        if field == "-" {
            break;
        }
    }
    let fs_type = fields.next()?;
    let _source = fields.next()?;
    let super_options = fields.next()?;
    Some(Mount {
        root,
        mount_point,
        fs_type,
        super_options,
    })
}

fn read_proc(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::ReadLayout {
        path: path.to_path_buf(),
        errno: files::errno_of(&e),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod unit {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/user.slice
4:memory:/process_api/abc
2:cpu,cpuacct:/
3:perf_event:/
0::/user.slice/session-1.scope
";

    const PURE_V2_MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const PURE_V2_CGROUP: &str = "0::/user.slice/user-0.slice/session-3.scope\n";

    fn layout(mountinfo: &str, cgroup: &str) -> Layout {
        Layout::parse(mountinfo, cgroup)
    }

    #[test]
    fn hybrid_layout_maps_each_hierarchy_to_its_mount() {
        let l = layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        let names: Vec<&str> = l.v1.iter().map(|h| h.controllers.as_str()).collect();
        // perf_event is listed by the kernel but not mounted: skipped. The order is the
        // mounts', as runc lists the hierarchies.
        assert_eq!(names, ["cpu,cpuacct", "memory", "name=systemd"]);
        assert_eq!(l.v1[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        let v2 = l.v2.as_ref().map(|v| v.mount_point.clone());
        assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn absolute_path_is_below_each_hierarchy_root() {
        let l = layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        let target = Target::parse(Some(Path::new("/berth/abc")), "x").unwrap();
        let cg = l.resolve(&target).unwrap();
        let dirs: Vec<PathBuf> = cg.v1.iter().map(|h| h.dir.clone()).collect();
        assert_eq!(
            dirs,
            [
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/abc"),
                PathBuf::from("/sys/fs/cgroup/memory/berth/abc"),
                PathBuf::from("/sys/fs/cgroup/systemd/berth/abc"),
            ]
        );
        assert_eq!(
            cg.v2.map(|v| v.dir),
            Some(PathBuf::from("/sys/fs/cgroup/unified/berth/abc"))
        );
    }

    #[test]
    fn relative_path_is_below_our_own_cgroup() {
        let l = layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        let target = Target::parse(Some(Path::new("berth/abc")), "x").unwrap();
        let cg = l.resolve(&target).unwrap();
        assert_eq!(
            cg.v1[1].dir,
            Path::new("/sys/fs/cgroup/memory/process_api/abc/berth/abc")
        );
        assert_eq!(
            cg.v2.map(|v| v.dir),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/user.slice/session-1.scope/berth/abc"
            ))
        );
    }

    #[test]
    fn pure_v2_has_one_tree_and_is_unified() {
        let mut l = layout(PURE_V2_MOUNTINFO, PURE_V2_CGROUP);
        assert!(l.v1.is_empty());
        if let Some(v2) = &mut l.v2 {
            v2.controllers = vec!["cpu".into(), "memory".into()];
        }
        let cg = l.resolve(&Target::parse(None, "c1").unwrap()).unwrap();
        assert!(cg.is_unified());
        let sources = cg.mount_sources();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].controllers, "");
        assert_eq!(
            sources[0].host_dir,
            Path::new("/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope/c1")
        );
        assert!(sources[0].is_v2);
    }

    #[test]
    fn hybrid_mount_sources_name_each_hierarchy() {
        let l = layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        let cg = l.resolve(&Target::parse(None, "c1").unwrap()).unwrap();
        assert!(!cg.is_unified());
        let names: Vec<(String, bool)> = cg
            .mount_sources()
            .into_iter()
            .map(|s| (s.controllers, s.is_v2))
            .collect();
        assert_eq!(
            names,
            // In the order the host mounts the hierarchies, as runc lists them.
            [
                ("cpu,cpuacct".to_owned(), false),
                ("memory".to_owned(), false),
                ("name=systemd".to_owned(), false),
                ("unified".to_owned(), true),
            ]
        );
    }

    #[test]
    fn subtree_mount_resolves_relative_to_what_is_mounted() {
        // A container's view: the hierarchy is mounted from /docker/ctr, and we sit in it.
        let mountinfo =
            "50 40 0:32 /docker/ctr /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        let cgroup = "4:memory:/docker/ctr/sub\n";
        let l = layout(mountinfo, cgroup);
        let cg = l
            .resolve(&Target::parse(Some(Path::new("inner")), "x").unwrap())
            .unwrap();
        assert_eq!(cg.v1[0].dir, Path::new("/sys/fs/cgroup/memory/sub/inner"));
    }

    #[test]
    fn mount_points_with_spaces_are_unescaped() {
        let line = "41 31 0:38 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw";
        let m = parse_mount(line).unwrap();
        assert_eq!(m.mount_point, Path::new("/mnt/my cgroups"));
    }

    #[test]
    fn default_path_is_the_id_below_our_own_cgroup_like_runc() {
        assert_eq!(
            Target::parse(None, "abc").unwrap(),
            Target::Relative(PathBuf::from("abc"))
        );
        assert!(Target::parse(None, "../x").is_err());
        assert!(Target::parse(None, "").is_err());
    }

    #[test]
    fn systemd_form_is_refused_clearly() {
        let err = Target::parse(Some(Path::new("system.slice:berth:abc")), "abc").unwrap_err();
        assert!(matches!(err, CgroupError::SystemdPath { .. }));
        assert!(err.to_string().contains("no systemd cgroup driver"));
    }

    #[test]
    fn escaping_paths_are_refused() {
        for bad in ["/berth/../../etc", "../x", "/", "."] {
            let err = Target::parse(Some(Path::new(bad)), "abc").unwrap_err();
            assert!(matches!(err, CgroupError::InvalidPath { .. }), "{bad}");
        }
    }
}
