//! berth as a Kubernetes CRI runtime, driven as kubelet drives it: a gRPC client generated from
//! the CRI proto on the daemon's CRI socket, pods networked by Debian's CNI plugins from a
//! private config dir, images pulled with credentials from a registry the test runs. What the
//! tests check is seen from inside the containers where it can be.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use berth_cri::proto as pb;
use common::cri::Cri;

#[test]
fn pod_lifecycle_with_two_containers_sharing_the_network() {
    let mut cri = Cri::start();
    let image = cri.image_in_registry();
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        // The runtime says who it is and that it is ready, network included.
        let v = cri
            .runtime
            .version(pb::VersionRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("berth", "v1"));
        let st = cri
            .runtime
            .status(pb::StatusRequest { verbose: true })
            .await
            .unwrap()
            .into_inner();
        let conds = st.status.unwrap().conditions;
        assert!(conds.iter().all(|c| c.status), "{conds:?}");
        let rc = cri
            .runtime
            .runtime_config(pb::RuntimeConfigRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rc.linux.unwrap().cgroup_driver, pb::CgroupDriver::Cgroupfs as i32);
        cri.runtime
            .update_runtime_config(pb::UpdateRuntimeConfigRequest {
                runtime_config: Some(pb::RuntimeConfig {
                    network_config: Some(pb::NetworkConfig {
                        pod_cidr: cri.subnet.clone(),
                    }),
                }),
            })
            .await
            .unwrap();

        // The image comes from the registry with kubelet's credentials.
        let spec = pb::ImageSpec {
            image: image.clone(),
            ..Default::default()
        };
        let absent = cri
            .images
            .image_status(pb::ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(absent.image.is_none());
        let pulled = cri
            .images
            .pull_image(pb::PullImageRequest {
                image: Some(spec.clone()),
                auth: Some(Cri::auth()),
                sandbox_config: None,
            })
            .await
            .unwrap()
            .into_inner()
            .image_ref;
        assert!(pulled.starts_with("sha256:"), "{pulled}");
        let status = cri
            .images
            .image_status(pb::ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: true,
            })
            .await
            .unwrap()
            .into_inner();
        let img = status.image.unwrap();
        assert_eq!(img.id, pulled);
        assert!(img.repo_tags.iter().any(|t| t == &image), "{:?}", img.repo_tags);
        assert!(!img.repo_digests.is_empty());
        assert_eq!(img.uid.map(|u| u.value), Some(0));
        assert!(status.info.contains_key("info"));

        // A pod with a server and a client container: localhost is shared.
        let pod_config = cri.pod_config("web");
        let pod = cri.run_pod(&pod_config).await;
        let server = cri
            .start_container(
                &pod,
                &pod_config,
                cri.container_config(
                    "server",
                    &image,
                    "echo started; while true; do echo hello-from-server | nc -l -p 8080; echo served; done",
                ),
            )
            .await;
        let client = cri
            .start_container(
                &pod,
                &pod_config,
                cri.container_config("client", &image, "trap 'exit 0' TERM; sleep 1000 & wait"),
            )
            .await;
        let mut got = String::new();
        for _ in 0..50 {
            got = cri.exec(&client, "nc -w 2 127.0.0.1 8080 </dev/null").await.1;
            if got.contains("hello-from-server") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(got.contains("hello-from-server"), "{got:?}");
        // The pod's hostname and UTS namespace, and its address from the CNI bridge.
        assert_eq!(cri.exec(&client, "hostname").await.1.trim(), "web");
        assert_eq!(cri.exec(&server, "cat /etc/hostname").await.1.trim(), "web");
        let ip = cri.pod_ip(&pod).await;
        let addr = cri.exec(&client, "ip -4 addr show eth0").await;
        assert!(addr.1.contains(&ip), "{ip} not in {addr:?}");
        let (code, out, err) = cri.exec(&client, "echo out; echo err >&2; exit 3").await;
        assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));

        // Status of the containers: state, image, log path, labels and annotations back.
        let s = cri.container_status(&server).await;
        assert_eq!(s.state, pb::ContainerState::ContainerRunning as i32);
        assert_eq!(s.metadata.as_ref().unwrap().name, "server");
        assert_eq!(s.image.as_ref().unwrap().image, image);
        assert_eq!(s.image_id, pulled);
        assert!(s.image_ref.contains("@sha256:"), "{}", s.image_ref);
        assert!(s.started_at > 0 && s.created_at > 0 && s.finished_at == 0);
        let log_path = pod_config.log_directory.clone() + "/server.log";
        assert_eq!(s.log_path, log_path);
        assert_eq!(s.labels["io.kubernetes.container.name"], "server");
        let ps = cri
            .runtime
            .pod_sandbox_status(pb::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: true,
            })
            .await
            .unwrap()
            .into_inner();
        let pst = ps.status.as_ref().unwrap();
        assert_eq!(pst.state, pb::PodSandboxState::SandboxReady as i32);
        assert_eq!(pst.metadata.as_ref().unwrap().name, "web");
        assert_eq!(pst.labels, pod_config.labels);
        assert_eq!(pst.annotations, pod_config.annotations);
        assert_eq!(ps.containers_statuses.len(), 2);
        assert_eq!(ps.info.get("networkCheck").map(String::as_str), Some("ok"), "{:?}", ps.info);

        // The CRI log: `<time> <stream> <P|F> <line>` at kubelet's path, reopened after
        // kubelet rotates it.
        let text = std::fs::read_to_string(&log_path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let parts: Vec<&str> = first.splitn(4, ' ').collect();
        assert_eq!(parts[1..], ["stdout", "F", "started"], "{first:?}");
        assert!(parts[0].ends_with('Z') && parts[0].contains('T'), "{first:?}");
        std::fs::rename(&log_path, format!("{log_path}.1")).unwrap();
        cri.runtime
            .reopen_container_log(pb::ReopenContainerLogRequest {
                container_id: server.clone(),
            })
            .await
            .unwrap();
        cri.exec(&client, "nc -w 2 127.0.0.1 8080 </dev/null").await;
        let mut reopened = String::new();
        for _ in 0..50 {
            reopened = std::fs::read_to_string(&log_path).unwrap_or_default();
            if !reopened.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(reopened.contains(" stdout F "), "{reopened:?}");

        // The pod's containers are ordinary containers: docker ps shows them, labelled.
        let ps = cri.daemon.docker_ok(&[
            "ps",
            "--format",
            "{{.Names}} {{.Label \"io.kubernetes.docker.type\"}} {{.Label \"io.kubernetes.pod.name\"}}",
        ]);
        assert!(ps.contains("k8s_POD_web_default_"), "{ps}");
        assert!(ps.contains(" podsandbox web"), "{ps}");
        assert!(ps.contains("k8s_server_web_default_"), "{ps}");
        let labels = cri.daemon.inspect("{{json .Config.Labels}}", &server);
        assert!(labels.contains(&format!("\"io.kubernetes.sandbox.id\":\"{pod}\"")), "{labels}");

        // Lists with filters: by id, state, labels, pod.
        let all = cri
            .runtime
            .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .items;
        assert_eq!(all.len(), 1);
        let by_label = |k: &str, v: &str| pb::PodSandboxFilter {
            label_selector: HashMap::from([(k.to_owned(), v.to_owned())]),
            ..Default::default()
        };
        for (filter, n) in [
            (by_label("app", "web"), 1),
            (by_label("app", "db"), 0),
            (
                pb::PodSandboxFilter {
                    id: pod[..12].to_owned(),
                    ..Default::default()
                },
                1,
            ),
            (
                pb::PodSandboxFilter {
                    state: Some(pb::PodSandboxStateValue {
                        state: pb::PodSandboxState::SandboxNotready as i32,
                    }),
                    ..Default::default()
                },
                0,
            ),
        ] {
            let got = cri
                .runtime
                .list_pod_sandbox(pb::ListPodSandboxRequest {
                    filter: Some(filter.clone()),
                })
                .await
                .unwrap()
                .into_inner()
                .items;
            assert_eq!(got.len(), n, "{filter:?}");
        }
        let of_pod = cri
            .runtime
            .list_containers(pb::ListContainersRequest {
                filter: Some(pb::ContainerFilter {
                    pod_sandbox_id: pod.clone(),
                    label_selector: HashMap::from([(
                        "io.kubernetes.container.name".to_owned(),
                        "client".to_owned(),
                    )]),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .containers;
        assert_eq!(of_pod.len(), 1);
        assert_eq!(of_pod[0].id, client);

        // Stats of the running containers and the pod.
        let stats = cri
            .runtime
            .container_stats(pb::ContainerStatsRequest {
                container_id: server.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .stats
            .unwrap();
        assert!(stats.memory.unwrap().usage_bytes.unwrap().value > 0);
        let pstats = cri
            .runtime
            .pod_sandbox_stats(pb::PodSandboxStatsRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .stats
            .unwrap();
        let linux = pstats.linux.unwrap();
        assert_eq!(linux.containers.len(), 2);
        assert!(linux.network.unwrap().default_interface.unwrap().rx_bytes.unwrap().value > 0);
        assert!(linux.process.unwrap().process_count.unwrap().value >= 3);

        // A stop with a timeout: the client exits on TERM (0), a container ignoring TERM is
        // killed after the timeout (137).
        cri.runtime
            .stop_container(pb::StopContainerRequest {
                container_id: client.clone(),
                timeout: 10,
            })
            .await
            .unwrap();
        let s = cri.container_status(&client).await;
        assert_eq!(
            (s.state, s.exit_code, s.reason.as_str()),
            (pb::ContainerState::ContainerExited as i32, 0, "Completed")
        );
        assert!(s.finished_at >= s.started_at);
        let stubborn = cri
            .start_container(
                &pod,
                &pod_config,
                cri.container_config("stubborn", &image, "trap '' TERM; while true; do sleep 1; done"),
            )
            .await;
        let t = std::time::Instant::now();
        cri.runtime
            .stop_container(pb::StopContainerRequest {
                container_id: stubborn.clone(),
                timeout: 1,
            })
            .await
            .unwrap();
        assert!(t.elapsed() >= Duration::from_millis(900), "{:?}", t.elapsed());
        let s = cri.container_status(&stubborn).await;
        assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));

        // Stopping and removing what is stopped or gone is no error (kubelet retries).
        for _ in 0..2 {
            cri.runtime
                .stop_container(pb::StopContainerRequest {
                    container_id: client.clone(),
                    timeout: 0,
                })
                .await
                .unwrap();
            cri.runtime
                .remove_container(pb::RemoveContainerRequest {
                    container_id: client.clone(),
                })
                .await
                .unwrap();
        }
        for _ in 0..2 {
            cri.runtime
                .stop_pod_sandbox(pb::StopPodSandboxRequest {
                    pod_sandbox_id: pod.clone(),
                })
                .await
                .unwrap();
        }
        let s = cri.container_status(&server).await;
        assert_eq!(s.state, pb::ContainerState::ContainerExited as i32);
        let pst = cri
            .runtime
            .pod_sandbox_status(pb::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert_eq!(pst.state, pb::PodSandboxState::SandboxNotready as i32);
        for _ in 0..2 {
            cri.runtime
                .remove_pod_sandbox(pb::RemovePodSandboxRequest {
                    pod_sandbox_id: pod.clone(),
                })
                .await
                .unwrap();
        }
        let left = cri.daemon.docker_ok(&["ps", "-aq"]);
        assert_eq!(left, "", "containers left: {left}");

        // RemoveImage by tag takes every tag and digest of the image.
        cri.images
            .remove_image(pb::RemoveImageRequest {
                image: Some(spec.clone()),
            })
            .await
            .unwrap();
        let gone = cri
            .images
            .list_images(pb::ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .images;
        assert!(gone.iter().all(|i| i.id != pulled), "{gone:?}");
        let fs = cri
            .images
            .image_fs_info(pb::ImageFsInfoRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(fs.image_filesystems[0].used_bytes.as_ref().unwrap().value > 0);
    });
}
