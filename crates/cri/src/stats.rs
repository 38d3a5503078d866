//! Pod statistics (PodSandboxStats) and the metrics of ListPodSandboxMetrics: the pod's
//! containers' cgroup counters, its network interfaces as its namespace counts them, and its
//! process count.

use crate::error::{Error, Result};
use crate::labels;
use crate::pods::{is_running, pod_metadata};
use crate::proto as pb;
use crate::service::Cri;
use crate::time;

/// The metrics berth reports per container, as cAdvisor names them.
const CPU: &str = "container_cpu_usage_seconds_total";
const MEMORY: &str = "container_memory_working_set_bytes";

pub fn descriptors() -> Vec<pb::MetricDescriptor> {
    vec![
        pb::MetricDescriptor {
            name: CPU.into(),
            help: "Cumulative cpu time consumed in nanoseconds".into(),
            label_keys: vec!["container".into(), "id".into()],
        },
        pb::MetricDescriptor {
            name: MEMORY.into(),
            help: "Current working set in bytes".into(),
            label_keys: vec!["container".into(), "id".into()],
        },
    ]
}

impl Cri {
    pub fn pod_stats(&self, id: &str) -> Result<pb::PodSandboxStats> {
        let pod = self
            .find_pod(id)?
            .ok_or_else(|| Error::NotFound(format!("pod sandbox {id:?} not found")))?;
        let now = time::now();
        let containers: Vec<pb::ContainerStats> = self
            .containers_of(&pod.id)
            .iter()
            .map(|c| self.container_stats(c))
            .collect();
        let sum = |f: &dyn Fn(&pb::ContainerStats) -> Option<u64>| -> u64 {
            containers.iter().filter_map(f).sum()
        };
        let cpu = sum(&|c| {
            c.cpu
                .as_ref()?
                .usage_core_nano_seconds
                .as_ref()
                .map(|v| v.value)
        });
        let working = sum(&|c| {
            c.memory
                .as_ref()?
                .working_set_bytes
                .as_ref()
                .map(|v| v.value)
        });
        let usage = sum(&|c| c.memory.as_ref()?.usage_bytes.as_ref().map(|v| v.value));
        let interfaces = if is_running(&pod) {
            interfaces(pod.pid)
        } else {
            Vec::new()
        };
        let processes = if is_running(&pod) {
            count_processes(&pod.pid)
        } else {
            0
        };
        Ok(pb::PodSandboxStats {
            attributes: Some(pb::PodSandboxAttributes {
                id: pod.id.clone(),
                metadata: Some(pod_metadata(&pod.labels)),
                labels: labels::cri_labels(&pod.labels),
                annotations: labels::annotations(&pod.labels),
            }),
            linux: Some(pb::LinuxPodSandboxStats {
                cpu: Some(pb::CpuUsage {
                    timestamp: now,
                    usage_core_nano_seconds: Some(pb::UInt64Value { value: cpu }),
                    usage_nano_cores: None,
                }),
                memory: Some(pb::MemoryUsage {
                    timestamp: now,
                    working_set_bytes: Some(pb::UInt64Value { value: working }),
                    usage_bytes: Some(pb::UInt64Value { value: usage }),
                    ..Default::default()
                }),
                network: Some(pb::NetworkUsage {
                    timestamp: now,
                    default_interface: interfaces.iter().find(|i| i.name == "eth0").cloned(),
                    interfaces,
                }),
                process: Some(pb::ProcessUsage {
                    timestamp: now,
                    process_count: Some(pb::UInt64Value { value: processes }),
                }),
                containers,
            }),
            windows: None,
        })
    }

    pub fn pod_metrics(&self, id: &str) -> Result<pb::PodSandboxMetrics> {
        let stats = self.pod_stats(id)?;
        let now = time::now();
        let container_metrics = stats
            .linux
            .iter()
            .flat_map(|l| l.containers.iter())
            .map(|c| {
                let attrs = c.attributes.clone().unwrap_or_default();
                let name = attrs.metadata.map(|m| m.name).unwrap_or_default();
                let metric = |n: &str, kind: pb::MetricType, v: u64| pb::Metric {
                    name: n.into(),
                    timestamp: now,
                    metric_type: kind as i32,
                    label_values: vec![name.clone(), attrs.id.clone()],
                    value: Some(pb::UInt64Value { value: v }),
                };
                pb::ContainerMetrics {
                    container_id: attrs.id.clone(),
                    metrics: vec![
                        metric(
                            CPU,
                            pb::MetricType::Counter,
                            c.cpu
                                .as_ref()
                                .and_then(|u| u.usage_core_nano_seconds.as_ref())
                                .map_or(0, |v| v.value),
                        ),
                        metric(
                            MEMORY,
                            pb::MetricType::Gauge,
                            c.memory
                                .as_ref()
                                .and_then(|u| u.working_set_bytes.as_ref())
                                .map_or(0, |v| v.value),
                        ),
                    ],
                }
            })
            .collect();
        Ok(pb::PodSandboxMetrics {
            pod_sandbox_id: id.to_owned(),
            metrics: Vec::new(),
            container_metrics,
        })
    }
}

/// The interfaces of the network namespace `pid` is in, from its /proc/PID/net/dev.
fn interfaces(pid: i32) -> Vec<pb::NetworkInterfaceUsage> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let n: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let name = name.trim();
            (name != "lo" && n.len() >= 16).then(|| pb::NetworkInterfaceUsage {
                name: name.to_owned(),
                rx_bytes: Some(pb::UInt64Value { value: n[0] }),
                rx_errors: Some(pb::UInt64Value { value: n[2] }),
                tx_bytes: Some(pb::UInt64Value { value: n[8] }),
                tx_errors: Some(pb::UInt64Value { value: n[10] }),
            })
        })
        .collect()
}

/// Processes in the pid namespace of `pid` (the infra's: the pod's when it shares one).
fn count_processes(pid: &i32) -> u64 {
    let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/pid")) else {
        return 0;
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read_link(e.path().join("ns/pid")).ok().as_ref() == Some(&ns))
        .count() as u64
}
