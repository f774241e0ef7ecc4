//! Connected `UdpSocket::send` of 64-byte frames (18-byte payload, 60 bytes +
//! FCS on the wire) through the whole stack — udp_sendmsg, ip_make_skb,
//! udp_send_skb, ip_send_skb/ip_output, neigh_hh_output — into the `null`
//! port, on one pinned lcore, against the raw path (a prebuilt frame copied
//! into mbufs and handed to `tx_burst`).
//!
//! The stack's output boundary here is `DirectXmit` (batches of 32, one
//! `tx_burst` per batch); the netdev layer (qdisc + BQL) plugs in at the same
//! `L2Xmit` seam.
//!
//! Usage: `cargo run --release -p wirespeed-perf --bin udp_stack [-- SECONDS [CORE]]`

use std::net::{Ipv4Addr, SocketAddrV4};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::{null::NullPort, MacAddr, Port, PortConfig};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::stack::{DirectXmit, PortConf, Stack, StackConfig};
use wirespeed_perf::{pin, row, run_for, Measurement};

/// Best (fewest cycles per packet) of `n` windows: the figure a core gets
/// when the machine's other tenants leave it alone.
fn best_of(n: usize, secs: f64, mut step: impl FnMut() -> u64) -> Measurement {
    let mut best: Option<Measurement> = None;
    for _ in 0..n {
        let m = run_for(secs / n as f64, &mut step);
        if best.is_none_or(|b| m.cycles_per_packet() < b.cycles_per_packet()) {
            best = Some(m);
        }
    }
    best.expect("n > 0")
}

const PAYLOAD: usize = 18;
const BATCH: usize = 32;

fn pool(name: &str) -> Mempool {
    Mempool::new(&PoolConfig {
        name: name.into(),
        size: 8192,
        headroom: 128,
        data_room: 2048,
    })
    .expect("mempool")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let core: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    if !pin(core) {
        eprintln!("note: could not pin to core {core}; running unpinned");
    }
    if std::env::var_os("WIRESPEED_HUGEPAGES").is_none() {
        set_page_mode(PageMode::Small);
    }

    // --- the raw path: prebuilt frame, alloc_bulk, copy, tx_burst.
    let mut port = NullPort::new("null");
    port.configure(&PortConfig::default())
        .expect("configure null");
    let mut txq = port.tx_queue(0).expect("txq");
    let mut p = pool("raw");
    let frame = [0x5au8; 60];
    let mut b = Burst::new();
    let raw = best_of(10, secs, || {
        if !p.alloc_bulk(&mut b, BATCH) {
            return 0;
        }
        for m in b.as_mut_slice() {
            let _ = m.extend_from_slice(&frame);
        }
        let n = txq.tx_burst(&mut b) as u64;
        b.clear();
        txq.clean(usize::MAX);
        n
    });

    // --- the stack: connected UdpSocket::send.
    let mut port = NullPort::new("null");
    port.configure(&PortConfig::default())
        .expect("configure null");
    let txq = port.tx_queue(0).expect("txq");
    let local = Ipv4Addr::new(10, 0, 0, 1);
    let peer = Ipv4Addr::new(10, 0, 0, 2);
    let cfg = StackConfig {
        ports: vec![PortConf::new(MacAddr::local(1), local, 24)],
        static_neighbours: vec![(0, peer, MacAddr::local(2))],
        ..Default::default()
    };
    let mut st =
        Stack::new(cfg, pool("stack"), Box::new(DirectXmit::new(vec![txq]))).expect("stack");
    let s = st.udp_socket().expect("socket");
    st.socket(s)
        .connect(SocketAddrV4::new(peer, 9))
        .expect("connect");
    let payload = [0x42u8; PAYLOAD];
    let mut errors = 0u64;
    let stack_m = best_of(10, secs, || {
        let mut n = 0;
        let mut sock = st.socket(s);
        for _ in 0..BATCH {
            match sock.send(&payload) {
                Ok(_) => n += 1,
                Err(_) => errors += 1,
            }
        }
        st.flush();
        st.xmit_mut().reclaim();
        n
    });
    let c = st.counters();
    println!("# 60-byte frames (64 on the wire with FCS), batches of {BATCH}, core {core}, best of 10 windows");
    row("raw: alloc_bulk + copy + tx_burst (null)", &raw);
    row("stack: connected UdpSocket::send (null)", &stack_m);
    println!(
        "stack/raw = {:.2}   OutDatagrams = {}  send errors = {}  SndbufErrors = {}",
        stack_m.mpps() / raw.mpps(),
        c.udp.out_datagrams,
        errors,
        c.udp.sndbuf_errors
    );
}
