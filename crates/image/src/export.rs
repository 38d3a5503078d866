//! `docker export`.

use std::io::Write;
use std::path::Path;

use crate::error::Result;

/// Writes the tree at `dir` (a mounted container rootfs) as a tar to `out`. Symlinks are
/// stored, never followed; owners, modes, times and xattrs are kept.
pub fn export_rootfs(dir: &Path, out: &mut dyn Write) -> Result<()> {
    crate::diff::tar_tree(dir, out)
}
