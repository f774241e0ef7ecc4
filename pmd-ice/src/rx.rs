//! The ice RX queue (enough for ARP and appliances): RX queue context
//! programming through `QRX_CONTEXT`, a ring of 32-byte flex descriptors,
//! replenish from the caller's mempool, tail writes in batches
//! (Linux `ice_setup_rx_ctx` / `ice_clean_rx_irq`, DPDK `ice_recv_pkts`).

use crate::ctx::{rlan, RlanCtx};
use crate::regs::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::DmaRegion;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{QueueStats, RxQueue};
use wirespeed::mbuf::{ol, Burst, Mbuf, Mempool};

/// An E810 RX queue, owned by one lcore. The ring is filled, and the queue
/// context programmed and enabled, on the first `rx_burst` (when the pool,
/// and so the buffer size, is known).
pub struct IceRxQueue<R: RegisterSpace> {
    q: u16,
    abs_q: u16,
    regs: Arc<R>,
    ring: DmaRegion,
    n: u32,
    sw: Vec<Option<Mbuf>>,
    ntc: u32,
    nb_hold: u32,
    enabled: bool,
    stats: Arc<QueueStats>,
    port_id: u16,
    warned: bool,
    /// A frame spread over several buffers (no EOF yet): its first segment
    /// with the later ones chained on (Linux `ice_is_non_eop` /
    /// `rx_ring->xdp` across descriptors), and whether any had RXE.
    partial: Option<Mbuf>,
    partial_err: bool,
}

impl<R: RegisterSpace> IceRxQueue<R> {
    pub(crate) fn new(
        q: u16,
        abs_q: u16,
        regs: Arc<R>,
        ring: DmaRegion,
        n: u16,
        stats: Arc<QueueStats>,
    ) -> IceRxQueue<R> {
        IceRxQueue {
            q,
            abs_q,
            regs,
            ring,
            n: n as u32,
            sw: (0..n).map(|_| None).collect(),
            ntc: 0,
            nb_hold: 0,
            enabled: false,
            stats,
            port_id: 0,
            warned: false,
            partial: None,
            partial_err: false,
        }
    }

    #[inline(always)]
    fn desc_ptr(&self, i: u32) -> *mut u64 {
        debug_assert!(i < self.n);
        // SAFETY: i < n; the ring holds n 32-byte descriptors.
        unsafe { self.ring.as_ptr().add(i as usize * RX_DESC_SIZE) as *mut u64 }
    }

    #[inline(always)]
    fn post(&mut self, i: u32, m: &Mbuf) {
        debug_assert!(
            wirespeed::eal::dma::iova_mapped(m.data_iova(), m.tailroom()),
            "ice: RX buffer IOVA {:#x} outside every mapped DMA region",
            m.data_iova()
        );
        let p = self.desc_ptr(i);
        // SAFETY: `p` is descriptor i inside the ring; the driver owns it
        // (the device wrote it back or never had it). Read format: pkt_addr,
        // hdr_addr = 0 (clears the DD bit of the old write-back).
        unsafe {
            std::ptr::write_volatile(p, m.data_iova().to_le());
            std::ptr::write_volatile(p.add(1), 0);
            std::ptr::write_volatile(p.add(2), 0);
            std::ptr::write_volatile(p.add(3), 0);
        }
    }

    /// Fills the whole ring, programs the RLAN context and enables the queue.
    fn start(&mut self, pool: &mut Mempool) -> bool {
        let mut b = Burst::new();
        let mut bufs = Vec::with_capacity(self.n as usize);
        while bufs.len() < self.n as usize {
            let want = (self.n as usize - bufs.len()).min(b.room());
            if !pool.alloc_bulk(&mut b, want) {
                if !self.warned {
                    tracing::warn!(
                        queue = self.q,
                        need = self.n,
                        "ice: not enough mbufs to fill the RX ring; receive stays off until the pool has them"
                    );
                    self.warned = true;
                }
                return false; // `bufs` and `b` go back to the pool
            }
            while let Some(m) = b.pop_front() {
                bufs.push(m);
            }
        }
        let dbuf = (pool.data_room().min(16256) >> rlan::DBUF_SHIFT) as u8;
        // Linux `ice_setup_rx_ctx`: rxmax = min(max frame,
        // ICE_MAX_CHAINED_RX_BUFS × the data buffer); larger frames arrive in
        // up to five buffers and are delivered as one mbuf chain.
        let buf_bytes = (dbuf as u32) << rlan::DBUF_SHIFT;
        let rxmax = (MAX_FRAME_SIZE as u32).min(MAX_CHAINED_RX_BUFS * buf_bytes) as u16;
        for (i, m) in bufs.into_iter().enumerate() {
            self.post(i as u32, &m);
            self.sw[i] = Some(m);
        }
        let ctx = RlanCtx {
            head: 0,
            base: self.ring.iova() >> rlan::BASE_SHIFT,
            qlen: self.n as u16,
            dbuf,
            dsize: true,
            crcstrip: true,
            l2tsel: true,
            showiv: false,
            rxmax,
            lrxqthresh: 1,
            prefena: true,
        };
        let img = ctx.pack();
        let q = self.abs_q as u32;
        for i in 0..QRX_CONTEXT_DWORDS {
            let o = i as usize * 4;
            self.regs.write32(
                qrx_context(i, q),
                u32::from_le_bytes(img[o..o + 4].try_into().expect("4")),
            );
        }
        // ice_write_qrxflxp_cntxt: RXDID and its priority (3, as both drivers).
        self.regs.write32(
            qrxflxp_cntxt(q),
            (RXDID_FLEX_NIC & QRXFLXP_CNTXT_RXDID_IDX_M)
                | ((RXDID_PRIO << QRXFLXP_CNTXT_RXDID_PRIO_S) & QRXFLXP_CNTXT_RXDID_PRIO_M),
        );
        self.regs.write32(qrx_ctrl(q), QRX_CTRL_QENA_REQ);
        let t0 = Instant::now();
        while self.regs.read32(qrx_ctrl(q)) & QRX_CTRL_QENA_STAT == 0 {
            if t0.elapsed() > Duration::from_millis(100) {
                tracing::warn!(
                    queue = self.q,
                    "ice: RX queue did not report enabled (QENA_STAT)"
                );
                return false;
            }
            std::thread::yield_now();
        }
        // The device owns every descriptor but the one before next-to-check.
        self.regs.write32(qrx_tail(q), self.n - 1);
        self.enabled = true;
        true
    }
}

impl<R: RegisterSpace> RxQueue for IceRxQueue<R> {
    fn index(&self) -> u16 {
        self.q
    }

    /// Plays the part of `ice_clean_rx_irq`: takes written-back descriptors
    /// (DD) in order, swaps in a fresh mbuf for each, chains the buffers of a
    /// frame until the one with EOF, and moves the tail in batches of
    /// `ICE_RX_MAX_BURST`. A frame with RXE on any of its descriptors is
    /// dropped whole and counted as an error. With `RSS_VALID` the hash the
    /// device wrote goes on the mbuf (`ol::RX_RSS_HASH`, [`Mbuf::hash`]).
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        if !self.enabled && !self.start(pool) {
            return 0;
        }
        let mut got = 0usize;
        let mut bytes = 0u64;
        let max = max.min(out.room());
        while got < max {
            let i = self.ntc;
            let p = self.desc_ptr(i);
            // SAFETY: descriptor i is inside the ring; volatile (device write-back).
            let qw1 = u64::from_le(unsafe { std::ptr::read_volatile(p.add(1)) });
            // status_error0: bytes 8–9, the low half of QW1 (base/ice_lan_tx_rx.h:504).
            let status = (qw1 >> ((RX_FLEX_STATUS0_OFF - 8) * 8)) as u16;
            if status & RX_FLEX_STATUS0_DD == 0 {
                break;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            // SAFETY: as above.
            let qw0 = u64::from_le(unsafe { std::ptr::read_volatile(p) });
            // pkt_len: bytes 4–5 of the write-back (base/ice_lan_tx_rx.h:500).
            let len = ((qw0 >> (RX_FLEX_PKT_LEN_OFF * 8)) as u16 & RX_FLEX_PKT_LEN_M) as usize;
            let Some(fresh) = pool.alloc() else {
                break; // pool empty: the packet stays on the ring, retried next call
            };
            self.post(i, &fresh);
            let mut m = self.sw[i as usize]
                .replace(fresh)
                .expect("ring slot filled");
            self.ntc = if i + 1 == self.n { 0 } else { i + 1 };
            self.nb_hold += 1;
            let bad = status & RX_FLEX_STATUS0_RXE != 0 || m.set_len(len).is_err();
            let eof = status & RX_FLEX_STATUS0_EOF != 0;
            self.partial_err |= bad;
            if self.partial_err {
                // Discard this frame's buffers up to and including its EOF.
                drop(m);
                drop(self.partial.take());
                if eof {
                    self.partial_err = false;
                    self.stats.errors.add(1);
                }
                continue;
            }
            let mut m = match self.partial.take() {
                Some(mut head) => {
                    head.chain(m);
                    head
                }
                None => m,
            };
            if !eof {
                if m.nb_segs() >= MAX_CHAINED_RX_BUFS as usize {
                    // More buffers than rxmax allows: drop what was gathered
                    // and resynchronise at the next EOF.
                    self.partial_err = true;
                    drop(m);
                } else {
                    self.partial = Some(m);
                }
                continue;
            }
            // The hash, from the frame's last descriptor (Linux
            // `ice_rx_hash` reads `rss_hash` of the EOP descriptor; DPDK
            // `ice_rxd_to_pkt_fields_*` takes it when RSS_VALID is set).
            if status & RX_FLEX_STATUS0_RSS_VALID != 0 {
                m.set_ol_flags(m.ol_flags() | ol::RX_RSS_HASH);
                m.set_hash((qw1 >> ((RX_FLEX_RSS_HASH_OFF - 8) * 8)) as u32);
            }
            m.set_rx_port_queue(self.port_id, self.q);
            let len = m.pkt_len();
            bytes += len as u64;
            if out.push(m).is_err() {
                self.stats.drops.add(1);
                continue;
            }
            got += 1;
        }
        if self.nb_hold > RX_FREE_THRESH as u32 {
            let tail = if self.ntc == 0 {
                self.n - 1
            } else {
                self.ntc - 1
            };
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            self.regs.write32(qrx_tail(self.abs_q as u32), tail);
            self.nb_hold = 0;
        }
        if got > 0 {
            self.stats.packets.add(got as u64);
            self.stats.bytes.add(bytes);
        }
        got
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// Plays the part of `ice_clean_rx_ring` (from `ice_down`, after
    /// `ice_vsi_stop_all_rx_rings`): disables the queue, then returns every
    /// posted buffer to its pool. The next `rx_burst` fills the ring again
    /// and re-programs the queue context (head 0), as at first start.
    fn stop(&mut self) {
        self.disable();
        for s in self.sw.iter_mut() {
            drop(s.take());
        }
        drop(self.partial.take());
        self.partial_err = false;
        self.ntc = 0;
        self.nb_hold = 0;
    }
}

impl<R: RegisterSpace> IceRxQueue<R> {
    /// Clears `QRX_CTRL.QENA_REQ` and waits (bounded) for `QENA_STAT` to
    /// fall, so the device writes no more descriptors or buffers.
    fn disable(&mut self) {
        if !self.enabled {
            return;
        }
        let q = self.abs_q as u32;
        self.regs.write32(qrx_ctrl(q), 0);
        let t0 = Instant::now();
        while self.regs.read32(qrx_ctrl(q)) & QRX_CTRL_QENA_STAT != 0 {
            if t0.elapsed() > Duration::from_millis(100) {
                tracing::warn!(
                    queue = self.q,
                    "ice: RX queue did not report disabled (QENA_STAT)"
                );
                break;
            }
            std::thread::yield_now();
        }
        self.enabled = false;
    }
}

impl<R: RegisterSpace> Drop for IceRxQueue<R> {
    fn drop(&mut self) {
        self.disable();
    }
}
