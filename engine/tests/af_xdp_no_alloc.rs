//! The af_xdp fast path allocates nothing per packet (DESIGN.md), counted
//! by a counting global allocator over a steady-state window: frames go
//! out of one end of a veth pair through an `af_xdp` TX queue (zero-copy
//! from the pool that is the UMEM), arrive at the other end's `af_xdp` RX
//! queue (the kernel writes them into that pool's own mbufs), and the
//! completions come back. A test rather than a perf/alloc_count workload:
//! it needs root and a veth pair it creates (alloc_count runs anywhere).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::{PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

mod common;
use common::Veth;

#[test]
fn af_xdp_tx_rx_and_completion_allocate_nothing_per_packet() {
    let Some(v) = Veth::new("wsa") else {
        eprintln!("af_xdp: not root (AF_XDP, BPF, veth): skipped");
        return;
    };
    let (a, b) = (v.a.clone(), v.b.clone());
    set_page_mode(PageMode::Small);
    let reg = Registry::with_builtins();
    let tx_only = PortConfig {
        nb_rx_queues: 0,
        ..Default::default()
    };
    let rx_port = PortConfig::default();
    let mut pa = reg.open(&format!("af_xdp:{a}")).unwrap();
    let mut pb = reg.open(&format!("af_xdp:{b}")).unwrap();
    pa.configure(&tx_only).unwrap();
    pb.configure(&rx_port).unwrap();
    let mut txq = pa.tx_queue(0).unwrap();
    let mut rxq = pb.rx_queue(0).unwrap();
    pa.start().unwrap();
    pb.start().unwrap();
    let mut tx_pool = Mempool::new(&PoolConfig {
        name: "xdp-tx".into(),
        size: 4096,
        ..Default::default()
    })
    .unwrap();
    let mut rx_pool = Mempool::new(&PoolConfig {
        name: "xdp-rx".into(),
        size: 8192,
        ..Default::default()
    })
    .unwrap();
    let mac_b = pb.mac().0;
    tx_pool
        .init_all(|m| {
            let f = m.append(60).unwrap();
            f.fill(0);
            f[..6].copy_from_slice(&mac_b);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
        })
        .unwrap();
    let (mut out, mut got) = (Burst::new(), Burst::new());
    let (mut sent, mut recvd, mut done) = (0u64, 0u64, 0u64);
    let mut window = |n: u64, sent: &mut u64, recvd: &mut u64, done: &mut u64| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let goal = *recvd + n;
        while *recvd < goal && std::time::Instant::now() < end {
            if txq.free_slots() >= 32 && tx_pool.alloc_bulk(&mut out, 32) {
                for m in out.as_mut_slice() {
                    m.set_len(60).unwrap();
                }
                *sent += txq.tx_burst(&mut out) as u64;
                out.clear();
            }
            *done += txq.clean(256).packets as u64;
            *recvd += rxq.rx_burst(&mut rx_pool, &mut got, 64) as u64;
            got.clear();
        }
    };
    window(20_000, &mut sent, &mut recvd, &mut done);
    assert!(recvd >= 20_000, "warm-up: sent {sent}, received {recvd}");
    let before = ALLOCS.load(Relaxed);
    window(100_000, &mut sent, &mut recvd, &mut done);
    let allocs = ALLOCS.load(Relaxed) - before;
    assert!(recvd >= 120_000, "sent {sent}, received {recvd}");
    assert_eq!(
        allocs, 0,
        "{allocs} allocations in steady state over 100000 frames"
    );
    // Every frame taken is completed (conservation at the TX queue).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while done < sent && std::time::Instant::now() < end {
        done += txq.clean(256).packets as u64;
    }
    assert_eq!(done, sent);
    rxq.stop();
    pa.stop().unwrap();
    pb.stop().unwrap();
    drop((txq, rxq));
    assert_eq!(tx_pool.stats().in_use, 0, "TX buffers home");
    assert_eq!(
        rx_pool.stats().in_use,
        0,
        "fill-ring buffers home after stop"
    );
}
