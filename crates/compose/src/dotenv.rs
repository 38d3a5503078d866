//! `.env`, `--env-file` and a service's `env_file`: `KEY=VALUE` lines as docker compose reads
//! them (`export ` prefixes, `#` comments, single quotes literal, double quotes with escapes
//! and `${…}`, unquoted values trimmed and cut at ` #`). A bare `KEY` takes the variable from
//! the environment the file is read in, if set.

use std::path::Path;

use crate::error::{Error, Result};
use crate::interpolate::{self, Environment};

/// The variables of the file at `path`, in order; `env` resolves `${…}` and bare keys.
pub fn read(path: &Path, env: &Environment) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, env).map_err(|(line, message)| {
        Error::Invalid(format!(
            "failed to read {}: line {line}: {message}",
            path.display()
        ))
    })
}

/// Parses the text of an env file.
pub fn parse(text: &str, env: &Environment) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    // Later lines see earlier ones, as compose's parser does.
    let mut scope = env.clone();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (line.trim(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((
                n + 1,
                format!("unexpected character in variable name {key:?}"),
            ));
        }
        let value = match value {
            None => match env.get(key) {
                Some(v) => v.clone(),
                None => continue,
            },
            Some(v) => value_of(v, &scope).map_err(|m| (n + 1, m))?,
        };
        scope.insert(key.to_string(), value.clone());
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn value_of(v: &str, scope: &Environment) -> Result<String, String> {
    let v = v.trim_start();
    if let Some(body) = v.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated single-quoted value")?;
        return Ok(body[..end].to_string());
    }
    if let Some(body) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.chars();
        loop {
            match chars.next() {
                None => return Err("unterminated double-quoted value".into()),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c) => out.push(c),
                    None => return Err("unterminated double-quoted value".into()),
                },
                Some(c) => out.push(c),
            }
        }
        return interpolate::string(&out, scope, &mut Vec::new());
    }
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    interpolate::string(v.trim_end(), scope, &mut Vec::new())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let env: Environment = [("HOME".to_string(), "/root".to_string())].into();
        let got = parse(
            "# c\nA=1\nexport B = two words # note\nC='${A} lit'\nD=\"x\\ny ${A}\"\nHOME\nE=${B}!\nUNSET_BARE\n",
            &env,
        )
        .unwrap();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "${A} lit"),
            ("D", "x\ny 1"),
            ("HOME", "/root"),
            ("E", "two words!"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(parse("A B=1\n", &env).unwrap_err().0, 1);
    }
}
