//! A hostile or broken E810 against the ice PMD (issue 16's fuzzed input):
//! property tests over the admin-queue completions the PMD parses (every
//! byte of the descriptor and of the returned buffer of any command of the
//! bring-up may be rewritten by the firmware) and over the RX write-back
//! descriptors the device writes (lengths, status and error bits, EOF,
//! RXDID). The properties: no panic, no hang (every case ends within its
//! bound), a failed bring-up is an error that names the port and what
//! failed, every delivered frame is well-formed, and every buffer is back
//! in its pool at the end. Cases per property: `PROPTEST_CASES` (256 by
//! default; `PROPTEST_CASES=1000000` for the long run).

mod common;

use common::*;
use pmd_ice::{IceModel, IcePort, ProbeOptions, Sink, Speed};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wirespeed::ethdev::{Port, PortConfig};
use wirespeed::mbuf::Burst;

/// One rewrite of one admin completion: the `nth` completion since the
/// probe began, a byte of its descriptor (`in_buf` false) or buffer, XORed.
#[derive(Debug, Clone)]
struct AqMutation {
    nth: u32,
    in_buf: bool,
    offset: u16,
    xor: u8,
}

fn aq_mutation() -> impl Strategy<Value = AqMutation> {
    (0u32..24, any::<bool>(), 0u16..512, 1u8..=255).prop_map(|(nth, in_buf, offset, xor)| {
        AqMutation {
            nth,
            in_buf,
            offset: if in_buf { offset } else { offset % 32 },
            xor,
        }
    })
}

fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// The bring-up under a hostile firmware: probe, configure, set up a TX
/// and an RX queue, start, send a few frames, stop. Ok, or an error naming
/// the port; never a panic, never longer than the bound.
#[test]
fn hostile_admin_completions_never_panic_or_hang() {
    let m = model(Sink::Count, false, Speed::G100);
    let muts: Arc<Mutex<Vec<AqMutation>>> = Arc::default();
    let seen = Arc::new(AtomicU64::new(0));
    {
        let (muts, seen) = (muts.clone(), seen.clone());
        m.set_admin_hook(Some(Box::new(move |_op, desc, buf| {
            let n = seen.fetch_add(1, Ordering::Relaxed) as u32;
            for x in muts.lock().unwrap().iter().filter(|x| x.nth == n) {
                let at = x.offset as usize;
                if x.in_buf {
                    if let Some(b) = buf.get_mut(at) {
                        *b ^= x.xor;
                    }
                } else {
                    desc[at % 32] ^= x.xor;
                }
            }
        })));
    }
    let pool = RefCell::new(pool(512));
    let (ok, failed) = (Cell::new(0u64), Cell::new(0u64));
    let samples = RefCell::new(std::collections::BTreeSet::new());
    let t_all = Instant::now();
    let mut runner = TestRunner::new(config());
    let res = runner.run(&prop::collection::vec(aq_mutation(), 1..6), |case| {
        *muts.lock().unwrap() = case;
        seen.store(0, Ordering::Relaxed);
        let t0 = Instant::now();
        let r = bring_up(&m, &mut pool.borrow_mut());
        prop_assert!(
            t0.elapsed() < Duration::from_secs(10),
            "a case took {:?}",
            t0.elapsed()
        );
        match r {
            Ok(()) => ok.set(ok.get() + 1),
            Err(e) => {
                prop_assert!(
                    e.starts_with("port ice-hostile:") && e.len() > "port ice-hostile: ".len(),
                    "an unclear error: {e}"
                );
                failed.set(failed.get() + 1);
                let mut sm = samples.borrow_mut();
                if sm.len() < 12 {
                    sm.insert(e.chars().take(140).collect::<String>());
                }
            }
        }
        prop_assert_eq!(
            pool.borrow().stats().in_use,
            0,
            "buffers home after the case"
        );
        Ok(())
    });
    m.set_admin_hook(None);
    res.unwrap();
    let (ok, failed) = (ok.get(), failed.get());
    eprintln!(
        "hostile admin completions: {} cases ({ok} brought up, {failed} refused with an error) in {:.1} s",
        ok + failed,
        t_all.elapsed().as_secs_f64()
    );
    for e in samples.borrow().iter() {
        eprintln!("  e.g. {e}");
    }
    assert!(failed > 0, "the mutations reached the parsers");
    // The model is sane again: a clean bring-up works.
    bring_up(&m, &mut pool.borrow_mut()).unwrap();
}

fn bring_up(m: &Arc<IceModel>, pool: &mut wirespeed::mbuf::Mempool) -> Result<(), String> {
    let mut p = IcePort::probe(
        "ice-hostile",
        m.clone(),
        0x8086,
        m.device_id(),
        &ProbeOptions {
            aq_len: 16,
            aq_timeout: Duration::from_millis(50),
        },
    )
    .map_err(|e| e.to_string())?;
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 1,
        tx_ring_size: 64,
        rx_ring_size: 64,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let mut tx = p.tx_queue(0).map_err(|e| e.to_string())?;
    let mut rx = p.rx_queue(0).map_err(|e| e.to_string())?;
    p.start().map_err(|e| e.to_string())?;
    let mut b = Burst::new();
    for s in 0..4 {
        b.push(mbuf(pool, &frame(s, 64))).unwrap();
    }
    tx.tx_burst(&mut b);
    drop(b);
    tx.clean(64);
    let mut got = Burst::new();
    rx.rx_burst(pool, &mut got, 32);
    drop(got);
    rx.stop();
    let _ = p.events();
    drop((tx, rx));
    p.stop().map_err(|e| e.to_string())?;
    Ok(())
}

/// One RX write-back rewrite per descriptor: XOR masks on both qwords
/// (DD kept set: a device that clears it just stalls its own ring).
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
    (
        prop_oneof![4 => 60usize..1514, 1 => 1514usize..6000],
        mask.clone(),
        mask,
    )
        .prop_map(|(len, qw0, qw1)| Frame { len, qw0, qw1 })
}

/// Frames sent over the model's loopback, each write-back rewritten: every
/// frame the PMD delivers is well-formed, the queue keeps receiving, and
/// every buffer comes home.
#[test]
fn hostile_rx_writebacks_never_panic_or_deliver_garbage() {
    let m = model(Sink::Loopback, false, Speed::G100);
    let plan: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    {
        let plan = plan.clone();
        m.set_rx_writeback_hook(Some(Box::new(move |_k, qw0, qw1| {
            let mut p = plan.lock().unwrap();
            if !p.is_empty() {
                let (a, b) = p.remove(0);
                *qw0 ^= a;
                *qw1 = (*qw1 ^ b) | u64::from(pmd_ice::regs::RX_FLEX_STATUS0_DD);
            }
        })));
    }
    let mut p = configured(&m, 256, 0);
    let tx = RefCell::new(p.tx_queue(0).unwrap());
    let rx = RefCell::new(p.rx_queue(0).unwrap());
    p.start().unwrap();
    // TX buffers large enough for a jumbo frame in one segment.
    let pool = RefCell::new(
        wirespeed::mbuf::Mempool::new(&wirespeed::mbuf::PoolConfig {
            name: "ice-hostile-tx".into(),
            size: 64,
            headroom: 128,
            data_room: 9216,
        })
        .unwrap(),
    );
    let rx_pool = RefCell::new(pool_for_rx());
    let stats = rx.borrow().stats();
    let (cases, delivered, sent) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let t_all = Instant::now();
    let mut runner = TestRunner::new(config());
    let res = runner.run(&prop::collection::vec(rx_frame(), 1..6), |frames| {
        cases.set(cases.get() + 1);
        let (mut tx, mut rx) = (tx.borrow_mut(), rx.borrow_mut());
        let (mut pool, mut rx_pool) = (pool.borrow_mut(), rx_pool.borrow_mut());
        {
            let mut pl = plan.lock().unwrap();
            pl.clear();
            for f in &frames {
                // One rewrite per descriptor the frame takes (2 KiB buffers).
                for _ in 0..f.len.div_ceil(2048) {
                    pl.push((f.qw0, f.qw1));
                }
            }
        }
        let mut b = Burst::new();
        for (i, f) in frames.iter().enumerate() {
            b.push(mbuf(&mut pool, &frame(i as u32, f.len))).unwrap();
        }
        let n = frames.len() as u32;
        let took = tx.tx_burst(&mut b) as u32;
        prop_assert_eq!(took, n);
        sent.set(sent.get() + u64::from(n));
        let t0 = Instant::now();
        let mut done = 0;
        let mut got = Burst::new();
        while done < n {
            done += tx.clean(256).packets;
            prop_assert!(t0.elapsed() < Duration::from_secs(5), "TX wedged");
        }
        let before = stats.packets.get();
        rx.rx_burst(&mut rx_pool, &mut got, 64);
        prop_assert_eq!(stats.packets.get() - before, got.len() as u64);
        for m in got.iter() {
            let segs: usize = m.segments().map(|s| s.data.len()).sum();
            prop_assert_eq!(segs, m.pkt_len(), "segments add up");
            prop_assert!(
                m.nb_segs() <= 5 && m.pkt_len() <= 5 * 2048,
                "{}",
                m.pkt_len()
            );
        }
        delivered.set(delivered.get() + got.len() as u64);
        drop(got);
        prop_assert_eq!(pool.stats().in_use, 0);
        Ok(())
    });
    m.set_rx_writeback_hook(None);
    res.unwrap();
    let errors = stats.errors.get();
    let (mut tx, mut rx) = (tx.into_inner(), rx.into_inner());
    let (mut pool, mut rx_pool) = (pool.into_inner(), rx_pool.into_inner());
    eprintln!(
        "hostile RX write-backs: {} cases, {} frames: {} delivered, {errors} errors, in {:.1} s",
        cases.get(),
        sent.get(),
        delivered.get(),
        t_all.elapsed().as_secs_f64()
    );
    // With the hook gone, the queue still receives cleanly (the first
    // clean frame may close a chain a hostile write-back left open, so
    // keep sending until one arrives whole).
    let mut got = Burst::new();
    wait_until("a clean frame after the hostile ones", || {
        let mut b = Burst::new();
        b.push(mbuf(&mut pool, &frame(7, 100))).unwrap();
        tx.tx_burst(&mut b);
        drop(b);
        std::thread::sleep(Duration::from_micros(100));
        tx.clean(64);
        got.clear();
        rx.rx_burst(&mut rx_pool, &mut got, 64);
        got.iter().any(|m| m.pkt_len() == 100)
    });
    for _ in 0..100 {
        tx.clean(256);
    }
    drop(got);
    rx.stop();
    drop((tx, rx));
    assert_eq!(rx_pool.stats().in_use, 0, "every RX buffer home");
    assert_eq!(pool.stats().in_use, 0);
}

fn pool_for_rx() -> wirespeed::mbuf::Mempool {
    pool(1024)
}
