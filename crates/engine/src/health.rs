//! Docker's HEALTHCHECK: while a container with a healthcheck runs, its test is run inside it
//! (an exec, as dockerd does) every interval; the result is `State.Health` (`starting`,
//! `healthy`, `unhealthy`, the failing streak and the last five probes), a
//! `health_status: …` event on each change, and `(healthy)` in `ps`'s status. This is what
//! compose's `depends_on: condition: service_healthy` and `up --wait` wait for.
//!
//! Timing follows dockerd: the first probe comes one interval after the start (the start
//! interval while the start period lasts), failures inside the start period do not count
//! unless a probe succeeds, `retries` consecutive failures make the container unhealthy, and a
//! probe that outlives its timeout fails with exit code -1 and is killed inside the container,
//! with the processes it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard_stubs::models::{ExecConfig, HealthConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::exec::Exec;

/// dockerd's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// dockerd keeps the last five probes and 4 KiB of each one's output.
const MAX_LOG_ENTRIES: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// A container's health, kept in its record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Health {
    /// starting, healthy or unhealthy.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

/// One run of the test.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// Which check loop is current for each container: a loop whose generation is no longer the
/// container's ends (the container stopped or was started again).
#[derive(Debug, Default)]
pub struct Checks {
    generation: Mutex<HashMap<String, u64>>,
}

impl Checks {
    fn next(&self, id: &str) -> u64 {
        let mut m = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let g = m.entry(id.to_owned()).or_insert(0);
        *g += 1;
        *g
    }

    fn current(&self, id: &str, generation: u64) -> bool {
        let m = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id) == Some(&generation)
    }

    /// Ends the container's loop (at its next wake-up).
    pub fn stop(&self, id: &str) {
        let mut m = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(id);
    }
}

/// The test to run, or none when the container has no healthcheck (or `NONE`).
fn test_of(hc: &HealthConfig) -> Option<Vec<String>> {
    let test = hc.test.clone().unwrap_or_default();
    match test.first().map(String::as_str) {
        Some("CMD") => Some(test[1..].to_vec()).filter(|t| !t.is_empty()),
        Some("CMD-SHELL") => {
            let script = test[1..].join(" ");
            Some(vec!["/bin/sh".into(), "-c".into(), script])
        }
        _ => None,
    }
}

fn duration(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// `State.Health` as dockerd shows it.
pub fn to_json(h: &Health) -> Value {
    json!({
        "Status": h.status,
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|p| json!({
            "Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output,
        })).collect::<Vec<_>>(),
    })
}

/// The words `ps` adds to a running container's status.
pub fn status_suffix(h: Option<&Health>) -> &'static str {
    match h.map(|h| h.status.as_str()) {
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        Some("starting") => " (health: starting)",
        _ => "",
    }
}

impl Daemon {
    /// Starts the check loop of a container that has just started (by hand, by its restart
    /// policy, or found running by a restarted daemon): its health begins as `starting`.
    pub fn start_health(self: &Arc<Self>, id: &str) {
        let Ok(c) = self.containers.find(id) else {
            return;
        };
        let Some(hc) = c.config.healthcheck.clone() else {
            return;
        };
        let Some(test) = test_of(&hc) else {
            return;
        };
        let generation = self.health.next(&c.id);
        let _ = self.containers.update(&c.id, |c| {
            c.state.health = Some(Health {
                status: "starting".into(),
                ..Default::default()
            });
            Ok(())
        });
        let this = self.clone();
        let id = c.id.clone();
        self.runtime.spawn(async move {
            this.check_loop(id, generation, hc, test).await;
        });
    }

    async fn check_loop(
        self: Arc<Self>,
        id: String,
        generation: u64,
        hc: HealthConfig,
        test: Vec<String>,
    ) {
        let interval = duration(hc.interval, DEFAULT_INTERVAL);
        let timeout = duration(hc.timeout, DEFAULT_TIMEOUT);
        let start_period = duration(hc.start_period, Duration::ZERO);
        let start_interval = duration(hc.start_interval, DEFAULT_START_INTERVAL);
        let retries = match hc.retries {
            Some(r) if r > 0 => r as u32,
            _ => DEFAULT_RETRIES,
        };
        let started = Instant::now();
        loop {
            let in_start_period = started.elapsed() < start_period;
            let wait = if in_start_period && hc.start_interval.is_some_and(|n| n > 0) {
                start_interval
            } else {
                interval
            };
            tokio::time::sleep(wait).await;
            if !self.health.current(&id, generation) {
                return;
            }
            let running = self
                .containers
                .find(&id)
                .is_ok_and(|c| c.state.status == "running");
            if !running {
                self.health.stop(&id);
                return;
            }
            let probe = self.probe(&id, &test, timeout).await;
            if !self.health.current(&id, generation) {
                return;
            }
            let in_start_period = started.elapsed() < start_period;
            let changed = self.containers.update(&id, |c| {
                let h = c.state.health.get_or_insert_with(Health::default);
                let before = h.status.clone();
                if probe.exit_code == 0 {
                    h.status = "healthy".into();
                    h.failing_streak = 0;
                } else if !in_start_period || h.status != "starting" {
                    h.failing_streak += 1;
                    if h.failing_streak >= retries {
                        h.status = "unhealthy".into();
                    }
                }
                h.log.push(probe.clone());
                if h.log.len() > MAX_LOG_ENTRIES {
                    let extra = h.log.len() - MAX_LOG_ENTRIES;
                    h.log.drain(..extra);
                }
                let now = h.status.clone();
                Ok((before != now).then(|| (now, c.clone())))
            });
            if let Ok(Some((status, c))) = changed {
                self.emit_container(&format!("health_status: {status}"), &c);
            }
        }
    }

    /// Runs the test once inside the container, through the container's runtime's `exec`
    /// (runc's command line, which berth's runtime shares), with the exec's environment and
    /// user as `docker exec` would give it.
    async fn probe(&self, id: &str, test: &[String], timeout: Duration) -> Probe {
        let start = crate::files::now_rfc3339();
        let failed = |output: String, code: i64| Probe {
            start: start.clone(),
            end: crate::files::now_rfc3339(),
            exit_code: code,
            output,
        };
        let Ok(c) = self.containers.find(id) else {
            return failed("container gone".into(), -1);
        };
        let exec = Exec {
            id: String::new(),
            container_id: c.id.clone(),
            config: ExecConfig {
                cmd: Some(test.to_vec()),
                ..Default::default()
            },
            running: true,
            exit_code: None,
            pid: 0,
        };
        let process = match self.exec_process(&exec) {
            Ok(p) => p,
            Err(e) => return failed(e.to_string(), -1),
        };
        let dir = self.opts.exec_root.join("health");
        let file = dir.join(format!("{}.json", c.id));
        let pid_file = dir.join(format!("{}.pid", c.id));
        let _ = std::fs::remove_file(&pid_file);
        if let Err(e) = crate::modes::create_private_dir(&dir)
            .and_then(|()| crate::files::write_json_atomic(&file, &process))
        {
            return failed(format!("writing the probe's process.json: {e}"), -1);
        }
        let mut cmd = match self.opts.runtimes.get(&c.runtime) {
            Some(bin) => tokio::process::Command::new(bin),
            None => {
                let mut cmd = tokio::process::Command::new(&self.opts.berth_exe);
                cmd.arg("runtime");
                cmd
            }
        };
        cmd.arg("--root")
            .arg(self.runtime_root())
            .arg("exec")
            .arg("--process")
            .arg(&file)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&c.id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(ch) => ch,
            Err(e) => return failed(format!("running the probe: {e}"), -1),
        };
        let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
        let run = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (status, _, _) = tokio::join!(
                child.wait(),
                read_all(stdout.as_mut(), &mut out),
                read_all(stderr.as_mut(), &mut err),
            );
            out.extend_from_slice(&err);
            (status, out)
        };
        let result = tokio::time::timeout(timeout, run).await;
        let _ = std::fs::remove_file(&file);
        let probe = match result {
            Ok((Ok(status), mut text)) => {
                text.truncate(MAX_OUTPUT);
                Probe {
                    start,
                    end: crate::files::now_rfc3339(),
                    exit_code: i64::from(status.code().unwrap_or(-1)),
                    output: String::from_utf8_lossy(&text).into_owned(),
                }
            }
            Ok((Err(e), _)) => failed(format!("running the probe: {e}"), -1),
            Err(_) => {
                // As dockerd: the probe's process is killed inside the container — with
                // whatever it started — and then the runtime's exec that waits for it.
                let pid = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|p| p.trim().parse::<i32>().ok());
                let init = c.state.pid;
                if let Some(pid) = pid {
                    let _ = tokio::task::spawn_blocking(move || {
                        crate::proctree::kill_tree_in(pid, init)
                    })
                    .await;
                }
                let _ = child.start_kill();
                let _ = child.wait().await;
                failed(
                    format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
                    -1,
                )
            }
        };
        let _ = std::fs::remove_file(&pid_file);
        probe
    }
}

/// Reads a probe's output to its end, keeping the first 4 KiB.
async fn read_all<R: tokio::io::AsyncRead + Unpin>(r: Option<&mut R>, keep: &mut Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let Some(r) = r else {
        return;
    };
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
        let room = MAX_OUTPUT.saturating_sub(keep.len());
        keep.extend_from_slice(&buf[..n.min(room)]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tests_as_dockerd_runs_them() {
        let hc = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(test_of(&hc(&["CMD", "true"])).unwrap(), ["true"]);
        assert_eq!(
            test_of(&hc(&["CMD-SHELL", "test -f /x"])).unwrap(),
            ["/bin/sh", "-c", "test -f /x"]
        );
        assert!(test_of(&hc(&["NONE"])).is_none());
        assert!(test_of(&hc(&[])).is_none());
        assert_eq!(status_suffix(None), "");
        let h = Health {
            status: "healthy".into(),
            ..Default::default()
        };
        assert_eq!(status_suffix(Some(&h)), " (healthy)");
    }
}
