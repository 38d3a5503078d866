//! OOM notifications of a cgroup, as `runc events` reports them: an eventfd registered on v1's
//! `memory.oom_control`, an inotify watch on v2's `memory.events`. Both also tell when the
//! cgroup is removed, which ends the watch.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;

use super::{files, Cgroup, CgroupError, Location};

/// A descriptor that becomes readable on an OOM in the cgroup or on its removal.
#[derive(Debug)]
pub struct OomWatch {
    fd: OwnedFd,
    dir: PathBuf,
    v2: bool,
    /// v2: the `oom_kill` count last seen.
    kills: u64,
}

/// What a readable [`OomWatch`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// The OOM killer acted in the cgroup.
    Oom,
    /// The cgroup is gone (the container was deleted).
    Gone,
    /// Nothing to report (a v2 memory.events change other than an OOM kill).
    Nothing,
}

impl Cgroup {
    /// Watches the cgroup's memory controller for OOM events; `None` without one.
    pub fn watch_oom(&self) -> Result<Option<OomWatch>, CgroupError> {
        match self.locate("memory") {
            Location::V1(dir) => {
                // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
                let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
                if efd < 0 {
                    return Err(CgroupError::Open {
                        path: dir.to_path_buf(),
                        errno: Errno::last(),
                    });
                }
                // SAFETY: a new descriptor, owned here.
                let efd = unsafe { OwnedFd::from_raw_fd(efd) };
                let control = dir.join("memory.oom_control");
                let oom = std::fs::File::open(&control).map_err(|e| CgroupError::Open {
                    path: control.clone(),
                    errno: files::errno_of(&e),
                })?;
                files::write_fmt(
                    dir,
                    "cgroup.event_control",
                    format_args!("{} {}", efd.as_raw_fd(), oom.as_raw_fd()),
                )?;
                Ok(Some(OomWatch {
                    fd: efd,
                    dir: dir.to_path_buf(),
                    v2: false,
                    kills: 0,
                }))
            }
            Location::V2(dir) => {
                // SAFETY: inotify_init1 takes flags and returns a new descriptor or -1.
                let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
                if fd < 0 {
                    return Err(CgroupError::Open {
                        path: dir.to_path_buf(),
                        errno: Errno::last(),
                    });
                }
                // SAFETY: a new descriptor, owned here.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                let events = dir.join("memory.events");
                let path = std::ffi::CString::new(events.as_os_str().as_encoded_bytes()).map_err(
                    |_| CgroupError::Open {
                        path: events.clone(),
                        errno: Errno::EINVAL,
                    },
                )?;
                // SAFETY: a NUL-terminated path; the kernel copies it.
                let wd = unsafe {
                    libc::inotify_add_watch(
                        fd.as_raw_fd(),
                        path.as_ptr(),
                        libc::IN_MODIFY | libc::IN_DELETE_SELF,
                    )
                };
                if wd < 0 {
                    return Err(CgroupError::Open {
                        path: events,
                        errno: Errno::last(),
                    });
                }
                let kills = files::read_keyed(dir, "memory.events", "oom_kill").unwrap_or(0);
                Ok(Some(OomWatch {
                    fd,
                    dir: dir.to_path_buf(),
                    v2: true,
                    kills,
                }))
            }
            Location::Missing => Ok(None),
        }
    }
}

impl OomWatch {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Consumes what made the descriptor readable and says what it was.
    pub fn check(&mut self) -> OomEvent {
        let mut buf = [0u8; 4096];
        let _ = nix::unistd::read(self.fd.as_fd(), &mut buf);
        if self.v2 {
            let Ok(kills) = files::read_keyed(&self.dir, "memory.events", "oom_kill") else {
                return OomEvent::Gone;
            };
            let event = if kills > self.kills {
                OomEvent::Oom
            } else {
                OomEvent::Nothing
            };
            self.kills = kills;
            return event;
        }
        // v1 signals the eventfd on an OOM and when the cgroup is removed.
        if self.dir.join("memory.oom_control").exists() {
            OomEvent::Oom
        } else {
            OomEvent::Gone
        }
    }
}
