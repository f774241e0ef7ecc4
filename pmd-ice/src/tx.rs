//! The ice TX queue: descriptor ring, doorbell, completion.
//!
//! Seed 002 stages: `ice_start_xmit` → `ice_xmit_frame_ring` → `ice_tx_map` →
//! `__netdev_tx_sent_queue` (the doorbell decision). Here the whole
//! `xmit_more` batch is one [`IceTxQueue::tx_burst`]: descriptors for every
//! packet, `RS` every `tx_rs_thresh` descriptors, one `QTX_COMM_DBELL` write
//! after a store fence. Completion checks `DESC_DONE` on the RS descriptors
//! only and frees whole batches (`ice_clean_tx_irq`, DPDK `ci_tx_xmit_cleanup`).

use crate::hw::IceHw;
use crate::regs::*;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use wirespeed::eal::dma::DmaRegion;
use wirespeed::eal::tsc::rdtsc;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{CarrierPoll, Completed, PortEvent, QueueStats, TxQueue};
use wirespeed::mbuf::{ol, Burst, Mbuf};

/// State a TX queue shares with its port (control plane).
#[derive(Debug)]
pub struct TxShared {
    pub q: u16,
    pub ring_iova: u64,
    pub qlen: u16,
    /// The device has the queue enabled.
    pub enabled: AtomicBool,
    /// Bumped when the port disabled the queue (stop); the owner resets its ring.
    pub epoch: AtomicU32,
    /// Nonzero: an MDD event (its MAL_TYPE) is waiting for the owner.
    pub mdd: Arc<AtomicU32>,
    pub teid: AtomicU32,
}

/// An E810 TX queue, owned by one lcore.
pub struct IceTxQueue<R: RegisterSpace> {
    q: u16,
    regs: Arc<R>,
    dbell: u32,
    ring: DmaRegion,
    n: u32,
    /// Mbuf of each packet, stored at its last descriptor.
    sw: Vec<Option<Mbuf>>,
    /// Length of that packet as it was offered (before any padding): the
    /// bytes the netdev layer queued to BQL, so the bytes completion reports.
    sw_len: Box<[u32]>,
    ntu: u32,
    ntc: u32,
    free: u32,
    /// Descriptor indices that carry RS, oldest first (a fixed ring).
    rs: Box<[u32]>,
    rs_r: usize,
    rs_w: usize,
    since_rs: u32,
    rs_thresh: u32,
    free_thresh: u32,
    pending: Completed,
    stats: Arc<QueueStats>,
    shared: Arc<TxShared>,
    hw: Arc<Mutex<IceHw<R>>>,
    epoch: u32,
    vlan_insert: bool,
    last_mdd_check: u64,
    mdd_check_cycles: u64,
    events: u64,
    /// A reset whose re-add failed: reported by the next `poll_event`.
    reset_error: Option<String>,
    prefetchw: bool,
    /// The link as the firmware last reported it, re-read at most every
    /// [`CarrierPoll::PMD_PERIOD`].
    link: CarrierPoll,
}

/// Whether the CPU has PREFETCHW (CPUID 0x8000_0001 ECX bit 8, "3dnowprefetch").
fn cpu_has_prefetchw() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        #[allow(unused_unsafe)] // `__cpuid` became safe in newer Rust
        *HAS.get_or_init(|| {
            // SAFETY: CPUID is available on every x86_64 CPU; leaf 0x8000_0000
            // tells whether the extended leaf exists before it is queried.
            unsafe {
                let max = std::arch::x86_64::__cpuid(0x8000_0000).eax;
                max >= 0x8000_0001 && std::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

impl<R: RegisterSpace> IceTxQueue<R> {
    // Crate-internal constructor called from one place (IcePort::ice_tx_queue).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        q: u16,
        abs_q: u16,
        regs: Arc<R>,
        ring: DmaRegion,
        n: u16,
        stats: Arc<QueueStats>,
        shared: Arc<TxShared>,
        hw: Arc<Mutex<IceHw<R>>>,
        vlan_insert: bool,
    ) -> IceTxQueue<R> {
        let n = n as u32;
        let rs_thresh = (DEFAULT_TX_RS_THRESH as u32).min(n / 2);
        let cap = n as usize + 1;
        IceTxQueue {
            q,
            regs,
            dbell: qtx_comm_dbell(abs_q as u32),
            ring,
            n,
            sw: (0..n).map(|_| None).collect(),
            sw_len: vec![0u32; n as usize].into_boxed_slice(),
            ntu: 0,
            ntc: 0,
            free: n - 1,
            rs: vec![0u32; cap].into_boxed_slice(),
            rs_r: 0,
            rs_w: 0,
            since_rs: 0,
            rs_thresh,
            free_thresh: (DEFAULT_TX_FREE_THRESH as u32).min(n / 2),
            pending: Completed::default(),
            stats,
            epoch: shared.epoch.load(Ordering::Acquire),
            shared,
            hw,
            vlan_insert,
            last_mdd_check: 0,
            mdd_check_cycles: wirespeed::eal::Tsc::global().ns_to_cycles(100_000),
            events: 0,
            reset_error: None,
            prefetchw: cpu_has_prefetchw(),
            link: CarrierPoll::new(CarrierPoll::PMD_PERIOD),
        }
    }

    /// Packets (not descriptors) waiting for completion.
    pub fn in_flight(&self) -> u32 {
        self.n - 1 - self.free
    }

    /// Descriptor index the driver fills next (tests watch ring wrap).
    pub fn next_to_use(&self) -> u32 {
        self.ntu
    }

    #[inline(always)]
    fn write_desc(&mut self, i: u32, qw0: u64, qw1: u64) {
        debug_assert!(i < self.n);
        // SAFETY: i < n and the ring region holds n 16-byte descriptors; the
        // device does not own slot i (it is free in the driver's accounting).
        unsafe {
            let p = self.ring.as_ptr().add(i as usize * TX_DESC_SIZE) as *mut u64;
            std::ptr::write_volatile(p, qw0.to_le());
            std::ptr::write_volatile(p.add(1), qw1.to_le());
        }
    }

    #[inline(always)]
    fn read_qw1(&self, i: u32) -> u64 {
        // SAFETY: i < n; volatile because the device writes DESC_DONE back.
        unsafe {
            let p = self.ring.as_ptr().add(i as usize * TX_DESC_SIZE + 8) as *const u64;
            u64::from_le(std::ptr::read_volatile(p))
        }
    }

    #[inline(always)]
    fn set_rs(&mut self, i: u32) {
        let qw1 = self.read_qw1(i) | (TX_DESC_CMD_RS << TXD_QW1_CMD_S);
        // SAFETY: as in `write_desc`; the doorbell for `i` has not been rung yet.
        unsafe {
            let p = self.ring.as_ptr().add(i as usize * TX_DESC_SIZE + 8) as *mut u64;
            std::ptr::write_volatile(p, qw1.to_le());
        }
        self.rs[self.rs_w] = i;
        self.rs_w = if self.rs_w + 1 == self.rs.len() {
            0
        } else {
            self.rs_w + 1
        };
        self.since_rs = 0;
    }

    /// Plays the part of `ice_clean_tx_irq` (DPDK `ci_tx_xmit_cleanup`):
    /// checks `DESC_DONE` on the oldest RS descriptors and frees every mbuf
    /// up to each done one, stopping once `budget` packets were reclaimed.
    fn reclaim(&mut self, budget: u32) {
        let mut pkts = 0u32;
        let mut bytes = 0u64;
        while self.rs_r != self.rs_w && pkts < budget {
            let idx = self.rs[self.rs_r];
            if self.read_qw1(idx) & TXD_QW1_DTYPE_M != TX_DESC_DTYPE_DESC_DONE {
                break;
            }
            let mut i = self.ntc;
            let mut freed = 0u32;
            loop {
                if let Some(m) = self.sw[i as usize].take() {
                    pkts += 1;
                    bytes += u64::from(self.sw_len[i as usize]);
                    drop(m);
                }
                freed += 1;
                let last = i == idx;
                i = if i + 1 == self.n { 0 } else { i + 1 };
                if last {
                    break;
                }
            }
            self.ntc = i;
            self.free += freed;
            self.rs_r = if self.rs_r + 1 == self.rs.len() {
                0
            } else {
                self.rs_r + 1
            };
        }
        if pkts > 0 {
            self.stats.packets.add(pkts as u64);
            self.stats.bytes.add(bytes);
            self.pending.packets += pkts;
            self.pending.bytes += bytes;
        }
    }

    /// Drops everything still on the ring (after the device disabled the
    /// queue): each packet is counted once in `drops` and reported complete,
    /// so BQL's in-flight count drains (`netdev_tx_reset_queue`).
    fn discard_ring(&mut self) {
        self.reclaim(u32::MAX);
        let mut dropped = 0u64;
        let mut bytes = 0u64;
        for (s, &len) in self.sw.iter_mut().zip(self.sw_len.iter()) {
            if s.take().is_some() {
                dropped += 1;
                bytes += u64::from(len);
            }
        }
        self.stats.drops.add(dropped);
        self.pending.packets += dropped as u32;
        self.pending.bytes += bytes;
        self.ntu = 0;
        self.ntc = 0;
        self.free = self.n - 1;
        self.rs_r = 0;
        self.rs_w = 0;
        self.since_rs = 0;
    }

    /// A packet this queue cannot send: freed, counted in `drops`, and
    /// reported complete on the next `clean` so queue accounting balances.
    /// `len` is its length as offered (what BQL was told).
    #[cold]
    fn drop_packet(&mut self, m: Mbuf, len: usize) {
        drop(m);
        self.stats.drops.add(1);
        self.pending.packets += 1;
        self.pending.bytes += len as u64;
    }

    /// Asks for write ownership of the ring lines the next `n` descriptors
    /// live in, so the misses overlap instead of stalling one by one (the
    /// device side last read those lines).
    #[inline(always)]
    fn prefetch_ring(&self, n: usize) {
        #[cfg(target_arch = "x86_64")]
        if self.prefetchw {
            let per_line = (64 / TX_DESC_SIZE) as u32;
            let lines = (n.min(self.free as usize) as u32).div_ceil(per_line);
            let mut i = self.ntu & !(per_line - 1);
            for _ in 0..=lines {
                // SAFETY: i < n (wrapped below), so the address is inside the
                // ring; PREFETCHW (checked by CPUID at queue set-up) is a hint
                // with no architectural effect on memory or flags.
                unsafe {
                    std::arch::asm!(
                        "prefetchw [{p}]",
                        p = in(reg) self.ring.as_ptr().add(i as usize * TX_DESC_SIZE),
                        options(nostack, preserves_flags, readonly)
                    );
                }
                i += per_line;
                if i >= self.n {
                    i = 0;
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = n;
    }

    /// Descriptors a packet needs: one per non-empty segment, split at
    /// 16383 bytes (`ice_tx_map`'s `ICE_MAX_DATA_PER_TXD` split).
    #[inline(always)]
    fn descs_needed(m: &Mbuf) -> usize {
        if m.nb_segs() == 1 {
            return m.data_len().div_ceil(MAX_DATA_PER_TXD).max(1);
        }
        m.segments()
            .map(|s| s.data.len().div_ceil(MAX_DATA_PER_TXD))
            .sum::<usize>()
            .max(1)
    }

    /// Diagnostic: the two quadwords of descriptor `i` as they are in memory now.
    pub fn descriptor(&self, i: u32) -> (u64, u64) {
        assert!(i < self.n, "descriptor {i} outside a ring of {}", self.n);
        // SAFETY: i < n; volatile (the device may be writing it back).
        let qw0 = unsafe {
            u64::from_le(std::ptr::read_volatile(
                self.ring.as_ptr().add(i as usize * TX_DESC_SIZE) as *const u64,
            ))
        };
        (qw0, self.read_qw1(i))
    }

    /// Diagnostic: posts one hand-built descriptor and rings the doorbell,
    /// bypassing every check `tx_burst` makes (used to provoke MDD in tests).
    /// Returns false (posting nothing) when the ring has no free slot.
    pub fn post_raw_descriptor(&mut self, qw0: u64, qw1: u64) -> bool {
        if self.free == 0 {
            return false;
        }
        let i = self.ntu;
        self.write_desc(i, qw0, qw1);
        self.ntu = if i + 1 == self.n { 0 } else { i + 1 };
        self.free -= 1;
        fence(Ordering::Release);
        self.regs.write32(self.dbell, self.ntu);
        true
    }

    /// Resets and re-enables the queue after the device disabled it
    /// (dis_txqs + add_txqs), dropping what was in flight.
    fn recover(&mut self) -> Result<(), String> {
        let hw = self.hw.clone();
        let mut hw = hw.lock().unwrap_or_else(|e| e.into_inner());
        // The device may already have forgotten the queue (ENOENT): fine.
        let _ = hw.dis_txq(self.q);
        self.shared.enabled.store(false, Ordering::Release);
        self.discard_ring();
        let teid = hw
            .add_txq(self.q, self.shared.ring_iova, self.shared.qlen)
            .map_err(|e| e.to_string())?;
        self.shared.teid.store(teid, Ordering::Relaxed);
        self.shared.enabled.store(true, Ordering::Release);
        Ok(())
    }
}

impl<R: RegisterSpace> TxQueue for IceTxQueue<R> {
    fn index(&self) -> u16 {
        self.q
    }

    /// Plays the part of `ice_start_xmit` → `ice_xmit_frame_ring` →
    /// `ice_tx_map` for a whole `xmit_more` batch, with
    /// `__netdev_tx_sent_queue`'s verdict fixed to "kick on the last packet":
    /// one store fence and one `QTX_COMM_DBELL` write per call.
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        if !self.shared.enabled.load(Ordering::Acquire) {
            return 0;
        }
        let e = self.shared.epoch.load(Ordering::Acquire);
        if e != self.epoch {
            self.epoch = e;
            self.discard_ring();
        }
        if self.free < self.free_thresh {
            self.reclaim(u32::MAX);
        }
        self.prefetch_ring(pkts.len());
        let mut taken = 0usize;
        let mut last_eop = u32::MAX;
        while let Some(mut m) = pkts.pop_front() {
            // The length the caller queued to BQL (`netdev_tx_sent_queue`);
            // completion reports exactly this, padding or not.
            let offered_len = m.pkt_len();
            // skb_put_padto(skb, ICE_MIN_TX_LEN): the part flags shorter frames.
            if m.pkt_len() < TX_MIN_PKT_LEN {
                let pad = TX_MIN_PKT_LEN - m.pkt_len();
                match m.append(pad) {
                    Ok(b) => b.fill(0),
                    Err(_) => {
                        self.drop_packet(m, offered_len);
                        taken += 1;
                        continue;
                    }
                }
            }
            // ice_xmit_frame_ring's linearize check: too many buffers or too big
            // for one frame (no TSO in safe mode) → dropped and counted.
            let need = Self::descs_needed(&m);
            if need > MAX_BUF_TXD || m.pkt_len() > MAX_FRAME_SIZE {
                self.drop_packet(m, offered_len);
                taken += 1;
                continue;
            }
            // ice_maybe_stop_tx: room for this packet's descriptors, never
            // the slot that would make tail == head.
            if need as u32 > self.free {
                self.reclaim(u32::MAX);
                if need as u32 > self.free {
                    // Back to the caller (cannot fail: we just took it).
                    let _ = pkts.push_front(m);
                    break;
                }
            }
            // VLAN insertion via L2TAG1 in the data descriptor (ice_tx_prepare_vlan_flags).
            let mut cmd = 0u64;
            let mut l2tag1 = 0u64;
            if self.vlan_insert && m.ol_flags() & ol::TX_VLAN != 0 {
                cmd |= TX_DESC_CMD_IL2TAG1;
                l2tag1 = m.vlan_tci() as u64;
            }
            let base = TX_DESC_DTYPE_DATA | (l2tag1 << TXD_QW1_L2TAG1_S);
            let mut i = self.ntu;
            let mut used = 0u32;
            let mut last = i;
            if m.nb_segs() == 1 {
                let len = m.data_len() as u64;
                if len as usize <= MAX_DATA_PER_TXD {
                    let qw1 = base
                        | ((cmd | TX_DESC_CMD_EOP) << TXD_QW1_CMD_S)
                        | (len << TXD_QW1_TX_BUF_SZ_S);
                    debug_assert!(
                        wirespeed::eal::dma::iova_mapped(m.data_iova(), m.data_len()),
                        "ice: TX buffer IOVA {:#x} outside every mapped DMA region",
                        m.data_iova()
                    );
                    self.write_desc(i, m.data_iova(), qw1);
                    last = i;
                    used = 1;
                    i = if i + 1 == self.n { 0 } else { i + 1 };
                }
            }
            if used == 0 {
                // ice_tx_map: one descriptor per segment (split above 16383 bytes).
                let segs: usize = need;
                let mut k = 0usize;
                let mut chunks: [(u64, u64); MAX_BUF_TXD] = [(0, 0); MAX_BUF_TXD];
                for s in m.segments() {
                    let mut off = 0usize;
                    while off < s.data.len() {
                        let sz = (s.data.len() - off).min(MAX_DATA_PER_TXD);
                        chunks[k] = (s.iova + off as u64, sz as u64);
                        k += 1;
                        off += sz;
                    }
                }
                debug_assert_eq!(k, segs);
                for (j, &(iova, sz)) in chunks[..k].iter().enumerate() {
                    let eop = if j + 1 == k { TX_DESC_CMD_EOP } else { 0 };
                    let qw1 = base | ((cmd | eop) << TXD_QW1_CMD_S) | (sz << TXD_QW1_TX_BUF_SZ_S);
                    debug_assert!(
                        wirespeed::eal::dma::iova_mapped(iova, sz as usize),
                        "ice: TX buffer IOVA {iova:#x} outside every mapped DMA region"
                    );
                    self.write_desc(i, iova, qw1);
                    last = i;
                    i = if i + 1 == self.n { 0 } else { i + 1 };
                }
                used = k as u32;
            }
            self.sw[last as usize] = Some(m);
            self.sw_len[last as usize] = offered_len as u32;
            self.ntu = i;
            self.free -= used;
            self.since_rs += used;
            if self.since_rs >= self.rs_thresh {
                self.set_rs(last);
            }
            last_eop = last;
            taken += 1;
        }
        if last_eop != u32::MAX {
            // A partial RS batch at the end of the burst still gets RS, so a
            // lone packet (an ARP request) completes too.
            if self.since_rs > 0 {
                self.set_rs(last_eop);
            }
            // wmb() then the tail: one doorbell for the whole batch.
            fence(Ordering::Release);
            self.regs.write32(self.dbell, self.ntu);
            // Ask for the lines the next burst will write now, so their
            // ownership moves over while the caller does other work.
            self.prefetch_ring(self.rs_thresh as usize);
        }
        taken
    }

    /// Plays the part of `ice_clean_tx_irq`: reclaims completed RS batches
    /// (up to `budget` packets) and reports them, plus any packets the queue
    /// dropped or discarded since the last call, for BQL's
    /// `netdev_tx_completed_queue`.
    fn clean(&mut self, budget: usize) -> Completed {
        self.reclaim(budget.min(u32::MAX as usize) as u32);
        std::mem::take(&mut self.pending)
    }

    fn free_slots(&self) -> usize {
        self.free as usize
    }

    fn ring_size(&self) -> usize {
        self.n as usize
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// The link the firmware reported (get_link_status, then its
    /// link-status events on the ARQ, serviced here when the control path
    /// is free; busy, the last answer stands) — `ice_link_event` →
    /// `netif_carrier_off`/`on`.
    fn carrier(&self) -> bool {
        self.link.get(|| {
            let mut hw = self.hw.try_lock().ok()?;
            hw.service_arq();
            Some(hw.link.up)
        })
    }

    /// Plays the part of DPDK's `ice_tx_queue_stop` + `ice_tx_queue_start`
    /// (`ice_dis_vsi_txq` / `ice_ena_vsi_txq`) for the watchdog. Linux
    /// `ice_tx_timeout` goes further at its first recovery level: it asks
    /// for a PF reset (`ICE_PFR_REQ`), whose rebuild disables and re-adds
    /// every TX queue this way; here only the hung queue is rebuilt, so the
    /// others keep sending. The queue is disabled through the admin queue (`dis_txqs`, 0x0C31, with
    /// `ICE_AQC_Q_DIS_CMD_FLUSH_PIPE`, as `ice_aq_dis_lan_txq` sends it: the
    /// firmware answers once the scheduler let go of the ring), what the
    /// device completed is reported, every packet still on the ring is
    /// freed and counted in `drops`, and the queue is added again with a
    /// fresh TLAN context (`add_txqs`, 0x0C30; head and tail back at 0).
    /// Returns every packet reported (the `TxQueue::reset` contract); when
    /// re-adding fails the queue stays disabled, its packets still
    /// reported, and the error is raised as an event by the next
    /// `poll_event`.
    fn reset(&mut self) -> Option<Completed> {
        if let Err(e) = self.recover() {
            tracing::warn!(queue = self.q, "ice: TX queue reset: re-adding failed: {e}");
            self.reset_error = Some(e);
        }
        Some(std::mem::take(&mut self.pending))
    }

    /// Surfaces a malicious-driver event for this queue (`ice_handle_mdd_event`):
    /// the device disabled the queue; the driver drops what was in flight,
    /// re-enables the queue and reports what happened.
    fn poll_event(&mut self) -> Option<PortEvent> {
        if let Some(e) = self.reset_error.take() {
            return Some(PortEvent {
                queue: Some(self.q),
                kind: "tx-reset-failed".into(),
                detail: format!(
                    "TX queue {}: re-adding the queue after a reset failed: {e} (reopen the port)",
                    self.q
                ),
            });
        }
        // A plain load first: the swap (an atomic RMW) only when flagged.
        let mut kind = if self.shared.mdd.load(Ordering::Relaxed) != 0 {
            self.shared.mdd.swap(0, Ordering::AcqRel)
        } else {
            0
        };
        if kind == 0 {
            let now = rdtsc();
            if now.wrapping_sub(self.last_mdd_check) < self.mdd_check_cycles {
                return None;
            }
            self.last_mdd_check = now;
            self.hw
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain_mdd();
            kind = self.shared.mdd.swap(0, Ordering::AcqRel);
            if kind == 0 {
                return None;
            }
        }
        self.events += 1;
        let dropped_before = self.stats.drops.get();
        let res = self.recover();
        let dropped = self.stats.drops.get() - dropped_before;
        Some(PortEvent {
            queue: Some(self.q),
            kind: "mdd".into(),
            detail: match res {
                Ok(()) => format!(
                    "TX queue {}: malicious-driver detection ({}); {dropped} in-flight packets dropped, queue reset and re-enabled",
                    self.q,
                    mal_type::name(kind)
                ),
                Err(e) => format!(
                    "TX queue {}: malicious-driver detection ({}); re-enabling failed: {e} (reopen the port)",
                    self.q,
                    mal_type::name(kind)
                ),
            },
        })
    }
}

impl<R: RegisterSpace> Drop for IceTxQueue<R> {
    fn drop(&mut self) {
        // Stop the device reading the ring before the memory goes away.
        if self.shared.enabled.swap(false, Ordering::AcqRel) {
            let mut hw = self.hw.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = hw.dis_txq(self.q) {
                tracing::warn!(
                    queue = self.q,
                    "ice: disabling TX queue on drop failed: {e}"
                );
            }
        }
        let mut hw = self.hw.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = hw.mdd_flags.get_mut(self.q as usize) {
            // Only our own flag: a reconfigured port may own a newer queue q.
            if s.as_ref().is_some_and(|f| Arc::ptr_eq(f, &self.shared.mdd)) {
                *s = None;
            }
        }
    }
}
