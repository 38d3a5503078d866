//! The whole `berth` command line as one clap `Command`: the Docker-compatible client's
//! commands, `runtime` (runc's command line), `daemon`, and the commands about the command
//! line itself (`completion`, and the hidden `man` and `__complete`). Help, usage errors,
//! shell completion and man pages are all read from this one tree, built from the same
//! definitions the parsers use, so none of them can drift from what berth accepts.

use clap::{Arg, ArgAction, Command, ValueHint};

use crate::{client, daemon_cmd, runtime_cli};

/// The shells `berth completion` writes a script for.
pub const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// The tree, built (global flags propagated, help flags added).
pub fn command() -> Command {
    let mut root = client::command()
        .subcommand(
            runtime_cli::command()
                .name("runtime")
                .about("Run OCI bundles with runc's command line (the OCI runtime)")
                .long_about(
                    "Run OCI bundles with runc's command line (the OCI runtime).\n\n\
                     The same runtime is reachable as `berth-runtime` (a symlink to berth), \
                     which takes runc's arguments at the top level.",
                )
                .version(None::<&str>)
                .disable_version_flag(true),
        )
        .subcommand(daemon_cmd::command())
        .subcommand(
            Command::new("monitor")
                .about("A container's monitor (started by the daemon, never by hand)")
                .hide(true)
                .arg(Arg::new("dir").value_name("DIR").required(true)),
        )
        .subcommand(
            Command::new("completion")
                .about("Print the shell completion script for bash, zsh or fish")
                .long_about(
                    "Print the shell completion script for bash, zsh or fish.\n\n\
                     Load it into the current shell with `source <(berth completion bash)` \
                     (zsh: `source <(berth completion zsh)`, after compinit; fish: \
                     `berth completion fish | source`). It completes commands, flags, \
                     fixed flag values, and names the daemon knows (one request, nothing \
                     when the daemon is down: completion never starts it).",
                )
                .arg(
                    Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .value_parser(SHELLS),
                ),
        )
        .subcommand(
            Command::new("man")
                .about("Write the man pages (berth(1), berth-run(1), …)")
                .hide(true)
                .arg(
                    Arg::new("dir")
                        .long("dir")
                        .value_name("DIR")
                        .value_hint(ValueHint::DirPath)
                        .help("Write every page into DIR (default: print one page)"),
                )
                .arg(
                    Arg::new("command")
                        .value_name("COMMAND")
                        .action(ArgAction::Append)
                        .help("The command whose page to print (default: berth(1))"),
                ),
        )
        .subcommand(
            Command::new("__complete")
                .about("Complete a command line (what the completion scripts call)")
                .hide(true)
                .arg(
                    Arg::new("words")
                        .value_name("WORD")
                        .action(ArgAction::Append)
                        .allow_hyphen_values(true)
                        .trailing_var_arg(true),
                ),
        );
    root.build();
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_is_consistent() {
        command().debug_assert();
    }
}
