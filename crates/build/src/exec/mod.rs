//! The executor: a build from context to tagged image. The Dockerfile's stages form a graph
//! (`FROM stage`, `COPY --from=stage`); the stages the target needs run, those that do not
//! depend on each other in parallel, each step looked up in the cache first (a hit costs
//! no container, no process and no write), and only the final state becomes an image.

mod copy;
mod key;
mod mount;
mod output;
mod run;
mod stage;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use berth_image::{BuildCache, BuildState, Image, ImageConfig, Store};
use serde_json::Value;

use crate::cancel::Cancel;
use crate::context::Context;
use crate::dockerfile::{self, Command, Dockerfile};
use crate::error::{Error, Result};
use crate::hygiene;
use crate::ignore::{clean, Ignore};
use crate::sandbox::Sandbox;

pub use output::{Message, Sink};
use output::{Ordered, StageOut};

/// What a build is asked to do: the `/build` query of the Engine API.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `-t`, each `name[:tag]`.
    pub tags: Vec<String>,
    /// `--build-arg`; a `None` value means "not given" (the ARG's default stays).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`: run every step (and record the results for the next build).
    pub no_cache: bool,
    /// `--pull`: ask the host for a fresh copy of every base image.
    pub pull: bool,
    /// `--label`, added to the final image as a last LABEL step (as dockerd does).
    pub labels: BTreeMap<String, String>,
    /// `--network` of RUN steps: `default` (or `bridge`, or empty: the default bridge
    /// network), `none`, `host`, or the name of a user-defined network.
    pub network: String,
    /// `--platform`; only this machine's is supported.
    pub platform: Option<String>,
    /// `--cache-from`: when given, only steps on these images' layer chains are cache hits
    /// (none when no such image is here), as dockerd's classic builder does.
    pub cache_from: Vec<String>,
    /// `--add-host` (`name:ip`): lines added to the /etc/hosts of RUN containers.
    pub extra_hosts: Vec<String>,
}

/// A RUN container the host makes the OCI spec of.
#[derive(Debug)]
pub struct RunContainer<'a> {
    pub id: &'a str,
    /// The mounted overlay (the spec's root).
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub user: &'a str,
    /// `default` (the default bridge network), `none`, `host`, or a user-defined network's
    /// name.
    pub network: &'a str,
    pub hostname: &'a str,
    /// `--add-host` entries (`name:ip`) for its /etc/hosts.
    pub extra_hosts: &'a [String],
    /// A directory of this step the host may write files into (hosts, resolv.conf).
    pub dir: &'a Path,
}

/// What the host set up for a RUN container: its OCI spec, and what it holds for the
/// container while the step runs (a network namespace on a bridge, an address, a DNS
/// server), released when the builder drops it after the container is gone.
pub struct RunSetup {
    pub spec: Value,
    pub hold: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for RunSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSetup")
            .field("spec", &self.spec)
            .field("hold", &self.hold.is_some())
            .finish()
    }
}

/// What a download of ADD brought (its bytes are in the file the builder named).
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The last path segment of the (final, after redirects) URL, if it has one.
    pub name: Option<String>,
    /// `Last-Modified`, in Unix seconds.
    pub last_modified: Option<i64>,
}

/// What the builder needs from the daemon around it.
pub trait Host: Send + Sync {
    /// The OCI runtime spec (config.json) of a RUN container: the daemon's defaults
    /// (capabilities, seccomp, masked paths, /etc files, network) for these settings.
    fn run_spec(&self, c: &RunContainer<'_>) -> std::result::Result<RunSetup, String>;
    /// Fetches `reference` from its registry (a base image that is not local, or `--pull`).
    /// `progress` gets the pull's JSON messages as the daemon streams them for a pull
    /// (`{"status": "Pulling fs layer", "id": …}`); it returns false when nobody listens
    /// any more, and the pull then stops.
    fn pull(
        &self,
        reference: &str,
        progress: &mut dyn FnMut(Value) -> bool,
    ) -> std::result::Result<Image, String>;
    /// Downloads `url` (http or https, redirects followed) into the file `dest`.
    fn fetch(&self, url: &str, dest: &Path) -> std::result::Result<Fetched, String>;
}

/// The builder of a daemon: its sandbox process and scratch space.
#[derive(Debug)]
pub struct Builder {
    sandbox: Sandbox,
    scratch: PathBuf,
    /// Hygiene findings per image id, so a fully cached build does not walk the layers again.
    findings: Mutex<HashMap<String, Vec<hygiene::Finding>>>,
    /// What `COPY --from` learnt of states' roots (states never change).
    memo: Mutex<HashMap<String, copy::Memo>>,
}

/// Shared by the stages of one build.
pub(crate) struct Job<'a> {
    pub store: &'a Store,
    pub sandbox: &'a Sandbox,
    pub host: &'a dyn Host,
    pub opts: &'a BuildOptions,
    pub ctx: &'a Context,
    pub df: &'a Dockerfile,
    pub cache: BuildCache,
    pub dir: PathBuf,
    pub cancel: &'a Cancel,
    pub memo: &'a Mutex<HashMap<String, copy::Memo>>,
    pub global_vars: Vec<(String, String)>,
    pub used_args: Mutex<HashSet<String>>,
    results: Mutex<HashMap<usize, Option<(BuildState, ImageConfig)>>>,
    done: Condvar,
    seq: std::sync::atomic::AtomicU64,
}

impl Job<'_> {
    /// A fresh scratch directory name for a step.
    pub fn step_dir(&self, what: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.join(format!("{what}-{n}"))
    }

    /// An empty directory (the lower of a `FROM scratch` overlay).
    pub fn empty_dir(&self) -> PathBuf {
        self.dir.join("empty")
    }

    /// Waits for stage `i` to finish; None if it failed.
    pub fn stage_result(&self, i: usize) -> Option<(BuildState, ImageConfig)> {
        let mut r = self.results.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = r.get(&i) {
                return v.clone();
            }
            r = self.done.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn set_result(&self, i: usize, v: Option<(BuildState, ImageConfig)>) {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(i, v);
        self.done.notify_all();
    }

    /// The stage a `FROM`/`--from` name means: by `AS` name, or by index.
    pub fn stage_by_name(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.df.stages[..before]
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map(|s| s.index)
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
    }
}

/// The host's platform, as image configs and `--platform` spell it.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("linux/{arch}")
}

impl Builder {
    /// A builder with its sandbox process and scratch directory; what a crashed daemon left
    /// there (mounts, RUN containers, files) is cleaned up first.
    pub fn new(sandbox: Sandbox, scratch: PathBuf) -> Result<Builder> {
        crate::private::create_dir(&scratch)?;
        recover(&sandbox, &scratch);
        Ok(Builder {
            sandbox,
            scratch,
            findings: Mutex::new(HashMap::new()),
            memo: Mutex::new(HashMap::new()),
        })
    }

    /// The runtime state directory of RUN containers.
    pub fn runtime_root(&self) -> &Path {
        self.sandbox.runtime_root()
    }

    /// Builds the context read from `context` (a tar) as `opts` says; the output goes to
    /// `sink`. Returns the image, tagged; on any error nothing is tagged.
    pub fn build(
        &self,
        store: &Store,
        host: &dyn Host,
        opts: &BuildOptions,
        context: &mut dyn Read,
        sink: Sink<'_>,
        cancel: &Cancel,
    ) -> Result<Image> {
        for t in &opts.tags {
            berth_image::Reference::parse(t)
                .map_err(|e| Error::Invalid(format!("invalid tag {t:?}: {e}")))?;
        }
        if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty()) {
            if p != host_platform() {
                return Err(Error::Invalid(format!(
                    "berth builds for {} only, not --platform {p}",
                    host_platform()
                )));
            }
        }
        let dir = self.scratch.join(random_hex(12));
        crate::private::create_dir(&dir)?;
        let _cleanup = ScratchGuard(dir.clone());

        let mut ctx = Context::from_tar(context, &dir.join("context.tar"))?;
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let text = read_dockerfile(&ctx, &name)?;
        if let Some(p) = ctx.resolve(".dockerignore", true)? {
            let bytes = ctx.read(&p)?;
            let ignore = Ignore::parse(&String::from_utf8_lossy(&bytes)).map_err(Error::Invalid)?;
            ctx.apply_ignore(&ignore);
        }
        let df = dockerfile::parse(&text)?;
        self.run(store, host, opts, &ctx, &df, &dir, sink, cancel)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        store: &Store,
        host: &dyn Host,
        opts: &BuildOptions,
        ctx: &Context,
        df: &Dockerfile,
        dir: &Path,
        sink: Sink<'_>,
        cancel: &Cancel,
    ) -> Result<Image> {
        let target = match opts.target.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => df
                .stages
                .iter()
                .find(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .map(|s| s.index)
                .ok_or_else(|| {
                    Error::Invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => df.stages.len() - 1,
        };
        let global_vars = global_vars(df, opts)?;
        let deps = stage_deps(df, opts, &global_vars)?;
        let needed = needed_stages(&deps, target);
        let label_step = usize::from(!opts.labels.is_empty());
        let total: usize = needed
            .iter()
            .map(|i| df.stages[*i].instructions.len() + 1)
            .sum::<usize>()
            + label_step;
        let cache = if opts.no_cache {
            BuildCache::default()
        } else if !opts.cache_from.is_empty() {
            store.build_cache_from(&opts.cache_from)?
        } else {
            store.build_cache()?
        };
        let mut used = HashSet::new();
        for a in &df.global_args {
            if let Command::Arg(decls) = &a.command {
                used.extend(decls.iter().map(|d| d.name.clone()));
            }
        }
        let job = Job {
            store,
            sandbox: &self.sandbox,
            host,
            opts,
            ctx,
            df,
            cache,
            dir: dir.to_path_buf(),
            cancel,
            memo: &self.memo,
            global_vars,
            used_args: Mutex::new(used),
            results: Mutex::new(HashMap::new()),
            done: Condvar::new(),
            seq: std::sync::atomic::AtomicU64::new(0),
        };
        let ordered = Ordered::new(sink, needed.len());
        let errors: Mutex<Vec<(usize, Error)>> = Mutex::new(Vec::new());
        let mut first_step = Vec::new();
        let mut n = 1;
        for i in &needed {
            first_step.push(n);
            n += df.stages[*i].instructions.len() + 1;
        }
        std::thread::scope(|s| {
            for (pos, &i) in needed.iter().enumerate() {
                let job = &job;
                let ordered = &ordered;
                let errors = &errors;
                let first = first_step[pos];
                let is_target = i == target;
                s.spawn(move || {
                    let out = StageOut { ordered, pos };
                    let r = stage::run_stage(job, i, out, first, total, is_target);
                    match r {
                        Ok(v) => job.set_result(i, Some(v)),
                        Err(e) => {
                            job.set_result(i, None);
                            if !matches!(e, Error::Cancelled) || !job.cancel.is_cancelled() {
                                errors
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push((pos, e));
                            }
                            // One stage failed: the others stop too.
                            job.cancel.cancel();
                        }
                    }
                    ordered.finish(pos);
                });
            }
        });
        let mut errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
        errors.sort_by_key(|(pos, e)| (matches!(e, Error::Cancelled), *pos));
        if let Some((_, e)) = errors.into_iter().next() {
            return Err(e);
        }
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let (state, _config) = job.stage_result(target).ok_or(Error::Cancelled)?;
        let image = store.register_built(&state, &opts.tags)?;

        let unused: Vec<String> = {
            let used = job.used_args.lock().unwrap_or_else(|e| e.into_inner());
            opts.build_args
                .keys()
                .filter(|k| !used.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        if !unused.is_empty() {
            ordered.emit_final(Message::Stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            )));
        }
        let findings = self.findings_of(store, &image, df, target);
        if !findings.is_empty() {
            let mut text = format!(
                "Image hygiene: {} warning{} (berth image lint {} for details)\n",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" },
                opts.tags
                    .first()
                    .cloned()
                    .unwrap_or_else(|| short(&image.id).to_string())
            );
            for f in &findings {
                text.push_str(&format!(" [WARNING] {f}\n"));
            }
            ordered.emit_final(Message::Stream(text));
        }
        ordered.emit_final(Message::ImageId(image.id.clone()));
        ordered.emit_final(Message::Stream(format!(
            "Successfully built {}\n",
            short(&image.id)
        )));
        for t in &opts.tags {
            let shown = berth_image::Reference::parse(t)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| t.clone());
            ordered.emit_final(Message::Stream(format!("Successfully tagged {shown}\n")));
        }
        Ok(image)
    }

    /// The Dockerfile's and the image's hygiene findings (the image part remembered per id).
    fn findings_of(
        &self,
        store: &Store,
        image: &Image,
        df: &Dockerfile,
        target: usize,
    ) -> Vec<hygiene::Finding> {
        let mut out = hygiene::lint_dockerfile(df, Some(target));
        let known = self
            .findings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&image.id)
            .cloned();
        let image_findings = match known {
            Some(f) => f,
            None => {
                let f = hygiene::lint_layers(store, image).unwrap_or_default();
                self.findings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(image.id.clone(), f.clone());
                f
            }
        };
        out.extend(image_findings);
        out
    }
}

/// Build args anyone may pass without declaring them (dockerd's list).
pub(crate) const PREDEFINED_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The first 12 hex digits of an id.
pub(crate) fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

/// Random hex from the kernel (ids of builds and RUN containers).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    hex::encode(buf)
}

/// Reads the Dockerfile from the context (dockerd falls back to `dockerfile`).
fn read_dockerfile(ctx: &Context, name: &str) -> Result<String> {
    let path = clean(&format!("/{name}"));
    let found = ctx.resolve(&path, true)?;
    let found = match found {
        Some(p)
            if ctx.entry(&p).is_some_and(|e| {
                matches!(
                    e.kind,
                    crate::context::Kind::File | crate::context::Kind::Hardlink(_)
                )
            }) =>
        {
            p
        }
        _ if name == "Dockerfile" => ctx
            .resolve("dockerfile", true)?
            .ok_or_else(|| Error::Invalid(format!("Cannot locate specified Dockerfile: {name}")))?,
        _ => {
            return Err(Error::Invalid(format!(
                "Cannot locate specified Dockerfile: {name}"
            )))
        }
    };
    let bytes = ctx.read(&found)?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Invalid(format!("the Dockerfile {name} is not UTF-8 text")))
}

/// The platform ARGs BuildKit defines in the global scope.
fn platform_args() -> Vec<(String, String)> {
    let p = host_platform();
    let arch = p.trim_start_matches("linux/").to_string();
    vec![
        ("TARGETPLATFORM".into(), p.clone()),
        ("TARGETOS".into(), "linux".into()),
        ("TARGETARCH".into(), arch.clone()),
        ("TARGETVARIANT".into(), String::new()),
        ("BUILDPLATFORM".into(), p),
        ("BUILDOS".into(), "linux".into()),
        ("BUILDARCH".into(), arch),
        ("BUILDVARIANT".into(), String::new()),
    ]
}

/// The values of the ARGs before the first FROM (build args win over defaults).
fn global_vars(df: &Dockerfile, opts: &BuildOptions) -> Result<Vec<(String, String)>> {
    let mut vars = platform_args();
    for ins in &df.global_args {
        let Command::Arg(decls) = &ins.command else {
            continue;
        };
        for d in decls {
            let given = opts.build_args.get(&d.name).cloned().flatten();
            let value = match (given, &d.default) {
                (Some(v), _) => Some(v),
                (None, Some(def)) => Some(
                    dockerfile::words::process_word(def, df.escape, &vars)
                        .map_err(|e| Error::Invalid(format!("line {}: {}", ins.line, e.message)))?,
                ),
                (None, None) => None,
            };
            vars.retain(|(k, _)| k != &d.name);
            if let Some(v) = value {
                vars.push((d.name.clone(), v));
            }
        }
    }
    Ok(vars)
}

/// For each stage, the stages it needs (FROM a stage, COPY --from a stage).
fn stage_deps(
    df: &Dockerfile,
    opts: &BuildOptions,
    global: &[(String, String)],
) -> Result<Vec<Vec<usize>>> {
    let mut deps = Vec::new();
    for s in &df.stages {
        let mut d = Vec::new();
        let by_name = |name: &str| -> Option<usize> {
            let lower = name.to_ascii_lowercase();
            df.stages[..s.index]
                .iter()
                .find(|x| x.name.as_deref() == Some(lower.as_str()))
                .map(|x| x.index)
        };
        if let Command::From(f) = &s.from.command {
            let image = dockerfile::words::process_word(&f.image, df.escape, &global.to_vec())
                .map_err(|e| Error::Invalid(format!("line {}: {}", s.from.line, e.message)))?;
            if let Some(i) = by_name(&image) {
                d.push(i);
            }
        }
        // ARG defaults of the stage, as they would be when a `--from` is reached.
        let mut vars: Vec<(String, String)> = Vec::new();
        for ins in &s.instructions {
            match &ins.command {
                Command::Arg(decls) => {
                    for a in decls {
                        let v = opts
                            .build_args
                            .get(&a.name)
                            .cloned()
                            .flatten()
                            .or_else(|| a.default.clone())
                            .or_else(|| {
                                global
                                    .iter()
                                    .find(|(k, _)| *k == a.name)
                                    .map(|(_, v)| v.clone())
                            });
                        if let Some(v) = v {
                            vars.push((a.name.clone(), v));
                        }
                    }
                }
                Command::Copy(c) => {
                    if let Some(from) = &c.from {
                        let name = dockerfile::words::process_word(from, df.escape, &vars)
                            .unwrap_or_else(|_| from.clone());
                        let idx = by_name(&name)
                            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < s.index));
                        if let Some(i) = idx {
                            d.push(i);
                        }
                    }
                }
                _ => {}
            }
        }
        d.sort_unstable();
        d.dedup();
        deps.push(d);
    }
    Ok(deps)
}

/// The target and every stage it needs, in Dockerfile order.
fn needed_stages(deps: &[Vec<usize>], target: usize) -> Vec<usize> {
    let mut need = vec![false; deps.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need[i] {
            need[i] = true;
            todo.extend(deps[i].iter().copied());
        }
    }
    (0..deps.len()).filter(|i| need[*i]).collect()
}

/// Removes a build's scratch directory (unmounting what a step left mounted).
struct ScratchGuard(PathBuf);

impl Drop for ScratchGuard {
    fn drop(&mut self) {
        unmount_under(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Unmounts everything mounted at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = berth_image::OverlayMount::unmount(Path::new(&p));
    }
}

/// What a daemon that died mid-build left: RUN containers (killed and deleted), mounts and
/// scratch files.
fn recover(sandbox: &Sandbox, scratch: &Path) {
    let runtime = berth_runtime::Runtime::new(sandbox.runtime_root());
    for c in runtime.list().unwrap_or_default() {
        let _ = c.delete(true);
    }
    unmount_under(scratch);
    if let Ok(rd) = std::fs::read_dir(scratch) {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
