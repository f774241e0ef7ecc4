//! Netdev queue tests against real software ports (`ring:NAME` pairs whose far
//! end the test drains at a chosen pace, `null`).

use super::*;
use crate::eal::dma::{set_page_mode, PageMode};
use crate::eal::tsc::Tsc;
use crate::ethdev::{Completed, Port, PortConfig, Registry, RxQueue, TxQueue};
use crate::mbuf::{Burst, Mbuf, Mempool, PoolConfig};

fn pool(n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: "netdev-test".into(),
        size: n,
        ..Default::default()
    })
    .unwrap()
}

/// A ring pair: our TX queue 0 on end A, the far end's RX queue 0 on end B.
struct Cable {
    _a: Box<dyn Port>,
    _b: Box<dyn Port>,
    q: NetdevQueue,
    far: Box<dyn RxQueue>,
}

fn cable(name: &str, ring: u16, conf: &TxqConfig) -> Cable {
    let reg = Registry::with_builtins();
    let mut a = reg.open(&format!("ring:{name}")).unwrap();
    let mut b = reg.open(&format!("ring:{name}")).unwrap();
    let pc = PortConfig {
        tx_ring_size: ring,
        rx_ring_size: ring,
        ..Default::default()
    };
    a.configure(&pc).unwrap();
    b.configure(&pc).unwrap();
    let txq = a.tx_queue(0).unwrap();
    let far = b.rx_queue(0).unwrap();
    let q = NetdevQueue::new(0, a.name(), txq, conf, Tsc::global()).unwrap();
    Cable {
        _a: a,
        _b: b,
        q,
        far,
    }
}

fn conf(kind: QdiscKind, limit: usize, bql: bool) -> TxqConfig {
    TxqConfig {
        qdisc: QdiscConfig {
            kind,
            txqueuelen: limit,
            ..Default::default()
        },
        bql: BqlConfig {
            enabled: bql,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn tagged(p: &mut Mempool, tag: u32, len: usize) -> Mbuf {
    let mut m = p.alloc().expect("pool has room");
    let d = m.append(len).unwrap();
    d.fill(0);
    d[..4].copy_from_slice(&tag.to_be_bytes());
    m
}

fn tag_of(m: &Mbuf) -> u32 {
    u32::from_be_bytes(m.data()[..4].try_into().unwrap())
}

fn burst_of(p: &mut Mempool, tags: std::ops::Range<u32>, len: usize) -> Burst {
    let mut b = Burst::new();
    for t in tags {
        b.push(tagged(p, t, len)).unwrap();
    }
    b
}

/// Drains up to `n` packets from the far end; appends their tags.
fn drain(c: &mut Cable, p: &mut Mempool, n: usize, got: &mut Vec<u32>) -> usize {
    let mut b = Burst::new();
    let k = c.far.rx_burst(p, &mut b, n);
    got.extend(b.iter().map(tag_of));
    k
}

#[test]
fn bypass_only_when_the_qdisc_is_empty() {
    let mut p = pool(256);
    let mut c = cable("nd-bypass", 8, &conf(QdiscKind::PfifoFast, 100, false));
    let o = c.q.xmit(tagged(&mut p, 0, 60));
    assert_eq!(
        o,
        XmitOutcome {
            direct: 1,
            queued: 0,
            dropped: 0,
            dropped_bytes: 0,
            carrier_dropped: 0
        }
    );
    // Fill the ring: 7 fit, 3 refused → requeued, queue stopped (DRV_XOFF).
    let o = c.q.xmit_burst(&mut burst_of(&mut p, 1..11, 60));
    assert_eq!((o.direct, o.queued), (7, 3));
    assert!(c.q.xoff().drv && !c.q.xoff().stack);
    assert_eq!(c.q.counters().requeues, 3);
    // Backlog present: a new packet is queued, not bypassed, even once the
    // ring has room again.
    let mut got = Vec::new();
    drain(&mut c, &mut p, 8, &mut got);
    let o = c.q.xmit(tagged(&mut p, 11, 60));
    assert_eq!(o.direct, 0);
    assert!(o.queued == 1);
    assert_eq!(c.q.counters().direct_packets, 8);
    // The run triggered by that xmit sent the backlog in order.
    for _ in 0..10 {
        c.q.poll();
        drain(&mut c, &mut p, 8, &mut got);
    }
    assert_eq!(got, (0..12).collect::<Vec<u32>>());
    // Empty again: bypass again.
    assert_eq!(c.q.xmit(tagged(&mut p, 12, 60)).direct, 1);
    let k = c.q.counters();
    assert_eq!(k.unaccounted(), 0);
    assert_eq!(k.offered, 13);
}

#[test]
fn requeue_keeps_order_across_many_refusals() {
    let mut p = pool(512);
    let mut c = cable("nd-requeue", 8, &conf(QdiscKind::PfifoFast, 1000, false));
    let mut got = Vec::new();
    // 40 in one go: 8 taken, 32 requeued.
    let o = c.q.xmit_burst(&mut burst_of(&mut p, 0..40, 100));
    assert_eq!((o.direct, o.queued, o.dropped), (8, 32, 0));
    let mut next = 40;
    for round in 0..60 {
        // The far end takes 3 per poll; new packets keep arriving behind.
        drain(&mut c, &mut p, 3, &mut got);
        if round % 4 == 0 && next < 80 {
            c.q.xmit_burst(&mut burst_of(&mut p, next..next + 5, 100));
            next += 5;
        }
        c.q.poll();
        assert_eq!(c.q.counters().unaccounted(), 0);
    }
    while drain(&mut c, &mut p, 8, &mut got) > 0 || c.q.backlog_packets() > 0 {
        c.q.poll();
    }
    assert_eq!(got, (0..next).collect::<Vec<u32>>(), "no reordering");
    let k = c.q.counters();
    assert!(k.requeues > 32, "requeues {}", k.requeues);
    assert_eq!(k.sent_packets, next as u64);
    assert_eq!(c.q.qdisc_stats().requeues, k.requeues);
}

#[test]
fn overflow_is_dropped_and_counted() {
    let mut p = pool(512);
    let mut c = cable("nd-overflow", 4, &conf(QdiscKind::PfifoFast, 10, false));
    // Ring takes 4; the other 26 of the bulk are requeued.
    c.q.xmit_burst(&mut burst_of(&mut p, 0..30, 60));
    // Backlog → enqueue; the qdisc holds 10, the rest are dropped.
    let o = c.q.xmit_burst(&mut burst_of(&mut p, 30..60, 60));
    assert_eq!((o.direct, o.queued, o.dropped), (0, 10, 20));
    let s = c.q.qdisc_stats();
    assert_eq!(s.dropped, 20);
    assert_eq!(s.backlog_packets, 36);
    assert_eq!(s.backlog_bytes, 36 * 60);
    assert_eq!(s.sent_packets, 4);
    assert_eq!(s.kind, "pfifo_fast");
    assert_eq!(c.q.counters().unaccounted(), 0);
    assert_eq!(p.stats().in_use, 40);
    // Teardown: the backlog is purged and counted.
    assert_eq!(c.q.purge(), 36);
    let k = c.q.counters();
    assert_eq!((k.purged, k.backlog_packets, k.unaccounted()), (36, 0, 0));
    assert_eq!(p.stats().in_use, 4, "only the 4 on the ring remain");
}

#[test]
fn band_order_holds_through_the_queue() {
    let mut p = pool(256);
    let mut c = cable("nd-bands", 4, &conf(QdiscKind::PfifoFast, 100, false));
    // Stop the queue by filling the ring, then queue mixed priorities.
    c.q.xmit_burst(&mut burst_of(&mut p, 0..4, 60));
    let mut b = Burst::new();
    for (tag, prio) in [(10, 2), (11, 0), (12, 6), (13, 2), (14, 0), (15, 7)] {
        let mut m = tagged(&mut p, tag, 60);
        m.set_priority(prio);
        b.push(m).unwrap();
    }
    c.q.xmit_burst(&mut b);
    let mut got = Vec::new();
    for _ in 0..10 {
        drain(&mut c, &mut p, 4, &mut got);
        c.q.poll();
    }
    drain(&mut c, &mut p, 4, &mut got);
    // Band 0 (prio 6, 7), band 1 (prio 0), band 2 (prio 2).
    assert_eq!(got, vec![0, 1, 2, 3, 12, 15, 11, 14, 10, 13]);
}

#[test]
fn noqueue_goes_straight_to_the_driver_and_drops_what_it_refuses() {
    let mut p = pool(64);
    let mut c = cable("nd-noqueue", 8, &conf(QdiscKind::Noqueue, 0, false));
    assert_eq!(c.q.tx_room(0), 8);
    let o = c.q.xmit_burst(&mut burst_of(&mut p, 0..20, 60));
    assert_eq!((o.direct, o.queued, o.dropped), (8, 0, 12));
    assert_eq!(c.q.tx_room(0), 0, "stopped while the ring is full");
    let o = c.q.xmit(tagged(&mut p, 20, 60));
    assert_eq!(o.dropped, 1);
    let k = c.q.counters();
    assert_eq!((k.busy_drops, k.sent_packets, k.unaccounted()), (13, 8, 0));
    let mut got = Vec::new();
    drain(&mut c, &mut p, 8, &mut got);
    c.q.poll();
    assert!(!c.q.is_stopped());
    assert_eq!(c.q.xmit(tagged(&mut p, 21, 60)).direct, 1);
    drain(&mut c, &mut p, 8, &mut got);
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5, 6, 7, 21]);
    assert_eq!(p.stats().in_use, 0);
}

/// The slow port: the far end drains N packets per poll while the sender
/// offers more. BQL keeps bytes in flight within limit + one max-size packet,
/// packets are conserved exactly, and the pool comes back full.
#[test]
fn bql_bounds_inflight_on_a_slow_port_and_packets_are_conserved() {
    const MAX_PKT: u32 = 1514;
    let mut p = pool(4096);
    let mut cf = conf(QdiscKind::PfifoFast, 300, true);
    cf.bql.hold_time_ms = 1;
    let mut c = cable("nd-slow", 512, &cf);
    let mut got = Vec::new();
    let mut got_bytes = 0u64;
    let mut tag = 0u32;
    let mut max_inflight = 0u32;
    let sizes = [60usize, 1514, 600, 128, 1000, 60, 1514, 300];
    let check = |q: &NetdevQueue, at: &str| {
        let b = q.bql();
        assert!(
            b.inflight <= b.limit + MAX_PKT,
            "{at}: inflight {} > limit {} + {MAX_PKT}",
            b.inflight,
            b.limit
        );
        assert_eq!(q.counters().unaccounted(), 0, "{at}");
    };
    for round in 0..3000u32 {
        // Offer 12 per poll in two bursts; the far end drains 8.
        for _ in 0..2 {
            let mut b = Burst::new();
            for _ in 0..6 {
                b.push(tagged(&mut p, tag, sizes[tag as usize % sizes.len()]))
                    .unwrap();
                tag += 1;
            }
            c.q.xmit_burst(&mut b);
            check(&c.q, "after xmit");
        }
        let mut rb = Burst::new();
        c.far.rx_burst(&mut p, &mut rb, 8);
        got_bytes += rb.bytes() as u64;
        got.extend(rb.iter().map(tag_of));
        drop(rb);
        c.q.poll();
        check(&c.q, "after poll");
        max_inflight = max_inflight.max(c.q.bql().inflight);
        if round % 500 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    // Stop offering; drain everything (bounded).
    for _ in 0..10_000 {
        let mut rb = Burst::new();
        c.far.rx_burst(&mut p, &mut rb, 8);
        got_bytes += rb.bytes() as u64;
        got.extend(rb.iter().map(tag_of));
        drop(rb);
        c.q.poll();
        if c.q.backlog_packets() == 0 && c.q.bql().inflight == 0 {
            break;
        }
    }
    let k = c.q.counters();
    let s = c.q.snapshot();
    assert_eq!(k.backlog_packets, 0, "drained");
    assert_eq!(s.bql.inflight, 0);
    assert_eq!(k.offered, tag as u64);
    assert_eq!(
        k.offered,
        got.len() as u64 + k.qdisc_drops + k.busy_drops + k.purged,
        "offered = transmitted + drops"
    );
    assert_eq!(k.sent_packets, got.len() as u64);
    assert_eq!(k.sent_bytes, got_bytes);
    assert_eq!(k.completed_bytes, got_bytes);
    assert!(k.qdisc_drops > 0, "the offered load exceeds the drain rate");
    assert!(k.stack_xoff > 0 && k.wakes > 0, "BQL throttled: {k:?}");
    assert!(
        max_inflight < 512 * 1514 / 4,
        "BQL, not the ring, bounded inflight ({max_inflight})"
    );
    assert!(
        s.bql.limit > 0 && s.bql.limit < 100_000,
        "limit {}",
        s.bql.limit
    );
    // Surviving packets arrive in order (one flow, one queue).
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    drop(c);
    assert_eq!(p.stats().in_use, 0, "every buffer back in the pool");
}

#[test]
fn a_bql_stopped_queue_is_always_woken_by_completions() {
    let mut p = pool(1024);
    let mut cf = conf(QdiscKind::PfifoFast, 1000, true);
    cf.bql.limit_max = 3000; // force throttling
    let mut c = cable("nd-wake", 256, &cf);
    c.q.xmit_burst(&mut burst_of(&mut p, 0..200, 1000));
    assert!(c.q.xoff().stack, "BQL stopped the queue");
    assert!(c.q.backlog_packets() > 150);
    let mut got = Vec::new();
    // No new xmits: only completions can restart it.
    for _ in 0..500 {
        drain(&mut c, &mut p, 4, &mut got);
        c.q.poll();
        if got.len() == 200 {
            break;
        }
    }
    assert_eq!(got, (0..200).collect::<Vec<u32>>());
    assert!(!c.q.is_stopped());
    assert!(c.q.bql().limit <= 3000);
}

#[test]
fn shared_view_follows_publish() {
    let mut p = pool(64);
    let reg = Registry::with_builtins();
    let mut port = reg.open("null").unwrap();
    port.configure(&PortConfig::default()).unwrap();
    let txq = port.tx_queue(0).unwrap();
    let mut q = NetdevQueue::new(3, "null", txq, &TxqConfig::default(), Tsc::global()).unwrap();
    let shared = q.shared();
    q.xmit_burst(&mut burst_of(&mut p, 0..10, 64));
    assert_eq!(shared.snapshot().counters.offered, 0, "not yet published");
    // BQL starts at limit 0 and grows with each completion.
    for _ in 0..10 {
        q.poll();
    }
    let s = shared.snapshot();
    assert_eq!(s, q.snapshot());
    assert_eq!(
        (s.port, s.counters.sent_packets, s.qdisc.sent_bytes),
        (3, 10, 640)
    );
    assert!(s.bql.enabled && s.bql.hold_time_ms == 1000 && s.bql.limit_max == DQL_MAX_LIMIT);
    assert_eq!(s.qdisc.kind, "pfifo_fast");
    assert_eq!(
        s.to_string(),
        format!(
            "p3/q0 pfifo_fast sent 10p drop 0 req 0 backlog 0p bql 0/{}",
            s.bql.limit
        )
    );
    assert!(s
        .qdisc
        .to_string()
        .contains("Sent 640 bytes 10 pkt (dropped 0, overlimits 0 requeues 0)"));
    assert_eq!(p.stats().in_use, 0);
}

#[test]
fn bad_config_is_a_typed_error() {
    let reg = Registry::with_builtins();
    let mut port = reg.open("null").unwrap();
    port.configure(&PortConfig::default()).unwrap();
    let cf = TxqConfig {
        tx_burst: 0,
        ..Default::default()
    };
    let e = NetdevQueue::new(0, "null", port.tx_queue(0).unwrap(), &cf, Tsc::global()).unwrap_err();
    assert!(e.to_string().contains("tx_burst"), "{e}");
    let mut port = reg.open("null").unwrap();
    port.configure(&PortConfig::default()).unwrap();
    let mut cf = TxqConfig::default();
    cf.bql.limit_min = 10;
    cf.bql.limit_max = 5;
    let e = NetdevQueue::new(0, "null", port.tx_queue(0).unwrap(), &cf, Tsc::global()).unwrap_err();
    assert!(matches!(e, NetdevError::Bql { .. }), "{e}");
}

mod prop {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CASE: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone)]
    enum Op {
        /// Offer packets: (length, priority) each.
        Xmit(Vec<(u16, u8)>),
        /// The far end takes up to n.
        Drain(usize),
        Poll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => proptest::collection::vec((60u16..=1514, 0u8..16), 1..40).prop_map(Op::Xmit),
            2 => (0usize..24).prop_map(Op::Drain),
            2 => Just(Op::Poll),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Any interleaving of offers, drains and polls, any qdisc and BQL
        /// setting: packets are conserved at every step, BQL never queues
        /// more than one packet past its limit, pfifo_fast keeps FIFO order
        /// within each band, and every buffer comes back.
        #[test]
        fn conservation_bql_bound_and_band_fifo(
            ops in proptest::collection::vec(op(), 1..120),
            noqueue in any::<bool>(),
            bql in any::<bool>(),
            ring in prop_oneof![Just(8u16), Just(32), Just(256)],
            limit in 1usize..64,
        ) {
            let mut p = pool(2048);
            let kind = if noqueue { QdiscKind::Noqueue } else { QdiscKind::PfifoFast };
            let mut cf = conf(kind, limit, bql);
            cf.tx_burst = 16;
            cf.dev_tx_weight = 24;
            let name = format!("nd-prop-{}", CASE.fetch_add(1, Ordering::Relaxed));
            let mut c = cable(&name, ring, &cf);
            let mut tag = 0u32;
            let mut got: Vec<(u32, u8)> = Vec::new();
            let step = |c: &mut Cable, got: &mut Vec<(u32, u8)>, p: &mut Mempool, n: usize| {
                let mut b = Burst::new();
                c.far.rx_burst(p, &mut b, n);
                got.extend(b.iter().map(|m| (tag_of(m), m.priority())));
            };
            for o in &ops {
                match o {
                    Op::Xmit(v) => {
                        let mut b = Burst::new();
                        for &(len, prio) in v {
                            let mut m = tagged(&mut p, tag, len as usize);
                            m.set_priority(prio);
                            b.push(m).unwrap();
                            tag += 1;
                        }
                        let out = c.q.xmit_burst(&mut b);
                        prop_assert_eq!((out.direct + out.queued + out.dropped) as usize, v.len());
                    }
                    Op::Drain(n) => step(&mut c, &mut got, &mut p, *n),
                    Op::Poll => {
                        c.q.poll();
                    }
                }
                let k = c.q.counters();
                prop_assert_eq!(k.unaccounted(), 0);
                prop_assert!(k.bql_overshoot_max <= 1514);
            }
            // Drain everything (bounded).
            for _ in 0..2000 {
                step(&mut c, &mut got, &mut p, 64);
                c.q.poll();
                if c.q.is_idle() {
                    break;
                }
            }
            step(&mut c, &mut got, &mut p, 256);
            let k = c.q.counters();
            prop_assert_eq!(k.backlog_packets, 0);
            prop_assert_eq!(k.offered, tag as u64);
            prop_assert_eq!(k.offered, got.len() as u64 + k.drops());
            prop_assert_eq!(k.sent_packets, got.len() as u64);
            for band in 0..3 {
                let seq: Vec<u32> = got
                    .iter()
                    .filter(|(_, pr)| PfifoFast::band_of(*pr) == band)
                    .map(|(t, _)| *t)
                    .collect();
                prop_assert!(seq.windows(2).all(|w| w[0] < w[1]), "band {} reordered: {:?}", band, seq);
            }
            drop(c);
            prop_assert_eq!(p.stats().in_use, 0);
        }
    }
}

/// Issue 10 item 1: with BQL's STACK_XOFF set and the bulk band full, the
/// qdisc still has room for an interactive packet (pfifo_fast's per-band
/// rings), and that packet is the first to leave when BQL reopens.
#[test]
fn stack_xoff_leaves_room_for_band_0_which_leaves_first() {
    let mut p = pool(512);
    let mut cf = conf(QdiscKind::PfifoFast, 64, true);
    cf.bql.limit_max = 2000; // a couple of bulk frames in flight at most
    let mut c = cable("nd-xoff-band0", 256, &cf);
    // Bulk: priority 1 (TC_PRIO_FILLER → band 2), 1000-byte frames.
    let mut bulk = Burst::new();
    for t in 0..100u32 {
        let mut m = tagged(&mut p, t, 1000);
        m.set_priority(1);
        bulk.push(m).unwrap();
    }
    let o = c.q.xmit_burst(&mut bulk);
    let bulk_drops = o.dropped as u64;
    assert!(c.q.xoff().stack, "BQL stopped the queue");
    assert_eq!(
        o.dropped as usize,
        100 - o.direct as usize - 64,
        "tail drop past the band limit"
    );
    assert_eq!(c.q.tx_room(1), 0, "the bulk band is full");
    assert_eq!(
        c.q.tx_room(6),
        64,
        "band 0 has its own room while STACK_XOFF holds"
    );
    let mut probe = tagged(&mut p, 1000, 60);
    probe.set_priority(6);
    let o = c.q.xmit(probe);
    assert_eq!((o.queued, o.dropped), (1, 0));
    // Complete what is in flight: BQL reopens and band 0 goes first.
    let mut got = Vec::new();
    drain(&mut c, &mut p, 256, &mut got);
    got.clear();
    c.q.poll();
    drain(&mut c, &mut p, 256, &mut got);
    assert_eq!(got.first(), Some(&1000), "the probe leaves first: {got:?}");
    let k = c.q.counters();
    assert_eq!(k.unaccounted(), 0);
    assert_eq!(
        k.qdisc_drops, bulk_drops,
        "only bulk past its band's limit was dropped"
    );
}

/// Drives `q` (wrapping a `fault:…stall…` port) with `total` packets,
/// running the watchdog as the runtime does, until everything offered is
/// accounted for and complete. `far` drains a ring's far end.
fn run_with_watchdog(
    q: &mut NetdevQueue,
    p: &mut Mempool,
    total: u32,
    mut far: impl FnMut(&mut Mempool),
) -> Vec<TxTimeout> {
    let tsc = Tsc::global();
    let mut timeouts = Vec::new();
    let mut next = 0u32;
    let end = tsc.now() + tsc.ns_to_cycles(20_000_000_000);
    loop {
        if next < total && q.backlog_packets() < 256 {
            let k = 32.min(total - next);
            let mut b = burst_of(p, next..next + k, 64);
            q.xmit_burst(&mut b);
            next += k;
        }
        far(p);
        q.poll();
        if let Some(t) = q.watchdog(tsc.now()) {
            timeouts.push(t);
        }
        if next == total && q.is_idle() {
            return timeouts;
        }
        assert!(tsc.now() < end, "no progress: {:?}", q.counters());
    }
}

fn watchdog_conf(ms: u64) -> TxqConfig {
    TxqConfig {
        watchdog_timeout_ms: ms,
        ..conf(QdiscKind::PfifoFast, 1000, true)
    }
}

#[test]
fn watchdog_resets_stalled_null_and_ring_and_traffic_resumes() {
    let reg = Registry::with_builtins();
    for inner in ["null", "ring:wd-stall"] {
        let mut p = pool(2048);
        let spec = format!("fault:stall=0.002,stall_ms=600000,seed=9+{inner}");
        let mut port = reg.open(&spec).unwrap();
        let mut far_port = inner.starts_with("ring").then(|| reg.open(inner).unwrap());
        let pc = PortConfig {
            tx_ring_size: 128,
            rx_ring_size: 128,
            ..Default::default()
        };
        port.configure(&pc).unwrap();
        let mut far = far_port.as_mut().map(|f| {
            f.configure(&pc).unwrap();
            f.rx_queue(0).unwrap()
        });
        let txq = port.tx_queue(0).unwrap();
        let mut q =
            NetdevQueue::new(0, port.name(), txq, &watchdog_conf(20), Tsc::global()).unwrap();
        let t = run_with_watchdog(&mut q, &mut p, 5000, |p| {
            if let Some(rx) = far.as_mut() {
                let mut got = Burst::new();
                rx.rx_burst(p, &mut got, 256);
            }
        });
        let c = q.counters();
        let x: std::collections::HashMap<String, u64> = port.xstats().into_iter().collect();
        assert!(!t.is_empty(), "{spec}: the stall was never detected");
        assert!(
            t.iter()
                .all(|t| t.driver_reset && t.in_flight > 0 && t.stalled_ms >= 20),
            "{t:?}"
        );
        assert!(
            t[0].to_string().contains("tx_timeout: no completion for"),
            "{}",
            t[0]
        );
        assert_eq!(c.tx_timeouts, t.len() as u64);
        assert_eq!(x["fault_reset"], t.len() as u64);
        assert_eq!(c.unaccounted(), 0, "{spec}");
        let s = port.stats();
        assert_eq!(
            s.tx.packets + s.tx.drops,
            c.sent_packets,
            "{spec}: one drop counter each"
        );
        assert_eq!(c.offered, 5000);
        assert_eq!(q.bql().inflight, 0, "{spec}: BQL balanced after resets");
        drop(q);
        drop(far);
        assert_eq!(p.stats().in_use, 0, "{spec}: pool full");
    }
}

/// A driver queue without `reset` whose completions can be switched off.
struct Hung {
    held: Vec<Mbuf>,
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stats: std::sync::Arc<crate::ethdev::QueueStats>,
}

impl TxQueue for Hung {
    fn index(&self) -> u16 {
        0
    }
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let n = pkts.len().min(64 - self.held.len());
        for _ in 0..n {
            self.held.push(pkts.pop_front().unwrap());
        }
        self.stats.packets.add(n as u64);
        n
    }
    fn clean(&mut self, _budget: usize) -> Completed {
        if self.hang.load(std::sync::atomic::Ordering::Relaxed) {
            return Completed::default();
        }
        let c = Completed {
            packets: self.held.len() as u32,
            bytes: self.held.iter().map(|m| m.pkt_len() as u64).sum(),
        };
        self.held.clear();
        c
    }
    fn free_slots(&self) -> usize {
        64 - self.held.len()
    }
    fn ring_size(&self) -> usize {
        64
    }
    fn stats(&self) -> std::sync::Arc<crate::ethdev::QueueStats> {
        self.stats.clone()
    }
}

#[test]
fn watchdog_completes_in_flight_as_dropped_when_the_driver_cannot_reset() {
    let mut p = pool(256);
    let tsc = Tsc::global();
    let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hung = Hung {
        held: Vec::with_capacity(64),
        hang: hang.clone(),
        stats: Default::default(),
    };
    // BQL off, so all 40 go in flight at once (BQL would start with one).
    let cf = TxqConfig {
        watchdog_timeout_ms: 10,
        ..conf(QdiscKind::PfifoFast, 1000, false)
    };
    let mut q = NetdevQueue::new(0, "hung", Box::new(hung), &cf, tsc).unwrap();
    let mut b = burst_of(&mut p, 0..40, 100);
    q.xmit_burst(&mut b);
    q.poll();
    assert_eq!(q.watchdog(tsc.now()), None, "not yet");
    std::thread::sleep(std::time::Duration::from_millis(15));
    q.poll();
    let t = q.watchdog(tsc.now()).expect("timed out");
    assert!(!t.driver_reset);
    assert_eq!((t.in_flight, t.dropped), (40, 40));
    assert!(t.to_string().contains("cannot reset"), "{t}");
    let c = q.counters();
    assert_eq!((c.tx_timeouts, c.timeout_drops), (1, 40));
    assert!(q.is_idle(), "in flight completed as dropped");
    assert_eq!(q.bql().inflight, 0);
    // The device lets go after all: its late reports are not counted twice,
    // and new traffic completes normally.
    hang.store(false, std::sync::atomic::Ordering::Relaxed);
    q.poll();
    assert_eq!(q.counters().completed_packets, 40);
    let mut b = burst_of(&mut p, 40..50, 100);
    q.xmit_burst(&mut b);
    q.poll();
    let c = q.counters();
    assert_eq!((c.sent_packets, c.completed_packets), (50, 50));
    assert_eq!(q.bql().inflight, 0);
    assert_eq!(q.watchdog(tsc.now()), None, "nothing in flight: quiet");
    drop(q);
    assert_eq!(p.stats().in_use, 0);
}

/// Drives `q` on a flapping link (`fault:flap_ms=…`), polling the carrier
/// as the runtime does, until `total` packets were offered and the queue
/// is idle. Returns the carrier changes seen.
fn run_flapping(
    q: &mut NetdevQueue,
    p: &mut Mempool,
    total: u32,
    mut far: impl FnMut(&mut Mempool),
) -> Vec<CarrierChange> {
    let tsc = Tsc::global();
    let mut changes = Vec::new();
    let mut next = 0u32;
    let end = tsc.now() + tsc.ns_to_cycles(20_000_000_000);
    loop {
        if next < total && q.tx_room(0) > 0 {
            let k = 16.min(total - next).min(q.tx_room(0) as u32);
            let mut b = burst_of(p, next..next + k, 64);
            q.xmit_burst(&mut b);
            next += k;
        }
        far(p);
        q.poll();
        if let Some(c) = q.carrier_poll() {
            changes.push(c);
        }
        assert_eq!(q.counters().unaccounted(), 0);
        if next == total && q.is_idle() && q.has_carrier() {
            return changes;
        }
        assert!(tsc.now() < end, "no progress: {:?}", q.counters());
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
}

#[test]
fn carrier_off_stops_the_queue_and_on_resumes_it_with_hold_and_drop() {
    let reg = Registry::with_builtins();
    for (policy, kind) in [
        (CarrierPolicy::Hold, QdiscKind::PfifoFast),
        (CarrierPolicy::Drop, QdiscKind::PfifoFast),
        (CarrierPolicy::Hold, QdiscKind::Noqueue),
        (CarrierPolicy::Drop, QdiscKind::Noqueue),
    ] {
        let name = format!("nd-flap-{policy:?}-{kind:?}");
        let mut p = pool(2048);
        let mut a = reg
            .open(&format!("fault:flap_ms=5,flap_every_ms=15+ring:{name}"))
            .unwrap();
        let mut b = reg.open(&format!("ring:{name}")).unwrap();
        let pc = PortConfig {
            tx_ring_size: 64,
            rx_ring_size: 64,
            ..Default::default()
        };
        a.configure(&pc).unwrap();
        b.configure(&pc).unwrap();
        a.start().unwrap();
        let mut far = b.rx_queue(0).unwrap();
        let cf = TxqConfig {
            carrier: policy,
            ..conf(kind, 500, true)
        };
        let txq = a.tx_queue(0).unwrap();
        let mut q = NetdevQueue::new(0, a.name(), txq, &cf, Tsc::global()).unwrap();
        let mut got = 0u64;
        let changes = run_flapping(&mut q, &mut p, 6000, |p| {
            let mut r = Burst::new();
            got += far.rx_burst(p, &mut r, 256) as u64;
        });
        let c = q.counters();
        let x: std::collections::HashMap<String, u64> = a.xstats().into_iter().collect();
        let tag = format!("{policy:?}/{kind:?}: {c:?} {x:?}");
        assert!(changes.len() >= 2, "{tag}: the link flapped");
        assert!(changes.iter().any(|c| !c.up) && changes.iter().any(|c| c.up));
        assert_eq!(c.carrier_changes, changes.len() as u64);
        assert!(x["fault_flap"] >= 1, "{tag}");
        assert_eq!(c.offered, 6000, "{tag}");
        // Conservation: every packet offered is on the far end or in
        // exactly one drop counter.
        assert_eq!(got + c.drops(), c.offered, "{tag}");
        assert_eq!(c.sent_packets, got, "{tag}");
        match policy {
            CarrierPolicy::Hold => assert_eq!(c.carrier_drops, 0, "{tag}"),
            CarrierPolicy::Drop => assert!(c.carrier_drops > 0, "{tag}"),
        }
        if policy == CarrierPolicy::Hold && kind == QdiscKind::PfifoFast {
            assert_eq!(c.drops(), 0, "{tag}: the qdisc held everything");
        }
        drop(q);
        drop(far);
        assert_eq!(p.stats().in_use, 0, "{tag}: pool full");
    }
}

#[test]
fn carrier_off_purges_the_backlog_once_and_the_watchdog_waits_for_carrier() {
    let mut p = pool(512);
    let cf = TxqConfig {
        watchdog_timeout_ms: 1,
        ..conf(QdiscKind::PfifoFast, 100, false)
    };
    let mut c = cable("nd-carrier-purge", 8, &cf);
    // 8 on the ring (not drained yet), 12 in the backlog.
    c.q.xmit_burst(&mut burst_of(&mut p, 0..20, 60));
    assert_eq!(c.q.backlog_packets(), 12);
    let ch = c.q.set_carrier(false);
    assert_eq!((ch.up, ch.purged), (false, 12));
    assert!(c.q.is_stopped() && c.q.xoff().carrier);
    let o = c.q.xmit_burst(&mut burst_of(&mut p, 20..25, 60));
    assert_eq!(
        (o.dropped, o.dropped_bytes, o.carrier_dropped),
        (5, 300, 5),
        "refused for the carrier, and said so"
    );
    let k = c.q.counters();
    assert_eq!(
        (
            k.carrier_drops,
            k.carrier_purged,
            k.backlog_packets,
            k.unaccounted()
        ),
        (17, 12, 0, 0)
    );
    // No carrier: the stalled ring is not a TX timeout.
    let tsc = Tsc::global();
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(c.q.watchdog(tsc.now()), None);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(c.q.watchdog(tsc.now()), None);
    assert!(c.q.set_carrier(true).up);
    assert!(
        c.q.has_carrier() && !c.q.xoff().carrier,
        "the ring is still full: only DRV_XOFF"
    );
    let mut got = Vec::new();
    drain(&mut c, &mut p, 64, &mut got);
    assert_eq!(got, (0..8).collect::<Vec<_>>(), "the ring's packets leave");
    c.q.poll();
    c.q.xmit_burst(&mut burst_of(&mut p, 100..103, 60));
    drain(&mut c, &mut p, 64, &mut got);
    assert_eq!(got[8..], [100, 101, 102], "traffic resumes");
    assert_eq!(c.q.counters().carrier_changes, 2);
}

/// A TCP/IPv4 super-segment of `payload` bytes over a chain of buffers
/// of at most `cut` bytes, marked for TSO at `mss`.
fn super_segment(p: &mut Mempool, payload: usize, mss: u16, cut: usize) -> Mbuf {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (40 + payload) as u16;
    f.extend_from_slice(&[
        0x45, 0, 0, 0, 0, 9, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    let c = crate::stack::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&[
        0x9c, 0x40, 0x13, 0x89, 0, 0, 0, 100, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f.extend((0..payload).map(|i| (i % 253) as u8));
    let mut head: Option<Mbuf> = None;
    for chunk in f.chunks(cut) {
        let mut m = p.alloc().unwrap();
        m.extend_from_slice(chunk).unwrap();
        match head.as_mut() {
            Some(h) => h.chain(m),
            None => head = Some(m),
        }
    }
    let mut m = head.unwrap();
    m.set_ol_flags(
        crate::mbuf::ol::TX_TSO | crate::mbuf::ol::TX_TCP_CKSUM | crate::mbuf::ol::TX_IPV4,
    );
    m.set_tso_segsz(mss);
    m.set_tx_lens(14, 20, 20);
    m
}

#[test]
fn gso_splits_super_segments_for_a_port_without_tso() {
    // The stack registers the TCP segmenter (tcpv4_offload_init).
    crate::ethdev::offload::add_offload_tcp4(crate::stack::tcp::offload::tcp4_gso_segment);
    let mut p = pool(256);
    let mut c = cable("gso-a", 256, &conf(QdiscKind::PfifoFast, 1000, true));
    let acct = std::sync::Arc::new(crate::mbuf::WmemAccount::new());
    let mut sup = super_segment(&mut p, 4000, 1460, 1500);
    assert_eq!(crate::ethdev::offload::gso_segs(&sup), 3);
    // qdisc_pkt_len_init: the length plus two more headers.
    assert_eq!(
        crate::ethdev::offload::wire_len(&sup),
        (54 + 4000 + 2 * 54) as u64
    );
    sup.charge_wmem(&acct, 9000);
    let mut b = Burst::new();
    b.push(tagged(&mut p, 1, 60)).unwrap();
    b.push(sup).unwrap();
    b.push(tagged(&mut p, 2, 60)).unwrap();
    let o = c.q.xmit_burst(&mut b);
    assert_eq!(o.dropped, 0);
    assert_eq!(o.direct + o.queued, 5);
    // The super-segment's charge moved to its three segments (3000 each).
    assert_eq!(
        acct.in_flight(),
        9000,
        "the charge moved to the segments, not doubled"
    );
    // BQL lets the queue out as completions come back: drain and poll.
    let mut rx = pool(64);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for _ in 0..100 {
        let mut got = Burst::new();
        c.far.rx_burst(&mut rx, &mut got, 32);
        frames.extend(got.iter().map(|m| m.data().to_vec()));
        drop(got);
        c.q.poll();
        if frames.len() == 5 {
            break;
        }
    }
    assert_eq!(frames.len(), 5, "order: tag 1, three segments, tag 2");
    assert_eq!(frames[0][..4], 1u32.to_be_bytes());
    assert_eq!(frames[4][..4], 2u32.to_be_bytes());
    let mut payload = Vec::new();
    for (k, f) in frames[1..4].iter().enumerate() {
        assert_eq!(f.len(), 54 + [1460, 1460, 1080][k]);
        assert_eq!(
            u16::from_be_bytes([f[18], f[19]]),
            9 + k as u16,
            "IP ID per segment"
        );
        assert_eq!(crate::stack::checksum::checksum(&f[14..34]), 0);
        let seq = u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
        assert_eq!(seq, 100 + 1460 * k as u32);
        assert_eq!(f[47] & 0x08 != 0, k == 2, "PSH only on the last");
        payload.extend_from_slice(&f[54..]);
    }
    assert_eq!(
        payload,
        (0..4000).map(|i| (i % 253) as u8).collect::<Vec<u8>>()
    );
    let k = c.q.counters();
    assert_eq!((k.offered, k.gso_segments, k.gso_drops), (5, 3, 0));
    assert_eq!(k.unaccounted(), 0);
    c.q.poll();
    assert_eq!(acct.in_flight(), 0);
}

#[test]
fn gso_drops_what_it_cannot_split_and_counts_it() {
    crate::ethdev::offload::add_offload_tcp4(crate::stack::tcp::offload::tcp4_gso_segment);
    let mut p = pool(64);
    let mut c = cable("gso-b", 256, &conf(QdiscKind::PfifoFast, 1000, false));
    let mut bad = super_segment(&mut p, 3000, 1460, 2000);
    bad.data_mut()[14 + 9] = 17; // not TCP
    let o = c.q.xmit(bad);
    assert_eq!((o.dropped, o.dropped_bytes), (1, 3054));
    let k = c.q.counters();
    assert_eq!((k.offered, k.gso_drops, k.sent_packets), (1, 1, 0));
    assert_eq!(k.unaccounted(), 0);
    assert_eq!(p.stats().in_use, 0);
}
