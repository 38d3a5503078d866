//! The firewall where only iptables exists: the rules of the nftables table (`firewall.rs`)
//! as three chains of the daemon's own — `<NAME>-DNAT` and `<NAME>-POST` in the nat table,
//! `<NAME>-FWD` in the filter table, NAME being the daemon's `--nft-table` — reached by one
//! jump each from PREROUTING and OUTPUT (to local addresses), POSTROUTING and FORWARD.
//!
//! Each change rewrites the chains with one `iptables-restore --noflush` (a chain that is
//! declared is flushed, and each table's part is committed at once), then makes sure the jumps
//! are there (`-C`, else add): a firewall reload that dropped them gets them back at the next
//! change. Other chains of the host are never touched.

use std::fmt::Write as _;

use crate::error::Result;
use crate::firewall::{quiet, run, Ruleset};

/// What this backend runs: both must be on PATH for it to be chosen.
pub(crate) const COMMANDS: [&str; 2] = ["iptables", "iptables-restore"];

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

/// The chains' contents as iptables-restore's input.
pub(crate) fn render(rs: &Ruleset, table: &str) -> String {
    let [(_, dnat), (_, post), (_, fwd)] = chains(table);
    let mut s = format!("*nat\n:{dnat} - [0:0]\n:{post} - [0:0]\n");
    for p in &rs.ports {
        let dst = p
            .host_addr()
            .map(|ip| format!("-d {ip}/32 "))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "-A {dnat} {dst}-p {proto} -m {proto} --dport {hp} -j DNAT --to-destination {ip}:{port}",
            proto = p.proto,
            hp = p.host_port,
            ip = p.ip,
            port = p.port
        );
    }
    for b in &rs.bridges {
        let (br, net) = (&b.bridge, b.subnet);
        let _ = writeln!(s, "-A {post} -s 127.0.0.0/8 -o {br} -j MASQUERADE");
        let _ = writeln!(
            s,
            "-A {post} -s {net} -o {br} -m conntrack --ctstate DNAT -j MASQUERADE"
        );
        if !b.internal {
            let _ = writeln!(s, "-A {post} -s {net} ! -o {br} -j MASQUERADE");
        }
    }
    let _ = write!(s, "COMMIT\n*filter\n:{fwd} - [0:0]\n");
    for b in &rs.bridges {
        let br = &b.bridge;
        if b.internal {
            let _ = writeln!(s, "-A {fwd} -i {br} ! -o {br} -j DROP");
            let _ = writeln!(s, "-A {fwd} -o {br} ! -i {br} -j DROP");
            continue;
        }
        for o in rs.isolated_from(b) {
            let _ = writeln!(s, "-A {fwd} -i {br} -o {} -j DROP", o.bridge);
        }
    }
    s.push_str("COMMIT\n");
    s
}

/// Rewrites the daemon's chains, then makes sure the jumps to them exist.
pub(crate) fn apply(rs: &Ruleset, table: &str) -> Result<()> {
    run(
        "iptables-restore",
        &["--wait", "--noflush"],
        &render(rs, table),
    )?;
    for (t, builtin, rule) in jumps(table) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        if !quiet(
            "iptables",
            &[&["--wait", "-t", t, "-C", builtin], &rule[..]].concat(),
        ) {
            let add: &[&str] = if builtin == "FORWARD" {
                &["-I", builtin, "1"]
            } else {
                &["-A", builtin]
            };
            run(
                "iptables",
                &[&["--wait", "-t", t], add, &rule[..]].concat(),
                "",
            )?;
        }
    }
    Ok(())
}

/// Removes the jumps and the chains; what is not there is fine.
pub(crate) fn remove(table: &str) -> Result<()> {
    for (t, builtin, rule) in jumps(table) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        // A jump added twice (by hand, or by a firewall reload) goes too; bounded.
        for _ in 0..8 {
            if !quiet(
                "iptables",
                &[&["--wait", "-t", t, "-D", builtin], &rule[..]].concat(),
            ) {
                break;
            }
        }
    }
    for (t, chain) in chains(table) {
        quiet("iptables", &["--wait", "-t", t, "-F", &chain]);
        quiet("iptables", &["--wait", "-t", t, "-X", &chain]);
    }
    Ok(())
}

/// Whether the daemon's DNAT chain exists.
pub(crate) fn exists(table: &str) -> bool {
    let [(t, dnat), _, _] = chains(table);
    quiet("iptables", &["--wait", "-t", t, "-n", "-L", &dnat])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::firewall::tests::sample;

    #[test]
    fn renders_the_nft_rules_as_the_daemons_own_chains() {
        let rs = sample("udp", 5353, 53);
        let s = render(&rs, "t");
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
    fn long_table_names_make_short_chain_names() {
        let long = "berth_a_very_long_table_name_indeed";
        for (_, c) in chains(long) {
            assert!(c.len() <= CHAIN_MAX, "{c}");
        }
        assert_ne!(prefix(long), prefix("berth_a_very_long_table_name_indeex"));
        assert_eq!(prefix("berth"), "berth");
    }
}
