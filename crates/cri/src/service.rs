//! The CRI's state: the engine's interface, the CNI set-up, the pods' network records, and the
//! container events kubelet streams (GetContainerEvents), made from the engine's events.

use std::path::PathBuf;
use std::sync::Mutex;

use berth_engine::Engine;
use tokio::sync::broadcast;

use crate::cni::Cni;
use crate::error::Result;
use crate::labels;
use crate::proto as pb;
use crate::state::PodStates;
use crate::time;

/// The CRI's settings (`berth daemon --cri-*`).
#[derive(Debug, Clone)]
pub struct CriOptions {
    /// The gRPC socket (default /run/berth/cri.sock); None: no CRI.
    pub socket: Option<PathBuf>,
    /// CNI network configs (default /etc/cni/net.d).
    pub cni_conf_dir: PathBuf,
    /// CNI plugins (default /opt/cni/bin and /usr/lib/cni).
    pub cni_bin_dirs: Vec<PathBuf>,
    /// An image for pod sandboxes (a pause image); None: berth's own infra process.
    pub sandbox_image: Option<String>,
    /// The streaming server's address (Exec, Attach, PortForward URLs); port 0 picks one.
    pub stream_address: std::net::SocketAddr,
}

impl Default for CriOptions {
    fn default() -> Self {
        CriOptions {
            socket: Some(PathBuf::from("/run/berth/cri.sock")),
            cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
            cni_bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
            sandbox_image: None,
            stream_address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

#[derive(Debug)]
pub struct Cri {
    pub engine: Engine,
    pub opts: CriOptions,
    pub cni: Cni,
    pub pods: PodStates,
    /// kubelet's UpdateRuntimeConfig.
    pub pod_cidr: Mutex<String>,
    pub events: broadcast::Sender<pb::ContainerEventResponse>,
    /// The streaming server's base URL, once it listens.
    pub stream_base: Mutex<String>,
    /// The streaming URLs handed out and not used yet.
    pub tokens: crate::streaming::Tokens,
}

impl Cri {
    pub fn new(engine: Engine, opts: CriOptions) -> Result<Cri> {
        let pods = PodStates::open(&engine.root().join("cri").join("pods"))?;
        let cni = Cni {
            conf_dir: opts.cni_conf_dir.clone(),
            bin_dirs: opts.cni_bin_dirs.clone(),
        };
        let (events, _) = broadcast::channel(1024);
        Ok(Cri {
            engine,
            opts,
            cni,
            pods,
            pod_cidr: Mutex::new(String::new()),
            events,
            stream_base: Mutex::new(String::new()),
            tokens: Default::default(),
        })
    }

    /// Turns the engine's container events for pods into the CRI's, for as long as the
    /// daemon runs.
    pub fn follow_events(self: &std::sync::Arc<Self>) {
        let mut rx = self.engine.subscribe();
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let e = match rx.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let kind = match e.action.as_str() {
                    "create" => pb::ContainerEventType::ContainerCreatedEvent,
                    "start" => pb::ContainerEventType::ContainerStartedEvent,
                    "die" => pb::ContainerEventType::ContainerStoppedEvent,
                    "destroy" => pb::ContainerEventType::ContainerDeletedEvent,
                    _ => continue,
                };
                let sandbox = match labels::get(&e.labels, labels::TYPE) {
                    labels::TYPE_SANDBOX => e.id.clone(),
                    labels::TYPE_CONTAINER => labels::get(&e.labels, labels::SANDBOX_ID).to_owned(),
                    _ => continue,
                };
                if this.events.receiver_count() == 0 {
                    continue;
                }
                let pod_status = this.pod_status(&sandbox, false).ok().and_then(|r| r.status);
                let statuses = this
                    .containers_of(&sandbox)
                    .iter()
                    .filter_map(|c| this.container_status(&c.id, false).ok())
                    .filter_map(|r| r.status)
                    .collect();
                let _ = this.events.send(pb::ContainerEventResponse {
                    container_id: e.id,
                    container_event_type: kind as i32,
                    created_at: if e.time_nano > 0 {
                        e.time_nano
                    } else {
                        time::now()
                    },
                    pod_sandbox_status: pod_status,
                    containers_statuses: statuses,
                });
            }
        });
    }
}
