//! The `berth` binary. Multi-call: invoked as `berth-runtime` (or through a symlink of that
//! name) it is the runc-compatible OCI runtime with runc's command line at the top level, so
//! podman `--runtime`, containerd's shim and CRI-O can use it; as `berth` it is the user's CLI,
//! whose `berth runtime ...` reaches the same runtime.

mod client;
mod daemon_cmd;
mod log;
mod runtime_cli;

use std::ffi::OsString;
use std::path::Path;

/// The names under which the binary behaves as the runtime.
const RUNTIME_NAMES: [&str; 2] = ["berth-runtime", "runc"];

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if RUNTIME_NAMES.contains(&invoked_as.as_str()) {
        std::process::exit(runtime_cli::main(&invoked_as, args));
    }
    // Called by its real name with runc's command line: a tool that resolved the runtime's
    // symlink (containerd's shim, podman) before running it.
    if runtime_cli::is_runc_command_line(&args) {
        std::process::exit(runtime_cli::main(&invoked_as, args));
    }
    match args.get(1).and_then(|a| a.to_str()) {
        Some("runtime") => {
            args.remove(1);
            std::process::exit(runtime_cli::main("berth runtime", args));
        }
        Some("daemon") => {
            args.remove(1);
            std::process::exit(daemon_cmd::main(args));
        }
        // Started by the daemon for each container (berth_monitor::spawn), never by hand.
        Some("monitor") => match args.get(2) {
            Some(dir) if args.len() == 3 => berth_monitor::run_monitor(Path::new(dir)),
            _ => {
                eprintln!("Usage: berth monitor DIR");
                std::process::exit(125);
            }
        },
        Some("--version" | "-v") => {
            println!("berth version {}", env!("CARGO_PKG_VERSION"));
            println!("spec: {}", oci_spec::runtime::VERSION);
        }
        Some("help" | "--help") | None => print_usage(),
        // Everything else is the Docker-compatible client of the Engine API.
        Some(_) => std::process::exit(client::main(args)),
    }
}

fn print_usage() {
    println!(
        "Usage: berth COMMAND\n\n\
         A container engine in one binary.\n\n\
         Commands:\n  \
           run, ps, images, exec, logs, … docker's commands, over the Engine API\n  \
           runtime    The OCI runtime, with runc's command line (berth runtime --help)\n  \
           version    Show the client and daemon versions\n\n\
         The runtime is also reachable as `berth-runtime` (a symlink to this binary), which\n\
         takes runc's arguments at the top level."
    );
}
