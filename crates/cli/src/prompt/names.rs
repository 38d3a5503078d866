//! Names for completion from the daemon, through the Engine API like every other request:
//! one request per completion, bounded by a short timeout, never starting the daemon, and
//! nothing at all (no message) when it does not answer. Compose services come from the
//! project's files in the current directory, as `berth compose` reads them.

use std::time::Duration;

use serde_json::Value;

use super::complete::{Container, Names, Project};
use crate::client::http::Client;

/// How long a completion waits for the daemon: a shell must not hang on a busy one.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The daemon behind `-H`/`BERTH_HOST`/the default socket.
#[derive(Debug)]
pub struct DaemonNames {
    client: Option<Client>,
}

impl DaemonNames {
    /// Names from the daemon at `host` (none: `BERTH_HOST` or the default socket).
    pub fn new(host: Option<String>) -> DaemonNames {
        DaemonNames {
            client: Client::new(host).ok().map(Client::without_autostart),
        }
    }

    /// One GET, or nothing.
    fn get(&self, path: &str) -> Option<Value> {
        let client = self.client.as_ref()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let answer =
            runtime.block_on(async { tokio::time::timeout(TIMEOUT, client.get_json(path)).await });
        runtime.shutdown_background();
        answer.ok()?.ok()
    }

    fn list(&self, path: &str) -> Vec<Value> {
        match self.get(path) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        }
    }
}

impl Names for DaemonNames {
    fn containers(&mut self) -> Vec<Container> {
        self.list("/containers/json?all=1")
            .iter()
            .filter_map(|c| {
                let name = c["Names"][0].as_str()?.trim_start_matches('/');
                Some(Container {
                    name: name.to_owned(),
                    state: c["State"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }

    fn images(&mut self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .list("/images/json")
            .iter()
            .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(String::from))
            .filter(|t| t != "<none>:<none>")
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    fn networks(&mut self) -> Vec<String> {
        let mut names: Vec<String> = self
            .list("/networks")
            .iter()
            .filter_map(|n| n["Name"].as_str().map(String::from))
            .collect();
        names.sort();
        names
    }

    fn volumes(&mut self) -> Vec<String> {
        let mut names: Vec<String> = self
            .get("/volumes")
            .and_then(|v| v["Volumes"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v["Name"].as_str().map(String::from))
            .collect();
        names.sort();
        names
    }

    fn log_drivers(&mut self) -> Vec<String> {
        self.get("/info")
            .and_then(|i| i["Plugins"]["Log"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.as_str().map(String::from))
            .collect()
    }

    fn services(&mut self, project: &Project) -> Vec<String> {
        let options = berth_compose::Options {
            files: project.files.iter().map(Into::into).collect(),
            project_name: project.name.clone(),
            project_directory: project.directory.as_ref().map(Into::into),
            env_files: project.env_files.iter().map(Into::into).collect(),
            profiles: project.profiles.clone(),
            services: Vec::new(),
        };
        let Ok(p) = berth_compose::load(&options) else {
            return Vec::new();
        };
        let mut names: Vec<String> = p.services.into_keys().chain(p.disabled).collect();
        names.sort();
        names
    }
}
