//! `/networks`: list, inspect, create, remove, prune, connect, disconnect, in dockerd's shapes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_network::Network;
use bollard_stubs::models::{EndpointSettings, NetworkConnectRequest, NetworkCreateRequest};
use serde_json::{json, Value};

use super::{filters, json, label_matches, parse_body, passes, ApiVersion, Query, Shared};
use crate::error::{ApiError, Result};
use crate::network::net_error;

/// A network as `GET /networks/{id}` shows it (with its containers).
pub fn network_json(d: &Shared, n: &Network) -> Value {
    let mut containers = serde_json::Map::new();
    for c in d.containers.list() {
        if let Some(ep) = c.networks.get(&n.name) {
            if let Some(ip) = ep.ip {
                containers.insert(
                    c.id.clone(),
                    json!({
                        "Name": c.name, "EndpointID": ep.endpoint_id,
                        "MacAddress": ep.mac.clone().unwrap_or_default(),
                        "IPv4Address": format!("{ip}/{}", ep.prefix),
                        "IPv6Address": ep.ip6.map(|a| format!("{a}/{}", ep.prefix6)).unwrap_or_default(),
                    }),
                );
            }
        }
    }
    let mut ipam_config: Vec<Value> = Vec::new();
    if let Some(s) = n.subnet {
        // A gateway the daemon chose shows only with a subnet it chose (dockerd's).
        let gateway = n.gateway.filter(|_| !n.user_ipam || n.gateway_given);
        ipam_config.push(ipam_entry(s, n.ip_range, gateway, &n.aux_addresses));
    }
    if let Some(p) = &n.v6 {
        let gateway = Some(p.gateway).filter(|_| !p.user_subnet || p.gateway_given);
        ipam_config.push(ipam_entry(p.subnet, p.ip_range, gateway, &p.aux_addresses));
    }
    let ipam_options = (!n.ipam_options.is_empty()).then_some(&n.ipam_options);
    // Only the options the network was created with, as dockerd shows them: docker-compose
    // compares them with the file's `driver_opts` to decide whether to recreate the network.
    let options = &n.options;
    json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
        "EnableIPv4": true, "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": ipam_options, "Config": ipam_config},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": options, "Labels": n.labels,
    })
}

/// One IPAM.Config entry: only the fields that have a value, as dockerd shows them.
fn ipam_entry<N: std::fmt::Display, A: std::fmt::Display>(
    subnet: N,
    range: Option<N>,
    gateway: Option<A>,
    aux: &std::collections::BTreeMap<String, A>,
) -> Value {
    let mut m = json!({"Subnet": subnet.to_string()});
    if let Some(r) = range {
        m["IPRange"] = json!(r.to_string());
    }
    if let Some(g) = gateway {
        m["Gateway"] = json!(g.to_string());
    }
    if !aux.is_empty() {
        let a: serde_json::Map<String, Value> = aux
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.to_string())))
            .collect();
        m["AuxiliaryAddresses"] = Value::Object(a);
    }
    m
}

fn matches(d: &Shared, n: &Network, filt: &HashMap<String, Vec<String>>) -> bool {
    passes(filt, |k, v| match k {
        "name" => n.name.contains(v),
        "id" => n.id.starts_with(v),
        "driver" => n.driver == v,
        "scope" => v == "local",
        "type" => (v == "custom") == n.is_user_defined(),
        "label" => label_matches(v, |k| n.labels.get(k).map(String::as_str)),
        "dangling" => {
            let used = in_use(d, n);
            (v == "true" || v == "1") == (!used && n.is_user_defined())
        }
        _ => true,
    })
}

fn in_use(d: &Shared, n: &Network) -> bool {
    d.containers
        .list()
        .iter()
        .any(|c| c.networks.contains_key(&n.name))
}

pub async fn list(State(d): State<Shared>, q: Query, v: ApiVersion) -> Result<Response> {
    let filt = filters(&q)?;
    let out: Vec<Value> = d
        .net
        .store
        .list()
        .iter()
        .filter(|n| matches(&d, n, &filt))
        .map(|n| super::shape::network(network_json(&d, n), v))
        .collect();
    Ok(json(StatusCode::OK, &out))
}

pub async fn inspect(
    State(d): State<Shared>,
    Path(id): Path<String>,
    v: ApiVersion,
) -> Result<Response> {
    let n = d.net.find(&id)?;
    Ok(json(
        StatusCode::OK,
        &super::shape::network(network_json(&d, &n), v),
    ))
}

pub async fn create(State(d): State<Shared>, body: Bytes) -> Result<Response> {
    let req: NetworkCreateRequest = parse_body(&body)?;
    if req.name.trim().is_empty() {
        return Err(ApiError::BadRequest("network name cannot be empty".into()));
    }
    super::swarm::check_network_scope(&req)?;
    let ipam = req.ipam.clone().unwrap_or_default();
    // One subnet of each family: the entry's family is its subnet's (or its gateway's).
    let (mut v4, mut v6) = (None, None);
    for cfg in ipam.config.clone().unwrap_or_default() {
        let family_of = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| s.contains(':'))
        };
        let Some(is_v6) = family_of(&cfg.subnet)
            .or(family_of(&cfg.gateway))
            .or(family_of(&cfg.ip_range))
        else {
            continue;
        };
        let slot = if is_v6 { &mut v6 } else { &mut v4 };
        if slot.replace(cfg).is_some() {
            return Err(ApiError::BadRequest(
                "bridge driver doesn't support multiple subnets".into(),
            ));
        }
    }
    let (subnet, gateway, ip_range) =
        ipam_of::<berth_network::Ipv4Net>(v4.as_ref(), berth_network::parse_ipv4)?;
    let (subnet6, gateway6, ip_range6) =
        ipam_of::<berth_network::Ipv6Net>(v6.as_ref(), berth_network::parse_ipv6)?;
    let mut aux_addresses = Vec::new();
    for c in v4.iter().chain(v6.iter()) {
        let mut aux: Vec<(String, String)> = c
            .auxiliary_addresses
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        aux.sort();
        for (name, ip) in aux {
            let parsed = ip.parse::<std::net::IpAddr>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "invalid network config:\ninvalid auxiliary address {name}: {ip}"
                ))
            })?;
            aux_addresses.push((name, parsed));
        }
    }
    let request = berth_network::CreateRequest {
        name: req.name.clone(),
        driver: req.driver.clone().unwrap_or_default(),
        subnet,
        gateway,
        ip_range,
        enable_ipv6: req.enable_ipv6.unwrap_or(false),
        subnet6,
        gateway6,
        ip_range6,
        aux_addresses,
        ipam_options: ipam
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        internal: req.internal.unwrap_or(false),
        attachable: req.attachable.unwrap_or(false),
        options: req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
        created: crate::files::now_rfc3339(),
    };
    let dd = d.clone();
    let n = tokio::task::spawn_blocking(move || -> Result<Network> {
        // The record, the bridge and the rules are made as one: a concurrent create of the
        // name gets 409, a concurrent remove finds it whole or not at all.
        let _one = dd.changing_references();
        let routes = berth_network::link::host_routes().map_err(net_error)?;
        let routes6 = if request.enable_ipv6 && request.subnet6.is_none() {
            berth_network::link::host_routes6().map_err(net_error)?
        } else {
            Vec::new()
        };
        let n = dd
            .net
            .store
            .create(request, &routes, &routes6)
            .map_err(net_error)?;
        let made = crate::network::ensure_bridge(&n)
            .map_err(net_error)
            .and_then(|_| dd.net.apply_firewall());
        if let Err(e) = made {
            // Nothing half-made: no record, no bridge.
            let _ = berth_network::link::delete(&n.bridge);
            let _ = dd.net.store.remove(&n.id);
            let _ = dd.net.apply_firewall();
            return Err(e);
        }
        Ok(n)
    })
    .await
    .map_err(|e| ApiError::internal("create network", e))??;
    d.emit_network("create", &n, "");
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": n.id, "Warning": ""}),
    ))
}

/// One IPAM config's subnet, gateway and range, parsed as the family `N`, with dockerd's words
/// for what does not parse.
type Ipam<N> = (
    Option<N>,
    Option<<N as berth_network::Subnet>::Addr>,
    Option<N>,
);

fn ipam_of<N>(
    c: Option<&bollard_stubs::models::IpamConfig>,
    address: fn(&str) -> berth_network::Result<N::Addr>,
) -> Result<Ipam<N>>
where
    N: berth_network::Subnet + std::str::FromStr<Err = berth_network::Error>,
{
    let bad = |what: &str, v: &str, e: berth_network::Error| {
        ApiError::BadRequest(format!("invalid network config:\ninvalid {what} {v}: {e}"))
    };
    let field = |f: fn(&bollard_stubs::models::IpamConfig) -> &Option<String>| {
        c.and_then(|c| f(c).clone()).filter(|s| !s.is_empty())
    };
    let net = |what: &str, v: Option<String>| -> Result<Option<N>> {
        v.map(|s| s.parse().map_err(|e| bad(what, &s, e)))
            .transpose()
    };
    let subnet = net("subnet", field(|c| &c.subnet))?;
    let range = net("ip-range", field(|c| &c.ip_range))?;
    let gateway = field(|c| &c.gateway)
        .map(|s| address(&s).map_err(|e| bad("gateway", &s, e)))
        .transpose()?;
    Ok((subnet, gateway, range))
}

/// Removes a user-defined network with no containers: its bridge, its rules, its record.
async fn remove_network(d: &Shared, n: Network) -> Result<()> {
    if n.is_predefined() {
        return Err(ApiError::Forbidden(format!(
            "{} is a pre-defined network and cannot be removed",
            n.name
        )));
    }
    let dd = d.clone();
    let n2 = n.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        // Checked and removed as one: of concurrent removes one wins (the others find no
        // network), and no container is created on it meanwhile.
        let _one = dd.changing_references();
        if dd.net.store.find(&n2.id).is_none() {
            return Err(ApiError::NotFound(format!("network {} not found", n2.name)));
        }
        if in_use(&dd, &n2) {
            return Err(ApiError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n2.name, n2.id
            )));
        }
        dd.net.store.remove(&n2.id).map_err(net_error)?;
        berth_network::link::delete(&n2.bridge).map_err(net_error)?;
        dd.net.apply_firewall()
    })
    .await
    .map_err(|e| ApiError::internal("remove network", e))??;
    d.emit_network("destroy", &n, "");
    Ok(())
}

pub async fn remove(State(d): State<Shared>, Path(id): Path<String>) -> Result<Response> {
    let n = d.net.find(&id)?;
    remove_network(&d, n).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune(State(d): State<Shared>, q: Query) -> Result<Response> {
    let filt = filters(&q)?;
    let mut deleted = Vec::new();
    for n in d.net.store.list() {
        if n.is_predefined() || in_use(&d, &n) || !matches(&d, &n, &filt) {
            continue;
        }
        let name = n.name.clone();
        if remove_network(&d, n).await.is_ok() {
            deleted.push(name);
        }
    }
    Ok(json(StatusCode::OK, &json!({"NetworksDeleted": deleted})))
}

pub async fn connect(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let req: NetworkConnectRequest = parse_body(&body)?;
    let n = d.net.find(&id)?;
    let container = req.container.clone();
    let cfg: Option<EndpointSettings> = req.endpoint_config.clone();
    let dd = d.clone();
    tokio::task::spawn_blocking(move || {
        let _refs = dd.referencing();
        dd.connect_container(&n, &container, cfg.as_ref())
    })
    .await
    .map_err(|e| ApiError::internal("connect", e))??;
    Ok(StatusCode::OK.into_response())
}

pub async fn disconnect(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let req: Value = parse_body(&body)?;
    let n = d.net.find(&id)?;
    let container = req["Container"].as_str().unwrap_or_default().to_owned();
    let dd = d.clone();
    tokio::task::spawn_blocking(move || dd.disconnect_container(&n, &container))
        .await
        .map_err(|e| ApiError::internal("disconnect", e))??;
    Ok(StatusCode::OK.into_response())
}
