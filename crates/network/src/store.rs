//! The daemon's networks and their IPAM, persisted one record per network
//! (`<root>/networks/<id>.json`, replaced atomically), so that a restarted daemon hands out no
//! address that a running container holds.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::cidr::{Ipv4Net, Ipv6Net, Subnet};
use crate::error::{Error, Result};
use crate::ipam;

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
    /// Whether the user gave the IPv4 subnet (inspect shows only what was asked or picked).
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
    /// Whether the user gave the IPv4 gateway (inspect shows a gateway the daemon chose only
    /// for a subnet it chose too, as dockerd does).
    #[serde(default)]
    pub gateway_given: bool,
    /// IPAM.Config[].AuxiliaryAddresses of the IPv4 subnet: names for addresses the daemon
    /// never hands out.
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// IPAM.Options, kept as given.
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// IPv6 (`--ipv6`, `EnableIPv6`): each endpoint gets an address of `subnet6` too.
    #[serde(default)]
    pub enable_ipv6: bool,
    #[serde(default)]
    pub v6: Option<Ipv6Pool>,
}

/// A network's IPv6 subnet and what is handed out of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ipv6Pool {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
    pub ip_range: Option<Ipv6Net>,
    /// Whether the user gave the subnet (then `--ip6` may pick an address) and the gateway.
    pub user_subnet: bool,
    pub gateway_given: bool,
    pub aux_addresses: BTreeMap<String, Ipv6Addr>,
    pub allocated: BTreeMap<Ipv6Addr, String>,
    pub last: Option<Ipv6Addr>,
}

impl Network {
    /// The IPv6 subnet containers get addresses of: only on an IPv6 network.
    pub fn ipv6(&self) -> Option<&Ipv6Pool> {
        self.v6.as_ref().filter(|_| self.enable_ipv6)
    }

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

/// Where default IPv6 subnets come from: `base` split into subnets of `size` bits.
#[derive(Debug, Clone)]
pub struct AddressPool6 {
    pub base: Ipv6Net,
    pub size: u8,
}

/// The default IPv6 pool, as recent dockerd makes one without configuration: a unique local
/// /48 (RFC 4193: `fd` and 40 bits that identify this daemon — here a digest of `seed`, its
/// root and the machine's id) split into /64s.
pub fn default_pools6(seed: &[u8]) -> Vec<AddressPool6> {
    use sha2::Digest;
    let d = sha2::Sha256::digest(seed);
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    b[1..6].copy_from_slice(&d[..5]);
    vec![AddressPool6 {
        base: Ipv6Net::known6(Ipv6Addr::from(b), 48),
        size: 64,
    }]
}

/// What `POST /networks/create` asks for, already parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub enable_ipv6: bool,
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub ip_range6: Option<Ipv6Net>,
    /// AuxiliaryAddresses of both subnets, by name.
    pub aux_addresses: Vec<(String, IpAddr)>,
    pub ipam_options: BTreeMap<String, String>,
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
    pub pools6: Vec<AddressPool6>,
}

/// All networks of a daemon.
#[derive(Debug)]
pub struct Networks {
    dir: PathBuf,
    pools: Vec<AddressPool>,
    pools6: Vec<AddressPool6>,
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
        // The networks' records are root's alone (docs/security.md).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(|e| Error::file("create", dir, e))?;
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
            pools6: defaults.pools6.clone(),
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
    /// unknown driver, a gateway, range or auxiliary address outside its subnet, and a subnet
    /// overlapping another network's. `host_routes` (both families) are what a subnet the
    /// daemon picks must not overlap.
    pub fn create(
        &self,
        req: CreateRequest,
        host_routes: &[Ipv4Net],
        host_routes6: &[Ipv6Net],
    ) -> Result<Network> {
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
        let (subnet, gateway, user_ipam) =
            ipam::plan_subnet(req.subnet, req.gateway, req.ip_range, &taken, || {
                pick_subnet(&self.pools, &taken, host_routes)
            })?;
        let mut v6 = self.plan_v6(&req, &all, host_routes6)?;
        let mut n = blank(&req.name, &driver, &req.created)?;
        for (name, ip) in &req.aux_addresses {
            let outside = |pool: String| {
                Error::InvalidConfig(format!(
                    "auxiliary address: ({name}:{ip}) must belong to the master pool: {pool}"
                ))
            };
            match (ip, v6.as_mut()) {
                (IpAddr::V4(a), _) if subnet.contains(*a) => {
                    n.aux_addresses.insert(name.clone(), *a);
                }
                (IpAddr::V4(_), _) => return Err(outside(subnet.to_string())),
                (IpAddr::V6(a), Some(p)) if p.subnet.contains(*a) => {
                    p.aux_addresses.insert(name.clone(), *a);
                }
                (IpAddr::V6(_), p) => {
                    return Err(outside(p.map(|p| p.subnet.to_string()).unwrap_or_default()))
                }
            }
        }
        n.v6 = v6;
        n.enable_ipv6 = req.enable_ipv6;
        n.subnet = Some(subnet);
        n.gateway = Some(gateway);
        n.gateway_given = req.gateway.is_some();
        n.ip_range = req.ip_range;
        n.user_ipam = user_ipam;
        n.ipam_options = req.ipam_options;
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

    /// The IPv6 subnet of a new network: the one asked for (kept even without `EnableIPv6`, as
    /// dockerd shows it), else with `EnableIPv6` the first /64 of the pools that overlaps no
    /// network and no host route.
    fn plan_v6(
        &self,
        req: &CreateRequest,
        all: &BTreeMap<String, Network>,
        host_routes6: &[Ipv6Net],
    ) -> Result<Option<Ipv6Pool>> {
        let taken: Vec<Ipv6Net> = all
            .values()
            .filter_map(|n| n.v6.as_ref().map(|p| p.subnet))
            .collect();
        let asked = req.subnet6.is_some() || req.gateway6.is_some() || req.ip_range6.is_some();
        if !req.enable_ipv6 && !asked {
            return Ok(None);
        }
        let (subnet, gateway, user_subnet) =
            ipam::plan_subnet(req.subnet6, req.gateway6, req.ip_range6, &taken, || {
                pick_subnet6(&self.pools6, &taken, host_routes6)
            })?;
        Ok(Some(Ipv6Pool {
            subnet,
            gateway,
            ip_range: req.ip_range6,
            user_subnet,
            gateway_given: req.gateway6.is_some(),
            aux_addresses: BTreeMap::new(),
            allocated: BTreeMap::new(),
            last: None,
        }))
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
        // The gateway and the auxiliary addresses are in use; the base and the broadcast
        // address are no host's.
        let in_use = |n: &Network, ip: Ipv4Addr| {
            Some(ip) == n.gateway || n.aux_addresses.values().any(|a| *a == ip)
        };
        let ip = match want {
            Some(ip) => {
                if !subnet.is_host(ip) {
                    return Err(Error::AddressOutOfRange(IpAddr::V4(ip)));
                }
                match n.allocated.get(&ip) {
                    Some(o) if o != owner => return Err(Error::AddressInUse(IpAddr::V4(ip))),
                    _ if in_use(n, ip) => return Err(Error::AddressInUse(IpAddr::V4(ip))),
                    _ => ip,
                }
            }
            None => {
                let held = n.allocated.len() + n.aux_addresses.len();
                let range = n.ip_range.unwrap_or(subnet);
                ipam::next_free(subnet, range, n.last, held, |ip| {
                    in_use(n, ip) || n.allocated.contains_key(&ip)
                })
                .ok_or_else(|| Error::PoolExhausted {
                    family: "IPv4",
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

    /// `allocate` for the network's IPv6 subnet (an IPv6 network only).
    pub fn allocate6(&self, id: &str, owner: &str, want: Option<Ipv6Addr>) -> Result<Ipv6Addr> {
        let mut all = self.lock();
        let n = all
            .get_mut(id)
            .ok_or_else(|| Error::NetworkNotFound(id.to_owned()))?;
        let name = n.name.clone();
        let p = n.v6.as_mut().filter(|_| n.enable_ipv6).ok_or_else(|| {
            Error::InvalidConfig(format!("network {name} is not an IPv6 network"))
        })?;
        let subnet = p.subnet;
        // The subnet-router anycast address (the base), the gateway and the auxiliary
        // addresses are never handed out.
        let taken = |p: &Ipv6Pool, ip: Ipv6Addr| {
            ip == p.gateway
                || p.aux_addresses.values().any(|a| *a == ip)
                || p.allocated.contains_key(&ip)
        };
        let ip = match want {
            Some(ip) => {
                if !subnet.is_host(ip) {
                    return Err(Error::AddressOutOfRange(IpAddr::V6(ip)));
                }
                match p.allocated.get(&ip) {
                    Some(o) if o == owner => ip,
                    _ if taken(p, ip) => return Err(Error::AddressInUse(IpAddr::V6(ip))),
                    _ => ip,
                }
            }
            None => {
                let held = p.allocated.len() + p.aux_addresses.len();
                let range = p.ip_range.unwrap_or(subnet);
                ipam::next_free(subnet, range, p.last, held, |ip| taken(p, ip)).ok_or_else(
                    || Error::PoolExhausted {
                        family: "IPv6",
                        network: name.clone(),
                    },
                )?
            }
        };
        p.allocated.insert(ip, owner.to_owned());
        if want.is_none() {
            p.last = Some(ip);
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
            let before = n.allocated.len() + n.v6.as_ref().map_or(0, |p| p.allocated.len());
            n.allocated.retain(|_, o| keep(o));
            if let Some(p) = n.v6.as_mut() {
                p.allocated.retain(|_, o| keep(o));
            }
            let after = n.allocated.len() + n.v6.as_ref().map_or(0, |p| p.allocated.len());
            if after != before {
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
        // 0600 before any byte is in it, a stale temporary file of a wider mode included.
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            0o600,
        )
        .open(&tmp)
        .map_err(|e| Error::file("create", &tmp, e))?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .and_then(|_| f.write_all(&data))
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
        gateway_given: false,
        aux_addresses: BTreeMap::new(),
        ipam_options: BTreeMap::new(),
        enable_ipv6: false,
        v6: None,
    })
}

/// The first subnet of the pools that overlaps neither a network of this daemon nor a route of
/// the host (another daemon's bridge, a VPN, the LAN).
pub fn pick_subnet(
    pools: &[AddressPool],
    taken: &[Ipv4Net],
    host_routes: &[Ipv4Net],
) -> Result<Ipv4Net> {
    ipam::first_free(
        pools.iter().flat_map(|p| p.base.subnets(p.size)),
        taken,
        host_routes,
    )
    .ok_or(Error::NoFreeSubnet("IPv4"))
}

/// `pick_subnet` for IPv6.
pub fn pick_subnet6(
    pools: &[AddressPool6],
    taken: &[Ipv6Net],
    host_routes: &[Ipv6Net],
) -> Result<Ipv6Net> {
    ipam::first_free(
        pools.iter().flat_map(|p| p.base.subnets(p.size)),
        taken,
        host_routes,
    )
    .ok_or(Error::NoFreeSubnet("IPv6"))
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
            pools6: default_pools6(b"test"),
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
                pools6: Vec::new(),
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
                &[],
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
                &[],
                &[]
            ),
            Err(Error::NameInUse(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ipv6_ipam_picks_subnets_reserves_and_hands_out_in_turn() {
        let dir = std::env::temp_dir().join(format!("berth-ipam6-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = store(&dir);
        let pool = default_pools6(b"test")[0].base;
        assert_eq!(pool.prefix(), 48);
        assert_eq!(pool.base().octets()[0], 0xfd, "a unique local address");
        // A host route over the pool's first /64 is skipped.
        let first: Ipv6Net = pool.subnets(64).next().unwrap();
        let auto = s
            .create(
                CreateRequest {
                    name: "auto".into(),
                    enable_ipv6: true,
                    ..Default::default()
                },
                &[],
                &[first],
            )
            .unwrap();
        let p = auto.ipv6().unwrap();
        assert_eq!(p.subnet.prefix(), 64);
        assert!(pool.contains_net(&p.subnet) && p.subnet != first);
        assert!(!p.user_subnet);
        let n = s
            .create(
                CreateRequest {
                    name: "v6".into(),
                    enable_ipv6: true,
                    subnet6: Some("fd42:1::/64".parse().unwrap()),
                    aux_addresses: vec![("r".into(), "fd42:1::2".parse().unwrap())],
                    ..Default::default()
                },
                &[],
                &[],
            )
            .unwrap();
        let p = n.ipv6().unwrap();
        assert_eq!(p.gateway.to_string(), "fd42:1::1");
        // ::0 (subnet-router anycast), ::1 (gateway) and ::2 (auxiliary) are never handed out.
        let a = s.allocate6(&n.id, "c1", None).unwrap();
        assert_eq!(a.to_string(), "fd42:1::3");
        for taken in ["fd42:1::1", "fd42:1::2", "fd42:1::3"] {
            assert!(
                matches!(
                    s.allocate6(&n.id, "c2", Some(taken.parse().unwrap())),
                    Err(Error::AddressInUse(_))
                ),
                "{taken}"
            );
        }
        assert!(matches!(
            s.allocate6(&n.id, "c2", Some("fd42:2::5".parse().unwrap())),
            Err(Error::AddressOutOfRange(_))
        ));
        assert_eq!(
            s.allocate6(&n.id, "c2", Some("fd42:1::99".parse().unwrap()))
                .unwrap()
                .to_string(),
            "fd42:1::99"
        );
        s.release(Some(&n.id), "c1").unwrap();
        assert_eq!(
            s.allocate6(&n.id, "c3", None).unwrap().to_string(),
            "fd42:1::4"
        );
        for (bad, why) in [
            (
                CreateRequest {
                    name: "x1".into(),
                    enable_ipv6: true,
                    subnet6: Some("fd42:1::/80".parse().unwrap()),
                    ..Default::default()
                },
                "overlap",
            ),
            (
                CreateRequest {
                    name: "x2".into(),
                    enable_ipv6: true,
                    subnet6: Some("fd43::/64".parse().unwrap()),
                    gateway6: Some("fd44::1".parse().unwrap()),
                    ..Default::default()
                },
                "no matching subnet for gateway",
            ),
            (
                CreateRequest {
                    name: "x3".into(),
                    enable_ipv6: true,
                    subnet6: Some("fd45::/64".parse().unwrap()),
                    aux_addresses: vec![("a".into(), "fd46::1".parse().unwrap())],
                    ..Default::default()
                },
                "must belong to the master pool",
            ),
        ] {
            let e = s.create(bad, &[], &[]).unwrap_err();
            assert!(
                e.to_string().contains(why)
                    || (why == "overlap" && matches!(e, Error::PoolOverlap)),
                "{e}"
            );
        }
        // Not an IPv6 network: no IPv6 address.
        let plain = s.find("bridge").unwrap();
        assert!(s.allocate6(&plain.id, "c9", None).is_err());
        drop(s);
        let s = store(&dir);
        assert_eq!(
            s.find("v6").unwrap().ipv6().unwrap().allocated.len(),
            2,
            "kept across a reopen"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
