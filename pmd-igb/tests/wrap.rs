//! The wrappers around igb-model: the tap captures exactly what went on the
//! wire, faults keep conservation, and the TX watchdog resets a queue whose
//! completions stalled (igb's TXDCTL disable/enable and ring re-init).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::pcap::read_file;
use wirespeed::ethdev::{Port, PortConfig, Registry, TxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::netdev::{NetdevQueue, TxqConfig};

fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    pmd_igb::register(&mut r);
    r
}

fn pool(n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: "igb-wrap".into(),
        size: n,
        ..Default::default()
    })
    .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wirespeed-igb-wrap-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// A 64..=1514-byte IPv4/UDP frame with valid checksums and `seq` in its payload.
fn frame(seq: u32) -> Vec<u8> {
    let size = 64 + (seq as usize * 37) % 1450;
    let mut f = vec![0u8; size];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((size - 14) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[198, 18, 0, 1]);
    f[30..34].copy_from_slice(&[198, 18, 0, 2]);
    f[34..36].copy_from_slice(&1234u16.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&((size - 34) as u16).to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    pmd_igb::model::net::insert_ipv4_csum(&mut f, 14, 20);
    let pseudo = pmd_igb::model::net::sum16(&f[26..34], 0) + 17 + (size - 34) as u32;
    let c = !pmd_igb::model::net::fold(pmd_igb::model::net::sum16(&f[34..], pseudo));
    f[40..42].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    f
}

fn burst(pool: &mut Mempool, seqs: std::ops::Range<u32>) -> Burst {
    let mut b = Burst::new();
    for s in seqs {
        let mut m = pool.alloc().unwrap();
        m.extend_from_slice(&frame(s)).unwrap();
        b.push(m).unwrap();
    }
    b
}

fn xs(p: &dyn Port) -> HashMap<String, u64> {
    p.xstats().into_iter().collect()
}

fn open(spec: &str, ring: u16) -> (Box<dyn Port>, Box<dyn TxQueue>) {
    let mut p = registry().open(spec).unwrap();
    p.configure(&PortConfig {
        tx_ring_size: ring,
        nb_rx_queues: 0,
        ..Default::default()
    })
    .unwrap();
    let q = p.tx_queue(0).unwrap();
    p.start().unwrap();
    (p, q)
}

/// Offers `n` frames, cleaning until all are reported; returns reported.
fn send(q: &mut dyn TxQueue, pool: &mut Mempool, n: u32) -> u64 {
    let (mut next, mut reported) = (0u32, 0u64);
    let t0 = std::time::Instant::now();
    while next < n || reported < u64::from(n) {
        if next < n {
            let mut b = burst(pool, next..(next + 32).min(n));
            next += q.tx_burst(&mut b) as u32;
        }
        reported += u64::from(q.clean(usize::MAX).packets);
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "stuck at {next}/{reported}"
        );
    }
    reported
}

/// tshark's verdict on each frame's IPv4 and UDP checksums ("1 1" = good).
fn tshark_checksums(pcap: &Path) -> Vec<String> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ])
        .args(["-T", "fields", "-E", "separator=/s"])
        .args(["-e", "ip.checksum.status", "-e", "udp.checksum.status"])
        .output()
        .expect("tshark is required for this test (apt-get install tshark)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tap_on_igb_model_captures_exactly_what_went_on_the_wire() {
    let mut pool = pool(1024);
    let (tap, wire) = (tmp("tap.pcap"), tmp("wire.pcap"));
    let spec = format!(
        "tap:{}+igb-model?speed=unlimited&sink=pcap:{}",
        tap.display(),
        wire.display()
    );
    let (mut p, mut q) = open(&spec, 64);
    assert_eq!(send(q.as_mut(), &mut pool, 500), 500);
    let x = xs(p.as_ref());
    assert_eq!(x["tap_tx_frames"], 500);
    assert_eq!(p.stats().tx.packets, 500);
    drop(q);
    p.stop().unwrap();
    drop(p);
    assert_eq!(pool.stats().in_use, 0, "pool full");
    let (t, w) = (read_file(&tap).unwrap(), read_file(&wire).unwrap());
    assert_eq!(t.len(), 500);
    let td: Vec<&[u8]> = t.iter().map(|r| &r.data[..]).collect();
    let wd: Vec<&[u8]> = w.iter().map(|r| &r.data[..]).collect();
    assert_eq!(td, wd, "the tap saw what the NIC sent, in order");
    let v = tshark_checksums(&tap);
    assert_eq!(v.len(), 500);
    assert!(v.iter().all(|l| l == "1 1"), "{:?}", &v[..5]);
}

#[test]
fn fault_drop_on_igb_model_keeps_conservation() {
    let mut pool = pool(1024);
    let (p, mut q) = open(
        "fault:drop=0.05,seed=11+igb-model?speed=unlimited&sink=count",
        128,
    );
    assert_eq!(send(q.as_mut(), &mut pool, 4000), 4000);
    let x = xs(p.as_ref());
    let s = p.stats();
    assert_eq!(
        s.tx.packets + s.tx.drops,
        4000,
        "offered = sent + one drop counter"
    );
    assert_eq!(s.tx.drops, x["fault_drop"]);
    assert!((120..300).contains(&x["fault_drop"]), "{x:?}");
    let t0 = std::time::Instant::now();
    while xs(p.as_ref())["model_wire_frames"] < s.tx.packets && t0.elapsed().as_secs() < 5 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        xs(p.as_ref())["model_wire_frames"],
        s.tx.packets,
        "on the wire = sent"
    );
    drop(q);
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn igb_reset_frees_the_ring_and_the_queue_sends_again() {
    let mut pool = pool(512);
    // 10 Mbit/s: 1500-byte frames take 1.2 ms each, so most stay on the ring.
    let (p, mut q) = open("igb-model?speed=10m&sink=count", 64);
    let mut b = burst(&mut pool, 0..60);
    let taken = q.tx_burst(&mut b) as u64;
    drop(b);
    std::thread::sleep(Duration::from_millis(3));
    let c = q.reset().expect("igb resets a queue");
    assert_eq!(u64::from(c.packets), taken, "each packet reported once");
    let s = p.stats();
    assert!(s.tx.drops > 0, "some were still on the ring");
    assert_eq!(s.tx.packets + s.tx.drops, taken);
    assert_eq!(q.free_slots(), 63, "the ring is empty again");
    assert_eq!(pool.stats().in_use, 0, "every buffer came home");
    // Traffic resumes on the re-initialised ring.
    let mut b = burst(&mut pool, 100..104);
    assert_eq!(q.tx_burst(&mut b), 4);
    let t0 = std::time::Instant::now();
    let mut done = 0;
    while done < 4 && t0.elapsed().as_secs() < 5 {
        done += q.clean(64).packets;
    }
    assert_eq!(done, 4);
    let wire = xs(p.as_ref())["model_wire_frames"];
    assert_eq!(
        wire,
        p.stats().tx.packets,
        "sent = on the wire, after the reset too"
    );
}

#[test]
fn watchdog_recovers_a_stalled_igb_model_queue() {
    let mut pool = pool(2048);
    let (p, q) = open(
        "fault:stall=0.002,stall_ms=600000,seed=2+igb-model?speed=unlimited&sink=count",
        256,
    );
    let tsc = Tsc::global();
    let conf = TxqConfig {
        watchdog_timeout_ms: 30,
        ..Default::default()
    };
    let mut nq = NetdevQueue::new(0, p.name(), q, &conf, tsc).unwrap();
    let (total, mut next) = (6000u32, 0u32);
    let mut timeouts = Vec::new();
    let t0 = std::time::Instant::now();
    while next < total || !nq.is_idle() {
        if next < total && nq.backlog_packets() < 256 {
            let mut b = burst(&mut pool, next..(next + 32).min(total));
            next += b.len() as u32;
            nq.xmit_burst(&mut b);
        }
        nq.poll();
        if let Some(t) = nq.watchdog(tsc.now()) {
            timeouts.push(t);
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
    assert_eq!(c.tx_timeouts, timeouts.len() as u64);
    assert_eq!(c.unaccounted(), 0);
    assert_eq!(c.offered, u64::from(total));
    let s = p.stats();
    assert_eq!(
        s.tx.packets + s.tx.drops,
        c.sent_packets,
        "one drop counter each"
    );
    let t1 = std::time::Instant::now();
    while xs(p.as_ref())["model_wire_frames"] < s.tx.packets && t1.elapsed().as_secs() < 5 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        xs(p.as_ref())["model_wire_frames"],
        s.tx.packets,
        "sent = on the wire"
    );
    assert_eq!(nq.bql().inflight, 0);
    drop(nq);
    assert_eq!(pool.stats().in_use, 0);
}
