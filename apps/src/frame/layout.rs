//! Layered raw frames: the header stacks beyond Ethernet[/802.1Q]/IPv4/UDP
//! (TCP, ICMP echo, IPv6, QinQ, MPLS, VXLAN, GRE, ARP, IPv4 options), laid
//! out once per stream as a template plus the list of length fields and
//! checksums to finish per packet — innermost first, so an outer UDP
//! checksum (VXLAN) covers the inner frame as sent. The plain UDP/IPv4
//! stream keeps its own fast paths in the parent module; this is the
//! general path.
//!
//! Plays the part of the protocol `build` steps a packet goes through in
//! Linux before `dev_queue_xmit`: `tcp_v4_send_check`/`__tcp_v6_send_check`
//! (TCP pseudo-header sums), `ip_send_check` (IPv4 header checksum),
//! `udp6_set_csum`, `icmpv6_push_pending_frames` and, for tunnels,
//! `vxlan_build_skb` / `gre_build_header` + `iptunnel_xmit` (outer headers).

use super::{addr_words, fill_payload, ones_sum};
use crate::config::{FieldKind, Headers, Stream, Tunnel, TunnelKind, L3, L4};
use wirespeed::stack::checksum::{self, fold};
use wirespeed::stack::ipopt::ip_options_build;

/// EtherTypes (IEEE 802.1Q-2018, RFC 3032, RFC 8200, RFC 1701/7637).
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_MPLS_UC: u16 = 0x8847;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_TEB: u16 = 0x6558;
/// IP protocol numbers.
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_ICMPV6: u8 = 58;
/// The IANA VXLAN port (RFC 7348 §5).
pub const VXLAN_PORT: u16 = 4789;
const ICMP_ECHO: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;

/// Where a varying field sits in a layered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub offset: usize,
    pub width: u8,
    /// OR-ed into the value as written (a VLAN tag's priority bits).
    pub write_or: u64,
}

/// The pseudo-header an L4 checksum starts from.
#[derive(Debug, Clone, Copy)]
enum Pseudo {
    /// ICMPv4: the message alone.
    None,
    /// RFC 768/9293: the IPv4 header at `ip`'s addresses, protocol, length.
    V4 { ip: usize, proto: u8 },
    /// RFC 8200 §8.1: the IPv6 header at `ip`'s addresses, the 32-bit
    /// upper-layer length, the next-header value.
    V6 { ip: usize, proto: u8 },
}

#[derive(Debug, Clone, Copy)]
enum Csum {
    /// An IPv4 header checksum over `hlen` bytes at `at`.
    Ip4 { at: usize, hlen: usize },
    /// An L4 checksum over `start..` the frame's end, stored at `field`;
    /// `udp`: a computed zero is sent as all ones (RFC 768, RFC 8200 §8.1).
    L4 {
        start: usize,
        field: usize,
        pseudo: Pseudo,
        udp: bool,
    },
}

/// A stream's layered frame: the template at the largest size and what to
/// finish per packet.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub template: Vec<u8>,
    /// Header bytes (the payload starts here).
    pub hdr_len: usize,
    /// 16-bit length fields: (offset, start) holds `len - start`.
    lens: Vec<(usize, usize)>,
    /// Innermost first.
    csums: Vec<Csum>,
    slots: Vec<(FieldKind, Slot)>,
}

/// Appends header bytes and records fields, lengths and checksums.
#[derive(Default)]
struct Builder {
    f: Vec<u8>,
    lens: Vec<(usize, usize)>,
    csums: Vec<Csum>,
    slots: Vec<(FieldKind, Slot)>,
}

impl Builder {
    fn put(&mut self, b: &[u8]) -> usize {
        let at = self.f.len();
        self.f.extend_from_slice(b);
        at
    }
    fn put16(&mut self, v: u16) -> usize {
        self.put(&v.to_be_bytes())
    }
    fn slot(&mut self, kind: FieldKind, offset: usize, width: u8) {
        self.slots.push((
            kind,
            Slot {
                offset,
                width,
                write_or: 0,
            },
        ));
    }

    /// An IPv4 header (RFC 791, DF set: generator frames are never
    /// fragmented; ID 0) with `opts` (compiled options) after it.
    fn ipv4(
        &mut self,
        tos: u8,
        ttl: u8,
        proto: u8,
        src: [u8; 4],
        dst: [u8; 4],
        opts: &[u8],
    ) -> usize {
        let hlen = 20 + opts.len();
        let at = self.put(&[
            0x40 | (hlen / 4) as u8,
            tos,
            0,
            0,
            0,
            0,
            0x40,
            0,
            ttl,
            proto,
            0,
            0,
        ]);
        self.put(&src);
        self.put(&dst);
        self.put(opts);
        self.lens.push((at + 2, at));
        self.csums.push(Csum::Ip4 { at, hlen });
        at
    }

    fn ethernet(&mut self, dst: [u8; 6], src: [u8; 6]) {
        self.put(&dst);
        self.put(&src);
    }
}

impl Layout {
    /// Lays out stream `s`'s headers (validated: see `config::Headers`).
    pub fn new(s: &Stream) -> Layout {
        let h = &s.hdr;
        let mut b = Builder::default();
        b.ethernet(s.dst_mac.0, s.src_mac.0);
        b.slot(FieldKind::DstMac, 0, 6);
        b.slot(FieldKind::SrcMac, 6, 6);
        let l3_type = match h.l3 {
            L3::Ipv4 => ETH_P_IP,
            L3::Ipv6 => ETH_P_IPV6,
            L3::Arp => ETH_P_ARP,
        };
        if h.svlan != 0 {
            b.put16(ETH_P_8021AD);
            b.put16(h.svlan);
        }
        if s.vlan != 0 {
            b.put16(ETH_P_8021Q);
            let at = b.put16(s.vlan);
            b.slots.push((
                FieldKind::Vlan,
                Slot {
                    offset: at,
                    width: 2,
                    write_or: (s.vlan & 0xf000) as u64,
                },
            ));
        }
        let link_type = if !h.mpls.is_empty() {
            ETH_P_MPLS_UC
        } else if h.tunnel.is_some() {
            ETH_P_IP
        } else {
            l3_type
        };
        b.put16(link_type);
        // RFC 3032 §2.1: label (20 bits), TC (3), bottom of stack (1), TTL (8).
        for (i, &label) in h.mpls.iter().enumerate() {
            let bos = (i + 1 == h.mpls.len()) as u32;
            b.put(&((label << 12) | (bos << 8) | h.mpls_ttl as u32).to_be_bytes());
        }
        if let Some(t) = &h.tunnel {
            tunnel(&mut b, t, l3_type);
        }
        let l4_proto = match h.l4 {
            L4::Udp => IPPROTO_UDP,
            L4::Tcp => IPPROTO_TCP,
            L4::Icmp if h.l3 == L3::Ipv6 => IPPROTO_ICMPV6,
            L4::Icmp => IPPROTO_ICMP,
            L4::None => 0,
        };
        let pseudo = l3(&mut b, s, l4_proto);
        l4(&mut b, s, pseudo);
        let hdr_len = b.f.len();
        let max = s.sizes.max() as usize - 4;
        let mut f = b.f;
        f.resize(max.max(hdr_len), 0);
        if h.l3 != L3::Arp {
            // ARP's frame is padded with zeros; everything else carries the payload.
            fill_payload(&mut f[hdr_len..], s);
        }
        let mut csums = b.csums;
        csums.reverse();
        Layout {
            template: f,
            hdr_len,
            lens: b.lens,
            csums,
            slots: b.slots,
        }
    }

    /// Where field `kind` sits (None: not in this layout; config refuses those).
    pub fn slot(&self, kind: FieldKind) -> Option<Slot> {
        self.slots.iter().find(|x| x.0 == kind).map(|x| x.1)
    }

    /// Writes the lengths and checksums of a frame of `len` bytes (without
    /// FCS) whose payload is the template's: `prefix[n]` is the sum of the
    /// payload's first n bytes. Every header region a checksum covers has
    /// an even length, so the payload's words line up with the prefix sums.
    #[inline]
    pub fn finish(&self, f: &mut [u8], len: usize, prefix: &[u64]) {
        let Some(pay) = prefix.get(len.saturating_sub(self.hdr_len)) else {
            return;
        };
        if f.len() < len || len < self.hdr_len {
            return;
        }
        for &(o, start) in &self.lens {
            f[o..o + 2].copy_from_slice(&((len - start) as u16).to_be_bytes());
        }
        for c in &self.csums {
            match *c {
                Csum::Ip4 { at, hlen } => {
                    f[at + 10..at + 12].fill(0);
                    let c = !ones_sum(&f[at..at + hlen], 0);
                    f[at + 10..at + 12].copy_from_slice(&c.to_be_bytes());
                }
                Csum::L4 {
                    start,
                    field,
                    pseudo,
                    udp,
                } => {
                    f[field..field + 2].fill(0);
                    let l4_len = (len - start) as u64;
                    let ps = match pseudo {
                        Pseudo::None => 0,
                        Pseudo::V4 { ip, proto } => addr_words(f, ip) + proto as u64 + l4_len,
                        Pseudo::V6 { ip, proto } => {
                            checksum::sum(&f[ip + 8..ip + 40])
                                + (l4_len >> 16)
                                + (l4_len & 0xffff)
                                + proto as u64
                        }
                    };
                    let acc = checksum::sum(&f[start..self.hdr_len]) + pay + ps;
                    let mut c = !fold(acc);
                    if udp && c == 0 {
                        c = 0xffff;
                    }
                    f[field..field + 2].copy_from_slice(&c.to_be_bytes());
                }
            }
        }
    }
}

/// The outer IPv4 and the tunnel's own header (VXLAN over UDP, GRE), up to
/// the inner packet (whose EtherType / protocol type is `l3_type`).
fn tunnel(b: &mut Builder, t: &Tunnel, l3_type: u16) {
    let proto = match t.kind {
        TunnelKind::Vxlan { .. } => IPPROTO_UDP,
        TunnelKind::Gre { .. } => IPPROTO_GRE,
    };
    let oip = b.ipv4(0, t.ttl, proto, t.src.octets(), t.dst.octets(), &[]);
    match t.kind {
        TunnelKind::Vxlan { vni, sport } => {
            let u = b.put16(sport);
            b.slot(FieldKind::TunnelSport, u, 2);
            b.put16(VXLAN_PORT);
            b.put(&[0; 4]);
            b.lens.push((u + 4, u));
            b.csums.push(Csum::L4 {
                start: u,
                field: u + 6,
                pseudo: Pseudo::V4 {
                    ip: oip,
                    proto: IPPROTO_UDP,
                },
                udp: true,
            });
            // RFC 7348 §5: flags (I set), reserved, VNI, reserved.
            b.put(&[0x08, 0, 0, 0]);
            b.put(&(vni << 8).to_be_bytes());
            b.ethernet(t.inner_dst_mac.0, t.inner_src_mac.0);
            b.put16(l3_type);
        }
        TunnelKind::Gre { eth } => {
            // RFC 2784 §2: no checksum, version 0, the protocol type.
            b.put16(0);
            if eth {
                b.put16(ETH_P_TEB);
                b.ethernet(t.inner_dst_mac.0, t.inner_src_mac.0);
                b.put16(l3_type);
            } else {
                b.put16(l3_type);
            }
        }
    }
}

/// The network header (IPv4 with options, IPv6, ARP) and the
/// pseudo-header its transport checksum starts from.
fn l3(b: &mut Builder, s: &Stream, l4_proto: u8) -> Pseudo {
    let h = &s.hdr;
    match h.l3 {
        L3::Ipv4 => {
            let opts = h.ip_options.map(|o| o.bytes().to_vec()).unwrap_or_default();
            let ip = b.ipv4(
                s.tos,
                s.ttl,
                l4_proto,
                s.src_ip.octets(),
                s.dst_ip.octets(),
                &opts,
            );
            if let Some(o) = &h.ip_options {
                // Our address into record route / timestamp slots
                // (`ip_options_build`, as for a socket's IP_OPTIONS).
                ip_options_build(&mut b.f[ip + 20..], o, s.dst_ip, s.src_ip);
            }
            b.slot(FieldKind::Tos, ip + 1, 1);
            b.slot(FieldKind::SrcIp, ip + 12, 4);
            b.slot(FieldKind::DstIp, ip + 16, 4);
            if l4_proto == IPPROTO_ICMP {
                Pseudo::None
            } else {
                Pseudo::V4 {
                    ip,
                    proto: l4_proto,
                }
            }
        }
        L3::Ipv6 => {
            let ip = ipv6(b, h, l4_proto);
            Pseudo::V6 {
                ip,
                proto: l4_proto,
            }
        }
        L3::Arp => {
            arp(b, h);
            Pseudo::None
        }
    }
}

/// An IPv6 header (RFC 8200 §3); returns its offset.
fn ipv6(b: &mut Builder, h: &Headers, next: u8) -> usize {
    let w0 = (6u32 << 28) | ((h.traffic_class as u32) << 20) | h.flow_label;
    let ip = b.put(&w0.to_be_bytes());
    b.put(&[0, 0, next, h.hop_limit]);
    b.put(&h.src_ip6.octets());
    b.put(&h.dst_ip6.octets());
    // Payload length: everything after the 40-byte header (no extension headers).
    b.lens.push((ip + 4, ip + 40));
    b.slot(FieldKind::SrcIp6, ip + 8 + 12, 4);
    b.slot(FieldKind::DstIp6, ip + 24 + 12, 4);
    ip
}

/// An ARP packet for IPv4 over Ethernet (RFC 826); `src_ip`/`dst_ip`
/// fields address the sender / target protocol address.
fn arp(b: &mut Builder, h: &Headers) {
    let a = &h.arp;
    let at = b.put(&[0, 1, 0x08, 0x00, 6, 4]);
    b.put16(a.op);
    b.put(&a.sender_mac.0);
    b.put(&a.sender_ip.octets());
    b.put(&a.target_mac.0);
    b.put(&a.target_ip.octets());
    b.slot(FieldKind::SrcIp, at + 14, 4);
    b.slot(FieldKind::DstIp, at + 24, 4);
}

/// The transport header (UDP, TCP without options, ICMP/ICMPv6 echo request).
fn l4(b: &mut Builder, s: &Stream, pseudo: Pseudo) {
    let h = &s.hdr;
    let at = b.f.len();
    let (field, udp) = match h.l4 {
        L4::None => return,
        L4::Udp => {
            b.put16(s.src_port);
            b.put16(s.dst_port);
            b.put(&[0; 4]);
            b.lens.push((at + 4, at));
            (at + 6, true)
        }
        L4::Tcp => {
            b.put16(s.src_port);
            b.put16(s.dst_port);
            b.put(&h.tcp.seq.to_be_bytes());
            b.put(&h.tcp.ack.to_be_bytes());
            // Data offset 5 (no options), the flags, the window, checksum, urgent pointer.
            b.put(&[5 << 4, h.tcp.flags]);
            b.put16(h.tcp.window);
            b.put(&[0; 4]);
            b.slot(FieldKind::TcpSeq, at + 4, 4);
            (at + 16, false)
        }
        L4::Icmp => {
            let ty = if h.l3 == L3::Ipv6 {
                ICMPV6_ECHO_REQUEST
            } else {
                ICMP_ECHO
            };
            b.put(&[ty, 0, 0, 0]);
            b.put16(h.icmp_id);
            b.put16(h.icmp_seq);
            b.slot(FieldKind::IcmpId, at + 4, 2);
            b.slot(FieldKind::IcmpSeq, at + 6, 2);
            (at + 2, false)
        }
    };
    if matches!(h.l4, L4::Udp | L4::Tcp) {
        b.slot(FieldKind::SrcPort, at, 2);
        b.slot(FieldKind::DstPort, at + 2, 2);
    }
    b.csums.push(Csum::L4 {
        start: at,
        field,
        pseudo,
        udp,
    });
}

#[cfg(test)]
mod tests {
    use super::super::PacketGen;
    use crate::config::{Config, Stream};
    use wirespeed::mbuf::{Mempool, PoolConfig};

    fn stream(toml: &str) -> Stream {
        Config::parse(
            &format!("[[port]]\nspec = \"null\"\n[[stream]]\npayload = \"zeros\"\n{toml}"),
            "t",
        )
        .unwrap()
        .validate()
        .unwrap()
        .remove(0)
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Frames worked out by hand, header by header (checksums summed on
    /// paper from RFC 1071's definition, not by the code under test):
    /// the template of each kind of stack is exactly these bytes.
    #[test]
    fn templates_are_the_hand_worked_frames() {
        let eth = "020000000002 020000000001";
        let cases = [
            (
                "size = 64\nl4 = \"tcp\"",
                // IPv4: len 46, DF, TTL 64, proto 6, checksum aea2;
                // TCP: ports 1024, seq/ack 0, offset 5, SYN, window 65535, checksum 1bb5.
                format!("{eth} 0800 4500002e 00004000 4006aea2 c6120001 c6120002
                         04000400 00000000 00000000 5002ffff 1bb50000 000000000000"),
            ),
            (
                "size = 64\nl4 = \"icmp\"\nicmp_id = 4660\nicmp_seq = 5",
                // ICMP echo request type 8, checksum e5c6 over the message only, id 0x1234, seq 5.
                format!("{eth} 0800 4500002e 00004000 4001aea7 c6120001 c6120002
                         0800e5c6 12340005 {}", "00".repeat(18)),
            ),
            (
                "size = 80\nip = 6\nl4 = \"udp\"",
                // IPv6: version 6, payload length 22, next header 17, hop limit 64;
                // UDP checksum 9c4d over the RFC 8200 §8.1 pseudo-header.
                format!("{eth} 86dd 60000000 00161140 20010db8000000000000000000000001
                         20010db8000000000000000000000002 04000400 00169c4d {}", "00".repeat(14)),
            ),
            (
                "size = 64\nsvlan = 100\nvlan = 200\nmpls = [16, 17]",
                // 802.1ad 100, 802.1Q 200, MPLS 16 (TTL 64), 17 (bottom of stack, TTL 64).
                "020000000002 020000000001 88a8 0064 8100 00c8 8847 00010040 00011140
                 4500001e 00004000 4011aea7 c6120001 c6120002 04000400 000a6bb2 0000"
                    .to_string(),
            ),
            (
                "size = 100\ntunnel = \"vxlan\"\nvni = 42\ntunnel_src = \"192.0.2.1\"\ntunnel_dst = \"192.0.2.2\"",
                // Outer IPv4 proto 17 (checksum b697), UDP 49152 → 4789 len 62 with
                // checksum f4fa over the whole inner frame; VXLAN I flag, VNI 42;
                // inner Ethernet, IPv4 (aea5), UDP (6bae).
                format!("{eth} 0800 45000052 00004000 4011b697 c0000201 c0000202
                         c00012b5 003ef4fa 08000000 00002a00
                         020000000102 020000000101 0800 45000020 00004000 4011aea5 c6120001 c6120002
                         04000400 000c6bae 00000000"),
            ),
            (
                "size = 100\ntunnel = \"gre\"\ntunnel_src = \"192.0.2.1\"\ntunnel_dst = \"192.0.2.2\"\nl4 = \"icmp\"",
                // Outer IPv4 proto 47 (b679), GRE version 0 protocol 0x6558, inner Ethernet/IPv4/ICMP (f7ff).
                format!("{eth} 0800 45000052 00004000 402fb679 c0000201 c0000202 00006558
                         020000000102 020000000101 0800 4500002c 00004000 4001aea9 c6120001 c6120002
                         0800f7ff 00000000 {}", "00".repeat(16)),
            ),
            (
                "size = 64\nl3 = \"arp\"\narp_op = \"reply\"",
                // ARP reply: Ethernet/IPv4, sender = src_mac/src_ip, target = dst_mac/dst_ip; zero padding.
                format!("{eth} 0806 0001 0800 06 04 0002 020000000001 c6120001 020000000002 c6120002 {}",
                    "00".repeat(18)),
            ),
            (
                "size = 100\nip_options = \"rr\"",
                // IHL 15; record route, length 39, pointer 8 past our address in the first slot, End.
                format!("{eth} 0800 4f000052 00004000 40118186 c6120001 c6120002
                         072708 c6120001 {} 00 04000400 00166b9a {}", "00".repeat(32), "00".repeat(14)),
            ),
        ];
        for (toml, want) in cases {
            let g = PacketGen::new(&stream(toml), 0, false);
            assert_eq!(g.template, hex(&want), "{toml}");
        }
    }

    /// RFC 1071 over `b` (an independent check: byte pairs, folded at the end).
    fn sum(b: &[u8]) -> u32 {
        b.chunks(2)
            .map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0)))
            .sum()
    }
    fn folds_to_ones(mut s: u32) -> bool {
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s == 0xffff
    }

    /// In a TCP/IPv6 frame (no IPv4 header, a 20-byte TCP header) the
    /// varying source port and sequence number land at 14 + 40 and
    /// 14 + 40 + 4, the IPv6 address field in the source address's low
    /// word, and the TCP checksum over the pseudo-header stays valid.
    #[test]
    fn fields_land_at_their_offsets_in_tcp_over_ipv6() {
        let s = stream(
            "size = \"90-200\"\nip = 6\nl4 = \"tcp\"\ntcp_flags = \"A\"\ntcp_ack = 1\n\
             [[stream.field]]\nname = \"src_port\"\nmin = 3000\nmax = 3002\n\
             [[stream.field]]\nname = \"tcp_seq\"\nop = \"dec\"\nmin = 10\nmax = 24\nstep = 5\n\
             [[stream.field]]\nname = \"src_ip6\"\nmin = \"2001:db8::1\"\nmax = \"2001:db8::ff\"\nstep = 16\n",
        );
        let mut g = PacketGen::new(&s, 0, false);
        wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
        let mut p = Mempool::new(&PoolConfig {
            size: 16,
            ..Default::default()
        })
        .unwrap();
        let t = g.template.clone();
        p.init_all(|m| {
            let _ = m.extend_from_slice(&t);
        })
        .unwrap();
        for i in 0..12u32 {
            let mut m = p.alloc().unwrap();
            let len = g.fill(&mut m, 0);
            let f = m.data();
            assert_eq!(f.len(), len);
            let (ip, tcp) = (14, 54);
            assert_eq!(&f[12..14], &[0x86, 0xdd]);
            assert_eq!(
                u16::from_be_bytes([f[ip + 4], f[ip + 5]]) as usize,
                len - tcp,
                "payload length"
            );
            assert_eq!(
                u16::from_be_bytes([f[tcp], f[tcp + 1]]) as u32,
                3000 + i % 3,
                "src_port"
            );
            let seq = u32::from_be_bytes(f[tcp + 4..tcp + 8].try_into().unwrap());
            assert_eq!(seq, [24, 19, 14][i as usize % 3], "tcp_seq");
            assert_eq!(&f[ip + 8..ip + 20], &hex("20010db8 00000000 00000000")[..]);
            let low = u32::from_be_bytes(f[ip + 20..ip + 24].try_into().unwrap());
            assert_eq!(low, 1 + (16 * i) % 255, "src_ip6");
            assert_eq!(f[tcp + 13], 0x10, "flags");
            let l4 = (len - tcp) as u32;
            let pseudo = sum(&f[ip + 8..ip + 40]) + (l4 >> 16) + (l4 & 0xffff) + 6;
            assert!(
                folds_to_ones(pseudo + sum(&f[tcp..])),
                "TCP checksum of frame {i}"
            );
        }
    }
}
