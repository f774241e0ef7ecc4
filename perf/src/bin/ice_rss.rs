//! Receive-side scaling on the ice (E810) model: one lcore draining one RX
//! queue against two lcores each draining its own, with the same
//! per-packet work (rx_burst, a per-flow counter indexed by the NIC's RSS
//! hash, a MAC swap as in the macswap example, bulk free). The method is
//! `igb_rss`'s; what differs is the device: the key and the 2048-entry PF
//! LUT go to the model's firmware over the admin queue (set_rss_key,
//! set_rss_lut), and the hash comes back in the flex descriptor.
//!
//! How it measures, so that neither the model's DMA engine (a third
//! thread on a two-core machine) nor the machine's other load is counted
//! as lcore work: one port with two RSS queues; rounds alternate between
//! "one lcore" (the LUT sends every flow to queue 0, lcore 0 receives
//! them all) and "two lcores" (round-robin LUT, each lcore its queue),
//! the LUT switched between rounds with `IcePort::update_rss`. Each round
//! the lcores first arm their rings (4096 descriptors), then the harness
//! injects the frames and waits until the model has written all of them
//! to the rings (its engine then sleeps); only then are the spinning
//! lcores released, each draining exactly its share. The flows are 256
//! UDP source ports chosen so that the default Toeplitz key and the
//! round-robin LUT split them exactly 128/128, so both queues get
//! `PER_QUEUE` frames.
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
//! usage: ice_rss [PAIRS]   (default 100; lcores on cores 0 and 1)

use pmd_ice::{IceModel, IcePort, ModelConfig, ProbeOptions, Sink};
use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::CoreList;
use wirespeed::ethdev::{Port, PortConfig, RssConf};
use wirespeed_perf::rss::{self, frame, queue_of, BURST, PER_QUEUE, RING};

/// Entries of the PF LUT the driver programs.
const LUT: u16 = 2048;

/// The ice model's side: the LUT through the admin queue, frames injected
/// on its wire, delivery read from its RX frame count.
struct Ice {
    p: IcePort<IceModel>,
    m: Arc<IceModel>,
}

impl rss::Device for Ice {
    fn steer(&mut self, queues: u16) {
        self.p
            .update_rss(RssConf::spread(queues, LUT))
            .expect("LUT update");
    }
    fn inject(&self, f: &[u8]) -> bool {
        self.m.inject(f)
    }
    fn delivered(&mut self, total: u64) {
        // The model's engine has written every frame to the rings.
        let t0 = std::time::Instant::now();
        while self.m.stats().rx_frames < total {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "model did not deliver: {:?}",
                self.m.stats()
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        assert_eq!(
            self.m.stats().rx_no_desc,
            0,
            "a ring ran out of descriptors"
        );
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
    // 128 source ports the round-robin LUT sends to each queue.
    let (mut q0, mut q1) = (Vec::new(), Vec::new());
    for s in 1000u16.. {
        let v = if queue_of(s, LUT) == 0 {
            &mut q0
        } else {
            &mut q1
        };
        if v.len() < 128 {
            v.push(s);
        }
        if q0.len() == 128 && q1.len() == 128 {
            break;
        }
    }
    let flows: Vec<u16> = q0.into_iter().zip(q1).flat_map(|(a, b)| [a, b]).collect();
    println!(
        "ice model, RSS (default key, round-robin 2048-entry PF LUT), 64-byte UDP frames of 256 flows; \
         {PER_QUEUE} frames per queue per round, ring {RING}, burst {BURST}, {pairs} pairs of rounds (one lcore, two lcores; the LUT switched between them)"
    );
    println!("per packet: rx_burst + per-flow counter by the RSS hash + MAC swap + bulk free");
    let m = Arc::new(
        IceModel::new(ModelConfig {
            sink: Sink::Count,
            pacing: false,
            ..ModelConfig::default()
        })
        .expect("model"),
    );
    let mut p = IcePort::probe(
        "ice-model",
        m.clone(),
        0x8086,
        m.device_id(),
        &ProbeOptions::default(),
    )
    .expect("probe");
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 2,
        rx_ring_size: RING,
        rss: Some(RssConf::spread(2, LUT)),
        ..PortConfig::default()
    })
    .expect("configure");
    let qs: Vec<_> = (0..2)
        .map(|q| p.ice_rx_queue(q).expect("rx queue"))
        .collect();
    p.start().expect("start");
    let mac = ModelConfig::default().mac.0;
    let frames: Vec<Vec<u8>> = flows.iter().map(|&s| frame(mac, s)).collect();
    let res = rss::bench(qs, &mut Ice { p, m }, pairs, &frames);
    rss::report(&res, pairs);
}
