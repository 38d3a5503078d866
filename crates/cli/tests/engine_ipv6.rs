//! IPv6 networks as dockerd builds them, tested for real inside network namespaces the tests
//! make (the daemon runs in one, so IPv6 forwarding and its tables never touch the host's):
//! addresses and routes in the containers, traffic between them, to the gateway and through a
//! published port, AAAA answers, isolation, the ip6 nftables table and the ip6tables chains,
//! the endpoint fields, bad input. docker-py's view is `dockerpy/networks.py`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::engine::{code, docker_py, err, out, run_cmd, Daemon, IMAGE};
use common::netns::Netns;
use common::unique;

/// A daemon (with the busybox image) in a network namespace of its own, with `extra` flags.
fn daemon_in(ns: &Netns, extra: &[&str]) -> Daemon {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let d = Daemon::start_bare_under(&ns.wrapper(), &extra);
    d.import_busybox(IMAGE);
    d
}

/// `program args` run in the namespace.
fn in_ns(ns: &Netns, program: &str, args: &[&str]) -> std::process::Output {
    let mut c = ns.command(program);
    c.args(args);
    run_cmd(c, None, 30)
}

/// Connects to `addr` from inside the namespace (a thread joins it) and reads what is sent.
fn tcp_read_in(ns: &Netns, addr: std::net::SocketAddr) -> String {
    let path = ns.path();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let _ = s.write_all(b"hi\n");
                let mut got = String::new();
                let _ = s.read_to_string(&mut got);
                if !got.is_empty() {
                    return got;
                }
                last = got;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        last
    })
    .join()
    .unwrap()
}

/// A server on port 80 answering every connection with `hello-NAME`.
fn server(name: &str) -> String {
    format!("while true; do echo hello-{name} | nc -l -p 80; done")
}

#[test]
fn docker_py_sees_ipv6_networks_and_endpoint_fields_as_dockerd_shows_them() {
    let ns = Netns::new();
    let d = daemon_in(&ns, &[]);
    let prefix = unique("py");
    docker_py(
        &d,
        "networks.py",
        &[prefix.as_ref()],
        "docker-py networks ok",
    );
}

#[test]
fn ipv6_networks_carry_traffic_between_containers_the_gateway_and_published_ports() {
    let ns = Netns::new();
    let d = daemon_in(&ns, &[]);
    let net = unique("v6");
    d.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd5b:1:1::/64",
        "--subnet",
        &d.subnet(0),
        &net,
    ]);
    assert_eq!(
        d.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}}|{{.Gateway}} {{end}}",
            &net
        ]),
        format!("true {}| fd5b:1:1::/64|", d.subnet(0))
    );
    let srv_cmd = server("srv");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        &net,
        "--ip6",
        "fd5b:1:1::10",
        "-p",
        "8080:80",
        IMAGE,
        "sh",
        "-c",
        &srv_cmd,
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        &net,
        IMAGE,
        "sleep",
        "120",
    ]);

    // Inspect: dockerd's fields.
    let fields = "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}} {{json .IPAMConfig}}{{end}}";
    assert_eq!(
        d.inspect(fields, "srv"),
        r#"fd5b:1:1::10/64 fd5b:1:1::1 {"IPv6Address":"fd5b:1:1::10"}"#
    );
    let cli6 = d.inspect(
        "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
        "cli",
    );
    assert_eq!(
        cli6, "fd5b:1:1::2",
        "the first free address after the gateway"
    );
    let members = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv6Address}} {{end}}",
        &net,
    ]);
    assert!(
        members.contains("srv=fd5b:1:1::10/64") && members.contains("cli=fd5b:1:1::2/64"),
        "{members}"
    );

    // Inside: the address (no duplicate detection, so usable at once), the default route.
    let addr = d.docker_ok(&["exec", "cli", "ip", "-o", "-6", "addr", "show", "eth0"]);
    assert!(addr.contains("inet6 fd5b:1:1::2/64"), "{addr}");
    let routes = d.docker_ok(&["exec", "cli", "ip", "-6", "route"]);
    assert!(
        routes.contains("default via fd5b:1:1::1 dev eth0"),
        "{routes}"
    );
    assert!(d
        .docker_ok(&["exec", "cli", "cat", "/etc/hosts"])
        .contains(&format!("{cli6}\t")));

    // Traffic: to the other container by address and by name (AAAA from 127.0.0.11), to the
    // gateway, and TCP over IPv6.
    for target in ["fd5b:1:1::10", "srv", "fd5b:1:1::1"] {
        let o = d.docker_ok(&["exec", "cli", "ping6", "-c", "1", "-W", "3", target]);
        assert!(o.contains("1 packets received"), "{target}: {o}");
    }
    let aaaa = d.docker_ok(&["exec", "cli", "nslookup", "-type=AAAA", "srv", "127.0.0.11"]);
    assert!(aaaa.contains("fd5b:1:1::10"), "{aaaa}");
    let a = d.docker_ok(&["exec", "cli", "nslookup", "-type=A", "srv", "127.0.0.11"]);
    assert!(!a.contains("fd5b"), "only A records for an A question: {a}");
    let o = d.docker_ok(&["exec", "cli", "sh", "-c", "echo | nc -w 3 fd5b:1:1::10 80"]);
    assert_eq!(o, "hello-srv");

    // The published port, on IPv6's every address too: from the namespace's own side through
    // the bridge's gateway address, and from a container through it (the hairpin).
    assert_eq!(
        d.docker_ok(&["port", "srv", "80"]),
        "0.0.0.0:8080\n[::]:8080"
    );
    let got = tcp_read_in(&ns, "[fd5b:1:1::1]:8080".parse().unwrap());
    assert_eq!(got.trim(), "hello-srv");
    let o = d.docker_ok(&["exec", "cli", "sh", "-c", "echo | nc -w 3 fd5b:1:1::1 8080"]);
    assert_eq!(o, "hello-srv");

    // A container of a network without IPv6 has none at all (no link-local address either).
    let o = d.docker_ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "ip -6 -o addr show eth0; echo end",
    ]);
    assert_eq!(o, "end");

    // The rules: the ip6 table of the daemon's name, gone with the last IPv6 network.
    let table = in_ns(&ns, "nft", &["list", "table", "ip6", &d.nft_table]);
    assert!(
        out(&table).contains("ip6 saddr fd5b:1:1::/64 oifname != ")
            && out(&table).contains("dnat to [fd5b:1:1::10]:80"),
        "{}{}",
        out(&table),
        err(&table)
    );
    let fwd = in_ns(&ns, "sysctl", &["-n", "net.ipv6.conf.all.forwarding"]);
    assert_eq!(out(&fwd).trim(), "1");
    d.docker_ok(&["rm", "-f", "srv", "cli"]);
    d.docker_ok(&["network", "rm", &net]);
    let gone = in_ns(&ns, "nft", &["list", "table", "ip6", &d.nft_table]);
    assert_ne!(code(&gone), 0, "{}", out(&gone));
}

#[test]
fn ipv6_subnets_come_from_the_pool_and_networks_stay_isolated() {
    let ns = Netns::new();
    let d = daemon_in(&ns, &[]);
    // No subnet asked: a /64 of the daemon's unique local /48.
    d.docker_ok(&["network", "create", "--ipv6", "a6"]);
    d.docker_ok(&["network", "create", "--ipv6", "b6"]);
    let subnet = |n: &str| {
        d.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
            n,
        ])
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
    };
    let (sa, sb) = (subnet("a6"), subnet("b6"));
    assert!(sa.starts_with("fd") && sa.ends_with("/64"), "{sa}");
    assert_ne!(sa, sb);
    // The pool can be set (`--default-address-pool` with an IPv6 base).
    let ns2 = Netns::new();
    let d2 = daemon_in(
        &ns2,
        &["--default-address-pool", "base=fd5b:99::/48,size=64"],
    );
    d2.docker_ok(&["network", "create", "--ipv6", "p6"]);
    assert_eq!(
        d2.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
            "p6"
        ])
        .split_whitespace()
        .nth(1),
        Some("fd5b:99::/64")
    );
    // Two IPv6 networks: their containers cannot reach each other, over IPv6 either.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ina",
        "--network",
        "a6",
        IMAGE,
        "sleep",
        "60",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "inb",
        "--network",
        "b6",
        IMAGE,
        "sleep",
        "60",
    ]);
    let b6 = d.inspect(
        "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
        "inb",
    );
    let o = d.docker(&["exec", "ina", "ping6", "-c", "1", "-W", "2", &b6]);
    assert_ne!(code(&o), 0, "a6 reached b6: {}", out(&o));
    // Connected to both, a container reaches both.
    d.docker_ok(&["network", "connect", "b6", "ina"]);
    let o = d.docker_ok(&["exec", "ina", "ping6", "-c", "1", "-W", "3", &b6]);
    assert!(o.contains("1 packets received"), "{o}");
}

#[test]
fn ipv6_rules_go_to_ip6tables_where_only_iptables_is_used() {
    let has = |c: &str| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        has("ip6tables") && has("ip6tables-restore"),
        "ip6tables is missing: scripts/install-deps.sh installs iptables"
    );
    let ns = Netns::new();
    let d = daemon_in(&ns, &["--firewall-backend", "iptables"]);
    d.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd5b:2:2::/64",
        "--subnet",
        &d.subnet(0),
        "t6",
    ]);
    let srv_cmd = server("ipt");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "s6",
        "--network",
        "t6",
        "-p",
        "8081:80",
        IMAGE,
        "sh",
        "-c",
        &srv_cmd,
    ]);
    let s6 = d.inspect(
        "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
        "s6",
    );
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "t6",
        IMAGE,
        "sh",
        "-c",
        &format!("echo | nc -w 3 {s6} 80"),
    ]);
    assert_eq!(o, "hello-ipt");
    let got = tcp_read_in(&ns, "[fd5b:2:2::1]:8081".parse().unwrap());
    assert_eq!(got.trim(), "hello-ipt");
    let nat = out(&in_ns(&ns, "ip6tables", &["-t", "nat", "-S"]));
    assert!(
        nat.contains("-s fd5b:2:2::/64 ! -o ")
            && nat.contains(&format!("--to-destination [{s6}]:80")),
        "{nat}"
    );
    assert!(
        !out(&in_ns(&ns, "nft", &["list", "tables"])).contains(&d.nft_table),
        "no nftables table with the iptables backend"
    );
    d.docker_ok(&["rm", "-f", "s6"]);
    d.docker_ok(&["network", "rm", "t6"]);
    let nat = out(&in_ns(&ns, "ip6tables", &["-t", "nat", "-S"]));
    assert!(!nat.contains("fd5b:2:2::"), "{nat}");
}

#[test]
fn ipv6_bad_input_gets_dockerds_words_and_leaves_nothing() {
    let ns = Netns::new();
    let d = daemon_in(&ns, &[]);
    d.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd5b:3:3::/64",
        "good",
    ]);
    d.docker_ok(&["network", "create", "--ipv6", "auto6"]);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "plain"]);
    let networks_before = d.docker_ok(&["network", "ls", "-q"]);
    for (args, status, words) in [
        (
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd5b:3:3::/80",
                "x1",
            ][..],
            409,
            "Pool overlaps with other one on this address space",
        ),
        (
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd5b:4::/64",
                "--gateway",
                "fd5b:5::1",
                "x2",
            ][..],
            400,
            "no matching subnet for gateway fd5b:5::1",
        ),
        (
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd5b:4::zz/64",
                "x3",
            ][..],
            400,
            "invalid CIDR address: fd5b:4::zz/64",
        ),
        (
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd5b:4::/64",
                "--subnet",
                "fd5b:6::/64",
                "x4",
            ][..],
            400,
            "bridge driver doesn't support multiple subnets",
        ),
    ] {
        let o = d.docker(args);
        assert_ne!(code(&o), 0, "{args:?}");
        assert!(err(&o).contains(words), "{args:?} ({status}): {}", err(&o));
    }
    // The docker CLI checks auxiliary addresses itself: the API's answer.
    let (st, v) = d.api_json(
        "POST",
        "/networks/create",
        Some(r#"{"Name":"x5","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd5b:4::/64","AuxiliaryAddresses":{"a":"fd5b:7::1"}}]}}"#),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["message"],
        "auxiliary address: (a:fd5b:7::1) must belong to the master pool: fd5b:4::/64"
    );
    for (args, words) in [
        (
            &["--network", "good", "--ip6", "zz"][..],
            "invalid IPv6 address: zz",
        ),
        (
            &["--network", "good", "--ip6", "fd5b:9::1"][..],
            "no configured subnet or ip-range contain the IP address fd5b:9::1",
        ),
        (
            &["--network", "auto6", "--ip6", "fd00::5"][..],
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ),
        (
            &["--network", "plain", "--ip6", "fd00::5"][..],
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ),
        (
            &["--network", "good", "--link-local-ip", "10.1.1.1"][..],
            "invalid link local IP address: 10.1.1.1",
        ),
        (
            &["--network", "plain", "--link-local-ip", "fe80::9"][..],
            "which is not an IPv6 network",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[IMAGE, "true"]);
        let o = d.docker(&a);
        assert_eq!(code(&o), 125, "{args:?}");
        assert!(err(&o).contains(words), "{args:?}: {}", err(&o));
    }
    // The gateway and an in-use address cannot be taken; an API client sees 409 or 400.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "held",
        "--network",
        "good",
        "--ip6",
        "fd5b:3:3::5",
        IMAGE,
        "sleep",
        "60",
    ]);
    for ip in ["fd5b:3:3::1", "fd5b:3:3::5"] {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "good",
            "--ip6",
            ip,
            IMAGE,
            "true",
        ]);
        assert_ne!(code(&o), 0, "{ip}");
        assert!(
            err(&o).contains("Address already in use"),
            "{ip}: {}",
            err(&o)
        );
    }
    assert_eq!(d.docker_ok(&["network", "ls", "-q"]), networks_before);
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]).lines().count(),
        1,
        "only `held`"
    );
    // The failed starts left no address held: the next container gets the next free one.
    let o = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "good",
        IMAGE,
        "sh",
        "-c",
        "ip -o -6 addr show eth0",
    ]);
    assert!(o.contains("fd5b:3:3::2/64"), "{o}");
}

#[test]
fn ipv6_addresses_stay_unique_through_a_burst_and_a_daemon_kill_9() {
    let ns = Netns::new();
    let mut d = daemon_in(&ns, &[]);
    d.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd5b:b:b::/64",
        "burst",
    ]);
    // 12 containers started at once; the daemon is killed while they start.
    let runs: Vec<Command> = (0..12)
        .map(|i| {
            d.docker_cmd(&[
                "run",
                "-d",
                "--name",
                &format!("burst-{i}"),
                "--network",
                "burst",
                IMAGE,
                "sleep",
                "120",
            ])
        })
        .collect();
    let threads: Vec<_> = runs
        .into_iter()
        .map(|c| std::thread::spawn(move || run_cmd(c, None, 60)))
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    d.kill_daemon();
    for t in threads {
        let _ = t.join().unwrap();
    }
    d.spawn();
    // Whatever the kill interrupted: every running container has an address of its own, and
    // the network holds the addresses of the running ones and no other.
    let mut seen = std::collections::BTreeSet::new();
    let ids = d.docker_ok(&["ps", "-q", "--no-trunc"]);
    for id in ids.lines() {
        let ip6 = d.inspect(
            "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
            id,
        );
        let inside = d.docker_ok(&["exec", id, "ip", "-o", "-6", "addr", "show", "eth0"]);
        assert!(
            inside.contains(&format!("inet6 {ip6}/64")),
            "{id}: {inside}"
        );
        assert!(seen.insert(ip6.clone()), "{ip6} handed out twice");
    }
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.root.join("networks").join(format!(
            "{}.json",
            d.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "burst"])
        )))
        .unwrap(),
    )
    .unwrap();
    let held: std::collections::BTreeSet<String> = record["v6"]["allocated"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(held, seen, "addresses held for containers that do not run");
    // The rest (those the kill left created, or never made) start now, with addresses of
    // their own, and all reach each other.
    for i in 0..12 {
        let name = format!("burst-{i}");
        let o = d.docker(&["inspect", "-f", "{{.State.Status}}", &name]);
        if code(&o) != 0 {
            d.docker_ok(&[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "burst",
                IMAGE,
                "sleep",
                "120",
            ]);
        } else if out(&o).trim() != "running" {
            d.docker_ok(&["start", &name]);
        }
    }
    let ids = d.docker_ok(&["ps", "-q"]);
    assert_eq!(
        ids.lines().count(),
        12,
        "{}\n{}",
        d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]),
        d.daemon_log()
    );
    let first = ids.lines().next().unwrap().to_owned();
    let mut all = std::collections::BTreeSet::new();
    for id in ids.lines() {
        let ip6 = d.inspect(
            "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
            id,
        );
        assert!(all.insert(ip6.clone()), "{ip6} twice");
        let o = d.docker_ok(&["exec", &first, "ping6", "-c", "1", "-W", "3", &ip6]);
        assert!(o.contains("1 packets received"), "{ip6}: {o}");
    }
}
