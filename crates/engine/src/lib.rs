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
mod interface;
mod lifecycle;
mod links;
mod log_driver;
pub mod modes;
mod mountinfo;
mod network;
mod proctree;
mod seccomp;
mod spec;
mod stop;
mod subpath;
mod userns;
mod volumes;

use std::path::PathBuf;

pub use berth_registry::RegistryOptions;
pub use daemon::DaemonOptions;
pub use face::{Face, FaceTask};
pub use interface::{
    full_reference, ContainerEvent, ContainerView, Credentials, Engine, Error, ExecIo, Extras,
    ImageFs, ImageView, MountView,
};
pub use network::NetworkOptions;

/// Runs the daemon until SIGTERM/SIGINT. Containers keep running after it returns.
pub fn run(opts: DaemonOptions) -> std::result::Result<(), String> {
    run_with(opts, Vec::new())
}

/// Runs the daemon with other faces (the CRI, the dashboard) served beside the Engine API;
/// a face whose task fails stops the daemon with its error.
pub fn run_with(opts: DaemonOptions, faces: Vec<Face>) -> std::result::Result<(), String> {
    // The umask and the modes of both trees come first: everything after makes files there.
    let socket_group = daemon::socket_group(opts.group.as_deref())?;
    let group_in_exec_root =
        socket_group.filter(|_| opts.socket.parent() == Some(&*opts.exec_root));
    modes::prepare(&opts.root, &opts.exec_root, group_in_exec_root)?;
    // RUN steps of builds are containers made by the runtime library, which forks: that is
    // done by a helper process forked now, while this process has a single thread.
    let runtime_root = opts.exec_root.join("build-runtime");
    let sandbox = berth_build::Sandbox::start(&runtime_root)
        .map_err(|e| format!("start the build sandbox: {e}"))?;
    let stop = stop::install(opts.socket.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    let served = rt.block_on(daemon::serve(opts, sandbox, stop, faces));
    // Blocking work still in flight (a stuck client's copy) must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// The default socket path, root and exec root, as the CLI also knows them.
pub fn default_socket() -> PathBuf {
    PathBuf::from("/run/berth/berth.sock")
}
