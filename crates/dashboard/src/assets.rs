//! The page's files, built by Vite and embedded by `build.rs`.

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

pub use embedded::BUILT;

/// A file of the page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    /// Vite names what it bundles by content hash (`assets/index-3f2a.js`): such a file
    /// never changes under its name, so the browser may keep it.
    pub immutable: bool,
}

/// The file at `path` (`/`, `/assets/index-3f2a.js`); `/` is `index.html`.
pub fn find(path: &str) -> Option<Asset> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    embedded::FILES
        .iter()
        .find(|(name, _)| *name == rel)
        .map(|(name, bytes)| Asset {
            bytes,
            content_type: content_type(name),
            immutable: name.starts_with("assets/"),
        })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_index_page() {
        let a = find("/").expect("index.html is always embedded");
        assert!(a.content_type.starts_with("text/html"));
        assert!(!a.immutable);
        assert!(find("/no-such-file").is_none());
    }
}
