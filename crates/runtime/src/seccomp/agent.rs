//! Handing a seccomp notify descriptor to the agent at `linux.seccomp.listenerPath`, as the
//! runtime-spec describes and runc does: one message on a new connection to the agent's Unix
//! stream socket, whose bytes are the container process state (JSON) and whose SCM_RIGHTS
//! carry the descriptor named in its `fds` list.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::SeccompError;
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

/// Sends `fd` to the agent listening on `path`, with `state` (the container's state document,
/// JSON) and the agent's `metadata`, for the process `pid`.
pub(crate) fn send(
    path: &Path,
    fd: &OwnedFd,
    pid: i32,
    metadata: &str,
    state: &[u8],
    oci_version: &str,
) -> Result<(), SeccompError> {
    let fail = |reason: String| SeccompError::Agent {
        path: path.to_owned(),
        reason,
    };
    // The runtime-spec's ContainerProcessState; `fds` names each descriptor sent with it
    // ("seccompFd" is the only one defined). The state document is embedded as written.
    let text = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut message = format!(
        "{{\"ociVersion\":{},\"fds\":[\"seccompFd\"],\"pid\":{pid}",
        text(oci_version)
    )
    .into_bytes();
    if !metadata.is_empty() {
        message.extend_from_slice(format!(",\"metadata\":{}", text(metadata)).as_bytes());
    }
    message.extend_from_slice(b",\"state\":");
    message.extend_from_slice(state);
    message.push(b'}');
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| fail(format!("socket: {e}")))?;
    let addr = UnixAddr::new(path).map_err(|e| fail(format!("socket path: {e}")))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| fail(format!("connect: {e}")))?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(&message)];
    let sent = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| fail(format!("sendmsg: {e}")))?;
    if sent != message.len() {
        return Err(fail(format!(
            "sent {sent} of {} bytes of the state",
            message.len()
        )));
    }
    Ok(())
}
