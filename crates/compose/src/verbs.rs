//! The other verbs over a project's containers: `down`, `start`, `stop`, `restart`, `kill`,
//! `pause`, `unpause`, `rm`, `ps`, `images`, `top`, `port`, `wait`, `run`, and the lookups
//! behind `exec`, `attach` and `cp`.

use std::collections::BTreeSet;

use futures_util::future::try_join_all;

use serde_json::{json, Value};

use crate::api::{enc, Engine, Method, Payload};
use crate::error::{Error, Result};
use crate::labels;
use crate::normalize;
use crate::project::{Project, Resource};
use crate::state::{containers, progress, Existing};
use crate::up::{self, remove_container, selected, start_container, stop_container};

/// `down`'s flags.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// `-v`: named volumes of the project and anonymous ones of its containers.
    pub volumes: bool,
    /// `--rmi all|local`.
    pub rmi: Option<String>,
    pub remove_orphans: bool,
    pub timeout: Option<u32>,
}

/// Refuses a name that is no service of the project (one disabled by its profiles is).
fn known_services(project: &Project, names: &[String]) -> Result<()> {
    match names.iter().find(|n| !project.has_service(n)) {
        Some(n) => Err(Error::NotFound(format!("no such service: {n}"))),
        None => Ok(()),
    }
}

/// The containers of the named services (all services when none), one-off ones excluded.
async fn of_services<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
) -> Result<Vec<Existing>> {
    known_services(project, names)?;
    Ok(containers(e, &project.name)
        .await?
        .into_iter()
        .filter(|c| !c.oneoff && (names.is_empty() || names.contains(&c.service)))
        .collect())
}

/// Services in start order, then the rest (orphans, disabled) by name.
fn ordered(project: &Project, list: Vec<Existing>) -> Vec<Existing> {
    let order = selected(project, &[], true).unwrap_or_default();
    let mut list = list;
    list.sort_by_key(|c| {
        (
            order
                .iter()
                .position(|s| *s == c.service)
                .unwrap_or(usize::MAX),
            c.service.clone(),
            c.number,
        )
    });
    list
}

/// `down`: stops and removes the project's containers (dependents first), its networks and,
/// with `-v`, its volumes; with `--rmi`, its images.
pub async fn down<E: Engine>(e: &E, project: &Project, opts: &DownOptions) -> Result<()> {
    let all = containers(e, &project.name).await?;
    let known = |c: &Existing| c.oneoff || project.has_service(&c.service);
    let (mine, orphans): (Vec<Existing>, Vec<Existing>) = all.into_iter().partition(known);
    let mut list = ordered(project, mine);
    if opts.remove_orphans || project.services.is_empty() {
        list.extend(orphans);
    } else if !orphans.is_empty() {
        crate::state::warn_orphans(orphans.iter());
    }
    // In parallel, as docker compose does: each stop may wait out its grace period.
    try_join_all(list.iter().map(|c| stop_container(e, c, opts.timeout))).await?;
    try_join_all(
        list.iter()
            .map(|c| remove_container(e, c, opts.timeout, opts.volumes)),
    )
    .await?;
    remove_labelled(e, project, Resource::Network).await?;
    if opts.volumes {
        remove_labelled(e, project, Resource::Volume).await?;
    }
    if let Some(rmi) = &opts.rmi {
        if rmi != "all" && rmi != "local" {
            return Err(Error::Invalid(format!(
                "invalid --rmi option {rmi:?}: all or local"
            )));
        }
        let mut done = BTreeSet::new();
        for (name, svc) in &project.services {
            // `local`: only the images compose named itself (no `image` key).
            if rmi == "local" && svc.get("image").is_some() {
                continue;
            }
            let image = project.image_of(name, svc);
            if !done.insert(image.clone()) {
                continue;
            }
            remove_named(e, "Image", &image, &format!("/images/{}", enc(&image))).await;
        }
    }
    Ok(())
}

/// Removes the project's networks or volumes, as the daemon lists them by its label.
async fn remove_labelled<E: Engine>(e: &E, project: &Project, r: Resource) -> Result<()> {
    let filter = enc(&labels::project_filter(&project.name));
    let listed = e
        .call(
            Method::Get,
            &format!("{}?filters={filter}", r.collection()),
            Payload::None,
        )
        .await?;
    // `GET /volumes` answers `{"Volumes": […]}`, `GET /networks` the list itself.
    let list = match r {
        Resource::Network => &listed,
        Resource::Volume => &listed["Volumes"],
    };
    for item in list.as_array().into_iter().flatten() {
        let name = item["Name"].as_str().unwrap_or_default();
        let path = format!("{}/{}", r.collection(), enc(name));
        remove_named(e, r.kind(), name, &path).await;
    }
    Ok(())
}

/// Removes a network, volume or image, saying so; a failure is reported and `down` goes on
/// (another project's container may still use a shared network).
async fn remove_named<E: Engine>(e: &E, kind: &str, name: &str, path: &str) {
    progress(kind, name, "Removing");
    match e.call(Method::Delete, path, Payload::None).await {
        Ok(_) => progress(kind, name, "Removed"),
        Err(err) if err.is_not_found() => progress(kind, name, "Removed"),
        Err(err) => eprintln!(" {kind} {name}  Error: {err}"),
    }
}

/// `start`: the services' existing containers, dependencies first.
pub async fn start<E: Engine>(e: &E, project: &Project, names: &[String]) -> Result<()> {
    let list = ordered(project, of_services(e, project, names).await?);
    if list.is_empty() {
        return Err(Error::NotFound(
            "service(s) have no container to start; run up first".into(),
        ));
    }
    for mut c in list {
        if !c.running() {
            start_container(e, &mut c).await?;
        }
    }
    Ok(())
}

/// `stop`: all at once.
pub async fn stop<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
    timeout: Option<u32>,
) -> Result<()> {
    let list = of_services(e, project, names).await?;
    try_join_all(list.iter().map(|c| stop_container(e, c, timeout))).await?;
    Ok(())
}

/// `restart`.
pub async fn restart<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
    timeout: Option<u32>,
) -> Result<()> {
    for c in ordered(project, of_services(e, project, names).await?) {
        up::timed(e, &c, "restart", timeout, ("Restarting", "Started")).await?;
    }
    Ok(())
}

/// `kill`: sends `signal` (the daemon's default, SIGKILL, when none) to the services' running
/// containers, all at once. A bad signal name is the daemon's to refuse, as with docker
/// compose. Nothing running is not an error (docker compose says so and succeeds).
pub async fn kill<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
    signal: Option<&str>,
) -> Result<()> {
    let list: Vec<Existing> = of_services(e, project, names)
        .await?
        .into_iter()
        .filter(|c| c.state == "running")
        .collect();
    if list.is_empty() {
        eprintln!("no container to kill");
        return Ok(());
    }
    let q = signal
        .map(|s| format!("?signal={}", enc(s)))
        .unwrap_or_default();
    try_join_all(list.iter().map(|c| async {
        progress("Container", &c.name, "Killing");
        e.call(
            Method::Post,
            &format!("/containers/{}/kill{q}", c.id),
            Payload::None,
        )
        .await?;
        progress("Container", &c.name, "Killed");
        Ok::<(), Error>(())
    }))
    .await?;
    Ok(())
}

/// `pause` (`unpause` with `pause == false`): the services' running (paused) containers. A
/// container already in the wanted state is left alone.
pub async fn pause<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
    pause: bool,
) -> Result<()> {
    let (from, action, done) = if pause {
        ("running", "pause", "Paused")
    } else {
        ("paused", "unpause", "Unpaused")
    };
    for c in of_services(e, project, names).await? {
        if c.state != from {
            continue;
        }
        e.call(
            Method::Post,
            &format!("/containers/{}/{action}", c.id),
            Payload::None,
        )
        .await?;
        // docker compose prints only the outcome for these two.
        progress("Container", &c.name, done);
    }
    Ok(())
}

/// The stopped containers `rm` would remove (all of the services' with `stop`).
pub async fn removable<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
    stop_first: bool,
) -> Result<Vec<Existing>> {
    Ok(of_services(e, project, names)
        .await?
        .into_iter()
        .filter(|c| stop_first || !c.running())
        .collect())
}

/// `rm` of the containers `removable` gave.
pub async fn rm<E: Engine>(e: &E, list: &[Existing], volumes: bool) -> Result<()> {
    for c in list {
        remove_container(e, c, None, volumes).await?;
    }
    Ok(())
}

/// `ps`: the summaries (`GET /containers/json`'s) of the services' containers, one-off ones
/// included as docker compose shows them.
pub async fn ps<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
    all: bool,
) -> Result<Vec<Value>> {
    known_services(project, names)?;
    let mut list: Vec<Existing> = containers(e, &project.name)
        .await?
        .into_iter()
        .filter(|c| (all || c.running()) && (names.is_empty() || names.contains(&c.service)))
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list
        .into_iter()
        .map(|c| {
            let mut s = c.summary;
            s["Service"] = json!(c.service);
            s["Name"] = json!(c.name);
            s
        })
        .collect())
}

/// `images`: per container, its name and the image's inspect.
pub async fn images<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for c in of_services(e, project, names).await? {
        let img = e
            .call(
                Method::Get,
                &format!("/images/{}/json", enc(&c.image_id)),
                Payload::None,
            )
            .await
            .unwrap_or(Value::Null);
        out.push((c.name, img));
    }
    Ok(out)
}

/// `top`: per running container, its name and `GET /containers/{id}/top`.
pub async fn top<E: Engine>(
    e: &E,
    project: &Project,
    names: &[String],
) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for c in of_services(e, project, names).await? {
        if !c.running() {
            continue;
        }
        let v = e
            .call(
                Method::Get,
                &format!("/containers/{}/top", c.id),
                Payload::None,
            )
            .await?;
        out.push((c.name, v));
    }
    Ok(out)
}

/// The running container `exec` targets: replica `index` of `service`.
pub async fn exec_target<E: Engine>(
    e: &E,
    project: &Project,
    service: &str,
    index: u32,
) -> Result<String> {
    project.service(service)?;
    containers(e, &project.name)
        .await?
        .into_iter()
        .find(|c| c.service == service && !c.oneoff && c.number == index && c.running())
        .map(|c| c.id)
        .ok_or_else(|| Error::NotFound(format!("service {service:?} is not running")))
}

/// The containers `cp` copies to or from: replica `index` of `service`, else (copying into
/// the service) every replica, as docker compose does, or (copying out) the first one.
/// Stopped containers count: the daemon's archive endpoints work on them too.
pub async fn cp_targets<E: Engine>(
    e: &E,
    project: &Project,
    service: &str,
    index: Option<u32>,
    into: bool,
) -> Result<Vec<Existing>> {
    let mut list = of_services(e, project, &[service.to_string()]).await?;
    list.sort_by_key(|c| c.number);
    if let Some(i) = index {
        list.retain(|c| c.number == i);
        if list.is_empty() {
            return Err(Error::NotFound(format!(
                "service {service:?} has no container number {i}"
            )));
        }
    }
    if list.is_empty() {
        return Err(Error::NotFound(format!(
            "no container found for service {service:?}"
        )));
    }
    if !into {
        list.truncate(1);
    }
    Ok(list)
}

/// `port`: where replica `index` of `service` publishes `private`/`protocol` on the host
/// (`0.0.0.0:32768`), read from the container's summary as docker compose reads it. A port
/// that is only exposed, or not at all, is an error naming it.
pub async fn port<E: Engine>(
    e: &E,
    project: &Project,
    service: &str,
    private: u16,
    protocol: &str,
    index: u32,
) -> Result<String> {
    if protocol != "tcp" && protocol != "udp" && protocol != "sctp" {
        return Err(Error::Invalid(format!(
            "invalid --protocol {protocol:?}: tcp, udp or sctp"
        )));
    }
    known_services(project, &[service.to_string()])?;
    let c = containers(e, &project.name)
        .await?
        .into_iter()
        .find(|c| c.service == service && !c.oneoff && c.number == index && c.running())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "service {service:?} is not running container #{index}"
            ))
        })?;
    c.summary["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["PrivatePort"].as_u64() == Some(u64::from(private))
                && p["Type"].as_str() == Some(protocol)
                && p["PublicPort"].as_u64().is_some_and(|n| n > 0)
        })
        .map(|p| {
            format!(
                "{}:{}",
                p["IP"].as_str().unwrap_or_default(),
                p["PublicPort"].as_u64().unwrap_or(0)
            )
        })
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no port {private}/{protocol} for container {}",
                c.name
            ))
        })
}

/// `wait`: blocks until every container of the services has exited (`POST
/// /containers/{id}/wait`, all at once), printing each one's code as docker compose does;
/// returns the code of the first to exit.
pub async fn wait<E: Engine>(e: &E, project: &Project, names: &[String]) -> Result<i64> {
    let list: Vec<Existing> = of_services(e, project, names).await?;
    if list.is_empty() {
        return Err(Error::NotFound(format!(
            "no containers for project {:?}",
            project.name
        )));
    }
    let mut waits: futures_util::stream::FuturesUnordered<_> = list
        .iter()
        .map(|c| async move {
            let v = e
                .call(
                    Method::Post,
                    &format!("/containers/{}/wait?condition=not-running", c.id),
                    Payload::None,
                )
                .await?;
            if let Some(m) = v["Error"]["Message"].as_str() {
                return Err(Error::Failed(format!("waiting for {}: {m}", c.name)));
            }
            Ok::<_, Error>((c, v["StatusCode"].as_i64().unwrap_or(0)))
        })
        .collect();
    let mut first = None;
    while let Some(r) = futures_util::StreamExt::next(&mut waits).await {
        let (c, code) = r?;
        println!("container {:?} exited with status code {code}", c.service);
        first.get_or_insert(code);
    }
    Ok(first.unwrap_or(0))
}

/// `run`'s flags that change the container.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub command: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub name: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub remove: bool,
    pub no_deps: bool,
    /// `--service-ports`: publish the service's ports (else none, as docker compose).
    pub service_ports: bool,
    pub labels: Vec<String>,
    /// `-p`: ports to publish, in the short syntax of `ports` (they replace the service's).
    pub publish: Vec<String>,
    /// `-v`: volumes in the short syntax of `volumes`, added to the service's (one with the
    /// same target replaces it); relative host paths start at the project directory.
    pub volumes: Vec<String>,
}

/// Applies `run`'s `-p` and `-v` to the service, refusing a bad spec (or an undeclared named
/// volume) before anything is created.
fn publish_and_mount(project: &Project, svc: &mut Value, opts: &RunOptions) -> Result<()> {
    if opts.service_ports && !opts.publish.is_empty() {
        // docker compose refuses the pair: which ports win would be a guess.
        return Err(Error::Invalid(
            "--service-ports and --publish are incompatible".into(),
        ));
    }
    if !opts.publish.is_empty() {
        let mut ports = Vec::new();
        for p in &opts.publish {
            let parsed = normalize::port(&json!(p))
                .map_err(|m| Error::Invalid(format!("--publish: {m}")))?;
            ports.extend(parsed);
        }
        svc["ports"] = json!(ports);
    } else if !opts.service_ports {
        // As docker compose: a one-off container would clash with the service's own ports.
        if let Some(o) = svc.as_object_mut() {
            o.remove("ports");
        }
    }
    for v in &opts.volumes {
        let m = normalize::volume(&json!(v), &project.working_dir)
            .map_err(|m| Error::Invalid(format!("--volume: {m}")))?;
        if m["type"] == "volume" {
            if let Some(src) = m["source"].as_str() {
                if !project.volumes.contains_key(src) {
                    return Err(Error::Invalid(format!(
                        "--volume {v:?}: service refers to undefined volume {src:?}: declare it under the top-level volumes"
                    )));
                }
            }
        }
        let list = svc
            .as_object_mut()
            .map(|o| o.entry("volumes").or_insert_with(|| json!([])))
            .and_then(Value::as_array_mut);
        if let Some(list) = list {
            list.retain(|x| x["target"] != m["target"]);
            list.push(m);
        }
    }
    Ok(())
}

/// `run`: brings up the service's dependencies (unless `no_deps`), then creates a one-off
/// container of it (`<project>-<service>-run-<id>`); the caller attaches and starts it.
pub async fn run<E: Engine>(
    e: &E,
    project: &Project,
    service: &str,
    opts: &RunOptions,
) -> Result<String> {
    let mut svc = project.service(service)?.clone();
    publish_and_mount(project, &mut svc, opts)?;
    let deps: Vec<String> = crate::project::dependencies(&svc)
        .into_iter()
        .map(|d| d.service)
        .filter(|d| project.services.contains_key(d))
        .collect();
    if !opts.no_deps && !deps.is_empty() {
        let up_opts = up::UpOptions {
            detach: true,
            services: deps,
            ..Default::default()
        };
        up::up(e, project, &up_opts).await?;
    }
    up::ensure_networks(e, project, &[service.to_string()]).await?;
    // The volumes `-v` adds are created (with compose's labels) as the service's own are.
    let mut with_run = project.clone();
    with_run.services.insert(service.to_string(), svc.clone());
    up::ensure_volumes(e, &with_run, &[service.to_string()]).await?;
    let image = project.image_of(service, &svc);
    if crate::images::image_id(e, &image).await?.is_none() {
        if svc.get("build").is_some() {
            crate::images::build(e, project, service, &svc, &Default::default()).await?;
        } else {
            crate::images::pull(e, service, &image).await?;
        }
    }
    if !opts.command.is_empty() {
        svc["command"] = json!(opts.command);
    }
    if let Some(ep) = &opts.entrypoint {
        svc["entrypoint"] = json!(ep);
    }
    for kv in &opts.env {
        // A bare `-e KEY` passes this process's value on, as with `docker run -e KEY`.
        let (k, v) = match kv.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => (kv.as_str(), std::env::var(kv).unwrap_or_default()),
        };
        svc["environment"][k] = json!(v);
    }
    for kv in &opts.labels {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        svc["labels"][k] = json!(v);
    }
    if let Some(u) = &opts.user {
        svc["user"] = json!(u);
    }
    if let Some(w) = &opts.workdir {
        svc["working_dir"] = json!(w);
    }
    if let Some(o) = svc.as_object_mut() {
        o.remove("container_name");
        o.remove("restart");
        o.remove("deploy");
    }
    svc["tty"] = json!(opts.tty);
    svc["stdin_open"] = json!(opts.interactive);
    let replica = crate::container::Replica {
        service,
        number: 1,
        oneoff: true,
        image_id: None,
    };
    let mut body = crate::container::create_body(project, &svc, &replica)?;
    body["AttachStdin"] = json!(opts.interactive);
    body["AttachStdout"] = json!(true);
    body["AttachStderr"] = json!(true);
    body["StdinOnce"] = json!(opts.interactive);
    body["HostConfig"]["AutoRemove"] = json!(opts.remove);
    let name = opts.name.clone().unwrap_or_else(|| {
        let suffix: String = crate::labels::config_hash(&json!([
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_string()
        ]))
        .chars()
        .take(12)
        .collect();
        format!("{}-{service}-run-{suffix}", project.name)
    });
    let v = e
        .call(
            Method::Post,
            &format!("/containers/create?name={}", enc(&name)),
            Payload::Json(body),
        )
        .await?;
    Ok(v["Id"].as_str().unwrap_or_default().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::project;

    const WEB: &str = "services:\n  web:\n    image: busybox\n    ports: ['8080:80']\n    volumes: ['data:/data', './a:/a']\nvolumes:\n  data: {}\n";

    fn applied(opts: &RunOptions) -> Result<Value> {
        let p = project(WEB);
        let mut svc = p.service("web")?.clone();
        publish_and_mount(&p, &mut svc, opts)?;
        Ok(svc)
    }

    #[test]
    fn run_publishes_only_what_it_is_asked_to() {
        assert!(applied(&RunOptions::default())
            .unwrap()
            .get("ports")
            .is_none());
        let svc = applied(&RunOptions {
            service_ports: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(svc["ports"][0]["published"], "8080");
        let svc = applied(&RunOptions {
            publish: vec!["127.0.0.1:9000:90".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(svc["ports"].as_array().unwrap().len(), 1);
        assert_eq!(svc["ports"][0]["target"], 90);
        assert_eq!(svc["ports"][0]["host_ip"], "127.0.0.1");
        let e = applied(&RunOptions {
            publish: vec!["1:2:3:4".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("invalid port mapping"), "{e}");
        let e = applied(&RunOptions {
            publish: vec!["9000:90".into()],
            service_ports: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("incompatible"), "{e}");
    }

    #[test]
    fn run_volumes_add_to_the_services_and_replace_by_target() {
        let svc = applied(&RunOptions {
            volumes: vec!["./b:/a:ro".into(), "data:/more".into()],
            ..Default::default()
        })
        .unwrap();
        let vols = svc["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 3, "{vols:?}");
        let a = vols.iter().find(|v| v["target"] == "/a").unwrap();
        assert!(a["source"].as_str().unwrap().ends_with("/b"), "{a}");
        assert_eq!(a["read_only"], true);
        let e = applied(&RunOptions {
            volumes: vec!["nope:/x".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("undefined volume \"nope\""), "{e}");
        let e = applied(&RunOptions {
            volumes: vec!["relative".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid volume specification"),
            "{e}"
        );
    }
}
