//! Pod networks through CNI plugins, as the CNI specification has a runtime drive them: the
//! first network configuration (list) of the config directory in lexical order, each plugin
//! of its list exec'd with the command in its environment and its configuration (with
//! `prevResult` and the `runtimeConfig` of the capabilities it declares) on stdin.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// A plugin that runs longer than this is killed and the call fails.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Where configurations and plugins are.
#[derive(Debug, Clone)]
pub struct Cni {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
}

/// A network configuration list: its name, version and plugins.
#[derive(Debug, Clone)]
pub struct NetworkList {
    pub name: String,
    pub version: String,
    pub plugins: Vec<Value>,
    /// The file it came from.
    pub file: PathBuf,
}

/// What the pod's attachment needs at every call.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The sandbox id (CNI_CONTAINERID).
    pub id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    /// K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID … as kubelet's runtimes pass them.
    pub args: &'a [(&'static str, String)],
    /// `portMappings` for plugins with that capability (hostPort).
    pub port_mappings: &'a [Value],
}

impl Cni {
    /// The network to use: the first file in the directory (`.conf`, `.conflist`, `.json`)
    /// that parses and whose plugins are all installed. Why none is usable, if none is.
    pub fn network(&self) -> std::result::Result<NetworkList, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.conf_dir)
            .map_err(|e| format!("no network config in {}: {e}", self.conf_dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conf" | "conflist" | "json")
                )
            })
            .collect();
        files.sort();
        let mut why = format!("no network config found in {}", self.conf_dir.display());
        for file in files {
            match self.network_from(&file) {
                Ok(list) => return Ok(list),
                Err(e) => why = e,
            }
        }
        Err(why)
    }

    /// The network configuration (list) in `file`, if it parses and its plugins are installed.
    pub fn network_from(&self, file: &Path) -> std::result::Result<NetworkList, String> {
        let bad = |what: &str| format!("network config {}: {what}", file.display());
        let text = std::fs::read(file).map_err(|e| bad(&e.to_string()))?;
        let v: Value = serde_json::from_slice(&text).map_err(|e| bad(&e.to_string()))?;
        let name = v["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("no \"name\""))?
            .to_owned();
        let version = v["cniVersion"].as_str().unwrap_or("0.4.0").to_owned();
        let plugins = match v["plugins"].as_array() {
            Some(p) => p.clone(),
            // A single plugin's configuration (`.conf`): a list of one.
            None if v["type"].is_string() => vec![v.clone()],
            None => return Err(bad("neither \"plugins\" nor \"type\"")),
        };
        if plugins.is_empty() {
            return Err(bad("an empty \"plugins\" list"));
        }
        for p in &plugins {
            let kind = p["type"]
                .as_str()
                .ok_or_else(|| bad("a plugin without \"type\""))?;
            self.plugin(kind).map_err(|e| bad(&e.to_string()))?;
        }
        Ok(NetworkList {
            name,
            version,
            plugins,
            file: file.to_owned(),
        })
    }

    fn plugin(&self, kind: &str) -> Result<PathBuf> {
        if kind.contains('/') || kind.is_empty() {
            return Err(Error::Network(format!("invalid CNI plugin type {kind:?}")));
        }
        self.bin_dirs
            .iter()
            .map(|d| d.join(kind))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::Network(format!(
                    "CNI plugin {kind} not found in {}",
                    self.search_path()
                ))
            })
    }

    fn search_path(&self) -> String {
        self.bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// ADD through the whole list; the last plugin's result.
    pub async fn add(&self, net: &NetworkList, a: &Attachment<'_>) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for p in &net.plugins {
            let out = self.invoke("ADD", net, p, a, prev.as_ref()).await?;
            prev = Some(out);
        }
        prev.ok_or_else(|| Error::Network("the network has no plugins".into()))
    }

    /// CHECK through the whole list against the ADD's result (CNI 0.4.0 and later).
    pub async fn check(&self, net: &NetworkList, a: &Attachment<'_>, result: &Value) -> Result<()> {
        if version_below(&net.version, (0, 4, 0)) {
            return Ok(());
        }
        for p in &net.plugins {
            self.invoke("CHECK", net, p, a, Some(result)).await?;
        }
        Ok(())
    }

    /// DEL through the list in reverse order, with the ADD's result where it is known.
    /// Every plugin is called even if one fails; the first failure is returned.
    pub async fn del(
        &self,
        net: &NetworkList,
        a: &Attachment<'_>,
        result: Option<&Value>,
    ) -> Result<()> {
        let mut first = None;
        for p in net.plugins.iter().rev() {
            if let Err(e) = self.invoke("DEL", net, p, a, result).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn invoke(
        &self,
        command: &str,
        net: &NetworkList,
        plugin: &Value,
        a: &Attachment<'_>,
        prev: Option<&Value>,
    ) -> Result<Value> {
        let kind = plugin["type"].as_str().unwrap_or_default();
        let exe = self.plugin(kind)?;
        let mut conf = plugin.clone();
        conf["name"] = json!(net.name);
        conf["cniVersion"] = json!(net.version);
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        let caps = &plugin["capabilities"];
        let mut runtime_config = serde_json::Map::new();
        if caps["portMappings"].as_bool() == Some(true) && !a.port_mappings.is_empty() {
            runtime_config.insert("portMappings".into(), json!(a.port_mappings));
        }
        if !runtime_config.is_empty() {
            conf["runtimeConfig"] = Value::Object(runtime_config);
        }
        let mut args = vec!["IgnoreUnknown=1".to_owned()];
        args.extend(a.args.iter().map(|(k, v)| format!("{k}={v}")));
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", a.id)
            .env("CNI_NETNS", a.netns)
            .env("CNI_IFNAME", a.ifname)
            .env("CNI_ARGS", args.join(";"))
            .env("CNI_PATH", self.search_path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let failed = |why: String| {
            Error::Network(format!(
                "CNI plugin {kind} ({command}) of network {}: {why}",
                net.name
            ))
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| failed(format!("run {}: {e}", exe.display())))?;
        let input = serde_json::to_vec(&conf).map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(&input)
                .await
                .map_err(|e| failed(format!("write its config: {e}")))?;
        }
        let out = tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| failed(format!("no answer in {}s", PLUGIN_TIMEOUT.as_secs())))?
            .map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            // The spec's error: {"code", "msg", "details"} on stdout.
            let err: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let msg = match (err["msg"].as_str(), err["details"].as_str()) {
                (Some(m), Some(d)) if !d.is_empty() => format!("{m}: {d}"),
                (Some(m), _) => m.to_owned(),
                _ => format!(
                    "{} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            };
            return Err(failed(msg));
        }
        if command != "ADD" {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout).map_err(|e| failed(format!("unreadable result: {e}")))
    }
}

/// The pod's IPv4 and IPv6 addresses (without prefix) of a CNI result: 0.3.0+ `ips`, or
/// 0.2.0 `ip4`/`ip6`.
pub fn addresses(result: &Value) -> Vec<String> {
    let strip = |a: &str| a.split('/').next().unwrap_or(a).to_owned();
    let mut out: Vec<String> = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str().map(strip))
        .collect();
    for key in ["ip4", "ip6"] {
        if let Some(a) = result[key]["ip"].as_str() {
            out.push(strip(a));
        }
    }
    // IPv4 first, as kubelet takes the first as the pod's primary address.
    out.sort_by_key(|a| a.contains(':'));
    out
}

fn version_below(version: &str, than: (u32, u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v < than
}

/// CNI_ARGS pairs kubelet's runtimes pass.
pub fn pod_args(
    namespace: &str,
    name: &str,
    uid: &str,
    sandbox: &str,
) -> [(&'static str, String); 4] {
    [
        ("K8S_POD_NAMESPACE", namespace.to_owned()),
        ("K8S_POD_NAME", name.to_owned()),
        ("K8S_POD_INFRA_CONTAINER_ID", sandbox.to_owned()),
        ("K8S_POD_UID", uid.to_owned()),
    ]
}

/// A CRI port mapping as the portmap plugin's `portMappings` entry.
pub fn port_mapping(protocol: &str, container: i32, host: i32, host_ip: &str) -> Value {
    let mut m = HashMap::new();
    m.insert("hostPort", json!(host));
    m.insert("containerPort", json!(container));
    m.insert("protocol", json!(protocol));
    if !host_ip.is_empty() {
        m.insert("hostIP", json!(host_ip));
    }
    json!(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_results_of_each_version() {
        let r = json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.88.0.5/16"}]});
        assert_eq!(addresses(&r), ["10.88.0.5", "fd00::5"]);
        let old = json!({"ip4": {"ip": "10.1.0.2/24"}});
        assert_eq!(addresses(&old), ["10.1.0.2"]);
    }

    #[test]
    fn first_usable_config_in_lexical_order() {
        let dir = tempfile::tempdir().unwrap();
        let cni = Cni {
            conf_dir: dir.path().to_owned(),
            bin_dirs: vec![PathBuf::from("/usr/lib/cni")],
        };
        assert!(cni.network().unwrap_err().contains("no network config"));
        std::fs::write(dir.path().join("05-bad.conf"), "{").unwrap();
        std::fs::write(
            dir.path().join("10-x.conflist"),
            r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]}"#,
        )
        .unwrap();
        assert!(cni.network().unwrap_err().contains("no-such-plugin"));
        std::fs::write(
            dir.path().join("20-lo.conf"),
            r#"{"cniVersion":"0.4.0","name":"lo","type":"loopback"}"#,
        )
        .unwrap();
        if Path::new("/usr/lib/cni/loopback").exists() {
            let n = cni.network().unwrap();
            assert_eq!((n.name.as_str(), n.plugins.len()), ("lo", 1));
        }
        assert!(version_below("0.3.1", (0, 4, 0)));
        assert!(!version_below("1.0.0", (0, 4, 0)));
    }
}
