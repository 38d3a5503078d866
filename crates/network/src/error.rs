//! The network crate's errors. Messages follow dockerd's wording where scripts match on them;
//! the engine maps each variant to dockerd's HTTP status.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A network name that another network has.
    #[error("network with name {0} already exists")]
    NameInUse(String),
    /// No network of that name or id.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// A driver other than bridge (host and null are the predefined networks').
    #[error("plugin \"{0}\" not found")]
    DriverNotFound(String),
    /// A subnet that is not `a.b.c.d/n`.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// An address that is not a dotted IPv4 address.
    #[error("invalid IPv4 address: {0}")]
    InvalidAddress(String),
    /// An address that is not an IPv6 address.
    #[error("invalid IPv6 address: {0}")]
    InvalidAddress6(String),
    /// A MAC address that is not six colon-separated hex bytes.
    #[error("invalid MAC address: {0}")]
    InvalidMac(String),
    /// A request that contradicts itself (a gateway outside its subnet, …).
    #[error("{0}")]
    InvalidConfig(String),
    /// The subnet overlaps a network of this daemon or a route of the host.
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap,
    /// Every address of the network's range is handed out.
    #[error("no available {family} addresses on this network's address pools: {network}")]
    PoolExhausted {
        family: &'static str,
        network: String,
    },
    /// Every default subnet overlaps something: the pool needs to be configured.
    #[error("could not find an available, non-overlapping {0} address pool among the defaults to assign to the network")]
    NoFreeSubnet(&'static str),
    /// A requested address that another endpoint holds (or the gateway, or an auxiliary
    /// address).
    #[error("Address already in use")]
    AddressInUse(std::net::IpAddr),
    /// A requested address outside the network's subnet or ip-range.
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    AddressOutOfRange(std::net::IpAddr),
    /// A host port that another container of this daemon publishes.
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String },
    /// A host port some other program holds.
    #[error("Error starting userland proxy: listen {proto}{family} {addr}: bind: address already in use")]
    PortInUse {
        proto: String,
        family: u8,
        addr: String,
    },
    /// A host port that cannot be bound for another reason.
    #[error("cannot reserve {proto} {addr}: {source}")]
    PortBind {
        proto: String,
        addr: String,
        source: std::io::Error,
    },
    /// A netlink request the kernel refused.
    #[error("{what}: {message}")]
    Netlink { what: String, message: String },
    /// A syscall on a namespace or mount failed.
    #[error("{what} {}: {source}", path.display())]
    Namespace {
        what: &'static str,
        path: PathBuf,
        source: nix::errno::Errno,
    },
    /// Reading or writing a file of the network state failed.
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A record that does not parse.
    #[error("parse {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// `nft` refused the ruleset or could not be run.
    #[error("nftables: {0}")]
    Firewall(String),
    /// Neither `nft` nor `iptables-restore` on the host: bridge networks cannot be wired.
    #[error("no firewall command found ({0}): berth's bridge networks need nftables (Debian/Ubuntu: apt-get install nftables; Fedora: dnf install nftables), or iptables where only that exists")]
    FirewallMissing(String),
    /// `--firewall-backend` names a backend whose command is not there, or no backend.
    #[error("--firewall-backend {backend}: {problem}")]
    FirewallBackend { backend: String, problem: String },
    /// A helper thread died.
    #[error("{0}")]
    Thread(String),
}

impl Error {
    pub(crate) fn file(
        what: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Error {
        Error::File {
            what,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn netlink(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
        Error::Netlink {
            what: what.into(),
            message: e.to_string(),
        }
    }
}
