//! berth's image store: content-addressed blobs, references and tags, layer extraction with
//! whiteouts into overlay snapshots, import/load/save/commit, garbage collection.
//!
//! The store never mounts anything itself except through [`OverlayMount::mount_at`], which
//! the caller invokes: like containerd's snapshotters it returns the mounts to perform.

mod apply;
mod archive;
mod blobs;
mod buildcache;
pub mod config;
mod db;
mod diff;
mod distribution;
mod error;
mod export;
pub mod manifest;
mod private;
mod pulled;
pub mod reference;
pub mod snapshot;
mod store;
mod sys;
pub mod timefmt;
pub mod users;

pub use apply::extract_archive;
pub use buildcache::{BuildCache, BuildState, CachePruneReport};
pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use distribution::Distribution;
pub use error::{Error, Result};
pub use export::export_rootfs;
pub use pulled::{Ingest, PullLayer};
pub use reference::Reference;
pub use snapshot::OverlayMount;
pub use store::{
    dir_is_empty, Change, ChangeKind, Deleted, DiskUsage, HistoryEntry, Image, ImportOptions,
    LoadedImage, PruneReport, Store,
};
