//! The IPv4 routing table: longest-prefix match over connected routes (from
//! port addresses), gateway routes and a default route, each with an optional
//! MTU. Plays the part of `fib_lookup` (reached from `ip_route_output_flow`).
//!
//! Lookups go from the longest prefix length present down to /0, one hash
//! probe per length in use (the `fib_hash` layout, before the LC-trie). Every
//! change bumps [`RouteTable::generation`], which invalidates the `dst` a
//! socket has cached (the role `dst->obsolete` / `rt_genid` play in Linux).

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RouteKind {
    /// The subnet of a port address (`proto kernel scope link`).
    Connected,
    /// Added by configuration.
    Static,
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub prefix: Ipv4Addr,
    pub len: u8,
    /// Next hop; `None` for on-link destinations.
    pub gateway: Option<Ipv4Addr>,
    /// Output port.
    pub port: u16,
    /// Preferred source address (`src` / `prefsrc`).
    pub src: Ipv4Addr,
    /// Route MTU (`mtu` lock metric); `None` = the port's MTU.
    pub mtu: Option<u32>,
    pub kind: RouteKind,
}

impl Route {
    /// The next hop for `dst` through this route.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }
}

/// Routing errors (configuration side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route {prefix}/{len}: prefix length must be 0..=32")]
    BadLength { prefix: Ipv4Addr, len: u8 },
    #[error("route {prefix}/{len}: host bits are set (did you mean {masked}/{len}?)")]
    HostBits {
        prefix: Ipv4Addr,
        len: u8,
        masked: Ipv4Addr,
    },
    #[error("route {prefix}/{len}: no such route")]
    NotFound { prefix: Ipv4Addr, len: u8 },
}

/// Netmask for a prefix length.
pub fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    by_len: Vec<HashMap<u32, Route>>,
    /// Bit `l` set when some route has prefix length `l`.
    present: u64,
    generation: u64,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable::new()
    }
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable {
            by_len: (0..=32).map(|_| HashMap::new()).collect(),
            present: 0,
            generation: 1,
        }
    }

    /// Bumped by every change.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds or replaces the route for `r.prefix/r.len`.
    pub fn add(&mut self, r: Route) -> Result<(), RouteError> {
        if r.len > 32 {
            return Err(RouteError::BadLength {
                prefix: r.prefix,
                len: r.len,
            });
        }
        let p = u32::from(r.prefix);
        if p & !mask(r.len) != 0 {
            return Err(RouteError::HostBits {
                prefix: r.prefix,
                len: r.len,
                masked: Ipv4Addr::from(p & mask(r.len)),
            });
        }
        self.by_len[r.len as usize].insert(p, r);
        self.present |= 1 << r.len;
        self.generation += 1;
        Ok(())
    }

    /// Removes the route for `prefix/len`.
    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Result<Route, RouteError> {
        let t = self
            .by_len
            .get_mut(len as usize)
            .ok_or(RouteError::BadLength { prefix, len })?;
        let r = t
            .remove(&u32::from(prefix))
            .ok_or(RouteError::NotFound { prefix, len })?;
        if t.is_empty() {
            self.present &= !(1 << len);
        }
        self.generation += 1;
        Ok(r)
    }

    /// Longest-prefix match (`fib_lookup`).
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        let d = u32::from(dst);
        let mut present = self.present;
        while present != 0 {
            let len = 63 - present.leading_zeros();
            present &= !(1u64 << len);
            if let Some(r) = self.by_len[len as usize].get(&(d & mask(len as u8))) {
                return Some(r);
            }
        }
        None
    }

    /// All routes, longest prefix first (for display).
    pub fn routes(&self) -> Vec<Route> {
        let mut v: Vec<Route> = self
            .by_len
            .iter()
            .flat_map(|t| t.values().copied())
            .collect();
        v.sort_by(|a, b| b.len.cmp(&a.len).then(a.prefix.cmp(&b.prefix)));
        v
    }

    pub fn len(&self) -> usize {
        self.by_len.iter().map(|t| t.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.present == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn route(prefix: u32, len: u8, port: u16) -> Route {
        Route {
            prefix: Ipv4Addr::from(prefix & mask(len.min(32))),
            len,
            gateway: None,
            port,
            src: Ipv4Addr::UNSPECIFIED,
            mtu: None,
            kind: RouteKind::Static,
        }
    }

    #[test]
    fn lpm_basics_and_generation() {
        let mut t = RouteTable::new();
        let g0 = t.generation();
        assert!(t.lookup(Ipv4Addr::new(1, 2, 3, 4)).is_none());
        t.add(route(0, 0, 9)).unwrap();
        t.add(route(0x0a000000, 8, 1)).unwrap();
        t.add(route(0x0a010000, 16, 2)).unwrap();
        assert!(t.generation() > g0);
        assert_eq!(t.lookup(Ipv4Addr::new(10, 1, 2, 3)).unwrap().port, 2);
        assert_eq!(t.lookup(Ipv4Addr::new(10, 2, 2, 3)).unwrap().port, 1);
        assert_eq!(t.lookup(Ipv4Addr::new(11, 2, 2, 3)).unwrap().port, 9);
        let g1 = t.generation();
        t.remove(Ipv4Addr::new(10, 1, 0, 0), 16).unwrap();
        assert!(t.generation() > g1);
        assert_eq!(t.lookup(Ipv4Addr::new(10, 1, 2, 3)).unwrap().port, 1);
        assert!(matches!(
            t.add(route(0, 33, 0)),
            Err(RouteError::BadLength { .. })
        ));
        let mut bad = route(0, 8, 0);
        bad.prefix = Ipv4Addr::new(10, 0, 0, 1);
        assert!(matches!(t.add(bad), Err(RouteError::HostBits { .. })));
        assert!(matches!(
            t.remove(Ipv4Addr::new(10, 9, 0, 0), 16),
            Err(RouteError::NotFound { .. })
        ));
    }

    proptest! {
        #[test]
        fn lpm_matches_brute_force(routes in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40),
                                   probes in proptest::collection::vec(any::<u32>(), 1..50)) {
            let mut t = RouteTable::new();
            let mut all: Vec<Route> = Vec::new();
            for (i, (p, l)) in routes.iter().enumerate() {
                let r = route(*p, *l, i as u16);
                t.add(r).unwrap();
                all.retain(|x| !(x.prefix == r.prefix && x.len == r.len));
                all.push(r);
            }
            // Probe near the route prefixes too, not just at random.
            let mut ds: Vec<u32> = probes.clone();
            for (p, _) in &routes { ds.push(*p); ds.push(p ^ 1); }
            for d in ds {
                let oracle = all.iter()
                    .filter(|r| d & mask(r.len) == u32::from(r.prefix))
                    .max_by_key(|r| r.len)
                    .map(|r| r.port);
                prop_assert_eq!(t.lookup(Ipv4Addr::from(d)).map(|r| r.port), oracle);
            }
        }
    }
}
