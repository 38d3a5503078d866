//! Registries through the API: `POST /images/create?fromImage=` (pull), `POST
//! /images/{name}/push`, `POST /auth`, `GET /images/search`. Pull and push answer with
//! dockerd's JSON message stream; an error before the first message is an HTTP error (as
//! dockerd, which has not flushed yet then), after it an `errorDetail` message.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_registry::{Credentials, Progress, PullOptions};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::logs::{stream_response, Chunk};
use super::{filters, json, parse_body, Query, Shared};
use crate::error::{ApiError, Result};

/// The credentials of `X-Registry-Auth`, if any.
fn creds(h: &HeaderMap) -> Result<Option<Credentials>> {
    match h.get("X-Registry-Auth").and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) => Credentials::from_header(v).map_err(|e| ApiError::BadRequest(e.to_string())),
    }
}

fn api_error(e: berth_registry::Error) -> ApiError {
    if e.is_invalid() {
        ApiError::BadRequest(e.to_string())
    } else if e.is_not_found() {
        ApiError::NotFound(e.to_string())
    } else if e.is_unauthorized() {
        ApiError::Unauthorized(e.to_string())
    } else {
        ApiError::Internal(e.to_string())
    }
}

fn bad_ref(e: berth_image::Error) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

/// `POST /images/create?fromImage=NAME&tag=TAG&platform=P`.
pub async fn pull(d: Shared, q: Query, headers: HeaderMap) -> Result<Response> {
    let from = q.get("fromImage").cloned().unwrap_or_default();
    if from.is_empty() {
        return Err(ApiError::BadRequest(
            "fromImage or fromSrc is required".into(),
        ));
    }
    let tag = q.get("tag").cloned().unwrap_or_default();
    let creds = creds(&headers)?;
    let platform = q.get("platform").cloned().unwrap_or_default();
    berth_image::manifest::Platform::parse(&platform).map_err(bad_ref)?;
    let name = if tag.is_empty() {
        from.clone()
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let parsed = berth_image::Reference::parse(&name).map_err(bad_ref)?;
    // No tag anywhere: every tag of the repository (`docker pull --all-tags`).
    let all_tags = tag.is_empty() && !has_tag_or_digest(&from);
    let opts = PullOptions { platform, creds };
    let (ptx, prx) = mpsc::unbounded_channel::<Progress>();
    let dd = d.clone();
    let job = tokio::spawn(async move {
        if !all_tags {
            dd.pull_one(&parsed, &opts, &ptx, true).await?;
            return Ok(());
        }
        let tags = dd.registries.tags(&parsed, opts.creds.as_ref()).await?;
        let repo = parsed.repository();
        let mut newer = false;
        for r in tags
            .iter()
            .filter_map(|t| berth_image::Reference::parse(&format!("{repo}:{t}")).ok())
        {
            newer |= !dd.pull_one(&r, &opts, &ptx, false).await?.up_to_date;
        }
        let _ = ptx.send(pull_status(newer, &parsed.familiar_repository()));
        Ok::<(), berth_registry::Error>(())
    });
    respond(prx, job).await
}

impl crate::daemon::Daemon {
    /// Pulls one reference into the store (a `pull` event after it), as `POST
    /// /images/create` and a build's base images do; with `status`, ends with dockerd's
    /// `Status: …` line.
    pub async fn pull_one(
        &self,
        r: &berth_image::Reference,
        opts: &PullOptions,
        sink: &mpsc::UnboundedSender<Progress>,
        status: bool,
    ) -> std::result::Result<berth_registry::PullOutcome, berth_registry::Error> {
        let o = self
            .registries
            .pull(self.images.clone(), r, opts, sink)
            .await?;
        self.events.emit(
            "image",
            "pull",
            &o.image.id,
            [("name".to_owned(), r.familiar())].into(),
        );
        if status {
            let _ = sink.send(pull_status(!o.up_to_date, &r.familiar()));
        }
        Ok(o)
    }
}

/// dockerd's last line of a pull.
fn pull_status(newer: bool, shown: &str) -> Progress {
    let status = if newer {
        format!("Status: Downloaded newer image for {shown}")
    } else {
        format!("Status: Image is up to date for {shown}")
    };
    Progress::Status { id: None, status }
}

fn has_tag_or_digest(name: &str) -> bool {
    name.contains('@')
        || name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

/// `POST /images/{name}/push?tag=TAG`: one tag, or every tag of the repository.
pub async fn push(d: Shared, name: &str, q: Query, headers: HeaderMap) -> Result<Response> {
    let creds = creds(&headers)?;
    let tag = q.get("tag").cloned().unwrap_or_default();
    let repo = berth_image::Reference::parse(name).map_err(bad_ref)?;
    let refs: Vec<berth_image::Reference> = if !tag.is_empty() {
        vec![
            berth_image::Reference::parse(&format!("{}:{tag}", repo.repository()))
                .map_err(bad_ref)?,
        ]
    } else if has_tag_or_digest(name) {
        vec![repo.clone()]
    } else {
        let mut v: Vec<_> = d
            .images
            .list()?
            .iter()
            .flat_map(|i| i.repo_tags.clone())
            .filter_map(|t| berth_image::Reference::parse(&t).ok())
            .filter(|r| r.repository() == repo.repository())
            .collect();
        v.sort_by_key(|r| r.to_string());
        v
    };
    let Some(first) = refs.first() else {
        return Err(ApiError::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            repo.familiar_repository()
        )));
    };
    for r in &refs {
        if d.images.get(&r.to_string()).is_err() {
            return Err(ApiError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                if tag.is_empty() && r == first {
                    repo.familiar_repository()
                } else {
                    r.familiar()
                }
            )));
        }
    }
    let (ptx, prx) = mpsc::unbounded_channel::<Progress>();
    let dd = d.clone();
    let job = tokio::spawn(async move {
        for r in &refs {
            dd.registries
                .push(dd.images.clone(), r, creds.as_ref(), &ptx)
                .await?;
            if let Ok(i) = dd.images.get(&r.to_string()) {
                dd.events.emit(
                    "image",
                    "push",
                    &i.id,
                    [("name".to_owned(), r.familiar())].into(),
                );
            }
        }
        Ok::<(), berth_registry::Error>(())
    });
    respond(prx, job).await
}

/// Waits for the first message: an error before it is an HTTP error; after it the body
/// streams the messages, ending with the error message if the job fails.
async fn respond(
    mut prx: mpsc::UnboundedReceiver<Progress>,
    mut job: tokio::task::JoinHandle<std::result::Result<(), berth_registry::Error>>,
) -> Result<Response> {
    // The sender lives in the job: no first message means the job ended without one.
    let first = prx.recv().await;
    if first.is_none() {
        match (&mut job).await {
            Ok(Err(e)) => return Err(api_error(e)),
            Err(e) => return Err(ApiError::internal("registry job", e)),
            Ok(Ok(())) => {}
        }
    }
    let (btx, brx) = mpsc::channel::<Chunk>(64);
    tokio::spawn(async move {
        let mut next = first;
        while let Some(m) = next {
            if btx.send(Ok(line(&message(&m)))).await.is_err() {
                // The client went away: dropping the receiver makes the job's next
                // progress report fail, which stops it.
                return;
            }
            next = prx.recv().await;
        }
        match job.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = btx.send(Ok(line(&error_message(&e.to_string())))).await;
            }
            Err(e) => {
                let _ = btx.send(Ok(line(&error_message(&e.to_string())))).await;
            }
        }
    });
    Ok(stream_response(brx, "application/json"))
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

fn error_message(m: &str) -> Value {
    json!({"errorDetail": {"message": m}, "error": m})
}

/// One progress event as dockerd's JSON message.
pub fn message(p: &Progress) -> Value {
    match p {
        Progress::Status { id, status } => {
            let mut v = json!({"status": status});
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            v
        }
        Progress::Layer {
            id,
            step,
            current,
            total,
        } => {
            if step.has_bar() {
                json!({
                    "status": step.text(),
                    "progressDetail": {"current": current, "total": total},
                    "progress": bar(*current, *total),
                    "id": id,
                })
            } else {
                json!({"status": step.text(), "progressDetail": {}, "id": id})
            }
        }
        Progress::Pushed { tag, digest, size } => json!({
            "progressDetail": {},
            "aux": {"Tag": tag, "Digest": digest, "Size": size},
        }),
    }
}

/// dockerd's progress string: `[=====>     ]  1.2MB/3.4MB`.
fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return human(current);
    }
    let n = ((current.min(total) as f64 / total as f64) * 100.0) as usize / 2;
    format!(
        "[{}>{}] {:>8}/{}",
        "=".repeat(n),
        " ".repeat(50 - n.min(50)),
        human(current),
        human(total)
    )
}

/// Docker's HumanSize: decimal units, 3 significant digits.
pub fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

#[derive(serde::Deserialize, Default)]
struct AuthBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    auth: String,
}

/// `POST /auth`: checks credentials against the registry.
pub async fn auth(
    axum::extract::State(d): axum::extract::State<Shared>,
    body: Bytes,
) -> Result<Response> {
    let b: AuthBody = parse_body(&body)?;
    let mut c = Credentials {
        username: b.username,
        password: b.password,
        auth: b.auth,
        serveraddress: b.serveraddress.clone(),
        identitytoken: b.identitytoken,
        registrytoken: String::new(),
    };
    c.fill_from_auth();
    let server = if b.serveraddress.is_empty() {
        berth_registry::DOCKER_HUB_INDEX.to_string()
    } else {
        b.serveraddress
    };
    let token = d.registries.login(&server, &c).await.map_err(api_error)?;
    Ok(json(
        StatusCode::OK,
        &json!({"Status": "Login Succeeded", "IdentityToken": token}),
    ))
}

/// `GET /distribution/{name}/json`: the descriptor and platforms a registry has for `name`,
/// without pulling it (`docker manifest`-like; docker-py's `get_registry_data`).
pub async fn distribution(
    axum::extract::State(d): axum::extract::State<Shared>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(name) = path.strip_suffix("/json") else {
        return Err(ApiError::NotFound("page not found".into()));
    };
    let r = berth_image::Reference::parse(name).map_err(bad_ref)?;
    let creds = creds(&headers)?;
    let info = d
        .registries
        .distribution(&r, creds.as_ref())
        .await
        .map_err(api_error)?;
    Ok(json(StatusCode::OK, &info))
}

/// `GET /images/search?term=&limit=&filters=`.
pub async fn search(
    axum::extract::State(d): axum::extract::State<Shared>,
    q: Query,
    headers: HeaderMap,
) -> Result<Response> {
    let term = q.get("term").cloned().unwrap_or_default();
    if term.is_empty() {
        return Err(ApiError::BadRequest("term is required".into()));
    }
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l}")))?,
        None => 0,
    };
    let f: HashMap<String, Vec<String>> = filters(&q)?;
    let mut min_stars = 0u64;
    let mut official = None;
    let mut automated = None;
    for (k, vals) in &f {
        for v in vals {
            match k.as_str() {
                "stars" => {
                    min_stars = v
                        .parse()
                        .map_err(|_| ApiError::BadRequest(format!("invalid filter 'stars={v}'")))?
                }
                "is-official" => official = Some(parse_bool(k, v)?),
                "is-automated" => automated = Some(parse_bool(k, v)?),
                other => return Err(ApiError::BadRequest(format!("invalid filter '{other}'"))),
            }
        }
    }
    let creds = creds(&headers)?;
    let results = d
        .registries
        .search(&term, limit, creds.as_ref())
        .await
        .map_err(api_error)?;
    let out: Vec<_> = results
        .into_iter()
        .filter(|r| r.star_count >= min_stars)
        .filter(|r| official.is_none_or(|o| r.is_official == o))
        .filter(|r| automated.is_none_or(|a| r.is_automated == a))
        .collect();
    Ok(json(StatusCode::OK, &out))
}

fn parse_bool(k: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::BadRequest(format!("invalid filter '{k}={v}'"))),
    }
}

/// The registry part of `/info`.
pub fn info(d: &Shared) -> Value {
    let o = d.registries.options();
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": o.mirrors, "Secure": true, "Official": true}),
    );
    for r in o.insecure.iter().filter(|r| !r.contains('/')) {
        index.insert(
            r.clone(),
            json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": o.insecure_cidrs(),
        "IndexConfigs": index,
        "Mirrors": o.mirrors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_as_dockerd_writes_them() {
        assert_eq!(human(528), "528B");
        assert_eq!(human(2_220_000), "2.22MB");
        assert_eq!(human(1_234_567), "1.235MB");
        assert_eq!(human(1_500), "1.5kB");
        assert_eq!(human(12_300_000), "12.3MB");
        let b = bar(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("50B/100B"), "{b}");
    }
}
