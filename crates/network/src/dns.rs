//! The embedded DNS server that user-defined networks give their containers, as Docker's
//! 127.0.0.11: the names and aliases of containers on the same networks are answered from the
//! daemon's state (A records, and AAAA on IPv6 networks), every other question is forwarded to
//! the host's resolvers.
//!
//! No packet-filter rule is needed: the daemon binds UDP and TCP sockets on 127.0.0.11:53
//! inside the container's namespace (a thread that `setns`'s, binds and returns), and serves
//! them from its own runtime. The upstream sockets are opened in the daemon's namespace, so a
//! host resolver on 127.0.0.53 is reachable too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Docker's address of the embedded server.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
const TTL: u32 = 600;
/// The bytes of a record in a reply before its address (a pointer to the question's name,
/// type, class, TTL, length).
const RECORD_HEAD_LEN: usize = 12;
/// What a UDP reply may hold when the query offers no more (RFC 1035 4.2.1).
const UDP_DEFAULT_LIMIT: usize = 512;
/// The most an EDNS0 offer is taken at (the usual default of resolvers and of Docker's server).
const UDP_EDNS_LIMIT: usize = 4096;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Answers a name (lower case, no trailing dot): `Some(addresses)` for a container's name or
/// alias (of both families, possibly none of the asked type), `None` for a name to forward.
pub type Lookup = Arc<dyn Fn(&str) -> Option<Vec<IpAddr>> + Send + Sync>;

/// The sockets of one container's server, bound inside its namespace.
#[derive(Debug)]
pub struct Sockets {
    pub udp: std::net::UdpSocket,
    pub tcp: std::net::TcpListener,
}

/// Binds 127.0.0.11:53 (UDP and TCP) inside the namespace at `netns`.
pub fn bind_in(netns: &Path) -> Result<Sockets> {
    crate::netns::run_in(netns, || {
        let addr = SocketAddr::V4(SocketAddrV4::new(ADDRESS, 53));
        let bind_err = |e| Error::PortBind {
            proto: "dns".into(),
            addr: addr.to_string(),
            source: e,
        };
        let udp = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
        let tcp = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        udp.set_nonblocking(true).map_err(bind_err)?;
        tcp.set_nonblocking(true).map_err(bind_err)?;
        Ok(Sockets { udp, tcp })
    })
}

/// A running server; dropping it stops it (and closes its sockets).
#[derive(Debug)]
pub struct Server {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serves `sockets` on the current tokio runtime.
pub fn serve(sockets: Sockets, lookup: Lookup, upstream: Vec<SocketAddr>) -> Result<Server> {
    let udp = Arc::new(
        tokio::net::UdpSocket::from_std(sockets.udp)
            .map_err(|e| Error::Thread(format!("serve DNS: {e}")))?,
    );
    let tcp = tokio::net::TcpListener::from_std(sockets.tcp)
        .map_err(|e| Error::Thread(format!("serve DNS: {e}")))?;
    let upstream = Arc::new(upstream);
    let (l1, u1) = (lookup.clone(), upstream.clone());
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            let query = buf[..n].to_vec();
            let (udp, lookup, upstream) = (udp.clone(), l1.clone(), u1.clone());
            tokio::spawn(async move {
                if let Some(reply) = answer(&query, &lookup, &upstream, false).await {
                    let _ = udp.send_to(&reply, peer).await;
                }
            });
        }
    });
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = tcp.accept().await else {
                continue;
            };
            let (lookup, upstream) = (lookup.clone(), upstream.clone());
            tokio::spawn(async move {
                // One connection may carry several queries, each with a 2-byte length.
                loop {
                    let mut len = [0u8; 2];
                    let read =
                        tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut len))
                            .await;
                    if !matches!(read, Ok(Ok(_))) {
                        return;
                    }
                    let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if conn.read_exact(&mut query).await.is_err() {
                        return;
                    }
                    let Some(reply) = answer(&query, &lookup, &upstream, true).await else {
                        return;
                    };
                    let Ok(n) = u16::try_from(reply.len()) else {
                        return;
                    };
                    let mut out = n.to_be_bytes().to_vec();
                    out.extend_from_slice(&reply);
                    if conn.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(Server {
        tasks: vec![udp_task, tcp_task],
    })
}

/// The reply to one query: from `lookup`, else from the first upstream that answers; a
/// SERVFAIL when none does.
///
/// Over UDP a reply that would not fit the asker's limit keeps the records that fit and has
/// TC set, so the asker asks again over TCP, where it gets them all; a forwarded question goes
/// upstream over the protocol it came in on, so an upstream's TC reaches the asker the same
/// way (Docker's embedded server does both).
async fn answer(
    query: &[u8],
    lookup: &Lookup,
    upstream: &[SocketAddr],
    tcp: bool,
) -> Option<Vec<u8>> {
    let q = Question::parse(query)?;
    if q.class == CLASS_IN && (q.qtype == TYPE_A || q.qtype == TYPE_AAAA) {
        if let Some(ips) = lookup(&q.name) {
            let ips: Vec<IpAddr> = ips
                .into_iter()
                .filter(|ip| ip.is_ipv4() == (q.qtype == TYPE_A))
                .collect();
            let limit = if tcp {
                usize::from(u16::MAX)
            } else {
                udp_limit(query, &q)
            };
            let record_len = RECORD_HEAD_LEN + if q.qtype == TYPE_A { 4 } else { 16 };
            let fit = limit.saturating_sub(q.end) / record_len;
            if ips.len() > fit {
                let mut r = reply(query, &q, &ips[..fit], 0);
                r[2] |= 0x02;
                return Some(r);
            }
            return Some(reply(query, &q, &ips, 0));
        }
    }
    for up in upstream {
        let got = if tcp {
            forward_tcp(query, *up).await
        } else {
            forward_udp(query, *up).await
        };
        if let Some(r) = got {
            return Some(r);
        }
    }
    Some(reply(query, &q, &[], 2))
}

async fn forward_udp(query: &[u8], up: SocketAddr) -> Option<Vec<u8>> {
    let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok()?;
    // Connected: an upstream that is not there answers ICMP, which ends the wait at once.
    sock.connect(up).await.ok()?;
    sock.send(query).await.ok()?;
    // An upstream may answer an EDNS0 query with more than 4 KiB.
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    let n = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    // The reply must be to this query.
    (buf.len() >= 2 && buf[..2] == query[..2]).then_some(buf)
}

async fn forward_tcp(query: &[u8], up: SocketAddr) -> Option<Vec<u8>> {
    let fut = async {
        let mut conn = tokio::net::TcpStream::connect(up).await.ok()?;
        let len = u16::try_from(query.len()).ok()?;
        conn.write_all(&len.to_be_bytes()).await.ok()?;
        conn.write_all(query).await.ok()?;
        let mut l = [0u8; 2];
        conn.read_exact(&mut l).await.ok()?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(l))];
        conn.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, fut).await.ok()?
}

/// The first question of a query.
#[derive(Debug, PartialEq, Eq)]
struct Question {
    /// Lower case, without the trailing dot.
    name: String,
    qtype: u16,
    class: u16,
    /// Where the question ends in the message.
    end: usize,
}

impl Question {
    fn parse(msg: &[u8]) -> Option<Question> {
        if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) == 0 {
            return None;
        }
        let mut i = 12;
        let mut labels = Vec::new();
        loop {
            let len = usize::from(*msg.get(i)?);
            i += 1;
            if len == 0 {
                break;
            }
            // Compression pointers cannot appear in a query's first name.
            if len > 63 {
                return None;
            }
            let label = msg.get(i..i + len)?;
            labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
            i += len;
        }
        let qtype = u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]);
        let class = u16::from_be_bytes([*msg.get(i + 2)?, *msg.get(i + 3)?]);
        Some(Question {
            name: labels.join("."),
            qtype,
            class,
            end: i + 4,
        })
    }
}

/// The largest UDP reply the asker takes: 512 bytes, or what the EDNS0 OPT record that
/// follows its question offers (up to 4096).
fn udp_limit(query: &[u8], q: &Question) -> usize {
    let count = |i: usize| u16::from_be_bytes([query[i], query[i + 1]]);
    // Only a plain query (no answer or authority records) is looked into.
    if count(6) != 0 || count(8) != 0 || count(10) == 0 {
        return UDP_DEFAULT_LIMIT;
    }
    let opt = query.get(q.end..q.end + 5);
    match opt {
        Some([0, t0, t1, s0, s1]) if u16::from_be_bytes([*t0, *t1]) == TYPE_OPT => {
            usize::from(u16::from_be_bytes([*s0, *s1])).clamp(UDP_DEFAULT_LIMIT, UDP_EDNS_LIMIT)
        }
        _ => UDP_DEFAULT_LIMIT,
    }
}

/// A reply with the query's id and question and one A or AAAA record per address.
fn reply(query: &[u8], q: &Question, ips: &[IpAddr], rcode: u8) -> Vec<u8> {
    let mut r = Vec::with_capacity(q.end + ips.len() * (RECORD_HEAD_LEN + 16));
    r.extend_from_slice(&query[..2]);
    // QR, the query's opcode and RD, AA (we own these names), RA.
    let flags_hi = 0x80 | (query[2] & 0x79) | if rcode == 0 { 0x04 } else { 0 };
    r.push(flags_hi);
    r.push(0x80 | (rcode & 0x0f));
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&(ips.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&query[12..q.end]);
    for ip in ips {
        let (qtype, data) = match ip {
            IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
            IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
        };
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&CLASS_IN.to_be_bytes());
        r.extend_from_slice(&TTL.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(&data);
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m
    }

    #[test]
    fn answers_a_container_name() {
        let q = query("Web.", TYPE_A);
        let parsed = Question::parse(&q).unwrap();
        assert_eq!(parsed.name, "web");
        let r = reply(&q, &parsed, &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))], 0);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "a response");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 2]);
    }

    #[tokio::test]
    async fn unknown_names_fail_without_upstream() {
        let lookup: Lookup =
            Arc::new(|n: &str| (n == "db").then(|| vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3))]));
        let r = answer(&query("db", TYPE_AAAA), &lookup, &[], false)
            .await
            .unwrap();
        assert_eq!((r[3] & 0x0f, r[7]), (0, 0), "NOERROR, no AAAA record");
        let r = answer(&query("example.test", TYPE_A), &lookup, &[], false)
            .await
            .unwrap();
        assert_eq!(r[3] & 0x0f, 2, "SERVFAIL");
        assert!(Question::parse(&[0u8; 5]).is_none());
    }

    #[tokio::test]
    async fn long_udp_answers_are_truncated_with_tc_and_whole_over_tcp() {
        let many: Vec<IpAddr> = (1..=60)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)))
            .collect();
        let all = many.clone();
        let lookup: Lookup = Arc::new(move |n: &str| (n == "many").then(|| all.clone()));
        let q = query("many", TYPE_A);
        let udp = answer(&q, &lookup, &[], false).await.unwrap();
        assert!(udp.len() <= UDP_DEFAULT_LIMIT, "{}", udp.len());
        assert_eq!(udp[2] & 0x02, 0x02, "TC set");
        let n = usize::from(u16::from_be_bytes([udp[6], udp[7]]));
        assert!(n > 0 && n < 60, "{n} records fit");
        let tcp = answer(&q, &lookup, &[], true).await.unwrap();
        assert_eq!(tcp[2] & 0x02, 0, "TC clear over TCP");
        assert_eq!(u16::from_be_bytes([tcp[6], tcp[7]]), 60);

        // An EDNS0 offer of 4096 bytes takes them all over UDP.
        let mut edns = q.clone();
        edns[11] = 1;
        edns.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
        let big = answer(&edns, &lookup, &[], false).await.unwrap();
        assert_eq!(big[2] & 0x02, 0);
        assert_eq!(u16::from_be_bytes([big[6], big[7]]), 60);
    }

    #[tokio::test]
    async fn aaaa_questions_get_the_ipv6_addresses() {
        let lookup: Lookup = Arc::new(|n: &str| {
            (n == "web").then(|| {
                vec![
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                    "fd42::2".parse().unwrap(),
                ]
            })
        });
        let r = answer(&query("web", TYPE_AAAA), &lookup, &[], false)
            .await
            .unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one AAAA record");
        let ip: [u8; 16] = r[r.len() - 16..].try_into().unwrap();
        assert_eq!(std::net::Ipv6Addr::from(ip).to_string(), "fd42::2");
        let a = answer(&query("web", TYPE_A), &lookup, &[], false)
            .await
            .unwrap();
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1, "one A record");
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 2]);
    }
}
