//! Receive demux: Ethernet → ARP (`arp_rcv`/`arp_process`) or IPv4
//! (`ip_rcv` → `ip_local_deliver`) → ICMP (`icmp_rcv`: echo → reply,
//! fragmentation-needed → path MTU) or UDP (`__udp4_lib_rcv`: checksum,
//! socket lookup, NoPorts → port unreachable). Everything else is counted
//! and dropped.

use super::checksum;
use super::wire::{self, ArpPacket, IcmpHeader, Ipv4Header, UdpHeader, L2};
use super::Stack;
use crate::mbuf::{ol, Burst, Mbuf};
use std::net::{Ipv4Addr, SocketAddrV4};

impl Stack {
    /// Processes every frame of a received burst from `port`.
    pub fn rx_burst(&mut self, port: u16, pkts: &mut Burst) {
        while let Some(m) = pkts.pop_front() {
            self.rx(port, m);
        }
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
            wire::ETHERTYPE_IPV4 => self.ip_rcv(port, &pc, m),
            _ => self.counters.rx.unknown_ethertype.add(1),
        }
    }

    /// Plays `ip_rcv` + `ip_rcv_finish` + `ip_local_deliver`.
    fn ip_rcv(&mut self, _port: u16, pc: &super::PortConf, mut m: Mbuf) {
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
            || h.dst.is_broadcast()
            || h.dst == pc.broadcast()
            || h.dst.is_multicast();
        if !ours {
            self.counters.ip.in_addr_errors.add(1);
            return;
        }
        if h.mf() || h.frag_offset() != 0 {
            // No reassembly in the fast path: count and drop fragments.
            self.counters.ip.reasm_fails.add(1);
            return;
        }
        let hl = h.header_len();
        if m.adj(hl).is_err() {
            self.counters.ip.in_hdr_errors.add(1);
            return;
        }
        match h.protocol {
            wire::IPPROTO_UDP => {
                self.counters.ip.in_delivers.add(1);
                self.udp_rcv(&h, m);
            }
            wire::IPPROTO_ICMP => {
                self.counters.ip.in_delivers.add(1);
                self.icmp_rcv(&h, m);
            }
            _ => self.counters.ip.in_unknown_protos.add(1),
        }
    }

    /// Plays `__udp4_lib_rcv`.
    fn udp_rcv(&mut self, ih: &Ipv4Header, mut m: Mbuf) {
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
        if self.udp_deliver(ih.dst, u.dst_port, src, m) {
            return;
        }
        self.counters.udp.no_ports.add(1);
        // Unicast only: ICMP port unreachable quoting the header (+8 bytes).
        if self.port_of_addr(ih.dst).is_some() {
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
                if code == wire::ICMP_FRAG_NEEDED && next_hop_mtu >= 68 {
                    // The quoted header names the destination whose path shrank.
                    if let Ok(q) = quoted_dst(&msg[8..]) {
                        let now = self.now;
                        self.pmtu.update(q, next_hop_mtu as u32, now);
                    }
                }
            }
            IcmpHeader::Other { .. } => {}
        }
    }

    /// Builds and sends an ICMP message (`icmp_reply` / `icmp_send`).
    pub(crate) fn icmp_send(
        &mut self,
        to: Ipv4Addr,
        from: Option<Ipv4Addr>,
        h: IcmpHeader,
        body: &[u8],
    ) {
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
                    IcmpHeader::Other { .. } => {}
                }
            }
            Err(_) => self.counters.icmp.out_errors.add(1),
        }
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
