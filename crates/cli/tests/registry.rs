//! Registries end to end: a real registry (Debian's docker-registry, the CNCF distribution)
//! on 127.0.0.1 per test, berth's daemon, and as clients the docker CLI, the berth CLI,
//! docker-py and skopeo (the peer: what it pushes berth pulls and runs, what berth pushes it
//! reads with the same digests). Every bad input of the issue gets a clear error naming the
//! image and the cause, in bounded time, and leaves nothing unverified in the store.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::engine::{err, out, run_cmd, Daemon, IMAGE};
use common::netns::Netns;
use common::registry::{
    http_response, loopback_hostname, Auth, CuttingProxy, RawServer, Registry, Tls, PASSWORD, USER,
};
use serde_json::Value;

/// A daemon with busybox, quick registry time-outs and `extra` flags.
fn daemon(extra: &[&str]) -> Daemon {
    let mut args: Vec<String> = vec!["--registry-timeout".into(), "2".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let d = Daemon::start_bare_with(&args);
    d.import_busybox(IMAGE);
    d
}

fn skopeo(args: &[&str]) -> Output {
    let mut c = Command::new("skopeo");
    c.args(args);
    run_cmd(c, None, 120)
}

fn skopeo_digest(image: &str) -> String {
    let o = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    assert!(o.status.success(), "skopeo inspect {image}: {}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

/// `N: digest: sha256:… size: M` of a push.
fn pushed_digest(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.split(" digest: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in push output: {output}"))
        .to_string()
}

/// What the store holds: blob names and snapshot names (temp entries included, to catch
/// leftovers).
fn store_state(d: &Daemon) -> (BTreeSet<String>, BTreeSet<String>) {
    let list = |p: &Path| -> BTreeSet<String> {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        list(&d.root.join("blobs/sha256")),
        list(&d.root.join("snapshots")),
    )
}

/// Nothing unverified in the store: no temp entries, and every blob that appeared since
/// `before` hashes to its name (a layer that completed before the failure may stay).
fn assert_verified_since(d: &Daemon, before: &(BTreeSet<String>, BTreeSet<String>), what: &str) {
    use sha2::Digest as _;
    let (blobs, snaps) = store_state(d);
    for n in blobs.iter().chain(&snaps) {
        assert!(!n.starts_with('.'), "{what} left {n} in the store");
    }
    for b in blobs.difference(&before.0) {
        let data = std::fs::read(d.root.join("blobs/sha256").join(b)).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&data)),
            *b,
            "{what}: blob {b} is not what its name says"
        );
    }
}

/// `docker pull image`, which must fail within `secs` and keep nothing unverified: its
/// error, and the store as it was before.
fn pull_failing(
    d: &Daemon,
    image: &str,
    secs: u64,
) -> (String, (BTreeSet<String>, BTreeSet<String>)) {
    let before = store_state(d);
    let t = Instant::now();
    let o = d.docker(&["pull", image]);
    let took = t.elapsed();
    assert!(!o.status.success(), "pull {image} succeeded: {}", out(&o));
    assert!(
        took < Duration::from_secs(secs),
        "pull {image} took {took:?}"
    );
    assert_verified_since(d, &before, image);
    (err(&o), before)
}

/// A failed pull: non-zero exit, an error naming `image` and containing `cause`, within
/// `secs`, and the store exactly as before.
fn assert_pull_fails(d: &Daemon, image: &str, cause: &str, secs: u64) {
    let (e, _) = pull_failing(d, image, secs);
    // The message names the repository (docker's "pull access denied for REPO") or more.
    let name = image.split('@').next().unwrap();
    let repo = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    assert!(
        e.contains(repo) && e.contains(cause),
        "pull {image}: wanted the image and {cause:?} in: {e}"
    );
    let imgs = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!imgs.contains(image), "{image} is listed: {imgs}");
}

#[test]
fn docker_cli_push_pull_by_tag_and_digest_keeps_digests_that_skopeo_reads() {
    let reg = Registry::start(Auth::None, None);
    let d = daemon(&[]);
    let r = &reg.host;
    // Two layers: busybox and a commit on top.
    d.commit_layer("echo layer-two > /hello", &format!("{r}/app:1"));

    let push = d.docker_ok(&["push", &format!("{r}/app:1")]);
    assert!(
        push.contains(&format!("The push refers to repository [{r}/app]")),
        "{push}"
    );
    assert_eq!(push.matches(": Pushed").count(), 2, "{push}");
    let digest = pushed_digest(&push);
    assert_eq!(skopeo_digest(&format!("{r}/app:1")), digest);

    // Gone locally (tag and repo digest), then back from the registry.
    let rmi = d.docker_ok(&["rmi", &format!("{r}/app:1")]);
    assert!(
        rmi.contains(&format!("Untagged: {r}/app@{digest}")),
        "{rmi}"
    );
    assert!(rmi.contains("Deleted: "), "{rmi}");
    let pull = d.docker_ok(&["pull", &format!("{r}/app:1")]);
    assert!(pull.contains("1: Pulling from app"), "{pull}");
    assert_eq!(pull.matches(": Pull complete").count(), 2, "{pull}");
    assert!(pull.contains(&format!("Digest: {digest}")), "{pull}");
    assert!(
        pull.contains(&format!("Status: Downloaded newer image for {r}/app:1")),
        "{pull}"
    );
    assert!(pull.ends_with(&format!("{r}/app:1")), "{pull}");
    let digests = d.docker_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}}",
    ]);
    assert!(digests.contains(&format!("{r}/app {digest}")), "{digests}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", &format!("{r}/app:1"), "cat", "/hello"]),
        "layer-two"
    );
    // name@sha256: references: run and pull by digest.
    assert_eq!(
        d.docker_ok(&["run", "--rm", &format!("{r}/app@{digest}"), "cat", "/hello"]),
        "layer-two"
    );
    let again = d.docker_ok(&["pull", &format!("{r}/app@{digest}")]);
    assert!(again.contains("Status: Image is up to date"), "{again}");
    assert_eq!(again.matches(": Already exists").count(), 2, "{again}");
    // A fresh daemon pulls by digest alone: no tag, the digest listed.
    let d2 = daemon(&[]);
    let by_digest = d2.docker_ok(&["pull", &format!("{r}/app@{digest}")]);
    assert!(
        by_digest.contains(&format!(
            "Status: Downloaded newer image for {r}/app@{digest}"
        )),
        "{by_digest}"
    );
    let inspect = d2.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RepoTags}} {{json .RepoDigests}}",
        &format!("{r}/app@{digest}"),
    ]);
    assert_eq!(inspect, format!("[] [\"{r}/app@{digest}\"]"));
    // pull --all-tags: every tag of the repository.
    d.docker_ok(&["tag", &format!("{r}/app:1"), &format!("{r}/app:2")]);
    d.docker_ok(&["push", &format!("{r}/app:2")]);
    let all = d2.docker_ok(&["pull", "-a", &format!("{r}/app")]);
    assert!(
        all.contains("1: Pulling from app") && all.contains("2: Pulling from app"),
        "{all}"
    );
    assert!(all.ends_with(&format!("{r}/app")), "{all}");
    let tags = d2.docker_ok(&["images", "--format", "{{.Tag}}", &format!("{r}/app")]);
    assert_eq!(
        tags.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from(["1", "2"]),
        "{tags}"
    );

    // save writes a pulled image's layers as stored (compressed): docker load (here into
    // the other daemon) and skopeo read the archive.
    let tar = d.dir.join("pulled.tar");
    d.docker_ok(&["save", "-o", tar.to_str().unwrap(), &format!("{r}/app:1")]);
    let o = skopeo(&["inspect", &format!("docker-archive:{}", tar.display())]);
    assert!(
        o.status.success(),
        "skopeo inspect docker-archive: {}",
        err(&o)
    );
    d2.docker_ok(&["rmi", "-f", &format!("{r}/app:1")]);
    let loaded = d2.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {r}/app:1")),
        "{loaded}"
    );
    assert_eq!(
        d2.docker_ok(&["run", "--rm", &format!("{r}/app:1"), "cat", "/hello"]),
        "layer-two"
    );
    // Pushing what was pulled keeps every digest: the blobs are the pulled bytes.
    d.docker_ok(&["tag", &format!("{r}/app:1"), &format!("{r}/copy:1")]);
    let push2 = d.docker_ok(&["push", &format!("{r}/copy:1")]);
    assert_eq!(push2.matches(": Mounted from app").count(), 2, "{push2}");
    assert_eq!(pushed_digest(&push2), digest);
    assert_eq!(skopeo_digest(&format!("{r}/copy:1")), digest);

    // search falls back to the catalog (distribution serves no /v1/search).
    let s = d.docker_ok(&["search", "--format", "{{.Name}}", &format!("{r}/app")]);
    assert_eq!(s, format!("{r}/app"));
    let s = d.docker_ok(&[
        "search",
        "--limit",
        "1",
        "--format",
        "{{.Name}}",
        &format!("{r}/"),
    ]);
    assert_eq!(s.lines().count(), 1, "{s}");
    let s = d.docker_ok(&[
        "search",
        "--filter",
        "is-official=true",
        &format!("{r}/app"),
    ]);
    assert_eq!(s.lines().count(), 1, "only the header: {s}");
}

#[test]
fn skopeo_pushed_gzip_and_zstd_images_pull_run_and_push_back_unchanged() {
    let reg = Registry::start(Auth::None, None);
    let d = daemon(&[]);
    let r = &reg.host;
    let tar = d.dir.join("bb.tar");
    d.docker_ok(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
    let src = format!("docker-archive:{}", tar.display());
    for (tag, extra) in [
        ("gzip", vec![]),
        (
            "zstd",
            vec!["--format", "oci", "--dest-compress-format", "zstd"],
        ),
    ] {
        let dst = format!("docker://{r}/sk:{tag}");
        let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
        args.extend(extra);
        args.extend([src.as_str(), dst.as_str()]);
        let o = skopeo(&args);
        assert!(o.status.success(), "skopeo copy {tag}: {}", err(&o));
        let theirs = skopeo_digest(&format!("{r}/sk:{tag}"));

        let pull = d.docker_ok(&["pull", &format!("{r}/sk:{tag}")]);
        assert!(pull.contains(&format!("Digest: {theirs}")), "{pull}");
        assert_eq!(
            d.docker_ok(&["run", "--rm", &format!("{r}/sk:{tag}"), "echo", "ran", tag]),
            format!("ran {tag}")
        );
        // berth pushes it to another repository: skopeo reads the same digest.
        d.docker_ok(&["tag", &format!("{r}/sk:{tag}"), &format!("{r}/back:{tag}")]);
        let push = d.docker_ok(&["push", &format!("{r}/back:{tag}")]);
        assert_eq!(pushed_digest(&push), theirs, "{push}");
        assert_eq!(skopeo_digest(&format!("{r}/back:{tag}")), theirs);
    }
    // skopeo copies what berth pushed into an OCI layout, verifying every blob.
    let oci = d.dir.join("oci");
    let o = skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{r}/back:zstd"),
        &format!("oci:{}:x", oci.display()),
    ]);
    assert!(o.status.success(), "skopeo copy back: {}", err(&o));
}

/// PUTs `body` as a blob of `repo` through the registry's API (curl), returning its digest.
fn put_blob(reg: &Registry, repo: &str, body: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)));
    let o = Command::new("curl")
        .args([
            "-sSi",
            "-X",
            "POST",
            &format!("http://{}/v2/{repo}/blobs/uploads/", reg.host),
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&o.stdout).into_owned();
    let loc = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("http://{}{loc}", reg.host)
    };
    let file = reg.dir.join("upload.bin");
    std::fs::write(&file, body).unwrap();
    let o = Command::new("curl")
        .args([
            "-sSf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .arg(format!("{loc}&digest={digest}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    digest
}

fn put_manifest(reg: &Registry, repo: &str, tag: &str, media: &str, body: &[u8]) {
    let file = reg.dir.join("manifest.json");
    std::fs::write(&file, body).unwrap();
    let o = Command::new("curl")
        .args([
            "-sSf",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media}"),
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .arg(format!("http://{}/v2/{repo}/manifests/{tag}", reg.host))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn an_index_is_resolved_for_the_requested_platform() {
    use sha2::Digest as _;
    let reg = Registry::start(Auth::None, None);
    let d = daemon(&[]);
    let r = &reg.host;
    d.docker_ok(&["tag", IMAGE, &format!("{r}/multi:host")]);
    d.docker_ok(&["push", &format!("{r}/multi:host")]);
    let o = Command::new("curl")
        .args([
            "-sSf",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{r}/v2/multi/manifests/host"))
        .output()
        .unwrap();
    let host_manifest = o.stdout;
    let host_digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(&host_manifest))
    );
    // The same layers under an arm64 config.
    let m: Value = serde_json::from_slice(&host_manifest).unwrap();
    let cfg_digest = m["config"]["digest"].as_str().unwrap();
    let o = Command::new("curl")
        .args(["-sSf", &format!("http://{r}/v2/multi/blobs/{cfg_digest}")])
        .output()
        .unwrap();
    let mut cfg: Value = serde_json::from_slice(&o.stdout).unwrap();
    cfg["architecture"] = "arm64".into();
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let arm_cfg = put_blob(&reg, "multi", &cfg_bytes);
    let mut arm = m.clone();
    arm["config"]["digest"] = arm_cfg.clone().into();
    arm["config"]["size"] = cfg_bytes.len().into();
    let arm_bytes = serde_json::to_vec(&arm).unwrap();
    let arm_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&arm_bytes)));
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    put_manifest(&reg, "multi", "arm", oci_manifest, &arm_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": oci_manifest, "digest": arm_digest, "size": arm_bytes.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": oci_manifest, "digest": host_digest, "size": host_manifest.len(),
             "platform": {"os": "linux", "architecture": go_arch()}},
        ],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&index_bytes)));
    put_manifest(
        &reg,
        "multi",
        "1",
        "application/vnd.oci.image.index.v1+json",
        &index_bytes,
    );

    let d2 = daemon(&[]);
    let name = format!("{r}/multi:1");
    let pull = d2.docker_ok(&["pull", &name]);
    assert!(pull.contains(&format!("Digest: {index_digest}")), "{pull}");
    assert_eq!(
        d2.docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", &name]),
        go_arch()
    );
    let rd = d2.docker_ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &name]);
    assert!(rd.contains(&index_digest), "{rd}");
    d2.docker_ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(
        d2.docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", &name]),
        "arm64"
    );
    let o = d2.docker(&["pull", "--platform", "linux/s390x", &name]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("no matching manifest for linux/s390x in the manifest list entries")
            && err(&o).contains(&name),
        "{}",
        err(&o)
    );
}

/// A one-layer image made here: (manifest, (config digest, config), (layer digest, gzip)).
#[allow(clippy::type_complexity)]
fn synthetic_image(dir: &Path) -> (Vec<u8>, (String, Vec<u8>), (String, Vec<u8>)) {
    use sha2::Digest as _;
    let sha = |b: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)));
    let src = dir.join("synthetic");
    std::fs::create_dir_all(&src).unwrap();
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("noise"), noise).unwrap();
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["-cf", "-", "noise"])
        .output()
        .unwrap()
        .stdout;
    let mut gz = Command::new("gzip")
        .args(["-c", "-n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = gz.stdin.take().unwrap();
    let tar2 = tar.clone();
    let w = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &tar2));
    let layer = gz.wait_with_output().unwrap().stdout;
    w.join().unwrap().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": go_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&layer), "size": layer.len()}],
    }))
    .unwrap();
    (manifest, (sha(&config), config), (sha(&layer), layer))
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
fn htpasswd_login_logout_push_pull_and_a_wrong_password() {
    let reg = Registry::start(Auth::Htpasswd, None);
    let d = daemon(&[]);
    let r = &reg.host;
    let login = d.docker_in(
        &["login", r, "-u", USER, "--password-stdin"],
        PASSWORD.as_bytes(),
    );
    assert!(login.status.success(), "{}", err(&login));
    assert!(out(&login).contains("Login Succeeded"));
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(d.dir.join("docker-config/config.json")).unwrap())
            .unwrap();
    assert!(cfg["auths"][r]["auth"].is_string(), "{cfg}");

    d.docker_ok(&["tag", IMAGE, &format!("{r}/priv:1")]);
    let push = d.docker_ok(&["push", &format!("{r}/priv:1")]);
    assert!(push.contains(": Pushed"), "{push}");
    d.docker_ok(&["rmi", &format!("{r}/priv:1")]);
    d.docker_ok(&["pull", &format!("{r}/priv:1")]);

    let logout = d.docker_ok(&["logout", r]);
    assert!(
        logout.contains(&format!("Removing login credentials for {r}")),
        "{logout}"
    );
    d.docker_ok(&["rmi", &format!("{r}/priv:1")]);
    assert_pull_fails(&d, &format!("{r}/priv:1"), "priv", 20);

    let o = d.docker(&["login", r, "-u", USER, "-p", "wrong"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains(&format!(
            "login attempt to http://{r}/v2/ failed with status: 401 Unauthorized"
        )),
        "{}",
        err(&o)
    );

    // docker-py: login, push, pull with auth, a wrong password, a missing tag.
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/dockerpy/registry.py"
    ))
    .arg(&d.socket)
    .args([IMAGE, r, USER, PASSWORD]);
    let o = run_cmd(cmd, None, 120);
    assert!(
        o.status.success(),
        "{}{}\n{}",
        out(&o),
        err(&o),
        d.daemon_log()
    );
    assert!(out(&o).contains("docker-py registry ok"));
}

#[test]
fn token_flow_through_the_berth_cli_with_real_jwts() {
    let reg = Registry::start(Auth::Token, None);
    let d = daemon(&[]);
    let r = &reg.host;
    let mut c = d.berth_cmd(&["login", r, "-u", USER, "--password-stdin"]);
    c.env("HOME", &d.dir);
    let login = run_cmd(c, Some(PASSWORD.as_bytes()), 60);
    assert!(login.status.success(), "{}", err(&login));
    assert!(out(&login).contains("Login Succeeded"));
    // The token service issued a refresh token: stored as the identity token, as docker does.
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(d.dir.join("docker-config/config.json")).unwrap())
            .unwrap();
    assert!(cfg["auths"][r]["identitytoken"].is_string(), "{cfg}");

    let name = format!("{r}/tok/app:1");
    d.berth_ok(&["tag", IMAGE, &name]);
    let push = d.berth_ok(&["push", &name]);
    assert!(push.contains(": Pushed"), "{push}");
    d.berth_ok(&["rmi", &name]);
    let pull = d.berth_ok(&["pull", &name]);
    assert!(pull.contains("Digest: sha256:"), "{pull}");
    assert_eq!(
        d.berth_ok(&["run", "--rm", &name, "echo", "token-ok"]),
        "token-ok"
    );

    // The docker CLI with the same config (its X-Registry-Auth carries the identity token).
    d.docker_ok(&["rmi", &name]);
    d.docker_ok(&["pull", &name]);

    let logout = d.berth_ok(&["logout", r]);
    assert!(logout.contains("Removing login credentials"), "{logout}");
    d.docker_ok(&["rmi", &name]);
    assert_pull_fails(&d, &name, "pull access denied for", 20);

    let o = d.berth(&["login", r, "-u", USER, "-p", "wrong"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("failed with status: 401 Unauthorized"),
        "{}",
        err(&o)
    );
}

#[test]
fn tls_with_a_test_ca_and_a_client_certificate() {
    let reg = Registry::start(Auth::None, Some(Tls { client_certs: true }));
    let host = loopback_hostname();
    let mut names = vec!["127.0.0.1"];
    if let Some(h) = &host {
        names.push(h);
    }
    let certs = reg.certs_dir(&names, true);
    let d = daemon(&["--certs-dir", certs.to_str().unwrap()]);
    let r = &reg.host;
    d.docker_ok(&["tag", IMAGE, &format!("{r}/tls:1")]);
    d.docker_ok(&["push", &format!("{r}/tls:1")]);
    d.docker_ok(&["rmi", &format!("{r}/tls:1")]);
    d.docker_ok(&["pull", &format!("{r}/tls:1")]);
    if let Some(h) = &host {
        // A name is not an insecure registry: the test CA is what makes it trusted.
        let name = format!("{h}:{}/tls:1", reg.port);
        d.docker_ok(&["pull", &name]);
        assert_eq!(
            d.docker_ok(&["run", "--rm", &name, "echo", "tls-ok"]),
            "tls-ok"
        );
        let bare = daemon(&["--certs-dir", d.dir.join("no-certs").to_str().unwrap()]);
        assert_pull_fails(&bare, &name, "certificate", 30);
    } else {
        eprintln!("note: this machine's host name does not resolve to 127.0.0.1; CA verification by name not tested");
    }
    // Without the client certificate the registry refuses the handshake.
    let no_client = reg.dir.join("no-client");
    std::fs::create_dir_all(no_client.join(format!("127.0.0.1:{}", reg.port))).unwrap();
    std::fs::copy(
        reg.dir.join("ca.crt"),
        no_client.join(format!("127.0.0.1:{}/ca.crt", reg.port)),
    )
    .unwrap();
    let d3 = daemon(&["--certs-dir", no_client.to_str().unwrap()]);
    assert_pull_fails(
        &d3,
        &format!("{r}/tls:1"),
        &format!("pulling {r}/tls:1"),
        30,
    );
}

#[test]
fn bad_registries_and_bad_content_fail_clearly_and_keep_nothing() {
    let reg = Registry::start(Auth::None, None);
    let d = daemon(&[]);
    let r = &reg.host;
    d.commit_layer(
        "head -c 600000 /dev/urandom > /noise",
        &format!("{r}/bad:1"),
    );
    let push = d.docker_ok(&["push", &format!("{r}/bad:1")]);
    let manifest_digest = pushed_digest(&push);
    d.docker_ok(&["rmi", &format!("{r}/bad:1")]);

    // A missing tag, a missing repository, an invalid name.
    assert_pull_fails(
        &d,
        &format!("{r}/bad:nope"),
        "not found: manifest unknown",
        20,
    );
    assert_pull_fails(&d, &format!("{r}/nothing:1"), "not found", 20);
    let (st, v) = d.api_json(
        "POST",
        &format!("/images/create?fromImage={r}/Bad&tag=1"),
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("invalid reference format"),
        "{v}"
    );
    let o = d.docker(&["push", &format!("{r}/never:1")]);
    assert!(
        err(&o).contains(&format!(
            "An image does not exist locally with the tag: {r}/never"
        )),
        "{}",
        err(&o)
    );

    // A download cut once resumes from where it stopped (Range), not from the start.
    let layer = {
        let o = Command::new("curl")
            .args([
                "-sSf",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ])
            .arg(format!("http://{r}/v2/bad/manifests/{manifest_digest}"))
            .output()
            .unwrap();
        let m: Value = serde_json::from_slice(&o.stdout).unwrap();
        let top = m["layers"].as_array().unwrap().last().unwrap().clone();
        let blobs: u64 = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&m["config"]])
            .map(|d| d["size"].as_u64().unwrap())
            .sum();
        (
            top["digest"].as_str().unwrap().to_string(),
            top["size"].as_u64().unwrap(),
            blobs + o.stdout.len() as u64,
        )
    };
    assert!(layer.1 > 400_000, "the noise layer is {} bytes", layer.1);
    let proxy = CuttingProxy::start(reg.port, 200_000, 1);
    let via = format!("127.0.0.1:{}/bad:1", proxy.port);
    let pull = d.docker_ok(&["pull", &via]);
    assert!(pull.contains("Pull complete"), "{pull}");
    let carried = proxy.to_client.load(std::sync::atomic::Ordering::Relaxed);
    // Every blob and the manifest once, plus HTTP headers: a refetch from the start would
    // add the 200 kB before the cut again.
    let total = layer.2;
    assert!(
        carried < total + 100_000,
        "{carried} bytes for a {total}-byte image: refetched"
    );
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "no Range request"
    );
    d.docker_ok(&["rmi", &via]);
    drop(proxy);

    // A registry that always sends a blob short: truncated, after bounded retries.
    let (manifest, config, layer_gz) = synthetic_image(&d.dir);
    let short = RawServer::start(move |line| {
        let path = line.split_whitespace().nth(1).unwrap_or("");
        Some(if path.contains("/manifests/") {
            http_response(
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                &manifest,
            )
        } else if path.ends_with(&config.0) {
            http_response("200 OK", "application/octet-stream", &config.1)
        } else if path.ends_with(&layer_gz.0) {
            let mut r = http_response("200 OK", "application/octet-stream", &layer_gz.1);
            r.truncate(r.len() - layer_gz.1.len() / 2);
            r
        } else {
            http_response("200 OK", "application/json", b"{}")
        })
    });
    assert_pull_fails(
        &d,
        &format!("127.0.0.1:{}/short:1", short.port),
        "download truncated",
        30,
    );

    // A blob corrupted in the registry's storage: the digest check catches it.
    let data = reg.blob_data(&layer.0);
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&data, &bytes).unwrap();
    assert_pull_fails(
        &d,
        &format!("{r}/bad:1"),
        &format!("layer {} failed verification", layer.0),
        20,
    );

    // Servers that misbehave: 500, a malformed manifest, an oversized one, silence.
    let s500 = RawServer::start(|_| {
        Some(http_response(
            "500 Internal Server Error",
            "text/plain",
            b"boom",
        ))
    });
    assert_pull_fails(
        &d,
        &format!("127.0.0.1:{}/x:1", s500.port),
        "unexpected status 500",
        30,
    );
    let manifest_path = "GET /v2/x/manifests/1 ";
    let malformed = RawServer::start(move |line| {
        Some(if line.starts_with(manifest_path) {
            http_response(
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                b"{\"schemaVersion\": 2, \"config\": ",
            )
        } else {
            http_response("200 OK", "application/json", b"{}")
        })
    });
    assert_pull_fails(
        &d,
        &format!("127.0.0.1:{}/x:1", malformed.port),
        "malformed manifest",
        30,
    );
    let huge = RawServer::start(move |line| {
        Some(if line.starts_with(manifest_path) {
            let mut body = b"{\"schemaVersion\":2,\"pad\":\"".to_vec();
            body.resize(5 << 20, b'a');
            body.extend_from_slice(b"\"}");
            http_response(
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                &body,
            )
        } else {
            http_response("200 OK", "application/json", b"{}")
        })
    });
    assert_pull_fails(
        &d,
        &format!("127.0.0.1:{}/x:1", huge.port),
        "manifest is larger than the 4194304 byte limit",
        30,
    );
    let silent = RawServer::start(|_| None);
    assert_pull_fails(
        &d,
        &format!("127.0.0.1:{}/x:1", silent.port),
        "timed out",
        40,
    );
}

#[test]
fn credential_helpers_hold_the_login_for_the_berth_cli() {
    let reg = Registry::start(Auth::Htpasswd, None);
    let d = daemon(&[]);
    let r = &reg.host;
    let helpers = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/registry");
    let path = format!("{helpers}:{}", std::env::var("PATH").unwrap_or_default());
    let db = d.dir.join("creds.json");
    let cfg_dir = d.dir.join("docker-config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let berth = |args: &[&str], input: Option<&[u8]>| {
        let mut c = d.berth_cmd(args);
        c.env("PATH", &path).env("BERTH_CRED_DB", &db);
        run_cmd(c, input, 60)
    };
    let stored = || -> Value {
        serde_json::from_slice(&std::fs::read(&db).unwrap_or_else(|_| b"{}".to_vec())).unwrap()
    };
    for cfg in [
        serde_json::json!({"credsStore": "berthtest"}),
        serde_json::json!({"credHelpers": {r.as_str(): "berthtest"}}),
    ] {
        std::fs::write(cfg_dir.join("config.json"), cfg.to_string()).unwrap();
        let o = berth(
            &["login", r, "-u", USER, "--password-stdin"],
            Some(PASSWORD.as_bytes()),
        );
        assert!(o.status.success(), "{}", err(&o));
        assert!(!err(&o).contains("unencrypted"), "{}", err(&o));
        // The secret is with the helper; config.json keeps an empty entry, as docker writes.
        assert_eq!(stored()[r.as_str()]["Secret"], PASSWORD, "{}", stored());
        let file: Value =
            serde_json::from_slice(&std::fs::read(cfg_dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(file["auths"][r.as_str()], serde_json::json!({}), "{file}");
        assert!(!file.to_string().contains(PASSWORD), "{file}");

        // push and pull send what the helper holds.
        let name = format!("{r}/helper:1");
        d.berth_ok(&["tag", IMAGE, &name]);
        let o = berth(&["push", "-q", &name], None);
        assert!(o.status.success(), "{}", err(&o));
        assert_eq!(out(&o).trim(), name);
        d.berth_ok(&["rmi", &name]);
        let o = berth(&["pull", "-q", &name], None);
        assert!(o.status.success(), "{}", err(&o));

        let o = berth(&["logout", r], None);
        assert!(
            out(&o).contains(&format!("Removing login credentials for {r}")),
            "{}",
            out(&o)
        );
        assert!(stored().get(r.as_str()).is_none(), "{}", stored());
        let o = berth(&["logout", r], None);
        assert!(
            out(&o).contains(&format!("Not logged in to {r}")),
            "{}",
            out(&o)
        );
    }
}

#[test]
fn info_reports_the_registry_settings() {
    let d = Daemon::start_bare_with(&[
        "--registry-mirror".into(),
        "http://127.0.0.1:9".into(),
        "--insecure-registry".into(),
        "10.99.0.0/16".into(),
        "--insecure-registry".into(),
        "reg.example:5000".into(),
    ]);
    let (st, v) = d.api_json("GET", "/v1.47/info", None);
    assert_eq!(st, 200);
    assert_eq!(v["IndexServerAddress"], "https://index.docker.io/v1/");
    let rc = &v["RegistryConfig"];
    assert_eq!(
        rc["Mirrors"],
        serde_json::json!(["http://127.0.0.1:9"]),
        "{rc}"
    );
    let cidrs = rc["InsecureRegistryCIDRs"].to_string();
    assert!(
        cidrs.contains("127.0.0.0/8") && cidrs.contains("10.99.0.0/16"),
        "{rc}"
    );
    assert_eq!(
        rc["IndexConfigs"]["reg.example:5000"]["Secure"], false,
        "{rc}"
    );
    assert_eq!(rc["IndexConfigs"]["docker.io"]["Official"], true, "{rc}");
    let mirrors = d.docker_ok(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert_eq!(mirrors, r#"["http://127.0.0.1:9"]"#);
}

/// A docker-archive (`docker save`'s format) of one image, `name`: a busybox rootfs made
/// from the host's busybox-static plus `/etc/mirror` holding `marker`.
fn busybox_archive(dir: &Path, name: &str, marker: &str) -> std::path::PathBuf {
    use sha2::Digest as _;
    let work = dir.join("archive");
    let rootfs = work.join("rootfs");
    common::make_busybox_rootfs(&rootfs);
    std::fs::write(rootfs.join("etc/mirror"), marker).unwrap();
    let tar = |args: &[&str], cwd: &Path| {
        let o = Command::new("tar")
            .arg("-C")
            .arg(cwd)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "tar {args:?}: {}", err(&o));
    };
    tar(
        &["-cf", work.join("layer.tar").to_str().unwrap(), "."],
        &rootfs,
    );
    let layer = std::fs::read(work.join("layer.tar")).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": go_arch(), "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", hex::encode(sha2::Sha256::digest(&layer)))]},
    }))
    .unwrap();
    std::fs::write(work.join("config.json"), config).unwrap();
    let manifest =
        serde_json::json!([{"Config": "config.json", "RepoTags": [name], "Layers": ["layer.tar"]}]);
    std::fs::write(work.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::remove_dir_all(&rootfs).unwrap();
    let archive = dir.join("image.tar");
    tar(
        &[
            "-cf",
            archive.to_str().unwrap(),
            "manifest.json",
            "config.json",
            "layer.tar",
        ],
        &work,
    );
    archive
}

/// A failed pull in the sealed namespace: non-zero within `secs`, with the error Docker
/// gives when Docker Hub cannot be reached (the request to its API host, and the lookup
/// that failed), and the store as before.
fn assert_hub_unreachable(d: &Daemon, image: &str, secs: u64) {
    let (e, before) = pull_failing(d, image, secs);
    assert!(
        e.contains("https://registry-1.docker.io/v2/") && e.contains("lookup registry-1.docker.io"),
        "pull {image}: wanted Docker Hub's failed lookup in: {e}"
    );
    assert_eq!(store_state(d), before, "pull {image} changed the store");
}

#[test]
fn a_mirror_serves_docker_hub_names_and_a_fallback_cannot_leave_the_machine() {
    // The daemon and the mirror share a network namespace with only loopback and no name
    // server: falling back to Docker Hub can reach nothing, by construction.
    let netns = Netns::new();
    assert_eq!(netns.links().lines().count(), 1, "{}", netns.links());
    for route in netns.routes().lines() {
        assert!(
            route.contains(" dev lo") && !route.starts_with("default"),
            "a route out of the test's namespace: {route}"
        );
    }
    let mirror = Registry::start_in(Auth::None, None, Some(&netns));
    let m = &mirror.host;
    let archive = busybox_archive(&mirror.dir, "busybox:latest", "served by the mirror");
    let skopeo_in_ns = |args: &[&str]| {
        let mut c = netns.command("skopeo");
        c.args(args);
        let o = run_cmd(c, None, 120);
        assert!(o.status.success(), "skopeo {args:?}: {}", err(&o));
        out(&o)
    };
    skopeo_in_ns(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{m}/library/busybox:latest"),
    ]);
    let inspected: Value = serde_json::from_str(&skopeo_in_ns(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{m}/library/busybox:latest"),
    ]))
    .unwrap();
    let digest = inspected["Digest"].as_str().unwrap().to_string();

    let d = Daemon::start_bare_under(
        &netns.wrapper(),
        &[
            "--registry-mirror".into(),
            format!("http://{m}"),
            "--registry-timeout".into(),
            "2".into(),
        ],
    );
    // The daemon's own view: no name resolves there (its lookups stay inside).
    let o = run_cmd(
        {
            let mut c = netns.command("getent");
            c.args(["hosts", "registry-1.docker.io"]);
            c
        },
        None,
        20,
    );
    assert!(
        !o.status.success(),
        "a name resolved in the namespace: {}",
        out(&o)
    );

    // Docker Hub's short name, served by the mirror under Docker Hub's names.
    let pull = d.docker_ok(&["pull", "busybox"]);
    assert!(
        pull.contains(&format!("Digest: {digest}"))
            && pull.contains("Status: Downloaded newer image for busybox:latest")
            && pull.ends_with("docker.io/library/busybox:latest"),
        "{pull}"
    );
    assert_eq!(
        d.docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .RepoTags}} {{json .RepoDigests}}",
            "busybox"
        ]),
        format!(r#"["busybox:latest"] ["busybox@{digest}"]"#)
    );
    assert_eq!(
        d.docker_ok(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Digest}}"
        ]),
        format!("busybox:latest {digest}")
    );
    // `--network none`: the daemon's /sys is the host's (a bridge port's sysfs files
    // would be looked up there), and the image is what is tested here.
    let run = [
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/etc/mirror",
    ];
    assert_eq!(d.docker_ok(&run), "served by the mirror");
    // By digest, under its full name: the same image, already here.
    let again = d.docker_ok(&["pull", &format!("docker.io/library/busybox@{digest}")]);
    assert!(
        again.contains(&format!("Status: Image is up to date for busybox@{digest}")),
        "{again}"
    );

    // Every tag of a Docker Hub name (`--all-tags`: a request with no tag) is listed through
    // the mirror too, never by asking Docker Hub.
    let all = d.docker_ok(&["pull", "--all-tags", "busybox"]);
    assert!(
        all.contains("latest: Pulling from library/busybox")
            && all.contains("Status: Image is up to date for busybox"),
        "{all}"
    );

    // The mirror lacks a tag, or a repository: Docker falls back to Docker Hub, which
    // cannot be reached from here; the error says so at once and the store is untouched.
    assert_hub_unreachable(&d, "busybox:absent", 20);
    assert_hub_unreachable(&d, "alpine", 20);

    // The mirror is down: the same fallback, the same quick failure; what was pulled stays.
    drop(mirror);
    assert_hub_unreachable(&d, "busybox", 20);
    assert_eq!(d.docker_ok(&run), "served by the mirror");
}

/// The repositories of [`search_index`]: name, description, stars, official, automated.
const INDEX_REPOS: &[(&str, &str, u64, bool, bool)] = &[
    ("busybox", "Busybox base image.", 3400, true, false),
    (
        "someone/busybox-tools",
        "Extra tools on busybox",
        12,
        false,
        true,
    ),
    ("other/tiny", "A tiny busybox-based shell", 3, false, false),
    (
        "library/debian",
        "Debian is a Linux distribution",
        5200,
        true,
        false,
    ),
];

/// An index on the test's own loopback port that serves Docker Hub's search API
/// (`GET /v1/search?q=&n=`, which Docker Hub, Quay and Harbor serve) over [`INDEX_REPOS`],
/// matching the query in names and descriptions; `/v2/` answers as a registry's does.
fn search_index() -> RawServer {
    RawServer::start(|line| {
        let path = line.split_whitespace().nth(1).unwrap_or("");
        if path == "/v2/" {
            return Some(http_response("200 OK", "application/json", b"{}"));
        }
        let Some(query) = path.strip_prefix("/v1/search?") else {
            return Some(http_response("404 Not Found", "text/plain", b"not found"));
        };
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_string()
        };
        let q = param("q");
        let n: usize = param("n").parse().unwrap_or(25);
        let results: Vec<Value> = INDEX_REPOS
            .iter()
            .filter(|r| r.0.contains(&q) || r.1.to_lowercase().contains(&q))
            .take(n)
            .map(|r| {
                serde_json::json!({"name": r.0, "description": r.1, "star_count": r.2,
                                   "is_official": r.3, "is_automated": r.4})
            })
            .collect();
        let body = serde_json::json!({"num_results": results.len(), "query": q,
                                      "results": results});
        Some(http_response(
            "200 OK",
            "application/json",
            body.to_string().as_bytes(),
        ))
    })
}

#[test]
fn search_reads_an_index_that_serves_v1_search_with_limit_and_filters() {
    let index = search_index();
    let d = daemon(&[]);
    let term = |q: &str| format!("127.0.0.1:{}/{q}", index.port);
    let format = "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}|{{.Description}}";
    let all = d.docker_ok(&["search", "--format", format, &term("busybox")]);
    assert_eq!(
        all.lines().collect::<Vec<_>>(),
        [
            "busybox|3400|[OK]|Busybox base image.",
            "someone/busybox-tools|12||Extra tools on busybox",
            "other/tiny|3||A tiny busybox-based shell",
        ]
    );
    // The table docker prints, with its columns.
    let table = d.docker_ok(&["search", &term("debian")]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"],
        "{table}"
    );
    assert!(
        table.contains("library/debian") && table.contains("5200"),
        "{table}"
    );
    let names = |args: &[&str]| {
        let mut a = vec!["search", "--format", "{{.Name}}"];
        a.extend_from_slice(args);
        d.docker_ok(&a)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&["--limit", "1", &term("busybox")]), ["busybox"]);
    assert_eq!(
        names(&["--filter", "stars=10", &term("busybox")]),
        ["busybox", "someone/busybox-tools"]
    );
    assert_eq!(
        names(&["--filter", "is-official=true", &term("busybox")]),
        ["busybox"]
    );
    assert_eq!(
        names(&["--filter", "is-automated=true", &term("busybox")]),
        ["someone/busybox-tools"]
    );
    // berth's own CLI reads the same.
    let b = d.berth_ok(&["search", "--format", "{{.Name}}", &term("tiny")]);
    assert_eq!(b, "other/tiny");
    // Bad input: a limit out of range, and an index whose answer is not a search result.
    let o = d.docker(&["search", "--limit", "101", &term("busybox")]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("limit 101 is outside the range of [1, 100]"),
        "{}",
        err(&o)
    );
    let broken = RawServer::start(|line| {
        Some(if line.contains(" /v2/ ") {
            http_response("200 OK", "application/json", b"{}")
        } else {
            http_response("200 OK", "application/json", b"<html>not json</html>")
        })
    });
    let o = d.docker(&["search", &format!("127.0.0.1:{}/x", broken.port)]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("/v1/search") && err(&o).contains("not a search result"),
        "{}",
        err(&o)
    );
}
