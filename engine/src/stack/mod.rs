//! The protocol stack: wire formats, routes, neighbours/ARP, IPv4 output,
//! UDP sockets, SNMP counters, RX demux — the upper half of the Linux
//! transmit path, one [`Stack`] per lcore.
//!
//! ```text
//! UdpSocket::send_to ─► udp.rs   (inet_autobind, udp_sendmsg, ip_append_data,
//!                                 udp_push_pending_frames, udp_send_skb, udp4_hwcsum)
//!                   ─► ip.rs    (ip_route_output_flow, ip_make_skb, ip_send_skb,
//!                                 __ip_local_out, ip_output, ip_finish_output,
//!                                 ip_fragment, ip_finish_output2)
//!                   ─► neigh.rs (neigh_output, neigh_hh_output, neigh_resolve_output)
//!                   ─► L2Xmit::queue_xmit  (dev_queue_xmit: netdev, or a TxQueue directly)
//! Stack::rx ───────► rx.rs    (eth → arp_rcv / ip_rcv → icmp_rcv / udp_rcv)
//! ```
//!
//! | Linux (seeds)                                   | wirespeed                                   |
//! |-------------------------------------------------|---------------------------------------------|
//! | `inet_create`                                   | [`Stack::udp_socket`]                       |
//! | `inet_autobind`, `udp_lib_get_port`             | `udp::SocketTable::get_port` (bind/connect/send) |
//! | `ip4_datagram_connect`                          | [`UdpSocket::connect`]                      |
//! | `udp_sendmsg`                                   | `Stack::udp_sendmsg` ([`UdpSocket::send_msg`]) |
//! | `ip_route_output_flow`, `fib_lookup`            | `Stack::route_output`, [`RouteTable::lookup`] |
//! | `ip_append_data`, `__ip_append_data`            | `Stack::ip_append_data`                     |
//! | `udp_push_pending_frames`, `udp_send_skb`, `udp4_hwcsum` | `Stack::udp_push_pending_frames`         |
//! | `ip_make_skb`, `ip_send_skb`, `__ip_local_out`, `ip_output`, `ip_finish_output`, `ip_fragment` | `Stack::ip_send` |
//! | `NF_INET_LOCAL_OUT`, `NF_INET_POST_ROUTING`     | [`Hook`]s in `Stack::ip_output_one`         |
//! | `ip_finish_output2`                             | `Stack::ip_finish_output2`                  |
//! | `neigh_output`, `neigh_hh_output`, `neigh_resolve_output`, `__neigh_event_send` | `neigh::NeighTable::neigh_output` |
//! | `neigh_timer_handler`, `neigh_periodic_work`    | `neigh::NeighTable::poll_timers` (via [`Stack::poll_timers`]) |
//! | `arp_process`, `arp_send_dst`                   | `neigh::NeighTable::arp_input`, `neigh::send_arp` |
//! | `dev_queue_xmit` (caller side)                  | [`L2Xmit::queue_xmit`]                      |
//! | `ip_rcv`, `icmp_rcv`, `__udp4_lib_rcv`          | [`Stack::rx`] (rx.rs)                       |
//! | connected-socket `hh_cache` fast path           | `Stack::udp_send_fast` (udp.rs)             |
//! | `sk_set_txhash`, `sk_tx_queue_set`, `skb_set_queue_mapping` | [`UdpSocket::connect`], [`L2Xmit::pick_tx`], [`set_tx_queue_mapping`] |
//! | `rt_tos2priority` (`__ip_sock_set_tos`, `ip_cmsg_send`) | [`rt_tos2priority`], [`UdpSocket::set_tos`] |
//! | `icmp_global_allow`/`icmp_global_consume`, `icmpv4_xrlim_allow` | `Stack::icmp_send` (rx.rs), [`IcmpParams`] |
//! | `__ip_select_ident`, `ip_idents_reserve`, `siphash` | `ip::IpIdents`, `secret.rs`               |
//! | `sock_writeable` / `sock_alloc_send_pskb` test  | [`UdpSocket::poll_writable`], [`UdpSocket::would_block`] |
//! | `__udp4_lib_err`, `icmp_err_convert`, `ip_icmp_error`, `ip_recv_error` | `Stack::udp4_lib_err`, [`UdpSocket::recv_err`], [`UdpSocket::take_error`] |
//! | `ip_expire` → `icmp_send(ICMP_TIME_EXCEEDED)`   | [`Stack::poll_timers`] (frag.rs `Reassembly::expire`) |
//! | `neigh_alloc`, `neigh_forced_gc` (`gc_thresh*`), `unres_qlen_bytes` | `neigh::NeighTable::lookup_or_create`, [`NeighParams`] |
//! | `ip_mc_join_group`, `igmp_send_report`, `ip_mc_output` loopback | [`UdpSocket::join_multicast_v4`], `igmp.rs`, `Stack::ip_send_skb` |
//!
//! The stack is single-threaded by design (an lcore owns it): no locks, no
//! atomics except the single-writer counters, no heap allocation per packet.
//! Time is what the runtime last passed to [`Stack::poll_timers`] (a jiffies
//! reading): the data path never reads a clock.

pub mod checksum;
pub mod cmsg;
pub mod fib_rules;
mod frag;
pub mod igmp;
mod ip;
pub mod ipopt;
pub mod neigh;
pub mod route;
mod rx;
mod secret;
pub mod shared;
pub mod snmp;
pub mod tcp;
mod udp;
pub mod wire;

pub use cmsg::{port_ifindex, Cmsg};
pub use fib_rules::{Fib, FibRule, Flowi4, RuleAction, RuleConf, RuleSelector};
pub use neigh::{NeighInfo, NeighParams, NudState};
pub use route::{Nexthop, Route, RouteError, RouteKind, RouteTable, RouteType};
pub use rx::IcmpParams;
pub use snmp::{SnmpSnapshot, StackCounters};
pub use tcp::{CongAlgo, SpliceVec, TcpConfig, TcpId, TcpInfo, TcpPoll, TcpSocket, TcpState};
pub use udp::{
    MsgFlags, PmtuDisc, SendOpts, SockExtendedErr, SocketId, UdpSocket, SO_EE_ORIGIN_ICMP,
};

use crate::ethdev::{MacAddr, TxQueue};
use crate::mbuf::{Burst, Mbuf, Mempool};
use crate::netdev::{NetdevQueue, TxQueueCache};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Errno-like errors of socket calls (the values Linux returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Errno {
    #[error("ENETUNREACH: no route to the destination network (add a route or a default route)")]
    ENETUNREACH,
    #[error("EHOSTUNREACH: the next hop did not answer ARP, or the route to it is `unreachable`")]
    EHOSTUNREACH,
    #[error(
        "EMSGSIZE: datagram too large (for the 64 KiB limit, or the path MTU with IP_PMTUDISC_DO)"
    )]
    EMSGSIZE,
    #[error("ENOBUFS: no packet buffers (mempool empty) or the device queue refused the packet")]
    ENOBUFS,
    #[error("EAGAIN: the socket send buffer is full (wait for completions or raise SO_SNDBUF), or nothing to receive")]
    EAGAIN,
    #[error("EACCES: a broadcast destination needs SO_BROADCAST, or a `prohibit` route or rule covers it")]
    EACCES,
    #[error("EADDRINUSE: the local address and port are already bound")]
    EADDRINUSE,
    #[error("EADDRNOTAVAIL: the address is not one of this stack's port addresses")]
    EADDRNOTAVAIL,
    #[error("EINVAL: invalid argument (e.g. binding an already bound socket, a source address not ours, or a `blackhole` route or rule)")]
    EINVAL,
    #[error("EDESTADDRREQ: the socket is not connected and no destination was given")]
    EDESTADDRREQ,
    #[error("ENOTCONN: the socket is not connected")]
    ENOTCONN,
    #[error("EBADF: the socket is closed")]
    EBADF,
    #[error("EPERM: an output hook dropped the packet")]
    EPERM,
    #[error("EMFILE: too many sockets on this lcore")]
    EMFILE,
    #[error("ECONNREFUSED: the peer answered the SYN with a reset (nothing listens on that port)")]
    ECONNREFUSED,
    #[error("ETIMEDOUT: the peer stopped answering (SYN or data retransmissions ran out)")]
    ETIMEDOUT,
    #[error("ECONNRESET: the peer reset the connection")]
    ECONNRESET,
    #[error("EPIPE: the connection is shut down for sending or closed")]
    EPIPE,
    #[error("EISCONN: the socket is already connected (use a new socket)")]
    EISCONN,
    #[error("EALREADY: a connection attempt is already in progress")]
    EALREADY,
    #[error("ENODEV: no such port (the output interface asked for does not exist)")]
    ENODEV,
    #[error("ENOPROTOOPT: the peer reported the protocol unreachable (ICMP protocol unreachable)")]
    ENOPROTOOPT,
    #[error("EOPNOTSUPP: a router reported the source route failed (ICMP source route failed)")]
    EOPNOTSUPP,
    #[error("EHOSTDOWN: a router reported the destination host unknown (ICMP host unknown)")]
    EHOSTDOWN,
    #[error("ENONET: a router reported the source host isolated (ICMP host isolated)")]
    ENONET,
    #[error("EPROTO: the peer reported a bad IP header (ICMP parameter problem)")]
    EPROTO,
}

impl Errno {
    /// The Linux errno value.
    pub fn code(self) -> i32 {
        match self {
            Errno::ENETUNREACH => libc::ENETUNREACH,
            Errno::EHOSTUNREACH => libc::EHOSTUNREACH,
            Errno::EMSGSIZE => libc::EMSGSIZE,
            Errno::ENOBUFS => libc::ENOBUFS,
            Errno::EAGAIN => libc::EAGAIN,
            Errno::EACCES => libc::EACCES,
            Errno::EADDRINUSE => libc::EADDRINUSE,
            Errno::EADDRNOTAVAIL => libc::EADDRNOTAVAIL,
            Errno::EINVAL => libc::EINVAL,
            Errno::EDESTADDRREQ => libc::EDESTADDRREQ,
            Errno::ENOTCONN => libc::ENOTCONN,
            Errno::EBADF => libc::EBADF,
            Errno::EPERM => libc::EPERM,
            Errno::EMFILE => libc::EMFILE,
            Errno::ECONNREFUSED => libc::ECONNREFUSED,
            Errno::ETIMEDOUT => libc::ETIMEDOUT,
            Errno::ECONNRESET => libc::ECONNRESET,
            Errno::EPIPE => libc::EPIPE,
            Errno::EISCONN => libc::EISCONN,
            Errno::EALREADY => libc::EALREADY,
            Errno::ENODEV => libc::ENODEV,
            Errno::ENOPROTOOPT => libc::ENOPROTOOPT,
            Errno::EOPNOTSUPP => libc::EOPNOTSUPP,
            Errno::EHOSTDOWN => libc::EHOSTDOWN,
            Errno::ENONET => libc::ENONET,
            Errno::EPROTO => libc::EPROTO,
        }
    }
}

/// Why the layer below refused a frame (it has freed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum XmitDrop {
    #[error("transmit queue full")]
    QueueFull,
    #[error("qdisc dropped the packet")]
    Qdisc,
    #[error("link down")]
    LinkDown,
    #[error("no such port")]
    NoPort,
}

/// The stack's output boundary: the caller side of `dev_queue_xmit`. The
/// netdev layer (XPS pick, qdisc, BQL) implements it in the runtime;
/// [`DirectXmit`] implements it straight over TX queues.
///
/// `queue_xmit` consumes the frame either way, as `dev_queue_xmit` consumes the skb.
/// Counting rule (packet conservation): a frame refused with `Err` is counted
/// by the caller (the stack: `OutDiscards`, and `SndbufErrors` for UDP, or a
/// neighbour/ARP counter); a frame accepted and dropped later is counted by
/// the implementation (qdisc drops, [`DirectXmit::drops`]).
pub trait L2Xmit {
    /// Plays the part of `dev_queue_xmit`: takes a complete L2 frame for `port`.
    fn queue_xmit(&mut self, port: u16, m: Mbuf) -> Result<(), XmitDrop>;
    /// Takes every frame of `pkts` (all for `port`), like `queue_xmit` on
    /// each; returns how many were refused (freed; the caller counts them).
    fn queue_xmit_burst(&mut self, port: u16, pkts: &mut Burst) -> usize {
        let mut refused = 0;
        while let Some(m) = pkts.pop_front() {
            if self.queue_xmit(port, m).is_err() {
                refused += 1;
            }
        }
        refused
    }
    /// Pushes out anything batched (one doorbell for the batch).
    fn flush(&mut self) {}
    /// Reclaims completed packets (TX clean), releasing send-buffer charges.
    fn reclaim(&mut self) {}
    /// Plays the part of `netdev_pick_tx` → `__netdev_pick_tx` seen from a
    /// socket: the queue (local index among this lcore's queues of `port`)
    /// a packet with flow hash `hash` goes to, through the socket's cache
    /// `cache` (`sk_tx_queue_get` / `sk_tx_queue_set`). `None` when this
    /// boundary has a single queue per port or does not know its queues
    /// yet; the packet then carries only its hash.
    fn pick_tx(
        &mut self,
        _port: u16,
        _cache: &mut TxQueueCache,
        _hash: u32,
        _priority: u8,
    ) -> Option<u16> {
        None
    }
}

/// Marks `m` with the TX queue its socket's cache chose (Linux
/// `skb_set_queue_mapping` after `sk_tx_queue_set`). The mark lives in the
/// mbuf's owner word ([`Mbuf::user`]); the output boundary reads it with
/// [`tx_queue_mapping`] and falls back to the flow hash when it is absent or
/// no longer valid.
#[inline]
pub fn set_tx_queue_mapping(m: &mut Mbuf, local_queue: u16) {
    m.set_user(TXQ_MAPPED | local_queue as u64);
}

/// The queue mark [`set_tx_queue_mapping`] left, if any (`skb_get_queue_mapping`).
#[inline]
pub fn tx_queue_mapping(m: &Mbuf) -> Option<u16> {
    let u = m.user();
    (u & TXQ_MAPPED != 0).then_some(u as u16)
}

const TXQ_MAPPED: u64 = 1 << 63;

/// Plays the part of `rt_tos2priority` (include/net/route.h): the packet
/// priority (`skb->priority`, which selects the `pfifo_fast` band through
/// `prio2band`) that an IP TOS byte implies, by the kernel's `ip_tos2prio`
/// table (net/ipv4/route.c) indexed by `IPTOS_TOS(tos) >> 1`. Linux sets
/// `sk->sk_priority` from it on `setsockopt(IP_TOS)` (`__ip_sock_set_tos`)
/// and the per-call priority on an `IP_TOS` cmsg (`ip_cmsg_send`).
pub fn rt_tos2priority(tos: u8) -> u8 {
    // TC_PRIO_BESTEFFORT 0, FILLER 1, BULK 2, INTERACTIVE_BULK 4, INTERACTIVE 6;
    // ECN_OR_COST(class) is the class itself.
    const IP_TOS2PRIO: [u8; 16] = [0, 1, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4];
    // IPTOS_TOS_MASK = 0x1e.
    IP_TOS2PRIO[((tos & 0x1e) >> 1) as usize]
}

/// Hands frames straight to one [`TxQueue`] per port, batching up to 32
/// frames per `tx_burst` (one doorbell per batch) — a device with no qdisc,
/// like `dev_queue_xmit` on a `noqueue` device calling `dev_hard_start_xmit`.
/// Frames that do not fit the ring are dropped and counted.
pub struct DirectXmit {
    queues: Vec<Box<dyn TxQueue>>,
    pending: Vec<Burst>,
    batch: usize,
    /// Frames accepted by `queue_xmit` that the ring then refused.
    pub drops: u64,
}

impl DirectXmit {
    pub fn new(queues: Vec<Box<dyn TxQueue>>) -> DirectXmit {
        let pending = queues.iter().map(|_| Burst::new()).collect();
        DirectXmit {
            queues,
            pending,
            batch: 32,
            drops: 0,
        }
    }
    /// Frames per doorbell (1..=256).
    pub fn with_batch(mut self, n: usize) -> DirectXmit {
        self.batch = n.clamp(1, crate::mbuf::BURST_MAX);
        self
    }
    fn flush_port(&mut self, p: usize) {
        let b = &mut self.pending[p];
        if b.is_empty() {
            return;
        }
        self.queues[p].tx_burst(b);
        if !b.is_empty() {
            self.queues[p].clean(usize::MAX);
            self.queues[p].tx_burst(b);
        }
        self.drops += b.len() as u64;
        b.clear();
    }
    pub fn queue(&mut self, port: u16) -> Option<&mut Box<dyn TxQueue>> {
        self.queues.get_mut(port as usize)
    }
}

/// Adds a frame to port `p`'s batch (one burst per queue); returns the batch
/// length. A frame refused here is freed and the caller counts it.
#[inline(always)]
fn stage(pending: &mut [Burst], p: usize, m: Mbuf) -> Result<usize, XmitDrop> {
    let Some(b) = pending.get_mut(p) else {
        return Err(XmitDrop::NoPort);
    };
    if let Err(m) = b.push(m) {
        drop(m);
        return Err(XmitDrop::QueueFull);
    }
    Ok(b.len())
}

impl L2Xmit for DirectXmit {
    #[inline]
    fn queue_xmit(&mut self, port: u16, m: Mbuf) -> Result<(), XmitDrop> {
        let p = port as usize;
        if stage(&mut self.pending, p, m)? >= self.batch {
            self.flush_port(p);
        }
        Ok(())
    }
    fn flush(&mut self) {
        for p in 0..self.queues.len() {
            self.flush_port(p);
        }
    }
    fn reclaim(&mut self) {
        for q in &mut self.queues {
            q.clean(usize::MAX);
        }
    }
}

/// The stack's output over the netdev layer: frames are gathered per port
/// (the `xmit_more` batch) and handed to [`NetdevQueue::xmit_burst`] —
/// `__dev_xmit_skb`: qdisc bypass or enqueue, `__qdisc_run`, BQL — when 32
/// are waiting or on [`L2Xmit::flush`]; [`L2Xmit::reclaim`] runs each queue's
/// completion + qdisc service (`netdev_tx_completed_queue`, wake, run).
/// One [`NetdevQueue`] per port: the queue this lcore owns on that port.
/// Drops after acceptance are counted by the netdev queue (qdisc/busy drops).
pub struct NetdevXmit {
    queues: Vec<NetdevQueue>,
    pending: Vec<Burst>,
    batch: usize,
}

impl NetdevXmit {
    /// `queues[p]` serves stack port `p`.
    pub fn new(queues: Vec<NetdevQueue>) -> NetdevXmit {
        let pending = queues.iter().map(|_| Burst::new()).collect();
        NetdevXmit {
            queues,
            pending,
            batch: 32,
        }
    }
    /// Frames gathered before a `xmit_burst` (1..=256).
    pub fn with_batch(mut self, n: usize) -> NetdevXmit {
        self.batch = n.clamp(1, crate::mbuf::BURST_MAX);
        self
    }
    /// The netdev queue serving `port` (stats, BQL view, flush).
    pub fn queue_mut(&mut self, port: u16) -> Option<&mut NetdevQueue> {
        self.queues.get_mut(port as usize)
    }
    fn flush_port(&mut self, p: usize) {
        if !self.pending[p].is_empty() {
            self.queues[p].xmit_burst(&mut self.pending[p]);
        }
    }
}

impl L2Xmit for NetdevXmit {
    fn queue_xmit_burst(&mut self, port: u16, pkts: &mut Burst) -> usize {
        let p = port as usize;
        if p >= self.queues.len() {
            let n = pkts.len();
            pkts.clear();
            return n;
        }
        // Keep order: whatever is gathered goes first.
        self.flush_port(p);
        // Accepted as a whole; the netdev queue counts its own drops.
        self.queues[p].xmit_burst(pkts);
        0
    }
    #[inline]
    fn queue_xmit(&mut self, port: u16, m: Mbuf) -> Result<(), XmitDrop> {
        let p = port as usize;
        if stage(&mut self.pending, p, m)? >= self.batch {
            self.queues[p].xmit_burst(&mut self.pending[p]);
        }
        Ok(())
    }
    fn flush(&mut self) {
        for p in 0..self.queues.len() {
            self.flush_port(p);
        }
    }
    fn reclaim(&mut self) {
        for q in &mut self.queues {
            q.service();
        }
    }
}

/// One port as the stack sees it (an interface with one IPv4 address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConf {
    pub mac: MacAddr,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// IP MTU (1500 on Ethernet).
    pub mtu: u32,
    /// TX offloads the port does ([`crate::mbuf::ol`] bits): with `TX_UDP_CKSUM`
    /// the stack leaves UDP checksums to the NIC (`NETIF_F_IP_CSUM`).
    pub tx_offloads: u32,
    /// 802.1Q VLAN id to tag frames with.
    pub vlan: Option<u16>,
    /// `IFF_NOARP` (the loopback): neighbours resolve to the port's own
    /// address without ARP (`arp_constructor` → `NUD_NOARP`).
    pub noarp: bool,
}

impl PortConf {
    pub fn new(mac: MacAddr, addr: Ipv4Addr, prefix_len: u8) -> PortConf {
        PortConf {
            mac,
            addr,
            prefix_len,
            mtu: 1500,
            tx_offloads: 0,
            vlan: None,
            noarp: false,
        }
    }
    /// The subnet's directed broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !route::mask(self.prefix_len))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PortState {
    pub conf: PortConf,
}

/// A route from configuration (`ip route add`). The generator's TOML
/// `[[port.route]]` builds one (apps/src/netconf.rs); rules have
/// `ip rule` syntax through [`RuleConf`]'s `FromStr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConf {
    pub prefix: Ipv4Addr,
    pub len: u8,
    pub gateway: Option<Ipv4Addr>,
    /// Output port; `None` = the port whose subnet holds the gateway.
    pub port: Option<u16>,
    pub mtu: Option<u32>,
    /// `table` (default `main`, 254).
    pub table: u32,
    /// The route type (default `unicast`).
    pub rtype: RouteType,
    /// `metric` / `priority`.
    pub metric: u32,
    /// `tos` (bits of `IPTOS_RT_MASK` only).
    pub tos: u8,
    /// `scope`; `None` = the type's default ([`RouteType::default_scope`]).
    pub scope: Option<u8>,
    /// `src`: preferred source (must be one of the stack's addresses).
    pub src: Option<Ipv4Addr>,
    /// `onlink`: the gateway is on the port's link even outside its subnet.
    pub onlink: bool,
    /// `nexthop via … dev … weight …` (two or more: an ECMP route).
    pub nexthops: Vec<NexthopConf>,
}

/// One `nexthop` of a multipath route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NexthopConf {
    pub gateway: Option<Ipv4Addr>,
    pub port: Option<u16>,
    /// 1..=256 (default 1).
    pub weight: u32,
}

impl Default for RouteConf {
    fn default() -> Self {
        RouteConf {
            prefix: Ipv4Addr::UNSPECIFIED,
            len: 0,
            gateway: None,
            port: None,
            mtu: None,
            table: fib_rules::RT_TABLE_MAIN,
            rtype: RouteType::Unicast,
            metric: 0,
            tos: 0,
            scope: None,
            src: None,
            onlink: false,
            nexthops: Vec::new(),
        }
    }
}

/// Configuration of one lcore's stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub ports: Vec<PortConf>,
    pub routes: Vec<RouteConf>,
    /// Policy-routing rules added to Linux's three defaults (`ip rule add`).
    pub rules: Vec<RuleConf>,
    /// `fib_multipath_hash_policy`: 0 hashes source and destination
    /// address (Linux's default), 1 adds protocol and ports.
    pub fib_multipath_hash_policy: u8,
    /// Static (PERMANENT) neighbours: (port, address, MAC).
    pub static_neighbours: Vec<(u16, Ipv4Addr, MacAddr)>,
    pub neigh: NeighParams,
    /// `ip_default_ttl`.
    pub default_ttl: u8,
    /// `ip_local_port_range`.
    pub ephemeral_ports: (u16, u16),
    /// `wmem_default` (bytes).
    pub sndbuf_default: u32,
    /// `net.core.wmem_max`: the most `SO_SNDBUF` takes (before doubling).
    pub wmem_max: u32,
    /// `force_igmp_version`: 2 (IGMPv2 reports; the default here) or 3
    /// (RFC 3376 reports; Linux's default 0 means v3 until an older
    /// querier is heard).
    pub force_igmp_version: u8,
    /// `rmem_default` (bytes).
    pub rcvbuf_default: u32,
    /// Most sockets this stack holds.
    pub max_sockets: usize,
    /// Seeds the ephemeral port choice and reachable-time jitter.
    pub seed: u64,
    /// Fixes the IP ID generator's key and start values (reproducible
    /// captures). `None` (the default): drawn once per process from the
    /// kernel's randomness, as Linux does, so two runs never repeat IDs.
    pub ip_id_seed: Option<u64>,
    /// ICMP output rate limits (`icmp_ratelimit`, `icmp_ratemask`,
    /// `icmp_msgs_per_sec`, `icmp_msgs_burst`), Linux defaults.
    pub icmp: IcmpParams,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            ports: Vec::new(),
            routes: Vec::new(),
            rules: Vec::new(),
            fib_multipath_hash_policy: 0,
            static_neighbours: Vec::new(),
            neigh: NeighParams::default(),
            default_ttl: 64,
            ephemeral_ports: (32768, 60999),
            sndbuf_default: 212_992,
            wmem_max: 212_992,
            force_igmp_version: 2,
            rcvbuf_default: 212_992,
            max_sockets: 4096,
            seed: 0x5eed_1234_abcd_ef01,
            ip_id_seed: None,
            icmp: IcmpParams::default(),
        }
    }
}

/// Configuration errors; each names the setting and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("stack: ports[{port}]: {why}")]
    Port { port: usize, why: String },
    #[error("stack: routes: {0}")]
    Route(#[from] RouteError),
    #[error("stack: route {prefix}/{len}: {why}")]
    RouteTarget {
        prefix: Ipv4Addr,
        len: u8,
        why: String,
    },
    #[error("stack: {key}: {why}")]
    Config { key: &'static str, why: String },
    #[error("stack: rule {rule}: {why}")]
    Rule { rule: String, why: String },
}

/// Netfilter-like hook points on the output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    /// `NF_INET_LOCAL_OUT`, in `__ip_local_out` (before routing decisions take effect).
    LocalOut,
    /// `NF_INET_POST_ROUTING`, in `ip_output` (just before fragmentation/neighbour).
    PostRouting,
}

/// What a hook decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

/// A hook: sees each outgoing IPv4 packet (data starts at the IP header) and
/// may rewrite it in place (fix the checksums if it does) or drop it.
pub type Hook = Box<dyn FnMut(HookPoint, &mut Mbuf) -> Verdict>;

/// One lcore's protocol stack.
pub struct Stack {
    // Drop order matters: the output boundary and the neighbour queues free
    // their packets before the sockets' send-buffer accounts go.
    pub(crate) xmit: Box<dyn L2Xmit>,
    pub(crate) neigh: neigh::NeighTable,
    pub(crate) socks: udp::SocketTable,
    pub(crate) tcp: tcp::TcpTable,
    pub(crate) pool: Mempool,
    pub(crate) ports: Vec<PortState>,
    /// Rules and routing tables (`local`, `main`, `default`, and any others).
    pub(crate) fib: fib_rules::Fib,
    pub(crate) fib_multipath_hash_policy: u8,
    pub(crate) pmtu: ip::PmtuCache,
    pub(crate) counters: Arc<StackCounters>,
    pub(crate) hooks: Vec<Hook>,
    pub(crate) ident: ip::IpIdents,
    /// Key of the socket flow hash (`sk_txhash`; the flow dissector's `hashrnd`).
    pub(crate) hash_key: secret::SipKey,
    /// ICMP output rate limiter (`icmp_global` + per-peer tokens).
    pub(crate) icmp_rl: rx::IcmpRateLimit,
    /// IPv4 reassembly queues (`ip_defrag`).
    pub(crate) reasm: frag::Reassembly,
    pub(crate) default_ttl: u8,
    pub(crate) now: u64,
    /// A burst for batched sends (boxed: allocated once).
    pub(crate) scratch: Option<Box<Burst>>,
    /// Packets sent to ourselves, waiting for input (`lo`'s backlog).
    pub(crate) backlog: std::collections::VecDeque<(u16, Mbuf)>,
    /// Multicast groups joined per port (`in_device->mc_list`).
    pub(crate) mc: igmp::McTable,
    /// The control plane shared with the other lcores' stacks, if any.
    pub(crate) replica: Option<shared::Replica>,
}

impl Stack {
    /// Builds a stack: connected routes from port addresses, configured
    /// routes, static neighbours.
    pub fn new(
        cfg: StackConfig,
        pool: Mempool,
        xmit: Box<dyn L2Xmit>,
    ) -> Result<Stack, StackError> {
        if cfg.ports.is_empty() {
            return Err(StackError::Config {
                key: "ports",
                why: "a stack needs at least one port with an address".into(),
            });
        }
        let (lo, hi) = cfg.ephemeral_ports;
        if lo == 0 || lo > hi {
            return Err(StackError::Config {
                key: "ephemeral_ports",
                why: format!(
                    "{lo}..{hi} is not a range of non-zero ports (Linux default: 32768 60999)"
                ),
            });
        }
        if !matches!(cfg.force_igmp_version, 2 | 3) {
            return Err(StackError::Config {
                key: "force_igmp_version",
                why: format!("{} is not 2 or 3", cfg.force_igmp_version),
            });
        }
        let mut fib = fib_rules::Fib::new();
        for (i, p) in cfg.ports.iter().enumerate() {
            if p.prefix_len > 32 {
                return Err(StackError::Port {
                    port: i,
                    why: format!("prefix length /{} must be 0..=32", p.prefix_len),
                });
            }
            if p.mtu < 68 || p.mtu > 65535 {
                return Err(StackError::Port {
                    port: i,
                    why: format!("mtu {} must be 68..=65535", p.mtu),
                });
            }
            if p.addr.is_unspecified() || p.addr.is_multicast() || p.mac.is_multicast() {
                return Err(StackError::Port {
                    port: i,
                    why: format!("{} / {} is not a unicast address pair", p.addr, p.mac),
                });
            }
            fib_add_ifaddr(&mut fib, i as u16, p)?;
        }
        // `local 127.0.0.0/8 dev lo`: the loopback range is ours on any
        // stack; a loopback port (`noarp`) plays `lo`, else port 0 does.
        let lo = cfg.ports.iter().position(|p| p.noarp).unwrap_or(0) as u16;
        let mut r = Route::unicast(Ipv4Addr::new(127, 0, 0, 0), 8, None, lo);
        (r.rtype, r.scope, r.kind) = (RouteType::Local, route::RT_SCOPE_HOST, RouteKind::Connected);
        r.src = Ipv4Addr::LOCALHOST;
        fib.table_mut(fib_rules::RT_TABLE_LOCAL).add(r)?;
        let ports: Vec<PortState> = cfg
            .ports
            .iter()
            .map(|c| PortState { conf: c.clone() })
            .collect();
        let mut st = Stack {
            fib,
            fib_multipath_hash_policy: cfg.fib_multipath_hash_policy,
            pmtu: ip::PmtuCache::default(),
            neigh: neigh::NeighTable::new(cfg.neigh.clone(), cfg.seed ^ 0x9e37_79b9_7f4a_7c15),
            socks: udp::SocketTable::new(&cfg),
            tcp: tcp::TcpTable::new(&cfg),
            pool,
            xmit,
            counters: Arc::new(StackCounters::default()),
            hooks: Vec::new(),
            ident: ip::IpIdents::new(cfg.ip_id_seed),
            hash_key: secret::SipKey::process(0x7478_6861_7368), // "txhash"
            icmp_rl: rx::IcmpRateLimit::new(cfg.icmp.clone(), cfg.seed ^ 0x1c3b),
            reasm: frag::Reassembly::default(),
            backlog: std::collections::VecDeque::with_capacity(ip::LOCAL_BACKLOG),
            default_ttl: cfg.default_ttl,
            now: 0,
            scratch: Some(Box::new(Burst::new())),
            mc: igmp::McTable::new(cfg.seed ^ 0x1697, cfg.force_igmp_version),
            ports,
            replica: None,
        };
        if cfg.fib_multipath_hash_policy > 1 {
            return Err(StackError::Config {
                key: "fib_multipath_hash_policy",
                why: format!(
                    "{} is not 0 (L3: addresses) or 1 (L4: addresses, protocol, ports)",
                    cfg.fib_multipath_hash_policy
                ),
            });
        }
        for r in &cfg.routes {
            st.add_route(r)?;
        }
        for r in &cfg.rules {
            st.ip_rule_add(r)?;
        }
        for &(port, ip, mac) in &cfg.static_neighbours {
            st.add_static_neighbour(port, ip, mac)?;
        }
        Ok(st)
    }

    /// Adds a route (`ip route add`, or `replace` for the same prefix,
    /// TOS and metric) to its table, creating the table when new. The
    /// checks `fib_create_info` makes: a port that exists, a gateway on a
    /// connected subnet (unless `onlink`), a source that is ours, weights
    /// 1..=256, an MTU 68..=65535.
    pub fn add_route(&mut self, r: &RouteConf) -> Result<(), StackError> {
        self.route_add_local(r)?;
        self.publish(|| shared::CtlOp::RouteAdd(r.clone()));
        Ok(())
    }

    fn route_add_local(&mut self, r: &RouteConf) -> Result<(), StackError> {
        let bad = |why: String| StackError::RouteTarget {
            prefix: r.prefix,
            len: r.len,
            why,
        };
        if let Some(m) = r.mtu {
            if !(68..=65535).contains(&m) {
                return Err(bad(format!("mtu {m} must be 68..=65535")));
            }
        }
        if r.tos & !route::IPTOS_RT_MASK != 0 {
            return Err(bad(format!(
                "tos {:#04x} has bits outside {:#04x} (Invalid dscp)",
                r.tos,
                route::IPTOS_RT_MASK
            )));
        }
        let needs_dev = matches!(
            r.rtype,
            RouteType::Unicast | RouteType::Local | RouteType::Broadcast
        );
        let mut nexthops = Vec::with_capacity(r.nexthops.len());
        for nh in &r.nexthops {
            if !(1..=256).contains(&nh.weight) {
                return Err(bad(format!("nexthop weight {} must be 1..=256", nh.weight)));
            }
            let port = self
                .nexthop_port(nh.gateway, nh.port, r.onlink)
                .map_err(&bad)?;
            nexthops.push(Nexthop {
                gateway: nh.gateway,
                port,
                weight: nh.weight,
                upper_bound: 0,
            });
        }
        let port = match (nexthops.first(), needs_dev) {
            (Some(nh), _) => nh.port,
            (None, true) => self
                .nexthop_port(r.gateway, r.port, r.onlink)
                .map_err(&bad)?,
            (None, false) => r.port.unwrap_or(0),
        };
        if nexthops.len() == 1 {
            nexthops.clear();
        }
        if !nexthops.is_empty() && r.rtype != RouteType::Unicast {
            return Err(bad(format!("a {} route has no next hops", r.rtype.name())));
        }
        let src = match r.src {
            Some(a) if self.port_of_addr(a).is_none() && !a.is_loopback() => {
                return Err(bad(format!("src {a} is not one of this stack's addresses")))
            }
            Some(a) => a,
            None => self.ports[port as usize].conf.addr,
        };
        let gateway = if nexthops.is_empty() { r.gateway } else { None };
        let route = Route {
            prefix: r.prefix,
            len: r.len,
            rtype: r.rtype,
            scope: r.scope.unwrap_or(
                r.rtype
                    .default_scope(gateway.is_some() || !nexthops.is_empty()),
            ),
            tos: r.tos,
            metric: r.metric,
            gateway,
            port,
            src,
            mtu: r.mtu,
            kind: RouteKind::Static,
            nexthops,
        };
        self.fib.table_mut(r.table).add(route)?;
        Ok(())
    }

    /// The port a next hop goes out of: the one given, else the one whose
    /// connected subnet holds the gateway (`fib_check_nh_v4_gw`).
    fn nexthop_port(
        &self,
        gw: Option<Ipv4Addr>,
        port: Option<u16>,
        onlink: bool,
    ) -> Result<u16, String> {
        if let Some(p) = port {
            if p as usize >= self.ports.len() {
                return Err(format!(
                    "port {p} does not exist ({} ports)",
                    self.ports.len()
                ));
            }
        }
        let Some(gw) = gw else {
            return port.ok_or_else(|| "give a gateway (via) or a port (dev)".to_string());
        };
        if onlink {
            return port.ok_or_else(|| "onlink needs a port (dev)".to_string());
        }
        let main = self.fib.table(fib_rules::RT_TABLE_MAIN);
        match main.and_then(|t| t.lookup(gw)) {
            Some(gr)
                if gr.gateway.is_none()
                    && gr.rtype == RouteType::Unicast
                    && port.is_none_or(|p| p == gr.port) =>
            {
                Ok(gr.port)
            }
            _ => Err(format!(
                "gateway {gw} is not on {} subnet (Nexthop has invalid gateway; add onlink if it is on the link)",
                match port {
                    Some(p) => format!("port {p}'s"),
                    None => "any port's".to_string(),
                }
            )),
        }
    }

    /// Removes a route from the `main` table (the lowest metric of that prefix).
    pub fn remove_route(&mut self, prefix: Ipv4Addr, len: u8) -> Result<Route, StackError> {
        self.ip_route_del(fib_rules::RT_TABLE_MAIN, prefix, len, None)
    }

    /// `ip route del PREFIX table T [metric M]`.
    pub fn ip_route_del(
        &mut self,
        table: u32,
        prefix: Ipv4Addr,
        len: u8,
        metric: Option<u32>,
    ) -> Result<Route, StackError> {
        let r = self.route_del_local(table, prefix, len, metric)?;
        self.publish(|| shared::CtlOp::RouteDel {
            table,
            prefix,
            len,
            metric,
        });
        Ok(r)
    }

    fn route_del_local(
        &mut self,
        table: u32,
        prefix: Ipv4Addr,
        len: u8,
        metric: Option<u32>,
    ) -> Result<Route, StackError> {
        if self.fib.table(table).is_none() {
            return Err(RouteError::NotFound { prefix, len }.into());
        }
        Ok(self
            .fib
            .table_mut(table)
            .remove_metric(prefix, len, metric)?)
    }

    /// The `main` routing table.
    pub fn routes(&self) -> &RouteTable {
        self.fib
            .table(fib_rules::RT_TABLE_MAIN)
            .expect("the main table always exists")
    }

    /// The rules and every table.
    pub fn fib(&self) -> &fib_rules::Fib {
        &self.fib
    }

    /// Adds a rule (`ip rule add`); returns it with its priority.
    pub fn ip_rule_add(&mut self, r: &RuleConf) -> Result<FibRule, StackError> {
        let rule = self.rule_add_local(r)?;
        self.publish(|| shared::CtlOp::RuleAdd(*r));
        Ok(rule)
    }

    fn rule_add_local(&mut self, r: &RuleConf) -> Result<FibRule, StackError> {
        if let Some(o) = r.sel.oif {
            if o as usize >= self.ports.len() {
                return Err(StackError::Rule {
                    rule: format!("{r:?}"),
                    why: format!("oif {o} does not exist ({} ports)", self.ports.len()),
                });
            }
        }
        self.fib.add_rule(r).map_err(|_| StackError::Rule {
            rule: format!("{r:?}"),
            why: "goto must name a later priority than the rule's own".into(),
        })
    }

    /// Deletes the rule with priority `pref` (`ip rule del pref N`).
    pub fn ip_rule_del(&mut self, pref: u32) -> Option<FibRule> {
        let r = self.fib.del_rule(pref)?;
        self.publish(|| shared::CtlOp::RuleDel(pref));
        Some(r)
    }

    /// Adds a PERMANENT neighbour.
    pub fn add_static_neighbour(
        &mut self,
        port: u16,
        ip: Ipv4Addr,
        mac: MacAddr,
    ) -> Result<(), StackError> {
        if port as usize >= self.ports.len() {
            return Err(StackError::Config {
                key: "static_neighbours",
                why: format!("{ip} on port {port}: no such port"),
            });
        }
        let now = self.now;
        let (neigh, mut io) = self.split_neigh();
        neigh.add_static(port, ip, mac, &mut io, now);
        self.publish(|| {
            shared::CtlOp::Neigh(neigh::NeighNews {
                port,
                ip,
                mac,
                state: NudState::Permanent,
                create: true,
            })
        });
        Ok(())
    }

    /// Joins a control plane shared with other lcores' stacks (see
    /// [`shared`]): from now on, neighbours this stack learns, and routes,
    /// rules and static neighbours added through it, reach the others at
    /// their next [`Stack::sync`], and theirs reach it; its sockets' ports
    /// are claimed for every replica. What was logged before it joined is
    /// replayed now. Join before opening sockets.
    pub fn join(&mut self, cp: Arc<shared::ControlPlane>) -> Result<(), StackError> {
        if self.replica.is_some() {
            return Err(StackError::Config {
                key: "control plane",
                why: "this stack already shares a control plane".into(),
            });
        }
        if self.socks.live > 0 || self.tcp.has_sockets() {
            return Err(StackError::Config {
                key: "control plane",
                why: "join before opening sockets (their ports were claimed for this stack alone)"
                    .into(),
            });
        }
        let (id, earlier) = cp.subscribe().ok_or_else(|| StackError::Config {
            key: "control plane",
            why: format!(
                "it already serves {} stacks, the most it can",
                shared::MAX_REPLICAS
            ),
        })?;
        let claims = shared::PortClaims { cp: cp.clone(), id };
        self.socks.claims = Some(claims.clone());
        self.tcp.claims = Some(claims);
        self.neigh.share = true;
        self.replica = Some(shared::Replica {
            cp,
            id,
            seen: u64::MAX,
            stats: shared::SyncStats::default(),
        });
        let mut refused = 0;
        for op in &earlier {
            refused += u64::from(!self.apply_op(op));
        }
        self.xmit.flush();
        let rep = self.replica.as_mut().expect("set above");
        rep.stats.applied += earlier.len() as u64;
        rep.stats.refused += refused;
        self.sync();
        Ok(())
    }

    /// The control plane this stack shares, and its replica index there.
    pub fn control_plane(&self) -> Option<(&Arc<shared::ControlPlane>, usize)> {
        self.replica.as_ref().map(|r| (&r.cp, r.id))
    }

    /// Brings this replica up to date with the shared control plane (and
    /// tells it what this one learned): the RCU reader's side. One Acquire
    /// load when nothing changed; the runtime calls it once per poll loop.
    /// Returns the totals so far.
    pub fn sync(&mut self) -> shared::SyncStats {
        let Some(rep) = self.replica.as_ref() else {
            return shared::SyncStats::default();
        };
        if self.neigh.outbox.is_empty() && rep.cp.generation() == rep.seen {
            // Nothing learned here, nothing changed there: one load, no
            // reference count touched.
            return rep.stats;
        }
        let cp = rep.cp.clone();
        let id = rep.id;
        for news in self.neigh.outbox.drain(..) {
            cp.publish(Some(id), shared::CtlOp::Neigh(news));
        }
        let seen = rep.seen;
        if cp.generation() == seen {
            return rep.stats;
        }
        let mut ops = Vec::new();
        let gen = cp.replay(id, |op| ops.push(op.clone()));
        let mut st = shared::SyncStats::default();
        for op in &ops {
            st.applied += 1;
            if !self.apply_op(op) {
                st.refused += 1;
            }
        }
        self.xmit.flush();
        let rep = self.replica.as_mut().expect("checked above");
        rep.seen = gen;
        rep.stats.applied += st.applied;
        rep.stats.refused += st.refused;
        rep.stats
    }

    fn apply_op(&mut self, op: &shared::CtlOp) -> bool {
        use shared::CtlOp;
        match op {
            CtlOp::Neigh(news) => {
                let now = self.now;
                let (neigh, mut io) = self.split_neigh();
                neigh.apply_news(news, &mut io, now);
                true
            }
            CtlOp::RouteAdd(r) => self.route_add_local(r).is_ok(),
            CtlOp::RouteDel {
                table,
                prefix,
                len,
                metric,
            } => self.route_del_local(*table, *prefix, *len, *metric).is_ok(),
            CtlOp::RuleAdd(r) => self.rule_add_local(r).is_ok(),
            CtlOp::RuleDel(p) => self.fib.del_rule(*p).is_some(),
        }
    }

    fn publish(&self, op: impl FnOnce() -> shared::CtlOp) {
        if let Some(r) = &self.replica {
            r.cp.publish(Some(r.id), op());
        }
    }

    /// The neighbour table.
    pub fn neighbours(&self) -> Vec<NeighInfo> {
        self.neigh.list()
    }

    /// State of the neighbour entry for `ip` on `port`.
    pub fn neighbour_state(&self, port: u16, ip: Ipv4Addr) -> Option<NudState> {
        self.neigh.state(port, ip)
    }

    /// Resolves `ip` on `port` without a packet to send (`neigh_event_send`):
    /// the neighbour's MAC once it is valid, None while ARP runs (probes and
    /// retries on the stack's timers; a peer that never answers leaves the
    /// entry FAILED, see [`Stack::neighbour_state`]).
    pub fn neigh_event_send(&mut self, port: u16, ip: Ipv4Addr) -> Option<MacAddr> {
        if port as usize >= self.ports.len() {
            return None;
        }
        let now = self.now;
        let (neigh, mut io) = self.split_neigh();
        // A full table (`table_fulls`): no entry, no address.
        let idx = neigh.lookup_or_create(port, ip, io.c, now)?;
        let mac = neigh.event_send(idx, &mut io, now);
        self.xmit.flush();
        mac
    }

    /// Installs an output hook (called in installation order).
    pub fn add_hook(&mut self, h: Hook) {
        self.hooks.push(h);
    }

    /// Sends a gratuitous ARP for every port address (what `inetdev` does
    /// when an address comes up) and starts the clock.
    pub fn start(&mut self, now_ns: u64) {
        self.now = now_ns;
        for p in 0..self.ports.len() {
            if self.ports[p].conf.noarp {
                // No gratuitous ARP on an IFF_NOARP device (arp_ifdown/inetdev
                // announce only where ARP runs).
                continue;
            }
            let ip = self.ports[p].conf.addr;
            let (_, mut io) = self.split_neigh();
            neigh::send_arp(
                &mut io,
                p as u16,
                wire::ARP_REQUEST,
                MacAddr::BROADCAST,
                MacAddr::ZERO,
                ip,
            );
        }
        self.xmit.flush();
    }

    /// Runs due timers (ARP retransmits, neighbour state changes, GC) and
    /// reclaims TX completions. The runtime calls it every poll loop.
    pub fn poll_timers(&mut self, now_ns: u64) {
        self.now = self.now.max(now_ns);
        let now = self.now;
        let (neigh, mut io) = self.split_neigh();
        neigh.poll_timers(&mut io, now);
        let mut quotes: Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)> = Vec::new();
        let ev = self.reasm.expire(now, |h, m| {
            // icmp_send quotes the offending datagram — here the first
            // fragment, IP header and payload — up to 576 bytes of reply:
            // 576 - 20 (IP) - 8 (ICMP) = 548.
            let hl = h.header_len();
            let mut q = vec![0u8; 60];
            h.emit(&mut q);
            q.truncate(hl);
            for s in m.segments() {
                let k = s.data.len().min(548usize.saturating_sub(q.len()));
                q.extend_from_slice(&s.data[..k]);
            }
            quotes.push((h.src, h.dst, q));
        });
        self.counters.ip.reasm_timeout.add(ev.timeouts);
        self.counters.ip.reasm_fails.add(ev.fails);
        for (src, dst, q) in quotes {
            // ip_expire: only an end host reports a reassembly timeout
            // (RFC 792), so only for a datagram to one of our addresses
            // (`RTN_LOCAL`), never for broadcast or multicast.
            if self.port_of_addr(dst).is_some() || dst.is_loopback() {
                self.icmp_send(
                    src,
                    Some(dst),
                    wire::IcmpHeader::Other {
                        kind: wire::ICMP_TIME_EXCEEDED,
                        code: wire::ICMP_EXC_FRAGTIME,
                        rest: [0; 4],
                    },
                    &q,
                );
            }
        }
        self.igmp_poll_timers(now);
        self.process_backlog();
        self.xmit.flush();
        self.xmit.reclaim();
        self.socks.reap();
        self.tcp_poll_timers();
        self.xmit.flush();
    }

    /// Pushes batched frames to the device (one doorbell per batch).
    pub fn flush(&mut self) {
        self.process_backlog();
        self.xmit.flush();
    }

    /// Current stack time (ns), as last given to `poll_timers`/`start`.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Counter snapshot (`/proc/net/snmp`).
    pub fn counters(&self) -> SnmpSnapshot {
        self.counters.snapshot()
    }

    /// The live counters, readable from other threads.
    pub fn counters_handle(&self) -> Arc<StackCounters> {
        self.counters.clone()
    }

    /// The lcore's mempool (for RX refill).
    pub fn pool_mut(&mut self) -> &mut Mempool {
        &mut self.pool
    }

    /// The output boundary.
    pub fn xmit_mut(&mut self) -> &mut dyn L2Xmit {
        &mut *self.xmit
    }

    /// Port configuration.
    pub fn port(&self, port: u16) -> Option<&PortConf> {
        self.ports.get(port as usize).map(|p| &p.conf)
    }

    pub(crate) fn split_neigh(&mut self) -> (&mut neigh::NeighTable, neigh::NeighIo<'_>) {
        (
            &mut self.neigh,
            neigh::NeighIo {
                pool: &mut self.pool,
                xmit: &mut *self.xmit,
                ports: &self.ports,
                c: &self.counters,
            },
        )
    }

    /// The port whose address is `a`.
    pub(crate) fn port_of_addr(&self, a: Ipv4Addr) -> Option<u16> {
        self.ports
            .iter()
            .position(|p| p.conf.addr == a)
            .map(|i| i as u16)
    }
}

/// Plays the part of `fib_add_ifaddr` for a port's address: `local ADDR`
/// (scope host) and, below /31, `broadcast` of the subnet in the `local`
/// table; the subnet itself (scope link) in `main`. As kernel 6.x, no
/// broadcast route for the network address.
fn fib_add_ifaddr(fib: &mut fib_rules::Fib, i: u16, p: &PortConf) -> Result<(), RouteError> {
    let kernel = |prefix, len, rtype: RouteType| Route {
        scope: rtype.default_scope(false),
        rtype,
        src: p.addr,
        kind: RouteKind::Connected,
        ..Route::unicast(prefix, len, None, i)
    };
    let local = fib.table_mut(fib_rules::RT_TABLE_LOCAL);
    local.add(kernel(p.addr, 32, RouteType::Local))?;
    if p.prefix_len < 31 {
        local.add(kernel(p.broadcast(), 32, RouteType::Broadcast))?;
    }
    let net = Ipv4Addr::from(u32::from(p.addr) & route::mask(p.prefix_len));
    fib.table_mut(fib_rules::RT_TABLE_MAIN)
        .add(kernel(net, p.prefix_len, RouteType::Unicast))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_send_mbuf;
