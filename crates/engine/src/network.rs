//! Containers on networks: which networks a container asks for (create), its network namespace
//! wired at start (veths, addresses, published ports, the embedded DNS server), torn down when
//! it exits for good, and found again after a daemon restart. The wiring itself is
//! berth-network's; this module decides what to wire from the container records.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use berth_network::{dns, firewall, link, netns, ports, Ipv4Net, Ipv6Net, Network};
use bollard_stubs::models::{ContainerCreateBody, EndpointSettings, HostConfig};
use serde::{Deserialize, Serialize};

use crate::container::Container;
use crate::daemon::Daemon;
use crate::error::{ApiError, Result};

/// The daemon's network settings (`berth daemon --bridge --bip --default-address-pool
/// --nft-table --firewall-backend --dns`).
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub bridge: String,
    pub bip: Option<String>,
    pub pools: Vec<String>,
    pub nft_table: String,
    /// `nftables` or `iptables`; None: nftables where `nft` exists, else iptables.
    pub firewall_backend: Option<String>,
    pub dns: Vec<String>,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            bridge: "berth0".into(),
            bip: None,
            pools: Vec::new(),
            nft_table: "berth".into(),
            firewall_backend: None,
            dns: Vec::new(),
        }
    }
}

/// A container's place on one network, as its record keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub endpoint_id: String,
    pub aliases: Vec<String>,
    /// `--ip` / `connect --ip`: kept across restarts.
    pub ipv4_requested: Option<Ipv4Addr>,
    pub mac_requested: Option<String>,
    /// The address while the container runs.
    pub ip: Option<Ipv4Addr>,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: Option<String>,
    /// `EndpointSettings.Links` on a user-defined network (`NAME[:ALIAS]`): names only this
    /// container resolves.
    #[serde(default)]
    pub links: Vec<String>,
    /// `--ip6` / `connect --ip6`: kept across restarts.
    #[serde(default)]
    pub ipv6_requested: Option<Ipv6Addr>,
    /// The IPv6 address while the container runs (IPv6 networks only).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// `IPAMConfig.LinkLocalIPs`: added to the interface as they are.
    #[serde(default)]
    pub link_local_ips: Vec<IpAddr>,
    /// `EndpointSettings.DriverOpts`, kept and shown as given.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
}

/// A published port as bound at the container's last start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: IpAddr,
    pub host_port: u16,
}

/// What a running container holds in the daemon: its DNS server and host ports.
#[derive(Debug, Default)]
pub struct Sandbox {
    dns: Option<dns::Server>,
    reservations: Vec<ports::Reservation>,
    rules: Vec<firewall::PortRule>,
}

/// The daemon's network state: the networks and the live sandboxes.
#[derive(Debug)]
pub struct Net {
    pub opts: NetworkOptions,
    pub store: berth_network::Networks,
    /// Container id → its live sandbox.
    sandboxes: Mutex<HashMap<String, Sandbox>>,
    /// One firewall change at a time (the table is rendered from the whole state).
    firewall: Mutex<()>,
    backend: firewall::Backend,
    netns_dir: PathBuf,
    /// Network namespaces made ahead of need (see `berth_network::netns::Spare`).
    spares: Mutex<Vec<netns::Spare>>,
    /// Whether a refill of the spares is under way.
    refilling: std::sync::atomic::AtomicBool,
}

/// Which default routes a namespace still wants: one per family, through the first network
/// (in order) that offers one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DefaultRoutes {
    pub v4: bool,
    pub v6: bool,
}

impl Default for DefaultRoutes {
    fn default() -> Self {
        DefaultRoutes { v4: true, v6: true }
    }
}

/// How many network namespaces the daemon keeps made ahead: enough for back-to-back starts.
const SPARE_NETNS: usize = 2;

/// How a container is networked, from its HostConfig.NetworkMode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Host,
    None,
    Container(String),
    /// Bridge networks (the default one or user-defined), by endpoint.
    Bridge,
}

pub fn mode_of(hc: &HostConfig) -> Mode {
    match hc.network_mode.as_deref().unwrap_or("bridge") {
        "host" => Mode::Host,
        "none" => Mode::None,
        m if m.starts_with("container:") => Mode::Container(m["container:".len()..].to_owned()),
        _ => Mode::Bridge,
    }
}

impl Net {
    /// Opens the network store (making the predefined networks and the default bridge), and
    /// brings every bridge up.
    pub fn open(
        root: &Path,
        exec_root: &Path,
        opts: NetworkOptions,
    ) -> std::result::Result<Net, String> {
        let bip = match &opts.bip {
            Some(b) => {
                let (ip, prefix) = b
                    .split_once('/')
                    .ok_or_else(|| format!("--bip {b}: want ADDRESS/PREFIX, e.g. 10.1.2.1/24"))?;
                let ip: Ipv4Addr = ip.parse().map_err(|_| format!("--bip {b}: bad address"))?;
                let _ = prefix; // the subnet is parsed from the whole string
                let net: Ipv4Net = b.parse().map_err(|e| format!("--bip {b}: {e}"))?;
                Some((ip, net))
            }
            None => None,
        };
        let mut pools = Vec::new();
        let mut pools6 = Vec::new();
        for p in &opts.pools {
            if p.contains(':') {
                let (base, size) = parse_pool::<Ipv6Net>(p)?;
                pools6.push(berth_network::AddressPool6 { base, size });
            } else {
                let (base, size) = parse_pool::<Ipv4Net>(p)?;
                pools.push(berth_network::AddressPool { base, size });
            }
        }
        if pools.is_empty() {
            pools = berth_network::default_pools();
        }
        if pools6.is_empty() {
            // A unique local /48 of this daemon: its root on this machine.
            let mut seed = root.as_os_str().as_encoded_bytes().to_vec();
            seed.extend(std::fs::read("/etc/machine-id").unwrap_or_default());
            pools6 = berth_network::default_pools6(&seed);
        }
        let existing = match bip {
            Some(_) => None,
            None => link::existing_address(&opts.bridge).map_err(|e| e.to_string())?,
        };
        let defaults = berth_network::Defaults {
            bridge: opts.bridge.clone(),
            bip,
            existing,
            pools,
            pools6,
        };
        let backend = firewall::Backend::detect(opts.firewall_backend.as_deref())
            .map_err(|e| e.to_string())?;
        if backend == firewall::Backend::Missing {
            eprintln!(
                "berth daemon: warning: {}",
                berth_network::Error::FirewallMissing(
                    "neither nft nor iptables-restore on PATH".into()
                )
            );
        }
        let routes = link::host_routes().map_err(|e| e.to_string())?;
        let dir = root.join("networks");
        let store =
            berth_network::Networks::open(&dir, &defaults, &routes, &crate::files::now_rfc3339())
                .map_err(|e| format!("open {}: {e}", dir.display()))?;
        for n in store.list().iter().filter(|n| n.is_bridge()) {
            ensure_bridge(n).map_err(|e| e.to_string())?;
        }
        Ok(Net {
            opts,
            store,
            sandboxes: Mutex::new(HashMap::new()),
            firewall: Mutex::new(()),
            backend,
            netns_dir: exec_root.join("netns"),
            spares: Mutex::new(Vec::new()),
            refilling: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A spare namespace if one is ready (a refill then starts in the background).
    pub(crate) fn take_spare(self: &Arc<Self>) -> Option<netns::Spare> {
        let spare = self.spares.lock().unwrap_or_else(|p| p.into_inner()).pop();
        self.refill_spares();
        spare
    }

    /// Makes spares up to `SPARE_NETNS` on a thread of its own, one refill at a time.
    pub fn refill_spares(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("berth-netns-spares".into())
            .spawn(move || {
                while this.spares.lock().unwrap_or_else(|p| p.into_inner()).len() < SPARE_NETNS {
                    match netns::make_spare() {
                        Ok(s) => this
                            .spares
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(s),
                        // A start makes its own then; say why once.
                        Err(e) => {
                            eprintln!("berth daemon: spare network namespace: {e}");
                            break;
                        }
                    }
                }
                this.refilling.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.refilling.store(false, Ordering::Release);
        }
    }

    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Finds a network by name, id or id prefix, with dockerd's 404.
    pub fn find(&self, key: &str) -> Result<Network> {
        self.store
            .find(key)
            .ok_or_else(|| ApiError::NotFound(format!("network {key} not found")))
    }

    fn sandboxes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sandbox>> {
        self.sandboxes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renders the daemon's nftables table from the networks and the live published ports.
    pub fn apply_firewall(&self) -> Result<()> {
        let _one = self.firewall.lock().unwrap_or_else(|p| p.into_inner());
        let bridges = self
            .store
            .list()
            .into_iter()
            .filter(|n| n.is_bridge())
            .filter_map(|n| {
                Some(firewall::BridgeRules {
                    bridge: n.bridge.clone(),
                    subnet: n.subnet?,
                    subnet6: n.ipv6().map(|p| p.subnet),
                    internal: n.internal,
                })
            })
            .collect();
        let ports = self
            .sandboxes()
            .values()
            .flat_map(|s| s.rules.iter().cloned())
            .collect();
        firewall::Ruleset { bridges, ports }
            .apply(self.backend, &self.opts.nft_table)
            .map_err(net_error)
    }
}

/// Makes (or finds) a network's bridge with its gateways.
pub(crate) fn ensure_bridge(n: &Network) -> berth_network::Result<()> {
    match (n.gateway, n.subnet) {
        (Some(gw), Some(s)) => link::ensure_bridge(
            &n.bridge,
            gw,
            s.prefix(),
            n.ipv6().map(|p| (p.gateway, p.subnet.prefix())),
        ),
        _ => Ok(()),
    }
}

/// `--default-address-pool base=CIDR,size=N` of either family (`base=fd00:1::/48,size=64`).
fn parse_pool<N>(p: &str) -> std::result::Result<(N, u8), String>
where
    N: berth_network::Subnet + std::str::FromStr,
    N::Err: std::fmt::Display,
{
    let mut base = None;
    let mut size = None;
    for kv in p.split(',') {
        match kv.split_once('=') {
            Some(("base", v)) => {
                base = Some(
                    v.parse::<N>()
                        .map_err(|e| format!("--default-address-pool {p}: {e}"))?,
                )
            }
            Some(("size", v)) => {
                size = Some(
                    v.parse::<u8>()
                        .map_err(|_| format!("--default-address-pool {p}: bad size"))?,
                )
            }
            _ => return Err(format!("--default-address-pool {p}: want base=CIDR,size=N")),
        }
    }
    match (base, size) {
        (Some(base), Some(size)) if size >= base.prefix() && size <= N::MAX_PREFIX => {
            Ok((base, size))
        }
        _ => Err(format!(
            "--default-address-pool {p}: want base=CIDR,size=N (size ≥ the base's prefix, ≤ {})",
            N::MAX_PREFIX
        )),
    }
}

/// The status and wording dockerd gives each network error.
pub fn net_error(e: berth_network::Error) -> ApiError {
    use berth_network::Error as E;
    match e {
        E::NetworkNotFound(_) | E::DriverNotFound(_) => ApiError::NotFound(e.to_string()),
        E::NameInUse(_)
        | E::PoolOverlap
        | E::AddressInUse(_)
        | E::PortAllocated { .. }
        | E::PortInUse { .. } => ApiError::Conflict(e.to_string()),
        E::InvalidCidr(_)
        | E::InvalidAddress(_)
        | E::InvalidAddress6(_)
        | E::InvalidMac(_)
        | E::InvalidConfig(_)
        | E::AddressOutOfRange(_) => ApiError::BadRequest(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The host end of a container's veth on a network: unique per (container, network), and
/// recognisable (`vb…`).
fn veth_name(container: &str, network: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{container}/{network}").as_bytes());
    format!("vb{}", &hex::encode(h)[..11])
}

impl Daemon {
    /// At create: the endpoints the request asks for, checked against the networks (unknown
    /// network 404, `--ip` or aliases where dockerd refuses them 400), and the network mode's
    /// own checks.
    pub fn plan_networks(
        &self,
        body: &ContainerCreateBody,
        hc: &HostConfig,
    ) -> Result<BTreeMap<String, Endpoint>> {
        let mode = hc.network_mode.clone().unwrap_or_else(|| "bridge".into());
        // docker CLI names the default network "default" in EndpointsConfig too.
        let configs: BTreeMap<String, EndpointSettings> = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.clone())
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| {
                        (
                            if k == "default" {
                                "bridge".to_owned()
                            } else {
                                k
                            },
                            v,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut out = BTreeMap::new();
        match mode_of(hc) {
            Mode::Host | Mode::None => return Ok(out),
            Mode::Container(other) => {
                self.containers.find(&other)?;
                if body.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
                    return Err(ApiError::BadRequest(
                        "conflicting options: hostname and the network mode".into(),
                    ));
                }
                if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
                    || hc.publish_all_ports.unwrap_or(false)
                {
                    return Err(ApiError::BadRequest(
                        "conflicting options: port publishing and the container type network mode"
                            .into(),
                    ));
                }
                return Ok(out);
            }
            Mode::Bridge => {}
        }
        let mut wanted: Vec<(String, Option<EndpointSettings>)> =
            vec![(mode.clone(), configs.get(&mode).cloned())];
        for (k, v) in &configs {
            if *k != mode {
                wanted.push((k.clone(), Some(v.clone())));
            }
        }
        for (key, cfg) in wanted {
            let n = self.net.find(&key)?;
            if !n.is_bridge() {
                return Err(ApiError::BadRequest(format!(
                    "container cannot be connected to network {} together with others",
                    n.name
                )));
            }
            let ep = endpoint_from(&n, cfg.as_ref(), None)?;
            out.insert(n.name.clone(), ep);
        }
        Ok(out)
    }

    /// Makes the network namespace of a created `--network none` container ahead of its
    /// start, at the path the start will join; a bound one is left as it is.
    pub fn prepare_netns(self: &Arc<Self>, c: &Container) -> Result<PathBuf> {
        if mode_of(&c.host_config) != Mode::None {
            return Err(ApiError::BadRequest(format!(
                "container {} has a network mode of its own: its namespace is made at its start",
                c.id
            )));
        }
        let path = self.net.netns_path(&c.id);
        if !netns::is_bound(&path) {
            netns::remove(&path);
            netns::create(&path, self.net.take_spare()).map_err(net_error)?;
        }
        Ok(path)
    }

    /// At start: the namespace file the spec joins (None: the host's), made and wired for
    /// the container's mode. On error nothing is left made.
    pub fn setup_network(self: &Arc<Self>, c: &Container) -> Result<Option<PathBuf>> {
        match mode_of(&c.host_config) {
            Mode::Host => return Ok(None),
            Mode::Container(other) => {
                let o = self.containers.find(&other)?;
                if !o.is_running() {
                    return Err(ApiError::Conflict(format!(
                        "cannot join network namespace of a non running container: {other}"
                    )));
                }
                return match mode_of(&o.host_config) {
                    Mode::Host => Ok(None),
                    Mode::Container(_) => Err(ApiError::BadRequest(format!(
                        "cannot join the network of {other}: it shares another container's"
                    ))),
                    _ => Ok(Some(self.net.netns_path(&o.id))),
                };
            }
            Mode::None | Mode::Bridge => {}
        }
        let path = self.net.netns_path(&c.id);
        if mode_of(&c.host_config) == Mode::None && netns::is_bound(&path) {
            // Made ahead by `prepare_netns` (the CRI wires a pod's namespace while its infra
            // starts): nothing of the engine's goes in it.
            return Ok(Some(path));
        }
        // A file left by a crash between create and bind is not a namespace.
        netns::remove(&path);
        netns::create(&path, self.net.take_spare()).map_err(net_error)?;
        match self.wire(c, &path) {
            Ok(()) => Ok(Some(path)),
            Err(e) => {
                self.teardown_network(&c.id);
                Err(e)
            }
        }
    }

    fn wire(self: &Arc<Self>, c: &Container, path: &Path) -> Result<()> {
        let mut endpoints = c.networks.clone();
        let mut routes = DefaultRoutes::default();
        for (i, (name, ep)) in endpoints.iter_mut().enumerate() {
            let n = self
                .net
                .store
                .find(&ep.network_id)
                .ok_or_else(|| ApiError::NotFound(format!("network {name} not found")))?;
            self.attach(&c.id, &n, ep, path, i, &mut routes)?;
        }
        let mut sandbox = Sandbox::default();
        let primary_ip = endpoints.values().find_map(|e| e.ip);
        let primary_ip6 = endpoints.values().find_map(|e| e.ip6);
        if let Some(ip) = primary_ip {
            let (reservations, rules, mappings) = reserve_ports(c, ip, primary_ip6, &self.net)?;
            sandbox.reservations = reservations;
            sandbox.rules = rules;
            self.containers.update(&c.id, |r| {
                r.ports = mappings.clone();
                Ok(())
            })?;
        }
        self.containers.update(&c.id, |r| {
            r.networks = endpoints.clone();
            Ok(())
        })?;
        let user_defined = endpoints
            .values()
            .filter_map(|e| self.net.store.find(&e.network_id))
            .any(|n| n.is_user_defined());
        if user_defined {
            sandbox.dns = Some(self.start_dns(c, path)?);
        }
        self.net.sandboxes().insert(c.id.clone(), sandbox);
        if primary_ip.is_some() {
            self.net.apply_firewall()?;
        }
        for name in endpoints.keys() {
            self.emit_network_for("connect", name, &c.id);
        }
        Ok(())
    }

    /// One endpoint of `owner` (a container, or a build's RUN container): addresses from
    /// IPAM (IPv4, and IPv6 on an IPv6 network), a veth into the namespace, the default
    /// routes `routes` still wants.
    pub(crate) fn attach(
        &self,
        owner: &str,
        n: &Network,
        ep: &mut Endpoint,
        path: &Path,
        index: usize,
        routes: &mut DefaultRoutes,
    ) -> Result<()> {
        let subnet = n
            .subnet
            .ok_or_else(|| ApiError::Internal(format!("network {} has no subnet", n.name)))?;
        let ip = self
            .net
            .store
            .allocate(&n.id, owner, ep.ipv4_requested)
            .map_err(net_error)?;
        let v6 = match n.ipv6() {
            Some(p) => match self.net.store.allocate6(&n.id, owner, ep.ipv6_requested) {
                Ok(ip6) => Some((ip6, p.subnet.prefix(), p.gateway)),
                Err(e) => {
                    let _ = self.net.store.release(Some(&n.id), owner);
                    return Err(net_error(e));
                }
            },
            None => None,
        };
        let mac = match &ep.mac_requested {
            Some(m) => berth_network::parse_mac(m).map_err(net_error)?,
            None => berth_network::mac_for(ip),
        };
        let gateway = (routes.v4 && !n.internal).then_some(n.gateway).flatten();
        if gateway.is_some() {
            routes.v4 = false;
        }
        let gateway6 = v6.filter(|_| routes.v6 && !n.internal).map(|(_, _, gw)| gw);
        if gateway6.is_some() {
            routes.v6 = false;
        }
        let host_if = veth_name(owner, &n.id);
        let ifname = format!("eth{index}");
        let attached = link::attach(&link::Attachment {
            netns: path,
            bridge: &n.bridge,
            host_if: &host_if,
            container_if: &ifname,
            address: ip,
            prefix: subnet.prefix(),
            gateway,
            address6: v6.map(|(a, p, _)| (a, p)),
            gateway6,
            link_local: ep.link_local_ips.clone(),
            mac,
        });
        if let Err(e) = attached {
            let _ = self.net.store.release(Some(&n.id), owner);
            return Err(net_error(e));
        }
        ep.ip = Some(ip);
        ep.prefix = subnet.prefix();
        ep.gateway = n.gateway;
        ep.ip6 = v6.map(|(a, _, _)| a);
        ep.prefix6 = v6.map_or(0, |(_, p, _)| p);
        ep.gateway6 = v6.map(|(_, _, g)| g);
        ep.mac = Some(berth_network::format_mac(&mac));
        if ep.endpoint_id.is_empty() {
            ep.endpoint_id = crate::container::new_id()?;
        }
        Ok(())
    }

    /// Whether the container is on a user-defined network: then it gets the embedded DNS
    /// server (127.0.0.11), as with dockerd.
    pub(crate) fn on_user_defined_network(&self, c: &Container) -> bool {
        c.networks
            .values()
            .filter_map(|e| self.net.store.find(&e.network_id))
            .any(|n| n.is_user_defined())
    }

    fn start_dns(self: &Arc<Self>, c: &Container, path: &Path) -> Result<dns::Server> {
        let weak: Weak<Daemon> = Arc::downgrade(self);
        let id = c.id.clone();
        let lookup: dns::Lookup =
            Arc::new(move |name: &str| weak.upgrade().and_then(|d| d.resolve(&id, name)));
        self.serve_dns(path, lookup, self.upstream_dns(c))
    }

    /// The embedded DNS server in the namespace at `path`, answering with `lookup`.
    pub(crate) fn serve_dns(
        &self,
        path: &Path,
        lookup: dns::Lookup,
        upstream: Vec<SocketAddr>,
    ) -> Result<dns::Server> {
        let sockets = dns::bind_in(path).map_err(net_error)?;
        // The server runs on the daemon's runtime; start is called from a blocking thread.
        let _guard = self.runtime.enter();
        dns::serve(sockets, lookup, upstream).map_err(net_error)
    }

    /// The addresses `name` has for the container `asker`: the containers (by name, alias or
    /// short id) sharing a user-defined network with it.
    fn resolve(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>> {
        let me = self.containers.find(asker).ok()?;
        let mine: Vec<String> = me
            .networks
            .values()
            .map(|e| e.network_id.clone())
            .filter(|id| self.net.store.find(id).is_some_and(|n| n.is_user_defined()))
            .collect();
        // The asker's own links first: an alias names the linked container on that network.
        for ep in me
            .networks
            .values()
            .filter(|e| mine.contains(&e.network_id))
        {
            for (child, _) in ep
                .links
                .iter()
                .filter_map(|l| crate::links::parse(l).ok())
                .filter(|(_, alias)| alias.eq_ignore_ascii_case(name))
            {
                let linked = self
                    .containers
                    .find(&child)
                    .ok()
                    .filter(Container::is_running)
                    .and_then(|c| {
                        c.networks
                            .values()
                            .find(|o| o.network_id == ep.network_id)
                            .map(addresses_of)
                    })
                    .filter(|ips| !ips.is_empty());
                if linked.is_some() {
                    return linked;
                }
            }
        }
        self.resolve_on(&mine, name)
    }

    /// The addresses of the running containers named `name` (by name, alias or short id) on
    /// the networks `mine`; None when no container of theirs has that name.
    pub(crate) fn resolve_on(&self, mine: &[String], name: &str) -> Option<Vec<IpAddr>> {
        let mut ips = Vec::new();
        let mut known = false;
        for other in self.containers.list() {
            for ep in other.networks.values() {
                if !mine.contains(&ep.network_id) {
                    continue;
                }
                let named = other.name.eq_ignore_ascii_case(name)
                    || other.id.get(..12).is_some_and(|s| s == name)
                    || ep.aliases.iter().any(|a| a.eq_ignore_ascii_case(name));
                if named {
                    known = true;
                    if other.is_running() {
                        for ip in addresses_of(ep) {
                            if !ips.contains(&ip) {
                                ips.push(ip);
                            }
                        }
                    }
                }
            }
        }
        known.then_some(ips)
    }

    /// Where the embedded server forwards: the container's `--dns`, the daemon's `--dns`, else
    /// the host's resolv.conf nameservers (loopback ones too: the daemon asks from the host).
    fn upstream_dns(&self, c: &Container) -> Vec<SocketAddr> {
        upstream_addrs(&self.upstream_names(c))
    }

    pub fn upstream_names(&self, c: &Container) -> Vec<String> {
        match c.host_config.dns.clone().filter(|d| !d.is_empty()) {
            Some(servers) => servers,
            None => self.default_upstream(),
        }
    }

    /// Where names are forwarded for a container without `--dns`: the daemon's `--dns`, else
    /// the host's nameservers.
    pub(crate) fn default_upstream(&self) -> Vec<String> {
        if self.net.opts.dns.is_empty() {
            host_nameservers()
        } else {
            self.net.opts.dns.clone()
        }
    }

    /// Undoes `setup_network`: the DNS server and host ports go, the rules are re-rendered,
    /// the namespace (and with it the container ends of the veths) is released, the host ends
    /// deleted, the addresses freed. Idempotent.
    pub fn teardown_network(&self, id: &str) {
        let had = self.net.sandboxes().remove(id);
        if had.as_ref().is_some_and(|s| !s.rules.is_empty()) {
            if let Err(e) = self.net.apply_firewall() {
                eprintln!("berth daemon: firewall after {id}: {e}");
            }
        }
        drop(had);
        let c = self.containers.find(id).ok();
        if let Some(c) = &c {
            for (name, ep) in &c.networks {
                let _ = link::delete(&veth_name(&c.id, &ep.network_id));
                if ep.ip.is_some() {
                    self.emit_network_for("disconnect", name, &c.id);
                }
            }
        }
        netns::remove(&self.net.netns_path(id));
        let _ = self.net.store.release(None, id);
        if c.is_some() {
            let _ = self.containers.update(id, |r| {
                r.ports.clear();
                for ep in r.networks.values_mut() {
                    ep.ip = None;
                    ep.mac = None;
                    ep.gateway = None;
                    ep.ip6 = None;
                    ep.gateway6 = None;
                }
                Ok(())
            });
        }
    }

    /// After a daemon restart: running containers get their DNS server and host ports back;
    /// what dead containers held (namespaces, veths, addresses) is released; the table is
    /// rendered anew.
    pub fn reconcile_networks(self: &Arc<Self>) {
        let all = self.containers.list();
        let running: Vec<&Container> = all.iter().filter(|c| c.is_running()).collect();
        for c in &running {
            if !matches!(mode_of(&c.host_config), Mode::Bridge | Mode::None) {
                continue;
            }
            let path = self.net.netns_path(&c.id);
            let mut sandbox = Sandbox::default();
            if let Some(ip) = c.networks.values().find_map(|e| e.ip) {
                let ip6 = c.networks.values().find_map(|e| e.ip6);
                match reserve_ports(c, ip, ip6, &self.net) {
                    Ok((r, rules, _)) => {
                        sandbox.reservations = r;
                        sandbox.rules = rules;
                    }
                    Err(e) => eprintln!("berth daemon: ports of {}: {e}", c.short_id()),
                }
            }
            if self.on_user_defined_network(c) && netns::is_bound(&path) {
                match self.start_dns(c, &path) {
                    Ok(s) => sandbox.dns = Some(s),
                    Err(e) => eprintln!("berth daemon: DNS of {}: {e}", c.short_id()),
                }
            }
            self.net.sandboxes().insert(c.id.clone(), sandbox);
        }
        let live: Vec<String> = running.iter().map(|c| c.id.clone()).collect();
        for c in all.iter().filter(|c| !c.is_running()) {
            if c.networks.values().any(|e| e.ip.is_some()) || !c.ports.is_empty() {
                self.teardown_network(&c.id);
            }
        }
        for e in std::fs::read_dir(&self.net.netns_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&id) {
                netns::remove(&e.path());
            }
        }
        let _ = self
            .net
            .store
            .release_unless(|owner| live.iter().any(|l| l == owner));
        if let Err(e) = self.net.apply_firewall() {
            eprintln!("berth daemon: firewall: {e}");
        }
    }

    /// `network connect` of a running container: a new veth now (else only the record).
    pub fn connect_container(
        self: &Arc<Self>,
        n: &Network,
        key: &str,
        cfg: Option<&EndpointSettings>,
    ) -> Result<()> {
        let c = self.containers.find(key)?;
        if !matches!(mode_of(&c.host_config), Mode::Bridge) {
            return Err(ApiError::BadRequest(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        if !n.is_bridge() {
            return Err(ApiError::BadRequest(format!(
                "container cannot be disconnected from {0} network or connected to {0} network",
                n.name
            )));
        }
        if c.networks.contains_key(&n.name) {
            return Err(ApiError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, n.name
            )));
        }
        let mut ep = endpoint_from(n, cfg, None)?;
        if c.is_running() {
            let path = self.net.netns_path(&c.id);
            let index = c.networks.len();
            let mut routes = DefaultRoutes {
                v4: !c.networks.values().any(|e| e.gateway.is_some()),
                v6: !c.networks.values().any(|e| e.gateway6.is_some()),
            };
            self.attach(&c.id, n, &mut ep, &path, index, &mut routes)?;
            if n.is_user_defined() {
                let needs_dns = self
                    .net
                    .sandboxes()
                    .get(&c.id)
                    .is_some_and(|s| s.dns.is_none());
                if needs_dns {
                    let server = self.start_dns(&c, &path)?;
                    if let Some(s) = self.net.sandboxes().get_mut(&c.id) {
                        s.dns = Some(server);
                    }
                }
            }
        }
        let running = c.is_running();
        self.containers.update(&c.id, |r| {
            r.networks.insert(n.name.clone(), ep.clone());
            Ok(())
        })?;
        self.emit_network("connect", n, &c.id);
        if running {
            // Its new address in /etc/hosts and, on its first user-defined network, the
            // embedded server (listening by now) in /etc/resolv.conf, as dockerd does.
            let c = self.containers.find(&c.id)?;
            self.write_hosts_file(&c)?;
            let path = self.container_dir(&c.id).join("resolv.conf");
            crate::files::write_in_place(&path, self.resolv_conf(&c).as_bytes())
                .map_err(|e| ApiError::internal(format!("write {}", path.display()), e))?;
        }
        Ok(())
    }

    /// `network disconnect`.
    pub fn disconnect_container(&self, n: &Network, key: &str) -> Result<()> {
        let c = self.containers.find(key)?;
        let Some(ep) = c.networks.get(&n.name).cloned() else {
            return Err(ApiError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.name
            )));
        };
        let _ = link::delete(&veth_name(&c.id, &ep.network_id));
        let _ = self.net.store.release(Some(&n.id), &c.id);
        self.containers.update(&c.id, |r| {
            r.networks.remove(&n.name);
            Ok(())
        })?;
        self.emit_network("disconnect", n, &c.id);
        if c.is_running() {
            // resolv.conf stays as it is (dockerd's too): the embedded server keeps serving.
            self.write_hosts_file(&self.containers.find(&c.id)?)?;
        }
        Ok(())
    }

    pub fn emit_network(&self, action: &str, n: &Network, container: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_owned(), n.name.clone());
        attrs.insert("type".to_owned(), n.driver.clone());
        if !container.is_empty() {
            attrs.insert("container".to_owned(), container.to_owned());
        }
        self.events.emit("network", action, &n.id, attrs);
    }

    fn emit_network_for(&self, action: &str, name: &str, container: &str) {
        if let Some(n) = self.net.store.find(name) {
            self.emit_network(action, &n, container);
        }
    }
}

/// An endpoint's live addresses, IPv4 then IPv6.
fn addresses_of(ep: &Endpoint) -> Vec<IpAddr> {
    ep.ip
        .map(IpAddr::V4)
        .into_iter()
        .chain(ep.ip6.map(IpAddr::V6))
        .collect()
}

/// An endpoint of network `n` from a request's EndpointSettings, checked as dockerd checks it.
fn endpoint_from(
    n: &Network,
    cfg: Option<&EndpointSettings>,
    mac: Option<&str>,
) -> Result<Endpoint> {
    let mut ep = Endpoint {
        network_id: n.id.clone(),
        ..Default::default()
    };
    if let Some(cfg) = cfg {
        let want = cfg
            .ipam_config
            .as_ref()
            .and_then(|i| i.ipv4_address.clone())
            .filter(|s| !s.is_empty());
        if let Some(ip) = want {
            if n.is_predefined() {
                return Err(ApiError::BadRequest(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            let ip = berth_network::parse_ipv4(&ip).map_err(net_error)?;
            let in_range = n.subnet.is_some_and(|s| s.contains(ip))
                && n.ip_range.is_none_or(|r| r.contains(ip));
            if !in_range {
                return Err(net_error(berth_network::Error::AddressOutOfRange(
                    IpAddr::V4(ip),
                )));
            }
            ep.ipv4_requested = Some(ip);
        }
        let want6 = cfg
            .ipam_config
            .as_ref()
            .and_then(|i| i.ipv6_address.clone())
            .filter(|s| !s.is_empty());
        if let Some(ip) = want6 {
            let ip = berth_network::parse_ipv6(&ip).map_err(net_error)?;
            // Only a subnet the user chose can be picked from (dockerd's rule).
            let p = n.ipv6().filter(|p| p.user_subnet).ok_or_else(|| {
                ApiError::BadRequest(
                    "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                )
            })?;
            let in_range = p.subnet.contains(ip) && p.ip_range.is_none_or(|r| r.contains(ip));
            if !in_range {
                return Err(net_error(berth_network::Error::AddressOutOfRange(
                    IpAddr::V6(ip),
                )));
            }
            ep.ipv6_requested = Some(ip);
        }
        for ll in cfg
            .ipam_config
            .as_ref()
            .and_then(|i| i.link_local_ips.clone())
            .unwrap_or_default()
        {
            let link_local = match ll.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => a.is_link_local().then_some(IpAddr::V4(a)),
                Ok(IpAddr::V6(a)) => (a.segments()[0] & 0xffc0 == 0xfe80).then_some(IpAddr::V6(a)),
                Err(_) => None,
            };
            let ll = link_local.ok_or_else(|| {
                ApiError::BadRequest(format!("invalid link local IP address: {ll}"))
            })?;
            if ll.is_ipv6() && n.ipv6().is_none() {
                // dockerd turns IPv6 off on such an interface and then fails the start.
                return Err(ApiError::BadRequest(format!(
                    "link-local IPv6 address {ll} on network {}, which is not an IPv6 network",
                    n.name
                )));
            }
            ep.link_local_ips.push(ll);
        }
        ep.driver_opts = cfg
            .driver_opts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        ep.links = cfg.links.clone().unwrap_or_default();
        let aliases: Vec<String> = cfg.aliases.clone().unwrap_or_default();
        if !aliases.is_empty() && n.is_predefined() {
            return Err(ApiError::BadRequest(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        ep.aliases = aliases;
        ep.mac_requested = cfg.mac_address.clone().filter(|m| !m.is_empty());
    }
    if ep.mac_requested.is_none() {
        ep.mac_requested = mac.filter(|m| !m.is_empty()).map(str::to_owned);
    }
    if let Some(m) = &ep.mac_requested {
        berth_network::parse_mac(m).map_err(net_error)?;
    }
    Ok(ep)
}

/// Binds the host ports the container publishes (PortBindings, and with `-P` every exposed
/// port on an ephemeral one). A port published on every address is published on IPv6's too
/// when the container has an IPv6 address (`[::]:P`, the same port), as dockerd does. All or
/// none: on an error the ones bound are let go.
fn reserve_ports(
    c: &Container,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    net: &Net,
) -> Result<(
    Vec<ports::Reservation>,
    Vec<firewall::PortRule>,
    Vec<PortMapping>,
)> {
    let wanted = published(c)?;
    let mut held = Vec::new();
    let mut rules = Vec::new();
    let mut maps = Vec::new();
    let taken: Vec<(String, IpAddr, u16)> = net
        .sandboxes()
        .iter()
        .filter(|(id, _)| **id != c.id)
        .flat_map(|(_, s)| {
            s.reservations
                .iter()
                .map(|r| (r.proto.clone(), r.host_ip, r.host_port))
        })
        .collect();
    let failed = |e: berth_network::Error| match e {
        berth_network::Error::PortInUse { .. } => ApiError::Conflict(format!(
            "driver failed programming external connectivity on endpoint {} ({}): {e}",
            c.name,
            c.short_id()
        )),
        other => net_error(other),
    };
    for (proto, cport, host_ip, host_port) in wanted {
        // (host address, container address) of each family the port is published on.
        let mut sides: Vec<(IpAddr, IpAddr)> = Vec::new();
        match host_ip {
            None => {
                sides.push((Ipv4Addr::UNSPECIFIED.into(), ip.into()));
                if let Some(ip6) = ip6 {
                    sides.push((Ipv6Addr::UNSPECIFIED.into(), ip6.into()));
                }
            }
            Some(h @ IpAddr::V4(_)) => sides.push((h, ip.into())),
            Some(h @ IpAddr::V6(_)) => {
                let ip6 = ip6.ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "cannot publish {cport}/{proto} on {h}: the container has no IPv6 address (it is on no IPv6 network)"
                    ))
                })?;
                sides.push((h, ip6.into()));
            }
        }
        let mut port = host_port;
        for (h, target) in sides {
            let clash = port != 0
                && taken.iter().any(|(p, hip, hp)| {
                    *p == proto
                        && *hp == port
                        && hip.is_ipv6() == h.is_ipv6()
                        && (*hip == h || hip.is_unspecified() || h.is_unspecified())
                });
            if clash {
                return Err(ApiError::Conflict(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {}",
                    c.name,
                    c.short_id(),
                    berth_network::Error::PortAllocated {
                        addr: std::net::SocketAddr::new(h, port).to_string()
                    }
                )));
            }
            let r = ports::reserve(&proto, h, port).map_err(failed)?;
            // An ephemeral port picked for IPv4 is the one IPv6 takes too.
            port = r.host_port;
            rules.push(firewall::PortRule {
                proto: proto.clone(),
                host_ip: (!h.is_unspecified()).then_some(h),
                host_port: r.host_port,
                ip: target,
                port: cport,
            });
            maps.push(PortMapping {
                proto: proto.clone(),
                container_port: cport,
                host_ip: h,
                host_port: r.host_port,
            });
            held.push(r);
        }
    }
    Ok((held, rules, maps))
}

/// One published port as asked: `proto`, the container's port, the host address (None: every
/// address) and port (0: any).
type Published = (String, u16, Option<IpAddr>, u16);

/// Every port the container publishes.
pub fn published(c: &Container) -> Result<Vec<Published>> {
    let mut out = Vec::new();
    let bindings = c.host_config.port_bindings.clone().unwrap_or_default();
    let mut keys: Vec<&String> = bindings.keys().collect();
    if c.host_config.publish_all_ports.unwrap_or(false) {
        for p in c.config.exposed_ports.iter().flatten() {
            if !bindings.contains_key(p) {
                out.push(parse_port_key(p).map(|(proto, port)| (proto, port, None, 0))?);
            }
        }
    }
    keys.sort();
    for key in keys {
        let (proto, port) = parse_port_key(key)?;
        let list = bindings.get(key).cloned().flatten().unwrap_or_default();
        if list.is_empty() && c.host_config.publish_all_ports.unwrap_or(false) {
            out.push((proto.clone(), port, None, 0));
        }
        for b in list {
            let ip = match b.host_ip.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(
                    s.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .map_err(|_| ApiError::BadRequest(format!("invalid IP address: {s}")))?,
                ),
            };
            let hp = match b.host_port.as_deref().filter(|s| !s.is_empty()) {
                None => 0,
                Some(s) => s.parse::<u16>().map_err(|_| {
                    ApiError::BadRequest(format!("invalid port specification: \"{s}\""))
                })?,
            };
            out.push((proto.clone(), port, ip, hp));
        }
    }
    Ok(out)
}

/// `80/tcp` → ("tcp", 80).
pub fn parse_port_key(key: &str) -> Result<(String, u16)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return Err(ApiError::BadRequest(format!("invalid proto: {proto}")));
    }
    let port =
        port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid port specification: \"{key}\""))
        })?;
    Ok((proto, port))
}

/// Nameserver addresses as the DNS server forwards to them (port 53).
pub(crate) fn upstream_addrs(names: &[String]) -> Vec<SocketAddr> {
    names
        .iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The nameservers of the host's resolver configuration (`host_resolv_conf`).
pub fn host_nameservers() -> Vec<String> {
    nameservers(&host_resolv_conf())
}

fn nameservers(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The host's resolver configuration as dockerd picks it: /etc/resolv.conf, unless its only
/// nameserver is systemd-resolved's stub (127.0.0.53, Ubuntu's default), which no container
/// namespace can reach: then systemd-resolved's file naming its upstream servers.
pub fn host_resolv_conf() -> String {
    host_resolv_conf_from(
        Path::new("/etc/resolv.conf"),
        Path::new("/run/systemd/resolve/resolv.conf"),
    )
}

fn host_resolv_conf_from(etc: &Path, resolved: &Path) -> String {
    let conf = std::fs::read_to_string(etc).unwrap_or_default();
    let servers = nameservers(&conf);
    if !servers.is_empty() && servers.iter().all(|s| s == "127.0.0.53") {
        if let Ok(upstream) = std::fs::read_to_string(resolved) {
            return upstream;
        }
    }
    conf
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn systemd_resolved_stub_gives_way_to_its_upstream_file() {
        let dir = std::env::temp_dir().join(format!("berth-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (etc, resolved) = (dir.join("etc"), dir.join("resolved"));
        std::fs::write(&resolved, "nameserver 192.0.2.53\nsearch corp.test\n").unwrap();
        std::fs::write(&etc, "nameserver 127.0.0.53\noptions edns0\n").unwrap();
        assert!(host_resolv_conf_from(&etc, &resolved).contains("192.0.2.53"));
        // Another loopback resolver (dnsmasq, …), or the stub next to others, stays.
        std::fs::write(&etc, "nameserver 127.0.0.1\n").unwrap();
        assert_eq!(
            nameservers(&host_resolv_conf_from(&etc, &resolved)),
            ["127.0.0.1"]
        );
        std::fs::write(&etc, "nameserver 127.0.0.53\nnameserver 192.0.2.1\n").unwrap();
        assert_eq!(
            nameservers(&host_resolv_conf_from(&etc, &resolved)),
            ["127.0.0.53", "192.0.2.1"]
        );
        // No systemd-resolved file: the stub is what there is.
        std::fs::write(&etc, "nameserver 127.0.0.53\n").unwrap();
        std::fs::remove_file(&resolved).unwrap();
        assert_eq!(
            nameservers(&host_resolv_conf_from(&etc, &resolved)),
            ["127.0.0.53"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
