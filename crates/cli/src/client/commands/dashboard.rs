//! `berth dashboard`: asks the daemon (started if need be, as for every command) for a
//! one-time login URL to its web dashboard, prints it, and with `--open` opens it — through
//! a login page the daemon writes for the purpose (0600, gone when the token expires), so
//! the token is never on xdg-open's or the browser's command line, which every local user
//! can read.

use std::process::{Command, Stdio};

use anyhow::Result;
use clap::Args;

use crate::client::http::Client;

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Open the URL in a browser (with xdg-open)
    #[arg(long)]
    open: bool,
}

/// Runs `berth dashboard`.
pub async fn run(c: &Client, a: DashboardArgs) -> Result<()> {
    let path = if a.open {
        "/berth/dashboard/tokens?file=1"
    } else {
        "/berth/dashboard/tokens"
    };
    let v = c.post(path).await?.json()?;
    let url = v["URL"].as_str().unwrap_or_default();
    if url.is_empty() {
        anyhow::bail!("the daemon answered no login URL: {v}");
    }
    println!("{url}");
    let secs = v["ExpiresIn"].as_u64().unwrap_or(0);
    eprintln!("(a login URL works once, within {secs} seconds; `berth dashboard` makes another)");
    if v["PageBuilt"] == false {
        eprintln!(
            "berth dashboard: warning: this daemon's berth was built without the page (npm was not \
             run): run scripts/build-dashboard.sh, then build berth again"
        );
    }
    if let Some(file) = v["File"].as_str().filter(|_| a.open) {
        match Command::new("xdg-open")
            .arg(format!("file://{file}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "berth dashboard: xdg-open is not installed: open the URL above yourself"
                );
            }
            Err(e) => eprintln!("berth dashboard: xdg-open: {e}: open the URL above yourself"),
        }
    }
    Ok(())
}
