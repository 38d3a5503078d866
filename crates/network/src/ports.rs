//! Host ports of published container ports. The traffic is DNAT'd in the kernel (firewall.rs);
//! the daemon still binds each host port (without listening) for as long as the container
//! runs, as dockerd does: a port some program already holds is refused at start with a clear
//! error rather than silently shadowed, nothing else can take it meanwhile, and `-p 80` gets a
//! free ephemeral port from the kernel.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    bind, getsockname, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
    SockaddrStorage,
};

use crate::error::{Error, Result};

/// A held host port.
#[derive(Debug)]
pub struct Reservation {
    pub proto: String,
    pub host_ip: IpAddr,
    pub host_port: u16,
    _socket: OwnedFd,
}

/// Binds `host_ip:host_port/proto` (port 0: a free ephemeral one). An IPv6 address is bound
/// IPv6-only, so `[::]:80` and `0.0.0.0:80` are two reservations, as dockerd makes them.
pub fn reserve(proto: &str, host_ip: IpAddr, host_port: u16) -> Result<Reservation> {
    let kind = match proto {
        "udp" => SockType::Datagram,
        _ => SockType::Stream,
    };
    let sa = SocketAddr::new(host_ip, host_port);
    let addr = sa.to_string();
    let fail = |e: nix::errno::Errno| Error::PortBind {
        proto: proto.to_owned(),
        addr: addr.clone(),
        source: std::io::Error::from(e),
    };
    let family = if host_ip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(family, kind, SockFlag::SOCK_CLOEXEC, None).map_err(fail)?;
    if host_ip.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(fail)?;
    }
    match bind(fd.as_raw_fd(), &SockaddrStorage::from(sa)) {
        Ok(()) => {}
        Err(nix::errno::Errno::EADDRINUSE) => {
            return Err(Error::PortInUse {
                proto: proto.to_owned(),
                family: if host_ip.is_ipv6() { 6 } else { 4 },
                addr,
            })
        }
        Err(e) => return Err(fail(e)),
    }
    let bound: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(fail)?;
    let port = bound
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()))
        .unwrap_or(host_port);
    Ok(Reservation {
        proto: proto.to_owned(),
        host_ip,
        host_port: port,
        _socket: fd,
    })
}
