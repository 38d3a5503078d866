//! `linux.netDevices`: host network interfaces moved into the container's network namespace,
//! renamed there when the spec says so. One RTM_NEWLINK request per device on a route netlink
//! socket (the kernel renames while it moves); no netlink library is needed for that.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNetDevice;

use crate::error::{Error, Result};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_NET_NS_FD: u16 = 28;

/// Where the devices go: the network namespace of a process, or one held by a descriptor.
#[derive(Clone, Copy)]
enum Target {
    Pid(u32),
    Fd(u32),
}

/// Moves the devices into the network namespace of process `pid` (a new one it was cloned with).
pub(crate) fn move_to_process(devices: &HashMap<String, LinuxNetDevice>, pid: i32) -> Result<()> {
    let pid = u32::try_from(pid).map_err(|_| Error::Init(format!("bad pid {pid}")))?;
    move_all(
        devices,
        Target::Pid(pid),
        &format!("the init's (pid {pid})"),
    )
}

/// Moves the devices into the network namespace at `path` (one the spec joins).
pub(crate) fn move_to_path(devices: &HashMap<String, LinuxNetDevice>, path: &Path) -> Result<()> {
    let ns = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open network namespace {}", path.display()), e))?;
    let fd = u32::try_from(ns.as_raw_fd()).unwrap_or(0);
    move_all(
        devices,
        Target::Fd(fd),
        &format!("the one at {}", path.display()),
    )
}

fn move_all(
    devices: &HashMap<String, LinuxNetDevice>,
    target: Target,
    where_to: &str,
) -> Result<()> {
    let mut names: Vec<&String> = devices.keys().collect();
    names.sort();
    let sock = route_socket()?;
    for (seq, host) in names.into_iter().enumerate() {
        let inside = devices[host].name().as_deref().unwrap_or(host);
        let what = || {
            format!("move network device {host} into the container's network namespace ({where_to}) as {inside}")
        };
        let c = CString::new(host.as_str())
            .map_err(|_| Error::InvalidConfig(format!("netDevices name {host:?}")))?;
        // SAFETY: a NUL-terminated name; if_nametoindex reads it only.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(Error::sys(
                format!("{}: the host has no device {host}", what()),
                Errno::last(),
            ));
        }
        let request = new_link(index, target, inside, u32::try_from(seq).unwrap_or(0) + 1);
        talk(&sock, &request).map_err(|e| Error::sys(what(), e))?;
    }
    Ok(())
}

fn route_socket() -> Result<OwnedFd> {
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(Error::sys("open a route netlink socket", Errno::last()));
    }
    // SAFETY: a new descriptor, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// RTM_NEWLINK on interface `index`: move it to `target`, named `name` there.
fn new_link(index: u32, target: Target, name: &str, seq: u32) -> Vec<u8> {
    let mut msg = Vec::with_capacity(64);
    // struct nlmsghdr; the length is filled in at the end.
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifinfomsg: family, pad, type, index, flags, change.
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&i32::try_from(index).unwrap_or(0).to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    let (kind, value) = match target {
        Target::Pid(pid) => (IFLA_NET_NS_PID, pid),
        Target::Fd(fd) => (IFLA_NET_NS_FD, fd),
    };
    attribute(&mut msg, kind, &value.to_ne_bytes());
    let mut name = name.as_bytes().to_vec();
    name.push(0);
    attribute(&mut msg, IFLA_IFNAME, &name);
    let len = u32::try_from(msg.len()).unwrap_or(0);
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    msg
}

/// Appends a netlink attribute, padded to 4 bytes.
fn attribute(msg: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(payload);
    while msg.len() % 4 != 0 {
        msg.push(0);
    }
}

/// Sends a request and reads the kernel's acknowledgement (an nlmsgerr, 0 for success).
fn talk(sock: &OwnedFd, request: &[u8]) -> std::result::Result<(), Errno> {
    // SAFETY: a zeroed sockaddr_nl addresses the kernel (pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: the buffer and address are valid for the call.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(Errno::last());
    }
    let mut buf = [0u8; 1024];
    let n = nix::unistd::read(sock, &mut buf)?;
    // nlmsghdr (16 bytes), then for NLMSG_ERROR an i32 error code.
    let kind = buf.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    if n >= 20 && kind == Some(NLMSG_ERROR) {
        let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        return if code == 0 {
            Ok(())
        } else {
            Err(Errno::from_raw(-code))
        };
    }
    Err(Errno::EPROTO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_kernels_layout() {
        let msg = new_link(7, Target::Pid(42), "eth1", 1);
        assert_eq!(msg.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize,
            msg.len()
        );
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), RTM_NEWLINK);
        // ifinfomsg's index right after the 16-byte header and 4 bytes of family/pad/type.
        assert_eq!(i32::from_ne_bytes([msg[20], msg[21], msg[22], msg[23]]), 7);
        // The first attribute: IFLA_NET_NS_PID = 42.
        assert_eq!(u16::from_ne_bytes([msg[34], msg[35]]), IFLA_NET_NS_PID);
        assert_eq!(u32::from_ne_bytes([msg[36], msg[37], msg[38], msg[39]]), 42);
        assert_eq!(&msg[44..49], b"eth1\0");
    }
}
