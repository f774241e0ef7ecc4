//! Queueing disciplines: the [`Qdisc`] trait, `pfifo_fast` and `noqueue`, and
//! `tc -s qdisc`-like statistics.
//!
//! A qdisc here only orders and bounds packets; the generic machinery that
//! Linux keeps in `net/sched/sch_generic.c` and `net/core/dev.c` (bypass,
//! requeue list, quota, XOFF) lives in [`super::txq::NetdevQueue`].

use super::fifo::MbufFifo;
use crate::mbuf::Mbuf;
use serde::Serialize;
use std::fmt;

/// Linux's default `txqueuelen` (and so the default `pfifo_fast` limit).
pub const DEFAULT_TXQUEUELEN: usize = 1000;
/// Largest accepted qdisc limit (bounds the preallocated storage).
pub const MAX_QDISC_LIMIT: usize = 1 << 20;

/// A queueing discipline attached to one TX queue.
///
/// Implementations must not allocate per packet.
pub trait Qdisc: Send {
    /// The name `tc` shows (`pfifo_fast`, `noqueue`, …).
    fn kind(&self) -> &'static str;

    /// Plays the part of the qdisc's `enqueue` op: accepts the packet or gives
    /// it back (the caller drops it and counts it, as `qdisc_drop` does).
    fn enqueue(&mut self, m: Mbuf) -> Result<(), Mbuf>;

    /// Plays the part of the qdisc's `dequeue` op: the next packet to send.
    fn dequeue(&mut self) -> Option<Mbuf>;

    /// Packets held (`q.qlen`).
    fn qlen(&self) -> usize;

    /// Bytes held (`qstats.backlog`).
    fn backlog_bytes(&self) -> u64;

    /// Most packets it holds (per band, for a qdisc with bands).
    fn limit(&self) -> usize;

    /// How many more packets of priority `prio` it takes now without a
    /// drop: the room in the band `prio` maps to. The default is one limit
    /// over everything.
    fn room(&self, _prio: u8) -> usize {
        self.limit().saturating_sub(self.qlen())
    }

    /// `TCQ_F_CAN_BYPASS`: a work-conserving qdisc that, when empty, lets a
    /// packet go straight to the driver.
    fn can_bypass(&self) -> bool {
        true
    }

    /// True for `noqueue`: packets go straight to the driver, never queued.
    fn is_noqueue(&self) -> bool {
        false
    }
}

/// Linux's `prio2band` for `pfifo_fast`: `skb->priority & TC_PRIO_MAX` → band.
/// Band 0 is served first. (TC_PRIO_INTERACTIVE = 6 and TC_PRIO_CONTROL = 7 go
/// to band 0; BESTEFFORT = 0 to band 1; BULK = 2 to band 2.)
pub const PRIO2BAND: [u8; 16] = [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
/// `TC_PRIO_MAX`.
pub const TC_PRIO_MAX: u8 = 15;
/// Bands of `pfifo_fast`.
pub const PFIFO_FAST_BANDS: usize = 3;

/// `pfifo_fast`: three FIFO bands chosen by packet priority, band 0 first;
/// each band holds up to `limit` (txqueuelen) packets, and a packet that finds
/// its band full is dropped.
///
/// Plays the part of `pfifo_fast_enqueue` / `pfifo_fast_dequeue`
/// (`net/sched/sch_generic.c`). Since Linux 4.16 (the lockless pfifo_fast),
/// `pfifo_fast_init` gives every band its own `skb_array` of
/// `dev->tx_queue_len` entries and `pfifo_fast_enqueue` drops when that band's
/// ring is full: a full bulk band never keeps an interactive packet out.
pub struct PfifoFast {
    bands: [MbufFifo; PFIFO_FAST_BANDS],
    /// Bit b set = band b non-empty (the old `bitmap2band` idea).
    nonempty: u8,
    qlen: usize,
    limit: usize,
    /// Priority → band (`priomap`), default [`PRIO2BAND`].
    priomap: [u8; 16],
}

impl PfifoFast {
    /// A pfifo_fast with `limit` packets per band (storage allocated now).
    pub fn new(limit: usize) -> Result<PfifoFast, QdiscError> {
        if limit == 0 || limit > MAX_QDISC_LIMIT {
            return Err(QdiscError::BadLimit {
                value: limit,
                max: MAX_QDISC_LIMIT,
            });
        }
        Ok(PfifoFast {
            bands: std::array::from_fn(|_| MbufFifo::with_capacity(limit)),
            nonempty: 0,
            qlen: 0,
            limit,
            priomap: PRIO2BAND,
        })
    }

    /// Sets the priority → band map (`priomap`, 16 entries indexed by
    /// `priority & TC_PRIO_MAX`). Linux's pfifo_fast keeps [`PRIO2BAND`]
    /// fixed; its `prio` qdisc takes a map like this one and refuses an
    /// entry not below the band count (`prio_tune`: `EINVAL`), as this does.
    pub fn with_priomap(mut self, map: [u8; 16]) -> Result<PfifoFast, QdiscError> {
        if let Some(i) = map.iter().position(|&b| b as usize >= PFIFO_FAST_BANDS) {
            return Err(QdiscError::BadPriomap {
                index: i,
                band: map[i],
            });
        }
        self.priomap = map;
        Ok(self)
    }

    /// The band this queue puts priority `prio` in (its `priomap`).
    #[inline(always)]
    pub fn band(&self, prio: u8) -> usize {
        self.priomap[(prio & TC_PRIO_MAX) as usize] as usize
    }

    /// The band a packet of priority `prio` goes to.
    #[inline(always)]
    pub fn band_of(prio: u8) -> usize {
        PRIO2BAND[(prio & TC_PRIO_MAX) as usize] as usize
    }

    /// Packets held in band `b`.
    pub fn band_len(&self, b: usize) -> usize {
        self.bands.get(b).map_or(0, |f| f.len())
    }
}

impl Qdisc for PfifoFast {
    fn kind(&self) -> &'static str {
        "pfifo_fast"
    }

    #[inline]
    fn enqueue(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let b = self.band(m.priority());
        if self.bands[b].len() >= self.limit {
            return Err(m);
        }
        self.bands[b].push_back(m)?;
        self.nonempty |= 1 << b;
        self.qlen += 1;
        Ok(())
    }

    #[inline]
    fn dequeue(&mut self) -> Option<Mbuf> {
        if self.nonempty == 0 {
            return None;
        }
        let b = self.nonempty.trailing_zeros() as usize;
        let band = &mut self.bands[b];
        let m = band.pop_front();
        if band.is_empty() {
            self.nonempty &= !(1 << b);
        }
        if m.is_some() {
            self.qlen -= 1;
        }
        m
    }

    #[inline(always)]
    fn qlen(&self) -> usize {
        self.qlen
    }

    fn backlog_bytes(&self) -> u64 {
        self.bands.iter().map(|b| b.bytes()).sum()
    }

    fn limit(&self) -> usize {
        self.limit
    }

    #[inline(always)]
    fn room(&self, prio: u8) -> usize {
        self.limit - self.bands[self.band(prio)].len()
    }
}

/// `noqueue`: no queue at all; packets go straight to the driver, and what the
/// driver cannot take is dropped (Linux's "virtual device asks to queue
/// packet" path in `__dev_queue_xmit`). For the raw generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoQueue;

impl Qdisc for NoQueue {
    fn kind(&self) -> &'static str {
        "noqueue"
    }
    fn enqueue(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        Err(m)
    }
    fn dequeue(&mut self) -> Option<Mbuf> {
        None
    }
    fn qlen(&self) -> usize {
        0
    }
    fn backlog_bytes(&self) -> u64 {
        0
    }
    fn limit(&self) -> usize {
        0
    }
    fn can_bypass(&self) -> bool {
        false
    }
    fn is_noqueue(&self) -> bool {
        true
    }
}

/// The qdisc of a queue: the built-ins dispatched statically (no indirect
/// call per packet), anything else through the trait object.
pub enum QdiscImpl {
    PfifoFast(PfifoFast),
    NoQueue(NoQueue),
    Custom(Box<dyn Qdisc>),
}

impl QdiscImpl {
    /// Builds a built-in qdisc from its config.
    pub fn from_config(c: &QdiscConfig) -> Result<QdiscImpl, QdiscError> {
        Ok(match c.kind {
            QdiscKind::PfifoFast => {
                QdiscImpl::PfifoFast(PfifoFast::new(c.txqueuelen)?.with_priomap(c.priomap)?)
            }
            QdiscKind::Noqueue => QdiscImpl::NoQueue(NoQueue),
        })
    }

    #[inline(always)]
    pub fn enqueue(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        match self {
            QdiscImpl::PfifoFast(q) => q.enqueue(m),
            QdiscImpl::NoQueue(q) => q.enqueue(m),
            QdiscImpl::Custom(q) => q.enqueue(m),
        }
    }
    #[inline(always)]
    pub fn dequeue(&mut self) -> Option<Mbuf> {
        match self {
            QdiscImpl::PfifoFast(q) => q.dequeue(),
            QdiscImpl::NoQueue(_) => None,
            QdiscImpl::Custom(q) => q.dequeue(),
        }
    }
    #[inline(always)]
    pub fn qlen(&self) -> usize {
        match self {
            QdiscImpl::PfifoFast(q) => q.qlen(),
            QdiscImpl::NoQueue(_) => 0,
            QdiscImpl::Custom(q) => q.qlen(),
        }
    }
    pub fn backlog_bytes(&self) -> u64 {
        match self {
            QdiscImpl::PfifoFast(q) => q.backlog_bytes(),
            QdiscImpl::NoQueue(_) => 0,
            QdiscImpl::Custom(q) => q.backlog_bytes(),
        }
    }
    pub fn limit(&self) -> usize {
        self.as_dyn().limit()
    }
    /// Room for a packet of priority `prio` ([`Qdisc::room`]).
    #[inline(always)]
    pub fn room(&self, prio: u8) -> usize {
        match self {
            QdiscImpl::PfifoFast(q) => q.room(prio),
            QdiscImpl::NoQueue(_) => 0,
            QdiscImpl::Custom(q) => q.room(prio),
        }
    }
    pub fn kind(&self) -> &'static str {
        self.as_dyn().kind()
    }
    #[inline(always)]
    pub fn can_bypass(&self) -> bool {
        match self {
            QdiscImpl::PfifoFast(_) => true,
            QdiscImpl::NoQueue(_) => false,
            QdiscImpl::Custom(q) => q.can_bypass(),
        }
    }
    #[inline(always)]
    pub fn is_noqueue(&self) -> bool {
        match self {
            QdiscImpl::PfifoFast(_) => false,
            QdiscImpl::NoQueue(_) => true,
            QdiscImpl::Custom(q) => q.is_noqueue(),
        }
    }
    fn as_dyn(&self) -> &dyn Qdisc {
        match self {
            QdiscImpl::PfifoFast(q) => q,
            QdiscImpl::NoQueue(q) => q,
            QdiscImpl::Custom(q) => q.as_ref(),
        }
    }
}

/// Built-in qdisc kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QdiscKind {
    /// Three priority bands (the default for stack traffic).
    #[default]
    PfifoFast,
    /// Straight to the driver (for the raw generator).
    Noqueue,
}

impl std::str::FromStr for QdiscKind {
    type Err = QdiscError;
    fn from_str(s: &str) -> Result<QdiscKind, QdiscError> {
        match s {
            "pfifo_fast" => Ok(QdiscKind::PfifoFast),
            "noqueue" => Ok(QdiscKind::Noqueue),
            _ => Err(QdiscError::UnknownKind(s.to_string())),
        }
    }
}

impl fmt::Display for QdiscKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QdiscKind::PfifoFast => "pfifo_fast",
            QdiscKind::Noqueue => "noqueue",
        })
    }
}

/// Which qdisc a queue gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QdiscConfig {
    pub kind: QdiscKind,
    /// Packet limit (`txqueuelen`), default 1000.
    pub txqueuelen: usize,
    /// pfifo_fast's priority → band map (`priomap`), default [`PRIO2BAND`].
    pub priomap: [u8; 16],
}

impl Default for QdiscConfig {
    fn default() -> Self {
        QdiscConfig {
            kind: QdiscKind::PfifoFast,
            txqueuelen: DEFAULT_TXQUEUELEN,
            priomap: PRIO2BAND,
        }
    }
}

/// Qdisc errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QdiscError {
    #[error("qdisc priomap[{index}] = {band}: pfifo_fast has bands 0, 1 and 2")]
    BadPriomap { index: usize, band: u8 },
    #[error("unknown qdisc '{0}'; known: pfifo_fast, noqueue")]
    UnknownKind(String),
    #[error("qdisc txqueuelen = {value} is out of range (1..={max}); use qdisc = \"noqueue\" for no queue")]
    BadLimit { value: usize, max: usize },
}

/// What `tc -s qdisc show` reports for one qdisc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct QdiscStats {
    pub kind: &'static str,
    pub limit: u64,
    /// Bytes / packets handed to (and accepted by) the driver.
    pub sent_bytes: u64,
    pub sent_packets: u64,
    /// Packets dropped because the qdisc was full.
    pub dropped: u64,
    /// Shaper "over limit" events; `pfifo_fast` and `noqueue` never count
    /// any (as in Linux). Stops by BQL/ring space are in the queue counters.
    pub overlimits: u64,
    /// Packets the driver refused and that were put back at the head.
    pub requeues: u64,
    /// Held now (qdisc + requeue list).
    pub backlog_bytes: u64,
    pub backlog_packets: u64,
}

impl fmt::Display for QdiscStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "qdisc {} limit {}", self.kind, self.limit)?;
        writeln!(
            f,
            " Sent {} bytes {} pkt (dropped {}, overlimits {} requeues {})",
            self.sent_bytes, self.sent_packets, self.dropped, self.overlimits, self.requeues
        )?;
        write!(
            f,
            " backlog {}b {}p requeues {}",
            self.backlog_bytes, self.backlog_packets, self.requeues
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};
    use crate::mbuf::{Mempool, PoolConfig};

    fn pool() -> Mempool {
        set_page_mode(PageMode::Small);
        Mempool::new(&PoolConfig {
            name: "qdisc-test".into(),
            size: 64,
            ..Default::default()
        })
        .unwrap()
    }

    fn pkt(p: &mut Mempool, prio: u8, tag: u8) -> Mbuf {
        let mut m = p.alloc().unwrap();
        m.extend_from_slice(&[tag; 60]).unwrap();
        m.set_priority(prio);
        m
    }

    #[test]
    fn prio2band_matches_linux() {
        // TC_PRIO_BESTEFFORT 0 → 1, FILLER 1 → 2, BULK 2 → 2, INTERACTIVE_BULK 4 → 1,
        // INTERACTIVE 6 → 0, CONTROL 7 → 0; priorities wrap at TC_PRIO_MAX.
        let want = [
            (0, 1),
            (1, 2),
            (2, 2),
            (4, 1),
            (6, 0),
            (7, 0),
            (15, 1),
            (22, 0),
        ];
        for (prio, band) in want {
            assert_eq!(PfifoFast::band_of(prio), band, "prio {prio}");
        }
    }

    /// A `priomap` moving best effort (0) to band 2 and bulk (2) to band 0
    /// reverses which goes first; a band past 2 is refused.
    #[test]
    fn priomap_changes_the_band_and_the_order() {
        let mut p = pool();
        let mut map = PRIO2BAND;
        map[0] = 2;
        map[2] = 0;
        let cfg = QdiscConfig {
            priomap: map,
            ..Default::default()
        };
        let QdiscImpl::PfifoFast(mut q) = QdiscImpl::from_config(&cfg).unwrap() else {
            panic!("pfifo_fast expected")
        };
        for (prio, tag) in [(0, 1), (2, 2), (6, 3)] {
            q.enqueue(pkt(&mut p, prio, tag)).unwrap();
        }
        assert_eq!((q.band_len(0), q.band_len(1), q.band_len(2)), (2, 0, 1));
        let order: Vec<u8> = std::iter::from_fn(|| q.dequeue().map(|m| m.data()[0])).collect();
        assert_eq!(
            order,
            vec![2, 3, 1],
            "bulk and interactive before best effort"
        );
        map[9] = 3;
        assert_eq!(
            PfifoFast::new(8).unwrap().with_priomap(map).err(),
            Some(QdiscError::BadPriomap { index: 9, band: 3 })
        );
    }

    #[test]
    fn band_0_before_1_before_2_fifo_within_a_band() {
        let mut p = pool();
        let mut q = PfifoFast::new(16).unwrap();
        // tags: bulk (band 2) 1,2; best effort (band 1) 3,4; interactive (band 0) 5,6
        for (prio, tag) in [(2, 1), (0, 3), (2, 2), (6, 5), (0, 4), (7, 6)] {
            q.enqueue(pkt(&mut p, prio, tag)).unwrap();
        }
        assert_eq!(
            (q.band_len(0), q.band_len(1), q.band_len(2), q.qlen()),
            (2, 2, 2, 6)
        );
        assert_eq!(q.backlog_bytes(), 360);
        let order: Vec<u8> = std::iter::from_fn(|| q.dequeue().map(|m| m.data()[0])).collect();
        assert_eq!(order, vec![5, 6, 3, 4, 1, 2]);
        assert_eq!((q.qlen(), q.backlog_bytes()), (0, 0));
        assert_eq!(p.stats().in_use, 0);
    }

    #[test]
    fn limit_is_per_band_and_overflow_is_returned() {
        // pfifo_fast_init: one skb_array of tx_queue_len per band, so a full
        // bulk band leaves room in the interactive one.
        let mut p = pool();
        let mut q = PfifoFast::new(2).unwrap();
        q.enqueue(pkt(&mut p, 2, 1)).unwrap();
        q.enqueue(pkt(&mut p, 2, 2)).unwrap();
        assert_eq!((q.room(2), q.room(0), q.room(6)), (0, 2, 2));
        let back = q.enqueue(pkt(&mut p, 1, 3)).unwrap_err();
        assert_eq!(back.data()[0], 3, "prio 1 is band 2 too: full");
        q.enqueue(pkt(&mut p, 6, 4)).unwrap();
        q.enqueue(pkt(&mut p, 7, 5)).unwrap();
        assert_eq!(q.enqueue(pkt(&mut p, 6, 6)).unwrap_err().data()[0], 6);
        q.enqueue(pkt(&mut p, 0, 7)).unwrap();
        assert_eq!(q.qlen(), 5);
        let order: Vec<u8> = std::iter::from_fn(|| q.dequeue().map(|m| m.data()[0])).collect();
        assert_eq!(order, vec![4, 5, 7, 1, 2]);
        assert!(matches!(
            PfifoFast::new(0),
            Err(QdiscError::BadLimit { .. })
        ));
        assert_eq!(
            "fq".parse::<QdiscKind>(),
            Err(QdiscError::UnknownKind("fq".into()))
        );
        assert_eq!("noqueue".parse::<QdiscKind>(), Ok(QdiscKind::Noqueue));
    }
}
