//! AF_XDP sockets (XSK, Documentation/networking/af_xdp.rst) with the
//! engine's mempool as the UMEM, and the minimal XDP program that steers a
//! queue's frames into them, loaded through `bpf(2)`.
//!
//! Like DMA memory, the UMEM and the four rings are memory the kernel reads
//! and writes behind our back: producer/consumer indexes are accessed with
//! acquire/release atomics, and all raw pointer work stays here, behind the
//! safe [`Xsk`] and [`XdpProgram`] the `af_xdp` port uses
//! (`ethdev/af_xdp.rs`).
//!
//! **The UMEM is the pool.** A [`Mempool`](crate::mbuf::Mempool)'s region is
//! registered whole with `XDP_UMEM_REG` and `XDP_UMEM_UNALIGNED_CHUNK_FLAG`
//! (include/uapi/linux/if_xdp.h), one chunk per pool object (its 128-byte
//! [`MbufHdr`] and buffer), so an mbuf *is* a UMEM frame:
//! - a fill-ring entry is the object's offset; the kernel writes a frame at
//!   `addr + umem headroom (0) + XDP_PACKET_HEADROOM (256)`
//!   (net/xdp/xsk_buff_pool.c `xp_init_xskb_addr`, `xp_alloc`), which is
//!   128 bytes into the mbuf's buffer — exactly the default headroom;
//! - a TX descriptor is `object offset | (data offset in the object << 48)`
//!   (`XSK_UNALIGNED_BUF_OFFSET_SHIFT`), so any mbuf of the pool is sent
//!   where it lies, without a copy; the completion ring gives the same
//!   address back, which names the mbuf to free.
//!
//! Every buffer handed to the kernel (fill or TX) is recorded by its pool
//! index; they all come home when the socket is released (`Drop`), which is
//! the only point the kernel guarantees it no longer holds them
//! (`xsk_release` → `xp_put_pool`).

use crate::mbuf::{Burst, Mbuf, MbufHdr, PoolArea, PoolRef, MBUF_HDR_SIZE};
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// `XDP_PACKET_HEADROOM` (include/uapi/linux/bpf.h): the room the kernel
/// keeps in front of every XDP frame (net/xdp/xsk_buff_pool.c
/// `xp_init_xskb_addr`, `xp_alloc`).
pub const XDP_PACKET_HEADROOM: usize = 256;

/// Where the kernel puts a received frame relative to the mbuf's buffer
/// start: `XDP_PACKET_HEADROOM` from the object start, less the header.
pub const RX_DATA_OFF: usize = XDP_PACKET_HEADROOM - MBUF_HDR_SIZE;

/// `XDP_UMEM_MIN_CHUNK_SIZE` (net/xdp/xdp_umem.c `xdp_umem_reg`).
pub const UMEM_MIN_CHUNK: usize = 2048;

/// How to bind (`sxdp_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XskMode {
    /// No mode flag: the kernel tries zero-copy and falls back to copy
    /// (`xp_assign_dev`: without `XDP_ZEROCOPY` a driver without
    /// `ndo_xsk_wakeup` is "fallback to copy mode").
    Auto,
    /// `XDP_ZEROCOPY`: fail when the driver cannot.
    ZeroCopy,
    /// `XDP_COPY`.
    Copy,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct XskConfig {
    pub ifindex: u32,
    pub queue_id: u32,
    pub mode: XskMode,
    /// Ring sizes (powers of two).
    pub fill: u32,
    pub comp: u32,
    pub rx: u32,
    pub tx: u32,
}

/// A failed set-up step: the operation and the kernel's errno.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct XskError {
    pub op: &'static str,
    #[source]
    pub source: io::Error,
}

fn err(op: &'static str) -> XskError {
    XskError {
        op,
        source: io::Error::last_os_error(),
    }
}

fn cvt(op: &'static str, r: libc::c_int) -> Result<libc::c_int, XskError> {
    if r < 0 {
        Err(err(op))
    } else {
        Ok(r)
    }
}

/// One mmap'd ring (`XDP_PGOFF_*`): producer, consumer, flags words and
/// `size` descriptors of `T` (u64 addresses or `xdp_desc`).
struct Ring<T> {
    map: *mut u8,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    size: u32,
    /// Our copy of our own index, and the other side's last seen.
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: the ring is shared memory with the kernel; on our side one owner
// (the `Xsk`, one lcore at a time) uses it.
unsafe impl<T> Send for Ring<T> {}

impl<T> Ring<T> {
    /// Maps ring `pgoff` of `fd` as described by `off`.
    fn map(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
        op: &'static str,
    ) -> Result<Ring<T>, XskError> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a shared mapping of the socket's ring at the offset the
        // ABI gives for it (if_xdp.h `XDP_PGOFF_*`); checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(err(op));
        }
        let b = p as *mut u8;
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS for this mapping;
        // the words are u32-aligned (the kernel lays them out so).
        unsafe {
            Ok(Ring {
                map: b,
                map_len: len,
                producer: b.add(off.producer as usize) as *const AtomicU32,
                consumer: b.add(off.consumer as usize) as *const AtomicU32,
                flags: b.add(off.flags as usize) as *const AtomicU32,
                descs: b.add(off.desc as usize) as *mut T,
                mask: size - 1,
                size,
                cached_prod: (*(b.add(off.producer as usize) as *const AtomicU32))
                    .load(Ordering::Relaxed),
                cached_cons: (*(b.add(off.consumer as usize) as *const AtomicU32))
                    .load(Ordering::Relaxed),
            })
        }
    }

    #[inline(always)]
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: inside the live mapping (see `map`).
        unsafe { &*self.producer }
    }
    #[inline(always)]
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: inside the live mapping (see `map`).
        unsafe { &*self.consumer }
    }

    /// `XDP_RING_NEED_WAKEUP` set by the kernel on this ring.
    #[inline(always)]
    fn needs_wakeup(&self) -> bool {
        // SAFETY: inside the live mapping (see `map`).
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer side: free entries (refreshing the consumer when short of `want`).
    #[inline(always)]
    fn prod_free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Producer side: writes entry `cached_prod + i`.
    #[inline(always)]
    fn write(&mut self, i: u32, v: T) {
        let idx = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size, inside the descriptor array; the entry is free
        // (prod_free said so), so the kernel does not read it now.
        unsafe { self.descs.add(idx).write(v) }
    }

    /// Producer side: publishes `n` written entries (release: after the data).
    #[inline(always)]
    fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    /// Consumer side: entries ready (refreshing the producer when empty).
    #[inline(always)]
    fn cons_ready(&mut self) -> u32 {
        let n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n > 0 {
            return n;
        }
        self.cached_prod = self.prod().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Consumer side: reads entry `cached_cons + i`.
    #[inline(always)]
    fn read(&self, i: u32) -> T
    where
        T: Copy,
    {
        let idx = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size; the kernel published the entry (acquire in
        // cons_ready) and does not touch it until we release it.
        unsafe { self.descs.add(idx).read() }
    }

    /// Consumer side: gives `n` entries back.
    #[inline(always)]
    fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons().store(self.cached_cons, Ordering::Release);
    }

    /// Entries we produced that the kernel has not consumed yet.
    fn outstanding(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.cons().load(Ordering::Acquire))
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`; nothing refers to it after drop.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.map_len);
        }
    }
}

/// XSK counters (`XDP_STATISTICS`, `struct xdp_statistics`; cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// An AF_XDP socket bound to one (interface, queue), its UMEM being one
/// pool's region, with its fill, completion, RX and TX rings.
pub struct Xsk {
    // Rings before the fd: they are unmapped first, then the fd closes and
    // the kernel releases the socket (`xsk_release`).
    fill: ManuallyDrop<Ring<u64>>,
    comp: ManuallyDrop<Ring<u64>>,
    rx: ManuallyDrop<Ring<libc::xdp_desc>>,
    tx: ManuallyDrop<Ring<libc::xdp_desc>>,
    fd: ManuallyDrop<OwnedFd>,
    released: bool,
    umem: PoolArea,
    pool: PoolRef,
    zerocopy: bool,
    /// Per 64-byte unit of the UMEM: an object starting there is held by
    /// the kernel (objects are 64-byte aligned).
    held: Vec<bool>,
    held_count: usize,
}

impl Xsk {
    /// `socket(AF_XDP)`, `XDP_UMEM_REG` of `pool`'s region, the four rings,
    /// `bind` with `XDP_USE_NEED_WAKEUP` in `cfg.mode`.
    pub fn new(cfg: &XskConfig, pool: PoolRef) -> Result<Xsk, XskError> {
        let umem = pool.area();
        // SAFETY: plain syscall; the result is checked.
        let fd = cvt("socket(AF_XDP)", unsafe {
            libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        let reg = libc::xdp_umem_reg {
            addr: umem.base as u64,
            len: umem.len as u64,
            chunk_size: umem.obj_size as u32,
            headroom: 0,
            flags: libc::XDP_UMEM_UNALIGNED_CHUNK_FLAG,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        setsockopt(
            raw,
            libc::XDP_UMEM_FILL_RING,
            &cfg.fill,
            "XDP_UMEM_FILL_RING",
        )?;
        setsockopt(
            raw,
            libc::XDP_UMEM_COMPLETION_RING,
            &cfg.comp,
            "XDP_UMEM_COMPLETION_RING",
        )?;
        setsockopt(raw, libc::XDP_RX_RING, &cfg.rx, "XDP_RX_RING")?;
        setsockopt(raw, libc::XDP_TX_RING, &cfg.tx, "XDP_TX_RING")?;
        // SAFETY: zeroed is a valid xdp_mmap_offsets; the kernel fills it.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off`/`len` live across the call; the kernel writes ≤ len bytes.
        cvt("XDP_MMAP_OFFSETS", unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                &mut off as *mut _ as *mut libc::c_void,
                &mut len,
            )
        })?;
        let fill = Ring::map(
            raw,
            &off.fr,
            cfg.fill,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            "mmap(fill ring)",
        )?;
        let comp = Ring::map(
            raw,
            &off.cr,
            cfg.comp,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            "mmap(completion ring)",
        )?;
        let rx = Ring::map(
            raw,
            &off.rx,
            cfg.rx,
            libc::XDP_PGOFF_RX_RING as u64,
            "mmap(rx ring)",
        )?;
        let tx = Ring::map(
            raw,
            &off.tx,
            cfg.tx,
            libc::XDP_PGOFF_TX_RING as u64,
            "mmap(tx ring)",
        )?;
        let mode = match cfg.mode {
            XskMode::Auto => 0,
            XskMode::ZeroCopy => libc::XDP_ZEROCOPY,
            XskMode::Copy => libc::XDP_COPY,
        };
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: mode | libc::XDP_USE_NEED_WAKEUP,
            sxdp_ifindex: cfg.ifindex,
            sxdp_queue_id: cfg.queue_id,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` lives across the call and its size is passed.
        cvt("bind(AF_XDP)", unsafe {
            libc::bind(
                raw,
                &sa as *const libc::sockaddr_xdp as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        })?;
        let mut opt = libc::xdp_options { flags: 0 };
        let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
        // SAFETY: as for XDP_MMAP_OFFSETS.
        cvt("XDP_OPTIONS", unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_OPTIONS,
                &mut opt as *mut _ as *mut libc::c_void,
                &mut len,
            )
        })?;
        Ok(Xsk {
            fill: ManuallyDrop::new(fill),
            comp: ManuallyDrop::new(comp),
            rx: ManuallyDrop::new(rx),
            tx: ManuallyDrop::new(tx),
            fd: ManuallyDrop::new(fd),
            released: false,
            umem,
            pool,
            zerocopy: opt.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
            held: vec![false; umem.len / 64],
            held_count: 0,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The driver moves frames in and out of the UMEM itself (`XDP_OPTIONS_ZEROCOPY`).
    pub fn zerocopy(&self) -> bool {
        self.zerocopy
    }

    /// The pool whose region is the UMEM.
    pub fn pool(&self) -> &PoolRef {
        &self.pool
    }

    /// True when `m` is a frame of this UMEM (sent without a copy).
    #[inline(always)]
    pub fn in_umem(&self, m: &Mbuf) -> bool {
        m.pool_id() == self.umem.id
    }

    /// Buffers the kernel holds now (fill ring, kernel, TX ring).
    pub fn held(&self) -> usize {
        self.held_count
    }

    #[inline(always)]
    fn hold(&mut self, m: Mbuf) -> u64 {
        let off = m.into_raw().as_ptr() as usize - self.umem.base;
        self.held[off / 64] = true;
        self.held_count += 1;
        off as u64
    }

    /// Takes back the mbuf whose object starts at UMEM offset `off`, if the
    /// kernel names one we gave it (any other address: `None`).
    #[inline(always)]
    fn unhold(&mut self, off: u64) -> Option<Mbuf> {
        let off = off as usize;
        if !off.is_multiple_of(64) || self.held.get(off / 64) != Some(&true) {
            return None;
        }
        self.held[off / 64] = false;
        self.held_count -= 1;
        let p = (self.umem.base + off) as *mut MbufHdr;
        // SAFETY: `held` says an object starts at `off` whose header we
        // turned into a raw pointer in `hold` and gave the kernel, which
        // has now given it back: we own it again.
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) })
    }

    /// Free fill-ring entries.
    pub fn fill_room(&mut self) -> usize {
        let n = self.fill.size;
        self.fill.prod_free(n) as usize
    }

    /// Posts buffers of this UMEM to the fill ring (the kernel writes
    /// received frames into them). Returns how many were posted; the rest
    /// stay in `bufs`.
    pub fn fill(&mut self, bufs: &mut Burst) -> usize {
        let n = (self.fill.prod_free(bufs.len() as u32) as usize).min(bufs.len());
        for i in 0..n {
            let Some(m) = bufs.pop_front() else { break };
            debug_assert!(self.in_umem(&m));
            let off = self.hold(m);
            self.fill.write(i as u32, off);
        }
        if n > 0 {
            self.fill.submit(n as u32);
        }
        n
    }

    /// The fill ring asks for a wakeup (the driver's NAPI sleeps).
    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    /// Moves up to `max` received frames to `out`, each the mbuf the kernel
    /// wrote into, its data window set to the frame. A frame longer than
    /// the buffer holds is dropped (freed); `bad` counts those and any
    /// descriptor naming no buffer of ours.
    pub fn recv(&mut self, out: &mut Burst, max: usize, bad: &mut u64) -> usize {
        let n = (self.rx.cons_ready() as usize).min(max).min(out.room());
        let mut got = 0;
        for i in 0..n {
            let d = self.rx.read(i as u32);
            // Unaligned mode (`xp_get_handle`): the low 48 bits are the
            // chunk's address (our fill entry: the object start), the high
            // 16 the frame's offset from it (XDP_PACKET_HEADROOM, or less
            // or more after a program's `bpf_xdp_adjust_head`).
            let obj = d.addr & libc::XSK_UNALIGNED_BUF_ADDR_MASK;
            let at = (d.addr >> libc::XSK_UNALIGNED_BUF_OFFSET_SHIFT) as usize;
            let Some(mut m) = self.unhold(obj) else {
                *bad += 1;
                continue;
            };
            if at < MBUF_HDR_SIZE
                || m.set_data_window(at - MBUF_HDR_SIZE, d.len as usize)
                    .is_err()
            {
                *bad += 1;
                drop(m);
                continue;
            }
            let _ = out.push(m);
            got += 1;
        }
        if n > 0 {
            self.rx.release(n as u32);
        }
        got
    }

    /// Free TX ring entries.
    pub fn tx_room(&mut self) -> usize {
        let n = self.tx.size;
        self.tx.prod_free(n) as usize
    }

    /// Queues `m` (a single-segment frame of this UMEM) on the TX ring
    /// without publishing it; [`Xsk::tx_submit`] publishes the batch.
    /// The caller checked [`Xsk::tx_room`], [`Xsk::in_umem`] and the length.
    #[inline(always)]
    pub fn tx_push(&mut self, i: u32, m: Mbuf) {
        let in_obj = MBUF_HDR_SIZE + m.data_off();
        let len = m.data_len() as u32;
        let off = self.hold(m);
        self.tx.write(
            i,
            libc::xdp_desc {
                addr: off | ((in_obj as u64) << libc::XSK_UNALIGNED_BUF_OFFSET_SHIFT),
                len,
                options: 0,
            },
        );
    }

    /// Publishes `n` queued TX descriptors.
    #[inline(always)]
    pub fn tx_submit(&mut self, n: u32) {
        self.tx.submit(n)
    }

    /// TX descriptors published that the kernel has not taken yet.
    pub fn tx_pending(&self) -> u32 {
        self.tx.outstanding()
    }

    /// The TX kick is needed (copy mode always; zero-copy when the driver sleeps).
    #[inline(always)]
    pub fn tx_needs_wakeup(&self) -> bool {
        self.tx.needs_wakeup()
    }

    /// The doorbell: `sendto(fd, NULL, 0, MSG_DONTWAIT)` makes the kernel
    /// take the TX ring (`xsk_sendmsg` → `xsk_generic_xmit` in copy mode,
    /// `ndo_xsk_wakeup` in zero-copy). `EAGAIN`/`EBUSY`/`ENOBUFS`/`ENETDOWN`
    /// mean "not now": the descriptors stay queued for the next kick.
    pub fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: a null buffer of length 0 and no address, as the ABI asks.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.raw_os_error(),
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::ENETDOWN)
            ) {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }

    /// Wakes the RX side (`recvfrom(MSG_DONTWAIT)` → `xsk_recvmsg` →
    /// `ndo_xsk_wakeup`), when the fill ring asks for it.
    pub fn wake_rx(&self) {
        // SAFETY: a null buffer of length 0 and no address.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    /// Takes up to `max` completed TX frames back into `out` (their mbufs,
    /// unchanged: the caller reports their lengths and frees them).
    pub fn complete(&mut self, out: &mut Burst, max: usize, bad: &mut u64) -> usize {
        let n = (self.comp.cons_ready() as usize).min(max).min(out.room());
        let mut got = 0;
        for i in 0..n {
            let a = self.comp.read(i as u32) & libc::XSK_UNALIGNED_BUF_ADDR_MASK;
            match self.unhold(a) {
                Some(m) => {
                    let _ = out.push(m);
                    got += 1;
                }
                None => *bad += 1,
            }
        }
        if n > 0 {
            self.comp.release(n as u32);
        }
        got
    }

    /// `XDP_STATISTICS`.
    pub fn stats(&self) -> io::Result<XskStats> {
        // SAFETY: zeroed is valid; the kernel fills it.
        let mut s: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: `s`/`len` live across the call; the kernel writes ≤ len bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                &mut s as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }

    /// Closes the socket and returns every buffer the kernel held to its
    /// pool; returns how many (TX frames among them were never completed).
    pub fn close(mut self) -> usize {
        self.release()
    }

    fn release(&mut self) -> usize {
        if self.released {
            return 0;
        }
        self.released = true;
        // SAFETY: each field is dropped exactly once (guarded by
        // `released`), rings first: a mapping holds the socket's file, so
        // only once they are gone does closing the fd release the socket
        // (`xsk_release` runs before close returns to user space, as task
        // work), unbinding the device and unpinning the UMEM.
        unsafe {
            ManuallyDrop::drop(&mut self.fill);
            ManuallyDrop::drop(&mut self.comp);
            ManuallyDrop::drop(&mut self.rx);
            ManuallyDrop::drop(&mut self.tx);
            ManuallyDrop::drop(&mut self.fd);
        }
        let mut n = 0;
        for (unit, h) in self.held.iter_mut().enumerate() {
            if std::mem::take(h) {
                let p = (self.umem.base + unit * 64) as *mut MbufHdr;
                // SAFETY: `held` records exactly the objects we turned into
                // raw pointers and handed to the kernel; the socket is gone,
                // so nobody else holds them.
                drop(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) });
                n += 1;
            }
        }
        self.held_count = 0;
        n
    }
}

impl Drop for Xsk {
    fn drop(&mut self) {
        self.release();
    }
}

/// Whether this process may open AF_XDP sockets: `socket(AF_XDP)`, closed at once.
pub fn probe() -> Result<(), XskError> {
    // SAFETY: plain syscall; the result is checked.
    let fd = cvt("socket(AF_XDP)", unsafe {
        libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: a fresh descriptor we own; dropping it closes it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

fn setsockopt<T>(fd: RawFd, opt: i32, v: &T, op: &'static str) -> Result<(), XskError> {
    // SAFETY: `v` is a live value of the size passed.
    cvt(op, unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

// ---------------------------------------------------------------------------
// The XDP program: bpf(2) without libbpf.

/// `bpf(2)` commands, map/program/attach types and helper ids, from
/// include/uapi/linux/bpf.h (`enum bpf_cmd`, `enum bpf_map_type`,
/// `enum bpf_prog_type`, `enum bpf_attach_type`, `___BPF_FUNC_MAPPER`).
mod bpf {
    pub const MAP_CREATE: i64 = 0;
    pub const MAP_UPDATE_ELEM: i64 = 2;
    pub const MAP_DELETE_ELEM: i64 = 3;
    pub const PROG_LOAD: i64 = 5;
    pub const LINK_CREATE: i64 = 28;
    pub const MAP_TYPE_XSKMAP: u32 = 17;
    pub const PROG_TYPE_XDP: u32 = 6;
    pub const ATTACH_XDP: u32 = 37;
    pub const FUNC_REDIRECT_MAP: i32 = 51;
    pub const PSEUDO_MAP_FD: u8 = 1;
    /// `enum xdp_action`.
    pub const XDP_PASS: i32 = 2;
    /// `offsetof(struct xdp_md, rx_queue_index)`.
    pub const XDP_MD_RX_QUEUE_INDEX: i16 = 16;
}

/// `struct bpf_insn`: opcode, dst:4 | src:4 registers, offset, immediate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program, as `xsk_def_prog` of libxdp does in C:
/// `return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);` —
/// a frame of a queue with a socket in the map goes to it, any other to the
/// kernel's stack (the low bits of `flags` are the action when the key is
/// missing: `__bpf_xdp_redirect_map`).
fn program(map_fd: RawFd) -> [Insn; 6] {
    // Opcodes (include/uapi/linux/bpf_common.h, bpf.h):
    // BPF_LDX|BPF_MEM|BPF_W = 0x61, BPF_LD|BPF_DW|BPF_IMM = 0x18,
    // BPF_ALU64|BPF_MOV|BPF_K = 0xb7, BPF_JMP|BPF_CALL = 0x85, BPF_JMP|BPF_EXIT = 0x95.
    [
        insn(0x61, 2, 1, bpf::XDP_MD_RX_QUEUE_INDEX, 0), // r2 = ctx->rx_queue_index
        insn(0x18, 1, bpf::PSEUDO_MAP_FD, 0, map_fd),    // r1 = &xsks_map (ld_imm64)
        insn(0, 0, 0, 0, 0),                             //      (second half)
        insn(0xb7, 3, 0, 0, bpf::XDP_PASS),              // r3 = XDP_PASS
        insn(0x85, 0, 0, 0, bpf::FUNC_REDIRECT_MAP),     // r0 = bpf_redirect_map(r1, r2, r3)
        insn(0x95, 0, 0, 0, 0),                          // return r0
    ]
}

/// `union bpf_attr`, as a zeroed buffer the commands fill field by field
/// (offsets from include/uapi/linux/bpf.h; the kernel wants unused bytes 0).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn call(&mut self, cmd: i64, op: &'static str) -> Result<libc::c_long, XskError> {
        // SAFETY: `self` is a bpf_attr-sized, zero-padded buffer whose
        // pointers (if any) point at live data for the call's duration.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                self.0.as_mut_ptr(),
                std::mem::size_of::<Attr>() as u32,
            )
        };
        if r < 0 {
            return Err(err(op));
        }
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: a fresh descriptor bpf(2) returned (close-on-exec set by the
    // kernel), owned by us from here.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// The XSKMAP and the program redirecting to it; attach it with
/// [`XdpProgram::attach`].
pub struct XdpProgram {
    map: OwnedFd,
    prog: OwnedFd,
}

/// The program attached to an interface through a BPF link
/// (`BPF_LINK_CREATE`): it is detached when the link's last fd closes —
/// on drop, on exit, on a crash.
pub struct XdpLink {
    _link: OwnedFd,
}

impl XdpProgram {
    /// `BPF_MAP_CREATE` (an XSKMAP of `entries` queue ids) and
    /// `BPF_PROG_LOAD` of [`program`]; the verifier's log is in the error.
    pub fn load(entries: u32) -> Result<XdpProgram, XskError> {
        // bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries.
        let map = Attr::new()
            .u32(0, bpf::MAP_TYPE_XSKMAP)
            .u32(4, 4)
            .u32(8, 4)
            .u32(12, entries.max(1))
            .call(bpf::MAP_CREATE, "BPF_MAP_CREATE(XSKMAP)")?;
        let map = owned(map);
        let insns = program(map.as_raw_fd());
        let license = b"Dual MIT/GPL\0";
        let mut log = vec![0u8; 4096];
        // BPF_PROG_LOAD: prog_type 0, insn_cnt 4, insns 8, license 16,
        // log_level 24, log_size 28, log_buf 32, expected_attach_type 68.
        let mut a = Attr::new();
        a.u32(0, bpf::PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .u32(68, bpf::ATTACH_XDP);
        let prog = match a.call(bpf::PROG_LOAD, "BPF_PROG_LOAD(XDP)") {
            Ok(fd) => owned(fd),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(0);
                let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
                return Err(XskError {
                    op: "BPF_PROG_LOAD(XDP)",
                    source: if text.is_empty() {
                        e.source
                    } else {
                        io::Error::new(e.source.kind(), format!("{}; verifier: {text}", e.source))
                    },
                });
            }
        };
        Ok(XdpProgram { map, prog })
    }

    /// `BPF_LINK_CREATE` on `ifindex` (`attach_type` BPF_XDP, no mode flag:
    /// the driver's native XDP when it has `ndo_bpf`, else generic —
    /// net/core/dev.c `dev_xdp_mode`). `EBUSY`: another program is attached.
    pub fn attach(&self, ifindex: u32) -> Result<XdpLink, XskError> {
        // BPF_LINK_CREATE: prog_fd 0, target_ifindex 4, attach_type 8, flags 12.
        let fd = Attr::new()
            .u32(0, self.prog.as_raw_fd() as u32)
            .u32(4, ifindex)
            .u32(8, bpf::ATTACH_XDP)
            .call(bpf::LINK_CREATE, "BPF_LINK_CREATE(XDP)")?;
        Ok(XdpLink { _link: owned(fd) })
    }

    /// The map's fd (to insert sockets from the queues' lcores).
    pub fn map(&self) -> XskMap {
        XskMap {
            // SAFETY: dup of our live map fd; the copy is owned by the result.
            fd: owned(
                unsafe { libc::fcntl(self.map.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) }
                    as libc::c_long,
            ),
        }
    }
}

/// An XSKMAP: queue id → socket.
pub struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    /// `BPF_MAP_UPDATE_ELEM`: frames of queue `qid` go to socket `xsk_fd`.
    pub fn insert(&self, qid: u32, xsk_fd: RawFd) -> Result<(), XskError> {
        let (k, v) = (qid, xsk_fd as u32);
        // map_fd 0, key 8, value 16, flags 24 (BPF_ANY = 0).
        Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, &k as *const u32 as u64)
            .u64(16, &v as *const u32 as u64)
            .call(bpf::MAP_UPDATE_ELEM, "BPF_MAP_UPDATE_ELEM(XSKMAP)")
            .map(|_| ())
    }

    /// `BPF_MAP_DELETE_ELEM`: queue `qid`'s frames go to the kernel again.
    pub fn remove(&self, qid: u32) {
        let k = qid;
        let _ = Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, &k as *const u32 as u64)
            .call(bpf::MAP_DELETE_ELEM, "BPF_MAP_DELETE_ELEM(XSKMAP)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_frame_lands_at_the_default_headroom() {
        // Fill entries are object starts: the kernel's XDP_PACKET_HEADROOM
        // from there is the mbuf's default headroom into its buffer.
        assert_eq!(
            RX_DATA_OFF,
            crate::mbuf::PoolConfig::default().headroom as usize
        );
    }

    #[test]
    fn the_program_encodes_as_the_abi_says() {
        let p = program(7);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        // r2 = *(u32 *)(r1 + 16): dst 2, src 1.
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        // ld_imm64 r1, map fd 7 with src = BPF_PSEUDO_MAP_FD.
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
    }
}
