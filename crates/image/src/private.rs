//! The store's own files and directories (blobs, snapshots' parents, metadata, scratch) are
//! root's alone (docs/security.md): each is made with its mode from its first instant, never
//! with the process's umask and a chmod afterwards.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Makes `path` (and missing parents) 0700; an existing directory is kept.
pub(crate) fn create_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Makes the one directory `path`, 0700; fails if it exists.
pub(crate) fn create_new_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// Opens `path` for writing, emptied, 0600 before any byte is written: a file left there by
/// an older version with a wider mode is narrowed first.
pub(crate) fn create_file(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(0o600))?;
    Ok(f)
}
