//! `wirespeed gen`: the traffic generator. Streams (raw headers with varying
//! fields, IMIX, pcap replay) are sent by pinned lcores at TSC-paced rates;
//! throughput is sampled per interval into HdrHistograms, latency is measured
//! per packet on return, and everything lands in the live line, the summary,
//! `--json`, `--hlog` and `--plot`. A running generator takes commands on
//! its control socket (`--control`: [`control`]) and shows itself live
//! (`--metrics`, `stats` on the socket, the stream rows, `--tui`).

pub mod control;
mod gate;
mod launch;
mod lcore;
mod live;
pub mod measure;
pub mod metrics;
mod pacer;
mod plan;
mod report;
mod runner;
mod rxq;
mod screen;
mod shape;
mod source;
mod steered;

use crate::config::{Config, ConfigError, PortSection, SizeField, Stream, StreamMode};
pub use report::{print_summary, Summary};
use std::path::PathBuf;
use wirespeed::ethdev::{EthdevError, Registry};

/// `wirespeed gen` options (override the config file).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GenArgs {
    /// TOML config file (see configs/).
    pub config: Option<PathBuf>,
    /// Device spec of port 0 (replaces the config's first port), e.g. null, pcap:out.pcap, ice-model.
    #[arg(long)]
    pub port: Option<String>,
    /// DPDK-style core list, e.g. 0 or 0-1.
    #[arg(long)]
    pub lcores: Option<String>,
    /// Frame size on the wire including FCS (64 → 60-byte frames in a pcap).
    #[arg(long)]
    pub size: Option<u32>,
    /// Total packets to send (all lcores together).
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds to run.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Target rate for every stream: "1 Mpps", "9.5 Gbit/s", "10 Gbit/s L1", "90%", "line".
    #[arg(long)]
    pub rate: Option<String>,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write latency histograms as an HdrHistogram interval log (one interval per second).
    #[arg(long)]
    pub hlog: Option<PathBuf>,
    /// Write an SVG plot: latency percentile distribution and throughput over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Throughput sampling interval in milliseconds (for the interval-rate histograms).
    #[arg(long, default_value_t = 10)]
    pub interval_ms: u64,
    /// Ask the port for IPv4/UDP checksum offload (the NIC fills the checksums).
    #[arg(long)]
    pub offload: bool,
    /// 802.1Q VLAN id to tag every stream with.
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Insert the VLAN tag in the NIC (TX_VLAN offload) instead of the frame template.
    #[arg(long)]
    pub vlan_offload: bool,
    /// Resolve each stream's destination MAC with ARP on its port first (source MAC = the port's).
    #[arg(long)]
    pub arp: bool,
    /// Use 2 MiB hugepages only (fail if none are reserved).
    #[arg(long, conflicts_with = "no_huge")]
    pub huge: bool,
    /// Use 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
    /// No live line, only the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Capture what port PORT (its index) receives to FILE: pcapng (with
    /// each frame's direction and nanosecond timestamps) when FILE ends in
    /// .pcapng, else nanosecond pcap. Repeatable.
    #[arg(long, value_name = "PORT:FILE")]
    pub capture: Vec<String>,
    /// Frames each --capture file holds at most (the rest are counted in
    /// the port's tap_limit_skipped; 0 = no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub capture_limit: u64,
    /// Serve the run's counters as OpenMetrics text at http://ADDR/metrics
    /// while it runs (ADDR: PORT for 127.0.0.1:PORT, or HOST:PORT; port 0
    /// picks a free one and prints it).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Take commands on this Unix socket while running (JSON lines: streams,
    /// stats, pause, resume, stop, start, rate, quit; see `wirespeed ctl`).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Redraw a full-screen page every second (per port and per stream)
    /// instead of printing lines; needs a terminal on stderr (else the
    /// plain lines are printed, with a note).
    #[arg(long, conflicts_with = "quiet")]
    pub tui: bool,
    /// In-process callers (`wirespeed bench`): run this configuration
    /// instead of loading `config` (the flags still apply over it).
    #[arg(skip)]
    pub preset: Option<Config>,
    /// In-process callers: how long to wait after the last send for frames
    /// still coming back and for the queues to drain, in ms (default: 50 ms
    /// for returns, 2 s for the drain).
    #[arg(skip)]
    pub settle_ms: Option<u64>,
}

/// Why a run did not happen or failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// Bad config or usage: exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The run itself failed: exit 1.
    #[error("{0}")]
    Run(String),
}

impl GenError {
    pub fn exit_code(&self) -> i32 {
        match self {
            GenError::Config(_) => 2,
            GenError::Run(_) => 1,
        }
    }
}

pub(crate) fn port_error(i: usize, e: EthdevError) -> GenError {
    match e {
        EthdevError::UnknownDriver { .. } | EthdevError::BadSpec { .. } => {
            GenError::Config(ConfigError::new(format!("port[{i}].spec"), e.to_string()))
        }
        EthdevError::Config { ref key, .. } => {
            GenError::Config(ConfigError::new(format!("port[{i}].{key}"), e.to_string()))
        }
        _ => GenError::Run(e.to_string()),
    }
}

/// A port section for a spec given on the command line (or the default).
fn port_section(spec: &str) -> PortSection {
    PortSection {
        spec: spec.to_string(),
        tx_queues: None,
        ring_size: 1024,
        offload: false,
        tso: false,
        qdisc: None,
        bql: None,
        txqueuelen: 1000,
        ip: None,
        gateway: None,
        mtu: None,
        rx_lcore: None,
        rx_queues: None,
        rss: false,
        xps: None,
        rss_key: None,
        rss_reta: None,
        rss_hash: None,
        neigh: Vec::new(),
        route: Vec::new(),
        dev_tx_weight: None,
        byte_queue_limits: None,
        priomap: None,
        neigh_parms: None,
        wmem_max: None,
        force_igmp_version: None,
    }
}

/// Builds the effective configuration from a file and the flags.
pub fn effective_config(args: &GenArgs) -> Result<Config, ConfigError> {
    let mut c = match (&args.preset, &args.config) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => Config::load(p)?,
        (None, None) => Config::default(),
    };
    if let Some(p) = &args.port {
        match c.ports.first_mut() {
            Some(first) => first.spec = p.clone(),
            None => c.ports.push(port_section(p)),
        }
    }
    if c.ports.is_empty() {
        // The embedded default device.
        c.ports.push(port_section(crate::DEFAULT_PORT));
    }
    if args.offload {
        for p in &mut c.ports {
            p.offload = true;
        }
    }
    apply_run_flags(args, &mut c)?;
    apply_stream_flags(args, &mut c);
    let streams_bounded = !c.streams.is_empty()
        && c.streams.iter().all(|s| {
            s.count > 0
                || s.duration > 0.0
                || s.mode == StreamMode::Pcap && s.loops > 0
                || s.burst > 0 && s.bursts.unwrap_or(1) > 0
        });
    if c.run.count == 0 && c.run.duration == 0.0 && !streams_bounded {
        // Never run forever by accident: a default duration, as pktgen users ask for.
        c.run.duration = 10.0;
    }
    Ok(c)
}

/// `--lcores`, `--count`, `--duration`, `--huge`/`--no-huge` over `[run]`.
fn apply_run_flags(args: &GenArgs, c: &mut Config) -> Result<(), ConfigError> {
    if let Some(l) = &args.lcores {
        c.run.lcores = l.clone();
    }
    if let Some(n) = args.count {
        if n == 0 {
            return Err(ConfigError::new(
                "--count",
                "0 packets is not a run; give at least 1, or leave --count out (the config's counts, else a 10 s run)",
            ));
        }
        // The flag wins over the config: the run's total, split over the
        // streams, replaces their own counts.
        c.run.count = n;
        for s in &mut c.streams {
            s.count = 0;
        }
    }
    if let Some(d) = args.duration {
        if !(d > 0.0 && d.is_finite()) {
            return Err(ConfigError::new(
                "--duration",
                format!(
                    "{d} is not a number of seconds > 0; leave --duration out for the config's"
                ),
            ));
        }
        c.run.duration = d;
    }
    for cap in &args.capture {
        apply_capture(cap, args.capture_limit, c)?;
    }
    if args.huge {
        c.run.pages = wirespeed::eal::PageMode::Huge;
    }
    if args.no_huge {
        c.run.pages = wirespeed::eal::PageMode::Small;
    }
    Ok(())
}

/// `--capture PORT:FILE`: the port's spec wrapped in a receive-only tap
/// (`tap:FILE?dir=rx+SPEC`), so what it receives is written as it arrives.
fn apply_capture(cap: &str, limit: u64, c: &mut Config) -> Result<(), ConfigError> {
    let bad = |why: String| ConfigError::new("--capture", why);
    let (i, file) = cap
        .split_once(':')
        .ok_or_else(|| bad(format!("'{cap}' is not PORT:FILE (e.g. 1:rx.pcapng)")))?;
    let i: usize = i
        .parse()
        .map_err(|_| bad(format!("'{i}' is not a port index")))?;
    let n = c.ports.len();
    let port = c
        .ports
        .get_mut(i)
        .ok_or_else(|| bad(format!("port {i}: the config has {n} port(s)")))?;
    if file.is_empty() || file.contains('+') || file.contains('?') {
        return Err(bad(format!(
            "'{file}': give a file name without '+' or '?'"
        )));
    }
    let limit = if limit > 0 {
        format!("&max_frames={limit}")
    } else {
        String::new()
    };
    port.spec = format!("tap:{file}?dir=rx{limit}+{}", port.spec);
    Ok(())
}

/// `--size`, `--vlan`, `--vlan-offload`, `--rate` over every stream (one
/// default stream when the config has none).
fn apply_stream_flags(args: &GenArgs, c: &mut Config) {
    if args.size.is_none() && args.vlan.is_none() && args.rate.is_none() && !args.vlan_offload {
        return;
    }
    if c.streams.is_empty() {
        c.streams.push(Default::default());
    }
    for s in &mut c.streams {
        if let Some(z) = args.size {
            s.size = Some(SizeField::Fixed(z));
            s.imix = None;
        }
        if let Some(v) = args.vlan {
            s.vlan = v;
        }
        if args.vlan_offload {
            s.vlan_offload = true;
        }
        if let Some(r) = &args.rate {
            s.rate = Some(r.clone());
        }
    }
}

/// Validates a configuration without opening any device: TOML, values, core
/// list, and that each port's spec names a known driver. Returns the number of
/// streams.
pub fn check(args: &GenArgs, registry: &Registry) -> Result<usize, GenError> {
    let c = plan::Checked::new(args)?;
    c.check_ports(registry)?;
    Ok(c.streams.len())
}

/// Runs the generator. `registry` holds every driver the binary knows.
pub fn run(args: &GenArgs, registry: &Registry) -> Result<Summary, GenError> {
    runner::run(args, registry)
}

/// Streams that actually reach [`run`] (after validation).
pub(crate) fn validated(args: &GenArgs) -> Result<(Config, Vec<Stream>), GenError> {
    let cfg = effective_config(args)?;
    let streams = cfg.validate()?;
    Ok((cfg, streams))
}
