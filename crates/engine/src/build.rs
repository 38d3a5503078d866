//! What the builder asks of the daemon: the OCI spec of a RUN container (Docker's defaults,
//! as for any container: capabilities, seccomp, masked paths, /etc files), and pulls of base
//! images that are not local.

use std::path::Path;

use berth_build::RunContainer;
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::spec;

/// The daemon as the builder's host.
pub struct BuildHost<'a> {
    pub daemon: &'a Daemon,
}

impl berth_build::Host for BuildHost<'_> {
    fn run_spec(&self, c: &RunContainer<'_>) -> Result<Value, String> {
        let user = spec::resolve_user(c.rootfs, c.user).map_err(|e| e.to_string())?;
        write_etc_files(c.dir, c.hostname)
            .map_err(|e| format!("write {}: {e}", c.dir.display()))?;
        let caps: Vec<String> = spec::DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        let mut namespaces = vec![
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
        ];
        // `default` is a network namespace of its own (loopback only until bridge networks
        // are wired to builds); `host` shares the daemon's.
        if c.network != "host" {
            namespaces.push(json!({"type": "network"}));
        }
        if spec::cgroup_v2_only() {
            namespaces.push(json!({"type": "cgroup"}));
        }
        Ok(json!({
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
        }))
    }

    fn pull(
        &self,
        reference: &str,
        _progress: &mut dyn FnMut(&str),
    ) -> Result<berth_image::Image, String> {
        let _ = self.daemon;
        let repo = berth_image::Reference::parse(reference)
            .map(|r| r.familiar_repository())
            .unwrap_or_else(|_| reference.to_string());
        Err(format!(
            "pull access denied for {repo}, repository does not exist or may require 'docker login': \
             No such image: {reference} (berth cannot reach a registry for it yet: load or import the image first)"
        ))
    }
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf of a RUN container (the host's resolvers,
/// less the loopback ones a container cannot reach).
fn write_etc_files(dir: &Path, hostname: &str) -> std::io::Result<()> {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    let resolv: String = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with("nameserver 127."))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(dir.join("hosts"), hosts)?;
    std::fs::write(dir.join("resolv.conf"), resolv)
}
