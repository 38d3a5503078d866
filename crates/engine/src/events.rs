//! The daemon's event stream (`/events`): a broadcast to live subscribers plus a bounded
//! history so that `--since` can replay what happened before the client connected.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

const HISTORY: usize = 1024;

/// One event in the shape of the Engine API's EventMessage (plus the legacy top-level fields
/// that older clients still read).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub typ: &'static str,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    // Legacy fields (API < 1.22) that docker CLI's formatter and docker-py still use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct Events {
    live: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Events {
    pub fn new() -> Events {
        Events {
            live: broadcast::channel(256).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    pub fn emit(
        &self,
        typ: &'static str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let legacy = typ == "container" || typ == "image";
        let event = Event {
            typ,
            action: action.to_owned(),
            from: if typ == "container" {
                attributes.get("image").cloned()
            } else {
                None
            },
            actor: Actor {
                id: id.to_owned(),
                attributes,
            },
            scope: "local",
            time: now.as_secs() as i64,
            time_nano: now.as_nanos() as i64,
            status: legacy.then(|| action.to_owned()),
            id: legacy.then(|| id.to_owned()),
        };
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        let _ = self.live.send(event);
    }

    /// Past events from `since` (unix seconds) on, and a receiver for what comes next.
    pub fn subscribe(&self, since: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let rx = self.live.subscribe();
        let past = match (since, self.history.lock()) {
            (Some(since), Ok(h)) => h.iter().filter(|e| e.time >= since).cloned().collect(),
            _ => Vec::new(),
        };
        (past, rx)
    }
}
