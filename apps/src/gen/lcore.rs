//! The generator as a runtime application ([`LcoreApp`]): on each lcore, its
//! senders (a stream's share on this lcore, each with a packet builder, a
//! mempool prebuilt with the stream's frame and a TSC-deadline pacer) hand
//! bursts to the lcore's netdev queues (qdisc, BQL) sized by the queue's room,
//! and RX returns are matched to their latency headers.
//!
//! A port with an address has a stack on every lcore, each a replica of the
//! port's one [`ControlPlane`]: a socket stream's senders run on all of the
//! stream's lcores (each its own socket and source port), an ARP reply any
//! lcore receives resolves the neighbour for all, and a UDP or TCP segment
//! received on one lcore's queue for another lcore's socket is steered there
//! ([`wirespeed::runtime::steer`], RFS-like).

use super::gate::{Command, GateState, StreamGate};
use super::live::StackLive;
use super::measure::{latency_histogram, LatencyRx, SeqTracker};
use super::pacer::Pacer;
use super::shape::Shape;
use super::source::{FillCx, RawSource, ReplaySource, SocketSource, Source, TcpResult, TcpSource};
use crate::config::{PortIp, Stream, StreamMode};
use hdrhistogram::Histogram;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wirespeed::eal::Tsc;
use wirespeed::ethdev::pcap::PcapRecord;
use wirespeed::ethdev::{MacAddr, StatCounter};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::netdev::XmitOutcome;
use wirespeed::runtime::staged::{staged, StagedTx};
use wirespeed::runtime::steer::{SteerRings, SteerStats, Steerer};
use wirespeed::runtime::{LcoreApp, LcoreCtx};
use wirespeed::stack::shared::ControlPlane;
use wirespeed::stack::{NudState, PortConf, RouteConf, SnmpSnapshot, Stack, StackConfig};

/// Seconds a queue may take nothing while a sender waits before the run is
/// ended as stalled: two periods of the netdev TX watchdog (Linux's
/// `watchdog_timeo`, 5 s) and a margin, so the watchdog gets to reset the
/// queue first and this only ends runs it could not recover.
pub const TX_STALL_S: u64 = 12;

/// Counters one sender publishes (single writer: its lcore).
///
/// `packets`/`bytes` are what the sender offered to the port (handed to
/// `dev_queue_xmit`, or for a socket stream, datagrams the socket took);
/// `dropped`/`dropped_bytes` the part the netdev layer refused on the spot
/// (qdisc tail drop, `noqueue` with the driver queue stopped, or no
/// carrier: `carrier_dropped` says how many of them). What the
/// port then transmitted is worked out per queue at the end of the run.
#[derive(Debug, Default)]
pub struct SenderCounters {
    pub packets: StatCounter,
    /// Frame bytes without FCS.
    pub bytes: StatCounter,
    pub dropped: StatCounter,
    pub dropped_bytes: StatCounter,
    /// Of `dropped`, refused because the link had no carrier.
    pub carrier_dropped: StatCounter,
    /// 1 + the port's TX queue this sender feeds (0 = none yet).
    pub queue: StatCounter,
    /// TSC when the first and last packet went out (0 = not yet).
    pub first_tsc: StatCounter,
    pub last_tsc: StatCounter,
}

impl SenderCounters {
    /// Counts a batch handed to the port at TSC `now`.
    #[inline]
    pub fn record(&self, now: u64, packets: u64, bytes: u64) {
        if self.first_tsc.get() == 0 {
            self.first_tsc.set(now);
        }
        self.last_tsc.set(now);
        self.packets.add(packets);
        self.bytes.add(bytes);
    }

    /// Counts the part of a batch the netdev layer dropped on admission.
    #[inline]
    pub fn record_drops(&self, out: &XmitOutcome) {
        if out.dropped > 0 {
            self.dropped.add(out.dropped as u64);
            self.dropped_bytes.add(out.dropped_bytes);
            if out.carrier_dropped > 0 {
                self.carrier_dropped.add(out.carrier_dropped as u64);
            }
        }
    }
}

/// What one lcore sends for one stream.
#[derive(Clone)]
pub struct SenderPlan {
    pub stream: usize,
    /// Packets for this lcore (u64::MAX = unlimited).
    pub quota: u64,
    /// This lcore's share of the stream's rate.
    pub share: f64,
    /// Stable sender id (goes into the latency header as the lcore byte).
    pub sender_id: u8,
    /// How many senders the stream has (a TCP stream's connections are
    /// dealt out over them: connection `i` to sender `i % senders`).
    pub senders: u8,
    pub counters: Arc<SenderCounters>,
    pub offload: bool,
    pub line_bps: u64,
}

/// An interval latency histogram sent to the monitor.
pub struct LatencyInterval {
    pub stream: usize,
    pub start_tsc: u64,
    pub end_tsc: u64,
    pub hist: Histogram<u64>,
}

/// One destination `--arp` resolves.
#[derive(Debug, Clone)]
pub struct ArpEntry {
    pub port: usize,
    /// The streams' destination …
    pub dst: Ipv4Addr,
    /// … and the address ARP asks for: the destination when it is on the
    /// port's link, else the port's gateway.
    pub next_hop: Ipv4Addr,
    pub mac: Option<MacAddr>,
}

/// ARP resolution shared by the lcores (`--arp`): the main lcore resolves
/// through its ports' stacks (the engine's neighbour table), the others
/// wait for the answers before building their frames.
pub struct ArpShared {
    pub entries: Mutex<Vec<ArpEntry>>,
    pub port_macs: Vec<MacAddr>,
    pub done: AtomicBool,
    pub failed: Mutex<Option<String>>,
}

/// Run-wide state every lcore reads.
pub struct RunParams {
    pub streams: Vec<Stream>,
    pub burst: usize,
    pub pool_size: u32,
    /// Run deadline in TSC cycles after the common start (None = none).
    pub run_cycles: Option<u64>,
    /// Lcores count themselves ready here once their pools are built …
    pub ready: AtomicUsize,
    /// … and the monitor then sets the common start (TSC; 0 = not yet).
    pub start: AtomicU64,
    /// Lcores that still have packets to send.
    pub sending: AtomicUsize,
    /// Lcores not yet in `finish` (still receiving, so still steering
    /// segments to the others): each drains its steer rings only once
    /// this is 0, so no segment is left in a ring.
    pub receiving: AtomicUsize,
    pub replay: Vec<Option<Arc<Vec<PcapRecord>>>>,
    pub hlog_interval_cycles: u64,
    /// Per lcore index: what it sends.
    pub plans: Vec<Vec<SenderPlan>>,
    pub arp: Option<Arc<ArpShared>>,
    pub lat_tx: Mutex<std::sync::mpsc::Sender<LatencyInterval>>,
    /// Per port: its protocol stack, when it has an address (a replica on
    /// every lcore).
    pub stacks: Vec<Option<StackSetup>>,
    /// Per port with a stack: the control plane its replicas share …
    pub cps: Vec<Option<Arc<ControlPlane>>>,
    /// … and the rings that hand a received segment to the lcore whose
    /// socket holds its port (with two or more lcores).
    pub steer_rings: Vec<Option<SteerRings>>,
    /// How long the lcores keep receiving after the last send when frames
    /// come back (latency probes, a receiving port), in TSC cycles.
    pub return_grace_cycles: u64,
    /// Per stream: its senders not yet done (a chained stream starts when
    /// its predecessor's count reaches 0).
    pub stream_left: Vec<AtomicUsize>,
    /// Per stream: what the control socket told it (pause, stop, rate).
    pub gates: Vec<StreamGate>,
    /// The stacks' tables, published by each lcore when the control socket asks.
    pub stack_live: StackLive,
}

/// What a port's stack is built from.
#[derive(Debug, Clone)]
pub struct StackSetup {
    pub ip: PortIp,
    pub mac: MacAddr,
    pub mtu: u32,
    pub tx_offloads: u32,
    /// The port does not ARP (the loopback).
    pub noarp: bool,
    /// `[[port.neigh]]`: permanent entries.
    pub neighbours: Vec<(Ipv4Addr, MacAddr)>,
    /// `[[port.route]]`, `[[rule]]`, `[port.neigh_parms]`, `wmem_max`,
    /// `force_igmp_version`.
    pub routing: crate::netconf::PortRouting,
}

/// One port's stack at the end of the run.
#[derive(Debug, Clone)]
pub struct StackResult {
    pub port: usize,
    pub addr: String,
    pub snmp: SnmpSnapshot,
    /// Frames the stack handed to the port's netdev queues, and those the
    /// netdev layer dropped on admission.
    pub staged_offered: u64,
    pub staged_dropped: u64,
    /// Frames still waiting for ARP in neighbour queues when the run ended
    /// (dropped with the stack).
    pub neigh_held: u64,
}

/// What each lcore reports at the end.
pub struct LcoreResult {
    /// TSC when the lcore finished (after the runtime's drain).
    pub end_tsc: u64,
    pub packets: u64,
    pub busy_cycles: u64,
    pub alloc_failures: u64,
    pub in_use_at_end: u64,
    /// Per stream: total latency histogram.
    pub latency: Vec<Histogram<u64>>,
    /// Per (stream, sender id): sequence accounting.
    pub trackers: Vec<((usize, u8), SeqTracker)>,
    pub rx_latency: u64,
    /// Received frames no stream or stack took (counted, freed).
    pub rx_other: u64,
    /// Segments steered to and from the other lcores' sockets, over the ports.
    pub steer: SteerStats,
    /// Socket sends that failed (no route, neighbour failed, …), per stream.
    pub send_errors: Vec<(usize, u64, String)>,
    /// TCP streams sent from this lcore: what each did.
    pub tcp: Vec<(usize, TcpResult)>,
    /// Each port's stack replica on this lcore: its /proc/net/snmp counters
    /// and what its staged `dev_queue_xmit` offered to and lost in the
    /// netdev queues.
    pub stacks: Vec<StackResult>,
    pub error: Option<String>,
}

struct StreamSender {
    plan: SenderPlan,
    port: usize,
    src: Option<Source>,
    pool: Mempool,
    pacer: Pacer,
    /// Bursts and on/off windows over the pacer.
    shape: Shape,
    pending: Burst,
    remaining: u64,
    start: u64,
    stop: Option<u64>,
    done: bool,
    /// Its being done was counted in `RunParams::stream_left`.
    reported: bool,
    /// Waiting for this stream to end before starting (`after`).
    waiting: Option<usize>,
    /// The next step of the stream's rate profile.
    profile_idx: usize,
    /// The queue (or socket) had no room for a due packet this round.
    blocked: bool,
    /// TSC since when it has been blocked without a break (0 = not).
    blocked_since: u64,
    /// The gate's sequence last applied, and what it said.
    gate_seq: u64,
    paused: bool,
    /// TSC of the pause (for a replay's original gaps).
    paused_at: u64,
    /// A rate the control socket set (over the config's and its profile).
    rate_override: Option<crate::config::Rate>,
}

#[derive(PartialEq, Eq)]
enum Phase {
    /// (--arp) resolving destinations.
    Resolving,
    /// Built and counted ready; waiting for the common start.
    Ready,
    Running,
}

/// One lcore's generator.
pub struct GenApp {
    p: Arc<RunParams>,
    tsc: Tsc,
    index: usize,
    phase: Phase,
    senders: Vec<StreamSender>,
    latency: Vec<Histogram<u64>>,
    /// The receive half of latency: histograms and sequence trackers.
    lat_rx: LatencyRx,
    interval_start: u64,
    any_latency: bool,
    /// Some stream's frames come back to a port of the run.
    any_return: bool,
    rx_other: u64,
    tally: Tally,
    start_tsc: u64,
    finished_sending: bool,
    all_done_at: u64,
    /// Per port: this lcore's replica of its stack and its staged TX …
    stacks: Vec<Option<(Stack, StagedTx)>>,
    /// … and its side of the steering (with two or more lcores).
    steer: Vec<Option<Steerer>>,
    last_timers: u64,
    error: Option<String>,
}

impl GenApp {
    /// Builds the lcore's senders (called on the lcore by the runtime).
    pub fn new(ctx: &mut LcoreCtx, p: Arc<RunParams>) -> Result<GenApp, String> {
        let tsc = Tsc::global();
        let index = ctx.lcore().index;
        let senders = senders(ctx, &p, tsc)?;
        let ns = p.streams.len();
        let any_latency = p.streams.iter().any(|s| s.latency);
        let any_return = p.streams.iter().any(|s| s.latency || s.rx_port != s.port);
        let mut stacks = Vec::new();
        let mut steer = Vec::new();
        let now_ns = tsc.cycles_to_ns(tsc.now());
        for (pi, setup) in p.stacks.iter().enumerate() {
            let Some(su) = setup else {
                stacks.push(None);
                steer.push(None);
                continue;
            };
            let (mut st, tx) = build_stack(pi, su, ctx.lcore().core, index)?;
            if let Some(cp) = &p.cps[pi] {
                st.join(cp.clone()).map_err(|e| format!("port {pi}: {e}"))?;
            }
            let replica = st.control_plane().map(|(_, id)| id);
            steer.push(match (replica, &p.steer_rings[pi]) {
                (Some(id), Some(r)) if id < r.replicas() => Some(Steerer::new(id, r.replicas())),
                _ => None,
            });
            if index == 0 {
                // One gratuitous ARP for the port, not one per replica.
                st.start(now_ns);
            } else {
                st.poll_timers(now_ns);
            }
            stacks.push(Some((st, tx)));
        }
        let mut app = GenApp {
            stacks,
            steer,
            last_timers: 0,
            tsc,
            index,
            phase: Phase::Resolving,
            senders,
            latency: (0..ns).map(|_| latency_histogram()).collect(),
            lat_rx: LatencyRx::new(p.streams.iter().map(|s| s.latency).collect(), tsc),
            interval_start: 0,
            any_latency,
            any_return,
            rx_other: 0,
            tally: Tally::default(),
            start_tsc: 0,
            finished_sending: false,
            all_done_at: 0,
            error: None,
            p,
        };
        if app.p.arp.is_none() {
            app.build()?;
        }
        Ok(app)
    }

    /// Builds the packet sources (after ARP, when asked) and counts the lcore ready.
    fn build(&mut self) -> Result<(), String> {
        let tsc = self.tsc;
        for s in self.senders.iter_mut() {
            let mut st = self.p.streams[s.plan.stream].clone();
            if let Some(a) = &self.p.arp {
                st.src_mac = a.port_macs[st.port];
                let e = a.entries.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(mac) = e
                    .iter()
                    .find(|x| x.port == st.port && x.dst == st.dst_ip)
                    .and_then(|x| x.mac)
                {
                    st.dst_mac = mac;
                }
            }
            s.src = Some(source_for(s, &st, &self.p, &mut self.stacks, tsc)?);
        }
        self.phase = Phase::Ready;
        self.p.ready.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// `--arp`: lcore 0 asks its ports' stacks for every next hop
    /// (`neigh_event_send`: probes and retries on the stack's timers) until
    /// each is valid or FAILED; the other lcores wait for the answers.
    fn arp_poll(&mut self, ctx: &mut LcoreCtx) {
        let Some(a) = self.p.arp.clone() else { return };
        if a.done.load(Ordering::Acquire) {
            if let Err(e) = self.build() {
                self.fail(ctx, e);
            }
            return;
        }
        if a.failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            ctx.request_stop();
            return;
        }
        if self.index != 0 {
            return;
        }
        self.stack_timers(ctx, self.tsc.now());
        let mut e = a.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut failed = Vec::new();
        for x in e.iter_mut().filter(|x| x.mac.is_none()) {
            let Some((st, tx)) = self.stacks[x.port].as_mut() else {
                failed.push(format!("{} (port {}: no stack)", x.next_hop, x.port));
                continue;
            };
            if st.neighbour_state(0, x.next_hop) == Some(NudState::Failed) {
                failed.push(format!("{} (port {})", x.next_hop, x.port));
                continue;
            }
            x.mac = st.neigh_event_send(0, x.next_hop);
            tx.flush(ctx);
            if let Some(mac) = x.mac {
                eprintln!(
                    "wirespeed gen: ARP: {} is at {mac} (port {})",
                    x.next_hop, x.port
                );
            }
        }
        let all = e.iter().all(|x| x.mac.is_some());
        drop(e);
        if !failed.is_empty() {
            let why = format!(
                "ARP: no reply from {} after the neighbour's probes (is the peer up and on this link?)",
                failed.join(", ")
            );
            *a.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
            self.fail(ctx, why);
        } else if all {
            a.done.store(true, Ordering::Release);
        }
    }

    /// Every poll loop: each stack replica catches up with its control
    /// plane (one load when nothing moved: `Stack::sync`) and takes the
    /// segments other lcores steered to its sockets.
    fn sync_stacks(&mut self) {
        for (pi, x) in self.stacks.iter_mut().enumerate() {
            let Some((st, _)) = x.as_mut() else { continue };
            st.sync();
            if let (Some(sv), Some(rings)) = (self.steer[pi].as_mut(), &self.p.steer_rings[pi]) {
                sv.take(rings, |_, m| st.rx(0, m));
            }
        }
    }

    /// The stacks' timers (ARP retransmits, neighbour states), once a
    /// millisecond, and their staged frames to the queues.
    fn stack_timers(&mut self, ctx: &mut LcoreCtx, now: u64) {
        if self.stacks.is_empty() || now - self.last_timers <= self.tsc.hz() / 1000 {
            return;
        }
        self.last_timers = now;
        let now_ns = self.tsc.cycles_to_ns(now);
        for (st, tx) in self.stacks.iter_mut().flatten() {
            st.poll_timers(now_ns);
            tx.flush(ctx);
        }
        if self.p.stack_live.wanted(self.index) {
            self.publish_stacks();
        }
    }

    /// The control socket asked for the stacks' tables (`stats`): each
    /// port's counters, neighbours and the streams' sockets on this lcore's
    /// replica, built here once per request (the control side adds the
    /// lcores' up).
    #[cold]
    fn publish_stacks(&mut self) {
        let mut out = Vec::new();
        for (pi, x) in self.stacks.iter_mut().enumerate() {
            let Some((st, _)) = x.as_mut() else { continue };
            let addr = self.p.stacks[pi]
                .as_ref()
                .map(|su| format!("{}/{}", su.ip.addr, su.ip.prefix_len))
                .unwrap_or_default();
            let mut socks = Vec::new();
            for s in self.senders.iter().filter(|s| s.port == pi) {
                if let Some(Source::Socket(so)) = &s.src {
                    socks.push(super::live::socket_row(
                        st,
                        so.id(),
                        &self.p.streams[s.plan.stream].name,
                        so.errors,
                    ));
                }
            }
            out.push(serde_json::json!({
                "port": pi,
                "addr": addr,
                "snmp": st.counters(),
                "neigh": st.neighbours(),
                "sockets": socks,
            }));
        }
        self.p.stack_live.publish(self.index, out);
    }

    fn fail(&mut self, ctx: &mut LcoreCtx, why: String) {
        self.error.get_or_insert(why);
        ctx.request_stop_all();
    }

    fn start_senders(&mut self, start_tsc: u64) {
        let tsc = self.tsc;
        self.start_tsc = start_tsc;
        self.interval_start = start_tsc;
        self.tally.last_active = start_tsc;
        for s in self.senders.iter_mut() {
            let st = &self.p.streams[s.plan.stream];
            match st.after {
                // Scheduled when its predecessor ends (see `send_round`).
                Some(a) => {
                    s.waiting = Some(a);
                    s.start = u64::MAX;
                }
                None => s.schedule(st, start_tsc, tsc),
            }
        }
        self.phase = Phase::Running;
    }

    /// One round over the senders: each opens its window, fills and hands
    /// its burst to its queue. Ends the run when a sender cannot go on (its
    /// peer unreachable, its queue stalled).
    fn send_round(&mut self, ctx: &mut LcoreCtx, now: u64) -> bool {
        let mut all_done = true;
        let mut failure = None;
        let hz = self.tsc.hz();
        for s in self.senders.iter_mut() {
            if s.done {
                if !s.reported {
                    s.reported = true;
                    self.p.stream_left[s.plan.stream].fetch_sub(1, Ordering::AcqRel);
                }
                continue;
            }
            all_done = false;
            let st = &self.p.streams[s.plan.stream];
            let gate = &self.p.gates[s.plan.stream];
            let seq = gate.seq();
            if seq != s.gate_seq {
                if let Some(g) = gate.read(seq) {
                    s.gate_seq = seq;
                    s.apply_gate(g, st, now, self.tsc);
                    if s.done {
                        continue;
                    }
                }
            }
            if s.paused {
                s.pacer.hold(now);
                s.blocked = false;
                s.blocked_since = 0;
                continue;
            }
            if let Some(a) = s.waiting {
                if self.p.stream_left[a].load(Ordering::Acquire) > 0 {
                    continue;
                }
                // The stream before it ended: its time starts now.
                s.waiting = None;
                s.schedule(st, now, self.tsc);
            }
            if let Some((off, r)) = st.profile.get(s.profile_idx) {
                let at = s
                    .start
                    .saturating_add(self.tsc.ns_to_cycles((off * 1e9) as u64));
                if now >= at {
                    // The profile's next rate from now on (no credit carried).
                    s.pacer = Pacer::new(r, s.plan.share, hz, s.plan.line_bps, now);
                    s.profile_idx += 1;
                }
            }
            let Some(local) = s.open_window(ctx, now) else {
                continue;
            };
            // Back-pressure: never offer more than the queue can take for
            // this stream's priority (its qdisc band: room there does not
            // depend on BQL's or the driver's XOFF).
            let room = ctx.tx_queue(s.port, local).tx_room(st.priority);
            s.blocked = room == 0;
            let allow = s.shape.allow(now, s.start);
            if allow == 0 {
                s.pacer.hold(now);
            }
            let before = s.remaining;
            if s.pending.is_empty() && room > 0 && allow > 0 {
                let want = (self.p.burst.min(room) as u64).min(s.remaining).min(allow) as usize;
                let why = s.fill(
                    ctx,
                    &mut self.stacks,
                    st,
                    self.tsc,
                    &mut self.tally,
                    now,
                    want,
                );
                failure = failure.or(why);
            }
            if !s.pending.is_empty() && room > 0 {
                s.hand_over(ctx, local, room, now, &mut self.tally);
            }
            if !s.shape.is_none() {
                s.shape.sent(before - s.remaining, now);
                if s.shape.finished() && s.pending.is_empty() {
                    // The last burst went out.
                    s.done = true;
                }
            }
            if s.remaining == 0 && s.pending.is_empty() {
                s.done = true;
            }
            if failure.is_none() && s.stalled(now, hz) {
                failure = Some(stall_report(ctx, s, st));
            }
        }
        if let Some(why) = failure {
            self.fail(ctx, why);
        }
        all_done
    }

    fn flush_interval(&mut self, now: u64) {
        let tx = self
            .p
            .lat_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (si, fast) in self.lat_rx.interval.iter_mut().enumerate() {
            if !fast.is_empty() {
                // Once an interval: the fast counts into a histogram.
                let mut h = latency_histogram();
                fast.drain_into(&mut h);
                let _ = self.latency[si].add(&h);
                let _ = tx.send(LatencyInterval {
                    stream: si,
                    start_tsc: self.interval_start,
                    end_tsc: now,
                    hist: h,
                });
            }
        }
        self.interval_start = now;
    }
}

impl LcoreApp for GenApp {
    type Summary = LcoreResult;

    fn poll(&mut self, ctx: &mut LcoreCtx) {
        // Ports without an address have no replica: nothing but a None per port.
        self.sync_stacks();
        match self.phase {
            Phase::Resolving => {
                self.arp_poll(ctx);
                return;
            }
            Phase::Ready => {
                let s = self.p.start.load(Ordering::Acquire);
                if s == 0 || self.tsc.now() < s {
                    return;
                }
                self.start_senders(s);
            }
            Phase::Running => {}
        }
        let now = self.tsc.now();
        if let Some(c) = self.p.run_cycles {
            if now >= self.start_tsc + c {
                // The run's time is up: every sender is done, and the lcore
                // ends as when the counts are sent (returns still in flight
                // get their grace period).
                for s in self.senders.iter_mut() {
                    s.done = true;
                }
            }
        }
        self.stack_timers(ctx, now);
        let all_done = self.send_round(ctx, now);
        if self.any_latency
            && now.saturating_sub(self.interval_start) >= self.p.hlog_interval_cycles
        {
            self.flush_interval(now);
        }
        if all_done {
            if !self.finished_sending {
                self.finished_sending = true;
                self.p.sending.fetch_sub(1, Ordering::AcqRel);
            }
            if self.p.sending.load(Ordering::Acquire) == 0 {
                if self.all_done_at == 0 {
                    self.all_done_at = now;
                }
                // A grace period for returns still in flight (latency
                // probes, frames looped to a receiving port on another lcore).
                let grace = if self.any_return {
                    self.p.return_grace_cycles
                } else {
                    0
                };
                if now - self.all_done_at >= grace {
                    ctx.request_stop();
                }
            }
        }
    }

    /// The drain's hook: frames the ports' stacks still stage go to the
    /// queues (ARP replies, ICMP, the last datagrams).
    fn flush_tx(&mut self, ctx: &mut LcoreCtx) -> usize {
        let mut held = 0;
        for (st, tx) in self.stacks.iter_mut().flatten() {
            st.flush();
            tx.flush(ctx);
            held += tx.pending();
        }
        held
    }

    fn on_rx(&mut self, _ctx: &mut LcoreCtx, port: u16, _queue: u16, pkts: &mut Burst) {
        let now = self.tsc.now();
        let pi = port as usize;
        let cp = self.p.cps.get(pi).and_then(|c| c.as_deref());
        let mut steer = self.steer.get_mut(pi).and_then(|s| s.as_mut());
        while let Some(m) = pkts.pop_front() {
            if self.lat_rx.record(m.data(), now) {
                continue;
            }
            match self.stacks.get_mut(pi) {
                Some(Some((st, _))) => {
                    let m = match (steer.as_deref_mut(), cp) {
                        // Another lcore's socket: handed over (RFS-like).
                        (Some(sv), Some(cp)) => match sv.offer(cp, m, 0) {
                            Some(m) => m,
                            None => continue,
                        },
                        _ => m,
                    };
                    st.rx(0, m);
                }
                _ => self.rx_other += 1,
            }
        }
        if let (Some(sv), Some(Some(rings))) = (steer, self.p.steer_rings.get(pi)) {
            sv.flush(rings);
        }
    }

    fn finish(mut self, _ctx: &mut LcoreCtx) -> LcoreResult {
        // Segments still in the rings to this lcore were counted as steered
        // by their senders: taken and handed to the stacks — once every
        // lcore has stopped receiving (and so steering), or after 1 s
        // (an lcore that never reaches its end), so none is left behind.
        self.p.receiving.fetch_sub(1, Ordering::AcqRel);
        if self.p.steer_rings.iter().any(|r| r.is_some()) {
            let t0 = std::time::Instant::now();
            while self.p.receiving.load(Ordering::Acquire) > 0
                && t0.elapsed() < std::time::Duration::from_secs(1)
            {
                std::hint::spin_loop();
            }
        }
        self.sync_stacks();
        if self.phase == Phase::Resolving {
            // Never got going (ARP failed or a stop came first): still count it out.
            self.p.ready.fetch_add(1, Ordering::AcqRel);
        }
        if !self.finished_sending {
            self.p.sending.fetch_sub(1, Ordering::AcqRel);
        }
        let now = self.tsc.now();
        self.flush_interval(now);
        let mut tr = Vec::new();
        for (si, v) in std::mem::take(&mut self.lat_rx.trackers)
            .into_iter()
            .enumerate()
        {
            for (li, t) in v.into_iter().enumerate() {
                if let Some(t) = t {
                    tr.push(((si, li as u8), t));
                }
            }
        }
        let mut in_use = 0;
        for s in self.senders.iter_mut() {
            s.pending.clear();
            in_use += s.pool.stats().in_use;
        }
        if self.error.is_none() {
            if let Some(a) = &self.p.arp {
                self.error = a.failed.lock().unwrap_or_else(|e| e.into_inner()).clone();
            }
        }
        let mut tcp = Vec::new();
        for s in self.senders.iter_mut() {
            if let (Some(Source::Tcp(t)), Some(Some((st, _)))) =
                (s.src.as_mut(), self.stacks.get_mut(s.port))
            {
                tcp.push((s.plan.stream, t.finish(st)));
            }
        }
        let mut send_errors = Vec::new();
        for s in &self.senders {
            if let Some(Source::Socket(so)) = &s.src {
                if so.errors > 0 {
                    send_errors.push((s.plan.stream, so.errors, so.last_error.clone()));
                }
            }
        }
        let stacks: Vec<StackResult> = self
            .stacks
            .iter()
            .enumerate()
            .filter_map(|(pi, x)| x.as_ref().map(|(st, tx)| (pi, st, tx)))
            .map(|(pi, st, tx)| StackResult {
                port: pi,
                addr: self.p.stacks[pi]
                    .as_ref()
                    .map(|su| format!("{}/{}", su.ip.addr, su.ip.prefix_len))
                    .unwrap_or_default(),
                snmp: st.counters(),
                staged_offered: tx.offered,
                staged_dropped: tx.dropped,
                neigh_held: st.neighbours().iter().map(|n| n.queued as u64).sum(),
            })
            .collect();
        LcoreResult {
            end_tsc: self.tsc.now(),
            send_errors,
            stacks,
            packets: self.tally.packets,
            busy_cycles: self.tally.last_active.saturating_sub(self.start_tsc),
            alloc_failures: self.tally.alloc_failures,
            in_use_at_end: in_use,
            latency: std::mem::take(&mut self.latency),
            trackers: tr,
            rx_latency: self.lat_rx.received,
            rx_other: self.rx_other,
            steer: self
                .steer
                .iter()
                .flatten()
                .fold(SteerStats::default(), |mut a, s| {
                    a.steered_out += s.stats.steered_out;
                    a.steered_in += s.stats.steered_in;
                    a.steer_drops += s.stats.steer_drops;
                    a
                }),
            tcp,
            error: self.error.take(),
        }
    }
}

/// The lcore's senders, one per stream share it sends, each with its own
/// pool; paced streams are served before line-rate ones, then by
/// pfifo_fast band (band 0 first): a stream that takes whatever room there
/// is must never keep a paced one out of a queue they share.
fn senders(ctx: &LcoreCtx, p: &RunParams, tsc: Tsc) -> Result<Vec<StreamSender>, String> {
    let mut senders = Vec::new();
    for plan in p.plans[ctx.lcore().index].iter().cloned() {
        let st = &p.streams[plan.stream];
        let pool = Mempool::new(&PoolConfig {
            name: format!("gen-c{}-s{}", ctx.lcore().core, plan.stream),
            size: p.pool_size,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        senders.push(StreamSender {
            port: st.port,
            src: None,
            pool,
            pacer: Pacer::new(&st.rate, plan.share, tsc.hz(), plan.line_bps, 0),
            // A stream's bursts are split over its senders like its rate.
            shape: Shape::new(
                if st.burst == 0 {
                    0
                } else {
                    ((st.burst as f64 * plan.share).round() as u64).max(1)
                },
                st.bursts,
                st.burst_gap_ns,
                st.on_ns,
                st.off_ns,
                tsc.hz(),
            ),
            pending: Burst::new(),
            remaining: plan.quota,
            start: 0,
            stop: None,
            done: plan.quota == 0,
            reported: false,
            waiting: None,
            profile_idx: 0,
            blocked: false,
            blocked_since: 0,
            gate_seq: 0,
            paused: false,
            paused_at: 0,
            rate_override: None,
            plan,
        });
    }
    senders.sort_by_key(|s| {
        let st = &p.streams[s.plan.stream];
        (
            matches!(st.rate, crate::config::Rate::Line),
            wirespeed::netdev::PfifoFast::band_of(st.priority),
        )
    });
    Ok(senders)
}

/// What a sender's lcore counts over the run.
#[derive(Default)]
struct Tally {
    /// Packets handed to the ports (or datagrams the sockets took).
    packets: u64,
    alloc_failures: u64,
    /// TSC of the last round that sent something.
    last_active: u64,
}

impl Tally {
    fn sent(&mut self, n: u64, now: u64) {
        self.packets += n;
        self.last_active = now;
    }
}

impl StreamSender {
    /// Opens the sender's window at `now` (its start, its stop) and returns
    /// the local queue it feeds, or None when it has nothing to do now.
    /// Its start (the stream's `start_delay` after `t0`), stop and pacer.
    fn schedule(&mut self, st: &Stream, t0: u64, tsc: Tsc) {
        self.schedule_at(
            st,
            t0 + tsc.ns_to_cycles((st.start_delay * 1e9) as u64),
            tsc,
        );
    }

    /// As [`StreamSender::schedule`], starting at `start` exactly.
    fn schedule_at(&mut self, st: &Stream, start: u64, tsc: Tsc) {
        self.start = start;
        // The stream's time runs from its scheduled start: a sender that
        // got going late (ARP, a busy port) and caught up in a burst does
        // not look faster than its rate.
        self.plan.counters.first_tsc.set(self.start);
        self.stop = if st.duration > 0.0 {
            Some(self.start + tsc.ns_to_cycles((st.duration * 1e9) as u64))
        } else {
            None
        };
        self.pacer = Pacer::new(
            self.rate_override.as_ref().unwrap_or(&st.rate),
            self.plan.share,
            tsc.hz(),
            self.plan.line_bps,
            self.start,
        );
    }

    /// What the control socket said since the last round (`gate` at
    /// sequence `seq`): pause or resume (no credit carried over the
    /// pause), stop (the stream ends as at its count), start a waiting
    /// stream now, or re-target the pacer from `now` (the profile is over).
    fn apply_gate(&mut self, g: GateState, st: &Stream, now: u64, tsc: Tsc) {
        match g.command {
            Command::Stop => {
                self.done = true;
                self.pending.clear();
                return;
            }
            Command::Pause => {
                if !self.paused {
                    self.paused = true;
                    self.paused_at = now;
                }
            }
            Command::Run => {
                if self.paused {
                    self.paused = false;
                    self.pacer.hold(now);
                    if let Some(Source::Replay(r)) = self.src.as_mut() {
                        r.delay(now - self.paused_at);
                    }
                }
            }
        }
        if g.rate.is_some() && g.rate != self.rate_override {
            self.rate_override = g.rate;
            self.profile_idx = usize::MAX;
            if self.waiting.is_none() {
                self.pacer = Pacer::new(
                    self.rate_override.as_ref().unwrap_or(&st.rate),
                    self.plan.share,
                    tsc.hz(),
                    self.plan.line_bps,
                    now.max(self.start),
                );
            }
        }
        if g.start_now && (self.waiting.is_some() || now < self.start) {
            self.waiting = None;
            self.schedule_at(st, now, tsc);
        }
    }

    fn open_window(&mut self, ctx: &mut LcoreCtx, now: u64) -> Option<usize> {
        if now < self.start {
            return None;
        }
        let nq = ctx.tx_queues(self.port).len();
        if self.stop.is_some_and(|stop| now >= stop) || nq == 0 {
            self.done = true;
            return None;
        }
        let local = self.plan.stream % nq;
        if self.plan.counters.queue.get() == 0 {
            let q = ctx.tx_queue(self.port, local).queue();
            self.plan.counters.queue.set(q as u64 + 1);
        }
        Some(local)
    }

    /// Fills `pending` from the source, or for a socket sends `want`
    /// datagrams through the stack. Returns why the run must end, if so.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        ctx: &mut LcoreCtx,
        stacks: &mut [Option<(Stack, StagedTx)>],
        st: &Stream,
        tsc: Tsc,
        tally: &mut Tally,
        now: u64,
        want: usize,
    ) -> Option<String> {
        let mut cx = FillCx {
            now,
            tsc,
            pool: &mut self.pool,
            pacer: &mut self.pacer,
            remaining: &mut self.remaining,
            start: self.start,
            alloc_failures: &mut tally.alloc_failures,
        };
        match self.src.as_mut() {
            Some(Source::Raw(r)) => r.fill(&mut cx, want, &mut self.pending),
            Some(Source::Replay(r)) => r.fill(&mut cx, want, &mut self.pending),
            Some(Source::Socket(so)) => {
                let Some((stack, tx)) = stacks[self.port].as_mut() else {
                    self.done = true;
                    return None;
                };
                let r = so.send(&mut cx, stack, tx, ctx, want, st);
                self.blocked |= r.blocked;
                if r.sent > 0 {
                    self.plan.counters.record(now, r.sent, r.bytes);
                    self.remaining = self.remaining.saturating_sub(r.sent);
                    tally.sent(r.sent, now);
                }
                if r.unreachable.is_some() {
                    self.done = true;
                }
                return r.unreachable;
            }
            Some(Source::Tcp(t)) => {
                let Some((stack, tx)) = stacks[self.port].as_mut() else {
                    self.done = true;
                    return None;
                };
                let r = t.send(&mut cx, stack, tx, ctx);
                if r.segs > 0 {
                    self.plan.counters.record(now, r.segs, r.bytes);
                    tally.sent(r.segs, now);
                }
                if r.finished {
                    self.done = true;
                }
            }
            None => {}
        }
        None
    }

    /// Hands `pending` to the queue, no more than its `room` (the rest
    /// waits for the next round), and counts what the netdev layer took
    /// and dropped on admission.
    fn hand_over(
        &mut self,
        ctx: &mut LcoreCtx,
        local: usize,
        room: usize,
        now: u64,
        tally: &mut Tally,
    ) {
        let (out, bytes) = if self.pending.len() <= room {
            // The usual case: the whole burst fits, hand it over as is
            // (xmit_burst takes every packet it is offered).
            let bytes = self.pending.iter().map(|m| m.pkt_len() as u64).sum();
            (ctx.xmit_burst(self.port, local, &mut self.pending), bytes)
        } else {
            let mut offer = Burst::new();
            let mut bytes = 0u64;
            while offer.len() < room {
                let Some(m) = self.pending.pop_front() else {
                    break;
                };
                bytes += m.pkt_len() as u64;
                let _ = offer.push(m);
            }
            (ctx.xmit_burst(self.port, local, &mut offer), bytes)
        };
        let took = (out.direct + out.queued + out.dropped) as u64;
        self.plan.counters.record(now, took, bytes);
        self.plan.counters.record_drops(&out);
        self.remaining = self.remaining.saturating_sub(took);
        tally.sent(took, now);
    }

    /// The generator's own stall check: a queue that took nothing for
    /// [`TX_STALL_S`] while this sender waits (after the netdev watchdog had
    /// its chance to reset it) ends the run instead of hanging.
    fn stalled(&mut self, now: u64, hz: u64) -> bool {
        if !self.blocked || self.done {
            self.blocked_since = 0;
            return false;
        }
        if self.blocked_since == 0 {
            self.blocked_since = now;
        }
        now - self.blocked_since > TX_STALL_S * hz
    }
}

/// Why a stalled sender ends the run: its queue's state.
fn stall_report(ctx: &mut LcoreCtx, s: &StreamSender, st: &Stream) -> String {
    let name = ctx.port_name(s.port).to_string();
    let nq = ctx.tx_queues(s.port).len().max(1);
    let txq = ctx.tx_queue(s.port, s.plan.stream % nq);
    format!(
        "port {name} txq {}: took no packet of stream {} for {TX_STALL_S} s (xoff stack {} drv {}, {} in the qdisc): the link is down, the peer is absent or completions stopped",
        txq.queue(),
        st.name,
        txq.xoff().stack,
        txq.xoff().drv,
        txq.backlog_packets(),
    )
}

/// The source a sender sends from, for its stream `st` (with the MACs ARP
/// resolved, when asked).
fn source_for(
    s: &mut StreamSender,
    st: &Stream,
    p: &RunParams,
    stacks: &mut [Option<(Stack, StagedTx)>],
    tsc: Tsc,
) -> Result<Source, String> {
    Ok(match st.mode {
        StreamMode::Socket => {
            let (stack, _) = stacks[st.port].as_mut().ok_or_else(|| {
                format!(
                    "stream {}: port {} has no stack on this lcore",
                    st.name, st.port
                )
            })?;
            let setup = p.stacks[st.port].as_ref();
            let ip = setup.map_or(st.src_ip, |x| x.ip.addr);
            let mtu = setup.map_or(1500, |x| x.mtu);
            Source::Socket(SocketSource::open(stack, st, ip, s.plan.sender_id, mtu)?)
        }
        StreamMode::Tcp => {
            let (stack, _) = stacks[st.port].as_mut().ok_or_else(|| {
                format!(
                    "stream {}: port {} has no stack on this lcore",
                    st.name, st.port
                )
            })?;
            let ip = p.stacks[st.port].as_ref().map_or(st.src_ip, |x| x.ip.addr);
            Source::Tcp(TcpSource::open(
                stack,
                st,
                ip,
                tsc.now(),
                (s.plan.sender_id, s.plan.senders),
            )?)
        }
        StreamMode::Pcap => {
            let frames = p.replay[s.plan.stream]
                .clone()
                .ok_or_else(|| format!("stream {} has no pcap frames loaded", st.name))?;
            Source::Replay(ReplaySource::new(st, frames, tsc))
        }
        _ => Source::Raw(RawSource::new(
            st,
            s.plan.sender_id,
            s.plan.offload,
            &mut s.pool,
        )?),
    })
}

/// Lcore `index`'s replica of a port's stack (one port, its address, a
/// default route when given), sending through a staged `dev_queue_xmit`
/// into the lcore's netdev queues.
fn build_stack(
    pi: usize,
    su: &StackSetup,
    core: usize,
    index: usize,
) -> Result<(Stack, StagedTx), String> {
    let mut pc = PortConf::new(su.mac, su.ip.addr, su.ip.prefix_len);
    pc.mtu = su.mtu;
    pc.tx_offloads = su.tx_offloads;
    pc.noarp = su.noarp;
    let mut cfg = StackConfig {
        ports: vec![pc],
        ..Default::default()
    };
    if let Some(g) = su.ip.gateway {
        cfg.routes.push(RouteConf {
            prefix: Ipv4Addr::UNSPECIFIED,
            len: 0,
            gateway: Some(g),
            port: Some(0),
            mtu: None,
            ..Default::default()
        });
    }
    cfg.static_neighbours = su
        .neighbours
        .iter()
        .map(|&(ip, mac)| (0, ip, mac))
        .collect();
    su.routing.apply(&mut cfg);
    // Each replica draws its own ephemeral ports, IP IDs and jitter.
    cfg.seed ^= pi as u64 ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let pool = Mempool::new(&PoolConfig {
        name: format!("stack-c{core}-p{pi}"),
        size: 8192,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let (xmit, tx) = staged(vec![pi]);
    let st = Stack::new(cfg, pool, Box::new(xmit)).map_err(|e| format!("port {pi}: {e}"))?;
    Ok((st, tx))
}
