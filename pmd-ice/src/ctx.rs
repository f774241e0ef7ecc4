//! Queue contexts: the packed TX (TLAN, 22 bytes) and RX (RLAN, 32 bytes)
//! queue context images the E810 keeps per queue.
//!
//! Field tables are the published `ice_tlan_ctx_info[]` / `ice_rlan_ctx_info[]`
//! (DPDK/dpdk:drivers/net/intel/ice/base/ice_common.c:1559 / :1459 at
//! `38f72e500b`; Linux `ice_common.c` has the same tables): width at
//! least-significant bit, packed little-endian into a byte array (`ice_set_ctx`).

/// One bit field: least-significant bit and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub lsb: u32,
    pub width: u32,
}

const fn f(width: u32, lsb: u32) -> Field {
    Field { lsb, width }
}

/// Writes `value` (truncated to the field width) into `buf` at the field position.
pub fn put(buf: &mut [u8], fd: Field, value: u64) {
    debug_assert!(fd.width <= 64);
    let mask = if fd.width == 64 {
        u64::MAX
    } else {
        (1u64 << fd.width) - 1
    };
    let v = value & mask;
    for i in 0..fd.width {
        let bit = fd.lsb + i;
        let byte = (bit / 8) as usize;
        let b = 1u8 << (bit % 8);
        if (v >> i) & 1 == 1 {
            buf[byte] |= b;
        } else {
            buf[byte] &= !b;
        }
    }
}

/// Reads a field out of `buf`.
pub fn get(buf: &[u8], fd: Field) -> u64 {
    let mut v = 0u64;
    for i in 0..fd.width {
        let bit = fd.lsb + i;
        if (buf[(bit / 8) as usize] >> (bit % 8)) & 1 == 1 {
            v |= 1 << i;
        }
    }
    v
}

/// 22 bytes: `txq_ctx[22]` in `struct ice_aqc_add_txqs_perq`
/// (base/ice_adminq_cmd.h:2889; Linux `ICE_TXQ_CTX_SZ` 22 in linux:ice_common.h).
/// DPDK's `ICE_TXQ_CTX_SZ` (base/ice_lan_tx_rx.h:936) is 40, the register
/// image size; the admin command carries 22.
pub const TLAN_CTX_SIZE: usize = 22;

/// TLAN context fields (`ice_tlan_ctx_info[]`, base/ice_common.c:1559–1587,
/// width@lsb). `int_q_state` (122@171, :1586) and E830's `gsc_ena` (:1587)
/// are hardware-internal / other-device and never packed.
pub mod tlan {
    use super::{f, Field};
    /// base/ice_common.c:1559.
    pub const BASE: Field = f(57, 0);
    /// base/ice_common.c:1560.
    pub const PORT_NUM: Field = f(3, 57);
    /// base/ice_common.c:1561.
    pub const CGD_NUM: Field = f(5, 60);
    /// base/ice_common.c:1562.
    pub const PF_NUM: Field = f(3, 65);
    /// base/ice_common.c:1563.
    pub const VMVF_NUM: Field = f(10, 68);
    /// base/ice_common.c:1564.
    pub const VMVF_TYPE: Field = f(2, 78);
    /// base/ice_common.c:1565.
    pub const SRC_VSI: Field = f(10, 80);
    /// base/ice_common.c:1566.
    pub const TSYN_ENA: Field = f(1, 90);
    /// base/ice_common.c:1567.
    pub const INTERNAL_USAGE_FLAG: Field = f(1, 91);
    /// base/ice_common.c:1568.
    pub const ALT_VLAN: Field = f(1, 92);
    /// base/ice_common.c:1569.
    pub const CPUID: Field = f(8, 93);
    /// base/ice_common.c:1570.
    pub const WB_MODE: Field = f(1, 101);
    /// base/ice_common.c:1571.
    pub const TPHRD_DESC: Field = f(1, 102);
    /// base/ice_common.c:1572.
    pub const TPHRD: Field = f(1, 103);
    /// base/ice_common.c:1573.
    pub const TPHWR_DESC: Field = f(1, 104);
    /// base/ice_common.c:1574.
    pub const CMPQ_ID: Field = f(9, 105);
    /// base/ice_common.c:1575.
    pub const QNUM_IN_FUNC: Field = f(14, 114);
    /// base/ice_common.c:1576.
    pub const ITR_NOTIFICATION_MODE: Field = f(1, 128);
    /// base/ice_common.c:1577.
    pub const ADJUST_PROF_ID: Field = f(6, 129);
    /// base/ice_common.c:1578.
    pub const QLEN: Field = f(13, 135);
    /// base/ice_common.c:1579.
    pub const QUANTA_PROF_IDX: Field = f(4, 148);
    /// base/ice_common.c:1580.
    pub const TSO_ENA: Field = f(1, 152);
    /// base/ice_common.c:1581.
    pub const TSO_QNUM: Field = f(11, 153);
    /// base/ice_common.c:1582.
    pub const LEGACY_INT: Field = f(1, 164);
    /// base/ice_common.c:1583.
    pub const DROP_ENA: Field = f(1, 165);
    /// base/ice_common.c:1584.
    pub const CACHE_PROF_IDX: Field = f(2, 166);
    /// base/ice_common.c:1585.
    pub const PKT_SHAPER_PROF_IDX: Field = f(3, 168);
    // int_q_state (122@171, "DO NOT WRITE") is hardware-internal: never packed.

    /// base/ice_lan_tx_rx.h:1165 (`ICE_TLAN_CTX_BASE_S` 7): ring base in
    /// 128-byte units (DPDK ice/ice_ethdev.h:33 `ICE_QUEUE_BASE_ADDR_UNIT` 128).
    pub const BASE_SHIFT: u32 = 7;
    /// VF type 0: **not published** in DPDK base (only VMQ and PF are,
    /// base/ice_lan_tx_rx.h:1172–1173); the value left over by elimination.
    pub const VMVF_TYPE_VF: u64 = 0;
    /// base/ice_lan_tx_rx.h:1172 (`ICE_TLAN_CTX_VMVF_TYPE_VMQ` 1).
    pub const VMVF_TYPE_VMQ: u64 = 1;
    /// base/ice_lan_tx_rx.h:1173 (`ICE_TLAN_CTX_VMVF_TYPE_PF` 2).
    pub const VMVF_TYPE_PF: u64 = 2;
}

/// The TX queue context the driver fills (`struct ice_tlan_ctx`), with the
/// fields Linux `ice_setup_tx_ctx` / DPDK `ice_tx_queue_start` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlanCtx {
    /// Ring base in 128-byte units (`ring IOVA >> 7`).
    pub base: u64,
    pub port_num: u8,
    pub cgd_num: u8,
    pub pf_num: u8,
    pub vmvf_num: u16,
    pub vmvf_type: u8,
    pub src_vsi: u16,
    pub tsyn_ena: bool,
    pub alt_vlan: bool,
    pub wb_mode: bool,
    pub qnum_in_func: u16,
    /// Ring length in descriptors.
    pub qlen: u16,
    pub quanta_prof_idx: u8,
    pub tso_ena: bool,
    pub tso_qnum: u16,
    pub legacy_int: bool,
    pub drop_ena: bool,
}

impl TlanCtx {
    /// Packs into the 22-byte image (`ice_set_ctx` with `ice_tlan_ctx_info`).
    pub fn pack(&self) -> [u8; TLAN_CTX_SIZE] {
        let mut b = [0u8; TLAN_CTX_SIZE];
        put(&mut b, tlan::BASE, self.base);
        put(&mut b, tlan::PORT_NUM, self.port_num as u64);
        put(&mut b, tlan::CGD_NUM, self.cgd_num as u64);
        put(&mut b, tlan::PF_NUM, self.pf_num as u64);
        put(&mut b, tlan::VMVF_NUM, self.vmvf_num as u64);
        put(&mut b, tlan::VMVF_TYPE, self.vmvf_type as u64);
        put(&mut b, tlan::SRC_VSI, self.src_vsi as u64);
        put(&mut b, tlan::TSYN_ENA, self.tsyn_ena as u64);
        put(&mut b, tlan::ALT_VLAN, self.alt_vlan as u64);
        put(&mut b, tlan::WB_MODE, self.wb_mode as u64);
        put(&mut b, tlan::QNUM_IN_FUNC, self.qnum_in_func as u64);
        put(&mut b, tlan::QLEN, self.qlen as u64);
        put(&mut b, tlan::QUANTA_PROF_IDX, self.quanta_prof_idx as u64);
        put(&mut b, tlan::TSO_ENA, self.tso_ena as u64);
        put(&mut b, tlan::TSO_QNUM, self.tso_qnum as u64);
        put(&mut b, tlan::LEGACY_INT, self.legacy_int as u64);
        put(&mut b, tlan::DROP_ENA, self.drop_ena as u64);
        b
    }

    /// Decodes a 22-byte image (what the firmware does on `add_txqs`).
    pub fn unpack(b: &[u8; TLAN_CTX_SIZE]) -> TlanCtx {
        TlanCtx {
            base: get(b, tlan::BASE),
            port_num: get(b, tlan::PORT_NUM) as u8,
            cgd_num: get(b, tlan::CGD_NUM) as u8,
            pf_num: get(b, tlan::PF_NUM) as u8,
            vmvf_num: get(b, tlan::VMVF_NUM) as u16,
            vmvf_type: get(b, tlan::VMVF_TYPE) as u8,
            src_vsi: get(b, tlan::SRC_VSI) as u16,
            tsyn_ena: get(b, tlan::TSYN_ENA) == 1,
            alt_vlan: get(b, tlan::ALT_VLAN) == 1,
            wb_mode: get(b, tlan::WB_MODE) == 1,
            qnum_in_func: get(b, tlan::QNUM_IN_FUNC) as u16,
            qlen: get(b, tlan::QLEN) as u16,
            quanta_prof_idx: get(b, tlan::QUANTA_PROF_IDX) as u8,
            tso_ena: get(b, tlan::TSO_ENA) == 1,
            tso_qnum: get(b, tlan::TSO_QNUM) as u16,
            legacy_int: get(b, tlan::LEGACY_INT) == 1,
            drop_ena: get(b, tlan::DROP_ENA) == 1,
        }
    }

    /// Ring IOVA the context points at.
    pub fn ring_iova(&self) -> u64 {
        self.base << 7
    }
}

/// base/ice_lan_tx_rx.h:934 (`ICE_RXQ_CTX_SZ` = 8 dwords = 32 bytes in `QRX_CONTEXT`).
pub const RLAN_CTX_SIZE: usize = 32;

/// RLAN context fields (`ice_rlan_ctx_info[]`, base/ice_common.c:1459–1478,
/// width@lsb; the TPH enables at 193–196 are not used).
pub mod rlan {
    use super::{f, Field};
    /// base/ice_common.c:1459.
    pub const HEAD: Field = f(13, 0);
    /// base/ice_common.c:1460.
    pub const CPUID: Field = f(8, 13);
    /// base/ice_common.c:1461.
    pub const BASE: Field = f(57, 32);
    /// base/ice_common.c:1462.
    pub const QLEN: Field = f(13, 89);
    /// base/ice_common.c:1463.
    pub const DBUF: Field = f(7, 102);
    /// base/ice_common.c:1464.
    pub const HBUF: Field = f(5, 109);
    /// base/ice_common.c:1465.
    pub const DTYPE: Field = f(2, 114);
    /// base/ice_common.c:1466.
    pub const DSIZE: Field = f(1, 116);
    /// base/ice_common.c:1467.
    pub const CRCSTRIP: Field = f(1, 117);
    /// base/ice_common.c:1468.
    pub const L2TSEL: Field = f(1, 119);
    /// base/ice_common.c:1469.
    pub const HSPLIT_0: Field = f(4, 120);
    /// base/ice_common.c:1470.
    pub const HSPLIT_1: Field = f(2, 124);
    /// base/ice_common.c:1471.
    pub const SHOWIV: Field = f(1, 127);
    /// base/ice_common.c:1472.
    pub const RXMAX: Field = f(14, 174);
    /// base/ice_common.c:1477.
    pub const LRXQTHRESH: Field = f(3, 198);
    /// base/ice_common.c:1478.
    pub const PREFENA: Field = f(1, 201);
    /// base/ice_lan_tx_rx.h:954 (`ICE_RLAN_CTX_DBUF_S` 7): data buffer in 128-byte units.
    pub const DBUF_SHIFT: u32 = 7;
    /// base/ice_lan_tx_rx.h:951 (`ICE_RLAN_BASE_S` 7): ring base in 128-byte units.
    pub const BASE_SHIFT: u32 = 7;
}

/// The RX queue context the driver programs (`struct ice_rlan_ctx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RlanCtx {
    pub head: u16,
    /// Ring base in 128-byte units.
    pub base: u64,
    pub qlen: u16,
    /// Data buffer size in 128-byte units.
    pub dbuf: u8,
    /// 1 = 32-byte descriptors.
    pub dsize: bool,
    pub crcstrip: bool,
    pub l2tsel: bool,
    pub showiv: bool,
    /// Largest frame accepted.
    pub rxmax: u16,
    pub lrxqthresh: u8,
    pub prefena: bool,
}

impl RlanCtx {
    pub fn pack(&self) -> [u8; RLAN_CTX_SIZE] {
        let mut b = [0u8; RLAN_CTX_SIZE];
        put(&mut b, rlan::HEAD, self.head as u64);
        put(&mut b, rlan::BASE, self.base);
        put(&mut b, rlan::QLEN, self.qlen as u64);
        put(&mut b, rlan::DBUF, self.dbuf as u64);
        put(&mut b, rlan::DSIZE, self.dsize as u64);
        put(&mut b, rlan::CRCSTRIP, self.crcstrip as u64);
        put(&mut b, rlan::L2TSEL, self.l2tsel as u64);
        put(&mut b, rlan::SHOWIV, self.showiv as u64);
        put(&mut b, rlan::RXMAX, self.rxmax as u64);
        put(&mut b, rlan::LRXQTHRESH, self.lrxqthresh as u64);
        put(&mut b, rlan::PREFENA, self.prefena as u64);
        b
    }

    pub fn unpack(b: &[u8; RLAN_CTX_SIZE]) -> RlanCtx {
        RlanCtx {
            head: get(b, rlan::HEAD) as u16,
            base: get(b, rlan::BASE),
            qlen: get(b, rlan::QLEN) as u16,
            dbuf: get(b, rlan::DBUF) as u8,
            dsize: get(b, rlan::DSIZE) == 1,
            crcstrip: get(b, rlan::CRCSTRIP) == 1,
            l2tsel: get(b, rlan::L2TSEL) == 1,
            showiv: get(b, rlan::SHOWIV) == 1,
            rxmax: get(b, rlan::RXMAX) as u16,
            lrxqthresh: get(b, rlan::LRXQTHRESH) as u8,
            prefena: get(b, rlan::PREFENA) == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each field alone: the image has exactly the field's bits set, at the
    /// byte/bit positions the published width@lsb table gives.
    #[test]
    fn every_tlan_field_lands_at_its_bit_position() {
        let fields = [
            tlan::BASE,
            tlan::PORT_NUM,
            tlan::CGD_NUM,
            tlan::PF_NUM,
            tlan::VMVF_NUM,
            tlan::VMVF_TYPE,
            tlan::SRC_VSI,
            tlan::TSYN_ENA,
            tlan::INTERNAL_USAGE_FLAG,
            tlan::ALT_VLAN,
            tlan::CPUID,
            tlan::WB_MODE,
            tlan::TPHRD_DESC,
            tlan::TPHRD,
            tlan::TPHWR_DESC,
            tlan::CMPQ_ID,
            tlan::QNUM_IN_FUNC,
            tlan::ITR_NOTIFICATION_MODE,
            tlan::ADJUST_PROF_ID,
            tlan::QLEN,
            tlan::QUANTA_PROF_IDX,
            tlan::TSO_ENA,
            tlan::TSO_QNUM,
            tlan::LEGACY_INT,
            tlan::DROP_ENA,
            tlan::CACHE_PROF_IDX,
            tlan::PKT_SHAPER_PROF_IDX,
        ];
        for fd in fields {
            let mut b = [0u8; TLAN_CTX_SIZE];
            put(&mut b, fd, u64::MAX);
            let ones: u32 = b.iter().map(|x| x.count_ones()).sum();
            assert_eq!(ones, fd.width, "{fd:?}");
            // lowest set bit is lsb, highest is lsb + width - 1
            let mut lo = None;
            let mut hi = 0;
            for bit in 0..(TLAN_CTX_SIZE as u32 * 8) {
                if (b[(bit / 8) as usize] >> (bit % 8)) & 1 == 1 {
                    lo.get_or_insert(bit);
                    hi = bit;
                }
            }
            assert_eq!(lo, Some(fd.lsb), "{fd:?}");
            assert_eq!(hi, fd.lsb + fd.width - 1, "{fd:?}");
            assert_eq!(get(&b, fd), (1u64 << fd.width) - 1);
        }
    }

    /// Worked example from the bit table: ring at IOVA 0x1_2345_6780 (base =
    /// 0x2468ACF), port 1, pf 2, PF type, src_vsi 5, qlen 1024, tso_qnum 3,
    /// tsyn/tso/legacy_int set.
    #[test]
    fn worked_example_bytes() {
        let c = TlanCtx {
            base: 0x1_2345_6780 >> 7,
            port_num: 1,
            pf_num: 2,
            vmvf_type: tlan::VMVF_TYPE_PF as u8,
            src_vsi: 5,
            tsyn_ena: true,
            qlen: 1024,
            tso_ena: true,
            tso_qnum: 3,
            legacy_int: true,
            ..Default::default()
        };
        let b = c.pack();
        // base 0x2468ACF in bits 0..57 → bytes 0..3 little-endian.
        assert_eq!(&b[0..4], &[0xCF, 0x8A, 0x46, 0x02]);
        assert_eq!(b[4..7], [0, 0, 0]);
        // port_num 1 at bit 57 → byte 7 bit 1.
        assert_eq!(b[7], 0x02);
        // pf_num 2 at bit 65 → bit 66 → byte 8 bit 2.
        // vmvf_type 2 at bit 78 → bit 79 → byte 9 bit 7.
        assert_eq!(b[8], 0x04);
        assert_eq!(b[9], 0x80);
        // src_vsi 5 at bit 80 → byte 10 = 0x05; tsyn at bit 90 → byte 11 bit 2.
        assert_eq!(b[10], 0x05);
        assert_eq!(b[11], 0x04);
        // qlen 1024 at bit 135 → bit 145 → byte 18 bit 1.
        assert_eq!(b[16], 0x00);
        assert_eq!(b[17], 0x00);
        // tso_ena at bit 152 → byte 19 bit 0; tso_qnum 3 at bit 153 → bits 153,154.
        assert_eq!(b[18], 0x02);
        assert_eq!(b[19], 0x07);
        // legacy_int at bit 164 → byte 20 bit 4.
        assert_eq!(b[20], 0x10);
        assert_eq!(b[21], 0x00);
        assert_eq!(TlanCtx::unpack(&b), c);
        assert_eq!(c.ring_iova(), 0x1_2345_6780);
    }

    #[test]
    fn rlan_roundtrip_and_positions() {
        let c = RlanCtx {
            head: 0,
            base: 0x4000_0000 >> 7,
            qlen: 512,
            dbuf: (2048 >> rlan::DBUF_SHIFT) as u8,
            dsize: true,
            crcstrip: true,
            l2tsel: true,
            showiv: false,
            rxmax: 9728,
            lrxqthresh: 1,
            prefena: true,
        };
        let b = c.pack();
        assert_eq!(RlanCtx::unpack(&b), c);
        // base starts at bit 32 → byte 4.
        assert_eq!(get(&b, rlan::BASE) << 7, 0x4000_0000);
        assert_eq!(b[4..8], (0x4000_0000u64 >> 7).to_le_bytes()[..4]);
    }
}
