//! The firewall where only iptables exists: the rules of the nftables table (`firewall.rs`)
//! as three chains of the daemon's own — `<NAME>-DNAT` and `<NAME>-POST` in the nat table,
//! `<NAME>-FWD` in the filter table, NAME being the daemon's `--nft-table` — reached by one
//! jump each from PREROUTING and OUTPUT (to local addresses), POSTROUTING and FORWARD.
//!
//! Each change rewrites the chains with one `iptables-restore --noflush` (a chain that is
//! declared is flushed, and each table's part is committed at once), then makes sure the jumps
//! are there (`-C`, else add): a firewall reload that dropped them gets them back at the next
//! change. Other chains of the host are never touched. IPv6 networks' rules go into the same
//! chains of ip6tables (`ip6tables-restore`), which exist only while an IPv6 network does.

use std::fmt::Write as _;

use crate::error::Result;
use crate::firewall::{quiet, run, with_port, Family, Ruleset};

/// What this backend runs: both must be on PATH for it to be chosen.
pub(crate) const COMMANDS: [&str; 2] = ["iptables", "iptables-restore"];

/// The commands of a family: (iptables, iptables-restore).
fn commands(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::V4 => ("iptables", "iptables-restore"),
        Family::V6 => ("ip6tables", "ip6tables-restore"),
    }
}

/// The longest chain name iptables takes.
const CHAIN_MAX: usize = 28;

/// The daemon's three chains: (table, chain).
fn chains(table: &str) -> [(&'static str, String); 3] {
    let p = prefix(table);
    [
        ("nat", format!("{p}-DNAT")),
        ("nat", format!("{p}-POST")),
        ("filter", format!("{p}-FWD")),
    ]
}

/// The jumps into them: (table, built-in chain, the rule's match and target).
fn jumps(table: &str) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let [(_, dnat), (_, post), (_, fwd)] = chains(table);
    let local = |chain: &str| -> Vec<String> {
        ["-m", "addrtype", "--dst-type", "LOCAL", "-j", chain]
            .map(str::to_owned)
            .to_vec()
    };
    vec![
        ("nat", "PREROUTING", local(&dnat)),
        ("nat", "OUTPUT", local(&dnat)),
        ("nat", "POSTROUTING", vec!["-j".into(), post]),
        // First in FORWARD: the chain only drops, and must come before another firewall's
        // accepts.
        ("filter", "FORWARD", vec!["-j".into(), fwd]),
    ]
}

/// The table's name as a chain prefix, short enough for iptables (a digest of it otherwise).
fn prefix(table: &str) -> String {
    if table.len() + "-DNAT".len() <= CHAIN_MAX {
        return table.to_owned();
    }
    use sha2::Digest;
    format!(
        "berth-{}",
        &hex::encode(sha2::Sha256::digest(table.as_bytes()))[..12]
    )
}

/// The chains' contents of one family as iptables-restore's input.
pub(crate) fn render(rs: &Ruleset, table: &str, family: Family) -> String {
    let [(_, dnat), (_, post), (_, fwd)] = chains(table);
    let host = if family == Family::V4 { "32" } else { "128" };
    let mut s = format!("*nat\n:{dnat} - [0:0]\n:{post} - [0:0]\n");
    for p in rs.ports_of(family) {
        let dst = p
            .host_addr()
            .map(|ip| format!("-d {ip}/{host} "))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "-A {dnat} {dst}-p {proto} -m {proto} --dport {hp} -j DNAT --to-destination {to}",
            proto = p.proto,
            hp = p.host_port,
            to = with_port(p.ip, p.port),
        );
    }
    let subnets = rs.subnets(family);
    for (br, net, internal) in &subnets {
        if family == Family::V4 {
            let _ = writeln!(s, "-A {post} -s 127.0.0.0/8 -o {br} -j MASQUERADE");
        }
        let _ = writeln!(
            s,
            "-A {post} -s {net} -o {br} -m conntrack --ctstate DNAT -j MASQUERADE"
        );
        if !internal {
            let _ = writeln!(s, "-A {post} -s {net} ! -o {br} -j MASQUERADE");
        }
    }
    let _ = write!(s, "COMMIT\n*filter\n:{fwd} - [0:0]\n");
    for (br, _, internal) in &subnets {
        if *internal {
            let _ = writeln!(s, "-A {fwd} -i {br} ! -o {br} -j DROP");
            let _ = writeln!(s, "-A {fwd} -o {br} ! -i {br} -j DROP");
            continue;
        }
        for (o, _, _) in subnets.iter().filter(|(o, _, _)| o != br) {
            let _ = writeln!(s, "-A {fwd} -i {br} -o {o} -j DROP");
        }
    }
    s.push_str("COMMIT\n");
    s
}

/// Rewrites the daemon's chains, then makes sure the jumps to them exist; IPv6's too while an
/// IPv6 network exists, else they are removed.
pub(crate) fn apply(rs: &Ruleset, table: &str) -> Result<()> {
    apply_family(rs, table, Family::V4)?;
    if rs.has_v6() {
        apply_family(rs, table, Family::V6)
    } else {
        if exists_family(table, Family::V6) {
            remove_family(table, Family::V6);
        }
        Ok(())
    }
}

fn apply_family(rs: &Ruleset, table: &str, family: Family) -> Result<()> {
    let (cmd, restore) = commands(family);
    run(
        restore,
        &["--wait", "--noflush"],
        &render(rs, table, family),
    )?;
    for (t, builtin, rule) in jumps(table) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        if !quiet(
            cmd,
            &[&["--wait", "-t", t, "-C", builtin], &rule[..]].concat(),
        ) {
            let add: &[&str] = if builtin == "FORWARD" {
                &["-I", builtin, "1"]
            } else {
                &["-A", builtin]
            };
            run(cmd, &[&["--wait", "-t", t], add, &rule[..]].concat(), "")?;
        }
    }
    Ok(())
}

/// Removes the jumps and the chains of both families; what is not there is fine.
pub(crate) fn remove(table: &str) -> Result<()> {
    remove_family(table, Family::V4);
    remove_family(table, Family::V6);
    Ok(())
}

fn remove_family(table: &str, family: Family) {
    let (cmd, _) = commands(family);
    for (t, builtin, rule) in jumps(table) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        // A jump added twice (by hand, or by a firewall reload) goes too; bounded.
        for _ in 0..8 {
            if !quiet(
                cmd,
                &[&["--wait", "-t", t, "-D", builtin], &rule[..]].concat(),
            ) {
                break;
            }
        }
    }
    for (t, chain) in chains(table) {
        quiet(cmd, &["--wait", "-t", t, "-F", &chain]);
        quiet(cmd, &["--wait", "-t", t, "-X", &chain]);
    }
}

/// Whether the daemon's DNAT chain exists.
pub(crate) fn exists(table: &str) -> bool {
    exists_family(table, Family::V4)
}

fn exists_family(table: &str, family: Family) -> bool {
    let [(t, dnat), _, _] = chains(table);
    quiet(commands(family).0, &["--wait", "-t", t, "-n", "-L", &dnat])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::firewall::tests::sample;

    #[test]
    fn renders_the_nft_rules_as_the_daemons_own_chains() {
        let rs = sample("udp", 5353, 53, false);
        let s = render(&rs, "t", Family::V4);
        assert!(
            s.starts_with("*nat\n:t-DNAT - [0:0]\n:t-POST - [0:0]\n"),
            "{s}"
        );
        assert!(s.contains(
            "-A t-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.9.0.2:53"
        ));
        assert!(
            s.contains("-A t-POST -s 10.9.0.0/24 -o b0 -m conntrack --ctstate DNAT -j MASQUERADE")
        );
        assert!(s.contains("-A t-POST -s 10.9.0.0/24 ! -o b0 -j MASQUERADE"));
        assert!(
            !s.contains("-s 10.9.1.0/24 ! -o b1"),
            "internal: no way out"
        );
        assert!(s.contains("-A t-FWD -i b0 -o b1 -j DROP"));
        assert!(s.contains("-A t-FWD -i b1 ! -o b1 -j DROP"));
        assert!(s.ends_with("COMMIT\n"));
        assert_eq!(jumps("t")[3].2, ["-j", "t-FWD"]);
    }

    #[test]
    fn renders_ipv6_rules_for_ip6tables() {
        let rs = sample("tcp", 8080, 80, true);
        let s = render(&rs, "t", Family::V6);
        assert!(
            s.contains(
                "-A t-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd09::2]:80"
            ),
            "{s}"
        );
        assert!(s.contains("-A t-POST -s fd09::/64 ! -o b0 -j MASQUERADE"));
        assert!(!s.contains("127.0.0.0/8") && !s.contains("10.9."), "{s}");
    }

    #[test]
    fn long_table_names_make_short_chain_names() {
        let long = "berth_a_very_long_table_name_indeed";
        for (_, c) in chains(long) {
            assert!(c.len() <= CHAIN_MAX, "{c}");
        }
        assert_ne!(prefix(long), prefix("berth_a_very_long_table_name_indeex"));
        assert_eq!(prefix("berth"), "berth");
    }
}
