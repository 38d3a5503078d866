//! berth's builder: `docker build` from a context and a Dockerfile to a tagged image.
//!
//! - [`dockerfile`]: the parser (directives, continuations, heredocs, every instruction) with
//!   errors that name the line and column, and the word expansion of `$VAR`s.
//! - [`Builder`]: the build graph (stages, `--target`, independent stages in parallel), the
//!   layer cache (a step's key is its parent, its instruction and, for COPY/ADD, the content
//!   of its sources) and the executor: RUN in real containers through the runtime library (in
//!   the [`Sandbox`] process), COPY/ADD written straight into the layer.
//! - [`hygiene`]: lint rules for Dockerfiles and images, and the per-layer analysis.
//!
//! The crate depends on the image store and the runtime, never on the daemon: what it needs
//! from the daemon (a RUN container's OCI spec and network, a pull, a download) comes
//! through the [`Host`] trait.

mod cancel;
mod context;
pub mod dockerfile;
pub mod duration;
mod error;
mod exec;
mod fsroot;
mod glob;
pub mod hygiene;
pub mod ignore;
mod private;
mod sandbox;

pub use cancel::Cancel;
pub use error::{Error, Result};
pub use exec::{
    host_platform, BuildOptions, Builder, Fetched, Host, Message, RunContainer, RunSetup, Sink,
};
pub use sandbox::Sandbox;
