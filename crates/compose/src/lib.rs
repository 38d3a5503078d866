//! berth compose: multi-container applications from compose files.
//!
//! The loader reads a project as docker compose does (`load`): YAML with line and column in
//! its errors, `.env` interpolation, the compose specification's merge rules for several
//! files, `extends`, `include`, profiles, and schema validation that refuses unknown keys —
//! all before anything is created. The planner (`up` and the other verbs) drives a daemon only
//! through the Docker Engine API (`Engine`), with docker compose's labels and container names,
//! so docker compose and berth compose see each other's projects.

mod dotenv;
mod error;
mod graph;
mod interpolate;
mod load;
mod merge;
mod normalize;
mod project;
mod schema;
mod yaml;

pub use error::{Error, Result};
pub use interpolate::Environment;
pub use load::{load, normalize_project_name, Options};
pub use project::{dependencies, replicas, Dependency, Project};
pub use yaml::to_yaml;
