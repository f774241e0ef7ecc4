//! Receive-side scaling on the igb model: one lcore draining one RX queue
//! against two lcores each draining its own, with the same per-packet work
//! (rx_burst, a per-flow counter indexed by the NIC's RSS hash, a MAC swap
//! as in the macswap example, bulk free).
//!
//! How it measures, so that neither the model's DMA engine (a third
//! thread on a two-core machine) nor the machine's other load is counted
//! as lcore work: one port with two RSS queues; rounds alternate between
//! "one lcore" (the RETA sends every flow to queue 0, lcore 0 receives
//! them all) and "two lcores" (round-robin RETA, each lcore its queue),
//! the RETA switched between rounds with `IgbPort::update_rss`. Each round
//! the lcores first arm their rings (4096 descriptors), then the harness
//! injects the frames and waits until the model has written all of them
//! to the rings (its engine then sleeps); only then are the spinning
//! lcores released, each draining exactly its share. The flows are 256
//! UDP source ports that the default Toeplitz key and the round-robin RETA
//! split exactly 128/128, so both queues get `PER_QUEUE` frames.
//!   - per lcore and round: the on-CPU time of its thread over the drain
//!     (`CLOCK_THREAD_CPUTIME_ID`: time other threads or processes held
//!     its core is not counted) / frames, and TSC cycles / frames (wall);
//!   - per pair of adjacent rounds: scaling = (Σ over the two lcores of
//!     1 / on-CPU time per packet) / (1 / the single lcore's), i.e. the
//!     receive capacity of two lcores over one, each on its own core;
//!     the median over the pairs (and quartiles) is printed;
//!   - the wall-clock throughput is printed too: on a shared two-core
//!     machine it shows the other load, not the engine.
//!
//! usage: igb_rss [PAIRS]   (default 100; lcores on cores 0 and 1)

use pmd_igb::{model_port, IgbModel, IgbPort, ModelConfig, Sink};
use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::CoreList;
use wirespeed::ethdev::{Port, PortConfig, RssConf};
use wirespeed_perf::rss::{self, frame, queue_of, BURST, PER_QUEUE, RING};

/// The igb model's side: a 128-entry RETA, frames injected on its wire.
struct Igb {
    p: IgbPort<IgbModel>,
    m: Arc<IgbModel>,
}

impl rss::Device for Igb {
    fn steer(&mut self, queues: u16) {
        self.p
            .update_rss(RssConf::spread(queues, 128))
            .expect("RETA update");
    }
    fn inject(&self, f: &[u8]) -> bool {
        self.m.inject(f)
    }
    fn delivered(&mut self, _total: u64) {
        assert!(
            self.m.wait_idle(Duration::from_secs(10)),
            "model did not deliver"
        );
        // The last frame popped is written within microseconds.
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .max(4);
    set_page_mode(PageMode::Auto);
    // The lcores own cores 0 and 1: the model's engine thread is not pinned.
    wirespeed::eal::lcore::claim(&CoreList::parse("0-1").expect("core list"));
    let flows: Vec<u16> = (1000..1256).collect();
    let split = flows.iter().filter(|&&s| queue_of(s, 128) == 0).count();
    assert_eq!(split, 128, "the flow set must split evenly");
    println!(
        "igb model, RSS (default key, round-robin RETA), 64-byte UDP frames of 256 flows; \
         {PER_QUEUE} frames per queue per round, ring {RING}, burst {BURST}, {pairs} pairs of rounds (one lcore, two lcores; the RETA switched between them)"
    );
    println!("per packet: rx_burst + per-flow counter by the RSS hash + MAC swap + bulk free");
    let (mut p, m) = model_port(ModelConfig {
        sink: Sink::Count,
        speed_bps: 0,
        ..ModelConfig::default()
    })
    .expect("model");
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 2,
        rx_ring_size: RING,
        rss: Some(RssConf::spread(2, 128)),
        ..PortConfig::default()
    })
    .expect("configure");
    let qs: Vec<_> = (0..2)
        .map(|q| p.igb_rx_queue(q).expect("rx queue"))
        .collect();
    p.start().expect("start");
    let mac = ModelConfig::default().mac.0;
    let frames: Vec<Vec<u8>> = flows.iter().map(|&s| frame(mac, s)).collect();
    let res = rss::bench(qs, &mut Igb { p, m }, pairs, &frames);
    rss::report(&res, pairs);
}
