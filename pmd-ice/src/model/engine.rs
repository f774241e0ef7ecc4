//! The model's DMA engine: one thread that spins on the TX doorbells, fetches
//! descriptors and buffers through the IOMMU-like [`IovaMap`], applies the
//! part's malicious-driver checks, paces frames at the link speed, hands them
//! to the sink and writes `DESC_DONE` back on every `RS` descriptor.

use super::spec::*;
use super::{bump, Shared, Sink, MODEL_QUEUES};
use crate::regs::mal_type;
use std::fs::File;
use std::io::BufWriter;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::dma::{self, IovaMap};
use wirespeed::eal::tsc::{rdtsc, wall_ns, Tsc};
use wirespeed::ethdev::pcap::PcapWriter;
use wirespeed::ethdev::rss::{RssHashTypes, RssType, Toeplitz, RSS_KEY_LEN};
use wirespeed::ethdev::EthdevError;

/// Idle polls before the engine parks (about a millisecond of spinning).
const SPIN_IDLE: u32 = 1 << 15;
/// Longest park; doorbells wake it earlier.
const PARK: Duration = Duration::from_micros(500);
/// Injected frames the engine receives per pass of its loop.
const INJECT_BATCH: usize = 256;
/// Preamble (7) + SFD (1) + FCS (4) + inter-frame gap (12) bytes per frame.
pub const WIRE_OVERHEAD: u64 = 24;
/// Frames shorter than this (without FCS) are padded on the wire.
pub const MIN_WIRE_FRAME: u64 = 60;

/// The frame sink, opened when the model is built (so a bad pcap path is an
/// error at open, not a silent loss later).
pub(crate) enum SinkWriter {
    Count,
    Pcap(PcapWriter<BufWriter<File>>),
    Loopback,
}

impl SinkWriter {
    pub fn open(s: &Sink) -> Result<SinkWriter, EthdevError> {
        Ok(match s {
            Sink::Count => SinkWriter::Count,
            Sink::Loopback => SinkWriter::Loopback,
            Sink::Pcap(p) => {
                let io = |e: std::io::Error| EthdevError::Io {
                    port: "ice-model".into(),
                    path: p.display().to_string(),
                    source: e,
                };
                let f = wirespeed::eal::file::create_nofollow(p).map_err(io)?;
                SinkWriter::Pcap(PcapWriter::new(BufWriter::new(f)).map_err(io)?)
            }
        })
    }
}

struct TxQ {
    q: usize,
    ring: *mut u8,
    ring_iova: u64,
    qlen: u32,
    head: u32,
}

#[derive(Clone, Copy)]
struct RxQ {
    cfg: super::RxRingCfg,
    ring: *mut u8,
    head: u32,
}

/// Receive steering as the firmware left it: the VSI's queue map, and with
/// a key and the LUT its queueing options select, the Toeplitz hash.
///
/// Hash inputs: on the E810 the DDP package's flow profiles choose them;
/// the model hashes the set Linux's ice driver programs by default
/// (`default_rss_cfgs` in `ice_vsi_set_rss_flow_fld`) as far as the
/// engine's classifier expresses it: IPv4/TCP and IPv4/UDP (not
/// fragmented) on addresses and ports, other IPv4 on the addresses. SCTP
/// (which Linux hashes on its ports too) is hashed on the addresses;
/// IPv6 and non-IP frames are not hashed and land in the VSI's queue 0.
#[derive(Default)]
struct Steer {
    first_q: usize,
    nq: usize,
    key: Option<[u8; RSS_KEY_LEN]>,
    hash: Option<Toeplitz>,
    lut: Vec<u8>,
}

impl Steer {
    /// The PF queue and (when hashed) the hash of `frame`; `None` when the
    /// LUT names a queue outside the VSI's map.
    #[inline]
    fn pick(&self, frame: &[u8]) -> Option<(usize, Option<u32>)> {
        let (q, h) = match (&self.hash, self.lut.len()) {
            (Some(t), n) if n > 0 => match t.hash_frame(frame, RssHashTypes::ALL) {
                (RssType::None, _) => (0, None),
                // The LUT is indexed by the hash's low bits (its size is a
                // power of two).
                (_, h) => (self.lut[h as usize & (n - 1)] as usize, Some(h)),
            },
            _ => (0, None),
        };
        if self.nq > 0 && q >= self.nq {
            return None;
        }
        Some((self.first_q + q, h))
    }
}

struct Engine {
    s: Arc<Shared>,
    sink: SinkWriter,
    iova: IovaMap,
    dma_gen: u64,
    gen: u64,
    txqs: Vec<TxQ>,
    rxqs: Vec<Option<RxQ>>,
    steer: Steer,
    /// Injected frames being received (reused between batches).
    inbox: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    pacing: bool,
    /// Cycles per wire byte, 16.16 fixed point.
    cpb_fp: u64,
    wire_t: u64,
    tsc: Tsc,
    wall0: u64,
    tsc0: u64,
    dirty: bool,
}

pub(crate) fn run(s: Arc<Shared>, sink: SinkWriter) {
    // An explicit core=N, else a core no lcore claimed (the model then runs
    // beside the lcores instead of stealing their time), else unpinned.
    if let Some(core) = s.cfg.core.or_else(wirespeed::eal::lcore::spare_core) {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            tracing::warn!(core, "ice-model: could not pin the DMA engine thread");
        }
    }
    let tsc = Tsc::global();
    let bps = s.cfg.speed.bps();
    let mut e = Engine {
        pacing: s.cfg.pacing,
        cpb_fp: ((tsc.hz() as u128 * 8 * 65536) / bps as u128) as u64,
        s,
        sink,
        iova: IovaMap::snapshot(),
        dma_gen: dma::generation(),
        gen: 0,
        txqs: Vec::new(),
        rxqs: vec![None; MODEL_QUEUES as usize],
        steer: Steer::default(),
        inbox: Vec::new(),
        scratch: Vec::with_capacity(MAX_FRAME_SIZE + 16),
        wire_t: 0,
        tsc,
        wall0: wall_ns(),
        tsc0: rdtsc(),
        dirty: false,
    };
    e.main_loop();
    e.flush();
}

impl Engine {
    fn main_loop(&mut self) {
        let mut idle = 0u32;
        loop {
            if self.s.stop.load(Ordering::Acquire) {
                return;
            }
            let dg = dma::generation();
            if dg != self.dma_gen {
                self.iova = IovaMap::snapshot();
                self.dma_gen = dg;
                self.retranslate();
            }
            let g = self.s.gen.load(Ordering::Acquire);
            if g != self.gen {
                self.reload();
                self.gen = g;
                self.s.seen_gen.store(g, Ordering::Release);
            }
            let mut worked = false;
            if self.s.rx_in_len.load(Ordering::Acquire) > 0 {
                worked |= self.receive_injected();
            }
            let mut i = 0;
            let stalled = self.s.tx_stalled.load(Ordering::Acquire);
            while i < self.txqs.len() && !stalled {
                worked |= self.process_tx(i);
                i += 1;
            }
            if worked {
                idle = 0;
                self.dirty = true;
                continue;
            }
            idle += 1;
            if self.dirty && idle > 64 {
                self.flush();
            }
            if idle < SPIN_IDLE {
                std::hint::spin_loop();
                continue;
            }
            self.s.sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            // A stalled engine parks with doorbells pending (woken by the
            // un-stall, a queue change or stop).
            let pending = (!stalled
                && self
                    .txqs
                    .iter()
                    .any(|t| self.s.tx_tail[t.q].load(Ordering::Acquire) != t.head))
                || self.s.gen.load(Ordering::Acquire) != self.gen
                || self.s.rx_in_len.load(Ordering::Acquire) > 0
                || self.s.stop.load(Ordering::Acquire);
            if !pending {
                std::thread::park_timeout(PARK);
            }
            self.s.sleeping.store(false, Ordering::Relaxed);
            idle = SPIN_IDLE / 2;
        }
    }

    fn flush(&mut self) {
        if let SinkWriter::Pcap(w) = &mut self.sink {
            if w.flush().is_err() {
                bump(&self.s.counters.sink_errors, 1);
            }
        }
        self.dirty = false;
    }

    /// Picks up queue changes from the control plane.
    fn reload(&mut self) {
        // Rings the control plane just enabled were allocated before it told
        // us: make sure the IOMMU view includes them.
        let g = dma::generation();
        if g != self.dma_gen {
            self.dma_gen = g;
            self.iova = IovaMap::snapshot();
        }
        let s = self.s.clone();
        let mut ctl = s.ctl();
        let mut txqs = Vec::new();
        let mut faults = Vec::new();
        for (q, t) in ctl.txq.iter().enumerate() {
            let (Some(c), false) = (t.cfg, t.halted) else {
                continue;
            };
            match self
                .iova
                .translate(c.ring_iova, c.qlen as usize * TX_DESC_SIZE)
            {
                Some(p) => txqs.push(TxQ {
                    q,
                    ring: p.as_ptr(),
                    ring_iova: c.ring_iova,
                    qlen: c.qlen,
                    head: s.tx_head[q].load(Ordering::Acquire),
                }),
                None => faults.push(q),
            }
        }
        for q in faults {
            ctl.raise_mdd(q as u32, mal_type::DMA_FAULT);
            bump(&s.counters.dma_faults, 1);
            bump(&s.counters.mdd_events, 1);
        }
        self.txqs = txqs;
        for (q, slot) in self.rxqs.iter_mut().enumerate() {
            *slot = match (ctl.rxq[q].cfg, *slot) {
                (None, _) => None,
                (Some(c), old) => {
                    let head = match old {
                        Some(o) if o.cfg == c => o.head,
                        _ => 0,
                    };
                    self.iova
                        .translate(c.ring_iova, c.qlen as usize * RX_DESC_SIZE)
                        .map(|p| RxQ {
                            cfg: c,
                            ring: p.as_ptr(),
                            head,
                        })
                }
            };
        }
        // Steering: the VSI's queue map, its LUT and the key.
        let st = &mut self.steer;
        let (first_q, nq, lut_sel) = match ctl.fw.vsi {
            Some(v) => (
                v.first_q as usize,
                v.nq as usize,
                v.q_opt_rss & Q_OPT_RSS_LUT_M,
            ),
            None => (0, 0, Q_OPT_RSS_LUT_VSI),
        };
        st.first_q = first_q;
        st.nq = nq;
        let lut = match lut_sel {
            Q_OPT_RSS_LUT_PF => ctl.fw.rss.pf_lut.as_ref(),
            Q_OPT_RSS_LUT_VSI => ctl.fw.rss.vsi_lut.as_ref(),
            _ => None,
        };
        let key = ctl.fw.rss.key.map(|k| {
            let mut std_key = [0u8; RSS_KEY_LEN];
            std_key.copy_from_slice(&k[..RSS_KEY_STD]);
            std_key
        });
        match (key, lut) {
            (Some(k), Some(l)) if ctl.fw.vsi.is_some() => {
                if st.key != Some(k) || st.hash.is_none() {
                    st.hash = Some(Toeplitz::new(&k));
                    st.key = Some(k);
                }
                st.lut.clear();
                st.lut.extend_from_slice(l);
            }
            _ => {
                st.hash = None;
                st.key = None;
                st.lut.clear();
            }
        }
    }

    /// The IOVA table changed: re-resolve ring pointers (a ring whose memory
    /// went away is a DMA fault).
    fn retranslate(&mut self) {
        let mut bad = Vec::new();
        for t in &mut self.txqs {
            match self
                .iova
                .translate(t.ring_iova, t.qlen as usize * TX_DESC_SIZE)
            {
                Some(p) => t.ring = p.as_ptr(),
                None => bad.push(t.q),
            }
        }
        for q in bad {
            self.fault(q, mal_type::DMA_FAULT);
        }
        for slot in self.rxqs.iter_mut() {
            if let Some(r) = slot.as_mut() {
                match self
                    .iova
                    .translate(r.cfg.ring_iova, r.cfg.qlen as usize * RX_DESC_SIZE)
                {
                    Some(p) => r.ring = p.as_ptr(),
                    None => *slot = None,
                }
            }
        }
    }

    /// Malicious-driver detection: disable the queue and latch the event.
    fn fault(&mut self, q: usize, kind: u32) {
        // Latch (and halt the queue) before the counters move, so whoever
        // sees the count also sees the queue disabled.
        self.s.ctl().raise_mdd(q as u32, kind);
        let c = &self.s.counters;
        bump(&c.mdd_events, 1);
        bump(&c.vsi_tepc, 1);
        if kind == mal_type::DMA_FAULT {
            bump(&c.dma_faults, 1);
        }
        self.txqs.retain(|t| t.q != q);
        tracing::debug!(
            queue = q,
            kind = mal_type::name(kind),
            "ice-model: MDD event"
        );
    }

    #[inline(always)]
    fn desc(t: &TxQ, i: u32) -> (u64, u64) {
        // SAFETY: i < qlen and `ring` maps qlen * 16 bytes (translated through
        // the IOVA map whose snapshot keeps the region alive); volatile because
        // the driver writes descriptors concurrently.
        unsafe {
            let p = t.ring.add(i as usize * TX_DESC_SIZE) as *const u64;
            (
                u64::from_le(std::ptr::read_volatile(p)),
                u64::from_le(std::ptr::read_volatile(p.add(1))),
            )
        }
    }

    #[inline(always)]
    fn write_qw1(t: &TxQ, i: u32, v: u64) {
        // SAFETY: as in `desc`; the driver does not touch a descriptor it
        // handed over until it sees DESC_DONE.
        unsafe {
            let p = t.ring.add(i as usize * TX_DESC_SIZE + 8) as *mut u64;
            std::ptr::write_volatile(p, v.to_le());
        }
    }

    /// Processes everything between the queue's head and its doorbell.
    /// Returns whether any descriptor was consumed.
    fn process_tx(&mut self, idx: usize) -> bool {
        let (q, qlen, mut head) = {
            let t = &self.txqs[idx];
            (t.q, t.qlen, t.head)
        };
        let start_head = head;
        let tail = self.s.tx_tail[q].load(Ordering::Acquire);
        if tail == head {
            return false;
        }
        if tail >= qlen {
            self.fault(q, mal_type::TAIL_BEYOND_RING);
            return true;
        }
        // Start pulling the posted descriptor lines over now, so the misses
        // overlap (a NIC fetches descriptors in bursts too).
        {
            let t = &self.txqs[idx];
            let avail = if tail >= head {
                tail - head
            } else {
                qlen - head + tail
            };
            let mut i = head & !3;
            for _ in 0..avail.min(64).div_ceil(4) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: i < qlen, inside the mapped ring; a prefetch is only a hint.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        t.ring.add(i as usize * TX_DESC_SIZE) as *const i8,
                    );
                }
                i += 4;
                if i >= qlen {
                    i = 0;
                }
            }
        }
        let now = if self.pacing { rdtsc() } else { 0 };
        if self.wire_t < now {
            self.wire_t = now;
        }
        let (mut frames, mut bytes, mut uni) = (0u64, 0u64, 0u64);
        let mut fault = None;
        let mut retry = false;
        let count_only = matches!(self.sink, SinkWriter::Count);
        let next = |i: u32| if i + 1 == qlen { 0 } else { i + 1 };
        'frames: while head != tail {
            let t = &self.txqs[idx];
            // 0. Fast path: a one-descriptor, untagged frame to the counting
            // sink (the benchmark case). Anything unusual takes the full path.
            if count_only {
                let (qw0, qw1) = Self::desc(t, head);
                let cmd = (qw1 & TXD_QW1_CMD_M) >> TXD_QW1_CMD_S;
                let size = ((qw1 & TXD_QW1_TX_BUF_SZ_M) >> TXD_QW1_TX_BUF_SZ_S) as usize;
                if qw1 & TXD_QW1_DTYPE_M == TX_DESC_DTYPE_DATA
                    && cmd & (TX_DESC_CMD_EOP | TX_DESC_CMD_IL2TAG1) == TX_DESC_CMD_EOP
                    && (TX_MIN_PKT_LEN..=MAX_FRAME_SIZE).contains(&size)
                {
                    if let Some(p) = self.iova.translate(qw0, size) {
                        // SAFETY: `translate` checked the buffer lies in a live region.
                        let first = unsafe { std::ptr::read_volatile(p.as_ptr()) };
                        frames += 1;
                        bytes += size as u64;
                        uni += (first & 1 == 0) as u64;
                        if self.pacing {
                            let on_wire = (size as u64).max(MIN_WIRE_FRAME) + WIRE_OVERHEAD;
                            self.wire_t += (on_wire * self.cpb_fp) >> 16;
                        }
                        if cmd & TX_DESC_CMD_RS != 0 {
                            // Counters first: a completion the driver sees is
                            // already counted.
                            commit_counters(&self.s.counters, &mut frames, &mut bytes, &mut uni);
                            if self.pacing {
                                while rdtsc() < self.wire_t {
                                    std::hint::spin_loop();
                                }
                            }
                            Self::write_qw1(
                                t,
                                head,
                                (qw1 & !TXD_QW1_DTYPE_M) | TX_DESC_DTYPE_DESC_DONE,
                            );
                        }
                        head = next(head);
                        continue;
                    }
                }
            }
            // 1. Find the frame's EOP, checking descriptor types and counts.
            let mut i = head;
            let mut ndata = 0usize;
            let mut eop = None;
            let mut l2tag2: Option<u16> = None;
            let mut rs_any = false;
            while i != tail {
                let (qw0, qw1) = Self::desc(t, i);
                let dtype = qw1 & TXD_QW1_DTYPE_M;
                if dtype == TX_DESC_DTYPE_CTX {
                    let cmd = (qw1 >> TXD_CTX_QW1_CMD_S) & 0x7F;
                    if cmd & TX_CTX_DESC_IL2TAG2 != 0 {
                        l2tag2 = Some((qw0 >> 32) as u16);
                    }
                    i = next(i);
                    continue;
                }
                if dtype != TX_DESC_DTYPE_DATA {
                    fault = Some(mal_type::BAD_DTYPE);
                    break 'frames;
                }
                let size = (qw1 & TXD_QW1_TX_BUF_SZ_M) >> TXD_QW1_TX_BUF_SZ_S;
                if size == 0 {
                    fault = Some(mal_type::ZERO_LEN_BUF);
                    break 'frames;
                }
                ndata += 1;
                rs_any |= (qw1 >> TXD_QW1_CMD_S) & TX_DESC_CMD_RS != 0;
                if ndata > MAX_BUF_TXD {
                    fault = Some(mal_type::TOO_MANY_DESCS);
                    break 'frames;
                }
                if (qw1 >> TXD_QW1_CMD_S) & TX_DESC_CMD_EOP != 0 {
                    eop = Some(i);
                    break;
                }
                i = next(i);
            }
            let Some(eop) = eop else {
                // The rest of the frame is not posted yet: wait for the next doorbell.
                break;
            };
            // 2. Fetch the buffers (through the IOMMU) and check the frame size.
            let mut payload = 0usize;
            let mut i = head;
            let mut vlan: Option<u16> = None;
            let mut first_byte = 0u8;
            let assemble = !matches!(self.sink, SinkWriter::Count);
            self.scratch.clear();
            loop {
                let (qw0, qw1) = Self::desc(t, i);
                if qw1 & TXD_QW1_DTYPE_M == TX_DESC_DTYPE_DATA {
                    let size = ((qw1 & TXD_QW1_TX_BUF_SZ_M) >> TXD_QW1_TX_BUF_SZ_S) as usize;
                    let cmd = (qw1 & TXD_QW1_CMD_M) >> TXD_QW1_CMD_S;
                    if vlan.is_none() && cmd & TX_DESC_CMD_IL2TAG1 != 0 {
                        vlan = Some((qw1 >> TXD_QW1_L2TAG1_S) as u16);
                    }
                    if payload + size > MAX_FRAME_SIZE {
                        fault = Some(mal_type::OVERSIZE);
                        break 'frames;
                    }
                    let Some(p) = self.iova.translate(qw0, size) else {
                        if dma::generation() != self.dma_gen {
                            // Memory mapped after our last look at the IOMMU
                            // table: refresh and retry this frame.
                            retry = true;
                        } else {
                            fault = Some(mal_type::DMA_FAULT);
                        }
                        break 'frames;
                    };
                    // SAFETY: `translate` checked that `size` bytes at `p` lie in a
                    // live mapped region.
                    let src = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
                    if payload == 0 {
                        first_byte = src[0];
                    }
                    if assemble {
                        self.scratch.extend_from_slice(src);
                    }
                    payload += size;
                }
                if i == eop {
                    break;
                }
                i = next(i);
            }
            if payload < TX_MIN_PKT_LEN {
                fault = Some(mal_type::RUNT_FRAME);
                break 'frames;
            }
            // 3. Tag insertion (L2TAG1 inner, L2TAG2 outer), as the MAC does.
            let mut len = payload;
            for tag in [vlan, l2tag2].into_iter().flatten() {
                len += 4;
                if assemble && self.scratch.len() >= 12 {
                    let t = tag.to_be_bytes();
                    self.scratch.splice(12..12, [0x81, 0x00, t[0], t[1]]);
                }
            }
            // 4. The wire: pacing, sink, counters.
            let on_wire = (len as u64).max(MIN_WIRE_FRAME) + WIRE_OVERHEAD;
            if self.pacing {
                self.wire_t += (on_wire * self.cpb_fp) >> 16;
            }
            frames += 1;
            bytes += len as u64;
            if first_byte & 1 == 0 {
                uni += 1;
            }
            self.deliver(len);
            if rs_any {
                commit_counters(&self.s.counters, &mut frames, &mut bytes, &mut uni);
                if self.pacing {
                    while rdtsc() < self.wire_t {
                        std::hint::spin_loop();
                    }
                }
                // RS normally sits on the EOP descriptor; honour it anywhere in the frame.
                let t = &self.txqs[idx];
                let mut i = head;
                loop {
                    let (_, qw1) = Self::desc(t, i);
                    if (qw1 >> TXD_QW1_CMD_S) & TX_DESC_CMD_RS != 0 {
                        Self::write_qw1(t, i, (qw1 & !TXD_QW1_DTYPE_M) | TX_DESC_DTYPE_DESC_DONE);
                    }
                    if i == eop {
                        break;
                    }
                    i = next(i);
                }
            }
            head = next(eop);
        }
        commit_counters(&self.s.counters, &mut frames, &mut bytes, &mut uni);
        if let Some(t) = self.txqs.get_mut(idx) {
            t.head = head;
        }
        self.s.tx_head[q].store(head, Ordering::Release);
        if let Some(kind) = fault {
            self.fault(q, kind);
            return true;
        }
        if retry {
            self.dma_gen = dma::generation();
            self.iova = IovaMap::snapshot();
            self.retranslate();
            return true;
        }
        head != start_head
    }

    /// Hands the assembled frame (in `scratch` unless the sink only counts) to the sink.
    fn deliver(&mut self, len: usize) {
        match &mut self.sink {
            SinkWriter::Count => {}
            SinkWriter::Pcap(w) => {
                let t = if self.pacing { self.wire_t } else { rdtsc() };
                let ts = self.wall0 + self.tsc.cycles_to_ns(t.saturating_sub(self.tsc0));
                if w.write(ts, &self.scratch).is_err() {
                    bump(&self.s.counters.sink_errors, 1);
                }
            }
            SinkWriter::Loopback => {
                debug_assert_eq!(len, self.scratch.len());
                self.receive();
            }
        }
    }

    /// Takes the frames waiting on the wire side (at most a ring's worth
    /// per call, so TX doorbells are not starved) and receives each.
    fn receive_injected(&mut self) -> bool {
        let mut batch = std::mem::take(&mut self.inbox);
        {
            let mut q = self.s.rx_in.lock().unwrap_or_else(|e| e.into_inner());
            let n = q.len().min(INJECT_BATCH);
            batch.extend(q.drain(..n));
            self.s.rx_in_len.store(q.len(), Ordering::Release);
        }
        let worked = !batch.is_empty();
        for f in batch.drain(..) {
            self.scratch.clear();
            self.scratch.extend_from_slice(&f);
            self.receive();
        }
        self.inbox = batch;
        worked
    }

    /// A frame off the wire (loopback or injected, in `scratch`): steered
    /// to the RX queue the VSI's LUT names by its Toeplitz hash (else the
    /// VSI's first queue), written into that ring's buffers, the hash in
    /// `rss_hash` with `RSS_VALID` when it was hashed. A frame with no
    /// enabled queue or no free descriptor there is counted in
    /// `rx_no_desc` and in the VSI's `GLV_RDPC`.
    fn receive(&mut self) {
        let c = &self.s.counters;
        let Some((q, hash)) = self.steer.pick(&self.scratch) else {
            bump(&c.rx_no_desc, 1);
            bump(&c.vsi_rdpc, 1);
            return;
        };
        let Some(rx) = self.rxqs.get_mut(q).and_then(|r| r.as_mut()) else {
            bump(&c.rx_no_desc, 1);
            bump(&c.vsi_rdpc, 1);
            return;
        };
        let tail = self.s.rx_tail[q].load(Ordering::Acquire);
        if tail >= rx.cfg.qlen || rx.head == tail {
            bump(&c.rx_no_desc, 1);
            bump(&c.vsi_rdpc, 1);
            return;
        }
        let len = self.scratch.len();
        if rx.cfg.rxmax != 0 && len as u32 > rx.cfg.rxmax {
            bump(&c.rx_oversize, 1);
            return;
        }
        // A frame larger than one buffer spreads over consecutive
        // descriptors, EOF on the last (at most rxmax ≤ 5 buffers).
        let buf = rx.cfg.buf_len as usize;
        let need = len.div_ceil(buf).max(1) as u32;
        let owned = (tail + rx.cfg.qlen - rx.head) % rx.cfg.qlen;
        if need > owned {
            bump(&c.rx_no_desc, 1);
            bump(&c.vsi_rdpc, 1);
            return;
        }
        let inject = if self.s.rx_inject.load(Ordering::Relaxed) != 0 {
            self.s.rx_inject.swap(0, Ordering::AcqRel) as u16
        } else {
            0
        };
        // Counted before the driver can see it.
        bump(&c.rx_frames, 1);
        for k in 0..need {
            let slot = (rx.head + k) % rx.cfg.qlen;
            let chunk = &self.scratch[k as usize * buf..len.min((k as usize + 1) * buf)];
            // SAFETY: slot < qlen; the ring maps qlen * 32 bytes; the driver
            // gave this descriptor to the device (it lies before the tail).
            let d = unsafe { rx.ring.add(slot as usize * RX_DESC_SIZE) as *mut u64 };
            // SAFETY: as above.
            let pkt_addr = u64::from_le(unsafe { std::ptr::read_volatile(d) });
            if !self.iova.write(pkt_addr, chunk) {
                bump(&c.dma_faults, 1);
            }
            let qw0 = (RXDID_FLEX_NIC as u64)
                | ((chunk.len() as u64 & RX_FLEX_PKT_LEN_M as u64) << (RX_PKT_LEN_BYTE * 8));
            let eof = if k + 1 == need {
                RX_FLEX_STATUS0_EOF
            } else {
                0
            };
            let mut qw1 = (RX_FLEX_STATUS0_DD | eof | inject) as u64;
            if let Some(h) = hash {
                // ice_32b_rx_flex_desc_nic: rss_hash in bytes 12–15 (the
                // upper half of qword 1), RSS_VALID in status_error0.
                qw1 |= (RX_FLEX_STATUS0_RSS_VALID as u64)
                    | ((h as u64) << ((RX_RSS_HASH_BYTE - 8) * 8));
            }
            let mut qw0 = qw0;
            if self.s.rx_wb_on.load(Ordering::Relaxed) {
                if let Some(h) = self
                    .s
                    .rx_wb_hook
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                {
                    h(k, &mut qw0, &mut qw1);
                }
            }
            // SAFETY: as above; qw0 (length) is written before qw1 (DD) so the
            // driver never sees DD with a stale length.
            unsafe {
                std::ptr::write_volatile(d.add(2), 0);
                std::ptr::write_volatile(d.add(3), 0);
                std::ptr::write_volatile(d, qw0.to_le());
                fence(Ordering::Release);
                std::ptr::write_volatile(d.add(1), qw1.to_le());
            }
        }
        rx.head = (rx.head + need) % rx.cfg.qlen;
    }
}

/// Publishes the frames counted since the last call (and zeroes the locals).
#[inline(always)]
fn commit_counters(c: &super::Counters, frames: &mut u64, bytes: &mut u64, uni: &mut u64) {
    if *frames == 0 {
        return;
    }
    bump(&c.tx_frames, *frames);
    bump(&c.tx_bytes, *bytes);
    let fcs = 4 * *frames;
    for a in [&c.port_gotc, &c.vsi_gotc] {
        a.store(
            (a.load(Ordering::Relaxed) + *bytes + fcs) & STAT40_MASK,
            Ordering::Relaxed,
        );
    }
    for a in [&c.port_uptc, &c.vsi_uptc] {
        a.store(
            (a.load(Ordering::Relaxed) + *uni) & STAT40_MASK,
            Ordering::Relaxed,
        );
    }
    *frames = 0;
    *bytes = 0;
    *uni = 0;
}

const _: () = assert!(MODEL_QUEUES as u32 <= QTX_COMM_DBELL_MAX);
