//! Helpers shared by the integration tests: temp dirs, mount guards, tar builders.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use berth_image::{ImportOptions, OverlayMount, Store};
use sha2::{Digest, Sha256};

/// A unique temp dir holding a store; dropped last so mounts inside go first.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("berth-image-test-")
            .tempdir()
            .expect("temp dir");
        let store = Store::open(&dir.path().join("root")).expect("open store");
        Fixture { dir, store }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn import_busybox(&self, reference: &str) -> berth_image::Image {
        let tar = busybox_tar();
        self.store
            .import(
                &mut tar.as_slice(),
                &ImportOptions {
                    reference: Some(reference.to_string()),
                    ..ImportOptions::default()
                },
            )
            .expect("import busybox")
    }
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
pub struct Mounted(pub PathBuf);

impl Mounted {
    pub fn new(m: &OverlayMount, target: &Path) -> Mounted {
        std::fs::create_dir_all(target).unwrap();
        m.mount_at(target).expect("mount overlay");
        Mounted(target.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = OverlayMount::unmount(&self.0);
    }
}

pub fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// A tar builder over a Vec with helpers for the entry kinds the tests need.
pub struct TarBuf(pub tar::Builder<Vec<u8>>);

impl TarBuf {
    pub fn new() -> TarBuf {
        TarBuf(tar::Builder::new(Vec::new()))
    }
    pub fn dir(&mut self, path: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.file_mode(path, data, 0o644)
    }
    pub fn file_mode(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }
    /// An entry whose name and link name go into the raw header bytes, unchecked, the way a
    /// hostile tar would carry them (tar::Header::set_path refuses `..`).
    pub fn raw(&mut self, kind: tar::EntryType, name: &str, link: &str, data: &[u8]) -> &mut Self {
        let mut h = header(kind, 0o644, data.len() as u64);
        raw_names(&mut h, name, link);
        self.0.append(&h, data).unwrap();
        self
    }
    pub fn finish(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        self.0.get_ref().clone()
    }
}

pub fn raw_names(h: &mut tar::Header, name: &str, link: &str) {
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname = [0; 100];
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
}

/// A busybox rootfs from Debian's busybox-static, with applet symlinks.
pub fn busybox_tar() -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static installed");
    let mut t = TarBuf::new();
    t.dir("bin").file_mode("bin/busybox", &bb, 0o755);
    for applet in ["sh", "ls", "cat", "echo", "rm"] {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("etc")
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n")
        .dir("root");
    let mut h = header(tar::EntryType::Directory, 0o1777, 0);
    t.0.append_data(&mut h, "tmp", std::io::empty()).unwrap();
    t.finish()
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A docker-archive (manifest.json + config + layer tars) of one image.
pub fn docker_archive(layers: &[Vec<u8>], diff_ids: &[String], tag: &str) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": "test"})).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).unwrap();
    let chex = &sha256(&config)[7..];
    let mut t = TarBuf::new();
    t.file(&format!("{chex}.json"), &config);
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        t.dir(&format!("layer{i}")).file(&name, l);
        names.push(name);
    }
    let manifest =
        serde_json::json!([{"Config": format!("{chex}.json"), "RepoTags": [tag], "Layers": names}]);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    t.finish()
}
