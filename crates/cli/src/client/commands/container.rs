//! Container commands: run, create, start, stop, ps, logs, exec, attach, cp, stats, …

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgAction, Args, Subcommand};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{for_each, image, print_name, Prune};
use crate::client::flags::{self, RunFlags};
use crate::client::format::{self, Formatter};
use crate::client::http::{empty, enc, reader_body, with_query, Client, DaemonError};
use crate::client::stream::{self, RawTerminal};
use crate::client::units::{
    ago, api_timestamp, base64_decode, bytes_size, ellipsis, go_time_string, human_size_prec,
    short_id,
};
use crate::client::{exit_status, StatusError};

/// Container verbs reachable both at the top level and under `container`.
// Parsed once per process: the size of the run flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(Names),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(Names),
    /// Unpause all processes within one or more containers
    Unpause(Names),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(OneName),
}

/// `berth container …`.
// Parsed once per process: the size of the run flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Sub {
    #[command(flatten)]
    Common(Cmd),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
}

/// `run`/`create` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub f: RunFlags,
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Names {
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OneName {
    #[arg(value_name = "CONTAINER")]
    name: String,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", visible_alias = "time")]
    time: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    latest: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    #[arg(value_name = "CONTAINER")]
    name: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Username or UID
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        value_name = "CONTAINER COMMAND [ARG...]"
    )]
    args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set)]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    #[arg(value_name = "CONTAINER")]
    name: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    name: String,
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "[ps OPTIONS]"
    )]
    ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// The containers (in `berth compose stats`, the services)
    #[arg(value_name = "CONTAINER")]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(value_name = "CONTAINER:SRC_PATH|SRC_PATH|-")]
    src: String,
    #[arg(value_name = "CONTAINER:DEST_PATH|DEST_PATH|-")]
    dst: String,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    name: String,
    #[arg(value_name = "NEW_NAME")]
    new_name: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    res: UpdateFlags,
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

/// The resource flags `update` accepts.
#[derive(Debug, Args)]
pub struct UpdateFlags {
    #[arg(short = 'm', long, value_name = "bytes")]
    memory: Option<String>,
    #[arg(long = "memory-reservation", value_name = "bytes")]
    memory_reservation: Option<String>,
    #[arg(long = "memory-swap", value_name = "bytes")]
    memory_swap: Option<String>,
    #[arg(long, value_name = "decimal")]
    cpus: Option<String>,
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<i64>,
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    #[arg(long)]
    restart: Option<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    name: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    port: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    name: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author
    #[arg(short = 'a', long)]
    author: Option<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long)]
    change: Vec<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = ArgAction::Set)]
    pause: bool,
    #[arg(value_name = "CONTAINER")]
    name: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values
    #[arg(long)]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

/// Runs a container verb.
pub async fn run(c: &Client, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Run(a) => run_container(c, a, false).await,
        Cmd::Create(a) => run_container(c, a, true).await,
        Cmd::Start(a) => start(c, a).await,
        Cmd::Stop(a) => {
            let q = stop_query(&a);
            for_each(&a.names, |n| {
                let p = format!("/containers/{}/stop{q}", enc(&n));
                async move { c.post(&p).await.map(|_| None) }
            })
            .await
        }
        Cmd::Restart(a) => {
            let q = stop_query(&a);
            for_each(&a.names, |n| {
                let p = format!("/containers/{}/restart{q}", enc(&n));
                async move { c.post(&p).await.map(|_| None) }
            })
            .await
        }
        Cmd::Kill(a) => {
            let sig = a.signal.clone().unwrap_or_default();
            for_each(&a.names, |n| {
                let p = with_query(
                    &format!("/containers/{}/kill", enc(&n)),
                    &[("signal", sig.clone())],
                );
                async move { c.post(&p).await.map(|_| None) }
            })
            .await
        }
        Cmd::Rm(a) => {
            let q = format!("?force={}&v={}&link={}", a.force, a.volumes, a.link);
            for_each(&a.names, |n| {
                let p = format!("/containers/{}{q}", enc(&n));
                async move { c.call(Method::DELETE, &p, empty()).await.map(|_| None) }
            })
            .await
        }
        Cmd::Logs(a) => logs(c, a).await,
        Cmd::Exec(a) => exec(c, a).await,
        Cmd::Attach(a) => attach(c, a).await,
        Cmd::Wait(a) => {
            for_each(&a.names, |n| async move {
                let v = c
                    .post_json(&format!("/containers/{}/wait", enc(&n)), &Value::Null)
                    .await?;
                Ok(Some(v["StatusCode"].as_i64().unwrap_or(0).to_string()))
            })
            .await
        }
        Cmd::Top(a) => top(c, a).await,
        Cmd::Stats(a) => stats(c, a).await,
        Cmd::Cp(a) => cp(c, a).await,
        Cmd::Rename(a) => {
            c.post(&with_query(
                &format!("/containers/{}/rename", enc(&a.name)),
                &[("name", a.new_name)],
            ))
            .await?;
            Ok(())
        }
        Cmd::Pause(a) => {
            for_each(&a.names, |n| async move {
                c.post(&format!("/containers/{}/pause", enc(&n)))
                    .await
                    .map(|_| None)
            })
            .await
        }
        Cmd::Unpause(a) => {
            for_each(&a.names, |n| async move {
                c.post(&format!("/containers/{}/unpause", enc(&n)))
                    .await
                    .map(|_| None)
            })
            .await
        }
        Cmd::Update(a) => update(c, a).await,
        Cmd::Port(a) => port(c, a).await,
        Cmd::Export(a) => {
            let resp = c
                .stream(
                    Method::GET,
                    &format!("/containers/{}/export", enc(&a.name)),
                    empty(),
                    &[],
                )
                .await?;
            image::body_to_output(resp.into_body(), a.output.as_deref()).await
        }
        Cmd::Commit(a) => commit(c, a).await,
        Cmd::Diff(a) => {
            let v = c
                .get_json(&format!("/containers/{}/changes", enc(&a.name)))
                .await?;
            for ch in v.as_array().into_iter().flatten() {
                let kind = match ch["Kind"].as_i64() {
                    Some(1) => "A",
                    Some(2) => "D",
                    _ => "C",
                };
                println!("{kind} {}", ch["Path"].as_str().unwrap_or(""));
            }
            Ok(())
        }
    }
}

/// Runs a `container` subcommand.
pub async fn run_sub(c: &Client, s: Sub) -> Result<()> {
    match s {
        Sub::Common(cmd) => run(c, cmd).await,
        Sub::Ls(a) => ps(c, a).await,
        Sub::Prune(a) => {
            let prune = Prune {
                collection: "/containers",
                warning: "WARNING! This will remove all stopped containers.",
                deleted: ("ContainersDeleted", "Deleted Containers:"),
                reclaims: true,
            };
            prune.run(c, a.force, &a.filter, print_name).await
        }
        Sub::Inspect(a) => {
            super::system::inspect_kind(c, "container", &a.names, a.format.as_deref(), a.size).await
        }
    }
}

fn stop_query(a: &StopArgs) -> String {
    with_query(
        "",
        &[
            ("signal", a.signal.clone().unwrap_or_default()),
            ("t", a.time.map(|t| t.to_string()).unwrap_or_default()),
        ],
    )
}

/// A `run` error: docker prefixes it and exits 125.
fn run_error(e: anyhow::Error, verb: &str) -> anyhow::Error {
    if e.downcast_ref::<StatusError>().is_some() {
        return e;
    }
    anyhow::Error::new(StatusError {
        code: 125,
        message: Some(format!(
            "berth: {e}\n\nRun 'berth {verb} --help' for more information"
        )),
    })
}

/// docker's exit status for a failed start: 127 when the command was not found, 126 when
/// it could not be run, 125 otherwise.
pub fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

async fn create(c: &Client, f: &RunFlags, image_ref: &str, body: &Value) -> Result<String> {
    let path = with_query(
        "/containers/create",
        &[
            ("name", f.name.clone().unwrap_or_default()),
            ("platform", f.platform.clone().unwrap_or_default()),
        ],
    );
    if f.pull == "always" {
        image::pull_image(c, image_ref, f.platform.as_deref(), true, f.quiet).await?;
    }
    let v = match c.post_json(&path, body).await {
        Ok(v) => v,
        Err(e) => {
            let missing = e.downcast_ref::<DaemonError>().is_some_and(|d| {
                d.status == hyper::StatusCode::NOT_FOUND && d.message.contains("No such image")
            });
            if !missing || f.pull == "never" {
                return Err(e);
            }
            eprintln!(
                "Unable to find image '{}' locally",
                image::with_latest(image_ref)
            );
            image::pull_image(c, image_ref, f.platform.as_deref(), true, f.quiet).await?;
            c.post_json(&path, body).await?
        }
    };
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    let id = v["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("the daemon answered no container id"))?;
    if let Some(file) = &f.cidfile {
        std::fs::write(file, id)
            .with_context(|| format!("writing the container ID file {file}"))?;
    }
    Ok(id.to_string())
}

/// Registers a wait before the container starts; the answer carries the exit status.
fn wait_for_exit(
    c: &Client,
    id: &str,
    condition: &str,
) -> (oneshot::Receiver<()>, oneshot::Receiver<Result<i32>>) {
    let (htx, hrx) = oneshot::channel();
    let (tx, rx) = oneshot::channel();
    let c = c.clone();
    let path = format!("/containers/{id}/wait?condition={condition}");
    tokio::spawn(async move {
        let result = async {
            let resp = c.stream(Method::POST, &path, empty(), &[]).await;
            let _ = htx.send(());
            let body = resp?.into_body().collect().await?.to_bytes();
            let v: Value = serde_json::from_slice(&body).context("decoding the wait answer")?;
            if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
                bail!("{m}");
            }
            Ok(i32::try_from(v["StatusCode"].as_i64().unwrap_or(0)).unwrap_or(1))
        }
        .await;
        let _ = tx.send(result);
    });
    (hrx, rx)
}

async fn run_container(c: &Client, a: RunArgs, create_only: bool) -> Result<()> {
    let verb = if create_only { "create" } else { "run" };
    let image_ref = a.args[0].clone();
    let f = &a.f;
    let console = if f.tty { stream::terminal_size() } else { None };
    let body =
        flags::create_body(f, &image_ref, &a.args[1..], console).map_err(|e| run_error(e, verb))?;
    let id = create(c, f, &image_ref, &body)
        .await
        .map_err(|e| run_error(e, verb))?;
    if create_only {
        println!("{id}");
        return Ok(());
    }
    if f.detach {
        if let Err(e) = c.post(&format!("/containers/{id}/start")).await {
            let code = start_error_code(&e.to_string());
            return Err(anyhow::Error::new(StatusError {
                code,
                message: Some(format!("berth: {e}")),
            }));
        }
        println!("{id}");
        return Ok(());
    }
    let attach_stdin = body["AttachStdin"].as_bool().unwrap_or(false);
    let keys = stream::detach_keys(f.detach_keys.as_deref());
    let hijack = c
        .hijack(
            &attach_path(
                &id,
                attach_stdin,
                body["AttachStdout"].as_bool().unwrap_or(true),
                body["AttachStderr"].as_bool().unwrap_or(true),
                keys.1.as_deref(),
            ),
            None,
        )
        .await
        .map_err(|e| run_error(e, verb))?;
    let condition = if f.rm { "removed" } else { "next-exit" };
    let how = Attached {
        tty: f.tty,
        stdin: attach_stdin,
        sig_proxy: f.sig_proxy,
        detach_keys: keys.0,
    };
    attached_start(c, &id, hijack, how, condition).await
}

/// The docker CLI's answer to the detach keys in `attach` and `exec` (an error it prints,
/// status 1); `run` and `start` end quietly with 0.
fn detached() -> anyhow::Error {
    anyhow::Error::new(StatusError {
        code: 1,
        message: Some("read escape sequence".into()),
    })
}

/// `POST /containers/{id}/attach` with its streams and the detach keys (none: the daemon's
/// default).
fn attach_path(id: &str, stdin: bool, stdout: bool, stderr: bool, keys: Option<&str>) -> String {
    let mut q = vec![
        ("stream", "1".to_owned()),
        ("stdin", u8::from(stdin).to_string()),
        ("stdout", u8::from(stdout).to_string()),
        ("stderr", u8::from(stderr).to_string()),
    ];
    if let Some(k) = keys {
        q.push(("detachKeys", k.to_owned()));
    }
    with_query(&format!("/containers/{id}/attach"), &q)
}

/// How a client is attached to a container it starts.
#[derive(Debug, Clone)]
pub(crate) struct Attached {
    pub tty: bool,
    pub stdin: bool,
    pub sig_proxy: bool,
    pub detach_keys: Vec<u8>,
}

/// The common end of `run` and `start -a`: wait registered, start, stream, exit status.
pub(crate) async fn attached_start(
    c: &Client,
    id: &str,
    hijack: crate::client::http::Hijacked,
    how: Attached,
    condition: &str,
) -> Result<()> {
    let Attached {
        tty,
        stdin,
        sig_proxy,
        detach_keys,
    } = how;
    let (registered, status) = wait_for_exit(c, id, condition);
    // The daemon answers the wait's headers once it is registered (as dockerd does); a
    // daemon that holds them back still gets a start after a short grace.
    let _ = tokio::time::timeout(Duration::from_secs(2), registered).await;
    if let Err(e) = c.post(&format!("/containers/{id}/start")).await {
        let code = start_error_code(&e.to_string());
        return Err(anyhow::Error::new(StatusError {
            code,
            message: Some(format!("berth: {e}")),
        }));
    }
    let _raw = (tty && stdin && stream::stdin_is_tty()).then(RawTerminal::enter);
    if tty {
        stream::track_resize(c, format!("/containers/{id}/resize"));
    } else if sig_proxy {
        stream::proxy_signals(c, id);
    }
    let pumped = stream::pump(hijack, tty, stdin, &detach_keys).await?;
    drop(_raw);
    if pumped == stream::Pumped::Detached {
        return Ok(());
    }
    let code = match status.await {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            return Err(anyhow::Error::new(StatusError {
                code: 125,
                message: Some(format!("berth: {e}")),
            }))
        }
        Err(_) => 125,
    };
    if code != 0 {
        return Err(exit_status(code));
    }
    Ok(())
}

async fn start(c: &Client, a: StartArgs) -> Result<()> {
    if a.attach || a.interactive {
        if a.names.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let name = &a.names[0];
        let info = c
            .get_json(&format!("/containers/{}/json", enc(name)))
            .await?;
        let id = info["Id"].as_str().unwrap_or(name).to_string();
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        let keys = stream::detach_keys(a.detach_keys.as_deref());
        let hijack = c
            .hijack(
                &attach_path(&id, stdin, true, true, keys.1.as_deref()),
                None,
            )
            .await?;
        let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
        let how = Attached {
            tty,
            stdin,
            sig_proxy: true,
            detach_keys: keys.0,
        };
        return attached_start(
            c,
            &id,
            hijack,
            how,
            if auto_remove { "removed" } else { "next-exit" },
        )
        .await;
    }
    for_each(&a.names, |n| async move {
        c.post(&format!("/containers/{}/start", enc(&n)))
            .await
            .map(|_| None)
    })
    .await
}

async fn logs(c: &Client, a: LogsArgs) -> Result<()> {
    let info = c
        .get_json(&format!("/containers/{}/json", enc(&a.name)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let since = api_timestamp(a.since.as_deref().unwrap_or_default())?;
    let until = api_timestamp(a.until.as_deref().unwrap_or_default())?;
    let path = with_query(
        &format!("/containers/{}/logs", enc(&a.name)),
        &[
            ("stdout", "1".into()),
            ("stderr", "1".into()),
            ("follow", if a.follow { "1".into() } else { String::new() }),
            ("tail", a.tail),
            ("since", since),
            ("until", until),
            (
                "timestamps",
                if a.timestamps {
                    "1".into()
                } else {
                    String::new()
                },
            ),
            (
                "details",
                if a.details { "1".into() } else { String::new() },
            ),
        ],
    );
    let resp = c.stream(Method::GET, &path, empty(), &[]).await?;
    stream::copy_body(resp.into_body(), tty).await
}

pub(crate) async fn exec(c: &Client, a: ExecArgs) -> Result<()> {
    let container = &a.args[0];
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(
            std::fs::read_to_string(f)
                .with_context(|| format!("open {f}"))?
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    env.extend(a.env.iter().cloned());
    let console = if a.tty { stream::terminal_size() } else { None };
    let keys = stream::detach_keys(a.detach_keys.as_deref());
    let body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "ConsoleSize": console.map(|(h, w)| json!([h, w])).unwrap_or(Value::Null),
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "DetachKeys": keys.1.clone().unwrap_or_default(),
        "Env": env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.args[1..],
    });
    let v = c
        .post_json(&format!("/containers/{}/exec", enc(container)), &body)
        .await?;
    let exec_id = v["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("the daemon answered no exec id"))?
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty, "ConsoleSize": body["ConsoleSize"]});
    if a.detach {
        c.post_json(&format!("/exec/{exec_id}/start"), &start)
            .await?;
        return Ok(());
    }
    let hijack = c
        .hijack(&format!("/exec/{exec_id}/start"), Some(&start))
        .await?;
    let raw = (a.tty && a.interactive && stream::stdin_is_tty()).then(RawTerminal::enter);
    if a.tty {
        stream::track_resize(c, format!("/exec/{exec_id}/resize"));
    }
    let pumped = stream::pump(hijack, a.tty, a.interactive, &keys.0).await?;
    drop(raw);
    if pumped == stream::Pumped::Detached {
        return Err(detached());
    }
    let v = c.get_json(&format!("/exec/{exec_id}/json")).await?;
    let code = i32::try_from(v["ExitCode"].as_i64().unwrap_or(0)).unwrap_or(1);
    if code != 0 {
        return Err(exit_status(code));
    }
    Ok(())
}

pub(crate) async fn attach(c: &Client, a: AttachArgs) -> Result<()> {
    let info = c
        .get_json(&format!("/containers/{}/json", enc(&a.name)))
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let id = info["Id"].as_str().unwrap_or(&a.name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = stream::detach_keys(a.detach_keys.as_deref());
    let hijack = c
        .hijack(
            &attach_path(&id, stdin, true, true, keys.1.as_deref()),
            None,
        )
        .await?;
    let raw = (tty && stdin && stream::stdin_is_tty()).then(RawTerminal::enter);
    if tty {
        stream::track_resize(c, format!("/containers/{id}/resize"));
    } else if a.sig_proxy {
        stream::proxy_signals(c, &id);
    }
    let pumped = stream::pump(hijack, tty, stdin, &keys.0).await?;
    drop(raw);
    if pumped == stream::Pumped::Detached {
        return Err(detached());
    }
    let v = c
        .post_json(&format!("/containers/{id}/wait"), &Value::Null)
        .await?;
    let code = i32::try_from(v["StatusCode"].as_i64().unwrap_or(0)).unwrap_or(1);
    if code != 0 {
        return Err(exit_status(code));
    }
    Ok(())
}

const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// docker's `DisplayablePorts`: published ports as `0.0.0.0:8080->80/tcp`, others as
/// `80/tcp`, sorted.
pub fn display_ports(ports: &[Value]) -> String {
    let mut out: Vec<(String, u64, String)> = Vec::new();
    for p in ports {
        let private = p["PrivatePort"].as_u64().unwrap_or(0);
        let proto = p["Type"].as_str().unwrap_or("tcp");
        let s = match (
            p["IP"].as_str().filter(|s| !s.is_empty()),
            p["PublicPort"].as_u64().filter(|p| *p > 0),
        ) {
            (ip, Some(public)) => {
                let ip = ip.unwrap_or("0.0.0.0");
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("{host}:{public}->{private}/{proto}")
            }
            _ => format!("{private}/{proto}"),
        };
        out.push((p["IP"].as_str().unwrap_or("").to_string(), private, s));
    }
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out.dedup_by(|a, b| a.2 == b.2);
    out.into_iter().map(|x| x.2).collect::<Vec<_>>().join(", ")
}

fn labels_string(l: &Value) -> String {
    let m: BTreeMap<String, String> = l
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One `/containers/json` entry as docker's ps formatter sees it.
pub fn ps_row(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let mut image = c["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        image = "<no image>".into();
    } else if trunc {
        let image_id = c["ImageID"].as_str().unwrap_or("");
        if short_id(image_id) == short_id(&image) && image.starts_with("sha256:") {
            image = short_id(&image);
        } else if let Some((name, _)) = image.split_once('@') {
            image = name.to_string();
        }
    }
    let command = c["Command"].as_str().unwrap_or("");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let created = c["Created"].as_i64().unwrap_or(0);
    let size = match (c["SizeRw"].as_f64(), c["SizeRootFs"].as_f64()) {
        (None, None) => String::new(),
        (rw, virt) => {
            let mut s = human_size_prec(rw.unwrap_or(0.0), 3);
            if let Some(v) = virt.filter(|v| *v > 0.0) {
                s.push_str(&format!(" (virtual {})", human_size_prec(v, 3)));
            }
            s
        }
    };
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let n = m["Name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("");
            if trunc {
                ellipsis(n, 15)
            } else {
                n.to_string()
            }
        })
        .collect();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Image": image,
        "Command": format!("{command:?}"),
        "CreatedAt": go_time_string(created),
        "RunningFor": ago(created),
        "Ports": display_ports(c["Ports"].as_array().map_or(&[][..], |v| v.as_slice())),
        "State": c["State"],
        "Status": c["Status"],
        "Size": size,
        "Names": names.join(","),
        "Labels": labels_string(&c["Labels"]),
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "__labels": c["Labels"],
    })
}

/// `ps`.
pub async fn ps(c: &Client, a: PsArgs) -> Result<()> {
    let last = if a.latest { 1 } else { a.last };
    let mut q = vec![
        (
            "all",
            if a.all {
                "1".to_string()
            } else {
                String::new()
            },
        ),
        ("size", if a.size { "1".into() } else { String::new() }),
        (
            "limit",
            if last > 0 {
                last.to_string()
            } else {
                String::new()
            },
        ),
    ];
    let f = super::filters_json(&a.filter);
    q.push(("filters", f));
    let list = c.get_json(&with_query("/containers/json", &q)).await?;
    let list = list.as_array().cloned().unwrap_or_default();
    if a.quiet {
        for ct in &list {
            let id = ct["Id"].as_str().unwrap_or("");
            println!(
                "{}",
                if a.no_trunc {
                    id.to_string()
                } else {
                    short_id(id)
                }
            );
        }
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|ct| ps_row(ct, !a.no_trunc)).collect();
    let format = match a.format {
        Some(f) if !f.is_empty() && f != "table" => f,
        _ => {
            let mut f = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string();
            if a.size {
                f.push_str("\t{{.Size}}");
            }
            f
        }
    };
    print!(
        "{}",
        Formatter {
            format,
            headers: PS_HEADERS
        }
        .render(&rows)?
    );
    Ok(())
}

async fn top(c: &Client, a: TopArgs) -> Result<()> {
    let path = with_query(
        &format!("/containers/{}/top", enc(&a.name)),
        &[("ps_args", a.ps_args.join(" "))],
    );
    let v = c.get_json(&path).await?;
    print!("{}", top_table(&v));
    Ok(())
}

/// `GET /containers/{id}/top`'s answer as docker's table.
pub fn top_table(v: &Value) -> String {
    let mut out = String::new();
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    out.push_str(&titles.join("\t"));
    out.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    format::tabwrite(&out)
}

const STATS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// One stats sample as docker's stats formatter shows it (CPU % as docker computes it).
pub fn stats_row(s: &Value, container: &str, trunc: bool) -> Value {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu_delta = f(&s["cpu_stats"]["cpu_usage"]["total_usage"])
        - f(&s["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta =
        f(&s["cpu_stats"]["system_cpu_usage"]) - f(&s["precpu_stats"]["system_cpu_usage"]);
    let mut online = f(&s["cpu_stats"]["online_cpus"]);
    if online == 0.0 {
        online = s["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64;
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let usage = f(&s["memory_stats"]["usage"]);
    let st = &s["memory_stats"]["stats"];
    // cgroup v1 reports total_inactive_file, v2 inactive_file: both are page cache.
    let cache = st["total_inactive_file"]
        .as_f64()
        .or(st["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let mem = if cache < usage { usage - cache } else { usage };
    let limit = f(&s["memory_stats"]["limit"]);
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.values())
    {
        rx += f(&n["rx_bytes"]);
        tx += f(&n["tx_bytes"]);
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_lowercase).as_deref() {
            Some("read") => rd += f(&e["value"]),
            Some("write") => wr += f(&e["value"]),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or(container);
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Container": container,
        "Name": s["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3)),
        "BlockIO": format!("{} / {}", human_size_prec(rd, 3), human_size_prec(wr, 3)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

async fn stats(c: &Client, a: StatsArgs) -> Result<()> {
    let names: Vec<String> = if a.names.is_empty() {
        let list = c
            .get_json(&format!(
                "/containers/json{}",
                if a.all { "?all=1" } else { "" }
            ))
            .await?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(String::from))
            .collect()
    } else {
        a.names.clone()
    };
    stats_of(c, &a, &names).await
}

/// `stats` of the containers `names` (ids or names), as `berth stats` shows them; `berth
/// compose stats` passes its project's containers.
pub(crate) async fn stats_of(c: &Client, a: &StatsArgs, names: &[String]) -> Result<()> {
    let format = a.format.clone().unwrap_or_else(|| {
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}".into()
    });
    let fmt = Formatter {
        format,
        headers: STATS_HEADERS,
    };
    if a.no_stream {
        let mut rows = Vec::new();
        for n in names {
            let v = c
                .get_json(&format!("/containers/{}/stats?stream=false", enc(n)))
                .await?;
            rows.push(stats_row(&v, n, !a.no_trunc));
        }
        print!("{}", fmt.render(&rows)?);
        return Ok(());
    }
    let latest = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, Value>::new()));
    for n in names {
        let resp = c
            .stream(
                Method::GET,
                &format!("/containers/{}/stats?stream=true", enc(n)),
                empty(),
                &[],
            )
            .await?;
        let latest = latest.clone();
        let n = n.clone();
        let trunc = !a.no_trunc;
        tokio::spawn(async move {
            let _ = crate::client::http::each_json(resp.into_body(), |v| {
                if let Ok(mut m) = latest.lock() {
                    m.insert(n.clone(), stats_row(&v, &n, trunc));
                }
                Ok(true)
            })
            .await;
        });
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let rows: Vec<Value> = latest
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        let text = fmt.render(&rows)?;
        print!("\x1b[2J\x1b[H{text}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

/// `CONTAINER:PATH` → (container, path).
pub(crate) fn split_cp_arg(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return None;
    }
    s.split_once(':')
}

pub(crate) async fn cp(c: &Client, a: CpArgs) -> Result<()> {
    match (split_cp_arg(&a.src), split_cp_arg(&a.dst)) {
        (Some((ctr, path)), None) => {
            let resp = c
                .stream(Method::GET, &with_query(&format!("/containers/{}/archive", enc(ctr)), &[("path", path.into())]), empty(), &[])
                .await?;
            if a.dst == "-" {
                return image::body_to_output(resp.into_body(), None).await;
            }
            let tmp = tempfile_path();
            image::body_to_output(resp.into_body(), Some(&tmp)).await?;
            let result = extract_into(&tmp, std::path::Path::new(&a.dst));
            let _ = std::fs::remove_file(&tmp);
            result
        }
        (None, Some((ctr, path))) => {
            let archive = |p: &str| with_query(&format!("/containers/{}/archive", enc(ctr)), &[("path", p.into())]);
            if a.src == "-" {
                c.call_with(Method::PUT, &archive(path), reader_body(tokio::io::stdin()), &[("Content-Type", "application/x-tar".into())])
                    .await?;
                return Ok(());
            }
            // Where does it land? An existing directory receives the source under its own
            // name; otherwise the source is renamed to the destination's last component.
            let stat = c.call(Method::HEAD, &archive(path), empty()).await;
            let dst_is_dir = match &stat {
                Ok(r) => r.status.is_success() && path_stat_is_dir(c, ctr, path).await,
                Err(_) => false,
            };
            let src = std::path::Path::new(&a.src);
            let src_name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into());
            let (target_dir, name) = if dst_is_dir || path.ends_with('/') {
                (path.to_string(), src_name)
            } else {
                let p = std::path::Path::new(path);
                (
                    p.parent().map(|d| d.to_string_lossy().into_owned()).filter(|d| !d.is_empty()).unwrap_or_else(|| "/".into()),
                    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(src_name),
                )
            };
            let mut builder = tar::Builder::new(Vec::new());
            builder.follow_symlinks(a.follow_link);
            if src.is_dir() {
                builder.append_dir_all(&name, src).with_context(|| format!("reading {}", src.display()))?;
            } else {
                builder.append_path_with_name(src, &name).with_context(|| format!("reading {}", src.display()))?;
            }
            let data = builder.into_inner()?;
            c.call_with(
                Method::PUT,
                &archive(&target_dir),
                crate::client::http::bytes_body(data),
                &[("Content-Type", "application/x-tar".into())],
            )
            .await?;
            Ok(())
        }
        _ => bail!("copying between containers is not supported; one of the paths must be CONTAINER:PATH, the other local"),
    }
}

async fn path_stat_is_dir(c: &Client, ctr: &str, path: &str) -> bool {
    let p = with_query(
        &format!("/containers/{}/archive", enc(ctr)),
        &[("path", path.into())],
    );
    let Ok(resp) = c.stream(Method::HEAD, &p, empty(), &[]).await else {
        return false;
    };
    resp.headers()
        .get("X-Docker-Container-Path-Stat")
        .and_then(|h| h.to_str().ok())
        .and_then(base64_decode)
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["mode"].as_u64())
        .is_some_and(|m| m & (1 << 31) != 0)
}

fn tempfile_path() -> String {
    format!("/tmp/.berth-cp-{}.tar", std::process::id())
}

/// Unpacks a container archive at `dst`: into it when it is a directory, otherwise as `dst`
/// itself (the archive's top entry renamed).
fn extract_into(tar_path: &str, dst: &std::path::Path) -> Result<()> {
    let file = std::fs::File::open(tar_path)?;
    let mut ar = tar::Archive::new(file);
    ar.set_preserve_permissions(true);
    let into_dir = dst.is_dir();
    let parent = dst
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = if into_dir {
            dst.join(&path)
        } else {
            let mut comps = path.components();
            comps.next();
            let rest = comps.as_path();
            let base = parent.join(dst.file_name().unwrap_or_default());
            if rest.as_os_str().is_empty() {
                base
            } else {
                base.join(rest)
            }
        };
        // unpack_in refuses paths escaping the directory; here the target is ours, so
        // guard the same way before unpacking.
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            bail!(
                "refusing archive entry {} that escapes the destination",
                path.display()
            );
        }
        if let Some(p) = rel.parent() {
            std::fs::create_dir_all(p)?;
        }
        entry
            .unpack(&rel)
            .with_context(|| format!("writing {}", rel.display()))?;
    }
    Ok(())
}

async fn update(c: &Client, a: UpdateArgs) -> Result<()> {
    let r = &a.res;
    let f = RunFlags {
        memory: r.memory.clone(),
        memory_reservation: r.memory_reservation.clone(),
        memory_swap: r.memory_swap.clone(),
        cpus: r.cpus.clone(),
        cpu_shares: r.cpu_shares,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        pids_limit: r.pids_limit,
        blkio_weight: r.blkio_weight,
        ..RunFlags::default()
    };
    let mut body = serde_json::Map::new();
    flags::resources(&f, &mut body)?;
    if let Some(p) = &r.restart {
        body.insert("RestartPolicy".into(), flags::restart_policy(p)?);
    }
    let body = Value::Object(body);
    for_each(&a.names, |n| {
        let body = body.clone();
        async move {
            let v = c
                .post_json(&format!("/containers/{}/update", enc(&n)), &body)
                .await?;
            for w in v["Warnings"].as_array().into_iter().flatten() {
                eprintln!("{}", w.as_str().unwrap_or(""));
            }
            Ok(None)
        }
    })
    .await
}

async fn port(c: &Client, a: PortArgs) -> Result<()> {
    let info = c
        .get_json(&format!("/containers/{}/json", enc(&a.name)))
        .await?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let want = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        k.split('/')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    });
    let mut found = false;
    for k in keys {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in ports[k].as_array().into_iter().flatten() {
            found = true;
            let ip = b["HostIp"].as_str().unwrap_or("");
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            let hp = b["HostPort"].as_str().unwrap_or("");
            if want.is_some() {
                println!("{ip}:{hp}");
            } else {
                println!("{k} -> {ip}:{hp}");
            }
        }
    }
    if let (Some(w), false) = (want, found) {
        bail!("No public port '{w}' published for {}", a.name);
    }
    Ok(())
}

async fn commit(c: &Client, a: CommitArgs) -> Result<()> {
    let (repo, tag) = match &a.reference {
        Some(r) => {
            let (n, t, _) = super::split_ref(r);
            (n, t.unwrap_or_default())
        }
        None => (String::new(), String::new()),
    };
    let mut q = vec![
        ("container", a.name.clone()),
        ("repo", repo),
        ("tag", tag),
        ("author", a.author.unwrap_or_default()),
        ("comment", a.message.unwrap_or_default()),
        ("pause", a.pause.to_string()),
    ];
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let v = c.post_json(&with_query("/commit", &q), &json!({})).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_truncate_like_docker() {
        let now = crate::client::units::now_secs() as i64;
        let c = json!({
            "Id": "4f66ad9a0b2e2f0b0e5b4b8a5b0f1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b",
            "Names": ["/web", "/other/alias"],
            "Image": "nginx@sha256:abcdef",
            "ImageID": "sha256:1111",
            "Command": "/docker-entrypoint.sh nginx -g 'daemon off;'",
            "Created": now - 90,
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 443, "Type": "tcp"}
            ],
            "Labels": {"b": "2", "a": "1"},
            "State": "running",
            "Status": "Up 3 seconds",
            "NetworkSettings": {"Networks": {"bridge": {}}},
            "Mounts": []
        });
        let r = ps_row(&c, true);
        assert_eq!(r["ID"], "4f66ad9a0b2e");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Image"], "nginx");
        assert_eq!(r["Command"], "\"/docker-entrypoint.…\"");
        assert_eq!(r["RunningFor"], "About a minute ago");
        assert_eq!(
            r["Ports"],
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp"
        );
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Networks"], "bridge");
        let out = Formatter {
            format: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".into(),
            headers: PS_HEADERS,
        }
        .render(&[r])
        .unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            "CONTAINER ID   IMAGE     COMMAND                  CREATED              STATUS         PORTS                                              NAMES"
        );
        assert_eq!(
            lines.next().unwrap(),
            "4f66ad9a0b2e   nginx     \"/docker-entrypoint.…\"   About a minute ago   Up 3 seconds   0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp   web"
        );
        let full = ps_row(&c, false);
        assert_eq!(full["Names"], "web,other/alias");
        assert_eq!(full["Image"], "nginx@sha256:abcdef");
        let label = crate::client::format::Template::parse(r#"{{.Label "a"}}"#)
            .unwrap()
            .execute(&full)
            .unwrap();
        assert_eq!(label, "1");
    }

    #[test]
    fn stats_compute_cpu_like_docker() {
        let s = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 200_000_000u64}, "system_cpu_usage": 2_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000u64}, "system_cpu_usage": 1_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"inactive_file": 5_242_880u64}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "Write", "value": 0}]},
            "pids_stats": {"current": 3}
        });
        let r = stats_row(&s, "web", true);
        assert_eq!(r["CPUPerc"], "20.00%");
        assert_eq!(r["MemUsage"], "5MiB / 100MiB");
        assert_eq!(r["MemPerc"], "5.00%");
        assert_eq!(r["NetIO"], "1kB / 2kB");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["ID"], "0123456789ab");
    }

    #[test]
    fn start_errors_map_to_docker_codes() {
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("exec /etc: permission denied"), 126);
        assert_eq!(start_error_code("something else"), 125);
    }
}
