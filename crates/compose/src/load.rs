//! Reading a project as docker compose does, all before anything is created: find the files,
//! read `.env`/`--env-file`, then per file parse, interpolate, validate, normalise and follow
//! `include`; merge the files; name the project; resolve `extends`; apply profiles; fold
//! `env_file`s into `environment`; check references, dependency cycles and port clashes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::interpolate::{self, Environment};
use crate::normalize::{self, text};
use crate::project::{dependencies, named_volumes, replicas, Project};
use crate::{dotenv, graph, merge, schema, yaml};

/// The files docker compose looks for, in its order of preference.
const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What the command line says about where and what the project is.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-f` (none: `COMPOSE_FILE`, else compose.yaml … found from the current directory up).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (none: the project directory's `.env`, if any).
    pub env_files: Vec<PathBuf>,
    /// `--profile`, added to `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Services named on the command line: enabled whatever their profiles.
    pub services: Vec<String>,
}

/// Loads and checks the project.
pub fn load(opts: &Options) -> Result<Project> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let process_env: Environment = std::env::vars().collect();
    let files = find_files(opts, &cwd, &process_env)?;
    let working_dir = match &opts.project_directory {
        Some(d) => cwd.join(d),
        None => files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.clone()),
    };
    let env = project_environment(opts, &cwd, &working_dir, &process_env)?;
    let mut warnings = Vec::new();
    let mut tree = Value::Object(Map::new());
    for f in &files {
        let t = read_file(f, &working_dir, &env, &mut warnings, &mut Vec::new())?;
        merge::merge(&mut tree, t, false);
    }
    if tree.get("version").is_some() {
        warnings.push(format!(
            "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
            files.first().map(|f| f.display().to_string()).unwrap_or_default()
        ));
    }
    let name = project_name(opts, &env, &tree, &working_dir)?;
    let mut services: BTreeMap<String, Value> = section(&tree, "services");
    let raw = services.clone();
    for svc in services.keys().cloned().collect::<Vec<_>>() {
        let resolved = extended(&svc, &raw, &working_dir, &env, &mut Vec::new())?;
        services.insert(svc, resolved);
    }
    let disabled = apply_profiles(opts, &env, &mut services)?;
    for (svc_name, svc) in services.iter_mut() {
        fold_env_files(svc, &env).map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("service {svc_name:?}: {m}")),
            other => other,
        })?;
    }
    let mut project = Project {
        name,
        working_dir,
        config_files: files,
        environment: env,
        services,
        disabled,
        networks: section(&tree, "networks"),
        volumes: section(&tree, "volumes"),
        secrets: section(&tree, "secrets"),
        configs: section(&tree, "configs"),
        warnings,
    };
    finish(&mut project)?;
    check(&project)?;
    Ok(project)
}

fn find_files(opts: &Options, cwd: &Path, env: &Environment) -> Result<Vec<PathBuf>> {
    if !opts.files.is_empty() {
        return Ok(opts.files.iter().map(|f| cwd.join(f)).collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .cloned()
            .unwrap_or_else(|| ":".into());
        return Ok(list.split(sep.as_str()).map(|f| cwd.join(f)).collect());
    }
    let start = opts
        .project_directory
        .as_ref()
        .map(|d| cwd.join(d))
        .unwrap_or_else(|| cwd.to_path_buf());
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        if let Some(f) = DEFAULT_FILES
            .iter()
            .map(|f| d.join(f))
            .find(|p| p.is_file())
        {
            let mut out = vec![f];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|f| d.join(f))
                .find(|p| p.is_file())
            {
                out.push(o);
            }
            return Ok(out);
        }
        dir = d.parent();
    }
    Err(Error::NoFile)
}

/// The process's environment over the env files' (`--env-file`, else `<dir>/.env`).
fn project_environment(
    opts: &Options,
    cwd: &Path,
    working_dir: &Path,
    process: &Environment,
) -> Result<Environment> {
    let mut env = Environment::new();
    let files: Vec<PathBuf> = if opts.env_files.is_empty() {
        let dot = working_dir.join(".env");
        if dot.is_file() {
            vec![dot]
        } else {
            Vec::new()
        }
    } else {
        opts.env_files.iter().map(|f| cwd.join(f)).collect()
    };
    for f in files {
        for (k, v) in dotenv::read(&f, process)? {
            env.insert(k, v);
        }
    }
    env.extend(process.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

/// One file: parsed, interpolated, checked, normalised (relative paths from `base`), its
/// `include`s merged in.
fn read_file(
    file: &Path,
    base: &Path,
    env: &Environment,
    warnings: &mut Vec<String>,
    including: &mut Vec<PathBuf>,
) -> Result<Value> {
    let source = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let mut tree = Value::Object(Map::new());
    for doc in yaml::parse(&source, file)? {
        merge::merge(&mut tree, doc, false);
    }
    if !tree.is_object() {
        return Err(Error::Schema {
            file: file.to_path_buf(),
            message: "(root) must be a mapping".into(),
        });
    }
    interpolate::tree(&mut tree, env, warnings)?;
    schema::validate(&tree).map_err(|message| Error::Schema {
        file: file.to_path_buf(),
        message,
    })?;
    let mut tree = merge::strip(tree);
    if let Some(services) = tree.get_mut("services").and_then(Value::as_object_mut) {
        for (name, svc) in services.iter_mut() {
            normalize::service(svc, base, env)
                .map_err(|m| Error::Invalid(format!("service {name:?}: {m}")))?;
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(m) = tree.get_mut(key).and_then(Value::as_object_mut) {
            for v in m.values_mut() {
                normalize::file_resource(v, base);
            }
        }
    }
    if let Some(Value::Array(includes)) = tree.get("include").cloned() {
        including.push(file.to_path_buf());
        for inc in includes {
            let (paths, dir, env_files) = match &inc {
                Value::Object(o) => (
                    match o.get("path") {
                        Some(Value::Array(a)) => a.iter().map(text).collect(),
                        Some(p) => vec![text(p)],
                        None => Vec::new(),
                    },
                    o.get("project_directory").map(text),
                    match o.get("env_file") {
                        Some(Value::Array(a)) => a.iter().map(text).collect(),
                        Some(p) => vec![text(p)],
                        None => Vec::new(),
                    },
                ),
                other => (vec![text(other)], None, Vec::new()),
            };
            let paths: Vec<PathBuf> = paths.iter().map(|p| base.join(p)).collect();
            let Some(first) = paths.first() else { continue };
            if including.contains(first) {
                return Err(Error::Invalid(format!(
                    "include cycle detected: {} includes {}",
                    file.display(),
                    first.display()
                )));
            }
            let inc_dir = dir
                .map(|d| base.join(d))
                .or_else(|| first.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| base.to_path_buf());
            let mut inc_env = Environment::new();
            let env_paths: Vec<PathBuf> = if env_files.is_empty() {
                Some(inc_dir.join(".env"))
                    .filter(|p| p.is_file())
                    .into_iter()
                    .collect()
            } else {
                env_files.iter().map(|f| base.join(f)).collect()
            };
            for f in env_paths {
                inc_env.extend(dotenv::read(&f, env)?);
            }
            inc_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let mut included = Value::Object(Map::new());
            for p in &paths {
                let t = read_file(p, &inc_dir, &inc_env, warnings, including)?;
                merge::merge(&mut included, t, false);
            }
            for key in ["services", "networks", "volumes", "secrets", "configs"] {
                let Some(items) = included.get(key).and_then(Value::as_object).cloned() else {
                    continue;
                };
                let target = tree
                    .as_object_mut()
                    .map(|t| t.entry(key).or_insert_with(|| json!({})));
                let Some(Value::Object(target)) = target else {
                    continue;
                };
                for (name, v) in items {
                    if key == "services" && target.contains_key(&name) {
                        return Err(Error::Invalid(format!(
                            "services.{name} conflicts with imported resource"
                        )));
                    }
                    target.entry(name).or_insert(v);
                }
            }
        }
        including.pop();
    }
    if let Some(o) = tree.as_object_mut() {
        o.remove("include");
    }
    Ok(tree)
}

fn section(tree: &Value, key: &str) -> BTreeMap<String, Value> {
    tree.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("x-"))
                .map(|(k, v)| (k.clone(), if v.is_null() { json!({}) } else { v.clone() }))
                .collect()
        })
        .unwrap_or_default()
}

/// `-p`, else `COMPOSE_PROJECT_NAME`, else the file's `name`, else the directory's name
/// normalised as docker compose does.
fn project_name(
    opts: &Options,
    env: &Environment,
    tree: &Value,
    working_dir: &Path,
) -> Result<String> {
    let explicit = opts
        .project_name
        .clone()
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|s| !s.is_empty())
        .or_else(|| tree.get("name").map(text).filter(|s| !s.is_empty()));
    let name = match explicit {
        Some(n) => n,
        None => normalize_project_name(
            &working_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if name.is_empty() {
        return Err(Error::Invalid("project name must not be empty".into()));
    }
    if !valid {
        return Err(Error::Invalid(format!(
            "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
        )));
    }
    Ok(name)
}

/// Lower case, only `[a-z0-9_-]` kept, no leading `_` or `-` (compose-go's rule).
pub fn normalize_project_name(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// A service with its `extends` chain merged under it.
fn extended(
    name: &str,
    services: &BTreeMap<String, Value>,
    working_dir: &Path,
    env: &Environment,
    chain: &mut Vec<String>,
) -> Result<Value> {
    let mut svc = services
        .get(name)
        .cloned()
        .ok_or_else(|| Error::Invalid(format!("cannot extend service {name:?}: not found")))?;
    let Some(ext) = svc.as_object_mut().and_then(|o| o.remove("extends")) else {
        return Ok(svc);
    };
    let (file, base_name) = match &ext {
        Value::String(s) => (None, s.clone()),
        other => (
            other.get("file").map(text),
            other.get("service").map(text).unwrap_or_default(),
        ),
    };
    let key = format!("{}:{base_name}", file.clone().unwrap_or_default());
    if chain.contains(&key) {
        return Err(Error::Invalid(format!(
            "circular reference with extends: service {name:?} extends {base_name:?}"
        )));
    }
    chain.push(key);
    let mut base = match &file {
        None => extended(&base_name, services, working_dir, env, chain)?,
        Some(f) => {
            let path = working_dir.join(f);
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let tree = read_file(&path, &dir, env, &mut Vec::new(), &mut Vec::new())?;
            extended(&base_name, &section(&tree, "services"), &dir, env, chain)?
        }
    };
    chain.pop();
    merge::merge(&mut base, svc, true);
    Ok(base)
}

/// Leaves out the services whose profiles are all inactive; returns their names.
fn apply_profiles(
    opts: &Options,
    env: &Environment,
    services: &mut BTreeMap<String, Value>,
) -> Result<BTreeSet<String>> {
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if let Some(p) = env.get("COMPOSE_PROFILES") {
        active.extend(
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    let all = active.contains("*");
    // Named services and what they need are enabled whatever their profiles.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = opts.services.clone();
    while let Some(s) = todo.pop() {
        if wanted.insert(s.clone()) {
            if let Some(svc) = services.get(&s) {
                todo.extend(dependencies(svc).into_iter().map(|d| d.service));
            }
        }
    }
    let mut disabled = BTreeSet::new();
    for (name, svc) in services.iter() {
        let profiles: Vec<String> = svc
            .get("profiles")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        let on = profiles.is_empty()
            || all
            || profiles.iter().any(|p| active.contains(p))
            || wanted.contains(name);
        if !on {
            disabled.insert(name.clone());
        }
    }
    for d in &disabled {
        services.remove(d);
    }
    Ok(disabled)
}

/// Each `env_file`'s variables under the service's own `environment`.
fn fold_env_files(svc: &mut Value, env: &Environment) -> Result<()> {
    let Some(files) = svc.as_object_mut().and_then(|o| o.remove("env_file")) else {
        return Ok(());
    };
    let mut merged = Map::new();
    for f in files.as_array().into_iter().flatten() {
        let path = PathBuf::from(f.get("path").map(text).unwrap_or_default());
        let required = f.get("required").and_then(Value::as_bool).unwrap_or(true);
        if !path.is_file() {
            if required {
                return Err(Error::Invalid(format!(
                    "env file {} not found: no such file or directory",
                    path.display()
                )));
            }
            continue;
        }
        for (k, v) in dotenv::read(&path, env)? {
            merged.insert(k, json!(v));
        }
    }
    if let Some(Value::Object(own)) = svc.get("environment") {
        merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    svc["environment"] = Value::Object(merged);
    Ok(())
}

/// Fills in what compose implies: the default network, names on the daemon.
fn finish(p: &mut Project) -> Result<()> {
    let mut uses_default = false;
    for svc in p.services.values_mut() {
        let has_mode = svc.get("network_mode").is_some();
        let has_nets = svc
            .get("networks")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
        if !has_mode && !has_nets {
            svc["networks"] = json!({"default": null});
        }
        if svc
            .get("networks")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key("default"))
        {
            uses_default = true;
        }
    }
    if uses_default {
        p.networks
            .entry("default".into())
            .or_insert_with(|| json!({}));
    }
    let project = p.name.clone();
    for (kind, section) in [
        ("network", &mut p.networks),
        ("volume", &mut p.volumes),
        ("secret", &mut p.secrets),
        ("config", &mut p.configs),
    ] {
        for (key, v) in section.iter_mut() {
            if !v.is_object() {
                return Err(Error::Invalid(format!("{kind} {key} must be a mapping")));
            }
            let external = crate::project::flag(v.get("external"));
            if v.get("name").is_none() {
                v["name"] = json!(if external {
                    key.clone()
                } else {
                    format!("{project}_{key}")
                });
            }
        }
    }
    Ok(())
}

/// References, cycles and clashes: everything that would fail half-way through an `up`.
fn check(p: &Project) -> Result<()> {
    let invalid = |m: String| Error::Invalid(format!("{m}: invalid compose project"));
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, svc) in &p.services {
        if svc.get("image").is_none() && svc.get("build").is_none() {
            return Err(invalid(format!(
                "service {name:?} has neither an image nor a build context specified"
            )));
        }
        let mut names = Vec::new();
        for d in dependencies(svc) {
            if !p.services.contains_key(&d.service) {
                if !d.required {
                    continue;
                }
                let why = if p.disabled.contains(&d.service) {
                    format!(
                        "service {name:?} depends on service {:?} whose profiles are not enabled",
                        d.service
                    )
                } else {
                    format!(
                        "service {name:?} depends on undefined service {:?}",
                        d.service
                    )
                };
                return Err(invalid(why));
            }
            if !matches!(
                d.condition.as_str(),
                "service_started" | "service_healthy" | "service_completed_successfully"
            ) {
                return Err(invalid(format!(
                    "service {name:?} depends on {:?} with an unknown condition {:?}",
                    d.service, d.condition
                )));
            }
            names.push(d.service);
        }
        deps.insert(name.clone(), names);
        for net in svc
            .get("networks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if !p.networks.contains_key(net) {
                return Err(invalid(format!(
                    "service {name:?} refers to undefined network {net}"
                )));
            }
        }
        for src in named_volumes(svc) {
            if !p.volumes.contains_key(&src) {
                return Err(invalid(format!(
                    "service {name:?} refers to undefined volume {src}"
                )));
            }
        }
        for (key, section) in [("secrets", &p.secrets), ("configs", &p.configs)] {
            for r in svc.get(key).and_then(Value::as_array).into_iter().flatten() {
                let src = r.get("source").map(text).unwrap_or_default();
                if !section.contains_key(&src) {
                    return Err(invalid(format!(
                        "service {name:?} refers to undefined {} {src}",
                        key.trim_end_matches('s')
                    )));
                }
            }
        }
    }
    graph::start_order(&deps)?;
    check_ports(p)
}

/// A host port published by two services, or by a service with more than one replica, can
/// never start: refuse it now rather than after half the project is up.
fn check_ports(p: &Project) -> Result<()> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (name, svc) in &p.services {
        for port in svc
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(published) = port.get("published").map(text).filter(|s| !s.is_empty()) else {
                continue;
            };
            if published.contains('-') {
                continue;
            }
            let ip = port
                .get("host_ip")
                .map(text)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            let proto = port
                .get("protocol")
                .map(text)
                .unwrap_or_else(|| "tcp".into());
            let key = format!("{ip}:{published}/{proto}");
            let clash = seen.iter().find(|(k, _)| {
                let (kip, krest) = k.split_once(':').unwrap_or(("", k));
                let (ip2, rest2) = key.split_once(':').unwrap_or(("", &key));
                krest == rest2 && (kip == ip2 || kip == "0.0.0.0" || ip2 == "0.0.0.0")
            });
            if let Some((k, other)) = clash {
                return Err(Error::Invalid(format!(
                    "port clash: services {other:?} and {name:?} both publish host port {k}"
                )));
            }
            if replicas(svc) > 1 {
                return Err(Error::Invalid(format!(
                    "port clash: service {name:?} has {} replicas but publishes the fixed host port {key}",
                    replicas(svc)
                )));
            }
            seen.insert(key, name.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn opts(files: Vec<PathBuf>) -> Options {
        Options {
            files,
            ..Default::default()
        }
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x-Y"), "x-y");
    }

    #[test]
    fn files_merge_extend_and_include() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        write(dir, ".env", "TAG=1.2\nPORT=8080\n");
        write(
            dir,
            "common.yaml",
            "services:\n  base:\n    image: busybox\n    environment: [FROM_BASE=1]\n",
        );
        write(
            dir,
            "inc.yaml",
            "services:\n  side:\n    image: side:${TAG}\nvolumes:\n  sidedata: {}\n",
        );
        let a = write(
            dir,
            "compose.yaml",
            "name: Demo\ninclude: [inc.yaml]\nservices:\n  web:\n    extends: {file: common.yaml, service: base}\n    image: web:${TAG:-x}\n    ports: [\"${PORT}:80\"]\n    depends_on: [db]\n  db:\n    image: db\n    profiles: [extra]\n",
        );
        let b = write(
            dir,
            "over.yaml",
            "services:\n  web:\n    environment:\n      B: \"2\"\n",
        );
        let mut o = opts(vec![a.clone(), b]);
        o.project_name = Some("demo".into());
        o.profiles = vec!["extra".into()];
        let p = load(&o).unwrap();
        assert_eq!(p.name, "demo");
        let web = &p.services["web"];
        assert_eq!(web["image"], "web:1.2");
        assert_eq!(web["environment"], json!({"FROM_BASE": "1", "B": "2"}));
        assert_eq!(web["ports"][0]["published"], "8080");
        assert_eq!(p.services["side"]["image"], "side:1.2");
        assert_eq!(p.volume_name("sidedata"), "demo_sidedata");
        assert_eq!(p.network_name("default"), "demo_default");
        // Without the profile, web's dependency is missing.
        let mut o = opts(vec![a]);
        o.project_name = Some("demo".into());
        let e = load(&o).unwrap_err().to_string();
        assert!(e.contains("whose profiles are not enabled"), "{e}");
    }

    #[test]
    fn bad_input_is_refused_before_anything() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let cases = [
            ("services:\n  a:\n    image: x\n    imagee: y\n", "validating"),
            ("services:\n  a:\n    image: [\n", "yaml: line"),
            (
                "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
                "dependency cycle detected: a -> b -> a",
            ),
            (
                "services:\n  a:\n    image: ${NOPE_UNSET_VAR:?must be set}\n",
                "required variable NOPE_UNSET_VAR is missing a value: must be set",
            ),
            (
                "services:\n  a:\n    image: x\n    ports: ['8080:80']\n  b:\n    image: x\n    ports: ['127.0.0.1:8080:81']\n",
                "port clash",
            ),
            ("services:\n  a:\n    image: x\n    networks: [nope]\n", "undefined network nope"),
            ("services:\n  a:\n    image: x\n    volumes: ['nope:/d']\n", "undefined volume nope"),
            ("services:\n  a:\n    command: x\n", "neither an image nor a build"),
        ];
        for (text, want) in cases {
            let f = write(dir, "compose.yaml", text);
            let mut o = opts(vec![f]);
            o.project_name = Some("t".into());
            let e = load(&o).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
