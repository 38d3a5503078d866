//! Networks end to end, through the docker CLI and the API against a private daemon: names and
//! aliases over the embedded DNS server, isolation, `--internal`, `container:`, `none`, the
//! /etc files, published ports from the host's loopback and from containers, a daemon kill -9,
//! bad input, and nothing left behind (veths, netns files, nft rules).
//!
//! All traffic stays between the host's loopback and the containers these tests make.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::engine::{code, err, out, Daemon, IMAGE};

/// A server answering every connection on 8080 with `hello-NAME`.
fn server_cmd(name: &str) -> String {
    format!(
        "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello-{name}\\n' | nc -l -p 8080; done"
    )
}

/// An in-container client for `host:port`, retrying while the server loops between clients.
fn client_cmd(host: &str, port: u16) -> String {
    format!("for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} && exit 0; sleep 0.3; done; exit 1")
}

/// `docker run --rm --network NET IMAGE sh -c SCRIPT`.
fn sh_on(d: &Daemon, net: &str, script: &str) -> std::process::Output {
    d.docker(&["run", "--rm", "--network", net, IMAGE, "sh", "-c", script])
}

fn run_server(d: &Daemon, name: &str, extra: &[&str]) {
    let cmd = server_cmd(name);
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-c", &cmd]);
    d.docker_ok(&args);
}

/// `GET /` on `addr` from the host, retried for a few seconds.
fn http_get(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
        {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.contains("hello") {
                return body;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{addr} never answered (last: {last:?})");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The links enslaved to the daemon's bridges (the host ends of its veths).
fn veths_on(d: &Daemon) -> Vec<String> {
    let mut v = Vec::new();
    for b in d.bridges() {
        let o = Command::new("ip")
            .args(["-o", "link", "show", "master", &b])
            .output()
            .unwrap();
        v.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    v
}

fn nft_ports(d: &Daemon) -> String {
    let o = Command::new("nft")
        .args(["list", "chain", "ip", &d.nft_table, "ports"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn netns_files(d: &Daemon) -> usize {
    std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| r.count())
        .unwrap_or(0)
}

#[test]
fn user_networks_resolve_names_isolate_and_write_etc_files() {
    let d = Daemon::start();
    let s1 = d.subnet(0);
    let base = s1.trim_end_matches(".0/24").to_owned();
    let id = d.docker_ok(&[
        "network", "create", "--subnet", &s1, "--label", "team=a", "n1",
    ]);
    assert_eq!(id.len(), 64);
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in ["bridge bridge", "host host", "none null", "n1 bridge"] {
        assert!(ls.lines().any(|l| l == want), "{ls}");
    }
    assert_eq!(
        d.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Labels.team}}",
            "n1"
        ]),
        // dockerd shows only the IPAM config given: a subnet without its gateway.
        format!("{s1}  a")
    );
    run_server(&d, "web", &["--network", "n1", "--network-alias", "www"]);

    // By name and by alias, through 127.0.0.11.
    for host in ["web", "www"] {
        let o = sh_on(&d, "n1", &client_cmd(host, 8080));
        assert!(
            out(&o).contains("hello-web"),
            "{host}: {}{}",
            out(&o),
            err(&o)
        );
    }
    let web_ip = d.inspect("{{.NetworkSettings.Networks.n1.IPAddress}}", "web");
    assert!(web_ip.starts_with(&base), "{web_ip}");
    assert_eq!(
        d.inspect("{{.NetworkSettings.Networks.n1.Aliases}}", "web"),
        "[www]"
    );
    let members = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "n1",
    ]);
    assert_eq!(members, format!("web {web_ip}/24"));

    // The flags that shape a container's own network and files.
    let ip = format!("{base}.77");
    let inside = d.docker_ok(&[
        "run", "--rm", "--network", "n1", "--ip", &ip, "--mac-address", "02:42:aa:bb:cc:dd",
        "--hostname", "h1", "--add-host", "db.test:10.9.9.9", "--dns-search", "example.test",
        IMAGE, "sh", "-c", "ip -o -4 addr show eth0; cat /sys/class/net/eth0/address; hostname; cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(inside.contains(&format!("inet {ip}/24")), "{inside}");
    assert!(inside.contains("02:42:aa:bb:cc:dd"), "{inside}");
    assert!(inside.lines().any(|l| l == "h1"), "{inside}");
    assert!(inside.contains("127.0.0.1\tlocalhost"), "{inside}");
    assert!(inside.contains("10.9.9.9\tdb.test"), "{inside}");
    assert!(inside.contains(&format!("{ip}\th1")), "{inside}");
    assert!(inside.contains("nameserver 127.0.0.11"), "{inside}");
    assert!(inside.contains("search example.test"), "{inside}");
    assert!(inside.contains("options ndots:0"), "{inside}");
    let looked = d.docker_ok(&["run", "--rm", "--network", "n1", IMAGE, "nslookup", "web"]);
    assert!(looked.contains(&format!("Address: {web_ip}")), "{looked}");

    // The default bridge: the host's resolvers, no container DNS.
    let on_bridge = d.docker_ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/resolv.conf; ip -o -4 addr show eth0; ip route",
    ]);
    assert!(!on_bridge.contains("127.0.0.11"), "{on_bridge}");
    let bridge_base = d.bridge_subnet().trim_end_matches(".0/24").to_owned();
    assert!(
        on_bridge.contains(&format!("inet {bridge_base}.")),
        "{on_bridge}"
    );
    assert!(
        on_bridge.contains(&format!("default via {bridge_base}.1")),
        "{on_bridge}"
    );

    // Another user-defined network cannot reach n1.
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "n2"]);
    let o = sh_on(&d, "n2", &format!("nc -w 2 {web_ip} 8080 </dev/null"));
    assert_ne!(code(&o), 0, "n2 reached n1: {}", out(&o));
    // Nor resolve its names.
    let o = d.docker(&["run", "--rm", "--network", "n2", IMAGE, "nslookup", "web"]);
    assert!(!out(&o).contains(&web_ip), "{}", out(&o));

    // --internal: no default route, and the other network's gateway is unreachable.
    d.docker_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &d.subnet(2),
        "n3",
    ]);
    let o = sh_on(
        &d,
        "n3",
        &format!("ip route; nc -w 2 {base}.1 9 </dev/null"),
    );
    assert!(!out(&o).contains("default"), "{}", out(&o));
    assert_ne!(code(&o), 0);
    assert_eq!(
        d.docker_ok(&["network", "inspect", "-f", "{{.Internal}}", "n3"]),
        "true"
    );

    // container:web shares web's namespace: its server is on 127.0.0.1.
    let o = sh_on(&d, "container:web", &client_cmd("127.0.0.1", 8080));
    assert!(out(&o).contains("hello-web"), "{}{}", out(&o), err(&o));
    // none: loopback only.
    let links = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "ls /sys/class/net",
    ]);
    assert_eq!(links, "lo");

    // connect with an alias, then disconnect; events say so.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    d.docker_ok(&["network", "connect", "--alias", "second", "n2", "web"]);
    let n2_ip = d.inspect("{{.NetworkSettings.Networks.n2.IPAddress}}", "web");
    let o = sh_on(&d, "n2", &client_cmd("second", 8080));
    assert!(out(&o).contains("hello-web"), "{}{}", out(&o), err(&o));
    d.docker_ok(&["network", "disconnect", "n2", "web"]);
    assert_eq!(d.inspect("{{len .NetworkSettings.Networks}}", "web"), "1");
    let o = sh_on(&d, "n2", &format!("nc -w 2 {n2_ip} 8080 </dev/null"));
    assert_ne!(code(&o), 0, "still reachable on n2 after disconnect");
    let t1 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let ev = d.docker_ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert!(
        ev.contains("connect n2") && ev.contains("disconnect n2"),
        "{ev}"
    );

    // rm of a network in use is refused; after the container goes, everything does.
    let o = d.docker(&["network", "rm", "n1"]);
    assert_ne!(code(&o), 0);
    assert!(err(&o).contains("has active endpoints"), "{}", err(&o));
    d.docker_ok(&["rm", "-f", "web"]);
    assert!(veths_on(&d).is_empty(), "{:?}", veths_on(&d));
    assert_eq!(netns_files(&d), 0);
    d.docker_ok(&["network", "rm", "n1", "n2", "n3"]);
    assert_eq!(d.bridges(), vec![d.bridge.clone()]);
}

#[test]
fn published_ports_answer_on_loopback_and_from_containers() {
    let d = Daemon::start();
    let fixed = free_port();
    let spec = format!("127.0.0.1:{fixed}:8080");
    run_server(
        &d,
        "pub",
        &["-p", &spec, "-p", "8080", "--expose", "7777", "-P"],
    );
    // The fixed port, from the host's loopback (DNAT in OUTPUT, route_localnet).
    assert!(http_get(&format!("127.0.0.1:{fixed}")).contains("hello-pub"));
    // The ephemeral ones, as `port` and `ps` show them.
    let ports = d.docker_ok(&["port", "pub"]);
    assert!(
        ports.contains(&format!("8080/tcp -> 127.0.0.1:{fixed}")),
        "{ports}"
    );
    let eph: u16 = ports
        .lines()
        .find(|l| l.starts_with("8080/tcp -> 0.0.0.0:"))
        .and_then(|l| l.rsplit(':').next())
        .unwrap_or_else(|| panic!("{ports}"))
        .parse()
        .unwrap();
    assert!(ports.contains("7777/tcp -> 0.0.0.0:"), "{ports}");
    assert!(http_get(&format!("127.0.0.1:{eph}")).contains("hello-pub"));
    let ps = d.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{fixed}->8080/tcp")), "{ps}");
    assert!(ps.contains(&format!("0.0.0.0:{eph}->8080/tcp")), "{ps}");
    // From another container, through the host's address on the bridge.
    let gw = d.inspect("{{.NetworkSettings.Gateway}}", "pub");
    let o = d.docker(&["run", "--rm", IMAGE, "sh", "-c", &client_cmd(&gw, eph)]);
    assert!(out(&o).contains("hello-pub"), "{}{}", out(&o), err(&o));

    // UDP (busybox has no UDP server: the test listens inside the container's namespace).
    let uport = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("127.0.0.1:{uport}:9999/udp"),
        IMAGE,
        "sleep",
        "60",
    ]);
    let pid = d.inspect("{{.State.Pid}}", "udp");
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let listener = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind("0.0.0.0:9999").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut buf = [0u8; 64];
        s.recv_from(&mut buf)
            .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
            .unwrap_or_default()
    });
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && !listener.is_finished() {
        sock.send_to(b"ping-udp", ("127.0.0.1", uport)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(listener.join().unwrap(), "ping-udp");

    // A port some program holds: a clear error, nothing left made.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let veths_before = veths_on(&d).len();
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-p",
        &format!("127.0.0.1:{busy}:80"),
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(code(&o), 125, "{}", err(&o));
    assert!(err(&o).contains("address already in use"), "{}", err(&o));
    assert_eq!(d.inspect("{{.State.Running}}", "busy"), "false");
    assert_eq!(veths_on(&d).len(), veths_before);
    assert!(
        !nft_ports(&d).contains(&format!("dport {busy} ")),
        "{}",
        nft_ports(&d)
    );
    // A port another container publishes.
    let o = d.docker(&["run", "-d", "-p", &spec, IMAGE, "sleep", "60"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("port is already allocated"), "{}", err(&o));
    drop(held);

    // Stop removes the rules; rm -f leaves no veth, netns or rule behind.
    d.docker_ok(&["stop", "-t", "1", "udp"]);
    assert!(
        !nft_ports(&d).contains(&format!("dport {uport} ")),
        "{}",
        nft_ports(&d)
    );
    assert!(nft_ports(&d).contains(&format!("dport {fixed} ")));
    d.docker_ok(&["rm", "-f", "pub", "udp", "busy"]);
    let rest = d.docker_ok(&["ps", "-aq"]);
    for id in rest.lines() {
        d.docker_ok(&["rm", "-f", id]);
    }
    assert!(!nft_ports(&d).contains("dnat"), "{}", nft_ports(&d));
    assert!(veths_on(&d).is_empty(), "{:?}", veths_on(&d));
    assert_eq!(netns_files(&d), 0);
    assert!(
        TcpStream::connect(("127.0.0.1", fixed)).is_err(),
        "the port still answers"
    );
}

#[test]
fn a_container_reaches_its_own_published_port_through_the_gateway() {
    let d = Daemon::start();
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(0), "hp"]);
    for (name, net, gw_format) in [
        ("self0", "bridge", "{{.NetworkSettings.Gateway}}"),
        ("self1", "hp", "{{.NetworkSettings.Networks.hp.Gateway}}"),
    ] {
        let port = free_port();
        run_server(&d, name, &["--network", net, "-p", &format!("{port}:8080")]);
        let gw = d.inspect(gw_format, name);
        // The hairpin: out to the host's address on the bridge, DNAT'd back into the same
        // container through the same bridge port, the answer un-DNAT'd on its way back.
        let o = d.docker(&["exec", name, "sh", "-c", &client_cmd(&gw, port)]);
        assert!(
            out(&o).contains(&format!("hello-{name}")),
            "{name} on {net}: {}{}",
            out(&o),
            err(&o)
        );
    }
    d.docker_ok(&["rm", "-f", "self0", "self1"]);
    d.docker_ok(&["network", "rm", "hp"]);
    assert!(veths_on(&d).is_empty(), "{:?}", veths_on(&d));
    assert!(!nft_ports(&d).contains("dnat"), "{}", nft_ports(&d));
}

#[test]
fn a_host_without_nft_or_iptables_gets_an_error_naming_what_to_install() {
    // Debian keeps nft and iptables in /usr/sbin (and /sbin): a PATH without them has neither.
    let d = Daemon::start_with_env(&[], &[("PATH", "/usr/local/bin:/usr/bin:/bin")]);
    let o = d.docker(&["run", "--name", "nofw", "-p", "8080", IMAGE, "true"]);
    assert_eq!(code(&o), 125, "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("no firewall command found")
            && err(&o).contains("apt-get install nftables"),
        "{}",
        err(&o)
    );
    assert!(veths_on(&d).is_empty(), "{:?}", veths_on(&d));
    assert_eq!(netns_files(&d), 0);
    // What needs no firewall still works.
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", IMAGE, "echo", "ok"]),
        "ok"
    );
    // Asking for a backend that is not there stops the daemon at once, saying so.
    let dir = d.dir.join("refused");
    let o = Command::new(common::berth())
        .args(["daemon", "--firewall-backend", "iptables", "-H"])
        .arg(format!("unix://{}", dir.join("s.sock").display()))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--exec-root")
        .arg(dir.join("run"))
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .unwrap();
    assert_ne!(code(&o), 0);
    assert!(
        err(&o).contains("--firewall-backend iptables: iptables or iptables-restore not found"),
        "{}",
        err(&o)
    );
}

/// A directory whose `iptables` and `iptables-restore` are the legacy (x_tables) ones: with it
/// first on a PATH that lacks /usr/sbin, a daemon sees a host where only iptables exists.
/// Drop removes the daemon's chains (they outlive the daemon, as its nft table does).
struct IptablesOnly {
    dir: std::path::PathBuf,
    /// The daemon's `--nft-table`, the prefix of its chains.
    table: String,
}

impl IptablesOnly {
    fn new() -> IptablesOnly {
        let dir = std::path::PathBuf::from("/tmp").join(common::unique("be-ipt"));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["iptables", "iptables-restore", "iptables-save"] {
            std::os::unix::fs::symlink("/usr/sbin/xtables-legacy-multi", dir.join(name)).unwrap();
        }
        IptablesOnly {
            dir,
            table: String::new(),
        }
    }

    fn path(&self) -> String {
        format!("{}:/usr/local/bin:/usr/bin:/bin", self.dir.display())
    }

    /// `iptables-legacy -t TABLE -S`.
    fn rules(&self, table: &str) -> String {
        let o = Command::new("iptables-legacy")
            .args(["-w", "-t", table, "-S"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for IptablesOnly {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let t = &self.table;
        if t.is_empty() {
            return;
        }
        let jump = |head: &[&str], chain: &str| -> Vec<String> {
            head.iter()
                .map(|s| s.to_string())
                .chain([format!("{t}-{chain}")])
                .collect()
        };
        let local = ["-m", "addrtype", "--dst-type", "LOCAL", "-j"];
        let jumps: [(&str, &str, Vec<String>); 4] = [
            ("nat", "PREROUTING", jump(&local, "DNAT")),
            ("nat", "OUTPUT", jump(&local, "DNAT")),
            ("nat", "POSTROUTING", jump(&["-j"], "POST")),
            ("filter", "FORWARD", jump(&["-j"], "FWD")),
        ];
        for (table, chain, rule) in &jumps {
            for _ in 0..8 {
                let ok = Command::new("iptables-legacy")
                    .args(["-w", "-t", table, "-D", chain])
                    .args(rule)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    break;
                }
            }
        }
        for (table, chain) in [("nat", "DNAT"), ("nat", "POST"), ("filter", "FWD")] {
            for op in ["-F", "-X"] {
                let _ = Command::new("iptables-legacy")
                    .args(["-w", "-t", table, op, &format!("{t}-{chain}")])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

#[test]
fn where_only_iptables_exists_its_chains_carry_published_ports_and_isolation() {
    let mut legacy = IptablesOnly::new();
    let d = Daemon::start_with_env(&[], &[("PATH", &legacy.path())]);
    legacy.table = d.nft_table.clone();
    let port = free_port();
    run_server(&d, "ipt", &["-p", &format!("{port}:8080")]);
    let t = &d.nft_table;
    let nat = legacy.rules("nat");
    assert!(
        nat.contains(&format!("-A {t}-DNAT -p tcp -m tcp --dport {port} -j DNAT")),
        "{nat}"
    );
    assert!(
        nat.contains(&format!(
            "-A PREROUTING -m addrtype --dst-type LOCAL -j {t}-DNAT"
        )),
        "{nat}"
    );
    assert!(
        !Command::new("nft")
            .args(["list", "table", "ip", t])
            .status()
            .unwrap()
            .success(),
        "an nft table was made"
    );
    // From the host's loopback, from another container and from itself, through the host.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-ipt"));
    let gw = d.inspect("{{.NetworkSettings.Gateway}}", "ipt");
    let o = d.docker(&["run", "--rm", IMAGE, "sh", "-c", &client_cmd(&gw, port)]);
    assert!(out(&o).contains("hello-ipt"), "{}{}", out(&o), err(&o));
    let o = d.docker(&["exec", "ipt", "sh", "-c", &client_cmd(&gw, port)]);
    assert!(out(&o).contains("hello-ipt"), "{}{}", out(&o), err(&o));
    // Another network cannot reach it directly.
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(0), "other"]);
    let ip = d.inspect("{{.NetworkSettings.IPAddress}}", "ipt");
    let o = sh_on(&d, "other", &format!("nc -w 2 {ip} 8080 </dev/null"));
    assert_ne!(code(&o), 0, "the other network reached {ip}: {}", out(&o));
    assert!(legacy.rules("filter").contains(&format!("-A {t}-FWD -i ")));

    d.docker_ok(&["rm", "-f", "ipt"]);
    d.docker_ok(&["network", "rm", "other"]);
    let nat = legacy.rules("nat");
    assert!(!nat.contains("-j DNAT"), "{nat}");
    assert!(veths_on(&d).is_empty(), "{:?}", veths_on(&d));
}

#[test]
fn connectivity_and_dns_survive_a_daemon_kill_9() {
    let mut d = Daemon::start();
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(0), "keep"]);
    let port = free_port();
    run_server(
        &d,
        "srv",
        &[
            "--network",
            "keep",
            "--network-alias",
            "api",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "--restart",
            "always",
        ],
    );
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-srv"));
    let ip = d.inspect("{{.NetworkSettings.Networks.keep.IPAddress}}", "srv");
    d.kill_daemon();
    // Without a daemon, the kernel still forwards.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-srv"));
    d.spawn();
    // Names still resolve (the DNS server is back in the namespace), the address is kept and
    // not handed out again.
    let o = sh_on(
        &d,
        "keep",
        &format!("{}; ip -o -4 addr show eth0", client_cmd("api", 8080)),
    );
    assert!(out(&o).contains("hello-srv"), "{}{}", out(&o), err(&o));
    assert!(
        !out(&o).contains(&format!("inet {ip}/")),
        "{ip} handed out twice"
    );
    assert_eq!(
        d.inspect("{{.NetworkSettings.Networks.keep.IPAddress}}", "srv"),
        ip
    );
    // A restart by the policy keeps the namespace: same address, same port.
    let pid = d.inspect("{{.State.Pid}}", "srv");
    Command::new("kill").args(["-9", &pid]).status().unwrap();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only the restarted server can answer now.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-srv"));
    assert_eq!(
        d.inspect("{{.NetworkSettings.Networks.keep.IPAddress}}", "srv"),
        ip
    );

    d.docker_ok(&["rm", "-f", "srv"]);
    d.docker_ok(&["network", "rm", "keep"]);
    assert!(veths_on(&d).is_empty());
    assert!(!nft_ports(&d).contains("dnat"));
    assert_eq!(netns_files(&d), 0);
    assert_eq!(d.bridges(), vec![d.bridge.clone()]);
}

#[test]
fn network_bad_input_is_refused_with_dockerd_words() {
    let d = Daemon::start();
    let s = d.subnet(0);
    d.docker_ok(&["network", "create", "--subnet", &s, "taken"]);
    let bridges = d.bridges();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!(r#"{{"Name":"overlap","IPAM":{{"Config":[{{"Subnet":"{s}"}}]}}}}"#),
            409,
            "Pool overlaps",
        ),
        (
            r#"{"Name":"taken"}"#.into(),
            409,
            "network with name taken already exists",
        ),
        (
            r#"{"Name":"badcidr","IPAM":{"Config":[{"Subnet":"10.0.0.0/33"}]}}"#.into(),
            400,
            "invalid CIDR address: 10.0.0.0/33",
        ),
        (
            format!(
                r#"{{"Name":"badgw","IPAM":{{"Config":[{{"Subnet":"{}","Gateway":"192.0.2.1"}}]}}}}"#,
                d.subnet(1)
            ),
            400,
            "no matching subnet for gateway 192.0.2.1",
        ),
        (
            format!(
                r#"{{"Name":"badgw2","IPAM":{{"Config":[{{"Subnet":"{}","Gateway":"1.2.3"}}]}}}}"#,
                d.subnet(1)
            ),
            400,
            "invalid IPv4 address: 1.2.3",
        ),
        (
            r#"{"Name":"drv","Driver":"nosuchdriver"}"#.into(),
            404,
            "plugin \"nosuchdriver\" not found",
        ),
        // overlay is a swarm's driver: dockerd with no swarm hands it to the absent manager.
        (
            r#"{"Name":"drv","Driver":"overlay"}"#.into(),
            500,
            "This node is not a swarm manager.",
        ),
    ];
    for (body, status, msg) in &cases {
        let (st, v) = d.api_json("POST", "/networks/create", Some(body));
        assert_eq!(st, *status, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(msg), "{body}: {v}");
    }
    // Nothing half-made.
    assert_eq!(d.bridges(), bridges);
    let names = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names.lines().count(), 4, "{names}");

    // An unknown network, and a daemon's own that cannot go.
    let (st, v) = d.api_json("GET", "/networks/nope", None);
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["message"], "network nope not found");
    let (st, v) = d.api_json("DELETE", "/networks/nope", None);
    assert_eq!(st, 404, "{v}");
    let (st, v) = d.api_json("DELETE", "/networks/bridge", None);
    assert_eq!(st, 403, "{v}");

    let base = s.trim_end_matches(".0/24").to_owned();
    let create = |hc: &str, net: &str| {
        d.api_json("POST", "/containers/create", Some(&format!(
            r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{hc},"NetworkingConfig":{{"EndpointsConfig":{net}}}}}"#
        )))
    };
    let bad: Vec<(String, String, u16, &str)> = vec![
        (
            r#"{"NetworkMode":"nope"}"#.into(),
            "{}".into(),
            404,
            "network nope not found",
        ),
        (
            r#"{"NetworkMode":"taken"}"#.into(),
            r#"{"taken":{"IPAMConfig":{"IPv4Address":"10.0.0.300"}}}"#.into(),
            400,
            "invalid IPv4 address: 10.0.0.300",
        ),
        (
            r#"{"NetworkMode":"taken"}"#.into(),
            r#"{"taken":{"IPAMConfig":{"IPv4Address":"192.0.2.9"}}}"#.into(),
            400,
            "no configured subnet or ip-range contain the IP address 192.0.2.9",
        ),
        (
            r#"{"NetworkMode":"bridge"}"#.into(),
            format!(r#"{{"bridge":{{"IPAMConfig":{{"IPv4Address":"{base}.5"}}}}}}"#),
            400,
            "user specified IP address is supported on user defined networks only",
        ),
        (
            r#"{"NetworkMode":"bridge"}"#.into(),
            r#"{"bridge":{"Aliases":["x"]}}"#.into(),
            400,
            "network-scoped alias is supported only for containers in user defined networks",
        ),
        (
            r#"{"NetworkMode":"taken"}"#.into(),
            r#"{"taken":{"MacAddress":"zz:42"}}"#.into(),
            400,
            "invalid MAC address: zz:42",
        ),
        (
            r#"{"NetworkMode":"container:nobody"}"#.into(),
            "{}".into(),
            404,
            "No such container: nobody",
        ),
        (
            r#"{"PortBindings":{"80/tcp":[{"HostPort":"99999"}]}}"#.into(),
            "{}".into(),
            400,
            "invalid port specification",
        ),
        (
            r#"{"PortBindings":{"80/sctp":[{"HostPort":"80"}]}}"#.into(),
            "{}".into(),
            400,
            "invalid proto: sctp",
        ),
    ];
    for (hc, net, status, msg) in &bad {
        let (st, v) = create(hc, net);
        assert_eq!(st, *status, "{hc} {net}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(msg),
            "{hc} {net}: {v}"
        );
    }
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]),
        "",
        "a refused create left a container"
    );

    // A requested address held by another container.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ca",
        "--network",
        "taken",
        "--ip",
        &format!("{base}.9"),
        IMAGE,
        "sleep",
        "60",
    ]);
    d.docker_ok(&[
        "create",
        "--name",
        "cb",
        "--network",
        "taken",
        "--ip",
        &format!("{base}.9"),
        IMAGE,
        "sleep",
        "60",
    ]);
    let o = d.docker(&["start", "cb"]);
    assert_ne!(code(&o), 0);
    assert!(err(&o).contains("Address already in use"), "{}", err(&o));
    assert_eq!(veths_on(&d).len(), 1, "{:?}", veths_on(&d));
    // connect/disconnect of what does not exist.
    let (st, v) = d.api_json(
        "POST",
        "/networks/taken/connect",
        Some(r#"{"Container":"ghost"}"#),
    );
    assert_eq!(st, 404, "{v}");
    let (st, v) = d.api_json(
        "POST",
        "/networks/bridge/disconnect",
        Some(r#"{"Container":"cb"}"#),
    );
    assert_eq!(st, 403, "{v}");
    let (st, v) = d.api_json(
        "POST",
        "/networks/taken/connect",
        Some(r#"{"Container":"ca"}"#),
    );
    assert_eq!(st, 403, "{v}");
    d.docker_ok(&["rm", "-f", "ca", "cb"]);
    assert!(veths_on(&d).is_empty());
    d.docker_ok(&["network", "prune", "-f"]);
    assert_eq!(d.bridges(), vec![d.bridge.clone()]);
}

/// A daemon on a fresh root whose default bridge already exists with an address (left by an
/// earlier daemon on another root) adopts that subnet, as dockerd adopts docker0's, instead
/// of adding a second subnet to the same bridge.
#[test]
fn a_fresh_daemon_adopts_the_address_its_bridge_already_has() {
    let mut d = Daemon::unstarted(&[]);
    d.bip = false;
    let subnet = d.bridge_subnet();
    let gateway = subnet.replace(".0/24", ".1/24");
    for args in [
        vec!["link", "add", d.bridge.as_str(), "type", "bridge"],
        vec!["addr", "add", gateway.as_str(), "dev", d.bridge.as_str()],
    ] {
        let o = Command::new("ip").args(&args).output().unwrap();
        assert_eq!(code(&o), 0, "ip {args:?}: {}", err(&o));
    }
    d.spawn();
    d.import_busybox(IMAGE);
    assert_eq!(
        d.docker_ok(&[
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}"
        ]),
        format!("{subnet} {}", gateway.trim_end_matches("/24"))
    );
    let o = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &d.bridge])
        .output()
        .unwrap();
    let addrs: Vec<String> = out(&o)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .collect();
    assert_eq!(addrs, vec![gateway.clone()]);
    // A container on it gets an address of that subnet and reaches the gateway.
    let inside = d.docker_ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        &format!(
            "ip -4 -o addr show eth0 && ping -c1 -W2 {} >/dev/null && echo reached",
            gateway.trim_end_matches("/24")
        ),
    ]);
    let prefix = subnet.trim_end_matches("0/24");
    assert!(inside.contains(&format!("inet {prefix}")), "{inside}");
    assert!(inside.ends_with("reached"), "{inside}");
}
