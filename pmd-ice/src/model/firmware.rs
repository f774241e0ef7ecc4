//! The model's control plane: latched registers, PF reset, the admin-queue
//! firmware responder, and the malicious-driver event latch.
//!
//! Admin commands run synchronously when the driver writes `PF_FW_ATQT`
//! (as if the firmware answered instantly); the driver still sees the
//! ordinary protocol: descriptor write-back with `DD|CMP` (and `ERR` +
//! return code), cookie echoed, indirect buffer written back, then the head
//! register moves.

use super::spec::*;
use super::{ModelConfig, RxRingCfg, Shared, TxRingCfg, MODEL_QUEUES};

use crate::ctx::TlanCtx;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use wirespeed::eal::dma::IovaMap;

/// The model firmware's version (its own numbers, reported by get_ver).
pub const FW_VERSION: (u8, u8, u8) = (4, 40, 0);
/// Admin-queue API version the model speaks.
pub const API_VERSION: (u8, u8, u8) = (1, 7, 0);

/// Scheduler TEIDs of the model's default topology (root → TC0 → two
/// generic SE layers → the queue-group node that LAN queues hang off).
pub const TEID_ROOT: u32 = 0x0000_0010;
pub const TEID_TC0: u32 = 0x0000_0020;
pub const TEID_SE1: u32 = 0x0000_0030;
pub const TEID_SE2: u32 = 0x0000_0040;
pub const TEID_QGROUP: u32 = 0x0000_0050;
/// Leaf TEIDs are `TEID_LEAF_BASE + queue`.
pub const TEID_LEAF_BASE: u32 = 0x0000_1000;
/// The VSI number the model hands out for the PF VSI.
pub const PF_VSI_NUM: u16 = 8;
/// The PF's function number (`PF_FUNC_RID`) and logical port. Not 0, so a
/// driver that hard-codes PF 0 or port 0 fails against the model.
pub const PF_NUM: u8 = 1;
pub const LPORT: u8 = 1;
/// The PF's first queue in the device's absolute numbering (`list_func_caps`
/// `phys_id`): PF 1 owns absolute queues 64..128. Queue registers and admin
/// commands take PF-relative numbers; MDD latches report absolute ones.
pub const FIRST_QUEUE: u16 = MODEL_QUEUES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsiState {
    pub num: u16,
    pub first_q: u16,
    pub nq: u16,
    /// `q_opt_rss` as last accepted (0 — VSI LUT, Toeplitz — until an
    /// add/update with `Q_OPT_VALID` sets it).
    pub q_opt_rss: u8,
}

/// The PF's RSS state as set_rss_key / set_rss_lut left it.
#[derive(Debug, Default, Clone)]
pub struct RssFw {
    /// The 52-byte `ice_aqc_get_set_rss_keys` of the PF VSI.
    pub key: Option<[u8; RSS_KEYS_BYTES]>,
    /// The PF LUT (128, 512 or 2048 entries).
    pub pf_lut: Option<Vec<u8>>,
    /// The VSI's own 64-entry LUT.
    pub vsi_lut: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
pub struct FwState {
    pub responding: bool,
    /// Fault injection: echo a wrong cookie on the next completion.
    pub bad_cookie_once: bool,
    pub vsi: Option<VsiState>,
    pub rss: RssFw,
    pub lse: bool,
    /// Set by `q_shutdown` with `driver_unloading`.
    pub driver_unloaded: bool,
}

/// The modelled PHY: whether a cable/module is present (a test knob) and
/// whether the driver's PHY configuration enables the link. Both start true:
/// the firmware brings the link up by itself after power-on.
#[derive(Debug, Clone, Copy)]
pub struct PhyState {
    pub media: bool,
    pub link_enabled: bool,
}

impl Default for PhyState {
    fn default() -> Self {
        PhyState {
            media: true,
            link_enabled: true,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct TxQState {
    pub cfg: Option<TxRingCfg>,
    pub ctx: Option<TlanCtx>,
    pub halted: bool,
}

#[derive(Debug, Default, Clone)]
pub struct RxQState {
    pub cfg: Option<RxRingCfg>,
}

/// Control-plane state, behind the model's mutex.
pub struct Ctl {
    pub regs: HashMap<u32, u32>,
    pub fw: FwState,
    pub txq: Vec<TxQState>,
    pub rxq: Vec<RxQState>,
    /// Latched `GL_MDET_TX_TCLAN` values, oldest first.
    pub mdd: VecDeque<u32>,
    /// `PF_MDET_TX_TCLAN.VALID`: this PF caused a TX LAN MDD event.
    pub pf_mdet_tclan: bool,
    pub phy: PhyState,
    pub atq_head: u32,
    pub arq_head: u32,
    mac: wirespeed::ethdev::MacAddr,
    speed: super::Speed,
}

impl Ctl {
    pub fn new(cfg: &ModelConfig) -> Ctl {
        Ctl {
            regs: HashMap::new(),
            fw: FwState {
                responding: true,
                ..Default::default()
            },
            txq: vec![TxQState::default(); MODEL_QUEUES as usize],
            rxq: vec![RxQState::default(); MODEL_QUEUES as usize],
            mdd: VecDeque::new(),
            pf_mdet_tclan: false,
            phy: PhyState::default(),
            atq_head: 0,
            arq_head: 0,
            mac: cfg.mac,
            speed: cfg.speed,
        }
    }

    /// The modelled link is up when media is present and the PHY enables it.
    pub fn link_up(&self) -> bool {
        self.phy.media && self.phy.link_enabled
    }

    fn reg(&self, off: u32) -> u32 {
        self.regs.get(&off).copied().unwrap_or(0)
    }

    /// Records an MDD event for PF-relative TX queue `q` (called by the DMA
    /// engine): the global latch names the absolute queue and this PF, and
    /// the per-PF latch is set.
    pub fn raise_mdd(&mut self, q: u32, mal_type: u32) {
        if let Some(t) = self.txq.get_mut(q as usize) {
            t.halted = true;
        }
        self.mdd.push_back(gl_mdet_value(
            FIRST_QUEUE as u32 + q,
            PF_NUM as u32,
            mal_type,
        ));
        self.pf_mdet_tclan = true;
    }

    /// PF software reset: admin queues off, VSI gone, every queue disabled,
    /// MDD latch cleared (`ice_reset` PFR semantics).
    fn pf_reset(&mut self) {
        for r in [
            PF_FW_ATQBAL,
            PF_FW_ATQBAH,
            PF_FW_ATQLEN,
            PF_FW_ATQT,
            PF_FW_ARQBAL,
            PF_FW_ARQBAH,
            PF_FW_ARQLEN,
            PF_FW_ARQT,
        ] {
            self.regs.remove(&r);
        }
        self.regs
            .retain(|&k, _| !(qrx_context(0, 0)..qrx_context(8, 0)).contains(&k));
        self.atq_head = 0;
        self.arq_head = 0;
        self.fw = FwState {
            responding: self.fw.responding,
            ..Default::default()
        };
        for t in &mut self.txq {
            *t = TxQState::default();
        }
        for r in &mut self.rxq {
            *r = RxQState::default();
        }
        self.mdd.clear();
        self.pf_mdet_tclan = false;
    }
}

/// A register write outside the fast-path doorbells.
pub fn write(s: &Shared, off: u32, v: u32) {
    let mut ctl = s.ctl();
    match off {
        PFGEN_CTRL => {
            if v & PFGEN_CTRL_PFSWR != 0 {
                ctl.pf_reset();
                drop(ctl);
                for t in s
                    .tx_tail
                    .iter()
                    .chain(s.rx_tail.iter())
                    .chain(s.tx_head.iter())
                {
                    t.store(0, Ordering::Release);
                }
                s.sync_engine();
            }
            // PFSWR self-clears once the reset is done.
        }
        GL_MDET_TX_TCLAN => {
            // Cleared by writing all-ones (ice_handle_mdd_event); anything
            // else leaves the latch alone.
            if v == 0xFFFF_FFFF {
                ctl.mdd.pop_front();
            }
        }
        PF_MDET_TX_TCLAN => {
            if v == 0xFFFF {
                ctl.pf_mdet_tclan = false;
            }
        }
        PF_FW_ATQT => {
            ctl.regs.insert(off, v & AQ_PTR_M);
            let (sync, head) = run_atq(s, &mut ctl);
            if sync {
                drop(ctl);
                s.sync_engine();
                ctl = s.ctl();
            }
            if let Some(h) = head {
                ctl.atq_head = h;
            }
        }
        PF_FW_ATQH => ctl.atq_head = v & AQ_PTR_M,
        PF_FW_ARQH => ctl.arq_head = v & AQ_PTR_M,
        o if (qrx_ctrl(0)..qrx_ctrl(MODEL_QUEUES as u32)).contains(&o) => {
            let q = (o - qrx_ctrl(0)) / 4;
            ctl.regs.insert(off, v & QRX_CTRL_QENA_REQ);
            let want = v & QRX_CTRL_QENA_REQ != 0;
            let cfg = if want { rx_queue_cfg(&ctl, q) } else { None };
            ctl.rxq[q as usize].cfg = cfg;
            drop(ctl);
            s.rx_tail[q as usize].store(0, Ordering::Release);
            s.sync_engine();
        }
        _ => {
            ctl.regs.insert(off, v);
        }
    }
}

/// A register read outside the fast path.
pub fn read(s: &Shared, off: u32) -> u32 {
    let ctl = s.ctl();
    match off {
        PFGEN_CTRL => 0,
        GLGEN_RSTAT => 0,
        GLNVM_ULD => GLNVM_ULD_RESET_DONE,
        PF_FUNC_RID => PF_NUM as u32,
        PF_MDET_TX_TCLAN => ctl.pf_mdet_tclan as u32,
        PF_FW_ATQH => ctl.atq_head,
        PF_FW_ARQH => ctl.arq_head,
        GL_MDET_TX_TCLAN => ctl.mdd.front().copied().unwrap_or(0),
        o if (qrx_ctrl(0)..qrx_ctrl(MODEL_QUEUES as u32)).contains(&o) => {
            let q = ((o - qrx_ctrl(0)) / 4) as usize;
            let req = ctl.reg(o) & QRX_CTRL_QENA_REQ;
            let stat = if ctl.rxq[q].cfg.is_some() {
                QRX_CTRL_QENA_STAT
            } else {
                0
            };
            req | stat
        }
        o => ctl.reg(o),
    }
}

fn ring_base(ctl: &Ctl, bal: u32, bah: u32) -> u64 {
    ((ctl.reg(bah) as u64) << 32) | ctl.reg(bal) as u64
}

/// Processes ATQ descriptors from head to tail. Returns whether the DMA engine
/// must be synchronised before the head moves (queue changes), and the new
/// head (`None` when the firmware does not answer).
fn run_atq(s: &Shared, ctl: &mut Ctl) -> (bool, Option<u32>) {
    let len_reg = ctl.reg(PF_FW_ATQLEN);
    if len_reg & AQLEN_ENABLE == 0 || !ctl.fw.responding {
        return (false, None);
    }
    let len = len_reg & AQLEN_LEN_M;
    let tail = ctl.reg(PF_FW_ATQT);
    let base = ring_base(ctl, PF_FW_ATQBAL, PF_FW_ATQBAH);
    if len == 0 || tail >= len {
        return (false, None);
    }
    let map = IovaMap::snapshot();
    let mut head = ctl.atq_head;
    let mut sync = false;
    while head != tail {
        let at = base + head as u64 * 32;
        let mut raw = [0u8; 32];
        if !map.read(at, &mut raw) {
            // The ring itself is unreachable: the firmware stalls (no head move).
            tracing::warn!(iova = at, "ice-model firmware: ATQ descriptor IOVA faults");
            break;
        }
        let mut d = FwDesc::decode(&raw);
        s.admin_commands.fetch_add(1, Ordering::Relaxed);
        let mut buf = Vec::new();
        let mut code = rc::OK;
        if d.flags & AQF_BUF != 0 {
            buf.resize(d.datalen as usize, 0);
            if d.datalen as usize > AQ_MAX_BUF || !map.read(d.buf_addr(), &mut buf) {
                code = rc::BAD_ADDR;
            }
        }
        if code == rc::OK {
            match execute(s, ctl, &mut d, &mut buf) {
                Ok(needs_sync) => sync |= needs_sync,
                Err(e) => code = e,
            }
        }
        d.retval = code;
        if std::mem::take(&mut ctl.fw.bad_cookie_once) {
            d.cookie_low = d.cookie_low.wrapping_add(1);
        }
        d.flags |= AQF_DD | AQF_CMP;
        if code != rc::OK {
            d.flags |= AQF_ERR;
        }
        let mut out = d.encode();
        if let Some(h) = s.aq_hook.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            h(d.opcode, &mut out, &mut buf);
        }
        if d.flags & AQF_BUF != 0 && code != rc::BAD_ADDR && !buf.is_empty() {
            map.write(d.buf_addr(), &buf);
        }
        map.write(at, &out);
        head = (head + 1) % len;
    }
    (sync, Some(head))
}

/// Runs one admin command. `buf` is the indirect buffer (read from the host,
/// written back after). Returns whether queue state changed.
fn execute(s: &Shared, ctl: &mut Ctl, d: &mut FwDesc, buf: &mut [u8]) -> Result<bool, u16> {
    match d.opcode {
        op::GET_VER => {
            let mut p = [0u8; 16];
            p[0..4].copy_from_slice(&0x0100_0000u32.to_le_bytes()); // rom_ver
            p[4..8].copy_from_slice(&0x0001_0203u32.to_le_bytes()); // fw_build
            p[8] = 0; // fw_branch
            p[9] = FW_VERSION.0;
            p[10] = FW_VERSION.1;
            p[11] = FW_VERSION.2;
            p[12] = 0; // api_branch
            p[13] = API_VERSION.0;
            p[14] = API_VERSION.1;
            p[15] = API_VERSION.2;
            d.params = p;
            Ok(false)
        }
        op::DRIVER_VER => Ok(false),
        op::Q_SHUTDOWN => {
            // ice_aqc_q_shutdown: only driver_unloading (bit 0) is defined.
            let v = le32(&d.params, 0);
            if v & !QSHUT_DRIVER_UNLOADING != 0 {
                return Err(rc::EINVAL);
            }
            ctl.fw.driver_unloaded = v & QSHUT_DRIVER_UNLOADING != 0;
            Ok(false)
        }
        op::CLEAR_PF_CFG => {
            ctl.fw.vsi = None;
            ctl.fw.rss = RssFw::default();
            for t in &mut ctl.txq {
                *t = TxQState::default();
            }
            for r in &mut ctl.rxq {
                *r = RxQState::default();
            }
            Ok(true)
        }
        op::LIST_FUNC_CAPS => {
            // ice_aqc_list_caps: count (le32) at 4; buffer of 32-byte elements.
            let first = FIRST_QUEUE as u32;
            // (cap, number, logical_id, phys_id)
            let caps: [(u16, u32, u32, u32); 5] = [
                (CAP_VSI, 1, 0, 0),
                (CAP_RSS, MODEL_RSS_TABLE, MODEL_RSS_ENTRY_WIDTH, 0),
                (CAP_RXQS, MODEL_QUEUES as u32, 0, first),
                (CAP_TXQS, MODEL_QUEUES as u32, 0, first),
                (CAP_MAX_MTU, MAX_FRAME as u32, 0, 0),
            ];
            let need = caps.len() * CAPS_ELEM;
            d.set_param_u32(CAPS_COUNT_PARAM, caps.len() as u32);
            if buf.len() < need {
                return Err(rc::ENOMEM);
            }
            buf.fill(0);
            for (i, (id, number, logical, phys)) in caps.iter().enumerate() {
                let e = &mut buf[i * CAPS_ELEM..(i + 1) * CAPS_ELEM];
                e[0..2].copy_from_slice(&id.to_le_bytes());
                e[2] = 1; // major_ver
                e[CAPS_ELEM_NUMBER..CAPS_ELEM_NUMBER + 4].copy_from_slice(&number.to_le_bytes());
                e[CAPS_ELEM_LOGICAL_ID..CAPS_ELEM_LOGICAL_ID + 4]
                    .copy_from_slice(&logical.to_le_bytes());
                e[CAPS_ELEM_PHYS_ID..CAPS_ELEM_PHYS_ID + 4].copy_from_slice(&phys.to_le_bytes());
            }
            Ok(false)
        }
        op::LIST_DEV_CAPS => {
            // The device: PFs 0 and 1 enabled, each with MODEL_QUEUES queues.
            let caps: [(u16, u32); 4] = [
                (CAP_VALID_FUNCTIONS, 0b11),
                (CAP_VSI, 768),
                (CAP_RXQS, 2 * MODEL_QUEUES as u32),
                (CAP_TXQS, 2 * MODEL_QUEUES as u32),
            ];
            d.set_param_u32(CAPS_COUNT_PARAM, caps.len() as u32);
            if buf.len() < caps.len() * CAPS_ELEM {
                return Err(rc::ENOMEM);
            }
            buf.fill(0);
            for (i, (id, number)) in caps.iter().enumerate() {
                let e = &mut buf[i * CAPS_ELEM..(i + 1) * CAPS_ELEM];
                e[0..2].copy_from_slice(&id.to_le_bytes());
                e[2] = 1;
                e[CAPS_ELEM_NUMBER..CAPS_ELEM_NUMBER + 4].copy_from_slice(&number.to_le_bytes());
            }
            Ok(false)
        }
        op::MANAGE_MAC_READ => {
            if buf.len() < MAC_RESP_ELEM {
                return Err(rc::ENOMEM);
            }
            d.set_param_u16(0, MAC_LAN_VALID);
            d.set_param_u8(MAC_NUM_ADDR_PARAM, 1);
            buf.fill(0);
            buf[0] = LPORT;
            buf[1] = 0; // ICE_AQC_MAN_MAC_ADDR_TYPE_LAN
            buf[2..8].copy_from_slice(&ctl.mac.0);
            Ok(false)
        }
        op::GET_SW_CFG => {
            let mut elems: Vec<[u8; SWCFG_ELEM]> = Vec::new();
            let mut e = [0u8; SWCFG_ELEM];
            e[0..2].copy_from_slice(
                &((LPORT as u16) | (SWCFG_TYPE_PHYS_PORT << SWCFG_TYPE_SHIFT)).to_le_bytes(),
            );
            e[4..6].copy_from_slice(&(PF_NUM as u16).to_le_bytes());
            elems.push(e);
            if let Some(v) = ctl.fw.vsi {
                let mut e = [0u8; SWCFG_ELEM];
                e[0..2]
                    .copy_from_slice(&(v.num | (SWCFG_TYPE_VSI << SWCFG_TYPE_SHIFT)).to_le_bytes());
                e[4..6].copy_from_slice(&(PF_NUM as u16).to_le_bytes());
                elems.push(e);
            }
            if buf.len() < elems.len() * SWCFG_ELEM {
                return Err(rc::ENOMEM);
            }
            buf.fill(0);
            for (i, e) in elems.iter().enumerate() {
                buf[i * SWCFG_ELEM..(i + 1) * SWCFG_ELEM].copy_from_slice(e);
            }
            d.set_param_u16(2, 0); // element: 0 = no more
            d.set_param_u16(SWCFG_NUM_ELEMS_PARAM, elems.len() as u16);
            Ok(false)
        }
        op::GET_DFLT_TOPO => {
            // params: port_num (u8), num_branches (u8, response).
            if d.param_u8(0) != LPORT {
                return Err(rc::EINVAL);
            }
            let nodes: [(u32, u32, u8); 5] = [
                (0, TEID_ROOT, ELEM_TYPE_ROOT_PORT),
                (TEID_ROOT, TEID_TC0, ELEM_TYPE_TC),
                (TEID_TC0, TEID_SE1, ELEM_TYPE_SE_GENERIC),
                (TEID_SE1, TEID_SE2, ELEM_TYPE_SE_GENERIC),
                (TEID_SE2, TEID_QGROUP, ELEM_TYPE_SE_GENERIC),
            ];
            let need = TOPO_HDR + nodes.len() * TOPO_ELEM;
            if buf.len() < need {
                return Err(rc::ENOMEM);
            }
            buf.fill(0);
            buf[0..4].copy_from_slice(&0u32.to_le_bytes()); // hdr.parent_teid
            buf[4..6].copy_from_slice(&(nodes.len() as u16).to_le_bytes());
            for (i, (parent, teid, ty)) in nodes.iter().enumerate() {
                let o = TOPO_HDR + i * TOPO_ELEM;
                buf[o..o + 4].copy_from_slice(&parent.to_le_bytes());
                buf[o + 4..o + 8].copy_from_slice(&teid.to_le_bytes());
                buf[o + 8] = *ty;
                buf[o + 9] = ELEM_VALID_GENERIC_CIR_EIR;
            }
            d.set_param_u8(1, 1); // one branch
            Ok(false)
        }
        op::ADD_VSI | op::UPDATE_VSI => {
            // ice_aqc_add_get_update_free_vsi: vsi_num le16 @0, cmd_flags le16 @2,
            // vf_id @4, vsi_flags @6; buffer: ice_aqc_vsi_props.
            let (valid, map) = decode_vsi_props(buf)?;
            let (first_q, nq) = map.unwrap_or((0, 0));
            let q_opt = decode_q_opt(buf, valid)?;
            if d.opcode == op::ADD_VSI {
                if le16(&d.params, VSI_FLAGS_PARAM) & 0x3 != VSI_TYPE_PF {
                    return Err(rc::EINVAL);
                }
                if ctl.fw.vsi.is_some() {
                    return Err(rc::ENOSPC);
                }
                ctl.fw.vsi = Some(VsiState {
                    num: PF_VSI_NUM,
                    first_q,
                    nq,
                    q_opt_rss: q_opt.unwrap_or(0),
                });
            } else {
                let Some(v) = ctl.fw.vsi.as_mut() else {
                    return Err(rc::ENOENT);
                };
                let n = d.param_u16(0);
                if n & VSI_IS_VALID == 0 || n & VSI_NUM_M != v.num {
                    return Err(rc::ENOENT);
                }
                if valid & VSI_PROP_RXQ_MAP_VALID != 0 {
                    v.first_q = first_q;
                    v.nq = nq;
                }
                if let Some(o) = q_opt {
                    v.q_opt_rss = o;
                }
            }
            // response: vsi_num @0, ext_status @2, vsi_used @4, vsi_free @6.
            let mut p = [0u8; 16];
            p[8..16].copy_from_slice(&d.params[8..16]);
            d.params = p;
            d.set_param_u16(0, PF_VSI_NUM);
            d.set_param_u16(4, 1);
            d.set_param_u16(6, 0);
            // The queue map and RSS options steer received frames.
            Ok(true)
        }
        op::SET_RSS_KEY => set_rss_key(ctl, d, buf),
        op::SET_RSS_LUT => set_rss_lut(ctl, d, buf),
        op::GET_LINK_STATUS => {
            if d.param_u8(0) != LPORT {
                return Err(rc::EINVAL);
            }
            // cmd_flags LSE field: NOP keeps, DIS disables, ENA enables; 1 is
            // a response-only value no driver sends.
            let lse = le16(&d.params, LINK_CMD_FLAGS_PARAM) & LSE_M;
            match lse {
                LSE_NOP => {}
                LSE_DIS => ctl.fw.lse = false,
                LSE_ENA => ctl.fw.lse = true,
                _ => return Err(rc::EINVAL),
            }
            let data = link_data(ctl);
            if !buf.is_empty() {
                let n = buf.len().min(data.len());
                buf[..n].copy_from_slice(&data[..n]);
            }
            let flags = if ctl.fw.lse { LSE_IS_ENABLED } else { 0 };
            d.set_param_u16(LINK_CMD_FLAGS_PARAM, flags);
            if lse == LSE_ENA {
                // The firmware reports the current state as the first event.
                post_arq_event(ctl, op::GET_LINK_STATUS, &data);
            }
            Ok(false)
        }
        op::GET_PHY_CAPS => {
            if d.param_u8(0) != LPORT || d.param_u16(PHY_PARAM0) & !(PHY_REPORT_MODE_M | 1) != 0 {
                return Err(rc::EINVAL);
            }
            if buf.len() < PHY_CAPS_BYTES {
                return Err(rc::ENOMEM);
            }
            buf.fill(0);
            let ty = match ctl.speed {
                super::Speed::G10 => PHY_TYPE_10G_SFI_DA,
                super::Speed::G25 => PHY_TYPE_25GBASE_CR,
                super::Speed::G100 => PHY_TYPE_100GBASE_CR4,
            };
            buf[PHY_CAPS_TYPE_LOW..PHY_CAPS_TYPE_LOW + 8].copy_from_slice(&ty.to_le_bytes());
            buf[PHY_CAPS_CAPS] = PHY_CAPS_AN_MODE
                | if ctl.phy.link_enabled {
                    PHY_CAPS_EN_LINK
                } else {
                    0
                };
            Ok(false)
        }
        op::SET_PHY_CFG => {
            // Indirect, host data (RD), the 24-byte ice_aqc_set_phy_cfg_data.
            if d.param_u8(0) != LPORT || d.flags & AQF_RD == 0 || buf.len() < SET_PHY_BYTES {
                return Err(rc::EINVAL);
            }
            let caps = buf[SET_PHY_CAPS];
            let ty = u64::from_le_bytes(buf[0..8].try_into().expect("8"));
            if caps & !SET_PHY_VALID_MASK != 0 || ty == 0 {
                return Err(rc::EINVAL);
            }
            // AUTO_LINK_UPDT applies the configuration now; otherwise it
            // waits for restart_an.
            if caps & SET_PHY_AUTO_LINK_UPDT != 0 {
                set_link_enabled(ctl, caps & SET_PHY_ENA_LINK != 0);
            }
            Ok(false)
        }
        op::RESTART_AN => {
            let f = d.param_u8(RESTART_AN_FLAGS);
            if d.param_u8(0) != LPORT || f & RESTART_AN_LINK_RESTART == 0 {
                return Err(rc::EINVAL);
            }
            set_link_enabled(ctl, f & RESTART_AN_LINK_ENABLE != 0);
            Ok(false)
        }
        op::ADD_TXQS => add_txqs(s, ctl, d, buf),
        op::DIS_TXQS => dis_txqs(ctl, d, buf),
        _ => Err(rc::ENOSYS),
    }
}

/// `ice_aqc_get_link_status_data` (V1) for the modelled link: up, media
/// present, autonegotiation complete, the largest frame and the speed bit.
fn link_data(ctl: &Ctl) -> [u8; LINK_DATA_BYTES] {
    let mut b = [0u8; LINK_DATA_BYTES];
    let up = ctl.link_up();
    if ctl.phy.media {
        b[LINK_INFO] |= LINK_MEDIA_AVAILABLE | LINK_SIGNAL_DETECT;
        b[LINK_AN_INFO] |= LINK_QUALIFIED_MODULE;
    }
    if up {
        b[LINK_INFO] |= LINK_UP;
        b[LINK_AN_INFO] |= LINK_AN_COMPLETED;
        b[LINK_SPEED..LINK_SPEED + 2].copy_from_slice(&ctl.speed.aq_bit().to_le_bytes());
    }
    b[LINK_MAX_FRAME..LINK_MAX_FRAME + 2].copy_from_slice(&(MAX_FRAME as u16).to_le_bytes());
    b
}

/// Applies a PHY link enable/disable; a change is reported as a link event
/// when the driver asked for them.
fn set_link_enabled(ctl: &mut Ctl, on: bool) {
    let was = ctl.link_up();
    ctl.phy.link_enabled = on;
    link_changed(ctl, was);
}

/// Posts a link-status event if the link state moved and events are on.
pub(crate) fn link_changed(ctl: &mut Ctl, was_up: bool) {
    if ctl.link_up() != was_up && ctl.fw.lse {
        let data = link_data(ctl);
        post_arq_event(ctl, op::GET_LINK_STATUS, &data);
    }
}

/// Decodes `ice_aqc_vsi_props` with the published offsets: the valid
/// sections and, when `RXQ_MAP_VALID`, the contiguous map (PF-relative first
/// queue, count). Refuses what neither reference driver writes: a
/// non-contiguous map, no queues, queues beyond the PF's, or a TC0 queue
/// count (power of two) smaller than the queues mapped.
fn decode_vsi_props(buf: &[u8]) -> Result<(u16, Option<(u16, u16)>), u16> {
    if buf.len() < VSI_PROPS_BYTES {
        return Err(rc::EINVAL);
    }
    let valid = le16(buf, 0);
    if valid & VSI_PROP_RXQ_MAP_VALID == 0 {
        return Ok((valid, None));
    }
    let first_q = le16(buf, VSI_Q_MAPPING);
    let nq = le16(buf, VSI_Q_MAPPING + 2);
    let tc0 = le16(buf, VSI_TC_MAPPING);
    let pow = (tc0 & VSI_TC_Q_NUM_M) >> VSI_TC_Q_NUM_SHIFT;
    if le16(buf, VSI_MAPPING_FLAGS) != 0
        || nq == 0
        || first_q as u32 + nq as u32 > MODEL_QUEUES as u32
        || (1u32 << pow) < nq as u32
    {
        return Err(rc::EINVAL);
    }
    Ok((valid, Some((first_q, nq))))
}

/// The `q_opt_rss` byte when the add/update carries `Q_OPT_VALID`. The LUT
/// field's value 1 is no published type: EINVAL. The model computes the
/// Toeplitz scheme only, so it refuses the symmetric-Toeplitz, XOR and
/// Jenkins schemes (EINVAL) rather than accept a set-up it would not honour.
fn decode_q_opt(buf: &[u8], valid: u16) -> Result<Option<u8>, u16> {
    if valid & VSI_PROP_Q_OPT_VALID == 0 {
        return Ok(None);
    }
    let o = buf[VSI_Q_OPT_RSS];
    if o & Q_OPT_RSS_LUT_M == 1 || o >> Q_OPT_RSS_HASH_S != Q_OPT_RSS_HASH_TPLZ {
        return Err(rc::EINVAL);
    }
    Ok(Some(o))
}

/// The VSI a set/get RSS command names (`vsi_id` with VSI_VALID): no
/// valid bit is EINVAL; no VSI yet is ENOENT; a VSI that is not this PF's
/// is EACCES (what firmware answers for a VSI the function does not own:
/// the intel-wired-lan patch that widened `ICE_AQC_GSET_RSS_LUT_VSI_ID_M`
/// from 0x1FF to 0x3FF reports set_rss_lut failing with EACCES, "VSI
/// ownership issue", for VSI numbers cut to 9 bits).
fn rss_vsi(ctl: &Ctl, d: &FwDesc) -> Result<(), u16> {
    let id = d.param_u16(0);
    if id & RSS_VSI_VALID == 0 {
        return Err(rc::EINVAL);
    }
    match ctl.fw.vsi {
        None => Err(rc::ENOENT),
        Some(v) if v.num != id & RSS_VSI_ID_M => Err(rc::EACCES),
        Some(_) => Ok(()),
    }
}

/// set_rss_key (0x0B02): indirect with host data (`RD`), exactly the
/// 52-byte `ice_aqc_get_set_rss_keys` `ice_aq_set_rss_key` sends; any other
/// length is EINVAL.
fn set_rss_key(ctl: &mut Ctl, d: &mut FwDesc, buf: &mut [u8]) -> Result<bool, u16> {
    rss_vsi(ctl, d)?;
    if d.flags & AQF_BUF == 0 || d.flags & AQF_RD == 0 || buf.len() != RSS_KEYS_BYTES {
        return Err(rc::EINVAL);
    }
    let mut k = [0u8; RSS_KEYS_BYTES];
    k.copy_from_slice(buf);
    ctl.fw.rss.key = Some(k);
    Ok(true)
}

/// set_rss_lut (0x0B03): `flags` = LUT type (bits 1:0), size (3:2), global
/// LUT index (7:4). The buffer must be exactly the LUT: a VSI LUT 64 bytes
/// (size field 0), a PF LUT 128, 512 or 2048 (size 0, BIT(2), BIT(3)), as
/// `__ice_aq_get_set_rss_lut` sends them; type 3, size 3, a global index on
/// a non-global LUT, or a length that is not the size: EINVAL. A global LUT
/// is ENOENT: the model allocates none to its PF.
fn set_rss_lut(ctl: &mut Ctl, d: &mut FwDesc, buf: &mut [u8]) -> Result<bool, u16> {
    rss_vsi(ctl, d)?;
    if d.flags & AQF_BUF == 0 || d.flags & AQF_RD == 0 {
        return Err(rc::EINVAL);
    }
    let f = d.param_u16(RSS_LUT_FLAGS_PARAM);
    let ty = f & LUT_FLAGS_TYPE_M;
    let size = (f & LUT_FLAGS_SIZE_M) >> LUT_FLAGS_SIZE_S;
    if f >> 8 != 0 || (ty != LUT_TYPE_GLOBAL && f & 0xF0 != 0) {
        return Err(rc::EINVAL);
    }
    let want = match (ty, size) {
        (LUT_TYPE_VSI, 0) => LUT_SIZE_VSI,
        (LUT_TYPE_PF, 0) => 128,
        (LUT_TYPE_PF, 1) => LUT_SIZE_GLOBAL,
        (LUT_TYPE_PF, 2) => LUT_SIZE_PF,
        (LUT_TYPE_GLOBAL, 0 | 1) => return Err(rc::ENOENT),
        _ => return Err(rc::EINVAL),
    };
    if buf.len() != want {
        return Err(rc::EINVAL);
    }
    if ty == LUT_TYPE_VSI {
        ctl.fw.rss.vsi_lut = Some(buf.to_vec());
    } else {
        ctl.fw.rss.pf_lut = Some(buf.to_vec());
    }
    Ok(true)
}

/// Decodes the RLAN context the driver wrote through `QRX_CONTEXT` and the
/// `QRXFLXP_CNTXT` profile with the published tables, and enables the queue
/// only for what the reference drivers program: flex-NIC descriptors at
/// priority 3, 32-byte descriptors, a data buffer, and `rxmax` no larger
/// than `ICE_MAX_CHAINED_RX_BUFS` × the buffer.
fn rx_queue_cfg(ctl: &Ctl, q: u32) -> Option<RxRingCfg> {
    let mut img = [0u8; RLAN_BYTES];
    for i in 0..QRX_CONTEXT_DWORDS {
        let d = ctl.reg(qrx_context(i, q));
        img[i as usize * 4..i as usize * 4 + 4].copy_from_slice(&d.to_le_bytes());
    }
    let g = |n: &str| ctx_get(&img, &RLAN_FIELDS, n);
    let flxp = ctl.reg(qrxflxp_cntxt(q)) as u64;
    let rxdid = bits(flxp, QRXFLXP_RXDID_IDX) as u32;
    let prio = bits(flxp, QRXFLXP_RXDID_PRIO) as u32;
    let buf_len = (g("dbuf") as u32) << RLAN_DBUF_UNIT_SHIFT;
    let rxmax = g("rxmax") as u32;
    let ok = g("qlen") >= 8
        && buf_len > 0
        && g("dsize") == 1
        && g("base") != 0
        && rxdid == RXDID_FLEX_NIC
        && prio == RXDID_PRIO_EXPECTED
        && rxmax <= MAX_CHAINED_RX_BUFS * buf_len
        && ctx_stray_bits(&img, &RLAN_FIELDS).is_empty();
    ok.then_some(RxRingCfg {
        ring_iova: g("base") << RLAN_BASE_UNIT_SHIFT,
        qlen: g("qlen") as u32,
        buf_len,
        rxmax,
    })
}

/// Decodes a 22-byte TLAN context with the published table.
pub(crate) fn decode_tlan(img: &[u8]) -> TlanCtx {
    let g = |n: &str| ctx_get(img, &TLAN_FIELDS, n);
    TlanCtx {
        base: g("base"),
        port_num: g("port_num") as u8,
        cgd_num: g("cgd_num") as u8,
        pf_num: g("pf_num") as u8,
        vmvf_num: g("vmvf_num") as u16,
        vmvf_type: g("vmvf_type") as u8,
        src_vsi: g("src_vsi") as u16,
        tsyn_ena: g("tsyn_ena") == 1,
        alt_vlan: g("alt_vlan") == 1,
        wb_mode: g("wb_mode") == 1,
        qnum_in_func: g("qnum_in_func") as u16,
        qlen: g("qlen") as u16,
        quanta_prof_idx: g("quanta_prof_idx") as u8,
        tso_ena: g("tso_ena") == 1,
        tso_qnum: g("tso_qnum") as u16,
        legacy_int: g("legacy_int") == 1,
        drop_ena: g("drop_ena") == 1,
    }
}

/// Posts an event on the ARQ at its head, if the driver has a slot there.
fn post_arq_event(ctl: &mut Ctl, opcode: u16, data: &[u8]) {
    let len_reg = ctl.reg(PF_FW_ARQLEN);
    if len_reg & AQLEN_ENABLE == 0 {
        return;
    }
    let len = len_reg & AQLEN_LEN_M;
    let tail = ctl.reg(PF_FW_ARQT);
    if len == 0 || ctl.arq_head == tail {
        return; // no free slot: the event is lost, as on the part
    }
    let map = IovaMap::snapshot();
    let at = ring_base(ctl, PF_FW_ARQBAL, PF_FW_ARQBAH) + ctl.arq_head as u64 * 32;
    let mut raw = [0u8; 32];
    if !map.read(at, &mut raw) {
        return;
    }
    let posted = FwDesc::decode(&raw);
    let n = data.len().min(posted.datalen as usize);
    if !map.write(posted.buf_addr(), &data[..n]) {
        return;
    }
    let mut d = posted;
    d.opcode = opcode;
    d.datalen = n as u16;
    d.retval = 0;
    d.flags = AQF_DD | AQF_CMP | AQF_BUF;
    map.write(at, &d.encode());
    ctl.arq_head = (ctl.arq_head + 1) % len;
}

fn add_txqs(s: &Shared, ctl: &mut Ctl, d: &mut FwDesc, buf: &mut [u8]) -> Result<bool, u16> {
    let ngrps = d.param_u8(0) as usize;
    if ngrps == 0 {
        return Err(rc::EINVAL);
    }
    let Some(vsi) = ctl.fw.vsi else {
        return Err(rc::ENOENT);
    };
    // Validate everything before changing anything.
    let mut plan: Vec<(usize, usize, TlanCtx)> = Vec::new(); // (q, perq offset, ctx)
    let mut off = 0usize;
    for _ in 0..ngrps {
        if off + ADDQ_GRP_HDR > buf.len() {
            return Err(rc::EINVAL);
        }
        let parent = u32::from_le_bytes(buf[off..off + 4].try_into().expect("4"));
        let nq = buf[off + 4] as usize;
        if parent != TEID_QGROUP {
            return Err(rc::EINVAL);
        }
        off += ADDQ_GRP_HDR;
        for _ in 0..nq {
            if off + ADDQ_PERQ > buf.len() {
                return Err(rc::EINVAL);
            }
            let q = le16(buf, off + ADDQ_TXQ_ID) as usize;
            let img = &buf[off + ADDQ_CTX..off + ADDQ_CTX + TLAN_BYTES];
            if !ctx_stray_bits(img, &TLAN_FIELDS).is_empty() {
                return Err(rc::EINVAL);
            }
            let c = decode_tlan(img);
            if q >= MODEL_QUEUES as usize
                || q < vsi.first_q as usize
                || q >= (vsi.first_q + vsi.nq) as usize
            {
                return Err(rc::EINVAL);
            }
            if ctl.txq[q].cfg.is_some() || plan.iter().any(|p| p.0 == q) {
                return Err(rc::EEXIST);
            }
            let qlen_ok = c.qlen >= 8 && c.qlen <= 8192 && c.qlen & 7 == 0;
            if !qlen_ok
                || c.base == 0
                || c.vmvf_type as u64 != TLAN_VMVF_TYPE_PF
                || c.pf_num != PF_NUM
                || c.port_num != LPORT
                || c.src_vsi != vsi.num
                || c.tso_qnum as usize != q
            {
                return Err(rc::EINVAL);
            }
            plan.push((q, off, c));
            off += ADDQ_PERQ;
        }
    }
    for (q, o, c) in plan {
        ctl.txq[q] = TxQState {
            cfg: Some(TxRingCfg {
                ring_iova: c.ring_iova(),
                qlen: c.qlen as u32,
            }),
            ctx: Some(c),
            halted: false,
        };
        s.tx_tail[q].store(0, Ordering::Release);
        s.tx_head[q].store(0, Ordering::Release);
        let teid = TEID_LEAF_BASE + q as u32;
        buf[o + ADDQ_Q_TEID..o + ADDQ_Q_TEID + 4].copy_from_slice(&teid.to_le_bytes());
    }
    Ok(true)
}

fn dis_txqs(ctl: &mut Ctl, d: &mut FwDesc, buf: &mut [u8]) -> Result<bool, u16> {
    let n = d.param_u8(DISQ_NUM_ENTRIES_PARAM) as usize;
    let cmd = d.param_u8(DISQ_CMD_TYPE_PARAM);
    let timeout = (le16(&d.params, DISQ_VMVF_TIMEOUT_PARAM) >> DISQ_TIMEOUT_SHIFT) & DISQ_TIMEOUT_M;
    // What ice_aq_dis_lan_txq sends for a PF's own queues: no function
    // reset, FLUSH_PIPE, no SUBSEQ_CALL, timeout 5.
    if n == 0
        || cmd & DISQ_CMD_M != 0
        || cmd & DISQ_FLUSH_PIPE == 0
        || cmd & DISQ_SUBSEQ_CALL != 0
        || timeout != DISQ_TIMEOUT_EXPECTED
    {
        return Err(rc::EINVAL);
    }
    let mut qs = Vec::new();
    let mut off = 0usize;
    for _ in 0..n {
        if off + DISQ_ITEM_HDR > buf.len() {
            return Err(rc::EINVAL);
        }
        let parent = u32::from_le_bytes(buf[off..off + 4].try_into().expect("4"));
        let nq = buf[off + 4] as usize;
        if parent != TEID_QGROUP {
            return Err(rc::EINVAL);
        }
        off += DISQ_ITEM_HDR;
        for _ in 0..nq {
            if off + 2 > buf.len() {
                return Err(rc::EINVAL);
            }
            let q = u16::from_le_bytes([buf[off], buf[off + 1]]) as usize;
            if q >= MODEL_QUEUES as usize || ctl.txq[q].cfg.is_none() {
                return Err(rc::ENOENT);
            }
            qs.push(q);
            off += 2;
        }
        off = off.div_ceil(4) * 4;
    }
    for q in qs {
        ctl.txq[q] = TxQState::default();
    }
    Ok(true)
}
