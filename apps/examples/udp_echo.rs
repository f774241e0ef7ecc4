//! `udp_echo`: a UDP echo server (RFC 862) on the engine's stack — the
//! appliance an embedder writes first. `Runtime::run_stacked` gives each
//! lcore a `Stack` with the port's address (its MAC filled in from the
//! port), the stacks sharing one control plane; frames the port receives go
//! to the stack (ARP, ICMP, IPv4 reassembly, UDP demux), a bound
//! `UdpSocket` hands each datagram to the app as the buffer it arrived in
//! (`recv_mbuf`), and the app sends that same buffer back to where it came
//! from (`send_mbuf_to`: the stack writes the new headers in front of the
//! payload — route, neighbour, ARP for a new client, pfifo_fast + BQL, the
//! driver). No byte of a datagram is copied. The runtime runs the stack's
//! timers and flushes its output after every poll: the app is its socket
//! calls and nothing else.
//!
//! ```text
//! cargo run --release -p wirespeed-apps --example udp_echo -- --config configs/udp_echo.toml
//! cargo run --release -p wirespeed-apps --example udp_echo -- \
//!     --port af_packet:veth0 --ip 10.0.0.1/24 --listen 7 --duration 30
//! ```
//!
//! Several lcores (`run.lcores = "0-1"`): the port gets one RX and one TX
//! queue per lcore, with receive-side scaling where it has it (igb, its
//! model, ice): each lcore polls its own queue and answers ARP and ICMP
//! there, every lcore's neighbour table fed by the shared control plane.
//! The echo socket lives on the first lcore (the stack has no
//! `SO_REUSEPORT` group): datagrams for it that another lcore receives are
//! handed to it through that lcore's steering ring (RFS's part), and the
//! echoes leave by the first lcore's TX queue.
//!
//! Ends on Ctrl-C, `count` (datagrams echoed) or `duration`, and prints
//! what it received, echoed and could not echo, each lcore's frames and
//! steering, and the stacks' `Udp:` counters.

#[path = "common/mod.rs"]
#[allow(clippy::duplicate_mod)] // the examples test includes all three
mod common;
use clap::Parser;
use common::bad;
pub use common::Error;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wirespeed::eal::lcore::CoreList;
use wirespeed::ethdev::rss::RssConf;
use wirespeed::ethdev::{MacAddr, PortConfig, Registry};
use wirespeed::runtime::stacked::{StackApp, StackCtx, StackSpec};
use wirespeed::runtime::{PortSetup, Runtime, RuntimeConfig};
use wirespeed::stack::{PortConf, SnmpSnapshot, SocketId, StackConfig};

// ---------------------------------------------------------------- config

/// The TOML file (see `configs/udp_echo.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConf,
    #[serde(default)]
    pub port: PortEntry,
    #[serde(default)]
    pub echo: EchoConf,
}

/// `[run]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConf {
    /// Cores of the lcores (`"0"`, `"0-1"`, `"0,2"`).
    pub lcores: String,
    /// Seconds; none = until Ctrl-C (or `count`).
    pub duration: Option<f64>,
    /// Stop after echoing this many datagrams.
    pub count: Option<u64>,
    /// Buffers of each lcore's pools (RX and the stack's).
    pub pool: u32,
    /// 4 KiB pages only (DPDK --no-huge).
    pub no_huge: bool,
}

impl Default for RunConf {
    fn default() -> Self {
        RunConf {
            lcores: "0".into(),
            duration: None,
            count: None,
            pool: 8192,
            no_huge: false,
        }
    }
}

/// `[port]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortEntry {
    /// Device spec; none here means `--port` must give it.
    pub spec: Option<String>,
    /// `A.B.C.D/LEN`: the server's address and subnet.
    pub address: String,
    /// The port's MAC; default the device's.
    pub mac: Option<String>,
    /// With several lcores, receive-side scaling on a port that has it
    /// (else each lcore still gets its own RX queue).
    pub rss: bool,
    /// RX and TX descriptors per queue.
    pub ring: u16,
}

impl Default for PortEntry {
    fn default() -> Self {
        PortEntry {
            spec: None,
            address: "10.0.0.1/24".into(),
            mac: None,
            rss: true,
            ring: 1024,
        }
    }
}

/// `[echo]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EchoConf {
    /// The UDP port to answer on (RFC 862: 7).
    pub listen: u16,
}

impl Default for EchoConf {
    fn default() -> Self {
        EchoConf { listen: 7 }
    }
}

/// Command line: every flag overrides its key in `--config`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "udp_echo",
    about = "UDP echo server (RFC 862) on the wirespeed stack"
)]
pub struct Opts {
    /// The TOML config (see configs/udp_echo.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides port.spec: ring:NAME, af_packet:IFACE, af_xdp:IFACE, igb-model, …
    #[arg(long)]
    pub port: Option<String>,
    /// Overrides port.address (ADDRESS/PREFIX).
    #[arg(long)]
    pub ip: Option<String>,
    /// Overrides echo.listen.
    #[arg(long)]
    pub listen: Option<u16>,
    /// Overrides run.lcores (e.g. 0-1).
    #[arg(long, alias = "lcore")]
    pub lcores: Option<String>,
    /// Overrides run.count (datagrams echoed).
    #[arg(long)]
    pub count: Option<u64>,
    /// Overrides run.duration (seconds).
    #[arg(long)]
    pub duration: Option<f64>,
    /// 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: String,
    pub addr: Ipv4Addr,
    pub len: u8,
    pub mac: Option<MacAddr>,
    pub cores: CoreList,
    pub rss: bool,
    pub ring: u16,
    pub pool: u32,
    pub listen: u16,
    pub count: Option<u64>,
    pub duration: Option<f64>,
    pub no_huge: bool,
}

/// `A.B.C.D/LEN`; `key` names where it came from (`--ip`, `port.address`).
pub fn parse_ip(key: &str, s: &str) -> Result<(Ipv4Addr, u8), Error> {
    let no = || {
        bad(
            key,
            format!("'{s}' is not ADDRESS/PREFIX (e.g. 10.0.0.1/24)"),
        )
    };
    let (a, l) = s.split_once('/').ok_or_else(no)?;
    let addr: Ipv4Addr = a.parse().map_err(|_| no())?;
    let len: u8 = l.parse().map_err(|_| no())?;
    if len > 32 {
        return Err(no());
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
        return Err(bad(key, format!("{addr} is not a unicast address")));
    }
    Ok((addr, len))
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

impl Opts {
    /// The config (file or defaults) with the flags' overrides, checked;
    /// errors name the flag or the key.
    pub fn plan(&self) -> Result<Plan, Error> {
        let c = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        let src = |flag: bool, f: &'static str, k: &'static str| if flag { f } else { k };
        let spec = self.port.clone().or(c.port.spec.clone()).ok_or_else(|| {
            bad(
                "port.spec",
                "no port given: use --port SPEC or [port] spec in --config",
            )
        })?;
        let ip = self.ip.clone().unwrap_or(c.port.address.clone());
        let (addr, len) = parse_ip(src(self.ip.is_some(), "--ip", "port.address"), &ip)?;
        let mac = match &c.port.mac {
            Some(m) => {
                let mac: MacAddr = m.parse().map_err(|e: String| bad("port.mac", e))?;
                if mac.is_multicast() || mac == MacAddr::ZERO {
                    return Err(bad("port.mac", format!("{mac} is not a unicast MAC")));
                }
                Some(mac)
            }
            None => None,
        };
        let lc = self.lcores.clone().unwrap_or(c.run.lcores.clone());
        let lkey = src(self.lcores.is_some(), "--lcores", "run.lcores");
        let cores = CoreList::parse(&lc).map_err(|e| bad(lkey, e.to_string()))?;
        if cores.is_empty() || cores.len() > 16 {
            return Err(bad(lkey, format!("'{lc}': give 1 to 16 cores")));
        }
        let listen = self.listen.unwrap_or(c.echo.listen);
        if listen == 0 {
            return Err(bad(
                src(self.listen.is_some(), "--listen", "echo.listen"),
                "port 0 is not a port to answer on",
            ));
        }
        let duration = self.duration.or(c.run.duration);
        if let Some(d) = duration {
            if !(d > 0.0 && d.is_finite()) {
                return Err(bad(
                    src(self.duration.is_some(), "--duration", "run.duration"),
                    format!("{d} is not seconds > 0"),
                ));
            }
        }
        if c.run.pool < 256 {
            return Err(bad(
                "run.pool",
                format!("{} buffers: give 256 or more", c.run.pool),
            ));
        }
        Ok(Plan {
            spec,
            addr,
            len,
            mac,
            cores,
            rss: c.port.rss,
            ring: c.port.ring,
            pool: c.run.pool,
            listen,
            count: self.count.or(c.run.count),
            duration,
            no_huge: self.no_huge || c.run.no_huge,
        })
    }
}

// ---------------------------------------------------------------- report

/// One lcore's share of a run.
#[derive(Debug, Clone, Default)]
pub struct LcoreCount {
    pub core: usize,
    /// Frames its RX queues received.
    pub rx_frames: u64,
    /// Frames it handed to the socket's lcore / got from the others.
    pub steered_out: u64,
    pub steered_in: u64,
    pub steer_drops: u64,
    /// Datagrams its socket received and echoed (the socket's lcore only).
    pub received: u64,
    pub echoed: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub received: u64,
    pub echoed: u64,
    /// Datagrams the stack refused to send back (the last errno in
    /// `last_error`; the stack's SNMP counts them too).
    pub failed: u64,
    pub last_error: Option<String>,
    /// The `Udp:` counters summed over the lcores' stacks.
    pub snmp: Option<SnmpSnapshot>,
    pub lcores: Vec<LcoreCount>,
    /// Whether the port spread its RX with RSS.
    pub rss: bool,
}

impl Report {
    /// Every frame steered out arrived at its lcore or was counted dropped.
    pub fn steering_balanced(&self) -> bool {
        let out: u64 = self.lcores.iter().map(|l| l.steered_out).sum();
        let inn: u64 = self.lcores.iter().map(|l| l.steered_in).sum();
        out == inn
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "udp_echo: received {}, echoed {}, not echoed {}{}",
            self.received,
            self.echoed,
            self.failed,
            self.last_error
                .as_ref()
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        )?;
        for (i, l) in self.lcores.iter().enumerate() {
            writeln!(
                f,
                "lcore {i} (core {}): rx frames {} steered out {} in {} drops {} echoed {}{}",
                l.core,
                l.rx_frames,
                l.steered_out,
                l.steered_in,
                l.steer_drops,
                l.echoed,
                if i == 0 && self.lcores.len() > 1 {
                    if self.rss {
                        " (RSS)"
                    } else {
                        " (a queue per lcore)"
                    }
                } else {
                    ""
                }
            )?;
        }
        if let Some(s) = &self.snmp {
            let u = &s.udp;
            write!(
                f,
                "Udp: InDatagrams {} NoPorts {} InErrors {} OutDatagrams {} RcvbufErrors {} SndbufErrors {}",
                u.in_datagrams, u.no_ports, u.in_errors, u.out_datagrams, u.rcvbuf_errors, u.sndbuf_errors
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- the app

/// One lcore's echo server; the first lcore holds the socket.
struct Echo {
    sock: Option<SocketId>,
    r: LcoreCount,
    failed: u64,
    last_error: Option<String>,
    limit: Option<u64>,
}

impl Echo {
    fn new(ctx: &mut StackCtx<'_>, p: &Plan) -> Result<Echo, String> {
        let sock = if ctx.lcore_id().index == 0 {
            let sock = ctx.stack.udp_socket().map_err(|e| format!("socket: {e}"))?;
            ctx.stack
                .socket(sock)
                .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p.listen))
                .map_err(|e| format!("bind :{}: {e}", p.listen))?;
            Some(sock)
        } else {
            None
        };
        Ok(Echo {
            sock,
            r: LcoreCount::default(),
            failed: 0,
            last_error: None,
            limit: p.count,
        })
    }
}

/// What each lcore hands back: its counts, failures, last error.
type Summary = (LcoreCount, u64, Option<String>);

impl StackApp for Echo {
    type Summary = Summary;

    /// Every datagram queued on the socket, sent back to its sender in its
    /// own buffer (the runtime flushes the stack's output after this).
    fn poll(&mut self, ctx: &mut StackCtx<'_>) {
        let Some(sock) = self.sock else {
            return;
        };
        while let Ok((m, from)) = ctx.stack.socket(sock).recv_mbuf() {
            self.r.received += 1;
            match ctx.stack.socket(sock).send_mbuf_to(m, from) {
                Ok(_) => self.r.echoed += 1,
                Err(e) => {
                    // EAGAIN (send buffer full) included: counted, not
                    // retried — UDP has no delivery promise to keep.
                    self.failed += 1;
                    self.last_error = Some(format!("to {from}: {e}"));
                }
            }
        }
        // Done once the last echo left the stack: a reply to a client being
        // resolved waits in its neighbour entry until ARP answers.
        if self.limit.is_some_and(|n| self.r.echoed >= n)
            && ctx.stack.neighbours().iter().all(|x| x.queued == 0)
        {
            ctx.request_stop_all();
        }
    }

    fn finish(self, _ctx: &mut StackCtx<'_>) -> Summary {
        (self.r, self.failed, self.last_error)
    }
}

/// Opens the port through `reg` and echoes until a stop condition.
pub fn run(p: &Plan, reg: &Registry, handle_signals: bool) -> Result<Report, Error> {
    if p.no_huge {
        wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
    }
    let port = reg.open(&p.spec)?;
    let n = p.cores.len() as u16;
    let info = port.info();
    if n > info.max_rx_queues.min(info.max_tx_queues) {
        return Err(bad(
            "run.lcores",
            format!(
                "{n} lcores, but {} has {} RX / {} TX queues: one of each per lcore",
                p.spec, info.max_rx_queues, info.max_tx_queues
            ),
        ));
    }
    // One RX and one TX queue per lcore (queue q → lcore q: the runtime's
    // default maps), RSS spreading the flows where the port has it.
    let rss = n > 1 && p.rss && info.reta_size > 0;
    let conf = PortConfig {
        nb_rx_queues: n,
        nb_tx_queues: n,
        rx_ring_size: p.ring,
        tx_ring_size: p.ring,
        rss: rss.then(|| RssConf::spread(n, info.reta_size)),
        ..PortConfig::default()
    };
    let setup = PortSetup::new(port, conf);
    let mut cfg = RuntimeConfig::new(p.cores.clone());
    cfg.pool.name = "udp-echo".into();
    cfg.pool.size = p.pool;
    cfg.handle_signals = handle_signals;
    cfg.stop.duration = p.duration.map(Duration::from_secs_f64);
    let rt = Runtime::new(cfg, vec![setup])?;
    // The port's MAC is filled in by the runtime (MacAddr::ZERO).
    let mut spec = StackSpec::new(StackConfig {
        ports: vec![PortConf::new(p.mac.unwrap_or(MacAddr::ZERO), p.addr, p.len)],
        ..Default::default()
    });
    spec.pool_size = p.pool;
    let p2 = p.clone();
    let report = rt.run_stacked(spec, move |ctx| Echo::new(ctx, &p2))?;
    let mut r = Report {
        rss,
        ..Report::default()
    };
    let mut snmp: Option<SnmpSnapshot> = None;
    for l in &report.lcores {
        let (mut c, failed, err) = l.app.app.clone();
        c.core = l.core;
        c.rx_frames = l.rx_packets;
        c.steered_out = l.app.steered_out;
        c.steered_in = l.app.steered_in;
        c.steer_drops = l.app.steer_drops;
        r.received += c.received;
        r.echoed += c.echoed;
        r.failed += failed;
        if err.is_some() {
            r.last_error = err;
        }
        r.lcores.push(c);
        let s = &l.app.snmp;
        match snmp.as_mut() {
            None => snmp = Some(*s),
            Some(t) => {
                let (a, b) = (&mut t.udp, &s.udp);
                a.in_datagrams += b.in_datagrams;
                a.no_ports += b.no_ports;
                a.in_errors += b.in_errors;
                a.out_datagrams += b.out_datagrams;
                a.rcvbuf_errors += b.rcvbuf_errors;
                a.sndbuf_errors += b.sndbuf_errors;
            }
        }
    }
    r.snmp = snmp;
    Ok(r)
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let o = Opts::parse();
    match o
        .plan()
        .and_then(|p| run(&p, &wirespeed_apps::registry(), true))
    {
        Ok(r) => {
            println!("{r}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("udp_echo: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
