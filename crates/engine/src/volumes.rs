//! Named volumes of the `local` driver: `volumes/<name>/_data` with a small metadata file
//! beside it. Volumes outlive containers; `rm -v` and `volume prune` remove them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, Result};
use crate::files;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    name: String,
    created_at: String,
    #[serde(default)]
    labels: HashMap<String, String>,
    #[serde(default)]
    options: HashMap<String, String>,
    /// Whether the image's content has been copied in (done once, at the first mount).
    #[serde(default)]
    populated: bool,
}

#[derive(Debug)]
pub struct Volumes {
    dir: PathBuf,
    lock: Mutex<()>,
    /// Who owns a new volume's `_data`: the remapped root under `--userns-remap`.
    owner: Option<(u32, u32)>,
}

impl Volumes {
    pub fn open(dir: &Path) -> std::io::Result<Volumes> {
        crate::modes::create_dir(dir, 0o701)?;
        Ok(Volumes {
            dir: dir.to_owned(),
            lock: Mutex::new(()),
            owner: None,
        })
    }

    /// New volumes belong to `uid:gid` (the root of the daemon's remapped range).
    pub fn with_owner(mut self, owner: Option<(u32, u32)>) -> Volumes {
        self.owner = owner;
        self
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Creates the volume, or returns the existing one of that name (dockerd's behaviour).
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<Value> {
        if let Some(d) = driver.filter(|d| !d.is_empty() && *d != "local") {
            return Err(ApiError::NotFound(format!(
                "error looking up volume plugin {d}: plugin \"{d}\" not found"
            )));
        }
        if let Some(k) = options.keys().next() {
            return Err(ApiError::BadRequest(format!(
                "invalid option for the local volume driver: {k:?} (berth's local driver takes none yet)"
            )));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate(n)?;
                n.to_owned()
            }
            None => crate::container::new_id()?,
        };
        let _g = self.guard();
        if let Ok(v) = self.read(&name) {
            return Ok(self.to_api(&v));
        }
        let data = self.data_dir(&name);
        // dockerd's modes: the volume's directory is traversed, never listed; `_data` is
        // what the container sees at the mount point.
        crate::modes::create_dir(&self.dir.join(&name), 0o701)
            .and_then(|()| crate::modes::create_dir(&data, 0o755))
            .map_err(|e| ApiError::internal(format!("create {}", data.display()), e))?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                .map_err(|e| ApiError::internal(format!("chown {}", data.display()), e))?;
        }
        let meta = Meta {
            name: name.clone(),
            created_at: files::now_rfc3339(),
            labels,
            options,
            populated: false,
        };
        self.write(&meta)?;
        Ok(self.to_api(&meta))
    }

    pub fn inspect(&self, name: &str) -> Result<Value> {
        Ok(self.to_api(&self.read(name)?))
    }

    #[allow(dead_code)] // kept for the API handlers that will need it
    pub fn exists(&self, name: &str) -> bool {
        self.read(name).is_ok()
    }

    pub fn list(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if let Some(name) = e.file_name().to_str() {
                if let Ok(m) = self.read(name) {
                    out.push(self.to_api(&m));
                }
            }
        }
        out
    }

    /// Removes the volume unless a container uses it (`users` holds their ids).
    pub fn remove(&self, name: &str, users: &[String], force: bool) -> Result<()> {
        let _g = self.guard();
        if self.read(name).is_err() {
            if force {
                return Ok(());
            }
            return Err(ApiError::NotFound(format!("get {name}: no such volume")));
        }
        if !users.is_empty() {
            return Err(ApiError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.dir.join(name);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("remove {}", dir.display()), e))
    }

    /// Marks the volume populated; returns true when the caller should copy the image's
    /// content in (the first mount of a fresh, empty volume).
    pub fn claim_copy_up(&self, name: &str) -> Result<bool> {
        let _g = self.guard();
        let mut m = self.read(name)?;
        if m.populated {
            return Ok(false);
        }
        m.populated = true;
        self.write(&m)?;
        let empty = std::fs::read_dir(self.data_dir(name))
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        Ok(empty)
    }

    #[allow(dead_code)] // kept for the API handlers that will need it
    pub fn labels(&self, name: &str) -> HashMap<String, String> {
        self.read(name).map(|m| m.labels).unwrap_or_default()
    }

    pub fn size(&self, name: &str) -> u64 {
        dir_size(&self.data_dir(name))
    }

    fn read(&self, name: &str) -> Result<Meta> {
        let path = self.dir.join(name).join("volume.json");
        let data = std::fs::read(&path)
            .map_err(|_| ApiError::NotFound(format!("get {name}: no such volume")))?;
        serde_json::from_slice(&data)
            .map_err(|e| ApiError::internal(format!("read {}", path.display()), e))
    }

    fn write(&self, m: &Meta) -> Result<()> {
        let path = self.dir.join(&m.name).join("volume.json");
        files::write_json_atomic(&path, m)
            .map_err(|e| ApiError::internal(format!("write {}", path.display()), e))
    }

    fn to_api(&self, m: &Meta) -> Value {
        json!({
            "Name": m.name,
            "Driver": "local",
            "Mountpoint": self.data_dir(&m.name),
            "CreatedAt": m.created_at,
            "Labels": m.labels,
            "Scope": "local",
            "Options": m.options,
        })
    }
}

fn validate(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    total += m.len();
                }
            }
        }
    }
    total
}
