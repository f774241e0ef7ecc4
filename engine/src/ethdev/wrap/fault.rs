//! `fault:drop=R,reorder=R,corrupt=R,delay_us=N,stall_ms=N,seed=S+INNER`: a
//! seeded fault injector in front of any port's TX queues (smoltcp's
//! `phy::FaultInjector`; Linux's `netem` qdisc and `fail_function` in one).
//!
//! Each fault fires per packet with its rate (0..=1) from one xorshift
//! stream per queue (seeded by `seed` and the queue index), so a run is
//! reproducible, and each is counted in xstats (`fault_drop`, …):
//!
//! * `drop=R` — the packet is taken, freed and counted once in the queue's
//!   `drops` (the [`TxQueue`] contract: reported by the next `clean`);
//! * `reorder=R` — swapped with the packet after it;
//! * `corrupt=R` — one bit of its last byte flipped (what a bad FCS does to
//!   the receiver: a checksum failure it counts);
//! * `busy=R` — per burst: the queue refuses the whole burst, as a full
//!   ring does (`NETDEV_TX_BUSY`: the netdev layer requeues and stops the
//!   queue until room returns);
//! * `delay_us=N` (rate `delay=R`, default 1) — held N µs before the inner
//!   queue sees it (order kept);
//! * `stall_ms=N` (rate `stall=R`, default 0.001) — the packet starts a
//!   completion stall: for N ms the inner queue's completions are not
//!   reported, as when a NIC stops writing back descriptors. The TX watchdog
//!   (`netdev::NetdevQueue::watchdog`) resets such a queue.
//!
//! With every rate 0 the layer forwards each call straight to the inner
//! queue (one indirect call and a branch per burst).

use super::*;
use crate::eal::tsc::Tsc;
use crate::mbuf::{Burst, Mbuf, Mempool, BURST_MAX};
use std::collections::VecDeque;
use std::sync::Arc;

const SYNTAX: &str =
    "fault:drop=R,reorder=R,corrupt=R,busy=R,delay_us=N[,delay=R],stall_ms=N[,stall=R],seed=S+INNER";

pub(crate) fn wrapper() -> WrapperInfo {
    WrapperInfo {
        name: "fault",
        syntax: "fault:K=V,...+INNER",
        help: "seeded fault injection on INNER's TX, each counted in xstats: drop=R reorder=R corrupt=R busy=R (rates 0..1; busy refuses a whole burst), delay_us=N [delay=R], stall_ms=N [stall=R, default 0.001] (completions withheld; the TX watchdog resets the queue), seed=S",
        check: |spec| FaultConfig::parse(spec).map(|_| ()),
        wrap: |spec, inner, full| {
            let cfg = FaultConfig::parse(spec)?;
            Ok(Wrapped::boxed(
                full,
                inner,
                Fault {
                    cfg,
                    queues: Vec::new(),
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
        let (mut delay, mut stall) = (None, None);
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
                "seed" => c.seed = num()?,
                _ => {
                    return Err(bad(format!(
                    "unknown fault '{k}'; known: drop, reorder, corrupt, busy, delay_us, delay, stall_ms, stall, seed ({SYNTAX})"
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

    /// True when some fault can fire.
    pub fn active(&self) -> bool {
        self.drop > 0.0
            || self.reorder > 0.0
            || self.corrupt > 0.0
            || self.busy > 0.0
            || self.delay > 0.0
            || self.stall > 0.0
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
}

struct Fault {
    cfg: FaultConfig,
    queues: Vec<Arc<FaultStats>>,
}

impl Layer for Fault {
    fn wrap_tx(&mut self, _port: &str, inner: Box<dyn TxQueue>) -> Box<dyn TxQueue> {
        let f = Arc::new(FaultStats::default());
        self.queues.push(f.clone());
        Box::new(FaultTx::new(self.cfg, inner, f))
    }
    fn wrap_rx(&mut self, _port: &str, inner: Box<dyn RxQueue>) -> Box<dyn RxQueue> {
        Box::new(PassRx(inner))
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
    }
}

/// xorshift64* — the per-queue fault schedule.
#[derive(Debug, Clone, Copy)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, queue: u16) -> Rng {
        // splitmix64 of the seed and queue, so queues draw different streams.
        let mut z = seed ^ (u64::from(queue) << 32) ^ 0x9e37_79b9_7f4a_7c15;
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
    delay: u64,
    stall: u64,
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
    fn new(cfg: FaultConfig, inner: Box<dyn TxQueue>, f: Arc<FaultStats>) -> FaultTx {
        let tsc = Tsc::global();
        let cap = inner.ring_size().max(1);
        FaultTx {
            pass: !cfg.active(),
            drop: threshold(cfg.drop),
            reorder: threshold(cfg.reorder),
            corrupt: threshold(cfg.corrupt),
            busy: threshold(cfg.busy),
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
        for _ in 0..k {
            let Some(mut m) = pkts.pop_front() else { break };
            if self.hit(self.drop) {
                self.f.drop.add(1);
                self.drop_packet(m);
                continue;
            }
            if self.hit(self.corrupt) {
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
        k
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
