//! Segmentation offload as the device layer sees it: how many wire
//! segments a TCP super-segment makes (`skb_shinfo(skb)->gso_segs`), the
//! bytes queues account for it (`qdisc_pkt_len_init`), and the protocol
//! segmenter the stack registers at start (`inet_add_offload` of
//! `tcpv4_offload` → `tcp4_gso_segment`). The netdev layer's software GSO
//! (`validate_xmit_skb`) and a port that must split a received
//! super-frame (`af_packet` with `PACKET_VNET_HDR`) both call it through
//! [`segment_tcp4`]: the segmenter lives with TCP, one floor up, as
//! Linux's lives in net/ipv4/tcp_offload.c.

use crate::mbuf::{ol, Burst, Mbuf};
use std::sync::OnceLock;

/// Most buffers of one super-segment's chain a segmenter reads.
pub const GSO_MAX_CHAIN: usize = 64;

/// Largest super-segment (`GSO_LEGACY_MAX_SIZE`: the IPv4 total length
/// field bounds it).
pub const GSO_MAX_SIZE: usize = 65536;

/// Why a frame could not be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    #[error("not a segmentable TCP/IPv4 frame: {0}")]
    Malformed(&'static str),
    #[error("no buffer for a segment (pool empty)")]
    NoBuffers,
    #[error("{segs} segments: more than one burst holds")]
    TooManySegments { segs: usize },
    #[error("no TCP segmenter registered (no stack was created)")]
    NoSegmenter,
}

/// What the caller wants of the segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GsoRequest {
    /// Payload bytes per segment (`gso_size`).
    pub mss: u16,
    /// Leave each segment's TCP checksum to the device (`NETIF_F_IP_CSUM`:
    /// the field holds the pseudo-header sum, `TX_TCP_CKSUM` is set);
    /// otherwise it is computed in full.
    pub tx_csum: bool,
    /// Received super-frame whose checksum the kernel vouched for: each
    /// segment is marked `RX_L4_CKSUM_GOOD` and none is computed.
    pub rx_csum_good: bool,
}

/// A protocol segmenter: splits the Ethernet frame given as `frame` (its
/// bytes in order, over several slices) into `mss`-payload segments, each
/// a buffer from `alloc`, pushed to `out`. Returns segments made; on error
/// nothing was pushed.
pub type SegmentFn = fn(
    frame: &[&[u8]],
    req: GsoRequest,
    alloc: &mut dyn FnMut() -> Option<Mbuf>,
    out: &mut Burst,
) -> Result<usize, GsoError>;

static TCP4: OnceLock<SegmentFn> = OnceLock::new();

/// Plays the part of `inet_add_offload(&tcpv4_offload, IPPROTO_TCP)`: the
/// stack registers its TCP/IPv4 segmenter once (later calls are no-ops).
pub fn add_offload_tcp4(f: SegmentFn) {
    let _ = TCP4.set(f);
}

/// Plays the part of `skb_mac_gso_segment` → `inet_gso_segment` →
/// `tcp4_gso_segment` through the registered segmenter.
pub fn segment_tcp4(
    frame: &[&[u8]],
    req: GsoRequest,
    alloc: &mut dyn FnMut() -> Option<Mbuf>,
    out: &mut Burst,
) -> Result<usize, GsoError> {
    let f = TCP4.get().ok_or(GsoError::NoSegmenter)?;
    f(frame, req, alloc, out)
}

/// True when `m` is a TCP super-segment (`skb_is_gso`).
#[inline(always)]
pub fn is_gso(m: &Mbuf) -> bool {
    m.ol_flags() & ol::TX_TSO != 0 && m.tso_segsz() != 0
}

/// Header bytes every segment of `m` repeats (L2 + L3 + L4).
#[inline(always)]
pub fn gso_hdr_len(m: &Mbuf) -> usize {
    let (l2, l3, l4) = m.tx_lens();
    l2 as usize + l3 as usize + l4 as usize
}

/// `skb_shinfo(skb)->gso_segs`: wire segments `m` becomes (1 unless TSO).
#[inline(always)]
pub fn gso_segs(m: &Mbuf) -> u32 {
    if !is_gso(m) {
        return 1;
    }
    let payload = m.pkt_len().saturating_sub(gso_hdr_len(m));
    payload.div_ceil(m.tso_segsz() as usize).max(1) as u32
}

/// Plays the part of `qdisc_pkt_len_init`: the bytes a super-segment puts
/// on the wire — its length plus one header per further segment — which
/// is what BQL and the queue byte counters account (the drivers report
/// the same sum on completion, as igb's `first->bytecount` does).
#[inline(always)]
pub fn wire_len(m: &Mbuf) -> u64 {
    let len = m.pkt_len() as u64;
    if !is_gso(m) {
        return len;
    }
    len + (gso_segs(m) as u64 - 1) * gso_hdr_len(m) as u64
}

/// The chain's data as slices (in `buf`), or `None` beyond
/// [`GSO_MAX_CHAIN`] buffers.
pub fn frame_slices<'a, 'b>(
    m: &'a Mbuf,
    buf: &'b mut [&'a [u8]; GSO_MAX_CHAIN],
) -> Option<&'b [&'a [u8]]> {
    let mut n = 0;
    for s in m.segments() {
        if n == GSO_MAX_CHAIN {
            return None;
        }
        buf[n] = s.data;
        n += 1;
    }
    Some(&buf[..n])
}
