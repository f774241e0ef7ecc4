//! `macswap`: an L2 reflector on the embedding API — DPDK testpmd's
//! `--forward-mode=macswap`. Every frame a port receives goes back out of
//! the same port with its Ethernet source and destination swapped, a burst
//! at a time: the bytes are swapped in place in the received buffer (no
//! copy, no allocation), the burst is handed to the port's TX queue as it
//! came, and what the queue cannot take is freed and counted.
//!
//! ```text
//! cargo run --release -p wirespeed-apps --example macswap -- --config configs/macswap.toml
//! cargo run --release -p wirespeed-apps --example macswap -- \
//!     --port ring:a --port igb-model --lcore 1 --duration 10
//! ```
//!
//! Ends on Ctrl-C, `count` (frames received, over all ports) or
//! `duration`, and prints each port's counters: received, sent back,
//! dropped (TX queue full) and runts (frames shorter than an Ethernet header,
//! freed).

#[path = "common/mod.rs"]
#[allow(clippy::duplicate_mod)] // the examples test includes all three
mod common;
use clap::Parser;
use common::bad;
pub use common::Error;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wirespeed::eal::lcore::CoreList;
use wirespeed::ethdev::{PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mbuf};
use wirespeed::netdev::QdiscKind;
use wirespeed::runtime::{LcoreApp, LcoreCtx, PortSetup, Runtime, RuntimeConfig};

// ---------------------------------------------------------------- config

/// The TOML file (see `configs/macswap.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConf,
    #[serde(default)]
    pub port: Vec<PortEntry>,
}

/// `[run]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConf {
    /// The core the lcore runs on.
    pub lcore: usize,
    /// Frames per RX burst (1..=256).
    pub burst: usize,
    /// RX and TX descriptors per queue.
    pub ring: u16,
    /// Buffers in the lcore's pool.
    pub pool: u32,
    /// Seconds; none = until Ctrl-C (or `count`).
    pub duration: Option<f64>,
    /// Stop after this many frames received (all ports).
    pub count: Option<u64>,
    /// 4 KiB pages only (DPDK --no-huge).
    pub no_huge: bool,
}

impl Default for RunConf {
    fn default() -> Self {
        RunConf {
            lcore: 0,
            burst: 32,
            ring: 1024,
            pool: 8192,
            duration: None,
            count: None,
            no_huge: false,
        }
    }
}

/// `[[port]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortEntry {
    /// Device spec (`ring:NAME`, `igb-model`, `af_xdp:IFACE`, …).
    pub spec: String,
}

impl Config {
    /// Reads and parses a TOML file (unknown keys are errors naming them).
    pub fn load(path: &Path) -> Result<Config, Error> {
        common::load_toml(path)
    }

    pub fn parse(name: &str, text: &str) -> Result<Config, Error> {
        common::parse_toml(name, text)
    }
}

/// Command line: every flag overrides its key in `--config`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "macswap",
    about = "Reflects every frame out of the port it came in on, MACs swapped (testpmd macswap)"
)]
pub struct Opts {
    /// The TOML config (see configs/macswap.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Device spec of a port (repeat for more; replaces the config's
    /// [[port]] list): ring:NAME, igb-model, ice-model, af_xdp:IFACE, …
    #[arg(long = "port")]
    pub ports: Vec<String>,
    /// Overrides run.lcore.
    #[arg(long)]
    pub lcore: Option<usize>,
    /// Overrides run.count (frames received, all ports).
    #[arg(long)]
    pub count: Option<u64>,
    /// Overrides run.duration (seconds).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Overrides run.burst (1..=256).
    #[arg(long)]
    pub burst: Option<usize>,
    /// Overrides run.ring.
    #[arg(long)]
    pub ring: Option<u16>,
    /// Overrides run.pool.
    #[arg(long)]
    pub pool: Option<u32>,
    /// 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ports: Vec<String>,
    pub run: RunConf,
}

impl Opts {
    /// The config (file or defaults) with the flags' overrides, checked;
    /// errors name the flag or the key.
    pub fn plan(&self) -> Result<Plan, Error> {
        let c = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        let mut run = c.run.clone();
        let key = |flag: bool, f: &str, k: &str| if flag { f.to_string() } else { k.to_string() };
        run.lcore = self.lcore.unwrap_or(run.lcore);
        run.count = self.count.or(run.count);
        run.duration = self.duration.or(run.duration);
        run.burst = self.burst.unwrap_or(run.burst);
        run.ring = self.ring.unwrap_or(run.ring);
        run.pool = self.pool.unwrap_or(run.pool);
        run.no_huge |= self.no_huge;
        let ports = if self.ports.is_empty() {
            c.port.iter().map(|p| p.spec.clone()).collect()
        } else {
            self.ports.clone()
        };
        if ports.is_empty() {
            return Err(bad(
                "port",
                "no port given: --port SPEC (repeat for more) or [[port]] spec = … in --config",
            ));
        }
        if run.burst == 0 || run.burst > wirespeed::mbuf::BURST_MAX {
            return Err(bad(
                key(self.burst.is_some(), "--burst", "run.burst"),
                format!("{} is not in 1..=256", run.burst),
            ));
        }
        if let Some(d) = run.duration {
            if !(d > 0.0 && d.is_finite()) {
                return Err(bad(
                    key(self.duration.is_some(), "--duration", "run.duration"),
                    format!("{d} is not a number of seconds > 0"),
                ));
            }
        }
        if run.pool < 64 {
            return Err(bad(
                key(self.pool.is_some(), "--pool", "run.pool"),
                format!("{} buffers: give 64 or more", run.pool),
            ));
        }
        Ok(Plan { ports, run })
    }
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

/// Opens the plan's ports through `reg`, runs until a stop condition, and
/// reports each port's counters.
pub fn run(plan: &Plan, reg: &Registry, handle_signals: bool) -> Result<Report, Error> {
    let opts = &plan.run;
    if opts.no_huge {
        wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
    }
    let conf = PortConfig {
        tx_ring_size: opts.ring,
        rx_ring_size: opts.ring,
        ..PortConfig::default()
    };
    let mut setups = Vec::new();
    for spec in &plan.ports {
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
    match opts
        .plan()
        .and_then(|p| run(&p, &wirespeed_apps::registry(), true))
    {
        Ok(r) => {
            println!("{r}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("macswap: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
