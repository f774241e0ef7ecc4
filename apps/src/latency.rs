//! The latency header: 18 bytes at the start of a UDP payload that a
//! generator stream stamps on transmit and its receiver matches on return.
//!
//! ```text
//!  0      2       3      4                10                    18
//!  | "WS" | stream | lcore | sequence (48 bit) | TX TSC (64 bit)  |
//! ```
//!
//! The writer, the word sum the incremental UDP checksum needs, and the
//! parser live here together so the layout is defined once.

use std::ops::Range;

/// Magic at the start of a latency header ("WS").
pub const MAGIC: u16 = 0x5753;
/// Header length in bytes.
pub const LEN: usize = 18;

/// Field ranges within the header.
mod field {
    use super::Range;
    pub const MAGIC: Range<usize> = 0..2;
    pub const STREAM: usize = 2;
    pub const LCORE: usize = 3;
    pub const SEQ: Range<usize> = 4..10;
    pub const TSC: Range<usize> = 10..18;
}

/// A latency header found in a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyTag {
    pub stream: u8,
    pub lcore: u8,
    pub seq: u64,
    pub tx_tsc: u64,
}

/// Writes a latency header (magic, stream, lcore, 48-bit sequence, TSC)
/// at the start of `h` (at least [`LEN`] bytes).
#[inline(always)]
pub fn write(h: &mut [u8], stream: u8, lcore: u8, seq: u64, tsc: u64) {
    h[field::MAGIC].copy_from_slice(&MAGIC.to_be_bytes());
    h[field::STREAM] = stream;
    h[field::LCORE] = lcore;
    h[field::SEQ].copy_from_slice(&seq.to_be_bytes()[2..8]);
    h[field::TSC].copy_from_slice(&tsc.to_be_bytes());
}

/// The 16-bit word sum of a latency header, as the UDP checksum sees it
/// (not folded).
#[inline(always)]
pub fn words(stream: u8, lcore: u8, seq: u64, tsc: u64) -> u64 {
    MAGIC as u64
        + (((stream as u64) << 8) | lcore as u64)
        + ((seq >> 32) & 0xffff)
        + ((seq >> 16) & 0xffff)
        + (seq & 0xffff)
        + (tsc >> 48)
        + ((tsc >> 32) & 0xffff)
        + ((tsc >> 16) & 0xffff)
        + (tsc & 0xffff)
}

/// Parses a header at the start of `h`.
#[inline(always)]
pub fn parse_header(h: &[u8]) -> Option<LatencyTag> {
    let h = h.get(..LEN)?;
    if h[field::MAGIC] != MAGIC.to_be_bytes() {
        return None;
    }
    let mut seq = [0u8; 8];
    seq[2..8].copy_from_slice(&h[field::SEQ]);
    let mut tsc = [0u8; 8];
    tsc.copy_from_slice(&h[field::TSC]);
    Some(LatencyTag {
        stream: h[field::STREAM],
        lcore: h[field::LCORE],
        seq: u64::from_be_bytes(seq),
        tx_tsc: u64::from_be_bytes(tsc),
    })
}

/// Finds the latency header of a generator frame (Ethernet, optional
/// 802.1Q, IPv4 without options, UDP).
#[inline]
pub fn parse(f: &[u8]) -> Option<LatencyTag> {
    const ETH_P_IP: [u8; 2] = [0x08, 0x00];
    const ETH_P_8021Q: [u8; 2] = [0x81, 0x00];
    let l2 = match f.get(12..14)? {
        t if t == ETH_P_8021Q => {
            if f.get(16..18)? != ETH_P_IP {
                return None;
            }
            18
        }
        t if t == ETH_P_IP => 14,
        _ => return None,
    };
    // IPv4 version 4, IHL 5; protocol UDP; the header after the 8-byte UDP header.
    let ip = f.get(l2..l2 + 20)?;
    if ip[0] != 0x45 || ip[9] != 17 {
        return None;
    }
    parse_header(f.get(l2 + 28..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_headers_parse_back_and_sum_as_their_words() {
        let mut h = [0u8; LEN];
        write(&mut h, 7, 3, 0x0000_1234_5678_9abc, 0xfedc_ba98_7654_3210);
        let t = parse_header(&h).unwrap();
        assert_eq!(
            t,
            LatencyTag {
                stream: 7,
                lcore: 3,
                seq: 0x1234_5678_9abc,
                tx_tsc: 0xfedc_ba98_7654_3210
            }
        );
        let sum: u64 = h
            .chunks(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u64)
            .sum();
        assert_eq!(sum, words(7, 3, 0x1234_5678_9abc, 0xfedc_ba98_7654_3210));
        h[0] ^= 1;
        assert_eq!(parse_header(&h), None, "bad magic");
        assert_eq!(parse_header(&h[..LEN - 1]), None, "short");
    }

    #[test]
    fn frames_without_ipv4_udp_or_cut_short_are_not_parsed() {
        let mut f = vec![0u8; 14 + 28 + LEN];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 17;
        write(&mut f[42..], 1, 2, 3, 4);
        assert_eq!(parse(&f).map(|t| t.seq), Some(3));
        for n in 0..f.len() {
            assert_eq!(parse(&f[..n]), None, "cut at {n}");
        }
        let mut tcp = f.clone();
        tcp[14 + 9] = 6;
        assert_eq!(parse(&tcp), None);
        let mut opts = f.clone();
        opts[14] = 0x46;
        assert_eq!(parse(&opts), None);
        let mut arp = f;
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse(&arp), None);
    }
}
