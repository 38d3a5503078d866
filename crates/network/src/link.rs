//! Links, addresses and routes through rtnetlink (no `ip` processes): the bridge of a network,
//! the veth pair of an endpoint, the loopback of a new namespace, and the host's routes that a
//! default subnet must not overlap.
//!
//! rtnetlink is asynchronous; these calls are rare (a container start, a network create) and
//! often run on a thread inside another namespace, so each one drives its own current-thread
//! runtime on the calling thread: the netlink socket is opened in that thread's namespace.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::stream::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::cidr::Ipv4Net;
use crate::error::{Error, Result};

/// Runs `f` with a netlink handle opened in the calling thread's network namespace.
fn with_netlink<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::Thread(format!("start a netlink runtime: {e}")))?;
    rt.block_on(async move {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::netlink("open a netlink socket", e))?;
        let task = tokio::spawn(conn);
        let out = f(handle).await;
        task.abort();
        out
    })
}

async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(Error::netlink(format!("look up link {name}"), e)),
    }
}

async fn set_up(h: &Handle, index: u32, what: &str) -> Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("set {what} up"), e))
}

/// Brings `lo` up in the calling thread's namespace (a new one has it down).
pub(crate) fn loopback_up() -> Result<()> {
    with_netlink(|h| async move {
        let lo = index_of(&h, "lo")
            .await?
            .ok_or_else(|| Error::netlink("look up lo", "missing"))?;
        set_up(&h, lo, "lo").await
    })
}

/// Whether a link of this name exists in the host's namespace.
pub fn exists(name: &str) -> Result<bool> {
    let name = name.to_owned();
    with_netlink(|h| async move { Ok(index_of(&h, &name).await?.is_some()) })
}

/// Makes (or finds) the bridge `name` with `gateway/prefix` on it, up, forwarding IPv4, and
/// accepting DNAT'd loopback traffic (route_localnet, so that a published port answers on the
/// host's 127.0.0.1 without a proxy process).
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    let name_owned = name.to_owned();
    with_netlink(|h| async move {
        let name = name_owned;
        let index = match index_of(&h, &name).await? {
            Some(i) => i,
            None => {
                let made = h.link().add(LinkBridge::new(&name).build()).execute().await;
                match made {
                    Ok(()) => {}
                    // Another thread of this daemon made it meanwhile.
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                    Err(e) => return Err(Error::netlink(format!("create bridge {name}"), e)),
                }
                index_of(&h, &name)
                    .await?
                    .ok_or_else(|| Error::netlink(format!("create bridge {name}"), "vanished"))?
            }
        };
        let have = ipv4_addresses(&h, index, &name)
            .await?
            .iter()
            .any(|(ip, _)| *ip == gateway);
        if !have {
            h.address()
                .add(index, IpAddr::V4(gateway), prefix)
                .execute()
                .await
                .map_err(|e| {
                    Error::netlink(format!("add {gateway}/{prefix} to bridge {name}"), e)
                })?;
        }
        set_up(&h, index, &name).await
    })?;
    sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1")?;
    sysctl("net/ipv4/ip_forward", "1")
}

/// The IPv4 addresses (with their prefix lengths) on link `index`.
async fn ipv4_addresses(h: &Handle, index: u32, name: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    let mut addrs = h.address().get().set_link_index_filter(index).execute();
    let mut out = Vec::new();
    while let Some(a) = addrs
        .try_next()
        .await
        .map_err(|e| Error::netlink(format!("list addresses of {name}"), e))?
    {
        for at in &a.attributes {
            if let netlink_packet_route::address::AddressAttribute::Address(IpAddr::V4(ip)) = at {
                out.push((*ip, a.header.prefix_len));
            }
        }
    }
    Ok(out)
}

/// The first IPv4 address of an existing link `name` and its subnet, as dockerd reads an
/// existing docker0's: a fresh daemon adopts it instead of adding a second subnet.
pub fn existing_address(name: &str) -> Result<Option<(Ipv4Addr, Ipv4Net)>> {
    let name = name.to_owned();
    with_netlink(|h| async move {
        let Some(index) = index_of(&h, &name).await? else {
            return Ok(None);
        };
        Ok(ipv4_addresses(&h, index, &name)
            .await?
            .into_iter()
            .find_map(|(ip, prefix)| Some((ip, Ipv4Net::new(ip, prefix).ok()?))))
    })
}

/// Deletes a link of the host's namespace; a missing one is fine.
pub fn delete(name: &str) -> Result<()> {
    let name = name.to_owned();
    with_netlink(|h| async move {
        let Some(index) = index_of(&h, &name).await? else {
            return Ok(());
        };
        match h.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
            Err(e) => Err(Error::netlink(format!("delete link {name}"), e)),
        }
    })
}

/// One end of a container on a bridge: what `attach` makes.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The container's network namespace (a bound file).
    pub netns: &'a Path,
    pub bridge: &'a str,
    /// The host end's name (unique on the host, ≤ 15 bytes).
    pub host_if: &'a str,
    /// The container end's name (`eth0`, `eth1`, …).
    pub container_if: &'a str,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The default route's gateway; none on an internal network or a second network.
    pub gateway: Option<Ipv4Addr>,
    pub mac: [u8; 6],
}

/// Makes a veth pair, puts its host end on the bridge and the other in the namespace with the
/// address, MAC and default route. On failure nothing is left: the pair is deleted.
pub fn attach(a: &Attachment<'_>) -> Result<()> {
    let made = attach_inner(a);
    if made.is_err() {
        let _ = delete(a.host_if);
    }
    made
}

fn attach_inner(a: &Attachment<'_>) -> Result<()> {
    let ns = std::fs::File::open(a.netns).map_err(|e| Error::file("open", a.netns, e))?;
    // A temporary name for the container end while it is still in the host's namespace.
    let peer = format!("{}p", &a.host_if[..a.host_if.len().min(14)]);
    let (host_if, bridge) = (a.host_if.to_owned(), a.bridge.to_owned());
    let peer_c = peer.clone();
    with_netlink(|h| async move {
        let br = index_of(&h, &bridge)
            .await?
            .ok_or_else(|| Error::netlink(format!("find bridge {bridge}"), "no such device"))?;
        let added = h
            .link()
            .add(LinkVeth::new(&host_if, &peer_c).build())
            .execute()
            .await;
        match added {
            Ok(()) => {}
            // The names are this container's on this network: a pair that has them is what a
            // daemon killed in the middle of a start left. It is replaced.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                for name in [&host_if, &peer_c] {
                    if let Some(index) = index_of(&h, name).await? {
                        let _ = h.link().del(index).execute().await;
                    }
                }
                h.link()
                    .add(LinkVeth::new(&host_if, &peer_c).build())
                    .execute()
                    .await
                    .map_err(|e| Error::netlink(format!("create veth {host_if}"), e))?;
            }
            Err(e) => return Err(Error::netlink(format!("create veth {host_if}"), e)),
        }
        let host = index_of(&h, &host_if)
            .await?
            .ok_or_else(|| Error::netlink(format!("create veth {host_if}"), "vanished"))?;
        let inner = index_of(&h, &peer_c)
            .await?
            .ok_or_else(|| Error::netlink(format!("create veth {peer_c}"), "vanished"))?;
        h.link()
            .set(LinkUnspec::new_with_index(host).controller(br).up().build())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("put {host_if} on {bridge}"), e))?;
        h.link()
            .set(
                LinkUnspec::new_with_index(inner)
                    .setns_by_fd(ns.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("move {peer_c} into the container"), e))
    })?;
    // Hairpin: a container that reaches its own published port through the host (the
    // gateway's address) is DNAT'd back to itself. With br_netfilter loaded the kernel bridges
    // that frame back out of the port it came in on, which a bridge refuses unless the port
    // is in hairpin mode (Docker sets it likewise when no userland proxy takes that path).
    let hairpin = Path::new("/sys/class/net")
        .join(a.host_if)
        .join("brport/hairpin_mode");
    std::fs::write(&hairpin, "1").map_err(|e| Error::file("write", &hairpin, e))?;
    let (ifname, addr, prefix, gateway, mac) = (
        a.container_if.to_owned(),
        a.address,
        a.prefix,
        a.gateway,
        a.mac,
    );
    crate::netns::run_in(a.netns, move || {
        with_netlink(|h| async move {
            let index = index_of(&h, &peer).await?.ok_or_else(|| {
                Error::netlink(format!("find {peer} in the container"), "missing")
            })?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(index)
                        .name(ifname.clone())
                        .address(mac.to_vec())
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("name {ifname}"), e))?;
            h.address()
                .add(index, IpAddr::V4(addr), prefix)
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("add {addr}/{prefix} to {ifname}"), e))?;
            set_up(&h, index, &ifname).await?;
            if let Some(gw) = gateway {
                h.route()
                    .add(
                        RouteMessageBuilder::<Ipv4Addr>::new()
                            .output_interface(index)
                            .gateway(gw)
                            .build(),
                    )
                    .execute()
                    .await
                    .map_err(|e| Error::netlink(format!("route via {gw}"), e))?;
            }
            Ok(())
        })
    })
}

/// The IPv4 destinations the host routes (every table), for picking subnets that collide
/// with none.
pub fn host_routes() -> Result<Vec<Ipv4Net>> {
    with_netlink(|h| async move {
        let mut routes = h
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(r) = routes
            .try_next()
            .await
            .map_err(|e| Error::netlink("list routes", e))?
        {
            let prefix = r.header.destination_prefix_length;
            if prefix == 0 {
                continue;
            }
            for at in &r.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = at {
                    if !ip.is_loopback() {
                        if let Ok(n) = Ipv4Net::new(*ip, prefix) {
                            out.push(n);
                        }
                    }
                }
            }
        }
        Ok(out)
    })
}

/// The names of the host's links that start with `prefix`.
pub fn links_with_prefix(prefix: &str) -> Result<Vec<String>> {
    let prefix = prefix.to_owned();
    with_netlink(|h| async move {
        let mut links = h.link().get().execute();
        let mut out = Vec::new();
        while let Some(l) = links
            .try_next()
            .await
            .map_err(|e| Error::netlink("list links", e))?
        {
            for at in &l.attributes {
                if let LinkAttribute::IfName(n) = at {
                    if n.starts_with(&prefix) {
                        out.push(n.clone());
                    }
                }
            }
        }
        Ok(out)
    })
}

fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|e| Error::file("write", &path, e))
}
