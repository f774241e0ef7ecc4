//! Orchestration of one `wirespeed gen` run: ports, queues (the static XPS
//! map), sender plans, the lcores, and the monitor that samples counters.

use super::lcore::{
    self, LatencyInterval, LcoreResult, LcoreWork, RunParams, SenderCounters, SenderPlan,
};
use super::measure::{HlogWriter, Series};
use super::report::{self, Monitor, Summary};
use super::tx::{RawTx, TxPath};
use super::{port_error, validated, GenArgs, GenError};
use crate::config::{ConfigError, Rate, StreamMode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use wirespeed::eal::{self, CoreList, Tsc};
use wirespeed::ethdev::{Port, PortConfig, Registry};
use wirespeed::mbuf::ol;

pub(super) fn run(args: &GenArgs, registry: &Registry) -> Result<Summary, GenError> {
    let (cfg, mut streams) = validated(args)?;
    let cores = CoreList::parse(&cfg.run.lcores)
        .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
    cores
        .validate()
        .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
    if let Some(p) = &args.plot {
        if p.extension().and_then(|e| e.to_str()) != Some("svg") {
            return Err(ConfigError::new(
                "--plot",
                format!("{} : the plot is written as SVG; give a FILE.svg (rsvg-convert turns it into PNG)", p.display()),
            )
            .into());
        }
    }
    if args.interval_ms == 0 || args.interval_ms > 10_000 {
        return Err(ConfigError::new("--interval-ms", "must be 1..=10000").into());
    }
    for s in &streams {
        if s.mode == StreamMode::Socket {
            return Err(ConfigError::new(
                format!("stream[{}].mode", s.index),
                "socket mode is not part of this build; use mode = \"raw\" or \"pcap\"",
            )
            .into());
        }
    }
    eal::dma::set_page_mode(cfg.run.pages);
    eal::signal::install();
    let nl = cores.len();
    let core_ids = cores.cores().to_vec();

    // pcap sources, loaded (and checked) before anything starts.
    let mut replay = Vec::new();
    for s in &streams {
        replay.push(match &s.pcap {
            Some(p) => {
                let recs = wirespeed::ethdev::pcap::read_file(p).map_err(|e| {
                    ConfigError::new(format!("stream[{}].pcap", s.index), e.to_string())
                })?;
                if recs.is_empty() {
                    return Err(ConfigError::new(
                        format!("stream[{}].pcap", s.index),
                        "the file holds no frames",
                    )
                    .into());
                }
                if let Some((i, r)) = recs
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.data.len() > 2048 * 8)
                {
                    return Err(ConfigError::new(
                        format!("stream[{}].pcap", s.index),
                        format!(
                            "record {i} is {} bytes, more than the generator sends",
                            r.data.len()
                        ),
                    )
                    .into());
                }
                Some(Arc::new(recs))
            }
            None => None,
        });
    }

    // Which lcores send each stream.
    let stream_cores: Vec<Vec<usize>> = streams
        .iter()
        .map(|s| {
            let mut v = s.lcores.clone().unwrap_or_else(|| core_ids.clone());
            if s.mode == StreamMode::Pcap {
                v.truncate(1); // a replay keeps the file's order: one sender
            }
            v
        })
        .collect();

    // Ports: open, check requests against what each can do, configure.
    let mut ports: Vec<Box<dyn Port>> = Vec::new();
    let mut offloads = Vec::new();
    let rx_wanted: Vec<bool> = (0..cfg.ports.len())
        .map(|pi| {
            streams.iter().any(|s| s.latency && s.rx_port == pi)
                || (args.arp && streams.iter().any(|s| s.port == pi))
        })
        .collect();
    for (i, p) in cfg.ports.iter().enumerate() {
        let mut port = registry.open(&p.spec).map_err(|e| port_error(i, e))?;
        let info = port.info();
        let csum = ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM;
        let off = if p.offload {
            if info.tx_offload_capa & csum != csum {
                return Err(ConfigError::new(
                    format!("port[{i}].offload"),
                    format!(
                        "{} offers {} — no IPv4+UDP checksum offload; drop --offload / offload = true and checksums are computed in software",
                        p.spec,
                        wirespeed::ethdev::offload_names(info.tx_offload_capa)
                    ),
                )
                .into());
            }
            csum
        } else {
            0
        };
        let mut off = off;
        for s in streams.iter().filter(|s| s.port == i && s.vlan_offload) {
            if info.tx_offload_capa & ol::TX_VLAN == 0 {
                return Err(ConfigError::new(
                    format!("stream[{}].vlan_offload", s.index),
                    format!(
                        "{} cannot insert VLAN tags; drop --vlan-offload / vlan_offload = true",
                        p.spec
                    ),
                )
                .into());
            }
            off |= ol::TX_VLAN;
        }
        let ntx = p.tx_queues.unwrap_or(nl as u16);
        if (ntx as usize) < nl {
            return Err(ConfigError::new(
                format!("port[{i}].tx_queues"),
                format!("{ntx} queue(s) for {nl} lcores: every lcore needs its own TX queue (XPS: one owner per queue)"),
            )
            .into());
        }
        let nrx = if rx_wanted[i] {
            ntx.min(info.max_rx_queues)
        } else {
            0
        };
        let pc = PortConfig {
            nb_tx_queues: ntx,
            nb_rx_queues: nrx,
            tx_ring_size: p.ring_size,
            rx_ring_size: p.ring_size,
            tx_offloads: off,
            promiscuous: true,
        };
        port.configure(&pc).map_err(|e| port_error(i, e))?;
        offloads.push(off & !ol::TX_VLAN);
        ports.push(port);
    }

    // Impossible requests, explained before anything starts.
    let mut port_load = vec![0.0f64; ports.len()];
    for s in &streams {
        let info = ports[s.port].info();
        if s.sizes.max() - 4 > info.max_frame {
            return Err(ConfigError::new(
                format!("stream[{}].size", s.index),
                format!(
                    "{} frames exceed {}'s largest frame ({} bytes without FCS); lower the size",
                    s.sizes.describe(),
                    cfg.ports[s.port].spec,
                    info.max_frame
                ),
            )
            .into());
        }
        let line = info.line_rate_bps;
        if matches!(s.rate, Rate::Percent(_)) && line == 0 {
            return Err(ConfigError::new(
                format!("stream[{}].rate", s.index),
                format!(
                    "{} has no line rate; give the rate in pps or bit/s",
                    cfg.ports[s.port].spec
                ),
            )
            .into());
        }
        if let Some(pps) = s.rate.pps(s.sizes.mean(), line) {
            let l1 = pps * (s.sizes.mean() + 20.0) * 8.0;
            port_load[s.port] += l1;
            if line > 0 && l1 > line as f64 * 1.000_001 {
                return Err(ConfigError::new(
                    format!("stream[{}].rate", s.index),
                    format!(
                        "{} is {:.3} Gbit/s on the wire (L1), above {}'s line rate of {:.3} Gbit/s",
                        s.rate.describe(),
                        l1 / 1e9,
                        cfg.ports[s.port].spec,
                        line as f64 / 1e9
                    ),
                )
                .into());
            }
        }
    }
    for (pi, load) in port_load.iter().enumerate() {
        let line = ports[pi].info().line_rate_bps;
        if line > 0 && *load > line as f64 * 1.000_001 {
            return Err(ConfigError::new(
                format!("port[{pi}]"),
                format!(
                    "its streams ask for {:.3} Gbit/s (L1) together, above the line rate of {:.3} Gbit/s",
                    load / 1e9,
                    line as f64 / 1e9
                ),
            )
            .into());
        }
    }

    // The static XPS map: lcore l owns TX (and RX) queues q with q % nl == l.
    let mut work: Vec<LcoreWork> = (0..nl)
        .map(|_| LcoreWork {
            txqs: Vec::new(),
            rxqs: Vec::new(),
            senders: Vec::new(),
        })
        .collect();
    // txq_of[lcore][port] = indices into that lcore's txqs.
    let mut txq_of: Vec<Vec<Vec<usize>>> = vec![vec![Vec::new(); ports.len()]; nl];
    let mut raw_tx: Vec<Vec<(usize, Box<dyn wirespeed::ethdev::TxQueue>)>> =
        (0..nl).map(|_| Vec::new()).collect();
    let mut raw_rx: Vec<(usize, u16, Box<dyn wirespeed::ethdev::RxQueue>)> = Vec::new();
    for (pi, port) in ports.iter_mut().enumerate() {
        let ntx = cfg.ports[pi].tx_queues.unwrap_or(nl as u16);
        for q in 0..ntx {
            let txq = port.tx_queue(q).map_err(|e| port_error(pi, e))?;
            let l = q as usize % nl;
            txq_of[l][pi].push(raw_tx[l].len());
            raw_tx[l].push((pi, txq));
        }
        let nrx = if rx_wanted[pi] {
            ntx.min(port.info().max_rx_queues)
        } else {
            0
        };
        for q in 0..nrx {
            let rxq = port.rx_queue(q).map_err(|e| port_error(pi, e))?;
            raw_rx.push((pi, q, rxq));
        }
    }
    for (i, p) in ports.iter_mut().enumerate() {
        p.start().map_err(|e| port_error(i, e))?;
    }
    // --arp: resolve destinations on each port before the lcores take over.
    // The pool that filled the RX rings lives until the run ends.
    let mut arp_pools = Vec::new();
    if args.arp {
        for (pi, port) in ports.iter().enumerate() {
            if !streams.iter().any(|s| s.port == pi) {
                continue;
            }
            let mut pool = wirespeed::mbuf::Mempool::new(&wirespeed::mbuf::PoolConfig {
                name: format!("arp-p{pi}"),
                size: 2048,
                ..Default::default()
            })
            .map_err(|e| GenError::Run(e.to_string()))?;
            let txq = raw_tx
                .iter_mut()
                .flat_map(|v| v.iter_mut())
                .find(|(p, _)| *p == pi)
                .map(|(_, q)| q)
                .ok_or_else(|| GenError::Run(format!("port {pi} has no TX queue")))?;
            let rxq = raw_rx
                .iter_mut()
                .find(|(p, _, _)| *p == pi)
                .map(|(_, _, q)| q)
                .ok_or_else(|| GenError::Run(format!("--arp needs an RX queue on port {pi}")))?;
            crate::arp::resolve_streams(
                pi,
                port.as_ref(),
                txq.as_mut(),
                rxq.as_mut(),
                &mut pool,
                &mut streams,
            )
            .map_err(GenError::Run)?;
            arp_pools.push(pool);
        }
    }
    for (l, v) in raw_tx.into_iter().enumerate() {
        for (_, q) in v {
            work[l]
                .txqs
                .push(Box::new(RawTx::new(q)) as Box<dyn TxPath>);
        }
    }
    for (_, q, rxq) in raw_rx {
        work[q as usize % nl].rxqs.push(rxq);
    }
    let mut counters: Vec<Vec<Arc<SenderCounters>>> = vec![Vec::new(); streams.len()];
    let mut targets = Vec::new();
    for s in &streams {
        let senders = &stream_cores[s.index];
        let k = senders.len() as u64;
        // Count: the stream's own, else the run's total spread over every stream.
        let total = if s.count > 0 {
            s.count
        } else if cfg.run.count > 0 {
            cfg.run.count / streams.len() as u64
                + u64::from((s.index as u64) < cfg.run.count % streams.len() as u64)
        } else {
            0
        };
        let line = ports[s.port].info().line_rate_bps;
        targets.push(s.rate.pps(s.sizes.mean(), line));
        for (j, &core) in senders.iter().enumerate() {
            let l = core_ids
                .iter()
                .position(|c| *c == core)
                .expect("validated against run.lcores");
            let qs = &txq_of[l][s.port];
            if qs.is_empty() {
                return Err(ConfigError::new(
                    format!("stream[{}].lcores", s.index),
                    format!(
                        "lcore {core} owns no TX queue on port {} (raise port[{}].tx_queues)",
                        s.port, s.port
                    ),
                )
                .into());
            }
            let quota = if total == 0 {
                u64::MAX
            } else {
                total / k + u64::from((j as u64) < total % k)
            };
            let c = Arc::new(SenderCounters::default());
            counters[s.index].push(c.clone());
            work[l].senders.push(SenderPlan {
                stream: s.index,
                quota,
                share: 1.0 / k as f64,
                txq: qs[s.index % qs.len()],
                sender_id: j as u8,
                counters: c,
                offload: offloads[s.port] != 0,
                line_bps: line,
            });
        }
    }

    let tsc = Tsc::global();
    let params = Arc::new(RunParams {
        streams: streams.clone(),
        burst: cfg.run.burst as usize,
        pool_size: cfg.run.mempool_size,
        run_cycles: if cfg.run.duration > 0.0 {
            Some(tsc.ns_to_cycles((cfg.run.duration * 1e9) as u64))
        } else {
            None
        },
        ready: std::sync::atomic::AtomicUsize::new(0),
        start: std::sync::atomic::AtomicU64::new(0),
        replay,
        hlog_interval_cycles: tsc.hz(),
    });
    let slots: Arc<Mutex<Vec<Option<LcoreWork>>>> =
        Arc::new(Mutex::new(work.into_iter().map(Some).collect()));
    let (lat_tx, lat_rx) = mpsc::channel::<LatencyInterval>();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let p2 = params.clone();
    let launcher = std::thread::spawn(move || {
        let lat_tx = Mutex::new(lat_tx);
        let r = eal::lcore::launch(&cores, move |id| -> Result<LcoreResult, String> {
            let w = slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(id.index)
                .and_then(Option::take)
                .ok_or_else(|| format!("lcore {} has no work", id.core))?;
            let tx = lat_tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
            lcore::run(id, w, &p2, tx)
        });
        d2.store(true, Ordering::Release);
        r
    });

    // Every lcore has built its pools: fix the common start 2 ms ahead.
    while params.ready.load(Ordering::Acquire) < nl && !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_micros(200));
    }
    let start_tsc = tsc.now() + tsc.ns_to_cycles(2_000_000);
    params.start.store(start_tsc, Ordering::Release);
    let wall_start = SystemTime::now();
    let started = Instant::now();
    let mut mon = Monitor::new(&streams, ports.len(), tsc, start_tsc, args.interval_ms);
    let mut hlog = args.hlog.as_ref().map(|_| HlogWriter::new(wall_start));
    let mut lat_intervals: Vec<LatencyInterval> = Vec::new();
    let tick = Duration::from_millis(args.interval_ms);
    let mut next_tick = Instant::now() + tick;
    let mut next_line = Instant::now() + Duration::from_secs(1);
    while !done.load(Ordering::Acquire) {
        let now = Instant::now();
        if now < next_tick {
            std::thread::sleep((next_tick - now).min(Duration::from_millis(5)));
            continue;
        }
        next_tick += tick;
        if next_tick < now {
            next_tick = now + tick;
        }
        mon.sample(&ports, &counters);
        while let Ok(li) = lat_rx.try_recv() {
            lat_intervals.push(li);
        }
        if now >= next_line {
            next_line += Duration::from_secs(1);
            if !args.quiet {
                eprintln!("{}", mon.live_line(&ports, started.elapsed().as_secs_f64()));
            }
        }
    }
    let results = launcher
        .join()
        .map_err(|_| GenError::Run("lcore launcher panicked".into()))?
        .map_err(|e| GenError::Run(e.to_string()))?;
    mon.sample(&ports, &counters);
    while let Ok(li) = lat_rx.try_recv() {
        lat_intervals.push(li);
    }
    let mut lres = Vec::new();
    for r in results {
        lres.push(r.map_err(GenError::Run)?);
    }
    let summary = report::summarize(report::SummaryInput {
        cfg: &cfg,
        streams: &streams,
        ports: &ports,
        offloads: &offloads,
        counters: &counters,
        targets: &targets,
        lcores: lres,
        mon: &mon,
        tsc,
        elapsed: started.elapsed().as_secs_f64(),
    });
    for p in ports.iter_mut() {
        let name = p.name().to_string();
        p.stop()
            .map_err(|e| GenError::Run(format!("stopping {name}: {e}")))?;
    }
    if let (Some(w), Some(path)) = (hlog.as_mut(), &args.hlog) {
        lat_intervals.sort_by_key(|l| l.start_tsc);
        // Merge the lcores' intervals of each stream per second.
        let mut merged: std::collections::BTreeMap<
            (u64, usize),
            (u64, hdrhistogram::Histogram<u64>),
        > = Default::default();
        for li in &lat_intervals {
            let sec = tsc.cycles_to_ns(li.start_tsc.saturating_sub(start_tsc)) / 1_000_000_000;
            let e = merged
                .entry((sec, li.stream))
                .or_insert_with(|| (li.end_tsc, super::measure::latency_histogram()));
            e.0 = e.0.max(li.end_tsc);
            let _ = e.1.add(&li.hist);
        }
        for ((sec, si), (end, h)) in merged {
            let start_s = sec as f64;
            let end_s = tsc.cycles_to_ns(end.saturating_sub(start_tsc)) as f64 / 1e9;
            w.interval(&streams[si].name, start_s, (end_s - start_s).max(1e-3), &h)
                .map_err(|e| GenError::Run(format!("--hlog: {e}")))?;
        }
        let bytes = std::mem::replace(w, HlogWriter::new(wall_start)).into_bytes();
        std::fs::write(path, bytes)
            .map_err(|e| GenError::Run(format!("--hlog {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.plot {
        let lat: Vec<(String, hdrhistogram::Histogram<u64>)> = summary
            .latency_hists
            .iter()
            .map(|(n, h)| (n.clone(), h.clone()))
            .collect();
        let series: Vec<Series> = mon.series();
        let svg = super::measure::svg_plot(&lat, &series);
        std::fs::write(path, svg)
            .map_err(|e| GenError::Run(format!("--plot {}: {e}", path.display())))?;
    }
    drop(arp_pools);
    Ok(summary)
}
