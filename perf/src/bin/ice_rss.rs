//! Receive-side scaling on the ice (E810) model: one lcore draining one RX
//! queue against two lcores each draining its own, with the same
//! per-packet work (rx_burst, a per-flow counter indexed by the NIC's RSS
//! hash, a MAC swap as in the macswap example, bulk free). The method is
//! `igb_rss`'s; what differs is the device: the key and the 2048-entry PF
//! LUT go to the model's firmware over the admin queue (set_rss_key,
//! set_rss_lut), and the hash comes back in the flex descriptor.
//!
//! How it measures, so that neither the model's DMA engine (a third
//! thread on a two-core machine) nor the machine's other load is counted
//! as lcore work: one port with two RSS queues; rounds alternate between
//! "one lcore" (the LUT sends every flow to queue 0, lcore 0 receives
//! them all) and "two lcores" (round-robin LUT, each lcore its queue),
//! the LUT switched between rounds with `IcePort::update_rss`. Each round
//! the lcores first arm their rings (4096 descriptors), then the harness
//! injects the frames and waits until the model has written all of them
//! to the rings (its engine then sleeps); only then are the spinning
//! lcores released, each draining exactly its share. The flows are 256
//! UDP source ports chosen so that the default Toeplitz key and the
//! round-robin LUT split them exactly 128/128, so both queues get
//! `PER_QUEUE` frames.
//!   - per lcore and round: the on-CPU time of its thread over the drain
//!     (`CLOCK_THREAD_CPUTIME_ID`: time other threads or processes held
//!     its core is not counted) / frames, and TSC cycles / frames (wall);
//!   - per pair of adjacent rounds: scaling = (Σ over the two lcores of
//!     1 / on-CPU time per packet) / (1 / the single lcore's), i.e. the
//!     receive capacity of two lcores over one, each on its own core;
//!     the median over the pairs (and quartiles) is printed;
//!   - the wall-clock throughput is printed too: on a shared two-core
//!     machine it shows the other load, not the engine.
//!
//! usage: ice_rss [PAIRS]   (default 100; lcores on cores 0 and 1)

use pmd_ice::rx::IceRxQueue;
use pmd_ice::{IceModel, IcePort, ModelConfig, ProbeOptions, Sink};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::tsc::rdtsc;
use wirespeed::eal::{CoreList, Tsc};
use wirespeed::ethdev::rss::{toeplitz_hash, DEFAULT_RSS_KEY};
use wirespeed::ethdev::{Port, PortConfig, RssConf, RxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed_perf::{pin, thread_cpu_ns};

/// Frames each queue receives per round (30 × 128 flows: an equal split).
const PER_QUEUE: usize = 3840;
const RING: u16 = 4096;
/// Entries of the PF LUT the model's capabilities report.
const LUT: u16 = 2048;
const BURST: usize = 32;
const SRC: [u8; 4] = [198, 18, 0, 1];
const DST: [u8; 4] = [198, 18, 0, 2];

/// A 64-byte UDP frame to the model's MAC from source port `sport`.
fn frame(sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&ModelConfig::default().mac.0);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    f[12] = 8;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&SRC);
    f[30..34].copy_from_slice(&DST);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&1024u16.to_be_bytes());
    f[38..40].copy_from_slice(&30u16.to_be_bytes());
    f
}

/// The queue (of 2, round-robin LUT) the NIC sends a source port to.
fn queue_of(sport: u16) -> usize {
    let mut t = [SRC, DST].concat();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&1024u16.to_be_bytes());
    (toeplitz_hash(&DEFAULT_RSS_KEY, &t) & (LUT as u32 - 1)) as usize % 2
}

/// The per-packet work: count the flow by the NIC's hash, swap the MACs.
#[inline]
fn work(b: &mut Burst, flows: &mut [u64; 4096]) {
    for m in b.as_mut_slice() {
        let h = m.rss_hash().unwrap_or(0);
        flows[(h & 4095) as usize] += 1;
        let d = m.data_mut();
        let mut a = [0u8; 6];
        a.copy_from_slice(&d[..6]);
        d.copy_within(6..12, 0);
        d[6..12].copy_from_slice(&a);
    }
    b.clear();
}

/// What one lcore measured in one round.
#[derive(Clone, Copy)]
struct Round {
    /// TSC at the start and the end of its drain.
    t0: u64,
    t1: u64,
    /// Its thread's on-CPU nanoseconds over the drain.
    cpu_ns: u64,
}

/// Frames lcore `l` receives in round `r`: even rounds steer everything
/// to queue 0 (one lcore), odd rounds split the flows over both queues.
fn share(l: usize, r: usize) -> usize {
    if r.is_multiple_of(2) && l == 1 {
        0
    } else {
        PER_QUEUE
    }
}

/// One lcore: per round arms its ring, waits (spinning, as an lcore does)
/// until the frames are in, and drains exactly its share of them.
fn lcore(
    core: usize,
    mut q: IceRxQueue<IceModel>,
    rounds: usize,
    armed: Arc<Barrier>,
    go: Arc<AtomicUsize>,
) -> (Vec<Round>, u64) {
    pin(core);
    let mut pool = Mempool::new(&PoolConfig {
        name: format!("rss{core}"),
        size: 8192,
        ..Default::default()
    })
    .expect("mempool");
    let mut b = Burst::new();
    let mut flows = Box::new([0u64; 4096]);
    let mut out = Vec::with_capacity(rounds);
    for r in 0..rounds {
        for _ in 0..RING / 32 {
            q.rx_burst(&mut pool, &mut b, 0);
        }
        armed.wait();
        while go.load(Ordering::Acquire) <= r {
            std::hint::spin_loop();
        }
        let want = share(core, r);
        let c0 = thread_cpu_ns();
        let t0 = rdtsc();
        let mut got = 0;
        while got < want {
            got += q.rx_burst(&mut pool, &mut b, BURST);
            work(&mut b, &mut flows);
        }
        let t1 = rdtsc();
        out.push(Round {
            t0,
            t1,
            cpu_ns: thread_cpu_ns() - c0,
        });
    }
    (out, flows.iter().sum())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `pairs` pairs of rounds (one lcore, then two) on one port with
/// two RSS queues, switching the LUT between them; per lcore and round
/// what it measured.
fn bench(pairs: usize, flows: &[u16]) -> Vec<Vec<Round>> {
    let m = Arc::new(
        IceModel::new(ModelConfig {
            sink: Sink::Count,
            pacing: false,
            ..ModelConfig::default()
        })
        .expect("model"),
    );
    let mut p = IcePort::probe(
        "ice-model",
        m.clone(),
        0x8086,
        m.device_id(),
        &ProbeOptions::default(),
    )
    .expect("probe");
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 2,
        rx_ring_size: RING,
        rss: Some(RssConf::spread(2, LUT)),
        ..PortConfig::default()
    })
    .expect("configure");
    let qs: Vec<_> = (0..2)
        .map(|q| p.ice_rx_queue(q).expect("rx queue"))
        .collect();
    p.start().expect("start");
    let rounds = 2 * pairs;
    let armed = Arc::new(Barrier::new(3));
    let go = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = qs
        .into_iter()
        .enumerate()
        .map(|(l, q)| {
            let (a, g) = (armed.clone(), go.clone());
            std::thread::spawn(move || lcore(l, q, rounds, a, g))
        })
        .collect();
    let frames: Vec<Vec<u8>> = flows.iter().map(|&s| frame(s)).collect();
    let mut delivered = 0u64;
    for r in 0..rounds {
        let nq = if r.is_multiple_of(2) { 1 } else { 2 };
        // `rte_eth_dev_rss_reta_update`: all flows to queue 0, or split.
        p.update_rss(RssConf::spread(nq, LUT)).expect("LUT update");
        armed.wait();
        for f in frames.iter().cycle().take(PER_QUEUE * nq as usize) {
            while !m.inject(f) {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        // The model's engine has written every frame to the rings.
        delivered += (PER_QUEUE * nq as usize) as u64;
        let t0 = std::time::Instant::now();
        while m.stats().rx_frames < delivered {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "model did not deliver: {:?}",
                m.stats()
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        assert_eq!(m.stats().rx_no_desc, 0, "a ring ran out of descriptors");
        go.store(r + 1, Ordering::Release);
    }
    let res: Vec<_> = hs.into_iter().map(|h| h.join().expect("lcore")).collect();
    let counted: u64 = res.iter().map(|(_, c)| c).sum();
    assert_eq!(
        counted,
        (3 * PER_QUEUE * pairs) as u64,
        "every frame received once"
    );
    res.into_iter().map(|(v, _)| v).collect()
}

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .max(4);
    set_page_mode(PageMode::Auto);
    // The lcores own cores 0 and 1: the model's engine thread is not pinned.
    wirespeed::eal::lcore::claim(&CoreList::parse("0-1").expect("core list"));
    // 128 source ports the round-robin LUT sends to each queue.
    let (mut q0, mut q1) = (Vec::new(), Vec::new());
    for s in 1000u16.. {
        let v = if queue_of(s) == 0 { &mut q0 } else { &mut q1 };
        if v.len() < 128 {
            v.push(s);
        }
        if q0.len() == 128 && q1.len() == 128 {
            break;
        }
    }
    let flows: Vec<u16> = q0.into_iter().zip(q1).flat_map(|(a, b)| [a, b]).collect();
    println!(
        "ice model, RSS (default key, round-robin 2048-entry PF LUT), 64-byte UDP frames of 256 flows; \
         {PER_QUEUE} frames per queue per round, ring {RING}, burst {BURST}, {pairs} pairs of rounds (one lcore, two lcores; the LUT switched between them)"
    );
    println!("per packet: rx_burst + per-flow counter by the RSS hash + MAC swap + bulk free");
    let res = bench(pairs, &flows);
    let hz = Tsc::global().hz() as f64;
    let ns = |x: &Round| x.cpu_ns as f64 / PER_QUEUE as f64;
    let one: Vec<&Round> = res[0].iter().step_by(2).collect();
    let two: [Vec<&Round>; 2] = [0, 1].map(|l| res[l].iter().skip(1).step_by(2).collect());
    let med = |v: &[&Round], f: &dyn Fn(&Round) -> f64| median(v.iter().map(|x| f(x)).collect());
    let line = |name: &str, v: &[&Round]| {
        let c = med(v, &ns);
        println!(
            "{name:<20} {c:>7.1} ns/packet on CPU ({:>6.1} cycles at the TSC rate), {:>7.1} TSC cycles/packet wall",
            c * hz / 1e9,
            med(v, &|x| (x.t1 - x.t0) as f64 / PER_QUEUE as f64)
        );
    };
    line("1 lcore,  lcore 0:", &one);
    line("2 lcores, lcore 0:", &two[0]);
    line("2 lcores, lcore 1:", &two[1]);
    // Per pair: what the lcores receive per second of their own CPU time.
    let scaling: Vec<f64> = (0..pairs)
        .map(|i| (1.0 / ns(two[0][i]) + 1.0 / ns(two[1][i])) / (1.0 / ns(one[i])))
        .collect();
    let mut sorted = scaling.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    println!(
        "receive capacity, two lcores over one (sum of 1 / on-CPU time per packet), per pair of rounds: \
         median {:.2}x (quartiles {:.2}x .. {:.2}x)",
        sorted[pairs / 2],
        sorted[pairs / 4],
        sorted[3 * pairs / 4]
    );
    let (c1, c2a, c2b) = (med(&one, &ns), med(&two[0], &ns), med(&two[1], &ns));
    println!(
        "receive capacity from the median costs: 1 / {c1:.1} ns against 1 / {c2a:.1} + 1 / {c2b:.1} ns: {:.2}x",
        (1.0 / c2a + 1.0 / c2b) * c1
    );
    let wall = |v: &[&Round], n: f64| med(v, &|x| n * hz / (x.t1 - x.t0).max(1) as f64);
    let w2: Vec<f64> = (0..pairs)
        .map(|i| {
            let t0 = two[0][i].t0.min(two[1][i].t0);
            let t1 = two[0][i].t1.max(two[1][i].t1);
            2.0 * PER_QUEUE as f64 * hz / (t1 - t0).max(1) as f64
        })
        .collect();
    println!(
        "wall clock (first start to last end; shows what else the machine ran): 1 lcore {:.2} Mpps, 2 lcores {:.2} Mpps",
        wall(&one, PER_QUEUE as f64) / 1e6,
        median(w2) / 1e6
    );
}
