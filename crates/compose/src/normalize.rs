//! Short syntaxes to the long ones (as `docker compose config` prints them), relative paths to
//! absolute ones: a service in this form is what files merge, `extends` builds on, the config
//! hash covers and the planner reads.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::interpolate::Environment;

/// Rewrites one service (from a file whose relative paths start at `base`) in place.
pub fn service(svc: &mut Value, base: &Path, env: &Environment) -> Result<(), String> {
    let Some(m) = svc.as_object_mut() else {
        return Ok(());
    };
    if let Some(b) = m.get_mut("build") {
        build(b, base);
    }
    for key in ["command", "entrypoint"] {
        if let Some(Value::String(s)) = m.get(key) {
            let words = split_shell(s).map_err(|e| format!("{key}: {e}"))?;
            m.insert(key.into(), json!(words));
        }
    }
    for key in ["environment", "labels", "sysctls", "annotations"] {
        if let Some(v) = m.get_mut(key) {
            let lookup = key == "environment";
            *v = to_map(
                v,
                if lookup { Some(env) } else { None },
                key != "environment",
            );
        }
    }
    if let Some(Value::Array(a)) = m.get("extra_hosts") {
        let hosts: Vec<Value> = a
            .iter()
            .filter_map(Value::as_str)
            .map(|h| json!(h.replacen('=', ":", 1)))
            .collect();
        m.insert("extra_hosts".into(), json!(hosts));
    } else if let Some(Value::Object(h)) = m.get("extra_hosts") {
        let hosts: Vec<Value> = h
            .iter()
            .map(|(k, v)| json!(format!("{k}:{}", text(v))))
            .collect();
        m.insert("extra_hosts".into(), json!(hosts));
    }
    for key in [
        "dns",
        "dns_search",
        "tmpfs",
        "env_file",
        "cap_add",
        "cap_drop",
        "profiles",
    ] {
        if let Some(Value::String(s)) = m.get(key) {
            let s = s.clone();
            m.insert(key.into(), json!([s]));
        }
    }
    if let Some(Value::Array(files)) = m.get("env_file") {
        let files: Vec<Value> = files
            .iter()
            .map(|f| {
                let (path, required) = match f {
                    Value::Object(o) => (
                        o.get("path").map(text).unwrap_or_default(),
                        o.get("required").and_then(Value::as_bool).unwrap_or(true),
                    ),
                    other => (text(other), true),
                };
                json!({"path": absolute(base, &path), "required": required})
            })
            .collect();
        m.insert("env_file".into(), json!(files));
    }
    if let Some(Value::Array(ports)) = m.get("ports") {
        let mut out = Vec::new();
        for p in ports {
            out.extend(port(p)?);
        }
        m.insert("ports".into(), json!(out));
    }
    if let Some(Value::Array(e)) = m.get("expose") {
        let e: Vec<Value> = e.iter().map(|x| json!(text(x))).collect();
        m.insert("expose".into(), json!(e));
    }
    if let Some(Value::Array(vols)) = m.get("volumes") {
        let mut out = Vec::new();
        for v in vols {
            out.push(volume(v, base)?);
        }
        m.insert("volumes".into(), json!(out));
    }
    if let Some(v) = m.get_mut("networks") {
        if let Value::Array(a) = v {
            let names: Map<String, Value> = a.iter().map(|n| (text(n), Value::Null)).collect();
            *v = Value::Object(names);
        }
    }
    if let Some(v) = m.get_mut("depends_on") {
        let entries: Vec<(String, Value)> = match v {
            Value::Array(a) => a.iter().map(|n| (text(n), Value::Null)).collect(),
            Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Vec::new(),
        };
        let mut deps = Map::new();
        for (name, spec) in entries {
            let mut d = spec.as_object().cloned().unwrap_or_default();
            d.entry("condition").or_insert(json!("service_started"));
            d.entry("required").or_insert(json!(true));
            deps.insert(name, Value::Object(d));
        }
        *v = Value::Object(deps);
    }
    if let Some(hc) = m.get_mut("healthcheck").and_then(Value::as_object_mut) {
        if let Some(Value::String(s)) = hc.get("test") {
            let s = s.clone();
            hc.insert("test".into(), json!(["CMD-SHELL", s]));
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Array(a)) = m.get(key) {
            let refs: Vec<Value> = a
                .iter()
                .map(|r| match r {
                    Value::String(s) => json!({"source": s}),
                    other => other.clone(),
                })
                .collect();
            m.insert(key.into(), json!(refs));
        }
    }
    Ok(())
}

/// A top-level file-based secret or config: its `file` made absolute.
pub fn file_resource(v: &mut Value, base: &Path) {
    if let Some(Value::String(f)) = v.get("file") {
        let f = absolute(base, f);
        v["file"] = json!(f);
    }
}

fn build(b: &mut Value, base: &Path) {
    if let Value::String(ctx) = b {
        *b = json!({"context": ctx.clone()});
    }
    if let Some(o) = b.as_object_mut() {
        let ctx = o.get("context").map(text).unwrap_or_else(|| ".".into());
        o.insert("context".into(), json!(absolute(base, &ctx)));
        if !o.contains_key("dockerfile_inline") {
            o.entry("dockerfile").or_insert(json!("Dockerfile"));
        }
        if let Some(args) = o.get_mut("args") {
            *args = to_map(args, None, true);
        }
        if let Some(l) = o.get_mut("labels") {
            *l = to_map(l, None, true);
        }
    }
}

/// A path as the service sees it: `~` is the home directory, relative ones start at `base`.
pub fn absolute(base: &Path, p: &str) -> String {
    let path = if let Some(rest) = p.strip_prefix("~/") {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/".into())).join(rest)
    } else if p == "~" {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/".into()))
    } else {
        base.join(p)
    };
    clean(&path).to_string_lossy().into_owned()
}

/// `a/./b/../c` → `a/c`, without touching the filesystem.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A scalar as text (numbers and booleans as YAML wrote them).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `["K=V", "K"]` or `{K: V}` → `{K: "V"}`; a bare `K` takes its value from `env` (dropped if
/// unset) or stays null when there is no `env`.
fn to_map(v: &Value, env: Option<&Environment>, keep_bare: bool) -> Value {
    let mut out = Map::new();
    match v {
        Value::Array(a) => {
            for item in a {
                let s = text(item);
                match s.split_once('=') {
                    Some((k, val)) => {
                        out.insert(k.to_string(), json!(val));
                    }
                    None => match env.and_then(|e| e.get(&s)) {
                        Some(val) => {
                            out.insert(s, json!(val));
                        }
                        None if keep_bare => {
                            out.insert(s, json!(""));
                        }
                        None => {
                            out.insert(s, Value::Null);
                        }
                    },
                }
            }
        }
        Value::Object(o) => {
            for (k, val) in o {
                let val = match val {
                    Value::Null => match env.and_then(|e| e.get(k)) {
                        Some(x) => json!(x),
                        None => Value::Null,
                    },
                    other => json!(text(other)),
                };
                out.insert(k.clone(), val);
            }
        }
        _ => {}
    }
    Value::Object(out)
}

/// One `ports` entry as the long syntax; a range gives one entry per port.
pub fn port(p: &Value) -> Result<Vec<Value>, String> {
    if let Value::Object(o) = p {
        let mut o = o.clone();
        let target = o.get("target").map(text).unwrap_or_default();
        let target: u16 = target
            .parse()
            .map_err(|_| format!("invalid port target {target:?}"))?;
        o.insert("target".into(), json!(target));
        if let Some(pb) = o.get("published").map(text) {
            o.insert("published".into(), json!(pb));
        }
        o.entry("protocol").or_insert(json!("tcp"));
        o.entry("mode").or_insert(json!("ingress"));
        return Ok(vec![Value::Object(o)]);
    }
    let s = text(p);
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (s.clone(), "tcp".to_string()),
    };
    let bad = || format!("invalid port mapping {s:?}");
    // host_ip:published:target, published:target or target; an IPv6 host in brackets.
    let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, r) = r.split_once("]:").ok_or_else(bad)?;
        (Some(ip.to_string()), r.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            1 | 2 => (None, spec.clone()),
            _ => return Err(bad()),
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p.to_string()).filter(|p| !p.is_empty()), t.to_string()),
        None => (None, rest),
    };
    let range = |r: &str| -> Result<(u16, u16), String> {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
    };
    let (t0, t1) = range(&target)?;
    if t1 < t0 {
        return Err(bad());
    }
    let published_range = published.as_deref().map(range).transpose()?;
    let mut out = Vec::new();
    for (i, t) in (t0..=t1).enumerate() {
        let mut o = Map::new();
        o.insert("mode".into(), json!("ingress"));
        if let Some(ip) = &host_ip {
            if !ip.is_empty() {
                o.insert("host_ip".into(), json!(ip));
            }
        }
        o.insert("target".into(), json!(t));
        match published_range {
            Some((p0, p1)) if p1 > p0 && p1 - p0 == t1 - t0 => {
                o.insert("published".into(), json!((usize::from(p0) + i).to_string()));
            }
            Some((p0, p1)) if p1 == p0 => {
                o.insert("published".into(), json!(p0.to_string()));
            }
            // A host range for one container port: the daemon picks one of them.
            Some((p0, p1)) => {
                o.insert("published".into(), json!(format!("{p0}-{p1}")));
            }
            None => {}
        }
        o.insert("protocol".into(), json!(proto));
        out.push(Value::Object(o));
    }
    Ok(out)
}

/// One `volumes` entry as the long syntax.
pub fn volume(v: &Value, base: &Path) -> Result<Value, String> {
    if let Value::Object(o) = v {
        let mut o = o.clone();
        let kind = o.get("type").map(text).unwrap_or_else(|| "volume".into());
        if kind == "bind" {
            if let Some(src) = o.get("source").map(text) {
                o.insert("source".into(), json!(absolute(base, &src)));
            }
        }
        o.insert("type".into(), json!(kind));
        return Ok(Value::Object(o));
    }
    let s = text(v);
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(format!("invalid volume specification: {s:?}")),
    };
    if target.is_empty() || !target.starts_with('/') {
        return Err(format!("invalid volume specification: {s:?}"));
    }
    let mut o = Map::new();
    let modes: Vec<&str> = mode.map(|m| m.split(',').collect()).unwrap_or_default();
    match source {
        None => {
            o.insert("type".into(), json!("volume"));
        }
        Some(src) if src.starts_with(['/', '.', '~']) => {
            o.insert("type".into(), json!("bind"));
            o.insert("source".into(), json!(absolute(base, src)));
            o.insert("bind".into(), json!({"create_host_path": true}));
        }
        Some(src) => {
            o.insert("type".into(), json!("volume"));
            o.insert("source".into(), json!(src));
            if modes.contains(&"nocopy") {
                o.insert("volume".into(), json!({"nocopy": true}));
            }
        }
    }
    o.insert("target".into(), json!(target));
    if modes.contains(&"ro") {
        o.insert("read_only".into(), json!(true));
    }
    Ok(Value::Object(o))
}

/// Words of a command string as a POSIX shell splits them (quotes, backslashes); no
/// expansion.
pub fn split_shell(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(
            split_shell(r#"sh -c 'echo "a b"' x\ y "q\"z""#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x y", "q\"z"]
        );
        assert!(split_shell("'open").is_err());
    }

    #[test]
    fn short_forms_become_long() {
        let env: Environment = [("FROM_ENV".to_string(), "e".to_string())].into();
        let mut s = json!({
            "build": "./app",
            "command": "sh -c 'sleep 1'",
            "environment": ["A=1", "FROM_ENV", "GONE"],
            "ports": ["127.0.0.1:8080:80", "9000-9001:90-91/udp", 53],
            "volumes": ["data:/data:ro", "./conf:/etc/conf", "/anon"],
            "networks": ["front"],
            "depends_on": ["db"],
            "healthcheck": {"test": "true"},
            "secrets": ["token"],
        });
        service(&mut s, Path::new("/p"), &env).unwrap();
        assert_eq!(
            s["build"],
            json!({"context": "/p/app", "dockerfile": "Dockerfile"})
        );
        assert_eq!(s["command"], json!(["sh", "-c", "sleep 1"]));
        assert_eq!(
            s["environment"],
            json!({"A": "1", "FROM_ENV": "e", "GONE": null})
        );
        assert_eq!(
            s["ports"],
            json!([
                {"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8080","protocol":"tcp"},
                {"mode":"ingress","target":90,"published":"9000","protocol":"udp"},
                {"mode":"ingress","target":91,"published":"9001","protocol":"udp"},
                {"mode":"ingress","target":53,"protocol":"tcp"}
            ])
        );
        assert_eq!(
            s["volumes"],
            json!([
                {"type":"volume","source":"data","target":"/data","read_only":true},
                {"type":"bind","source":"/p/conf","target":"/etc/conf","bind":{"create_host_path":true}},
                {"type":"volume","target":"/anon"}
            ])
        );
        assert_eq!(s["networks"], json!({"front": null}));
        assert_eq!(
            s["depends_on"],
            json!({"db": {"condition": "service_started", "required": true}})
        );
        assert_eq!(s["healthcheck"]["test"], json!(["CMD-SHELL", "true"]));
        assert_eq!(s["secrets"], json!([{"source": "token"}]));
    }
}
