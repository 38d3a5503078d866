//! A compose project's `up` from the page. `down`, `stop`, `start` and `restart` need only
//! the project's containers and networks, which their `com.docker.compose.*` labels find:
//! the page does those itself through the Engine API. `up` needs the project's files: they
//! are where the labels of its containers say (`…project.working_dir`,
//! `…project.config_files`), and berth-compose's planner — the one `berth compose up` runs
//! — converges the project from them, reaching the daemon only through the Engine API socket
//! (every request it makes is an Engine API request, visible as any other).

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use berth_compose as compose;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::proxy;
use crate::upstream::Upstream;

/// The API version the planner's requests carry (the CLI's).
const API: &str = "/v1.44";

/// Where a project's files are, when no container of it is left to say.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Files {
    #[serde(rename = "WorkingDir", default)]
    working_dir: String,
    /// Comma-separated, as the label.
    #[serde(rename = "ConfigFiles", default)]
    config_files: String,
}

/// Runs `verb` (only `up`) for `project`; answers `{"Containers": [names]}` or the error in
/// the daemon's (or the loader's) words.
pub async fn run(up: &Upstream, project: &str, verb: &str, files: Files) -> Response {
    if verb != "up" {
        return proxy::error(
            StatusCode::NOT_FOUND,
            &format!("no compose verb {verb:?} here: down, stop, start and restart go through the Engine API"),
        );
    }
    let engine = Api(up);
    match up_project(&engine, project, files).await {
        Ok(names) => {
            let mut resp = Response::new(Body::from(json!({ "Containers": names }).to_string()));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err((status, message)) => proxy::error(status, &message),
    }
}

async fn up_project(
    e: &Api<'_>,
    project: &str,
    known: Files,
) -> Result<Vec<String>, (StatusCode, String)> {
    let filters = json!({ "label": [format!("com.docker.compose.project={project}")] });
    let list = compose::Engine::call(
        e,
        compose::Method::Get,
        &format!(
            "/containers/json?all=1&filters={}",
            compose::enc(&filters.to_string())
        ),
        compose::Payload::None,
    )
    .await
    .map_err(daemon_error)?;
    let (dir, files) = match list.as_array().and_then(|a| a.first()) {
        Some(c) => {
            let label = |k: &str| {
                c["Labels"][format!("com.docker.compose.project.{k}")]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            };
            (label("working_dir"), label("config_files"))
        }
        None if !known.working_dir.is_empty() => (known.working_dir, known.config_files),
        None => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("no container of compose project {project:?} is left to find its files by"),
            ))
        }
    };
    if dir.is_empty() || files.is_empty() {
        return Err((
            StatusCode::CONFLICT,
            format!("compose project {project:?} does not say where its files are (no working_dir or config_files label)"),
        ));
    }
    let opts = compose::Options {
        files: files.split(',').map(std::path::PathBuf::from).collect(),
        project_name: Some(project.to_owned()),
        project_directory: Some(dir.into()),
        ..compose::Options::default()
    };
    let p = compose::load(&opts).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let up_opts = compose::UpOptions {
        detach: true,
        ..compose::UpOptions::default()
    };
    let done = compose::up(e, &p, &up_opts).await.map_err(daemon_error)?;
    Ok(done.into_iter().map(|c| c.name).collect())
}

fn daemon_error(e: compose::Error) -> (StatusCode, String) {
    match e {
        compose::Error::Daemon { status, message } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ),
        other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// The planner's `Engine` over the API socket.
struct Api<'a>(&'a Upstream);

impl Api<'_> {
    async fn send(
        &self,
        m: compose::Method,
        path: &str,
        body: compose::Payload,
        headers: &[(&str, String)],
    ) -> compose::Result<hyper::Response<hyper::body::Incoming>> {
        let method = match m {
            compose::Method::Get => hyper::Method::GET,
            compose::Method::Post => hyper::Method::POST,
            compose::Method::Put => hyper::Method::PUT,
            compose::Method::Delete => hyper::Method::DELETE,
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{API}{path}"))
            .header(header::HOST, "localhost");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let body = match body {
            compose::Payload::None => Body::empty(),
            compose::Payload::Json(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            compose::Payload::Tar(t) => {
                req = req.header(header::CONTENT_TYPE, "application/x-tar");
                Body::from(t)
            }
        };
        let req = req
            .body(body)
            .map_err(|e| compose::Error::Transport(e.to_string()))?;
        let resp = self
            .0
            .send(req)
            .await
            .map_err(|e| compose::Error::Transport(e.to_string()))?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(compose::Error::Daemon { status, message });
        }
        Ok(resp)
    }
}

impl compose::Engine for Api<'_> {
    async fn call(
        &self,
        m: compose::Method,
        path: &str,
        body: compose::Payload,
    ) -> compose::Result<Value> {
        let resp = self.send(m, path, body, &[]).await?;
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| compose::Error::Transport(e.to_string()))?
            .to_bytes();
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn stream(
        &self,
        m: compose::Method,
        path: &str,
        body: compose::Payload,
        headers: &[(&str, String)],
    ) -> compose::Result<compose::ByteStream> {
        let resp = self.send(m, path, body, headers).await?;
        Ok(compose::byte_stream(resp.into_body().into_data_stream()))
    }
}
