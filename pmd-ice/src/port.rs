//! The ice port: [`Port`] over an E810 PF, generic over the register space.

use crate::hw::{read_stat40, IceError, IceHw, ProbeOptions, Stat40};
use crate::regs::*;
use crate::rx::IceRxQueue;
use crate::tx::{IceTxQueue, TxShared};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use wirespeed::eal::dma::DmaRegion;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{
    EthdevError, LinkStatus, MacAddr, Port, PortConfig, PortEvent, PortInfo, PortStats, QueueSlots,
    QueueStats, RxQueue, TxQueue,
};
use wirespeed::mbuf::ol;

/// Most queues one port hands out (the model's PF has 64; a real PF often more).
pub const MAX_QUEUES: u16 = 256;

#[derive(Default)]
struct HwStats {
    port_gotc: Stat40,
    port_uptc: Stat40,
    vsi_gotc: Stat40,
    vsi_uptc: Stat40,
    vsi_tepc: u64,
    vsi_tepc_prev: Option<u32>,
}

/// An E810 port.
pub struct IcePort<R: RegisterSpace> {
    name: String,
    regs: Arc<R>,
    hw: Arc<Mutex<IceHw<R>>>,
    conf: Option<PortConfig>,
    tx_stats: Vec<Arc<QueueStats>>,
    rx_stats: Vec<Arc<QueueStats>>,
    txs: QueueSlots,
    rxs: QueueSlots,
    tx_shared: Vec<Option<Arc<TxShared>>>,
    started: bool,
    hw_stats: Mutex<HwStats>,
    mdd_seen: std::sync::atomic::AtomicU64,
}

fn dev_err(port: &str, e: IceError) -> EthdevError {
    EthdevError::Device {
        port: port.to_string(),
        why: e.to_string(),
    }
}

impl<R: RegisterSpace> IcePort<R> {
    /// Probes the PF behind `regs` (PCI ids from config space) and brings it
    /// up to the point where queues can be configured.
    pub fn probe(
        name: &str,
        regs: Arc<R>,
        vendor: u16,
        device: u16,
        opts: &ProbeOptions,
    ) -> Result<IcePort<R>, EthdevError> {
        let hw = IceHw::probe(regs.clone(), vendor, device, opts).map_err(|e| dev_err(name, e))?;
        tracing::info!(
            port = name,
            device = hw.device_name,
            fw = ?hw.version.fw,
            api = ?hw.version.api,
            mac = %hw.mac,
            link = ?hw.link,
            "ice: PF up (safe mode: no DDP package, no checksum offload)"
        );
        let p = IcePort {
            name: name.to_string(),
            regs,
            hw: Arc::new(Mutex::new(hw)),
            conf: None,
            tx_stats: Vec::new(),
            rx_stats: Vec::new(),
            txs: QueueSlots::new(0),
            rxs: QueueSlots::new(0),
            tx_shared: Vec::new(),
            started: false,
            hw_stats: Mutex::new(HwStats::default()),
            mdd_seen: std::sync::atomic::AtomicU64::new(0),
        };
        p.update_hw_stats();
        Ok(p)
    }

    /// Waits (bounded) for the link to come up; the error names the
    /// cable/module state the firmware reports (`get_link_status`).
    pub fn wait_link_up(&self, timeout: std::time::Duration) -> Result<LinkStatus, EthdevError> {
        let r = self.hw().wait_link_up(timeout);
        r.map_err(|e| dev_err(&self.name, e))
    }

    fn hw(&self) -> MutexGuard<'_, IceHw<R>> {
        self.hw.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Firmware/API versions, capabilities and the scheduler parent TEID.
    pub fn firmware_info(&self) -> (crate::hw::FwVersion, crate::hw::Caps, u32, Option<u16>) {
        let h = self.hw();
        (h.version, h.caps, h.qparent_teid, h.vsi)
    }

    /// Runs a closure with the PF control plane locked (admin commands).
    pub fn with_hw<T>(&self, f: impl FnOnce(&mut IceHw<R>) -> T) -> T {
        f(&mut self.hw())
    }

    fn conf(&self) -> Result<&PortConfig, EthdevError> {
        self.conf.as_ref().ok_or_else(|| EthdevError::Device {
            port: self.name.clone(),
            why: "not configured: call configure() before asking for queues".into(),
        })
    }

    /// Sets up TX queue `q` and returns the concrete queue type.
    pub fn ice_tx_queue(&mut self, q: u16) -> Result<IceTxQueue<R>, EthdevError> {
        let n = self.conf()?.tx_ring_size;
        let vlan = self.conf()?.tx_offloads & ol::TX_VLAN != 0;
        self.txs.take(&self.name, "tx queue", q)?;
        let ring = DmaRegion::alloc(n as usize * TX_DESC_SIZE)
            .map_err(|e| dev_err(&self.name, IceError::Dma(e)))?;
        debug_assert_eq!(ring.iova() % RING_BASE_ALIGN, 0);
        let mdd = Arc::new(AtomicU32::new(0));
        let shared = Arc::new(TxShared {
            q,
            ring_iova: ring.iova(),
            qlen: n,
            enabled: AtomicBool::new(false),
            epoch: AtomicU32::new(0),
            mdd: mdd.clone(),
            teid: AtomicU32::new(0),
        });
        let abs = {
            let mut hw = self.hw();
            if hw.mdd_flags.len() <= q as usize {
                hw.mdd_flags.resize(q as usize + 1, None);
            }
            hw.mdd_flags[q as usize] = Some(mdd);
            if self.started {
                let teid = hw
                    .add_txq(q, ring.iova(), n)
                    .map_err(|e| dev_err(&self.name, e))?;
                shared.teid.store(teid, Ordering::Relaxed);
                shared.enabled.store(true, Ordering::Release);
            }
            q // queue registers take the PF-relative number
        };
        self.tx_shared[q as usize] = Some(shared.clone());
        Ok(IceTxQueue::new(
            q,
            abs,
            self.regs.clone(),
            ring,
            n,
            self.tx_stats[q as usize].clone(),
            shared,
            self.hw.clone(),
            vlan,
        ))
    }

    /// Sets up RX queue `q` and returns the concrete queue type.
    pub fn ice_rx_queue(&mut self, q: u16) -> Result<IceRxQueue<R>, EthdevError> {
        let n = self.conf()?.rx_ring_size;
        self.rxs.take(&self.name, "rx queue", q)?;
        let ring = DmaRegion::alloc(n as usize * RX_DESC_SIZE)
            .map_err(|e| dev_err(&self.name, IceError::Dma(e)))?;
        let abs = q; // PF-relative, as Linux `pf_q` / DPDK `reg_idx`
        Ok(IceRxQueue::new(
            q,
            abs,
            self.regs.clone(),
            ring,
            n,
            self.rx_stats[q as usize].clone(),
        ))
    }

    fn update_hw_stats(&self) {
        let (vsi, lport) = {
            let h = self.hw();
            (h.vsi, h.lport as u32)
        };
        let r = &*self.regs;
        let mut s = self.hw_stats.lock().unwrap_or_else(|e| e.into_inner());
        // Per-port counters by the logical port (`ice_update_pf_stats`).
        s.port_gotc.update(read_stat40(r, glprt_gotcl(lport)));
        s.port_uptc.update(read_stat40(r, glprt_uptcl(lport)));
        if let Some(v) = vsi {
            let v = v as u32;
            s.vsi_gotc.update(read_stat40(r, glv_gotcl(v)));
            s.vsi_uptc.update(read_stat40(r, glv_uptcl(v)));
            let t = r.read32(glv_tepc(v));
            if let Some(p) = s.vsi_tepc_prev {
                s.vsi_tepc += t.wrapping_sub(p) as u64;
            }
            s.vsi_tepc_prev = Some(t);
        }
    }

    /// Disables every enabled TX queue (dis_txqs) and tells their owners.
    fn disable_tx_queues(&mut self) -> Result<(), EthdevError> {
        let mut first_err = None;
        for s in self.tx_shared.iter().flatten() {
            if s.enabled.swap(false, Ordering::AcqRel) {
                s.epoch.fetch_add(1, Ordering::AcqRel);
                if let Err(e) = self
                    .hw
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .dis_txq(s.q)
                {
                    first_err.get_or_insert(dev_err(&self.name, e));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl<R: RegisterSpace> Port for IcePort<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        let h = self.hw();
        PortInfo {
            driver: "ice",
            max_tx_queues: h.caps.num_txq.min(MAX_QUEUES),
            max_rx_queues: h.caps.num_rxq.min(MAX_QUEUES),
            tx_ring_min: MIN_RING_DESC,
            tx_ring_max: MAX_RING_DESC,
            tx_ring_align: ALIGN_RING_DESC,
            rx_ring_min: MIN_RING_DESC,
            rx_ring_max: MAX_RING_DESC,
            rx_ring_align: ALIGN_RING_DESC,
            // Safe mode (no DDP package): no checksum offload, no TSO; the
            // stack checksums in software. VLAN insertion (L2TAG1) works.
            tx_offload_capa: ol::TX_VLAN,
            max_frame: MAX_FRAME_SIZE as u32,
            line_rate_bps: h.link.speed_mbps as u64 * 1_000_000,
        }
    }

    fn configure(&mut self, conf: &PortConfig) -> Result<(), EthdevError> {
        if self.started {
            return Err(EthdevError::Device {
                port: self.name.clone(),
                why: "configure while started: call stop() first".into(),
            });
        }
        conf.validate(&self.name, &self.info())?;
        self.disable_tx_queues()?;
        let nq = conf.nb_tx_queues.max(conf.nb_rx_queues);
        self.hw()
            .setup_vsi(nq)
            .map_err(|e| dev_err(&self.name, e))?;
        self.update_hw_stats();
        self.tx_stats = (0..conf.nb_tx_queues).map(|_| Arc::default()).collect();
        self.rx_stats = (0..conf.nb_rx_queues).map(|_| Arc::default()).collect();
        self.txs = QueueSlots::new(conf.nb_tx_queues);
        self.rxs = QueueSlots::new(conf.nb_rx_queues);
        self.tx_shared = vec![None; conf.nb_tx_queues as usize];
        self.conf = Some(conf.clone());
        Ok(())
    }

    fn tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(self.ice_tx_queue(q)?))
    }

    fn rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(self.ice_rx_queue(q)?))
    }

    /// Enables every handed-out TX queue (add_txqs with its TLAN context).
    fn start(&mut self) -> Result<(), EthdevError> {
        self.conf()?;
        for s in self.tx_shared.iter().flatten() {
            if !s.enabled.load(Ordering::Acquire) {
                let teid = self
                    .hw
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add_txq(s.q, s.ring_iova, s.qlen)
                    .map_err(|e| dev_err(&self.name, e))?;
                s.teid.store(teid, Ordering::Relaxed);
                s.enabled.store(true, Ordering::Release);
            }
        }
        // Link set-up as DPDK `ice_dev_set_link_up` / `ice_phy_conf_link`:
        // PHY capabilities with media, then set_phy_cfg with ENA_LINK and
        // AUTO_LINK_UPDT. The link may come up later (`wait_link_up`).
        let link = {
            let mut hw = self.hw();
            hw.setup_link().map_err(|e| dev_err(&self.name, e))?;
            let l = hw
                .get_link_status(true)
                .map_err(|e| dev_err(&self.name, e))?;
            hw.link = l;
            l
        };
        if !link.up {
            tracing::warn!(port = %self.name, "ice: link is down after start; wait_link_up reports why");
        }
        self.started = true;
        Ok(())
    }

    /// Disables the TX queues (dis_txqs, 0x0C31); their owners drop what was
    /// in flight on their next call.
    fn stop(&mut self) -> Result<(), EthdevError> {
        self.started = false;
        self.disable_tx_queues()
    }

    fn link(&self) -> LinkStatus {
        self.hw().link
    }

    fn mac(&self) -> MacAddr {
        self.hw().mac
    }

    fn stats(&self) -> PortStats {
        PortStats::from_queues(&self.tx_stats, &self.rx_stats)
    }

    /// Queue counters plus the device's GLPRT_* / GLV_* counters, 40-bit
    /// registers accumulated into 64 bits (`ice_stat_update40`).
    fn xstats(&self) -> Vec<(String, u64)> {
        self.update_hw_stats();
        let mut v = self.stats().xstats();
        let h = self.hw_stats.lock().unwrap_or_else(|e| e.into_inner());
        v.push(("port_tx_good_bytes".into(), h.port_gotc.total));
        v.push(("port_tx_unicast_packets".into(), h.port_uptc.total));
        v.push(("vsi_tx_good_bytes".into(), h.vsi_gotc.total));
        v.push(("vsi_tx_unicast_packets".into(), h.vsi_uptc.total));
        v.push(("vsi_tx_errors".into(), h.vsi_tepc));
        v.push(("mdd_events".into(), self.mdd_seen.load(Ordering::Relaxed)));
        v
    }

    /// MDD events latched by the device since the last call.
    fn events(&mut self) -> Vec<PortEvent> {
        let mut hw = self.hw();
        hw.drain_mdd();
        hw.check_adminq();
        let ev = std::mem::take(&mut hw.events);
        drop(hw);
        self.mdd_seen.fetch_add(
            ev.iter().filter(|e| e.kind == "mdd").count() as u64,
            Ordering::Relaxed,
        );
        ev
    }
}

impl<R: RegisterSpace> Drop for IcePort<R> {
    fn drop(&mut self) {
        let _ = self.disable_tx_queues();
        self.hw().shutdown();
    }
}
