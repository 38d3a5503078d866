//! How a pod's sandbox and containers are told apart among the engine's containers, and how
//! what the CRI must give back (metadata, labels, annotations) is kept on them: as labels, so
//! `berth ps` and `docker ps` show them, in dockershim's words where it had some.

use std::collections::HashMap;

/// `podsandbox` or `container` (dockershim's).
pub const TYPE: &str = "io.kubernetes.docker.type";
pub const TYPE_SANDBOX: &str = "podsandbox";
pub const TYPE_CONTAINER: &str = "container";
/// A container's pod sandbox (dockershim's).
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
/// A container's CRI log file (dockershim's).
pub const LOG_PATH: &str = "io.kubernetes.container.logpath";
/// berth's own keys: the CRI metadata, creation time, image as asked, runtime handler,
/// namespace options.
const PREFIX: &str = "io.berth.cri.";
pub const NAME: &str = "io.berth.cri.name";
pub const NAMESPACE: &str = "io.berth.cri.namespace";
pub const UID: &str = "io.berth.cri.uid";
pub const ATTEMPT: &str = "io.berth.cri.attempt";
pub const CREATED: &str = "io.berth.cri.created";
pub const IMAGE: &str = "io.berth.cri.image";
pub const HANDLER: &str = "io.berth.cri.runtime-handler";
/// `network,pid,ipc` modes of the sandbox (NamespaceMode numbers).
pub const NAMESPACES: &str = "io.berth.cri.namespaces";
/// CRI annotations are kept as labels under this prefix (dockershim's).
const ANNOTATION: &str = "annotation.";

/// The labels to put on an engine container for the CRI's labels and annotations plus
/// berth's own.
pub fn encode(
    cri_labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
    own: &[(&str, String)],
) -> HashMap<String, String> {
    let mut out = cri_labels.clone();
    for (k, v) in annotations {
        out.insert(format!("{ANNOTATION}{k}"), v.clone());
    }
    for (k, v) in own {
        out.insert((*k).to_owned(), v.clone());
    }
    out
}

/// The CRI's labels back from an engine container's.
pub fn cri_labels(labels: &HashMap<String, String>) -> HashMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| {
            !k.starts_with(PREFIX)
                && !k.starts_with(ANNOTATION)
                && ![TYPE, SANDBOX_ID, LOG_PATH].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The CRI's annotations back from an engine container's labels.
pub fn annotations(labels: &HashMap<String, String>) -> HashMap<String, String> {
    labels
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(ANNOTATION)?.to_owned(), v.clone())))
        .collect()
}

/// Whether every `selector` pair is among the CRI labels.
pub fn matches(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(k, v)| !k.starts_with(PREFIX) && labels.get(k) == Some(v))
}

pub fn get<'a>(labels: &'a HashMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map(String::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_annotations_come_back_as_given() {
        let l = HashMap::from([("app".to_owned(), "web".to_owned())]);
        let a = HashMap::from([("note".to_owned(), "x".to_owned())]);
        let all = encode(&l, &a, &[(TYPE, TYPE_SANDBOX.into()), (NAME, "p".into())]);
        assert_eq!(cri_labels(&all), l);
        assert_eq!(annotations(&all), a);
        assert!(matches(&all, &l));
        assert!(!matches(
            &all,
            &HashMap::from([(NAME.to_owned(), "p".to_owned())])
        ));
    }
}
