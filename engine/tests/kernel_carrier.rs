//! The carrier of a kernel interface as the `af_packet` and `af_xdp` TX
//! queues report it: the veth's peer set down turns this end's carrier off
//! (`/sys/class/net/IFACE/carrier` 0), the netdev layer stops the queue
//! (`netif_carrier_off`) and counts what is offered meanwhile as carrier
//! drops; the peer back up resumes traffic. Needs root (veth, AF_PACKET,
//! AF_XDP); skipped otherwise.

use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::netdev::{CarrierPolicy, NetdevQueue, TxqConfig};

mod common;
use common::{sh, Veth};

fn wait_carrier(q: &mut NetdevQueue, up: bool) {
    let t0 = Instant::now();
    while q.has_carrier() != up {
        q.carrier_poll();
        q.poll();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "carrier never went {}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn burst(pool: &mut Mempool, n: usize) -> Burst {
    let mut b = Burst::new();
    assert!(pool.alloc_bulk(&mut b, n));
    for m in b.as_mut_slice() {
        m.set_len(60).unwrap();
        let f = m.data_mut();
        f.fill(0);
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    }
    b
}

fn carrier_follows_the_peer(kind: &str, tag: &str) {
    let Some(v) = Veth::new(&format!("wc{tag}")) else {
        eprintln!("{kind}: not root (veth, sockets): skipped");
        return;
    };
    let (a, b) = (v.a.clone(), v.b.clone());
    set_page_mode(PageMode::Small);
    let reg = Registry::with_builtins();
    let mut port = reg.open(&format!("{kind}:{a}")).unwrap();
    port.configure(&PortConfig {
        nb_rx_queues: 0,
        ..Default::default()
    })
    .unwrap();
    let txq = port.tx_queue(0).unwrap();
    port.start().unwrap();
    let conf = TxqConfig {
        carrier: CarrierPolicy::Drop,
        ..Default::default()
    };
    let mut q = NetdevQueue::new(0, kind, txq, &conf, Tsc::global()).unwrap();
    let mut pool = Mempool::new(&PoolConfig {
        name: format!("carrier-{kind}"),
        size: 4096,
        ..Default::default()
    })
    .unwrap();
    wait_carrier(&mut q, true);
    let o = q.xmit_burst(&mut burst(&mut pool, 10));
    assert_eq!(o.dropped, 0, "{}", q.snapshot());
    assert!(q.flush(5_000_000_000), "{}", q.snapshot());
    assert!(sh(&["ip", "link", "set", &b, "down"]));
    wait_carrier(&mut q, false);
    assert!(q.xoff().carrier, "stopped for the carrier");
    assert!(!port.link().up, "the port's link follows the carrier");
    let o = q.xmit_burst(&mut burst(&mut pool, 5));
    assert_eq!((o.dropped, o.carrier_dropped), (5, 5));
    assert!(sh(&["ip", "link", "set", &b, "up"]));
    wait_carrier(&mut q, true);
    let o = q.xmit_burst(&mut burst(&mut pool, 5));
    assert_eq!(o.dropped, 0, "{}", q.snapshot());
    assert!(q.flush(5_000_000_000), "{}", q.snapshot());
    let c = q.counters();
    assert_eq!(c.carrier_drops, 5, "{c:?}");
    assert_eq!(c.carrier_changes, 2, "{c:?}");
    assert_eq!(c.completed_packets, 15, "{c:?}");
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    drop(q);
    port.stop().unwrap();
    assert_eq!(pool.stats().in_use, 0, "pool full at the end");
}

#[test]
fn af_packet_carrier_follows_the_veth_peer() {
    carrier_follows_the_peer("af_packet", "p");
}

#[test]
fn af_xdp_carrier_follows_the_veth_peer() {
    carrier_follows_the_peer("af_xdp", "x");
}
