//! `/volumes`: the local driver's named volumes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{filters, flag, json, label_matches, parse_body, passes, Query, Shared};
use crate::error::{ApiError, Result};

fn users(d: &Shared, name: &str) -> Vec<String> {
    d.containers
        .list()
        .into_iter()
        .filter(|c| {
            c.mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name == name)
        })
        .map(|c| c.id)
        .collect()
}

pub async fn create(State(d): State<Shared>, body: Bytes) -> Result<Response> {
    let v: Value = parse_body(&body)?;
    let map = |k: &str| -> HashMap<String, String> {
        v[k].as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let vol = d.volumes.create(
        v["Name"].as_str(),
        v["Driver"].as_str(),
        map("Labels"),
        map("DriverOpts"),
    )?;
    let name = vol["Name"].as_str().unwrap_or_default().to_owned();
    d.events.emit(
        "volume",
        "create",
        &name,
        [("driver".to_owned(), "local".to_owned())].into(),
    );
    Ok(json(StatusCode::CREATED, &vol))
}

pub async fn list(State(d): State<Shared>, q: Query) -> Result<Response> {
    let filt = filters(&q)?;
    let vols: Vec<Value> = d
        .volumes
        .list()
        .into_iter()
        .filter(|v| {
            let name = v["Name"].as_str().unwrap_or_default();
            passes(&filt, |k, val| match k {
                "name" => name.contains(val),
                "dangling" => (val == "true" || val == "1") == users(&d, name).is_empty(),
                "driver" => val == "local",
                "label" => label_matches(val, |k| v["Labels"][k].as_str()),
                _ => true,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"Volumes": vols, "Warnings": []}),
    ))
}

pub async fn inspect(State(d): State<Shared>, Path(name): Path<String>) -> Result<Response> {
    Ok(json(StatusCode::OK, &d.volumes.inspect(&name)?))
}

pub async fn remove(
    State(d): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response> {
    let dd = d.clone();
    let force = flag(&q, "force");
    let name2 = name.clone();
    tokio::task::spawn_blocking(move || {
        // In-use check and removal as one, and no container created on it meanwhile.
        let _one = dd.changing_references();
        dd.volumes.remove(&name2, &users(&dd, &name2), force)
    })
    .await
    .map_err(|e| ApiError::internal("remove volume", e))??;
    d.events.emit(
        "volume",
        "destroy",
        &name,
        [("driver".to_owned(), "local".to_owned())].into(),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune`: unused volumes; since API 1.42 only anonymous ones unless `all=true`.
pub async fn prune(State(d): State<Shared>, q: Query) -> Result<Response> {
    let filt = filters(&q)?;
    let all = filt
        .get("all")
        .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
    let dd = d.clone();
    let (deleted, reclaimed) = tokio::task::spawn_blocking(move || {
        let _one = dd.changing_references();
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for v in dd.volumes.list() {
            let name = v["Name"].as_str().unwrap_or_default().to_owned();
            let anonymous = name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit());
            if !users(&dd, &name).is_empty() || (!all && !anonymous) {
                continue;
            }
            let size = dd.volumes.size(&name);
            if dd.volumes.remove(&name, &[], false).is_ok() {
                reclaimed += size;
                deleted.push(name);
            }
        }
        (deleted, reclaimed)
    })
    .await
    .map_err(|e| ApiError::internal("prune volumes", e))?;
    Ok(json(
        StatusCode::OK,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}
