//! A step's scratch space: a directory under the build's, and the overlay of a state's
//! snapshots with a fresh upper dir, mounted there and unmounted (and removed) on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_image::{BuildState, OverlayMount, Store};

use crate::error::{Error, Result};

/// A mounted overlay: `rootfs` over the state's layers, writes going to `upper`.
#[derive(Debug)]
pub(crate) struct StepFs {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
}

impl StepFs {
    /// Mounts `state`'s layers (diff_ids of its config) under `dir` with a fresh upper dir.
    pub fn mount(
        store: &Store,
        dir: PathBuf,
        state: &BuildState,
        diff_ids: &[String],
        empty: &Path,
    ) -> Result<StepFs> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        let rootfs = dir.join("rootfs");
        for d in [&work, &rootfs] {
            crate::private::create_dir(d)?;
        }
        // The RUN container's `/` is the upper dir's root: 0755, as a container's.
        std::fs::DirBuilder::new()
            .create(&upper)
            .and_then(|()| std::fs::set_permissions(&upper, PermissionsExt::from_mode(0o755)))
            .map_err(Error::io("create", &upper))?;
        let mut lowers = store.state_dirs(state, diff_ids)?;
        lowers.reverse();
        if lowers.is_empty() {
            // overlayfs wants a lower; FROM scratch has none.
            crate::private::create_dir(empty)?;
            lowers.push(empty.to_path_buf());
        }
        let mut fs = StepFs {
            dir,
            rootfs,
            upper,
            mounted: false,
        };
        // Not volatile: the upper becomes a cached layer, which must survive a host crash.
        OverlayMount {
            lowers,
            upper: fs.upper.clone(),
            work,
            volatile: false,
        }
        .mount_at(&fs.rootfs)?;
        fs.mounted = true;
        Ok(fs)
    }

    /// Unmounts (the upper dir stays, to be committed).
    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            OverlayMount::unmount(&self.rootfs)?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for StepFs {
    fn drop(&mut self) {
        let _ = self.unmount();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
