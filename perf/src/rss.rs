//! The two-lcores-against-one RSS receive benchmark `igb_rss` and
//! `ice_rss` share (the method is in their module docs): the frames, the
//! per-packet work, the lcores' drain, the rounds and the report. Each
//! binary brings its device: the port's queues and how to steer, inject
//! and wait for delivery.

use crate::{pin, thread_cpu_ns};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use wirespeed::eal::tsc::rdtsc;
use wirespeed::eal::Tsc;
use wirespeed::ethdev::rss::{toeplitz_hash, DEFAULT_RSS_KEY};
use wirespeed::ethdev::RxQueue;
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

/// Frames per queue per round.
pub const PER_QUEUE: usize = 3840;
/// RX descriptors per queue.
pub const RING: u16 = 4096;
pub const BURST: usize = 32;
const SRC: [u8; 4] = [198, 18, 0, 1];
const DST: [u8; 4] = [198, 18, 0, 2];

/// A 64-byte UDP frame to `mac` from source port `sport`.
pub fn frame(mac: [u8; 6], sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&mac);
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

/// The queue (of 2, round-robin table of `table` entries, a power of two)
/// the NIC sends a source port to.
pub fn queue_of(sport: u16, table: u16) -> usize {
    let mut t = [SRC, DST].concat();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&1024u16.to_be_bytes());
    (toeplitz_hash(&DEFAULT_RSS_KEY, &t) & (table as u32 - 1)) as usize % 2
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
pub struct Round {
    /// TSC at the start and the end of its drain.
    pub t0: u64,
    pub t1: u64,
    /// Its thread's on-CPU nanoseconds over the drain.
    pub cpu_ns: u64,
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
fn lcore<Q: RxQueue>(
    core: usize,
    mut q: Q,
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

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The device side of a run: `steer(n)` points the table at the first `n`
/// queues (`rte_eth_dev_rss_reta_update`), `inject` offers one frame to
/// the wire (false: full, try again), `delivered(total)` waits until the
/// device has written `total` frames to the rings since the start.
pub trait Device {
    fn steer(&mut self, queues: u16);
    fn inject(&self, frame: &[u8]) -> bool;
    fn delivered(&mut self, total: u64);
}

/// Runs `pairs` pairs of rounds (one lcore, then two) over the two queues
/// `qs` of `dev`'s port, the frames `frames` cycled; per lcore and round
/// what it measured.
pub fn bench<Q: RxQueue + Send + 'static>(
    qs: Vec<Q>,
    dev: &mut impl Device,
    pairs: usize,
    frames: &[Vec<u8>],
) -> Vec<Vec<Round>> {
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
    let mut delivered = 0u64;
    for r in 0..rounds {
        let nq = if r.is_multiple_of(2) { 1 } else { 2 };
        dev.steer(nq);
        armed.wait();
        for f in frames.iter().cycle().take(PER_QUEUE * nq as usize) {
            while !dev.inject(f) {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        delivered += (PER_QUEUE * nq as usize) as u64;
        dev.delivered(delivered);
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

/// Prints the per-lcore costs, the scaling per pair of rounds and the
/// wall-clock rates of `res` (what [`bench`] returned).
pub fn report(res: &[Vec<Round>], pairs: usize) {
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
