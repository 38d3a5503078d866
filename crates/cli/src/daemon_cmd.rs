//! `berth daemon`: parses the daemon's flags and hands over to the engine.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};

/// Run the daemon: the Docker Engine API server (the first command starts it)
#[derive(Debug, Parser)]
#[command(name = "daemon")]
pub struct DaemonArgs {
    /// Socket to listen on (unix:///path or a path).
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    host: String,
    /// Group of the API socket (root and its members may use it); a missing `docker` group
    /// leaves it root's alone.
    #[arg(short = 'G', long = "group", default_value = "docker")]
    group: String,
    /// Persistent state: images, containers, volumes.
    #[arg(long, default_value = "/var/lib/berth")]
    root: PathBuf,
    /// Runtime state: sockets, the runtime's state.
    #[arg(long = "exec-root", default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Another OCI runtime for `--runtime NAME`, as NAME=PATH (runc and crun are found on
    /// PATH by themselves).
    #[arg(long = "add-runtime")]
    add_runtime: Vec<String>,
    /// Run containers in a user namespace of the subordinate ids of `default` (the
    /// dockremap user, created if missing), USER[:GROUP] or UID:GID
    #[arg(long = "userns-remap")]
    userns_remap: Option<String>,
    /// The default bridge network's interface.
    #[arg(long = "bridge", short = 'b', default_value = "berth0")]
    bridge: String,
    /// The default bridge's address and subnet (ADDRESS/PREFIX, e.g. 10.1.2.1/24); by
    /// default the first subnet of the address pools that no host route overlaps.
    #[arg(long)]
    bip: Option<String>,
    /// Where default subnets come from: base=CIDR,size=PREFIX (repeatable; dockerd's
    /// defaults 172.17-31.0.0/16 and 192.168.0.0/16 in /20s otherwise).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// The nftables table (family ip) that holds this daemon's rules (with the iptables
    /// backend: the prefix of its chains, NAME-DNAT, NAME-POST, NAME-FWD).
    #[arg(long = "nft-table", default_value = "berth")]
    nft_table: String,
    /// nftables or iptables (default: nftables where `nft` is installed, else iptables).
    #[arg(long = "firewall-backend", value_parser = ["nftables", "iptables"])]
    firewall_backend: Option<String>,
    /// Upstream DNS servers of the embedded DNS server (default: the host's resolv.conf).
    #[arg(long)]
    dns: Vec<String>,
    /// A registry reached over plain HTTP or unverified TLS (`host[:port]` or a CIDR).
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// A mirror of Docker Hub (URL), tried before it.
    #[arg(long = "registry-mirror")]
    registry_mirror: Vec<String>,
    /// Per-registry TLS: DIR/HOST[:PORT]/ca.crt, client.cert, client.key.
    #[arg(long = "certs-dir", default_value = "/etc/docker/certs.d")]
    certs_dir: PathBuf,
    /// Seconds a registry connection may stay silent before it is retried or fails.
    #[arg(long = "registry-timeout", default_value_t = 30)]
    registry_timeout: u64,
    /// Layers pulled or pushed at once.
    #[arg(long = "max-concurrent-downloads", default_value_t = 4)]
    max_concurrent_downloads: usize,
    /// Serve the web dashboard on ADDR (IP:PORT) from the start, or `off` for never (default:
    /// 127.0.0.1:23784, opened when `berth dashboard` first asks)
    #[arg(long, value_name = "ADDR")]
    dashboard: Option<String>,
    /// The Kubernetes CRI socket (kubelet's --container-runtime-endpoint); by default
    /// cri.sock beside the API socket (/run/berth/cri.sock).
    #[arg(long = "cri-socket")]
    cri_socket: Option<PathBuf>,
    /// Serve no CRI.
    #[arg(long = "no-cri")]
    no_cri: bool,
    /// CNI network configs for pods.
    #[arg(long = "cni-conf-dir", default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// Where CNI plugins are (repeatable; default /opt/cni/bin and /usr/lib/cni).
    #[arg(long = "cni-bin-dir")]
    cni_bin_dir: Vec<PathBuf>,
    /// An image for pods' sandboxes (a pause image); by default berth's own infra process,
    /// which needs no image.
    #[arg(long = "cri-sandbox-image")]
    cri_sandbox_image: Option<String>,
    /// The address of the CRI's streaming server (exec, attach, port-forward URLs).
    #[arg(long = "cri-stream-address", default_value = "127.0.0.1:0")]
    cri_stream_address: std::net::SocketAddr,
}

/// The daemon's flags as clap sees them (for help, completion and man pages).
pub fn command() -> clap::Command {
    DaemonArgs::command()
}

/// Parses the daemon's flags (`args[0]` is the program); a usage error is the caller's to
/// report.
pub fn parse(args: &[std::ffi::OsString]) -> Result<DaemonArgs, clap::Error> {
    DaemonArgs::try_parse_from(args)
}

/// Runs the daemon until it is stopped; returns the exit status.
pub fn run(a: DaemonArgs) -> i32 {
    let socket = PathBuf::from(a.host.strip_prefix("unix://").unwrap_or(&a.host));
    let berth_exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth daemon: cannot find its own binary: {e}");
            return 1;
        }
    };
    let mut runtimes = HashMap::new();
    for name in ["runc", "crun"] {
        if let Some(p) = find_on_path(name) {
            runtimes.insert(name.to_owned(), p);
        }
    }
    for r in &a.add_runtime {
        match r.split_once('=') {
            Some((n, p)) => {
                runtimes.insert(n.to_owned(), PathBuf::from(p));
            }
            None => {
                eprintln!("berth daemon: --add-runtime wants NAME=PATH, not {r:?}");
                return 125;
            }
        }
    }
    let dashboard = match dashboard(a.dashboard.as_deref(), &socket, &a.exec_root) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            return 1;
        }
    };
    let cri = berth_cri::CriOptions {
        socket: (!a.no_cri).then(|| {
            a.cri_socket.clone().unwrap_or_else(|| {
                socket
                    .parent()
                    .unwrap_or(std::path::Path::new("/run/berth"))
                    .join("cri.sock")
            })
        }),
        cni_conf_dir: a.cni_conf_dir.clone(),
        cni_bin_dirs: if a.cni_bin_dir.is_empty() {
            berth_cri::CriOptions::default().cni_bin_dirs
        } else {
            a.cni_bin_dir.clone()
        },
        sandbox_image: a.cri_sandbox_image.clone(),
        stream_address: a.cri_stream_address,
    };
    let opts = berth_engine::DaemonOptions {
        root: a.root,
        exec_root: a.exec_root,
        socket,
        berth_exe,
        runtimes,
        userns_remap: a.userns_remap,
        group: Some(a.group),
        network: berth_engine::NetworkOptions {
            bridge: a.bridge,
            bip: a.bip,
            pools: a.default_address_pool,
            nft_table: a.nft_table,
            firewall_backend: a.firewall_backend,
            dns: a.dns,
        },
        registry: berth_engine::RegistryOptions {
            insecure: a.insecure_registry,
            mirrors: a.registry_mirror,
            certs_dir: a.certs_dir,
            timeout: std::time::Duration::from_secs(a.registry_timeout.max(1)),
            concurrency: a.max_concurrent_downloads.max(1),
            ..berth_engine::RegistryOptions::default()
        },
    };
    let dashboard = berth_engine::Face {
        routes: dashboard.api_routes(),
        task: Some(Box::new(move |_engine, _stop| {
            Box::pin(async move {
                dashboard.task().await;
                Ok(())
            })
        })),
    };
    match berth_engine::run_with(opts, vec![dashboard, berth_cri::face(cri)]) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            1
        }
    }
}

/// The dashboard of `--dashboard`: an address is bound now, so a bad one fails the start
/// with its reason; one beyond loopback is allowed (it was asked for) with a warning.
fn dashboard(
    flag: Option<&str>,
    socket: &std::path::Path,
    exec_root: &std::path::Path,
) -> Result<berth_dashboard::Dashboard, String> {
    use berth_dashboard::Listen;
    let listen = match flag {
        None => Listen::OnDemand(berth_dashboard::DEFAULT_ADDR),
        Some("off") => Listen::Off,
        Some(addr) => {
            let parsed: std::net::SocketAddr = match addr.strip_prefix("localhost:") {
                Some(port) => format!("127.0.0.1:{port}").parse(),
                None => addr.parse(),
            }
            .map_err(|_| format!("--dashboard {addr:?}: want IP:PORT (127.0.0.1:23784) or off"))?;
            let l = std::net::TcpListener::bind(parsed)
                .map_err(|e| format!("--dashboard {addr}: cannot listen there: {e}"))?;
            if !parsed.ip().is_loopback() {
                eprintln!(
                    "berth daemon: warning: the dashboard listens on {parsed}, beyond this machine's \
                     loopback: whoever reaches it can try login URLs (they are one-time secrets, \
                     sent over plain HTTP)"
                );
            }
            Listen::Bound(l)
        }
    };
    berth_dashboard::Dashboard::new(berth_dashboard::Options {
        listen,
        api_socket: socket.to_path_buf(),
        state_dir: exec_root.join("dashboard"),
    })
    .map_err(|e| e.to_string())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}
