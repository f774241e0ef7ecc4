//! The mempool: fixed-size objects in one DMA region, a per-owner free stack,
//! and return rings for frees from other threads: each foreign thread that
//! frees into a pool claims one single-producer ring of it once (DPDK gives
//! each lcore its own mempool cache for the same reason) and from then on
//! returns buffers with plain stores, no lock and no read-modify-write; the
//! owner drains the rings when its stack runs low. Past
//! [`RETURN_RINGS`] foreign threads, a locked list takes the rest (counted:
//! [`MempoolStats::locked_returns`]).

use super::{Burst, Mbuf, MbufError, MbufHdr, MBUF_HDR_SIZE};
use crate::eal::dma::{has_mappers, iova_mode, page_mode, DmaError, DmaRegion, IovaMode, PageMode};
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
thread_local! {
    static TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// A process-unique id of the calling thread (cheap: one TLS load).
#[inline(always)]
pub(crate) fn thread_token() -> u64 {
    TOKEN.with(|t| {
        let v = t.get();
        if v != 0 {
            v
        } else {
            let v = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
            t.set(v);
            v
        }
    })
}

/// Mempool set-up parameters.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub name: String,
    /// Number of buffers.
    pub size: u32,
    /// Bytes reserved before the data for headers (default 128, DPDK's `RTE_PKTMBUF_HEADROOM`).
    pub headroom: u16,
    /// Bytes of data room after the headroom (default 2048).
    pub data_room: u16,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            name: "pool".into(),
            size: 8192,
            headroom: 128,
            data_room: 2048,
        }
    }
}

/// Mempool errors.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    #[error("mempool '{name}': {why}")]
    Config { name: String, why: String },
    #[error("mempool '{name}': {source}")]
    Dma {
        name: String,
        #[source]
        source: DmaError,
    },
}

pub(crate) struct PoolShared {
    name: String,
    region: DmaRegion,
    obj_size: usize,
    /// No object crosses a page boundary.
    page_bound: bool,
    n: u32,
    headroom: u16,
    buf_len: u16,
    owner: u64,
    /// Owner-only free stack.
    free: UnsafeCell<Vec<NonNull<MbufHdr>>>,
    /// Frees from other threads, one ring per thread; the owner drains them
    /// when its stack runs low.
    rings: [ReturnRing; RETURN_RINGS],
    /// Frees from threads beyond the rings; drained with them.
    returns: Mutex<Vec<NonNull<MbufHdr>>>,
    returns_len: AtomicUsize,
    /// Single-writer counters (owner): objects handed out / returned locally.
    allocs: AtomicU64,
    frees_local: AtomicU64,
    /// Written under the `returns` lock (frees through the locked list).
    frees_remote: AtomicU64,
    /// Owner-written: requests the pool could not satisfy (DPDK's
    /// `rte_mempool_debug_stats::get_fail_bulk`).
    alloc_fails: AtomicU64,
}

// SAFETY: `free` is touched only by the owning thread (checked by token on the
// free path; the `Mempool` handle that allocates is !Send so it never leaves
// that thread); `returns` is behind a Mutex; counters are atomics.
unsafe impl Sync for PoolShared {}
// SAFETY: see above; the raw pointers point into `region`, which moves with it.
unsafe impl Send for PoolShared {}

/// Counters that prove no buffer is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MempoolStats {
    pub size: u32,
    pub available: u64,
    pub in_use: u64,
    /// Allocations (single or bulk) that found the pool dry, each counted
    /// once: the caller got nothing and went on (a pool never blocks).
    pub alloc_fails: u64,
    /// Buffers freed by threads other than the owner (they came home
    /// through a return ring or the locked list).
    pub remote_frees: u64,
    /// Of those, the ones that took the locked list: more than
    /// [`RETURN_RINGS`] threads freed into this pool.
    pub locked_returns: u64,
}

/// A pool of packet buffers owned by the thread (lcore) that created it.
///
/// The handle is `!Send`: allocation happens only on the owning lcore, without
/// atomics. Mbufs themselves may travel; a foreign free goes home through the
/// freeing thread's return ring.
pub struct Mempool {
    shared: Arc<PoolShared>,
    _not_send: PhantomData<*const ()>,
}

/// A thread-safe read-only view of a pool's counters.
#[derive(Clone)]
pub struct PoolStatsHandle(Arc<PoolShared>);

impl PoolStatsHandle {
    pub fn stats(&self) -> MempoolStats {
        stats_of(&self.0)
    }
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

fn stats_of(s: &PoolShared) -> MempoolStats {
    let allocs = s.allocs.load(Ordering::Acquire);
    let ring_frees: u64 = s
        .rings
        .iter()
        .map(|r| r.frees.load(Ordering::Acquire))
        .sum();
    let locked = s.frees_remote.load(Ordering::Acquire);
    let frees = s.frees_local.load(Ordering::Acquire) + ring_frees + locked;
    let in_use = allocs.saturating_sub(frees);
    MempoolStats {
        size: s.n,
        available: s.n as u64 - in_use.min(s.n as u64),
        in_use,
        alloc_fails: s.alloc_fails.load(Ordering::Relaxed),
        remote_frees: ring_frees + locked,
        locked_returns: locked,
    }
}

impl Mempool {
    /// Creates a pool of `cfg.size` buffers in DMA memory (hugepages or the
    /// 4 KiB fallback, per the process page mode).
    pub fn new(cfg: &PoolConfig) -> Result<Mempool, MempoolError> {
        Self::new_in(cfg, page_mode(), iova_mode())
    }

    /// As [`Mempool::new`] with explicit page and IOVA modes. No buffer
    /// crosses a page boundary (see `place_object`), so in IOVA mode `pa`
    /// the pool works on 4 KiB pages that are not physically adjacent.
    pub fn new_in(
        cfg: &PoolConfig,
        pages: PageMode,
        iova: IovaMode,
    ) -> Result<Mempool, MempoolError> {
        let err = |why: String| MempoolError::Config {
            name: cfg.name.clone(),
            why,
        };
        if cfg.size == 0 {
            return Err(err("size must be at least 1 buffer".into()));
        }
        if cfg.size > (1 << 24) {
            return Err(err(format!("size {} exceeds 16M buffers", cfg.size)));
        }
        let buf_len = cfg.headroom as usize + cfg.data_room as usize;
        if buf_len > u16::MAX as usize || cfg.data_room < 64 {
            return Err(err(format!(
                "headroom {} + data room {} must be at most 65535 and data room at least 64",
                cfg.headroom, cfg.data_room
            )));
        }
        let obj_size = (MBUF_HDR_SIZE + buf_len).div_ceil(64) * 64;
        let n = cfg.size as usize;
        // Page-bound layout where a device could be handed a buffer across
        // two pages that are not adjacent for it: always on hugepages (it
        // costs one object per 2 MiB), and on 4 KiB pages in IOVA mode pa
        // or when a device reaches memory through an IOMMU (VFIO mappers;
        // QEMU's vIOMMU maps a DMA one page at a time). In IOVA mode va with
        // only software ports and device models, 4 KiB-page pools stay
        // packed: one buffer per 4 KiB page costs 1.8x the memory and the
        // TLB reach.
        let bound_small = iova == IovaMode::Pa || has_mappers();
        let bound = move |page: usize| page > 4096 || bound_small;
        let region = DmaRegion::alloc_paged(pages, iova, |page| {
            if bound(page) {
                pool_bytes(obj_size, n, page)
            } else {
                obj_size * n
            }
        })
        .map_err(|e| MempoolError::Dma {
            name: cfg.name.clone(),
            source: e,
        })?;
        let page = region.page_size();
        let page_bound = bound(page);
        if obj_size > page && !region.iova_contiguous() {
            return Err(err(format!(
                "a {obj_size}-byte buffer does not fit one {} KiB page, and this memory is \
                 not IOVA-contiguous (IOVA mode pa): use hugepages, IOVA mode va, or a \
                 smaller data_room",
                page / 1024
            )));
        }
        let mut free = Vec::with_capacity(n);
        let base = region.as_ptr();
        let shared_ptr_placeholder: *const PoolShared = std::ptr::null();
        let mut off = 0usize;
        for i in 0..n {
            if page_bound {
                off = place_object(off, obj_size, page);
            }
            debug_assert!(off + obj_size <= region.len());
            // SAFETY: off + obj_size <= region length (pool_bytes reserved a
            // page per objs_per_page objects); objects are 64-aligned.
            let hp = unsafe { base.add(off) } as *mut MbufHdr;
            let buf_iova = region.iova_at(off + MBUF_HDR_SIZE);
            off += obj_size;
            // SAFETY: `hp` is inside the region, aligned, and not yet shared.
            unsafe {
                hp.write(MbufHdr {
                    buf_iova,
                    pool: shared_ptr_placeholder,
                    next: std::ptr::null_mut(),
                    data_off: cfg.headroom,
                    data_len: 0,
                    pkt_len: 0,
                    nb_segs: 1,
                    vlan_tci: 0,
                    ol_flags: 0,
                    l2_len: 0,
                    l3_len: 0,
                    l4_len: 0,
                    priority: 0,
                    tso_segsz: 0,
                    buf_len: buf_len as u16,
                    hash: 0,
                    index: i as u32,
                    tx_ts: 0,
                    user: 0,
                    wmem: std::ptr::null(),
                    wmem_charge: 0,
                    port: 0,
                    queue: 0,
                    tskey: 0,
                    refcnt: std::sync::atomic::AtomicU16::new(1),
                    direct: std::ptr::null_mut(),
                });
            }
            free.push(NonNull::new(hp).expect("region pointer is non-null"));
        }
        // Last object first out, so allocation order is 0, 1, 2, …
        free.reverse();
        let shared = Arc::new(PoolShared {
            name: cfg.name.clone(),
            region,
            obj_size,
            page_bound,
            n: cfg.size,
            headroom: cfg.headroom,
            buf_len: buf_len as u16,
            owner: thread_token(),
            free: UnsafeCell::new(free),
            rings: std::array::from_fn(|_| ReturnRing::default()),
            returns: Mutex::new(Vec::with_capacity(cfg.size as usize)),
            returns_len: AtomicUsize::new(0),
            allocs: AtomicU64::new(0),
            frees_local: AtomicU64::new(0),
            frees_remote: AtomicU64::new(0),
            alloc_fails: AtomicU64::new(0),
        });
        let sp = Arc::as_ptr(&shared);
        // SAFETY: objects are not handed out yet; only this thread sees them.
        unsafe {
            for h in (*shared.free.get()).iter() {
                (*h.as_ptr()).pool = sp;
            }
        }
        Ok(Mempool {
            shared,
            _not_send: PhantomData,
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Number of buffers.
    pub fn size(&self) -> u32 {
        self.shared.n
    }

    /// Bytes of data room after the default headroom.
    pub fn data_room(&self) -> usize {
        self.shared.buf_len as usize - self.shared.headroom as usize
    }

    /// Bytes one object takes (header and buffer); objects start on 64-byte
    /// boundaries and never cross a page when they fit one.
    pub fn obj_size(&self) -> usize {
        self.shared.obj_size
    }

    /// The DMA region holding every object.
    pub fn region(&self) -> &DmaRegion {
        &self.shared.region
    }

    /// Available / in-use counters.
    pub fn stats(&self) -> MempoolStats {
        stats_of(&self.shared)
    }

    /// A `Send + Sync` handle to read the counters from another thread.
    pub fn stats_handle(&self) -> PoolStatsHandle {
        PoolStatsHandle(self.shared.clone())
    }

    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn free_stack(&self) -> &mut Vec<NonNull<MbufHdr>> {
        // SAFETY: only the owning thread holds a `Mempool` (it is !Send).
        unsafe { self.shared.free_stack() }
    }

    /// A request the pool could not satisfy (owner-only: plain store).
    #[cold]
    fn count_fail(&self) {
        let f = &self.shared.alloc_fails;
        f.store(f.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    #[cold]
    fn drain_returns(&self) {
        self.shared.drain_returns()
    }

    #[inline(always)]
    fn reset(h: NonNull<MbufHdr>, headroom: u16) -> Mbuf {
        Self::reset_len(h, headroom, 0)
    }

    /// A fresh single-segment mbuf of `len` bytes (at most the data room).
    #[inline(always)]
    fn reset_len(h: NonNull<MbufHdr>, headroom: u16, len: u16) -> Mbuf {
        // SAFETY: `h` just came off the free stack: a live object nobody owns.
        unsafe {
            let p = &mut *h.as_ptr();
            p.next = std::ptr::null_mut();
            p.data_off = headroom;
            p.data_len = len;
            p.pkt_len = len as u32;
            p.nb_segs = 1;
            p.vlan_tci = 0;
            p.ol_flags = 0;
            p.l2_len = 0;
            p.l3_len = 0;
            p.l4_len = 0;
            p.priority = 0;
            p.tso_segsz = 0;
            p.hash = 0;
            p.tx_ts = 0;
            p.user = 0;
            p.wmem = std::ptr::null();
            p.wmem_charge = 0;
            Mbuf::from_hdr(h)
        }
    }

    /// One buffer, or `None` when the pool is empty. Data bytes keep what the
    /// buffer last held (so prebuilt frames survive a free/alloc cycle).
    #[inline(always)]
    pub fn alloc(&mut self) -> Option<Mbuf> {
        // SAFETY: only the owning thread holds a `Mempool` (it is !Send).
        unsafe { self.shared.alloc_owner() }
    }

    /// True when [`Mempool::alloc_indirect`] may attach to `m`: its buffer
    /// (its direct's, for an indirect) belongs to a pool of this pool's
    /// owner thread.
    pub fn may_attach(&self, m: &Mbuf) -> bool {
        let mh = m.hdr.as_ptr();
        // SAFETY: `mh` is `m`'s live header; its direct (if any) is kept
        // alive by it, and a live buffer's pool is live.
        unsafe {
            let d = (*mh).direct;
            let d = if d.is_null() { mh } else { d };
            (*(*d).pool).owner == self.shared.owner
        }
    }

    /// An indirect mbuf whose data is the `len` bytes at `off` of `m`'s
    /// first segment's data, sharing `m`'s buffer instead of copying it:
    /// plays the part of `rte_pktmbuf_attach` (the new mbuf's data
    /// pointer, IOVA and lengths are `m`'s, `m`'s buffer refcount grows by
    /// one; attaching to an indirect attaches to its direct, as
    /// `rte_pktmbuf_attach` does through `rte_mbuf_from_indirect`) and of
    /// `skb_clone` (`dataref` + 1, the head shared). Freeing the indirect
    /// detaches it (`rte_pktmbuf_detach`): the direct's count drops, and
    /// the direct goes home when no holder is left. While attached, both
    /// handles' bytes are read-only ([`Mbuf::is_shared`]).
    ///
    /// Both this pool and `m`'s must belong to the calling thread, so the
    /// count is only ever written there, with plain stores
    /// ([`MbufError::ForeignPool`] otherwise).
    pub fn alloc_indirect(&mut self, m: &Mbuf, off: usize, len: usize) -> Result<Mbuf, MbufError> {
        let have = m.data_len();
        if off.checked_add(len).is_none_or(|e| e > have) {
            return Err(MbufError::Range { off, len, have });
        }
        let mh = m.hdr.as_ptr();
        // SAFETY: `mh` is `m`'s live header; its direct (if any) is kept
        // alive by it, and so is the pool it points at.
        let (d, doff) = unsafe {
            let d = (*mh).direct;
            let d = if d.is_null() { mh } else { d };
            (d, (*mh).data_off as usize + off)
        };
        // SAFETY: as above.
        let dh = unsafe { &*d };
        // SAFETY: a live buffer's pool is live (a pool with buffers out is never freed).
        if unsafe { (*dh.pool).owner } != self.shared.owner {
            return Err(MbufError::ForeignPool);
        }
        let r = dh.refcnt.load(Ordering::Relaxed);
        if r == u16::MAX {
            return Err(MbufError::RefcntOverflow);
        }
        let Some(mut mi) = self.alloc() else {
            return Err(MbufError::PoolEmpty);
        };
        // Owner thread (checked above): a plain store, no RMW.
        dh.refcnt.store(r + 1, Ordering::Relaxed);
        let ih = mi.hm();
        ih.direct = d;
        ih.buf_len = dh.buf_len;
        ih.data_off = doff as u16;
        ih.data_len = len as u16;
        ih.pkt_len = len as u32;
        Ok(mi)
    }

    /// Appends `n` buffers to `out`, all or nothing (`rte_pktmbuf_alloc_bulk`).
    #[inline]
    pub fn alloc_bulk(&mut self, out: &mut Burst, n: usize) -> bool {
        self.alloc_bulk_len(out, n, 0)
    }

    /// [`Mempool::alloc_bulk`] with every buffer's length already `len`
    /// (its bytes are what the buffer held: a prebuilt frame): the
    /// generator's line-rate loop, one pass over the burst instead of two.
    /// False (nothing taken) when the pool has fewer than `n` buffers or
    /// `len` exceeds [`Mempool::data_room`].
    #[inline]
    pub fn alloc_bulk_len(&mut self, out: &mut Burst, n: usize, len: usize) -> bool {
        if out.room() < n || len > self.data_room() {
            return false;
        }
        if self.free_stack().len() < n {
            self.drain_returns();
            if self.free_stack().len() < n {
                self.count_fail();
                return false;
            }
        }
        let headroom = self.shared.headroom;
        let st = self.free_stack();
        let start = st.len() - n;
        // Room was checked above: the burst takes all n, top of the stack first.
        out.extend_from_fn(n, |i| {
            Self::reset_len(st[start + n - 1 - i], headroom, len as u16)
        });
        st.truncate(start);
        let a = &self.shared.allocs;
        a.store(a.load(Ordering::Relaxed) + n as u64, Ordering::Release);
        true
    }

    /// Calls `f` once on every buffer (DPDK's `obj_init`): use it to prebuild
    /// frame templates. Needs the pool full (every buffer available).
    pub fn init_all(&mut self, mut f: impl FnMut(&mut Mbuf)) -> Result<(), MempoolError> {
        self.drain_returns();
        if self.free_stack().len() != self.shared.n as usize {
            return Err(MempoolError::Config {
                name: self.shared.name.clone(),
                why: "init_all needs every buffer in the pool".into(),
            });
        }
        let all: Vec<NonNull<MbufHdr>> = self.free_stack().clone();
        for h in all {
            let mut m = Self::reset(h, self.shared.headroom);
            f(&mut m);
            std::mem::forget(m);
        }
        Ok(())
    }
}

impl PoolShared {
    /// The owner's free stack.
    ///
    /// # Safety
    /// Only the pool's owner thread may call it, and no reference it
    /// returns may outlive the call that uses it.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn free_stack(&self) -> &mut Vec<NonNull<MbufHdr>> {
        &mut *self.free.get()
    }

    #[cold]
    fn drain_returns(&self) {
        // SAFETY: callers are on the owner thread (see `alloc_owner`, `Mempool`).
        let st = unsafe { self.free_stack() };
        let start = st.len();
        let mut tagged = false;
        for r in &self.rings {
            if let Some(q) = r.ring.get() {
                // SAFETY: the owner is the rings' only consumer.
                tagged |= unsafe { q.drain_into(st) };
            }
        }
        if self.returns_len.load(Ordering::Acquire) != 0 {
            let mut r = self.returns.lock().unwrap_or_else(|e| e.into_inner());
            tagged |= r.iter().any(|p| p.as_ptr() as usize & REF_TAG != 0);
            st.extend(r.drain(..));
            self.returns_len.store(0, Ordering::Release);
        }
        if tagged {
            self.drop_returned_refs(start);
        }
    }

    /// The references foreign threads gave up on shared buffers (tagged
    /// returns, from `start` of the free stack): out of the stack, and
    /// dropped here on the owner thread ([`put_local`]), which puts back
    /// whatever buffer that frees. No allocation: the stack never holds
    /// more than the pool's objects.
    #[cold]
    fn drop_returned_refs(&self, start: usize) {
        let mut i = start;
        loop {
            // SAFETY: owner thread (see `drain_returns`); the borrow ends
            // before `put_local` pushes onto the stack.
            let st = unsafe { self.free_stack() };
            if i >= st.len() {
                break;
            }
            let p = st[i].as_ptr() as usize;
            if p & REF_TAG == 0 {
                i += 1;
                continue;
            }
            st.swap_remove(i);
            // SAFETY: a foreign thread gave this reference up for us to
            // drop; we are the owner of its pool (and of its direct's).
            unsafe { put_local((p & !REF_TAG) as *mut MbufHdr) };
        }
    }

    /// A foreign thread's free: into the ring it claimed (claiming one the
    /// first time), else the locked list.
    ///
    /// # Safety
    /// `nn` is a buffer of this pool the caller gives up; `token` is the
    /// calling thread's and is not the owner's.
    /// `count`: the buffer is free now (false for a tagged reference,
    /// which the owner counts when it frees).
    #[inline]
    unsafe fn free_remote(&self, nn: NonNull<MbufHdr>, token: u64, count: bool) {
        let n = count as u64;
        for r in &self.rings {
            if r.token.load(Ordering::Relaxed) == token {
                // The claim published the ring before the token (see `claim`).
                if let Some(q) = r.ring.get() {
                    // SAFETY: this thread holds the ring's token: its only producer.
                    q.push(nn);
                    let f = &r.frees;
                    f.store(f.load(Ordering::Relaxed) + n, Ordering::Release);
                    return;
                }
            }
        }
        if let Some(r) = self.claim(token) {
            // SAFETY: as above, the ring is this thread's now.
            r.ring.get().expect("claimed rings are built").push(nn);
            let f = &r.frees;
            f.store(f.load(Ordering::Relaxed) + n, Ordering::Release);
            return;
        }
        let mut r = self.returns.lock().unwrap_or_else(|e| e.into_inner());
        r.push(nn);
        self.returns_len.store(r.len(), Ordering::Release);
        let f = &self.frees_remote;
        f.store(f.load(Ordering::Relaxed) + n, Ordering::Release);
    }

    /// Once per (pool, foreign thread): takes a free return ring for
    /// `token`, building its storage (room for every buffer of the pool,
    /// so a push never finds it full). None when every ring is taken.
    #[cold]
    fn claim(&self, token: u64) -> Option<&ReturnRing> {
        for r in &self.rings {
            if r.token.load(Ordering::Acquire) != 0 {
                continue;
            }
            // The token is claimed with a CAS (once per thread and pool, not
            // per packet); CLAIMING keeps other threads off while the ring is built.
            if r.token
                .compare_exchange(0, CLAIMING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                r.ring.get_or_init(|| RawRing::new(self.n as usize));
                r.token.store(token, Ordering::Release);
                return Some(r);
            }
        }
        None
    }

    /// One buffer from the free stack (draining the return list when empty).
    ///
    /// # Safety
    /// The calling thread must be the pool's owner.
    #[inline(always)]
    unsafe fn alloc_owner(&self) -> Option<Mbuf> {
        let h = match self.free_stack().pop() {
            Some(h) => h,
            None => {
                self.drain_returns();
                let Some(h) = self.free_stack().pop() else {
                    // A request the pool could not satisfy (owner-only: plain store).
                    let f = &self.alloc_fails;
                    f.store(f.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    return None;
                };
                h
            }
        };
        let a = &self.allocs;
        a.store(a.load(Ordering::Relaxed) + 1, Ordering::Release);
        Some(Mempool::reset(h, self.headroom))
    }
}

/// Where a pool's objects live: for a device that addresses the pool's
/// memory by offset rather than by IOVA (an AF_XDP UMEM, which is the pool's
/// region registered with the kernel). Each object is an [`MbufHdr`] of
/// [`MBUF_HDR_SIZE`] bytes followed by its buffer, `obj_size` bytes in all,
/// at a 64-byte-aligned offset of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolArea {
    /// Address of the region's first byte (page-aligned: it is a mapping).
    pub base: usize,
    pub len: usize,
    pub obj_size: usize,
    /// Page size of the region (4 KiB, or 2 MiB on hugepages).
    pub page_size: usize,
    /// True when no object crosses a page boundary (the pool was laid out
    /// page-bound; see `place_object`).
    pub page_bound: bool,
    /// Buffers in the pool (object indexes are `0..size`).
    pub size: u32,
    /// The pool's identity (compare with [`super::Mbuf::pool_id`]).
    pub id: usize,
}

fn area_of(s: &Arc<PoolShared>) -> PoolArea {
    let page = s.region.page_size();
    PoolArea {
        base: s.region.as_ptr() as usize,
        len: s.region.len(),
        obj_size: s.obj_size,
        page_size: page,
        page_bound: page > 4096 || s.obj_size > page || s.page_bound,
        size: s.n,
        id: Arc::as_ptr(s) as usize,
    }
}

/// A `Send` handle to a pool that keeps it (and its memory) alive and
/// allocates only on the pool's owner thread: what a queue shared with the
/// kernel holds to refill buffers from the pool its memory belongs to.
#[derive(Clone)]
pub struct PoolRef(Arc<PoolShared>);

impl PoolRef {
    /// The pool's memory.
    pub fn area(&self) -> PoolArea {
        area_of(&self.0)
    }

    /// True when the calling thread owns the pool (and so may allocate).
    #[inline(always)]
    pub fn is_owner(&self) -> bool {
        self.0.owner == thread_token()
    }

    /// One buffer, or `None` when the pool is empty or the calling thread
    /// does not own the pool.
    #[inline(always)]
    pub fn alloc(&self) -> Option<Mbuf> {
        if !self.is_owner() {
            return None;
        }
        // SAFETY: the owner check above.
        unsafe { self.0.alloc_owner() }
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn stats(&self) -> MempoolStats {
        stats_of(&self.0)
    }
}

impl Mempool {
    /// The pool's memory (see [`PoolArea`]).
    pub fn area(&self) -> PoolArea {
        area_of(&self.shared)
    }

    /// A `Send` handle that allocates on this (the owner) thread only.
    pub fn pool_ref(&self) -> PoolRef {
        PoolRef(self.shared.clone())
    }
}

impl Mbuf {
    /// The identity of the pool this buffer belongs to ([`PoolArea::id`]).
    #[inline(always)]
    pub fn pool_id(&self) -> usize {
        self.pool_ptr() as usize
    }

    /// A handle to this buffer's pool.
    pub fn pool_ref(&self) -> PoolRef {
        let p = self.pool_ptr();
        // SAFETY: `p` is `Arc::as_ptr` of the pool's live `Arc<PoolShared>`
        // (set at creation); a pool with buffers out is never freed, so the
        // count is positive while this buffer exists.
        unsafe {
            Arc::increment_strong_count(p);
            PoolRef(Arc::from_raw(p))
        }
    }
}

/// Where an object of `obj_size` bytes goes when the next free byte is at
/// `off`: there, unless it would cross a `page` boundary, then at the next
/// page. Plays the part of DPDK's `rte_mempool_op_populate_helper` with
/// `check_obj_bounds` ("avoid objects to cross page boundaries"): with
/// `RTE_MEMPOOL_F_NO_IOVA_CONTIG` unset, `rte_mempool_get_page_size` gives
/// the smallest page size (the hugepage size, or the 4 KiB system page
/// without hugepages) whatever the IOVA mode, so a device never DMAs one
/// buffer across two pages that may not be adjacent in physical memory, nor
/// across two IOMMU mappings. Objects larger than a page may cross (DPDK
/// then needs the pages physically contiguous; here, IOVA-contiguous memory).
///
/// A new page's first object starts at a colour offset inside the page's
/// spare bytes, so that with one buffer per 4 KiB page the headers do not
/// all land in the same few L1 sets (the job DPDK's object spreading,
/// `RTE_MEMPOOL_F_NO_SPREAD` unset, does for memory channels).
#[inline]
fn place_object(off: usize, obj_size: usize, page: usize) -> usize {
    if obj_size > page || off / page == (off + obj_size - 1) / page {
        return off;
    }
    let next = off.next_multiple_of(page);
    next + page_colour(next / page, obj_size, page)
}

/// Offset (a multiple of 64) of the first object in page `index`: cycles
/// through the bytes a page has to spare after its whole objects.
#[inline]
fn page_colour(index: usize, obj_size: usize, page: usize) -> usize {
    let spare = page - (page / obj_size) * obj_size;
    (index % (spare / 64 + 1)) * 64
}

/// Bytes `n` objects take laid out by [`place_object`] on `page`-sized pages
/// (DPDK's `rte_mempool_op_calc_mem_size_helper`, page-aligned memory): a
/// page per `page / obj_size` objects.
fn pool_bytes(obj_size: usize, n: usize, page: usize) -> usize {
    let per_page = page / obj_size;
    if per_page == 0 {
        return obj_size * n;
    }
    n.div_ceil(per_page) * page
}

/// How many foreign threads get a return ring of their own per pool.
pub const RETURN_RINGS: usize = 8;

/// A ring's token while its storage is being built.
const CLAIMING: u64 = u64::MAX;

/// One foreign thread's way home into a pool.
#[derive(Default)]
struct ReturnRing {
    /// The thread that owns the producer side (0: free).
    token: AtomicU64,
    ring: std::sync::OnceLock<RawRing>,
    /// Buffers returned through it (written by its producer only).
    frees: AtomicU64,
}

/// A single-producer/single-consumer ring of buffer pointers; each side
/// writes only its own index, with a plain store.
struct RawRing {
    slots: Box<[UnsafeCell<*mut MbufHdr>]>,
    mask: usize,
    tail: AtomicUsize,
    head: AtomicUsize,
}

// SAFETY: a slot is written only by the producer while it lies outside
// head..tail and read only by the consumer while inside; the Release/Acquire
// pairs on `tail` and `head` order those accesses.
unsafe impl Sync for RawRing {}
// SAFETY: see above; the pointers name buffers of a pool that outlives them.
unsafe impl Send for RawRing {}

impl RawRing {
    fn new(cap: usize) -> RawRing {
        let cap = cap.max(2).next_power_of_two();
        RawRing {
            slots: (0..cap)
                .map(|_| UnsafeCell::new(std::ptr::null_mut()))
                .collect(),
            mask: cap - 1,
            tail: AtomicUsize::new(0),
            head: AtomicUsize::new(0),
        }
    }

    /// # Safety
    /// Only the ring's producer may call it. The ring holds every buffer of
    /// its pool at once, and a buffer is in it at most once: never full.
    #[inline(always)]
    unsafe fn push(&self, h: NonNull<MbufHdr>) {
        let t = self.tail.load(Ordering::Relaxed);
        debug_assert!(t.wrapping_sub(self.head.load(Ordering::Acquire)) <= self.mask);
        *self.slots[t & self.mask].get() = h.as_ptr();
        self.tail.store(t.wrapping_add(1), Ordering::Release);
    }

    /// Returns true when a tagged reference ([`REF_TAG`]) was among them.
    ///
    /// # Safety
    /// Only the ring's consumer may call it.
    unsafe fn drain_into(&self, out: &mut Vec<NonNull<MbufHdr>>) -> bool {
        let h = self.head.load(Ordering::Relaxed);
        let t = self.tail.load(Ordering::Acquire);
        let mut i = h;
        let mut tagged = 0usize;
        while i != t {
            let p = *self.slots[i & self.mask].get();
            tagged |= p as usize;
            out.push(NonNull::new_unchecked(p));
            i = i.wrapping_add(1);
        }
        self.head.store(t, Ordering::Release);
        tagged & REF_TAG != 0
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let s = self.stats();
        if s.in_use > 0 {
            // Buffers still out there point at this pool: keep it alive forever
            // rather than let them dangle.
            tracing::warn!(
                pool = %self.shared.name,
                in_use = s.in_use,
                "mempool dropped with buffers in use; leaking it so they stay valid"
            );
            std::mem::forget(self.shared.clone());
        }
    }
}

/// Frees many mbufs at once (`rte_pktmbuf_free_bulk` / `napi_consume_skb`
/// batching): the thread token is read once, and each single-segment mbuf
/// without a send-buffer charge whose pool belongs to this thread goes
/// straight onto the free stack, the pool's free counter written once per
/// run of the same pool. Anything else takes [`free_chain`]. Dropping it
/// flushes the counter.
pub(crate) struct BulkFree {
    token: u64,
    pool: *const PoolShared,
    run: u64,
}

impl BulkFree {
    #[inline(always)]
    pub(crate) fn new() -> BulkFree {
        BulkFree {
            token: thread_token(),
            pool: std::ptr::null(),
            run: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn free(&mut self, m: super::Mbuf) {
        let hdr = m.into_raw();
        // SAFETY: `into_raw` gave us sole ownership of a live header; its pool
        // outlives every buffer it handed out (a pool with buffers out is
        // leaked, never freed).
        unsafe {
            let h = &*hdr.as_ptr();
            if h.next.is_null()
                && h.wmem.is_null()
                && !super::seg_shared(h)
                && (*h.pool).owner == self.token
            {
                if h.pool != self.pool {
                    self.flush();
                    self.pool = h.pool;
                }
                (*(*h.pool).free.get()).push(hdr);
                self.run += 1;
            } else {
                free_chain(hdr.as_ptr());
            }
        }
    }

    #[inline(always)]
    fn flush(&mut self) {
        if self.run > 0 {
            // SAFETY: `pool` was set from a live mbuf's pool (see `free`).
            let f = unsafe { &(*self.pool).frees_local };
            f.store(f.load(Ordering::Relaxed) + self.run, Ordering::Release);
            self.run = 0;
        }
    }
}

impl Drop for BulkFree {
    #[inline(always)]
    fn drop(&mut self) {
        self.flush();
    }
}

/// Frees `hdrs` (each the sole handle of a live mbuf the caller gives up),
/// in bulk: when every one is a plain single segment of one pool this
/// thread owns — the usual case, a burst the generator or a driver built —
/// they go onto its free stack in one extend and one counter update
/// (`rte_pktmbuf_free_bulk`); otherwise one by one.
///
/// # Safety
/// Every pointer must come from [`super::Mbuf::into_raw`] (or an owning
/// equivalent) and must not be used again.
#[inline]
pub(crate) unsafe fn free_bulk(hdrs: &[NonNull<MbufHdr>]) {
    let Some(first) = hdrs.first() else { return };
    let pool = (*first.as_ptr()).pool;
    let token = thread_token();
    let simple = (*pool).owner == token
        && hdrs.iter().all(|h| {
            let h = &*h.as_ptr();
            h.pool == pool && h.next.is_null() && h.wmem.is_null() && !super::seg_shared(h)
        });
    if !simple {
        let mut f = BulkFree::new();
        for h in hdrs {
            f.free(super::Mbuf::from_raw(*h));
        }
        return;
    }
    (*(*pool).free.get()).extend_from_slice(hdrs);
    let f = &(*pool).frees_local;
    f.store(
        f.load(Ordering::Relaxed) + hdrs.len() as u64,
        Ordering::Release,
    );
}

/// Returns every segment of a chain to its pool.
///
/// # Safety
/// `hdr` must be the first segment of a chain that the caller owns and gives up.
#[inline]
pub(crate) unsafe fn free_chain(mut hdr: *mut MbufHdr) {
    let token = thread_token();
    while !hdr.is_null() {
        let h = &mut *hdr;
        let next = h.next;
        h.next = std::ptr::null_mut();
        if !h.wmem.is_null() {
            (*h.wmem).release(h.wmem_charge as u64, token);
            h.wmem = std::ptr::null();
        }
        let pool = &*h.pool;
        let nn = NonNull::new_unchecked(hdr);
        if pool.owner == token {
            put_local(hdr);
        } else if super::seg_shared(h) {
            // A reference to a shared buffer: the owner drops it (the
            // count is written on its thread only). Tagged, and counted
            // as freed when the owner really frees.
            pool.free_remote(
                NonNull::new_unchecked((hdr as usize | REF_TAG) as *mut MbufHdr),
                token,
                false,
            );
        } else {
            pool.free_remote(nn, token, true);
        }
        hdr = next;
    }
}

/// Low bit of a returned header pointer (headers are 64-byte aligned):
/// the buffer was shared when its holder gave it up on a foreign thread,
/// so the owner must drop the reference ([`put_local`]) rather than take
/// the buffer back.
const REF_TAG: usize = 1;

/// Drops the reference segment `h`'s handle held, on its pool's owner
/// thread: an indirect detaches (`rte_pktmbuf_detach`: its direct loses a
/// holder) and goes home; a direct goes home when it was the last holder
/// (`rte_pktmbuf_prefree_seg`), else only its count drops.
///
/// # Safety
/// The caller owns `h` (gives the handle up) and is the owner thread of
/// its pool, which (the attach rule) also owns the pool of its direct.
#[inline]
unsafe fn put_local(h: *mut MbufHdr) {
    let d = (*h).direct;
    if !d.is_null() {
        (*h).direct = std::ptr::null_mut();
        (*h).buf_len = (*(*h).pool).buf_len;
        put_direct(d);
    }
    put_direct(h);
}

/// One holder of direct `d`'s buffer lets go (owner thread; plain stores).
#[inline(always)]
unsafe fn put_direct(d: *mut MbufHdr) {
    let r = (*d).refcnt.load(Ordering::Relaxed);
    if r > 1 {
        (*d).refcnt.store(r - 1, Ordering::Relaxed);
        return;
    }
    // The last holder: home (the count stays 1 for the next owner).
    let pool = &*(*d).pool;
    (*pool.free.get()).push(NonNull::new_unchecked(d));
    let f = &pool.frees_local;
    f.store(f.load(Ordering::Relaxed) + 1, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};

    fn pool(n: u32) -> Mempool {
        set_page_mode(PageMode::Small);
        Mempool::new(&PoolConfig {
            name: "t".into(),
            size: n,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn conservation_under_bulk_churn() {
        let mut p = pool(512);
        let mut held: Vec<Burst> = Vec::new();
        let mut seed = 12345u64;
        for _ in 0..2000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (seed >> 33) as usize % 64 + 1;
            if seed & 1 == 0 {
                let mut b = Burst::new();
                if p.alloc_bulk(&mut b, n) {
                    assert_eq!(b.len(), n);
                    held.push(b);
                } else {
                    assert!(p.stats().available < n as u64);
                }
            } else if !held.is_empty() {
                let i = (seed >> 40) as usize % held.len();
                held.swap_remove(i);
            }
            let s = p.stats();
            let out: usize = held.iter().map(|b| b.len()).sum();
            assert_eq!(s.in_use, out as u64);
            assert_eq!(s.available + s.in_use, 512);
        }
        held.clear();
        assert_eq!(p.stats().available, 512);
    }

    #[test]
    fn exhaustion_and_all_or_nothing_bulk() {
        let mut p = pool(8);
        let mut b = Burst::new();
        assert!(p.alloc_bulk(&mut b, 6));
        assert!(!p.alloc_bulk(&mut b, 3));
        assert_eq!(b.len(), 6);
        let a = p.alloc().unwrap();
        let c = p.alloc().unwrap();
        assert!(p.alloc().is_none());
        drop((a, c));
        assert_eq!(p.stats().in_use, 6);
    }

    #[test]
    fn foreign_thread_frees_come_home() {
        let mut p = pool(64);
        let mut b = Burst::new();
        assert!(p.alloc_bulk(&mut b, 64));
        let v: Vec<Mbuf> = std::iter::from_fn(|| b.pop_front()).collect();
        std::thread::spawn(move || drop(v)).join().unwrap();
        assert_eq!(p.stats().in_use, 0);
        // The owner gets them back when its stack runs dry.
        let mut b2 = Burst::new();
        assert!(p.alloc_bulk(&mut b2, 64));
    }

    #[test]
    fn iova_and_layout() {
        let mut p = pool(4);
        let m = p.alloc().unwrap();
        assert_eq!(m.headroom(), 128);
        assert_eq!(m.tailroom(), 2048);
        assert_eq!(m.data_iova(), m.buf_iova() + 128);
        let base = p.region().iova();
        assert_eq!((m.buf_iova() - base) as usize % p.obj_size(), MBUF_HDR_SIZE);
    }

    /// Every object (header and buffer) inside one page of `page` bytes, all
    /// inside the region, none overlapping; returns the buffers' (VA, IOVA).
    fn check_layout(p: &mut Mempool, page: usize) -> Vec<(u64, u64)> {
        let n = p.size() as usize;
        let mut held = Vec::new();
        while let Some(m) = p.alloc() {
            held.push(m);
        }
        assert_eq!(held.len(), n);
        let base = p.region().as_ptr() as u64;
        let end = base + p.region().len() as u64;
        let mut objs: Vec<(u64, u64)> = held
            .iter()
            .map(|m| {
                let va = m.data().as_ptr() as u64 - m.headroom() as u64;
                (va, m.buf_iova())
            })
            .collect();
        objs.sort();
        let obj = p.obj_size() as u64;
        for w in objs.windows(2) {
            assert!(w[0].0 + obj <= w[1].0, "overlap");
        }
        for &(va, _) in &objs {
            let start = va - MBUF_HDR_SIZE as u64;
            assert!(start >= base && start + obj <= end);
            assert_eq!(
                start / page as u64,
                (start + obj - 1) / page as u64,
                "object at region offset {} crosses a {page}-byte page",
                start - base
            );
        }
        objs
    }

    #[test]
    fn placement_skips_to_the_next_page_only_when_an_object_would_cross() {
        assert_eq!(place_object(0, 2304, 4096), 0);
        // Page 1 starts one cache line in (its colour), page 2 two, …
        assert_eq!(place_object(2304, 2304, 4096), 4096 + 64);
        assert_eq!(place_object(4096 + 64 + 2304, 2304, 4096), 8192 + 128);
        // 1792 spare bytes: 29 colours, then back to 0.
        assert_eq!(place_object(29 * 4096 - 1, 2304, 4096), 29 * 4096);
        assert_eq!(
            place_object(1792, 2304, 4096),
            1792,
            "ends exactly at the page end"
        );
        assert_eq!(
            place_object(100, 9000, 4096),
            100,
            "larger than a page: may cross"
        );
        // 1024-byte objects fill a page: no spare bytes, no colour.
        assert_eq!(place_object(4096 - 512, 1024, 4096), 4096);
        assert_eq!(pool_bytes(2304, 1, 4096), 4096);
        assert_eq!(pool_bytes(2304, 3, 4096), 3 * 4096);
        assert_eq!(pool_bytes(1024, 8, 4096), 2 * 4096);
        assert_eq!(pool_bytes(9000, 3, 4096), 27_000);
    }

    struct NoopMapper;
    impl crate::eal::dma::DmaMapper for NoopMapper {
        fn name(&self) -> String {
            "noop".into()
        }
        fn map(&self, _va: u64, _iova: u64, _len: usize) -> Result<(), String> {
            Ok(())
        }
        fn unmap(&self, _iova: u64, _len: usize) {}
    }

    /// Issue 10 item 12, IOVA mode va on 4 KiB pages with a device behind
    /// an IOMMU (a registered mapper, as a VFIO container is): no 2304-byte
    /// object straddles a page (before, about half did).
    #[test]
    fn no_buffer_crosses_a_4k_page_in_va_mode_behind_an_iommu() {
        use crate::eal::dma::{register_mapper, unregister_mapper, DmaMapper};
        let m: Arc<dyn DmaMapper> = Arc::new(NoopMapper);
        register_mapper(m.clone()).unwrap();
        let cfg = PoolConfig {
            name: "va4k".into(),
            size: 600,
            ..Default::default()
        };
        let mut p = Mempool::new_in(&cfg, PageMode::Small, IovaMode::Va).unwrap();
        unregister_mapper(&m);
        assert_eq!(p.region().page_size(), 4096);
        assert!(p.region().iova_contiguous());
        for (va, iova) in check_layout(&mut p, 4096) {
            assert_eq!(va, iova, "IOVA = VA");
        }
    }

    /// Without an IOMMU in IOVA mode va (software ports, device models), a
    /// 4 KiB-page pool stays packed: the device sees one contiguous range.
    #[test]
    fn va_pools_without_an_iommu_stay_packed() {
        let cfg = PoolConfig {
            name: "packed".into(),
            size: 600,
            ..Default::default()
        };
        let p = Mempool::new_in(&cfg, PageMode::Small, IovaMode::Va).unwrap();
        assert!(p.region().iova_contiguous());
        assert_eq!(
            p.region().len(),
            (600 * p.obj_size()).next_multiple_of(4096)
        );
    }

    /// Issue 10 item 12, IOVA mode pa on 4 KiB pages: each buffer's IOVA is
    /// the physical address of its bytes, and every byte of a buffer is
    /// physically where the device will DMA (the pool used to be refused,
    /// or, laid out across pages, DMA'd from the wrong memory).
    #[test]
    fn buffers_are_physically_contiguous_in_pa_mode_on_4k_pages() {
        use crate::eal::dma::virt_to_phys;
        if virt_to_phys(&0u8 as *const u8 as u64).is_err() {
            eprintln!("needs /proc/self/pagemap physical addresses (root): skipping");
            return;
        }
        let cfg = PoolConfig {
            name: "pa4k".into(),
            size: 300,
            ..Default::default()
        };
        let mut p = Mempool::new_in(&cfg, PageMode::Small, IovaMode::Pa).unwrap();
        let buf_len = p.obj_size() - MBUF_HDR_SIZE;
        for (va, iova) in check_layout(&mut p, 4096) {
            assert_eq!(iova, virt_to_phys(va).unwrap());
            let last = va + buf_len as u64 - 1;
            assert_eq!(
                virt_to_phys(last).unwrap(),
                iova + buf_len as u64 - 1,
                "buffer bytes are physically contiguous"
            );
        }
        // What a device model sees: every buffer translates as one range.
        let map = crate::eal::dma::IovaMap::snapshot();
        let mut m = p.alloc().unwrap();
        let d = m.append(2000).unwrap();
        d.fill(0xa5);
        let mut back = vec![0u8; 2000];
        assert!(map.read(m.data_iova(), &mut back));
        assert!(back.iter().all(|&b| b == 0xa5));
    }

    /// The same rule on 2 MiB hugepages, in both IOVA modes (when the test
    /// runner could reserve hugepages).
    #[test]
    fn no_buffer_crosses_a_hugepage() {
        use crate::eal::dma::{hugepage_info, virt_to_phys};
        if hugepage_info().free < 2 {
            eprintln!("needs 2 free hugepages: skipping");
            return;
        }
        let cfg = PoolConfig {
            name: "huge".into(),
            size: 1000,
            ..Default::default()
        };
        let mut p = Mempool::new_in(&cfg, PageMode::Huge, IovaMode::Va).unwrap();
        assert_eq!(p.region().page_size(), 2 << 20);
        check_layout(&mut p, 2 << 20);
        drop(p);
        if virt_to_phys(&0u8 as *const u8 as u64).is_ok() {
            let mut p = Mempool::new_in(&cfg, PageMode::Huge, IovaMode::Pa).unwrap();
            for (va, iova) in check_layout(&mut p, 2 << 20) {
                assert_eq!(iova, virt_to_phys(va).unwrap());
            }
        }
    }

    #[test]
    fn bad_config_is_an_error() {
        set_page_mode(PageMode::Small);
        let e = Mempool::new(&PoolConfig {
            size: 0,
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(e.to_string().contains("at least 1"));
    }

    /// Frees from other threads come home through a ring per thread (no
    /// lock): every buffer is back, counted as remote; past RETURN_RINGS
    /// threads the locked list takes the rest, counted too.
    #[test]
    fn foreign_frees_come_home_through_per_thread_rings() {
        let mut p = pool(1024);
        for round in 0..2 {
            let threads = RETURN_RINGS + 2;
            let mut batches: Vec<Vec<Mbuf>> = (0..threads)
                .map(|_| (0..50).map(|_| p.alloc().unwrap()).collect())
                .collect();
            assert_eq!(p.stats().in_use, (threads * 50) as u64);
            std::thread::scope(|sc| {
                for b in batches.drain(..) {
                    // Each thread frees in its own time, concurrently.
                    sc.spawn(move || drop(b));
                }
            });
            let st = p.stats();
            assert_eq!(st.in_use, 0, "round {round}: {st:?}");
            assert_eq!(st.remote_frees, ((round + 1) * threads * 50) as u64);
            // Every ring was claimed by the first round's threads (tokens
            // are never reused): the 2 extra, then all of round 2, locked.
            let locked = if round == 0 {
                2 * 50
            } else {
                (2 + threads) * 50
            };
            assert_eq!(st.locked_returns, locked as u64, "{st:?}");
            // The owner gets every buffer back from the rings and the list.
            let all: Vec<Mbuf> = std::iter::from_fn(|| p.alloc()).collect();
            assert_eq!(all.len(), 1024, "exactly the pool, none twice");
            let mut addrs: Vec<usize> = all.iter().map(|m| m.data().as_ptr() as usize).collect();
            addrs.sort_unstable();
            addrs.dedup();
            assert_eq!(addrs.len(), 1024);
            drop(all);
        }
    }
}
