//! The login page `berth dashboard --open` opens: a file that sends the browser on to the
//! login URL, so the token is never on a command line (xdg-open's and the browser's are
//! readable by every local user) nor in another process's environment. The file is the
//! daemon's alone — 0600 in a 0700 directory under the exec root (docs/security.md) — and is
//! removed when its token expires.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Writes a page leading to `url` under `dir`; removes it after `ttl`. Its path.
pub fn write(dir: &Path, url: &str, ttl: Duration) -> Result<PathBuf> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::LoginPage { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err(dir))?;
    // A directory that was there already (an older daemon's) gets the mode all the same.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err(dir))?;
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).map_err(|e| Error::Random(e.to_string()))?;
    let path = dir.join(format!("login-{}.html", hex::encode(name)));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(err(&path))?;
    let url = html_escape(url);
    write!(
        f,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>berth dashboard</title></head>\
         <body><a href=\"{url}\">Open berth's dashboard</a></body></html>\n"
    )
    .map_err(err(&path))?;
    let gone = path.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ttl).await;
        let _ = std::fs::remove_file(gone);
    });
    Ok(path)
}

/// Removes the login pages under `dir` (at start: their tokens were the last daemon's).
pub fn clear(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("login-") && name.ends_with(".html") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn the_page_is_private_and_goes_with_its_token() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dashboard");
        let url = "http://127.0.0.1:1/login?token=ab&x=<y>";
        let page = write(&dir, url, Duration::from_millis(50)).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&page).unwrap().mode() & 0o777, 0o600);
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            html.contains("url=http://127.0.0.1:1/login?token=ab&amp;x=&lt;y&gt;"),
            "{html}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!page.exists(), "removed when the token expires");
        let left = write(&dir, url, Duration::from_secs(3600)).unwrap();
        clear(&dir);
        assert!(!left.exists(), "a new daemon clears an old one's pages");
    }
}
