//! The CRI's harness: a private `berth daemon` whose CRI socket the test reaches with a gRPC
//! client generated from the CRI proto, a private CNI config dir (a bridge of the test's own,
//! host-local addresses from the daemon's block kept under the test's dir, portmap), and images
//! from a registry the test runs with htpasswd auth. Drop removes every pod through the CRI (so
//! the CNI plugins release what they made), then the daemon, then the bridge.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use berth_cri::proto as pb;
use berth_cri::proto::image_service_client::ImageServiceClient;
use berth_cri::proto::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use super::engine::{run_cmd, Daemon, IMAGE};
use super::registry::{Auth, Registry, PASSWORD, USER};
use super::unique;

pub struct Cri {
    pub rt: tokio::runtime::Runtime,
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
    pub cni_dir: PathBuf,
    pub cni_bridge: String,
    /// The pods' subnet (a /24 of the daemon's block) and its gateway (the bridge).
    pub subnet: String,
    pub gateway: String,
    pub log_dir: PathBuf,
    pub daemon: Daemon,
    pub registry: Option<Registry>,
}

/// Connects a CRI client to a CRI socket (berth's or a peer's).
pub async fn connect(socket: PathBuf) -> Channel {
    let mut last = None;
    for _ in 0..100 {
        let path = socket.clone();
        let connected = tonic::transport::Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await;
        match connected {
            Ok(c) => return c,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no CRI on {}: {last:?}", socket.display());
}

impl Cri {
    /// A daemon with a CNI network and the busybox image in an htpasswd registry (not in the
    /// daemon's store: `image()` names it, `pull()` pulls it with the credentials).
    pub fn start() -> Cri {
        Cri::start_with(true, &[])
    }

    /// `with_network`: whether the CNI dir holds a config (NetworkReady).
    pub fn start_with(with_network: bool, extra: &[&str]) -> Cri {
        let mut d = Daemon::unstarted(&[]);
        let cni_dir = d.dir.join("net.d");
        std::fs::create_dir_all(&cni_dir).unwrap();
        let n = unique("c");
        let tail: String = n.chars().filter(char::is_ascii_alphanumeric).collect();
        let cni_bridge = format!("cb{}", &tail[tail.len().saturating_sub(12)..]);
        let subnet = d.subnet(0);
        let gateway = subnet.replace(".0/24", ".1");
        if with_network {
            let conf = serde_json::json!({
                "cniVersion": "1.0.0",
                "name": format!("net-{tail}"),
                "plugins": [
                    {
                        "type": "bridge", "bridge": cni_bridge, "isGateway": true,
                        "ipMasq": false, "hairpinMode": true,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": subnet}]],
                            "routes": [{"dst": "0.0.0.0/0"}],
                            "dataDir": d.dir.join("ipam"),
                        },
                    },
                    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
                ],
            });
            std::fs::write(cni_dir.join("10-test.conflist"), conf.to_string()).unwrap();
        }
        d.extra_args = vec!["--cni-conf-dir".into(), cni_dir.display().to_string()];
        d.extra_args.extend(extra.iter().map(|s| s.to_string()));
        d.spawn();
        d.import_busybox(IMAGE);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let channel = rt.block_on(connect(d.dir.join("cri.sock")));
        let log_dir = d.dir.join("pod-logs");
        Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            cni_dir,
            cni_bridge,
            subnet,
            gateway,
            log_dir,
            daemon: d,
            registry: None,
        }
    }

    /// New clients on the daemon's socket (after a restart).
    pub fn reconnect(&self) -> (RuntimeServiceClient<Channel>, ImageServiceClient<Channel>) {
        let channel = self.rt.block_on(connect(self.daemon.dir.join("cri.sock")));
        (
            RuntimeServiceClient::new(channel.clone()),
            ImageServiceClient::new(channel),
        )
    }

    /// Pushes the busybox image to a registry with htpasswd auth and removes it from the
    /// daemon's store; the reference to pull.
    pub fn image_in_registry(&mut self) -> String {
        let reg = Registry::start(Auth::Htpasswd, None);
        let r = format!("{}/cri/busybox:1", reg.host);
        let d = &self.daemon;
        let login = run_cmd(
            d.docker_cmd(&["login", &reg.host, "-u", USER, "--password-stdin"]),
            Some(PASSWORD.as_bytes()),
            60,
        );
        assert!(
            login.status.success(),
            "{}",
            String::from_utf8_lossy(&login.stderr)
        );
        d.docker_ok(&["tag", IMAGE, &r]);
        d.docker_ok(&["push", &r]);
        d.docker_ok(&["rmi", &r]);
        d.docker_ok(&["logout", &reg.host]);
        self.registry = Some(reg);
        r
    }

    pub fn auth() -> pb::AuthConfig {
        pb::AuthConfig {
            username: USER.into(),
            password: PASSWORD.into(),
            ..Default::default()
        }
    }

    /// A pod config named `name` (unique namespace and uid per call).
    pub fn pod_config(&self, name: &str) -> pb::PodSandboxConfig {
        pb::PodSandboxConfig {
            metadata: Some(pb::PodSandboxMetadata {
                name: name.into(),
                namespace: "default".into(),
                uid: unique("uid"),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: self.log_dir.join(name).display().to_string(),
            labels: HashMap::from([
                ("io.kubernetes.pod.name".to_owned(), name.to_owned()),
                (
                    "io.kubernetes.pod.namespace".to_owned(),
                    "default".to_owned(),
                ),
                ("app".to_owned(), name.to_owned()),
            ]),
            annotations: HashMap::from([("note".to_owned(), format!("pod {name}"))]),
            linux: Some(pb::LinuxPodSandboxConfig {
                security_context: Some(pb::LinuxSandboxSecurityContext {
                    namespace_options: Some(pb::NamespaceOption::default()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A container config running `sh -c script` in `image`, its log at `<name>.log`.
    pub fn container_config(&self, name: &str, image: &str, script: &str) -> pb::ContainerConfig {
        pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(pb::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            log_path: format!("{name}.log"),
            labels: HashMap::from([("io.kubernetes.container.name".to_owned(), name.to_owned())]),
            linux: Some(pb::LinuxContainerConfig {
                security_context: Some(pb::LinuxContainerSecurityContext {
                    namespace_options: Some(pb::NamespaceOption::default()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub async fn run_pod(&mut self, config: &pb::PodSandboxConfig) -> String {
        self.runtime
            .run_pod_sandbox(pb::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", self.daemon.daemon_log()))
            .into_inner()
            .pod_sandbox_id
    }

    /// CreateContainer + StartContainer.
    pub async fn start_container(
        &mut self,
        pod: &str,
        pod_config: &pb::PodSandboxConfig,
        config: pb::ContainerConfig,
    ) -> String {
        let id = self
            .runtime
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config),
                sandbox_config: Some(pod_config.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer: {e}"))
            .into_inner()
            .container_id;
        self.runtime
            .start_container(pb::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", self.daemon.daemon_log()));
        id
    }

    /// ExecSync of `sh -c script`: (exit code, stdout, stderr).
    pub async fn exec(&mut self, container: &str, script: &str) -> (i32, String, String) {
        let r = self
            .runtime
            .exec_sync(pb::ExecSyncRequest {
                container_id: container.into(),
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                timeout: 30,
            })
            .await
            .unwrap_or_else(|e| panic!("ExecSync {script}: {e}"))
            .into_inner();
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    pub async fn container_status(&mut self, id: &str) -> pb::ContainerStatus {
        self.runtime
            .container_status(pb::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
    }

    /// Polls the container's status until `done` holds (`secs` at most).
    pub async fn wait_status(
        &mut self,
        id: &str,
        secs: u64,
        done: impl Fn(&pb::ContainerStatus) -> bool,
    ) -> pb::ContainerStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let s = self.container_status(id).await;
            if done(&s) || std::time::Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn pod_ip(&mut self, pod: &str) -> String {
        self.runtime
            .pod_sandbox_status(pb::PodSandboxStatusRequest {
                pod_sandbox_id: pod.into(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
            .network
            .unwrap()
            .ip
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        let runtime = &mut self.runtime;
        self.rt.block_on(async {
            if let Ok(pods) = runtime
                .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
                .await
            {
                for p in pods.into_inner().items {
                    let _ = runtime
                        .remove_pod_sandbox(pb::RemovePodSandboxRequest {
                            pod_sandbox_id: p.id,
                        })
                        .await;
                }
            }
        });
        let _ = Command::new("ip")
            .args(["link", "del", &self.cni_bridge])
            .stderr(Stdio::null())
            .status();
    }
}
