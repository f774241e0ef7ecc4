//! igb (82576 / I350) BAR0 register offsets, bits and descriptor layouts.
//!
//! Facts from the published register definitions (`e1000_regs.h`,
//! `e1000_defines.h`, `e1000_82575.h` in Linux and DPDK) and the 82576 / I350
//! datasheets. Per-queue registers use the 0xC000 (RX) / 0xE000 (TX) blocks
//! with a 0x40 stride, which both parts (and QEMU's igb) decode for every
//! queue; the legacy 0x2800 / 0x3800 locations alias queues 0–3.

// ---------------------------------------------------------------- general
pub const CTRL: u32 = 0x0000;
pub const STATUS: u32 = 0x0008;
pub const EECD: u32 = 0x0010;
pub const CTRL_EXT: u32 = 0x0018;
pub const MDIC: u32 = 0x0020;
pub const VET: u32 = 0x0038;
pub const ICR: u32 = 0x00C0;
pub const IMS: u32 = 0x00D0;
pub const IMC: u32 = 0x00D8;
pub const RCTL: u32 = 0x0100;
pub const TCTL: u32 = 0x0400;
pub const GPIE: u32 = 0x1514;
pub const EIMS: u32 = 0x1524;
pub const EIMC: u32 = 0x1528;
pub const EICR: u32 = 0x1580;
pub const RXCSUM: u32 = 0x5000;
pub const MTA: u32 = 0x5200;
pub const MTA_LEN: u32 = 128;
pub const RAL0: u32 = 0x5400;
pub const RAH0: u32 = 0x5404;
pub const MRQC: u32 = 0x5818;
/// Redirection table: 32 registers of four one-byte entries
/// (`E1000_RETA(_i)` = 0x05C00 + 4·i in `e1000_regs.h`).
pub const RETA: u32 = 0x5C00;
/// RSS random key: ten registers, key byte 4·i+j in bits 8j+7:8j of
/// register i (`E1000_RSSRK(_i)` = 0x05C80 + 4·i; DPDK
/// `igb_hw_rss_hash_set` packs the key so).
pub const RSSRK: u32 = 0x5C80;
/// Entries in the redirection table (`IGB_RETA_SIZE`).
pub const RETA_SIZE: u16 = 128;
/// Key registers: ten for the 40-byte key.
pub const RSSRK_LEN: u32 = 10;

/// BAR0 size of the 82576 / I350 (128 KiB).
pub const BAR0_LEN: usize = 128 * 1024;

// ---------------------------------------------------------------- per queue
#[inline(always)]
pub const fn rdbal(q: u32) -> u32 {
    0xC000 + 0x40 * q
}
#[inline(always)]
pub const fn rdbah(q: u32) -> u32 {
    0xC004 + 0x40 * q
}
#[inline(always)]
pub const fn rdlen(q: u32) -> u32 {
    0xC008 + 0x40 * q
}
#[inline(always)]
pub const fn srrctl(q: u32) -> u32 {
    0xC00C + 0x40 * q
}
#[inline(always)]
pub const fn rdh(q: u32) -> u32 {
    0xC010 + 0x40 * q
}
#[inline(always)]
pub const fn rdt(q: u32) -> u32 {
    0xC018 + 0x40 * q
}
#[inline(always)]
pub const fn rxdctl(q: u32) -> u32 {
    0xC028 + 0x40 * q
}
#[inline(always)]
pub const fn tdbal(q: u32) -> u32 {
    0xE000 + 0x40 * q
}
#[inline(always)]
pub const fn tdbah(q: u32) -> u32 {
    0xE004 + 0x40 * q
}
#[inline(always)]
pub const fn tdlen(q: u32) -> u32 {
    0xE008 + 0x40 * q
}
#[inline(always)]
pub const fn tdh(q: u32) -> u32 {
    0xE010 + 0x40 * q
}
#[inline(always)]
pub const fn tdt(q: u32) -> u32 {
    0xE018 + 0x40 * q
}
#[inline(always)]
pub const fn txdctl(q: u32) -> u32 {
    0xE028 + 0x40 * q
}

// ---------------------------------------------------------------- statistics
// Clear-on-read counters (the 64-bit octet counters clear on reading the high half).
pub const CRCERRS: u32 = 0x4000;
pub const ALGNERRC: u32 = 0x4004;
pub const SYMERRS: u32 = 0x4008;
pub const RXERRC: u32 = 0x400C;
pub const MPC: u32 = 0x4010;
pub const SCC: u32 = 0x4014;
pub const ECOL: u32 = 0x4018;
pub const MCC: u32 = 0x401C;
pub const LATECOL: u32 = 0x4020;
pub const COLC: u32 = 0x4028;
pub const DC: u32 = 0x4030;
pub const RLEC: u32 = 0x4040;
pub const XONRXC: u32 = 0x4048;
pub const XONTXC: u32 = 0x404C;
pub const XOFFRXC: u32 = 0x4050;
pub const XOFFTXC: u32 = 0x4054;
pub const GPRC: u32 = 0x4074;
pub const BPRC: u32 = 0x4078;
pub const MPRC: u32 = 0x407C;
pub const GPTC: u32 = 0x4080;
pub const GORCL: u32 = 0x4088;
pub const GORCH: u32 = 0x408C;
pub const GOTCL: u32 = 0x4090;
pub const GOTCH: u32 = 0x4094;
pub const RNBC: u32 = 0x40A0;
pub const RUC: u32 = 0x40A4;
pub const RFC: u32 = 0x40A8;
pub const ROC: u32 = 0x40AC;
pub const RJC: u32 = 0x40B0;
pub const TORL: u32 = 0x40C0;
pub const TORH: u32 = 0x40C4;
pub const TOTL: u32 = 0x40C8;
pub const TOTH: u32 = 0x40CC;
pub const TPR: u32 = 0x40D0;
pub const TPT: u32 = 0x40D4;
pub const MPTC: u32 = 0x40F0;
pub const BPTC: u32 = 0x40F4;
/// TCP Segmentation Context Transmitted Count: one per TSE packet the part
/// segmented (82576 datasheet 8.19, Linux `E1000_TSCTC`, read into
/// `adapter->stats.tsctc` by `igb_update_stats`) …
pub const TSCTC: u32 = 0x40F8;
/// … and the TSE packets it could not segment (`E1000_TSCTFC`).
pub const TSCTFC: u32 = 0x40FC;

/// 32-bit clear-on-read counters and their xstat names.
pub const STATS32: &[(u32, &str)] = &[
    (CRCERRS, "rx_crc_errors"),
    (ALGNERRC, "rx_alignment_errors"),
    (SYMERRS, "rx_symbol_errors"),
    (RXERRC, "rx_errors_hw"),
    (MPC, "rx_missed_packets"),
    (SCC, "tx_single_collisions"),
    (ECOL, "tx_excessive_collisions"),
    (MCC, "tx_multiple_collisions"),
    (LATECOL, "tx_late_collisions"),
    (COLC, "tx_collisions"),
    (DC, "tx_deferred"),
    (RLEC, "rx_length_errors"),
    (XONRXC, "rx_xon"),
    (XONTXC, "tx_xon"),
    (XOFFRXC, "rx_xoff"),
    (XOFFTXC, "tx_xoff"),
    (GPRC, "rx_good_packets"),
    (BPRC, "rx_broadcast_packets"),
    (MPRC, "rx_multicast_packets"),
    (GPTC, "tx_good_packets"),
    (RNBC, "rx_no_buffer"),
    (RUC, "rx_undersize"),
    (RFC, "rx_fragments"),
    (ROC, "rx_oversize"),
    (RJC, "rx_jabbers"),
    (TPR, "rx_total_packets"),
    (TPT, "tx_total_packets"),
    (MPTC, "tx_multicast_packets"),
    (BPTC, "tx_broadcast_packets"),
    (TSCTC, "tx_tso_contexts"),
    (TSCTFC, "tx_tso_context_failures"),
];

/// 64-bit clear-on-read counters (low, high) and their xstat names.
pub const STATS64: &[(u32, u32, &str)] = &[
    (GORCL, GORCH, "rx_good_octets"),
    (GOTCL, GOTCH, "tx_good_octets"),
    (TORL, TORH, "rx_total_octets"),
    (TOTL, TOTH, "tx_total_octets"),
];

/// Is `off` one of the clear-on-read statistics registers?
pub fn is_stat(off: u32) -> bool {
    (0x4000..0x4100).contains(&off)
}

// ---------------------------------------------------------------- bits
pub const CTRL_FD: u32 = 1 << 0;
pub const CTRL_SLU: u32 = 1 << 6;
pub const CTRL_RST: u32 = 1 << 26;
pub const CTRL_VME: u32 = 1 << 30;
pub const CTRL_PHY_RST: u32 = 1 << 31;

pub const STATUS_FD: u32 = 1 << 0;
pub const STATUS_LU: u32 = 1 << 1;
pub const STATUS_SPEED_SHIFT: u32 = 6;
pub const STATUS_SPEED_MASK: u32 = 0x3 << 6;
/// `e1000_defines.h`: `E1000_STATUS_SPEED_10` 0x00000000.
pub const STATUS_SPEED_10: u32 = 0x0 << 6;
/// `e1000_defines.h`: `E1000_STATUS_SPEED_100` 0x00000040.
pub const STATUS_SPEED_100: u32 = 0x1 << 6;
/// `e1000_defines.h`: `E1000_STATUS_SPEED_1000` 0x00000080.
pub const STATUS_SPEED_1000: u32 = 0x2 << 6;
pub const STATUS_GIO_MASTER_EN: u32 = 1 << 19;

pub const EECD_AUTO_RD: u32 = 1 << 9;

pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;

pub const MDIC_DATA_MASK: u32 = 0xFFFF;
pub const MDIC_REG_SHIFT: u32 = 16;
pub const MDIC_PHY_SHIFT: u32 = 21;
pub const MDIC_OP_WRITE: u32 = 1 << 26;
pub const MDIC_OP_READ: u32 = 1 << 27;
pub const MDIC_READY: u32 = 1 << 28;
pub const MDIC_ERROR: u32 = 1 << 30;
/// The internal PHY's MDIO address on 82576 / I350.
pub const PHY_ADDR: u32 = 1;

// PHY registers (IEEE 802.3 clause 22)
pub const PHY_BMCR: u32 = 0;
pub const PHY_BMSR: u32 = 1;
pub const PHY_ID1: u32 = 2;
pub const PHY_ID2: u32 = 3;
pub const BMCR_SPEED1000: u16 = 0x0040;
pub const BMCR_FULL_DUPLEX: u16 = 0x0100;
pub const BMCR_AN_RESTART: u16 = 0x0200;
pub const BMCR_AN_ENABLE: u16 = 0x1000;
pub const BMCR_RESET: u16 = 0x8000;
pub const BMSR_LINK: u16 = 0x0004;
pub const BMSR_AN_COMPLETE: u16 = 0x0020;

pub const RCTL_EN: u32 = 1 << 1;
pub const RCTL_UPE: u32 = 1 << 3;
pub const RCTL_MPE: u32 = 1 << 4;
pub const RCTL_LPE: u32 = 1 << 5;
pub const RCTL_LBM_MAC: u32 = 1 << 6;
pub const RCTL_BAM: u32 = 1 << 15;
pub const RCTL_SECRC: u32 = 1 << 26;

pub const TCTL_EN: u32 = 1 << 1;
pub const TCTL_PSP: u32 = 1 << 3;
pub const TCTL_CT_SHIFT: u32 = 4;
pub const TCTL_COLD_SHIFT: u32 = 12;
pub const TCTL_RTLC: u32 = 1 << 24;

pub const XDCTL_ENABLE: u32 = 1 << 25;
pub const TXDCTL_SWFLSH: u32 = 1 << 26;

pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x7F;
pub const SRRCTL_DESCTYPE_MASK: u32 = 0x7 << 25;
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 1 << 25;
pub const SRRCTL_DROP_EN: u32 = 1 << 31;

pub const RXCSUM_IPOFL: u32 = 1 << 8;
pub const RXCSUM_TUOFL: u32 = 1 << 9;
/// Packet checksum disable: the write-back's second dword carries the RSS
/// hash instead of the fragment checksum + IP id (`E1000_RXCSUM_PCSD`,
/// which Linux `igb_setup_mrqc` sets; QEMU's igb hashes only with it set).
pub const RXCSUM_PCSD: u32 = 1 << 13;

// MRQC (`e1000_defines.h` / `e1000_82575.h`): bits 2:0 the queueing mode,
// bits 31:16 the hash field selects.
/// Multiple receive queues with RSS (`E1000_MRQC_ENABLE_RSS_MQ`).
pub const MRQC_ENABLE_RSS_MQ: u32 = 0x2;
/// Mode bits (`E1000_MRQC_ENABLE_MASK`).
pub const MRQC_ENABLE_MASK: u32 = 0x7;
pub const MRQC_RSS_FIELD_IPV4_TCP: u32 = 0x0001_0000;
pub const MRQC_RSS_FIELD_IPV4: u32 = 0x0002_0000;
pub const MRQC_RSS_FIELD_IPV4_UDP: u32 = 0x0040_0000;

// RSS Type in bits 3:0 of the write-back's first dword (`pkt_info`),
// `E1000_RXDADV_RSSTYPE_*`.
pub const RSSTYPE_NONE: u32 = 0x0;
pub const RSSTYPE_IPV4_TCP: u32 = 0x1;
pub const RSSTYPE_IPV4: u32 = 0x2;
pub const RSSTYPE_IPV4_UDP: u32 = 0x7;
pub const RSSTYPE_MASK: u32 = 0xF;

pub const RAH_AV: u32 = 1 << 31;

// ---------------------------------------------------------------- TX descriptors
/// Advanced TX data / context descriptor: `cmd_type_len` (data) and
/// `type_tucmd_mlhl` (context) bits.
pub const TXD_DTYP_CTXT: u32 = 0x2 << 20;
pub const TXD_DTYP_DATA: u32 = 0x3 << 20;
pub const TXD_DTYP_MASK: u32 = 0xF << 20;
pub const TXD_EOP: u32 = 1 << 24;
pub const TXD_IFCS: u32 = 1 << 25;
pub const TXD_RS: u32 = 1 << 27;
pub const TXD_DEXT: u32 = 1 << 29;
pub const TXD_VLE: u32 = 1 << 30;
pub const TXD_TSE: u32 = 1 << 31;
pub const TXD_LEN_MASK: u32 = 0xFFFF;
/// `olinfo_status` fields.
pub const TXD_STAT_DD: u32 = 1 << 0;
pub const TXD_IDX_SHIFT: u32 = 4;
pub const TXD_POPTS_IXSM: u32 = 1 << 8;
pub const TXD_POPTS_TXSM: u32 = 1 << 9;
pub const TXD_PAYLEN_SHIFT: u32 = 14;
/// Context `type_tucmd_mlhl`.
pub const TUCMD_IPV4: u32 = 1 << 10;
pub const TUCMD_L4T_UDP: u32 = 0 << 11;
pub const TUCMD_L4T_TCP: u32 = 1 << 11;
pub const TUCMD_L4T_MASK: u32 = 0x3 << 11;
/// Context `vlan_macip_lens`.
pub const CTX_MACLEN_SHIFT: u32 = 9;
pub const CTX_IPLEN_MASK: u32 = 0x1FF;
pub const CTX_VLAN_SHIFT: u32 = 16;
/// Context `mss_l4len_idx`.
pub const CTX_L4LEN_SHIFT: u32 = 8;
/// MSS in the context descriptor's upper dword (bits 63:48 of the descriptor).
pub const CTX_MSS_SHIFT: u32 = 16;

// ---------------------------------------------------------------- RX descriptors
/// Advanced RX write-back `status_error` bits.
pub const RXD_STAT_DD: u32 = 1 << 0;
pub const RXD_STAT_EOP: u32 = 1 << 1;
pub const RXD_STAT_VP: u32 = 1 << 3;
pub const RXD_STAT_UDPCS: u32 = 1 << 4;
pub const RXD_STAT_L4CS: u32 = 1 << 5;
pub const RXD_STAT_IPCS: u32 = 1 << 6;
pub const RXD_ERR_TCPE: u32 = 1 << 29;
pub const RXD_ERR_IPE: u32 = 1 << 30;
pub const RXD_ERR_RXE: u32 = 1 << 31;
/// Frame errors (CE, SE, SEQ, CXE, RXE) that make a frame unusable.
pub const RXD_ERR_FRAME: u32 = (1 << 24) | (1 << 25) | (1 << 26) | (1 << 28) | RXD_ERR_RXE;

/// Bytes per descriptor (TX and RX).
pub const DESC_LEN: usize = 16;
