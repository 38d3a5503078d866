//! `POST /build` (the classic builder protocol: a tar context in the body, JSON messages
//! streamed back), `POST /build/prune`, and berth's hygiene extensions:
//! `GET /berth/images/{name}/analyze`, `GET /berth/images/{name}/lint` and
//! `POST /berth/dockerfile/lint`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::images::body_reader;
use super::{json, Form, Query, Shared};
use crate::build::BuildHost;
use crate::error::{ApiError, Result};

/// A JSON object of strings (`buildargs`, `labels`); null values kept as None.
fn string_map(raw: Option<&String>, what: &str) -> Result<BTreeMap<String, Option<String>>> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
        .map_err(|e| ApiError::BadRequest(format!("invalid {what}: {e}")))?;
    Ok(v)
}

/// The build's options from its query, read as dockerd reads them: one value per key is the
/// first (docker-py sends `dockerfile` twice, its own first), `t` and `extrahosts` keep
/// every value, booleans as `BoolValue`.
fn options(q: &Form) -> Result<(berth_build::BuildOptions, bool)> {
    let get = |k: &str| q.get(k);
    if let Some(remote) = get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::BadRequest(format!(
            "remote build contexts are not supported ({remote}): send the context as a tar"
        )));
    }
    if get("version").map(|s| s.as_str()) == Some("2") {
        return Err(ApiError::BadRequest(
            "BuildKit is not supported by berth: use the classic builder (DOCKER_BUILDKIT=0)"
                .into(),
        ));
    }
    let tags: Vec<String> = q.all("t").filter(|v| !v.is_empty()).cloned().collect();
    for t in &tags {
        berth_image::Reference::parse(t)
            .map_err(|e| ApiError::BadRequest(format!("invalid tag {t:?}: {e}")))?;
    }
    let network = get("networkmode").cloned().unwrap_or_default();
    let labels = string_map(get("labels"), "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let opts = berth_build::BuildOptions {
        dockerfile: get("dockerfile").cloned().unwrap_or_default(),
        tags,
        build_args: string_map(get("buildargs"), "buildargs")?,
        target: get("target").cloned().filter(|t| !t.is_empty()),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels,
        network,
        platform: get("platform").cloned().filter(|p| !p.is_empty()),
        cache_from: match get("cachefrom").filter(|c| !c.is_empty()) {
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| ApiError::BadRequest(format!("invalid cachefrom: {e}")))?,
            None => Vec::new(),
        },
        extra_hosts: q
            .all("extrahosts")
            .filter(|h| !h.is_empty())
            .cloned()
            .collect(),
    };
    Ok((opts, q.bool("q")))
}

/// One item between the build thread and the response.
enum Item {
    Line(Bytes),
    /// A failure before anything was streamed: answered with an HTTP error.
    Early(ApiError),
}

fn line(v: Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn error_line(e: &berth_build::Error) -> Bytes {
    let msg = e.to_string();
    let mut detail = json!({"message": msg});
    if let berth_build::Error::RunFailed { code, .. } = e {
        detail["code"] = json!(code);
    }
    line(json!({"errorDetail": detail, "error": msg}))
}

fn api_error(e: berth_build::Error) -> ApiError {
    use berth_build::Error as E;
    match e {
        E::Parse(_)
        | E::Invalid(_)
        | E::Context(_)
        | E::SymlinkEscape { .. }
        | E::SourceNotFound { .. }
        | E::NoSources { .. }
        | E::OutsideContext { .. } => ApiError::BadRequest(e.to_string()),
        E::BaseImage(m) => ApiError::NotFound(m),
        other => ApiError::Internal(other.to_string()),
    }
}

/// `POST /build`.
pub async fn build(State(d): State<Shared>, q: Query, req: Request) -> Result<Response> {
    let (opts, quiet) = options(&q)?;
    // RUN's network: a user-defined one must exist (dockerd's 404) before anything runs.
    if !matches!(opts.network.as_str(), "none" | "host") {
        d.network_for_build(&opts.network)?;
    }
    let auths = match req
        .headers()
        .get("X-Registry-Config")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => berth_registry::Credentials::map_from_header(h)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => Vec::new(),
    };
    let (tx, mut rx) = mpsc::channel::<Item>(64);
    let cancel = Arc::new(berth_build::Cancel::new());
    // The client going away drops the response body, and with it this guard: the build
    // stops (its RUN container is killed). After a finished build it changes nothing.
    let guard = CancelOnDrop(cancel.clone());
    let mut reader = body_reader(req.into_body());
    let dd = d.clone();
    let tags = opts.tags.clone();
    tokio::task::spawn_blocking(move || {
        let sent = std::sync::atomic::AtomicBool::new(false);
        let held: std::sync::Mutex<Vec<Bytes>> = std::sync::Mutex::new(Vec::new());
        let send = |b: Bytes| {
            sent.store(true, std::sync::atomic::Ordering::SeqCst);
            tx.blocking_send(Item::Line(b)).is_ok()
        };
        let sink = |m: berth_build::Message| -> bool {
            let b = match m {
                berth_build::Message::Stream(s) => line(json!({"stream": s})),
                berth_build::Message::ImageId(id) => line(json!({"aux": {"ID": id}})),
                berth_build::Message::Progress(v) => line(v),
            };
            if quiet {
                held.lock().unwrap_or_else(|e| e.into_inner()).push(b);
                true
            } else {
                send(b)
            }
        };
        let host = BuildHost { daemon: &dd, auths };
        let result = dd
            .builder
            .build(&dd.images, &host, &opts, &mut reader, &sink, &cancel);
        match result {
            Ok(image) => {
                for t in &tags {
                    let name = berth_image::Reference::parse(t)
                        .map(|r| r.familiar())
                        .unwrap_or_else(|_| t.clone());
                    dd.events.emit(
                        "image",
                        "tag",
                        &image.id,
                        [("name".to_owned(), name)].into(),
                    );
                }
                if quiet {
                    send(line(json!({"stream": format!("{}\n", image.id)})));
                }
            }
            Err(berth_build::Error::Cancelled) => {}
            Err(e) => {
                if quiet {
                    // As dockerd: a quiet build that fails shows what it had held back.
                    let held = std::mem::take(&mut *held.lock().unwrap_or_else(|p| p.into_inner()));
                    for b in held {
                        send(b);
                    }
                }
                if sent.load(std::sync::atomic::Ordering::SeqCst) {
                    send(error_line(&e));
                } else {
                    let _ = tx.blocking_send(Item::Early(api_error(e)));
                }
            }
        }
    });
    // Answer with an HTTP error when the build fails before its first message (a bad
    // Dockerfile, a missing Dockerfile), else stream.
    let first = match rx.recv().await {
        Some(Item::Early(e)) => return Err(e),
        Some(Item::Line(b)) => Some(b),
        None => None,
    };
    let stream =
        futures_util::stream::unfold((first, rx, guard), |(first, mut rx, guard)| async move {
            if let Some(b) = first {
                return Some((Ok::<Bytes, std::io::Error>(b), (None, rx, guard)));
            }
            loop {
                match rx.recv().await? {
                    Item::Line(b) => return Some((Ok(b), (None, rx, guard))),
                    Item::Early(_) => continue,
                }
            }
        });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        "Content-Type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Cancels a build when dropped.
struct CancelOnDrop(Arc<berth_build::Cancel>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// `POST /build/prune`: the build cache goes (layers that images use stay).
pub async fn prune(State(d): State<Shared>) -> Result<Response> {
    let dd = d.clone();
    let report = tokio::task::spawn_blocking(move || dd.images.prune_build_cache())
        .await
        .map_err(|e| ApiError::internal("prune", e))??;
    Ok(json(
        StatusCode::OK,
        &json!({"CachesDeleted": report.deleted, "SpaceReclaimed": report.space_reclaimed}),
    ))
}

/// `GET /berth/images/{name}/analyze?changes=N` and `GET /berth/images/{name}/lint`.
pub async fn image_hygiene(
    State(d): State<Shared>,
    Path(path): Path<String>,
    q: Query,
) -> Result<Response> {
    let (name, what) = if let Some(n) = path.strip_suffix("/analyze") {
        (n.to_string(), "analyze")
    } else if let Some(n) = path.strip_suffix("/lint") {
        (n.to_string(), "lint")
    } else {
        return Err(ApiError::NotFound(format!(
            "page not found: GET /berth/images/{path}"
        )));
    };
    let limit = q
        .get("changes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100);
    let image = d.images.get(&name)?;
    let dd = d.clone();
    let v =
        tokio::task::spawn_blocking(move || -> std::result::Result<Value, berth_build::Error> {
            if what == "analyze" {
                let a = berth_build::hygiene::analyze(&dd.images, &image, limit)?;
                Ok(serde_json::to_value(a).unwrap_or(Value::Null))
            } else {
                let f = berth_build::hygiene::lint_image(&dd.images, &image)?;
                Ok(json!({"Id": image.id, "RepoTags": image.repo_tags, "Findings": f}))
            }
        })
        .await
        .map_err(|e| ApiError::internal(what, e))?
        .map_err(api_error)?;
    Ok(json(StatusCode::OK, &v))
}

/// `POST /berth/dockerfile/lint`: the body is a Dockerfile; nothing is built.
pub async fn dockerfile_lint(body: Bytes) -> Result<Response> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the Dockerfile is not UTF-8 text".into()))?;
    let df =
        berth_build::dockerfile::parse(&text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let f = berth_build::hygiene::lint_dockerfile(&df, None);
    Ok(json(StatusCode::OK, &json!({"Findings": f})))
}
