//! The ice TX queue reset (`TxQueue::reset`: dis_txqs with FLUSH_PIPE, then
//! add_txqs) on the E810 model, and the TX watchdog recovering a stalled
//! ice-model queue within its timeout.

mod common;

use common::*;
use pmd_ice::{Sink, Speed};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{Port, PortConfig, Registry, TxQueue};
use wirespeed::mbuf::Burst;
use wirespeed::netdev::{NetdevQueue, TxqConfig};

fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    pmd_ice::register(&mut r);
    r
}

fn xs(p: &dyn Port) -> HashMap<String, u64> {
    p.xstats().into_iter().collect()
}

fn open(spec: &str, ring: u16) -> (Box<dyn Port>, Box<dyn TxQueue>) {
    let mut p = registry().open(spec).unwrap();
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 0,
        tx_ring_size: ring,
        ..Default::default()
    })
    .unwrap();
    let q = p.tx_queue(0).unwrap();
    p.start().unwrap();
    (p, q)
}

fn burst(pool: &mut wirespeed::mbuf::Mempool, seqs: std::ops::Range<u32>, len: usize) -> Burst {
    let mut b = Burst::new();
    for s in seqs {
        b.push(mbuf(pool, &frame(s, len))).unwrap();
    }
    b
}

#[test]
fn ice_reset_frees_the_ring_through_the_admin_queue_and_the_queue_sends_again() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut p = configured(&m, 256, 0);
    let mut q = p.tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(512);
    // The transmit pipe hangs: nothing on the ring is fetched or completed.
    m.set_tx_stalled(true);
    let mut b = burst(&mut pool, 0..200, 1514);
    assert_eq!(q.tx_burst(&mut b), 200);
    drop(b);
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(q.clean(256).packets, 0, "stalled");
    let admin_before = m.stats().admin_commands;
    let c = q.reset().expect("ice resets a queue");
    assert_eq!(c.packets, 200, "each packet reported once");
    let s = p.stats();
    assert_eq!((s.tx.packets, s.tx.drops), (0, 200), "all freed as dropped");
    assert_eq!(q.free_slots(), 255, "the ring is empty again");
    assert_eq!(pool.stats().in_use, 0, "every buffer came home");
    assert_eq!(
        m.stats().admin_commands - admin_before,
        2,
        "dis_txqs then add_txqs"
    );
    assert!(q.poll_event().is_none(), "re-added without error");
    assert!(m.tx_queue_context(0).is_some(), "a fresh TLAN context");
    // The pipe recovers; traffic resumes on the re-added queue (head and
    // tail back at 0).
    m.set_tx_stalled(false);
    let mut b = burst(&mut pool, 1000..1010, 60);
    assert_eq!(q.tx_burst(&mut b), 10);
    let mut done = 0;
    wait_until("completions after the reset", || {
        done += q.clean(64).packets;
        done == 10
    });
    assert_eq!(
        m.stats().tx_frames,
        10,
        "only the new frames reached the wire"
    );
    assert_eq!(p.stats().tx.packets, 10);
}

#[test]
fn watchdog_recovers_a_stalled_ice_model_queue_within_its_timeout() {
    let mut pool = pool(2048);
    let (p, q) = open(
        "fault:stall=0.002,stall_ms=600000,seed=4+ice-model?speed=100g&sink=count&pacing=off",
        256,
    );
    let tsc = Tsc::global();
    let timeout_ms = 30;
    let conf = TxqConfig {
        watchdog_timeout_ms: timeout_ms,
        ..Default::default()
    };
    let mut nq = NetdevQueue::new(0, p.name(), q, &conf, tsc).unwrap();
    let (total, mut next) = (6000u32, 0u32);
    let mut timeouts = Vec::new();
    let mut last_progress = Instant::now();
    let mut worst_gap = Duration::ZERO;
    let mut last_done = 0;
    let t0 = Instant::now();
    while next < total || !nq.is_idle() {
        if next < total && nq.backlog_packets() < 256 {
            let mut b = burst(&mut pool, next..(next + 32).min(total), 64);
            next += b.len() as u32;
            nq.xmit_burst(&mut b);
        }
        nq.poll();
        if let Some(t) = nq.watchdog(tsc.now()) {
            timeouts.push(t);
        }
        let done = nq.counters().completed_packets;
        if done != last_done {
            worst_gap = worst_gap.max(last_progress.elapsed());
            last_progress = Instant::now();
            last_done = done;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{:?}",
            nq.counters()
        );
    }
    let c = nq.counters();
    assert!(!timeouts.is_empty(), "the stall was not detected");
    assert!(timeouts.iter().all(|t| t.driver_reset), "{timeouts:?}");
    assert!(
        timeouts
            .iter()
            .all(|t| t.stalled_ms >= timeout_ms && t.stalled_ms < 10 * timeout_ms),
        "fired at its timeout: {timeouts:?}"
    );
    // Recovered within the timeout (plus scheduling slack on a shared VM).
    assert!(
        worst_gap < Duration::from_millis(10 * timeout_ms),
        "{worst_gap:?}"
    );
    assert_eq!(c.tx_timeouts, timeouts.len() as u64);
    assert_eq!(c.unaccounted(), 0);
    assert_eq!(c.offered, u64::from(total));
    let s = p.stats();
    assert_eq!(
        s.tx.packets + s.tx.drops,
        c.sent_packets,
        "one drop counter each"
    );
    let x = xs(p.as_ref());
    assert_eq!(x["fault_reset"], timeouts.len() as u64);
    wait_until("the wire to catch up", || {
        xs(p.as_ref())["port_tx_unicast_packets"] >= s.tx.packets
    });
    assert_eq!(
        xs(p.as_ref())["port_tx_unicast_packets"],
        s.tx.packets,
        "sent = on the wire"
    );
    assert_eq!(nq.bql().inflight, 0);
    drop(nq);
    assert_eq!(pool.stats().in_use, 0);
}

/// A real device stall (the model's transmit pipe hangs mid-run): the
/// watchdog fires at its timeout, the ice reset frees the ring through the
/// admin queue, and once the pipe works again every packet offered is on
/// the wire or in exactly one drop counter.
#[test]
fn watchdog_recovers_a_hung_ice_model_transmit_pipe() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut p = configured(&m, 256, 0);
    let q = p.tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(2048);
    let tsc = Tsc::global();
    let conf = TxqConfig {
        watchdog_timeout_ms: 30,
        ..Default::default()
    };
    let mut nq = NetdevQueue::new(0, p.name(), q, &conf, tsc).unwrap();
    let (total, mut next) = (4000u32, 0u32);
    let mut timeouts = Vec::new();
    let mut hung = false;
    let t0 = Instant::now();
    while next < total || !nq.is_idle() {
        if next >= 1000 && !hung {
            m.set_tx_stalled(true);
            hung = true;
        }
        if next < total && nq.backlog_packets() < 256 {
            let mut b = burst(&mut pool, next..(next + 32).min(total), 64);
            next += b.len() as u32;
            nq.xmit_burst(&mut b);
        }
        nq.poll();
        if let Some(t) = nq.watchdog(tsc.now()) {
            timeouts.push(t);
            m.set_tx_stalled(false);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{:?}",
            nq.counters()
        );
    }
    let c = nq.counters();
    assert_eq!(timeouts.len(), 1, "{timeouts:?}");
    let t = &timeouts[0];
    assert!(
        t.driver_reset && t.stalled_ms >= 30 && t.stalled_ms < 300,
        "{t:?}"
    );
    assert!(t.in_flight > 0);
    assert_eq!(c.unaccounted(), 0);
    let s = p.stats();
    assert!(
        s.tx.drops > 0,
        "the hung ring's packets were dropped: {s:?}"
    );
    assert_eq!(
        s.tx.packets + s.tx.drops,
        c.sent_packets,
        "one drop counter each"
    );
    assert_eq!(
        c.offered,
        s.tx.packets + s.tx.drops + c.drops(),
        "offered = on the wire + drops"
    );
    wait_until("the wire to catch up", || {
        m.stats().tx_frames >= s.tx.packets
    });
    assert_eq!(m.stats().tx_frames, s.tx.packets, "sent = on the wire");
    assert_eq!(nq.bql().inflight, 0);
    drop(nq);
    assert_eq!(pool.stats().in_use, 0);
}
