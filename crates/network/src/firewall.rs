//! The daemon's nftables tables: masquerade out of each network, isolation between networks,
//! `--internal` networks cut off, and the DNAT of published ports (from outside, from other
//! containers and from the host's own 127.0.0.1 — route_localnet on the bridge, no proxy).
//!
//! The tables are rendered from the daemon's state and replaced in one `nft -f` transaction
//! each time something changes: the kernel swaps them atomically, a crash can never leave half a
//! change, and whatever a dead container had is simply absent from the next table. One table per
//! family and daemon, named by the daemon (`--nft-table`): `ip NAME` always, `ip6 NAME` while an
//! IPv6 network exists — so daemons side by side never touch each other's rules and removing
//! the tables removes all of them. Where only iptables exists the same rules go into chains of
//! the daemon's own (`iptables.rs`, ip6tables for IPv6).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::cidr::{Ipv4Net, Ipv6Net};
use crate::error::{Error, Result};

/// One bridge network, as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// An IPv6 network's subnet.
    pub subnet6: Option<Ipv6Net>,
    pub internal: bool,
}

/// One published port: `host_ip:host_port/proto` → `ip:port`, of one address family (the host
/// address, when there is one, is of the container address's family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// `tcp` or `udp`.
    pub proto: String,
    /// None: every local address of the host (`0.0.0.0`, `::`).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub ip: IpAddr,
    pub port: u16,
}

impl PortRule {
    /// The host address the port is published on; `None` for every address of the host.
    pub(crate) fn host_addr(&self) -> Option<IpAddr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }
}

/// Everything the tables hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub bridges: Vec<BridgeRules>,
    pub ports: Vec<PortRule>,
}

/// What differs between the two families' rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    /// nft's family and address keyword.
    fn nft(self) -> (&'static str, &'static str) {
        match self {
            Family::V4 => ("ip", "ip"),
            Family::V6 => ("ip6", "ip6"),
        }
    }
}

/// `addr` as a DNAT target with a port: `10.0.0.2:80`, `[fd00::2]:80`.
pub(crate) fn with_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl Ruleset {
    /// Both tables as nft's input: each created if missing, then replaced whole; the IPv6
    /// table only while an IPv6 network exists (else it is deleted, if there).
    pub fn render(&self, table: &str) -> String {
        let mut s = self.render_family(table, Family::V4);
        if self.has_v6() {
            s.push_str(&self.render_family(table, Family::V6));
        } else {
            let _ = writeln!(s, "table ip6 {table} {{}}\ndelete table ip6 {table}");
        }
        s
    }

    /// Whether any rule is IPv6's.
    pub(crate) fn has_v6(&self) -> bool {
        self.bridges.iter().any(|b| b.subnet6.is_some())
            || self.ports.iter().any(|p| p.ip.is_ipv6())
    }

    /// The bridges with a subnet of `family`, as (bridge, subnet text, internal).
    pub(crate) fn subnets(&self, family: Family) -> Vec<(&str, String, bool)> {
        self.bridges
            .iter()
            .filter_map(|b| {
                let subnet = match family {
                    Family::V4 => Some(b.subnet.to_string()),
                    Family::V6 => b.subnet6.map(|s| s.to_string()),
                }?;
                Some((b.bridge.as_str(), subnet, b.internal))
            })
            .collect()
    }

    /// The published ports of `family`.
    pub(crate) fn ports_of(&self, family: Family) -> impl Iterator<Item = &PortRule> {
        self.ports
            .iter()
            .filter(move |p| p.ip.is_ipv6() == (family == Family::V6))
    }

    fn render_family(&self, table: &str, family: Family) -> String {
        let (fam, addr) = family.nft();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "table {fam} {table} {{}}\ndelete table {fam} {table}\ntable {fam} {table} {{"
        );
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain ports {\n");
        for p in self.ports_of(family) {
            let dst = p
                .host_addr()
                .map(|ip| format!("{addr} daddr {ip} "))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "    {dst}{proto} dport {hp} dnat to {to}",
                proto = p.proto,
                hp = p.host_port,
                to = with_port(p.ip, p.port),
            );
        }
        s.push_str("  }\n");
        s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for (br, subnet, internal) in self.subnets(family) {
            if family == Family::V4 {
                // The host's 127.0.0.1 DNAT'd to a container: give it a source the container
                // can answer (the gateway). IPv6 has no route_localnet: [::1] is not DNAT'd.
                let _ = writeln!(s, "    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
            }
            // A container reaching a published port of its own network (its own included:
            // the hairpin) through the host: the answer must come back through the host to be
            // un-DNAT'd. Matched by source subnet, not by input interface: when br_netfilter
            // bridges such a frame, postrouting sees no input interface.
            let _ = writeln!(
                s,
                "    oifname \"{br}\" {addr} saddr {subnet} ct status dnat masquerade"
            );
            if !internal {
                let _ = writeln!(
                    s,
                    "    {addr} saddr {subnet} oifname != \"{br}\" masquerade"
                );
            }
        }
        s.push_str("  }\n");
        // Isolation between networks: one hash lookup per forwarded packet, however many
        // networks there are. With br_netfilter loaded every bridged frame of the host (other
        // engines' too) passes this chain, so it is kept to that lookup plus two rules per
        // internal network.
        let bridges = self.subnets(family);
        let pairs: Vec<String> = bridges
            .iter()
            .flat_map(|(b, _, internal)| {
                bridges
                    .iter()
                    .filter(move |(o, _, _)| !internal && o != b)
                    .map(move |(o, _, _)| format!("\"{b}\" . \"{o}\""))
            })
            .collect();
        if !pairs.is_empty() {
            let _ = writeln!(
                s,
                "  set isolated {{\n    type ifname . ifname\n    elements = {{ {} }}\n  }}",
                pairs.join(", ")
            );
        }
        s.push_str(
            "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
        );
        if !pairs.is_empty() {
            s.push_str("    iifname . oifname @isolated drop\n");
        }
        for (br, _, _) in bridges.iter().filter(|(_, _, internal)| *internal) {
            let _ = writeln!(s, "    iifname \"{br}\" oifname != \"{br}\" drop");
            let _ = writeln!(s, "    oifname \"{br}\" iifname != \"{br}\" drop");
        }
        s.push_str("  }\n}\n");
        s
    }

    /// Replaces the daemon's rules with this ruleset.
    pub fn apply(&self, backend: Backend, table: &str) -> Result<()> {
        match backend {
            Backend::Nftables => run("nft", &["-f", "-"], &self.render(table)),
            Backend::Iptables => crate::iptables::apply(self, table),
            Backend::Missing => Err(missing()),
        }
    }
}

/// What applies the rules: `nft` (the default), or `iptables-restore` where only that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nftables,
    Iptables,
    /// Neither command is on PATH: each change fails, naming what to install; containers that
    /// need no rules (`--network none|host`) still run.
    Missing,
}

impl Backend {
    /// The backend `--firewall-backend` names (`nftables`, `iptables`), its command checked;
    /// without one, nftables where `nft` is on PATH, else iptables where `iptables-restore`
    /// is, else `Missing`.
    pub fn detect(wanted: Option<&str>) -> Result<Backend> {
        let unusable = |problem: String| Error::FirewallBackend {
            backend: wanted.unwrap_or_default().to_owned(),
            problem,
        };
        match wanted {
            Some("nftables") if on_path("nft") => Ok(Backend::Nftables),
            Some("iptables") if crate::iptables::COMMANDS.iter().all(|c| on_path(c)) => {
                Ok(Backend::Iptables)
            }
            Some(b @ ("nftables" | "iptables")) => Err(unusable(format!(
                "{} not found ({})",
                if b == "nftables" {
                    "nft".to_owned()
                } else {
                    crate::iptables::COMMANDS.join(" or ")
                },
                path_var()
            ))),
            Some(_) => Err(unusable("want nftables or iptables".into())),
            None if on_path("nft") => Ok(Backend::Nftables),
            None if crate::iptables::COMMANDS.iter().all(|c| on_path(c)) => Ok(Backend::Iptables),
            None => Ok(Backend::Missing),
        }
    }
}

/// Removes the daemon's rules (its nftables table, or its iptables chains and the jumps to
/// them); missing ones are fine.
pub fn remove(backend: Backend, table: &str) -> Result<()> {
    match backend {
        Backend::Nftables => run(
            "nft",
            &["-f", "-"],
            &format!(
                "table ip {table} {{}}\ndelete table ip {table}\ntable ip6 {table} {{}}\ndelete table ip6 {table}\n"
            ),
        ),
        Backend::Iptables => crate::iptables::remove(table),
        Backend::Missing => Ok(()),
    }
}

/// Whether the daemon's rules exist.
pub fn exists(backend: Backend, table: &str) -> bool {
    match backend {
        Backend::Nftables => quiet("nft", &["list", "table", "ip", table]),
        Backend::Iptables => crate::iptables::exists(table),
        Backend::Missing => false,
    }
}

fn missing() -> Error {
    Error::FirewallMissing(path_var())
}

fn path_var() -> String {
    std::env::var("PATH").map_or_else(|_| "no PATH".into(), |p| format!("PATH={p}"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(program)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// Runs `program args` quietly; whether it succeeded.
pub(crate) fn quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program args` with `input` on its stdin; its stderr is the error. nft's input
/// language (and iptables-restore's) is the stable, documented interface to the kernel's
/// tables; see docs/architecture.md for why this is the one exec the network crate makes.
pub(crate) fn run(program: &str, args: &[&str], input: &str) -> Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => missing(),
            _ => Error::Firewall(format!("run {program}: {e}")),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| Error::Firewall(format!("write to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Firewall(format!("wait for {program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Firewall(format!(
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// Two networks, b0 (10.9.0.0/24, and fd09::/64 when `v6`) and the internal b1
    /// (10.9.1.0/24), and one published port on 127.0.0.1 to 10.9.0.2 (and one on every
    /// address to [fd09::2] when `v6`).
    pub(crate) fn sample(proto: &str, host_port: u16, port: u16, v6: bool) -> Ruleset {
        let bridge = |name: &str, subnet: &str, subnet6: Option<&str>, internal| BridgeRules {
            bridge: name.into(),
            subnet: subnet.parse().unwrap(),
            subnet6: subnet6.map(|s| s.parse().unwrap()),
            internal,
        };
        let mut ports = vec![PortRule {
            proto: proto.into(),
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port,
            ip: "10.9.0.2".parse().unwrap(),
            port,
        }];
        if v6 {
            ports.push(PortRule {
                proto: proto.into(),
                host_ip: None,
                host_port,
                ip: "fd09::2".parse().unwrap(),
                port,
            });
        }
        Ruleset {
            bridges: vec![
                bridge("b0", "10.9.0.0/24", v6.then_some("fd09::/64"), false),
                bridge("b1", "10.9.1.0/24", None, true),
            ],
            ports,
        }
    }

    #[test]
    fn renders_nat_isolation_and_ports() {
        let r = sample("tcp", 8080, 80, false);
        let s = r.render("t");
        assert!(s.starts_with("table ip t {}\ndelete table ip t\n"));
        assert!(s.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.9.0.2:80"));
        assert!(s.contains("ip saddr 10.9.0.0/24 oifname != \"b0\" masquerade"));
        assert!(s.contains("oifname \"b0\" ip saddr 10.9.0.0/24 ct status dnat masquerade"));
        assert!(
            !s.contains("ip saddr 10.9.1.0/24 oifname !="),
            "internal networks are not masqueraded"
        );
        assert!(s.contains("elements = { \"b0\" . \"b1\" }"), "{s}");
        assert!(s.contains("iifname . oifname @isolated drop"));
        assert!(s.contains("iifname \"b1\" oifname != \"b1\" drop"));
        assert!(
            s.ends_with("table ip6 t {}\ndelete table ip6 t\n"),
            "no IPv6 network: no ip6 table left"
        );
    }

    #[test]
    fn renders_the_ipv6_table_for_ipv6_networks() {
        let s = sample("tcp", 8080, 80, true).render("t");
        let v6 = &s[s.find("table ip6 t {\n").unwrap()..];
        assert!(v6.contains("tcp dport 8080 dnat to [fd09::2]:80"), "{v6}");
        assert!(v6.contains("ip6 saddr fd09::/64 oifname != \"b0\" masquerade"));
        assert!(v6.contains("oifname \"b0\" ip6 saddr fd09::/64 ct status dnat masquerade"));
        assert!(!v6.contains("10.9."), "IPv4 rules stay in the ip table");
        assert!(!v6.contains("127.0.0.0/8"));
        let v4 = &s[..s.find("table ip6 t {}").unwrap()];
        assert!(!v4.contains("fd09"), "IPv6 rules stay in the ip6 table");
    }
}
