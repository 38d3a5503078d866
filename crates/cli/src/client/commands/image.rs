//! Image commands: images, pull, push, tag, rmi, history, load, save, import, build, login.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args, Subcommand};
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::Method;
use serde_json::{json, Value};

use super::{for_each, registry_of, split_ref, Prune};
use crate::client::credentials;
use crate::client::format::Formatter;
use crate::client::http::{each_json, empty, enc, reader_body, with_query, Client};
use crate::client::stream;
use crate::client::units::{ago, ellipsis, go_time_string, human_size_prec, rfc3339, short_id};

/// Image verbs reachable at the top level and under `image`.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Build an image from a Dockerfile
    Build(super::build::BuildArgs),
}

/// Registry verbs: at the top level only, as docker has them (no `image login`).
#[derive(Debug, Subcommand)]
pub enum Registry {
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Search Docker Hub for images
    Search(SearchArgs),
}

/// `berth image …`.
#[derive(Debug, Subcommand)]
pub enum Sub {
    #[command(flatten)]
    Common(Cmd),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Check an image or a Dockerfile for hygiene problems (unpinned bases, wasted bytes,
    /// secrets, root)
    Lint(super::build::LintArgs),
    /// Show what each layer of an image adds, changes, deletes and wastes
    Analyze(super::build::AnalyzeArgs),
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set)]
    human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    #[arg(value_name = "IMAGE")]
    name: String,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    output: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long)]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    file: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    password_stdin: bool,
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Max number of search results
    #[arg(long, value_name = "int")]
    limit: Option<u32>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Pretty-print search using a Go template
    #[arg(long)]
    format: Option<String>,
    #[arg(value_name = "TERM")]
    term: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values
    #[arg(long)]
    filter: Vec<String>,
}

/// Runs an image verb.
pub async fn run(c: &Client, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Pull(a) => {
            if a.all_tags {
                let (_, tag, digest) = split_ref(&a.name);
                if tag.is_some() || digest.is_some() {
                    bail!("tag can't be used with --all-tags/-a");
                }
                pull_all_tags(c, &a.name, a.platform.as_deref(), a.quiet).await?;
                println!("{}", full_name(&a.name));
                return Ok(());
            }
            pull_image(c, &a.name, a.platform.as_deref(), false, a.quiet).await?;
            println!("{}", full_name(&with_latest(&a.name)));
            Ok(())
        }
        Cmd::Push(a) => push(c, a).await,
        Cmd::Tag(a) => {
            let (repo, tag, _) = split_ref(&a.target);
            c.post(&with_query(
                &format!("/images/{}/tag", enc(&a.source)),
                &[
                    ("repo", repo),
                    ("tag", tag.unwrap_or_else(|| "latest".into())),
                ],
            ))
            .await?;
            Ok(())
        }
        Cmd::History(a) => history(c, a).await,
        Cmd::Load(a) => {
            let body = match &a.input {
                Some(f) => reader_body(
                    tokio::fs::File::open(f)
                        .await
                        .with_context(|| format!("open {f}"))?,
                ),
                None => {
                    if stream::stdin_is_tty() {
                        bail!("requested load from stdin, but stdin is empty");
                    }
                    reader_body(tokio::io::stdin())
                }
            };
            let resp = c
                .stream(
                    Method::POST,
                    &format!("/images/load?quiet={}", u8::from(a.quiet)),
                    body,
                    &[("Content-Type", "application/x-tar".into())],
                )
                .await?;
            print_json_stream(resp.into_body(), false, a.quiet).await
        }
        Cmd::Save(a) => {
            if a.output.is_none() && stream::stdout_is_tty() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let q: Vec<(&str, String)> = a.names.iter().map(|n| ("names", n.clone())).collect();
            let resp = c
                .stream(Method::GET, &with_query("/images/get", &q), empty(), &[])
                .await?;
            body_to_output(resp.into_body(), a.output.as_deref()).await
        }
        Cmd::Import(a) => import(c, a).await,
        Cmd::Build(a) => super::build::build(c, a).await,
    }
}

/// Runs a registry verb.
pub async fn run_registry(c: &Client, cmd: Registry) -> Result<()> {
    match cmd {
        Registry::Login(a) => login(c, a).await,
        Registry::Logout(a) => {
            let server = a.server.unwrap_or_else(|| credentials::DOCKER_HUB.into());
            let shown = credentials::domain_of(&server);
            let shown = if shown == "docker.io" {
                credentials::DOCKER_HUB.to_string()
            } else {
                shown
            };
            if credentials::erase(&server)? {
                println!("Removing login credentials for {shown}");
            } else {
                println!("Not logged in to {shown}");
            }
            Ok(())
        }
        Registry::Search(a) => search(c, a).await,
    }
}

/// Runs an `image` subcommand.
pub async fn run_sub(c: &Client, s: Sub) -> Result<()> {
    match s {
        Sub::Common(cmd) => run(c, cmd).await,
        Sub::Ls(a) => images(c, a).await,
        Sub::Rm(a) => rmi(c, a).await,
        Sub::Inspect(a) => {
            super::system::inspect_kind(c, "image", &a.names, a.format.as_deref(), false).await
        }
        Sub::Lint(a) => super::build::lint(c, a).await,
        Sub::Analyze(a) => super::build::analyze(c, a).await,
        Sub::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all images without at least one container associated to them."
            } else {
                "WARNING! This will remove all dangling images."
            };
            let mut filters = a.filter.clone();
            if a.all {
                filters.push("dangling=false".into());
            }
            let prune = Prune {
                collection: "/images",
                warning,
                deleted: ("ImagesDeleted", "Deleted Images:"),
                reclaims: true,
            };
            prune.run(c, a.force, &filters, print_delete_item).await
        }
    }
}

fn print_delete_item(d: &Value) {
    if let Some(u) = d["Untagged"].as_str() {
        println!("untagged: {u}");
    }
    if let Some(u) = d["Deleted"].as_str() {
        println!("deleted: {u}");
    }
}

/// `rmi`.
pub async fn rmi(c: &Client, a: RmiArgs) -> Result<()> {
    let q = format!("?force={}&noprune={}", a.force, a.no_prune);
    for_each(&a.names, |n| {
        let p = format!("/images/{}{q}", enc(&n));
        async move {
            let v = c.call(Method::DELETE, &p, empty()).await?.json()?;
            let mut lines = Vec::new();
            for d in v.as_array().into_iter().flatten() {
                if let Some(u) = d["Untagged"].as_str() {
                    lines.push(format!("Untagged: {u}"));
                }
                if let Some(u) = d["Deleted"].as_str() {
                    lines.push(format!("Deleted: {u}"));
                }
            }
            Ok(Some(lines.join("\n")))
        }
    })
    .await
}

/// `busybox` → `busybox:latest` (digests and tags kept).
pub fn with_latest(r: &str) -> String {
    match split_ref(r) {
        (_, None, None) => format!("{r}:latest"),
        _ => r.to_string(),
    }
}

/// `busybox:latest` → `docker.io/library/busybox:latest`.
pub fn full_name(r: &str) -> String {
    let (name, _, _) = split_ref(r);
    if registry_of(&name) != "docker.io" || name.starts_with("docker.io/") {
        return r.to_string();
    }
    if name.contains('/') {
        format!("docker.io/{r}")
    } else {
        format!("docker.io/library/{r}")
    }
}

/// `X-Registry-Auth` for a reference: the stored credentials of its registry, or `{}`.
pub(crate) fn registry_auth(name: &str) -> String {
    credentials::registry_auth_header(&registry_of(name))
}

/// `pull --all-tags`: no tag in the request makes the daemon pull every tag.
async fn pull_all_tags(c: &Client, name: &str, platform: Option<&str>, quiet: bool) -> Result<()> {
    let query = vec![
        ("fromImage", name.to_string()),
        ("platform", platform.unwrap_or_default().to_string()),
    ];
    create_from_registry(c, &query, name, false, quiet).await
}

/// `POST /images/create` with `query` and the stored login of `name`'s registry; prints
/// the progress stream.
async fn create_from_registry(
    c: &Client,
    query: &[(&str, String)],
    name: &str,
    to_stderr: bool,
    quiet: bool,
) -> Result<()> {
    let resp = c
        .stream(
            Method::POST,
            &with_query("/images/create", query),
            empty(),
            &[("X-Registry-Auth", registry_auth(name))],
        )
        .await?;
    print_json_stream(resp.into_body(), to_stderr, quiet).await
}

/// Pulls `r` with the daemon, printing its progress (to stderr for `run`'s implicit pull).
pub async fn pull_image(
    c: &Client,
    r: &str,
    platform: Option<&str>,
    to_stderr: bool,
    quiet: bool,
) -> Result<()> {
    let (name, tag, digest) = split_ref(r);
    let from = match &digest {
        Some(d) => format!("{name}@{d}"),
        None => name.clone(),
    };
    let tag = if digest.is_some() {
        String::new()
    } else {
        tag.unwrap_or_else(|| "latest".into())
    };
    let query = [
        ("fromImage", from),
        ("tag", tag),
        ("platform", platform.unwrap_or_default().to_string()),
    ];
    create_from_registry(c, &query, &name, to_stderr, quiet).await
}

/// Prints a JSON message stream (pull, push, load, import, build) as docker does: per-layer
/// lines redrawn in place on a terminal, one line per step elsewhere; an `error` message
/// fails the command.
pub async fn print_json_stream(body: Incoming, to_stderr: bool, quiet: bool) -> Result<()> {
    let tty = if to_stderr {
        nix::unistd::isatty(std::io::stderr()).unwrap_or(false)
    } else {
        stream::stdout_is_tty()
    };
    let mut display = crate::client::progress::Display::new(tty);
    let mut err: Option<String> = None;
    each_json(body, |m| {
        if let Some(e) = m["error"].as_str().or(m["errorDetail"]["message"].as_str()) {
            err = Some(e.to_string());
            return Ok(false);
        }
        if quiet || (m["status"].is_null() && m["stream"].is_null()) {
            return Ok(true);
        }
        if to_stderr {
            display.show(&m, &mut std::io::stderr().lock())?;
        } else {
            display.show(&m, &mut std::io::stdout().lock())?;
        }
        Ok(true)
    })
    .await?;
    match err {
        Some(e) => Err(anyhow::Error::new(crate::client::http::DaemonError {
            status: hyper::StatusCode::INTERNAL_SERVER_ERROR,
            message: e,
        })),
        None => Ok(()),
    }
}

/// Writes a body to a file (`-o`) or stdout.
pub async fn body_to_output(body: Incoming, output: Option<&str>) -> Result<()> {
    let mut out: Box<dyn Write> = match output {
        Some(p) if p != "-" => {
            Box::new(std::fs::File::create(p).with_context(|| format!("create {p}"))?)
        }
        _ => Box::new(std::io::stdout().lock()),
    };
    let mut s = http_body_util::BodyExt::into_data_stream(body);
    while let Some(chunk) = s.next().await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(())
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// The rows docker's images formatter makes of one `/images/json` entry: one per tag, or
/// per digest of an untagged repository, or one `<none>` row.
pub fn image_rows(img: &Value, trunc: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let tags: Vec<&str> = img["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>:<none>")
        .collect();
    let digests: Vec<&str> = img["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>@<none>")
        .collect();
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_f64().unwrap_or(0.0);
    let row = |repo: &str, tag: &str, digest: &str| {
        json!({
            "Repository": repo,
            "Tag": tag,
            "Digest": digest,
            "ID": if trunc { short_id(id) } else { id.to_string() },
            "CreatedSince": ago(created),
            "CreatedAt": go_time_string(created),
            "Size": human_size_prec(size, 3),
            "VirtualSize": human_size_prec(size, 3),
            "SharedSize": human_size_prec(img["SharedSize"].as_f64().unwrap_or(0.0).max(0.0), 3),
            "UniqueSize": human_size_prec((size - img["SharedSize"].as_f64().unwrap_or(0.0).max(0.0)).max(0.0), 3),
            "Containers": img["Containers"].as_i64().map_or("N/A".into(), |n| if n < 0 { "N/A".into() } else { n.to_string() }),
            "Labels": img["Labels"].as_object().map(|o| o.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",")).unwrap_or_default(),
            "__labels": img["Labels"],
        })
    };
    let digest_for = |repo: &str| {
        digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, d)| d.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mut rows = Vec::new();
    for t in &tags {
        let (repo, tag, _) = split_ref(t);
        rows.push(row(
            &repo,
            tag.as_deref().unwrap_or("<none>"),
            &digest_for(&repo),
        ));
    }
    if rows.is_empty() {
        for d in &digests {
            let (repo, dg) = d.split_once('@').unwrap_or((d, "<none>"));
            rows.push(row(repo, "<none>", dg));
        }
    }
    if rows.is_empty() {
        rows.push(row("<none>", "<none>", "<none>"));
    }
    rows
}

/// `images`.
pub async fn images(c: &Client, a: ImagesArgs) -> Result<()> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let path = with_query(
        "/images/json",
        &[
            ("all", if a.all { "1".into() } else { String::new() }),
            ("filters", super::filters_json(&filters)),
        ],
    );
    let list = c.get_json(&path).await?;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| image_rows(i, !a.no_trunc))
        .collect();
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or("").to_string();
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let format = match a.format {
        Some(f) if !f.is_empty() && f != "table" => f,
        _ if a.digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .into()
        }
        _ => "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into(),
    };
    print!(
        "{}",
        Formatter {
            format,
            headers: IMAGE_HEADERS
        }
        .render(&rows)?
    );
    Ok(())
}

async fn history(c: &Client, a: HistoryArgs) -> Result<()> {
    let v = c
        .get_json(&format!("/images/{}/history", enc(&a.name)))
        .await?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" || !trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let size = h["Size"].as_f64().unwrap_or(0.0);
            json!({
                "ID": id,
                "CreatedSince": if a.human { ago(created) } else { rfc3339(created) },
                "CreatedAt": rfc3339(created),
                "CreatedBy": if trunc { ellipsis(&by, 45) } else { by },
                "Size": if a.human { human_size_prec(size, 3) } else { format!("{size}") },
                "Comment": h["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(());
    }
    let format = a.format.unwrap_or_else(|| {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
    });
    let headers = &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    print!("{}", Formatter { format, headers }.render(&rows)?);
    Ok(())
}

async fn push(c: &Client, a: PushArgs) -> Result<()> {
    let (name, tag, _) = split_ref(&a.name);
    let tag = if a.all_tags {
        String::new()
    } else {
        tag.unwrap_or_else(|| "latest".into())
    };
    let path = with_query(&format!("/images/{}/push", enc(&name)), &[("tag", tag)]);
    let resp = c
        .stream(
            Method::POST,
            &path,
            empty(),
            &[("X-Registry-Auth", registry_auth(&name))],
        )
        .await?;
    print_json_stream(resp.into_body(), false, a.quiet).await?;
    if a.quiet {
        // As docker: quiet prints the reference that was pushed.
        let shown = if a.all_tags {
            full_name(&a.name)
        } else {
            full_name(&with_latest(&a.name))
        };
        println!("{shown}");
    }
    Ok(())
}

async fn import(c: &Client, a: ImportArgs) -> Result<()> {
    let (repo, tag) = match &a.reference {
        Some(r) => {
            let (n, t, _) = split_ref(r);
            (n, t.unwrap_or_default())
        }
        None => (String::new(), String::new()),
    };
    let remote = a.file.starts_with("http://") || a.file.starts_with("https://");
    let mut q = vec![
        ("fromSrc", if remote { a.file.clone() } else { "-".into() }),
        ("repo", repo),
        ("tag", tag),
        ("message", a.message.clone().unwrap_or_default()),
        ("platform", a.platform.clone().unwrap_or_default()),
    ];
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let body = if remote {
        empty()
    } else if a.file == "-" {
        reader_body(tokio::io::stdin())
    } else {
        reader_body(
            tokio::fs::File::open(&a.file)
                .await
                .with_context(|| format!("open {}", a.file))?,
        )
    };
    let resp = c
        .stream(
            Method::POST,
            &with_query("/images/create", &q),
            body,
            &[("Content-Type", "application/x-tar".into())],
        )
        .await?;
    let mut id = String::new();
    let mut err = None;
    each_json(resp.into_body(), |m| {
        if let Some(e) = m["error"].as_str() {
            err = Some(e.to_string());
        } else if let Some(s) = m["status"].as_str() {
            id = s.to_string();
        }
        Ok(true)
    })
    .await?;
    if let Some(e) = err {
        bail!("{e}");
    }
    println!("{}", id.trim());
    Ok(())
}

async fn login(c: &Client, a: LoginArgs) -> Result<()> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| credentials::DOCKER_HUB.into());
    let key = credentials::key_of(&server);
    if a.password_stdin && a.password.is_some() {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password_stdin && a.username.is_none() {
        bail!("Must provide --username with --password-stdin");
    }
    // As docker: no flags and a stored login — try that first.
    if a.username.is_none() && a.password.is_none() && !a.password_stdin {
        if let Ok(Some(l)) = credentials::get(&key) {
            let body = json!({"username": l.username, "password": l.password,
                "identitytoken": l.identity_token, "serveraddress": key});
            if let Ok(v) = c.post_json("/auth", &body).await {
                eprintln!("Authenticating with existing credentials...");
                println!("{}", v["Status"].as_str().unwrap_or("Login Succeeded"));
                return Ok(());
            }
        }
    }
    let username = match a.username {
        Some(u) => u,
        None => {
            if !stream::stdin_is_tty() {
                bail!("Error: Cannot perform an interactive login from a non TTY device");
            }
            print!("Username: ");
            std::io::stdout().flush()?;
            let mut l = String::new();
            std::io::stdin().read_line(&mut l)?;
            l.trim().to_string()
        }
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let password = if a.password_stdin {
        let mut l = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut l)?;
        l.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        print!("Password: ");
        std::io::stdout().flush()?;
        let stdin = std::io::stdin();
        let saved = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(s) = &saved {
            let mut t = s.clone();
            t.local_flags.remove(nix::sys::termios::LocalFlags::ECHO);
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        }
        let mut l = String::new();
        let r = stdin.read_line(&mut l);
        if let Some(s) = &saved {
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, s);
        }
        println!();
        r?;
        l.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        bail!("Error: Password Required");
    }
    let v = c
        .post_json(
            "/auth",
            &json!({"username": username, "password": password, "serveraddress": key}),
        )
        .await?;
    let token = v["IdentityToken"].as_str().unwrap_or("").to_string();
    let login = credentials::Login {
        username,
        password: if token.is_empty() {
            password
        } else {
            String::new()
        },
        identity_token: token,
    };
    if let Some(file) = credentials::store(&key, &login)? {
        eprintln!(
            "WARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            file.display()
        );
    }
    println!("{}", v["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(())
}

async fn search(c: &Client, a: SearchArgs) -> Result<()> {
    let path = with_query(
        "/images/search",
        &[
            ("term", a.term.clone()),
            ("limit", a.limit.map(|l| l.to_string()).unwrap_or_default()),
            ("filters", super::filters_json(&a.filter)),
        ],
    );
    let v = c.get_json(&path).await?;
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let d = r["description"].as_str().unwrap_or("").replace('\n', " ");
            json!({
                "Name": r["name"],
                "Description": if a.no_trunc { d } else { ellipsis(&d, 45) },
                "StarCount": r["star_count"].as_u64().unwrap_or(0).to_string(),
                "IsOfficial": if r["is_official"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
            })
        })
        .collect();
    let format = a.format.unwrap_or_else(|| {
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}".into()
    });
    let headers = &[
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
    ];
    print!("{}", Formatter { format, headers }.render(&rows)?);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn image_rows_like_docker_images() {
        let img = json!({
            "Id": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
            "RepoTags": ["busybox:latest", "localhost:5000/busybox:1"],
            "RepoDigests": ["busybox@sha256:abc"],
            "Created": crate::client::units::now_secs() as i64 - 3 * 86400,
            "Size": 4_261_550,
        });
        let rows = image_rows(&img, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[0]["Tag"], "latest");
        assert_eq!(rows[0]["Digest"], "sha256:abc");
        assert_eq!(rows[1]["Repository"], "localhost:5000/busybox");
        assert_eq!(rows[1]["Digest"], "<none>");
        assert_eq!(rows[0]["ID"], "3f57d9401f8d");
        let out = Formatter {
            format: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into(),
            headers: IMAGE_HEADERS,
        }
        .render(&rows)
        .unwrap();
        assert_eq!(
            out,
            "REPOSITORY               TAG       IMAGE ID       CREATED      SIZE\n\
             busybox                  latest    3f57d9401f8d   3 days ago   4.26MB\n\
             localhost:5000/busybox   1         3f57d9401f8d   3 days ago   4.26MB\n"
        );
        let none = image_rows(
            &json!({"Id": "sha256:00", "RepoTags": [], "RepoDigests": []}),
            true,
        );
        assert_eq!(none[0]["Repository"], "<none>");
        assert_eq!(none[0]["Tag"], "<none>");
    }

    #[test]
    fn names_normalize() {
        assert_eq!(with_latest("busybox"), "busybox:latest");
        assert_eq!(with_latest("busybox:1"), "busybox:1");
        assert_eq!(
            full_name("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full_name("me/app:1"), "docker.io/me/app:1");
        assert_eq!(full_name("localhost:5000/a:1"), "localhost:5000/a:1");
    }
}
