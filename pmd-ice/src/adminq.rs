//! The driver side of the E810 admin queues (Linux `ice_controlq.c`,
//! DPDK `ice_controlq.c`): an admin send queue (ATQ) for commands and an
//! admin receive queue (ARQ) for firmware events, both rings of 32-byte
//! descriptors in DMA memory, with one 4 KiB indirect buffer per slot.
//!
//! A command is written at the ATQ's next slot, the tail (`PF_FW_ATQT`) is
//! bumped, and the driver polls the head (`PF_FW_ATQH`) until the firmware has
//! consumed it — bounded by a timeout. The firmware writes the descriptor back
//! with `DD|CMP` (and `ERR` plus a return code on failure) and echoes the cookie.

use crate::regs::*;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{DmaError, DmaRegion};
use wirespeed::eal::RegisterSpace;

/// One admin-queue descriptor: base/ice_adminq_cmd.h:3285 (`struct ice_aq_desc`:
/// flags @0, opcode @2, datalen @4, retval @6, cookie_high @8, cookie_low @12,
/// params @16; `struct ice_aqc_generic` puts addr_high/addr_low at params 8/12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AqDesc {
    pub flags: u16,
    pub opcode: u16,
    pub datalen: u16,
    pub retval: u16,
    pub cookie_high: u32,
    pub cookie_low: u32,
    /// Command-specific parameters; for indirect commands bytes 8..12 are
    /// `addr_high` and 12..16 `addr_low` (`struct ice_aqc_generic`).
    pub params: [u8; 16],
}

impl AqDesc {
    /// A command with opcode `op` and the `SI` flag Linux sets on every command
    /// (`ice_fill_dflt_direct_cmd_desc`).
    pub fn new(op: u16) -> AqDesc {
        AqDesc {
            opcode: op,
            flags: AQ_FLAG_SI,
            ..Default::default()
        }
    }

    pub fn to_bytes(&self) -> [u8; AQ_DESC_SIZE] {
        let mut b = [0u8; AQ_DESC_SIZE];
        b[0..2].copy_from_slice(&self.flags.to_le_bytes());
        b[2..4].copy_from_slice(&self.opcode.to_le_bytes());
        b[4..6].copy_from_slice(&self.datalen.to_le_bytes());
        b[6..8].copy_from_slice(&self.retval.to_le_bytes());
        b[8..12].copy_from_slice(&self.cookie_high.to_le_bytes());
        b[12..16].copy_from_slice(&self.cookie_low.to_le_bytes());
        b[16..32].copy_from_slice(&self.params);
        b
    }

    pub fn from_bytes(b: &[u8; AQ_DESC_SIZE]) -> AqDesc {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut params = [0u8; 16];
        params.copy_from_slice(&b[16..32]);
        AqDesc {
            flags: u16_at(0),
            opcode: u16_at(2),
            datalen: u16_at(4),
            retval: u16_at(6),
            cookie_high: u32_at(8),
            cookie_low: u32_at(12),
            params,
        }
    }

    pub fn param_u8(&self, off: usize) -> u8 {
        self.params[off]
    }
    pub fn param_u16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.params[off], self.params[off + 1]])
    }
    pub fn param_u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.params[off..off + 4].try_into().expect("4 bytes"))
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
    /// The indirect buffer address (`addr_high`, `addr_low`).
    pub fn buf_addr(&self) -> u64 {
        ((self.param_u32(8) as u64) << 32) | self.param_u32(12) as u64
    }
    pub fn set_buf_addr(&mut self, iova: u64) {
        self.set_param_u32(8, (iova >> 32) as u32);
        self.set_param_u32(12, iova as u32);
    }
}

/// Firmware return codes: base/ice_adminq_cmd.h:3434–3457 (`enum ice_aq_err`,
/// `ICE_AQ_RC_OK` 0 … `ICE_AQ_RC_EFBIG` 22; 23–29 arrive as `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AqRc {
    Ok,
    Eperm,
    Enoent,
    Esrch,
    Eintr,
    Eio,
    Enxio,
    E2big,
    Eagain,
    Enomem,
    Eacces,
    Efault,
    Ebusy,
    Eexist,
    Einval,
    Enotty,
    Enospc,
    Enosys,
    Erange,
    Eflushed,
    BadAddr,
    Emode,
    Efbig,
    Other(u16),
}

impl AqRc {
    pub fn from_u16(v: u16) -> AqRc {
        use AqRc::*;
        match v {
            0 => Ok,
            1 => Eperm,
            2 => Enoent,
            3 => Esrch,
            4 => Eintr,
            5 => Eio,
            6 => Enxio,
            7 => E2big,
            8 => Eagain,
            9 => Enomem,
            10 => Eacces,
            11 => Efault,
            12 => Ebusy,
            13 => Eexist,
            14 => Einval,
            15 => Enotty,
            16 => Enospc,
            17 => Enosys,
            18 => Erange,
            19 => Eflushed,
            20 => BadAddr,
            21 => Emode,
            22 => Efbig,
            x => Other(x),
        }
    }

    pub fn to_u16(self) -> u16 {
        use AqRc::*;
        match self {
            Ok => 0,
            Eperm => 1,
            Enoent => 2,
            Esrch => 3,
            Eintr => 4,
            Eio => 5,
            Enxio => 6,
            E2big => 7,
            Eagain => 8,
            Enomem => 9,
            Eacces => 10,
            Efault => 11,
            Ebusy => 12,
            Eexist => 13,
            Einval => 14,
            Enotty => 15,
            Enospc => 16,
            Enosys => 17,
            Erange => 18,
            Eflushed => 19,
            BadAddr => 20,
            Emode => 21,
            Efbig => 22,
            Other(x) => x,
        }
    }
}

impl std::fmt::Display for AqRc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AqRc::Other(x) => write!(f, "ICE_AQ_RC_{x}"),
            rc => write!(f, "ICE_AQ_RC_{}", format!("{rc:?}").to_uppercase()),
        }
    }
}

/// A name for an opcode, for error messages.
pub fn opcode_name(op: u16) -> &'static str {
    match op {
        opc::GET_VER => "get_ver",
        opc::DRIVER_VER => "driver_ver",
        opc::Q_SHUTDOWN => "q_shutdown",
        opc::REQ_RES => "req_res",
        opc::LIST_FUNC_CAPS => "list_func_caps",
        opc::MANAGE_MAC_READ => "manage_mac_read",
        opc::GET_SW_CFG => "get_sw_cfg",
        opc::ADD_VSI => "add_vsi",
        opc::UPDATE_VSI => "update_vsi",
        opc::CLEAR_PF_CFG => "clear_pf_cfg",
        opc::GET_DFLT_TOPO => "get_dflt_topo",
        opc::GET_PHY_CAPS => "get_phy_caps",
        opc::SET_PHY_CFG => "set_phy_cfg",
        opc::RESTART_AN => "restart_an",
        opc::LIST_DEV_CAPS => "list_dev_caps",
        opc::GET_LINK_STATUS => "get_link_status",
        opc::ADD_TXQS => "add_txqs",
        opc::DIS_TXQS => "dis_txqs",
        opc::SET_RSS_KEY => "set_rss_key",
        opc::SET_RSS_LUT => "set_rss_lut",
        opc::DOWNLOAD_PKG => "download_pkg",
        _ => "unknown",
    }
}

/// Admin-queue errors.
#[derive(Debug, thiserror::Error)]
pub enum AqError {
    #[error("admin command {opcode:#06x} ({name}): firmware did not answer within {ms} ms; the device may be resetting or hung (reset the PF by reopening the port)", name = opcode_name(*.opcode))]
    Timeout { opcode: u16, ms: u64 },
    #[error("admin command {opcode:#06x} ({name}) failed: firmware returned {rc}", name = opcode_name(*.opcode))]
    Firmware { opcode: u16, rc: AqRc },
    #[error("admin command {opcode:#06x} ({name}): completion carries cookie {got:#x}, expected {want:#x} (stale or foreign completion)", name = opcode_name(*.opcode))]
    CookieMismatch { opcode: u16, want: u64, got: u64 },
    #[error("admin command {opcode:#06x} ({name}): head moved but the descriptor has no DD flag", name = opcode_name(*.opcode))]
    NotDone { opcode: u16 },
    #[error("admin command {opcode:#06x}: buffer of {len} bytes exceeds the {AQ_MAX_BUF_LEN}-byte admin buffer")]
    BufTooLarge { opcode: u16, len: usize },
    #[error("admin queue {which}: the device did not latch the ring base (read back {got:#x}, wrote {want:#x}); the PF is in reset or BAR0 is not the ice register space")]
    InitReadback {
        which: &'static str,
        want: u32,
        got: u32,
    },
    #[error("admin queue: {0}")]
    Dma(#[from] DmaError),
    #[error("admin queue length {0} is not in 2..=1023")]
    BadLength(u16),
}

/// Register offsets of one control queue.
struct QRegs {
    bal: u32,
    bah: u32,
    len: u32,
    head: u32,
    tail: u32,
}

const ATQ: QRegs = QRegs {
    bal: PF_FW_ATQBAL,
    bah: PF_FW_ATQBAH,
    len: PF_FW_ATQLEN,
    head: PF_FW_ATQH,
    tail: PF_FW_ATQT,
};
const ARQ: QRegs = QRegs {
    bal: PF_FW_ARQBAL,
    bah: PF_FW_ARQBAH,
    len: PF_FW_ARQLEN,
    head: PF_FW_ARQH,
    tail: PF_FW_ARQT,
};

/// A firmware event received on the ARQ.
#[derive(Debug, Clone)]
pub struct AqEvent {
    pub desc: AqDesc,
    pub data: Vec<u8>,
}

/// The driver's admin queues.
pub struct AdminQueue {
    len: u16,
    atq: DmaRegion,
    atq_bufs: DmaRegion,
    arq: DmaRegion,
    arq_bufs: DmaRegion,
    atq_ntu: u16,
    arq_ntc: u16,
    cookie: u64,
    timeout: Duration,
}

impl AdminQueue {
    /// Allocates both rings (`len` descriptors each) and their buffers, and
    /// programs and enables them (`ice_init_sq` / `ice_init_rq`).
    pub fn init<R: RegisterSpace>(
        regs: &R,
        len: u16,
        timeout: Duration,
    ) -> Result<AdminQueue, AqError> {
        if !(2..=PF_FW_AQLEN_LEN_M as u16).contains(&len) {
            return Err(AqError::BadLength(len));
        }
        let n = len as usize;
        let mut aq = AdminQueue {
            len,
            atq: DmaRegion::alloc(n * AQ_DESC_SIZE)?,
            atq_bufs: DmaRegion::alloc(n * AQ_MAX_BUF_LEN)?,
            arq: DmaRegion::alloc(n * AQ_DESC_SIZE)?,
            arq_bufs: DmaRegion::alloc(n * AQ_MAX_BUF_LEN)?,
            atq_ntu: 0,
            arq_ntc: 0,
            cookie: 1,
            timeout,
        };
        // ARQ: every slot posted with its buffer before the queue is enabled.
        for i in 0..len {
            aq.post_arq(i);
        }
        aq.program(regs, &ATQ, aq.atq.iova(), "ATQ")?;
        aq.program(regs, &ARQ, aq.arq.iova(), "ARQ")?;
        regs.write32(PF_FW_ARQT, (len - 1) as u32);
        Ok(aq)
    }

    fn program<R: RegisterSpace>(
        &self,
        regs: &R,
        q: &QRegs,
        base: u64,
        which: &'static str,
    ) -> Result<(), AqError> {
        regs.write32(q.head, 0);
        regs.write32(q.tail, 0);
        regs.write32(q.bal, base as u32);
        regs.write32(q.bah, (base >> 32) as u32);
        regs.write32(q.len, self.len as u32 | PF_FW_AQLEN_ENABLE);
        let got = regs.read32(q.bal);
        if got != base as u32 {
            return Err(AqError::InitReadback {
                which,
                want: base as u32,
                got,
            });
        }
        Ok(())
    }

    /// Disables both queues (`ice_shutdown_sq` / `ice_shutdown_rq`).
    pub fn shutdown<R: RegisterSpace>(&mut self, regs: &R) {
        for q in [&ATQ, &ARQ] {
            regs.write32(q.len, 0);
            regs.write32(q.head, 0);
            regs.write32(q.tail, 0);
            regs.write32(q.bal, 0);
            regs.write32(q.bah, 0);
        }
    }

    pub fn len(&self) -> u16 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// Next ATQ slot the driver will use (ring-wrap tests watch it).
    pub fn atq_next(&self) -> u16 {
        self.atq_ntu
    }

    fn write_desc(region: &DmaRegion, slot: u16, d: &AqDesc) {
        let b = d.to_bytes();
        // SAFETY: slot < len, so the 32 bytes lie inside the ring region; the
        // device does not own this slot (ATQ: head passed it; ARQ: being re-posted).
        unsafe {
            let p = region.as_ptr().add(slot as usize * AQ_DESC_SIZE);
            for (i, x) in b.iter().enumerate() {
                std::ptr::write_volatile(p.add(i), *x);
            }
        }
    }

    fn read_desc(region: &DmaRegion, slot: u16) -> AqDesc {
        let mut b = [0u8; AQ_DESC_SIZE];
        // SAFETY: slot < len; the bytes lie inside the ring region; volatile
        // because the device writes them.
        unsafe {
            let p = region.as_ptr().add(slot as usize * AQ_DESC_SIZE);
            for (i, x) in b.iter_mut().enumerate() {
                *x = std::ptr::read_volatile(p.add(i));
            }
        }
        AqDesc::from_bytes(&b)
    }

    /// Copies `src` into slot `slot`'s buffer and zeroes the rest of it.
    fn buf_write(region: &DmaRegion, slot: u16, src: &[u8]) {
        debug_assert!(src.len() <= AQ_MAX_BUF_LEN);
        // SAFETY: each slot owns a disjoint 4 KiB piece of the region; the
        // device only touches it between post and completion, while the driver
        // does not; `src.len() <= AQ_MAX_BUF_LEN`.
        unsafe {
            let p = region.as_ptr().add(slot as usize * AQ_MAX_BUF_LEN);
            std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len());
            std::ptr::write_bytes(p.add(src.len()), 0, AQ_MAX_BUF_LEN - src.len());
        }
    }

    /// Copies the first `dst.len()` bytes of slot `slot`'s buffer out.
    fn buf_read(region: &DmaRegion, slot: u16, dst: &mut [u8]) {
        debug_assert!(dst.len() <= AQ_MAX_BUF_LEN);
        // SAFETY: as in `buf_write`; the device has completed this slot.
        unsafe {
            let p = region.as_ptr().add(slot as usize * AQ_MAX_BUF_LEN);
            std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len());
        }
    }

    fn post_arq(&mut self, slot: u16) {
        let mut d = AqDesc {
            flags: AQ_FLAG_BUF | AQ_FLAG_LB,
            datalen: AQ_MAX_BUF_LEN as u16,
            ..Default::default()
        };
        d.set_buf_addr(self.arq_bufs.iova_at(slot as usize * AQ_MAX_BUF_LEN));
        Self::write_desc(&self.arq, slot, &d);
    }

    /// Sends one command and waits for its completion (`ice_sq_send_cmd`).
    ///
    /// With `buf`, the command is indirect: the buffer is copied to the slot's
    /// DMA buffer (`RD` when `buf_is_input`, i.e. the firmware reads it), and
    /// the firmware's buffer is copied back into `buf` on completion. On
    /// success `desc` holds the firmware's write-back.
    pub fn send<R: RegisterSpace>(
        &mut self,
        regs: &R,
        desc: &mut AqDesc,
        buf: Option<(&mut [u8], bool)>,
    ) -> Result<(), AqError> {
        let opcode = desc.opcode;
        let slot = self.atq_ntu;
        let cookie = self.cookie;
        self.cookie = self.cookie.wrapping_add(1);
        desc.cookie_high = (cookie >> 32) as u32;
        desc.cookie_low = cookie as u32;
        desc.retval = 0;
        desc.flags &= !(AQ_FLAG_DD | AQ_FLAG_CMP | AQ_FLAG_ERR);
        let mut buf = buf;
        if let Some((b, input)) = buf.as_mut() {
            if b.len() > AQ_MAX_BUF_LEN {
                return Err(AqError::BufTooLarge {
                    opcode,
                    len: b.len(),
                });
            }
            Self::buf_write(&self.atq_bufs, slot, b);
            desc.flags |= AQ_FLAG_BUF;
            if *input {
                desc.flags |= AQ_FLAG_RD;
            }
            if b.len() > AQ_LG_BUF {
                desc.flags |= AQ_FLAG_LB;
            }
            desc.datalen = b.len() as u16;
            desc.set_buf_addr(self.atq_bufs.iova_at(slot as usize * AQ_MAX_BUF_LEN));
        }
        Self::write_desc(&self.atq, slot, desc);
        self.atq_ntu = (slot + 1) % self.len;
        // wmb(): descriptor and buffer before the tail.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        regs.write32(PF_FW_ATQT, self.atq_ntu as u32);

        // Poll the head (`ice_sq_done`), bounded by the timeout.
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if regs.read32(PF_FW_ATQH) & PF_FW_AQ_PTR_M == self.atq_ntu as u32 {
                break;
            }
            if start.elapsed() >= self.timeout {
                return Err(AqError::Timeout {
                    opcode,
                    ms: self.timeout.as_millis() as u64,
                });
            }
            spins += 1;
            if spins > 64 {
                std::thread::sleep(Duration::from_micros(20));
            } else {
                std::hint::spin_loop();
            }
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        let wb = Self::read_desc(&self.atq, slot);
        let got = ((wb.cookie_high as u64) << 32) | wb.cookie_low as u64;
        if wb.flags & AQ_FLAG_DD == 0 {
            return Err(AqError::NotDone { opcode });
        }
        if got != cookie {
            return Err(AqError::CookieMismatch {
                opcode,
                want: cookie,
                got,
            });
        }
        if let Some((b, _)) = buf.as_mut() {
            Self::buf_read(&self.atq_bufs, slot, b);
        }
        let rc = AqRc::from_u16(wb.retval);
        if wb.flags & AQ_FLAG_ERR != 0 || rc != AqRc::Ok {
            *desc = wb;
            return Err(AqError::Firmware { opcode, rc });
        }
        *desc = wb;
        Ok(())
    }

    /// Checks both queues' length registers for the error latches Linux
    /// `__ice_clean_ctrlq` checks (`VFE`, `OVFL`, `CRIT`), clears the ones
    /// set (writing the register back without them) and returns a message
    /// for each.
    pub fn check_errors<R: RegisterSpace>(&self, regs: &R) -> Vec<String> {
        let mut out = Vec::new();
        for (q, name) in [(&ARQ, "ARQ"), (&ATQ, "ATQ")] {
            let v = regs.read32(q.len);
            let bits = v & (PF_FW_AQLEN_VFE | PF_FW_AQLEN_OVFL | PF_FW_AQLEN_CRIT);
            if bits == 0 {
                continue;
            }
            for (b, what) in [
                (PF_FW_AQLEN_VFE, "VF error"),
                (PF_FW_AQLEN_OVFL, "overflow: firmware events were lost"),
                (PF_FW_AQLEN_CRIT, "critical error"),
            ] {
                if bits & b != 0 {
                    out.push(format!("admin {name}: {what}"));
                }
            }
            regs.write32(q.len, v & !bits);
        }
        out
    }

    /// Takes one firmware event off the ARQ, if any (`ice_clean_rq_elem`), and
    /// gives the slot back to the firmware.
    pub fn receive<R: RegisterSpace>(&mut self, regs: &R) -> Option<AqEvent> {
        let head = (regs.read32(PF_FW_ARQH) & PF_FW_AQ_PTR_M) as u16;
        if head == self.arq_ntc {
            return None;
        }
        let slot = self.arq_ntc;
        let desc = Self::read_desc(&self.arq, slot);
        let n = (desc.datalen as usize).min(AQ_MAX_BUF_LEN);
        let mut data = vec![0u8; n];
        Self::buf_read(&self.arq_bufs, slot, &mut data);
        self.post_arq(slot);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        regs.write32(PF_FW_ARQT, slot as u32);
        self.arq_ntc = (slot + 1) % self.len;
        Some(AqEvent { desc, data })
    }
}
