//! The igb port: configure, hand out queues, start/stop, link, statistics.
//! Generic over the register window: `IgbPort<Mmio>` drives a NIC through
//! VFIO, `IgbPort<IgbModel>` drives the device model; the code is the same.

use crate::hw::{wait_for, IgbHw, PartId};
use crate::model::IgbModel;
use crate::regs::*;
use crate::rx::IgbRxQueue;
use crate::tx::{IgbTxQueue, MAX_FRAME, TX_OFFLOAD_CAPA};
use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{
    EthdevError, LinkStatus, MacAddr, Port, PortConfig, PortEvent, PortInfo, PortStats, QueueSlots,
    QueueStats, RxQueue, TxQueue,
};

/// One igb port.
pub struct IgbPort<R: RegisterSpace> {
    name: String,
    hw: Arc<IgbHw<R>>,
    mac: MacAddr,
    conf: PortConfig,
    txs: QueueSlots,
    rxs: QueueSlots,
    tx_stats: Vec<Arc<QueueStats>>,
    rx_stats: Vec<Arc<QueueStats>>,
    /// Queues handed out (their enable bits are checked at start).
    tx_up: Vec<u16>,
    rx_up: Vec<u16>,
    started: bool,
    link_wait: Duration,
    line_rate_bps: u64,
    model: Option<Arc<IgbModel>>,
    /// Keeps whatever owns the register window alive (the VFIO device).
    _owner: Option<Arc<dyn Send + Sync>>,
}

fn dev_err(port: &str, why: impl std::fmt::Display) -> EthdevError {
    EthdevError::Device {
        port: port.to_string(),
        why: why.to_string(),
    }
}

impl<R: RegisterSpace> IgbPort<R> {
    /// Resets and initialises the device behind `regs` and starts link
    /// autonegotiation. `mac_fallback` is used when RAL0/RAH0 hold no valid
    /// address.
    pub fn init(
        name: &str,
        regs: Arc<R>,
        part: PartId,
        link_wait: Duration,
        model: Option<Arc<IgbModel>>,
        owner: Option<Arc<dyn Send + Sync>>,
    ) -> Result<IgbPort<R>, EthdevError> {
        let hw = Arc::new(IgbHw::new(regs, part));
        hw.reset().map_err(|e| dev_err(name, e))?;
        let mac = match hw.mac() {
            Some(m) => m,
            None => {
                let m = MacAddr::local(std::process::id());
                tracing::warn!("{name}: no valid MAC in RAL0/RAH0; using {m}");
                hw.set_mac(m);
                m
            }
        };
        hw.start_link().map_err(|e| dev_err(name, e))?;
        let tcl = TCTL_PSP | TCTL_RTLC | (15 << TCTL_CT_SHIFT) | (63 << TCTL_COLD_SHIFT);
        hw.wr(TCTL, tcl);
        tracing::info!(
            "{name}: igb {} ({} queues), MAC {mac}",
            part.name,
            part.family.queues()
        );
        let line_rate_bps = model
            .as_ref()
            .map(|m| m.line_rate_bps())
            .unwrap_or(1_000_000_000);
        Ok(IgbPort {
            name: name.to_string(),
            hw,
            mac,
            conf: PortConfig::default(),
            txs: QueueSlots::new(0),
            rxs: QueueSlots::new(0),
            tx_stats: Vec::new(),
            rx_stats: Vec::new(),
            tx_up: Vec::new(),
            rx_up: Vec::new(),
            started: false,
            link_wait,
            line_rate_bps,
            model,
            _owner: owner,
        })
    }

    /// The control-path view (registers, PHY, counters).
    pub fn hw(&self) -> &Arc<IgbHw<R>> {
        &self.hw
    }

    /// The device model behind this port, if it is one.
    pub fn model(&self) -> Option<&Arc<IgbModel>> {
        self.model.as_ref()
    }

    /// A TX queue with its concrete type (tests, benchmarks).
    pub fn igb_tx_queue(&mut self, q: u16) -> Result<IgbTxQueue<R>, EthdevError> {
        self.txs.take(&self.name, "tx queue", q)?;
        let mut t = IgbTxQueue::new(
            self.hw.regs.clone(),
            &self.name,
            q,
            self.conf.tx_ring_size,
            self.tx_stats[q as usize].clone(),
        )
        .map_err(|e| dev_err(&self.name, e))?;
        if self.started {
            self.wait_enabled("tx queue", txdctl(u32::from(q)), q)?;
        }
        self.tx_up.push(q);
        t.set_rs_thresh(crate::tx::DEFAULT_RS_THRESH);
        Ok(t)
    }

    /// An RX queue with its concrete type (tests, benchmarks).
    pub fn igb_rx_queue(&mut self, q: u16) -> Result<IgbRxQueue<R>, EthdevError> {
        self.rxs.take(&self.name, "rx queue", q)?;
        let r = IgbRxQueue::new(
            self.hw.regs.clone(),
            q,
            self.conf.rx_ring_size,
            self.rx_stats[q as usize].clone(),
        )
        .map_err(|e| dev_err(&self.name, e))?;
        if self.started {
            self.hw.wr(RCTL, self.rctl());
            self.wait_enabled("rx queue", rxdctl(u32::from(q)), q)?;
        }
        self.rx_up.push(q);
        Ok(r)
    }

    fn wait_enabled(&self, what: &'static str, reg: u32, q: u16) -> Result<(), EthdevError> {
        if wait_for(
            Duration::from_millis(100),
            Duration::from_micros(100),
            || self.hw.rd(reg) & XDCTL_ENABLE != 0,
        ) {
            Ok(())
        } else {
            Err(EthdevError::Queue {
                port: self.name.clone(),
                what,
                queue: q,
                why: "did not report enabled within 100 ms after TCTL/RCTL.EN".into(),
            })
        }
    }

    fn rctl(&self) -> u32 {
        let mut r = RCTL_EN | RCTL_BAM | RCTL_SECRC;
        if self.conf.promiscuous {
            r |= RCTL_UPE | RCTL_MPE;
        }
        r
    }
}

impl<R: RegisterSpace> Port for IgbPort<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        let qn = self.hw.part.family.queues();
        PortInfo {
            driver: if self.model.is_some() {
                "igb-model"
            } else {
                "igb"
            },
            max_tx_queues: qn,
            // Without RSS every frame lands in queue 0.
            max_rx_queues: 1,
            tx_ring_min: 32,
            tx_ring_max: 4096,
            tx_ring_align: 8,
            rx_ring_min: 32,
            rx_ring_max: 4096,
            rx_ring_align: 8,
            tx_offload_capa: TX_OFFLOAD_CAPA,
            max_frame: (MAX_FRAME - 4) as u32,
            line_rate_bps: self.line_rate_bps,
        }
    }

    fn configure(&mut self, conf: &PortConfig) -> Result<(), EthdevError> {
        if self.started {
            return Err(EthdevError::Config {
                port: self.name.clone(),
                key: "configure".into(),
                why: "the port is started; stop it first".into(),
            });
        }
        conf.validate(&self.name, &self.info())?;
        // VLAN insertion needs VLAN mode on, as Linux igb_vlan_mode sets it.
        let ctrl = self.hw.rd(CTRL);
        if conf.tx_offloads & wirespeed::mbuf::ol::TX_VLAN != 0 {
            self.hw.wr(CTRL, ctrl | CTRL_VME);
        } else {
            self.hw.wr(CTRL, ctrl & !CTRL_VME);
        }
        self.conf = conf.clone();
        self.txs = QueueSlots::new(conf.nb_tx_queues);
        self.rxs = QueueSlots::new(conf.nb_rx_queues);
        self.tx_stats = (0..conf.nb_tx_queues).map(|_| Arc::default()).collect();
        self.rx_stats = (0..conf.nb_rx_queues).map(|_| Arc::default()).collect();
        self.tx_up.clear();
        self.rx_up.clear();
        Ok(())
    }

    fn tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(self.igb_tx_queue(q)?))
    }

    fn rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(self.igb_rx_queue(q)?))
    }

    /// TCTL.EN / RCTL.EN, then checks every handed-out queue's enable latched,
    /// and waits (bounded) for the link.
    fn start(&mut self) -> Result<(), EthdevError> {
        let tctl = self.hw.rd(TCTL);
        self.hw.wr(TCTL, tctl | TCTL_EN);
        if !self.rx_up.is_empty() {
            self.hw.wr(RCTL, self.rctl());
        }
        for q in self.tx_up.clone() {
            self.wait_enabled("tx queue", txdctl(u32::from(q)), q)?;
        }
        for q in self.rx_up.clone() {
            self.wait_enabled("rx queue", rxdctl(u32::from(q)), q)?;
        }
        self.started = true;
        if !wait_for(self.link_wait, Duration::from_millis(1), || {
            self.hw.link().up
        }) {
            tracing::warn!(
                "{}: link still down after {} ms (frames queue until it comes up)",
                self.name,
                self.link_wait.as_millis()
            );
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<(), EthdevError> {
        self.hw.wr(RCTL, 0);
        let tctl = self.hw.rd(TCTL);
        self.hw.wr(TCTL, tctl & !TCTL_EN);
        self.started = false;
        Ok(())
    }

    /// Link state from STATUS; on the model, the speed is the modeled line
    /// rate, so an unlimited model reports 0 (no line rate) rather than the
    /// 1000 Mbit/s its STATUS register shows.
    fn link(&self) -> LinkStatus {
        let mut l = self.hw.link();
        if l.up && self.model.is_some() {
            l.speed_mbps = (self.line_rate_bps / 1_000_000) as u32;
        }
        l
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Queue counters; RX drops include the frames the NIC missed (MPC).
    fn stats(&self) -> PortStats {
        let mut s = PortStats::from_queues(&self.tx_stats, &self.rx_stats);
        let c = self.hw.update_counters();
        if let Some(i) = STATS32.iter().position(|(r, _)| *r == MPC) {
            s.rx.drops += c.c32[i];
        }
        s
    }

    fn xstats(&self) -> Vec<(String, u64)> {
        let mut v = PortStats::from_queues(&self.tx_stats, &self.rx_stats).xstats();
        v.extend(self.hw.xstats());
        if let Some(m) = &self.model {
            v.extend(m.xstats());
        }
        v
    }

    fn events(&mut self) -> Vec<PortEvent> {
        match &self.model {
            Some(m) => m.take_events(),
            None => Vec::new(),
        }
    }
}

impl<R: RegisterSpace> Drop for IgbPort<R> {
    fn drop(&mut self) {
        self.hw.shutdown();
    }
}

/// Unused-parameter guard for `link_wait` in specs.
pub(crate) fn link_wait_param(
    spec: &wirespeed::ethdev::DevSpec,
    default_ms: u64,
) -> Result<Duration, EthdevError> {
    let ms = spec.param_u64("link_wait_ms", default_ms)?;
    if ms > 60_000 {
        return Err(EthdevError::BadSpec {
            spec: spec.raw.clone(),
            why: format!("link_wait_ms={ms} is over a minute; use 0..=60000"),
        });
    }
    Ok(Duration::from_millis(ms))
}

/// `Arc<dyn Send + Sync>` from anything that keeps a mapping alive.
pub(crate) fn owner<T: Send + Sync + 'static>(t: Arc<T>) -> Arc<dyn Send + Sync> {
    t
}

#[allow(dead_code)]
fn _assert_send() {
    fn s<T: Send>() {}
    s::<IgbPort<wirespeed::eal::regs::Mmio>>();
}
