//! The hygiene rules, on a Dockerfile (without building it) and on an image's layers.

use berth_image::{Image, Reference, Store};

use super::analyze::{analyze, bytes_under, layer_names, Analysis};
use super::{human, Finding};
use crate::dockerfile::{CmdLine, Command, Dockerfile};
use crate::error::Result;

/// The Dockerfile's findings. With `target` (a build), only the stages up to it count and the
/// USER rule is left to the image check, which knows the base image's user.
pub fn lint_dockerfile(df: &Dockerfile, target: Option<usize>) -> Vec<Finding> {
    let mut out = Vec::new();
    let last = target.unwrap_or(df.stages.len().saturating_sub(1));
    for stage in df.stages.iter().take(last + 1) {
        if let Command::From(f) = &stage.from.command {
            let line = Some(stage.from.line);
            let is_stage = df.stages[..stage.index]
                .iter()
                .any(|s| s.name.as_deref() == Some(f.image.to_ascii_lowercase().as_str()));
            if !is_stage && !f.image.contains('$') && !f.image.eq_ignore_ascii_case("scratch") {
                match Reference::parse(&f.image) {
                    Ok(r) if r.digest().is_some() => {}
                    Ok(r) if r.tag() == Some("latest") => out.push(Finding::new(
                        "from-latest",
                        "warning",
                        line,
                        format!(
                            "FROM {}: no tag (or :latest) pins nothing, the base changes under you; name a version and pin its digest",
                            f.image
                        ),
                    )),
                    Ok(r) => out.push(Finding::new(
                        "from-no-digest",
                        "info",
                        line,
                        format!(
                            "FROM {}: not pinned by digest ({}@sha256:…), and a tag can be moved",
                            f.image,
                            r.familiar()
                        ),
                    )),
                    Err(_) => {}
                }
            }
        }
        for ins in &stage.instructions {
            if let Command::Run(r) = &ins.command {
                let mut text = match &r.cmd {
                    CmdLine::Shell(s) => s.clone(),
                    CmdLine::Exec(v) => v.join(" "),
                };
                for h in &r.heredocs {
                    text.push('\n');
                    text.push_str(&h.body);
                }
                out.extend(run_rules(&text, Some(ins.line)));
            }
        }
    }
    if target.is_none() {
        if let Some(stage) = df.stages.get(last) {
            let user = stage
                .instructions
                .iter()
                .rev()
                .find_map(|i| match &i.command {
                    Command::User(u) => Some(u.clone()),
                    _ => None,
                });
            if user.as_deref().is_none_or(is_root) {
                out.push(Finding::new(
                    "runs-as-root",
                    "warning",
                    Some(stage.from.line),
                    "the final stage sets no USER (or USER root): the image runs as root unless its base says otherwise; add an unprivileged USER".into(),
                ));
            }
        }
    }
    out
}

/// The rules about one RUN's shell text.
fn run_rules(text: &str, line: Option<usize>) -> Vec<Finding> {
    let mut out = Vec::new();
    let cmds: Vec<Vec<&str>> = text
        .split(['\n', ';', '|', '&'])
        .map(|c| c.split_whitespace().collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .collect();
    let apt = |c: &Vec<&str>, verb: &str| {
        c.iter()
            .position(|w| matches!(*w, "apt-get" | "apt" | "aptitude"))
            .is_some_and(|i| c[i..].contains(&verb))
    };
    let updates = cmds.iter().any(|c| apt(c, "update"));
    let installs = cmds
        .iter()
        .any(|c| apt(c, "install") || apt(c, "upgrade") || apt(c, "dist-upgrade"));
    if updates && !installs {
        out.push(Finding::new(
            "apt-update-alone",
            "warning",
            line,
            "apt-get update in a RUN of its own: its result is cached with that step while later installs change, so they use a stale package index; run `apt-get update && apt-get install -y …` in one RUN".into(),
        ));
    }
    if installs && !text.contains("/var/lib/apt/lists") {
        out.push(Finding::new(
            "apt-lists-left",
            "info",
            line,
            "apt-get install without `rm -rf /var/lib/apt/lists/*` in the same RUN leaves the package lists in the layer".into(),
        ));
    }
    let apk_add = cmds.iter().any(|c| {
        c.iter()
            .position(|w| *w == "apk")
            .is_some_and(|i| c[i..].contains(&"add") && !c.contains(&"--no-cache"))
    });
    if apk_add && !text.contains("/var/cache/apk") {
        out.push(Finding::new(
            "apk-cache-left",
            "info",
            line,
            "apk add without --no-cache leaves /var/cache/apk in the layer".into(),
        ));
    }
    out
}

fn is_root(u: &str) -> bool {
    let user = u.split(':').next().unwrap_or("");
    user.is_empty() || user == "root" || user == "0"
}

/// An image's findings from its layers and config.
pub fn lint_layers(store: &Store, image: &Image) -> Result<Vec<Finding>> {
    let a = analyze(store, image, 1)?;
    Ok(layer_rules(&a))
}

/// Everything that can be said of an image: its layers, its config, and the RUN steps its
/// history records.
pub fn lint_image(store: &Store, image: &Image) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for h in &image.config.history {
        let Some(by) = &h.created_by else { continue };
        if let Some(cmd) = run_text(by) {
            out.extend(run_rules(cmd, None).into_iter().map(|mut f| {
                f.message = format!("{} (history: {})", f.message, truncate(by, 80));
                f
            }));
        }
    }
    out.extend(lint_layers(store, image)?);
    Ok(out)
}

/// The shell text of a history entry made by a RUN (berth's, BuildKit's or dockerd's form).
fn run_text(created_by: &str) -> Option<&str> {
    if created_by.contains("#(nop)") {
        return None;
    }
    let s = created_by.strip_prefix("RUN ").unwrap_or(created_by);
    let i = s.find("/bin/sh -c ")?;
    Some(s[i + "/bin/sh -c ".len()..].trim_end_matches(" # buildkit"))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

fn layer_rules(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let names = layer_names(a);
    let name = |i: usize| {
        let n = names.get(&i).cloned().unwrap_or_default();
        if n.is_empty() {
            format!("layer {i}")
        } else {
            format!("layer {i} ({})", truncate(&n, 60))
        }
    };
    if a.wasted_bytes > 0 {
        let top = &a.wasted[0];
        let verb = if top.how == "deleted" {
            "deleted"
        } else {
            "replaced"
        };
        out.push(
            Finding::new(
                "wasted-bytes",
                "warning",
                None,
                format!(
                    "{} wasted in {} file{} shipped in a layer but {} by a later one (largest: {} {}, added in {}, {verb} in {}); remove files in the step that makes them",
                    human(a.wasted_bytes),
                    a.wasted.len(),
                    if a.wasted.len() == 1 { "" } else { "s" },
                    if a.wasted.iter().all(|w| w.how == "deleted") { "deleted" } else { "deleted or replaced" },
                    top.path,
                    human(top.size),
                    name(top.added_in),
                    name(top.removed_in),
                ),
            )
            .bytes(a.wasted_bytes),
        );
    }
    for (prefix, what) in [
        ("/var/lib/apt/lists/", "apt package lists"),
        ("/var/cache/apt/archives/", "apt's downloaded packages"),
        ("/var/cache/apk/", "the apk cache"),
        ("/var/cache/yum/", "the yum cache"),
        ("/var/cache/dnf/", "the dnf cache"),
        ("/root/.cache/pip/", "the pip cache"),
    ] {
        let (bytes, n) = bytes_under(&a.visible, prefix);
        // apt keeps a lock file and an empty partial/ dir even when clean.
        if bytes > 4096 {
            out.push(
                Finding::new(
                    "package-cache",
                    "warning",
                    None,
                    format!(
                        "{what} left in the image: {} in {n} files under {prefix}; remove them in the RUN that makes them",
                        human(bytes)
                    ),
                )
                .bytes(bytes),
            );
        }
    }
    for f in &a.files {
        if let Some(why) = secret_like(&f.path, &f.host) {
            let still = a.visible.get(&f.path).is_some_and(|(l, _)| *l == f.layer);
            out.push(Finding::new(
                "secret-file",
                "warning",
                None,
                format!(
                    "secret-looking file {} ({why}) in {}{}",
                    f.path,
                    name(f.layer),
                    if still {
                        ""
                    } else {
                        ": deleted later, but that layer still carries it"
                    }
                ),
            ));
        }
    }
    if is_root(&a.user) {
        out.push(Finding::new(
            "runs-as-root",
            "warning",
            None,
            format!(
                "the image runs as root ({}); add an unprivileged USER",
                if a.user.is_empty() {
                    "no USER".to_string()
                } else {
                    format!("USER {}", a.user)
                }
            ),
        ));
    }
    out
}

/// Why a file looks like a secret, if it does.
fn secret_like(path: &str, host: &std::path::Path) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" => return Some("an SSH private key"),
        ".netrc" | ".git-credentials" | ".pgpass" => return Some("stored credentials"),
        ".env" => return Some("an environment file"),
        "credentials" if path.contains("/.aws/") => return Some("AWS credentials"),
        "config.json" if path.contains("/.docker/") => {
            return contains(host, b"\"auth\"").then_some("registry credentials")
        }
        ".npmrc" => return contains(host, b"_auth").then_some("an npm token"),
        _ => {}
    }
    if lower.ends_with(".p12") || lower.ends_with(".pfx") || lower.ends_with(".jks") {
        return Some("a key store");
    }
    if (lower.ends_with(".pem") || lower.ends_with(".key")) && contains(host, b"PRIVATE KEY-----") {
        return Some("a private key");
    }
    None
}

/// Whether the first 64 KiB of a file contain `needle`.
fn contains(host: &std::path::Path, needle: &[u8]) -> bool {
    use std::io::Read;
    let mut buf = Vec::new();
    let Ok(f) = std::fs::File::open(host) else {
        return false;
    };
    if f.take(64 << 10).read_to_end(&mut buf).is_err() {
        return false;
    }
    buf.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rules(df: &str) -> Vec<String> {
        let df = crate::dockerfile::parse(df).unwrap();
        lint_dockerfile(&df, None)
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn dockerfile_rules() {
        assert_eq!(
            rules("FROM debian\nRUN apt-get update\nRUN apt-get install -y curl\n"),
            [
                "from-latest",
                "apt-update-alone",
                "apt-lists-left",
                "runs-as-root"
            ]
        );
        assert_eq!(
            rules("FROM debian:12\nRUN apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*\nUSER app\n"),
            ["from-no-digest"]
        );
        let pinned = format!("FROM debian:12@sha256:{}\nUSER 1000\n", "a".repeat(64));
        assert!(rules(&pinned).is_empty());
        assert_eq!(
            rules("FROM alpine:3 AS b\nFROM b\nRUN apk add curl\nUSER root\n"),
            ["from-no-digest", "apk-cache-left", "runs-as-root"]
        );
    }

    #[test]
    fn history_runs() {
        assert_eq!(
            run_text("RUN /bin/sh -c apt-get update"),
            Some("apt-get update")
        );
        assert_eq!(
            run_text("/bin/sh -c apt-get update # buildkit"),
            Some("apt-get update")
        );
        assert_eq!(run_text("/bin/sh -c #(nop)  CMD [\"sh\"]"), None);
    }
}
