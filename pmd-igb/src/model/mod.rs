//! A register-level model of the igb (82576) MAC, its PHY and its DMA engine.
//!
//! The model implements [`RegisterSpace`] with the side effects the part has
//! (and that QEMU's igb reproduces): CTRL.RST resets every register, the
//! per-queue enables latch only once TCTL.EN / RCTL.EN are on, MDIC reaches
//! a PHY whose link comes up after autonegotiation is restarted, the
//! statistics registers clear on read, TDT/RDT are doorbells. A DMA engine
//! thread fetches descriptors and buffers through an IOMMU-like
//! [`IovaMap`] (a bad IOVA is a fault: counted, reported, nothing read),
//! applies context-descriptor offloads (IPv4 header checksum, UDP/TCP
//! checksum, 802.1Q insertion) to the frame it puts on the "wire", writes DD
//! back to RS descriptors, and paces frames at the modeled link speed
//! (preamble, IFG and FCS counted). Frames go to a sink: a counter, a pcap
//! file, the model's own RX (loopback), or an in-memory capture for tests.

pub mod net;
mod rx;

use crate::regs::*;
use std::collections::VecDeque;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};
use wirespeed::eal::dma::IovaMap;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::pcap::PcapWriter;
use wirespeed::ethdev::{MacAddr, PortEvent};

/// Where transmitted frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Counted and dropped.
    Count,
    /// Written to a pcap file.
    Pcap(PathBuf),
    /// Received by the model's own RX (a cable plugged back into the port).
    Loopback,
    /// Kept in memory ([`IgbModel::take_captured`]), for tests.
    Capture,
}

/// Model set-up.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Modeled line rate in bit/s; 0 = unlimited (no pacing).
    pub speed_bps: u64,
    pub sink: Sink,
    /// The address the "EEPROM" loads into RAL0/RAH0 at reset.
    pub mac: MacAddr,
    /// Time from an autonegotiation restart to link up.
    pub autoneg: Duration,
    /// Pin the DMA engine thread to this core.
    pub core: Option<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            speed_bps: 1_000_000_000,
            sink: Sink::Count,
            mac: MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            autoneg: Duration::from_millis(2),
            core: None,
        }
    }
}

/// Number of TX / RX queues the model has (the 82576's 16).
pub const MODEL_QUEUES: usize = 16;
/// PCI device id the model stands for (82576 copper).
pub const MODEL_DEVICE_ID: u16 = 0x10C9;
/// PHY id registers the model answers with (the 82576's IGP03 PHY).
const PHY_ID: u32 = 0x02A8_0391;
const EVENTS_MAX: usize = 1024;
const RX_BACKLOG_MAX: usize = 65_536;
/// Per-frame wire overhead besides the frame: preamble+SFD 8, IFG 12.
const WIRE_OVERHEAD: u64 = 20;

/// Counters of what the model saw (reported as xstats `model_*`).
#[derive(Debug, Default)]
pub struct ModelCounters {
    pub wire_frames: AtomicU64,
    pub wire_bytes: AtomicU64,
    /// Modeled wire time of every frame sent (preamble + frame + FCS + IFG at
    /// the modeled speed), in ns; 0 at unlimited speed.
    pub wire_ns: AtomicU64,
    pub data_descs: AtomicU64,
    pub ctx_descs: AtomicU64,
    pub dd_writebacks: AtomicU64,
    pub dma_faults: AtomicU64,
    pub tx_fault_drops: AtomicU64,
    pub paylen_mismatch: AtomicU64,
    /// Frames a TSO packet (TSE) was cut into.
    pub tso_segments: AtomicU64,
    /// TSO packets refused: a context that is no TCP/IPv4 one, MSS 0, or
    /// headers longer than the packet.
    pub tso_bad: AtomicU64,
    pub rx_frames: AtomicU64,
    pub rx_not_ready: AtomicU64,
    pub rx_filtered: AtomicU64,
    pub rx_backlog_drops: AtomicU64,
    /// TDT writes (RDT writes are counted per queue: `model_rx_doorbells`).
    pub doorbells: AtomicU64,
}

/// A counter alone on its cache line: written from one lcore only, so
/// lcores refilling different RX queues share no line in the model.
#[repr(align(64))]
#[derive(Default)]
struct LineCounter(AtomicU64);

struct Shared {
    regs: Box<[AtomicU32]>,
    /// Statistics 0x4000..0x4100 (a 64-bit pair lives at its low index).
    stats: Box<[AtomicU64]>,
    /// High halves latched by reading the low half of a 64-bit pair.
    stat_hi: Box<[AtomicU32]>,
    cfg: ModelConfig,
    epoch: Instant,
    /// Nanoseconds since `epoch` when the link is up; u64::MAX = down.
    link_at: AtomicU64,
    /// The cable is plugged in (a test knob, [`IgbModel::set_cable`]).
    cable: AtomicBool,
    bmcr: AtomicU32,
    reset_gen: AtomicU64,
    stop: AtomicBool,
    /// Bit q: the engine is processing TX queue q. TXDCTL.ENABLE reads 1
    /// until the engine has let go of a queue software disabled, as on the
    /// 82576, where the bit reads back 0 only once the queue has stopped.
    tx_live: AtomicU32,
    engine: OnceLock<Thread>,
    c: ModelCounters,
    events: Mutex<Vec<PortEvent>>,
    rx_in: Mutex<VecDeque<Vec<u8>>>,
    rx_len: AtomicUsize,
    /// The engine holds the backlog's first frame in the packet buffer
    /// because its queue has no free descriptor.
    rx_waiting: AtomicBool,
    /// Bumped by every write to MRQC, RXCSUM, RETA or RSSRK (and by reset),
    /// so the engine re-reads the RSS set-up only when it changed.
    rss_gen: AtomicU64,
    /// RDT writes per RX queue.
    rx_doorbells: Box<[LineCounter]>,
    captured: Mutex<Vec<Vec<u8>>>,
    sink_error: Mutex<Option<String>>,
    /// Hostile-device hook on each RX write-back; looked at only when
    /// `rx_wb_on` is set.
    rx_wb_hook: Mutex<Option<RxWbHook>>,
    rx_wb_on: AtomicBool,
}

/// Rewrites one RX write-back descriptor (qword 0, qword 1: status, errors,
/// length, VLAN) before the driver can see it — what a hostile device may
/// write back. The frame's bytes are already in the buffer.
pub type RxWbHook = Box<dyn FnMut(&mut u64, &mut u64) + Send>;

impl Shared {
    #[inline(always)]
    fn r(&self, off: u32) -> u32 {
        self.regs[(off / 4) as usize].load(Ordering::Acquire)
    }
    #[inline(always)]
    fn w(&self, off: u32, v: u32) {
        self.regs[(off / 4) as usize].store(v, Ordering::Release)
    }
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
    fn link_up(&self) -> bool {
        self.cable.load(Ordering::Acquire) && self.now_ns() >= self.link_at.load(Ordering::Acquire)
    }
    fn stat_add(&self, off: u32, n: u64) {
        self.stats[((off - 0x4000) / 4) as usize].fetch_add(n, Ordering::Relaxed);
    }
    fn kick(&self) {
        if let Some(t) = self.engine.get() {
            t.unpark();
        }
    }
    fn event(&self, queue: Option<u16>, kind: &str, detail: String) {
        tracing::debug!("igb-model: {kind}: {detail}");
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if e.len() < EVENTS_MAX {
            e.push(PortEvent {
                queue,
                kind: kind.to_string(),
                detail,
            });
        }
    }

    /// Power-on / CTRL.RST state of every register.
    fn reset(&self) {
        for r in self.regs.iter() {
            r.store(0, Ordering::Relaxed);
        }
        for s in self.stats.iter() {
            s.store(0, Ordering::Relaxed);
        }
        let m = self.cfg.mac.0;
        self.w(RAL0, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        self.w(RAH0, u32::from(m[4]) | (u32::from(m[5]) << 8) | RAH_AV);
        self.w(STATUS, STATUS_GIO_MASTER_EN);
        self.w(EECD, EECD_AUTO_RD);
        self.w(VET, 0x8100);
        self.w(
            TCTL,
            TCTL_PSP | (15 << TCTL_CT_SHIFT) | (63 << TCTL_COLD_SHIFT),
        );
        // The PHY keeps its autonegotiation advertisement but the link drops
        // until autonegotiation is restarted (QEMU's igb does the same).
        self.bmcr.store(
            u32::from(BMCR_AN_ENABLE | BMCR_FULL_DUPLEX | BMCR_SPEED1000),
            Ordering::Relaxed,
        );
        self.link_at.store(u64::MAX, Ordering::Release);
        self.rss_gen.fetch_add(1, Ordering::AcqRel);
        self.reset_gen.fetch_add(1, Ordering::AcqRel);
    }

    fn phy_read(&self, reg: u32) -> u16 {
        let up = self.link_up();
        match reg {
            PHY_BMCR => self.bmcr.load(Ordering::Relaxed) as u16,
            PHY_BMSR => {
                // 100/10 half/full, extended status, AN ability, extended caps.
                let mut v = 0x7949u16;
                if up {
                    v |= BMSR_LINK | BMSR_AN_COMPLETE;
                }
                v
            }
            PHY_ID1 => (PHY_ID >> 16) as u16,
            PHY_ID2 => PHY_ID as u16,
            _ => 0,
        }
    }

    fn phy_write(&self, reg: u32, v: u16) {
        if reg != PHY_BMCR {
            return;
        }
        if v & BMCR_RESET != 0 {
            self.bmcr.store(
                u32::from(BMCR_AN_ENABLE | BMCR_FULL_DUPLEX | BMCR_SPEED1000),
                Ordering::Relaxed,
            );
            self.link_at.store(u64::MAX, Ordering::Release);
            return;
        }
        self.bmcr.store(
            u32::from(v & !(BMCR_AN_RESTART | BMCR_RESET)),
            Ordering::Relaxed,
        );
        if v & BMCR_AN_ENABLE != 0 && v & BMCR_AN_RESTART != 0 {
            let at = self.now_ns() + self.cfg.autoneg.as_nanos() as u64;
            self.link_at.store(at, Ordering::Release);
        } else if v & BMCR_AN_ENABLE == 0 {
            // Forced speed/duplex: link comes up at once.
            self.link_at.store(self.now_ns(), Ordering::Release);
        }
    }

    fn mdic(&self, v: u32) {
        let phy = (v >> MDIC_PHY_SHIFT) & 0x1F;
        let reg = (v >> MDIC_REG_SHIFT) & 0x1F;
        let out = if phy != PHY_ADDR {
            v | MDIC_READY | MDIC_ERROR
        } else if v & MDIC_OP_WRITE != 0 {
            self.phy_write(reg, v as u16);
            (v & !(MDIC_READY | MDIC_ERROR)) | MDIC_READY
        } else if v & MDIC_OP_READ != 0 {
            (v & !(MDIC_DATA_MASK | MDIC_READY | MDIC_ERROR))
                | u32::from(self.phy_read(reg))
                | MDIC_READY
        } else {
            v | MDIC_READY | MDIC_ERROR
        };
        self.w(MDIC, out);
    }
}

/// The igb device model. Hand `Arc<IgbModel>` to the driver as its register
/// window; the DMA engine thread runs until the last handle is dropped.
pub struct IgbModel {
    sh: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for IgbModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IgbModel")
            .field("cfg", &self.sh.cfg)
            .finish()
    }
}

/// Model set-up errors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("igb-model: cannot create pcap sink {path}: {source}")]
    Pcap {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("igb-model: cannot start the DMA engine thread: {0}")]
    Thread(std::io::Error),
}

impl IgbModel {
    /// Builds the model in its reset state and starts its DMA engine thread.
    pub fn new(cfg: ModelConfig) -> Result<Arc<IgbModel>, ModelError> {
        let pcap = match &cfg.sink {
            Sink::Pcap(p) => {
                let f = wirespeed::eal::file::create_nofollow(p).map_err(|e| ModelError::Pcap {
                    path: p.clone(),
                    source: e,
                })?;
                Some(
                    PcapWriter::new(BufWriter::new(f)).map_err(|e| ModelError::Pcap {
                        path: p.clone(),
                        source: e,
                    })?,
                )
            }
            _ => None,
        };
        let sh = Arc::new(Shared {
            regs: (0..BAR0_LEN / 4).map(|_| AtomicU32::new(0)).collect(),
            stats: (0..64).map(|_| AtomicU64::new(0)).collect(),
            stat_hi: (0..64).map(|_| AtomicU32::new(0)).collect(),
            cfg,
            epoch: Instant::now(),
            link_at: AtomicU64::new(u64::MAX),
            cable: AtomicBool::new(true),
            bmcr: AtomicU32::new(0),
            reset_gen: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            tx_live: AtomicU32::new(0),
            engine: OnceLock::new(),
            c: ModelCounters::default(),
            events: Mutex::new(Vec::new()),
            rx_in: Mutex::new(VecDeque::new()),
            rx_len: AtomicUsize::new(0),
            rx_waiting: AtomicBool::new(false),
            rss_gen: AtomicU64::new(0),
            rx_doorbells: (0..MODEL_QUEUES).map(|_| LineCounter::default()).collect(),
            captured: Mutex::new(Vec::new()),
            sink_error: Mutex::new(None),
            rx_wb_hook: Mutex::new(None),
            rx_wb_on: AtomicBool::new(false),
        });
        sh.reset();
        let sh2 = sh.clone();
        let h = std::thread::Builder::new()
            .name("igb-model".into())
            .spawn(move || {
                if let Some(c) = sh2.cfg.core.or_else(wirespeed::eal::lcore::spare_core) {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                        tracing::warn!("igb-model: could not pin the DMA engine to core {c}");
                    }
                }
                Engine::new(sh2, pcap).run()
            })
            .map_err(ModelError::Thread)?;
        let _ = sh.engine.set(h.thread().clone());
        Ok(Arc::new(IgbModel {
            sh,
            thread: Mutex::new(Some(h)),
        }))
    }

    /// Modeled line rate (0 = unlimited).
    pub fn line_rate_bps(&self) -> u64 {
        self.sh.cfg.speed_bps
    }

    /// What the model counted.
    pub fn counters(&self) -> &ModelCounters {
        &self.sh.c
    }

    /// Frames kept by [`Sink::Capture`] since the last call.
    pub fn take_captured(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.sh.captured.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Pulls (`false`) or plugs (`true`) the modelled cable. Unplugged, the
    /// PHY reports no link (`STATUS.LU` and `BMSR` link status clear) and the
    /// MAC transmits nothing: descriptors stay in the ring, unfetched, as on
    /// the 82576, where a lost link stops transmit DMA and leaves the queued
    /// work for the driver to flush (Linux `igb_watchdog_task`). Plugged back
    /// in, the PHY autonegotiates again ([`ModelConfig::autoneg`]) before the
    /// link comes up and the ring drains.
    pub fn set_cable(&self, plugged: bool) {
        let sh = &*self.sh;
        let was = sh.cable.swap(plugged, Ordering::AcqRel);
        if plugged && !was && sh.bmcr.load(Ordering::Relaxed) & u32::from(BMCR_AN_ENABLE) != 0 {
            let at = sh.now_ns() + sh.cfg.autoneg.as_nanos() as u64;
            sh.link_at.store(at, Ordering::Release);
        }
        if plugged != was {
            sh.event(
                None,
                "cable",
                if plugged { "plugged in" } else { "pulled" }.to_string(),
            );
        }
        sh.kick();
    }

    /// Events (DMA faults, malformed descriptors) since the last call.
    pub fn take_events(&self) -> Vec<PortEvent> {
        std::mem::take(&mut *self.sh.events.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Hostile device: every RX write-back passes through `hook` (or none)
    /// before the driver can see it.
    pub fn set_rx_writeback_hook(&self, hook: Option<RxWbHook>) {
        let on = hook.is_some();
        *self.sh.rx_wb_hook.lock().unwrap_or_else(|e| e.into_inner()) = hook;
        self.sh.rx_wb_on.store(on, Ordering::Release);
    }

    /// Puts a frame on the model's receive side (as if it came off the wire).
    /// `false` when the backlog is full (counted).
    pub fn inject(&self, frame: &[u8]) -> bool {
        let ok = push_rx(&self.sh, frame.to_vec());
        self.sh.kick();
        ok
    }

    /// The sink's I/O error, if writing the pcap failed.
    pub fn sink_error(&self) -> Option<String> {
        self.sh
            .sink_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counters as named xstats.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        let c = &self.sh.c;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("model_wire_frames".into(), g(&c.wire_frames)),
            ("model_wire_bytes".into(), g(&c.wire_bytes)),
            ("model_wire_ns".into(), g(&c.wire_ns)),
            ("model_data_descs".into(), g(&c.data_descs)),
            ("model_ctx_descs".into(), g(&c.ctx_descs)),
            ("model_dd_writebacks".into(), g(&c.dd_writebacks)),
            ("model_dma_faults".into(), g(&c.dma_faults)),
            ("model_tx_fault_drops".into(), g(&c.tx_fault_drops)),
            ("model_paylen_mismatch".into(), g(&c.paylen_mismatch)),
            ("model_tso_segments".into(), g(&c.tso_segments)),
            ("model_tso_bad".into(), g(&c.tso_bad)),
            ("model_rx_frames".into(), g(&c.rx_frames)),
            ("model_rx_not_ready".into(), g(&c.rx_not_ready)),
            ("model_rx_filtered".into(), g(&c.rx_filtered)),
            ("model_rx_backlog_drops".into(), g(&c.rx_backlog_drops)),
            ("model_doorbells".into(), g(&c.doorbells)),
            (
                "model_rx_doorbells".into(),
                self.sh.rx_doorbells.iter().map(|d| g(&d.0)).sum(),
            ),
        ]
    }

    /// Waits (bounded) until the engine has consumed every TX descriptor
    /// handed to it and the RX backlog is empty. True when idle.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        crate::hw::wait_for(limit, Duration::from_micros(50), || {
            let tx_idle = (0..MODEL_QUEUES as u32).all(|q| {
                let en = self.sh.r(TCTL) & TCTL_EN != 0 && self.sh.r(txdctl(q)) & XDCTL_ENABLE != 0;
                !en || self.sh.r(tdh(q)) == self.sh.r(tdt(q))
            });
            let backlog = self.sh.rx_len.load(Ordering::Acquire);
            // Frames held in the packet buffer for want of RX descriptors wait
            // for the driver, not for the engine.
            let rx_idle = backlog == 0
                || (backlog <= rx::RX_PACKET_BUFFER_FRAMES
                    && self.sh.rx_waiting.load(Ordering::Acquire));
            tx_idle && rx_idle
        })
    }
}

fn push_rx(sh: &Shared, f: Vec<u8>) -> bool {
    let mut q = sh.rx_in.lock().unwrap_or_else(|e| e.into_inner());
    if q.len() >= RX_BACKLOG_MAX {
        sh.c.rx_backlog_drops.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    q.push_back(f);
    sh.rx_len.store(q.len(), Ordering::Release);
    true
}

impl Drop for IgbModel {
    fn drop(&mut self) {
        self.sh.stop.store(true, Ordering::Release);
        self.sh.kick();
        if let Some(h) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl RegisterSpace for IgbModel {
    fn read32(&self, off: u32) -> u32 {
        let sh = &*self.sh;
        if off as usize + 4 > BAR0_LEN || !off.is_multiple_of(4) {
            return 0xFFFF_FFFF;
        }
        if is_stat(off) {
            let i = ((off - 0x4000) / 4) as usize;
            let high = STATS64.iter().any(|(_, h, _)| *h == off);
            let low = STATS64.iter().any(|(l, _, _)| *l == off);
            return if high {
                sh.stat_hi[i - 1].swap(0, Ordering::AcqRel)
            } else if low {
                // Reading the low half latches and clears the whole counter.
                let v = sh.stats[i].swap(0, Ordering::AcqRel);
                sh.stat_hi[i].store((v >> 32) as u32, Ordering::Release);
                v as u32
            } else {
                sh.stats[i]
                    .swap(0, Ordering::AcqRel)
                    .min(u64::from(u32::MAX)) as u32
            };
        }
        match off {
            ICR | EICR => sh.regs[(off / 4) as usize].swap(0, Ordering::AcqRel),
            STATUS => {
                let mut s = sh.r(STATUS);
                if sh.link_up() {
                    // The speed the modeled link runs at; an unlimited model
                    // has no encoding and shows what its PHY negotiated (1000).
                    let speed = match sh.cfg.speed_bps {
                        10_000_000 => STATUS_SPEED_10,
                        100_000_000 => STATUS_SPEED_100,
                        _ => STATUS_SPEED_1000,
                    };
                    s |= STATUS_LU | STATUS_FD | speed;
                }
                s
            }
            o if (0xE028..0xE028 + 0x40 * MODEL_QUEUES as u32).contains(&o)
                && (o - 0xE028) % 0x40 == 0 =>
            {
                let v = sh.r(o);
                let q = (o - 0xE028) / 0x40;
                if sh.r(TCTL) & TCTL_EN == 0 {
                    v & !XDCTL_ENABLE
                } else if sh.tx_live.load(Ordering::Acquire) & (1 << q) != 0 {
                    v | XDCTL_ENABLE
                } else {
                    v
                }
            }
            o if (0xC028..0xC028 + 0x40 * MODEL_QUEUES as u32).contains(&o)
                && (o - 0xC028) % 0x40 == 0 =>
            {
                let v = sh.r(o);
                if sh.r(RCTL) & RCTL_EN == 0 {
                    v & !XDCTL_ENABLE
                } else {
                    v
                }
            }
            _ => sh.r(off),
        }
    }

    fn write32(&self, off: u32, v: u32) {
        let sh = &*self.sh;
        if off as usize + 4 > BAR0_LEN || !off.is_multiple_of(4) || is_stat(off) {
            return;
        }
        match off {
            CTRL => {
                if v & CTRL_RST != 0 {
                    sh.reset();
                    sh.kick();
                    return;
                }
                if v & CTRL_PHY_RST != 0 {
                    sh.link_at.store(u64::MAX, Ordering::Release);
                }
                sh.w(CTRL, v & !CTRL_PHY_RST);
            }
            STATUS | EECD => {}
            MDIC => sh.mdic(v),
            ICR | EICR => {
                sh.regs[(off / 4) as usize].fetch_and(!v, Ordering::AcqRel);
            }
            IMC => {
                sh.regs[(IMS / 4) as usize].fetch_and(!v, Ordering::AcqRel);
            }
            EIMC => {
                sh.regs[(EIMS / 4) as usize].fetch_and(!v, Ordering::AcqRel);
            }
            TCTL | RCTL => {
                sh.w(off, v);
                sh.kick();
            }
            o if (0xE000..0xE000 + 0x40 * MODEL_QUEUES as u32).contains(&o)
                || (0xC000..0xC000 + 0x40 * MODEL_QUEUES as u32).contains(&o) =>
            {
                sh.w(o, v);
                let r = o & 0x3F;
                if r == 0x18 || r == 0x28 {
                    // TDT / RDT doorbell, or a queue enable change.
                    let rx_tail = o < 0xE000 && r == 0x18;
                    if rx_tail {
                        let q = ((o - 0xC000) / 0x40) as usize;
                        sh.rx_doorbells[q].0.fetch_add(1, Ordering::Relaxed);
                    } else if r == 0x18 {
                        sh.c.doorbells.fetch_add(1, Ordering::Relaxed);
                    }
                    // New RX buffers matter to the engine only when frames
                    // wait for them; with an empty backlog the next frame's
                    // arrival wakes it. (Waking it costs the driver a futex
                    // call per refill, which real doorbells do not.)
                    if !rx_tail || sh.rx_len.load(Ordering::Acquire) > 0 {
                        sh.kick();
                    }
                }
            }
            o if o == MRQC
                || o == RXCSUM
                || (RETA..RETA + u32::from(RETA_SIZE)).contains(&o)
                || (RSSRK..RSSRK + 4 * RSSRK_LEN).contains(&o) =>
            {
                sh.w(o, v);
                sh.rss_gen.fetch_add(1, Ordering::AcqRel);
            }
            _ => sh.w(off, v),
        }
    }

    fn len(&self) -> usize {
        BAR0_LEN
    }
}

// ---------------------------------------------------------------- the engine

#[derive(Clone, Copy, Default)]
struct Ctx {
    vlan_macip_lens: u32,
    type_tucmd: u32,
    /// MSS (bits 31:16) and L4LEN (bits 15:8) of the upper dword.
    mss_l4len: u32,
}

#[derive(Default)]
struct TxState {
    active: bool,
    base: u64,
    n: u32,
    head: u32,
    ctx: [Ctx; 2],
    in_pkt: bool,
    faulted: bool,
    first_cmd: u32,
    first_olinfo: u32,
    frame: Vec<u8>,
}

struct Engine {
    sh: Arc<Shared>,
    map: IovaMap,
    tx: Vec<TxState>,
    rx: Vec<rx::RxState>,
    /// The RSS set-up as last read from MRQC/RSSRK/RETA (re-read when
    /// `Shared::rss_gen` moves).
    rss: rx::RssState,
    reset_gen: u64,
    /// When the wire is free again (ns since epoch).
    wire_free: u64,
    pcap: Option<PcapWriter<BufWriter<std::fs::File>>>,
    wall0: u64,
    /// Statistics gathered since the last flush (indexed like `Shared::stats`).
    st: [u64; 64],
    /// Local model counters (LC_*), flushed with `st`.
    lc: [u64; 6],
}

const LC_FRAMES: usize = 0;
const LC_BYTES: usize = 1;
const LC_DATA: usize = 2;
const LC_CTX: usize = 3;
const LC_DD: usize = 4;
const LC_WIRE_NS: usize = 5;

/// How far ahead of real time the modeled wire may run (the packet buffer).
const PACING_SLACK_NS: u64 = 20_000;

impl Engine {
    fn new(sh: Arc<Shared>, pcap: Option<PcapWriter<BufWriter<std::fs::File>>>) -> Engine {
        let wall0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Engine {
            sh,
            map: IovaMap::snapshot(),
            tx: (0..MODEL_QUEUES).map(|_| TxState::default()).collect(),
            rx: (0..MODEL_QUEUES).map(|_| rx::RxState::default()).collect(),
            rss: rx::RssState::default(),
            reset_gen: u64::MAX,
            wire_free: 0,
            pcap,
            wall0,
            st: [0; 64],
            lc: [0; 6],
        }
    }

    #[inline(always)]
    fn stat(&mut self, off: u32, n: u64) {
        self.st[((off - 0x4000) / 4) as usize] += n;
    }

    /// Publishes the batched statistics and counters (the part updates its
    /// statistics registers asynchronously too).
    fn flush(&mut self, sh: &Shared) {
        for (i, v) in self.st.iter_mut().enumerate() {
            if *v != 0 {
                sh.stats[i].fetch_add(*v, Ordering::AcqRel);
                *v = 0;
            }
        }
        let c = &sh.c;
        for (i, a) in [
            &c.wire_frames,
            &c.wire_bytes,
            &c.data_descs,
            &c.ctx_descs,
            &c.dd_writebacks,
            &c.wire_ns,
        ]
        .into_iter()
        .enumerate()
        {
            if self.lc[i] != 0 {
                a.fetch_add(self.lc[i], Ordering::AcqRel);
                self.lc[i] = 0;
            }
        }
    }

    fn run(mut self) {
        let sh = self.sh.clone();
        let sh = &*sh;
        let mut idle = 0u32;
        loop {
            if self.sh.stop.load(Ordering::Acquire) {
                break;
            }
            self.map.refresh();
            let g = self.sh.reset_gen.load(Ordering::Acquire);
            if g != self.reset_gen {
                self.reset_gen = g;
                self.sh.tx_live.store(0, Ordering::Release);
                for t in &mut self.tx {
                    *t = TxState {
                        frame: std::mem::take(&mut t.frame),
                        ..TxState::default()
                    };
                }
                for r in &mut self.rx {
                    *r = rx::RxState::default();
                }
                self.rss = rx::RssState::default();
            }
            let mut work = false;
            let mut wait_ns = None;
            for q in 0..MODEL_QUEUES {
                match self.process_tx(sh, q) {
                    Step::Work => work = true,
                    Step::Paced(ns) => wait_ns = Some(ns),
                    Step::Idle => {}
                }
            }
            work |= self.process_rx(sh);
            if work {
                idle = 0;
                continue;
            }
            if let Some(ns) = wait_ns {
                if ns > 50_000 {
                    std::thread::park_timeout(Duration::from_nanos(ns - 20_000));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            idle += 1;
            if idle < 2_000 {
                std::hint::spin_loop();
            } else if idle < 2_100 {
                std::thread::yield_now();
            } else {
                std::thread::park_timeout(Duration::from_millis(1));
            }
        }
        // A stopped engine holds no queue: TXDCTL.ENABLE reads what was written.
        self.sh.tx_live.store(0, Ordering::Release);
        if let Some(p) = &mut self.pcap {
            if let Err(e) = p.flush() {
                *self.sh.sink_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
        }
    }

    fn process_tx(&mut self, sh: &Shared, q: usize) -> Step {
        let qi = q as u32;
        let en = sh.r(TCTL) & TCTL_EN != 0 && sh.r(txdctl(qi)) & XDCTL_ENABLE != 0;
        if !en {
            self.tx[q].active = false;
            if sh.tx_live.load(Ordering::Relaxed) & (1 << q) != 0 {
                // Release: the last TDH and write-backs are visible before
                // TXDCTL.ENABLE reads 0.
                sh.tx_live.fetch_and(!(1 << q), Ordering::Release);
            }
            return Step::Idle;
        }
        if !self.tx[q].active {
            // Latch the ring registers when the queue goes live.
            let t = &mut self.tx[q];
            t.base = u64::from(sh.r(tdbal(qi))) | (u64::from(sh.r(tdbah(qi))) << 32);
            t.n = sh.r(tdlen(qi)) / DESC_LEN as u32;
            t.head = sh.r(tdh(qi));
            t.ctx = [Ctx::default(); 2];
            t.in_pkt = false;
            t.active = true;
            sh.tx_live.fetch_or(1 << q, Ordering::AcqRel);
            if t.n == 0 || t.head >= t.n {
                sh.event(
                    Some(q as u16),
                    "tx-ring-invalid",
                    format!(
                        "TDLEN {} / TDH {}: queue not started",
                        sh.r(tdlen(qi)),
                        t.head
                    ),
                );
                sh.w(txdctl(qi), sh.r(txdctl(qi)) & !XDCTL_ENABLE);
                t.active = false;
                return Step::Idle;
            }
        }
        let tail = sh.r(tdt(qi));
        let n = self.tx[q].n;
        if tail >= n {
            sh.event(
                Some(q as u16),
                "tdt-out-of-range",
                format!(
                    "tx queue {q}: TDT {tail} is beyond the {n}-descriptor ring; queue stopped"
                ),
            );
            sh.w(txdctl(qi), sh.r(txdctl(qi)) & !XDCTL_ENABLE);
            self.tx[q].active = false;
            return Step::Work;
        }
        if !sh.cable.load(Ordering::Acquire) {
            // No link: the MAC sends nothing and fetches no descriptor.
            return Step::Idle;
        }
        let mut did = 0;
        while self.tx[q].head != tail && did < 256 {
            if !self.tx[q].in_pkt && sh.cfg.speed_bps > 0 {
                let now = sh.now_ns();
                if self.wire_free > now + PACING_SLACK_NS {
                    return if did > 0 {
                        self.flush(sh);
                        sh.w(tdh(qi), self.tx[q].head);
                        Step::Work
                    } else {
                        Step::Paced(self.wire_free - now - PACING_SLACK_NS)
                    };
                }
            }
            let head = self.tx[q].head;
            let d_iova = self.tx[q].base + u64::from(head) * DESC_LEN as u64;
            let (Some(lo), Some(hi)) = (self.map.read_u64(d_iova), self.map.read_u64(d_iova + 8))
            else {
                sh.c.dma_faults.fetch_add(1, Ordering::Relaxed);
                sh.event(
                    Some(q as u16),
                    "dma-fault",
                    format!(
                        "tx queue {q}: descriptor fetch at IOVA {d_iova:#x} faulted; queue stopped"
                    ),
                );
                sh.w(txdctl(qi), sh.r(txdctl(qi)) & !XDCTL_ENABLE);
                self.tx[q].active = false;
                self.flush(sh);
                sh.w(tdh(qi), self.tx[q].head);
                return Step::Work;
            };
            self.descriptor(sh, q, d_iova, lo, hi);
            let t = &mut self.tx[q];
            t.head = if head + 1 == n { 0 } else { head + 1 };
            did += 1;
        }
        if did > 0 {
            // Counters become visible before the head moves past the batch.
            self.flush(sh);
            sh.w(tdh(qi), self.tx[q].head);
            Step::Work
        } else {
            Step::Idle
        }
    }

    fn descriptor(&mut self, sh: &Shared, q: usize, d_iova: u64, lo: u64, hi: u64) {
        let cmd = hi as u32;
        let olinfo = (hi >> 32) as u32;
        if cmd & TXD_DEXT == 0 {
            sh.event(
                Some(q as u16),
                "legacy-descriptor",
                format!("tx queue {q}: legacy descriptor at {d_iova:#x} (not implemented; use advanced descriptors)"),
            );
            return;
        }
        match cmd & TXD_DTYP_MASK {
            TXD_DTYP_CTXT => {
                let idx = ((olinfo >> TXD_IDX_SHIFT) & 1) as usize;
                self.tx[q].ctx[idx] = Ctx {
                    vlan_macip_lens: lo as u32,
                    type_tucmd: cmd,
                    mss_l4len: olinfo & !(1 << TXD_IDX_SHIFT),
                };
                self.lc[LC_CTX] += 1;
            }
            TXD_DTYP_DATA => {
                self.lc[LC_DATA] += 1;
                let t = &mut self.tx[q];
                if !t.in_pkt {
                    t.in_pkt = true;
                    t.faulted = false;
                    t.first_cmd = cmd;
                    t.first_olinfo = olinfo;
                    t.frame.clear();
                }
                let len = (cmd & TXD_LEN_MASK) as usize;
                if !t.faulted {
                    match self.map.translate(lo, len) {
                        Some(p) => {
                            // SAFETY: `translate` checked [lo, lo+len) lies in a live
                            // DMA region kept alive by the map snapshot.
                            let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), len) };
                            t.frame.extend_from_slice(s);
                        }
                        None => {
                            t.faulted = true;
                            sh.c.dma_faults.fetch_add(1, Ordering::Relaxed);
                            sh.event(
                                Some(q as u16),
                                "dma-fault",
                                format!("tx queue {q}: buffer read of {len} bytes at IOVA {lo:#x} faulted; frame dropped"),
                            );
                        }
                    }
                }
                if cmd & TXD_EOP != 0 {
                    self.finish(sh, q);
                    self.tx[q].in_pkt = false;
                }
            }
            other => {
                sh.event(
                    Some(q as u16),
                    "bad-descriptor",
                    format!(
                        "tx queue {q}: descriptor type {:#x} at {d_iova:#x}",
                        other >> 20
                    ),
                );
            }
        }
        if cmd & TXD_RS != 0 && self.map.write(d_iova + 12, &TXD_STAT_DD.to_le_bytes()) {
            self.lc[LC_DD] += 1;
        }
    }

    /// Applies the offloads of a complete frame and puts it on the wire.
    fn finish(&mut self, sh: &Shared, q: usize) {
        let t = &mut self.tx[q];
        if t.faulted {
            sh.c.tx_fault_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let paylen = (t.first_olinfo >> TXD_PAYLEN_SHIFT) as usize;
        let ctx = t.ctx[((t.first_olinfo >> TXD_IDX_SHIFT) & 1) as usize];
        let maclen = ((ctx.vlan_macip_lens >> CTX_MACLEN_SHIFT) & 0x7F) as usize;
        let iplen = (ctx.vlan_macip_lens & CTX_IPLEN_MASK) as usize;
        if t.first_cmd & TXD_TSE != 0 {
            self.finish_tso(sh, q, ctx, maclen, iplen, paylen);
            return;
        }
        if paylen != t.frame.len() {
            sh.c.paylen_mismatch.fetch_add(1, Ordering::Relaxed);
        }
        if t.first_olinfo & TXD_POPTS_IXSM != 0 {
            net::insert_ipv4_csum(&mut t.frame, maclen, iplen);
        }
        if t.first_olinfo & TXD_POPTS_TXSM != 0 {
            let tcp = ctx.type_tucmd & TUCMD_L4T_MASK == TUCMD_L4T_TCP;
            net::insert_l4_csum(&mut t.frame, maclen + iplen, tcp);
        }
        if t.first_cmd & TXD_VLE != 0 {
            let tpid = (sh.r(VET) & 0xFFFF) as u16;
            net::insert_vlan(
                &mut t.frame,
                tpid,
                (ctx.vlan_macip_lens >> CTX_VLAN_SHIFT) as u16,
            );
        }
        if sh.r(TCTL) & TCTL_PSP != 0 && t.frame.len() < 60 {
            t.frame.resize(60, 0);
        }
        let frame = std::mem::take(&mut t.frame);
        self.wire(sh, &frame);
        self.tx[q].frame = frame;
    }

    /// TCP segmentation (TSE), as the 82576 does it (datasheet 7.2.4, "TCP
    /// segmentation"; QEMU's igb models the same): the packet's first
    /// MACLEN + IPLEN + L4LEN bytes are the header every segment repeats,
    /// the rest is cut in MSS pieces. Per segment: IPv4 total length for
    /// its size, the IP ID advanced by one per segment, the TCP sequence
    /// number by the bytes before it, FIN and PSH kept on the last only;
    /// the IPv4 checksum computed (IXSM), and the TCP one from the field's
    /// seed — the pseudo-header sum without the length, which the part adds
    /// per segment — over the segment's TCP header and payload.
    fn finish_tso(
        &mut self,
        sh: &Shared,
        q: usize,
        ctx: Ctx,
        maclen: usize,
        iplen: usize,
        paylen: usize,
    ) {
        let t = &mut self.tx[q];
        let frame = std::mem::take(&mut t.frame);
        let l4len = ((ctx.mss_l4len >> CTX_L4LEN_SHIFT) & 0xFF) as usize;
        let mss = (ctx.mss_l4len >> CTX_MSS_SHIFT) as usize;
        let hdr = maclen + iplen + l4len;
        let ok = mss > 0
            && iplen >= 20
            && l4len >= 20
            && ctx.type_tucmd & TUCMD_L4T_MASK == TUCMD_L4T_TCP
            && ctx.type_tucmd & TUCMD_IPV4 != 0
            && frame.len() > hdr;
        if !ok {
            sh.c.tso_bad.fetch_add(1, Ordering::Relaxed);
            self.stat(TSCTFC, 1);
            sh.event(
                Some(q as u16),
                "tso-bad-context",
                format!(
                    "tx queue {q}: TSE packet of {} bytes with MSS {mss}, headers {maclen}+{iplen}+{l4len}, TUCMD {:#x}: dropped",
                    frame.len(),
                    ctx.type_tucmd
                ),
            );
            self.tx[q].frame = frame;
            return;
        }
        if paylen != frame.len() - hdr {
            sh.c.paylen_mismatch.fetch_add(1, Ordering::Relaxed);
        }
        let (ip, th) = (maclen, maclen + iplen);
        let id0 = u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]);
        let seq0 = u32::from_be_bytes([frame[th + 4], frame[th + 5], frame[th + 6], frame[th + 7]]);
        let flags = frame[th + 13];
        let payload = &frame[hdr..];
        let nseg = payload.len().div_ceil(mss);
        let first_olinfo = self.tx[q].first_olinfo;
        let vle = self.tx[q].first_cmd & TXD_VLE != 0;
        let mut seg = Vec::with_capacity(hdr + mss + 4);
        for (i, chunk) in payload.chunks(mss).enumerate() {
            seg.clear();
            seg.extend_from_slice(&frame[..hdr]);
            seg.extend_from_slice(chunk);
            let tot = (iplen + l4len + chunk.len()) as u16;
            seg[ip + 2..ip + 4].copy_from_slice(&tot.to_be_bytes());
            seg[ip + 4..ip + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            let seq = seq0.wrapping_add((i * mss) as u32);
            seg[th + 4..th + 8].copy_from_slice(&seq.to_be_bytes());
            if i + 1 < nseg {
                // FIN 0x01, PSH 0x08: the last segment's only.
                seg[th + 13] = flags & !0x09;
            }
            if first_olinfo & TXD_POPTS_IXSM != 0 {
                net::insert_ipv4_csum(&mut seg, maclen, iplen);
            }
            // The seed plus this segment's TCP length, then the segment.
            let l4 = (l4len + chunk.len()) as u32;
            let c = !net::fold(net::sum16(&seg[th..], l4));
            seg[th + 16..th + 18].copy_from_slice(&c.to_be_bytes());
            if vle {
                let tpid = (sh.r(VET) & 0xFFFF) as u16;
                net::insert_vlan(
                    &mut seg,
                    tpid,
                    (ctx.vlan_macip_lens >> CTX_VLAN_SHIFT) as u16,
                );
            }
            self.wire(sh, &seg);
            sh.c.tso_segments.fetch_add(1, Ordering::Relaxed);
        }
        self.stat(TSCTC, 1);
        self.tx[q].frame = frame;
    }

    fn wire(&mut self, sh: &Shared, f: &[u8]) {
        let with_fcs = f.len() as u64 + 4;
        let bits = (with_fcs.max(64) + WIRE_OVERHEAD) * 8;
        if let Some(ns) = (bits * 1_000_000_000).checked_div(sh.cfg.speed_bps) {
            let start = self.wire_free.max(sh.now_ns());
            self.wire_free = start + ns;
            self.lc[LC_WIRE_NS] += ns;
        }
        self.stat(GPTC, 1);
        self.stat(TPT, 1);
        self.stat(GOTCL, with_fcs);
        self.stat(TOTL, with_fcs);
        if f[0] & 1 != 0 {
            if f[..6] == [0xFF; 6] {
                self.stat(BPTC, 1);
            } else {
                self.stat(MPTC, 1);
            }
        }
        self.lc[LC_FRAMES] += 1;
        self.lc[LC_BYTES] += f.len() as u64;
        match &sh.cfg.sink {
            Sink::Count => {}
            Sink::Pcap(_) => {
                if let Some(p) = &mut self.pcap {
                    let ts = self.wall0 + sh.now_ns();
                    if let Err(e) = p.write(ts, f) {
                        *sh.sink_error.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(e.to_string());
                        self.pcap = None;
                    }
                }
            }
            Sink::Loopback => {
                push_rx(sh, f.to_vec());
            }
            Sink::Capture => sh
                .captured
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(f.to_vec()),
        }
    }
}

enum Step {
    Idle,
    Work,
    /// Blocked by the modeled wire for this many ns.
    Paced(u64),
}
