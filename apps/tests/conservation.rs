//! Packet conservation over every port kind (issue 10): random frame sizes
//! (runts and frames above the MTU included), random bursts, random qdisc
//! and BQL settings, through the netdev queue (`NetdevQueue`). Every packet
//! offered is transmitted or counted in exactly one drop counter (the
//! qdisc's, the netdev queue's, or the port's tx drops / errors), BQL ends
//! with nothing in flight, and every pool is full at the end.

use proptest::prelude::*;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{Port, PortConfig, Registry, RxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::netdev::{BqlConfig, NetdevQueue, QdiscConfig, QdiscKind, TxqConfig, DQL_MAX_LIMIT};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Null,
    Pcap,
    Ring,
    IgbModel,
    IceModel,
}

#[derive(Debug, Clone)]
struct Case {
    bursts: Vec<Vec<usize>>,
    bql: bool,
    limit_min: u32,
    limit_max: u32,
    noqueue: bool,
    txqueuelen: usize,
    tx_burst: usize,
}

/// Frame sizes: mostly ordinary, some runts (below igb's 17-byte minimum
/// and ice's padding length) and some above the 1518-byte MTU frame.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 60usize..=1514,
        2 => 1usize..60,
        2 => 1515usize..=2048,
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(prop::collection::vec(size(), 1..=48), 1..=12),
        any::<bool>(),
        0u32..=4000,
        prop_oneof![Just(DQL_MAX_LIMIT), 0u32..=100_000],
        any::<bool>(),
        8usize..=600,
        1usize..=64,
    )
        .prop_map(
            |(bursts, bql, lo, hi, noqueue, txqueuelen, tx_burst)| Case {
                bursts,
                bql,
                limit_min: lo.min(hi),
                limit_max: hi.max(lo),
                noqueue,
                txqueuelen,
                tx_burst,
            },
        )
}

fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    pmd_igb::register(&mut r);
    pmd_ice::register(&mut r);
    r
}

/// The far end of a `ring` cable and its RX queue, which the test drains.
type FarEnd = (Box<dyn Port>, Box<dyn RxQueue>);

/// Opens the port under test and, for `ring`, the far end whose RX the test
/// drains (the cable's other side).
fn open(kind: Kind, tag: &str) -> (Box<dyn Port>, Option<FarEnd>) {
    let r = registry();
    let conf = PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 0,
        tx_ring_size: 256,
        rx_ring_size: 256,
        ..Default::default()
    };
    let spec = match kind {
        Kind::Null => "null".to_string(),
        Kind::Pcap => format!(
            "pcap:{}",
            std::env::temp_dir()
                .join(format!("ws-conservation-{}-{tag}.pcap", std::process::id()))
                .display()
        ),
        Kind::Ring => format!("ring:conservation-{tag}"),
        Kind::IgbModel => "igb-model?speed=unlimited&sink=count".to_string(),
        Kind::IceModel => "ice-model?speed=100g&sink=count&pacing=off".to_string(),
    };
    let mut p = r.open(&spec).unwrap();
    p.configure(&conf).unwrap();
    let far = if let Kind::Ring = kind {
        let mut b = r.open(&spec).unwrap();
        b.configure(&PortConfig {
            nb_rx_queues: 1,
            ..conf
        })
        .unwrap();
        let rx = b.rx_queue(0).unwrap();
        b.start().unwrap();
        Some((b, rx))
    } else {
        None
    };
    (p, far)
}

fn run(kind: Kind, c: &Case, tag: &str) -> Result<(), TestCaseError> {
    set_page_mode(PageMode::Small);
    let (mut port, mut far) = open(kind, tag);
    let txq = port.tx_queue(0).unwrap();
    port.start().unwrap();
    let conf = TxqConfig {
        qdisc: QdiscConfig {
            kind: if c.noqueue {
                QdiscKind::Noqueue
            } else {
                QdiscKind::PfifoFast
            },
            txqueuelen: c.txqueuelen,
            ..Default::default()
        },
        bql: BqlConfig {
            enabled: c.bql,
            limit_min: c.limit_min,
            limit_max: c.limit_max,
            ..Default::default()
        },
        tx_burst: c.tx_burst,
        ..Default::default()
    };
    let mut q = NetdevQueue::new(0, port.name(), txq, &conf, Tsc::global()).unwrap();
    let mut pool = Mempool::new(&PoolConfig {
        name: "conservation".into(),
        size: 1024,
        ..Default::default()
    })
    .unwrap();
    let mut far_pool = Mempool::new(&PoolConfig {
        name: "far".into(),
        size: 64,
        ..Default::default()
    })
    .unwrap();
    let mut got = Burst::new();
    let mut drain_far = |got: &mut Burst| {
        if let Some((_, rx)) = far.as_mut() {
            while rx.rx_burst(&mut far_pool, got, 256) > 0 {
                got.clear();
            }
        }
    };
    let mut offered = 0u64;
    for sizes in &c.bursts {
        let mut b = Burst::new();
        for &len in sizes {
            let mut m = pool.alloc().expect("the pool outlasts every case");
            m.append(len).unwrap().fill(0x5a);
            b.push(m).unwrap();
        }
        offered += sizes.len() as u64;
        q.xmit_burst(&mut b);
        prop_assert!(b.is_empty(), "xmit_burst takes every packet");
        q.poll();
        drain_far(&mut got);
    }
    // Drain: clean and run the qdisc until nothing is queued or in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        q.poll();
        drain_far(&mut got);
        let s = q.snapshot();
        if s.counters.backlog_packets == 0
            && s.counters.completed_packets == s.counters.sent_packets
        {
            break;
        }
        prop_assert!(Instant::now() < deadline, "{kind:?}: queue wedged: {s}");
        std::thread::sleep(Duration::from_micros(50));
    }
    let s = q.snapshot();
    let c2 = s.counters;
    let st = port.stats().tx;
    prop_assert_eq!(c2.offered, offered);
    prop_assert_eq!(c2.unaccounted(), 0, "{}", s);
    prop_assert!(q.is_idle(), "{:?}: idle after the drain: {}", kind, s);
    prop_assert_eq!(s.bql.inflight, 0, "{}", s);
    prop_assert!(
        !s.xoff.stack,
        "{:?}: STACK_XOFF after the drain: {}",
        kind,
        s
    );
    // Each packet the driver took: transmitted, or one port drop / error.
    prop_assert_eq!(
        c2.sent_packets,
        st.packets + st.drops + st.errors,
        "{:?}: taken = transmitted + dropped ({:?})",
        kind,
        st
    );
    prop_assert_eq!(
        offered,
        st.packets + st.drops + st.errors + c2.drops(),
        "{:?}: offered = transmitted + one drop counter ({:?}, {})",
        kind,
        st,
        s
    );
    if let Some((b, _)) = far.as_ref() {
        prop_assert_eq!(
            b.stats().rx.packets,
            st.packets,
            "the far end got every frame"
        );
    }
    drop(q);
    prop_assert_eq!(pool.stats().in_use, 0, "{:?}: pool full at the end", kind);
    prop_assert_eq!(far_pool.stats().in_use, 0);
    port.stop().unwrap();
    if let Kind::Pcap = kind {
        let f = port.name().trim_start_matches("pcap:").to_string();
        drop(port);
        std::fs::remove_file(f).ok();
    }
    Ok(())
}

macro_rules! conservation {
    ($name:ident, $kind:expr, $cases:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: $cases, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $name(c in case()) {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let tag = format!("{}-{}", stringify!($name), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                run($kind, &c, &tag)?;
            }
        }
    };
}

conservation!(conservation_null, Kind::Null, 32);
conservation!(conservation_pcap, Kind::Pcap, 24);
conservation!(conservation_ring, Kind::Ring, 32);
conservation!(conservation_igb_model, Kind::IgbModel, 16);
conservation!(conservation_ice_model, Kind::IceModel, 16);
