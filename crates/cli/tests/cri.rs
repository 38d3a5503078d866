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
        let all_stats = cri
            .runtime
            .list_container_stats(pb::ListContainerStatsRequest {
                filter: Some(pb::ContainerStatsFilter {
                    pod_sandbox_id: pod.clone(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .stats;
        assert_eq!(all_stats.len(), 2);
        let pod_stats = cri
            .runtime
            .list_pod_sandbox_stats(pb::ListPodSandboxStatsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .stats;
        assert_eq!(pod_stats.len(), 1);
        let descriptors = cri
            .runtime
            .list_metric_descriptors(pb::ListMetricDescriptorsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .descriptors;
        let metrics = cri
            .runtime
            .list_pod_sandbox_metrics(pb::ListPodSandboxMetricsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .pod_metrics;
        assert_eq!(metrics.len(), 1);
        let named: Vec<&str> = descriptors.iter().map(|d| d.name.as_str()).collect();
        for m in metrics[0].container_metrics.iter().flat_map(|c| c.metrics.iter()) {
            assert!(named.contains(&m.name.as_str()), "{} has no descriptor", m.name);
        }
        assert_eq!(metrics[0].container_metrics.len(), 2);

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

        // RemoveImage by one tag takes every tag and digest of the image.
        cri.daemon.docker_ok(&["tag", &image, "second-tag:1"]);
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
        let images = cri.daemon.docker_ok(&["images", "-q", "--no-trunc"]);
        assert!(!images.contains(&pulled), "{images}");
        let fs = cri
            .images
            .image_fs_info(pb::ImageFsInfoRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(fs.image_filesystems[0].used_bytes.as_ref().unwrap().value > 0);
    });
}

/// A container config in `IMAGE` that sleeps until stopped.
fn sleeper(cri: &Cri, name: &str) -> pb::ContainerConfig {
    cri.container_config(
        name,
        common::engine::IMAGE,
        "trap 'exit 0' TERM; sleep 1000 & wait",
    )
}

#[test]
fn pods_reach_each_other_over_the_cni_bridge_and_publish_host_ports() {
    let mut cri = Cri::start();
    let rt = cri.rt.handle().clone();
    let host_port = common::registry::free_port();
    rt.block_on(async {
        let mut a_config = cri.pod_config("pod-a");
        a_config.port_mappings = vec![pb::PortMapping {
            protocol: pb::Protocol::Tcp as i32,
            container_port: 8080,
            host_port: i32::from(host_port),
            host_ip: String::new(),
        }];
        let a = cri.run_pod(&a_config).await;
        let server = cri.container_config(
            "server",
            common::engine::IMAGE,
            "while true; do echo hello-from-a | nc -l -p 8080; done",
        );
        cri.start_container(&a, &a_config, server).await;
        let b_config = cri.pod_config("pod-b");
        let b = cri.run_pod(&b_config).await;
        let client = cri
            .start_container(&b, &b_config, sleeper(&cri, "client"))
            .await;
        let a_ip = cri.pod_ip(&a).await;
        let b_ip = cri.pod_ip(&b).await;
        assert_ne!(a_ip, b_ip);
        assert!(
            a_ip.starts_with(&cri.subnet[..cri.subnet.len() - 4]),
            "{a_ip} {}",
            cri.subnet
        );
        let mut got = String::new();
        for _ in 0..50 {
            got = cri
                .exec(&client, &format!("nc -w 2 {a_ip} 8080 </dev/null"))
                .await
                .1;
            if got.contains("hello-from-a") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            got.contains("hello-from-a"),
            "pod b could not reach pod a: {got:?}"
        );

        // hostPort: the host's port reaches pod a (portmap), also from the host itself.
        let read_from = |addr: String| {
            let mut s = std::net::TcpStream::connect_timeout(
                &addr.parse().unwrap(),
                Duration::from_secs(3),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut s, &mut buf)?;
            Ok::<_, std::io::Error>(buf)
        };
        let target = format!("{}:{host_port}", cri.gateway);
        let mut via_host = String::new();
        for _ in 0..30 {
            via_host = read_from(target.clone()).unwrap_or_default();
            if via_host.contains("hello-from-a") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            via_host.contains("hello-from-a"),
            "hostPort {target}: {via_host:?}"
        );

        // StopPodSandbox runs CNI DEL: the port and the address are released.
        cri.runtime
            .stop_pod_sandbox(pb::StopPodSandboxRequest {
                pod_sandbox_id: a.clone(),
            })
            .await
            .unwrap();
        assert!(read_from(target.clone())
            .map(|s| s.is_empty())
            .unwrap_or(true));
        let nat = std::process::Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .unwrap();
        let nat = String::from_utf8_lossy(&nat.stdout);
        assert!(!nat.contains(&format!("--dport {host_port} ")), "{nat}");
        let leases = cri.daemon.dir.join("ipam");
        let held: Vec<String> = walk(&leases)
            .into_iter()
            .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(&a)))
            .map(|f| f.display().to_string())
            .collect();
        assert!(held.is_empty(), "address of pod a still held: {held:?}");
    });
}

/// Files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `/proc/self/status`'s value of `key` in the container.
async fn status_field(cri: &mut Cri, id: &str, key: &str) -> String {
    let out = cri
        .exec(id, &format!("grep '^{key}:' /proc/self/status"))
        .await
        .1;
    out.split_once(':')
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or(out)
}

#[test]
fn security_context_fields_are_seen_inside_the_containers() {
    let mut cri = Cri::start();
    // An image whose /etc/group puts nobody in a group of its own (Merge vs Strict).
    cri.daemon
        .commit_layer("echo extra:x:3000:nobody >> /etc/group", "cri-groups:1");
    let profile = cri.daemon.dir.join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let shared = cri.daemon.dir.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    let mounted = |args: &[&str]| {
        let o = std::process::Command::new("mount")
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mount {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let shared_s = shared.display().to_string();
    mounted(&["--bind", &shared_s, &shared_s]);
    mounted(&["--make-shared", &shared_s]);
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        let mut pod_config = cri.pod_config("secure");
        {
            let linux = pod_config.linux.as_mut().unwrap();
            linux.sysctls = HashMap::from([
                ("kernel.shm_rmid_forced".to_owned(), "1".to_owned()),
                (
                    "net.ipv4.ip_local_port_range".to_owned(),
                    "40000 50000".to_owned(),
                ),
            ]);
            linux.security_context.as_mut().unwrap().namespace_options =
                Some(pb::NamespaceOption {
                    pid: pb::NamespaceMode::Pod as i32,
                    ..Default::default()
                });
        }
        let pod = cri.run_pod(&pod_config).await;
        let with = |cri: &Cri, name: &str, f: &dyn Fn(&mut pb::LinuxContainerSecurityContext)| {
            let mut c = sleeper(cri, name);
            let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
            sc.namespace_options.as_mut().unwrap().pid = pb::NamespaceMode::Pod as i32;
            f(sc);
            c
        };

        // runAsUser / runAsGroup / supplementalGroups, noNewPrivs, caps, read-only root.
        let c = with(&cri, "user", &|sc| {
            sc.run_as_user = Some(pb::Int64Value { value: 1234 });
            sc.run_as_group = Some(pb::Int64Value { value: 5678 });
            sc.supplemental_groups = vec![4000];
            sc.no_new_privs = true;
            sc.readonly_rootfs = true;
            sc.capabilities = Some(pb::Capability {
                drop_capabilities: vec!["ALL".into()],
                add_capabilities: vec!["NET_BIND_SERVICE".into()],
                ..Default::default()
            });
            sc.seccomp = Some(pb::SecurityProfile {
                profile_type: 0,
                ..Default::default()
            });
        });
        let user = cri.start_container(&pod, &pod_config, c).await;
        assert!(status_field(&mut cri, &user, "Uid")
            .await
            .starts_with("1234\t1234"));
        assert!(status_field(&mut cri, &user, "Gid")
            .await
            .starts_with("5678\t5678"));
        assert_eq!(status_field(&mut cri, &user, "Groups").await, "4000");
        assert_eq!(status_field(&mut cri, &user, "NoNewPrivs").await, "1");
        // ContainerStatus reports the process's user and groups (kubelet shows them).
        let u = cri
            .container_status(&user)
            .await
            .user
            .unwrap()
            .linux
            .unwrap();
        assert_eq!(
            (u.uid, u.gid, u.supplemental_groups),
            (1234, 5678, vec![4000])
        );
        assert_eq!(
            status_field(&mut cri, &user, "CapBnd").await,
            "0000000000000400"
        );
        assert_eq!(status_field(&mut cri, &user, "Seccomp").await, "2");
        let (code, _, err) = cri.exec(&user, "touch /rootfs-write").await;
        assert_ne!(code, 0);
        assert!(err.contains("Read-only file system"), "{err}");

        // runAsUserName: a name from the image's /etc/passwd.
        let c = with(&cri, "named", &|sc| sc.run_as_username = "nobody".into());
        let named = cri.start_container(&pod, &pod_config, c).await;
        assert!(status_field(&mut cri, &named, "Uid")
            .await
            .starts_with("65534\t"));

        // Pod sysctls (IPC and net namespaces are the pod's), the pod's pid namespace with
        // berth's infra process as pid 1.
        assert_eq!(
            cri.exec(&user, "cat /proc/sys/kernel/shm_rmid_forced")
                .await
                .1
                .trim(),
            "1"
        );
        assert_eq!(
            cri.exec(&user, "cat /proc/sys/net/ipv4/ip_local_port_range")
                .await
                .1
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["40000", "50000"]
        );
        assert_eq!(cri.exec(&user, "cat /proc/1/comm").await.1.trim(), "pause");

        // Privileged: every capability, no seccomp, writable /sys.
        let c = with(&cri, "priv", &|sc| sc.privileged = true);
        let privileged = cri.start_container(&pod, &pod_config, c).await;
        let eff = status_field(&mut cri, &privileged, "CapEff").await;
        assert!(
            u64::from_str_radix(&eff, 16).unwrap().count_ones() >= 38,
            "{eff}"
        );
        assert_eq!(status_field(&mut cri, &privileged, "Seccomp").await, "0");
        let (code, _, err) = cri
            .exec(&privileged, "mount -o remount,rw /sys && echo ok")
            .await;
        assert_eq!(code, 0, "{err}");

        // Seccomp Unconfined and Localhost; masked and read-only paths.
        let c = with(&cri, "unconfined", &|sc| {
            sc.seccomp = Some(pb::SecurityProfile {
                profile_type: 1,
                ..Default::default()
            });
            sc.masked_paths = vec!["/proc/cpuinfo".into()];
            sc.readonly_paths = vec!["/tmp".into()];
        });
        let unconfined = cri.start_container(&pod, &pod_config, c).await;
        assert_eq!(status_field(&mut cri, &unconfined, "Seccomp").await, "0");
        assert_eq!(
            cri.exec(&unconfined, "cat /proc/cpuinfo | wc -c")
                .await
                .1
                .trim(),
            "0"
        );
        let (code, _, _) = cri.exec(&unconfined, "touch /tmp/x").await;
        assert_ne!(code, 0, "/tmp is read-only");
        assert_eq!(
            cri.exec(&unconfined, "mkdir /made && echo ok")
                .await
                .1
                .trim(),
            "ok"
        );
        let path = profile.display().to_string();
        let c = with(&cri, "localhost", &|sc| {
            sc.seccomp = Some(pb::SecurityProfile {
                profile_type: 2,
                localhost_ref: path.clone(),
            });
        });
        let local = cri.start_container(&pod, &pod_config, c).await;
        let (code, _, err) = cri.exec(&local, "mkdir /denied").await;
        assert_ne!(code, 0);
        assert!(err.contains("Operation not permitted"), "{err}");

        // Supplemental groups: Merge adds the image's groups of the user, Strict does not.
        for (policy, want) in [(0, "3000"), (1, "")] {
            let mut c = with(&cri, &format!("groups{policy}"), &|sc| {
                sc.run_as_user = Some(pb::Int64Value { value: 65534 });
                sc.supplemental_groups_policy = policy;
            });
            c.image.as_mut().unwrap().image = "cri-groups:1".into();
            let id = cri.start_container(&pod, &pod_config, c).await;
            let mut groups: Vec<String> = status_field(&mut cri, &id, "Groups")
                .await
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            groups.sort();
            assert_eq!(groups.join(" "), want, "policy {policy}");
        }

        // Mounts: read-only, and host-to-container propagation (rslave) of a later mount.
        let mut c = sleeper(&cri, "mounts");
        c.mounts = vec![pb::Mount {
            container_path: "/data".into(),
            host_path: shared_s.clone(),
            readonly: true,
            propagation: pb::MountPropagation::PropagationHostToContainer as i32,
            ..Default::default()
        }];
        c.devices = vec![pb::Device {
            container_path: "/dev/xnull".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        }];
        let m = cri.start_container(&pod, &pod_config, c).await;
        let (code, _, _) = cri.exec(&m, "touch /data/x").await;
        assert_ne!(code, 0, "/data is read-only");
        mounted(&["-t", "tmpfs", "tmpfs", &format!("{shared_s}/sub")]);
        let seen = cri
            .exec(&m, "grep ' /data/sub ' /proc/self/mountinfo")
            .await
            .1;
        let _ = std::process::Command::new("umount")
            .arg(format!("{shared_s}/sub"))
            .status();
        assert!(seen.contains("tmpfs"), "rslave did not propagate: {seen:?}");
        assert_eq!(
            cri.exec(&m, "echo hi > /dev/xnull && echo ok")
                .await
                .1
                .trim(),
            "ok"
        );
        let st = cri.container_status(&m).await;
        assert_eq!(
            st.mounts[0].propagation,
            pb::MountPropagation::PropagationHostToContainer as i32
        );
        assert!(st.mounts[0].readonly);

        // A host-network, host-PID, host-IPC pod.
        let mut host_config = cri.pod_config("hostns");
        host_config
            .linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options = Some(pb::NamespaceOption {
            network: pb::NamespaceMode::Node as i32,
            pid: pb::NamespaceMode::Node as i32,
            ipc: pb::NamespaceMode::Node as i32,
            ..Default::default()
        });
        let hpod = cri.run_pod(&host_config).await;
        let mut c = sleeper(&cri, "onhost");
        c.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options = Some(pb::NamespaceOption {
            network: pb::NamespaceMode::Node as i32,
            pid: pb::NamespaceMode::Node as i32,
            ipc: pb::NamespaceMode::Node as i32,
            ..Default::default()
        });
        let onhost = cri.start_container(&hpod, &host_config, c).await;
        let host_ns = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        for kind in ["net", "pid", "ipc"] {
            let inside = cri
                .exec(&onhost, &format!("readlink /proc/self/ns/{kind}"))
                .await
                .1;
            assert_eq!(inside.trim(), host_ns(kind).display().to_string(), "{kind}");
        }
        assert!(cri
            .exec(&onhost, "cat /proc/net/dev")
            .await
            .1
            .contains(&cri.cni_bridge));
        // Resources: limits on the cgroup, updated in place.
        let mut c = sleeper(&cri, "limited");
        c.linux.as_mut().unwrap().resources = Some(pb::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            oom_score_adj: 500,
            ..Default::default()
        });
        let limited = cri.start_container(&pod, &pod_config, c).await;
        assert_eq!(
            cri.exec(&limited, "cat /proc/self/oom_score_adj")
                .await
                .1
                .trim(),
            "500"
        );
        let pid: i32 = cri
            .daemon
            .inspect("{{.State.Pid}}", &limited)
            .parse()
            .unwrap();
        let cg = |ctrl: &str, file: &str| -> String {
            let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            let path = text
                .lines()
                .find_map(|l| {
                    let mut p = l.splitn(3, ':');
                    let (_, c, path) = (p.next()?, p.next()?, p.next()?);
                    c.split(',').any(|x| x == ctrl).then(|| path.to_owned())
                })
                .unwrap();
            let base =
                if std::path::Path::new("/sys/fs/cgroup/cpu,cpuacct").exists() && ctrl == "cpu" {
                    "/sys/fs/cgroup/cpu,cpuacct".to_owned()
                } else {
                    format!("/sys/fs/cgroup/{ctrl}")
                };
            std::fs::read_to_string(format!("{base}{path}/{file}"))
                .unwrap()
                .trim()
                .to_owned()
        };
        assert_eq!(
            cg("memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(cg("cpu", "cpu.shares"), "512");
        assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
        cri.runtime
            .update_container_resources(pb::UpdateContainerResourcesRequest {
                container_id: limited.clone(),
                linux: Some(pb::LinuxContainerResources {
                    memory_limit_in_bytes: 96 << 20,
                    cpu_shares: 256,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            cg("memory", "memory.limit_in_bytes"),
            (96u64 << 20).to_string()
        );
        assert_eq!(cg("cpu", "cpu.shares"), "256");
        let st = cri.container_status(&limited).await;
        let r = st.resources.unwrap().linux.unwrap();
        assert_eq!((r.memory_limit_in_bytes, r.cpu_shares), (96 << 20, 256));
    });
    let _ = std::process::Command::new("umount").arg(&shared).status();
}

#[test]
fn oom_killed_container_reports_the_reason() {
    let mut cri = Cri::start();
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        let pod_config = cri.pod_config("oom");
        let pod = cri.run_pod(&pod_config).await;
        let mut c = cri.container_config(
            "hog",
            common::engine::IMAGE,
            "exec dd if=/dev/zero of=/dev/null bs=64M count=1",
        );
        c.linux.as_mut().unwrap().resources = Some(pb::LinuxContainerResources {
            memory_limit_in_bytes: 16 << 20,
            ..Default::default()
        });
        let hog = cri.start_container(&pod, &pod_config, c).await;
        let s = cri
            .wait_status(&hog, 30, |s| {
                s.state == pb::ContainerState::ContainerExited as i32
            })
            .await;
        assert_eq!(
            (s.reason.as_str(), s.exit_code),
            ("OOMKilled", 137),
            "{s:?}"
        );
        assert!(s.finished_at > 0);
    });
}

#[test]
fn pods_survive_a_daemon_kill_9() {
    let mut cri = Cri::start();
    let rt = cri.rt.handle().clone();
    let (pod, web, exited) = rt.block_on(async {
        let pod_config = cri.pod_config("durable");
        let pod = cri.run_pod(&pod_config).await;
        let server = cri.container_config(
            "web",
            common::engine::IMAGE,
            "while true; do echo alive | nc -l -p 8080; done",
        );
        let web = cri.start_container(&pod, &pod_config, server).await;
        let once = cri.container_config("once", common::engine::IMAGE, "exit 3");
        let exited = cri.start_container(&pod, &pod_config, once).await;
        cri.wait_status(&exited, 20, |s| {
            s.state == pb::ContainerState::ContainerExited as i32
        })
        .await;
        (pod, web, exited)
    });
    let ip = rt.block_on(cri.pod_ip(&pod));
    cri.daemon.kill_daemon();
    // The pod runs on without the daemon.
    let nc = |ip: &str| {
        std::process::Command::new("busybox")
            .args(["nc", "-w", "3", ip, "8080"])
            .stdin(std::process::Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    assert!(nc(&ip).contains("alive"), "the pod stopped with the daemon");
    cri.daemon.spawn();
    // A new client: the old connection died with the daemon.
    let fresh = Cri::reconnect(&cri);
    cri.runtime = fresh.0;
    cri.images = fresh.1;
    rt.block_on(async {
        let pods = cri
            .runtime
            .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .items;
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].state, pb::PodSandboxState::SandboxReady as i32);
        assert_eq!(cri.pod_ip(&pod).await, ip);
        let s = cri.container_status(&web).await;
        assert_eq!(s.state, pb::ContainerState::ContainerRunning as i32);
        let s = cri.container_status(&exited).await;
        assert_eq!(
            (s.state, s.exit_code),
            (pb::ContainerState::ContainerExited as i32, 3)
        );
        assert_eq!(
            cri.exec(&web, "echo still here").await.1.trim(),
            "still here"
        );
        // The CNI DEL after the restart releases the pod's address.
        cri.runtime
            .stop_pod_sandbox(pb::StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .unwrap();
        cri.runtime
            .remove_pod_sandbox(pb::RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .unwrap();
    });
    assert!(!nc(&ip).contains("alive"));
    let held: Vec<_> = walk(&cri.daemon.dir.join("ipam"))
        .into_iter()
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(&pod)))
        .collect();
    assert!(held.is_empty(), "{held:?}");
}

/// The gRPC status of a failed call.
fn code_of<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
) -> (tonic::Code, String) {
    let e = r.expect_err("the call succeeded");
    (e.code(), e.message().to_owned())
}

#[test]
fn bad_input_gets_the_status_kubelet_expects_and_leaves_nothing() {
    let mut cri = Cri::start();
    let image = cri.image_in_registry();
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        let (code, msg) = code_of(
            cri.runtime
                .container_status(pb::ContainerStatusRequest {
                    container_id: "nosuchcontainer".into(),
                    verbose: false,
                })
                .await,
        );
        assert_eq!(code, tonic::Code::NotFound);
        assert!(msg.contains("nosuchcontainer"), "{msg}");
        let (code, _) = code_of(
            cri.runtime
                .pod_sandbox_status(pb::PodSandboxStatusRequest {
                    pod_sandbox_id: "nosuchpod".into(),
                    verbose: false,
                })
                .await,
        );
        assert_eq!(code, tonic::Code::NotFound);
        let (code, _) = code_of(
            cri.runtime
                .start_container(pb::StartContainerRequest {
                    container_id: "nosuchcontainer".into(),
                })
                .await,
        );
        assert_eq!(code, tonic::Code::NotFound);
        // A pod without metadata, with an unknown runtime handler.
        let (code, msg) = code_of(
            cri.runtime
                .run_pod_sandbox(pb::RunPodSandboxRequest {
                    config: Some(pb::PodSandboxConfig::default()),
                    runtime_handler: String::new(),
                })
                .await,
        );
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(msg.contains("metadata"), "{msg}");
        let pod_config = cri.pod_config("bad");
        let (code, msg) = code_of(
            cri.runtime
                .run_pod_sandbox(pb::RunPodSandboxRequest {
                    config: Some(pod_config.clone()),
                    runtime_handler: "no-such-handler".into(),
                })
                .await,
        );
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(msg.contains("no-such-handler"), "{msg}");
        // The same pod twice.
        let pod = cri.run_pod(&pod_config).await;
        let (code, msg) = code_of(
            cri.runtime
                .run_pod_sandbox(pb::RunPodSandboxRequest {
                    config: Some(pod_config.clone()),
                    runtime_handler: String::new(),
                })
                .await,
        );
        assert_eq!(code, tonic::Code::AlreadyExists, "{msg}");
        assert!(msg.contains("k8s_POD_bad_default_"), "{msg}");
        // Containers: no image, an image not pulled, no pod, the same name twice.
        let mut no_image = sleeper(&cri, "x");
        no_image.image = None;
        let create = |c: pb::ContainerConfig, pod: &str| pb::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(c),
            sandbox_config: Some(pod_config.clone()),
        };
        let (code, _) = code_of(cri.runtime.create_container(create(no_image, &pod)).await);
        assert_eq!(code, tonic::Code::InvalidArgument);
        let mut unpulled = sleeper(&cri, "x");
        unpulled.image.as_mut().unwrap().image = image.clone();
        let (code, msg) = code_of(cri.runtime.create_container(create(unpulled, &pod)).await);
        assert_eq!(code, tonic::Code::NotFound);
        assert!(msg.contains(&image), "{msg}");
        let (code, _) = code_of(
            cri.runtime
                .create_container(create(sleeper(&cri, "x"), "nosuchpod"))
                .await,
        );
        assert_eq!(code, tonic::Code::NotFound);
        let mut relative = sleeper(&cri, "x");
        relative.mounts = vec![pb::Mount {
            container_path: "relative".into(),
            host_path: "/tmp".into(),
            ..Default::default()
        }];
        let (code, msg) = code_of(cri.runtime.create_container(create(relative, &pod)).await);
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(msg.contains("relative"), "{msg}");
        cri.runtime
            .create_container(create(sleeper(&cri, "twice"), &pod))
            .await
            .unwrap();
        let (code, _) = code_of(
            cri.runtime
                .create_container(create(sleeper(&cri, "twice"), &pod))
                .await,
        );
        assert_eq!(code, tonic::Code::AlreadyExists);
        // Exactly the one good container was made; the engine holds nothing else.
        let all = cri.daemon.docker_ok(&["ps", "-aq"]);
        assert_eq!(all.lines().count(), 2, "{all}");
        // ExecSync past its timeout.
        let c = cri
            .start_container(&pod, &pod_config, sleeper(&cri, "slow"))
            .await;
        let t = std::time::Instant::now();
        let (code, msg) = code_of(
            cri.runtime
                .exec_sync(pb::ExecSyncRequest {
                    container_id: c.clone(),
                    cmd: vec!["sleep".into(), "30".into()],
                    timeout: 1,
                })
                .await,
        );
        assert_eq!(code, tonic::Code::DeadlineExceeded, "{msg}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        // The timed-out process was killed.
        assert_eq!(
            cri.exec(&c, "ps -o args | grep -cx 'sleep 30' || true")
                .await
                .1
                .trim(),
            "0"
        );
        // A pull with the wrong password; of an image that does not exist.
        let (code, msg) = code_of(
            cri.images
                .pull_image(pb::PullImageRequest {
                    image: Some(pb::ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                    auth: Some(pb::AuthConfig {
                        username: "berth".into(),
                        password: "wrong".into(),
                        ..Default::default()
                    }),
                    sandbox_config: None,
                })
                .await,
        );
        assert_eq!(code, tonic::Code::Unauthenticated, "{msg}");
        let missing = image.replace("busybox:1", "nothing:1");
        let (code, msg) = code_of(
            cri.images
                .pull_image(pb::PullImageRequest {
                    image: Some(pb::ImageSpec {
                        image: missing,
                        ..Default::default()
                    }),
                    auth: Some(Cri::auth()),
                    sandbox_config: None,
                })
                .await,
        );
        assert_eq!(code, tonic::Code::NotFound, "{msg}");
        let (code, _) = code_of(
            cri.images
                .pull_image(pb::PullImageRequest {
                    image: Some(pb::ImageSpec {
                        image: "Not A Reference".into(),
                        ..Default::default()
                    }),
                    auth: None,
                    sandbox_config: None,
                })
                .await,
        );
        assert_eq!(code, tonic::Code::InvalidArgument);

        // The runc handler with berth's own infra: the infra stays on berth's runtime.
        let handled = cri.pod_config("runc-pod");
        let pod = cri
            .runtime
            .run_pod_sandbox(pb::RunPodSandboxRequest {
                config: Some(handled.clone()),
                runtime_handler: "runc".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;
        let c = cri
            .start_container(&pod, &handled, sleeper(&cri, "c"))
            .await;
        assert_eq!(cri.daemon.inspect("{{.HostConfig.Runtime}}", &c), "runc");
        // runc joined the pod's pid namespace, whose pid 1 is berth's infra.
        assert_eq!(cri.exec(&c, "cat /proc/1/comm").await.1.trim(), "pause");
        assert_eq!(cri.exec(&c, "hostname").await.1.trim(), "runc-pod");
    });
}

#[test]
fn without_a_cni_config_the_network_is_not_ready_and_pods_fail_cleanly() {
    let mut cri = Cri::start_with(false, &[]);
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        let st = cri
            .runtime
            .status(pb::StatusRequest { verbose: false })
            .await
            .unwrap()
            .into_inner();
        let conds = st.status.unwrap().conditions;
        let net = conds.iter().find(|c| c.r#type == "NetworkReady").unwrap();
        assert!(!net.status);
        assert_eq!(net.reason, "NetworkPluginNotReady");
        assert!(net.message.contains("no network config"), "{}", net.message);
        assert!(conds.iter().any(|c| c.r#type == "RuntimeReady" && c.status));
        let (code, msg) = code_of(
            cri.runtime
                .run_pod_sandbox(pb::RunPodSandboxRequest {
                    config: Some(cri.pod_config("nonet")),
                    runtime_handler: String::new(),
                })
                .await,
        );
        assert_eq!(code, tonic::Code::Unknown);
        assert!(msg.contains("cni plugin not initialized"), "{msg}");
        assert_eq!(cri.daemon.docker_ok(&["ps", "-aq"]), "");
        // A host-network pod needs no CNI.
        let mut host = cri.pod_config("hostnet");
        host.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options = Some(pb::NamespaceOption {
            network: pb::NamespaceMode::Node as i32,
            ..Default::default()
        });
        let pod = cri.run_pod(&host).await;
        let c = cri.start_container(&pod, &host, sleeper(&cri, "c")).await;
        assert!(cri
            .exec(&c, "cat /proc/net/dev")
            .await
            .1
            .contains(&cri.daemon.bridge));
    });
}

#[test]
fn container_events_stream_and_a_burst_of_pods() {
    let mut cri = Cri::start();
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        let mut events = cri
            .runtime
            .get_container_events(pb::GetEventsRequest {})
            .await
            .unwrap()
            .into_inner();
        let pod_config = cri.pod_config("evented");
        let pod = cri.run_pod(&pod_config).await;
        let c = cri
            .start_container(&pod, &pod_config, sleeper(&cri, "c"))
            .await;
        cri.runtime
            .stop_container(pb::StopContainerRequest {
                container_id: c.clone(),
                timeout: 5,
            })
            .await
            .unwrap();
        cri.runtime
            .remove_container(pb::RemoveContainerRequest {
                container_id: c.clone(),
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let e = tokio::time::timeout(Duration::from_secs(10), events.message())
                .await
                .expect("no event in 10 s")
                .unwrap()
                .unwrap();
            if e.container_id == c {
                assert!(e.pod_sandbox_status.as_ref().is_some_and(|s| s.id == pod));
                seen.push(e.container_event_type);
            }
        }
        use pb::ContainerEventType as E;
        assert_eq!(
            seen,
            [
                E::ContainerCreatedEvent as i32,
                E::ContainerStartedEvent as i32,
                E::ContainerStoppedEvent as i32,
                E::ContainerDeletedEvent as i32
            ]
        );

        // Ten pods at once, each with a container, then all removed at once.
        let runtime = cri.runtime.clone();
        let mut jobs = Vec::new();
        for i in 0..10 {
            let rt = runtime.clone();
            let config = cri.pod_config(&format!("burst{i}"));
            let c = sleeper(&cri, "c");
            jobs.push(tokio::spawn(start_pod(rt, config, c)));
        }
        let mut pods = Vec::new();
        for j in jobs {
            pods.push(j.await.unwrap().unwrap());
        }
        let ips: std::collections::HashSet<String> = {
            let mut s = std::collections::HashSet::new();
            for p in &pods {
                s.insert(cri.pod_ip(p).await);
            }
            s
        };
        assert_eq!(ips.len(), 10, "{ips:?}");
        let running = cri
            .runtime
            .list_containers(pb::ListContainersRequest {
                filter: Some(pb::ContainerFilter {
                    state: Some(pb::ContainerStateValue {
                        state: pb::ContainerState::ContainerRunning as i32,
                    }),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .containers;
        assert_eq!(running.len(), 10);
        let mut jobs = Vec::new();
        for p in pods {
            let mut rt = runtime.clone();
            jobs.push(tokio::spawn(async move {
                rt.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: p })
                    .await
            }));
        }
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        let left = cri
            .runtime
            .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .items;
        assert_eq!(left.len(), 1, "only the first pod is left");
    });
}

/// RunPodSandbox + CreateContainer + StartContainer on a client of its own (for bursts); the
/// pod's id.
async fn start_pod(
    mut rt: berth_cri::proto::runtime_service_client::RuntimeServiceClient<
        tonic::transport::Channel,
    >,
    config: pb::PodSandboxConfig,
    c: pb::ContainerConfig,
) -> Result<String, tonic::Status> {
    let pod = rt
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let id = rt
        .create_container(pb::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(c),
            sandbox_config: Some(config),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(pb::StartContainerRequest { container_id: id })
        .await?;
    Ok(pod)
}

/// Runs a streaming client script of tests/cri with Debian's python (it has
/// python3-kubernetes); its JSON answer.
fn stream_client(script: &str, args: &[&str]) -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cri/");
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg(format!("{path}{script}")).args(args);
    let out = common::engine::run_cmd(cmd, None, 60);
    assert!(
        out.status.success(),
        "{script} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn exec_attach_and_port_forward_through_the_streaming_urls() {
    let mut cri = Cri::start();
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        let pod_config = cri.pod_config("stream");
        let pod = cri.run_pod(&pod_config).await;
        let shell = cri
            .start_container(&pod, &pod_config, sleeper(&cri, "shell"))
            .await;
        let exec_url = |cri: &mut Cri, cmd: &str, stdin: bool, tty: bool| {
            let req = pb::ExecRequest {
                container_id: shell.clone(),
                cmd: vec!["sh".into(), "-c".into(), cmd.into()],
                tty,
                stdin,
                stdout: true,
                stderr: !tty,
            };
            let mut rt = cri.runtime.clone();
            async move { rt.exec(req).await.unwrap().into_inner().url }
        };

        // SPDY/3.1 (kubelet's and crictl's transport): stdin in, stdout and stderr apart,
        // the exit code in the v4 status.
        let url = exec_url(
            &mut cri,
            "read x; echo got $x; echo oops >&2; exit 3",
            true,
            false,
        )
        .await;
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let r = stream_client("spdy_client.py", &["exec", &url, "--stdin", "hello\n"]);
        assert_eq!(r["protocol"], "v4.channel.k8s.io");
        assert_eq!(r["stdout"], "got hello\n", "{r}");
        assert_eq!(r["stderr"], "oops\n", "{r}");
        let status: serde_json::Value =
            serde_json::from_str(r["status"].as_str().unwrap()).unwrap();
        assert_eq!(status["status"], "Failure", "{status}");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        // The URL serves once.
        let (code, body) = http_get(&url);
        assert_eq!(code, 404, "{body}");
        // A terminal, sized by the resize stream.
        let url = exec_url(&mut cri, "sleep 0.5; stty size", false, true).await;
        let r = stream_client(
            "spdy_client.py",
            &["exec", &url, "--tty", "--resize", "100x30"],
        );
        assert_eq!(r["stdout"].as_str().unwrap().trim(), "30 100", "{r}");
        let status: serde_json::Value =
            serde_json::from_str(r["status"].as_str().unwrap()).unwrap();
        assert_eq!(status["status"], "Success");

        // WebSocket (the Kubernetes Python client's exec).
        let url = exec_url(
            &mut cri,
            "head -c 5; echo; echo to-err >&2; exit 4",
            true,
            false,
        )
        .await;
        let r = stream_client("ws_client.py", &["exec", &url, "abcdefgh"]);
        assert_eq!(r["stdout"], "abcde\n", "{r}");
        assert_eq!(r["stderr"], "to-err\n", "{r}");
        assert_eq!(r["code"], 4, "{r}");

        // Attach to containers that read their stdin.
        for (i, client) in ["spdy_client.py", "ws_client.py"].iter().enumerate() {
            let mut c = cri.container_config(
                &format!("reader{i}"),
                common::engine::IMAGE,
                "read line; echo attached-got $line",
            );
            c.stdin = true;
            c.stdin_once = true;
            let id = cri.start_container(&pod, &pod_config, c).await;
            let url = cri
                .runtime
                .attach(pb::AttachRequest {
                    container_id: id.clone(),
                    stdin: true,
                    tty: false,
                    stdout: true,
                    stderr: true,
                })
                .await
                .unwrap()
                .into_inner()
                .url;
            let r = if i == 0 {
                stream_client(client, &["attach", &url, "--stdin", "line-in\n"])
            } else {
                stream_client(client, &["attach", &url, "line-in\n"])
            };
            assert_eq!(r["stdout"], "attached-got line-in\n", "{client}: {r}");
        }

        // Port forwarding: connections made from inside the pod's network namespace.
        let server = cri.container_config(
            "lo-server",
            common::engine::IMAGE,
            "while true; do echo pong-from-pod | nc -l -p 8081; done",
        );
        cri.start_container(&pod, &pod_config, server).await;
        let mut listening = String::new();
        for _ in 0..50 {
            listening = cri.exec(&shell, "netstat -ltn").await.1;
            if listening.contains(":8081 ") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(listening.contains(":8081 "), "{listening}");
        for client in ["spdy_client.py", "ws_client.py"] {
            let url = cri
                .runtime
                .port_forward(pb::PortForwardRequest {
                    pod_sandbox_id: pod.clone(),
                    port: vec![8081],
                })
                .await
                .unwrap()
                .into_inner()
                .url;
            let r = stream_client(client, &["portforward", &url, "8081", "ping"]);
            assert_eq!(r["data"], "pong-from-pod\n", "{client}: {r}");
        }
        // Nothing listens on 8082: the error stream says so.
        let url = cri
            .runtime
            .port_forward(pb::PortForwardRequest {
                pod_sandbox_id: pod.clone(),
                port: vec![8082],
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        let r = stream_client("spdy_client.py", &["portforward", &url, "8082", "x"]);
        assert!(r["error"].as_str().unwrap().contains("8082"), "{r}");

        // Bad requests.
        let (code, msg) = code_of(
            cri.runtime
                .exec(pb::ExecRequest {
                    container_id: shell.clone(),
                    cmd: vec!["true".into()],
                    tty: true,
                    stdout: true,
                    stderr: true,
                    stdin: false,
                })
                .await,
        );
        assert_eq!(code, tonic::Code::InvalidArgument, "{msg}");
        let (code, _) = code_of(
            cri.runtime
                .exec(pb::ExecRequest {
                    container_id: "nosuch".into(),
                    cmd: vec!["true".into()],
                    stdout: true,
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(code, tonic::Code::NotFound);
        let (code, _) = code_of(
            cri.runtime
                .port_forward(pb::PortForwardRequest {
                    pod_sandbox_id: "nosuch".into(),
                    port: vec![80],
                })
                .await,
        );
        assert_eq!(code, tonic::Code::NotFound);
    });
}

/// A plain GET: (status, body).
fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut s, &mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[test]
fn runtime_handlers_and_a_configured_sandbox_image() {
    let mut cri = Cri::start_with(true, &["--cri-sandbox-image", "cri-pause:1"]);
    // A pause-like image: waits for TERM.
    let mk = common::unique("mk");
    cri.daemon
        .docker_ok(&["create", "--name", &mk, common::engine::IMAGE, "true"]);
    cri.daemon.docker_ok(&[
        "commit",
        "--change",
        r#"CMD ["sh", "-c", "trap 'exit 0' TERM; sleep 1000000 & wait"]"#,
        &mk,
        "cri-pause:1",
    ]);
    cri.daemon.docker_ok(&["rm", &mk]);
    let rt = cri.rt.handle().clone();
    rt.block_on(async {
        let pod_config = cri.pod_config("handled");
        let pod = cri
            .runtime
            .run_pod_sandbox(pb::RunPodSandboxRequest {
                config: Some(pod_config.clone()),
                runtime_handler: "runc".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cri.daemon.daemon_log()))
            .into_inner()
            .pod_sandbox_id;
        assert_eq!(cri.daemon.inspect("{{.Config.Image}}", &pod), "cri-pause:1");
        let c = cri
            .start_container(&pod, &pod_config, sleeper(&cri, "c"))
            .await;
        assert_eq!(cri.daemon.inspect("{{.HostConfig.Runtime}}", &c), "runc");
        assert_eq!(cri.exec(&c, "hostname").await.1.trim(), "handled");
        let ip = cri.pod_ip(&pod).await;
        assert!(cri.exec(&c, "ip -4 addr show eth0").await.1.contains(&ip));
        let pods = cri
            .runtime
            .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .items;
        assert_eq!(pods[0].runtime_handler, "runc");
        let st = cri
            .runtime
            .status(pb::StatusRequest { verbose: false })
            .await
            .unwrap()
            .into_inner();
        assert!(st.runtime_handlers.iter().any(|h| h.name == "runc"));
        // A pod in a user namespace of its own is refused by name.
        let mut userns = cri.pod_config("userns");
        userns
            .linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options = Some(pb::NamespaceOption {
            userns_options: Some(pb::UserNamespace {
                mode: pb::NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        });
        let (code, msg) = code_of(
            cri.runtime
                .run_pod_sandbox(pb::RunPodSandboxRequest {
                    config: Some(userns),
                    runtime_handler: String::new(),
                })
                .await,
        );
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(msg.contains("user namespaces"), "{msg}");
    });
}

#[test]
fn a_daemon_kill_9_amid_a_burst_of_pods_leaves_nothing_half_made() {
    let mut cri = Cri::start();
    let rt = cri.rt.handle().clone();
    let runtime = cri.runtime.clone();
    let mut jobs = Vec::new();
    for i in 0..8 {
        let rt2 = runtime.clone();
        let config = cri.pod_config(&format!("amid{i}"));
        let c = sleeper(&cri, "c");
        jobs.push(rt.spawn(start_pod(rt2, config, c)));
    }
    std::thread::sleep(Duration::from_millis(400));
    cri.daemon.kill_daemon();
    let finished: Vec<bool> = jobs
        .into_iter()
        .map(|j| rt.block_on(j).map(|r| r.is_ok()).unwrap_or(false))
        .collect();
    cri.daemon.spawn();
    let fresh = Cri::reconnect(&cri);
    cri.runtime = fresh.0;
    cri.images = fresh.1;
    rt.block_on(async {
        // Every pod the engine holds is a whole one (ready, with an address) or one that
        // removes cleanly; those whose calls all succeeded are ready.
        let pods = cri
            .runtime
            .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .items;
        let done = finished.iter().filter(|f| **f).count();
        let ready = pods
            .iter()
            .filter(|p| p.state == pb::PodSandboxState::SandboxReady as i32)
            .count();
        assert!(ready >= done, "{ready} ready pods, {done} finished starts");
        for p in &pods {
            if p.state == pb::PodSandboxState::SandboxReady as i32 {
                let ip = cri.pod_ip(&p.id).await;
                let cs = cri
                    .runtime
                    .list_containers(pb::ListContainersRequest {
                        filter: Some(pb::ContainerFilter {
                            pod_sandbox_id: p.id.clone(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .containers;
                // A ready pod has its address unless the kill came amid its CNI ADD.
                if let Some(c) = cs
                    .iter()
                    .find(|c| c.state == pb::ContainerState::ContainerRunning as i32)
                {
                    assert!(
                        !ip.is_empty(),
                        "pod {} runs {} without an address",
                        p.id,
                        c.id
                    );
                }
            }
            cri.runtime
                .remove_pod_sandbox(pb::RemovePodSandboxRequest {
                    pod_sandbox_id: p.id.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("remove {}: {e}", p.id));
        }
        assert_eq!(cri.daemon.docker_ok(&["ps", "-aq"]), "", "containers left");
        let held: Vec<_> = walk(&cri.daemon.dir.join("ipam"))
            .into_iter()
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.chars().next().is_some_and(|c| c.is_ascii_digit()))
            })
            .collect();
        assert!(held.is_empty(), "addresses still held: {held:?}");
    });
}
