//! The igb receive queue: advanced one-buffer descriptors with 2 KiB buffers
//! from the mempool handed to `rx_burst`, refilled and RDT-written in batches.

use crate::regs::*;
use std::ptr::NonNull;
use std::sync::Arc;
use wirespeed::eal::{DmaRegion, RegisterSpace};
use wirespeed::ethdev::{QueueStats, RxQueue};
use wirespeed::mbuf::{ol, Burst, Mbuf, Mempool};

/// Refill once this many descriptors wait for buffers.
pub const RX_FREE_THRESH: u16 = 32;
/// Packet buffer size programmed in SRRCTL (1 KiB units).
pub const RX_BUF_KB: u32 = 2;

/// One igb RX queue, owned by one lcore.
pub struct IgbRxQueue<R: RegisterSpace> {
    regs: Arc<R>,
    q: u16,
    port_id: u16,
    ring: DmaRegion,
    desc: NonNull<[u64; 2]>,
    n: u16,
    /// Next descriptor to check for DD.
    next: u16,
    /// Next descriptor to give a buffer (RDT after the batch).
    tail: u16,
    sw: Box<[Option<Mbuf>]>,
    refills: u64,
    stats: Arc<QueueStats>,
    warned_pool: bool,
    /// Stopped by [`RxQueue::stop`]: the next `rx_burst` re-enables.
    stopped: bool,
}

/// RXDCTL: PTHRESH 8, HTHRESH 8, WTHRESH 1, ENABLE — each descriptor is
/// written back at once (no interrupt timer would flush a partial batch).
const RXDCTL_VALUE: u32 = 8 | (8 << 8) | (1 << 16) | XDCTL_ENABLE;

// SAFETY: the queue exclusively owns its ring and the mbufs in `sw`; moving it
// to its lcore moves that ownership. Registers go through `R: Send + Sync`.
unsafe impl<R: RegisterSpace> Send for IgbRxQueue<R> {}

impl<R: RegisterSpace> IgbRxQueue<R> {
    /// Allocates the ring and programs queue `q`: base/length, SRRCTL advanced
    /// one-buffer with 2 KiB buffers, RDH = RDT = 0 (no buffers yet: the first
    /// `rx_burst` fills the ring from its mempool), RXDCTL thresholds + ENABLE.
    pub(crate) fn new(
        regs: Arc<R>,
        q: u16,
        n: u16,
        stats: Arc<QueueStats>,
    ) -> Result<IgbRxQueue<R>, wirespeed::eal::dma::DmaError> {
        let ring = DmaRegion::alloc(n as usize * DESC_LEN)?;
        let desc = NonNull::new(ring.as_ptr() as *mut [u64; 2]).expect("DMA region is non-null");
        let qi = u32::from(q);
        regs.write32(rxdctl(qi), 0);
        regs.write32(rdbal(qi), ring.iova() as u32);
        regs.write32(rdbah(qi), (ring.iova() >> 32) as u32);
        regs.write32(rdlen(qi), (n as usize * DESC_LEN) as u32);
        regs.write32(srrctl(qi), SRRCTL_DESCTYPE_ADV_ONEBUF | RX_BUF_KB);
        regs.write32(rdh(qi), 0);
        regs.write32(rdt(qi), 0);
        regs.write32(rxdctl(qi), RXDCTL_VALUE);
        Ok(IgbRxQueue {
            regs,
            q,
            port_id: 0,
            ring,
            desc,
            n,
            next: 0,
            tail: 0,
            sw: (0..n).map(|_| None).collect(),
            refills: 0,
            stats,
            warned_pool: false,
            stopped: false,
        })
    }

    /// RDT writes so far (one per refill batch).
    pub fn refills(&self) -> u64 {
        self.refills
    }

    /// Port number put in received mbufs.
    pub fn set_port_id(&mut self, p: u16) {
        self.port_id = p;
    }

    #[inline(always)]
    fn next_of(&self, i: u16) -> u16 {
        if i + 1 == self.n {
            0
        } else {
            i + 1
        }
    }

    /// Descriptors the device may fill now ([next, tail)).
    #[inline(always)]
    fn armed(&self) -> u16 {
        if self.tail >= self.next {
            self.tail - self.next
        } else {
            self.n - self.next + self.tail
        }
    }

    /// Clears RXDCTL.ENABLE and waits (bounded) until the device reports the
    /// queue disabled, so it writes no more descriptors or buffers.
    fn disable(&self) {
        let qi = u32::from(self.q);
        self.regs.write32(rxdctl(qi), 0);
        let ok = crate::hw::wait_for(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_micros(100),
            || self.regs.read32(rxdctl(qi)) & XDCTL_ENABLE == 0,
        );
        if !ok {
            tracing::warn!("igb rx queue {} did not stop within 100 ms", self.q);
        }
    }

    /// Gives buffers to every empty slot but one (so RDT never meets RDH),
    /// in one batch, then writes RDT once.
    fn refill(&mut self, pool: &mut Mempool) {
        let room = self.n - 1 - self.armed();
        if room == 0 {
            return;
        }
        if pool.data_room() < (RX_BUF_KB * 1024) as usize {
            if !self.warned_pool {
                tracing::error!(
                    "igb rx queue {}: mempool '{}' has {}-byte buffers; igb needs {} (data_room)",
                    self.q,
                    pool.name(),
                    pool.data_room(),
                    RX_BUF_KB * 1024
                );
                self.warned_pool = true;
            }
            return;
        }
        let mut b = Burst::new();
        let want = (room as usize).min(b.room());
        let mut got = want;
        while got > 0 && !pool.alloc_bulk(&mut b, got) {
            got /= 2;
        }
        if got == 0 {
            return;
        }
        while let Some(m) = b.pop_front() {
            let t = self.tail;
            debug_assert!(
                wirespeed::eal::dma::iova_mapped(m.data_iova(), m.tailroom()),
                "igb: RX buffer IOVA {:#x} outside every mapped DMA region",
                m.data_iova()
            );
            // SAFETY: t < n, inside the ring. Writing the header-address qword
            // as 0 also clears DD (the write-back status overlays it).
            unsafe {
                let d = self.desc.as_ptr().add(t as usize) as *mut u64;
                std::ptr::write_volatile(d, m.data_iova().to_le());
                std::ptr::write_volatile(d.add(1), 0);
            }
            self.sw[t as usize] = Some(m);
            self.tail = self.next_of(t);
        }
        crate::tx::store_fence();
        self.regs
            .write32(rdt(u32::from(self.q)), u32::from(self.tail));
        self.refills += 1;
    }
}

impl<R: RegisterSpace> RxQueue for IgbRxQueue<R> {
    fn index(&self) -> u16 {
        self.q
    }

    /// Plays the part of `igb_clean_rx_irq` in poll mode: takes every
    /// descriptor with DD, hands its mbuf up with the length and checksum
    /// flags and, with RSS, the hash the device wrote back (`igb_rx_hash`:
    /// `ol::RX_RSS_HASH` + [`Mbuf::hash`]), then refills in batches of
    /// [`RX_FREE_THRESH`].
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        if self.stopped {
            // Re-enable (`igb_configure_rx_ring`): the ring is empty and
            // RDT == RDH, so the refill below arms it again.
            self.regs.write32(rxdctl(u32::from(self.q)), RXDCTL_VALUE);
            self.stopped = false;
        }
        let empty_slots = self.n - 1 - self.armed();
        if self.armed() == 0 || empty_slots >= RX_FREE_THRESH {
            self.refill(pool);
        }
        let max = max.min(out.room());
        let mut got = 0usize;
        let mut bytes = 0u64;
        let mut errors = 0u64;
        while got < max && self.next != self.tail {
            let i = self.next;
            // SAFETY: i < n; the write-back qword is device-written, read volatile.
            let wb = u64::from_le(unsafe {
                std::ptr::read_volatile((self.desc.as_ptr().add(i as usize) as *const u64).add(1))
            });
            let status = wb as u32;
            if status & RXD_STAT_DD == 0 {
                break;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            // SAFETY: as above; read after DD (and the acquire fence), so the
            // device's whole write-back is visible: pkt_info (RSS type in
            // bits 3:0) and the RSS hash in the upper dword.
            let lower = u64::from_le(unsafe {
                std::ptr::read_volatile(self.desc.as_ptr().add(i as usize) as *const u64)
            });
            let len = ((wb >> 32) & 0xFFFF) as usize;
            let vlan = (wb >> 48) as u16;
            let m = self.sw[i as usize].take();
            self.next = self.next_of(i);
            let Some(mut m) = m else { continue };
            if status & RXD_STAT_EOP == 0 || status & RXD_ERR_FRAME != 0 || m.set_len(len).is_err()
            {
                errors += 1;
                drop(m);
                continue;
            }
            let mut f = 0;
            if status & RXD_STAT_IPCS != 0 && status & RXD_ERR_IPE == 0 {
                f |= ol::RX_IP_CKSUM_GOOD;
            }
            if status & RXD_STAT_L4CS != 0 && status & RXD_ERR_TCPE == 0 {
                f |= ol::RX_L4_CKSUM_GOOD;
            }
            if status & RXD_STAT_VP != 0 {
                f |= ol::RX_VLAN_STRIPPED;
                m.set_vlan_tci(vlan);
            }
            // `igb_rx_hash`: a hash is there when the RSS type is not 0.
            if lower as u32 & RSSTYPE_MASK != RSSTYPE_NONE {
                f |= ol::RX_RSS_HASH;
                m.set_hash((lower >> 32) as u32);
            }
            m.set_ol_flags(f);
            m.set_rx_port_queue(self.port_id, self.q);
            bytes += len as u64;
            got += 1;
            let _ = out.push(m);
        }
        if got > 0 {
            self.stats.packets.add(got as u64);
            self.stats.bytes.add(bytes);
        }
        if errors > 0 {
            self.stats.errors.add(errors);
        }
        if self.n - 1 - self.armed() >= RX_FREE_THRESH {
            self.refill(pool);
        }
        got
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// Plays the part of `igb_clean_rx_ring` (from `igb_down`): disables the
    /// queue, then returns every posted buffer to its pool. Frames the device
    /// wrote but `rx_burst` had not taken are discarded with their buffers,
    /// as Linux does. The ring restarts empty at the device's head: RDT is
    /// set to RDH, so the device owns no descriptor until the next refill.
    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.disable();
        for s in self.sw.iter_mut() {
            drop(s.take());
        }
        let qi = u32::from(self.q);
        let head = self.regs.read32(rdh(qi));
        let head = if head < u32::from(self.n) {
            head as u16
        } else {
            0
        };
        self.next = head;
        self.tail = head;
        self.regs.write32(rdt(qi), u32::from(head));
        self.stopped = true;
    }
}

impl<R: RegisterSpace> Drop for IgbRxQueue<R> {
    fn drop(&mut self) {
        if !self.stopped {
            self.disable();
        }
        // The mbufs in `sw` go back to their pools; the ring is unmapped after.
        for s in self.sw.iter_mut() {
            drop(s.take());
        }
        let _ = &self.ring;
    }
}
