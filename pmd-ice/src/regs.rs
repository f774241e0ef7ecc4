//! E810 register, descriptor and admin-queue definitions.
//!
//! Every constant names the published definition it comes from. Sources:
//! DPDK `drivers/net/intel/ice/base/{ice_lan_tx_rx.h, ice_hw_autogen.h,
//! ice_adminq_cmd.h, ice_devids.h}` and Linux
//! `drivers/net/ethernet/intel/ice/{ice_lan_tx_rx.h, ice_txrx.h, ice_hw_autogen.h,
//! ice_adminq_cmd.h, ice_common.c}`, as collected in
//! `shared/reference/anchors.md` ("ice / E810"). Constants marked
//! "(not in anchors.md)" are taken from the same published headers but were
//! not cross-checked in the anchors report; they are used consistently by the
//! driver and the model and must be verified against the headers before the
//! driver is pointed at a real E810.

#![allow(dead_code)]

// ---------------------------------------------------------------------------
// PCI identity
// ---------------------------------------------------------------------------

/// PCI vendor id of Intel (PCI-SIG assignment; `ice_devids.h`: `ICE_INTEL_VENDOR_ID`).
pub const INTEL_VENDOR_ID: u16 = 0x8086;
/// `ice_devids.h`: `ICE_DEV_ID_E810C_BACKPLANE`.
pub const DEV_ID_E810C_BACKPLANE: u16 = 0x1591;
/// `ice_devids.h`: `ICE_DEV_ID_E810C_QSFP`.
pub const DEV_ID_E810C_QSFP: u16 = 0x1592;
/// `ice_devids.h`: `ICE_DEV_ID_E810C_SFP`.
pub const DEV_ID_E810C_SFP: u16 = 0x1593;
/// `ice_devids.h`: `ICE_DEV_ID_E810_XXV_BACKPLANE`.
pub const DEV_ID_E810_XXV_BACKPLANE: u16 = 0x1599;
/// `ice_devids.h`: `ICE_DEV_ID_E810_XXV_QSFP`.
pub const DEV_ID_E810_XXV_QSFP: u16 = 0x159A;
/// `ice_devids.h`: `ICE_DEV_ID_E810_XXV_SFP`.
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
// BAR0 registers (ice_hw_autogen.h)
// ---------------------------------------------------------------------------

/// `ice_hw_autogen.h`: `QTX_COMM_DBELL(_DBQM)` = 0x002C0000 + 4 * q, q in 0..16383.
pub const fn qtx_comm_dbell(q: u32) -> u32 {
    0x002C_0000 + 4 * q
}
/// `ice_hw_autogen.h`: `QTX_COMM_DBELL` array size (`_DBQM` 0..16383).
pub const QTX_COMM_DBELL_MAX: u32 = 16384;
/// `ice_hw_autogen.h`: `QTX_COMM_HEAD(_DBQM)` = 0x000E0000 + 4 * q.
pub const fn qtx_comm_head(q: u32) -> u32 {
    0x000E_0000 + 4 * q
}
/// `ice_hw_autogen.h`: `QRX_TAIL(_QRX)` = 0x00290000 + 4 * q.
pub const fn qrx_tail(q: u32) -> u32 {
    0x0029_0000 + 4 * q
}
/// `ice_hw_autogen.h`: `QRX_CTRL(_QRX)` = 0x00120000 + 4 * q.
pub const fn qrx_ctrl(q: u32) -> u32 {
    0x0012_0000 + 4 * q
}
/// `ice_hw_autogen.h`: `QRX_CTRL_QENA_REQ_M` BIT(0) (not in anchors.md).
pub const QRX_CTRL_QENA_REQ: u32 = 1 << 0;
/// `ice_hw_autogen.h`: `QRX_CTRL_QENA_STAT_M` BIT(2) (not in anchors.md).
pub const QRX_CTRL_QENA_STAT: u32 = 1 << 2;
/// `ice_hw_autogen.h`: `QRX_CONTEXT(_i, _QRX)` = 0x00280000 + 8192 * i + 4 * q,
/// i in 0..7: the RX queue context written as 8 dwords (not in anchors.md).
pub const fn qrx_context(i: u32, q: u32) -> u32 {
    0x0028_0000 + 8192 * i + 4 * q
}
/// `ice_hw_autogen.h`: `QRX_CONTEXT` dword count (`ICE_RXQ_CTX_SIZE_DWORDS` 8, not in anchors.md).
pub const QRX_CONTEXT_DWORDS: u32 = 8;
/// `ice_hw_autogen.h`: `QRXFLXP_CNTXT(_QRX)` = 0x00480000 + 4 * q (not in anchors.md).
pub const fn qrxflxp_cntxt(q: u32) -> u32 {
    0x0048_0000 + 4 * q
}
/// `ice_hw_autogen.h`: `QRXFLXP_CNTXT_RXDID_IDX_M` = 0x3F at bit 0 (not in anchors.md).
pub const QRXFLXP_CNTXT_RXDID_IDX_M: u32 = 0x3F;
/// `ice_hw_autogen.h`: `QINT_TQCTL(_DBQM)` = 0x00140000 + 4 * q.
pub const fn qint_tqctl(q: u32) -> u32 {
    0x0014_0000 + 4 * q
}
/// `ice_hw_autogen.h`: `GLCOMM_QTX_CNTX_CTL`.
pub const GLCOMM_QTX_CNTX_CTL: u32 = 0x002D_2DC8;
/// `ice_hw_autogen.h`: `GLCOMM_QTX_CNTX_CTL_QUEUE_ID_M` bits 0–13.
pub const GLCOMM_QTX_CNTX_CTL_QUEUE_ID_M: u32 = 0x3FFF;
/// `ice_hw_autogen.h`: `GLCOMM_QTX_CNTX_CTL_CMD_S` 16 (3 bits).
pub const GLCOMM_QTX_CNTX_CTL_CMD_S: u32 = 16;
/// `ice_hw_autogen.h`: `GLCOMM_QTX_CNTX_CTL_CMD_EXEC_M` BIT(19).
pub const GLCOMM_QTX_CNTX_CTL_CMD_EXEC: u32 = 1 << 19;
/// `ice_hw_autogen.h`: `GLCOMM_QTX_CNTX_DATA(_i)` = 0x002D2D40 + 4 * i, i in 0..9.
pub const fn glcomm_qtx_cntx_data(i: u32) -> u32 {
    0x002D_2D40 + 4 * i
}

/// `ice_hw_autogen.h`: `PF_FW_ATQBAL`.
pub const PF_FW_ATQBAL: u32 = 0x0008_0000;
/// `ice_hw_autogen.h`: `PF_FW_ATQBAH`.
pub const PF_FW_ATQBAH: u32 = 0x0008_0100;
/// `ice_hw_autogen.h`: `PF_FW_ATQLEN`.
pub const PF_FW_ATQLEN: u32 = 0x0008_0200;
/// `ice_hw_autogen.h`: `PF_FW_ATQH`.
pub const PF_FW_ATQH: u32 = 0x0008_0300;
/// `ice_hw_autogen.h`: `PF_FW_ATQT`.
pub const PF_FW_ATQT: u32 = 0x0008_0400;
/// `ice_hw_autogen.h`: `PF_FW_ARQBAL`.
pub const PF_FW_ARQBAL: u32 = 0x0008_0080;
/// `ice_hw_autogen.h`: `PF_FW_ARQBAH`.
pub const PF_FW_ARQBAH: u32 = 0x0008_0180;
/// `ice_hw_autogen.h`: `PF_FW_ARQLEN`.
pub const PF_FW_ARQLEN: u32 = 0x0008_0280;
/// `ice_hw_autogen.h`: `PF_FW_ARQH`.
pub const PF_FW_ARQH: u32 = 0x0008_0380;
/// `ice_hw_autogen.h`: `PF_FW_ARQT`.
pub const PF_FW_ARQT: u32 = 0x0008_0480;
/// `ice_hw_autogen.h`: `PF_FW_ATQLEN_ATQLEN_M` bits 0–9 (also ARQLEN).
pub const PF_FW_AQLEN_LEN_M: u32 = 0x3FF;
/// `ice_hw_autogen.h`: `PF_FW_ATQLEN_ATQENABLE_M` BIT(31) (also ARQLEN).
pub const PF_FW_AQLEN_ENABLE: u32 = 1 << 31;
/// `ice_hw_autogen.h`: `PF_FW_ATQH_ATQH_M` bits 0–9 (also ARQH, ATQT, ARQT; not in anchors.md).
pub const PF_FW_AQ_PTR_M: u32 = 0x3FF;

/// `ice_hw_autogen.h`: `PFGEN_CTRL`.
pub const PFGEN_CTRL: u32 = 0x0009_1000;
/// `ice_hw_autogen.h`: `PFGEN_CTRL_PFSWR_M` BIT(0): PF software reset.
pub const PFGEN_CTRL_PFSWR: u32 = 1 << 0;
/// `ice_hw_autogen.h`: `GLGEN_RSTAT`.
pub const GLGEN_RSTAT: u32 = 0x000B_8188;
/// `ice_hw_autogen.h`: `GLGEN_RSTAT_DEVSTATE_M` bits 0–1 (0 = device ready).
pub const GLGEN_RSTAT_DEVSTATE_M: u32 = 0x3;
/// `ice_hw_autogen.h`: `GLNVM_ULD`.
pub const GLNVM_ULD: u32 = 0x000B_6008;
/// `ice_common.c` `ice_check_reset`: the reset-done bits the PF waits for in
/// `GLNVM_ULD` (CORER_DONE BIT(3), GLOBR_DONE BIT(4); not in anchors.md).
pub const GLNVM_ULD_RESET_DONE: u32 = (1 << 3) | (1 << 4);
/// `ice_hw_autogen.h`: `GLGEN_RTRIG`.
pub const GLGEN_RTRIG: u32 = 0x000B_8190;
/// `ice_common.c` `ice_pf_reset`: PFSWR poll bound (`ICE_PF_RESET_WAIT_COUNT`
/// 300 polls of up to 20 ms, the "2000 ms" of anchors.md, rounded to the anchors' figure).
pub const PF_RESET_TIMEOUT_MS: u64 = 2000;

/// `ice_hw_autogen.h`: `GL_MDET_TX_TCLAN` — TX LAN malicious-driver event
/// (not in anchors.md). Fields below; write all-ones to clear the latched event.
pub const GL_MDET_TX_TCLAN: u32 = 0x000F_C068;
/// `ice_hw_autogen.h`: `GL_MDET_TX_TCLAN_QNUM_M` = 0x7FFF at bit 0 (not in anchors.md).
pub const GL_MDET_TX_TCLAN_QNUM_M: u32 = 0x7FFF;
/// `ice_hw_autogen.h`: `GL_MDET_TX_TCLAN_PF_NUM_S` 23, 3 bits (not in anchors.md).
pub const GL_MDET_TX_TCLAN_PF_NUM_S: u32 = 23;
/// `ice_hw_autogen.h`: `GL_MDET_TX_TCLAN_MAL_TYPE_S` 26, 5 bits (not in anchors.md).
pub const GL_MDET_TX_TCLAN_MAL_TYPE_S: u32 = 26;
/// `ice_hw_autogen.h`: `GL_MDET_TX_TCLAN_MAL_TYPE_M` (5 bits).
pub const GL_MDET_TX_TCLAN_MAL_TYPE_M: u32 = 0x1F << 26;
/// `ice_hw_autogen.h`: `GL_MDET_TX_TCLAN_VALID_M` BIT(31) (not in anchors.md).
pub const GL_MDET_TX_TCLAN_VALID: u32 = 1 << 31;

/// Malicious-driver event kinds reported in `GL_MDET_TX_TCLAN.MAL_TYPE`.
/// The published header does not name the MAL_TYPE encodings; these codes are
/// the device model's own and are decoded only by this driver.
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
            _ => "unknown",
        }
    }
}

/// `ice_hw_autogen.h`: `GLPRT_GOTCL(_i)` = 0x00380B40 + 8 * port (good octets
/// transmitted, low 32 bits; `GLPRT_GOTCH` at +4 holds bits 32–39).
pub const fn glprt_gotcl(port: u32) -> u32 {
    0x0038_0B40 + 8 * port
}
/// `ice_hw_autogen.h`: `GLPRT_UPTCL(_i)` = 0x003811C0 + 8 * port (unicast packets
/// transmitted; `GLPRT_UPTCH` at +4).
pub const fn glprt_uptcl(port: u32) -> u32 {
    0x0038_11C0 + 8 * port
}
/// `ice_hw_autogen.h`: `GLV_GOTCL(_i)` = 0x00300000 + 8 * vsi.
pub const fn glv_gotcl(vsi: u32) -> u32 {
    0x0030_0000 + 8 * vsi
}
/// `ice_hw_autogen.h`: `GLV_UPTCL(_i)` = 0x0030A000 + 8 * vsi.
pub const fn glv_uptcl(vsi: u32) -> u32 {
    0x0030_A000 + 8 * vsi
}
/// `ice_hw_autogen.h`: `GLV_TEPC(_VSI)` = 0x00312000 + 4 * vsi (TX error packets, 32 bits).
pub const fn glv_tepc(vsi: u32) -> u32 {
    0x0031_2000 + 4 * vsi
}
/// Width of the GLPRT/GLV 40-bit statistics counters (`ice_stat_update40` in Linux `ice_main.c`).
pub const STAT40_MASK: u64 = (1 << 40) - 1;

/// Size of the BAR0 window the model exposes (E810 BAR0 is 128 MiB; the
/// doorbell page array at 0x04000000 is not modelled).
pub const BAR0_LEN: usize = 0x0400_0000;

// ---------------------------------------------------------------------------
// TX descriptors (ice_lan_tx_rx.h)
// ---------------------------------------------------------------------------

/// `ice_lan_tx_rx.h`: `struct ice_tx_desc` is 16 bytes.
pub const TX_DESC_SIZE: usize = 16;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_DTYPE_S` 0.
pub const TXD_QW1_DTYPE_S: u32 = 0;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_DTYPE_M` 0xF.
pub const TXD_QW1_DTYPE_M: u64 = 0xF;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_DTYPE_DATA` 0x0.
pub const TX_DESC_DTYPE_DATA: u64 = 0x0;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_DTYPE_CTX` 0x1.
pub const TX_DESC_DTYPE_CTX: u64 = 0x1;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_DTYPE_DESC_DONE` 0xF.
pub const TX_DESC_DTYPE_DESC_DONE: u64 = 0xF;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_CMD_S` 4.
pub const TXD_QW1_CMD_S: u32 = 4;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_CMD_M` (0xFFF << 4).
pub const TXD_QW1_CMD_M: u64 = 0xFFF << 4;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_CMD_EOP` 0x0001.
pub const TX_DESC_CMD_EOP: u64 = 0x0001;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_CMD_RS` 0x0002.
pub const TX_DESC_CMD_RS: u64 = 0x0002;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_CMD_IL2TAG1` 0x0008: insert `L2TAG1` as an 802.1Q tag.
pub const TX_DESC_CMD_IL2TAG1: u64 = 0x0008;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_CMD_DUMMY` 0x0010.
pub const TX_DESC_CMD_DUMMY: u64 = 0x0010;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_CMD_IIPT_IPV4_CSUM` 0x0060 (unused: safe mode).
pub const TX_DESC_CMD_IIPT_IPV4_CSUM: u64 = 0x0060;
/// `ice_lan_tx_rx.h`: `ICE_TX_DESC_CMD_L4T_EOFT_UDP` 0x0300 (unused: safe mode).
pub const TX_DESC_CMD_L4T_EOFT_UDP: u64 = 0x0300;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_OFFSET_S` 16 (18 bits).
pub const TXD_QW1_OFFSET_S: u32 = 16;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_TX_BUF_SZ_S` 34.
pub const TXD_QW1_TX_BUF_SZ_S: u32 = 34;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_TX_BUF_SZ_M` (0x3FFF << 34).
pub const TXD_QW1_TX_BUF_SZ_M: u64 = 0x3FFF << 34;
/// `ice_lan_tx_rx.h`: `ICE_TXD_QW1_L2TAG1_S` 48.
pub const TXD_QW1_L2TAG1_S: u32 = 48;
/// DPDK `common/tx.h`: `CI_MAX_DATA_PER_TXD` = 16383 bytes per descriptor.
pub const MAX_DATA_PER_TXD: usize = 0x3FFF;
/// Linux `ice_txrx.h`: `ICE_MAX_BUF_TXD` 8 — data descriptors per (non-TSO) frame.
pub const MAX_BUF_TXD: usize = 8;
/// DPDK `ice_rxtx.h`: `ICE_TX_MIN_PKT_LEN` 17 (Linux `ICE_MIN_TX_LEN`).
pub const TX_MIN_PKT_LEN: usize = 17;
/// Linux `ice_adminq_cmd.h`: `ICE_AQ_SET_MAC_FRAME_SIZE_MAX` 9728 (largest frame; not in anchors.md).
pub const MAX_FRAME_SIZE: usize = 9728;

/// `ice_lan_tx_rx.h`: context descriptor `ICE_TXD_CTX_QW1_CMD_S` 4.
pub const TXD_CTX_QW1_CMD_S: u32 = 4;
/// `ice_lan_tx_rx.h`: `ICE_TX_CTX_DESC_TSO` 0x01.
pub const TX_CTX_DESC_TSO: u64 = 0x01;
/// `ice_lan_tx_rx.h`: `ICE_TX_CTX_DESC_IL2TAG2` 0x04: insert `l2tag2` (outer tag).
pub const TX_CTX_DESC_IL2TAG2: u64 = 0x04;

/// DPDK `ice_ethdev.h`: `ICE_DEFAULT_TX_RSBIT_THRESH` 32.
pub const DEFAULT_TX_RS_THRESH: usize = 32;
/// DPDK `ice_ethdev.h`: `ICE_DEFAULT_TX_FREE_THRESH` 32.
pub const DEFAULT_TX_FREE_THRESH: usize = 32;
/// DPDK `ice_rxtx.h`: `ICE_MIN_RING_DESC` 64.
pub const MIN_RING_DESC: u16 = 64;
/// DPDK `ice_rxtx.h`: `ICE_MAX_RING_DESC` = 8192 − 32.
pub const MAX_RING_DESC: u16 = 8192 - 32;
/// DPDK `ice_rxtx.h`: `ICE_ALIGN_RING_DESC` 32.
pub const ALIGN_RING_DESC: u16 = 32;
/// DPDK `ice_rxtx.h`: `ICE_RING_BASE_ALIGN` 128 bytes.
pub const RING_BASE_ALIGN: u64 = 128;

// ---------------------------------------------------------------------------
// RX descriptors (ice_lan_tx_rx.h; not in anchors.md)
// ---------------------------------------------------------------------------

/// `ice_lan_tx_rx.h`: `union ice_32b_rx_flex_desc` is 32 bytes.
pub const RX_DESC_SIZE: usize = 32;
/// `ice_lan_tx_rx.h`: `ICE_RXDID_FLEX_NIC` 2 — the flex-NIC write-back profile.
pub const RXDID_FLEX_NIC: u32 = 2;
/// `ice_lan_tx_rx.h`: `struct ice_32b_rx_flex_desc_nic` byte offset of `pkt_len`.
pub const RX_FLEX_PKT_LEN_OFF: usize = 4;
/// `ice_lan_tx_rx.h`: `ICE_RX_FLX_DESC_PKT_LEN_M` 0x3FFF.
pub const RX_FLEX_PKT_LEN_M: u16 = 0x3FFF;
/// `ice_lan_tx_rx.h`: byte offset of `status_error0` in the flex descriptor.
pub const RX_FLEX_STATUS0_OFF: usize = 8;
/// `ice_lan_tx_rx.h`: `ICE_RX_FLEX_DESC_STATUS0_DD_S` 0.
pub const RX_FLEX_STATUS0_DD: u16 = 1 << 0;
/// `ice_lan_tx_rx.h`: `ICE_RX_FLEX_DESC_STATUS0_EOF_S` 1.
pub const RX_FLEX_STATUS0_EOF: u16 = 1 << 1;
/// `ice_lan_tx_rx.h`: `ICE_RX_FLEX_DESC_STATUS0_RXE_S` 9 (receive error).
pub const RX_FLEX_STATUS0_RXE: u16 = 1 << 9;
/// DPDK `ice_rxtx.h`: `ICE_RX_MAX_BURST` 32: RX tail updates are batched by this many.
pub const RX_FREE_THRESH: usize = 32;

// ---------------------------------------------------------------------------
// Admin queue (ice_adminq_cmd.h)
// ---------------------------------------------------------------------------

/// `ice_adminq_cmd.h`: `struct ice_aq_desc` is 32 bytes.
pub const AQ_DESC_SIZE: usize = 32;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_DD` BIT(0).
pub const AQ_FLAG_DD: u16 = 0x1;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_CMP` BIT(1).
pub const AQ_FLAG_CMP: u16 = 0x2;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_ERR` BIT(2).
pub const AQ_FLAG_ERR: u16 = 0x4;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_VFE` BIT(3).
pub const AQ_FLAG_VFE: u16 = 0x8;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_LB` BIT(9): buffer larger than 512 bytes.
pub const AQ_FLAG_LB: u16 = 0x200;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_RD` BIT(10): the buffer carries host data.
pub const AQ_FLAG_RD: u16 = 0x400;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_VFC` BIT(11).
pub const AQ_FLAG_VFC: u16 = 0x800;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_BUF` BIT(12): indirect buffer.
pub const AQ_FLAG_BUF: u16 = 0x1000;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_SI` BIT(13).
pub const AQ_FLAG_SI: u16 = 0x2000;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_EI` BIT(14).
pub const AQ_FLAG_EI: u16 = 0x4000;
/// `ice_adminq_cmd.h`: `ICE_AQ_FLAG_FE` BIT(15).
pub const AQ_FLAG_FE: u16 = 0x8000;
/// `ice_adminq_cmd.h`: `ICE_AQ_LG_BUF` 512 — buffers above this need `LB`.
pub const AQ_LG_BUF: usize = 512;
/// `ice_controlq.h`: `ICE_AQ_MAX_BUF_LEN` 4096 (not in anchors.md).
pub const AQ_MAX_BUF_LEN: usize = 4096;

/// Admin-queue opcodes (`ice_adminq_cmd.h`, `enum ice_adminq_opc`).
pub mod opc {
    /// `ice_aqc_opc_get_ver`.
    pub const GET_VER: u16 = 0x0001;
    /// `ice_aqc_opc_driver_ver`.
    pub const DRIVER_VER: u16 = 0x0002;
    /// `ice_aqc_opc_q_shutdown`.
    pub const Q_SHUTDOWN: u16 = 0x0003;
    /// `ice_aqc_opc_req_res`.
    pub const REQ_RES: u16 = 0x0008;
    /// `ice_aqc_opc_list_func_caps`.
    pub const LIST_FUNC_CAPS: u16 = 0x000A;
    /// `ice_aqc_opc_manage_mac_read`.
    pub const MANAGE_MAC_READ: u16 = 0x0107;
    /// `ice_aqc_opc_get_sw_cfg`.
    pub const GET_SW_CFG: u16 = 0x0200;
    /// `ice_aqc_opc_add_vsi`.
    pub const ADD_VSI: u16 = 0x0210;
    /// `ice_aqc_opc_update_vsi`.
    pub const UPDATE_VSI: u16 = 0x0211;
    /// `ice_aqc_opc_clear_pf_cfg`.
    pub const CLEAR_PF_CFG: u16 = 0x02A4;
    /// `ice_aqc_opc_get_dflt_topo`.
    pub const GET_DFLT_TOPO: u16 = 0x0400;
    /// `ice_aqc_opc_get_link_status`.
    pub const GET_LINK_STATUS: u16 = 0x0607;
    /// `ice_aqc_opc_add_txqs`.
    pub const ADD_TXQS: u16 = 0x0C30;
    /// `ice_aqc_opc_dis_txqs`.
    pub const DIS_TXQS: u16 = 0x0C31;
    /// `ice_aqc_opc_download_pkg`.
    pub const DOWNLOAD_PKG: u16 = 0x0C40;
}

/// Capability ids in `list_func_caps` elements (`ice_adminq_cmd.h`
/// `ICE_AQC_CAPS_*`; not in anchors.md).
pub mod caps {
    /// `ICE_AQC_CAPS_VSI`.
    pub const VSI: u16 = 0x0017;
    /// `ICE_AQC_CAPS_RXQS`: `number` queues starting at `phys_id`.
    pub const RXQS: u16 = 0x0041;
    /// `ICE_AQC_CAPS_TXQS`.
    pub const TXQS: u16 = 0x0042;
    /// `ICE_AQC_CAPS_MAX_MTU`.
    pub const MAX_MTU: u16 = 0x0047;
}
/// `ice_adminq_cmd.h`: `struct ice_aqc_list_caps` = cmd_flags, pf_index,
/// reserved[2], `__le32 count` (byte 4), addr_high, addr_low (not in anchors.md).
pub const LIST_CAPS_COUNT_OFF: usize = 4;
/// `ice_adminq_cmd.h`: `struct ice_aqc_list_caps_elem` is 32 bytes (not in anchors.md).
pub const CAPS_ELEM_SIZE: usize = 32;

/// `ice_adminq_cmd.h`: `ICE_AQC_MAN_MAC_LAN_ADDR_VALID` BIT(4) in the response flags (not in anchors.md).
pub const MAN_MAC_LAN_ADDR_VALID: u16 = 1 << 4;
/// `ice_adminq_cmd.h`: `struct ice_aqc_manage_mac_read_resp` is 8 bytes (not in anchors.md).
pub const MAC_READ_RESP_SIZE: usize = 8;

/// `ice_adminq_cmd.h`: `struct ice_aqc_get_sw_cfg_resp_elem` is 6 bytes (not in anchors.md).
pub const SW_CFG_ELEM_SIZE: usize = 6;
/// `ice_adminq_cmd.h`: `ICE_AQC_GET_SW_CONF_RESP_TYPE_S` 14 in `vsi_port_num`.
pub const SW_CONF_RESP_TYPE_S: u16 = 14;
/// `ice_adminq_cmd.h`: `ICE_AQC_GET_SW_CONF_RESP_PHYS_PORT` 0.
pub const SW_CONF_RESP_PHYS_PORT: u16 = 0;
/// `ice_adminq_cmd.h`: `ICE_AQC_GET_SW_CONF_RESP_VSI` 2.
pub const SW_CONF_RESP_VSI: u16 = 2;
/// `ice_adminq_cmd.h`: `ICE_AQC_GET_SW_CONF_RESP_VSI_PORT_NUM_M` bits 0–9.
pub const SW_CONF_RESP_NUM_M: u16 = 0x3FF;

/// Scheduler element types (`ice_adminq_cmd.h` `ICE_AQC_ELEM_TYPE_*`; not in anchors.md).
pub mod elem_type {
    pub const ROOT_PORT: u8 = 1;
    pub const TC: u8 = 2;
    pub const SE_GENERIC: u8 = 3;
    pub const ENTRY_POINT: u8 = 4;
    pub const LEAF: u8 = 5;
}
/// `ice_adminq_cmd.h`: `ICE_AQC_ELEM_VALID_GENERIC` BIT(0).
pub const ELEM_VALID_GENERIC: u8 = 0x1;
/// `ice_adminq_cmd.h`: `ICE_AQC_ELEM_VALID_CIR` BIT(1).
pub const ELEM_VALID_CIR: u8 = 0x2;
/// `ice_adminq_cmd.h`: `ICE_AQC_ELEM_VALID_EIR` BIT(2).
pub const ELEM_VALID_EIR: u8 = 0x4;
/// `ice_sched.h`: `ICE_SCHED_DFLT_RL_PROF_ID` 0 (default bandwidth profile; not in anchors.md).
pub const SCHED_DFLT_RL_PROF_ID: u16 = 0;
/// `ice_sched.h`: `ICE_SCHED_DFLT_BW_WT` 4 (default weight; not in anchors.md).
pub const SCHED_DFLT_BW_WT: u16 = 4;
/// `ice_adminq_cmd.h`: `struct ice_aqc_txsched_elem` is 16 bytes.
pub const TXSCHED_ELEM_SIZE: usize = 16;
/// `ice_adminq_cmd.h`: `struct ice_aqc_txsched_elem_data` = parent_teid, node_teid, elem (24 bytes).
pub const TXSCHED_ELEM_DATA_SIZE: usize = 24;
/// `ice_adminq_cmd.h`: `struct ice_aqc_txsched_topo_grp_info_hdr` is 8 bytes.
pub const TOPO_GRP_HDR_SIZE: usize = 8;

/// `ice_adminq_cmd.h`: `ICE_AQ_VSI_IS_VALID` BIT(15) in `vsi_num` of update/get/free (not in anchors.md).
pub const AQ_VSI_IS_VALID: u16 = 1 << 15;
/// `ice_adminq_cmd.h`: `ICE_AQ_VSI_NUM_M` bits 0–9.
pub const AQ_VSI_NUM_M: u16 = 0x3FF;
/// `ice_adminq_cmd.h`: `ICE_AQ_VSI_TYPE_PF` 0x2 in `vsi_flags` (not in anchors.md).
pub const AQ_VSI_TYPE_PF: u8 = 0x2;
/// `ice_adminq_cmd.h`: `struct ice_aqc_vsi_props` is 128 bytes (not in anchors.md).
pub const VSI_PROPS_SIZE: usize = 128;
/// `ice_adminq_cmd.h`: `ICE_AQ_VSI_PROP_RXQ_MAP_VALID` BIT(6).
pub const VSI_PROP_RXQ_MAP_VALID: u16 = 1 << 6;
/// `ice_adminq_cmd.h`: byte offset of `mapping_flags` in `ice_aqc_vsi_props`.
pub const VSI_PROPS_MAPPING_FLAGS_OFF: usize = 32;
/// `ice_adminq_cmd.h`: byte offset of `q_mapping[16]` in `ice_aqc_vsi_props`.
pub const VSI_PROPS_Q_MAPPING_OFF: usize = 34;
/// `ice_adminq_cmd.h`: byte offset of `tc_mapping[8]` in `ice_aqc_vsi_props`.
pub const VSI_PROPS_TC_MAPPING_OFF: usize = 66;
/// `ice_adminq_cmd.h`: `ICE_AQ_VSI_Q_MAP_CONTIG` 0x0.
pub const VSI_Q_MAP_CONTIG: u16 = 0x0;
/// `ice_adminq_cmd.h`: `ICE_AQ_VSI_TC_Q_NUM_S` 11 (queue count as a power of two).
pub const VSI_TC_Q_NUM_S: u16 = 11;

/// `ice_adminq_cmd.h`: `ICE_AQ_LSE_ENA` 0x3 in get_link_status `cmd_flags` (not in anchors.md).
pub const AQ_LSE_ENA: u16 = 0x3;
/// `ice_adminq_cmd.h`: `ICE_AQ_LINK_UP` BIT(0) in `link_info`.
pub const AQ_LINK_UP: u8 = 0x1;
/// `ice_adminq_cmd.h`: `ICE_AQ_LINK_SPEED_10GB` BIT(5).
pub const AQ_LINK_SPEED_10GB: u16 = 1 << 5;
/// `ice_adminq_cmd.h`: `ICE_AQ_LINK_SPEED_25GB` BIT(7).
pub const AQ_LINK_SPEED_25GB: u16 = 1 << 7;
/// `ice_adminq_cmd.h`: `ICE_AQ_LINK_SPEED_100GB` BIT(10).
pub const AQ_LINK_SPEED_100GB: u16 = 1 << 10;
/// `ice_adminq_cmd.h`: `struct ice_aqc_get_link_status_data` length (`ICE_GET_LINK_STATUS_DATALEN_V1` 32).
pub const LINK_STATUS_DATALEN: usize = 32;
/// Byte offsets in `ice_aqc_get_link_status_data`: `link_info` 2, `max_frame_size` 8, `link_speed` 12.
pub const LINK_DATA_INFO_OFF: usize = 2;
pub const LINK_DATA_MAX_FRAME_OFF: usize = 8;
pub const LINK_DATA_SPEED_OFF: usize = 12;

/// `ice_adminq_cmd.h`: `struct ice_aqc_add_tx_qgrp` header (parent_teid, num_txqs, rsvd[3]) is 8 bytes.
pub const ADD_TXQ_GRP_HDR_SIZE: usize = 8;
/// `ice_adminq_cmd.h`: `struct ice_aqc_add_txqs_perq` = txq_id(2) rsvd(2) q_teid(4)
/// txq_ctx(22) rsvd2(2) info(16) = 48 bytes.
pub const ADD_TXQ_PERQ_SIZE: usize = 48;
/// `ice_adminq_cmd.h`: `struct ice_aqc_dis_txq_item` header (parent_teid, num_qs, rsvd) is 6 bytes,
/// followed by `__le16 q_id[]` and padded to 4 bytes.
pub const DIS_TXQ_ITEM_HDR_SIZE: usize = 6;
/// `ice_adminq_cmd.h`: `ICE_AQC_Q_DIS_CMD_FLUSH_PIPE` BIT(2) (not in anchors.md).
pub const Q_DIS_CMD_FLUSH_PIPE: u8 = 1 << 2;
