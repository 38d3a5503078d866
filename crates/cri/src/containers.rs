//! A pod's containers: ordinary engine containers in the pod's namespaces, labelled with the
//! pod and the CRI's metadata.

use std::collections::HashMap;
use std::time::Duration;

use berth_engine::ContainerView;
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::labels;
use crate::pods::{created_at, is_running};
use crate::proto as pb;
use crate::service::Cri;
use crate::time;
use crate::translate;

/// ExecSync keeps at most this much of each stream (kubelet's probes read a little).
const MAX_EXEC_OUTPUT: usize = 16 << 20;

impl Cri {
    pub async fn create_container(
        &self,
        pod_id: &str,
        config: Option<pb::ContainerConfig>,
        pod_config: Option<pb::PodSandboxConfig>,
    ) -> Result<String> {
        let config =
            config.ok_or_else(|| Error::InvalidArgument("container config is missing".into()))?;
        let meta = config
            .metadata
            .clone()
            .filter(|m| !m.name.is_empty())
            .ok_or_else(|| {
                Error::InvalidArgument("container config has no metadata name".into())
            })?;
        let pod = self
            .find_pod(pod_id)?
            .ok_or_else(|| Error::NotFound(format!("pod sandbox {pod_id:?} not found")))?;
        if !is_running(&pod) {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let image_spec = config
            .image
            .clone()
            .filter(|i| !i.image.is_empty())
            .ok_or_else(|| Error::InvalidArgument("container config has no image".into()))?;
        self.engine.image(&image_spec.image).map_err(|_| {
            Error::NotFound(format!(
                "image {:?} not found (pull it first)",
                image_spec.image
            ))
        })?;
        let pl = &pod.labels;
        let name = format!(
            "k8s_{}_{}_{}_{}_{}",
            meta.name,
            labels::get(pl, labels::NAME),
            labels::get(pl, labels::NAMESPACE),
            labels::get(pl, labels::UID),
            meta.attempt
        );
        let handler = labels::get(pl, labels::HANDLER);
        let runtime = self.runtime_for(handler)?;
        let log_dir = pod_config.as_ref().map(|p| p.log_directory.clone());
        let log_path = match (log_dir.as_deref(), config.log_path.as_str()) {
            (Some(d), p) if !d.is_empty() && !p.is_empty() => {
                std::path::Path::new(d).join(p).display().to_string()
            }
            _ => String::new(),
        };
        let own = [
            (labels::TYPE, labels::TYPE_CONTAINER.to_owned()),
            (labels::SANDBOX_ID, pod.id.clone()),
            (labels::LOG_PATH, log_path),
            (labels::NAME, meta.name.clone()),
            (labels::ATTEMPT, meta.attempt.to_string()),
            (labels::CREATED, time::now().to_string()),
            // Reported back in the full form, as containerd does (kubelet shows it).
            (
                labels::IMAGE,
                berth_engine::full_reference(&image_spec.image),
            ),
            (labels::HANDLER, handler.to_owned()),
        ];
        let all_labels = labels::encode(&config.labels, &config.annotations, &own);
        let (body, extras) = translate::create_request(
            &config,
            &pod,
            log_dir.as_deref(),
            &image_spec.image,
            &runtime,
            all_labels,
        )?;
        self.engine
            .create(&name, body, extras)
            .await
            .map_err(|e| match e {
                berth_engine::Error::Conflict(m) if m.contains("already in use") => {
                    Error::AlreadyExists(format!("container name {name:?} is in use: {m}"))
                }
                other => other.into(),
            })
    }

    pub async fn start_container(&self, id: &str) -> Result<()> {
        let c = self.find_container(id)?;
        if c.status != "created" {
            return Err(Error::FailedPrecondition(format!(
                "container {} is {}, not created",
                c.id, c.status
            )));
        }
        self.engine.start(&c.id).await.map_err(Error::from)
    }

    /// The stop signal, then SIGKILL after `timeout` seconds. A container that is gone or
    /// stopped is not an error.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let Some(c) = self.lookup_container(id)? else {
            return Ok(());
        };
        if is_running(&c) {
            self.engine.stop(&c.id, timeout.max(0)).await?;
        }
        Ok(())
    }

    /// Removes the container (killing it if it runs). One that is gone is not an error.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let Some(c) = self.lookup_container(id)? else {
            return Ok(());
        };
        self.engine.remove(&c.id).await.map_err(Error::from)
    }

    pub fn container_status(&self, id: &str, verbose: bool) -> Result<pb::ContainerStatusResponse> {
        let c = self.find_container(id)?;
        let l = &c.labels;
        let state = container_state(&c);
        let (reason, message) = match state {
            pb::ContainerState::ContainerExited if c.oom_killed => ("OOMKilled", String::new()),
            pb::ContainerState::ContainerExited if !c.error.is_empty() => {
                ("StartError", c.error.clone())
            }
            pb::ContainerState::ContainerExited if c.exit_code == 0 => ("Completed", String::new()),
            pb::ContainerState::ContainerExited => ("Error", String::new()),
            _ => ("", String::new()),
        };
        let mounts = c
            .mounts
            .iter()
            .map(|m| pb::Mount {
                container_path: m.destination.clone(),
                host_path: m.source.display().to_string(),
                readonly: m.read_only,
                propagation: if m.options.iter().any(|o| o == "rshared") {
                    pb::MountPropagation::PropagationBidirectional as i32
                } else if m.options.iter().any(|o| o == "rslave") {
                    pb::MountPropagation::PropagationHostToContainer as i32
                } else {
                    pb::MountPropagation::PropagationPrivate as i32
                },
                ..Default::default()
            })
            .collect();
        let image_ref = self.image_ref(&c);
        let status = pb::ContainerStatus {
            id: c.id.clone(),
            metadata: Some(container_metadata(l)),
            state: state as i32,
            created_at: created_at(&c),
            started_at: time::nanos(&c.started_at),
            finished_at: if state == pb::ContainerState::ContainerExited {
                time::nanos(&c.finished_at)
            } else {
                0
            },
            exit_code: c.exit_code,
            image: Some(pb::ImageSpec {
                image: labels::get(l, labels::IMAGE).to_owned(),
                ..Default::default()
            }),
            image_ref,
            image_id: c.image_id.clone(),
            reason: reason.into(),
            message,
            labels: labels::cri_labels(l),
            annotations: labels::annotations(l),
            mounts,
            log_path: labels::get(l, labels::LOG_PATH).to_owned(),
            resources: Some(pb::ContainerResources {
                linux: Some(resources_of(&c)),
                windows: None,
            }),
            user: (state == pb::ContainerState::ContainerRunning)
                .then(|| process_user(c.pid))
                .flatten(),
        };
        let mut info = HashMap::new();
        if verbose {
            info.insert(
                "info".to_owned(),
                serde_json::json!({
                    "pid": c.pid,
                    "sandboxID": labels::get(l, labels::SANDBOX_ID),
                    "runtimeType": c.host_config.runtime,
                })
                .to_string(),
            );
        }
        Ok(pb::ContainerStatusResponse {
            status: Some(status),
            info,
        })
    }

    pub fn list_containers(&self, filter: Option<pb::ContainerFilter>) -> Vec<pb::Container> {
        let f = filter.unwrap_or_default();
        self.engine
            .list()
            .into_iter()
            .filter(|c| labels::get(&c.labels, labels::TYPE) == labels::TYPE_CONTAINER)
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| {
                f.pod_sandbox_id.is_empty()
                    || labels::get(&c.labels, labels::SANDBOX_ID).starts_with(&f.pod_sandbox_id)
            })
            .filter(|c| {
                f.state
                    .as_ref()
                    .is_none_or(|s| s.state == container_state(c) as i32)
            })
            .filter(|c| labels::matches(&c.labels, &f.label_selector))
            .map(|c| pb::Container {
                pod_sandbox_id: labels::get(&c.labels, labels::SANDBOX_ID).to_owned(),
                metadata: Some(container_metadata(&c.labels)),
                image: Some(pb::ImageSpec {
                    image: labels::get(&c.labels, labels::IMAGE).to_owned(),
                    ..Default::default()
                }),
                image_ref: self.image_ref(&c),
                image_id: c.image_id.clone(),
                state: container_state(&c) as i32,
                created_at: created_at(&c),
                labels: labels::cri_labels(&c.labels),
                annotations: labels::annotations(&c.labels),
                id: c.id,
            })
            .collect()
    }

    /// The image's digest reference where the store knows one, else its id (kubelet shows
    /// it as the container's imageID).
    fn image_ref(&self, c: &ContainerView) -> String {
        self.engine
            .image(&c.image_id)
            .ok()
            .and_then(|i| i.repo_digests.first().cloned())
            .unwrap_or_else(|| c.image_id.clone())
    }

    pub async fn update_resources(
        &self,
        id: &str,
        r: Option<pb::LinuxContainerResources>,
    ) -> Result<()> {
        let c = self.find_container(id)?;
        let Some(r) = r else { return Ok(()) };
        let mut hc = bollard_stubs::models::HostConfig::default();
        translate::apply_resources(&mut hc, &r)?;
        self.engine.update_resources(&c.id, hc).await?;
        Ok(())
    }

    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        let c = self.find_container(id)?;
        if !is_running(&c) {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        if labels::get(&c.labels, labels::LOG_PATH).is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "container {} has no log path",
                c.id
            )));
        }
        self.engine.reopen_log(&c.id).await.map_err(Error::from)
    }

    /// Runs `cmd` in the container and returns its output and exit code; past `timeout`
    /// seconds (0: none) the process is killed and the call fails with DeadlineExceeded.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<pb::ExecSyncResponse> {
        let c = self.find_container(id)?;
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("exec command is empty".into()));
        }
        if c.status != "running" {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        let io = self.engine.exec(&c.id, cmd.clone(), false, false).await?;
        let exec_id = io.exec_id.clone();
        let mut stream = io.stream;
        let read = async {
            let mut out = (Vec::new(), Vec::new());
            let mut header = [0u8; 8];
            loop {
                if stream.read_exact(&mut header).await.is_err() {
                    break;
                }
                let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
                let mut data = vec![0u8; len];
                if stream.read_exact(&mut data).await.is_err() {
                    break;
                }
                let buf = if header[0] == 2 {
                    &mut out.1
                } else {
                    &mut out.0
                };
                let room = MAX_EXEC_OUTPUT.saturating_sub(buf.len());
                buf.extend_from_slice(&data[..data.len().min(room)]);
            }
            out
        };
        let out = if timeout > 0 {
            match tokio::time::timeout(Duration::from_secs(timeout as u64), read).await {
                Ok(out) => out,
                Err(_) => {
                    let pid = self.engine.exec_pid(&exec_id);
                    if pid > 0 {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    let _ = self.engine.exec_wait(&exec_id).await;
                    return Err(Error::DeadlineExceeded(format!(
                        "command {cmd:?} in container {} timed out after {timeout}s",
                        c.id
                    )));
                }
            }
        } else {
            read.await
        };
        let code = self.engine.exec_wait(&exec_id).await;
        Ok(pb::ExecSyncResponse {
            stdout: out.0,
            stderr: out.1,
            exit_code: code as i32,
        })
    }

    pub fn container_stats(&self, c: &ContainerView) -> pb::ContainerStats {
        let s = self.engine.stats(&c.id).unwrap_or(serde_json::Value::Null);
        let now = time::now();
        let mem = &s["memory_stats"];
        let usage = mem["usage"].as_u64().unwrap_or(0);
        let inactive = mem["stats"]["total_inactive_file"]
            .as_u64()
            .or_else(|| mem["stats"]["inactive_file"].as_u64())
            .unwrap_or(0);
        pb::ContainerStats {
            attributes: Some(pb::ContainerAttributes {
                id: c.id.clone(),
                metadata: Some(container_metadata(&c.labels)),
                labels: labels::cri_labels(&c.labels),
                annotations: labels::annotations(&c.labels),
            }),
            cpu: Some(pb::CpuUsage {
                timestamp: now,
                usage_core_nano_seconds: Some(pb::UInt64Value {
                    value: s["cpu_stats"]["cpu_usage"]["total_usage"]
                        .as_u64()
                        .unwrap_or(0),
                }),
                usage_nano_cores: None,
            }),
            memory: Some(pb::MemoryUsage {
                timestamp: now,
                working_set_bytes: Some(pb::UInt64Value {
                    value: usage.saturating_sub(inactive),
                }),
                usage_bytes: Some(pb::UInt64Value { value: usage }),
                rss_bytes: mem["stats"]["rss"]
                    .as_u64()
                    .or_else(|| mem["stats"]["anon"].as_u64())
                    .map(|value| pb::UInt64Value { value }),
                ..Default::default()
            }),
            writable_layer: None,
            swap: None,
        }
    }

    /// The pod's container `id` names (full id or unique prefix).
    pub fn find_container(&self, id: &str) -> Result<ContainerView> {
        self.lookup_container(id)?
            .ok_or_else(|| Error::NotFound(format!("container {id:?} not found")))
    }

    fn lookup_container(&self, id: &str) -> Result<Option<ContainerView>> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("container id is empty".into()));
        }
        Ok(self
            .engine
            .inspect(id)
            .ok()
            .filter(|c| labels::get(&c.labels, labels::TYPE) == labels::TYPE_CONTAINER))
    }
}

/// The user the container's process runs as, from its /proc status (kubelet reports the
/// effective groups when the runtime serves the supplemental groups policy).
fn process_user(pid: i32) -> Option<pb::ContainerUser> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| -> Vec<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (uid, gid) = (field("Uid:"), field("Gid:"));
    Some(pb::ContainerUser {
        linux: Some(pb::LinuxContainerUser {
            uid: *uid.first()?,
            gid: *gid.first()?,
            supplemental_groups: field("Groups:"),
        }),
    })
}

fn container_state(c: &ContainerView) -> pb::ContainerState {
    match c.status.as_str() {
        "created" => pb::ContainerState::ContainerCreated,
        "running" | "paused" | "restarting" => pb::ContainerState::ContainerRunning,
        "exited" | "dead" => pb::ContainerState::ContainerExited,
        _ => pb::ContainerState::ContainerUnknown,
    }
}

fn container_metadata(l: &HashMap<String, String>) -> pb::ContainerMetadata {
    pb::ContainerMetadata {
        name: labels::get(l, labels::NAME).to_owned(),
        attempt: labels::get(l, labels::ATTEMPT).parse().unwrap_or(0),
    }
}

fn resources_of(c: &ContainerView) -> pb::LinuxContainerResources {
    let hc = &c.host_config;
    pb::LinuxContainerResources {
        cpu_period: hc.cpu_period.unwrap_or(0),
        cpu_quota: hc.cpu_quota.unwrap_or(0),
        cpu_shares: hc.cpu_shares.unwrap_or(0),
        memory_limit_in_bytes: hc.memory.unwrap_or(0),
        memory_swap_limit_in_bytes: hc.memory_swap.unwrap_or(0),
        oom_score_adj: hc.oom_score_adj.unwrap_or(0),
        cpuset_cpus: hc.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: hc.cpuset_mems.clone().unwrap_or_default(),
        ..Default::default()
    }
}
