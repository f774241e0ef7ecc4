//! The model's own reading of the published E810 definitions.
//!
//! Written out as literals from the published headers, independently of the
//! driver's [`crate::regs`] and [`crate::ctx`]: the model decodes what the
//! driver writes with these tables, so a wrong driver constant shows up as a
//! failed command, a refused queue or a failed round-trip test instead of
//! passing silently. Nothing here may be derived from `crate::regs`.
//!
//! Sources, as in `regs.rs`: `base/F:N` is
//! `DPDK/dpdk:drivers/net/intel/ice/base/F` line N at commit `38f72e500b`;
//! `linux:F (SYMBOL)` is `torvalds/linux:drivers/net/ethernet/intel/ice/F`.

#![allow(dead_code)]

// --- BAR0 register offsets (base/ice_hw_autogen.h) -------------------------

/// base/ice_hw_autogen.h:1009 (`QTX_COMM_DBELL`).
pub const fn qtx_comm_dbell(q: u32) -> u32 {
    0x002C_0000 + q * 4
}
/// base/ice_hw_autogen.h:1021 (`QTX_COMM_HEAD`).
pub const fn qtx_comm_head(q: u32) -> u32 {
    0x000E_0000 + q * 4
}
/// base/ice_hw_autogen.h:5207 (`QRX_TAIL`).
pub const fn qrx_tail(q: u32) -> u32 {
    0x0029_0000 + q * 4
}
/// base/ice_hw_autogen.h:5191 (`QRX_CTRL`).
pub const fn qrx_ctrl(q: u32) -> u32 {
    0x0012_0000 + q * 4
}
/// base/ice_hw_autogen.h:5194 / :5198 (`QRX_CTRL_QENA_REQ_M` BIT(0), `QENA_STAT_M` BIT(2)).
pub const QRX_CTRL_QENA_REQ: u32 = 0x1;
pub const QRX_CTRL_QENA_STAT: u32 = 0x4;
/// base/ice_hw_autogen.h:5187 (`QRX_CONTEXT(_i, _QRX)`).
pub const fn qrx_context(i: u32, q: u32) -> u32 {
    0x0028_0000 + i * 0x2000 + q * 4
}
/// base/ice_lan_tx_rx.h:933 (`ICE_RXQ_CTX_SIZE_DWORDS`).
pub const QRX_CONTEXT_DWORDS: u32 = 8;
/// base/ice_hw_autogen.h:3148 (`QRXFLXP_CNTXT`).
pub const fn qrxflxp_cntxt(q: u32) -> u32 {
    0x0048_0000 + q * 4
}
/// base/ice_hw_autogen.h:3150–3155: RXDID_IDX 6@0, RXDID_PRIO 3@8, TS 1@11.
pub const QRXFLXP_RXDID_IDX: (u32, u32) = (0, 6);
pub const QRXFLXP_RXDID_PRIO: (u32, u32) = (8, 3);
/// ice/ice_rxtx.c:418, linux:ice_base.c `ice_setup_rx_ctx`: both write priority 3.
pub const RXDID_PRIO_EXPECTED: u32 = 3;

pub const PF_FW_ATQBAL: u32 = 0x0008_0000; // base/ice_hw_autogen.h:1110
pub const PF_FW_ATQBAH: u32 = 0x0008_0100; // :1107
pub const PF_FW_ATQLEN: u32 = 0x0008_0200; // :1118
pub const PF_FW_ATQH: u32 = 0x0008_0300; // :1115
pub const PF_FW_ATQT: u32 = 0x0008_0400; // :1129
pub const PF_FW_ARQBAL: u32 = 0x0008_0080; // :1085
pub const PF_FW_ARQBAH: u32 = 0x0008_0180; // :1082
pub const PF_FW_ARQLEN: u32 = 0x0008_0280; // :1093
pub const PF_FW_ARQH: u32 = 0x0008_0380; // :1090
pub const PF_FW_ARQT: u32 = 0x0008_0480; // :1104
/// base/ice_hw_autogen.h:1120 (LEN 10@0), :1122/1124/1126/1128 (VFE 28, OVFL 29, CRIT 30, ENABLE 31).
pub const AQLEN_LEN_M: u32 = 0x3FF;
pub const AQLEN_VFE: u32 = 0x1000_0000;
pub const AQLEN_OVFL: u32 = 0x2000_0000;
pub const AQLEN_CRIT: u32 = 0x4000_0000;
pub const AQLEN_ENABLE: u32 = 0x8000_0000;
/// base/ice_hw_autogen.h:1117 (`PF_FW_ATQH_ATQH_M` 10 bits).
pub const AQ_PTR_M: u32 = 0x3FF;

pub const PF_FUNC_RID: u32 = 0x0009_E880; // base/ice_hw_autogen.h:6205
pub const PFGEN_CTRL: u32 = 0x0009_1000; // :3581
pub const PFGEN_CTRL_PFSWR: u32 = 0x1; // :3583
pub const GLGEN_RSTAT: u32 = 0x000B_8188; // :3528
pub const GLNVM_ULD: u32 = 0x000B_6008; // :5816
/// base/ice_common.c:1271 (`ICE_RESET_DONE_MASK`) from the bits at
/// base/ice_hw_autogen.h:5818–5830: 0,1,3,4,5,8,9.
pub const GLNVM_ULD_RESET_DONE: u32 = 0x033B;

/// MDD latches: base/ice_hw_autogen.h:5461–5519.
pub const GL_MDET_TX_PQM: u32 = 0x002D_2E00;
pub const GL_MDET_TX_TCLAN: u32 = 0x000F_C068;
pub const GL_MDET_TX_TDPU: u32 = 0x0004_9350;
pub const GL_MDET_RX: u32 = 0x0029_4C00;
pub const PF_MDET_TX_PQM: u32 = 0x002D_2C80;
pub const PF_MDET_TX_TCLAN: u32 = 0x000F_C000;
pub const PF_MDET_TX_TDPU: u32 = 0x0004_0800;
pub const PF_MDET_RX: u32 = 0x0029_4280;
/// TCLAN/TDPU/RX layout: QNUM 15@0, VF_NUM 8@15, PF_NUM 3@23, MAL_TYPE 5@26, VALID 1@31.
pub const fn gl_mdet_value(q: u32, pf: u32, mal_type: u32) -> u32 {
    0x8000_0000 | ((mal_type & 0x1F) << 26) | ((pf & 0x7) << 23) | (q & 0x7FFF)
}
/// PQM layout: PF_NUM 3@0, VF_NUM 8@4, QNUM 14@12, MAL_TYPE 5@26, VALID 1@31.
pub const fn gl_mdet_pqm_value(q: u32, pf: u32, mal_type: u32) -> u32 {
    0x8000_0000 | ((mal_type & 0x1F) << 26) | ((q & 0x3FFF) << 12) | (pf & 0x7)
}

/// base/ice_hw_autogen.h:7833, :8125 (`GLPRT_GOTCL`, `GLPRT_UPTCL`, 8 bytes per port).
pub const fn glprt_gotcl(port: u32) -> u32 {
    0x0038_0B40 + port * 8
}
pub const fn glprt_uptcl(port: u32) -> u32 {
    0x0038_11C0 + port * 8
}
/// base/ice_hw_autogen.h:8273, :8319, :8303 (`GLV_GOTCL`, `GLV_UPTCL`, `GLV_TEPC`).
pub const fn glv_gotcl(vsi: u32) -> u32 {
    0x0030_0000 + vsi * 8
}
pub const fn glv_uptcl(vsi: u32) -> u32 {
    0x0030_A000 + vsi * 8
}
pub const fn glv_tepc(vsi: u32) -> u32 {
    0x0031_2000 + vsi * 4
}
/// linux:ice_hw_autogen.h (`GLV_RDPC(_i)` 0x00294C04 + 4·i, 32 bits).
pub const fn glv_rdpc(vsi: u32) -> u32 {
    0x0029_4C04 + vsi * 4
}
pub const STAT40_MASK: u64 = 0xFF_FFFF_FFFF;

// --- TX descriptor (base/ice_lan_tx_rx.h:1010–1112) -------------------------

/// QW1: DTYPE 4@0, CMD 12@4, OFFSET 18@16, TX_BUF_SZ 14@34, L2TAG1 16@48.
pub const TXD_DTYPE: (u32, u32) = (0, 4);
pub const TXD_CMD: (u32, u32) = (4, 12);
pub const TXD_OFFSET: (u32, u32) = (16, 18);
pub const TXD_BUF_SZ: (u32, u32) = (34, 14);
pub const TXD_L2TAG1: (u32, u32) = (48, 16);
pub const DTYPE_DATA: u64 = 0x0;
pub const DTYPE_CTX: u64 = 0x1;
pub const DTYPE_DESC_DONE: u64 = 0xF;
/// CMD bits: EOP 0x1, RS 0x2, IL2TAG1 0x8 (base/ice_lan_tx_rx.h:1027–1030).
pub const CMD_EOP: u64 = 0x1;
pub const CMD_RS: u64 = 0x2;
pub const CMD_IL2TAG1: u64 = 0x8;
/// Context descriptor QW1 CMD 7@4 (base/ice_lan_tx_rx.h:1088); IL2TAG2 0x04 (:1112).
pub const CTX_CMD: (u32, u32) = (4, 7);
pub const CTX_CMD_IL2TAG2: u64 = 0x04;
/// linux:ice_txrx.h `ICE_MAX_BUF_TXD` 8; `ICE_MIN_TX_LEN` 17.
pub const MAX_BUF_TXD: usize = 8;
pub const TX_MIN_LEN: usize = 17;
/// base/ice_adminq_cmd.h:18 (`ICE_AQ_SET_MAC_FRAME_SIZE_MAX`).
pub const MAX_FRAME: usize = 9728;

/// Reads field `(lsb, width)` of a 64-bit word.
pub const fn bits(v: u64, f: (u32, u32)) -> u64 {
    (v >> f.0) & ((1u64 << f.1) - 1)
}

// --- RX flex descriptor (base/ice_lan_tx_rx.h:495–515, :858, :881–899) -----

pub const RX_DESC_BYTES: usize = 32;
/// `ice_32b_rx_flex_desc_nic`: rxdid byte 0, pkt_len bytes 4–5 (14 bits),
/// status_error0 bytes 8–9.
pub const RX_RXDID_BYTE: usize = 0;
pub const RX_PKT_LEN_BYTE: usize = 4;
pub const RX_PKT_LEN_M: u16 = 0x3FFF;
pub const RX_STATUS0_BYTE: usize = 8;
/// `enum ice_rx_flex_desc_status_error_0_bits`: DD 0, EOF 1, …, IPV6EXADD 9, RXE 10.
pub const RX_STATUS0_DD_BIT: u32 = 0;
pub const RX_STATUS0_EOF_BIT: u32 = 1;
pub const RX_STATUS0_IPV6EXADD_BIT: u32 = 9;
pub const RX_STATUS0_RXE_BIT: u32 = 10;
/// base/ice_lan_tx_rx.h:749 (`ICE_RXDID_FLEX_NIC`).
pub const RXDID_FLEX_NIC: u32 = 2;
/// linux:ice_txrx.h `ICE_MAX_CHAINED_RX_BUFS` 5.
pub const MAX_CHAINED_RX_BUFS: u32 = 5;

// --- Queue contexts (base/ice_common.c:1459–1478, :1559–1587) --------------

/// One context field as the published `ICE_CTX_STORE(…, width, lsb)` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtxField {
    pub name: &'static str,
    pub width: u32,
    pub lsb: u32,
}

const fn cf(name: &'static str, width: u32, lsb: u32) -> CtxField {
    CtxField { name, width, lsb }
}

/// `ice_tlan_ctx_info[]` (base/ice_common.c:1559–1587), width@lsb. The
/// hardware-internal `int_q_state` (122@171) and E830 `gsc_ena` are left out:
/// the driver must never write them.
pub const TLAN_FIELDS: [CtxField; 27] = [
    cf("base", 57, 0),
    cf("port_num", 3, 57),
    cf("cgd_num", 5, 60),
    cf("pf_num", 3, 65),
    cf("vmvf_num", 10, 68),
    cf("vmvf_type", 2, 78),
    cf("src_vsi", 10, 80),
    cf("tsyn_ena", 1, 90),
    cf("internal_usage_flag", 1, 91),
    cf("alt_vlan", 1, 92),
    cf("cpuid", 8, 93),
    cf("wb_mode", 1, 101),
    cf("tphrd_desc", 1, 102),
    cf("tphrd", 1, 103),
    cf("tphwr_desc", 1, 104),
    cf("cmpq_id", 9, 105),
    cf("qnum_in_func", 14, 114),
    cf("itr_notification_mode", 1, 128),
    cf("adjust_prof_id", 6, 129),
    cf("qlen", 13, 135),
    cf("quanta_prof_idx", 4, 148),
    cf("tso_ena", 1, 152),
    cf("tso_qnum", 11, 153),
    cf("legacy_int", 1, 164),
    cf("drop_ena", 1, 165),
    cf("cache_prof_idx", 2, 166),
    cf("pkt_shaper_prof_idx", 3, 168),
];
/// `txq_ctx[22]` in `ice_aqc_add_txqs_perq` (base/ice_adminq_cmd.h:2889).
pub const TLAN_BYTES: usize = 22;
/// base/ice_lan_tx_rx.h:1173 (`ICE_TLAN_CTX_VMVF_TYPE_PF`).
pub const TLAN_VMVF_TYPE_PF: u64 = 2;

/// `ice_rlan_ctx_info[]` (base/ice_common.c:1459–1478), width@lsb.
pub const RLAN_FIELDS: [CtxField; 20] = [
    cf("head", 13, 0),
    cf("cpuid", 8, 13),
    cf("base", 57, 32),
    cf("qlen", 13, 89),
    cf("dbuf", 7, 102),
    cf("hbuf", 5, 109),
    cf("dtype", 2, 114),
    cf("dsize", 1, 116),
    cf("crcstrip", 1, 117),
    cf("l2tsel", 1, 119),
    cf("hsplit_0", 4, 120),
    cf("hsplit_1", 2, 124),
    cf("showiv", 1, 127),
    cf("rxmax", 14, 174),
    cf("tphrdesc_ena", 1, 193),
    cf("tphwdesc_ena", 1, 194),
    cf("tphdata_ena", 1, 195),
    cf("tphhead_ena", 1, 196),
    cf("lrxqthresh", 3, 198),
    cf("prefena", 1, 201),
];
/// base/ice_lan_tx_rx.h:934 (`ICE_RXQ_CTX_SZ` 32).
pub const RLAN_BYTES: usize = 32;
/// base/ice_lan_tx_rx.h:951, :954 (`ICE_RLAN_BASE_S` 7, `ICE_RLAN_CTX_DBUF_S` 7).
pub const RLAN_BASE_UNIT_SHIFT: u32 = 7;
pub const RLAN_DBUF_UNIT_SHIFT: u32 = 7;
/// TLAN base is in 128-byte units as well (linux:ice_base.c `ice_setup_tx_ctx`:
/// `ring->dma >> ICE_TLAN_CTX_BASE_S`, 7).
pub const TLAN_BASE_UNIT_SHIFT: u32 = 7;

/// Reads the named field out of a packed context image.
pub fn ctx_get(img: &[u8], fields: &[CtxField], name: &str) -> u64 {
    let f = fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("context field {name} is not in the published table"));
    let mut v = 0u64;
    for i in 0..f.width.min(64) {
        let bit = (f.lsb + i) as usize;
        if (img[bit / 8] >> (bit % 8)) & 1 == 1 {
            v |= 1u64 << i;
        }
    }
    v
}

/// Bits set in `img` that no published field covers (what a driver must never write).
pub fn ctx_stray_bits(img: &[u8], fields: &[CtxField]) -> Vec<usize> {
    let mut out = Vec::new();
    for bit in 0..img.len() * 8 {
        if (img[bit / 8] >> (bit % 8)) & 1 == 1
            && !fields
                .iter()
                .any(|f| (f.lsb as usize..(f.lsb + f.width) as usize).contains(&bit))
        {
            out.push(bit);
        }
    }
    out
}

// --- Admin queue (base/ice_adminq_cmd.h) -----------------------------------

/// `struct ice_aq_desc` (:3285): flags 0, opcode 2, datalen 4, retval 6,
/// cookie_high 8, cookie_low 12, params 16..32 (addr_high 24, addr_low 28).
pub const AQD_FLAGS: usize = 0;
pub const AQD_OPCODE: usize = 2;
pub const AQD_DATALEN: usize = 4;
pub const AQD_RETVAL: usize = 6;
pub const AQD_COOKIE_H: usize = 8;
pub const AQD_COOKIE_L: usize = 12;
pub const AQD_PARAMS: usize = 16;
/// Flags (:3421–3431).
pub const AQF_DD: u16 = 0x0001;
pub const AQF_CMP: u16 = 0x0002;
pub const AQF_ERR: u16 = 0x0004;
pub const AQF_LB: u16 = 0x0200;
pub const AQF_RD: u16 = 0x0400;
pub const AQF_BUF: u16 = 0x1000;
pub const AQF_SI: u16 = 0x2000;
/// base/ice_controlq.h:11.
pub const AQ_MAX_BUF: usize = 4096;

/// Opcodes (`enum ice_adminq_opc`, :3470–3652).
pub mod op {
    pub const GET_VER: u16 = 0x0001;
    pub const DRIVER_VER: u16 = 0x0002;
    pub const Q_SHUTDOWN: u16 = 0x0003;
    pub const LIST_FUNC_CAPS: u16 = 0x000A;
    pub const LIST_DEV_CAPS: u16 = 0x000B;
    pub const MANAGE_MAC_READ: u16 = 0x0107;
    pub const GET_SW_CFG: u16 = 0x0200;
    pub const ADD_VSI: u16 = 0x0210;
    pub const UPDATE_VSI: u16 = 0x0211;
    pub const CLEAR_PF_CFG: u16 = 0x02A4;
    pub const GET_DFLT_TOPO: u16 = 0x0400;
    pub const GET_PHY_CAPS: u16 = 0x0600;
    pub const SET_PHY_CFG: u16 = 0x0601;
    pub const RESTART_AN: u16 = 0x0605;
    pub const GET_LINK_STATUS: u16 = 0x0607;
    pub const ADD_TXQS: u16 = 0x0C30;
    pub const DIS_TXQS: u16 = 0x0C31;
    /// linux:ice_adminq_cmd.h (`ice_aqc_opc_set_rss_key`, `_set_rss_lut`).
    pub const SET_RSS_KEY: u16 = 0x0B02;
    pub const SET_RSS_LUT: u16 = 0x0B03;
}

/// `enum ice_aq_err` (:3434–3464): the codes the model returns.
pub mod rc {
    pub const OK: u16 = 0;
    pub const ENOENT: u16 = 2;
    pub const ENOMEM: u16 = 9;
    pub const EACCES: u16 = 10;
    pub const EEXIST: u16 = 13;
    pub const EINVAL: u16 = 14;
    pub const ENOSPC: u16 = 16;
    pub const ENOSYS: u16 = 17;
    pub const BAD_ADDR: u16 = 20;
}

/// `struct ice_aqc_q_shutdown` (:58): `driver_unloading` le32 at param 0, BIT(0) (:60).
pub const QSHUT_DRIVER_UNLOADING: u32 = 0x1;

/// `struct ice_aqc_list_caps` (:99): count le32 at param 4.
/// `struct ice_aqc_list_caps_elem` (:109): cap @0, major @2, minor @3,
/// number @4, logical_id @8, phys_id @12; 32 bytes.
pub const CAPS_COUNT_PARAM: usize = 4;
pub const CAPS_ELEM: usize = 32;
pub const CAPS_ELEM_NUMBER: usize = 4;
pub const CAPS_ELEM_PHYS_ID: usize = 12;
/// `ICE_AQC_CAPS_*` (:111–120).
pub const CAP_VALID_FUNCTIONS: u16 = 0x0005;
pub const CAP_VSI: u16 = 0x0017;
pub const CAP_RXQS: u16 = 0x0041;
pub const CAP_TXQS: u16 = 0x0042;
pub const CAP_MAX_MTU: u16 = 0x0047;
/// linux:ice_adminq_cmd.h (`ICE_AQC_CAPS_RSS` 0x0040): number = RSS table
/// size, logical_id = entry width (linux:ice_common.c `ice_parse_common_caps`).
pub const CAP_RSS: u16 = 0x0040;
pub const CAPS_ELEM_LOGICAL_ID: usize = 8;

// --- RSS (linux:ice_adminq_cmd.h, ice_common.c) ---------------------------

/// `struct ice_aqc_get_set_rss_key` / `_lut`: `vsi_id` le16 at param 0,
/// VSI_VALID BIT(15), VSI_ID mask 0x3FF; `_lut` has `flags` le16 at param 2.
pub const RSS_VSI_VALID: u16 = 0x8000;
pub const RSS_VSI_ID_M: u16 = 0x3FF;
pub const RSS_LUT_FLAGS_PARAM: usize = 2;
/// `struct ice_aqc_get_set_rss_keys`: standard_rss_key[0x28], then
/// extended_hash_key[0xC] (52 bytes; `ice_aq_set_rss_key` sends all of it).
pub const RSS_KEY_STD: usize = 0x28;
pub const RSS_KEYS_BYTES: usize = 0x28 + 0xC;
/// `enum ice_lut_type` (VSI 0, PF 1, GLOBAL 2) in `flags` bits 1:0;
/// `enum ice_aqc_lut_flags`: size in bits 3:2 (0 = 64 or 128 entries,
/// BIT(2) = 512, BIT(3) = 2048), the global LUT index in bits 7:4.
pub const LUT_FLAGS_TYPE_M: u16 = 0x3;
pub const LUT_FLAGS_SIZE_S: u16 = 2;
pub const LUT_FLAGS_SIZE_M: u16 = 0x3 << 2;
pub const LUT_TYPE_VSI: u16 = 0;
pub const LUT_TYPE_PF: u16 = 1;
pub const LUT_TYPE_GLOBAL: u16 = 2;
/// `enum ice_lut_size`.
pub const LUT_SIZE_VSI: usize = 64;
pub const LUT_SIZE_GLOBAL: usize = 512;
pub const LUT_SIZE_PF: usize = 2048;
/// What the model's firmware reports in ICE_AQC_CAPS_RSS: a 2048-entry PF
/// LUT (`ICE_LUT_PF_SIZE`) of 7-bit entries (the model's choice: enough to
/// name each of its 64 queues).
pub const MODEL_RSS_TABLE: u32 = 2048;
pub const MODEL_RSS_ENTRY_WIDTH: u32 = 7;

/// `struct ice_aqc_vsi_props`: `ICE_AQ_VSI_PROP_Q_OPT_VALID` BIT(7); `q_opt_rss`
/// at byte 78 (after tc_mapping[8] at 62): LUT type bits 1:0
/// (`ICE_AQ_VSI_Q_OPT_RSS_LUT_VSI` 0, `_PF` 2, `_GBL` 3), global LUT bits
/// 5:2, hash scheme bits 7:6 (`_TPLZ` 0, `_SYM_TPLZ` 1, `_XOR` 2, `_JHASH` 3).
pub const VSI_PROP_Q_OPT_VALID: u16 = 0x80;
pub const VSI_Q_OPT_RSS: usize = 78;
pub const Q_OPT_RSS_LUT_M: u8 = 0x3;
pub const Q_OPT_RSS_LUT_VSI: u8 = 0;
pub const Q_OPT_RSS_LUT_PF: u8 = 2;
pub const Q_OPT_RSS_LUT_GBL: u8 = 3;
pub const Q_OPT_RSS_HASH_S: u8 = 6;
pub const Q_OPT_RSS_HASH_TPLZ: u8 = 0;

/// `ice_32b_rx_flex_desc_nic` (RXDID 2): `rss_hash` le32 at bytes 12–15;
/// `ICE_RX_FLEX_DESC_STATUS0_RSS_VALID_S` 12 in status_error0.
pub const RX_RSS_HASH_BYTE: usize = 12;
pub const RX_STATUS0_RSS_VALID_BIT: u32 = 12;

/// `struct ice_aqc_manage_mac_read` (:152): flags le16 @0 (LAN_ADDR_VALID
/// BIT(4), :154), num_addr @4; response element (:170): lport 0, addr_type 1,
/// mac 2..8.
pub const MAC_LAN_VALID: u16 = 0x10;
pub const MAC_NUM_ADDR_PARAM: usize = 4;
pub const MAC_RESP_ELEM: usize = 8;

/// `struct ice_aqc_get_sw_cfg` (:209): element @2, num_elems @4.
/// `struct ice_aqc_get_sw_cfg_resp_elem` (:226): vsi_port_num @0 (NUM 10@0,
/// TYPE 2@14), swid @2, pf_vf_num @4 (FUNC_NUM 15@0, IS_VF BIT(15)).
pub const SWCFG_NUM_ELEMS_PARAM: usize = 4;
pub const SWCFG_ELEM: usize = 6;
pub const SWCFG_TYPE_SHIFT: u32 = 14;
pub const SWCFG_TYPE_PHYS_PORT: u16 = 0;
pub const SWCFG_TYPE_VSI: u16 = 2;
pub const SWCFG_FUNC_NUM_M: u16 = 0x7FFF;
pub const SWCFG_IS_VF: u16 = 0x8000;

/// `struct ice_aqc_get_topo` (:1023): port_num @0, num_branches @1.
/// Topology buffer: 8-byte group header (parent_teid, num_elems @4), then
/// 24-byte `ice_aqc_txsched_elem_data` (parent_teid 0, node_teid 4,
/// elem_type 8, valid_sections 9, …).
pub const TOPO_HDR: usize = 8;
pub const TOPO_ELEM: usize = 24;
pub const ELEM_TYPE_ROOT_PORT: u8 = 1;
pub const ELEM_TYPE_TC: u8 = 2;
pub const ELEM_TYPE_SE_GENERIC: u8 = 3;
pub const ELEM_VALID_GENERIC_CIR_EIR: u8 = 0x7;

/// `struct ice_aqc_add_get_update_free_vsi` (:426): vsi_num le16 @0 (NUM
/// 10@0, IS_VALID BIT(15)), cmd_flags @2, vf_id @4, vsi_flags le16 @6
/// (TYPE 2@0, PF = 2).
pub const VSI_NUM_M: u16 = 0x3FF;
pub const VSI_IS_VALID: u16 = 0x8000;
pub const VSI_FLAGS_PARAM: usize = 6;
pub const VSI_TYPE_PF: u16 = 2;
/// `struct ice_aqc_vsi_props` (:473), 128 bytes: valid_sections @0
/// (RXQ_MAP_VALID BIT(6), :481), mapping_flags @28, q_mapping[16] @30,
/// tc_mapping[8] @62 (Q_OFFSET 11@0, Q_NUM 4@11, :580–583).
pub const VSI_PROPS_BYTES: usize = 128;
pub const VSI_PROP_RXQ_MAP_VALID: u16 = 0x40;
pub const VSI_MAPPING_FLAGS: usize = 28;
pub const VSI_Q_MAPPING: usize = 30;
pub const VSI_TC_MAPPING: usize = 62;
pub const VSI_TC_Q_NUM_SHIFT: u32 = 11;
pub const VSI_TC_Q_NUM_M: u16 = 0xF << 11;

/// `struct ice_aqc_get_link_status` (:1530): lport @0, cmd_flags le16 @2
/// (LSE field 2@0: NOP 0, DIS 2, ENA 3; response IS_ENABLED 1, :1534–1539).
pub const LINK_CMD_FLAGS_PARAM: usize = 2;
pub const LSE_M: u16 = 0x3;
pub const LSE_NOP: u16 = 0x0;
pub const LSE_DIS: u16 = 0x2;
pub const LSE_ENA: u16 = 0x3;
pub const LSE_IS_ENABLED: u16 = 0x1;
/// `struct ice_aqc_get_link_status_data` (:1555), V1 32 bytes (:1550):
/// link_info @2 (UP BIT(0), MEDIA_AVAILABLE BIT(6)), an_info @3
/// (AN_COMPLETED BIT(0)), max_frame_size le16 @6, link_speed le16 @10
/// (10G BIT(5), 25G BIT(7), 100G BIT(10), :1633–1638).
pub const LINK_DATA_BYTES: usize = 32;
pub const LINK_INFO: usize = 2;
pub const LINK_AN_INFO: usize = 3;
pub const LINK_MAX_FRAME: usize = 6;
pub const LINK_SPEED: usize = 10;
pub const LINK_UP: u8 = 0x01;
pub const LINK_MEDIA_AVAILABLE: u8 = 0x40;
pub const LINK_AN_COMPLETED: u8 = 0x01;
/// link_info SIGNAL_DETECT BIT(7) (:1580); an_info QUALIFIED_MODULE BIT(7) (:1589).
pub const LINK_SIGNAL_DETECT: u8 = 0x80;
pub const LINK_QUALIFIED_MODULE: u8 = 0x80;
pub const LINK_SPEED_10G: u16 = 0x0020;
pub const LINK_SPEED_25G: u16 = 0x0080;
pub const LINK_SPEED_100G: u16 = 0x0400;

/// `struct ice_aqc_add_txqs` (:2874): num_qgrps @0. Group (:2899): parent_teid
/// @0, num_txqs @4, 8-byte header; per queue (:2885): txq_id le16 @0, q_teid
/// le32 @4, txq_ctx[22] @8, info (16 bytes) @32; 48 bytes.
pub const ADDQ_GRP_HDR: usize = 8;
pub const ADDQ_PERQ: usize = 48;
pub const ADDQ_TXQ_ID: usize = 0;
pub const ADDQ_Q_TEID: usize = 4;
pub const ADDQ_CTX: usize = 8;
pub const ADDQ_INFO: usize = 32;

/// `struct ice_aqc_dis_txqs` (:2907): cmd_type @0 (CMD 2@0, SUBSEQ_CALL
/// BIT(2), FLUSH_PIPE BIT(3)), num_entries @1, vmvf_and_timeout le16 @2
/// (VMVF_NUM 10@0, TIMEOUT 6@10). Item (:2937): parent_teid @0, num_qs @4,
/// q_id[] le16 from @6, padded to 4 bytes.
pub const DISQ_CMD_TYPE_PARAM: usize = 0;
pub const DISQ_NUM_ENTRIES_PARAM: usize = 1;
pub const DISQ_VMVF_TIMEOUT_PARAM: usize = 2;
pub const DISQ_CMD_M: u8 = 0x3;
pub const DISQ_SUBSEQ_CALL: u8 = 0x4;
pub const DISQ_FLUSH_PIPE: u8 = 0x8;
pub const DISQ_TIMEOUT_SHIFT: u32 = 10;
pub const DISQ_TIMEOUT_M: u16 = 0x3F;
pub const DISQ_ITEM_HDR: usize = 6;
/// base/ice_common.c:4748: both drivers send timeout 5.
pub const DISQ_TIMEOUT_EXPECTED: u16 = 5;

/// Reads a little-endian u16 at `o`.
pub fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
/// Reads a little-endian u32 at `o`.
pub fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

// --- Names the DMA engine's fast path uses (literals, same facts as above) --

pub const TX_DESC_SIZE: usize = 16;
pub const TXD_QW1_DTYPE_M: u64 = 0xF;
pub const TXD_QW1_CMD_S: u32 = 4;
pub const TXD_QW1_CMD_M: u64 = 0xFFF0;
pub const TXD_QW1_TX_BUF_SZ_S: u32 = 34;
pub const TXD_QW1_TX_BUF_SZ_M: u64 = 0x0000_FFFC_0000_0000;
pub const TXD_QW1_L2TAG1_S: u32 = 48;
pub const TXD_CTX_QW1_CMD_S: u32 = 4;
pub const TX_DESC_DTYPE_DATA: u64 = DTYPE_DATA;
pub const TX_DESC_DTYPE_CTX: u64 = DTYPE_CTX;
pub const TX_DESC_DTYPE_DESC_DONE: u64 = DTYPE_DESC_DONE;
pub const TX_DESC_CMD_EOP: u64 = CMD_EOP;
pub const TX_DESC_CMD_RS: u64 = CMD_RS;
pub const TX_DESC_CMD_IL2TAG1: u64 = CMD_IL2TAG1;
pub const TX_CTX_DESC_IL2TAG2: u64 = CTX_CMD_IL2TAG2;
pub const TX_MIN_PKT_LEN: usize = TX_MIN_LEN;
pub const MAX_FRAME_SIZE: usize = MAX_FRAME;
pub const RX_DESC_SIZE: usize = RX_DESC_BYTES;
pub const RX_FLEX_PKT_LEN_M: u16 = RX_PKT_LEN_M;
pub const RX_FLEX_STATUS0_DD: u16 = 1 << RX_STATUS0_DD_BIT;
pub const RX_FLEX_STATUS0_EOF: u16 = 1 << RX_STATUS0_EOF_BIT;
pub const RX_FLEX_STATUS0_RXE: u16 = 1 << RX_STATUS0_RXE_BIT;
pub const RX_FLEX_STATUS0_RSS_VALID: u16 = 1 << RX_STATUS0_RSS_VALID_BIT;
/// base/ice_hw_autogen.h:1009 (`_i=0...16383`).
pub const QTX_COMM_DBELL_MAX: u32 = 16384;
/// Not published as a constant: the BAR0 window the model decodes.
pub const BAR0_LEN: usize = 0x0400_0000;

/// The model's own view of one admin descriptor, decoded with the
/// `struct ice_aq_desc` offsets above (not the driver's `AqDesc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FwDesc {
    pub flags: u16,
    pub opcode: u16,
    pub datalen: u16,
    pub retval: u16,
    pub cookie_high: u32,
    pub cookie_low: u32,
    pub params: [u8; 16],
}

impl FwDesc {
    pub fn decode(b: &[u8; 32]) -> FwDesc {
        let mut params = [0u8; 16];
        params.copy_from_slice(&b[AQD_PARAMS..AQD_PARAMS + 16]);
        FwDesc {
            flags: le16(b, AQD_FLAGS),
            opcode: le16(b, AQD_OPCODE),
            datalen: le16(b, AQD_DATALEN),
            retval: le16(b, AQD_RETVAL),
            cookie_high: le32(b, AQD_COOKIE_H),
            cookie_low: le32(b, AQD_COOKIE_L),
            params,
        }
    }

    pub fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[AQD_FLAGS..AQD_FLAGS + 2].copy_from_slice(&self.flags.to_le_bytes());
        b[AQD_OPCODE..AQD_OPCODE + 2].copy_from_slice(&self.opcode.to_le_bytes());
        b[AQD_DATALEN..AQD_DATALEN + 2].copy_from_slice(&self.datalen.to_le_bytes());
        b[AQD_RETVAL..AQD_RETVAL + 2].copy_from_slice(&self.retval.to_le_bytes());
        b[AQD_COOKIE_H..AQD_COOKIE_H + 4].copy_from_slice(&self.cookie_high.to_le_bytes());
        b[AQD_COOKIE_L..AQD_COOKIE_L + 4].copy_from_slice(&self.cookie_low.to_le_bytes());
        b[AQD_PARAMS..AQD_PARAMS + 16].copy_from_slice(&self.params);
        b
    }

    pub fn param_u8(&self, off: usize) -> u8 {
        self.params[off]
    }
    pub fn param_u16(&self, off: usize) -> u16 {
        le16(&self.params, off)
    }
    pub fn param_u32(&self, off: usize) -> u32 {
        le32(&self.params, off)
    }
    pub fn set_param_u8(&mut self, off: usize, v: u8) {
        self.params[off] = v;
    }
    pub fn set_param_u16(&mut self, off: usize, v: u16) {
        self.params[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    pub fn set_param_u32(&mut self, off: usize, v: u32) {
        self.params[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    /// `struct ice_aqc_generic` (base/ice_adminq_cmd.h): addr_high at params
    /// 8, addr_low at 12.
    pub fn buf_addr(&self) -> u64 {
        ((self.param_u32(8) as u64) << 32) | self.param_u32(12) as u64
    }
}

// --- Link set-up (base/ice_adminq_cmd.h:1286–1525) --------------------------

/// get_phy_caps param0 @2: RQM BIT(0), report mode 3@1 (TOPO_CAP_MEDIA = 1 << 1,
/// ACTIVE_CFG = 1 << 2, DFLT_CFG = 1 << 3).
pub const PHY_PARAM0: usize = 2;
pub const PHY_REPORT_MODE_M: u16 = 0x7 << 1;
/// `ice_aqc_get_phy_caps_data`: 48 bytes + 16 qualified-module entries of 32.
pub const PHY_CAPS_BYTES: usize = 560;
pub const PHY_CAPS_TYPE_LOW: usize = 0;
pub const PHY_CAPS_CAPS: usize = 16;
/// caps: EN_LINK BIT(3), AN_MODE BIT(4) (:1404–1405).
pub const PHY_CAPS_EN_LINK: u8 = 0x08;
pub const PHY_CAPS_AN_MODE: u8 = 0x10;
/// PHY types (:1326, :1333, :1364): 10G_SFI_DA bit 13, 25GBASE_CR bit 20, 100GBASE_CR4 bit 51.
pub const PHY_TYPE_10G_SFI_DA: u64 = 1 << 13;
pub const PHY_TYPE_25GBASE_CR: u64 = 1 << 20;
pub const PHY_TYPE_100GBASE_CR4: u64 = 1 << 51;
/// `ice_aqc_set_phy_cfg_data` (:1479): 24 bytes, caps @16; valid caps 0xEF
/// (:1483), ENA_LINK BIT(3), AUTO_LINK_UPDT BIT(5).
pub const SET_PHY_BYTES: usize = 24;
pub const SET_PHY_CAPS: usize = 16;
pub const SET_PHY_VALID_MASK: u8 = 0xEF;
pub const SET_PHY_ENA_LINK: u8 = 0x08;
pub const SET_PHY_AUTO_LINK_UPDT: u8 = 0x20;
/// `ice_aqc_restart_an` (:1520): lport @0, cmd_flags @2: LINK_RESTART
/// BIT(1), LINK_ENABLE BIT(2).
pub const RESTART_AN_FLAGS: usize = 2;
pub const RESTART_AN_LINK_RESTART: u8 = 0x02;
pub const RESTART_AN_LINK_ENABLE: u8 = 0x04;
