//! `docker exec` instances: created by one request, started (and streamed) by another,
//! inspected for their exit code by a third.
//!
//! Each started exec gets a monitor of its own (`berth monitor` in exec mode, under
//! `<exec-root>/execs/<exec id>`): the process is the monitor's child, not the daemon's, so it
//! outlives a daemon restart as the container does, and its stdio, terminal size and exit code
//! are reached the way a container's are.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bollard_stubs::models::ExecConfig;
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::error::{ApiError, Result};

#[derive(Debug, Clone)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
}

#[derive(Debug, Default)]
pub struct Execs {
    all: Mutex<HashMap<String, Exec>>,
}

impl Execs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Exec>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, e: Exec) {
        self.lock().insert(e.id.clone(), e);
    }

    pub fn get(&self, id: &str) -> Option<Exec> {
        self.lock().get(id).cloned()
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut Exec)) {
        if let Some(e) = self.lock().get_mut(id) {
            f(e);
        }
    }

    /// The execs of `container` whose process still runs.
    pub fn running_ids_of(&self, container: &str) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| e.container_id == container && e.running)
            .map(|e| e.id.clone())
            .collect()
    }
}

impl Daemon {
    /// The exec's monitor directory: its process.json, sockets and state.json.
    pub fn exec_dir(&self, exec_id: &str) -> PathBuf {
        self.opts.exec_root.join("execs").join(exec_id)
    }

    /// Starts the exec's process under its own monitor (blocking: run it on the blocking pool),
    /// with `attachers` connected before it runs.
    pub fn spawn_exec(
        &self,
        e: &Exec,
        attachers: Vec<berth_monitor::client::EarlyAttach>,
    ) -> Result<berth_monitor::MonitorState> {
        let c = self.containers.find(&e.container_id)?;
        if !c.is_running() {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let dir = self.exec_dir(&e.id);
        let _ = std::fs::remove_dir_all(&dir);
        crate::modes::create_private_dir(&dir)
            .map_err(|err| ApiError::internal(format!("create {}", dir.display()), err))?;
        let process_file = dir.join("process.json");
        crate::files::write_json_atomic(&process_file, &self.exec_process(e)?)
            .map_err(|err| ApiError::internal("write the exec's process.json", err))?;
        let config = berth_monitor::MonitorConfig {
            id: c.id.clone(),
            runtime_root: self.runtime_root(),
            bundle: self.container_dir(&c.id),
            dir: dir.clone(),
            tty: e.config.tty.unwrap_or(false),
            open_stdin: e.config.attach_stdin.unwrap_or(false),
            // `docker exec -i`: the process's stdin ends with the client's.
            stdin_once: true,
            log: berth_monitor::LogConfig {
                path: dir.join("unused.log"),
                max_size: None,
                max_files: 1,
                disabled: true,
                format: Default::default(),
            },
            restart: berth_monitor::RestartPolicy::default(),
            runtime: self.opts.runtimes.get(&c.runtime).cloned(),
            attachers: 0,
            exec: Some(process_file),
        };
        berth_monitor::spawn(&config, &self.opts.berth_exe, attachers).map_err(|err| {
            let _ = std::fs::remove_dir_all(&dir);
            err.into()
        })
    }

    /// Records the end of a started exec (once its process exits), sends `exec_die`, and
    /// removes its monitor directory. Returns the exit code.
    pub async fn finish_exec(self: &Arc<Self>, exec_id: &str) -> i64 {
        let dir = self.exec_dir(exec_id);
        let waited = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || berth_monitor::client::wait(&dir)).await
        };
        let code = match waited {
            Ok(Ok(state)) => state.exit_code as i64,
            _ => 255,
        };
        let _ = std::fs::remove_dir_all(&dir);
        self.execs.update(exec_id, |x| {
            x.running = false;
            x.exit_code = Some(code);
            x.pid = 0;
        });
        if let Some(e) = self.execs.get(exec_id) {
            if let Ok(c) = self.containers.find(&e.container_id) {
                let mut attrs = std::collections::BTreeMap::new();
                attrs.insert("execID".into(), exec_id.to_owned());
                attrs.insert("exitCode".into(), code.to_string());
                self.emit_container_with("exec_die", &c, attrs);
            }
        }
        code
    }

    /// Exec monitors whose process ended while the daemon was down leave their directories:
    /// the records of those execs are gone with the old daemon (as dockerd's are).
    pub fn remove_finished_execs(&self) {
        let root = self.opts.exec_root.join("execs");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let dir = entry.path();
            let alive = berth_monitor::read_state(&dir).is_ok_and(|s| s.monitor_alive);
            if !alive {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }

    /// The exec's process.json: its command with the container's capabilities and
    /// environment, the exec's user, working directory and extra variables.
    pub(crate) fn exec_process(&self, e: &Exec) -> Result<Value> {
        let c = self.containers.find(&e.container_id)?;
        let dir = self.container_dir(&c.id);
        let spec: Value = std::fs::read(dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::Conflict(format!("Container {} is not running", c.id)))?;
        let mut p = spec["process"].clone();
        let cfg = &e.config;
        // Without a user of its own the exec runs as the container's process does (its
        // --group-add included); with one, as dockerd: that user and the --group-adds.
        if let Some(user) = cfg.user.clone().filter(|u| !u.is_empty()) {
            let rootfs = dir.join("rootfs");
            let (uid, gid, mut gids) = crate::spec::resolve_user(&rootfs, &user)?;
            for g in c.host_config.group_add.iter().flatten() {
                gids.push(crate::spec::resolve_group(&rootfs, g)?);
            }
            p["user"] = json!({"uid": uid, "gid": gid, "additionalGids": gids});
        }
        p["args"] = json!(cfg.cmd.clone().unwrap_or_default());
        p["terminal"] = json!(cfg.tty.unwrap_or(false));
        if let Some(size) = cfg.console_size.as_ref().filter(|s| s.len() == 2) {
            p["consoleSize"] = json!({"height": size[0], "width": size[1]});
        } else if let Some(o) = p.as_object_mut() {
            o.remove("consoleSize");
        }
        if let Some(w) = cfg.working_dir.clone().filter(|w| !w.is_empty()) {
            p["cwd"] = json!(w);
        }
        let mut env: Vec<String> = p["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        for kv in cfg.env.iter().flatten() {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p["env"] = json!(env);
        if cfg.privileged.unwrap_or(false) {
            let all = crate::spec::all_caps();
            p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
        }
        Ok(p)
    }
}
