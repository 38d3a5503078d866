//! What the CRI keeps of a pod beyond the engine's container records: its network attachment
//! (the CNI network, the ADD's result, the port mappings), which StopPodSandbox's DEL and
//! PodSandboxStatus need after a daemon restart. One file per pod, replaced atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodNetwork {
    /// The CNI network's name and config file at ADD time.
    pub network: String,
    pub config_file: PathBuf,
    pub netns: PathBuf,
    pub ifname: String,
    /// The ADD's result (DEL and CHECK get it as prevResult).
    pub result: serde_json::Value,
    pub port_mappings: Vec<serde_json::Value>,
    /// Set once DEL ran (StopPodSandbox): the addresses stay for the status.
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone)]
pub struct PodStates {
    dir: PathBuf,
}

impl PodStates {
    pub fn open(dir: &Path) -> Result<PodStates> {
        // Root's alone (docs/security.md): a pod's network record names its namespace.
        berth_engine::modes::create_private_dir(dir)
            .map_err(|e| Error::Internal(format!("create {}: {e}", dir.display())))?;
        Ok(PodStates {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, sandbox: &str) -> PathBuf {
        self.dir.join(format!("{sandbox}.json"))
    }

    pub fn get(&self, sandbox: &str) -> Option<PodNetwork> {
        let data = std::fs::read(self.path(sandbox)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub fn put(&self, sandbox: &str, net: &PodNetwork) -> Result<()> {
        let path = self.path(sandbox);
        // A temp file of this write's own (two writers never rename each other's), 0600 before
        // its first byte.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tmp = path.with_extension(format!(
            "{}-{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec(net)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| Error::Internal(format!("write {}: {e}", path.display())))
    }

    pub fn remove(&self, sandbox: &str) {
        let _ = std::fs::remove_file(self.path(sandbox));
    }
}
