//! What the daemon uses to talk to a running monitor. Blocking calls on std Unix sockets: the
//! daemon runs them on its blocking pool.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::json;

use crate::error::{Error, Result};
use crate::sock::{self, ATTACH, CONTROL};
use crate::state::{read_state, MonitorState};

/// The monitor's end of a client's connection made before the container starts (see
/// [`attach_early`]); [`crate::spawn`] hands it to the monitor at its birth.
#[derive(Debug)]
pub struct EarlyAttach(pub(crate) UnixStream);

/// Connects a client that attaches before the start (`docker run`, `start -a`, an attached
/// `compose up`, `exec`): a socket pair whose other end the monitor receives when it is
/// spawned, before it starts the process. So the attacher is connected by construction: no
/// socket to wait for, no time-out, nothing the process writes can come before it. The
/// returned stream carries what [`attach`]'s does.
pub fn attach_early(stdin: bool, stdout: bool, stderr: bool) -> Result<(UnixStream, EarlyAttach)> {
    let (mut ours, theirs) = UnixStream::pair().map_err(|e| Error::Socket {
        what: "make",
        path: "an attach socket pair".into(),
        source: e,
    })?;
    ours.write_all(request_line(stdin, stdout, stderr).as_bytes())
        .map_err(|e| Error::Socket {
            what: "send the attach request on",
            path: "an attach socket pair".into(),
            source: e,
        })?;
    Ok((ours, EarlyAttach(theirs)))
}

/// Attaches to the live stdio of a running container. For `tty: false` the stream carries
/// Docker's multiplexed frames (8-byte header: stream, 3 zero bytes, big-endian length); for
/// a tty, raw bytes. What the caller writes goes to the container's stdin; shutting down the
/// write half is EOF there. A container that is not running (no monitor listening) is an
/// error at once: clients that attach before the start use [`attach_early`].
pub fn attach(dir: &Path, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream> {
    let mut stream = sock::connect(dir, ATTACH).map_err(|e| Error::Socket {
        what: "connect to",
        path: dir.join(ATTACH),
        source: e,
    })?;
    stream
        .write_all(request_line(stdin, stdout, stderr).as_bytes())
        .map_err(|e| Error::Socket {
            what: "send the attach request to",
            path: dir.join(ATTACH),
            source: e,
        })?;
    Ok(stream)
}

fn request_line(stdin: bool, stdout: bool, stderr: bool) -> String {
    json!({"stdin": stdin, "stdout": stdout, "stderr": stderr}).to_string() + "\n"
}

/// Sets the size of the container's terminal.
pub fn resize(dir: &Path, height: u16, width: u16) -> Result<()> {
    let reply = request(dir, &json!({"resize": [height, width]}))?;
    match reply {
        Some(r) => ok_or_refused(dir, &r),
        None => Err(Error::Refused {
            dir: dir.to_owned(),
            reason: "the monitor is gone (the container is not running)".into(),
        }),
    }
}

/// Blocks until the container's init exits, then returns the state the monitor recorded.
/// With a restart policy the state may say `restarting`: wait again for the next exit.
pub fn wait(dir: &Path) -> Result<MonitorState> {
    match request(dir, &json!({"wait": true}))? {
        Some(reply) => serde_json::from_str(&reply).map_err(|e| Error::Parse {
            what: format!("wait reply of the monitor in {}", dir.display()),
            source: e,
        }),
        None => read_state(dir),
    }
}

/// Blocks until run `run` (the restart count it had) of the container has ended, and returns
/// the state then; at once if it already has (a later run may be running by now).
pub fn wait_run(dir: &Path, run: u32) -> Result<MonitorState> {
    match request(dir, &json!({"wait": true, "run": run}))? {
        Some(reply) => serde_json::from_str(&reply).map_err(|e| Error::Parse {
            what: format!("wait reply of the monitor in {}", dir.display()),
            source: e,
        }),
        None => read_state(dir),
    }
}

/// After an exit that the restart policy follows with a new run: blocks until that run has
/// started (or the monitor gave up restarting), then returns the state.
pub fn wait_start(dir: &Path) -> Result<MonitorState> {
    match request(dir, &json!({"wait_start": true}))? {
        Some(reply) => serde_json::from_str(&reply).map_err(|e| Error::Parse {
            what: format!("wait_start reply of the monitor in {}", dir.display()),
            source: e,
        }),
        None => read_state(dir),
    }
}

/// Tells the monitor that the coming exit is a manual stop: no restart policy applies.
pub fn stop_restarting(dir: &Path) -> Result<()> {
    match request(dir, &json!({"no_restart": true}))? {
        Some(r) => ok_or_refused(dir, &r),
        // No monitor, nothing to restart.
        None => Ok(()),
    }
}

/// Makes the monitor reopen the container's log file at its path (after kubelet rotated it).
pub fn reopen_log(dir: &Path) -> Result<()> {
    match request(dir, &json!({"reopen_log": true}))? {
        Some(r) => ok_or_refused(dir, &r),
        None => Err(Error::Refused {
            dir: dir.to_owned(),
            reason: "the monitor is gone (the container is not running)".into(),
        }),
    }
}

/// Sends one request line on the control socket and reads one reply line. `None` when the
/// monitor is gone: no socket, or it closed the connection without answering.
fn request(dir: &Path, body: &serde_json::Value) -> Result<Option<String>> {
    let path = dir.join(CONTROL);
    let mut stream = match sock::connect(dir, CONTROL) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(Error::Socket {
                what: "connect to",
                path,
                source: e,
            })
        }
    };
    let line = body.to_string() + "\n";
    if let Err(e) = stream.write_all(line.as_bytes()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(None);
        }
        return Err(Error::Socket {
            what: "send a request to",
            path,
            source: e,
        });
    }
    let mut reply = String::new();
    match BufReader::new(stream).read_line(&mut reply) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(reply)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
        Err(e) => Err(Error::Socket {
            what: "read the reply of",
            path,
            source: e,
        }),
    }
}

fn ok_or_refused(dir: &Path, reply: &str) -> Result<()> {
    let v: serde_json::Value = serde_json::from_str(reply).map_err(|e| Error::Parse {
        what: format!("reply of the monitor in {}", dir.display()),
        source: e,
    })?;
    match v.get("error").and_then(|e| e.as_str()) {
        Some(reason) => Err(Error::Refused {
            dir: dir.to_owned(),
            reason: reason.to_owned(),
        }),
        None => Ok(()),
    }
}
