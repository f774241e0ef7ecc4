//! The generator's configuration: TOML (serde, unknown keys rejected), CLI
//! overrides, and validation that names the key and the fix.

use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::Path;
use wirespeed::ethdev::MacAddr;

mod headers;
pub use headers::{field_fits, ArpFixed, Headers, TcpFixed, Tunnel, TunnelKind, L3, L4};

/// A configuration or usage error: exit code 2, one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {why}")]
pub struct ConfigError {
    pub key: String,
    pub why: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, why: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            why: why.into(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSection>,
    #[serde(default, rename = "stream")]
    pub streams: Vec<StreamSection>,
    /// `[[rule]]`: policy-routing rules for every port's stack
    /// ([`crate::netconf::RuleSection`]).
    #[serde(default, rename = "rule")]
    pub rules: Vec<crate::netconf::RuleSection>,
}

/// `[run]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// DPDK-style core list; one lcore per core.
    #[serde(default = "default_lcores")]
    pub lcores: String,
    /// Total packets to send (over all lcores); 0 = no limit.
    #[serde(default)]
    pub count: u64,
    /// Seconds to run; 0 = no limit (then `count` or a signal ends the run).
    #[serde(default)]
    pub duration: f64,
    /// "auto" (hugepages, else 4 KiB with a warning), "huge", or "small".
    #[serde(default)]
    pub pages: wirespeed::eal::PageMode,
    /// Buffers per lcore mempool.
    #[serde(default = "default_pool")]
    pub mempool_size: u32,
    /// Packets per burst (1..=256).
    #[serde(default = "default_burst")]
    pub burst: u16,
    /// Unix socket for live control (`--control`); none by default.
    #[serde(default)]
    pub control: Option<std::path::PathBuf>,
}

fn default_lcores() -> String {
    "0".into()
}
fn default_pool() -> u32 {
    8192
}
fn default_burst() -> u16 {
    32
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            lcores: default_lcores(),
            count: 0,
            duration: 0.0,
            pages: Default::default(),
            mempool_size: default_pool(),
            burst: default_burst(),
            control: None,
        }
    }
}

/// `[[port]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// Device spec, e.g. `null`, `pcap:out.pcap`, `ring:a`, `ice-model`.
    pub spec: String,
    /// TX queues; default: one per lcore.
    #[serde(default)]
    pub tx_queues: Option<u16>,
    #[serde(default = "default_ring")]
    pub ring_size: u16,
    /// Request checksum offload from the port when it has it.
    #[serde(default)]
    pub offload: bool,
    /// TCP segmentation offload for the port's stack (`mode = "tcp"`
    /// streams): the stack hands the port super-segments of up to 64 KiB
    /// with the MSS (`sk_can_gso`), the NIC cuts them and fills every
    /// segment's IPv4 and TCP checksums (`TX_TSO` + `TX_TCP_CKSUM`; igb,
    /// igb-model, af_packet). Without it the stack sends one MSS per
    /// frame and checksums it in software.
    #[serde(default)]
    pub tso: bool,
    /// Queueing discipline of every TX queue: "noqueue" (straight to the
    /// driver, the raw generator's default) or "pfifo_fast" (3 bands by
    /// priority; the default when a socket stream uses the port).
    #[serde(default)]
    pub qdisc: Option<String>,
    /// Byte queue limits on the TX queues (default: on with pfifo_fast, off with noqueue).
    #[serde(default)]
    pub bql: Option<bool>,
    /// pfifo_fast's packet limit (Linux txqueuelen).
    #[serde(default = "default_txqueuelen")]
    pub txqueuelen: u32,
    /// The port's IPv4 address with prefix ("10.0.0.1/24"): gives the port a
    /// protocol stack (ARP, ICMP echo, UDP sockets) for socket-mode streams.
    #[serde(default)]
    pub ip: Option<String>,
    /// Default gateway for the port's stack.
    #[serde(default)]
    pub gateway: Option<String>,
    /// The port's MTU: largest IPv4 packet in one frame (default 1500, as
    /// Linux's `ETH_DATA_LEN`). Raw frames above it are refused, the stack
    /// fragments datagrams to it; at most the device's largest frame less
    /// the Ethernet header and one VLAN tag.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The core (one of `run.lcores`) that polls every RX queue of the
    /// port; default: RX queue q on the q-th lcore. Latency returns can so be
    /// received on another core than the one that sends.
    #[serde(default)]
    pub rx_lcore: Option<usize>,
    /// RX queues of the port; default: one per lcore with `rss`, else one
    /// (or one per TX queue on software ports). RX queue q is polled by
    /// lcore q mod lcores unless `rx_lcore` says otherwise.
    #[serde(default)]
    pub rx_queues: Option<u16>,
    /// Receive-side scaling (ports that have it: igb, igb-model): the NIC
    /// hashes each frame (Toeplitz) and its redirection table spreads the
    /// flows over the RX queues, so each lcore receives its share.
    #[serde(default)]
    pub rss: bool,
    /// The XPS map (`xps_cpus` of each `tx-N` queue, listed per lcore):
    /// entry `l` is the TX queues lcore `l` sends on; each queue exactly
    /// once. Default: queue `q` to lcore `q % lcores`.
    #[serde(default)]
    pub xps: Option<Vec<Vec<u16>>>,
    /// The 40-byte Toeplitz key as hex ("6d5a56da…", ':' between bytes
    /// allowed); default: the Microsoft/Intel key DPDK and Linux use.
    #[serde(default)]
    pub rss_key: Option<String>,
    /// The redirection table, one RX queue per entry (as many entries as
    /// the port has: 128 on igb); default: round-robin over the RX queues.
    #[serde(default)]
    pub rss_reta: Option<Vec<u16>>,
    /// Packet types hashed: any of "ipv4", "ipv4-tcp", "ipv4-udp";
    /// default: all the port hashes.
    #[serde(default)]
    pub rss_hash: Option<Vec<String>>,
    /// Static neighbours of the port's stack (`ip neigh add … nud
    /// permanent`): never probed, never collected.
    #[serde(default)]
    pub neigh: Vec<NeighSection>,
    /// Routes of the port's stack (`ip route add …`,
    /// [`crate::netconf::RouteSection`]).
    #[serde(default)]
    pub route: Vec<crate::netconf::RouteSection>,
    /// `dev_tx_weight` (`net.core.dev_tx_weight`): packets per qdisc run.
    #[serde(default)]
    pub dev_tx_weight: Option<usize>,
    /// BQL limits of the TX queues (`byte_queue_limits/*`).
    #[serde(default)]
    pub byte_queue_limits: Option<crate::netconf::BqlSection>,
    /// pfifo_fast `priomap`: 16 bands (0..=2) by `priority & 15`.
    #[serde(default)]
    pub priomap: Option<Vec<u8>>,
    /// ARP parameters of the port's stack (`net.ipv4.neigh.*`).
    #[serde(default)]
    pub neigh_parms: Option<crate::netconf::NeighParmsSection>,
    /// `net.core.wmem_max`: the most `SO_SNDBUF` takes on the port's stack.
    #[serde(default)]
    pub wmem_max: Option<u32>,
    /// `force_igmp_version` of the port's stack: 2 (default) or 3.
    #[serde(default)]
    pub force_igmp_version: Option<u8>,
}

/// `[[port.neigh]]`: `ip = "10.0.0.2"`, `mac = "02:00:00:00:00:02"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighSection {
    pub ip: String,
    pub mac: String,
}

impl PortSection {
    /// The static neighbours, parsed; errors name `port[i].neigh[j].KEY`.
    pub fn static_neighbours(&self, i: usize) -> Result<Vec<(Ipv4Addr, MacAddr)>, ConfigError> {
        self.neigh
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let k = |f: &str| format!("port[{i}].neigh[{j}].{f}");
                let ip: Ipv4Addr = n.ip.parse().map_err(|_| {
                    ConfigError::new(k("ip"), format!("'{}' is not an IPv4 address", n.ip))
                })?;
                let mac: MacAddr = n
                    .mac
                    .parse()
                    .map_err(|e: String| ConfigError::new(k("mac"), e))?;
                if self.ip.is_none() {
                    return Err(ConfigError::new(
                        k("ip"),
                        "static neighbours belong to the port's stack: give the port an ip",
                    ));
                }
                Ok((ip, mac))
            })
            .collect()
    }
}

/// A port's stack address, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortIp {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
}

impl PortSection {
    /// The port's `[[port.route]]` and the `[[rule]]`s for its stack;
    /// errors name `port[i].route[j].KEY` / `rule[k].KEY`.
    pub fn routing(
        &self,
        i: usize,
        c: &Config,
    ) -> Result<crate::netconf::PortRouting, ConfigError> {
        let Some(ip) = self.stack_ip(i)? else {
            let key = if !self.route.is_empty() {
                Some("route[0].prefix")
            } else if self.neigh_parms.is_some() {
                Some("neigh_parms")
            } else if self.wmem_max.is_some() {
                Some("wmem_max")
            } else if self.force_igmp_version.is_some() {
                Some("force_igmp_version")
            } else {
                None
            };
            if let Some(key) = key {
                return Err(ConfigError::new(
                    format!("port[{i}].{key}"),
                    "belongs to the port's stack: give the port an ip",
                ));
            }
            return Ok(Default::default());
        };
        let (routes, rules) =
            crate::netconf::port_routing(&self.route, &c.rules, i, c.ports.len())?;
        if !routes.is_empty() || !rules.is_empty() {
            crate::netconf::probe_stack(i, &ip, &routes, &rules)?;
        }
        let neigh = self.neigh_parms.as_ref().map(|n| n.params(i)).transpose()?;
        if let Some(v) = self.force_igmp_version.filter(|v| !matches!(v, 2 | 3)) {
            return Err(ConfigError::new(
                format!("port[{i}].force_igmp_version"),
                format!("{v} is not 2 (IGMPv2 reports) or 3 (IGMPv3, RFC 3376)"),
            ));
        }
        if self.wmem_max == Some(0) {
            return Err(ConfigError::new(
                format!("port[{i}].wmem_max"),
                "must be at least 1 (bytes)",
            ));
        }
        Ok(crate::netconf::PortRouting {
            routes,
            rules,
            neigh,
            wmem_max: self.wmem_max,
            force_igmp_version: self.force_igmp_version,
        })
    }

    /// Parses `ip` / `gateway` (None when the port has no stack).
    pub fn stack_ip(&self, i: usize) -> Result<Option<PortIp>, ConfigError> {
        let Some(t) = &self.ip else {
            if self.gateway.is_some() {
                return Err(ConfigError::new(
                    format!("port[{i}].gateway"),
                    "needs port ip = \"A.B.C.D/LEN\" as well",
                ));
            }
            return Ok(None);
        };
        let bad = || {
            ConfigError::new(
                format!("port[{i}].ip"),
                format!("'{t}' is not an address with prefix, e.g. \"10.0.0.1/24\""),
            )
        };
        let (a, l) = t.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let prefix_len: u8 = l.trim().parse().map_err(|_| bad())?;
        if prefix_len > 32 {
            return Err(bad());
        }
        let gateway = match &self.gateway {
            None => None,
            Some(g) => Some(g.parse().map_err(|_| {
                ConfigError::new(
                    format!("port[{i}].gateway"),
                    format!("'{g}' is not an IPv4 address"),
                )
            })?),
        };
        Ok(Some(PortIp {
            addr,
            prefix_len,
            gateway,
        }))
    }
}

fn default_txqueuelen() -> u32 {
    1000
}

fn default_ring() -> u16 {
    1024
}

/// `[[stream]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    /// A name for reports (default `stream<i>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Index of the port in `[[port]]` that sends it.
    #[serde(default)]
    pub port: usize,
    /// Lcores that send it (a subset of run.lcores; default: all).
    #[serde(default)]
    pub lcores: Option<String>,
    /// "raw" (prebuilt headers), "socket" (UdpSocket, the whole stack) or "pcap" (replay `pcap`).
    #[serde(default)]
    pub mode: StreamMode,
    /// Frame size on the wire including FCS: a number (64), or "MIN-MAX" for a uniform random size.
    #[serde(default)]
    pub size: Option<SizeField>,
    /// IMIX profile: "simple" (64:7, 594:4, 1518:1), "tolly", or a list of [size, weight] pairs.
    #[serde(default)]
    pub imix: Option<ImixField>,
    /// "1 Mpps", "500 kpps", "9.5 Gbit/s" (L2), "10 Gbit/s L1", "90%" (of line rate, L1), or "line".
    #[serde(default)]
    pub rate: Option<String>,
    /// Packets to send (all lcores of the stream together); 0 = no limit.
    #[serde(default)]
    pub count: u64,
    /// Seconds to send; 0 = no limit.
    #[serde(default)]
    pub duration: f64,
    /// Seconds to wait after the run starts.
    #[serde(default)]
    pub start_delay: f64,
    /// Carry a sequence number and TX timestamp in the payload and measure latency on return.
    #[serde(default)]
    pub latency: bool,
    /// Port whose RX gets the stream back (default: the sending port, e.g. model loopback).
    #[serde(default)]
    pub rx_port: Option<usize>,
    /// Linux skb priority / SO_PRIORITY (0..=15): selects the qdisc band.
    #[serde(default)]
    pub priority: u8,
    /// pcap file to replay (mode = "pcap").
    #[serde(default)]
    pub pcap: Option<String>,
    /// pcap replay timing: "original" (the file's gaps), "fast", or paced by `rate`.
    #[serde(default)]
    pub timing: Option<String>,
    /// pcap replay: how many times to play the file (0 = until count/duration ends the stream).
    #[serde(default = "default_loops")]
    pub loops: u32,
    /// UDP payload: "incrementing" (default), "zeros", "random", or "hex:DEADBEEF".
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default = "default_src_mac")]
    pub src_mac: String,
    #[serde(default = "default_dst_mac")]
    pub dst_mac: String,
    #[serde(default = "default_src_ip")]
    pub src_ip: String,
    #[serde(default = "default_dst_ip")]
    pub dst_ip: String,
    #[serde(default = "default_sport")]
    pub src_port: u16,
    #[serde(default = "default_dport")]
    pub dst_port: u16,
    /// 802.1Q VLAN id (0 = untagged).
    #[serde(default)]
    pub vlan: u16,
    /// Let the NIC insert the VLAN tag (TX_VLAN offload) instead of the template.
    #[serde(default)]
    pub vlan_offload: bool,
    #[serde(default)]
    pub tos: u8,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Fields that vary per packet.
    #[serde(default, rename = "field")]
    pub fields: Vec<FieldSection>,
    /// Bursts (TRex's single/multi-burst): packets per burst (0 = none) …
    #[serde(default)]
    pub burst: u64,
    /// … how many bursts (default 1; 0 = until count/duration end the stream) …
    #[serde(default)]
    pub bursts: Option<u64>,
    /// … and the idle time after each, in ms.
    #[serde(default)]
    pub burst_gap_ms: f64,
    /// On/off windows from the stream's start, in ms (both or neither).
    #[serde(default)]
    pub on_ms: f64,
    #[serde(default)]
    pub off_ms: f64,
    /// A rate profile: these rates one after another, `step_s` each (the
    /// last one holds) …
    #[serde(default)]
    pub rate_steps: Vec<String>,
    #[serde(default)]
    pub step_s: f64,
    /// … or a ramp from `rate` to `ramp_to` over `ramp_s` (100 steps).
    #[serde(default)]
    pub ramp_to: Option<String>,
    #[serde(default)]
    pub ramp_s: f64,
    /// Start when the stream of this name (an earlier one) has ended, its
    /// start_delay counted from then (TRex's `next`).
    #[serde(default)]
    pub after: Option<String>,
    /// Seed of the stream's random fields and sizes (the same seed gives
    /// the same frames; default: from the stream's index).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Flow count: the stream's varying fields are cut to a set of this
    /// many flows — the first N tuples of the field sequence — sent in
    /// turn, over and over (see [`Stream::flows`]) …
    #[serde(default)]
    pub flows: Option<u64>,
    /// … and each set lives this long, in ms (0 = for ever): then the next
    /// N tuples of the field sequence replace it (flow churn).
    #[serde(default)]
    pub flow_lifetime_ms: f64,
    /// mode = "tcp": connections the stream opens (1..=64).
    #[serde(default)]
    pub connections: Option<u32>,
    /// mode = "tcp": bytes each connection sends before it closes (0 = until
    /// the stream's or the run's duration ends it).
    #[serde(default)]
    pub bytes: u64,
    /// mode = "tcp": send without copying (iperf3's `-Z`): the write's
    /// bytes are built once into buffers and spliced into each
    /// connection's write queue by reference (`TcpSocket::send_splice`).
    #[serde(default)]
    pub zerocopy: bool,
    /// Raw header stack (see `headers`): "ipv4" (default), "ipv6" or "arp" …
    #[serde(default)]
    pub l3: Option<String>,
    /// … or as `ip = 4 | 6`.
    #[serde(default)]
    pub ip: Option<u8>,
    /// "udp" (default), "tcp" or "icmp" (echo request).
    #[serde(default)]
    pub l4: Option<String>,
    /// l4 = "tcp": flags as letters of FSRPAUEC (default "S"), sequence,
    /// acknowledgment (needs A), window (default 65535).
    #[serde(default)]
    pub tcp_flags: Option<String>,
    #[serde(default)]
    pub tcp_seq: Option<i64>,
    #[serde(default)]
    pub tcp_ack: Option<i64>,
    #[serde(default)]
    pub tcp_window: Option<i64>,
    /// l4 = "icmp": the echo identifier and sequence number.
    #[serde(default)]
    pub icmp_id: Option<i64>,
    #[serde(default)]
    pub icmp_seq: Option<i64>,
    /// l3 = "ipv6": addresses, hop limit (default ttl), traffic class
    /// (default tos), 20-bit flow label.
    #[serde(default)]
    pub src_ip6: Option<String>,
    #[serde(default)]
    pub dst_ip6: Option<String>,
    #[serde(default)]
    pub hop_limit: Option<i64>,
    #[serde(default)]
    pub traffic_class: Option<i64>,
    #[serde(default)]
    pub flow_label: Option<i64>,
    /// 802.1ad service tag (TPID 0x88a8) outside the 802.1Q `vlan`.
    #[serde(default)]
    pub svlan: Option<i64>,
    /// MPLS labels, outermost first; `mpls_ttl` for each (default 64).
    #[serde(default)]
    pub mpls: Vec<i64>,
    #[serde(default)]
    pub mpls_ttl: Option<i64>,
    /// "vxlan" or "gre": an outer IPv4 (tunnel_src → tunnel_dst) around the frame.
    #[serde(default)]
    pub tunnel: Option<String>,
    #[serde(default)]
    pub vni: Option<i64>,
    #[serde(default)]
    pub tunnel_src: Option<String>,
    #[serde(default)]
    pub tunnel_dst: Option<String>,
    #[serde(default)]
    pub tunnel_ttl: Option<i64>,
    #[serde(default)]
    pub tunnel_sport: Option<i64>,
    /// GRE: "eth" (0x6558, default) or "ip" (0x0800/0x86DD).
    #[serde(default)]
    pub gre_proto: Option<String>,
    #[serde(default)]
    pub inner_src_mac: Option<String>,
    #[serde(default)]
    pub inner_dst_mac: Option<String>,
    /// l3 = "arp": "request" (default) or "reply", and the fields.
    /// (The numeric header keys are read as integers and range-checked in
    /// `headers`, so a bad one is an error naming it.)
    #[serde(default)]
    pub arp_op: Option<String>,
    #[serde(default)]
    pub arp_sender_mac: Option<String>,
    #[serde(default)]
    pub arp_sender_ip: Option<String>,
    #[serde(default)]
    pub arp_target_mac: Option<String>,
    #[serde(default)]
    pub arp_target_ip: Option<String>,
    /// IPv4 options: "rr", "ts", "router-alert" or "hex:…".
    #[serde(default)]
    pub ip_options: Option<String>,
}

/// How a stream makes its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamMode {
    #[default]
    Raw,
    Socket,
    Pcap,
    /// Bulk TCP connections on the port's stack (`tcp_sendmsg` …
    /// `__tcp_transmit_skb`), iperf3-like.
    Tcp,
}

impl StreamMode {
    /// The stream sends through its port's stack (a socket: UDP or TCP),
    /// from each of its lcores' replicas of it.
    pub fn via_stack(self) -> bool {
        matches!(self, StreamMode::Socket | StreamMode::Tcp)
    }
}

/// `size = 64` or `size = "64-1518"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeField {
    Fixed(u32),
    Text(String),
}

/// `imix = "simple"` or `imix = [[64, 7], [594, 4], [1518, 1]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ImixField {
    Named(String),
    Custom(Vec<[u32; 2]>),
}

/// `[[stream.field]]`: a header field that varies per packet (TRex's field engine,
/// pktgen's range mode).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSection {
    /// src_mac, dst_mac, src_ip, dst_ip, src_port, dst_port, vlan, tos.
    pub name: String,
    /// "inc", "dec" or "random".
    #[serde(default = "default_op")]
    pub op: String,
    /// Smallest value (same notation as the fixed field: "10.0.0.1", "02:00:00:00:00:01", 1000).
    #[serde(default)]
    pub min: Option<toml::Value>,
    #[serde(default)]
    pub max: Option<toml::Value>,
    /// Instead of min/max: a table of explicit values in the same notation
    /// (`values = ["10.0.0.1", "10.0.0.7"]`); `inc`/`dec` walk it in order
    /// (by `step` entries), `random` picks entries with the stream's seed.
    #[serde(default)]
    pub values: Option<Vec<toml::Value>>,
    #[serde(default = "default_step")]
    pub step: u64,
    /// Odometer: step only when the field before this one wraps (two
    /// 100-value fields nested give 10 000 flows).
    #[serde(default)]
    pub nest: bool,
}

fn default_op() -> String {
    "inc".into()
}
fn default_step() -> u64 {
    1
}
fn default_loops() -> u32 {
    1
}

fn default_size() -> u32 {
    64
}
fn default_src_mac() -> String {
    "02:00:00:00:00:01".into()
}
fn default_dst_mac() -> String {
    "02:00:00:00:00:02".into()
}
fn default_src_ip() -> String {
    "198.18.0.1".into()
}
fn default_dst_ip() -> String {
    "198.18.0.2".into()
}
fn default_sport() -> u16 {
    1024
}
fn default_dport() -> u16 {
    1024
}
fn default_ttl() -> u8 {
    64
}

impl Default for StreamSection {
    fn default() -> Self {
        StreamSection {
            name: None,
            port: 0,
            lcores: None,
            mode: StreamMode::Raw,
            size: None,
            imix: None,
            rate: None,
            count: 0,
            duration: 0.0,
            start_delay: 0.0,
            latency: false,
            rx_port: None,
            priority: 0,
            pcap: None,
            timing: None,
            loops: default_loops(),
            payload: None,
            src_mac: default_src_mac(),
            dst_mac: default_dst_mac(),
            src_ip: default_src_ip(),
            dst_ip: default_dst_ip(),
            src_port: default_sport(),
            dst_port: default_dport(),
            vlan: 0,
            vlan_offload: false,
            tos: 0,
            ttl: default_ttl(),
            fields: Vec::new(),
            connections: None,
            zerocopy: false,
            rate_steps: Vec::new(),
            step_s: 0.0,
            ramp_to: None,
            ramp_s: 0.0,
            after: None,
            seed: None,
            flows: None,
            flow_lifetime_ms: 0.0,
            bytes: 0,
            burst: 0,
            bursts: None,
            burst_gap_ms: 0.0,
            on_ms: 0.0,
            off_ms: 0.0,
            l3: None,
            ip: None,
            l4: None,
            tcp_flags: None,
            tcp_seq: None,
            tcp_ack: None,
            tcp_window: None,
            icmp_id: None,
            icmp_seq: None,
            src_ip6: None,
            dst_ip6: None,
            hop_limit: None,
            traffic_class: None,
            flow_label: None,
            svlan: None,
            mpls: Vec::new(),
            mpls_ttl: None,
            tunnel: None,
            vni: None,
            tunnel_src: None,
            tunnel_dst: None,
            tunnel_ttl: None,
            tunnel_sport: None,
            gre_proto: None,
            inner_src_mac: None,
            inner_dst_mac: None,
            arp_op: None,
            arp_sender_mac: None,
            arp_sender_ip: None,
            arp_target_mac: None,
            arp_target_ip: None,
            ip_options: None,
        }
    }
}

/// Frame sizes of a stream (wire sizes with FCS).
#[derive(Debug, Clone, PartialEq)]
pub enum Sizes {
    Fixed(u32),
    /// Uniformly random in min..=max.
    Uniform(u32, u32),
    /// (size, weight) pairs, spread evenly (smooth weighted round robin).
    Imix(Vec<(u32, u32)>),
}

impl Sizes {
    pub fn max(&self) -> u32 {
        match self {
            Sizes::Fixed(s) => *s,
            Sizes::Uniform(_, b) => *b,
            Sizes::Imix(v) => v.iter().map(|x| x.0).max().unwrap_or(64),
        }
    }
    pub fn min(&self) -> u32 {
        match self {
            Sizes::Fixed(s) => *s,
            Sizes::Uniform(a, _) => *a,
            Sizes::Imix(v) => v.iter().map(|x| x.0).min().unwrap_or(64),
        }
    }
    /// Mean wire size.
    pub fn mean(&self) -> f64 {
        match self {
            Sizes::Fixed(s) => *s as f64,
            Sizes::Uniform(a, b) => (*a as f64 + *b as f64) / 2.0,
            Sizes::Imix(v) => {
                let w: f64 = v.iter().map(|x| x.1 as f64).sum();
                v.iter().map(|x| x.0 as f64 * x.1 as f64).sum::<f64>() / w
            }
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Sizes::Fixed(s) => format!("{s} B"),
            Sizes::Uniform(a, b) => format!("{a}-{b} B uniform"),
            Sizes::Imix(v) => format!(
                "IMIX {}",
                v.iter()
                    .map(|(s, w)| format!("{s}:{w}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// A target rate. Bit rates are per frame including FCS (L2) or FCS + preamble + IFG (L1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the port takes.
    Line,
    Pps(f64),
    Bps {
        bps: f64,
        l1: bool,
    },
    /// Percent of the port's line rate (L1).
    Percent(f64),
}

impl Rate {
    /// Parses "1 Mpps", "500kpps", "9.5 Gbit/s", "10 Gbps L1", "90%", "line".
    pub fn parse(s: &str) -> Result<Rate, String> {
        let t = s.trim().to_ascii_lowercase().replace(' ', "");
        if t == "line" {
            return Ok(Rate::Line);
        }
        let bad = || {
            format!("'{s}' is not a rate; use e.g. \"1 Mpps\", \"9.5 Gbit/s\", \"10 Gbit/s L1\", \"90%\" or \"line\"")
        };
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!(
                    "'{s}': a percentage of line rate must be in (0, 100]"
                ));
            }
            return Ok(Rate::Percent(v));
        }
        let num_end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e'))
            .ok_or_else(bad)?;
        let (num, unit) = t.split_at(num_end);
        let v: f64 = num.parse().map_err(|_| bad())?;
        let (mult, rest) = match unit.chars().next() {
            Some('k') => (1e3, &unit[1..]),
            Some('m') => (1e6, &unit[1..]),
            Some('g') => (1e9, &unit[1..]),
            Some('t') => (1e12, &unit[1..]),
            _ => (1.0, unit),
        };
        let v = v * mult;
        if !(v > 0.0 && v.is_finite()) {
            return Err(format!("'{s}': the rate must be above zero"));
        }
        match rest {
            "pps" => Ok(Rate::Pps(v)),
            "bps" | "bit/s" | "bpsl2" | "bit/sl2" => Ok(Rate::Bps { bps: v, l1: false }),
            "bpsl1" | "bit/sl1" => Ok(Rate::Bps { bps: v, l1: true }),
            _ => Err(bad()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Rate::Line => "line rate (as fast as the port takes)".into(),
            Rate::Pps(p) => format!("{} pps", si(*p)),
            Rate::Bps { bps, l1 } => format!("{}bit/s {}", si(*bps), if *l1 { "L1" } else { "L2" }),
            Rate::Percent(p) => format!("{p}% of line rate (L1)"),
        }
    }

    /// Packets per second for a mean wire size, given the port's line rate
    /// (bit/s, 0 = unknown). `None` = unpaced.
    pub fn pps(&self, mean_size: f64, line_bps: u64) -> Option<f64> {
        match *self {
            Rate::Line => None,
            Rate::Pps(p) => Some(p),
            Rate::Bps { bps, l1 } => Some(bps / ((mean_size + if l1 { 20.0 } else { 0.0 }) * 8.0)),
            Rate::Percent(p) => Some(line_bps as f64 * p / 100.0 / ((mean_size + 20.0) * 8.0)),
        }
    }
}

/// A number with an SI prefix and a trailing space, for rates ("1.500 M").
pub fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.3} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.3} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.3} k", v / 1e3)
    } else {
        format!("{v:.0} ")
    }
}

/// pcap replay timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The file's own inter-packet gaps.
    Original,
    /// As fast as possible (or paced by `rate`).
    Fast,
}

/// UDP payload fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Incrementing,
    Zeros,
    Random,
    Bytes(Vec<u8>),
}

/// Which header field a [`Field`] varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    SrcMac,
    DstMac,
    SrcIp,
    DstIp,
    SrcPort,
    DstPort,
    Vlan,
    Tos,
    /// The low 32 bits of an IPv6 address.
    SrcIp6,
    DstIp6,
    TcpSeq,
    IcmpId,
    IcmpSeq,
    /// A VXLAN tunnel's outer UDP source port (RFC 7348 §5's flow entropy).
    TunnelSport,
}

impl FieldKind {
    /// The name `[[stream.field]]` gives it.
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::SrcMac => "src_mac",
            FieldKind::DstMac => "dst_mac",
            FieldKind::SrcIp => "src_ip",
            FieldKind::DstIp => "dst_ip",
            FieldKind::SrcPort => "src_port",
            FieldKind::DstPort => "dst_port",
            FieldKind::Vlan => "vlan",
            FieldKind::Tos => "tos",
            FieldKind::SrcIp6 => "src_ip6",
            FieldKind::DstIp6 => "dst_ip6",
            FieldKind::TcpSeq => "tcp_seq",
            FieldKind::IcmpId => "icmp_id",
            FieldKind::IcmpSeq => "icmp_seq",
            FieldKind::TunnelSport => "tunnel_sport",
        }
    }
}

/// How a field varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    Inc,
    Dec,
    Random,
}

/// A varying field: values min..=max, or the entries of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub kind: FieldKind,
    pub op: FieldOp,
    /// The range the field steps over: its values, or for a table
    /// (`values` not empty) the entries' indices, `0..=values.len() - 1`.
    pub min: u64,
    pub max: u64,
    /// The table of explicit values (empty: the field's value is min..=max).
    pub values: Vec<u64>,
    pub step: u64,
    /// Steps only when the field before it wraps (an odometer).
    pub nest: bool,
}

/// A validated stream.
#[derive(Debug, Clone)]
pub struct Stream {
    pub index: usize,
    pub name: String,
    pub port: usize,
    pub rx_port: usize,
    /// Sending lcores (core ids); `None` = every lcore of the run.
    pub lcores: Option<Vec<usize>>,
    pub mode: StreamMode,
    pub sizes: Sizes,
    pub rate: Rate,
    pub count: u64,
    pub duration: f64,
    pub start_delay: f64,
    pub latency: bool,
    pub priority: u8,
    pub pcap: Option<std::path::PathBuf>,
    pub timing: Timing,
    pub loops: u32,
    pub payload: Payload,
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub vlan: u16,
    /// The NIC inserts `vlan` (the template is untagged).
    pub vlan_offload: bool,
    pub tos: u8,
    pub ttl: u8,
    pub fields: Vec<Field>,
    /// mode = "tcp": connections and bytes per connection (0 = no limit).
    pub connections: u32,
    pub bytes: u64,
    /// mode = "tcp": splice the payload instead of copying it.
    pub zerocopy: bool,
    /// Seed of the random fields and sizes (None: from the index).
    pub seed: Option<u64>,
    /// Flow count N (0 = off). The field sequence F(0), F(1), … is the
    /// tuples the stream's fields take packet after packet (ranges, tables,
    /// nesting, random draws) on one sending lcore. With N set, the lcore's
    /// packets carry the set S(w) = F(wN) … F(wN + N − 1): packet i of the
    /// set's life carries F(wN + i mod N). The first set is S(0).
    pub flows: u64,
    /// Set lifetime in ns (0 = the first set for ever): the first packet
    /// built at or after a set's expiry switches to the next set S(w + 1)
    /// (from its first flow) and that set expires a lifetime after the
    /// previous one did — or after that packet, when the stream sent nothing
    /// for a whole lifetime (sets are never skipped). Checked once per
    /// burst (line rate) or per packet (paced), against the TSC.
    pub flow_lifetime_ns: u64,
    /// Index of the stream this one starts after.
    pub after: Option<usize>,
    /// The rate profile: (seconds from the stream's start, rate), the first
    /// at 0 (empty: `rate` throughout).
    pub profile: Vec<(f64, Rate)>,
    /// The stream's shape: packets per burst (0 = none), bursts (0 = no
    /// limit), the gap after each burst and on/off windows, in ns.
    pub burst: u64,
    pub bursts: u64,
    pub burst_gap_ns: u64,
    pub on_ns: u64,
    pub off_ns: u64,
    /// The raw header stack (plain Ethernet/IPv4/UDP by default).
    pub hdr: Headers,
}

/// Smallest frame the generator builds (Ethernet minimum, with FCS).
pub const MIN_SIZE: u32 = 64;
/// Largest frame: the mbuf data room (2048) plus FCS.
pub const MAX_SIZE: u32 = 2048 + 4;
/// Linux's default Ethernet MTU (`ETH_DATA_LEN`).
pub const DEFAULT_MTU: u32 = 1500;

/// Bytes on the wire (frames with FCS, no preamble/IFG) of one UDP datagram
/// of `len` payload bytes sent through a stack with MTU `mtu`: one frame, or
/// the fragments `ip_fragment` makes (each carries 8-byte multiples of the
/// payload but the last).
pub fn socket_wire(len: u32, mtu: u32) -> u32 {
    let frags = socket_frames(len, mtu);
    (len + 8 + frags * (20 + 14 + 4)).max(64 * frags)
}

/// Frames one UDP datagram of `len` payload bytes becomes at MTU `mtu`.
pub fn socket_frames(len: u32, mtu: u32) -> u32 {
    let ip_payload = len + 8;
    if ip_payload + 20 <= mtu {
        1
    } else {
        ip_payload.div_ceil((mtu.saturating_sub(20) & !7).max(8))
    }
}

/// Largest UDP payload over IPv4: 65535 − 20 (IP) − 8 (UDP).
pub const MAX_DATAGRAM: u32 = 65507;
/// Most connections one TCP stream opens.
pub const TCP_MAX_CONNECTIONS: u32 = 64;
/// A TCP stream's default write size (`size` sets it, 1..=MAX_DATAGRAM+1).
pub const TCP_DEFAULT_WRITE: u32 = 65536;
/// Bytes the latency header takes at the start of the UDP payload.
pub const LATENCY_HDR: u32 = crate::latency::LEN as u32;

const IMIX_SIMPLE: &[(u32, u32)] = &[(64, 7), (594, 4), (1518, 1)];
const IMIX_TOLLY: &[(u32, u32)] = &[(64, 55), (78, 5), (576, 17), (1518, 23)];

fn parse_sizes(s: &StreamSection, k: &dyn Fn(&str) -> String) -> Result<Sizes, ConfigError> {
    let sizes = match (&s.size, &s.imix) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(k("imix"), "give either size or imix, not both"));
        }
        (_, Some(ImixField::Named(n))) => match n.as_str() {
            "simple" => Sizes::Imix(IMIX_SIMPLE.to_vec()),
            "tolly" => Sizes::Imix(IMIX_TOLLY.to_vec()),
            _ => {
                return Err(ConfigError::new(
                    k("imix"),
                    format!("unknown profile '{n}'; use \"simple\" (64:7,594:4,1518:1), \"tolly\", or [[size, weight], ...]"),
                ))
            }
        },
        (_, Some(ImixField::Custom(v))) => {
            if v.is_empty() || v.iter().any(|p| p[1] == 0) || v.iter().map(|p| p[1] as u64).sum::<u64>() > 10_000 {
                return Err(ConfigError::new(
                    k("imix"),
                    "needs [size, weight] pairs with weights ≥ 1 (total ≤ 10000)",
                ));
            }
            Sizes::Imix(v.iter().map(|p| (p[0], p[1])).collect())
        }
        (None, None) => Sizes::Fixed(default_size()),
        (Some(SizeField::Fixed(z)), None) => Sizes::Fixed(*z),
        (Some(SizeField::Text(t)), None) => {
            let (a, b) = t.split_once('-').ok_or_else(|| {
                ConfigError::new(k("size"), format!("'{t}' is not a size; use 64 or \"64-1518\""))
            })?;
            let a: u32 = a.trim().parse().map_err(|_| ConfigError::new(k("size"), format!("'{t}' is not a size range")))?;
            let b: u32 = b.trim().parse().map_err(|_| ConfigError::new(k("size"), format!("'{t}' is not a size range")))?;
            if a > b {
                return Err(ConfigError::new(k("size"), format!("range '{t}' is descending")));
            }
            Sizes::Uniform(a, b)
        }
    };
    if s.mode == StreamMode::Tcp {
        // A TCP stream's size is its write size (`send` calls of that many
        // bytes); the stack cuts segments of the MSS.
        let z = match &s.size {
            None => TCP_DEFAULT_WRITE,
            Some(SizeField::Fixed(z)) => *z,
            Some(SizeField::Text(t)) => {
                return Err(ConfigError::new(
                    k("size"),
                    format!("'{t}': a TCP stream's size is one write size (e.g. 65536)"),
                ))
            }
        };
        if !(1..=TCP_DEFAULT_WRITE).contains(&z) {
            return Err(ConfigError::new(
                k("size"),
                format!("{z} is outside 1..={TCP_DEFAULT_WRITE} (a TCP stream's size is its write size)"),
            ));
        }
        return Ok(Sizes::Fixed(z));
    }
    if s.mode == StreamMode::Socket {
        // A socket stream's size is the datagram's (UDP payload bytes): the
        // stack fragments what does not fit the MTU (`ip_append_data`).
        let min = if s.latency { LATENCY_HDR } else { 0 };
        if sizes.min() < min || sizes.max() > MAX_DATAGRAM {
            return Err(ConfigError::new(
                if s.imix.is_some() { k("imix") } else { k("size") },
                format!(
                    "{} is outside {min}..={MAX_DATAGRAM} (a socket stream's size is the UDP datagram's payload{})",
                    sizes.describe(),
                    if s.latency { "; the latency header needs 18 bytes" } else { "" }
                ),
            ));
        }
        return Ok(sizes);
    }
    let min_needed = MIN_SIZE.max(
        46 + if s.vlan != 0 || s.fields.iter().any(|f| f.name == "vlan") {
            4
        } else {
            0
        } + if s.latency { LATENCY_HDR } else { 0 },
    );
    let key = if s.imix.is_some() {
        k("imix")
    } else {
        k("size")
    };
    if sizes.min() < min_needed || sizes.max() > MAX_SIZE {
        return Err(ConfigError::new(
            key,
            format!(
                "{} is outside {min_needed}..={MAX_SIZE} (frame size on the wire, FCS included{})",
                sizes.describe(),
                if min_needed > MIN_SIZE {
                    "; VLAN tags and latency headers need room"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(sizes)
}

fn field_value(kind: FieldKind, v: &toml::Value) -> Result<u64, String> {
    let as_int = || -> Result<u64, String> {
        v.as_integer()
            .filter(|i| *i >= 0)
            .map(|i| i as u64)
            .ok_or_else(|| format!("{v} is not a non-negative number"))
    };
    let as_str = || v.as_str().ok_or_else(|| format!("{v} must be a string"));
    let val = match kind {
        FieldKind::SrcMac | FieldKind::DstMac => {
            let m: MacAddr = as_str()?.parse()?;
            m.0.iter().fold(0u64, |a, b| (a << 8) | *b as u64)
        }
        FieldKind::SrcIp | FieldKind::DstIp => {
            let ip: Ipv4Addr = as_str()?
                .parse()
                .map_err(|_| format!("{v} is not an IPv4 address"))?;
            u32::from(ip) as u64
        }
        FieldKind::SrcIp6 | FieldKind::DstIp6 => {
            let ip: std::net::Ipv6Addr = as_str()?
                .parse()
                .map_err(|_| format!("{v} is not an IPv6 address"))?;
            (u128::from(ip) & 0xffff_ffff) as u64
        }
        FieldKind::TcpSeq => {
            let x = as_int()?;
            if x > u32::MAX as u64 {
                return Err(format!("{x} is not a TCP sequence number (0..=4294967295)"));
            }
            x
        }
        FieldKind::SrcPort
        | FieldKind::DstPort
        | FieldKind::IcmpId
        | FieldKind::IcmpSeq
        | FieldKind::TunnelSport => {
            let x = as_int()?;
            if x > 65535 {
                return Err(format!("{x} is not a port (0..=65535)"));
            }
            x
        }
        FieldKind::Vlan => {
            let x = as_int()?;
            if x > 4095 {
                return Err(format!("{x} is not a VLAN id (0..=4095)"));
            }
            x
        }
        FieldKind::Tos => {
            let x = as_int()?;
            if x > 255 {
                return Err(format!("{x} is not a TOS byte (0..=255)"));
            }
            x
        }
    };
    Ok(val)
}

impl Config {
    /// Reads and parses a TOML file; errors name the key and line.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path.display().to_string(),
                format!("cannot read config file: {e}"),
            )
        })?;
        let mut c = Config::parse(&text, &path.display().to_string())?;
        // Files a config names are relative to the config itself.
        if let Some(dir) = path.parent() {
            for st in &mut c.streams {
                if let Some(p) = &st.pcap {
                    if Path::new(p).is_relative() {
                        st.pcap = Some(dir.join(p).display().to_string());
                    }
                }
            }
        }
        Ok(c)
    }

    /// Parses TOML text.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            ConfigError::new(
                match line {
                    Some(l) => format!("{name}:{l}"),
                    None => name.to_string(),
                },
                msg,
            )
        })
    }

    /// Validates everything that can be checked before a port is opened.
    pub fn validate(&self) -> Result<Vec<Stream>, ConfigError> {
        let run_cores = self.run.validate()?;
        if self.ports.is_empty() {
            return Err(ConfigError::new(
                "port",
                "no [[port]] given; add one (e.g. spec = \"null\") or pass --port SPEC",
            ));
        }
        for (i, p) in self.ports.iter().enumerate() {
            p.validate(i)?;
            p.routing(i, self)?;
        }
        let sections = if self.streams.is_empty() {
            vec![StreamSection::default()]
        } else {
            self.streams.clone()
        };
        let mut streams: Vec<Stream> = sections
            .iter()
            .enumerate()
            .map(|(i, s)| s.validate(i, &self.ports, &run_cores))
            .collect::<Result<_, _>>()?;
        // Chains: `after` names an earlier stream that ends by itself.
        for (i, sec) in sections.iter().enumerate() {
            let Some(name) = &sec.after else { continue };
            let k = format!("stream[{i}].after");
            let j = streams[..i].iter().position(|o| &o.name == name).ok_or_else(|| {
                ConfigError::new(
                    &k,
                    format!("'{name}' is not the name of an earlier stream (a stream starts after one before it)"),
                )
            })?;
            let p = &streams[j];
            let ends = p.count > 0
                || p.duration > 0.0
                || p.burst > 0 && p.bursts > 0
                || p.mode == StreamMode::Pcap && p.loops > 0
                || p.mode == StreamMode::Tcp && p.bytes > 0;
            if !ends {
                return Err(ConfigError::new(
                    &k,
                    format!("'{name}' never ends by itself: give it a count, a duration or bursts"),
                ));
            }
            streams[i].after = Some(j);
        }
        Ok(streams)
    }
}

impl RunConfig {
    /// The run's own keys; returns its core list.
    fn validate(&self) -> Result<wirespeed::eal::CoreList, ConfigError> {
        if !(self.duration >= 0.0 && self.duration.is_finite()) {
            return Err(ConfigError::new(
                "run.duration",
                format!("{} is not a number of seconds ≥ 0", self.duration),
            ));
        }
        let max = wirespeed::mbuf::BURST_MAX;
        if self.burst == 0 || self.burst as usize > max {
            return Err(ConfigError::new(
                "run.burst",
                format!("{} is outside 1..={max}", self.burst),
            ));
        }
        if self.mempool_size < 2 * self.burst as u32 {
            return Err(ConfigError::new(
                "run.mempool_size",
                format!(
                    "{} buffers is less than two bursts ({}); raise it",
                    self.mempool_size,
                    2 * self.burst
                ),
            ));
        }
        wirespeed::eal::CoreList::parse(&self.lcores)
            .map_err(|e| ConfigError::new("run.lcores", e.to_string()))
    }
}

impl PortSection {
    /// The keys a port can be checked by before it is opened.
    fn validate(&self, i: usize) -> Result<(), ConfigError> {
        self.static_neighbours(i)?;
        if self.spec.trim().is_empty() {
            return Err(ConfigError::new(
                format!("port[{i}].spec"),
                "empty device spec",
            ));
        }
        if self.tx_queues == Some(0) {
            return Err(ConfigError::new(
                format!("port[{i}].tx_queues"),
                "must be at least 1",
            ));
        }
        if self.ring_size == 0 {
            return Err(ConfigError::new(
                format!("port[{i}].ring_size"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `port` and `rx_port` must name configured ports.
fn check_port_index(key: String, port: usize, nports: usize) -> Result<(), ConfigError> {
    if port >= nports {
        return Err(ConfigError::new(
            key,
            format!("port {port} does not exist; {nports} port(s) are configured"),
        ));
    }
    Ok(())
}

impl StreamSection {
    /// Validates stream `i` into the [`Stream`] the generator sends.
    fn validate(
        &self,
        i: usize,
        ports: &[PortSection],
        run_cores: &wirespeed::eal::CoreList,
    ) -> Result<Stream, ConfigError> {
        let s = self;
        let k = |f: &str| format!("stream[{i}].{f}");
        check_port_index(k("port"), s.port, ports.len())?;
        let rx_port = s.rx_port.unwrap_or(s.port);
        check_port_index(k("rx_port"), rx_port, ports.len())?;
        s.check_numbers(&k)?;
        let sizes = parse_sizes(s, &k)?;
        let rate = match &s.rate {
            None => Rate::Line,
            Some(t) => Rate::parse(t).map_err(|e| ConfigError::new(k("rate"), e))?,
        };
        let lcores = s.stream_lcores(&k, run_cores)?;
        let (pcap, timing) = s.replay(&k)?;
        let payload = parse_payload(s.payload.as_deref(), &k)?;
        let fields = s
            .fields
            .iter()
            .enumerate()
            .map(|(j, f)| parse_field(f, s.vlan, &|x: &str| format!("stream[{i}].field[{j}].{x}")))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(j) = fields.iter().position(|f| f.nest) {
            if j == 0 || fields[j - 1].op == FieldOp::Random {
                return Err(ConfigError::new(
                    format!("stream[{i}].field[{j}].nest"),
                    "nests under the field before it, which must be an inc or dec field",
                ));
            }
        }
        s.check_flows(&k, &fields)?;
        s.check_mode(&k, &ports[s.port], fields.is_empty())?;
        let hdr = s.headers(&k, &sizes, &fields)?;
        let mac = |f: &str, v: &str| -> Result<MacAddr, ConfigError> {
            v.parse().map_err(|e: String| ConfigError::new(k(f), e))
        };
        let ip = |f: &str, v: &str| -> Result<Ipv4Addr, ConfigError> {
            v.parse()
                .map_err(|_| ConfigError::new(k(f), format!("'{v}' is not an IPv4 address")))
        };
        Ok(Stream {
            index: i,
            name: s.name.clone().unwrap_or_else(|| format!("stream{i}")),
            port: s.port,
            rx_port,
            lcores,
            mode: s.mode,
            sizes,
            rate,
            count: s.count,
            duration: s.duration,
            start_delay: s.start_delay,
            latency: s.latency,
            priority: s.priority,
            pcap,
            timing,
            loops: s.loops,
            payload,
            src_mac: mac("src_mac", &s.src_mac)?,
            dst_mac: mac("dst_mac", &s.dst_mac)?,
            src_ip: ip("src_ip", &s.src_ip)?,
            dst_ip: ip("dst_ip", &s.dst_ip)?,
            src_port: s.src_port,
            dst_port: s.dst_port,
            vlan: s.vlan,
            vlan_offload: s.vlan_offload && s.vlan != 0,
            tos: s.tos,
            ttl: s.ttl,
            fields,
            connections: s.connections.unwrap_or(1),
            bytes: s.bytes,
            zerocopy: s.zerocopy,
            seed: s.seed,
            flows: s.flows.unwrap_or(0),
            flow_lifetime_ns: (s.flow_lifetime_ms * 1e6) as u64,
            after: None,
            profile: s.profile(&k, &rate)?,
            burst: s.burst,
            bursts: s.bursts.unwrap_or(1),
            burst_gap_ns: (s.burst_gap_ms * 1e6) as u64,
            on_ns: (s.on_ms * 1e6) as u64,
            off_ns: (s.off_ms * 1e6) as u64,
            hdr,
        })
    }

    /// `flows` and `flow_lifetime_ms`: a count of at least 1 over varying
    /// fields that have that many distinct tuples, a lifetime ≥ 0 only with it.
    fn check_flows(&self, k: &dyn Fn(&str) -> String, fields: &[Field]) -> Result<(), ConfigError> {
        let lt = self.flow_lifetime_ms;
        if !(lt >= 0.0 && lt.is_finite()) {
            return Err(ConfigError::new(
                k("flow_lifetime_ms"),
                format!("{lt} is not a number of ms ≥ 0"),
            ));
        }
        let Some(n) = self.flows else {
            if lt > 0.0 {
                return Err(ConfigError::new(
                    k("flow_lifetime_ms"),
                    "a lifetime needs a flow count (flows = N)",
                ));
            }
            return Ok(());
        };
        if n == 0 {
            return Err(ConfigError::new(k("flows"), "must be at least 1"));
        }
        if fields.is_empty() {
            return Err(ConfigError::new(
                k("flows"),
                "needs varying fields ([[stream.field]]) to make the flows from",
            ));
        }
        if let Some(p) = crate::frame::distinct_flows(fields, n) {
            return Err(ConfigError::new(
                k("flows"),
                format!("{n} flows asked, but the fields repeat after {p} distinct tuples: widen a range or nest the fields"),
            ));
        }
        Ok(())
    }

    /// VLAN id, priority and the times.
    fn check_numbers(&self, k: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if self.vlan > 4095 {
            return Err(ConfigError::new(
                k("vlan"),
                format!("{} is not a VLAN id (0..=4095)", self.vlan),
            ));
        }
        if self.priority > 15 {
            return Err(ConfigError::new(
                k("priority"),
                format!("{} is outside 0..=15", self.priority),
            ));
        }
        if self.burst == 0 && (self.bursts.is_some() || self.burst_gap_ms != 0.0) {
            let key = if self.bursts.is_some() {
                "bursts"
            } else {
                "burst_gap_ms"
            };
            return Err(ConfigError::new(
                k(key),
                "needs burst = N (packets per burst)",
            ));
        }
        if (self.on_ms > 0.0) != (self.off_ms > 0.0) {
            let key = if self.on_ms > 0.0 { "off_ms" } else { "on_ms" };
            return Err(ConfigError::new(
                k(key),
                "on/off windows need both on_ms and off_ms (> 0)",
            ));
        }
        for (f, v) in [
            ("duration", self.duration),
            ("start_delay", self.start_delay),
            ("burst_gap_ms", self.burst_gap_ms),
            ("on_ms", self.on_ms),
            ("off_ms", self.off_ms),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(ConfigError::new(
                    k(f),
                    format!("{v} is not a number of seconds ≥ 0"),
                ));
            }
        }
        Ok(())
    }

    /// The stream's own core list, each core one of the run's.
    fn stream_lcores(
        &self,
        k: &dyn Fn(&str) -> String,
        run_cores: &wirespeed::eal::CoreList,
    ) -> Result<Option<Vec<usize>>, ConfigError> {
        let Some(l) = &self.lcores else {
            return Ok(None);
        };
        let cl = wirespeed::eal::CoreList::parse(l)
            .map_err(|e| ConfigError::new(k("lcores"), e.to_string()))?;
        if let Some(c) = cl.cores().iter().find(|c| !run_cores.cores().contains(c)) {
            return Err(ConfigError::new(
                k("lcores"),
                format!(
                    "core {c} is not in run.lcores ({run_cores}); add it there or drop it here"
                ),
            ));
        }
        Ok(Some(cl.cores().to_vec()))
    }

    /// The replay keys (`pcap`, `timing`): for `mode = "pcap"` only.
    fn replay(
        &self,
        k: &dyn Fn(&str) -> String,
    ) -> Result<(Option<std::path::PathBuf>, Timing), ConfigError> {
        if self.mode != StreamMode::Pcap {
            if self.pcap.is_some() {
                return Err(ConfigError::new(
                    k("pcap"),
                    "only used with mode = \"pcap\"",
                ));
            }
            if self.timing.is_some() {
                return Err(ConfigError::new(
                    k("timing"),
                    "only used with mode = \"pcap\"",
                ));
            }
            return Ok((None, Timing::Fast));
        }
        let p = self.pcap.as_ref().ok_or_else(|| {
            ConfigError::new(k("pcap"), "mode = \"pcap\" needs pcap = \"FILE.pcap\"")
        })?;
        let t = match self.timing.as_deref() {
            None | Some("original") => Timing::Original,
            Some("fast") => Timing::Fast,
            Some(o) => {
                return Err(ConfigError::new(
                    k("timing"),
                    format!("'{o}' is not \"original\" or \"fast\""),
                ))
            }
        };
        if self.latency {
            return Err(ConfigError::new(
                k("latency"),
                "pcap replay sends the file's bytes unchanged; latency needs mode = \"raw\"",
            ));
        }
        Ok((Some(std::path::PathBuf::from(p)), t))
    }

    /// `rate_steps`/`step_s` or `ramp_to`/`ramp_s` as (offset s, rate) steps.
    fn profile(
        &self,
        k: &dyn Fn(&str) -> String,
        rate: &Rate,
    ) -> Result<Vec<(f64, Rate)>, ConfigError> {
        let secs = |key: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(ConfigError::new(
                    k(key),
                    format!("{v} is not a number of seconds > 0"),
                ))
            }
        };
        if !self.rate_steps.is_empty() && self.ramp_to.is_some() {
            return Err(ConfigError::new(
                k("ramp_to"),
                "give rate_steps or ramp_to, not both",
            ));
        }
        if !self.rate_steps.is_empty() {
            let step = secs("step_s", self.step_s)?;
            return self
                .rate_steps
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    Rate::parse(t)
                        .map(|r| (i as f64 * step, r))
                        .map_err(|e| ConfigError::new(format!("{}[{i}]", k("rate_steps")), e))
                })
                .collect();
        }
        let Some(to) = &self.ramp_to else {
            return Ok(Vec::new());
        };
        let dur = secs("ramp_s", self.ramp_s)?;
        let to = Rate::parse(to).map_err(|e| ConfigError::new(k("ramp_to"), e))?;
        // A ramp interpolates one kind of rate: pps to pps, bit/s to bit/s
        // (the same layer), percent to percent.
        let lerp = |f: f64| -> Option<Rate> {
            Some(match (rate, &to) {
                (Rate::Pps(a), Rate::Pps(b)) => Rate::Pps(a + (b - a) * f),
                (Rate::Bps { bps: a, l1 }, Rate::Bps { bps: b, l1: l }) if l1 == l => Rate::Bps {
                    bps: a + (b - a) * f,
                    l1: *l1,
                },
                (Rate::Percent(a), Rate::Percent(b)) => Rate::Percent(a + (b - a) * f),
                _ => return None,
            })
        };
        const STEPS: usize = 100;
        (0..=STEPS)
            .map(|i| {
                let f = i as f64 / STEPS as f64;
                lerp(f).map(|r| (f * dur, r)).ok_or_else(|| {
                    ConfigError::new(
                        k("ramp_to"),
                        "ramps between rates of one kind: pps to pps, bit/s to bit/s, % to %; set rate to the ramp's start",
                    )
                })
            })
            .collect()
    }

    /// A TCP stream: its connections, and the keys that mean nothing to
    /// it (the window and the congestion control set the rate; segments,
    /// not frames of a size, go out).
    fn check_tcp(&self, k: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let n = self.connections.unwrap_or(1);
        if !(1..=TCP_MAX_CONNECTIONS).contains(&n) {
            return Err(ConfigError::new(
                k("connections"),
                format!("{n} is outside 1..={TCP_MAX_CONNECTIONS}"),
            ));
        }
        let refused = [
            (
                "rate",
                self.rate.is_some(),
                "TCP sends as fast as its windows allow; drop rate",
            ),
            (
                "count",
                self.count != 0,
                "a TCP stream sends bytes: use bytes = N (per connection)",
            ),
            (
                "latency",
                self.latency,
                "latency probes are raw or socket streams",
            ),
            (
                "imix",
                self.imix.is_some(),
                "a TCP stream's segments are the MSS; drop imix",
            ),
            (
                "burst",
                self.burst != 0,
                "the windows pace a TCP stream; drop burst",
            ),
            (
                "on_ms",
                self.on_ms != 0.0,
                "the windows pace a TCP stream; drop on_ms",
            ),
            (
                "rate_steps",
                !self.rate_steps.is_empty(),
                "TCP sends as fast as its windows allow; drop rate_steps",
            ),
            (
                "ramp_to",
                self.ramp_to.is_some(),
                "TCP sends as fast as its windows allow; drop ramp_to",
            ),
        ];
        if let Some((key, _, why)) = refused.iter().find(|r| r.1) {
            return Err(ConfigError::new(k(key), *why));
        }
        Ok(())
    }

    /// What the mode rules out: a socket stream needs its port's address and
    /// sends untagged; varying fields are for raw streams.
    fn check_mode(
        &self,
        k: &dyn Fn(&str) -> String,
        port: &PortSection,
        no_fields: bool,
    ) -> Result<(), ConfigError> {
        if self.mode == StreamMode::Tcp {
            self.check_tcp(k)?;
        } else if self.connections.is_some() || self.bytes != 0 || self.zerocopy {
            let key = if self.bytes != 0 {
                "bytes"
            } else if self.zerocopy {
                "zerocopy"
            } else {
                "connections"
            };
            return Err(ConfigError::new(k(key), "only for mode = \"tcp\""));
        }
        if matches!(self.mode, StreamMode::Socket | StreamMode::Tcp) {
            if port.ip.is_none() {
                return Err(ConfigError::new(
                    k("mode"),
                    format!("{} mode sends through port {}'s stack: give it an address (port[{}].ip = \"10.0.0.1/24\")", if self.mode == StreamMode::Tcp { "tcp" } else { "socket" }, self.port, self.port),
                ));
            }
            if self.vlan != 0 {
                return Err(ConfigError::new(
                    k("vlan"),
                    "the stack sends untagged frames; drop vlan",
                ));
            }
        }
        if self.mode != StreamMode::Raw && !no_fields {
            return Err(ConfigError::new(
                k("field"),
                "varying fields are for mode = \"raw\"",
            ));
        }
        Ok(())
    }
}

/// A stream's `payload` key.
fn parse_payload(p: Option<&str>, k: &dyn Fn(&str) -> String) -> Result<Payload, ConfigError> {
    match p {
        None | Some("incrementing") => Ok(Payload::Incrementing),
        Some("zeros") => Ok(Payload::Zeros),
        Some("random") => Ok(Payload::Random),
        Some(h) if h.starts_with("hex:") => {
            let hex = &h[4..];
            if hex.is_empty() || hex.len() % 2 != 0 {
                return Err(ConfigError::new(
                    k("payload"),
                    "hex: needs an even number of hex digits",
                ));
            }
            let bytes: Result<Vec<u8>, _> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect();
            Ok(Payload::Bytes(bytes.map_err(|_| {
                ConfigError::new(k("payload"), format!("'{h}' has a non-hex digit"))
            })?))
        }
        Some(o) => Err(ConfigError::new(
            k("payload"),
            format!("'{o}' is not \"incrementing\", \"zeros\", \"random\" or \"hex:…\""),
        )),
    }
}

/// A field's `min`/`max`, or its `values` table (then the range is the
/// table's indices): exactly one of the two forms.
fn field_range(
    kind: FieldKind,
    f: &FieldSection,
    fk: &dyn Fn(&str) -> String,
) -> Result<(u64, u64, Vec<u64>), ConfigError> {
    match (&f.values, &f.min, &f.max) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ConfigError::new(
            fk("values"),
            "give either values = [...] or min and max, not both",
        )),
        (Some(v), None, None) => {
            if v.is_empty() {
                return Err(ConfigError::new(
                    fk("values"),
                    "is empty: list at least one value",
                ));
            }
            let vals = v
                .iter()
                .enumerate()
                .map(|(e, x)| {
                    field_value(kind, x)
                        .map_err(|w| ConfigError::new(fk("values"), format!("entry {e}: {w}")))
                })
                .collect::<Result<Vec<u64>, _>>()?;
            Ok((0, vals.len() as u64 - 1, vals))
        }
        (None, Some(lo), Some(hi)) => {
            let min = field_value(kind, lo).map_err(|e| ConfigError::new(fk("min"), e))?;
            let max = field_value(kind, hi).map_err(|e| ConfigError::new(fk("max"), e))?;
            if min > max {
                return Err(ConfigError::new(fk("max"), "is below min"));
            }
            Ok((min, max, Vec::new()))
        }
        (None, lo, _) => Err(ConfigError::new(
            fk(if lo.is_none() { "min" } else { "max" }),
            "is missing: give min and max, or values = [...]",
        )),
    }
}

/// One `[[stream.field]]`: what varies, how, over which range.
fn parse_field(
    f: &FieldSection,
    vlan: u16,
    fk: &dyn Fn(&str) -> String,
) -> Result<Field, ConfigError> {
    let kind = match f.name.as_str() {
        "src_mac" => FieldKind::SrcMac,
        "dst_mac" => FieldKind::DstMac,
        "src_ip" => FieldKind::SrcIp,
        "dst_ip" => FieldKind::DstIp,
        "src_port" => FieldKind::SrcPort,
        "dst_port" => FieldKind::DstPort,
        "vlan" => FieldKind::Vlan,
        "tos" => FieldKind::Tos,
        "src_ip6" => FieldKind::SrcIp6,
        "dst_ip6" => FieldKind::DstIp6,
        "tcp_seq" => FieldKind::TcpSeq,
        "icmp_id" => FieldKind::IcmpId,
        "icmp_seq" => FieldKind::IcmpSeq,
        "tunnel_sport" => FieldKind::TunnelSport,
        o => {
            return Err(ConfigError::new(
                fk("name"),
                format!("'{o}' cannot vary; use src_mac, dst_mac, src_ip, dst_ip, src_port, dst_port, vlan, tos, src_ip6, dst_ip6, tcp_seq, icmp_id, icmp_seq or tunnel_sport"),
            ))
        }
    };
    let op = match f.op.as_str() {
        "inc" => FieldOp::Inc,
        "dec" => FieldOp::Dec,
        "random" => FieldOp::Random,
        o => {
            return Err(ConfigError::new(
                fk("op"),
                format!("'{o}' is not \"inc\", \"dec\" or \"random\""),
            ))
        }
    };
    let (min, max, values) = field_range(kind, f, fk)?;
    if f.step == 0 {
        return Err(ConfigError::new(fk("step"), "must be at least 1"));
    }
    if kind == FieldKind::Vlan && vlan == 0 {
        return Err(ConfigError::new(
            fk("name"),
            "a varying vlan needs the stream to be tagged (vlan = ID)",
        ));
    }
    if f.nest && op == FieldOp::Random {
        return Err(ConfigError::new(
            fk("nest"),
            "a random field never wraps: nest an inc or dec field",
        ));
    }
    Ok(Field {
        kind,
        op,
        min,
        max,
        values,
        step: f.step,
        nest: f.nest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// TCP streams: what they take and what they refuse, each error naming its key.
    #[test]
    fn tcp_streams_validate_and_refuse_what_means_nothing_to_them() {
        let base = "[[port]]\nspec = \"null\"\nip = \"10.0.0.1/24\"\n[[stream]]\nmode = \"tcp\"\ndst_ip = \"10.0.0.2\"\n";
        let ok = Config::parse(&format!("{base}connections = 8\nbytes = 1000\n"), "t").unwrap();
        let st = &ok.validate().unwrap()[0];
        assert_eq!(
            (st.connections, st.bytes, st.sizes.max() as u32),
            (8, 1000, TCP_DEFAULT_WRITE)
        );
        for (extra, key) in [
            ("connections = 0\n", "stream[0].connections"),
            ("connections = 65\n", "stream[0].connections"),
            ("rate = \"1 Mpps\"\n", "stream[0].rate"),
            ("count = 10\n", "stream[0].count"),
            ("latency = true\n", "stream[0].latency"),
            ("size = \"64-128\"\n", "stream[0].size"),
            ("size = 70000\n", "stream[0].size"),
            ("burst = 5\n", "stream[0].burst"),
            (
                "rate_steps = [\"1 Mpps\"]\nstep_s = 1\n",
                "stream[0].rate_steps",
            ),
        ] {
            let e = Config::parse(&format!("{base}{extra}"), "t")
                .and_then(|c| c.validate().map(|_| ()))
                .unwrap_err();
            assert!(e.to_string().contains(key), "{extra}: {e}");
        }
        // Only a TCP stream has connections or bytes.
        let raw = "[[port]]\nspec = \"null\"\n[[stream]]\nbytes = 5\n";
        let e = Config::parse(raw, "t")
            .and_then(|c| c.validate().map(|_| ()))
            .unwrap_err();
        assert!(e.to_string().contains("stream[0].bytes"), "{e}");
        let raw = "[[port]]\nspec = \"null\"\n[[stream]]\nzerocopy = true\n";
        let e = Config::parse(raw, "t")
            .and_then(|c| c.validate().map(|_| ()))
            .unwrap_err();
        assert!(
            e.to_string().contains("stream[0].zerocopy") && e.to_string().contains("tcp"),
            "{e}"
        );
        let zc = Config::parse(&format!("{base}zerocopy = true\n"), "t").unwrap();
        assert!(zc.validate().unwrap()[0].zerocopy);
        // And it needs its port's address.
        let noip = "[[port]]\nspec = \"null\"\n[[stream]]\nmode = \"tcp\"\n";
        let e = Config::parse(noip, "t")
            .and_then(|c| c.validate().map(|_| ()))
            .unwrap_err();
        assert!(
            e.to_string().contains("stream[0].mode") && e.to_string().contains("tcp"),
            "{e}"
        );
    }

    /// Every shipped config, as text.
    fn shipped() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
        v.sort();
        v
    }

    proptest! {
        /// Hostile config text (issue 16): the shipped configs with bytes
        /// overwritten, lines cut or values swapped for junk parse and
        /// validate to a config or an error naming a key — never a panic.
        #[test]
        fn mutated_configs_never_panic(
            which in 0usize..8,
            flips in prop::collection::vec((0usize..4000, any::<u8>()), 0..6),
            cut in 0usize..4000,
            junk in prop::sample::select(vec![
                "-1", "1e400", "\"\"", "[]", "{}", "nan", "\"0-0\"", "\"64-\"", "\"∞ Mpps\"",
                "18446744073709551616", "\"1.2.3.4.5\"", "\"02:00\"", "[[1,0]]", "true", "\"100%\"",
            ]),
        ) {
            let all = shipped();
            let mut t = all[which % all.len()].clone().into_bytes();
            for (at, b) in flips {
                if at < t.len() {
                    t[at] = b;
                }
            }
            t.truncate(cut.max(1).min(t.len()));
            let mut text = String::from_utf8_lossy(&t).to_string();
            // Swap the first value after " = " for junk.
            if let Some(i) = text.find(" = ") {
                let end = text[i + 3..].find('\n').map_or(text.len(), |e| i + 3 + e);
                text.replace_range(i + 3..end, junk);
            }
            match Config::parse(&text, "fuzz.toml") {
                Ok(c) => {
                    if let Err(e) = c.validate() {
                        prop_assert!(!e.to_string().is_empty());
                    }
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(Rate::parse("1 Mpps").unwrap(), Rate::Pps(1e6));
        assert_eq!(Rate::parse("500kpps").unwrap(), Rate::Pps(5e5));
        assert_eq!(
            Rate::parse("9.5 Gbit/s").unwrap(),
            Rate::Bps {
                bps: 9.5e9,
                l1: false
            }
        );
        assert_eq!(
            Rate::parse("10 Gbps L1").unwrap(),
            Rate::Bps {
                bps: 1e10,
                l1: true
            }
        );
        assert_eq!(Rate::parse("90%").unwrap(), Rate::Percent(90.0));
        assert_eq!(Rate::parse("line").unwrap(), Rate::Line);
        for bad in ["", "fast", "0 pps", "10 Gfoo", "-1pps", "101%"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        // 10G L1 at 64 B = 14.88 Mpps.
        let pps = Rate::Percent(100.0).pps(64.0, 10_000_000_000).unwrap();
        assert!((pps - 14_880_952.38).abs() < 1.0, "{pps}");
    }

    #[test]
    fn imix_and_ranges() {
        let c = Config::parse("[[port]]\nspec = \"null\"\n[[stream]]\nimix = \"simple\"\n[[stream]]\nsize = \"64-128\"\n[[stream]]\nimix = [[64, 1], [1500, 3]]\n", "t").unwrap();
        let s = c.validate().unwrap();
        assert_eq!(s[0].sizes, Sizes::Imix(vec![(64, 7), (594, 4), (1518, 1)]));
        assert_eq!(s[1].sizes, Sizes::Uniform(64, 128));
        assert_eq!(s[2].sizes, Sizes::Imix(vec![(64, 1), (1500, 3)]));
        assert!((s[0].sizes.mean() - (64.0 * 7.0 + 594.0 * 4.0 + 1518.0) / 12.0).abs() < 1e-9);
    }

    #[test]
    fn quickstart_and_defaults_parse() {
        let c = Config::parse("[[port]]\nspec = \"null\"\n", "t").unwrap();
        let s = c.validate().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].sizes, Sizes::Fixed(64));
        assert_eq!(c.run.burst, 32);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let cases: &[(&str, &str)] = &[
            ("[run]\nlcores = \"0\"\nbogus = 1\n", "t:3"),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nsize = 20\n",
                "stream[0].size",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nsrc_ip = \"1.2.3\"\n",
                "stream[0].src_ip",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\ndst_mac = \"zz\"\n",
                "stream[0].dst_mac",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nport = 3\n",
                "stream[0].port",
            ),
            (
                "[run]\nlcores = \"3-1\"\n[[port]]\nspec = \"null\"\n",
                "run.lcores",
            ),
            ("[run]\nburst = 0\n[[port]]\nspec = \"null\"\n", "run.burst"),
            ("[run]\n", "port"),
            (
                "[[port]]\nspec = \"null\"\ntx_queues = 0\n",
                "port[0].tx_queues",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nvlan = 5000\n",
                "stream[0].vlan",
            ),
            ("[run]\ncount = -1\n", "t:2"),
        ];
        for (text, key) in cases {
            let e = Config::parse(text, "t").and_then(|c| c.validate().map(|_| ()));
            let e = e.expect_err(text);
            assert_eq!(&e.key, key, "{text}: {e}");
        }
    }
}
