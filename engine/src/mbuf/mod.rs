//! Packet buffers: a [`Mempool`] of fixed-size objects in DMA memory and the
//! owning handle [`Mbuf`] (DPDK's `rte_mempool` + `rte_mbuf`, Linux's `sk_buff`
//! for the parts a poll-mode engine needs).
//!
//! Each object is a 128-byte header ([`MbufHdr`]) followed by the buffer
//! (headroom + data room). A pool belongs to the thread that created it (its
//! lcore): allocation and frees on that thread touch a plain free stack — no
//! locks, no atomic read-modify-write. An mbuf dropped on another thread (an
//! appliance receiving on one lcore and sending on another, a ring port) goes
//! home through a return ring of the pool that thread claimed once: plain
//! stores there too (see pool.rs).
//!
//! An indirect mbuf ([`Mempool::alloc_indirect`], DPDK's
//! `rte_pktmbuf_attach`, an `skb_clone`) has a header of its own and its
//! data in another mbuf's buffer, whose holder count ([`Mbuf::refcnt`])
//! it raises; freeing it detaches, and a buffer goes home when its last
//! holder lets go. The count is written only on the pool's owner thread
//! (plain stores); a shared buffer given up on another thread travels home
//! tagged and the owner drops the reference. Shared bytes are read-only.

mod burst;
mod pool;
mod spsc;

pub use burst::{Burst, BURST_MAX};
pub use pool::{Mempool, MempoolError, MempoolStats, PoolArea, PoolConfig, PoolRef};
pub use spsc::SpscRing;

use std::marker::PhantomData;
use std::ptr::NonNull;

/// Offload request flags on a transmit mbuf (DPDK `RTE_MBUF_F_TX_*`).
pub mod ol {
    /// Compute the IPv4 header checksum in the NIC.
    pub const TX_IP_CKSUM: u32 = 1 << 0;
    /// Compute the UDP checksum in the NIC (pseudo-header sum seeded in the field).
    pub const TX_UDP_CKSUM: u32 = 1 << 1;
    /// Compute the TCP checksum in the NIC (pseudo-header sum seeded in the field).
    pub const TX_TCP_CKSUM: u32 = 1 << 2;
    /// Insert `vlan_tci` as an 802.1Q tag.
    pub const TX_VLAN: u32 = 1 << 3;
    /// TCP segmentation offload with `tso_segsz`.
    pub const TX_TSO: u32 = 1 << 4;
    /// The packet is IPv4 (needed with any L3/L4 offload).
    pub const TX_IPV4: u32 = 1 << 5;
    /// Record a transmit timestamp.
    pub const TX_TIMESTAMP: u32 = 1 << 6;
    /// Report a software transmit timestamp when the driver takes the
    /// packet (`SKBTX_SW_TSTAMP`, `skb_tx_timestamp`): to the socket the
    /// packet is charged to, with key [`super::Mbuf::tskey`]. Not an offload:
    /// the netdev layer does it, any driver.
    pub const TX_SW_TSTAMP: u32 = 1 << 7;
    /// Internal: the software timestamp was reported (so a refusal by the
    /// driver can take it back).
    pub(crate) const TX_SW_TSTAMP_SENT: u32 = 1 << 8;
    /// Received: the NIC verified the IPv4 header checksum as good.
    pub const RX_IP_CKSUM_GOOD: u32 = 1 << 16;
    /// Received: the NIC verified the L4 checksum as good.
    pub const RX_L4_CKSUM_GOOD: u32 = 1 << 17;
    /// Received: the NIC stripped a VLAN tag into `vlan_tci`.
    pub const RX_VLAN_STRIPPED: u32 = 1 << 18;
    /// Received: `hash` holds the NIC's RSS hash of the packet
    /// (`RTE_MBUF_F_RX_RSS_HASH`; Linux `skb_set_hash` with `PKT_HASH_TYPE_L3/L4`).
    pub const RX_RSS_HASH: u32 = 1 << 19;
    /// All TX offload bits that need a driver's context/descriptor support.
    pub const TX_OFFLOAD_MASK: u32 =
        TX_IP_CKSUM | TX_UDP_CKSUM | TX_TCP_CKSUM | TX_VLAN | TX_TSO | TX_IPV4 | TX_TIMESTAMP;
}

/// Size of the in-buffer header that precedes every packet buffer.
pub const MBUF_HDR_SIZE: usize = 128;

/// The per-buffer metadata (two cache lines, like `rte_mbuf`). It lives in DMA
/// memory right before the headroom.
#[repr(C, align(64))]
pub struct MbufHdr {
    /// IOVA of the buffer's first byte (start of headroom).
    pub(crate) buf_iova: u64,
    pub(crate) pool: *const pool::PoolShared,
    /// Next segment of a chain, or null.
    pub(crate) next: *mut MbufHdr,
    pub(crate) data_off: u16,
    pub(crate) data_len: u16,
    /// Total length over the whole chain (meaningful on the first segment).
    pub(crate) pkt_len: u32,
    pub(crate) nb_segs: u16,
    pub(crate) vlan_tci: u16,
    pub(crate) ol_flags: u32,
    pub(crate) l2_len: u8,
    pub(crate) l3_len: u8,
    pub(crate) l4_len: u8,
    pub(crate) priority: u8,
    pub(crate) tso_segsz: u16,
    pub(crate) buf_len: u16,
    pub(crate) hash: u32,
    pub(crate) index: u32,
    pub(crate) tx_ts: u64,
    /// Free for the owner of the packet (the stack keeps its socket cookie here).
    pub(crate) user: u64,
    /// Socket send-buffer accounting: bytes charged and the account to credit
    /// when the packet is freed (the `sk_wmem_alloc` / `sock_wfree` idea).
    pub(crate) wmem: *const WmemAccount,
    pub(crate) wmem_charge: u32,
    pub(crate) port: u16,
    pub(crate) queue: u16,
    /// `skb_shinfo(skb)->tskey`: what a transmit timestamp reports.
    pub(crate) tskey: u32,
    /// Holders of this object's buffer: its own handle (if still alive)
    /// and every indirect mbuf attached to it (`rte_mbuf::refcnt`,
    /// `skb_shinfo(skb)->dataref`). 1 while the buffer is free or plainly
    /// owned. Written only on the pool's owner thread (attach, and every
    /// decrement — a foreign thread hands a shared buffer home untouched,
    /// see pool.rs), so plain load/store: no read-modify-write. Atomic in
    /// type only, so that a foreign thread may read it.
    pub(crate) refcnt: std::sync::atomic::AtomicU16,
    /// For an indirect mbuf, the (direct) mbuf whose buffer its data
    /// window lies in (`RTE_MBUF_F_INDIRECT` + `rte_mbuf_from_indirect`,
    /// an skb clone's shared head); null for a direct mbuf.
    pub(crate) direct: *mut MbufHdr,
}

const _: () = assert!(std::mem::size_of::<MbufHdr>() <= MBUF_HDR_SIZE);

/// A single-writer byte account: the socket side charges, and frees credit it.
/// Frees may happen on another lcore; the counter is two monotonically growing
/// values, each written by one side only, so no read-modify-write is needed.
#[derive(Debug, Default)]
pub struct WmemAccount {
    charged: std::sync::atomic::AtomicU64,
    /// Released by the owner (its single writer).
    released: std::sync::atomic::AtomicU64,
    /// Released by other threads, written under `release_lock`: a counter
    /// of its own, so the owner's plain store never races with them.
    released_remote: std::sync::atomic::AtomicU64,
    release_lock: std::sync::Mutex<()>,
    owner_token: std::sync::atomic::AtomicU64,
    /// Transmit timestamps for the socket (`sk_error_queue` entries of
    /// `SO_EE_ORIGIN_TIMESTAMPING`): written only for packets that asked
    /// (`ol::TX_SW_TSTAMP`), never on the plain fast path.
    tstamps: std::sync::Mutex<TstampQueue>,
}

/// A transmit timestamp (`SCM_TIMESTAMPING` `ts[0]`, software) and the
/// datagram it is for (`ee_data`, `SOF_TIMESTAMPING_OPT_ID`'s counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxTimestamp {
    pub key: u32,
    /// When the driver took the packet, ns on the engine's TSC clock
    /// (`Tsc::now_ns`, the stack's clock).
    pub ns: u64,
}

/// Timestamps waiting for the socket to read them, bounded like an error
/// queue (the oldest go first, counted).
#[derive(Debug, Default)]
pub(crate) struct TstampQueue {
    q: std::collections::VecDeque<TxTimestamp>,
    pub(crate) dropped: u64,
}

/// Most timestamps an account holds unread.
pub const TSTAMP_QUEUE_MAX: usize = 1024;

impl WmemAccount {
    /// A new account owned by the calling thread.
    pub fn new() -> WmemAccount {
        let a = WmemAccount::default();
        a.owner_token
            .store(pool::thread_token(), std::sync::atomic::Ordering::Relaxed);
        a
    }

    /// Bytes charged and not yet released (in flight).
    pub fn in_flight(&self) -> u64 {
        use std::sync::atomic::Ordering::Acquire;
        self.charged
            .load(Acquire)
            .saturating_sub(self.released.load(Acquire) + self.released_remote.load(Acquire))
    }

    /// The oldest transmit timestamp not yet read (`MSG_ERRQUEUE`).
    pub fn take_tstamp(&self) -> Option<TxTimestamp> {
        self.tstamps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .q
            .pop_front()
    }

    /// Timestamps dropped because the socket did not read them in time.
    pub fn tstamps_dropped(&self) -> u64 {
        self.tstamps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dropped
    }

    fn push_tstamp(&self, t: TxTimestamp) {
        let mut g = self.tstamps.lock().unwrap_or_else(|e| e.into_inner());
        if g.q.len() >= TSTAMP_QUEUE_MAX {
            g.q.pop_front();
            g.dropped += 1;
        }
        g.q.push_back(t);
    }

    fn retract_tstamp(&self, key: u32) {
        let mut g = self.tstamps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = g.q.iter().rposition(|t| t.key == key) {
            g.q.remove(i);
        }
    }

    fn charge(&self, n: u64) {
        use std::sync::atomic::Ordering::{Relaxed, Release};
        self.charged.store(self.charged.load(Relaxed) + n, Release);
    }

    /// Releases `n` bytes; `token` is the calling thread's
    /// [`pool::thread_token`] (the caller already has it).
    #[inline(always)]
    fn release(&self, n: u64, token: u64) {
        use std::sync::atomic::Ordering::{Relaxed, Release};
        if self.owner_token.load(Relaxed) == token {
            self.released
                .store(self.released.load(Relaxed) + n, Release);
        } else {
            // A socket's buffer freed on another lcore (a TX queue cleaned
            // away from the socket's lcore — the runtime keeps them on one,
            // so this is rare): serialised among such threads by the lock.
            let _g = self.release_lock.lock().unwrap_or_else(|e| e.into_inner());
            let r = &self.released_remote;
            r.store(r.load(Relaxed) + n, Release);
        }
    }
}

/// An owning handle to one packet buffer (and the rest of its segment chain).
/// Like `Box`: whoever holds it owns the buffer; dropping it returns every
/// segment to its pool. `repr(transparent)`: a burst's slots are read as
/// header pointers when it frees in bulk.
#[repr(transparent)]
pub struct Mbuf {
    hdr: NonNull<MbufHdr>,
    _not_sync: PhantomData<*mut MbufHdr>,
}

// SAFETY: an Mbuf is a unique owner of its buffer; moving it to another thread
// moves that ownership. Frees from a foreign thread go through the pool's
// return rings (see pool.rs).
unsafe impl Send for Mbuf {}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("index", &self.h().index)
            .field("data_len", &self.data_len())
            .field("pkt_len", &self.pkt_len())
            .field("nb_segs", &self.nb_segs())
            .finish()
    }
}

/// Errors from mbuf data manipulation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MbufError {
    #[error("not enough tailroom: need {need}, have {have}")]
    NoTailroom { need: usize, have: usize },
    #[error("not enough headroom: need {need}, have {have}")]
    NoHeadroom { need: usize, have: usize },
    #[error("cannot remove {need} bytes from a {have}-byte segment")]
    TooShort { need: usize, have: usize },
    #[error("the buffer is shared with an indirect mbuf (read-only): copy it first")]
    Shared,
    #[error("window of {len} bytes at {off} leaves the {have}-byte segment")]
    Range { off: usize, len: usize, have: usize },
    #[error("the buffer's pool belongs to another thread (attach on its owner lcore)")]
    ForeignPool,
    #[error("the mempool is empty")]
    PoolEmpty,
    #[error("the buffer already has the most holders a refcount counts")]
    RefcntOverflow,
}

impl Mbuf {
    #[inline(always)]
    fn h(&self) -> &MbufHdr {
        // SAFETY: `hdr` points at a live header owned by this handle.
        unsafe { self.hdr.as_ref() }
    }

    #[inline(always)]
    fn hm(&mut self) -> &mut MbufHdr {
        // SAFETY: unique ownership gives exclusive access to the header.
        unsafe { self.hdr.as_mut() }
    }

    /// # Safety
    /// `hdr` must be a header of a live pool object that nobody else owns.
    #[inline(always)]
    pub(crate) unsafe fn from_hdr(hdr: NonNull<MbufHdr>) -> Mbuf {
        Mbuf {
            hdr,
            _not_sync: PhantomData,
        }
    }

    /// Gives up the handle without freeing (drivers keep raw pointers in rings).
    #[inline(always)]
    pub fn into_raw(self) -> NonNull<MbufHdr> {
        let p = self.hdr;
        std::mem::forget(self);
        p
    }

    /// Takes back a handle made by [`Mbuf::into_raw`].
    ///
    /// # Safety
    /// `p` must come from `into_raw` and not have been turned back before.
    #[inline(always)]
    pub unsafe fn from_raw(p: NonNull<MbufHdr>) -> Mbuf {
        Mbuf::from_hdr(p)
    }

    #[inline(always)]
    fn buf_ptr(&self) -> *mut u8 {
        buf_of(self.hdr.as_ptr())
    }

    /// True when this segment's bytes may be seen through another handle:
    /// it is an indirect mbuf, or indirect mbufs are attached to it
    /// (`skb_cloned`, DPDK's `RTE_MBUF_CLONED` / refcnt > 1). Its data is
    /// then read-only: [`Mbuf::append`], [`Mbuf::prepend`] and
    /// [`Mbuf::extend_from_slice`] refuse with [`MbufError::Shared`], and
    /// [`Mbuf::data_mut`] / [`Mbuf::buffer_mut`] must not be called.
    #[inline(always)]
    pub fn is_shared(&self) -> bool {
        let h = self.h();
        !h.direct.is_null() || h.refcnt.load(std::sync::atomic::Ordering::Relaxed) > 1
    }

    /// True for an indirect mbuf (its data lies in another mbuf's buffer).
    #[inline(always)]
    pub fn is_indirect(&self) -> bool {
        !self.h().direct.is_null()
    }

    /// Holders of this segment's buffer (its handle and the indirect mbufs
    /// attached to it; an indirect reports its direct's count).
    pub fn refcnt(&self) -> u16 {
        let h = self.h();
        let b = if h.direct.is_null() {
            h as *const MbufHdr
        } else {
            h.direct
        };
        // SAFETY: the direct of a live indirect is kept alive by it.
        unsafe { (*b).refcnt.load(std::sync::atomic::Ordering::Relaxed) }
    }

    #[inline(always)]
    fn check_unshared(&self) -> Result<(), MbufError> {
        if self.is_shared() {
            return Err(MbufError::Shared);
        }
        Ok(())
    }

    /// Bytes in this segment.
    #[inline(always)]
    pub fn data_len(&self) -> usize {
        self.h().data_len as usize
    }

    /// Bytes in the whole chain.
    #[inline(always)]
    pub fn pkt_len(&self) -> usize {
        self.h().pkt_len as usize
    }

    /// Segments in the chain.
    #[inline(always)]
    pub fn nb_segs(&self) -> usize {
        self.h().nb_segs as usize
    }

    /// Offset of the data from the buffer start.
    #[inline(always)]
    pub fn data_off(&self) -> usize {
        self.h().data_off as usize
    }

    /// Free bytes before the data.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.h().data_off as usize
    }

    /// Free bytes after the data in this segment.
    #[inline(always)]
    pub fn tailroom(&self) -> usize {
        let h = self.h();
        h.buf_len as usize - h.data_off as usize - h.data_len as usize
    }

    /// Size of the buffer (headroom + data room).
    #[inline(always)]
    pub fn buf_len(&self) -> usize {
        self.h().buf_len as usize
    }

    /// This segment's data.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let h = self.h();
        // SAFETY: data_off + data_len <= buf_len, all inside the object.
        unsafe {
            std::slice::from_raw_parts(self.buf_ptr().add(h.data_off as usize), h.data_len as usize)
        }
    }

    /// This segment's data, writable, or [`MbufError::Shared`] when the
    /// buffer has other holders (an indirect mbuf, or a direct one with
    /// indirects attached): the checked form of [`Mbuf::data_mut`].
    #[inline]
    pub fn try_data_mut(&mut self) -> Result<&mut [u8], MbufError> {
        if self.is_shared() {
            return Err(MbufError::Shared);
        }
        Ok(self.data_mut())
    }

    /// This segment's data, writable.
    ///
    /// # Panics
    /// On a shared buffer (see [`Mbuf::is_shared`]; [`Mbuf::try_data_mut`]
    /// returns the error instead): writing bytes other holders read is
    /// refused, as Linux's `skb_cow_data` would copy first.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        assert!(
            !self.is_shared(),
            "Mbuf::data_mut on a shared buffer (check is_shared; copy it first)"
        );
        let (off, len) = (self.h().data_off as usize, self.h().data_len as usize);
        // SAFETY: as `data`, and the handle is unique.
        unsafe { std::slice::from_raw_parts_mut(self.buf_ptr().add(off), len) }
    }

    /// The whole buffer (headroom, data and tailroom), writable.
    ///
    /// # Panics
    /// On a shared buffer, as [`Mbuf::data_mut`].
    #[inline(always)]
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        assert!(
            !self.is_shared(),
            "Mbuf::buffer_mut on a shared buffer (check is_shared; copy it first)"
        );
        let len = self.h().buf_len as usize;
        // SAFETY: the buffer is `buf_len` bytes after the header; the handle is unique.
        unsafe { std::slice::from_raw_parts_mut(self.buf_ptr(), len) }
    }

    /// Sets this segment's length (data offset unchanged); for a single-segment
    /// packet the packet length follows. Bytes keep whatever the buffer held.
    #[inline(always)]
    pub fn set_len(&mut self, len: usize) -> Result<(), MbufError> {
        let h = self.h();
        let have = h.buf_len as usize - h.data_off as usize;
        if len > have {
            return Err(MbufError::NoTailroom { need: len, have });
        }
        let old = h.data_len as u32;
        let h = self.hm();
        h.data_len = len as u16;
        h.pkt_len = h.pkt_len - old + len as u32;
        Ok(())
    }

    /// Appends `n` bytes at the tail of the last segment and returns them.
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], MbufError> {
        let last = self.last_seg_hdr();
        // SAFETY: `last` is a segment of this chain, owned through this handle.
        let lh = unsafe { &mut *last };
        if seg_shared(lh) {
            return Err(MbufError::Shared);
        }
        let have = lh.buf_len as usize - lh.data_off as usize - lh.data_len as usize;
        if n > have {
            return Err(MbufError::NoTailroom { need: n, have });
        }
        let off = lh.data_off as usize + lh.data_len as usize;
        lh.data_len += n as u16;
        self.hm().pkt_len += n as u32;
        // SAFETY: off + n <= buf_len of that segment; the chain is uniquely
        // owned and the segment's buffer is not shared (checked above).
        Ok(unsafe { std::slice::from_raw_parts_mut(buf_of(last).add(off), n) })
    }

    /// Appends bytes at the tail.
    pub fn extend_from_slice(&mut self, b: &[u8]) -> Result<(), MbufError> {
        self.append(b.len())?.copy_from_slice(b);
        Ok(())
    }

    /// Grows the first segment's data towards the front by `n` bytes (for a header).
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], MbufError> {
        self.check_unshared()?;
        let have = self.h().data_off as usize;
        if n > have {
            return Err(MbufError::NoHeadroom { need: n, have });
        }
        let h = self.hm();
        h.data_off -= n as u16;
        h.data_len += n as u16;
        h.pkt_len += n as u32;
        Ok(&mut self.data_mut()[..n])
    }

    /// Removes `n` bytes from the front of the first segment.
    pub fn adj(&mut self, n: usize) -> Result<(), MbufError> {
        let have = self.h().data_len as usize;
        if n > have {
            return Err(MbufError::TooShort { need: n, have });
        }
        let h = self.hm();
        h.data_off += n as u16;
        h.data_len -= n as u16;
        h.pkt_len -= n as u32;
        Ok(())
    }

    /// Removes `n` bytes from the end of the last segment.
    pub fn trim(&mut self, n: usize) -> Result<(), MbufError> {
        let last = self.last_seg_hdr();
        // SAFETY: owned chain segment.
        let lh = unsafe { &mut *last };
        if n > lh.data_len as usize {
            return Err(MbufError::TooShort {
                need: n,
                have: lh.data_len as usize,
            });
        }
        lh.data_len -= n as u16;
        self.hm().pkt_len -= n as u32;
        Ok(())
    }

    fn last_seg_hdr(&self) -> *mut MbufHdr {
        let mut p = self.hdr.as_ptr();
        // SAFETY: the chain is a null-terminated list of live headers owned by self.
        unsafe {
            while !(*p).next.is_null() {
                p = (*p).next;
            }
        }
        p
    }

    /// Appends another packet's segments to this chain (`rte_pktmbuf_chain`).
    pub fn chain(&mut self, tail: Mbuf) {
        let tail_len = tail.pkt_len() as u32;
        let tail_segs = tail.nb_segs() as u16;
        let last = self.last_seg_hdr();
        let t = tail.into_raw();
        // SAFETY: `last` is our last segment; `t` is now owned by the chain.
        unsafe { (*last).next = t.as_ptr() };
        let h = self.hm();
        h.pkt_len += tail_len;
        h.nb_segs += tail_segs;
    }

    /// Detaches the chain after the first segment.
    pub fn split_first(&mut self) -> Option<Mbuf> {
        let next = self.h().next;
        let n = NonNull::new(next)?;
        let first_len = self.h().data_len as u32;
        let h = self.hm();
        let rest_len = h.pkt_len - first_len;
        let rest_segs = h.nb_segs - 1;
        h.next = std::ptr::null_mut();
        h.pkt_len = first_len;
        h.nb_segs = 1;
        // SAFETY: `n` was owned through our chain and is now detached.
        let mut rest = unsafe { Mbuf::from_hdr(n) };
        let rh = rest.hm();
        rh.pkt_len = rest_len;
        rh.nb_segs = rest_segs;
        Some(rest)
    }

    /// Iterates the segments' data.
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            cur: self.hdr.as_ptr(),
            _m: PhantomData,
        }
    }

    /// Per segment: (is it indirect, holders of the buffer its data lies
    /// in) — what a test or a tracer checks of a clone.
    pub fn seg_refs(&self) -> Vec<(bool, u16)> {
        let mut v = Vec::with_capacity(self.nb_segs());
        let mut p = self.hdr.as_ptr();
        while !p.is_null() {
            // SAFETY: a live segment of this chain; its direct is kept alive by it.
            unsafe {
                let b = base_of(p);
                v.push((
                    !(*p).direct.is_null(),
                    (*b).refcnt.load(std::sync::atomic::Ordering::Relaxed),
                ));
                p = (*p).next;
            }
        }
        v
    }

    /// Copies the whole chain into `out` (which is cleared first).
    pub fn copy_to_vec(&self, out: &mut Vec<u8>) {
        out.clear();
        for s in self.segments() {
            out.extend_from_slice(s.data);
        }
    }

    /// IOVA of this segment's first data byte (what a descriptor points at).
    #[inline(always)]
    pub fn data_iova(&self) -> u64 {
        self.buf_iova() + self.h().data_off as u64
    }

    /// IOVA of the buffer start (what an RX descriptor points at); for an
    /// indirect mbuf, its direct's buffer.
    #[inline(always)]
    pub fn buf_iova(&self) -> u64 {
        // SAFETY: the header, or the direct a live indirect keeps alive.
        unsafe { (*base_of(self.hdr.as_ptr())).buf_iova }
    }

    #[inline(always)]
    fn pool_ptr(&self) -> *const pool::PoolShared {
        self.h().pool
    }

    /// Sets a single-segment packet's data window: `len` bytes at `off`
    /// from the buffer start (a device wrote them there, e.g. the kernel
    /// into an AF_XDP UMEM frame). Errors when the window leaves the buffer.
    #[inline(always)]
    pub fn set_data_window(&mut self, off: usize, len: usize) -> Result<(), MbufError> {
        let have = self.h().buf_len as usize;
        if off + len > have || !self.h().next.is_null() {
            return Err(MbufError::NoTailroom {
                need: off + len,
                have,
            });
        }
        let h = self.hm();
        h.data_off = off as u16;
        h.data_len = len as u16;
        h.pkt_len = len as u32;
        Ok(())
    }

    /// Pool object index (stable identity for tests and tracing).
    pub fn index(&self) -> u32 {
        self.h().index
    }

    #[inline(always)]
    pub fn ol_flags(&self) -> u32 {
        self.h().ol_flags
    }
    #[inline(always)]
    pub fn set_ol_flags(&mut self, f: u32) {
        self.hm().ol_flags = f;
    }
    #[inline(always)]
    pub fn vlan_tci(&self) -> u16 {
        self.h().vlan_tci
    }
    #[inline(always)]
    pub fn set_vlan_tci(&mut self, v: u16) {
        self.hm().vlan_tci = v;
    }
    /// (l2_len, l3_len, l4_len) for offloads.
    #[inline(always)]
    pub fn tx_lens(&self) -> (u8, u8, u8) {
        let h = self.h();
        (h.l2_len, h.l3_len, h.l4_len)
    }
    #[inline(always)]
    pub fn set_tx_lens(&mut self, l2: u8, l3: u8, l4: u8) {
        let h = self.hm();
        h.l2_len = l2;
        h.l3_len = l3;
        h.l4_len = l4;
    }
    #[inline(always)]
    pub fn tso_segsz(&self) -> u16 {
        self.h().tso_segsz
    }
    #[inline(always)]
    pub fn set_tso_segsz(&mut self, v: u16) {
        self.hm().tso_segsz = v;
    }
    /// Linux `skb->priority` (0..=15 map to pfifo_fast bands).
    #[inline(always)]
    pub fn priority(&self) -> u8 {
        self.h().priority
    }
    #[inline(always)]
    pub fn set_priority(&mut self, p: u8) {
        self.hm().priority = p;
    }
    /// Flow hash (`skb->hash`); on a received packet with
    /// [`ol::RX_RSS_HASH`], the NIC's RSS hash (DPDK `mbuf->hash.rss`).
    #[inline(always)]
    pub fn hash(&self) -> u32 {
        self.h().hash
    }
    /// The RSS hash the NIC wrote back, if it hashed this packet.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        let h = self.h();
        (h.ol_flags & ol::RX_RSS_HASH != 0).then_some(h.hash)
    }
    #[inline(always)]
    pub fn set_hash(&mut self, h: u32) {
        self.hm().hash = h;
    }
    /// TX timestamp (TSC cycles) stamped by whoever transmits.
    #[inline(always)]
    pub fn tx_timestamp(&self) -> u64 {
        self.h().tx_ts
    }
    #[inline(always)]
    pub fn set_tx_timestamp(&mut self, ts: u64) {
        self.hm().tx_ts = ts;
    }
    #[inline(always)]
    pub fn user(&self) -> u64 {
        self.h().user
    }
    #[inline(always)]
    pub fn set_user(&mut self, v: u64) {
        self.hm().user = v;
    }
    /// Port and queue the packet arrived on.
    #[inline(always)]
    pub fn rx_port_queue(&self) -> (u16, u16) {
        (self.h().port, self.h().queue)
    }
    #[inline(always)]
    pub fn set_rx_port_queue(&mut self, port: u16, queue: u16) {
        let h = self.hm();
        h.port = port;
        h.queue = queue;
    }

    /// Charges `bytes` to a send-buffer account; they are released when this
    /// packet (all its segments) is freed — on TX completion or drop.
    ///
    /// The account must outlive the packet: keep it in an `Arc` the socket owns
    /// and do not free the socket's account while its packets are in flight
    /// (the runtime drains queues before dropping sockets).
    pub fn charge_wmem(&mut self, acct: &std::sync::Arc<WmemAccount>, bytes: u32) {
        acct.charge(bytes as u64);
        let h = self.hm();
        h.wmem = std::sync::Arc::as_ptr(acct);
        h.wmem_charge = bytes;
    }

    /// Bytes this packet holds charged to a send-buffer account.
    #[inline]
    pub fn wmem_charge(&self) -> u32 {
        if self.h().wmem.is_null() {
            0
        } else {
            self.h().wmem_charge
        }
    }

    /// Asks for a software transmit timestamp with key `key` (the part
    /// `sock_tx_timestamp` + `tskey` play in `__ip_append_data`).
    pub fn request_sw_tstamp(&mut self, key: u32) {
        let h = self.hm();
        h.ol_flags |= ol::TX_SW_TSTAMP;
        h.tskey = key;
    }

    /// The key of the timestamp this packet asked for, if it did.
    #[inline]
    pub fn tskey(&self) -> Option<u32> {
        (self.h().ol_flags & ol::TX_SW_TSTAMP != 0).then_some(self.h().tskey)
    }

    /// Plays `skb_tx_timestamp` → `skb_tstamp_tx`: reports `ns` to the
    /// socket this packet is charged to, once (the request is cleared).
    /// False when it asked for none or belongs to no socket.
    pub fn sw_tstamp(&mut self, ns: u64) -> bool {
        let h = self.hm();
        if h.ol_flags & ol::TX_SW_TSTAMP == 0 {
            return false;
        }
        h.ol_flags = (h.ol_flags & !ol::TX_SW_TSTAMP) | ol::TX_SW_TSTAMP_SENT;
        let (acct, key) = (h.wmem, h.tskey);
        if acct.is_null() {
            return false;
        }
        // SAFETY: `acct` is the account this live packet is charged to;
        // `charge_wmem`'s contract keeps it alive while the packet exists.
        unsafe { (*acct).push_tstamp(TxTimestamp { key, ns }) };
        true
    }

    /// Undoes [`Mbuf::sw_tstamp`] for a packet the driver then refused
    /// (it asks again, for the time it will really go).
    pub fn sw_tstamp_undo(&mut self) {
        let h = self.hm();
        if h.ol_flags & ol::TX_SW_TSTAMP_SENT == 0 {
            return;
        }
        let (acct, key) = (h.wmem, h.tskey);
        h.ol_flags = (h.ol_flags & !ol::TX_SW_TSTAMP_SENT) | ol::TX_SW_TSTAMP;
        if !acct.is_null() {
            // SAFETY: as in `sw_tstamp`.
            unsafe { (*acct).retract_tstamp(key) };
        }
    }

    /// Charges `bytes` to the account this packet is charged to (if any)
    /// on behalf of `to`, which releases them when freed: the segments of
    /// a software-segmented packet keep its socket's account informed (as
    /// `tcp_gso_segment` gives each segment the `tcp_wfree` destructor).
    pub fn share_wmem(&self, to: &mut Mbuf, bytes: u32) {
        let acct = self.h().wmem;
        if acct.is_null() || bytes == 0 {
            return;
        }
        // SAFETY: `acct` is the account this live packet is charged to;
        // `charge_wmem`'s contract keeps it alive while any packet charged
        // to it exists, which now includes `to`.
        unsafe { (*acct).charge(bytes as u64) };
        let h = to.hm();
        h.wmem = acct;
        h.wmem_charge = bytes;
    }
}

/// The header whose object holds `h`'s buffer: `h` itself, or for an
/// indirect mbuf its direct (`rte_mbuf_from_indirect`).
#[inline(always)]
fn base_of(h: *mut MbufHdr) -> *mut MbufHdr {
    // SAFETY: callers pass a live header; an indirect's `direct` is live
    // while the indirect is (it holds a reference).
    let d = unsafe { (*h).direct };
    if d.is_null() {
        h
    } else {
        d
    }
}

/// First byte of `h`'s buffer: right after the 128-byte header of the
/// object that holds it.
#[inline(always)]
fn buf_of(h: *mut MbufHdr) -> *mut u8 {
    // SAFETY: every object is a header followed by its buffer.
    unsafe { (base_of(h) as *mut u8).add(MBUF_HDR_SIZE) }
}

/// Whether segment `h`'s buffer can be seen through another handle.
#[inline(always)]
fn seg_shared(h: &MbufHdr) -> bool {
    !h.direct.is_null() || h.refcnt.load(std::sync::atomic::Ordering::Relaxed) > 1
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the chain; each segment goes back to its pool exactly once.
        unsafe { pool::free_chain(self.hdr.as_ptr()) }
    }
}

/// One segment's view, from [`Mbuf::segments`].
pub struct Seg<'a> {
    pub data: &'a [u8],
    pub iova: u64,
}

/// Iterator over a chain's segments.
#[derive(Clone)]
pub struct Segments<'a> {
    cur: *mut MbufHdr,
    _m: PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Seg<'a>;
    fn next(&mut self) -> Option<Seg<'a>> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: a live segment of a chain borrowed for 'a.
        unsafe {
            let h = &*self.cur;
            let p = buf_of(self.cur).add(h.data_off as usize);
            let seg = Seg {
                data: std::slice::from_raw_parts(p, h.data_len as usize),
                iova: (*base_of(self.cur)).buf_iova + h.data_off as u64,
            };
            self.cur = h.next;
            Some(seg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};

    fn pool(n: u32) -> Mempool {
        set_page_mode(PageMode::Small);
        Mempool::new(&PoolConfig {
            name: "chain".into(),
            size: n,
            data_room: 256,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn chains_carry_lengths_segments_and_free_whole() {
        let mut p = pool(8);
        let mut a = p.alloc().unwrap();
        a.extend_from_slice(&[1; 100]).unwrap();
        let mut b = p.alloc().unwrap();
        b.extend_from_slice(&[2; 200]).unwrap();
        let mut c = p.alloc().unwrap();
        c.extend_from_slice(&[3; 50]).unwrap();
        b.chain(c);
        a.chain(b);
        assert_eq!(a.pkt_len(), 350);
        assert_eq!(a.nb_segs(), 3);
        assert_eq!(a.data_len(), 100);
        let lens: Vec<usize> = a.segments().map(|s| s.data.len()).collect();
        assert_eq!(lens, vec![100, 200, 50]);
        // IOVAs point into each segment's own buffer.
        let iovas: Vec<u64> = a.segments().map(|s| s.iova).collect();
        assert_eq!(iovas[0], a.data_iova());
        assert!(iovas.windows(2).all(|w| w[0] != w[1]));
        // Appending goes to the last segment (it has 206 bytes of room).
        a.append(6).unwrap().copy_from_slice(&[9; 6]);
        assert_eq!(a.pkt_len(), 356);
        assert!(matches!(a.append(1000), Err(MbufError::NoTailroom { .. })));
        a.trim(6).unwrap();
        let mut all = Vec::new();
        a.copy_to_vec(&mut all);
        assert_eq!(all.len(), 350);
        assert_eq!((all[0], all[100], all[300]), (1, 2, 3));
        // Split off the tail, then free everything: the pool is whole again.
        let rest = a.split_first().unwrap();
        assert_eq!((a.pkt_len(), a.nb_segs()), (100, 1));
        assert_eq!((rest.pkt_len(), rest.nb_segs()), (250, 2));
        assert_eq!(p.stats().in_use, 3);
        drop(rest);
        assert_eq!(p.stats().in_use, 1);
        drop(a);
        assert_eq!(p.stats().in_use, 0);
    }

    #[test]
    fn headroom_prepend_adj_and_errors() {
        let mut p = pool(2);
        let mut m = p.alloc().unwrap();
        m.extend_from_slice(&[0xaa; 20]).unwrap();
        m.prepend(14).unwrap().copy_from_slice(&[0xee; 14]);
        assert_eq!(m.data_len(), 34);
        assert_eq!(m.headroom(), 128 - 14);
        assert_eq!(m.data()[0], 0xee);
        m.adj(14).unwrap();
        assert_eq!(m.data()[0], 0xaa);
        assert!(matches!(m.prepend(500), Err(MbufError::NoHeadroom { .. })));
        assert!(matches!(m.adj(100), Err(MbufError::TooShort { .. })));
        assert!(matches!(
            m.set_len(10_000),
            Err(MbufError::NoTailroom { .. })
        ));
    }

    #[test]
    fn wmem_charge_is_released_on_free() {
        let mut p = pool(4);
        let acct = std::sync::Arc::new(WmemAccount::new());
        let mut m = p.alloc().unwrap();
        m.charge_wmem(&acct, 1000);
        assert_eq!(acct.in_flight(), 1000);
        // Freed on another thread (a cross-lcore completion): still released.
        std::thread::spawn(move || drop(m)).join().unwrap();
        assert_eq!(acct.in_flight(), 0);
    }

    /// `rte_pktmbuf_attach` / `skb_clone`: an indirect mbuf reads the
    /// direct's bytes without a copy; both are read-only while attached;
    /// the buffer goes home only when its last holder lets go, whichever
    /// goes first, and the pool counts each object once.
    #[test]
    fn indirect_mbufs_share_the_buffer_and_count_holders() {
        let mut p = pool(8);
        let mut d = p.alloc().unwrap();
        d.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        d.adj(1).unwrap(); // data 2..=8
        let i1 = p.alloc_indirect(&d, 2, 4).unwrap();
        assert_eq!(i1.data(), &[4, 5, 6, 7]);
        assert_eq!(
            i1.data_iova(),
            d.data_iova() + 2,
            "DMA sees the direct's bytes"
        );
        assert!(i1.is_indirect() && i1.is_shared() && d.is_shared());
        assert_eq!((d.refcnt(), i1.refcnt()), (2, 2));
        // Attaching to an indirect attaches to its direct.
        let i2 = p.alloc_indirect(&i1, 1, 2).unwrap();
        assert_eq!(i2.data(), &[5, 6]);
        assert_eq!(d.refcnt(), 3);
        // Writes through any holder are refused while shared.
        assert_eq!(d.append(1).err(), Some(MbufError::Shared));
        assert_eq!(d.prepend(1).err(), Some(MbufError::Shared));
        let mut i1 = i1;
        assert_eq!(i1.extend_from_slice(&[0]).err(), Some(MbufError::Shared));
        assert_eq!(i1.try_data_mut().err(), Some(MbufError::Shared));
        assert_eq!(d.try_data_mut().err(), Some(MbufError::Shared));
        assert!(matches!(
            p.alloc_indirect(&d, 5, 3),
            Err(MbufError::Range {
                off: 5,
                len: 3,
                have: 7
            })
        ));
        // Header-only edits stay allowed (TCP trims an acked head).
        d.adj(1).unwrap();
        assert_eq!(i1.data(), &[4, 5, 6, 7], "the clone keeps its window");
        assert_eq!(p.stats().in_use, 3);
        drop(i1);
        assert_eq!(d.refcnt(), 2);
        assert_eq!(p.stats().in_use, 2);
        // The direct's handle first: the buffer stays out for i2.
        drop(d);
        assert_eq!(p.stats().in_use, 2);
        assert_eq!(i2.data(), &[5, 6]);
        drop(i2);
        assert_eq!(p.stats().in_use, 0);
        // Every object came back exactly once, plain and writable again.
        let all: Vec<Mbuf> = std::iter::from_fn(|| p.alloc()).collect();
        assert_eq!(all.len(), 8);
        let mut a: Vec<usize> = all.iter().map(|m| m.buf_iova() as usize).collect();
        a.sort_unstable();
        a.dedup();
        assert_eq!(a.len(), 8);
        for mut m in all {
            assert!(!m.is_shared() && m.refcnt() == 1);
            m.extend_from_slice(&[9; 16]).unwrap();
        }
        assert_eq!(p.stats().in_use, 0);
    }

    /// Chains of indirects (a super-segment over write-queue buffers)
    /// free in bulk through a burst, and the direct is writable again.
    #[test]
    fn a_chain_of_indirects_frees_whole() {
        let mut p = pool(16);
        let mut wq: Vec<Mbuf> = (0..4)
            .map(|k| {
                let mut m = p.alloc().unwrap();
                m.extend_from_slice(&[k as u8; 100]).unwrap();
                m
            })
            .collect();
        let mut hdr = p.alloc().unwrap();
        hdr.extend_from_slice(&[0xee; 54]).unwrap();
        let mut rest: Option<Mbuf> = None;
        for d in wq.iter().rev() {
            let mut i = p.alloc_indirect(d, 10, 90).unwrap();
            if let Some(r) = rest.take() {
                i.chain(r);
            }
            rest = Some(i);
        }
        hdr.chain(rest.unwrap());
        assert_eq!((hdr.pkt_len(), hdr.nb_segs()), (54 + 360, 5));
        let mut v = Vec::new();
        hdr.copy_to_vec(&mut v);
        assert_eq!((v[54], v[54 + 90], v[54 + 359]), (0, 1, 3));
        assert_eq!(
            hdr.seg_refs(),
            vec![(false, 1), (true, 2), (true, 2), (true, 2), (true, 2)]
        );
        let mut b = Burst::new();
        b.push(hdr).unwrap();
        assert_eq!(p.stats().in_use, 9);
        drop(b);
        assert_eq!(p.stats().in_use, 4);
        for m in wq.iter_mut() {
            assert_eq!(m.refcnt(), 1);
            m.append(1).unwrap()[0] = 7;
        }
    }

    /// Foreign frees (DESIGN: a buffer may travel to another lcore): an
    /// indirect, or a direct still shared, dropped on another thread is
    /// handed home untouched (the count is written by the owner only) and
    /// the owner drops the reference when it drains its return rings.
    #[test]
    fn shared_buffers_freed_on_another_thread_go_home_through_the_owner() {
        let mut p = pool(8);
        let mut d = p.alloc().unwrap();
        d.extend_from_slice(&[5; 64]).unwrap();
        let i1 = p.alloc_indirect(&d, 0, 32).unwrap();
        let i2 = p.alloc_indirect(&d, 32, 32).unwrap();
        std::thread::spawn(move || drop(i1)).join().unwrap();
        // Not dropped yet: the owner has not drained.
        assert_eq!(d.refcnt(), 3);
        // The direct's own handle goes on another thread too (still shared).
        std::thread::spawn(move || drop(d)).join().unwrap();
        assert_eq!(i2.refcnt(), 3);
        // The owner's allocations drain the rings once the stack runs dry.
        let held: Vec<Mbuf> = std::iter::from_fn(|| p.alloc()).collect();
        // 8 objects: i2 and its direct are still out; i1 came home.
        assert_eq!(held.len(), 6);
        assert_eq!(i2.refcnt(), 1, "both foreign references were dropped");
        drop(held);
        drop(i2);
        assert_eq!(p.stats().in_use, 0);
        let all: Vec<Mbuf> = std::iter::from_fn(|| p.alloc()).collect();
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn attaching_from_another_threads_pool_is_refused() {
        let mut p = pool(4);
        let mut d = p.alloc().unwrap();
        d.extend_from_slice(&[1; 8]).unwrap();
        let r = std::thread::spawn(move || {
            let mut q = pool(4);
            let r = q.alloc_indirect(&d, 0, 8).err();
            (r, d)
        })
        .join()
        .unwrap();
        assert_eq!(r.0, Some(MbufError::ForeignPool));
        assert_eq!(r.1.refcnt(), 1);
    }
}
