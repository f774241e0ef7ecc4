//! Receive demux: Ethernet → ARP (`arp_rcv`/`arp_process`) or IPv4
//! (`ip_rcv` → `ip_local_deliver`) → ICMP (`icmp_rcv`: echo → reply,
//! fragmentation-needed → path MTU) or UDP (`__udp4_lib_rcv`: checksum,
//! socket lookup, NoPorts → port unreachable). Everything else is counted
//! and dropped.

use super::checksum;
use super::wire::{self, ArpPacket, IcmpHeader, Ipv4Header, UdpHeader, L2};
use super::Stack;
use crate::mbuf::{ol, Burst, Mbuf};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

const SEC: u64 = 1_000_000_000;

/// ICMP output rate limits (`/proc/sys/net/ipv4/icmp_*`), Linux defaults
/// (Documentation/networking/ip-sysctl.rst; net/ipv4/icmp.c).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IcmpParams {
    /// `icmp_ratelimit`: per destination, at most one rate-limited message
    /// per this many ms on average (bursts of 6: `XRLIM_BURST_FACTOR`); 0 = off.
    pub ratelimit_ms: u64,
    /// `icmp_ratemask`: bit `t` set = ICMP type `t` is rate limited
    /// (default 0x1818: dest unreachable, source quench, time exceeded,
    /// parameter problem; fragmentation-needed is always exempt).
    pub ratemask: u32,
    /// `icmp_msgs_per_sec`: host-wide refill rate of the global bucket.
    pub msgs_per_sec: u32,
    /// `icmp_msgs_burst`: the global bucket's depth.
    pub msgs_burst: u32,
}

impl Default for IcmpParams {
    fn default() -> Self {
        IcmpParams {
            ratelimit_ms: 1000,
            ratemask: 0x1818,
            msgs_per_sec: 1000,
            msgs_burst: 50,
        }
    }
}

/// `XRLIM_BURST_FACTOR` (net/ipv4/inetpeer.c).
const XRLIM_BURST_FACTOR: u64 = 6;
/// `NR_ICMP_TYPES`.
const NR_ICMP_TYPES: u8 = 18;
/// Most per-destination buckets kept (the `inet_peer` cache's role).
const PEERS_MAX: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct PeerTokens {
    tokens: u64,
    last: u64,
}

/// The ICMP output rate limiter: the host-wide credit bucket
/// (`icmp_global_allow` / `icmp_global_consume`) and per-destination token
/// buckets (`icmpv4_xrlim_allow` → `inet_peer_xrlim_allow`).
pub(crate) struct IcmpRateLimit {
    p: IcmpParams,
    credit: i64,
    /// Last refill (ns); `None` before the first message (a full bucket).
    stamp: Option<u64>,
    peers: HashMap<Ipv4Addr, PeerTokens>,
    rng: u64,
}

impl IcmpRateLimit {
    pub fn new(p: IcmpParams, seed: u64) -> IcmpRateLimit {
        IcmpRateLimit {
            p,
            credit: 0,
            stamp: None,
            peers: HashMap::new(),
            rng: seed | 1,
        }
    }

    /// `icmpv4_mask_allow`: true when (type, code) is never rate limited.
    fn mask_allow(&self, ty: u8, code: u8) -> bool {
        if ty > NR_ICMP_TYPES {
            return true;
        }
        // Don't limit PMTU discovery.
        if ty == wire::ICMP_DEST_UNREACH && code == wire::ICMP_FRAG_NEEDED {
            return true;
        }
        (1u32 << ty) & self.p.ratemask == 0
    }

    /// `icmp_global_allow`: credit left, or refill it (at most once per
    /// 20 ms, `HZ / 50`, by `msgs_per_sec` × elapsed, capped at the burst).
    fn global_allow(&mut self, now: u64) -> bool {
        if self.credit > 0 {
            return true;
        }
        let delta = match self.stamp {
            Some(s) => now.saturating_sub(s).min(SEC),
            None => SEC,
        };
        if delta < SEC / 50 {
            return false;
        }
        let incr = (self.p.msgs_per_sec as u64 * delta / SEC) as i64;
        if incr == 0 {
            return false;
        }
        self.stamp = Some(now);
        self.credit = (self.credit + incr).min(self.p.msgs_burst as i64);
        true
    }

    /// `icmp_global_consume`: takes 0, 1 or 2 credits (1 on average; random
    /// so the bucket's state cannot be probed), possibly going negative.
    fn global_consume(&mut self) {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        self.credit -= ((x >> 32) % 3) as i64;
    }

    /// `inet_peer_xrlim_allow`: one token bucket per destination, `timeout`
    /// per message, holding at most `XRLIM_BURST_FACTOR` messages; a new
    /// peer starts full (`inet_getpeer` backdates `rate_last` by 60 s).
    fn peer_allow(&mut self, daddr: Ipv4Addr, now: u64) -> bool {
        let timeout = self.p.ratelimit_ms * 1_000_000;
        let full = XRLIM_BURST_FACTOR * timeout;
        if self.peers.len() >= PEERS_MAX && !self.peers.contains_key(&daddr) {
            // Forget peers whose bucket has refilled (a fresh one is the same).
            self.peers
                .retain(|_, p| p.tokens + now.saturating_sub(p.last) < full);
            if self.peers.len() >= PEERS_MAX {
                // No peer entry: Linux allows (inet_peer_xrlim_allow(NULL)).
                return true;
            }
        }
        let p = self.peers.entry(daddr).or_insert(PeerTokens {
            tokens: full,
            last: now,
        });
        let mut token = p.tokens + now.saturating_sub(p.last);
        p.last = now;
        token = token.min(full);
        let ok = token >= timeout;
        if ok {
            token -= timeout;
        }
        p.tokens = token;
        ok
    }
}

impl Stack {
    /// Processes every frame of a received burst from `port`.
    pub fn rx_burst(&mut self, port: u16, pkts: &mut Burst) {
        while let Some(m) = pkts.pop_front() {
            self.rx(port, m);
        }
        self.process_backlog();
        self.xmit.flush();
    }

    /// Processes one received frame from `port` (replies are queued to the
    /// output boundary; call [`Stack::flush`] or use `rx_burst`).
    pub fn rx(&mut self, port: u16, mut m: Mbuf) {
        self.counters.rx.frames.add(1);
        let Some(pc) = self.ports.get(port as usize).map(|p| p.conf.clone()) else {
            self.counters.rx.malformed.add(1);
            return;
        };
        let l2 = match L2::parse(m.data()) {
            Ok(l) => l,
            Err(_) => {
                self.counters.rx.malformed.add(1);
                return;
            }
        };
        if l2.vlan.map(|t| t.vid) != pc.vlan
            && !(pc.vlan.is_none() && l2.vlan.is_some_and(|t| t.vid == 0))
        {
            // Another VLAN's frame (or untagged on a tagged port).
            self.counters.rx.not_for_us.add(1);
            return;
        }
        let unicast_to_us = l2.eth.dst == pc.mac;
        if !unicast_to_us && !l2.eth.dst.is_multicast() {
            self.counters.rx.not_for_us.add(1);
            return;
        }
        if m.adj(l2.len).is_err() {
            self.counters.rx.malformed.add(1);
            return;
        }
        match l2.ethertype {
            wire::ETHERTYPE_ARP => {
                let Ok(arp) = ArpPacket::parse(m.data()) else {
                    self.counters.neigh.arp_ignored.add(1);
                    return;
                };
                drop(m);
                let now = self.now;
                let (neigh, mut io) = self.split_neigh();
                neigh.arp_input(port, &arp, unicast_to_us, &mut io, now);
            }
            wire::ETHERTYPE_IPV4 => self.ip_rcv(port, &pc, m, false),
            _ => self.counters.rx.unknown_ethertype.add(1),
        }
    }

    /// An IPv4 packet we sent to ourselves (`lo`'s input; see
    /// `Stack::process_backlog`).
    pub(crate) fn ip_rcv_local(&mut self, port: u16, m: Mbuf) {
        let Some(pc) = self.ports.get(port as usize).map(|p| p.conf.clone()) else {
            return;
        };
        self.counters.rx.frames.add(1);
        self.ip_rcv(port, &pc, m, true);
    }

    /// Plays `ip_rcv` + `ip_rcv_finish` + `ip_local_deliver`. `local`: it
    /// came from ourselves, where 127.0.0.0/8 is ours too (on any other
    /// device such a destination is a martian, `ip_route_input_slow`).
    fn ip_rcv(&mut self, port: u16, pc: &super::PortConf, mut m: Mbuf, local: bool) {
        self.counters.ip.in_receives.add(1);
        // Headers must be in the first segment.
        let h = match Ipv4Header::parse_in(m.data(), m.pkt_len()) {
            Ok(h) => h,
            Err(_) => {
                self.counters.ip.in_hdr_errors.add(1);
                return;
            }
        };
        // Trim Ethernet padding beyond the IP total length.
        let extra = m.pkt_len() - h.total_len as usize;
        if extra > 0 && m.trim(extra).is_err() {
            self.counters.ip.in_hdr_errors.add(1);
            return;
        }
        let ours = self.port_of_addr(h.dst).is_some()
            || (local && h.dst.is_loopback())
            || h.dst.is_broadcast()
            || h.dst == pc.broadcast()
            || h.dst.is_multicast();
        if !ours {
            self.counters.ip.in_addr_errors.add(1);
            return;
        }
        if h.dst.is_multicast() && !self.mc.is_member(port, h.dst) {
            // ip_route_input: a group this port has not joined is not ours.
            self.counters.rx.mc_not_joined.add(1);
            return;
        }
        let (h, m) = if h.mf() || h.frag_offset() != 0 {
            // ip_local_deliver → ip_defrag: every fragment counts in
            // ReasmReqds; the datagram goes on once whole.
            self.counters.ip.reasm_reqds.add(1);
            match self.reasm.defrag(&h, m, self.now) {
                super::frag::Defrag::Done(h, m) => {
                    self.counters.ip.reasm_oks.add(1);
                    (*h, m)
                }
                super::frag::Defrag::Queued => return,
                super::frag::Defrag::Dropped => return,
                super::frag::Defrag::Failed => {
                    self.counters.ip.reasm_fails.add(1);
                    return;
                }
            }
        } else {
            let hl = h.header_len();
            if m.adj(hl).is_err() {
                self.counters.ip.in_hdr_errors.add(1);
                return;
            }
            (h, m)
        };
        match h.protocol {
            wire::IPPROTO_UDP => {
                self.counters.ip.in_delivers.add(1);
                self.udp_rcv(port, &h, m);
            }
            wire::IPPROTO_ICMP => {
                self.counters.ip.in_delivers.add(1);
                self.icmp_rcv(&h, m);
            }
            super::tcp::IPPROTO_TCP => {
                self.counters.ip.in_delivers.add(1);
                self.tcp_v4_rcv(&h, m);
            }
            super::igmp::IPPROTO_IGMP => {
                self.counters.ip.in_delivers.add(1);
                self.igmp_rcv(port, &m);
            }
            _ => self.counters.ip.in_unknown_protos.add(1),
        }
    }

    /// Plays `__udp4_lib_rcv`.
    fn udp_rcv(&mut self, port: u16, ih: &Ipv4Header, mut m: Mbuf) {
        let ok = if m.nb_segs() == 1 {
            let d = m.data();
            match UdpHeader::parse(d) {
                Ok(u) => {
                    let len = u.len as usize;
                    let good = m.ol_flags() & ol::RX_L4_CKSUM_GOOD != 0
                        || UdpHeader::verify(&d[..len], ih.src, ih.dst);
                    Some((u, good))
                }
                Err(_) => None,
            }
        } else {
            // Chained: sum across segments.
            let mut first = [0u8; 8];
            let mut n = 0;
            let mut cs = checksum::Checksum::new();
            for s in m.segments() {
                let k = (8 - n).min(s.data.len());
                first[n..n + k].copy_from_slice(&s.data[..k]);
                n += k;
                cs.add(s.data);
            }
            if n < 8 {
                None
            } else {
                let u = UdpHeader {
                    src_port: u16::from_be_bytes([first[0], first[1]]),
                    dst_port: u16::from_be_bytes([first[2], first[3]]),
                    len: u16::from_be_bytes([first[4], first[5]]),
                    checksum: u16::from_be_bytes([first[6], first[7]]),
                };
                if u.len as usize != m.pkt_len() {
                    None
                } else {
                    let mut t = checksum::Checksum::with_sum(checksum::pseudo_header_sum(
                        ih.src,
                        ih.dst,
                        wire::IPPROTO_UDP,
                        u.len,
                    ));
                    t.add_sum(cs.folded() as u64);
                    Some((u, u.checksum == 0 || t.folded() == 0xffff))
                }
            }
        };
        let Some((u, good)) = ok else {
            self.counters.udp.in_errors.add(1);
            return;
        };
        if !good {
            self.counters.udp.in_csum_errors.add(1);
            self.counters.udp.in_errors.add(1);
            return;
        }
        let extra = m.pkt_len() - u.len as usize;
        if extra > 0 && m.trim(extra).is_err() {
            self.counters.udp.in_errors.add(1);
            return;
        }
        if m.adj(wire::UDP_HLEN).is_err() {
            self.counters.udp.in_errors.add(1);
            return;
        }
        let src = SocketAddrV4::new(ih.src, u.src_port);
        let delivered = if ih.dst.is_multicast() {
            self.udp_mcast_deliver(port, ih.dst, u.dst_port, src, m)
        } else {
            self.udp_deliver(ih.dst, u.dst_port, src, m)
        };
        if delivered {
            return;
        }
        if ih.dst.is_multicast() {
            // __udp4_lib_mcast_deliver with no taker.
            self.counters.udp.ignored_multi.add(1);
            return;
        }
        self.counters.udp.no_ports.add(1);
        // Unicast only: ICMP port unreachable quoting the header (+8 bytes).
        // A loopback destination got here only from ourselves (`lo`).
        if self.port_of_addr(ih.dst).is_some() || ih.dst.is_loopback() {
            let mut quote = [0u8; 28];
            let mut hb = [0u8; 60];
            ih.emit(&mut hb);
            quote[..20].copy_from_slice(&hb[..20]);
            let mut uh = [0u8; 8];
            u.emit(&mut uh);
            quote[20..].copy_from_slice(&uh);
            self.icmp_send(
                ih.src,
                Some(ih.dst),
                IcmpHeader::DestUnreachable {
                    code: wire::ICMP_PORT_UNREACH,
                    next_hop_mtu: 0,
                },
                &quote,
            );
        }
    }

    /// Plays `icmp_rcv`: echo requests are answered, fragmentation-needed
    /// updates the path MTU, the rest is counted.
    fn icmp_rcv(&mut self, ih: &Ipv4Header, m: Mbuf) {
        self.counters.icmp.in_msgs.add(1);
        let mut buf = [0u8; 1500];
        let n = m.pkt_len();
        if n > buf.len() {
            self.counters.icmp.in_errors.add(1);
            return;
        }
        let mut k = 0;
        for s in m.segments() {
            buf[k..k + s.data.len()].copy_from_slice(s.data);
            k += s.data.len();
        }
        // What a clone of this skb would charge an error queue.
        let truesize = (m.nb_segs() * (m.buf_len() + crate::mbuf::MBUF_HDR_SIZE)) as u64;
        drop(m);
        let msg = &buf[..n];
        let hdr = match IcmpHeader::parse(msg) {
            Ok(h) => h,
            Err(wire::WireError::BadChecksum { .. }) => {
                self.counters.icmp.in_csum_errors.add(1);
                self.counters.icmp.in_errors.add(1);
                return;
            }
            Err(_) => {
                self.counters.icmp.in_errors.add(1);
                return;
            }
        };
        match hdr {
            IcmpHeader::EchoRequest { id, seq } => {
                self.counters.icmp.in_echos.add(1);
                if ih.dst.is_multicast() || ih.dst.is_broadcast() {
                    return; // icmp_echo_ignore_broadcasts
                }
                self.icmp_send(
                    ih.src,
                    Some(ih.dst),
                    IcmpHeader::EchoReply { id, seq },
                    &msg[8..],
                );
            }
            IcmpHeader::EchoReply { .. } => self.counters.icmp.in_echo_reps.add(1),
            IcmpHeader::DestUnreachable { code, next_hop_mtu } => {
                self.counters.icmp.in_dest_unreachs.add(1);
                let mut info = 0;
                if code == wire::ICMP_FRAG_NEEDED {
                    info = next_hop_mtu as u32;
                    if next_hop_mtu >= 68 {
                        // The quoted header names the destination whose path shrank.
                        if let Ok(q) = quoted_dst(&msg[8..]) {
                            let now = self.now;
                            self.pmtu.update(q, next_hop_mtu as u32, now);
                        }
                    }
                }
                self.icmp_socket_deliver(
                    ih.src,
                    wire::ICMP_DEST_UNREACH,
                    code,
                    info,
                    &msg[8..],
                    truesize,
                );
            }
            IcmpHeader::Other { kind, code, .. } => {
                let c = &self.counters.icmp;
                match kind {
                    wire::ICMP_TIME_EXCEEDED => c.in_time_excds.add(1),
                    wire::ICMP_PARAMETERPROB => c.in_parm_probs.add(1),
                    wire::ICMP_SOURCE_QUENCH => c.in_src_quenchs.add(1),
                    wire::ICMP_REDIRECT => c.in_redirects.add(1),
                    _ => return,
                }
                self.icmp_socket_deliver(ih.src, kind, code, 0, &msg[8..], truesize);
            }
        }
    }

    /// Plays `icmp_unreach` → `icmp_socket_deliver` for an ICMP error from
    /// `from`: the quoted IP header must be whole and followed by the 8
    /// bytes RFC 792 promises (else Icmp `InErrors`), then the quoted
    /// protocol's error handler runs — `__udp4_lib_err` for UDP, which
    /// counts `InErrors` too when no socket sent that datagram.
    fn icmp_socket_deliver(
        &mut self,
        from: Ipv4Addr,
        ty: u8,
        code: u8,
        info: u32,
        quoted: &[u8],
        truesize: u64,
    ) {
        let ihl = quoted.first().map_or(0, |b| (b & 0x0f) as usize * 4);
        if quoted.len() < 20 || quoted[0] >> 4 != 4 || ihl < 20 || quoted.len() < ihl + 8 {
            self.counters.icmp.in_errors.add(1);
            return;
        }
        if quoted[9] == wire::IPPROTO_UDP
            && !self.udp4_lib_err(from, ty, code, info, quoted, truesize)
        {
            self.counters.icmp.in_errors.add(1);
        }
    }

    /// Builds and sends an ICMP message: plays `icmp_reply` (echo replies)
    /// and `__icmp_send` (errors), with their rate limits in Linux's order:
    /// `icmpv4_global_allow` (host-wide credit, counted `OutRateLimitGlobal`
    /// when refused), `icmpv4_xrlim_allow` (per destination, counted
    /// `OutRateLimitHost`), then `icmp_global_consume`. Types outside
    /// `icmp_ratemask` (echo replies, fragmentation-needed) are never limited.
    pub(crate) fn icmp_send(
        &mut self,
        to: Ipv4Addr,
        from: Option<Ipv4Addr>,
        h: IcmpHeader,
        body: &[u8],
    ) {
        if !self.icmp_rate_allow(to, &h) {
            return;
        }
        let len = wire::ICMP_HLEN + body.len();
        // Reply from the address the peer used, when it is one of ours.
        let from = from.filter(|a| self.port_of_addr(*a).is_some());
        let r = self.ip_send_simple(
            to,
            from,
            wire::IPPROTO_ICMP,
            0,
            |b| {
                b[8..].copy_from_slice(body);
                h.emit(b);
            },
            len,
        );
        match r {
            Ok(()) => {
                self.counters.icmp.out_msgs.add(1);
                match h {
                    IcmpHeader::EchoReply { .. } => self.counters.icmp.out_echo_reps.add(1),
                    IcmpHeader::EchoRequest { .. } => self.counters.icmp.out_echos.add(1),
                    IcmpHeader::DestUnreachable { .. } => {
                        self.counters.icmp.out_dest_unreachs.add(1)
                    }
                    IcmpHeader::Other {
                        kind: wire::ICMP_TIME_EXCEEDED,
                        ..
                    } => self.counters.icmp.out_time_excds.add(1),
                    IcmpHeader::Other { .. } => {}
                }
            }
            Err(_) => self.counters.icmp.out_errors.add(1),
        }
    }

    /// The rate-limit checks of `__icmp_send` / `icmp_reply` for a message
    /// of header `h` to `to`; counts the refusals.
    fn icmp_rate_allow(&mut self, to: Ipv4Addr, h: &IcmpHeader) -> bool {
        let (ty, code) = match *h {
            IcmpHeader::EchoReply { .. } => (wire::ICMP_ECHO_REPLY, 0),
            IcmpHeader::EchoRequest { .. } => (wire::ICMP_ECHO_REQUEST, 0),
            IcmpHeader::DestUnreachable { code, .. } => (wire::ICMP_DEST_UNREACH, code),
            IcmpHeader::Other { kind, code, .. } => (kind, code),
        };
        let now = self.now;
        let rl = &mut self.icmp_rl;
        if rl.mask_allow(ty, code) {
            return true;
        }
        if !rl.global_allow(now) {
            self.counters.icmp.out_rate_limit_global.add(1);
            return false;
        }
        if rl.p.ratelimit_ms > 0 && !rl.peer_allow(to, now) {
            self.counters.icmp.out_rate_limit_host.add(1);
            return false;
        }
        rl.global_consume();
        true
    }

    /// Sends an ICMP echo request (ping) to `to`.
    pub fn ping(&mut self, to: Ipv4Addr, id: u16, seq: u16, payload: &[u8]) {
        self.icmp_send(to, None, IcmpHeader::EchoRequest { id, seq }, payload);
        self.xmit.flush();
    }
}

/// Destination of the IPv4 header quoted in an ICMP error (no checksum check:
/// routers may have changed TTL).
fn quoted_dst(b: &[u8]) -> Result<Ipv4Addr, ()> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return Err(());
    }
    Ok(Ipv4Addr::new(b[16], b[17], b[18], b[19]))
}
