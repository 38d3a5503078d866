//! The daemon's networks and their IPAM, persisted one record per network
//! (`<root>/networks/<id>.json`, replaced atomically), so that a restarted daemon hands out no
//! address that a running container holds.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Net;
use crate::error::{Error, Result};

/// dockerd's option naming the bridge interface of a network.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// One network: Docker's fields, its bridge and the addresses handed out on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    /// Whether the user gave the IPAM config (inspect shows only what was asked or picked).
    #[serde(default)]
    pub user_ipam: bool,
    pub internal: bool,
    pub attachable: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The bridge interface (bridge driver only).
    pub bridge: String,
    /// Address → the endpoint (container id) holding it.
    pub allocated: BTreeMap<Ipv4Addr, String>,
    /// The last address handed out: the next search starts after it, so a freed address is
    /// not reused at once (peers' ARP caches still name its old MAC).
    #[serde(default)]
    pub last: Option<Ipv4Addr>,
}

impl Network {
    /// bridge, host and none: made by the daemon, never removed.
    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// User-defined bridge networks have container DNS and aliases.
    pub fn is_user_defined(&self) -> bool {
        !self.is_predefined()
    }

    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }
}

/// Where default subnets come from: `base` split into subnets of `size` bits (dockerd's
/// `--default-address-pool base=…,size=…`).
#[derive(Debug, Clone)]
pub struct AddressPool {
    pub base: Ipv4Net,
    pub size: u8,
}

/// dockerd's defaults: 172.17–31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<AddressPool> {
    let mut v: Vec<AddressPool> = (17..=31)
        .map(|b| AddressPool {
            base: Ipv4Net::known(Ipv4Addr::new(172, b, 0, 0), 16),
            size: 16,
        })
        .collect();
    v.push(AddressPool {
        base: Ipv4Net::known(Ipv4Addr::new(192, 168, 0, 0), 16),
        size: 20,
    });
    v
}

/// What `POST /networks/create` asks for, already parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    pub attachable: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, the caller's clock.
    pub created: String,
}

/// The daemon's settings for its default bridge and its default subnets.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The default bridge's interface (dockerd's `--bridge`; `berth0`).
    pub bridge: String,
    /// The default bridge's gateway and subnet (dockerd's `--bip`, `10.1.2.1/24`).
    pub bip: Option<(Ipv4Addr, Ipv4Net)>,
    /// The address already on the default bridge's interface, if it exists (a daemon with
    /// a fresh root adopts it, as dockerd adopts docker0's, rather than add another).
    pub existing: Option<(Ipv4Addr, Ipv4Net)>,
    pub pools: Vec<AddressPool>,
}

/// All networks of a daemon.
#[derive(Debug)]
pub struct Networks {
    dir: PathBuf,
    pools: Vec<AddressPool>,
    all: Mutex<BTreeMap<String, Network>>,
}

impl Networks {
    /// Loads the records under `dir`, and makes the predefined networks the first time (the
    /// default bridge on `--bip` or the first free default subnet).
    pub fn open(
        dir: &Path,
        defaults: &Defaults,
        host_routes: &[Ipv4Net],
        now: &str,
    ) -> Result<Networks> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file("create", dir, e))?;
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(dir)
            .map_err(|e| Error::file("read", dir, e))?
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                // A write a killed daemon left half-done; its record is the one beside it.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let data = std::fs::read(&path).map_err(|e| Error::file("read", &path, e))?;
            let n: Network =
                serde_json::from_slice(&data).map_err(|e| Error::Parse { path, source: e })?;
            all.insert(n.id.clone(), n);
        }
        let store = Networks {
            dir: dir.to_owned(),
            pools: defaults.pools.clone(),
            all: Mutex::new(all),
        };
        store.ensure_predefined(defaults, host_routes, now)?;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Network>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ensure_predefined(
        &self,
        defaults: &Defaults,
        host_routes: &[Ipv4Net],
        now: &str,
    ) -> Result<()> {
        let mut all = self.lock();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !all.values().any(|n| n.name == name) {
                let n = blank(name, driver, now)?;
                self.persist(&n)?;
                all.insert(n.id.clone(), n);
            }
        }
        let existing = all.values().find(|n| n.name == "bridge").cloned();
        let mut n = match existing {
            Some(n) => n,
            None => blank("bridge", "bridge", now)?,
        };
        n.bridge = defaults.bridge.clone();
        n.options
            .insert(BRIDGE_NAME_OPTION.into(), defaults.bridge.clone());
        match defaults.bip {
            Some((gw, subnet)) => {
                n.subnet = Some(subnet);
                n.gateway = Some(gw);
            }
            None if n.subnet.is_none() => match defaults.existing {
                Some((gw, subnet)) => {
                    n.subnet = Some(subnet);
                    n.gateway = Some(gw);
                }
                None => {
                    let taken: Vec<Ipv4Net> = all.values().filter_map(|n| n.subnet).collect();
                    let subnet = pick_subnet(&self.pools, &taken, host_routes)?;
                    n.subnet = Some(subnet);
                    n.gateway = subnet.nth(1);
                }
            },
            None => {}
        }
        // Addresses of the old bridge subnet cannot stay valid on a new one.
        if let Some(s) = n.subnet {
            n.allocated.retain(|ip, _| s.contains(*ip));
        }
        self.persist(&n)?;
        all.insert(n.id.clone(), n);
        Ok(())
    }

    pub fn list(&self) -> Vec<Network> {
        self.lock().values().cloned().collect()
    }

    /// By full id, name, or unique id prefix (dockerd's order).
    pub fn find(&self, key: &str) -> Option<Network> {
        let all = self.lock();
        if let Some(n) = all.get(key) {
            return Some(n.clone());
        }
        if let Some(n) = all.values().find(|n| n.name == key) {
            return Some(n.clone());
        }
        let mut m = all
            .values()
            .filter(|n| !key.is_empty() && n.id.starts_with(key));
        match (m.next(), m.next()) {
            (Some(n), None) => Some(n.clone()),
            _ => None,
        }
    }

    /// Records a new network (its bridge is the caller's to make). Refuses a name in use, an
    /// unknown driver, a gateway or range outside the subnet, and a subnet overlapping another
    /// network's.
    pub fn create(&self, req: CreateRequest, host_routes: &[Ipv4Net]) -> Result<Network> {
        let mut all = self.lock();
        if all.values().any(|n| n.name == req.name) {
            return Err(Error::NameInUse(req.name));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_owned()
        } else {
            req.driver.clone()
        };
        if driver != "bridge" {
            return Err(Error::DriverNotFound(driver));
        }
        let taken: Vec<Ipv4Net> = all.values().filter_map(|n| n.subnet).collect();
        let (subnet, user_ipam) = match req.subnet {
            Some(s) => {
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(Error::PoolOverlap);
                }
                if s.prefix() > 30 {
                    return Err(Error::InvalidConfig(format!(
                        "invalid subnet {s}: too small for a gateway and a container"
                    )));
                }
                (s, true)
            }
            None => {
                if req.gateway.is_some() || req.ip_range.is_some() {
                    return Err(Error::InvalidConfig(
                        "invalid pool request: gateway or ip-range needs a subnet".into(),
                    ));
                }
                (pick_subnet(&self.pools, &taken, host_routes)?, false)
            }
        };
        let gateway = match req.gateway {
            Some(g) if !subnet.contains(g) || g == subnet.base() || g == subnet.broadcast() => {
                return Err(Error::InvalidConfig(format!(
                    "no matching subnet for gateway {g}"
                )))
            }
            Some(g) => g,
            None => subnet
                .nth(1)
                .ok_or_else(|| Error::InvalidCidr(subnet.to_string()))?,
        };
        if let Some(r) = req.ip_range {
            if !subnet.contains_net(&r) {
                return Err(Error::InvalidConfig(format!(
                    "no matching subnet for range {r}"
                )));
            }
        }
        let mut n = blank(&req.name, &driver, &req.created)?;
        n.subnet = Some(subnet);
        n.gateway = Some(gateway);
        n.ip_range = req.ip_range;
        n.user_ipam = user_ipam;
        n.internal = req.internal;
        n.attachable = req.attachable;
        n.labels = req.labels;
        n.bridge = req
            .options
            .get(BRIDGE_NAME_OPTION)
            .cloned()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| format!("br-{}", &n.id[..12]));
        if n.bridge.len() > 15 {
            return Err(Error::InvalidConfig(format!(
                "invalid bridge name {}: longer than 15 bytes",
                n.bridge
            )));
        }
        if all.values().any(|o| o.bridge == n.bridge) {
            return Err(Error::InvalidConfig(format!(
                "bridge name {} is used by another network",
                n.bridge
            )));
        }
        n.options = req.options;
        self.persist(&n)?;
        all.insert(n.id.clone(), n.clone());
        Ok(n)
    }

    /// Forgets a network (its bridge is the caller's to delete).
    pub fn remove(&self, id: &str) -> Result<()> {
        let mut all = self.lock();
        let path = self.dir.join(format!("{id}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::file("remove", &path, e)),
        }
        all.remove(id);
        Ok(())
    }

    /// Hands `owner` an address on network `id`: `want` if it is free and in range, else the
    /// next free one after the last handed out. Persisted before it is returned.
    pub fn allocate(&self, id: &str, owner: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let mut all = self.lock();
        let n = all
            .get_mut(id)
            .ok_or_else(|| Error::NetworkNotFound(id.to_owned()))?;
        let subnet = n
            .subnet
            .ok_or_else(|| Error::InvalidConfig(format!("network {} has no subnet", n.name)))?;
        let reserved = |n: &Network, ip: Ipv4Addr| {
            ip == subnet.base() || ip == subnet.broadcast() || Some(ip) == n.gateway
        };
        let ip = match want {
            Some(ip) => {
                if !subnet.contains(ip) || reserved(n, ip) {
                    return Err(Error::AddressOutOfRange(ip));
                }
                match n.allocated.get(&ip) {
                    Some(o) if o != owner => return Err(Error::AddressInUse(ip)),
                    _ => ip,
                }
            }
            None => {
                let range = n.ip_range.unwrap_or(subnet);
                let start = n
                    .last
                    .and_then(|l| range.offset(l))
                    .map(|o| o + 1)
                    .unwrap_or(0);
                let size = range.size();
                (0..size)
                    .filter_map(|i| range.nth((start + i) % size))
                    .find(|ip| !reserved(n, *ip) && !n.allocated.contains_key(ip))
                    .ok_or_else(|| Error::PoolExhausted {
                        network: n.name.clone(),
                    })?
            }
        };
        n.allocated.insert(ip, owner.to_owned());
        if want.is_none() {
            n.last = Some(ip);
        }
        let n = n.clone();
        self.persist(&n)?;
        Ok(ip)
    }

    /// Frees what `owner` holds on network `id` (all networks when `id` is None).
    pub fn release(&self, id: Option<&str>, owner: &str) -> Result<()> {
        self.retain(id, |o| o != owner)
    }

    /// Frees every address whose owner `keep` rejects (containers gone while the daemon was
    /// down).
    pub fn release_unless(&self, keep: impl Fn(&str) -> bool) -> Result<()> {
        self.retain(None, keep)
    }

    fn retain(&self, id: Option<&str>, keep: impl Fn(&str) -> bool) -> Result<()> {
        let mut all = self.lock();
        let mut changed = Vec::new();
        for n in all.values_mut() {
            if id.is_some_and(|id| id != n.id) {
                continue;
            }
            let before = n.allocated.len();
            n.allocated.retain(|_, o| keep(o));
            if n.allocated.len() != before {
                changed.push(n.clone());
            }
        }
        // Under the lock, as every write of a record: a later change can never be
        // overwritten on disk by an earlier one.
        for n in changed {
            self.persist(&n)?;
        }
        drop(all);
        Ok(())
    }

    /// Writes a record (the caller holds the lock): a temp file of its own, fsync, rename. A
    /// kill at any instant leaves the old record or the new one, and at worst a temp file,
    /// which `open` ignores (not `.json`) and removes.
    fn persist(&self, n: &Network) -> Result<()> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = self.dir.join(format!("{}.json", n.id));
        let tmp = self.dir.join(format!(
            ".{}.{}-{}.tmp",
            n.id,
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let data = serde_json::to_vec_pretty(n).map_err(|e| Error::Parse {
            path: path.clone(),
            source: e,
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::file("create", &tmp, e))?;
        f.write_all(&data)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::file("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::file("rename", &path, e))
    }
}

fn blank(name: &str, driver: &str, created: &str) -> Result<Network> {
    Ok(Network {
        id: new_id()?,
        name: name.to_owned(),
        driver: driver.to_owned(),
        created: created.to_owned(),
        subnet: None,
        gateway: None,
        ip_range: None,
        user_ipam: false,
        internal: false,
        attachable: false,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        bridge: String::new(),
        allocated: BTreeMap::new(),
        last: None,
    })
}

/// The first subnet of the pools that overlaps neither a network of this daemon nor a route of
/// the host (another daemon's bridge, a VPN, the LAN).
pub fn pick_subnet(
    pools: &[AddressPool],
    taken: &[Ipv4Net],
    host_routes: &[Ipv4Net],
) -> Result<Ipv4Net> {
    pools
        .iter()
        .flat_map(|p| p.base.subnets(p.size))
        .find(|s| {
            !taken.iter().any(|t| t.overlaps(s)) && !host_routes.iter().any(|r| r.overlaps(s))
        })
        .ok_or(Error::NoFreeSubnet)
}

fn new_id() -> Result<String> {
    let mut buf = [0u8; 32];
    let path = Path::new("/dev/urandom");
    let mut f = std::fs::File::open(path).map_err(|e| Error::file("open", path, e))?;
    std::io::Read::read_exact(&mut f, &mut buf).map_err(|e| Error::file("read", path, e))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Networks {
        let defaults = Defaults {
            bridge: "tb0".into(),
            bip: None,
            existing: None,
            pools: vec![AddressPool {
                base: "10.77.0.0/16".parse().unwrap(),
                size: 24,
            }],
        };
        let routes = vec!["10.77.0.0/24".parse().unwrap()];
        Networks::open(dir, &defaults, &routes, "2024-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn a_fresh_store_adopts_the_bridge_address_and_a_recorded_one_stays() {
        let dir = std::env::temp_dir().join(format!("berth-adopt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = |existing: &str| {
            let (gw, _) = existing.split_once('/').unwrap();
            let defaults = Defaults {
                bridge: "tb0".into(),
                bip: None,
                existing: Some((gw.parse().unwrap(), existing.parse().unwrap())),
                pools: vec![AddressPool {
                    base: "10.77.0.0/16".parse().unwrap(),
                    size: 24,
                }],
            };
            // The bridge's own route is among the host's: adopting must not skip it.
            let routes = vec![existing.parse().unwrap()];
            Networks::open(&dir, &defaults, &routes, "2024-01-01T00:00:00Z").unwrap()
        };
        let s = open("10.99.0.1/16");
        let b = s.find("bridge").unwrap();
        assert_eq!(b.subnet.unwrap().to_string(), "10.99.0.0/16");
        assert_eq!(b.gateway.unwrap().to_string(), "10.99.0.1");
        drop(s);
        // Once recorded, the subnet is the store's, whatever the interface shows later.
        let s = open("10.98.0.1/24");
        assert_eq!(
            s.find("bridge").unwrap().subnet.unwrap().to_string(),
            "10.99.0.0/16"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ipam_never_hands_out_an_address_twice_and_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("berth-ipam-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = store(&dir);
        let bridge = s.find("bridge").unwrap();
        // The host's route 10.77.0.0/24 is skipped.
        assert_eq!(bridge.subnet.unwrap().to_string(), "10.77.1.0/24");
        let n = s
            .create(
                CreateRequest {
                    name: "n1".into(),
                    subnet: Some("10.88.0.0/29".parse().unwrap()),
                    ..Default::default()
                },
                &[],
            )
            .unwrap();
        let a = s.allocate(&n.id, "c1", None).unwrap();
        let b = s.allocate(&n.id, "c2", None).unwrap();
        assert_eq!(
            (a.to_string().as_str(), b.to_string().as_str()),
            ("10.88.0.2", "10.88.0.3")
        );
        assert!(matches!(
            s.allocate(&n.id, "c3", Some(a)),
            Err(Error::AddressInUse(_))
        ));
        assert!(matches!(
            s.allocate(&n.id, "c3", Some("10.88.1.2".parse().unwrap())),
            Err(Error::AddressOutOfRange(_))
        ));
        s.release(Some(&n.id), "c1").unwrap();
        drop(s);
        let s = store(&dir);
        // c2's address is still held after a reopen; the freed one comes back only after the
        // rest of the range.
        let ips: Vec<String> = (0..4)
            .map(|i| {
                s.allocate(&n.id, &format!("d{i}"), None)
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ips, ["10.88.0.4", "10.88.0.5", "10.88.0.6", "10.88.0.2"]);
        assert!(matches!(
            s.allocate(&n.id, "d9", None),
            Err(Error::PoolExhausted { .. })
        ));
        assert!(matches!(
            s.create(
                CreateRequest {
                    name: "n2".into(),
                    subnet: Some("10.88.0.0/16".parse().unwrap()),
                    ..Default::default()
                },
                &[]
            ),
            Err(Error::PoolOverlap)
        ));
        assert!(matches!(
            s.create(
                CreateRequest {
                    name: "n1".into(),
                    ..Default::default()
                },
                &[]
            ),
            Err(Error::NameInUse(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
