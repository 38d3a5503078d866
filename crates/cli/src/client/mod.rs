//! `berth`'s Docker-compatible CLI: a client of the Docker Engine API only (DESIGN.md,
//! principle 1). Same verbs, flags, output and exit codes as docker CLI.

mod commands;
mod credentials;
mod flags;
mod format;
pub(crate) mod http;
mod progress;
pub(crate) mod stream;
mod units;

use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};

use commands::{compose, container, image, network, system, volume};
use http::{Client, ConnectError, DaemonError};

/// An error that carries the exit status docker would give.
#[derive(Debug)]
pub struct StatusError {
    /// The exit status.
    pub code: i32,
    /// The message for stderr (none: print nothing).
    pub message: Option<String>,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.as_deref().unwrap_or(""))
    }
}

impl std::error::Error for StatusError {}

/// Exit with `code` and no message (the container's own status).
pub fn exit_status(code: i32) -> anyhow::Error {
    anyhow::Error::new(StatusError {
        code,
        message: None,
    })
}

/// The client's command line (`crate::tree` adds the commands that are not the client's).
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    disable_help_subcommand = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path)
    #[arg(short = 'H', long = "host")]
    host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Set the logging level
    #[arg(short = 'l', long = "log-level", hide = true)]
    log_level: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per process: the size of the run flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Cmd {
    #[command(flatten)]
    Container(container::Cmd),
    /// List containers
    Ps(container::PsArgs),
    /// Manage containers
    #[command(name = "container", subcommand)]
    ContainerSub(container::Sub),
    #[command(flatten)]
    Image(image::Cmd),
    #[command(flatten)]
    Registry(image::Registry),
    /// List images
    Images(image::ImagesArgs),
    /// Remove one or more images
    Rmi(image::RmiArgs),
    /// Manage images
    #[command(name = "image", subcommand)]
    ImageSub(image::Sub),
    /// Return low-level information on Docker objects
    Inspect(system::InspectArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(commands::build::BuilderSub),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::Sub),
    /// Manage networks
    #[command(subcommand)]
    Network(network::Sub),
    /// Manage berth
    #[command(subcommand)]
    System(system::Sub),
    /// Show the berth version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// Define and run multi-container applications
    Compose(compose::ComposeArgs),
    /// Print a login URL to the daemon's web dashboard (--open: open it)
    Dashboard(commands::dashboard::DashboardArgs),
}

/// The client's commands as clap sees them.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses a client command line; a usage error is the caller's to report (`crate::prompt`
/// words it as docker does, knowing every command of the binary).
pub fn parse(args: &[OsString]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args)
}

/// `berth -v`.
pub fn print_version() {
    println!("berth version {}", env!("CARGO_PKG_VERSION"));
    println!("spec: {}", oci_spec::runtime::VERSION);
}

/// Runs a parsed client command; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    if cli.version {
        print_version();
        return 0;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: starting the I/O runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        let client = Client::new(cli.host)?;
        dispatch(&client, cli.cmd).await
    });
    // Blocking stdin readers may still be parked; do not wait for them.
    let code = match result {
        Ok(()) => 0,
        Err(e) => report(&e),
    };
    runtime.shutdown_background();
    code
}

fn report(e: &anyhow::Error) -> i32 {
    if let Some(s) = e.downcast_ref::<StatusError>() {
        if let Some(m) = &s.message {
            eprintln!("{m}");
        }
        return s.code;
    }
    if e.downcast_ref::<DaemonError>().is_some() || e.downcast_ref::<ConnectError>().is_some() {
        eprintln!("{e}");
    } else {
        eprintln!("Error: {e:#}");
    }
    1
}

async fn dispatch(c: &Client, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Container(cmd) => container::run(c, cmd).await,
        Cmd::Ps(a) => container::ps(c, a).await,
        Cmd::ContainerSub(s) => container::run_sub(c, s).await,
        Cmd::Image(cmd) => image::run(c, cmd).await,
        Cmd::Registry(cmd) => image::run_registry(c, cmd).await,
        Cmd::Images(a) => image::images(c, a).await,
        Cmd::Rmi(a) => image::rmi(c, a).await,
        Cmd::ImageSub(s) => image::run_sub(c, s).await,
        Cmd::Inspect(a) => system::inspect(c, a).await,
        Cmd::Builder(s) => commands::build::builder(c, s).await,
        Cmd::Volume(s) => volume::run(c, s).await,
        Cmd::Network(s) => network::run(c, s).await,
        Cmd::System(s) => system::run(c, s).await,
        Cmd::Version(a) => system::version(c, a).await,
        Cmd::Info(a) => system::info(c, a).await,
        Cmd::Events(a) => system::events(c, a).await,
        Cmd::Compose(a) => compose::run(c, a).await,
        Cmd::Dashboard(a) => commands::dashboard::run(c, a).await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn docker_command_lines_parse() {
        for line in [
            "berth run -it --rm -v /a:/b -p 80:80 busybox sh -c ls",
            "berth -H unix:///tmp/s ps -a --format {{.ID}}",
            "berth container ls -aq",
            "berth image ls --digests",
            "berth history -H=false busybox",
            "berth run -h myhost busybox hostname",
            "berth exec -it web sh -l",
            "berth logs -f --tail 10 web",
            "berth stop -t 3 a b",
            "berth volume create v1",
            "berth network connect n c",
            "berth system df -v",
            "berth container prune -f",
            "berth image prune -af",
            "berth cp web:/etc/hosts /tmp/x",
            "berth build -t a -t b:1 --build-arg X=1 --label l=v --no-cache --pull -q --iidfile f --target t --network none -f D -",
            "berth builder prune -af",
            "berth image lint Dockerfile",
            "berth image analyze --all busybox",
            "berth dashboard --open",
        ] {
            let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("{line}: {e}");
            }
        }
    }

    #[test]
    fn run_keeps_command_flags_for_the_container() {
        let args: Vec<OsString> = "berth run busybox ls -l -h"
            .split(' ')
            .map(OsString::from)
            .collect();
        let cli = Cli::try_parse_from(args).unwrap();
        match cli.cmd {
            Cmd::Container(container::Cmd::Run(r)) => {
                assert_eq!(r.args, ["busybox", "ls", "-l", "-h"])
            }
            other => panic!("{other:?}"),
        }
    }
}
