//! The model's receive side: the address filter, RSS queue selection
//! (82576 datasheet §7.1.1.7 "Receive-Side Scaling"; QEMU's
//! `hw/net/igb_core.c` `igb_rss_parse_packet` does the same), the packet
//! buffer that holds frames while their queue has no descriptor, and the
//! receive DMA with the advanced one-buffer write-back.
//!
//! RSS: when MRQC's mode bits say "RSS multiple queues" (`MRQC[2:0]` =
//! 010b), each accepted frame is classified by the hash field selects
//! (IPv4/TCP, IPv4/UDP when not a fragment, else IPv4) and hashed with the
//! Toeplitz function under the key in RSSRK0..9; the hash's seven low
//! bits index the 128-entry RETA, whose entry (low four bits, as QEMU's
//! `E1000_RSS_QUEUE` masks it) is the queue. Frames of no selected type
//! go to queue 0. With RXCSUM.PCSD set the write-back's second dword is
//! the hash and `pkt_info[3:0]` the RSS type (`E1000_RXDADV_RSSTYPE_*`);
//! without it that dword would carry the fragment checksum and IP id,
//! which the model does not compute (it writes 0). QEMU additionally
//! distributes only with PCSD set; the driver always sets both.

use super::{net, Engine, Shared};
use crate::regs::*;
use std::sync::atomic::{fence, Ordering};
use wirespeed::ethdev::rss::{RssHashTypes, RssType, Toeplitz, RSS_KEY_LEN};

/// One RX queue's latched ring.
#[derive(Default)]
pub(super) struct RxState {
    active: bool,
    base: u64,
    n: u32,
    head: u32,
}

/// Frames the modeled RX packet buffer holds while no descriptor is free.
pub(super) const RX_PACKET_BUFFER_FRAMES: usize = 32;

/// The RSS registers as last read, with the key's Toeplitz tables.
pub(super) struct RssState {
    /// `Shared::rss_gen` when last read; `None` = never.
    gen: Option<u64>,
    on: bool,
    pcsd: bool,
    types: RssHashTypes,
    key: [u8; RSS_KEY_LEN],
    hash: Option<Toeplitz>,
    reta: [u8; RETA_SIZE as usize],
}

impl Default for RssState {
    fn default() -> Self {
        RssState {
            gen: None,
            on: false,
            pcsd: false,
            types: RssHashTypes::NONE,
            key: [0; RSS_KEY_LEN],
            hash: None,
            reta: [0; RETA_SIZE as usize],
        }
    }
}

/// Where one frame goes and what its write-back reports.
#[derive(Clone, Copy)]
struct Steer {
    queue: usize,
    /// `pkt_info[3:0]`.
    rss_type: u32,
    hash: u32,
}

impl RssState {
    /// Re-reads MRQC, RXCSUM.PCSD, RSSRK and RETA if software wrote any
    /// of them since the last read (the generation the register writes bump).
    fn refresh(&mut self, sh: &Shared) {
        let g = sh.rss_gen.load(Ordering::Acquire);
        if self.gen == Some(g) {
            return;
        }
        self.gen = Some(g);
        let mrqc = sh.r(MRQC);
        self.on = mrqc & MRQC_ENABLE_MASK == MRQC_ENABLE_RSS_MQ;
        self.pcsd = sh.r(RXCSUM) & RXCSUM_PCSD != 0;
        let mut t = RssHashTypes::NONE;
        for (bit, sel) in [
            (MRQC_RSS_FIELD_IPV4, RssHashTypes::IPV4),
            (MRQC_RSS_FIELD_IPV4_TCP, RssHashTypes::IPV4_TCP),
            (MRQC_RSS_FIELD_IPV4_UDP, RssHashTypes::IPV4_UDP),
        ] {
            if mrqc & bit != 0 {
                t = t | sel;
            }
        }
        self.types = t;
        let mut key = [0u8; RSS_KEY_LEN];
        for i in 0..RSSRK_LEN as usize {
            key[4 * i..4 * i + 4].copy_from_slice(&sh.r(RSSRK + 4 * i as u32).to_le_bytes());
        }
        if self.hash.is_none() || key != self.key {
            self.key = key;
            self.hash = Some(Toeplitz::new(&key));
        }
        for i in 0..(RETA_SIZE / 4) as usize {
            let v = sh.r(RETA + 4 * i as u32).to_le_bytes();
            self.reta[4 * i..4 * i + 4].copy_from_slice(&v);
        }
    }

    /// The queue, RSS type and hash of `frame`.
    fn steer(&self, frame: &[u8]) -> Steer {
        let none = Steer {
            queue: 0,
            rss_type: RSSTYPE_NONE,
            hash: 0,
        };
        let (true, Some(h)) = (self.on, &self.hash) else {
            return none;
        };
        let (t, hash) = h.hash_frame(frame, self.types);
        let rss_type = match t {
            RssType::None => return none,
            RssType::Ipv4 => RSSTYPE_IPV4,
            RssType::Ipv4Tcp => RSSTYPE_IPV4_TCP,
            RssType::Ipv4Udp => RSSTYPE_IPV4_UDP,
        };
        Steer {
            queue: usize::from(self.reta[(hash & 0x7F) as usize] & 0x0F),
            rss_type,
            hash,
        }
    }
}

impl Engine {
    /// Latches queue `q`'s ring when it goes live; false while disabled.
    fn rx_latch(&mut self, sh: &Shared, q: usize) -> bool {
        let qi = q as u32;
        let en = sh.r(RCTL) & RCTL_EN != 0 && sh.r(rxdctl(qi)) & XDCTL_ENABLE != 0;
        let r = &mut self.rx[q];
        if en && !r.active {
            r.base = u64::from(sh.r(rdbal(qi))) | (u64::from(sh.r(rdbah(qi))) << 32);
            r.n = sh.r(rdlen(qi)) / DESC_LEN as u32;
            r.head = sh.r(rdh(qi));
            r.active = r.n > 0 && r.head < r.n;
        } else if !en {
            r.active = false;
        }
        r.active
    }

    /// Takes the next frame off the wire backlog with its steering, unless
    /// its queue is ready but has no free descriptor and the packet buffer
    /// still has room: then it waits there (head of line, as in the part's
    /// single receive FIFO) and `None` comes back.
    fn rx_next(&mut self, sh: &Shared) -> Option<(Vec<u8>, Steer)> {
        self.rss.refresh(sh);
        let mut qd = sh.rx_in.lock().unwrap_or_else(|e| e.into_inner());
        let st = self.rss.steer(qd.front()?);
        let q = st.queue;
        if self.rx_latch(sh, q)
            && sh.link_up()
            && sh.r(rdt(q as u32)) == self.rx[q].head
            && qd.len() <= RX_PACKET_BUFFER_FRAMES
        {
            sh.rx_waiting.store(true, Ordering::Release);
            return None;
        }
        let f = qd.pop_front()?;
        sh.rx_len.store(qd.len(), Ordering::Release);
        sh.rx_waiting.store(false, Ordering::Release);
        Some((f, st))
    }

    /// The MAC address filter (RAL0/RAH0, RCTL.UPE/MPE/BAM): accepted,
    /// broadcast, multicast.
    fn rx_accept(sh: &Shared, frame: &[u8], rctl: u32) -> (bool, bool, bool) {
        let dst = &frame[..6.min(frame.len())];
        let ours = {
            let l = sh.r(RAL0).to_le_bytes();
            let h = sh.r(RAH0);
            h & RAH_AV != 0 && dst == [l[0], l[1], l[2], l[3], h as u8, (h >> 8) as u8]
        };
        let bcast = dst == [0xFF; 6];
        let mcast = !bcast && dst.first().is_some_and(|b| b & 1 != 0);
        let accept = frame.len() >= 14
            && (ours
                || rctl & RCTL_UPE != 0 && !mcast && !bcast
                || bcast && rctl & RCTL_BAM != 0
                || mcast && rctl & RCTL_MPE != 0);
        (accept, bcast, mcast)
    }

    /// Receives one frame from the backlog into the RX queue RSS picks
    /// (queue 0 without RSS).
    pub(super) fn process_rx(&mut self, sh: &Shared) -> bool {
        if sh.rx_len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let Some((mut frame, st)) = self.rx_next(sh) else {
            return false;
        };
        let q = st.queue;
        if !self.rx[q].active || !sh.link_up() {
            sh.c.rx_not_ready.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let rctl = sh.r(RCTL);
        let (accept, bcast, mcast) = Self::rx_accept(sh, &frame, rctl);
        if !accept {
            sh.c.rx_filtered.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let wire_len = (frame.len().max(60) + 4) as u64;
        sh.stat_add(TPR, 1);
        sh.stat_add(TORL, wire_len);
        if frame.len() + 4 > 1522 && rctl & RCTL_LPE == 0 {
            sh.stat_add(ROC, 1);
            return true;
        }
        let qi = q as u32;
        let rdt_v = sh.r(rdt(qi));
        if rdt_v == self.rx[q].head || rdt_v >= self.rx[q].n {
            sh.stat_add(MPC, 1);
            sh.stat_add(RNBC, 1);
            return true;
        }
        let head = self.rx[q].head;
        let d_iova = self.rx[q].base + u64::from(head) * DESC_LEN as u64;
        let Some(buf) = self.map.read_u64(d_iova) else {
            sh.c.dma_faults.fetch_add(1, Ordering::Relaxed);
            sh.event(
                Some(q as u16),
                "dma-fault",
                format!("rx queue {q}: descriptor fetch at IOVA {d_iova:#x} faulted"),
            );
            sh.w(rxdctl(qi), sh.r(rxdctl(qi)) & !XDCTL_ENABLE);
            self.rx[q].active = false;
            return true;
        };
        let status = self.rx_dma(sh, q, &mut frame, buf, rctl);
        let (mut qw0, mut qw1) = (0u64, u64::from(status) | ((frame.len() as u64) << 32));
        if self.rss.pcsd && st.rss_type != RSSTYPE_NONE {
            qw0 = u64::from(st.rss_type) | (u64::from(st.hash) << 32);
        }
        if sh.rx_wb_on.load(Ordering::Relaxed) {
            if let Some(h) = sh
                .rx_wb_hook
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
            {
                h(&mut qw0, &mut qw1);
            }
        }
        fence(Ordering::Release);
        self.map.write_u64(d_iova, qw0);
        self.map.write_u64(d_iova + 8, qw1);
        let n = self.rx[q].n;
        self.rx[q].head = if head + 1 == n { 0 } else { head + 1 };
        sh.w(rdh(qi), self.rx[q].head);
        if status & RXD_ERR_RXE == 0 {
            sh.stat_add(GPRC, 1);
            sh.stat_add(GORCL, wire_len);
            if bcast {
                sh.stat_add(BPRC, 1);
            } else if mcast {
                sh.stat_add(MPRC, 1);
            }
        }
        sh.c.rx_frames.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Pads, appends the FCS unless RCTL.SECRC, writes the frame into the
    /// buffer at `buf` (cut to SRRCTL's buffer size) and returns the
    /// write-back status with the RX checksum engine's verdict.
    fn rx_dma(&mut self, sh: &Shared, q: usize, frame: &mut Vec<u8>, buf: u64, rctl: u32) -> u32 {
        let (is4, ip_ok, l4) = net::verify(frame);
        if frame.len() < 60 {
            frame.resize(60, 0);
        }
        if rctl & RCTL_SECRC == 0 {
            let c = net::fcs(frame);
            frame.extend_from_slice(&c.to_le_bytes());
        }
        let bsize = match sh.r(srrctl(q as u32)) & SRRCTL_BSIZEPKT_MASK {
            0 => 2048,
            k => k as usize * 1024,
        };
        let mut status = RXD_STAT_DD | RXD_STAT_EOP;
        if frame.len() > bsize {
            // One-buffer descriptors only: the frame does not fit.
            sh.stat_add(RLEC, 1);
            status |= RXD_ERR_RXE;
            frame.truncate(bsize);
        }
        if !self.map.write(buf, frame) {
            sh.c.dma_faults.fetch_add(1, Ordering::Relaxed);
            sh.event(
                Some(q as u16),
                "dma-fault",
                format!(
                    "rx queue {q}: buffer write of {} bytes at IOVA {buf:#x} faulted",
                    frame.len()
                ),
            );
            status |= RXD_ERR_RXE;
        }
        let rxcsum = sh.r(RXCSUM);
        if is4 && rxcsum & RXCSUM_IPOFL != 0 {
            status |= RXD_STAT_IPCS;
            if !ip_ok {
                status |= RXD_ERR_IPE;
            }
        }
        if let (Some((udp, ok)), true) = (l4, rxcsum & RXCSUM_TUOFL != 0) {
            status |= RXD_STAT_L4CS;
            if udp {
                status |= RXD_STAT_UDPCS;
            }
            if !ok {
                status |= RXD_ERR_TCPE;
            }
        }
        status
    }
}
