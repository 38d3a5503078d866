//! `berth build` (docker's classic builder command line: the context goes to `POST /build`
//! as a tar, the daemon's messages come back as they happen), and the image hygiene verbs
//! `berth image lint` and `berth image analyze`, which use berth's extension endpoints.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_build::ignore::Ignore;
use clap::{ArgAction, Args};
use hyper::Method;
use serde_json::{json, Map, Value};

use crate::client::http::{bytes_body, each_json, enc, with_query, Client};
use crate::client::units::human_size_prec;
use crate::client::StatusError;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long)]
    tag: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long)]
    file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Set metadata for an image
    #[arg(long)]
    label: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    network: String,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    rm: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    force_rm: bool,
    #[arg(value_name = "PATH | URL | -", value_hint = clap::ValueHint::DirPath)]
    context: String,
}

/// `berth builder …`.
#[derive(Debug, clap::Subcommand)]
pub enum BuilderSub {
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Print the findings as JSON
    #[arg(long)]
    format: Option<String>,
    /// An image, or a Dockerfile (a path, or - for stdin)
    #[arg(value_name = "IMAGE|DOCKERFILE|-")]
    target: String,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// List every change of every layer (default: the first 10 of each)
    #[arg(short = 'a', long)]
    all: bool,
    /// Print the analysis as JSON
    #[arg(long)]
    format: Option<String>,
    #[arg(value_name = "IMAGE")]
    image: String,
}

/// The context tar, and the Dockerfile's name in it.
struct Prepared {
    tar: Vec<u8>,
    dockerfile: String,
}

pub async fn build(c: &Client, a: BuildArgs) -> Result<()> {
    let prepared = prepare(&a)?;
    if !a.quiet {
        println!(
            "Sending build context to Docker daemon  {}",
            human_size_prec(prepared.tar.len() as f64, 4)
        );
    }
    let q = query(&a, &prepared.dockerfile);
    let resp = c
        .stream(
            Method::POST,
            &with_query("/build", &q),
            bytes_body(prepared.tar),
            &[
                ("Content-Type", "application/x-tar".into()),
                (
                    "X-Registry-Config",
                    crate::client::credentials::registry_config_header(),
                ),
            ],
        )
        .await?;
    let mut id = String::new();
    let mut failure: Option<(String, i32)> = None;
    let mut out = std::io::stdout().lock();
    // Steps' text and a base image's pull progress, as the docker CLI shows them.
    let mut display = crate::client::progress::Display::new(crate::client::stream::stdout_is_tty());
    each_json(resp.into_body(), |m| {
        if let Some(e) = m["error"].as_str().or(m["errorDetail"]["message"].as_str()) {
            let code = m["errorDetail"]["code"]
                .as_i64()
                .filter(|c| *c > 0)
                .unwrap_or(1);
            failure = Some((e.to_string(), code as i32));
            return Ok(false);
        }
        if let Some(i) = m["aux"]["ID"].as_str() {
            id = i.to_string();
        }
        if a.quiet {
            // Quiet: the daemon sends only the image id.
            if let Some(s) = m["stream"]
                .as_str()
                .filter(|s| s.trim().starts_with("sha256:"))
            {
                id = s.trim().to_string();
            }
        } else if !m["stream"].is_null() || !m["status"].is_null() {
            let _ = display.show(&m, &mut out);
        }
        Ok(true)
    })
    .await?;
    if let Some((message, code)) = failure {
        return Err(anyhow::Error::new(StatusError {
            code,
            message: Some(message),
        }));
    }
    if a.quiet {
        println!("{id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("writing the image id to {f}"))?;
    }
    Ok(())
}

fn query(a: &BuildArgs, dockerfile: &str) -> Vec<(&'static str, String)> {
    let build_args: Map<String, Value> = a
        .build_arg
        .iter()
        .map(|b| match b.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            // `--build-arg NAME` takes NAME from the environment, as docker does.
            None => (
                b.clone(),
                std::env::var(b).map(Value::from).unwrap_or(Value::Null),
            ),
        })
        .collect();
    let labels: Map<String, Value> = a
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), json!(v))
        })
        .collect();
    let flag = |b: bool| if b { "1".to_string() } else { String::new() };
    let mut q: Vec<(&str, String)> = a.tag.iter().map(|t| ("t", t.clone())).collect();
    q.push(("dockerfile", dockerfile.to_string()));
    if !build_args.is_empty() {
        q.push(("buildargs", Value::Object(build_args).to_string()));
    }
    if !labels.is_empty() {
        q.push(("labels", Value::Object(labels).to_string()));
    }
    q.extend([
        ("nocache", flag(a.no_cache)),
        ("pull", flag(a.pull)),
        ("q", flag(a.quiet)),
        ("rm", if a.rm { "1".into() } else { "0".into() }),
        ("forcerm", flag(a.force_rm)),
        ("target", a.target.clone().unwrap_or_default()),
        ("networkmode", a.network.clone()),
        ("platform", a.platform.clone().unwrap_or_default()),
        ("version", "1".into()),
    ]);
    q.retain(|(_, v)| !v.is_empty());
    q
}

/// The context as the daemon wants it: a directory tarred (less what `.dockerignore`
/// excludes, the Dockerfile and `.dockerignore` always kept), a tar from stdin, or a
/// Dockerfile from stdin with an empty context.
fn prepare(a: &BuildArgs) -> Result<Prepared> {
    if a.context.starts_with("http://")
        || a.context.starts_with("https://")
        || a.context.starts_with("git@")
    {
        bail!("unable to prepare context: remote contexts ({}) are not supported; clone or download it first", a.context);
    }
    if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading the context from stdin")?;
        let data = decompress(data)?;
        if is_tar(&data) {
            return Ok(Prepared {
                tar: data,
                dockerfile: a.file.clone().unwrap_or_default(),
            });
        }
        // Not a tar: the Dockerfile itself, with nothing else in the context.
        let mut b = tar::Builder::new(Vec::new());
        append_bytes(&mut b, "Dockerfile", &data)?;
        return Ok(Prepared {
            tar: b.into_inner()?,
            dockerfile: "Dockerfile".into(),
        });
    }
    let ctx = PathBuf::from(&a.context);
    if !ctx.is_dir() {
        bail!("unable to prepare context: path {:?} not found", a.context);
    }
    // -f is relative to the current directory; a Dockerfile outside the context is sent
    // under a name of its own (and kept out of COPY by .dockerignore), as docker does.
    let (dockerfile, outside): (String, Option<Vec<u8>>) = match a.file.as_deref() {
        Some("-") => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .context("reading the Dockerfile from stdin")?;
            (format!(".dockerfile.{}", random_suffix()), Some(data))
        }
        Some(f) => {
            let abs = std::path::absolute(f).with_context(|| format!("resolving {f}"))?;
            let ctx_abs = std::path::absolute(&ctx)?;
            match abs.strip_prefix(&ctx_abs) {
                Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                Err(_) => {
                    let data = std::fs::read(&abs).with_context(|| {
                        format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: {f}")
                    })?;
                    (format!(".dockerfile.{}", random_suffix()), Some(data))
                }
            }
        }
        None => ("Dockerfile".into(), None),
    };
    let ignore_text = std::fs::read_to_string(ctx.join(".dockerignore")).unwrap_or_default();
    let ignore = Ignore::parse(&ignore_text).map_err(anyhow::Error::msg)?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let keep = [dockerfile.as_str(), ".dockerignore"];
    add_dir(&mut b, &ctx, "", &ignore, &keep)?;
    if let Some(data) = outside {
        append_bytes(&mut b, &dockerfile, &data)?;
        let mut text = ignore_text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{dockerfile}\n"));
        append_bytes(&mut b, ".dockerignore", text.as_bytes())?;
    }
    Ok(Prepared {
        tar: b.into_inner()?,
        dockerfile,
    })
}

/// Adds the directory's entries (sorted, so the tar is the same for the same tree).
fn add_dir(
    b: &mut tar::Builder<Vec<u8>>,
    dir: &Path,
    rel: &str,
    ignore: &Ignore,
    keep: &[&str],
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type()?;
        let excluded = ignore.excludes(&path) && !keep.contains(&path.as_str());
        if ft.is_dir() {
            // An excluded directory may still hold a re-included file (`!dir/keep`).
            if !excluded {
                append_meta(b, &e.path(), &path)?;
            }
            if !excluded || ignore.lines.iter().any(|l| l.starts_with('!')) {
                add_dir(b, &e.path(), &path, ignore, keep)?;
            }
        } else if !excluded && (ft.is_file() || ft.is_symlink()) {
            append_meta(b, &e.path(), &path)?;
        }
    }
    Ok(())
}

fn append_meta(b: &mut tar::Builder<Vec<u8>>, host: &Path, name: &str) -> Result<()> {
    let meta = std::fs::symlink_metadata(host)?;
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
    // Docker's client sends root-owned entries with their real times.
    h.set_mtime(std::os::unix::fs::MetadataExt::mtime(&meta).max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(host)?;
        b.append_link(&mut h, name, target)
            .with_context(|| format!("adding {name}"))?;
    } else if meta.is_dir() {
        b.append_data(&mut h, name, std::io::empty())
            .with_context(|| format!("adding {name}"))?;
    } else {
        // One read per file (the tar is in memory anyway): io::copy's 8 KiB reads cost
        // hundreds of system calls for a few MB.
        let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data.as_slice())
            .with_context(|| format!("adding {name}"))?;
    }
    Ok(())
}

fn append_bytes(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data)
        .with_context(|| format!("adding {name}"))
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= 262 && &data[257..262] == b"ustar"
}

/// A gzip'd context tar is unpacked here (the daemon takes a plain one).
fn decompress(data: Vec<u8>) -> Result<Vec<u8>> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data.as_slice())
            .read_to_end(&mut out)
            .context("decompressing the context")?;
        return Ok(out);
    }
    Ok(data)
}

fn random_suffix() -> String {
    let mut buf = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `berth builder prune`.
pub async fn builder(c: &Client, s: BuilderSub) -> Result<()> {
    let BuilderSub::Prune(a) = s;
    if !a.force
        && !super::confirm(
            "WARNING! This will remove all dangling build cache. Are you sure you want to continue?",
        )
    {
        return Ok(());
    }
    let path = if a.all {
        "/build/prune?all=1"
    } else {
        "/build/prune"
    };
    let v = c.post(path).await?.json()?;
    let deleted = v["CachesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted build cache objects:");
        for d in deleted {
            println!("{}", d.as_str().unwrap_or("").trim_start_matches("sha256:"));
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size_prec(v["SpaceReclaimed"].as_f64().unwrap_or(0.0), 3)
    );
    Ok(())
}

/// `berth image lint IMAGE|Dockerfile`: exits 1 when there is a warning.
pub async fn lint(c: &Client, a: LintArgs) -> Result<()> {
    let as_file = a.target == "-" || Path::new(&a.target).is_file();
    let v = if as_file {
        let text = if a.target == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        } else {
            std::fs::read_to_string(&a.target).with_context(|| format!("reading {}", a.target))?
        };
        c.call(Method::POST, "/berth/dockerfile/lint", bytes_body(text))
            .await?
            .json()?
    } else {
        c.get_json(&format!("/berth/images/{}/lint", enc(&a.target)))
            .await?
    };
    let findings = v["Findings"].as_array().cloned().unwrap_or_default();
    if a.format.as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if findings.is_empty() {
        println!("{}: no findings", a.target);
    } else {
        for f in &findings {
            let at = f["Line"]
                .as_u64()
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            println!(
                "{:<7} {:<16} {at}{}",
                f["Severity"].as_str().unwrap_or(""),
                f["Rule"].as_str().unwrap_or(""),
                f["Message"].as_str().unwrap_or("")
            );
        }
    }
    if findings.iter().any(|f| f["Severity"] == "warning") {
        return Err(crate::client::exit_status(1));
    }
    Ok(())
}

/// `berth image analyze IMAGE`: per layer, what it does and what it wastes.
pub async fn analyze(c: &Client, a: AnalyzeArgs) -> Result<()> {
    let limit = if a.all { 0 } else { 10 };
    let v = c
        .get_json(&format!(
            "/berth/images/{}/analyze?changes={limit}",
            enc(&a.image)
        ))
        .await?;
    if a.format.as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let size = |n: &Value| human_size_prec(n.as_f64().unwrap_or(0.0), 3);
    let id = v["Id"].as_str().unwrap_or("");
    let short = id
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect::<String>();
    let name = v["RepoTags"][0].as_str().unwrap_or(&a.image);
    let layers = v["Layers"].as_array().cloned().unwrap_or_default();
    println!("Image:       {name} ({short})");
    println!(
        "Size:        {} in {} layers",
        size(&v["Size"]),
        layers.len()
    );
    println!(
        "Wasted:      {} (efficiency {:.1}%)",
        size(&v["WastedBytes"]),
        v["Efficiency"].as_f64().unwrap_or(1.0) * 100.0
    );
    let user = v["User"].as_str().unwrap_or("");
    println!(
        "User:        {}",
        if user.is_empty() {
            "root (no USER)"
        } else {
            user
        }
    );
    println!();
    println!(
        "{:<5} {:>9} {:>7} {:>7} {:>7} {:>9}  CREATED BY",
        "LAYER", "SIZE", "ADDED", "CHANGED", "DELETED", "WASTED"
    );
    for l in &layers {
        let n = |k: &str| l[k].as_u64().unwrap_or(0);
        println!(
            "{:<5} {:>9} {:>7} {:>7} {:>7} {:>9}  {}",
            n("Index"),
            size(&l["Size"]),
            n("Added"),
            n("Changed"),
            n("Deleted"),
            size(&l["WastedBytes"]),
            shorten(l["CreatedBy"].as_str().unwrap_or(""), 60)
        );
    }
    for l in &layers {
        let changes = l["Changes"].as_array().cloned().unwrap_or_default();
        if changes.is_empty() {
            continue;
        }
        println!();
        println!(
            "Layer {}: {}",
            l["Index"].as_u64().unwrap_or(0),
            shorten(l["CreatedBy"].as_str().unwrap_or(""), 70)
        );
        for ch in &changes {
            println!(
                "  {} {:>9}  {}",
                ch["Kind"].as_str().unwrap_or(" "),
                size(&ch["Size"]),
                ch["Path"].as_str().unwrap_or("")
            );
        }
        if let Some(n) = l["ChangesOmitted"].as_u64().filter(|n| *n > 0) {
            println!("  … and {n} more (--all lists them)");
        }
    }
    let wasted = v["Wasted"].as_array().cloned().unwrap_or_default();
    if !wasted.is_empty() {
        println!();
        println!("Wasted space (in a layer, but deleted or replaced by a later one):");
        for w in &wasted {
            println!(
                "  {:>9}  {}  (added in layer {}, {} in layer {})",
                size(&w["Size"]),
                w["Path"].as_str().unwrap_or(""),
                w["AddedIn"].as_u64().unwrap_or(0),
                w["How"].as_str().unwrap_or("removed"),
                w["RemovedIn"].as_u64().unwrap_or(0)
            );
        }
    }
    Ok(())
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
