//! The reliability suite's fault matrix (issue 16): each fault of the
//! `fault:` injector on each port kind, through the netdev queue with the
//! TX watchdog and the carrier poll running as the runtime runs them.
//! For every pair: the run ends, packet conservation holds (offered =
//! transmitted + exactly one drop counter), the fault's own counter says
//! it fired, a receiver got exactly what was transmitted, and every pool is
//! full at the end. The RX faults (`dup`, `fcs`) are checked on the ports
//! that receive what they send (a ring pair, `lo`).

use std::collections::HashMap;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{Port, PortConfig, Registry, RxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::netdev::{CarrierPolicy, NetdevQueue, QdiscConfig, QdiscKind, TxqConfig};

fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    pmd_igb::register(&mut r);
    pmd_ice::register(&mut r);
    r
}

/// Each TX fault with the xstat that counts it.
const TX_FAULTS: &[(&str, &str)] = &[
    ("drop=0.05", "fault_drop"),
    ("reorder=0.1", "fault_reorder"),
    ("corrupt=0.1", "fault_corrupt"),
    ("busy=0.1", "fault_busy"),
    ("refuse=0.02", "fault_refuse"),
    ("delay_us=300,delay=0.2", "fault_delay"),
    ("stall_ms=60000,stall=0.002", "fault_stall"),
    ("flap_ms=3,flap_every_ms=8", "fault_flap"),
];

const PACKETS: u32 = 3000;

fn pool(name: &str, n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: name.into(),
        size: n,
        ..Default::default()
    })
    .unwrap()
}

fn xs(p: &dyn Port) -> HashMap<String, u64> {
    p.xstats().into_iter().collect()
}

/// What the test drains: the far end of a ring, or the port's own RX (lo).
enum Rx {
    None,
    Far(Box<dyn Port>, Box<dyn RxQueue>),
    Own(Box<dyn RxQueue>),
}

impl Rx {
    fn drain(&mut self, pool: &mut Mempool) -> u64 {
        let rx = match self {
            Rx::None => return 0,
            Rx::Far(_, rx) | Rx::Own(rx) => rx,
        };
        let mut got = Burst::new();
        let mut n = 0;
        while rx.rx_burst(pool, &mut got, 256) > 0 {
            n += got.len() as u64;
            got.clear();
        }
        n
    }
    fn rx_packets(&self, port: &dyn Port) -> Option<u64> {
        match self {
            Rx::None => None,
            Rx::Far(p, _) => Some(p.stats().rx.packets),
            Rx::Own(_) => Some(port.stats().rx.packets),
        }
    }
}

/// One fault on one port: runs `PACKETS` through and checks the books.
fn run(inner: &str, fault: &str, counter: &str, tag: &str, policy: CarrierPolicy) {
    let reg = registry();
    let ring_name = format!("faults-{tag}");
    let inner = inner.replace("NAME", &ring_name);
    let spec = format!("fault:{fault},seed=5+{inner}");
    let is_ring = inner.starts_with("ring:");
    let is_lo = inner == "lo";
    let mut port = reg.open(&spec).unwrap();
    let pc = PortConfig {
        nb_rx_queues: u16::from(is_lo),
        tx_ring_size: 256,
        rx_ring_size: 256,
        ..Default::default()
    };
    port.configure(&pc).unwrap();
    let mut rx = if is_ring {
        let mut far = reg.open(&inner).unwrap();
        far.configure(&PortConfig {
            nb_rx_queues: 1,
            ..pc.clone()
        })
        .unwrap();
        let q = far.rx_queue(0).unwrap();
        far.start().unwrap();
        Rx::Far(far, q)
    } else if is_lo {
        Rx::Own(port.rx_queue(0).unwrap())
    } else {
        Rx::None
    };
    let txq = port.tx_queue(0).unwrap();
    port.start().unwrap();
    let tsc = Tsc::global();
    let conf = TxqConfig {
        qdisc: QdiscConfig {
            kind: QdiscKind::PfifoFast,
            txqueuelen: 1000,
            ..Default::default()
        },
        watchdog_timeout_ms: 20,
        carrier: policy,
        ..Default::default()
    };
    let mut q = NetdevQueue::new(0, port.name(), txq, &conf, tsc).unwrap();
    let mut pool = pool("faults", 2048);
    let mut rx_pool = pool_for_rx();
    let (mut next, mut received) = (0u32, 0u64);
    let t0 = Instant::now();
    loop {
        if next < PACKETS {
            let k = q.tx_room(0).min(32).min((PACKETS - next) as usize);
            let mut b = Burst::new();
            for i in 0..k as u32 {
                let mut m = pool.alloc().expect("the pool outlasts the run");
                let len = 64 + ((next + i) as usize * 53) % 1400;
                let d = m.append(len).unwrap();
                d.fill(0x5a);
                d[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
                d[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
                d[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
                d[14..18].copy_from_slice(&(next + i).to_be_bytes());
                b.push(m).unwrap();
            }
            next += k as u32;
            q.xmit_burst(&mut b);
            assert!(b.is_empty());
        }
        q.poll();
        received += rx.drain(&mut rx_pool);
        q.carrier_poll();
        q.watchdog(tsc.now());
        let c = q.counters();
        assert_eq!(c.unaccounted(), 0, "{spec}: {c:?}");
        if next == PACKETS
            && q.is_idle()
            && q.has_carrier()
            && (counter != "fault_flap"
                || (c.carrier_changes >= 4 && xs(port.as_ref())[counter] >= 2))
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{spec}: the run did not end: {c:?} {:?}",
            xs(port.as_ref())
        );
        std::hint::spin_loop();
    }
    // What is still on its way to a receiver.
    let t1 = Instant::now();
    let st = port.stats().tx;
    while rx.rx_packets(port.as_ref()).is_some_and(|n| n < st.packets) {
        received += rx.drain(&mut rx_pool);
        assert!(
            t1.elapsed() < Duration::from_secs(5),
            "{spec}: receiver short"
        );
    }
    let c = q.counters();
    let x = xs(port.as_ref());
    assert_eq!(c.offered, u64::from(PACKETS), "{spec}");
    assert_eq!(
        c.sent_packets,
        st.packets + st.drops + st.errors,
        "{spec}: taken = transmitted + one port drop ({st:?})"
    );
    assert_eq!(
        c.offered,
        st.packets + st.drops + st.errors + c.drops(),
        "{spec}: offered = transmitted + one drop counter ({st:?} {c:?})"
    );
    assert!(x[counter] > 0, "{spec}: {counter} never fired: {x:?}");
    if let Some(n) = rx.rx_packets(port.as_ref()) {
        assert_eq!(n, st.packets, "{spec}: the receiver got what was sent");
        assert_eq!(received, st.packets, "{spec}");
    }
    if counter == "fault_drop" {
        assert_eq!(st.drops, x["fault_drop"], "{spec}: one drop counter");
    }
    if counter == "fault_flap" {
        assert!(
            c.carrier_changes >= 4,
            "{spec}: the queue saw the carrier go and return: {c:?}"
        );
        if policy == CarrierPolicy::Hold {
            assert_eq!(c.carrier_drops, 0, "{spec}");
        }
    }
    if counter == "fault_stall" {
        assert!(c.tx_timeouts > 0, "{spec}: the watchdog reset the stall");
    }
    drop(q);
    drop(rx);
    port.stop().unwrap();
    assert_eq!(pool.stats().in_use, 0, "{spec}: pool full at the end");
    assert_eq!(rx_pool.stats().in_use, 0, "{spec}: RX pool full at the end");
}

fn pool_for_rx() -> Mempool {
    pool("faults-rx", 1024)
}

fn matrix(inner: &str, kind: &str) {
    for (i, (fault, counter)) in TX_FAULTS.iter().enumerate() {
        let policy = if i % 2 == 0 {
            CarrierPolicy::Drop
        } else {
            CarrierPolicy::Hold
        };
        run(inner, fault, counter, &format!("{kind}-{i}"), policy);
        if fault.starts_with("flap") {
            let other = match policy {
                CarrierPolicy::Drop => CarrierPolicy::Hold,
                CarrierPolicy::Hold => CarrierPolicy::Drop,
            };
            run(inner, fault, counter, &format!("{kind}-{i}b"), other);
        }
    }
}

#[test]
fn faults_on_null() {
    matrix("null", "null");
}

#[test]
fn faults_on_pcap() {
    let path = std::env::temp_dir().join(format!("ws-faults-{}.pcap", std::process::id()));
    matrix(&format!("pcap:{}", path.display()), "pcap");
    std::fs::remove_file(path).ok();
}

#[test]
fn faults_on_ring() {
    matrix("ring:NAME", "ring");
}

#[test]
fn faults_on_lo() {
    matrix("lo", "lo");
}

#[test]
fn faults_on_igb_model() {
    matrix("igb-model?speed=unlimited&sink=count", "igb");
}

#[test]
fn faults_on_ice_model() {
    matrix("ice-model?speed=100g&sink=count&pacing=off", "ice");
}

/// The RX faults on the ports that receive what they send: duplicates add
/// to what arrives, bad-FCS frames are discarded and counted, and the
/// receiver's books close: delivered = sent − CRC errors + duplicates.
#[test]
fn rx_faults_on_ring_and_lo() {
    let reg = registry();
    for (tx_spec, rx_spec) in [
        (
            "ring:faults-rx",
            "fault:dup=0.1,fcs=0.05,seed=9+ring:faults-rx",
        ),
        ("", "fault:dup=0.1,fcs=0.05,seed=9+lo"),
    ] {
        let mut rxp = reg.open(rx_spec).unwrap();
        let mut txp = (!tx_spec.is_empty()).then(|| reg.open(tx_spec).unwrap());
        let pc = PortConfig::default();
        rxp.configure(&pc).unwrap();
        let mut rxq = rxp.rx_queue(0).unwrap();
        let mut txq = match txp.as_mut() {
            Some(t) => {
                t.configure(&pc).unwrap();
                t.tx_queue(0).unwrap()
            }
            None => rxp.tx_queue(0).unwrap(),
        };
        let mut pool = pool("rx-faults", 1024);
        let mut got = 0u64;
        let mut sent = 0u64;
        for round in 0..100u32 {
            let mut b = Burst::new();
            pool.alloc_bulk(&mut b, 32);
            for (i, m) in b.as_mut_slice().iter_mut().enumerate() {
                m.append(60).unwrap()[..4].copy_from_slice(&(round * 32 + i as u32).to_be_bytes());
            }
            sent += txq.tx_burst(&mut b) as u64;
            let mut r = Burst::new();
            while rxq.rx_burst(&mut pool, &mut r, 64) > 0 {
                got += r.len() as u64;
                r.clear();
            }
            txq.clean(256);
        }
        let x = xs(rxp.as_ref());
        let s = rxp.stats().rx;
        assert_eq!(sent, 3200, "{rx_spec}");
        assert!(x["fault_dup"] > 0 && x["fault_fcs"] > 0, "{rx_spec}: {x:?}");
        assert_eq!(
            got,
            sent - x["fault_fcs"] + x["fault_dup"],
            "{rx_spec}: {x:?}"
        );
        assert_eq!(s.packets, got, "{rx_spec}");
        assert_eq!(s.errors, x["rx_crc_errors"], "{rx_spec}");
        drop((rxq, txq));
        assert_eq!(pool.stats().in_use, 0, "{rx_spec}: pool full");
    }
}
