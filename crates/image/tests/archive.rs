//! docker load / docker save: whiteouts across layers, round trips, podman, many layers.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::Command;

use common::{docker_archive, sha256, Fixture, Mounted, TarBuf};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn whiteouts_and_opaque_dirs_across_layers() {
    let f = Fixture::new();
    let mut l1 = TarBuf::new();
    l1.file("file", b"1")
        .file("keep", b"k")
        .dir("dir")
        .file("dir/a", b"a")
        .file("dir/b", b"b")
        .dir("gone")
        .file("gone/x", b"x");
    let l1 = l1.finish();
    let mut l2 = TarBuf::new();
    l2.file(".wh.file", b"")
        .file(".wh.gone", b"")
        .dir("dir")
        .file("dir/.wh..wh..opq", b"")
        .file("dir/c", b"c");
    let l2 = l2.finish();
    let diff_ids = vec![sha256(&l1), sha256(&l2)];
    // The second layer gzip'd: load sniffs compression, diff_ids are of the plain tar.
    let ar = docker_archive(&[l1, gzip(&l2)], &diff_ids, "wh:test");
    let loaded = f.store.load(&mut ar.as_slice()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].tags, vec!["wh:test"]);
    let img = f.store.get("wh:test").unwrap();
    assert_eq!(img.layers, diff_ids);

    let m = f.store.rootfs(&img, &f.path("c")).unwrap();
    let merged = f.path("c/merged");
    let _mnt = Mounted::new(&m, &merged);
    assert!(!merged.join("file").exists());
    assert!(!merged.join("gone").exists());
    assert_eq!(std::fs::read(merged.join("keep")).unwrap(), b"k");
    let mut names: Vec<String> = std::fs::read_dir(merged.join("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["c"]);
}

#[test]
fn load_rejects_a_layer_that_does_not_match_its_diff_id() {
    let f = Fixture::new();
    let mut l = TarBuf::new();
    l.file("a", b"1");
    let ar = docker_archive(
        &[l.finish()],
        &[format!("sha256:{}", "0".repeat(64))],
        "bad:1",
    );
    let e = f.store.load(&mut ar.as_slice()).unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert!(f.store.list().unwrap().is_empty());
}

#[test]
fn save_then_load_keeps_id_and_tags_and_podman_reads_it() {
    let f = Fixture::new();
    let img = f.import_busybox("busybox");
    f.store.tag("busybox", "localhost:5000/x/bb:t").unwrap();
    let saved = f.path("saved.tar");
    {
        let mut out = std::fs::File::create(&saved).unwrap();
        f.store
            .save(
                &["busybox".to_string(), "localhost:5000/x/bb:t".to_string()],
                &mut out,
            )
            .unwrap();
    }
    let data = std::fs::read(&saved).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(data.as_slice()).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    for want in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(names.contains(&format!("blobs/sha256/{}", &img.layers[0][7..])));

    // Into a fresh store: same id, same tags.
    let g = Fixture::new();
    let loaded = g.store.load(&mut data.as_slice()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, img.id);
    let mut tags = loaded[0].tags.clone();
    tags.sort();
    assert_eq!(tags, vec!["busybox:latest", "localhost:5000/x/bb:t"]);
    assert_eq!(g.store.get("localhost:5000/x/bb:t").unwrap().id, img.id);

    // The OCI half alone loads too (what podman and containerd read).
    let mut oci = TarBuf::new();
    for e in tar::Archive::new(data.as_slice()).entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p == "manifest.json" || p == "repositories" {
            continue;
        }
        let mut h = e.header().clone();
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut buf).unwrap();
        oci.0.append_data(&mut h, &p, buf.as_slice()).unwrap();
    }
    let h = Fixture::new();
    let loaded = h.store.load(&mut oci.finish().as_slice()).unwrap();
    assert_eq!(loaded[0].id, img.id);
    let mut tags = loaded[0].tags.clone();
    tags.sort();
    assert_eq!(tags, vec!["busybox:latest", "localhost:5000/x/bb:t"]);

    // podman reads the same tar, into a private storage root.
    if std::path::Path::new("/usr/bin/podman").exists() {
        let proot = f.path("podman-root");
        let prun = f.path("podman-run");
        let podman = |args: &[&str]| {
            Command::new("podman")
                .arg("--root")
                .arg(&proot)
                .arg("--runroot")
                .arg(&prun)
                .args([
                    "--storage-driver",
                    "vfs",
                    "--cgroup-manager",
                    "cgroupfs",
                    "--events-backend",
                    "none",
                ])
                .args(args)
                .output()
                .unwrap()
        };
        let out = podman(&["load", "-i", saved.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "podman load: {text}");
        let out = podman(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(listed.contains(&img.id[7..]), "podman images: {listed}");
        let _ = podman(&["system", "reset", "--force"]);
    }
}

#[test]
fn more_layers_than_fit_in_one_page_of_mount_options() {
    let f = Fixture::new();
    let n = 200;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..n {
        let mut t = TarBuf::new();
        t.file(&format!("f{i}"), format!("{i}").as_bytes());
        let l = t.finish();
        diff_ids.push(sha256(&l));
        layers.push(l);
    }
    let ar = docker_archive(&layers, &diff_ids, "many:layers");
    f.store.load(&mut ar.as_slice()).unwrap();
    let img = f.store.get("many:layers").unwrap();
    assert_eq!(img.layers.len(), n);
    let m = f.store.rootfs(&img, &f.path("c")).unwrap();
    let opts: usize = m.lowers.iter().map(|p| p.as_os_str().len() + 1).sum();
    assert!(opts > 4096, "test must exceed one page of options ({opts})");
    let merged = f.path("c/merged");
    let _mnt = Mounted::new(&m, &merged);
    assert_eq!(std::fs::read(merged.join("f0")).unwrap(), b"0");
    assert_eq!(
        std::fs::read(merged.join(format!("f{}", n - 1))).unwrap(),
        format!("{}", n - 1).as_bytes()
    );
    assert_eq!(std::fs::read_dir(&merged).unwrap().count(), n);
}
