//! What the daemon holds of a project, found by docker compose's labels (never by names): its
//! containers, and the progress lines docker compose prints as it changes them.

use serde_json::Value;

use crate::api::{enc, Engine, Method, Payload};
use crate::error::Result;
use crate::labels;

/// One of the project's containers as `GET /containers/json` lists it.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub oneoff: bool,
    /// created, running, exited, …
    pub state: String,
    pub config_hash: String,
    /// The image id the container was made from.
    pub image_id: String,
    /// The whole summary (for `ps`).
    pub summary: Value,
}

impl Existing {
    pub fn running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting" | "paused")
    }
}

/// The project's containers (all states), sorted by service and number.
pub async fn containers<E: Engine>(e: &E, project: &str) -> Result<Vec<Existing>> {
    let path = format!(
        "/containers/json?all=1&filters={}",
        enc(&labels::project_filter(project))
    );
    let list = e.call(Method::Get, &path, Payload::None).await?;
    let mut out: Vec<Existing> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let label = |k: &str| c["Labels"][k].as_str().unwrap_or_default().to_string();
            Existing {
                id: c["Id"].as_str().unwrap_or_default().to_string(),
                name: c["Names"][0]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                service: label(labels::SERVICE),
                number: label(labels::NUMBER).parse().unwrap_or(0),
                oneoff: label(labels::ONEOFF) == "True",
                state: c["State"].as_str().unwrap_or_default().to_string(),
                config_hash: label(labels::CONFIG_HASH),
                image_id: c["ImageID"].as_str().unwrap_or_default().to_string(),
                summary: c.clone(),
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
    Ok(out)
}

/// `GET /containers/{id}/json` of one of them.
pub async fn inspect<E: Engine>(e: &E, id: &str) -> Result<Value> {
    e.call(
        Method::Get,
        &format!("/containers/{id}/json"),
        Payload::None,
    )
    .await
}

/// A progress line as docker compose prints it without a terminal (` Container x  Started`),
/// on stderr.
pub fn progress(kind: &str, name: &str, status: &str) {
    eprintln!(" {kind} {name}  {status}");
}

/// docker compose's warning about containers of services no longer in the files.
pub fn warn_orphans<'a>(orphans: impl IntoIterator<Item = &'a Existing>) {
    let names: Vec<&str> = orphans.into_iter().map(|c| c.name.as_str()).collect();
    eprintln!(
        "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
        names.join(" ")
    );
}
