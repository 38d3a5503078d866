//! berth's daemon: the Docker Engine API on a Unix socket, over the image store, the per-container
//! monitors and the runtime library. `run` is all the binary calls.

#![recursion_limit = "256"]

mod api;
mod build;
mod build_net;
mod container;
mod daemon;
mod error;
mod events;
mod exec;
mod face;
mod fetch;
mod files;
mod gpu;
mod health;
mod lifecycle;
mod network;
mod proctree;
mod seccomp;
mod spec;
mod userns;
mod volumes;

use std::path::PathBuf;

pub use berth_registry::RegistryOptions;
pub use daemon::{DaemonOptions, Face};
pub use face::{
    full_reference, ContainerEvent, ContainerView, Credentials, Engine, Error, ExecIo, Extras,
    ImageFs, ImageView, MountView,
};
pub use network::NetworkOptions;

/// Runs the daemon until SIGTERM/SIGINT. Containers keep running after it returns.
pub fn run(opts: DaemonOptions) -> std::result::Result<(), String> {
    run_with(opts, Vec::new())
}

/// Runs the daemon with other faces (the CRI) served beside the Engine API, each over the
/// engine's interface; a face that fails stops the daemon with its error.
pub fn run_with(opts: DaemonOptions, faces: Vec<Face>) -> std::result::Result<(), String> {
    // RUN steps of builds are containers made by the runtime library, which forks: that is
    // done by a helper process forked now, while this process has a single thread.
    let runtime_root = opts.exec_root.join("build-runtime");
    let sandbox = berth_build::Sandbox::start(&runtime_root)
        .map_err(|e| format!("start the build sandbox: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    rt.block_on(daemon::serve(opts, sandbox, faces))
}

/// The default socket path, root and exec root, as the CLI also knows them.
pub fn default_socket() -> PathBuf {
    PathBuf::from("/run/berth/berth.sock")
}
