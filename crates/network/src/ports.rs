//! Host ports of published container ports. The traffic is DNAT'd in the kernel (firewall.rs);
//! the daemon still binds each host port (without listening) for as long as the container
//! runs, as dockerd does: a port some program already holds is refused at start with a clear
//! error rather than silently shadowed, nothing else can take it meanwhile, and `-p 80` gets a
//! free ephemeral port from the kernel.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::error::{Error, Result};

/// A held host port.
#[derive(Debug)]
pub struct Reservation {
    pub proto: String,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    _socket: OwnedFd,
}

/// Binds `host_ip:host_port/proto` (port 0: a free ephemeral one).
pub fn reserve(proto: &str, host_ip: Ipv4Addr, host_port: u16) -> Result<Reservation> {
    let kind = match proto {
        "udp" => SockType::Datagram,
        _ => SockType::Stream,
    };
    let addr = format!("{host_ip}:{host_port}");
    let fail = |e: nix::errno::Errno| Error::PortBind {
        proto: proto.to_owned(),
        addr: addr.clone(),
        source: std::io::Error::from(e),
    };
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None).map_err(fail)?;
    let sa = SockaddrIn::from(SocketAddrV4::new(host_ip, host_port));
    match bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &sa) {
        Ok(()) => {}
        Err(nix::errno::Errno::EADDRINUSE) => {
            return Err(Error::PortInUse {
                proto: proto.to_owned(),
                addr,
            })
        }
        Err(e) => return Err(fail(e)),
    }
    let bound: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(fail)?;
    Ok(Reservation {
        proto: proto.to_owned(),
        host_ip,
        host_port: bound.port(),
        _socket: fd,
    })
}
