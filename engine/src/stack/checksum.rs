//! The Internet checksum: RFC 1071 sums (fast: 32-bit big-endian words summed
//! into a 64-bit accumulator, a loop the compiler vectorizes) and RFC 1624
//! incremental updates (`csum_replace2`/`csum_replace4` in Linux).

use std::net::Ipv4Addr;

/// Sums `data` as big-endian 16-bit words into a 64-bit accumulator (not folded).
///
/// Plays the part of `csum_partial`. An odd trailing byte is the high byte of a
/// zero-padded word, as RFC 1071 says.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        // Eight independent u32 lanes; the compiler turns this into vector adds.
        let mut lane = 0u64;
        for w in c.chunks_exact(4) {
            lane += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
        }
        acc += lane;
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(4);
    for w in &mut words {
        acc += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let tail = words.remainder();
    let mut i = 0;
    while i + 1 < tail.len() {
        acc += u16::from_be_bytes([tail[i], tail[i + 1]]) as u64;
        i += 2;
    }
    if i < tail.len() {
        acc += (tail[i] as u64) << 8;
    }
    acc
}

/// The one's-complement sum of `data` as native-endian 16-bit words, in a
/// 64-bit accumulator (not folded): no byte swap per word. By RFC 1071's
/// byte-order independence, on a little-endian machine the folded result is
/// the byte-swapped big-endian sum, so sums of native values (fields added
/// as `x.to_be()`) fold and complement into a checksum that is stored with
/// `to_ne_bytes`. The short-datagram fast path uses it.
#[inline(always)]
pub fn sum_ne(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        acc += (v & 0xffff_ffff) + (v >> 32);
    }
    let r = words.remainder();
    let mut i = 0;
    if r.len() >= 4 {
        acc += u32::from_ne_bytes([r[0], r[1], r[2], r[3]]) as u64;
        i = 4;
    }
    if r.len() >= i + 2 {
        acc += u16::from_ne_bytes([r[i], r[i + 1]]) as u64;
        i += 2;
    }
    if r.len() > i {
        // The high byte of a zero-padded big-endian word.
        acc += u16::from_ne_bytes([r[i], 0]) as u64;
    }
    acc
}

/// [`sum`] folded to 16 bits, computed with [`sum_ne`];
/// `fold(sum(d)) == sum_folded(d)` for every `d`.
#[inline]
pub fn sum_folded(data: &[u8]) -> u16 {
    u16::from_be(fold(sum_ne(data)))
}

/// Folds a 64-bit accumulator to 16 bits with end-around carry (`csum_fold`
/// without the final complement).
#[inline]
pub fn fold(acc: u64) -> u16 {
    // 64 → 33 bits, then end-around-carry adds at 32 and 16 bits (a carry
    // out of an add never leaves an all-ones sum, so adding it back cannot
    // carry again).
    let a = (acc & 0xffff_ffff) + (acc >> 32);
    let (s, c) = (a as u32).overflowing_add((a >> 32) as u32);
    let s = s + c as u32;
    let (r, c) = (s as u16).overflowing_add((s >> 16) as u16);
    r + c as u16
}

/// [`fold`] for an accumulator below 2^32 (a header's few words): two
/// end-around carries suffice there. The generator's per-packet checksums use it.
#[inline(always)]
pub fn fold32(acc: u64) -> u16 {
    debug_assert!(acc < 1 << 32);
    let a = (acc & 0xffff) + (acc >> 16);
    ((a & 0xffff) + (a >> 16)) as u16
}

/// The checksum field value for `data` (complement of the folded sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Sum of the IPv4 pseudo-header (`csum_tcpudp_nofold`): addresses, protocol,
/// and the L4 length.
#[inline]
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4_len: u16) -> u64 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) as u64
        + (s & 0xffff) as u64
        + (d >> 16) as u64
        + (d & 0xffff) as u64
        + proto as u64
        + l4_len as u64
}

/// An accumulator that can take byte runs of any length in sequence (as a
/// datagram's bytes come in pieces across fragments and mbuf segments): an odd
/// run shifts the byte lanes of what follows, handled by RFC 1071's byte-swap
/// property.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checksum {
    acc: u64,
    odd: bool,
}

impl Checksum {
    pub fn new() -> Checksum {
        Checksum::default()
    }
    /// Starts from a partial sum (e.g. the pseudo-header).
    pub fn with_sum(acc: u64) -> Checksum {
        Checksum { acc, odd: false }
    }
    /// Adds the next bytes of the stream.
    #[inline]
    pub fn add(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let s = fold(sum(data)) as u64;
        if self.odd {
            // This run starts on a low-byte lane: its words are byte-swapped.
            self.acc += (s >> 8) | ((s & 0xff) << 8);
        } else {
            self.acc += s;
        }
        if data.len() % 2 == 1 {
            self.odd = !self.odd;
        }
    }
    /// Adds a raw partial sum of 16-bit words that sit at even offsets of
    /// the covered data (pseudo-header, header fields), wherever the byte
    /// stream currently stands.
    pub fn add_sum(&mut self, s: u64) {
        self.acc += s;
    }
    /// The folded (uncomplemented) sum.
    pub fn folded(&self) -> u16 {
        fold(self.acc)
    }
    /// The value to write into a checksum field.
    pub fn finish(&self) -> u16 {
        !fold(self.acc)
    }
}

/// RFC 1624 eqn. 3 (`csum_replace2`): the new checksum field after a 16-bit
/// word of the covered data changes from `old` to `new`: HC' = ~(~HC + ~m + m').
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = (!check) as u64 + (!old) as u64 + new as u64;
    !fold(acc)
}

/// RFC 1624 for a 32-bit field (`csum_replace4`), e.g. an address rewrite.
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let acc = (!check) as u64
        + (!(old >> 16) & 0xffff) as u64
        + (!old & 0xffff) as u64
        + (new >> 16) as u64
        + (new & 0xffff) as u64;
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain RFC 1071 reference: 16-bit words, 32-bit accumulator folded as we go.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = data[i] as u32;
            let lo = if i + 1 < data.len() {
                data[i + 1] as u32
            } else {
                0
            };
            acc += (hi << 8) | lo;
            acc = (acc & 0xffff) + (acc >> 16);
            i += 2;
        }
        !(acc as u16)
    }

    /// 0x0000 and 0xffff are the two one's-complement zeros.
    fn norm(x: u16) -> u16 {
        if x == 0xffff {
            0
        } else {
            x
        }
    }

    #[test]
    fn rfc1071_example() {
        // The worked example from RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn ipv4_header_known_value() {
        // A header captured from the wire, checksum b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
    }

    proptest! {
        #[test]
        fn fast_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn fold_matches_repeated_16_bit_folding(acc in any::<u64>()) {
            let mut x = acc;
            while x > 0xffff {
                x = (x & 0xffff) + (x >> 16);
            }
            prop_assert_eq!(fold(acc), x as u16);
        }

        #[test]
        fn folded_native_sum_matches_sum(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(sum_folded(&data), fold(sum(&data)));
            prop_assert_eq!(!sum_folded(&data), reference(&data));
        }

        #[test]
        fn split_stream_matches_whole(data in proptest::collection::vec(any::<u8>(), 0..600),
                                      cuts in proptest::collection::vec(0usize..600, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut c = Checksum::new();
            let mut prev = 0;
            for &cut in &cuts {
                c.add(&data[prev..cut]);
                prev = cut;
            }
            c.add(&data[prev..]);
            prop_assert_eq!(c.finish(), reference(&data));
        }

        #[test]
        fn incremental_update_matches_recompute(mut data in proptest::collection::vec(any::<u8>(), 2..200),
                                                idx in 0usize..100, new16 in any::<u16>(), new32 in any::<u32>()) {
            let n = data.len() / 2 * 2;
            let data = &mut data[..n];
            let w = (idx % (n / 2)) * 2;
            let before = checksum(data);
            let old = u16::from_be_bytes([data[w], data[w + 1]]);
            data[w..w + 2].copy_from_slice(&new16.to_be_bytes());
            let after = update16(before, old, new16);
            // RFC 1624: both representations of zero are equivalent; compare sums.
            prop_assert_eq!(norm(after), norm(checksum(data)));
            if n >= 4 {
                let w4 = (idx % (n / 4)) * 4;
                let before = checksum(data);
                let old = u32::from_be_bytes([data[w4], data[w4 + 1], data[w4 + 2], data[w4 + 3]]);
                data[w4..w4 + 4].copy_from_slice(&new32.to_be_bytes());
                let after = update32(before, old, new32);
                prop_assert_eq!(norm(after), norm(checksum(data)));
            }
        }
    }
}
