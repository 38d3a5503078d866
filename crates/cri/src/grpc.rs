//! The gRPC services kubelet calls: each method checks its request and hands it to the CRI's
//! operations; errors become the statuses kubelet expects.

use std::pin::Pin;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::proto as pb;
use crate::proto::image_service_server::ImageService;
use crate::proto::runtime_service_server::RuntimeService;
use crate::service::Cri;

type Reply<T> = std::result::Result<Response<T>, Status>;

/// The CRI API version this runtime serves.
const API_VERSION: &str = "v1";

#[derive(Debug, Clone)]
pub struct Runtime(pub Arc<Cri>);

#[derive(Debug, Clone)]
pub struct Images(pub Arc<Cri>);

fn ok<T>(t: T) -> Reply<T> {
    Ok(Response::new(t))
}

#[tonic::async_trait]
impl RuntimeService for Runtime {
    async fn version(&self, _: Request<pb::VersionRequest>) -> Reply<pb::VersionResponse> {
        ok(pb::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: API_VERSION.into(),
        })
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<pb::RunPodSandboxRequest>,
    ) -> Reply<pb::RunPodSandboxResponse> {
        let r = r.into_inner();
        let config = r
            .config
            .ok_or_else(|| Error::InvalidArgument("pod sandbox config is missing".into()))?;
        let id = self.0.run_pod(config, &r.runtime_handler).await?;
        ok(pb::RunPodSandboxResponse { pod_sandbox_id: id })
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<pb::StopPodSandboxRequest>,
    ) -> Reply<pb::StopPodSandboxResponse> {
        self.0.stop_pod(&r.into_inner().pod_sandbox_id).await?;
        ok(pb::StopPodSandboxResponse {})
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<pb::RemovePodSandboxRequest>,
    ) -> Reply<pb::RemovePodSandboxResponse> {
        self.0.remove_pod(&r.into_inner().pod_sandbox_id).await?;
        ok(pb::RemovePodSandboxResponse {})
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<pb::PodSandboxStatusRequest>,
    ) -> Reply<pb::PodSandboxStatusResponse> {
        let r = r.into_inner();
        let mut status = self.0.pod_status(&r.pod_sandbox_id, r.verbose)?;
        if let (true, Some(s)) = (r.verbose, &status.status) {
            if let Some(checked) = self.0.check_network(&s.id).await {
                let text = match checked {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => e.to_string(),
                };
                status.info.insert("networkCheck".into(), text);
            }
        }
        if let Some(s) = &status.status {
            status.containers_statuses = self
                .0
                .containers_of(&s.id)
                .iter()
                .filter_map(|c| self.0.container_status(&c.id, false).ok())
                .filter_map(|r| r.status)
                .collect();
        }
        ok(status)
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<pb::ListPodSandboxRequest>,
    ) -> Reply<pb::ListPodSandboxResponse> {
        ok(pb::ListPodSandboxResponse {
            items: self.0.list_pods(r.into_inner().filter),
        })
    }

    async fn create_container(
        &self,
        r: Request<pb::CreateContainerRequest>,
    ) -> Reply<pb::CreateContainerResponse> {
        let r = r.into_inner();
        let id = self
            .0
            .create_container(&r.pod_sandbox_id, r.config, r.sandbox_config)
            .await?;
        ok(pb::CreateContainerResponse { container_id: id })
    }

    async fn start_container(
        &self,
        r: Request<pb::StartContainerRequest>,
    ) -> Reply<pb::StartContainerResponse> {
        self.0.start_container(&r.into_inner().container_id).await?;
        ok(pb::StartContainerResponse {})
    }

    async fn stop_container(
        &self,
        r: Request<pb::StopContainerRequest>,
    ) -> Reply<pb::StopContainerResponse> {
        let r = r.into_inner();
        self.0.stop_container(&r.container_id, r.timeout).await?;
        ok(pb::StopContainerResponse {})
    }

    async fn remove_container(
        &self,
        r: Request<pb::RemoveContainerRequest>,
    ) -> Reply<pb::RemoveContainerResponse> {
        self.0
            .remove_container(&r.into_inner().container_id)
            .await?;
        ok(pb::RemoveContainerResponse {})
    }

    async fn list_containers(
        &self,
        r: Request<pb::ListContainersRequest>,
    ) -> Reply<pb::ListContainersResponse> {
        ok(pb::ListContainersResponse {
            containers: self.0.list_containers(r.into_inner().filter),
        })
    }

    async fn container_status(
        &self,
        r: Request<pb::ContainerStatusRequest>,
    ) -> Reply<pb::ContainerStatusResponse> {
        let r = r.into_inner();
        ok(self.0.container_status(&r.container_id, r.verbose)?)
    }

    async fn update_container_resources(
        &self,
        r: Request<pb::UpdateContainerResourcesRequest>,
    ) -> Reply<pb::UpdateContainerResourcesResponse> {
        let r = r.into_inner();
        self.0.update_resources(&r.container_id, r.linux).await?;
        ok(pb::UpdateContainerResourcesResponse {})
    }

    async fn reopen_container_log(
        &self,
        r: Request<pb::ReopenContainerLogRequest>,
    ) -> Reply<pb::ReopenContainerLogResponse> {
        self.0.reopen_log(&r.into_inner().container_id).await?;
        ok(pb::ReopenContainerLogResponse {})
    }

    async fn exec_sync(&self, r: Request<pb::ExecSyncRequest>) -> Reply<pb::ExecSyncResponse> {
        let r = r.into_inner();
        ok(self.0.exec_sync(&r.container_id, r.cmd, r.timeout).await?)
    }

    async fn exec(&self, r: Request<pb::ExecRequest>) -> Reply<pb::ExecResponse> {
        let url = self.0.stream_exec(r.into_inner())?;
        ok(pb::ExecResponse { url })
    }

    async fn attach(&self, r: Request<pb::AttachRequest>) -> Reply<pb::AttachResponse> {
        let url = self.0.stream_attach(r.into_inner())?;
        ok(pb::AttachResponse { url })
    }

    async fn port_forward(
        &self,
        r: Request<pb::PortForwardRequest>,
    ) -> Reply<pb::PortForwardResponse> {
        let url = self.0.stream_port_forward(r.into_inner())?;
        ok(pb::PortForwardResponse { url })
    }

    async fn container_stats(
        &self,
        r: Request<pb::ContainerStatsRequest>,
    ) -> Reply<pb::ContainerStatsResponse> {
        let c = self.0.find_container(&r.into_inner().container_id)?;
        ok(pb::ContainerStatsResponse {
            stats: Some(self.0.container_stats(&c)),
        })
    }

    async fn list_container_stats(
        &self,
        r: Request<pb::ListContainerStatsRequest>,
    ) -> Reply<pb::ListContainerStatsResponse> {
        let f = r.into_inner().filter.unwrap_or_default();
        let filter = pb::ContainerFilter {
            id: f.id,
            pod_sandbox_id: f.pod_sandbox_id,
            label_selector: f.label_selector,
            state: None,
        };
        let stats = self
            .0
            .list_containers(Some(filter))
            .iter()
            .filter_map(|c| self.0.find_container(&c.id).ok())
            .map(|c| self.0.container_stats(&c))
            .collect();
        ok(pb::ListContainerStatsResponse { stats })
    }

    async fn pod_sandbox_stats(
        &self,
        r: Request<pb::PodSandboxStatsRequest>,
    ) -> Reply<pb::PodSandboxStatsResponse> {
        let id = r.into_inner().pod_sandbox_id;
        let stats = self.0.pod_stats(&id)?;
        ok(pb::PodSandboxStatsResponse { stats: Some(stats) })
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<pb::ListPodSandboxStatsRequest>,
    ) -> Reply<pb::ListPodSandboxStatsResponse> {
        let f = r.into_inner().filter.unwrap_or_default();
        let filter = pb::PodSandboxFilter {
            id: f.id,
            label_selector: f.label_selector,
            state: None,
        };
        let stats = self
            .0
            .list_pods(Some(filter))
            .iter()
            .filter_map(|p| self.0.pod_stats(&p.id).ok())
            .collect();
        ok(pb::ListPodSandboxStatsResponse { stats })
    }

    async fn update_runtime_config(
        &self,
        r: Request<pb::UpdateRuntimeConfigRequest>,
    ) -> Reply<pb::UpdateRuntimeConfigResponse> {
        let cidr = r
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        *self.0.pod_cidr.lock().unwrap_or_else(|p| p.into_inner()) = cidr;
        ok(pb::UpdateRuntimeConfigResponse {})
    }

    async fn status(&self, r: Request<pb::StatusRequest>) -> Reply<pb::StatusResponse> {
        let network = self.0.cni.network();
        let runtime_ready = pb::RuntimeCondition {
            r#type: "RuntimeReady".into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        let network_ready = match &network {
            Ok(_) => pb::RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: true,
                reason: String::new(),
                message: String::new(),
            },
            Err(why) => pb::RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!("Network plugin returns error: cni plugin not initialized: {why}"),
            },
        };
        let mut info = std::collections::HashMap::new();
        if r.into_inner().verbose {
            let cidr = self
                .0
                .pod_cidr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            info.insert(
                "config".to_owned(),
                serde_json::json!({
                    "cniConfDir": self.0.opts.cni_conf_dir,
                    "cniBinDirs": self.0.opts.cni_bin_dirs,
                    "network": network.as_ref().map(|n| n.name.clone()).ok(),
                    "podCIDR": cidr,
                    "sandboxImage": self.0.opts.sandbox_image,
                    "runtimeHandlers": self.0.engine.runtimes(),
                })
                .to_string(),
            );
        }
        let handlers = std::iter::once(String::new())
            .chain(self.0.engine.runtimes())
            .map(|name| pb::RuntimeHandler {
                name,
                features: Some(pb::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: false,
                    user_namespaces: false,
                }),
            })
            .collect();
        ok(pb::StatusResponse {
            status: Some(pb::RuntimeStatus {
                conditions: vec![runtime_ready, network_ready],
            }),
            info,
            runtime_handlers: handlers,
            features: Some(pb::RuntimeFeatures {
                supplemental_groups_policy: true,
            }),
        })
    }

    async fn checkpoint_container(
        &self,
        _: Request<pb::CheckpointContainerRequest>,
    ) -> Reply<pb::CheckpointContainerResponse> {
        Err(Error::Unimplemented("berth does not checkpoint containers (no CRIU)".into()).into())
    }

    type GetContainerEventsStream = Pin<
        Box<dyn futures_util::Stream<Item = Result<pb::ContainerEventResponse, Status>> + Send>,
    >;

    async fn get_container_events(
        &self,
        _: Request<pb::GetEventsRequest>,
    ) -> Reply<Self::GetContainerEventsStream> {
        let rx = self.0.events.subscribe();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((Ok(e), rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        ok(Box::pin(stream))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<pb::ListMetricDescriptorsRequest>,
    ) -> Reply<pb::ListMetricDescriptorsResponse> {
        ok(pb::ListMetricDescriptorsResponse {
            descriptors: crate::stats::descriptors(),
        })
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<pb::ListPodSandboxMetricsRequest>,
    ) -> Reply<pb::ListPodSandboxMetricsResponse> {
        let pod_metrics = self
            .0
            .list_pods(None)
            .iter()
            .filter_map(|p| self.0.pod_metrics(&p.id).ok())
            .collect();
        ok(pb::ListPodSandboxMetricsResponse { pod_metrics })
    }

    async fn runtime_config(
        &self,
        _: Request<pb::RuntimeConfigRequest>,
    ) -> Reply<pb::RuntimeConfigResponse> {
        ok(pb::RuntimeConfigResponse {
            linux: Some(pb::LinuxRuntimeConfiguration {
                // berth manages cgroups through cgroupfs (no systemd driver).
                cgroup_driver: pb::CgroupDriver::Cgroupfs as i32,
            }),
        })
    }
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(
        &self,
        r: Request<pb::ListImagesRequest>,
    ) -> Reply<pb::ListImagesResponse> {
        ok(pb::ListImagesResponse {
            images: self.0.list_images(r.into_inner().filter)?,
        })
    }

    async fn image_status(
        &self,
        r: Request<pb::ImageStatusRequest>,
    ) -> Reply<pb::ImageStatusResponse> {
        let r = r.into_inner();
        ok(self.0.image_status(r.image, r.verbose)?)
    }

    async fn pull_image(&self, r: Request<pb::PullImageRequest>) -> Reply<pb::PullImageResponse> {
        let r = r.into_inner();
        let image_ref = self.0.pull_image(r.image, r.auth).await?;
        ok(pb::PullImageResponse { image_ref })
    }

    async fn remove_image(
        &self,
        r: Request<pb::RemoveImageRequest>,
    ) -> Reply<pb::RemoveImageResponse> {
        self.0.remove_image(r.into_inner().image)?;
        ok(pb::RemoveImageResponse {})
    }

    async fn image_fs_info(
        &self,
        _: Request<pb::ImageFsInfoRequest>,
    ) -> Reply<pb::ImageFsInfoResponse> {
        ok(self.0.image_fs_info())
    }
}
