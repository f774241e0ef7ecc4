//! `l3fwd`: an IPv4 router on the embedding API — DPDK's `l3fwd` in LPM
//! mode, with the parts of a router DPDK leaves out: the header checks of
//! RFC 1812 §5.2.2 (as `is_valid_ipv4_pkt`, plus the checksum in software),
//! TTL expiry answered with ICMP time exceeded (rate limited), and next-hop
//! MACs resolved by ARP with the engine's neighbour table.
//!
//! ```text
//! cargo run --release -p wirespeed-apps --example l3fwd -- --config configs/l3fwd.toml
//! ```
//!
//! Several lcores (`run.lcores = "0-1"`, `--lcores`): each port gets one
//! RX and one TX queue per lcore, receive-side scaling spreading the flows
//! where the port has it (igb, its model, ice: DPDK l3fwd's
//! `(port,queue,lcore)` with `ETH_MQ_RX_RSS`); each lcore forwards what its
//! queues receive out of its own TX queues. The lcores' control stacks
//! share one control plane: an ARP reply on any queue resolves the next
//! hop for all of them.
//!
//! Per received frame, on its lcore (a burst at a time, in the received
//! buffer: no copy, no allocation — except the ICMP error, a new buffer):
//!
//! 1. Ethernet: ARP goes to the control stack (`arp_rcv`); a frame that is
//!    not IPv4 or is unicast to another MAC is dropped (`eth_type_trans`'s
//!    `PACKET_OTHERHOST`).
//! 2. `ip_rcv_core`: version 4, IHL ≥ 5, total length ≥ IHL·4 and within the
//!    frame, header checksum.
//! 3. `ip_route_input`: one of our addresses or a broadcast goes to the
//!    control stack; else longest-prefix match in the engine's FIB
//!    ([`RouteTable::lookup`]); no route is a drop.
//! 4. `ip_forward`: TTL ≤ 1 → ICMP time exceeded to the sender (`icmp_send`,
//!    a token bucket as `icmp_global_allow`); else TTL − 1 with the checksum
//!    patched (RFC 1624, `ip_decrease_ttl`).
//! 5. `ip_finish_output2` → `neigh_output`: the next hop's MAC from a
//!    per-lcore cache in front of the engine's neighbour table
//!    (`Stack::neigh_event_send`, which runs ARP when the entry is unknown;
//!    the packet waiting for it is dropped and counted, as DPDK's l3fwd has
//!    no queue); Ethernet source = the output port's MAC.
//! 6. `dev_queue_xmit`: one burst per output port, `noqueue`; what the
//!    queue cannot take is freed and counted.
//!
//! Every received frame ends in `forwarded`, `local` (handed to the
//! control stack) or exactly one drop counter; the report checks the sum.

#[path = "common/mod.rs"]
#[allow(clippy::duplicate_mod)] // the examples test includes all three
mod common;
use clap::Parser;
use common::bad;
pub use common::Error;
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::lcore::CoreList;
use wirespeed::ethdev::rss::RssConf;
use wirespeed::ethdev::{MacAddr, PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mbuf, Mempool, PoolConfig};
use wirespeed::netdev::QdiscKind;
use wirespeed::runtime::staged::{staged, StagedTx};
use wirespeed::runtime::{LcoreApp, LcoreCtx, PortSetup, Runtime, RuntimeConfig};
use wirespeed::stack::checksum;
use wirespeed::stack::shared::ControlPlane;
use wirespeed::stack::wire::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HLEN, IPPROTO_ICMP};
use wirespeed::stack::{PortConf, Route, RouteTable, Stack, StackConfig};

// ---------------------------------------------------------------- config

/// The TOML file (see `configs/l3fwd.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConf,
    #[serde(default)]
    pub icmp: IcmpConf,
    #[serde(default)]
    pub port: Vec<PortEntry>,
    #[serde(default)]
    pub route: Vec<RouteEntry>,
    #[serde(default)]
    pub neighbour: Vec<NeighEntry>,
}

/// `[run]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConf {
    /// The core of the one lcore (without `lcores`).
    pub lcore: usize,
    /// Cores of several lcores (`"0-1"`): each port gets one RX and one TX
    /// queue per lcore, with RSS where it has it. Overrides `lcore`.
    pub lcores: Option<String>,
    /// Frames per RX burst, 1..=256.
    pub burst: usize,
    /// Descriptors per RX and TX queue.
    pub ring: u16,
    /// Buffers in the lcore's pool.
    pub pool: u32,
    /// Seconds; none = until Ctrl-C.
    pub duration: Option<f64>,
    /// Stop after this many frames received.
    pub count: Option<u64>,
    /// 4 KiB pages only (DPDK --no-huge).
    pub no_huge: bool,
}

impl Default for RunConf {
    fn default() -> Self {
        RunConf {
            lcore: 0,
            lcores: None,
            burst: 32,
            ring: 1024,
            pool: 8192,
            duration: None,
            count: None,
            no_huge: false,
        }
    }
}

/// `[icmp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcmpConf {
    /// Answer TTL expiry with ICMP time exceeded.
    pub time_exceeded: bool,
    /// Messages per second (token bucket refill).
    pub rate: u32,
    /// Bucket depth.
    pub burst: u32,
}

impl Default for IcmpConf {
    fn default() -> Self {
        // Linux: icmp_msgs_per_sec 1000, icmp_msgs_burst 50.
        IcmpConf {
            time_exceeded: true,
            rate: 1000,
            burst: 50,
        }
    }
}

/// `[[port]]`: port `i` is the `i`-th entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortEntry {
    /// Device spec (`ring:NAME`, `igb-model`, `af_xdp:IFACE`, …).
    pub spec: String,
    /// `A.B.C.D/LEN`: the port's address and connected subnet.
    pub address: String,
    /// The port's MAC; default: the device's.
    pub mac: Option<String>,
    /// With several lcores, receive-side scaling where the port has it
    /// (default true); else each lcore polls the queue of its own index.
    #[serde(default = "yes")]
    pub rss: bool,
}

fn yes() -> bool {
    true
}

/// `[[route]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// `A.B.C.D/LEN`, host bits clear.
    pub prefix: String,
    /// Output port index.
    pub port: u16,
    /// Next hop (on the port's subnet); none = the destination is on the link.
    pub via: Option<String>,
}

/// `[[neighbour]]`: a static (PERMANENT) neighbour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighEntry {
    pub port: u16,
    pub address: String,
    pub mac: String,
}

/// A checked config: addresses parsed, routes validated by the engine's FIB.
#[derive(Debug, Clone)]
pub struct Plan {
    pub run: RunConf,
    /// The lcores' cores (`run.lcores`, else `run.lcore`).
    pub cores: CoreList,
    pub icmp: IcmpConf,
    pub ports: Vec<PlanPort>,
    /// (prefix, len, port, via).
    pub routes: Vec<(Ipv4Addr, u8, u16, Option<Ipv4Addr>)>,
    pub neighbours: Vec<(u16, Ipv4Addr, MacAddr)>,
}

#[derive(Debug, Clone)]
pub struct PlanPort {
    pub spec: String,
    pub rss: bool,
    pub addr: Ipv4Addr,
    pub len: u8,
    pub mac: Option<MacAddr>,
}

/// `A.B.C.D/LEN`.
fn parse_cidr(key: &str, s: &str) -> Result<(Ipv4Addr, u8), Error> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| bad(key, format!("'{s}' is not A.B.C.D/LEN")))?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| bad(key, format!("'{a}' in '{s}' is not an IPv4 address")))?;
    let len: u8 = l
        .parse()
        .ok()
        .filter(|n| *n <= 32)
        .ok_or_else(|| bad(key, format!("prefix length '{l}' in '{s}' is not 0..=32")))?;
    Ok((addr, len))
}

fn parse_ip(key: &str, s: &str) -> Result<Ipv4Addr, Error> {
    s.parse()
        .map_err(|_| bad(key, format!("'{s}' is not an IPv4 address")))
}

fn parse_mac(key: &str, s: &str) -> Result<MacAddr, Error> {
    let m: MacAddr = s.parse().map_err(|e: String| bad(key, e))?;
    if m.is_multicast() || m == MacAddr::ZERO {
        return Err(bad(key, format!("{m} is not a unicast MAC")));
    }
    Ok(m)
}

fn in_subnet(a: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let m = wirespeed::stack::route::mask(len);
    u32::from(a) & m == u32::from(net) & m
}

impl Config {
    /// Reads and parses a TOML file (unknown keys are errors naming them).
    pub fn load(path: &Path) -> Result<Config, Error> {
        common::load_toml(path)
    }

    pub fn parse(name: &str, text: &str) -> Result<Config, Error> {
        common::parse_toml(name, text)
    }

    /// Checks every value; the error names the key (`route[1].prefix`).
    pub fn plan(&self) -> Result<Plan, Error> {
        let r = &self.run;
        if r.burst == 0 || r.burst > wirespeed::mbuf::BURST_MAX {
            return Err(bad("run.burst", format!("{} is not in 1..=256", r.burst)));
        }
        if let Some(d) = r.duration {
            if !(d > 0.0 && d.is_finite()) {
                return Err(bad("run.duration", format!("{d} is not seconds > 0")));
            }
        }
        if self.icmp.time_exceeded && (self.icmp.rate == 0 || self.icmp.burst == 0) {
            return Err(bad(
                "icmp.rate",
                "rate and burst must be > 0 (or set time_exceeded = false)",
            ));
        }
        if self.port.len() < 2 {
            return Err(bad(
                "port",
                format!(
                    "{} [[port]] given; a router needs at least 2",
                    self.port.len()
                ),
            ));
        }
        let mut ports = Vec::new();
        for (i, p) in self.port.iter().enumerate() {
            let (addr, len) = parse_cidr(&format!("port[{i}].address"), &p.address)?;
            if len > 30 || addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
                return Err(bad(
                    format!("port[{i}].address"),
                    format!(
                        "'{}' is not a unicast address on a /0../30 subnet",
                        p.address
                    ),
                ));
            }
            let mac = match &p.mac {
                Some(m) => Some(parse_mac(&format!("port[{i}].mac"), m)?),
                None => None,
            };
            ports.push(PlanPort {
                spec: p.spec.clone(),
                rss: p.rss,
                addr,
                len,
                mac,
            });
        }
        let nb = ports.len();
        let port_ok = |key: String, p: u16| -> Result<(), Error> {
            if p as usize >= nb {
                return Err(bad(key, format!("port {p} does not exist (ports 0..{nb})")));
            }
            Ok(())
        };
        // The engine's FIB checks each prefix (length, host bits).
        let mut fib = RouteTable::new();
        let mut routes = Vec::new();
        for (i, e) in self.route.iter().enumerate() {
            let (prefix, len) = parse_cidr(&format!("route[{i}].prefix"), &e.prefix)?;
            port_ok(format!("route[{i}].port"), e.port)?;
            let via = match &e.via {
                Some(v) => {
                    let gw = parse_ip(&format!("route[{i}].via"), v)?;
                    let pp = &ports[e.port as usize];
                    if !in_subnet(gw, pp.addr, pp.len) || gw == pp.addr {
                        return Err(bad(
                            format!("route[{i}].via"),
                            format!(
                                "{gw} is not a neighbour on port {}'s subnet {}/{}",
                                e.port, pp.addr, pp.len
                            ),
                        ));
                    }
                    Some(gw)
                }
                None => None,
            };
            fib.add(Route::unicast(prefix, len, via, e.port))
                .map_err(|err| bad(format!("route[{i}].prefix"), err.to_string()))?;
            routes.push((prefix, len, e.port, via));
        }
        let mut neighbours = Vec::new();
        for (i, n) in self.neighbour.iter().enumerate() {
            port_ok(format!("neighbour[{i}].port"), n.port)?;
            let ip = parse_ip(&format!("neighbour[{i}].address"), &n.address)?;
            let mac = parse_mac(&format!("neighbour[{i}].mac"), &n.mac)?;
            let pp = &ports[n.port as usize];
            if !in_subnet(ip, pp.addr, pp.len) {
                return Err(bad(
                    format!("neighbour[{i}].address"),
                    format!(
                        "{ip} is not on port {}'s subnet {}/{}",
                        n.port, pp.addr, pp.len
                    ),
                ));
            }
            neighbours.push((n.port, ip, mac));
        }
        let cores = match &r.lcores {
            Some(l) => {
                let c = CoreList::parse(l).map_err(|e| bad("run.lcores", e.to_string()))?;
                if c.is_empty() || c.len() > 16 {
                    return Err(bad("run.lcores", format!("'{l}': give 1 to 16 cores")));
                }
                c
            }
            None => CoreList::from_cores(vec![r.lcore]),
        };
        Ok(Plan {
            cores,
            run: self.run.clone(),
            icmp: self.icmp.clone(),
            ports,
            routes,
            neighbours,
        })
    }
}

// ---------------------------------------------------------------- counters

/// Where every received frame went (each in exactly one of these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub rx: u64,
    /// Taken by an output TX queue.
    pub forwarded: u64,
    /// Handed to the control stack (ARP, our addresses, broadcasts).
    pub local: u64,
    /// Drop: not IPv4 or ARP (other ethertypes, VLAN-tagged frames).
    pub not_ipv4: u64,
    /// Drop: unicast to another MAC.
    pub other_host: u64,
    /// Drop: failed the RFC 1812 header checks (length, version, IHL, total length).
    pub bad_header: u64,
    /// Drop: wrong header checksum.
    pub bad_checksum: u64,
    /// Drop: no route to the destination.
    pub no_route: u64,
    /// Drop: TTL expired (ICMP time exceeded sent, rate limited or suppressed).
    pub ttl_exceeded: u64,
    /// Drop: next hop not resolved (ARP running or failed).
    pub no_neighbour: u64,
    /// Drop: the output TX queue was full.
    pub tx_dropped: u64,
    /// ICMP time exceeded messages handed to a TX queue.
    pub icmp_sent: u64,
    /// ICMP time exceeded not sent: over the rate.
    pub icmp_rate_limited: u64,
    /// ICMP time exceeded not sent: RFC 1812 §4.3.2.7 forbids it (an ICMP
    /// error, a non-first fragment, a non-unicast source), or no buffer.
    pub icmp_suppressed: u64,
}

impl Counters {
    /// Sum of the drop counters.
    pub fn drops(&self) -> u64 {
        self.not_ipv4
            + self.other_host
            + self.bad_header
            + self.bad_checksum
            + self.no_route
            + self.ttl_exceeded
            + self.no_neighbour
            + self.tx_dropped
    }
    /// Adds another lcore's counters.
    pub fn add(&mut self, o: &Counters) {
        self.rx += o.rx;
        self.forwarded += o.forwarded;
        self.local += o.local;
        self.not_ipv4 += o.not_ipv4;
        self.other_host += o.other_host;
        self.bad_header += o.bad_header;
        self.bad_checksum += o.bad_checksum;
        self.no_route += o.no_route;
        self.ttl_exceeded += o.ttl_exceeded;
        self.no_neighbour += o.no_neighbour;
        self.tx_dropped += o.tx_dropped;
        self.icmp_sent += o.icmp_sent;
        self.icmp_rate_limited += o.icmp_rate_limited;
        self.icmp_suppressed += o.icmp_suppressed;
    }
    /// Every received frame is forwarded, local or in one drop counter.
    pub fn balanced(&self) -> bool {
        self.rx == self.forwarded + self.local + self.drops()
    }
    fn rows(&self) -> [(&'static str, u64); 14] {
        [
            ("rx", self.rx),
            ("forwarded", self.forwarded),
            ("local", self.local),
            ("not_ipv4", self.not_ipv4),
            ("other_host", self.other_host),
            ("bad_header", self.bad_header),
            ("bad_checksum", self.bad_checksum),
            ("no_route", self.no_route),
            ("ttl_exceeded", self.ttl_exceeded),
            ("no_neighbour", self.no_neighbour),
            ("tx_dropped", self.tx_dropped),
            ("icmp_sent", self.icmp_sent),
            ("icmp_rate_limited", self.icmp_rate_limited),
            ("icmp_suppressed", self.icmp_suppressed),
        ]
    }
}

/// Per port: received on it, forwarded out of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortCount {
    pub rx: u64,
    pub tx: u64,
}

/// What a run reports.
#[derive(Debug, Clone)]
pub struct Report {
    pub names: Vec<String>,
    pub ports: Vec<PortCount>,
    /// The totals over the lcores.
    pub c: Counters,
    /// Each lcore's core and counters.
    pub lcores: Vec<(usize, Counters)>,
    /// Per port: whether RSS spread its RX over the lcores.
    pub rss: Vec<bool>,
    pub elapsed_ns: u64,
    /// TSC cycles the lcores spent per received frame (whole loops, idle
    /// polls included, summed over the lcores).
    pub cycles_per_rx: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (n, c)) in self.names.iter().zip(&self.ports).enumerate() {
            writeln!(f, "port {i} {n}: rx {} tx {}", c.rx, c.tx)?;
        }
        if self.lcores.len() > 1 {
            for (i, (core, c)) in self.lcores.iter().enumerate() {
                writeln!(
                    f,
                    "lcore {i} (core {core}): rx {} forwarded {} local {} drops {} balanced {}",
                    c.rx,
                    c.forwarded,
                    c.local,
                    c.drops(),
                    if c.balanced() { "yes" } else { "NO" }
                )?;
            }
        }
        for (k, v) in self.c.rows() {
            writeln!(f, "{k:<18} {v}")?;
        }
        let secs = self.elapsed_ns as f64 / 1e9;
        let mpps = if secs > 0.0 {
            self.c.rx as f64 / secs / 1e6
        } else {
            0.0
        };
        writeln!(f, "{:<18} {secs:.3}", "seconds")?;
        writeln!(f, "{:<18} {mpps:.3}", "rx_mpps")?;
        writeln!(f, "{:<18} {:.1}", "cycles_per_rx", self.cycles_per_rx)?;
        write!(
            f,
            "{:<18} {}",
            "balanced",
            if self.c.balanced() && self.lcores.iter().all(|(_, c)| c.balanced()) {
                "yes"
            } else {
                "NO"
            }
        )
    }
}

// ---------------------------------------------------------------- fast path

/// Byte ranges of the IPv4 header fields the forwarder reads.
mod ip {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: std::ops::Range<usize> = 2..4;
    pub const FRAG: std::ops::Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: std::ops::Range<usize> = 10..12;
    pub const SRC: std::ops::Range<usize> = 12..16;
    pub const DST: std::ops::Range<usize> = 16..20;
}

#[inline(always)]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline(always)]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// What the RFC 1812 checks make of a frame's IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    Ok,
    BadHeader,
    BadChecksum,
}

/// Plays the part of `ip_rcv_core`'s checks (RFC 1812 §5.2.2, DPDK's
/// `is_valid_ipv4_pkt`): `l3` is the frame after the Ethernet header.
#[inline(always)]
pub fn check_ipv4(l3: &[u8]) -> HeaderCheck {
    if l3.len() < 20 {
        return HeaderCheck::BadHeader;
    }
    let v = l3[ip::VER_IHL];
    let ihl = (v & 0x0f) as usize * 4;
    if v >> 4 != 4 || ihl < 20 {
        return HeaderCheck::BadHeader;
    }
    let total = be16(&l3[ip::TOTAL_LEN]) as usize;
    if total < ihl || total > l3.len() {
        return HeaderCheck::BadHeader;
    }
    if checksum::checksum(&l3[..ihl]) != 0 {
        return HeaderCheck::BadChecksum;
    }
    HeaderCheck::Ok
}

/// Plays the part of `ip_decrease_ttl`: TTL − 1, checksum patched by
/// RFC 1624 eqn. 3 over the (TTL, protocol) word.
#[inline(always)]
pub fn decrease_ttl(l3: &mut [u8]) {
    let old = be16(&l3[ip::TTL..ip::TTL + 2]);
    let new = old - 0x0100;
    l3[ip::TTL] -= 1;
    let c = checksum::update16(be16(&l3[ip::CHECKSUM]), old, new);
    l3[ip::CHECKSUM].copy_from_slice(&c.to_be_bytes());
}

/// Most bytes of an ICMP error's IP datagram (RFC 1812 §4.3.2.3: 576).
const ICMP_ERR_MAX: usize = 576;
const ICMP_TIME_EXCEEDED: u8 = 11;

/// The checks `__icmp_send` makes before answering a datagram with an
/// error (RFC 1812 §4.3.2.7): not about an ICMP error, not about a
/// fragment other than the first, not to a source that is not a unicast
/// host. `orig` is a frame whose IPv4 header passed [`check_ipv4`].
pub fn icmp_error_allowed(orig: &[u8]) -> bool {
    let l3 = &orig[ETH_HLEN..];
    let ihl = (l3[ip::VER_IHL] & 0x0f) as usize * 4;
    let total = be16(&l3[ip::TOTAL_LEN]) as usize;
    let src = Ipv4Addr::from(be32(&l3[ip::SRC]));
    if src.is_unspecified()
        || src.is_multicast()
        || src.is_broadcast()
        || src.is_loopback()
        || be16(&l3[ip::FRAG]) & 0x1fff != 0
    {
        return false;
    }
    if l3[ip::PROTO] == IPPROTO_ICMP {
        // Never an error about an error (only echo, timestamp, info, …).
        if total < ihl + 1 || matches!(l3[ihl], 3 | 4 | 5 | 11 | 12) {
            return false;
        }
    }
    true
}

/// Plays the part of `__icmp_send(ICMP_TIME_EXCEEDED, ICMP_EXC_TTL)` for
/// the frame `orig` (which [`icmp_error_allowed`]) received on a port with
/// `mac`/`addr`: writes into the empty `m` an Ethernet frame back to the
/// previous hop (the frame's source MAC), IP from `addr` to the datagram's
/// source, TTL 64, carrying as much of the datagram as fits in 576 bytes.
/// False when `m` has no room for it.
pub fn build_time_exceeded(
    m: &mut Mbuf,
    orig: &[u8],
    mac: MacAddr,
    addr: Ipv4Addr,
    ident: u16,
) -> bool {
    let l3 = &orig[ETH_HLEN..];
    let total = be16(&l3[ip::TOTAL_LEN]) as usize;
    let src = Ipv4Addr::from(be32(&l3[ip::SRC]));
    let quoted = total.min(ICMP_ERR_MAX - 20 - 8);
    let ip_len = 20 + 8 + quoted;
    let Ok(b) = m.append(ETH_HLEN + ip_len) else {
        return false;
    };
    // Ethernet: back to the previous hop.
    b[0..6].copy_from_slice(&orig[6..12]);
    b[6..12].copy_from_slice(&mac.0);
    b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let h = &mut b[ETH_HLEN..];
    h[0] = 0x45;
    // IPTOS_PREC_INTERNETCONTROL, as Linux marks its ICMP errors.
    h[1] = 0xc0;
    h[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[6..8].copy_from_slice(&[0, 0]);
    h[ip::TTL] = 64;
    h[ip::PROTO] = IPPROTO_ICMP;
    h[ip::CHECKSUM].copy_from_slice(&[0, 0]);
    h[ip::SRC].copy_from_slice(&addr.octets());
    h[ip::DST].copy_from_slice(&src.octets());
    let c = checksum::checksum(&h[..20]);
    h[ip::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut h[20..];
    icmp[0] = ICMP_TIME_EXCEEDED;
    icmp[1] = 0; // ICMP_EXC_TTL
    icmp[2..8].copy_from_slice(&[0; 6]);
    icmp[8..8 + quoted].copy_from_slice(&l3[..quoted]);
    let c = checksum::checksum(&icmp[..8 + quoted]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    true
}

/// The table the fast path reads: the engine's FIB ([`RouteTable`], the
/// RIB: every route, validated, with Linux's semantics) compiled into
/// DPDK `rte_lpm`'s DIR-24-8 layout. The engine's table is `fib_hash`
/// (one hash probe per prefix length in use, each a chain of dependent
/// loads into the route's heap `Vec`) and answers with a `Route`, not a
/// next-hop index; at 64-byte rates that probe was a third of the
/// per-packet cost. DIR-24-8 answers in one load (two for prefixes longer
/// than /24): `tbl24[dst >> 8]` holds a next-hop index + 1 (0: no route)
/// or, with [`EXT`] set, a group of 256 `tbl8` entries indexed by the
/// address's last byte. Rebuilt whole whenever the FIB's generation moves
/// (the FIB → forwarding-table split routers have).
pub struct Dir248 {
    tbl24: Vec<u16>,
    tbl8: Vec<u16>,
    /// Distinct (port, gateway) next hops; entries hold `index + 1`.
    pub nhs: Vec<NextHop>,
    /// The FIB generation this was built from.
    pub generation: u64,
}

/// One next hop of [`Dir248`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub port: u16,
    /// The gateway; 0 = on link (the destination is the next hop).
    pub gw: u32,
}

/// A `tbl24` entry that names a `tbl8` group.
const EXT: u16 = 0x8000;

impl Dir248 {
    /// Compiles the routes of `t` (shortest prefix first, so longer ones
    /// overwrite; a prefix whose route is not unicast forwards nothing);
    /// errors past 32767 next hops or tbl8 groups.
    pub fn build(t: &RouteTable) -> Result<Dir248, String> {
        let mut d = Dir248 {
            tbl24: vec![0; 1 << 24],
            tbl8: Vec::new(),
            nhs: Vec::new(),
            generation: t.generation(),
        };
        // Each prefix's first route in lookup order is the one that
        // answers (the rest are backups with a higher metric).
        let mut seen = std::collections::HashSet::new();
        let mut routes: Vec<Route> = t
            .routes()
            .into_iter()
            .filter(|r| seen.insert((r.prefix, r.len)))
            .collect();
        routes.sort_by_key(|r| r.len);
        for r in &routes {
            if r.rtype != wirespeed::stack::RouteType::Unicast {
                // unreachable, blackhole, …: no forwarding for the prefix.
                d.insert(u32::from(r.prefix), r.len, 0)?;
                continue;
            }
            let nh = NextHop {
                port: r.port,
                gw: r.gateway.map_or(0, u32::from),
            };
            let idx = match d.nhs.iter().position(|n| *n == nh) {
                Some(i) => i,
                None => {
                    d.nhs.push(nh);
                    d.nhs.len() - 1
                }
            };
            if idx >= EXT as usize - 1 {
                return Err("more than 32767 distinct next hops".into());
            }
            d.insert(u32::from(r.prefix), r.len, idx as u16 + 1)?;
        }
        Ok(d)
    }

    fn insert(&mut self, prefix: u32, len: u8, e: u16) -> Result<(), String> {
        if len <= 24 {
            let first = (prefix >> 8) as usize;
            let n = 1usize << (24 - len);
            for slot in &mut self.tbl24[first..first + n] {
                if *slot & EXT != 0 {
                    // A longer prefix already split this /24 (not reached
                    // when shorter prefixes go first; kept for safety).
                    let g = (*slot & !EXT) as usize;
                    self.tbl8[g << 8..(g + 1) << 8].fill(e);
                } else {
                    *slot = e;
                }
            }
            return Ok(());
        }
        let i24 = (prefix >> 8) as usize;
        let cur = self.tbl24[i24];
        let g = if cur & EXT != 0 {
            (cur & !EXT) as usize
        } else {
            let g = self.tbl8.len() >> 8;
            if g >= EXT as usize {
                return Err("more than 32768 prefixes longer than /24 in distinct /24s".into());
            }
            // The group inherits what the /24 held.
            self.tbl8.extend(std::iter::repeat_n(cur, 256));
            self.tbl24[i24] = EXT | g as u16;
            g
        };
        let first = (g << 8) | (prefix & 0xff) as usize;
        let n = 1usize << (32 - len);
        self.tbl8[first..first + n].fill(e);
        Ok(())
    }

    /// Longest-prefix match: the next hop's index in [`Dir248::nhs`].
    #[inline(always)]
    pub fn lookup(&self, dst: u32) -> Option<usize> {
        let mut e = self.tbl24[(dst >> 8) as usize];
        if e & EXT != 0 {
            e = self.tbl8[(((e & !EXT) as usize) << 8) | (dst & 0xff) as usize];
        }
        (e != 0).then(|| e as usize - 1)
    }
}

/// A token bucket in TSC cycles (`icmp_global_allow`).
struct TokenBucket {
    credit: u64,
    cost: u64,
    cap: u64,
    last: u64,
}

impl TokenBucket {
    fn new(cost: u64, burst: u32, now: u64) -> TokenBucket {
        let cap = cost.saturating_mul(burst as u64);
        TokenBucket {
            credit: cap,
            cost,
            cap,
            last: now,
        }
    }
    fn allow(&mut self, now: u64) -> bool {
        self.credit = (self.credit + now.saturating_sub(self.last)).min(self.cap);
        self.last = now;
        if self.credit >= self.cost {
            self.credit -= self.cost;
            true
        } else {
            false
        }
    }
}

/// One next-hop MAC cached in front of the neighbour table, valid while
/// `epoch` is current (the epoch moves every [`NEIGH_RECHECK`], so each
/// used entry is asked of the table — and kept alive there — that often).
#[derive(Clone, Copy)]
struct Adj {
    key: u64,
    epoch: u32,
    mac: [u8; 6],
}

const ADJ_SLOTS: usize = 1024;
const NEIGH_RECHECK: Duration = Duration::from_millis(100);
const TIMER_STACK: u32 = 1;
const TIMER_EPOCH: u32 = 2;

#[inline(always)]
fn adj_key(port: u16, ip: u32) -> u64 {
    ((port as u64) << 32) | ip as u64 | 1 << 63
}

#[inline(always)]
fn adj_slot(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize & (ADJ_SLOTS - 1)
}

/// Per-port facts the fast path reads.
#[derive(Clone, Copy)]
struct PortFacts {
    mac: MacAddr,
    addr: u32,
    bcast: u32,
}

/// What the fast path decides for one frame.
enum Verdict {
    Forward(u16),
    Local,
    TtlExceeded,
}

/// The lcore's router.
struct L3fwd {
    c: Counters,
    per_port: Vec<PortCount>,
    ports: Vec<PortFacts>,
    /// The engine's FIB (the stack's main table: configured routes and
    /// connected subnets) compiled for the fast path.
    fwd: Dir248,
    /// The MAC of each gateway next hop of `fwd` (valid while its epoch
    /// is current).
    nh_mac: Vec<(u32, [u8; 6])>,
    /// On-link destinations (connected routes), by (port, address).
    adj: Vec<Adj>,
    epoch: u32,
    /// The control plane: ARP, the neighbour table, ICMP to our addresses.
    stack: Stack,
    staged: StagedTx,
    stack_dirty: bool,
    /// One burst per output port, filled from an RX burst, flushed after it.
    out: Vec<Burst>,
    icmp: Option<TokenBucket>,
    ident: u16,
    limit: Option<u64>,
    /// Each lcore's `c.rx`, published in its poll (a plain store; summed
    /// for `run.count` over all lcores).
    rx_seen: Arc<Vec<AtomicU64>>,
    me: usize,
    synced: u64,
}

impl L3fwd {
    fn new(
        ctx: &mut LcoreCtx,
        plan: &Plan,
        cp: &Arc<ControlPlane>,
        rx_seen: &Arc<Vec<AtomicU64>>,
    ) -> Result<L3fwd, String> {
        let nb = plan.ports.len();
        let mut ports = Vec::with_capacity(nb);
        let mut sc = StackConfig::default();
        for (i, p) in plan.ports.iter().enumerate() {
            // `run` filled in the device's MAC where the config gave none.
            let mac = p.mac.ok_or_else(|| format!("port {i}: no MAC"))?;
            sc.ports.push(PortConf::new(mac, p.addr, p.len));
            let m = wirespeed::stack::route::mask(p.len);
            ports.push(PortFacts {
                mac,
                addr: u32::from(p.addr),
                bcast: u32::from(p.addr) | !m,
            });
        }
        for &(prefix, len, port, via) in &plan.routes {
            sc.routes.push(wirespeed::stack::RouteConf {
                prefix,
                len,
                gateway: via,
                port: Some(port),
                ..Default::default()
            });
        }
        sc.static_neighbours = plan.neighbours.clone();
        let pool = Mempool::new(&PoolConfig {
            name: format!("l3fwd-ctl-l{}", ctx.lcore().index),
            size: 512,
            ..PoolConfig::default()
        })
        .map_err(|e| format!("control pool: {e}"))?;
        let (xmit, staged_tx) = staged((0..nb).collect());
        let mut stack = Stack::new(sc, pool, Box::new(xmit)).map_err(|e| e.to_string())?;
        // One control plane for all lcores: a neighbour one of them learns
        // (an ARP reply lands on one RX queue) is every lcore's at its next
        // poll.
        stack.join(cp.clone()).map_err(|e| e.to_string())?;
        let now_ns = ctx.tsc().cycles_to_ns(ctx.now());
        stack.start(now_ns);
        ctx.add_timer(Duration::from_millis(1), TIMER_STACK);
        ctx.add_timer(NEIGH_RECHECK, TIMER_EPOCH);
        let icmp = plan.icmp.time_exceeded.then(|| {
            let cost = ctx
                .tsc()
                .ns_to_cycles(1_000_000_000 / plan.icmp.rate as u64);
            TokenBucket::new(cost.max(1), plan.icmp.burst, ctx.now())
        });
        let fwd = Dir248::build(stack.routes())?;
        Ok(L3fwd {
            c: Counters::default(),
            per_port: vec![PortCount::default(); nb],
            ports,
            nh_mac: vec![(0, [0; 6]); fwd.nhs.len()],
            fwd,
            adj: vec![
                Adj {
                    key: 0,
                    epoch: 0,
                    mac: [0; 6]
                };
                ADJ_SLOTS
            ],
            epoch: 1,
            stack,
            staged: staged_tx,
            stack_dirty: true,
            out: (0..nb).map(|_| Burst::new()).collect(),
            icmp,
            ident: 0,
            limit: plan.run.count,
            rx_seen: rx_seen.clone(),
            me: ctx.lcore().index,
            synced: 0,
        })
    }

    /// Steps 1–4 for one frame; drops are counted here.
    #[inline(always)]
    fn classify(&mut self, port: u16, d: &mut [u8]) -> Option<Verdict> {
        let pf = self.ports[port as usize];
        if d.len() < ETH_HLEN {
            self.c.bad_header += 1;
            return None;
        }
        let ethertype = be16(&d[12..14]);
        if ethertype != ETHERTYPE_IPV4 {
            if ethertype == ETHERTYPE_ARP {
                return Some(Verdict::Local);
            }
            self.c.not_ipv4 += 1;
            return None;
        }
        let dst_mac = &d[0..6];
        if dst_mac != pf.mac.0 {
            if dst_mac[0] & 1 == 1 {
                // Broadcast / multicast IPv4 is not forwarded (RFC 1812 §5.3.5).
                return Some(Verdict::Local);
            }
            self.c.other_host += 1;
            return None;
        }
        let l3 = &mut d[ETH_HLEN..];
        match check_ipv4(l3) {
            HeaderCheck::Ok => {}
            HeaderCheck::BadHeader => {
                self.c.bad_header += 1;
                return None;
            }
            HeaderCheck::BadChecksum => {
                self.c.bad_checksum += 1;
                return None;
            }
        }
        let dst = be32(&l3[ip::DST]);
        if dst >> 28 == 0xe || dst == u32::MAX {
            return Some(Verdict::Local);
        }
        let Some(nhi) = self.fwd.lookup(dst) else {
            self.c.no_route += 1;
            return None;
        };
        let nh = self.fwd.nhs[nhi];
        let out = nh.port;
        if nh.gw == 0 {
            // Connected: our own address or the subnet broadcast is local.
            let of = self.ports[out as usize];
            if dst == of.addr || dst == of.bcast {
                return Some(Verdict::Local);
            }
        }
        if l3[ip::TTL] <= 1 {
            return Some(Verdict::TtlExceeded);
        }
        let mac = if nh.gw != 0 {
            match self.nh_mac[nhi] {
                (e, mac) if e == self.epoch => Some(mac),
                _ => self.gateway_slow(nhi),
            }
        } else {
            self.neighbour(out, dst)
        };
        let Some(mac) = mac else {
            self.c.no_neighbour += 1;
            return None;
        };
        decrease_ttl(l3);
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&self.ports[out as usize].mac.0);
        Some(Verdict::Forward(out))
    }

    /// The next hop's MAC: the cache, else the neighbour table (which
    /// starts ARP for an unknown address and answers None until resolved).
    #[inline(always)]
    fn neighbour(&mut self, port: u16, ip: u32) -> Option<[u8; 6]> {
        let key = adj_key(port, ip);
        let slot = adj_slot(key);
        let a = self.adj[slot];
        if a.key == key && a.epoch == self.epoch {
            return Some(a.mac);
        }
        self.neighbour_slow(port, ip, key, slot)
    }

    #[cold]
    fn neighbour_slow(&mut self, port: u16, ip: u32, key: u64, slot: usize) -> Option<[u8; 6]> {
        self.stack_dirty = true;
        let mac = self.stack.neigh_event_send(port, Ipv4Addr::from(ip))?;
        self.adj[slot] = Adj {
            key,
            epoch: self.epoch,
            mac: mac.0,
        };
        Some(mac.0)
    }

    /// A gateway's MAC from the neighbour table, cached for this epoch.
    #[cold]
    fn gateway_slow(&mut self, nhi: usize) -> Option<[u8; 6]> {
        let nh = self.fwd.nhs[nhi];
        self.stack_dirty = true;
        let mac = self
            .stack
            .neigh_event_send(nh.port, Ipv4Addr::from(nh.gw))?;
        self.nh_mac[nhi] = (self.epoch, mac.0);
        Some(mac.0)
    }

    /// A new epoch: every cached MAC is asked of the neighbour table again
    /// on its next use; a changed FIB is compiled again.
    fn new_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1).max(1);
        if self.stack.routes().generation() != self.fwd.generation {
            match Dir248::build(self.stack.routes()) {
                Ok(f) => {
                    self.nh_mac = vec![(0, [0; 6]); f.nhs.len()];
                    self.fwd = f;
                }
                Err(e) => tracing::warn!("l3fwd: FIB not recompiled: {e}"),
            }
        }
    }

    /// Answers an expired datagram (rate limited), on the port it came in on.
    #[cold]
    fn time_exceeded(&mut self, ctx: &mut LcoreCtx, port: u16, orig: &[u8]) {
        let Some(bucket) = self.icmp.as_mut() else {
            self.c.icmp_suppressed += 1;
            return;
        };
        if !icmp_error_allowed(orig) {
            self.c.icmp_suppressed += 1;
            return;
        }
        // The rate first, so a flood of expiring datagrams costs no buffers.
        if !bucket.allow(ctx.now()) {
            self.c.icmp_rate_limited += 1;
            return;
        }
        let Some(mut m) = ctx.pool.alloc() else {
            self.c.icmp_suppressed += 1;
            return;
        };
        let pf = self.ports[port as usize];
        self.ident = self.ident.wrapping_add(1);
        if !build_time_exceeded(&mut m, orig, pf.mac, Ipv4Addr::from(pf.addr), self.ident) {
            self.c.icmp_suppressed += 1;
            return;
        }
        let mut b = Burst::new();
        let _ = b.push(m);
        // `dev_queue_xmit` on the input port (noqueue: a full ring drops it).
        let o = ctx.xmit_burst(port as usize, 0, &mut b);
        self.c.icmp_sent += (o.direct + o.queued) as u64;
        self.c.icmp_suppressed += o.dropped as u64;
    }

    fn service_stack(&mut self, ctx: &mut LcoreCtx) {
        self.stack.flush();
        self.staged.flush(ctx);
        self.stack_dirty = false;
    }
}

impl LcoreApp for L3fwd {
    type Summary = (Counters, Vec<PortCount>);

    fn poll(&mut self, ctx: &mut LcoreCtx) {
        // What other lcores learned (one load when nothing changed).
        let s = self.stack.sync();
        if s.applied != self.synced {
            self.synced = s.applied;
            self.stack_dirty = true;
        }
        if self.stack_dirty {
            self.service_stack(ctx);
        }
        if let Some(n) = self.limit {
            self.rx_seen[self.me].store(self.c.rx, Ordering::Relaxed);
            let all: u64 = self.rx_seen.iter().map(|x| x.load(Ordering::Relaxed)).sum();
            if all >= n {
                ctx.request_stop_all();
            }
        }
    }

    #[inline]
    fn on_rx(&mut self, ctx: &mut LcoreCtx, port: u16, _queue: u16, pkts: &mut Burst) {
        let n = pkts.len() as u64;
        self.c.rx += n;
        self.per_port[port as usize].rx += n;
        while let Some(mut m) = pkts.pop_front() {
            match self.classify(port, m.data_mut()) {
                None => drop(m),
                Some(Verdict::Forward(out)) => {
                    // Each output burst is flushed after every RX burst,
                    // which is at most BURST_MAX: always room.
                    let _ = self.out[out as usize].push(m);
                }
                Some(Verdict::Local) => {
                    // At once, in order: an ARP reply resolves the next hop
                    // of the frames behind it in this burst.
                    self.c.local += 1;
                    self.stack.rx(port, m);
                    self.stack_dirty = true;
                }
                Some(Verdict::TtlExceeded) => {
                    self.c.ttl_exceeded += 1;
                    self.time_exceeded(ctx, port, m.data());
                }
            }
        }
        for p in 0..self.out.len() {
            if self.out[p].is_empty() {
                continue;
            }
            let o = ctx.xmit_burst(p, 0, &mut self.out[p]);
            let sent = (o.direct + o.queued) as u64;
            self.c.forwarded += sent;
            self.per_port[p].tx += sent;
            self.c.tx_dropped += o.dropped as u64;
        }
    }

    fn on_timer(&mut self, ctx: &mut LcoreCtx, id: u32) {
        match id {
            TIMER_STACK => {
                let now_ns = ctx.tsc().cycles_to_ns(ctx.now());
                self.stack.poll_timers(now_ns);
                self.service_stack(ctx);
            }
            TIMER_EPOCH => self.new_epoch(),
            _ => {}
        }
    }

    fn flush_tx(&mut self, ctx: &mut LcoreCtx) -> usize {
        self.service_stack(ctx);
        self.staged.pending()
    }

    fn finish(self, _ctx: &mut LcoreCtx) -> Self::Summary {
        (self.c, self.per_port)
    }
}

// ---------------------------------------------------------------- run

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "l3fwd",
    about = "IPv4 LPM forwarder between ports (DPDK l3fwd), with ARP and ICMP time exceeded"
)]
pub struct Opts {
    /// The TOML config (see configs/l3fwd.toml).
    #[arg(long, default_value = "configs/l3fwd.toml")]
    pub config: PathBuf,
    /// Overrides run.lcore.
    #[arg(long)]
    pub lcore: Option<usize>,
    /// Overrides run.lcores (e.g. 0-1).
    #[arg(long)]
    pub lcores: Option<String>,
    /// Overrides run.duration (seconds).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Overrides run.count (frames received).
    #[arg(long)]
    pub count: Option<u64>,
    /// 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
}

impl Opts {
    /// The config file with the command line's overrides, checked.
    pub fn plan(&self) -> Result<Plan, Error> {
        let mut c = Config::load(&self.config)?;
        if let Some(l) = self.lcore {
            c.run.lcore = l;
            c.run.lcores = None;
        }
        if let Some(l) = &self.lcores {
            c.run.lcores = Some(l.clone());
        }
        if let Some(d) = self.duration {
            c.run.duration = Some(d);
        }
        if let Some(n) = self.count {
            c.run.count = Some(n);
        }
        c.run.no_huge |= self.no_huge;
        c.plan()
    }
}

/// Opens the plan's ports through `reg`, routes until a stop condition,
/// and reports the counters.
pub fn run(plan: &Plan, reg: &Registry, handle_signals: bool) -> Result<Report, Error> {
    if plan.run.no_huge {
        wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
    }
    let n = plan.cores.len() as u16;
    let mut setups = Vec::new();
    let mut rss = Vec::new();
    let mut plan = plan.clone();
    for (i, p) in plan.ports.iter_mut().enumerate() {
        let port = reg.open(&p.spec)?;
        p.mac.get_or_insert(port.mac());
        let info = port.info();
        if n > info.max_rx_queues.min(info.max_tx_queues) {
            return Err(bad(
                "run.lcores",
                format!(
                    "{n} lcores, but port[{i}] {} has {} RX / {} TX queues: one of each per lcore",
                    p.spec, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        // One RX and one TX queue per lcore (queue q → lcore q), RSS
        // spreading the flows where the port has it (DPDK l3fwd's
        // `--config (port,queue,lcore)` with `ETH_MQ_RX_RSS`).
        let spread = n > 1 && p.rss && info.reta_size > 0;
        rss.push(spread);
        let conf = PortConfig {
            tx_ring_size: plan.run.ring,
            rx_ring_size: plan.run.ring,
            nb_rx_queues: n,
            nb_tx_queues: n,
            rss: spread.then(|| RssConf::spread(n, info.reta_size)),
            ..PortConfig::default()
        };
        let mut s = PortSetup::new(port, conf);
        // l3fwd's `send_burst`: straight to the driver, the rest freed.
        s.txq.qdisc.kind = QdiscKind::Noqueue;
        s.txq.bql.enabled = false;
        s.txq.tx_burst = plan.run.burst;
        setups.push(s);
    }
    let mut cfg = RuntimeConfig::new(plan.cores.clone());
    cfg.pool.name = "l3fwd".into();
    cfg.pool.size = plan.run.pool;
    cfg.rx_burst = plan.run.burst;
    cfg.handle_signals = handle_signals;
    cfg.stop.duration = plan.run.duration.map(Duration::from_secs_f64);
    let rt = Runtime::new(cfg, setups)?;
    let names: Vec<String> = rt.ports().iter().map(|p| p.name().to_string()).collect();
    let cp = Arc::new(ControlPlane::new());
    let rx_seen: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let report = rt.run(move |ctx| L3fwd::new(ctx, &plan, &cp, &rx_seen))?;
    let mut c = Counters::default();
    let mut ports = vec![PortCount::default(); names.len()];
    let mut lcores = Vec::new();
    let (mut elapsed_ns, mut cycles) = (0u64, 0f64);
    let tsc = wirespeed::eal::tsc::Tsc::global();
    for l in &report.lcores {
        let (lc, per_port) = &l.app;
        c.add(lc);
        for (t, p) in ports.iter_mut().zip(per_port) {
            t.rx += p.rx;
            t.tx += p.tx;
        }
        lcores.push((l.core, *lc));
        elapsed_ns = elapsed_ns.max(l.elapsed_ns);
        cycles += tsc.ns_to_cycles(l.elapsed_ns) as f64;
    }
    Ok(Report {
        names,
        ports,
        c,
        lcores,
        rss,
        elapsed_ns,
        cycles_per_rx: if c.rx > 0 { cycles / c.rx as f64 } else { 0.0 },
    })
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let opts = Opts::parse();
    let r = opts
        .plan()
        .and_then(|plan| run(&plan, &wirespeed_apps::registry(), true));
    match r {
        Ok(r) => {
            println!("{r}");
            if r.c.balanced() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("l3fwd: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
