//! The embedded DNS server (127.0.0.11) against a real upstream: a small authoritative server
//! this test runs on a loopback address of its own, named to the daemon with `--dns`. From
//! inside containers: a forwarded name resolves to what the upstream says, a name it does not
//! know fails with NXDOMAIN, a long answer comes truncated over UDP and whole over TCP, and a
//! running container on the default bridge that is connected to a user-defined network gets
//! the embedded server at once. An nftables counter scoped to the daemon's cgroup proves the
//! daemon sends nothing anywhere but to that upstream address.
//!
//! All traffic stays on the host's loopback and inside the containers these tests make.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::engine::{code, err, out, Daemon, IMAGE};

/// The name the upstream answers with one address.
const FWD_NAME: &str = "web.upstream.test";
const FWD_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// The name the upstream answers with more addresses than a 512-byte UDP reply holds.
const BIG_NAME: &str = "big.upstream.test";
const BIG_COUNT: u8 = 40;
/// A name the upstream does not have (NXDOMAIN).
const MISSING_NAME: &str = "nothere.upstream.test";

/// One question the upstream was asked: the name and whether it came over TCP.
type Asked = Arc<Mutex<Vec<(String, bool)>>>;

/// A small authoritative DNS server on `127.53.X.Y:53` (UDP and TCP), stopped on drop.
struct Upstream {
    addr: Ipv4Addr,
    asked: Asked,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Upstream {
    /// Binds the first free `127.53.X.Y` from this process's id on: an address no other test
    /// run and no resolver of the host uses.
    fn start() -> Upstream {
        let pid = std::process::id();
        for i in 0..200u32 {
            let n = pid.wrapping_add(i * 7919) % (250 * 250);
            let addr = Ipv4Addr::new(127, 53, (n / 250) as u8 + 1, (n % 250) as u8 + 1);
            let sa = SocketAddrV4::new(addr, 53);
            let udp = match UdpSocket::bind(sa) {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                Err(e) => panic!("bind {sa}/udp: {e}"),
            };
            let tcp = match TcpListener::bind(sa) {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                Err(e) => panic!("bind {sa}/tcp: {e}"),
            };
            return Upstream::serve(addr, udp, tcp);
        }
        panic!("no free 127.53.x.y:53 for the test's DNS server");
    }

    fn serve(addr: Ipv4Addr, udp: UdpSocket, tcp: TcpListener) -> Upstream {
        let asked: Asked = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (a, s) = (asked.clone(), stop.clone());
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(r) = respond(&buf[..n], false, &a) {
                    let _ = udp.send_to(&r, peer);
                }
            }
        });
        let (a, s) = (asked.clone(), stop.clone());
        let tcp_thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match tcp.accept() {
                    Ok((conn, _)) => serve_tcp(conn, &a),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Upstream {
            addr,
            asked,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    fn asked(&self) -> Vec<(String, bool)> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Queries on one TCP connection, each with its 2-byte length, until the peer is done.
fn serve_tcp(mut conn: TcpStream, asked: &Asked) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    loop {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if conn.read_exact(&mut q).is_err() {
            return;
        }
        let Some(r) = respond(&q, true, asked) else {
            return;
        };
        let mut framed = (r.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&r);
        if conn.write_all(&framed).is_err() {
            return;
        }
    }
}

/// The upstream's answer: FWD_NAME has one A record, BIG_NAME has BIG_COUNT (over UDP only
/// the header with TC: the asker must come back over TCP), any other name is NXDOMAIN.
fn respond(query: &[u8], tcp: bool, asked: &Asked) -> Option<Vec<u8>> {
    let (name, qtype, end) = question(query)?;
    asked.lock().unwrap().push((name.clone(), tcp));
    let a = qtype == 1;
    let (rcode, ips): (u8, Vec<Ipv4Addr>) = match name.as_str() {
        FWD_NAME => (0, if a { vec![FWD_ADDR] } else { vec![] }),
        BIG_NAME if a => (
            0,
            (1..=BIG_COUNT)
                .map(|i| Ipv4Addr::new(198, 51, 100, i))
                .collect(),
        ),
        BIG_NAME => (0, vec![]),
        _ => (3, vec![]),
    };
    let truncated = !tcp && end + ips.len() * 16 > 512;
    let ips = if truncated { Vec::new() } else { ips };
    let mut r = query[..2].to_vec();
    // QR, AA, RD as asked, TC when truncated; then the rcode.
    r.push(0x84 | (query[2] & 0x01) | if truncated { 0x02 } else { 0 });
    r.push(rcode);
    for count in [1, ips.len() as u16, 0, 0] {
        r.extend_from_slice(&count.to_be_bytes());
    }
    r.extend_from_slice(&query[12..end]);
    for ip in ips {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&ip.octets());
    }
    Some(r)
}

/// The first question of a message: name (lower case), type, and where it ends.
fn question(msg: &[u8]) -> Option<(String, u16, usize)> {
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = usize::from(*msg.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

/// An A query for `name` (RD set, no EDNS0: a 512-byte UDP limit).
fn a_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// (TC set, number of answers) of a reply.
fn tc_and_answers(r: &[u8]) -> (bool, u16) {
    (r[2] & 0x02 != 0, u16::from_be_bytes([r[6], r[7]]))
}

/// Every packet that the daemon's processes send, counted: to the upstream, and (dropped)
/// to anywhere else. The daemon is moved into a cgroup v2 group of its own, which an nftables
/// table of the test's own matches in the output hook. Drop moves the group's processes back
/// and removes the group and the table.
struct Egress {
    cgroup: PathBuf,
    table: String,
}

impl Egress {
    fn watch(d: &Daemon, upstream: Ipv4Addr) -> Egress {
        // Hybrid hosts have cgroup v2 at /sys/fs/cgroup/unified, pure v2 ones at the root;
        // nft names the group relative to /sys/fs/cgroup.
        let (v2, rel) = if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
            (PathBuf::from("/sys/fs/cgroup/unified"), "unified/")
        } else {
            (PathBuf::from("/sys/fs/cgroup"), "")
        };
        let name = common::unique("berth-dnsw");
        let cgroup = v2.join(&name);
        std::fs::create_dir(&cgroup).unwrap();
        let table = name.replace('-', "_");
        let e = Egress {
            cgroup: cgroup.clone(),
            table: table.clone(),
        };
        std::fs::write(
            cgroup.join("cgroup.procs"),
            d.daemon_pid().unwrap().to_string(),
        )
        .unwrap();
        let rules = format!(
            "table ip {table} {{\n chain out {{\n  type filter hook output priority -300; policy accept;\n  socket cgroupv2 level 1 \"{rel}{name}\" ip daddr {upstream} counter\n  socket cgroupv2 level 1 \"{rel}{name}\" ip daddr != {upstream} counter drop\n }}\n}}\n"
        );
        let mut nft = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        nft.stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft: {rules}");
        e
    }

    /// (packets to the upstream, packets anywhere else).
    fn counts(&self) -> (u64, u64) {
        let o = Command::new("nft")
            .args(["list", "chain", "ip", &self.table, "out"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let packets: Vec<u64> = text
            .lines()
            .filter_map(|l| l.split("counter packets ").nth(1))
            .filter_map(|r| r.split_whitespace().next()?.parse().ok())
            .collect();
        assert_eq!(packets.len(), 2, "{text}");
        (packets[0], packets[1])
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        let root = self.cgroup.parent().unwrap().join("cgroup.procs");
        for _ in 0..50 {
            let procs =
                std::fs::read_to_string(self.cgroup.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines() {
                let _ = std::fs::write(&root, pid);
            }
            if std::fs::remove_dir(&self.cgroup).is_ok() || !self.cgroup.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs `f` on a thread inside the network namespace of the running container `name`.
fn in_netns<T: Send + 'static>(
    d: &Daemon,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let pid = d.inspect("{{.State.Pid}}", name);
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// One query to 127.0.0.11 over UDP; the reply.
fn ask_udp(name: &'static str) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(&a_query(0x5151, name), "127.0.0.11:53").unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// One query to 127.0.0.11 over TCP; the reply.
fn ask_tcp(name: &'static str) -> Vec<u8> {
    let mut s = TcpStream::connect("127.0.0.11:53").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = a_query(0x7272, name);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut r).unwrap();
    r
}

/// `nslookup NAME` in the running container `ctr`: its exit code and everything it printed.
fn nslookup(d: &Daemon, ctr: &str, name: &str) -> (i32, String) {
    let o = d.docker(&["exec", ctr, "nslookup", name]);
    (code(&o), format!("{}{}", out(&o), err(&o)))
}

/// Asserts that `nslookup NAME` in `ctr` answers `addr`.
fn assert_resolves(d: &Daemon, ctr: &str, name: &str, addr: &str) {
    let (rc, text) = nslookup(d, ctr, name);
    assert!(
        rc == 0 && text.contains(&format!("Address: {addr}")),
        "{name} in {ctr}: {text}"
    );
}

#[test]
fn embedded_dns_forwards_to_the_daemons_upstream_only() {
    let up = Upstream::start();
    let d = Daemon::start_with(&["--dns", &up.addr.to_string()]);
    let egress = Egress::watch(&d, up.addr);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(0), "fwd"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "asker",
        "--network",
        "fwd",
        IMAGE,
        "sleep",
        "120",
    ]);
    let resolv = d.docker_ok(&["exec", "asker", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    assert!(
        resolv.contains(&format!("ExtServers: [host({})]", up.addr)),
        "{resolv}"
    );

    // A name no container has goes upstream; the upstream's answer comes back.
    let (_, text) = nslookup(&d, "asker", FWD_NAME);
    assert!(text.contains("Server:\t\t127.0.0.11"), "{text}");
    assert_resolves(&d, "asker", FWD_NAME, &FWD_ADDR.to_string());
    // A name the upstream does not have fails as the upstream says.
    let (rc, text) = nslookup(&d, "asker", MISSING_NAME);
    assert!(rc != 0 && text.contains("NXDOMAIN"), "{text}");

    // A long answer: truncated over UDP (TC, as the upstream sent it), whole over TCP, which
    // the embedded server forwards over TCP.
    let (udp, tcp) = in_netns(&d, "asker", || (ask_udp(BIG_NAME), ask_tcp(BIG_NAME)));
    assert_eq!(tc_and_answers(&udp), (true, 0), "{udp:?}");
    assert_eq!(tc_and_answers(&tcp), (false, u16::from(BIG_COUNT)));
    assert_eq!(&tcp[tcp.len() - 4..], &[198, 51, 100, BIG_COUNT]);

    let asked = up.asked();
    for (name, over_tcp) in [
        (FWD_NAME, false),
        (MISSING_NAME, false),
        (BIG_NAME, false),
        (BIG_NAME, true),
    ] {
        assert!(
            asked.iter().any(|(n, t)| n == name && *t == over_tcp),
            "{name} (tcp {over_tcp}) never reached the upstream: {asked:?}"
        );
    }
    // The containers' own names stay inside: never asked upstream.
    let asker_ip = d.inspect("{{.NetworkSettings.Networks.fwd.IPAddress}}", "asker");
    assert_resolves(&d, "asker", "asker", &asker_ip);
    assert!(
        !up.asked().iter().any(|(n, _)| n == "asker"),
        "{:?}",
        up.asked()
    );

    let (to_upstream, elsewhere) = egress.counts();
    assert!(to_upstream >= 4, "{to_upstream} packets to the upstream");
    assert_eq!(
        elsewhere, 0,
        "the daemon sent {elsewhere} packets elsewhere"
    );
    d.docker_ok(&["rm", "-f", "asker"]);
    d.docker_ok(&["network", "rm", "fwd"]);
}

#[test]
fn connect_gives_a_running_bridge_container_the_embedded_dns() {
    let up = Upstream::start();
    let d = Daemon::start_with(&["--dns", &up.addr.to_string()]);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(0), "late"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "late",
        IMAGE,
        "sleep",
        "120",
    ]);
    let peer_ip = d.inspect("{{.NetworkSettings.Networks.late.IPAddress}}", "peer");
    d.docker_ok(&["run", "-d", "--name", "solo", IMAGE, "sleep", "120"]);
    let before = d.docker_ok(&["exec", "solo", "cat", "/etc/resolv.conf"]);
    assert!(
        before.contains(&format!("nameserver {}", up.addr)),
        "{before}"
    );
    assert!(!before.contains("127.0.0.11"), "{before}");

    d.docker_ok(&["network", "connect", "--alias", "latecomer", "late", "solo"]);
    let ip = d.inspect("{{.NetworkSettings.Networks.late.IPAddress}}", "solo");
    let files = d.docker_ok(&["exec", "solo", "cat", "/etc/resolv.conf", "/etc/hosts"]);
    assert!(files.contains("nameserver 127.0.0.11"), "{files}");
    assert!(
        !files.contains(&format!("nameserver {}", up.addr)),
        "{files}"
    );
    assert!(files.contains("options ndots:0"), "{files}");
    assert!(files.contains(&format!("{ip}\t")), "{files}");
    // Its new network's names, and the rest forwarded, through the server in its namespace.
    assert_resolves(&d, "solo", "peer", &peer_ip);
    assert_resolves(&d, "solo", FWD_NAME, &FWD_ADDR.to_string());
    // And the peer finds it by its alias.
    assert_resolves(&d, "peer", "latecomer", &ip);

    // Disconnect takes its address out of /etc/hosts.
    d.docker_ok(&["network", "disconnect", "late", "solo"]);
    let hosts = d.docker_ok(&["exec", "solo", "cat", "/etc/hosts"]);
    assert!(!hosts.contains(&format!("{ip}\t")), "{hosts}");
    d.docker_ok(&["rm", "-f", "solo", "peer"]);
    d.docker_ok(&["network", "rm", "late"]);
}
