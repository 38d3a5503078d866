//! The compose specification's merge rules, for `-f a.yaml -f b.yaml` and for `extends`:
//! mappings merge key by key, the later value winning; sequences append without duplicates,
//! except that commands replace (`command`, `entrypoint`, `healthcheck.test`) and mounts and
//! file references merge by what they identify (`volumes` by target, `secrets`/`configs` by
//! source). `!reset` removes a value, `!override` replaces it whole.

use serde_json::Value;

use crate::yaml::{OVERRIDE, RESET};

/// Merges `over` into `base` (two whole files, or two services when `in_service`).
pub fn merge(base: &mut Value, over: Value, in_service: bool) {
    let mut path = Vec::new();
    if in_service {
        path.extend(["services".to_string(), String::new()]);
    }
    merge_at(base, over, &mut path);
}

fn merge_at(base: &mut Value, over: Value, path: &mut Vec<String>) {
    let over = match unwrap_tag(over) {
        Tagged::Reset => {
            *base = Value::Null;
            return;
        }
        Tagged::Override(v) => {
            *base = strip(v);
            return;
        }
        Tagged::Plain(v) => v,
    };
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if matches!(&v, Value::Object(m) if m.contains_key(RESET) && m.len() == 1) {
                    b.remove(&k);
                    continue;
                }
                path.push(k.clone());
                match b.get_mut(&k) {
                    Some(existing) if !existing.is_null() => merge_at(existing, v, path),
                    _ => {
                        b.insert(k.clone(), strip(v));
                    }
                }
                path.pop();
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            let in_service = path.len() >= 3 && path[0] == "services";
            let key = if in_service {
                path[2..].join(".")
            } else {
                String::new()
            };
            match key.as_str() {
                "command" | "entrypoint" | "healthcheck.test" => {
                    *b = o.into_iter().map(strip).collect();
                }
                "volumes" => by_field(b, o, "target"),
                "secrets" | "configs" => by_field(b, o, "source"),
                _ => {
                    for v in o.into_iter().map(strip) {
                        if !b.contains(&v) {
                            b.push(v);
                        }
                    }
                }
            }
        }
        (b, o) => *b = strip(o),
    }
}

fn by_field(base: &mut Vec<Value>, over: Vec<Value>, field: &str) {
    for v in over.into_iter().map(strip) {
        match base
            .iter_mut()
            .find(|x| x.get(field).is_some() && x.get(field) == v.get(field))
        {
            Some(existing) => *existing = v,
            None => base.push(v),
        }
    }
}

enum Tagged {
    Reset,
    Override(Value),
    Plain(Value),
}

fn unwrap_tag(v: Value) -> Tagged {
    if let Value::Object(m) = &v {
        if m.len() == 1 {
            if m.contains_key(RESET) {
                return Tagged::Reset;
            }
            if let Some(inner) = m.get(OVERRIDE) {
                return Tagged::Override(inner.clone());
            }
        }
    }
    Tagged::Plain(v)
}

/// Drops `!reset` values and unwraps `!override` ones (a file read alone, or what a merge
/// takes as it is).
pub fn strip(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some(inner) = m.get(OVERRIDE) {
                    return strip(inner.clone());
                }
            }
            Value::Object(
                m.into_iter()
                    .filter(|(_, v)| !matches!(v, Value::Object(x) if x.len() == 1 && x.contains_key(RESET)))
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(strip).collect()),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_rules() {
        let mut base = json!({"services": {"web": {
            "image": "a", "command": ["x", "y"], "environment": {"A": "1", "B": "2"},
            "ports": [{"target": 80}], "volumes": [{"target": "/d", "source": "v1"}],
            "dns": ["1.1.1.1"], "healthcheck": {"test": ["CMD", "a"], "retries": 3}}}});
        let over = json!({"services": {"web": {
            "image": "b", "command": ["z"], "environment": {"B": "3"},
            "ports": [{"target": 81}], "volumes": [{"target": "/d", "source": "v2"}],
            "dns": ["1.1.1.1", "8.8.8.8"], "healthcheck": {"test": ["CMD", "b"]}},
            "db": {"image": "d"}}});
        merge(&mut base, over, false);
        let web = &base["services"]["web"];
        assert_eq!(web["image"], "b");
        assert_eq!(web["command"], json!(["z"]));
        assert_eq!(web["environment"], json!({"A": "1", "B": "3"}));
        assert_eq!(web["ports"], json!([{"target": 80}, {"target": 81}]));
        assert_eq!(web["volumes"], json!([{"target": "/d", "source": "v2"}]));
        assert_eq!(web["dns"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(
            web["healthcheck"],
            json!({"test": ["CMD", "b"], "retries": 3})
        );
        assert_eq!(base["services"]["db"]["image"], "d");
    }

    #[test]
    fn reset_and_override() {
        let mut base = json!({"services": {"web": {"ports": [{"target": 80}],
            "environment": {"A": "1"}}}});
        let over = json!({"services": {"web": {"ports": {"!reset": []},
            "environment": {"!override": {"B": "2"}}}}});
        merge(&mut base, over, false);
        assert_eq!(
            base,
            json!({"services": {"web": {"environment": {"B": "2"}}}})
        );
    }
}
