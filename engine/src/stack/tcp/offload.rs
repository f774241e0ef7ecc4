//! TCP segmentation offload in software (net/ipv4/tcp_offload.c and the
//! IPv4 half of `inet_gso_segment`): a super-segment — one Ethernet +
//! IPv4 + TCP header over up to 64 KiB of payload — becomes `gso_size`
//! segments with their own lengths, IP IDs, sequence numbers, flags and
//! checksums. Registered with the device layer at stack creation
//! ([`crate::ethdev::offload::add_offload_tcp4`]) for the netdev layer's
//! software GSO and for ports that receive super-frames.

use crate::ethdev::offload::{GsoError, GsoRequest};
use crate::mbuf::{ol, Burst, Mbuf};
use crate::stack::checksum;
use crate::stack::wire::ETHERTYPE_IPV4;
use std::net::Ipv4Addr;

use super::output::IPPROTO_TCP;
use super::wire::{CWR, FIN, PSH};

/// Longest header run a segment repeats: Ethernet + 802.1Q, IPv4 and TCP
/// with all options.
const MAX_HDR: usize = 18 + 60 + 60;

/// The headers of a super-frame, parsed once.
struct Geometry {
    l2: usize,
    l3: usize,
    l4: usize,
    /// TCP payload bytes (from the IPv4 total length).
    payload: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    seq: u32,
    flags: u8,
}

impl Geometry {
    fn hdr_len(&self) -> usize {
        self.l2 + self.l3 + self.l4
    }
}

/// Reads a frame's bytes in order across its slices.
struct Reader<'a, 'b> {
    parts: &'b [&'a [u8]],
    i: usize,
    off: usize,
}

impl Reader<'_, '_> {
    /// Copies exactly `dst.len()` bytes, or returns false at the end.
    fn copy(&mut self, dst: &mut [u8]) -> bool {
        let mut done = 0;
        while done < dst.len() {
            let Some(p) = self.parts.get(self.i) else {
                return false;
            };
            let n = (p.len() - self.off).min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&p[self.off..self.off + n]);
            done += n;
            self.off += n;
            if self.off == p.len() {
                self.i += 1;
                self.off = 0;
            }
        }
        true
    }
}

/// Plays the part of `skb_mac_gso_segment` + `inet_gso_segment`'s header
/// checks: Ethernet (one optional 802.1Q tag), IPv4 without fragmentation,
/// TCP; lengths consistent with the frame.
fn parse(hdr: &[u8], frame_len: usize) -> Result<Geometry, GsoError> {
    use GsoError::Malformed;
    if hdr.len() < 14 + 20 + 20 {
        return Err(Malformed("shorter than Ethernet + IPv4 + TCP headers"));
    }
    let mut l2 = 14;
    let mut ethertype = u16::from_be_bytes([hdr[12], hdr[13]]);
    if ethertype == 0x8100 {
        l2 = 18;
        ethertype = u16::from_be_bytes([hdr[16], hdr[17]]);
    }
    if ethertype != ETHERTYPE_IPV4 {
        return Err(Malformed("not IPv4"));
    }
    let ip = &hdr[l2..];
    if ip[0] >> 4 != 4 || (ip[0] & 15) < 5 {
        return Err(Malformed("bad IPv4 version or header length"));
    }
    let l3 = (ip[0] & 15) as usize * 4;
    if ip[9] != IPPROTO_TCP {
        return Err(Malformed("not TCP"));
    }
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return Err(Malformed("an IPv4 fragment"));
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if hdr.len() < l2 + l3 + 20 {
        return Err(Malformed("headers cut short"));
    }
    let th = &ip[l3..];
    let l4 = (th[12] >> 4) as usize * 4;
    if l4 < 20 || hdr.len() < l2 + l3 + l4 {
        return Err(Malformed("bad TCP data offset"));
    }
    if total < l3 + l4 || l2 + total > frame_len {
        return Err(Malformed("IPv4 total length disagrees with the frame"));
    }
    Ok(Geometry {
        l2,
        l3,
        l4,
        payload: total - l3 - l4,
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        id: u16::from_be_bytes([ip[4], ip[5]]),
        seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
        flags: th[13],
    })
}

/// Plays the part of `tcp4_gso_segment` → `tcp_gso_segment` (with
/// `inet_gso_segment`'s IPv4 fix-ups and `skb_segment`'s copy): segment
/// `k` of `n` carries payload `[k·mss, min((k+1)·mss, len))`, sequence
/// `seq + k·mss`, IP ID `id + k` (one ID per wire segment), IPv4 total
/// length and header checksum of its own; FIN and PSH only on the last
/// segment, CWR only on the first (`th->fin = th->psh = 0`, `th->cwr = 0`
/// in `tcp_gso_segment`). The TCP checksum is computed, left to the
/// device (`req.tx_csum`), or vouched for by the receive path
/// (`req.rx_csum_good`). All segments are built before any is pushed.
pub(crate) fn tcp4_gso_segment(
    frame: &[&[u8]],
    req: GsoRequest,
    alloc: &mut dyn FnMut() -> Option<Mbuf>,
    out: &mut Burst,
) -> Result<usize, GsoError> {
    let frame_len: usize = frame.iter().map(|s| s.len()).sum();
    let mut hdr = [0u8; MAX_HDR];
    let hl = frame_len.min(MAX_HDR);
    let mut rd = Reader {
        parts: frame,
        i: 0,
        off: 0,
    };
    rd.copy(&mut hdr[..hl]);
    let g = parse(&hdr[..hl], frame_len)?;
    if req.mss == 0 {
        return Err(GsoError::Malformed("gso_size 0"));
    }
    let mss = req.mss as usize;
    let n = g.payload.div_ceil(mss).max(1);
    if n > out.room() {
        return Err(GsoError::TooManySegments { segs: n });
    }
    // Start again right after the headers.
    rd = Reader {
        parts: frame,
        i: 0,
        off: 0,
    };
    rd.copy(&mut hdr[..g.hdr_len()]);
    let mut segs = Burst::new();
    for k in 0..n {
        let len = mss.min(g.payload - k * mss);
        let mut m = alloc().ok_or(GsoError::NoBuffers)?;
        let b = m
            .append(g.hdr_len() + len)
            .map_err(|_| GsoError::Malformed("a segment is larger than a buffer"))?;
        b[..g.hdr_len()].copy_from_slice(&hdr[..g.hdr_len()]);
        if !rd.copy(&mut b[g.hdr_len()..]) {
            return Err(GsoError::Malformed("payload shorter than the IPv4 length"));
        }
        fix_segment(&mut m, &g, k, n, len, req);
        // `segs` is new and n <= out.room() <= its capacity.
        let _ = segs.push(m);
    }
    while let Some(m) = segs.pop_front() {
        let _ = out.push(m);
    }
    Ok(n)
}

/// Segment `k` of `n` (payload `len`): its IPv4 and TCP fields.
fn fix_segment(m: &mut Mbuf, g: &Geometry, k: usize, n: usize, len: usize, req: GsoRequest) {
    let (l2, l3, l4) = (g.l2, g.l3, g.l4);
    let b = m.data_mut();
    let ip = &mut b[l2..];
    ip[2..4].copy_from_slice(&((l3 + l4 + len) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&g.id.wrapping_add(k as u16).to_be_bytes());
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&ip[..l3]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let th = &mut ip[l3..];
    let seq = g.seq.wrapping_add((k * req.mss as usize) as u32);
    th[4..8].copy_from_slice(&seq.to_be_bytes());
    let mut flags = g.flags;
    if k > 0 {
        flags &= !CWR;
    }
    if k + 1 < n {
        flags &= !(FIN | PSH);
    }
    th[13] = flags;
    let pseudo = checksum::pseudo_header_sum(g.src, g.dst, IPPROTO_TCP, (l4 + len) as u16);
    if req.rx_csum_good {
        m.set_ol_flags(ol::RX_L4_CKSUM_GOOD | ol::RX_IP_CKSUM_GOOD);
    } else if req.tx_csum {
        th[16..18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        m.set_ol_flags(ol::TX_TCP_CKSUM | ol::TX_IPV4);
    } else {
        th[16..18].copy_from_slice(&[0, 0]);
        let mut c = checksum::Checksum::with_sum(pseudo);
        c.add(th);
        let v = c.finish();
        th[16..18].copy_from_slice(&v.to_be_bytes());
    }
    m.set_tx_lens(l2 as u8, l3 as u8, l4 as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};
    use crate::mbuf::{Mempool, PoolConfig};
    use proptest::prelude::*;

    fn pool(n: u32, room: u16) -> Mempool {
        set_page_mode(PageMode::Small);
        Mempool::new(&PoolConfig {
            name: "gso".into(),
            size: n,
            data_room: room,
            ..Default::default()
        })
        .unwrap()
    }

    /// A super-frame: Ethernet, IPv4 (ID `id`), TCP with `opts` option
    /// bytes and `flags`, `payload` bytes of a pattern; checksums as a
    /// full-size frame would have them.
    fn super_frame(payload: usize, opts: usize, flags: u8, id: u16, vlan: bool) -> Vec<u8> {
        let mut f = vec![0u8; 0];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let l4 = 20 + opts;
        let total = 20 + l4 + payload;
        let ip0 = f.len();
        f.extend_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f[ip0 + 2..ip0 + 4].copy_from_slice(&(total as u16).to_be_bytes());
        f[ip0 + 4..ip0 + 6].copy_from_slice(&id.to_be_bytes());
        let c = checksum::checksum(&f[ip0..ip0 + 20]);
        f[ip0 + 10..ip0 + 12].copy_from_slice(&c.to_be_bytes());
        let th0 = f.len();
        f.extend_from_slice(&[0x9c, 0x40, 0x13, 0x89]);
        f.extend_from_slice(&0xfffff000u32.to_be_bytes()); // wraps within the test sizes
        f.extend_from_slice(&7u32.to_be_bytes());
        f.extend_from_slice(&[((l4 / 4) as u8) << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend(std::iter::repeat_n(1u8, opts)); // NOPs
        f.extend((0..payload).map(|i| (i * 7 + i / 251) as u8));
        let _ = th0;
        f
    }

    fn split(frame: &[u8], cut: usize) -> Vec<&[u8]> {
        frame.chunks(cut).collect()
    }

    fn tcp_csum_ok(seg: &[u8], l2: usize) -> bool {
        let ip = &seg[l2..];
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let l4 = &ip[20..u16::from_be_bytes([ip[2], ip[3]]) as usize];
        let mut c =
            checksum::Checksum::with_sum(checksum::pseudo_header_sum(src, dst, 6, l4.len() as u16));
        c.add(l4);
        c.folded() == 0xffff
    }

    #[test]
    fn segments_carry_geometry_flags_ids_and_checksums() {
        let mut p = pool(64, 2048);
        let f = super_frame(4000, 12, CWR | PSH | FIN | 0x10, 0xfffe, false);
        let mut out = Burst::new();
        let req = GsoRequest {
            mss: 1448,
            tx_csum: false,
            rx_csum_good: false,
        };
        let n = tcp4_gso_segment(&split(&f, 700), req, &mut || p.alloc(), &mut out).unwrap();
        assert_eq!(n, 3);
        let segs: Vec<Vec<u8>> = out.iter().map(|m| m.data().to_vec()).collect();
        let lens: Vec<usize> = segs.iter().map(|s| s.len() - 14 - 20 - 32).collect();
        assert_eq!(lens, vec![1448, 1448, 1104]);
        for (k, s) in segs.iter().enumerate() {
            let ip = &s[14..];
            assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, s.len() - 14);
            // IDs wrap: 0xfffe, 0xffff, 0.
            assert_eq!(
                u16::from_be_bytes([ip[4], ip[5]]),
                0xfffeu16.wrapping_add(k as u16)
            );
            assert_eq!(checksum::checksum(&ip[..20]), 0, "IPv4 header checksum");
            let th = &ip[20..];
            let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
            assert_eq!(seq, 0xfffff000u32.wrapping_add(1448 * k as u32));
            let flags = th[13];
            assert_eq!(flags & CWR != 0, k == 0, "CWR only first");
            assert_eq!(flags & (FIN | PSH) != 0, k == 2, "FIN/PSH only last");
            assert_eq!(flags & 0x10, 0x10, "ACK on all");
            assert!(tcp_csum_ok(s, 14), "segment {k} TCP checksum");
        }
        // The payloads, joined, are the super-frame's.
        let joined: Vec<u8> = segs.iter().flat_map(|s| s[66..].to_vec()).collect();
        assert_eq!(joined, f[66..]);
        drop(out);
        assert_eq!(p.stats().in_use, 0);
    }

    #[test]
    fn device_checksum_leaves_the_pseudo_header_sum() {
        let mut p = pool(8, 2048);
        let f = super_frame(3000, 0, 0x10, 1, true);
        let mut out = Burst::new();
        let req = GsoRequest {
            mss: 1460,
            tx_csum: true,
            rx_csum_good: false,
        };
        tcp4_gso_segment(&[&f], req, &mut || p.alloc(), &mut out).unwrap();
        for m in out.iter() {
            assert_eq!(m.ol_flags(), ol::TX_TCP_CKSUM | ol::TX_IPV4);
            assert_eq!(m.tx_lens(), (18, 20, 20));
            let s = m.data();
            let l4 = (s.len() - 18 - 20) as u16;
            let want = checksum::fold(checksum::pseudo_header_sum(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                6,
                l4,
            ));
            assert_eq!(u16::from_be_bytes([s[18 + 20 + 16], s[18 + 20 + 17]]), want);
        }
    }

    #[test]
    fn refusals_push_nothing_and_free_everything() {
        let mut p = pool(2, 2048);
        let f = super_frame(5000, 0, 0x10, 1, false);
        let mut out = Burst::new();
        let req = GsoRequest {
            mss: 1460,
            tx_csum: false,
            rx_csum_good: false,
        };
        // Four segments from a pool of two.
        let e = tcp4_gso_segment(&[&f], req, &mut || p.alloc(), &mut out);
        assert_eq!(e, Err(GsoError::NoBuffers));
        assert!(out.is_empty());
        assert_eq!(p.stats().in_use, 0);
        // Not TCP.
        let mut udp = f.clone();
        udp[14 + 9] = 17;
        let e = tcp4_gso_segment(&[&udp], req, &mut || p.alloc(), &mut out);
        assert!(matches!(e, Err(GsoError::Malformed(_))));
        // IPv4 length beyond the frame.
        let e = tcp4_gso_segment(&[&f[..f.len() - 1]], req, &mut || p.alloc(), &mut out);
        assert!(matches!(e, Err(GsoError::Malformed(_))));
        // More segments than a burst holds.
        let mut big = Burst::new();
        let tiny = GsoRequest { mss: 16, ..req };
        let e = tcp4_gso_segment(&[&f], tiny, &mut || p.alloc(), &mut big);
        assert_eq!(e, Err(GsoError::TooManySegments { segs: 313 }));
    }

    proptest! {
        /// Any payload, MSS, option length, flags, ID and slicing: the
        /// segments' payloads join to the original, every length, ID,
        /// sequence and checksum is right, and FIN/PSH/CWR sit where
        /// `tcp_gso_segment` puts them.
        #[test]
        fn gso_matches_software_segmentation(
            payload in 1usize..9000,
            mss in 200u16..1500,
            opts in prop::sample::select(vec![0usize, 12, 20, 40]),
            flags in any::<u8>(),
            id in any::<u16>(),
            cut in 1usize..3000,
            vlan in any::<bool>(),
        ) {
            let flags = (flags & !0x06) | 0x10; // never SYN/RST here
            let mut p = pool(64, 2048);
            let f = super_frame(payload, opts, flags, id, vlan);
            let l2 = if vlan { 18 } else { 14 };
            let hl = l2 + 20 + 20 + opts;
            let mut out = Burst::new();
            let req = GsoRequest { mss, tx_csum: false, rx_csum_good: false };
            let n = tcp4_gso_segment(&split(&f, cut), req, &mut || p.alloc(), &mut out).unwrap();
            prop_assert_eq!(n, payload.div_ceil(mss as usize));
            let mut joined = Vec::new();
            for (k, m) in out.iter().enumerate() {
                let s = m.data();
                prop_assert_eq!(&s[..12], &f[..12]);
                let ip = &s[l2..];
                prop_assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, s.len() - l2);
                prop_assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), id.wrapping_add(k as u16));
                prop_assert_eq!(checksum::checksum(&ip[..20]), 0);
                let th = &ip[20..];
                let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
                prop_assert_eq!(seq, 0xfffff000u32.wrapping_add(k as u32 * mss as u32));
                let last = k + 1 == n;
                prop_assert_eq!(th[13] & (FIN | PSH), if last { flags & (FIN | PSH) } else { 0 });
                prop_assert_eq!(th[13] & CWR, if k == 0 { flags & CWR } else { 0 });
                prop_assert!(tcp_csum_ok(s, l2));
                prop_assert!(s.len() - hl <= mss as usize);
                joined.extend_from_slice(&s[hl..]);
            }
            prop_assert_eq!(&joined[..], &f[hl..]);
        }
    }
}
