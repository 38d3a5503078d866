//! `events`: a container's statistics at an interval and its OOM notifications, as JSON lines in
//! runc's shape (`{"type":"stats","id":…,"data":{…}}`, `{"type":"oom","id":…}`), until the
//! container's cgroup is removed.

use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use crate::cgroups::{OomEvent, Stats};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::state::Status;

/// One event of `events` (runc's `types.Event`).
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Container {
    /// The container's statistics now (`events --stats`).
    pub fn stats(&self) -> Result<Event<'_>> {
        self.refuse_stopped()?;
        Ok(Event {
            kind: "stats",
            id: self.id(),
            data: Some(self.record().cgroup.stats()),
        })
    }

    /// Emits statistics every `interval` and an event per OOM, until the container's cgroup
    /// is removed (its `delete`) or `emit` returns false.
    pub fn events(
        &self,
        interval: Duration,
        emit: &mut dyn FnMut(&Event<'_>) -> bool,
    ) -> Result<()> {
        if interval.is_zero() {
            return Err(Error::InvalidConfig(
                "duration interval must be greater than 0".into(),
            ));
        }
        self.refuse_stopped()?;
        let cgroup = &self.record().cgroup;
        let mut watch = cgroup.watch_oom()?;
        let mut next = Instant::now() + interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
            let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let readable = match &watch {
                Some(w) => {
                    let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, timeout) {
                        Ok(n) => n > 0,
                        Err(nix::errno::Errno::EINTR) => false,
                        Err(e) => return Err(Error::sys("poll for OOM events", e)),
                    }
                }
                None => {
                    std::thread::sleep(wait);
                    false
                }
            };
            if readable {
                if let Some(w) = &mut watch {
                    match w.check() {
                        OomEvent::Oom => {
                            let event = Event {
                                kind: "oom",
                                id: self.id(),
                                data: None,
                            };
                            if !emit(&event) {
                                return Ok(());
                            }
                        }
                        OomEvent::Gone => return Ok(()),
                        OomEvent::Nothing => {}
                    }
                }
            }
            if Instant::now() >= next {
                next += interval;
                if !cgroup.exists() {
                    return Ok(());
                }
                let event = Event {
                    kind: "stats",
                    id: self.id(),
                    data: Some(cgroup.stats()),
                };
                if !emit(&event) {
                    return Ok(());
                }
            }
        }
    }

    fn refuse_stopped(&self) -> Result<()> {
        if self.status() == Status::Stopped {
            return Err(Error::InvalidConfig(format!(
                "container with id {} is not running",
                self.id()
            )));
        }
        Ok(())
    }
}
