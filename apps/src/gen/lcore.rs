//! One generator lcore: its senders (a stream's share on this lcore, each
//! with a packet builder, a mempool prebuilt with the stream's frame and a
//! TSC-deadline pacer), its TX queues, and its RX queues (latency returns).

use super::measure::{latency_histogram, SeqTracker};
use super::pacer::Pacer;
use super::tx::TxPath;
use crate::config::{Stream, StreamMode, Timing};
use crate::frame::{parse_latency, PacketGen};
use hdrhistogram::Histogram;
use std::sync::Arc;
use wirespeed::eal::{self, Tsc};
use wirespeed::ethdev::pcap::PcapRecord;
use wirespeed::ethdev::{RxQueue, StatCounter};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

/// Counters one sender publishes (single writer: its lcore).
#[derive(Debug, Default)]
pub struct SenderCounters {
    pub packets: StatCounter,
    /// Frame bytes without FCS.
    pub bytes: StatCounter,
    /// TSC when the first and last packet went out (0 = not yet).
    pub first_tsc: StatCounter,
    pub last_tsc: StatCounter,
}

/// What one lcore sends for one stream.
pub struct SenderPlan {
    pub stream: usize,
    /// Packets for this lcore (u64::MAX = unlimited).
    pub quota: u64,
    /// This lcore's share of the stream's rate.
    pub share: f64,
    /// Index into the lcore's TX queues.
    pub txq: usize,
    /// Stable sender id (goes into the latency header as the lcore byte).
    pub sender_id: u8,
    pub counters: Arc<SenderCounters>,
    pub offload: bool,
    pub line_bps: u64,
}

/// Everything one lcore gets.
pub struct LcoreWork {
    pub txqs: Vec<Box<dyn TxPath>>,
    pub rxqs: Vec<Box<dyn RxQueue>>,
    pub senders: Vec<SenderPlan>,
}

/// An interval latency histogram sent to the monitor.
pub struct LatencyInterval {
    pub stream: usize,
    pub start_tsc: u64,
    pub end_tsc: u64,
    pub hist: Histogram<u64>,
}

/// What the lcore reports at the end.
pub struct LcoreResult {
    pub index: usize,
    pub core: usize,
    pub packets: u64,
    pub busy_cycles: u64,
    pub alloc_failures: u64,
    pub in_use_at_end: u64,
    /// Per stream: total latency histogram.
    pub latency: Vec<Histogram<u64>>,
    /// Per (stream, sender id): sequence accounting.
    pub trackers: Vec<((usize, u8), SeqTracker)>,
    pub rx_packets: u64,
    pub rx_other: u64,
}

/// Run-wide settings every lcore reads.
pub struct RunParams {
    pub streams: Vec<Stream>,
    pub burst: usize,
    pub pool_size: u32,
    /// Run deadline in TSC cycles from the common start (None = none).
    pub run_cycles: Option<u64>,
    /// Lcores count themselves ready here once their pools are built …
    pub ready: std::sync::atomic::AtomicUsize,
    /// … and the monitor then sets the common start (TSC; 0 = not yet).
    pub start: std::sync::atomic::AtomicU64,
    pub replay: Vec<Option<Arc<Vec<PcapRecord>>>>,
    pub hlog_interval_cycles: u64,
}

enum Source {
    Built(PacketGen),
    Replay {
        frames: Arc<Vec<PcapRecord>>,
        next: usize,
        loops_done: u32,
        loops: u32,
        /// TSC at which the current loop's first frame is due.
        loop_start: u64,
        span_cycles: u64,
        original: bool,
    },
}

struct StreamSender {
    plan: SenderPlan,
    src: Source,
    pool: Mempool,
    pacer: Pacer,
    pending: Burst,
    remaining: u64,
    start: u64,
    stop: Option<u64>,
    done: bool,
}

/// The lcore's main loop: for each sender, admit what the pacer allows, build
/// it, hand it to the TX path; then completions, then RX (latency returns).
pub fn run(
    id: eal::lcore::LcoreId,
    mut w: LcoreWork,
    p: &RunParams,
    lat_tx: std::sync::mpsc::Sender<LatencyInterval>,
) -> Result<LcoreResult, String> {
    let tsc = Tsc::global();
    let hz = tsc.hz();
    let mut senders = Vec::new();
    for plan in w.senders.drain(..) {
        let st = &p.streams[plan.stream];
        let mut pool = Mempool::new(&PoolConfig {
            name: format!("gen-c{}-s{}", id.core, plan.stream),
            size: p.pool_size,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        let src = match st.mode {
            StreamMode::Pcap => {
                let frames = p.replay[plan.stream]
                    .clone()
                    .ok_or_else(|| format!("stream {} has no pcap frames loaded", st.name))?;
                let span_ns = match (frames.first(), frames.last()) {
                    (Some(a), Some(b)) => b.ts_ns.saturating_sub(a.ts_ns),
                    _ => 0,
                };
                // A loop lasts the file's span plus one mean gap.
                let gap = if frames.len() > 1 {
                    span_ns / (frames.len() as u64 - 1)
                } else {
                    0
                };
                Source::Replay {
                    frames,
                    next: 0,
                    loops_done: 0,
                    loops: st.loops,
                    loop_start: 0,
                    span_cycles: tsc.ns_to_cycles(span_ns + gap),
                    original: st.timing == Timing::Original,
                }
            }
            _ => {
                let g = PacketGen::new(st, plan.sender_id, plan.offload);
                let t = g.template.clone();
                pool.init_all(|m| {
                    let _ = m.extend_from_slice(&t);
                })
                .map_err(|e| e.to_string())?;
                Source::Built(g)
            }
        };
        // Start, stop and pacer are set once the common start is known.
        let start = 0;
        let stop = None;
        let pacer = Pacer::new(&st.rate, plan.share, hz, plan.line_bps, 0);
        let remaining = plan.quota;
        senders.push(StreamSender {
            plan,
            src,
            pool,
            pacer,
            pending: Burst::new(),
            remaining,
            start,
            stop,
            done: remaining == 0,
        });
    }
    let mut rx_pool = Mempool::new(&PoolConfig {
        name: format!("gen-rx-c{}", id.core),
        size: 4096,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let ns = p.streams.len();
    let mut latency: Vec<Histogram<u64>> = (0..ns).map(|_| latency_histogram()).collect();
    let mut interval: Vec<Histogram<u64>> = (0..ns).map(|_| latency_histogram()).collect();
    // Ready; wait for the monitor to fix the common start (bounded).
    p.ready.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    let wait_until = tsc.now() + hz * 30;
    let start_tsc = loop {
        let s = p.start.load(std::sync::atomic::Ordering::Acquire);
        if s != 0 {
            break s;
        }
        if tsc.now() > wait_until || eal::signal::stop_requested() {
            return Err(format!("lcore {}: the run never started", id.core));
        }
        std::thread::yield_now();
    };
    for s in senders.iter_mut() {
        let st = &p.streams[s.plan.stream];
        s.start = start_tsc + tsc.ns_to_cycles((st.start_delay * 1e9) as u64);
        s.stop = if st.duration > 0.0 {
            Some(s.start + tsc.ns_to_cycles((st.duration * 1e9) as u64))
        } else {
            None
        };
        s.pacer = Pacer::new(&st.rate, s.plan.share, hz, s.plan.line_bps, s.start);
    }
    let mut interval_start = start_tsc;
    // Sequence trackers, indexed [stream][sender id], created up front.
    let mut trackers: Vec<Vec<Option<SeqTracker>>> = vec![Vec::new(); ns];
    let any_latency = p.streams.iter().any(|s| s.latency);
    if any_latency && !w.rxqs.is_empty() {
        for (si, s) in p.streams.iter().enumerate() {
            if s.latency {
                trackers[si] = (0..=255).map(|_| None).collect();
            }
        }
    }
    let mut rx = Burst::new();
    let mut rx_packets = 0u64;
    let mut rx_other = 0u64;
    let mut packets = 0u64;
    let mut alloc_failures = 0u64;
    let burst = p.burst;
    let deadline = p.run_cycles.map(|c| start_tsc + c);
    while tsc.now() < start_tsc {
        std::hint::spin_loop();
    }
    let t0 = tsc.now();
    let mut last_active = t0;
    let mut iter = 0u64;
    loop {
        iter += 1;
        let now = tsc.now();
        if iter & 255 == 0 && eal::signal::stop_requested() {
            break;
        }
        if let Some(d) = deadline {
            if now >= d {
                break;
            }
        }
        let mut all_done = true;
        for s in senders.iter_mut() {
            if s.done {
                continue;
            }
            all_done = false;
            if now < s.start {
                continue;
            }
            if let Some(stop) = s.stop {
                if now >= stop {
                    s.done = true;
                    continue;
                }
            }
            // Build what the pacer admits (up to a burst), unless a previous
            // burst is still waiting for ring space.
            if s.pending.is_empty() {
                let want = (burst as u64).min(s.remaining) as usize;
                match &mut s.src {
                    Source::Built(g) => {
                        let mut n = 0;
                        while n < want && s.pacer.admit(now, g.peek_size()) {
                            n += 1;
                        }
                        if n > 0 {
                            if s.pool.alloc_bulk(&mut s.pending, n) {
                                if g.is_static() {
                                    for m in s.pending.as_mut_slice() {
                                        g.fill(m, now);
                                    }
                                } else {
                                    let ts = tsc.now();
                                    for m in s.pending.as_mut_slice() {
                                        g.fill(m, ts);
                                    }
                                }
                            } else {
                                alloc_failures += 1;
                            }
                        }
                    }
                    Source::Replay {
                        frames,
                        next,
                        loops_done,
                        loops,
                        loop_start,
                        span_cycles,
                        original,
                    } => {
                        if *loop_start == 0 {
                            *loop_start = s.start;
                        }
                        let base_ns = frames.first().map(|f| f.ts_ns).unwrap_or(0);
                        while s.pending.len() < want {
                            if *loops != 0 && *loops_done >= *loops {
                                s.remaining = 0;
                                break;
                            }
                            let f = &frames[*next];
                            if *original {
                                let due = *loop_start + tsc.ns_to_cycles(f.ts_ns - base_ns);
                                if now < due {
                                    break;
                                }
                            }
                            if !s.pacer.admit(now, f.data.len() as u32 + 4) {
                                break;
                            }
                            match wirespeed::ethdev::pcap::copy_into_chain(&mut s.pool, &f.data) {
                                Some(m) => {
                                    let _ = s.pending.push(m);
                                }
                                None => {
                                    alloc_failures += 1;
                                    break;
                                }
                            }
                            *next += 1;
                            if *next == frames.len() {
                                *next = 0;
                                *loops_done += 1;
                                *loop_start += *span_cycles;
                            }
                        }
                    }
                }
            }
            if !s.pending.is_empty() {
                let q = &mut w.txqs[s.plan.txq];
                let bytes: u64 = s.pending.iter().map(|m| m.pkt_len() as u64).sum();
                let before = s.pending.len();
                let n = q.send(&mut s.pending);
                if n > 0 {
                    let c = &s.plan.counters;
                    if c.first_tsc.get() == 0 {
                        c.first_tsc.set(now);
                    }
                    c.last_tsc.set(now);
                    c.packets.add(n as u64);
                    let sent_bytes = if n == before {
                        bytes
                    } else {
                        // Partial: recount what left (rare; ring full).
                        bytes - s.pending.iter().map(|m| m.pkt_len() as u64).sum::<u64>()
                    };
                    c.bytes.add(sent_bytes);
                    s.remaining = s.remaining.saturating_sub(n as u64);
                    packets += n as u64;
                    last_active = now;
                }
            }
            if s.remaining == 0 && s.pending.is_empty() {
                s.done = true;
            }
        }
        for q in w.txqs.iter_mut() {
            q.poll();
        }
        // RX: latency returns.
        for q in w.rxqs.iter_mut() {
            let n = q.rx_burst(&mut rx_pool, &mut rx, burst);
            if n == 0 {
                continue;
            }
            let now = tsc.now();
            rx_packets += n as u64;
            while let Some(m) = rx.pop_front() {
                match parse_latency(m.data()) {
                    Some(tag)
                        if (tag.stream as usize) < ns && p.streams[tag.stream as usize].latency =>
                    {
                        let si = tag.stream as usize;
                        let ns_lat = tsc.cycles_to_ns(now.saturating_sub(tag.tx_tsc)).max(1);
                        let _ = latency[si].record(ns_lat);
                        let _ = interval[si].record(ns_lat);
                        if let Some(slot) = trackers[si].get_mut(tag.lcore as usize) {
                            slot.get_or_insert_with(SeqTracker::default).record(tag.seq);
                        }
                    }
                    _ => rx_other += 1,
                }
            }
        }
        if any_latency && now.saturating_sub(interval_start) >= p.hlog_interval_cycles {
            for (si, h) in interval.iter_mut().enumerate() {
                if !h.is_empty() {
                    let _ = lat_tx.send(LatencyInterval {
                        stream: si,
                        start_tsc: interval_start,
                        end_tsc: now,
                        hist: h.clone(),
                    });
                    h.reset();
                }
            }
            interval_start = now;
        }
        if all_done {
            // Keep receiving returns for a short grace period after the last send.
            if w.rxqs.is_empty() || !any_latency || tsc.now() - last_active > hz / 20 {
                break;
            }
        }
    }
    let busy = last_active.max(t0) - t0;
    // Completions: give the queues a bounded time to report the rest.
    let end = tsc.now() + hz * 2;
    for q in w.txqs.iter_mut() {
        while !q.drained() && tsc.now() < end {
            q.poll();
            std::hint::spin_loop();
        }
    }
    let now = tsc.now();
    for (si, h) in interval.iter_mut().enumerate() {
        if !h.is_empty() {
            let _ = lat_tx.send(LatencyInterval {
                stream: si,
                start_tsc: interval_start,
                end_tsc: now,
                hist: h.clone(),
            });
        }
    }
    let mut tr = Vec::new();
    for (si, v) in trackers.into_iter().enumerate() {
        for (li, t) in v.into_iter().enumerate() {
            if let Some(t) = t {
                tr.push(((si, li as u8), t));
            }
        }
    }
    drop(rx);
    for s in senders.iter_mut() {
        s.pending.clear();
    }
    drop(w);
    let in_use =
        senders.iter().map(|s| s.pool.stats().in_use).sum::<u64>() + rx_pool.stats().in_use;
    Ok(LcoreResult {
        index: id.index,
        core: id.core,
        packets,
        busy_cycles: busy,
        alloc_failures,
        in_use_at_end: in_use,
        latency,
        trackers: tr,
        rx_packets,
        rx_other,
    })
}
