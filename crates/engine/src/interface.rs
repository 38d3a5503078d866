//! The engine's interface for the daemon's other faces (the CRI): the operations the Engine
//! API's handlers use — create, start, stop, remove, inspect, list, exec, pull, images, events
//! — on the same ordinary containers, without reaching into the engine's files or locks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use tokio::sync::broadcast;

use crate::daemon::Daemon;
use crate::error::ApiError;

pub use crate::container::Extras;
pub use berth_registry::Credentials;

/// What went wrong, in the terms a face maps onto its own statuses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such container or image.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (a bad name, option or reference).
    #[error("{0}")]
    Invalid(String),
    /// A name in use, or a state that forbids the operation.
    #[error("{0}")]
    Conflict(String),
    /// A registry refused the credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Something failed inside the daemon; the message says what.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        let text = e.to_string();
        match e {
            ApiError::NotFound(_) => Error::NotFound(text),
            ApiError::BadRequest(_) => Error::Invalid(text),
            ApiError::Conflict(_) | ApiError::Forbidden(_) | ApiError::NotModified => {
                Error::Conflict(text)
            }
            ApiError::Unauthorized(_) => Error::Unauthorized(text),
            ApiError::NotImplemented(_) | ApiError::Unavailable(_) | ApiError::Internal(_) => {
                Error::Internal(text)
            }
        }
    }
}

/// A container as the engine records it, in the terms a face needs.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub id: String,
    pub name: String,
    /// The image as it was named at create (empty for an infra container).
    pub image: String,
    pub image_id: String,
    pub labels: HashMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// created, running, paused, restarting, exited, dead.
    pub status: String,
    pub pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    pub error: String,
    pub mounts: Vec<MountView>,
    pub host_config: HostConfig,
    /// The network namespace file the engine made for it (while it runs).
    pub netns: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct MountView {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    /// Propagation and other bind options as given.
    pub options: Vec<String>,
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct ImageView {
    /// `sha256:<hex>` of the config.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    /// The config's `User`.
    pub user: String,
    /// The config's `Volumes`, `Entrypoint`, `Cmd`, `Env` … as the config blob has them.
    pub config: serde_json::Value,
}

/// A container event: what happened (create, start, die, destroy, oom …) to which container.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub id: String,
    pub action: String,
    pub labels: HashMap<String, String>,
    pub time_nano: i64,
}

/// A started exec's stdio: Docker's multiplexed frames (no tty) or raw bytes (tty), through
/// the exec's monitor.
#[derive(Debug)]
pub struct ExecIo {
    pub exec_id: String,
    pub stream: tokio::net::UnixStream,
}

/// The image store's filesystem and what the store uses of it.
#[derive(Debug, Clone)]
pub struct ImageFs {
    pub path: PathBuf,
    pub used_bytes: u64,
    pub inodes_used: u64,
}

/// A cloneable handle on the running daemon.
#[derive(Debug, Clone)]
pub struct Engine {
    d: Arc<Daemon>,
}

impl Engine {
    pub(crate) fn new(d: Arc<Daemon>) -> Engine {
        Engine { d }
    }

    /// The daemon's persistent root (faces keep their own state under it).
    pub fn root(&self) -> PathBuf {
        self.d.opts.root.clone()
    }

    /// The OCI runtimes containers may name (`berth` always).
    pub fn runtimes(&self) -> Vec<String> {
        let mut names: Vec<String> = self.d.opts.runtimes.keys().cloned().collect();
        names.push("berth".into());
        names.sort();
        names
    }

    /// Creates a container (not started). A name in use is `Conflict`.
    pub async fn create(
        &self,
        name: &str,
        body: ContainerCreateBody,
        extras: Extras,
    ) -> Result<String> {
        let d = self.d.clone();
        let name = name.to_owned();
        let c = tokio::task::spawn_blocking(move || {
            d.create_container_with(Some(&name), body, Some(extras))
        })
        .await
        .map_err(|e| Error::Internal(format!("create: {e}")))??;
        Ok(c.id)
    }

    /// Starts a created or exited container; a running one is left alone.
    pub async fn start(&self, id: &str) -> Result<()> {
        match self.d.start_container(id).await {
            Ok(()) | Err(ApiError::NotModified) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The container's stop signal, then SIGKILL after `timeout` seconds; a stopped one is
    /// left alone.
    pub async fn stop(&self, id: &str, timeout: i64) -> Result<()> {
        match self.d.stop_container(id, Some(timeout), None).await {
            Ok(()) | Err(ApiError::NotModified) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a container, killing it first if it runs.
    pub async fn remove(&self, id: &str) -> Result<()> {
        Ok(self.d.remove_container(id, true, true).await?)
    }

    pub fn inspect(&self, id: &str) -> Result<ContainerView> {
        let c = self.d.containers.find(id)?;
        Ok(self.view(c))
    }

    pub fn list(&self) -> Vec<ContainerView> {
        self.d
            .containers
            .list()
            .into_iter()
            .map(|c| self.view(c))
            .collect()
    }

    fn view(&self, c: crate::container::Container) -> ContainerView {
        let netns = self.d.net.netns_path(&c.id);
        ContainerView {
            netns: netns.exists().then_some(netns),
            id: c.id,
            name: c.name,
            image: c.image,
            image_id: c.image_id,
            labels: c.config.labels.unwrap_or_default(),
            created: c.created,
            status: c.state.status,
            pid: c.state.pid,
            exit_code: c.state.exit_code,
            started_at: c.state.started_at,
            finished_at: c.state.finished_at,
            oom_killed: c.state.oom_killed,
            error: c.state.error,
            mounts: c
                .mounts
                .into_iter()
                .map(|m| MountView {
                    source: m.source,
                    destination: m.destination,
                    read_only: m.read_only,
                    options: m.options,
                })
                .collect(),
            host_config: c.host_config,
        }
    }

    /// Makes the network namespace of a created container in `none` network mode now, at the
    /// path its start will join (so a CNI plugin can wire it while the container starts); its
    /// path. It goes with the container's network, as one made at the start does.
    pub async fn prepare_netns(&self, id: &str) -> Result<PathBuf> {
        let c = self.d.containers.find(id)?;
        let d = self.d.clone();
        tokio::task::spawn_blocking(move || d.prepare_netns(&c))
            .await
            .map_err(|e| Error::Internal(format!("prepare the network namespace: {e}")))?
            .map_err(Error::from)
    }

    /// New limits on the container's cgroup (running) and in its record (both).
    pub async fn update_resources(&self, id: &str, resources: HostConfig) -> Result<()> {
        Ok(self.d.update_container(id, resources)?)
    }

    /// Makes the container's monitor reopen its log file (a CRI log kubelet rotated).
    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        let c = self.d.containers.find(id)?;
        if !c.is_running() {
            return Err(Error::Conflict(format!("container {id} is not running")));
        }
        let dir = self.d.monitor_dir(&c.id);
        tokio::task::spawn_blocking(move || berth_monitor::client::reopen_log(&dir))
            .await
            .map_err(|e| Error::Internal(format!("reopen the log: {e}")))?
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Starts `cmd` in the running container under a monitor of its own and attaches to its
    /// stdio (stdin when `stdin`). The process waits for the attach, so no output is lost.
    pub async fn exec(&self, id: &str, cmd: Vec<String>, tty: bool, stdin: bool) -> Result<ExecIo> {
        let c = self.d.containers.find(id)?;
        if c.state.status != "running" {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if cmd.is_empty() {
            return Err(Error::Invalid("no command to exec".into()));
        }
        let exec_id = crate::container::new_id()?;
        let e = crate::exec::Exec {
            id: exec_id.clone(),
            container_id: c.id.clone(),
            config: bollard_stubs::models::ExecConfig {
                cmd: Some(cmd),
                tty: Some(tty),
                attach_stdin: Some(stdin),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
            running: true,
            exit_code: None,
            pid: 0,
        };
        self.d.execs.insert(e.clone());
        // The client's connection is the monitor's from its birth (as the API's exec start
        // does): the process cannot write before it is attached.
        let (stream, theirs) = berth_monitor::client::attach_early(stdin, true, true)
            .map_err(|e| Error::Internal(format!("attach to the exec: {e}")))?;
        let spawned = {
            let d = self.d.clone();
            tokio::task::spawn_blocking(move || d.spawn_exec(&e, vec![theirs]))
        };
        let spawned = spawned
            .await
            .map_err(|e| Error::Internal(format!("exec: {e}")))?;
        if let Err(err) = spawned {
            self.d.execs.update(&exec_id, |x| {
                x.running = false;
                x.exit_code = Some(126);
            });
            return Err(err.into());
        }
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::Internal(format!("attach to the exec: {e}")))?;
        let stream = tokio::net::UnixStream::from_std(stream)
            .map_err(|e| Error::Internal(format!("attach to the exec: {e}")))?;
        Ok(ExecIo { exec_id, stream })
    }

    /// Waits for a started exec's process to end; its exit code.
    pub async fn exec_wait(&self, exec_id: &str) -> i64 {
        self.d.finish_exec(exec_id).await
    }

    /// The pid of a started exec's process (0 once it ended).
    pub fn exec_pid(&self, exec_id: &str) -> i32 {
        let dir = self.d.exec_dir(exec_id);
        berth_monitor::read_state(&dir).map(|s| s.pid).unwrap_or(0)
    }

    /// Attaches to a running container's stdio as `docker attach` does.
    pub async fn attach(&self, id: &str, stdin: bool) -> Result<tokio::net::UnixStream> {
        let c = self.d.containers.find(id)?;
        if !c.is_running() {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let dir = self.d.monitor_dir(&c.id);
        let stream = tokio::task::spawn_blocking(move || {
            berth_monitor::client::attach(&dir, stdin, true, true)
        })
        .await
        .map_err(|e| Error::Internal(format!("attach: {e}")))?
        .map_err(|e| Error::Internal(e.to_string()))?;
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::Internal(format!("attach: {e}")))?;
        tokio::net::UnixStream::from_std(stream)
            .map_err(|e| Error::Internal(format!("attach: {e}")))
    }

    /// Sets the terminal size of a container (`exec_id` None) or of an exec.
    pub async fn resize(
        &self,
        id: &str,
        exec_id: Option<&str>,
        height: u16,
        width: u16,
    ) -> Result<()> {
        let dir = match exec_id {
            Some(e) => self.d.exec_dir(e),
            None => self.d.monitor_dir(&self.d.containers.find(id)?.id),
        };
        tokio::task::spawn_blocking(move || berth_monitor::client::resize(&dir, height, width))
            .await
            .map_err(|e| Error::Internal(format!("resize: {e}")))?
            .map_err(|e| Error::Conflict(e.to_string()))
    }

    /// The container's cgroup counters in dockerd's stats JSON.
    pub fn stats(&self, id: &str) -> Result<serde_json::Value> {
        let c = self.d.containers.find(id)?;
        Ok(crate::api::stats_sample(&c).unwrap_or(serde_json::Value::Null))
    }

    /// Container events as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<ContainerEvent> {
        let (tx, rx) = broadcast::channel(256);
        let (_, mut live) = self.d.events.subscribe(None);
        tokio::spawn(async move {
            loop {
                match live.recv().await {
                    Ok(e) if e.typ == "container" => {
                        let event = ContainerEvent {
                            id: e.actor.id.clone(),
                            action: e.action.clone(),
                            labels: e.actor.attributes.clone().into_iter().collect(),
                            time_nano: e.time_nano,
                        };
                        if tx.send(event).is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        rx
    }

    pub fn image(&self, name: &str) -> Result<ImageView> {
        let i = self.d.images.get(name).map_err(|e| match e {
            berth_image::Error::NotFound(_) => Error::NotFound(format!("no such image: {name}")),
            other => ApiError::from(other).into(),
        })?;
        Ok(image_view(i))
    }

    pub fn images(&self) -> Result<Vec<ImageView>> {
        let all = self.d.images.list().map_err(ApiError::from)?;
        Ok(all.into_iter().map(image_view).collect())
    }

    /// Pulls `name` through the daemon's registry client (its mirrors, certs and insecure
    /// registries) with these credentials.
    pub async fn pull(&self, name: &str, creds: Option<Credentials>) -> Result<ImageView> {
        let r = berth_image::Reference::parse(name)
            .map_err(|e| Error::Invalid(format!("invalid image reference {name:?}: {e}")))?;
        let opts = berth_registry::PullOptions {
            platform: String::new(),
            creds,
        };
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let o = self.d.pull_one(&r, &opts, &tx, false).await.map_err(|e| {
            let text = format!("pull {name}: {e}");
            if e.is_unauthorized() || e.is_denied() {
                Error::Unauthorized(text)
            } else if e.is_not_found() {
                Error::NotFound(text)
            } else if e.is_invalid() {
                Error::Invalid(text)
            } else {
                Error::Internal(text)
            }
        })?;
        Ok(image_view(o.image))
    }

    /// Removes the image `name` names, with every tag and digest it has.
    pub fn remove_image(&self, name: &str) -> Result<()> {
        let i = self.image(name)?;
        let deleted = self.d.images.remove(&i.id, true).map_err(ApiError::from)?;
        for x in deleted {
            if let Some(del) = x.deleted {
                self.d
                    .events
                    .emit("image", "delete", &del, Default::default());
            }
        }
        Ok(())
    }

    /// Where the images live and what they take there.
    pub fn image_fs(&self) -> ImageFs {
        let path = self.d.images.root().to_owned();
        let (used_bytes, inodes_used) = usage(&path);
        ImageFs {
            path,
            used_bytes,
            inodes_used,
        }
    }
}

/// The full form of an image reference (`busybox` → `docker.io/library/busybox:latest`), as
/// containerd's CRI reports a container's image; anything else (an image id) as given.
pub fn full_reference(name: &str) -> String {
    match berth_image::Reference::parse(name) {
        Ok(r) if !name.starts_with("sha256:") => r.to_string(),
        _ => name.to_owned(),
    }
}

fn image_view(i: berth_image::Image) -> ImageView {
    let config = serde_json::to_value(&i.config)
        .ok()
        .and_then(|v| v.get("config").cloned())
        .unwrap_or(serde_json::Value::Null);
    ImageView {
        user: config["User"].as_str().unwrap_or_default().to_owned(),
        id: i.id,
        repo_tags: i.repo_tags,
        repo_digests: i.repo_digests,
        size: i.size,
        config,
    }
}

/// Bytes and inodes under `dir` (hard links once).
fn usage(dir: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            inodes += 1;
            bytes += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}
