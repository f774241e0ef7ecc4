//! The igb transmit queue: advanced data descriptors, advanced context
//! descriptors for checksum and VLAN offloads (cached, two per queue), RS/DD
//! completion in batches, one TDT doorbell per burst.

use crate::regs::*;
use std::ptr::NonNull;
use std::sync::Arc;
use wirespeed::eal::{DmaRegion, RegisterSpace};
use wirespeed::ethdev::{CarrierPoll, Completed, PortEvent, QueueStats, TxQueue};
use wirespeed::mbuf::{ol, Burst, Mbuf, MbufHdr};

/// Offloads this queue implements ([`wirespeed::mbuf::ol`] bits).
pub const TX_OFFLOAD_CAPA: u32 =
    ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM | ol::TX_TCP_CKSUM | ol::TX_VLAN | ol::TX_TSO;

/// Descriptors between RS bits (the last descriptor of a burst always has RS).
pub const DEFAULT_RS_THRESH: u16 = 32;

/// The offload tuple one context descriptor describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct CtxKey {
    vlan_macip_lens: u32,
    type_tucmd: u32,
    mss_l4len: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct TxEntry {
    /// The packet whose last descriptor sits in this slot.
    mbuf: Option<NonNull<MbufHdr>>,
    bytes: u32,
    /// For the first slot of an RS group: the slot holding the group's RS bit.
    rs_last: u16,
}

/// One igb TX queue. Owned by one lcore; `R` is the register window
/// (monomorphized for MMIO, or the device model).
pub struct IgbTxQueue<R: RegisterSpace> {
    regs: Arc<R>,
    q: u16,
    /// The configured TX offloads ([`TX_OFFLOAD_CAPA`] bits the port's
    /// `tx_offloads` asked for): what the netdev layer leaves to the queue.
    offloads: u32,
    /// Ring of `n` 16-byte descriptors in DMA memory.
    ring: DmaRegion,
    desc: NonNull<[u64; 2]>,
    n: u16,
    /// Next slot to fill (what TDT gets).
    tail: u16,
    /// Oldest slot not yet reclaimed.
    clean: u16,
    /// Slots the driver may fill; one slot always stays empty (TDT never
    /// catches up with TDH).
    nb_free: u16,
    /// First slot of the group the next RS bit closes.
    rs_start: u16,
    since_rs: u16,
    rs_thresh: u16,
    /// Slot and command word of the last data descriptor written in this burst.
    last_cmd: Option<(u16, u64)>,
    sw: Box<[TxEntry]>,
    ctx: [Option<CtxKey>; 2],
    /// The context slot to overwrite next (least recently used).
    ctx_lru: usize,
    ctx_written: u64,
    doorbells: u64,
    pending: Completed,
    stats: Arc<QueueStats>,
    port: String,
    /// Consecutive cleans that found work outstanding but nothing done.
    stall_polls: u32,
    event: Option<PortEvent>,
    stop_reported: bool,
    /// STATUS.LU as last read, re-read at most every
    /// [`CarrierPoll::PMD_PERIOD`].
    link: CarrierPoll,
}

/// TXDCTL as programmed: PTHRESH 8, HTHRESH 1, WTHRESH 1 (every RS
/// descriptor is written back at once: no interrupt timer flushes partial
/// write-back batches here), ENABLE.
const TXDCTL_CONF: u32 = 8 | (1 << 8) | (1 << 16) | XDCTL_ENABLE;

/// How long a reset waits for the device to let go of a disabled queue.
const RESET_STOP_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Empty cleans with descriptors outstanding before TXDCTL is read to see
/// whether the device stopped the queue (one MMIO read per this many polls).
pub const STALL_CHECK_POLLS: u32 = 1 << 16;

// SAFETY: the queue exclusively owns its ring and the mbufs parked in `sw`
// (raw handles from `Mbuf::into_raw`); moving it to its lcore moves that
// ownership. Register access goes through `R: Send + Sync`.
unsafe impl<R: RegisterSpace> Send for IgbTxQueue<R> {}

impl<R: RegisterSpace> IgbTxQueue<R> {
    /// Allocates the ring and programs queue `q` (TDBAL/TDBAH/TDLEN, TDH = TDT
    /// = 0, TXDCTL thresholds + ENABLE). The enable latches once TCTL.EN is on.
    pub(crate) fn new(
        regs: Arc<R>,
        port: &str,
        q: u16,
        n: u16,
        stats: Arc<QueueStats>,
    ) -> Result<IgbTxQueue<R>, wirespeed::eal::dma::DmaError> {
        let ring = DmaRegion::alloc(n as usize * DESC_LEN)?;
        let desc = NonNull::new(ring.as_ptr() as *mut [u64; 2]).expect("DMA region is non-null");
        let qi = u32::from(q);
        regs.write32(txdctl(qi), 0);
        regs.write32(tdbal(qi), ring.iova() as u32);
        regs.write32(tdbah(qi), (ring.iova() >> 32) as u32);
        regs.write32(tdlen(qi), (n as usize * DESC_LEN) as u32);
        regs.write32(tdh(qi), 0);
        regs.write32(tdt(qi), 0);
        regs.write32(txdctl(qi), TXDCTL_CONF);
        Ok(IgbTxQueue {
            regs,
            q,
            offloads: 0,
            ring,
            desc,
            n,
            tail: 0,
            clean: 0,
            nb_free: n - 1,
            rs_start: 0,
            since_rs: 0,
            rs_thresh: DEFAULT_RS_THRESH.min(n / 2),
            last_cmd: None,
            sw: vec![TxEntry::default(); n as usize].into_boxed_slice(),
            ctx: [None; 2],
            ctx_lru: 0,
            ctx_written: 0,
            doorbells: 0,
            pending: Completed::default(),
            stats,
            port: port.to_string(),
            stall_polls: 0,
            event: None,
            stop_reported: false,
            link: CarrierPoll::new(CarrierPoll::PMD_PERIOD),
        })
    }

    /// Context descriptors written so far (one per change of offload tuple).
    pub fn context_descriptors(&self) -> u64 {
        self.ctx_written
    }

    /// TDT writes so far (one per non-empty burst).
    pub fn doorbells(&self) -> u64 {
        self.doorbells
    }

    /// The offloads the port was configured with (`dev->features`): with
    /// `TX_TSO` the netdev layer hands super-segments to this queue whole.
    pub fn set_offloads(&mut self, ol: u32) {
        self.offloads = ol & TX_OFFLOAD_CAPA;
    }

    /// Sets the RS interval in descriptors (1 = RS on every packet).
    pub fn set_rs_thresh(&mut self, t: u16) {
        self.rs_thresh = t.clamp(1, self.n / 2);
    }

    #[inline(always)]
    fn next(&self, i: u16) -> u16 {
        if i + 1 == self.n {
            0
        } else {
            i + 1
        }
    }

    #[inline(always)]
    fn write_desc(&mut self, i: u16, lo: u64, hi: u64) {
        // SAFETY: i < n, so the descriptor lies inside the ring region; the
        // device reads it only after the doorbell (ordered by the fence there).
        unsafe {
            let d = self.desc.as_ptr().add(i as usize) as *mut u64;
            std::ptr::write_volatile(d, lo.to_le());
            std::ptr::write_volatile(d.add(1), hi.to_le());
        }
    }

    #[inline(always)]
    fn dd(&self, i: u16) -> bool {
        // SAFETY: i < n; the status dword is written by the device (DMA), so it
        // is read with a volatile load.
        let status = unsafe {
            std::ptr::read_volatile((self.desc.as_ptr().add(i as usize) as *const u32).add(3))
        };
        u32::from_le(status) & TXD_STAT_DD != 0
    }

    /// Closes the open RS group at the last data descriptor written.
    #[inline(always)]
    fn set_rs(&mut self) {
        if let Some((slot, cmd)) = self.last_cmd {
            // SAFETY: `slot` < n; rewrite the second qword with RS set.
            unsafe {
                let d = self.desc.as_ptr().add(slot as usize) as *mut u64;
                std::ptr::write_volatile(d.add(1), (cmd | u64::from(TXD_RS)).to_le());
            }
            self.sw[self.rs_start as usize].rs_last = slot;
            self.rs_start = self.next(slot);
            self.since_rs = 0;
        }
    }

    /// Plays the part of `igb_clean_tx_irq`: walks completed RS groups (DD on
    /// the group's RS descriptor), frees their mbufs and returns the slots.
    fn reclaim(&mut self, budget: usize) -> Completed {
        let mut done = Completed::default();
        while self.clean != self.rs_start && (done.packets as usize) < budget {
            let last = self.sw[self.clean as usize].rs_last;
            if !self.dd(last) {
                break;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            let mut i = self.clean;
            let mut slots = 0u16;
            loop {
                let e = &mut self.sw[i as usize];
                if let Some(p) = e.mbuf.take() {
                    done.packets += 1;
                    done.bytes += u64::from(e.bytes);
                    // SAFETY: `p` came from `Mbuf::into_raw` in tx_burst and is
                    // taken out of the ring exactly once (mbuf.take()).
                    drop(unsafe { Mbuf::from_raw(p) });
                }
                slots += 1;
                if i == last {
                    break;
                }
                i = self.next(i);
            }
            self.nb_free += slots;
            self.clean = self.next(last);
        }
        done
    }

    /// On a stopped queue: the packets whose last descriptor lies before the
    /// device's head (TDH) were processed — sent — even when their RS group
    /// has no DD yet; frees them and reports them as completed.
    fn reclaim_to_head(&mut self) -> Completed {
        let head = self.regs.read32(tdh(u32::from(self.q))) as u16;
        let mut done = Completed::default();
        if head >= self.n {
            return done;
        }
        let mut i = self.clean;
        while i != head && i != self.tail {
            let e = &mut self.sw[i as usize];
            if let Some(p) = e.mbuf.take() {
                done.packets += 1;
                done.bytes += u64::from(e.bytes);
                // SAFETY: each parked handle is reclaimed exactly once
                // (mbuf.take()); the device has processed this slot.
                drop(unsafe { Mbuf::from_raw(p) });
            }
            i = self.next(i);
        }
        done
    }

    /// Plays the part of `igb_clean_tx_ring`: frees every packet still on the
    /// ring (the device has stopped), moving each from the queue's sent
    /// counters to its drops; returns them for the caller to report.
    fn clean_tx_ring(&mut self) -> Completed {
        let mut lost = Completed::default();
        for e in self.sw.iter_mut() {
            if let Some(p) = e.mbuf.take() {
                lost.packets += 1;
                lost.bytes += u64::from(e.bytes);
                // SAFETY: each parked handle is reclaimed exactly once
                // (mbuf.take()), and the device no longer reads the ring.
                drop(unsafe { Mbuf::from_raw(p) });
            }
            *e = TxEntry::default();
        }
        self.stats.packets.sub(u64::from(lost.packets));
        self.stats.bytes.sub(lost.bytes);
        self.stats.drops.add(u64::from(lost.packets));
        lost
    }

    /// Plays the part of `igb_configure_tx_ring` on a stopped queue: zeroed
    /// descriptors, TDH = TDT = 0, the software ring empty, both context
    /// slots forgotten (the device forgets them too), TXDCTL enabled.
    fn configure_tx_ring(&mut self) {
        for i in 0..self.n {
            self.write_desc(i, 0, 0);
        }
        let qi = u32::from(self.q);
        self.regs.write32(tdh(qi), 0);
        self.regs.write32(tdt(qi), 0);
        self.tail = 0;
        self.clean = 0;
        self.nb_free = self.n - 1;
        self.rs_start = 0;
        self.since_rs = 0;
        self.last_cmd = None;
        self.ctx = [None; 2];
        self.ctx_lru = 0;
        self.stall_polls = 0;
        self.stop_reported = false;
        store_fence();
        self.regs.write32(txdctl(qi), TXDCTL_CONF);
    }

    /// A packet this queue took but will not send: freed, and its bytes
    /// added to what the next `clean` reports (the caller counts it in
    /// `drops`).
    #[cold]
    fn drop_packet(&mut self, m: Option<Mbuf>) {
        if let Some(m) = m {
            self.pending.packets += 1;
            self.pending.bytes += m.pkt_len() as u64;
        }
    }

    /// The context descriptor fields for `m`'s offloads, or `None` when it
    /// asks for none.
    #[inline]
    fn ctx_key(m: &Mbuf) -> Option<CtxKey> {
        let f = m.ol_flags() & TX_OFFLOAD_CAPA;
        if f == 0 {
            return None;
        }
        let (mut l2, mut l3, mut l4) = m.tx_lens();
        if f & !ol::TX_VLAN != 0 && (l2 == 0 || l3 == 0 || l4 == 0) {
            let (a, b, c) = header_lens(m.data());
            if l2 == 0 {
                l2 = a;
            }
            if l3 == 0 {
                l3 = b;
            }
            if l4 == 0 {
                l4 = c;
            }
        }
        let mut tucmd = TXD_DTYP_CTXT | TXD_DEXT;
        let mut mss = 0u32;
        if f & ol::TX_TSO != 0 && m.tso_segsz() != 0 {
            // `igb_tso`: a TCP/IPv4 context with the MSS and L4LEN.
            tucmd |= TUCMD_IPV4 | TUCMD_L4T_TCP;
            mss = u32::from(m.tso_segsz());
        } else if f & (ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM | ol::TX_TCP_CKSUM) != 0 {
            if m.ol_flags() & (ol::TX_IPV4 | ol::TX_IP_CKSUM) != 0 {
                tucmd |= TUCMD_IPV4;
            }
            if f & ol::TX_TCP_CKSUM != 0 {
                tucmd |= TUCMD_L4T_TCP;
            } else {
                tucmd |= TUCMD_L4T_UDP;
            }
        } else {
            // VLAN only: no checksum context.
            l3 = 0;
            l4 = 0;
            if l2 == 0 {
                l2 = 14;
            }
        }
        let vlan = if f & ol::TX_VLAN != 0 {
            u32::from(m.vlan_tci())
        } else {
            0
        };
        Some(CtxKey {
            vlan_macip_lens: (u32::from(l3) & CTX_IPLEN_MASK)
                | (u32::from(l2) << CTX_MACLEN_SHIFT)
                | (vlan << CTX_VLAN_SHIFT),
            type_tucmd: tucmd,
            mss_l4len: (u32::from(l4) << CTX_L4LEN_SHIFT) | (mss << CTX_MSS_SHIFT),
        })
    }
}

/// L2, L3 and L4 header lengths read from the frame, for packets that ask for
/// offloads without giving them (untagged or 802.1Q IPv4, UDP or TCP).
fn header_lens(d: &[u8]) -> (u8, u8, u8) {
    if d.len() < 14 {
        return (0, 0, 0);
    }
    let (l2, et) = match u16::from_be_bytes([d[12], d[13]]) {
        0x8100 if d.len() >= 18 => (18usize, u16::from_be_bytes([d[16], d[17]])),
        et => (14usize, et),
    };
    if et != 0x0800 || d.len() < l2 + 20 {
        return (l2 as u8, 0, 0);
    }
    let l3 = ((d[l2] & 0xF) as usize) * 4;
    let l4 = match d[l2 + 9] {
        17 => 8,
        6 if d.len() > l2 + l3 + 12 => ((d[l2 + l3 + 12] >> 4) as usize) * 4,
        _ => 0,
    };
    (l2 as u8, l3 as u8, l4 as u8)
}

/// Orders descriptor stores before the doorbell (`wmb()` in Linux, `rte_wmb`
/// in DPDK).
#[inline(always)]
pub(crate) fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SFENCE has no preconditions; SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// Largest frame the queue accepts (no jumbo frames: RCTL.LPE stays off).
pub const MAX_FRAME: usize = 1518 + 4;
/// Largest TSO packet: a 64 KiB IPv4 datagram (its total length field)
/// behind a tagged Ethernet header (the 82576 takes PAYLEN up to 2^18 - 1,
/// the stack makes no datagram longer than IPv4 can say).
pub const MAX_TSO_FRAME: usize = 65535 + 18;
/// Smallest frame the part transmits (shorter ones are padded by TCTL.PSP,
/// but a descriptor of fewer bytes than this is malformed).
pub const MIN_FRAME: usize = 17;

impl<R: RegisterSpace> TxQueue for IgbTxQueue<R> {
    fn index(&self) -> u16 {
        self.q
    }

    /// Plays the part of `igb_xmit_frame_ring` + `igb_tx_map` for a whole
    /// `xmit_more` batch: per packet an optional context descriptor (only when
    /// the offload tuple differs from both cached contexts, like
    /// `igb_tx_ctxtdesc`), one advanced data descriptor per segment, RS every
    /// `rs_thresh` descriptors and on the burst's last packet, then one store
    /// fence and one TDT write.
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        if self.nb_free < self.rs_thresh {
            let c = self.reclaim(usize::MAX);
            self.pending.packets += c.packets;
            self.pending.bytes += c.bytes;
        }
        let mut taken = 0usize;
        let mut sent_pkts = 0u64;
        let mut sent_bytes = 0u64;
        let mut drops = 0u64;
        while let Some(m) = pkts.front() {
            let len = m.pkt_len();
            let segs = m.nb_segs();
            let tso = m.ol_flags() & ol::TX_TSO != 0 && m.tso_segsz() != 0;
            let max = if tso { MAX_TSO_FRAME } else { MAX_FRAME };
            if !(MIN_FRAME..=max).contains(&len) || segs + 1 >= self.n as usize {
                // Malformed for this NIC: never handed to the device. Like
                // `igb_xmit_frame_ring`'s drop path (`dev_kfree_skb_any`,
                // NETDEV_TX_OK) it is taken; it is counted once in `drops`
                // and reported complete on the next `clean`, so the bytes the
                // netdev layer queued to BQL (`netdev_tx_sent_queue`) leave
                // the in-flight count (`netdev_tx_completed_queue`).
                self.drop_packet(pkts.pop_front());
                drops += 1;
                taken += 1;
                continue;
            }
            let key = Self::ctx_key(m);
            let (idx, need_ctx) = match key {
                None => (0usize, false),
                Some(k) => match self.ctx.iter().position(|c| *c == Some(k)) {
                    Some(i) => (i, false),
                    None => (self.ctx_lru, true),
                },
            };
            let need = segs + usize::from(need_ctx);
            if need > self.nb_free as usize {
                let c = self.reclaim(usize::MAX);
                self.pending.packets += c.packets;
                self.pending.bytes += c.bytes;
                if need > self.nb_free as usize {
                    break;
                }
            }
            let mut olinfo = (len as u32) << TXD_PAYLEN_SHIFT;
            let mut cmd_flags = TXD_DTYP_DATA | TXD_DEXT | TXD_IFCS;
            // The bytes its wire frames carry (`first->bytecount` of
            // `igb_tso`: one header per further segment).
            let mut wire = len;
            if let Some(k) = key {
                if need_ctx {
                    let t = self.tail;
                    self.write_desc(
                        t,
                        u64::from(k.vlan_macip_lens),
                        u64::from(k.type_tucmd)
                            | (u64::from(k.mss_l4len | ((idx as u32) << TXD_IDX_SHIFT)) << 32),
                    );
                    self.ctx[idx] = Some(k);
                    self.ctx_written += 1;
                    self.tail = self.next(t);
                }
                self.ctx_lru = 1 - idx;
                olinfo |= (idx as u32) << TXD_IDX_SHIFT;
                let f = m.ol_flags();
                if tso {
                    // `igb_tso`: TSE, PAYLEN the payload after the headers,
                    // the IPv4 and TCP checksums per segment (IXSM + TXSM).
                    let k = key.expect("a TSO packet has a context");
                    let hdr = ((k.vlan_macip_lens >> CTX_MACLEN_SHIFT) & 0x7F)
                        + (k.vlan_macip_lens & CTX_IPLEN_MASK)
                        + ((k.mss_l4len >> CTX_L4LEN_SHIFT) & 0xFF);
                    let pay = (len as u32).saturating_sub(hdr);
                    olinfo = (pay << TXD_PAYLEN_SHIFT)
                        | ((idx as u32) << TXD_IDX_SHIFT)
                        | TXD_POPTS_IXSM;
                    cmd_flags |= TXD_TSE;
                    let mss = k.mss_l4len >> CTX_MSS_SHIFT;
                    wire += (pay.div_ceil(mss).max(1) as usize - 1) * hdr as usize;
                }
                if f & ol::TX_IP_CKSUM != 0 {
                    olinfo |= TXD_POPTS_IXSM;
                }
                if f & (ol::TX_UDP_CKSUM | ol::TX_TCP_CKSUM) != 0 {
                    olinfo |= TXD_POPTS_TXSM;
                }
                if f & ol::TX_VLAN != 0 {
                    cmd_flags |= TXD_VLE;
                }
            }
            let mut slot = self.tail;
            let mut left = segs;
            for s in m.segments() {
                left -= 1;
                let mut cmd = cmd_flags | (s.data.len() as u32 & TXD_LEN_MASK);
                if left == 0 {
                    cmd |= TXD_EOP;
                }
                let hi = u64::from(cmd) | (u64::from(olinfo) << 32);
                slot = self.tail;
                debug_assert!(
                    wirespeed::eal::dma::iova_mapped(s.iova, s.data.len()),
                    "igb: TX buffer IOVA {:#x} outside every mapped DMA region",
                    s.iova
                );
                self.write_desc(slot, s.iova, hi);
                self.last_cmd = Some((slot, hi));
                self.tail = self.next(slot);
            }
            let m = pkts.pop_front().expect("front exists");
            let e = &mut self.sw[slot as usize];
            e.bytes = wire as u32;
            e.mbuf = Some(m.into_raw());
            self.nb_free -= need as u16;
            self.since_rs += need as u16;
            if self.since_rs >= self.rs_thresh {
                self.set_rs();
            }
            taken += 1;
            sent_pkts += 1;
            sent_bytes += wire as u64;
        }
        if sent_pkts > 0 {
            if self.since_rs > 0 {
                self.set_rs();
            }
            self.last_cmd = None;
            store_fence();
            self.regs
                .write32(tdt(u32::from(self.q)), u32::from(self.tail));
            self.doorbells += 1;
            self.stats.packets.add(sent_pkts);
            self.stats.bytes.add(sent_bytes);
        }
        if drops > 0 {
            self.stats.drops.add(drops);
        }
        taken
    }

    /// Plays the part of `igb_clean_tx_irq` (and `netdev_tx_completed_queue`'s
    /// input): returns what completed since the last call, reclaiming RS
    /// groups whose DD is set, freeing their mbufs.
    fn clean(&mut self, budget: usize) -> Completed {
        let mut c = std::mem::take(&mut self.pending);
        let more = self.reclaim(budget.saturating_sub(c.packets as usize));
        if more.packets == 0 && self.clean != self.rs_start {
            self.stall_polls += 1;
            if self.stall_polls.is_multiple_of(STALL_CHECK_POLLS) && !self.stop_reported {
                let v = self.regs.read32(txdctl(u32::from(self.q)));
                if v & XDCTL_ENABLE == 0 {
                    self.stop_reported = true;
                    self.event = Some(PortEvent {
                        queue: Some(self.q),
                        kind: "tx-queue-stopped".into(),
                        detail: format!(
                            "{}: tx queue {} was disabled by the device with {} descriptors outstanding (TXDCTL {v:#010x})",
                            self.port,
                            self.q,
                            self.n - 1 - self.nb_free
                        ),
                    });
                }
            }
        } else {
            self.stall_polls = 0;
        }
        c.packets += more.packets;
        c.bytes += more.bytes;
        c
    }

    fn free_slots(&self) -> usize {
        self.nb_free as usize
    }

    fn ring_size(&self) -> usize {
        self.n as usize
    }

    fn tx_offloads(&self) -> u32 {
        self.offloads
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// A queue the device stopped (noticed by [`TxQueue::clean`] after
    /// [`STALL_CHECK_POLLS`] fruitless polls), reported once.
    fn poll_event(&mut self) -> Option<PortEvent> {
        self.event.take()
    }

    /// STATUS.LU (`E1000_STATUS_LU`), what `igb_has_link` reads for a
    /// copper PHY; the netdev layer stops the queue while it is clear.
    fn carrier(&self) -> bool {
        self.link
            .get(|| Some(self.regs.read32(STATUS) & STATUS_LU != 0))
    }

    /// Plays the part of `igb_reset_task`'s TX half for this queue (after
    /// `igb_tx_timeout`): reclaims what the device completed, clears
    /// TXDCTL.ENABLE and waits for the device to let go of the ring (polls
    /// until ENABLE reads 0), reclaims what completed meanwhile — by DD,
    /// and up to the head the device stopped at (TDH) — frees the rest (`igb_clean_tx_ring`: counted as drops) and
    /// re-initialises and re-enables the ring (`igb_configure_tx_ring`). A
    /// queue that does not stop in time is left enabled, its packets in
    /// flight, and only what completed is reported.
    fn reset(&mut self) -> Option<Completed> {
        let qi = u32::from(self.q);
        let mut c = std::mem::take(&mut self.pending);
        let add = |c: &mut Completed, d: Completed| {
            c.packets += d.packets;
            c.bytes += d.bytes;
        };
        add(&mut c, self.reclaim(usize::MAX));
        self.regs.write32(txdctl(qi), 0);
        let stopped = crate::hw::wait_for(
            RESET_STOP_WAIT,
            std::time::Duration::from_micros(10),
            || self.regs.read32(txdctl(qi)) & XDCTL_ENABLE == 0,
        );
        if !stopped {
            tracing::warn!(
                "{}: tx queue {} did not stop within {:?}; left running",
                self.port,
                self.q,
                RESET_STOP_WAIT
            );
            self.regs.write32(txdctl(qi), TXDCTL_CONF);
            return Some(c);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        add(&mut c, self.reclaim(usize::MAX));
        add(&mut c, self.reclaim_to_head());
        add(&mut c, self.clean_tx_ring());
        self.configure_tx_ring();
        Some(c)
    }
}

impl<R: RegisterSpace> Drop for IgbTxQueue<R> {
    fn drop(&mut self) {
        // Stop the queue and wait (bounded) for the device to let go of the
        // ring before its mbufs are freed and the ring unmapped.
        let qi = u32::from(self.q);
        self.regs.write32(txdctl(qi), TXDCTL_SWFLSH);
        let ok = crate::hw::wait_for(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_micros(100),
            || self.regs.read32(txdctl(qi)) & XDCTL_ENABLE == 0,
        );
        if !ok {
            tracing::warn!(
                "{}: tx queue {} did not stop within 100 ms",
                self.port,
                self.q
            );
        }
        for e in self.sw.iter_mut() {
            if let Some(p) = e.mbuf.take() {
                // SAFETY: each parked handle is reclaimed exactly once.
                drop(unsafe { Mbuf::from_raw(p) });
            }
        }
        let _ = &self.ring;
    }
}

#[cfg(test)]
mod tests {
    use super::header_lens;

    #[test]
    fn header_lens_of_plain_and_tagged_udp() {
        let mut f = vec![0u8; 60];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 17;
        assert_eq!(header_lens(&f), (14, 20, 8));
        let mut t = vec![0u8; 64];
        t[12] = 0x81;
        t[16] = 0x08;
        t[18] = 0x46;
        t[18 + 9] = 6;
        t[18 + 24 + 12] = 0x50;
        assert_eq!(header_lens(&t), (18, 24, 20));
        assert_eq!(header_lens(&[0u8; 10]), (0, 0, 0));
    }
}
