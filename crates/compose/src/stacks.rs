//! `compose ls`: every project the daemon holds, found (as docker compose finds them) from
//! its containers' `com.docker.compose.project` labels alone — no compose file is read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::api::{enc, Engine, Method, Payload};
use crate::error::Result;
use crate::labels;

/// One project as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub name: String,
    /// Each state with its count, sorted by state: `exited(1), running(2)`.
    pub status: String,
    /// The union of its containers' `config_files` labels, `,`-joined.
    pub config_files: String,
}

/// The projects with a container (a running one unless `all`), sorted by name.
pub async fn stacks<E: Engine>(e: &E, all: bool) -> Result<Vec<Stack>> {
    // Any value of the label: the daemon's `label=KEY` filter matches on the key alone.
    let filter = serde_json::json!({ "label": [labels::PROJECT] }).to_string();
    let path = format!(
        "/containers/json?all={}&filters={}",
        u8::from(all),
        enc(&filter)
    );
    let list = e.call(Method::Get, &path, Payload::None).await?;
    Ok(summarise(list.as_array().map(Vec::as_slice).unwrap_or(&[])))
}

/// Groups container summaries by project.
fn summarise(list: &[Value]) -> Vec<Stack> {
    #[derive(Default)]
    struct Acc {
        states: BTreeMap<String, usize>,
        files: Vec<String>,
        seen: BTreeSet<String>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for c in list {
        let Some(name) = c["Labels"][labels::PROJECT].as_str() else {
            continue;
        };
        let acc = by.entry(name.to_string()).or_default();
        let state = c["State"].as_str().unwrap_or("unknown").to_string();
        *acc.states.entry(state).or_default() += 1;
        // The label holds the files `,`-joined; keep the first container's order.
        let files = c["Labels"][labels::CONFIG_FILES].as_str().unwrap_or("");
        for f in files.split(',').filter(|f| !f.is_empty()) {
            if acc.seen.insert(f.to_string()) {
                acc.files.push(f.to_string());
            }
        }
    }
    by.into_iter()
        .map(|(name, acc)| Stack {
            name,
            status: acc
                .states
                .iter()
                .map(|(s, n)| format!("{s}({n})"))
                .collect::<Vec<_>>()
                .join(", "),
            config_files: acc.files.join(","),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projects_are_grouped_with_their_states_counted_and_files_joined() {
        let c = |p: &str, state: &str, files: &str| json!({"State": state, "Labels": {labels::PROJECT: p, labels::CONFIG_FILES: files}});
        let list = vec![
            c("b", "running", "/b/compose.yaml,/b/extra.yaml"),
            c("a", "running", "/a/compose.yaml"),
            c("b", "exited", "/b/compose.yaml"),
            c("b", "running", "/b/compose.yaml,/b/extra.yaml"),
            json!({"State": "running", "Labels": {}}),
        ];
        let s = summarise(&list);
        assert_eq!(
            s,
            vec![
                Stack {
                    name: "a".into(),
                    status: "running(1)".into(),
                    config_files: "/a/compose.yaml".into()
                },
                Stack {
                    name: "b".into(),
                    status: "exited(1), running(2)".into(),
                    config_files: "/b/compose.yaml,/b/extra.yaml".into()
                },
            ]
        );
    }
}
