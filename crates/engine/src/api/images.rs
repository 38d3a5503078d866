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
use super::{filters, flag, json, label_matches, Query, Shared};
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

pub async fn list(State(d): State<Shared>, q: Query) -> Result<Response> {
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
        out.push(json!({
            "Id": i.id,
            "ParentId": "",
            "RepoTags": repo_tags,
            "RepoDigests": i.repo_digests,
            "Created": i.created.as_deref().map(unix_seconds).unwrap_or(0),
            "Size": i.size,
            "SharedSize": -1,
            "VirtualSize": i.size,
            "Labels": labels(i),
            "Containers": if flag(&q, "shared-size") { json!(containers.iter().filter(|c| c.image_id == i.id).count()) } else { json!(-1) },
        }));
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

fn inspect_json(d: &Shared, i: &berth_image::Image) -> Value {
    let cfg = serde_json::to_value(&i.config).unwrap_or(Value::Null);
    json!({
        "Id": i.id,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Parent": "",
        "Comment": "",
        "Created": i.created.clone().unwrap_or_default(),
        "DockerVersion": "",
        "Author": cfg["author"].as_str().unwrap_or_default(),
        "Config": cfg["config"],
        "Architecture": cfg["architecture"],
        "Os": cfg["os"],
        "Size": i.size,
        "VirtualSize": i.size,
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "RootFS": {"Type": "layers", "Layers": i.layers},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Containers": in_use(d, &i.id).len(),
    })
}

pub async fn by_name(State(d): State<Shared>, Path(path): Path<String>) -> Result<Response> {
    if let Some(name) = path.strip_suffix("/json") {
        let i = d.images.get(name)?;
        return Ok(json(StatusCode::OK, &inspect_json(&d, &i)));
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
    let loaded = loaded.map_err(|e| ApiError::BadRequest(e.to_string()))?;
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

pub async fn save(State(d): State<Shared>, q: axum::extract::RawQuery) -> Result<Response> {
    let names: Vec<String> =
        q.0.unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.strip_prefix("names="))
            .map(percent_decode)
            .collect();
    save_names(d, names).await
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
        let changes: Vec<String> = q
            .get("changes")
            .map(|c| vec![c.clone()])
            .unwrap_or_default();
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
    let mut cfg = serde_json::Map::new();
    for ch in changes.iter().flat_map(|c| c.lines()) {
        let (instr, rest) = ch
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((ch.trim(), ""));
        let rest = rest.trim();
        let list = || -> Value {
            serde_json::from_str::<Vec<String>>(rest)
                .map(|v| json!(v))
                .unwrap_or_else(|_| json!(["/bin/sh", "-c", rest]))
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                cfg.insert("Cmd".into(), list());
            }
            "ENTRYPOINT" => {
                cfg.insert("Entrypoint".into(), list());
            }
            "WORKDIR" => {
                cfg.insert("WorkingDir".into(), json!(rest));
            }
            "USER" => {
                cfg.insert("User".into(), json!(rest));
            }
            "STOPSIGNAL" => {
                cfg.insert("StopSignal".into(), json!(rest));
            }
            "ENV" => {
                let kv = rest.replacen(' ', "=", if rest.contains('=') { 0 } else { 1 });
                if let Some(a) = cfg.entry("Env").or_insert_with(|| json!([])).as_array_mut() {
                    a.push(json!(kv));
                }
            }
            "LABEL" => {
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                cfg.entry("Labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|m| m.insert(k.trim_matches('"').into(), json!(v.trim_matches('"'))));
            }
            "EXPOSE" => {
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_owned()
                    } else {
                        format!("{p}/tcp")
                    };
                    cfg.entry("ExposedPorts")
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .map(|m| m.insert(p, json!({})));
                }
            }
            "VOLUME" => {
                let vols: Vec<String> = serde_json::from_str(rest)
                    .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect());
                for v in vols {
                    cfg.entry("Volumes")
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .map(|m| m.insert(v, json!({})));
                }
            }
            "" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{other} is not a valid change command"
                )))
            }
        }
    }
    serde_json::from_value(Value::Object(cfg))
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("invalid change: {e}")))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=`.
pub async fn commit(State(d): State<Shared>, q: Query, body: Bytes) -> Result<Response> {
    let key = q.get("container").cloned().unwrap_or_default();
    let c = d.containers.find(&key)?;
    let parent = d.images.get(&c.image_id)?;
    let mut config = parent.config.clone();
    let override_cfg: Value = super::parse_body(&body)?;
    let mut inner = serde_json::to_value(&config.config).unwrap_or(json!({}));
    // The container's own settings become the new image's, as docker commit does.
    inner["Env"] = json!(c.config.env);
    inner["Cmd"] = json!(c.config.cmd);
    if let Some(e) = &c.config.entrypoint {
        inner["Entrypoint"] = json!(e);
    }
    if let Some(w) = &c.config.working_dir {
        inner["WorkingDir"] = json!(w);
    }
    if let Some(u) = &c.config.user {
        inner["User"] = json!(u);
    }
    if let Some(obj) = override_cfg.as_object() {
        for (k, v) in obj {
            if !v.is_null() {
                inner[k] = v.clone();
            }
        }
    }
    if let Some(ch) = changes_to_config(
        &q.get("changes")
            .map(|c| vec![c.clone()])
            .unwrap_or_default(),
    )? {
        if let Some(obj) = serde_json::to_value(ch)
            .ok()
            .and_then(|v| v.as_object().cloned())
        {
            for (k, v) in obj {
                if !v.is_null() {
                    inner[k] = v;
                }
            }
        }
    }
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
    let deleted: Vec<Value> = report
        .deleted
        .iter()
        .map(|x| json!({"Untagged": x.untagged, "Deleted": x.deleted}))
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
}
