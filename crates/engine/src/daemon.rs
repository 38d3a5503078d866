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
    /// The default bridge, address pools, nftables table and DNS upstreams.
    pub network: crate::network::NetworkOptions,
    /// Registries: insecure ones, mirrors, the certs dir, time-outs.
    pub registry: berth_registry::RegistryOptions,
}

/// Another face of the daemon (the CRI): given the engine's interface and a signal that turns
/// true when the daemon stops, it serves until then.
pub type Face = Box<
    dyn FnOnce(
            crate::face::Engine,
            watch::Receiver<bool>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send,
>;

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
    /// Attach requests that arrived before their container started (`docker run` attaches
    /// first): each is told the monitor's directory once the container is up.
    pending_attach: Mutex<HashMap<String, Vec<oneshot::Sender<PathBuf>>>>,
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

    pub fn add_pending_attach(&self, id: &str) -> oneshot::Receiver<PathBuf> {
        let (tx, rx) = oneshot::channel();
        let mut map = self
            .pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned()).or_default().push(tx);
        rx
    }

    pub fn take_pending_attach(&self, id: &str) -> Vec<oneshot::Sender<PathBuf>> {
        let mut map = self
            .pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.remove(id)
            .unwrap_or_default()
            .into_iter()
            .filter(|tx| !tx.is_closed())
            .collect()
    }
}

pub async fn serve(
    opts: DaemonOptions,
    sandbox: berth_build::Sandbox,
    faces: Vec<Face>,
) -> Result<(), String> {
    for dir in [&opts.root, &opts.exec_root] {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let images = berth_image::Store::open(&opts.root)
        .map_err(|e| format!("open the image store in {}: {e}", opts.root.display()))?;
    let containers = Containers::load(&opts.root.join("containers"))
        .map_err(|e| format!("read {}/containers: {e}", opts.root.display()))?;
    let remap = crate::userns::Remapping::from_flag(opts.userns_remap.as_deref())?;
    let volumes = Volumes::open(&opts.root.join("volumes"))
        .map_err(|e| format!("open {}/volumes: {e}", opts.root.display()))?
        .with_owner(remap.range.map(|r| (r.uid, r.gid)));
    let builder = berth_build::Builder::new(sandbox, opts.root.join("builds")).map_err(|e| {
        format!(
            "open the builder's state in {}/builds: {e}",
            opts.root.display()
        )
    })?;
    let listener = bind(&opts.socket)?;
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
        pending_attach: Mutex::new(HashMap::new()),
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

    let app = crate::api::router(daemon.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let socket = daemon.opts.socket.clone();
    let mut face_tasks = tokio::task::JoinSet::new();
    for face in faces {
        face_tasks.spawn(face(
            crate::face::Engine::new(daemon.clone()),
            stop_rx.clone(),
        ));
    }
    let serve = axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));
    tokio::select! {
        r = std::future::IntoFuture::into_future(serve) => r.map_err(|e| format!("serve the API: {e}"))?,
        Some(Ok(Err(e))) = face_tasks.join_next() => {
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

/// Binds the API socket: root-owned, mode 0660, as dockerd's. A socket file left by a daemon
/// that died is replaced; one that answers means a daemon is already running.
fn bind(path: &std::path::Path) -> Result<tokio::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "another daemon is already serving {} (remove it or use -H)",
            path.display()
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(listener)
}
