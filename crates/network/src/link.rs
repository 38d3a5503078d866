//! Links, addresses and routes through rtnetlink (no `ip` processes): the bridge of a network,
//! the veth pair of an endpoint, the loopback of a new namespace, and the host's routes that a
//! default subnet must not overlap.
//!
//! rtnetlink is asynchronous; these calls are rare (a container start, a network create) and
//! often run on a thread inside another namespace, so each one drives its own current-thread
//! runtime on the calling thread: the netlink socket is opened in that thread's namespace.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::stream::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::cidr::{Ipv4Net, Ipv6Net};
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

/// Makes (or finds) the bridge `name` with `gateway/prefix` on it (and `gateway6/prefix` on
/// an IPv6 network), up, forwarding, and accepting DNAT'd loopback traffic (route_localnet, so
/// that a published port answers on the host's 127.0.0.1 without a proxy process).
pub fn ensure_bridge(
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    v6: Option<(Ipv6Addr, u8)>,
) -> Result<()> {
    let name_owned = name.to_owned();
    if v6.is_some() {
        // IPv6 forwarding (between networks, and out) as dockerd turns it on for its IPv6
        // networks; the bridge's own IPv6 must be on before an address goes on it.
        sysctl("net/ipv6/conf/all/forwarding", "1")?;
    }
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
        let have = addresses(&h, index, &name).await?;
        if !have.iter().any(|(ip, _)| *ip == IpAddr::V4(gateway)) {
            add_address(&h, index, IpAddr::V4(gateway), prefix, &name).await?;
        }
        if let Some((gw6, prefix6)) = v6 {
            sysctl(&format!("net/ipv6/conf/{name}/disable_ipv6"), "0")?;
            if !have.iter().any(|(ip, _)| *ip == IpAddr::V6(gw6)) {
                add_address(&h, index, IpAddr::V6(gw6), prefix6, &name).await?;
            }
        }
        set_up(&h, index, &name).await
    })?;
    sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1")?;
    sysctl("net/ipv4/ip_forward", "1")
}

/// Adds `ip/prefix` to link `index`. An IPv6 address skips duplicate address detection
/// (`nodad`, as dockerd adds them): a bridge's gateway or a container's address is unique by
/// IPAM, and a tentative address could not be used for the second DAD takes.
async fn add_address(h: &Handle, index: u32, ip: IpAddr, prefix: u8, what: &str) -> Result<()> {
    let mut req = h.address().add(index, ip, prefix);
    if ip.is_ipv6() {
        let m = req.message_mut();
        m.header.flags |= AddressHeaderFlags::Nodad;
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute()
        .await
        .map_err(|e| Error::netlink(format!("add {ip}/{prefix} to {what}"), e))
}

/// The addresses (with their prefix lengths) on link `index`.
async fn addresses(h: &Handle, index: u32, name: &str) -> Result<Vec<(IpAddr, u8)>> {
    let mut addrs = h.address().get().set_link_index_filter(index).execute();
    let mut out = Vec::new();
    while let Some(a) = addrs
        .try_next()
        .await
        .map_err(|e| Error::netlink(format!("list addresses of {name}"), e))?
    {
        for at in &a.attributes {
            if let AddressAttribute::Address(ip) = at {
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
        Ok(addresses(&h, index, &name)
            .await?
            .into_iter()
            .find_map(|(ip, prefix)| match ip {
                IpAddr::V4(ip) => Some((ip, Ipv4Net::new(ip, prefix).ok()?)),
                IpAddr::V6(_) => None,
            }))
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
    /// The IPv6 address and prefix on an IPv6 network; without one the interface has no
    /// IPv6 at all (no link-local address either), as dockerd leaves it.
    pub address6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 default route's gateway (first IPv6 network, not internal).
    pub gateway6: Option<Ipv6Addr>,
    /// `IPAMConfig.LinkLocalIPs`: more addresses on the interface (/16 for IPv4's
    /// 169.254/16, /64 for IPv6's fe80::/64).
    pub link_local: Vec<IpAddr>,
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
        let made = h
            .link()
            .add(LinkVeth::new(&host_if, &peer_c).build())
            .execute()
            .await;
        match made {
            Ok(()) => {}
            // A pair left by a daemon killed while it wired this endpoint (the names are the
            // endpoint's own): it goes, and the pair is made anew.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                for stale in [&host_if, &peer_c] {
                    if let Some(i) = index_of(&h, stale).await? {
                        let _ = h.link().del(i).execute().await;
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
    // Set over netlink, not /sys/class/net: sysfs shows the namespace of whoever mounted it,
    // which is not this daemon's when it runs in a network namespace of its own.
    let host_if = a.host_if.to_owned();
    with_netlink(|h| async move {
        let index = index_of(&h, &host_if)
            .await?
            .ok_or_else(|| Error::netlink(format!("find {host_if}"), "vanished"))?;
        h.link()
            .set_port(LinkBridgePort::new(index).hairpin(true).build())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("put {host_if} in hairpin mode"), e))
    })?;
    let (ifname, addr, prefix, gateway, mac) = (
        a.container_if.to_owned(),
        a.address,
        a.prefix,
        a.gateway,
        a.mac,
    );
    let (address6, gateway6, link_local) = (a.address6, a.gateway6, a.link_local.clone());
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
            // Without an IPv6 address (and no IPv6 link-local one asked for) the interface
            // gets no IPv6 at all: not even the link-local address the kernel would make.
            let ipv6 = address6.is_some() || link_local.iter().any(IpAddr::is_ipv6);
            sysctl(
                &format!("net/ipv6/conf/{ifname}/disable_ipv6"),
                if ipv6 { "0" } else { "1" },
            )?;
            add_address(&h, index, IpAddr::V4(addr), prefix, &ifname).await?;
            if let Some((a6, p6)) = address6 {
                add_address(&h, index, IpAddr::V6(a6), p6, &ifname).await?;
            }
            for ll in &link_local {
                let p = if ll.is_ipv4() { 16 } else { 64 };
                add_address(&h, index, *ll, p, &ifname).await?;
            }
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
            if let Some(gw) = gateway6 {
                h.route()
                    .add(
                        RouteMessageBuilder::<Ipv6Addr>::new()
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
        routed(
            &h,
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            |dst, prefix| match dst {
                RouteAddress::Inet(ip) if !ip.is_loopback() => Ipv4Net::new(*ip, prefix).ok(),
                _ => None,
            },
        )
        .await
    })
}

/// The IPv6 destinations the host routes (every table, link-local and multicast aside), for
/// picking IPv6 subnets that collide with none.
pub fn host_routes6() -> Result<Vec<Ipv6Net>> {
    with_netlink(|h| async move {
        routed(
            &h,
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
            |dst, prefix| match dst {
                RouteAddress::Inet6(ip)
                    if !ip.is_loopback()
                        && !ip.is_multicast()
                        && ip.segments()[0] & 0xffc0 != 0xfe80 =>
                {
                    Ipv6Net::new(*ip, prefix).ok()
                }
                _ => None,
            },
        )
        .await
    })
}

/// The destinations (not default routes) of the routes `query` lists, as `keep` takes them.
async fn routed<N>(
    h: &Handle,
    query: netlink_packet_route::route::RouteMessage,
    keep: impl Fn(&RouteAddress, u8) -> Option<N>,
) -> Result<Vec<N>> {
    let mut routes = h.route().get(query).execute();
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
            if let RouteAttribute::Destination(dst) = at {
                out.extend(keep(dst, prefix));
            }
        }
    }
    Ok(out)
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
