//! A loaded project: its name, where it lives, and its services, networks, volumes, secrets
//! and configs in the long syntax, with the reading of a service that the planner needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::interpolate::Environment;
use crate::normalize::text;

/// A compose project, resolved: interpolated, merged, extended, profiles applied, checked.
#[derive(Debug, Clone)]
pub struct Project {
    /// `-p`, `COMPOSE_PROJECT_NAME`, the file's `name`, or the directory's name (normalised).
    pub name: String,
    /// The project directory: relative paths start there; `.env` is read there.
    pub working_dir: PathBuf,
    /// The files it was read from, absolute, in merge order.
    pub config_files: Vec<PathBuf>,
    /// The variables interpolation used (the process's over the env files').
    pub environment: Environment,
    /// The enabled services.
    pub services: BTreeMap<String, Value>,
    /// Services left out by their profiles (still the project's for `down` and `ps`).
    pub disabled: BTreeSet<String>,
    pub networks: BTreeMap<String, Value>,
    pub volumes: BTreeMap<String, Value>,
    pub secrets: BTreeMap<String, Value>,
    pub configs: BTreeMap<String, Value>,
    /// What the loader warns about (unset variables, obsolete `version`).
    pub warnings: Vec<String>,
}

/// A `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    /// `service_started`, `service_healthy` or `service_completed_successfully`.
    pub condition: String,
    pub required: bool,
    /// Restart this service when the dependency is recreated.
    pub restart: bool,
}

/// A top-level network or volume: what `up` creates when a service needs it and `down`
/// removes, found on the daemon by the project's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Network,
    Volume,
}

impl Resource {
    /// The word docker compose's progress lines use.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Network => "Network",
            Resource::Volume => "Volume",
        }
    }

    /// Where the Engine API keeps them (`GET`, `POST …/create`, `DELETE …/{name}`).
    pub fn collection(self) -> &'static str {
        match self {
            Resource::Network => "/networks",
            Resource::Volume => "/volumes",
        }
    }

    /// The label that records the key it has in the project.
    pub fn label(self) -> &'static str {
        match self {
            Resource::Network => crate::labels::NETWORK,
            Resource::Volume => crate::labels::VOLUME,
        }
    }
}

impl Project {
    /// A project known only by its name (`down -p NAME` with no file): its objects are found
    /// by their labels.
    pub fn named(name: &str, working_dir: PathBuf) -> Project {
        Project {
            name: name.to_string(),
            working_dir,
            config_files: Vec::new(),
            environment: Environment::new(),
            services: BTreeMap::new(),
            disabled: BTreeSet::new(),
            networks: BTreeMap::new(),
            volumes: BTreeMap::new(),
            secrets: BTreeMap::new(),
            configs: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The model as `docker compose config` prints it.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("services".into(), json!(self.services));
        for (k, section) in [
            ("networks", &self.networks),
            ("volumes", &self.volumes),
            ("secrets", &self.secrets),
            ("configs", &self.configs),
        ] {
            if !section.is_empty() {
                m.insert(k.into(), json!(section));
            }
        }
        Value::Object(m)
    }

    /// The model as YAML, its sections in docker compose's order (name, services, networks,
    /// volumes, secrets, configs), each sorted by key.
    pub fn to_yaml(&self) -> String {
        let v = self.to_value();
        let mut out = String::new();
        for key in [
            "name", "services", "networks", "volumes", "secrets", "configs",
        ] {
            if let Some(section) = v.get(key) {
                let mut one = Map::new();
                one.insert(key.into(), section.clone());
                out.push_str(&crate::yaml::to_yaml(&Value::Object(one)));
            }
        }
        out
    }

    /// Whether `name` is one of the project's services, enabled or left out by its profiles.
    pub fn has_service(&self, name: &str) -> bool {
        self.services.contains_key(name) || self.disabled.contains(name)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> crate::Result<&Value> {
        self.services
            .get(name)
            .ok_or_else(|| crate::Error::NotFound(format!("no such service: {name}")))
    }

    /// The image a service runs: its `image`, else `<project>-<service>` (what `build` tags).
    pub fn image_of(&self, service: &str, svc: &Value) -> String {
        svc.get("image")
            .map(text)
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| format!("{}-{service}", self.name))
    }

    /// The network's name on the daemon.
    pub fn network_name(&self, key: &str) -> String {
        self.resource_name(Resource::Network, key)
    }

    /// The volume's name on the daemon.
    pub fn volume_name(&self, key: &str) -> String {
        self.resource_name(Resource::Volume, key)
    }

    /// The top-level `networks` or `volumes` section.
    pub fn definitions(&self, r: Resource) -> &BTreeMap<String, Value> {
        match r {
            Resource::Network => &self.networks,
            Resource::Volume => &self.volumes,
        }
    }

    /// A network's or volume's name on the daemon: its `name`, else `<project>_<key>`.
    pub fn resource_name(&self, r: Resource, key: &str) -> String {
        self.definitions(r)
            .get(key)
            .and_then(|n| n.get("name"))
            .map(text)
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }
}

/// How many containers a service wants: `scale`, else `deploy.replicas`, else 1.
pub fn replicas(svc: &Value) -> u32 {
    let n = svc
        .get("scale")
        .or_else(|| svc.get("deploy").and_then(|d| d.get("replicas")))
        .map(text)
        .and_then(|s| s.parse::<u32>().ok());
    n.unwrap_or(1)
}

/// A service's dependencies, in name order.
pub fn dependencies(svc: &Value) -> Vec<Dependency> {
    svc.get("depends_on")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, d)| Dependency {
            service: name.clone(),
            condition: d
                .get("condition")
                .map(text)
                .unwrap_or_else(|| "service_started".into()),
            required: d.get("required").and_then(Value::as_bool).unwrap_or(true),
            restart: d.get("restart").and_then(Value::as_bool).unwrap_or(false),
        })
        .collect()
}

/// The named volumes a service mounts (the keys of the top-level `volumes`).
pub fn named_volumes(svc: &Value) -> Vec<String> {
    svc.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("type").map(text).as_deref() == Some("volume"))
        .filter_map(|v| v.get("source").map(text).filter(|s| !s.is_empty()))
        .collect()
}

/// Whether the daemon's value is true or a YAML truthy string.
pub fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "True" | "TRUE" | "yes" | "1"),
        _ => false,
    }
}
