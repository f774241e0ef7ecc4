//! `wirespeed bench`: RFC 2544 benchmarks over the generator. Every trial is
//! a real generator run (plan → launch → summary, in this process) of the
//! config's streams at one offered load; what the bench adds is the choice
//! of loads and the loss accounting:
//!
//! * `throughput` — §26.1: the highest offered rate whose loss stays within
//!   the threshold (`--loss`, 0 = NDR; `--pdr` adds a partial-drop rate),
//!   found by binary search between 0 and the port's line rate (or
//!   `--max-rate`) to within `--resolution`; with a latency stream, §26.2's
//!   latency at the rate found;
//! * `frame-loss` — §26.3: the loss at 100%, 90%, … of the maximum until two
//!   successive trials lose nothing;
//! * `back-to-back` — §26.4: the longest burst at the maximum rate that
//!   loses nothing, by binary search on its length, repeated `--repeat` times.
//!
//! Which streams the bench varies: those without a `rate` of their own (or
//! with `rate = "line"`); a stream with a fixed rate keeps it (a background
//! load, a latency probe) and its load is taken off the port's line rate
//! before the search. Loss is offered − received when a stream comes back
//! (a `latency = true` stream counts its own returns exactly; a stream with
//! `rx_port` counts what that port received), else offered − transmitted on
//! the wire (the port only sends). "Offered" is the trial's whole count: a
//! port that takes fewer frames in the trial's time than the rate asks loses
//! the rest.

use crate::config::{
    Config, ConfigError, ImixField, Rate, SizeField, StreamMode, MAX_SIZE, MIN_SIZE,
};
use crate::gen::{self, GenArgs, GenError, Summary};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use wirespeed::ethdev::Registry;

/// RFC 2544 §9.1's Ethernet frame sizes.
pub const RFC_SIZES: &str = "64,128,256,512,1024,1280,1518";

/// Preamble, start delimiter and inter-frame gap: bytes per frame on the
/// wire beyond the frame itself (FCS included in the frame size).
const L1_OVERHEAD: f64 = 20.0;

/// A trial's run ends this fraction of its time after it should have sent
/// its last frame …
const CAP_SLACK: f64 = 0.001;
/// … or at least this many seconds after.
const CAP_SLACK_MIN_S: f64 = 0.010;

/// Options every benchmark takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The generator config: its ports and streams (see configs/rfc2544.toml).
    pub config: PathBuf,
    /// Frame sizes on the wire including FCS, comma-separated; `imix` is the
    /// simple IMIX (64:7, 594:4, 1518:1).
    #[arg(long, default_value = RFC_SIZES)]
    pub sizes: String,
    /// Wait after a trial's last frame for frames still coming back and for
    /// the queues to drain, in ms (RFC 2544 §23: two seconds).
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,
    /// Top of the search per port for the varied streams together, e.g.
    /// "100 kpps", "5 Gbit/s", "50%" (default: the line rate less the fixed
    /// streams' load; required for a port without a line rate).
    #[arg(long)]
    pub max_rate: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Use 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
    /// No line per trial on stderr, only the table.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `wirespeed bench throughput`.
#[derive(Debug, Clone, clap::Args)]
pub struct ThroughputArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Loss allowed at the throughput rate, in % of the frames offered
    /// (0 = no drop rate, NDR).
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Also search the partial drop rate: the highest rate losing at most PCT %.
    #[arg(long)]
    pub pdr: Option<f64>,
    /// Seconds per trial (RFC 2544 §24: at least 60).
    #[arg(long, default_value_t = 60.0)]
    pub trial_s: f64,
    /// Stop the search when it has the rate to within PCT % of the search range.
    #[arg(long, default_value_t = 1.0)]
    pub resolution: f64,
}

/// `wirespeed bench frame-loss`.
#[derive(Debug, Clone, clap::Args)]
pub struct FrameLossArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Seconds per trial (RFC 2544 §24: at least 60).
    #[arg(long, default_value_t = 60.0)]
    pub trial_s: f64,
    /// Step down by PCT % of the maximum per trial (RFC 2544 §26.3: 10 or less).
    #[arg(long, default_value_t = 10.0)]
    pub step: f64,
}

/// `wirespeed bench back-to-back`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackToBackArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The longest burst tried, in seconds at the maximum rate (RFC 2544
    /// §26.4: at least 2).
    #[arg(long, default_value_t = 2.0)]
    pub trial_s: f64,
    /// The longest burst tried, in frames (instead of --trial-s).
    #[arg(long)]
    pub max_burst: Option<u64>,
    /// Searches per frame size, averaged (RFC 2544 §26.4: at least 50).
    #[arg(long, default_value_t = 50)]
    pub repeat: u32,
}

/// The `wirespeed bench` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchCmd {
    /// RFC 2544 §26.1 throughput (NDR, PDR) per frame size, with §26.2 latency at that rate.
    Throughput(ThroughputArgs),
    /// RFC 2544 §26.3 frame loss rate: loss at 100%, 90%, … until two trials lose nothing.
    FrameLoss(FrameLossArgs),
    /// RFC 2544 §26.4 back-to-back: the longest burst at the maximum rate without loss.
    BackToBack(BackToBackArgs),
}

/// A frame size the bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchSize {
    Fixed(u32),
    /// The simple IMIX (64:7, 594:4, 1518:1).
    Imix,
}

impl BenchSize {
    pub fn label(&self) -> String {
        match self {
            BenchSize::Fixed(z) => z.to_string(),
            BenchSize::Imix => "imix".into(),
        }
    }
}

/// Parses `--sizes`: "64,128,imix".
pub fn parse_sizes(s: &str) -> Result<Vec<BenchSize>, ConfigError> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim) {
        let z = if part.eq_ignore_ascii_case("imix") {
            BenchSize::Imix
        } else {
            match part.parse::<u32>() {
                Ok(z) if (MIN_SIZE..=MAX_SIZE).contains(&z) => BenchSize::Fixed(z),
                Ok(z) => {
                    return Err(ConfigError::new(
                        "--sizes",
                        format!("{z} is outside {MIN_SIZE}..={MAX_SIZE} (frame sizes on the wire, FCS included)"),
                    ))
                }
                Err(_) => {
                    return Err(ConfigError::new(
                        "--sizes",
                        format!("'{part}' is not a frame size; give e.g. \"{RFC_SIZES},imix\""),
                    ))
                }
            }
        };
        if v.contains(&z) {
            return Err(ConfigError::new(
                "--sizes",
                format!("{} is given twice", z.label()),
            ));
        }
        v.push(z);
    }
    Ok(v)
}

fn check_pct(flag: &str, v: f64, zero_ok: bool) -> Result<(), ConfigError> {
    let ok = v.is_finite() && v <= 100.0 && if zero_ok { v >= 0.0 } else { v > 0.0 };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            flag,
            format!(
                "{v} is not a percentage in {}0, 100]",
                if zero_ok { "[" } else { "(" }
            ),
        ))
    }
}

fn check_trial_s(v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            "--trial-s",
            format!("{v} is not a number of seconds in (0, 3600]; a trial must send something"),
        ))
    }
}

/// What one port offers the varied streams.
#[derive(Debug, Clone, Serialize)]
pub struct PortRange {
    pub port: usize,
    pub spec: String,
    /// The port's line rate (bit/s, L1; 0 = none).
    pub line_rate_bps: u64,
    /// Varied streams on the port.
    pub streams: Vec<String>,
    /// The fixed streams' load (L1 bit/s, at the current size).
    #[serde(skip)]
    fixed_l1_bps: f64,
}

/// Per latency stream: nanoseconds at one trial.
#[derive(Debug, Clone, Serialize)]
pub struct StreamLatency {
    pub stream: String,
    pub min_ns: u64,
    pub avg_ns: f64,
    pub p99_ns: u64,
    pub max_ns: u64,
    pub received: u64,
}

/// One trial: a generator run at one load.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Of the search range (the line rate less the fixed load, or --max-rate).
    pub load_pct: f64,
    /// The varied streams' offered rate together.
    pub offered_pps: f64,
    /// Frames the trial offers (its rate × its time, or the burst).
    pub frames: u64,
    /// Frames the port's queues took.
    pub accepted: u64,
    /// Frames received back (or transmitted, when the port only sends).
    pub delivered: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub duration_s: f64,
    pub latency: Vec<StreamLatency>,
}

/// How loss is counted in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossBasis {
    /// Every varied stream comes back: offered − received.
    Received,
    /// No varied stream comes back: offered − transmitted on the wire.
    Transmitted,
    /// Some come back, some not (each counted its way).
    Mixed,
}

impl LossBasis {
    fn describe(self) -> &'static str {
        match self {
            LossBasis::Received => "loss = offered − received (the frames come back)",
            LossBasis::Transmitted => {
                "loss = offered − transmitted on the wire (the port only sends; nothing comes back)"
            }
            LossBasis::Mixed => "loss = offered − received for the streams that come back, offered − transmitted for the others",
        }
    }
}

/// The bench's view of a config: which streams vary, where they go.
struct Bench {
    base: Config,
    varied: Vec<usize>,
    ports: Vec<PortRange>,
    max_rate: Option<Rate>,
    settle_ms: u64,
    no_huge: bool,
    quiet: bool,
    basis: LossBasis,
    /// Per varied stream: it comes back (and how).
    returns: Vec<Return>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Return {
    /// Its own latency tracker counts what came back.
    Tracked,
    /// What this port received.
    Port(usize),
    None,
}

/// The load of one trial.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// Of the search range, 0..=1.
    frac: f64,
    /// Seconds (throughput, frame loss) …
    secs: f64,
    /// … or a burst of this many frames at the load.
    burst: Option<u64>,
}

/// Per varied stream at one size: the most it may offer (pps) and its mean frame.
struct SizePlan {
    size: BenchSize,
    max_pps: Vec<f64>,
    mean: Vec<f64>,
    /// The varied streams' ports' line rate together (L1 bit/s; 0 = some have none).
    line_bps: f64,
}

impl Bench {
    fn new(c: &CommonArgs, registry: &Registry) -> Result<Bench, GenError> {
        if c.settle_ms > 60_000 {
            return Err(ConfigError::new(
                "--settle-ms",
                format!(
                    "{} ms is more than a minute; RFC 2544 waits 2000",
                    c.settle_ms
                ),
            )
            .into());
        }
        let max_rate = match &c.max_rate {
            None => None,
            Some(s) => match Rate::parse(s).map_err(|e| ConfigError::new("--max-rate", e))? {
                Rate::Line => None,
                r => Some(r),
            },
        };
        let base = Config::load(&c.config)?;
        if base.streams.is_empty() {
            return Err(ConfigError::new(
                "stream",
                format!(
                    "{} has no [[stream]]; the bench varies the rate of the config's streams (see configs/rfc2544.toml)",
                    c.config.display()
                ),
            )
            .into());
        }
        // Validated as the generator would (keys, ports, cores).
        let streams = base.validate()?;
        let mut varied = Vec::new();
        for (i, s) in base.streams.iter().enumerate() {
            let fixed = match &s.rate {
                None => false,
                Some(r) => Rate::parse(r).map(|r| r != Rate::Line).unwrap_or(true),
            };
            if fixed {
                continue;
            }
            if streams[i].mode != StreamMode::Raw {
                return Err(ConfigError::new(
                    format!("stream[{i}].mode"),
                    "the bench varies raw streams only (frame sizes on the wire); give this stream a fixed rate or mode = \"raw\"",
                )
                .into());
            }
            varied.push(i);
        }
        if varied.is_empty() {
            return Err(ConfigError::new(
                "stream",
                "every [[stream]] has a fixed rate; leave `rate` out (or \"line\") on the streams whose rate the bench varies",
            )
            .into());
        }
        let mut ports = Vec::new();
        for (pi, p) in base.ports.iter().enumerate() {
            let mine: Vec<String> = varied
                .iter()
                .filter(|&&i| streams[i].port == pi)
                .map(|&i| streams[i].name.clone())
                .collect();
            if mine.is_empty() {
                continue;
            }
            let line = {
                let dev = registry.open(&p.spec).map_err(|e| gen::port_error(pi, e))?;
                dev.info().line_rate_bps
            };
            if line == 0 && max_rate.is_none() {
                return Err(ConfigError::new(
                    "--max-rate",
                    format!("port[{pi}] ({}) has no line rate to search up to; give the top, e.g. --max-rate \"1 Mpps\"", p.spec),
                )
                .into());
            }
            if line == 0 && matches!(max_rate, Some(Rate::Percent(_))) {
                return Err(ConfigError::new(
                    "--max-rate",
                    format!("port[{pi}] ({}) has no line rate to take a percentage of; give pps or bit/s", p.spec),
                )
                .into());
            }
            ports.push(PortRange {
                port: pi,
                spec: p.spec.clone(),
                line_rate_bps: line,
                streams: mine,
                fixed_l1_bps: 0.0,
            });
        }
        let returns: Vec<Return> = varied
            .iter()
            .map(|&i| {
                let s = &streams[i];
                if s.latency {
                    Return::Tracked
                } else if s.rx_port != s.port {
                    Return::Port(s.rx_port)
                } else {
                    Return::None
                }
            })
            .collect();
        let back = returns.iter().filter(|r| **r != Return::None).count();
        let basis = match back {
            0 => LossBasis::Transmitted,
            n if n == returns.len() => LossBasis::Received,
            _ => LossBasis::Mixed,
        };
        Ok(Bench {
            base,
            varied,
            ports,
            max_rate,
            settle_ms: c.settle_ms,
            no_huge: c.no_huge,
            quiet: c.quiet,
            basis,
            returns,
        })
    }

    /// The config with the varied streams at `size`.
    fn sized(&self, size: BenchSize) -> Config {
        let mut cfg = self.base.clone();
        for &i in &self.varied {
            let s = &mut cfg.streams[i];
            match size {
                BenchSize::Fixed(z) => {
                    s.size = Some(SizeField::Fixed(z));
                    s.imix = None;
                }
                BenchSize::Imix => {
                    s.size = None;
                    s.imix = Some(ImixField::Named("simple".into()));
                }
            }
        }
        cfg
    }

    /// What each varied stream may offer at `size`: its port's range (line
    /// rate less the fixed streams, or --max-rate) shared evenly.
    fn size_plan(&mut self, size: BenchSize) -> Result<SizePlan, GenError> {
        let cfg = self.sized(size);
        let streams = cfg.validate()?;
        let mut max_pps = Vec::new();
        let mut mean = Vec::new();
        let mut line_total = 0.0;
        let mut all_lines = true;
        for pr in &mut self.ports {
            let line = pr.line_rate_bps as f64;
            pr.fixed_l1_bps = streams
                .iter()
                .enumerate()
                .filter(|(i, s)| s.port == pr.port && !self.varied.contains(i))
                .filter_map(|(_, s)| {
                    let m = s.sizes.mean();
                    s.rate
                        .pps(m, pr.line_rate_bps)
                        .map(|pps| pps * (m + L1_OVERHEAD) * 8.0)
                })
                .sum();
            if line > 0.0 {
                line_total += line;
            } else {
                all_lines = false;
            }
        }
        for &i in &self.varied {
            let s = &streams[i];
            let m = s.sizes.mean();
            let pr = self
                .ports
                .iter()
                .find(|p| p.port == s.port)
                .expect("every varied stream's port has a range");
            let k = pr.streams.len() as f64;
            let line = pr.line_rate_bps as f64;
            let avail = line - pr.fixed_l1_bps;
            let key = || format!("port[{}]", pr.port);
            if line > 0.0 && avail <= line * 1e-3 {
                return Err(ConfigError::new(
                    key(),
                    format!("its fixed-rate streams take {:.3} of its {:.3} Gbit/s (L1): nothing is left for the bench to vary", pr.fixed_l1_bps / 1e9, line / 1e9),
                )
                .into());
            }
            let top = match self.max_rate {
                None => avail,
                Some(r) => {
                    let l1 = r
                        .pps(m, pr.line_rate_bps)
                        .map(|pps| pps * (m + L1_OVERHEAD) * 8.0)
                        .unwrap_or(avail);
                    if line > 0.0 && l1 > avail * 1.000_001 {
                        return Err(ConfigError::new(
                            "--max-rate",
                            format!(
                                "{} is {:.3} Gbit/s (L1) at {} B, above what port[{}] has for the varied streams ({:.3} Gbit/s: its line rate less the fixed streams)",
                                r.describe(),
                                l1 / 1e9,
                                m,
                                pr.port,
                                avail / 1e9
                            ),
                        )
                        .into());
                    }
                    l1
                }
            };
            max_pps.push(top / k / ((m + L1_OVERHEAD) * 8.0));
            mean.push(m);
        }
        Ok(SizePlan {
            size,
            max_pps,
            mean,
            line_bps: if all_lines { line_total } else { 0.0 },
        })
    }

    /// Runs one trial: the generator over the config at `load`.
    fn trial(&self, sp: &SizePlan, load: Load, registry: &Registry) -> Result<Trial, GenError> {
        let mut cfg = self.sized(sp.size);
        let mut frames = 0u64;
        let mut offered_pps = 0.0;
        let nv = self.varied.len() as u64;
        let mut longest = 0.0f64;
        for (j, &i) in self.varied.iter().enumerate() {
            // Rounded down to the pps the rate parser keeps: never above
            // the line rate the plan checks against.
            let pps = ((sp.max_pps[j] * load.frac * 1e3).floor() / 1e3).max(1e-3);
            let n = match load.burst {
                Some(b) => b / nv + u64::from((j as u64) < b % nv),
                None => ((pps * load.secs).round() as u64).max(1),
            };
            let s = &mut cfg.streams[i];
            s.rate = Some(format!("{pps:.3} pps"));
            s.count = n;
            s.duration = 0.0;
            frames += n;
            offered_pps += pps;
            longest = longest.max(n as f64 / pps);
        }
        for (i, s) in cfg.streams.iter_mut().enumerate() {
            if !self.varied.contains(&i) {
                s.count = 0;
                s.duration = longest;
            }
        }
        // The run's cap: the trial's time and a little for a late start or
        // a descheduled lcore (the pacer catches up); what the port did not
        // take by then is lost.
        cfg.run.count = 0;
        cfg.run.duration = longest + (longest * CAP_SLACK).max(CAP_SLACK_MIN_S);
        let args = GenArgs {
            preset: Some(cfg),
            settle_ms: Some(self.settle_ms),
            no_huge: self.no_huge,
            quiet: true,
            interval_ms: 10,
            ..Default::default()
        };
        // A Ctrl-C between trials ends the bench as one during a trial does.
        if wirespeed::eal::signal::stop_requested() {
            return Err(GenError::Run("interrupted (SIGINT/SIGTERM)".into()));
        }
        let s = gen::run(&args, registry)?;
        if wirespeed::eal::signal::stop_requested() {
            return Err(GenError::Run("interrupted (SIGINT/SIGTERM)".into()));
        }
        if !s.failures.is_empty() {
            return Err(GenError::Run(format!(
                "the trial at {:.3}% failed: {}",
                load.frac * 100.0,
                s.failures.join("; ")
            )));
        }
        let t = self.account(&s, load, frames, offered_pps);
        if t.delivered == 0 {
            let what = match self.basis {
                LossBasis::Transmitted => "transmitted",
                _ => "came back",
            };
            return Err(GenError::Run(format!(
                "none of the {} frames offered at {}pps {what} in the trial (port {}); check the port and its return path (sink=loopback, the ring's other end, rx_port)",
                frames,
                crate::config::si(offered_pps),
                self.ports
                    .iter()
                    .map(|p| p.spec.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(t)
    }

    /// The trial's loss from its summary.
    fn account(&self, s: &Summary, load: Load, frames: u64, offered_pps: f64) -> Trial {
        let mut delivered = 0u64;
        let mut accepted = 0u64;
        let mut port_counted = Vec::new();
        for (j, &i) in self.varied.iter().enumerate() {
            let st = &s.streams[i];
            accepted += st.offered;
            match self.returns[j] {
                Return::Tracked => delivered += st.latency.as_ref().map_or(0, |l| l.received),
                Return::None => delivered += st.packets,
                Return::Port(p) => {
                    if !port_counted.contains(&p) {
                        port_counted.push(p);
                        // What the port received, less the frames latency
                        // streams counted as their own.
                        let tracked: u64 = s
                            .streams
                            .iter()
                            .zip(&self.base.streams)
                            .filter(|(_, sec)| {
                                sec.rx_port == Some(p) || (sec.rx_port.is_none() && sec.port == p)
                            })
                            .filter_map(|(x, _)| x.latency.as_ref().map(|l| l.received))
                            .sum();
                        delivered += s.ports[p].rx_packets.saturating_sub(tracked);
                    }
                }
            }
        }
        let delivered = delivered.min(frames);
        let lost = frames - delivered;
        let latency = s
            .streams
            .iter()
            .filter_map(|st| {
                st.latency.as_ref().map(|l| StreamLatency {
                    stream: st.name.clone(),
                    min_ns: l.ns.min,
                    avg_ns: l.ns.mean,
                    p99_ns: l.ns.p99,
                    max_ns: l.ns.max,
                    received: l.received,
                })
            })
            .collect();
        Trial {
            load_pct: load.frac * 100.0,
            offered_pps,
            frames,
            accepted,
            delivered,
            lost,
            loss_pct: if frames > 0 {
                lost as f64 * 100.0 / frames as f64
            } else {
                0.0
            },
            duration_s: s.duration_s,
            latency,
        }
    }

    fn header(&self, what: &str, config: &std::path::Path) {
        println!("wirespeed bench {what} {}", config.display());
        for p in &self.ports {
            println!(
                "  port[{}] {}: {}; varied streams: {}",
                p.port,
                p.spec,
                if p.line_rate_bps > 0 {
                    format!(
                        "line rate {}bit/s",
                        crate::config::si(p.line_rate_bps as f64)
                    )
                } else {
                    "no line rate".into()
                },
                p.streams.join(", ")
            );
        }
        println!("  {}", self.basis.describe());
    }
}

/// A trial runner the searches call: the load's fraction of the range → its trial.
type TrialFn<'a> = dyn FnMut(f64) -> Result<Trial, GenError> + 'a;

/// Trials already run at a load (the NDR and PDR searches share them).
struct Trials<'a> {
    run: &'a mut TrialFn<'a>,
    done: HashMap<u64, Trial>,
    count: usize,
}

impl<'a> Trials<'a> {
    fn new(run: &'a mut TrialFn<'a>) -> Trials<'a> {
        Trials {
            run,
            done: HashMap::new(),
            count: 0,
        }
    }

    fn at(&mut self, frac: f64) -> Result<Trial, GenError> {
        if let Some(t) = self.done.get(&frac.to_bits()) {
            return Ok(t.clone());
        }
        let t = (self.run)(frac)?;
        self.count += 1;
        self.done.insert(frac.to_bits(), t.clone());
        Ok(t)
    }
}

/// RFC 2544 §26.1's search: the highest load in (`lo`, 1] whose loss is at
/// most `max_loss_pct`, to within `resolution` (a fraction of the range).
/// The top is tried first; then the range is halved until it is narrower
/// than the resolution. `lo` is a load known to pass (0 = none). Returns the
/// passing trial found (None: every load tried lost too much).
fn search(
    trials: &mut Trials,
    lo: Option<Trial>,
    max_loss_pct: f64,
    resolution: f64,
) -> Result<Option<Trial>, GenError> {
    let pass = |t: &Trial| {
        if max_loss_pct == 0.0 {
            t.lost == 0
        } else {
            t.loss_pct <= max_loss_pct
        }
    };
    let top = trials.at(1.0)?;
    if pass(&top) {
        return Ok(Some(top));
    }
    let mut best = lo;
    let mut lo_f = best.as_ref().map_or(0.0, |t| t.load_pct / 100.0);
    let mut hi_f = 1.0;
    while hi_f - lo_f > resolution {
        let mid = (lo_f + hi_f) / 2.0;
        let t = trials.at(mid)?;
        if pass(&t) {
            lo_f = mid;
            best = Some(t);
        } else {
            hi_f = mid;
        }
    }
    Ok(best)
}

/// A rate the search found, in every unit.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The loss allowed (%).
    pub loss_threshold_pct: f64,
    /// False when every load tried lost more (the rate is then 0).
    pub found: bool,
    pub load_pct: f64,
    pub mpps: f64,
    pub l1_gbps: f64,
    pub l2_gbps: f64,
    /// Of the ports' line rate (None when a port has none).
    pub line_pct: Option<f64>,
    /// The loss measured at that rate (%).
    pub loss_pct: f64,
    /// Latency streams at that rate.
    pub latency: Vec<StreamLatency>,
}

impl Found {
    fn of(t: Option<&Trial>, sp: &SizePlan, threshold: f64) -> Found {
        let (frac, loss, latency) = t.map_or((0.0, 0.0, Vec::new()), |t| {
            (t.load_pct / 100.0, t.loss_pct, t.latency.clone())
        });
        let pps: Vec<f64> = sp
            .max_pps
            .iter()
            .map(|m| {
                if t.is_some() {
                    ((m * frac * 1e3).floor() / 1e3).max(1e-3)
                } else {
                    0.0
                }
            })
            .collect();
        let l1: f64 = pps
            .iter()
            .zip(&sp.mean)
            .map(|(p, m)| p * (m + L1_OVERHEAD) * 8.0)
            .sum();
        let l2: f64 = pps.iter().zip(&sp.mean).map(|(p, m)| p * m * 8.0).sum();
        Found {
            loss_threshold_pct: threshold,
            found: t.is_some(),
            load_pct: frac * 100.0,
            mpps: pps.iter().sum::<f64>() / 1e6,
            l1_gbps: l1 / 1e9,
            l2_gbps: l2 / 1e9,
            line_pct: (sp.line_bps > 0.0).then(|| l1 * 100.0 / sp.line_bps),
            loss_pct: loss,
            latency,
        }
    }
}

/// One frame size's throughput.
#[derive(Debug, Clone, Serialize)]
pub struct SizeThroughput {
    pub size: String,
    pub mean_frame: f64,
    /// Within `--loss` (NDR when 0).
    pub throughput: Found,
    pub pdr: Option<Found>,
    pub trials: usize,
    pub trial_log: Vec<Trial>,
}

/// What `wirespeed bench throughput --json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub rfc2544: &'static str,
    pub config: String,
    pub ports: Vec<PortRange>,
    pub loss_basis: LossBasis,
    pub loss_pct: f64,
    pub pdr_pct: Option<f64>,
    pub resolution_pct: f64,
    pub trial_s: f64,
    pub settle_ms: u64,
    pub sizes: Vec<SizeThroughput>,
}

fn progress(quiet: bool, label: &str, t: &Trial) {
    if !quiet {
        eprintln!(
            "  {label}: {:>7.3}% = {}pps, {} frames: lost {} ({:.4}%)",
            t.load_pct,
            crate::config::si(t.offered_pps),
            t.frames,
            t.lost,
            t.loss_pct
        );
    }
}

fn check_json(path: &Option<PathBuf>) -> Result<(), GenError> {
    if let Some(p) = path {
        wirespeed::eal::file::check_writable_nofollow(p).map_err(|e| {
            ConfigError::new("--json", format!("cannot write {}: {e}", p.display()))
        })?;
    }
    Ok(())
}

fn write_json<T: Serialize>(path: &Option<PathBuf>, v: &T) -> Result<(), GenError> {
    let Some(p) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| GenError::Run(format!("cannot encode the results: {e}")))?;
    wirespeed::eal::file::write_nofollow(p, text.as_bytes())
        .map_err(|e| GenError::Run(format!("--json {}: {e}", p.display())))
}

fn latency_text(l: &[StreamLatency]) -> String {
    if l.is_empty() {
        return "-".into();
    }
    l.iter()
        .map(|x| {
            format!(
                "{:.2}/{:.2}/{:.2}/{:.2}",
                x.min_ns as f64 / 1e3,
                x.avg_ns / 1e3,
                x.p99_ns as f64 / 1e3,
                x.max_ns as f64 / 1e3
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn pct_text(p: Option<f64>) -> String {
    p.map_or("-".into(), |p| format!("{p:.2}"))
}

/// `wirespeed bench throughput`.
pub fn throughput(a: &ThroughputArgs, registry: &Registry) -> Result<ThroughputReport, GenError> {
    let sizes = parse_sizes(&a.common.sizes)?;
    check_pct("--loss", a.loss, true)?;
    if let Some(p) = a.pdr {
        check_pct("--pdr", p, false)?;
        if p <= a.loss {
            return Err(ConfigError::new(
                "--pdr",
                format!("{p}% is not above --loss {}%: the partial drop rate allows more loss than the throughput", a.loss),
            )
            .into());
        }
    }
    check_trial_s(a.trial_s)?;
    if !(a.resolution.is_finite() && a.resolution > 0.0 && a.resolution < 100.0) {
        return Err(ConfigError::new(
            "--resolution",
            format!("{} is not a percentage in (0, 100)", a.resolution),
        )
        .into());
    }
    check_json(&a.common.json)?;
    let mut b = Bench::new(&a.common, registry)?;
    let mut plans = Vec::new();
    for &z in &sizes {
        plans.push(b.size_plan(z)?);
    }
    b.header("throughput (RFC 2544 §26.1)", &a.common.config);
    println!(
        "  trial {} s, settle {} ms, resolution {}% of the range, throughput at loss ≤ {}%{}",
        a.trial_s,
        a.common.settle_ms,
        a.resolution,
        a.loss,
        a.pdr
            .map_or(String::new(), |p| format!(", PDR at loss ≤ {p}%"))
    );
    let mut report = ThroughputReport {
        rfc2544: "26.1 throughput",
        config: a.common.config.display().to_string(),
        ports: b.ports.clone(),
        loss_basis: b.basis,
        loss_pct: a.loss,
        pdr_pct: a.pdr,
        resolution_pct: a.resolution,
        trial_s: a.trial_s,
        settle_ms: a.common.settle_ms,
        sizes: Vec::new(),
    };
    for sp in plans {
        match size_throughput(&b, &sp, a, registry) {
            Ok(r) => report.sizes.push(r),
            Err(e) => {
                // A long bench stopped part-way still shows what it found.
                if !report.sizes.is_empty() {
                    println!("  stopped at {} B; the sizes done:", sp.size.label());
                    print_throughput(&report);
                }
                return Err(e);
            }
        }
    }
    Ok(report)
}

/// §26.1 at one frame size: the throughput search, then the PDR's from it.
fn size_throughput(
    b: &Bench,
    sp: &SizePlan,
    a: &ThroughputArgs,
    registry: &Registry,
) -> Result<SizeThroughput, GenError> {
    let label = sp.size.label();
    let res = a.resolution / 100.0;
    let mut run = |frac: f64| {
        let t = b.trial(
            sp,
            Load {
                frac,
                secs: a.trial_s,
                burst: None,
            },
            registry,
        )?;
        progress(b.quiet, &label, &t);
        Ok(t)
    };
    let mut trials = Trials::new(&mut run);
    let thr = search(&mut trials, None, a.loss, res)?;
    let pdr = match a.pdr {
        Some(p) => Some(search(&mut trials, thr.clone(), p, res)?),
        None => None,
    };
    let mut log: Vec<Trial> = trials.done.values().cloned().collect();
    log.sort_by(|x, y| x.load_pct.total_cmp(&y.load_pct));
    Ok(SizeThroughput {
        size: label.clone(),
        mean_frame: sp.mean.first().copied().unwrap_or(0.0),
        throughput: Found::of(thr.as_ref(), sp, a.loss),
        pdr: pdr.map(|p| Found::of(p.as_ref(), sp, a.pdr.unwrap_or(0.0))),
        trials: trials.count,
        trial_log: log,
    })
}

/// The throughput table.
pub fn print_throughput(r: &ThroughputReport) {
    let name = if r.loss_pct == 0.0 {
        "NDR".to_string()
    } else {
        format!("≤{}%", r.loss_pct)
    };
    let mut head = format!(
        "  {:>5}  {:>10}  {:>9}  {:>9}  {:>7}",
        "frame",
        format!("{name} Mpps"),
        "L1 Gbit/s",
        "L2 Gbit/s",
        "% line"
    );
    if let Some(p) = r.pdr_pct {
        head.push_str(&format!(
            "  {:>12}  {:>7}",
            format!("PDR≤{p}% Mpps"),
            "% line"
        ));
    }
    head.push_str(&format!("  {:>6}  latency µs min/avg/p99/max", "trials"));
    println!("{head}");
    for s in &r.sizes {
        let t = &s.throughput;
        let mut line = format!(
            "  {:>5}  {:>10.6}  {:>9.4}  {:>9.4}  {:>7}",
            s.size,
            t.mpps,
            t.l1_gbps,
            t.l2_gbps,
            pct_text(t.line_pct)
        );
        if let Some(p) = &s.pdr {
            line.push_str(&format!("  {:>12.6}  {:>7}", p.mpps, pct_text(p.line_pct)));
        }
        line.push_str(&format!("  {:>6}  {}", s.trials, latency_text(&t.latency)));
        if !t.found {
            line.push_str("  (loss at every load tried)");
        }
        println!("{line}");
    }
}

/// One step of the frame loss rate.
#[derive(Debug, Clone, Serialize)]
pub struct LossStep {
    pub load_pct: f64,
    pub line_pct: Option<f64>,
    pub offered_pps: f64,
    pub frames: u64,
    pub lost: u64,
    pub loss_pct: f64,
}

/// One frame size's frame loss rate.
#[derive(Debug, Clone, Serialize)]
pub struct SizeLoss {
    pub size: String,
    pub steps: Vec<LossStep>,
    /// Ended by two successive trials without loss (else the loads ran out).
    pub two_clean: bool,
}

/// What `wirespeed bench frame-loss --json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct FrameLossReport {
    pub rfc2544: &'static str,
    pub config: String,
    pub ports: Vec<PortRange>,
    pub loss_basis: LossBasis,
    pub step_pct: f64,
    pub trial_s: f64,
    pub settle_ms: u64,
    pub sizes: Vec<SizeLoss>,
}

/// `wirespeed bench frame-loss`.
pub fn frame_loss(a: &FrameLossArgs, registry: &Registry) -> Result<FrameLossReport, GenError> {
    let sizes = parse_sizes(&a.common.sizes)?;
    check_trial_s(a.trial_s)?;
    check_pct("--step", a.step, false)?;
    check_json(&a.common.json)?;
    let mut b = Bench::new(&a.common, registry)?;
    let mut plans = Vec::new();
    for &z in &sizes {
        plans.push(b.size_plan(z)?);
    }
    b.header("frame-loss (RFC 2544 §26.3)", &a.common.config);
    println!(
        "  trial {} s, settle {} ms, steps of {}% of the range",
        a.trial_s, a.common.settle_ms, a.step
    );
    let mut out = Vec::new();
    for sp in plans {
        let label = sp.size.label();
        let mut steps: Vec<LossStep> = Vec::new();
        let mut clean_run = 0;
        let mut k = 0u32;
        loop {
            let pct = 100.0 - a.step * k as f64;
            if pct <= 1e-9 {
                break;
            }
            k += 1;
            let t = b.trial(
                &sp,
                Load {
                    frac: pct / 100.0,
                    secs: a.trial_s,
                    burst: None,
                },
                registry,
            )?;
            progress(b.quiet, &label, &t);
            let found = Found::of(Some(&t), &sp, 0.0);
            steps.push(LossStep {
                load_pct: pct,
                line_pct: found.line_pct,
                offered_pps: t.offered_pps,
                frames: t.frames,
                lost: t.lost,
                loss_pct: t.loss_pct,
            });
            clean_run = if t.lost == 0 { clean_run + 1 } else { 0 };
            if clean_run == 2 {
                break;
            }
        }
        out.push(SizeLoss {
            size: label,
            steps,
            two_clean: clean_run == 2,
        });
    }
    Ok(FrameLossReport {
        rfc2544: "26.3 frame loss rate",
        config: a.common.config.display().to_string(),
        ports: b.ports.clone(),
        loss_basis: b.basis,
        step_pct: a.step,
        trial_s: a.trial_s,
        settle_ms: a.common.settle_ms,
        sizes: out,
    })
}

pub fn print_frame_loss(r: &FrameLossReport) {
    println!(
        "  {:>5}  {:>7}  {:>7}  {:>12}  {:>10}  {:>10}  {:>8}",
        "frame", "load %", "% line", "offered pps", "frames", "lost", "loss %"
    );
    for s in &r.sizes {
        for st in &s.steps {
            println!(
                "  {:>5}  {:>7.2}  {:>7}  {:>12.1}  {:>10}  {:>10}  {:>8.4}",
                s.size,
                st.load_pct,
                pct_text(st.line_pct),
                st.offered_pps,
                st.frames,
                st.lost,
                st.loss_pct
            );
        }
        if !s.two_clean {
            println!("  {:>5}  (no two successive trials without loss)", s.size);
        }
    }
}

/// One frame size's back-to-back value.
#[derive(Debug, Clone, Serialize)]
pub struct SizeBackToBack {
    pub size: String,
    /// The rate the bursts go at (the range's top).
    pub burst_pps: f64,
    pub max_burst: u64,
    /// Per search: the longest burst without loss (0: even one frame was lost).
    pub bursts: Vec<u64>,
    pub mean: f64,
    pub min: u64,
    pub max: u64,
    /// The mean burst in seconds at the burst rate.
    pub mean_s: f64,
    pub trials: usize,
}

/// What `wirespeed bench back-to-back --json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct BackToBackReport {
    pub rfc2544: &'static str,
    pub config: String,
    pub ports: Vec<PortRange>,
    pub loss_basis: LossBasis,
    pub repeat: u32,
    pub settle_ms: u64,
    pub sizes: Vec<SizeBackToBack>,
}

/// The longest burst in 1..=`max` that loses nothing: `max` is tried
/// first, then the range is halved down to one frame. 0 = a burst of one
/// frame lost it.
fn burst_search(
    max: u64,
    trial: &mut dyn FnMut(u64) -> Result<Trial, GenError>,
    count: &mut usize,
) -> Result<u64, GenError> {
    let mut run = |b: u64| {
        *count += 1;
        trial(b).map(|t| t.lost == 0)
    };
    if run(max)? {
        return Ok(max);
    }
    let (mut lo, mut hi) = (0u64, max);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if run(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// `wirespeed bench back-to-back`.
pub fn back_to_back(a: &BackToBackArgs, registry: &Registry) -> Result<BackToBackReport, GenError> {
    let sizes = parse_sizes(&a.common.sizes)?;
    check_trial_s(a.trial_s)?;
    if a.repeat == 0 {
        return Err(ConfigError::new(
            "--repeat",
            "0 searches is no result; give at least 1 (RFC 2544: 50)",
        )
        .into());
    }
    if a.max_burst == Some(0) {
        return Err(ConfigError::new(
            "--max-burst",
            "a burst of 0 frames is no trial; give at least 1",
        )
        .into());
    }
    check_json(&a.common.json)?;
    let mut b = Bench::new(&a.common, registry)?;
    let mut plans = Vec::new();
    for &z in &sizes {
        plans.push(b.size_plan(z)?);
    }
    b.header("back-to-back (RFC 2544 §26.4)", &a.common.config);
    let mut out = Vec::new();
    for sp in plans {
        let label = sp.size.label();
        let pps: f64 = sp.max_pps.iter().map(|p| (p * 1e3).floor() / 1e3).sum();
        let max = a
            .max_burst
            .unwrap_or_else(|| ((pps * a.trial_s).round() as u64).max(1));
        println!(
            "  {label}: bursts at {}pps (the range's top), up to {max} frames, {} searches",
            crate::config::si(pps),
            a.repeat
        );
        let mut bursts = Vec::new();
        let mut count = 0usize;
        for _ in 0..a.repeat {
            let mut trial = |n: u64| {
                let t = b.trial(
                    &sp,
                    Load {
                        frac: 1.0,
                        secs: 0.0,
                        burst: Some(n),
                    },
                    registry,
                )?;
                progress(b.quiet, &label, &t);
                Ok(t)
            };
            bursts.push(burst_search(max, &mut trial, &mut count)?);
        }
        let mean = bursts.iter().sum::<u64>() as f64 / bursts.len() as f64;
        out.push(SizeBackToBack {
            size: label,
            burst_pps: pps,
            max_burst: max,
            mean,
            min: bursts.iter().copied().min().unwrap_or(0),
            max: bursts.iter().copied().max().unwrap_or(0),
            mean_s: if pps > 0.0 { mean / pps } else { 0.0 },
            bursts,
            trials: count,
        });
    }
    Ok(BackToBackReport {
        rfc2544: "26.4 back-to-back frames",
        config: a.common.config.display().to_string(),
        ports: b.ports.clone(),
        loss_basis: b.basis,
        repeat: a.repeat,
        settle_ms: a.common.settle_ms,
        sizes: out,
    })
}

pub fn print_back_to_back(r: &BackToBackReport) {
    println!(
        "  {:>5}  {:>12}  {:>10}  {:>10}  {:>8}  {:>8}  {:>10}  {:>6}",
        "frame", "burst pps", "max tried", "mean", "min", "max", "mean s", "trials"
    );
    for s in &r.sizes {
        println!(
            "  {:>5}  {:>12.1}  {:>10}  {:>10.1}  {:>8}  {:>8}  {:>10.6}  {:>6}{}",
            s.size,
            s.burst_pps,
            s.max_burst,
            s.mean,
            s.min,
            s.max,
            s.mean_s,
            s.trials,
            if s.min == s.max_burst {
                "  (every burst tried passed: no limit below it)"
            } else {
                ""
            }
        );
    }
}

/// Runs a `wirespeed bench` subcommand: the table on stdout, `--json`.
pub fn run(cmd: &BenchCmd, registry: &Registry) -> Result<(), GenError> {
    match cmd {
        BenchCmd::Throughput(a) => {
            let r = throughput(a, registry)?;
            print_throughput(&r);
            write_json(&a.common.json, &r)
        }
        BenchCmd::FrameLoss(a) => {
            let r = frame_loss(a, registry)?;
            print_frame_loss(&r);
            write_json(&a.common.json, &r)
        }
        BenchCmd::BackToBack(a) => {
            let r = back_to_back(a, registry)?;
            print_back_to_back(&r);
            write_json(&a.common.json, &r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial_at(frac: f64, loss_pct: f64) -> Trial {
        let frames = 100_000;
        let lost = (frames as f64 * loss_pct / 100.0).round() as u64;
        Trial {
            load_pct: frac * 100.0,
            offered_pps: frac * 1e6,
            frames,
            accepted: frames,
            delivered: frames - lost,
            lost,
            loss_pct: lost as f64 * 100.0 / frames as f64,
            duration_s: 0.1,
            latency: Vec::new(),
        }
    }

    /// A device that loses the excess above 37.3% of the range.
    fn knee(frac: f64) -> Result<Trial, GenError> {
        let knee = 0.373;
        let loss = if frac <= knee {
            0.0
        } else {
            (frac - knee) / frac * 100.0
        };
        Ok(trial_at(frac, loss))
    }

    #[test]
    fn search_finds_the_knee_within_one_step() {
        for res in [0.01, 0.005, 0.1] {
            let mut f = knee;
            let mut t = Trials::new(&mut f);
            let found = search(&mut t, None, 0.0, res).unwrap().unwrap();
            let got = found.load_pct / 100.0;
            assert!(got <= 0.373 && got > 0.373 - res, "res {res}: {got}");
            // The top first, then halving: 1 + ceil(log2(1 / res)) trials.
            let want = 1 + (1.0 / res).log2().ceil() as usize;
            assert_eq!(t.count, want, "res {res}");
        }
    }

    #[test]
    fn pdr_search_starts_from_the_ndr_and_shares_trials() {
        let mut f = knee;
        let mut t = Trials::new(&mut f);
        let ndr = search(&mut t, None, 0.0, 0.01).unwrap();
        let before = t.count;
        // 10% loss: (f − 0.373) / f ≤ 0.1 → f ≤ 0.41444.
        let pdr = search(&mut t, ndr.clone(), 10.0, 0.01).unwrap().unwrap();
        let got = pdr.load_pct / 100.0;
        assert!(got <= 0.41445 && got > 0.41444 - 0.01, "{got}");
        assert!(got >= ndr.unwrap().load_pct / 100.0);
        // The top is not run again.
        assert!(t.count - before < 7, "{} more trials", t.count - before);
    }

    #[test]
    fn search_reports_none_when_every_load_loses() {
        let mut f = |frac: f64| Ok(trial_at(frac, 5.0));
        let mut t = Trials::new(&mut f);
        assert!(search(&mut t, None, 0.0, 0.01).unwrap().is_none());
        let mut f = |frac: f64| Ok(trial_at(frac, 5.0));
        let mut t = Trials::new(&mut f);
        let p = search(&mut t, None, 6.0, 0.01).unwrap().unwrap();
        assert_eq!(p.load_pct, 100.0);
        assert_eq!(t.count, 1, "the top passes: one trial");
    }

    #[test]
    fn burst_search_finds_the_buffer() {
        let mut count = 0;
        let mut f = |n: u64| Ok(trial_at(1.0, if n > 300 { 1.0 } else { 0.0 }));
        assert_eq!(burst_search(10_000, &mut f, &mut count).unwrap(), 300);
        assert!(count <= 15, "{count}");
        let mut count = 0;
        let mut f = |_n: u64| Ok(trial_at(1.0, 0.0));
        assert_eq!(burst_search(10_000, &mut f, &mut count).unwrap(), 10_000);
        assert_eq!(count, 1);
    }

    #[test]
    fn sizes_parse_and_bad_ones_name_the_flag() {
        assert_eq!(
            parse_sizes("64, 1518,imix").unwrap(),
            vec![
                BenchSize::Fixed(64),
                BenchSize::Fixed(1518),
                BenchSize::Imix
            ]
        );
        assert_eq!(parse_sizes(RFC_SIZES).unwrap().len(), 7);
        for bad in ["", "63", "64,abc", "64,64", "9000"] {
            let e = parse_sizes(bad).unwrap_err();
            assert!(e.to_string().contains("--sizes"), "{bad}: {e}");
        }
    }
}
