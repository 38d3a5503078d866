//! `${VAR}` substitution as the compose specification defines it: `$VAR`, `${VAR}`,
//! `${VAR:-default}` / `${VAR-default}` (unset-or-empty / unset), `${VAR:?error}` /
//! `${VAR?error}` (a required variable), `${VAR:+other}` / `${VAR+other}`, `$$` for a literal
//! dollar; defaults may nest further expressions.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

/// Variables to substitute from: the process's environment over the `.env` file's.
pub type Environment = BTreeMap<String, String>;

/// Substitutes every string value of `tree` (keys stay as written); `warnings` collects the
/// unset variables that became empty strings.
pub fn tree(tree: &mut Value, env: &Environment, warnings: &mut Vec<String>) -> Result<()> {
    walk(tree, env, warnings, &mut Vec::new())
}

fn walk(
    v: &mut Value,
    env: &Environment,
    warnings: &mut Vec<String>,
    path: &mut Vec<String>,
) -> Result<()> {
    match v {
        Value::String(s) if s.contains('$') => {
            *s = string(s, env, warnings).map_err(|message| Error::Interpolation {
                path: path.join("."),
                message,
            })?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, env, warnings, path)?;
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                path.push(k.clone());
                walk(item, env, warnings, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Substitutes one string; the error is docker compose's message.
pub fn string(s: &str, env: &Environment, warnings: &mut Vec<String>) -> Result<String, String> {
    let invalid = || {
        format!(
            "invalid interpolation format for {s:?}. You may need to escape any $ with another $."
        )
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(invalid)?;
            out.push_str(&braced(&r[..end], env, warnings).map_err(|m| m.unwrap_or_else(invalid))?);
            rest = &r[end + 1..];
        } else {
            let n = name_len(rest);
            if n == 0 {
                return Err(invalid());
            }
            out.push_str(&lookup(&rest[..n], env, warnings));
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes an expression whose `${` was just consumed.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn name_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

fn lookup(name: &str, env: &Environment, warnings: &mut Vec<String>) -> String {
    match env.get(name) {
        Some(v) => v.clone(),
        None => {
            let w = format!("The \"{name}\" variable is not set. Defaulting to a blank string.");
            if !warnings.contains(&w) {
                warnings.push(w);
            }
            String::new()
        }
    }
}

/// `NAME`, `NAME:-x`, `NAME-x`, `NAME:?x`, `NAME?x`, `NAME:+x`, `NAME+x`. `Err(None)` means
/// a malformed expression.
fn braced(
    expr: &str,
    env: &Environment,
    warnings: &mut Vec<String>,
) -> Result<String, Option<String>> {
    let n = name_len(expr);
    if n == 0 {
        return Err(None);
    }
    let name = &expr[..n];
    let op = &expr[n..];
    if op.is_empty() {
        return Ok(lookup(name, env, warnings));
    }
    let value = env.get(name);
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    let set = match value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    let mut arg = || string(&op[1..], env, warnings).map_err(Some);
    match op.chars().next() {
        Some('-') => {
            if set {
                Ok(value.cloned().unwrap_or_default())
            } else {
                arg()
            }
        }
        Some('?') => {
            if set {
                Ok(value.cloned().unwrap_or_default())
            } else {
                let message = arg()?;
                Err(Some(if message.is_empty() {
                    format!("required variable {name} is missing a value")
                } else {
                    format!("required variable {name} is missing a value: {message}")
                }))
            }
        }
        Some('+') => {
            if set {
                arg()
            } else {
                Ok(String::new())
            }
        }
        _ => Err(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env() -> Environment {
        [("A", "a"), ("EMPTY", ""), ("N", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn s(x: &str) -> Result<String, String> {
        string(x, &env(), &mut Vec::new())
    }

    #[test]
    fn forms() {
        assert_eq!(s("$A-${A}-$$A").unwrap(), "a-a-$A");
        assert_eq!(s("${EMPTY:-d}|${EMPTY-d}|${UNSET-d}").unwrap(), "d||d");
        assert_eq!(s("${UNSET:-${A}x}").unwrap(), "ax");
        assert_eq!(s("${A:+y}${UNSET:+y}${EMPTY+z}").unwrap(), "yz");
        assert_eq!(s("${A:?boom}").unwrap(), "a");
        assert_eq!(
            s("${UNSET:?set it}").unwrap_err(),
            "required variable UNSET is missing a value: set it"
        );
        assert_eq!(
            s("${EMPTY:?}").unwrap_err(),
            "required variable EMPTY is missing a value"
        );
        assert_eq!(s("${EMPTY?x}").unwrap(), "");
        assert!(s("${")
            .unwrap_err()
            .starts_with("invalid interpolation format"));
        assert!(s("a $ b").is_err());
    }

    #[test]
    fn unset_warns_once() {
        let mut w = Vec::new();
        assert_eq!(string("$X$X", &env(), &mut w).unwrap(), "");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn tree_names_the_path() {
        let mut v = serde_json::json!({"services": {"web": {"image": "${TAG:?tag please}"}}});
        let e = tree(&mut v, &env(), &mut Vec::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error while interpolating services.web.image: required variable TAG is missing a value: tag please"
        );
    }
}
