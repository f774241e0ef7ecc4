//! Wire formats as typed headers over bytes: Ethernet, 802.1Q, ARP, IPv4 (with
//! options), ICMP (echo, destination unreachable incl. fragmentation needed)
//! and UDP. Each header `parse`s from a byte slice (checking lengths and
//! invariants, never panicking) and `emit`s into one.

use super::checksum;
use crate::ethdev::MacAddr;
use std::net::Ipv4Addr;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_UDP: u8 = 17;
pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
pub const IPV4_MIN_HLEN: usize = 20;
pub const IPV4_MAX_HLEN: usize = 60;
pub const UDP_HLEN: usize = 8;
pub const ICMP_HLEN: usize = 8;
pub const ARP_LEN: usize = 28;
/// IP flags field bits (in the 16-bit flags+offset word).
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET_MASK: u16 = 0x1fff;

/// Why bytes do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{what}: truncated: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("{what}: bad field {field} = {value}")]
    BadField {
        what: &'static str,
        field: &'static str,
        value: u32,
    },
    #[error("{what}: checksum mismatch")]
    BadChecksum { what: &'static str },
}

fn need(what: &'static str, b: &[u8], n: usize) -> Result<(), WireError> {
    if b.len() < n {
        Err(WireError::Truncated {
            what,
            need: n,
            have: b.len(),
        })
    } else {
        Ok(())
    }
}

fn mac_at(b: &[u8], off: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[off..off + 6]);
    MacAddr(m)
}

fn ip_at(b: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[off], b[off + 1], b[off + 2], b[off + 3])
}

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// An Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

impl EthernetHeader {
    pub fn parse(b: &[u8]) -> Result<EthernetHeader, WireError> {
        need("ethernet", b, ETH_HLEN)?;
        Ok(EthernetHeader {
            dst: mac_at(b, 0),
            src: mac_at(b, 6),
            ethertype: be16(b, 12),
        })
    }
    /// Writes the 14 bytes at the start of `b` (which must hold them).
    pub fn emit(&self, b: &mut [u8]) {
        b[0..6].copy_from_slice(&self.dst.0);
        b[6..12].copy_from_slice(&self.src.0);
        b[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
    }
}

/// An 802.1Q tag (the 4 bytes after the source MAC when the TPID is 0x8100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
    /// The encapsulated ethertype.
    pub ethertype: u16,
}

impl VlanTag {
    /// Parses the tag body (TCI + inner type), i.e. the bytes after the TPID.
    pub fn parse(b: &[u8]) -> Result<VlanTag, WireError> {
        need("802.1q", b, VLAN_HLEN)?;
        let tci = be16(b, 0);
        Ok(VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
            ethertype: be16(b, 2),
        })
    }
    pub fn tci(&self) -> u16 {
        ((self.pcp as u16 & 7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }
    pub fn emit(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&self.tci().to_be_bytes());
        b[2..4].copy_from_slice(&self.ethertype.to_be_bytes());
    }
}

/// A parsed L2 header: Ethernet, optionally one 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    pub eth: EthernetHeader,
    pub vlan: Option<VlanTag>,
    /// The payload's ethertype (inner one when tagged).
    pub ethertype: u16,
    /// Bytes of L2 header (14 or 18).
    pub len: usize,
}

impl L2 {
    pub fn parse(b: &[u8]) -> Result<L2, WireError> {
        let eth = EthernetHeader::parse(b)?;
        if eth.ethertype == ETHERTYPE_VLAN {
            let tag = VlanTag::parse(&b[ETH_HLEN..])?;
            Ok(L2 {
                eth,
                vlan: Some(tag),
                ethertype: tag.ethertype,
                len: ETH_HLEN + VLAN_HLEN,
            })
        } else {
            Ok(L2 {
                eth,
                vlan: None,
                ethertype: eth.ethertype,
                len: ETH_HLEN,
            })
        }
    }
}

/// ARP operation codes.
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// An ARP packet for IPv4 over Ethernet (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: u16,
    pub sha: MacAddr,
    pub spa: Ipv4Addr,
    pub tha: MacAddr,
    pub tpa: Ipv4Addr,
}

impl ArpPacket {
    pub fn parse(b: &[u8]) -> Result<ArpPacket, WireError> {
        need("arp", b, ARP_LEN)?;
        let bad = |field, value| WireError::BadField {
            what: "arp",
            field,
            value,
        };
        if be16(b, 0) != 1 {
            return Err(bad("htype", be16(b, 0) as u32));
        }
        if be16(b, 2) != ETHERTYPE_IPV4 {
            return Err(bad("ptype", be16(b, 2) as u32));
        }
        if b[4] != 6 || b[5] != 4 {
            return Err(bad("hlen/plen", ((b[4] as u32) << 8) | b[5] as u32));
        }
        Ok(ArpPacket {
            op: be16(b, 6),
            sha: mac_at(b, 8),
            spa: ip_at(b, 14),
            tha: mac_at(b, 18),
            tpa: ip_at(b, 24),
        })
    }
    pub fn emit(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&1u16.to_be_bytes());
        b[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sha.0);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha.0);
        b[24..28].copy_from_slice(&self.tpa.octets());
    }
}

/// An IPv4 header (RFC 791), options kept as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub tos: u8,
    pub total_len: u16,
    pub id: u16,
    /// Flags and fragment offset word (DF, MF, offset in 8-byte units).
    pub frag: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub checksum: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub options: [u8; 40],
    pub options_len: u8,
}

impl Default for Ipv4Header {
    fn default() -> Self {
        Ipv4Header {
            tos: 0,
            total_len: 20,
            id: 0,
            frag: 0,
            ttl: 64,
            protocol: 0,
            checksum: 0,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            options: [0; 40],
            options_len: 0,
        }
    }
}

impl Ipv4Header {
    /// Header length in bytes (20 + options, a multiple of 4).
    pub fn header_len(&self) -> usize {
        IPV4_MIN_HLEN + self.options_len as usize
    }
    pub fn df(&self) -> bool {
        self.frag & IP_DF != 0
    }
    pub fn mf(&self) -> bool {
        self.frag & IP_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        (self.frag & IP_OFFSET_MASK) as usize * 8
    }
    /// Sets options (padded with End-of-Options to a multiple of 4).
    pub fn set_options(&mut self, opts: &[u8]) -> Result<(), WireError> {
        let padded = opts.len().div_ceil(4) * 4;
        if padded > 40 {
            return Err(WireError::BadField {
                what: "ipv4",
                field: "options length",
                value: opts.len() as u32,
            });
        }
        self.options = [0; 40];
        self.options[..opts.len()].copy_from_slice(opts);
        self.options_len = padded as u8;
        Ok(())
    }

    /// Parses and checks version, IHL, total length against `b`, and the header checksum.
    pub fn parse(b: &[u8]) -> Result<Ipv4Header, WireError> {
        Self::parse_in(b, b.len())
    }

    /// As [`Ipv4Header::parse`] when `b` holds the header but the packet
    /// continues elsewhere (later mbuf segments): the total length is
    /// checked against `pkt_len`.
    pub fn parse_in(b: &[u8], pkt_len: usize) -> Result<Ipv4Header, WireError> {
        need("ipv4", b, IPV4_MIN_HLEN)?;
        let bad = |field, value| WireError::BadField {
            what: "ipv4",
            field,
            value,
        };
        if b[0] >> 4 != 4 {
            return Err(bad("version", (b[0] >> 4) as u32));
        }
        let ihl = (b[0] & 0xf) as usize * 4;
        if ihl < IPV4_MIN_HLEN {
            return Err(bad("ihl", ihl as u32));
        }
        need("ipv4", b, ihl)?;
        let total_len = be16(b, 2);
        if (total_len as usize) < ihl {
            return Err(bad("total length", total_len as u32));
        }
        if (total_len as usize) > pkt_len {
            return Err(WireError::Truncated {
                what: "ipv4 payload",
                need: total_len as usize,
                have: pkt_len,
            });
        }
        if checksum::fold(checksum::sum(&b[..ihl])) != 0xffff {
            return Err(WireError::BadChecksum { what: "ipv4" });
        }
        let mut options = [0u8; 40];
        options[..ihl - 20].copy_from_slice(&b[20..ihl]);
        Ok(Ipv4Header {
            tos: b[1],
            total_len,
            id: be16(b, 4),
            frag: be16(b, 6),
            ttl: b[8],
            protocol: b[9],
            checksum: be16(b, 10),
            src: ip_at(b, 12),
            dst: ip_at(b, 16),
            options,
            options_len: (ihl - 20) as u8,
        })
    }

    /// Writes the header into `b[..header_len()]` and computes its checksum.
    pub fn emit(&self, b: &mut [u8]) {
        let hl = self.header_len();
        b[0] = 0x40 | (hl / 4) as u8;
        b[1] = self.tos;
        b[2..4].copy_from_slice(&self.total_len.to_be_bytes());
        b[4..6].copy_from_slice(&self.id.to_be_bytes());
        b[6..8].copy_from_slice(&self.frag.to_be_bytes());
        b[8] = self.ttl;
        b[9] = self.protocol;
        b[10..12].copy_from_slice(&[0, 0]);
        b[12..16].copy_from_slice(&self.src.octets());
        b[16..20].copy_from_slice(&self.dst.octets());
        b[20..hl].copy_from_slice(&self.options[..self.options_len as usize]);
        let c = checksum::checksum(&b[..hl]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// Recomputes the checksum of the IPv4 header at the start of `b` (`ip_send_check`).
pub fn ipv4_set_checksum(b: &mut [u8]) {
    let hl = (b[0] & 0xf) as usize * 4;
    b[10] = 0;
    b[11] = 0;
    let c = checksum::checksum(&b[..hl]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
}

/// ICMP types and codes this stack speaks.
pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_PORT_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;
pub const ICMP_NET_UNREACH: u8 = 0;
pub const ICMP_HOST_UNREACH: u8 = 1;
/// `NR_ICMP_UNREACH`: the highest destination-unreachable code Linux maps.
pub const NR_ICMP_UNREACH: u8 = 15;
pub const ICMP_SOURCE_QUENCH: u8 = 4;
pub const ICMP_REDIRECT: u8 = 5;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PARAMETERPROB: u8 = 12;
/// Time exceeded codes: TTL count exceeded, fragment reassembly time exceeded.
pub const ICMP_EXC_TTL: u8 = 0;
pub const ICMP_EXC_FRAGTIME: u8 = 1;

/// An ICMP message header (the first 8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpHeader {
    EchoRequest {
        id: u16,
        seq: u16,
    },
    EchoReply {
        id: u16,
        seq: u16,
    },
    /// Destination unreachable; `next_hop_mtu` is meaningful for code 4
    /// (fragmentation needed and DF set, RFC 1191).
    DestUnreachable {
        code: u8,
        next_hop_mtu: u16,
    },
    Other {
        kind: u8,
        code: u8,
        rest: [u8; 4],
    },
}

impl IcmpHeader {
    /// Parses the header of `b` (a whole ICMP message) and verifies its checksum.
    pub fn parse(b: &[u8]) -> Result<IcmpHeader, WireError> {
        need("icmp", b, ICMP_HLEN)?;
        if checksum::fold(checksum::sum(b)) != 0xffff {
            return Err(WireError::BadChecksum { what: "icmp" });
        }
        let (kind, code) = (b[0], b[1]);
        let (w1, w2) = (be16(b, 4), be16(b, 6));
        Ok(match kind {
            ICMP_ECHO_REQUEST => IcmpHeader::EchoRequest { id: w1, seq: w2 },
            ICMP_ECHO_REPLY => IcmpHeader::EchoReply { id: w1, seq: w2 },
            ICMP_DEST_UNREACH => IcmpHeader::DestUnreachable {
                code,
                next_hop_mtu: w2,
            },
            _ => IcmpHeader::Other {
                kind,
                code,
                rest: [b[4], b[5], b[6], b[7]],
            },
        })
    }
    /// Writes the 8-byte header into `msg` and the checksum over all of `msg`
    /// (header + payload already in place).
    pub fn emit(&self, msg: &mut [u8]) {
        let (kind, code, rest) = match *self {
            IcmpHeader::EchoRequest { id, seq } => (ICMP_ECHO_REQUEST, 0, join(id, seq)),
            IcmpHeader::EchoReply { id, seq } => (ICMP_ECHO_REPLY, 0, join(id, seq)),
            IcmpHeader::DestUnreachable { code, next_hop_mtu } => {
                (ICMP_DEST_UNREACH, code, join(0, next_hop_mtu))
            }
            IcmpHeader::Other { kind, code, rest } => (kind, code, rest),
        };
        msg[0] = kind;
        msg[1] = code;
        msg[2] = 0;
        msg[3] = 0;
        msg[4..8].copy_from_slice(&rest);
        let c = checksum::checksum(msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

fn join(a: u16, b: u16) -> [u8; 4] {
    let (x, y) = (a.to_be_bytes(), b.to_be_bytes());
    [x[0], x[1], y[0], y[1]]
}

/// A UDP header (RFC 768).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub len: u16,
    pub checksum: u16,
}

impl UdpHeader {
    pub fn parse(b: &[u8]) -> Result<UdpHeader, WireError> {
        need("udp", b, UDP_HLEN)?;
        let h = UdpHeader {
            src_port: be16(b, 0),
            dst_port: be16(b, 2),
            len: be16(b, 4),
            checksum: be16(b, 6),
        };
        if (h.len as usize) < UDP_HLEN || h.len as usize > b.len() {
            return Err(WireError::BadField {
                what: "udp",
                field: "length",
                value: h.len as u32,
            });
        }
        Ok(h)
    }
    pub fn emit(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        b[4..6].copy_from_slice(&self.len.to_be_bytes());
        b[6..8].copy_from_slice(&self.checksum.to_be_bytes());
    }
    /// Verifies the checksum of a whole UDP datagram `b` (header + payload)
    /// under the pseudo-header; a zero checksum field means "none" (valid).
    pub fn verify(b: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if be16(b, 6) == 0 {
            return true;
        }
        let s =
            checksum::pseudo_header_sum(src, dst, IPPROTO_UDP, b.len() as u16) + checksum::sum(b);
        checksum::fold(s) == 0xffff
    }
}

/// A datagram's headers prebuilt once per flow: the link header (Ethernet,
/// or Ethernet + 802.1Q: the neighbour's `hh_cache`), an IPv4 header with
/// total length and ID zero and a UDP header with the ports, plus the
/// one's-complement sums of what stays constant — the `hh_cache` idea
/// carried up to UDP. A connected socket's send path and the generator's
/// frames both start from one; each packet patches the lengths, the ID and
/// the checksums from the sums.
#[derive(Debug, Clone, Copy)]
pub struct UdpTemplate {
    /// The header bytes; the first [`UdpTemplate::len`] are meaningful.
    pub hdr: [u8; UdpTemplate::MAX_LEN],
    /// Link header length (14 or 18).
    pub l2: u8,
    /// Folded sum of the IPv4 header with total length, ID and checksum
    /// zero (`!` of the checksum emitted over it), in native byte order
    /// (see [`checksum::sum_ne`]).
    pub ip_sum_ne: u64,
    /// Pseudo-header sum (addresses and protocol) without the length.
    pub pseudo: u64,
    /// The pseudo-header sum plus both ports, folded, in native byte order:
    /// the UDP checksum's constant part.
    pub udp_sum_ne: u64,
}

impl UdpTemplate {
    /// Ethernet + 802.1Q + IPv4 (no options) + UDP.
    pub const MAX_LEN: usize = ETH_HLEN + VLAN_HLEN + IPV4_MIN_HLEN + UDP_HLEN;

    /// The template over link header `l2` (at most 18 bytes; None beyond),
    /// the IPv4 header `ip` (its lengths, ID and checksum are ignored; no
    /// options) and the UDP ports.
    pub fn new(l2: &[u8], ip: &Ipv4Header, src_port: u16, dst_port: u16) -> Option<UdpTemplate> {
        let n = l2.len();
        if n > ETH_HLEN + VLAN_HLEN {
            return None;
        }
        let mut hdr = [0u8; Self::MAX_LEN];
        hdr[..n].copy_from_slice(l2);
        Ipv4Header {
            total_len: 0,
            id: 0,
            protocol: IPPROTO_UDP,
            options_len: 0,
            ..*ip
        }
        .emit(&mut hdr[n..]);
        UdpHeader {
            src_port,
            dst_port,
            len: 0,
            checksum: 0,
        }
        .emit(&mut hdr[n + IPV4_MIN_HLEN..]);
        let pseudo = checksum::pseudo_header_sum(ip.src, ip.dst, IPPROTO_UDP, 0);
        Some(UdpTemplate {
            ip_sum_ne: (!u16::from_be_bytes([hdr[n + 10], hdr[n + 11]])).to_be() as u64,
            pseudo,
            udp_sum_ne: checksum::fold(pseudo + src_port as u64 + dst_port as u64).to_be() as u64,
            l2: n as u8,
            hdr,
        })
    }

    /// Header bytes: link + 20 + 8.
    pub fn len(&self) -> usize {
        self.l2 as usize + IPV4_MIN_HLEN + UDP_HLEN
    }

    /// Never empty (a link header, IPv4 and UDP at least); for clippy.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The meaningful header bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.hdr[..self.len()]
    }
}

/// The Ethernet multicast address for an IPv4 group (RFC 1112:
/// 01:00:5e + low 23 bits; `ip_eth_mc_map`).
pub fn ipv4_multicast_mac(group: Ipv4Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template's sums give the checksums a full computation gives.
    #[test]
    fn udp_template_sums_match_full_checksums() {
        let eth = [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let ip = Ipv4Header {
            tos: 0x10,
            frag: IP_DF,
            ttl: 61,
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 19, 7, 9),
            ..Default::default()
        };
        let t = UdpTemplate::new(&eth, &ip, 4321, 53).unwrap();
        assert_eq!(t.len(), 42);
        assert!(UdpTemplate::new(&[0; 19], &ip, 1, 2).is_none());
        let payload = b"wirespeed template";
        let mut f = t.bytes().to_vec();
        f.extend_from_slice(payload);
        let (tot, ulen, id) = (
            20 + 8 + payload.len() as u16,
            8 + payload.len() as u16,
            0x1234u16,
        );
        // Patch as a sender does, from the sums (native order, swapped once).
        let ipc = !checksum::fold(t.ip_sum_ne + tot.to_be() as u64 + id.to_be() as u64);
        f[16..18].copy_from_slice(&tot.to_be_bytes());
        f[18..20].copy_from_slice(&id.to_be_bytes());
        f[24..26].copy_from_slice(&ipc.to_ne_bytes());
        f[38..40].copy_from_slice(&ulen.to_be_bytes());
        let u = !checksum::fold(t.pseudo + ulen as u64 + checksum::sum(&f[34..]));
        f[40..42].copy_from_slice(&u.to_be_bytes());
        assert_eq!(checksum::checksum(&f[14..34]), 0, "IPv4 checksum");
        assert!(UdpHeader::verify(&f[34..], ip.src, ip.dst), "UDP checksum");
        assert_eq!(f[15], 0x10);
        assert_eq!(f[22], 61);
        assert_eq!(f[23], IPPROTO_UDP);
        // The constant UDP part is the pseudo-header plus the ports.
        let ports = 4321u64 + 53;
        assert_eq!(
            t.udp_sum_ne,
            checksum::fold(t.pseudo + ports).to_be() as u64
        );
    }

    #[test]
    fn ethernet_vlan_roundtrip() {
        let mut b = [0u8; 18];
        let e = EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: MacAddr::local(7),
            ethertype: ETHERTYPE_VLAN,
        };
        e.emit(&mut b);
        let t = VlanTag {
            pcp: 5,
            dei: false,
            vid: 100,
            ethertype: ETHERTYPE_ARP,
        };
        t.emit(&mut b[14..]);
        let l2 = L2::parse(&b).unwrap();
        assert_eq!(l2.eth, e);
        assert_eq!(l2.vlan, Some(t));
        assert_eq!(l2.ethertype, ETHERTYPE_ARP);
        assert_eq!(l2.len, 18);
        assert_eq!(&b[14..16], &[0xa0, 100]);
        assert!(matches!(
            L2::parse(&b[..10]),
            Err(WireError::Truncated { need: 14, .. })
        ));
    }

    #[test]
    fn arp_roundtrip_and_rejects() {
        let a = ArpPacket {
            op: ARP_REQUEST,
            sha: MacAddr::local(1),
            spa: Ipv4Addr::new(10, 0, 0, 1),
            tha: MacAddr::ZERO,
            tpa: Ipv4Addr::new(10, 0, 0, 2),
        };
        let mut b = [0u8; 28];
        a.emit(&mut b);
        assert_eq!(ArpPacket::parse(&b).unwrap(), a);
        b[4] = 8;
        assert!(matches!(
            ArpPacket::parse(&b),
            Err(WireError::BadField {
                field: "hlen/plen",
                ..
            })
        ));
    }

    #[test]
    fn ipv4_with_options_roundtrip_and_checksum() {
        let mut h = Ipv4Header {
            tos: 0x10,
            total_len: 24 + 8,
            id: 0x1234,
            frag: IP_DF,
            ttl: 3,
            protocol: IPPROTO_UDP,
            src: Ipv4Addr::new(192, 168, 1, 1),
            dst: Ipv4Addr::new(192, 168, 1, 2),
            ..Default::default()
        };
        // Router alert option (RFC 2113): 4 bytes.
        h.set_options(&[0x94, 0x04, 0, 0]).unwrap();
        let mut b = [0u8; 32];
        h.emit(&mut b);
        assert_eq!(b[0], 0x46);
        let p = Ipv4Header::parse(&b).unwrap();
        assert_eq!(p.options_len, 4);
        assert_eq!(&p.options[..4], &[0x94, 4, 0, 0]);
        assert!(p.df() && !p.mf());
        assert_eq!(p.id, 0x1234);
        b[8] = 4; // TTL changed without fixing the checksum
        assert_eq!(
            Ipv4Header::parse(&b),
            Err(WireError::BadChecksum { what: "ipv4" })
        );
        ipv4_set_checksum(&mut b);
        assert!(Ipv4Header::parse(&b).is_ok());
        assert!(h.set_options(&[0; 41]).is_err());
        assert!(Ipv4Header::parse(&b[..30]).is_err());
    }

    #[test]
    fn icmp_roundtrip() {
        let mut m = [0u8; 16];
        m[8..].copy_from_slice(b"pingpong");
        IcmpHeader::EchoRequest { id: 7, seq: 9 }.emit(&mut m);
        assert_eq!(
            IcmpHeader::parse(&m).unwrap(),
            IcmpHeader::EchoRequest { id: 7, seq: 9 }
        );
        let mut m = [0u8; 36];
        IcmpHeader::DestUnreachable {
            code: ICMP_FRAG_NEEDED,
            next_hop_mtu: 1400,
        }
        .emit(&mut m);
        assert_eq!(
            IcmpHeader::parse(&m).unwrap(),
            IcmpHeader::DestUnreachable {
                code: 4,
                next_hop_mtu: 1400
            }
        );
        m[20] ^= 1;
        assert!(IcmpHeader::parse(&m).is_err());
    }

    #[test]
    fn udp_checksum_verify() {
        let src = Ipv4Addr::new(10, 1, 1, 1);
        let dst = Ipv4Addr::new(10, 1, 1, 2);
        let mut d = [0u8; 13];
        d[8..].copy_from_slice(b"hello");
        let mut h = UdpHeader {
            src_port: 1000,
            dst_port: 2000,
            len: 13,
            checksum: 0,
        };
        h.emit(&mut d);
        let s = checksum::pseudo_header_sum(src, dst, IPPROTO_UDP, 13) + checksum::sum(&d);
        h.checksum = !checksum::fold(s);
        h.emit(&mut d);
        assert!(UdpHeader::verify(&d, src, dst));
        d[10] ^= 0x40;
        assert!(!UdpHeader::verify(&d, src, dst));
        assert_eq!(UdpHeader::parse(&d).unwrap().len, 13);
        assert!(UdpHeader::parse(&d[..10]).is_err());
    }

    #[test]
    fn multicast_mac_map() {
        assert_eq!(
            ipv4_multicast_mac(Ipv4Addr::new(239, 129, 2, 3)),
            MacAddr([1, 0, 0x5e, 1, 2, 3])
        );
    }
}
