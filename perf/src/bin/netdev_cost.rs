//! Cost of the netdev machinery (qdisc + BQL) on the raw generator path.
//!
//! One lcore, the `null` port, 64-byte frames prebuilt in the mempool
//! (`Mempool::init_all`), so the per-packet application work is only
//! alloc + set_len. Each mode runs through the real runtime loop (clean TX →
//! qdisc run → RX → timers → app) and the modes are interleaved over several
//! rounds in the same process:
//!
//! * `noqueue`            — straight to the driver (BQL off);
//! * `pfifo_fast+BQL`     — the default stack configuration (bypass when empty);
//! * `pfifo_fast+BQL nobypass` — every packet enqueued and dequeued (a custom
//!   qdisc without `TCQ_F_CAN_BYPASS`), to show the queue's own cost.
//!
//! Usage: `cargo run --release -p wirespeed-perf --bin netdev_cost [-- --secs S --rounds N --core C --only MODE]`

use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::lcore::CoreList;
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mbuf, PoolConfig};
use wirespeed::netdev::{PfifoFast, Qdisc, QdiscKind, TxqConfig};
use wirespeed::runtime::{LcoreApp, LcoreCtx, PortSetup, Runtime, RuntimeConfig};

const FRAME: usize = 64;
const BURST: usize = 32;

/// pfifo_fast without the bypass flag.
struct NoBypass(PfifoFast);

impl Qdisc for NoBypass {
    fn kind(&self) -> &'static str {
        "pfifo_fast(nobypass)"
    }
    fn enqueue(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        self.0.enqueue(m)
    }
    fn dequeue(&mut self) -> Option<Mbuf> {
        self.0.dequeue()
    }
    fn qlen(&self) -> usize {
        self.0.qlen()
    }
    fn backlog_bytes(&self) -> u64 {
        self.0.backlog_bytes()
    }
    fn limit(&self) -> usize {
        self.0.limit()
    }
    fn can_bypass(&self) -> bool {
        false
    }
}

/// On-CPU nanoseconds of the calling thread (first field of
/// `/proc/thread-self/schedstat`): excludes the time other processes held the
/// core, since the machine running this may be shared. 0 if unavailable.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Gen {
    cpu_start: Option<u64>,
}

impl LcoreApp for Gen {
    /// Thread CPU nanoseconds spent in the loop.
    type Summary = u64;
    #[inline]
    fn poll(&mut self, ctx: &mut LcoreCtx) {
        if self.cpu_start.is_none() {
            self.cpu_start = Some(thread_cpu_ns());
        }
        let mut b = Burst::new();
        if ctx.pool.alloc_bulk(&mut b, BURST) {
            for m in b.as_mut_slice() {
                let _ = m.set_len(FRAME);
            }
            ctx.xmit_burst(0, 0, &mut b);
        }
    }
    fn finish(self, _ctx: &mut LcoreCtx) -> u64 {
        thread_cpu_ns().saturating_sub(self.cpu_start.unwrap_or(0))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    NoQueue,
    PfifoBql,
    PfifoBqlNoBypass,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::NoQueue => "noqueue",
            Mode::PfifoBql => "pfifo_fast+BQL",
            Mode::PfifoBqlNoBypass => "pfifo_fast+BQL nobypass",
        }
    }
}

struct Sample {
    /// Packets per wall second.
    mpps: f64,
    /// Packets per second of the lcore thread's own CPU time.
    cpu_mpps: f64,
    cycles_per_pkt: f64,
    drops: u64,
    bql_limit: u32,
    direct_pct: f64,
}

fn frame_template() -> [u8; FRAME] {
    wirespeed_perf::frame_template::<FRAME>()
}

fn run_once(mode: Mode, secs: f64, core: usize) -> Result<Sample, String> {
    let reg = Registry::with_builtins();
    let port = reg.open("null").map_err(|e| e.to_string())?;
    let mut setup = PortSetup::new(port, PortConfig::default());
    setup.txq = TxqConfig::default();
    match mode {
        Mode::NoQueue => {
            setup.txq.qdisc.kind = QdiscKind::Noqueue;
            setup.txq.bql.enabled = false;
        }
        Mode::PfifoBql => {
            setup.txq.qdisc.kind = QdiscKind::PfifoFast;
            setup.txq.bql.enabled = true;
        }
        Mode::PfifoBqlNoBypass => {
            setup.txq.bql.enabled = true;
            let limit = setup.txq.qdisc.txqueuelen;
            setup.qdisc_factory = Some(Arc::new(move |_q| {
                Box::new(NoBypass(PfifoFast::new(limit).expect("valid limit"))) as Box<dyn Qdisc>
            }));
        }
    }
    let mut cfg = RuntimeConfig::new(CoreList::from_cores(vec![core]));
    cfg.pool = PoolConfig {
        name: "netdev-cost".into(),
        size: 4096,
        ..Default::default()
    };
    cfg.stop.duration = Some(Duration::from_secs_f64(secs));
    let rt = Runtime::new(cfg, vec![setup]).map_err(|e| e.to_string())?;
    let tmpl = frame_template();
    let report = rt
        .run(move |ctx| {
            ctx.pool
                .init_all(|m| {
                    let _ = m.extend_from_slice(&tmpl);
                })
                .map_err(|e| e.to_string())?;
            Ok(Gen { cpu_start: None })
        })
        .map_err(|e| e.to_string())?;
    let l = &report.lcores[0];
    let q = &l.queues[0];
    let pkts = q.counters.sent_packets.max(1);
    let secs = l.elapsed_ns as f64 / 1e9;
    let hz = Tsc::global().hz() as f64;
    // Without schedstat, fall back to wall time.
    let cpu_s = if l.app > 0 { l.app as f64 / 1e9 } else { secs };
    Ok(Sample {
        mpps: pkts as f64 / secs / 1e6,
        cpu_mpps: pkts as f64 / cpu_s / 1e6,
        cycles_per_pkt: cpu_s * hz / pkts as f64,
        drops: q.counters.drops(),
        bql_limit: q.bql.limit,
        direct_pct: 100.0 * q.counters.direct_packets as f64 / pkts as f64,
    })
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let secs = arg("--secs", 1.0);
    let rounds = arg("--rounds", 5.0).max(1.0) as usize;
    let core = arg("--core", 0.0) as usize;
    wirespeed::eal::dma::set_page_mode(wirespeed::eal::dma::PageMode::Small);
    // `--only N` runs just mode N (0, 1, 2) — for profiling.
    let only = arg("--only", -1.0);
    let modes: Vec<Mode> = [Mode::NoQueue, Mode::PfifoBql, Mode::PfifoBqlNoBypass]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only < 0.0 || *i == only as usize)
        .map(|(_, m)| m)
        .collect();
    let mut samples: Vec<Vec<Sample>> = modes.iter().map(|_| Vec::new()).collect();
    println!(
        "netdev_cost: {FRAME}-byte frames to null, burst {BURST}, core {core}, {rounds} rounds x {secs}s per mode, TSC {:.3} GHz",
        Tsc::global().hz() as f64 / 1e9
    );
    for r in 0..rounds {
        for (i, &m) in modes.iter().enumerate() {
            match run_once(m, secs, core) {
                Ok(s) => {
                    println!(
                        "  round {r} {:<24} {:>7.2} Mpps wall {:>7.2} Mpps on-cpu {:>7.1} cycles/pkt on-cpu",
                        m.name(),
                        s.mpps,
                        s.cpu_mpps,
                        s.cycles_per_pkt
                    );
                    samples[i].push(s)
                }
                Err(e) => {
                    eprintln!("netdev_cost: {}: {e}", m.name());
                    std::process::exit(1);
                }
            }
        }
    }
    println!();
    println!("rates per second of the lcore's own CPU time (best and median of {rounds} rounds); wall-clock best in the last column");
    println!(
        "{:<24} {:>10} {:>10} {:>9} {:>7} {:>7} {:>8} {:>10} {:>10}",
        "mode",
        "Mpps best",
        "Mpps med",
        "cyc/pkt",
        "cost",
        "drops",
        "direct%",
        "bql.limit",
        "wall best"
    );
    let best = |v: &[Sample], f: fn(&Sample) -> f64| v.iter().map(f).fold(0.0, f64::max);
    let cpu = |s: &Sample| s.cpu_mpps;
    let wall = |s: &Sample| s.mpps;
    let base = best(&samples[0], cpu);
    for (i, m) in modes.iter().enumerate() {
        let v = &samples[i];
        let b = best(v, cpu);
        let mut med: Vec<f64> = v.iter().map(cpu).collect();
        let last = v.last().expect("one sample per round");
        println!(
            "{:<24} {:>10.2} {:>10.2} {:>9.1} {:>6.1}% {:>7} {:>8.1} {:>10} {:>10.2}",
            m.name(),
            b,
            median(&mut med),
            Tsc::global().hz() as f64 / (b * 1e6),
            100.0 * (base - b) / base,
            last.drops,
            last.direct_pct,
            if *m == Mode::NoQueue {
                "-".to_string()
            } else {
                last.bql_limit.to_string()
            },
            best(v, wall),
        );
    }
    if modes.len() < 2 {
        return;
    }
    let cost = 100.0 * (base - best(&samples[1], cpu)) / base;
    let med_of = |i: usize| median(&mut samples[i].iter().map(cpu).collect::<Vec<f64>>());
    let (m0, m1) = (med_of(0), med_of(1));
    println!();
    println!(
        "pfifo_fast+BQL costs {cost:.1}% of the noqueue rate, best vs best ({:.1}% median vs median) (target <= 15%): {}",
        100.0 * (m0 - m1) / m0,
        if cost <= 15.0 { "PASS" } else { "FAIL" }
    );
}
