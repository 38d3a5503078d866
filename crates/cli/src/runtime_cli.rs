//! runc's command line, flag for flag, so that anything driving runc can drive berth: podman
//! (`--runtime`), containerd's shim (BinaryName), CRI-O, test harnesses. Like runc's CLI library,
//! flags may come before or after the container id. Exit codes, output formats and the wording
//! of errors follow runc 1.1 (the errors contain "error", and configuration errors "invalid
//! configuration"), since scripts and shims read them.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::{
    CheckpointOptions, Container, CreateOptions, CriuOptions, ExecOptions, RunOptions, Runtime,
    Status,
};
use clap::{Args, Parser, Subcommand};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, Process};

use crate::log;

#[derive(Debug, Parser)]
#[command(
    about = "berth's OCI runtime (runc-compatible command line)",
    disable_version_flag = true
)]
struct Cli {
    /// Directory for the containers' state.
    #[arg(long, global = true, default_value = "/run/berth/runtime")]
    root: PathBuf,
    /// File to write the runtime's log to.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the log file.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: log::Format,
    /// Log debug messages too.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported by berth).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility; berth decides rootless mode itself.
    #[arg(long, value_name = "true|false|auto")]
    rootless: Option<String>,
    /// Path of the criu binary (checkpoint, restore).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a default config.json (the bundle's specification).
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        /// Write a spec for a rootless container (user namespace, no network namespace).
        #[arg(long = "rootless", id = "spec_rootless")]
        rootless: bool,
    },
    /// Create a container: its process is set up and waits for `start`.
    Create {
        id: String,
        #[command(flatten)]
        opts: CreateFlags,
    },
    /// Start the user's process of a created container.
    Start { id: String },
    /// Create and start a container, and wait for it unless --detach.
    Run {
        id: String,
        #[command(flatten)]
        opts: CreateFlags,
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
        /// Do not reap the container's orphans (no child subreaper).
        #[arg(long)]
        no_subreaper: bool,
    },
    /// Print the container's state (runtime-spec JSON).
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init, or to all its processes.
    Kill {
        id: String,
        signal: Option<String>,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container's state and resources.
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Run a new process in a container.
    Exec(ExecFlags),
    /// List containers.
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show the processes of a container.
    Ps {
        id: String,
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's resource limits.
    Update(UpdateFlags),
    /// Display statistics (at an interval) and OOM notifications of a container.
    Events {
        id: String,
        /// The statistics interval (a Go duration: 5s, 100ms, 1m).
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Print the statistics once and exit.
        #[arg(long)]
        stats: bool,
    },
    /// Checkpoint a running container with criu.
    Checkpoint(CheckpointFlags),
    /// Restore a container from a checkpoint with criu.
    Restore(RestoreFlags),
    /// Print what this runtime supports (runtime-spec features document).
    Features,
}

#[derive(Debug, Args)]
struct CreateFlags {
    /// Path to the bundle (default: the current directory).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for a rootfs on a ramdisk).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for compatibility: berth does not create session keyrings.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N more descriptors (3 .. 3+N) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long, hide = true)]
    pidfd_socket: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ExecFlags {
    id: String,
    /// The command and its arguments (unless --process gives them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// A runtime-spec process.json to run.
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(short, long)]
    tty: bool,
    #[arg(short, long = "env")]
    env: Vec<String>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// UID[:GID]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (CAP_…) to the process's sets.
    #[arg(short, long = "cap")]
    cap: Vec<String>,
    #[arg(long)]
    no_new_privs: bool,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long)]
    process_label: Option<String>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long, hide = true)]
    pidfd_socket: Option<PathBuf>,
    /// Run the process even if the container is paused (it starts frozen).
    #[arg(long)]
    ignore_paused: bool,
    #[arg(long, hide = true)]
    cgroup: Option<String>,
}

#[derive(Debug, Args)]
struct UpdateFlags {
    id: String,
    /// A runtime-spec linux.resources JSON file ("-" for stdin).
    #[arg(short, long)]
    resources: Option<PathBuf>,
    #[arg(long)]
    blkio_weight: Option<u16>,
    #[arg(long)]
    cpu_period: Option<u64>,
    #[arg(long, allow_negative_numbers = true)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_share: Option<u64>,
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    #[arg(long, allow_negative_numbers = true)]
    cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Memory limit (e.g. 64m, 1g, or bytes; -1 for none).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    #[arg(long, hide = true, allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    #[arg(long, hide = true, allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    #[arg(long, hide = true)]
    l3_cache_schema: Option<String>,
    #[arg(long, hide = true)]
    mem_bw_schema: Option<String>,
}

/// The flags `checkpoint` and `restore` share.
#[derive(Debug, Args)]
struct CriuFlags {
    /// Where the images are (default: ./checkpoint).
    #[arg(long, default_value = "checkpoint")]
    image_path: PathBuf,
    #[arg(long)]
    work_path: Option<PathBuf>,
    #[arg(long)]
    tcp_established: bool,
    #[arg(long)]
    ext_unix_sk: bool,
    #[arg(long)]
    shell_job: bool,
    #[arg(long)]
    file_locks: bool,
    #[arg(long)]
    manage_cgroups_mode: Option<String>,
}

impl CriuFlags {
    fn options(self) -> CriuOptions {
        CriuOptions {
            image_path: self.image_path,
            work_path: self.work_path,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode,
        }
    }
}

#[derive(Debug, Args)]
struct CheckpointFlags {
    id: String,
    #[command(flatten)]
    criu: CriuFlags,
    #[arg(long)]
    parent_path: Option<PathBuf>,
    #[arg(long)]
    leave_running: bool,
    #[arg(long)]
    pre_dump: bool,
}

#[derive(Debug, Args)]
struct RestoreFlags {
    id: String,
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[command(flatten)]
    criu: CriuFlags,
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    no_subreaper: bool,
    #[arg(long)]
    no_pivot: bool,
}

/// runc's command line as clap sees it, for `berth help runtime`, completion and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the runtime command line; returns the process exit code.
pub fn main(program: &str, mut args: Vec<OsString>) -> i32 {
    if let Some(first) = args.first_mut() {
        *first = OsString::from(program);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    log::init(cli.log.clone(), cli.log_format, cli.debug);
    if cli.version {
        print_version(program);
        return 0;
    }
    let Some(command) = cli.command else {
        let _ = <Cli as clap::CommandFactory>::command()
            .bin_name(program)
            .print_help();
        return 0;
    };
    // runc's words: the failing command's name leads run's and create's errors, and exec's
    // errors exit 255 (what a shim tells from the process's own exit codes).
    let (prefix, code) = match &command {
        Command::Run { .. } => (Some(format!("{} run failed", short_name(program))), 1),
        Command::Create { .. } => (Some(format!("{} create failed", short_name(program))), 1),
        Command::Exec(_) => (Some("exec failed".to_owned()), 255),
        _ => (None, 1),
    };
    match dispatch(&cli.root, cli.systemd_cgroup, command) {
        Ok(code) => code,
        Err(e) => {
            let text = render(&e);
            match prefix {
                Some(p) => log::fatal(&format!("{p}: {text}")),
                None => log::fatal(&text),
            }
            code
        }
    }
}

/// clap's usage errors the way runc's CLI library ends: exit 1, or 3 for an unknown command
/// ("No help topic"); help and version requests print and exit 0.
fn usage_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        ErrorKind::InvalidSubcommand => {
            let name = e
                .get(clap::error::ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            log::fatal(&format!("No help topic for '{name}'"));
            3
        }
        _ => 1,
    }
}

/// `-v`/`--version` in runc's layout: name and version, then the spec version.
fn print_version(program: &str) {
    println!(
        "{} version {}\nspec: {}",
        short_name(program),
        env!("CARGO_PKG_VERSION"),
        oci_spec::runtime::VERSION
    );
}

/// The name a user called the runtime by (`berth-runtime`, `runc`, or `berth` for `berth
/// runtime`).
fn short_name(program: &str) -> &str {
    let first = program.split(' ').next().unwrap_or(program);
    Path::new(first)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(first)
}

/// The error and its causes, skipping a cause the message above it already quotes.
fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn dispatch(root: &Path, systemd_cgroup: bool, command: Command) -> Result<i32> {
    if systemd_cgroup {
        bail!(
            "--systemd-cgroup: berth has no systemd cgroup driver; it manages cgroupfs directly \
             (drop the flag, and give linux.cgroupsPath as a path such as /machine/ID)"
        );
    }
    let runtime = Runtime::new(root)
        .with_warnings(log::warn)
        .with_errors(log::error);
    log::debug(|| format!("command: {command:?}"));
    match command {
        Command::Spec { bundle, rootless } => spec(bundle.as_deref(), rootless),
        Command::Create { id, opts } => {
            berth_runtime::ensure_sealed_exe()?;
            runtime.create(&id, &create_options(opts))?;
            Ok(0)
        }
        Command::Start { id } => {
            runtime.load(&id)?.start()?;
            Ok(0)
        }
        Command::Run {
            id,
            opts,
            detach,
            keep,
            no_subreaper,
        } => {
            berth_runtime::ensure_sealed_exe()?;
            let run = RunOptions {
                detach,
                keep,
                no_subreaper,
            };
            Ok(runtime.run(&id, &create_options(opts), run)?)
        }
        Command::State { id } => {
            let container = runtime.load(&id)?;
            // runc prints it indented and without a newline at the end.
            let text = serde_json::to_string_pretty(&container.state_document())?;
            print_flush(&text);
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            let sig = berth_runtime::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            runtime.load(&id)?.kill(sig, all)?;
            Ok(0)
        }
        Command::Delete { id, force } => {
            match runtime.load(&id) {
                Ok(c) => c.delete(force)?,
                // runc: deleting a missing container with --force is not an error.
                Err(berth_runtime::Error::NotFound(_)) if force => {}
                Err(e) => return Err(e.into()),
            }
            Ok(0)
        }
        Command::Exec(flags) => exec(&runtime, flags),
        Command::List { format, quiet } => list(&runtime, &format, quiet),
        Command::Ps {
            id,
            format,
            ps_args,
        } => ps(&runtime.load(&id)?, &format, &ps_args),
        Command::Pause { id } => {
            runtime.load(&id)?.pause()?;
            Ok(0)
        }
        Command::Resume { id } => {
            runtime.load(&id)?.resume()?;
            Ok(0)
        }
        Command::Update(flags) => {
            let container = runtime.load(&flags.id)?;
            container.update(&resources_from(&flags)?)?;
            Ok(0)
        }
        Command::Events {
            id,
            interval,
            stats,
        } => events(&runtime.load(&id)?, &interval, stats),
        Command::Checkpoint(flags) => checkpoint(&runtime, flags),
        Command::Restore(flags) => restore(&runtime, flags),
        Command::Features => {
            let doc = berth_runtime::features(env!("CARGO_PKG_VERSION"));
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(0)
        }
    }
}

fn print_flush(text: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn create_options(f: CreateFlags) -> CreateOptions {
    CreateOptions {
        bundle: f.bundle,
        pid_file: f.pid_file,
        console_socket: f.console_socket,
        no_pivot: f.no_pivot,
        preserve_fds: f.preserve_fds,
    }
}

fn spec(bundle: Option<&Path>, rootless: bool) -> Result<i32> {
    let dir = bundle.unwrap_or(Path::new("."));
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let spec = if rootless {
        berth_runtime::rootless_spec(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        berth_runtime::default_spec()
    };
    let mut doc = serde_json::to_value(&spec)?;
    sort_capability_sets(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

/// Capability sets are sets in the spec's types: sort them so `spec` output is stable.
fn sort_capability_sets(doc: &mut serde_json::Value) {
    if let Some(caps) = doc
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
}

fn exec(runtime: &Runtime, f: ExecFlags) -> Result<i32> {
    berth_runtime::ensure_sealed_exe()?;
    let container = runtime.load(&f.id)?;
    let mut warn = |m: String| log::warn(&m);
    let process = match &f.process {
        Some(path) => berth_runtime::load_process_reporting(path, &mut warn)?,
        None => exec_process(&container, &f, &mut warn)?,
    };
    let opts = ExecOptions {
        pid_file: f.pid_file.clone(),
        console_socket: f.console_socket.clone(),
        detach: f.detach,
        preserve_fds: f.preserve_fds,
        ignore_paused: f.ignore_paused,
    };
    let code = container.exec(&process, &opts)?;
    Ok(if f.detach { 0 } else { code })
}

/// The process for `exec` without --process: the container's own process as the template, as
/// runc does, with the command line's overrides. Built as JSON and read like a process.json,
/// so `--cap` names take the same path as the spec's (`CAP_KILL`; an unknown name is warned
/// about and ignored, as runc does).
fn exec_process(
    container: &Container,
    f: &ExecFlags,
    warn: &mut dyn FnMut(String),
) -> Result<Process> {
    if f.command.is_empty() {
        bail!("exec: no command given (pass COMMAND [ARG...] after the container id, or --process FILE)");
    }
    let template = container
        .record()
        .config_process()
        .cloned()
        .unwrap_or_default();
    let mut p = serde_json::to_value(&template)?;
    p["args"] = serde_json::json!(f.command);
    p["terminal"] = serde_json::json!(f.tty);
    if let Some(o) = p.as_object_mut() {
        o.remove("consoleSize");
    }
    let mut env: Vec<String> = template.env().clone().unwrap_or_default();
    env.extend(f.env.iter().cloned());
    p["env"] = serde_json::json!(env);
    if let Some(cwd) = &f.cwd {
        p["cwd"] = serde_json::json!(cwd);
    }
    if let Some(user) = &f.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let bad = || anyhow!("--user {user:?}: expected UID[:GID] as numbers");
        let uid: u32 = uid.parse().map_err(|_| bad())?;
        let gid: u32 = match gid {
            Some(g) => g.parse().map_err(|_| bad())?,
            None => 0,
        };
        p["user"] = serde_json::json!({"uid": uid, "gid": gid});
    }
    if !f.additional_gids.is_empty() {
        p["user"]["additionalGids"] = serde_json::json!(f.additional_gids);
    }
    if !f.cap.is_empty() {
        for set in ["bounding", "effective", "permitted"] {
            let list = &mut p["capabilities"][set];
            if !list.is_array() {
                *list = serde_json::json!([]);
            }
            if let Some(list) = list.as_array_mut() {
                list.extend(f.cap.iter().map(|c| serde_json::json!(c)));
            }
        }
    }
    if f.no_new_privs {
        p["noNewPrivileges"] = serde_json::json!(true);
    }
    if let Some(profile) = &f.apparmor {
        p["apparmorProfile"] = serde_json::json!(profile);
    }
    if let Some(label) = &f.process_label {
        p["selinuxLabel"] = serde_json::json!(label);
    }
    let dir = std::env::temp_dir().join(format!("berth-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("process.json");
    std::fs::write(&file, serde_json::to_vec(&p)?)?;
    let process = berth_runtime::load_process_reporting(&file, warn);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(process?)
}

fn list(runtime: &Runtime, format: &str, quiet: bool) -> Result<i32> {
    let containers = runtime.list()?;
    if quiet {
        for c in &containers {
            println!("{}", c.id());
        }
        return Ok(0);
    }
    if format == "json" {
        let docs: Vec<_> = containers.iter().map(Container::state_document).collect();
        // runc: one line, no newline at the end.
        print_flush(&serde_json::to_string(&docs)?);
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = containers
        .iter()
        .map(|c| {
            let status = c.status();
            let r = c.record();
            [
                r.id.clone(),
                if status == Status::Stopped {
                    "0".into()
                } else {
                    r.pid.to_string()
                },
                status.to_string(),
                r.bundle.display().to_string(),
                r.created.clone(),
                r.owner.clone(),
            ]
        })
        .collect();
    print_table(
        &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        &rows,
    );
    Ok(0)
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{out}");
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn ps(container: &Container, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = container.pids()?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps(1)")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps output has no PID column"))?;
    println!("{header}");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}

/// `events`: JSON lines on stdout, as runc's encoder writes them.
fn events(container: &Container, interval: &str, stats: bool) -> Result<i32> {
    let ns = berth_build::duration::go_duration_ns(interval)
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| anyhow!("invalid value {interval:?} for flag -interval: not a duration"))?;
    let interval = Duration::from_nanos(ns as u64);
    let mut out = std::io::stdout();
    if stats {
        let event = container.stats()?;
        writeln!(out, "{}", serde_json::to_string(&event)?)?;
        return Ok(0);
    }
    container.events(interval, &mut |event| {
        let line = serde_json::to_string(event).unwrap_or_default();
        writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
    })?;
    Ok(0)
}

fn checkpoint(runtime: &Runtime, f: CheckpointFlags) -> Result<i32> {
    let container = runtime.load(&f.id)?;
    let opts = CheckpointOptions {
        criu: f.criu.options(),
        parent_path: f.parent_path,
        leave_running: f.leave_running,
        pre_dump: f.pre_dump,
    };
    container.checkpoint(&opts)?;
    Ok(0)
}

fn restore(runtime: &Runtime, f: RestoreFlags) -> Result<i32> {
    berth_runtime::ensure_sealed_exe()?;
    let create = CreateOptions {
        bundle: f.bundle,
        pid_file: f.pid_file,
        console_socket: f.console_socket,
        no_pivot: f.no_pivot,
        preserve_fds: 0,
    };
    runtime.restore(&f.id, &create, &f.criu.options())?;
    Ok(0)
}

fn resources_from(f: &UpdateFlags) -> Result<LinuxResources> {
    if let Some(path) = &f.resources {
        let mut text = String::new();
        if path == Path::new("-") {
            std::io::stdin().read_to_string(&mut text)?;
        } else {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
        }
        return serde_json::from_str(&text)
            .with_context(|| format!("parse resources {}", path.display()));
    }
    if f.kernel_memory.is_some() || f.kernel_memory_tcp.is_some() {
        log::warn("Kernel memory settings are ignored and will be removed");
    }
    if f.l3_cache_schema.is_some() || f.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema and --mem-bw-schema need Intel RDT, which berth does not support");
    }
    let mut r = LinuxResources::default();
    r.set_devices(None);
    let mut cpu = LinuxCpu::default();
    let mut cpu_set = false;
    if let Some(v) = f.cpu_period {
        cpu.set_period(Some(v));
        cpu_set = true;
    }
    if let Some(v) = f.cpu_quota {
        cpu.set_quota(Some(v));
        cpu_set = true;
    }
    if let Some(v) = f.cpu_share {
        cpu.set_shares(Some(v));
        cpu_set = true;
    }
    if let Some(v) = f.cpu_rt_period {
        cpu.set_realtime_period(Some(v));
        cpu_set = true;
    }
    if let Some(v) = f.cpu_rt_runtime {
        cpu.set_realtime_runtime(Some(v));
        cpu_set = true;
    }
    if let Some(v) = &f.cpuset_cpus {
        cpu.set_cpus(Some(v.clone()));
        cpu_set = true;
    }
    if let Some(v) = &f.cpuset_mems {
        cpu.set_mems(Some(v.clone()));
        cpu_set = true;
    }
    if cpu_set {
        r.set_cpu(Some(cpu));
    }
    let mut mem = LinuxMemory::default();
    let mut mem_set = false;
    if let Some(v) = &f.memory {
        mem.set_limit(Some(parse_bytes(v, "--memory")?));
        mem_set = true;
    }
    if let Some(v) = &f.memory_reservation {
        mem.set_reservation(Some(parse_bytes(v, "--memory-reservation")?));
        mem_set = true;
    }
    if let Some(v) = &f.memory_swap {
        mem.set_swap(Some(parse_bytes(v, "--memory-swap")?));
        mem_set = true;
    }
    if mem_set {
        r.set_memory(Some(mem));
    }
    if let Some(limit) = f.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        r.set_pids(Some(pids));
    }
    if let Some(w) = f.blkio_weight {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// "64m", "1G", "512k", "1048576" or "-1" (unlimited), as runc's --memory takes.
fn parse_bytes(value: &str, flag: &str) -> Result<i64> {
    if value == "-1" {
        return Ok(-1);
    }
    let v = value.trim().to_ascii_lowercase();
    let v = v.strip_suffix('b').unwrap_or(&v);
    let (digits, unit) = match v
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((i, _)) => v.split_at(i),
        None => (v, ""),
    };
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        _ => bail!("{flag} {value:?}: unknown unit {unit:?} (use b, k, m, g or t)"),
    };
    let n: f64 = digits
        .parse()
        .map_err(|_| anyhow!("{flag} {value:?}: not a size"))?;
    Ok((n * mult) as i64)
}

/// Whether the arguments given to a binary called `berth` are runc's: tools that resolve the
/// runtime's path before running it (containerd's shim, podman) call it by its real name
/// with runc's global flags (`--root`, `--log`, `--log-format`, `--systemd-cgroup`,
/// `--rootless`, `--criu`) before the verb, or with a verb only runc has.
pub fn is_runc_command_line(args: &[OsString]) -> bool {
    const GLOBALS: [&str; 6] = [
        "--root",
        "--log",
        "--log-format",
        "--systemd-cgroup",
        "--rootless",
        "--criu",
    ];
    const RUNC_ONLY_VERBS: [&str; 6] = ["state", "delete", "list", "spec", "features", "resume"];
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else {
            return false;
        };
        if !arg.starts_with('-') {
            return RUNC_ONLY_VERBS.contains(&arg);
        }
        let name = arg.split('=').next().unwrap_or(arg);
        if GLOBALS.contains(&name) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_runc() {
        assert_eq!(parse_bytes("64m", "--memory").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("1G", "--memory").ok(), Some(1 << 30));
        assert_eq!(parse_bytes("4096", "--memory").ok(), Some(4096));
        assert_eq!(parse_bytes("-1", "--memory").ok(), Some(-1));
        assert!(parse_bytes("12q", "--memory").is_err());
    }

    #[test]
    fn flags_may_follow_the_id() {
        let cli = Cli::try_parse_from([
            "berth-runtime",
            "create",
            "abc",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
        ])
        .expect("parse");
        match cli.command {
            Some(Command::Create { id, opts }) => {
                assert_eq!(id, "abc");
                assert_eq!(opts.bundle, PathBuf::from("/b"));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "berth-runtime",
            "--root",
            "/r",
            "exec",
            "-t",
            "abc",
            "sh",
            "-c",
            "echo -n x",
        ])
        .expect("parse");
        match cli.command {
            Some(Command::Exec(f)) => assert_eq!(f.command, ["sh", "-c", "echo -n x"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn negative_quotas_are_values_not_flags() {
        let cli = Cli::try_parse_from([
            "r",
            "update",
            "--cpu-quota",
            "-1",
            "--pids-limit",
            "-1",
            "c",
        ])
        .expect("parse");
        match cli.command {
            Some(Command::Update(f)) => {
                assert_eq!(f.cpu_quota, Some(-1));
                assert_eq!(f.pids_limit, Some(-1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn runc_command_lines_are_told_from_the_docker_cli() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        for runc in [
            &["berth", "--root", "/run/x", "create", "--bundle", "b", "id"][..],
            &["berth", "--log=/l", "--log-format", "json", "start", "id"],
            &["berth", "--debug", "--root", "/r", "kill", "id"],
            &["berth", "state", "id"],
            &["berth", "delete", "-f", "id"],
        ] {
            assert!(is_runc_command_line(&args(runc)), "{runc:?}");
        }
        for docker in [
            &["berth", "run", "--rm", "busybox"][..],
            &["berth", "--debug", "ps"],
            &["berth", "-H", "unix:///x", "exec", "c", "ls"],
            &["berth"],
        ] {
            assert!(!is_runc_command_line(&args(docker)), "{docker:?}");
        }
    }
}
