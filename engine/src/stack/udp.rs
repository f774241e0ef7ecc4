//! UDP sockets, one table per lcore: `inet_create`, `bind`/`inet_autobind`
//! (`udp_lib_get_port`), `connect` (`ip4_datagram_connect`), `udp_sendmsg`
//! with corking (`ip_append_data` / `udp_push_pending_frames`), and the
//! receive queue `recv_from` reads.

use super::fib_rules::Flowi4;
use super::ip::{Dst, Flow, Pending, SndBuf};
use super::route::{RT_SCOPE_LINK, RT_SCOPE_UNIVERSE};
use super::{checksum, secret, wire, Errno, Stack};
use crate::mbuf::{ol, Mbuf, WmemAccount, MBUF_HDR_SIZE};
use crate::netdev::TxQueueCache;
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// `IP_MTU_DISCOVER` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmtuDisc {
    /// `IP_PMTUDISC_DONT`: never set DF; fragment locally.
    Dont,
    /// `IP_PMTUDISC_WANT` (default): DF when the datagram fits the path MTU,
    /// fragment otherwise.
    Want,
    /// `IP_PMTUDISC_DO`: always DF; larger than the path MTU is EMSGSIZE.
    Do,
    /// `IP_PMTUDISC_PROBE`: DF, ignore the learned path MTU (treated as DO here).
    Probe,
}

impl PmtuDisc {
    pub(crate) fn sets_df_always(self) -> bool {
        matches!(self, PmtuDisc::Do | PmtuDisc::Probe)
    }
}

/// `MSG_*` flags for [`UdpSocket::send_msg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsgFlags(pub u32);

impl MsgFlags {
    pub const NONE: MsgFlags = MsgFlags(0);
    /// `MSG_MORE`: more data follows; append to the pending datagram.
    pub const MORE: MsgFlags = MsgFlags(1);
    /// `MSG_CONFIRM`: the peer is known reachable (refresh the neighbour without probing).
    pub const CONFIRM: MsgFlags = MsgFlags(2);
    /// `MSG_DONTWAIT`: never block. Poll-mode sockets never block anyway: a
    /// full send buffer is EAGAIN with or without it.
    pub const DONTWAIT: MsgFlags = MsgFlags(4);
    /// `MSG_DONTROUTE`: only on-link destinations (`RTO_ONLINK`: the route
    /// lookup asks for scope link, so gateway routes do not match).
    pub const DONTROUTE: MsgFlags = MsgFlags(8);

    pub fn contains(self, o: MsgFlags) -> bool {
        self.0 & o.0 == o.0
    }
}

impl std::ops::BitOr for MsgFlags {
    type Output = MsgFlags;
    fn bitor(self, o: MsgFlags) -> MsgFlags {
        MsgFlags(self.0 | o.0)
    }
}

/// Per-call options (`sendmsg` control messages and flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendOpts {
    /// `IP_TOS` cmsg.
    pub tos: Option<u8>,
    /// `IP_TTL` cmsg.
    pub ttl: Option<u8>,
    /// `IP_PKTINFO` `ipi_spec_dst`: the source address for this datagram
    /// (`ipc.addr`; 0.0.0.0 lets the route choose it, even on a bound
    /// socket, as Linux's `udp_sendmsg` takes `saddr = ipc.addr`).
    pub src: Option<Ipv4Addr>,
    /// `IP_PKTINFO` `ipi_ifindex` (`ipc.oif`) as a port: the datagram
    /// leaves by this port (`flowi4_oif`: routes through other ports do not
    /// match; with none, the destination is taken as on-link there).
    pub oif: Option<u16>,
    /// `IP_OPTIONS` cmsg (`ipc.opt`): this datagram's options instead of
    /// the socket's; `Some(None)` (an empty cmsg) sends it with none.
    pub ip_opt: Option<Option<super::ipopt::IpOptions>>,
    /// `SO_TIMESTAMPING` cmsg: the `SOF_TIMESTAMPING_TX_*` record bits for
    /// this datagram instead of the socket's.
    pub tsflags: Option<u32>,
    /// `SO_MARK` cmsg (`__sock_cmsg_send`): the mark policy-routing rules
    /// (`fwmark`) see for this datagram.
    pub mark: Option<u32>,
    /// `SO_PRIORITY` cmsg (`__sock_cmsg_send`): the datagram's priority
    /// (pfifo_fast band, XPS traffic class); it wins over an `IP_TOS`
    /// cmsg's `rt_tos2priority`.
    pub priority: Option<u8>,
    pub flags: MsgFlags,
}

impl SendOpts {
    /// True when any control-message option is set (flags aside): Linux's
    /// `udp_sendmsg` then clears `connected`, so the socket's cached route
    /// (and here its header template) is neither used nor replaced.
    pub fn has_cmsg(&self) -> bool {
        self.tos.is_some()
            || self.ttl.is_some()
            || self.src.is_some()
            || self.oif.is_some()
            || self.mark.is_some()
            || self.priority.is_some()
            || self.ip_opt.is_some()
            || self.tsflags.is_some()
    }
}

/// A socket handle (index + generation, so a closed socket's handle fails with EBADF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId {
    idx: u32,
    gen: u32,
}

pub(crate) struct Sock {
    local_addr: Ipv4Addr,
    local_port: u16,
    remote: Option<SocketAddrV4>,
    tos: u8,
    ttl: Option<u8>,
    mc_ttl: u8,
    mc_if: Option<u16>,
    /// `SO_MARK` (`sk_mark`).
    mark: u32,
    /// `SO_DONTROUTE` (`SOCK_LOCALROUTE`).
    localroute: bool,
    broadcast: bool,
    no_check: bool,
    pmtudisc: PmtuDisc,
    cork: bool,
    priority: u8,
    sndbuf: u64,
    rcvbuf: u64,
    wmem: Arc<WmemAccount>,
    inet_id: u16,
    /// The connected flow's hash (`sk_txhash`), 0 while unconnected.
    txhash: u32,
    /// The connected flow's TX queue (`sk_tx_queue_mapping`).
    txq: TxQueueCache,
    /// Last unconnected destination and its flow hash (so `sendto` to one
    /// peer hashes once, not per datagram).
    last_hash: Option<(SocketAddrV4, u32)>,
    /// The connected neighbour's failure count last reported (`sk_err`).
    neigh_fail_seen: u32,
    dst: Option<Dst>,
    /// Prebuilt Ethernet+IPv4+UDP header for the connected peer (the
    /// `hh_cache` idea carried up to the socket).
    tmpl: Option<TxTemplate>,
    /// `IP_OPTIONS` (`inet->inet_opt`), compiled; a socket with options
    /// never builds a template (it sends on the general path).
    ip_opt: Option<super::ipopt::IpOptions>,
    pending: Pending,
    rxq: VecDeque<(SocketAddrV4, Mbuf)>,
    rx_bytes: u64,
    /// `sk_drops`: datagrams the receive buffer refused.
    drops: u64,
    /// The pending socket error (`sk_err`), reported once by the next
    /// send, receive or `SO_ERROR`.
    sk_err: Option<Errno>,
    /// `IP_RECVERR` (`inet->recverr`): every ICMP error is queued and sets
    /// `sk_err`, connected or not.
    recverr: bool,
    /// `SO_TIMESTAMPING` flags (`sk_tsflags`).
    tsflags: u32,
    /// `sk_tskey`: the next datagram's timestamp key (`SOF_TIMESTAMPING_OPT_ID`).
    tskey: u32,
    /// The error queue (`sk_error_queue`), each entry with the receive
    /// buffer bytes it holds (charged to `rx_bytes`, as Linux charges the
    /// clone to `sk_rmem_alloc`).
    errq: VecDeque<(SockExtendedErr, u64)>,
    /// `IP_MULTICAST_LOOP` (default on): our own datagrams to a group this
    /// stack joined are delivered locally too.
    mc_loop: bool,
    /// `IP_MULTICAST_ALL` (default on): receive a joined group's datagrams
    /// even when this socket is not the one that joined.
    mc_all: bool,
    /// Groups this socket joined (`inet->mc_list`): (group, port).
    mc_list: Vec<(Ipv4Addr, u16)>,
}

/// A copy of `m`'s bytes in one fresh buffer (`skb_clone`'s role for a
/// second receiver or the multicast loopback); `None` when the pool is dry
/// or the packet does not fit one buffer.
pub(crate) fn copy_mbuf(pool: &mut crate::mbuf::Mempool, m: &Mbuf) -> Option<Mbuf> {
    let mut c = pool.alloc()?;
    for s in m.segments() {
        c.extend_from_slice(s.data).ok()?;
    }
    c.set_ol_flags(m.ol_flags());
    Some(c)
}

/// Plays `__skb_recv_udp`: the pending error first (`sock_error`), queued
/// data or not; else the oldest datagram off the receive queue, its
/// truesize given back and counted `InDatagrams`.
fn skb_recv_udp(sk: &mut Sock, c: &super::StackCounters) -> Result<(SocketAddrV4, Mbuf), Errno> {
    if let Some(e) = sk.sk_err.take() {
        return Err(e);
    }
    let (src, m) = sk.rxq.pop_front().ok_or(Errno::EAGAIN)?;
    sk.rx_bytes -= (m.nb_segs() * (m.buf_len() + MBUF_HDR_SIZE)) as u64;
    c.udp.in_datagrams.add(1);
    Ok((src, m))
}

/// `SO_EE_ORIGIN_ICMP`: the error came from an ICMP message.
pub const SO_EE_ORIGIN_ICMP: u8 = 2;

/// One entry of a socket's error queue, as `recvmsg(MSG_ERRQUEUE)` returns
/// it (Linux `ip_recv_error`): the `IP_RECVERR` control message's
/// `struct sock_extended_err` with its offender address, the address the
/// failed datagram went to (`msg_name`), and the failed datagram's payload
/// as the ICMP message quoted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockExtendedErr {
    /// `ee_errno`: the error the ICMP message means (`icmp_err_convert`).
    pub ee_errno: Errno,
    /// `ee_origin`: [`SO_EE_ORIGIN_ICMP`].
    pub ee_origin: u8,
    /// `ee_type`, `ee_code`: the ICMP type and code.
    pub ee_type: u8,
    pub ee_code: u8,
    /// `ee_info`: the next-hop MTU for fragmentation needed, else 0.
    pub ee_info: u32,
    /// `SO_EE_OFFENDER`: who sent the ICMP message.
    pub offender: Ipv4Addr,
    /// `msg_name`: the destination of the datagram that failed (from the
    /// quoted IP and UDP headers).
    pub addr: SocketAddrV4,
    /// The quoted bytes after the UDP header (the datagram's payload, as
    /// much as the ICMP message carried).
    pub payload: Vec<u8>,
}

/// What `icmp_err_convert` (net/ipv4/icmp.c) maps a destination
/// unreachable code to: the errno and whether it is fatal (a hard error
/// a connected socket hears without `IP_RECVERR`). RFC 1122 3.2.2.1 makes
/// net, host and source-route failures transient.
fn icmp_err_convert(code: u8) -> (Errno, bool) {
    use Errno::*;
    const T: [(Errno, bool); 16] = [
        (ENETUNREACH, false),  // ICMP_NET_UNREACH
        (EHOSTUNREACH, false), // ICMP_HOST_UNREACH
        (ENOPROTOOPT, true),   // ICMP_PROT_UNREACH
        (ECONNREFUSED, true),  // ICMP_PORT_UNREACH
        (EMSGSIZE, false),     // ICMP_FRAG_NEEDED
        (EOPNOTSUPP, false),   // ICMP_SR_FAILED
        (ENETUNREACH, true),   // ICMP_NET_UNKNOWN
        (EHOSTDOWN, true),     // ICMP_HOST_UNKNOWN
        (ENONET, true),        // ICMP_HOST_ISOLATED
        (ENETUNREACH, true),   // ICMP_NET_ANO
        (EHOSTUNREACH, true),  // ICMP_HOST_ANO
        (ENETUNREACH, false),  // ICMP_NET_UNR_TOS
        (EHOSTUNREACH, false), // ICMP_HOST_UNR_TOS
        (EHOSTUNREACH, true),  // ICMP_PKT_FILTERED
        (EHOSTUNREACH, true),  // ICMP_PREC_VIOLATION
        (EHOSTUNREACH, true),  // ICMP_PREC_CUTOFF
    ];
    T.get(code as usize)
        .copied()
        .unwrap_or((EHOSTUNREACH, false))
}

/// A connected socket's header template ([`wire::UdpTemplate`]: the
/// neighbour's cached L2 header, an IPv4 header with length and ID zero,
/// a UDP header with the ports) and what it was built from, to know when
/// it is stale; each packet patches lengths, ID and checksums.
#[derive(Clone, Copy)]
struct TxTemplate {
    gen: u64,
    neigh_idx: usize,
    neigh_uid: u64,
    hh_seq: u32,
    port: u16,
    tos: u8,
    ttl: u8,
    df: bool,
    no_check: bool,
    offload: bool,
    ident_bucket: usize,
    hlen: u8,
    /// The headers and their constant sums (shared with the generator).
    u: wire::UdpTemplate,
    /// Largest payload the fast path takes (path MTU and the pool's data room).
    max_payload: usize,
}

/// Writes the per-datagram fields into a header template: IPv4 total
/// length, ID and checksum, UDP length and checksum (`ipc`/`ucheck` already
/// in wire order as native values). `l2` is at most 18 (the template holds
/// a VLAN header at most); clamping it lets the compiler drop bounds checks.
#[inline(always)]
fn patch_lengths(
    h: &mut [u8; TMPL_LEN],
    l2: usize,
    tot: u16,
    id: u16,
    ipc: u16,
    ulen: u16,
    ucheck: u16,
) {
    let l2 = l2.min(TMPL_LEN - 28);
    h[l2 + 2..l2 + 4].copy_from_slice(&tot.to_be_bytes());
    h[l2 + 4..l2 + 6].copy_from_slice(&id.to_be_bytes());
    h[l2 + 10..l2 + 12].copy_from_slice(&ipc.to_ne_bytes());
    h[l2 + 24..l2 + 26].copy_from_slice(&ulen.to_be_bytes());
    h[l2 + 26..l2 + 28].copy_from_slice(&ucheck.to_ne_bytes());
}

/// `dst.copy_from_slice(src)` that moves 16..=32 bytes with two overlapping
/// fixed-size copies (register moves, no `memcpy` call).
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() == n && (16..=32).contains(&n) {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else {
        copy_any(dst, src);
    }
}

/// `copy_from_slice` kept out of line, so the compiler does not merge the
/// fixed-size copies above into one variable-length `memcpy` call.
#[inline(never)]
fn copy_any(dst: &mut [u8], src: &[u8]) {
    dst.copy_from_slice(src);
}

/// Bytes of a header template: a VLAN-tagged Ethernet header (18) + IPv4 (20) + UDP (8).
const TMPL_LEN: usize = wire::UdpTemplate::MAX_LEN;

/// Smallest SO_SNDBUF/SO_RCVBUF (`SOCK_MIN_SNDBUF`-like).
const SOCK_MIN_BUF: u64 = 4608;
/// Most datagrams a receive queue holds (on top of the byte limit).
const RXQ_MAX: usize = 1024;

pub(crate) struct SocketTable {
    slots: Vec<Option<Box<Sock>>>,
    gens: Vec<u32>,
    free: Vec<usize>,
    /// Bound port → sockets bound to it.
    ports: HashMap<u16, Vec<usize>>,
    eph: (u16, u16),
    rng: u64,
    /// Source of each socket's initial `inet_id` (random per process).
    id_rng: u64,
    sndbuf_default: u64,
    rcvbuf_default: u64,
    /// `net.core.wmem_max`.
    wmem_max: u64,
    max: usize,
    pub(crate) live: usize,
    /// Send-buffer accounts of closed sockets whose packets are still in
    /// flight (the `sk_wmem_alloc` reference that keeps a socket alive until
    /// its last skb is freed).
    zombies: Vec<Arc<WmemAccount>>,
    /// Ports claimed for every lcore's stack (`udp_table` is global in
    /// Linux), when the stack shares a control plane.
    pub(crate) claims: Option<super::shared::PortClaims>,
}

impl SocketTable {
    pub fn new(cfg: &super::StackConfig) -> SocketTable {
        SocketTable {
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            ports: HashMap::new(),
            eph: cfg.ephemeral_ports,
            rng: cfg.seed.rotate_left(29) | 1,
            id_rng: match cfg.ip_id_seed {
                Some(s) => s.rotate_left(7) | 1,
                None => secret::fresh_random(0x0069_6e65_745f_6964) | 1, // "inet_id"
            },
            sndbuf_default: cfg.sndbuf_default as u64,
            rcvbuf_default: cfg.rcvbuf_default as u64,
            wmem_max: cfg.wmem_max as u64,
            max: cfg.max_sockets,
            live: 0,
            zombies: Vec::new(),
            claims: None,
        }
    }

    /// `get_random_u16` for a socket's `inet_id`.
    fn rand_id(&mut self) -> u16 {
        let mut x = self.id_rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.id_rng = x;
        (x >> 40) as u16
    }

    fn rand(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 32) as u32
    }

    fn take(&mut self, id: SocketId) -> Result<Box<Sock>, Errno> {
        let i = id.idx as usize;
        if self.gens.get(i) != Some(&id.gen) {
            return Err(Errno::EBADF);
        }
        self.slots[i].take().ok_or(Errno::EBADF)
    }

    fn put(&mut self, id: SocketId, s: Box<Sock>) {
        self.slots[id.idx as usize] = Some(s);
    }

    fn get(&self, id: SocketId) -> Result<&Sock, Errno> {
        let i = id.idx as usize;
        if self.gens.get(i) != Some(&id.gen) {
            return Err(Errno::EBADF);
        }
        self.slots[i].as_deref().ok_or(Errno::EBADF)
    }

    fn get_mut(&mut self, id: SocketId) -> Result<&mut Sock, Errno> {
        let i = id.idx as usize;
        if self.gens.get(i) != Some(&id.gen) {
            return Err(Errno::EBADF);
        }
        self.slots[i].as_deref_mut().ok_or(Errno::EBADF)
    }

    /// Would (addr, port) conflict with an existing binding? (`udp_lib_lport_inuse`)
    fn in_use(&self, addr: Ipv4Addr, port: u16) -> bool {
        if let Some(c) = &self.claims {
            if c.taken_by_other(super::shared::PortSpace::Udp, port) {
                return true;
            }
        }
        self.ports.get(&port).is_some_and(|v| {
            v.iter().any(|&i| {
                self.slots[i].as_deref().is_none_or(|s| {
                    s.local_addr.is_unspecified() || addr.is_unspecified() || s.local_addr == addr
                })
            })
        })
    }

    /// Plays `udp_lib_get_port`: binds `sk` (slot `idx`) to `port`, or with
    /// `port == 0` to a free ephemeral port searched from a random start.
    fn udp_lib_get_port(
        &mut self,
        idx: usize,
        sk: &mut Sock,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<(), Errno> {
        let port = if port == 0 {
            let (lo, hi) = self.eph;
            let n = (hi - lo) as u32 + 1;
            let start = self.rand() % n;
            let found = (0..n)
                .map(|k| lo + ((start + k) % n) as u16)
                .find(|&p| !self.in_use(addr, p) && self.claim(p));
            // inet_autobind reports an exhausted range as EAGAIN.
            found.ok_or(Errno::EAGAIN)?
        } else {
            if self.in_use(addr, port) || !self.claim(port) {
                return Err(Errno::EADDRINUSE);
            }
            port
        };
        sk.local_addr = addr;
        sk.local_port = port;
        self.ports.entry(port).or_default().push(idx);
        Ok(())
    }

    /// Claims `port` for this stack among the lcores sharing its control
    /// plane (always true for a stack alone).
    fn claim(&self, port: u16) -> bool {
        self.claims
            .as_ref()
            .is_none_or(|c| c.claim(super::shared::PortSpace::Udp, port))
    }

    /// Finds the socket for a datagram (`__udp4_lib_lookup`): exact local
    /// address beats wildcard; connected sockets only match their peer.
    fn lookup(&self, daddr: Ipv4Addr, dport: u16, saddr: Ipv4Addr, sport: u16) -> Option<usize> {
        let v = self.ports.get(&dport)?;
        let mut best: Option<(u8, usize)> = None;
        for &i in v {
            let Some(s) = self.slots[i].as_deref() else {
                continue;
            };
            let mut score = 1u8;
            if !s.local_addr.is_unspecified() {
                if s.local_addr != daddr {
                    continue;
                }
                score += 2;
            }
            if let Some(r) = s.remote {
                if *r.ip() != saddr || r.port() != sport {
                    continue;
                }
                score += 4;
            }
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

impl SocketTable {
    /// Drops the accounts of closed sockets once nothing is in flight.
    pub(crate) fn reap(&mut self) {
        if !self.zombies.is_empty() {
            self.zombies.retain(|a| a.in_flight() > 0);
        }
    }
}

impl Drop for SocketTable {
    fn drop(&mut self) {
        // Packets may outlive the stack (in a TX ring, on the far end of a
        // ring port): an account they still point at is leaked, not freed.
        for s in self.slots.iter_mut().flatten() {
            s.pending.flush();
            s.rxq.clear();
            if s.wmem.in_flight() > 0 {
                std::mem::forget(s.wmem.clone());
            }
        }
        for a in self.zombies.drain(..) {
            if a.in_flight() > 0 {
                std::mem::forget(a);
            }
        }
    }
}

impl Stack {
    /// Plays `inet_create` for `socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)`.
    pub fn udp_socket(&mut self) -> Result<SocketId, Errno> {
        let t = &mut self.socks;
        if t.live >= t.max {
            return Err(Errno::EMFILE);
        }
        let sk = Box::new(Sock {
            local_addr: Ipv4Addr::UNSPECIFIED,
            local_port: 0,
            remote: None,
            tos: 0,
            ttl: None,
            mc_ttl: 1,
            mc_if: None,
            mark: 0,
            localroute: false,
            broadcast: false,
            no_check: false,
            pmtudisc: PmtuDisc::Want,
            cork: false,
            priority: 0,
            sndbuf: t.sndbuf_default,
            rcvbuf: t.rcvbuf_default,
            wmem: Arc::new(WmemAccount::new()),
            inet_id: t.rand_id(),
            txhash: 0,
            txq: TxQueueCache::new(),
            last_hash: None,
            neigh_fail_seen: 0,
            dst: None,
            tmpl: None,
            ip_opt: None,
            pending: Pending::new(),
            rxq: VecDeque::with_capacity(64),
            rx_bytes: 0,
            drops: 0,
            sk_err: None,
            recverr: false,
            tsflags: 0,
            tskey: 0,
            errq: VecDeque::new(),
            mc_loop: true,
            mc_all: true,
            mc_list: Vec::new(),
        });
        let idx = match t.free.pop() {
            Some(i) => {
                t.slots[i] = Some(sk);
                i
            }
            None => {
                t.slots.push(Some(sk));
                t.gens.push(0);
                t.slots.len() - 1
            }
        };
        t.live += 1;
        Ok(SocketId {
            idx: idx as u32,
            gen: t.gens[idx],
        })
    }

    /// Closes a socket: pending corked data is dropped, the port is released.
    /// Packets in flight keep their send-buffer account alive (it is shared).
    pub fn close(&mut self, id: SocketId) -> Result<(), Errno> {
        let mut sk = self.socks.take(id)?;
        // Free our own buffers first, then keep the account alive while the
        // device still holds packets charged to it.
        sk.pending.flush();
        sk.rxq.clear();
        sk.errq.clear();
        // ip_mc_drop_socket: every membership goes with the socket.
        for (g, port) in std::mem::take(&mut sk.mc_list) {
            self.ip_mc_dec_group(port, g);
        }
        if sk.wmem.in_flight() > 0 {
            self.socks.zombies.push(sk.wmem.clone());
        }
        let i = id.idx as usize;
        if sk.local_port != 0 {
            if let Some(v) = self.socks.ports.get_mut(&sk.local_port) {
                v.retain(|&x| x != i);
                if v.is_empty() {
                    self.socks.ports.remove(&sk.local_port);
                    if let Some(c) = &self.socks.claims {
                        c.release(super::shared::PortSpace::Udp, sk.local_port);
                    }
                }
            }
        }
        self.socks.gens[i] = self.socks.gens[i].wrapping_add(1);
        self.socks.free.push(i);
        self.socks.live -= 1;
        Ok(())
    }

    /// A handle with `std::net::UdpSocket`-like methods.
    pub fn socket(&mut self, id: SocketId) -> UdpSocket<'_> {
        UdpSocket { st: self, id }
    }

    /// Delivers a received datagram (`udp_queue_rcv_skb`); `m` holds just the
    /// payload. Returns false when no socket wants it (NoPorts is the caller's).
    pub(crate) fn udp_deliver(
        &mut self,
        daddr: Ipv4Addr,
        dport: u16,
        src: SocketAddrV4,
        m: Mbuf,
    ) -> bool {
        let Some(i) = self.socks.lookup(daddr, dport, *src.ip(), src.port()) else {
            return false;
        };
        self.udp_queue_rcv(i, src, m);
        true
    }

    /// Plays `__udp4_lib_mcast_deliver` for a datagram to `group` that came
    /// in on `port`: every socket bound to `dport` (on 0.0.0.0 or the
    /// group), connected only to this sender if connected, that
    /// `ip_mc_sf_allow` lets have it — one that joined the group on this
    /// port, or any with `IP_MULTICAST_ALL` — gets a copy (the last the
    /// original). A copy that cannot be made counts RcvbufErrors and
    /// InErrors, as a failed `skb_clone` does.
    pub(crate) fn udp_mcast_deliver(
        &mut self,
        port: u16,
        group: Ipv4Addr,
        dport: u16,
        src: SocketAddrV4,
        m: Mbuf,
    ) -> bool {
        let n = self.socks.ports.get(&dport).map_or(0, |v| v.len());
        let wants = |t: &SocketTable, i: usize| {
            t.slots[i].as_deref().is_some_and(|s| {
                (s.local_addr.is_unspecified() || s.local_addr == group)
                    && s.remote.is_none_or(|r| r == src)
                    && (s.mc_all || s.mc_list.contains(&(group, port)))
            })
        };
        let mut last = None;
        for k in 0..n {
            let i = self.socks.ports[&dport][k];
            if !wants(&self.socks, i) {
                continue;
            }
            if let Some(prev) = last.replace(i) {
                match copy_mbuf(&mut self.pool, &m) {
                    Some(c) => self.udp_queue_rcv(prev, src, c),
                    None => {
                        self.counters.udp.rcvbuf_errors.add(1);
                        self.counters.udp.in_errors.add(1);
                    }
                }
            }
        }
        match last {
            Some(i) => {
                self.udp_queue_rcv(i, src, m);
                true
            }
            None => false,
        }
    }

    /// `__udp_queue_rcv_skb`: onto socket `i`'s receive queue, or counted.
    fn udp_queue_rcv(&mut self, i: usize, src: SocketAddrV4, m: Mbuf) {
        let sk = self.socks.slots[i].as_deref_mut().expect("looked up");
        let truesize = (m.nb_segs() * (m.buf_len() + MBUF_HDR_SIZE)) as u64;
        if sk.rx_bytes + truesize > sk.rcvbuf || sk.rxq.len() >= RXQ_MAX {
            sk.drops += 1;
            self.counters.udp.rcvbuf_errors.add(1);
            self.counters.udp.in_errors.add(1);
            return;
        }
        sk.rx_bytes += truesize;
        sk.rxq.push_back((src, m));
    }

    /// Plays `__udp4_lib_err` for an ICMP error from `offender` of `ty`/`code`
    /// (`info`: the next-hop MTU of fragmentation needed) quoting
    /// `quoted` (the IP header of a datagram we sent, its UDP header and
    /// what followed). The socket is found as the reply would find it
    /// (`__udp4_lib_lookup` with the quoted addresses and ports swapped).
    /// Without `IP_RECVERR` only a connected socket hears only a hard
    /// error (`icmp_err_convert`'s fatal codes, parameter problem,
    /// fragmentation needed unless `IP_PMTUDISC_DONT`); with it every
    /// error is queued (`ip_icmp_error`) and sets `sk_err`. `truesize`: the
    /// receive-buffer charge of the queued copy. Returns false when no
    /// socket matches (the caller counts Icmp `InErrors`).
    pub(crate) fn udp4_lib_err(
        &mut self,
        offender: Ipv4Addr,
        ty: u8,
        code: u8,
        info: u32,
        quoted: &[u8],
        truesize: u64,
    ) -> bool {
        let ihl = ((quoted[0] & 0x0f) as usize) * 4;
        let saddr = Ipv4Addr::new(quoted[12], quoted[13], quoted[14], quoted[15]);
        let daddr = Ipv4Addr::new(quoted[16], quoted[17], quoted[18], quoted[19]);
        let sport = u16::from_be_bytes([quoted[ihl], quoted[ihl + 1]]);
        let dport = u16::from_be_bytes([quoted[ihl + 2], quoted[ihl + 3]]);
        let Some(i) = self.socks.lookup(saddr, sport, daddr, dport) else {
            return false;
        };
        let sk = self.socks.slots[i].as_deref_mut().expect("looked up");
        let (err, harderr) = match ty {
            wire::ICMP_SOURCE_QUENCH | wire::ICMP_REDIRECT => return true,
            wire::ICMP_PARAMETERPROB => (Errno::EPROTO, true),
            wire::ICMP_DEST_UNREACH if code == wire::ICMP_FRAG_NEEDED => {
                // ipv4_sk_update_pmtu: icmp_rcv updated the path MTU
                // already, which invalidates cached routes (`dst_gen`).
                if sk.pmtudisc == PmtuDisc::Dont {
                    return true;
                }
                (Errno::EMSGSIZE, true)
            }
            wire::ICMP_DEST_UNREACH => icmp_err_convert(code),
            // ICMP_TIME_EXCEEDED and anything else.
            _ => (Errno::EHOSTUNREACH, false),
        };
        if !sk.recverr {
            if !harderr || sk.remote.is_none() {
                return true;
            }
        } else if sk.rx_bytes + truesize >= sk.rcvbuf {
            // sock_queue_err_skb: no room in the receive buffer.
            self.counters.rx.errqueue_full.add(1);
        } else {
            sk.rx_bytes += truesize;
            let e = SockExtendedErr {
                ee_errno: err,
                ee_origin: SO_EE_ORIGIN_ICMP,
                ee_type: ty,
                ee_code: code,
                ee_info: info,
                offender,
                addr: SocketAddrV4::new(daddr, dport),
                payload: quoted[ihl + 8..].to_vec(),
            };
            sk.errq.push_back((e, truesize));
        }
        sk.sk_err = Some(err);
        true
    }

    /// Checks that the connected-socket fast path applies and that the
    /// socket's header template is current (rebuilding it if tables, the
    /// neighbour's header or socket options changed). Marks the neighbour
    /// used. `None`: take the general path.
    ///
    /// The template is dropped whenever the socket's destination or an
    /// option it bakes in (TOS, TTL, DF, checksum mode) changes, so while
    /// it exists one generation compare and the neighbour check suffice.
    #[inline(always)]
    fn fast_ready(&mut self, sk: &mut Sock) -> Option<usize> {
        if let Some(t) = sk.tmpl.as_ref() {
            if t.gen == self.dst_gen()
                && self.hooks.is_empty()
                && self
                    .neigh
                    .fast_ok(t.neigh_idx, t.neigh_uid, t.hh_seq, self.now)
            {
                return Some(t.neigh_idx);
            }
        }
        self.fast_ready_slow(sk)
    }

    /// [`Stack::fast_ready`] when the quick check fails: the full check, and
    /// a template rebuild when only the template is stale.
    #[cold]
    #[inline(never)]
    fn fast_ready_slow(&mut self, sk: &mut Sock) -> Option<usize> {
        if !self.hooks.is_empty() || sk.ip_opt.is_some() {
            // IP options: the template has no room for them; every
            // datagram takes the general path (ip_options_build per packet).
            return None;
        }
        let (idx, uid, gen) = match sk.dst.as_ref() {
            Some(Dst {
                next: super::ip::NextHop::Neigh { idx, uid },
                broadcast: false,
                multicast: false,
                gen,
                ..
            }) => (*idx, *uid, *gen),
            _ => return None,
        };
        if sk.remote.is_none() || gen != self.dst_gen() {
            return None;
        }
        let ttl = sk.ttl.unwrap_or(self.default_ttl);
        let df = sk.pmtudisc != PmtuDisc::Dont;
        let now = self.now;
        let fresh = match sk.tmpl.as_ref() {
            Some(t) => {
                t.gen == gen
                    && t.neigh_idx == idx
                    && t.neigh_uid == uid
                    && t.tos == sk.tos
                    && t.ttl == ttl
                    && t.df == df
                    && t.no_check == sk.no_check
                    && self.neigh.fast_ok(idx, uid, t.hh_seq, now)
            }
            None => false,
        };
        if !fresh {
            let dst = sk.dst?;
            let t = self.build_template(sk, &dst, idx, uid, ttl, df)?;
            if !self.neigh.fast_ok(idx, uid, t.hh_seq, now) {
                return None;
            }
            sk.tmpl = Some(t);
        }
        Some(idx)
    }

    /// Writes one datagram into a fresh mbuf from the template: copies the
    /// header and payload, patches total length, ID and the IPv4 checksum
    /// (RFC 1624), the UDP length and checksum (software, offload seed, or
    /// none), and charges the socket's send buffer.
    /// `txq` is the socket's cached queue (`sk_tx_queue_mapping`), stamped
    /// on the packet with its flow hash (`skb_set_hash_from_sk`).
    #[inline(always)]
    fn fast_fill(&mut self, sk: &mut Sock, m: &mut Mbuf, buf: &[u8], txq: Option<u16>) -> bool {
        let Some(t) = sk.tmpl.as_ref() else {
            return false;
        };
        let len = buf.len();
        let hlen = t.hlen as usize;
        // A fresh single-segment buffer: set the length in one step.
        if m.set_len(hlen + len).is_err() {
            return false;
        }
        let truesize = (m.buf_len() + MBUF_HDR_SIZE) as u32;
        m.charge_wmem(&sk.wmem, truesize);
        let id = if t.df {
            let id = sk.inet_id;
            sk.inet_id = id.wrapping_add(1);
            id
        } else {
            self.ident.next(t.ident_bucket, 1)
        };
        let tot = (28 + len) as u16;
        let ulen = (8 + len) as u16;
        // The header sum with length and ID zero plus the two fields: the
        // same value as a full ip_fast_csum over the patched header.
        // Sums in native byte order (one swap per field, none per payload
        // word); the complemented fold is stored with `to_ne_bytes`.
        let ipc = !checksum::fold(t.u.ip_sum_ne + tot.to_be() as u64 + id.to_be() as u64);
        let ucheck = if t.no_check {
            0
        } else if t.offload {
            checksum::fold(t.u.pseudo + ulen as u64).to_be()
        } else {
            let acc = t.u.udp_sum_ne + 2 * ulen.to_be() as u64 + checksum::sum_ne(buf);
            match !checksum::fold(acc) {
                0 => 0xffff,
                v => v,
            }
        };
        // Write the template with one fixed-size copy, then patch the
        // fields in place (patching a stack copy first would make the wide
        // loads of the copy wait on the narrow stores).
        let l2 = t.u.l2 as usize;
        let b = m.data_mut();
        if let Some(w) = b.first_chunk_mut::<TMPL_LEN>() {
            // The bytes past `hlen` (untagged) are overwritten by the payload.
            *w = t.u.hdr;
            patch_lengths(w, l2, tot, id, ipc, ulen, ucheck);
        } else {
            let mut h = t.u.hdr;
            patch_lengths(&mut h, l2, tot, id, ipc, ulen, ucheck);
            copy_any(&mut b[..hlen], &h[..hlen]);
        }
        copy_short(&mut b[hlen..], buf);
        if t.offload && !t.no_check {
            m.set_ol_flags(ol::TX_UDP_CKSUM | ol::TX_IPV4);
        }
        m.set_tx_lens(t.u.l2, 20, 8);
        m.set_priority(sk.priority);
        m.set_hash(sk.txhash);
        if let Some(q) = txq {
            super::set_tx_queue_mapping(m, q);
        }
        true
    }

    /// The connected-socket fast path: `udp_sendmsg` → `ip_make_skb` →
    /// `udp_send_skb` → `ip_send_skb` → `neigh_hh_output` collapsed onto a
    /// prebuilt header. `None` when the general path must run (unresolved or
    /// changed neighbour, fragmentation, hooks, broadcast/multicast, …).
    #[inline(always)]
    fn udp_send_fast(
        &mut self,
        sk: &mut Sock,
        buf: &[u8],
        confirm: bool,
    ) -> Option<Result<usize, Errno>> {
        if sk.sk_err.is_some() || sk.tsflags != 0 {
            return None; // udp_sendmsg reports it / stamps it
        }
        let idx = self.fast_ready(sk)?;
        let (max, port) = sk.tmpl.as_ref().map(|t| (t.max_payload, t.port))?;
        if buf.len() > max {
            return None;
        }
        if sk.wmem.in_flight() >= sk.sndbuf {
            self.counters.ip.out_discards.add(1);
            self.counters.udp.sndbuf_errors.add(1);
            return Some(Err(Errno::EAGAIN));
        }
        let Some(mut m) = self.pool.alloc() else {
            self.counters.ip.out_discards.add(1);
            self.counters.udp.sndbuf_errors.add(1);
            return Some(Err(Errno::ENOBUFS));
        };
        let txq = self.xmit.pick_tx(port, &mut sk.txq, sk.txhash, sk.priority);
        if !self.fast_fill(sk, &mut m, buf, txq) {
            return None;
        }
        if confirm {
            let now = self.now;
            self.neigh.confirm(idx, now);
        }
        let c = &self.counters;
        c.ip.out_requests.add(1);
        match self.xmit.queue_xmit(port, m) {
            Ok(()) => c.udp.out_datagrams.add(1),
            Err(_) => {
                // ip_send_skb counts the discard; udp_send_skb turns ENOBUFS
                // into SndbufErrors and reports success (without IP_RECVERR).
                c.ip.out_discards.add(1);
                if sk.recverr {
                    return Some(Err(Errno::ENOBUFS));
                }
                c.udp.sndbuf_errors.add(1);
            }
        }
        Some(Ok(buf.len()))
    }

    /// `sendmmsg` on a connected socket: the fast path for a whole batch —
    /// one template check, buffers taken with `alloc_bulk`, one burst handed
    /// to the device layer. Returns how many datagrams went (`None`: the
    /// general path must send them one by one).
    fn udp_send_fast_batch(
        &mut self,
        sk: &mut Sock,
        bufs: &[&[u8]],
    ) -> Option<Result<usize, Errno>> {
        if sk.sk_err.is_some() || sk.tsflags != 0 {
            return None;
        }
        self.fast_ready(sk)?;
        let (max, port) = sk.tmpl.as_ref().map(|t| (t.max_payload, t.port))?;
        if bufs.iter().any(|b| b.len() > max) {
            return None;
        }
        let mut burst = self.scratch.take()?;
        let txq = self.xmit.pick_tx(port, &mut sk.txq, sk.txhash, sk.priority);
        let mut sent = 0usize;
        let mut err = None;
        for chunk in bufs.chunks(crate::mbuf::BURST_MAX) {
            if !self.pool.alloc_bulk(&mut burst, chunk.len()) {
                err = Some(Errno::ENOBUFS);
                break;
            }
            // Send-buffer check per datagram, as each sendmsg of a sendmmsg does.
            let mut k = 0;
            for (m, b) in burst.as_mut_slice().iter_mut().zip(chunk.iter()) {
                if sk.wmem.in_flight() >= sk.sndbuf {
                    break;
                }
                // Cannot fail: sizes were checked against the data room.
                self.fast_fill(sk, m, b, txq);
                k += 1;
            }
            while burst.len() > k {
                // Unused buffers go back to the pool (they were never packets).
                drop(burst.pop_back());
            }
            if k == 0 {
                err = Some(Errno::EAGAIN);
                break;
            }
            let refused = self.xmit.queue_xmit_burst(port, &mut burst) as u64;
            burst.clear();
            let c = &self.counters;
            c.ip.out_requests.add(k as u64);
            c.udp.out_datagrams.add(k as u64 - refused);
            if refused > 0 {
                c.ip.out_discards.add(refused);
                c.udp.sndbuf_errors.add(refused);
            }
            sent += k;
            if k < chunk.len() {
                err = Some(Errno::EAGAIN);
                break;
            }
        }
        self.scratch = Some(burst);
        match err {
            Some(e) => {
                self.counters.ip.out_discards.add(1);
                self.counters.udp.sndbuf_errors.add(1);
                Some(if sent == 0 { Err(e) } else { Ok(sent) })
            }
            None => Some(Ok(sent)),
        }
    }

    fn build_template(
        &self,
        sk: &Sock,
        dst: &Dst,
        idx: usize,
        uid: u64,
        ttl: u8,
        df: bool,
    ) -> Option<TxTemplate> {
        let n = self.neigh.get(idx)?;
        if n.uid != uid || !n.state.valid() {
            return None;
        }
        let l2 = n.hh_len as usize;
        let dport = sk.remote?.port();
        let u = wire::UdpTemplate::new(
            &n.hh[..l2],
            &wire::Ipv4Header {
                tos: sk.tos,
                frag: if df { wire::IP_DF } else { 0 },
                ttl,
                src: dst.saddr,
                dst: dst.daddr,
                ..Default::default()
            },
            sk.local_port,
            dport,
        )?;
        let ol_capa = self.ports[dst.port as usize].conf.tx_offloads;
        Some(TxTemplate {
            gen: dst.gen,
            neigh_idx: idx,
            neigh_uid: uid,
            hh_seq: n.hh_seq,
            port: dst.port,
            tos: sk.tos,
            ttl,
            df,
            no_check: sk.no_check,
            offload: ol_capa & ol::TX_UDP_CKSUM != 0,
            ident_bucket: dst.ident_bucket,
            hlen: u.len() as u8,
            max_payload: (dst.mtu as usize)
                .saturating_sub(28)
                .min(self.pool.data_room().saturating_sub(l2 + 28)),
            u,
        })
    }

    /// `sock_error` for a connected socket: when its neighbour failed with
    /// packets queued since the socket last heard, Linux's
    /// `neigh_invalidate` → `arp_error_report` → `dst_link_failure` sent an
    /// ICMP host unreachable that `__udp4_lib_err` turned into
    /// `sk_err = EHOSTUNREACH` (a hard error on a connected socket); the next
    /// send reports it once and clears it.
    fn take_sock_error(&self, sk: &mut Sock, dst: &Dst) -> Option<Errno> {
        let super::ip::NextHop::Neigh { idx, uid } = dst.next else {
            return None;
        };
        let n = self.neigh.get(idx).filter(|n| n.uid == uid)?;
        if n.fail_gen == sk.neigh_fail_seen {
            return None;
        }
        sk.neigh_fail_seen = n.fail_gen;
        Some(Errno::EHOSTUNREACH)
    }

    /// Plays the part of `inet_send_prepare` → `inet_autobind`: a socket
    /// with no local port gets an ephemeral one (`udp_v4_get_port` →
    /// `udp_lib_get_port` with port 0) before its first datagram.
    fn inet_send_prepare(&mut self, idx: usize, sk: &mut Sock) -> Result<(), Errno> {
        if sk.local_port == 0 {
            self.socks
                .udp_lib_get_port(idx, sk, Ipv4Addr::UNSPECIFIED, 0)?;
        }
        Ok(())
    }

    fn udp_sendmsg(
        &mut self,
        sk: &mut Sock,
        idx: usize,
        buf: &[u8],
        dest: Option<SocketAddrV4>,
        o: &SendOpts,
    ) -> Result<usize, Errno> {
        self.udp_sendmsg_payload(sk, idx, Payload::Copy(buf), dest, o)
    }

    /// `udp_sendmsg` for either kind of payload: the bytes of a `&[u8]`
    /// (copied into fresh buffers by `ip_append_data`) or a caller's mbuf
    /// (sent in place by [`Stack::ip_append_mbuf`]). The checks, the route,
    /// the counters and the errors are the same for both.
    fn udp_sendmsg_payload(
        &mut self,
        sk: &mut Sock,
        idx: usize,
        payload: Payload<'_>,
        dest: Option<SocketAddrV4>,
        o: &SendOpts,
    ) -> Result<usize, Errno> {
        let len = payload.len();
        if len > 0xffff {
            return Err(Errno::EMSGSIZE);
        }
        self.inet_send_prepare(idx, sk)?;
        let corkreq = sk.cork || o.flags.contains(MsgFlags::MORE);
        let confirm = o.flags.contains(MsgFlags::CONFIRM);
        // udp_sendmsg: SOCK_LOCALROUTE, MSG_DONTROUTE or a strict source
        // route sets RTO_ONLINK and clears `connected` (no cached route).
        // An IP_OPTIONS cmsg replaces the socket's options (ipc.opt).
        let ip_opt = o.ip_opt.unwrap_or(sk.ip_opt);
        let cmsg = o.has_cmsg();
        let onlink = sk.localroute
            || o.flags.contains(MsgFlags::DONTROUTE)
            || ip_opt.is_some_and(|x| x.strict);
        if !corkreq && dest.is_none() && !cmsg && !onlink && sk.pending.is_empty() {
            if let Payload::Copy(buf) = payload {
                if let Some(r) = self.udp_send_fast(sk, buf, confirm) {
                    return r;
                }
            }
        }
        if sk.pending.is_empty() {
            let (daddr, dport) = match dest {
                Some(d) => {
                    if d.port() == 0 {
                        return Err(Errno::EINVAL);
                    }
                    (*d.ip(), d.port())
                }
                None => match sk.remote {
                    Some(r) => (*r.ip(), r.port()),
                    None => return Err(Errno::EDESTADDRREQ),
                },
            };
            // udp_sendmsg: with a source route the datagram is routed to
            // its first hop (`faddr`) and the socket's cached route is not
            // used; the final destination goes into the option.
            let final_daddr = daddr;
            let srr = ip_opt.filter(|x| x.srr.is_some());
            let daddr = srr.map_or(daddr, |x| x.faddr);
            let connected = (dest.is_none() || sk.remote == dest) && srr.is_none();
            if let Some(s) = o.src {
                if !s.is_unspecified() && self.port_of_addr(s).is_none() {
                    return Err(Errno::EINVAL);
                }
            }
            let want_src = match o.src {
                Some(s) => (!s.is_unspecified()).then_some(s),
                None => (!sk.local_addr.is_unspecified() && !sk.local_addr.is_multicast())
                    .then_some(sk.local_addr),
            };
            let mark = o.mark.unwrap_or(sk.mark);
            let use_cache = connected && sk.remote.is_some() && !cmsg && !onlink;
            let dst = match sk.dst.filter(|d| use_cache && self.dst_valid(d)) {
                Some(d) => d,
                None => {
                    // udp_sendmsg: a multicast destination without an
                    // ipi_ifindex takes IP_MULTICAST_IF's (mc_index).
                    let oif = if daddr.is_multicast() {
                        o.oif.or(sk.mc_if)
                    } else {
                        o.oif
                    };
                    let fl = Flowi4 {
                        daddr,
                        saddr: want_src.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        oif,
                        tos: o.tos.unwrap_or(sk.tos),
                        scope: if onlink {
                            RT_SCOPE_LINK
                        } else {
                            RT_SCOPE_UNIVERSE
                        },
                        mark,
                        proto: wire::IPPROTO_UDP,
                        sport: sk.local_port,
                        dport,
                    };
                    let d = match self.ip_route_output_key(&fl) {
                        Ok(d) => d,
                        Err(e) => {
                            if e == Errno::ENETUNREACH {
                                self.counters.ip.out_no_routes.add(1);
                            }
                            return Err(e);
                        }
                    };
                    if use_cache {
                        sk.dst = Some(d);
                        sk.tmpl = None;
                    }
                    d
                }
            };
            if use_cache {
                if let Some(e) = self.take_sock_error(sk, &dst) {
                    // Reported by sock_alloc_send_pskb; __ip_append_data's
                    // error path counts the discard.
                    self.counters.ip.out_discards.add(1);
                    return Err(e);
                }
            }
            if dst.broadcast && !sk.broadcast {
                return Err(Errno::EACCES);
            }
            if let Some(e) = sk.sk_err.take() {
                // sock_alloc_send_pskb → sock_error: a pending error (an
                // ICMP error `__udp4_lib_err` recorded) fails this send
                // once; __ip_append_data's error path counts the discard.
                self.counters.ip.out_discards.add(1);
                return Err(e);
            }
            let ttl = o.ttl.unwrap_or(if dst.multicast {
                sk.mc_ttl
            } else {
                sk.ttl.unwrap_or(self.default_ttl)
            });
            // ip_cmsg_send: an IP_TOS cmsg also sets this datagram's
            // priority; an SO_PRIORITY cmsg (__sock_cmsg_send) sets it outright.
            let priority = o
                .priority
                .unwrap_or_else(|| o.tos.map_or(sk.priority, super::rt_tos2priority));
            // The socket's cached queue belongs to its own route; a
            // datagram routed on its own (cmsgs) hashes on its own.
            let conn = connected && sk.remote.is_some() && !cmsg;
            let (hash, txq) = if conn && sk.txhash != 0 {
                let h = sk.txhash;
                (h, self.xmit.pick_tx(dst.port, &mut sk.txq, h, priority))
            } else {
                // Unconnected: the datagram's own 4-tuple hash (the flow
                // dissector's skb_get_hash); __netdev_pick_tx caches a queue
                // on the socket only for its own dst, so none here.
                let to = SocketAddrV4::new(daddr, dport);
                let h = match sk.last_hash {
                    Some((a, h)) if a == to && sk.local_port != 0 => h,
                    _ => {
                        let h = secret::flow_hash4(
                            dst.saddr.into(),
                            daddr.into(),
                            sk.local_port,
                            dport,
                            wire::IPPROTO_UDP,
                            &self.hash_key,
                        );
                        sk.last_hash = Some((to, h));
                        h
                    }
                };
                (h, None)
            };
            sk.pending.flow = Some(Flow {
                dst,
                sport: sk.local_port,
                dport,
                tos: o.tos.unwrap_or(sk.tos),
                ttl,
                pmtudisc: sk.pmtudisc,
                priority,
                hash,
                txq,
                no_check: sk.no_check,
                connected: connected && sk.remote.is_some(),
                confirm,
                corked: corkreq,
                recverr: sk.recverr,
                mc_loop: sk.mc_loop,
                opt: ip_opt,
                final_daddr,
            });
        } else if let Some(f) = sk.pending.flow.as_mut() {
            // Appending to a corked datagram: its destination stands.
            f.confirm |= confirm;
            f.corked = true;
        }
        let sb = SndBuf {
            acct: &sk.wmem,
            sndbuf: sk.sndbuf,
        };
        let mut p = std::mem::take(&mut sk.pending);
        let new_dgram = p.frags.is_empty();
        let r = match payload {
            Payload::Copy(buf) => self.ip_append_data(&mut p, buf, &sb),
            Payload::Mbuf(m) => self.ip_append_mbuf(&mut p, m, &sb),
        };
        let tsflags = o.tsflags.unwrap_or(sk.tsflags);
        if r.is_ok() && new_dgram && tsflags & super::cmsg::SOF_TIMESTAMPING_TX_SOFTWARE != 0 {
            // sock_tx_timestamp + the OPT_ID counter, once per datagram.
            p.tskey = Some(sk.tskey);
            sk.tskey = sk.tskey.wrapping_add(1);
        }
        if let Err(e) = r {
            // udp_sendmsg: a failed append flushes the pending datagram.
            p.flush();
            sk.pending = p;
            if matches!(e, Errno::EAGAIN | Errno::ENOBUFS) {
                self.counters.ip.out_discards.add(1);
                self.counters.udp.sndbuf_errors.add(1);
            }
            return Err(e);
        }
        let r = if corkreq {
            Ok(())
        } else {
            self.udp_push_pending_frames(&mut p, &mut sk.inet_id)
        };
        sk.pending = p;
        r.map(|()| len)
    }
}

/// A datagram's payload as `udp_sendmsg` gets it: bytes to copy (`send`,
/// `send_to`, `send_msg`) or a buffer to send as it is (`send_mbuf`).
pub(crate) enum Payload<'a> {
    Copy(&'a [u8]),
    Mbuf(Mbuf),
}

impl Payload<'_> {
    fn len(&self) -> usize {
        match self {
            Payload::Copy(b) => b.len(),
            Payload::Mbuf(m) => m.pkt_len(),
        }
    }
}

/// A UDP socket on this lcore's stack, with `std::net::UdpSocket`-like calls.
pub struct UdpSocket<'a> {
    st: &'a mut Stack,
    id: SocketId,
}

impl UdpSocket<'_> {
    pub fn id(&self) -> SocketId {
        self.id
    }

    fn with<R>(
        &mut self,
        f: impl FnOnce(&mut Stack, &mut Sock, usize) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        let mut sk = self.st.socks.take(self.id)?;
        let r = f(self.st, &mut sk, self.id.idx as usize);
        self.st.socks.put(self.id, sk);
        r
    }

    /// `bind`: `addr` must be 0.0.0.0, one of the stack's addresses, or a
    /// multicast group; port 0 picks an ephemeral port.
    pub fn bind(&mut self, addr: SocketAddrV4) -> Result<(), Errno> {
        self.with(|st, sk, idx| {
            if sk.local_port != 0 {
                return Err(Errno::EINVAL);
            }
            let a = *addr.ip();
            if !a.is_unspecified()
                && !a.is_multicast()
                && !a.is_broadcast()
                && st.port_of_addr(a).is_none()
            {
                return Err(Errno::EADDRNOTAVAIL);
            }
            st.socks.udp_lib_get_port(idx, sk, a, addr.port())
        })
    }

    /// `connect` (`ip4_datagram_connect`): resolves and caches the route,
    /// autobinds, and fixes the peer for `send` and for receive filtering.
    pub fn connect(&mut self, peer: SocketAddrV4) -> Result<(), Errno> {
        self.with(|st, sk, idx| {
            if peer.port() == 0 {
                return Err(Errno::EINVAL);
            }
            let want_src = (!sk.local_addr.is_unspecified() && !sk.local_addr.is_multicast())
                .then_some(sk.local_addr);
            let oif = if peer.ip().is_multicast() {
                sk.mc_if
            } else {
                None
            };
            // ip_route_connect: the socket's TOS, mark and SO_DONTROUTE.
            let fl = Flowi4 {
                daddr: *peer.ip(),
                saddr: want_src.unwrap_or(Ipv4Addr::UNSPECIFIED),
                oif,
                tos: sk.tos,
                scope: if sk.localroute {
                    RT_SCOPE_LINK
                } else {
                    RT_SCOPE_UNIVERSE
                },
                mark: sk.mark,
                proto: wire::IPPROTO_UDP,
                sport: sk.local_port,
                dport: peer.port(),
            };
            let d = match st.ip_route_output_key(&fl) {
                Ok(d) => d,
                Err(e) => {
                    if e == Errno::ENETUNREACH {
                        st.counters.ip.out_no_routes.add(1);
                    }
                    return Err(e);
                }
            };
            if d.broadcast && !sk.broadcast {
                return Err(Errno::EACCES);
            }
            if sk.local_port == 0 {
                st.socks
                    .udp_lib_get_port(idx, sk, Ipv4Addr::UNSPECIFIED, 0)?;
            }
            sk.remote = Some(peer);
            sk.dst = Some(d);
            sk.tmpl = None;
            // ip4_datagram_connect → sk_set_txhash: the flow hash, here of
            // the 4-tuple under the per-process key (Linux draws a random
            // one per socket); the queue is picked afresh for the new flow.
            sk.txhash = secret::flow_hash4(
                d.saddr.into(),
                (*peer.ip()).into(),
                sk.local_port,
                peer.port(),
                wire::IPPROTO_UDP,
                &st.hash_key,
            );
            sk.txq.clear();
            if let super::ip::NextHop::Neigh { idx, .. } = d.next {
                sk.neigh_fail_seen = st.neigh.get(idx).map_or(0, |n| n.fail_gen);
            }
            Ok(())
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddrV4, Errno> {
        let s = self.st.socks.get(self.id)?;
        Ok(SocketAddrV4::new(s.local_addr, s.local_port))
    }

    pub fn peer_addr(&self) -> Result<SocketAddrV4, Errno> {
        self.st.socks.get(self.id)?.remote.ok_or(Errno::ENOTCONN)
    }

    /// Sends to the connected peer.
    pub fn send(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        self.with(|st, sk, idx| {
            // What udp_sendmsg does first with no flags and no destination,
            // minus the checks a connected, bound, uncorked socket passes.
            if !sk.cork && sk.pending.is_empty() && sk.local_port != 0 && buf.len() <= 0xffff {
                if let Some(r) = st.udp_send_fast(sk, buf, false) {
                    return r;
                }
            }
            st.udp_sendmsg(sk, idx, buf, None, &SendOpts::default())
        })
    }

    /// `send` without the copy: `m`'s data is the payload (one buffer or a
    /// chain, e.g. a datagram [`UdpSocket::recv_mbuf`] returned), and the
    /// stack prepends the UDP, IPv4 and link-layer headers in its headroom
    /// and sends the buffer itself — the skb `ip_make_skb` builds for a
    /// `MSG_ZEROCOPY` send, its pages the user's. Frames, counters and
    /// errors are those of [`UdpSocket::send`] for the same bytes, with
    /// one more error: `EINVAL` when the headroom cannot take the headers
    /// (a buffer from a pool has `RTE_PKTMBUF_HEADROOM`-like room, 128
    /// bytes; one `recv_mbuf` returned has that and the headers it came
    /// with). `m` is charged to this socket's send buffer, unless it is
    /// charged to a sender's still (a `ring:` port passes the sender's own
    /// buffer): that charge stays until it is freed. A datagram larger
    /// than the path MTU is fragmented by copying (as Linux copies a
    /// zerocopy send it cannot map: `SO_EE_CODE_ZEROCOPY_COPIED`).
    ///
    /// The stack takes `m` in every case: on an error it is freed (UDP
    /// promises no delivery; the caller keeps no reference to retry with).
    pub fn send_mbuf(&mut self, m: Mbuf) -> Result<usize, Errno> {
        self.send_mbuf_msg(m, None, &SendOpts::default())
    }

    /// [`UdpSocket::send_mbuf`] to `addr` (`sendto`).
    pub fn send_mbuf_to(&mut self, m: Mbuf, addr: SocketAddrV4) -> Result<usize, Errno> {
        self.send_mbuf_msg(m, Some(addr), &SendOpts::default())
    }

    /// [`UdpSocket::send_msg`] with the payload in `m` (see
    /// [`UdpSocket::send_mbuf`]).
    pub fn send_mbuf_msg(
        &mut self,
        m: Mbuf,
        dest: Option<SocketAddrV4>,
        opts: &SendOpts,
    ) -> Result<usize, Errno> {
        self.with(|st, sk, idx| st.udp_sendmsg_payload(sk, idx, Payload::Mbuf(m), dest, opts))
    }

    /// Sends to `addr`.
    pub fn send_to(&mut self, buf: &[u8], addr: SocketAddrV4) -> Result<usize, Errno> {
        self.send_msg(buf, Some(addr), &SendOpts::default())
    }

    /// Plays `udp_sendmsg`: per-call options, corking, routing, checksum.
    pub fn send_msg(
        &mut self,
        buf: &[u8],
        dest: Option<SocketAddrV4>,
        opts: &SendOpts,
    ) -> Result<usize, Errno> {
        self.with(|st, sk, idx| st.udp_sendmsg(sk, idx, buf, dest, opts))
    }

    /// `sendmsg` with control messages: [`super::cmsg::ip_cmsg_send`]
    /// parses `cmsgs` (Linux's size and range checks, its `EINVAL`s; an
    /// `ipi_ifindex` no port has is `ENODEV`), then the datagram goes as
    /// [`UdpSocket::send_msg`] sends it. The options hold for this
    /// datagram only; a connected socket's cached route and header
    /// template stay as they were (Linux clears `connected` for a send
    /// with cmsgs), so the next plain `send` is on the fast path again.
    pub fn send_cmsg(
        &mut self,
        buf: &[u8],
        dest: Option<SocketAddrV4>,
        cmsgs: &[super::cmsg::Cmsg],
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        let o = super::cmsg::send_opts(cmsgs, flags, self.st.ports.len())?;
        self.send_msg(buf, dest, &o)
    }

    /// Whether the connected-socket header template exists (tests).
    #[cfg(test)]
    pub(crate) fn has_template(&self) -> bool {
        self.st.socks.get(self.id).is_ok_and(|s| s.tmpl.is_some())
    }

    /// Sends each buffer as one datagram to the connected peer, like
    /// `sendmmsg`: returns how many were sent; an error only when the first
    /// one fails (later failures end the batch early).
    pub fn send_batch(&mut self, bufs: &[&[u8]]) -> Result<usize, Errno> {
        self.with(|st, sk, idx| {
            if sk.pending.is_empty() && !sk.cork {
                if let Some(r) = st.udp_send_fast_batch(sk, bufs) {
                    return r;
                }
            }
            let o = SendOpts::default();
            for (i, b) in bufs.iter().enumerate() {
                if let Err(e) = st.udp_sendmsg(sk, idx, b, None, &o) {
                    return if i == 0 { Err(e) } else { Ok(i) };
                }
            }
            Ok(bufs.len())
        })
    }

    /// Reads one datagram: copies what fits into `buf` (the rest is
    /// discarded, like `MSG_TRUNC` semantics) and returns the bytes copied and
    /// the sender. `EAGAIN` when the queue is empty.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), Errno> {
        self.with(|st, sk, _| {
            let (src, m) = skb_recv_udp(sk, &st.counters)?;
            let mut n = 0;
            for s in m.segments() {
                let k = s.data.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&s.data[..k]);
                n += k;
            }
            Ok((n, src))
        })
    }

    /// `recvmsg` without the copy: the oldest datagram as the mbuf it
    /// arrived in (its data is the UDP payload, possibly a chain of
    /// segments: a reassembled datagram) and its sender. The caller owns
    /// the buffer (drop it, or send it on with any port); errors as
    /// [`UdpSocket::recv_from`].
    pub fn recv_mbuf(&mut self) -> Result<(Mbuf, SocketAddrV4), Errno> {
        self.with(|st, sk, _| skb_recv_udp(sk, &st.counters).map(|(src, m)| (m, src)))
    }

    /// `connect(AF_UNSPEC)` (`__udp_disconnect`): forgets the peer, the
    /// cached route and header template (`sk_dst_reset`); the bound address
    /// and port stay (connect never set the source here: it lives in the
    /// cached route). Datagrams from anyone reach the socket again, and a
    /// `send` without a destination is `EDESTADDRREQ`.
    pub fn disconnect(&mut self) -> Result<(), Errno> {
        self.with(|_st, sk, _| {
            sk.remote = None;
            sk.dst = None;
            sk.tmpl = None;
            sk.txq.clear();
            Ok(())
        })
    }

    /// `SO_ERROR` (`sock_error`): the pending error, cleared by reading it.
    pub fn take_error(&mut self) -> Result<Option<Errno>, Errno> {
        Ok(self.st.socks.get_mut(self.id)?.sk_err.take())
    }

    /// `IP_RECVERR`: on, every ICMP error for the socket's datagrams is
    /// queued for [`UdpSocket::recv_err`] and sets the pending error, on
    /// unconnected sockets too; off (the default), only hard errors reach
    /// connected sockets. Turning it off purges the queue, as Linux does.
    pub fn set_recverr(&mut self, on: bool) -> Result<(), Errno> {
        let s = self.st.socks.get_mut(self.id)?;
        s.recverr = on;
        if !on {
            for (_, t) in s.errq.drain(..) {
                s.rx_bytes -= t;
            }
        }
        Ok(())
    }

    /// `recvmsg(MSG_ERRQUEUE)` (`ip_recv_error`): the oldest queued error;
    /// `EAGAIN` when none. As `sock_dequeue_err_skb`, the pending error
    /// becomes the next queued error's errno, or clears when none is left.
    pub fn recv_err(&mut self) -> Result<SockExtendedErr, Errno> {
        let s = self.st.socks.get_mut(self.id)?;
        let (e, t) = s.errq.pop_front().ok_or(Errno::EAGAIN)?;
        s.rx_bytes -= t;
        s.sk_err = s.errq.front().map(|(n, _)| n.ee_errno);
        Ok(e)
    }

    /// `SO_TIMESTAMPING` (`sock_set_timestamping`): `SOF_TIMESTAMPING_TX_SOFTWARE`
    /// asks for a software transmit timestamp of every datagram — the time
    /// the netdev layer hands it to the driver (`skb_tx_timestamp`), read
    /// back with [`UdpSocket::recv_tx_timestamp`]; `SOF_TIMESTAMPING_SOFTWARE`
    /// and `SOF_TIMESTAMPING_OPT_ID` are accepted (the key is always the
    /// OPT_ID counter). Hardware, scheduler and ACK timestamps are
    /// `EOPNOTSUPP`: no driver here reports them. Turning it on takes the
    /// socket off the connected fast path.
    pub fn set_timestamping(&mut self, flags: u32) -> Result<(), Errno> {
        super::cmsg::check_tsflags(flags)?;
        let s = self.st.socks.get_mut(self.id)?;
        if flags & super::cmsg::SOF_TIMESTAMPING_OPT_ID != 0
            && s.tsflags & super::cmsg::SOF_TIMESTAMPING_OPT_ID == 0
        {
            // sock_set_timestamping: OPT_ID restarts the counter.
            s.tskey = 0;
        }
        s.tsflags = flags;
        Ok(())
    }

    /// `recvmsg(MSG_ERRQUEUE)` for a transmit timestamp (`SO_EE_ORIGIN_TIMESTAMPING`:
    /// `ee_data` is the key, `SCM_TIMESTAMPING` `ts[0]` the time), oldest
    /// first; `EAGAIN` when none is waiting. A datagram the stack or the
    /// device dropped before the driver took it has none.
    pub fn recv_tx_timestamp(&mut self) -> Result<crate::mbuf::TxTimestamp, Errno> {
        let s = self.st.socks.get(self.id)?;
        s.wmem.take_tstamp().ok_or(Errno::EAGAIN)
    }

    /// Errors waiting on the error queue.
    pub fn err_queue_len(&self) -> Result<usize, Errno> {
        Ok(self.st.socks.get(self.id)?.errq.len())
    }

    /// `SO_SNDBUF` as `sk_setsockopt` takes it: capped at
    /// [`super::StackConfig::wmem_max`] (`net.core.wmem_max`), then doubled
    /// for bookkeeping overhead, at least `SOCK_MIN_SNDBUF` (4608).
    pub fn set_sndbuf(&mut self, bytes: u32) -> Result<(), Errno> {
        let max = self.st.socks.wmem_max;
        let s = self.st.socks.get_mut(self.id)?;
        s.sndbuf = ((bytes as u64).min(max) * 2).max(SOCK_MIN_BUF);
        Ok(())
    }
    pub fn sndbuf(&self) -> Result<u32, Errno> {
        Ok(self.st.socks.get(self.id)?.sndbuf as u32)
    }
    /// `SO_RCVBUF` (doubled, as Linux).
    pub fn set_rcvbuf(&mut self, bytes: u32) -> Result<(), Errno> {
        let s = self.st.socks.get_mut(self.id)?;
        s.rcvbuf = (bytes as u64 * 2).max(SOCK_MIN_BUF);
        Ok(())
    }
    /// Send-buffer bytes charged and not yet completed (`sk_wmem_alloc`).
    pub fn wmem_in_flight(&self) -> Result<u64, Errno> {
        Ok(self.st.socks.get(self.id)?.wmem.in_flight())
    }

    /// `/proc/net/udp`'s `rx_queue` (`sk_rmem_alloc`: the receive queue's
    /// truesize) and `drops` (`sk_drops`: datagrams the receive buffer refused).
    pub fn rx_queue_and_drops(&self) -> Result<(u64, u64), Errno> {
        let s = self.st.socks.get(self.id)?;
        Ok((s.rx_bytes, s.drops))
    }
    /// `SO_PRIORITY`: copied to each packet's priority (the qdisc band / TC).
    pub fn set_priority(&mut self, prio: u8) -> Result<(), Errno> {
        self.st.socks.get_mut(self.id)?.priority = prio;
        Ok(())
    }
    /// `IP_OPTIONS` (`do_ip_setsockopt` → `ip_options_get`): checks `opts`
    /// as [`super::ipopt::ip_options_compile`] does (EINVAL naming the bad
    /// byte), pads them to a multiple of 4 with End and stores them; every
    /// later datagram carries them (`ip_options_build`). Empty `opts`
    /// removes them. A source route's first address becomes the
    /// datagram's IP destination and next hop. A socket with options sends
    /// on the general path only (no connected header template).
    pub fn set_ip_options(&mut self, opts: &[u8]) -> Result<(), super::ipopt::IpOptError> {
        let compiled = super::ipopt::ip_options_compile(opts)?;
        let s = self.st.socks.get_mut(self.id)?;
        s.ip_opt = compiled;
        s.tmpl = None;
        Ok(())
    }

    /// The socket's options as `getsockopt(IP_OPTIONS)` returns them
    /// (padded; a source route without its first hop, as Linux stores it).
    pub fn ip_options(&self, out: &mut [u8; 40]) -> Result<usize, Errno> {
        let s = self.st.socks.get(self.id)?;
        Ok(s.ip_opt.map_or(0, |o| {
            out[..o.len as usize].copy_from_slice(o.bytes());
            o.len as usize
        }))
    }

    /// `IP_TOS`: as Linux's `__ip_sock_set_tos`, a changed TOS also sets
    /// the socket priority to [`super::rt_tos2priority`] of it (so TOS
    /// picks the `pfifo_fast` band); a later `SO_PRIORITY` overrides it.
    pub fn set_tos(&mut self, tos: u8) -> Result<(), Errno> {
        let s = self.st.socks.get_mut(self.id)?;
        if s.tos != tos {
            s.tos = tos;
            s.priority = super::rt_tos2priority(tos);
            s.tmpl = None;
            // sk_dst_reset: TOS takes part in the route lookup.
            s.dst = None;
        }
        Ok(())
    }
    /// `SO_MARK`: the mark `fwmark` rules match (`sk_mark`); the cached
    /// route is dropped (`sk_dst_reset`).
    pub fn set_mark(&mut self, mark: u32) -> Result<(), Errno> {
        let s = self.st.socks.get_mut(self.id)?;
        if s.mark != mark {
            s.mark = mark;
            s.dst = None;
            s.tmpl = None;
        }
        Ok(())
    }
    /// `SO_DONTROUTE` (`SOCK_LOCALROUTE`): every datagram as with
    /// `MSG_DONTROUTE`, to on-link destinations only.
    pub fn set_dontroute(&mut self, on: bool) -> Result<(), Errno> {
        self.st.socks.get_mut(self.id)?.localroute = on;
        Ok(())
    }
    /// The socket's priority (`SO_PRIORITY` / from `IP_TOS`).
    pub fn priority(&self) -> Result<u8, Errno> {
        Ok(self.st.socks.get(self.id)?.priority)
    }
    /// The connected flow's hash (`sk_txhash`; 0 while unconnected), which
    /// every packet of the socket carries (`Mbuf::hash`) for the XPS pick.
    pub fn tx_hash(&self) -> Result<u32, Errno> {
        Ok(self.st.socks.get(self.id)?.txhash)
    }
    /// The TX queue the socket's flow is cached on (`sk_tx_queue_get`), once
    /// the output boundary has picked one.
    pub fn tx_queue(&self) -> Result<Option<usize>, Errno> {
        Ok(self.st.socks.get(self.id)?.txq.get())
    }
    /// True when a send now would be refused before any datagram is built
    /// (and so counted in `OutDiscards`/`SndbufErrors`): the send buffer is
    /// full (`sk_wmem_alloc >= sk_sndbuf`, the test `sock_alloc_send_pskb`
    /// fails with EAGAIN) or the pool has no buffer (ENOBUFS). Counts
    /// nothing. An application that retries a refused datagram checks this
    /// first — as a Linux one waits in `poll(POLLOUT)` (`sock_writeable`)
    /// rather than spinning on EAGAIN — so each datagram is refused, and
    /// counted, at most once.
    pub fn would_block(&self) -> Result<bool, Errno> {
        let s = self.st.socks.get(self.id)?;
        Ok(s.wmem.in_flight() >= s.sndbuf || self.st.pool.stats().available == 0)
    }
    /// `poll(POLLOUT)` for a datagram socket (`datagram_poll` →
    /// `sock_writeable`): true while less than half the send buffer is in
    /// flight, the threshold at which Linux wakes a blocked writer.
    pub fn poll_writable(&self) -> Result<bool, Errno> {
        let s = self.st.socks.get(self.id)?;
        Ok(s.wmem.in_flight() < s.sndbuf / 2)
    }
    /// `IP_TTL` (`set_ttl(0)` is EINVAL as in Linux; use the default with `None`).
    pub fn set_ttl(&mut self, ttl: Option<u8>) -> Result<(), Errno> {
        if ttl == Some(0) {
            return Err(Errno::EINVAL);
        }
        let s = self.st.socks.get_mut(self.id)?;
        s.ttl = ttl;
        s.tmpl = None;
        Ok(())
    }
    /// `IP_ADD_MEMBERSHIP` (`ip_mc_join_group`): joins `group` on the port
    /// whose address is `iface` (0.0.0.0: the port a route to the group
    /// takes). EINVAL for a non-multicast group, ENODEV for no such port,
    /// EADDRINUSE when already joined there, ENOBUFS past
    /// `igmp_max_memberships` (20). The port's first member sends IGMPv2
    /// reports ([`super::igmp`]).
    pub fn join_multicast_v4(&mut self, group: Ipv4Addr, iface: Ipv4Addr) -> Result<(), Errno> {
        if !group.is_multicast() {
            return Err(Errno::EINVAL);
        }
        let port = self.st.mc_find_port(group, iface)?;
        let s = self.st.socks.get_mut(self.id)?;
        if s.mc_list.contains(&(group, port)) {
            return Err(Errno::EADDRINUSE);
        }
        if s.mc_list.len() >= super::igmp::IGMP_MAX_MEMBERSHIPS {
            return Err(Errno::ENOBUFS);
        }
        s.mc_list.push((group, port));
        self.st.ip_mc_inc_group(port, group);
        Ok(())
    }

    /// `IP_DROP_MEMBERSHIP` (`ip_mc_leave_group`): EADDRNOTAVAIL when this
    /// socket has not joined `group` there. The port's last member sends
    /// the IGMPv2 leave.
    pub fn leave_multicast_v4(&mut self, group: Ipv4Addr, iface: Ipv4Addr) -> Result<(), Errno> {
        let port = self
            .st
            .mc_find_port(group, iface)
            .map_err(|_| Errno::EADDRNOTAVAIL)?;
        let s = self.st.socks.get_mut(self.id)?;
        let Some(k) = s.mc_list.iter().position(|&x| x == (group, port)) else {
            return Err(Errno::EADDRNOTAVAIL);
        };
        s.mc_list.remove(k);
        self.st.ip_mc_dec_group(port, group);
        self.st.xmit.flush();
        Ok(())
    }

    /// `IP_MULTICAST_LOOP` (default on).
    pub fn set_multicast_loop(&mut self, on: bool) -> Result<(), Errno> {
        self.st.socks.get_mut(self.id)?.mc_loop = on;
        Ok(())
    }

    /// `IP_MULTICAST_ALL` (default on): off, the socket receives only the
    /// groups it joined itself (`ip_mc_sf_allow`).
    pub fn set_multicast_all(&mut self, on: bool) -> Result<(), Errno> {
        self.st.socks.get_mut(self.id)?.mc_all = on;
        Ok(())
    }

    /// `IP_MULTICAST_TTL` (default 1).
    pub fn set_multicast_ttl(&mut self, ttl: u8) -> Result<(), Errno> {
        self.st.socks.get_mut(self.id)?.mc_ttl = ttl;
        Ok(())
    }
    /// `IP_MULTICAST_IF`: the local address whose port sends multicast.
    pub fn set_multicast_if(&mut self, addr: Option<Ipv4Addr>) -> Result<(), Errno> {
        let port = match addr {
            Some(a) => Some(self.st.port_of_addr(a).ok_or(Errno::EADDRNOTAVAIL)?),
            None => None,
        };
        let s = self.st.socks.get_mut(self.id)?;
        s.mc_if = port;
        s.dst = None;
        s.tmpl = None;
        Ok(())
    }
    /// `SO_BROADCAST`.
    pub fn set_broadcast(&mut self, on: bool) -> Result<(), Errno> {
        self.st.socks.get_mut(self.id)?.broadcast = on;
        Ok(())
    }
    /// `SO_NO_CHECK`: send UDP checksum 0.
    pub fn set_no_check(&mut self, on: bool) -> Result<(), Errno> {
        let s = self.st.socks.get_mut(self.id)?;
        s.no_check = on;
        s.tmpl = None;
        Ok(())
    }
    /// `IP_MTU_DISCOVER`.
    pub fn set_mtu_discover(&mut self, mode: PmtuDisc) -> Result<(), Errno> {
        let s = self.st.socks.get_mut(self.id)?;
        s.pmtudisc = mode;
        s.tmpl = None;
        Ok(())
    }
    /// `IP_MTU`: the path MTU of a connected socket.
    pub fn mtu(&self) -> Result<u32, Errno> {
        let s = self.st.socks.get(self.id)?;
        s.remote.ok_or(Errno::ENOTCONN)?;
        s.dst.map(|d| d.mtu).ok_or(Errno::ENOTCONN)
    }
    /// `UDP_CORK`: while set, sends append to one pending datagram; clearing
    /// it sends that datagram (`udp_push_pending_frames`).
    pub fn set_cork(&mut self, on: bool) -> Result<(), Errno> {
        self.with(|st, sk, _| {
            sk.cork = on;
            if !on && !sk.pending.is_empty() {
                let mut p = std::mem::take(&mut sk.pending);
                let r = st.udp_push_pending_frames(&mut p, &mut sk.inet_id);
                sk.pending = p;
                return r;
            }
            Ok(())
        })
    }
    /// Bytes waiting in the pending (corked) datagram, UDP header included.
    pub fn pending_len(&self) -> Result<usize, Errno> {
        Ok(self.st.socks.get(self.id)?.pending.length)
    }
}
