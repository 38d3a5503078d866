//! `/images/…` and `/commit`: the image store through the API. Names may contain slashes
//! (`localhost:5000/a/b`), so `/images/{name}/json` is matched as one wildcard and split here.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::logs::{stream_response, ChannelWriter, Chunk};
use super::{filters, flag, json, label_matches, ApiVersion, Query, Shared};
use crate::error::{ApiError, Result};
use crate::files::unix_seconds;

fn in_use(d: &Shared, id: &str) -> Vec<String> {
    d.containers
        .list()
        .into_iter()
        .filter(|c| c.image_id == id)
        .map(|c| c.id)
        .collect()
}

fn labels(i: &berth_image::Image) -> Value {
    serde_json::to_value(&i.config)
        .ok()
        .and_then(|v| v["config"].get("Labels").cloned())
        .filter(|v| v.is_object())
        .unwrap_or_else(|| json!({}))
}

pub async fn list(State(d): State<Shared>, q: Query, v: ApiVersion) -> Result<Response> {
    let filt = filters(&q)?;
    let all_images = d.images.list()?;
    let containers = d.containers.list();
    let mut out: Vec<Value> = Vec::new();
    for i in &all_images {
        let dangling = i.repo_tags.is_empty();
        let ok = filt.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "dangling" => (v == "true" || v == "1") == dangling,
                "reference" => i
                    .repo_tags
                    .iter()
                    .any(|t| glob_match(v, t) || glob_match(v, repo_of(t))),
                "label" => {
                    let l = labels(i);
                    label_matches(v, |k| l[k].as_str())
                }
                "before" | "since" => d
                    .images
                    .get(v)
                    .map(|o| {
                        let (a, b) = (
                            i.created.clone().unwrap_or_default(),
                            o.created.unwrap_or_default(),
                        );
                        if k == "before" {
                            a < b
                        } else {
                            a > b
                        }
                    })
                    .unwrap_or(false),
                _ => true,
            })
        });
        if !ok {
            continue;
        }
        // As dockerd: a reference filter also narrows RepoTags to the tags it matched
        // (`docker images -q NAME:TAG` prints one line, not one per tag of that image).
        let repo_tags: Vec<&String> = match filt.get("reference") {
            Some(refs) => i
                .repo_tags
                .iter()
                .filter(|t| {
                    refs.iter()
                        .any(|v| glob_match(v, t) || glob_match(v, repo_of(t)))
                })
                .collect(),
            None => i.repo_tags.iter().collect(),
        };
        let mut item = json!({
            "Id": i.id,
            "ParentId": i.parent.clone().unwrap_or_default(),
            "RepoTags": repo_tags,
            "RepoDigests": i.repo_digests,
            "Created": i.created.as_deref().map(unix_seconds).unwrap_or(0),
            "Size": i.size,
            "SharedSize": -1,
            "Labels": labels(i),
            "Containers": if flag(&q, "shared-size") { json!(containers.iter().filter(|c| c.image_id == i.id).count()) } else { json!(-1) },
        });
        // Before 1.43 dockerd wrote placeholders for an untagged image; before 1.44 it had
        // VirtualSize (the same as Size).
        if v.before(43) && i.repo_tags.is_empty() && i.repo_digests.is_empty() {
            item["RepoTags"] = json!(["<none>:<none>"]);
            item["RepoDigests"] = json!(["<none>@<none>"]);
        }
        if v.before(44) {
            item["VirtualSize"] = json!(i.size);
        }
        out.push(item);
    }
    out.sort_by(|a, b| b["Created"].as_i64().cmp(&a["Created"].as_i64()));
    Ok(json(StatusCode::OK, &out))
}

/// `host:5000/a/b:tag` → `host:5000/a/b` (a port is not a tag).
fn repo_of(tag: &str) -> &str {
    match tag.rsplit_once(':') {
        Some((repo, t)) if !t.contains('/') => repo,
        _ => tag,
    }
}

/// Docker's reference filter: `*` matches within a path component.
fn glob_match(pattern: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                rec(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && rec(p, &s[1..]))
            }
            (Some(a), Some(b)) if a == b => rec(&p[1..], &s[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), s.as_bytes())
}

/// `GET /images/{name}/json` as dockerd answers the version asked for (`VirtualSize` before
/// 1.44, `Created` even when unknown before 1.44), with one deliberate exception: dockerd
/// drops `Container` and `ContainerConfig` from 1.45 on, but docker-compose 1.29 negotiates
/// the daemon's newest version and then reads `ContainerConfig.Volumes` when it recreates a
/// service (KeyError 'ContainerConfig' on dockerd 25+), so berth keeps both in every
/// version; a newer client ignores them (docs/api.md).
fn inspect_json(d: &Shared, i: &berth_image::Image, v: ApiVersion) -> Value {
    let cfg = serde_json::to_value(&i.config).unwrap_or(Value::Null);
    let text = |k: &str| cfg[k].as_str().unwrap_or_default().to_owned();
    let mut out = serde_json::Map::new();
    out.insert("Id".into(), json!(i.id));
    out.insert("RepoTags".into(), json!(i.repo_tags));
    out.insert("RepoDigests".into(), json!(i.repo_digests));
    out.insert("Parent".into(), json!(i.parent.clone().unwrap_or_default()));
    out.insert("Comment".into(), json!(text("comment")));
    if i.created.is_some() || v.before(44) {
        out.insert(
            "Created".into(),
            json!(i.created.clone().unwrap_or_default()),
        );
    }
    out.insert("Container".into(), json!(text("container")));
    // The config of the container the image was made from, as the image recorded it
    // (Docker-built and committed images); else the image's own config, which is what a
    // classic build's last step ran with.
    let container_config = match cfg.get("container_config").filter(|c| c.is_object()) {
        Some(c) => c,
        None => &cfg["config"],
    };
    out.insert(
        "ContainerConfig".into(),
        super::shape::docker_config(container_config),
    );
    out.insert("DockerVersion".into(), json!(text("docker_version")));
    out.insert("Author".into(), json!(text("author")));
    out.insert("Config".into(), super::shape::docker_config(&cfg["config"]));
    out.insert("Architecture".into(), cfg["architecture"].clone());
    if let Some(variant) = cfg.get("variant").filter(|x| x.is_string()) {
        out.insert("Variant".into(), variant.clone());
    }
    out.insert("Os".into(), cfg["os"].clone());
    out.insert("Size".into(), json!(i.size));
    if v.before(44) {
        out.insert("VirtualSize".into(), json!(i.size));
    }
    out.insert(
        "GraphDriver".into(),
        json!({"Name": "overlay2", "Data": graph_data(d, i)}),
    );
    out.insert(
        "RootFS".into(),
        json!({"Type": "layers", "Layers": i.layers}),
    );
    out.insert(
        "Metadata".into(),
        json!({"LastTagTime": "0001-01-01T00:00:00Z"}),
    );
    Value::Object(out)
}

/// Inspect's `GraphDriver.Data` of an image: its top layer's snapshot as `UpperDir`, the
/// others (top down, as overlayfs lists lower dirs) as `LowerDir`. An image has no merged
/// or work directory in berth (docs/api.md).
fn graph_data(d: &Shared, i: &berth_image::Image) -> Value {
    let mut dirs = d.images.layer_dirs(i);
    let Some(upper) = dirs.pop() else {
        return json!({});
    };
    let mut data = json!({"UpperDir": upper});
    if !dirs.is_empty() {
        let lower: Vec<String> = dirs.iter().rev().map(|p| p.display().to_string()).collect();
        data["LowerDir"] = json!(lower.join(":"));
    }
    data
}

pub async fn by_name(
    State(d): State<Shared>,
    Path(path): Path<String>,
    v: ApiVersion,
) -> Result<Response> {
    if let Some(name) = path.strip_suffix("/json") {
        let i = d.images.get(name)?;
        return Ok(json(StatusCode::OK, &inspect_json(&d, &i, v)));
    }
    if let Some(name) = path.strip_suffix("/history") {
        let i = d.images.get(name)?;
        let h: Vec<Value> = d
            .images
            .history(&i)
            .into_iter()
            .map(|e| json!({"Id": e.id, "Created": e.created, "CreatedBy": e.created_by, "Tags": e.tags, "Size": e.size, "Comment": e.comment}))
            .collect();
        return Ok(json(StatusCode::OK, &h));
    }
    if let Some(name) = path.strip_suffix("/get") {
        return save_names(d, vec![name.to_owned()]).await;
    }
    Err(ApiError::NotFound(format!(
        "page not found: GET /images/{path}"
    )))
}

pub async fn by_name_post(
    State(d): State<Shared>,
    Path(path): Path<String>,
    q: Query,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    if let Some(name) = path.strip_suffix("/tag") {
        let repo = q.get("repo").cloned().unwrap_or_default();
        if repo.is_empty() {
            return Err(ApiError::BadRequest(
                "repository name must have at least one component".into(),
            ));
        }
        let target = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        };
        berth_image::Reference::parse(&target)?;
        d.images.tag(name, &target)?;
        let i = d.images.get(&target)?;
        d.events
            .emit("image", "tag", &i.id, [("name".to_owned(), target)].into());
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = path.strip_suffix("/push") {
        return super::registry::push(d, name, q, headers).await;
    }
    Err(ApiError::NotFound(format!(
        "page not found: POST /images/{path}"
    )))
}

pub async fn remove(
    State(d): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response> {
    let force = flag(&q, "force");
    let image = d.images.get(&name)?;
    let users = in_use(&d, &image.id);
    if !users.is_empty() && !force {
        let by_tag =
            image.repo_tags.len() > 1 && !name.starts_with("sha256:") && !image.id.contains(&name);
        if !by_tag {
            return Err(ApiError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                &image.id.trim_start_matches("sha256:")[..12],
                &users[0][..12]
            )));
        }
    }
    let deleted = d.images.remove(&name, force)?;
    let out: Vec<Value> = deleted
        .iter()
        .map(|x| {
            let mut v = json!({});
            if let Some(u) = &x.untagged {
                v["Untagged"] = json!(u);
                d.events.emit(
                    "image",
                    "untag",
                    &image.id,
                    [("name".to_owned(), u.clone())].into(),
                );
            }
            if let Some(del) = &x.deleted {
                v["Deleted"] = json!(del);
                d.events.emit(
                    "image",
                    "delete",
                    del,
                    HashMap::<String, String>::new().into_iter().collect(),
                );
            }
            v
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

/// Reads a request body into a blocking reader for the store (load/import stream through).
pub(crate) fn body_reader(body: Body) -> impl std::io::Read + Send + 'static {
    // The sending side awaits room (never blocks a runtime thread): a slow reader only slows
    // this one request.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() {
                return;
            }
        }
    });
    ChannelReader {
        rx,
        buf: Bytes::new(),
    }
}

/// Read on a blocking thread (`blocking_recv` must never run on the runtime's).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    buf: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// `POST /images/load`: a docker-archive or OCI layout tar; the answer is dockerd's JSON
/// progress lines ("Loaded image: …").
pub async fn load(State(d): State<Shared>, req: Request) -> Result<Response> {
    let mut reader = body_reader(req.into_body());
    let dd = d.clone();
    let loaded = tokio::task::spawn_blocking(move || dd.images.load(&mut reader))
        .await
        .map_err(|e| ApiError::internal("load", e))?;
    // As dockerd: a body that is no image archive is told in the answer's stream, not by its
    // status (docker-py raises ImageLoadError from that message).
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            let msg = e.to_string();
            let line = json!({"errorDetail": {"message": msg}, "error": msg});
            let mut resp = format!("{line}\n").into_response();
            resp.headers_mut().insert(
                "Content-Type",
                axum::http::HeaderValue::from_static("application/json"),
            );
            return Ok(resp);
        }
    };
    let mut out = String::new();
    for l in &loaded {
        if l.tags.is_empty() {
            out.push_str(&json!({"stream": format!("Loaded image ID: {}\n", l.id)}).to_string());
            out.push('\n');
        }
        for t in &l.tags {
            out.push_str(&json!({"stream": format!("Loaded image: {t}\n")}).to_string());
            out.push('\n');
        }
        d.events.emit("image", "load", &l.id, Default::default());
    }
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        "Content-Type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

pub async fn save(State(d): State<Shared>, q: Query) -> Result<Response> {
    save_names(d, q.all("names").cloned().collect()).await
}

async fn save_names(d: Shared, names: Vec<String>) -> Result<Response> {
    for n in &names {
        d.images.get(n)?;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(16);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        if let Err(e) = d.images.save(&names, &mut w) {
            w.fail(e.to_string());
        }
    });
    Ok(stream_response(rx, "application/x-tar"))
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /images/create`: `fromSrc=-` imports the body as a rootfs tar (`docker import`);
/// `fromImage` pulls from a registry.
pub async fn create(State(d): State<Shared>, q: Query, req: Request) -> Result<Response> {
    if let Some(src) = q.get("fromSrc") {
        if src != "-" {
            return Err(ApiError::BadRequest(format!(
                "importing from a URL ({src}) is not supported; pipe the tar instead"
            )));
        }
        let reference = match (
            q.get("repo").filter(|r| !r.is_empty()),
            q.get("tag").filter(|t| !t.is_empty()),
        ) {
            (Some(r), Some(t)) => Some(format!("{r}:{t}")),
            (Some(r), None) => Some(r.clone()),
            _ => None,
        };
        if let Some(r) = &reference {
            berth_image::Reference::parse(r)?;
        }
        let changes: Vec<String> = q.all("changes").cloned().collect();
        let config = changes_to_config(&changes)?;
        let opts = berth_image::ImportOptions {
            reference,
            config,
            message: q.get("message").cloned(),
            platform: q.get("platform").cloned(),
        };
        let mut reader = body_reader(req.into_body());
        let dd = d.clone();
        let image = tokio::task::spawn_blocking(move || dd.images.import(&mut reader, &opts))
            .await
            .map_err(|e| ApiError::internal("import", e))??;
        d.events
            .emit("image", "import", &image.id, Default::default());
        let body = format!("{}\n", json!({"status": image.id}));
        return Ok(body.into_response());
    }
    let headers = req.headers().clone();
    super::registry::pull(d, q, headers).await
}

/// `--change` instructions of import/commit (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE,
/// VOLUME, STOPSIGNAL), as a container config.
fn changes_to_config(changes: &[String]) -> Result<Option<berth_image::ContainerConfig>> {
    if changes.is_empty() {
        return Ok(None);
    }
    let mut cfg = json!({});
    apply_changes(&mut cfg, changes)?;
    serde_json::from_value(cfg)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("invalid change: {e}")))
}

/// Applies `--change` instructions to a container config (JSON, Docker's field names) as
/// dockerd applies them, as Dockerfile instructions on top of it: ENV replaces a variable or
/// adds one, LABEL, EXPOSE and VOLUME add to what is there, the others set their field. Each
/// repeated `changes=` parameter is one or more instructions (one per line).
fn apply_changes(cfg: &mut Value, changes: &[String]) -> Result<()> {
    for ch in changes.iter().flat_map(|c| c.lines()) {
        let line = ch.trim();
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let list = || -> Value {
            serde_json::from_str::<Vec<String>>(rest)
                .map(|v| json!(v))
                .unwrap_or_else(|_| json!(["/bin/sh", "-c", rest]))
        };
        let map = |cfg: &mut Value, key: &str| -> serde_json::Map<String, Value> {
            cfg.get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => cfg["Cmd"] = list(),
            "ENTRYPOINT" => cfg["Entrypoint"] = list(),
            "WORKDIR" => cfg["WorkingDir"] = json!(rest),
            "USER" => cfg["User"] = json!(rest),
            "STOPSIGNAL" => cfg["StopSignal"] = json!(rest),
            "ENV" => {
                let mut env: Vec<String> = cfg
                    .get("Env")
                    .and_then(|e| serde_json::from_value(e.clone()).ok())
                    .unwrap_or_default();
                for (k, v) in key_values(rest) {
                    let kv = format!("{k}={v}");
                    match env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = kv,
                        None => env.push(kv),
                    }
                }
                cfg["Env"] = json!(env);
            }
            "LABEL" => {
                let mut labels = map(cfg, "Labels");
                for (k, v) in key_values(rest) {
                    labels.insert(k, json!(v));
                }
                cfg["Labels"] = Value::Object(labels);
            }
            "EXPOSE" => {
                let mut ports = map(cfg, "ExposedPorts");
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_owned()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, json!({}));
                }
                cfg["ExposedPorts"] = Value::Object(ports);
            }
            "VOLUME" => {
                let mut vols = map(cfg, "Volumes");
                let given: Vec<String> = serde_json::from_str(rest)
                    .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect());
                for v in given {
                    vols.insert(v, json!({}));
                }
                cfg["Volumes"] = Value::Object(vols);
            }
            "" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{other} is not a valid change command"
                )))
            }
        }
    }
    Ok(())
}

/// `KEY=VALUE …` pairs (quotes around a value dropped), or the old `KEY VALUE` form.
fn key_values(rest: &str) -> Vec<(String, String)> {
    let unquote = |s: &str| s.trim_matches('"').to_owned();
    let first = rest.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return vec![(k.to_owned(), unquote(v.trim()))];
    }
    rest.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (unquote(k), unquote(v)))
        .collect()
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=`.
pub async fn commit(State(d): State<Shared>, q: Query, body: Bytes) -> Result<Response> {
    let key = q.get("container").cloned().unwrap_or_default();
    let c = d.containers.find(&key)?;
    let parent = d.images.get(&c.image_id)?;
    let mut config = parent.config.clone();
    let override_cfg: Value = super::parse_body(&body)?;
    // As dockerd: the container's config (the image's, merged with what the container was
    // created with) is the new image's, then the request's config and changes on top; and
    // the image records which container it came from and that container's config
    // (inspect's `Container` and `ContainerConfig`).
    let container_config = serde_json::to_value(&c.config).unwrap_or(json!({}));
    let mut inner = json!({});
    for (k, v) in container_config.as_object().into_iter().flatten() {
        if !v.is_null() {
            inner[k] = v.clone();
        }
    }
    config.extra.insert("container".into(), json!(c.id));
    match q.get("comment").filter(|m| !m.is_empty()) {
        Some(m) => config.extra.insert("comment".into(), json!(m)),
        None => config.extra.remove("comment"),
    };
    config
        .extra
        .insert("container_config".into(), container_config.clone());
    if let Some(obj) = override_cfg.as_object() {
        for (k, v) in obj {
            if !v.is_null() {
                inner[k] = v.clone();
            }
        }
    }
    apply_changes(&mut inner, &q.all("changes").cloned().collect::<Vec<_>>())?;
    config.config = serde_json::from_value(inner)
        .map_err(|e| ApiError::BadRequest(format!("invalid config: {e}")))?;
    if let Some(a) = q.get("author").filter(|a| !a.is_empty()) {
        config.author = Some(a.clone());
    }
    let reference = match (
        q.get("repo").filter(|r| !r.is_empty()),
        q.get("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.clone()),
        _ => None,
    };
    let dd = d.clone();
    let upper = c.rootfs.upper.clone();
    let image = tokio::task::spawn_blocking(move || {
        dd.images
            .commit(Some(&parent), &upper, config, reference.as_deref())
    })
    .await
    .map_err(|e| ApiError::internal("commit", e))??;
    d.emit_container("commit", &c);
    Ok(json(StatusCode::CREATED, &json!({"Id": image.id})))
}

pub async fn prune(State(d): State<Shared>, q: Query) -> Result<Response> {
    let filt = filters(&q)?;
    let all = filt
        .get("dangling")
        .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
    let dd = d.clone();
    let report = tokio::task::spawn_blocking(move || {
        let used: Vec<String> = dd
            .containers
            .list()
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        dd.images.prune(all, &|id| used.iter().any(|u| u == id))
    })
    .await
    .map_err(|e| ApiError::internal("prune", e))??;
    // One of the two per item, as dockerd writes them (`omitempty`).
    let deleted: Vec<Value> = report
        .deleted
        .iter()
        .map(|x| match (&x.untagged, &x.deleted) {
            (Some(u), _) => json!({"Untagged": u}),
            (None, d) => json!({"Deleted": d}),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": report.space_reclaimed}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs_within_a_component() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*/app", "me/app"));
        assert!(!glob_match("*", "me/app"));
        assert_eq!(repo_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000/app");
        assert_eq!(repo_of("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(repo_of("busybox:latest"), "busybox");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("busybox%3Alatest"), "busybox:latest");
    }

    #[test]
    fn changes_apply_as_dockerfile_instructions() {
        let mut cfg = json!({"Env": ["A=1", "B=0"], "Labels": {"x": "y"}, "Cmd": ["sleep", "9"]});
        let changes = [
            "ENV B=2 C=3".to_owned(),
            "LABEL k=v\nCMD [\"sh\"]".to_owned(),
        ];
        apply_changes(&mut cfg, &changes).unwrap_or_default();
        assert_eq!(cfg["Env"], json!(["A=1", "B=2", "C=3"]));
        assert_eq!(cfg["Labels"], json!({"x": "y", "k": "v"}));
        assert_eq!(cfg["Cmd"], json!(["sh"]));
        assert!(apply_changes(&mut cfg, &["RUN true".to_owned()]).is_err());
        assert_eq!(
            key_values("PATH /bin"),
            [("PATH".to_owned(), "/bin".to_owned())]
        );
    }
}
