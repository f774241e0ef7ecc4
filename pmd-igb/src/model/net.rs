//! Frame arithmetic the modeled MAC does in hardware: Internet checksums the
//! way the TX checksum engine computes them, 802.1Q insertion, Ethernet FCS.

/// One's-complement sum of `d` (big-endian 16-bit words) added to `acc`.
pub fn sum16(d: &[u8], mut acc: u32) -> u32 {
    let mut chunks = d.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

/// Folds a 32-bit sum to 16 bits.
pub fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// IXSM: the IPv4 header checksum over `frame[l2..l2+l3]`, written in place.
pub fn insert_ipv4_csum(frame: &mut [u8], l2: usize, l3: usize) -> bool {
    if l3 < 20 || frame.len() < l2 + l3 {
        return false;
    }
    frame[l2 + 10] = 0;
    frame[l2 + 11] = 0;
    let c = !fold(sum16(&frame[l2..l2 + l3], 0));
    frame[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
    true
}

/// TXSM: the L4 checksum as the part computes it: the one's-complement sum
/// from the L4 header to the end of the frame, *including* whatever the
/// checksum field holds (the driver seeds it with the pseudo-header sum),
/// complemented and written to the field. UDP's 0 result goes out as 0xFFFF.
pub fn insert_l4_csum(frame: &mut [u8], l4_off: usize, tcp: bool) -> bool {
    let field = l4_off + if tcp { 16 } else { 6 };
    if frame.len() < field + 2 {
        return false;
    }
    let mut c = !fold(sum16(&frame[l4_off..], 0));
    if !tcp && c == 0 {
        c = 0xFFFF;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Inserts an 802.1Q tag (`tpid`, `tci`) after the MAC addresses.
pub fn insert_vlan(frame: &mut Vec<u8>, tpid: u16, tci: u16) {
    if frame.len() < 12 {
        return;
    }
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    frame.splice(12..12, tag);
}

/// Verifies an IPv4 frame's header checksum and, for UDP/TCP, the L4 checksum
/// with the pseudo-header (the RX checksum engine). Returns
/// (is_ipv4, ip_ok, l4: None | Some((is_udp, ok))).
pub fn verify(frame: &[u8]) -> (bool, bool, Option<(bool, bool)>) {
    if frame.len() < 34 {
        return (false, false, None);
    }
    let (l2, et) = match u16::from_be_bytes([frame[12], frame[13]]) {
        0x8100 => (18, u16::from_be_bytes([frame[16], frame[17]])),
        et => (14, et),
    };
    if et != 0x0800 || frame.len() < l2 + 20 {
        return (false, false, None);
    }
    let ihl = usize::from(frame[l2] & 0xF) * 4;
    if ihl < 20 || frame.len() < l2 + ihl {
        return (true, false, None);
    }
    let ip_ok = fold(sum16(&frame[l2..l2 + ihl], 0)) == 0xFFFF;
    let tot = usize::from(u16::from_be_bytes([frame[l2 + 2], frame[l2 + 3]]));
    let proto = frame[l2 + 9];
    if (proto != 17 && proto != 6) || tot < ihl || frame.len() < l2 + tot {
        return (true, ip_ok, None);
    }
    let l4 = &frame[l2 + ihl..l2 + tot];
    if proto == 17 && l4.len() >= 8 && l4[6] == 0 && l4[7] == 0 {
        return (true, ip_ok, Some((true, true))); // no UDP checksum
    }
    let mut s = sum16(&frame[l2 + 12..l2 + 20], 0);
    s += u32::from(proto) + l4.len() as u32;
    let ok = fold(sum16(l4, s)) == 0xFFFF;
    (true, ip_ok, Some((proto == 17, ok)))
}

/// Ethernet FCS (CRC-32, reflected, poly 0xEDB88320), as appended on the wire.
pub fn fcs(d: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in d {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The CRC-32 check value of "123456789".
        assert_eq!(fcs(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn ipv4_header_checksum_known_vector() {
        // A classic example header (checksum 0xb861).
        let mut h = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(insert_ipv4_csum(&mut h, 0, 20));
        assert_eq!(&h[10..12], &[0xb8, 0x61]);
    }

    #[test]
    fn vlan_tag_goes_after_the_addresses() {
        let mut f: Vec<u8> = (0u8..20).collect();
        insert_vlan(&mut f, 0x8100, 0x2064);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(f[16], 12);
        assert_eq!(f.len(), 24);
    }
}
