//! The igb port: what igb adds to the ethdev framework ([`IgbDriver`]: the
//! register-level start/stop, queue set-up, link and device counters), and
//! [`IgbPort`], the framework's [`EthDev`] around it — which validates each
//! configuration, hands each queue out once, owns the per-queue counters
//! and keeps the link state, as for every other port.
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
    Driver, EthDev, EthdevError, MacAddr, Port, PortConfig, PortEvent, PortInfo, PortStats,
    QueueSetup, RssConf, RssHashTypes, RxQueue, TxQueue,
};

/// What differs for igb under the framework (DPDK's `eth_igb_ops`).
pub struct IgbDriver<R: RegisterSpace> {
    hw: Arc<IgbHw<R>>,
    mac: MacAddr,
    promiscuous: bool,
    /// Queues handed out (their enable bits are checked at start).
    tx_up: Vec<u16>,
    rx_up: Vec<u16>,
    link_wait: Duration,
    line_rate_bps: u64,
    model: Option<Arc<IgbModel>>,
    /// Keeps whatever owns the register window alive (the VFIO device).
    _owner: Option<Arc<dyn Send + Sync>>,
}

/// One igb port: the framework's bookkeeping around [`IgbDriver`].
pub struct IgbPort<R: RegisterSpace> {
    dev: EthDev<IgbDriver<R>>,
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
        let driver = IgbDriver {
            hw,
            mac,
            promiscuous: true,
            tx_up: Vec::new(),
            rx_up: Vec::new(),
            link_wait,
            line_rate_bps,
            model,
            _owner: owner,
        };
        Ok(IgbPort {
            dev: EthDev::with_driver(name, driver),
        })
    }

    /// The control-path view (registers, PHY, counters).
    pub fn hw(&self) -> &Arc<IgbHw<R>> {
        &self.dev.driver().hw
    }

    /// The device model behind this port, if it is one.
    pub fn model(&self) -> Option<&Arc<IgbModel>> {
        self.dev.driver().model.as_ref()
    }

    /// The configuration in force (with the RSS set-up last applied).
    pub fn config(&self) -> Option<&PortConfig> {
        self.dev.config()
    }

    /// Plays the part of `rte_eth_dev_rss_reta_update` +
    /// `rte_eth_dev_rss_hash_update` (Linux ethtool `set_rxfh`, which
    /// igb answers with `igb_write_rss_indir_tbl` / `igb_write_rss_key`):
    /// replaces the key, RETA and hash types of a configured port, started
    /// or not; frames received afterwards are steered by the new table.
    /// Checked as `configure` checks it; the configuration keeps the new one.
    pub fn update_rss(&mut self, rss: RssConf) -> Result<(), EthdevError> {
        let name = self.dev.name().to_string();
        let Some(conf) = self.dev.config().cloned() else {
            return Err(dev_err(&name, "not configured: call configure() first"));
        };
        let info = self.dev.info();
        rss.validate(
            &name,
            info.driver,
            info.reta_size,
            info.rss_hash_types,
            conf.nb_rx_queues,
        )?;
        self.dev.driver().hw.setup_mrqc(Some(&rss));
        self.dev.set_rss(rss);
        Ok(())
    }

    /// A TX queue with its concrete type (tests, benchmarks).
    pub fn igb_tx_queue(&mut self, q: u16) -> Result<IgbTxQueue<R>, EthdevError> {
        self.dev.setup_tx_with(q, |d, s| d.tx(s))
    }

    /// An RX queue with its concrete type (tests, benchmarks).
    pub fn igb_rx_queue(&mut self, q: u16) -> Result<IgbRxQueue<R>, EthdevError> {
        self.dev.setup_rx_with(q, |d, s| d.rx(s))
    }
}

impl<R: RegisterSpace> IgbDriver<R> {
    /// `igb_setup_tx_resources` + `igb_configure_tx_ring` for one queue.
    fn tx(&mut self, s: QueueSetup<'_>) -> Result<IgbTxQueue<R>, EthdevError> {
        let mut t = IgbTxQueue::new(self.hw.regs.clone(), s.port, s.queue, s.ring_size, s.stats)
            .map_err(|e| dev_err(s.port, e))?;
        if s.started {
            self.wait_enabled(s.port, "tx queue", txdctl(u32::from(s.queue)), s.queue)?;
        }
        self.tx_up.push(s.queue);
        t.set_rs_thresh(crate::tx::DEFAULT_RS_THRESH);
        t.set_offloads(s.conf.tx_offloads);
        Ok(t)
    }

    /// `igb_setup_rx_resources` + `igb_configure_rx_ring` for one queue.
    fn rx(&mut self, s: QueueSetup<'_>) -> Result<IgbRxQueue<R>, EthdevError> {
        let r = IgbRxQueue::new(self.hw.regs.clone(), s.queue, s.ring_size, s.stats)
            .map_err(|e| dev_err(s.port, e))?;
        if s.started {
            self.hw.wr(RCTL, self.rctl());
            self.wait_enabled(s.port, "rx queue", rxdctl(u32::from(s.queue)), s.queue)?;
        }
        self.rx_up.push(s.queue);
        Ok(r)
    }

    fn wait_enabled(
        &self,
        port: &str,
        what: &'static str,
        reg: u32,
        q: u16,
    ) -> Result<(), EthdevError> {
        if wait_for(
            Duration::from_millis(100),
            Duration::from_micros(100),
            || self.hw.rd(reg) & XDCTL_ENABLE != 0,
        ) {
            Ok(())
        } else {
            Err(EthdevError::Queue {
                port: port.to_string(),
                what,
                queue: q,
                why: "did not report enabled within 100 ms after TCTL/RCTL.EN".into(),
            })
        }
    }

    fn rctl(&self) -> u32 {
        let mut r = RCTL_EN | RCTL_BAM | RCTL_SECRC;
        if self.promiscuous {
            r |= RCTL_UPE | RCTL_MPE;
        }
        r
    }
}

impl<R: RegisterSpace> Driver for IgbDriver<R> {
    const LINK_WHILE_STOPPED: bool = true;

    fn info(&self) -> PortInfo {
        let qn = self.hw.part.family.queues();
        PortInfo {
            driver: if self.model.is_some() {
                "igb-model"
            } else {
                "igb"
            },
            max_tx_queues: qn,
            // Without RSS (PortConfig::rss = None) every frame lands in
            // queue 0; with it the RETA spreads them.
            max_rx_queues: qn,
            tx_ring_min: 32,
            tx_ring_max: 4096,
            tx_ring_align: 8,
            rx_ring_min: 32,
            rx_ring_max: 4096,
            rx_ring_align: 8,
            tx_offload_capa: TX_OFFLOAD_CAPA,
            max_frame: (MAX_FRAME - 4) as u32,
            line_rate_bps: self.line_rate_bps,
            reta_size: RETA_SIZE,
            rss_hash_types: RssHashTypes::ALL,
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    /// After the framework's validation: VLAN mode, RSS (MRQC, RETA,
    /// RSSRK — `igb_setup_mrqc`), and forget the queues
    /// of the previous configuration.
    fn configure(&mut self, _port: &str, conf: &PortConfig) -> Result<(), EthdevError> {
        // VLAN insertion needs VLAN mode on, as Linux igb_vlan_mode sets it.
        let ctrl = self.hw.rd(CTRL);
        if conf.tx_offloads & wirespeed::mbuf::ol::TX_VLAN != 0 {
            self.hw.wr(CTRL, ctrl | CTRL_VME);
        } else {
            self.hw.wr(CTRL, ctrl & !CTRL_VME);
        }
        self.promiscuous = conf.promiscuous;
        self.hw.setup_mrqc(conf.rss.as_ref());
        self.tx_up.clear();
        self.rx_up.clear();
        Ok(())
    }

    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(self.tx(q)?))
    }

    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(self.rx(q)?))
    }

    /// TCTL.EN / RCTL.EN, then checks every handed-out queue's enable latched,
    /// and waits (bounded) for the link.
    fn start(&mut self, port: &str) -> Result<(), EthdevError> {
        let tctl = self.hw.rd(TCTL);
        self.hw.wr(TCTL, tctl | TCTL_EN);
        if !self.rx_up.is_empty() {
            self.hw.wr(RCTL, self.rctl());
        }
        for q in self.tx_up.clone() {
            self.wait_enabled(port, "tx queue", txdctl(u32::from(q)), q)?;
        }
        for q in self.rx_up.clone() {
            self.wait_enabled(port, "rx queue", rxdctl(u32::from(q)), q)?;
        }
        if !wait_for(self.link_wait, Duration::from_millis(1), || {
            self.hw.link().up
        }) {
            tracing::warn!(
                "{port}: link still down after {} ms (frames queue until it comes up)",
                self.link_wait.as_millis()
            );
        }
        Ok(())
    }

    fn stop(&mut self, _port: &str) -> Result<(), EthdevError> {
        self.hw.wr(RCTL, 0);
        let tctl = self.hw.rd(TCTL);
        self.hw.wr(TCTL, tctl & !TCTL_EN);
        Ok(())
    }

    /// STATUS.LU (`E1000_STATUS_LU`, bit 1 in Linux `e1000_defines.h`).
    fn carrier(&self) -> bool {
        self.hw.link().up
    }

    /// From STATUS.SPEED; on the model, the modeled line rate, so an
    /// unlimited model reports 0 (no line rate) rather than the 1000 Mbit/s
    /// its STATUS register shows.
    fn speed_mbps(&self) -> u32 {
        if self.model.is_some() {
            (self.line_rate_bps / 1_000_000) as u32
        } else {
            self.hw.link().speed_mbps
        }
    }

    fn full_duplex(&self) -> bool {
        self.hw.link().full_duplex
    }

    /// RX drops include the frames the NIC missed (MPC).
    fn stats(&self, s: &mut PortStats) {
        let c = self.hw.update_counters();
        if let Some(i) = STATS32.iter().position(|(r, _)| *r == MPC) {
            s.rx.drops += c.c32[i];
        }
    }

    fn xstats(&self, _stats: &PortStats, v: &mut Vec<(String, u64)>) {
        v.extend(self.hw.xstats());
        if let Some(m) = &self.model {
            v.extend(m.xstats());
        }
    }

    fn events(&mut self) -> Vec<PortEvent> {
        match &self.model {
            Some(m) => m.take_events(),
            None => Vec::new(),
        }
    }
}

// The framework's [`Port`], as [`EthDev`] implements it.
wirespeed::port_via_ethdev!(IgbPort<R: RegisterSpace>, dev);

impl<R: RegisterSpace> Drop for IgbDriver<R> {
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
