//! Pod sandboxes: an infra container (berth's pause process, or the configured sandbox image)
//! that holds the pod's network, IPC and UTS namespaces (and PID when asked), wired by CNI.

use std::collections::HashMap;

use berth_engine::{ContainerView, Extras};
use bollard_stubs::models::{ContainerCreateBody, HostConfig};

use crate::cni::{self, Attachment};
use crate::error::{Error, Result};
use crate::labels;
use crate::proto as pb;
use crate::service::Cri;
use crate::state::PodNetwork;
use crate::time;

/// NamespaceMode numbers (api.proto).
pub const NS_POD: i32 = 0;
pub const NS_CONTAINER: i32 = 1;
pub const NS_NODE: i32 = 2;
pub const NS_TARGET: i32 = 3;

const IFNAME: &str = "eth0";

impl Cri {
    pub async fn run_pod(&self, config: pb::PodSandboxConfig, handler: &str) -> Result<String> {
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| Error::InvalidArgument("pod sandbox config has no metadata".into()))?;
        for (what, v) in [
            ("name", &meta.name),
            ("namespace", &meta.namespace),
            ("uid", &meta.uid),
        ] {
            if v.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "pod sandbox metadata has no {what}"
                )));
            }
        }
        let runtime = self.runtime_for(handler)?;
        let ns = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        crate::translate::refuse_user_namespace(&ns)?;
        let host_network = ns.network == NS_NODE;
        let name = format!(
            "k8s_POD_{}_{}_{}_{}",
            meta.name, meta.namespace, meta.uid, meta.attempt
        );
        let mut hc = HostConfig {
            network_mode: Some(if host_network { "host" } else { "none" }.into()),
            ipc_mode: Some(
                if ns.ipc == NS_NODE {
                    "host"
                } else {
                    "shareable"
                }
                .into(),
            ),
            pid_mode: (ns.pid == NS_NODE).then(|| "host".to_owned()),
            uts_mode: host_network.then(|| "host".to_owned()),
            // berth's infra process is the runtime's own (the `berth.pause` annotation):
            // without a sandbox image the infra runs on berth's runtime whatever the handler,
            // which then runs the pod's containers.
            runtime: Some(if self.opts.sandbox_image.is_none() {
                "berth".to_owned()
            } else {
                runtime.clone()
            }),
            ..Default::default()
        };
        let linux = config.linux.clone().unwrap_or_default();
        if !linux.cgroup_parent.is_empty() {
            hc.cgroup_parent = Some(linux.cgroup_parent.clone());
        }
        if !linux.sysctls.is_empty() {
            hc.sysctls = Some(linux.sysctls.clone());
        }
        if let Some(sc) = &linux.security_context {
            hc.privileged = Some(sc.privileged);
            hc.readonly_rootfs = Some(sc.readonly_rootfs);
        }
        if let Some(dns) = &config.dns_config {
            hc.dns = Some(dns.servers.clone());
            hc.dns_search = Some(dns.searches.clone());
            hc.dns_options = Some(dns.options.clone());
        }
        let namespaces = format!("{},{},{}", ns.network, ns.pid, ns.ipc);
        let labels = labels::encode(
            &config.labels,
            &config.annotations,
            &[
                (labels::TYPE, labels::TYPE_SANDBOX.into()),
                (labels::NAME, meta.name.clone()),
                (labels::NAMESPACE, meta.namespace.clone()),
                (labels::UID, meta.uid.clone()),
                (labels::ATTEMPT, meta.attempt.to_string()),
                (labels::CREATED, time::now().to_string()),
                (labels::HANDLER, handler.to_owned()),
                (labels::NAMESPACES, namespaces),
            ],
        );
        let infra = self.opts.sandbox_image.is_none();
        let body = ContainerCreateBody {
            image: self.opts.sandbox_image.clone(),
            hostname: (!host_network && !config.hostname.is_empty())
                .then(|| config.hostname.clone()),
            labels: Some(labels),
            host_config: Some(hc),
            ..Default::default()
        };
        let extras = Extras {
            infra,
            ..Default::default()
        };
        // The network first: without a usable CNI config nothing is made.
        let net = if host_network {
            None
        } else {
            Some(self.cni.network().map_err(|why| {
                Error::Network(format!(
                    "the pod network is not ready: {why} (cni plugin not initialized)"
                ))
            })?)
        };
        let id = self
            .engine
            .create(&name, body, extras)
            .await
            .map_err(|e| match e {
                berth_engine::Error::Conflict(m) if m.contains("already in use") => {
                    Error::AlreadyExists(format!("pod sandbox name {name:?} is in use: {m}"))
                }
                berth_engine::Error::NotFound(m) => Error::NotFound(format!("sandbox image: {m}")),
                other => other.into(),
            })?;
        // From here a failure removes what was made: nothing half-made stays.
        let wired = async {
            match net {
                None => self.engine.start(&id).await.map_err(Error::from),
                Some(net) => {
                    // The namespace is made now, so that the plugins wire it while the infra
                    // starts (it joins the same namespace).
                    let netns = self.engine.prepare_netns(&id).await?;
                    let (started, attached) = tokio::join!(
                        self.engine.start(&id),
                        self.attach_network(&id, &net, &netns, &meta, &config)
                    );
                    started?;
                    attached
                }
            }
        }
        .await;
        if let Err(e) = wired {
            let _ = self.detach_network(&id).await;
            let _ = self.engine.remove(&id).await;
            self.pods.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    async fn attach_network(
        &self,
        id: &str,
        net: &cni::NetworkList,
        netns: &std::path::Path,
        meta: &pb::PodSandboxMetadata,
        config: &pb::PodSandboxConfig,
    ) -> Result<()> {
        let port_mappings: Vec<serde_json::Value> = config
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| {
                let proto = match pb::Protocol::try_from(p.protocol) {
                    Ok(pb::Protocol::Udp) => "udp",
                    Ok(pb::Protocol::Sctp) => "sctp",
                    _ => "tcp",
                };
                cni::port_mapping(proto, p.container_port, p.host_port, &p.host_ip)
            })
            .collect();
        let args = cni::pod_args(&meta.namespace, &meta.name, &meta.uid, id);
        let a = Attachment {
            id,
            netns,
            ifname: IFNAME,
            args: &args,
            port_mappings: &port_mappings,
        };
        // Recorded before the ADD: a crash in it leaves what DEL needs to clean up.
        let mut record = PodNetwork {
            network: net.name.clone(),
            config_file: net.file.clone(),
            netns: netns.to_owned(),
            ifname: IFNAME.into(),
            result: serde_json::Value::Null,
            port_mappings: port_mappings.clone(),
            deleted: false,
        };
        self.pods.put(id, &record)?;
        let result = self.cni.add(net, &a).await?;
        record.result = result;
        self.pods.put(id, &record)
    }

    /// CNI DEL of the pod's attachment, once; a pod without one (host network) has none.
    async fn detach_network(&self, id: &str) -> Result<()> {
        let Some(mut record) = self.pods.get(id) else {
            return Ok(());
        };
        if record.deleted {
            return Ok(());
        }
        // The network as it was configured at ADD; a config removed since is read anew.
        let net = match self.cni.network() {
            Ok(n) if n.name == record.network => n,
            _ => self
                .cni
                .network_from(&record.config_file)
                .map_err(Error::Network)?,
        };
        // The namespace may be gone (the infra died): the plugins then release what they
        // hold outside it (addresses, host ports), as the spec asks of DEL.
        let args = self.cni_args(id);
        let a = record.attachment(id, &args);
        let result = (!record.result.is_null()).then_some(&record.result);
        self.cni.del(&net, &a, result).await?;
        record.deleted = true;
        self.pods.put(id, &record)
    }

    /// CNI CHECK of the pod's attachment: whether its network is still as ADD left it. None
    /// for a pod without one (host network, or stopped).
    pub async fn check_network(&self, id: &str) -> Option<Result<()>> {
        let record = self
            .pods
            .get(id)
            .filter(|r| !r.deleted && !r.result.is_null())?;
        self.engine.inspect(id).ok()?;
        let net = match self.cni.network_from(&record.config_file) {
            Ok(n) => n,
            Err(e) => return Some(Err(Error::Network(e))),
        };
        let args = self.cni_args(id);
        let a = record.attachment(id, &args);
        Some(self.cni.check(&net, &a, &record.result).await)
    }

    /// CNI_ARGS of the pod `id`, from its labels (empty for a pod the engine lost).
    fn cni_args(&self, id: &str) -> [(&'static str, String); 4] {
        let meta = self
            .engine
            .inspect(id)
            .map(|v| v.labels)
            .unwrap_or_default();
        cni::pod_args(
            labels::get(&meta, labels::NAMESPACE),
            labels::get(&meta, labels::NAME),
            labels::get(&meta, labels::UID),
            id,
        )
    }

    /// Stops the pod's containers and its infra, after the network's DEL. A pod that is gone
    /// or already stopped is not an error.
    pub async fn stop_pod(&self, id: &str) -> Result<()> {
        let Some(pod) = self.find_pod(id)? else {
            return Ok(());
        };
        for c in self.containers_of(&pod.id) {
            if is_running(&c) {
                self.engine.stop(&c.id, 0).await?;
            }
        }
        self.detach_network(&pod.id).await?;
        if is_running(&pod) {
            self.engine.stop(&pod.id, 0).await?;
        }
        Ok(())
    }

    /// Removes the pod's containers and infra (stopping them first). A pod that is gone is
    /// not an error.
    pub async fn remove_pod(&self, id: &str) -> Result<()> {
        let Some(pod) = self.find_pod(id)? else {
            return Ok(());
        };
        self.stop_pod(&pod.id).await?;
        for c in self.containers_of(&pod.id) {
            self.engine.remove(&c.id).await?;
        }
        self.engine.remove(&pod.id).await?;
        self.pods.remove(&pod.id);
        Ok(())
    }

    pub fn pod_status(&self, id: &str, verbose: bool) -> Result<pb::PodSandboxStatusResponse> {
        let pod = self
            .find_pod(id)?
            .ok_or_else(|| Error::NotFound(format!("pod sandbox {id:?} not found")))?;
        let l = &pod.labels;
        let mut nsnums = labels::get(l, labels::NAMESPACES)
            .split(',')
            .map(|n| n.parse::<i32>().unwrap_or(0));
        let options = pb::NamespaceOption {
            network: nsnums.next().unwrap_or(0),
            pid: nsnums.next().unwrap_or(0),
            ipc: nsnums.next().unwrap_or(0),
            ..Default::default()
        };
        let mut ips = self
            .pods
            .get(&pod.id)
            .map(|n| cni::addresses(&n.result))
            .unwrap_or_default()
            .into_iter();
        let network = pb::PodSandboxNetworkStatus {
            ip: ips.next().unwrap_or_default(),
            additional_ips: ips.map(|ip| pb::PodIp { ip }).collect(),
        };
        let status = pb::PodSandboxStatus {
            id: pod.id.clone(),
            metadata: Some(pod_metadata(l)),
            state: pod_state(&pod) as i32,
            created_at: created_at(&pod),
            network: Some(network),
            linux: Some(pb::LinuxPodSandboxStatus {
                namespaces: Some(pb::Namespace {
                    options: Some(options),
                }),
            }),
            labels: labels::cri_labels(l),
            annotations: labels::annotations(l),
            runtime_handler: labels::get(l, labels::HANDLER).to_owned(),
        };
        let mut info = HashMap::new();
        if verbose {
            info.insert(
                "info".to_owned(),
                serde_json::json!({
                    "pid": pod.pid,
                    "image": pod.image,
                    "netns": pod.netns,
                    "engineStatus": pod.status,
                })
                .to_string(),
            );
        }
        Ok(pb::PodSandboxStatusResponse {
            status: Some(status),
            info,
            containers_statuses: Vec::new(),
            timestamp: time::now(),
        })
    }

    pub fn list_pods(&self, filter: Option<pb::PodSandboxFilter>) -> Vec<pb::PodSandbox> {
        let f = filter.unwrap_or_default();
        self.engine
            .list()
            .into_iter()
            .filter(|c| labels::get(&c.labels, labels::TYPE) == labels::TYPE_SANDBOX)
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| {
                f.state
                    .as_ref()
                    .is_none_or(|s| s.state == pod_state(c) as i32)
            })
            .filter(|c| labels::matches(&c.labels, &f.label_selector))
            .map(|c| pb::PodSandbox {
                metadata: Some(pod_metadata(&c.labels)),
                state: pod_state(&c) as i32,
                created_at: created_at(&c),
                labels: labels::cri_labels(&c.labels),
                annotations: labels::annotations(&c.labels),
                runtime_handler: labels::get(&c.labels, labels::HANDLER).to_owned(),
                id: c.id,
            })
            .collect()
    }

    /// The pod sandbox `id` names (full or unique prefix); None when there is none.
    pub fn find_pod(&self, id: &str) -> Result<Option<ContainerView>> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("pod sandbox id is empty".into()));
        }
        Ok(self
            .engine
            .inspect(id)
            .ok()
            .filter(|c| labels::get(&c.labels, labels::TYPE) == labels::TYPE_SANDBOX))
    }

    pub fn containers_of(&self, pod: &str) -> Vec<ContainerView> {
        self.engine
            .list()
            .into_iter()
            .filter(|c| {
                labels::get(&c.labels, labels::TYPE) == labels::TYPE_CONTAINER
                    && labels::get(&c.labels, labels::SANDBOX_ID) == pod
            })
            .collect()
    }

    /// The OCI runtime a RuntimeClass handler names: berth's for none, else one the daemon
    /// knows (runc, crun, or one given with --add-runtime).
    pub fn runtime_for(&self, handler: &str) -> Result<String> {
        if handler.is_empty() || handler == "berth" {
            return Ok("berth".into());
        }
        if self.engine.runtimes().iter().any(|r| r == handler) {
            return Ok(handler.to_owned());
        }
        Err(Error::InvalidArgument(format!(
            "unknown runtime handler {handler:?} (known: {})",
            self.engine.runtimes().join(", ")
        )))
    }
}

impl PodNetwork {
    /// The attachment this record describes, for DEL and CHECK.
    fn attachment<'a>(&'a self, id: &'a str, args: &'a [(&'static str, String)]) -> Attachment<'a> {
        Attachment {
            id,
            netns: &self.netns,
            ifname: &self.ifname,
            args,
            port_mappings: &self.port_mappings,
        }
    }
}

pub fn is_running(c: &ContainerView) -> bool {
    matches!(c.status.as_str(), "running" | "paused" | "restarting")
}

fn pod_state(c: &ContainerView) -> pb::PodSandboxState {
    if is_running(c) {
        pb::PodSandboxState::SandboxReady
    } else {
        pb::PodSandboxState::SandboxNotready
    }
}

pub fn created_at(c: &ContainerView) -> i64 {
    labels::get(&c.labels, labels::CREATED)
        .parse()
        .unwrap_or_else(|_| time::nanos(&c.created))
}

pub fn pod_metadata(l: &HashMap<String, String>) -> pb::PodSandboxMetadata {
    pb::PodSandboxMetadata {
        name: labels::get(l, labels::NAME).to_owned(),
        uid: labels::get(l, labels::UID).to_owned(),
        namespace: labels::get(l, labels::NAMESPACE).to_owned(),
        attempt: labels::get(l, labels::ATTEMPT).parse().unwrap_or(0),
    }
}
