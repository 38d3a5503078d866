//! Logs of several containers at once, each line after its container's prefix
//! (`web-1  | `), coloured from docker compose's palette when the output is a terminal.

use futures_util::stream::{self, select_all, StreamExt};

use crate::api::{Engine, LogLines, Method, Payload};
use crate::error::Result;
use crate::state::{inspect, Existing};

/// docker compose's rainbow: cyan, yellow, green, magenta, blue, then their intense forms.
const PALETTE: [&str; 10] = [
    "36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1",
];

/// How to show logs.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// `--tail N` (none: all).
    pub tail: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub timestamps: bool,
    pub no_prefix: bool,
    pub color: bool,
    /// Print `NAME exited with code N` when a followed container ends (attached `up`).
    pub report_exit: bool,
    /// Stop at the first container that ends (`up --abort-on-container-exit`).
    pub abort_on_exit: bool,
}

/// The prefix name: the container's name without `<project>-`, as docker compose shows it.
pub fn short_name(project: &str, name: &str) -> String {
    name.strip_prefix(&format!("{project}-"))
        .unwrap_or(name)
        .to_string()
}

/// Streams the logs of `containers` to stdout until each stream ends — or, with
/// `abort_on_exit`, until the first one does: then its index in `containers` is returned.
pub async fn print<E: Engine>(
    e: &E,
    project: &str,
    containers: &[Existing],
    opts: &LogOptions,
) -> Result<Option<usize>> {
    let names: Vec<String> = containers
        .iter()
        .map(|c| short_name(project, &c.name))
        .collect();
    // docker compose pads every name to one more than the longest (`web-1  | `).
    let width = names.iter().map(String::len).max().unwrap_or(0) + 1;
    let mut streams = Vec::new();
    let mut splitters = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let v = inspect(e, &c.id).await?;
        splitters.push(LogLines::new(v["Config"]["Tty"].as_bool().unwrap_or(false)));
        let mut q = vec![
            "stdout=1".to_string(),
            "stderr=1".to_string(),
            format!("follow={}", u8::from(opts.follow)),
            format!("timestamps={}", u8::from(opts.timestamps)),
            format!("tail={}", opts.tail.clone().unwrap_or_else(|| "all".into())),
        ];
        if let Some(s) = &opts.since {
            q.push(format!("since={}", crate::api::enc(s)));
        }
        if let Some(u) = &opts.until {
            q.push(format!("until={}", crate::api::enc(u)));
        }
        let s = e
            .stream(
                Method::Get,
                &format!("/containers/{}/logs?{}", c.id, q.join("&")),
                Payload::None,
                &[],
            )
            .await?;
        streams.push(
            s.map(move |r| (i, Some(r)))
                .chain(stream::once(async move { (i, None) }))
                .boxed(),
        );
    }
    let prefix = |i: usize| -> String {
        if opts.no_prefix {
            return String::new();
        }
        let p = format!("{:<width$} | ", names[i]);
        if opts.color {
            format!("\x1b[{}m{p}\x1b[0m", PALETTE[i % PALETTE.len()])
        } else {
            p
        }
    };
    let mut all = select_all(streams);
    while let Some((i, item)) = all.next().await {
        match item {
            Some(chunk) => {
                for line in splitters[i].feed(&chunk?) {
                    println!("{}{line}", prefix(i));
                }
            }
            None => {
                if let Some(rest) = splitters[i].finish() {
                    println!("{}{rest}", prefix(i));
                }
                if opts.report_exit {
                    if let Ok(v) = inspect(e, &containers[i].id).await {
                        let code = v["State"]["ExitCode"].as_i64().unwrap_or(0);
                        println!("{} exited with code {code}", names[i]);
                    }
                }
                if opts.abort_on_exit {
                    return Ok(Some(i));
                }
            }
        }
    }
    Ok(None)
}
