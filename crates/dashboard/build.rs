//! Embeds the built page (`web/dist`, made by `npm run build` — scripts/build-dashboard.sh)
//! into the crate, so the one berth binary serves it. Without a built page the crate still
//! builds, with a stand-in page that says how to build the real one (and a cargo warning):
//! a Rust-only checkout must not fail to compile for want of npm.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = std::env::var_os("BERTH_DASHBOARD_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("web/dist"));
    println!("cargo:rerun-if-env-changed=BERTH_DASHBOARD_DIST");
    println!("cargo:rerun-if-changed={}", dist.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));

    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
        files.sort();
    }
    let built = !files.is_empty();
    let mut code = String::from("/// The page's files: path under the root, contents.\n");
    code.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    if built {
        for (rel, abs) in &files {
            let _ = writeln!(
                code,
                "    ({rel:?}, include_bytes!({:?})),",
                abs.display().to_string()
            );
        }
    } else {
        println!(
            "cargo:warning=berth-dashboard: {} has no built page; the dashboard serves a stand-in \
             (run scripts/build-dashboard.sh, then build again)",
            dist.display()
        );
        let page = out.join("stand-in.html");
        std::fs::write(&page, STAND_IN).expect("write the stand-in page");
        let _ = writeln!(
            code,
            "    (\"index.html\", include_bytes!({:?})),",
            page.display().to_string()
        );
    }
    code.push_str("];\n");
    let _ = writeln!(code, "/// Whether the real page was built in (not the stand-in).\npub const BUILT: bool = {built};");
    std::fs::write(out.join("assets.rs"), code).expect("write assets.rs");
}

/// Every file under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for e in entries {
        let e = e.unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        let path = e.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            let abs = std::fs::canonicalize(&path).unwrap_or(path);
            files.push((rel, abs));
        }
    }
}

const STAND_IN: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>berth dashboard (not built)</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>berth's dashboard was not built into this binary</h1>
<p>The page is built with npm from <code>crates/dashboard/web</code>. Run
<code>bash scripts/build-dashboard.sh</code>, then build berth again
(<code>cargo build --release -p berth</code>).</p>
</body></html>
"#;
