//! Running a plan: the runtime over the plan's ports and lcores, a
//! [`GenApp`] on each lcore, and the ticker on the main thread that fixes
//! the common start, samples the counters and prints the live line.

use super::control::{ControlEvent, ControlServer};
use super::gate::StreamGate;
use super::lcore::{GenApp, LatencyInterval, LcoreResult, RunParams};
use super::live::{LiveRun, StackLive};
use super::metrics::{self, LiveSnapshot, MetricsServer, StreamRow};
use super::plan::RunPlan;
use super::report::Monitor;
use super::screen::{StreamRows, Tui};
use super::{GenArgs, GenError};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use wirespeed::eal::Tsc;
use wirespeed::runtime::steer::SteerRings;
use wirespeed::runtime::{PortSetup, RunReport, Runtime, RuntimeConfig};
use wirespeed::stack::shared::ControlPlane;

/// The common start is set this far ahead of the moment every lcore is ready.
const START_AHEAD_NS: u64 = 2_000_000;

/// What a run produced, for the report.
pub struct Outcome {
    pub report: RunReport<LcoreResult>,
    pub mon: Monitor,
    pub port_names: Vec<String>,
    /// Interval latency histograms the lcores sent, in arrival order.
    pub lat_intervals: Vec<LatencyInterval>,
    /// The common start (TSC; 0 = the run never started).
    pub start_tsc: u64,
    /// Seconds from the common start to the last lcore's end (drain
    /// included): what the summary line's rates are over.
    pub elapsed: f64,
    pub tsc: Tsc,
    /// What the control socket changed, in order.
    pub control: Vec<ControlEvent>,
}

/// The run-wide state every lcore reads, built from the plan.
fn params(
    plan: &mut RunPlan,
    lat_tx: mpsc::Sender<LatencyInterval>,
    settle: Option<u64>,
) -> RunParams {
    let tsc = Tsc::global();
    let run = &plan.cfg.run;
    RunParams {
        streams: plan.streams.clone(),
        burst: run.burst as usize,
        pool_size: run.mempool_size,
        run_cycles: (run.duration > 0.0).then(|| tsc.ns_to_cycles((run.duration * 1e9) as u64)),
        ready: AtomicUsize::new(0),
        start: AtomicU64::new(0),
        sending: AtomicUsize::new(plan.senders.len()),
        receiving: AtomicUsize::new(plan.cores.len()),
        replay: plan.replay.clone(),
        hlog_interval_cycles: tsc.hz(),
        plans: plan.senders.clone(),
        arp: plan.arp.clone(),
        lat_tx: Mutex::new(lat_tx),
        stacks: plan.stacks.clone(),
        cps: plan
            .stacks
            .iter()
            .map(|s| s.as_ref().map(|_| Arc::new(ControlPlane::new())))
            .collect(),
        // A ring per lcore pair and port: the segments of sockets whose
        // traffic lands on another lcore's queue (TCP ACKs, UDP replies).
        steer_rings: plan
            .stacks
            .iter()
            .map(|s| {
                (s.is_some() && plan.cores.len() > 1)
                    .then(|| SteerRings::new(plan.cores.len(), 1024))
            })
            .collect(),
        stream_left: (0..plan.streams.len())
            .map(|i| {
                AtomicUsize::new(
                    plan.senders
                        .iter()
                        .flatten()
                        .filter(|p| p.stream == i)
                        .count(),
                )
            })
            .collect(),
        return_grace_cycles: tsc.ns_to_cycles(settle.map_or(50_000_000, |ms| ms * 1_000_000)),
        gates: plan.streams.iter().map(|_| StreamGate::default()).collect(),
        stack_live: StackLive::new(plan.cores.len()),
    }
}

/// `--metrics ADDR`: the scrape endpoint over the live snapshot.
fn start_metrics(
    args: &GenArgs,
    live: &Arc<Mutex<LiveSnapshot>>,
) -> Result<Option<MetricsServer>, GenError> {
    let Some(a) = &args.metrics else {
        return Ok(None);
    };
    let addr = metrics::parse_addr(a)
        .map_err(|e| GenError::Config(crate::config::ConfigError::new("--metrics", e)))?;
    let m = MetricsServer::start(addr, live.clone()).map_err(GenError::Run)?;
    eprintln!("wirespeed gen: metrics at http://{}/metrics", m.addr);
    Ok(Some(m))
}

/// `--control PATH` (or `[run] control`): the control socket.
fn start_control(
    args: &GenArgs,
    plan: &RunPlan,
    live: &LiveRun,
) -> Result<Option<ControlServer>, GenError> {
    let (key, path) = match (&args.control, &plan.cfg.run.control) {
        (Some(p), _) => ("--control", p),
        (None, Some(p)) => ("run.control", p),
        (None, None) => return Ok(None),
    };
    let c = ControlServer::start(path, live.clone())
        .map_err(|e| GenError::Config(crate::config::ConfigError::new(key, e)))?;
    eprintln!("wirespeed gen: control socket at {}", path.display());
    Ok(Some(c))
}

/// `--tui`, or why the plain lines are printed instead.
fn start_tui(args: &GenArgs) -> Option<Tui> {
    if !args.tui {
        return None;
    }
    match Tui::enter() {
        Ok(t) => Some(t),
        Err(why) => {
            eprintln!("wirespeed gen: {why}");
            None
        }
    }
}

/// The snapshot a `--metrics` scrape reports (and the latency the control
/// socket and the stream rows show), refreshed once a second.
fn refresh(
    live: &Mutex<LiveSnapshot>,
    names: &[(String, String, usize, bool)],
    queues: &[wirespeed::netdev::TxqSnapshot],
    counters: &[Vec<Arc<super::lcore::SenderCounters>>],
    new_lat: &[LatencyInterval],
    started: Instant,
) {
    let mut l = live.lock().unwrap_or_else(|e| e.into_inner());
    l.streams = names
        .iter()
        .zip(counters)
        .map(|((name, mode, port, _), cs)| StreamRow {
            name: name.clone(),
            mode: mode.clone(),
            port: *port,
            packets: cs.iter().map(|c| c.packets.get()).sum(),
            bytes: cs.iter().map(|c| c.bytes.get()).sum(),
            dropped: cs.iter().map(|c| c.dropped.get()).sum(),
        })
        .collect();
    l.queues = queues.to_vec();
    for li in new_lat {
        if let Some((name, ..)) = names.get(li.stream) {
            l.add_latency(name, &li.hist);
        }
    }
    l.elapsed_s = started.elapsed().as_secs_f64();
}

/// The runtime over the plan's ports (their queueing) and lcores.
fn runtime(plan: &mut RunPlan, settle: Option<u64>) -> Result<Runtime, GenError> {
    let mut setups = Vec::new();
    for (dev, pp) in std::mem::take(&mut plan.devices)
        .into_iter()
        .zip(&plan.ports)
    {
        let mut ps = PortSetup::new(dev, pp.conf.clone());
        ps.txq = pp.txq.clone();
        ps.rx_lcores = pp.rx_lcores.clone();
        ps.xps = pp.xps.clone();
        setups.push(ps);
    }
    let mut rc = RuntimeConfig::new(plan.cores.clone());
    rc.pool.name = "gen-rx".into();
    rc.pool.size = 4096;
    rc.rx_burst = plan.cfg.run.burst as usize;
    rc.drain_timeout = settle.map_or(Duration::from_secs(2), Duration::from_millis);
    rc.handle_signals = true;
    rc.publish_every = 16;
    Runtime::new(rc, setups).map_err(|e| GenError::Run(e.to_string()))
}

/// Runs the plan to its end (counts, durations, a stop request or a failure).
pub fn launch(plan: &mut RunPlan, args: &GenArgs) -> Result<Outcome, GenError> {
    let tsc = Tsc::global();
    let (lat_tx, lat_rx) = mpsc::channel::<LatencyInterval>();
    // The ticker must be Sync; the receiver is read from it only.
    let lat_rx = Mutex::new(lat_rx);
    let params = Arc::new(params(plan, lat_tx, args.settle_ms));
    let rt = runtime(plan, args.settle_ms)?;
    let port_names: Vec<String> = rt.ports().iter().map(|p| p.name().to_string()).collect();
    let nl = plan.cores.len();
    let started = Instant::now();
    let mut mon = Monitor::new(&plan.streams, port_names.len(), tsc);
    let mut lat_intervals = Vec::new();
    let p2 = params.clone();
    let counters = plan.counters.clone();
    let mut next_line = Instant::now() + Duration::from_secs(1);
    let live = Arc::new(Mutex::new(LiveSnapshot {
        port_names: port_names.clone(),
        ..Default::default()
    }));
    let _metrics = start_metrics(args, &live)?;
    let live_run = LiveRun {
        params: params.clone(),
        counters: counters.clone(),
        monitor: rt.monitor(),
        port_names: port_names.clone(),
        snap: live.clone(),
        tsc,
        any_stack: plan.stacks.iter().any(|s| s.is_some()),
        limits: plan
            .streams
            .iter()
            .map(|s| {
                let pp = &plan.ports[s.port];
                (super::plan::mean_wire(s, pp.mtu), pp.info.line_rate_bps)
            })
            .collect(),
    };
    let control = start_control(args, plan, &live_run)?;
    let mut tui = start_tui(args);
    let mut rows = StreamRows::new(plan.streams.len());
    let names: Vec<(String, String, usize, bool)> = plan
        .streams
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                format!("{:?}", s.mode).to_lowercase(),
                s.port,
                s.latency,
            )
        })
        .collect();
    let mut lat_seen = 0usize;
    let report = rt
        .run_with_ticker(
            move |ctx| GenApp::new(ctx, p2.clone()),
            Duration::from_millis(args.interval_ms),
            |m| {
                // Every lcore has built its pools: fix the common start ahead.
                if params.start.load(Ordering::Acquire) == 0
                    && params.ready.load(Ordering::Acquire) >= nl
                {
                    let s = tsc.now() + tsc.ns_to_cycles(START_AHEAD_NS);
                    mon.set_start(s);
                    params.start.store(s, Ordering::Release);
                }
                mon.sample(&m.queues(), &counters);
                if let Ok(rx) = lat_rx.lock() {
                    lat_intervals.extend(rx.try_iter());
                }
                if Instant::now() >= next_line {
                    next_line += Duration::from_secs(1);
                    refresh(
                        &live,
                        &names,
                        &m.queues(),
                        &counters,
                        &lat_intervals[lat_seen..],
                        started,
                    );
                    lat_seen = lat_intervals.len();
                    // Once every sender is done the run is only draining:
                    // no more lines of zeros.
                    let sending = params.sending.load(Ordering::Acquire) > 0;
                    if !args.quiet && sending {
                        let line = mon.live_line(&m.queues(), started.elapsed().as_secs_f64());
                        let r = rows.rows(&live_run);
                        match tui.as_mut() {
                            Some(t) => t.draw("wirespeed gen", &line, &r),
                            None => eprintln!("{line}\n{}", r.join("\n")),
                        }
                    }
                }
            },
        )
        .map_err(|e| GenError::Run(e.to_string()))?;
    drop(tui);
    let control = control.map(|c| c.events()).unwrap_or_default();
    if let Ok(rx) = lat_rx.lock() {
        lat_intervals.extend(rx.try_iter());
    }
    let start_tsc = params.start.load(Ordering::Acquire);
    let end = report
        .lcores
        .iter()
        .map(|l| l.app.end_tsc)
        .max()
        .unwrap_or_else(|| tsc.now());
    let elapsed = if start_tsc != 0 && end > start_tsc {
        tsc.cycles_to_ns(end - start_tsc) as f64 / 1e9
    } else {
        started.elapsed().as_secs_f64()
    };
    Ok(Outcome {
        report,
        mon,
        port_names,
        lat_intervals,
        start_tsc,
        elapsed,
        tsc,
        control,
    })
}
