//! Raw 64-byte frames (60 bytes + FCS) from one lcore through the ice PMD on
//! the `ice-model` device (pacing off, DMA engine pinned to the other core),
//! compared with the `null` port. Frames are prebuilt in the mempool
//! (`Mempool::init_all`), so per-packet work is alloc + set_len + descriptor
//! + completion.
//!
//! Run: `cargo run --release -p wirespeed-perf --bin ice_model [seconds] [tx ring size]`

use pmd_ice::{IceModel, IcePort, ModelConfig, ProbeOptions, Sink, Speed};
use std::sync::Arc;
use wirespeed::eal::tsc::{rdtsc, Tsc};
use wirespeed::ethdev::{Port, PortConfig, TxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

const FRAME: usize = 60;
const BURST: usize = 32;

fn prebuilt_pool(name: &str) -> Mempool {
    let mut pool = Mempool::new(&PoolConfig {
        name: name.into(),
        size: 8192,
        headroom: 128,
        data_room: 2048,
    })
    .expect("mempool");
    let mut f = [0u8; FRAME];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0xe8, 0x10, 0x01]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    pool.init_all(|m| {
        m.extend_from_slice(&f).expect("room for a frame");
    })
    .expect("init_all");
    pool
}

/// (run ns, runnable-but-waiting ns) of every thread of this process whose
/// name starts with `prefix`, from /proc/self/task/*/schedstat.
fn sched_ns(prefix: &str) -> (u64, u64) {
    let mut run = 0;
    let mut wait = 0;
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            let p = e.path();
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            if !comm.trim().starts_with(prefix) {
                continue;
            }
            if let Ok(st) = std::fs::read_to_string(p.join("schedstat")) {
                let mut it = st.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
                run += it.next().unwrap_or(0);
                wait += it.next().unwrap_or(0);
            }
        }
    }
    (run, wait)
}

struct Result {
    packets: u64,
    secs: f64,
    cycles_per_pkt: f64,
}

fn run<T: TxQueue + ?Sized>(q: &mut T, pool: &mut Mempool, secs: f64) -> Result {
    let tsc = Tsc::global();
    let mut b = Burst::new();
    let mut run_for = |dur: f64| -> (u64, u64) {
        let cycles = (dur * tsc.hz() as f64) as u64;
        let start = rdtsc();
        let mut done = 0u64;
        let mut iter = 0u32;
        loop {
            if b.is_empty() {
                if pool.alloc_bulk(&mut b, BURST) {
                    for m in b.as_mut_slice() {
                        let _ = m.set_len(FRAME);
                    }
                } else {
                    done += q.clean(usize::MAX).packets as u64;
                    continue;
                }
            }
            q.tx_burst(&mut b);
            done += q.clean(256).packets as u64;
            iter += 1;
            if iter & 255 == 0 && rdtsc() - start >= cycles {
                return (done, rdtsc() - start);
            }
        }
    };
    run_for(0.3); // warm-up
    let me = "ice_model";
    let (r0, w0) = sched_ns(me);
    let (er0, ew0) = sched_ns("ice-model-dma");
    let (packets, cycles) = run_for(secs);
    let (r1, w1) = sched_ns(me);
    let (er1, ew1) = sched_ns("ice-model-dma");
    let wall = tsc.cycles_to_ns(cycles) as f64;
    println!(
        "  scheduler: lcore ran {:.0}% of the time (runnable but waiting {:.0}%, {:.1} lcore CPU cycles/packet); model engine ran {:.0}% (waiting {:.0}%)",
        (r1 - r0) as f64 / wall * 100.0,
        (w1 - w0) as f64 / wall * 100.0,
        (r1 - r0) as f64 * tsc.hz() as f64 / 1e9 / packets.max(1) as f64,
        (er1 - er0) as f64 / wall * 100.0,
        (ew1 - ew0) as f64 / wall * 100.0,
    );
    // Drain.
    let t0 = std::time::Instant::now();
    while q.free_slots() + 1 < q.ring_size() && t0.elapsed().as_secs() < 2 {
        q.clean(usize::MAX);
    }
    b.clear();
    Result {
        packets,
        secs: tsc.cycles_to_ns(cycles) as f64 / 1e9,
        cycles_per_pkt: cycles as f64 / packets.max(1) as f64,
    }
}

fn report(name: &str, r: &Result) {
    println!(
        "{name:<28} {:>8.2} Mpps  {:>7.1} cycles/packet  ({} packets in {:.2} s)",
        r.packets as f64 / r.secs / 1e6,
        r.cycles_per_pkt,
        r.packets,
        r.secs
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let ring: u16 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (lcore, model_core) = match cores.len() {
        0 | 1 => {
            eprintln!("warning: fewer than 2 cores; the model shares the lcore's core");
            (cores.first().map(|c| c.id), None)
        }
        _ => (Some(cores[0].id), Some(cores[1].id)),
    };
    if let Some(c) = lcore {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let tsc = Tsc::global();
    println!(
        "ice_model: {FRAME}-byte frames (+FCS = 64 B), burst {BURST}, TX ring {ring}, TSC {:.2} GHz, lcore {lcore:?}, model core {model_core:?}, {secs} s",
        tsc.hz() as f64 / 1e9
    );

    // null port.
    {
        let mut pool = prebuilt_pool("null");
        let mut reg = wirespeed::ethdev::Registry::with_builtins();
        pmd_ice::register(&mut reg);
        let mut p = reg.open("null").expect("null port");
        p.configure(&PortConfig::default()).expect("configure null");
        p.start().expect("start null");
        let mut q = p.tx_queue(0).expect("null tx queue");
        let r = run(&mut *q, &mut pool, secs);
        report("null", &r);
    }

    // ice PMD on the model.
    let model = Arc::new(
        IceModel::new(ModelConfig {
            speed: Speed::G100,
            sink: Sink::Count,
            pacing: false,
            core: model_core,
            ..Default::default()
        })
        .expect("ice-model"),
    );
    let mut port = IcePort::probe(
        "ice-model?pacing=off",
        model.clone(),
        0x8086,
        model.device_id(),
        &ProbeOptions::default(),
    )
    .expect("probe ice-model");
    port.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 0,
        tx_ring_size: ring,
        rx_ring_size: 1024,
        tx_offloads: 0,
        promiscuous: true,
        rss: None,
    })
    .expect("configure");
    port.start().expect("start");
    let mut pool = prebuilt_pool("ice");
    let mut q = port.ice_tx_queue(0).expect("tx queue");
    let before = model.stats().tx_frames;
    let r = run(&mut q, &mut pool, secs);
    report("ice-model (ice PMD)", &r);
    let s = model.stats();
    println!(
        "model: {} frames on the wire, {} MDD events, {} DMA faults; goal 37.2 Mpps (25G line rate at 64 B): {}",
        s.tx_frames - before,
        s.mdd_events,
        s.dma_faults,
        if r.packets as f64 / r.secs / 1e6 >= 37.2 {
            "met"
        } else {
            "not met"
        }
    );
}
