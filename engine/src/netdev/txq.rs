//! The netdev TX queue: one driver queue plus its qdisc, requeue list, BQL
//! limiter and XOFF state, owned by exactly one lcore (Linux's
//! `struct netdev_queue` with its `Qdisc` and `dql`).
//!
//! The stages, each named after the Linux function whose part it plays:
//!
//! * [`NetdevQueue::xmit_burst`] — `__dev_xmit_skb`: the `TCQ_F_CAN_BYPASS`
//!   fast path straight to the driver when the qdisc is empty and the queue is
//!   not stopped, otherwise enqueue and run the qdisc; `noqueue` goes straight
//!   to the driver (`__dev_queue_xmit`'s no-queue branch).
//! * [`NetdevQueue::run`] — `__qdisc_run` / `qdisc_restart`: dequeue (requeued
//!   packets first, `dequeue_skb`; bulk limited by BQL like
//!   `try_bulk_dequeue_skb`) up to the `dev_tx_weight` quota, in bursts.
//! * the private `transmit` — `sch_direct_xmit` → `dev_hard_start_xmit` with
//!   `xmit_more`: one `tx_burst` (one doorbell); BQL `dql_queued` per packet
//!   and the STACK_XOFF decision once at the end of the burst
//!   (`__netdev_tx_sent_queue` / `netdev_tx_sent_queue`); what the driver did
//!   not take is put back at the head in order (`dev_requeue_skb`).
//! * [`NetdevQueue::complete`] — the driver's TX clean + `netdev_tx_completed_queue`:
//!   `dql_completed`, then wake the queue when room returned (re-checked after
//!   the DQL update, so a wake is never lost).
//!
//! * [`NetdevQueue::watchdog`] (in `watchdog.rs`) — `dev_watchdog` +
//!   `ndo_tx_timeout` + `netdev_tx_reset_queue`: a queue whose completions
//!   stopped while it holds packets in flight is reset and traffic resumes.
//!
//! Packet conservation: every packet offered is sent (accepted by the driver),
//! dropped and counted in exactly one drop counter, or still in the backlog;
//! [`TxqCounters::unaccounted`] is zero at every instant.

use super::dql::{BqlView, Dql, DqlError, DQL_MAX_LIMIT};
use super::fifo::MbufFifo;
use super::qdisc::{QdiscConfig, QdiscError, QdiscImpl, QdiscStats};
use crate::eal::tsc::Tsc;
use crate::ethdev::{Completed, StatCounter, TxQueue};
use crate::mbuf::{ol, Burst, Mbuf, BURST_MAX};
use serde::Serialize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

#[path = "watchdog.rs"]
mod watchdog;
pub use watchdog::{TxTimeout, DEFAULT_WATCHDOG_TIMEOUT_MS};
#[path = "carrier.rs"]
mod carrier;

#[path = "gso.rs"]
mod gso;
pub use carrier::{CarrierChange, CarrierPolicy};

/// XOFF bit: stopped by BQL (`__QUEUE_STATE_STACK_XOFF`).
pub const STACK_XOFF: u8 = 1 << 0;
/// XOFF bit: stopped because the driver ring is full (`__QUEUE_STATE_DRV_XOFF`).
pub const DRV_XOFF: u8 = 1 << 1;
/// XOFF bit: the link has no carrier (`netif_carrier_off` → `dev_deactivate`).
pub const CARRIER_XOFF: u8 = 1 << 2;

/// Linux's default `dev_tx_weight` (`net.core.dev_weight` × `dev_weight_tx_bias`).
pub const DEFAULT_DEV_TX_WEIGHT: usize = 64;
/// Default packets per `tx_burst` call.
pub const DEFAULT_TX_BURST: usize = 32;
/// Default completions reclaimed per poll.
pub const DEFAULT_CLEAN_BUDGET: usize = 256;

/// BQL settings for a port's queues.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BqlConfig {
    /// Off: only ring space limits the queue.
    pub enabled: bool,
    pub limit_min: u32,
    pub limit_max: u32,
    /// Milliseconds over which the minimum slack is taken (Linux: HZ = 1 s).
    pub hold_time_ms: u64,
}

impl Default for BqlConfig {
    fn default() -> Self {
        BqlConfig {
            enabled: true,
            limit_min: 0,
            limit_max: DQL_MAX_LIMIT,
            hold_time_ms: 1000,
        }
    }
}

/// How a netdev TX queue is set up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TxqConfig {
    pub qdisc: QdiscConfig,
    pub bql: BqlConfig,
    /// Most packets per `tx_burst` call (one doorbell each), 1..=256.
    pub tx_burst: usize,
    /// Packets dequeued per qdisc run (`dev_tx_weight`), ≥ 1.
    pub dev_tx_weight: usize,
    /// Completions reclaimed per poll (the NAPI TX budget), ≥ 1.
    pub clean_budget: usize,
    /// TX watchdog (`dev->watchdog_timeo`): a queue holding packets in
    /// flight with no completion for this long is reset. 0 = off.
    pub watchdog_timeout_ms: u64,
    /// While the link has no carrier: `drop` (Linux: `dev_deactivate`
    /// swaps in `noop_qdisc`, the backlog is purged and every packet offered
    /// is dropped, counted in `carrier_drops`) or `hold` (the queue stays
    /// stopped with its backlog; the qdisc keeps taking packets up to its
    /// limit, `noqueue` reports no room).
    pub carrier: CarrierPolicy,
}

impl Default for TxqConfig {
    fn default() -> Self {
        TxqConfig {
            qdisc: QdiscConfig::default(),
            bql: BqlConfig::default(),
            tx_burst: DEFAULT_TX_BURST,
            dev_tx_weight: DEFAULT_DEV_TX_WEIGHT,
            clean_budget: DEFAULT_CLEAN_BUDGET,
            watchdog_timeout_ms: DEFAULT_WATCHDOG_TIMEOUT_MS,
            carrier: CarrierPolicy::default(),
        }
    }
}

/// Errors setting up a netdev queue; each names the port, queue and key.
#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    #[error("port {port} tx queue {queue}: {key} = {value}: {why}")]
    Config {
        port: String,
        queue: u16,
        key: &'static str,
        value: String,
        why: String,
    },
    #[error("port {port} tx queue {queue}: {source}")]
    Qdisc {
        port: String,
        queue: u16,
        #[source]
        source: QdiscError,
    },
    #[error("port {port} tx queue {queue}: {source}")]
    Bql {
        port: String,
        queue: u16,
        #[source]
        source: DqlError,
    },
}

/// What happened to the packets of one `xmit`/`xmit_burst` call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmitOutcome {
    /// Taken by the driver directly (bypass or `noqueue`).
    pub direct: u32,
    /// Held in the qdisc (or its requeue list) for a later run.
    pub queued: u32,
    /// Dropped and counted (qdisc full, or `noqueue` with the queue stopped).
    pub dropped: u32,
    /// Bytes of the dropped packets, so a sender can report what it
    /// delivered, not what it offered.
    pub dropped_bytes: u64,
    /// Of `dropped`, those refused because the link had no carrier
    /// (`noop_enqueue` under `dev_deactivate`), so a sender can name them.
    pub carrier_dropped: u32,
}

/// Per-queue counters (plain, owner-written; published to [`TxqShared`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TxqCounters {
    /// Packets handed to `xmit`/`xmit_burst`.
    pub offered: u64,
    /// Accepted by the driver.
    pub sent_packets: u64,
    pub sent_bytes: u64,
    /// Of `sent_packets`, those that took the bypass / noqueue path.
    pub direct_packets: u64,
    /// Dropped: the qdisc was full (`qdisc_drop`).
    pub qdisc_drops: u64,
    /// Dropped: `noqueue` and the queue stopped or the ring full (Linux's
    /// `tx_dropped` for "virtual device asks to queue packet").
    pub busy_drops: u64,
    /// Dropped: still queued when the queue was torn down.
    pub purged: u64,
    /// Driver refused packets put back at the head (`dev_requeue_skb`).
    pub requeues: u64,
    /// Times BQL stopped the queue / the ring filled / the queue was woken.
    pub stack_xoff: u64,
    pub drv_xoff: u64,
    pub wakes: u64,
    /// Qdisc runs cut short by the quota (Linux reschedules `net_tx_action`).
    pub quota_exhausted: u64,
    /// Completed by the device.
    pub completed_packets: u64,
    pub completed_bytes: u64,
    /// Held now (qdisc + requeue list).
    pub backlog_packets: u64,
    pub backlog_bytes: u64,
    /// High-water mark of BQL in-flight bytes above the limit, taken right
    /// after each burst is queued: BQL keeps it below one packet.
    pub bql_overshoot_max: u64,
    /// TX watchdog timeouts (Linux's per-queue `trans_timeout`).
    pub tx_timeouts: u64,
    /// Packets in flight at a timeout that the driver could not reset,
    /// completed as dropped by the netdev layer (they are also in
    /// `sent_packets`: the driver had taken them).
    pub timeout_drops: u64,
    /// Dropped: offered, or in the backlog, while the link had no carrier
    /// (policy `drop`).
    pub carrier_drops: u64,
    /// Of `carrier_drops`, the backlog purged when the carrier went
    /// (queued before, so no sender saw them refused).
    pub carrier_purged: u64,
    /// Carrier losses and returns seen (Linux's `carrier_changes`).
    pub carrier_changes: u64,
    /// Dropped: a TCP super-segment software GSO could not split
    /// (malformed, or no buffers).
    pub gso_drops: u64,
    /// Wire segments software GSO made (each also in `offered`).
    pub gso_segments: u64,
}

impl TxqCounters {
    /// `offered - (sent + every drop counter + backlog)`: always 0.
    pub fn unaccounted(&self) -> i64 {
        self.offered as i64
            - (self.sent_packets
                + self.qdisc_drops
                + self.busy_drops
                + self.purged
                + self.carrier_drops
                + self.gso_drops
                + self.backlog_packets) as i64
    }
    /// Sum of the drop counters.
    pub fn drops(&self) -> u64 {
        self.qdisc_drops + self.busy_drops + self.purged + self.carrier_drops + self.gso_drops
    }
}

/// XOFF state, for display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct XoffState {
    pub stack: bool,
    pub drv: bool,
    /// Stopped: no carrier.
    pub carrier: bool,
}

/// A full picture of one queue: `tc -s qdisc`, `byte_queue_limits`, counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TxqSnapshot {
    pub port: u16,
    pub queue: u16,
    pub qdisc: QdiscStats,
    pub bql: BqlView,
    pub xoff: XoffState,
    pub counters: TxqCounters,
}

impl std::fmt::Display for TxqSnapshot {
    /// One live-line fragment: `p0/q1 pfifo_fast sent 1234p drop 0 req 3
    /// backlog 12p bql 30280/29000 xoff:stack`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counters;
        write!(
            f,
            "p{}/q{} {} sent {}p drop {} req {} backlog {}p",
            self.port,
            self.queue,
            self.qdisc.kind,
            c.sent_packets,
            c.drops(),
            c.requeues,
            c.backlog_packets
        )?;
        if self.bql.enabled {
            write!(f, " bql {}/{}", self.bql.inflight, self.bql.limit)?;
        }
        match (self.xoff.stack, self.xoff.drv) {
            (false, false) => Ok(()),
            (true, false) => write!(f, " xoff:stack"),
            (false, true) => write!(f, " xoff:drv"),
            (true, true) => write!(f, " xoff:stack+drv"),
        }?;
        if self.xoff.carrier {
            write!(f, " nocarrier")?;
        }
        Ok(())
    }
}

const N_COUNTERS: usize = 24;

/// Counters and state published by the owning lcore once per poll, readable
/// from any thread (the live line, the JSON summary). Single writer: plain
/// stores, no read-modify-write.
#[derive(Debug)]
pub struct TxqShared {
    port: u16,
    queue: u16,
    kind: &'static str,
    limit: u64,
    counters: [StatCounter; N_COUNTERS],
    bql: [StatCounter; 6],
    state: AtomicU8,
}

impl TxqShared {
    /// The last published snapshot.
    pub fn snapshot(&self) -> TxqSnapshot {
        let g = |i: usize| self.counters[i].get();
        let c = TxqCounters {
            offered: g(0),
            sent_packets: g(1),
            sent_bytes: g(2),
            direct_packets: g(3),
            qdisc_drops: g(4),
            busy_drops: g(5),
            purged: g(6),
            requeues: g(7),
            stack_xoff: g(8),
            drv_xoff: g(9),
            wakes: g(10),
            quota_exhausted: g(11),
            completed_packets: g(12),
            completed_bytes: g(13),
            backlog_packets: g(14),
            backlog_bytes: g(15),
            bql_overshoot_max: g(16),
            tx_timeouts: g(17),
            timeout_drops: g(18),
            carrier_drops: g(19),
            carrier_changes: g(20),
            gso_drops: g(21),
            gso_segments: g(22),
            carrier_purged: g(23),
        };
        let b = |i: usize| self.bql[i].get();
        let st = self.state.load(Ordering::Relaxed);
        TxqSnapshot {
            port: self.port,
            queue: self.queue,
            qdisc: qdisc_stats(self.kind, self.limit, &c),
            bql: BqlView {
                enabled: b(0) != 0,
                limit: b(1) as u32,
                inflight: b(2) as u32,
                limit_min: b(3) as u32,
                limit_max: b(4) as u32,
                hold_time_ms: b(5),
            },
            xoff: XoffState {
                stack: st & STACK_XOFF != 0,
                drv: st & DRV_XOFF != 0,
                carrier: st & CARRIER_XOFF != 0,
            },
            counters: c,
        }
    }
}

fn qdisc_stats(kind: &'static str, limit: u64, c: &TxqCounters) -> QdiscStats {
    QdiscStats {
        kind,
        limit,
        sent_bytes: c.sent_bytes,
        sent_packets: c.sent_packets,
        dropped: c.drops(),
        overlimits: 0,
        requeues: c.requeues,
        backlog_bytes: c.backlog_bytes,
        backlog_packets: c.backlog_packets,
    }
}

/// One TX queue with its qdisc and BQL, owned by one lcore.
pub struct NetdevQueue {
    port: u16,
    queue: u16,
    port_name: String,
    txq: Box<dyn TxQueue>,
    qdisc: QdiscImpl,
    /// `q->gso_skb`: packets the driver refused, sent before the qdisc's.
    requeued: MbufFifo,
    dql: Dql,
    bql: bool,
    state: u8,
    tx_burst: usize,
    weight: usize,
    clean_budget: usize,
    /// Free ring slots needed to clear DRV_XOFF (the driver's wake threshold).
    wake_thresh: usize,
    tsc: Tsc,
    /// A burst reused for dequeues (boxed: moving it in and out is a pointer
    /// move, not a 2 KiB copy; allocated once).
    scratch: Option<Box<Burst>>,
    lens: [u32; BURST_MAX],
    c: TxqCounters,
    shared: Arc<TxqShared>,
    wd: watchdog::Watchdog,
    carrier_policy: CarrierPolicy,
    /// The driver queue's TX offloads ([`crate::mbuf::ol`]): without
    /// `TX_TSO`, super-segments are split here (`gso.rs`).
    offloads: u32,
}

impl std::fmt::Debug for NetdevQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetdevQueue")
            .field("port", &self.port_name)
            .field("queue", &self.queue)
            .field("qdisc", &self.qdisc.kind())
            .field("state", &self.state)
            .finish()
    }
}

impl NetdevQueue {
    /// Wraps driver queue `txq` (queue `txq.index()` of port number `port`,
    /// called `port_name` in messages) with the configured qdisc and BQL.
    pub fn new(
        port: u16,
        port_name: &str,
        txq: Box<dyn TxQueue>,
        conf: &TxqConfig,
        tsc: Tsc,
    ) -> Result<NetdevQueue, NetdevError> {
        let qdisc = QdiscImpl::from_config(&conf.qdisc).map_err(|source| NetdevError::Qdisc {
            port: port_name.to_string(),
            queue: txq.index(),
            source,
        })?;
        Self::with_qdisc(port, port_name, txq, conf, qdisc, tsc)
    }

    /// As [`NetdevQueue::new`] with a given qdisc (e.g. a custom
    /// [`super::Qdisc`] in [`QdiscImpl::Custom`]); `conf.qdisc` is ignored.
    pub fn with_qdisc(
        port: u16,
        port_name: &str,
        txq: Box<dyn TxQueue>,
        conf: &TxqConfig,
        qdisc: QdiscImpl,
        tsc: Tsc,
    ) -> Result<NetdevQueue, NetdevError> {
        let queue = txq.index();
        let cfg_err = |key: &'static str, value: usize, why: &str| NetdevError::Config {
            port: port_name.to_string(),
            queue,
            key,
            value: value.to_string(),
            why: why.to_string(),
        };
        if conf.tx_burst == 0 || conf.tx_burst > BURST_MAX {
            return Err(cfg_err("tx_burst", conf.tx_burst, "must be 1..=256"));
        }
        if conf.dev_tx_weight == 0 {
            return Err(cfg_err("dev_tx_weight", 0, "must be at least 1"));
        }
        if conf.clean_budget == 0 {
            return Err(cfg_err("clean_budget", 0, "must be at least 1"));
        }
        let hold = tsc.ns_to_cycles(conf.bql.hold_time_ms.saturating_mul(1_000_000));
        let mut dql = Dql::new(hold, tsc.now());
        dql.set_limits(conf.bql.limit_min, conf.bql.limit_max)
            .map_err(|source| NetdevError::Bql {
                port: port_name.to_string(),
                queue,
                source,
            })?;
        dql.reset(tsc.now());
        let ring = txq.ring_size().max(1);
        let offloads = txq.tx_offloads();
        let shared = Arc::new(TxqShared {
            port,
            queue,
            kind: qdisc.kind(),
            limit: qdisc.limit() as u64,
            counters: Default::default(),
            bql: Default::default(),
            state: AtomicU8::new(0),
        });
        let q = NetdevQueue {
            port,
            queue,
            port_name: port_name.to_string(),
            txq,
            qdisc,
            requeued: MbufFifo::with_capacity(2 * BURST_MAX),
            dql,
            bql: conf.bql.enabled,
            state: 0,
            tx_burst: conf.tx_burst,
            weight: conf.dev_tx_weight,
            clean_budget: conf.clean_budget,
            wake_thresh: conf.tx_burst.min(ring / 2).max(1),
            tsc,
            scratch: Some(Box::new(Burst::new())),
            lens: [0; BURST_MAX],
            c: TxqCounters::default(),
            shared,
            wd: watchdog::Watchdog::new(&tsc, conf.watchdog_timeout_ms),
            carrier_policy: conf.carrier,
            offloads,
        };
        q.publish();
        Ok(q)
    }

    /// The driver takes TCP super-segments (`NETIF_F_TSO`).
    #[inline]
    pub(super) fn tso(&self) -> bool {
        self.offloads & crate::mbuf::ol::TX_TSO != 0
    }

    /// The driver finishes TCP checksums (`NETIF_F_IP_CSUM`).
    #[inline]
    pub(super) fn tx_csum(&self) -> bool {
        self.offloads & crate::mbuf::ol::TX_TCP_CKSUM != 0
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn queue(&self) -> u16 {
        self.queue
    }
    pub fn port_name(&self) -> &str {
        &self.port_name
    }

    /// The driver queue (for its stats, ring size, events).
    pub fn driver(&mut self) -> &mut dyn TxQueue {
        self.txq.as_mut()
    }

    /// True when stopped (STACK_XOFF or DRV_XOFF: `netif_xmit_stopped`).
    #[inline(always)]
    pub fn is_stopped(&self) -> bool {
        self.state != 0
    }

    pub fn xoff(&self) -> XoffState {
        XoffState {
            stack: self.state & STACK_XOFF != 0,
            drv: self.state & DRV_XOFF != 0,
            carrier: self.state & CARRIER_XOFF != 0,
        }
    }

    /// Packets held in the qdisc and requeue list.
    #[inline(always)]
    pub fn backlog_packets(&self) -> usize {
        self.qdisc.qlen() + self.requeued.len()
    }

    /// How many packets of priority `prio` (`skb->priority`) `xmit_burst`
    /// can take now without dropping: for `noqueue` the ring space (0 while
    /// the queue is stopped); with a qdisc, the room in the qdisc for that
    /// priority (its pfifo_fast band) whatever the XOFF state — as in Linux,
    /// a sender enqueues into the qdisc while BQL or the driver has the queue
    /// stopped, and the qdisc's order decides what leaves first when it
    /// reopens. The generator sizes its bursts with this (back-pressure).
    #[inline]
    pub fn tx_room(&mut self, prio: u8) -> usize {
        if self.state & CARRIER_XOFF != 0 && self.carrier_policy == CarrierPolicy::Drop {
            // Taken and dropped (counted), as Linux's noop qdisc does.
            return self.tx_burst;
        }
        if self.qdisc.is_noqueue() {
            self.maybe_wake_drv();
            if self.is_stopped() {
                0
            } else {
                self.txq.free_slots()
            }
        } else {
            self.qdisc.room(prio)
        }
    }

    /// Plays the part of `dev_queue_xmit` for one packet.
    pub fn xmit(&mut self, m: Mbuf) -> XmitOutcome {
        let mut b = Burst::new();
        // A fresh burst always has room.
        let _ = b.push(m);
        self.xmit_burst(&mut b)
    }

    /// Plays the part of `__dev_xmit_skb` for a batch: takes every packet of
    /// `pkts`. With `noqueue` they go straight to the driver (what it cannot
    /// take, or BQL does not allow, is dropped and counted). Otherwise, when the qdisc is empty and the
    /// queue is running, the `TCQ_F_CAN_BYPASS` path hands packets directly to
    /// the driver (as many as BQL allows); the rest are enqueued (overflow
    /// dropped and counted) and the qdisc runs (`__qdisc_run`).
    pub fn xmit_burst(&mut self, pkts: &mut Burst) -> XmitOutcome {
        let n = pkts.len();
        let mut out = XmitOutcome::default();
        if n == 0 {
            return out;
        }
        if self.needs_gso(pkts) {
            return self.xmit_gso(pkts);
        }
        self.c.offered += n as u64;
        if self.state & CARRIER_XOFF != 0 && self.carrier_policy == CarrierPolicy::Drop {
            return self.carrier_drop(pkts);
        }

        if self.qdisc.is_noqueue() {
            self.maybe_wake_drv();
            loop {
                self.check_bql_stop();
                if pkts.is_empty() || self.is_stopped() {
                    break;
                }
                // With BQL on, as many as it allows (Linux's noqueue path
                // checks the queue before every packet); the rest is dropped.
                let k = self.measure(pkts, self.tx_burst, self.bulk_limit());
                let before = pkts.len();
                let sent = self.transmit_front(pkts, k);
                out.direct += sent as u32;
                self.c.direct_packets += sent as u64;
                if pkts.len() > before - k {
                    // Driver refused part of it: no queue to hold it.
                    break;
                }
            }
            let left = pkts.len();
            if left > 0 {
                self.c.busy_drops += left as u64;
                out.dropped += left as u32;
                out.dropped_bytes += pkts.iter().map(|m| m.pkt_len() as u64).sum::<u64>();
                pkts.clear();
            }
            return out;
        }

        if self.qdisc.can_bypass() && self.backlog_packets() == 0 {
            self.maybe_wake_drv();
            self.check_bql_stop();
            if !self.is_stopped() {
                let k = self.measure(pkts, self.tx_burst, self.bulk_limit());
                let sent = self.transmit_front(pkts, k);
                out.direct += sent as u32;
                self.c.direct_packets += sent as u64;
                // The refused part of the prefix was requeued by transmit_front.
                out.queued += (k - sent) as u32;
            }
        }

        let mut enq = 0usize;
        while let Some(m) = pkts.pop_front() {
            let len = m.pkt_len() as u64;
            match self.qdisc.enqueue(m) {
                Ok(()) => {
                    enq += 1;
                    self.c.backlog_bytes += len;
                }
                Err(m) => {
                    out.dropped_bytes += len;
                    drop(m);
                    self.c.qdisc_drops += 1;
                    out.dropped += 1;
                }
            }
        }
        self.c.backlog_packets += enq as u64;
        out.queued += enq as u32;
        if enq > 0 {
            self.run();
        }
        out
    }

    /// Plays the part of `__qdisc_run` (with `qdisc_restart` and
    /// `dequeue_skb`): while the queue is running and packets wait, dequeue a
    /// burst (requeued packets first; at most `tx_burst`, bulk-limited by BQL's
    /// available bytes like `try_bulk_dequeue_skb`) and transmit it; stop when
    /// the driver refuses, the queue stops, or `dev_tx_weight` packets were
    /// dequeued (the rest wait for the next poll, as Linux reschedules the
    /// qdisc). Returns packets the driver took.
    pub fn run(&mut self) -> usize {
        if self.qdisc.is_noqueue() {
            return 0;
        }
        let mut quota = self.weight as isize;
        let mut total = 0;
        while self.backlog_packets() > 0 {
            self.maybe_wake_drv();
            self.check_bql_stop();
            if self.is_stopped() {
                break;
            }
            let max = self.tx_burst.min(quota.max(1) as usize);
            let mut rem = self.bulk_limit();
            let mut k = 0;
            let mut burst = self.take_scratch();
            while k < max && (k == 0 || rem > 0) {
                let m = match self.requeued.pop_front() {
                    Some(m) => m,
                    None => match self.qdisc.dequeue() {
                        Some(m) => m,
                        None => break,
                    },
                };
                let len = m.pkt_len();
                let wire = crate::ethdev::offload::wire_len(&m);
                self.lens[k] = wire as u32;
                self.c.backlog_bytes -= len as u64;
                rem -= wire as i64;
                k += 1;
                // `burst` was empty and k <= 256: always room.
                let _ = burst.push(m);
            }
            if k == 0 {
                // A qdisc whose qlen says "non-empty" but yields nothing
                // (a custom qdisc's bug) must not spin here.
                self.scratch = Some(burst);
                break;
            }
            self.c.backlog_packets -= k as u64;
            let sent = self.transmit_front(&mut burst, k);
            self.scratch = Some(burst);
            total += sent;
            quota -= k as isize;
            if sent < k {
                break;
            }
            if quota <= 0 {
                if self.backlog_packets() > 0 {
                    self.c.quota_exhausted += 1;
                }
                break;
            }
        }
        total
    }

    /// Plays the part of the driver's TX clean followed by
    /// `netdev_tx_completed_queue`: reclaims up to `budget` completed packets,
    /// feeds the bytes to `dql_completed`, and wakes the queue when BQL or the
    /// ring has room again (checked after the DQL update, so a wake cannot be
    /// lost). Call [`NetdevQueue::run`] afterwards (or use [`NetdevQueue::poll`]).
    pub fn complete(&mut self, budget: usize) -> Completed {
        let mut done = self.txq.clean(budget);
        if self.wd.forgive.packets != 0 {
            done = self.absorb_late(done);
        }
        if done.packets == 0 && done.bytes == 0 {
            self.maybe_wake_drv();
            return done;
        }
        self.c.completed_packets += done.packets as u64;
        self.c.completed_bytes += done.bytes;
        if self.bql && done.bytes > 0 {
            let mut left = done.bytes;
            let now = self.tsc.now();
            while left > 0 {
                let chunk = left.min(DQL_MAX_LIMIT as u64) as u32;
                self.dql.completed(chunk, now);
                left -= chunk as u64;
            }
            if self.state & STACK_XOFF != 0 && self.dql.avail() >= 0 {
                self.state &= !STACK_XOFF;
                self.c.wakes += 1;
            }
        }
        self.maybe_wake_drv();
        done
    }

    /// One poll of this queue: clean (budgeted), wake, run the qdisc, publish.
    pub fn poll(&mut self) -> (Completed, usize) {
        let r = self.service();
        self.publish();
        r
    }

    /// [`NetdevQueue::poll`] without publishing (the runtime publishes
    /// periodically).
    #[inline]
    pub fn service(&mut self) -> (Completed, usize) {
        let done = self.complete(self.clean_budget);
        let sent = self.run();
        (done, sent)
    }

    /// Polls until the backlog is sent and the device completed everything
    /// in flight, or `timeout_ns` passes. True when fully drained.
    pub fn flush(&mut self, timeout_ns: u64) -> bool {
        let deadline = self.tsc.now() + self.tsc.ns_to_cycles(timeout_ns);
        loop {
            self.poll();
            if self.is_idle() {
                return true;
            }
            if self.tsc.now() > deadline {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Nothing queued and nothing in flight on the device: every packet the
    /// driver took has been reported complete (the [`TxQueue`] contract:
    /// each taken packet is reported by `clean` exactly once, sent or
    /// dropped), and BQL's in-flight bytes are 0. (Comparing free ring slots
    /// with the ring size is not enough: igb and ice keep one slot empty, so
    /// a drained ring never looks "all free".)
    pub fn is_idle(&self) -> bool {
        self.backlog_packets() == 0
            && self.c.completed_packets == self.c.sent_packets
            && (!self.bql || self.dql.inflight() == 0)
    }

    /// Drops everything still queued (qdisc reset at teardown), counting it in
    /// `purged`. Returns how many packets were dropped.
    pub fn purge(&mut self) -> usize {
        let mut n = 0;
        while let Some(m) = self.requeued.pop_front().or_else(|| self.qdisc.dequeue()) {
            drop(m);
            n += 1;
        }
        self.c.purged += n as u64;
        self.c.backlog_packets = 0;
        self.c.backlog_bytes = 0;
        self.publish();
        n
    }

    /// The `byte_queue_limits` view.
    pub fn bql(&self) -> BqlView {
        BqlView {
            enabled: self.bql,
            limit: self.dql.limit(),
            inflight: self.dql.inflight(),
            limit_min: self.dql.limit_min(),
            limit_max: self.dql.limit_max(),
            hold_time_ms: self.tsc.cycles_to_ns(self.dql.hold_time()) / 1_000_000,
        }
    }

    /// Sets BQL `limit_min`/`limit_max` (the sysfs writes).
    pub fn set_bql_limits(&mut self, min: u32, max: u32) -> Result<(), NetdevError> {
        self.dql
            .set_limits(min, max)
            .map_err(|source| NetdevError::Bql {
                port: self.port_name.clone(),
                queue: self.queue,
                source,
            })
    }

    /// Sets the BQL hold time.
    pub fn set_bql_hold_time_ms(&mut self, ms: u64) {
        self.dql
            .set_hold_time(self.tsc.ns_to_cycles(ms.saturating_mul(1_000_000)));
    }

    /// `tc -s qdisc` statistics.
    pub fn qdisc_stats(&self) -> QdiscStats {
        qdisc_stats(self.qdisc.kind(), self.qdisc.limit() as u64, &self.c)
    }

    pub fn counters(&self) -> TxqCounters {
        self.c
    }

    /// Everything about this queue, now.
    pub fn snapshot(&self) -> TxqSnapshot {
        TxqSnapshot {
            port: self.port,
            queue: self.queue,
            qdisc: self.qdisc_stats(),
            bql: self.bql(),
            xoff: self.xoff(),
            counters: self.c,
        }
    }

    /// The cross-thread view (updated by [`NetdevQueue::publish`]).
    pub fn shared(&self) -> Arc<TxqShared> {
        self.shared.clone()
    }

    /// Publishes counters and BQL state to [`TxqShared`] (plain stores).
    pub fn publish(&self) {
        let c = &self.c;
        let vals = [
            c.offered,
            c.sent_packets,
            c.sent_bytes,
            c.direct_packets,
            c.qdisc_drops,
            c.busy_drops,
            c.purged,
            c.requeues,
            c.stack_xoff,
            c.drv_xoff,
            c.wakes,
            c.quota_exhausted,
            c.completed_packets,
            c.completed_bytes,
            c.backlog_packets,
            c.backlog_bytes,
            c.bql_overshoot_max,
            c.tx_timeouts,
            c.timeout_drops,
            c.carrier_drops,
            c.carrier_changes,
            c.gso_drops,
            c.gso_segments,
            c.carrier_purged,
        ];
        for (s, v) in self.shared.counters.iter().zip(vals) {
            s.set(v);
        }
        let b = self.bql();
        let bv = [
            b.enabled as u64,
            b.limit as u64,
            b.inflight as u64,
            b.limit_min as u64,
            b.limit_max as u64,
            b.hold_time_ms,
        ];
        for (s, v) in self.shared.bql.iter().zip(bv) {
            s.set(v);
        }
        self.shared.state.store(self.state, Ordering::Relaxed);
    }

    // ---- internals ----

    #[inline(always)]
    fn take_scratch(&mut self) -> Box<Burst> {
        // Always present between calls; the fallback only guards against a
        // logic error (it would allocate once).
        self.scratch
            .take()
            .unwrap_or_else(|| Box::new(Burst::new()))
    }

    /// Bytes BQL lets us put in flight now (unbounded when BQL is off).
    #[inline(always)]
    fn bulk_limit(&self) -> i64 {
        if self.bql {
            self.dql.avail()
        } else {
            i64::MAX
        }
    }

    /// BQL stop check before sending: a limit shrunk by a completion can leave
    /// the queue over its limit without XOFF set; stop it now so in-flight
    /// bytes never exceed limit + one packet.
    #[inline(always)]
    fn check_bql_stop(&mut self) {
        if self.bql && self.state & STACK_XOFF == 0 && self.dql.avail() < 0 {
            self.state |= STACK_XOFF;
            self.c.stack_xoff += 1;
        }
    }

    /// Clears DRV_XOFF when the ring has room again (`netif_wake_subqueue`
    /// in the driver's clean, with its wake threshold).
    #[inline(always)]
    fn maybe_wake_drv(&mut self) {
        if self.state & DRV_XOFF != 0 && self.txq.free_slots() >= self.wake_thresh {
            self.state &= !DRV_XOFF;
            self.c.wakes += 1;
        }
    }

    /// How many packets from the front of `pkts` go in one driver burst: at
    /// most `max`, the first always, further ones while `limit` bytes remain
    /// (`try_bulk_dequeue_skb`). Records their lengths in `self.lens`.
    #[inline(always)]
    fn measure(&mut self, pkts: &Burst, max: usize, limit: i64) -> usize {
        let mut rem = limit;
        let mut k = 0;
        for m in pkts.iter().take(max) {
            if k > 0 && rem <= 0 {
                break;
            }
            // qdisc_pkt_len: a super-segment counts its wire bytes.
            let len = crate::ethdev::offload::wire_len(m);
            self.lens[k] = len as u32;
            rem -= len as i64;
            k += 1;
        }
        k
    }

    /// Plays the part of `sch_direct_xmit` → `dev_hard_start_xmit` for the
    /// first `k` packets of `pkts` (their lengths in `self.lens`): one
    /// `tx_burst` (one doorbell: `xmit_more` on all but the last), `dql_queued`
    /// per packet taken, the STACK_XOFF decision once at the end
    /// (`__netdev_tx_sent_queue`), and `dev_requeue_skb` for the part of the
    /// `k` the driver refused (back at the head, in order). Returns packets
    /// taken.
    #[inline]
    fn transmit_front(&mut self, pkts: &mut Burst, k: usize) -> usize {
        // skb_tx_timestamp, for the packets that asked (SO_TIMESTAMPING
        // TX_SOFTWARE): one flag test per packet, a clock read only then.
        let stamp = pkts
            .iter()
            .take(k)
            .any(|m| m.ol_flags() & ol::TX_SW_TSTAMP != 0);
        if stamp {
            let now = self.tsc.now_ns();
            for m in pkts.as_mut_slice().iter_mut().take(k) {
                m.sw_tstamp(now);
            }
        }
        let sent = if k == pkts.len() {
            self.txq.tx_burst(pkts)
        } else {
            let mut head = self.take_scratch();
            for _ in 0..k {
                if let Some(m) = pkts.pop_front() {
                    let _ = head.push(m);
                }
            }
            let s = self.txq.tx_burst(&mut head);
            // Refused ones go back in front of `pkts` (caller requeues/drops).
            while let Some(m) = head.pop_back() {
                if let Err(m) = pkts.push_front(m) {
                    drop(m);
                    self.c.busy_drops += 1;
                }
            }
            self.scratch = Some(head);
            s
        };
        if stamp && sent < k {
            // Refused (at the front again): they are stamped when they go.
            for m in pkts.as_mut_slice().iter_mut().take(k - sent) {
                m.sw_tstamp_undo();
            }
        }
        let mut bytes = 0u64;
        if self.bql {
            for &l in &self.lens[..sent] {
                self.dql.queued(l);
                bytes += l as u64;
            }
            let over = self.dql.inflight() as i64 - self.dql.limit() as i64;
            if over > self.c.bql_overshoot_max as i64 {
                self.c.bql_overshoot_max = over as u64;
            }
        } else {
            for &l in &self.lens[..sent] {
                bytes += l as u64;
            }
        }
        self.c.sent_packets += sent as u64;
        self.c.sent_bytes += bytes;
        if sent < k {
            // The driver refused part of the burst (NETDEV_TX_BUSY).
            self.state |= DRV_XOFF;
            self.c.drv_xoff += 1;
            if !self.qdisc.is_noqueue() {
                self.requeue_front(pkts, k - sent);
            }
        } else if self.txq.free_slots() == 0 {
            // The driver's maybe_stop_tx: no room for another packet.
            self.state |= DRV_XOFF;
            self.c.drv_xoff += 1;
        }
        // netdev_tx_sent_queue at the end of the burst.
        if self.bql && self.dql.avail() < 0 && self.state & STACK_XOFF == 0 {
            self.state |= STACK_XOFF;
            self.c.stack_xoff += 1;
        }
        sent
    }

    /// Plays the part of `dev_requeue_skb`: moves the first `n` packets of
    /// `pkts` to the head of the requeue list, keeping their order.
    fn requeue_front(&mut self, pkts: &mut Burst, n: usize) {
        // Take the n from the front of pkts, push them front-first in reverse.
        let mut tmp = Burst::new();
        for _ in 0..n {
            if let Some(m) = pkts.pop_front() {
                let _ = tmp.push(m);
            }
        }
        while let Some(m) = tmp.pop_back() {
            let len = m.pkt_len() as u64;
            match self.requeued.push_front(m) {
                Ok(()) => {
                    self.c.requeues += 1;
                    self.c.backlog_packets += 1;
                    self.c.backlog_bytes += len;
                }
                Err(m) => {
                    // Cannot happen (the list holds two bursts); never lose it silently.
                    drop(m);
                    self.c.busy_drops += 1;
                }
            }
        }
    }
}

impl Drop for NetdevQueue {
    fn drop(&mut self) {
        if self.backlog_packets() > 0 {
            self.purge();
        }
    }
}
