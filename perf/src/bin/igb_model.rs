//! Raw generator loop (testpmd txonly: alloc_bulk → tx_burst → clean) on the
//! igb driver over the igb device model at unlimited modeled speed, against
//! the same loop on the `null` port. The driver runs on one core, the model's
//! DMA engine thread on the other.
//!
//! usage: igb_model [SECONDS] [DRIVER_CORE] [MODEL_CORE]   (default 3 0 1)

use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::tsc::rdtsc;
use wirespeed::ethdev::{PortConfig, Registry, TxQueue};
use wirespeed::mbuf::{ol, Burst, Mempool, PoolConfig};
use wirespeed_perf::{pin, row, run_for, Measurement};

const BURST: usize = 32;

/// A 60-byte UDP/IPv4 frame (checksums left to the NIC when `offload`).
fn template(offload: bool) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12] = 8;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[198, 18, 0, 1]);
    f[30..34].copy_from_slice(&[198, 18, 0, 2]);
    f[34..36].copy_from_slice(&1024u16.to_be_bytes());
    f[36..38].copy_from_slice(&1024u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    if !offload {
        let mut s = 0u32;
        for c in f[14..34].chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while s >> 16 != 0 {
            s = (s & 0xFFFF) + (s >> 16);
        }
        f[24..26].copy_from_slice(&(!(s as u16)).to_be_bytes());
    }
    f
}

/// Cycles inside the driver calls that did work.
#[derive(Default, Clone, Copy)]
struct Inside {
    tx_cycles: u64,
    tx_pkts: u64,
    clean_cycles: u64,
    clean_pkts: u64,
    idle_polls: u64,
}

/// What one row measured: the loop, and the cycles spent inside the driver
/// calls alone (tx_burst + clean) per packet accepted.
struct Row {
    total: Measurement,
    driver: Inside,
    xstats: Vec<(String, u64)>,
}

fn bench(spec: &str, secs: f64, offload: bool) -> Row {
    let mut reg = Registry::with_builtins();
    pmd_igb::register(&mut reg);
    let mut port = reg.open(spec).expect("open port");
    port.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 0,
        tx_ring_size: 1024,
        rx_ring_size: 1024,
        tx_offloads: 0,
        promiscuous: true,
        rss: None,
    })
    .expect("configure");
    let mut q = port.tx_queue(0).expect("tx queue");
    port.start().expect("start");
    let mut pool = Mempool::new(&PoolConfig {
        name: "bench".into(),
        size: 4096,
        ..Default::default()
    })
    .expect("mempool");
    let t = template(offload);
    pool.init_all(|m| {
        let _ = m.extend_from_slice(&t);
    })
    .expect("init_all");
    let flags = if offload {
        ol::TX_IPV4 | ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM
    } else {
        0
    };
    let mut b = Burst::new();
    let mut inside = Inside::default();
    // Warm up (rings, caches, the model thread).
    let _ = run_for(0.3, || {
        step(&mut pool, &mut b, q.as_mut(), flags, t.len(), &mut inside)
    });
    inside = Inside::default();
    let m = run_for(secs, || {
        step(&mut pool, &mut b, q.as_mut(), flags, t.len(), &mut inside)
    });
    drop(b);
    for _ in 0..100_000 {
        if q.clean(usize::MAX).packets == 0 && q.free_slots() + 1 >= q.ring_size() {
            break;
        }
    }
    Row {
        total: m,
        driver: inside,
        xstats: port.xstats(),
    }
}

#[inline]
fn step(
    pool: &mut Mempool,
    b: &mut Burst,
    q: &mut dyn TxQueue,
    flags: u32,
    len: usize,
    inside: &mut Inside,
) -> u64 {
    let need = BURST - b.len();
    if need > 0 && pool.alloc_bulk(b, need) {
        for m in &mut b.as_mut_slice()[BURST - need..] {
            let _ = m.set_len(len);
            if flags != 0 {
                m.set_ol_flags(flags);
                m.set_tx_lens(14, 20, 8);
            }
        }
    }
    let t0 = rdtsc();
    let n = q.tx_burst(b);
    let t1 = rdtsc();
    let c = q.clean(BURST * 2);
    let t2 = rdtsc();
    // Only calls that did work: a full ring's empty polls are the device's
    // time, not the driver's.
    if n > 0 {
        inside.tx_cycles += t1 - t0;
        inside.tx_pkts += n as u64;
    } else {
        inside.idle_polls += 1;
    }
    if c.packets > 0 {
        inside.clean_cycles += t2 - t1;
        inside.clean_pkts += u64::from(c.packets);
    }
    n as u64
}

fn main() {
    let mut a = std::env::args().skip(1);
    let secs: f64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let dcore: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mcore: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    set_page_mode(PageMode::Auto);
    if !pin(dcore) {
        eprintln!("igb_model: could not pin to core {dcore}");
    }
    println!("raw TX loop, 60-byte frames, burst {BURST}, ring 1024, {secs} s per row; driver on core {dcore}, model engine on core {mcore}");
    let report = |name: &str, r: &Row| {
        row(name, &r.total);
        let d = &r.driver;
        println!(
            "    driver path: tx_burst {:.1} + clean {:.1} cycles/packet (calls that did work; {} polls found the ring full)",
            d.tx_cycles as f64 / d.tx_pkts.max(1) as f64,
            d.clean_cycles as f64 / d.clean_pkts.max(1) as f64,
            d.idle_polls
        );
    };
    let r = bench("null", secs, false);
    report("null", &r);
    let spec = format!("igb-model?speed=unlimited&sink=count&core={mcore}");
    for (name, off) in [
        ("igb-model (no offload)", false),
        ("igb-model (IPv4+UDP csum offload)", true),
    ] {
        let r = bench(&spec, secs, off);
        report(name, &r);
        let x = &r.xstats;
        let get = |k: &str| x.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap_or(0);
        println!(
            "    model: wire frames {}, context descriptors {}, DD write-backs {}, doorbells {}",
            get("model_wire_frames"),
            get("model_ctx_descs"),
            get("model_dd_writebacks"),
            get("model_doorbells")
        );
    }
}
