//! The ice port: what ice adds to the ethdev framework ([`IceDriver`]: the
//! admin-queue bring-up, VSI and TX-queue enable/disable, link from the
//! firmware, device counters) and [`IcePort`], the framework's [`EthDev`]
//! around it — which validates each configuration, hands each queue out
//! once, owns the per-queue counters and keeps the link state, as for every
//! other port.

use crate::hw::{read_stat40, IceError, IceHw, ProbeOptions, Stat40};
use crate::regs::*;
use crate::rx::IceRxQueue;
use crate::tx::{IceTxQueue, TxShared};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use wirespeed::eal::dma::DmaRegion;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::rss::{DEFAULT_RSS_KEY, RSS_KEY_LEN};
use wirespeed::ethdev::{
    Driver, EthDev, EthdevError, LinkStatus, MacAddr, Port, PortConfig, PortEvent, PortInfo,
    PortStats, QueueSetup, RssConf, RssHashTypes, RxQueue, TxQueue,
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
    vsi_rdpc: u64,
    vsi_rdpc_prev: Option<u32>,
}

/// What differs for ice under the framework (DPDK's `ice_eth_dev_ops`).
pub struct IceDriver<R: RegisterSpace> {
    regs: Arc<R>,
    hw: Arc<Mutex<IceHw<R>>>,
    /// Per TX queue of the configuration: its enable state and ring, shared
    /// with the queue (start/stop enable and disable it through the admin queue).
    tx_shared: Vec<Option<Arc<TxShared>>>,
    hw_stats: Mutex<HwStats>,
    mdd_seen: std::sync::atomic::AtomicU64,
}

/// An E810 port: the framework's bookkeeping around [`IceDriver`].
pub struct IcePort<R: RegisterSpace> {
    dev: EthDev<IceDriver<R>>,
}

fn dev_err(port: &str, e: IceError) -> EthdevError {
    EthdevError::Device {
        port: port.to_string(),
        why: e.to_string(),
    }
}

fn lock<R: RegisterSpace>(hw: &Mutex<IceHw<R>>) -> MutexGuard<'_, IceHw<R>> {
    hw.lock().unwrap_or_else(|e| e.into_inner())
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
        let d = IceDriver {
            regs,
            hw: Arc::new(Mutex::new(hw)),
            tx_shared: Vec::new(),
            hw_stats: Mutex::new(HwStats::default()),
            mdd_seen: std::sync::atomic::AtomicU64::new(0),
        };
        d.update_hw_stats();
        Ok(IcePort {
            dev: EthDev::with_driver(name, d),
        })
    }

    /// Waits (bounded) for the link to come up; the error names the
    /// cable/module state the firmware reports (`get_link_status`).
    pub fn wait_link_up(&self, timeout: std::time::Duration) -> Result<LinkStatus, EthdevError> {
        let r = self.hw().wait_link_up(timeout);
        r.map_err(|e| dev_err(self.dev.name(), e))
    }

    fn hw(&self) -> MutexGuard<'_, IceHw<R>> {
        lock(&self.dev.driver().hw)
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

    /// The configuration in force (with the RSS set-up last applied).
    pub fn config(&self) -> Option<&PortConfig> {
        self.dev.config()
    }

    /// Plays the part of `rte_eth_dev_rss_reta_update` +
    /// `rte_eth_dev_rss_hash_update` (DPDK `ice_rss_reta_update` /
    /// `ice_rss_hash_update`; Linux ethtool `set_rxfh`, which ice answers
    /// with `ice_set_rss_key` and `ice_set_rss_lut`): replaces the key and
    /// LUT of a configured port, started or not, through set_rss_key and
    /// set_rss_lut; frames received afterwards are steered by the new LUT.
    /// Checked as `configure` checks it; the configuration keeps the new one.
    pub fn update_rss(&mut self, rss: RssConf) -> Result<(), EthdevError> {
        let name = self.dev.name().to_string();
        let Some(conf) = self.dev.config().cloned() else {
            return Err(dev_err(
                &name,
                IceError::Usage("not configured: call configure() first".into()),
            ));
        };
        let info = self.dev.info();
        rss.validate(
            &name,
            info.driver,
            info.reta_size,
            info.rss_hash_types,
            conf.nb_rx_queues,
        )?;
        self.dev.driver().program_rss(&name, Some(&rss))?;
        self.dev.set_rss(rss);
        Ok(())
    }

    /// Sets up TX queue `q` and returns the concrete queue type.
    pub fn ice_tx_queue(&mut self, q: u16) -> Result<IceTxQueue<R>, EthdevError> {
        self.dev.setup_tx_with(q, |d, s| d.tx(s))
    }

    /// Sets up RX queue `q` and returns the concrete queue type.
    pub fn ice_rx_queue(&mut self, q: u16) -> Result<IceRxQueue<R>, EthdevError> {
        self.dev.setup_rx_with(q, |d, s| d.rx(s))
    }
}

impl<R: RegisterSpace> IceDriver<R> {
    fn hw(&self) -> MutexGuard<'_, IceHw<R>> {
        lock(&self.hw)
    }

    /// The LUT size this PMD programs: the PF table the capabilities report
    /// (Linux `ice_vsi_set_rss_params`: `rss_table_size` for a PF VSI), when
    /// it is a size set_rss_lut takes for a PF LUT; else no RSS.
    fn reta_size(caps: &crate::hw::Caps) -> u16 {
        match caps.rss_table_size as usize {
            n @ (128 | LUT_GLOBAL_SIZE | LUT_PF_SIZE) => n as u16,
            _ => 0,
        }
    }

    /// The key and LUT bytes for `rss` (`None`: no RSS on this function),
    /// checked against what this PMD can program; errors name the key.
    #[allow(clippy::type_complexity)]
    fn rss_tables(
        &self,
        port: &str,
        rss: Option<&RssConf>,
    ) -> Result<Option<([u8; RSS_KEY_LEN], Vec<u8>)>, EthdevError> {
        let caps = self.hw().caps;
        let n = Self::reta_size(&caps);
        if n == 0 {
            return Ok(None);
        }
        let bad = |key: String, why: String| EthdevError::Config {
            port: port.to_string(),
            key,
            why,
        };
        let (key, lut) = match rss {
            Some(r) => {
                if r.hash_types != RssHashTypes::ALL {
                    return Err(bad(
                        "rss.hash_types".into(),
                        format!(
                            "{}: ice without a DDP package hashes exactly {} (the flow profiles that would select other inputs come from the package); select all of them",
                            r.hash_types.names(),
                            RssHashTypes::ALL.names()
                        ),
                    ));
                }
                let width = caps.rss_entry_width.clamp(1, 8) as u32;
                if let Some((i, q)) = r.reta.iter().enumerate().find(|(_, &q)| q >> width != 0) {
                    return Err(bad(
                        format!("rss.reta[{i}]"),
                        format!("queue {q}: an ice LUT entry has {width} bits (list_func_caps); use queues below {}", 1u32 << width),
                    ));
                }
                (r.key, r.reta.iter().map(|&q| q as u8).collect::<Vec<u8>>())
            }
            None => (DEFAULT_RSS_KEY, vec![0u8; n as usize]),
        };
        Ok(Some((key, lut)))
    }

    /// Plays the part of Linux `ice_vsi_cfg_rss_lut_key` (DPDK
    /// `ice_init_rss`): the key through set_rss_key and the LUT through
    /// set_rss_lut, both for the PF VSI, whose queueing options already
    /// select the PF LUT and the Toeplitz hash ([`IceHw::vsi_props`]).
    /// Without `rss` the LUT is all queue 0 (every frame lands there).
    ///
    /// The hash inputs: on an E810 they are chosen by flow profiles that
    /// come from the DDP package (Linux `ice_vsi_set_rss_flow_fld` adds
    /// `default_rss_cfgs` through `ice_add_rss_cfg`, and skips it in safe
    /// mode). This PMD runs without a package, so it cannot choose them: it
    /// takes the defaults Linux programs — IPv4 on addresses, IPv4/TCP and
    /// IPv4/UDP on addresses and ports — and refuses another selection,
    /// naming `rss.hash_types`.
    fn program_rss(&self, port: &str, rss: Option<&RssConf>) -> Result<(), EthdevError> {
        let Some((key, lut)) = self.rss_tables(port, rss)? else {
            return Ok(());
        };
        let mut hw = self.hw();
        hw.set_rss_key(&key).map_err(|e| dev_err(port, e))?;
        hw.set_rss_lut(&lut).map_err(|e| dev_err(port, e))?;
        Ok(())
    }

    /// `ice_tx_queue_setup`: the ring, its shared state, and (on a started
    /// port) the queue enabled at once (`add_txqs`).
    fn tx(&mut self, s: QueueSetup<'_>) -> Result<IceTxQueue<R>, EthdevError> {
        let (q, n) = (s.queue, s.ring_size);
        let vlan = s.conf.tx_offloads & ol::TX_VLAN != 0;
        let ring = DmaRegion::alloc(n as usize * TX_DESC_SIZE)
            .map_err(|e| dev_err(s.port, IceError::Dma(e)))?;
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
            if s.started {
                let teid = hw
                    .add_txq(q, ring.iova(), n)
                    .map_err(|e| dev_err(s.port, e))?;
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
            s.stats,
            shared,
            self.hw.clone(),
            vlan,
        ))
    }

    /// `ice_rx_queue_setup`: the ring.
    fn rx(&mut self, s: QueueSetup<'_>) -> Result<IceRxQueue<R>, EthdevError> {
        let n = s.ring_size;
        let ring = DmaRegion::alloc(n as usize * RX_DESC_SIZE)
            .map_err(|e| dev_err(s.port, IceError::Dma(e)))?;
        let abs = s.queue; // PF-relative, as Linux `pf_q` / DPDK `reg_idx`
        Ok(IceRxQueue::new(
            s.queue,
            abs,
            self.regs.clone(),
            ring,
            n,
            s.stats,
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
            // GLV_RDPC, 32 bits (`ice_stat_update32`).
            let d = r.read32(glv_rdpc(v));
            if let Some(p) = s.vsi_rdpc_prev {
                s.vsi_rdpc += d.wrapping_sub(p) as u64;
            }
            s.vsi_rdpc_prev = Some(d);
        }
    }

    /// Disables every enabled TX queue (dis_txqs) and tells their owners.
    fn disable_tx_queues(&mut self, port: &str) -> Result<(), EthdevError> {
        let mut first_err = None;
        for s in self.tx_shared.iter().flatten() {
            if s.enabled.swap(false, Ordering::AcqRel) {
                s.epoch.fetch_add(1, Ordering::AcqRel);
                if let Err(e) = lock(&self.hw).dis_txq(s.q) {
                    first_err.get_or_insert(dev_err(port, e));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl<R: RegisterSpace> Driver for IceDriver<R> {
    const LINK_WHILE_STOPPED: bool = true;
    const START_NEEDS_CONFIGURE: bool = true;

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
            // The PF LUT set_rss_lut programs; the hash inputs are the
            // defaults Linux programs (see `program_rss`).
            reta_size: Self::reta_size(&h.caps),
            rss_hash_types: if Self::reta_size(&h.caps) > 0 {
                RssHashTypes::ALL
            } else {
                RssHashTypes::NONE
            },
        }
    }

    fn mac(&self) -> MacAddr {
        self.hw().mac
    }

    /// After the framework's validation: the old queues disabled, the VSI
    /// set up for the queue count (`ice_dev_configure` → `ice_setup_vsi`),
    /// then RSS: key and LUT through the admin queue ([`Self::program_rss`],
    /// `ice_init_rss`).
    fn configure(&mut self, port: &str, conf: &PortConfig) -> Result<(), EthdevError> {
        self.disable_tx_queues(port)?;
        let nq = conf.nb_tx_queues.max(conf.nb_rx_queues);
        // Refuse an RSS set-up this PMD cannot program before touching the VSI.
        self.rss_tables(port, conf.rss.as_ref())?;
        self.hw().setup_vsi(nq).map_err(|e| dev_err(port, e))?;
        self.program_rss(port, conf.rss.as_ref())?;
        self.update_hw_stats();
        self.tx_shared = vec![None; conf.nb_tx_queues as usize];
        Ok(())
    }

    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(self.tx(q)?))
    }

    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(self.rx(q)?))
    }

    /// Enables every handed-out TX queue (add_txqs with its TLAN context).
    fn start(&mut self, port: &str) -> Result<(), EthdevError> {
        for s in self.tx_shared.iter().flatten() {
            if !s.enabled.load(Ordering::Acquire) {
                let teid = lock(&self.hw)
                    .add_txq(s.q, s.ring_iova, s.qlen)
                    .map_err(|e| dev_err(port, e))?;
                s.teid.store(teid, Ordering::Relaxed);
                s.enabled.store(true, Ordering::Release);
            }
        }
        // Link set-up as DPDK `ice_dev_set_link_up` / `ice_phy_conf_link`:
        // PHY capabilities with media, then set_phy_cfg with ENA_LINK and
        // AUTO_LINK_UPDT. The link may come up later (`wait_link_up`).
        let link = {
            let mut hw = self.hw();
            hw.setup_link().map_err(|e| dev_err(port, e))?;
            let l = hw.get_link_status(true).map_err(|e| dev_err(port, e))?;
            hw.link = l;
            l
        };
        if !link.up {
            tracing::warn!(port = %port, "ice: link is down after start; wait_link_up reports why");
        }
        Ok(())
    }

    /// Disables the TX queues (dis_txqs, 0x0C31); their owners drop what was
    /// in flight on their next call.
    fn stop(&mut self, port: &str) -> Result<(), EthdevError> {
        self.disable_tx_queues(port)
    }

    /// The link the firmware reported: get_link_status at probe and start,
    /// then its link-status events ([`IceHw::service_arq`]).
    fn carrier(&self) -> bool {
        let mut hw = self.hw();
        hw.service_arq();
        hw.link.up
    }

    fn speed_mbps(&self) -> u32 {
        self.hw().link.speed_mbps
    }

    /// Queue counters plus the device's GLPRT_* / GLV_* counters, 40-bit
    /// registers accumulated into 64 bits (`ice_stat_update40`).
    fn xstats(&self, _stats: &PortStats, v: &mut Vec<(String, u64)>) {
        self.update_hw_stats();
        let h = self.hw_stats.lock().unwrap_or_else(|e| e.into_inner());
        v.push(("port_tx_good_bytes".into(), h.port_gotc.total));
        v.push(("port_tx_unicast_packets".into(), h.port_uptc.total));
        v.push(("vsi_tx_good_bytes".into(), h.vsi_gotc.total));
        v.push(("vsi_tx_unicast_packets".into(), h.vsi_uptc.total));
        v.push(("vsi_tx_errors".into(), h.vsi_tepc));
        v.push(("vsi_rx_discards".into(), h.vsi_rdpc));
        v.push(("mdd_events".into(), self.mdd_seen.load(Ordering::Relaxed)));
    }

    /// MDD events latched by the device, admin-queue errors and link
    /// changes since the last call.
    fn events(&mut self) -> Vec<PortEvent> {
        let mut hw = self.hw();
        hw.drain_mdd();
        hw.check_adminq();
        hw.service_arq();
        let ev = std::mem::take(&mut hw.events);
        drop(hw);
        self.mdd_seen.fetch_add(
            ev.iter().filter(|e| e.kind == "mdd").count() as u64,
            Ordering::Relaxed,
        );
        ev
    }
}

// The framework's [`Port`], as [`EthDev`] implements it.
wirespeed::port_via_ethdev!(IcePort<R: RegisterSpace>, dev);

impl<R: RegisterSpace> Drop for IceDriver<R> {
    fn drop(&mut self) {
        let _ = self.disable_tx_queues("ice");
        self.hw().shutdown();
    }
}
