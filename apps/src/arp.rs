//! `wirespeed gen --arp`: ARP request/reply frames for resolving each raw
//! stream's destination MAC on its port before sending (one request per
//! second, like `arp_solicit` retries, bounded in time; the generator app
//! drives it — see `gen::lcore`).

use std::net::Ipv4Addr;
use std::time::Duration;
use wirespeed::ethdev::MacAddr;

/// How long to wait for each peer's reply.
pub const ARP_TIMEOUT: Duration = Duration::from_secs(5);

/// An ARP request frame (42 bytes; the NIC pads it to 60).
pub fn request(src_mac: MacAddr, src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xFF; 6]);
    f.extend_from_slice(&src_mac.0);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&src_mac.0);
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

/// The sender MAC of an ARP reply from `target` to `our_ip`, if `f` is one.
pub fn parse_reply(f: &[u8], target: Ipv4Addr, our_ip: Ipv4Addr) -> Option<MacAddr> {
    if f.len() < 42 || f[12..14] != [0x08, 0x06] || f[14..22] != [0, 1, 8, 0, 6, 4, 0, 2] {
        return None;
    }
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&f[22..28]);
    (f[28..32] == target.octets() && f[38..42] == our_ip.octets()).then_some(MacAddr(sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply_round_trip() {
        let me = MacAddr([2, 0, 0, 0, 0, 1]);
        let peer = MacAddr([2, 0, 0, 0, 0, 2]);
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let q = request(me, a, b);
        assert_eq!(q.len(), 42);
        assert_eq!(&q[..6], &[0xFF; 6]);
        // Turn the request into the peer's reply.
        let mut r = q.clone();
        r[..6].copy_from_slice(&me.0);
        r[6..12].copy_from_slice(&peer.0);
        r[21] = 2;
        r[22..28].copy_from_slice(&peer.0);
        r[28..32].copy_from_slice(&b.octets());
        r[32..38].copy_from_slice(&me.0);
        r[38..42].copy_from_slice(&a.octets());
        assert_eq!(parse_reply(&r, b, a), Some(peer));
        assert_eq!(parse_reply(&r, a, b), None);
        assert_eq!(parse_reply(&q, b, a), None, "a request is not a reply");
    }
}
