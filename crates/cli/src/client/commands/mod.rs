//! The commands, one file per object kind, and what they share: filters, confirmations,
//! per-object error reporting, image references.

pub mod build;
pub mod compose;
pub mod container;
pub mod dashboard;
pub mod image;
pub mod network;
pub mod system;
pub mod volume;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::Result;
use serde_json::Value;

use super::http::enc;
use super::StatusError;

/// `--filter key=value` (repeatable) as the API's `filters` query parameter, encoded as
/// docker CLI does: `{"key":{"value":true}}`.
pub fn filters_json(items: &[String]) -> String {
    let mut map: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in items {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        map.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    if map.is_empty() {
        return String::new();
    }
    serde_json::to_string(&map).unwrap_or_default()
}

/// `&filters=…` or nothing.
pub fn filters_query(items: &[String]) -> String {
    let f = filters_json(items);
    if f.is_empty() {
        String::new()
    } else {
        format!("filters={}", enc(&f))
    }
}

/// docker's "Are you sure you want to continue? [y/N]".
pub fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// What one `prune` verb asks before it runs and shows after, in docker's words.
#[derive(Debug)]
pub struct Prune<'a> {
    /// The objects' place in the API: `/containers`, `/images`, `/networks`, `/volumes`.
    pub collection: &'a str,
    pub warning: &'a str,
    /// The answer's list of what went (`ContainersDeleted`) and the title above it.
    pub deleted: (&'a str, &'a str),
    /// Whether docker shows the space it freed (not for networks).
    pub reclaims: bool,
}

impl Prune<'_> {
    /// Asks (unless `force`), prunes what `filters` select, and lists what went, each entry
    /// shown by `item`.
    pub async fn run(
        &self,
        c: &super::http::Client,
        force: bool,
        filters: &[String],
        item: impl Fn(&Value),
    ) -> Result<()> {
        if !force && !confirm(self.warning) {
            return Ok(());
        }
        let v = c
            .post(&format!(
                "{}/prune?{}",
                self.collection,
                filters_query(filters)
            ))
            .await?
            .json()?;
        let (key, title) = self.deleted;
        let deleted = v[key].as_array().cloned().unwrap_or_default();
        if !deleted.is_empty() {
            println!("{title}");
            for d in &deleted {
                item(d);
            }
            if self.reclaims {
                println!();
            }
        }
        if self.reclaims {
            println!("{}", reclaimed(&v));
        }
        Ok(())
    }
}

/// Prints a deleted object's id or name (a prune's list).
pub fn print_name(d: &Value) {
    println!("{}", d.as_str().unwrap_or(""));
}

/// Runs `op` for each name, printing the name on success (or what `op` returns) and the
/// error on failure, like docker's stop/rm/kill: exit status 1 if any failed.
pub async fn for_each<F, Fut>(names: &[String], mut op: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>>>,
{
    let mut failed = false;
    for n in names {
        match op(n.clone()).await {
            Ok(Some(out)) => println!("{out}"),
            Ok(None) => println!("{n}"),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if failed {
        return Err(anyhow::Error::new(StatusError {
            code: 1,
            message: None,
        }));
    }
    Ok(())
}

/// `Total reclaimed space: 1.2MB`.
pub fn reclaimed(v: &Value) -> String {
    let n = v
        .get("SpaceReclaimed")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    format!("Total reclaimed space: {}", super::units::human_size(n))
}

/// A reference split into (familiar repository, tag, digest) — `busybox` → (`busybox`,
/// `latest`, None).
pub fn split_ref(r: &str) -> (String, Option<String>, Option<String>) {
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (r, None),
    };
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            Some(name[slash + i + 1..].to_string()),
            digest,
        ),
        None => (name.to_string(), None, digest),
    }
}

/// The registry host of a repository name (`docker.io` when none is named).
pub fn registry_of(name: &str) -> String {
    match name.split_once('/') {
        Some((h, _)) if h.contains('.') || h.contains(':') || h == "localhost" => h.to_string(),
        _ => "docker.io".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_encode_like_docker() {
        assert_eq!(filters_json(&[]), "");
        assert_eq!(
            filters_json(&[
                "status=exited".into(),
                "label=a=b".into(),
                "status=created".into()
            ]),
            r#"{"label":{"a=b":true},"status":{"created":true,"exited":true}}"#
        );
        assert_eq!(
            filters_query(&["dangling=true".into()]),
            "filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D"
        );
    }

    #[test]
    fn references_split() {
        assert_eq!(split_ref("busybox"), ("busybox".into(), None, None));
        assert_eq!(
            split_ref("busybox:1.36"),
            ("busybox".into(), Some("1.36".into()), None)
        );
        assert_eq!(
            split_ref("localhost:5000/a/b:t"),
            ("localhost:5000/a/b".into(), Some("t".into()), None)
        );
        assert_eq!(
            split_ref("localhost:5000/a"),
            ("localhost:5000/a".into(), None, None)
        );
        assert_eq!(
            split_ref("a@sha256:00"),
            ("a".into(), None, Some("sha256:00".into()))
        );
        assert_eq!(registry_of("localhost:5000/a"), "localhost:5000");
        assert_eq!(registry_of("library/busybox"), "docker.io");
    }
}
