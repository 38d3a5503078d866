//! Import, list, get, tag, remove, history, mount, diff and commit of a busybox image.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_image::{Change, ChangeKind, Error, ImageConfig};
use common::{Fixture, Mounted};

#[test]
fn import_list_get_tag_remove_behave_like_docker() {
    let f = Fixture::new();
    let img = f.import_busybox("busybox");
    assert!(img.id.starts_with("sha256:") && img.id.len() == 71);
    assert_eq!(img.repo_tags, vec!["busybox:latest"]);
    assert_eq!(img.layers.len(), 1);
    assert!(img.size >= std::fs::metadata("/bin/busybox").unwrap().len());

    let list = f.store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, img.id);
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        &img.id,
        &img.id[7..],
        &img.id[7..19],
    ] {
        assert_eq!(f.store.get(name).unwrap().id, img.id, "get {name}");
    }
    let e = f.store.get("nosuch").unwrap_err();
    assert_eq!(e.to_string(), "No such image: nosuch:latest");

    f.store.tag("busybox", "busybox:1").unwrap();
    f.store.tag(&img.id, "localhost:5000/x/bb:t").unwrap();
    let got = f.store.get("busybox:1").unwrap();
    let mut tags = got.repo_tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        vec!["busybox:1", "busybox:latest", "localhost:5000/x/bb:t"]
    );

    let h = f.store.history(&got);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, img.id);
    assert_eq!(h[0].comment, "Imported from -");
    assert_eq!(h[0].size, img.size);
    assert!(h[0].created > 1_700_000_000);

    // Untagging leaves the image while other tags remain.
    let d = f.store.remove("busybox:1", false).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].untagged.as_deref(), Some("busybox:1"));

    // By id, two repositories: must be forced, with Docker's wording.
    let e = f.store.remove(&img.id, false).unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            &img.id[7..19]
        )
    );
    let d = f.store.remove(&img.id, true).unwrap();
    assert_eq!(d.iter().filter(|d| d.untagged.is_some()).count(), 2);
    assert_eq!(d.last().unwrap().deleted.as_deref(), Some(img.id.as_str()));
    assert!(matches!(f.store.get("busybox"), Err(Error::NotFound(_))));
    assert!(f.store.list().unwrap().is_empty());

    // Blobs and snapshots went with it.
    let blobs = std::fs::read_dir(f.path("root/blobs/sha256"))
        .unwrap()
        .count();
    let snaps = std::fs::read_dir(f.path("root/snapshots")).unwrap().count();
    assert_eq!((blobs, snaps), (0, 0));
}

#[test]
fn removing_the_last_tag_deletes_the_image_and_prune_takes_dangling() {
    let f = Fixture::new();
    let img = f.import_busybox("busybox");
    let d = f.store.remove("busybox", false).unwrap();
    assert_eq!(d[0].untagged.as_deref(), Some("busybox:latest"));
    assert_eq!(d[1].deleted.as_deref(), Some(img.id.as_str()));

    let img = f.import_busybox("a:1");
    f.store.tag("a:1", "b:1").unwrap();
    // Re-tagging b:1 elsewhere is fine; importing again with the same tag moves it.
    let tar = common::busybox_tar();
    let mut t2 = common::TarBuf::new();
    t2.file("x", b"other");
    let other = f
        .store
        .import(&mut t2.finish().as_slice(), &Default::default())
        .unwrap();
    assert!(other.repo_tags.is_empty());
    assert_ne!(other.id, img.id);
    drop(tar);

    let used = img.id.clone();
    let report = f.store.prune(false, &|id| id == used).unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(
        report.deleted[0].deleted.as_deref(),
        Some(other.id.as_str())
    );
    assert!(report.space_reclaimed > 0);
    let report = f.store.prune(true, &|id| id == used).unwrap();
    assert!(report.deleted.is_empty());
    let report = f.store.prune(true, &|_| false).unwrap();
    assert_eq!(report.deleted.len(), 3);
    assert!(f.store.list().unwrap().is_empty());
}

#[test]
fn overlay_rootfs_diff_and_commit() {
    let f = Fixture::new();
    let img = f.import_busybox("busybox");
    let c1 = f.path("c1");
    let m = f.store.rootfs(&img, &c1).unwrap();
    assert_eq!(m.lowers.len(), 1);
    {
        let merged = f.path("c1/merged");
        let _mnt = Mounted::new(&m, &merged);
        assert!(merged.join("bin/busybox").is_file());
        assert_eq!(
            std::fs::read_link(merged.join("bin/sh")).unwrap().to_str(),
            Some("busybox")
        );
        let status = std::process::Command::new(merged.join("bin/busybox"))
            .arg("true")
            .status()
            .unwrap();
        assert!(status.success());

        std::fs::write(merged.join("hello"), b"world").unwrap();
        std::fs::remove_file(merged.join("etc/passwd")).unwrap();
        std::fs::write(merged.join("etc/group"), b"changed\n").unwrap();
    }
    assert_eq!(std::fs::read(c1.join("upper/hello")).unwrap(), b"world");
    let wh = std::fs::symlink_metadata(c1.join("upper/etc/passwd")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout in upper"
    );

    let changes = f.store.changes(&img, &c1.join("upper")).unwrap();
    let ch = |kind, path: &str| Change {
        kind,
        path: path.to_string(),
    };
    assert_eq!(
        changes,
        vec![
            ch(ChangeKind::Modified, "/etc"),
            ch(ChangeKind::Modified, "/etc/group"),
            ch(ChangeKind::Deleted, "/etc/passwd"),
            ch(ChangeKind::Added, "/hello"),
        ]
    );

    let mut cfg: ImageConfig = img.config.clone();
    cfg.config.cmd = Some(vec!["sh".into()]);
    let img2 = f
        .store
        .commit(Some(&img), &c1.join("upper"), cfg, Some("committed:v1"))
        .unwrap();
    assert_eq!(img2.layers.len(), 2);
    assert_eq!(img2.layers[0], img.layers[0]);
    assert_eq!(img2.repo_tags, vec!["committed:v1"]);
    assert_eq!(
        img2.config.config.cmd.as_deref(),
        Some(&["sh".to_string()][..])
    );
    let h = f.store.history(&img2);
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].id, img2.id);
    assert_eq!(h[1].id, "<missing>");

    let c2 = f.path("c2");
    let m2 = f.store.rootfs(&img2, &c2).unwrap();
    assert_eq!(m2.lowers.len(), 2);
    let merged = f.path("c2/merged");
    let _mnt = Mounted::new(&m2, &merged);
    assert_eq!(std::fs::read(merged.join("hello")).unwrap(), b"world");
    assert_eq!(
        std::fs::read(merged.join("etc/group")).unwrap(),
        b"changed\n"
    );
    assert!(
        !merged.join("etc/passwd").exists(),
        "deleted file stays deleted"
    );
    assert!(merged.join("bin/busybox").is_file());

    // The parent can't go while the child exists? Docker allows untag; here we only check
    // that removing the child keeps the parent's shared layer.
    f.store.remove("committed:v1", false).unwrap();
    assert!(f.store.rootfs(&img, &f.path("c3")).is_ok());
    assert!(m.lowers[0].is_dir());
}

#[test]
fn export_writes_the_tree_with_symlinks() {
    let f = Fixture::new();
    let img = f.import_busybox("busybox");
    let m = f.store.rootfs(&img, &f.path("c")).unwrap();
    let merged = f.path("c/merged");
    let _mnt = Mounted::new(&m, &merged);
    let mut out = Vec::new();
    berth_image::export_rootfs(&merged, &mut out).unwrap();
    let mut ar = tar::Archive::new(out.as_slice());
    let mut seen = std::collections::HashMap::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        seen.insert(
            e.path().unwrap().to_string_lossy().into_owned(),
            (e.header().entry_type(), e.header().mode().unwrap()),
        );
    }
    assert_eq!(seen["bin/sh"].0, tar::EntryType::Symlink);
    assert_eq!(seen["bin/busybox"], (tar::EntryType::Regular, 0o755));
    assert_eq!(seen["tmp"].1, 0o1777);
}

#[test]
fn disk_usage_counts_shared_layers() {
    let f = Fixture::new();
    let img = f.import_busybox("busybox");
    let c = f.path("c");
    let m = f.store.rootfs(&img, &c).unwrap();
    std::fs::write(m.upper.join("x"), b"1").unwrap();
    let img2 = f
        .store
        .commit(Some(&img), &m.upper, img.config.clone(), Some("child"))
        .unwrap();
    let du = f.store.disk_usage().unwrap();
    assert_eq!(du.images.len(), 2);
    let (_, size2, shared2) = du.images.iter().find(|i| i.0 == img2.id).unwrap();
    assert_eq!(*size2, img2.size);
    assert_eq!(*shared2, img.size);
    assert_eq!(du.layers_size, img2.size);
}
