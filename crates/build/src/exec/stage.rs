//! One stage, step by step: FROM, then each instruction looked up in the cache by its key and
//! executed on a miss. Instructions that only change the config (ENV, LABEL, CMD, …) commit
//! a config without a layer; RUN, COPY and ADD (and a WORKDIR that creates its directory)
//! commit a layer.

use std::collections::BTreeMap;
use std::path::Path;

use berth_image::{BuildState, History, ImageConfig};
use serde_json::{json, Value};

use super::key::Key;
use super::mount::StepFs;
use super::output::StageOut;
use super::{copy, host_platform, run, short, Job};
use crate::dockerfile::words::{self, process_word, process_words};
use crate::dockerfile::{self, ArgDecl, CmdLine, Command, Health, Instruction, KeyValue};
use crate::error::{Error, Result};
use crate::fsroot::{Owner, Root};
use crate::ignore::clean;

pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage being built.
pub(crate) struct StageRun<'j, 'a> {
    pub job: &'j Job<'a>,
    pub out: StageOut<'j, 'a>,
    pub index: usize,
    pub state: BuildState,
    pub config: ImageConfig,
    /// The ARGs declared in this stage that have a value, in declaration order.
    pub args: Vec<(String, String)>,
    /// Whether this stage set CMD (an ENTRYPOINT then keeps it).
    cmd_set: bool,
    step: usize,
    total: usize,
    /// The Dockerfile line of the instruction being run (for messages).
    pub line: usize,
}

/// Builds stage `index`; returns its final state and config.
pub(crate) fn run_stage(
    job: &Job<'_>,
    index: usize,
    out: StageOut<'_, '_>,
    first_step: usize,
    total: usize,
    is_target: bool,
) -> Result<(BuildState, ImageConfig)> {
    let stage = &job.df.stages[index];
    let mut s = StageRun {
        job,
        out,
        index,
        state: BuildState::default(),
        config: ImageConfig::default(),
        args: Vec::new(),
        cmd_set: false,
        step: first_step,
        total,
        line: stage.from.line,
    };
    s.header(&stage.from.text)?;
    s.from(&stage.from)?;
    for ins in &stage.instructions {
        s.cancelled()?;
        s.step += 1;
        s.line = ins.line;
        s.header(&ins.text)?;
        s.dispatch(ins)?;
    }
    if is_target && !job.opts.labels.is_empty() {
        s.step += 1;
        s.labels_step()?;
    }
    if s.state.config.is_empty() {
        return Err(Error::Invalid(format!(
            "stage {} makes no image: FROM scratch with nothing after it",
            stage.name.clone().unwrap_or_else(|| index.to_string())
        )));
    }
    Ok((s.state, s.config))
}

impl StageRun<'_, '_> {
    pub fn say(&self, text: impl Into<String>) -> Result<()> {
        if self.out.say(text) {
            Ok(())
        } else {
            self.job.cancel.cancel();
            Err(Error::Cancelled)
        }
    }

    pub fn cancelled(&self) -> Result<()> {
        if self.job.cancel.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    fn header(&self, text: &str) -> Result<()> {
        self.say(format!("Step {}/{} : {}\n", self.step, self.total, text))
    }

    pub fn step_number(&self) -> usize {
        self.step
    }

    pub fn total_steps(&self) -> usize {
        self.total
    }

    /// ` ---> <id>` after a step.
    pub fn done(&self) -> Result<()> {
        self.say(format!(" ---> {}\n", short(&self.state.config)))
    }

    /// Variables for expansion: ARGs, then ENV (which wins over an ARG of the same name).
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut v = self.args.clone();
        for e in self.config.config.env.iter().flatten() {
            let (k, val) = e.split_once('=').unwrap_or((e, ""));
            v.push((k.to_string(), val.to_string()));
        }
        v
    }

    pub fn expand(&self, raw: &str) -> Result<String> {
        process_word(raw, self.job.df.escape, &self.vars()).map_err(|e| self.word_error(e))
    }

    fn expand_words(&self, raw: &str) -> Result<Vec<String>> {
        process_words(raw, self.job.df.escape, &self.vars()).map_err(|e| self.word_error(e))
    }

    fn word_error(&self, e: words::WordError) -> Error {
        Error::Invalid(format!("Dockerfile line {}: {}", self.line, e.message))
    }

    pub fn invalid(&self, msg: impl std::fmt::Display) -> Error {
        Error::Invalid(format!("Dockerfile line {}: {msg}", self.line))
    }

    /// The previous result of a step with this key, unless `--no-cache`.
    pub fn lookup(&self, key: &str) -> Option<BuildState> {
        if self.job.opts.no_cache {
            return None;
        }
        self.job.cache.get(key).cloned()
    }

    /// Takes a cached state: ` ---> Using cache` and its id.
    pub fn hit(&mut self, state: BuildState) -> Result<()> {
        self.config = self.job.store.state_config(&state)?;
        self.state = state;
        self.say(" ---> Using cache\n")?;
        self.done()
    }

    /// Records the step: `config` (the new settings, history not yet added) on top of the
    /// current state, with the layer in `upper` if the step changed files.
    pub fn commit(
        &mut self,
        key: &str,
        mut config: ImageConfig,
        upper: Option<&Path>,
        created_by: &str,
    ) -> Result<()> {
        let now = berth_image::timefmt::now_rfc3339();
        // A step that changed no file adds no layer (as dockerd: `empty_layer` history).
        let upper = upper.filter(|u| !berth_image::dir_is_empty(u));
        config.created = Some(now.clone());
        config.history.push(History {
            created: Some(now),
            created_by: Some(created_by.to_string()),
            empty_layer: upper.is_none(),
            ..History::default()
        });
        let state = self
            .job
            .store
            .commit_step(key, &self.state, upper, config)?;
        self.config = self.job.store.state_config(&state)?;
        self.state = state;
        self.done()
    }

    /// A new scratch overlay over the current state.
    pub fn mount(&self, what: &str) -> Result<StepFs> {
        StepFs::mount(
            self.job.store,
            self.job.step_dir(what),
            &self.state,
            &self.config.rootfs.diff_ids,
            &self.job.empty_dir(),
        )
    }

    /// The working directory (absolute) for relative paths.
    pub fn workdir(&self) -> String {
        self.config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// The shell of shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.config
            .config
            .shell
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    pub fn argv(&self, c: &CmdLine) -> Vec<String> {
        match c {
            CmdLine::Exec(v) => v.clone(),
            CmdLine::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn from(&mut self, ins: &Instruction) -> Result<()> {
        let Command::From(f) = &ins.command else {
            return Err(self.invalid("a stage must start with FROM"));
        };
        let global = self.job.global_vars.clone();
        let name =
            process_word(&f.image, self.job.df.escape, &global).map_err(|e| self.word_error(e))?;
        if let Some(p) = &f.platform {
            let p = process_word(p, self.job.df.escape, &global).map_err(|e| self.word_error(e))?;
            if !p.is_empty() && p != host_platform() {
                return Err(self.invalid(format!(
                    "FROM --platform={p}: berth builds for {} only",
                    host_platform()
                )));
            }
        }
        if name.eq_ignore_ascii_case("scratch") {
            self.config = ImageConfig {
                architecture: host_platform().trim_start_matches("linux/").to_string(),
                os: "linux".into(),
                ..ImageConfig::default()
            };
            self.state = BuildState::default();
            set_default_path(&mut self.config);
            return self.say(" ---> \n");
        }
        if name.is_empty() {
            return Err(self.invalid("FROM names no image"));
        }
        if let Some(i) = self.job.stage_by_name(&name, self.index) {
            let (state, config) = self.job.stage_result(i).ok_or(Error::Cancelled)?;
            self.state = state;
            self.config = config;
        } else {
            let image = self.base_image(&name, "FROM")?;
            self.state = self.job.store.state_of(&image)?;
            self.config = image.config.clone();
            // What described how the base was made describes nothing of the new image.
            for k in ["comment", "container", "container_config", "docker_version"] {
                self.config.extra.remove(k);
            }
            set_default_path(&mut self.config);
        }
        self.done()?;
        self.triggers()
    }

    /// An image a stage starts from (`FROM`) or copies from (`COPY --from`): local, or
    /// pulled by the host (always with `--pull`), as dockerd's classic builder gets them.
    pub fn base_image(&self, name: &str, what: &str) -> Result<berth_image::Image> {
        let pull = |this: &Self| {
            let out = this.out;
            let cancel = this.job.cancel;
            let mut progress = |m: Value| !cancel.is_cancelled() && out.progress(m);
            let pulled = this.job.host.pull(name, &mut progress);
            this.cancelled()?;
            pulled.map_err(Error::BaseImage)
        };
        if self.job.opts.pull {
            return pull(self);
        }
        match self.job.store.get(name) {
            Ok(i) => Ok(i),
            Err(berth_image::Error::NotFound(_)) => pull(self),
            Err(berth_image::Error::InvalidReference { .. }) => {
                Err(self.invalid(format!("invalid reference format: {what} {name:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The base image's ONBUILD triggers run right after FROM, and leave the image.
    fn triggers(&mut self) -> Result<()> {
        let Some(triggers) = self.config.config.on_build.take().filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        self.say(format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        ))?;
        for t in &triggers {
            let ins = dockerfile::parse_instruction(t, self.job.df.escape)
                .map_err(|e| self.invalid(format!("ONBUILD trigger {t:?}: {}", e.message)))?;
            self.say(format!(" ---> Running trigger: {}\n", ins.text))?;
            self.dispatch(&ins)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, ins: &Instruction) -> Result<()> {
        match &ins.command {
            Command::Arg(decls) => self.arg(decls),
            Command::Run(r) => run::run(self, ins, r),
            Command::Copy(c) => copy::copy(self, ins, c, false),
            Command::Add(c) => copy::copy(self, ins, c, true),
            Command::Workdir(w) => self.workdir_step(ins, w),
            Command::From(_) => Err(self.invalid("FROM inside a stage")),
            other => self.metadata(ins, other),
        }
    }

    fn arg(&mut self, decls: &[ArgDecl]) -> Result<()> {
        for d in decls {
            self.job
                .used_args
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(d.name.clone());
            let given = self.job.opts.build_args.get(&d.name).cloned().flatten();
            let value = match (given, &d.default) {
                (Some(v), _) => Some(v),
                (None, Some(def)) => Some(self.expand(def)?),
                (None, None) => self
                    .job
                    .global_vars
                    .iter()
                    .find(|(k, _)| *k == d.name)
                    .map(|(_, v)| v.clone()),
            };
            self.args.retain(|(k, _)| *k != d.name);
            if let Some(v) = value {
                self.args.push((d.name.clone(), v));
            }
        }
        self.done()
    }

    fn workdir_step(&mut self, ins: &Instruction, raw: &str) -> Result<()> {
        let w = self.expand(raw)?;
        if w.is_empty() {
            return Err(self.invalid("WORKDIR needs a path"));
        }
        let dir = if w.starts_with('/') {
            clean(&w)
        } else {
            clean(&format!("{}/{w}", self.workdir()))
        };
        let mut cfg = self.config.clone();
        cfg.config.working_dir = Some(dir.clone());
        let key = Key::new(&self.state.config, "WORKDIR")
            .part(&dir)
            .part(&ins.text)
            .finish();
        if let Some(hit) = self.lookup(&key) {
            return self.hit(hit);
        }
        let mut fs = self.mount("workdir")?;
        Root::open(&fs.rootfs)?.mkdir_all(&dir, Owner::default())?;
        fs.unmount()?;
        let created = std::fs::read_dir(&fs.upper)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        let upper = fs.upper.clone();
        self.commit(
            &key,
            cfg,
            created.then_some(upper.as_path()),
            &format!("WORKDIR {dir}"),
        )
    }

    /// Instructions that change only the config.
    fn metadata(&mut self, ins: &Instruction, cmd: &Command) -> Result<()> {
        let mut cfg = self.config.clone();
        let c = &mut cfg.config;
        match cmd {
            Command::Env(kvs) => {
                for (k, v) in self.expand_pairs(kvs)? {
                    let env = c.env.get_or_insert_with(Vec::new);
                    env.retain(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) != k);
                    env.push(format!("{k}={v}"));
                }
            }
            Command::Label(kvs) => {
                let labels = c.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in self.expand_pairs(kvs)? {
                    labels.insert(k, v);
                }
            }
            Command::Expose(raw) => {
                let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
                for r in raw {
                    for p in self.expand_words(r)? {
                        for port in expose_ports(&p).map_err(|e| self.invalid(e))? {
                            ports.insert(port, json!({}));
                        }
                    }
                }
            }
            Command::Volume(raw) => {
                let vols = c.volumes.get_or_insert_with(BTreeMap::new);
                for r in raw {
                    let v = self.expand(r)?;
                    if v.trim().is_empty() {
                        return Err(self.invalid("VOLUME specified can not be an empty string"));
                    }
                    vols.insert(v, json!({}));
                }
            }
            Command::User(u) => {
                let u = self.expand(u)?;
                c.user = Some(u);
            }
            Command::Stopsignal(s) => {
                let s = self.expand(s)?;
                berth_runtime::parse_signal(&s)
                    .map_err(|_| self.invalid(format!("STOPSIGNAL: invalid signal {s:?}")))?;
                c.stop_signal = Some(s);
            }
            Command::Cmd(cl) => {
                c.cmd = Some(self.argv(cl));
                self.cmd_set = true;
            }
            Command::Entrypoint(cl) => {
                c.entrypoint = Some(self.argv(cl));
                if !self.cmd_set {
                    c.cmd = None;
                }
            }
            Command::Shell(v) => c.shell = Some(v.clone()),
            Command::Healthcheck(h) => c.healthcheck = Some(self.healthcheck(h)),
            Command::Onbuild(t) => c.on_build.get_or_insert_with(Vec::new).push(t.clone()),
            Command::Maintainer(m) => cfg.author = Some(m.clone()),
            other => {
                return Err(self.invalid(format!("{} is not a config instruction", other.keyword())))
            }
        }
        self.config_step(ins.command.keyword(), &ins.text, cfg)
    }

    /// Commits a config-only change (or takes it from the cache).
    fn config_step(&mut self, keyword: &str, text: &str, cfg: ImageConfig) -> Result<()> {
        let canon = serde_json::to_string(&(&cfg.config, &cfg.author))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let key = Key::new(&self.state.config, keyword)
            .part(&canon)
            .part(text)
            .finish();
        if let Some(hit) = self.lookup(&key) {
            return self.hit(hit);
        }
        self.commit(&key, cfg, None, text)
    }

    fn expand_pairs(&self, kvs: &[KeyValue]) -> Result<Vec<(String, String)>> {
        kvs.iter()
            .map(|kv| Ok((self.expand(&kv.key)?, self.expand(&kv.value)?)))
            .collect()
    }

    fn healthcheck(&self, h: &Health) -> Value {
        match h {
            Health::None => json!({"Test": ["NONE"]}),
            Health::Check {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => {
                let test: Vec<String> = match test {
                    CmdLine::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                    CmdLine::Exec(v) => {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(v.iter().cloned());
                        t
                    }
                };
                let mut v = json!({"Test": test});
                for (k, x) in [
                    ("Interval", interval),
                    ("Timeout", timeout),
                    ("StartPeriod", start_period),
                    ("StartInterval", start_interval),
                    ("Retries", retries),
                ] {
                    if let Some(x) = x {
                        v[k] = json!(x);
                    }
                }
                v
            }
        }
    }

    /// `--label`s of the build, as a last LABEL step of the target (as dockerd adds them).
    fn labels_step(&mut self) -> Result<()> {
        let text = self
            .job
            .opts
            .labels
            .iter()
            .map(|(k, v)| format!("{k:?}='{v}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let text = format!("LABEL {text}");
        self.header(&text)?;
        let mut cfg = self.config.clone();
        let labels = cfg.config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &self.job.opts.labels {
            labels.insert(k.clone(), v.clone());
        }
        self.config_step("LABEL", &text, cfg)
    }

    /// The environment of a RUN: the image's, PATH if it has none, then the stage's ARGs
    /// (an ENV of the same name wins) and the proxy build args.
    pub fn run_env(&self) -> Vec<String> {
        let mut env: Vec<String> = self.config.config.env.clone().unwrap_or_default();
        let has = |env: &[String], k: &str| {
            env.iter()
                .any(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == k)
        };
        if !has(&env, "PATH") {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        for (k, v) in &self.args {
            if !has(&env, k) {
                env.push(format!("{k}={v}"));
            }
        }
        for p in super::PREDEFINED_ARGS {
            if let Some(Some(v)) = self.job.opts.build_args.get(p) {
                if !has(&env, p) {
                    env.push(format!("{p}={v}"));
                }
            }
        }
        env
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, … as ExposedPorts keys.
fn expose_ports(p: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = match p.split_once('/') {
        Some((a, b)) => (a, b.to_ascii_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("EXPOSE {p}: invalid proto {proto:?}"));
    }
    let bad = || format!("EXPOSE {p}: invalid port");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let n = ports.parse::<u16>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

/// A Linux stage's config gets the default PATH when its base has none, as dockerd's
/// classic builder adds it to every stage (and so to the image it makes).
fn set_default_path(config: &mut ImageConfig) {
    let env = config.config.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.split('=').next() == Some("PATH")) {
        env.push(DEFAULT_PATH.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports() {
        assert_eq!(expose_ports("80"), Ok(vec!["80/tcp".to_string()]));
        assert_eq!(expose_ports("53/UDP"), Ok(vec!["53/udp".to_string()]));
        assert_eq!(expose_ports("8000-8002").map(|v| v.len()), Ok(3));
        assert!(expose_ports("x").is_err());
        assert!(expose_ports("80/abc").is_err());
    }
}
