//! Device bring-up and control-path register work: probe by PCI id, reset,
//! MAC address, PHY autonegotiation through MDIC, link state, and the
//! clear-on-read hardware counters accumulated into 64-bit totals.
//!
//! Plays the part of Linux `igb_probe` / `igb_reset` / `e1000_reset_hw_82575`
//! and `igb_update_stats` for a poll-mode driver without interrupts.

use crate::regs::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{LinkStatus, MacAddr, RssConf, RssHashTypes};

/// The igb families this driver knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    I82576,
    I350,
}

/// Copper (internal PHY, autonegotiation through MDIC) or SerDes/fiber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Copper,
    Serdes,
}

/// One supported PCI id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartId {
    pub device: u16,
    pub name: &'static str,
    pub family: Family,
    pub media: Media,
}

pub const VENDOR_INTEL: u16 = 0x8086;

/// Device ids from `e1000_hw.h` (physical functions only).
pub const PARTS: &[PartId] = &[
    PartId {
        device: 0x10C9,
        name: "82576",
        family: Family::I82576,
        media: Media::Copper,
    },
    PartId {
        device: 0x10E6,
        name: "82576 fiber",
        family: Family::I82576,
        media: Media::Serdes,
    },
    PartId {
        device: 0x10E7,
        name: "82576 serdes",
        family: Family::I82576,
        media: Media::Serdes,
    },
    PartId {
        device: 0x10E8,
        name: "82576 quad copper",
        family: Family::I82576,
        media: Media::Copper,
    },
    PartId {
        device: 0x1526,
        name: "82576 quad copper ET2",
        family: Family::I82576,
        media: Media::Copper,
    },
    PartId {
        device: 0x150A,
        name: "82576 NS",
        family: Family::I82576,
        media: Media::Copper,
    },
    PartId {
        device: 0x1518,
        name: "82576 NS serdes",
        family: Family::I82576,
        media: Media::Serdes,
    },
    PartId {
        device: 0x150D,
        name: "82576 serdes quad",
        family: Family::I82576,
        media: Media::Serdes,
    },
    PartId {
        device: 0x1521,
        name: "I350 copper",
        family: Family::I350,
        media: Media::Copper,
    },
    PartId {
        device: 0x1522,
        name: "I350 fiber",
        family: Family::I350,
        media: Media::Serdes,
    },
    PartId {
        device: 0x1523,
        name: "I350 serdes",
        family: Family::I350,
        media: Media::Serdes,
    },
    PartId {
        device: 0x1524,
        name: "I350 SGMII",
        family: Family::I350,
        media: Media::Serdes,
    },
];

/// Looks a PCI id up in [`PARTS`].
pub fn lookup(vendor: u16, device: u16) -> Option<PartId> {
    if vendor != VENDOR_INTEL {
        return None;
    }
    PARTS.iter().copied().find(|p| p.device == device)
}

impl Family {
    /// TX queues (= RX queues) of the part.
    pub fn queues(self) -> u16 {
        match self {
            Family::I82576 => 16,
            Family::I350 => 8,
        }
    }
}

/// Bring-up failures.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error("CTRL.RST did not clear within {0} ms (device not responding; try `wirespeed unbind` + `bind` or a host reboot)")]
    ResetTimeout(u64),
    #[error("MDIC access to PHY register {reg} timed out")]
    MdicTimeout { reg: u32 },
    #[error("MDIC access to PHY register {reg} reported an error (no PHY at address {PHY_ADDR}?)")]
    MdicError { reg: u32 },
    #[error("the device reads all ones (BAR0 not decoded: PCI memory space disabled, or the device fell off the bus)")]
    Dead,
}

/// Waits for `f` to hold, checking at least once after `limit`.
pub fn wait_for(limit: Duration, step: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() >= limit {
            return f();
        }
        if step.is_zero() {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(step);
        }
    }
}

/// Control-path view of one igb function.
pub struct IgbHw<R: RegisterSpace> {
    pub regs: Arc<R>,
    pub part: PartId,
    stats: Mutex<HwCounters>,
}

/// 64-bit totals of the clear-on-read counters.
#[derive(Debug, Clone, Default)]
pub struct HwCounters {
    pub c32: Vec<u64>,
    pub c64: Vec<u64>,
}

impl<R: RegisterSpace> IgbHw<R> {
    pub fn new(regs: Arc<R>, part: PartId) -> IgbHw<R> {
        IgbHw {
            regs,
            part,
            stats: Mutex::new(HwCounters {
                c32: vec![0; STATS32.len()],
                c64: vec![0; STATS64.len()],
            }),
        }
    }

    #[inline(always)]
    pub fn rd(&self, off: u32) -> u32 {
        self.regs.read32(off)
    }
    #[inline(always)]
    pub fn wr(&self, off: u32, v: u32) {
        self.regs.write32(off, v)
    }

    fn mask_interrupts(&self) {
        self.wr(IMC, 0xFFFF_FFFF);
        self.wr(EIMC, 0xFFFF_FFFF);
        let _ = self.rd(ICR);
        let _ = self.rd(EICR);
    }

    /// Global reset and basic init (as `e1000_reset_hw_82575` / `_82580` and
    /// `igb_reset` do): mask interrupts, quiesce RX/TX, CTRL.RST, bounded
    /// wait, wait for the EEPROM auto-read, mask again, DRV_LOAD.
    pub fn reset(&self) -> Result<(), HwError> {
        if self.rd(STATUS) == 0xFFFF_FFFF {
            return Err(HwError::Dead);
        }
        self.mask_interrupts();
        self.wr(RCTL, 0);
        self.wr(TCTL, TCTL_PSP);
        let _ = self.rd(STATUS); // flush posted writes
        std::thread::sleep(Duration::from_millis(10));

        self.wr(CTRL, self.rd(CTRL) | CTRL_RST);
        // The part needs ≥ 1 ms before it answers again.
        std::thread::sleep(Duration::from_millis(2));
        let limit = 500;
        if !wait_for(
            Duration::from_millis(limit),
            Duration::from_millis(1),
            || self.rd(CTRL) & CTRL_RST == 0,
        ) {
            return Err(HwError::ResetTimeout(limit));
        }
        // EEPROM auto-read done. QEMU never sets it; CTRL.RST clearing is the
        // fallback, so this wait is bounded and not fatal.
        if !wait_for(
            Duration::from_millis(10),
            Duration::from_micros(200),
            || self.rd(EECD) & EECD_AUTO_RD != 0,
        ) {
            tracing::debug!("igb: EECD.AUTO_RD not set after reset (emulated device?)");
        }
        self.mask_interrupts();
        self.wr(CTRL_EXT, self.rd(CTRL_EXT) | CTRL_EXT_DRV_LOAD);
        self.wr(CTRL, self.rd(CTRL) | CTRL_SLU);
        // No receive-side packet distribution: every frame goes to RX queue 0.
        self.wr(MRQC, 0);
        for i in 0..MTA_LEN {
            self.wr(MTA + 4 * i, 0);
        }
        // The VLAN ethertype used for insertion (0x8100, its reset value).
        let vet = self.rd(VET);
        if vet & 0xFFFF == 0 {
            self.wr(VET, (vet & 0xFFFF_0000) | 0x8100);
        }
        self.wr(RXCSUM, self.rd(RXCSUM) | RXCSUM_IPOFL | RXCSUM_TUOFL);
        // Start the counters from zero.
        self.read_counters_raw();
        Ok(())
    }

    /// Plays the part of Linux `igb_setup_mrqc` (DPDK `igb_rss_configure` /
    /// `igb_hw_rss_hash_set`; 82576 datasheet §7.1.1.7, §8.10.x MRQC,
    /// RETA, RSSRK): with `rss`, the 40-byte key into RSSRK0..9 (byte
    /// 4·i+j in bits 8j+7:8j of RSSRK i), the 128 redirection entries into
    /// RETA0..31 (entry 4·i+j in byte j of RETA i; the 82576 takes the
    /// queue in the entry's low bits, Linux's shift of 0 without VFs),
    /// RXCSUM.PCSD so the write-back carries the hash, and MRQC = RSS
    /// multiple queues + the selected hash fields. Without, MRQC's mode
    /// bits are cleared (`igb_rss_disable`): every frame to queue 0.
    pub fn setup_mrqc(&self, rss: Option<&RssConf>) {
        let Some(rss) = rss else {
            self.wr(MRQC, self.rd(MRQC) & !MRQC_ENABLE_MASK);
            return;
        };
        for i in 0..RSSRK_LEN {
            let k = &rss.key[4 * i as usize..4 * i as usize + 4];
            self.wr(RSSRK + 4 * i, u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
        }
        for (i, e) in rss.reta.chunks(4).enumerate() {
            let b: [u8; 4] = std::array::from_fn(|j| e.get(j).copied().unwrap_or(0) as u8);
            self.wr(RETA + 4 * i as u32, u32::from_le_bytes(b));
        }
        self.wr(RXCSUM, self.rd(RXCSUM) | RXCSUM_PCSD);
        let t = rss.hash_types;
        let mut mrqc = MRQC_ENABLE_RSS_MQ;
        for (sel, bit) in [
            (RssHashTypes::IPV4, MRQC_RSS_FIELD_IPV4),
            (RssHashTypes::IPV4_TCP, MRQC_RSS_FIELD_IPV4_TCP),
            (RssHashTypes::IPV4_UDP, MRQC_RSS_FIELD_IPV4_UDP),
        ] {
            if t.contains(sel) {
                mrqc |= bit;
            }
        }
        self.wr(MRQC, mrqc);
    }

    /// MAC from RAL0/RAH0 (the EEPROM loads it there at reset), or `None`
    /// when the address-valid bit is clear or the address is not unicast.
    pub fn mac(&self) -> Option<MacAddr> {
        let l = self.rd(RAL0);
        let h = self.rd(RAH0);
        let m = MacAddr([
            l as u8,
            (l >> 8) as u8,
            (l >> 16) as u8,
            (l >> 24) as u8,
            h as u8,
            (h >> 8) as u8,
        ]);
        (h & RAH_AV != 0 && m != MacAddr::ZERO && !m.is_multicast()).then_some(m)
    }

    /// Programs receive address 0.
    pub fn set_mac(&self, m: MacAddr) {
        let b = m.0;
        self.wr(RAL0, u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        self.wr(RAH0, u32::from(b[4]) | (u32::from(b[5]) << 8) | RAH_AV);
    }

    fn mdic(&self, cmd: u32, reg: u32) -> Result<u32, HwError> {
        self.wr(
            MDIC,
            cmd | (reg << MDIC_REG_SHIFT) | (PHY_ADDR << MDIC_PHY_SHIFT),
        );
        let mut v = 0;
        if !wait_for(
            Duration::from_millis(100),
            Duration::from_micros(50),
            || {
                v = self.rd(MDIC);
                v & MDIC_READY != 0
            },
        ) {
            return Err(HwError::MdicTimeout { reg });
        }
        if v & MDIC_ERROR != 0 {
            return Err(HwError::MdicError { reg });
        }
        Ok(v)
    }

    /// Reads a PHY register through MDIC.
    pub fn phy_read(&self, reg: u32) -> Result<u16, HwError> {
        Ok((self.mdic(MDIC_OP_READ, reg)? & MDIC_DATA_MASK) as u16)
    }

    /// Writes a PHY register through MDIC.
    pub fn phy_write(&self, reg: u32, v: u16) -> Result<(), HwError> {
        self.mdic(MDIC_OP_WRITE | u32::from(v), reg).map(|_| ())
    }

    /// Brings the link up: on copper, restarts PHY autonegotiation
    /// (advertising 1000/full); STATUS.LU rises when it completes.
    pub fn start_link(&self) -> Result<(), HwError> {
        self.wr(CTRL, self.rd(CTRL) | CTRL_SLU);
        if self.part.media == Media::Copper {
            self.phy_write(
                PHY_BMCR,
                BMCR_AN_ENABLE | BMCR_AN_RESTART | BMCR_FULL_DUPLEX | BMCR_SPEED1000,
            )?;
        }
        Ok(())
    }

    /// Link state from STATUS (LU, SPEED, FD).
    pub fn link(&self) -> LinkStatus {
        let s = self.rd(STATUS);
        let up = s & STATUS_LU != 0;
        let speed = match (s & STATUS_SPEED_MASK) >> STATUS_SPEED_SHIFT {
            0 => 10,
            1 => 100,
            _ => 1000,
        };
        LinkStatus {
            up,
            speed_mbps: if up { speed } else { 0 },
            full_duplex: up && s & STATUS_FD != 0,
        }
    }

    /// Reads (and so clears) every counter, returning the raw deltas.
    fn read_counters_raw(&self) -> (Vec<u64>, Vec<u64>) {
        let c32 = STATS32
            .iter()
            .map(|(r, _)| u64::from(self.rd(*r)))
            .collect();
        let c64 = STATS64
            .iter()
            .map(|(l, h, _)| {
                let lo = u64::from(self.rd(*l));
                let hi = u64::from(self.rd(*h));
                (hi << 32) | lo
            })
            .collect();
        (c32, c64)
    }

    /// Adds what the clear-on-read counters gathered since the last call to
    /// the 64-bit totals and returns the totals (like `igb_update_stats`).
    pub fn update_counters(&self) -> HwCounters {
        let mut g = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let (d32, d64) = self.read_counters_raw();
        for (t, d) in g.c32.iter_mut().zip(d32) {
            *t += d;
        }
        for (t, d) in g.c64.iter_mut().zip(d64) {
            *t += d;
        }
        g.clone()
    }

    /// The totals as named xstats.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        let c = self.update_counters();
        let mut v: Vec<(String, u64)> = STATS32
            .iter()
            .zip(c.c32)
            .map(|((_, n), x)| (format!("hw_{n}"), x))
            .collect();
        v.extend(
            STATS64
                .iter()
                .zip(c.c64)
                .map(|((_, _, n), x)| (format!("hw_{n}"), x)),
        );
        v
    }

    /// Quiesces the device: RX and TX off, DRV_LOAD cleared (the firmware
    /// takes the port back).
    pub fn shutdown(&self) {
        self.wr(RCTL, 0);
        self.wr(TCTL, TCTL_PSP);
        self.mask_interrupts();
        self.wr(CTRL_EXT, self.rd(CTRL_EXT) & !CTRL_EXT_DRV_LOAD);
    }
}
