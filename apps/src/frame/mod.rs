//! Raw-mode packet building: an Ethernet (+802.1Q) / IPv4 / UDP header
//! template per stream, prebuilt into every buffer of the lcore's mempool (the
//! `hh_cache` idea), then patched per packet: varying fields (TRex's field
//! engine), the frame size (fixed, uniform random, IMIX), the latency header,
//! and the checksums, which are assembled from precomputed partial sums rather
//! than recomputed over the packet.

mod fields;
mod flows;
mod layout;

use crate::config::{Payload, Sizes, Stream, LATENCY_HDR};
use crate::latency;
use fields::{FieldGen, FieldGroup, GroupCursor};
pub use flows::distinct_flows;
use flows::FlowSet;
use layout::Layout;
use wirespeed::mbuf::{ol, Mbuf};
use wirespeed::stack::checksum::{self, fold, fold32};
use wirespeed::stack::wire::{
    EthernetHeader, Ipv4Header, UdpTemplate, VlanTag, ETHERTYPE_IPV4, ETHERTYPE_VLAN, ETH_HLEN,
    IPPROTO_UDP, IPV4_MIN_HLEN, IP_DF, UDP_HLEN, VLAN_HLEN,
};

/// RFC 1071 one's-complement sum of `data` added to `acc`, folded, not inverted.
pub fn ones_sum(data: &[u8], acc: u64) -> u16 {
    fold(checksum::sum(data) + acc)
}

/// Field ranges of the headers the generator writes, from each header's
/// first byte (IPv4: RFC 791 §3.1; UDP: RFC 768), so code names the field
/// it touches instead of an offset.
mod ipv4 {
    use std::ops::Range;
    pub const TOS: usize = 1;
    pub const TOT_LEN: Range<usize> = 2..4;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    /// Source and destination, as the UDP pseudo-header takes them.
    pub const ADDRS: Range<usize> = 12..20;
    /// The whole option-less header.
    pub const HEADER: Range<usize> = 0..20;
}

mod udp {
    use std::ops::Range;
    pub const SPORT: Range<usize> = 0..2;
    pub const DPORT: Range<usize> = 2..4;
    pub const LEN: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// The 16-bit word sum of the IPv4 addresses of the header at `ip`.
fn addr_words(f: &[u8], ip: usize) -> u64 {
    f[at(ip, ipv4::ADDRS)]
        .chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u64)
        .sum()
}

/// `r` for a header that starts at `base`.
#[inline(always)]
fn at(base: usize, r: std::ops::Range<usize>) -> std::ops::Range<usize> {
    base + r.start..base + r.end
}

/// The header bytes the field columns see: Ethernet, an 802.1Q tag, IPv4
/// and UDP (every raw frame is at least 60 bytes).
const HDR_VIEW: usize = ETH_HLEN + VLAN_HLEN + IPV4_MIN_HLEN + UDP_HLEN;

/// The most packets one fill builds (a sender's burst array).
pub const FILL_MAX: usize = 64;

/// The smallest raw frame without FCS (64 on the wire).
const MIN_FRAME: usize = 60;
/// Most prebuilt headers a stream keeps (one period of its field sequence;
/// 60 bytes each: ≤ 960 KiB).
const MAX_FLOWS: usize = 16384;

/// A small, fast PRNG (xorshift64*), one per generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in lo..=hi.
    #[inline(always)]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi - lo + 1;
        if span == 0 {
            return self.next_u64();
        }
        lo + ((self.next_u64() as u128 * span as u128) >> 64) as u64
    }
}

/// The sequence of frame sizes a generator sends.
#[derive(Debug, Clone)]
pub enum SizeSeq {
    Fixed(u32),
    Uniform(u32, u32),
    /// A precomputed, evenly spread schedule (smooth weighted round robin).
    Schedule(Vec<u32>, usize),
}

impl SizeSeq {
    pub fn new(s: &Sizes) -> SizeSeq {
        match s {
            Sizes::Fixed(z) => SizeSeq::Fixed(*z),
            Sizes::Uniform(a, b) => SizeSeq::Uniform(*a, *b),
            Sizes::Imix(v) => SizeSeq::Schedule(imix_schedule(v), 0),
        }
    }

    /// The next wire size (with FCS).
    #[inline(always)]
    pub fn next(&mut self, rng: &mut Rng) -> u32 {
        match self {
            SizeSeq::Fixed(z) => *z,
            SizeSeq::Uniform(a, b) => rng.range(*a as u64, *b as u64) as u32,
            SizeSeq::Schedule(v, i) => {
                let z = v[*i];
                *i += 1;
                if *i == v.len() {
                    *i = 0;
                }
                z
            }
        }
    }
}

/// Spreads IMIX sizes evenly: smooth weighted round robin, so 7:4:1 never
/// sends seven 64-byte frames in a row.
pub fn imix_schedule(v: &[(u32, u32)]) -> Vec<u32> {
    let total: i64 = v.iter().map(|x| x.1 as i64).sum();
    let mut cur = vec![0i64; v.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..v.len() {
            cur[i] += v[i].1 as i64;
            if cur[i] > cur[best] {
                best = i;
            }
        }
        cur[best] -= total;
        out.push(v[best].0);
    }
    out
}

/// The checksum sums of a stream's template that do not change per packet:
/// everything but the lengths, the checksums themselves and the varying
/// fields (their bytes are taken as zero here and added per packet).
#[derive(Debug, Clone, Copy, Default)]
struct FixedSums {
    ip: u64,
    /// Source and destination address plus protocol (pseudo-header, RFC 768).
    pseudo: u64,
    /// UDP source and destination port.
    l4: u64,
}

impl FixedSums {
    /// The sums over template `f` with the varying fields' bytes (and the
    /// lengths and checksums) taken as zero.
    fn of(f: &[u8], fields: &[FieldGen], ip: usize, udp: usize) -> FixedSums {
        let mut t = f[..udp + UDP_HLEN].to_vec();
        for fg in fields {
            t[fg.offset..fg.offset + fg.width as usize].fill(0);
        }
        let w = |o: usize| u16::from_be_bytes([t[o], t[o + 1]]) as u64;
        let ip_words: u64 = (0..10)
            .filter(|&k| k != 1 && k != 5) // total length, checksum
            .map(|k| w(ip + 2 * k))
            .sum();
        FixedSums {
            ip: ip_words,
            pseudo: addr_words(&t, ip) + IPPROTO_UDP as u64,
            l4: w(udp + udp::SPORT.start) + w(udp + udp::DPORT.start),
        }
    }
}

/// A stream's frame at its largest size (without FCS): Ethernet (with the
/// 802.1Q tag unless the NIC inserts it), IPv4 (DF: generator frames are
/// never fragmented), UDP, the payload. Returns it and its L2 length.
fn template(s: &Stream, hw_vlan: bool) -> (Vec<u8>, usize) {
    let tag_in_frame = s.vlan != 0 && !hw_vlan;
    let max = s.sizes.max() as usize - 4 - if hw_vlan { VLAN_HLEN } else { 0 };
    let l2 = ETH_HLEN + if tag_in_frame { VLAN_HLEN } else { 0 };
    let mut link = [0u8; ETH_HLEN + VLAN_HLEN];
    EthernetHeader {
        dst: s.dst_mac,
        src: s.src_mac,
        ethertype: if tag_in_frame {
            ETHERTYPE_VLAN
        } else {
            ETHERTYPE_IPV4
        },
    }
    .emit(&mut link);
    if tag_in_frame {
        VlanTag {
            pcp: (s.vlan >> 13) as u8,
            dei: s.vlan & 0x1000 != 0,
            vid: s.vlan & 0x0fff,
            ethertype: ETHERTYPE_IPV4,
        }
        .emit(&mut link[ETH_HLEN..]);
    }
    // The engine's header template, as a connected socket builds its own.
    let ip = Ipv4Header {
        tos: s.tos,
        frag: IP_DF,
        ttl: s.ttl,
        src: s.src_ip,
        dst: s.dst_ip,
        ..Default::default()
    };
    let t = UdpTemplate::new(&link[..l2], &ip, s.src_port, s.dst_port)
        .expect("a link header of at most 18 bytes");
    let mut f = vec![0u8; max];
    f[..t.len()].copy_from_slice(t.bytes());
    fill_payload(&mut f[t.len()..], s);
    (f, l2)
}

/// The stream's payload bytes (the latency header's room left zero).
fn fill_payload(payload: &mut [u8], s: &Stream) {
    match &s.payload {
        Payload::Incrementing => payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8),
        Payload::Zeros => {}
        Payload::Random => {
            let mut r = Rng::new(0xC0FFEE + s.index as u64);
            payload.iter_mut().for_each(|b| *b = r.next_u64() as u8);
        }
        Payload::Bytes(v) => payload
            .iter_mut()
            .zip(v.iter().cycle())
            .for_each(|(b, x)| *b = *x),
    }
    if s.latency {
        payload[..LATENCY_HDR as usize].fill(0);
    }
}

/// `p[n]` = the one's-complement contribution of the first `n` bytes of
/// `pay` as 16-bit big-endian words (even offsets high).
fn prefix_sums(pay: &[u8]) -> Vec<u64> {
    let mut p = Vec::with_capacity(pay.len() + 1);
    let mut acc = 0u64;
    p.push(0);
    for (i, b) in pay.iter().enumerate() {
        acc += if i % 2 == 0 {
            (*b as u64) << 8
        } else {
            *b as u64
        };
        p.push(acc);
    }
    p
}

/// Builds the packets of one stream on one lcore.
pub struct PacketGen {
    /// The frame at the largest size (without FCS).
    pub template: Vec<u8>,
    l2: usize,
    ip: usize,
    udp: usize,
    sizes: SizeSeq,
    fields: Vec<FieldGen>,
    sums: FixedSums,
    /// Some field is covered by the IPv4 header checksum / the UDP checksum.
    fields_in_ip: bool,
    fields_in_udp: bool,
    /// Deterministic fields on a fixed size: the first 60 bytes of every
    /// frame of one period of the field sequence, prebuilt (TRex's field
    /// engine cache, pktgen-dpdk's per-flow templates); empty otherwise.
    flows: Vec<[u8; MIN_FRAME]>,
    flow_idx: usize,
    /// Otherwise, for the burst path: fields stepped together from a
    /// table per group (see [`FieldGroup`]); the rest go by columns.
    groups: Vec<FieldGroup>,
    /// Every field is in a group (the one-pass burst path).
    all_grouped: bool,
    /// Some field is nested (an odometer): fields step together, per packet.
    nested: bool,
    /// A flow count (`flows = N`): the set's state; None without one.
    flow_set: Option<Box<FlowSet>>,
    /// Packets the per-packet path builds before the set starts over
    /// (u64::MAX without a flow count: never) — the one counter compare.
    flow_left: u64,
    /// TSC at which the flow set expires (u64::MAX: never; 0: not yet
    /// anchored, the first burst anchors it).
    flow_expiry: u64,
    /// An IMIX schedule without varying fields: the first 60 bytes of the
    /// frame for each slot of the schedule (lengths and checksums done).
    sched_hdrs: Vec<[u8; MIN_FRAME]>,
    rng: Rng,
    latency: bool,
    offload: bool,
    /// Header fields change per packet (sizes, fields or latency): patch on every packet.
    dynamic: bool,
    /// payload_prefix[n] = one's-complement contribution of the first n payload bytes.
    payload_prefix: Vec<u64>,
    pub stream_id: u8,
    pub lcore_id: u8,
    pub seq: u64,
    priority: u8,
    /// TCI the NIC inserts (0 = none).
    hw_vlan: u16,
    /// A size drawn by `peek_size` and not yet built.
    next_size: Option<u32>,
    /// Latency-only streams (fixed size, no varying fields, software
    /// checksums): the UDP checksum sum of everything but the latency header,
    /// so each packet only adds the header's words.
    lat_only_base: Option<u64>,
    /// Bytes the NIC adds to the buffer (the offloaded tag).
    hw_extra: usize,
    /// A layered header stack (TCP, ICMP, IPv6, QinQ, MPLS, tunnels, ARP,
    /// IPv4 options): every packet goes the general path
    /// ([`PacketGen::fill_layered`]); None for plain UDP/IPv4.
    layout: Option<Box<Layout>>,
}

impl PacketGen {
    /// A generator for `s`; `offload` seeds the checksum fields for a NIC to finish.
    pub fn new(s: &Stream, lcore_id: u8, offload: bool) -> PacketGen {
        if !s.hdr.is_plain() {
            return PacketGen::layered(s, lcore_id);
        }
        // With VLAN offload the NIC adds the 4-byte tag: the buffer is shorter
        // and the wire size stays what the stream asks for.
        let hw_vlan = s.vlan_offload && s.vlan != 0;
        let (f, l2) = template(s, hw_vlan);
        let (ip, udp) = (l2, l2 + IPV4_MIN_HLEN);
        let payload_prefix = prefix_sums(&f[udp + UDP_HLEN..]);
        let vlan_prio_bits = s.vlan & 0xf000;
        let fields: Vec<FieldGen> = s
            .fields
            .iter()
            .filter_map(|fl| FieldGen::plan(fl, ip, udp, vlan_prio_bits))
            .collect();
        let sums = FixedSums::of(&f, &fields, ip, udp);
        let sizes = SizeSeq::new(&s.sizes);
        let dynamic = !matches!(sizes, SizeSeq::Fixed(_)) || !fields.is_empty() || s.latency;
        let mut g = PacketGen {
            template: f,
            l2,
            ip,
            udp,
            sizes,
            fields_in_ip: fields.iter().any(|f| f.in_ip != 0),
            fields_in_udp: fields.iter().any(|f| (f.in_pseudo | f.in_l4) != 0),
            fields,
            sums,
            flows: Vec::new(),
            flow_idx: 0,
            groups: Vec::new(),
            all_grouped: false,
            nested: s.fields.iter().any(|f| f.nest),
            flow_set: None,
            flow_left: u64::MAX,
            flow_expiry: u64::MAX,
            sched_hdrs: Vec::new(),
            rng: Rng::new(s.seed.unwrap_or(0x5EED ^ ((s.index as u64) << 8)) ^ lcore_id as u64),
            latency: s.latency,
            offload,
            dynamic,
            payload_prefix,
            stream_id: s.index as u8,
            lcore_id,
            seq: 0,
            priority: s.priority,
            hw_vlan: if hw_vlan { s.vlan } else { 0 },
            next_size: None,
            lat_only_base: None,
            hw_extra: if hw_vlan { VLAN_HLEN } else { 0 },
            layout: None,
        };
        // The template itself is a valid frame at the largest size.
        let len = g.template.len();
        let mut t = std::mem::take(&mut g.template);
        g.finish_headers(&mut t, len);
        g.lat_only_base = g.latency_only_base(&t);
        if g.latency {
            // The header's constant bytes (magic, stream, lcore) live in
            // every buffer from the start; per packet only sequence and TSC change.
            let p = g.udp + UDP_HLEN;
            latency::write(&mut t[p..], g.stream_id, g.lcore_id, 0, 0);
        }
        g.template = t;
        if s.flows > 0 {
            g.plan_flow_set(s);
        } else {
            g.flows = g.build_flows();
        }
        if g.flows.is_empty() && g.plain_fields() && !g.nested && g.flow_set.is_none() {
            g.groups = FieldGroup::plan(&mut g.fields, &mut g.rng);
            g.all_grouped = !g.groups.is_empty() && g.fields.iter().all(|f| f.grouped);
        }
        g.sched_hdrs = g.build_sched_hdrs();
        g
    }

    /// Latency-only streams (fixed size, no fields, software checksums):
    /// the UDP checksum sum of everything but the latency header.
    fn latency_only_base(&self, t: &[u8]) -> Option<u64> {
        if !self.latency
            || !self.fields.is_empty()
            || !matches!(self.sizes, SizeSeq::Fixed(_))
            || self.offload
        {
            return None;
        }
        let (ip, u) = (self.ip, self.udp);
        let ulen = (t.len() - u) as u64;
        let w = |o: usize| u16::from_be_bytes([t[o], t[o + 1]]) as u64;
        let pseudo = addr_words(t, ip) + IPPROTO_UDP as u64 + ulen;
        Some(pseudo + w(u) + w(u + 2) + ulen + self.payload_prefix[ulen as usize - UDP_HLEN])
    }

    /// Prebuilds the header of each slot of an IMIX schedule (no fields,
    /// software checksums, nothing per packet but the header bytes).
    fn build_sched_hdrs(&mut self) -> Vec<[u8; MIN_FRAME]> {
        let SizeSeq::Schedule(v, _) = &self.sizes else {
            return Vec::new();
        };
        if !self.fields.is_empty()
            || self.latency
            || self.offload
            || self.hw_vlan != 0
            || self.priority != 0
            || v.len() > MAX_FLOWS
        {
            return Vec::new();
        }
        let mut frame = self.template.clone();
        let mut out = Vec::with_capacity(v.len());
        for &wire in v.clone().iter() {
            let len = wire as usize - 4;
            if len < MIN_FRAME || len > frame.len() {
                return Vec::new();
            }
            let hdr = &mut frame[..len];
            let (ip, udp) = (self.ip, self.udp);
            hdr[at(ip, ipv4::TOT_LEN)].copy_from_slice(&((len - ip) as u16).to_be_bytes());
            hdr[at(udp, udp::LEN)].copy_from_slice(&((len - udp) as u16).to_be_bytes());
            self.patch_plain(hdr, true);
            let mut h = [0u8; MIN_FRAME];
            h.copy_from_slice(&frame[..MIN_FRAME]);
            out.push(h);
        }
        out
    }

    /// The frames carry a latency header (sequence and TSC).
    #[inline(always)]
    pub fn stamps(&self) -> bool {
        self.latency
    }

    /// True when a line-rate sender can build whole bursts without drawing
    /// a size per packet ([`PacketGen::fill_burst`]): one size, or an IMIX
    /// schedule with prebuilt slot headers.
    #[inline(always)]
    pub fn fills_bursts(&self) -> bool {
        self.layout.is_none() && (self.fixed_wire().is_some() || !self.sched_hdrs.is_empty())
    }

    /// Builds a burst in buffers holding the template (see
    /// [`PacketGen::fills_bursts`]); `tsc` goes into latency headers.
    #[inline]
    pub fn fill_burst(&mut self, pkts: &mut [Mbuf], tsc: u64) {
        if tsc >= self.flow_expiry {
            self.flow_expire(tsc);
        }
        if self.sched_hdrs.is_empty() {
            self.fill_fixed_burst(pkts, tsc);
        } else {
            self.fill_sched_burst(pkts);
        }
    }

    /// Builds a burst of an IMIX schedule from the prebuilt slot headers:
    /// per packet a length and 60 header bytes.
    #[inline]
    fn fill_sched_burst(&mut self, pkts: &mut [Mbuf]) {
        let SizeSeq::Schedule(v, i) = &mut self.sizes else {
            return;
        };
        for m in pkts {
            let len = v[*i] as usize - 4;
            if m.set_len(len).is_ok() {
                if let Some(hdr) = m.data_mut().get_mut(..MIN_FRAME) {
                    hdr.copy_from_slice(&self.sched_hdrs[*i]);
                }
            }
            *i += 1;
            if *i == v.len() {
                *i = 0;
            }
        }
    }

    /// The field sequence's period when every field steps deterministically
    /// (inc/dec): the LCM of the fields' cycle lengths; `None` with a random
    /// field or when it exceeds `limit`.
    fn flow_period(&self, limit: u64) -> Option<u64> {
        if self.nested {
            return self.nested_period(limit);
        }
        let mut p = 1u64;
        for f in &self.fields {
            let cycle = f.cycle()?;
            p = (p / fields::gcd(p, cycle)).checked_mul(cycle)?;
            if p > limit {
                return None;
            }
        }
        Some(p)
    }

    /// With nested fields: the steps until every field is back where it
    /// started, found by stepping them (at most `limit` + 1 times, at set-up).
    fn nested_period(&self, limit: u64) -> Option<u64> {
        let mut f: Vec<FieldGen> = self.fields.clone();
        if f.iter().any(|x| x.cycle().is_none()) {
            return None;
        }
        let start: Vec<u64> = f.iter().map(|x| x.cur).collect();
        let mut rng = self.rng.clone();
        for n in 1..=limit {
            let mut carry = false;
            for x in f.iter_mut() {
                carry = if x.nested && !carry {
                    false
                } else {
                    x.advance(&mut rng)
                };
            }
            if f.iter().zip(&start).all(|(x, s)| x.cur == *s) {
                return Some(n);
            }
        }
        None
    }

    /// True when the burst path writes this stream's fields itself: fixed
    /// size, varying fields, software checksums, no latency header, offload
    /// or priority (see [`PacketGen::fill_fixed_burst`]).
    fn plain_fields(&self) -> bool {
        !self.fields.is_empty()
            && !self.latency
            && !self.offload
            && self.hw_vlan == 0
            && self.priority == 0
            && self.template.len() >= MIN_FRAME
            && self.fixed_wire().is_some()
    }

    /// Prebuilds one period of headers for [`PacketGen::fill_fixed_burst`]
    /// when that is cheaper per packet than stepping the fields: fixed size,
    /// deterministic fields, software checksums, nothing per packet but the
    /// header bytes. Leaves the fields where they started.
    fn build_flows(&mut self) -> Vec<[u8; MIN_FRAME]> {
        let Some(wire) = self.fixed_wire().filter(|_| self.plain_fields()) else {
            return Vec::new();
        };
        let Some(period) = self.flow_period(MAX_FLOWS as u64) else {
            return Vec::new();
        };
        let len = wire as usize - 4;
        let mut frame = self.template.clone();
        let mut out = Vec::with_capacity(period as usize);
        for _ in 0..period {
            self.patch_plain(&mut frame[..len], false);
            let mut h = [0u8; MIN_FRAME];
            h.copy_from_slice(&frame[..MIN_FRAME]);
            out.push(h);
        }
        out
    }

    /// Writes the fields (and steps them) and the checksums of a plain
    /// fixed-size frame whose lengths are the template's.
    #[inline(always)]
    fn patch_plain(&mut self, hdr: &mut [u8], lengths_changed: bool) {
        let (ip, udp) = (self.ip, self.udp);
        let len = hdr.len();
        let ip_len = (len - ip) as u64;
        let udp_len = (len - udp) as u64;
        let (ip_w, ps_w, l4_w) = self.write_fields(hdr);
        // A header no field touches keeps the template's checksum.
        if self.fields_in_ip || lengths_changed {
            let ipc = !fold32(self.sums.ip + ip_len + ip_w);
            hdr[at(ip, ipv4::CHECKSUM)].copy_from_slice(&ipc.to_be_bytes());
        }
        if self.fields_in_udp || lengths_changed {
            let acc = self.sums.pseudo
                + self.sums.l4
                + 2 * udp_len
                + self.payload_prefix[udp_len as usize - 8]
                + ps_w
                + l4_w;
            hdr[at(udp, udp::CHECKSUM)].copy_from_slice(&udp_csum(acc));
        }
    }

    /// Writes the fields in effect for this packet and steps them for the
    /// next; returns their word sums in the IPv4 header, the pseudo-header
    /// and the UDP header.
    #[inline(always)]
    fn write_fields(&mut self, data: &mut [u8]) -> (u64, u64, u64) {
        let (mut ip, mut ps, mut l4) = (0u64, 0u64, 0u64);
        // A nested field steps when the one before it wrapped (an odometer).
        let mut carry = false;
        for fg in &mut self.fields {
            let w = fg.write(data);
            ip += w * fg.in_ip;
            ps += w * fg.in_pseudo;
            l4 += w * fg.in_l4;
            carry = if fg.nested && !carry {
                false
            } else {
                fg.advance(&mut self.rng)
            };
        }
        (ip, ps, l4)
    }

    /// Wire size of the next packet (for the pacer): drawn once and held
    /// until [`PacketGen::take_size`] consumes it, so the pacer charges exactly
    /// the size that is then built.
    #[inline(always)]
    pub fn peek_size(&mut self) -> u32 {
        match self.next_size {
            Some(z) => z,
            None => {
                let z = self.sizes.next(&mut self.rng);
                self.next_size = Some(z);
                z
            }
        }
    }

    /// Consumes the size [`PacketGen::peek_size`] drew.
    #[inline(always)]
    pub fn take_size(&mut self) -> u32 {
        let z = self.peek_size();
        self.next_size = None;
        z
    }

    /// True when nothing changes per packet (fixed size, no fields, no latency,
    /// no offload flags, priority 0): the prebuilt buffer only needs its length.
    pub fn is_static(&self) -> bool {
        !self.dynamic && !self.offload && self.hw_vlan == 0 && self.priority == 0
    }

    /// The frame length (without FCS) of a static stream.
    pub fn static_len(&self) -> usize {
        self.template.len()
    }

    /// Writes the lengths and checksums of a frame of `len` bytes (no FCS).
    #[inline]
    fn finish_headers(&self, f: &mut [u8], len: usize) {
        let ip = self.ip;
        let udp = self.udp;
        let ip_len = (len - ip) as u16;
        let udp_len = (len - udp) as u16;
        f[at(ip, ipv4::TOT_LEN)].copy_from_slice(&ip_len.to_be_bytes());
        f[at(udp, udp::LEN)].copy_from_slice(&udp_len.to_be_bytes());
        f[at(ip, ipv4::CHECKSUM)].fill(0);
        let src = u32::from_be_bytes(f[at(ip, ipv4::SRC)].try_into().unwrap()) as u64;
        let dst = u32::from_be_bytes(f[at(ip, ipv4::DST)].try_into().unwrap()) as u64;
        let pseudo =
            (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 17 + udp_len as u64;
        if self.offload {
            // The NIC computes both: IPv4 checksum field zero, UDP field seeded
            // with the pseudo-header sum (DPDK rte_net_intel_cksum_prepare).
            f[at(udp, udp::CHECKSUM)].copy_from_slice(&fold(pseudo).to_be_bytes());
            return;
        }
        let ipc = !ones_sum(&f[at(ip, ipv4::HEADER)], 0);
        f[at(ip, ipv4::CHECKSUM)].copy_from_slice(&ipc.to_be_bytes());
        let word =
            |r: std::ops::Range<usize>| u16::from_be_bytes([f[r.start], f[r.start + 1]]) as u64;
        let (sport, dport) = (word(at(udp, udp::SPORT)), word(at(udp, udp::DPORT)));
        let pay_len = udp_len as usize - 8;
        let mut acc = pseudo + sport + dport + udp_len as u64 + self.payload_prefix[pay_len];
        if self.latency {
            // The prefix sums were taken with a zeroed latency header: add its words.
            let p = udp + UDP_HLEN;
            acc += ones_sum(&f[p..p + LATENCY_HDR as usize], 0) as u64;
        }
        let mut c = !fold(acc);
        if c == 0 {
            c = 0xffff; // RFC 768: a computed zero is sent as all ones
        }
        f[at(udp, udp::CHECKSUM)].copy_from_slice(&c.to_be_bytes());
    }

    /// The buffer length (frame without FCS, without a NIC-inserted tag) of
    /// every packet when the stream has one size: what to allocate with.
    #[inline(always)]
    pub fn fixed_len(&self) -> Option<usize> {
        self.fixed_wire().map(|w| w as usize - 4 - self.hw_extra)
    }

    /// The wire size of every packet when the stream has one size.
    #[inline(always)]
    pub fn fixed_wire(&self) -> Option<u32> {
        match self.sizes {
            SizeSeq::Fixed(z) => Some(z),
            _ => None,
        }
    }

    /// Builds a burst of fixed-size packets (the stream has one size: see
    /// [`PacketGen::fixed_wire`]) in buffers holding the template, in one
    /// pass. For the common case — varying fields, software checksums, no
    /// latency header, offload or priority — the lengths are the template's,
    /// the sums of everything that does not vary are hoisted out of the
    /// loop, and each packet costs its field stores, their word sums, two
    /// folds and the two checksum stores.
    #[inline]
    fn fill_fixed_burst(&mut self, pkts: &mut [Mbuf], now_tsc: u64) {
        let Some(wire) = self.fixed_wire() else {
            return;
        };
        if let (Some(base), false) = (self.lat_only_base, self.hw_vlan != 0 || self.priority != 0) {
            self.fill_latency_burst(pkts, wire, base, now_tsc);
            return;
        }
        // An odometer or a flow set longer than the header cache steps its
        // fields in order, one packet at a time.
        let nested_uncached = (self.nested || self.flow_set.is_some()) && self.flows.is_empty();
        if self.latency
            || self.offload
            || self.hw_vlan != 0
            || self.priority != 0
            || nested_uncached
        {
            // Per packet (an odometer longer than the flow cache steps its
            // fields in order, one packet at a time).
            for m in pkts {
                self.fill_sized(m, wire, now_tsc);
            }
            return;
        }
        let len = wire as usize - 4;
        if !self.flows.is_empty() {
            // One period prebuilt: a packet is its 60 header bytes.
            let n = self.flows.len();
            for m in pkts {
                if m.set_len(len).is_err() {
                    continue;
                }
                if let Some(hdr) = m.data_mut().get_mut(..MIN_FRAME) {
                    hdr.copy_from_slice(&self.flows[self.flow_idx]);
                }
                self.flow_idx += 1;
                if self.flow_idx == n {
                    self.flow_idx = 0;
                }
            }
            return;
        }
        for chunk in pkts.chunks_mut(FILL_MAX) {
            self.fill_fields_chunk(chunk, len);
        }
    }

    /// Fixed-size frames with varying fields, a burst at a time and one
    /// field at a time (a column): each field's loop writes its value into
    /// every frame, adds its words to the frame's sums and steps, with no
    /// branch on its kind inside; then one pass writes the checksums. The
    /// values each frame gets are the ones [`PacketGen::patch_plain`] gives
    /// for deterministic fields (random ones draw in column order).
    #[inline]
    fn fill_fields_chunk(&mut self, pkts: &mut [Mbuf], len: usize) {
        let n = pkts.len().min(FILL_MAX);
        if self.groups.is_empty() && self.fields.len() == 1 && self.fields[0].width != 6 {
            return self.fill_one_field(&mut pkts[..n], len);
        }
        if self.all_grouped {
            let cx = self.grouped_cx(len);
            match self.groups.as_mut_slice() {
                [g] => {
                    let mut c = [g.cursor()];
                    fill_grouped(&cx, &mut pkts[..n], &mut c);
                    let i = c[0].idx;
                    return g.park(i);
                }
                [g0, g1] => {
                    let mut c = [g0.cursor(), g1.cursor()];
                    fill_grouped(&cx, &mut pkts[..n], &mut c);
                    let (i0, i1) = (c[0].idx, c[1].idx);
                    g0.park(i0);
                    return g1.park(i1);
                }
                _ => {}
            }
        }
        let (ip, udp) = (self.ip, self.udp);
        // Each frame's header bytes, taken once for every column.
        let mut views: [Option<&mut [u8; HDR_VIEW]>; FILL_MAX] = std::array::from_fn(|_| None);
        let mut k = 0;
        for m in pkts[..n].iter_mut() {
            // Buffers come with the frame's length (`alloc_bulk_len`) or the template's.
            if m.data_len() == len || m.set_len(len).is_ok() {
                if let Some(h) = m.data_mut().first_chunk_mut::<HDR_VIEW>() {
                    views[k] = Some(h);
                    k += 1;
                }
            }
        }
        let views = &mut views[..k];
        // Per frame: the words of the fields in the IPv4 header only (TOS),
        // in both the header and the pseudo-header (addresses), in UDP
        // (ports); a group's words go to the first and the last directly.
        let mut ip_w = [0u32; FILL_MAX];
        let mut addr_w = [0u32; FILL_MAX];
        let mut l4_w = [0u32; FILL_MAX];
        for g in &mut self.groups {
            g.column(views, &mut ip_w, &mut l4_w);
        }
        for f in self.fields.iter_mut().filter(|f| !f.grouped) {
            let acc: Option<&mut [u32; FILL_MAX]> = match (f.in_ip, f.in_pseudo, f.in_l4) {
                (1, 1, _) => Some(&mut addr_w),
                (1, 0, _) => Some(&mut ip_w),
                (_, _, 1) => Some(&mut l4_w),
                _ => None,
            };
            match f.width {
                1 => f.column::<1>(views, acc, &mut self.rng),
                2 => f.column::<2>(views, acc, &mut self.rng),
                4 => f.column::<4>(views, acc, &mut self.rng),
                _ => f.column::<6>(views, acc, &mut self.rng),
            }
        }
        let ip_len = (len - ip) as u32;
        let udp_len = (len - udp) as u32;
        let ip_base = self.sums.ip as u32 + ip_len;
        let udp_base = (self.sums.pseudo
            + self.sums.l4
            + 2 * udp_len as u64
            + self.payload_prefix[udp_len as usize - UDP_HLEN]) as u32;
        let (in_ip, in_udp) = (self.fields_in_ip, self.fields_in_udp);
        for (k, hdr) in views.iter_mut().flatten().enumerate() {
            if in_ip {
                let c = !fold32((ip_base + ip_w[k] + addr_w[k]) as u64);
                hdr[at(ip, ipv4::CHECKSUM)].copy_from_slice(&c.to_be_bytes());
            }
            if in_udp {
                let acc = udp_base as u64 + addr_w[k] as u64 + l4_w[k] as u64;
                hdr[at(udp, udp::CHECKSUM)].copy_from_slice(&udp_csum(acc));
            }
        }
    }

    /// One varying field (not a MAC): written and summed into the
    /// checksums frame by frame in one pass (see [`FieldGen::fused`]).
    #[inline(always)]
    fn fill_one_field(&mut self, pkts: &mut [Mbuf], len: usize) {
        let cx = self.grouped_cx(len);
        let f = &mut self.fields[0];
        match f.width {
            1 => f.fused::<1>(pkts, len, &mut self.rng, &cx),
            2 => f.fused::<2>(pkts, len, &mut self.rng, &cx),
            _ => f.fused::<4>(pkts, len, &mut self.rng, &cx),
        }
    }

    /// The constants of [`fill_grouped`] for frames of `len` bytes.
    fn grouped_cx(&self, len: usize) -> GroupedCx {
        let udp_len = (len - self.udp) as u32;
        GroupedCx {
            len,
            ip: self.ip,
            udp: self.udp,
            ip_base: self.sums.ip as u32 + (len - self.ip) as u32,
            udp_base: (self.sums.pseudo
                + self.sums.l4
                + 2 * udp_len as u64
                + self.payload_prefix[udp_len as usize - UDP_HLEN]) as u32,
            in_ip: self.fields_in_ip,
            in_udp: self.fields_in_udp,
        }
    }

    /// A latency-only burst (fixed size, no fields, software checksums):
    /// everything in the UDP checksum but the sequence number is the same for
    /// the whole burst (the template's sum, the header's constant words, the
    /// burst's TSC), and within a burst the sequence's low word only counts
    /// up, so the checksum of packet k is the burst's folded sum plus k. The
    /// magic, stream and lcore bytes are in every buffer already (the
    /// template): a packet costs its length, two 8-byte stores (lcore byte
    /// with the sequence, the TSC), an add, a fold and the checksum store.
    #[inline]
    fn fill_latency_burst(&mut self, pkts: &mut [Mbuf], wire: u32, base: u64, tsc: u64) {
        for chunk in pkts.chunks_mut(FILL_MAX) {
            self.fill_latency_chunk(chunk, wire, base, tsc);
        }
    }

    #[inline(always)]
    fn fill_latency_chunk(&mut self, pkts: &mut [Mbuf], wire: u32, base: u64, tsc: u64) {
        let len = wire as usize - 4;
        let seq0 = self.seq;
        if (seq0 & 0xffff) + pkts.len() as u64 > 0x1_0000 || seq0 + pkts.len() as u64 >= 1 << 48 {
            // The low word wraps inside this burst: one burst the long way.
            return self.fill_latency_burst_wrapping(pkts, len, base, tsc);
        }
        let f0 = fold(base + latency::words(self.stream_id, self.lcore_id, seq0, tsc)) as u32;
        // Bytes 2..10 of the header: stream, lcore, the 48-bit sequence.
        let ids = ((self.stream_id as u64) << 56) | ((self.lcore_id as u64) << 48) | seq0;
        // The header's offset as a constant: no bounds checks per packet.
        let k = if self.udp == ETH_HLEN + IPV4_MIN_HLEN {
            stamp_burst::<42, 60>(pkts, len, f0, ids, tsc)
        } else {
            stamp_burst::<46, 64>(pkts, len, f0, ids, tsc)
        };
        self.seq = seq0 + k;
    }

    /// [`PacketGen::fill_latency_burst`] for a burst in which the
    /// sequence's low word wraps: every word summed per packet.
    #[cold]
    fn fill_latency_burst_wrapping(&mut self, pkts: &mut [Mbuf], len: usize, base: u64, tsc: u64) {
        let p = self.udp + UDP_HLEN;
        let u = self.udp;
        let burst_sum = base + latency::words(self.stream_id, self.lcore_id, 0, tsc);
        for m in pkts {
            if m.set_len(len).is_err() {
                continue;
            }
            m.set_tx_timestamp(tsc);
            let seq = self.seq;
            let Some(d) = m.data_mut().get_mut(..p + latency::LEN) else {
                continue;
            };
            self.seq += 1;
            latency::write(&mut d[p..], self.stream_id, self.lcore_id, seq, tsc);
            let seq_w = ((seq >> 32) & 0xffff) + ((seq >> 16) & 0xffff) + (seq & 0xffff);
            d[u + 6..u + 8].copy_from_slice(&udp_csum(burst_sum + seq_w));
        }
    }

    /// Turns a buffer holding the template into the next packet. Returns the
    /// frame length (without FCS). `now_tsc` goes into the latency header.
    #[cfg(test)]
    pub fn fill(&mut self, m: &mut Mbuf, now_tsc: u64) -> usize {
        let wire = self.take_size();
        self.fill_sized(m, wire, now_tsc)
    }

    /// As [`PacketGen::fill`], with the wire size already drawn.
    #[inline]
    pub fn fill_sized(&mut self, m: &mut Mbuf, wire: u32, now_tsc: u64) -> usize {
        if now_tsc >= self.flow_expiry {
            self.flow_expire(now_tsc);
        }
        let len = wire as usize - 4 - self.hw_extra;
        let _ = m.set_len(len);
        if self.priority != 0 {
            m.set_priority(self.priority);
        }
        if self.layout.is_some() {
            return self.fill_layered(m, len);
        }
        if self.offload || self.hw_vlan != 0 {
            let mut f = 0;
            if self.offload {
                f |= ol::TX_IPV4 | ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM;
            }
            if self.hw_vlan != 0 {
                f |= ol::TX_VLAN;
                m.set_vlan_tci(self.hw_vlan);
            }
            m.set_ol_flags(f);
            m.set_tx_lens(self.l2 as u8, 20, 8);
        }
        if !self.dynamic {
            return len;
        }
        let (ip, udp) = (self.ip, self.udp);
        let seq = self.seq;
        self.seq += 1;
        let data = m.data_mut();
        if self.latency {
            // The prefix sums were taken with a zeroed latency header.
            let p = udp + UDP_HLEN;
            latency::write(&mut data[p..], self.stream_id, self.lcore_id, seq, now_tsc);
        }
        let lat_w = if self.latency {
            latency::words(self.stream_id, self.lcore_id, seq, now_tsc)
        } else {
            0
        };
        if let Some(base) = self.lat_only_base {
            // Only the latency header changes: its words on the precomputed
            // sum (the IPv4 header is the template's).
            data[at(udp, udp::CHECKSUM)].copy_from_slice(&udp_csum(base + lat_w));
            m.set_tx_timestamp(now_tsc);
            return len;
        }
        // The fields in effect for this packet, written and summed, then
        // stepped for the next one; the checksums come from the fixed sums
        // plus these words and the lengths (no pass over the header).
        let ip_len = (len - ip) as u64;
        let udp_len = (len - udp) as u64;
        let (ip_w, ps_w, l4_w) = self.write_fields(data);
        self.flow_left -= 1;
        if self.flow_left == 0 {
            self.flow_wrap();
        }
        data[at(ip, ipv4::TOT_LEN)].copy_from_slice(&(ip_len as u16).to_be_bytes());
        data[at(udp, udp::LEN)].copy_from_slice(&(udp_len as u16).to_be_bytes());
        let pseudo = self.sums.pseudo + ps_w + udp_len;
        if self.offload {
            // The NIC computes both: IPv4 checksum field zero, UDP field seeded
            // with the pseudo-header sum (DPDK rte_net_intel_cksum_prepare).
            data[at(ip, ipv4::CHECKSUM)].fill(0);
            data[at(udp, udp::CHECKSUM)].copy_from_slice(&fold(pseudo).to_be_bytes());
        } else {
            let ipc = !fold32(self.sums.ip + ip_w + ip_len);
            data[at(ip, ipv4::CHECKSUM)].copy_from_slice(&ipc.to_be_bytes());
            let acc = pseudo
                + self.sums.l4
                + l4_w
                + udp_len
                + self.payload_prefix[udp_len as usize - 8]
                + lat_w;
            data[at(udp, udp::CHECKSUM)].copy_from_slice(&udp_csum(acc));
        }
        if self.latency {
            m.set_tx_timestamp(now_tsc);
        }
        len
    }
}

impl PacketGen {
    /// A generator for a layered header stack (see [`layout`]): software
    /// checksums, tags in the frame, no latency header (the config refuses
    /// offloads and latency there); fields at the layout's offsets.
    fn layered(s: &Stream, lcore_id: u8) -> PacketGen {
        let lay = Layout::new(s);
        let fields: Vec<FieldGen> = s
            .fields
            .iter()
            .filter_map(|fl| {
                lay.slot(fl.kind)
                    .map(|x| FieldGen::at(fl, x.offset, x.width, x.write_or))
            })
            .collect();
        let payload_prefix = prefix_sums(&lay.template[lay.hdr_len..]);
        let sizes = SizeSeq::new(&s.sizes);
        let dynamic = !matches!(sizes, SizeSeq::Fixed(_)) || !fields.is_empty();
        let mut t = lay.template.clone();
        let len = t.len();
        lay.finish(&mut t, len, &payload_prefix);
        let mut g = PacketGen {
            template: t,
            l2: ETH_HLEN,
            ip: ETH_HLEN,
            udp: ETH_HLEN + IPV4_MIN_HLEN,
            sizes,
            fields,
            sums: FixedSums::default(),
            fields_in_ip: false,
            fields_in_udp: false,
            flows: Vec::new(),
            flow_idx: 0,
            groups: Vec::new(),
            all_grouped: false,
            nested: s.fields.iter().any(|f| f.nest),
            flow_set: None,
            flow_left: u64::MAX,
            flow_expiry: u64::MAX,
            sched_hdrs: Vec::new(),
            rng: Rng::new(s.seed.unwrap_or(0x5EED ^ ((s.index as u64) << 8)) ^ lcore_id as u64),
            latency: false,
            offload: false,
            dynamic,
            payload_prefix,
            stream_id: s.index as u8,
            lcore_id,
            seq: 0,
            priority: s.priority,
            hw_vlan: 0,
            next_size: None,
            lat_only_base: None,
            hw_extra: 0,
            layout: Some(Box::new(lay)),
        };
        if s.flows > 0 {
            g.plan_flow_set(s);
        }
        g
    }

    /// A layered frame of `len` bytes: the fields in effect written (and
    /// stepped, nested ones as an odometer), then the lengths and the
    /// checksums, innermost first, over the header bytes plus the
    /// payload's prefix sum. Kept out of line so the plain stream's
    /// per-packet path ([`PacketGen::fill_sized`]) compiles as before.
    #[inline(never)]
    fn fill_layered(&mut self, m: &mut Mbuf, len: usize) -> usize {
        if !self.dynamic {
            return len;
        }
        self.seq += 1;
        let data = m.data_mut();
        let mut carry = false;
        for fg in &mut self.fields {
            fg.write(data);
            carry = if fg.nested && !carry {
                false
            } else {
                fg.advance(&mut self.rng)
            };
        }
        self.flow_left -= 1;
        if self.flow_left == 0 {
            self.flow_wrap();
        }
        if let Some(l) = &self.layout {
            l.finish(data, len, &self.payload_prefix);
        }
        len
    }
}

/// Stamps a latency burst (at most [`FILL_MAX`] packets) whose header is
/// at `P` (the frame's first `N`
/// bytes hold it): per packet its length, the TX timestamp, bytes 2..18 of
/// the header (`ids` = stream, lcore and the first sequence number) and the
/// UDP checksum, `f0` (the burst's folded sum) plus the packet's index.
/// Returns how many packets were stamped.
#[inline(always)]
fn stamp_burst<const P: usize, const N: usize>(
    pkts: &mut [Mbuf],
    len: usize,
    f0: u32,
    ids: u64,
    tsc: u64,
) -> u64 {
    // The burst's checksums first, in a loop the compiler vectorizes: the
    // k-th stamped packet's is the complement of f0 + k, folded (a computed
    // zero is sent as all ones, RFC 768).
    let mut csum = [0u16; FILL_MAX];
    for (k, c) in csum.iter_mut().enumerate() {
        let v = f0 + k as u32;
        let x = !(((v & 0xffff) + (v >> 16)) as u16);
        *c = if x == 0 { 0xffff } else { x }.to_be();
    }
    let tsc_be = tsc.to_be_bytes();
    let mut k = 0usize;
    for m in pkts {
        if m.set_len(len).is_err() {
            continue;
        }
        m.set_tx_timestamp(tsc);
        let Some(d) = m.data_mut().first_chunk_mut::<N>() else {
            continue;
        };
        d[P + 2..P + 10].copy_from_slice(&(ids + k as u64).to_be_bytes());
        d[P + 10..P + 18].copy_from_slice(&tsc_be);
        d[P - 2..P].copy_from_slice(&csum[k].to_ne_bytes());
        k += 1;
    }
    k as u64
}

/// What [`fill_grouped`] needs of a stream for one frame length.
pub(super) struct GroupedCx {
    /// The frames' length (without FCS).
    len: usize,
    ip: usize,
    udp: usize,
    /// The IPv4 / UDP checksum sums of everything that does not vary.
    ip_base: u32,
    udp_base: u32,
    in_ip: bool,
    in_udp: bool,
}

/// Every field stepped by one or two groups: one pass per frame writes
/// each group's entry, adds its words and stores both checksums (no
/// per-field columns, no sums kept in memory between passes).
#[inline(always)]
fn fill_grouped<const N: usize>(
    cx: &GroupedCx,
    pkts: &mut [Mbuf],
    groups: &mut [GroupCursor<'_>; N],
) {
    for m in pkts {
        // Buffers come with the frame's length (`alloc_bulk_len`) or the template's.
        if m.data_len() != cx.len && m.set_len(cx.len).is_err() {
            continue;
        }
        let Some(hdr) = m.data_mut().first_chunk_mut::<HDR_VIEW>() else {
            continue;
        };
        let (mut ipw, mut uw) = (0u32, 0u32);
        for g in groups.iter_mut() {
            let (a, b) = g.step_into(hdr);
            ipw += a;
            uw += b;
        }
        finish_checksums(cx, hdr, ipw, uw);
    }
}

/// Stores a frame's IPv4 and UDP checksums: the constant sums of `cx`
/// plus what the varying fields add (`ipw`, `uw`).
#[inline(always)]
fn finish_checksums(cx: &GroupedCx, hdr: &mut [u8; HDR_VIEW], ipw: u32, uw: u32) {
    if cx.in_ip {
        let c = !fold32((cx.ip_base + ipw) as u64);
        hdr[at(cx.ip, ipv4::CHECKSUM)].copy_from_slice(&c.to_be_bytes());
    }
    if cx.in_udp {
        hdr[at(cx.udp, udp::CHECKSUM)].copy_from_slice(&udp_csum((cx.udp_base + uw) as u64));
    }
}

/// The UDP checksum field for a one's-complement sum `acc` (below 2^32):
/// inverted, and a computed zero sent as all ones (RFC 768).
#[inline(always)]
fn udp_csum(acc: u64) -> [u8; 2] {
    let c = !fold32(acc);
    (if c == 0 { 0xffff } else { c }).to_be_bytes()
}

#[cfg(test)]
mod tests_flows;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::latency::LatencyTag;
    use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

    pub(super) fn streams(toml: &str) -> Vec<Stream> {
        Config::parse(&format!("[[port]]\nspec = \"null\"\n{toml}"), "t")
            .unwrap()
            .validate()
            .unwrap()
    }

    pub(super) fn check_frame(f: &[u8]) {
        let ip = if u16::from_be_bytes([f[12], f[13]]) == 0x8100 {
            18
        } else {
            14
        };
        assert_eq!(ones_sum(&f[ip..ip + 20], 0), 0xffff, "ip csum");
        assert_eq!(
            u16::from_be_bytes([f[ip + 2], f[ip + 3]]) as usize,
            f.len() - ip
        );
        let udp = ip + 20;
        let ulen = u16::from_be_bytes([f[udp + 4], f[udp + 5]]) as usize;
        assert_eq!(ulen, f.len() - udp);
        let mut pseudo = 17 + ulen as u64;
        for w in f[ip + 12..ip + 20].chunks(2) {
            pseudo += u16::from_be_bytes([w[0], w[1]]) as u64;
        }
        assert_eq!(ones_sum(&f[udp..], pseudo), 0xffff, "udp csum");
    }

    /// A pool whose every buffer holds `g`'s template (as the sender's).
    pub(super) fn prebuilt(g: &PacketGen) -> Mempool {
        let mut p = pool();
        let t = g.template.clone();
        p.init_all(|m| {
            let _ = m.extend_from_slice(&t);
        })
        .unwrap();
        p
    }

    pub(super) fn pool() -> Mempool {
        wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
        Mempool::new(&PoolConfig {
            size: 64,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn fixed_sizes_are_valid_frames() {
        for (size, vlan) in [(64u32, 0u16), (65, 0), (1000, 0), (1518, 0), (68, 7)] {
            let s = &streams(&format!("[[stream]]\nsize = {size}\nvlan = {vlan}\n"))[0];
            let g = PacketGen::new(s, 0, false);
            assert_eq!(g.template.len(), size as usize - 4);
            check_frame(&g.template);
        }
    }

    #[test]
    fn fields_ranges_latency_and_sizes_patch_correctly() {
        let s = &streams(
            "[[stream]]\nsize = \"64-300\"\nlatency = true\n\
             [[stream.field]]\nname = \"src_ip\"\nmin = \"10.0.0.1\"\nmax = \"10.0.0.3\"\n\
             [[stream.field]]\nname = \"dst_port\"\nop = \"dec\"\nmin = 100\nmax = 101\n\
             [[stream.field]]\nname = \"src_mac\"\nop = \"random\"\nmin = \"02:00:00:00:00:00\"\nmax = \"02:00:00:00:00:ff\"\n",
        )[0];
        let mut g = PacketGen::new(s, 3, false);
        let mut p = prebuilt(&g);
        let mut ips = Vec::new();
        let mut ports = Vec::new();
        for i in 0..7u64 {
            let mut m = p.alloc().unwrap();
            let len = g.fill(&mut m, 1000 + i);
            assert!((60..=296).contains(&len));
            let f = m.data();
            check_frame(f);
            ips.push(f[14 + 15]);
            ports.push(u16::from_be_bytes([f[36], f[37]]));
            assert_eq!(&f[6..11], &[2, 0, 0, 0, 0]);
            let tag = latency::parse(f).unwrap();
            assert_eq!(
                tag,
                LatencyTag {
                    stream: 0,
                    lcore: 3,
                    seq: i,
                    tx_tsc: 1000 + i
                }
            );
        }
        assert_eq!(ips, vec![1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(ports, vec![101, 100, 101, 100, 101, 100, 101]);
    }

    /// Every field kind, steps larger than the range, wrap-around at both
    /// ends, random values, sizes that vary: each frame's checksums verify
    /// and each field stays in its range (the sums are incremental, so a
    /// wrong fixed sum or word would show here).
    #[test]
    fn every_field_kind_keeps_checksums_valid_and_values_in_range() {
        let s = &streams(
            "[[stream]]\nimix = \"simple\"\nvlan = 5\n\
             [[stream.field]]\nname = \"src_ip\"\nmin = \"10.0.0.250\"\nmax = \"10.0.1.4\"\nstep = 3\n\
             [[stream.field]]\nname = \"dst_ip\"\nop = \"random\"\nmin = \"192.168.0.0\"\nmax = \"192.168.255.255\"\n\
             [[stream.field]]\nname = \"src_port\"\nop = \"dec\"\nmin = 65530\nmax = 65535\nstep = 13\n\
             [[stream.field]]\nname = \"dst_port\"\nop = \"random\"\nmin = 1\nmax = 65535\n\
             [[stream.field]]\nname = \"tos\"\nmin = 250\nmax = 255\n\
             [[stream.field]]\nname = \"vlan\"\nmin = 4090\nmax = 4094\n\
             [[stream.field]]\nname = \"dst_mac\"\nop = \"random\"\nmin = \"02:00:00:00:00:00\"\nmax = \"02:00:00:ff:ff:ff\"\n",
        )[0];
        let mut g = PacketGen::new(s, 0, false);
        let mut p = prebuilt(&g);
        let mut src = Vec::new();
        for _ in 0..500 {
            let mut m = p.alloc().unwrap();
            g.fill(&mut m, 7);
            let f = m.data();
            check_frame(f);
            let ip = 18;
            let sip = u32::from_be_bytes(f[ip + 12..ip + 16].try_into().unwrap());
            src.push(sip & 0xffff);
            assert!((0x0a00_00fa..=0x0a00_0104).contains(&sip), "{sip:x}");
            assert_eq!(&f[ip + 16..ip + 18], &[192, 168]);
            let sport = u16::from_be_bytes([f[ip + 20], f[ip + 21]]);
            assert!(sport >= 65530, "{sport}");
            assert!(f[ip + 1] >= 250);
            let tci = u16::from_be_bytes([f[14], f[15]]);
            assert!((4090..=4094).contains(&(tci & 0xfff)), "{tci}");
            assert_eq!(&f[0..3], &[2, 0, 0]);
        }
        // inc by 3 over 250..=260 (span 11): 250, 253, 256, 259, 251, ...
        assert_eq!(&src[..6], &[0xfa, 0xfd, 0x100, 0x103, 0xfb, 0xfe]);
        // Offload: IPv4 checksum zero, UDP seeded with the pseudo-header sum.
        let mut g = PacketGen::new(s, 0, true);
        for _ in 0..50 {
            let mut m = p.alloc().unwrap();
            let t = g.template.clone();
            let _ = m.extend_from_slice(&t);
            g.fill(&mut m, 7);
            let f = m.data();
            let (ip, udp) = (18, 38);
            assert_eq!(&f[ip + 10..ip + 12], &[0, 0]);
            let ulen = u16::from_be_bytes([f[udp + 4], f[udp + 5]]) as u64;
            let mut pseudo = 17 + ulen;
            for w in f[ip + 12..ip + 20].chunks(2) {
                pseudo += u16::from_be_bytes([w[0], w[1]]) as u64;
            }
            assert_eq!(u16::from_be_bytes([f[udp + 6], f[udp + 7]]), fold(pseudo));
        }
    }

    /// The prebuilt-flow path gives the same frames, in the same order, as
    /// stepping the fields per packet, across several periods.
    #[test]
    fn prebuilt_flows_match_the_computed_sequence() {
        let s = &streams(
            "[[stream]]\nsize = 64\n\
             [[stream.field]]\nname = \"src_ip\"\nmin = \"10.0.0.1\"\nmax = \"10.0.0.6\"\nstep = 4\n\
             [[stream.field]]\nname = \"dst_port\"\nop = \"dec\"\nmin = 7\nmax = 10\n",
        )[0];
        let mut cached = PacketGen::new(s, 0, false);
        // src_ip cycle 6/gcd(6,4) = 3, dst_port cycle 4: period 12.
        assert_eq!(cached.flows.len(), 12);
        let mut computed = PacketGen::new(s, 0, false);
        computed.flows.clear();
        let mut p = prebuilt(&cached);
        for round in 0..5 {
            let mut a = Burst::new();
            let mut b = Burst::new();
            assert!(p.alloc_bulk(&mut a, 7) && p.alloc_bulk(&mut b, 7));
            cached.fill_burst(a.as_mut_slice(), 0);
            computed.fill_burst(b.as_mut_slice(), 0);
            for (x, y) in a.iter().zip(b.iter()) {
                assert_eq!(x.data(), y.data(), "round {round}");
                check_frame(x.data());
            }
        }
    }

    /// The column path (fields too many for prebuilt flows): every field
    /// kind gives the frames the per-packet path gives, in order, across
    /// bursts and chunks; with a random field every frame stays valid and
    /// in range.
    #[test]
    fn field_groups_match_the_per_packet_path() {
        // The benchmark's four fields (combined period 3.25 M, too long to
        // prebuild whole frames): addresses and ports become two groups;
        // tagged and untagged; with a fifth field left to a column.
        let four =
            "[[stream.field]]\nname = \"src_ip\"\nmin = \"198.18.0.1\"\nmax = \"198.18.0.254\"\n\
             [[stream.field]]\nname = \"dst_ip\"\nmin = \"198.19.0.1\"\nmax = \"198.19.0.100\"\n\
             [[stream.field]]\nname = \"src_port\"\nmin = 1024\nmax = 2047\n\
             [[stream.field]]\nname = \"dst_port\"\nop = \"dec\"\nmin = 5000\nmax = 5063\n";
        let tos = "[[stream.field]]\nname = \"tos\"\nmin = 0\nmax = 255\nstep = 3\n";
        for (head, extra, groups) in [
            ("size = 64", "", 2),
            ("size = 68\nvlan = 9", "", 2),
            ("size = 64", tos, 2),
        ] {
            let s = &streams(&format!("[[stream]]\n{head}\n{four}{extra}"))[0];
            let mut grp = PacketGen::new(s, 0, false);
            assert!(grp.flows.is_empty() && grp.fills_bursts());
            assert_eq!(grp.groups.len(), groups, "{head} {extra}");
            // Without the fifth field every field is grouped: the one-pass path.
            assert_eq!(grp.all_grouped, extra.is_empty(), "{head} {extra}");
            let mut per_packet = PacketGen::new(s, 0, false);
            let mut p = prebuilt(&grp);
            let mut q = prebuilt(&per_packet);
            // Past a group's table length (12700 and 1024 steps) and back.
            for n in std::iter::repeat([64usize, 1, 33, 17]).flatten().take(900) {
                let mut a = Burst::new();
                assert!(p.alloc_bulk(&mut a, n));
                grp.fill_burst(a.as_mut_slice(), 0);
                for x in a.iter() {
                    let mut y = q.alloc().unwrap();
                    per_packet.fill(&mut y, 0);
                    assert_eq!(x.data(), y.data(), "burst of {n}");
                    check_frame(x.data());
                }
            }
        }
    }

    /// Nested fields count like an odometer: the inner field runs through
    /// its range, the outer steps on each wrap — every combination once per
    /// cycle, in order; cached (10 000 flows) or not (a longer odometer),
    /// the burst path gives the per-packet path's frames.
    #[test]
    fn nested_fields_count_like_an_odometer() {
        let f = |outer_max: &str| {
            format!(
                "[[stream]]\nsize = 64\n[[stream.field]]\nname = \"src_port\"\nmin = 1000\nmax = 1099\n\
                 [[stream.field]]\nname = \"dst_ip\"\nmin = \"10.0.0.0\"\nmax = \"{outer_max}\"\nnest = true\n"
            )
        };
        for (outer_max, flows) in [("10.0.0.99", 10_000usize), ("10.0.1.243", 50_000)] {
            let s = &streams(&f(outer_max))[0];
            let mut fast = PacketGen::new(s, 0, false);
            assert_eq!(fast.flows.len(), if flows <= MAX_FLOWS { flows } else { 0 });
            let mut slow = PacketGen::new(s, 0, false);
            let mut p = prebuilt(&fast);
            let mut q = prebuilt(&slow);
            let mut seen = std::collections::HashSet::new();
            let mut k = 0usize;
            while k < flows + 64 {
                let mut a = Burst::new();
                assert!(p.alloc_bulk(&mut a, 64));
                fast.fill_burst(a.as_mut_slice(), 0);
                for x in a.iter() {
                    let mut y = q.alloc().unwrap();
                    slow.fill(&mut y, 0);
                    assert_eq!(x.data(), y.data());
                    check_frame(x.data());
                    let d = x.data();
                    let port = u16::from_be_bytes([d[34], d[35]]) as usize;
                    let ip = u32::from_be_bytes([d[30], d[31], d[32], d[33]]) as usize;
                    // Packet k: inner = k mod 100, outer = k / 100 (mod the outer span).
                    assert_eq!(port, 1000 + k % 100, "packet {k}");
                    assert_eq!(ip - 0x0a00_0000, (k / 100) % (flows / 100), "packet {k}");
                    if k < flows {
                        assert!(seen.insert((port, ip)), "packet {k} repeats a flow");
                    }
                    k += 1;
                }
            }
            assert_eq!(seen.len(), flows);
        }
    }

    /// One varying field takes the one-pass path: its frames are the
    /// per-packet path's, byte for byte, for every width and op.
    #[test]
    fn one_field_bursts_match_the_per_packet_path() {
        for field in [
            "name = \"src_ip\"\nmin = \"198.18.0.0\"\nmax = \"198.19.255.255\"\nstep = 3",
            "name = \"dst_ip\"\nop = \"dec\"\nmin = \"10.0.0.0\"\nmax = \"10.1.0.0\"",
            "name = \"src_port\"\nop = \"random\"\nmin = 1024\nmax = 65535",
            "name = \"dst_port\"\nop = \"random\"\nmin = 0\nmax = 65535",
            "name = \"tos\"\nop = \"random\"\nmin = 0\nmax = 255",
        ] {
            for head in ["size = 64", "size = 68\nvlan = 7"] {
                let s = &streams(&format!("[[stream]]\n{head}\n[[stream.field]]\n{field}\n"))[0];
                let mut fast = PacketGen::new(s, 0, false);
                assert!(fast.flows.is_empty() && fast.groups.is_empty(), "{field}");
                let mut slow = PacketGen::new(s, 0, false);
                let mut p = prebuilt(&fast);
                let mut q = prebuilt(&slow);
                for n in std::iter::repeat([64usize, 1, 33, 17]).flatten().take(40) {
                    let mut a = Burst::new();
                    assert!(p.alloc_bulk(&mut a, n));
                    fast.fill_burst(a.as_mut_slice(), 0);
                    for x in a.iter() {
                        let mut y = q.alloc().unwrap();
                        slow.fill(&mut y, 0);
                        assert_eq!(x.data(), y.data(), "{field} {head}");
                        check_frame(x.data());
                    }
                }
            }
        }
    }

    #[test]
    fn field_columns_match_the_per_packet_path() {
        let fields = "[[stream.field]]\nname = \"src_mac\"\nmin = \"02:00:00:00:00:01\"\nmax = \"02:00:00:00:01:00\"\n\
             [[stream.field]]\nname = \"tos\"\nmin = 0\nmax = 252\nstep = 4\n\
             [[stream.field]]\nname = \"vlan\"\nmin = 10\nmax = 4000\nstep = 7\n\
             [[stream.field]]\nname = \"src_ip\"\nop = \"dec\"\nmin = \"10.0.0.0\"\nmax = \"10.0.255.255\"\nstep = 3\n\
             [[stream.field]]\nname = \"dst_port\"\nmin = 7\nmax = 65535\nstep = 1000\n";
        let s = &streams(&format!("[[stream]]\nsize = 80\nvlan = 5\n{fields}"))[0];
        let mut cols = PacketGen::new(s, 0, false);
        assert!(cols.flows.is_empty() && cols.fills_bursts());
        let mut per_packet = PacketGen::new(s, 0, false);
        let mut p = prebuilt(&cols);
        let mut q = prebuilt(&per_packet);
        for n in [1usize, 33, 64, 5] {
            let mut a = Burst::new();
            assert!(p.alloc_bulk(&mut a, n));
            cols.fill_burst(a.as_mut_slice(), 0);
            for x in a.iter() {
                let mut y = q.alloc().unwrap();
                per_packet.fill(&mut y, 0);
                assert_eq!(x.data(), y.data(), "burst of {n}");
                check_frame(x.data());
            }
        }
        let s = &streams(
            "[[stream]]\nsize = 64\n\
             [[stream.field]]\nname = \"src_port\"\nop = \"random\"\nmin = 1024\nmax = 1100\n\
             [[stream.field]]\nname = \"dst_ip\"\nop = \"random\"\nmin = \"10.1.0.0\"\nmax = \"10.1.0.9\"\n",
        )[0];
        let mut g = PacketGen::new(s, 0, false);
        let mut p = prebuilt(&g);
        for _ in 0..20 {
            let mut b = Burst::new();
            assert!(p.alloc_bulk(&mut b, 64));
            g.fill_burst(b.as_mut_slice(), 0);
            for m in b.iter() {
                let f = m.data();
                check_frame(f);
                let sport = u16::from_be_bytes([f[34], f[35]]);
                assert!((1024..=1100).contains(&sport), "{sport}");
                assert!(f[30..33] == [10, 1, 0] && f[33] <= 9, "{:?}", &f[30..34]);
            }
        }
    }

    /// IMIX from prebuilt slot headers: the schedule's sizes in order, every
    /// frame valid.
    #[test]
    fn imix_slot_headers_give_valid_frames_in_schedule_order() {
        let s = &streams("[[stream]]\nimix = \"simple\"\n")[0];
        let mut g = PacketGen::new(s, 0, false);
        assert!(g.fills_bursts() && !g.sched_hdrs.is_empty());
        let sched = imix_schedule(&[(64, 7), (594, 4), (1518, 1)]);
        let mut p = prebuilt(&g);
        let mut k = 0;
        for _ in 0..4 {
            let mut b = Burst::new();
            assert!(p.alloc_bulk(&mut b, 10));
            g.fill_burst(b.as_mut_slice(), 0);
            for m in b.iter() {
                assert_eq!(m.data().len() + 4, sched[k % sched.len()] as usize);
                check_frame(m.data());
                k += 1;
            }
        }
    }

    /// The latency burst path: valid checksums, the sequence counting up
    /// across bursts, the burst's TSC in every header and in the mbuf.
    #[test]
    fn latency_bursts_stamp_every_packet_with_valid_checksums() {
        for cfg in [
            "[[stream]]\nsize = 100\nlatency = true\n",
            "[[stream]]\nsize = 100\nlatency = true\nvlan = 7\n",
        ] {
            latency_bursts_stamp(&streams(cfg)[0]);
        }
    }

    fn latency_bursts_stamp(s: &Stream) {
        let mut g = PacketGen::new(s, 4, false);
        assert!(g.lat_only_base.is_some());
        let mut p = prebuilt(&g);
        // Bursts across the sequence's 16- and 32-bit word boundaries too
        // (the low word counts up within a burst; a wrap takes the long way).
        for start in [0u64, 0xfffb, 0xffff_fff0, 0x1234_ffff_fffe] {
            g.seq = start;
            let mut seq = start;
            for tsc in [1u64 << 40, u64::MAX - 7, 12345] {
                let mut b = Burst::new();
                assert!(p.alloc_bulk(&mut b, 9));
                g.fill_burst(b.as_mut_slice(), tsc);
                for m in b.iter() {
                    assert_eq!(m.data().len(), 96);
                    check_frame(m.data());
                    let tag = latency::parse(m.data()).unwrap();
                    assert_eq!(
                        (tag.stream, tag.lcore, tag.seq, tag.tx_tsc),
                        (0, 4, seq, tsc)
                    );
                    assert_eq!(m.tx_timestamp(), tsc);
                    seq += 1;
                }
            }
        }
    }

    #[test]
    fn latency_only_fast_path_keeps_checksums_valid() {
        let s = &streams("[[stream]]\nsize = 64\nlatency = true\n")[0];
        let mut g = PacketGen::new(s, 2, false);
        assert!(g.lat_only_base.is_some());
        let mut p = prebuilt(&g);
        for (i, ts) in [0u64, 1, 0xffff_ffff_ffff_ffff, 0x1234_5678_9abc_def0]
            .into_iter()
            .enumerate()
        {
            let mut m = p.alloc().unwrap();
            assert_eq!(g.fill(&mut m, ts), 60);
            check_frame(m.data());
            let tag = latency::parse(m.data()).unwrap();
            assert_eq!(
                tag,
                LatencyTag {
                    stream: 0,
                    lcore: 2,
                    seq: i as u64,
                    tx_tsc: ts
                }
            );
        }
    }

    #[test]
    fn imix_is_spread_and_proportional() {
        let v = imix_schedule(&[(64, 7), (594, 4), (1518, 1)]);
        assert_eq!(v.len(), 12);
        assert_eq!(v.iter().filter(|&&x| x == 64).count(), 7);
        assert_eq!(v.iter().filter(|&&x| x == 594).count(), 4);
        // Never more than two 64-byte frames in a row.
        assert!(!v.windows(3).any(|w| w.iter().all(|&x| x == 64)), "{v:?}");
    }

    #[test]
    fn offload_seeds_pseudo_header() {
        let s = &streams("[[stream]]\nsize = 100\n")[0];
        let g = PacketGen::new(s, 0, true);
        let f = &g.template;
        assert_eq!(&f[24..26], &[0, 0], "IPv4 checksum left to the NIC");
        let ulen = (f.len() - 34) as u64;
        let mut pseudo = 17 + ulen;
        for w in f[26..34].chunks(2) {
            pseudo += u16::from_be_bytes([w[0], w[1]]) as u64;
        }
        assert_eq!(u16::from_be_bytes([f[40], f[41]]), fold(pseudo));
    }
}
