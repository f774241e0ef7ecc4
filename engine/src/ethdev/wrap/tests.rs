//! The wrappers on the software ports: captures are exact, faults keep
//! packet conservation, pools come back full.

use super::*;
use crate::eal::dma::{set_page_mode, PageMode};
use crate::ethdev::pcap::read_file;
use crate::mbuf::{Burst, Mempool, PoolConfig};
use std::collections::HashMap;

fn pool(n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        size: n,
        ..Default::default()
    })
    .unwrap()
}

fn frames(pool: &mut Mempool, from: u32, n: u32, len: usize) -> Burst {
    let mut b = Burst::new();
    for i in from..from + n {
        let mut m = pool.alloc().unwrap();
        let mut d = vec![0u8; len];
        d[..4].copy_from_slice(&i.to_be_bytes());
        m.extend_from_slice(&d).unwrap();
        b.push(m).unwrap();
    }
    b
}

fn xs(p: &dyn Port) -> HashMap<String, u64> {
    p.xstats().into_iter().collect()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wirespeed-wrap-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn tap_on_null_captures_every_frame_once() {
    let mut pool = pool(256);
    let path = tmp("null.pcap");
    let reg = Registry::with_builtins();
    let mut p = reg.open(&format!("tap:{}+null", path.display())).unwrap();
    p.configure(&PortConfig::default()).unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    p.start().unwrap();
    let mut sent = 0u64;
    for round in 0..10 {
        let mut b = frames(&mut pool, round * 20, 20, 60 + round as usize);
        assert_eq!(tx.tx_burst(&mut b), 20);
        sent += tx.clean(256).packets as u64;
    }
    p.stop().unwrap();
    drop(tx);
    assert_eq!(sent, 200);
    assert_eq!(pool.stats().in_use, 0);
    let recs = read_file(&path).unwrap();
    assert_eq!(recs.len(), 200);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.data[..4], (i as u32).to_be_bytes(), "record {i} in order");
        assert_eq!(r.data.len(), 60 + i / 20);
    }
    assert_eq!(xs(p.as_ref())["tap_tx_frames"], 200);
}

#[test]
fn tap_writes_only_what_a_full_ring_took() {
    let mut pool = pool(64);
    let path = tmp("ring.pcap");
    let reg = Registry::with_builtins();
    let mut a = reg
        .open(&format!("tap:{}+ring:wrap-tap", path.display()))
        .unwrap();
    let mut b = reg.open("ring:wrap-tap").unwrap();
    let conf = PortConfig {
        tx_ring_size: 8,
        rx_ring_size: 8,
        ..Default::default()
    };
    a.configure(&conf).unwrap();
    b.configure(&conf).unwrap();
    let mut atx = a.tx_queue(0).unwrap();
    let mut arx = a.rx_queue(0).unwrap();
    let mut brx = b.rx_queue(0).unwrap();
    let mut btx = b.tx_queue(0).unwrap();
    let mut burst = frames(&mut pool, 0, 12, 64);
    assert_eq!(atx.tx_burst(&mut burst), 8, "ring of 8");
    assert_eq!(atx.tx_burst(&mut burst), 0, "still full");
    let mut got = Burst::new();
    assert_eq!(brx.rx_burst(&mut pool, &mut got, 64), 8);
    assert_eq!(atx.tx_burst(&mut burst), 4);
    assert_eq!(brx.rx_burst(&mut pool, &mut got, 64), 4);
    // The other direction: what B sends, A's tap sees arrive.
    let mut back = frames(&mut pool, 100, 3, 70);
    assert_eq!(btx.tx_burst(&mut back), 3);
    let mut rx = Burst::new();
    assert_eq!(arx.rx_burst(&mut pool, &mut rx, 64), 3);
    drop((got, rx));
    a.stop().unwrap();
    let recs = read_file(&path).unwrap();
    let ids: Vec<u32> = recs
        .iter()
        .map(|r| u32::from_be_bytes(r.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 101, 102]);
    let x = xs(a.as_ref());
    assert_eq!((x["tap_tx_frames"], x["tap_rx_frames"]), (12, 3));
}

/// Sends `n` frames through `tx` in bursts of 32, cleaning as it goes, and
/// returns (offered, reported by clean).
fn push(
    tx: &mut dyn TxQueue,
    pool: &mut Mempool,
    n: u32,
    mut far: impl FnMut(&mut Mempool),
) -> (u64, u64) {
    let (mut offered, mut reported) = (0u64, 0u64);
    let mut i = 0;
    let mut spins = 0;
    while i < n {
        let k = 32.min(n - i);
        let mut b = frames(pool, i, k, 64);
        let took = tx.tx_burst(&mut b) as u32;
        offered += took as u64;
        i += took;
        drop(b);
        far(pool);
        reported += tx.clean(usize::MAX).packets as u64;
        spins += 1;
        assert!(spins < 1_000_000, "no progress");
    }
    for _ in 0..10_000 {
        far(pool);
        reported += tx.clean(usize::MAX).packets as u64;
        if reported == offered {
            break;
        }
    }
    (offered, reported)
}

#[test]
fn fault_drop_keeps_conservation_on_every_software_port() {
    let reg = Registry::with_builtins();
    let pcap = tmp("fault.pcap");
    for inner in [
        "null",
        &format!("pcap:{}", pcap.display()),
        "ring:wrap-fault",
    ] {
        let mut pool = pool(512);
        let spec = format!("fault:drop=0.1,busy=0.2,seed=7+{inner}");
        let mut p = reg.open(&spec).unwrap();
        let mut far = if inner.starts_with("ring") {
            Some(reg.open("ring:wrap-fault").unwrap())
        } else {
            None
        };
        p.configure(&PortConfig::default()).unwrap();
        let mut tx = p.tx_queue(0).unwrap();
        let mut far_rx = far.as_mut().map(|f| {
            f.configure(&PortConfig::default()).unwrap();
            f.rx_queue(0).unwrap()
        });
        let (offered, reported) = push(tx.as_mut(), &mut pool, 5000, |pool| {
            if let Some(rx) = far_rx.as_mut() {
                let mut got = Burst::new();
                rx.rx_burst(pool, &mut got, 256);
            }
        });
        let s = p.stats();
        let x = xs(p.as_ref());
        assert_eq!(offered, 5000, "{spec}");
        assert_eq!(reported, offered, "{spec}: every packet reported once");
        assert_eq!(s.tx.packets + s.tx.drops + s.tx.errors, offered, "{spec}");
        assert_eq!(s.tx.drops, x["fault_drop"], "{spec}: one drop counter");
        assert!((400..600).contains(&x["fault_drop"]), "{spec}: {x:?}");
        assert!(x["fault_busy"] > 0, "{spec}: {x:?}");
        drop(tx);
        drop(far_rx);
        assert_eq!(pool.stats().in_use, 0, "{spec}: pool full");
    }
}

#[test]
fn fault_schedule_is_seeded_and_reorders_corrupts_and_delays() {
    let reg = Registry::with_builtins();
    let run = |seed: u64| {
        let mut pool = pool(128);
        let mut a = reg
            .open(&format!(
                "fault:reorder=0.2,corrupt=0.1,delay_us=2000,seed={seed}+ring:wrap-seed{seed}"
            ))
            .unwrap();
        let mut b = reg.open(&format!("ring:wrap-seed{seed}")).unwrap();
        a.configure(&PortConfig::default()).unwrap();
        b.configure(&PortConfig::default()).unwrap();
        let mut tx = a.tx_queue(0).unwrap();
        let mut rx = b.rx_queue(0).unwrap();
        let mut burst = frames(&mut pool, 0, 64, 64);
        assert_eq!(tx.tx_burst(&mut burst), 64);
        let mut got = Burst::new();
        assert_eq!(rx.rx_burst(&mut pool, &mut got, 256), 0, "held for 2 ms");
        let t0 = std::time::Instant::now();
        while got.len() < 64 && t0.elapsed().as_secs() < 5 {
            tx.clean(256);
            rx.rx_burst(&mut pool, &mut got, 256);
        }
        assert!(t0.elapsed().as_micros() >= 1000);
        let ids: Vec<u32> = got
            .iter()
            .map(|m| u32::from_be_bytes(m.data()[..4].try_into().unwrap()))
            .collect();
        let corrupt = got.iter().filter(|m| m.data()[63] != 0).count() as u64;
        let x = xs(a.as_ref());
        assert_eq!(x["fault_corrupt"], corrupt);
        assert_eq!(x["fault_delay"], 64);
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, (0..64).collect::<Vec<_>>(), "nothing lost");
        assert_eq!(ids != sorted, x["fault_reorder"] > 0);
        drop(got);
        assert_eq!(tx.clean(256).packets, 64);
        (ids, corrupt)
    };
    assert_eq!(run(5), run(5), "same seed, same faults");
    assert_ne!(run(5), run(6));
}

#[test]
fn fault_stall_withholds_completions_until_reset() {
    let mut pool = pool(2048);
    let reg = Registry::with_builtins();
    let mut p = reg.open("fault:stall=1,stall_ms=60000+null").unwrap();
    p.configure(&PortConfig {
        tx_ring_size: 64,
        ..Default::default()
    })
    .unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    let mut b = frames(&mut pool, 0, 100, 64);
    assert_eq!(tx.tx_burst(&mut b), 64, "the stalled ring fills");
    assert_eq!(tx.clean(256), Completed::default(), "stalled");
    assert_eq!(tx.free_slots(), 0);
    let c = tx.reset().expect("the fault layer resets");
    assert_eq!(c.packets, 64, "everything the stall withheld is reported");
    assert_eq!(xs(p.as_ref())["fault_reset"], 1);
    drop(b);
    drop(tx);
    assert_eq!(pool.stats().in_use, 0);
}
