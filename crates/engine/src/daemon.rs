//! The daemon's shared state and its start: open the stores, find the containers (and the
//! monitors still running them), then serve the Engine API on the Unix socket.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};

use crate::container::Containers;

use crate::events::Events;
use crate::exec::Execs;
use crate::volumes::Volumes;

/// Where the daemon keeps things and how it is reached.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Persistent state: images, containers, volumes (default /var/lib/berth).
    pub root: PathBuf,
    /// Runtime state: monitor sockets, the runtime's state (default /run/berth).
    pub exec_root: PathBuf,
    /// The API socket (default /run/berth/berth.sock).
    pub socket: PathBuf,
    /// The berth binary, run as `berth monitor` and `berth runtime`.
    pub berth_exe: PathBuf,
    /// Other OCI runtimes by name for `--runtime` (runc, crun when installed).
    pub runtimes: HashMap<String, PathBuf>,
    /// `--userns-remap`: `default`, `USER[:GROUP]` or `UID:GID`; none for no remapping.
    pub userns_remap: Option<String>,
    /// The API socket's group (`--group`, dockerd's `-G`): a name or a gid. `docker`, the
    /// default, may be missing (the socket is then root's alone); another group may not.
    pub group: Option<String>,
    /// The default bridge, address pools, nftables table and DNS upstreams.
    pub network: crate::network::NetworkOptions,
    /// Registries: insecure ones, mirrors, the certs dir, time-outs.
    pub registry: berth_registry::RegistryOptions,
}

/// What a container's watchers learn when it exits or is removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExitNotice {
    pub generation: u64,
    pub exit_code: i64,
    pub removed: bool,
}

#[derive(Debug)]
pub struct Daemon {
    pub opts: DaemonOptions,
    pub images: Arc<berth_image::Store>,
    pub registries: berth_registry::Registries,
    pub containers: Containers,
    pub volumes: Volumes,
    pub events: Events,
    pub execs: Execs,
    /// The healthcheck loops of running containers.
    pub health: crate::health::Checks,
    /// `--userns-remap`: the range containers run in, and its id-mapping namespaces.
    pub remap: crate::userns::Remapping,
    pub net: Arc<crate::network::Net>,
    /// The daemon's runtime, for the tasks (DNS servers) that blocking code starts.
    pub runtime: tokio::runtime::Handle,
    pub builder: berth_build::Builder,
    exits: Mutex<HashMap<String, watch::Sender<ExitNotice>>>,
    /// Attach requests of containers that are not running, by container id (`docker run`
    /// attaches first, then starts).
    attaches: Mutex<HashMap<String, AttachQueue>>,
    /// Held for reading while references to networks and volumes are recorded (a container's
    /// create, a network connect), for writing while a network or volume is made or removed:
    /// a removal's in-use check cannot miss a container being created on it, and a name is
    /// made or removed by one request at a time.
    references: std::sync::RwLock<()>,
    /// One start or removal of a container at a time (an `rm -f` during a `start` waits for
    /// it, then kills what it started; two starts never make two monitors).
    container_ops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    #[allow(dead_code)] // for uptime in /info; not read yet
    pub started: std::time::Instant,
}

impl Daemon {
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers.dir_of(id)
    }

    pub fn monitor_dir(&self, id: &str) -> PathBuf {
        self.opts.exec_root.join("containers").join(id)
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.opts.exec_root.join("runtime")
    }

    pub fn exit_watch(&self, id: &str) -> watch::Receiver<ExitNotice> {
        let mut map = self.exits.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned())
            .or_insert_with(|| watch::channel(ExitNotice::default()).0)
            .subscribe()
    }

    pub fn notify_exit(&self, id: &str, exit_code: i64, removed: bool) {
        let mut map = self.exits.lock().unwrap_or_else(|p| p.into_inner());
        let tx = map
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(ExitNotice::default()).0);
        tx.send_modify(|n| {
            n.generation += 1;
            n.exit_code = exit_code;
            n.removed = removed;
        });
        if removed {
            map.remove(id);
        }
    }

    /// Waits for the container's other start or removal, if one is under way; holds its
    /// turn until the guard is dropped.
    pub async fn container_op(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut ops = self.container_ops.lock().unwrap_or_else(|p| p.into_inner());
            ops.entry(id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// The container is gone: forget its turn (a waiter still holding it is unaffected).
    pub fn forget_container_op(&self, id: &str) {
        let mut ops = self.container_ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.remove(id);
    }

    /// See `references` (blocking: call it off the runtime's threads).
    pub fn referencing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.references.read().unwrap_or_else(|p| p.into_inner())
    }

    /// See `references` (blocking: call it off the runtime's threads).
    pub fn changing_references(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.references.write().unwrap_or_else(|p| p.into_inner())
    }

    fn attach_queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, AttachQueue>> {
        self.attaches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How an attach request reaches the container's output: a container that is not running
    /// gets its attacher at the next start, connected before the process runs (so it sees the
    /// first byte); one that runs is attached to at once; one that is starting right now, once
    /// its start is done.
    pub fn attach_way(&self, id: &str, flags: AttachFlags) -> crate::error::Result<AttachWay> {
        let mut queues = self.attach_queues();
        let q = queues.entry(id.to_owned()).or_default();
        if q.starting {
            let (tx, rx) = oneshot::channel();
            q.late.push(tx);
            return Ok(AttachWay::AfterStart(rx));
        }
        // Under the queue's lock: a start takes the early attachers under it too, so an
        // attacher is either taken by a start or sees the container running.
        match self.containers.find(id) {
            Ok(c) if c.is_running() => Ok(AttachWay::Live),
            Ok(_) => {
                let (tx, rx) = oneshot::channel();
                q.early.push(EarlyAttacher { flags, tx });
                Ok(AttachWay::Early(rx))
            }
            Err(e) => {
                if q.is_empty() {
                    queues.remove(id);
                }
                Err(e)
            }
        }
    }

    /// For a start: the early attachers' connections (each client gets its end now, the
    /// monitor gets the others at its birth). Until [`Daemon::start_done`], later attachers
    /// wait for the start to finish.
    pub fn take_early_attachers(&self, id: &str) -> Vec<berth_monitor::client::EarlyAttach> {
        let mut queues = self.attach_queues();
        let q = queues.entry(id.to_owned()).or_default();
        q.starting = true;
        let mut out = Vec::new();
        for a in q.early.drain(..) {
            if a.tx.is_closed() {
                continue;
            }
            let AttachFlags {
                stdin,
                stdout,
                stderr,
            } = a.flags;
            // A pair that cannot be made (out of descriptors) leaves that client without
            // output, as a failed connect would; the start goes on.
            if let Ok((ours, theirs)) = berth_monitor::client::attach_early(stdin, stdout, stderr) {
                if a.tx.send(ours).is_ok() {
                    out.push(theirs);
                }
            }
        }
        out
    }

    /// The start is over (done or failed): those who attached meanwhile go on.
    pub fn start_done(&self, id: &str) {
        let mut queues = self.attach_queues();
        if let Some(q) = queues.get_mut(id) {
            q.starting = false;
            for tx in q.late.drain(..) {
                let _ = tx.send(());
            }
            if q.is_empty() {
                queues.remove(id);
            }
        }
    }

    /// The container is gone: its waiting attachers end (their clients see EOF).
    pub fn drop_attachers(&self, id: &str) {
        self.attach_queues().remove(id);
    }
}

/// Which of the container's streams a client attaches to.
#[derive(Debug, Clone, Copy)]
pub struct AttachFlags {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// See [`Daemon::attach_way`].
#[derive(Debug)]
pub enum AttachWay {
    /// Connected at the next start: the client's end of the pair arrives then.
    Early(oneshot::Receiver<std::os::unix::net::UnixStream>),
    /// The container runs: attach to its monitor now.
    Live,
    /// A start is under way: attach to the monitor once it is over.
    AfterStart(oneshot::Receiver<()>),
}

#[derive(Debug)]
struct EarlyAttacher {
    flags: AttachFlags,
    tx: oneshot::Sender<std::os::unix::net::UnixStream>,
}

#[derive(Debug, Default)]
struct AttachQueue {
    early: Vec<EarlyAttacher>,
    starting: bool,
    late: Vec<oneshot::Sender<()>>,
}

impl AttachQueue {
    fn is_empty(&self) -> bool {
        self.early.is_empty() && !self.starting && self.late.is_empty()
    }
}

/// Serves until `stop` turns true (see `stop.rs`).
pub async fn serve(
    opts: DaemonOptions,
    sandbox: berth_build::Sandbox,
    stop_rx: watch::Receiver<bool>,
    faces: Vec<crate::face::Face>,
) -> Result<(), String> {
    let images = berth_image::Store::open(&opts.root)
        .map_err(|e| format!("open the image store in {}: {e}", opts.root.display()))?;
    let containers = Containers::load(&opts.root.join("containers"))
        .map_err(|e| format!("read {}/containers: {e}", opts.root.display()))?;
    let remap = crate::userns::Remapping::from_flag(opts.userns_remap.as_deref())?;
    crate::modes::own_root(&opts.root, remap.range.map(|r| r.gid))?;
    let volumes = Volumes::open(&opts.root.join("volumes"))
        .map_err(|e| format!("open {}/volumes: {e}", opts.root.display()))?
        .with_owner(remap.range.map(|r| (r.uid, r.gid)));
    let builder = berth_build::Builder::new(sandbox, opts.root.join("builds")).map_err(|e| {
        format!(
            "open the builder's state in {}/builds: {e}",
            opts.root.display()
        )
    })?;
    let listener = bind(&opts.socket, socket_group(opts.group.as_deref())?)?;
    let net = {
        let (root, exec_root, nopts) = (
            opts.root.clone(),
            opts.exec_root.clone(),
            opts.network.clone(),
        );
        tokio::task::spawn_blocking(move || crate::network::Net::open(&root, &exec_root, nopts))
            .await
            .map_err(|e| format!("open the networks: {e}"))??
    };
    let registries = berth_registry::Registries::new(opts.registry.clone());
    let daemon = Arc::new(Daemon {
        opts,
        images: Arc::new(images),
        registries,
        containers,
        volumes,
        events: Events::new(),
        execs: Execs::default(),
        health: Default::default(),
        remap,
        net: Arc::new(net),
        runtime: tokio::runtime::Handle::current(),
        builder,
        exits: Mutex::new(HashMap::new()),
        attaches: Mutex::new(HashMap::new()),
        references: std::sync::RwLock::new(()),
        container_ops: Mutex::new(HashMap::new()),
        started: std::time::Instant::now(),
    });
    daemon.reconcile();
    daemon.net.refill_spares();
    {
        let d = daemon.clone();
        tokio::task::spawn_blocking(move || d.reconcile_networks())
            .await
            .map_err(|e| format!("reconcile the networks: {e}"))?;
    }

    let mut extra = axum::Router::new();
    let mut tasks = Vec::new();
    for face in faces {
        extra = extra.merge(face.routes);
        tasks.extend(face.task);
    }
    let app = crate::api::router(daemon.clone(), extra);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let socket = daemon.opts.socket.clone();
    let mut face_tasks = tokio::task::JoinSet::new();
    for task in tasks {
        face_tasks.spawn(task(
            crate::interface::Engine::new(daemon.clone()),
            stop_rx.clone(),
        ));
    }
    // The first face that fails; a face that ends well (one turned off) is not waited on.
    let face_failed = async move {
        while let Some(ended) = face_tasks.join_next().await {
            match ended {
                Ok(Err(e)) => return e,
                Err(e) if e.is_panic() => return format!("a face of the daemon panicked: {e}"),
                _ => {}
            }
        }
        std::future::pending().await
    };
    let serve = axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
            crate::api::ConnFd,
        >(app),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));
    tokio::select! {
        r = std::future::IntoFuture::into_future(serve) => r.map_err(|e| format!("serve the API: {e}"))?,
        e = face_failed => {
            let _ = std::fs::remove_file(&socket);
            return Err(e);
        }
        // Streams that never end (`logs -f`, `events`, a waiting attach) would hold a graceful
        // stop forever: once asked to stop, the daemon gives them two seconds, then goes.
        // Containers and their monitors are not affected either way.
        _ = async {
            stopped(stop_rx).await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        } => {}
    }
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// The gid of the API socket's group: `--group`, where that group exists (`docker`, the
/// default, may be missing, as dockerd allows).
pub(crate) fn socket_group(name: Option<&str>) -> Result<Option<u32>, String> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    match crate::modes::group_id(name) {
        Some(gid) => Ok(Some(gid)),
        None if name == "docker" => Ok(None),
        None => Err(format!("--group {name}: no such group in /etc/group")),
    }
}

/// Binds the API socket: root-owned, mode 0660 with `group`, as dockerd's. It is made under the
/// daemon's umask (no one else may connect), then given to the group. A socket file left by a
/// daemon that died is replaced; one that answers means a daemon is already running.
fn bind(path: &std::path::Path, group: Option<u32>) -> Result<tokio::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        crate::modes::create_dir_all(dir, 0o711)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    if berth_monitor::sock::connect_path(path).is_ok() {
        return Err(format!(
            "another daemon is already serving {} (remove it or use -H)",
            path.display()
        ));
    }
    // Any length of path (sun_path holds 108 bytes).
    let listener = berth_monitor::sock::bind_path(path)
        .and_then(|l| {
            l.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(l)
        })
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
    std::os::unix::fs::chown(path, Some(0), group)
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(listener)
}
