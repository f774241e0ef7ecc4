//! The PF control plane: probe, PF reset, admin commands (Linux `ice_common.c`,
//! `ice_sched.c`, `ice_lib.c`; DPDK `ice_init_hw`, `ice_ena_vsi_txq`).
//!
//! Generic over the register space, so the same code drives a VFIO-mapped
//! E810 BAR0 ([`wirespeed::eal::regs::Mmio`]) and the in-tree model.

use crate::adminq::{AdminQueue, AqDesc, AqError, AqRc};
use crate::ctx::{tlan, TlanCtx, TLAN_CTX_SIZE};
use crate::regs::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::DmaError;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{LinkStatus, MacAddr, PortEvent};

/// ice driver errors.
#[derive(Debug, thiserror::Error)]
pub enum IceError {
    #[error("PCI device {vendor:04x}:{device:04x} is not an E810 this driver supports (E810-C 1591/1592/1593, E810-XXV 1599/159a/159b)")]
    UnsupportedDevice { vendor: u16, device: u16 },
    #[error("PF reset did not complete within {ms} ms (PFGEN_CTRL.PFSWR still set); the device may be in a global reset — retry, or reset it with `echo 1 > /sys/bus/pci/devices/BDF/reset`")]
    ResetTimeout { ms: u64 },
    #[error("device not ready after reset (GLGEN_RSTAT.DEVSTATE = {devstate}, GLNVM_ULD = {uld:#x}); the firmware did not finish loading")]
    NotReady { devstate: u32, uld: u32 },
    #[error(transparent)]
    Aq(#[from] AqError),
    #[error("DMA memory: {0}")]
    Dma(#[from] DmaError),
    #[error("firmware answer is malformed: {0}")]
    Malformed(String),
    #[error("link did not come up within {ms} ms: {state}")]
    LinkDown { ms: u64, state: String },
    #[error("{0}")]
    Usage(String),
    #[error("TX queue {q} is outside the PF's {n} queues (list_func_caps)")]
    NoSuchQueue { q: u16, n: u16 },
}

/// Firmware and API versions (get_ver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FwVersion {
    pub fw: (u8, u8, u8),
    pub api: (u8, u8, u8),
    pub build: u32,
}

/// Function capabilities (list_func_caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub num_txq: u16,
    pub first_txq: u16,
    pub num_rxq: u16,
    pub first_rxq: u16,
    pub max_mtu: u32,
    /// Entries of the PF's RSS LUT (`ICE_AQC_CAPS_RSS` `number`; Linux
    /// `rss_table_size`); 0 when the function has no RSS.
    pub rss_table_size: u16,
    /// Bits of one LUT entry (`ICE_AQC_CAPS_RSS` `logical_id`; Linux
    /// `rss_table_entry_width`): a LUT entry names a queue below `1 << width`.
    pub rss_entry_width: u8,
}

/// Device capabilities (list_dev_caps, DPDK `ice_discover_dev_caps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevCaps {
    /// Bitmap of enabled PFs (`ICE_AQC_CAPS_VALID_FUNCTIONS`).
    pub valid_functions: u32,
    pub num_txq: u32,
    pub num_rxq: u32,
    pub num_vsi: u32,
}

/// Probe-time knobs.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Admin queue length (descriptors).
    pub aq_len: u16,
    /// How long to wait for the firmware to answer one command.
    pub aq_timeout: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            aq_len: 32,
            aq_timeout: Duration::from_secs(1),
        }
    }
}

/// One 40-bit hardware counter accumulated into 64 bits (`ice_stat_update40`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat40 {
    prev: Option<u64>,
    pub total: u64,
}

impl Stat40 {
    pub fn update(&mut self, cur: u64) {
        let cur = cur & STAT40_MASK;
        if let Some(p) = self.prev {
            self.total = self.total.wrapping_add(cur.wrapping_sub(p) & STAT40_MASK);
        }
        self.prev = Some(cur);
    }
}

/// Reads a 40-bit L/H counter pair with a carry check.
pub fn read_stat40<R: RegisterSpace>(regs: &R, lo: u32) -> u64 {
    let mut h = regs.read32(lo + 4);
    let mut l = regs.read32(lo);
    for _ in 0..3 {
        let h2 = regs.read32(lo + 4);
        if h2 == h {
            break;
        }
        h = h2;
        l = regs.read32(lo);
    }
    (((h & 0xFF) as u64) << 32) | l as u64
}

/// The PF: register space, admin queue and what the firmware told us.
pub struct IceHw<R: RegisterSpace> {
    pub regs: Arc<R>,
    pub aq: AdminQueue,
    pub version: FwVersion,
    pub caps: Caps,
    pub dev_caps: DevCaps,
    pub lport: u8,
    pub pf_num: u8,
    pub vsi: Option<u16>,
    /// TEID of the scheduler node LAN queues attach to (`ice_sched_get_free_qparent`).
    pub qparent_teid: u32,
    pub link: LinkStatus,
    pub mac: MacAddr,
    pub device_name: &'static str,
    /// Events drained from the device, waiting for `Port::events`.
    pub events: Vec<PortEvent>,
    /// Per-queue MDD flags set while draining `GL_MDET_TX_TCLAN`.
    pub mdd_flags: Vec<Option<Arc<std::sync::atomic::AtomicU32>>>,
}

impl<R: RegisterSpace> IceHw<R> {
    /// Probes: checks the PCI id, reads the PF number (`PF_FUNC_RID`), resets
    /// the PF, brings up the admin queue and runs the bring-up commands (DPDK
    /// `ice_init_hw` order): get_ver, clear_pf_cfg, list_dev_caps,
    /// list_func_caps, get_sw_cfg, default topology, link, MAC.
    pub fn probe(
        regs: Arc<R>,
        vendor: u16,
        device: u16,
        opts: &ProbeOptions,
    ) -> Result<IceHw<R>, IceError> {
        let device_name =
            device_name(vendor, device).ok_or(IceError::UnsupportedDevice { vendor, device })?;
        // ice_init_hw: the PF number comes from PF_FUNC_RID, before the reset.
        let pf_num = (regs.read32(PF_FUNC_RID) & PF_FUNC_RID_FUNCTION_NUMBER_M) as u8;
        pf_reset(&*regs)?;
        let aq = AdminQueue::init(&*regs, opts.aq_len, opts.aq_timeout)?;
        let mut hw = IceHw {
            regs,
            aq,
            version: FwVersion::default(),
            caps: Caps::default(),
            dev_caps: DevCaps::default(),
            lport: 0,
            pf_num,
            vsi: None,
            qparent_teid: 0,
            link: LinkStatus::default(),
            mac: MacAddr::ZERO,
            device_name,
            events: Vec::new(),
            mdd_flags: Vec::new(),
        };
        hw.version = hw.get_version()?;
        hw.clear_pf_cfg()?;
        hw.dev_caps = hw.list_dev_caps()?;
        if hw.dev_caps.valid_functions & (1 << hw.pf_num) == 0 {
            return Err(IceError::Malformed(format!(
                "list_dev_caps: PF {} (PF_FUNC_RID) is not among the valid functions {:#x}",
                hw.pf_num, hw.dev_caps.valid_functions
            )));
        }
        hw.caps = hw.list_caps()?;
        hw.lport = hw.get_sw_cfg()?;
        hw.qparent_teid = hw.query_topology()?;
        hw.link = hw.get_link_status(true)?;
        hw.mac = hw.read_mac()?;
        Ok(hw)
    }

    /// Sends one command.
    pub fn send(&mut self, d: &mut AqDesc, buf: Option<(&mut [u8], bool)>) -> Result<(), AqError> {
        self.aq.send(&*self.regs, d, buf)
    }

    pub fn get_version(&mut self) -> Result<FwVersion, IceError> {
        let mut d = AqDesc::new(opc::GET_VER);
        self.send(&mut d, None)?;
        // struct ice_aqc_get_ver (base/ice_adminq_cmd.h:33): rom_ver @0, fw_build @4,
        // fw_branch/major/minor/patch @8..12, api_branch/major/minor/patch @12..16.
        Ok(FwVersion {
            build: d.param_u32(4),
            fw: (d.param_u8(9), d.param_u8(10), d.param_u8(11)),
            api: (d.param_u8(13), d.param_u8(14), d.param_u8(15)),
        })
    }

    pub fn clear_pf_cfg(&mut self) -> Result<(), IceError> {
        let mut d = AqDesc::new(opc::CLEAR_PF_CFG);
        self.send(&mut d, None)?;
        self.vsi = None;
        Ok(())
    }

    /// list_dev_caps (0x000B) as DPDK `ice_discover_dev_caps`: one 4 KiB
    /// buffer, the most the firmware can return.
    pub fn list_dev_caps(&mut self) -> Result<DevCaps, IceError> {
        let mut buf = vec![0u8; AQ_MAX_BUF_LEN];
        let mut d = AqDesc::new(opc::LIST_DEV_CAPS);
        self.send(&mut d, Some((&mut buf, false)))?;
        let count =
            (d.param_u32(LIST_CAPS_COUNT_OFF) as usize).min(AQ_MAX_BUF_LEN / CAPS_ELEM_SIZE);
        let mut c = DevCaps::default();
        for e in buf.chunks_exact(CAPS_ELEM_SIZE).take(count) {
            // struct ice_aqc_list_caps_elem (base/ice_adminq_cmd.h:109): cap @0, number @4.
            let id = u16::from_le_bytes([e[0], e[1]]);
            let number = u32::from_le_bytes(e[4..8].try_into().expect("4"));
            match id {
                caps::VALID_FUNCTIONS => c.valid_functions = number,
                caps::TXQS => c.num_txq = number,
                caps::RXQS => c.num_rxq = number,
                caps::VSI => c.num_vsi = number,
                _ => {}
            }
        }
        Ok(c)
    }

    /// `ice_aq_list_caps`: retried once with the size the firmware asks for
    /// when the first buffer is too small (ENOMEM + count).
    pub fn list_caps(&mut self) -> Result<Caps, IceError> {
        let mut len = 4 * CAPS_ELEM_SIZE;
        for _ in 0..2 {
            let mut buf = vec![0u8; len];
            let mut d = AqDesc::new(opc::LIST_FUNC_CAPS);
            match self.send(&mut d, Some((&mut buf, false))) {
                Ok(()) => {
                    let count = d.param_u32(LIST_CAPS_COUNT_OFF) as usize;
                    let mut c = Caps::default();
                    for e in buf.chunks_exact(CAPS_ELEM_SIZE).take(count) {
                        // struct ice_aqc_list_caps_elem (base/ice_adminq_cmd.h:109): cap @0,
                        // number @4, logical_id @8, phys_id @12.
                        let id = u16::from_le_bytes([e[0], e[1]]);
                        let number = u32::from_le_bytes(e[4..8].try_into().expect("4"));
                        let logical = u32::from_le_bytes(e[8..12].try_into().expect("4"));
                        let phys = u32::from_le_bytes(e[12..16].try_into().expect("4"));
                        match id {
                            caps::RSS => {
                                c.rss_table_size = number.min(u16::MAX as u32) as u16;
                                c.rss_entry_width = logical.min(16) as u8;
                            }
                            caps::TXQS => {
                                c.num_txq = number.min(u16::MAX as u32) as u16;
                                c.first_txq = phys as u16;
                            }
                            caps::RXQS => {
                                c.num_rxq = number.min(u16::MAX as u32) as u16;
                                c.first_rxq = phys as u16;
                            }
                            caps::MAX_MTU => c.max_mtu = number,
                            _ => {}
                        }
                    }
                    if c.num_txq == 0 {
                        return Err(IceError::Malformed(
                            "list_func_caps reported no TX queues".into(),
                        ));
                    }
                    return Ok(c);
                }
                Err(AqError::Firmware {
                    rc: AqRc::Enomem, ..
                }) if d.param_u32(LIST_CAPS_COUNT_OFF) as usize * CAPS_ELEM_SIZE > len => {
                    len = (d.param_u32(LIST_CAPS_COUNT_OFF) as usize * CAPS_ELEM_SIZE)
                        .min(AQ_MAX_BUF_LEN);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(IceError::Malformed(
            "list_func_caps kept asking for a larger buffer".into(),
        ))
    }

    /// `ice_get_initial_sw_cfg`: finds the logical port of this PF's physical
    /// port (the PF number itself comes from `PF_FUNC_RID`, as in `ice_init_hw`).
    pub fn get_sw_cfg(&mut self) -> Result<u8, IceError> {
        let mut buf = vec![0u8; 64 * SW_CFG_ELEM_SIZE];
        let mut d = AqDesc::new(opc::GET_SW_CFG);
        self.send(&mut d, Some((&mut buf, false)))?;
        // struct ice_aqc_get_sw_cfg (base/ice_adminq_cmd.h:209): num_elems @4;
        // elements (:226): vsi_port_num @0, swid @2, pf_vf_num @4.
        let n = d.param_u16(4) as usize;
        for e in buf.chunks_exact(SW_CFG_ELEM_SIZE).take(n) {
            let vpn = u16::from_le_bytes([e[0], e[1]]);
            let pfvf = u16::from_le_bytes([e[4], e[5]]);
            let func = pfvf & SW_CONF_RESP_FUNC_NUM_M;
            if vpn >> SW_CONF_RESP_TYPE_S == SW_CONF_RESP_PHYS_PORT
                && pfvf & SW_CONF_RESP_IS_VF == 0
                && func == self.pf_num as u16
            {
                return Ok((vpn & SW_CONF_RESP_NUM_M) as u8);
            }
        }
        Err(IceError::Malformed(format!(
            "get_sw_cfg listed no physical port for PF {}",
            self.pf_num
        )))
    }

    /// Reads the default scheduler topology (`ice_aq_get_dflt_topo`) and
    /// returns the TEID of the deepest generic node: the parent LAN queues
    /// hang off (`ice_sched_get_free_qparent`).
    pub fn query_topology(&mut self) -> Result<u32, IceError> {
        let mut buf = vec![0u8; AQ_MAX_BUF_LEN];
        let mut d = AqDesc::new(opc::GET_DFLT_TOPO);
        // struct ice_aqc_get_topo (base/ice_adminq_cmd.h:1023): port_num @0, num_branches @1;
        // buffer: topo_grp_info_hdr (:1121, num_elems @4) then txsched_elem_data
        // (:1115: parent_teid @0, node_teid @4, elem_type @8).
        d.set_param_u8(0, self.lport);
        self.send(&mut d, Some((&mut buf, false)))?;
        let branches = d.param_u8(1);
        if branches == 0 {
            return Err(IceError::Malformed("default topology has no branch".into()));
        }
        let n = u16::from_le_bytes([buf[4], buf[5]]) as usize;
        let mut parent = None;
        for i in 0..n {
            let o = TOPO_GRP_HDR_SIZE + i * TXSCHED_ELEM_DATA_SIZE;
            if o + TXSCHED_ELEM_DATA_SIZE > buf.len() {
                break;
            }
            let teid = u32::from_le_bytes(buf[o + 4..o + 8].try_into().expect("4"));
            let ty = buf[o + 8];
            if ty == elem_type::SE_GENERIC {
                parent = Some(teid);
            }
        }
        parent.ok_or_else(|| {
            IceError::Malformed("default topology has no generic scheduler node for queues".into())
        })
    }

    /// get_phy_caps (0x0600, `ice_aq_get_phy_caps`) in report mode `mode`:
    /// the 560-byte `ice_aqc_get_phy_caps_data`.
    pub fn get_phy_caps(&mut self, mode: u16) -> Result<Vec<u8>, IceError> {
        let mut buf = vec![0u8; PHY_CAPS_DATA_SIZE];
        let mut d = AqDesc::new(opc::GET_PHY_CAPS);
        // struct ice_aqc_get_phy_caps (base/ice_adminq_cmd.h:1286): lport_num @0, param0 @2.
        d.set_param_u8(0, self.lport);
        d.set_param_u16(2, mode);
        self.send(&mut d, Some((&mut buf, false)))?;
        Ok(buf)
    }

    /// set_phy_cfg (0x0601, `ice_aq_set_phy_cfg`): `cfg` is the 24-byte
    /// `ice_aqc_set_phy_cfg_data`; caps outside `ICE_AQ_PHY_ENA_VALID_MASK`
    /// are cleared first, as `ice_aq_set_phy_cfg` does.
    pub fn set_phy_cfg(&mut self, cfg: &mut [u8; SET_PHY_CFG_DATA_SIZE]) -> Result<(), IceError> {
        cfg[PHY_CAPS_CAPS_OFF] &= AQ_PHY_ENA_VALID_MASK;
        let mut d = AqDesc::new(opc::SET_PHY_CFG);
        // struct ice_aqc_set_phy_cfg (base/ice_adminq_cmd.h:1471): lport_num @0.
        d.set_param_u8(0, self.lport);
        match self.send(&mut d, Some((&mut cfg[..], true))) {
            // ice_aq_set_phy_cfg: EMODE (no change in this mode) is success.
            Err(AqError::Firmware {
                rc: AqRc::Emode, ..
            })
            | Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// restart_an (0x0605, `ice_aq_set_link_restart_an`): restart the link,
    /// enabled or not.
    pub fn restart_an(&mut self, ena_link: bool) -> Result<(), IceError> {
        let mut d = AqDesc::new(opc::RESTART_AN);
        // struct ice_aqc_restart_an (base/ice_adminq_cmd.h:1520): lport_num @0, cmd_flags @2.
        d.set_param_u8(0, self.lport);
        let mut f = AQC_RESTART_AN_LINK_RESTART;
        if ena_link {
            f |= AQC_RESTART_AN_LINK_ENABLE;
        }
        d.set_param_u8(2, f);
        self.send(&mut d, None)?;
        Ok(())
    }

    /// Link set-up as DPDK `ice_phy_conf_link(…, link_up = true)`: the PHY
    /// capabilities with media, copied into a PHY configuration
    /// (`ice_copy_phy_caps_to_cfg`) with `ENA_LINK | AUTO_LINK_UPDT`.
    pub fn setup_link(&mut self) -> Result<(), IceError> {
        let caps = self.get_phy_caps(AQC_REPORT_TOPO_CAP_MEDIA)?;
        let mut cfg = [0u8; SET_PHY_CFG_DATA_SIZE];
        // phy_type_low/high, caps, low_power_ctrl_an, eee_cap, eeer_value: same offsets.
        cfg[..22].copy_from_slice(&caps[..22]);
        cfg[22] = caps[PHY_CAPS_FEC_OFF];
        cfg[23] = caps[PHY_CAPS_MOD_COMPL_OFF];
        cfg[PHY_CAPS_CAPS_OFF] |= AQ_PHY_ENA_AUTO_LINK_UPDT | AQ_PHY_ENA_LINK;
        self.set_phy_cfg(&mut cfg)
    }

    /// Polls get_link_status until the link is up or `timeout` passes; the
    /// error says what the firmware reports about cable, module and signal.
    pub fn wait_link_up(&mut self, timeout: Duration) -> Result<LinkStatus, IceError> {
        let t0 = Instant::now();
        loop {
            let (l, raw) = self.link_info(true)?;
            self.link = l;
            if l.up {
                return Ok(l);
            }
            if t0.elapsed() >= timeout {
                return Err(IceError::LinkDown {
                    ms: timeout.as_millis() as u64,
                    state: describe_link_down(&raw),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `ice_aq_get_link_info`: enables (`ICE_AQ_LSE_ENA`) or disables
    /// (`ICE_AQ_LSE_DIS`) link-status events as asked, as both drivers do.
    pub fn get_link_status(&mut self, lse: bool) -> Result<LinkStatus, IceError> {
        Ok(self.link_info(lse)?.0)
    }

    /// get_link_status with the raw `ice_aqc_get_link_status_data`.
    fn link_info(&mut self, lse: bool) -> Result<(LinkStatus, Vec<u8>), IceError> {
        let mut buf = vec![0u8; LINK_STATUS_DATALEN];
        let mut d = AqDesc::new(opc::GET_LINK_STATUS);
        // struct ice_aqc_get_link_status (base/ice_adminq_cmd.h:1530): lport_num @0, cmd_flags @2.
        d.set_param_u8(0, self.lport);
        d.set_param_u16(2, if lse { AQ_LSE_ENA } else { AQ_LSE_DIS });
        self.send(&mut d, Some((&mut buf, false)))?;
        Ok((parse_link_data(&buf), buf))
    }

    /// Takes the firmware's events off the admin receive queue (Linux
    /// `ice_clean_adminq_subtask` → `__ice_clean_ctrlq`), at most one ring's
    /// worth per call. A link-status event (opcode get_link_status, 0x0607,
    /// posted while `ICE_AQ_LSE_ENA` is on) carries `struct
    /// ice_aqc_get_link_status_data` (`ice_adminq_cmd.h`), from which the
    /// link is updated as Linux `ice_handle_link_event` does (`link_info &
    /// ICE_AQ_LINK_UP`, `link_speed`); a change becomes a port event. Other
    /// events are logged and dropped. Returns whether the link changed.
    pub fn service_arq(&mut self) -> bool {
        let mut changed = false;
        for _ in 0..self.aq.len() {
            let Some(ev) = self.aq.receive(&*self.regs) else {
                break;
            };
            if ev.desc.opcode != opc::GET_LINK_STATUS {
                tracing::debug!(opcode = ev.desc.opcode, "ice: firmware event ignored");
                continue;
            }
            if ev.data.len() < LINK_DATA_SPEED_OFF + 2 {
                self.events.push(PortEvent {
                    queue: None,
                    kind: "adminq".into(),
                    detail: format!(
                        "link-status event with {} bytes of data (needs {}); ignored",
                        ev.data.len(),
                        LINK_DATA_SPEED_OFF + 2
                    ),
                });
                continue;
            }
            let l = parse_link_data(&ev.data);
            if l.up != self.link.up {
                changed = true;
                self.events.push(PortEvent {
                    queue: None,
                    kind: "link".into(),
                    detail: if l.up {
                        format!(
                            "link up at {} Mbit/s (firmware link-status event)",
                            l.speed_mbps
                        )
                    } else {
                        "link down (firmware link-status event)".into()
                    },
                });
            }
            self.link = l;
        }
        changed
    }

    /// `ice_aq_manage_mac_read`: the LAN MAC address.
    pub fn read_mac(&mut self) -> Result<MacAddr, IceError> {
        let mut buf = vec![0u8; 4 * MAC_READ_RESP_SIZE];
        let mut d = AqDesc::new(opc::MANAGE_MAC_READ);
        self.send(&mut d, Some((&mut buf, false)))?;
        // struct ice_aqc_manage_mac_read (base/ice_adminq_cmd.h:152): flags @0, num_addr @4;
        // response elements (:170): lport_num @0, addr_type @1 (LAN = 0, :173), mac_addr @2..8.
        if d.param_u16(0) & MAN_MAC_LAN_ADDR_VALID == 0 {
            return Err(IceError::Malformed(
                "manage_mac_read: no valid LAN address".into(),
            ));
        }
        let n = d.param_u8(4) as usize;
        for e in buf.chunks_exact(MAC_READ_RESP_SIZE).take(n) {
            if e[1] == 0 {
                let mut m = [0u8; 6];
                m.copy_from_slice(&e[2..8]);
                return Ok(MacAddr(m));
            }
        }
        Err(IceError::Malformed(
            "manage_mac_read: no LAN address".into(),
        ))
    }

    /// `ice_aqc_vsi_props` with a contiguous queue map starting at PF-relative
    /// queue `first_q` (Linux `ice_vsi_setup_q_map`: `q_mapping[0] = rxq_map[0]`).
    pub fn vsi_props(first_q: u16, nq: u16) -> Vec<u8> {
        let mut b = vec![0u8; VSI_PROPS_SIZE];
        let m = VSI_PROPS_MAPPING_FLAGS_OFF;
        b[m..m + 2].copy_from_slice(&VSI_Q_MAP_CONTIG.to_le_bytes());
        let o = VSI_PROPS_Q_MAPPING_OFF;
        b[o..o + 2].copy_from_slice(&first_q.to_le_bytes());
        b[o + 2..o + 4].copy_from_slice(&nq.to_le_bytes());
        // TC0: offset 0, queue count as a power of two (ice_vsi_setup_q_map).
        let pow = (nq.max(1) as u32).next_power_of_two().trailing_zeros() as u16;
        let t = VSI_PROPS_TC_MAPPING_OFF;
        b[t..t + 2].copy_from_slice(&(pow << VSI_TC_Q_NUM_S).to_le_bytes());
        // Queueing options as Linux `ice_set_rss_vsi_ctx` sets them for a PF
        // VSI (DPDK `ice_setup_vsi` likewise): the PF's LUT, Toeplitz.
        let valid = VSI_PROP_RXQ_MAP_VALID | VSI_PROP_Q_OPT_VALID;
        b[0..2].copy_from_slice(&valid.to_le_bytes());
        b[VSI_PROPS_Q_OPT_RSS_OFF] = VSI_Q_OPT_RSS_LUT_PF | VSI_Q_OPT_RSS_TPLZ;
        b
    }

    /// set_rss_key (0x0B02) as Linux `ice_aq_set_rss_key` sends it: the
    /// VSI number with `VSI_VALID`, `RD`, and the 52-byte
    /// `struct ice_aqc_get_set_rss_keys` — the 40-byte standard (Toeplitz)
    /// key, then the 12-byte `extended_hash_key`, left zero (the Toeplitz
    /// hash of an IPv4 4-tuple reads only the standard key).
    pub fn set_rss_key(&mut self, key: &[u8; RSS_STD_KEY_SIZE]) -> Result<(), IceError> {
        let vsi = self.vsi_or_err("set_rss_key")?;
        let mut buf = [0u8; RSS_KEYS_BUF_SIZE];
        buf[..RSS_STD_KEY_SIZE].copy_from_slice(key);
        let mut d = AqDesc::new(opc::SET_RSS_KEY);
        d.set_param_u16(0, (vsi & AQ_RSS_VSI_ID_M) | AQ_RSS_VSI_VALID);
        self.send(&mut d, Some((&mut buf[..], true)))?;
        Ok(())
    }

    /// set_rss_lut (0x0B03) as Linux `__ice_aq_get_set_rss_lut` sends it for
    /// the PF VSI (`ice_vsi_set_rss_params`: `rss_lut_type = ICE_LUT_PF`,
    /// the table size from the capabilities): `flags` = the LUT type | the
    /// size flag, the LUT as the buffer, one byte per entry. Only the sizes
    /// a PF LUT takes (`ice_lut_size_to_flag`) are sent.
    pub fn set_rss_lut(&mut self, lut: &[u8]) -> Result<(), IceError> {
        let vsi = self.vsi_or_err("set_rss_lut")?;
        let size_flag = match lut.len() {
            LUT_PF_SIZE => AQC_LUT_SIZE_2K,
            LUT_GLOBAL_SIZE => AQC_LUT_SIZE_512,
            128 => AQC_LUT_SIZE_SMALL,
            n => {
                return Err(IceError::Usage(format!(
                    "set_rss_lut: a PF LUT has 128, 512 or 2048 entries, not {n}"
                )))
            }
        };
        let mut buf = lut.to_vec();
        let mut d = AqDesc::new(opc::SET_RSS_LUT);
        d.set_param_u16(0, (vsi & AQ_RSS_VSI_ID_M) | AQ_RSS_VSI_VALID);
        d.set_param_u16(RSS_LUT_FLAGS_OFF, lut_type::PF | size_flag);
        self.send(&mut d, Some((&mut buf[..], true)))?;
        Ok(())
    }

    fn vsi_or_err(&self, what: &str) -> Result<u16, IceError> {
        self.vsi.ok_or_else(|| {
            IceError::Usage(format!(
                "{what}: the PF has no VSI yet (configure the port first)"
            ))
        })
    }

    /// Adds the PF VSI (first time) or updates its queue map.
    pub fn setup_vsi(&mut self, nq: u16) -> Result<u16, IceError> {
        let mut buf = Self::vsi_props(0, nq);
        // struct ice_aqc_add_get_update_free_vsi (base/ice_adminq_cmd.h:426): vsi_num @0,
        // vsi_flags @6; the response (:451) returns vsi_num @0.
        let mut d = match self.vsi {
            None => {
                let mut d = AqDesc::new(opc::ADD_VSI);
                d.set_param_u8(6, AQ_VSI_TYPE_PF);
                d
            }
            Some(v) => {
                let mut d = AqDesc::new(opc::UPDATE_VSI);
                d.set_param_u16(0, v | AQ_VSI_IS_VALID);
                d
            }
        };
        self.send(&mut d, Some((&mut buf, true)))?;
        let num = d.param_u16(0) & AQ_VSI_NUM_M;
        self.vsi = Some(num);
        Ok(num)
    }

    /// The TLAN context for PF-relative queue `q` (Linux `ice_setup_tx_ctx`:
    /// `tso_qnum = pf_q`).
    pub fn tlan_ctx(&self, q: u16, ring_iova: u64, qlen: u16) -> TlanCtx {
        TlanCtx {
            base: ring_iova >> tlan::BASE_SHIFT,
            port_num: self.lport,
            cgd_num: 0,
            pf_num: self.pf_num,
            vmvf_type: tlan::VMVF_TYPE_PF as u8,
            src_vsi: self.vsi.unwrap_or(0),
            tsyn_ena: true,
            qlen,
            tso_ena: true,
            tso_qnum: q,
            legacy_int: true,
            ..Default::default()
        }
    }

    /// add_txqs (0x0C30): one group with one queue under the LAN parent,
    /// as DPDK `ice_ena_vsi_txq` does; `txq_id` is the PF-relative queue
    /// (Linux `ice_vsi_cfg_txq`: `txq_id = cpu_to_le16(pf_q)`). Returns the
    /// queue's TEID.
    pub fn add_txq(&mut self, q: u16, ring_iova: u64, qlen: u16) -> Result<u32, IceError> {
        if q >= self.caps.num_txq {
            return Err(IceError::NoSuchQueue {
                q,
                n: self.caps.num_txq,
            });
        }
        let ctx = self.tlan_ctx(q, ring_iova, qlen).pack();
        // struct ice_aqc_add_tx_qgrp (base/ice_adminq_cmd.h:2899): parent_teid @0, num_txqs @4;
        // ice_aqc_add_txqs_perq (:2885): txq_id @0, q_teid @4, txq_ctx @8, info @32
        // (ice_aqc_txsched_elem :1084: valid_sections @1, cir_bw @4, eir_bw @8).
        // Command (:2874): num_qgrps @0.
        let mut buf = vec![0u8; ADD_TXQ_GRP_HDR_SIZE + ADD_TXQ_PERQ_SIZE];
        buf[0..4].copy_from_slice(&self.qparent_teid.to_le_bytes());
        buf[4] = 1;
        let p = ADD_TXQ_GRP_HDR_SIZE;
        buf[p..p + 2].copy_from_slice(&q.to_le_bytes());
        buf[p + 8..p + 8 + TLAN_CTX_SIZE].copy_from_slice(&ctx);
        // info: ice_aqc_txsched_elem with GENERIC|CIR|EIR valid, default
        // bandwidth profiles and weights (ice_ena_vsi_txq).
        let e = p + 8 + TLAN_CTX_SIZE + 2;
        buf[e + 1] = ELEM_VALID_GENERIC | ELEM_VALID_CIR | ELEM_VALID_EIR;
        buf[e + 4..e + 6].copy_from_slice(&SCHED_DFLT_RL_PROF_ID.to_le_bytes());
        buf[e + 6..e + 8].copy_from_slice(&SCHED_DFLT_BW_WT.to_le_bytes());
        buf[e + 8..e + 10].copy_from_slice(&SCHED_DFLT_RL_PROF_ID.to_le_bytes());
        buf[e + 10..e + 12].copy_from_slice(&SCHED_DFLT_BW_WT.to_le_bytes());
        let mut d = AqDesc::new(opc::ADD_TXQS);
        d.set_param_u8(0, 1);
        self.send(&mut d, Some((&mut buf, true)))?;
        let teid = u32::from_le_bytes(buf[p + 4..p + 8].try_into().expect("4"));
        // Bring-up order step 6: tail to 0.
        self.regs.write32(qtx_comm_dbell(q as u32), 0);
        Ok(teid)
    }

    /// dis_txqs (0x0C31) for one PF-relative queue, as `ice_aq_dis_lan_txq`
    /// sends it: no function reset, flush the pipe on timeout, timeout 5.
    pub fn dis_txq(&mut self, q: u16) -> Result<(), IceError> {
        // struct ice_aqc_dis_txq_item (base/ice_adminq_cmd.h:2937): parent_teid @0, num_qs @4,
        // q_id[] @6, padded to 8 for one queue; command (:2907): cmd_type @0,
        // num_entries @1, vmvf_and_timeout @2.
        let mut buf = vec![0u8; 8];
        buf[0..4].copy_from_slice(&self.qparent_teid.to_le_bytes());
        buf[4] = 1;
        buf[6..8].copy_from_slice(&q.to_le_bytes());
        let mut d = AqDesc::new(opc::DIS_TXQS);
        d.set_param_u8(0, Q_DIS_CMD_FLUSH_PIPE);
        d.set_param_u8(1, 1);
        d.set_param_u16(2, (Q_DIS_TIMEOUT << Q_DIS_TIMEOUT_S) & Q_DIS_TIMEOUT_M);
        self.send(&mut d, Some((&mut buf, true)))?;
        Ok(())
    }

    /// Reads, reports and clears every malicious-driver latch, in the order
    /// Linux `ice_handle_mdd_event` does: the global `GL_MDET_TX_PQM`,
    /// `GL_MDET_TX_TCLAN`, `GL_MDET_TX_TDPU`, `GL_MDET_RX` (VALID bit 31;
    /// cleared with all-ones), then this PF's `PF_MDET_*` (VALID bit 0;
    /// cleared with 0xFFFF). Events naming this PF flag the TX queue they name
    /// (the QNUM fields are absolute, so the PF's first queue is subtracted)
    /// and become port events.
    pub fn drain_mdd(&mut self) {
        for (reg, name) in GL_MDET_REGS {
            for _ in 0..64 {
                let v = self.regs.read32(reg);
                if v & GL_MDET_VALID == 0 {
                    break;
                }
                self.regs.write32(reg, GL_MDET_CLEAR);
                self.report_mdd(reg, name, v);
            }
        }
        for (reg, name) in PF_MDET_REGS {
            if self.regs.read32(reg) & PF_MDET_VALID != 0 {
                self.regs.write32(reg, PF_MDET_CLEAR);
                self.events.push(PortEvent {
                    queue: None,
                    kind: "mdd_pf".into(),
                    detail: format!("{name}: this PF caused a malicious-driver event"),
                });
            }
        }
    }

    /// Reports (and clears) admin-queue error latches as port events.
    pub fn check_adminq(&mut self) {
        for e in self.aq.check_errors(&*self.regs) {
            tracing::warn!("ice: {e}");
            self.events.push(PortEvent {
                queue: None,
                kind: "adminq".into(),
                detail: e,
            });
        }
    }

    fn report_mdd(&mut self, reg: u32, name: &str, v: u32) {
        let (pf, abs) = if reg == GL_MDET_TX_PQM {
            (
                v & GL_MDET_TX_PQM_PF_NUM_M,
                (v & GL_MDET_TX_PQM_QNUM_M) >> GL_MDET_TX_PQM_QNUM_S,
            )
        } else {
            ((v >> GL_MDET_PF_NUM_S) & 0x7, v & GL_MDET_QNUM_M)
        };
        let kind = (v & GL_MDET_MAL_TYPE_M) >> GL_MDET_MAL_TYPE_S;
        if pf != self.pf_num as u32 {
            self.events.push(PortEvent {
                queue: None,
                kind: "mdd".into(),
                detail: format!(
                    "{name}: malicious-driver event {kind} on PF {pf} queue {abs} (another PF of this device)"
                ),
            });
            return;
        }
        let q = (abs as u16).wrapping_sub(self.caps.first_txq);
        let tx = reg != GL_MDET_RX;
        if tx {
            if let Some(Some(f)) = self.mdd_flags.get(q as usize) {
                f.store(kind.max(1), std::sync::atomic::Ordering::Release);
            }
        }
        self.events.push(PortEvent {
            queue: Some(q),
            kind: "mdd".into(),
            detail: format!(
                "{name}: malicious-driver detection on {} queue {q}: {} (MAL_TYPE {kind}); the device disabled the queue (the driver resets and re-enables it)",
                if tx { "TX" } else { "RX" },
                mal_type::name(kind)
            ),
        });
    }

    /// Disables the admin queue (driver unload).
    pub fn shutdown(&mut self) {
        // ice_aq_q_shutdown(hw, true): tell the firmware the driver is unloading.
        let mut d = AqDesc::new(opc::Q_SHUTDOWN);
        d.set_param_u32(0, AQC_DRIVER_UNLOADING);
        let _ = self.send(&mut d, None);
        self.aq.shutdown(&*self.regs);
    }
}

/// The link from `struct ice_aqc_get_link_status_data` (`link_info` @2:
/// `ICE_AQ_LINK_UP`; `link_speed` @10); `buf` holds at least 12 bytes.
fn parse_link_data(buf: &[u8]) -> LinkStatus {
    let up = buf[LINK_DATA_INFO_OFF] & AQ_LINK_UP != 0;
    let sp = u16::from_le_bytes([buf[LINK_DATA_SPEED_OFF], buf[LINK_DATA_SPEED_OFF + 1]]);
    let speed_mbps = match sp {
        AQ_LINK_SPEED_10GB => 10_000,
        AQ_LINK_SPEED_25GB => 25_000,
        AQ_LINK_SPEED_100GB => 100_000,
        _ => 0,
    };
    LinkStatus {
        up,
        speed_mbps: if up { speed_mbps } else { 0 },
        full_duplex: true,
    }
}

/// Why the link is down, from `ice_aqc_get_link_status_data`
/// (topo_media_conflict @0, link_info @2, an_info @3).
fn describe_link_down(raw: &[u8]) -> String {
    let topo = raw[0];
    let info = raw[LINK_DATA_INFO_OFF];
    let an = raw[LINK_DATA_AN_INFO_OFF];
    if topo & (AQ_LINK_TOPO_CONFLICT | AQ_LINK_MEDIA_CONFLICT) != 0 {
        return format!("the module does not match the port's topology (topo_media_conflict {topo:#04x}); check the cable/module type for this port");
    }
    if info & AQ_MEDIA_AVAILABLE == 0 {
        return "no cable or module detected (ICE_AQ_MEDIA_AVAILABLE clear); plug in a cable or module".into();
    }
    if an & AQ_QUALIFIED_MODULE == 0 {
        return "the module is present but not qualified (ICE_AQ_QUALIFIED_MODULE clear); use a supported module".into();
    }
    if info & AQ_LINK_FAULT != 0 {
        return format!("link fault reported (link_info {info:#04x})");
    }
    if info & AQ_SIGNAL_DETECT == 0 {
        return "module present, no signal from the link partner (ICE_AQ_SIGNAL_DETECT clear); check the far end".into();
    }
    format!("signal detected but the link is not up yet (link_info {info:#04x}, an_info {an:#04x}); autonegotiation may still be running")
}

/// Whether the device is active with every reset-done bit set
/// (`ice_pf_reset`'s entry check).
fn reset_done<R: RegisterSpace>(regs: &R) -> (bool, u32, u32) {
    let devstate = regs.read32(GLGEN_RSTAT) & GLGEN_RSTAT_DEVSTATE_M;
    let uld = regs.read32(GLNVM_ULD);
    (
        devstate == 0 && uld & GLNVM_ULD_RESET_DONE == GLNVM_ULD_RESET_DONE,
        devstate,
        uld,
    )
}

/// PF software reset as `ice_pf_reset` does it: when a global reset is
/// already under way (device not active, or a reset-done bit missing in
/// `GLNVM_ULD`) wait for it instead (`ice_check_reset`); otherwise set
/// `PFSWR` and wait for it to clear, bounded by the global config-lock
/// timeout plus the PF-reset wait.
pub fn pf_reset<R: RegisterSpace>(regs: &R) -> Result<(), IceError> {
    let t0 = Instant::now();
    if !reset_done(regs).0 {
        let limit = Duration::from_millis(RESET_DONE_TIMEOUT_MS);
        loop {
            let (done, devstate, uld) = reset_done(regs);
            if done {
                return Ok(());
            }
            if t0.elapsed() > limit {
                return Err(IceError::NotReady { devstate, uld });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let v = regs.read32(PFGEN_CTRL);
    regs.write32(PFGEN_CTRL, v | PFGEN_CTRL_PFSWR);
    let limit = Duration::from_millis(PF_RESET_TIMEOUT_MS);
    while regs.read32(PFGEN_CTRL) & PFGEN_CTRL_PFSWR != 0 {
        if t0.elapsed() > limit {
            return Err(IceError::ResetTimeout {
                ms: PF_RESET_TIMEOUT_MS,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
