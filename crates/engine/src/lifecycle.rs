//! The container lifecycle as dockerd runs it: create (record, rootfs, volumes), start (mount,
//! spec, monitor), stop/kill, wait, remove, and the daemon's restart finding its containers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use serde_json::Value;

use crate::container::{self, Container, Extras, MountRecord, RootfsRecord, State, NEVER};
use crate::daemon::Daemon;
use crate::error::{ApiError, Result};
use crate::files;

/// Image config values by Docker's JSON names (the image crate's `ImageConfig` serialises
/// to exactly the config blob's JSON).
fn image_config(image: &berth_image::Image) -> Value {
    serde_json::to_value(&image.config)
        .ok()
        .and_then(|v| v.get("config").cloned())
        .unwrap_or(Value::Null)
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::String(s) if !s.is_empty() => Some(vec![s.clone()]),
        _ => None,
    }
}

impl Daemon {
    /// `POST /containers/create`.
    pub fn create_container(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<Container> {
        self.create_container_with(name, body, None)
    }

    /// A container with settings beyond Docker's API (the engine's interface for the CRI); an
    /// infra container has no image.
    pub fn create_container_with(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
        extras: Option<Extras>,
    ) -> Result<Container> {
        let infra = extras.as_ref().is_some_and(|x| x.infra);
        let image_name = match body.image.clone().filter(|i| !i.is_empty()) {
            Some(i) => i,
            None if infra => String::new(),
            None => {
                return Err(ApiError::BadRequest(
                    "config cannot be empty in order to create a container".into(),
                ))
            }
        };
        let image = if infra {
            None
        } else {
            Some(self.images.get(&image_name).map_err(|e| match e {
                berth_image::Error::NotFound(_) => {
                    ApiError::NotFound(format!("No such image: {}", familiar(&image_name)))
                }
                other => other.into(),
            })?)
        };
        // Networks and volumes it names stay until it is recorded as using them.
        let _refs = self.referencing();
        let id = container::new_id()?;
        let generated = name.filter(|n| !n.is_empty()).is_none();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                container::validate_name(n)?;
                n.to_owned()
            }
            // Drawn again at insert if another container has it by then.
            None => container::generate_name(0)?,
        };
        let mut host_config = body.host_config.clone().unwrap_or_default();
        let img = image.as_ref().map(image_config).unwrap_or(Value::Null);

        // The image's config under the request's, as dockerd merges them.
        let mut env = strings(&img["Env"]).unwrap_or_default();
        for e in body.env.iter().flatten() {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        let entrypoint = match &body.entrypoint {
            Some(e) => e.clone(),
            None => strings(&img["Entrypoint"]).unwrap_or_default(),
        };
        let cmd = match (&body.cmd, &body.entrypoint) {
            (Some(c), _) if !c.is_empty() => c.clone(),
            // A new entrypoint drops the image's Cmd (dockerd).
            (_, Some(_)) => Vec::new(),
            _ => strings(&img["Cmd"]).unwrap_or_default(),
        };
        let mut argv = entrypoint.clone();
        argv.extend(cmd.iter().cloned());
        if infra {
            // What `ps` calls the process the runtime's pause mode stands for.
            argv = vec!["pause".into()];
        }
        if argv.is_empty() {
            return Err(ApiError::BadRequest("no command specified".into()));
        }
        let mut labels: HashMap<String, String> = img["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        labels.extend(body.labels.clone().unwrap_or_default());
        let mut exposed: Vec<String> = img["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for p in body.exposed_ports.iter().flatten() {
            if !exposed.contains(p) {
                exposed.push(p.clone());
            }
        }
        let config = ContainerConfig {
            hostname: body
                .hostname
                .clone()
                .filter(|h| !h.is_empty())
                .or_else(|| Some(id[..12].to_owned())),
            domainname: body.domainname.clone(),
            user: body
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .or_else(|| img["User"].as_str().map(str::to_owned)),
            attach_stdin: body.attach_stdin,
            attach_stdout: body.attach_stdout,
            attach_stderr: body.attach_stderr,
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            tty: body.tty,
            open_stdin: body.open_stdin,
            stdin_once: body.stdin_once,
            env: Some(env),
            cmd: Some(cmd),
            healthcheck: merged_healthcheck(body.healthcheck.as_ref(), &img["Healthcheck"]),
            image: Some(image_name.clone()),
            volumes: merged_volumes(body.volumes.as_ref(), &img["Volumes"]),
            working_dir: body
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .or_else(|| {
                    img["WorkingDir"]
                        .as_str()
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned)
                }),
            entrypoint: (!entrypoint.is_empty()).then_some(entrypoint),
            labels: Some(labels),
            stop_signal: body
                .stop_signal
                .clone()
                .or_else(|| img["StopSignal"].as_str().map(str::to_owned)),
            stop_timeout: body.stop_timeout,
            ..Default::default()
        };
        if let Some(w) = &config.working_dir {
            if !w.starts_with('/') {
                return Err(ApiError::BadRequest(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        let runtime = host_config
            .runtime
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "berth".into());
        if runtime != "berth"
            && runtime != "runc-berth"
            && !self.opts.runtimes.contains_key(&runtime)
        {
            return Err(ApiError::BadRequest(format!(
                "unknown or invalid runtime name: {runtime}"
            )));
        }
        validate_restart(&host_config)?;
        refuse_unsupported(&host_config)?;
        self.validate_shared_namespaces(&host_config)?;
        let userns = self
            .remap
            .range
            .filter(|_| host_config.userns_mode.as_deref() != Some("host"));
        if userns.is_some() {
            crate::userns::check_compatible(&host_config)?;
        }
        if host_config
            .network_mode
            .as_deref()
            .is_none_or(|m| m.is_empty() || m == "default")
        {
            host_config.network_mode = Some("bridge".into());
        }
        let mut networks = self.plan_networks(&body, &host_config)?;
        let links = self.plan_links(&mut host_config, &mut networks)?;
        crate::network::published(&Container::probe(&host_config, &config))?;
        let mut config = config;
        if let crate::network::Mode::Container(other) = crate::network::mode_of(&host_config) {
            // As dockerd: a container in another's network has that one's names.
            let o = self.containers.find(&other)?;
            config.hostname = o.config.hostname.clone();
            config.domainname = o.config.domainname.clone();
        }
        if crate::network::mode_of(&host_config) == crate::network::Mode::Host
            && body.hostname.as_deref().is_none_or(str::is_empty)
        {
            // dockerd gives a host-network container the host's name.
            config.hostname = nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned());
        }
        // dockerd always reports the log driver; docker-py reads HostConfig.LogConfig.Type.
        let log = host_config.log_config.get_or_insert_with(Default::default);
        if log.typ.as_deref().is_none_or(str::is_empty) {
            log.typ = Some("json-file".into());
        }
        let opts = log.config.get_or_insert_with(Default::default);
        crate::log_driver::validate(log.typ.as_deref().unwrap_or_default(), opts)?;
        // Inspect shows the runtime a container runs on, the daemon's default included.
        host_config.runtime = Some(runtime.clone());

        let dir = self.container_dir(&id);
        crate::modes::own_container_dir(&dir, userns.map(|r| r.gid))
            .map_err(|e| ApiError::internal(format!("create {}", dir.display()), e))?;
        let made = (|| -> Result<Container> {
            let overlay = match &image {
                Some(image) => self.images.rootfs(image, &dir)?,
                // The infra's root is an empty directory of its own, mounted nowhere.
                None => berth_image::OverlayMount {
                    lowers: Vec::new(),
                    upper: dir.join("rootfs"),
                    work: PathBuf::new(),
                    volatile: false,
                },
            };
            if let Some(r) = userns {
                // The container's `/` is its upper dir's root: the remapped root owns it.
                std::os::unix::fs::chown(&overlay.upper, Some(r.uid), Some(r.gid))
                    .map_err(|e| ApiError::internal("chown the container's upper dir", e))?;
            }
            let mounts = self.resolve_mounts(&host_config, &img, body.volumes.as_ref())?;
            let mut argv = argv.into_iter();
            Ok(Container {
                id: id.clone(),
                name: name.clone(),
                created: files::now_rfc3339(),
                image: image_name.clone(),
                image_id: image.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
                config,
                host_config,
                path: argv.next().unwrap_or_default(),
                args: argv.collect(),
                state: State {
                    status: "created".into(),
                    started_at: NEVER.into(),
                    finished_at: NEVER.into(),
                    ..Default::default()
                },
                restart_count: 0,
                mounts,
                rootfs: RootfsRecord {
                    lowers: overlay.lowers,
                    upper: overlay.upper,
                    work: overlay.work,
                },
                runtime,
                userns,
                networks,
                ports: Vec::new(),
                links,
                extras: extras.clone(),
            })
        })();
        let c = match made.and_then(|c| self.containers.insert(c, generated)) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        self.emit_container("create", &c);
        Ok(c)
    }

    /// Binds, `--mount`s, `--volumes-from` and the image's VOLUMEs, as mounts to make.
    fn resolve_mounts(
        &self,
        hc: &HostConfig,
        img: &Value,
        request_volumes: Option<&Vec<String>>,
    ) -> Result<Vec<MountRecord>> {
        let mut mounts: Vec<MountRecord> = Vec::new();
        for from in hc.volumes_from.iter().flatten() {
            let (src, mode) = from.split_once(':').unwrap_or((from.as_str(), ""));
            let other = self.containers.find(src)?;
            for m in other.mounts.iter().filter(|m| m.kind != "tmpfs") {
                let mut m = m.clone();
                m.anonymous = false;
                match mode {
                    "ro" => m.read_only = true,
                    "rw" => m.read_only = false,
                    _ => {}
                }
                mounts.push(m);
            }
        }
        for bind in hc.binds.iter().flatten() {
            let parts: Vec<&str> = bind.split(':').collect();
            let (src, dst, mode) = match parts.as_slice() {
                [s, d] => (*s, *d, ""),
                [s, d, m] => (*s, *d, *m),
                [d] => ("", *d, ""),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "invalid volume specification: '{bind}'"
                    )))
                }
            };
            if !dst.starts_with('/') {
                return Err(ApiError::BadRequest(format!(
                    "invalid volume specification: '{bind}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"
                )));
            }
            if !valid_mode(mode) {
                return Err(ApiError::BadRequest(format!("invalid mode: {mode}")));
            }
            let read_only = mode.split(',').any(|o| o == "ro");
            let options: Vec<String> = mode
                .split(',')
                .filter(|o| container::PROPAGATION_MODES.contains(o))
                .map(str::to_owned)
                .collect();
            let record = if src.starts_with('/') {
                // `-v /host:/ctr` creates a missing host directory, 0755 as dockerd does.
                crate::modes::create_dir_all(Path::new(src), 0o755).ok();
                MountRecord {
                    kind: "bind".into(),
                    name: String::new(),
                    source: src.into(),
                    destination: dst.into(),
                    read_only,
                    options,
                    anonymous: false,
                    mode: Some(mode.to_owned()),
                    subpath: String::new(),
                }
            } else {
                if !options.is_empty() {
                    return Err(ApiError::BadRequest(format!(
                        "invalid volume specification: '{bind}': invalid mount config for type \"volume\": field BindOptions must not be specified"
                    )));
                }
                let (name, anonymous) = self.mount_volume(src)?;
                MountRecord {
                    kind: "volume".into(),
                    source: self.volumes.data_dir(&name),
                    name,
                    destination: dst.into(),
                    read_only,
                    options,
                    anonymous,
                    // dockerd's label mode of a named volume given without a mode.
                    mode: Some(if mode.is_empty() && !anonymous {
                        "z".into()
                    } else {
                        mode.to_owned()
                    }),
                    subpath: String::new(),
                }
            };
            mounts.retain(|m| m.destination != record.destination);
            mounts.push(record);
        }
        for m in hc.mounts.iter().flatten() {
            let v = serde_json::to_value(m).unwrap_or(Value::Null);
            let kind = v["Type"].as_str().unwrap_or("volume").to_owned();
            let dst = m.target.clone().unwrap_or_default();
            if !dst.starts_with('/') {
                return Err(ApiError::BadRequest(format!("invalid mount config for type \"{kind}\": invalid mount path: '{dst}' mount path must be absolute")));
            }
            let src = m.source.clone().unwrap_or_default();
            let read_only = m.read_only.unwrap_or(false);
            let record = match kind.as_str() {
                "bind" => {
                    if !Path::new(&src).exists() {
                        return Err(ApiError::BadRequest(format!("invalid mount config for type \"bind\": bind source path does not exist: {src}")));
                    }
                    if v.get("VolumeOptions").is_some_and(|o| !o.is_null()) {
                        return Err(ApiError::BadRequest("invalid mount config for type \"bind\": field VolumeOptions must not be specified".into()));
                    }
                    let propagation = v["BindOptions"]["Propagation"]
                        .as_str()
                        .filter(|p| !p.is_empty());
                    MountRecord {
                        kind,
                        name: String::new(),
                        source: src.into(),
                        destination: dst,
                        read_only,
                        options: propagation.into_iter().map(str::to_owned).collect(),
                        anonymous: false,
                        mode: Some(String::new()),
                        subpath: String::new(),
                    }
                }
                "volume" => {
                    if v.get("BindOptions").is_some_and(|o| !o.is_null()) {
                        return Err(ApiError::BadRequest("invalid mount config for type \"volume\": field BindOptions must not be specified".into()));
                    }
                    let subpath = v["VolumeOptions"]["Subpath"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if !subpath.is_empty() {
                        crate::subpath::check(&src, &subpath)?;
                    }
                    let (name, anonymous) = self.mount_volume(&src)?;
                    MountRecord {
                        kind,
                        source: self.volumes.data_dir(&name),
                        name,
                        destination: dst,
                        read_only,
                        options: vec![],
                        anonymous,
                        mode: Some("z".into()),
                        subpath,
                    }
                }
                "tmpfs" => {
                    let mut options = Vec::new();
                    if let Some(size) = v["TmpfsOptions"]["SizeBytes"].as_i64().filter(|s| *s > 0) {
                        options.push(format!("size={size}"));
                    }
                    if let Some(mode) = v["TmpfsOptions"]["Mode"].as_i64().filter(|s| *s > 0) {
                        options.push(format!("mode={mode:o}"));
                    }
                    MountRecord {
                        kind,
                        name: String::new(),
                        source: PathBuf::new(),
                        destination: dst,
                        read_only,
                        options,
                        anonymous: false,
                        mode: Some(String::new()),
                        subpath: String::new(),
                    }
                }
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "mount type unknown: {other:?}"
                    )))
                }
            };
            mounts.retain(|m| m.destination != record.destination);
            mounts.push(record);
        }
        // The image's VOLUMEs and the request's `Volumes` (`docker run -v /path`) not covered
        // by a mount get an anonymous volume each.
        let mut anonymous: Vec<String> = img["Volumes"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        anonymous.extend(request_volumes.into_iter().flatten().cloned());
        {
            for dst in &anonymous {
                if mounts.iter().any(|m| &m.destination == dst) {
                    continue;
                }
                let (name, _) = self.mount_volume("")?;
                mounts.push(MountRecord {
                    kind: "volume".into(),
                    source: self.volumes.data_dir(&name),
                    name,
                    destination: dst.clone(),
                    read_only: false,
                    options: vec![],
                    anonymous: true,
                    mode: Some(String::new()),
                    subpath: String::new(),
                });
            }
        }
        Ok(mounts)
    }

    /// `POST /containers/{id}/start`.
    /// The volume a mount names (made if missing), or a new anonymous one for an empty name;
    /// and whether it is anonymous. Anonymous volumes carry dockerd's
    /// `com.docker.volume.anonymous` label, so one mounted again by its name (compose gives a
    /// recreated container its predecessor's) still goes with `rm -v`.
    fn mount_volume(&self, src: &str) -> Result<(String, bool)> {
        let labels = if src.is_empty() {
            HashMap::from([(ANONYMOUS_VOLUME.to_owned(), String::new())])
        } else {
            HashMap::new()
        };
        let v = self.volumes.create(
            Some(src).filter(|s| !s.is_empty()),
            None,
            labels,
            HashMap::new(),
        )?;
        let name = v["Name"].as_str().unwrap_or_default().to_owned();
        let anonymous = v["Labels"].get(ANONYMOUS_VOLUME).is_some();
        Ok((name, anonymous))
    }

    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<()> {
        let id = self.containers.find(key)?.id;
        let turn = self.container_op(&id).await;
        let started = self.start_in_turn(&id).await;
        drop(turn);
        match started {
            Ok(()) => Ok(()),
            Err((e, remove)) => {
                // dockerd removes an AutoRemove container whose start failed; docker CLI
                // waits for that removal before it reports the error.
                if remove {
                    let _ = Box::pin(self.remove_container(&id, true, true)).await;
                }
                Err(e)
            }
        }
    }

    /// A start, in the container's turn (see `container_op`). The error says whether the
    /// container is to be removed (AutoRemove) once the turn is over.
    async fn start_in_turn(
        self: &Arc<Self>,
        id: &str,
    ) -> std::result::Result<(), (ApiError, bool)> {
        // Found again in its turn: a removal before it leaves nothing to start.
        let c = self.containers.find(id).map_err(|e| (e, false))?;
        if c.is_running() {
            return Err((ApiError::NotModified, false));
        }
        // The clients that attached before this start are handed to the monitor at its
        // birth, before the process runs: they see all of its output.
        let attachers = self.take_early_attachers(&c.id);
        let this = self.clone();
        let id = c.id.clone();
        let started = tokio::task::spawn_blocking(move || this.start_blocking(&id, attachers))
            .await
            .map_err(|e| ApiError::internal("start", e));
        let started = match started {
            Ok(r) => r,
            Err(e) => {
                self.start_done(&c.id);
                return Err((e, false));
            }
        };
        let state = match started {
            Ok(s) => s,
            Err(e) => {
                self.start_done(&c.id);
                let msg = e.to_string();
                let _ = self.containers.update(&c.id, |c| {
                    c.state.error = msg.clone();
                    c.state.exit_code = exit_code_for_start_error(&msg);
                    Ok(())
                });
                let _ =
                    berth_image::OverlayMount::unmount(&self.container_dir(&c.id).join("rootfs"));
                crate::subpath::release(&self.container_dir(&c.id).join("subpaths"));
                return Err((e, c.host_config.auto_remove.unwrap_or(false)));
            }
        };
        let updated = self.containers.update(&c.id, |c| {
            c.state = State {
                status: "running".into(),
                pid: state.pid,
                exit_code: 0,
                error: String::new(),
                started_at: state.started_at.clone(),
                finished_at: NEVER.into(),
                oom_killed: false,
                health: None,
            };
            // A start by hand begins the count of the policy's restarts anew (dockerd's
            // ResetRestartManager); the new monitor counts from 0 too.
            c.restart_count = 0;
            Ok(c.clone())
        });
        // The record says running now: later attachers go to the monitor directly.
        self.start_done(&c.id);
        let c = updated.map_err(|e| (e, false))?;
        self.emit_container("start", &c);
        self.start_health(&c.id);
        self.watch_exit(c.id.clone(), 0);
        Ok(())
    }

    fn start_blocking(
        self: &Arc<Self>,
        id: &str,
        attachers: Vec<berth_monitor::client::EarlyAttach>,
    ) -> Result<berth_monitor::MonitorState> {
        let c = self.containers.find(id)?;
        let netns = self.setup_network(&c)?;
        let started = self.start_wired(id, attachers, netns.as_deref());
        if started.is_err() {
            self.teardown_network(id);
        }
        started
    }

    fn start_wired(
        &self,
        id: &str,
        attachers: Vec<berth_monitor::client::EarlyAttach>,
        netns: Option<&Path>,
    ) -> Result<berth_monitor::MonitorState> {
        // The record as wiring left it: addresses, MACs, host ports.
        let c = self.containers.find(id)?;
        let dir = self.container_dir(id);
        let rootfs = dir.join("rootfs");
        crate::modes::create_private_dir(&rootfs)
            .map_err(|e| ApiError::internal(format!("create {}", rootfs.display()), e))?;
        berth_image::OverlayMount::unmount(&rootfs)?;
        let infra = c.is_infra();
        // A `--rm` container's upper dir ends with it: no sync of it at unmount (overlayfs'
        // `volatile`, as podman mounts its `--rm` containers).
        let overlay = berth_image::OverlayMount {
            volatile: c.host_config.auto_remove.unwrap_or(false),
            ..c.rootfs.overlay()
        };
        match c.userns {
            _ if infra => {}
            Some(range) => {
                let ns = self.remap.namespace(range)?;
                overlay.mount_idmapped_at(
                    &rootfs,
                    std::os::fd::AsFd::as_fd(&*ns),
                    &dir.join("idmap"),
                )?
            }
            None => overlay.mount_at(&rootfs)?,
        }
        self.write_etc_files(&c, &dir)?;
        for m in c
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && m.subpath.is_empty())
        {
            if self.volumes.claim_copy_up(&m.name)? {
                copy_up(&rootfs, &m.destination, &m.source);
            }
        }
        // The links' environment (their containers must run), then each volume's subpath
        // bound, as resolved now, at a mount point of the container's own, which the spec
        // binds in its place.
        let mut c = c;
        self.with_link_env(&mut c)?;
        let subpaths = dir.join("subpaths");
        crate::subpath::release(&subpaths);
        for (i, m) in c.mounts.iter_mut().enumerate() {
            if m.kind == "volume" && !m.subpath.is_empty() {
                let fd = crate::subpath::open(&m.source, &m.subpath)?;
                m.source = crate::subpath::bind(&fd, &subpaths, i)?;
            }
        }
        let shared = self.shared_namespaces(&c)?;
        let spec = crate::spec::build(
            &c,
            &crate::spec::Paths {
                shared: &shared,
                rootfs: &rootfs,
                dir: &dir,
                cgroup_parent: c
                    .host_config
                    .cgroup_parent
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .unwrap_or("/berth"),
                netns,
            },
        )?;
        files::write_json_atomic(&dir.join("config.json"), &spec)
            .map_err(|e| ApiError::internal("write config.json", e))?;
        let restart = serde_json::to_value(&c.host_config.restart_policy).unwrap_or(Value::Null);
        let log_opts = serde_json::to_value(&c.host_config.log_config).unwrap_or(Value::Null);
        let max_size = log_opts["Config"]["max-size"].as_str().and_then(parse_size);
        let max_files = log_opts["Config"]["max-file"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let monitor_dir = self.monitor_dir(id);
        let _ = std::fs::remove_dir_all(&monitor_dir);
        crate::modes::create_private_dir(&monitor_dir)
            .map_err(|e| ApiError::internal(format!("create {}", monitor_dir.display()), e))?;
        let config = berth_monitor::MonitorConfig {
            id: id.to_owned(),
            runtime_root: self.runtime_root(),
            bundle: dir.clone(),
            dir: monitor_dir,
            tty: c.tty(),
            open_stdin: c.config.open_stdin.unwrap_or(false),
            stdin_once: c.config.stdin_once.unwrap_or(false),
            log: match c.extras.as_ref().and_then(|x| x.cri_log.clone()) {
                // kubelet rotates CRI logs itself (and asks for a reopen).
                Some(path) => berth_monitor::LogConfig {
                    path,
                    max_size: None,
                    max_files: 1,
                    disabled: false,
                    format: berth_monitor::LogFormat::Cri,
                },
                None => berth_monitor::LogConfig {
                    path: self.log_path(id),
                    max_size,
                    max_files,
                    disabled: log_opts["Type"] == "none",
                    format: berth_monitor::LogFormat::JsonFile,
                },
            },
            restart: berth_monitor::RestartPolicy {
                name: restart["Name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("no")
                    .to_owned(),
                max_retries: restart["MaximumRetryCount"].as_u64().unwrap_or(0) as u32,
            },
            runtime: self.opts.runtimes.get(&c.runtime).cloned(),
            attachers: 0,
            exec: None,
        };
        Ok(berth_monitor::spawn(
            &config,
            &self.opts.berth_exe,
            attachers,
        )?)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// /etc/hostname, /etc/hosts and /etc/resolv.conf as dockerd writes them: the host's
    /// own for `--network host`, the other container's for `container:NAME`, else made from
    /// the container's addresses, `--add-host`, `--dns*` and (on user-defined networks) the
    /// embedded DNS server.
    fn write_etc_files(&self, c: &Container, dir: &Path) -> Result<()> {
        let host = crate::spec::hostname(c);
        let write = |name: &str, data: String| -> Result<()> {
            let path = dir.join(name);
            files::write_in_place(&path, data.as_bytes())
                .map_err(|e| ApiError::internal(format!("write {}", path.display()), e))
        };
        write("hostname", format!("{host}\n"))?;
        match crate::network::mode_of(&c.host_config) {
            crate::network::Mode::Host => {
                write(
                    "hosts",
                    std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
                )?;
                write(
                    "resolv.conf",
                    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
                )?;
            }
            crate::network::Mode::Container(other) => {
                let o = self.containers.find(&other)?;
                let odir = self.container_dir(&o.id);
                for f in ["hosts", "resolv.conf", "hostname"] {
                    write(f, std::fs::read_to_string(odir.join(f)).unwrap_or_default())?;
                }
            }
            _ => {
                self.write_hosts_file(c)?;
                write("resolv.conf", self.resolv_conf(c))?;
            }
        }
        // A remapped container's root may edit its own /etc files, as with dockerd.
        if let Some(r) = c.userns {
            for name in ["hostname", "hosts", "resolv.conf"] {
                let path = dir.join(name);
                std::os::unix::fs::chown(&path, Some(r.uid), Some(r.gid))
                    .map_err(|e| ApiError::internal(format!("chown {}", path.display()), e))?;
            }
        }
        Ok(())
    }

    /// /etc/hosts: Docker's fixed lines, `--add-host`s, then the container's own address and
    /// hostname.
    pub fn write_hosts_file(&self, c: &Container) -> Result<()> {
        let host = crate::spec::hostname(c);
        let names = match c.config.domainname.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => format!("{host}.{d} {host}"),
            None => host.clone(),
        };
        let ips: Vec<std::net::IpAddr> = c
            .networks
            .values()
            .flat_map(|ep| {
                ep.ip
                    .map(std::net::IpAddr::V4)
                    .into_iter()
                    .chain(ep.ip6.map(std::net::IpAddr::V6))
            })
            .collect();
        let extra = c.host_config.extra_hosts.clone().unwrap_or_default();
        let hosts = self.hosts_text(&extra, &self.link_hosts(c), &names, &ips);
        let path = self.container_dir(&c.id).join("hosts");
        files::write_in_place(&path, hosts.as_bytes())
            .map_err(|e| ApiError::internal(format!("write {}", path.display()), e))
    }

    /// /etc/hosts as dockerd writes it: its fixed lines, the `--add-host`s, the links' lines,
    /// then each of the container's addresses with its names.
    pub(crate) fn hosts_text(
        &self,
        extra_hosts: &[String],
        links: &[String],
        names: &str,
        ips: &[std::net::IpAddr],
    ) -> String {
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        for extra in extra_hosts {
            if let Some((name, ip)) = extra.split_once([':', '=']) {
                let ip = if ip == "host-gateway" {
                    self.net
                        .store
                        .find("bridge")
                        .and_then(|n| n.gateway)
                        .map(|g| g.to_string())
                        .unwrap_or_default()
                } else {
                    ip.to_owned()
                };
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        for line in links {
            hosts.push_str(line);
            hosts.push('\n');
        }
        for ip in ips {
            hosts.push_str(&format!("{ip}\t{names}\n"));
        }
        hosts
    }

    /// resolv.conf: 127.0.0.11 on user-defined networks (the embedded server forwards the
    /// rest), else the host's servers less the loopback ones it cannot reach (Google's when
    /// none is left, as dockerd does); `--dns`, `--dns-search`, `--dns-option` override.
    pub(crate) fn resolv_conf(&self, c: &Container) -> String {
        let embedded = self.on_user_defined_network(c);
        self.resolv_conf_text(&c.host_config, embedded, &self.upstream_names(c))
    }

    /// resolv.conf for these DNS settings; `embedded` on a user-defined network, whose
    /// server forwards to `upstream`.
    pub(crate) fn resolv_conf_text(
        &self,
        hc: &HostConfig,
        embedded: bool,
        upstream: &[String],
    ) -> String {
        let host_resolv = crate::network::host_resolv_conf();
        let field = |key: &str| -> Vec<String> {
            host_resolv
                .lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .filter(|r| r.starts_with([' ', '\t']))
                .flat_map(|r| r.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect()
        };
        let search = hc
            .dns_search
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| field("search"));
        let mut options = hc
            .dns_options
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| field("options"));
        let servers: Vec<String> = if embedded {
            if !options.iter().any(|o| o.starts_with("ndots:")) {
                options.push("ndots:0".into());
            }
            vec![berth_network::dns::ADDRESS.to_string()]
        } else if let Some(dns) = hc.dns.clone().filter(|d| !d.is_empty()) {
            dns
        } else if !self.net.opts.dns.is_empty() {
            self.net.opts.dns.clone()
        } else {
            let mut s: Vec<String> = crate::network::host_nameservers()
                .into_iter()
                .filter(|s| !s.starts_with("127.") && s != "::1")
                .collect();
            if s.is_empty() {
                s = vec!["8.8.8.8".into(), "8.8.4.4".into()];
            }
            s
        };
        let mut out = String::new();
        for s in servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.is_empty() {
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        if embedded {
            let ext: Vec<String> = upstream.iter().map(|s| format!("host({s})")).collect();
            out.push_str(&format!(
                "\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [{}]\n",
                ext.join(" ")
            ));
        }
        out
    }

    /// Follows the container's monitor until the container is done (restarts included),
    /// recording each exit and each restart. `run` is the monitor's restart count of the run
    /// the record shows; a run that ended before the watch began is reported at once.
    pub fn watch_exit(self: &Arc<Self>, id: String, run: u32) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut run = run;
            loop {
                let dir = this.monitor_dir(&id);
                let waited =
                    tokio::task::spawn_blocking(move || berth_monitor::client::wait_run(&dir, run))
                        .await;
                let state = match waited {
                    Ok(Ok(s)) => s,
                    _ => match berth_monitor::read_state(&this.monitor_dir(&id)) {
                        Ok(s) => s,
                        Err(_) => break,
                    },
                };
                if state.status == berth_monitor::Status::Running && state.restart_count <= run {
                    continue;
                }
                let restarting = state.status != berth_monitor::Status::Exited;
                let Some(c) = this.record_exit(&id, &state, restarting) else {
                    break;
                };
                if !restarting {
                    // Before the exit is announced: a `restart` that waits for it must not
                    // race this teardown with its own new namespace.
                    let (d, id) = (this.clone(), id.clone());
                    let _ = tokio::task::spawn_blocking(move || d.teardown_network(&id)).await;
                }
                this.notify_exit(&id, state.exit_code as i64, false);
                if restarting {
                    // The monitor answers once its next run has started (after the policy's
                    // back-off; at once if it has), or once it gave up.
                    let started = if state.status == berth_monitor::Status::Running {
                        state
                    } else {
                        let dir = this.monitor_dir(&id);
                        match tokio::task::spawn_blocking(move || {
                            berth_monitor::client::wait_start(&dir)
                        })
                        .await
                        {
                            Ok(Ok(s)) => s,
                            _ => continue,
                        }
                    };
                    if started.status == berth_monitor::Status::Running {
                        run = started.restart_count;
                        this.record_restart(&id, &started);
                    }
                    continue;
                }
                let _ = berth_image::OverlayMount::unmount(&this.container_dir(&id).join("rootfs"));
                crate::subpath::release(&this.container_dir(&id).join("subpaths"));
                if c.host_config.auto_remove.unwrap_or(false) {
                    let _ = this.remove_container(&id, true, true).await;
                }
                break;
            }
        });
    }

    /// Records a run's end (`die`, and `oom` when the kernel killed in it).
    fn record_exit(
        &self,
        id: &str,
        state: &berth_monitor::MonitorState,
        restarting: bool,
    ) -> Option<Container> {
        let c = self
            .containers
            .update(id, |c| {
                c.state.status = if restarting { "restarting" } else { "exited" }.into();
                c.state.pid = 0;
                c.state.exit_code = state.exit_code;
                c.state.finished_at = state.finished_at.clone();
                c.state.oom_killed = state.oom_killed;
                Ok(c.clone())
            })
            .ok()?;
        let mut attrs = BTreeMap::new();
        attrs.insert("exitCode".to_owned(), state.exit_code.to_string());
        if state.oom_killed {
            self.emit_container("oom", &c);
        }
        self.emit_container_with("die", &c, attrs);
        Some(c)
    }

    /// Records a run the restart policy started (`start`, as dockerd sends).
    fn record_restart(self: &Arc<Self>, id: &str, state: &berth_monitor::MonitorState) {
        let c = self.containers.update(id, |c| {
            c.state.status = "running".into();
            c.state.pid = state.pid;
            c.state.started_at = state.started_at.clone();
            c.restart_count = state.restart_count;
            Ok(c.clone())
        });
        if let Ok(c) = c {
            self.emit_container("start", &c);
            self.start_health(&c.id);
        }
    }

    /// On start: containers recorded as running whose monitor is gone exited while the daemon
    /// was down; those whose monitor lives are followed again.
    pub fn reconcile(self: &Arc<Self>) {
        self.remove_finished_execs();
        for c in self.containers.list() {
            let Some(c) = self.unrecorded_start(c) else {
                continue;
            };
            match berth_monitor::read_state(&self.monitor_dir(&c.id)) {
                Ok(s) if s.monitor_alive && !matches!(s.status, berth_monitor::Status::Exited) => {
                    let _ = self.containers.update(&c.id, |c| {
                        c.state.pid = s.pid;
                        Ok(())
                    });
                    // A run that ended (or restarts that happened) while the daemon was down
                    // are recorded by the watch at once.
                    self.watch_exit(c.id.clone(), c.restart_count);
                    self.start_health(&c.id);
                }
                other => {
                    let (code, finished, oom) = match &other {
                        Ok(s) => (s.exit_code, s.finished_at.clone(), s.oom_killed),
                        Err(_) => (255, files::now_rfc3339(), false),
                    };
                    let _ = self.containers.update(&c.id, |c| {
                        c.state.status = "exited".into();
                        c.state.pid = 0;
                        c.state.exit_code = code;
                        c.state.finished_at = finished.clone();
                        c.state.oom_killed = oom;
                        Ok(())
                    });
                    if c.host_config.auto_remove.unwrap_or(false) {
                        let this = self.clone();
                        let id = c.id.clone();
                        tokio::spawn(async move {
                            let _ = this.remove_container(&id, true, true).await;
                        });
                    }
                }
            }
        }
    }

    /// At a daemon's start, the record of a container to follow: one recorded as running, or
    /// one whose start the last daemon was killed in the middle of (a monitor spawned, the
    /// record not yet updated: the monitor's state tells of a run the record does not), which
    /// is recorded as running now and followed like the others.
    fn unrecorded_start(&self, c: Container) -> Option<Container> {
        if c.is_running() {
            return Some(c);
        }
        let s = berth_monitor::read_state(&self.monitor_dir(&c.id)).ok()?;
        if s.started_at == berth_monitor::ZERO_TIME || s.started_at == c.state.started_at {
            return None;
        }
        self.containers
            .update(&c.id, |c| {
                c.state.status = "running".into();
                c.state.pid = s.pid;
                c.state.exit_code = 0;
                c.state.error.clear();
                c.state.started_at = s.started_at.clone();
                c.state.finished_at = NEVER.into();
                c.restart_count = s.restart_count;
                Ok(c.clone())
            })
            .ok()
    }

    /// Sends `signal` to the container's init (the pid the monitor reports now: after a
    /// restart it is a new one).
    pub fn signal_container(&self, c: &Container, signal: &str) -> Result<()> {
        let sig = berth_runtime::parse_signal(signal)
            .map_err(|_| ApiError::BadRequest(format!("Invalid signal: {signal}")))?;
        let state = berth_monitor::read_state(&self.monitor_dir(&c.id))
            .map_err(|_| ApiError::Conflict(format!("Container {} is not running", c.id)))?;
        if state.pid <= 0 || !matches!(state.status, berth_monitor::Status::Running) {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let sig = nix::sys::signal::Signal::try_from(sig)
            .map_err(|_| ApiError::BadRequest(format!("Invalid signal: {signal}")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid), sig)
            .map_err(|e| ApiError::internal(format!("kill {} with {signal}", c.short_id()), e))
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill_container(self: &Arc<Self>, key: &str, signal: Option<&str>) -> Result<()> {
        let c = self.containers.find(key)?;
        if !c.is_running() {
            return Err(ApiError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                key, c.id
            )));
        }
        let signal = signal.filter(|s| !s.is_empty()).unwrap_or("KILL");
        // A bad name is refused before anything changes (the restart policy stays on).
        let number = berth_runtime::parse_signal(signal)
            .map_err(|_| ApiError::BadRequest(format!("Invalid signal: {signal}")))?;
        let dir = self.monitor_dir(&c.id);
        let _ =
            tokio::task::spawn_blocking(move || berth_monitor::client::stop_restarting(&dir)).await;
        // Subscribed before the signal, so the exit cannot be missed.
        let mut exits = self.exit_watch(&c.id);
        self.signal_container(&c, signal)?;
        let mut attrs = BTreeMap::new();
        attrs.insert("signal".into(), number.to_string());
        self.emit_container_with("kill", &c, attrs);
        if number == libc::SIGKILL {
            // dockerd answers a SIGKILL once the container is dead and its state recorded,
            // so `kill` then `rm` (or an inspect) sees it exited. Bounded: a frozen process
            // dies only when thawed.
            let _ = tokio::time::timeout(KILL_WAIT, exits.changed()).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout.
    pub async fn stop_container(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let c = self.containers.find(key)?;
        if !c.is_running() {
            return Err(ApiError::NotModified);
        }
        let mut exits = self.exit_watch(&c.id);
        let dir = self.monitor_dir(&c.id);
        let _ =
            tokio::task::spawn_blocking(move || berth_monitor::client::stop_restarting(&dir)).await;
        let signal = signal
            .map(str::to_owned)
            .or_else(|| c.config.stop_signal.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "SIGTERM".into());
        let timeout = timeout.or(c.config.stop_timeout).unwrap_or(10);
        let _ = self.signal_container(&c, &signal);
        let exited =
            tokio::time::timeout(Duration::from_secs(timeout.max(0) as u64), exits.changed()).await;
        if exited.is_err() {
            let _ = self.signal_container(&c, "SIGKILL");
            let _ = tokio::time::timeout(Duration::from_secs(10), exits.changed()).await;
        }
        self.emit_container("stop", &c);
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove_container(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let id = self.containers.find(key)?.id;
        // After a start under way: what it started is then seen running, and killed.
        let _turn = self.container_op(&id).await;
        let c = self.containers.find(&id)?;
        if c.is_running() {
            if !force {
                return Err(ApiError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            let mut exits = self.exit_watch(&c.id);
            let dir = self.monitor_dir(&c.id);
            let _ =
                tokio::task::spawn_blocking(move || berth_monitor::client::stop_restarting(&dir))
                    .await;
            if self.signal_container(&c, "SIGKILL").is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(10), exits.changed()).await;
            }
        }
        let this = self.clone();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || {
            this.teardown_network(&id);
            let dir = this.container_dir(&id);
            let _ = berth_image::OverlayMount::unmount(&dir.join("rootfs"));
            crate::subpath::release(&dir.join("subpaths"));
            let _ = std::fs::remove_dir_all(this.monitor_dir(&id));
            // The record goes first, in one rename: a daemon killed while the rest is
            // removed finds no half-removed container, and its next start finishes the job.
            let doomed = container::doomed_dir(&dir);
            match std::fs::rename(&dir, &doomed) {
                Ok(()) => {
                    let _ = std::fs::remove_dir_all(&doomed);
                }
                Err(_) => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        })
        .await
        .map_err(|e| ApiError::internal("remove", e))?;
        self.containers.remove(&c.id);
        self.drop_attachers(&c.id);
        self.forget_container_op(&c.id);
        if volumes {
            for m in c.mounts.iter().filter(|m| m.anonymous) {
                let _ = self.volumes.remove(&m.name, &[], true);
            }
        }
        self.emit_container("destroy", &c);
        self.notify_exit(&c.id, c.state.exit_code as i64, true);
        Ok(())
    }

    /// `POST /containers/{id}/wait?condition=`.
    pub async fn wait_container(self: &Arc<Self>, key: &str, condition: &str) -> Result<i64> {
        let c = self.containers.find(key)?;
        let mut rx = self.exit_watch(&c.id);
        match condition {
            "" | "not-running" if !c.is_running() => return Ok(c.state.exit_code as i64),
            "" | "not-running" | "next-exit" => {}
            "removed" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "invalid condition: \"{other}\""
                )))
            }
        }
        loop {
            if rx.changed().await.is_err() {
                return Ok(c.state.exit_code as i64);
            }
            let n = *rx.borrow();
            if condition != "removed" || n.removed {
                return Ok(n.exit_code);
            }
        }
    }

    pub fn emit_container(&self, action: &str, c: &Container) {
        self.emit_container_with(action, c, BTreeMap::new());
    }

    pub fn emit_container_with(
        &self,
        action: &str,
        c: &Container,
        mut attrs: BTreeMap<String, String>,
    ) {
        attrs.insert("image".into(), c.image.clone());
        attrs.insert("name".into(), c.name.clone());
        for (k, v) in c.config.labels.iter().flatten() {
            attrs.insert(k.clone(), v.clone());
        }
        self.events.emit("container", action, &c.id, attrs);
    }
}

/// A `-v` spec's mode as dockerd's parser takes it: `ro`/`rw`, a label mode (`z`, `Z`), a
/// propagation, `nocopy`, a consistency, each at most once.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut seen = [0u8; 5];
    for o in mode.split(',') {
        let kind = match o {
            "ro" | "rw" => 0,
            "z" | "Z" => 1,
            o if container::PROPAGATION_MODES.contains(&o) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        seen[kind] += 1;
        if seen[kind] > 1 {
            return false;
        }
    }
    true
}

fn validate_restart(hc: &HostConfig) -> Result<()> {
    let v = serde_json::to_value(&hc.restart_policy).unwrap_or(Value::Null);
    let name = v["Name"].as_str().unwrap_or("");
    let retries = v["MaximumRetryCount"].as_i64().unwrap_or(0);
    match name {
        "" | "no" | "always" | "unless-stopped" if retries == 0 => {}
        "on-failure" if retries >= 0 => {}
        "" | "no" | "always" | "unless-stopped" => {
            return Err(ApiError::BadRequest(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            ))
        }
        _ => return Err(ApiError::BadRequest(format!("invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"))),
    }
    if hc.auto_remove.unwrap_or(false) && !matches!(name, "" | "no") {
        return Err(ApiError::BadRequest(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    Ok(())
}

/// Flags berth does not serve yet are refused by name rather than silently ignored.
fn refuse_unsupported(hc: &HostConfig) -> Result<()> {
    if let Some(mode) = hc
        .userns_mode
        .as_deref()
        .filter(|m| !m.is_empty() && *m != "host")
    {
        return Err(ApiError::BadRequest(format!(
            "invalid --userns={mode}: only \"host\" is valid (remapping is the daemon's --userns-remap)"
        )));
    }
    Ok(())
}

/// How long `kill` (SIGKILL) waits for the container's exit to be recorded.
const KILL_WAIT: Duration = Duration::from_secs(10);

impl Daemon {
    /// `IpcMode`, `PidMode` and `UTSMode` as a pod needs them: `host`, `container:ID` (join
    /// that running container's namespace), or the container's own (empty, `private`,
    /// `shareable`). The container named must exist.
    fn validate_shared_namespaces(&self, hc: &HostConfig) -> Result<()> {
        for (flag, mode) in [
            ("ipc", &hc.ipc_mode),
            ("pid", &hc.pid_mode),
            ("uts", &hc.uts_mode),
        ] {
            match mode.as_deref().unwrap_or("") {
                "" | "host" | "private" | "shareable" => {}
                m if m.starts_with("container:") => {
                    self.containers.find(&m["container:".len()..])?;
                }
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "invalid {flag} mode: {other} (want host, private, shareable or container:NAME)"
                    )))
                }
            }
        }
        Ok(())
    }

    /// At start: the namespaces (pid, ipc, uts) this container shares rather than makes: the
    /// host's (None) or another running container's (its init's /proc/PID/ns file).
    fn shared_namespaces(&self, c: &Container) -> Result<Vec<(&'static str, Option<PathBuf>)>> {
        let hc = &c.host_config;
        let mut out = Vec::new();
        for (kind, mode) in [
            ("ipc", &hc.ipc_mode),
            ("pid", &hc.pid_mode),
            ("uts", &hc.uts_mode),
        ] {
            let mode = mode.as_deref().unwrap_or("");
            if mode == "host" {
                out.push((kind, None));
            } else if let Some(other) = mode.strip_prefix("container:") {
                let o = self.containers.find(other)?;
                if !o.is_running() || o.state.pid <= 0 {
                    return Err(ApiError::Conflict(format!(
                        "cannot join the {kind} namespace of a non running container: {other}"
                    )));
                }
                out.push((
                    kind,
                    Some(PathBuf::from(format!("/proc/{}/ns/{kind}", o.state.pid))),
                ));
            }
        }
        Ok(out)
    }
}

/// The label dockerd puts on the volumes it makes without a name.
const ANONYMOUS_VOLUME: &str = "com.docker.volume.anonymous";

/// The container's `Volumes`: the image's VOLUMEs and the request's, as dockerd merges them
/// into the container's config (docker-compose reads them back to keep anonymous volumes).
fn merged_volumes(own: Option<&Vec<String>>, image: &Value) -> Option<Vec<String>> {
    let mut all: Vec<String> = image
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for v in own.into_iter().flatten() {
        if !all.contains(v) {
            all.push(v.clone());
        }
    }
    (!all.is_empty()).then_some(all)
}

/// The request's healthcheck over the image's HEALTHCHECK, field by field, as dockerd merges
/// them (a request without a test keeps the image's test and takes its own timings).
fn merged_healthcheck(
    own: Option<&bollard_stubs::models::HealthConfig>,
    image: &Value,
) -> Option<bollard_stubs::models::HealthConfig> {
    let from_image: Option<bollard_stubs::models::HealthConfig> =
        serde_json::from_value(image.clone())
            .ok()
            .filter(|_| image.is_object());
    let Some(own) = own else {
        return from_image;
    };
    let Some(img) = from_image else {
        return Some(own.clone());
    };
    let pick = |a: Option<i64>, b: Option<i64>| a.filter(|n| *n != 0).or(b);
    Some(bollard_stubs::models::HealthConfig {
        test: own.test.clone().filter(|t| !t.is_empty()).or(img.test),
        interval: pick(own.interval, img.interval),
        timeout: pick(own.timeout, img.timeout),
        retries: pick(own.retries, img.retries),
        start_period: pick(own.start_period, img.start_period),
        start_interval: pick(own.start_interval, img.start_interval),
    })
}

/// The exit code `docker run` reports when start fails: 127 for a missing program, 126 for one
/// that cannot be run, else 125 — what dockerd derives from the runtime's message.
pub fn exit_code_for_start_error(msg: &str) -> i32 {
    if msg.contains("not found") || msg.to_ascii_lowercase().contains("no such file") {
        127
    } else if msg.contains("ermission denied") {
        126
    } else {
        125
    }
}

/// Docker's size strings: 10m, 1g, 512k, 100 (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.trim_end_matches('b');
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|n| (n * mult as f64) as u64)
}

fn familiar(name: &str) -> String {
    berth_image::Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_owned())
}

/// Copies what the image has at `dest` into a fresh volume, keeping owners and modes (dockerd's
/// copy-up of a new volume's first mount).
pub(crate) fn copy_up(rootfs: &Path, dest: &str, volume: &Path) {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    use std::os::fd::{AsFd, AsRawFd};
    // The path comes from the image: resolve it inside the root, so that no symlink in it
    // (`/data -> /etc`, or a parent `/a -> /`) can make berth copy host files into the volume.
    let Ok(root) = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return;
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let Ok(dir) = nix::fcntl::openat2(root.as_fd(), dest, how) else {
        return;
    };
    let Ok(src) = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return;
    };
    // The container has not started: nothing can swap the resolved directory under cp.
    let _ = std::process::Command::new("cp")
        .arg("-a")
        .arg("--no-dereference")
        .arg(format!("{}/.", src.display()))
        .arg(volume)
        .status();
}
