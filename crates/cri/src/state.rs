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
        std::fs::create_dir_all(dir)
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
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
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
