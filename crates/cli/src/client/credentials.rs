//! Registry credentials as the docker CLI keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` (base64 `user:password`, or an identity token),
//! `credsStore` and `credHelpers`, whose `docker-credential-NAME` programs speak the
//! store/get/erase protocol on stdin/stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::units::{base64_decode, base64_encode};

/// Docker Hub's key in config.json.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// A registry login: the user and a password or identity token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

/// The config dir: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".docker")
}

pub fn config_path() -> PathBuf {
    config_dir().join("config.json")
}

/// config.json, or an empty config when there is none.
pub fn read_config() -> Result<Value> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(json!({})),
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("loading config file {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Writes config.json atomically, mode 0600 (it may hold passwords).
pub fn write_config(v: &Value) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = config_path();
    let dir = config_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(v)?)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p).with_context(|| format!("write {}", p.display()))?;
    Ok(())
}

/// The registry domain a server address or image name's registry names (the registry
/// client's own reading, so the CLI and the daemon key logins alike).
pub use berth_registry::server_domain as domain_of;

/// The key config.json uses for a registry: Docker Hub's index URL, else the host[:port].
pub fn key_of(server: &str) -> String {
    match domain_of(server).as_str() {
        "docker.io" => DOCKER_HUB.to_string(),
        d => d.to_string(),
    }
}

/// The helper that holds this registry's credentials, if any.
fn helper_for(cfg: &Value, key: &str) -> Option<String> {
    let domain = domain_of(key);
    if let Some(h) = cfg["credHelpers"].as_object().and_then(|m| {
        m.iter()
            .find(|(k, _)| domain_of(k) == domain)
            .and_then(|(_, v)| v.as_str())
    }) {
        return Some(h.to_string());
    }
    cfg["credsStore"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin.
fn helper(name: &str, action: &str, input: &str) -> Result<String> {
    let prog = format!("docker-credential-{name}");
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("error getting credentials - err: exec: \"{prog}\": executable file not found in $PATH"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        let msg = if stdout.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            stdout
        };
        bail!("{prog} {action}: {msg}");
    }
    Ok(stdout)
}

/// The stored login for `server` (helper first, then the file), if any.
pub fn get(server: &str) -> Result<Option<Login>> {
    let cfg = read_config()?;
    let key = key_of(server);
    if let Some(h) = helper_for(&cfg, &key) {
        let out = match helper(&h, "get", &key) {
            Ok(o) => o,
            // The protocol's "not found" is an error exit with this text.
            Err(e) if e.to_string().contains("credentials not found") => return Ok(None),
            Err(e) => return Err(e),
        };
        let v: Value = serde_json::from_str(&out)
            .with_context(|| format!("docker-credential-{h} get: not JSON"))?;
        let user = v["Username"].as_str().unwrap_or("").to_string();
        let secret = v["Secret"].as_str().unwrap_or("").to_string();
        if user.is_empty() && secret.is_empty() {
            return Ok(None);
        }
        return Ok(Some(if user == "<token>" {
            Login {
                username: String::new(),
                password: String::new(),
                identity_token: secret,
            }
        } else {
            Login {
                username: user,
                password: secret,
                identity_token: String::new(),
            }
        }));
    }
    let domain = domain_of(&key);
    let Some((_, entry)) = cfg["auths"]
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| domain_of(k) == domain))
    else {
        return Ok(None);
    };
    let mut l = Login {
        identity_token: entry["identitytoken"].as_str().unwrap_or("").to_string(),
        ..Login::default()
    };
    if let Some(raw) = entry["auth"].as_str().and_then(base64_decode) {
        let s = String::from_utf8_lossy(&raw).into_owned();
        let (u, p) = s.split_once(':').unwrap_or((&s, ""));
        l.username = u.to_string();
        l.password = p.to_string();
    }
    if l == Login::default() {
        return Ok(None);
    }
    Ok(Some(l))
}

/// Stores a login for `server`; returns the file when it went there unencrypted.
pub fn store(server: &str, l: &Login) -> Result<Option<PathBuf>> {
    let mut cfg = read_config()?;
    if !cfg.is_object() {
        cfg = json!({});
    }
    let key = key_of(server);
    if !cfg["auths"].is_object() {
        cfg["auths"] = json!({});
    }
    if let Some(h) = helper_for(&cfg, &key) {
        let (user, secret) = if l.identity_token.is_empty() {
            (l.username.as_str(), l.password.as_str())
        } else {
            ("<token>", l.identity_token.as_str())
        };
        let input = json!({"ServerURL": key, "Username": user, "Secret": secret}).to_string();
        helper(&h, "store", &input)?;
        // As docker: the file keeps an empty entry so `auths` lists the registry.
        cfg["auths"][&key] = json!({});
        write_config(&cfg)?;
        return Ok(None);
    }
    let mut entry = json!({});
    if l.identity_token.is_empty() {
        entry["auth"] = json!(base64_encode(
            format!("{}:{}", l.username, l.password).as_bytes()
        ));
    } else {
        entry["auth"] = json!(base64_encode(format!("{}:", l.username).as_bytes()));
        entry["identitytoken"] = json!(l.identity_token);
    }
    cfg["auths"][&key] = entry;
    write_config(&cfg)?;
    Ok(Some(config_path()))
}

/// Removes the login for `server`; false when there was none.
pub fn erase(server: &str) -> Result<bool> {
    let mut cfg = read_config()?;
    let key = key_of(server);
    let domain = domain_of(&key);
    let keys: Vec<String> = cfg["auths"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| domain_of(k) == domain)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut found = !keys.is_empty();
    if let Some(h) = helper_for(&cfg, &key) {
        match helper(&h, "erase", &key) {
            Ok(_) => found = true,
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(m) = cfg["auths"].as_object_mut() {
        for k in &keys {
            m.remove(k);
        }
    }
    if !keys.is_empty() {
        write_config(&cfg)?;
    }
    Ok(found)
}

/// The `X-Registry-Auth` header for pulling or pushing `name` (`e30` — `{}` — when no
/// login is stored, as docker sends).
pub fn registry_auth_header(registry: &str) -> String {
    let key = key_of(registry);
    let v = match get(&key) {
        Ok(Some(l)) => auth_config(&key, &l),
        _ => json!({}),
    };
    base64url(&v)
}

/// The `X-Registry-Config` header of a build: every stored login (the file's `auths`, the
/// registries of `credHelpers`, and what `credsStore` lists), keyed by registry as the
/// docker CLI sends it, so that the daemon can pull base images with them.
pub fn registry_config_header() -> String {
    let cfg = read_config().unwrap_or_else(|_| json!({}));
    let mut keys: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for section in ["auths", "credHelpers"] {
        if let Some(m) = cfg[section].as_object() {
            keys.extend(m.keys().cloned());
        }
    }
    if let Some(store) = cfg["credsStore"].as_str().filter(|s| !s.is_empty()) {
        if let Ok(out) = helper(store, "list", "") {
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&out) {
                keys.extend(m.keys().cloned());
            }
        }
    }
    let mut all = serde_json::Map::new();
    for k in keys {
        let key = key_of(&k);
        if let Ok(Some(l)) = get(&key) {
            all.insert(key.clone(), auth_config(&key, &l));
        }
    }
    base64url(&Value::Object(all))
}

/// A login as the Engine API's AuthConfig.
fn auth_config(key: &str, l: &Login) -> Value {
    if l.identity_token.is_empty() {
        json!({"username": l.username, "password": l.password, "serveraddress": key})
    } else {
        json!({"identitytoken": l.identity_token, "serveraddress": key})
    }
}

fn base64url(v: &Value) -> String {
    base64_encode(v.to_string().as_bytes())
        .replace('+', "-")
        .replace('/', "_")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_those_docker_writes() {
        assert_eq!(key_of(""), DOCKER_HUB);
        assert_eq!(key_of("docker.io"), DOCKER_HUB);
        assert_eq!(key_of("https://index.docker.io/v1/"), DOCKER_HUB);
        assert_eq!(key_of("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(key_of("https://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(domain_of("http://localhost:5000"), "localhost:5000");
    }
}
