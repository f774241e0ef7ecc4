//! The model's control plane: latched registers, PF reset, the admin-queue
//! firmware responder, and the malicious-driver event latch.
//!
//! Admin commands run synchronously when the driver writes `PF_FW_ATQT`
//! (as if the firmware answered instantly); the driver still sees the
//! ordinary protocol: descriptor write-back with `DD|CMP` (and `ERR` +
//! return code), cookie echoed, indirect buffer written back, then the head
//! register moves.

use super::{ModelConfig, RxRingCfg, Shared, TxRingCfg, MODEL_QUEUES};
use crate::adminq::{AqDesc, AqRc};
use crate::ctx::{tlan, RlanCtx, TlanCtx, RLAN_CTX_SIZE, TLAN_CTX_SIZE};
use crate::regs::*;
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
/// The PF's function number and logical port.
pub const PF_NUM: u8 = 0;
pub const LPORT: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsiState {
    pub num: u16,
    pub first_q: u16,
    pub nq: u16,
}

#[derive(Debug, Default)]
pub struct FwState {
    pub responding: bool,
    /// Fault injection: echo a wrong cookie on the next completion.
    pub bad_cookie_once: bool,
    pub vsi: Option<VsiState>,
    pub lse: bool,
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
            atq_head: 0,
            arq_head: 0,
            mac: cfg.mac,
            speed: cfg.speed,
        }
    }

    fn reg(&self, off: u32) -> u32 {
        self.regs.get(&off).copied().unwrap_or(0)
    }

    /// Records an MDD event for TX queue `q` (called by the DMA engine).
    pub fn raise_mdd(&mut self, q: u32, mal_type: u32) {
        if let Some(t) = self.txq.get_mut(q as usize) {
            t.halted = true;
        }
        self.mdd.push_back(
            GL_MDET_TX_TCLAN_VALID
                | (mal_type << GL_MDET_TX_TCLAN_MAL_TYPE_S)
                | ((PF_NUM as u32) << GL_MDET_TX_TCLAN_PF_NUM_S)
                | (q & GL_MDET_TX_TCLAN_QNUM_M),
        );
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
            // Write-to-clear: pops the latched event.
            ctl.mdd.pop_front();
        }
        PF_FW_ATQT => {
            ctl.regs.insert(off, v & PF_FW_AQ_PTR_M);
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
        PF_FW_ATQH => ctl.atq_head = v & PF_FW_AQ_PTR_M,
        PF_FW_ARQH => ctl.arq_head = v & PF_FW_AQ_PTR_M,
        o if (qrx_ctrl(0)..qrx_ctrl(MODEL_QUEUES as u32)).contains(&o) => {
            let q = (o - qrx_ctrl(0)) / 4;
            ctl.regs.insert(off, v & QRX_CTRL_QENA_REQ);
            let want = v & QRX_CTRL_QENA_REQ != 0;
            let cfg = if want {
                let mut b = [0u8; RLAN_CTX_SIZE];
                for i in 0..QRX_CONTEXT_DWORDS {
                    let d = ctl.reg(qrx_context(i, q));
                    b[i as usize * 4..i as usize * 4 + 4].copy_from_slice(&d.to_le_bytes());
                }
                let c = RlanCtx::unpack(&b);
                let ok = c.qlen >= 8 && c.dbuf > 0 && c.dsize && c.base != 0;
                ok.then_some(RxRingCfg {
                    ring_iova: c.base << crate::ctx::rlan::BASE_SHIFT,
                    qlen: c.qlen as u32,
                    buf_len: (c.dbuf as u32) << crate::ctx::rlan::DBUF_SHIFT,
                    rxmax: c.rxmax as u32,
                })
            } else {
                None
            };
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
    if len_reg & PF_FW_AQLEN_ENABLE == 0 || !ctl.fw.responding {
        return (false, None);
    }
    let len = len_reg & PF_FW_AQLEN_LEN_M;
    let tail = ctl.reg(PF_FW_ATQT);
    let base = ring_base(ctl, PF_FW_ATQBAL, PF_FW_ATQBAH);
    if len == 0 || tail >= len {
        return (false, None);
    }
    let map = IovaMap::snapshot();
    let mut head = ctl.atq_head;
    let mut sync = false;
    while head != tail {
        let at = base + head as u64 * AQ_DESC_SIZE as u64;
        let mut raw = [0u8; AQ_DESC_SIZE];
        if !map.read(at, &mut raw) {
            // The ring itself is unreachable: the firmware stalls (no head move).
            tracing::warn!(iova = at, "ice-model firmware: ATQ descriptor IOVA faults");
            break;
        }
        let mut d = AqDesc::from_bytes(&raw);
        s.admin_commands.fetch_add(1, Ordering::Relaxed);
        let mut buf = Vec::new();
        let mut rc = AqRc::Ok;
        if d.flags & AQ_FLAG_BUF != 0 {
            buf.resize(d.datalen as usize, 0);
            if d.datalen as usize > AQ_MAX_BUF_LEN || !map.read(d.buf_addr(), &mut buf) {
                rc = AqRc::BadAddr;
            }
        }
        if rc == AqRc::Ok {
            match execute(s, ctl, &mut d, &mut buf) {
                Ok(needs_sync) => sync |= needs_sync,
                Err(e) => rc = e,
            }
        }
        if d.flags & AQ_FLAG_BUF != 0 && rc != AqRc::BadAddr && !buf.is_empty() {
            map.write(d.buf_addr(), &buf);
        }
        d.retval = rc.to_u16();
        if std::mem::take(&mut ctl.fw.bad_cookie_once) {
            d.cookie_low = d.cookie_low.wrapping_add(1);
        }
        d.flags |= AQ_FLAG_DD | AQ_FLAG_CMP;
        if rc != AqRc::Ok {
            d.flags |= AQ_FLAG_ERR;
        }
        map.write(at, &d.to_bytes());
        head = (head + 1) % len;
    }
    (sync, Some(head))
}

/// Runs one admin command. `buf` is the indirect buffer (read from the host,
/// written back after). Returns whether queue state changed.
fn execute(s: &Shared, ctl: &mut Ctl, d: &mut AqDesc, buf: &mut [u8]) -> Result<bool, AqRc> {
    match d.opcode {
        opc::GET_VER => {
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
        opc::DRIVER_VER | opc::Q_SHUTDOWN => Ok(false),
        opc::CLEAR_PF_CFG => {
            ctl.fw.vsi = None;
            for t in &mut ctl.txq {
                *t = TxQState::default();
            }
            for r in &mut ctl.rxq {
                *r = RxQState::default();
            }
            Ok(true)
        }
        opc::LIST_FUNC_CAPS => {
            // ice_aqc_list_caps: count (le32) at 4; buffer of 32-byte elements.
            let caps: [(u16, u32, u32); 4] = [
                (caps::VSI, 1, 0),
                (caps::RXQS, MODEL_QUEUES as u32, 0),
                (caps::TXQS, MODEL_QUEUES as u32, 0),
                (caps::MAX_MTU, MAX_FRAME_SIZE as u32, 0),
            ];
            let need = caps.len() * CAPS_ELEM_SIZE;
            d.set_param_u32(LIST_CAPS_COUNT_OFF, caps.len() as u32);
            if buf.len() < need {
                return Err(AqRc::Enomem);
            }
            buf.fill(0);
            for (i, (id, number, phys)) in caps.iter().enumerate() {
                let e = &mut buf[i * CAPS_ELEM_SIZE..(i + 1) * CAPS_ELEM_SIZE];
                e[0..2].copy_from_slice(&id.to_le_bytes());
                e[2] = 1; // major_ver
                e[4..8].copy_from_slice(&number.to_le_bytes());
                e[12..16].copy_from_slice(&phys.to_le_bytes());
            }
            Ok(false)
        }
        opc::MANAGE_MAC_READ => {
            if buf.len() < MAC_READ_RESP_SIZE {
                return Err(AqRc::Enomem);
            }
            d.set_param_u16(0, MAN_MAC_LAN_ADDR_VALID);
            d.set_param_u8(4, 1); // num_addr
            buf.fill(0);
            buf[0] = LPORT;
            buf[1] = 0; // ICE_AQC_MAN_MAC_ADDR_TYPE_LAN
            buf[2..8].copy_from_slice(&ctl.mac.0);
            Ok(false)
        }
        opc::GET_SW_CFG => {
            let mut elems: Vec<[u8; SW_CFG_ELEM_SIZE]> = Vec::new();
            let mut e = [0u8; SW_CFG_ELEM_SIZE];
            e[0..2].copy_from_slice(
                &((LPORT as u16) | (SW_CONF_RESP_PHYS_PORT << SW_CONF_RESP_TYPE_S)).to_le_bytes(),
            );
            e[4..6].copy_from_slice(&(PF_NUM as u16).to_le_bytes());
            elems.push(e);
            if let Some(v) = ctl.fw.vsi {
                let mut e = [0u8; SW_CFG_ELEM_SIZE];
                e[0..2].copy_from_slice(
                    &(v.num | (SW_CONF_RESP_VSI << SW_CONF_RESP_TYPE_S)).to_le_bytes(),
                );
                e[4..6].copy_from_slice(&(PF_NUM as u16).to_le_bytes());
                elems.push(e);
            }
            if buf.len() < elems.len() * SW_CFG_ELEM_SIZE {
                return Err(AqRc::Enomem);
            }
            buf.fill(0);
            for (i, e) in elems.iter().enumerate() {
                buf[i * SW_CFG_ELEM_SIZE..(i + 1) * SW_CFG_ELEM_SIZE].copy_from_slice(e);
            }
            d.set_param_u16(2, 0); // element: 0 = no more
            d.set_param_u16(4, elems.len() as u16);
            Ok(false)
        }
        opc::GET_DFLT_TOPO => {
            // params: port_num (u8), num_branches (u8, response).
            if d.param_u8(0) != LPORT {
                return Err(AqRc::Einval);
            }
            let nodes: [(u32, u32, u8); 5] = [
                (0, TEID_ROOT, elem_type::ROOT_PORT),
                (TEID_ROOT, TEID_TC0, elem_type::TC),
                (TEID_TC0, TEID_SE1, elem_type::SE_GENERIC),
                (TEID_SE1, TEID_SE2, elem_type::SE_GENERIC),
                (TEID_SE2, TEID_QGROUP, elem_type::SE_GENERIC),
            ];
            let need = TOPO_GRP_HDR_SIZE + nodes.len() * TXSCHED_ELEM_DATA_SIZE;
            if buf.len() < need {
                return Err(AqRc::Enomem);
            }
            buf.fill(0);
            buf[0..4].copy_from_slice(&0u32.to_le_bytes()); // hdr.parent_teid
            buf[4..6].copy_from_slice(&(nodes.len() as u16).to_le_bytes());
            for (i, (parent, teid, ty)) in nodes.iter().enumerate() {
                let o = TOPO_GRP_HDR_SIZE + i * TXSCHED_ELEM_DATA_SIZE;
                buf[o..o + 4].copy_from_slice(&parent.to_le_bytes());
                buf[o + 4..o + 8].copy_from_slice(&teid.to_le_bytes());
                buf[o + 8] = *ty;
                buf[o + 9] = ELEM_VALID_GENERIC | ELEM_VALID_CIR | ELEM_VALID_EIR;
            }
            d.set_param_u8(1, 1); // one branch
            Ok(false)
        }
        opc::ADD_VSI | opc::UPDATE_VSI => {
            // ice_aqc_add_get_update_free_vsi: vsi_num le16 @0, cmd_flags le16 @2,
            // vf_id @4, vsi_flags @6; buffer: ice_aqc_vsi_props.
            if buf.len() < VSI_PROPS_SIZE {
                return Err(AqRc::Einval);
            }
            let valid = u16::from_le_bytes([buf[0], buf[1]]);
            let mut first_q = 0u16;
            let mut nq = 0u16;
            if valid & VSI_PROP_RXQ_MAP_VALID != 0 {
                let o = VSI_PROPS_Q_MAPPING_OFF;
                first_q = u16::from_le_bytes([buf[o], buf[o + 1]]);
                nq = u16::from_le_bytes([buf[o + 2], buf[o + 3]]);
                if nq == 0 || first_q as u32 + nq as u32 > MODEL_QUEUES as u32 {
                    return Err(AqRc::Einval);
                }
            }
            if d.opcode == opc::ADD_VSI {
                if d.param_u8(6) != AQ_VSI_TYPE_PF {
                    return Err(AqRc::Einval);
                }
                if ctl.fw.vsi.is_some() {
                    return Err(AqRc::Enospc);
                }
                ctl.fw.vsi = Some(VsiState {
                    num: PF_VSI_NUM,
                    first_q,
                    nq,
                });
            } else {
                let Some(v) = ctl.fw.vsi.as_mut() else {
                    return Err(AqRc::Enoent);
                };
                let n = d.param_u16(0);
                if n & AQ_VSI_IS_VALID == 0 || n & AQ_VSI_NUM_M != v.num {
                    return Err(AqRc::Enoent);
                }
                if valid & VSI_PROP_RXQ_MAP_VALID != 0 {
                    v.first_q = first_q;
                    v.nq = nq;
                }
            }
            // response: vsi_num @0, ext_status @2, vsi_used @4, vsi_free @6.
            let mut p = [0u8; 16];
            p[8..16].copy_from_slice(&d.params[8..16]);
            d.params = p;
            d.set_param_u16(0, PF_VSI_NUM);
            d.set_param_u16(4, 1);
            d.set_param_u16(6, 0);
            Ok(false)
        }
        opc::GET_LINK_STATUS => {
            if d.param_u8(0) != LPORT {
                return Err(AqRc::Einval);
            }
            let lse = d.param_u16(2) & AQ_LSE_ENA;
            let data = link_data(ctl);
            if !buf.is_empty() {
                let n = buf.len().min(data.len());
                buf[..n].copy_from_slice(&data[..n]);
            }
            if lse == AQ_LSE_ENA {
                ctl.fw.lse = true;
                // The firmware reports the current state as the first event.
                post_arq_event(ctl, opc::GET_LINK_STATUS, &data);
            } else if lse != 0 {
                ctl.fw.lse = false;
            }
            Ok(false)
        }
        opc::ADD_TXQS => add_txqs(s, ctl, d, buf),
        opc::DIS_TXQS => dis_txqs(ctl, d, buf),
        _ => Err(AqRc::Enosys),
    }
}

fn link_data(ctl: &Ctl) -> [u8; LINK_STATUS_DATALEN] {
    let mut b = [0u8; LINK_STATUS_DATALEN];
    b[LINK_DATA_INFO_OFF] = AQ_LINK_UP;
    b[LINK_DATA_MAX_FRAME_OFF..LINK_DATA_MAX_FRAME_OFF + 2]
        .copy_from_slice(&(MAX_FRAME_SIZE as u16).to_le_bytes());
    b[LINK_DATA_SPEED_OFF..LINK_DATA_SPEED_OFF + 2]
        .copy_from_slice(&ctl.speed.aq_bit().to_le_bytes());
    b
}

/// Posts an event on the ARQ at its head, if the driver has a slot there.
fn post_arq_event(ctl: &mut Ctl, opcode: u16, data: &[u8]) {
    let len_reg = ctl.reg(PF_FW_ARQLEN);
    if len_reg & PF_FW_AQLEN_ENABLE == 0 {
        return;
    }
    let len = len_reg & PF_FW_AQLEN_LEN_M;
    let tail = ctl.reg(PF_FW_ARQT);
    if len == 0 || ctl.arq_head == tail {
        return; // no free slot: the event is lost, as on the part
    }
    let map = IovaMap::snapshot();
    let at = ring_base(ctl, PF_FW_ARQBAL, PF_FW_ARQBAH) + ctl.arq_head as u64 * 32;
    let mut raw = [0u8; AQ_DESC_SIZE];
    if !map.read(at, &mut raw) {
        return;
    }
    let posted = AqDesc::from_bytes(&raw);
    let n = data.len().min(posted.datalen as usize);
    if !map.write(posted.buf_addr(), &data[..n]) {
        return;
    }
    let mut d = posted;
    d.opcode = opcode;
    d.datalen = n as u16;
    d.retval = 0;
    d.flags = AQ_FLAG_DD | AQ_FLAG_CMP | AQ_FLAG_BUF;
    map.write(at, &d.to_bytes());
    ctl.arq_head = (ctl.arq_head + 1) % len;
}

fn add_txqs(s: &Shared, ctl: &mut Ctl, d: &mut AqDesc, buf: &mut [u8]) -> Result<bool, AqRc> {
    let ngrps = d.param_u8(0) as usize;
    if ngrps == 0 {
        return Err(AqRc::Einval);
    }
    let Some(vsi) = ctl.fw.vsi else {
        return Err(AqRc::Enoent);
    };
    // Validate everything before changing anything.
    let mut plan: Vec<(usize, usize, TlanCtx)> = Vec::new(); // (q, perq offset, ctx)
    let mut off = 0usize;
    for _ in 0..ngrps {
        if off + ADD_TXQ_GRP_HDR_SIZE > buf.len() {
            return Err(AqRc::Einval);
        }
        let parent = u32::from_le_bytes(buf[off..off + 4].try_into().expect("4"));
        let nq = buf[off + 4] as usize;
        if parent != TEID_QGROUP {
            return Err(AqRc::Einval);
        }
        off += ADD_TXQ_GRP_HDR_SIZE;
        for _ in 0..nq {
            if off + ADD_TXQ_PERQ_SIZE > buf.len() {
                return Err(AqRc::Einval);
            }
            let q = u16::from_le_bytes([buf[off], buf[off + 1]]) as usize;
            let mut img = [0u8; TLAN_CTX_SIZE];
            img.copy_from_slice(&buf[off + 8..off + 8 + TLAN_CTX_SIZE]);
            let c = TlanCtx::unpack(&img);
            if q >= MODEL_QUEUES as usize
                || q < vsi.first_q as usize
                || q >= (vsi.first_q + vsi.nq) as usize
            {
                return Err(AqRc::Einval);
            }
            if ctl.txq[q].cfg.is_some() || plan.iter().any(|p| p.0 == q) {
                return Err(AqRc::Eexist);
            }
            let qlen_ok = c.qlen >= 8 && c.qlen <= 8192 && c.qlen & 7 == 0;
            if !qlen_ok
                || c.base == 0
                || c.vmvf_type as u64 != tlan::VMVF_TYPE_PF
                || c.pf_num != PF_NUM
                || c.port_num != LPORT
                || c.src_vsi != vsi.num
            {
                return Err(AqRc::Einval);
            }
            plan.push((q, off, c));
            off += ADD_TXQ_PERQ_SIZE;
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
        buf[o + 4..o + 8].copy_from_slice(&teid.to_le_bytes());
    }
    Ok(true)
}

fn dis_txqs(ctl: &mut Ctl, d: &mut AqDesc, buf: &mut [u8]) -> Result<bool, AqRc> {
    let n = d.param_u8(1) as usize;
    if n == 0 {
        return Err(AqRc::Einval);
    }
    let mut qs = Vec::new();
    let mut off = 0usize;
    for _ in 0..n {
        if off + DIS_TXQ_ITEM_HDR_SIZE > buf.len() {
            return Err(AqRc::Einval);
        }
        let parent = u32::from_le_bytes(buf[off..off + 4].try_into().expect("4"));
        let nq = buf[off + 4] as usize;
        if parent != TEID_QGROUP {
            return Err(AqRc::Einval);
        }
        off += DIS_TXQ_ITEM_HDR_SIZE;
        for _ in 0..nq {
            if off + 2 > buf.len() {
                return Err(AqRc::Einval);
            }
            let q = u16::from_le_bytes([buf[off], buf[off + 1]]) as usize;
            if q >= MODEL_QUEUES as usize || ctl.txq[q].cfg.is_none() {
                return Err(AqRc::Enoent);
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
