//! Layer tars that try to write outside the snapshot: each must fail or be contained.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use berth_image::{Error, Image, ImportOptions};
use common::{Fixture, TarBuf};

fn unique(tag: &str) -> String {
    format!(
        "berth-escape-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    )
    .replace(['(', ')'], "")
}

fn import(f: &Fixture, tar: Vec<u8>) -> berth_image::Result<Image> {
    f.store
        .import(&mut tar.as_slice(), &ImportOptions::default())
}

/// Removes a host path on drop, in case a test fails after creating it.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

fn no_leftovers(f: &Fixture) {
    for d in ["root/snapshots", "root/tmp"] {
        let left: Vec<_> = std::fs::read_dir(f.path(d))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{d}: {left:?}");
    }
}

#[test]
fn dotdot_entry_is_refused() {
    let f = Fixture::new();
    let name = unique("dotdot");
    let mut t = TarBuf::new();
    t.raw(
        tar::EntryType::Regular,
        &format!("../../{name}"),
        "",
        b"pwned",
    );
    let e = import(&f, t.finish()).unwrap_err();
    assert!(matches!(e, Error::UnsafeEntry { .. }), "{e}");
    assert!(e.to_string().contains(".."), "{e}");
    for base in [
        f.path("root"),
        f.path("root/snapshots"),
        f.path(""),
        PathBuf::from("/tmp"),
    ] {
        assert!(!base.join(&name).exists());
    }
    no_leftovers(&f);
}

#[test]
fn absolute_entry_stays_inside_the_snapshot() {
    let f = Fixture::new();
    let host = PathBuf::from("/tmp").join(unique("abs"));
    let _c = Cleanup(host.clone());
    let mut t = TarBuf::new();
    t.raw(
        tar::EntryType::Regular,
        host.to_str().unwrap(),
        "",
        b"pwned",
    );
    let img = import(&f, t.finish()).unwrap();
    assert!(!host.exists(), "absolute path written on the host");
    let m = f.store.rootfs(&img, &f.path("c")).unwrap();
    let inside = m.lowers[0].join(host.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
}

#[test]
fn symlinked_parent_cannot_lead_out() {
    let f = Fixture::new();
    let host_dir = PathBuf::from("/tmp").join(unique("symdir"));
    std::fs::create_dir_all(&host_dir).unwrap();
    let _c = Cleanup(host_dir.clone());
    let mut t = TarBuf::new();
    t.symlink("lnk", host_dir.to_str().unwrap());
    t.raw(tar::EntryType::Regular, "lnk/pwned", "", b"pwned");
    // Relative climb through a symlink too.
    t.symlink("up", "../../../../../../../../..");
    t.raw(
        tar::EntryType::Regular,
        &format!("up{}/pwned2", host_dir.display()),
        "",
        b"pwned",
    );
    let img = import(&f, t.finish());
    assert!(
        !host_dir.join("pwned").exists(),
        "wrote through an absolute symlink"
    );
    assert!(
        !host_dir.join("pwned2").exists(),
        "wrote through a relative symlink"
    );
    if let Ok(img) = img {
        // Contained: the file went to the same path inside the snapshot.
        let m = f.store.rootfs(&img, &f.path("c")).unwrap();
        let inside = m.lowers[0]
            .join(host_dir.strip_prefix("/").unwrap())
            .join("pwned");
        assert!(inside.exists());
    }
}

#[test]
fn hardlink_to_host_file_is_refused() {
    let f = Fixture::new();
    let before = std::fs::read("/etc/passwd").unwrap();
    let nlink = |p: &Path| std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(p).unwrap());
    let links_before = nlink(Path::new("/etc/passwd"));
    let mut t = TarBuf::new();
    t.raw(tar::EntryType::Link, "hl", "/etc/passwd", b"");
    t.raw(tar::EntryType::Regular, "hl", "", b"overwritten");
    let e = import(&f, t.finish()).unwrap_err();
    assert!(e.to_string().contains("hardlink"), "{e}");
    let mut t = TarBuf::new();
    t.raw(tar::EntryType::Link, "hl2", "../../../../etc/passwd", b"");
    assert!(import(&f, t.finish()).is_err());
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);
    assert_eq!(nlink(Path::new("/etc/passwd")), links_before);
    no_leftovers(&f);
}

#[test]
fn device_nodes_are_skipped() {
    let f = Fixture::new();
    let mut t = TarBuf::new();
    let mut h = common::header(tar::EntryType::Char, 0o666, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    t.0.append_data(&mut h, "dev/mem-ish", std::io::empty())
        .unwrap();
    let mut h = common::header(tar::EntryType::Block, 0o666, 0);
    h.set_device_major(8).unwrap();
    h.set_device_minor(0).unwrap();
    t.0.append_data(&mut h, "dev/sda", std::io::empty())
        .unwrap();
    t.file("ok", b"1");
    let img = import(&f, t.finish()).unwrap();
    let m = f.store.rootfs(&img, &f.path("c")).unwrap();
    assert!(m.lowers[0].join("ok").exists());
    assert!(std::fs::symlink_metadata(m.lowers[0].join("dev/mem-ish")).is_err());
    assert!(std::fs::symlink_metadata(m.lowers[0].join("dev/sda")).is_err());
}

#[test]
fn huge_file_claims_fail_cleanly() {
    let f = Fixture::new();
    // A regular file claiming 1 TiB with 512 bytes behind it: the tar ends early.
    let mut t = TarBuf::new();
    t.raw(tar::EntryType::Regular, "big", "", &[1u8; 512]);
    let mut tar = t.finish();
    // Patch the size field (offset 124, 12 octal bytes) after the fact.
    tar[124..136].copy_from_slice(b"20000000000\0");
    let mut h = [0u8; 512];
    h.copy_from_slice(&tar[..512]);
    let hdr = tar::Header::from_byte_slice(&h).clone();
    let mut hdr2 = hdr;
    hdr2.set_cksum();
    tar[..512].copy_from_slice(hdr2.as_bytes());
    let e = import(&f, tar).unwrap_err();
    assert!(matches!(e, Error::BadLayer { .. }), "{e}");

    // A GNU sparse file claiming 1 TiB of holes.
    let mut t = TarBuf::new();
    let mut h = common::header(tar::EntryType::GNUSparse, 0o644, 512);
    common::raw_names(&mut h, "sparse", "");
    {
        let g = h.as_gnu_mut().unwrap();
        g.set_real_size(1 << 40);
        g.sparse[0].set_offset((1 << 40) - 512);
        g.sparse[0].set_length(512);
    }
    h.set_cksum();
    t.0.append(&h, &[7u8; 512][..]).unwrap();
    let start = std::time::Instant::now();
    let e = import(&f, t.finish()).unwrap_err();
    assert!(e.to_string().contains("sparse"), "{e}");
    assert!(start.elapsed().as_secs() < 10);
    no_leftovers(&f);
    assert!(f.store.list().unwrap().is_empty());
}
