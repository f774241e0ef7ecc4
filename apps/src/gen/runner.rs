//! Orchestration of one `wirespeed gen` run: ports, queues (the static XPS
//! map), sender plans, the lcores, and the monitor that samples counters.

use super::lcore::{
    ArpShared, GenApp, LatencyInterval, RunParams, SenderCounters, SenderPlan, StackSetup,
};
use super::measure::{HlogWriter, Series};
use super::report::{self, Monitor, Summary};
use super::{port_error, validated, GenArgs, GenError};
use crate::config::{socket_wire, ConfigError, Rate, StreamMode, DEFAULT_MTU};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use wirespeed::eal::{self, CoreList, Tsc};
use wirespeed::ethdev::{Port, PortConfig, Registry};
use wirespeed::mbuf::ol;
use wirespeed::netdev::{BqlConfig, QdiscConfig, QdiscKind, TxqConfig};
use wirespeed::runtime::{PortSetup, Runtime, RuntimeConfig};

/// Files a device spec writes: `pcap:PATH` and a model's `sink=pcap:PATH`.
fn spec_outputs(spec: &wirespeed::ethdev::DevSpec) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if spec.driver == "pcap" {
        if let Some(a) = &spec.arg {
            v.push(("pcap file", a.clone()));
        }
    }
    if let Some(p) = spec.param("sink").and_then(|s| s.strip_prefix("pcap:")) {
        v.push(("sink", p.to_string()));
    }
    v
}

/// Checks that `path` can be written (its directory exists and takes a new
/// file) by opening it for writing, without truncating what is there.
fn check_output(flag: &str, path: &std::path::Path) -> Result<(), GenError> {
    if path.is_dir() {
        return Err(ConfigError::new(
            flag,
            format!("{} is a directory; give a file name", path.display()),
        )
        .into());
    }
    let existed = path.exists();
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(_) => {
            if !existed {
                // Leave no empty file behind if the run fails before writing it.
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| ".".into());
            Err(ConfigError::new(
                flag,
                format!(
                    "cannot write {}: {e} (does {dir} exist and is it writable?)",
                    path.display()
                ),
            )
            .into())
        }
    }
}

pub(super) fn run(args: &GenArgs, registry: &Registry) -> Result<Summary, GenError> {
    let (cfg, streams) = validated(args)?;
    let cores = CoreList::parse(&cfg.run.lcores)
        .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
    cores
        .validate()
        .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
    // Device models keep their engine threads off these cores.
    eal::lcore::claim(&cores);
    if let Some(p) = &args.plot {
        if p.extension().and_then(|e| e.to_str()) != Some("svg") {
            return Err(ConfigError::new(
                "--plot",
                format!("{} : the plot is written as SVG; give a FILE.svg (rsvg-convert turns it into PNG)", p.display()),
            )
            .into());
        }
    }
    // Every output is checked before anything starts: a run whose results
    // cannot be written is not worth running.
    for (flag, path) in [
        ("--json", &args.json),
        ("--hlog", &args.hlog),
        ("--plot", &args.plot),
    ] {
        if let Some(p) = path {
            check_output(flag, p)?;
        }
    }
    for (i, p) in cfg.ports.iter().enumerate() {
        if let Ok(spec) = wirespeed::ethdev::DevSpec::parse(&p.spec) {
            for (what, path) in spec_outputs(&spec) {
                check_output(
                    &format!("port[{i}].spec ({what})"),
                    std::path::Path::new(&path),
                )?;
            }
        }
    }
    if args.interval_ms == 0 || args.interval_ms > 10_000 {
        return Err(ConfigError::new("--interval-ms", "must be 1..=10000").into());
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
            if s.mode == StreamMode::Socket {
                // The port's stack lives on the first lcore (RX queue 0, where ARP replies land).
                v = vec![core_ids[0]];
            }
            v
        })
        .collect();

    // Ports: open, check requests against what each can do, configure.
    let mut ports: Vec<Box<dyn Port>> = Vec::new();
    let mut confs: Vec<PortConfig> = Vec::new();
    let mut offloads = Vec::new();
    let rx_wanted: Vec<bool> = (0..cfg.ports.len())
        .map(|pi| {
            streams
                .iter()
                .any(|s| (s.latency || s.rx_port != s.port) && s.rx_port == pi)
                || (args.arp && streams.iter().any(|s| s.port == pi))
                || cfg.ports[pi].ip.is_some()
        })
        .collect();
    for (i, p) in cfg.ports.iter().enumerate() {
        let port = registry.open(&p.spec).map_err(|e| port_error(i, e))?;
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
        let mut pc = PortConfig {
            nb_tx_queues: ntx,
            nb_rx_queues: nrx,
            tx_ring_size: p.ring_size,
            rx_ring_size: p.ring_size,
            tx_offloads: off,
            promiscuous: true,
        };
        let _ = &mut pc;
        pc.validate(&p.spec, &info).map_err(|e| port_error(i, e))?;
        confs.push(pc);
        offloads.push(off & !ol::TX_VLAN);
        ports.push(port);
    }

    // Each port's MTU: the device's largest frame less the Ethernet header
    // and one VLAN tag (igb's max_frame_size = MTU + ETH_HLEN + FCS +
    // VLAN_HLEN), 1500 unless the config says otherwise.
    let mut mtus = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let info = ports[i].info();
        let max_mtu = info.max_frame.saturating_sub(14 + 4);
        let mtu = p.mtu.unwrap_or(DEFAULT_MTU.min(max_mtu));
        if !(68..=max_mtu).contains(&mtu) {
            return Err(ConfigError::new(
                format!("port[{i}].mtu"),
                format!(
                    "{mtu} is outside 68..={max_mtu} ({} takes frames of up to {} bytes without FCS)",
                    p.spec, info.max_frame
                ),
            )
            .into());
        }
        mtus.push(mtu);
    }

    // Impossible requests, explained before anything starts.
    let mut port_load = vec![0.0f64; ports.len()];
    for s in &streams {
        let info = ports[s.port].info();
        let mtu = mtus[s.port];
        if s.mode == StreamMode::Raw {
            // The IPv4 packet inside the largest frame: less FCS, Ethernet
            // header and the VLAN tag when the stream carries one.
            let tag = if s.vlan != 0
                || s.vlan_offload
                || s.fields
                    .iter()
                    .any(|f| f.kind == crate::config::FieldKind::Vlan)
            {
                4
            } else {
                0
            };
            let ip_len = s.sizes.max().saturating_sub(4 + 14 + tag);
            if ip_len > mtu {
                let max_mtu = info.max_frame.saturating_sub(18);
                return Err(ConfigError::new(
                    format!("stream[{}].size", s.index),
                    format!(
                        "{} frames carry {ip_len}-byte IPv4 packets, above port[{}]'s MTU of {mtu}; lower the size to {}{}",
                        s.sizes.describe(),
                        s.port,
                        mtu + 4 + 14 + tag,
                        if max_mtu > mtu {
                            format!(" or raise port[{}].mtu (up to {max_mtu})", s.port)
                        } else {
                            format!(" ({mtu} is the largest MTU {} takes)", cfg.ports[s.port].spec)
                        }
                    ),
                )
                .into());
            }
        }
        let mean_wire = if s.mode == StreamMode::Socket {
            socket_wire(s.sizes.mean() as u32, mtu) as f64
        } else {
            s.sizes.mean()
        };
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
        if let Some(pps) = s.rate.pps(mean_wire, line) {
            let l1 = pps * (mean_wire + 20.0) * 8.0;
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

    // Queueing per port: noqueue for raw traffic (the generator sizes its
    // bursts by ring room), pfifo_fast + BQL when asked (or for socket streams).
    let mut txq_cfgs = Vec::new();
    for (pi, p) in cfg.ports.iter().enumerate() {
        let kind = match p.qdisc.as_deref() {
            None if streams
                .iter()
                .any(|s| s.port == pi && s.mode == StreamMode::Socket) =>
            {
                QdiscKind::PfifoFast
            }
            None | Some("noqueue") => QdiscKind::Noqueue,
            Some("pfifo_fast") => QdiscKind::PfifoFast,
            Some(o) => {
                return Err(ConfigError::new(
                    format!("port[{pi}].qdisc"),
                    format!("'{o}' is not \"noqueue\" or \"pfifo_fast\""),
                )
                .into())
            }
        };
        let bql = p.bql.unwrap_or(kind == QdiscKind::PfifoFast);
        if p.txqueuelen == 0 {
            return Err(
                ConfigError::new(format!("port[{pi}].txqueuelen"), "must be at least 1").into(),
            );
        }
        txq_cfgs.push(TxqConfig {
            qdisc: QdiscConfig {
                kind,
                txqueuelen: p.txqueuelen as usize,
            },
            bql: BqlConfig {
                enabled: bql,
                ..Default::default()
            },
            tx_burst: cfg.run.burst as usize,
            ..Default::default()
        });
    }

    // Sender plans: each stream split over its lcores.
    let mut counters: Vec<Vec<Arc<SenderCounters>>> = vec![Vec::new(); streams.len()];
    let mut targets = Vec::new();
    let mut plans: Vec<Vec<SenderPlan>> = vec![Vec::new(); nl];
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
        let mean_wire = if s.mode == StreamMode::Socket {
            socket_wire(s.sizes.mean() as u32, mtus[s.port]) as f64
        } else {
            s.sizes.mean()
        };
        targets.push(s.rate.pps(mean_wire, line));
        for (j, &core) in senders.iter().enumerate() {
            let l = core_ids
                .iter()
                .position(|c| *c == core)
                .expect("validated against run.lcores");
            let quota = if total == 0 {
                u64::MAX
            } else {
                total / k + u64::from((j as u64) < total % k)
            };
            let c = Arc::new(SenderCounters::default());
            counters[s.index].push(c.clone());
            plans[l].push(SenderPlan {
                stream: s.index,
                quota,
                share: 1.0 / k as f64,
                sender_id: j as u8,
                counters: c,
                offload: offloads[s.port] != 0,
                line_bps: line,
            });
        }
    }
    let infos: Vec<wirespeed::ethdev::PortInfo> = ports.iter().map(|p| p.info()).collect();
    let macs: Vec<wirespeed::ethdev::MacAddr> = ports.iter().map(|p| p.mac()).collect();
    let arp = if args.arp {
        let mut entries = Vec::new();
        for s in &streams {
            if !entries
                .iter()
                .any(|e: &(usize, _, std::net::Ipv4Addr, _)| e.0 == s.port && e.2 == s.dst_ip)
            {
                entries.push((s.port, s.src_ip, s.dst_ip, None));
            }
        }
        Some(Arc::new(ArpShared {
            entries: Mutex::new(entries),
            port_macs: macs.clone(),
            done: AtomicBool::new(false),
            failed: Mutex::new(None),
        }))
    } else {
        None
    };
    let mut stacks = Vec::new();
    for (pi, p) in cfg.ports.iter().enumerate() {
        stacks.push(p.stack_ip(pi)?.map(|ip| StackSetup {
            ip,
            mac: macs[pi],
            mtu: mtus[pi],
            tx_offloads: offloads[pi],
            noarp: infos[pi].driver == "lo",
        }));
    }
    let senders_total = plans.len();
    let tsc = Tsc::global();
    let (lat_tx, lat_rx) = mpsc::channel::<LatencyInterval>();
    let lat_rx = Mutex::new(lat_rx);
    let params = Arc::new(RunParams {
        streams: streams.clone(),
        burst: cfg.run.burst as usize,
        pool_size: cfg.run.mempool_size,
        run_cycles: if cfg.run.duration > 0.0 {
            Some(tsc.ns_to_cycles((cfg.run.duration * 1e9) as u64))
        } else {
            None
        },
        ready: AtomicUsize::new(0),
        start: AtomicU64::new(0),
        sending: AtomicUsize::new(senders_total),
        replay,
        hlog_interval_cycles: tsc.hz(),
        plans,
        arp,
        lat_tx: Mutex::new(lat_tx),
        stacks,
    });

    let mut setups = Vec::new();
    for (pi, (port, conf)) in ports.into_iter().zip(confs).enumerate() {
        let mut ps = PortSetup::new(port, conf);
        ps.txq = txq_cfgs[pi].clone();
        setups.push(ps);
    }
    let mut rc = RuntimeConfig::new(cores.clone());
    rc.pool.name = "gen-rx".into();
    rc.pool.size = 4096;
    rc.rx_burst = cfg.run.burst as usize;
    rc.drain_timeout = Duration::from_secs(2);
    rc.handle_signals = true;
    rc.publish_every = 16;
    let rt = Runtime::new(rc, setups).map_err(|e| match e {
        wirespeed::runtime::RuntimeError::Ethdev(e) => GenError::Run(e.to_string()),
        e => GenError::Run(e.to_string()),
    })?;
    let port_names: Vec<String> = rt.ports().iter().map(|p| p.name().to_string()).collect();

    let wall_start = SystemTime::now();
    let started = Instant::now();
    let mut mon = Monitor::new(&streams, port_names.len(), tsc);
    let mut hlog = args.hlog.as_ref().map(|_| HlogWriter::new(wall_start));
    let mut lat_intervals: Vec<LatencyInterval> = Vec::new();
    let p2 = params.clone();
    let quiet = args.quiet;
    let counters2 = counters.clone();
    let mut next_line = Instant::now() + Duration::from_secs(1);
    let report = rt
        .run_with_ticker(
            move |ctx| GenApp::new(ctx, p2.clone()),
            Duration::from_millis(args.interval_ms),
            |m| {
                // Every lcore has built its pools: fix the common start 2 ms ahead.
                if params.start.load(Ordering::Acquire) == 0
                    && params.ready.load(Ordering::Acquire) >= nl
                {
                    let s = tsc.now() + tsc.ns_to_cycles(2_000_000);
                    mon.set_start(s);
                    params.start.store(s, Ordering::Release);
                }
                mon.sample(&m.queues(), &counters2);
                if let Ok(rx) = lat_rx.lock() {
                    while let Ok(li) = rx.try_recv() {
                        lat_intervals.push(li);
                    }
                }
                if Instant::now() >= next_line {
                    next_line += Duration::from_secs(1);
                    // Once every sender is done the run is only draining:
                    // no more lines of zeros.
                    let sending = params.sending.load(Ordering::Acquire) > 0;
                    if !quiet && sending {
                        eprintln!(
                            "{}",
                            mon.live_line(&m.queues(), started.elapsed().as_secs_f64())
                        );
                    }
                }
            },
        )
        .map_err(|e| GenError::Run(e.to_string()))?;
    if let Ok(rx) = lat_rx.lock() {
        while let Ok(li) = rx.try_recv() {
            lat_intervals.push(li);
        }
    }
    let start_tsc = params.start.load(Ordering::Acquire);
    let lcore_error = report.lcores.iter().find_map(|l| l.app.error.clone());
    let mut summary = report::summarize(report::SummaryInput {
        streams: &streams,
        port_names: &port_names,
        infos: &infos,
        report: &report,
        offloads: &offloads,
        counters: &counters,
        targets: &targets,
        mon: &mon,
        tsc,
        elapsed: {
            let end = report
                .lcores
                .iter()
                .map(|l| l.app.end_tsc)
                .max()
                .unwrap_or_else(|| tsc.now());
            let s0 = params.start.load(Ordering::Acquire);
            if s0 != 0 && end > s0 {
                tsc.cycles_to_ns(end - s0) as f64 / 1e9
            } else {
                started.elapsed().as_secs_f64()
            }
        },
    });
    // A run an lcore ended (ARP unanswered, a stalled queue) still reports
    // what it did; the reason comes first among the failures (exit 1).
    if let Some(e) = lcore_error {
        summary.failures.insert(0, e);
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
        let series: Vec<Series> = mon.series();
        let svg = super::measure::svg_plot(&summary.latency_hists, &series);
        std::fs::write(path, svg)
            .map_err(|e| GenError::Run(format!("--plot {}: {e}", path.display())))?;
    }
    Ok(summary)
}
