//! What the builder asks of the daemon: the OCI spec of a RUN container (Docker's defaults,
//! as for any container: capabilities, seccomp, masked paths, /etc files) and its network
//! (`build_net.rs`), pulls of base images that are not local (through the daemon's registry
//! client, with the credentials the build request carried), and ADD's downloads (`fetch.rs`).

use std::path::Path;
use std::sync::Arc;

use berth_build::{Fetched, RunContainer, RunSetup};
use berth_registry::{Credentials, Progress, PullOptions};
use bollard_stubs::models::HostConfig;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::daemon::Daemon;
use crate::spec;

/// The daemon as the builder's host, for one build.
pub struct BuildHost<'a> {
    pub daemon: &'a Arc<Daemon>,
    /// `X-Registry-Config`: credentials per registry, for pulls of base images.
    pub auths: Vec<(String, Credentials)>,
}

impl berth_build::Host for BuildHost<'_> {
    fn run_spec(&self, c: &RunContainer<'_>) -> Result<RunSetup, String> {
        let user = spec::resolve_user(c.rootfs, c.user).map_err(|e| e.to_string())?;
        let caps: Vec<String> = spec::DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        // `host` shares the daemon's network, `none` is a namespace with loopback alone, and
        // anything else a network the daemon wires, as for a container on it.
        let mut hold: Option<Box<dyn std::any::Any + Send>> = None;
        let (netns, hosts, resolv) = match c.network {
            "host" => (
                None,
                std::fs::read_to_string("/etc/hosts").unwrap_or_default()
                    + &extra_hosts_lines(c.extra_hosts),
                std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ),
            "none" => (
                Some(json!({"type": "network"})),
                self.daemon.hosts_text(c.extra_hosts, &[], c.hostname, &[]),
                self.daemon
                    .resolv_conf_text(&HostConfig::default(), false, &[]),
            ),
            network => {
                let n = self
                    .daemon
                    .build_network(c.id, network)
                    .map_err(|e| e.to_string())?;
                let wired = (
                    Some(json!({"type": "network", "path": n.path})),
                    self.daemon
                        .hosts_text(c.extra_hosts, &[], c.hostname, &[n.ip.into()]),
                    n.resolv_conf.clone(),
                );
                hold = Some(Box::new(n));
                wired
            }
        };
        write_etc_files(c.dir, c.hostname, &hosts, &resolv)
            .map_err(|e| format!("write {}: {e}", c.dir.display()))?;
        let namespaces = spec::namespaces(netns);
        let spec = json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": user.0, "gid": user.1, "additionalGids": user.2},
                "args": c.args,
                "env": c.env,
                "cwd": c.cwd,
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": false,
                "oomScoreAdj": 0,
            },
            "root": {"path": c.rootfs, "readonly": false},
            "hostname": c.hostname,
            "mounts": spec::default_mounts(false, 64 << 20, c.dir),
            "linux": {
                "namespaces": namespaces,
                "cgroupsPath": format!("/berth/{}", c.id),
                // Deny every device, then the runtime adds the defaults (null, zero, tty, …).
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "maskedPaths": spec::MASKED,
                "readonlyPaths": spec::READ_ONLY,
                "seccomp": crate::seccomp::default_profile(&caps),
            },
        });
        Ok(RunSetup { spec, hold })
    }

    /// A pull as `POST /images/create` does it, its JSON messages streamed into the build's
    /// output as dockerd's classic builder shows them.
    fn pull(
        &self,
        reference: &str,
        progress: &mut dyn FnMut(Value) -> bool,
    ) -> Result<berth_image::Image, String> {
        let r = berth_image::Reference::parse(reference).map_err(|e| e.to_string())?;
        let opts = PullOptions {
            platform: String::new(),
            creds: Credentials::for_domain(&self.auths, r.domain()),
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
        let d = self.daemon.clone();
        let job = self
            .daemon
            .runtime
            .spawn(async move { d.pull_one(&r, &opts, &tx, true).await });
        while let Some(p) = rx.blocking_recv() {
            if !progress(crate::api::registry::message(&p)) {
                // Nobody listens: the pull's next report fails, which stops it.
                break;
            }
        }
        drop(rx);
        match self.daemon.runtime.block_on(job) {
            Ok(Ok(outcome)) => Ok(outcome.image),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("pulling {reference}: {e}")),
        }
    }

    fn fetch(&self, url: &str, dest: &Path) -> Result<Fetched, String> {
        self.daemon.fetch_url(url, dest)
    }
}

/// `name:ip` entries as /etc/hosts lines (appended to the host's own on `--network host`).
fn extra_hosts_lines(extra: &[String]) -> String {
    extra
        .iter()
        .filter_map(|e| e.split_once([':', '=']))
        .map(|(name, ip)| format!("{ip}\t{name}\n"))
        .collect()
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf of a RUN container.
fn write_etc_files(dir: &Path, hostname: &str, hosts: &str, resolv: &str) -> std::io::Result<()> {
    let write = crate::files::write_in_place;
    write(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    write(&dir.join("hosts"), hosts.as_bytes())?;
    write(&dir.join("resolv.conf"), resolv.as_bytes())
}
