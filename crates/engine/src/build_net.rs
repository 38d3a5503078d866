//! The network of a build's RUN container, as dockerd's classic builder gives it: on the
//! default bridge network (or the user-defined network `--network NAME` names) like any
//! container — its own namespace, a veth on the bridge, an address from the network's IPAM,
//! the default route through the gateway, and on a user-defined network the embedded DNS
//! server — all released when the step is over.
//!
//! The namespace file and the address are named by the RUN container's id under the same
//! directories as containers', so a daemon that dies mid-build releases them when it starts
//! again (`reconcile_networks` drops every namespace and address no running container owns).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use berth_network::{dns, netns, Network};
use bollard_stubs::models::HostConfig;

use crate::daemon::Daemon;
use crate::error::{ApiError, Result};
use crate::network::{net_error, upstream_addrs, Endpoint};

/// A RUN container's place on a network; dropping it tears it down.
#[derive(Debug)]
pub struct BuildNetwork {
    daemon: Arc<Daemon>,
    owner: String,
    network_id: String,
    /// The namespace file the RUN container joins.
    pub path: PathBuf,
    pub ip: Ipv4Addr,
    /// The container's /etc/resolv.conf.
    pub resolv_conf: String,
    dns: Option<dns::Server>,
}

impl Daemon {
    /// The network `name` (`default` for the default bridge) for the RUN container `owner`,
    /// wired: namespace, veth, address, route, and DNS on a user-defined network.
    pub fn build_network(self: &Arc<Self>, owner: &str, name: &str) -> Result<BuildNetwork> {
        let n = self.network_for_build(name)?;
        let path = self.net.netns_path(owner);
        netns::remove(&path);
        netns::create(&path, self.net.take_spare()).map_err(net_error)?;
        let mut built = BuildNetwork {
            daemon: self.clone(),
            owner: owner.to_owned(),
            network_id: n.id.clone(),
            path: path.clone(),
            ip: Ipv4Addr::UNSPECIFIED,
            resolv_conf: String::new(),
            dns: None,
        };
        // From here on a failure drops `built`, which undoes what was made.
        let mut ep = Endpoint {
            network_id: n.id.clone(),
            ..Endpoint::default()
        };
        self.attach(owner, &n, &mut ep, &path, 0, &mut Default::default())?;
        built.ip = ep.ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let upstream = self.default_upstream();
        if n.is_user_defined() {
            built.dns =
                Some(self.serve_dns(&path, self.build_lookup(&n), upstream_addrs(&upstream))?);
        }
        built.resolv_conf =
            self.resolv_conf_text(&HostConfig::default(), n.is_user_defined(), &upstream);
        Ok(built)
    }

    /// The bridge network `--network NAME` names for a build's RUN steps (`default` and
    /// `bridge`: the default one); dockerd's 404 for a network that does not exist.
    pub fn network_for_build(&self, name: &str) -> Result<Network> {
        let key = if name == "default" || name.is_empty() {
            "bridge"
        } else {
            name
        };
        let n = self.net.find(key)?;
        if !n.is_bridge() {
            return Err(ApiError::BadRequest(format!(
                "network {} cannot be used by builds (default, none, host or a bridge network)",
                n.name
            )));
        }
        Ok(n)
    }

    /// Names a RUN step may resolve: the containers on its network (it has no name itself).
    fn build_lookup(self: &Arc<Self>, n: &Network) -> dns::Lookup {
        let weak: Weak<Daemon> = Arc::downgrade(self);
        let mine = vec![n.id.clone()];
        Arc::new(move |name: &str| weak.upgrade().and_then(|d| d.resolve_on(&mine, name)))
    }
}

impl Drop for BuildNetwork {
    fn drop(&mut self) {
        self.dns = None;
        // The veth is not deleted here: its end inside goes with the namespace, and the
        // kernel then removes the pair in the background. Deleting it by hand waits out RCU
        // grace periods (about 20 ms a RUN here) on the step's path.
        netns::remove(&self.path);
        let _ = self
            .daemon
            .net
            .store
            .release(Some(&self.network_id), &self.owner);
    }
}
