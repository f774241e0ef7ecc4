//! The per-lcore run-to-completion poll loop and the embedding API.
//!
//! Each lcore is a pinned thread ([`crate::eal::lcore::launch`]) that owns its
//! TX queues (by the static XPS map), its RX queues, its mempool (created on
//! that thread: a [`Mempool`] is `!Send`) and its application state. One loop
//! iteration, with the Linux function each stage plays:
//!
//! 1. **clean TX** — the driver's TX completion + `netdev_tx_completed_queue`
//!    ([`NetdevQueue::complete`]): BQL `dql_completed`, wake;
//! 2. **qdisc run** — `net_tx_action` → `__qdisc_run` ([`NetdevQueue::run`]);
//! 3. **RX burst** — NAPI RX poll (`napi_poll`): each owned RX queue, handed to
//!    [`LcoreApp::on_rx`];
//! 4. **timers** — the `timer_list` softirq: due [`LcoreCtx::add_timer`] timers
//!    fire [`LcoreApp::on_timer`];
//! 5. **the application** — [`LcoreApp::poll`] (generate, send, …).
//!
//! The loop ends on a duration, a poll or packet count, a signal
//! ([`crate::eal::signal::stop_requested`]), or a stop request (from the app:
//! [`LcoreCtx::request_stop`] / [`LcoreCtx::request_stop_all`]; from outside:
//! [`Monitor::request_stop`]). Then the lcore drains its queues (bounded by
//! `drain_timeout`), purges what is left (counted), and calls
//! [`LcoreApp::finish`].
//!
//! ```
//! use std::time::Duration;
//! use wirespeed::eal::lcore::CoreList;
//! use wirespeed::ethdev::{PortConfig, Registry};
//! use wirespeed::mbuf::Burst;
//! use wirespeed::runtime::{LcoreApp, LcoreCtx, PortSetup, Runtime, RuntimeConfig};
//!
//! /// Sends 64-byte frames on queue 0 of port 0 until 10 000 are out.
//! struct Blast {
//!     sent: u64,
//! }
//! impl LcoreApp for Blast {
//!     type Summary = u64;
//!     fn poll(&mut self, ctx: &mut LcoreCtx) {
//!         let mut b = Burst::new();
//!         if ctx.pool.alloc_bulk(&mut b, 32) {
//!             for m in b.as_mut_slice() {
//!                 m.set_len(64).unwrap();
//!             }
//!             let out = ctx.xmit_burst(0, 0, &mut b);
//!             self.sent += out.direct as u64 + out.queued as u64;
//!         }
//!         if self.sent >= 10_000 {
//!             ctx.request_stop();
//!         }
//!     }
//!     fn finish(self, _ctx: &mut LcoreCtx) -> u64 {
//!         self.sent
//!     }
//! }
//!
//! wirespeed::eal::dma::set_page_mode(wirespeed::eal::dma::PageMode::Small);
//! let port = Registry::with_builtins().open("null").unwrap();
//! let mut cfg = RuntimeConfig::new(CoreList::parse("0").unwrap());
//! cfg.pool.size = 1024;
//! cfg.handle_signals = false;
//! cfg.stop.duration = Some(Duration::from_secs(10));
//! let rt = Runtime::new(cfg, vec![PortSetup::new(port, PortConfig::default())]).unwrap();
//! let report = rt.run(|_ctx| Ok(Blast { sent: 0 })).unwrap();
//! let q = &report.lcores[0].queues[0];
//! assert_eq!(q.counters.sent_packets, report.lcores[0].app);
//! println!("{q}"); // p0/q0 pfifo_fast sent 10016p drop 0 req 0 backlog 0p bql 0/…
//! ```

use crate::eal::lcore::{self, CoreList, LcoreError, LcoreId};
use crate::eal::signal;
use crate::eal::tsc::Tsc;
use crate::ethdev::{EthdevError, Port, PortConfig, PortStats, QueueStats, RxQueue, StatCounter};
use crate::mbuf::{Burst, Mbuf, Mempool, MempoolError, MempoolStats, PoolConfig};
use crate::netdev::xps::TcMap;
use crate::netdev::{
    NetdevError, NetdevQueue, PortTxMap, Qdisc, QdiscImpl, TxQueueCache, TxQueueSet, TxTimeout,
    TxqConfig, TxqShared, TxqSnapshot, XmitOutcome, XpsError, XpsMap,
};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runtime errors; each names what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Ethdev(#[from] EthdevError),
    #[error(transparent)]
    Xps(#[from] XpsError),
    #[error(transparent)]
    Netdev(#[from] NetdevError),
    #[error(transparent)]
    Lcore(#[from] LcoreError),
    #[error("lcore {lcore}: {source}")]
    Mempool {
        lcore: usize,
        #[source]
        source: MempoolError,
    },
    #[error("lcore {lcore}: application failed to start: {why}")]
    App { lcore: usize, why: String },
    #[error("runtime: {key}: {why}")]
    Config { key: &'static str, why: String },
}

/// When the loop ends (any condition that is set; signals always count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopWhen {
    /// Wall time since the loop started.
    pub duration: Option<Duration>,
    /// Loop iterations on each lcore.
    pub polls: Option<u64>,
    /// Packets the driver accepted on the lcore's own queues.
    pub tx_packets: Option<u64>,
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The lcores (pinned threads); the first is the main lcore.
    pub cores: CoreList,
    /// Each lcore's mempool (its name gets `-l<index>` appended).
    pub pool: PoolConfig,
    pub stop: StopWhen,
    /// Most packets per RX burst.
    pub rx_burst: usize,
    /// How long an lcore keeps polling at the end for its queues to drain.
    pub drain_timeout: Duration,
    /// Install SIGINT/SIGTERM handlers that stop every loop.
    pub handle_signals: bool,
    /// Publish queue counters to the [`Monitor`] every this many polls.
    pub publish_every: u64,
}

impl RuntimeConfig {
    pub fn new(cores: CoreList) -> RuntimeConfig {
        RuntimeConfig {
            cores,
            pool: PoolConfig::default(),
            stop: StopWhen::default(),
            rx_burst: 32,
            drain_timeout: Duration::from_millis(200),
            handle_signals: true,
            publish_every: 64,
        }
    }
}

/// One port handed to the runtime.
pub struct PortSetup {
    pub port: Box<dyn Port>,
    pub conf: PortConfig,
    /// Qdisc / BQL / burst settings of every TX queue of the port.
    pub txq: TxqConfig,
    /// XPS map: entry `l` lists lcore `l`'s TX queues; `None` = queue `q`
    /// to lcore `q % lcores`.
    pub xps: Option<Vec<Vec<u16>>>,
    /// Lcores that send on this port (`None` = all).
    pub senders: Option<Vec<usize>>,
    /// RX queue owners: entry `q` is the lcore that polls RX queue `q`;
    /// `None` = queue `q` to lcore `q % lcores`.
    pub rx_lcores: Option<Vec<usize>>,
    /// Builds the qdisc of each TX queue (argument: queue index) instead of
    /// `txq.qdisc` — for custom [`crate::netdev::Qdisc`] implementations.
    pub qdisc_factory: Option<QdiscFactory>,
}

/// Builds a custom qdisc for TX queue `q` of a port.
pub type QdiscFactory = Arc<dyn Fn(u16) -> Box<dyn Qdisc> + Send + Sync>;

impl PortSetup {
    /// A port with the given config and default queue settings.
    pub fn new(port: Box<dyn Port>, conf: PortConfig) -> PortSetup {
        PortSetup {
            port,
            conf,
            txq: TxqConfig::default(),
            xps: None,
            senders: None,
            rx_lcores: None,
            qdisc_factory: None,
        }
    }
}

/// An application running inside the loop of each lcore.
///
/// One instance per lcore, built on that lcore by the factory given to
/// [`Runtime::run`] (so it may hold `!Send` things such as the pool's
/// prebuilt templates).
pub trait LcoreApp {
    /// What the lcore reports at the end (in [`LcoreReport::app`]).
    type Summary: Send + 'static;

    /// Stage 5 of every loop iteration.
    fn poll(&mut self, ctx: &mut LcoreCtx);

    /// Packets received on one of this lcore's RX queues. What the app leaves
    /// in `pkts` is freed and counted as `rx_unclaimed`.
    fn on_rx(&mut self, _ctx: &mut LcoreCtx, _port: u16, _queue: u16, _pkts: &mut Burst) {}

    /// A timer registered with [`LcoreCtx::add_timer`] is due.
    fn on_timer(&mut self, _ctx: &mut LcoreCtx, _id: u32) {}

    /// Hands frames the app keeps outside the netdev queues (a stack's
    /// [`staged::StagedTx`], a batch of its own) to the queues, and returns
    /// how many it still holds. The runtime calls it in every iteration of
    /// the end-of-run drain, before servicing the queues, and counts the
    /// lcore idle only when it returns 0 and every queue is empty — the part
    /// `net_tx_action` plays for the softnet backlog. Default: nothing held.
    fn flush_tx(&mut self, _ctx: &mut LcoreCtx) -> usize {
        0
    }

    /// After the loop and the drain.
    fn finish(self, ctx: &mut LcoreCtx) -> Self::Summary;
}

/// A closure as an [`LcoreApp`] (poll only; summary `()`).
pub struct PollFn<F>(pub F);

impl<F: FnMut(&mut LcoreCtx)> LcoreApp for PollFn<F> {
    type Summary = ();
    fn poll(&mut self, ctx: &mut LcoreCtx) {
        (self.0)(ctx)
    }
    fn finish(self, _ctx: &mut LcoreCtx) {}
}

/// What an lcore owns on one port.
pub struct LcorePort {
    id: u16,
    name: String,
    set: TxQueueSet,
    txqs: Vec<NetdevQueue>,
    rxqs: Vec<Box<dyn RxQueue>>,
}

struct Timer {
    id: u32,
    period: u64,
    next: u64,
}

/// Counters an lcore publishes for the monitor.
#[derive(Debug, Default)]
struct LcoreShared {
    polls: StatCounter,
    rx_packets: StatCounter,
    running: AtomicBool,
}

/// The per-lcore context an application sees.
pub struct LcoreCtx {
    lcore: LcoreId,
    // Declared before `pool` so queues (and whatever their rings hold) are
    // dropped before the pool.
    ports: Vec<LcorePort>,
    /// This lcore's packet pool (created on this thread).
    pub pool: Mempool,
    tsc: Tsc,
    stop: bool,
    stop_all: Arc<AtomicBool>,
    polls: u64,
    rx_packets: u64,
    rx_unclaimed: u64,
    timers: Vec<Timer>,
    /// Device events the queues raised (an ice MDD that disabled a queue and
    /// the recovery, …), as text.
    events: Vec<String>,
    /// TX watchdog timeouts on this lcore's queues.
    tx_timeouts: Vec<TxTimeout>,
    next_timer: u64,
    shared: Arc<LcoreShared>,
}

impl LcoreCtx {
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    pub fn tsc(&self) -> Tsc {
        self.tsc
    }

    /// TSC cycles now.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        self.tsc.now()
    }

    /// Loop iterations so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    pub fn nb_ports(&self) -> usize {
        self.ports.len()
    }

    /// The port's name (its spec string).
    pub fn port_name(&self, port: usize) -> &str {
        &self.ports[port].name
    }

    /// This lcore's TX queues on `port` (in XPS order; empty if none).
    #[inline(always)]
    pub fn tx_queues(&mut self, port: usize) -> &mut [NetdevQueue] {
        &mut self.ports[port].txqs
    }

    /// One of this lcore's TX queues by local index.
    #[inline(always)]
    pub fn tx_queue(&mut self, port: usize, local: usize) -> &mut NetdevQueue {
        &mut self.ports[port].txqs[local]
    }

    /// The XPS queue set of this lcore on `port`.
    pub fn tx_queue_set(&self, port: usize) -> &TxQueueSet {
        &self.ports[port].set
    }

    /// Installs a traffic-class map over this lcore's queues on `port`
    /// (priority → class → range of its queues; see [`TcMap`]).
    pub fn set_tx_tc(&mut self, port: usize, tc: TcMap) -> Result<(), XpsError> {
        let index = self.lcore.index;
        let p = &mut self.ports[port];
        p.set.set_tc(&p.name, index, tc)
    }

    /// Plays the part of `netdev_pick_tx`: the local TX queue index for a
    /// flow, cached in `cache` so the flow never changes queue.
    #[inline]
    pub fn pick_tx(&self, port: usize, cache: &mut TxQueueCache, hash: u32, priority: u8) -> usize {
        cache.pick(&self.ports[port].set, hash, priority)
    }

    /// Plays the part of `dev_queue_xmit` on a chosen local queue.
    #[inline]
    pub fn xmit_burst(&mut self, port: usize, local: usize, pkts: &mut Burst) -> XmitOutcome {
        self.ports[port].txqs[local].xmit_burst(pkts)
    }

    /// Picks the flow's queue (cached) and transmits one packet on it.
    pub fn xmit_flow(
        &mut self,
        port: usize,
        cache: &mut TxQueueCache,
        hash: u32,
        m: Mbuf,
    ) -> XmitOutcome {
        let q = cache.pick(&self.ports[port].set, hash, m.priority());
        self.ports[port].txqs[q].xmit(m)
    }

    /// Ends this lcore's loop after the current iteration.
    pub fn request_stop(&mut self) {
        self.stop = true;
    }

    /// Ends every lcore's loop.
    pub fn request_stop_all(&mut self) {
        self.stop = true;
        self.stop_all.store(true, Ordering::Relaxed);
    }

    /// Registers a periodic timer; [`LcoreApp::on_timer`] gets `id` when due.
    pub fn add_timer(&mut self, period: Duration, id: u32) {
        let period = self.tsc.ns_to_cycles(period.as_nanos() as u64).max(1);
        let next = self.tsc.now() + period;
        self.timers.push(Timer { id, period, next });
        self.next_timer = self.next_timer.min(next);
    }

    /// Snapshots of this lcore's TX queues.
    pub fn tx_snapshots(&self) -> Vec<TxqSnapshot> {
        self.ports
            .iter()
            .flat_map(|p| p.txqs.iter().map(|q| q.snapshot()))
            .collect()
    }

    /// Packets the driver accepted on this lcore's queues.
    pub fn tx_sent_packets(&self) -> u64 {
        self.ports
            .iter()
            .flat_map(|p| p.txqs.iter())
            .map(|q| q.counters().sent_packets)
            .sum()
    }

    /// Stages 1 and 2: clean TX + wake, then run the qdiscs.
    #[inline]
    fn tx_stage(&mut self) {
        for p in &mut self.ports {
            for q in &mut p.txqs {
                q.service();
            }
        }
    }

    /// Device events (the driver's `poll_event`: an MDD that stopped a queue
    /// is reported and the queue recovered), the carrier (the link watch:
    /// `netif_carrier_off` stops the queue, `netif_carrier_on` wakes it) and the TX watchdog
    /// (`dev_watchdog`: a queue whose completions stopped is reset, reported
    /// as a `tx_timeout` event). Called every few hundred polls.
    fn event_stage(&mut self) {
        let now = self.tsc.now();
        for p in &mut self.ports {
            for q in &mut p.txqs {
                if let Some(c) = q.carrier_poll() {
                    tracing::warn!("{c}");
                    self.events.push(c.to_string());
                }
                if let Some(t) = q.watchdog(now) {
                    tracing::warn!("{t}");
                    self.events.push(t.to_string());
                    self.tx_timeouts.push(t);
                }
                while let Some(e) = q.driver().poll_event() {
                    let text = match e.queue {
                        Some(qi) => format!("{} queue {qi}: {}: {}", p.name, e.kind, e.detail),
                        None => format!("{}: {}: {}", p.name, e.kind, e.detail),
                    };
                    tracing::warn!("{text}");
                    self.events.push(text);
                }
            }
        }
    }

    /// Stage 3: each owned RX queue into the app.
    #[inline]
    fn rx_stage<A: LcoreApp>(&mut self, app: &mut A, rx: &mut Burst, max: usize) {
        for p in 0..self.ports.len() {
            for qi in 0..self.ports[p].rxqs.len() {
                let n = {
                    let port = &mut self.ports[p];
                    port.rxqs[qi].rx_burst(&mut self.pool, rx, max)
                };
                if n == 0 {
                    continue;
                }
                self.rx_packets += n as u64;
                let (pid, qid) = (self.ports[p].id, self.ports[p].rxqs[qi].index());
                app.on_rx(self, pid, qid, rx);
                self.rx_unclaimed += rx.len() as u64;
                rx.clear();
            }
        }
    }

    /// At the end of the run: stops every owned RX queue, returning the
    /// buffers posted on its ring to the pool (`igb_clean_rx_ring` at
    /// `ndo_stop`), so the pool count that follows sees them home.
    fn stop_rx(&mut self) {
        for p in &mut self.ports {
            for q in &mut p.rxqs {
                q.stop();
            }
        }
    }

    /// Stage 4: due timers.
    #[inline]
    fn timer_stage<A: LcoreApp>(&mut self, app: &mut A) {
        let now = self.tsc.now();
        if self.timers.is_empty() || now < self.next_timer {
            return;
        }
        let mut next = u64::MAX;
        for i in 0..self.timers.len() {
            let t = &mut self.timers[i];
            if now >= t.next {
                // Skip missed periods rather than firing a backlog.
                let missed = (now - t.next) / t.period;
                t.next += (missed + 1) * t.period;
                let id = t.id;
                let tn = t.next;
                app.on_timer(self, id);
                next = next.min(tn);
            } else {
                next = next.min(t.next);
            }
        }
        self.next_timer = next;
    }

    fn publish(&self) {
        for p in &self.ports {
            for q in &p.txqs {
                q.publish();
            }
        }
        self.shared.polls.set(self.polls);
        self.shared.rx_packets.set(self.rx_packets);
    }

    fn all_idle(&self) -> bool {
        self.ports
            .iter()
            .all(|p| p.txqs.iter().all(|q| q.is_idle()))
    }
}

/// A cross-thread view of a running runtime: queue counters, BQL state,
/// per-lcore polls; and a way to stop it.
#[derive(Clone)]
pub struct Monitor {
    queues: Arc<Vec<Arc<TxqShared>>>,
    lcores: Arc<Vec<Arc<LcoreShared>>>,
    stop_all: Arc<AtomicBool>,
    /// Per port: its TX and RX queues' driver counters (shared handles).
    port_queues: Arc<Vec<PortQueueStats>>,
}

/// One port's queue counter handles, TX then RX.
type PortQueueStats = (Vec<Arc<QueueStats>>, Vec<Arc<QueueStats>>);

impl Monitor {
    /// Every TX queue (port order, then queue order), as last published.
    pub fn queues(&self) -> Vec<TxqSnapshot> {
        self.queues.iter().map(|q| q.snapshot()).collect()
    }

    /// Each port's driver counters as the queues count them now (the
    /// software part of `ethtool -S`: totals and per queue, read from the
    /// queues' shared counters while the lcores run; a driver's own
    /// hardware counters are read only at the end).
    pub fn port_stats(&self) -> Vec<PortStats> {
        self.port_queues
            .iter()
            .map(|(tx, rx)| PortStats::from_queues(tx, rx))
            .collect()
    }

    /// Loop iterations per lcore so far.
    pub fn lcore_polls(&self) -> Vec<u64> {
        self.lcores.iter().map(|l| l.polls.get()).collect()
    }

    /// Packets received per lcore so far.
    pub fn lcore_rx_packets(&self) -> Vec<u64> {
        self.lcores.iter().map(|l| l.rx_packets.get()).collect()
    }

    /// True while any lcore is still in its loop.
    pub fn running(&self) -> bool {
        self.lcores
            .iter()
            .any(|l| l.running.load(Ordering::Relaxed))
    }

    /// Asks every lcore to stop.
    pub fn request_stop(&self) {
        self.stop_all.store(true, Ordering::Relaxed);
    }
}

/// What one lcore reports.
#[derive(Debug, Serialize)]
pub struct LcoreReport<S> {
    pub lcore: usize,
    pub core: usize,
    pub polls: u64,
    pub elapsed_ns: u64,
    pub rx_packets: u64,
    /// Received packets the app did not take (freed).
    pub rx_unclaimed: u64,
    /// True when every queue drained before `drain_timeout`.
    pub drained: bool,
    /// The lcore's TX queues after the drain (and purge).
    pub queues: Vec<TxqSnapshot>,
    /// The lcore's pool at the end.
    pub pool: MempoolStats,
    /// Device events raised on the lcore's queues during the run (TX
    /// watchdog timeouts among them, as text).
    pub events: Vec<String>,
    /// TX watchdog timeouts on the lcore's queues, in order.
    pub tx_timeouts: Vec<TxTimeout>,
    pub app: S,
}

/// What a run reports.
#[derive(Debug, Serialize)]
pub struct RunReport<S> {
    pub lcores: Vec<LcoreReport<S>>,
    /// Each port after the run.
    pub ports: Vec<PortReport>,
}

/// A port at the end of a run: counters, named extended stats, link, events.
#[derive(Debug, Clone, Serialize)]
pub struct PortReport {
    pub name: String,
    pub stats: PortStats,
    pub xstats: Vec<(String, u64)>,
    pub link: crate::ethdev::LinkStatus,
    /// Events the port raised during the run (e.g. ice MDD), as text.
    pub events: Vec<String>,
}

struct LcoreResources {
    ports: Vec<LcorePort>,
    shared: Arc<LcoreShared>,
}

/// Ports, queues and lcores, set up and ready to run.
pub struct Runtime {
    cfg: RuntimeConfig,
    ports: Vec<Box<dyn Port>>,
    xps: XpsMap,
    resources: Vec<LcoreResources>,
    monitor: Monitor,
}

impl Runtime {
    /// Validates the XPS map, configures and starts the ports, hands every TX
    /// queue (wrapped in a [`NetdevQueue`]) and RX queue (queue `q` to lcore
    /// `q % lcores`) to its lcore.
    pub fn new(cfg: RuntimeConfig, ports: Vec<PortSetup>) -> Result<Runtime, RuntimeError> {
        // Device models started from here keep their engine threads off the lcores.
        lcore::claim(&cfg.cores);
        cfg.cores.validate()?;
        let n = cfg.cores.len();
        if n == 0 {
            return Err(RuntimeError::Config {
                key: "cores",
                why: "no lcores given; list at least one core".into(),
            });
        }
        if cfg.rx_burst == 0 || cfg.rx_burst > crate::mbuf::BURST_MAX {
            return Err(RuntimeError::Config {
                key: "rx_burst",
                why: format!("{} is out of range 1..=256", cfg.rx_burst),
            });
        }
        if ports.len() > u16::MAX as usize {
            return Err(RuntimeError::Config {
                key: "ports",
                why: "too many ports".into(),
            });
        }
        let maps: Vec<PortTxMap> = ports
            .iter()
            .map(|p| PortTxMap {
                port: p.port.name().to_string(),
                nb_queues: p.conf.nb_tx_queues,
                lcore_queues: p.xps.clone(),
                senders: p.senders.clone(),
            })
            .collect();
        let xps = XpsMap::build(n, &maps)?;
        let tsc = Tsc::global();
        let mut resources: Vec<LcoreResources> = (0..n)
            .map(|_| LcoreResources {
                ports: Vec::new(),
                shared: Arc::new(LcoreShared::default()),
            })
            .collect();
        let mut shared_queues = Vec::new();
        let mut port_queues = Vec::new();
        let mut owned_ports = Vec::new();
        for (pi, setup) in ports.into_iter().enumerate() {
            let PortSetup {
                mut port,
                conf,
                txq,
                qdisc_factory,
                rx_lcores,
                ..
            } = setup;
            if let Some(map) = &rx_lcores {
                if map.len() != conf.nb_rx_queues as usize {
                    return Err(RuntimeError::Config {
                        key: "rx_lcores",
                        why: format!(
                            "port {}: {} entries for {} rx queues; give one lcore per rx queue",
                            port.name(),
                            map.len(),
                            conf.nb_rx_queues
                        ),
                    });
                }
                if let Some(&l) = map.iter().find(|&&l| l >= n) {
                    return Err(RuntimeError::Config {
                        key: "rx_lcores",
                        why: format!(
                            "port {}: lcore {l} does not exist ({n} lcores); use 0..{n}",
                            port.name()
                        ),
                    });
                }
            }
            port.configure(&conf)?;
            let name = port.name().to_string();
            let mut per_lcore: Vec<LcorePort> = (0..n)
                .map(|l| LcorePort {
                    id: pi as u16,
                    name: name.clone(),
                    set: TxQueueSet::new(xps.queues_of(pi, l).to_vec()),
                    txqs: Vec::new(),
                    rxqs: Vec::new(),
                })
                .collect();
            let mut by_queue: Vec<Option<NetdevQueue>> =
                (0..conf.nb_tx_queues).map(|_| None).collect();
            let mut handles: PortQueueStats = (Vec::new(), Vec::new());
            for q in 0..conf.nb_tx_queues {
                let dq = port.tx_queue(q)?;
                handles.0.push(dq.stats());
                let nq = match &qdisc_factory {
                    Some(f) => NetdevQueue::with_qdisc(
                        pi as u16,
                        &name,
                        dq,
                        &txq,
                        QdiscImpl::Custom(f(q)),
                        tsc,
                    )?,
                    None => NetdevQueue::new(pi as u16, &name, dq, &txq, tsc)?,
                };
                shared_queues.push(nq.shared());
                by_queue[q as usize] = Some(nq);
            }
            for (l, lp) in per_lcore.iter_mut().enumerate() {
                for &q in xps.queues_of(pi, l) {
                    if let Some(nq) = by_queue[q as usize].take() {
                        lp.txqs.push(nq);
                    }
                }
            }
            for q in 0..conf.nb_rx_queues {
                let rq = port.rx_queue(q)?;
                handles.1.push(rq.stats());
                let owner = rx_lcores.as_ref().map_or(q as usize % n, |m| m[q as usize]);
                per_lcore[owner].rxqs.push(rq);
            }
            port.start()?;
            port_queues.push(handles);
            for (l, lp) in per_lcore.into_iter().enumerate() {
                resources[l].ports.push(lp);
            }
            owned_ports.push(port);
        }
        let monitor = Monitor {
            queues: Arc::new(shared_queues),
            lcores: Arc::new(resources.iter().map(|r| r.shared.clone()).collect()),
            stop_all: Arc::new(AtomicBool::new(false)),
            port_queues: Arc::new(port_queues),
        };
        Ok(Runtime {
            cfg,
            ports: owned_ports,
            xps,
            resources,
            monitor,
        })
    }

    /// The validated XPS map.
    pub fn xps(&self) -> &XpsMap {
        &self.xps
    }

    /// The ports, in the order given.
    pub fn ports(&self) -> &[Box<dyn Port>] {
        &self.ports
    }

    /// A cross-thread view (clone it into a display thread).
    pub fn monitor(&self) -> Monitor {
        self.monitor.clone()
    }

    /// Runs the loop on every lcore until a stop condition; `make_app` builds
    /// each lcore's application on that lcore. Blocks until all lcores end.
    pub fn run<A, F>(self, make_app: F) -> Result<RunReport<A::Summary>, RuntimeError>
    where
        A: LcoreApp,
        F: Fn(&mut LcoreCtx) -> Result<A, String> + Send + Sync + 'static,
    {
        self.run_with_ticker(make_app, Duration::from_secs(3600), |_| {})
    }

    /// As [`Runtime::run`], calling `tick` with the monitor every `every`
    /// from the calling thread (for a live status line) while lcores run.
    pub fn run_with_ticker<A, F, T>(
        mut self,
        make_app: F,
        every: Duration,
        mut tick: T,
    ) -> Result<RunReport<A::Summary>, RuntimeError>
    where
        A: LcoreApp,
        F: Fn(&mut LcoreCtx) -> Result<A, String> + Send + Sync + 'static,
        T: FnMut(&Monitor) + Send,
    {
        if self.cfg.handle_signals {
            signal::install();
        }
        let slots: Arc<Mutex<Vec<Option<LcoreResources>>>> = Arc::new(Mutex::new(
            std::mem::take(&mut self.resources)
                .into_iter()
                .map(Some)
                .collect(),
        ));
        let cfg = Arc::new(self.cfg.clone());
        let stop_all = self.monitor.stop_all.clone();
        let make_app = Arc::new(make_app);
        for l in self.monitor.lcores.iter() {
            l.running.store(true, Ordering::Relaxed);
        }
        let cores = self.cfg.cores.clone();
        let monitor = self.monitor.clone();
        let done = AtomicBool::new(false);
        let results = std::thread::scope(|s| {
            let ticker = s.spawn(|| {
                let step = Duration::from_millis(10).min(every);
                let mut waited = Duration::ZERO;
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited >= every {
                        waited = Duration::ZERO;
                        tick(&monitor);
                    }
                }
            });
            let r = lcore::launch(&cores, move |id| {
                let res = slots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(id.index)
                    .and_then(|s| s.take());
                match res {
                    Some(res) => lcore_main(id, res, &cfg, &*make_app, stop_all.clone()),
                    None => Err(RuntimeError::Config {
                        key: "cores",
                        why: format!("lcore {} has no resources", id.index),
                    }),
                }
            });
            done.store(true, Ordering::Relaxed);
            let _ = ticker.join();
            r
        });
        for l in self.monitor.lcores.iter() {
            l.running.store(false, Ordering::Relaxed);
        }
        let mut lcores = Vec::new();
        let mut first_err = None;
        for r in results? {
            match r {
                Ok(rep) => lcores.push(rep),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let mut ports = Vec::new();
        for p in &mut self.ports {
            let link = p.link();
            let events = p
                .events()
                .into_iter()
                .map(|e| match e.queue {
                    Some(q) => format!("queue {q}: {}: {}", e.kind, e.detail),
                    None => format!("{}: {}", e.kind, e.detail),
                })
                .collect();
            let _ = p.stop();
            ports.push(PortReport {
                name: p.name().to_string(),
                stats: p.stats(),
                xstats: p.xstats(),
                link,
                events,
            });
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(RunReport { lcores, ports }),
        }
    }
}

/// One lcore: build the pool and app, loop, drain, finish.
fn lcore_main<A, F>(
    id: LcoreId,
    res: LcoreResources,
    cfg: &RuntimeConfig,
    make_app: &F,
    stop_all: Arc<AtomicBool>,
) -> Result<LcoreReport<A::Summary>, RuntimeError>
where
    A: LcoreApp,
    F: Fn(&mut LcoreCtx) -> Result<A, String>,
{
    let mut pc = cfg.pool.clone();
    pc.name = format!("{}-l{}", pc.name, id.index);
    let pool = Mempool::new(&pc).map_err(|source| RuntimeError::Mempool {
        lcore: id.index,
        source,
    })?;
    let tsc = Tsc::global();
    let shared = res.shared;
    let mut ctx = LcoreCtx {
        lcore: id,
        ports: res.ports,
        pool,
        tsc,
        stop: false,
        stop_all,
        polls: 0,
        rx_packets: 0,
        rx_unclaimed: 0,
        timers: Vec::new(),
        events: Vec::new(),
        tx_timeouts: Vec::new(),
        next_timer: u64::MAX,
        shared: shared.clone(),
    };
    let mut app = make_app(&mut ctx).map_err(|why| RuntimeError::App {
        lcore: id.index,
        why,
    })?;
    let mut rx = Burst::new();
    let start = tsc.now();
    let deadline = cfg
        .stop
        .duration
        .map(|d| start + tsc.ns_to_cycles(d.as_nanos() as u64));
    let publish_every = cfg.publish_every.max(1);
    loop {
        ctx.tx_stage();
        ctx.rx_stage(&mut app, &mut rx, cfg.rx_burst);
        ctx.timer_stage(&mut app);
        app.poll(&mut ctx);
        ctx.polls += 1;
        if ctx.polls.is_multiple_of(publish_every) {
            ctx.publish();
        }
        if ctx.polls.is_multiple_of(256) {
            ctx.event_stage();
        }
        if ctx.stop
            || signal::stop_requested()
            || ctx.stop_all.load(Ordering::Relaxed)
            || deadline.is_some_and(|d| tsc.now() >= d)
            || cfg.stop.polls.is_some_and(|n| ctx.polls >= n)
            || cfg
                .stop
                .tx_packets
                .is_some_and(|n| ctx.tx_sent_packets() >= n)
        {
            break;
        }
    }
    let elapsed_ns = tsc.cycles_to_ns(tsc.now() - start);
    // Drain: keep cleaning, running qdiscs, receiving and flushing what the
    // app holds (its staged frames) until idle.
    let drain_end = tsc.now() + tsc.ns_to_cycles(cfg.drain_timeout.as_nanos() as u64);
    let drained = loop {
        ctx.tx_stage();
        ctx.rx_stage(&mut app, &mut rx, cfg.rx_burst);
        let held = app.flush_tx(&mut ctx);
        if held == 0 && ctx.all_idle() {
            break true;
        }
        if tsc.now() >= drain_end {
            break false;
        }
        std::hint::spin_loop();
    };
    // What the app still holds goes to the queues, to be purged and counted.
    app.flush_tx(&mut ctx);
    for p in &mut ctx.ports {
        for q in &mut p.txqs {
            q.purge();
        }
    }
    ctx.publish();
    shared.running.store(false, Ordering::Relaxed);
    let summary = app.finish(&mut ctx);
    ctx.stop_rx();
    let queues = ctx.tx_snapshots();
    let report = LcoreReport {
        lcore: id.index,
        core: id.core,
        polls: ctx.polls,
        elapsed_ns,
        rx_packets: ctx.rx_packets,
        rx_unclaimed: ctx.rx_unclaimed,
        drained,
        queues,
        pool: ctx.pool.stats(),
        events: std::mem::take(&mut ctx.events),
        tx_timeouts: std::mem::take(&mut ctx.tx_timeouts),
        app: summary,
    };
    Ok(report)
}

pub mod stacked;
pub mod staged;
pub mod steer;

#[cfg(test)]
mod tests;
