//! The carrier as the ice TX queue reports it: the firmware's link-status
//! event (cable pulled on the E810 model) stops the netdev queue
//! (`netif_carrier_off`), what is offered meanwhile is dropped and counted
//! as a carrier drop, and the cable back resumes traffic.

mod common;

use common::*;
use pmd_ice::{Sink, Speed};
use std::time::{Duration, Instant};
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{Port, TxQueue};
use wirespeed::mbuf::Burst;
use wirespeed::netdev::{CarrierPolicy, NetdevQueue, TxqConfig};

fn burst(pool: &mut wirespeed::mbuf::Mempool, seqs: std::ops::Range<u32>) -> Burst {
    let mut b = Burst::new();
    for s in seqs {
        b.push(mbuf(pool, &frame(s, 64))).unwrap();
    }
    b
}

/// Polls the queue's carrier until it reads `up` (the PMD re-reads the
/// link every 100 ms); panics after 5 s.
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
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn cable_pulled_stops_the_queue_and_counts_carrier_drops() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    port.wait_link_up(Duration::from_secs(1)).unwrap();
    let txq: Box<dyn TxQueue> = Box::new(port.ice_tx_queue(0).unwrap());
    let conf = TxqConfig {
        carrier: CarrierPolicy::Drop,
        ..Default::default()
    };
    let tsc = Tsc::global();
    let mut q = NetdevQueue::new(0, "ice-test", txq, &conf, tsc).unwrap();
    let mut pool = pool(256);
    q.xmit_burst(&mut burst(&mut pool, 0..10));
    wait_until("10 frames on the wire", || {
        q.poll();
        m.stats().tx_frames == 10
    });
    m.set_media_present(false);
    wait_carrier(&mut q, false);
    assert!(q.xoff().carrier, "stopped for the carrier");
    let o = q.xmit_burst(&mut burst(&mut pool, 10..15));
    assert_eq!((o.dropped, o.carrier_dropped), (5, 5));
    m.set_media_present(true);
    wait_carrier(&mut q, true);
    q.xmit_burst(&mut burst(&mut pool, 15..20));
    wait_until("the 5 after the cable came back", || {
        q.poll();
        m.stats().tx_frames == 15
    });
    let c = q.counters();
    assert_eq!(c.carrier_drops, 5, "{c:?}");
    assert_eq!(c.carrier_changes, 2, "{c:?}");
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    drop(q);
    port.stop().unwrap();
    assert_eq!(pool.stats().in_use, 0, "pool full at the end");
}
