//! `docker exec` instances: created by one request, started (and streamed) by another,
//! inspected for their exit code by a third.

use std::collections::HashMap;
use std::sync::Mutex;

use bollard_stubs::models::ExecConfig;

#[derive(Debug, Clone)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
}

#[derive(Debug, Default)]
pub struct Execs {
    all: Mutex<HashMap<String, Exec>>,
}

impl Execs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Exec>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, e: Exec) {
        self.lock().insert(e.id.clone(), e);
    }

    pub fn get(&self, id: &str) -> Option<Exec> {
        self.lock().get(id).cloned()
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut Exec)) {
        if let Some(e) = self.lock().get_mut(id) {
            f(e);
        }
    }

    pub fn ids_of(&self, container: &str) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| e.container_id == container)
            .map(|e| e.id.clone())
            .collect()
    }
}
