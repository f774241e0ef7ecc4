//! `Runtime::run_stacked`: two lcores, each with its own stack and socket,
//! sharing one control plane, behind one port whose every frame arrives on
//! RX queue 0 (lcore 0), as RSS gives non-hashed traffic. The peer is a
//! stack of its own on the ring's other end, in a thread of the test.

use super::stacked::{StackApp, StackCtx, StackSpec};
use super::*;
use crate::ethdev::{MacAddr, RxQueue};
use crate::stack::{DirectXmit, PortConf, SocketId, Stack, StackConfig};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicBool;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PER_LCORE: usize = 10;

/// Echoes what its socket (port 7000 + lcore) receives, prefixed with
/// the lcore's index.
struct Echo {
    sock: SocketId,
    done: Arc<AtomicBool>,
    echoed: usize,
}

impl StackApp for Echo {
    type Summary = usize;
    fn poll(&mut self, ctx: &mut StackCtx<'_>) {
        let l = ctx.lcore_id().index as u8;
        let mut buf = [0u8; 256];
        while let Ok((n, from)) = ctx.stack.socket(self.sock).recv_from(&mut buf[1..]) {
            buf[0] = b'0' + l;
            ctx.stack
                .socket(self.sock)
                .send_to(&buf[..n + 1], from)
                .unwrap();
            self.echoed += 1;
        }
        if self.done.load(Ordering::Acquire) {
            ctx.request_stop();
        }
    }
    fn finish(self, _ctx: &mut StackCtx<'_>) -> usize {
        self.echoed
    }
}

/// The peer: sends PER_LCORE datagrams to each server port on its TX queue
/// 0 only, answers ARP, collects the echoes from both RX queues.
fn client(
    mut port: Box<dyn Port>,
    ready: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<AtomicBool>,
) -> Vec<Vec<u8>> {
    port.configure(&PortConfig {
        nb_tx_queues: 2,
        nb_rx_queues: 2,
        ..Default::default()
    })
    .unwrap();
    let txq = port.tx_queue(0).unwrap();
    let mut rxqs: Vec<Box<dyn RxQueue>> = (0..2).map(|q| port.rx_queue(q).unwrap()).collect();
    port.start().unwrap();
    let pool = crate::mbuf::Mempool::new(&crate::mbuf::PoolConfig {
        name: "stacked-client".into(),
        size: 2048,
        ..Default::default()
    })
    .unwrap();
    let cfg = StackConfig {
        ports: vec![PortConf::new(MacAddr([2, 0, 0, 0, 9, 2]), CLIENT, 24)],
        ..Default::default()
    };
    let mut st = Stack::new(cfg, pool, Box::new(DirectXmit::new(vec![txq]))).unwrap();
    let t0 = std::time::Instant::now();
    let now = |t0: std::time::Instant| t0.elapsed().as_nanos() as u64;
    st.start(now(t0));
    let s = st.udp_socket().unwrap();
    // Both servers bound (a datagram before that is a port unreachable,
    // as in Linux).
    while ready.load(Ordering::Acquire) < 2 && t0.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..PER_LCORE {
        for dport in [7000, 7001] {
            let msg = format!("to{dport}-{i}");
            st.socket(s)
                .send_to(msg.as_bytes(), SocketAddrV4::new(SERVER, dport))
                .unwrap();
        }
    }
    st.flush();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < 2 * PER_LCORE && t0.elapsed() < Duration::from_secs(4) {
        for q in &mut rxqs {
            let mut b = Burst::new();
            q.rx_burst(st.pool_mut(), &mut b, 32);
            st.rx_burst(0, &mut b);
        }
        st.poll_timers(now(t0));
        while let Ok((n, _)) = st.socket(s).recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    done.store(true, Ordering::Release);
    got
}

#[test]
fn two_lcores_serve_sockets_behind_one_queue_through_steering_and_a_shared_neighbour_table() {
    let (a, b, mut conf) = ring_pair("stacked-1", 2, 2);
    conf.tx_ring_size = 256;
    conf.rx_ring_size = 256;
    let rt = Runtime::new(rt_config(vec![0, 1]), vec![PortSetup::new(a, conf)]).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (d2, r2) = (done.clone(), ready.clone());
    let peer = std::thread::spawn(move || client(b, r2, d2));
    let spec = StackSpec::new(StackConfig {
        ports: vec![PortConf::new(MacAddr::ZERO, SERVER, 24)],
        ..Default::default()
    });
    let d3 = done.clone();
    let report = rt
        .run_stacked(spec, move |ctx| {
            let l = ctx.lcore_id().index as u16;
            let sock = ctx.stack.udp_socket().map_err(|e| e.to_string())?;
            ctx.stack
                .socket(sock)
                .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7000 + l))
                .map_err(|e| e.to_string())?;
            ready.fetch_add(1, Ordering::AcqRel);
            Ok(Echo {
                sock,
                done: d3.clone(),
                echoed: 0,
            })
        })
        .unwrap();
    let got = peer.join().unwrap();
    let dbg: Vec<_> = report
        .lcores
        .iter()
        .map(|l| {
            let a = &l.app;
            (
                a.replica,
                a.app,
                a.steered_out,
                a.steered_in,
                a.sync,
                a.snmp.neigh,
                a.snmp.udp,
            )
        })
        .collect();
    assert_eq!(got.len(), 2 * PER_LCORE, "every datagram echoed: {dbg:#?}");
    for g in &got {
        let s = String::from_utf8_lossy(g);
        // Lcore 0 answers port 7000, lcore 1 port 7001.
        let want = if s.contains("to7000") { '0' } else { '1' };
        assert_eq!(s.chars().next(), Some(want), "{s}");
    }
    let l0 = &report.lcores[0].app;
    let l1 = &report.lcores[1].app;
    assert_eq!((l0.app, l1.app), (PER_LCORE, PER_LCORE));
    // Lcore 1 received nothing itself: its datagrams came through lcore 0.
    assert_eq!(l0.steered_out, PER_LCORE as u64);
    assert_eq!(l1.steered_in, PER_LCORE as u64);
    assert_eq!(l0.steer_drops + l1.steer_drops, 0);
    // Lcore 1 resolved the client through what lcore 0 heard (the ARP
    // reply to lcore 1's request arrived on queue 0).
    assert!(l1.sync.applied > 0, "{:?}", l1.sync);
    assert_eq!(l1.snmp.udp.out_datagrams, PER_LCORE as u64);
    assert_eq!(l0.snmp.udp.no_ports + l1.snmp.udp.no_ports, 0);
}
