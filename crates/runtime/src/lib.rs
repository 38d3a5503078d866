//! berth's OCI runtime: turns a bundle (config.json + rootfs) into an isolated process, as the
//! runtime-spec describes. It depends on nothing else of berth; the engine, the builder and the
//! runc-compatible command line all start containers through [`Runtime`].
//!
//! Process model: the calling process forks the container's init directly (no re-exec of a helper
//! binary); parent and init talk over a socketpair while the init builds its namespaces and root,
//! then the init blocks on the `exec.fifo` until `start`. The caller must be single-threaded when
//! it calls [`Runtime::create`], [`Container::exec`] or [`Runtime::run`]: the forked child
//! allocates, which is only sound after fork in a process with one thread (the CLI is).

mod capabilities;
mod cgroups;
mod checkpoint;
mod console;
mod container;
mod default_spec;
mod error;
mod events;
mod exe_guard;
mod features;
mod foreground;
mod hooks;
mod init;
mod mountinfo;
mod namespaces;
mod netdev;
mod process;
mod reaper;
mod rootfs;
mod seccomp;
mod signal;
mod spec;
mod state;
mod sync;
mod syscall;

pub use capabilities::name as capability_name;
pub use cgroups::CgroupError;
pub use checkpoint::{CheckpointOptions, CriuOptions};
pub use console::receive_master as receive_console_master;
pub use container::{Container, CreateOptions, ExecOptions, RunOptions, Runtime};
pub use default_spec::{default_spec, rootless_spec};
pub use error::{Error, Result};
pub use events::Event;
pub use exe_guard::ensure_sealed_exe;
pub use features::features;
pub use namespaces::id_mapping_namespace;
pub use reaper::{INIT_ANNOTATION, PAUSE_ANNOTATION};
pub use seccomp::SeccompError;
pub use signal::{name as signal_name, parse as parse_signal};
pub use spec::{load_process, load_process_reporting};
pub use state::{now_rfc3339, ContainerState, StateDocument, Status};
