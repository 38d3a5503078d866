//! Volume commands.

use anyhow::Result;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::{for_each, print_name, Prune};
use crate::client::format::Formatter;
use crate::client::http::{empty, enc, with_query, Client};

/// `berth volume …`.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Specify volume name
    #[arg(long = "name")]
    name_flag: Option<String>,
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long)]
    label: Vec<String>,
    #[arg(value_name = "VOLUME")]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Provide filter values
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values
    #[arg(long)]
    filter: Vec<String>,
}

fn kv(items: &[String]) -> serde_json::Map<String, Value> {
    items
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (k.to_string(), json!(v))
        })
        .collect()
}

/// Runs a volume subcommand.
pub async fn run(c: &Client, s: Sub) -> Result<()> {
    match s {
        Sub::Create(a) => {
            let name = a.name.or(a.name_flag).unwrap_or_default();
            let v = c
                .post_json(
                    "/volumes/create",
                    &json!({"Name": name, "Driver": a.driver, "DriverOpts": kv(&a.opt), "Labels": kv(&a.label)}),
                )
                .await?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(())
        }
        Sub::Ls(a) => {
            let v = c
                .get_json(&with_query(
                    "/volumes",
                    &[("filters", super::filters_json(&a.filter))],
                ))
                .await?;
            let vols = v["Volumes"].as_array().cloned().unwrap_or_default();
            if a.quiet {
                for vol in &vols {
                    println!("{}", vol["Name"].as_str().unwrap_or(""));
                }
                return Ok(());
            }
            let rows: Vec<Value> = vols
                .iter()
                .map(|vol| {
                    let mut r = vol.clone();
                    r["__labels"] = vol["Labels"].clone();
                    r["Labels"] = json!(vol["Labels"]
                        .as_object()
                        .map(|o| o
                            .iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default());
                    r
                })
                .collect();
            let format = a
                .format
                .unwrap_or_else(|| "table {{.Driver}}\t{{.Name}}".into());
            let headers = &[
                ("Driver", "DRIVER"),
                ("Name", "VOLUME NAME"),
                ("Mountpoint", "MOUNTPOINT"),
                ("Scope", "SCOPE"),
                ("Labels", "LABELS"),
            ];
            print!("{}", Formatter { format, headers }.render(&rows)?);
            Ok(())
        }
        Sub::Inspect(a) => {
            super::system::inspect_kind(c, "volume", &a.names, a.format.as_deref(), false).await
        }
        Sub::Rm(a) => {
            let q = format!("?force={}", a.force);
            for_each(&a.names, |n| {
                let p = format!("/volumes/{}{q}", enc(&n));
                async move { c.call(Method::DELETE, &p, empty()).await.map(|_| None) }
            })
            .await
        }
        Sub::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            let mut filters = a.filter.clone();
            if a.all {
                filters.push("all=true".into());
            }
            let prune = Prune {
                collection: "/volumes",
                warning,
                deleted: ("VolumesDeleted", "Deleted Volumes:"),
                reclaims: true,
            };
            prune.run(c, a.force, &filters, print_name).await
        }
    }
}
