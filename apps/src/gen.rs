//! `wirespeed gen`: the traffic generator (raw mode: prebuilt frames straight
//! to the lcore's TX queues, like testpmd's txonly).

use crate::config::{Config, ConfigError, PortSection, Stream};
use crate::frame;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wirespeed::eal::{self, CoreList, Tsc};
use wirespeed::ethdev::{EthdevError, Port, PortConfig, Registry, TxQueue};
use wirespeed::mbuf::{ol, Burst, Mempool, PoolConfig};

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
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Ask the port for IPv4/UDP checksum offload (the NIC fills the checksums).
    #[arg(long)]
    pub offload: bool,
    /// 802.1Q VLAN id to tag every stream with.
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Use 2 MiB hugepages only (fail if none are reserved).
    #[arg(long, conflicts_with = "no_huge")]
    pub huge: bool,
    /// Use 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
    /// No live line, only the summary.
    #[arg(long, short)]
    pub quiet: bool,
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

fn port_error(i: usize, e: EthdevError) -> GenError {
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

/// Builds the effective configuration from a file and the flags.
pub fn effective_config(args: &GenArgs) -> Result<Config, ConfigError> {
    let mut c = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(p) = &args.port {
        let sec = PortSection {
            spec: p.clone(),
            tx_queues: None,
            ring_size: 1024,
            offload: false,
        };
        if c.ports.is_empty() {
            c.ports.push(sec);
        } else {
            c.ports[0].spec = p.clone();
        }
    }
    if c.ports.is_empty() {
        // The embedded default device.
        c.ports.push(PortSection {
            spec: crate::DEFAULT_PORT.into(),
            tx_queues: None,
            ring_size: 1024,
            offload: false,
        });
    }
    if args.offload {
        for p in &mut c.ports {
            p.offload = true;
        }
    }
    if let Some(l) = &args.lcores {
        c.run.lcores = l.clone();
    }
    if let Some(n) = args.count {
        c.run.count = n;
    }
    if let Some(d) = args.duration {
        c.run.duration = d;
    }
    if args.huge {
        c.run.pages = eal::PageMode::Huge;
    }
    if args.no_huge {
        c.run.pages = eal::PageMode::Small;
    }
    if args.size.is_some() || args.vlan.is_some() {
        if c.streams.is_empty() {
            c.streams.push(Default::default());
        }
        for s in &mut c.streams {
            if let Some(z) = args.size {
                s.size = z;
            }
            if let Some(v) = args.vlan {
                s.vlan = v;
            }
        }
    }
    if c.run.count == 0 && c.run.duration == 0.0 {
        // Never run forever by accident: a default duration, as pktgen users ask for.
        c.run.duration = 10.0;
    }
    Ok(c)
}

/// Per-queue figures in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    pub queue: u16,
    pub lcore: usize,
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    pub drops: u64,
}

/// Per-port figures in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct PortSummary {
    pub spec: String,
    pub driver: String,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
    pub link_up: bool,
    pub link_speed_mbps: u32,
    pub offloads: String,
    pub queues: Vec<QueueSummary>,
    pub xstats: std::collections::BTreeMap<String, u64>,
}

/// Per-lcore figures.
#[derive(Debug, Clone, Serialize)]
pub struct LcoreSummary {
    pub lcore: usize,
    pub core: usize,
    pub packets: u64,
    pub bytes: u64,
    pub busy_cycles: u64,
    pub cycles_per_packet: f64,
    pub alloc_failures: u64,
    pub mempool_in_use_at_end: u64,
}

/// What `--json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mode: &'static str,
    pub packets_sent: u64,
    /// L2 bytes without FCS (what a capture shows).
    pub bytes_sent: u64,
    pub duration_s: f64,
    pub mpps: f64,
    /// L2 bit rate including the 4-byte FCS.
    pub l2_gbps: f64,
    /// L1 bit rate: FCS + preamble + inter-frame gap (24 bytes per frame).
    pub l1_gbps: f64,
    pub drops: u64,
    pub cycles_per_packet: f64,
    pub tsc_hz: u64,
    pub ports: Vec<PortSummary>,
    pub lcores: Vec<LcoreSummary>,
}

struct LcoreWork {
    queues: Vec<(usize, Box<dyn TxQueue>)>,
    /// (stream index, packets to send; u64::MAX = unlimited)
    quotas: Vec<(usize, u64)>,
}

/// Validates a configuration without opening any device: TOML, values, core
/// list, and that each port's spec names a known driver. Returns the number of
/// streams.
pub fn check(args: &GenArgs, registry: &Registry) -> Result<usize, GenError> {
    let cfg = effective_config(args)?;
    let streams = cfg.validate()?;
    CoreList::parse(&cfg.run.lcores).map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
    for (i, p) in cfg.ports.iter().enumerate() {
        let spec = wirespeed::ethdev::DevSpec::parse(&p.spec).map_err(|e| port_error(i, e))?;
        if !registry.drivers().iter().any(|d| d.name == spec.driver) {
            return Err(ConfigError::new(
                format!("port[{i}].spec"),
                format!(
                    "unknown driver '{}'; known drivers: {}",
                    spec.driver,
                    registry.known()
                ),
            )
            .into());
        }
    }
    Ok(streams.len())
}

/// Runs the generator. `registry` holds every driver the binary knows.
pub fn run(args: &GenArgs, registry: &Registry) -> Result<Summary, GenError> {
    let cfg = effective_config(args)?;
    let streams = cfg.validate()?;
    let cores = CoreList::parse(&cfg.run.lcores)
        .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
    cores
        .validate()
        .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
    eal::dma::set_page_mode(cfg.run.pages);
    eal::signal::install();
    let nl = cores.len();

    // Open and configure the ports.
    let mut ports: Vec<Box<dyn Port>> = Vec::new();
    let mut offloads = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let mut port = registry.open(&p.spec).map_err(|e| port_error(i, e))?;
        let info = port.info();
        let want = ol::TX_IPV4 | ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM;
        let off = if p.offload {
            if info.tx_offload_capa & (ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM)
                != (ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM)
            {
                return Err(ConfigError::new(
                    format!("port[{i}].offload"),
                    format!(
                        "{} offers {} — no IPv4+UDP checksum offload; drop --offload/offload = true and checksums are computed in software",
                        p.spec,
                        wirespeed::ethdev::offload_names(info.tx_offload_capa)
                    ),
                )
                .into());
            }
            want & (info.tx_offload_capa | ol::TX_IPV4)
        } else {
            0
        };
        let ntx = p.tx_queues.unwrap_or(nl as u16);
        if (ntx as usize) < nl {
            return Err(ConfigError::new(
                format!("port[{i}].tx_queues"),
                format!("{ntx} queue(s) for {nl} lcores: every lcore needs its own TX queue (XPS: one owner per queue)"),
            )
            .into());
        }
        let pc = PortConfig {
            nb_tx_queues: ntx,
            nb_rx_queues: 0,
            tx_ring_size: p.ring_size,
            rx_ring_size: p.ring_size,
            tx_offloads: off & !ol::TX_IPV4,
            promiscuous: true,
        };
        port.configure(&pc).map_err(|e| port_error(i, e))?;
        offloads.push(off);
        ports.push(port);
    }

    // XPS, the static way: lcore l owns queues q with q % nl == l.
    let mut work: Vec<LcoreWork> = (0..nl)
        .map(|_| LcoreWork {
            queues: Vec::new(),
            quotas: Vec::new(),
        })
        .collect();
    for (pi, port) in ports.iter_mut().enumerate() {
        let ntx = cfg.ports[pi].tx_queues.unwrap_or(nl as u16);
        for q in 0..ntx {
            let txq = port.tx_queue(q).map_err(|e| port_error(pi, e))?;
            work[q as usize % nl].queues.push((pi, txq));
        }
    }
    let pairs = nl * streams.len();
    for (l, w) in work.iter_mut().enumerate() {
        for si in 0..streams.len() {
            let quota = if cfg.run.count == 0 {
                u64::MAX
            } else {
                let k = (l * streams.len() + si) as u64;
                cfg.run.count / pairs as u64 + u64::from(k < cfg.run.count % pairs as u64)
            };
            w.quotas.push((si, quota));
        }
    }
    for (i, p) in ports.iter_mut().enumerate() {
        p.start().map_err(|e| port_error(i, e))?;
    }

    let tsc = Tsc::global();
    let deadline = if cfg.run.duration > 0.0 {
        Some(Duration::from_secs_f64(cfg.run.duration))
    } else {
        None
    };
    let templates: Vec<Vec<u8>> = streams
        .iter()
        .map(|s| {
            let mut f = frame::build(s);
            if offloads[s.port] != 0 {
                prepare_offload(&mut f, s);
            }
            f
        })
        .collect();
    let shared = Arc::new(Shared {
        work: Mutex::new(work.into_iter().map(Some).collect()),
        streams: streams.clone(),
        templates,
        offloads: offloads.clone(),
        burst: cfg.run.burst as usize,
        pool_size: cfg.run.mempool_size,
        deadline,
        done: AtomicBool::new(false),
    });

    let start = Instant::now();
    let sh = shared.clone();
    let launcher = std::thread::spawn(move || {
        let sh2 = sh.clone();
        let r = eal::lcore::launch(&cores, move |id| lcore_main(&sh2, id, tsc));
        sh.done.store(true, Ordering::Release);
        r
    });
    monitor(&ports, &shared, args.quiet, start);
    let results = launcher
        .join()
        .map_err(|_| GenError::Run("lcore launcher panicked".into()))?
        .map_err(|e| GenError::Run(e.to_string()))?;
    let elapsed = start.elapsed().as_secs_f64();
    let mut lcores = Vec::new();
    for r in results {
        lcores.push(r.map_err(GenError::Run)?);
    }
    let summary = summarize(&ports, &offloads, lcores, elapsed, tsc);
    for p in ports.iter_mut() {
        let name = p.name().to_string();
        p.stop()
            .map_err(|e| GenError::Run(format!("stopping {name}: {e}")))?;
    }
    Ok(summary)
}

/// Seeds the template for checksum offload: the NIC fills the IPv4 header
/// checksum (field zeroed) and the UDP checksum from the pseudo-header sum
/// already in the field (what DPDK's `rte_net_intel_cksum_prepare` does).
fn prepare_offload(f: &mut [u8], s: &Stream) {
    let ip = if s.vlan != 0 { 18 } else { 14 };
    f[ip + 10] = 0;
    f[ip + 11] = 0;
    let udp = ip + 20;
    let udp_len = (f.len() - udp) as u64;
    let mut pseudo = 0u64;
    for w in f[ip + 12..ip + 20].chunks(2) {
        pseudo += u16::from_be_bytes([w[0], w[1]]) as u64;
    }
    let sum = frame::ones_sum(&[], pseudo + 17 + udp_len);
    f[udp + 6..udp + 8].copy_from_slice(&sum.to_be_bytes());
}

struct Shared {
    work: Mutex<Vec<Option<LcoreWork>>>,
    streams: Vec<Stream>,
    templates: Vec<Vec<u8>>,
    offloads: Vec<u32>,
    burst: usize,
    pool_size: u32,
    deadline: Option<Duration>,
    done: AtomicBool,
}

/// One lcore's transmit loop (testpmd's `pkt_burst_transmit`).
fn lcore_main(sh: &Shared, id: eal::lcore::LcoreId, tsc: Tsc) -> Result<LcoreSummary, String> {
    let w = sh
        .work
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(id.index)
        .and_then(Option::take)
        .ok_or_else(|| format!("lcore {} has no work", id.core))?;
    let LcoreWork { mut queues, quotas } = w;
    // One mempool per stream, prebuilt with its frame (DPDK obj_init).
    let mut pools = Vec::new();
    for si in 0..sh.streams.len() {
        let mut pool = Mempool::new(&PoolConfig {
            name: format!("gen-l{}-s{}", id.core, si),
            size: sh.pool_size,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        let t = &sh.templates[si];
        pool.init_all(|m| {
            let _ = m.extend_from_slice(t);
        })
        .map_err(|e| e.to_string())?;
        pools.push(pool);
    }
    let mut remaining: Vec<u64> = quotas.iter().map(|q| q.1).collect();
    let mut pending: Vec<Burst> = (0..sh.streams.len()).map(|_| Burst::new()).collect();
    let mut sent_pkts = 0u64;
    let mut sent_bytes = 0u64;
    let mut alloc_failures = 0u64;
    let mut rr = vec![0usize; sh.ports_len()];
    let by_port: Vec<Vec<usize>> = (0..sh.ports_len())
        .map(|p| {
            queues
                .iter()
                .enumerate()
                .filter(|(_, (pi, _))| *pi == p)
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let t0 = tsc.now();
    let deadline_cycles = sh
        .deadline
        .map(|d| t0 + tsc.ns_to_cycles(d.as_nanos() as u64));
    let burst = sh.burst;
    let mut iter = 0u64;
    loop {
        iter += 1;
        if iter & 63 == 0 {
            if eal::signal::stop_requested() {
                break;
            }
            if let Some(dl) = deadline_cycles {
                if tsc.now() >= dl {
                    break;
                }
            }
        }
        let mut active = false;
        for (si, &(s_idx, _)) in quotas.iter().enumerate() {
            if remaining[si] == 0 {
                continue;
            }
            active = true;
            let st = &sh.streams[s_idx];
            let qs = &by_port[st.port];
            if qs.is_empty() {
                remaining[si] = 0;
                continue;
            }
            let qi = qs[rr[st.port] % qs.len()];
            rr[st.port] = rr[st.port].wrapping_add(1);
            let pend = &mut pending[si];
            let want = (burst as u64).min(remaining[si]) as usize;
            if pend.len() < want {
                let need = want - pend.len();
                let before = pend.len();
                if pools[s_idx].alloc_bulk(pend, need) {
                    let flen = sh.templates[s_idx].len();
                    let offl = sh.offloads[st.port];
                    let l2 = if st.vlan != 0 { 18 } else { 14 };
                    for m in &mut pend.as_mut_slice()[before..] {
                        // The frame bytes are already in the buffer (init_all).
                        let _ = m.set_len(flen);
                        if offl != 0 {
                            m.set_ol_flags(offl);
                            m.set_tx_lens(l2, 20, 8);
                        }
                    }
                } else {
                    alloc_failures += 1;
                }
            }
            let q = &mut queues[qi].1;
            let n = q.tx_burst(pend);
            if n > 0 {
                remaining[si] = remaining[si].saturating_sub(n as u64);
                sent_pkts += n as u64;
                sent_bytes += n as u64 * sh.templates[s_idx].len() as u64;
            }
            q.clean(burst * 2);
        }
        if !active {
            break;
        }
    }
    let busy = tsc.now() - t0;
    // Let the queues report their last completions (bounded).
    let end = Instant::now() + Duration::from_secs(2);
    for (_, q) in queues.iter_mut() {
        while q.free_slots() < q.ring_size() && Instant::now() < end {
            if q.clean(usize::MAX).packets == 0 {
                std::thread::yield_now();
            }
        }
    }
    drop(pending);
    drop(queues);
    let in_use: u64 = pools.iter().map(|p| p.stats().in_use).sum();
    Ok(LcoreSummary {
        lcore: id.index,
        core: id.core,
        packets: sent_pkts,
        bytes: sent_bytes,
        busy_cycles: busy,
        cycles_per_packet: if sent_pkts > 0 {
            busy as f64 / sent_pkts as f64
        } else {
            0.0
        },
        alloc_failures,
        mempool_in_use_at_end: in_use,
    })
}

impl Shared {
    fn ports_len(&self) -> usize {
        self.offloads.len()
    }
}

fn port_totals(ports: &[Box<dyn Port>]) -> (u64, u64, u64) {
    let mut p = 0;
    let mut b = 0;
    let mut d = 0;
    for port in ports {
        let s = port.stats();
        p += s.tx.packets;
        b += s.tx.bytes;
        d += s.tx.drops + s.tx.errors;
    }
    (p, b, d)
}

/// The live line, once a second (pps, L2/L1 bit rate, drops).
fn monitor(ports: &[Box<dyn Port>], sh: &Shared, quiet: bool, start: Instant) {
    let mut last = (0u64, 0u64, 0u64);
    let mut last_t = start;
    let mut next = start + Duration::from_secs(1);
    while !sh.done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if now < next {
            continue;
        }
        let cur = port_totals(ports);
        let dt = now.duration_since(last_t).as_secs_f64();
        let pps = (cur.0 - last.0) as f64 / dt;
        let l2 = ((cur.1 - last.1) as f64 + 4.0 * (cur.0 - last.0) as f64) * 8.0 / dt;
        let l1 = l2 + 20.0 * 8.0 * (cur.0 - last.0) as f64 / dt;
        if !quiet {
            eprintln!(
                "[{:>6.1}s] tx {:>10.3} Mpps  L2 {:>8.3} Gbit/s  L1 {:>8.3} Gbit/s  drops {}",
                now.duration_since(start).as_secs_f64(),
                pps / 1e6,
                l2 / 1e9,
                l1 / 1e9,
                cur.2
            );
        }
        last = cur;
        last_t = now;
        next += Duration::from_secs(1);
    }
}

fn summarize(
    ports: &[Box<dyn Port>],
    offloads: &[u32],
    lcores: Vec<LcoreSummary>,
    elapsed: f64,
    tsc: Tsc,
) -> Summary {
    let mut ps = Vec::new();
    let nl = lcores.len().max(1);
    for (i, p) in ports.iter().enumerate() {
        let s = p.stats();
        let link = p.link();
        ps.push(PortSummary {
            spec: p.name().to_string(),
            driver: p.info().driver.to_string(),
            tx_packets: s.tx.packets,
            tx_bytes: s.tx.bytes,
            tx_errors: s.tx.errors,
            tx_drops: s.tx.drops,
            link_up: link.up,
            link_speed_mbps: link.speed_mbps,
            offloads: wirespeed::ethdev::offload_names(offloads[i] & !ol::TX_IPV4),
            queues: s
                .tx_queues
                .iter()
                .enumerate()
                .map(|(q, c)| QueueSummary {
                    queue: q as u16,
                    lcore: q % nl,
                    packets: c.packets,
                    bytes: c.bytes,
                    errors: c.errors,
                    drops: c.drops,
                })
                .collect(),
            xstats: p.xstats().into_iter().collect(),
        });
    }
    let (pk, by, dr) = port_totals(ports);
    let busy: u64 = lcores.iter().map(|l| l.busy_cycles).sum();
    let lp: u64 = lcores.iter().map(|l| l.packets).sum();
    // The rate over the lcores' sending time (what the engine sustained).
    let send_s = lcores
        .iter()
        .map(|l| tsc.cycles_to_ns(l.busy_cycles) as f64 / 1e9)
        .fold(0.0, f64::max)
        .max(1e-9)
        .min(elapsed.max(1e-9));
    Summary {
        mode: "raw",
        packets_sent: pk,
        bytes_sent: by,
        duration_s: send_s,
        mpps: pk as f64 / send_s / 1e6,
        l2_gbps: (by + 4 * pk) as f64 * 8.0 / send_s / 1e9,
        l1_gbps: (by + 24 * pk) as f64 * 8.0 / send_s / 1e9,
        drops: dr,
        cycles_per_packet: if lp > 0 { busy as f64 / lp as f64 } else { 0.0 },
        tsc_hz: tsc.hz(),
        ports: ps,
        lcores,
    }
}

/// Prints the final table.
pub fn print_summary(s: &Summary) {
    println!(
        "wirespeed gen ({}): {} packets, {} bytes in {:.3} s = {:.3} Mpps, L2 {:.3} Gbit/s, L1 {:.3} Gbit/s, {:.1} cycles/packet, drops {}",
        s.mode, s.packets_sent, s.bytes_sent, s.duration_s, s.mpps, s.l2_gbps, s.l1_gbps, s.cycles_per_packet, s.drops
    );
    for p in &s.ports {
        println!(
            "  port {} [{}] link {} {} Mbit/s offloads {}: tx {} pkts {} bytes, errors {}, drops {}",
            p.spec,
            p.driver,
            if p.link_up { "up" } else { "down" },
            p.link_speed_mbps,
            p.offloads,
            p.tx_packets,
            p.tx_bytes,
            p.tx_errors,
            p.tx_drops
        );
        for q in &p.queues {
            println!(
                "    txq {} (lcore {}): {} pkts {} bytes, errors {}, drops {}",
                q.queue, q.lcore, q.packets, q.bytes, q.errors, q.drops
            );
        }
    }
    for l in &s.lcores {
        println!(
            "  lcore {} (core {}): {} pkts, {:.1} cycles/packet, alloc failures {}, mbufs in use at end {}",
            l.lcore, l.core, l.packets, l.cycles_per_packet, l.alloc_failures, l.mempool_in_use_at_end
        );
    }
}
