//! `macswap`: an L2 reflector on the embedding API — DPDK testpmd's
//! `--forward-mode=macswap`. Every frame a port receives goes back out of
//! the same port with its Ethernet source and destination swapped, a burst
//! at a time: the bytes are swapped in place in the received buffer (no
//! copy, no allocation), the burst is handed to the port's TX queue as it
//! came, and what the queue cannot take is freed and counted.
//!
//! ```text
//! cargo run --release -p wirespeed-apps --example macswap -- \
//!     --port ring:a --port igb-model --lcore 1 --duration 10
//! ```
//!
//! Ends on Ctrl-C, `--count N` (frames received, over all ports) or
//! `--duration S`, and prints each port's counters: received, sent back,
//! dropped (TX queue full) and runts (frames shorter than an Ethernet header,
//! freed).

use clap::Parser;
use std::time::Duration;
use wirespeed::eal::lcore::CoreList;
use wirespeed::ethdev::{PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mbuf};
use wirespeed::netdev::QdiscKind;
use wirespeed::runtime::{LcoreApp, LcoreCtx, PortSetup, Runtime, RuntimeConfig};

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "macswap",
    about = "Reflects every frame out of the port it came in on, MACs swapped (testpmd macswap)"
)]
pub struct Opts {
    /// Device spec of a port (repeat for more): ring:NAME, igb-model, ice-model, af_xdp:IFACE, …
    #[arg(long = "port", required = true)]
    pub ports: Vec<String>,
    /// The core the lcore runs on.
    #[arg(long, default_value_t = 0)]
    pub lcore: usize,
    /// Stop after this many frames received (all ports).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Frames per RX burst (1..=256).
    #[arg(long, default_value_t = 32)]
    pub burst: usize,
    /// RX and TX descriptors per queue.
    #[arg(long, default_value_t = 1024)]
    pub ring: u16,
    /// Buffers in the lcore's pool.
    #[arg(long, default_value_t = 8192)]
    pub pool: u32,
    /// 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
}

/// One port's counters at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortCount {
    /// Frames received.
    pub rx: u64,
    /// Frames the TX queue took.
    pub tx: u64,
    /// Frames the TX queue could not take (freed).
    pub dropped: u64,
    /// Frames shorter than an Ethernet header (freed).
    pub runts: u64,
}

impl PortCount {
    /// Every received frame is sent, dropped or a runt.
    pub fn balanced(&self) -> bool {
        self.rx == self.tx + self.dropped + self.runts
    }
}

/// What a run ends with, per port (in the order given).
#[derive(Debug, Clone)]
pub struct Report {
    pub names: Vec<String>,
    pub ports: Vec<PortCount>,
    pub elapsed_ns: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (n, c)) in self.names.iter().zip(&self.ports).enumerate() {
            writeln!(
                f,
                "port {i} {n}: rx {} tx {} dropped {} runts {}",
                c.rx, c.tx, c.dropped, c.runts
            )?;
        }
        let rx: u64 = self.ports.iter().map(|c| c.rx).sum();
        let secs = self.elapsed_ns as f64 / 1e9;
        write!(
            f,
            "total: rx {rx} in {secs:.3} s ({:.3} Mpps)",
            if secs > 0.0 {
                rx as f64 / secs / 1e6
            } else {
                0.0
            }
        )
    }
}

/// Swaps the Ethernet destination and source of `m` in place; false for a
/// runt (shorter than the 14-byte header).
#[inline(always)]
pub fn swap_macs(m: &mut Mbuf) -> bool {
    let d = m.data_mut();
    if d.len() < 14 {
        return false;
    }
    let (dst, rest) = d.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
    true
}

/// The lcore's application: reflect what each port receives.
struct MacSwap {
    ports: Vec<PortCount>,
    /// Frames received so far (all ports), for `--count`.
    seen: u64,
    limit: Option<u64>,
    /// The burst handed to the TX queue (built from the RX burst in place).
    out: Burst,
}

impl LcoreApp for MacSwap {
    type Summary = Vec<PortCount>;

    fn poll(&mut self, ctx: &mut LcoreCtx) {
        if self.limit.is_some_and(|n| self.seen >= n) {
            ctx.request_stop();
        }
    }

    /// Plays the part of testpmd's `pkt_burst_mac_swap`: swap in place, then
    /// the whole burst to `dev_queue_xmit` on the input port (`noqueue`:
    /// straight to the driver's `tx_burst`; what it refuses is freed and
    /// counted, as testpmd frees what `rte_eth_tx_burst` leaves).
    #[inline]
    fn on_rx(&mut self, ctx: &mut LcoreCtx, port: u16, _queue: u16, pkts: &mut Burst) {
        let c = &mut self.ports[port as usize];
        let n = pkts.len() as u64;
        c.rx += n;
        self.seen += n;
        let mut runts = 0;
        for m in pkts.as_mut_slice() {
            if !swap_macs(m) {
                runts += 1;
            }
        }
        let burst = if runts == 0 {
            pkts
        } else {
            // Rare: keep the frames that were swapped; runts drop here
            // (back to the pool).
            while let Some(m) = pkts.pop_front() {
                if m.data_len() >= 14 {
                    // `out` is empty and as large as any RX burst.
                    let _ = self.out.push(m);
                }
            }
            c.runts += runts;
            &mut self.out
        };
        let o = ctx.xmit_burst(port as usize, 0, burst);
        c.tx += (o.direct + o.queued) as u64;
        c.dropped += o.dropped as u64;
    }

    fn finish(self, _ctx: &mut LcoreCtx) -> Vec<PortCount> {
        self.ports
    }
}

/// Errors a run can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--{key}: {why}")]
    Arg { key: &'static str, why: String },
    #[error(transparent)]
    Ethdev(#[from] wirespeed::ethdev::EthdevError),
    #[error(transparent)]
    Runtime(#[from] wirespeed::runtime::RuntimeError),
}

/// Checks the options, opens the ports through `reg`, runs until a stop
/// condition, and reports each port's counters.
pub fn run(opts: &Opts, reg: &Registry, handle_signals: bool) -> Result<Report, Error> {
    if opts.burst == 0 || opts.burst > wirespeed::mbuf::BURST_MAX {
        return Err(Error::Arg {
            key: "burst",
            why: format!("{} is not in 1..=256", opts.burst),
        });
    }
    if let Some(d) = opts.duration {
        if !(d > 0.0 && d.is_finite()) {
            return Err(Error::Arg {
                key: "duration",
                why: format!("{d} is not a number of seconds > 0"),
            });
        }
    }
    if opts.no_huge {
        wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
    }
    let conf = PortConfig {
        tx_ring_size: opts.ring,
        rx_ring_size: opts.ring,
        ..PortConfig::default()
    };
    let mut setups = Vec::new();
    for spec in &opts.ports {
        let mut s = PortSetup::new(reg.open(spec)?, conf.clone());
        // testpmd's forwarding: straight to the driver, the rest freed.
        s.txq.qdisc.kind = QdiscKind::Noqueue;
        s.txq.bql.enabled = false;
        s.txq.tx_burst = opts.burst;
        setups.push(s);
    }
    let mut cfg = RuntimeConfig::new(CoreList::from_cores(vec![opts.lcore]));
    cfg.pool.name = "macswap".into();
    cfg.pool.size = opts.pool;
    cfg.rx_burst = opts.burst;
    cfg.handle_signals = handle_signals;
    cfg.stop.duration = opts.duration.map(Duration::from_secs_f64);
    let rt = Runtime::new(cfg, setups)?;
    let names: Vec<String> = rt.ports().iter().map(|p| p.name().to_string()).collect();
    let nb = names.len();
    let limit = opts.count;
    let report = rt.run(move |_ctx| {
        Ok(MacSwap {
            ports: vec![PortCount::default(); nb],
            seen: 0,
            limit,
            out: Burst::new(),
        })
    })?;
    let l = &report.lcores[0];
    Ok(Report {
        names,
        ports: l.app.clone(),
        elapsed_ns: l.elapsed_ns,
    })
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let opts = Opts::parse();
    match run(&opts, &wirespeed_apps::registry(), true) {
        Ok(r) => {
            println!("{r}");
            std::process::ExitCode::SUCCESS
        }
        Err(e @ Error::Arg { .. }) => {
            eprintln!("macswap: {e}");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("macswap: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
