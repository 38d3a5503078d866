//! A cgroup's statistics in the shape `runc events` prints them (runc's `types.Stats`: field
//! names, nesting and which zero values are left out), read from whichever version carries
//! each controller.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{files, Cgroup, Location};

/// runc's `types.Stats`.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Interfaces of networks the runtime made itself; an OCI runtime makes none (runc: null).
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT is not supported: always empty, as runc prints it without RDT.
#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Cgroup {
    /// The cgroup's statistics; controllers the host lacks leave their part empty. A file
    /// that cannot be read counts as zero: a container may exit while it is read.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        match self.locate("cpuacct") {
            Location::V1(dir) => v1_cpuacct(dir, &mut s.cpu),
            _ => {
                if let Location::V2(dir) = self.v2_dir_for_core() {
                    v2_cpu(dir, &mut s.cpu);
                }
            }
        }
        if let Location::V1(dir) = self.locate("cpu") {
            let stat = keyed(dir, "cpu.stat");
            s.cpu.throttling = Throttling {
                periods: get(&stat, "nr_periods"),
                throttled_periods: get(&stat, "nr_throttled"),
                throttled_time: get(&stat, "throttled_time"),
            };
        }
        match self.locate("cpuset") {
            Location::V1(dir) => v1_cpuset(dir, &mut s.cpuset),
            Location::V2(dir) => {
                s.cpuset.cpus = list(&read(dir, "cpuset.cpus.effective"));
                s.cpuset.mems = list(&read(dir, "cpuset.mems.effective"));
            }
            Location::Missing => {}
        }
        match self.locate("memory") {
            Location::V1(dir) => v1_memory(dir, &mut s.memory),
            Location::V2(dir) => v2_memory(dir, &mut s.memory),
            Location::Missing => {}
        }
        if let Location::V1(dir) | Location::V2(dir) = self.locate("pids") {
            s.pids.current = number(dir, "pids.current");
            s.pids.limit = number(dir, "pids.max");
        }
        match self.locate_blkio() {
            Location::V1(dir) => v1_blkio(dir, &mut s.blkio),
            Location::V2(dir) => v2_io(dir, &mut s.blkio),
            Location::Missing => {}
        }
        if let Location::V1(dir) | Location::V2(dir) = self.locate("hugetlb") {
            hugetlb(
                dir,
                matches!(self.locate("hugetlb"), Location::V2(_)),
                &mut s.hugetlb,
            );
        }
        s
    }

    /// cpu.stat of v2 is a core file, there whether or not the cpu controller is enabled.
    fn v2_dir_for_core(&self) -> Location<'_> {
        match &self.v2 {
            Some(v2) => Location::V2(&v2.dir),
            None => Location::Missing,
        }
    }
}

fn v1_cpuacct(dir: &Path, cpu: &mut Cpu) {
    cpu.usage.total = number(dir, "cpuacct.usage");
    cpu.usage.percpu = numbers(&read(dir, "cpuacct.usage_percpu"));
    cpu.usage.percpu_kernel = numbers(&read(dir, "cpuacct.usage_percpu_sys"));
    cpu.usage.percpu_user = numbers(&read(dir, "cpuacct.usage_percpu_user"));
    // cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds.
    // SAFETY: sysconf takes an integer and touches no memory.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&h| h > 0)
        .unwrap_or(100);
    let stat = keyed(dir, "cpuacct.stat");
    cpu.usage.user = get(&stat, "user") * (1_000_000_000 / hz);
    cpu.usage.kernel = get(&stat, "system") * (1_000_000_000 / hz);
}

fn v2_cpu(dir: &Path, cpu: &mut Cpu) {
    let stat = keyed(dir, "cpu.stat");
    cpu.usage.total = get(&stat, "usage_usec") * 1000;
    cpu.usage.user = get(&stat, "user_usec") * 1000;
    cpu.usage.kernel = get(&stat, "system_usec") * 1000;
    cpu.throttling = Throttling {
        periods: get(&stat, "nr_periods"),
        throttled_periods: get(&stat, "nr_throttled"),
        throttled_time: get(&stat, "throttled_usec") * 1000,
    };
}

fn v1_cpuset(dir: &Path, c: &mut CpuSet) {
    c.cpus = list(&read(dir, "cpuset.cpus"));
    c.mems = list(&read(dir, "cpuset.mems"));
    c.cpu_exclusive = number(dir, "cpuset.cpu_exclusive");
    c.mem_hardwall = number(dir, "cpuset.mem_hardwall");
    c.mem_exclusive = number(dir, "cpuset.mem_exclusive");
    c.memory_migrate = number(dir, "cpuset.memory_migrate");
    c.memory_spread_page = number(dir, "cpuset.memory_spread_page");
    c.memory_spread_slab = number(dir, "cpuset.memory_spread_slab");
    c.memory_pressure = number(dir, "cpuset.memory_pressure");
    c.sched_load_balance = number(dir, "cpuset.sched_load_balance");
    c.sched_relax_domain_level = read(dir, "cpuset.sched_relax_domain_level")
        .trim()
        .parse()
        .unwrap_or(0);
}

fn v1_memory(dir: &Path, m: &mut Memory) {
    m.raw = keyed(dir, "memory.stat");
    m.cache = get(&m.raw, "cache");
    let entry = |prefix: &str| MemoryEntry {
        limit: number(dir, &format!("{prefix}.limit_in_bytes")),
        usage: number(dir, &format!("{prefix}.usage_in_bytes")),
        max: number(dir, &format!("{prefix}.max_usage_in_bytes")),
        failcnt: number(dir, &format!("{prefix}.failcnt")),
    };
    m.usage = entry("memory");
    m.swap = entry("memory.memsw");
    m.kernel = entry("memory.kmem");
    m.kernel_tcp = entry("memory.kmem.tcp");
}

fn v2_memory(dir: &Path, m: &mut Memory) {
    m.raw = keyed(dir, "memory.stat");
    m.cache = get(&m.raw, "file");
    let events = keyed(dir, "memory.events");
    m.usage = MemoryEntry {
        limit: limit(dir, "memory.max"),
        usage: number(dir, "memory.current"),
        max: number(dir, "memory.peak"),
        failcnt: get(&events, "max"),
    };
    // As runc: v2 swap is counted apart from memory; report memory+swap like v1's memsw.
    let swap_limit = limit(dir, "memory.swap.max");
    m.swap = MemoryEntry {
        limit: swap_limit.saturating_add(m.usage.limit),
        usage: number(dir, "memory.swap.current") + m.usage.usage,
        max: 0,
        failcnt: 0,
    };
}

/// "MAJ:MIN Op Value" lines of the v1 blkio files (the CFQ ones, else the throttle ones).
fn v1_blkio(dir: &Path, b: &mut Blkio) {
    let pick = |name: &str| {
        let cfq = read(dir, &format!("blkio.{name}_recursive"));
        let text = if cfq.trim().is_empty() {
            read(dir, &format!("blkio.throttle.{name}_recursive"))
        } else {
            cfq
        };
        text.lines()
            .filter_map(|line| {
                let mut f = line.split_whitespace();
                let (device, op, value) = (f.next()?, f.next()?, f.next()?);
                let (major, minor) = device.split_once(':')?;
                Some(BlkioEntry {
                    major: major.parse().ok()?,
                    minor: minor.parse().ok()?,
                    op: op.to_owned(),
                    value: value.parse().ok()?,
                })
            })
            .collect()
    };
    b.io_service_bytes_recursive = pick("io_service_bytes");
    b.io_serviced_recursive = pick("io_serviced");
}

/// v2 io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..", as runc maps it.
fn v2_io(dir: &Path, b: &mut Blkio) {
    for line in read(dir, "io.stat").lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.parse().unwrap_or(0);
            let (list, op) = match key {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
}

fn hugetlb(dir: &Path, v2: bool, out: &mut BTreeMap<String, Hugetlb>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(size) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hugetlb."))
            .and_then(|n| n.strip_suffix(if v2 { ".current" } else { ".usage_in_bytes" }))
        else {
            continue;
        };
        if size.contains(".rsvd") {
            continue;
        }
        let stats = if v2 {
            Hugetlb {
                usage: number(dir, &format!("hugetlb.{size}.current")),
                max: 0,
                failcnt: get(&keyed(dir, &format!("hugetlb.{size}.events")), "max"),
            }
        } else {
            Hugetlb {
                usage: number(dir, &format!("hugetlb.{size}.usage_in_bytes")),
                max: number(dir, &format!("hugetlb.{size}.max_usage_in_bytes")),
                failcnt: number(dir, &format!("hugetlb.{size}.failcnt")),
            }
        };
        out.insert(size.to_owned(), stats);
    }
}

fn read(dir: &Path, file: &str) -> String {
    files::read(dir, file).unwrap_or_default()
}

fn number(dir: &Path, file: &str) -> u64 {
    read(dir, file).trim().parse().unwrap_or(0)
}

/// A v2 limit file: a number, or "max" for none (reported as 0, as runc does).
fn limit(dir: &Path, file: &str) -> u64 {
    number(dir, file)
}

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read(dir, file)
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

fn get(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

/// "0-3,8" -> [0, 1, 2, 3, 8]
fn list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
            out.extend(a..=b.min(a.saturating_add(4096)));
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn cpu_lists_expand_like_runc() {
        assert_eq!(list("0-3,8\n"), vec![0, 1, 2, 3, 8]);
        assert_eq!(list(""), Vec::<u16>::new());
    }

    #[test]
    fn empty_stats_keep_runcs_keys() {
        let v = serde_json::to_value(Stats::default()).unwrap_or_default();
        let keys: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        for k in [
            "blkio",
            "cpu",
            "cpuset",
            "hugetlb",
            "intel_rdt",
            "memory",
            "network_interfaces",
            "pids",
        ] {
            assert!(keys.iter().any(|key| *key == k), "{k}: {keys:?}");
        }
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 0);
        assert_eq!(v["network_interfaces"], serde_json::Value::Null);
    }
}
