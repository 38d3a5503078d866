//! `compose events`: the daemon's container events (`GET /events`), the project's alone
//! (selected by its label on the daemon's side), as docker compose reports them.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde_json::Value;

use crate::api::{enc, Engine, JsonMessages, Method, Payload};
use crate::error::{Error, Result};
use crate::labels;
use crate::project::Project;

/// One container event of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unix time in nanoseconds.
    pub time_nano: i64,
    pub service: String,
    /// The container's id.
    pub container: String,
    /// `start`, `die`, `kill`, `pause`, `exec_create: sh`, …
    pub action: String,
    /// The actor's attributes without compose's own labels (docker compose drops them).
    pub attributes: BTreeMap<String, String>,
}

/// Follows the project's container events (of `services` only, when some are named), calling
/// `each` per event until the daemon ends the stream or `each` fails.
pub async fn events<E: Engine>(
    e: &E,
    project: &Project,
    services: &[String],
    mut each: impl FnMut(&Event) -> Result<()>,
) -> Result<()> {
    if let Some(n) = services.iter().find(|n| !project.has_service(n)) {
        return Err(Error::NotFound(format!("no such service: {n}")));
    }
    let filter = serde_json::json!({
        "type": ["container"],
        "label": [format!("{}={}", labels::PROJECT, project.name)],
    })
    .to_string();
    let mut s = e
        .stream(
            Method::Get,
            &format!("/events?filters={}", enc(&filter)),
            Payload::None,
            &[],
        )
        .await?;
    let mut messages = JsonMessages::default();
    while let Some(chunk) = s.next().await {
        messages.push(&chunk?);
        while let Some(v) = messages.next_message() {
            let v =
                v.map_err(|e| Error::Transport(format!("decoding the daemon's events: {e}")))?;
            let ev = event(&v);
            if services.is_empty() || services.contains(&ev.service) {
                each(&ev)?;
            }
        }
    }
    Ok(())
}

/// The daemon's event message as docker compose keeps it.
fn event(v: &Value) -> Event {
    let attrs = v["Actor"]["Attributes"].as_object();
    let attr = |k: &str| {
        attrs
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Event {
        time_nano: v["timeNano"].as_i64().unwrap_or_else(|| {
            v["time"]
                .as_i64()
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
        }),
        service: attr(labels::SERVICE),
        container: v["Actor"]["ID"].as_str().unwrap_or_default().to_string(),
        action: v["Action"].as_str().unwrap_or_default().to_string(),
        attributes: attrs
            .into_iter()
            .flatten()
            .filter(|(k, _)| !k.starts_with("com.docker.compose."))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_keeps_the_service_and_drops_compose_labels() {
        let v = json!({
            "Type": "container", "Action": "kill", "time": 1, "timeNano": 1_500_000_000,
            "Actor": {"ID": "abc", "Attributes": {
                "name": "p-web-1", "signal": "10", labels::SERVICE: "web", labels::PROJECT: "p",
            }},
        });
        let e = event(&v);
        assert_eq!(e.service, "web");
        assert_eq!(e.container, "abc");
        assert_eq!(e.action, "kill");
        assert_eq!(e.time_nano, 1_500_000_000);
        assert_eq!(
            e.attributes.keys().collect::<Vec<_>>(),
            ["name", "signal"],
            "{e:?}"
        );
    }
}
