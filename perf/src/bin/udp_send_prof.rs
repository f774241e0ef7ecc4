//! A fixed amount of the `udp_stack` workload (connected `UdpSocket::send`
//! of 18-byte datagrams through pfifo_fast + BQL into the `null` port,
//! flush + reclaim every 32), with no timing: for instruction-count profiles.
//! Two runs with different counts difference out the set-up, e.g.
//! `valgrind --tool=callgrind target/release/udp_send_prof 11000` minus the
//! same with 1000, divided by 320000, gives instructions per datagram.
//!
//! Usage: `udp_send_prof [ITERATIONS [batch|sendto]]` (`batch`: `send_batch`
//! x32; `sendto`: unconnected `send_to`, a route lookup per datagram).

use std::net::{Ipv4Addr, SocketAddrV4};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::Tsc;
use wirespeed::ethdev::{null::NullPort, MacAddr, Port, PortConfig};
use wirespeed::mbuf::{Mempool, PoolConfig};
use wirespeed::netdev::{NetdevQueue, TxqConfig};
use wirespeed::stack::{NetdevXmit, PortConf, Stack, StackConfig};

fn main() {
    set_page_mode(PageMode::Small);
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20000);
    let mode = std::env::args().nth(2);
    let sendto = mode.as_deref() == Some("sendto");
    let batch = mode.is_some() && !sendto;
    let local = Ipv4Addr::new(10, 0, 0, 1);
    let peer = Ipv4Addr::new(10, 0, 0, 2);
    let cfg = StackConfig {
        ports: vec![PortConf::new(MacAddr::local(1), local, 24)],
        static_neighbours: vec![(0, peer, MacAddr::local(2))],
        ..Default::default()
    };
    let mut port = NullPort::new("null");
    port.configure(&PortConfig::default())
        .expect("udp_send_prof set-up");
    let q = NetdevQueue::new(
        0,
        "null",
        port.tx_queue(0).expect("udp_send_prof set-up"),
        &TxqConfig::default(),
        Tsc::global(),
    )
    .expect("udp_send_prof set-up");
    let pool = Mempool::new(&PoolConfig {
        name: "p".into(),
        size: 8192,
        headroom: 128,
        data_room: 2048,
    })
    .expect("udp_send_prof set-up");
    let mut st =
        Stack::new(cfg, pool, Box::new(NetdevXmit::new(vec![q]))).expect("udp_send_prof set-up");
    let s = st.udp_socket().expect("udp_send_prof set-up");
    let to = SocketAddrV4::new(peer, 9);
    if !sendto {
        st.socket(s).connect(to).expect("udp_send_prof set-up");
    }
    let payload = [0x42u8; 18];
    let bufs: [&[u8]; 32] = [&payload; 32];
    let mut n = 0u64;
    for _ in 0..iters {
        if batch {
            n += st.socket(s).send_batch(&bufs).unwrap_or(0) as u64;
        } else {
            let mut sock = st.socket(s);
            for _ in 0..32 {
                let r = if sendto {
                    sock.send_to(&payload, to)
                } else {
                    sock.send(&payload)
                };
                if r.is_ok() {
                    n += 1;
                }
            }
        }
        st.flush();
        st.xmit_mut().reclaim();
    }
    println!(
        "datagrams sent: {n}, OutDatagrams: {}",
        st.counters().udp.out_datagrams
    );
}
