//! `berth compose`: docker compose v2's command line over berth-compose. The project is loaded
//! (and every bad input refused) before any request; the planner reaches the daemon through
//! this client, the Engine API only.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use berth_compose as compose;
use clap::{Args, Parser, Subcommand};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};

use super::{container, image, split_ref};
use crate::client::format;
use crate::client::http::{bytes_body, empty, json_body, Body, Client, DaemonError};
use crate::client::stream;
use crate::client::units::{ago, bytes_size, rfc3339_nano, short_id};
use crate::client::StatusError;

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Specify an alternate working directory (default: the path of the first Compose file)
    #[arg(long = "project-directory")]
    project_directory: Option<PathBuf>,
    /// Specify an alternate environment file
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Specify a profile to enable
    #[arg(long = "profile")]
    profile: Vec<String>,
    /// Control when to print ANSI control characters ("never"|"always"|"auto")
    #[arg(long, default_value = "auto")]
    ansi: String,
    /// Set type of progress output (auto, tty, plain, quiet)
    #[arg(long, hide = true)]
    progress: Option<String>,
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Create and start containers
    Up(UpArgs),
    /// Stop and remove containers, networks
    Down(DownArgs),
    /// List containers
    Ps(PsArgs),
    /// View output from containers
    Logs(LogsArgs),
    /// Build or rebuild services
    Build(BuildArgs),
    /// Pull service images
    Pull(PullArgs),
    /// Push service images
    Push(PushArgs),
    /// Start services
    Start(Services),
    /// Stop services
    Stop(TimeoutServices),
    /// Restart service containers
    Restart(TimeoutServices),
    /// Removes stopped service containers
    Rm(RmArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Run a one-off command on a service
    Run(RunArgs),
    /// Parse, resolve and render compose file in canonical format
    Config(ConfigArgs),
    /// List images used by the created containers
    Images(ImagesArgs),
    /// Display the running processes
    Top(Services),
    /// Force stop service containers
    Kill(KillArgs),
    /// Pause services
    Pause(Services),
    /// Unpause services
    Unpause(Services),
    /// Print the public port for a port binding
    Port(PortArgs),
    /// List running compose projects
    Ls(LsArgs),
    /// Show the Docker Compose version information
    Version(VersionArgs),
    /// Creates containers for a service
    Create(CreateArgs),
    /// Block until containers of all (or specified) services stop.
    Wait(WaitArgs),
    /// Scale services
    Scale(ScaleArgs),
    /// Receive real time events from containers
    Events(EventsArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    // `docker stats`'s own flags (its names are the services): rendered as `berth stats` is.
    Stats(container::StatsArgs),
    /// Attach local standard input, output, and error streams to a service's running container
    Attach(AttachArgs),
}

#[derive(Debug, Args)]
struct AttachArgs {
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    #[arg(value_name = "SERVICE")]
    service: String,
}

#[derive(Debug, Args)]
struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long)]
    index: Option<u32>,
    #[arg(value_name = "SERVICE:SRC_PATH|SRC_PATH|-")]
    src: String,
    #[arg(value_name = "SERVICE:DEST_PATH|DEST_PATH|-")]
    dst: String,
}

#[derive(Debug, Args)]
struct ScaleArgs {
    /// Don't start linked services
    #[arg(long = "no-deps")]
    no_deps: bool,
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    scales: Vec<String>,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    json: bool,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short = 's', long, default_value = "SIGKILL")]
    signal: String,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct PortArgs {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    #[arg(value_name = "SERVICE")]
    service: String,
    /// The container's port
    #[arg(value_name = "PRIVATE_PORT")]
    private_port: String,
}

#[derive(Debug, Args)]
struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display project names
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format the output. Values: [table | json]
    #[arg(long, default_value = "table")]
    format: String,
    /// Filter output based on conditions provided
    #[arg(long)]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
struct VersionArgs {
    /// Shows only Compose's version number
    #[arg(long)]
    short: bool,
    /// Format the output. Values: [pretty | json]
    #[arg(short = 'f', long, default_value = "pretty")]
    format: String,
}

/// What `up` and `create` share: how the project's containers converge on the model.
#[derive(Debug, Args)]
struct ConvergeArgs {
    /// Build images before starting containers
    #[arg(long)]
    build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long = "no-build")]
    no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long = "force-recreate")]
    force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    no_recreate: bool,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long)]
    pull: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present.
    #[arg(long)]
    scale: Vec<String>,
}

impl ConvergeArgs {
    /// `up`'s options for these flags and `services` (the rest at their defaults).
    fn options(&self, p: &compose::Project, services: &[String]) -> Result<compose::UpOptions> {
        Ok(compose::UpOptions {
            build: self.build,
            no_build: self.no_build,
            force_recreate: self.force_recreate,
            no_recreate: self.no_recreate,
            remove_orphans: self.remove_orphans,
            scale: scales(p, &self.scale, "--scale")?,
            pull: self.pull.clone(),
            services: services.to_vec(),
            ..Default::default()
        })
    }
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    converge: ConvergeArgs,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct WaitArgs {
    #[arg(required = true, value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct Services {
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct TimeoutServices {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    timeout: Option<u32>,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Don't start the services after creating them
    #[arg(long = "no-start")]
    no_start: bool,
    /// Wait for services to be running|healthy. Implies detached mode.
    #[arg(long)]
    wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long = "wait-timeout")]
    wait_timeout: Option<u64>,
    /// Use this timeout in seconds for container shutdown when attached or when containers are already running
    #[arg(short = 't', long)]
    timeout: Option<u32>,
    /// Stops all containers if any container was stopped. Incompatible with -d
    #[arg(long = "abort-on-container-exit")]
    abort_on_container_exit: bool,
    /// Return the exit code of the selected service container. Implies --abort-on-container-exit
    #[arg(long = "exit-code-from", value_name = "SERVICE")]
    exit_code_from: Option<String>,
    /// Restrict attaching to the specified services
    #[arg(long, value_name = "SERVICE")]
    attach: Vec<String>,
    /// Do not attach (stream logs) to the specified services
    #[arg(long = "no-attach", value_name = "SERVICE")]
    no_attach: Vec<String>,
    /// Automatically attach to log output of dependent services
    #[arg(long = "attach-dependencies")]
    attach_dependencies: bool,
    #[command(flatten)]
    converge: ConvergeArgs,
    #[command(flatten)]
    style: LogStyle,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

/// How `up` (attached) and `logs` show the containers' lines.
#[derive(Debug, Args)]
struct LogStyle {
    /// Produce monochrome output
    #[arg(long = "no-color")]
    no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    no_log_prefix: bool,
}

#[derive(Debug, Args)]
struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")
    #[arg(long)]
    rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    timeout: Option<u32>,
}

#[derive(Debug, Args)]
struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display services
    #[arg(long)]
    services: bool,
    /// Format the output. Values: [table | json]
    #[arg(long, default_value = "table")]
    format: String,
    /// Filter services by status. Values: [paused | restarting | removing | running | dead | created | exited]
    #[arg(long)]
    status: Vec<String>,
    #[arg(value_name = "SERVICE")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    until: Option<String>,
    #[command(flatten)]
    style: LogStyle,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct PullArgs {
    /// Pull without printing progress information
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Pull what it can and ignores images with pull failures
    #[arg(long = "ignore-pull-failures")]
    ignore_pull_failures: bool,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct PushArgs {
    /// Push what it can and ignores images with push failures
    #[arg(long = "ignore-push-failures")]
    ignore_push_failures: bool,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short = 'f', long)]
    force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short = 's', long)]
    stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short = 'v', long)]
    volumes: bool,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Disable pseudo-TTY allocation. By default `docker compose exec` allocates a TTY.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Run the command as this user
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Give extended privileges to the process
    #[arg(long)]
    privileged: bool,
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        value_name = "SERVICE COMMAND [ARGS...]"
    )]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long, default_value_t = true)]
    interactive: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Add or override a label
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Run as specified username or uid
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    service_ports: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        value_name = "SERVICE [COMMAND] [ARGS...]"
    )]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    volumes: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    profiles: bool,
    /// Format the output. Values: [yaml | json]
    #[arg(long, default_value = "yaml")]
    format: String,
    /// Save to file (default to stdout)
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    #[arg(value_name = "SERVICE")]
    services_list: Vec<String>,
}

#[derive(Debug, Args)]
struct ImagesArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

/// The berth client as compose's way to the daemon.
struct Api<'a>(&'a Client);

fn method(m: compose::Method) -> Method {
    match m {
        compose::Method::Get => Method::GET,
        compose::Method::Post => Method::POST,
        compose::Method::Put => Method::PUT,
        compose::Method::Delete => Method::DELETE,
    }
}

fn payload(p: compose::Payload) -> (Body, Vec<(&'static str, String)>) {
    match p {
        compose::Payload::None => (empty(), Vec::new()),
        compose::Payload::Json(v) => (
            json_body(&v),
            vec![("Content-Type", "application/json".to_string())],
        ),
        compose::Payload::Tar(bytes) => (
            bytes_body(bytes),
            vec![("Content-Type", "application/x-tar".to_string())],
        ),
    }
}

fn to_compose(e: anyhow::Error) -> compose::Error {
    match e.downcast_ref::<DaemonError>() {
        Some(d) => compose::Error::Daemon {
            status: d.status.as_u16(),
            message: d.message.clone(),
        },
        None => compose::Error::Transport(format!("{e:#}")),
    }
}

impl compose::Engine for Api<'_> {
    async fn call(
        &self,
        m: compose::Method,
        path: &str,
        body: compose::Payload,
    ) -> compose::Result<Value> {
        let (b, headers) = payload(body);
        let reply = self
            .0
            .call_with(method(m), path, b, &headers)
            .await
            .map_err(to_compose)?;
        // Some answers are not JSON (an empty body, the archive upload's).
        Ok(reply.json().unwrap_or(Value::Null))
    }

    fn stream(
        &self,
        m: compose::Method,
        path: &str,
        body: compose::Payload,
        headers: &[(&str, String)],
    ) -> impl Future<Output = compose::Result<compose::ByteStream>> {
        let mut all: Vec<(&str, String)> = headers.to_vec();
        async move {
            let (b, extra) = payload(body);
            for (k, v) in extra {
                if !all.iter().any(|(x, _)| x.eq_ignore_ascii_case(k)) {
                    all.push((k, v));
                }
            }
            let resp = self
                .0
                .stream(method(m), path, b, &all)
                .await
                .map_err(to_compose)?;
            Ok(compose::byte_stream(resp.into_body().into_data_stream()))
        }
    }

    fn registry_auth(&self, image_ref: &str) -> String {
        image::registry_auth(&split_ref(image_ref).0)
    }

    fn registry_config(&self) -> String {
        crate::client::credentials::registry_config_header()
    }
}

/// Runs `berth compose …`.
pub async fn run(c: &Client, a: ComposeArgs) -> Result<()> {
    match dispatch(c, a).await {
        Ok(()) => Ok(()),
        Err(e) => match e.downcast::<compose::Error>() {
            Ok(ce) => Err(anyhow::Error::new(StatusError {
                code: 1,
                message: Some(ce.to_string()),
            })),
            Err(other) => Err(other),
        },
    }
}

fn options(a: &ComposeArgs, services: &[String]) -> compose::Options {
    compose::Options {
        files: a.file.clone(),
        project_name: a.project_name.clone(),
        project_directory: a.project_directory.clone(),
        env_files: a.env_file.clone(),
        profiles: a.profile.clone(),
        services: services.to_vec(),
    }
}

/// Loads the project (warnings to stderr); a project named with `-p` but without a file is
/// known by its labels alone (for `down`, `ps`, `stop`, …).
fn project(a: &ComposeArgs, services: &[String], file_optional: bool) -> Result<compose::Project> {
    match compose::load(&options(a, services)) {
        Ok(p) => {
            for w in &p.warnings {
                eprintln!("WARN[0000] {w}");
            }
            Ok(p)
        }
        Err(compose::Error::NoFile) if file_optional => {
            let name = a
                .project_name
                .clone()
                .or_else(|| std::env::var("COMPOSE_PROJECT_NAME").ok())
                .ok_or(compose::Error::NoFile)?;
            let dir = std::env::current_dir()?;
            Ok(compose::Project::named(&name, dir))
        }
        Err(e) => Err(e.into()),
    }
}

fn color(a: &ComposeArgs, style: &LogStyle) -> bool {
    !style.no_color
        && match a.ansi.as_str() {
            "never" => false,
            "always" => true,
            _ => stream::stdout_is_tty(),
        }
}

async fn dispatch(c: &Client, a: ComposeArgs) -> Result<()> {
    let api = Api(c);
    match &a.cmd {
        Sub::Up(u) => up(c, &api, &a, u).await,
        Sub::Down(d) => {
            let p = project(&a, &[], true)?;
            let opts = compose::DownOptions {
                volumes: d.volumes,
                rmi: d.rmi.clone(),
                remove_orphans: d.remove_orphans,
                timeout: d.timeout,
            };
            Ok(compose::down(&api, &p, &opts).await?)
        }
        Sub::Ps(ps_args) => ps(&api, &a, ps_args).await,
        Sub::Logs(l) => {
            let p = project(&a, &l.services, true)?;
            let list: Vec<compose::Existing> = compose::containers(&api, &p.name)
                .await?
                .into_iter()
                .filter(|x| l.services.is_empty() || l.services.contains(&x.service))
                .collect();
            let opts = compose::LogOptions {
                follow: l.follow,
                tail: Some(l.tail.clone()),
                since: l.since.clone(),
                until: l.until.clone(),
                timestamps: l.timestamps,
                no_prefix: l.style.no_log_prefix,
                color: color(&a, &l.style),
                report_exit: false,
                abort_on_exit: false,
            };
            compose::print_logs(&api, &p.name, &list, &opts).await?;
            Ok(())
        }
        Sub::Build(b) => {
            let p = project(&a, &b.services, false)?;
            let opts = compose::BuildOptions {
                no_cache: b.no_cache,
                pull: b.pull,
                quiet: b.quiet,
                args: b
                    .build_arg
                    .iter()
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect(),
            };
            for name in compose::selected(&p, &b.services, true)? {
                let svc = p.service(&name)?;
                if svc.get("build").is_some() {
                    compose::build(&api, &p, &name, svc, &opts).await?;
                }
            }
            Ok(())
        }
        Sub::Pull(pl) => {
            let p = project(&a, &pl.services, false)?;
            let mut must_build = Vec::new();
            for name in compose::selected(&p, &pl.services, true)? {
                let svc = p.service(&name)?;
                // A service that is built and names no image has nothing to pull.
                if svc.get("image").is_none() {
                    continue;
                }
                let r = compose::pull(&api, &name, &p.image_of(&name, svc)).await;
                match r {
                    // As docker compose: an image that is built here need not be pulled.
                    Err(e) if svc.get("build").is_some() => {
                        eprintln!("{e}");
                        must_build.push(name);
                    }
                    Err(e) if pl.ignore_pull_failures => eprintln!("{e}"),
                    other => other?,
                }
            }
            if !must_build.is_empty() {
                eprintln!(
                    "WARNING: Some service image(s) must be built from source by running:\n    docker compose build {}",
                    must_build.join(" ")
                );
            }
            Ok(())
        }
        Sub::Push(ps) => {
            let p = project(&a, &ps.services, false)?;
            for name in compose::selected(&p, &ps.services, true)? {
                let svc = p.service(&name)?;
                // As docker compose: only services that are built and name their image.
                if svc.get("build").is_none() || svc.get("image").is_none() {
                    continue;
                }
                match compose::push(&api, &name, &p.image_of(&name, svc)).await {
                    Err(e) if ps.ignore_push_failures => eprintln!("{e}"),
                    other => other?,
                }
            }
            Ok(())
        }
        Sub::Start(s) => {
            let p = project(&a, &s.services, true)?;
            Ok(compose::start(&api, &p, &s.services).await?)
        }
        Sub::Stop(s) => {
            let p = project(&a, &s.services, true)?;
            Ok(compose::stop(&api, &p, &s.services, s.timeout).await?)
        }
        Sub::Restart(s) => {
            let p = project(&a, &s.services, true)?;
            Ok(compose::restart(&api, &p, &s.services, s.timeout).await?)
        }
        Sub::Rm(r) => {
            let p = project(&a, &r.services, true)?;
            let list = compose::removable(&api, &p, &r.services, r.stop).await?;
            if list.is_empty() {
                eprintln!("No stopped containers");
                return Ok(());
            }
            if !r.force {
                let names: Vec<&str> = list.iter().map(|x| x.name.as_str()).collect();
                if !super::confirm(&format!(
                    "Going to remove {}\nAre you sure?",
                    names.join(", ")
                )) {
                    return Ok(());
                }
            }
            Ok(compose::rm(&api, &list, r.volumes).await?)
        }
        Sub::Exec(x) => exec(c, &api, &a, x).await,
        Sub::Run(r) => run_oneoff(c, &api, &a, r).await,
        Sub::Cp(x) => cp(c, &api, &a, x).await,
        Sub::Stats(st) => stats(c, &api, &a, st).await,
        Sub::Attach(at) => {
            let p = project(&a, std::slice::from_ref(&at.service), false)?;
            let id = compose::exec_target(&api, &p, &at.service, at.index).await?;
            let mut argv: Vec<String> = vec!["attach".into()];
            if at.no_stdin {
                argv.push("--no-stdin".into());
            }
            argv.push(format!("--sig-proxy={}", at.sig_proxy));
            argv.push(id);
            let line = AttachLine::try_parse_from(argv).map_err(|e| anyhow!("{e}"))?;
            container::attach(c, line.a).await
        }
        Sub::Config(cf) => config(&a, cf),
        Sub::Images(i) => images(&api, &a, i).await,
        Sub::Top(t) => {
            let p = project(&a, &t.services, true)?;
            for (name, v) in compose::top(&api, &p, &t.services).await? {
                println!("{name}");
                println!("{}", container::top_table(&v));
            }
            Ok(())
        }
        Sub::Kill(k) => {
            let p = project(&a, &k.services, true)?;
            Ok(compose::kill(&api, &p, &k.services, Some(&k.signal)).await?)
        }
        Sub::Pause(s) => {
            let p = project(&a, &s.services, true)?;
            Ok(compose::pause(&api, &p, &s.services, true).await?)
        }
        Sub::Unpause(s) => {
            let p = project(&a, &s.services, true)?;
            Ok(compose::pause(&api, &p, &s.services, false).await?)
        }
        Sub::Port(pa) => {
            let p = project(&a, std::slice::from_ref(&pa.service), true)?;
            let private: u16 = pa
                .private_port
                .parse()
                .map_err(|_| anyhow!("invalid port {:?}: not a number", pa.private_port))?;
            let at = compose::port(&api, &p, &pa.service, private, &pa.protocol, pa.index).await?;
            println!("{at}");
            Ok(())
        }
        Sub::Ls(l) => ls(&api, l).await,
        Sub::Version(v) => version(v),
        Sub::Create(cr) => create(&api, &a, cr).await,
        Sub::Scale(sc) => {
            let names: Vec<String> = sc
                .scales
                .iter()
                .map(|s| s.split_once('=').map_or(s.as_str(), |(n, _)| n).to_string())
                .collect();
            let p = project(&a, &names, false)?;
            // As docker compose: `up -d` of the named services at their new replica counts.
            let opts = compose::UpOptions {
                detach: true,
                no_deps: sc.no_deps,
                scale: scales(&p, &sc.scales, "scale")?,
                services: names,
                ..Default::default()
            };
            compose::up(&api, &p, &opts).await?;
            Ok(())
        }
        Sub::Events(ev) => events(&api, &a, ev).await,
        Sub::Wait(w) => {
            let p = project(&a, &w.services, true)?;
            exit_with(compose::wait(&api, &p, &w.services).await?)
        }
    }
}

/// `events`: the project's container events, one a line, until the daemon ends the stream.
async fn events(api: &Api<'_>, a: &ComposeArgs, ev: &EventsArgs) -> Result<()> {
    let p = project(a, &ev.services, true)?;
    compose::events(api, &p, &ev.services, |e| {
        let secs = e.time_nano.div_euclid(1_000_000_000);
        let nanos = u32::try_from(e.time_nano.rem_euclid(1_000_000_000)).unwrap_or(0);
        let line = if ev.json {
            json!({
                "time": rfc3339_nano(secs, nanos), "type": "container",
                "service": e.service, "id": e.container, "action": e.action,
                "attributes": e.attributes,
            })
            .to_string()
        } else {
            // docker compose's `2006-01-02 15:04:05.000000 container ACTION ID (k=v, …)`.
            let t = rfc3339_nano(secs, nanos).replacen('T', " ", 1);
            let attrs: Vec<String> = e
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "{} container {} {} ({})",
                t.get(..26).unwrap_or(&t),
                e.action,
                e.container,
                attrs.join(", ")
            )
        };
        // A closed stdout (`| head`) ends the stream with an error instead of a panic.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| compose::Error::Transport(format!("writing an event: {e}")))
    })
    .await?;
    Ok(())
}

/// `SERVICE=N`s (`what`: `--scale` or `scale`, for the message), each service known.
fn scales(p: &compose::Project, list: &[String], what: &str) -> Result<BTreeMap<String, u32>> {
    let mut scale = BTreeMap::new();
    for s in list {
        let (name, n) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid {what} {s:?}: SERVICE=NUM"))?;
        let n: u32 = n
            .parse()
            .map_err(|_| anyhow!("invalid {what} {s:?}: {n:?} is not a number"))?;
        p.service(name)?;
        scale.insert(name.to_string(), n);
    }
    Ok(scale)
}

/// `create`: `up` without starting anything (docker compose's `up --no-start`).
async fn create(api: &Api<'_>, a: &ComposeArgs, cr: &CreateArgs) -> Result<()> {
    let p = project(a, &cr.services, false)?;
    let opts = compose::UpOptions {
        detach: true,
        no_start: true,
        ..cr.converge.options(&p, &cr.services)?
    };
    compose::up(api, &p, &opts).await?;
    Ok(())
}

/// `ls`: the daemon's projects, from their containers' labels; no compose file is read.
async fn ls(api: &Api<'_>, l: &LsArgs) -> Result<()> {
    let mut names = Vec::new();
    for f in &l.filter {
        match f.split_once('=') {
            Some(("name", v)) => names.push(v.to_string()),
            _ => return Err(anyhow!("invalid filter '{f}': only name=NAME is supported")),
        }
    }
    if l.format != "table" && l.format != "json" {
        return Err(anyhow!("invalid format {:?}: table or json", l.format));
    }
    // docker's filters match a name by any part of it.
    let list: Vec<compose::Stack> = compose::stacks(api, l.all)
        .await?
        .into_iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| s.name.contains(n.as_str())))
        .collect();
    if l.quiet {
        for s in &list {
            println!("{}", s.name);
        }
        return Ok(());
    }
    if l.format == "json" {
        let rows: Vec<Value> = list
            .iter()
            .map(|s| json!({"Name": s.name, "Status": s.status, "ConfigFiles": s.config_files}))
            .collect();
        println!("{}", Value::Array(rows));
        return Ok(());
    }
    let mut out = String::from("NAME\tSTATUS\tCONFIG FILES\n");
    for s in &list {
        out.push_str(&format!("{}\t{}\t{}\n", s.name, s.status, s.config_files));
    }
    print!("{}", format::tabwrite(&out));
    Ok(())
}

/// `version`: the docker compose version berth compose follows, in docker compose's words
/// (scripts check `docker compose version --short`).
fn version(v: &VersionArgs) -> Result<()> {
    let n = compose::COMPOSE_VERSION;
    if v.short {
        println!("{n}");
    } else if v.format == "json" {
        println!("{}", json!({ "version": format!("v{n}") }));
    } else if v.format == "pretty" {
        // Scripts match `version vX.Y.Z`; the suffix says who answers.
        println!(
            "Docker Compose version v{n} (berth compose {})",
            env!("CARGO_PKG_VERSION")
        );
    } else {
        return Err(anyhow!("invalid format {:?}: pretty or json", v.format));
    }
    Ok(())
}

async fn up(c: &Client, api: &Api<'_>, a: &ComposeArgs, u: &UpArgs) -> Result<()> {
    let p = project(a, &u.services, false)?;
    let converge = u.converge.options(&p, &u.services)?;
    let abort = u.abort_on_container_exit || u.exit_code_from.is_some();
    if abort && (u.detach || u.wait) {
        return Err(anyhow!(
            "--abort-on-container-exit and --detach are incompatible"
        ));
    }
    if let Some(s) = &u.exit_code_from {
        p.service(s)?;
        if !u.services.is_empty() && !compose::selected(&p, &u.services, u.no_deps)?.contains(s) {
            return Err(anyhow!(
                "--exit-code-from: service {s:?} is not among the services up starts"
            ));
        }
    }
    // Checked before anything is created, as every other bad input.
    for s in u.attach.iter().chain(&u.no_attach) {
        p.service(s)?;
    }
    if u.attach_dependencies && !u.attach.is_empty() {
        return Err(anyhow!(
            "--attach and --attach-dependencies are incompatible"
        ));
    }
    // As docker compose: `up web` shows web's output, not its dependencies', unless
    // `--attach-dependencies`; `--attach` names the services outright.
    let attach: Vec<String> = if u.attach.is_empty() && !u.attach_dependencies {
        u.services.clone()
    } else {
        u.attach.clone()
    };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let opts = compose::UpOptions {
        detach: u.detach || u.wait,
        no_start: u.no_start,
        no_deps: u.no_deps,
        wait: u.wait,
        wait_timeout: u.wait_timeout.map(Duration::from_secs),
        timeout: u.timeout,
        ..converge
    };
    let covered = compose::up(api, &p, &opts).await?;
    if opts.detach || u.no_start {
        return Ok(());
    }
    // `--attach` picks whose output is shown (all by default), `--no-attach` leaves some out;
    // the others still run, and Ctrl-C or an abort still stops them all.
    let shown: Vec<compose::Existing> = covered
        .iter()
        .filter(|x| attach.is_empty() || attach.contains(&x.service))
        .filter(|x| !u.no_attach.contains(&x.service))
        .cloned()
        .collect();
    let names: Vec<String> = shown
        .iter()
        .map(|x| compose::short_name(&p.name, &x.name))
        .collect();
    println!("Attaching to {}", names.join(", "));
    let log_opts = compose::LogOptions {
        follow: true,
        since: Some(since.to_string()),
        no_prefix: u.style.no_log_prefix,
        color: color(a, &u.style),
        report_exit: true,
        abort_on_exit: abort,
        ..Default::default()
    };
    // `Some(Some(i))`: container i ended and aborts the rest; `Some(None)`: every log ended;
    // `None`: Ctrl-C.
    let ended = tokio::select! {
        r = compose::print_logs(api, &p.name, &shown, &log_opts) => Some(r?),
        _ = tokio::signal::ctrl_c() => None,
    };
    let exited = match ended {
        Some(None) => return Ok(()),
        Some(Some(i)) => {
            eprintln!("Aborting on container exit...");
            Some(i)
        }
        None => {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            None
        }
    };
    let services: Vec<String> = covered.iter().map(|x| x.service.clone()).collect();
    let stop = compose::stop(api, &p, &services, u.timeout);
    tokio::select! {
        r = stop => r?,
        _ = tokio::signal::ctrl_c() => {
            for x in &covered {
                let _ = c.post(&format!("/containers/{}/kill", x.id)).await;
            }
        }
    }
    let Some(i) = exited else {
        return Ok(());
    };
    // As docker compose: the named service's code (its first container's, read after the
    // stop), else the code of the container whose exit aborted the rest.
    let from = match &u.exit_code_from {
        Some(s) => covered.iter().find(|x| x.service == *s),
        None => shown.get(i),
    };
    let code = match from {
        Some(x) => {
            let v = c.get_json(&format!("/containers/{}/json", x.id)).await?;
            v["State"]["ExitCode"].as_i64().unwrap_or(0)
        }
        None => 0,
    };
    exit_with(code)
}

/// Success for 0, else the exit status `code` with nothing more printed (a container's code,
/// passed on as docker compose passes it).
fn exit_with(code: i64) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(anyhow::Error::new(StatusError {
        code: i32::try_from(code).unwrap_or(1),
        message: None,
    }))
}

async fn ps(api: &Api<'_>, a: &ComposeArgs, args: &PsArgs) -> Result<()> {
    let p = project(a, &args.names, true)?;
    if args.services {
        let mut names: Vec<String> = p.services.keys().cloned().collect();
        if p.services.is_empty() {
            names = compose::containers(api, &p.name)
                .await?
                .into_iter()
                .map(|x| x.service)
                .collect();
            names.dedup();
        }
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    let all = args.all || !args.status.is_empty();
    let list: Vec<Value> = compose::ps(api, &p, &args.names, all)
        .await?
        .into_iter()
        .filter(|x| {
            args.status.is_empty()
                || args
                    .status
                    .iter()
                    .any(|s| x["State"].as_str() == Some(s.as_str()))
        })
        .collect();
    if args.quiet {
        for x in &list {
            println!("{}", x["Id"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    if args.format == "json" {
        for x in &list {
            let row = container::ps_row(x, true);
            println!(
                "{}",
                json!({
                    "ID": x["Id"], "Name": x["Name"], "Image": x["Image"],
                    "Command": x["Command"], "Project": p.name, "Service": x["Service"],
                    "Created": x["Created"], "State": x["State"], "Status": x["Status"],
                    "Health": health_of(x["Status"].as_str().unwrap_or_default()),
                    "ExitCode": exit_code_of(x["Status"].as_str().unwrap_or_default()),
                    "Publishers": x["Ports"], "Ports": row["Ports"], "Labels": row["Labels"],
                })
            );
        }
        return Ok(());
    }
    let mut out = String::from("NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS\n");
    for x in &list {
        let row = container::ps_row(x, true);
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            x["Name"].as_str().unwrap_or_default(),
            row["Image"].as_str().unwrap_or_default(),
            row["Command"].as_str().unwrap_or_default(),
            x["Service"].as_str().unwrap_or_default(),
            ago(x["Created"].as_i64().unwrap_or(0)),
            x["Status"].as_str().unwrap_or_default(),
            row["Ports"].as_str().unwrap_or_default(),
        ));
    }
    print!("{}", format::tabwrite(&out));
    Ok(())
}

fn health_of(status: &str) -> &'static str {
    if status.contains("(healthy)") {
        "healthy"
    } else if status.contains("(unhealthy)") {
        "unhealthy"
    } else if status.contains("(health: starting)") {
        "starting"
    } else {
        ""
    }
}

fn exit_code_of(status: &str) -> i64 {
    status
        .strip_prefix("Exited (")
        .and_then(|s| s.split_once(')'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

async fn images(api: &Api<'_>, a: &ComposeArgs, i: &ImagesArgs) -> Result<()> {
    let p = project(a, &i.services, true)?;
    let list = compose::list_images(api, &p, &i.services).await?;
    if i.quiet {
        for (_, img) in &list {
            println!("{}", img["Id"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let mut out = String::from("CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE\n");
    for (name, img) in &list {
        let tag = img["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
        let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "<none>"));
        out.push_str(&format!(
            "{name}\t{repo}\t{t}\t{}\t{}\n",
            short_id(img["Id"].as_str().unwrap_or_default()),
            bytes_size(img["Size"].as_f64().unwrap_or(0.0)),
        ));
    }
    print!("{}", format::tabwrite(&out));
    Ok(())
}

fn config(a: &ComposeArgs, cf: &ConfigArgs) -> Result<()> {
    let p = project(a, &cf.services_list, false)?;
    if cf.quiet {
        return Ok(());
    }
    let text = if cf.services {
        p.services.keys().map(|k| format!("{k}\n")).collect()
    } else if cf.volumes {
        p.volumes.keys().map(|k| format!("{k}\n")).collect()
    } else if cf.profiles {
        let mut all: Vec<String> = p
            .services
            .values()
            .flat_map(|s| {
                s.get("profiles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all.dedup();
        all.iter().map(|k| format!("{k}\n")).collect()
    } else if cf.format == "json" {
        let mut s = serde_json::to_string_pretty(&p.to_value())?;
        s.push('\n');
        s
    } else {
        p.to_yaml()
    };
    match &cf.output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| anyhow!("writing {}: {e}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

async fn exec(c: &Client, api: &Api<'_>, a: &ComposeArgs, x: &ExecArgs) -> Result<()> {
    let service = &x.args[0];
    let p = project(a, std::slice::from_ref(service), false)?;
    let id = compose::exec_target(api, &p, service, x.index).await?;
    let tty = !x.no_tty && stream::stdin_is_tty();
    let mut argv: Vec<String> = vec!["exec".into(), "-i".into()];
    if x.detach {
        argv.push("-d".into());
    }
    if tty {
        argv.push("-t".into());
    }
    if x.privileged {
        argv.push("--privileged".into());
    }
    for e in &x.env {
        argv.extend(["-e".to_string(), e.clone()]);
    }
    if let Some(u) = &x.user {
        argv.extend(["-u".to_string(), u.clone()]);
    }
    if let Some(w) = &x.workdir {
        argv.extend(["-w".to_string(), w.clone()]);
    }
    argv.push(id);
    argv.extend(x.args[1..].iter().cloned());
    let line = ExecLine::try_parse_from(argv).map_err(|e| anyhow!("{e}"))?;
    container::exec(c, line.a).await
}

/// `docker exec`'s own flags, so compose's exec runs exactly as `berth exec` does.
#[derive(Debug, Parser)]
struct ExecLine {
    #[command(flatten)]
    a: container::ExecArgs,
}

/// `cp`: the service's container(s) found by the project's labels, then `berth cp`'s own
/// copy (the daemon's `GET`/`PUT /containers/{id}/archive`, the same tar handling).
async fn cp(c: &Client, api: &Api<'_>, a: &ComposeArgs, x: &CpArgs) -> Result<()> {
    let (service, path, into) = match (
        container::split_cp_arg(&x.src),
        container::split_cp_arg(&x.dst),
    ) {
        (Some((s, path)), None) => (s, path, false),
        (None, Some((s, path))) => (s, path, true),
        (Some(_), Some(_)) => {
            return Err(anyhow!(
                "copying between services is not supported; one of the paths must be local"
            ))
        }
        (None, None) => {
            return Err(anyhow!(
                "one of the paths must be SERVICE:PATH, the other local"
            ))
        }
    };
    let p = project(a, &[service.to_string()], false)?;
    let targets = compose::cp_targets(api, &p, service, x.index, into).await?;
    if into && x.src == "-" && targets.len() > 1 {
        // Standard input can be read once: one replica, named.
        return Err(anyhow!(
            "copying standard input to several containers; choose one with --index"
        ));
    }
    for t in targets {
        let remote = format!("{}:{path}", t.id);
        let (src, dst) = if into {
            (x.src.clone(), remote)
        } else {
            (remote, x.dst.clone())
        };
        let mut argv: Vec<String> = vec!["cp".into()];
        if x.archive {
            argv.push("-a".into());
        }
        if x.follow_link {
            argv.push("-L".into());
        }
        argv.extend(["--".to_string(), src, dst]);
        let line = CpLine::try_parse_from(argv).map_err(|e| anyhow!("{e}"))?;
        // The daemon's own message names the path and the container.
        container::cp(c, line.a).await?;
    }
    Ok(())
}

/// `stats`: `berth stats` over the project's containers (of SERVICEs when named; running
/// ones unless `-a`), one-off ones included as docker compose includes them.
async fn stats(
    c: &Client,
    api: &Api<'_>,
    a: &ComposeArgs,
    st: &container::StatsArgs,
) -> Result<()> {
    let services = &st.names;
    let p = project(a, services, true)?;
    for s in services {
        p.service(s)?;
    }
    let mut list: Vec<compose::Existing> = compose::containers(api, &p.name)
        .await?
        .into_iter()
        .filter(|x| st.all || x.running())
        .filter(|x| services.is_empty() || services.contains(&x.service))
        .collect();
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let names: Vec<String> = list.into_iter().map(|x| x.name).collect();
    container::stats_of(c, st, &names).await
}

/// `docker attach`'s own flags, so compose's attach streams exactly as `berth attach` does.
#[derive(Debug, Parser)]
struct AttachLine {
    #[command(flatten)]
    a: container::AttachArgs,
}

/// `docker cp`'s own flags, so compose's cp copies exactly as `berth cp` does.
#[derive(Debug, Parser)]
struct CpLine {
    #[command(flatten)]
    a: container::CpArgs,
}

async fn run_oneoff(c: &Client, api: &Api<'_>, a: &ComposeArgs, r: &RunArgs) -> Result<()> {
    let service = &r.args[0];
    let p = project(a, std::slice::from_ref(service), false)?;
    let tty = !r.no_tty && !r.detach && stream::stdin_is_tty();
    let interactive = r.interactive && !r.detach;
    let entrypoint = match &r.entrypoint {
        Some(e) => {
            Some(compose::split_shell(e).map_err(|m| anyhow!("invalid --entrypoint {e:?}: {m}"))?)
        }
        None => None,
    };
    let opts = compose::RunOptions {
        command: r.args[1..].to_vec(),
        entrypoint,
        env: r.env.clone(),
        user: r.user.clone(),
        workdir: r.workdir.clone(),
        name: r.name.clone(),
        tty,
        interactive,
        remove: r.rm,
        no_deps: r.no_deps,
        service_ports: r.service_ports,
        labels: r.label.clone(),
        publish: r.publish.clone(),
        volumes: r.volume.clone(),
    };
    let id = compose::run(api, &p, service, &opts).await?;
    if r.detach {
        c.post(&format!("/containers/{id}/start")).await?;
        println!("{id}");
        return Ok(());
    }
    let hijack = c
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1",
                u8::from(interactive)
            ),
            None,
        )
        .await?;
    let condition = if r.rm { "removed" } else { "next-exit" };
    let how = container::Attached {
        tty,
        stdin: interactive,
        sig_proxy: true,
        detach_keys: stream::detach_keys(None).0,
    };
    container::attached_start(c, &id, hijack, how, condition).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Line {
        #[command(flatten)]
        a: ComposeArgs,
    }

    #[test]
    fn compose_command_lines_parse() {
        for line in [
            "compose -f a.yaml -f b.yaml -p demo up -d --build --force-recreate --no-deps --wait --remove-orphans --scale web=2 web",
            "compose down -v --rmi local",
            "compose ps -a --format json",
            "compose logs -f --tail 5 web db",
            "compose exec -T web sh -c ls",
            "compose run --rm -e A=1 web echo hi",
            "compose run -d --name x -p 127.0.0.1:8080:80 --publish 9000 -v ./d:/d --volume data:/data -w /d -u 1 --entrypoint sh web -c ls",
            "compose --env-file x.env --profile dev config --services",
            "compose top",
            "compose images -q",
            "compose kill -s SIGUSR1 web",
            "compose pause web",
            "compose unpause",
            "compose port --protocol udp --index 2 web 53",
            "compose ls -a -q --format json --filter name=demo",
            "compose version --short --format json",
            "compose create --build --force-recreate web",
            "compose wait web db",
            "compose scale --no-deps web=3 db=1",
            "compose events --json web",
            "compose up --abort-on-container-exit --exit-code-from web",
            "compose up --attach web --attach db --no-attach worker",
            "compose up --attach-dependencies web",
            "compose cp --index 2 -L web:/etc/hosts ./hosts",
            "compose cp -a ./dir web:/tmp/",
            "compose stats --no-stream --no-trunc --format json web db",
            "compose attach --no-stdin --sig-proxy=false --index 2 web",
        ] {
            let args: Vec<&str> = std::iter::once("x").chain(line.split(' ').skip(1)).collect();
            if let Err(e) = Line::try_parse_from(args) {
                panic!("{line}: {e}");
            }
        }
    }

    #[test]
    fn status_words() {
        assert_eq!(health_of("Up 3 seconds (healthy)"), "healthy");
        assert_eq!(exit_code_of("Exited (3) 2 seconds ago"), 3);
    }
}
