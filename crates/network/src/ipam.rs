//! The address management rules both families share: a new network's subnet, gateway and
//! range checked as dockerd checks them, a free subnet picked from the pools, the next free
//! address handed out in turn.

use crate::cidr::Subnet;
use crate::error::{Error, Result};

/// A new network's subnet of one family: the one asked for (then `true`: the user's) or the
/// one `pick` finds; its gateway (the one asked for, else the first host address); `range`
/// checked to lie inside it.
pub(crate) fn plan_subnet<N: Subnet>(
    want: Option<N>,
    gateway: Option<N::Addr>,
    range: Option<N>,
    taken: &[N],
    pick: impl FnOnce() -> Result<N>,
) -> Result<(N, N::Addr, bool)> {
    let (subnet, user) = match want {
        Some(s) => {
            if taken.iter().any(|t| t.overlaps(&s)) {
                return Err(Error::PoolOverlap);
            }
            if s.prefix() > N::MAX_PREFIX {
                return Err(Error::InvalidConfig(format!(
                    "invalid subnet {s}: too small for a gateway and a container"
                )));
            }
            (s, true)
        }
        None if gateway.is_some() || range.is_some() => {
            return Err(Error::InvalidConfig(
                "invalid pool request: gateway or ip-range needs a subnet".into(),
            ))
        }
        None => (pick()?, false),
    };
    let gateway = match gateway {
        Some(g) if !subnet.is_host(g) => {
            return Err(Error::InvalidConfig(format!(
                "no matching subnet for gateway {g}"
            )))
        }
        Some(g) => g,
        None => subnet
            .at(1)
            .ok_or_else(|| Error::InvalidCidr(subnet.to_string()))?,
    };
    if let Some(r) = range {
        if !subnet.contains_net(&r) {
            return Err(Error::InvalidConfig(format!(
                "no matching subnet for range {r}"
            )));
        }
    }
    Ok((subnet, gateway, user))
}

/// The first of `candidates` that overlaps neither a network of this daemon nor a route of the
/// host (another daemon's bridge, a VPN, the LAN).
pub(crate) fn first_free<N: Subnet>(
    mut candidates: impl Iterator<Item = N>,
    taken: &[N],
    host_routes: &[N],
) -> Option<N> {
    candidates.find(|s| {
        !taken.iter().any(|t| t.overlaps(s)) && !host_routes.iter().any(|r| r.overlaps(s))
    })
}

/// The next host address of `range` (inside `subnet`) after `last` that `taken` (holding
/// `held` addresses) does not claim, wrapping around: a freed address is not handed out again
/// at once (peers' ARP and neighbour caches still name its old MAC). At most `held + 1` taken
/// addresses can follow one another, so the walk is that long at most.
pub(crate) fn next_free<N: Subnet>(
    subnet: N,
    range: N,
    last: Option<N::Addr>,
    held: usize,
    taken: impl Fn(N::Addr) -> bool,
) -> Option<N::Addr> {
    let start = last
        .and_then(|l| range.index_of(l))
        .map(|o| o.wrapping_add(1))
        .unwrap_or(0);
    let size = range.span();
    // The base, the broadcast address and the gateway are not among `held`.
    let tries = (held as u128).saturating_add(4).min(size);
    (0..tries)
        .filter_map(|i| range.at(start.wrapping_add(i) % size))
        .find(|ip| subnet.is_host(*ip) && !taken(*ip))
}
