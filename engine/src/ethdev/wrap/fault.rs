//! `fault:drop=R,reorder=R,corrupt=R,busy=R,refuse=R,delay_us=N,stall_ms=N,
//! flap_ms=N,dup=R,fcs=R,seed=S+INNER`: a seeded fault injector around any
//! port (smoltcp's `phy::FaultInjector`; Linux's `netem` qdisc and
//! `fail_function` in one).
//!
//! Each fault fires per packet with its rate (0..=1) from one xorshift
//! stream per queue and direction (seeded by `seed` and the queue index), so
//! a run is reproducible, and each is counted in xstats (`fault_drop`, …).
//!
//! On the inner port's TX:
//!
//! * `drop=R` — the packet is taken, freed and counted once in the queue's
//!   `drops` (the [`TxQueue`] contract: reported by the next `clean`);
//! * `reorder=R` — swapped with the packet after it;
//! * `corrupt=R` — one bit of its last byte flipped (the frame still leaves:
//!   what a receiver's checksum check then counts);
//! * `busy=R` — per burst: the queue refuses the whole burst, as a full
//!   ring does (`NETDEV_TX_BUSY`: the netdev layer requeues and stops the
//!   queue until room returns);
//! * `refuse=R` — per packet: the queue stops taking at this packet and
//!   hands it and the rest of the burst back (a driver that could not map an
//!   mbuf — `igb_tx_map`'s `dma_error` path — and returns `NETDEV_TX_BUSY`
//!   mid-batch); the netdev layer requeues them in order;
//! * `delay_us=N` (rate `delay=R`, default 1) — held N µs before the inner
//!   queue sees it (order kept);
//! * `stall_ms=N` (rate `stall=R`, default 0.001) — the packet starts a
//!   completion stall: for N ms the inner queue's completions are not
//!   reported, as when a NIC stops writing back descriptors. The TX watchdog
//!   (`netdev::NetdevQueue::watchdog`) resets such a queue;
//! * `flap_ms=N` (every `flap_every_ms=M`, default 10 × N) — the link loses
//!   carrier for N ms out of every M: the port's [`Port::link`] and each
//!   queue's [`TxQueue::carrier`] report it down, the netdev layer stops the
//!   queue (`netif_carrier_off`), and what the queue took meanwhile waits on
//!   the ring, as on a NIC whose MAC has no link. Counted in `fault_flap`
//!   (carrier losses so far).
//!
//! On the inner port's RX:
//!
//! * `dup=R` — the frame is delivered twice (a copy from the RX pool, as a
//!   duplicating link or a flooding switch would); a copy the pool cannot
//!   supply is not made and is counted in `fault_dup_nomem`. Duplicates are
//!   made at the receiver so the sender's conservation stays exact: every
//!   packet offered is still sent once or dropped once;
//! * `fcs=R` — the frame arrives with a bad FCS: the receiving MAC discards
//!   it and counts it (the RX queue's `errors`, `rx_crc_errors` — igb's
//!   `CRCERRS`, ice's `GLPRT_CRCERRS`), nothing is delivered.
//!
//! With every rate 0 the layer forwards each call straight to the inner
//! queue (one indirect call and a branch per burst).

use super::*;
use crate::eal::tsc::Tsc;
use crate::mbuf::{Burst, Mbuf, Mempool, BURST_MAX};
use std::collections::VecDeque;
use std::sync::Arc;

const SYNTAX: &str = "fault:drop=R,reorder=R,corrupt=R,busy=R,refuse=R,delay_us=N[,delay=R],stall_ms=N[,stall=R],flap_ms=N[,flap_every_ms=M],dup=R,fcs=R,seed=S+INNER";

pub(crate) fn wrapper() -> WrapperInfo {
    WrapperInfo {
        name: "fault",
        syntax: "fault:K=V,...+INNER",
        help: "seeded faults, each counted in xstats. TX: drop=R reorder=R corrupt=R busy=R (a whole burst refused) refuse=R (a packet and the rest of its burst handed back) (rates 0..1), delay_us=N [delay=R], stall_ms=N [stall=R, default 0.001] (completions withheld; the TX watchdog resets the queue), flap_ms=N [flap_every_ms=M, default 10N] (carrier lost N ms of every M; the netdev layer stops the queue). RX: dup=R (delivered twice), fcs=R (bad FCS: discarded, counted in rx_crc_errors). seed=S",
        check: |spec| FaultConfig::parse(spec).map(|_| ()),
        wrap: |spec, inner, full| {
            let cfg = FaultConfig::parse(spec)?;
            let tsc = Tsc::global();
            let flap = Arc::new(Flap {
                tsc,
                epoch: tsc.now(),
                down: tsc.ns_to_cycles(cfg.flap_ms.saturating_mul(1_000_000)),
                period: tsc.ns_to_cycles(cfg.flap_every_ms.saturating_mul(1_000_000)),
            });
            Ok(Wrapped::boxed(
                full,
                inner,
                Fault {
                    cfg,
                    queues: Vec::new(),
                    rx: Vec::new(),
                    flap,
                },
            ))
        },
    }
}

/// The faults to inject, as parsed from the spec.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultConfig {
    pub drop: f64,
    pub reorder: f64,
    pub corrupt: f64,
    pub busy: f64,
    pub delay: f64,
    pub delay_us: u64,
    pub stall: f64,
    pub stall_ms: u64,
    pub refuse: f64,
    /// Carrier lost for this long (ms) every `flap_every_ms`; 0 = never.
    pub flap_ms: u64,
    pub flap_every_ms: u64,
    /// RX: frames delivered twice.
    pub dup: f64,
    /// RX: frames arriving with a bad FCS (discarded, counted).
    pub fcs: f64,
    pub seed: u64,
}

impl FaultConfig {
    /// Parses `fault:k=v,k=v` (the part before `+`).
    pub fn parse(spec: &DevSpec) -> Result<FaultConfig, EthdevError> {
        let bad = |why: String| EthdevError::BadSpec {
            spec: spec.raw.clone(),
            why,
        };
        spec.check_params(&[])?;
        let mut c = FaultConfig {
            seed: 1,
            ..Default::default()
        };
        let (mut delay, mut stall, mut every) = (None, None, None);
        for kv in spec.arg.as_deref().unwrap_or("").split(',') {
            if kv.is_empty() {
                continue;
            }
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("'{kv}' is not key=value; syntax: {SYNTAX}")))?;
            let rate = || -> Result<f64, EthdevError> {
                match v.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(bad(format!(
                        "{k}={v}: a rate is a probability in 0..=1 (e.g. {k}=0.01)"
                    ))),
                }
            };
            let num = || -> Result<u64, EthdevError> {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{k}={v}: expected a whole number")))
            };
            match k {
                "drop" => c.drop = rate()?,
                "reorder" => c.reorder = rate()?,
                "corrupt" => c.corrupt = rate()?,
                "busy" => c.busy = rate()?,
                "delay" => delay = Some(rate()?),
                "delay_us" => c.delay_us = num()?,
                "stall" => stall = Some(rate()?),
                "stall_ms" => c.stall_ms = num()?,
                "refuse" => c.refuse = rate()?,
                "flap_ms" => c.flap_ms = num()?,
                "flap_every_ms" => every = Some(num()?),
                "dup" => c.dup = rate()?,
                "fcs" => c.fcs = rate()?,
                "seed" => c.seed = num()?,
                _ => {
                    return Err(bad(format!(
                    "unknown fault '{k}'; known: drop, reorder, corrupt, busy, refuse, delay_us, delay, stall_ms, stall, flap_ms, flap_every_ms, dup, fcs, seed ({SYNTAX})"
                )))
                }
            }
        }
        if delay.is_some() && c.delay_us == 0 {
            return Err(bad("delay=R needs delay_us=N (how long)".into()));
        }
        if stall.is_some() && c.stall_ms == 0 {
            return Err(bad("stall=R needs stall_ms=N (how long)".into()));
        }
        if every.is_some() && c.flap_ms == 0 {
            return Err(bad(
                "flap_every_ms=M needs flap_ms=N (how long the carrier is lost)".into(),
            ));
        }
        if c.flap_ms > 0 {
            c.flap_every_ms = every.unwrap_or(c.flap_ms.saturating_mul(10));
            if c.flap_every_ms <= c.flap_ms {
                return Err(bad(format!(
                    "flap_every_ms={} must be longer than flap_ms={} (the carrier must come back)",
                    c.flap_every_ms, c.flap_ms
                )));
            }
        }
        c.delay = if c.delay_us > 0 {
            delay.unwrap_or(1.0)
        } else {
            0.0
        };
        c.stall = if c.stall_ms > 0 {
            stall.unwrap_or(0.001)
        } else {
            0.0
        };
        Ok(c)
    }

    /// True when some TX fault can fire.
    pub fn active(&self) -> bool {
        self.drop > 0.0
            || self.reorder > 0.0
            || self.corrupt > 0.0
            || self.busy > 0.0
            || self.refuse > 0.0
            || self.delay > 0.0
            || self.stall > 0.0
            || self.flap_ms > 0
    }

    /// True when some RX fault can fire.
    pub fn rx_active(&self) -> bool {
        self.dup > 0.0 || self.fcs > 0.0
    }
}

/// One queue's fault counters.
#[derive(Debug, Default)]
struct FaultStats {
    drop: StatCounter,
    reorder: StatCounter,
    corrupt: StatCounter,
    busy: StatCounter,
    delay: StatCounter,
    stall: StatCounter,
    reset: StatCounter,
    reset_drop: StatCounter,
    refuse: StatCounter,
}

/// One RX queue's fault counters.
#[derive(Debug, Default)]
struct FaultRxStats {
    dup: StatCounter,
    dup_nomem: StatCounter,
    fcs: StatCounter,
}

/// The link-flap schedule, shared by the port and its queues: carrier is
/// down during the last `down` cycles of every `period` since `epoch`.
#[derive(Debug)]
struct Flap {
    tsc: Tsc,
    epoch: u64,
    down: u64,
    period: u64,
}

impl Flap {
    /// Carrier at TSC time `now`.
    #[inline]
    fn carrier(&self, now: u64) -> bool {
        if self.down == 0 || self.period == 0 {
            return true;
        }
        now.wrapping_sub(self.epoch) % self.period < self.period - self.down
    }
    /// Carrier losses since the epoch (each down interval begun).
    fn losses(&self) -> u64 {
        if self.down == 0 || self.period == 0 {
            return 0;
        }
        (self.tsc.now().wrapping_sub(self.epoch) + self.down) / self.period
    }
}

struct Fault {
    cfg: FaultConfig,
    queues: Vec<Arc<FaultStats>>,
    rx: Vec<Arc<FaultRxStats>>,
    flap: Arc<Flap>,
}

impl Layer for Fault {
    fn wrap_tx(&mut self, _port: &str, inner: Box<dyn TxQueue>) -> Box<dyn TxQueue> {
        let f = Arc::new(FaultStats::default());
        self.queues.push(f.clone());
        Box::new(FaultTx::new(self.cfg, inner, f, self.flap.clone()))
    }
    fn wrap_rx(&mut self, _port: &str, inner: Box<dyn RxQueue>) -> Box<dyn RxQueue> {
        if !self.cfg.rx_active() {
            return Box::new(PassRx(inner));
        }
        let f = Arc::new(FaultRxStats::default());
        self.rx.push(f.clone());
        Box::new(FaultRx::new(self.cfg, inner, f))
    }
    fn link(&self, inner: LinkStatus) -> LinkStatus {
        if inner.up && !self.flap.carrier(self.flap.tsc.now()) {
            return LinkStatus {
                up: false,
                speed_mbps: 0,
                ..inner
            };
        }
        inner
    }
    fn xstats(&self, out: &mut Vec<(String, u64)>) {
        let sum = |f: fn(&FaultStats) -> &StatCounter| {
            self.queues.iter().map(|q| f(q).get()).sum::<u64>()
        };
        out.push(("fault_drop".into(), sum(|q| &q.drop)));
        out.push(("fault_reorder".into(), sum(|q| &q.reorder)));
        out.push(("fault_corrupt".into(), sum(|q| &q.corrupt)));
        out.push(("fault_busy".into(), sum(|q| &q.busy)));
        out.push(("fault_delay".into(), sum(|q| &q.delay)));
        out.push(("fault_stall".into(), sum(|q| &q.stall)));
        out.push(("fault_reset".into(), sum(|q| &q.reset)));
        out.push(("fault_reset_drop".into(), sum(|q| &q.reset_drop)));
        out.push(("fault_refuse".into(), sum(|q| &q.refuse)));
        out.push(("fault_flap".into(), self.flap.losses()));
        let rsum =
            |f: fn(&FaultRxStats) -> &StatCounter| self.rx.iter().map(|q| f(q).get()).sum::<u64>();
        out.push(("fault_dup".into(), rsum(|q| &q.dup)));
        out.push(("fault_dup_nomem".into(), rsum(|q| &q.dup_nomem)));
        out.push(("fault_fcs".into(), rsum(|q| &q.fcs)));
        out.push(("rx_crc_errors".into(), rsum(|q| &q.fcs)));
    }
}

/// xorshift64* — the per-queue fault schedule.
#[derive(Debug, Clone, Copy)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, queue: u16) -> Rng {
        Rng::stream(seed, u64::from(queue))
    }
    /// splitmix64 of the seed and a stream id, so queues (and directions)
    /// draw different streams.
    fn stream(seed: u64, id: u64) -> Rng {
        let mut z = seed ^ (id << 32) ^ 0x9e37_79b9_7f4a_7c15;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    #[inline(always)]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A rate as a threshold on a 64-bit draw (`u64::MAX` = always).
fn threshold(r: f64) -> u64 {
    if r >= 1.0 {
        u64::MAX
    } else {
        (r * u64::MAX as f64) as u64
    }
}

struct FaultTx {
    inner: Box<dyn TxQueue>,
    /// No fault can fire: every call goes straight through.
    pass: bool,
    drop: u64,
    reorder: u64,
    corrupt: u64,
    busy: u64,
    refuse: u64,
    delay: u64,
    stall: u64,
    flap: Arc<Flap>,
    /// A flap is configured (carrier checked per burst).
    flaps: bool,
    delay_cycles: u64,
    stall_cycles: u64,
    rng: Rng,
    tsc: Tsc,
    /// Taken, not yet handed to the inner queue: (packet, due time).
    /// Allocated once with room for the ring and one burst.
    held: VecDeque<(Mbuf, u64)>,
    cap: usize,
    /// Handed to the inner queue and not yet reported by its `clean`.
    inner_out: usize,
    /// Completions are withheld until this TSC time.
    stall_until: u64,
    /// Dropped here, reported by the next `clean`.
    pending: Completed,
    stats: Arc<QueueStats>,
    f: Arc<FaultStats>,
}

impl FaultTx {
    fn new(
        cfg: FaultConfig,
        inner: Box<dyn TxQueue>,
        f: Arc<FaultStats>,
        flap: Arc<Flap>,
    ) -> FaultTx {
        let tsc = Tsc::global();
        let cap = inner.ring_size().max(1);
        FaultTx {
            pass: !cfg.active(),
            drop: threshold(cfg.drop),
            reorder: threshold(cfg.reorder),
            corrupt: threshold(cfg.corrupt),
            busy: threshold(cfg.busy),
            refuse: threshold(cfg.refuse),
            flaps: cfg.flap_ms > 0,
            flap,
            delay: threshold(cfg.delay),
            stall: threshold(cfg.stall),
            delay_cycles: tsc.ns_to_cycles(cfg.delay_us.saturating_mul(1000)),
            stall_cycles: tsc.ns_to_cycles(cfg.stall_ms.saturating_mul(1_000_000)),
            rng: Rng::new(cfg.seed, inner.index()),
            tsc,
            held: if cfg.active() {
                VecDeque::with_capacity(cap + BURST_MAX)
            } else {
                VecDeque::new()
            },
            cap,
            inner_out: 0,
            stall_until: 0,
            pending: Completed::default(),
            stats: inner.stats(),
            f,
            inner,
        }
    }

    /// Ring slots left: the ring holds what is held here and what the inner
    /// queue has not reported complete.
    fn room(&self) -> usize {
        self.cap.saturating_sub(self.held.len() + self.inner_out)
    }

    #[inline(always)]
    fn hit(&mut self, thr: u64) -> bool {
        thr != 0 && (thr == u64::MAX || self.rng.next() < thr)
    }

    /// A packet dropped by the fault layer: freed, counted once in the
    /// queue's drops, reported by the next `clean`.
    fn drop_packet(&mut self, m: Mbuf) {
        self.pending.packets += 1;
        self.pending.bytes += m.pkt_len() as u64;
        self.stats.drops.add(1);
    }

    /// The fault path of `tx_burst`: takes what the hold queue has room for,
    /// applies the faults, then hands what is due to the inner queue.
    fn tx_burst_faulty(&mut self, pkts: &mut Burst) -> usize {
        let now = self.tsc.now();
        if !pkts.is_empty() && self.hit(self.busy) {
            self.f.busy.add(1);
            self.pump(now);
            return 0;
        }
        let k = pkts.len().min(self.room());
        let first = self.held.len();
        let mut took = 0;
        for _ in 0..k {
            if self.hit(self.refuse) {
                // Handed back with the rest of the burst, in order.
                self.f.refuse.add(1);
                break;
            }
            let Some(mut m) = pkts.pop_front() else { break };
            took += 1;
            if self.hit(self.drop) {
                self.f.drop.add(1);
                self.drop_packet(m);
                continue;
            }
            // A shared buffer (an indirect mbuf, or one a clone reads) is
            // read-only: left as it is.
            if self.hit(self.corrupt) && !m.is_shared() {
                if let Some(b) = m.data_mut().last_mut() {
                    *b ^= 0x01;
                    self.f.corrupt.add(1);
                }
            }
            if now >= self.stall_until && self.hit(self.stall) {
                self.stall_until = now + self.stall_cycles;
                self.f.stall.add(1);
            }
            let due = if self.hit(self.delay) {
                self.f.delay.add(1);
                now + self.delay_cycles
            } else {
                now
            };
            // At most `cap` held and `cap + BURST_MAX` reserved: no reallocation.
            self.held.push_back((m, due));
        }
        self.reorder_from(first);
        self.pump(now);
        took
    }

    /// Swaps newly held neighbours at the reorder rate (due times stay in
    /// place, so a delay never runs backwards).
    fn reorder_from(&mut self, first: usize) {
        if self.reorder == 0 {
            return;
        }
        let mut i = first;
        while i + 1 < self.held.len() {
            if self.hit(self.reorder) {
                self.held.swap(i, i + 1);
                let a = self.held[i].1;
                self.held[i].1 = self.held[i + 1].1;
                self.held[i + 1].1 = a;
                self.f.reorder.add(1);
                i += 2;
            } else {
                i += 1;
            }
        }
    }

    /// Hands held packets that are due to the inner queue, no more than its
    /// ring holds while completions are outstanding (a stalled ring fills).
    fn pump(&mut self, now: u64) {
        if self.flaps && !self.flap.carrier(now) {
            // No link: the MAC sends nothing; the ring holds what it took.
            return;
        }
        loop {
            let room = self.cap.saturating_sub(self.inner_out).min(BURST_MAX);
            let mut b = Burst::new();
            while b.len() < room {
                match self.held.front() {
                    Some((_, due)) if *due <= now => {
                        if let Some((m, _)) = self.held.pop_front() {
                            let _ = b.push(m);
                        }
                    }
                    _ => break,
                }
            }
            if b.is_empty() {
                return;
            }
            let offered = b.len();
            let n = self.inner.tx_burst(&mut b);
            self.inner_out += n;
            while let Some(m) = b.pop_back() {
                self.held.push_front((m, now));
            }
            if n < offered {
                return;
            }
        }
    }
}

impl TxQueue for FaultTx {
    fn index(&self) -> u16 {
        self.inner.index()
    }
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        if self.pass {
            return self.inner.tx_burst(pkts);
        }
        self.tx_burst_faulty(pkts)
    }
    /// The inner queue's completions — withheld while a stall lasts — plus
    /// the packets dropped here.
    #[inline]
    fn clean(&mut self, budget: usize) -> Completed {
        if self.pass {
            return self.inner.clean(budget);
        }
        let now = self.tsc.now();
        let mut c = std::mem::take(&mut self.pending);
        if now >= self.stall_until {
            let d = self.inner.clean(budget);
            self.inner_out = self.inner_out.saturating_sub(d.packets as usize);
            c.packets += d.packets;
            c.bytes += d.bytes;
        }
        self.pump(now);
        c
    }
    fn free_slots(&self) -> usize {
        if self.pass {
            self.inner.free_slots()
        } else {
            self.room()
        }
    }
    fn ring_size(&self) -> usize {
        self.inner.ring_size()
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
    fn poll_event(&mut self) -> Option<PortEvent> {
        self.inner.poll_event()
    }
    fn carrier(&self) -> bool {
        (!self.flaps || self.flap.carrier(self.tsc.now())) && self.inner.carrier()
    }
    /// Ends the stall (the device was reset), drops what is still held here
    /// (it never reached the device), and resets the inner queue — or, when
    /// it cannot reset, collects the completions the stall withheld.
    fn reset(&mut self) -> Option<Completed> {
        if self.pass {
            return self.inner.reset();
        }
        self.stall_until = 0;
        self.f.reset.add(1);
        let mut c = std::mem::take(&mut self.pending);
        while let Some((m, _)) = self.held.pop_front() {
            self.f.reset_drop.add(1);
            c.packets += 1;
            c.bytes += m.pkt_len() as u64;
            self.stats.drops.add(1);
        }
        let d = match self.inner.reset() {
            Some(d) => d,
            None => self.inner.clean(usize::MAX),
        };
        self.inner_out = self.inner_out.saturating_sub(d.packets as usize);
        c.packets += d.packets;
        c.bytes += d.bytes;
        Some(c)
    }
}

struct PassRx(Box<dyn RxQueue>);

impl RxQueue for PassRx {
    fn index(&self) -> u16 {
        self.0.index()
    }
    #[inline]
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        self.0.rx_burst(pool, out, max)
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.0.stats()
    }
    fn stop(&mut self) {
        self.0.stop()
    }
}

/// The RX half: duplicates and bad-FCS frames on what the inner queue
/// received.
struct FaultRx {
    inner: Box<dyn RxQueue>,
    dup: u64,
    fcs: u64,
    rng: Rng,
    /// The inner queue's counters: a discarded frame moves from its
    /// `packets`/`bytes` to its `errors`; a duplicate adds to them.
    stats: Arc<QueueStats>,
    f: Arc<FaultRxStats>,
    /// Frames of one burst before the faults (allocated once; boxed so
    /// taking it out and back is a pointer move).
    scratch: Option<Box<Burst>>,
}

impl FaultRx {
    fn new(cfg: FaultConfig, inner: Box<dyn RxQueue>, f: Arc<FaultRxStats>) -> FaultRx {
        FaultRx {
            dup: threshold(cfg.dup),
            fcs: threshold(cfg.fcs),
            rng: Rng::stream(cfg.seed, 0x8000 | u64::from(inner.index())),
            stats: inner.stats(),
            f,
            scratch: Some(Box::new(Burst::new())),
            inner,
        }
    }

    #[inline(always)]
    fn hit(&mut self, thr: u64) -> bool {
        thr != 0 && (thr == u64::MAX || self.rng.next() < thr)
    }

    /// A copy of `m` (every segment's bytes and the receive metadata) from
    /// `pool`, or `None` when the pool is dry or the frame does not fit one
    /// buffer.
    fn copy(pool: &mut Mempool, m: &Mbuf) -> Option<Mbuf> {
        let mut c = pool.alloc()?;
        if c.tailroom() < m.pkt_len() {
            return None;
        }
        for seg in m.segments() {
            c.extend_from_slice(seg.data).ok()?;
        }
        c.set_ol_flags(m.ol_flags());
        c.set_vlan_tci(m.vlan_tci());
        c.set_hash(m.hash());
        let (p, q) = m.rx_port_queue();
        c.set_rx_port_queue(p, q);
        Some(c)
    }
}

impl RxQueue for FaultRx {
    fn index(&self) -> u16 {
        self.inner.index()
    }
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        // Leave room for the duplicates: at most twice what arrives (and
        // nothing when the caller asks for nothing).
        let want = if max == 0 {
            0
        } else {
            max.min((out.room() / 2).max(1)).min(out.room())
        };
        let mut got = self.scratch.take().unwrap_or_default();
        got.clear();
        let n = self.inner.rx_burst(pool, &mut got, want);
        let mut delivered = 0;
        let (mut lost, mut lost_bytes, mut dups, mut dup_bytes) = (0u64, 0u64, 0u64, 0u64);
        for _ in 0..n {
            let Some(m) = got.pop_front() else { break };
            if self.hit(self.fcs) {
                lost += 1;
                lost_bytes += m.pkt_len() as u64;
                continue;
            }
            let dup = if self.hit(self.dup) {
                match Self::copy(pool, &m) {
                    Some(c) => Some(c),
                    None => {
                        self.f.dup_nomem.add(1);
                        None
                    }
                }
            } else {
                None
            };
            if out.push(m).is_ok() {
                delivered += 1;
            }
            if let Some(c) = dup {
                let len = c.pkt_len() as u64;
                if out.push(c).is_ok() {
                    dups += 1;
                    dup_bytes += len;
                    delivered += 1;
                } else {
                    // No room left in the caller's burst: not made.
                    self.f.dup_nomem.add(1);
                }
            }
        }
        // Whatever `out` had no room for (nothing, by `want`) is freed.
        got.clear();
        self.scratch = Some(got);
        if lost > 0 {
            self.f.fcs.add(lost);
            self.stats.packets.sub(lost);
            self.stats.bytes.sub(lost_bytes);
            self.stats.errors.add(lost);
        }
        if dups > 0 {
            self.f.dup.add(dups);
            self.stats.packets.add(dups);
            self.stats.bytes.add(dup_bytes);
        }
        delivered
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.inner.stats()
    }
    fn stop(&mut self) {
        self.inner.stop()
    }
}
