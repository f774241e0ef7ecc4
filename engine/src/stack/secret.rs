//! Per-process secrets and the keyed hash the stack draws from them: the
//! roles of Linux's boot-time random keys (`net_get_random_once` for
//! `ip_id_key`, the flow dissector's `hashrnd`, `get_random_u16` for a
//! socket's `inet_id`) and of `siphash` (lib/siphash.c).
//!
//! The keys are read once per process from `/dev/urandom` (falling back to
//! std's randomly keyed `RandomState` when that cannot be read), so two
//! processes never share them: a receiver never sees one run's IP IDs
//! continue into the next run's (issue 10 item 13).

use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// 128 random bits, once per process.
fn process_key() -> [u64; 2] {
    static KEY: OnceLock<[u64; 2]> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut b = [0u8; 16];
        let ok = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .is_ok();
        if ok {
            [
                u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
            ]
        } else {
            // RandomState is keyed from the OS's randomness too.
            let s = std::collections::hash_map::RandomState::new();
            let mut h = s.build_hasher();
            h.write_u64(0x6970_6964);
            let a = h.finish();
            let mut h = s.build_hasher();
            h.write_u64(a);
            [a, h.finish()]
        }
    })
}

/// A 128-bit SipHash key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SipKey(pub [u64; 2]);

impl SipKey {
    /// A key derived from the per-process secret and `purpose` (distinct
    /// purposes get unrelated keys, as Linux keeps one key per use).
    pub fn process(purpose: u64) -> SipKey {
        let k = process_key();
        let a = siphash_2u64(k[0] ^ purpose, k[1], &SipKey([k[1], k[0]]));
        let b = siphash_2u64(a, purpose, &SipKey(k));
        SipKey([a, b])
    }

    /// A key of its own for each call (the per-process secret, `purpose`
    /// and a per-process counter): two stacks in one process — two lcores,
    /// two simulated hosts — never share it either.
    pub fn fresh(purpose: u64) -> SipKey {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        SipKey::process(purpose ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// A fixed key (reproducible runs and tests).
    pub fn fixed(seed: u64) -> SipKey {
        SipKey([
            seed ^ 0x736f_6d65_7073_6575,
            seed.rotate_left(32) ^ 0x646f_7261_6e64_6f6d,
        ])
    }
}

#[inline(always)]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of two 64-bit words (16 bytes, little-endian), the
/// algorithm of the reference paper and of Linux `siphash_2u64`.
pub(crate) fn siphash_2u64(a: u64, b: u64, key: &SipKey) -> u64 {
    let [k0, k1] = key.0;
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    for m in [a, b] {
        v[3] ^= m;
        sipround(&mut v);
        sipround(&mut v);
        v[0] ^= m;
    }
    // Final block: no tail bytes, the length (16) in the top byte.
    let last = 16u64 << 56;
    v[3] ^= last;
    sipround(&mut v);
    sipround(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sipround(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// `siphash_3u32(daddr, saddr, protocol)` as `__ip_select_ident` keys its
/// ID bucket (here two words: the addresses, then the protocol).
pub(crate) fn hash_addrs_proto(daddr: u32, saddr: u32, proto: u8, key: &SipKey) -> u64 {
    siphash_2u64(((saddr as u64) << 32) | daddr as u64, proto as u64, key)
}

/// The flow hash of a UDP/TCP 4-tuple (`skb_get_hash` / `sk_txhash` role),
/// keyed, 32 bits, never 0 (0 means "no hash" in Linux's `skb->hash`).
pub(crate) fn flow_hash4(
    saddr: u32,
    daddr: u32,
    sport: u16,
    dport: u16,
    proto: u8,
    key: &SipKey,
) -> u32 {
    let h = siphash_2u64(
        ((saddr as u64) << 32) | daddr as u64,
        ((sport as u64) << 24) | ((dport as u64) << 8) | proto as u64,
        key,
    );
    match (h ^ (h >> 32)) as u32 {
        0 => 1,
        v => v,
    }
}

/// 64 random bits, different on every call (see [`SipKey::fresh`]).
pub(crate) fn fresh_random(purpose: u64) -> u64 {
    SipKey::fresh(purpose).0[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_matches_the_reference_vector() {
        // Reference vector (Aumasson & Bernstein, appendix A): key 00..0f,
        // message 00..0e (15 bytes) → a129ca6149be45e5. Our entry point
        // hashes exactly 16 bytes, so check the 16-byte vector instead:
        // message 00..0f → 3f2acc7f57c29bdb (vectors_sip64[16]).
        let key = SipKey([
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        ]);
        let a = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let b = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let h = siphash_2u64(a, b, &key);
        assert_eq!(
            h.to_le_bytes(),
            [0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f]
        );
    }

    #[test]
    fn process_keys_differ_by_purpose_and_are_not_fixed() {
        assert_ne!(SipKey::process(1), SipKey::process(2));
        assert_eq!(SipKey::process(1), SipKey::process(1));
        assert_ne!(SipKey::process(1), SipKey::fixed(1));
        assert_ne!(SipKey::fresh(1), SipKey::fresh(1));
    }
}
