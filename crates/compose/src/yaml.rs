//! YAML text ↔ the generic tree (`serde_json::Value`) that the loader interpolates, merges and
//! validates, as docker compose does before it types anything.
//!
//! Built on saphyr-parser's events rather than a ready-made tree so that: a duplicate key is an
//! error with both lines (go-yaml refuses them too), merge keys (`<<: *base`) apply as YAML 1.1
//! defines them (compose files use them with `x-` anchors), the compose-spec tags `!reset` and
//! `!override` survive until the merge, and plain scalars resolve by YAML 1.2's core schema
//! (`yes`/`on` stay strings, as in compose-go).

use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// The key a `!reset` node becomes until the merge drops it.
pub(crate) const RESET: &str = "!reset";
/// The key an `!override` node becomes until the merge takes it whole.
pub(crate) const OVERRIDE: &str = "!override";

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        tag: Option<String>,
    },
    Map {
        map: Map<String, Value>,
        anchor: usize,
        tag: Option<String>,
        key: Option<(String, bool)>,
        lines: HashMap<String, usize>,
        merges: Vec<Value>,
    },
}

/// Parses every document of `text` (from `file`, for messages) into trees.
pub fn parse(text: &str, file: &Path) -> Result<Vec<Value>> {
    let err = |line: usize, col: usize, message: String| Error::Yaml {
        file: file.to_path_buf(),
        line,
        column: col + 1,
        message,
    };
    let mut anchors: HashMap<usize, Value> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut docs = Vec::new();
    for ev in Parser::new_from_str(text) {
        let (ev, span): (Event<'_>, Span) =
            ev.map_err(|e| err(e.marker().line(), e.marker().col(), e.info().to_string()))?;
        let line = span.start.line();
        let col = span.start.col();
        let done = match ev {
            Event::Scalar(s, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let plain_merge = style == ScalarStyle::Plain && s == "<<";
                let v = if tag.as_deref() == Some("tag:yaml.org,2002:str")
                    || tag.as_deref() == Some("!!str")
                    || style != ScalarStyle::Plain
                {
                    Value::String(s.into_owned())
                } else {
                    resolve_plain(&s)
                };
                let v = tagged(v, tag.as_deref());
                if anchor > 0 {
                    anchors.insert(anchor, v.clone());
                }
                Some((v, plain_merge))
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(v) => Some((v.clone(), false)),
                None => return Err(err(line, col, "unknown anchor".into())),
            },
            Event::SequenceStart(anchor, tag) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                });
                None
            }
            Event::MappingStart(anchor, tag) => {
                stack.push(Frame::Map {
                    map: Map::new(),
                    anchor,
                    tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    key: None,
                    lines: HashMap::new(),
                    merges: Vec::new(),
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { items, anchor, tag }) => {
                    let v = tagged(Value::Array(items), tag.as_deref());
                    if anchor > 0 {
                        anchors.insert(anchor, v.clone());
                    }
                    Some((v, false))
                }
                _ => return Err(err(line, col, "unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    mut map,
                    anchor,
                    tag,
                    merges,
                    ..
                }) => {
                    // Keys written in the mapping win over merged ones, whatever their order.
                    for m in merges {
                        for (k, v) in m.as_object().into_iter().flatten() {
                            if !map.contains_key(k) {
                                map.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    let v = tagged(Value::Object(map), tag.as_deref());
                    if anchor > 0 {
                        anchors.insert(anchor, v.clone());
                    }
                    Some((v, false))
                }
                _ => return Err(err(line, col, "unbalanced mapping".into())),
            },
            _ => None,
        };
        let Some((value, plain_merge)) = done else {
            continue;
        };
        match stack.last_mut() {
            None => docs.push(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                map,
                key,
                lines,
                merges,
                ..
            }) => match key.take() {
                None => {
                    let k = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".into(),
                        _ => return Err(err(line, col, "a mapping key must be a scalar".into())),
                    };
                    if !(plain_merge) {
                        if let Some(first) = lines.get(&k) {
                            return Err(err(
                                line,
                                col,
                                format!("mapping key {k:?} already defined at line {first}"),
                            ));
                        }
                        lines.insert(k.clone(), line);
                    }
                    *key = Some((k, plain_merge));
                }
                Some((_, true)) => match value {
                    Value::Array(list) => merges.extend(list),
                    Value::Object(_) => merges.push(value),
                    _ => {
                        return Err(err(
                            line,
                            col,
                            "map merge requires map or sequence of maps as the value".into(),
                        ))
                    }
                },
                Some((k, false)) => {
                    map.insert(k, value);
                }
            },
        }
    }
    Ok(docs)
}

fn tagged(v: Value, tag: Option<&str>) -> Value {
    let key = match tag {
        Some("!reset") => RESET,
        Some("!override") => OVERRIDE,
        _ => return v,
    };
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Value::Object(m)
}

/// A plain scalar by YAML 1.2's core schema.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Value::String(s.to_string()),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Number(i.into());
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Number(i.into());
        }
    }
    if looks_float(digits) {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

fn looks_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let int_ok = int.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()));
    let has_digits = !int.is_empty() || frac.is_some_and(|f| !f.is_empty());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    int_ok && frac_ok && has_digits && exp_ok && (frac.is_some() || exp.is_some())
}

/// The tree as block-style YAML, the way `docker compose config` prints a model.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, m: &Map<String, Value>, indent: usize) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&quote(k));
        out.push(':');
        write_child(out, v, indent);
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                // The first key shares the dash's line.
                let mut first = String::new();
                write_map(&mut first, m, indent + 2);
                out.push(' ');
                out.push_str(first.trim_start());
            }
            other => write_child(out, other, indent),
        }
    }
}

fn write_child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// A string as a plain scalar when it reads back as the same string, else double-quoted.
fn quote(s: &str) -> String {
    let special_start = s.starts_with([
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`', ' ',
    ]);
    let needs = s.is_empty()
        || special_start
        || s.ends_with(' ')
        || s.contains(": ")
        || s.ends_with(':')
        || s.contains(" #")
        || s.chars().any(|c| c.is_control())
        || resolve_plain(s) != Value::String(s.to_string());
    if needs {
        Value::String(s.to_string()).to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        parse(text, Path::new("c.yaml")).unwrap().remove(0)
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let v =
            one("a: yes\nb: 3\nc: 3.5\nd: '3'\ne: ~\nf: true\ng: 0x10\nh: 1.10\ni: python:3.10\n");
        assert_eq!(
            v,
            json!({"a":"yes","b":3,"c":3.5,"d":"3","e":null,"f":true,"g":16,"h":1.1,"i":"python:3.10"})
        );
    }

    #[test]
    fn merge_keys_and_anchors() {
        let v = one("x-base: &b\n  image: busybox\n  user: '1'\ns:\n  <<: *b\n  user: '2'\n");
        assert_eq!(v["s"], json!({"image":"busybox","user":"2"}));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse(
            "services:\n  web:\n    image: a\n   bad\n",
            Path::new("c.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.yaml: yaml: line 4, column"), "{e}");
        let e = parse("a: 1\nb: 2\na: 3\n", Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "c.yaml: yaml: line 3, column 1: mapping key \"a\" already defined at line 1"
        );
    }

    #[test]
    fn tags_are_kept_for_the_merge() {
        let v = one("a: !reset []\nb: !override {x: 1}\n");
        assert_eq!(
            v,
            json!({"a": {"!reset": []}, "b": {"!override": {"x": 1}}})
        );
    }

    #[test]
    fn emits_what_it_parses() {
        let v = json!({"name":"p","services":{"web":{"command":["sh","-c","echo: hi"],
            "ports":[{"published":"8080","target":80}],"environment":{"A":"true","B":null,"C":""}}}});
        let text = to_yaml(&v);
        assert_eq!(one(&text), v, "{text}");
        assert!(text.contains("published: \"8080\""), "{text}");
    }
}
