//! runc's command line, flag for flag, so that anything driving runc can drive berth: podman
//! (`--runtime`), containerd's shim (BinaryName), CRI-O, test harnesses. Like runc's CLI library,
//! flags may come before or after the container id.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::{Container, CreateOptions, ExecOptions, Runtime, Status};
use clap::{Args, Parser, Subcommand};
use oci_spec::runtime::{
    Capability, LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, Process, User,
};

use crate::log;

#[derive(Debug, Parser)]
#[command(
    about = "berth's OCI runtime (runc-compatible command line)",
    version,
    disable_help_subcommand = true
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
    /// Accepted for compatibility (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: Command,
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
        #[arg(long, hide = true)]
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
    #[arg(long, hide = true)]
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
    #[arg(long)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_share: Option<u64>,
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    #[arg(long)]
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
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    #[arg(long, hide = true)]
    kernel_memory: Option<String>,
    #[arg(long, hide = true)]
    l3_cache_schema: Option<String>,
    #[arg(long, hide = true)]
    mem_bw_schema: Option<String>,
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
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    log::init(cli.log.clone(), cli.log_format, cli.debug);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error(&render(&e));
            1
        }
    }
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

fn dispatch(cli: Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!(
            "--systemd-cgroup: berth has no systemd cgroup driver; it manages cgroupfs directly \
             (drop the flag, and give linux.cgroupsPath as a path such as /machine/ID)"
        );
    }
    let runtime = Runtime::new(&cli.root).with_warnings(log::warn);
    log::debug(|| format!("{:?}", cli.command));
    match cli.command {
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
            ..
        } => {
            berth_runtime::ensure_sealed_exe()?;
            if keep {
                let container = runtime.create(&id, &create_options(opts))?;
                container.start()?;
                return Ok(0);
            }
            Ok(runtime.run(&id, &create_options(opts), detach)?)
        }
        Command::State { id } => {
            let container = runtime.load(&id)?;
            let doc: serde_json::Value = serde_json::from_str(&container.state_document())?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
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
        Command::Features => {
            let doc = berth_runtime::features(env!("CARGO_PKG_VERSION"));
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(0)
        }
    }
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
    let process = match &f.process {
        Some(path) => berth_runtime::load_process(path)?,
        None => exec_process(&container, &f)?,
    };
    let opts = ExecOptions {
        pid_file: f.pid_file.clone(),
        console_socket: f.console_socket.clone(),
        detach: f.detach,
        preserve_fds: f.preserve_fds,
    };
    let code = container.exec(&process, &opts)?;
    Ok(if f.detach { 0 } else { code })
}

/// The process for `exec` without --process: the container's own process as the template, as
/// runc does, with the command line's overrides.
fn exec_process(container: &Container, f: &ExecFlags) -> Result<Process> {
    if f.command.is_empty() {
        bail!("exec: no command given (pass COMMAND [ARG...] after the container id, or --process FILE)");
    }
    let mut p = container
        .record()
        .config_process()
        .cloned()
        .unwrap_or_default();
    p.set_args(Some(f.command.clone()));
    p.set_terminal(Some(f.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(f.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &f.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &f.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let mut u = User::default();
        u.set_uid(
            uid.parse()
                .map_err(|_| anyhow!("--user {user:?}: expected UID[:GID] as numbers"))?,
        );
        u.set_gid(match gid {
            Some(g) => g
                .parse()
                .map_err(|_| anyhow!("--user {user:?}: expected UID[:GID] as numbers"))?,
            None => 0,
        });
        p.set_user(u);
    }
    if !f.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(f.additional_gids.clone()));
        p.set_user(u);
    }
    if !f.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &f.cap {
            let cap: Capability = name
                .parse()
                .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))?;
            let add = |s: &Option<std::collections::HashSet<Capability>>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, p2) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(p2);
        }
        p.set_capabilities(Some(caps));
    }
    if f.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &f.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &f.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
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
        let docs: Vec<serde_json::Value> = containers
            .iter()
            .map(|c| serde_json::from_str(&c.state_document()))
            .collect::<Result<_, _>>()?;
        println!("{}", serde_json::to_string(&docs)?);
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
    if f.kernel_memory.is_some() || f.l3_cache_schema.is_some() || f.mem_bw_schema.is_some() {
        log::warn("--kernel-memory, --l3-cache-schema and --mem-bw-schema are ignored");
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
            Command::Create { id, opts } => {
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
            Command::Exec(f) => assert_eq!(f.command, ["sh", "-c", "echo -n x"]),
            other => panic!("{other:?}"),
        }
    }
}
