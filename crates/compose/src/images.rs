//! Images of services: built (`POST /build` with the context as a tar), pulled
//! (`POST /images/create`), pushed (`POST /images/{name}/push`), as dockerd defines those
//! endpoints.

use std::path::Path;

use serde_json::{json, Value};

use berth_build::ignore::{clean, Ignore};

use crate::api::{each_message, enc, Engine, Method, Payload};
use crate::error::{Error, Result};
use crate::normalize::text;
use crate::project::Project;
use crate::state::progress;

/// The image's id, or `None` when the daemon does not have it.
pub async fn image_id<E: Engine>(e: &E, image: &str) -> Result<Option<String>> {
    match e
        .call(
            Method::Get,
            &format!("/images/{}/json", enc(image)),
            Payload::None,
        )
        .await
    {
        Ok(v) => Ok(v["Id"].as_str().map(String::from)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// `name[:tag]` / `name@digest` split as the daemon's `fromImage` and `tag` take them.
pub fn split_reference(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// Pulls one service's image.
pub async fn pull<E: Engine>(e: &E, service: &str, image: &str) -> Result<()> {
    let (name, tag) = split_reference(image);
    let path = format!("/images/create?fromImage={}&tag={}", enc(&name), enc(&tag));
    transfer(e, service, image, &path, ("pull", "Pulling", "Pulled")).await
}

/// Pushes one service's image.
pub async fn push<E: Engine>(e: &E, service: &str, image: &str) -> Result<()> {
    let (name, tag) = split_reference(image);
    let path = format!("/images/{}/push?tag={}", enc(&name), enc(&tag));
    transfer(e, service, image, &path, ("push", "Pushing", "Pushed")).await
}

/// A pull or push with the registry's credentials, its stream read to the end.
async fn transfer<E: Engine>(
    e: &E,
    service: &str,
    image: &str,
    path: &str,
    (verb, doing, done): (&str, &str, &str),
) -> Result<()> {
    progress("", service, doing);
    let auth = e.registry_auth(image);
    let s = e
        .stream(
            Method::Post,
            path,
            Payload::None,
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    each_message(s, |_| {}).await.map_err(|err| {
        Error::Failed(format!(
            "failed to {verb} image {image} for service {service}: {err}"
        ))
    })?;
    progress("", service, done);
    Ok(())
}

/// Options of `compose build` (and `up --build`).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
    /// `--build-arg K=V` over the file's `args`.
    pub args: Vec<(String, String)>,
}

/// Builds a service's image from its `build` section; returns the image id.
pub async fn build<E: Engine>(
    e: &E,
    project: &Project,
    service: &str,
    svc: &Value,
    opts: &BuildOptions,
) -> Result<String> {
    let b = svc
        .get("build")
        .ok_or_else(|| Error::Invalid(format!("service {service:?} has no build section")))?;
    let image = project.image_of(service, svc);
    let context = b.get("context").map(text).unwrap_or_else(|| ".".into());
    let mut dockerfile = b
        .get("dockerfile")
        .map(text)
        .unwrap_or_else(|| "Dockerfile".into());
    let inline = b.get("dockerfile_inline").map(text);
    if inline.is_some() {
        dockerfile = ".compose-inline.Dockerfile".into();
    }
    let tar = context_tar(Path::new(&context), inline.as_deref(), &dockerfile)?;
    let mut args: serde_json::Map<String, Value> = b
        .get("args")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in &opts.args {
        args.insert(k.clone(), json!(v));
    }
    let labels = b.get("labels").cloned().unwrap_or_else(|| json!({}));
    let mut q = vec![
        ("t", image.clone()),
        ("dockerfile", dockerfile),
        ("buildargs", Value::Object(args).to_string()),
        ("labels", labels.to_string()),
        ("rm", "1".into()),
        ("forcerm", "1".into()),
    ];
    if let Some(t) = b.get("target").map(text) {
        q.push(("target", t));
    }
    if let Some(n) = b.get("network").map(text) {
        q.push(("networkmode", n));
    }
    if opts.no_cache || flag_of(b, "no_cache") {
        q.push(("nocache", "1".into()));
    }
    if opts.pull || flag_of(b, "pull") {
        q.push(("pull", "1".into()));
    }
    for tag in b
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        q.push(("t", text(tag)));
    }
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let path = format!("/build?{}", query.join("&"));
    progress("", service, "Building");
    let s = e
        .stream(
            Method::Post,
            &path,
            Payload::Tar(tar),
            &[
                ("Content-Type", "application/x-tar".into()),
                ("X-Registry-Config", e.registry_config()),
            ],
        )
        .await?;
    let quiet = opts.quiet;
    let mut built_id = None;
    each_message(s, |m| {
        if let Some(line) = m.get("stream").and_then(Value::as_str) {
            if !quiet {
                eprint!("{line}");
            }
        }
        // A base image's pull, one line per step as docker shows it off a terminal.
        if let Some(status) = m.get("status").and_then(Value::as_str) {
            let bar = m["progressDetail"]["total"].as_u64().is_some_and(|t| t > 0);
            if !quiet && !bar {
                match m.get("id").and_then(Value::as_str) {
                    Some(id) => eprintln!("{id}: {status}"),
                    None => eprintln!("{status}"),
                }
            }
        }
        if let Some(id) = m
            .get("aux")
            .and_then(|a| a.get("ID"))
            .and_then(Value::as_str)
        {
            built_id = Some(id.to_string());
        }
    })
    .await
    .map_err(|err| Error::Failed(format!("failed to build service {service:?}: {err}")))?;
    progress("", service, "Built");
    match built_id {
        Some(id) => Ok(id),
        None => image_id(e, &image)
            .await?
            .ok_or_else(|| Error::Failed(format!("the build of {service:?} made no image"))),
    }
}

fn flag_of(v: &Value, key: &str) -> bool {
    crate::project::flag(v.get(key))
}

/// The build context as a tar, without what `.dockerignore` excludes (Docker's rules, the
/// builder's own matcher), and with an inline Dockerfile added. As the docker CLI does, the
/// Dockerfile and `.dockerignore` are always sent.
fn context_tar(dir: &Path, inline: Option<&str>, dockerfile: &str) -> Result<Vec<u8>> {
    let path = dir.join(".dockerignore");
    let ignore = match std::fs::read_to_string(&path) {
        Ok(text) => {
            Ignore::parse(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let walk = ContextWalk {
        root: dir,
        ignore: &ignore,
        // Without `!` patterns nothing under an excluded directory can come back.
        reincludes: ignore.lines.iter().any(|l| l.starts_with('!')),
        keep: [clean(dockerfile), ".dockerignore".to_string()],
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let io = |e: std::io::Error| Error::io(dir, e);
    walk.add_dir(&mut b, dir).map_err(io)?;
    if let Some(text) = inline {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, dockerfile, text.as_bytes())
            .map_err(io)?;
    }
    b.into_inner().map_err(io)
}

struct ContextWalk<'a> {
    root: &'a Path,
    ignore: &'a Ignore,
    reincludes: bool,
    /// Paths sent whatever the patterns say.
    keep: [String; 2],
}

impl ContextWalk<'_> {
    fn add_dir(&self, b: &mut tar::Builder<Vec<u8>>, dir: &Path) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path.strip_prefix(self.root).unwrap_or(&path);
            let rel_s = rel.to_string_lossy();
            let excluded = self.ignore.excludes(&rel_s) && !self.keep.iter().any(|k| *k == rel_s);
            if entry.file_type()?.is_dir() {
                if !excluded {
                    b.append_dir(rel, &path)?;
                }
                if !excluded || self.reincludes {
                    self.add_dir(b, &path)?;
                }
            } else if !excluded {
                b.append_path_with_name(&path, rel)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{block, Recorder};

    #[test]
    fn the_context_leaves_out_what_dockerignore_excludes_by_dockers_rules() {
        let d = tempfile::tempdir().unwrap();
        for (f, body) in [
            ("Dockerfile", "FROM scratch\n"),
            (
                ".dockerignore",
                "*.log\nbuild\n!build/keep.txt\nDockerfile\n",
            ),
            ("a.log", "x"),
            ("app.txt", "x"),
            ("build/x.o", "x"),
            ("build/keep.txt", "x"),
            ("sub/b.log", "x"),
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let tar = context_tar(d.path(), None, "Dockerfile").unwrap();
        let mut names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        // `*.log` is the top level's only (as in Docker); the Dockerfile is always sent; a
        // `!` brings a file back out of an excluded directory.
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "app.txt",
                "build/keep.txt",
                "sub",
                "sub/b.log"
            ]
        );
        std::fs::write(d.path().join(".dockerignore"), "[\n").unwrap();
        let e = context_tar(d.path(), None, "Dockerfile")
            .unwrap_err()
            .to_string();
        assert!(e.contains(".dockerignore") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn build_sends_the_context_as_dockerd_expects() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.path().join("app.txt"), "x").unwrap();
        std::fs::write(d.path().join("secret.key"), "x").unwrap();
        std::fs::write(d.path().join(".dockerignore"), "secret.key\n").unwrap();
        let project = Project::named("demo", d.path().to_path_buf());
        let svc = json!({"build": {"context": d.path().to_str().unwrap(),
            "dockerfile": "Dockerfile", "args": {"A": "1"}}});
        let e = Recorder {
            answer: "{\"stream\":\"Step 1/1\\n\"}{\"aux\":{\"ID\":\"sha256:abc\"}}",
            ..Default::default()
        };
        let id = block(build(&e, &project, "web", &svc, &BuildOptions::default())).unwrap();
        assert_eq!(id, "sha256:abc");
        let seen = e.seen.borrow();
        let (m, path, headers) = (seen[0].method, &seen[0].path, &seen[0].headers);
        let Payload::Tar(tar) = &seen[0].body else {
            panic!("no tar: {:?}", seen[0].body)
        };
        assert_eq!(m, Method::Post);
        assert!(
            path.starts_with("/build?t=demo-web&dockerfile=Dockerfile&buildargs="),
            "{path}"
        );
        assert!(path.contains(&enc(r#"{"A":"1"}"#)), "{path}");
        assert!(headers
            .iter()
            .any(|(k, v)| k == "Content-Type" && v == "application/x-tar"));
        let mut names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "app.txt"]);
    }

    #[test]
    fn pull_and_push_name_the_reference_and_carry_credentials() {
        let e = Recorder {
            answer: "{\"status\":\"done\"}",
            ..Default::default()
        };
        block(pull(&e, "web", "127.0.0.1:5000/app:1")).unwrap();
        block(push(&e, "web", "127.0.0.1:5000/app:1")).unwrap();
        let seen = e.seen.borrow();
        assert_eq!(
            seen[0].path,
            "/images/create?fromImage=127.0.0.1%3A5000%2Fapp&tag=1"
        );
        assert_eq!(seen[1].path, "/images/127.0.0.1%3A5000%2Fapp/push?tag=1");
        for s in seen.iter() {
            assert!(s
                .headers
                .iter()
                .any(|(k, v)| k == "X-Registry-Auth" && v == "e30="));
        }
        let failing = Recorder {
            answer: "{\"error\":\"manifest unknown\"}",
            ..Default::default()
        };
        let err = block(pull(&failing, "web", "nope"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "failed to pull image nope for service web: manifest unknown"
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b:1.2"),
            ("127.0.0.1:5000/a/b".into(), "1.2".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a"),
            ("127.0.0.1:5000/a".into(), "latest".into())
        );
        assert_eq!(
            split_reference("x@sha256:ab"),
            ("x".into(), "sha256:ab".into())
        );
    }
}
