//! A register-level model of the Intel E810 (ice) PF: the `ice-model` device.
//!
//! It implements [`RegisterSpace`] with the side effects the part has:
//! - `PFGEN_CTRL.PFSWR` resets the PF (admin queues, VSI, queues, MDD state);
//!   `GLGEN_RSTAT` / `GLNVM_ULD` report the device ready.
//! - A firmware responder ([`firmware`]) runs every admin command the driver
//!   posts when it writes `PF_FW_ATQT`, with the published data layouts and
//!   error return codes for bad parameters, and posts events on the ARQ.
//! - A DMA engine thread ([`engine`]) spins on the `QTX_COMM_DBELL` values,
//!   reads descriptors and buffers through an IOMMU-like [`IovaMap`] (a bad IOVA
//!   is a fault: counted, reported, nothing read), checks frames the way the
//!   part's malicious-driver detection does (disabling the queue and latching
//!   `GL_MDET_TX_TCLAN`), paces frames at the modelled link speed (preamble +
//!   IFG + FCS = 24 bytes of overhead per frame), hands them to a sink (count,
//!   pcap, or loopback into its own RX side) and writes `DESC_DONE` back into
//!   every descriptor that had `RS`.
//! - Received frames (loopback or [`IceModel::inject`]) are steered as the
//!   firmware's RSS state says: Toeplitz over the key set_rss_key gave,
//!   the queue from the LUT set_rss_lut gave (the one the VSI's
//!   `q_opt_rss` selects), relative to the VSI's queue map; the hash is
//!   written into the flex descriptor's `rss_hash` with `RSS_VALID`.
//!
//! [`IovaMap`]: wirespeed::eal::dma::IovaMap

pub(crate) mod engine;
pub(crate) mod firmware;
pub mod spec;

/// What the model firmware reports (versions, scheduler TEIDs, VSI number).
pub mod firmware_consts {
    pub use super::firmware::{
        API_VERSION, FIRST_QUEUE, FW_VERSION, LPORT, PF_NUM, PF_VSI_NUM, TEID_LEAF_BASE,
        TEID_QGROUP, TEID_ROOT, TEID_TC0,
    };
}

use crate::regs::DEV_ID_E810C_QSFP;
use spec::*;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{EthdevError, MacAddr};

/// Queues the model's PF owns (TX and RX each), reported by `list_func_caps`.
pub const MODEL_QUEUES: u16 = 64;

/// Modelled link speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    G10,
    G25,
    G100,
}

impl Speed {
    pub fn bps(self) -> u64 {
        match self {
            Speed::G10 => 10_000_000_000,
            Speed::G25 => 25_000_000_000,
            Speed::G100 => 100_000_000_000,
        }
    }
    pub fn mbps(self) -> u32 {
        (self.bps() / 1_000_000) as u32
    }
    /// The `ICE_AQ_LINK_SPEED_*` bit get_link_status reports.
    pub fn aq_bit(self) -> u16 {
        match self {
            Speed::G10 => LINK_SPEED_10G,
            Speed::G25 => LINK_SPEED_25G,
            Speed::G100 => LINK_SPEED_100G,
        }
    }
    pub fn parse(s: &str) -> Option<Speed> {
        match s.to_ascii_lowercase().as_str() {
            "10g" => Some(Speed::G10),
            "25g" => Some(Speed::G25),
            "100g" => Some(Speed::G100),
            _ => None,
        }
    }
}

/// Where transmitted frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Counted and discarded.
    Count,
    /// Written to a nanosecond pcap file.
    Pcap(PathBuf),
    /// Received on the model's own RX side (steered by RSS like any frame).
    Loopback,
}

/// Model set-up.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub device_id: u16,
    pub speed: Speed,
    pub sink: Sink,
    /// Pace frames at the link speed (off for benchmarks).
    pub pacing: bool,
    /// Pin the DMA engine thread to this core.
    pub core: Option<usize>,
    pub mac: MacAddr,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            device_id: DEV_ID_E810C_QSFP,
            speed: Speed::G100,
            sink: Sink::Count,
            pacing: true,
            core: None,
            mac: MacAddr([0x02, 0x00, 0x00, 0xe8, 0x10, 0x01]),
        }
    }
}

/// What the model counted (readable any time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub mdd_events: u64,
    pub dma_faults: u64,
    pub rx_frames: u64,
    pub rx_no_desc: u64,
    pub rx_oversize: u64,
    pub sink_errors: u64,
    pub admin_commands: u64,
    /// Frames [`IceModel::inject`] refused because its backlog was full.
    pub rx_backlog_drops: u64,
}

/// Counters the DMA engine writes (single writer: load + store). Aligned to
/// whole cache-line pairs so the engine's per-batch updates never share a line
/// with what the driver reads on its doorbell path.
#[derive(Default)]
#[repr(C, align(128))]
pub(crate) struct Counters {
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// 40-bit GLPRT_GOTC / GLPRT_UPTC / GLV_GOTC / GLV_UPTC values.
    pub port_gotc: AtomicU64,
    pub port_uptc: AtomicU64,
    pub vsi_gotc: AtomicU64,
    pub vsi_uptc: AtomicU64,
    pub vsi_tepc: AtomicU64,
    /// GLV_RDPC: received frames the VSI discarded (no enabled queue or
    /// no free descriptor where steering sent them).
    pub vsi_rdpc: AtomicU64,
    pub mdd_events: AtomicU64,
    pub dma_faults: AtomicU64,
    pub rx_frames: AtomicU64,
    pub rx_no_desc: AtomicU64,
    pub rx_oversize: AtomicU64,
    pub sink_errors: AtomicU64,
    pub rx_backlog_drops: AtomicU64,
}

#[inline(always)]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// A TX queue as the firmware enabled it (published to the DMA engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxRingCfg {
    pub ring_iova: u64,
    pub qlen: u32,
}

/// An RX queue as enabled through `QRX_CTRL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxRingCfg {
    pub ring_iova: u64,
    pub qlen: u32,
    pub buf_len: u32,
    pub rxmax: u32,
}

/// State shared between register accesses, the firmware and the DMA engine.
pub(crate) struct Shared {
    pub cfg: ModelConfig,
    pub tx_tail: Box<[AtomicU32]>,
    pub tx_head: Box<[AtomicU32]>,
    pub rx_tail: Box<[AtomicU32]>,
    pub sleeping: AtomicBool,
    pub stop: AtomicBool,
    /// Bumped by the control side whenever queue configuration changes; the
    /// engine stores what it has applied in `seen_gen`.
    pub gen: AtomicU64,
    pub seen_gen: AtomicU64,
    pub counters: Counters,
    pub admin_commands: AtomicU64,
    /// Fault injection: `status_error0` bits the next received frame's
    /// descriptors carry (e.g. RXE), then cleared.
    pub rx_inject: AtomicU32,
    /// Hostile-firmware hook: rewrites each admin completion (descriptor
    /// and buffer) before the driver sees it.
    pub aq_hook: Mutex<Option<AqHook>>,
    /// Hostile-device hook: rewrites each RX write-back descriptor; the
    /// engine looks only when `rx_wb_on` is set.
    pub rx_wb_hook: Mutex<Option<RxWbHook>>,
    pub rx_wb_on: AtomicBool,
    /// Fault injection: the TX DMA engine reads no descriptors (a hung
    /// transmit pipe); queue changes are still applied.
    pub tx_stalled: AtomicBool,
    pub ctl: Mutex<firmware::Ctl>,
    pub worker: Mutex<Option<std::thread::Thread>>,
    /// Frames arriving from the wire ([`IceModel::inject`]), oldest first,
    /// and how many there are (read by the engine without the lock).
    pub rx_in: Mutex<VecDeque<Vec<u8>>>,
    pub rx_in_len: AtomicUsize,
}

/// Most frames waiting on the wire side before [`IceModel::inject`] refuses.
pub const RX_BACKLOG_MAX: usize = 1 << 16;

impl Shared {
    pub fn ctl(&self) -> MutexGuard<'_, firmware::Ctl> {
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn wake_engine(&self) {
        if let Some(t) = self
            .worker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            t.unpark();
        }
    }

    /// Publishes a configuration change and waits (bounded) until the DMA
    /// engine has applied it, so a disabled queue is no longer being read.
    pub fn sync_engine(&self) {
        let g = self.gen.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake_engine();
        let t0 = std::time::Instant::now();
        while self.seen_gen.load(Ordering::Acquire) < g {
            if t0.elapsed() > std::time::Duration::from_millis(500)
                || self.stop.load(Ordering::Relaxed)
            {
                tracing::warn!(
                    "ice-model: DMA engine did not acknowledge a queue change in 500 ms"
                );
                return;
            }
            std::thread::yield_now();
        }
    }
}

/// Rewrites one admin-queue completion: (opcode, the 32-byte descriptor as
/// the firmware wrote it, the indirect buffer it returns). For tests that
/// play a hostile or broken firmware against the PMD's parsers.
pub type AqHook = Box<dyn FnMut(u16, &mut [u8; 32], &mut [u8]) + Send>;

/// Rewrites one RX write-back: (descriptor index within the frame, qword 0,
/// qword 1) — what a hostile device may write back. The frame's bytes are
/// already in the buffer.
pub type RxWbHook = Box<dyn FnMut(u32, &mut u64, &mut u64) + Send>;

/// The E810 model. Cheap to share as `Arc<IceModel>`; dropping the last
/// handle stops the DMA engine (and flushes a pcap sink).
pub struct IceModel {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl IceModel {
    /// Builds the model and starts its DMA engine thread.
    pub fn new(cfg: ModelConfig) -> Result<IceModel, EthdevError> {
        let sink = engine::SinkWriter::open(&cfg.sink)?;
        let n = MODEL_QUEUES as usize;
        let shared = Arc::new(Shared {
            tx_tail: (0..n).map(|_| AtomicU32::new(0)).collect(),
            tx_head: (0..n).map(|_| AtomicU32::new(0)).collect(),
            rx_tail: (0..n).map(|_| AtomicU32::new(0)).collect(),
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            gen: AtomicU64::new(1),
            seen_gen: AtomicU64::new(0),
            counters: Counters::default(),
            admin_commands: AtomicU64::new(0),
            rx_inject: AtomicU32::new(0),
            aq_hook: Mutex::new(None),
            rx_wb_hook: Mutex::new(None),
            rx_wb_on: AtomicBool::new(false),
            tx_stalled: AtomicBool::new(false),
            ctl: Mutex::new(firmware::Ctl::new(&cfg)),
            worker: Mutex::new(None),
            rx_in: Mutex::new(VecDeque::new()),
            rx_in_len: AtomicUsize::new(0),
            cfg,
        });
        let s2 = shared.clone();
        let h = std::thread::Builder::new()
            .name("ice-model-dma".into())
            .spawn(move || engine::run(s2, sink))
            .map_err(|e| EthdevError::Device {
                port: "ice-model".into(),
                why: format!("cannot start the model's DMA engine thread: {e}"),
            })?;
        *shared.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(h.thread().clone());
        Ok(IceModel {
            shared,
            worker: Some(h),
        })
    }

    /// The PCI device id the model presents.
    pub fn device_id(&self) -> u16 {
        self.shared.cfg.device_id
    }

    pub fn config(&self) -> &ModelConfig {
        &self.shared.cfg
    }

    /// Makes the firmware stop (or resume) answering admin commands, as a hung
    /// or resetting firmware would.
    pub fn set_firmware_responding(&self, on: bool) {
        self.shared.ctl().fw.responding = on;
    }

    /// Fault injection: the next admin completion echoes a wrong cookie.
    pub fn corrupt_next_cookie(&self) {
        self.shared.ctl().fw.bad_cookie_once = true;
    }

    /// Presets the 40-bit statistics counters (tests of the driver's wrap handling).
    pub fn preset_stat_counters(&self, v: u64) {
        let c = &self.shared.counters;
        for a in [&c.port_gotc, &c.port_uptc, &c.vsi_gotc, &c.vsi_uptc] {
            a.store(v & STAT40_MASK, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> ModelStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ModelStats {
            tx_frames: g(&c.tx_frames),
            tx_bytes: g(&c.tx_bytes),
            mdd_events: g(&c.mdd_events),
            dma_faults: g(&c.dma_faults),
            rx_frames: g(&c.rx_frames),
            rx_no_desc: g(&c.rx_no_desc),
            rx_oversize: g(&c.rx_oversize),
            sink_errors: g(&c.sink_errors),
            admin_commands: g(&self.shared.admin_commands),
            rx_backlog_drops: g(&c.rx_backlog_drops),
        }
    }

    /// Puts a frame on the model's receive side, as if it arrived from the
    /// wire: the DMA engine steers it (queue map, RSS LUT) into an RX
    /// queue's ring. `false` (and counted in `rx_backlog_drops`) when
    /// [`RX_BACKLOG_MAX`] frames are already waiting.
    pub fn inject(&self, frame: &[u8]) -> bool {
        let s = &*self.shared;
        {
            let mut q = s.rx_in.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() >= RX_BACKLOG_MAX {
                bump(&s.counters.rx_backlog_drops, 1);
                return false;
            }
            q.push_back(frame.to_vec());
            s.rx_in_len.store(q.len(), Ordering::Release);
        }
        if s.sleeping.load(Ordering::SeqCst) {
            s.wake_engine();
        }
        true
    }

    /// Frames injected and not yet taken by the DMA engine.
    pub fn rx_backlog(&self) -> usize {
        self.shared.rx_in_len.load(Ordering::Acquire)
    }

    /// The LUT the VSI's queueing options select, as the firmware holds it
    /// (`None`: none programmed).
    pub fn rss_lut(&self) -> Option<Vec<u8>> {
        let ctl = self.shared.ctl();
        let v = ctl.fw.vsi?;
        match v.q_opt_rss & spec::Q_OPT_RSS_LUT_M {
            spec::Q_OPT_RSS_LUT_PF => ctl.fw.rss.pf_lut.clone(),
            spec::Q_OPT_RSS_LUT_VSI => ctl.fw.rss.vsi_lut.clone(),
            _ => None,
        }
    }

    /// The 52-byte RSS key the firmware holds for the PF VSI.
    pub fn rss_key(&self) -> Option<Vec<u8>> {
        self.shared.ctl().fw.rss.key.map(|k| k.to_vec())
    }

    /// The VSI's `q_opt_rss` byte as the firmware accepted it.
    pub fn vsi_q_opt_rss(&self) -> Option<u8> {
        self.shared.ctl().fw.vsi.map(|v| v.q_opt_rss)
    }

    /// The TLAN context the firmware decoded for TX queue `q` (when enabled).
    pub fn tx_queue_context(&self, q: u16) -> Option<crate::ctx::TlanCtx> {
        self.shared.ctl().txq.get(q as usize).and_then(|t| t.ctx)
    }

    /// Plugs or unplugs the modelled cable/module; a link change is posted
    /// as a link-status event when the driver enabled them.
    pub fn set_media_present(&self, on: bool) {
        let mut ctl = self.shared.ctl();
        let was = ctl.link_up();
        ctl.phy.media = on;
        firmware::link_changed(&mut ctl, was);
    }

    /// Hostile firmware: every admin completion passes through `hook` (or
    /// none, with `None`) before it is written back to the driver.
    pub fn set_admin_hook(&self, hook: Option<AqHook>) {
        *self
            .shared
            .aq_hook
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = hook;
    }

    /// Hostile device: every RX write-back descriptor passes through `hook`
    /// (or none) before the driver can see it.
    pub fn set_rx_writeback_hook(&self, hook: Option<RxWbHook>) {
        let on = hook.is_some();
        *self
            .shared
            .rx_wb_hook
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = hook;
        self.shared.rx_wb_on.store(on, Ordering::Release);
    }

    /// Fault injection: while `on`, the TX DMA engine fetches no descriptors
    /// and writes back no completions — a hung transmit pipe, the case
    /// Linux's `ice_tx_timeout` exists for. Admin commands (queue disable
    /// and add) are still carried out.
    pub fn set_tx_stalled(&self, on: bool) {
        self.shared.tx_stalled.store(on, Ordering::Release);
        if !on {
            self.shared.wake_engine();
        }
    }

    /// Fault injection: the next frame received on the loopback RX queue
    /// carries these `status_error0` bits in its descriptors (the model's
    /// published bit numbers: `spec::RX_STATUS0_*_BIT`).
    pub fn inject_rx_status(&self, bits: u16) {
        self.shared.rx_inject.store(bits as u32, Ordering::Release);
    }

    /// Whether the modelled link is up.
    pub fn link_up(&self) -> bool {
        self.shared.ctl().link_up()
    }

    /// Whether the firmware sends link-status events (get_link_status LSE).
    pub fn link_events_enabled(&self) -> bool {
        self.shared.ctl().fw.lse
    }

    /// Whether the driver said it is unloading (`q_shutdown` driver_unloading).
    pub fn driver_unloaded(&self) -> bool {
        self.shared.ctl().fw.driver_unloaded
    }

    /// Whether RX queue `q` is enabled (the firmware accepted its context).
    pub fn rx_queue_enabled(&self, q: u16) -> bool {
        let ctl = self.shared.ctl();
        ctl.rxq
            .get(q as usize)
            .map(|r| r.cfg.is_some())
            .unwrap_or(false)
    }

    /// Whether the firmware has TX queue `q` enabled and not halted by MDD.
    pub fn tx_queue_running(&self, q: u16) -> bool {
        let ctl = self.shared.ctl();
        ctl.txq
            .get(q as usize)
            .map(|t| t.cfg.is_some() && !t.halted)
            .unwrap_or(false)
    }
}

impl Drop for IceModel {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake_engine();
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}

const fn in_range(off: u32, base: u32, n: u32) -> Option<u32> {
    if off >= base && off < base + 4 * n && (off - base) & 3 == 0 {
        Some((off - base) / 4)
    } else {
        None
    }
}

impl RegisterSpace for IceModel {
    #[inline]
    fn write32(&self, offset: u32, value: u32) {
        let s = &*self.shared;
        if let Some(q) = in_range(offset, qtx_comm_dbell(0), MODEL_QUEUES as u32) {
            s.tx_tail[q as usize].store(value, Ordering::Release);
            if s.sleeping.load(Ordering::Relaxed) {
                s.wake_engine();
            }
            return;
        }
        if let Some(q) = in_range(offset, qrx_tail(0), MODEL_QUEUES as u32) {
            s.rx_tail[q as usize].store(value, Ordering::Release);
            return;
        }
        firmware::write(s, offset, value);
    }

    #[inline]
    fn read32(&self, offset: u32) -> u32 {
        let s = &*self.shared;
        if let Some(q) = in_range(offset, qtx_comm_head(0), MODEL_QUEUES as u32) {
            return s.tx_head[q as usize].load(Ordering::Acquire);
        }
        if let Some(q) = in_range(offset, qtx_comm_dbell(0), MODEL_QUEUES as u32) {
            return s.tx_tail[q as usize].load(Ordering::Acquire);
        }
        if let Some(q) = in_range(offset, qrx_tail(0), MODEL_QUEUES as u32) {
            return s.rx_tail[q as usize].load(Ordering::Acquire);
        }
        let c = &s.counters;
        let stat40 = |a: &AtomicU64, high: bool| {
            let v = a.load(Ordering::Relaxed) & STAT40_MASK;
            if high {
                (v >> 32) as u32
            } else {
                v as u32
            }
        };
        let vsi = s.ctl().fw.vsi.map(|v| v.num as u32);
        // The port counters exist at this PF's logical port only.
        let lp = firmware::LPORT as u32;
        match offset {
            o if o == glprt_gotcl(lp) => return stat40(&c.port_gotc, false),
            o if o == glprt_gotcl(lp) + 4 => return stat40(&c.port_gotc, true),
            o if o == glprt_uptcl(lp) => return stat40(&c.port_uptc, false),
            o if o == glprt_uptcl(lp) + 4 => return stat40(&c.port_uptc, true),
            _ => {}
        }
        if let Some(v) = vsi {
            match offset {
                o if o == glv_gotcl(v) => return stat40(&c.vsi_gotc, false),
                o if o == glv_gotcl(v) + 4 => return stat40(&c.vsi_gotc, true),
                o if o == glv_uptcl(v) => return stat40(&c.vsi_uptc, false),
                o if o == glv_uptcl(v) + 4 => return stat40(&c.vsi_uptc, true),
                o if o == glv_tepc(v) => return c.vsi_tepc.load(Ordering::Relaxed) as u32,
                o if o == glv_rdpc(v) => return c.vsi_rdpc.load(Ordering::Relaxed) as u32,
                _ => {}
            }
        }
        firmware::read(s, offset)
    }

    fn len(&self) -> usize {
        BAR0_LEN
    }
}
