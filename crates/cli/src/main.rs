//! The `berth` binary. Multi-call: invoked as `berth-runtime` (or through a symlink of that
//! name) it is the runc-compatible OCI runtime with runc's command line at the top level, so
//! podman `--runtime`, containerd's shim and CRI-O can use it; as `berth` it is the user's CLI,
//! whose `berth runtime ...` reaches the same runtime.

mod client;
mod daemon_cmd;
mod log;
mod prompt;
mod runtime_cli;
mod tree;

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
    let code = match args.get(1).and_then(|a| a.to_str()) {
        None => prompt::root_help(false),
        Some("--help" | "-h") => prompt::root_help(true),
        Some("help") => prompt::help_topic(&args[2..]),
        Some("--version" | "-v") => {
            client::print_version();
            0
        }
        Some("runtime") => match prompt::help_request(&args) {
            // `berth runtime … --help` in docker's layout; `berth-runtime --help` keeps runc's.
            Some(code) => code,
            None => {
                args.remove(1);
                runtime_cli::main("berth runtime", args)
            }
        },
        Some("daemon") => match daemon_cmd::parse(&args[1..]) {
            Ok(a) => daemon_cmd::run(a),
            Err(e) => prompt::usage_error(&args, &e),
        },
        // Started by the daemon for each container (berth_monitor::spawn), never by hand.
        Some("monitor") => match args.get(2) {
            Some(dir) if args.len() == 3 => berth_monitor::run_monitor(Path::new(dir)),
            _ => {
                eprintln!("Usage: berth monitor DIR");
                125
            }
        },
        Some("completion" | "man") => prompt::main(&args),
        // What the completion scripts call, with the words of the line being completed.
        Some("__complete") => prompt::complete_main(&args[2..]),
        // Everything else is the Docker-compatible client of the Engine API.
        Some(_) => match client::parse(&args) {
            Ok(cli) => client::run(cli),
            Err(e) => prompt::usage_error(&args, &e),
        },
    };
    std::process::exit(code);
}
