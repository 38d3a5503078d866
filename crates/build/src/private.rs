//! A build's scratch space (the context, each step's directories, RUN bundles) is root's
//! alone (docs/security.md): made with its mode, never with the umask and a chmod afterwards.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Makes `path` (and missing parents) 0700; an existing directory is kept.
pub(crate) fn create_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(Error::io("create", path))
}

/// Writes `data` to the new file `path` with `mode`, set before the first byte (whatever the
/// daemon's umask).
pub(crate) fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io("create", path))?;
    f.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| f.write_all(data))
        .map_err(Error::io("write", path))
}
