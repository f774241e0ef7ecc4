//! The `l3fwd` example fed at full speed, for `perf/l3fwd_vs_dpdk.sh`: the
//! same router (`l3fwd.rs`, included as is) with one more device,
//! `replay:IN.pcap`, which plays the part of DPDK's
//! `net_pcap,rx_pcap=IN.pcap,infinite_rx=1` beside it: every RX burst takes
//! buffers from the lcore's pool in bulk and copies the pcap's frames into
//! them, round and round (`eth_pcap_rx_infinite`: `rte_pktmbuf_alloc_bulk`
//! and one `rte_memcpy` per packet); TX frees what it is given and counts it
//! (`eth_tx_drop`). So both routers pay the same source and sink costs.
//!
//! ```text
//! cargo run --release -p wirespeed-apps --example l3fwd_bench -- --config X.toml --duration 5
//! ```

#[allow(dead_code)]
#[path = "l3fwd.rs"]
mod l3fwd;

use clap::Parser;
use std::sync::Arc;
use wirespeed::ethdev::pcap::read_file;
use wirespeed::ethdev::{
    Completed, Driver, DriverInfo, EthDev, EthdevError, MacAddr, PortInfo, QueueSetup, QueueStats,
    RxQueue, TxQueue,
};
use wirespeed::mbuf::{Burst, Mempool};

/// `replay:IN.pcap`: receives IN.pcap's frames for ever; transmits into nothing.
struct ReplayDriver {
    frames: Arc<Vec<Vec<u8>>>,
}

impl Driver for ReplayDriver {
    fn info(&self) -> PortInfo {
        PortInfo::software("replay")
    }
    fn mac(&self) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, 0x99])
    }
    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(DropTx {
            index: q.queue,
            stats: q.stats,
            ring: q.ring_size as usize,
            pending: Completed::default(),
        }))
    }
    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(ReplayRx {
            index: q.queue,
            stats: q.stats,
            frames: self.frames.clone(),
            next: 0,
        }))
    }
}

struct ReplayRx {
    index: u16,
    stats: Arc<QueueStats>,
    frames: Arc<Vec<Vec<u8>>>,
    next: usize,
}

impl RxQueue for ReplayRx {
    fn index(&self) -> u16 {
        self.index
    }
    #[inline]
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        let start = out.len();
        if !pool.alloc_bulk(out, max) {
            return 0;
        }
        let mut bytes = 0u64;
        for m in &mut out.as_mut_slice()[start..] {
            let f = &self.frames[self.next];
            self.next += 1;
            if self.next == self.frames.len() {
                self.next = 0;
            }
            // Fits: the pcap was checked against the data room at open.
            let _ = m.set_len(f.len());
            m.data_mut().copy_from_slice(f);
            bytes += f.len() as u64;
        }
        self.stats.packets.add(max as u64);
        self.stats.bytes.add(bytes);
        max
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}

struct DropTx {
    index: u16,
    stats: Arc<QueueStats>,
    ring: usize,
    pending: Completed,
}

impl TxQueue for DropTx {
    fn index(&self) -> u16 {
        self.index
    }
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let n = pkts.len();
        let bytes = pkts.bytes() as u64;
        pkts.clear();
        self.pending.packets += n as u32;
        self.pending.bytes += bytes;
        self.stats.packets.add(n as u64);
        self.stats.bytes.add(bytes);
        n
    }
    fn clean(&mut self, _budget: usize) -> Completed {
        std::mem::take(&mut self.pending)
    }
    fn free_slots(&self) -> usize {
        self.ring
    }
    fn ring_size(&self) -> usize {
        self.ring
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}

fn replay_driver() -> DriverInfo {
    DriverInfo {
        name: "replay",
        syntax: "replay:IN.pcap",
        help: "receives IN.pcap's frames round and round (DPDK net_pcap infinite_rx); drops what it is sent",
        open: |spec| {
            spec.check_params(&[])?;
            let path = spec.require_arg("replay:IN.pcap")?;
            let recs = read_file(std::path::Path::new(path)).map_err(|e| EthdevError::BadSpec {
                spec: spec.raw.clone(),
                why: e.to_string(),
            })?;
            let frames: Vec<Vec<u8>> = recs.into_iter().map(|r| r.data).collect();
            if frames.is_empty() || frames.iter().any(|f| f.len() < 14 || f.len() > 2048) {
                return Err(EthdevError::BadSpec {
                    spec: spec.raw.clone(),
                    why: "needs at least one frame, each 14..=2048 bytes".into(),
                });
            }
            Ok(Box::new(EthDev::with_driver(
                &spec.raw,
                ReplayDriver {
                    frames: Arc::new(frames),
                },
            )))
        },
    }
}

fn main() -> std::process::ExitCode {
    let opts = l3fwd::Opts::parse();
    let mut reg = wirespeed_apps::registry();
    if let Err(e) = reg.register(replay_driver()) {
        eprintln!("l3fwd_bench: {e}");
        return std::process::ExitCode::from(1);
    }
    let r = opts.plan().and_then(|plan| l3fwd::run(&plan, &reg, true));
    match r {
        Ok(r) => {
            println!("{r}");
            println!(
                "{:<18} {}",
                "tsc_hz",
                wirespeed::eal::tsc::Tsc::global().ns_to_cycles(1_000_000_000)
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("l3fwd_bench: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
