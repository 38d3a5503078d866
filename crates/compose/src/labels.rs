//! docker compose's labels — the only record of a project on the daemon — and the config hash
//! that tells `up` whether a container still matches its service.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const VERSION: &str = "com.docker.compose.version";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
pub const IMAGE: &str = "com.docker.compose.image";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";

/// The compose version berth compose's behaviour follows (docker compose v2), written to
/// `com.docker.compose.version` as docker compose writes its own.
pub const COMPOSE_VERSION: &str = "2.32.4";

/// The `label` filter that selects a project's objects on the daemon.
pub fn project_filter(project: &str) -> String {
    serde_json::json!({ "label": [format!("{PROJECT}={project}")] }).to_string()
}

/// The hash of a service's configuration: what `up` compares to recreate a container. Like
/// docker compose's, it leaves out what does not change the container (how the image is
/// built or pulled, how many replicas, dependencies, profiles).
pub fn config_hash(svc: &Value) -> String {
    let mut v = svc.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["build", "pull_policy", "scale", "depends_on", "profiles"] {
            o.remove(k);
        }
        if let Some(d) = o.get_mut("deploy").and_then(Value::as_object_mut) {
            d.remove("replicas");
        }
    }
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_scale_and_build() {
        let a = json!({"image": "x", "deploy": {"replicas": 2}, "build": {"context": "/a"}});
        let b = json!({"image": "x", "deploy": {"replicas": 3}});
        let c = json!({"image": "y", "deploy": {"replicas": 3}});
        assert_eq!(config_hash(&a), config_hash(&b));
        assert_ne!(config_hash(&b), config_hash(&c));
    }
}
