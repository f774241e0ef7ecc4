//! E810 register, descriptor and admin-queue definitions.
//!
//! Every constant carries the published definition it was checked against,
//! as `source:line (SYMBOL)`:
//!
//! - `base/F:N` — `DPDK/dpdk:drivers/net/intel/ice/base/F`, line N;
//! - `ice/F:N` — `DPDK/dpdk:drivers/net/intel/ice/F`, line N;
//! - `common/F:N` — `DPDK/dpdk:drivers/net/intel/common/F`, line N;
//!
//!   all at DPDK commit `38f72e500b` (v26.07-4, 2026-07);
//! - `linux:F (SYMBOL)` — `torvalds/linux:drivers/net/ethernet/intel/ice/F`,
//!   by symbol (the index holds several snapshots, so line numbers vary).
//!
//! Where Linux and DPDK differ the comment says which one is followed and why.
//! Values that are the driver's or the model's own (not published) say
//! "not published".

#![allow(dead_code)]

// ---------------------------------------------------------------------------
// PCI identity
// ---------------------------------------------------------------------------

/// Intel's PCI vendor id: base/ice_osdep.h:405 (`ICE_INTEL_VENDOR_ID`).
pub const INTEL_VENDOR_ID: u16 = 0x8086;
/// base/ice_devids.h:57 (`ICE_DEV_ID_E810C_BACKPLANE`).
pub const DEV_ID_E810C_BACKPLANE: u16 = 0x1591;
/// base/ice_devids.h:59 (`ICE_DEV_ID_E810C_QSFP`).
pub const DEV_ID_E810C_QSFP: u16 = 0x1592;
/// base/ice_devids.h:61 (`ICE_DEV_ID_E810C_SFP`).
pub const DEV_ID_E810C_SFP: u16 = 0x1593;
/// base/ice_devids.h:70 (`ICE_DEV_ID_E810_XXV_BACKPLANE`).
pub const DEV_ID_E810_XXV_BACKPLANE: u16 = 0x1599;
/// base/ice_devids.h:72 (`ICE_DEV_ID_E810_XXV_QSFP`).
pub const DEV_ID_E810_XXV_QSFP: u16 = 0x159A;
/// base/ice_devids.h:74 (`ICE_DEV_ID_E810_XXV_SFP`).
pub const DEV_ID_E810_XXV_SFP: u16 = 0x159B;

/// Device ids this driver probes, with a marketing name.
pub const SUPPORTED_DEVICES: [(u16, &str); 6] = [
    (DEV_ID_E810C_BACKPLANE, "E810-C backplane"),
    (DEV_ID_E810C_QSFP, "E810-C QSFP"),
    (DEV_ID_E810C_SFP, "E810-C SFP"),
    (DEV_ID_E810_XXV_BACKPLANE, "E810-XXV backplane"),
    (DEV_ID_E810_XXV_QSFP, "E810-XXV QSFP"),
    (DEV_ID_E810_XXV_SFP, "E810-XXV SFP"),
];

/// The name of a supported device id, or `None` when the driver does not handle it.
pub fn device_name(vendor: u16, device: u16) -> Option<&'static str> {
    if vendor != INTEL_VENDOR_ID {
        return None;
    }
    SUPPORTED_DEVICES
        .iter()
        .find(|(id, _)| *id == device)
        .map(|(_, n)| *n)
}

// ---------------------------------------------------------------------------
// BAR0 registers (base/ice_hw_autogen.h)
// ---------------------------------------------------------------------------
//
// Queue registers (`QTX_COMM_DBELL`, `QRX_*`, `QRXFLXP_CNTXT`) are indexed by
// the PF-relative queue number, as Linux (`ring->reg_idx = vsi->txq_map[i]`,
// linux:ice_base.c `ice_vsi_cfg_txq` / `ice_setup_rx_ctx`, `pf_q`) and DPDK
// (`txq->reg_idx`, ice/ice_rxtx.c) do. The MDD registers report absolute
// (device) queue numbers.

/// base/ice_hw_autogen.h:1009 (`QTX_COMM_DBELL(_DBQM)` = 0x002C0000 + 4·q, q 0..16383).
pub const fn qtx_comm_dbell(q: u32) -> u32 {
    0x002C_0000 + 4 * q
}
/// base/ice_hw_autogen.h:1009 (`QTX_COMM_DBELL` index range `_i=0...16383`).
pub const QTX_COMM_DBELL_MAX: u32 = 16384;
/// base/ice_hw_autogen.h:1021 (`QTX_COMM_HEAD(_DBQM)` = 0x000E0000 + 4·q).
pub const fn qtx_comm_head(q: u32) -> u32 {
    0x000E_0000 + 4 * q
}
/// base/ice_hw_autogen.h:5207 (`QRX_TAIL(_QRX)` = 0x00290000 + 4·q, q 0..2047).
pub const fn qrx_tail(q: u32) -> u32 {
    0x0029_0000 + 4 * q
}
/// base/ice_hw_autogen.h:5191 (`QRX_CTRL(_QRX)` = 0x00120000 + 4·q).
pub const fn qrx_ctrl(q: u32) -> u32 {
    0x0012_0000 + 4 * q
}
/// base/ice_hw_autogen.h:5194 (`QRX_CTRL_QENA_REQ_M` BIT(0)).
pub const QRX_CTRL_QENA_REQ: u32 = 1 << 0;
/// base/ice_hw_autogen.h:5198 (`QRX_CTRL_QENA_STAT_M` BIT(2)).
pub const QRX_CTRL_QENA_STAT: u32 = 1 << 2;
/// base/ice_hw_autogen.h:5187 (`QRX_CONTEXT(_i, _QRX)` = 0x00280000 + 8192·i + 4·q, i 0..7).
pub const fn qrx_context(i: u32, q: u32) -> u32 {
    0x0028_0000 + 8192 * i + 4 * q
}
/// base/ice_lan_tx_rx.h:933 (`ICE_RXQ_CTX_SIZE_DWORDS` 8).
pub const QRX_CONTEXT_DWORDS: u32 = 8;
/// base/ice_hw_autogen.h:3148 (`QRXFLXP_CNTXT(_QRX)` = 0x00480000 + 4·q).
pub const fn qrxflxp_cntxt(q: u32) -> u32 {
    0x0048_0000 + 4 * q
}
/// base/ice_hw_autogen.h:3151 (`QRXFLXP_CNTXT_RXDID_IDX_M` 0x3F at 0).
pub const QRXFLXP_CNTXT_RXDID_IDX_M: u32 = 0x3F;
/// base/ice_hw_autogen.h:3152 (`QRXFLXP_CNTXT_RXDID_PRIO_S` 8).
pub const QRXFLXP_CNTXT_RXDID_PRIO_S: u32 = 8;
/// base/ice_hw_autogen.h:3153 (`QRXFLXP_CNTXT_RXDID_PRIO_M` 0x7 at 8).
pub const QRXFLXP_CNTXT_RXDID_PRIO_M: u32 = 0x7 << 8;
/// base/ice_hw_autogen.h:3155 (`QRXFLXP_CNTXT_TS_M` BIT(11)).
pub const QRXFLXP_CNTXT_TS: u32 = 1 << 11;
/// The RXDID priority both drivers write: ice/ice_rxtx.c:418 (`0x03 <<
/// QRXFLXP_CNTXT_RXDID_PRIO_S`), linux:ice_base.c `ice_setup_rx_ctx`
/// (`ice_write_qrxflxp_cntxt(hw, pf_q, rxdid, 0x3, …)`).
pub const RXDID_PRIO: u32 = 0x3;
/// base/ice_hw_autogen.h:5027 (`QINT_TQCTL(_DBQM)` = 0x00140000 + 4·q).
pub const fn qint_tqctl(q: u32) -> u32 {
    0x0014_0000 + 4 * q
}
/// base/ice_hw_autogen.h:878 (`GLCOMM_QTX_CNTX_CTL`).
pub const GLCOMM_QTX_CNTX_CTL: u32 = 0x002D_2DC8;
/// base/ice_hw_autogen.h:880 (`GLCOMM_QTX_CNTX_CTL_QUEUE_ID_M` 0x3FFF at 0).
pub const GLCOMM_QTX_CNTX_CTL_QUEUE_ID_M: u32 = 0x3FFF;
/// base/ice_hw_autogen.h:881 (`GLCOMM_QTX_CNTX_CTL_CMD_S` 16, 3 bits).
pub const GLCOMM_QTX_CNTX_CTL_CMD_S: u32 = 16;
/// base/ice_hw_autogen.h:884 (`GLCOMM_QTX_CNTX_CTL_CMD_EXEC_M` BIT(19)).
pub const GLCOMM_QTX_CNTX_CTL_CMD_EXEC: u32 = 1 << 19;
/// base/ice_hw_autogen.h:885 (`GLCOMM_QTX_CNTX_DATA(_i)` = 0x002D2D40 + 4·i, i 0..9).
pub const fn glcomm_qtx_cntx_data(i: u32) -> u32 {
    0x002D_2D40 + 4 * i
}

/// base/ice_hw_autogen.h:1110 (`PF_FW_ATQBAL`).
pub const PF_FW_ATQBAL: u32 = 0x0008_0000;
/// base/ice_hw_autogen.h:1107 (`PF_FW_ATQBAH`).
pub const PF_FW_ATQBAH: u32 = 0x0008_0100;
/// base/ice_hw_autogen.h:1118 (`PF_FW_ATQLEN`).
pub const PF_FW_ATQLEN: u32 = 0x0008_0200;
/// base/ice_hw_autogen.h:1115 (`PF_FW_ATQH`).
pub const PF_FW_ATQH: u32 = 0x0008_0300;
/// base/ice_hw_autogen.h:1129 (`PF_FW_ATQT`).
pub const PF_FW_ATQT: u32 = 0x0008_0400;
/// base/ice_hw_autogen.h:1085 (`PF_FW_ARQBAL`).
pub const PF_FW_ARQBAL: u32 = 0x0008_0080;
/// base/ice_hw_autogen.h:1082 (`PF_FW_ARQBAH`).
pub const PF_FW_ARQBAH: u32 = 0x0008_0180;
/// base/ice_hw_autogen.h:1093 (`PF_FW_ARQLEN`).
pub const PF_FW_ARQLEN: u32 = 0x0008_0280;
/// base/ice_hw_autogen.h:1090 (`PF_FW_ARQH`).
pub const PF_FW_ARQH: u32 = 0x0008_0380;
/// base/ice_hw_autogen.h:1104 (`PF_FW_ARQT`).
pub const PF_FW_ARQT: u32 = 0x0008_0480;
/// base/ice_hw_autogen.h:1120 (`PF_FW_ATQLEN_ATQLEN_M` 0x3FF; same for ARQLEN, :1095).
pub const PF_FW_AQLEN_LEN_M: u32 = 0x3FF;
/// base/ice_hw_autogen.h:1122 (`PF_FW_ATQLEN_ATQVFE_M` BIT(28); ARQ :1097).
pub const PF_FW_AQLEN_VFE: u32 = 1 << 28;
/// base/ice_hw_autogen.h:1124 (`PF_FW_ATQLEN_ATQOVFL_M` BIT(29); ARQ :1099).
pub const PF_FW_AQLEN_OVFL: u32 = 1 << 29;
/// base/ice_hw_autogen.h:1126 (`PF_FW_ATQLEN_ATQCRIT_M` BIT(30); ARQ :1101).
pub const PF_FW_AQLEN_CRIT: u32 = 1 << 30;
/// base/ice_hw_autogen.h:1128 (`PF_FW_ATQLEN_ATQENABLE_M` BIT(31); ARQ :1103).
pub const PF_FW_AQLEN_ENABLE: u32 = 1 << 31;
/// base/ice_hw_autogen.h:1117 (`PF_FW_ATQH_ATQH_M` 0x3FF; ARQH :1092, ATQT :1131, ARQT :1106).
pub const PF_FW_AQ_PTR_M: u32 = 0x3FF;

/// base/ice_hw_autogen.h:6205 (`PF_FUNC_RID`): the PF's PCI routing id.
pub const PF_FUNC_RID: u32 = 0x0009_E880;
/// base/ice_hw_autogen.h:6207 (`PF_FUNC_RID_FUNCTION_NUMBER_M` 0x7 at 0);
/// base/ice_common.c:1063 (`hw->pf_id` is read from it in `ice_init_hw`).
pub const PF_FUNC_RID_FUNCTION_NUMBER_M: u32 = 0x7;

/// base/ice_hw_autogen.h:3581 (`PFGEN_CTRL`).
pub const PFGEN_CTRL: u32 = 0x0009_1000;
/// base/ice_hw_autogen.h:3583 (`PFGEN_CTRL_PFSWR_M` BIT(0)): PF software reset.
pub const PFGEN_CTRL_PFSWR: u32 = 1 << 0;
/// base/ice_hw_autogen.h:3528 (`GLGEN_RSTAT`).
pub const GLGEN_RSTAT: u32 = 0x000B_8188;
/// base/ice_hw_autogen.h:3530 (`GLGEN_RSTAT_DEVSTATE_M` 0x3 at 0; 0 = device active).
pub const GLGEN_RSTAT_DEVSTATE_M: u32 = 0x3;
/// base/ice_hw_autogen.h:5816 (`GLNVM_ULD`).
pub const GLNVM_ULD: u32 = 0x000B_6008;
/// base/ice_common.c:1271 (`ICE_RESET_DONE_MASK`): PCIER_DONE BIT(0),
/// PCIER_DONE_1 BIT(1), CORER_DONE BIT(3), GLOBR_DONE BIT(4), POR_DONE BIT(5),
/// POR_DONE_1 BIT(8), PCIER_DONE_2 BIT(9) (base/ice_hw_autogen.h:5818–5830).
pub const GLNVM_ULD_RESET_DONE: u32 =
    (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 9);
/// base/ice_hw_autogen.h:3556 (`GLGEN_RTRIG`).
pub const GLGEN_RTRIG: u32 = 0x000B_8190;
/// `ice_pf_reset`'s PFSWR poll bound, in 1 ms polls: `ICE_GLOBAL_CFG_LOCK_TIMEOUT`
/// 3000 (base/ice_type.h:186) + `ICE_PF_RESET_WAIT_COUNT` 2000
/// (base/ice_common.c:12; loop at :1339). Linux uses 300 for the second term
/// (linux:ice_common.c `ICE_PF_RESET_WAIT_COUNT`, 3300 ms in all); the driver
/// follows DPDK's longer bound, the conservative one.
pub const PF_RESET_TIMEOUT_MS: u64 = 3000 + 2000;
/// `ice_check_reset`'s GLNVM_ULD poll: `ICE_PF_RESET_WAIT_COUNT` polls 10 ms
/// apart (base/ice_common.c:1284–1291).
pub const RESET_DONE_TIMEOUT_MS: u64 = 2000 * 10;

// Malicious-driver detection latches, read and cleared as `ice_handle_mdd_event`
// (linux:ice_main.c) does: the global `GL_MDET_*` registers latch one event
// (VALID bit 31, cleared by writing all-ones), the per-PF `PF_MDET_*` say
// whether this PF caused it (VALID bit 0, cleared by writing 0xFFFF).

/// base/ice_hw_autogen.h:5483 (`GL_MDET_TX_TCLAN`).
pub const GL_MDET_TX_TCLAN: u32 = 0x000F_C068;
/// base/ice_hw_autogen.h:5472 (`GL_MDET_TX_PQM`).
pub const GL_MDET_TX_PQM: u32 = 0x002D_2E00;
/// base/ice_hw_autogen.h:5494 (`GL_MDET_TX_TDPU`).
pub const GL_MDET_TX_TDPU: u32 = 0x0004_9350;
/// base/ice_hw_autogen.h:5461 (`GL_MDET_RX`).
pub const GL_MDET_RX: u32 = 0x0029_4C00;
/// base/ice_hw_autogen.h:5485 (`GL_MDET_TX_TCLAN_QNUM_M` 0x7FFF at 0; also
/// `GL_MDET_TX_TDPU_QNUM_M` :5496, `GL_MDET_RX_QNUM_M` :5463).
pub const GL_MDET_QNUM_M: u32 = 0x7FFF;
/// base/ice_hw_autogen.h:5488 (`GL_MDET_TX_TCLAN_PF_NUM_S` 23, 3 bits; TDPU :5499, RX :5466).
pub const GL_MDET_PF_NUM_S: u32 = 23;
/// base/ice_hw_autogen.h:5490 (`GL_MDET_TX_TCLAN_MAL_TYPE_S` 26; TDPU :5501, RX :5468, PQM :5479).
pub const GL_MDET_MAL_TYPE_S: u32 = 26;
/// base/ice_hw_autogen.h:5491 (`GL_MDET_TX_TCLAN_MAL_TYPE_M` 0x1F at 26; TDPU, RX and PQM alike).
pub const GL_MDET_MAL_TYPE_M: u32 = 0x1F << 26;
/// base/ice_hw_autogen.h:5493 (`GL_MDET_TX_TCLAN_VALID_M` BIT(31); TDPU :5504, RX :5471, PQM :5482).
pub const GL_MDET_VALID: u32 = 1 << 31;
/// base/ice_hw_autogen.h:5474 (`GL_MDET_TX_PQM_PF_NUM_M` 0x7 at 0).
pub const GL_MDET_TX_PQM_PF_NUM_M: u32 = 0x7;
/// base/ice_hw_autogen.h:5477 (`GL_MDET_TX_PQM_QNUM_S` 12).
pub const GL_MDET_TX_PQM_QNUM_S: u32 = 12;
/// base/ice_hw_autogen.h:5478 (`GL_MDET_TX_PQM_QNUM_M` 0x3FFF at 12).
pub const GL_MDET_TX_PQM_QNUM_M: u32 = 0x3FFF << 12;
/// base/ice_hw_autogen.h:5514 (`PF_MDET_TX_TCLAN`).
pub const PF_MDET_TX_TCLAN: u32 = 0x000F_C000;
/// base/ice_hw_autogen.h:5511 (`PF_MDET_TX_PQM`).
pub const PF_MDET_TX_PQM: u32 = 0x002D_2C80;
/// base/ice_hw_autogen.h:5517 (`PF_MDET_TX_TDPU`).
pub const PF_MDET_TX_TDPU: u32 = 0x0004_0800;
/// base/ice_hw_autogen.h:5508 (`PF_MDET_RX`).
pub const PF_MDET_RX: u32 = 0x0029_4280;
/// base/ice_hw_autogen.h:5510 (`PF_MDET_RX_VALID_M` BIT(0); the TX ones :5513, :5516, :5519).
pub const PF_MDET_VALID: u32 = 1 << 0;
/// Value that clears a `GL_MDET_*` latch: linux:ice_main.c `ice_handle_mdd_event`
/// (`wr32(hw, GL_MDET_TX_PQM, 0xffffffff)`).
pub const GL_MDET_CLEAR: u32 = 0xFFFF_FFFF;
/// Value that clears a `PF_MDET_*` latch: linux:ice_main.c `ice_handle_mdd_event`
/// (`wr32(hw, PF_MDET_TX_PQM, 0xFFFF)`).
pub const PF_MDET_CLEAR: u32 = 0xFFFF;

/// The four global MDD latches with their names, in the order
/// `ice_handle_mdd_event` reads them (PQM, TCLAN/TDPU, RX).
pub const GL_MDET_REGS: [(u32, &str); 4] = [
    (GL_MDET_TX_PQM, "GL_MDET_TX_PQM"),
    (GL_MDET_TX_TCLAN, "GL_MDET_TX_TCLAN"),
    (GL_MDET_TX_TDPU, "GL_MDET_TX_TDPU"),
    (GL_MDET_RX, "GL_MDET_RX"),
];
/// The per-PF MDD latches, in the same order.
pub const PF_MDET_REGS: [(u32, &str); 4] = [
    (PF_MDET_TX_PQM, "PF_MDET_TX_PQM"),
    (PF_MDET_TX_TCLAN, "PF_MDET_TX_TCLAN"),
    (PF_MDET_TX_TDPU, "PF_MDET_TX_TDPU"),
    (PF_MDET_RX, "PF_MDET_RX"),
];

/// Malicious-driver event kinds reported in the `MAL_TYPE` field.
/// **Not published**: neither Linux nor DPDK names the MAL_TYPE encodings;
/// these codes are the device model's own and only this driver decodes them
/// (on a real E810 the driver reports the raw number).
pub mod mal_type {
    pub const ZERO_LEN_BUF: u32 = 1;
    pub const BAD_DTYPE: u32 = 2;
    pub const RUNT_FRAME: u32 = 3;
    pub const TOO_MANY_DESCS: u32 = 4;
    pub const OVERSIZE: u32 = 5;
    pub const TAIL_BEYOND_RING: u32 = 6;
    pub const DMA_FAULT: u32 = 7;

    pub fn name(t: u32) -> &'static str {
        match t {
            ZERO_LEN_BUF => "zero-length buffer",
            BAD_DTYPE => "bad descriptor type",
            RUNT_FRAME => "frame shorter than 17 bytes",
            TOO_MANY_DESCS => "more than 8 data descriptors in one frame",
            OVERSIZE => "frame larger than the maximum frame size",
            TAIL_BEYOND_RING => "doorbell (tail) beyond the ring",
            DMA_FAULT => "DMA fault (IOVA not mapped)",
            _ => "unknown (MAL_TYPE codes are not published)",
        }
    }
}

/// base/ice_hw_autogen.h:7833 (`GLPRT_GOTCL(_i)` = 0x00380B40 + 8·port, port 0..7;
/// `GLPRT_GOTCH` at +4 holds bits 32–39). Indexed by the logical port
/// (linux:ice_main.c `ice_update_pf_stats`: `port = hw->port_info->lport`).
pub const fn glprt_gotcl(port: u32) -> u32 {
    0x0038_0B40 + 8 * port
}
/// base/ice_hw_autogen.h:8125 (`GLPRT_UPTCL(_i)` = 0x003811C0 + 8·port).
pub const fn glprt_uptcl(port: u32) -> u32 {
    0x0038_11C0 + 8 * port
}
/// base/ice_hw_autogen.h:8273 (`GLV_GOTCL(_i)` = 0x00300000 + 8·vsi, vsi 0..767).
pub const fn glv_gotcl(vsi: u32) -> u32 {
    0x0030_0000 + 8 * vsi
}
/// base/ice_hw_autogen.h:8319 (`GLV_UPTCL(_i)` = 0x0030A000 + 8·vsi).
pub const fn glv_uptcl(vsi: u32) -> u32 {
    0x0030_A000 + 8 * vsi
}
/// base/ice_hw_autogen.h:8303 (`GLV_TEPC(_VSI)` = 0x00312000 + 4·vsi).
pub const fn glv_tepc(vsi: u32) -> u32 {
    0x0031_2000 + 4 * vsi
}
/// linux:ice_hw_autogen.h (`GLV_RDPC(_i)` = 0x00294C04 + 4·vsi): packets the
/// VSI's receive side discarded, 32 bits (`ice_update_eth_stats` →
/// `rx_discards`, `ice_stat_update32`).
pub const fn glv_rdpc(vsi: u32) -> u32 {
    0x0029_4C04 + 4 * vsi
}
/// 40-bit statistics counters: linux:ice_common.c `ice_stat_update40` (`BIT_ULL(40) - 1`).
pub const STAT40_MASK: u64 = (1 << 40) - 1;

/// Size of the BAR0 window the model exposes. **Not published** as a
/// constant (the E810 BAR0 is 128 MiB; the doorbell pages at 0x04000000 are
/// not modelled).
pub const BAR0_LEN: usize = 0x0400_0000;

// ---------------------------------------------------------------------------
// TX descriptors (base/ice_lan_tx_rx.h)
// ---------------------------------------------------------------------------

/// `struct ice_tx_desc` (base/ice_lan_tx_rx.h, two `__le64`) is 16 bytes.
pub const TX_DESC_SIZE: usize = 16;
/// base/ice_lan_tx_rx.h:1010 (`ICE_TXD_QW1_DTYPE_S` 0).
pub const TXD_QW1_DTYPE_S: u32 = 0;
/// base/ice_lan_tx_rx.h:1011 (`ICE_TXD_QW1_DTYPE_M` 0xF).
pub const TXD_QW1_DTYPE_M: u64 = 0xF;
/// base/ice_lan_tx_rx.h:1014 (`ICE_TX_DESC_DTYPE_DATA` 0x0).
pub const TX_DESC_DTYPE_DATA: u64 = 0x0;
/// base/ice_lan_tx_rx.h:1015 (`ICE_TX_DESC_DTYPE_CTX` 0x1).
pub const TX_DESC_DTYPE_CTX: u64 = 0x1;
/// base/ice_lan_tx_rx.h:1020 (`ICE_TX_DESC_DTYPE_DESC_DONE` 0xF).
pub const TX_DESC_DTYPE_DESC_DONE: u64 = 0xF;
/// base/ice_lan_tx_rx.h:1023 (`ICE_TXD_QW1_CMD_S` 4).
pub const TXD_QW1_CMD_S: u32 = 4;
/// base/ice_lan_tx_rx.h:1024 (`ICE_TXD_QW1_CMD_M` 0xFFF << 4).
pub const TXD_QW1_CMD_M: u64 = 0xFFF << 4;
/// base/ice_lan_tx_rx.h:1027 (`ICE_TX_DESC_CMD_EOP` 0x0001).
pub const TX_DESC_CMD_EOP: u64 = 0x0001;
/// base/ice_lan_tx_rx.h:1028 (`ICE_TX_DESC_CMD_RS` 0x0002).
pub const TX_DESC_CMD_RS: u64 = 0x0002;
/// base/ice_lan_tx_rx.h:1030 (`ICE_TX_DESC_CMD_IL2TAG1` 0x0008): insert `L2TAG1`.
pub const TX_DESC_CMD_IL2TAG1: u64 = 0x0008;
/// base/ice_lan_tx_rx.h:1031 (`ICE_TX_DESC_CMD_DUMMY` 0x0010).
pub const TX_DESC_CMD_DUMMY: u64 = 0x0010;
/// base/ice_lan_tx_rx.h:1035 (`ICE_TX_DESC_CMD_IIPT_IPV4_CSUM` 0x0060; unused: safe mode).
pub const TX_DESC_CMD_IIPT_IPV4_CSUM: u64 = 0x0060;
/// base/ice_lan_tx_rx.h:1040 (`ICE_TX_DESC_CMD_L4T_EOFT_UDP` 0x0300; unused: safe mode).
pub const TX_DESC_CMD_L4T_EOFT_UDP: u64 = 0x0300;
/// base/ice_lan_tx_rx.h:1045 (`ICE_TXD_QW1_OFFSET_S` 16).
pub const TXD_QW1_OFFSET_S: u32 = 16;
/// base/ice_lan_tx_rx.h:1067 (`ICE_TXD_QW1_TX_BUF_SZ_S` 34).
pub const TXD_QW1_TX_BUF_SZ_S: u32 = 34;
/// base/ice_lan_tx_rx.h:1068 (`ICE_TXD_QW1_TX_BUF_SZ_M` 0x3FFF << 34).
pub const TXD_QW1_TX_BUF_SZ_M: u64 = 0x3FFF << 34;
/// base/ice_lan_tx_rx.h:1070 (`ICE_TXD_QW1_L2TAG1_S` 48).
pub const TXD_QW1_L2TAG1_S: u32 = 48;
/// common/tx.h:71 (`CI_MAX_DATA_PER_TXD` = TX_BUF_SZ_M >> TX_BUF_SZ_S = 16383).
pub const MAX_DATA_PER_TXD: usize = 0x3FFF;
/// linux:ice_txrx.h (`ICE_MAX_BUF_TXD` 8): data descriptors per non-TSO frame.
pub const MAX_BUF_TXD: usize = 8;
/// ice/ice_rxtx.h:60 (`ICE_TX_MIN_PKT_LEN` 17; linux:ice_txrx.h `ICE_MIN_TX_LEN` 17).
pub const TX_MIN_PKT_LEN: usize = 17;
/// base/ice_adminq_cmd.h:18 (`ICE_AQ_SET_MAC_FRAME_SIZE_MAX` 9728): largest frame.
pub const MAX_FRAME_SIZE: usize = 9728;

/// base/ice_lan_tx_rx.h:1088 (`ICE_TXD_CTX_QW1_CMD_S` 4).
pub const TXD_CTX_QW1_CMD_S: u32 = 4;
/// base/ice_lan_tx_rx.h:1110 (`ICE_TX_CTX_DESC_TSO` 0x01).
pub const TX_CTX_DESC_TSO: u64 = 0x01;
/// base/ice_lan_tx_rx.h:1112 (`ICE_TX_CTX_DESC_IL2TAG2` 0x04): insert `l2tag2`.
pub const TX_CTX_DESC_IL2TAG2: u64 = 0x04;

/// ice/ice_ethdev.h:85 (`ICE_DEFAULT_TX_RSBIT_THRESH` 32).
pub const DEFAULT_TX_RS_THRESH: usize = 32;
/// ice/ice_ethdev.h:81 (`ICE_DEFAULT_TX_FREE_THRESH` 32).
pub const DEFAULT_TX_FREE_THRESH: usize = 32;
/// ice/ice_rxtx.h:24 (`ICE_MIN_RING_DESC` 64).
pub const MIN_RING_DESC: u16 = 64;
/// ice/ice_rxtx.h:25 (`ICE_MAX_RING_DESC` 8192 − 32).
pub const MAX_RING_DESC: u16 = 8192 - 32;
/// ice/ice_rxtx.h:23 (`ICE_ALIGN_RING_DESC` 32).
pub const ALIGN_RING_DESC: u16 = 32;
/// ice/ice_rxtx.h:32 (`ICE_RING_BASE_ALIGN` 128).
pub const RING_BASE_ALIGN: u64 = 128;

// ---------------------------------------------------------------------------
// RX descriptors (base/ice_lan_tx_rx.h)
// ---------------------------------------------------------------------------

/// `union ice_32b_rx_flex_desc` (base/ice_lan_tx_rx.h:495 layout) is 32 bytes.
pub const RX_DESC_SIZE: usize = 32;
/// base/ice_lan_tx_rx.h:749 (`ICE_RXDID_FLEX_NIC` 2).
pub const RXDID_FLEX_NIC: u32 = 2;
/// base/ice_lan_tx_rx.h:500 (`ice_32b_rx_flex_desc_nic.pkt_len`, bytes 4–5).
pub const RX_FLEX_PKT_LEN_OFF: usize = 4;
/// base/ice_lan_tx_rx.h:858 (`ICE_RX_FLX_DESC_PKT_LEN_M` 0x3FFF).
pub const RX_FLEX_PKT_LEN_M: u16 = 0x3FFF;
/// base/ice_lan_tx_rx.h:504 (`status_error0`, bytes 8–9).
pub const RX_FLEX_STATUS0_OFF: usize = 8;
/// base/ice_lan_tx_rx.h:883 (`ICE_RX_FLEX_DESC_STATUS0_DD_S` 0).
pub const RX_FLEX_STATUS0_DD: u16 = 1 << 0;
/// base/ice_lan_tx_rx.h:884 (`ICE_RX_FLEX_DESC_STATUS0_EOF_S` 1).
pub const RX_FLEX_STATUS0_EOF: u16 = 1 << 1;
/// base/ice_lan_tx_rx.h:892 (`ICE_RX_FLEX_DESC_STATUS0_IPV6EXADD_S` 9): IPv6
/// with extension headers — not an error.
pub const RX_FLEX_STATUS0_IPV6EXADD: u16 = 1 << 9;
/// base/ice_lan_tx_rx.h:893 (`ICE_RX_FLEX_DESC_STATUS0_RXE_S` 10): receive error.
pub const RX_FLEX_STATUS0_RXE: u16 = 1 << 10;
/// linux:ice_lan_tx_rx.h (`ICE_RX_FLEX_DESC_STATUS0_RSS_VALID_S` 12): the
/// descriptor's `rss_hash` holds the packet's hash (DPDK `ice_rxd_to_pkt_fields_*`
/// sets `RTE_MBUF_F_RX_RSS_HASH` on it).
pub const RX_FLEX_STATUS0_RSS_VALID: u16 = 1 << 12;
/// linux:ice_lan_tx_rx.h (`struct ice_32b_rx_flex_desc_nic`, RXDID 2:
/// `__le32 rss_hash` at bytes 12–15, the upper half of qword 1; Linux
/// `ice_get_rx_hash` reads it).
pub const RX_FLEX_RSS_HASH_OFF: usize = 12;
/// common/rx.h:17 (`CI_RX_MAX_BURST` 32, `ICE_RX_MAX_BURST` ice/ice_rxtx.h:38):
/// RX tail updates are batched by this many.
pub const RX_FREE_THRESH: usize = 32;
/// linux:ice_txrx.h (`ICE_MAX_CHAINED_RX_BUFS` 5; DPDK ice/ice_rxtx.h:47
/// `ICE_SUPPORT_CHAIN_NUM` 5): `rxmax` may not exceed 5 × the data buffer.
pub const MAX_CHAINED_RX_BUFS: u32 = 5;

// ---------------------------------------------------------------------------
// Admin queue (base/ice_adminq_cmd.h)
// ---------------------------------------------------------------------------

/// base/ice_adminq_cmd.h:3285 (`struct ice_aq_desc`: 4 × le16, 2 × le32, 16 bytes of params).
pub const AQ_DESC_SIZE: usize = 32;
/// base/ice_adminq_cmd.h:3421 (`ICE_AQ_FLAG_DD` 0x1).
pub const AQ_FLAG_DD: u16 = 0x1;
/// base/ice_adminq_cmd.h:3422 (`ICE_AQ_FLAG_CMP` 0x2).
pub const AQ_FLAG_CMP: u16 = 0x2;
/// base/ice_adminq_cmd.h:3423 (`ICE_AQ_FLAG_ERR` 0x4).
pub const AQ_FLAG_ERR: u16 = 0x4;
/// base/ice_adminq_cmd.h:3424 (`ICE_AQ_FLAG_VFE` 0x8).
pub const AQ_FLAG_VFE: u16 = 0x8;
/// base/ice_adminq_cmd.h:3425 (`ICE_AQ_FLAG_LB` 0x200): buffer larger than 512 bytes.
pub const AQ_FLAG_LB: u16 = 0x200;
/// base/ice_adminq_cmd.h:3426 (`ICE_AQ_FLAG_RD` 0x400): the buffer carries host data.
pub const AQ_FLAG_RD: u16 = 0x400;
/// base/ice_adminq_cmd.h:3427 (`ICE_AQ_FLAG_VFC` 0x800).
pub const AQ_FLAG_VFC: u16 = 0x800;
/// base/ice_adminq_cmd.h:3428 (`ICE_AQ_FLAG_BUF` 0x1000): indirect buffer.
pub const AQ_FLAG_BUF: u16 = 0x1000;
/// base/ice_adminq_cmd.h:3429 (`ICE_AQ_FLAG_SI` 0x2000).
pub const AQ_FLAG_SI: u16 = 0x2000;
/// base/ice_adminq_cmd.h:3430 (`ICE_AQ_FLAG_EI` 0x4000).
pub const AQ_FLAG_EI: u16 = 0x4000;
/// base/ice_adminq_cmd.h:3431 (`ICE_AQ_FLAG_FE` 0x8000).
pub const AQ_FLAG_FE: u16 = 0x8000;
/// base/ice_adminq_cmd.h:3401 (`ICE_AQ_LG_BUF` 512): buffers above this need `LB`.
pub const AQ_LG_BUF: usize = 512;
/// base/ice_controlq.h:11 (`ICE_AQ_MAX_BUF_LEN` 4096).
pub const AQ_MAX_BUF_LEN: usize = 4096;

/// Admin-queue opcodes (base/ice_adminq_cmd.h `enum ice_adminq_opc`).
pub mod opc {
    /// base/ice_adminq_cmd.h:3470 (`ice_aqc_opc_get_ver`).
    pub const GET_VER: u16 = 0x0001;
    /// base/ice_adminq_cmd.h:3471 (`ice_aqc_opc_driver_ver`).
    pub const DRIVER_VER: u16 = 0x0002;
    /// base/ice_adminq_cmd.h:3472 (`ice_aqc_opc_q_shutdown`).
    pub const Q_SHUTDOWN: u16 = 0x0003;
    /// base/ice_adminq_cmd.h:3476 (`ice_aqc_opc_req_res`).
    pub const REQ_RES: u16 = 0x0008;
    /// base/ice_adminq_cmd.h:3480 (`ice_aqc_opc_list_func_caps`).
    pub const LIST_FUNC_CAPS: u16 = 0x000A;
    /// base/ice_adminq_cmd.h:3481 (`ice_aqc_opc_list_dev_caps`).
    pub const LIST_DEV_CAPS: u16 = 0x000B;
    /// base/ice_adminq_cmd.h:3484 (`ice_aqc_opc_manage_mac_read`).
    pub const MANAGE_MAC_READ: u16 = 0x0107;
    /// base/ice_adminq_cmd.h:3493 (`ice_aqc_opc_get_sw_cfg`).
    pub const GET_SW_CFG: u16 = 0x0200;
    /// base/ice_adminq_cmd.h:3505 (`ice_aqc_opc_add_vsi`).
    pub const ADD_VSI: u16 = 0x0210;
    /// base/ice_adminq_cmd.h:3506 (`ice_aqc_opc_update_vsi`).
    pub const UPDATE_VSI: u16 = 0x0211;
    /// base/ice_adminq_cmd.h:3529 (`ice_aqc_opc_clear_pf_cfg`).
    pub const CLEAR_PF_CFG: u16 = 0x02A4;
    /// base/ice_adminq_cmd.h:3538 (`ice_aqc_opc_get_dflt_topo`).
    pub const GET_DFLT_TOPO: u16 = 0x0400;
    /// base/ice_adminq_cmd.h:3559 (`ice_aqc_opc_get_phy_caps`).
    pub const GET_PHY_CAPS: u16 = 0x0600;
    /// base/ice_adminq_cmd.h:3560 (`ice_aqc_opc_set_phy_cfg`).
    pub const SET_PHY_CFG: u16 = 0x0601;
    /// base/ice_adminq_cmd.h:3562 (`ice_aqc_opc_restart_an`).
    pub const RESTART_AN: u16 = 0x0605;
    /// base/ice_adminq_cmd.h:3563 (`ice_aqc_opc_get_link_status`).
    pub const GET_LINK_STATUS: u16 = 0x0607;
    /// linux:ice_adminq_cmd.h (`ice_aqc_opc_set_rss_key`, indirect 0x0B02).
    pub const SET_RSS_KEY: u16 = 0x0B02;
    /// linux:ice_adminq_cmd.h (`ice_aqc_opc_set_rss_lut`, indirect 0x0B03).
    pub const SET_RSS_LUT: u16 = 0x0B03;
    /// base/ice_adminq_cmd.h:3642 (`ice_aqc_opc_add_txqs`).
    pub const ADD_TXQS: u16 = 0x0C30;
    /// base/ice_adminq_cmd.h:3643 (`ice_aqc_opc_dis_txqs`).
    pub const DIS_TXQS: u16 = 0x0C31;
    /// base/ice_adminq_cmd.h:3652 (`ice_aqc_opc_download_pkg`).
    pub const DOWNLOAD_PKG: u16 = 0x0C40;
}

/// `struct ice_aqc_q_shutdown` (base/ice_adminq_cmd.h:58): `__le32
/// driver_unloading` at byte 0; :60 (`ICE_AQC_DRIVER_UNLOADING` BIT(0)).
pub const AQC_DRIVER_UNLOADING: u32 = 1 << 0;

/// Capability ids in `list_func_caps` elements (base/ice_adminq_cmd.h `ICE_AQC_CAPS_*`).
pub mod caps {
    /// base/ice_adminq_cmd.h:111 (`ICE_AQC_CAPS_VALID_FUNCTIONS`): `number` is
    /// the bitmap of enabled PFs (device capabilities).
    pub const VALID_FUNCTIONS: u16 = 0x0005;
    /// base/ice_adminq_cmd.h:112 (`ICE_AQC_CAPS_VSI`).
    pub const VSI: u16 = 0x0017;
    /// base/ice_adminq_cmd.h:115 (`ICE_AQC_CAPS_RXQS`): `number` queues from `phys_id`.
    pub const RXQS: u16 = 0x0041;
    /// base/ice_adminq_cmd.h:116 (`ICE_AQC_CAPS_TXQS`).
    pub const TXQS: u16 = 0x0042;
    /// base/ice_adminq_cmd.h:120 (`ICE_AQC_CAPS_MAX_MTU`).
    pub const MAX_MTU: u16 = 0x0047;
    /// linux:ice_adminq_cmd.h (`ICE_AQC_CAPS_RSS` 0x0040): `number` is the
    /// RSS table size, `logical_id` the width of one table entry in bits
    /// (linux:ice_common.c `ice_parse_common_caps`: `rss_table_size`,
    /// `rss_table_entry_width`).
    pub const RSS: u16 = 0x0040;
}
/// base/ice_adminq_cmd.h:99 (`struct ice_aqc_list_caps`: cmd_flags, pf_index,
/// reserved[2], `__le32 count` at byte 4, addr_high, addr_low).
pub const LIST_CAPS_COUNT_OFF: usize = 4;
/// base/ice_adminq_cmd.h:109 (`struct ice_aqc_list_caps_elem`: cap, major, minor,
/// number @4, logical_id @8, phys_id @12, rsvd1, rsvd2 = 32 bytes).
pub const CAPS_ELEM_SIZE: usize = 32;

/// base/ice_adminq_cmd.h:154 (`ICE_AQC_MAN_MAC_LAN_ADDR_VALID` BIT(4)).
pub const MAN_MAC_LAN_ADDR_VALID: u16 = 1 << 4;
/// base/ice_adminq_cmd.h:170 (`struct ice_aqc_manage_mac_read_resp`: lport, addr_type, mac[6]).
pub const MAC_READ_RESP_SIZE: usize = 8;

/// base/ice_adminq_cmd.h:226 (`struct ice_aqc_get_sw_cfg_resp_elem`: three le16).
pub const SW_CFG_ELEM_SIZE: usize = 6;
/// base/ice_adminq_cmd.h:232 (`ICE_AQC_GET_SW_CONF_RESP_TYPE_S` 14, 2 bits).
pub const SW_CONF_RESP_TYPE_S: u16 = 14;
/// base/ice_adminq_cmd.h:234 (`ICE_AQC_GET_SW_CONF_RESP_PHYS_PORT` 0).
pub const SW_CONF_RESP_PHYS_PORT: u16 = 0;
/// base/ice_adminq_cmd.h:236 (`ICE_AQC_GET_SW_CONF_RESP_VSI` 2).
pub const SW_CONF_RESP_VSI: u16 = 2;
/// base/ice_adminq_cmd.h:230 (`ICE_AQC_GET_SW_CONF_RESP_VSI_PORT_NUM_M` 0x3FF).
pub const SW_CONF_RESP_NUM_M: u16 = 0x3FF;
/// base/ice_adminq_cmd.h:246 (`ICE_AQC_GET_SW_CONF_RESP_FUNC_NUM_M` 0x7FFF, in `pf_vf_num`).
pub const SW_CONF_RESP_FUNC_NUM_M: u16 = 0x7FFF;
/// base/ice_adminq_cmd.h:248 (`ICE_AQC_GET_SW_CONF_RESP_IS_VF` BIT(15)).
pub const SW_CONF_RESP_IS_VF: u16 = 1 << 15;

/// Scheduler element types (base/ice_adminq_cmd.h:1087–1091 `ICE_AQC_ELEM_TYPE_*`).
pub mod elem_type {
    pub const ROOT_PORT: u8 = 1;
    pub const TC: u8 = 2;
    pub const SE_GENERIC: u8 = 3;
    pub const ENTRY_POINT: u8 = 4;
    pub const LEAF: u8 = 5;
}
/// base/ice_adminq_cmd.h:1094 (`ICE_AQC_ELEM_VALID_GENERIC` BIT(0)).
pub const ELEM_VALID_GENERIC: u8 = 0x1;
/// base/ice_adminq_cmd.h:1095 (`ICE_AQC_ELEM_VALID_CIR` BIT(1)).
pub const ELEM_VALID_CIR: u8 = 0x2;
/// base/ice_adminq_cmd.h:1096 (`ICE_AQC_ELEM_VALID_EIR` BIT(2)).
pub const ELEM_VALID_EIR: u8 = 0x4;
/// base/ice_type.h:1099 (`ICE_SCHED_DFLT_RL_PROF_ID` 0).
pub const SCHED_DFLT_RL_PROF_ID: u16 = 0;
/// base/ice_type.h:1101 (`ICE_SCHED_DFLT_BW_WT` 4).
pub const SCHED_DFLT_BW_WT: u16 = 4;
/// base/ice_adminq_cmd.h:1084 (`struct ice_aqc_txsched_elem`: 4 × u8, cir_bw, eir_bw,
/// srl_id, reserved2 = 16 bytes).
pub const TXSCHED_ELEM_SIZE: usize = 16;
/// base/ice_adminq_cmd.h:1115 (`struct ice_aqc_txsched_elem_data`: parent_teid,
/// node_teid, data = 24 bytes).
pub const TXSCHED_ELEM_DATA_SIZE: usize = 24;
/// base/ice_adminq_cmd.h:1121 (`struct ice_aqc_txsched_topo_grp_info_hdr`: 8 bytes).
pub const TOPO_GRP_HDR_SIZE: usize = 8;

/// base/ice_adminq_cmd.h:430 (`ICE_AQ_VSI_IS_VALID` BIT(15) in `vsi_num`).
pub const AQ_VSI_IS_VALID: u16 = 1 << 15;
/// base/ice_adminq_cmd.h:429 (`ICE_AQ_VSI_NUM_M` 0x3FF).
pub const AQ_VSI_NUM_M: u16 = 0x3FF;
/// base/ice_adminq_cmd.h:440 (`ICE_AQ_VSI_TYPE_PF` 0x2 in `vsi_flags`, byte 6
/// of `struct ice_aqc_add_get_update_free_vsi` :426).
pub const AQ_VSI_TYPE_PF: u8 = 0x2;
/// base/ice_adminq_cmd.h:473 (`struct ice_aqc_vsi_props` is 128 bytes).
pub const VSI_PROPS_SIZE: usize = 128;
/// base/ice_adminq_cmd.h:481 (`ICE_AQ_VSI_PROP_RXQ_MAP_VALID` BIT(6)).
pub const VSI_PROP_RXQ_MAP_VALID: u16 = 1 << 6;
/// base/ice_adminq_cmd.h:573 (`mapping_flags`, byte 28 of `ice_aqc_vsi_props`:
/// valid_sections 0, sw 2–5, sec 6–7, inner VLAN 8–15, ingress 16, egress 20,
/// outer VLAN 24–27).
pub const VSI_PROPS_MAPPING_FLAGS_OFF: usize = 28;
/// base/ice_adminq_cmd.h:576 (`q_mapping[16]`, bytes 30–61).
pub const VSI_PROPS_Q_MAPPING_OFF: usize = 30;
/// base/ice_adminq_cmd.h:579 (`tc_mapping[8]`, bytes 62–77).
pub const VSI_PROPS_TC_MAPPING_OFF: usize = 62;
/// base/ice_adminq_cmd.h:574 (`ICE_AQ_VSI_Q_MAP_CONTIG` 0x0).
pub const VSI_Q_MAP_CONTIG: u16 = 0x0;
/// base/ice_adminq_cmd.h:582 (`ICE_AQ_VSI_TC_Q_NUM_S` 11: queue count as a power of two).
pub const VSI_TC_Q_NUM_S: u16 = 11;
/// linux:ice_adminq_cmd.h (`ICE_AQ_VSI_PROP_Q_OPT_VALID` BIT(7)): the
/// queueing-option section (`q_opt_rss`, `q_opt_tc`, `q_opt_flags`) is valid.
pub const VSI_PROP_Q_OPT_VALID: u16 = 1 << 7;
/// linux:ice_adminq_cmd.h (`q_opt_rss`, the byte after `tc_mapping[8]`: 78).
pub const VSI_PROPS_Q_OPT_RSS_OFF: usize = 78;
/// linux:ice_adminq_cmd.h (`ICE_AQ_VSI_Q_OPT_RSS_LUT_PF` 0x2 at
/// `ICE_AQ_VSI_Q_OPT_RSS_LUT_S` 0): the VSI uses the PF's LUT, as Linux
/// `ice_set_rss_vsi_ctx` and DPDK `ice_setup_vsi` set for a PF VSI.
pub const VSI_Q_OPT_RSS_LUT_PF: u8 = 0x2;
/// linux:ice_adminq_cmd.h (`ICE_AQ_VSI_Q_OPT_RSS_HASH_S` 6, `ICE_AQ_VSI_Q_OPT_RSS_TPLZ`
/// 0x0 << 6): the Toeplitz hash.
pub const VSI_Q_OPT_RSS_HASH_S: u8 = 6;
pub const VSI_Q_OPT_RSS_TPLZ: u8 = 0x0 << VSI_Q_OPT_RSS_HASH_S;

/// linux:ice_adminq_cmd.h (`struct ice_aqc_get_set_rss_key`: `vsi_id` le16
/// @0, `ICE_AQC_GSET_RSS_KEY_VSI_VALID` BIT(15), `ICE_AQC_GSET_RSS_KEY_VSI_ID_M`
/// 0x3FF; the same in `struct ice_aqc_get_set_rss_lut`; newer kernels call it
/// `ICE_AQC_RSS_VSI_VALID`).
pub const AQ_RSS_VSI_VALID: u16 = 1 << 15;
pub const AQ_RSS_VSI_ID_M: u16 = 0x3FF;
/// linux:ice_adminq_cmd.h (`ICE_AQC_GET_SET_RSS_KEY_DATA_RSS_KEY_SIZE` 0x28):
/// the standard (Toeplitz) key of `struct ice_aqc_get_set_rss_keys`.
pub const RSS_STD_KEY_SIZE: usize = 0x28;
/// linux:ice_adminq_cmd.h (`ICE_GET_SET_RSS_KEY_EXTEND_KEY_SIZE` = 0x28 +
/// `ICE_AQC_GET_SET_RSS_KEY_DATA_HASH_KEY_SIZE` 0xC): the whole
/// `struct ice_aqc_get_set_rss_keys` buffer `ice_aq_set_rss_key` sends.
pub const RSS_KEYS_BUF_SIZE: usize = 0x28 + 0xC;
/// linux:ice_adminq_cmd.h (`struct ice_aqc_get_set_rss_lut`: `vsi_id` le16 @0,
/// `flags` le16 @2).
pub const RSS_LUT_FLAGS_OFF: usize = 2;
/// linux:ice_adminq_cmd.h (`enum ice_lut_type`: `ICE_LUT_VSI` 0, `ICE_LUT_PF` 1,
/// `ICE_LUT_GLOBAL` 2; older headers `ICE_AQC_GSET_RSS_LUT_TABLE_TYPE_*` at
/// `_TABLE_TYPE_S` 0, mask 0x3).
pub mod lut_type {
    pub const VSI: u16 = 0;
    pub const PF: u16 = 1;
    pub const GLOBAL: u16 = 2;
}
/// linux:ice_adminq_cmd.h (`enum ice_lut_size`: `ICE_LUT_VSI_SIZE` 64,
/// `ICE_LUT_GLOBAL_SIZE` 512, `ICE_LUT_PF_SIZE` 2048).
pub const LUT_VSI_SIZE: usize = 64;
pub const LUT_GLOBAL_SIZE: usize = 512;
pub const LUT_PF_SIZE: usize = 2048;
/// linux:ice_adminq_cmd.h (`enum ice_aqc_lut_flags`: `ICE_AQC_LUT_SIZE_SMALL`
/// 0 (64 or 128 entries), `ICE_AQC_LUT_SIZE_512` BIT(2), `ICE_AQC_LUT_SIZE_2K`
/// BIT(3); older headers: `ICE_AQC_GSET_RSS_LUT_TABLE_SIZE_S` 2 with flags
/// 0/1/2).
pub const AQC_LUT_SIZE_SMALL: u16 = 0;
pub const AQC_LUT_SIZE_512: u16 = 1 << 2;
pub const AQC_LUT_SIZE_2K: u16 = 1 << 3;

/// base/ice_adminq_cmd.h:1534 (`ICE_AQ_LSE_M` 0x3 in get_link_status `cmd_flags`, byte 2).
pub const AQ_LSE_M: u16 = 0x3;
/// base/ice_adminq_cmd.h:1536 (`ICE_AQ_LSE_DIS` 0x2): disable link-status events.
pub const AQ_LSE_DIS: u16 = 0x2;
/// base/ice_adminq_cmd.h:1537 (`ICE_AQ_LSE_ENA` 0x3): enable link-status events.
pub const AQ_LSE_ENA: u16 = 0x3;
/// base/ice_adminq_cmd.h:1539 (`ICE_AQ_LSE_IS_ENABLED` 0x1, response only).
pub const AQ_LSE_IS_ENABLED: u16 = 0x1;
/// base/ice_adminq_cmd.h:1573 (`ICE_AQ_LINK_UP` BIT(0) in `link_info`).
pub const AQ_LINK_UP: u8 = 0x1;
/// base/ice_adminq_cmd.h:1579 (`ICE_AQ_MEDIA_AVAILABLE` BIT(6) in `link_info`).
pub const AQ_MEDIA_AVAILABLE: u8 = 1 << 6;
/// base/ice_adminq_cmd.h:1582 (`ICE_AQ_AN_COMPLETED` BIT(0) in `an_info`).
pub const AQ_AN_COMPLETED: u8 = 0x1;
/// base/ice_adminq_cmd.h:1633 (`ICE_AQ_LINK_SPEED_10GB` BIT(5)).
pub const AQ_LINK_SPEED_10GB: u16 = 1 << 5;
/// base/ice_adminq_cmd.h:1635 (`ICE_AQ_LINK_SPEED_25GB` BIT(7)).
pub const AQ_LINK_SPEED_25GB: u16 = 1 << 7;
/// base/ice_adminq_cmd.h:1636 (`ICE_AQ_LINK_SPEED_40GB` BIT(8)).
pub const AQ_LINK_SPEED_40GB: u16 = 1 << 8;
/// base/ice_adminq_cmd.h:1637 (`ICE_AQ_LINK_SPEED_50GB` BIT(9)).
pub const AQ_LINK_SPEED_50GB: u16 = 1 << 9;
/// base/ice_adminq_cmd.h:1638 (`ICE_AQ_LINK_SPEED_100GB` BIT(10)).
pub const AQ_LINK_SPEED_100GB: u16 = 1 << 10;
/// base/ice_adminq_cmd.h:1550 (`ICE_GET_LINK_STATUS_DATALEN_V1` 32).
pub const LINK_STATUS_DATALEN: usize = 32;
/// Byte offsets in `struct ice_aqc_get_link_status_data` (base/ice_adminq_cmd.h:1555):
/// topo_media_conflict 0, link_cfg_err 1, `link_info` 2 (:1572), an_info 3
/// (:1581), ext_info 4, lb_status 5, `max_frame_size` 6 (:1605), cfg 8,
/// power_desc 9, `link_speed` 10 (:1626).
pub const LINK_DATA_INFO_OFF: usize = 2;
pub const LINK_DATA_AN_INFO_OFF: usize = 3;
pub const LINK_DATA_MAX_FRAME_OFF: usize = 6;
pub const LINK_DATA_SPEED_OFF: usize = 10;

/// base/ice_adminq_cmd.h:2899 (`struct ice_aqc_add_tx_qgrp` header: parent_teid,
/// num_txqs, rsvd[3] = 8 bytes).
pub const ADD_TXQ_GRP_HDR_SIZE: usize = 8;
/// base/ice_adminq_cmd.h:2885 (`struct ice_aqc_add_txqs_perq`: txq_id(2) rsvd(2)
/// q_teid(4) txq_ctx[22] (:2889) rsvd2(2) info(16) = 48 bytes).
pub const ADD_TXQ_PERQ_SIZE: usize = 48;
/// base/ice_adminq_cmd.h:2937 (`struct ice_aqc_dis_txq_item`: parent_teid,
/// num_qs, rsvd = 6 bytes, then `__le16 q_id[]`, padded to 4 bytes).
pub const DIS_TXQ_ITEM_HDR_SIZE: usize = 6;
/// base/ice_adminq_cmd.h:2916 (`ICE_AQC_Q_DIS_CMD_FLUSH_PIPE` BIT(3) in `cmd_type`).
pub const Q_DIS_CMD_FLUSH_PIPE: u8 = 1 << 3;
/// base/ice_adminq_cmd.h:2921 (`ICE_AQC_Q_DIS_TIMEOUT_S` 10 in `vmvf_and_timeout`, byte 2).
pub const Q_DIS_TIMEOUT_S: u16 = 10;
/// base/ice_adminq_cmd.h:2922 (`ICE_AQC_Q_DIS_TIMEOUT_M` 0x3F << 10).
pub const Q_DIS_TIMEOUT_M: u16 = 0x3F << 10;
/// The disable timeout both drivers send: base/ice_common.c:4748
/// (`5 << ICE_AQC_Q_DIS_TIMEOUT_S` in `ice_aq_dis_lan_txq`).
pub const Q_DIS_TIMEOUT: u16 = 5;

// Link set-up: get_phy_caps (0x0600), set_phy_cfg (0x0601), restart_an (0x0605).

/// base/ice_adminq_cmd.h:1286 (`struct ice_aqc_get_phy_caps`: lport_num @0,
/// param0 le16 @2). :1303 (`ICE_AQC_REPORT_TOPO_CAP_MEDIA` BIT(1) in param0),
/// the mode DPDK `ice_phy_conf_link` (ice/ice_ethdev.c:4968) asks for.
pub const AQC_REPORT_TOPO_CAP_MEDIA: u16 = 1 << 1;
/// base/ice_adminq_cmd.h:1303 (`ICE_AQC_REPORT_ACTIVE_CFG` BIT(2)).
pub const AQC_REPORT_ACTIVE_CFG: u16 = 1 << 2;
/// base/ice_adminq_cmd.h:1397–1466 (`struct ice_aqc_get_phy_caps_data`):
/// 48 bytes of fields + 16 × 32-byte `qual_modules` = 560 bytes.
pub const PHY_CAPS_DATA_SIZE: usize = 48 + 16 * 32;
/// Byte offsets in `ice_aqc_get_phy_caps_data`: phy_type_low 0, phy_type_high 8,
/// caps 16, low_power_ctrl_an 17, eee_cap 18, eeer_value 20, phy_id_oui 22,
/// phy_fw_ver 26, link_fec_options 34 (:1430), module_compliance_enforcement 35 (:1440).
pub const PHY_CAPS_CAPS_OFF: usize = 16;
pub const PHY_CAPS_FEC_OFF: usize = 34;
pub const PHY_CAPS_MOD_COMPL_OFF: usize = 35;
/// base/ice_adminq_cmd.h:1479 (`struct ice_aqc_set_phy_cfg_data`): phy_type_low 0,
/// phy_type_high 8, caps 16, low_power_ctrl_an 17, eee_cap 18, eeer_value 20,
/// link_fec_opt 22, module_compliance_enforcement 23 = 24 bytes.
pub const SET_PHY_CFG_DATA_SIZE: usize = 24;
/// base/ice_adminq_cmd.h:1483 (`ICE_AQ_PHY_ENA_VALID_MASK` 0xEF).
pub const AQ_PHY_ENA_VALID_MASK: u8 = 0xEF;
/// base/ice_adminq_cmd.h:1487 (`ICE_AQ_PHY_ENA_LINK` BIT(3)).
pub const AQ_PHY_ENA_LINK: u8 = 1 << 3;
/// base/ice_adminq_cmd.h:1488 (`ICE_AQ_PHY_ENA_AUTO_LINK_UPDT` BIT(5)).
pub const AQ_PHY_ENA_AUTO_LINK_UPDT: u8 = 1 << 5;
/// base/ice_adminq_cmd.h:1520 (`struct ice_aqc_restart_an`: lport_num @0,
/// cmd_flags @2); :1524 (`ICE_AQC_RESTART_AN_LINK_RESTART` BIT(1)).
pub const AQC_RESTART_AN_LINK_RESTART: u8 = 1 << 1;
/// base/ice_adminq_cmd.h:1525 (`ICE_AQC_RESTART_AN_LINK_ENABLE` BIT(2)).
pub const AQC_RESTART_AN_LINK_ENABLE: u8 = 1 << 2;
/// base/ice_adminq_cmd.h:1557 (`ICE_AQ_LINK_TOPO_CONFLICT` BIT(0) in topo_media_conflict, byte 0).
pub const AQ_LINK_TOPO_CONFLICT: u8 = 1 << 0;
/// base/ice_adminq_cmd.h:1558 (`ICE_AQ_LINK_MEDIA_CONFLICT` BIT(1)).
pub const AQ_LINK_MEDIA_CONFLICT: u8 = 1 << 1;
/// base/ice_adminq_cmd.h:1574 (`ICE_AQ_LINK_FAULT` BIT(1) in link_info).
pub const AQ_LINK_FAULT: u8 = 1 << 1;
/// base/ice_adminq_cmd.h:1580 (`ICE_AQ_SIGNAL_DETECT` BIT(7) in link_info).
pub const AQ_SIGNAL_DETECT: u8 = 1 << 7;
/// base/ice_adminq_cmd.h:1589 (`ICE_AQ_QUALIFIED_MODULE` BIT(7) in an_info).
pub const AQ_QUALIFIED_MODULE: u8 = 1 << 7;
