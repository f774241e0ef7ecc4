//! `wirespeed gen --arp`: resolve each stream's destination MAC with ARP on
//! its port before sending (raw mode's stand-in for the neighbour layer: one
//! request per second, like `arp_solicit` retries, bounded in time).

use crate::config::Stream;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use wirespeed::ethdev::{MacAddr, Port, RxQueue, TxQueue};
use wirespeed::mbuf::{Burst, Mempool};

/// How long to wait for each peer's reply.
pub const ARP_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(1);

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

/// Resolves the destination MAC of every stream of port `pi`, using the
/// port's RX queue `rxq` and `txq`; sets each stream's source MAC to the port's.
/// `pool` refills `rxq` (it must outlive the queue, whose ring holds its buffers).
pub fn resolve_streams(
    pi: usize,
    port: &dyn Port,
    txq: &mut dyn TxQueue,
    rxq: &mut dyn RxQueue,
    pool: &mut Mempool,
    streams: &mut [Stream],
) -> Result<(), String> {
    let mac = port.mac();
    let mut resolved: Vec<(Ipv4Addr, MacAddr)> = Vec::new();
    for s in streams.iter_mut().filter(|s| s.port == pi) {
        s.src_mac = mac;
        if let Some((_, m)) = resolved.iter().find(|(ip, _)| *ip == s.dst_ip) {
            s.dst_mac = *m;
            continue;
        }
        let start = Instant::now();
        let mut last_tx: Option<Instant> = None;
        let mut out = Burst::new();
        let found = loop {
            if start.elapsed() > ARP_TIMEOUT {
                break None;
            }
            if last_tx.is_none_or(|t| t.elapsed() >= RETRY) {
                let mut m = pool.alloc().ok_or("ARP: mempool empty")?;
                m.extend_from_slice(&request(mac, s.src_ip, s.dst_ip))
                    .map_err(|e| e.to_string())?;
                let mut b = Burst::new();
                let _ = b.push(m);
                txq.tx_burst(&mut b);
                last_tx = Some(Instant::now());
            }
            txq.clean(64);
            rxq.rx_burst(pool, &mut out, 32);
            let mut hit = None;
            while let Some(m) = out.pop_front() {
                if let Some(r) = parse_reply(m.data(), s.dst_ip, s.src_ip) {
                    hit = Some(r);
                }
            }
            if hit.is_some() {
                break hit;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        // Give the TX queue its completions back before the lcores take over.
        let end = Instant::now() + Duration::from_secs(1);
        while txq.free_slots() + 1 < txq.ring_size() && Instant::now() < end {
            txq.clean(usize::MAX);
        }
        match found {
            Some(m) => {
                eprintln!(
                    "wirespeed gen: ARP: {} is at {m} (port {})",
                    s.dst_ip,
                    port.name()
                );
                s.dst_mac = m;
                resolved.push((s.dst_ip, m));
            }
            None => {
                return Err(format!(
                    "ARP: no reply from {} on {} within {} s (is the peer up and on this link?)",
                    s.dst_ip,
                    port.name(),
                    ARP_TIMEOUT.as_secs()
                ))
            }
        }
    }
    let _ = pi;
    Ok(())
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
