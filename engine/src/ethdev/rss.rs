//! Receive-side scaling: the configuration a port is given (DPDK's
//! `rte_eth_rss_conf` + `rte_eth_dev_rss_reta_update`, Linux's ethtool
//! `set_rxfh`), the Toeplitz hash every RSS NIC computes, and the parse of
//! a frame into the hash input — one implementation shared by the device
//! models, the software ports and the tests.
//!
//! The hash is the one Microsoft's RSS specification defines ("RSS hashing
//! functions", "Verifying the RSS Hash Calculation",
//! <https://learn.microsoft.com/windows-hardware/drivers/network/verifying-the-rss-hash-calculation>)
//! and the 82576 datasheet (§7.1.1.7) implements: for every set bit of the
//! input, most significant bit of the first byte first, the 32 key bits
//! starting at that bit position are XORed into the result. The input is
//! the source address, the destination address, then (for the TCP/UDP
//! types) the source port and the destination port, all in network order.

use super::EthdevError;

/// Bytes in an RSS key (the 82576's RSSRK0..9, ten 32-bit registers).
pub const RSS_KEY_LEN: usize = 40;

/// The default key: the one Microsoft's verification suite uses, which
/// the 82576 datasheet (§7.1.1.7.3) gives as its sample key and DPDK's igb
/// PMD programs when the application gives none (`rss_intel_key` in
/// `drivers/net/e1000/igb_rxtx.c`).
pub const DEFAULT_RSS_KEY: [u8; RSS_KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Which packets are hashed and on what (DPDK's `rss_hf` bits
/// `RTE_ETH_RSS_IPV4`, `RTE_ETH_RSS_NONFRAG_IPV4_TCP`,
/// `RTE_ETH_RSS_NONFRAG_IPV4_UDP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RssHashTypes(u32);

impl RssHashTypes {
    pub const NONE: RssHashTypes = RssHashTypes(0);
    /// Any IPv4 packet on its two addresses.
    pub const IPV4: RssHashTypes = RssHashTypes(1 << 0);
    /// Unfragmented IPv4/TCP on addresses and ports.
    pub const IPV4_TCP: RssHashTypes = RssHashTypes(1 << 1);
    /// Unfragmented IPv4/UDP on addresses and ports.
    pub const IPV4_UDP: RssHashTypes = RssHashTypes(1 << 2);
    /// Every type this module knows.
    pub const ALL: RssHashTypes = RssHashTypes(0b111);

    const NAMES: [(RssHashTypes, &'static str); 3] = [
        (Self::IPV4, "ipv4"),
        (Self::IPV4_TCP, "ipv4-tcp"),
        (Self::IPV4_UDP, "ipv4-udp"),
    ];

    pub const fn bits(self) -> u32 {
        self.0
    }
    pub const fn contains(self, o: RssHashTypes) -> bool {
        self.0 & o.0 == o.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn union(self, o: RssHashTypes) -> RssHashTypes {
        RssHashTypes(self.0 | o.0)
    }
    pub const fn difference(self, o: RssHashTypes) -> RssHashTypes {
        RssHashTypes(self.0 & !o.0)
    }

    /// Parses one name (`ipv4`, `ipv4-tcp`, `ipv4-udp`).
    pub fn from_name(s: &str) -> Option<RssHashTypes> {
        Self::NAMES.iter().find(|(_, n)| *n == s).map(|(t, _)| *t)
    }

    /// The names of the set bits, comma-separated ("none" when empty).
    pub fn names(self) -> String {
        let v: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(t, _)| self.contains(*t))
            .map(|(_, n)| *n)
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

impl std::ops::BitOr for RssHashTypes {
    type Output = RssHashTypes;
    fn bitor(self, o: RssHashTypes) -> RssHashTypes {
        self.union(o)
    }
}

/// What a received packet was hashed as (the 82576's RSS Type field of
/// the write-back descriptor, `E1000_RXDADV_RSSTYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RssType {
    /// Not hashed (not IPv4, or its type not selected): queue 0.
    None,
    Ipv4,
    Ipv4Tcp,
    Ipv4Udp,
}

/// A port's RSS set-up (DPDK `rte_eth_rss_conf` with the RETA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssConf {
    /// The Toeplitz key.
    pub key: [u8; RSS_KEY_LEN],
    /// Redirection table: entry `hash % len` is the RX queue of a packet
    /// (`len` must be the port's [`super::PortInfo::reta_size`]).
    pub reta: Vec<u16>,
    pub hash_types: RssHashTypes,
}

impl RssConf {
    /// The default key, every type this module knows, and a RETA of
    /// `reta_size` entries spreading over `nb_queues` queues round-robin
    /// (entry i → queue i % n, as DPDK's `igb_rss_configure` fills it).
    pub fn spread(nb_queues: u16, reta_size: u16) -> RssConf {
        let n = nb_queues.max(1);
        RssConf {
            key: DEFAULT_RSS_KEY,
            reta: (0..reta_size).map(|i| i % n).collect(),
            hash_types: RssHashTypes::ALL,
        }
    }

    /// Checks the set-up against the port (`rte_eth_dev_rss_reta_update`'s
    /// and `rte_eth_dev_configure`'s checks); errors name `rss.KEY`.
    pub fn validate(
        &self,
        port: &str,
        driver: &str,
        reta_size: u16,
        supported: RssHashTypes,
        nb_rx_queues: u16,
    ) -> Result<(), EthdevError> {
        let bad = |key: String, why: String| EthdevError::Config {
            port: port.to_string(),
            key,
            why,
        };
        if reta_size == 0 {
            return Err(bad(
                "rss".into(),
                format!("{driver} has no receive-side scaling; drop rss and use one rx queue"),
            ));
        }
        if self.reta.len() != reta_size as usize {
            return Err(bad(
                "rss.reta".into(),
                format!(
                    "{} entries; {driver}'s redirection table has exactly {reta_size}",
                    self.reta.len()
                ),
            ));
        }
        if let Some((i, q)) = self
            .reta
            .iter()
            .enumerate()
            .find(|(_, &q)| q >= nb_rx_queues)
        {
            return Err(bad(
                format!("rss.reta[{i}]"),
                format!("queue {q} does not exist: the port has rx queues 0..{nb_rx_queues}"),
            ));
        }
        if self.hash_types.is_empty() {
            return Err(bad(
                "rss.hash_types".into(),
                format!("empty: select some of {}", supported.names()),
            ));
        }
        let missing = self.hash_types.difference(supported);
        if !missing.is_empty() {
            return Err(bad(
                "rss.hash_types".into(),
                format!(
                    "{driver} does not hash {} (it hashes {})",
                    missing.names(),
                    supported.names()
                ),
            ));
        }
        Ok(())
    }
}

/// The Toeplitz hash of `input` under `key`, bit by bit as the
/// specification states it (the reference the table-driven [`Toeplitz`]
/// is checked against). `key` must be at least `input.len() + 4` bytes.
pub fn toeplitz_hash(key: &[u8], input: &[u8]) -> u32 {
    assert!(key.len() >= input.len() + 4, "Toeplitz key too short");
    let mut result = 0u32;
    // The 32 key bits starting at the current input bit's position.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &b) in input.iter().enumerate() {
        let next = key[i + 4];
        for bit in 0..8 {
            if b & (0x80 >> bit) != 0 {
                result ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    result
}

/// Longest input the precomputed tables cover: IPv4 addresses + ports.
pub const TOEPLITZ_MAX_INPUT: usize = 12;

/// The Toeplitz hash with one 256-entry table per input byte (XOR of the
/// key windows of the bits set in that byte), so hashing costs one lookup
/// per input byte. Built once per key (12 KiB on the heap), used
/// per packet without allocating.
#[derive(Clone)]
pub struct Toeplitz {
    tables: Box<[[u32; 256]; TOEPLITZ_MAX_INPUT]>,
}

impl std::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toeplitz").finish_non_exhaustive()
    }
}

impl Toeplitz {
    pub fn new(key: &[u8; RSS_KEY_LEN]) -> Toeplitz {
        let mut tables = Box::new([[0u32; 256]; TOEPLITZ_MAX_INPUT]);
        for (pos, t) in tables.iter_mut().enumerate() {
            // Window for bit b of byte `pos`: key bits [pos*8+b, pos*8+b+32),
            // taken from the five key bytes starting at `pos`.
            let k = u64::from_be_bytes([
                key[pos],
                key[pos + 1],
                key[pos + 2],
                key[pos + 3],
                key[pos + 4],
                0,
                0,
                0,
            ]);
            let windows: [u32; 8] = std::array::from_fn(|b| ((k << b) >> 32) as u32);
            for (v, e) in t.iter_mut().enumerate() {
                *e = (0..8)
                    .filter(|b| v & (0x80 >> b) != 0)
                    .fold(0, |acc, b| acc ^ windows[b]);
            }
        }
        Toeplitz { tables }
    }

    /// The hash of `input` (at most [`TOEPLITZ_MAX_INPUT`] bytes; longer
    /// inputs are cut there).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.tables.iter())
            .fold(0, |acc, (&b, t)| acc ^ t[b as usize])
    }

    /// Hashes a frame as an RSS NIC would: its [`RssType`] and hash (0 for
    /// [`RssType::None`]).
    #[inline]
    pub fn hash_frame(&self, frame: &[u8], types: RssHashTypes) -> (RssType, u32) {
        match rss_input(frame, types) {
            Some((t, input, n)) => (t, self.hash(&input[..n])),
            None => (RssType::None, 0),
        }
    }
}

/// The hash input of an Ethernet frame (one 802.1Q tag allowed): the type
/// the selected `types` give it and the bytes to hash. `None` when the
/// frame is no IPv4 packet or its type is not selected. As on the 82576
/// (and QEMU's `igb_rss_get_hash_type`): TCP or UDP with its type selected
/// and not a fragment → addresses + ports; else IPv4 selected → addresses.
pub fn rss_input(
    frame: &[u8],
    types: RssHashTypes,
) -> Option<(RssType, [u8; TOEPLITZ_MAX_INPUT], usize)> {
    let mut l3 = 14;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l3 = 18;
    }
    if ethertype != 0x0800 {
        return None;
    }
    let ip = frame.get(l3..)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0F) * 4;
    if ihl < 20 || ip.len() < ihl {
        return None;
    }
    let mut input = [0u8; TOEPLITZ_MAX_INPUT];
    input[..8].copy_from_slice(&ip[12..20]);
    // MF set or a fragment offset: the ports are not in this packet.
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3FFF != 0;
    let l4 = match ip[9] {
        6 => Some((RssHashTypes::IPV4_TCP, RssType::Ipv4Tcp)),
        17 => Some((RssHashTypes::IPV4_UDP, RssType::Ipv4Udp)),
        _ => None,
    };
    if let Some((sel, t)) = l4 {
        if !fragment && types.contains(sel) && ip.len() >= ihl + 4 {
            input[8..12].copy_from_slice(&ip[ihl..ihl + 4]);
            return Some((t, input, 12));
        }
    }
    types
        .contains(RssHashTypes::IPV4)
        .then_some((RssType::Ipv4, input, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's "Verifying the RSS Hash Calculation" IPv4 table (also the
    /// 82599 datasheet §7.1.2.8.3 and DPDK's `app/test/test_thash.c`
    /// `v4_tbl`): destination, source, then the IPv4-only and IPv4/TCP hash.
    /// (destination, its port, source, its port, IPv4 hash, IPv4/TCP hash).
    type Vector = ([u8; 4], u16, [u8; 4], u16, u32, u32);
    const VECTORS: [Vector; 5] = [
        (
            [161, 142, 100, 80],
            1766,
            [66, 9, 149, 187],
            2794,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            [65, 69, 140, 83],
            4739,
            [199, 92, 111, 2],
            14230,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            [12, 22, 207, 184],
            38024,
            [24, 19, 198, 95],
            12898,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            [209, 142, 163, 6],
            2217,
            [38, 27, 205, 30],
            48228,
            0x82989176,
            0xafc7327f,
        ),
        (
            [202, 188, 127, 2],
            1303,
            [153, 39, 163, 191],
            44251,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, sp: u16, dp: u16, frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 6..14 + 8].copy_from_slice(&frag.to_be_bytes());
        f[14 + 9] = proto;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sp.to_be_bytes());
        f[36..38].copy_from_slice(&dp.to_be_bytes());
        f
    }

    #[test]
    fn toeplitz_matches_the_microsoft_verification_vectors() {
        let t = Toeplitz::new(&DEFAULT_RSS_KEY);
        for (dst, dp, src, sp, h_ip, h_tcp) in VECTORS {
            let mut input = [0u8; 12];
            input[..4].copy_from_slice(&src);
            input[4..8].copy_from_slice(&dst);
            input[8..10].copy_from_slice(&sp.to_be_bytes());
            input[10..12].copy_from_slice(&dp.to_be_bytes());
            assert_eq!(
                toeplitz_hash(&DEFAULT_RSS_KEY, &input[..8]),
                h_ip,
                "{src:?}"
            );
            assert_eq!(toeplitz_hash(&DEFAULT_RSS_KEY, &input), h_tcp, "{src:?}");
            assert_eq!(t.hash(&input[..8]), h_ip, "table {src:?}");
            assert_eq!(t.hash(&input), h_tcp, "table {src:?}");
            // Through the frame parse: TCP → 4-tuple, UDP → 4-tuple with its
            // type, IPv4-only selection → 2-tuple.
            let f = frame(src, dst, 6, sp, dp, 0);
            assert_eq!(
                t.hash_frame(&f, RssHashTypes::ALL),
                (RssType::Ipv4Tcp, h_tcp)
            );
            let f = frame(src, dst, 17, sp, dp, 0);
            assert_eq!(
                t.hash_frame(&f, RssHashTypes::ALL),
                (RssType::Ipv4Udp, h_tcp)
            );
            assert_eq!(t.hash_frame(&f, RssHashTypes::IPV4), (RssType::Ipv4, h_ip));
        }
    }

    #[test]
    fn classification_follows_the_selected_types() {
        let t = Toeplitz::new(&DEFAULT_RSS_KEY);
        let (dst, dp, src, sp, h_ip, _) = VECTORS[0];
        // A fragment is hashed on its addresses only.
        let f = frame(src, dst, 6, sp, dp, 0x2000);
        assert_eq!(t.hash_frame(&f, RssHashTypes::ALL), (RssType::Ipv4, h_ip));
        // TCP not selected, IPv4 not selected: not hashed.
        let f = frame(src, dst, 6, sp, dp, 0);
        assert_eq!(t.hash_frame(&f, RssHashTypes::IPV4_UDP), (RssType::None, 0));
        // Not IPv4 (ARP), and a truncated frame.
        let mut arp = frame(src, dst, 6, sp, dp, 0);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(t.hash_frame(&arp, RssHashTypes::ALL), (RssType::None, 0));
        assert_eq!(
            t.hash_frame(&arp[..20], RssHashTypes::ALL),
            (RssType::None, 0)
        );
        // An 802.1Q tag is looked through.
        let plain = frame(src, dst, 6, sp, dp, 0);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        assert_eq!(
            t.hash_frame(&tagged, RssHashTypes::ALL),
            t.hash_frame(&plain, RssHashTypes::ALL)
        );
    }

    #[test]
    fn bad_configurations_name_the_key() {
        let ok = RssConf::spread(2, 128);
        assert_eq!(ok.reta[..4], [0, 1, 0, 1]);
        ok.validate("p", "igb", 128, RssHashTypes::ALL, 2).unwrap();
        let e = ok
            .validate("p", "ring", 0, RssHashTypes::ALL, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rss:") && e.contains("no receive-side scaling"),
            "{e}"
        );
        let short = RssConf {
            reta: vec![0; 64],
            ..ok.clone()
        };
        let e = short
            .validate("p", "igb", 128, RssHashTypes::ALL, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rss.reta") && e.contains("exactly 128"), "{e}");
        let mut far = ok.clone();
        far.reta[7] = 2;
        let e = far
            .validate("p", "igb", 128, RssHashTypes::ALL, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rss.reta[7]") && e.contains("queue 2"), "{e}");
        let none = RssConf {
            hash_types: RssHashTypes::NONE,
            ..ok.clone()
        };
        let e = none
            .validate("p", "igb", 128, RssHashTypes::ALL, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rss.hash_types"), "{e}");
        let e = ok
            .validate("p", "x", 128, RssHashTypes::IPV4, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ipv4-tcp,ipv4-udp"), "{e}");
        assert_eq!(
            RssHashTypes::from_name("ipv4-udp"),
            Some(RssHashTypes::IPV4_UDP)
        );
        assert_eq!(RssHashTypes::from_name("ipv6"), None);
    }
}
