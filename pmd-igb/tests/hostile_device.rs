//! A hostile 82576 against the igb PMD (issue 16's fuzzed input): property
//! tests over the RX write-back descriptors the device writes — status,
//! error bits, length (beyond the buffer, zero), VLAN, the reserved bits.
//! The properties: no panic, no hang, every frame the PMD delivers is
//! well-formed (its length fits its buffer, its segments add up), the
//! queue keeps receiving, and every buffer is back in its pool at the end.
//! Cases: `PROPTEST_CASES` (256 by default; `PROPTEST_CASES=1000000` for
//! the long run).

use pmd_igb::regs::RXD_STAT_DD;
use pmd_igb::{model_port, ModelConfig, Sink};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::{Port, PortConfig, RxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

const OURS: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

#[derive(Debug, Clone)]
struct Frame {
    len: usize,
    qw0: u64,
    qw1: u64,
}

fn rx_frame() -> impl Strategy<Value = Frame> {
    let mask = prop_oneof![
        3 => Just(0u64),
        2 => any::<u64>(),
        2 => (0u32..64).prop_map(|b| 1u64 << b),
        1 => any::<u16>().prop_map(|v| u64::from(v) << 32),
    ];
    (60usize..1514, mask.clone(), mask).prop_map(|(len, qw0, qw1)| Frame { len, qw0, qw1 })
}

#[test]
fn hostile_rx_writebacks_never_panic_or_deliver_garbage() {
    set_page_mode(PageMode::Small);
    let (mut p, m) = model_port(ModelConfig {
        sink: Sink::Count,
        speed_bps: 0,
        ..ModelConfig::default()
    })
    .unwrap();
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 1,
        tx_ring_size: 64,
        rx_ring_size: 64,
        tx_offloads: 0,
        promiscuous: true,
        rss: None,
    })
    .unwrap();
    let rq = RefCell::new(p.igb_rx_queue(0).unwrap());
    p.start().unwrap();
    let plan: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    {
        let plan = plan.clone();
        m.set_rx_writeback_hook(Some(Box::new(move |qw0, qw1| {
            let mut p = plan.lock().unwrap();
            if !p.is_empty() {
                let (a, b) = p.remove(0);
                *qw0 ^= a;
                // DD stays set: a device that clears it only stalls its ring.
                *qw1 = (*qw1 ^ b) | u64::from(RXD_STAT_DD);
            }
        })));
    }
    let pool = RefCell::new(
        Mempool::new(&PoolConfig {
            name: "igb-hostile".into(),
            size: 512,
            headroom: 128,
            data_room: 2048,
        })
        .unwrap(),
    );
    let stats = rq.borrow().stats();
    let (cases, sent, delivered) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let t_all = Instant::now();
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let res = runner.run(&prop::collection::vec(rx_frame(), 1..8), |frames| {
        cases.set(cases.get() + 1);
        let (mut rq, mut pool) = (rq.borrow_mut(), pool.borrow_mut());
        let mut out = Burst::new();
        rq.rx_burst(&mut pool, &mut out, 0); // keep the ring armed
        {
            let mut pl = plan.lock().unwrap();
            pl.clear();
            pl.extend(frames.iter().map(|f| (f.qw0, f.qw1)));
        }
        let before_frames = m
            .counters()
            .rx_frames
            .load(std::sync::atomic::Ordering::Relaxed);
        for (i, f) in frames.iter().enumerate() {
            let mut d = vec![0x5au8; f.len];
            d[..6].copy_from_slice(&OURS);
            d[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
            d[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
            d[14..18].copy_from_slice(&(i as u32).to_be_bytes());
            prop_assert!(m.inject(&d));
        }
        sent.set(sent.get() + frames.len() as u64);
        // The device wrote them back (the ring holds 63 armed descriptors,
        // a case at most 7 frames); the model counts a frame after its
        // write-back (`wait_idle` may return while the last one is on its way).
        let want = before_frames + frames.len() as u64;
        let rx_frames = || {
            m.counters()
                .rx_frames
                .load(std::sync::atomic::Ordering::Acquire)
        };
        let t0 = Instant::now();
        while rx_frames() < want {
            prop_assert!(t0.elapsed() < Duration::from_secs(5), "model wedged");
            std::thread::yield_now();
        }
        prop_assert_eq!(rx_frames(), want);
        let before = stats.packets.get();
        rq.rx_burst(&mut pool, &mut out, 256);
        prop_assert_eq!(stats.packets.get() - before, out.len() as u64);
        for mb in out.iter() {
            let segs: usize = mb.segments().map(|s| s.data.len()).sum();
            prop_assert_eq!(segs, mb.pkt_len(), "segments add up");
            prop_assert!(mb.pkt_len() <= 2048, "{} beyond the buffer", mb.pkt_len());
        }
        delivered.set(delivered.get() + out.len() as u64);
        Ok(())
    });
    m.set_rx_writeback_hook(None);
    res.unwrap();
    let mut rq = rq.into_inner();
    let mut pool = pool.into_inner();
    eprintln!(
        "igb hostile RX write-backs: {} cases, {} frames: {} delivered, {} errors, in {:.1} s",
        cases.get(),
        sent.get(),
        delivered.get(),
        stats.errors.get(),
        t_all.elapsed().as_secs_f64()
    );
    assert!(stats.errors.get() > 0, "the mutations reached the parser");
    // With the hook gone the queue receives cleanly.
    let mut d = vec![0u8; 100];
    d[..6].copy_from_slice(&OURS);
    let mut out = Burst::new();
    let t0 = Instant::now();
    let mut ok = false;
    while !ok && t0.elapsed() < Duration::from_secs(5) {
        rq.rx_burst(&mut pool, &mut out, 256);
        out.clear();
        m.inject(&d);
        m.wait_idle(Duration::from_secs(1));
        rq.rx_burst(&mut pool, &mut out, 256);
        ok = out.iter().any(|mb| mb.pkt_len() == 100);
    }
    assert!(ok, "a clean frame after the hostile ones");
    drop(out);
    rq.stop();
    drop(rq);
    assert_eq!(pool.stats().in_use, 0, "every buffer home");
    p.stop().unwrap();
}
