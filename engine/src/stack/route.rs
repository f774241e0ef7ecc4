//! One IPv4 routing table (`struct fib_table`): longest-prefix match over
//! routes of every type Linux has on output (`unicast`, `local`,
//! `broadcast`, `unreachable`, `prohibit`, `blackhole`, `throw`), each with a
//! scope, an optional TOS, a metric (`priority`), an optional MTU and one or
//! more weighted next hops. Plays the part of `fib_table_lookup` (reached
//! from `fib_lookup` through the rules, see [`super::fib_rules`]).
//!
//! Lookups go from the longest prefix length present down to /0, one hash
//! probe per length in use (the `fib_hash` layout, before the LC-trie). The
//! routes of one prefix are kept as Linux keeps its `fib_alias` list: by TOS
//! descending, then metric ascending; the first whose TOS, scope and output
//! port fit the flow wins, else the search backtracks to shorter prefixes.
//! Every change bumps [`RouteTable::generation`], which invalidates the `dst` a
//! socket has cached (the role `dst->obsolete` / `rt_genid` play in Linux).

use super::Errno;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

/// `RT_SCOPE_UNIVERSE`: a route anywhere (through a gateway).
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RT_SCOPE_LINK`: a destination on the link (no gateway), and the scope a
/// flow asks for with `RTO_ONLINK` / `MSG_DONTROUTE` / `SO_DONTROUTE`.
pub const RT_SCOPE_LINK: u8 = 253;
/// `RT_SCOPE_HOST`: this host (`local` routes).
pub const RT_SCOPE_HOST: u8 = 254;
/// `IPTOS_RT_MASK` (`INET_DSCP_LEGACY_TOS_MASK`): the TOS bits routes and
/// rules compare.
pub const IPTOS_RT_MASK: u8 = 0x1c;

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RouteKind {
    /// From a port address (`proto kernel`: the subnet, the `local` and
    /// `broadcast` routes of the `local` table).
    Connected,
    /// Added by configuration.
    Static,
}

/// The route types of `rtm_type` that make sense on output, with the
/// error `fib_props[type].error` gives (net/ipv4/fib_semantics.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RouteType {
    /// `RTN_UNICAST`.
    Unicast,
    /// `RTN_LOCAL`: the destination is this host.
    Local,
    /// `RTN_BROADCAST`: sent as a link-layer broadcast.
    Broadcast,
    /// `RTN_UNREACHABLE`: `-EHOSTUNREACH`.
    Unreachable,
    /// `RTN_PROHIBIT`: `-EACCES`.
    Prohibit,
    /// `RTN_BLACKHOLE`: `-EINVAL`.
    Blackhole,
    /// `RTN_THROW`: `-EAGAIN`, the lookup goes on with the next rule.
    Throw,
}

/// What a lookup in one table yields besides a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FibErr {
    /// `-EAGAIN`: nothing here (no match, or a `throw` route): the rules go on.
    Again,
    /// A route or rule that ends the lookup with this error.
    Errno(Errno),
}

impl RouteType {
    /// `fib_props[type].error`.
    pub fn error(self) -> Option<FibErr> {
        match self {
            RouteType::Unicast | RouteType::Local | RouteType::Broadcast => None,
            RouteType::Unreachable => Some(FibErr::Errno(Errno::EHOSTUNREACH)),
            RouteType::Prohibit => Some(FibErr::Errno(Errno::EACCES)),
            RouteType::Blackhole => Some(FibErr::Errno(Errno::EINVAL)),
            RouteType::Throw => Some(FibErr::Again),
        }
    }
    /// The scope `ip route` gives a route of this type when none is named:
    /// `host` for local, `link` for broadcast and for unicast without a
    /// gateway, else `universe` (`fib_props[type].scope`).
    pub fn default_scope(self, has_gateway: bool) -> u8 {
        match self {
            RouteType::Local => RT_SCOPE_HOST,
            RouteType::Broadcast => RT_SCOPE_LINK,
            RouteType::Unicast if !has_gateway => RT_SCOPE_LINK,
            _ => RT_SCOPE_UNIVERSE,
        }
    }
    /// `ip route`'s name of the type.
    pub fn name(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Local => "local",
            RouteType::Broadcast => "broadcast",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Blackhole => "blackhole",
            RouteType::Throw => "throw",
        }
    }
}

/// One next hop of a multipath route (`struct fib_nh` with `nh_weight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nexthop {
    pub gateway: Option<Ipv4Addr>,
    pub port: u16,
    /// `weight` 1..=256 (`rtnh_hops + 1`).
    pub weight: u32,
    /// `fib_nh_upper_bound`: this hop takes the 31-bit flow hashes up to
    /// here (`fib_rebalance`).
    pub upper_bound: u32,
}

/// One route (a `fib_alias` with its `fib_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: Ipv4Addr,
    pub len: u8,
    pub rtype: RouteType,
    /// `rtm_scope`.
    pub scope: u8,
    /// `tos`: 0 matches any; else only flows whose TOS (`& IPTOS_RT_MASK`) equals it.
    pub tos: u8,
    /// `metric` / `priority`: among routes of one prefix, the lowest wins.
    pub metric: u32,
    /// Next hop; `None` for on-link destinations.
    pub gateway: Option<Ipv4Addr>,
    /// Output port.
    pub port: u16,
    /// Preferred source address (`src` / `prefsrc`).
    pub src: Ipv4Addr,
    /// Route MTU (`mtu` lock metric); `None` = the port's MTU.
    pub mtu: Option<u32>,
    pub kind: RouteKind,
    /// The next hops of a multipath route (`nexthop via … weight …`, at
    /// least two); empty for a single-path route (`gateway` / `port`).
    pub nexthops: Vec<Nexthop>,
}

impl Route {
    /// A single-path unicast route, scope from the gateway.
    pub fn unicast(prefix: Ipv4Addr, len: u8, gateway: Option<Ipv4Addr>, port: u16) -> Route {
        Route {
            prefix,
            len,
            rtype: RouteType::Unicast,
            scope: RouteType::Unicast.default_scope(gateway.is_some()),
            tos: 0,
            metric: 0,
            gateway,
            port,
            src: Ipv4Addr::UNSPECIFIED,
            mtu: None,
            kind: RouteKind::Static,
            nexthops: Vec::new(),
        }
    }
    /// The next hop for `dst` through this route.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }
    /// Sets the hash-threshold bounds of the next hops (`fib_rebalance`):
    /// hop `i` takes hashes up to `round(w_0+…+w_i << 31 / total) - 1`.
    pub(crate) fn rebalance(&mut self) {
        let total: u64 = self.nexthops.iter().map(|n| n.weight as u64).sum();
        let mut w = 0u64;
        for nh in &mut self.nexthops {
            w += nh.weight as u64;
            nh.upper_bound = (((w << 31) + total / 2) / total.max(1)).saturating_sub(1) as u32;
        }
    }
}

/// What a table lookup yields (`struct fib_result`), copied out so that the
/// caller holds no borrow of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibResult {
    pub prefix: Ipv4Addr,
    /// `prefixlen`.
    pub len: u8,
    pub rtype: RouteType,
    pub scope: u8,
    pub tos: u8,
    pub metric: u32,
    /// The chosen next hop (`nh_sel`): its gateway and port.
    pub gateway: Option<Ipv4Addr>,
    pub port: u16,
    pub src: Ipv4Addr,
    pub mtu: Option<u32>,
    /// Next hops of the route (1 for single-path).
    pub nhs: u8,
    pub nh_sel: u8,
    /// Table id the route is in.
    pub table: u32,
}

/// The flow keys a table lookup reads (the part of `flowi4` `fib_table_lookup` uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableKey {
    pub daddr: Ipv4Addr,
    pub tos: u8,
    /// `flowi4_scope`: routes of a narrower scope (a smaller number) are skipped.
    pub scope: u8,
    /// `flowi4_oif`: only next hops through this port match.
    pub oif: Option<u16>,
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

/// A multiply-fold hash for prefix keys: the tables are written by
/// configuration, not by packets, so no keyed hash is needed, and a probe
/// costs a multiply instead of a SipHash round.
#[derive(Default)]
pub(crate) struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(b as u32);
        }
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        let p = (x as u128 ^ self.0 as u128) * 0x9e37_79b9_7f4a_7c15u128;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

type PrefixMap = HashMap<u32, Vec<Route>, BuildHasherDefault<PrefixHasher>>;

/// One routing table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    id: u32,
    by_len: Vec<PrefixMap>,
    /// Bit `l` set when some route has prefix length `l`.
    present: u64,
    generation: u64,
    /// `fa_default` of the default routes: the alias `fib_select_default`
    /// chose last (-1: none).
    pub(crate) fa_default: std::cell::Cell<i32>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable::new()
    }
}

impl RouteTable {
    /// The `main` table (254).
    pub fn new() -> RouteTable {
        RouteTable::with_id(super::fib_rules::RT_TABLE_MAIN)
    }

    pub fn with_id(id: u32) -> RouteTable {
        RouteTable {
            id,
            by_len: (0..=32).map(|_| PrefixMap::default()).collect(),
            present: 0,
            generation: 1,
            fa_default: std::cell::Cell::new(-1),
        }
    }

    /// The table id (`tb_id`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Bumped by every change.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds a route, or replaces the one of the same prefix, TOS and
    /// metric (`ip route replace`).
    pub fn add(&mut self, mut r: Route) -> Result<(), RouteError> {
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
        r.rebalance();
        let len = r.len;
        let v = self.by_len[len as usize].entry(p).or_default();
        v.retain(|x| !(x.tos == r.tos && x.metric == r.metric));
        // fib_alias order: TOS descending, then priority ascending.
        let at = v
            .iter()
            .position(|x| {
                (x.tos, std::cmp::Reverse(x.metric)) < (r.tos, std::cmp::Reverse(r.metric))
            })
            .unwrap_or(v.len());
        v.insert(at, r);
        self.present |= 1 << len;
        self.generation += 1;
        Ok(())
    }

    /// Removes the first route (lowest metric) for `prefix/len`; with
    /// `metric`, the one with that metric.
    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Result<Route, RouteError> {
        self.remove_metric(prefix, len, None)
    }

    /// Removes the route for `prefix/len` with `metric` (any when `None`).
    pub fn remove_metric(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        metric: Option<u32>,
    ) -> Result<Route, RouteError> {
        let t = self
            .by_len
            .get_mut(len as usize)
            .ok_or(RouteError::BadLength { prefix, len })?;
        let key = u32::from(prefix);
        let v = t
            .get_mut(&key)
            .ok_or(RouteError::NotFound { prefix, len })?;
        let i = v
            .iter()
            .position(|r| metric.is_none_or(|m| r.metric == m))
            .ok_or(RouteError::NotFound { prefix, len })?;
        let r = v.remove(i);
        if v.is_empty() {
            t.remove(&key);
        }
        if t.is_empty() {
            self.present &= !(1 << len);
        }
        self.generation += 1;
        Ok(r)
    }

    /// Plays the part of `fib_table_lookup`: longest prefix first; within a
    /// prefix the first route whose TOS, scope and next hop (`oif`) fit the
    /// flow; a route whose type is an error ends the lookup with it
    /// (`fib_props[type].error`); nothing found is `Again` (`-EAGAIN`).
    #[inline]
    pub fn fib_table_lookup(&self, k: &TableKey) -> Result<FibResult, FibErr> {
        let d = u32::from(k.daddr);
        let tos = k.tos & IPTOS_RT_MASK;
        let mut present = self.present;
        while present != 0 {
            let len = 63 - present.leading_zeros();
            present &= !(1u64 << len);
            let Some(v) = self.by_len[len as usize].get(&(d & mask(len as u8))) else {
                continue;
            };
            for r in v {
                if (r.tos != 0 && r.tos != tos) || r.scope < k.scope {
                    continue;
                }
                if let Some(e) = r.rtype.error() {
                    return Err(e);
                }
                if let Some(res) = self.result(r, k.oif) {
                    return Ok(res);
                }
            }
        }
        Err(FibErr::Again)
    }

    /// The result for route `r` if one of its next hops fits `oif`
    /// (`fib_lookup_good_nhc`).
    fn result(&self, r: &Route, oif: Option<u16>) -> Option<FibResult> {
        let (mut gateway, mut port, mut nh_sel) = (r.gateway, r.port, 0u8);
        if r.nexthops.is_empty() {
            if oif.is_some_and(|o| o != r.port) && r.rtype == RouteType::Unicast {
                return None;
            }
        } else {
            let i = match oif {
                None => 0,
                Some(o) => r.nexthops.iter().position(|n| n.port == o)?,
            };
            gateway = r.nexthops[i].gateway;
            port = r.nexthops[i].port;
            nh_sel = i as u8;
        }
        Some(FibResult {
            prefix: r.prefix,
            len: r.len,
            rtype: r.rtype,
            scope: r.scope,
            tos: r.tos,
            metric: r.metric,
            gateway,
            port,
            src: r.src,
            mtu: r.mtu,
            nhs: r.nexthops.len().max(1) as u8,
            nh_sel,
            table: self.id,
        })
    }

    /// Longest-prefix match for `dst` with any TOS and scope (the route a
    /// gateway is reached by, for configuration checks).
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        let d = u32::from(dst);
        let mut present = self.present;
        while present != 0 {
            let len = 63 - present.leading_zeros();
            present &= !(1u64 << len);
            if let Some(v) = self.by_len[len as usize].get(&(d & mask(len as u8))) {
                if let Some(r) = v.first() {
                    return Some(r);
                }
            }
        }
        None
    }

    /// The routes of one prefix, in lookup order.
    pub fn aliases(&self, prefix: Ipv4Addr, len: u8) -> &[Route] {
        self.by_len
            .get(len as usize)
            .and_then(|t| t.get(&u32::from(prefix)))
            .map_or(&[], |v| v.as_slice())
    }

    /// All routes, longest prefix first (for display).
    pub fn routes(&self) -> Vec<Route> {
        let mut v: Vec<Route> = self
            .by_len
            .iter()
            .flat_map(|t| t.values().flatten().cloned())
            .collect();
        v.sort_by(|a, b| {
            b.len
                .cmp(&a.len)
                .then(a.prefix.cmp(&b.prefix))
                .then(b.tos.cmp(&a.tos))
                .then(a.metric.cmp(&b.metric))
        });
        v
    }

    pub fn len(&self) -> usize {
        self.by_len
            .iter()
            .map(|t| t.values().map(Vec::len).sum::<usize>())
            .sum()
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
        Route::unicast(Ipv4Addr::from(prefix & mask(len.min(32))), len, None, port)
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
                t.add(r.clone()).unwrap();
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
