//! Bad requests to the Engine API: the status code and message dockerd gives, and nothing
//! left behind (no container record, no directory, no file outside the store).
#![allow(clippy::unwrap_used)]

mod common;

use common::engine::{err, Daemon, IMAGE};
use common::unique;

fn container_dirs(d: &Daemon) -> usize {
    std::fs::read_dir(d.root.join("containers"))
        .map(|r| r.count())
        .unwrap_or(0)
}

#[test]
fn api_errors_have_docker_status_codes_and_messages() {
    let d = Daemon::start();
    let (st, v) = d.api_json("GET", "/v1.47/no/such/endpoint", None);
    assert_eq!(st, 404);
    assert!(v["message"].as_str().is_some(), "{v}");

    let (st, v) = d.api_json("POST", "/v1.47/containers/create", Some("{not json"));
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("invalid"), "{v}");

    let (st, v) = d.api_json("GET", "/v1.47/containers/x/json", None);
    assert_eq!(
        (st, v["message"].as_str().unwrap()),
        (404, "No such container: x")
    );
    for action in ["start", "stop", "kill", "restart", "pause", "wait"] {
        let (st, v) = d.api_json("POST", &format!("/v1.47/containers/x/{action}"), None);
        assert_eq!(st, 404, "{action}: {v}");
        assert_eq!(v["message"], "No such container: x", "{action}");
    }
    let (st, _) = d.api_json("DELETE", "/v1.47/containers/x", None);
    assert_eq!(st, 404);

    let (st, v) = d.api_json("GET", "/v1.47/images/x/json", None);
    assert_eq!(
        (st, v["message"].as_str().unwrap()),
        (404, "No such image: x:latest")
    );
    let (st, v) = d.api_json("POST", "/v1.47/containers/create", Some(r#"{"Image":"x"}"#));
    assert_eq!(
        (st, v["message"].as_str().unwrap()),
        (404, "No such image: x:latest")
    );

    let body = format!(r#"{{"Image":"{IMAGE}","Cmd":["true"]}}"#);
    let (st, v) = d.api_json("POST", "/v1.47/containers/create?name=taken", Some(&body));
    assert_eq!(st, 201, "{v}");
    let before = container_dirs(&d);
    let (st, v) = d.api_json("POST", "/v1.47/containers/create?name=taken", Some(&body));
    assert_eq!(st, 409, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("is already in use"),
        "{v}"
    );
    let bad_restart = format!(
        r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"RestartPolicy":{{"Name":"sometimes"}}}}}}"#
    );
    let (st, v) = d.api_json("POST", "/v1.47/containers/create", Some(&bad_restart));
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("restart policy"),
        "{v}"
    );
    let (st, v) = d.api_json(
        "POST",
        "/v1.47/containers/create?name=bad%2Fname",
        Some(&body),
    );
    assert_eq!(st, 400, "{v}");
    // None of the refused creates left a record or a directory.
    assert_eq!(container_dirs(&d), before);
    let (_, list) = d.api_json("GET", "/v1.47/containers/json?all=1", None);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// A layer whose entry climbs out of the target (`../escape-…`): refused or dropped, and the
/// host path never written.
#[test]
fn hostile_layer_tar_cannot_escape_through_import_or_load() {
    let d = Daemon::start_bare();
    let name = unique("escape");
    let victim = std::path::PathBuf::from("/tmp").join(&name);
    let _ = std::fs::remove_file(&victim);
    // A tar with `../<name>` and `../../../../tmp/<name>` entries, written by hand (tar(1)
    // strips such names).
    let mut tarball = Vec::new();
    for path in [
        format!("../{name}"),
        format!("../../../../../../tmp/{name}"),
        "ok".into(),
    ] {
        tarball.extend(tar_entry(&path, b"pwned\n"));
    }
    tarball.extend([0u8; 1024]);
    let o = d.docker_in(&["import", "-", "hostile:1"], &tarball);
    assert!(
        !victim.exists(),
        "import wrote {} ({})",
        victim.display(),
        err(&o)
    );

    // The same layer in a docker-save archive, through load.
    let layer_digest = sha256_hex(&tarball);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["true"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{layer_digest}"]}}}}"#
    );
    let config_hex = sha256_hex(config.as_bytes());
    let manifest = format!(
        r#"[{{"Config":"{config_hex}.json","RepoTags":["hostile:2"],"Layers":["{layer_digest}/layer.tar"]}}]"#
    );
    let mut archive = Vec::new();
    archive.extend(tar_entry(&format!("{config_hex}.json"), config.as_bytes()));
    archive.extend(tar_entry(&format!("{layer_digest}/layer.tar"), &tarball));
    archive.extend(tar_entry("manifest.json", manifest.as_bytes()));
    archive.extend([0u8; 1024]);
    let o = d.docker_in(&["load"], &archive);
    assert!(
        !victim.exists(),
        "load wrote {} ({})",
        victim.display(),
        err(&o)
    );
    // If it loaded, running it must not see the escape either.
    if o.status.success() {
        let _ = d.docker(&["run", "--rm", "hostile:2", "true"]);
        assert!(!victim.exists());
    }
    let _ = std::fs::remove_file(&victim);
}

fn tar_entry(path: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut v = h.to_vec();
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(data).unwrap();
    let o = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
