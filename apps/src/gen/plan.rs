//! The run's plan: everything decided before a packet moves. The config
//! is validated, outputs and replays checked ([`Checked`], which `wirespeed
//! check` stops at), then ports opened and checked against what the streams
//! ask, queueing chosen and each stream split over its lcores
//! ([`RunPlan::build`]). [`super::launch`] runs a plan; [`super::report`]
//! reads it with the outcome.

use super::lcore::{ArpEntry, ArpShared, SenderCounters, SenderPlan, StackSetup};
use super::{port_error, validated, GenArgs, GenError};
use crate::config::{socket_wire, Config, ConfigError, FieldKind, Rate, Stream, StreamMode};
use crate::config::{PortIp, PortSection, DEFAULT_MTU};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use wirespeed::eal::{self, CoreList};
use wirespeed::ethdev::pcap::PcapRecord;
use wirespeed::ethdev::{DevSpec, MacAddr, Port, PortConfig, PortInfo, Registry};
use wirespeed::mbuf::ol;
use wirespeed::netdev::{BqlConfig, QdiscConfig, QdiscKind, TxqConfig};

/// Largest frame a replayed pcap record may hold (eight 2 KiB segments).
const MAX_REPLAY_FRAME: usize = 2048 * 8;

/// A replay's frames, loaded once and shared by its sender.
pub type Replay = Option<Arc<Vec<PcapRecord>>>;

/// The part of a plan that opens no device: the config and its streams, the
/// core list, the outputs and the pcap replays — what `wirespeed check`
/// validates.
pub struct Checked {
    pub cfg: Config,
    pub streams: Vec<Stream>,
    pub cores: CoreList,
    /// Per stream: its pcap frames (replay streams only).
    pub replay: Vec<Replay>,
}

impl Checked {
    /// Validates the effective config (file + flags), the core list and the
    /// flags, and loads every pcap a stream replays.
    pub fn new(args: &GenArgs) -> Result<Checked, GenError> {
        let (cfg, streams) = validated(args)?;
        let cores = CoreList::parse(&cfg.run.lcores)
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
        let replay = streams.iter().map(load_replay).collect::<Result<_, _>>()?;
        Ok(Checked {
            cfg,
            streams,
            cores,
            replay,
        })
    }

    /// Checks every port's spec chain against the registry (nothing opened).
    pub fn check_ports(&self, registry: &Registry) -> Result<(), GenError> {
        for (i, p) in self.cfg.ports.iter().enumerate() {
            registry.check(&p.spec).map_err(|e| port_error(i, e))?;
        }
        Ok(())
    }

    /// Every output is checked before anything starts: a run whose results
    /// cannot be written is not worth running.
    fn check_outputs(&self, args: &GenArgs) -> Result<(), GenError> {
        for (flag, path) in [
            ("--json", &args.json),
            ("--hlog", &args.hlog),
            ("--plot", &args.plot),
        ] {
            if let Some(p) = path {
                check_output(flag, p)?;
            }
        }
        for (i, p) in self.cfg.ports.iter().enumerate() {
            if let Ok(spec) = DevSpec::parse(&p.spec) {
                for (what, path) in spec_outputs(&spec) {
                    check_output(&format!("port[{i}].spec ({what})"), Path::new(&path))?;
                }
            }
        }
        Ok(())
    }
}

/// Loads (and checks) the frames a replay stream sends.
fn load_replay(s: &Stream) -> Result<Replay, GenError> {
    let Some(p) = &s.pcap else { return Ok(None) };
    let key = || format!("stream[{}].pcap", s.index);
    let recs = wirespeed::ethdev::pcap::read_file(p)
        .map_err(|e| ConfigError::new(key(), e.to_string()))?;
    if recs.is_empty() {
        return Err(ConfigError::new(key(), "the file holds no frames").into());
    }
    if let Some((i, r)) = recs
        .iter()
        .enumerate()
        .find(|(_, r)| r.data.len() > MAX_REPLAY_FRAME)
    {
        return Err(ConfigError::new(
            key(),
            format!(
                "record {i} is {} bytes, more than the generator sends",
                r.data.len()
            ),
        )
        .into());
    }
    Ok(Some(Arc::new(recs)))
}

/// Files a device spec writes: `pcap:PATH`, a model's `sink=pcap:PATH`, a
/// stamping sink's `stamps=PATH`.
fn spec_outputs(spec: &DevSpec) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if spec.driver == "pcap" {
        if let Some(a) = &spec.arg {
            v.push(("pcap file", a.clone()));
        }
    }
    if let Some(p) = spec.param("sink").and_then(|s| s.strip_prefix("pcap:")) {
        v.push(("sink", p.to_string()));
    }
    if let Some(p) = spec.param("stamps") {
        v.push(("stamps", p.to_string()));
    }
    v
}

/// Checks that `path` can be written (its directory exists and takes a new
/// file; a symlink is refused) without truncating what is there.
fn check_output(flag: &str, path: &Path) -> Result<(), GenError> {
    if path.is_dir() {
        return Err(ConfigError::new(
            flag,
            format!("{} is a directory; give a file name", path.display()),
        )
        .into());
    }
    wirespeed::eal::file::check_writable_nofollow(path).map_err(|e| {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| ".".into());
        ConfigError::new(
            flag,
            format!(
                "cannot write {}: {e} (does {dir} exist and is it writable?)",
                path.display()
            ),
        )
        .into()
    })
}

/// One port as the run uses it.
pub struct PortPlan {
    pub info: PortInfo,
    pub mac: MacAddr,
    pub conf: PortConfig,
    /// Offloads the streams and the port's stack use: checksums, TSO with
    /// TCP checksums (`tso = true`); VLAN insertion not included.
    pub offloads: u32,
    pub mtu: u32,
    pub txq: TxqConfig,
    /// The lcore (index) of each RX queue, when `rx_lcore` places them.
    pub rx_lcores: Option<Vec<usize>>,
    /// `xps`: entry `l` lists the TX queues lcore `l` sends on.
    pub xps: Option<Vec<Vec<u16>>>,
}

/// Everything a run needs, decided before it starts.
pub struct RunPlan {
    pub cfg: Config,
    pub streams: Vec<Stream>,
    pub cores: CoreList,
    pub replay: Vec<Replay>,
    /// The opened devices, handed to the runtime by [`super::launch`].
    pub devices: Vec<Box<dyn Port>>,
    pub ports: Vec<PortPlan>,
    /// Per lcore index: what it sends.
    pub senders: Vec<Vec<SenderPlan>>,
    /// Per stream: the counters of each of its senders.
    pub counters: Vec<Vec<Arc<SenderCounters>>>,
    /// Per stream: its target in packets per second (None = as fast as it goes).
    pub targets: Vec<Option<f64>>,
    pub arp: Option<Arc<ArpShared>>,
    /// Per port: its protocol stack, when it has an address.
    pub stacks: Vec<Option<StackSetup>>,
}

impl RunPlan {
    /// Validates, opens the ports and plans the senders.
    pub fn build(args: &GenArgs, registry: &Registry) -> Result<RunPlan, GenError> {
        let c = Checked::new(args)?;
        c.cores
            .validate()
            .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
        c.check_outputs(args)?;
        if args.interval_ms == 0 || args.interval_ms > 10_000 {
            return Err(ConfigError::new("--interval-ms", "must be 1..=10000").into());
        }
        // Device models keep their engine threads off these cores, and take
        // their DMA memory in the run's page mode.
        eal::lcore::claim(&c.cores);
        eal::dma::set_page_mode(c.cfg.run.pages);
        eal::signal::install();
        let mut devices = Vec::new();
        let mut ports = Vec::new();
        for (i, p) in c.cfg.ports.iter().enumerate() {
            let dev = registry.open(&p.spec).map_err(|e| port_error(i, e))?;
            let wants_rx = port_wants_rx(&c.streams, args.arp, i, p);
            ports.push(plan_port(i, p, dev.as_ref(), &c, wants_rx)?);
            devices.push(dev);
        }
        check_requests(&c, &ports)?;
        let (senders, counters, targets) = plan_senders(&c, &ports);
        let mut stacks = Vec::new();
        for (pi, p) in c.cfg.ports.iter().enumerate() {
            let mut su = stack_setup(pi, p, &ports[pi], &c.streams, args.arp)?;
            if let Some(su) = su.as_mut() {
                su.routing = p.routing(pi, &c.cfg)?;
            }
            stacks.push(su);
        }
        let arp = args.arp.then(|| arp_setup(&c.streams, &ports, &stacks));
        Ok(RunPlan {
            cfg: c.cfg,
            streams: c.streams,
            cores: c.cores,
            replay: c.replay,
            devices,
            ports,
            senders,
            counters,
            targets,
            arp,
            stacks,
        })
    }

    /// The lcores each stream is sent from: its own list or the run's; one
    /// for a replay (the file's order). A socket stream sends from each of
    /// its lcores through that lcore's replica of the port's stack (its own
    /// socket and source port: `src_port` + the sender's index).
    pub fn stream_cores(cores: &CoreList, s: &Stream) -> Vec<usize> {
        let all = cores.cores();
        match s.mode {
            StreamMode::Pcap => {
                let mut v = s.lcores.clone().unwrap_or_else(|| all.to_vec());
                v.truncate(1);
                v
            }
            _ => s.lcores.clone().unwrap_or_else(|| all.to_vec()),
        }
    }
}

/// A port has RX queues when something listens on it: a latency or
/// loop-back stream's return, ARP (`--arp`), or its stack.
fn port_wants_rx(streams: &[Stream], arp: bool, pi: usize, p: &PortSection) -> bool {
    streams
        .iter()
        .any(|s| (s.latency || s.rx_port != s.port) && s.rx_port == pi)
        || (arp && streams.iter().any(|s| s.port == pi))
        || p.ip.is_some()
}

/// `xps`: the XPS map as Linux's `/sys/class/net/DEV/queues/tx-N/xps_cpus`
/// sets it, listed per lcore (entry `l`: lcore `l`'s TX queues). The
/// runtime needs one owner per queue (a queue is one lcore's, lock-free),
/// so every queue appears exactly once and every lcore has one at least.
fn xps_map(
    i: usize,
    p: &PortSection,
    nl: usize,
    ntx: u16,
) -> Result<Option<Vec<Vec<u16>>>, GenError> {
    let Some(map) = &p.xps else {
        return Ok(None);
    };
    let bad = |why: String| -> GenError { ConfigError::new(format!("port[{i}].xps"), why).into() };
    if map.len() != nl {
        return Err(bad(format!(
            "{} entries for {nl} lcores: give each lcore its list of TX queues, e.g. xps = [[0, 2], [1, 3]]",
            map.len()
        )));
    }
    let mut owner = vec![None; ntx as usize];
    for (l, qs) in map.iter().enumerate() {
        if qs.is_empty() {
            return Err(bad(format!(
                "lcore {l} has no TX queue (every sending lcore needs one)"
            )));
        }
        for &q in qs {
            let Some(slot) = owner.get_mut(q as usize) else {
                return Err(bad(format!("queue {q} does not exist (tx_queues = {ntx})")));
            };
            if let Some(o) = slot.replace(l) {
                return Err(bad(format!(
                    "queue {q} is listed for lcores {o} and {l}: a queue has one owner"
                )));
            }
        }
    }
    if let Some(q) = owner.iter().position(Option::is_none) {
        return Err(bad(format!(
            "queue {q} belongs to no lcore (list each of the {ntx} queues once)"
        )));
    }
    Ok(Some(map.clone()))
}

/// Checks one opened port against what its streams ask (offloads, queues,
/// MTU) and fixes its configuration and queueing.
fn plan_port(
    i: usize,
    p: &PortSection,
    dev: &dyn Port,
    c: &Checked,
    wants_rx: bool,
) -> Result<PortPlan, GenError> {
    let info = dev.info();
    let offloads = port_offloads(i, p, &info, &c.streams)?;
    let nl = c.cores.len();
    let ntx = p.tx_queues.unwrap_or(nl as u16);
    if (ntx as usize) < nl {
        return Err(ConfigError::new(
            format!("port[{i}].tx_queues"),
            format!("{ntx} queue(s) for {nl} lcores: every lcore needs its own TX queue (XPS: one owner per queue)"),
        )
        .into());
    }
    let (nb_rx, rss) = super::rxq::plan_rx(i, p, &info, nl, ntx, wants_rx)?;
    let conf = PortConfig {
        nb_tx_queues: ntx,
        nb_rx_queues: nb_rx,
        tx_ring_size: p.ring_size,
        rx_ring_size: p.ring_size,
        tx_offloads: offloads,
        promiscuous: true,
        rss,
    };
    conf.validate(&p.spec, &info)
        .map_err(|e| port_error(i, e))?;
    let mtu = port_mtu(i, p, &info)?;
    let txq = port_queueing(i, p, &c.streams, c.cfg.run.burst as usize)?;
    let rx_lcores = rx_placement(i, p, &c.cores, conf.nb_rx_queues)?;
    let xps = xps_map(i, p, nl, ntx)?;
    Ok(PortPlan {
        rx_lcores,
        xps,
        mac: dev.mac(),
        info,
        conf,
        offloads: offloads & !ol::TX_VLAN,
        mtu,
        txq,
    })
}

/// `rx_lcore`: every RX queue of the port on that core (its lcore index).
/// The port's stack has a replica on every lcore: what one receives for
/// another's socket is steered there.
fn rx_placement(
    i: usize,
    p: &PortSection,
    cores: &CoreList,
    nb_rx: u16,
) -> Result<Option<Vec<usize>>, GenError> {
    let Some(core) = p.rx_lcore else {
        return Ok(None);
    };
    let key = format!("port[{i}].rx_lcore");
    let Some(l) = cores.cores().iter().position(|&c| c == core) else {
        return Err(ConfigError::new(
            key,
            format!("core {core} is not in run.lcores ({cores}); add it there or pick one of them"),
        )
        .into());
    };
    Ok(Some(vec![l; nb_rx as usize]))
}

/// The TX offloads a port is asked for (checksums, VLAN insertion, TSO),
/// checked against what it offers.
fn port_offloads(
    i: usize,
    p: &PortSection,
    info: &PortInfo,
    streams: &[Stream],
) -> Result<u32, GenError> {
    let csum = ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM;
    let mut off = 0;
    if p.offload {
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
        off = csum;
    }
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
    if p.tso {
        let tso = ol::TX_TSO | ol::TX_TCP_CKSUM;
        if info.tx_offload_capa & tso != tso {
            return Err(ConfigError::new(
                format!("port[{i}].tso"),
                format!(
                    "{} offers {} — no TCP segmentation offload; drop tso = true and the stack sends one MSS per frame",
                    p.spec,
                    wirespeed::ethdev::offload_names(info.tx_offload_capa)
                ),
            )
            .into());
        }
        off |= tso;
    }
    Ok(off)
}

/// The port's MTU: the device's largest frame less the Ethernet header and
/// one VLAN tag (igb's max_frame_size = MTU + ETH_HLEN + FCS + VLAN_HLEN),
/// 1500 unless the config says otherwise.
fn port_mtu(i: usize, p: &PortSection, info: &PortInfo) -> Result<u32, GenError> {
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
    Ok(mtu)
}

/// Queueing per port: noqueue for raw traffic (the generator sizes its
/// bursts by ring room), pfifo_fast + BQL when asked (or for socket streams).
fn port_queueing(
    pi: usize,
    p: &PortSection,
    streams: &[Stream],
    burst: usize,
) -> Result<TxqConfig, GenError> {
    let has_socket = streams.iter().any(|s| s.port == pi && s.mode.via_stack());
    let kind = match p.qdisc.as_deref() {
        None if has_socket => QdiscKind::PfifoFast,
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
    if p.txqueuelen == 0 {
        return Err(
            ConfigError::new(format!("port[{pi}].txqueuelen"), "must be at least 1").into(),
        );
    }
    let key = |f: &str| format!("port[{pi}].{f}");
    let mut priomap = wirespeed::netdev::qdisc::PRIO2BAND;
    if let Some(m) = &p.priomap {
        if m.len() != 16 {
            return Err(ConfigError::new(
                key("priomap"),
                format!(
                    "has {} entries; give 16 bands, one per priority 0..=15",
                    m.len()
                ),
            )
            .into());
        }
        if let Some(i) = m.iter().position(|&b| b > 2) {
            return Err(ConfigError::new(
                key("priomap"),
                format!(
                    "entry {i} is band {}; pfifo_fast has bands 0, 1 and 2",
                    m[i]
                ),
            )
            .into());
        }
        priomap.copy_from_slice(m);
    }
    let dev_tx_weight = p
        .dev_tx_weight
        .unwrap_or(TxqConfig::default().dev_tx_weight);
    if dev_tx_weight == 0 {
        return Err(ConfigError::new(key("dev_tx_weight"), "must be at least 1").into());
    }
    let mut bql = BqlConfig {
        enabled: p.bql.unwrap_or(kind == QdiscKind::PfifoFast),
        ..Default::default()
    };
    if let Some(b) = &p.byte_queue_limits {
        bql_limits(pi, b, &mut bql)?;
    }
    Ok(TxqConfig {
        qdisc: QdiscConfig {
            kind,
            txqueuelen: p.txqueuelen as usize,
            priomap,
        },
        bql,
        tx_burst: burst,
        dev_tx_weight,
        ..Default::default()
    })
}

/// `[port.byte_queue_limits]`: each limit at most `DQL_MAX_LIMIT` (the
/// sysfs write's `EINVAL`), `limit_min` not above `limit_max`.
fn bql_limits(
    pi: usize,
    b: &crate::netconf::BqlSection,
    bql: &mut BqlConfig,
) -> Result<(), GenError> {
    let key = |f: &str| format!("port[{pi}].byte_queue_limits.{f}");
    let max = wirespeed::netdev::dql::DQL_MAX_LIMIT;
    for (k, v) in [("limit_min", b.limit_min), ("limit_max", b.limit_max)] {
        if let Some(v) = v.filter(|&v| v > max) {
            return Err(
                ConfigError::new(key(k), format!("{v} is above DQL_MAX_LIMIT ({max})")).into(),
            );
        }
    }
    bql.limit_min = b.limit_min.unwrap_or(bql.limit_min);
    bql.limit_max = b.limit_max.unwrap_or(bql.limit_max);
    if bql.limit_min > bql.limit_max {
        return Err(ConfigError::new(
            key("limit_min"),
            format!("{} is above limit_max ({})", bql.limit_min, bql.limit_max),
        )
        .into());
    }
    bql.hold_time_ms = b.hold_time.unwrap_or(bql.hold_time_ms);
    if bql.hold_time_ms == 0 {
        return Err(ConfigError::new(key("hold_time"), "must be at least 1 (ms)").into());
    }
    Ok(())
}

/// The mean frame a stream puts on the wire (a socket stream's datagram
/// becomes one or more frames at the port's MTU).
pub(super) fn mean_wire(s: &Stream, mtu: u32) -> f64 {
    if s.mode == StreamMode::Socket {
        socket_wire(s.sizes.mean() as u32, mtu) as f64
    } else if s.mode == StreamMode::Tcp {
        // Full-sized segments: the MTU plus Ethernet header and FCS.
        (mtu + 18) as f64
    } else {
        s.sizes.mean()
    }
}

/// Impossible requests, explained before anything starts: frames above the
/// MTU, a percentage of no line rate, more than the line rate.
fn check_requests(c: &Checked, ports: &[PortPlan]) -> Result<(), GenError> {
    let mut port_load = vec![0.0f64; ports.len()];
    for s in &c.streams {
        let pp = &ports[s.port];
        if s.mode == StreamMode::Raw {
            check_raw_size(s, pp, &c.cfg.ports[s.port].spec)?;
        }
        let wire = mean_wire(s, pp.mtu);
        let line = pp.info.line_rate_bps;
        let spec = &c.cfg.ports[s.port].spec;
        if matches!(s.rate, Rate::Percent(_)) && line == 0 {
            return Err(ConfigError::new(
                format!("stream[{}].rate", s.index),
                format!("{spec} has no line rate; give the rate in pps or bit/s"),
            )
            .into());
        }
        if let Some(pps) = s.rate.pps(wire, line) {
            let l1 = pps * (wire + 20.0) * 8.0;
            port_load[s.port] += l1;
            if line > 0 && l1 > line as f64 * 1.000_001 {
                return Err(ConfigError::new(
                    format!("stream[{}].rate", s.index),
                    format!(
                        "{} is {:.3} Gbit/s on the wire (L1), above {spec}'s line rate of {:.3} Gbit/s",
                        s.rate.describe(),
                        l1 / 1e9,
                        line as f64 / 1e9
                    ),
                )
                .into());
            }
        }
    }
    for (pi, load) in port_load.iter().enumerate() {
        let line = ports[pi].info.line_rate_bps;
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
    Ok(())
}

/// A raw stream's largest frame must carry an IPv4 packet within the MTU:
/// the frame less FCS, Ethernet header and the VLAN tag when it has one.
fn check_raw_size(s: &Stream, pp: &PortPlan, spec: &str) -> Result<(), GenError> {
    let tagged =
        s.vlan != 0 || s.vlan_offload || s.fields.iter().any(|f| f.kind == FieldKind::Vlan);
    // Every 4-byte shim before the IP header: 802.1Q, an 802.1ad service
    // tag, MPLS label entries.
    let tag =
        if tagged { 4 } else { 0 } + 4 * (s.hdr.svlan != 0) as u32 + 4 * s.hdr.mpls.len() as u32;
    let mtu = pp.mtu;
    let ip_len = s.sizes.max().saturating_sub(4 + 14 + tag);
    if ip_len <= mtu {
        return Ok(());
    }
    let max_mtu = pp.info.max_frame.saturating_sub(18);
    let raise = if max_mtu > mtu {
        format!(" or raise port[{}].mtu (up to {max_mtu})", s.port)
    } else {
        format!(" ({mtu} is the largest MTU {spec} takes)")
    };
    Err(ConfigError::new(
        format!("stream[{}].size", s.index),
        format!(
            "{} frames carry {ip_len}-byte IPv4 packets, above port[{}]'s MTU of {mtu}; lower the size to {}{raise}",
            s.sizes.describe(),
            s.port,
            mtu + 4 + 14 + tag,
        ),
    )
    .into())
}

/// Senders per lcore, each stream split over its lcores: its quota (the
/// stream's count, else the run's spread over the streams), its rate share.
#[allow(clippy::type_complexity)]
fn plan_senders(
    c: &Checked,
    ports: &[PortPlan],
) -> (
    Vec<Vec<SenderPlan>>,
    Vec<Vec<Arc<SenderCounters>>>,
    Vec<Option<f64>>,
) {
    let core_ids = c.cores.cores();
    let nstreams = c.streams.len() as u64;
    let mut counters = vec![Vec::new(); c.streams.len()];
    let mut targets = Vec::new();
    let mut plans: Vec<Vec<SenderPlan>> = vec![Vec::new(); core_ids.len()];
    for s in &c.streams {
        let senders = RunPlan::stream_cores(&c.cores, s);
        let k = senders.len() as u64;
        let total = if s.count > 0 {
            s.count
        } else if c.cfg.run.count > 0 {
            c.cfg.run.count / nstreams + u64::from((s.index as u64) < c.cfg.run.count % nstreams)
        } else {
            0
        };
        let pp = &ports[s.port];
        let line = pp.info.line_rate_bps;
        // A shaped stream's rate holds inside its bursts and on windows,
        // not over its whole active time: no whole-run target to check.
        let shaped = s.burst > 0 || s.on_ns > 0 || !s.profile.is_empty();
        targets.push(if shaped {
            None
        } else {
            s.rate.pps(mean_wire(s, pp.mtu), line)
        });
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
            let cs = Arc::new(SenderCounters::default());
            counters[s.index].push(cs.clone());
            plans[l].push(SenderPlan {
                stream: s.index,
                quota,
                share: 1.0 / k as f64,
                sender_id: j as u8,
                senders: k as u8,
                counters: cs,
                offload: pp.offloads & (ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM) != 0,
                line_bps: line,
            });
        }
    }
    (plans, counters, targets)
}

/// `--arp`: one entry per (port, destination) the streams send to, asking
/// for the destination on the port's link, else for the port's gateway.
fn arp_setup(
    streams: &[Stream],
    ports: &[PortPlan],
    stacks: &[Option<StackSetup>],
) -> Arc<ArpShared> {
    let mut entries: Vec<ArpEntry> = Vec::new();
    for s in streams {
        if entries
            .iter()
            .any(|e| e.port == s.port && e.dst == s.dst_ip)
        {
            continue;
        }
        let next_hop = match stacks[s.port].as_ref().map(|su| &su.ip) {
            Some(ip) if !on_link(ip, s.dst_ip) => ip.gateway.unwrap_or(s.dst_ip),
            _ => s.dst_ip,
        };
        entries.push(ArpEntry {
            port: s.port,
            dst: s.dst_ip,
            next_hop,
            mac: None,
        });
    }
    Arc::new(ArpShared {
        entries: Mutex::new(entries),
        port_macs: ports.iter().map(|p| p.mac).collect(),
        done: AtomicBool::new(false),
        failed: Mutex::new(None),
    })
}

/// Whether `dst` is inside the port's prefix.
fn on_link(ip: &PortIp, dst: Ipv4Addr) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(ip.prefix_len))
        .unwrap_or(0);
    u32::from(ip.addr) & mask == u32::from(dst) & mask
}

/// The stack a port gets: its own address, or for `--arp` on a port
/// without one, the first of its streams' source addresses (every
/// destination on the link, as the streams' frames assume).
fn stack_setup(
    pi: usize,
    p: &PortSection,
    pp: &PortPlan,
    streams: &[Stream],
    arp: bool,
) -> Result<Option<StackSetup>, GenError> {
    let ip = match p.stack_ip(pi)? {
        Some(ip) => ip,
        None => match streams.iter().find(|s| s.port == pi).filter(|_| arp) {
            Some(s) => PortIp {
                addr: s.src_ip,
                prefix_len: 0,
                gateway: None,
            },
            None => return Ok(None),
        },
    };
    Ok(Some(StackSetup {
        ip,
        mac: pp.mac,
        mtu: pp.mtu,
        tx_offloads: pp.offloads,
        noarp: pp.info.driver == "lo",
        neighbours: p.static_neighbours(pi)?,
        routing: Default::default(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn txq(extra: &str) -> Result<wirespeed::netdev::TxqConfig, String> {
        let c = Config::parse(&format!("[[port]]\nspec = \"null\"\n{extra}"), "t.toml").unwrap();
        super::port_queueing(0, &c.ports[0], &[], 32).map_err(|e| e.to_string())
    }

    /// `dev_tx_weight`, `[port.byte_queue_limits]` and `priomap` reach the
    /// TX queues' config (the netdev tests show each one changing what a
    /// queue does); bad values name their key.
    #[test]
    fn queue_knobs_map_to_the_txq_config() {
        let d = txq("").unwrap();
        assert_eq!(d.dev_tx_weight, 64);
        assert_eq!(d.qdisc.priomap, wirespeed::netdev::qdisc::PRIO2BAND);
        let t = txq("dev_tx_weight = 16\nqdisc = \"pfifo_fast\"\ntxqueuelen = 50\npriomap = [0,0,0,0,1,1,1,1,2,2,2,2,2,2,2,2]\n[port.byte_queue_limits]\nlimit_min = 3000\nlimit_max = 90000\nhold_time = 250\n").unwrap();
        assert_eq!(t.dev_tx_weight, 16);
        assert_eq!(t.qdisc.txqueuelen, 50);
        assert_eq!(t.qdisc.priomap[..5], [0, 0, 0, 0, 1]);
        assert_eq!(
            (
                t.bql.enabled,
                t.bql.limit_min,
                t.bql.limit_max,
                t.bql.hold_time_ms
            ),
            (true, 3000, 90000, 250)
        );
        let bad = [
            ("dev_tx_weight = 0", "port[0].dev_tx_weight"),
            ("priomap = [0, 1]", "port[0].priomap"),
            (
                "priomap = [0,0,0,0,1,1,1,1,2,2,2,2,2,2,2,3]",
                "port[0].priomap",
            ),
            (
                "[port.byte_queue_limits]\nlimit_min = 9000\nlimit_max = 100",
                "port[0].byte_queue_limits.limit_min",
            ),
            (
                "[port.byte_queue_limits]\nlimit_max = 4000000000",
                "port[0].byte_queue_limits.limit_max",
            ),
            (
                "[port.byte_queue_limits]\nhold_time = 0",
                "port[0].byte_queue_limits.hold_time",
            ),
        ];
        for (extra, key) in bad {
            let e = txq(extra).unwrap_err();
            assert!(e.contains(&format!("{key}:")), "{extra}: {e}");
        }
    }
}
