//! A daemon for the planner's unit tests: it records each request and answers from a script.

use std::cell::RefCell;

use serde_json::{json, Value};

use crate::api::{ByteStream, Engine, Method, Payload};
use crate::error::{Error, Result};
use crate::project::Project;

/// A request as the recorder saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Payload,
}

/// Records the requests; a call answers `{"Id": "sha256:feed"}` (a GET, when `empty`: 404,
/// as a daemon that has nothing), and each stream answers `answer`.
#[derive(Debug, Default)]
pub struct Recorder {
    pub seen: RefCell<Vec<Seen>>,
    pub answer: &'static str,
    pub empty: bool,
}

impl Recorder {
    fn record(&self, method: Method, path: &str, headers: &[(&str, String)], body: Payload) {
        self.seen.borrow_mut().push(Seen {
            method,
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            body,
        });
    }
}

impl Engine for Recorder {
    async fn call(&self, m: Method, path: &str, body: Payload) -> Result<Value> {
        self.record(m, path, &[], body);
        match m {
            Method::Get if self.empty => Err(Error::Daemon {
                status: 404,
                message: "not found".into(),
            }),
            _ => Ok(json!({"Id": "sha256:feed"})),
        }
    }

    async fn stream(
        &self,
        m: Method,
        path: &str,
        body: Payload,
        headers: &[(&str, String)],
    ) -> Result<ByteStream> {
        self.record(m, path, headers, body);
        let chunk = Ok(bytes::Bytes::from_static(self.answer.as_bytes()));
        Ok(Box::pin(futures_util::stream::iter(vec![chunk])))
    }
}

/// The project `t` of one compose file with `yaml` in it, loaded as `up` would load it.
pub fn project(yaml: &str) -> Project {
    let run = || -> std::result::Result<Project, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, yaml)?;
        Ok(crate::load(&crate::Options {
            files: vec![file],
            project_name: Some("t".into()),
            ..Default::default()
        })?)
    };
    run().unwrap_or_else(|e| panic!("loading {yaml}: {e}"))
}

/// Runs a future to its end on a runtime of its own.
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("a runtime for the test: {e}"),
    }
}
