//! Raw-mode frame templates: Ethernet (+802.1Q) / IPv4 / UDP with correct
//! lengths and checksums, built once per stream and copied into every buffer
//! of the lcore's mempool (the `hh_cache` idea: the header is prebuilt).

use crate::config::Stream;

/// RFC 1071 one's-complement sum of `data`, folded, not inverted.
pub fn ones_sum(data: &[u8], mut acc: u64) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = chunks.remainder() {
        acc += (*b as u64) << 8;
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Builds one frame (without FCS) of `stream.size - 4` bytes.
pub fn build(stream: &Stream) -> Vec<u8> {
    let len = stream.size as usize - 4;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&stream.dst_mac.0);
    f[6..12].copy_from_slice(&stream.src_mac.0);
    let mut l3 = 12;
    if stream.vlan != 0 {
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&stream.vlan.to_be_bytes());
        l3 = 16;
    }
    f[l3..l3 + 2].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = l3 + 2;
    let ip_len = len - ip;
    let udp = ip + 20;
    let udp_len = len - udp;
    // Payload: a recognisable incrementing pattern.
    for (i, b) in f[udp + 8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let h = &mut f[ip..ip + 20];
    h[0] = 0x45;
    h[1] = stream.tos;
    h[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    h[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    h[8] = stream.ttl;
    h[9] = 17;
    h[12..16].copy_from_slice(&stream.src_ip.octets());
    h[16..20].copy_from_slice(&stream.dst_ip.octets());
    let c = !ones_sum(h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let u = &mut f[udp..];
    u[0..2].copy_from_slice(&stream.src_port.to_be_bytes());
    u[2..4].copy_from_slice(&stream.dst_port.to_be_bytes());
    u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let mut pseudo = 0u64;
    for w in [stream.src_ip.octets(), stream.dst_ip.octets()] {
        pseudo += u16::from_be_bytes([w[0], w[1]]) as u64 + u16::from_be_bytes([w[2], w[3]]) as u64;
    }
    pseudo += 17 + udp_len as u64;
    let mut c = !ones_sum(&f[udp..], pseudo);
    if c == 0 {
        c = 0xffff;
    }
    f[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StreamSection;

    fn stream(size: u32, vlan: u16) -> Stream {
        let c = crate::config::Config {
            ports: vec![crate::config::PortSection {
                spec: "null".into(),
                tx_queues: None,
                ring_size: 1024,
                offload: false,
            }],
            streams: vec![StreamSection {
                size,
                vlan,
                ..Default::default()
            }],
            ..Default::default()
        };
        c.validate().unwrap().remove(0)
    }

    #[test]
    fn lengths_and_checksums_verify() {
        for (size, vlan) in [(64, 0), (65, 0), (1000, 0), (1518, 0), (68, 7)] {
            let f = build(&stream(size, vlan));
            assert_eq!(f.len(), size as usize - 4);
            let ip = if vlan != 0 { 18 } else { 14 };
            assert_eq!(ones_sum(&f[ip..ip + 20], 0), 0xffff, "ip csum, size {size}");
            let ip_len = u16::from_be_bytes([f[ip + 2], f[ip + 3]]) as usize;
            assert_eq!(ip_len, f.len() - ip);
            let udp = ip + 20;
            let udp_len = u16::from_be_bytes([f[udp + 4], f[udp + 5]]) as usize;
            assert_eq!(udp_len, f.len() - udp);
            let mut pseudo = 0u64;
            for w in f[ip + 12..ip + 20].chunks(2) {
                pseudo += u16::from_be_bytes([w[0], w[1]]) as u64;
            }
            pseudo += 17 + udp_len as u64;
            assert_eq!(ones_sum(&f[udp..], pseudo), 0xffff, "udp csum, size {size}");
        }
    }

    #[test]
    fn vlan_tag_is_in_place() {
        let f = build(&stream(128, 100));
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(&f[16..18], &[0x08, 0x00]);
    }
}
