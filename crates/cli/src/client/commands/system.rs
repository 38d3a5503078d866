//! System commands: version, info, inspect, system df/prune, events.

use anyhow::Result;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::{confirm, filters_query, reclaimed};
use crate::client::format::{execute_one, Formatter};
use crate::client::http::{each_json, empty, enc, with_query, Client, DaemonError, API_VERSION};
use crate::client::units::{api_timestamp, human_size, human_size_prec, rfc3339_nano};
use crate::client::StatusError;

/// `berth system …`.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Show disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(PruneArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Get real time events from the server
    Events(EventsArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
    /// Provide filter values
    #[arg(long)]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
}

/// Runs a system subcommand.
pub async fn run(c: &Client, s: Sub) -> Result<()> {
    match s {
        Sub::Df(a) => df(c, a).await,
        Sub::Prune(a) => prune(c, a).await,
        Sub::Info(a) => info(c, a).await,
        Sub::Events(a) => events(c, a).await,
    }
}

fn kind_path(kind: &str, name: &str) -> String {
    let n = enc(name);
    match kind {
        "container" => format!("/containers/{n}/json"),
        "image" => format!("/images/{n}/json"),
        "volume" => format!("/volumes/{n}"),
        _ => format!("/networks/{n}"),
    }
}

/// Prints inspected objects: a JSON array (4-space indent, as docker), or `-f` per object.
fn print_inspected(objs: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        Some(f) if !f.is_empty() => {
            for o in objs {
                if f == "json" {
                    println!("{}", serde_json::to_string(o)?);
                } else {
                    print!("{}", execute_one(f, o)?);
                }
            }
        }
        _ => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&Value::Array(objs.to_vec()), &mut ser)?;
            println!("{}", String::from_utf8_lossy(&buf));
        }
    }
    Ok(())
}

/// `container inspect`, `image inspect`, … : one kind.
pub async fn inspect_kind(
    c: &Client,
    kind: &str,
    names: &[String],
    format: Option<&str>,
    size: bool,
) -> Result<()> {
    let mut objs = Vec::new();
    let mut failed = false;
    for n in names {
        let mut p = kind_path(kind, n);
        if size && kind == "container" {
            p.push_str("?size=1");
        }
        match c.get_json(&p).await {
            Ok(v) => objs.push(v),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    print_inspected(&objs, format)?;
    if failed {
        return Err(anyhow::Error::new(StatusError {
            code: 1,
            message: None,
        }));
    }
    Ok(())
}

/// `inspect`: containers first, then images, volumes, networks (or `--type`).
pub async fn inspect(c: &Client, a: InspectArgs) -> Result<()> {
    let kinds: Vec<&str> = match a.kind.as_deref() {
        Some(k) => vec![k],
        None => vec!["container", "image", "volume", "network"],
    };
    let mut objs = Vec::new();
    let mut failed = false;
    'names: for n in &a.names {
        for k in &kinds {
            let mut p = kind_path(k, n);
            if a.size && *k == "container" {
                p.push_str("?size=1");
            }
            match c.get_json(&p).await {
                Ok(v) => {
                    objs.push(v);
                    continue 'names;
                }
                Err(e)
                    if e.downcast_ref::<DaemonError>()
                        .is_some_and(|d| d.status == hyper::StatusCode::NOT_FOUND) => {}
                Err(e) => return Err(e),
            }
        }
        failed = true;
        eprintln!("Error: No such object: {n}");
    }
    print_inspected(&objs, a.format.as_deref())?;
    if failed {
        return Err(anyhow::Error::new(StatusError {
            code: 1,
            message: None,
        }));
    }
    Ok(())
}

fn client_version() -> Value {
    json!({
        "Platform": {"Name": "berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `version`: the client section always, the server's when the daemon answers.
pub async fn version(c: &Client, a: VersionArgs) -> Result<()> {
    let client = client_version();
    let server = c.get_json("/version").await;
    if let Some(f) = a.format {
        let v = json!({"Client": client, "Server": server.as_ref().ok()});
        print!("{}", execute_one(&f, &v)?);
        return server.map(|_| ());
    }
    println!("Client:");
    println!(
        " Version:           {}",
        client["Version"].as_str().unwrap_or("")
    );
    println!(" API version:       {API_VERSION}");
    println!(" OS/Arch:           {}/{}", std::env::consts::OS, go_arch());
    println!(" Context:           default");
    let s = server?;
    println!();
    println!(
        "Server: {}",
        s["Platform"]["Name"].as_str().unwrap_or("berth")
    );
    let comps = s["Components"].as_array().cloned().unwrap_or_else(|| vec![json!({"Name": "Engine", "Version": s["Version"], "Details": {
        "ApiVersion": s["ApiVersion"], "MinAPIVersion": s["MinAPIVersion"], "GitCommit": s["GitCommit"], "Os": s["Os"], "Arch": s["Arch"], "KernelVersion": s["KernelVersion"]}})]);
    for comp in comps {
        println!(" {}:", comp["Name"].as_str().unwrap_or(""));
        println!(
            "  Version:          {}",
            comp["Version"].as_str().unwrap_or("")
        );
        let d = &comp["Details"];
        if comp["Name"] == "Engine" {
            println!(
                "  API version:      {} (minimum version {})",
                d["ApiVersion"]
                    .as_str()
                    .or(s["ApiVersion"].as_str())
                    .unwrap_or(""),
                d["MinAPIVersion"]
                    .as_str()
                    .or(s["MinAPIVersion"].as_str())
                    .unwrap_or("")
            );
            println!(
                "  Git commit:       {}",
                d["GitCommit"]
                    .as_str()
                    .or(s["GitCommit"].as_str())
                    .unwrap_or("")
            );
            println!(
                "  Built:            {}",
                d["BuildTime"]
                    .as_str()
                    .or(s["BuildTime"].as_str())
                    .unwrap_or("")
            );
            println!(
                "  OS/Arch:          {}/{}",
                d["Os"].as_str().or(s["Os"].as_str()).unwrap_or(""),
                d["Arch"].as_str().or(s["Arch"].as_str()).unwrap_or("")
            );
            println!(
                "  Experimental:     {}",
                d["Experimental"].as_str().unwrap_or("false")
            );
        } else if let Some(o) = d.as_object() {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for k in keys {
                println!("  {:<18}{}", format!("{k}:"), o[k].as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

/// `info`.
pub async fn info(c: &Client, a: InfoArgs) -> Result<()> {
    let v = c.get_json("/info").await?;
    if let Some(f) = a.format {
        print!("{}", execute_one(&f, &v)?);
        return Ok(());
    }
    let s = |k: &str| match &v[k] {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    if let Some(rt) = v["Runtimes"].as_object() {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        println!(
            " Runtimes: {}",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Init Binary: {}", s("InitBinary"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        crate::client::units::bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", s("Debug"));
    println!(" Experimental: {}", s("ExperimentalBuild"));
    println!(" Live Restore Enabled: {}", s("LiveRestoreEnabled"));
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or(""));
    }
    Ok(())
}

async fn df(c: &Client, a: DfArgs) -> Result<()> {
    let v = c.get_json("/system/df").await?;
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let images = arr("Images");
    let containers = arr("Containers");
    let volumes = arr("Volumes");
    let cache = arr("BuildCache");
    let pct = |r: f64, t: f64| {
        if t > 0.0 {
            format!(" ({:.0}%)", r / t * 100.0)
        } else {
            String::new()
        }
    };
    let f = |x: &Value| x.as_f64().unwrap_or(0.0);
    let img_total: f64 = v["LayersSize"]
        .as_f64()
        .unwrap_or_else(|| images.iter().map(|i| f(&i["Size"])).sum());
    let img_active = images.iter().filter(|i| f(&i["Containers"]) > 0.0).count();
    let img_used: f64 = images
        .iter()
        .filter(|i| f(&i["Containers"]) > 0.0)
        .map(|i| f(&i["Size"]) - f(&i["SharedSize"]).max(0.0))
        .sum();
    let img_rec = (img_total - img_used).max(0.0);
    let ctr_total: f64 = containers.iter().map(|c| f(&c["SizeRw"])).sum();
    let ctr_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let ctr_rec: f64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| f(&c["SizeRw"]))
        .sum();
    let vol_total: f64 = volumes
        .iter()
        .map(|v| f(&v["UsageData"]["Size"]).max(0.0))
        .sum();
    let vol_active = volumes
        .iter()
        .filter(|v| f(&v["UsageData"]["RefCount"]) > 0.0)
        .count();
    let vol_rec: f64 = volumes
        .iter()
        .filter(|v| f(&v["UsageData"]["RefCount"]) == 0.0)
        .map(|v| f(&v["UsageData"]["Size"]).max(0.0))
        .sum();
    let cache_total: f64 = cache.iter().map(|b| f(&b["Size"])).sum();
    let cache_active = cache
        .iter()
        .filter(|b| b["InUse"].as_bool().unwrap_or(false))
        .count();
    let cache_rec: f64 = cache
        .iter()
        .filter(|b| !b["InUse"].as_bool().unwrap_or(false))
        .map(|b| f(&b["Size"]))
        .sum();
    let row = |t: &str, total: usize, active: usize, size: f64, rec: f64| {
        json!({"Type": t, "TotalCount": total.to_string(), "Active": active.to_string(), "Size": human_size_prec(size, 3),
               "Reclaimable": format!("{}{}", human_size_prec(rec, 3), pct(rec, size))})
    };
    let rows = vec![
        row("Images", images.len(), img_active, img_total, img_rec),
        row(
            "Containers",
            containers.len(),
            ctr_active,
            ctr_total,
            ctr_rec,
        ),
        row(
            "Local Volumes",
            volumes.len(),
            vol_active,
            vol_total,
            vol_rec,
        ),
        row(
            "Build Cache",
            cache.len(),
            cache_active,
            cache_total,
            cache_rec,
        ),
    ];
    let format = a.format.unwrap_or_else(|| {
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into()
    });
    let headers = &[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    print!("{}", Formatter { format, headers }.render(&rows)?);
    if a.verbose {
        println!("\nImages space usage:\n");
        let rows: Vec<Value> = images
            .iter()
            .flat_map(|i| super::image::image_rows(i, true))
            .collect();
        let hdr = &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ];
        print!("{}", Formatter { format: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}".into(), headers: hdr }.render(&rows)?);
        println!("\nContainers space usage:\n");
        let rows: Vec<Value> = containers
            .iter()
            .map(|c| super::container::ps_row(c, true))
            .collect();
        let hdr = &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ];
        print!("{}", Formatter { format: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}".into(), headers: hdr }.render(&rows)?);
        println!("\nLocal Volumes space usage:\n");
        let rows: Vec<Value> = volumes.iter().map(|v| json!({"Name": v["Name"], "Links": f(&v["UsageData"]["RefCount"]).to_string(), "Size": human_size_prec(f(&v["UsageData"]["Size"]).max(0.0), 3)})).collect();
        print!(
            "{}",
            Formatter {
                format: "table {{.Name}}\t{{.Links}}\t{{.Size}}".into(),
                headers: &[
                    ("Name", "VOLUME NAME"),
                    ("Links", "LINKS"),
                    ("Size", "SIZE")
                ]
            }
            .render(&rows)?
        );
    }
    Ok(())
}

async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if a.all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warning.push_str("  - unused build cache\n");
    if !a.force && !confirm(&warning) {
        return Ok(());
    }
    let q = filters_query(&a.filter);
    let mut total = 0.0;
    let v = c.post(&format!("/containers/prune?{q}")).await?.json()?;
    total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    for d in v["ContainersDeleted"].as_array().into_iter().flatten() {
        println!("Deleted Container: {}", d.as_str().unwrap_or(""));
    }
    let v = c.post(&format!("/networks/prune?{q}")).await?.json()?;
    for d in v["NetworksDeleted"].as_array().into_iter().flatten() {
        println!("Deleted Network: {}", d.as_str().unwrap_or(""));
    }
    if a.volumes {
        let v = c.post(&format!("/volumes/prune?{q}")).await?.json()?;
        total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
        for d in v["VolumesDeleted"].as_array().into_iter().flatten() {
            println!("Deleted Volume: {}", d.as_str().unwrap_or(""));
        }
    }
    let mut f = a.filter.clone();
    if a.all {
        f.push("dangling=false".into());
    }
    let v = c
        .post(&format!("/images/prune?{}", filters_query(&f)))
        .await?
        .json()?;
    total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    for d in v["ImagesDeleted"].as_array().into_iter().flatten() {
        if let Some(u) = d["Untagged"].as_str() {
            println!("untagged: {u}");
        }
        if let Some(u) = d["Deleted"].as_str() {
            println!("deleted: {u}");
        }
    }
    if let Ok(r) = c.call(Method::POST, "/build/prune", empty()).await {
        if let Ok(v) = r.json() {
            total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
        }
    }
    println!("\n{}", reclaimed(&json!({"SpaceReclaimed": total})));
    let _ = human_size(0.0);
    Ok(())
}

/// docker's default event line: time, type, action, actor id, attributes sorted.
pub fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or_else(|| e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let t = rfc3339_nano(
        nanos.div_euclid(1_000_000_000),
        u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
    );
    let mut line = format!(
        "{t} {} {} {}",
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or("")
    );
    if let Some(attrs) = e["Actor"]["Attributes"].as_object() {
        let mut kv: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        kv.sort();
        if !kv.is_empty() {
            line.push_str(&format!(" ({})", kv.join(", ")));
        }
    }
    line
}

/// `events`.
pub async fn events(c: &Client, a: EventsArgs) -> Result<()> {
    let since = api_timestamp(a.since.as_deref().unwrap_or_default())?;
    let until = api_timestamp(a.until.as_deref().unwrap_or_default())?;
    let path = with_query(
        "/events",
        &[
            ("since", since),
            ("until", until),
            ("filters", super::filters_json(&a.filter)),
        ],
    );
    let resp = c.stream(Method::GET, &path, empty(), &[]).await?;
    let fmt = a.format.clone();
    each_json(resp.into_body(), |e| {
        match fmt.as_deref() {
            Some("json") => println!("{}", serde_json::to_string(&e)?),
            Some(f) => print!("{}", execute_one(f, &e)?),
            None => println!("{}", event_line(&e)),
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        Ok(true)
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_print_like_docker() {
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
                       "time": 1_704_207_845, "timeNano": 1_704_207_845_000_000_123i64});
        assert_eq!(
            event_line(&e),
            "2024-01-02T15:04:05.000000123Z container start abc (image=busybox, name=web)"
        );
    }
}
