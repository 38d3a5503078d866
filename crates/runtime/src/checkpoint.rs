//! `checkpoint` and `restore` through CRIU (the `criu` program, as Debian ships it): the
//! container's process tree is dumped to image files and later restored into a new container
//! with the same id, bundle and cgroup.
//!
//! berth drives criu's command line rather than its RPC service (`criu swrk`, protobuf): the
//! options map one to one and no protobuf dependency is needed. The container's bind mounts are
//! declared external (`--external mnt[DEST]:DEST` at dump, `--ext-mount-map DEST:SOURCE` at
//! restore), its cgroups managed by criu, the standard descriptors' targets recorded in
//! `descriptors.json` as runc records them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::container::{Container, CreateOptions, Runtime};
use crate::error::{Error, Result};
use crate::spec::Bundle;
use crate::state::{self, ContainerState, Status};

/// What `checkpoint` and `restore` share (runc's flag names).
#[derive(Debug, Default, Clone)]
pub struct CriuOptions {
    /// Where the images are (runc's `--image-path`, default `./checkpoint`).
    pub image_path: PathBuf,
    /// Where criu's log and work files go (default: the image path).
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// soft (default), full or strict.
    pub manage_cgroups_mode: Option<String>,
}

/// `checkpoint` flags.
#[derive(Debug, Default, Clone)]
pub struct CheckpointOptions {
    pub criu: CriuOptions,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
}

impl CriuOptions {
    fn work(&self) -> PathBuf {
        self.work_path.clone().unwrap_or(self.image_path.clone())
    }

    /// criu's command for `op` (dump, pre-dump, restore) with the options both share.
    fn command(&self, op: &str, log: &str, root: &Path) -> Command {
        let mut cmd = Command::new(CRIU);
        cmd.arg(op)
            .arg("--images-dir")
            .arg(&self.image_path)
            .arg("--work-dir")
            .arg(self.work())
            .arg("--log-file")
            .arg(log)
            .arg("-v4")
            .arg("--root")
            .arg(root)
            .arg("--manage-cgroups");
        if let Some(mode) = &self.manage_cgroups_mode {
            cmd.arg(format!("--manage-cgroups={mode}"));
        }
        for (flag, on) in [
            ("--tcp-established", self.tcp_established),
            ("--ext-unix-sk", self.ext_unix_sk),
            ("--shell-job", self.shell_job),
            ("--file-locks", self.file_locks),
        ] {
            if on {
                cmd.arg(flag);
            }
        }
        cmd
    }
}

const CRIU: &str = "criu";

impl Container {
    /// Dumps the container's processes with criu. Unless `leave_running` (or `pre_dump`), the
    /// container is stopped by the dump and its state removed afterwards, as with runc.
    pub fn checkpoint(&self, opts: &CheckpointOptions) -> Result<()> {
        let status = self.status();
        if status != Status::Running && status != Status::Paused {
            return Err(Error::InvalidConfig(format!(
                "container {} is {status}: only a running container can be checkpointed",
                self.id()
            )));
        }
        let criu = &opts.criu;
        std::fs::create_dir_all(&criu.image_path).map_err(|e| {
            Error::io(
                format!("create image path {}", criu.image_path.display()),
                e,
            )
        })?;
        let work = criu.work();
        std::fs::create_dir_all(&work)
            .map_err(|e| Error::io(format!("create work path {}", work.display()), e))?;
        let record = self.record();
        write_descriptors(&criu.image_path, record.pid)?;
        let op = if opts.pre_dump { "pre-dump" } else { "dump" };
        let mut cmd = criu.command(op, "dump.log", &record.rootfs);
        cmd.arg("--tree").arg(record.pid.to_string());
        if let Some(parent) = &opts.parent_path {
            cmd.arg("--prev-images-dir").arg(parent).arg("--track-mem");
        }
        if opts.leave_running || opts.pre_dump {
            cmd.arg("--leave-running");
        }
        for dest in external_mounts(&record.config) {
            cmd.arg("--external").arg(format!("mnt[{dest}]:{dest}"));
        }
        run_criu(cmd, "dump", &work.join("dump.log"))?;
        if !(opts.leave_running || opts.pre_dump) {
            self.delete(true)?;
        }
        Ok(())
    }
}

impl Runtime {
    /// Restores a container from `opts.image_path` under `id`: its state and cgroup are made
    /// again from the bundle, and criu recreates the processes inside.
    pub fn restore(
        &self,
        id: &str,
        create: &CreateOptions,
        opts: &CriuOptions,
    ) -> Result<Container> {
        let mut warnings = Vec::new();
        let bundle = Bundle::load(&create.bundle, &mut |m| warnings.push(m))?;
        let linux = bundle
            .spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig("linux is missing".into()))?;
        let cgroup = crate::cgroups::Cgroup::resolve(linux.cgroups_path().as_deref(), id)?;
        let dir = self.root().join(id);
        state::private_root(self.root())?;
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&dir)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::IdInUse(id.to_owned()),
                _ => Error::io(format!("create state dir {}", dir.display()), e),
            })?;
        let result = (|| {
            cgroup.create()?;
            if let Some(resources) = linux.resources() {
                cgroup.apply(resources)?;
            }
            let work = opts.work();
            let pid_file = dir.join("criu.pid");
            let mut cmd = opts.command("restore", "restore.log", &bundle.rootfs);
            cmd.arg("--restore-detached")
                .arg("--pidfile")
                .arg(&pid_file);
            for (dest, source) in external_mount_sources(&bundle.spec, &bundle.dir) {
                cmd.arg("--ext-mount-map")
                    .arg(format!("{dest}:{}", source.display()));
            }
            run_criu(cmd, "restore", &work.join("restore.log"))?;
            let pid: i32 = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| Error::Init("criu restore wrote no pid".into()))?;
            let record = ContainerState {
                id: id.to_owned(),
                pid,
                pid_start_time: state::process_stat(pid)
                    .map(|(_, start)| start)
                    .ok_or_else(|| Error::Init("the restored process exited".into()))?,
                bundle: bundle.dir.clone(),
                rootfs: bundle.rootfs.clone(),
                created: state::now_rfc3339(),
                owner: String::from("root"),
                annotations: bundle.spec.annotations().clone().unwrap_or_default(),
                cgroup: cgroup.clone(),
                config: bundle.spec.clone(),
            };
            record.write(&dir)?;
            if let Some(pid_file) = &create.pid_file {
                state::write_atomic(pid_file, pid.to_string().as_bytes(), 0o644)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = cgroup.destroy();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.load(id)
    }
}

/// Runs criu; a failure names the log and quotes its errors.
fn run_criu(mut cmd: Command, op: &'static str, log: &Path) -> Result<()> {
    let out = cmd.output().map_err(|e| Error::Criu {
        op,
        log: log.to_owned(),
        reason: format!("run {CRIU}: {e} (install the criu package)"),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error") || l.contains("error"))
        .take(4)
        .collect();
    let reason = if errors.is_empty() {
        format!(
            "{}; {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    } else {
        format!("{}: {}", out.status, errors.join(" | "))
    };
    Err(Error::Criu {
        op,
        log: log.to_owned(),
        reason,
    })
}

/// runc's descriptors.json: what the init's fds 0, 1 and 2 point at.
fn write_descriptors(images: &Path, pid: i32) -> Result<()> {
    let targets: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join("descriptors.json");
    let text = serde_json::to_string(&targets).unwrap_or_else(|_| "[]".into());
    std::fs::write(&path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Bind mounts are outside what criu can dump: they are declared external by destination.
fn external_mounts(spec: &oci_spec::runtime::Spec) -> Vec<String> {
    external_mount_sources(spec, Path::new("/"))
        .into_iter()
        .map(|(dest, _)| dest)
        .collect()
}

fn external_mount_sources(spec: &oci_spec::runtime::Spec, bundle: &Path) -> Vec<(String, PathBuf)> {
    spec.mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind")
        })
        .filter_map(|m| {
            let source = m.source().as_ref()?;
            let source = if source.is_relative() {
                bundle.join(source)
            } else {
                source.clone()
            };
            Some((m.destination().display().to_string(), source))
        })
        .collect()
}
