//! The services' `depends_on` graph: an order to start them in (dependencies first), with a
//! cycle refused by its path before anything is created.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// Service names, each after all it depends on; `deps` maps a service to its dependencies.
pub fn start_order(deps: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>> {
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for name in deps.keys() {
        visit(name, deps, &mut done, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    deps: &BTreeMap<String, Vec<String>>,
    done: &mut BTreeSet<String>,
    path: &mut Vec<String>,
    order: &mut Vec<String>,
) -> Result<()> {
    if done.contains(name) {
        return Ok(());
    }
    if let Some(i) = path.iter().position(|p| p == name) {
        let mut cycle: Vec<&str> = path[i..].iter().map(String::as_str).collect();
        cycle.push(name);
        return Err(Error::Invalid(format!(
            "dependency cycle detected: {}",
            cycle.join(" -> ")
        )));
    }
    path.push(name.to_string());
    for d in deps.get(name).into_iter().flatten() {
        if deps.contains_key(d) {
            visit(d, deps, done, path, order)?;
        }
    }
    path.pop();
    done.insert(name.to_string());
    order.push(name.to_string());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn dependencies_first() {
        let order = start_order(&g(&[
            ("web", &["db", "cache"]),
            ("db", &[]),
            ("cache", &["db"]),
        ]))
        .unwrap();
        assert_eq!(order, ["db", "cache", "web"]);
    }

    #[test]
    fn cycles_are_named() {
        let e = start_order(&g(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])).unwrap_err();
        assert_eq!(e.to_string(), "dependency cycle detected: a -> b -> c -> a");
    }
}
