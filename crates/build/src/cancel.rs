//! Cancelling a build: a flag that blocking waits can also poll on (a pipe that becomes
//! readable when the build is cancelled), so nothing needs to wake up on a timer to notice.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A cancellation shared by the build and whoever may end it.
#[derive(Debug)]
pub struct Cancel {
    flag: AtomicBool,
    read: Option<OwnedFd>,
    write: Mutex<Option<OwnedFd>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        let (read, write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok((r, w)) => (Some(r), Some(w)),
            Err(_) => (None, None),
        };
        Cancel {
            flag: AtomicBool::new(false),
            read,
            write: Mutex::new(write),
        }
    }

    /// Cancels: the flag is set and the pipe's write end closed (so its read end polls
    /// readable, at EOF).
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.write.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// A descriptor that polls readable once cancelled.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.read.as_ref().map(|f| f.as_fd())
    }
}
