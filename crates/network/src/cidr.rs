//! IPv4 and IPv6 subnets in CIDR notation (`172.18.0.0/16`, `fd00:1::/64`): parsing as dockerd
//! accepts them, overlap tests, and the host addresses inside one.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An IPv4 network: its base address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    base: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// A network from any address in it and a prefix length (0–32).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, Error> {
        if prefix > 32 {
            return Err(Error::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Ipv4Net {
            base: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// A network whose base and prefix are known to be valid (constants).
    pub(crate) const fn known(base: Ipv4Addr, prefix: u8) -> Ipv4Net {
        Ipv4Net { base, prefix }
    }

    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses the network spans.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | !mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.base)
    }

    pub fn contains_net(&self, other: &Ipv4Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.base)
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    /// The `n`th address of the network (0 is the base).
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.base).wrapping_add(n as u32)))
    }

    /// The offset of `ip` in the network.
    pub fn offset(&self, ip: Ipv4Addr) -> Option<u64> {
        self.contains(ip)
            .then(|| u64::from(u32::from(ip) - u32::from(self.base)))
    }

    /// The subnets of length `prefix` this network splits into, in order.
    pub fn subnets(&self, prefix: u8) -> impl Iterator<Item = Ipv4Net> + '_ {
        let count = if prefix >= self.prefix && prefix <= 32 {
            1u64 << (prefix - self.prefix)
        } else {
            0
        };
        let step = 1u64 << (32 - prefix.min(32));
        (0..count).map(move |i| Ipv4Net {
            base: Ipv4Addr::from(u32::from(self.base).wrapping_add((i * step) as u32)),
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    /// `a.b.c.d/n`; the address may have host bits set (dockerd takes `10.1.2.3/24` as
    /// `10.1.2.0/24`).
    fn from_str(s: &str) -> Result<Ipv4Net, Error> {
        let bad = || Error::InvalidCidr(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 2 {
            return Err(bad());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Ipv4Net::new(addr, prefix).map_err(|_| bad())
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses an IPv4 address as a user wrote it, with dockerd's wording when it is not one.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, Error> {
    s.parse().map_err(|_| Error::InvalidAddress(s.to_owned()))
}

/// An IPv6 network: its base address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Net {
    base: Ipv6Addr,
    prefix: u8,
}

impl Ipv6Net {
    /// A network from any address in it and a prefix length (0–128).
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Ipv6Net, Error> {
        if prefix > 128 {
            return Err(Error::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Ipv6Net {
            base: Ipv6Addr::from(u128::from(addr) & mask6(prefix)),
            prefix,
        })
    }

    /// A network whose base and prefix are known to be valid (host bits are cleared).
    pub(crate) fn known6(base: Ipv6Addr, prefix: u8) -> Ipv6Net {
        Ipv6Net {
            base: Ipv6Addr::from(u128::from(base) & mask6(prefix.min(128))),
            prefix: prefix.min(128),
        }
    }

    pub fn base(&self) -> Ipv6Addr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses the network spans (saturating at u128::MAX for a /0).
    pub fn size(&self) -> u128 {
        1u128
            .checked_shl(u32::from(128 - self.prefix))
            .unwrap_or(u128::MAX)
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask6(self.prefix) == u128::from(self.base)
    }

    pub fn contains_net(&self, other: &Ipv6Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.base)
    }

    pub fn overlaps(&self, other: &Ipv6Net) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    /// The `n`th address of the network (0 is the base).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        (n < self.size()).then(|| Ipv6Addr::from(u128::from(self.base).wrapping_add(n)))
    }

    /// The offset of `ip` in the network.
    pub fn offset(&self, ip: Ipv6Addr) -> Option<u128> {
        self.contains(ip)
            .then(|| u128::from(ip) - u128::from(self.base))
    }

    /// The subnets of length `prefix` this network splits into, in order (at most 2^16 of
    /// them are walked: pools are searched from their start).
    pub fn subnets(&self, prefix: u8) -> impl Iterator<Item = Ipv6Net> + '_ {
        let count: u128 = if prefix >= self.prefix && prefix <= 128 {
            1u128
                .checked_shl(u32::from(prefix - self.prefix))
                .unwrap_or(u128::MAX)
                .min(1 << 16)
        } else {
            0
        };
        let step = 1u128
            .checked_shl(u32::from(128 - prefix.min(128)))
            .unwrap_or(0);
        (0..count).map(move |i| Ipv6Net {
            base: Ipv6Addr::from(u128::from(self.base).wrapping_add(i.wrapping_mul(step))),
            prefix,
        })
    }
}

fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl FromStr for Ipv6Net {
    type Err = Error;

    /// `addr/n`; the address may have host bits set.
    fn from_str(s: &str) -> Result<Ipv6Net, Error> {
        let bad = || Error::InvalidCidr(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
            return Err(bad());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Ipv6Net::new(addr, prefix).map_err(|_| bad())
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl Serialize for Ipv6Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ipv6Net, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses an IPv6 address as a user wrote it, with dockerd's wording when it is not one.
pub fn parse_ipv6(s: &str) -> Result<Ipv6Addr, Error> {
    s.parse().map_err(|_| Error::InvalidAddress6(s.to_owned()))
}

/// What IPAM needs of a subnet, whatever its family.
pub trait Subnet: Copy + fmt::Display + PartialEq {
    type Addr: Copy + fmt::Display + PartialEq;
    /// The longest prefix that leaves room for a gateway and one container.
    const MAX_PREFIX: u8;
    fn prefix(&self) -> u8;
    fn contains_net(&self, other: &Self) -> bool;
    fn overlaps(&self, other: &Self) -> bool;
    /// How many addresses the subnet spans (saturating).
    fn span(&self) -> u128;
    /// The `n`th address (0 is the base).
    fn at(&self, n: u128) -> Option<Self::Addr>;
    /// The offset of `a` in the subnet.
    fn index_of(&self, a: Self::Addr) -> Option<u128>;
    /// Whether `a` can be a host's: in the subnet, not its base (IPv6's subnet-router anycast
    /// address) nor IPv4's broadcast address.
    fn is_host(&self, a: Self::Addr) -> bool;
}

impl Subnet for Ipv4Net {
    type Addr = Ipv4Addr;
    const MAX_PREFIX: u8 = 30;
    fn prefix(&self) -> u8 {
        self.prefix
    }
    fn contains_net(&self, other: &Self) -> bool {
        Ipv4Net::contains_net(self, other)
    }
    fn overlaps(&self, other: &Self) -> bool {
        Ipv4Net::overlaps(self, other)
    }
    fn span(&self) -> u128 {
        u128::from(self.size())
    }
    fn at(&self, n: u128) -> Option<Ipv4Addr> {
        u64::try_from(n).ok().and_then(|n| self.nth(n))
    }
    fn index_of(&self, a: Ipv4Addr) -> Option<u128> {
        self.offset(a).map(u128::from)
    }
    fn is_host(&self, a: Ipv4Addr) -> bool {
        self.contains(a) && a != self.base && a != self.broadcast()
    }
}

impl Subnet for Ipv6Net {
    type Addr = Ipv6Addr;
    const MAX_PREFIX: u8 = 126;
    fn prefix(&self) -> u8 {
        self.prefix
    }
    fn contains_net(&self, other: &Self) -> bool {
        Ipv6Net::contains_net(self, other)
    }
    fn overlaps(&self, other: &Self) -> bool {
        Ipv6Net::overlaps(self, other)
    }
    fn span(&self) -> u128 {
        self.size()
    }
    fn at(&self, n: u128) -> Option<Ipv6Addr> {
        self.nth(n)
    }
    fn index_of(&self, a: Ipv6Addr) -> Option<u128> {
        self.offset(a)
    }
    fn is_host(&self, a: Ipv6Addr) -> bool {
        self.contains(a) && a != self.base
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let n: Ipv4Net = "10.1.2.3/24".parse().unwrap();
        assert_eq!(n.to_string(), "10.1.2.0/24");
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert_eq!(n.nth(1), Some(Ipv4Addr::new(10, 1, 2, 1)));
        assert_eq!(n.nth(256), None);
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_and_subnets() {
        let a: Ipv4Net = "172.16.0.0/12".parse().unwrap();
        let b: Ipv4Net = "172.18.0.0/16".parse().unwrap();
        let c: Ipv4Net = "192.168.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && !a.overlaps(&c));
        assert!(a.contains_net(&b) && !b.contains_net(&a));
        let subs: Vec<String> = b.subnets(18).map(|s| s.to_string()).collect();
        assert_eq!(
            subs,
            [
                "172.18.0.0/18",
                "172.18.64.0/18",
                "172.18.128.0/18",
                "172.18.192.0/18"
            ]
        );
        assert_eq!("0.0.0.0/0".parse::<Ipv4Net>().unwrap().size(), 1 << 32);
    }

    #[test]
    fn ipv6_subnets_parse_split_and_overlap() {
        let n: Ipv6Net = "fd00:1:0:2::5/64".parse().unwrap();
        assert_eq!(n.to_string(), "fd00:1:0:2::/64");
        assert_eq!(n.nth(1).unwrap().to_string(), "fd00:1:0:2::1");
        assert!(n.contains("fd00:1:0:2::ffff".parse().unwrap()));
        assert!(!n.contains("fd00:1:0:3::1".parse().unwrap()));
        let pool: Ipv6Net = "fd00:1::/48".parse().unwrap();
        assert!(pool.contains_net(&n) && pool.overlaps(&n) && n.overlaps(&pool));
        let subs: Vec<String> = pool.subnets(64).take(2).map(|s| s.to_string()).collect();
        assert_eq!(subs, ["fd00:1::/64", "fd00:1:0:1::/64"]);
        assert_eq!("::/0".parse::<Ipv6Net>().unwrap().size(), u128::MAX);
        for bad in ["fd00::", "fd00::/129", "fd00::zz/64", "10.0.0.0/8"] {
            assert!(bad.parse::<Ipv6Net>().is_err(), "{bad}");
        }
    }
}
