//! What a run reports: the monitor's per-interval samples, the live line, and
//! the final summary (table and JSON).

use super::launch::Outcome;
use super::lcore::{LcoreResult, SenderCounters, StackResult};
use super::measure::{latency_histogram, rate_histogram, Percentiles, SeqTracker, Series};
use super::plan::RunPlan;
use crate::config::{si, Stream, StreamMode};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use wirespeed::eal::Tsc;
use wirespeed::netdev::{BqlView, QdiscStats, TxqCounters, TxqSnapshot};
use wirespeed::runtime::LcoreReport;

/// Per port: (packets, bytes, drops) summed over its queues.
fn port_sums(queues: &[TxqSnapshot], nports: usize) -> Vec<(u64, u64, u64)> {
    let mut v = vec![(0, 0, 0); nports];
    for q in queues {
        if let Some(e) = v.get_mut(q.port as usize) {
            e.0 += q.counters.sent_packets;
            e.1 += q.counters.sent_bytes;
            e.2 += q.counters.drops();
        }
    }
    v
}

/// Samples counters every interval and keeps interval-rate histograms.
pub struct Monitor {
    tsc: Tsc,
    start_tsc: u64,
    last_tsc: u64,
    stream_last: Vec<(u64, u64)>,
    port_last: Vec<(u64, u64, u64)>,
    pub stream_pps: Vec<Histogram<u64>>,
    pub stream_bps: Vec<Histogram<u64>>,
    pub port_pps: Vec<Histogram<u64>>,
    pub port_bps: Vec<Histogram<u64>>,
    /// For the plot: per stream, (t, pps) every ~100 ms.
    series: Vec<Series>,
    series_acc: Vec<(u64, u64)>,
    series_last_tsc: u64,
    // For the live line: per port, at the last line.
    line_last: Vec<(u64, u64, u64)>,
    line_last_tsc: u64,
    active: Vec<bool>,
}

impl Monitor {
    pub fn new(streams: &[Stream], nports: usize, tsc: Tsc) -> Monitor {
        // Sampling starts at the common start (set_start).
        let start_tsc = u64::MAX;
        Monitor {
            tsc,
            start_tsc,
            last_tsc: start_tsc,
            stream_last: vec![(0, 0); streams.len()],
            port_last: vec![(0, 0, 0); nports],
            stream_pps: (0..streams.len()).map(|_| rate_histogram()).collect(),
            stream_bps: (0..streams.len()).map(|_| rate_histogram()).collect(),
            port_pps: (0..nports).map(|_| rate_histogram()).collect(),
            port_bps: (0..nports).map(|_| rate_histogram()).collect(),
            series: streams
                .iter()
                .map(|s| Series {
                    name: s.name.clone(),
                    points: Vec::new(),
                })
                .collect(),
            series_acc: vec![(0, 0); streams.len()],
            series_last_tsc: start_tsc,
            line_last: vec![(0, 0, 0); nports],
            line_last_tsc: start_tsc,
            active: vec![false; streams.len()],
        }
    }

    /// Fixes the common start (sampling begins there).
    pub fn set_start(&mut self, start_tsc: u64) {
        self.start_tsc = start_tsc;
        self.last_tsc = start_tsc;
        self.series_last_tsc = start_tsc;
        self.line_last_tsc = start_tsc;
    }

    /// Takes one sample of every stream's and port's counters.
    pub fn sample(&mut self, queues: &[TxqSnapshot], counters: &[Vec<Arc<SenderCounters>>]) {
        let now = self.tsc.now();
        if now <= self.start_tsc {
            self.last_tsc = self.start_tsc;
            return;
        }
        let dt = self
            .tsc
            .cycles_to_ns(now - self.last_tsc.max(self.start_tsc)) as f64
            / 1e9;
        if dt <= 0.0 {
            return;
        }
        for (si, cs) in counters.iter().enumerate() {
            let p: u64 = cs.iter().map(|c| c.packets.get()).sum();
            let b: u64 = cs.iter().map(|c| c.bytes.get()).sum();
            let (lp, lb) = self.stream_last[si];
            let dp = p - lp;
            let db = b - lb;
            // A stream is sampled from its first packet until it stops sending.
            let started = cs.iter().any(|c| c.first_tsc.get() != 0);
            if started && (dp > 0 || self.active[si]) {
                let last = cs.iter().map(|c| c.last_tsc.get()).max().unwrap_or(0);
                if dp > 0 || now.saturating_sub(last) < self.tsc.hz() / 100 {
                    let _ = self.stream_pps[si].record((dp as f64 / dt) as u64);
                    let _ = self.stream_bps[si].record(((db + 4 * dp) as f64 * 8.0 / dt) as u64);
                }
                self.active[si] = dp > 0;
            }
            self.stream_last[si] = (p, b);
            self.series_acc[si].0 += dp;
        }
        for (pi, cur) in port_sums(queues, self.port_last.len())
            .into_iter()
            .enumerate()
        {
            let (lp, lb, _) = self.port_last[pi];
            let dp = cur.0.saturating_sub(lp);
            let db = cur.1.saturating_sub(lb);
            if dp > 0 {
                let _ = self.port_pps[pi].record((dp as f64 / dt) as u64);
                let _ = self.port_bps[pi].record(((db + 4 * dp) as f64 * 8.0 / dt) as u64);
            }
            self.port_last[pi] = cur;
        }
        let sdt = now - self.series_last_tsc;
        if self.tsc.cycles_to_ns(sdt) >= 100_000_000 {
            let t = self.tsc.cycles_to_ns(now - self.start_tsc) as f64 / 1e9;
            let secs = self.tsc.cycles_to_ns(sdt) as f64 / 1e9;
            for (si, acc) in self.series_acc.iter_mut().enumerate() {
                self.series[si].points.push((t, acc.0 as f64 / secs));
                acc.0 = 0;
            }
            self.series_last_tsc = now;
        }
        self.last_tsc = now;
    }

    /// The once-a-second line: per port pps, L2/L1 rate, drops, BQL limit
    /// and qdisc backlog.
    pub fn live_line(&mut self, queues: &[TxqSnapshot], t: f64) -> String {
        let now = self.tsc.now();
        let dt = (self
            .tsc
            .cycles_to_ns(now.saturating_sub(self.line_last_tsc)) as f64
            / 1e9)
            .max(1e-6);
        let mut out = format!("[{t:>6.1}s]");
        for (pi, cur) in port_sums(queues, self.line_last.len())
            .into_iter()
            .enumerate()
        {
            let (lp, lb, _) = self.line_last[pi];
            let dp = cur.0.saturating_sub(lp);
            let db = cur.1.saturating_sub(lb);
            let l2 = (db + 4 * dp) as f64 * 8.0 / dt;
            let l1 = l2 + 160.0 * dp as f64 / dt;
            let qs: Vec<&TxqSnapshot> = queues.iter().filter(|q| q.port as usize == pi).collect();
            let backlog: u64 = qs.iter().map(|q| q.counters.backlog_packets).sum();
            let bql: Vec<String> = qs
                .iter()
                .filter(|q| q.bql.enabled)
                .map(|q| format!("{}/{}", q.bql.inflight, q.bql.limit))
                .collect();
            out.push_str(&format!(
                " | port{pi} {:>8.3} Mpps L2 {:>7.3} L1 {:>7.3} Gbit/s drops {} backlog {}p bql {}",
                dp as f64 / dt / 1e6,
                l2 / 1e9,
                l1 / 1e9,
                cur.2,
                backlog,
                if bql.is_empty() {
                    "off".to_string()
                } else {
                    bql.join(",")
                }
            ));
            self.line_last[pi] = cur;
        }
        self.line_last_tsc = now;
        out
    }

    /// Throughput series for the plot.
    pub fn series(&self) -> Vec<Series> {
        self.series
            .iter()
            .map(|s| Series {
                name: s.name.clone(),
                points: s.points.clone(),
            })
            .collect()
    }
}

/// Rate percentiles over the sampling intervals.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalRates {
    pub samples: u64,
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl IntervalRates {
    fn of(h: &Histogram<u64>) -> IntervalRates {
        let p = Percentiles::of(h);
        IntervalRates {
            samples: p.count,
            min: p.min,
            p50: p.p50,
            p99: p.p99,
            p999: p.p999,
            max: p.max,
        }
    }
}

/// Latency results of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    /// Nanoseconds.
    pub ns: Percentiles,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub late: u64,
}

/// One stream in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    pub name: String,
    pub mode: String,
    pub port: usize,
    pub sizes: String,
    /// The target as given, with its unit spelled out.
    pub rate_target: String,
    pub target_pps: Option<f64>,
    /// What the port transmitted of this stream, per second of its active
    /// time (not what it offered).
    pub achieved_pps: f64,
    pub achieved_l2_bps: f64,
    pub achieved_l1_bps: f64,
    /// |achieved − target| / target, when there is a target.
    pub rate_error: Option<f64>,
    /// True when the target was missed by more than 0.5%.
    pub rate_miss: bool,
    /// Packets (frames; datagrams for a socket stream) the port transmitted.
    pub packets: u64,
    /// Their bytes, without FCS.
    pub bytes: u64,
    /// Packets the stream offered to the port (a socket stream: datagrams the
    /// socket took).
    pub offered: u64,
    pub offered_bytes: u64,
    /// Offered but not transmitted, by where they were dropped.
    pub dropped: StreamDrops,
    /// False when some of the stream's packets were dropped after queueing
    /// on a queue it shares (then `packets` is an upper bound).
    pub exact: bool,
    /// Why the stream is flagged (missed, dropped, delivered nothing), empty when fine.
    pub flags: Vec<String>,
    pub active_s: f64,
    /// Rates seen over the sampling intervals (how steady it was).
    pub interval_pps: IntervalRates,
    pub interval_l2_bps: IntervalRates,
    pub latency: Option<LatencySummary>,
    /// Socket mode: sends the stack refused (no route, neighbour failed, …).
    pub send_errors: u64,
    pub last_send_error: Option<String>,
    /// TCP mode: the connections' results (iperf3's summary).
    pub tcp: Option<TcpSummary>,
    /// What the control socket changed (`--control`), in order; the target
    /// is then the mean of the targets over the active time, paused time
    /// counting as 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<String>,
}

/// A TCP stream's connections, as iperf3 sums them up.
#[derive(Debug, Clone, Serialize)]
pub struct TcpSummary {
    pub connections: u32,
    pub established: u32,
    /// Connections an error ended (refused, reset, timed out), and the first error.
    pub failed: u32,
    pub first_error: Option<String>,
    /// Bytes the peer acknowledged, and the bytes asked for (0 = no limit).
    pub bytes_acked: u64,
    pub bytes_asked: u64,
    /// Acknowledged payload bits per second, first SYN to last ACK.
    pub goodput_bps: f64,
    pub segs_out: u64,
    pub retrans_segs: u64,
    /// SYN to ESTABLISHED, µs, over the connections.
    pub connect_us: Percentiles,
}

impl TcpSummary {
    fn of(s: &Stream, out: &Outcome) -> Option<TcpSummary> {
        if s.mode != StreamMode::Tcp {
            return None;
        }
        let rs = out
            .report
            .lcores
            .iter()
            .flat_map(|l| l.app.tcp.iter())
            .filter(|(i, _)| *i == s.index)
            .map(|(_, r)| r);
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok()?;
        let mut t = TcpSummary {
            connections: 0,
            established: 0,
            failed: 0,
            first_error: None,
            bytes_acked: 0,
            bytes_asked: 0,
            goodput_bps: 0.0,
            segs_out: 0,
            retrans_segs: 0,
            connect_us: Percentiles::default(),
        };
        let (mut first, mut last) = (u64::MAX, 0u64);
        for r in rs {
            t.connections += r.connections;
            t.established += r.established;
            t.failed += r.failed;
            t.first_error = t.first_error.or_else(|| r.first_error.clone());
            t.bytes_acked += r.bytes_acked;
            t.bytes_asked += r.bytes_asked;
            t.segs_out += r.segs_out;
            t.retrans_segs += r.retrans_segs;
            for v in &r.connect_us {
                let _ = h.record(*v);
            }
            first = first.min(r.first_tsc);
            last = last.max(r.last_ack_tsc);
        }
        if last > first {
            let secs = out.tsc.cycles_to_ns(last - first) as f64 / 1e9;
            t.goodput_bps = t.bytes_acked as f64 * 8.0 / secs;
        }
        t.connect_us = Percentiles::of(&h);
        Some(t)
    }
}

/// Where a stream's packets were dropped.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StreamDrops {
    /// The qdisc was full (`qdisc_drop`).
    pub qdisc: u64,
    /// `noqueue` and the driver queue stopped.
    pub busy: u64,
    /// Queued, then dropped: still queued at the end (purged) or dropped by
    /// the driver (malformed, device error).
    pub after_queue: u64,
    /// Socket streams: in the stack (no ARP answer, neighbour queue full).
    pub stack: u64,
    /// The link had no carrier (`netif_carrier_off`, policy `drop`):
    /// refused on offer, or purged from the backlog when it went.
    pub carrier: u64,
}

impl StreamDrops {
    pub fn total(&self) -> u64 {
        self.qdisc + self.busy + self.after_queue + self.stack + self.carrier
    }
}

/// One port's protocol stack: its `/proc/net/snmp` counters.
#[derive(Debug, Clone, Serialize)]
pub struct StackSummary {
    pub port: usize,
    pub addr: String,
    pub snmp: wirespeed::stack::SnmpSnapshot,
}

/// Per-queue figures: the driver's counters and the netdev layer's (qdisc
/// like `tc -s qdisc`, BQL like sysfs `byte_queue_limits`).
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    pub queue: u16,
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    pub drops: u64,
    pub qdisc: Option<QdiscStats>,
    pub bql: Option<BqlView>,
    pub netdev: Option<TxqCounters>,
}

/// Per-port figures.
#[derive(Debug, Clone, Serialize)]
pub struct PortSummary {
    pub spec: String,
    pub driver: String,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
    pub rx_packets: u64,
    pub link_up: bool,
    pub link_speed_mbps: u32,
    pub line_rate_bps: u64,
    pub offloads: String,
    /// Packets the streams (and the port's stack: ARP, ICMP) offered to the
    /// port's queues.
    pub offered: u64,
    /// Conservation: every offered packet is on the wire or in exactly one
    /// drop counter (netdev or driver).
    pub conserved: bool,
    pub interval_pps: IntervalRates,
    pub interval_l2_bps: IntervalRates,
    pub queues: Vec<QueueSummary>,
    pub xstats: BTreeMap<String, u64>,
}

/// Per-lcore figures.
#[derive(Debug, Clone, Serialize)]
pub struct LcoreSummary {
    pub lcore: usize,
    pub core: usize,
    pub packets: u64,
    pub busy_cycles: u64,
    pub cycles_per_packet: f64,
    pub alloc_failures: u64,
    pub mempool_in_use_at_end: u64,
    pub rx_packets: u64,
    /// Received frames that carried a latency header of one of our streams.
    pub rx_latency: u64,
    /// Received frames no stream or stack took.
    pub rx_other: u64,
    /// Received segments steered to another lcore's socket, taken from
    /// other lcores, and dropped because the ring was full.
    pub steered_out: u64,
    pub steered_in: u64,
    pub steer_drops: u64,
    pub polls: u64,
}

/// What `--json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub packets_sent: u64,
    /// L2 bytes without FCS (what a capture shows).
    pub bytes_sent: u64,
    /// Seconds from the common start to the end of the run.
    pub duration_s: f64,
    pub mpps: f64,
    /// L2 bit rate including the 4-byte FCS.
    pub l2_gbps: f64,
    /// L1 bit rate: FCS + preamble + inter-frame gap (24 bytes per frame).
    pub l1_gbps: f64,
    pub drops: u64,
    pub cycles_per_packet: f64,
    pub tsc_hz: u64,
    pub streams: Vec<StreamSummary>,
    pub ports: Vec<PortSummary>,
    pub lcores: Vec<LcoreSummary>,
    /// Events ports raised (e.g. an ice MDD that disabled a queue).
    pub events: Vec<String>,
    /// Each port's protocol stack: /proc/net/snmp counters (Ip, Icmp, Udp, …),
    /// one table per stack (each is its own host).
    pub stacks: Vec<StackSummary>,
    /// Why the run failed (a stream delivered nothing, conservation broken):
    /// the CLI exits 1 when this is not empty.
    pub failures: Vec<String>,
    #[serde(skip)]
    pub latency_hists: Vec<(String, Histogram<u64>)>,
}

/// What the lcores and queues reported, gathered once for every row.
struct Gathered<'a> {
    /// Per stream: latency merged over the receiving lcores.
    lat: Vec<Histogram<u64>>,
    /// Per (stream, sender id): sequence accounting merged over lcores.
    trk: BTreeMap<(usize, u8), SeqTracker>,
    snaps: Vec<&'a TxqSnapshot>,
    /// Per port with a stack: its replicas on all lcores, added up.
    stacks: Vec<StackResult>,
    /// Per (port, queue): how many raw/replay senders feed it.
    feeders: BTreeMap<(usize, u16), usize>,
}

/// One result per port over its stack's replicas: counters, staged frames
/// and neighbour-queue leftovers added up.
fn merge_stacks<'a>(it: impl Iterator<Item = &'a StackResult>) -> Vec<StackResult> {
    let mut out: Vec<StackResult> = Vec::new();
    for x in it {
        match out.iter_mut().find(|o| o.port == x.port) {
            Some(o) => {
                o.snmp += x.snmp;
                o.staged_offered += x.staged_offered;
                o.staged_dropped += x.staged_dropped;
                o.neigh_held += x.neigh_held;
            }
            None => out.push(x.clone()),
        }
    }
    out.sort_by_key(|x| x.port);
    out
}

impl<'a> Gathered<'a> {
    fn new(plan: &RunPlan, out: &'a Outcome) -> Gathered<'a> {
        let lcores = &out.report.lcores;
        let mut lat: Vec<Histogram<u64>> =
            plan.streams.iter().map(|_| latency_histogram()).collect();
        let mut trk: BTreeMap<(usize, u8), SeqTracker> = BTreeMap::new();
        for l in lcores {
            for (si, h) in l.app.latency.iter().enumerate() {
                let _ = lat[si].add(h);
            }
            for (k, t) in &l.app.trackers {
                trk.entry(*k).or_default().merge_counts(t);
            }
        }
        let mut feeders: BTreeMap<(usize, u16), usize> = BTreeMap::new();
        for s in plan.streams.iter().filter(|s| !s.mode.via_stack()) {
            for c in &plan.counters[s.index] {
                if let Some(q) = c.queue.get().checked_sub(1) {
                    *feeders.entry((s.port, q as u16)).or_default() += 1;
                }
            }
        }
        Gathered {
            lat,
            trk,
            snaps: lcores.iter().flat_map(|l| l.queues.iter()).collect(),
            stacks: merge_stacks(lcores.iter().flat_map(|l| l.app.stacks.iter())),
            feeders,
        }
    }

    /// Packets of (port, queue) dropped after the netdev layer queued or
    /// handed them on: purged at the end, or dropped by the driver.
    fn late(&self, out: &Outcome, p: usize, q: u16) -> u64 {
        let purged = self
            .snaps
            .iter()
            .find(|s| s.port as usize == p && s.queue == q)
            .map_or(0, |s| s.counters.purged);
        let drv = out.report.ports[p]
            .stats
            .tx_queues
            .get(q as usize)
            .map_or(0, |c| c.drops + c.errors);
        purged + drv
    }

    /// Packets of (port, queue) that were queued, then purged when the
    /// carrier went (`dev_deactivate` resetting the qdisc).
    fn carrier_purged(&self, p: usize, q: u16) -> u64 {
        self.snaps
            .iter()
            .find(|s| s.port as usize == p && s.queue == q)
            .map_or(0, |s| s.counters.carrier_purged)
    }
}

/// Where a stream's offered packets were dropped, and whether that is exact.
struct Drops {
    dropped: StreamDrops,
    /// Bytes of the admission drops (known exactly).
    admission_bytes: u64,
    exact: bool,
    notes: Vec<String>,
}

/// A socket stream's losses after its datagrams were taken: the stack's
/// neighbour queue (no ARP answer, queue full) and the netdev admission of
/// its staged frames — attributable only when it is the port's one socket stream.
fn socket_drops(s: &Stream, plan: &RunPlan, g: &Gathered, offered: u64, d: &mut Drops) {
    let sharing = plan
        .streams
        .iter()
        .filter(|o| o.port == s.port && o.mode == StreamMode::Socket)
        .count();
    let Some(x) = g.stacks.iter().find(|x| x.port == s.port) else {
        return;
    };
    let n = &x.snmp.neigh;
    let lost =
        n.unres_discards + n.failed_drops + n.queued_tx_drops + x.staged_dropped + x.neigh_held;
    if sharing == 1 {
        d.dropped.stack = lost.min(offered);
    } else if lost > 0 {
        d.exact = false;
        d.notes.push(format!(
            "{lost} frames lost in port {}'s stack, shared by {sharing} socket streams: not attributed",
            s.port
        ));
    }
}

/// A raw or replay stream's drops after queueing, on the queues it fed —
/// attributable when it is the queue's only feeder.
fn queued_drops(s: &Stream, plan: &RunPlan, out: &Outcome, g: &Gathered, d: &mut Drops) {
    let has_stack = g.stacks.iter().any(|x| x.port == s.port);
    let mut qs: Vec<u16> = plan.counters[s.index]
        .iter()
        .filter_map(|c| c.queue.get().checked_sub(1).map(|q| q as u16))
        .collect();
    qs.sort_unstable();
    qs.dedup();
    for q in qs {
        let n = g.late(out, s.port, q);
        let c = g.carrier_purged(s.port, q);
        if n + c == 0 {
            continue;
        }
        if g.feeders.get(&(s.port, q)) == Some(&1) && !has_stack {
            d.dropped.after_queue += n;
            d.dropped.carrier += c;
        } else {
            d.exact = false;
            d.notes.push(format!(
                "{} frames dropped after queueing on txq {q}, which other senders share: not attributed",
                n + c
            ));
        }
    }
}

/// Of a stream's admission drops, those refused for want of carrier.
fn carrier_refused(cs: &[Arc<SenderCounters>]) -> u64 {
    cs.iter().map(|c| c.carrier_dropped.get()).sum()
}

fn stream_drops(s: &Stream, plan: &RunPlan, out: &Outcome, g: &Gathered, offered: u64) -> Drops {
    let cs = &plan.counters[s.index];
    let carrier = carrier_refused(cs);
    let adm = cs.iter().map(|c| c.dropped.get()).sum::<u64>() - carrier;
    let mut d = Drops {
        dropped: StreamDrops::default(),
        admission_bytes: cs.iter().map(|c| c.dropped_bytes.get()).sum(),
        exact: true,
        notes: Vec::new(),
    };
    let noqueue = g
        .snaps
        .iter()
        .any(|q| q.port as usize == s.port && q.qdisc.kind == "noqueue");
    if noqueue {
        d.dropped.busy = adm;
    } else {
        d.dropped.qdisc = adm;
    }
    d.dropped.carrier = carrier;
    if s.mode == StreamMode::Tcp {
        // TCP retransmits what the stack or the queues lost: nothing is
        // dropped for the stream (retransmissions are in its tcp summary).
    } else if s.mode == StreamMode::Socket {
        socket_drops(s, plan, g, offered, &mut d);
    } else {
        queued_drops(s, plan, out, g, &mut d);
    }
    d
}

/// A stream's first and last burst (TSC).
fn span_tsc(cs: &[Arc<SenderCounters>]) -> (u64, u64) {
    let f = cs
        .iter()
        .map(|c| c.first_tsc.get())
        .filter(|v| *v != 0)
        .min()
        .unwrap_or(0);
    (f, cs.iter().map(|c| c.last_tsc.get()).max().unwrap_or(0))
}

/// A stream's active time: first to last burst plus one mean gap, so N
/// packets at rate R measure as N/R.
fn active_span(cs: &[Arc<SenderCounters>], offered: u64, tsc: Tsc) -> f64 {
    let (f, l) = span_tsc(cs);
    if offered > 1 && l > f {
        tsc.cycles_to_ns(l - f) as f64 / 1e9 * offered as f64 / (offered - 1) as f64
    } else {
        0.0
    }
}

/// Latency and sequence results of a latency stream; `sent` is what left
/// the sender for the port (a packet the driver or the cable then lost is a
/// lost probe).
fn stream_latency(s: &Stream, plan: &RunPlan, g: &Gathered, sent: u64) -> LatencySummary {
    let mut agg = SeqTracker::default();
    for j in 0..plan.counters[s.index].len() {
        if let Some(t) = g.trk.get(&(s.index, j as u8)) {
            agg.merge_counts(t);
        }
    }
    let received = agg.unique + agg.late;
    LatencySummary {
        ns: Percentiles::of(&g.lat[s.index]),
        sent,
        received,
        lost: sent.saturating_sub(received),
        duplicates: agg.duplicates,
        reordered: agg.reordered,
        late: agg.late,
    }
}

/// The stream's rate as given: one rate, or its profile, or its shape.
fn rate_target(s: &Stream) -> String {
    let mut t = match (s.profile.first(), s.profile.last()) {
        (Some((_, a)), Some((end, b))) if s.profile.len() > 1 => {
            format!(
                "{} → {} over {end} s (a profile)",
                a.describe(),
                b.describe()
            )
        }
        _ => s.rate.describe(),
    };
    if s.burst > 0 {
        t += &format!(
            " in bursts of {} ({} bursts, {} ms apart)",
            s.burst,
            if s.bursts == 0 {
                "unlimited".to_string()
            } else {
                s.bursts.to_string()
            },
            s.burst_gap_ns as f64 / 1e6
        );
    }
    if s.on_ns > 0 {
        t += &format!(
            " for {} ms of every {} ms",
            s.on_ns as f64 / 1e6,
            (s.on_ns + s.off_ns) as f64 / 1e6
        );
    }
    t
}

/// Why a stream is flagged: nothing delivered, a missed target, drops,
/// refused sends, and the notes on what could not be attributed.
fn stream_flags(ss: &StreamSummary, notes: Vec<String>) -> Vec<String> {
    let mut flags = Vec::new();
    if ss.packets == 0 {
        flags.push("DELIVERED NOTHING".to_string());
    }
    if let (true, Some(e)) = (ss.rate_miss, ss.rate_error) {
        flags.push(format!("MISSED the target by {:.2}%", e * 100.0));
    }
    if ss.dropped.total() > 0 {
        flags.push(format!(
            "DROPPED {} of {} offered",
            ss.dropped.total(),
            ss.offered
        ));
    }
    if ss.send_errors > 0 {
        flags.push(format!("{} sends refused by the stack", ss.send_errors));
    }
    if let Some(t) = &ss.tcp {
        if t.failed > 0 {
            flags.push(format!(
                "{} of {} TCP connections failed ({})",
                t.failed,
                t.connections,
                t.first_error.as_deref().unwrap_or("?")
            ));
        }
        if t.bytes_asked > 0 && t.bytes_acked < t.bytes_asked {
            flags.push(format!(
                "TCP: {} of {} bytes acknowledged",
                t.bytes_acked, t.bytes_asked
            ));
        }
    }
    flags.extend(notes);
    flags
}

fn stream_summary(s: &Stream, plan: &RunPlan, out: &Outcome, g: &Gathered) -> StreamSummary {
    let cs = &plan.counters[s.index];
    let offered: u64 = cs.iter().map(|c| c.packets.get()).sum();
    let offered_bytes: u64 = cs.iter().map(|c| c.bytes.get()).sum();
    let d = stream_drops(s, plan, out, g, offered);
    let dropped = d.dropped;
    // Bytes of the later drops: the stream's mean frame size.
    let later = dropped.after_queue + dropped.stack + (dropped.carrier - carrier_refused(cs));
    let mean = offered_bytes.checked_div(offered).unwrap_or(0);
    let packets = offered.saturating_sub(dropped.total());
    let bytes = offered_bytes.saturating_sub(d.admission_bytes + later * mean);
    let span = active_span(cs, offered, out.tsc);
    let per_s = |x: f64| if span > 0.0 { x / span } else { 0.0 };
    let pps = per_s(packets as f64);
    let control = super::steered::changes(s, &out.control, out.start_tsc, out.tsc);
    let target = if control.is_empty() {
        plan.targets[s.index]
    } else {
        let (f, l) = span_tsc(cs);
        super::steered::mean_target(s, plan, &out.control, f, l)
    };
    let err = target.map(|t| if t > 0.0 { (pps - t).abs() / t } else { 0.0 });
    let errors = out
        .report
        .lcores
        .iter()
        .flat_map(|l| l.app.send_errors.iter())
        .filter(|e| e.0 == s.index);
    let sent =
        offered.saturating_sub(dropped.qdisc + dropped.busy + dropped.stack + carrier_refused(cs));
    let mut ss = StreamSummary {
        name: s.name.clone(),
        mode: format!("{:?}", s.mode).to_lowercase(),
        port: s.port,
        sizes: match s.mode {
            StreamMode::Pcap => "pcap frames".to_string(),
            StreamMode::Socket => format!("{} datagrams", s.sizes.describe()),
            StreamMode::Tcp => format!("TCP segments, {} writes", s.sizes.describe()),
            _ => s.sizes.describe(),
        },
        rate_target: if control.is_empty() {
            rate_target(s)
        } else {
            format!(
                "{}, then steered live ({})",
                rate_target(s),
                control.join(", ")
            )
        },
        target_pps: target,
        achieved_pps: pps,
        achieved_l2_bps: per_s((bytes + 4 * packets) as f64 * 8.0),
        achieved_l1_bps: per_s((bytes + 24 * packets) as f64 * 8.0),
        rate_error: err,
        rate_miss: err.is_some_and(|e| e > 0.005),
        packets,
        bytes,
        offered,
        offered_bytes,
        dropped,
        exact: d.exact,
        flags: Vec::new(),
        active_s: span,
        interval_pps: IntervalRates::of(&out.mon.stream_pps[s.index]),
        interval_l2_bps: IntervalRates::of(&out.mon.stream_bps[s.index]),
        latency: s.latency.then(|| stream_latency(s, plan, g, sent)),
        send_errors: errors.clone().map(|e| e.1).sum(),
        last_send_error: errors.map(|e| e.2.clone()).next(),
        tcp: TcpSummary::of(s, out),
        control,
    };
    ss.flags = stream_flags(&ss, d.notes);
    ss
}

/// One port's row and its conservation check: every packet offered to its
/// queues is on the wire or in exactly one drop counter, and the queues saw
/// at least what the streams and stacks offered.
fn port_summary(
    pi: usize,
    plan: &RunPlan,
    out: &Outcome,
    g: &Gathered,
    streams: &[StreamSummary],
) -> (PortSummary, Option<String>) {
    let pr = &out.report.ports[pi];
    let st = &pr.stats;
    let info = &plan.ports[pi].info;
    let mine = || g.snaps.iter().filter(move |q| q.port as usize == pi);
    let netdev_drops: u64 = mine().map(|q| q.counters.drops()).sum();
    let offered: u64 = mine().map(|q| q.counters.offered).sum();
    // Raw and pcap streams hand their frames to the queues themselves;
    // socket streams go through the stack, whose staged frames count too.
    let from_streams: u64 = plan
        .streams
        .iter()
        .zip(streams)
        .filter(|(s, _)| s.port == pi && !s.mode.via_stack())
        .map(|(_, ss)| ss.offered)
        .sum::<u64>()
        + g.stacks
            .iter()
            .filter(|x| x.port == pi)
            .map(|x| x.staged_offered)
            .sum::<u64>();
    let conserved = offered == st.tx.packets + st.tx.drops + st.tx.errors + netdev_drops
        && offered >= from_streams;
    let failure = (!conserved).then(|| format!(
        "port {}: not conserved: {offered} offered to its queues ({from_streams} by the streams and stacks), {} transmitted + {} driver drops + {} errors + {netdev_drops} netdev drops",
        out.port_names[pi], st.tx.packets, st.tx.drops, st.tx.errors
    ));
    let queues = st
        .tx_queues
        .iter()
        .enumerate()
        .map(|(q, c)| {
            let snap = mine().find(|s| s.queue as usize == q);
            QueueSummary {
                queue: q as u16,
                packets: c.packets,
                bytes: c.bytes,
                errors: c.errors,
                drops: c.drops,
                qdisc: snap.map(|s| s.qdisc.clone()),
                bql: snap.map(|s| s.bql),
                netdev: snap.map(|s| s.counters),
            }
        })
        .collect();
    let row = PortSummary {
        spec: out.port_names[pi].clone(),
        driver: info.driver.to_string(),
        tx_packets: st.tx.packets,
        tx_bytes: st.tx.bytes,
        tx_errors: st.tx.errors,
        tx_drops: st.tx.drops + netdev_drops,
        rx_packets: st.rx.packets,
        link_up: pr.link.up,
        link_speed_mbps: pr.link.speed_mbps,
        line_rate_bps: info.line_rate_bps,
        offloads: wirespeed::ethdev::offload_names(plan.ports[pi].offloads),
        offered,
        conserved,
        interval_pps: IntervalRates::of(&out.mon.port_pps[pi]),
        interval_l2_bps: IntervalRates::of(&out.mon.port_bps[pi]),
        queues,
        xstats: pr.xstats.iter().cloned().collect(),
    };
    (row, failure)
}

fn lcore_summary(l: &LcoreReport<LcoreResult>) -> LcoreSummary {
    LcoreSummary {
        lcore: l.lcore,
        core: l.core,
        packets: l.app.packets,
        busy_cycles: l.app.busy_cycles,
        cycles_per_packet: if l.app.packets > 0 {
            l.app.busy_cycles as f64 / l.app.packets as f64
        } else {
            0.0
        },
        alloc_failures: l.app.alloc_failures,
        mempool_in_use_at_end: l.app.in_use_at_end + l.pool.in_use,
        rx_packets: l.rx_packets,
        rx_latency: l.app.rx_latency,
        rx_other: l.app.rx_other,
        steered_out: l.app.steer.steered_out,
        steered_in: l.app.steer.steered_in,
        steer_drops: l.app.steer.steer_drops,
        polls: l.polls,
    }
}

/// The run's summary from its plan and what it produced.
pub fn summarize(plan: &RunPlan, out: &Outcome) -> Summary {
    let g = Gathered::new(plan, out);
    let streams: Vec<StreamSummary> = plan
        .streams
        .iter()
        .map(|s| stream_summary(s, plan, out, &g))
        .collect();
    let mut ports = Vec::new();
    let mut events = Vec::new();
    let mut failures = Vec::new();
    for (pi, pr) in out.report.ports.iter().enumerate() {
        let (row, failure) = port_summary(pi, plan, out, &g, &streams);
        failures.extend(failure);
        ports.push(row);
        events.extend(pr.events.iter().map(|e| format!("{}: {e}", pr.name)));
        if pi == 0 {
            events.extend(
                out.report
                    .lcores
                    .iter()
                    .flat_map(|l| l.events.iter().cloned()),
            );
        }
    }
    for st in streams.iter().filter(|st| st.packets == 0) {
        failures.push(format!(
            "stream {}: delivered nothing ({} offered)",
            st.name, st.offered
        ));
    }
    let (packets, bytes) = ports
        .iter()
        .fold((0, 0), |a, p| (a.0 + p.tx_packets, a.1 + p.tx_bytes));
    let drops = ports.iter().map(|p| p.tx_drops + p.tx_errors).sum();
    let lp: u64 = out.report.lcores.iter().map(|l| l.app.packets).sum();
    let busy: u64 = out.report.lcores.iter().map(|l| l.app.busy_cycles).sum();
    // The whole run, start to end: a socket run whose datagrams left in a
    // burst (or never) still lasted its seconds.
    let span = out.elapsed.max(1e-9);
    Summary {
        packets_sent: packets,
        bytes_sent: bytes,
        duration_s: span,
        mpps: packets as f64 / span / 1e6,
        l2_gbps: (bytes + 4 * packets) as f64 * 8.0 / span / 1e9,
        l1_gbps: (bytes + 24 * packets) as f64 * 8.0 / span / 1e9,
        drops,
        cycles_per_packet: if lp > 0 { busy as f64 / lp as f64 } else { 0.0 },
        tsc_hz: out.tsc.hz(),
        streams,
        ports,
        lcores: out.report.lcores.iter().map(lcore_summary).collect(),
        events,
        stacks: g
            .stacks
            .iter()
            .map(|x| StackSummary {
                port: x.port,
                addr: x.addr.clone(),
                snmp: x.snmp,
            })
            .collect(),
        failures,
        latency_hists: plan
            .streams
            .iter()
            .filter(|s| s.latency)
            .map(|s| (s.name.clone(), g.lat[s.index].clone()))
            .collect(),
    }
}

/// The speed part of a port's summary line: `1000 Mbit/s`, or `no line
/// rate` for an up link without one (software ports, an unlimited model).
fn link_speed_text(up: bool, mbps: u32) -> String {
    match (up, mbps) {
        (true, 0) => "no line rate".into(),
        (_, m) => format!("{m} Mbit/s"),
    }
}

/// A stream's lines: what it offered, sent and dropped, its flags, its
/// interval rates and latency.
fn print_stream(st: &StreamSummary) {
    let d = &st.dropped;
    let drops: Vec<String> = [
        ("qdisc", d.qdisc),
        ("driver queue stopped", d.busy),
        ("after queueing", d.after_queue),
        ("in the stack", d.stack),
        ("no carrier", d.carrier),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{n} {what}"))
    .collect();
    println!(
        "  stream {} ({}, {}) → port {}: offered {}, sent {}{}, dropped {}{}; target {}; achieved {}pps, L2 {}bit/s, L1 {}bit/s{}",
        st.name,
        st.mode,
        st.sizes,
        st.port,
        st.offered,
        if st.exact { "" } else { "≤ " },
        st.packets,
        d.total(),
        if drops.is_empty() { String::new() } else { format!(" ({})", drops.join(", ")) },
        st.rate_target,
        si(st.achieved_pps),
        si(st.achieved_l2_bps),
        si(st.achieved_l1_bps),
        match (st.rate_error, st.rate_miss) {
            (Some(e), false) => format!("  (within {:.3}% of target)", e * 100.0),
            _ => String::new(),
        }
    );
    for f in &st.flags {
        println!("    FLAG: {f}");
    }
    let r = &st.interval_pps;
    println!(
        "    interval pps: min {} p50 {} p99 {} p99.9 {} max {}",
        si(r.min as f64),
        si(r.p50 as f64),
        si(r.p99 as f64),
        si(r.p999 as f64),
        si(r.max as f64)
    );
    if let Some(t) = &st.tcp {
        println!(
            "    tcp: {} of {} connections established (connect µs p50 {} p99 {} max {}), {} bytes acknowledged, goodput {}bit/s, {} segments out, {} retransmitted",
            t.established,
            t.connections,
            t.connect_us.p50,
            t.connect_us.p99,
            t.connect_us.max,
            t.bytes_acked,
            si(t.goodput_bps),
            t.segs_out,
            t.retrans_segs
        );
    }
    if let Some(l) = &st.latency {
        let us = |ns: u64| ns as f64 / 1e3;
        println!(
            "    latency µs: min {:.2} p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; received {}/{} lost {} dup {} reordered {}",
            us(l.ns.min),
            us(l.ns.p50),
            us(l.ns.p99),
            us(l.ns.p999),
            us(l.ns.max),
            l.received,
            l.sent,
            l.lost,
            l.duplicates,
            l.reordered
        );
    }
}

/// A port's line and one line per TX queue (driver, qdisc, BQL).
fn print_port(p: &PortSummary) {
    println!(
        "  port {} [{}] link {} {}, offloads {}: tx {} pkts {} bytes, errors {}, drops {}, rx {} pkts{}",
        p.spec,
        p.driver,
        if p.link_up { "up" } else { "down" },
        link_speed_text(p.link_up, p.link_speed_mbps),
        p.offloads,
        p.tx_packets,
        p.tx_bytes,
        p.tx_errors,
        p.tx_drops,
        p.rx_packets,
        if p.conserved { "" } else { "  NOT CONSERVED: offered packets missing from the counters" }
    );
    for q in &p.queues {
        let mut line = format!(
            "    txq {}: {} pkts {} bytes, errors {}, drops {}",
            q.queue, q.packets, q.bytes, q.errors, q.drops
        );
        if let (Some(qd), Some(c)) = (&q.qdisc, &q.netdev) {
            line.push_str(&format!(
                "; qdisc {} sent {}p dropped {} requeues {} backlog {}p; xoff stack {} drv {}",
                qd.kind,
                qd.sent_packets,
                qd.dropped,
                qd.requeues,
                qd.backlog_packets,
                c.stack_xoff,
                c.drv_xoff
            ));
        }
        if let Some(b) = q.bql.as_ref().filter(|b| b.enabled) {
            line.push_str(&format!("; bql limit {} inflight {}", b.limit, b.inflight));
        }
        println!("{line}");
    }
}

/// Prints the final table.
pub fn print_summary(s: &Summary) {
    println!(
        "wirespeed gen: {} packets, {} bytes in {:.3} s = {:.3} Mpps, L2 {:.3} Gbit/s, L1 {:.3} Gbit/s, {:.1} cycles/packet, drops {}",
        s.packets_sent, s.bytes_sent, s.duration_s, s.mpps, s.l2_gbps, s.l1_gbps, s.cycles_per_packet, s.drops
    );
    s.streams.iter().for_each(print_stream);
    s.ports.iter().for_each(print_port);
    for st in s.streams.iter().filter(|st| st.send_errors > 0) {
        println!(
            "  stream {}: {} sends refused by the stack ({})",
            st.name,
            st.send_errors,
            st.last_send_error.as_deref().unwrap_or("")
        );
    }
    for x in &s.stacks {
        println!(
            "  port {} stack {} counters (/proc/net/snmp):",
            x.port, x.addr
        );
        for line in x.snmp.to_proc_text().lines() {
            println!("    {line}");
        }
    }
    for e in &s.events {
        println!("  event: {e}");
    }
    for l in &s.lcores {
        println!(
            "  lcore {} (core {}): {} pkts, {:.1} cycles/packet, alloc failures {}, mbufs in use at end {}",
            l.lcore, l.core, l.packets, l.cycles_per_packet, l.alloc_failures, l.mempool_in_use_at_end
        );
    }
}
