//! Other faces of the daemon (DESIGN.md: the CRI, the dashboard), plugged in by the binary.
//! A face may serve routes on the Engine API's socket beside the API's own (the dashboard's
//! `/berth/dashboard/…`), and run a task for the daemon's life. The task is given the engine's
//! small interface ([`Engine`]: the operations the API's handlers use, on the same ordinary
//! containers) and the daemon's stop signal; it never reaches the engine's files or locks.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use crate::interface::Engine;

/// A face's task: it serves until `stop` turns true. An error stops the daemon with it.
pub type FaceTask = Box<
    dyn FnOnce(
            Engine,
            watch::Receiver<bool>,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send,
>;

/// A face: routes on the API socket, and a task run on the daemon's runtime.
pub struct Face {
    /// What the face serves to the API's clients (merged into the Engine API's router; the
    /// version prefix is stripped first, as for every route). Empty for none.
    pub routes: axum::Router,
    /// Started once the API socket is bound.
    pub task: Option<FaceTask>,
}

impl Face {
    /// A face that serves nothing on the API socket, only its task (the CRI's own socket).
    pub fn task_only(task: FaceTask) -> Face {
        Face {
            routes: axum::Router::new(),
            task: Some(task),
        }
    }
}

impl std::fmt::Debug for Face {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Face")
            .field("task", &self.task.is_some())
            .finish_non_exhaustive()
    }
}
