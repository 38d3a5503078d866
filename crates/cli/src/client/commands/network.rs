//! Network commands (the requests; the daemon does the networking).

use anyhow::Result;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::{for_each, print_name, Prune};
use crate::client::format::Formatter;
use crate::client::http::{empty, enc, with_query, Client};
use crate::client::units::short_id;

/// `berth network …`.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings")]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings")]
    gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings")]
    ip_range: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    ipv6: bool,
    #[arg(value_name = "NETWORK")]
    name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Provide filter values
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    #[arg(required = true, value_name = "NETWORK")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values
    #[arg(long)]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// IPv4 address
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address
    #[arg(long)]
    ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "strings")]
    alias: Vec<String>,
    #[arg(value_name = "NETWORK")]
    network: String,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(value_name = "NETWORK")]
    network: String,
    #[arg(value_name = "CONTAINER")]
    container: String,
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

/// Runs a network subcommand.
pub async fn run(c: &Client, s: Sub) -> Result<()> {
    match s {
        Sub::Create(a) => {
            let config: Vec<Value> = a
                .subnet
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut m = json!({"Subnet": s});
                    if let Some(g) = a.gateway.get(i) {
                        m["Gateway"] = json!(g);
                    }
                    if let Some(r) = a.ip_range.get(i) {
                        m["IPRange"] = json!(r);
                    }
                    m
                })
                .collect();
            let body = json!({
                "Name": a.name, "Driver": a.driver, "Internal": a.internal, "Attachable": a.attachable,
                "EnableIPv6": a.ipv6, "Options": kv(&a.opt), "Labels": kv(&a.label),
                "IPAM": {"Driver": "default", "Config": config, "Options": {}},
            });
            let v = c.post_json("/networks/create", &body).await?;
            println!("{}", v["Id"].as_str().unwrap_or(""));
            Ok(())
        }
        Sub::Ls(a) => {
            let v = c
                .get_json(&with_query(
                    "/networks",
                    &[("filters", super::filters_json(&a.filter))],
                ))
                .await?;
            let mut nets = v.as_array().cloned().unwrap_or_default();
            nets.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            let trunc = !a.no_trunc;
            if a.quiet {
                for n in &nets {
                    let id = n["Id"].as_str().unwrap_or("");
                    println!("{}", if trunc { short_id(id) } else { id.to_string() });
                }
                return Ok(());
            }
            let rows: Vec<Value> = nets
                .iter()
                .map(|n| {
                    let id = n["Id"].as_str().unwrap_or("");
                    json!({
                        "ID": if trunc { short_id(id) } else { id.to_string() },
                        "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                        "CreatedAt": n["Created"], "__labels": n["Labels"],
                    })
                })
                .collect();
            let format = a
                .format
                .unwrap_or_else(|| "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into());
            let headers = &[
                ("ID", "NETWORK ID"),
                ("Name", "NAME"),
                ("Driver", "DRIVER"),
                ("Scope", "SCOPE"),
                ("IPv6", "IPV6"),
                ("Internal", "INTERNAL"),
                ("CreatedAt", "CREATED"),
            ];
            print!("{}", Formatter { format, headers }.render(&rows)?);
            Ok(())
        }
        Sub::Inspect(a) => {
            super::system::inspect_kind(c, "network", &a.names, a.format.as_deref(), false).await
        }
        Sub::Rm(a) => {
            let force = a.force;
            for_each(&a.names, |n| async move {
                match c
                    .call(Method::DELETE, &format!("/networks/{}", enc(&n)), empty())
                    .await
                {
                    Ok(_) => Ok(None),
                    Err(e) if force && e.to_string().contains("not found") => {
                        Ok(Some(String::new()))
                    }
                    Err(e) => Err(e),
                }
            })
            .await
        }
        Sub::Prune(a) => {
            let prune = Prune {
                collection: "/networks",
                warning: "WARNING! This will remove all custom networks not used by at least one container.",
                deleted: ("NetworksDeleted", "Deleted Networks:"),
                reclaims: false,
            };
            prune.run(c, a.force, &a.filter, print_name).await
        }
        Sub::Connect(a) => {
            let mut ipam = serde_json::Map::new();
            if let Some(ip) = &a.ip {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip) = &a.ip6 {
                ipam.insert("IPv6Address".into(), json!(ip));
            }
            let body = json!({"Container": a.container, "EndpointConfig": {"IPAMConfig": ipam, "Aliases": a.alias}});
            c.post_json(&format!("/networks/{}/connect", enc(&a.network)), &body)
                .await?;
            Ok(())
        }
        Sub::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            c.post_json(&format!("/networks/{}/disconnect", enc(&a.network)), &body)
                .await?;
            Ok(())
        }
    }
}
