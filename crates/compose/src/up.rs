//! `compose up`: networks and volumes first, images built or pulled, then each service in
//! dependency order — its dependencies' conditions awaited, its containers created, recreated
//! (config hash or image changed), scaled and started — and, attached, their logs.
//!
//! Idempotent by construction: a container whose `com.docker.compose.config-hash` and image
//! match its service is left as it is, so a second `up` changes nothing and a changed service
//! is the only one recreated.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::{enc, Engine, Method, Payload};
use crate::container::{container_name, create_body, injected, Replica};
use crate::error::{Error, Result};
use crate::images::{self, BuildOptions};
use crate::labels;
use crate::normalize::text;
use crate::project::{dependencies, flag, named_volumes, replicas, Project, Resource};
use crate::state::{containers, inspect, progress, warn_orphans, Existing};

/// `up`'s flags.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub detach: bool,
    /// `--build`: build images before starting.
    pub build: bool,
    /// `--no-build`: never build, even a missing image.
    pub no_build: bool,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub no_start: bool,
    pub no_deps: bool,
    /// `--wait`: return once services are running or healthy.
    pub wait: bool,
    pub wait_timeout: Option<Duration>,
    pub remove_orphans: bool,
    /// `--scale SERVICE=N`.
    pub scale: BTreeMap<String, u32>,
    /// `--pull always|missing|never`.
    pub pull: Option<String>,
    /// Stop timeout (seconds) when recreating.
    pub timeout: Option<u32>,
    /// Services named on the command line (none: all).
    pub services: Vec<String>,
}

/// The services an operation covers: the named ones (all when none) and, unless `no_deps`,
/// everything they depend on — in start order.
pub fn selected(project: &Project, names: &[String], no_deps: bool) -> Result<Vec<String>> {
    for n in names {
        project.service(n)?;
    }
    let mut want: BTreeSet<String> = if names.is_empty() {
        project.services.keys().cloned().collect()
    } else {
        names.iter().cloned().collect()
    };
    if !no_deps {
        let mut todo: Vec<String> = want.iter().cloned().collect();
        while let Some(s) = todo.pop() {
            for d in dependencies(project.service(&s)?) {
                if project.services.contains_key(&d.service) && want.insert(d.service.clone()) {
                    todo.push(d.service);
                }
            }
        }
    }
    let deps: BTreeMap<String, Vec<String>> = project
        .services
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                dependencies(v).into_iter().map(|d| d.service).collect(),
            )
        })
        .collect();
    Ok(crate::graph::start_order(&deps)?
        .into_iter()
        .filter(|s| want.contains(s))
        .collect())
}

/// Runs `up`; returns the containers it covers (for attaching to their logs).
pub async fn up<E: Engine>(e: &E, project: &Project, opts: &UpOptions) -> Result<Vec<Existing>> {
    let order = selected(project, &opts.services, opts.no_deps)?;
    let existing = containers(e, &project.name).await?;
    orphans(e, project, &existing, opts.remove_orphans).await?;
    ensure_networks(e, project, &order).await?;
    ensure_volumes(e, project, &order).await?;
    let image_ids = ensure_images(e, project, &order, opts).await?;
    let mut covered = Vec::new();
    for name in &order {
        let svc = project.service(name)?;
        if !opts.no_start {
            wait_dependencies(e, project, name, svc, &order).await?;
        }
        let mine: Vec<Existing> = existing
            .iter()
            .filter(|c| c.service == *name && !c.oneoff)
            .cloned()
            .collect();
        let want = opts
            .scale
            .get(name)
            .copied()
            .unwrap_or_else(|| replicas(svc));
        covered
            .extend(converge(e, project, name, svc, mine, want, image_ids.get(name), opts).await?);
    }
    if opts.wait {
        let deadline = opts.wait_timeout.map(|t| Instant::now() + t);
        for c in &covered {
            wait_ready(e, project, c, deadline).await?;
        }
    }
    Ok(covered)
}

async fn orphans<E: Engine>(
    e: &E,
    project: &Project,
    existing: &[Existing],
    remove: bool,
) -> Result<()> {
    let orphans: Vec<&Existing> = existing
        .iter()
        .filter(|c| !c.oneoff && !project.has_service(&c.service))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        warn_orphans(orphans);
        return Ok(());
    }
    for c in orphans {
        remove_container(e, c, None, false).await?;
    }
    Ok(())
}

/// Creates the project's networks that the services use and the daemon lacks; an external
/// network must exist.
pub async fn ensure_networks<E: Engine>(
    e: &E,
    project: &Project,
    services: &[String],
) -> Result<()> {
    let mut used = BTreeSet::new();
    for s in services {
        for k in project
            .service(s)?
            .get("networks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            used.insert(k.clone());
        }
    }
    for key in used {
        create_missing(e, project, Resource::Network, &key, |def, name, labels| {
            let mut body = json!({
                "Name": name,
                "CheckDuplicate": true,
                "Driver": def.get("driver").map(text).unwrap_or_else(|| "bridge".into()),
                "Internal": flag(def.get("internal")),
                "Attachable": flag(def.get("attachable")),
                "Labels": labels,
                "Options": def.get("driver_opts").cloned().unwrap_or_else(|| json!({})),
            });
            if let Some(ipam) = def.get("ipam") {
                let config: Vec<Value> = ipam
                    .get("config")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        json!({
                            "Subnet": c.get("subnet").map(text).unwrap_or_default(),
                            "Gateway": c.get("gateway").map(text).unwrap_or_default(),
                            "IPRange": c.get("ip_range").map(text).unwrap_or_default(),
                        })
                    })
                    .collect();
                body["IPAM"] = json!({
                    "Driver": ipam.get("driver").map(text).unwrap_or_else(|| "default".into()),
                    "Config": config,
                });
            }
            body
        })
        .await?;
    }
    Ok(())
}

/// Creates the named volumes the services mount and the daemon lacks; an external volume must
/// exist.
pub async fn ensure_volumes<E: Engine>(
    e: &E,
    project: &Project,
    services: &[String],
) -> Result<()> {
    let mut used = BTreeSet::new();
    for s in services {
        used.extend(named_volumes(project.service(s)?));
    }
    for key in used {
        create_missing(e, project, Resource::Volume, &key, |def, name, labels| {
            json!({
                "Name": name,
                "Driver": def.get("driver").map(text).unwrap_or_else(|| "local".into()),
                "DriverOpts": def.get("driver_opts").cloned().unwrap_or_else(|| json!({})),
                "Labels": labels,
            })
        })
        .await?;
    }
    Ok(())
}

/// Creates the project's network or volume `key` (one that it defines) unless the daemon
/// has it; an external one must exist. `body` makes the create request from the definition,
/// the name and the labels.
async fn create_missing<E: Engine>(
    e: &E,
    project: &Project,
    r: Resource,
    key: &str,
    body: impl FnOnce(&Value, &str, Value) -> Value,
) -> Result<()> {
    let Some(def) = project.definitions(r).get(key) else {
        return Ok(());
    };
    let name = project.resource_name(r, key);
    if exists(e, &format!("{}/{}", r.collection(), enc(&name))).await? {
        return Ok(());
    }
    // docker compose's words, and its quotes around volume names.
    let (missing, shown) = match r {
        Resource::Network => (
            format!("network {name} declared as external, but could not be found"),
            name.clone(),
        ),
        Resource::Volume => (
            format!("external volume \"{name}\" not found"),
            format!("\"{name}\""),
        ),
    };
    if flag(def.get("external")) {
        return Err(Error::NotFound(missing));
    }
    progress(r.kind(), &shown, "Creating");
    let lbls = resource_labels(def, r.label(), key, &project.name);
    e.call(
        Method::Post,
        &format!("{}/create", r.collection()),
        Payload::Json(body(def, &name, lbls)),
    )
    .await?;
    progress(r.kind(), &shown, "Created");
    Ok(())
}

/// Whether the daemon has the object at `path` (a network, a volume).
async fn exists<E: Engine>(e: &E, path: &str) -> Result<bool> {
    match e.call(Method::Get, path, Payload::None).await {
        Ok(_) => Ok(true),
        Err(err) if err.is_not_found() => Ok(false),
        Err(err) => Err(err),
    }
}

/// A network's or volume's own labels with docker compose's.
fn resource_labels(def: &Value, kind: &str, key: &str, project: &str) -> Value {
    let mut lbls = def
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    lbls.insert(kind.into(), json!(key));
    lbls.insert(labels::PROJECT.into(), json!(project));
    lbls.insert(labels::VERSION.into(), json!(labels::COMPOSE_VERSION));
    Value::Object(lbls)
}

/// Builds or pulls what each service needs; returns each service's image id.
async fn ensure_images<E: Engine>(
    e: &E,
    project: &Project,
    services: &[String],
    opts: &UpOptions,
) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    for name in services {
        let svc = project.service(name)?;
        let image = project.image_of(name, svc);
        let policy = opts
            .pull
            .clone()
            .or_else(|| svc.get("pull_policy").map(text))
            .unwrap_or_else(|| "missing".into());
        let mut id = images::image_id(e, &image).await?;
        let has_build = svc.get("build").is_some();
        if has_build && !opts.no_build && (opts.build || id.is_none() || policy == "build") {
            id = Some(images::build(e, project, name, svc, &BuildOptions::default()).await?);
        } else if policy == "always" || (id.is_none() && policy != "never" && !has_build) {
            images::pull(e, name, &image).await?;
            id = images::image_id(e, &image).await?;
        }
        match id {
            Some(id) => {
                ids.insert(name.clone(), id);
            }
            None => {
                return Err(Error::NotFound(format!(
                    "No such image: {image} (service {name:?})"
                )))
            }
        }
    }
    Ok(ids)
}

/// Brings one service to `want` containers matching its configuration.
#[allow(clippy::too_many_arguments)]
async fn converge<E: Engine>(
    e: &E,
    project: &Project,
    name: &str,
    svc: &Value,
    mine: Vec<Existing>,
    want: u32,
    image_id: Option<&String>,
    opts: &UpOptions,
) -> Result<Vec<Existing>> {
    let hash = labels::config_hash(svc);
    let mut kept = Vec::new();
    let mut numbers = BTreeSet::new();
    for c in mine {
        if c.number == 0 || c.number > want || numbers.contains(&c.number) {
            remove_container(e, &c, opts.timeout, false).await?;
            continue;
        }
        numbers.insert(c.number);
        let stale = c.config_hash != hash || image_id.is_some_and(|id| *id != c.image_id);
        // As docker compose: --force-recreate covers the named services, not what they need.
        let forced = opts.force_recreate
            && (opts.services.is_empty() || opts.services.iter().any(|s| s == name));
        if (forced || stale) && !opts.no_recreate {
            progress("Container", &c.name, "Recreate");
            stop_container(e, &c, opts.timeout).await?;
            // The old container's anonymous volumes go to the new one (as with docker
            // compose): a recreate must not lose the data in them.
            let anonymous = anonymous_volumes(&c);
            e.call(
                Method::Delete,
                &format!("/containers/{}?v=0&force=1", c.id),
                Payload::None,
            )
            .await?;
            let replica = Replica {
                service: name,
                number: c.number,
                oneoff: false,
                image_id: image_id.cloned(),
            };
            let fresh = create_replica(e, project, svc, &replica, &anonymous).await?;
            progress("Container", &c.name, "Recreated");
            kept.push(fresh);
        } else {
            if c.running() {
                progress("Container", &c.name, "Running");
            }
            kept.push(c);
        }
    }
    for n in (1..=want).filter(|n| !numbers.contains(n)) {
        let replica = Replica {
            service: name,
            number: n,
            oneoff: false,
            image_id: image_id.cloned(),
        };
        let cname = container_name(project, svc, &replica);
        progress("Container", &cname, "Creating");
        kept.push(create_replica(e, project, svc, &replica, &[]).await?);
        progress("Container", &cname, "Created");
    }
    kept.sort_by_key(|c| c.number);
    if !opts.no_start {
        for c in &mut kept {
            if !c.running() {
                start_container(e, c).await?;
            }
        }
    }
    Ok(kept)
}

/// The anonymous volumes (`(destination, name)`) of a container about to be recreated.
fn anonymous_volumes(c: &Existing) -> Vec<(String, String)> {
    c.summary["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] == "volume")
        .filter_map(|m| {
            let name = m["Name"].as_str()?;
            let anonymous = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            anonymous.then(|| {
                (
                    m["Destination"].as_str().unwrap_or("").to_string(),
                    name.into(),
                )
            })
        })
        .collect()
}

/// Mounts `anonymous` volumes (an old container's) where the new body mounts an anonymous
/// volume or nothing; returns the names it did not place (their destination is now a named
/// volume, a bind or a tmpfs).
fn carry_volumes(body: &mut Value, anonymous: &[(String, String)]) -> Vec<String> {
    let mut left = Vec::new();
    let hc = &mut body["HostConfig"];
    let bound: Vec<String> = hc["Binds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.as_str()?.split(':').nth(1).map(String::from))
        .chain(
            hc["Tmpfs"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        )
        .collect();
    let mut mounts: Vec<Value> = hc["Mounts"].as_array().cloned().unwrap_or_default();
    for (dest, name) in anonymous {
        let claimed = bound.contains(dest)
            || mounts.iter().any(|m| {
                m["Target"] == dest.as_str() && !(m["Type"] == "volume" && m["Source"].is_null())
            });
        if claimed {
            left.push(name.clone());
            continue;
        }
        mounts.retain(|m| m["Target"] != dest.as_str());
        mounts.push(json!({"Type": "volume", "Source": name, "Target": dest}));
    }
    if !mounts.is_empty() {
        hc["Mounts"] = json!(mounts);
    }
    left
}

/// Creates one container of a service (its secrets and configs written in, `anonymous`
/// volumes of the container it replaces mounted again); not started.
pub async fn create_replica<E: Engine>(
    e: &E,
    project: &Project,
    svc: &Value,
    replica: &Replica<'_>,
    anonymous: &[(String, String)],
) -> Result<Existing> {
    let name = container_name(project, svc, replica);
    let mut body = create_body(project, svc, replica)?;
    for unused in carry_volumes(&mut body, anonymous) {
        let _ = e
            .call(Method::Delete, &format!("/volumes/{unused}"), Payload::None)
            .await;
    }
    let v = e
        .call(
            Method::Post,
            &format!("/containers/create?name={}", enc(&name)),
            Payload::Json(body),
        )
        .await?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    let files = injected(project, svc);
    if !files.is_empty() {
        e.call(
            Method::Put,
            &format!("/containers/{id}/archive?path=/"),
            Payload::Tar(files_tar(&files)?),
        )
        .await?;
    }
    Ok(Existing {
        id,
        name,
        service: replica.service.to_string(),
        number: replica.number,
        oneoff: replica.oneoff,
        state: "created".into(),
        config_hash: labels::config_hash(svc),
        image_id: replica.image_id.clone().unwrap_or_default(),
        summary: Value::Null,
    })
}

fn files_tar(files: &[crate::container::Injected]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| Error::Transport(format!("making the secrets' archive: {e}"));
    for f in files {
        let rel = f.path.trim_start_matches('/');
        let mut dir = std::path::PathBuf::new();
        let parents: Vec<_> = std::path::Path::new(rel)
            .parent()
            .into_iter()
            .flat_map(|p| p.components())
            .collect();
        for c in parents {
            dir.push(c);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, &dir, std::io::empty()).map_err(io)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(f.content.len() as u64);
        h.set_mode(f.mode);
        h.set_cksum();
        b.append_data(&mut h, rel, f.content.as_slice())
            .map_err(io)?;
    }
    b.into_inner().map_err(io)
}

pub async fn start_container<E: Engine>(e: &E, c: &mut Existing) -> Result<()> {
    progress("Container", &c.name, "Starting");
    e.call(
        Method::Post,
        &format!("/containers/{}/start", c.id),
        Payload::None,
    )
    .await?;
    c.state = "running".into();
    progress("Container", &c.name, "Started");
    Ok(())
}

pub async fn stop_container<E: Engine>(e: &E, c: &Existing, timeout: Option<u32>) -> Result<()> {
    if !c.running() {
        return Ok(());
    }
    timed(e, c, "stop", timeout, ("Stopping", "Stopped")).await
}

/// `POST /containers/{id}/{action}?t=…` between two progress lines.
pub async fn timed<E: Engine>(
    e: &E,
    c: &Existing,
    action: &str,
    timeout: Option<u32>,
    (doing, done): (&str, &str),
) -> Result<()> {
    progress("Container", &c.name, doing);
    let t = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
    e.call(
        Method::Post,
        &format!("/containers/{}/{action}{t}", c.id),
        Payload::None,
    )
    .await?;
    progress("Container", &c.name, done);
    Ok(())
}

/// Stops and removes a container (`volumes`: its anonymous volumes too).
pub async fn remove_container<E: Engine>(
    e: &E,
    c: &Existing,
    timeout: Option<u32>,
    volumes: bool,
) -> Result<()> {
    stop_container(e, c, timeout).await?;
    progress("Container", &c.name, "Removing");
    match e
        .call(
            Method::Delete,
            &format!("/containers/{}?force=1&v={}", c.id, u8::from(volumes)),
            Payload::None,
        )
        .await
    {
        Ok(_) => {}
        Err(err) if err.is_not_found() => {}
        Err(err) => return Err(err),
    }
    progress("Container", &c.name, "Removed");
    Ok(())
}

/// Waits until each dependency of `service` meets its condition.
async fn wait_dependencies<E: Engine>(
    e: &E,
    project: &Project,
    service: &str,
    svc: &Value,
    order: &[String],
) -> Result<()> {
    for d in dependencies(svc) {
        if !order.contains(&d.service) || d.condition == "service_started" {
            continue;
        }
        let theirs: Vec<Existing> = containers(e, &project.name)
            .await?
            .into_iter()
            .filter(|c| c.service == d.service && !c.oneoff)
            .collect();
        for c in theirs {
            progress("Container", &c.name, "Waiting");
            match d.condition.as_str() {
                "service_healthy" => wait_healthy(e, &c, None).await?,
                _ => {
                    let v = e
                        .call(
                            Method::Post,
                            &format!("/containers/{}/wait?condition=not-running", c.id),
                            Payload::None,
                        )
                        .await?;
                    let code = v["StatusCode"].as_i64().unwrap_or(0);
                    if code != 0 {
                        return Err(Error::Failed(format!(
                            "service {:?} didn't complete successfully: exit {code} (needed by {service:?})",
                            d.service
                        )));
                    }
                    progress("Container", &c.name, "Exited");
                    continue;
                }
            }
            progress("Container", &c.name, "Healthy");
        }
    }
    Ok(())
}

/// Waits for `healthy`; an unhealthy or stopped container, or one without a healthcheck,
/// fails. The daemon's state is read every 100 ms, as docker compose polls it too.
async fn wait_healthy<E: Engine>(e: &E, c: &Existing, deadline: Option<Instant>) -> Result<()> {
    loop {
        let v = inspect(e, &c.id).await?;
        let state = &v["State"];
        let health = state["Health"]["Status"].as_str().unwrap_or("");
        match health {
            "healthy" => return Ok(()),
            "unhealthy" => {
                return Err(Error::Failed(format!(
                    "dependency failed to start: container {} is unhealthy",
                    c.name
                )))
            }
            "" => {
                return Err(Error::Failed(format!(
                    "container {} has no healthcheck configured",
                    c.name
                )))
            }
            _ => {}
        }
        if state["Running"] == json!(false) && state["Restarting"] != json!(true) {
            return Err(Error::Failed(format!(
                "container {} exited ({})",
                c.name,
                state["ExitCode"].as_i64().unwrap_or(0)
            )));
        }
        pause(deadline, || {
            format!("timeout waiting for container {} to be healthy", c.name)
        })
        .await?;
    }
}

/// `--wait`: running, and healthy when the service has a healthcheck.
async fn wait_ready<E: Engine>(
    e: &E,
    _project: &Project,
    c: &Existing,
    deadline: Option<Instant>,
) -> Result<()> {
    loop {
        let v = inspect(e, &c.id).await?;
        if v["State"]["Health"].is_object() {
            wait_healthy(e, c, deadline).await?;
            progress("Container", &c.name, "Healthy");
            return Ok(());
        }
        if v["State"]["Running"] == json!(true) {
            progress("Container", &c.name, "Running");
            return Ok(());
        }
        if v["State"]["Status"] == json!("exited") {
            let code = v["State"]["ExitCode"].as_i64().unwrap_or(0);
            if code == 0 {
                progress("Container", &c.name, "Exited");
                return Ok(());
            }
            return Err(Error::Failed(format!(
                "container {} exited ({code})",
                c.name
            )));
        }
        pause(deadline, || {
            format!("timeout waiting for container {}", c.name)
        })
        .await?;
    }
}

/// Between two reads of a container's state: 100 ms, as docker compose polls it; past
/// `deadline`, the `timeout` error.
async fn pause(deadline: Option<Instant>, timeout: impl FnOnce() -> String) -> Result<()> {
    if deadline.is_some_and(|d| Instant::now() > d) {
        return Err(Error::Failed(timeout()));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{block, project, Recorder};

    #[test]
    fn selection_follows_dependencies_unless_no_deps() {
        let p = project(
            "services:\n  web: {image: x, depends_on: [api]}\n  api: {image: x, depends_on: [db]}\n  db: {image: x}\n  other: {image: x}\n",
        );
        let web = vec!["web".to_string()];
        assert_eq!(selected(&p, &web, false).unwrap(), ["db", "api", "web"]);
        assert_eq!(selected(&p, &web, true).unwrap(), ["web"]);
        assert_eq!(selected(&p, &[], false).unwrap().len(), 4);
        let e = selected(&p, &["nope".to_string()], false).unwrap_err();
        assert_eq!(e.to_string(), "no such service: nope");
    }

    #[test]
    fn missing_networks_and_volumes_are_created_and_missing_external_ones_refused() {
        let p = project(
            "services:\n  web: {image: x, networks: [front, outside], volumes: [data:/d, ext:/e]}\n\
             networks:\n  front: {labels: {a: b}}\n  outside: {external: true}\n\
             volumes:\n  data: {}\n  ext: {external: true, name: shared}\n",
        );
        let web = vec!["web".to_string()];
        let e = Recorder {
            empty: true,
            ..Default::default()
        };
        let err = block(ensure_networks(&e, &p, &web)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "network outside declared as external, but could not be found"
        );
        let err = block(ensure_volumes(&e, &p, &web)).unwrap_err();
        assert_eq!(err.to_string(), "external volume \"shared\" not found");
        let made: Vec<(String, Value)> = e
            .seen
            .borrow()
            .iter()
            .filter_map(|s| match &s.body {
                Payload::Json(v) => Some((s.path.clone(), v.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(made.len(), 2, "{made:?}");
        assert_eq!(made[0].0, "/networks/create");
        assert_eq!(made[0].1["Name"], "t_front");
        assert_eq!(made[0].1["Driver"], "bridge");
        assert_eq!(made[0].1["Labels"]["a"], "b");
        assert_eq!(made[0].1["Labels"][labels::NETWORK], "front");
        assert_eq!(made[1].0, "/volumes/create");
        assert_eq!(made[1].1["Name"], "t_data");
        assert_eq!(made[1].1["Labels"][labels::VOLUME], "data");
        assert_eq!(made[1].1["Labels"][labels::PROJECT], "t");
    }
}
