//! berth compose: multi-container applications from compose files.
//!
//! The loader reads a project as docker compose does (`load`): YAML with line and column in
//! its errors, `.env` interpolation, the compose specification's merge rules for several
//! files, `extends`, `include`, profiles, and schema validation that refuses unknown keys —
//! all before anything is created. The planner (`up` and the other verbs) drives a daemon only
//! through the Docker Engine API (`Engine`), with docker compose's labels and container names,
//! so docker compose and berth compose see each other's projects.

mod api;
mod container;
mod dotenv;
mod error;
mod events;
mod graph;
mod images;
mod interpolate;
mod labels;
mod load;
mod logs;
mod merge;
mod normalize;
mod project;
mod schema;
mod stacks;
mod state;
#[cfg(test)]
mod testing;
mod up;
mod verbs;
mod yaml;

pub use api::{byte_stream, enc, ByteStream, Engine, JsonMessages, Method, Payload};
pub use error::{Error, Result};
pub use events::{events, Event};
pub use images::{build, pull, push, BuildOptions};
pub use interpolate::Environment;
pub use labels::COMPOSE_VERSION;
pub use load::{load, normalize_project_name, Options};
pub use logs::{print as print_logs, short_name, LogOptions};
pub use normalize::split_shell;
pub use project::{dependencies, replicas, Dependency, Project};
pub use stacks::{stacks, Stack};
pub use state::{containers, Existing};
pub use up::{selected, up, UpOptions};
pub use verbs::{
    cp_targets, down, exec_target, images as list_images, kill, pause, port, ps, removable,
    restart, rm, run, start, stop, top, wait, DownOptions, RunOptions,
};
