//! A container's record as the daemon keeps it (`containers/<id>/config.v2.json`), and the
//! registry that finds containers by id, unique id prefix or name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Result};
use crate::files;

/// Everything the daemon knows about one container; persisted on every change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Without the leading slash that the API shows.
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub restart_count: u32,
    pub mounts: Vec<MountRecord>,
    /// The overlay of the image's layers under the container's own upper dir.
    pub rootfs: RootfsRecord,
    #[serde(default)]
    pub runtime: String,
    /// The host ids this container's user namespace maps to (`--userns-remap`); none: the
    /// host's user namespace.
    #[serde(default)]
    pub userns: Option<crate::userns::IdRange>,
    /// Network name → the container's endpoint on it (bridge networks only).
    #[serde(default)]
    pub networks: BTreeMap<String, crate::network::Endpoint>,
    /// The host ports bound at the last start, while it runs.
    #[serde(default)]
    pub ports: Vec<crate::network::PortMapping>,
    /// Legacy links on the default bridge (`--link NAME:ALIAS`), by the linked container's id.
    #[serde(default)]
    pub links: Vec<crate::links::Link>,
    /// What a container made through the engine's interface (the CRI) has beyond Docker's
    /// API; none for the Engine API's containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<Extras>,
}

/// A container's settings that Docker's API has no words for (the CRI's pods need them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Extras {
    /// A pod's infra: berth's own pause process (the runtime's `berth.pause`) in an empty,
    /// read-only root; no image.
    #[serde(default)]
    pub infra: bool,
    /// The output goes to this file in the CRI's log format (kubelet's path) instead of the
    /// json-file log.
    #[serde(default)]
    pub cri_log: Option<PathBuf>,
    /// The process's supplementary groups are the ones asked for only, not also those the
    /// image's /etc/group gives its user (Kubernetes' `Strict` supplementalGroupsPolicy).
    #[serde(default)]
    pub strict_groups: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// created, running, paused, restarting, removing, exited or dead.
    pub status: String,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    /// The healthcheck's state while the container has one (health.rs).
    #[serde(default)]
    pub health: Option<crate::health::Health>,
}

/// One mount of a volume, bind or tmpfs, resolved at create time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    /// bind, volume or tmpfs.
    pub kind: String,
    /// The volume's name (volumes only).
    pub name: String,
    /// The host path (binds and volumes).
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    /// Extra mount options (tmpfs size=…, bind propagation).
    pub options: Vec<String>,
    /// Created for this container alone (`-v /path`, an image VOLUME): `rm -v` removes it.
    pub anonymous: bool,
    /// The mode as inspect shows it: a `-v` spec's own (`ro,rslave`), dockerd's `z` for a
    /// named volume; None in records written before it was kept.
    #[serde(default)]
    pub mode: Option<String>,
    /// A volume's directory mounted instead of its root (`VolumeOptions.Subpath`).
    #[serde(default)]
    pub subpath: String,
}

/// The bind propagation modes, as `-v` options and `BindOptions.Propagation` name them.
pub const PROPAGATION_MODES: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

impl MountRecord {
    /// The bind's propagation as dockerd reports and applies it: the one asked for, else
    /// `rprivate`; none for volumes and tmpfs.
    pub fn propagation(&self) -> &str {
        if self.kind != "bind" {
            return "";
        }
        self.options
            .iter()
            .map(String::as_str)
            .find(|o| PROPAGATION_MODES.contains(o))
            .unwrap_or("rprivate")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootfsRecord {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl RootfsRecord {
    /// The overlay of these directories (not volatile: the start of a `--rm` container asks for that).
    pub fn overlay(&self) -> berth_image::OverlayMount {
        berth_image::OverlayMount {
            lowers: self.lowers.clone(),
            upper: self.upper.clone(),
            work: self.work.clone(),
            volatile: false,
        }
    }
}

pub const NEVER: &str = "0001-01-01T00:00:00Z";

impl Container {
    /// A record holding only a HostConfig and Config, to check them before anything is made.
    pub fn probe(hc: &HostConfig, config: &ContainerConfig) -> Container {
        Container {
            id: String::new(),
            name: String::new(),
            created: String::new(),
            image: String::new(),
            image_id: String::new(),
            config: config.clone(),
            host_config: hc.clone(),
            path: String::new(),
            args: Vec::new(),
            state: State::default(),
            restart_count: 0,
            mounts: Vec::new(),
            rootfs: RootfsRecord {
                lowers: Vec::new(),
                upper: PathBuf::new(),
                work: PathBuf::new(),
            },
            runtime: String::new(),
            userns: None,
            networks: BTreeMap::new(),
            ports: Vec::new(),
            links: Vec::new(),
            extras: None,
        }
    }

    /// A pod's infra container (no image, berth's pause process).
    pub fn is_infra(&self) -> bool {
        self.extras.as_ref().is_some_and(|x| x.infra)
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.state.status.as_str(),
            "running" | "paused" | "restarting"
        )
    }

    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }
}

/// All containers, by id; names are unique among them.
#[derive(Debug)]
pub struct Containers {
    dir: PathBuf,
    all: Mutex<BTreeMap<String, Container>>,
}

impl Containers {
    /// Loads every record under `dir` (root/containers); a record that cannot be read is
    /// reported and skipped rather than stopping the daemon. What a daemon killed mid-way left
    /// is finished here: a removal's renamed directory is removed, and so is a create's
    /// directory that never got its record.
    pub fn load(dir: &Path) -> std::io::Result<Containers> {
        crate::modes::create_dir(dir, 0o710)?;
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(DOOMED_PREFIX)
            {
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            }
            let path = entry.path().join("config.v2.json");
            let data = match std::fs::read(&path) {
                Ok(data) => data,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Never started (a record is written before any start), so nothing is
                    // mounted there.
                    let _ = std::fs::remove_dir_all(entry.path());
                    continue;
                }
                Err(_) => continue,
            };
            match serde_json::from_slice::<Container>(&data) {
                Ok(c) => {
                    // A remapped container's directory has its range's group (a daemon that
                    // starts remapping, or an older version's directory).
                    let group = c.userns.map(|r| r.gid);
                    if let Err(e) = crate::modes::own_container_dir(&entry.path(), group) {
                        eprintln!("berth daemon: {}: {e}", entry.path().display());
                    }
                    all.insert(c.id.clone(), c);
                }
                Err(e) => eprintln!("berth daemon: skipping {}: {e}", path.display()),
            }
        }
        Ok(Containers {
            dir: dir.to_owned(),
            all: Mutex::new(all),
        })
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Container>> {
        // A poisoned lock only means a handler panicked mid-update; the map itself is intact.
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The container `name_or_id` names: a full id, a name (with or without the slash), or a
    /// unique id prefix, in dockerd's order.
    pub fn find(&self, name_or_id: &str) -> Result<Container> {
        let all = self.lock();
        Self::find_in(&all, name_or_id).cloned()
    }

    fn find_in<'a>(all: &'a BTreeMap<String, Container>, key: &str) -> Result<&'a Container> {
        if let Some(c) = all.get(key) {
            return Ok(c);
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = all.values().find(|c| c.name == name) {
            return Ok(c);
        }
        // A link's name, `PARENT/ALIAS`, names the linked container (dockerd's).
        if let Some((parent, alias)) = name.rsplit_once('/') {
            let child = all
                .values()
                .find(|p| p.name == parent)
                .and_then(|p| p.links.iter().find(|l| l.alias == alias))
                .and_then(|l| all.get(&l.child));
            return child.ok_or_else(|| ApiError::NotFound(format!("No such container: {key}")));
        }
        let mut matches = all
            .values()
            .filter(|c| !key.is_empty() && c.id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some(c), None) => Ok(c),
            (Some(_), Some(_)) => Err(ApiError::NotFound(format!(
                "Multiple IDs found with provided prefix: {key}"
            ))),
            _ => Err(ApiError::NotFound(format!("No such container: {key}"))),
        }
    }

    pub fn list(&self) -> Vec<Container> {
        self.lock().values().cloned().collect()
    }

    /// Adds a new container. A name the user chose that is in use is refused with dockerd's
    /// message; a generated one (`generated`) that is taken is drawn again under the same lock,
    /// as dockerd does (five more draws, then the short id), so an unnamed create never fails
    /// on a name.
    pub fn insert(&self, mut c: Container, generated: bool) -> Result<Container> {
        let mut all = self.lock();
        let mut retry = 0;
        while let Some(other) = all.values().find(|o| o.name == c.name) {
            if !generated {
                return Err(name_conflict(&c.name, &other.id));
            }
            retry += 1;
            c.name = if retry <= 5 {
                generate_name(retry)?
            } else if retry == 6 {
                c.id[..12].to_owned()
            } else {
                return Err(name_conflict(&c.name, &other.id));
            };
        }
        self.persist(&c)?;
        all.insert(c.id.clone(), c.clone());
        Ok(c)
    }

    /// Changes a container under the registry's lock and persists the result.
    pub fn update<T>(&self, id: &str, f: impl FnOnce(&mut Container) -> Result<T>) -> Result<T> {
        let mut all = self.lock();
        let names: Vec<(String, String)> = all
            .values()
            .filter(|c| c.id != id)
            .map(|c| (c.name.clone(), c.id.clone()))
            .collect();
        let c = all
            .get_mut(id)
            .ok_or_else(|| ApiError::NotFound(format!("No such container: {id}")))?;
        let mut changed = c.clone();
        let out = f(&mut changed)?;
        if let Some((_, other)) = names.iter().find(|(n, _)| *n == changed.name) {
            return Err(name_conflict(&changed.name, other));
        }
        // An update that changes nothing costs no write (each is an fsync on the start and
        // exit paths).
        let unchanged = serde_json::to_vec(&changed).ok() == serde_json::to_vec(&*c).ok();
        if !unchanged {
            self.persist(&changed)?;
        }
        *c = changed;
        Ok(out)
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn persist(&self, c: &Container) -> Result<()> {
        let dir = self.dir.join(&c.id);
        crate::modes::create_dir(&dir, 0o700)
            .map_err(|e| ApiError::internal(format!("create {}", dir.display()), e))?;
        let path = dir.join("config.v2.json");
        files::write_json_atomic(&path, c)
            .map_err(|e| ApiError::internal(format!("write {}", path.display()), e))
    }
}

/// A container directory being removed is renamed to this prefix first.
const DOOMED_PREFIX: &str = ".removing-";

/// Where a container's directory goes while it is removed.
pub fn doomed_dir(dir: &Path) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{DOOMED_PREFIX}{}", name.unwrap_or_default()))
}

fn name_conflict(name: &str, other: &str) -> ApiError {
    ApiError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// Container names as dockerd accepts them.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && name.len() >= 2 {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// A new 64-hex id from the kernel's random pool.
pub fn new_id() -> Result<String> {
    let mut buf = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| ApiError::internal("open /dev/urandom", e))?;
    std::io::Read::read_exact(&mut f, &mut buf)
        .map_err(|e| ApiError::internal("read /dev/urandom", e))?;
    Ok(hex::encode(buf))
}

/// A generated name in dockerd's adjective_surname style, drawn from the kernel's random pool
/// (never from the id or a clock, so requests made at the same instant draw independently).
/// `retry` > 0 adds a digit, as dockerd's later draws do.
pub fn generate_name(retry: u32) -> Result<String> {
    const LEFT: &str = "\
        able agile amazing amused ardent awake beloved blissful bold brave bright busy calm \
        candid careful charming cheerful clever cool cosmic crisp curious daring dazzling \
        devoted eager earnest elated elegant epic fervent festive fierce fond focused frosty \
        gallant generous gentle gifted glad graceful happy hardy honest hopeful humble jolly \
        jovial keen kind lively loving lucid lucky merry mighty modest nifty noble patient \
        peaceful plucky polite proud quick quiet quirky radiant relaxed resolute serene \
        sharp shiny silly sincere sleepy smart snappy spry steady stoic sunny swift tender \
        thrifty tidy trusty upbeat valiant vibrant vigilant warm wise witty zealous zen";
    const RIGHT: &str = "\
        agnesi allen archimedes babbage banach bardeen bell bohr boole borg bose brahe \
        cantor carson cauchy cerf chandra clarke conway copernicus curie darwin dijkstra \
        dirac easley edison einstein euclid euler faraday fermat fermi feynman franklin \
        galileo gauss germain goldberg goodall hamilton hawking heisenberg hertz hilbert \
        hodgkin hopper hoover hubble hypatia jackson jemison johnson joule kalam kepler \
        khayyam knuth kowalevski lamarr lamport laplace leibniz liskov lovelace lumiere \
        maxwell mcclintock meitner mendel mirzakhani morse newton nobel noether noyce pascal \
        pasteur payne perlman planck poincare ramanujan ride ritchie rosalind sagan shannon \
        shockley sinoussi tesla thompson torvalds turing volta wilson wozniak wright yalow";
    let left: Vec<&str> = LEFT.split_whitespace().collect();
    let right: Vec<&str> = RIGHT.split_whitespace().collect();
    let mut b = [0u8; 6];
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| ApiError::internal("open /dev/urandom", e))?;
    std::io::Read::read_exact(&mut f, &mut b)
        .map_err(|e| ApiError::internal("read /dev/urandom", e))?;
    let l = usize::from(u16::from_le_bytes([b[0], b[1]])) % left.len();
    let r = usize::from(u16::from_le_bytes([b[2], b[3]])) % right.len();
    let mut name = format!("{}_{}", left[l], right[r]);
    if retry > 0 {
        name.push(char::from(b'0' + b[4] % 10));
    }
    Ok(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_drawn_independently() {
        let names: std::collections::HashSet<String> =
            (0..50).map(|_| generate_name(0).unwrap()).collect();
        // 97 × 98 names: fifty draws that mostly collided would mean a seeded generator.
        assert!(names.len() > 40, "{names:?}");
        for n in &names {
            validate_name(n).unwrap();
        }
        let retried = generate_name(1).unwrap();
        assert!(
            retried.chars().last().unwrap().is_ascii_digit(),
            "{retried}"
        );
    }
}
