//! The daemon's nftables table: masquerade out of each network, isolation between networks,
//! `--internal` networks cut off, and the DNAT of published ports (from outside, from other
//! containers and from the host's own 127.0.0.1 — route_localnet on the bridge, no proxy).
//!
//! The whole table is rendered from the daemon's state and replaced in one `nft -f` transaction
//! each time something changes: the kernel swaps it atomically, a crash can never leave half a
//! change, and whatever a dead container had is simply absent from the next table. One table per
//! daemon, named by the daemon (`--nft-table`), so daemons side by side never touch each other's
//! rules and removing the table removes all of them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::cidr::Ipv4Net;
use crate::error::{Error, Result};

/// One bridge network, as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub internal: bool,
}

/// One published port: `host_ip:host_port/proto` → `ip:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// `tcp` or `udp`.
    pub proto: String,
    /// None: every local address of the host (`0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// Everything the table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub bridges: Vec<BridgeRules>,
    pub ports: Vec<PortRule>,
}

impl Ruleset {
    /// The table as nft's input: creates it if missing, then replaces it whole.
    pub fn render(&self, table: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
        );
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain ports {\n");
        for p in &self.ports {
            let dst = p
                .host_ip
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| format!("ip daddr {ip} "))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "    {dst}{proto} dport {hp} dnat to {ip}:{port}",
                proto = p.proto,
                hp = p.host_port,
                ip = p.ip,
                port = p.port
            );
        }
        s.push_str("  }\n");
        s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for b in &self.bridges {
            let br = &b.bridge;
            // The host's 127.0.0.1 DNAT'd to a container: give it a source the container can
            // answer (the gateway).
            let _ = writeln!(s, "    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
            // A container reaching a published port of its own network (its own included:
            // the hairpin) through the host: the answer must come back through the host to be
            // un-DNAT'd. Matched by source subnet, not by input interface: when br_netfilter
            // bridges such a frame, postrouting sees no input interface.
            let _ = writeln!(
                s,
                "    oifname \"{br}\" ip saddr {} ct status dnat masquerade",
                b.subnet
            );
            if !b.internal {
                let _ = writeln!(
                    s,
                    "    ip saddr {} oifname != \"{br}\" masquerade",
                    b.subnet
                );
            }
        }
        s.push_str("  }\n");
        // Isolation between networks: one hash lookup per forwarded packet, however many
        // networks there are. With br_netfilter loaded every bridged frame of the host (other
        // engines' too) passes this chain, so it is kept to that lookup plus two rules per
        // internal network.
        let pairs: Vec<String> = self
            .bridges
            .iter()
            .filter(|b| !b.internal)
            .flat_map(|b| {
                self.bridges
                    .iter()
                    .filter(move |o| o.bridge != b.bridge)
                    .map(move |o| format!("\"{}\" . \"{}\"", b.bridge, o.bridge))
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
        for b in self.bridges.iter().filter(|b| b.internal) {
            let br = &b.bridge;
            let _ = writeln!(s, "    iifname \"{br}\" oifname != \"{br}\" drop");
            let _ = writeln!(s, "    oifname \"{br}\" iifname != \"{br}\" drop");
        }
        s.push_str("  }\n}\n");
        s
    }

    /// Replaces the daemon's table with this ruleset, atomically.
    pub fn apply(&self, table: &str) -> Result<()> {
        nft(&self.render(table))
    }
}

/// Removes the daemon's table (and with it every rule it made); a missing table is fine.
pub fn remove(table: &str) -> Result<()> {
    nft(&format!("table ip {table} {{}}\ndelete table ip {table}\n"))
}

/// Whether the daemon's table exists.
pub fn exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `nft -f -` on `script`. nft's own input language is the stable, documented interface
/// to nf_tables batches; see docs/architecture.md for why this is the one exec the network
/// crate makes.
fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NftMissing(
                std::env::var("PATH").map_or_else(|_| "no PATH".into(), |p| format!("PATH={p}")),
            ),
            _ => Error::Firewall(format!("run nft: {e}")),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::Firewall(format!("write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Firewall(format!("wait for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_nat_isolation_and_ports() {
        let r = Ruleset {
            bridges: vec![
                BridgeRules {
                    bridge: "b0".into(),
                    subnet: "10.9.0.0/24".parse().unwrap(),
                    internal: false,
                },
                BridgeRules {
                    bridge: "b1".into(),
                    subnet: "10.9.1.0/24".parse().unwrap(),
                    internal: true,
                },
            ],
            ports: vec![PortRule {
                proto: "tcp".into(),
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8080,
                ip: Ipv4Addr::new(10, 9, 0, 2),
                port: 80,
            }],
        };
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
    }
}
