//! Legacy container links (`--link NAME[:ALIAS]`), as dockerd keeps them: on the default bridge
//! the linked container's address goes into /etc/hosts and its address, exposed ports and
//! environment into the linking container's environment (`ALIAS_PORT_80_TCP=…`); the link has
//! a name of its own (`/PARENT/ALIAS`) that `DELETE /containers/PARENT/ALIAS?link=1` removes.
//! On a user-defined network a link is only a name the linking container resolves
//! (`EndpointSettings.Links`, answered by the embedded DNS server).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bollard_stubs::models::HostConfig;
use serde::{Deserialize, Serialize};

use crate::container::Container;
use crate::daemon::Daemon;
use crate::error::{ApiError, Result};
use crate::network::{Endpoint, Mode};

/// One link of a container on the default bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The linked container's id (a rename keeps the link).
    pub child: String,
    pub alias: String,
}

/// `NAME[:ALIAS]` → (name, alias), as dockerd splits a link.
pub fn parse(spec: &str) -> Result<(String, String)> {
    let spec = spec.trim_start_matches('/');
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, alias) = match parts.as_slice() {
        [n] if !n.is_empty() => (*n, *n),
        [n, a] if !n.is_empty() && !a.is_empty() => (*n, a.trim_start_matches('/')),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "bad format for links: {spec}"
            )))
        }
    };
    Ok((name.to_owned(), alias.to_owned()))
}

/// The environment a link gives on the default bridge (dockerd's `links.ToEnv`): the first
/// exposed port (TCP first, then by number), every port's address parts, ranges of
/// consecutive ports, the link's name and the child's own environment (less HOME and PATH).
pub fn env(parent: &str, alias: &str, ip: &str, child: &Container) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut ports: Vec<(String, u16)> = child
        .config
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|p| crate::network::parse_port_key(p).ok())
        .collect();
    ports.sort_by(|a, b| match (a.0 == "tcp", b.0 == "tcp") {
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.0.cmp(&b.0).then(a.1.cmp(&b.1)),
    });
    ports.dedup();
    let mut out = Vec::new();
    if let Some((proto, port)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    let mut start = 0;
    for (i, (proto, port)) in ports.iter().enumerate() {
        let p = format!("{prefix}_PORT_{port}_{}", proto.to_uppercase());
        out.push(format!("{p}={proto}://{ip}:{port}"));
        out.push(format!("{p}_ADDR={ip}"));
        out.push(format!("{p}_PORT={port}"));
        out.push(format!("{p}_PROTO={proto}"));
        let next_continues = ports
            .get(i + 1)
            .is_some_and(|(np, nport)| np == proto && u32::from(*nport) == u32::from(*port) + 1);
        if next_continues {
            continue;
        }
        if i > start {
            let (sp, sport) = &ports[start];
            let r = format!("{prefix}_PORT_{sport}_{}", sp.to_uppercase());
            out.push(format!("{r}_START={sp}://{ip}:{sport}"));
            out.push(format!("{r}_PORT_START={sport}"));
            out.push(format!("{r}_END={proto}://{ip}:{port}"));
            out.push(format!("{r}_PORT_END={port}"));
        }
        start = i + 1;
    }
    out.push(format!("{prefix}_NAME=/{parent}/{alias}"));
    for e in child.config.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            if k != "HOME" && k != "PATH" {
                out.push(format!("{prefix}_ENV_{k}={v}"));
            }
        }
    }
    out
}

impl Daemon {
    /// At create: HostConfig.Links checked and kept as dockerd keeps them: on the default
    /// bridge as the container's links (each linked container must exist), on a user-defined
    /// network as its endpoint's `Links`; refused with host networking.
    pub(crate) fn plan_links(
        &self,
        hc: &mut HostConfig,
        networks: &mut BTreeMap<String, Endpoint>,
    ) -> Result<Vec<Link>> {
        let Some(specs) = hc.links.take().filter(|l| !l.is_empty()) else {
            return Ok(Vec::new());
        };
        let mut parsed = Vec::new();
        for spec in &specs {
            parsed.push((spec, parse(spec)?));
        }
        let mode = hc.network_mode.clone().unwrap_or_default();
        match crate::network::mode_of(hc) {
            Mode::Host => {
                return Err(ApiError::BadRequest(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
                ))
            }
            Mode::None | Mode::Container(_) => return Ok(Vec::new()),
            Mode::Bridge if mode != "bridge" => {
                let n = self.net.find(&mode)?;
                if let Some(ep) = networks.get_mut(&n.name) {
                    // docker CLI sends them in both places.
                    for l in &specs {
                        if !ep.links.contains(l) {
                            ep.links.push(l.clone());
                        }
                    }
                }
                return Ok(Vec::new());
            }
            Mode::Bridge => {}
        }
        let mut links: Vec<Link> = Vec::new();
        for (_, (name, alias)) in parsed {
            let child = self.containers.find(&name).map_err(|e| {
                ApiError::BadRequest(format!("could not get container for {name}: {e}"))
            })?;
            links.retain(|l| l.alias != alias);
            links.push(Link {
                child: child.id,
                alias,
            });
        }
        Ok(links)
    }

    /// The linked containers of `c` on the default bridge, each with its address there: what
    /// its start needs, refused as dockerd refuses it when one is not running or not on the
    /// default bridge.
    pub(crate) fn linked(&self, c: &Container) -> Result<Vec<(Link, Container, Ipv4Addr)>> {
        let mut out = Vec::new();
        for l in &c.links {
            let child = self.containers.find(&l.child).map_err(|_| {
                ApiError::Internal(format!("could not get container for {}", l.child))
            })?;
            if !child.is_running() {
                return Err(ApiError::Internal(format!(
                    "Cannot link to a non running container: /{} AS /{}/{}",
                    child.name, c.name, l.alias
                )));
            }
            let ip = child
                .networks
                .get("bridge")
                .and_then(|e| e.ip)
                .ok_or_else(|| {
                    ApiError::Internal(format!(
                        "container {} not attached to default bridge network",
                        child.id
                    ))
                })?;
            out.push((l.clone(), child, ip));
        }
        Ok(out)
    }

    /// The links' environment, before the container's own (which overrides it).
    pub(crate) fn with_link_env(&self, c: &mut Container) -> Result<()> {
        if c.links.is_empty() {
            return Ok(());
        }
        let own = c.config.env.clone().unwrap_or_default();
        let key = |e: &str| e.split('=').next().unwrap_or(e).to_owned();
        let own_keys: Vec<String> = own.iter().map(|e| key(e)).collect();
        let mut env = Vec::new();
        for (l, child, ip) in self.linked(c)? {
            env.extend(
                self::env(&c.name, &l.alias, &ip.to_string(), &child)
                    .into_iter()
                    .filter(|e| !own_keys.contains(&key(e))),
            );
        }
        env.extend(own);
        c.config.env = Some(env);
        Ok(())
    }

    /// /etc/hosts lines of the links of a running container: `IP ALIAS CHILD-ID CHILD-NAME`
    /// (links to containers gone or stopped since its start are left out).
    pub(crate) fn link_hosts(&self, c: &Container) -> Vec<String> {
        c.links
            .iter()
            .filter_map(|l| {
                let child = self.containers.find(&l.child).ok()?;
                let ip = child.networks.get("bridge").and_then(|e| e.ip)?;
                let mut names = vec![l.alias.clone()];
                for n in [child.short_id().to_owned(), child.name.clone()] {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                Some(format!("{ip}\t{}", names.join(" ")))
            })
            .collect()
    }

    /// HostConfig.Links of `c` as dockerd shows it (`/CHILD:/PARENT/ALIAS`); None without links.
    pub(crate) fn host_config_links(&self, c: &Container) -> Option<Vec<String>> {
        let v: Vec<String> = c
            .links
            .iter()
            .filter_map(|l| {
                let child = self.containers.find(&l.child).ok()?;
                Some(format!("/{}:/{}/{}", child.name, c.name, l.alias))
            })
            .collect();
        (!v.is_empty()).then_some(v)
    }

    /// `DELETE /containers/PARENT/ALIAS?link=1`: the link goes (its /etc/hosts line too, while
    /// the parent runs); the linked container stays.
    pub(crate) fn remove_link(&self, key: &str) -> Result<()> {
        let name = key.trim_start_matches('/');
        let Some((parent, alias)) = name.rsplit_once('/') else {
            return Err(ApiError::Internal(
                "Conflict, cannot remove the default link name of the container".into(),
            ));
        };
        let p = self
            .containers
            .find(parent)
            .ok()
            .filter(|p| p.links.iter().any(|l| l.alias == alias))
            .ok_or_else(|| ApiError::NotFound(format!("No such container: {name}")))?;
        let p = self.containers.update(&p.id, |r| {
            r.links.retain(|l| l.alias != alias);
            Ok(r.clone())
        })?;
        if p.is_running() {
            self.write_hosts_file(&p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_as_dockerd_splits_them() {
        assert_eq!(parse("db").ok(), Some(("db".into(), "db".into())));
        assert_eq!(parse("/db:/d").ok(), Some(("db".into(), "d".into())));
        assert!(parse("db:a:b").is_err());
        assert!(parse(":a").is_err());
    }
}
