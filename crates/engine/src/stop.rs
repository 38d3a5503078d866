//! SIGTERM and SIGINT, taken on a thread of their own: the stop is asked of the server, and
//! if it has not returned within `GRACE` (a handler stuck on a lock or a disk, a runtime
//! with every thread busy), the process exits anyway. So a signal always stops the daemon
//! within seconds; containers and their monitors live on either way.

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use tokio::sync::watch;

/// How long a graceful stop may take before the process exits regardless.
const GRACE: Duration = Duration::from_secs(5);

/// Blocks SIGTERM and SIGINT in this thread, so in every thread started after it (call it
/// before the async runtime starts), and waits for them on a thread of its own. The receiver
/// turns true at the first; a second exits at once. `socket` is removed on a forced exit.
pub fn install(socket: PathBuf) -> Result<watch::Receiver<bool>, String> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| format!("block SIGTERM and SIGINT: {e}"))?;
    let (tx, rx) = watch::channel(false);
    std::thread::Builder::new()
        .name("berth-stop".into())
        .spawn(move || {
            if set.wait().is_err() {
                return;
            }
            let _ = tx.send(true);
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            // A second signal while the stop is under way: go now.
            std::thread::spawn(move || {
                if set.wait().is_ok() {
                    let _ = done_tx.send(());
                }
            });
            let _ = done_rx.recv_timeout(GRACE);
            let _ = std::fs::remove_file(&socket);
            eprintln!("berth daemon: stopped without waiting for the requests in flight");
            std::process::exit(0);
        })
        .map_err(|e| format!("start the signal thread: {e}"))?;
    Ok(rx)
}
