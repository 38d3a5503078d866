//! berth's container networks: the daemon's networks and their IPAM (`store`), network
//! namespaces kept as files (`netns`), bridges and veth pairs over rtnetlink (`link`), the
//! nftables table of NAT, isolation and published ports (`firewall`), held host ports
//! (`ports`), and the embedded DNS server (`dns`). Depends on nothing else of berth; the engine
//! decides what to wire, this crate does the wiring.

mod cidr;
pub mod dns;
mod error;
pub mod firewall;
mod ipam;
mod iptables;
pub mod link;
pub mod netns;
pub mod ports;
mod store;

pub use cidr::{parse_ipv4, parse_ipv6, Ipv4Net, Ipv6Net, Subnet};
pub use error::{Error, Result};
pub use store::{
    default_pools, default_pools6, pick_subnet, pick_subnet6, AddressPool, AddressPool6,
    CreateRequest, Defaults, Ipv6Pool, Network, Networks, BRIDGE_NAME_OPTION,
};

/// A MAC address as Docker writes it (`02:42:ac:11:00:02`).
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || Error::InvalidMac(s.to_owned());
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// Docker's MAC for an address: 02:42 (locally administered) then the four bytes of the IP,
/// unique on a network as its addresses are.
pub fn mac_for(ip: std::net::Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}
