//! Another face of the daemon (DESIGN.md: the dashboard), plugged in by the binary. It sees
//! the daemon only as the daemon's clients do: its routes are served on the Engine API's
//! socket next to the API's own (under `/berth/…`), and its task, started once that socket
//! answers, reaches the daemon through the same socket. The engine gives it nothing of its
//! own state: no stores, no locks, no container records.

use std::future::Future;
use std::pin::Pin;

/// A face: routes on the API socket, and a task run on the daemon's runtime.
pub struct Face {
    /// What the face serves to the API's clients (merged into the Engine API's router; the
    /// version prefix is stripped first, as for every route).
    pub routes: axum::Router,
    /// Started once the API socket is bound; ends with the daemon.
    pub task: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for Face {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Face")
            .field("task", &self.task.is_some())
            .finish_non_exhaustive()
    }
}
