//! IPv4 output: route resolution into a `dst`, datagram building
//! (`ip_make_skb`/`__ip_append_data`), and the output chain `ip_send_skb` →
//! `__ip_local_out` → `ip_output` → `ip_finish_output` → `ip_fragment` →
//! `ip_finish_output2` → the neighbour layer.
//!
//! A datagram under construction is a list of fragment mbufs (each its own
//! chain), laid out with Linux's geometry from the start: every fragment but
//! the last carries `(mtu - 20) & !7` bytes of IP payload, so fragmentation
//! only has to write each fragment's header (the `ip_fragment` fast path over
//! a frag list).

use super::checksum::{self, Checksum};
use super::fib_rules::Flowi4;
use super::route::{self, FibResult, RouteType};
use super::secret::{self, SipKey};
use super::wire::{self, IPPROTO_UDP, IP_DF, IP_MF};
use super::{Errno, HookPoint, Stack, Verdict};
use crate::ethdev::MacAddr;
use crate::mbuf::{ol, Mbuf, MbufError, Mempool, WmemAccount, MBUF_HDR_SIZE};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

const IP_MAX_MTU: usize = 65535;
/// Smallest path MTU accepted from ICMP (`ip_rt_min_pmtu`).
pub const MIN_PMTU: u32 = 552;
/// Lifetime of a learned path MTU (`ip_rt_mtu_expires`, 10 minutes).
pub const PMTU_EXPIRES_NS: u64 = 600 * 1_000_000_000;

/// Learned path MTUs (the route "exceptions" `__ip_rt_update_pmtu` creates).
#[derive(Debug, Default)]
pub(crate) struct PmtuCache {
    map: HashMap<Ipv4Addr, (u32, u64)>,
    pub generation: u64,
}

impl PmtuCache {
    pub fn get(&self, dst: Ipv4Addr, now: u64) -> Option<u32> {
        self.map
            .get(&dst)
            .filter(|(_, exp)| now < *exp)
            .map(|(m, _)| *m)
    }
    pub fn update(&mut self, dst: Ipv4Addr, mtu: u32, now: u64) {
        let mtu = mtu.max(MIN_PMTU);
        self.map.insert(dst, (mtu, now + PMTU_EXPIRES_NS));
        self.generation += 1;
    }
}

/// Per-destination IP ID generators (`ip_idents`): a hashed array of
/// counters with random starting points. Plays `__ip_select_ident` →
/// `ip_idents_reserve`: the bucket is a keyed SipHash of (daddr, saddr,
/// protocol) (`siphash_3u32(..., &net->ipv4.ip_id_key)`), the counters start
/// at random values (`ip_rt_init` fills `ip_idents` with random bytes), and
/// both the key and the start values are drawn once per process from the
/// kernel's randomness ([`super::secret`]), so successive runs never repeat
/// each other's IDs. Linux additionally adds a random step when time has
/// passed since a bucket's last use; here the step is always `segs`.
pub(crate) struct IpIdents {
    ids: Box<[u16]>,
    key: SipKey,
}

const IDENTS: usize = 2048;

impl IpIdents {
    /// `seed`: `None` draws a key from the per-process secret, fresh for
    /// this generator (Linux's behaviour, one host per stack); `Some` fixes
    /// it (reproducible captures and tests).
    pub fn new(seed: Option<u64>) -> IpIdents {
        let key = match seed {
            Some(s) => SipKey::fixed(s),
            None => SipKey::fresh(0x6970_5f69_6465_6e74), // "ip_ident"
        };
        let ids = (0..IDENTS as u64)
            .map(|i| secret::siphash_2u64(i, 0x1d, &key) as u16)
            .collect();
        IpIdents { ids, key }
    }
    /// Bucket for (daddr, saddr, protocol).
    pub fn bucket(&self, daddr: Ipv4Addr, saddr: Ipv4Addr, proto: u8) -> usize {
        let h = secret::hash_addrs_proto(daddr.into(), saddr.into(), proto, &self.key);
        h as usize & (IDENTS - 1)
    }
    /// Reserves `segs` consecutive IDs from a bucket; returns the first.
    #[inline]
    pub fn next(&mut self, b: usize, segs: u16) -> u16 {
        let id = self.ids[b];
        self.ids[b] = id.wrapping_add(segs);
        id
    }
}

/// How the link-layer destination is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextHop {
    /// Through the neighbour table entry (index, uid).
    Neigh { idx: usize, uid: u64 },
    /// Fixed link-layer destination: broadcast or a mapped multicast MAC.
    Fixed(MacAddr),
    /// One of our own addresses, or 127.0.0.0/8 (`RTN_LOCAL`): the packet
    /// goes to our own input through the local backlog, no neighbour.
    Local,
}

/// A resolved route with its neighbour — Linux's `dst_entry`/`rtable` as
/// `ip_route_output_flow` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dst {
    /// Route + PMTU generation it was resolved under.
    pub gen: u64,
    pub daddr: Ipv4Addr,
    pub saddr: Ipv4Addr,
    pub port: u16,
    pub mtu: u32,
    pub next: NextHop,
    pub broadcast: bool,
    pub multicast: bool,
    pub ident_bucket: usize,
}

/// IP-level parameters of one datagram (`inet_cork` + `ipcm_cookie` + `flowi4`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flow {
    pub dst: Dst,
    pub sport: u16,
    pub dport: u16,
    pub tos: u8,
    pub ttl: u8,
    pub pmtudisc: super::PmtuDisc,
    pub priority: u8,
    /// Flow hash every fragment carries (`skb->hash`).
    pub hash: u32,
    /// The socket's cached TX queue, if any (`sk_tx_queue_mapping`).
    pub txq: Option<u16>,
    pub no_check: bool,
    /// Per-socket ID source when the socket is connected (DF datagrams).
    pub connected: bool,
    pub confirm: bool,
    /// Corked (MSG_MORE/UDP_CORK): the checksum is never offloaded.
    pub corked: bool,
    /// The socket's `IP_RECVERR`: `udp_send_skb` reports ENOBUFS from
    /// below instead of hiding it in `SndbufErrors`.
    pub recverr: bool,
    /// `IP_MULTICAST_LOOP`.
    pub mc_loop: bool,
    /// The socket's `IP_OPTIONS` (`ipc.opt`), built into every header.
    pub opt: Option<super::ipopt::IpOptions>,
    /// The final destination (`cork->addr`): `dst.daddr` unless a source
    /// route sends the datagram to its first hop.
    pub final_daddr: Ipv4Addr,
}

impl Flow {
    /// IPv4 header length with the options (`fragheaderlen`).
    #[inline]
    pub fn ip_hlen(&self) -> usize {
        wire::IPV4_MIN_HLEN + self.opt.map_or(0, |o| o.len as usize)
    }
}

/// A datagram being built (`sk_write_queue` while corked).
pub(crate) struct Pending {
    pub frags: Vec<Mbuf>,
    /// Bytes of IP payload so far, UDP header included (`cork->length`).
    pub length: usize,
    pub csum: Checksum,
    pub flow: Option<Flow>,
    /// `SO_TIMESTAMPING` TX_SOFTWARE: the datagram's first packet asks for
    /// a timestamp with this key (`cork->tx_flags`, `tskey`).
    pub tskey: Option<u32>,
}

impl Default for Pending {
    /// An empty value (no allocation), for slots not in use.
    fn default() -> Pending {
        Pending {
            frags: Vec::new(),
            length: 0,
            csum: Checksum::new(),
            flow: None,
            tskey: None,
        }
    }
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            frags: Vec::with_capacity(48),
            length: 0,
            csum: Checksum::new(),
            flow: None,
            tskey: None,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.flow.is_none()
    }
    /// Drops the pending datagram (`ip_flush_pending_frames`).
    pub fn flush(&mut self) {
        self.frags.clear();
        self.length = 0;
        self.csum = Checksum::new();
        self.flow = None;
        self.tskey = None;
    }
}

/// Largest IP payload per non-final fragment for `mtu` (`maxfraglen - fragheaderlen`).
#[inline]
pub(crate) fn frag_payload(mtu: u32, hlen: usize) -> usize {
    (mtu as usize - hlen) & !7
}

/// Socket send-buffer state handed to the append path.
pub(crate) struct SndBuf<'a> {
    pub acct: &'a Arc<WmemAccount>,
    pub sndbuf: u64,
}

fn alloc_charged(pool: &mut Mempool, sb: &SndBuf<'_>, first: bool) -> Result<Mbuf, Errno> {
    // sock_alloc_send_skb for the first buffer: EAGAIN once the buffer is
    // full; alloc_skb for later ones: up to twice the buffer, then ENOBUFS.
    let inflight = sb.acct.in_flight();
    if first {
        if inflight >= sb.sndbuf {
            return Err(Errno::EAGAIN);
        }
    } else if inflight > 2 * sb.sndbuf {
        return Err(Errno::ENOBUFS);
    }
    let mut m = pool.alloc().ok_or(Errno::ENOBUFS)?;
    let truesize = (m.buf_len() + MBUF_HDR_SIZE) as u32;
    m.charge_wmem(sb.acct, truesize);
    Ok(m)
}

/// Appends `data` to the chain `m`, adding charged segments when the last is full.
fn chain_append(
    m: &mut Mbuf,
    mut data: &[u8],
    pool: &mut Mempool,
    sb: &SndBuf<'_>,
) -> Result<(), Errno> {
    while !data.is_empty() {
        match m.append(data.len()) {
            Ok(dst) => {
                dst.copy_from_slice(data);
                return Ok(());
            }
            Err(MbufError::NoTailroom { have, .. }) if have > 0 => {
                let dst = m.append(have).map_err(|_| Errno::ENOBUFS)?;
                dst.copy_from_slice(&data[..have]);
                data = &data[have..];
            }
            Err(_) => {
                let mut seg = alloc_charged(pool, sb, false)?;
                // Segments after the first need no headroom.
                let hr = seg.headroom();
                seg.prepend(hr).map_err(|_| Errno::ENOBUFS)?;
                seg.set_len(0).map_err(|_| Errno::ENOBUFS)?;
                m.chain(seg);
            }
        }
    }
    Ok(())
}

impl Stack {
    /// Route + PMTU generation: a cached [`Dst`] is valid while it matches.
    #[inline]
    pub(crate) fn dst_gen(&self) -> u64 {
        self.fib.generation() + self.pmtu.generation
    }

    /// Plays the part of `ip_route_output_ports`: the route for a flow given
    /// by addresses only (TCP, ICMP replies). `saddr` is the source the
    /// socket has, `oif` the port it asked for.
    pub(crate) fn route_output(
        &mut self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
        oif: Option<u16>,
    ) -> Result<Dst, Errno> {
        let mut fl = Flowi4::new(daddr);
        fl.saddr = saddr.unwrap_or(Ipv4Addr::UNSPECIFIED);
        fl.oif = oif;
        self.ip_route_output_key(&fl)
    }

    /// Plays the part of `ip_route_output_flow` → `__ip_route_output_key`:
    /// resolves where the flow `fl` goes and binds the neighbour. The seed's
    /// kernel first probes its global route cache; here the cache is the
    /// `Dst` a connected socket keeps (valid while [`Stack::dst_gen`] is
    /// unchanged), so every call is the slow path. The caller counts
    /// `OutNoRoutes` on ENETUNREACH.
    #[inline]
    pub(crate) fn ip_route_output_key(&mut self, fl: &Flowi4) -> Result<Dst, Errno> {
        self.ip_route_output_slow(fl)
    }

    /// Plays the part of `ip_route_output_slow` (`ip_route_output_key_hash_rcu`
    /// in kernels since 4.x), in the seed's order: source checks (not
    /// multicast, broadcast or 0.x; ours, else `EINVAL`); a multicast or
    /// limited-broadcast flow with a source and no `oif` leaves by the
    /// source's port; with `oif`, a link-local multicast or limited
    /// broadcast goes straight out of it; no destination means ourselves;
    /// then [`Fib::fib_lookup`] through the rules. A failed lookup with `oif`
    /// set assumes the destination on that link (`--ANK`'s rule). A `local`
    /// result goes to the loopback; a multipath route picks its next hop by
    /// flow hash ([`Stack::fib_select_multipath`]), a default route among
    /// its alternatives by neighbour state ([`Stack::fib_select_default`]).
    fn ip_route_output_slow(&mut self, fl0: &Flowi4) -> Result<Dst, Errno> {
        let mut fl = *fl0;
        let (daddr, has_src) = (fl.daddr, !fl.saddr.is_unspecified());
        let limited_bcast = daddr.is_broadcast();
        if has_src {
            let s = fl.saddr;
            if s.is_multicast() || s.is_broadcast() || s.octets()[0] == 0 {
                return Err(Errno::EINVAL);
            }
            let sport = self.port_of_addr(s);
            if sport.is_none() && !s.is_loopback() {
                return Err(Errno::EINVAL);
            }
            if let (None, Some(p), true) = (fl.oif, sport, daddr.is_multicast() || limited_bcast) {
                fl.oif = Some(p);
                return self.mkroute_output(&fl, &Self::link_res(p));
            }
        }
        if let Some(o) = fl.oif {
            let pa = self.ports.get(o as usize).ok_or(Errno::ENODEV)?.conf.addr;
            let local_mc = u32::from(daddr) & 0xffff_ff00 == 0xe000_0000;
            if local_mc || limited_bcast {
                if !has_src {
                    fl.saddr = pa;
                }
                return self.mkroute_output(&fl, &Self::link_res(o));
            }
            if !has_src && daddr.is_multicast() {
                fl.saddr = pa;
            }
        }
        if daddr.is_unspecified() {
            // No destination: this host (`INADDR_LOOPBACK` if no source either).
            fl.daddr = if has_src {
                fl.saddr
            } else {
                Ipv4Addr::LOCALHOST
            };
            fl.saddr = fl.daddr;
            let mut r = Self::link_res(fl.oif.unwrap_or(0));
            r.rtype = RouteType::Local;
            return self.mkroute_output(&fl, &r);
        }
        let mut res = match self.fib.fib_lookup(&fl) {
            Ok(r) => r,
            Err(e) => match fl.oif {
                Some(o) => {
                    if !has_src {
                        fl.saddr = self.ports[o as usize].conf.addr;
                    }
                    return self.mkroute_output(&fl, &Self::link_res(o));
                }
                None => return Err(e),
            },
        };
        if res.rtype == RouteType::Local {
            if !has_src {
                fl.saddr = if res.src.is_unspecified() {
                    daddr
                } else {
                    res.src
                };
            }
            if daddr.is_loopback() {
                res.port = fl.oif.unwrap_or(res.port);
            }
            return self.mkroute_output(&fl, &res);
        }
        if res.nhs > 1 && fl.oif.is_none() {
            self.fib_select_multipath(&mut res, &fl);
        } else if res.len == 0 && res.rtype == RouteType::Unicast && fl.oif.is_none() {
            self.fib_select_default(&mut res, &fl);
        }
        if !has_src {
            fl.saddr = if res.src.is_unspecified() {
                self.ports[res.port as usize].conf.addr
            } else {
                res.src
            };
        }
        self.mkroute_output(&fl, &res)
    }

    /// An on-link unicast result through port `p` (no table entry).
    fn link_res(p: u16) -> FibResult {
        FibResult {
            prefix: Ipv4Addr::UNSPECIFIED,
            len: 0,
            rtype: RouteType::Unicast,
            scope: route::RT_SCOPE_LINK,
            tos: 0,
            metric: 0,
            gateway: None,
            port: p,
            src: Ipv4Addr::UNSPECIFIED,
            mtu: None,
            nhs: 1,
            nh_sel: 0,
            table: 0,
        }
    }

    /// Plays the part of `ip_mkroute_output` → `__mkroute_output`: the
    /// `dst` for a lookup result. The limited broadcast is `RTN_BROADCAST`,
    /// a class-D destination `RTN_MULTICAST`, a 0.x destination `EINVAL`.
    /// A `local` result is the loopback (`NextHop::Local`) unless its port
    /// is itself a loopback device (`PortConf::noarp`), which then carries
    /// the packet (and is seen there), as `lo` does in Linux. The MTU is
    /// the route's or the port's, lowered by a learned path MTU; a local
    /// route keeps the port's (a larger datagram is fragmented and
    /// reassembled on input: Linux's `lo` takes 65536 bytes at once; the
    /// bytes delivered are the same).
    fn mkroute_output(&mut self, fl: &Flowi4, res: &FibResult) -> Result<Dst, Errno> {
        let daddr = fl.daddr;
        let multicast = daddr.is_multicast();
        if !daddr.is_broadcast() && !multicast && daddr.octets()[0] == 0 {
            return Err(Errno::EINVAL);
        }
        let port = res.port;
        let pc = &self.ports.get(port as usize).ok_or(Errno::ENODEV)?.conf;
        let broadcast = daddr.is_broadcast() || res.rtype == RouteType::Broadcast;
        let local = res.rtype == RouteType::Local && !broadcast && !multicast;
        let mut mtu = res.mtu.unwrap_or(pc.mtu).min(pc.mtu);
        let (noarp, src) = (pc.noarp, fl.saddr);
        let next = if local && !noarp {
            NextHop::Local
        } else if broadcast {
            NextHop::Fixed(MacAddr::BROADCAST)
        } else if multicast {
            NextHop::Fixed(wire::ipv4_multicast_mac(daddr))
        } else {
            let nh = if local {
                daddr
            } else {
                res.gateway.unwrap_or(daddr)
            };
            let now = self.now;
            // A full table leaves the dst without an entry (NO_NEIGH): its
            // packets fail with ENOBUFS in neigh_output, and the dst is
            // never valid for a cache, so the next send tries again.
            match self.neigh.lookup_or_create(port, nh, &self.counters, now) {
                Some(idx) => NextHop::Neigh {
                    idx,
                    uid: self.neigh.get(idx).map_or(0, |n| n.uid),
                },
                None => NextHop::Neigh {
                    idx: super::neigh::NO_NEIGH,
                    uid: 0,
                },
            }
        };
        if !local {
            if let Some(p) = self.pmtu.get(daddr, self.now) {
                mtu = mtu.min(p);
            }
        }
        Ok(Dst {
            gen: self.dst_gen(),
            daddr,
            saddr: src,
            port,
            mtu,
            next,
            broadcast,
            multicast,
            ident_bucket: self.ident.bucket(daddr, src, IPPROTO_UDP),
        })
    }

    /// Plays the part of `fib_multipath_hash` + `fib_select_multipath`: the
    /// flow's 31-bit hash (policy 0: source and destination address; 1:
    /// with protocol and ports) picks the first next hop whose
    /// `upper_bound` it does not exceed (hash-threshold, RFC 2992), so one
    /// flow keeps one path and the weights share the hash space.
    pub(crate) fn fib_select_multipath(&self, res: &mut FibResult, fl: &Flowi4) {
        let Some(t) = self.fib.table(res.table) else {
            return;
        };
        let Some(r) = t
            .aliases(res.prefix, res.len)
            .iter()
            .find(|r| r.tos == res.tos && r.metric == res.metric)
        else {
            return;
        };
        let h = if self.fib_multipath_hash_policy == 1 {
            secret::flow_hash4(
                fl.saddr.into(),
                fl.daddr.into(),
                fl.sport,
                fl.dport,
                fl.proto,
                &self.hash_key,
            )
        } else {
            secret::hash_addrs_proto(fl.daddr.into(), fl.saddr.into(), 0, &self.hash_key) as u32
        } >> 1;
        if let Some((i, nh)) = r
            .nexthops
            .iter()
            .enumerate()
            .find(|(_, nh)| h <= nh.upper_bound)
        {
            res.gateway = nh.gateway;
            res.port = nh.port;
            res.nh_sel = i as u8;
        }
    }

    /// Plays the part of `fib_select_default`: when the answer is a default
    /// route of a table with several, the alternatives of the same TOS and
    /// scope (unicast through a gateway) are tried in metric order, and the
    /// first whose gateway is not dead by `fib_detect_death` wins; else the
    /// last resort (a valid but not reachable one), else the answer stands.
    /// The table remembers its last choice (`fa_default`), so a flow moves
    /// off a gateway only when its neighbour entry says it is gone.
    pub(crate) fn fib_select_default(&self, res: &mut FibResult, fl: &Flowi4) {
        let Some(t) = self.fib.table(res.table) else {
            return;
        };
        let aliases = t.aliases(res.prefix, 0);
        if aliases.len() < 2 {
            return; // tb_num_default <= 1
        }
        let dflt = t.fa_default.get();
        let (mut fi, mut last_resort, mut last_idx) = (None::<usize>, None::<usize>, -1i32);
        let (mut order, mut first, mut last_prio, mut last_tos) = (-1i32, false, res.metric, 0u8);
        for (i, a) in aliases.iter().enumerate() {
            if a.tos != 0 && a.tos != fl.tos & route::IPTOS_RT_MASK {
                continue;
            }
            if a.metric > last_prio && a.tos == last_tos {
                if last_tos != 0 {
                    continue;
                }
                break;
            }
            (last_tos, last_prio) = (a.tos, a.metric);
            if a.scope != res.scope || a.rtype != RouteType::Unicast || a.gateway.is_none() {
                continue;
            }
            match fi {
                None => {
                    if !(a.tos == res.tos && a.metric == res.metric) {
                        break;
                    }
                    first = true;
                }
                Some(f) => {
                    if !self.fib_detect_death(
                        &aliases[f],
                        order,
                        &mut last_resort,
                        &mut last_idx,
                        dflt,
                        f,
                    ) {
                        Self::assign(res, &aliases[f]);
                        t.fa_default.set(order);
                        return;
                    }
                }
            }
            fi = Some(i);
            order += 1;
        }
        let Some(f) = fi.filter(|_| order > 0) else {
            if first {
                t.fa_default.set(-1);
            }
            return;
        };
        if !self.fib_detect_death(&aliases[f], order, &mut last_resort, &mut last_idx, dflt, f) {
            Self::assign(res, &aliases[f]);
            t.fa_default.set(order);
            return;
        }
        if let Some(lr) = last_resort.filter(|_| last_idx >= 0) {
            Self::assign(res, &aliases[lr]);
        }
        t.fa_default.set(last_idx);
    }

    /// `fib_detect_death`: is the gateway of alias `a` (number `order`)
    /// unusable? No entry or REACHABLE: alive. Valid and not the last
    /// choice: alive. Else dead, but a valid one (or, before any, one not
    /// INCOMPLETE past the last choice) becomes the last resort.
    fn fib_detect_death(
        &self,
        a: &route::Route,
        order: i32,
        last_resort: &mut Option<usize>,
        last_idx: &mut i32,
        dflt: i32,
        idx: usize,
    ) -> bool {
        let Some(gw) = a.gateway else {
            return false;
        };
        let Some(state) = self.neigh.state(a.port, gw) else {
            return false;
        };
        if state == super::NudState::Reachable {
            return false;
        }
        if state.valid() && order != dflt {
            return false;
        }
        if state.valid() || (*last_idx < 0 && order > dflt && state != super::NudState::Incomplete)
        {
            *last_resort = Some(idx);
            *last_idx = order;
        }
        true
    }

    fn assign(res: &mut FibResult, a: &route::Route) {
        res.gateway = a.gateway;
        res.port = a.port;
        res.src = a.src;
        res.mtu = a.mtu;
        res.metric = a.metric;
        res.scope = a.scope;
    }

    /// Is a cached dst still usable (tables unchanged, neighbour slot not reused)?
    #[inline]
    pub(crate) fn dst_valid(&self, d: &Dst) -> bool {
        if d.gen != self.dst_gen() {
            return false;
        }
        match d.next {
            NextHop::Fixed(_) | NextHop::Local => true,
            NextHop::Neigh { idx, uid } => self.neigh.get(idx).is_some_and(|n| n.uid == uid),
        }
    }

    /// Plays `ip_append_data` / `__ip_append_data`: appends `data` to the
    /// pending datagram `p`, filling fragments with Linux's geometry.
    /// `EMSGSIZE` when the datagram would exceed what it may become (the path
    /// MTU with `IP_PMTUDISC_DO`, else 64 KiB).
    pub(crate) fn ip_append_data(
        &mut self,
        p: &mut Pending,
        data: &[u8],
        sb: &SndBuf<'_>,
    ) -> Result<(), Errno> {
        let flow = p.flow.as_ref().expect("flow set before append");
        let mtu = flow.dst.mtu as usize;
        let maxnonfrag = if flow.pmtudisc.sets_df_always() {
            mtu
        } else {
            IP_MAX_MTU
        };
        let transhdr = if p.frags.is_empty() {
            wire::UDP_HLEN
        } else {
            0
        };
        let hlen = flow.ip_hlen();
        if p.length + transhdr + data.len() > maxnonfrag - hlen {
            return Err(Errno::EMSGSIZE);
        }
        let fragmax = frag_payload(flow.dst.mtu, hlen);
        if p.frags.is_empty() {
            let mut m = alloc_charged(&mut self.pool, sb, true)?;
            // Room for the UDP header, written at push time.
            m.append(wire::UDP_HLEN).map_err(|_| Errno::ENOBUFS)?;
            p.frags.push(m);
            p.length = wire::UDP_HLEN;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let last = p.frags.last_mut().expect("one fragment at least");
            let room = fragmax.saturating_sub(last.pkt_len());
            if room == 0 {
                let m = alloc_charged(&mut self.pool, sb, false)?;
                p.frags.push(m);
                continue;
            }
            let n = room.min(rest.len());
            chain_append(last, &rest[..n], &mut self.pool, sb)?;
            p.csum.add(&rest[..n]);
            p.length += n;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// [`Stack::ip_append_data`] for a caller's buffer whose data is the
    /// payload: plays the part `ip_make_skb` → `__ip_append_data` has for a
    /// `MSG_ZEROCOPY` send (the payload is not copied; the skb the stack
    /// sends is built around it): the buffer becomes the datagram's one
    /// fragment, its headroom taking the UDP header now and the IPv4 and
    /// link-layer headers at output (`skb_push` in `udp_send_skb`,
    /// `ip_send_skb`, `neigh_hh_output`), charged to the socket's send
    /// buffer as `sock_alloc_send_skb` charges the buffer it allocates.
    ///
    /// A datagram that must be fragmented (larger than the path MTU), or
    /// that is appended to a corked one, is copied by `ip_append_data`
    /// instead, as Linux copies a zerocopy send it cannot map
    /// (`SO_EE_CODE_ZEROCOPY_COPIED`); `m` is freed then.
    ///
    /// Errors: `EINVAL` when the headroom cannot take the UDP, IPv4 and
    /// link-layer headers; `EAGAIN` when the send buffer is full;
    /// `EMSGSIZE` as `ip_append_data`.
    pub(crate) fn ip_append_mbuf(
        &mut self,
        p: &mut Pending,
        mut m: Mbuf,
        sb: &SndBuf<'_>,
    ) -> Result<(), Errno> {
        let flow = p.flow.as_ref().expect("flow set before append");
        let hlen = flow.ip_hlen();
        let len = m.pkt_len();
        let fits = p.frags.is_empty() && wire::UDP_HLEN + len + hlen <= flow.dst.mtu as usize;
        if !fits {
            // Fragmentation (or a corked datagram): the copying path.
            let mut r = Ok(());
            for s in m.segments() {
                r = self.ip_append_data(p, s.data, sb);
                if r.is_err() {
                    break;
                }
            }
            return r;
        }
        let l2 = if self.ports[flow.dst.port as usize].conf.vlan.is_some() {
            18
        } else {
            wire::ETH_HLEN
        };
        if m.headroom() < wire::UDP_HLEN + hlen + l2 {
            return Err(Errno::EINVAL);
        }
        // sock_alloc_send_skb's check on the datagram's first buffer.
        if sb.acct.in_flight() >= sb.sndbuf {
            return Err(Errno::EAGAIN);
        }
        // What the buffer carried in from a receive (offload flags, RSS
        // hash, VLAN tag, owner cookie) is not the new packet's.
        m.set_ol_flags(0);
        m.set_vlan_tci(0);
        m.set_hash(0);
        m.set_user(0);
        m.set_priority(0);
        m.set_tx_lens(0, 0, 0);
        if m.wmem_charge() == 0 {
            let truesize = (m.nb_segs() * (m.buf_len() + MBUF_HDR_SIZE)) as u32;
            m.charge_wmem(sb.acct, truesize);
        }
        // Else the buffer is still charged to the socket that sent it (a
        // `ring:` port hands the sender's own buffer across, as a veth skb
        // arrives before `skb_orphan`): that charge stays and is released
        // when the buffer is freed — a buffer has one account.
        for s in m.segments() {
            p.csum.add(s.data);
        }
        // Room for the UDP header, written at push time (as ip_append_data
        // leaves it); the headroom check above makes this succeed.
        m.prepend(wire::UDP_HLEN).map_err(|_| Errno::EINVAL)?;
        p.frags.push(m);
        p.length = wire::UDP_HLEN + len;
        Ok(())
    }

    /// Plays `udp_push_pending_frames` → `udp_send_skb` (UDP header and
    /// checksum: software, `udp4_hwcsum` offload, or none with SO_NO_CHECK)
    /// → `ip_send_skb`. Empties `p`. `Ok` if handed to IP (`OutDatagrams`).
    pub(crate) fn udp_push_pending_frames(
        &mut self,
        p: &mut Pending,
        inet_id: &mut u16,
    ) -> Result<(), Errno> {
        let Some(flow) = p.flow else {
            return Ok(());
        };
        let mtu = flow.dst.mtu as usize;
        // A datagram that fits the MTU goes out whole: pull a short tail
        // fragment (< 8 bytes) back into the first (what `fraggap` does).
        if p.frags.len() == 2 && p.length + flow.ip_hlen() <= mtu {
            let tail = p.frags.pop().expect("two fragments");
            let mut buf = [0u8; 8];
            let mut n = 0;
            for s in tail.segments() {
                buf[n..n + s.data.len()].copy_from_slice(s.data);
                n += s.data.len();
            }
            drop(tail);
            let head = &mut p.frags[0];
            match head.append(n) {
                Ok(d) => d.copy_from_slice(&buf[..n]),
                Err(_) => {
                    p.flush();
                    self.counters.ip.out_discards.add(1);
                    return Err(Errno::ENOBUFS);
                }
            }
        }
        let ulen = p.length as u16;
        let fragmented = p.frags.len() > 1;
        let port_ol = self.ports[flow.dst.port as usize].conf.tx_offloads;
        let (src, dst) = (flow.dst.saddr, flow.dst.daddr);
        let hdr_sum = flow.sport as u64 + flow.dport as u64 + ulen as u64;
        let mut ol_flags = 0u32;
        let check = if flow.no_check {
            0
        } else if !fragmented && !flow.corked && port_ol & ol::TX_UDP_CKSUM != 0 {
            // udp4_hwcsum: the NIC finishes the sum; seed the pseudo-header.
            ol_flags = ol::TX_UDP_CKSUM | ol::TX_IPV4;
            checksum::fold(checksum::pseudo_header_sum(src, dst, IPPROTO_UDP, ulen))
        } else {
            let mut c = p.csum;
            c.add_sum(checksum::pseudo_header_sum(src, dst, IPPROTO_UDP, ulen) + hdr_sum);
            match c.finish() {
                0 => 0xffff, // CSUM_MANGLED_0
                v => v,
            }
        };
        {
            let h = &mut p.frags[0].data_mut()[..wire::UDP_HLEN];
            h[0..2].copy_from_slice(&flow.sport.to_be_bytes());
            h[2..4].copy_from_slice(&flow.dport.to_be_bytes());
            h[4..6].copy_from_slice(&ulen.to_be_bytes());
            h[6..8].copy_from_slice(&check.to_be_bytes());
        }
        if ol_flags != 0 {
            p.frags[0].set_ol_flags(ol_flags);
        }
        if let Some(k) = p.tskey.take() {
            // __ip_append_data: tx_flags and tskey on the first skb only.
            p.frags[0].request_sw_tstamp(k);
        }
        let r = self.ip_send_skb(p, &flow, inet_id);
        p.flush();
        match r {
            Ok(()) => {
                self.counters.udp.out_datagrams.add(1);
                Ok(())
            }
            Err(Errno::ENOBUFS) if !flow.recverr => {
                // udp_send_skb: ENOBUFS from below is counted, not
                // reported (unless IP_RECVERR).
                self.counters.udp.sndbuf_errors.add(1);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Plays `ip_make_skb`'s header part + `ip_send_skb` → `__ip_local_out` →
    /// `ip_output` → `ip_finish_output` → `ip_fragment` → `ip_finish_output2`.
    fn ip_send_skb(
        &mut self,
        p: &mut Pending,
        flow: &Flow,
        inet_id: &mut u16,
    ) -> Result<(), Errno> {
        let hlen = flow.ip_hlen();
        let total = p.length + hlen;
        let mtu = flow.dst.mtu as usize;
        let nfrags = p.frags.len();
        // DF by PMTU mode (__ip_make_skb): DO/PROBE always; WANT when it fits.
        let df = flow.pmtudisc.sets_df_always()
            || (flow.pmtudisc == super::PmtuDisc::Want && total <= mtu);
        // ip_select_ident: DF + connected → per-socket counter; DF otherwise 0;
        // else per destination.
        let id = if df {
            if flow.connected {
                let id = *inet_id;
                *inet_id = id.wrapping_add(1);
                id
            } else {
                0
            }
        } else {
            self.ident.next(flow.dst.ident_bucket, 1)
        };
        self.counters.ip.out_requests.add(1);
        if df && total > mtu {
            // ip_fragment with DF: cannot.
            self.counters.ip.frag_fails.add(1);
            return Err(Errno::EMSGSIZE);
        }
        let mut tmpl = wire::Ipv4Header {
            tos: flow.tos,
            total_len: 0,
            id,
            frag: if df { IP_DF } else { 0 },
            ttl: flow.ttl,
            protocol: IPPROTO_UDP,
            src: flow.dst.saddr,
            dst: flow.dst.daddr,
            ..Default::default()
        };
        if let Some(o) = flow.opt.as_ref() {
            // ip_options_build: options in the header, RR/TS/SRR filled.
            tmpl.options_len = o.len;
            super::ipopt::ip_options_build(&mut tmpl.options, o, flow.final_daddr, flow.dst.saddr);
        }
        let mut hb = [0u8; 60];
        tmpl.emit(&mut hb);
        let mut base_check = u16::from_be_bytes([hb[10], hb[11]]);
        let mut offset = 0usize;
        let mut result = Ok(());
        let mut frags = std::mem::take(&mut p.frags);
        for (i, mut m) in frags.drain(..).enumerate() {
            if result.is_err() {
                // ip_fragment: the rest of the list is freed after a failure.
                continue;
            }
            if i == 1 && hlen > wire::IPV4_MIN_HLEN {
                // ip_options_fragment: later fragments carry only the
                // copied options (the others become NOPs, same length).
                super::ipopt::ip_options_fragment(&mut hb[wire::IPV4_MIN_HLEN..hlen]);
                wire::ipv4_set_checksum(&mut hb[..hlen]);
                base_check = u16::from_be_bytes([hb[10], hb[11]]);
            }
            let plen = m.pkt_len();
            let tot = (plen + hlen) as u16;
            let mut fw = if df { IP_DF } else { 0 } | (offset / 8) as u16;
            if i + 1 < nfrags {
                fw |= IP_MF;
            }
            // Patch length and fragment word into the template (RFC 1624).
            let mut c = checksum::update16(base_check, 0, tot);
            c = checksum::update16(c, tmpl.frag, fw);
            match m.prepend(hlen) {
                Ok(h) => {
                    h.copy_from_slice(&hb[..hlen]);
                    h[2..4].copy_from_slice(&tot.to_be_bytes());
                    h[6..8].copy_from_slice(&fw.to_be_bytes());
                    h[10..12].copy_from_slice(&c.to_be_bytes());
                }
                Err(_) => {
                    result = Err(Errno::ENOBUFS);
                    continue;
                }
            }
            m.set_priority(flow.priority);
            m.set_hash(flow.hash);
            if let Some(q) = flow.txq {
                super::set_tx_queue_mapping(&mut m, q);
            }
            let l4 = if i == 0 { wire::UDP_HLEN as u8 } else { 0 };
            m.set_tx_lens(0, hlen as u8, l4);
            if nfrags > 1 {
                self.counters.ip.frag_creates.add(1);
            }
            offset += plen;
            if flow.dst.multicast {
                // ip_mc_output: a group joined on the way out, with
                // IP_MULTICAST_LOOP, is also looped back (dev_loopback_xmit);
                // TTL 0 stays on this host.
                if flow.mc_loop && self.mc.is_member(flow.dst.port, flow.dst.daddr) {
                    match super::udp::copy_mbuf(&mut self.pool, &m) {
                        Some(c) => {
                            let _ = self.loopback_xmit(flow.dst.port, c);
                        }
                        None => self.counters.rx.dropped.add(1),
                    }
                }
                if flow.ttl == 0 {
                    continue;
                }
            }
            result = self.ip_output_one(m, &flow.dst, flow.confirm && i == 0);
        }
        p.frags = frags;
        if nfrags > 1 {
            if result.is_ok() {
                self.counters.ip.frag_oks.add(1);
            } else {
                self.counters.ip.frag_fails.add(1);
            }
        }
        if result.is_err() {
            self.counters.ip.out_discards.add(1);
        }
        result
    }

    /// Runs the hooks, then plays `ip_finish_output2` → `neigh_output`.
    pub(crate) fn ip_output_one(
        &mut self,
        mut m: Mbuf,
        d: &Dst,
        confirm: bool,
    ) -> Result<(), Errno> {
        if !self.hooks.is_empty() {
            for point in [HookPoint::LocalOut, HookPoint::PostRouting] {
                for h in self.hooks.iter_mut() {
                    if h(point, &mut m) == Verdict::Drop {
                        return Err(Errno::EPERM);
                    }
                }
            }
        }
        self.ip_finish_output2(m, d, confirm)
    }

    /// Plays `ip_finish_output2` (+ `neigh_output`): hands the packet to the
    /// neighbour entry of the next hop, or frames it directly for broadcast
    /// and multicast destinations.
    pub(crate) fn ip_finish_output2(
        &mut self,
        mut m: Mbuf,
        d: &Dst,
        confirm: bool,
    ) -> Result<(), Errno> {
        let now = self.now;
        let mut next = d.next;
        if let NextHop::Neigh { idx, uid } = next {
            // (NO_NEIGH: this dst's own creation attempt just failed and
            // was counted; neigh_output reports it.)
            if idx != super::neigh::NO_NEIGH && self.neigh.get(idx).is_none_or(|n| n.uid != uid) {
                // The entry was collected while this dst was held (a long
                // cork): resolve the next hop again.
                next = self.route_output(d.daddr, Some(d.saddr), None)?.next;
            }
        }
        match next {
            NextHop::Neigh { idx, .. } => {
                if confirm {
                    self.neigh.confirm(idx, now);
                }
                let (neigh, mut io) = self.split_neigh();
                neigh.neigh_output(idx, m, &mut io, now)
            }
            NextHop::Local => self.loopback_xmit(d.port, m),
            NextHop::Fixed(mac) => {
                let pc = &self.ports[d.port as usize].conf;
                let l2len = if pc.vlan.is_some() { 18 } else { 14 };
                let (src, vlan) = (pc.mac, pc.vlan);
                let h = m.prepend(l2len).map_err(|_| Errno::ENOBUFS)?;
                super::neigh::build_l2(h, mac, src, vlan, wire::ETHERTYPE_IPV4);
                let (_, l3, l4) = m.tx_lens();
                m.set_tx_lens(l2len as u8, l3, l4);
                self.xmit.queue_xmit(d.port, m).map_err(|_| Errno::ENOBUFS)
            }
        }
    }

    /// Builds and sends an IPv4 packet with `payload` as its body (for ICMP
    /// replies and errors): `ip_push_pending_frames` for a one-shot packet.
    pub(crate) fn ip_send_simple(
        &mut self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
        proto: u8,
        tos: u8,
        build: impl FnOnce(&mut [u8]),
        len: usize,
    ) -> Result<(), Errno> {
        let d = match self.route_output(daddr, saddr, None) {
            Ok(d) => d,
            Err(e) => {
                self.counters.ip.out_no_routes.add(1);
                return Err(e);
            }
        };
        if len + wire::IPV4_MIN_HLEN > d.mtu as usize {
            return Err(Errno::EMSGSIZE);
        }
        let mut m = self.pool.alloc().ok_or(Errno::ENOBUFS)?;
        let b = m
            .append(wire::IPV4_MIN_HLEN + len)
            .map_err(|_| Errno::ENOBUFS)?;
        build(&mut b[wire::IPV4_MIN_HLEN..]);
        let id = self.ident.next(d.ident_bucket, 1);
        wire::Ipv4Header {
            tos,
            total_len: (wire::IPV4_MIN_HLEN + len) as u16,
            id,
            frag: 0,
            ttl: self.default_ttl,
            protocol: proto,
            src: d.saddr,
            dst: daddr,
            ..Default::default()
        }
        .emit(b);
        m.set_tx_lens(0, wire::IPV4_MIN_HLEN as u8, 0);
        self.counters.ip.out_requests.add(1);
        let r = self.ip_output_one(m, &d, false);
        if r.is_err() {
            self.counters.ip.out_discards.add(1);
        }
        r
    }

    /// Plays the part of `loopback_xmit` → `netif_rx`
    /// (`enqueue_to_backlog`): the IPv4 packet `m` joins the local backlog
    /// of at most [`LOCAL_BACKLOG`] packets (`netdev_max_backlog`), to be
    /// received by [`Stack::process_backlog`]; a full backlog drops it
    /// (`rx.dropped`, as softnet's `dropped`). Checksums the device would
    /// have filled in are finished or, for L4, vouched for: Linux's `lo`
    /// passes a `CHECKSUM_PARTIAL` packet on as valid.
    pub(crate) fn loopback_xmit(&mut self, port: u16, mut m: Mbuf) -> Result<(), Errno> {
        let flags = m.ol_flags();
        if flags & ol::TX_IP_CKSUM != 0 {
            let d = m.data_mut();
            if d.len() >= wire::IPV4_MIN_HLEN {
                let ihl = ((d[0] & 0xf) as usize * 4).clamp(wire::IPV4_MIN_HLEN, d.len());
                d[10..12].copy_from_slice(&[0, 0]);
                let c = !checksum::fold(checksum::sum(&d[..ihl]));
                d[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        m.set_ol_flags((flags & !ol::TX_OFFLOAD_MASK) | ol::RX_L4_CKSUM_GOOD);
        if self.backlog.len() >= LOCAL_BACKLOG {
            self.counters.rx.dropped.add(1);
            return Err(Errno::ENOBUFS);
        }
        self.backlog.push_back((port, m));
        Ok(())
    }

    /// Plays the part of `process_backlog` for the loopback device: every
    /// packet sent to ourselves goes through IPv4 input (`ip_rcv` →
    /// `ip_local_deliver`) to its socket. Runs from [`Stack::poll_timers`],
    /// [`Stack::flush`] and after a received burst; a reply it triggers
    /// (an ICMP error to ourselves) waits for the next round.
    pub fn process_backlog(&mut self) {
        for _ in 0..self.backlog.len() {
            let Some((port, m)) = self.backlog.pop_front() else {
                break;
            };
            self.ip_rcv_local(port, m);
        }
    }
}

/// Packets the local backlog holds (Linux `netdev_max_backlog`, default 1000).
pub const LOCAL_BACKLOG: usize = 1000;
